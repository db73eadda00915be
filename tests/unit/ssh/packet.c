/*
 * proxy/ssh/packet: framing over every cipher, fed one byte at a time, and each way a packet can be
 * malformed (length, padding, MAC, size) failing with its own reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "core/err.h"
#include "proxy/ssh/packet.h"
#include "core/sshwire.h"

static const struct {
	const char *enc, *mac;
} pairs[] = {
	{ "none", NULL },
	{ "chacha20-poly1305@openssh.com", NULL },
	{ "aes256-gcm@openssh.com", NULL },
	{ "aes128-gcm@openssh.com", NULL },
	{ "aes128-ctr", "hmac-sha2-256" },
	{ "aes192-ctr", "hmac-sha2-512" },
	{ "aes256-ctr", "hmac-sha2-256-etm@openssh.com" },
	{ "aes128-ctr", "hmac-sha2-512-etm@openssh.com" },
};
#define NPAIRS (sizeof(pairs) / sizeof(pairs[0]))

/* A sender and a receiver keyed alike for pair i. */
static void
pair_up(size_t i, struct ssh_packet **tx, struct ssh_packet **rx)
{
	uint8_t key[SSH_CIPHER_MAX_KEY], iv[SSH_CIPHER_MAX_IV], mk[SSH_CIPHER_MAX_MAC];
	struct ssh_cipher *s, *o;

	assert_int_equal(ssh_packet_new(tx), 0);
	assert_int_equal(ssh_packet_new(rx), 0);
	if (strcmp(pairs[i].enc, "none") == 0)
		return;
	assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
	assert_int_equal(RAND_bytes(iv, sizeof(iv)), 1);
	assert_int_equal(RAND_bytes(mk, sizeof(mk)), 1);
	assert_int_equal(ssh_cipher_new(pairs[i].enc, pairs[i].mac, 1, key, iv, mk, &s), 0);
	assert_int_equal(ssh_cipher_new(pairs[i].enc, pairs[i].mac, 0, key, iv, mk, &o), 0);
	ssh_packet_set_cipher(*tx, SSH_DIR_OUT, s);
	ssh_packet_set_cipher(*rx, SSH_DIR_IN, o);
}

static void
take(struct ssh_packet *tx, struct pg_buf *wire)
{
	pg_buf_init(wire, 8 * 1024 * 1024);
	assert_int_equal(ssh_packet_take_output(tx, wire), 0);
	assert_int_equal(ssh_packet_output_len(tx), 0);
}

static void
test_one_byte_feeding(void **state)
{
	static const size_t sizes[] = { 1, 2, 15, 16, 17, 100, 4096, 32768 };
	uint8_t *payload = malloc(32768);

	for (size_t i = 0; i < NPAIRS; i++) {
		struct ssh_packet *tx, *rx;
		struct pg_buf wire;
		size_t got = 0, off = 0;

		pair_up(i, &tx, &rx);
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			memset(payload, (int)k + 1, sizes[k]);
			assert_int_equal(ssh_packet_send(tx, payload, sizes[k]), 0);
		}
		take(tx, &wire);
		/* One byte at a time: every packet appears exactly when its last byte arrives. */
		for (off = 0; off < wire.len; off++) {
			struct pg_slice pl;
			uint32_t seq;
			int r;

			assert_int_equal(ssh_packet_feed(rx, wire.p + off, 1), 0);
			while ((r = ssh_packet_next(rx, &pl, &seq)) == 1) {
				assert_int_equal(seq, got);
				assert_int_equal(pl.len, sizes[got]);
				assert_int_equal(pl.p[0], got + 1);
				assert_int_equal(pl.p[pl.len - 1], got + 1);
				got++;
			}
			assert_int_equal(r, 0);
		}
		assert_int_equal(got, sizeof(sizes) / sizeof(sizes[0]));
		assert_int_equal(ssh_packet_input_len(rx), 0);
		assert_int_equal(ssh_packet_counters(rx, SSH_DIR_IN).packets, got);
		assert_int_equal(ssh_packet_counters(rx, SSH_DIR_IN).bytes, wire.len);
		assert_int_equal(ssh_packet_counters(tx, SSH_DIR_OUT).bytes, wire.len);
		assert_int_equal(ssh_packet_seq(tx, SSH_DIR_OUT), got);
		pg_buf_free(&wire);
		ssh_packet_free(tx);
		ssh_packet_free(rx);
	}
	free(payload);
}

static void
test_max_payload(void **state)
{
	uint8_t *payload = calloc(1, SSH_PACKET_MAX_PAYLOAD + 1);

	for (size_t i = 0; i < NPAIRS; i++) {
		struct ssh_packet *tx, *rx;
		struct pg_buf wire;
		struct pg_slice pl;
		uint32_t seq;

		pair_up(i, &tx, &rx);
		assert_int_equal(ssh_packet_send(tx, payload, SSH_PACKET_MAX_PAYLOAD + 1), PG_EINVAL);
		assert_int_equal(ssh_packet_send(tx, payload, 0), PG_EINVAL);
		assert_int_equal(ssh_packet_output_len(tx), 0);
		payload[0] = 94;
		assert_int_equal(ssh_packet_send(tx, payload, SSH_PACKET_MAX_PAYLOAD), 0);
		take(tx, &wire);
		assert_true(wire.len <= SSH_PACKET_MAX);
		assert_int_equal(ssh_packet_feed(rx, wire.p, wire.len), 0);
		assert_int_equal(ssh_packet_next(rx, &pl, &seq), 1);
		assert_int_equal(pl.len, SSH_PACKET_MAX_PAYLOAD);
		pg_buf_free(&wire);
		ssh_packet_free(tx);
		ssh_packet_free(rx);
	}
	free(payload);
}

/* Feeds a hand-made cleartext packet to a fresh receiver and returns next()'s result. */
static int
feed_raw(const uint8_t *p, size_t len, struct ssh_packet **rxp)
{
	struct ssh_packet *rx;
	struct pg_slice pl;
	uint32_t seq;

	assert_int_equal(ssh_packet_new(&rx), 0);
	assert_int_equal(ssh_packet_feed(rx, p, len), 0);
	*rxp = rx;
	return ssh_packet_next(rx, &pl, &seq);
}

static void
expect_error(const uint8_t *p, size_t len, const char *reason)
{
	struct ssh_packet *rx;
	struct pg_slice pl;
	uint32_t seq;

	assert_int_equal(feed_raw(p, len, &rx), PG_EPROTO);
	assert_non_null(strstr(ssh_packet_error(rx), reason));
	/* Sticky. */
	assert_int_equal(ssh_packet_next(rx, &pl, &seq), PG_EPROTO);
	assert_int_equal(ssh_packet_feed(rx, p, 1), PG_EPROTO);
	ssh_packet_free(rx);
}

static void
test_bad_framing(void **state)
{
	/* length 12, padding 4, payload 7 bytes (4 + 12 = 16, aligned to 8) is the good one. */
	uint8_t good[16] = { 0, 0, 0, 12, 4, 21, 1, 2, 3, 4, 5, 6 };
	uint8_t p[16];
	struct ssh_packet *rx;

	assert_int_equal(feed_raw(good, sizeof(good), &rx), 1);
	ssh_packet_free(rx);

	memcpy(p, good, 16);
	ssh_poke_u32(p, 4);
	expect_error(p, 16, "below minimum");
	ssh_poke_u32(p, 13);
	expect_error(p, 16, "not a multiple of block size");
	ssh_poke_u32(p, SSH_PACKET_MAX);
	expect_error(p, 16, "over 262144");
	ssh_poke_u32(p, 0xfffffff4);
	expect_error(p, 16, "over 262144");
	memcpy(p, good, 16);
	p[4] = 3;
	expect_error(p, 16, "padding length 3 below 4");
	p[4] = 11;
	expect_error(p, 16, "leaves no payload");
	p[4] = 200;
	expect_error(p, 16, "leaves no payload");
	/* The length is judged from its 4 bytes alone, before the rest arrives. */
	ssh_poke_u32(p, 1000000);
	expect_error(p, 4, "over 262144");
}

static void
test_bad_mac(void **state)
{
	for (size_t i = 1; i < NPAIRS; i++) {
		struct ssh_packet *tx, *rx;
		struct pg_buf wire;
		struct pg_slice pl;
		uint32_t seq;

		pair_up(i, &tx, &rx);
		assert_int_equal(ssh_packet_send(tx, (const uint8_t *)"\x05hello", 6), 0);
		take(tx, &wire);
		wire.p[wire.len - 1] ^= 1;
		assert_int_equal(ssh_packet_feed(rx, wire.p, wire.len), 0);
		assert_int_equal(ssh_packet_next(rx, &pl, &seq), PG_EPROTO);
		assert_non_null(strstr(ssh_packet_error(rx), "bad MAC on packet 0"));
		pg_buf_free(&wire);
		ssh_packet_free(tx);
		ssh_packet_free(rx);
	}
}

/*
 * A bad length from a peer using CTR with a plain MAC is caught from the first decrypted block,
 * before the MAC, exactly as with the none cipher.
 */
static void
test_bad_length_encrypted(void **state)
{
	uint8_t key[32] = { 1 }, iv[16] = { 2 }, mk[32] = { 3 }, p[64] = { 0 };
	struct ssh_cipher *s, *o;
	struct ssh_packet *rx;
	struct pg_slice pl;
	uint32_t seq;

	assert_int_equal(ssh_cipher_new("aes128-ctr", "hmac-sha2-256", 1, key, iv, mk, &s), 0);
	assert_int_equal(ssh_cipher_new("aes128-ctr", "hmac-sha2-256", 0, key, iv, mk, &o), 0);
	ssh_poke_u32(p, 300000);
	assert_int_equal(ssh_cipher_seal(s, 0, p, 32), 0);
	assert_int_equal(ssh_packet_new(&rx), 0);
	ssh_packet_set_cipher(rx, SSH_DIR_IN, o);
	assert_int_equal(ssh_packet_feed(rx, p, 16), 0);
	assert_int_equal(ssh_packet_next(rx, &pl, &seq), PG_EPROTO);
	assert_non_null(strstr(ssh_packet_error(rx), "packet length 300000 over"));
	ssh_cipher_free(s);
	ssh_packet_free(rx);
}

static void
test_seq_wrap_and_reset(void **state)
{
	struct ssh_packet *tx, *rx;
	struct pg_buf wire;
	struct pg_slice pl;
	uint32_t seq;

	pair_up(1, &tx, &rx);
	assert_int_equal(ssh_packet_send(tx, (const uint8_t *)"\x02", 1), 0);
	assert_int_equal(ssh_packet_seq(tx, SSH_DIR_OUT), 1);
	ssh_packet_reset_seq(tx, SSH_DIR_OUT);
	assert_int_equal(ssh_packet_seq(tx, SSH_DIR_OUT), 0);
	assert_int_equal(ssh_packet_send(tx, (const uint8_t *)"\x02", 1), 0);
	take(tx, &wire);
	/* Both packets used sequence number 0: the receiver must reset to match. */
	assert_int_equal(ssh_packet_feed(rx, wire.p, wire.len), 0);
	assert_int_equal(ssh_packet_next(rx, &pl, &seq), 1);
	ssh_packet_reset_seq(rx, SSH_DIR_IN);
	assert_int_equal(ssh_packet_next(rx, &pl, &seq), 1);
	assert_int_equal(seq, 0);
	assert_false(ssh_packet_seq_wrapped(rx, SSH_DIR_IN));
	assert_int_equal(ssh_packet_counters(rx, SSH_DIR_IN).packets, 2);
	ssh_packet_reset_counters(rx);
	assert_int_equal(ssh_packet_counters(rx, SSH_DIR_IN).packets, 0);
	pg_buf_free(&wire);
	ssh_packet_free(tx);
	ssh_packet_free(rx);
}

static void
test_input_bound(void **state)
{
	struct ssh_packet *rx;
	uint8_t *big = calloc(1, SSH_PACKET_MAX_INPUT + 1);

	assert_int_equal(ssh_packet_new(&rx), 0);
	assert_int_equal(ssh_packet_feed(rx, big, SSH_PACKET_MAX_INPUT + 1), PG_ETOOBIG);
	assert_int_equal(ssh_packet_feed(rx, big, SSH_PACKET_MAX_INPUT), 0);
	ssh_packet_free(rx);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_byte_feeding),
		cmocka_unit_test(test_max_payload),
		cmocka_unit_test(test_bad_framing),
		cmocka_unit_test(test_bad_mac),
		cmocka_unit_test(test_bad_length_encrypted),
		cmocka_unit_test(test_seq_wrap_and_reset),
		cmocka_unit_test(test_input_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
