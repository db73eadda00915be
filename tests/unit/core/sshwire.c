/* core/sshwire: RFC 4251 section 5 encodings, including its worked mpint examples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/err.h"
#include "core/sshwire.h"

#define S(lit) PG_SLICE_LIT(lit)

static void
test_ints(void **state)
{
	struct pg_slice s = S("\x01\x00\x00\x00\x2a\x01\x02\x03\x04\x05\x06\x07\x08\x00\x07");
	uint8_t u8;
	uint32_t u32;
	uint64_t u64;
	int b;

	assert_int_equal(ssh_get_u8(&s, &u8), 0);
	assert_int_equal(u8, 1);
	assert_int_equal(ssh_get_u32(&s, &u32), 0);
	assert_int_equal(u32, 42);
	assert_int_equal(ssh_get_u64(&s, &u64), 0);
	assert_true(u64 == 0x0102030405060708ull);
	assert_int_equal(ssh_get_bool(&s, &b), 0);
	assert_int_equal(b, 0);
	assert_int_equal(ssh_get_bool(&s, &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(ssh_get_end(s), 0);
	/* Past the end: an error, and nothing moves. */
	assert_int_equal(ssh_get_u8(&s, &u8), PG_EPARSE);
	s = (struct pg_slice)S("\x00\x00\x00");
	assert_int_equal(ssh_get_u32(&s, &u32), PG_EPARSE);
	assert_int_equal(s.len, 3);
	s = (struct pg_slice)S("\x00\x00\x00\x00\x00\x00\x00");
	assert_int_equal(ssh_get_u64(&s, &u64), PG_EPARSE);
	assert_int_equal(ssh_get_end(s), PG_EPARSE);
}

static void
test_string(void **state)
{
	struct pg_slice s = S("\x00\x00\x00\x07testing\x00\x00\x00\x00"), v;

	assert_int_equal(ssh_get_string(&s, &v), 0);
	assert_true(ssh_slice_eq(v, "testing"));
	assert_int_equal(ssh_get_string(&s, &v), 0);
	assert_int_equal(v.len, 0);
	assert_int_equal(ssh_get_end(s), 0);
	/* A length one past the data, and a length that would wrap a 32-bit size. */
	s = (struct pg_slice)S("\x00\x00\x00\x08testing");
	assert_int_equal(ssh_get_string(&s, &v), PG_EPARSE);
	assert_int_equal(s.len, 11);
	s = (struct pg_slice)S("\xff\xff\xff\xfftesting");
	assert_int_equal(ssh_get_string(&s, &v), PG_EPARSE);
}

static void
test_namelist(void **state)
{
	struct pg_slice s = S("\x00\x00\x00\x09zlib,none"), v, n;

	assert_int_equal(ssh_get_namelist(&s, &v), 0);
	assert_int_equal(ssh_namelist_next(&v, &n), 1);
	assert_true(ssh_slice_eq(n, "zlib"));
	assert_int_equal(ssh_namelist_next(&v, &n), 1);
	assert_true(ssh_slice_eq(n, "none"));
	assert_int_equal(ssh_namelist_next(&v, &n), 0);

	s = (struct pg_slice)S("\x00\x00\x00\x00");
	assert_int_equal(ssh_get_namelist(&s, &v), 0);
	assert_int_equal(v.len, 0);

	static const char *bad[] = { ",a", "a,", "a,,b", "a b", "a\x7f", "a\0b" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t raw[16];
		size_t n_ = i == 5 ? 3 : strlen(bad[i]);

		ssh_poke_u32(raw, (uint32_t)n_);
		memcpy(raw + 4, bad[i], n_);
		s = (struct pg_slice){ raw, 4 + n_ };
		assert_int_equal(ssh_get_namelist(&s, &v), PG_EPARSE);
	}
	assert_true(ssh_namelist_has(PG_SLICE_LIT("a,bc,d"), "bc"));
	assert_false(ssh_namelist_has(PG_SLICE_LIT("a,bc,d"), "b"));
	assert_false(ssh_namelist_has(PG_SLICE_LIT(""), "b"));
}

/* RFC 4251 section 5's examples. */
static const struct {
	const char *hex_val;	/* magnitude */
	size_t val_len;
	const char *wire;
	size_t wire_len;
} mpints[] = {
	{ "", 0, "\x00\x00\x00\x00", 4 },
	{ "\x09\xa3\x78\xf9\xb2\xe3\x32\xa7", 8, "\x00\x00\x00\x08\x09\xa3\x78\xf9\xb2\xe3\x32\xa7", 12 },
	{ "\x80", 1, "\x00\x00\x00\x02\x00\x80", 6 },
};

static void
test_mpint(void **state)
{
	struct pg_buf b;
	struct pg_slice s, v;
	BIGNUM *bn;

	pg_buf_init(&b, 64);
	for (size_t i = 0; i < sizeof(mpints) / sizeof(mpints[0]); i++) {
		pg_buf_reset(&b);
		assert_int_equal(ssh_put_mpint(&b, (const uint8_t *)mpints[i].hex_val, mpints[i].val_len), 0);
		assert_int_equal(b.len, mpints[i].wire_len);
		assert_memory_equal(b.p, mpints[i].wire, b.len);
		s = (struct pg_slice){ b.p, b.len };
		assert_int_equal(ssh_get_mpint(&s, &v), 0);
		assert_int_equal(v.len, mpints[i].val_len);
		if (v.len)
			assert_memory_equal(v.p, mpints[i].hex_val, v.len);
		s = (struct pg_slice){ b.p, b.len };
		assert_int_equal(ssh_get_mpint_bn(&s, &bn), 0);
		pg_buf_reset(&b);
		assert_int_equal(ssh_put_mpint_bn(&b, bn), 0);
		assert_memory_equal(b.p, mpints[i].wire, b.len);
		BN_free(bn);
	}
	/* Leading zeros in the input magnitude are dropped. */
	pg_buf_reset(&b);
	assert_int_equal(ssh_put_mpint(&b, (const uint8_t *)"\x00\x00\x7f", 3), 0);
	assert_int_equal(b.len, 5);
	/* Negative, unnecessary zero, lone zero byte. */
	s = (struct pg_slice)S("\x00\x00\x00\x02\xed\xcc");
	assert_int_equal(ssh_get_mpint(&s, &v), PG_EPARSE);
	s = (struct pg_slice)S("\x00\x00\x00\x02\x00\x7f");
	assert_int_equal(ssh_get_mpint(&s, &v), PG_EPARSE);
	s = (struct pg_slice)S("\x00\x00\x00\x01\x00");
	assert_int_equal(ssh_get_mpint(&s, &v), PG_EPARSE);
	pg_buf_free(&b);
	/* Over the size bound. */
	pg_buf_init(&b, 8192);
	uint8_t big[SSH_MPINT_MAX_BYTES + 1];
	memset(big, 0x11, sizeof(big));
	assert_int_equal(ssh_put_mpint(&b, big, sizeof(big)), 0);
	s = (struct pg_slice){ b.p, b.len };
	assert_int_equal(ssh_get_mpint(&s, &v), PG_EPARSE);
	pg_buf_reset(&b);
	assert_int_equal(ssh_put_mpint(&b, big, sizeof(big) - 1), 0);
	s = (struct pg_slice){ b.p, b.len };
	assert_int_equal(ssh_get_mpint(&s, &v), 0);
	pg_buf_free(&b);
}

static void
test_writers(void **state)
{
	static const char *const names[] = { "aes128-ctr", "none" };
	static const char *const bad[] = { "a,b" };
	struct pg_buf b;

	pg_buf_init(&b, 64);
	assert_int_equal(ssh_put_u8(&b, 7), 0);
	assert_int_equal(ssh_put_bool(&b, 5), 0);
	assert_int_equal(ssh_put_u32(&b, 0xdeadbeef), 0);
	assert_int_equal(ssh_put_u64(&b, 1), 0);
	assert_int_equal(ssh_put_cstring(&b, "hi"), 0);
	assert_int_equal(ssh_put_namelist(&b, names, 2), 0);
	assert_memory_equal(b.p, "\x07\x01\xde\xad\xbe\xef\0\0\0\0\0\0\0\x01\0\0\0\x02hi"
	    "\0\0\0\x0f" "aes128-ctr,none", b.len);
	assert_int_equal(ssh_put_namelist(&b, bad, 1), PG_EINVAL);
	pg_buf_free(&b);

	/* A string that does not fit leaves the buffer as it was, length prefix included. */
	pg_buf_init(&b, 8);
	assert_int_equal(ssh_put_u8(&b, 1), 0);
	assert_int_equal(ssh_put_cstring(&b, "abcd"), PG_ETOOBIG);
	assert_int_equal(b.len, 1);
	assert_int_equal(ssh_put_mpint(&b, (const uint8_t *)"\x80\x01\x02", 3), PG_ETOOBIG);
	assert_int_equal(b.len, 1);
	pg_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ints),
		cmocka_unit_test(test_string),
		cmocka_unit_test(test_namelist),
		cmocka_unit_test(test_mpint),
		cmocka_unit_test(test_writers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
