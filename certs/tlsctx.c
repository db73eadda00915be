#include "certs/tlsctx.h"
#include "core/secretfile.h"
#include "certs/tls.h"
#include "core/err.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tls_server_set {
	int refs;
	size_t n;
	SSL_CTX **ctx;
	char **desc;
};

static void
set_free(struct tls_server_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		SSL_CTX_free(s->ctx[i]);
		free(s->desc[i]);
	}
	free(s->ctx);
	free(s->desc);
	free(s);
}

void
tls_server_set_ref(struct tls_server_set *s)
{
	s->refs++;
}

void
tls_server_set_unref(struct tls_server_set *s)
{
	if (s != NULL && --s->refs == 0)
		set_free(s);
}

SSL_CTX *
tls_server_set_default(struct tls_server_set *s)
{
	return s->ctx[0];
}

size_t
tls_server_set_count(const struct tls_server_set *s)
{
	return s->n;
}

const char *
tls_server_set_describe(const struct tls_server_set *s, size_t i)
{
	return i < s->n ? s->desc[i] : "";
}

/*
 * SNI: runs on the default context during ClientHello. Picks the first certificate whose names
 * match; no match (or no SNI) keeps the default. Never fails the handshake over a name: browsers
 * then show a name mismatch, which says more than an alert.
 */
static int
on_servername(SSL *ssl, int *alert, void *arg)
{
	struct tls_server_set *s = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	if (name == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	for (size_t i = 0; i < s->n; i++) {
		X509 *cert = SSL_CTX_get0_certificate(s->ctx[i]);
		if (cert != NULL && X509_check_host(cert, name, 0, 0, NULL) == 1) {
			if (i != 0)
				SSL_set_SSL_CTX(ssl, s->ctx[i]);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_NOACK;
}

static char *
describe_cert(SSL_CTX *ctx, const char *file)
{
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	char subject[256] = "?", notafter[64] = "?", *out;
	BIO *b;
	size_t n;

	if (cert != NULL) {
		X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
		if ((b = BIO_new(BIO_s_mem())) != NULL) {
			if (ASN1_TIME_print(b, X509_get0_notAfter(cert)) == 1) {
				n = (size_t)BIO_read(b, notafter, sizeof(notafter) - 1);
				notafter[n < sizeof(notafter) ? n : 0] = '\0';
			}
			BIO_free(b);
		}
	}
	n = strlen(file) + strlen(subject) + strlen(notafter) + 32;
	if ((out = malloc(n)) != NULL)
		snprintf(out, n, "%s (%s, expires %s)", file, subject, notafter);
	return out;
}

/* mkdir -p with mode 0700 for the components it creates. */
static int
mkdirs(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return PG_ERANGE;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char saved = *p;
			*p = '\0';
			if (mkdir(buf, 0700) != 0 && errno != EEXIST)
				return PG_EIO;
			*p = saved;
			if (saved == '\0')
				break;
		}
	}
	return 0;
}

/* Writes the PEM made by write_pem to path atomically (temp file, fsync, rename), mode 0600. */
static int
write_pem_file(const char *path, int (*write_pem)(BIO *, void *), void *obj)
{
	char tmp[4200];
	BIO *b = NULL;
	int fd, r = PG_EIO;
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return PG_ERANGE;
	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		return PG_EIO;
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		unlink(tmp);
		return PG_EIO;
	}
	if ((b = BIO_new_fp(f, BIO_NOCLOSE)) != NULL && write_pem(b, obj) == 1 &&
	    BIO_flush(b) == 1 && fflush(f) == 0 && fsync(fd) == 0)
		r = 0;
	BIO_free(b);
	if (fclose(f) != 0)
		r = PG_EIO;
	if (r == 0 && rename(tmp, path) != 0)
		r = PG_EIO;
	if (r != 0)
		unlink(tmp);
	return r;
}

static int
pem_key(BIO *b, void *k)
{
	return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static int
pem_cert(BIO *b, void *x)
{
	return PEM_write_bio_X509(b, x);
}

/* An EC P-256 key and a one-year self-signed certificate for localhost and 127.0.0.1. */
static int
make_selfsigned(const char *crt_path, const char *key_path, char *err, size_t errlen)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext = NULL;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	int r = PG_ETLS;

	if (key == NULL || x == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;	/* positive */
	if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
	    X509_set_version(x, 2) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600) == NULL ||
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"poolgate self-signed", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    X509_set_pubkey(x, key) != 1)
		goto out;
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
	    "DNS:localhost,IP:127.0.0.1,IP:::1")) == NULL || X509_add_ext(x, ext, -1) != 1)
		goto out;
	if (X509_sign(x, key, EVP_sha256()) == 0)
		goto out;
	if ((r = write_pem_file(key_path, pem_key, key)) != 0 ||
	    (r = write_pem_file(crt_path, pem_cert, x)) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", r == 0 ? crt_path : key_path,
		    strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (r == PG_ETLS) {
		unsigned long e = ERR_get_error();
		snprintf(err, errlen, "cannot make a self-signed certificate: %s",
		    e ? ERR_reason_error_string(e) : "unknown OpenSSL error");
		ERR_clear_error();
	}
	X509_EXTENSION_free(ext);
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(key);
	return r;
}

int
tls_server_set_load(const struct pg_config *cfg, struct tls_server_set **out, char *err,
    size_t errlen)
{
	struct tls_server_set *s = calloc(1, sizeof(*s));
	size_t n = cfg->ncerts ? cfg->ncerts : 1;
	char dir[4096], crt[4200], key[4200];
	int r = 0;

	if (s == NULL || (s->ctx = calloc(n, sizeof(*s->ctx))) == NULL ||
	    (s->desc = calloc(n, sizeof(*s->desc))) == NULL) {
		if (s != NULL)
			free(s->ctx);
		free(s);
		snprintf(err, errlen, "out of memory");
		return PG_ENOMEM;
	}
	s->refs = 1;
	if (cfg->ncerts == 0) {
		struct stat st;
		snprintf(dir, sizeof(dir), "%s/tls", cfg->state_dir);
		snprintf(crt, sizeof(crt), "%s/selfsigned.crt", dir);
		snprintf(key, sizeof(key), "%s/selfsigned.key", dir);
		if (stat(crt, &st) != 0 || stat(key, &st) != 0) {
			if (mkdirs(dir) != 0) {
				snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
				r = PG_EIO;
				goto fail;
			}
			if ((r = make_selfsigned(crt, key, err, errlen)) != 0)
				goto fail;
			LOG_WARN("tls", "no certificate configured: made a self-signed one in %s "
			    "(browsers will warn; configure tls.certificates)", crt);
		} else {
			LOG_NOTICE("tls", "no certificate configured: using the self-signed one in %s",
			    crt);
		}
	}
	for (size_t i = 0; i < n; i++) {
		const char *c = cfg->ncerts ? cfg->certs[i].cert : crt;
		const char *k = cfg->ncerts ? cfg->certs[i].key : key;
		if (pg_secret_check_path(k, "TLS private key", err, errlen) != 0 ||
		    (s->ctx[i] = tls_server_ctx_new(c, k, err, errlen)) == NULL) {
			r = PG_ETLS;
			goto fail;
		}
		s->n++;
		if ((s->desc[i] = describe_cert(s->ctx[i], c)) == NULL) {
			r = PG_ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	SSL_CTX_set_tlsext_servername_callback(s->ctx[0], on_servername);
	SSL_CTX_set_tlsext_servername_arg(s->ctx[0], s);
	*out = s;
	return 0;
fail:
	set_free(s);
	return r;
}
