#include "proxy/ssh/cipher.h"
#include "core/sshwire.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

enum kind { K_NONE, K_CHACHA, K_GCM, K_CTR };

static const struct enc_alg {
	const char *name;
	enum kind kind;
	size_t key_len, iv_len;
	const EVP_CIPHER *(*evp)(void);
} enc_algs[] = {
	{ "none", K_NONE, 0, 0, NULL },
	/* 64 bytes of key: K_2 (payload) then K_1 (length); no IV, the nonce is the sequence number. */
	{ "chacha20-poly1305@openssh.com", K_CHACHA, 64, 0, EVP_chacha20 },
	/* RFC 5647 7.1: a 12-byte IV, 4 fixed bytes and an 8-byte invocation counter. */
	{ "aes256-gcm@openssh.com", K_GCM, 32, 12, EVP_aes_256_gcm },
	{ "aes128-gcm@openssh.com", K_GCM, 16, 12, EVP_aes_128_gcm },
	{ "aes256-ctr", K_CTR, 32, 16, EVP_aes_256_ctr },
	{ "aes192-ctr", K_CTR, 24, 16, EVP_aes_192_ctr },
	{ "aes128-ctr", K_CTR, 16, 16, EVP_aes_128_ctr },
};

static const struct mac_alg {
	const char *name;
	const char *digest;
	size_t len;	/* key and output length alike (RFC 6668 section 2) */
	int etm;
} mac_algs[] = {
	{ "hmac-sha2-256-etm@openssh.com", "SHA256", 32, 1 },
	{ "hmac-sha2-512-etm@openssh.com", "SHA512", 64, 1 },
	{ "hmac-sha2-256", "SHA256", 32, 0 },
	{ "hmac-sha2-512", "SHA512", 64, 0 },
};

#define CHACHA_TAG 16
#define GCM_TAG 16

struct ssh_cipher {
	const struct enc_alg *enc;
	const struct mac_alg *mac;	/* NULL for none and AEADs */
	int encrypt;
	EVP_CIPHER_CTX *ctx;		/* CTR stream, GCM, or chacha K_2 (payload) */
	EVP_CIPHER_CTX *hdr;		/* chacha K_1 (length) */
	EVP_MAC_CTX *mctx;		/* HMAC or Poly1305 */
	uint8_t iv[SSH_CIPHER_MAX_IV];	/* GCM: fixed || invocation counter */
	uint8_t mac_key[SSH_CIPHER_MAX_MAC];
	int first_block_open;		/* CTR+MAC: get_length decrypted the first block already */
};

static const struct enc_alg *
find_enc(const char *name)
{
	for (size_t i = 0; i < sizeof(enc_algs) / sizeof(enc_algs[0]); i++)
		if (strcmp(enc_algs[i].name, name) == 0)
			return &enc_algs[i];
	return NULL;
}

static const struct mac_alg *
find_mac(const char *name)
{
	for (size_t i = 0; i < sizeof(mac_algs) / sizeof(mac_algs[0]); i++)
		if (strcmp(mac_algs[i].name, name) == 0)
			return &mac_algs[i];
	return NULL;
}

int
ssh_cipher_known(const char *name)
{
	const struct enc_alg *e = find_enc(name);

	return e != NULL && e->kind != K_NONE;
}

int
ssh_mac_known(const char *name)
{
	return find_mac(name) != NULL;
}

int
ssh_cipher_is_aead(const char *name)
{
	const struct enc_alg *e = find_enc(name);

	return e != NULL && (e->kind == K_CHACHA || e->kind == K_GCM);
}

int
ssh_cipher_sizes(const char *enc, const char *mac, size_t *key_len, size_t *iv_len,
    size_t *mac_key_len)
{
	const struct enc_alg *e = find_enc(enc);
	const struct mac_alg *m = NULL;

	if (e == NULL || e->kind == K_NONE)
		return PG_EINVAL;
	if (e->kind == K_CTR && (mac == NULL || (m = find_mac(mac)) == NULL))
		return PG_EINVAL;
	*key_len = e->key_len;
	*iv_len = e->iv_len;
	*mac_key_len = m != NULL ? m->len : 0;
	return 0;
}

void
ssh_cipher_free(struct ssh_cipher *c)
{
	if (c == NULL)
		return;
	EVP_CIPHER_CTX_free(c->ctx);
	EVP_CIPHER_CTX_free(c->hdr);
	EVP_MAC_CTX_free(c->mctx);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

static EVP_MAC_CTX *
mac_ctx_new(const char *alg)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, alg, NULL);
	EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;

	EVP_MAC_free(mac);	/* the context keeps its own reference */
	return ctx;
}

int
ssh_cipher_new(const char *enc, const char *mac, int encrypt, const uint8_t *key,
    const uint8_t *iv, const uint8_t *mac_key, struct ssh_cipher **out)
{
	const struct enc_alg *e = find_enc(enc);
	struct ssh_cipher *c;
	int ok = 1;

	if (e == NULL)
		return PG_EINVAL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return PG_ENOMEM;
	c->enc = e;
	c->encrypt = encrypt ? 1 : 0;
	switch (e->kind) {
	case K_NONE:
		if (mac != NULL && strcmp(mac, "none") != 0)
			ok = 0;
		break;
	case K_CHACHA:
		/* PROTOCOL.chacha20poly1305: the first 32 bytes are K_2, the second K_1. */
		ok = (c->ctx = EVP_CIPHER_CTX_new()) != NULL &&
		    (c->hdr = EVP_CIPHER_CTX_new()) != NULL &&
		    (c->mctx = mac_ctx_new(OSSL_MAC_NAME_POLY1305)) != NULL &&
		    EVP_CipherInit_ex(c->ctx, EVP_chacha20(), NULL, key, NULL, 1) == 1 &&
		    EVP_CipherInit_ex(c->hdr, EVP_chacha20(), NULL, key + 32, NULL, 1) == 1;
		break;
	case K_GCM:
		memcpy(c->iv, iv, e->iv_len);
		ok = (c->ctx = EVP_CIPHER_CTX_new()) != NULL &&
		    EVP_CipherInit_ex(c->ctx, e->evp(), NULL, key, NULL, c->encrypt) == 1;
		break;
	case K_CTR:
		if (mac == NULL || (c->mac = find_mac(mac)) == NULL) {
			ok = 0;
			break;
		}
		memcpy(c->mac_key, mac_key, c->mac->len);
		ok = (c->ctx = EVP_CIPHER_CTX_new()) != NULL &&
		    (c->mctx = mac_ctx_new(OSSL_MAC_NAME_HMAC)) != NULL &&
		    EVP_CipherInit_ex(c->ctx, e->evp(), NULL, key, iv, c->encrypt) == 1;
		if (ok) {
			OSSL_PARAM params[] = {
				OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
				    (char *)c->mac->digest, 0),
				OSSL_PARAM_construct_end(),
			};
			ok = EVP_MAC_CTX_set_params(c->mctx, params) == 1;
		}
		break;
	}
	if (!ok) {
		ssh_cipher_free(c);
		return PG_EINVAL;
	}
	*out = c;
	return 0;
}

const char *
ssh_cipher_name(const struct ssh_cipher *c)
{
	return c->enc->name;
}

const char *
ssh_cipher_mac_name(const struct ssh_cipher *c)
{
	return c->mac != NULL ? c->mac->name : "";
}

size_t
ssh_cipher_block_size(const struct ssh_cipher *c)
{
	/* RFC 4253 6: at least 8; ChaCha20 is a stream cipher and OpenSSH aligns it to 8. */
	return c->enc->kind == K_NONE || c->enc->kind == K_CHACHA ? 8 : 16;
}

size_t
ssh_cipher_mac_len(const struct ssh_cipher *c)
{
	switch (c->enc->kind) {
	case K_NONE: return 0;
	case K_CHACHA: return CHACHA_TAG;
	case K_GCM: return GCM_TAG;
	case K_CTR: return c->mac->len;
	}
	return 0;
}

size_t
ssh_cipher_aad_len(const struct ssh_cipher *c)
{
	switch (c->enc->kind) {
	case K_NONE: return 0;
	case K_CHACHA: case K_GCM: return 4;
	case K_CTR: return c->mac->etm ? 4 : 0;
	}
	return 0;
}

size_t
ssh_cipher_len_bytes(const struct ssh_cipher *c)
{
	return c->enc->kind == K_CTR && !c->mac->etm ? ssh_cipher_block_size(c) : 4;
}

/* Runs the stream or block cipher over n bytes in place. */
static int
crypt_inplace(EVP_CIPHER_CTX *ctx, uint8_t *p, size_t n)
{
	int outl;

	if (n == 0)
		return 0;
	if (n > INT32_MAX || EVP_CipherUpdate(ctx, p, &outl, p, (int)n) != 1 || (size_t)outl != n)
		return PG_EINVAL;
	return 0;
}

/*
 * OpenSSH's ChaCha20 is the original variant: a 64-bit block counter then a 64-bit nonce (the
 * sequence number, big-endian). OpenSSL's EVP_chacha20 takes a 16-byte IV that fills the same
 * four state words 12..15 as little-endian words: so IV = LE64(counter) || BE64(seq). The
 * counter never leaves its low word here (a packet is at most 4096 blocks).
 */
static int
chacha_set(EVP_CIPHER_CTX *ctx, uint32_t counter, uint32_t seq)
{
	uint8_t iv[16] = { 0 };

	iv[0] = (uint8_t)counter;
	iv[1] = (uint8_t)(counter >> 8);
	iv[2] = (uint8_t)(counter >> 16);
	iv[3] = (uint8_t)(counter >> 24);
	ssh_poke_u32(iv + 12, seq);
	return EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1) == 1 ? 0 : PG_EINVAL;
}

/* Poly1305 over data, keyed by the first 32 bytes of K_2's keystream at counter 0. */
static int
chacha_tag(struct ssh_cipher *c, uint32_t seq, const uint8_t *data, size_t len, uint8_t *tag)
{
	uint8_t poly_key[32] = { 0 };
	size_t outl;
	int r;

	if ((r = chacha_set(c->ctx, 0, seq)) != 0 || (r = crypt_inplace(c->ctx, poly_key, 32)) != 0)
		goto out;
	if (EVP_MAC_init(c->mctx, poly_key, sizeof(poly_key), NULL) != 1 ||
	    EVP_MAC_update(c->mctx, data, len) != 1 ||
	    EVP_MAC_final(c->mctx, tag, &outl, CHACHA_TAG) != 1 || outl != CHACHA_TAG)
		r = PG_EINVAL;
out:
	OPENSSL_cleanse(poly_key, sizeof(poly_key));
	return r;
}

/* HMAC(mac_key, uint32 seq || data), RFC 4253 6.4. */
static int
hmac(struct ssh_cipher *c, uint32_t seq, const uint8_t *data, size_t len, uint8_t *out)
{
	uint8_t s[4];
	size_t outl;

	ssh_poke_u32(s, seq);
	if (EVP_MAC_init(c->mctx, c->mac_key, c->mac->len, NULL) != 1 ||
	    EVP_MAC_update(c->mctx, s, 4) != 1 || EVP_MAC_update(c->mctx, data, len) != 1 ||
	    EVP_MAC_final(c->mctx, out, &outl, c->mac->len) != 1 || outl != c->mac->len)
		return PG_EINVAL;
	return 0;
}

/* RFC 5647 7.1: the invocation counter is the IV's last 8 bytes, incremented as a uint64. */
static void
gcm_next_iv(struct ssh_cipher *c)
{
	for (int i = 11; i >= 4; i--)
		if (++c->iv[i] != 0)
			break;
}

/* One GCM packet: AAD is the length field, the rest is encrypted, the tag follows. */
static int
gcm_run(struct ssh_cipher *c, uint8_t *p, size_t len)
{
	int outl, ok;

	ok = EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, c->iv, c->encrypt) == 1 &&
	    EVP_CipherUpdate(c->ctx, NULL, &outl, p, 4) == 1;
	if (ok && !c->encrypt)
		ok = EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG, p + len) == 1;
	if (ok)
		ok = crypt_inplace(c->ctx, p + 4, len - 4) == 0;
	gcm_next_iv(c);
	if (!ok)
		return PG_EINVAL;
	/* Final checks the tag when opening; its failure is the one authentication error here. */
	if (EVP_CipherFinal_ex(c->ctx, p + len, &outl) != 1)
		return c->encrypt ? PG_EINVAL : PG_EPROTO;
	if (c->encrypt && EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG, p + len) != 1)
		return PG_EINVAL;
	return 0;
}

int
ssh_cipher_get_length(struct ssh_cipher *c, uint32_t seq, uint8_t *p, uint32_t *plen)
{
	uint8_t l[4];
	int r;

	if (c->encrypt)
		return PG_EINVAL;
	switch (c->enc->kind) {
	case K_NONE:
	case K_GCM:
		break;
	case K_CHACHA:
		/* Decrypt a copy: the tag covers the encrypted length, so open needs it intact. */
		memcpy(l, p, 4);
		if ((r = chacha_set(c->hdr, 0, seq)) != 0 || (r = crypt_inplace(c->hdr, l, 4)) != 0)
			return r;
		*plen = ssh_peek_u32(l);
		return 0;
	case K_CTR:
		if (!c->mac->etm && !c->first_block_open) {
			if ((r = crypt_inplace(c->ctx, p, ssh_cipher_block_size(c))) != 0)
				return r;
			c->first_block_open = 1;
		}
		break;
	}
	*plen = ssh_peek_u32(p);
	return 0;
}

int
ssh_cipher_open(struct ssh_cipher *c, uint32_t seq, uint8_t *p, size_t len)
{
	uint8_t want[SSH_CIPHER_MAX_MAC];
	size_t bs = ssh_cipher_block_size(c);
	uint32_t plen;
	int r;

	if (c->encrypt || len < 4)
		return PG_EINVAL;
	switch (c->enc->kind) {
	case K_NONE:
		return 0;
	case K_CHACHA:
		if ((r = chacha_tag(c, seq, p, len, want)) != 0)
			return r;
		if (CRYPTO_memcmp(want, p + len, CHACHA_TAG) != 0)
			return PG_EPROTO;
		if ((r = ssh_cipher_get_length(c, seq, p, &plen)) != 0)
			return r;
		ssh_poke_u32(p, plen);
		if ((r = chacha_set(c->ctx, 1, seq)) != 0)
			return r;
		return crypt_inplace(c->ctx, p + 4, len - 4);
	case K_GCM:
		return gcm_run(c, p, len);
	case K_CTR:
		if (c->mac->etm) {
			/* Encrypt-then-MAC: nothing is decrypted before the MAC verifies. */
			if ((r = hmac(c, seq, p, len, want)) != 0)
				return r;
			if (CRYPTO_memcmp(want, p + len, c->mac->len) != 0)
				return PG_EPROTO;
			return crypt_inplace(c->ctx, p + 4, len - 4);
		}
		if (!c->first_block_open && (r = ssh_cipher_get_length(c, seq, p, &plen)) != 0)
			return r;
		c->first_block_open = 0;
		if (len < bs || (r = crypt_inplace(c->ctx, p + bs, len - bs)) != 0)
			return r != 0 ? r : PG_EINVAL;
		if ((r = hmac(c, seq, p, len, want)) != 0)
			return r;
		return CRYPTO_memcmp(want, p + len, c->mac->len) == 0 ? 0 : PG_EPROTO;
	}
	return PG_EINVAL;
}

int
ssh_cipher_seal(struct ssh_cipher *c, uint32_t seq, uint8_t *p, size_t len)
{
	int r;

	if (!c->encrypt || len < 4)
		return PG_EINVAL;
	switch (c->enc->kind) {
	case K_NONE:
		return 0;
	case K_CHACHA:
		if ((r = chacha_set(c->hdr, 0, seq)) != 0 || (r = crypt_inplace(c->hdr, p, 4)) != 0 ||
		    (r = chacha_set(c->ctx, 1, seq)) != 0 ||
		    (r = crypt_inplace(c->ctx, p + 4, len - 4)) != 0)
			return r;
		return chacha_tag(c, seq, p, len, p + len);
	case K_GCM:
		return gcm_run(c, p, len);
	case K_CTR:
		if (c->mac->etm) {
			if ((r = crypt_inplace(c->ctx, p + 4, len - 4)) != 0)
				return r;
			return hmac(c, seq, p, len, p + len);
		}
		if ((r = hmac(c, seq, p, len, p + len)) != 0)
			return r;
		return crypt_inplace(c->ctx, p, len);
	}
	return PG_EINVAL;
}
