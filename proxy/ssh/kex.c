/* Key exchange methods, the exchange hash and key derivation (RFC 4253 7.2, 8; RFC 5656 4; RFC 8731). */
#include "proxy/ssh/kex.h"
#include "proxy/ssh/cipher.h"
#include "core/sshwire.h"
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

enum family { F_X25519, F_ECDH, F_DH };

static const struct method {
	const char *name;
	enum family family;
	const char *group;	/* OpenSSL group name (EC curve or RFC 3526 MODP group) */
	const char *digest;
} methods[] = {
	{ "curve25519-sha256", F_X25519, NULL, "SHA256" },
	{ "curve25519-sha256@libssh.org", F_X25519, NULL, "SHA256" },
	{ "ecdh-sha2-nistp256", F_ECDH, "P-256", "SHA256" },
	{ "ecdh-sha2-nistp384", F_ECDH, "P-384", "SHA384" },
	{ "ecdh-sha2-nistp521", F_ECDH, "P-521", "SHA512" },
	/* RFC 8268: group16 is RFC 3526's 4096-bit group, group14 its 2048-bit one. */
	{ "diffie-hellman-group16-sha512", F_DH, "modp_4096", "SHA512" },
	{ "diffie-hellman-group14-sha256", F_DH, "modp_2048", "SHA256" },
};

struct ssh_kex {
	const struct method *m;
	EVP_PKEY *ours;		/* the ephemeral key pair */
	struct pg_buf q_ours;	/* our public value as it goes on the wire (string or mpint) */
};

static const struct method *
find_method(const char *name)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].name, name) == 0)
			return &methods[i];
	return NULL;
}

int
ssh_kex_known(const char *name)
{
	return find_method(name) != NULL;
}

void
ssh_kex_free(struct ssh_kex *kx)
{
	if (kx == NULL)
		return;
	EVP_PKEY_free(kx->ours);
	pg_buf_free(&kx->q_ours);
	free(kx);
}

static EVP_PKEY *
dh_keygen(const char *group)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	EVP_PKEY *pkey = NULL;

	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_CTX_set_params(ctx, params) != 1 ||
	    EVP_PKEY_generate(ctx, &pkey) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

int
ssh_kex_new(const char *name, struct ssh_kex **out)
{
	const struct method *m = find_method(name);
	struct ssh_kex *kx;
	uint8_t pub[160];
	size_t n = sizeof(pub);
	BIGNUM *bn = NULL;
	int r = 0;

	if (m == NULL)
		return PG_EINVAL;
	if ((kx = calloc(1, sizeof(*kx))) == NULL)
		return PG_ENOMEM;
	kx->m = m;
	pg_buf_init(&kx->q_ours, 1024);
	switch (m->family) {
	case F_X25519:
		if ((kx->ours = EVP_PKEY_Q_keygen(NULL, NULL, "X25519")) == NULL ||
		    EVP_PKEY_get_raw_public_key(kx->ours, pub, &n) != 1 || n != 32)
			r = PG_EINVAL;
		else
			r = ssh_put_string(&kx->q_ours, pub, n);
		break;
	case F_ECDH:
		if ((kx->ours = EVP_PKEY_Q_keygen(NULL, NULL, "EC", m->group)) == NULL ||
		    EVP_PKEY_get_octet_string_param(kx->ours, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub,
			sizeof(pub), &n) != 1)
			r = PG_EINVAL;
		else
			r = ssh_put_string(&kx->q_ours, pub, n);
		break;
	case F_DH:
		if ((kx->ours = dh_keygen(m->group)) == NULL ||
		    EVP_PKEY_get_bn_param(kx->ours, OSSL_PKEY_PARAM_PUB_KEY, &bn) != 1)
			r = PG_EINVAL;
		else
			r = ssh_put_mpint_bn(&kx->q_ours, bn);
		BN_free(bn);
		break;
	}
	if (r != 0) {
		ERR_clear_error();
		ssh_kex_free(kx);
		return r;
	}
	*out = kx;
	return 0;
}

static int __attribute__((format(printf, 3, 4)))
bad(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	ERR_clear_error();
	return PG_EPROTO;
}

/*
 * Reads the peer's public value from s (string for curves, mpint for DH), leaves its wire form in
 * *q_wire for the hash, and derives K into sec->k as an mpint.
 */
static int
agree(struct ssh_kex *kx, struct pg_slice *s, struct pg_slice *q_wire, struct ssh_kex_secret *sec,
    char *why, size_t whylen)
{
	const struct method *m = kx->m;
	struct pg_slice before = *s, q;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL, *dctx = NULL;
	EVP_PKEY *peer = NULL;
	uint8_t z[512];
	size_t zlen = sizeof(z);
	struct pg_buf kb;
	BIGNUM *f = NULL;
	int r = PG_EPROTO, ok;

	if (m->family == F_DH ? ssh_get_mpint(s, &q) != 0 : ssh_get_string(s, &q) != 0)
		return bad(why, whylen, "malformed public value");
	*q_wire = (struct pg_slice){ before.p, (size_t)(s->p - before.p) };
	switch (m->family) {
	case F_X25519:
		/* RFC 8731 3: exactly 32 bytes. */
		if (q.len != 32 || (peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, q.p,
		    q.len)) == NULL)
			return bad(why, whylen, "bad X25519 public value");
		break;
	case F_ECDH:
	case F_DH:
		if ((bld = OSSL_PARAM_BLD_new()) == NULL)
			return PG_ENOMEM;
		ok = OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, m->group, 0);
		if (m->family == F_ECDH) {
			/* RFC 5656 4: uncompressed points (SEC1 2.3.4); checked on the curve below. */
			ok = ok && q.len > 0 && q.p[0] == 0x04 &&
			    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, q.p, q.len);
		} else {
			ok = ok && (f = BN_bin2bn(q.p, (int)q.len, NULL)) != NULL &&
			    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, f);
		}
		ok = ok && (params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
		    (ctx = EVP_PKEY_CTX_new_from_name(NULL, m->family == F_DH ? "DH" : "EC", NULL)) !=
			NULL &&
		    EVP_PKEY_fromdata_init(ctx) == 1 &&
		    EVP_PKEY_fromdata(ctx, &peer, EVP_PKEY_PUBLIC_KEY, params) == 1;
		EVP_PKEY_CTX_free(ctx);
		ctx = NULL;
		/*
		 * The full public key check: on the curve and not infinity for ECDH (RFC 5656 4),
		 * 1 < f < p-1 and in the prime-order subgroup for DH (RFC 4253 8).
		 */
		ok = ok && (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL)) != NULL &&
		    EVP_PKEY_public_check(ctx) == 1;
		if (!ok) {
			r = bad(why, whylen, "bad %s public value", m->family == F_DH ? "DH" : "ECDH");
			goto out;
		}
		break;
	}
	ok = (dctx = EVP_PKEY_CTX_new_from_pkey(NULL, kx->ours, NULL)) != NULL &&
	    EVP_PKEY_derive_init(dctx) == 1 && EVP_PKEY_derive_set_peer(dctx, peer) == 1 &&
	    EVP_PKEY_derive(dctx, NULL, &zlen) == 1 && zlen <= sizeof(z) &&
	    EVP_PKEY_derive(dctx, z, &zlen) == 1;
	if (!ok) {
		r = bad(why, whylen, "key agreement failed");
		goto out;
	}
	/* RFC 8731 3: an all-zero X25519 result means a low-order point; abort. */
	{
		uint8_t acc = 0;

		for (size_t i = 0; i < zlen; i++)
			acc |= z[i];
		if (acc == 0) {
			r = bad(why, whylen, "shared secret is zero");
			goto out;
		}
	}
	/* K is the agreed value read as an unsigned big-endian integer, encoded as an mpint. */
	pg_buf_init(&kb, sizeof(sec->k));
	if ((r = ssh_put_mpint(&kb, z, zlen)) == 0) {
		memcpy(sec->k, kb.p, kb.len);
		sec->k_len = kb.len;
	}
	OPENSSL_clear_free(kb.p, kb.cap);
out:
	OPENSSL_cleanse(z, sizeof(z));
	EVP_PKEY_free(peer);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_CTX_free(dctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(f);
	return r;
}

/*
 * H = HASH(string V_C || string V_S || string I_C || string I_S || string K_S || Q_C || Q_S ||
 * mpint K), with Q_C, Q_S already in their wire form (string or mpint).
 */
static int
hash_string(EVP_MD_CTX *ctx, struct pg_slice s)
{
	uint8_t len[4];

	ssh_poke_u32(len, (uint32_t)s.len);
	return EVP_DigestUpdate(ctx, len, 4) == 1 && EVP_DigestUpdate(ctx, s.p, s.len) == 1;
}

/*
 * H = HASH(string V_C || string V_S || string I_C || string I_S || string K_S || Q_C || Q_S ||
 * mpint K), with Q_C, Q_S already in their wire form (string or mpint). Streamed: a KEXINIT may
 * be as large as a packet.
 */
static int
exchange_hash(const struct method *m, const struct ssh_kex_hash_in *hi, struct pg_slice k_s,
    struct pg_slice q_c, struct pg_slice q_s, struct ssh_kex_secret *sec)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	int ok;

	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_get_digestbyname(m->digest), NULL) == 1 &&
	    hash_string(ctx, hi->v_c) && hash_string(ctx, hi->v_s) && hash_string(ctx, hi->i_c) &&
	    hash_string(ctx, hi->i_s) && hash_string(ctx, k_s) &&
	    EVP_DigestUpdate(ctx, q_c.p, q_c.len) == 1 && EVP_DigestUpdate(ctx, q_s.p, q_s.len) == 1 &&
	    EVP_DigestUpdate(ctx, sec->k, sec->k_len) == 1 &&
	    EVP_DigestFinal_ex(ctx, sec->h, &n) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return PG_EINVAL;
	snprintf(sec->digest, sizeof(sec->digest), "%s", m->digest);
	sec->h_len = n;
	return 0;
}

int
ssh_kex_client_init(struct ssh_kex *kx, struct pg_buf *out)
{
	size_t old = out->len;
	int r;

	/* byte SSH_MSG_KEX_ECDH_INIT, string Q_C  |  byte SSH_MSG_KEXDH_INIT, mpint e */
	if ((r = ssh_put_u8(out, SSH_MSG_KEX_INIT)) != 0 ||
	    (r = pg_buf_append(out, kx->q_ours.p, kx->q_ours.len)) != 0)
		out->len = old;
	return r;
}

int
ssh_kex_server_reply(struct ssh_kex *kx, struct pg_slice init, const struct ssh_kex_hash_in *hi,
    const struct sshkey *hostkey, const char *hostkey_alg, struct pg_buf *out,
    struct ssh_kex_secret *sec, char *why, size_t whylen)
{
	struct pg_slice q_c, q_s = { kx->q_ours.p, kx->q_ours.len };
	struct pg_buf k_s, sig;
	size_t old = out->len;
	uint8_t type;
	int r;

	memset(sec, 0, sizeof(*sec));
	if (ssh_get_u8(&init, &type) != 0 || type != SSH_MSG_KEX_INIT)
		return bad(why, whylen, "expected kex init");
	if ((r = agree(kx, &init, &q_c, sec, why, whylen)) != 0)
		return r;
	if (ssh_get_end(init) != 0)
		return bad(why, whylen, "trailing bytes in kex init");
	pg_buf_init(&k_s, 8192);
	pg_buf_init(&sig, 8192);
	if ((r = sshkey_to_blob(hostkey, &k_s)) != 0 ||
	    (r = exchange_hash(kx->m, hi, (struct pg_slice){ k_s.p, k_s.len }, q_c, q_s, sec)) != 0 ||
	    (r = sshkey_sign(hostkey, hostkey_alg, sec->h, sec->h_len, &sig)) != 0)
		goto out;
	/* byte SSH_MSG_KEX_REPLY, string K_S, Q_S (string or mpint), string signature of H */
	if ((r = ssh_put_u8(out, SSH_MSG_KEX_REPLY)) != 0 ||
	    (r = ssh_put_string(out, k_s.p, k_s.len)) != 0 ||
	    (r = pg_buf_append(out, q_s.p, q_s.len)) != 0 ||
	    (r = ssh_put_string(out, sig.p, sig.len)) != 0)
		out->len = old;
out:
	if (r != 0)
		ssh_kex_secret_clear(sec);
	pg_buf_free(&k_s);
	pg_buf_free(&sig);
	return r;
}

int
ssh_kex_client_finish(struct ssh_kex *kx, struct pg_slice reply,
    const struct ssh_kex_hash_in *hi, const char *hostkey_alg, struct sshkey **hostkey,
    struct ssh_kex_secret *sec, char *why, size_t whylen)
{
	struct pg_slice k_s, q_s, sig, q_c = { kx->q_ours.p, kx->q_ours.len };
	struct sshkey *key = NULL;
	uint8_t type;
	int r;

	memset(sec, 0, sizeof(*sec));
	if (ssh_get_u8(&reply, &type) != 0 || type != SSH_MSG_KEX_REPLY ||
	    ssh_get_string(&reply, &k_s) != 0)
		return bad(why, whylen, "malformed kex reply");
	if ((r = sshkey_from_blob(k_s, &key)) != 0)
		return bad(why, whylen, "unsupported or malformed host key");
	/* The host key must be of the negotiated algorithm's type (rsa-sha2-* use ssh-rsa keys). */
	if (!sshkey_can_sign_as(key, hostkey_alg)) {
		r = bad(why, whylen, "host key type %s does not match %s", sshkey_type_name(key),
		    hostkey_alg);
		goto out;
	}
	if ((r = agree(kx, &reply, &q_s, sec, why, whylen)) != 0)
		goto out;
	if (ssh_get_string(&reply, &sig) != 0 || ssh_get_end(reply) != 0) {
		r = bad(why, whylen, "malformed kex reply");
		goto out;
	}
	if ((r = exchange_hash(kx->m, hi, k_s, q_c, q_s, sec)) != 0)
		goto out;
	if ((r = sshkey_verify(key, hostkey_alg, sig, sec->h, sec->h_len)) != 0) {
		r = bad(why, whylen, "host key signature does not verify (%s)", hostkey_alg);
		goto out;
	}
	*hostkey = key;
	key = NULL;
out:
	if (r != 0)
		ssh_kex_secret_clear(sec);
	sshkey_free(key);
	return r;
}

int
ssh_kex_derive(const struct ssh_kex_secret *sec, const uint8_t *session_id, size_t sid_len,
    char letter, uint8_t *out, size_t need)
{
	const EVP_MD *md = EVP_get_digestbyname(sec->digest);
	uint8_t block[SSH_CIPHER_MAX_KEY + 64];
	size_t have = 0, dl = md != NULL ? (size_t)EVP_MD_get_size(md) : 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t x = (uint8_t)letter;
	int ok = ctx != NULL && md != NULL && need <= SSH_CIPHER_MAX_KEY;

	/* K1 = HASH(K || H || X || session_id); Kn = HASH(K || H || K1 || ... || Kn-1) */
	while (ok && have < need) {
		ok = EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
		    EVP_DigestUpdate(ctx, sec->k, sec->k_len) == 1 &&
		    EVP_DigestUpdate(ctx, sec->h, sec->h_len) == 1;
		if (ok && have == 0)
			ok = EVP_DigestUpdate(ctx, &x, 1) == 1 &&
			    EVP_DigestUpdate(ctx, session_id, sid_len) == 1;
		else if (ok)
			ok = EVP_DigestUpdate(ctx, block, have) == 1;
		ok = ok && EVP_DigestFinal_ex(ctx, block + have, NULL) == 1;
		have += dl;
	}
	if (ok)
		memcpy(out, block, need);
	OPENSSL_cleanse(block, sizeof(block));
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : PG_EINVAL;
}

void
ssh_kex_secret_clear(struct ssh_kex_secret *sec)
{
	OPENSSL_cleanse(sec, sizeof(*sec));
}
