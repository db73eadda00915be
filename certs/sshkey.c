#include "certs/sshkey.h"
#include "core/err.h"
#include "core/sshwire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

struct sshkey {
	enum sshkey_type type;
	EVP_PKEY *pkey;
	int has_private;
};

static const struct ktype {
	enum sshkey_type type;
	const char *name;	/* in blobs */
	const char *curve;	/* SSH curve identifier (RFC 5656 10.1) */
	const char *group;	/* OpenSSL group name */
	const char *sig_algs;
	const char *digest;	/* ECDSA hash (RFC 5656 6.2.1) */
} ktypes[] = {
	{ SSHKEY_ED25519, "ssh-ed25519", NULL, NULL, "ssh-ed25519", NULL },
	{ SSHKEY_ECDSA_P256, "ecdsa-sha2-nistp256", "nistp256", "prime256v1", "ecdsa-sha2-nistp256",
	  "SHA256" },
	{ SSHKEY_ECDSA_P384, "ecdsa-sha2-nistp384", "nistp384", "secp384r1", "ecdsa-sha2-nistp384",
	  "SHA384" },
	{ SSHKEY_ECDSA_P521, "ecdsa-sha2-nistp521", "nistp521", "secp521r1", "ecdsa-sha2-nistp521",
	  "SHA512" },
	{ SSHKEY_RSA, "ssh-rsa", NULL, NULL, "rsa-sha2-512,rsa-sha2-256", NULL },
};
#define NKTYPES (sizeof(ktypes) / sizeof(ktypes[0]))

static const struct ktype *
ktype_of(enum sshkey_type t)
{
	for (size_t i = 0; i < NKTYPES; i++)
		if (ktypes[i].type == t)
			return &ktypes[i];
	return &ktypes[0];
}

static const struct ktype *
ktype_by_name(struct pg_slice name)
{
	for (size_t i = 0; i < NKTYPES; i++)
		if (ssh_slice_eq(name, ktypes[i].name))
			return &ktypes[i];
	return NULL;
}

static int
key_new(enum sshkey_type t, EVP_PKEY *pkey, int priv, struct sshkey **out)
{
	struct sshkey *k = calloc(1, sizeof(*k));

	if (k == NULL) {
		EVP_PKEY_free(pkey);
		return PG_ENOMEM;
	}
	k->type = t;
	k->pkey = pkey;
	k->has_private = priv;
	*out = k;
	return 0;
}

void
sshkey_free(struct sshkey *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);	/* OpenSSL clears private key material on free */
	free(k);
}

enum sshkey_type
sshkey_type(const struct sshkey *k)
{
	return k->type;
}

const char *
sshkey_type_name(const struct sshkey *k)
{
	return ktype_of(k->type)->name;
}

int
sshkey_has_private(const struct sshkey *k)
{
	return k->has_private;
}

const char *
sshkey_sig_algs(const struct sshkey *k)
{
	return ktype_of(k->type)->sig_algs;
}

int
sshkey_can_sign_as(const struct sshkey *k, const char *alg)
{
	const char *algs = sshkey_sig_algs(k);

	return ssh_namelist_has((struct pg_slice){ (const uint8_t *)algs, strlen(algs) }, alg);
}

int
sshkey_equal_public(const struct sshkey *a, const struct sshkey *b)
{
	return a->type == b->type && EVP_PKEY_eq(a->pkey, b->pkey) == 1;
}

/* Key construction from parts */

static int
rsa_bits_ok(EVP_PKEY *pkey)
{
	int bits = EVP_PKEY_get_bits(pkey);

	return bits >= SSHKEY_RSA_MIN_BITS && bits <= SSHKEY_RSA_MAX_BITS;
}

/* RSA from n, e and, for a private key, d, p, q, iqmp (the OpenSSH private format's fields). */
static int
rsa_from_parts(const BIGNUM *n, const BIGNUM *e, const BIGNUM *d, const BIGNUM *p,
    const BIGNUM *q, const BIGNUM *iqmp, EVP_PKEY **out)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *dmp1 = NULL, *dmq1 = NULL, *tmp = NULL;
	BN_CTX *bnctx = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	int ok, r = PG_EPARSE;

	ok = bld != NULL && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
	if (ok && d != NULL) {
		/* OpenSSH stores no CRT exponents; derive them: d mod (p-1), d mod (q-1). */
		ok = (bnctx = BN_CTX_new()) != NULL && (dmp1 = BN_new()) != NULL &&
		    (dmq1 = BN_new()) != NULL && (tmp = BN_new()) != NULL &&
		    BN_sub(tmp, p, BN_value_one()) && BN_mod(dmp1, d, tmp, bnctx) &&
		    BN_sub(tmp, q, BN_value_one()) && BN_mod(dmq1, d, tmp, bnctx) &&
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d) &&
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p) &&
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q) &&
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dmp1) &&
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dmq1) &&
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, iqmp);
	}
	ok = ok && (params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) != NULL &&
	    EVP_PKEY_fromdata_init(ctx) == 1 &&
	    EVP_PKEY_fromdata(ctx, &pkey, d != NULL ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
		params) == 1;
	if (ok && rsa_bits_ok(pkey)) {
		*out = pkey;
		pkey = NULL;
		r = 0;
	}
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(dmp1);
	BN_clear_free(dmq1);
	BN_clear_free(tmp);
	BN_CTX_free(bnctx);
	return r;
}

/* EC from an encoded point and, for a private key, the scalar. The point is checked on the curve. */
static int
ec_from_parts(const struct ktype *kt, struct pg_slice q, const BIGNUM *d, EVP_PKEY **out)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL, *check = NULL;
	EVP_PKEY *pkey = NULL;
	int ok, r = PG_EPARSE;

	/* RFC 5656 3.1: uncompressed points only, as OpenSSH sends. */
	if (q.len == 0 || q.p[0] != 0x04)
		goto out;
	ok = bld != NULL &&
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, kt->group, 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, q.p, q.len) &&
	    (d == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d)) &&
	    (params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) != NULL &&
	    EVP_PKEY_fromdata_init(ctx) == 1 &&
	    EVP_PKEY_fromdata(ctx, &pkey, d != NULL ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
		params) == 1 &&
	    (check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) != NULL &&
	    EVP_PKEY_public_check(check) == 1;
	if (ok) {
		*out = pkey;
		pkey = NULL;
		r = 0;
	}
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_CTX_free(check);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

/* Public blobs */

/* Reads the type-specific public fields after the type name. */
static int
get_public(const struct ktype *kt, struct pg_slice *s, EVP_PKEY **out)
{
	struct pg_slice a, b;
	BIGNUM *e = NULL, *n = NULL;
	int r;

	switch (kt->type) {
	case SSHKEY_ED25519:
		/* string ENC(A), 32 bytes (RFC 8709 4) */
		if ((r = ssh_get_string(s, &a)) != 0 || a.len != 32)
			return PG_EPARSE;
		*out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, a.p, a.len);
		return *out != NULL ? 0 : PG_EPARSE;
	case SSHKEY_ECDSA_P256:
	case SSHKEY_ECDSA_P384:
	case SSHKEY_ECDSA_P521:
		/* string identifier (the curve, repeated), string Q */
		if (ssh_get_string(s, &a) != 0 || ssh_get_string(s, &b) != 0 ||
		    !ssh_slice_eq(a, kt->curve))
			return PG_EPARSE;
		return ec_from_parts(kt, b, NULL, out);
	case SSHKEY_RSA:
		/* mpint e, mpint n (RFC 4253 6.6) */
		if ((r = ssh_get_mpint_bn(s, &e)) != 0 || (r = ssh_get_mpint_bn(s, &n)) != 0)
			goto rsa_out;
		r = rsa_from_parts(n, e, NULL, NULL, NULL, NULL, out);
rsa_out:
		BN_free(e);
		BN_free(n);
		return r;
	}
	return PG_EPARSE;
}

int
sshkey_from_blob(struct pg_slice blob, struct sshkey **out)
{
	const struct ktype *kt;
	struct pg_slice name;
	EVP_PKEY *pkey = NULL;
	int r;

	if (ssh_get_string(&blob, &name) != 0 || (kt = ktype_by_name(name)) == NULL)
		return PG_EPARSE;
	if ((r = get_public(kt, &blob, &pkey)) != 0)
		return r;
	if (ssh_get_end(blob) != 0) {
		EVP_PKEY_free(pkey);
		return PG_EPARSE;
	}
	return key_new(kt->type, pkey, 0, out);
}

static int
put_bn_param(struct pg_buf *out, EVP_PKEY *pkey, const char *param)
{
	BIGNUM *bn = NULL;
	int r;

	if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
		return PG_EINVAL;
	r = ssh_put_mpint_bn(out, bn);
	BN_free(bn);
	return r;
}

int
sshkey_to_blob(const struct sshkey *k, struct pg_buf *out)
{
	const struct ktype *kt = ktype_of(k->type);
	size_t old = out->len, n;
	uint8_t pt[160];
	int r;

	if ((r = ssh_put_cstring(out, kt->name)) != 0)
		return r;
	switch (k->type) {
	case SSHKEY_ED25519:
		n = 32;
		if (EVP_PKEY_get_raw_public_key(k->pkey, pt, &n) != 1 || n != 32)
			r = PG_EINVAL;
		else
			r = ssh_put_string(out, pt, n);
		break;
	case SSHKEY_ECDSA_P256:
	case SSHKEY_ECDSA_P384:
	case SSHKEY_ECDSA_P521:
		if (EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
		    sizeof(pt), &n) != 1)
			r = PG_EINVAL;
		else if ((r = ssh_put_cstring(out, kt->curve)) == 0)
			r = ssh_put_string(out, pt, n);
		break;
	case SSHKEY_RSA:
		if ((r = put_bn_param(out, k->pkey, OSSL_PKEY_PARAM_RSA_E)) == 0)
			r = put_bn_param(out, k->pkey, OSSL_PKEY_PARAM_RSA_N);
		break;
	}
	if (r != 0)
		out->len = old;
	return r;
}

/* Signatures */

static const char *
rsa_digest(const char *alg)
{
	if (strcmp(alg, "rsa-sha2-256") == 0)
		return "SHA256";
	if (strcmp(alg, "rsa-sha2-512") == 0)
		return "SHA512";
	return NULL;
}

static int
digest_sign(EVP_PKEY *pkey, const char *md, const uint8_t *data, size_t len, uint8_t **sig,
    size_t *siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t *p = NULL;
	size_t n = 0;
	int ok;

	ok = ctx != NULL && EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, pkey, NULL) == 1 &&
	    EVP_DigestSign(ctx, NULL, &n, data, len) == 1 && (p = malloc(n)) != NULL &&
	    EVP_DigestSign(ctx, p, &n, data, len) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		free(p);
		ERR_clear_error();
		return PG_EINVAL;
	}
	*sig = p;
	*siglen = n;
	return 0;
}

static int
digest_verify(EVP_PKEY *pkey, const char *md, const uint8_t *sig, size_t siglen,
    const uint8_t *data, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	ok = ctx != NULL && EVP_DigestVerifyInit_ex(ctx, NULL, md, NULL, NULL, pkey, NULL) == 1 &&
	    EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok ? 0 : PG_EPROTO;
}

int
sshkey_sign(const struct sshkey *k, const char *alg, const uint8_t *data, size_t len,
    struct pg_buf *sig)
{
	const struct ktype *kt = ktype_of(k->type);
	size_t old = sig->len, n = 0, inner_old;
	uint8_t *raw = NULL;
	const uint8_t *pp;
	ECDSA_SIG *es = NULL;
	const BIGNUM *br, *bs;
	int r = PG_EINVAL;

	if (!k->has_private || !sshkey_can_sign_as(k, alg))
		return PG_EINVAL;
	switch (k->type) {
	case SSHKEY_ED25519:
		/* RFC 8709 6: string "ssh-ed25519", string signature (64 bytes) */
		if ((r = digest_sign(k->pkey, NULL, data, len, &raw, &n)) != 0)
			break;
		if ((r = ssh_put_cstring(sig, alg)) == 0)
			r = ssh_put_string(sig, raw, n);
		break;
	case SSHKEY_ECDSA_P256:
	case SSHKEY_ECDSA_P384:
	case SSHKEY_ECDSA_P521:
		/* RFC 5656 3.1.2: string alg, string (mpint r, mpint s); OpenSSL gives DER. */
		if ((r = digest_sign(k->pkey, kt->digest, data, len, &raw, &n)) != 0)
			break;
		pp = raw;
		if ((es = d2i_ECDSA_SIG(NULL, &pp, (long)n)) == NULL) {
			r = PG_EINVAL;
			break;
		}
		ECDSA_SIG_get0(es, &br, &bs);
		if ((r = ssh_put_cstring(sig, alg)) != 0 || (r = ssh_put_u32(sig, 0)) != 0)
			break;
		inner_old = sig->len;
		if ((r = ssh_put_mpint_bn(sig, br)) == 0 && (r = ssh_put_mpint_bn(sig, bs)) == 0)
			ssh_poke_u32(sig->p + inner_old - 4, (uint32_t)(sig->len - inner_old));
		break;
	case SSHKEY_RSA:
		/* RFC 8332 3: string alg, string s (as long as the modulus) */
		if ((r = digest_sign(k->pkey, rsa_digest(alg), data, len, &raw, &n)) != 0)
			break;
		if ((r = ssh_put_cstring(sig, alg)) == 0)
			r = ssh_put_string(sig, raw, n);
		break;
	}
	ECDSA_SIG_free(es);
	free(raw);
	if (r != 0)
		sig->len = old;
	return r;
}

/* ECDSA: (mpint r, mpint s) back to the DER OpenSSL verifies. */
static int
ecdsa_verify(const struct sshkey *k, struct pg_slice blob, const uint8_t *data, size_t len)
{
	const struct ktype *kt = ktype_of(k->type);
	BIGNUM *br = NULL, *bs = NULL;
	ECDSA_SIG *es = NULL;
	uint8_t *der = NULL;
	int r = PG_EPARSE, n;

	if (ssh_get_mpint_bn(&blob, &br) != 0 || ssh_get_mpint_bn(&blob, &bs) != 0 ||
	    ssh_get_end(blob) != 0)
		goto out;
	if ((es = ECDSA_SIG_new()) == NULL || ECDSA_SIG_set0(es, br, bs) != 1) {
		r = PG_ENOMEM;
		goto out;
	}
	br = bs = NULL;	/* owned by es */
	if ((n = i2d_ECDSA_SIG(es, &der)) <= 0) {
		r = PG_ENOMEM;
		goto out;
	}
	r = digest_verify(k->pkey, kt->digest, der, (size_t)n, data, len);
out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	OPENSSL_free(der);
	return r;
}

int
sshkey_verify(const struct sshkey *k, const char *alg, struct pg_slice sig,
    const uint8_t *data, size_t len)
{
	struct pg_slice name, blob;
	char namebuf[32];
	uint8_t *padded = NULL;
	size_t modlen;
	int r;

	if (ssh_get_string(&sig, &name) != 0 || ssh_get_string(&sig, &blob) != 0 ||
	    ssh_get_end(sig) != 0 || name.len >= sizeof(namebuf))
		return PG_EPARSE;
	memcpy(namebuf, name.p, name.len);
	namebuf[name.len] = '\0';
	if ((alg != NULL && strcmp(alg, namebuf) != 0) || !sshkey_can_sign_as(k, namebuf))
		return PG_EPROTO;
	switch (k->type) {
	case SSHKEY_ED25519:
		if (blob.len != 64)
			return PG_EPARSE;
		return digest_verify(k->pkey, NULL, blob.p, blob.len, data, len);
	case SSHKEY_ECDSA_P256:
	case SSHKEY_ECDSA_P384:
	case SSHKEY_ECDSA_P521:
		return ecdsa_verify(k, blob, data, len);
	case SSHKEY_RSA:
		/* RFC 8332 3: as long as the modulus; OpenSSH also accepts shorter ones padded. */
		modlen = (size_t)EVP_PKEY_get_size(k->pkey);
		if (blob.len > modlen || blob.len == 0)
			return PG_EPARSE;
		if (blob.len < modlen) {
			if ((padded = calloc(1, modlen)) == NULL)
				return PG_ENOMEM;
			memcpy(padded + modlen - blob.len, blob.p, blob.len);
			blob.p = padded;
			blob.len = modlen;
		}
		r = digest_verify(k->pkey, rsa_digest(namebuf), blob.p, blob.len, data, len);
		free(padded);
		return r;
	}
	return PG_EPARSE;
}

/* Private keys */

static void __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

#define OPENSSH_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define OPENSSH_END "-----END OPENSSH PRIVATE KEY-----"
#define OPENSSH_MAGIC "openssh-key-v1"	/* followed by a NUL */

/* Base64 between the armour lines; newlines and other whitespace are skipped. */
static int
unarmour(struct pg_slice text, uint8_t **out, size_t *outlen)
{
	const char *t = (const char *)text.p, *b, *e;
	EVP_ENCODE_CTX *ctx = NULL;
	uint8_t *raw = NULL;
	int n1, n2, ok;

	/* Both markers must be inside text, which need not be NUL-terminated. */
	b = memmem(t, text.len, OPENSSH_BEGIN, strlen(OPENSSH_BEGIN));
	if (b == NULL)
		return PG_EPARSE;
	b += strlen(OPENSSH_BEGIN);
	e = memmem(b, text.len - (size_t)(b - t), OPENSSH_END, strlen(OPENSSH_END));
	if (e == NULL || e - b > INT32_MAX / 2)
		return PG_EPARSE;
	ok = (ctx = EVP_ENCODE_CTX_new()) != NULL &&
	    (raw = malloc((size_t)(e - b) * 3 / 4 + 4)) != NULL;
	if (ok) {
		EVP_DecodeInit(ctx);
		ok = EVP_DecodeUpdate(ctx, raw, &n1, (const unsigned char *)b, (int)(e - b)) >= 0 &&
		    EVP_DecodeFinal(ctx, raw + n1, &n2) == 1;
	}
	EVP_ENCODE_CTX_free(ctx);
	if (!ok) {
		free(raw);
		return raw == NULL ? PG_ENOMEM : PG_EPARSE;
	}
	*out = raw;
	*outlen = (size_t)n1 + (size_t)n2;
	return 0;
}

/* The private section's key fields, after the type name (OpenSSH PROTOCOL.key, sshkey.c). */
static int
get_private(const struct ktype *kt, struct pg_slice *s, EVP_PKEY **out)
{
	struct pg_slice a, b, c;
	BIGNUM *n = NULL, *e = NULL, *d = NULL, *iqmp = NULL, *p = NULL, *q = NULL;
	int r = PG_EPARSE;

	switch (kt->type) {
	case SSHKEY_ED25519:
		/* string pk (32), string sk (64: seed || pk) */
		if (ssh_get_string(s, &a) != 0 || a.len != 32 || ssh_get_string(s, &b) != 0 ||
		    b.len != 64 || memcmp(b.p + 32, a.p, 32) != 0)
			return PG_EPARSE;
		*out = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, b.p, 32);
		return *out != NULL ? 0 : PG_EPARSE;
	case SSHKEY_ECDSA_P256:
	case SSHKEY_ECDSA_P384:
	case SSHKEY_ECDSA_P521:
		/* string curve, string Q, mpint d */
		if (ssh_get_string(s, &a) != 0 || !ssh_slice_eq(a, kt->curve) ||
		    ssh_get_string(s, &b) != 0 || ssh_get_mpint(s, &c) != 0)
			return PG_EPARSE;
		if ((d = BN_bin2bn(c.p, (int)c.len, NULL)) == NULL)
			return PG_ENOMEM;
		r = ec_from_parts(kt, b, d, out);
		BN_clear_free(d);
		return r;
	case SSHKEY_RSA:
		/* mpint n, e, d, iqmp, p, q */
		if ((r = ssh_get_mpint_bn(s, &n)) == 0 && (r = ssh_get_mpint_bn(s, &e)) == 0 &&
		    (r = ssh_get_mpint_bn(s, &d)) == 0 && (r = ssh_get_mpint_bn(s, &iqmp)) == 0 &&
		    (r = ssh_get_mpint_bn(s, &p)) == 0 && (r = ssh_get_mpint_bn(s, &q)) == 0)
			r = rsa_from_parts(n, e, d, p, q, iqmp, out);
		BN_free(n);
		BN_free(e);
		BN_clear_free(d);
		BN_clear_free(iqmp);
		BN_clear_free(p);
		BN_clear_free(q);
		return r;
	}
	return PG_EPARSE;
}

static int
parse_openssh(struct pg_slice text, struct sshkey **out, char *err, size_t errlen)
{
	struct pg_slice s, cipher, kdf, kdfopts, pubblob, priv, name, comment;
	const struct ktype *kt;
	struct sshkey *pub = NULL, *k = NULL;
	EVP_PKEY *pkey = NULL;
	uint32_t nkeys, check1, check2;
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	int r;

	if ((r = unarmour(text, &raw, &rawlen)) != 0) {
		set_err(err, errlen, "bad base64 armour");
		return r;
	}
	s = (struct pg_slice){ raw, rawlen };
	r = PG_EPARSE;
	/*
	 * "openssh-key-v1\0", string ciphername, string kdfname, string kdfoptions, uint32 N,
	 * string publickey[N], string private section
	 */
	if (s.len < sizeof(OPENSSH_MAGIC) || memcmp(s.p, OPENSSH_MAGIC, sizeof(OPENSSH_MAGIC)) != 0) {
		set_err(err, errlen, "not an openssh-key-v1 key");
		goto out;
	}
	s.p += sizeof(OPENSSH_MAGIC);
	s.len -= sizeof(OPENSSH_MAGIC);
	if (ssh_get_string(&s, &cipher) != 0 || ssh_get_string(&s, &kdf) != 0 ||
	    ssh_get_string(&s, &kdfopts) != 0 || ssh_get_u32(&s, &nkeys) != 0) {
		set_err(err, errlen, "truncated key header");
		goto out;
	}
	if (!ssh_slice_eq(cipher, "none") || !ssh_slice_eq(kdf, "none")) {
		set_err(err, errlen, "key is encrypted (passphrase-protected keys are not supported)");
		goto out;
	}
	if (nkeys != 1) {
		set_err(err, errlen, "file holds %u keys, expected 1", nkeys);
		goto out;
	}
	if (ssh_get_string(&s, &pubblob) != 0 || ssh_get_string(&s, &priv) != 0 ||
	    ssh_get_end(s) != 0) {
		set_err(err, errlen, "truncated key body");
		goto out;
	}
	if ((r = sshkey_from_blob(pubblob, &pub)) != 0) {
		set_err(err, errlen, "unsupported or malformed public key");
		goto out;
	}
	r = PG_EPARSE;
	/* uint32 check1 == check2, string type, fields, string comment, padding 1, 2, 3 ... */
	if (ssh_get_u32(&priv, &check1) != 0 || ssh_get_u32(&priv, &check2) != 0 ||
	    check1 != check2 || ssh_get_string(&priv, &name) != 0 ||
	    (kt = ktype_by_name(name)) == NULL || kt->type != pub->type) {
		set_err(err, errlen, "malformed private section");
		goto out;
	}
	if ((r = get_private(kt, &priv, &pkey)) != 0 || ssh_get_string(&priv, &comment) != 0) {
		set_err(err, errlen, "malformed %s private key", kt->name);
		r = r != 0 ? r : PG_EPARSE;
		goto out;
	}
	for (size_t i = 0; i < priv.len; i++) {
		if (priv.p[i] != (uint8_t)(i + 1)) {
			set_err(err, errlen, "bad padding after the private key");
			r = PG_EPARSE;
			goto out;
		}
	}
	if ((r = key_new(kt->type, pkey, 1, &k)) != 0)
		goto out;
	pkey = NULL;
	if (!sshkey_equal_public(k, pub)) {
		set_err(err, errlen, "private key does not match its public key");
		r = PG_EPARSE;
		goto out;
	}
	*out = k;
	k = NULL;
out:
	sshkey_free(k);
	sshkey_free(pub);
	EVP_PKEY_free(pkey);
	OPENSSL_clear_free(raw, rawlen);
	return r;
}

/* Refuses to prompt: an encrypted PEM key fails to load instead. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

static int
type_of_pkey(EVP_PKEY *pkey, enum sshkey_type *t)
{
	char group[64];
	size_t n;

	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		*t = SSHKEY_ED25519;
		return 0;
	}
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		*t = SSHKEY_RSA;
		return rsa_bits_ok(pkey) ? 0 : PG_EINVAL;
	}
	if (EVP_PKEY_is_a(pkey, "EC") &&
	    EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
		&n) == 1) {
		for (size_t i = 0; i < NKTYPES; i++) {
			if (ktypes[i].group != NULL && strcmp(ktypes[i].group, group) == 0) {
				*t = ktypes[i].type;
				return 0;
			}
		}
	}
	return PG_EINVAL;
}

static int
parse_pem(struct pg_slice text, struct sshkey **out, char *err, size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(text.p, (int)text.len);
	EVP_PKEY *pkey;
	enum sshkey_type t;
	int r;

	if (bio == NULL)
		return PG_ENOMEM;
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		unsigned long e = ERR_peek_error();

		set_err(err, errlen, "cannot read PEM private key: %s",
		    e != 0 && ERR_reason_error_string(e) != NULL ? ERR_reason_error_string(e) :
		    "unknown reason");
		ERR_clear_error();
		return PG_EPARSE;
	}
	if ((r = type_of_pkey(pkey, &t)) != 0) {
		set_err(err, errlen, "unsupported key type (ed25519, ecdsa p256/384/521, rsa 1024..16384)");
		EVP_PKEY_free(pkey);
		return r;
	}
	return key_new(t, pkey, 1, out);
}

int
sshkey_parse_private(struct pg_slice text, struct sshkey **out, char *err, size_t errlen)
{
	set_err(err, errlen, "%s", "");
	if (text.len > INT32_MAX)
		return PG_ETOOBIG;
	if (memmem(text.p, text.len, OPENSSH_BEGIN, strlen(OPENSSH_BEGIN)) != NULL)
		return parse_openssh(text, out, err, errlen);
	return parse_pem(text, out, err, errlen);
}

int
sshkey_load_private(const char *path, struct sshkey **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char msg[200];
	uint8_t *buf = NULL;
	size_t n = 0;
	long len;
	int r;

	if (f == NULL) {
		set_err(err, errlen, "%s: cannot open", path);
		return PG_EIO;
	}
	/* Key files are small; a megabyte is not a key. */
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || len > 1024 * 1024 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)len + 1)) == NULL ||
	    (n = fread(buf, 1, (size_t)len, f)) != (size_t)len) {
		fclose(f);
		free(buf);
		set_err(err, errlen, "%s: cannot read", path);
		return PG_EIO;
	}
	fclose(f);
	r = sshkey_parse_private((struct pg_slice){ buf, n }, out, msg, sizeof(msg));
	OPENSSL_clear_free(buf, (size_t)len + 1);
	if (r != 0)
		set_err(err, errlen, "%s: %s", path, msg);
	return r;
}

int
sshkey_generate_ed25519(struct sshkey **out)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

	if (pkey == NULL)
		return PG_ENOMEM;
	return key_new(SSHKEY_ED25519, pkey, 1, out);
}

int
sshkey_generate_ecdsa_p256(struct sshkey **out)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	if (pkey == NULL)
		return PG_ENOMEM;
	return key_new(SSHKEY_ECDSA_P256, pkey, 1, out);
}

/* Base64 of data, with or without '=' padding, into a new NUL-terminated string. */
static char *
base64(const uint8_t *data, size_t len, int pad)
{
	char *s = malloc(4 * ((len + 2) / 3) + 1);
	int n;

	if (s == NULL || len > INT32_MAX / 2) {
		free(s);
		return NULL;
	}
	n = EVP_EncodeBlock((unsigned char *)s, data, (int)len);
	while (!pad && n > 0 && s[n - 1] == '=')
		s[--n] = '\0';
	return s;
}

int
sshkey_write_public(const struct sshkey *k, const char *comment, struct pg_buf *out)
{
	struct pg_buf blob;
	char *b64;
	int r;

	pg_buf_init(&blob, 8192);
	if ((r = sshkey_to_blob(k, &blob)) != 0)
		goto out;
	if ((b64 = base64(blob.p, blob.len, 1)) == NULL) {
		r = PG_ENOMEM;
		goto out;
	}
	r = pg_buf_printf(out, "%s %s%s%s\n", sshkey_type_name(k), b64,
	    comment != NULL ? " " : "", comment != NULL ? comment : "");
	free(b64);
out:
	pg_buf_free(&blob);
	return r;
}

int
sshkey_fingerprint(const struct sshkey *k, char *out, size_t outlen)
{
	uint8_t md[32];
	unsigned int mdlen = 0;
	struct pg_buf blob;
	char *b64 = NULL;
	int r;

	pg_buf_init(&blob, 8192);
	if ((r = sshkey_to_blob(k, &blob)) != 0)
		goto out;
	if (EVP_Digest(blob.p, blob.len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    (b64 = base64(md, mdlen, 0)) == NULL) {
		r = PG_ENOMEM;
		goto out;
	}
	if ((size_t)snprintf(out, outlen, "SHA256:%s", b64) >= outlen)
		r = PG_ETOOBIG;
out:
	free(b64);
	pg_buf_free(&blob);
	return r;
}

int
sshkey_write_private_pem(const struct sshkey *k, struct pg_buf *out)
{
	BIO *bio;
	char *p;
	long n;
	int r = PG_ENOMEM;

	if (!k->has_private)
		return PG_EINVAL;
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return PG_ENOMEM;
	if (PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (n = BIO_get_mem_data(bio, &p)) > 0)
		r = pg_buf_append(out, p, (size_t)n);
	/* The memory BIO held the private key: wipe it before it goes back to the heap. */
	if (BIO_get_mem_data(bio, &p) > 0)
		OPENSSL_cleanse(p, (size_t)BIO_get_mem_data(bio, &p));
	BIO_free(bio);
	return r;
}

int
sshkey_from_base64(const char *b64, size_t len, struct sshkey **out)
{
	uint8_t *blob;
	int n, pad = 0, r;

	if (len == 0 || len % 4 != 0 || len > 65536)
		return PG_EPARSE;
	for (size_t i = 0; i < len; i++) {
		char ch = b64[i];

		if (ch == '=' && i >= len - 2) {
			pad++;
			continue;
		}
		if (pad || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
			return PG_EPARSE;
	}
	if ((blob = malloc(len / 4 * 3 + 1)) == NULL)
		return PG_ENOMEM;
	n = EVP_DecodeBlock(blob, (const unsigned char *)b64, (int)len);
	if (n < pad) {
		free(blob);
		return PG_EPARSE;
	}
	r = sshkey_from_blob((struct pg_slice){ blob, (size_t)(n - pad) }, out);
	free(blob);
	return r;
}
