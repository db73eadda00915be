/*
 * proxy/ssh/cipher: every cipher (and MAC for CTR) seals a packet the opening side accepts,
 * across many sequence numbers (GCM's counter, chacha's nonce), and any flipped bit, in the length,
 * the body or the tag, is PG_EPROTO. Interop with OpenSSH (tests/integration) is the known answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/rand.h>

#include "core/err.h"
#include "proxy/ssh/cipher.h"
#include "core/sshwire.h"

static const struct {
	const char *enc, *mac;
} pairs[] = {
	{ "chacha20-poly1305@openssh.com", NULL },
	{ "aes256-gcm@openssh.com", NULL },
	{ "aes128-gcm@openssh.com", NULL },
	{ "aes256-ctr", "hmac-sha2-256" },
	{ "aes192-ctr", "hmac-sha2-512" },
	{ "aes128-ctr", "hmac-sha2-256-etm@openssh.com" },
	{ "aes256-ctr", "hmac-sha2-512-etm@openssh.com" },
	{ "aes192-ctr", "hmac-sha2-256-etm@openssh.com" },
};
#define NPAIRS (sizeof(pairs) / sizeof(pairs[0]))

struct dir {
	struct ssh_cipher *seal, *open;
};

static void
make(size_t i, struct dir *d)
{
	uint8_t key[SSH_CIPHER_MAX_KEY], iv[SSH_CIPHER_MAX_IV], mk[SSH_CIPHER_MAX_MAC];
	size_t kl, il, ml;

	assert_int_equal(ssh_cipher_sizes(pairs[i].enc, pairs[i].mac, &kl, &il, &ml), 0);
	assert_true(kl <= sizeof(key) && il <= sizeof(iv) && ml <= sizeof(mk));
	assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
	assert_int_equal(RAND_bytes(iv, sizeof(iv)), 1);
	assert_int_equal(RAND_bytes(mk, sizeof(mk)), 1);
	assert_int_equal(ssh_cipher_new(pairs[i].enc, pairs[i].mac, 1, key, iv, mk, &d->seal), 0);
	assert_int_equal(ssh_cipher_new(pairs[i].enc, pairs[i].mac, 0, key, iv, mk, &d->open), 0);
}

/* A well-formed plaintext packet of payload_len bytes, aligned for c; returns its length. */
static size_t
build(struct ssh_cipher *c, uint8_t *p, size_t payload_len)
{
	size_t bs = ssh_cipher_block_size(c), aad = ssh_cipher_aad_len(c);
	size_t pad = bs - ((4 + 1 + payload_len - aad) % bs);

	if (pad < 4)
		pad += bs;
	ssh_poke_u32(p, (uint32_t)(1 + payload_len + pad));
	p[4] = (uint8_t)pad;
	for (size_t i = 0; i < payload_len + pad; i++)
		p[5 + i] = (uint8_t)(i * 7);
	return 4 + 1 + payload_len + pad;
}

static void
test_roundtrip(void **state)
{
	uint8_t pkt[2048], plain[2048];

	for (size_t i = 0; i < NPAIRS; i++) {
		struct dir d;

		make(i, &d);
		assert_string_equal(ssh_cipher_name(d.seal), pairs[i].enc);
		/* Sequence numbers across a wrap, and payload sizes across block boundaries. */
		for (uint32_t n = 0; n < 40; n++) {
			uint32_t seq = UINT32_MAX - 20 + n, plen;
			size_t len = build(d.seal, plain, n * 13);
			size_t lb = ssh_cipher_len_bytes(d.open);

			memcpy(pkt, plain, len);
			assert_int_equal(ssh_cipher_seal(d.seal, seq, pkt, len), 0);
			if (ssh_cipher_aad_len(d.seal) == 0)
				assert_memory_not_equal(pkt, plain, 4);
			assert_int_equal(ssh_cipher_get_length(d.open, seq, pkt, &plen), 0);
			assert_int_equal(plen, len - 4);
			assert_true(lb == 4 || lb == 16);
			assert_int_equal(ssh_cipher_open(d.open, seq, pkt, len), 0);
			assert_memory_equal(pkt, plain, len);
		}
		ssh_cipher_free(d.seal);
		ssh_cipher_free(d.open);
	}
}

/* Every bit flip, in each region, is caught; each trial uses fresh states so streams line up. */
static void
test_tamper(void **state)
{
	uint8_t pkt[256], plain[256];

	for (size_t i = 0; i < NPAIRS; i++) {
		size_t len = 0, mac_len = 0;
		size_t spots[4];

		for (int t = 0; t < 4; t++) {
			struct dir d;
			uint32_t plen;

			make(i, &d);
			len = build(d.seal, plain, 20);
			mac_len = ssh_cipher_mac_len(d.seal);
			spots[0] = 1;			/* length */
			spots[1] = 4;			/* padding length */
			spots[2] = len - 1;		/* padding */
			spots[3] = len + mac_len - 1;	/* MAC or tag */
			memcpy(pkt, plain, len);
			assert_int_equal(ssh_cipher_seal(d.seal, 5, pkt, len), 0);
			pkt[spots[t]] ^= 0x10;
			assert_int_equal(ssh_cipher_get_length(d.open, 5, pkt, &plen), 0);
			assert_int_equal(ssh_cipher_open(d.open, 5, pkt, len), PG_EPROTO);
			ssh_cipher_free(d.seal);
			ssh_cipher_free(d.open);
		}
		/* The wrong sequence number fails too (GCM has none: its counter is internal). */
		if (strstr(pairs[i].enc, "gcm") == NULL) {
			struct dir d;
			uint32_t plen;

			make(i, &d);
			len = build(d.seal, plain, 20);
			memcpy(pkt, plain, len);
			assert_int_equal(ssh_cipher_seal(d.seal, 5, pkt, len), 0);
			assert_int_equal(ssh_cipher_get_length(d.open, 6, pkt, &plen), 0);
			assert_int_equal(ssh_cipher_open(d.open, 6, pkt, len), PG_EPROTO);
			ssh_cipher_free(d.seal);
			ssh_cipher_free(d.open);
		}
	}
}

static void
test_names(void **state)
{
	struct ssh_cipher *c;
	size_t k, iv, m;
	uint8_t p[16] = { 0, 0, 0, 12, 4 };
	uint32_t plen;

	assert_true(ssh_cipher_known("aes128-ctr"));
	assert_false(ssh_cipher_known("none"));
	assert_false(ssh_cipher_known("3des-cbc"));
	assert_true(ssh_mac_known("hmac-sha2-512-etm@openssh.com"));
	assert_false(ssh_mac_known("hmac-sha1"));
	assert_true(ssh_cipher_is_aead("aes128-gcm@openssh.com"));
	assert_false(ssh_cipher_is_aead("aes128-ctr"));
	assert_int_equal(ssh_cipher_sizes("aes128-ctr", NULL, &k, &iv, &m), PG_EINVAL);
	assert_int_equal(ssh_cipher_sizes("aes128-ctr", "hmac-md5", &k, &iv, &m), PG_EINVAL);
	assert_int_equal(ssh_cipher_sizes("chacha20-poly1305@openssh.com", "x", &k, &iv, &m), 0);
	assert_int_equal(k, 64);
	assert_int_equal(m, 0);
	assert_int_equal(ssh_cipher_new("rc4", NULL, 1, NULL, NULL, NULL, &c), PG_EINVAL);
	/* none: identity, 8-byte blocks, no MAC. */
	assert_int_equal(ssh_cipher_new("none", NULL, 0, NULL, NULL, NULL, &c), 0);
	assert_int_equal(ssh_cipher_block_size(c), 8);
	assert_int_equal(ssh_cipher_mac_len(c), 0);
	assert_int_equal(ssh_cipher_get_length(c, 0, p, &plen), 0);
	assert_int_equal(plen, 12);
	assert_int_equal(ssh_cipher_open(c, 0, p, 16), 0);
	assert_int_equal(ssh_cipher_seal(c, 0, p, 16), PG_EINVAL);	/* wrong direction */
	ssh_cipher_free(c);
	ssh_cipher_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
