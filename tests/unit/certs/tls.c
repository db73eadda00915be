/*
 * certs/tls: real handshakes between a client and a server tls_conn joined in memory (each side's
 * output fed to the other), plus one against a real `openssl s_server`. The certificates are made
 * at test time with OpenSSL's X509 API: a CA and a leaf it signed for localhost and 127.0.0.1, and
 * an unrelated self-signed one for the same names.
 */
#include "certs/tls.h"
#include "core/buf.h"
#include "core/err.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

/* Made once by the group setup, read-only for the tests. */
static struct {
	char dir[64];
	char ca[128];
	char leaf_cert[128], leaf_key[128];
	char self_cert[128], self_key[128];
	char enc_key[128];
	char rsa_key[128];
} fx;

/* Pending output never gets near this in a handshake or in these messages. */
#define OUT_MAX (1024 * 1024)

/* Certificates */

static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	int ok;

	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* A CA when issuer is NULL and is_ca is set; self-signed when issuer is NULL. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int is_ca,
    long serial)
{
	X509_NAME *name;
	X509 *c;
	int ok;

	if ((c = X509_new()) == NULL)
		return NULL;
	name = X509_get_subject_name(c);
	ok = X509_set_version(c, X509_VERSION_3) &&
	    ASN1_INTEGER_set(X509_get_serialNumber(c), serial) &&
	    X509_gmtime_adj(X509_getm_notBefore(c), -3600) != NULL &&
	    X509_gmtime_adj(X509_getm_notAfter(c), 86400) != NULL &&
	    X509_set_pubkey(c, key) &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
		-1, 0) &&
	    X509_set_issuer_name(c, issuer != NULL ? X509_get_subject_name(issuer) : name) &&
	    add_ext(c, issuer != NULL ? issuer : c, NID_subject_key_identifier, "hash");
	if (ok && is_ca)
		ok = add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE") &&
		    add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
	if (ok && !is_ca)
		ok = add_ext(c, c, NID_basic_constraints, "critical,CA:FALSE") &&
		    add_ext(c, c, NID_key_usage, "critical,digitalSignature") &&
		    add_ext(c, c, NID_ext_key_usage, "serverAuth") &&
		    add_ext(c, c, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
	if (ok && issuer != NULL)
		ok = add_ext(c, issuer, NID_authority_key_identifier, "keyid");
	if (ok)
		ok = X509_sign(c, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0;
	if (!ok) {
		X509_free(c);
		return NULL;
	}
	return c;
}

static int
write_pem(const char *path, X509 *c1, X509 *c2, EVP_PKEY *key, const char *pass)
{
	const EVP_CIPHER *enc = pass != NULL ? EVP_aes_128_cbc() : NULL;
	FILE *f;
	int ok = 1;

	if ((f = fopen(path, "w")) == NULL)
		return 0;
	if (c1 != NULL)
		ok = ok && PEM_write_X509(f, c1);
	if (c2 != NULL)
		ok = ok && PEM_write_X509(f, c2);
	if (key != NULL)
		ok = ok && PEM_write_PrivateKey(f, key, enc, (const unsigned char *)pass,
		    pass != NULL ? (int)strlen(pass) : 0, NULL, NULL);
	return fclose(f) == 0 && ok;
}

static int
group_setup(void **state)
{
	EVP_PKEY *ca_key, *leaf_key, *self_key, *rsa_key;
	X509 *ca, *leaf, *self;
	int ok;

	snprintf(fx.dir, sizeof(fx.dir), "/tmp/pg-tls-test-XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	snprintf(fx.ca, sizeof(fx.ca), "%s/ca.pem", fx.dir);
	snprintf(fx.leaf_cert, sizeof(fx.leaf_cert), "%s/leaf.pem", fx.dir);
	snprintf(fx.leaf_key, sizeof(fx.leaf_key), "%s/leaf.key", fx.dir);
	snprintf(fx.self_cert, sizeof(fx.self_cert), "%s/self.pem", fx.dir);
	snprintf(fx.self_key, sizeof(fx.self_key), "%s/self.key", fx.dir);
	snprintf(fx.enc_key, sizeof(fx.enc_key), "%s/enc.key", fx.dir);
	snprintf(fx.rsa_key, sizeof(fx.rsa_key), "%s/rsa.key", fx.dir);

	ca_key = EVP_EC_gen("P-256");
	leaf_key = EVP_EC_gen("P-256");
	self_key = EVP_EC_gen("P-256");
	rsa_key = EVP_RSA_gen(2048);
	ca = ca_key != NULL ? make_cert(ca_key, "poolgate test CA", NULL, NULL, 1, 1) : NULL;
	leaf = ca != NULL && leaf_key != NULL ?
	    make_cert(leaf_key, "localhost", ca, ca_key, 0, 2) : NULL;
	self = self_key != NULL ? make_cert(self_key, "localhost", NULL, NULL, 0, 3) : NULL;
	/* The leaf file carries its chain, as a real deployment's would. */
	ok = ca != NULL && leaf != NULL && self != NULL &&
	    write_pem(fx.ca, ca, NULL, NULL, NULL) &&
	    write_pem(fx.leaf_cert, leaf, ca, NULL, NULL) &&
	    write_pem(fx.leaf_key, NULL, NULL, leaf_key, NULL) &&
	    write_pem(fx.self_cert, self, NULL, NULL, NULL) &&
	    write_pem(fx.self_key, NULL, NULL, self_key, NULL) &&
	    write_pem(fx.enc_key, NULL, NULL, leaf_key, "not-a-real-secret") &&
	    rsa_key != NULL && write_pem(fx.rsa_key, NULL, NULL, rsa_key, NULL);
	X509_free(ca);
	X509_free(leaf);
	X509_free(self);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(leaf_key);
	EVP_PKEY_free(self_key);
	EVP_PKEY_free(rsa_key);
	ERR_clear_error();
	return ok ? 0 : -1;
}

static int
group_teardown(void **state)
{
	const char *files[] = { fx.ca, fx.leaf_cert, fx.leaf_key, fx.self_cert, fx.self_key,
		fx.enc_key, fx.rsa_key };
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(files[i]);
	rmdir(fx.dir);
	return 0;
}

/* A client and a server joined in memory */

struct pair {
	SSL_CTX *cctx, *sctx;
	struct tls_conn *c, *s;
};

static SSL_CTX *
client_ctx(const char *ca, int verify)
{
	char err[256];
	SSL_CTX *ctx;

	ctx = tls_client_ctx_new(ca, verify, err, sizeof(err));
	if (ctx == NULL)
		fail_msg("tls_client_ctx_new: %s", err);
	return ctx;
}

static SSL_CTX *
server_ctx(const char *cert, const char *key)
{
	char err[256];
	SSL_CTX *ctx;

	ctx = tls_server_ctx_new(cert, key, err, sizeof(err));
	if (ctx == NULL)
		fail_msg("tls_server_ctx_new: %s", err);
	return ctx;
}

/* Takes ownership of both contexts. */
static void
pair_init(struct pair *p, SSL_CTX *cctx, SSL_CTX *sctx, const char *server_name)
{
	p->cctx = cctx;
	p->sctx = sctx;
	assert_non_null(p->c = tls_conn_new(cctx, 0, server_name));
	assert_non_null(p->s = tls_conn_new(sctx, 1, NULL));
}

static void
pair_free(struct pair *p)
{
	tls_conn_free(p->c);
	tls_conn_free(p->s);
	SSL_CTX_free(p->cctx);
	SSL_CTX_free(p->sctx);
}

/*
 * Moves all of from's pending output into to, chunk bytes per feed (0: all at once). With small
 * chunks the receiver's handshake runs after every feed, so partial records are exercised. Returns
 * the first feed error (a failed receiver refuses input) or 0.
 */
static int
pump(struct tls_conn *from, struct tls_conn *to, size_t chunk)
{
	struct pg_buf b;
	size_t off, n;
	int r = 0;

	pg_buf_init(&b, OUT_MAX);
	assert_int_equal(tls_conn_take_output(from, &b), 0);
	for (off = 0; off < b.len && r == 0; off += n) {
		n = chunk == 0 || chunk > b.len - off ? b.len - off : chunk;
		if ((r = tls_conn_feed(to, b.p + off, n)) == 0 && chunk != 0)
			(void)tls_conn_handshake(to);
	}
	pg_buf_free(&b);
	return r;
}

/* Runs both handshakes until both finish or one fails; *cr and *sr get their last results. */
static void
run_handshake(struct pair *p, size_t chunk, int *cr, int *sr)
{
	int rc = 0, rs = 0, i;

	/* TLS 1.3 needs two round trips here, 1.2 three; the bound only stops a livelock. */
	for (i = 0; i < 10; i++) {
		rc = tls_conn_handshake(p->c);
		(void)pump(p->c, p->s, chunk);
		rs = tls_conn_handshake(p->s);
		(void)pump(p->s, p->c, chunk);
		if (rc < 0 || rs < 0 || (rc == 1 && rs == 1))
			break;
	}
	/* One more turn lets the side that did not fail see the other's alert. */
	if (rc < 0 && rs >= 0)
		rs = tls_conn_handshake(p->s);
	if (rs < 0 && rc >= 0)
		rc = tls_conn_handshake(p->c);
	*cr = rc;
	*sr = rs;
}

static void
handshake_ok(struct pair *p, size_t chunk)
{
	int rc, rs;

	run_handshake(p, chunk, &rc, &rs);
	if (rc != 1 || rs != 1)
		fail_msg("handshake: client %d (%s), server %d (%s)", rc, tls_conn_error(p->c), rs,
		    tls_conn_error(p->s));
}

/* Writes msg on from and checks to reads exactly it, feeding chunk bytes at a time. */
static void
send_expect(struct tls_conn *from, struct tls_conn *to, const char *msg, size_t chunk)
{
	struct pg_buf wire, got;
	uint8_t tmp[7];	/* smaller than msg, so reads are split too */
	size_t off, n, k;

	pg_buf_init(&wire, OUT_MAX);
	pg_buf_init(&got, OUT_MAX);
	assert_int_equal(tls_conn_write(from, (const uint8_t *)msg, strlen(msg)), 0);
	assert_int_equal(tls_conn_take_output(from, &wire), 0);
	assert_true(wire.len > strlen(msg));
	for (off = 0; off < wire.len; off += n) {
		n = chunk == 0 || chunk > wire.len - off ? wire.len - off : chunk;
		assert_int_equal(tls_conn_feed(to, wire.p + off, n), 0);
		do {
			assert_int_equal(tls_conn_read(to, tmp, sizeof(tmp), &k), 0);
			assert_int_equal(pg_buf_append(&got, tmp, k), 0);
		} while (k > 0);
	}
	assert_int_equal(got.len, strlen(msg));
	assert_memory_equal(got.p, msg, got.len);
	pg_buf_free(&wire);
	pg_buf_free(&got);
}

static void
assert_contains(const char *s, const char *part)
{
	if (strstr(s, part) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", s, part);
}

/* Handshakes and data */

static void
test_tls13_echo(void **state)
{
	struct pair p;

	pair_init(&p, client_ctx(fx.ca, 1), server_ctx(fx.leaf_cert, fx.leaf_key), "localhost");
	handshake_ok(&p, 0);
	assert_string_equal(tls_conn_version(p.c), "TLSv1.3");
	assert_string_equal(tls_conn_version(p.s), "TLSv1.3");
	send_expect(p.c, p.s, "GET /hub/health HTTP/1.1\r\nHost: localhost\r\n\r\n", 0);
	send_expect(p.s, p.c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
	/* The server's session tickets reached the client as reads with no data. */
	send_expect(p.c, p.s, "second request", 0);
	assert_string_equal(tls_conn_error(p.c), "");
	assert_string_equal(tls_conn_error(p.s), "");
	pair_free(&p);
}

static void
test_tls12_forced_on_client(void **state)
{
	struct pair p;

	pair_init(&p, client_ctx(fx.ca, 1), server_ctx(fx.leaf_cert, fx.leaf_key), "localhost");
	assert_int_equal(SSL_CTX_set_max_proto_version(p.cctx, TLS1_2_VERSION), 1);
	/* Contexts are read when the SSL is made; make the client again. */
	tls_conn_free(p.c);
	assert_non_null(p.c = tls_conn_new(p.cctx, 0, "localhost"));
	handshake_ok(&p, 0);
	assert_string_equal(tls_conn_version(p.c), "TLSv1.2");
	assert_string_equal(tls_conn_version(p.s), "TLSv1.2");
	send_expect(p.c, p.s, "ping over 1.2", 0);
	send_expect(p.s, p.c, "pong over 1.2", 0);
	pair_free(&p);
}

static void
test_tls12_forced_on_server(void **state)
{
	struct pair p;
	SSL_CTX *sctx = server_ctx(fx.leaf_cert, fx.leaf_key);

	assert_int_equal(SSL_CTX_set_max_proto_version(sctx, TLS1_2_VERSION), 1);
	pair_init(&p, client_ctx(fx.ca, 1), sctx, "localhost");
	handshake_ok(&p, 0);
	assert_string_equal(tls_conn_version(p.c), "TLSv1.2");
	send_expect(p.c, p.s, "ping", 0);
	send_expect(p.s, p.c, "pong", 0);
	pair_free(&p);
}

static void
test_tls11_refused(void **state)
{
	struct pair p;
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	int rc, rs;

	/* A peer that offers only TLS 1.1 meets our floor. */
	assert_non_null(cctx);
	SSL_CTX_set_security_level(cctx, 0);
	assert_int_equal(SSL_CTX_set_min_proto_version(cctx, TLS1_1_VERSION), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(cctx, TLS1_1_VERSION), 1);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
	pair_init(&p, cctx, server_ctx(fx.leaf_cert, fx.leaf_key), NULL);
	run_handshake(&p, 0, &rc, &rs);
	assert_int_equal(rs, PG_ETLS);
	assert_contains(tls_conn_error(p.s), "protocol");
	print_message("server: %s\n", tls_conn_error(p.s));
	pair_free(&p);
}

static void
test_one_byte_feeds(void **state)
{
	struct pair p;

	pair_init(&p, client_ctx(fx.ca, 1), server_ctx(fx.leaf_cert, fx.leaf_key), "localhost");
	handshake_ok(&p, 1);
	send_expect(p.c, p.s, "split into one-byte feeds", 1);
	send_expect(p.s, p.c, "and back again, byte by byte", 1);
	pair_free(&p);
}

static void
test_large_write(void **state)
{
	struct pair p;
	char *big;

	/* Several full 16 KiB records in one write and one take. */
	assert_non_null(big = malloc(100000));
	memset(big, 'x', 99999);
	big[99999] = '\0';
	pair_init(&p, client_ctx(fx.ca, 1), server_ctx(fx.leaf_cert, fx.leaf_key), "localhost");
	handshake_ok(&p, 0);
	send_expect(p.s, p.c, big, 0);
	send_expect(p.s, p.c, big, 4000);
	pair_free(&p);
	free(big);
}

static void
test_close_notify(void **state)
{
	struct pair p;
	uint8_t tmp[16];
	size_t got;

	pair_init(&p, client_ctx(fx.ca, 1), server_ctx(fx.leaf_cert, fx.leaf_key), "localhost");
	handshake_ok(&p, 0);
	send_expect(p.c, p.s, "bye", 0);
	assert_int_equal(tls_conn_shutdown(p.c), 0);
	assert_int_equal(pump(p.c, p.s, 0), 0);
	assert_int_equal(tls_conn_read(p.s, tmp, sizeof(tmp), &got), PG_ECLOSED);
	assert_int_equal(tls_conn_read(p.s, tmp, sizeof(tmp), &got), PG_ECLOSED);
	/* Half-close: the server may still answer before closing its side. */
	send_expect(p.s, p.c, "last words", 0);
	assert_int_equal(tls_conn_shutdown(p.s), 0);
	assert_int_equal(pump(p.s, p.c, 0), 0);
	assert_int_equal(tls_conn_read(p.c, tmp, sizeof(tmp), &got), PG_ECLOSED);
	/* Writing after our own close_notify is a failure, not a crash. */
	assert_int_equal(tls_conn_write(p.c, tmp, 1), PG_ETLS);
	pair_free(&p);
}

/* Verification */

static void
test_verify_ca_by_name_and_ip(void **state)
{
	struct pair p;

	pair_init(&p, client_ctx(fx.ca, 1), server_ctx(fx.leaf_cert, fx.leaf_key), "localhost");
	handshake_ok(&p, 0);
	pair_free(&p);

	pair_init(&p, client_ctx(fx.ca, 1), server_ctx(fx.leaf_cert, fx.leaf_key), "127.0.0.1");
	handshake_ok(&p, 0);
	pair_free(&p);
}

static void
test_verify_self_signed_fails(void **state)
{
	struct pair p;
	int rc, rs;

	pair_init(&p, client_ctx(fx.ca, 1), server_ctx(fx.self_cert, fx.self_key), "localhost");
	run_handshake(&p, 0, &rc, &rs);
	assert_int_equal(rc, PG_ETLS);
	assert_contains(tls_conn_error(p.c), "verify");
	assert_contains(tls_conn_error(p.c), "self-signed");
	print_message("client: %s; server: %s\n", tls_conn_error(p.c), tls_conn_error(p.s));
	/* The client's alert told the server why. */
	assert_int_equal(rs, PG_ETLS);
	assert_contains(tls_conn_error(p.s), "alert");
	/* Sticky: the dead connection keeps failing the same way. */
	assert_int_equal(tls_conn_handshake(p.c), PG_ETLS);
	assert_contains(tls_conn_error(p.c), "self-signed");
	assert_int_equal(ERR_peek_error(), 0);
	pair_free(&p);
}

static void
test_verify_system_store_rejects_test_ca(void **state)
{
	struct pair p;
	int rc, rs;

	pair_init(&p, client_ctx(NULL, 1), server_ctx(fx.leaf_cert, fx.leaf_key), "localhost");
	run_handshake(&p, 0, &rc, &rs);
	assert_int_equal(rc, PG_ETLS);
	assert_contains(tls_conn_error(p.c), "certificate verify failed: ");
	print_message("client: %s\n", tls_conn_error(p.c));
	pair_free(&p);
}

static void
test_no_verify_accepts_self_signed(void **state)
{
	struct pair p;

	pair_init(&p, client_ctx(NULL, 0), server_ctx(fx.self_cert, fx.self_key), "localhost");
	handshake_ok(&p, 0);
	send_expect(p.c, p.s, "GET /hub/health HTTP/1.1\r\n\r\n", 0);
	pair_free(&p);

	/* No name at all is fine when nothing is verified. */
	pair_init(&p, client_ctx(NULL, 0), server_ctx(fx.self_cert, fx.self_key), NULL);
	handshake_ok(&p, 0);
	pair_free(&p);
}

static void
test_name_mismatch_fails(void **state)
{
	struct pair p;
	int rc, rs;

	pair_init(&p, client_ctx(fx.ca, 1), server_ctx(fx.leaf_cert, fx.leaf_key), "example.com");
	run_handshake(&p, 0, &rc, &rs);
	assert_int_equal(rc, PG_ETLS);
	assert_string_equal(tls_conn_error(p.c), "certificate verify failed: hostname mismatch");
	pair_free(&p);

	pair_init(&p, client_ctx(fx.ca, 1), server_ctx(fx.leaf_cert, fx.leaf_key), "127.0.0.2");
	run_handshake(&p, 0, &rc, &rs);
	assert_int_equal(rc, PG_ETLS);
	assert_string_equal(tls_conn_error(p.c), "certificate verify failed: IP address mismatch");
	pair_free(&p);

	/* A wildcard-free leaf must not match a subdomain either. */
	pair_init(&p, client_ctx(fx.ca, 1), server_ctx(fx.leaf_cert, fx.leaf_key), "a.localhost");
	run_handshake(&p, 0, &rc, &rs);
	assert_int_equal(rc, PG_ETLS);
	assert_contains(tls_conn_error(p.c), "hostname mismatch");
	pair_free(&p);
}

static void
test_verifying_client_needs_a_name(void **state)
{
	SSL_CTX *ctx = client_ctx(fx.ca, 1);

	assert_null(tls_conn_new(ctx, 0, NULL));
	SSL_CTX_free(ctx);
}

static void
test_alpn_without_http11_refused(void **state)
{
	static const unsigned char h2[] = "\x02h2";
	struct pair p;
	int rc, rs;

	pair_init(&p, client_ctx(fx.ca, 1), server_ctx(fx.leaf_cert, fx.leaf_key), "localhost");
	assert_int_equal(SSL_CTX_set_alpn_protos(p.cctx, h2, sizeof(h2) - 1), 0);
	tls_conn_free(p.c);
	assert_non_null(p.c = tls_conn_new(p.cctx, 0, "localhost"));
	run_handshake(&p, 0, &rc, &rs);
	assert_int_equal(rs, PG_ETLS);
	assert_int_equal(rc, PG_ETLS);
	assert_contains(tls_conn_error(p.c), "no application protocol");
	pair_free(&p);
}

/* Garbage and misuse */

static void
test_garbage_to_server(void **state)
{
	static const uint8_t junk[] = { 0x16, 0x03, 0x01, 0xff, 0xff, 0xde, 0xad, 0xbe, 0xef,
		0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06 };
	SSL_CTX *sctx = server_ctx(fx.leaf_cert, fx.leaf_key);
	struct tls_conn *s;
	struct pg_buf out;
	uint8_t tmp[16];
	size_t got;
	unsigned i;

	/* Random bytes, then a handshake header with an impossible length. */
	for (i = 0; i < 2; i++) {
		assert_non_null(s = tls_conn_new(sctx, 1, NULL));
		if (i == 0) {
			uint8_t rnd[64];

			srand(42);
			for (got = 0; got < sizeof(rnd); got++)
				rnd[got] = (uint8_t)rand();
			rnd[0] = 0x47;	/* not a TLS content type */
			assert_int_equal(tls_conn_feed(s, rnd, sizeof(rnd)), 0);
		} else {
			assert_int_equal(tls_conn_feed(s, junk, sizeof(junk)), 0);
		}
		assert_int_equal(tls_conn_handshake(s), PG_ETLS);
		assert_true(tls_conn_error(s)[0] != '\0');
		print_message("server: %s\n", tls_conn_error(s));
		assert_int_equal(ERR_peek_error(), 0);
		/* Everything after is a clean refusal. */
		assert_int_equal(tls_conn_feed(s, junk, sizeof(junk)), PG_ETLS);
		assert_int_equal(tls_conn_handshake(s), PG_ETLS);
		assert_int_equal(tls_conn_read(s, tmp, sizeof(tmp), &got), PG_ETLS);
		assert_int_equal(tls_conn_write(s, tmp, 1), PG_ETLS);
		assert_int_equal(tls_conn_shutdown(s), PG_ETLS);
		pg_buf_init(&out, OUT_MAX);
		assert_int_equal(tls_conn_take_output(s, &out), 0);
		pg_buf_free(&out);
		tls_conn_free(s);
	}
	SSL_CTX_free(sctx);
}

static void
test_plain_http_to_server(void **state)
{
	static const char req[] = "GET /hub/health HTTP/1.1\r\nHost: x\r\n\r\n";
	SSL_CTX *sctx = server_ctx(fx.leaf_cert, fx.leaf_key);
	struct tls_conn *s;

	assert_non_null(s = tls_conn_new(sctx, 1, NULL));
	assert_int_equal(tls_conn_feed(s, (const uint8_t *)req, sizeof(req) - 1), 0);
	assert_int_equal(tls_conn_handshake(s), PG_ETLS);
	assert_string_equal(tls_conn_error(s), "http request");
	tls_conn_free(s);
	SSL_CTX_free(sctx);
}

static void
test_plain_http_to_client(void **state)
{
	/* What a probe sees when an instance's JupyterHub speaks plain http. */
	static const char resp[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
	SSL_CTX *cctx = client_ctx(NULL, 0);
	struct tls_conn *c;
	struct pg_buf out;

	assert_non_null(c = tls_conn_new(cctx, 0, "localhost"));
	assert_int_equal(tls_conn_handshake(c), 0);
	pg_buf_init(&out, OUT_MAX);
	assert_int_equal(tls_conn_take_output(c, &out), 0);
	assert_true(out.len > 0);	/* the ClientHello */
	pg_buf_free(&out);
	assert_int_equal(tls_conn_feed(c, (const uint8_t *)resp, sizeof(resp) - 1), 0);
	assert_int_equal(tls_conn_handshake(c), PG_ETLS);
	assert_string_equal(tls_conn_error(c), "wrong version number");
	tls_conn_free(c);
	SSL_CTX_free(cctx);
}

static void
test_errors_do_not_leak(void **state)
{
	struct pair bad, good;
	int rc, rs;

	pair_init(&bad, client_ctx(fx.ca, 1), server_ctx(fx.self_cert, fx.self_key), "localhost");
	pair_init(&good, client_ctx(fx.ca, 1), server_ctx(fx.leaf_cert, fx.leaf_key),
	    "localhost");
	/* Interleave: the bad pair fails halfway through the good one's handshake. */
	assert_int_equal(tls_conn_handshake(good.c), 0);
	assert_int_equal(pump(good.c, good.s, 0), 0);
	run_handshake(&bad, 0, &rc, &rs);
	assert_int_equal(rc, PG_ETLS);
	assert_int_equal(ERR_peek_error(), 0);
	handshake_ok(&good, 0);
	send_expect(good.c, good.s, "unaffected", 0);
	assert_string_equal(tls_conn_error(good.c), "");
	assert_string_equal(tls_conn_error(good.s), "");
	pair_free(&bad);
	pair_free(&good);
}

static void
test_misuse_before_handshake(void **state)
{
	SSL_CTX *cctx = client_ctx(fx.ca, 1);
	struct tls_conn *c;
	uint8_t tmp[4];
	size_t got = 99;

	assert_non_null(c = tls_conn_new(cctx, 0, "localhost"));
	assert_int_equal(tls_conn_read(c, tmp, sizeof(tmp), &got), PG_EINVAL);
	assert_int_equal(got, 99);
	assert_int_equal(tls_conn_write(c, tmp, sizeof(tmp)), PG_EINVAL);
	assert_int_equal(tls_conn_shutdown(c), PG_EINVAL);
	tls_conn_free(c);
	tls_conn_free(NULL);
	SSL_CTX_free(cctx);
}

static void
test_limits(void **state)
{
	SSL_CTX *cctx = client_ctx(fx.ca, 1);
	struct tls_conn *c;
	struct pg_buf small, out;
	uint8_t *big;

	assert_non_null(c = tls_conn_new(cctx, 0, "localhost"));
	assert_non_null(big = calloc(1, TLS_CONN_MAX_INPUT + 1));
	assert_int_equal(tls_conn_feed(c, big, TLS_CONN_MAX_INPUT + 1), PG_ETOOBIG);
	assert_int_equal(tls_conn_feed(c, big, TLS_CONN_MAX_INPUT), 0);
	assert_int_equal(tls_conn_feed(c, big, 1), PG_ETOOBIG);
	free(big);

	/* A destination too small for the ClientHello takes nothing; a big one takes it all. */
	assert_int_equal(tls_conn_handshake(c), PG_ETLS);	/* zeros are no TLS */
	tls_conn_free(c);
	assert_non_null(c = tls_conn_new(cctx, 0, "localhost"));
	assert_int_equal(tls_conn_handshake(c), 0);
	pg_buf_init(&small, 16);
	pg_buf_init(&out, OUT_MAX);
	assert_int_equal(tls_conn_take_output(c, &small), PG_ETOOBIG);
	assert_int_equal(small.len, 0);
	assert_int_equal(tls_conn_take_output(c, &out), 0);
	assert_true(out.len > 100);
	assert_int_equal(out.p[0], 0x16);	/* handshake record */
	out.len = 0;
	assert_int_equal(tls_conn_take_output(c, &out), 0);
	assert_int_equal(out.len, 0);
	pg_buf_free(&small);
	pg_buf_free(&out);
	tls_conn_free(c);
	SSL_CTX_free(cctx);
}

/* Contexts */

static void
test_ctx_errors(void **state)
{
	char missing[160], err[512];

	snprintf(missing, sizeof(missing), "%s/missing.pem", fx.dir);
	assert_null(tls_server_ctx_new(missing, fx.leaf_key, err, sizeof(err)));
	assert_contains(err, missing);
	assert_contains(err, "No such file");
	print_message("%s\n", err);
	assert_int_equal(ERR_peek_error(), 0);

	assert_null(tls_server_ctx_new(fx.leaf_cert, fx.self_key, err, sizeof(err)));
	assert_contains(err, "key values mismatch");
	assert_int_equal(ERR_peek_error(), 0);

	/* A key of another type lands in its own slot, with no certificate beside it. */
	assert_null(tls_server_ctx_new(fx.leaf_cert, fx.rsa_key, err, sizeof(err)));
	print_message("rsa key with ec cert: %s\n", err);
	assert_contains(err, "does not match");
	assert_int_equal(ERR_peek_error(), 0);

	/* An encrypted key fails instead of prompting, and the message holds no passphrase. */
	assert_null(tls_server_ctx_new(fx.leaf_cert, fx.enc_key, err, sizeof(err)));
	assert_contains(err, fx.enc_key);
	assert_null(strstr(err, "not-a-real-secret"));
	print_message("%s\n", err);
	assert_int_equal(ERR_peek_error(), 0);

	/* A key file is no CA bundle. */
	assert_null(tls_client_ctx_new(fx.leaf_key, 1, err, sizeof(err)));
	assert_contains(err, fx.leaf_key);
	print_message("%s\n", err);
	assert_int_equal(ERR_peek_error(), 0);

	/* Truncated messages stay terminated. */
	assert_null(tls_client_ctx_new(missing, 1, err, 8));
	assert_int_equal(strlen(err), 7);
}

/* A real peer: openssl s_server */

struct real_result {
	int skipped;
	char what[256];	/* "" on success */
	char head[64];
	char version[16];
};

static int
deadline_ms(const struct timespec *until)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (until->tv_sec - now.tv_sec) * 1000 + (until->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (int)ms;
}

/* Reads s_server's stdout until "ACCEPT 127.0.0.1:<port>". Returns the port or 0. */
static int
read_accept_port(int fd, const struct timespec *until)
{
	char line[512];
	size_t len = 0;
	char *at;
	ssize_t n;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	while (len < sizeof(line) - 1) {
		if (poll(&pfd, 1, deadline_ms(until)) != 1)
			return 0;
		if ((n = read(fd, line + len, sizeof(line) - 1 - len)) <= 0)
			return 0;
		len += (size_t)n;
		line[len] = '\0';
		if ((at = strstr(line, "ACCEPT 127.0.0.1:")) != NULL && strchr(at, '\n') != NULL)
			return atoi(at + strlen("ACCEPT 127.0.0.1:"));
	}
	return 0;
}

static int
send_all(int fd, struct pg_buf *b)
{
	size_t off = 0;
	ssize_t n;

	while (off < b->len) {
		if ((n = send(fd, b->p + off, b->len - off, MSG_NOSIGNAL)) <= 0)
			return -1;
		off += (size_t)n;
	}
	b->len = 0;
	return 0;
}

/*
 * Does an HTTPS GET against 127.0.0.1:port with our engine over a blocking socket whose reads and
 * writes time out, so it always returns. No asserts here: the caller must reap the server first.
 */
static void
get_over_real_socket(int port, struct real_result *res)
{
	static const char req[] = "GET / HTTP/1.0\r\n\r\n";
	struct timeval tv = { .tv_sec = 5 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct tls_conn *c = NULL;
	SSL_CTX *cctx = NULL;
	uint8_t rbuf[4096];
	struct pg_buf out, in;
	int fd, r = 0, i;
	size_t got;
	ssize_t n;

	pg_buf_init(&out, OUT_MAX);
	pg_buf_init(&in, OUT_MAX);
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		snprintf(res->what, sizeof(res->what), "connect: %s", strerror(errno));
		goto out;
	}
	if ((cctx = tls_client_ctx_new(fx.ca, 1, res->what, sizeof(res->what))) == NULL)
		goto out;
	if ((c = tls_conn_new(cctx, 0, "127.0.0.1")) == NULL) {
		snprintf(res->what, sizeof(res->what), "tls_conn_new failed");
		goto out;
	}
	for (i = 0; i < 20 && (r = tls_conn_handshake(c)) == 0; i++) {
		if (tls_conn_take_output(c, &out) != 0 || send_all(fd, &out) != 0 ||
		    (n = recv(fd, rbuf, sizeof(rbuf), 0)) <= 0 ||
		    tls_conn_feed(c, rbuf, (size_t)n) != 0)
			break;
	}
	if (r != 1) {
		snprintf(res->what, sizeof(res->what), "handshake %d: %s", r, tls_conn_error(c));
		goto out;
	}
	snprintf(res->version, sizeof(res->version), "%s", tls_conn_version(c));
	if (tls_conn_write(c, (const uint8_t *)req, sizeof(req) - 1) != 0 ||
	    tls_conn_take_output(c, &out) != 0 || send_all(fd, &out) != 0) {
		snprintf(res->what, sizeof(res->what), "send request: %s", tls_conn_error(c));
		goto out;
	}
	/* -www answers and closes; stop at close_notify, at EOF, or once the head is in. */
	for (i = 0; i < 200 && in.len < 64; i++) {
		if ((n = recv(fd, rbuf, sizeof(rbuf), 0)) <= 0 ||
		    tls_conn_feed(c, rbuf, (size_t)n) != 0)
			break;
		while ((r = tls_conn_read(c, rbuf, sizeof(rbuf), &got)) == 0 && got > 0)
			(void)pg_buf_append(&in, rbuf, got);
		if (r != 0)
			break;
	}
	if (r != 0 && r != PG_ECLOSED) {
		snprintf(res->what, sizeof(res->what), "read %d: %s", r, tls_conn_error(c));
		goto out;
	}
	snprintf(res->head, sizeof(res->head), "%.*s", (int)(in.len < 63 ? in.len : 63),
	    (const char *)in.p);
	if (tls_conn_shutdown(c) == 0 && tls_conn_take_output(c, &out) == 0)
		(void)send_all(fd, &out);
out:
	if (fd >= 0)
		close(fd);
	tls_conn_free(c);
	SSL_CTX_free(cctx);
	pg_buf_free(&out);
	pg_buf_free(&in);
}

static void
test_real_openssl_s_server(void **state)
{
	struct real_result res = { 0 };
	struct timespec until;
	int pipefd[2], devnull, status, port;
	pid_t pid;

	assert_int_equal(pipe(pipefd), 0);
	if ((pid = fork()) == 0) {
		/* Dies with the test even if the test is killed before it reaps this. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		dup2(pipefd[1], 1);
		dup2(devnull, 2);
		close(pipefd[0]);
		execlp("openssl", "openssl", "s_server", "-accept", "127.0.0.1:0",
		    "-cert", fx.leaf_cert, "-key", fx.leaf_key, "-www", "-naccept", "1",
		    (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	close(pipefd[1]);

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += 10;
	if ((port = read_accept_port(pipefd[0], &until)) > 0)
		get_over_real_socket(port, &res);
	else
		snprintf(res.what, sizeof(res.what), "no ACCEPT line from openssl s_server");
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	close(pipefd[0]);
	if (port == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 127)
		skip();	/* no openssl binary */

	if (res.what[0] != '\0')
		fail_msg("%s", res.what);
	assert_string_equal(res.version, "TLSv1.3");
	assert_contains(res.head, "HTTP/1.0 200 ok");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls13_echo),
		cmocka_unit_test(test_tls12_forced_on_client),
		cmocka_unit_test(test_tls12_forced_on_server),
		cmocka_unit_test(test_tls11_refused),
		cmocka_unit_test(test_one_byte_feeds),
		cmocka_unit_test(test_large_write),
		cmocka_unit_test(test_close_notify),
		cmocka_unit_test(test_verify_ca_by_name_and_ip),
		cmocka_unit_test(test_verify_self_signed_fails),
		cmocka_unit_test(test_verify_system_store_rejects_test_ca),
		cmocka_unit_test(test_no_verify_accepts_self_signed),
		cmocka_unit_test(test_name_mismatch_fails),
		cmocka_unit_test(test_verifying_client_needs_a_name),
		cmocka_unit_test(test_alpn_without_http11_refused),
		cmocka_unit_test(test_garbage_to_server),
		cmocka_unit_test(test_plain_http_to_server),
		cmocka_unit_test(test_plain_http_to_client),
		cmocka_unit_test(test_errors_do_not_leak),
		cmocka_unit_test(test_misuse_before_handshake),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_ctx_errors),
		cmocka_unit_test(test_real_openssl_s_server),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
