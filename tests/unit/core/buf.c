/*
 * core/buf.c: the owned buffer keeps len <= cap <= max, and an append that would pass max fails with
 * PG_ETOOBIG and changes nothing (buf.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/buf.h"
#include "core/err.h"

static void
assert_content(const struct pg_buf *b, const char *want)
{
	assert_int_equal(b->len, strlen(want));
	assert_memory_equal(b->p, want, b->len);
	assert_true(b->len <= b->cap && b->cap <= b->max);
}

static void
test_init_empty(void **state)
{
	struct pg_buf b;

	pg_buf_init(&b, 100);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.max, 100);
	assert_int_equal(pg_buf_append(&b, "", 0), 0);
	assert_null(b.p);
	pg_buf_free(&b);
	pg_buf_free(&b);
}

static void
test_append_grows(void **state)
{
	struct pg_buf b;
	char chunk[1000];

	memset(chunk, 'z', sizeof(chunk));
	pg_buf_init(&b, 1u << 20);
	for (int i = 0; i < 100; i++)
		assert_int_equal(pg_buf_append(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(b.len, 100000);
	assert_true(b.cap >= b.len && b.cap <= b.max);
	assert_int_equal(b.p[0], 'z');
	assert_int_equal(b.p[99999], 'z');
	pg_buf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 1u << 20);
}

static void
test_max_enforced(void **state)
{
	struct pg_buf b;

	pg_buf_init(&b, 16);
	assert_int_equal(pg_buf_append_str(&b, "0123456789"), 0);
	assert_int_equal(pg_buf_append_str(&b, "abcdefg"), PG_ETOOBIG);
	assert_content(&b, "0123456789");
	/* Exactly up to max is allowed; one byte more is not. */
	assert_int_equal(pg_buf_append_str(&b, "abcdef"), 0);
	assert_content(&b, "0123456789abcdef");
	assert_int_equal(pg_buf_append(&b, "!", 1), PG_ETOOBIG);
	assert_content(&b, "0123456789abcdef");
	pg_buf_free(&b);
}

/* A length so large that len + n would wrap must still be refused. */
static void
test_max_no_overflow(void **state)
{
	struct pg_buf b;

	pg_buf_init(&b, 64);
	assert_int_equal(pg_buf_append_str(&b, "abc"), 0);
	assert_int_equal(pg_buf_append(&b, "x", SIZE_MAX - 1), PG_ETOOBIG);
	assert_content(&b, "abc");
	pg_buf_free(&b);
}

static void
test_printf(void **state)
{
	struct pg_buf b;

	pg_buf_init(&b, 4096);
	assert_int_equal(pg_buf_printf(&b, "%s=%d", "rise", 2), 0);
	assert_int_equal(pg_buf_printf(&b, ";%s=%u", "fall", 3u), 0);
	assert_int_equal(pg_buf_printf(&b, "%s", ""), 0);
	assert_content(&b, "rise=2;fall=3");
	pg_buf_free(&b);
}

static void
test_append_uint(void **state)
{
	struct pg_buf b;

	pg_buf_init(&b, 64);
	assert_int_equal(pg_buf_append_uint(&b, 0), 0);
	assert_int_equal(pg_buf_append(&b, " ", 1), 0);
	assert_int_equal(pg_buf_append_uint(&b, 443), 0);
	assert_int_equal(pg_buf_append(&b, " ", 1), 0);
	assert_int_equal(pg_buf_append_uint(&b, UINT64_MAX), 0);
	assert_content(&b, "0 443 18446744073709551615");
	pg_buf_free(&b);
	/* Like every append: past max it fails and changes nothing. */
	pg_buf_init(&b, 4);
	assert_int_equal(pg_buf_append_uint(&b, 12), 0);
	assert_int_equal(pg_buf_append_uint(&b, 345), PG_ETOOBIG);
	assert_content(&b, "12");
	pg_buf_free(&b);
}

static void
test_printf_max(void **state)
{
	struct pg_buf b;

	pg_buf_init(&b, 12);
	assert_int_equal(pg_buf_printf(&b, "%s", "hello"), 0);
	assert_int_equal(pg_buf_printf(&b, "%d", 12345678), PG_ETOOBIG);
	assert_content(&b, "hello");
	/* The terminator vsnprintf needs is not content: filling to exactly max must work. */
	assert_int_equal(pg_buf_printf(&b, "%s%d", ", wo", 123), 0);
	assert_content(&b, "hello, wo123");
	assert_int_equal(pg_buf_printf(&b, "%s", "x"), PG_ETOOBIG);
	assert_int_equal(pg_buf_printf(&b, "%s", ""), 0);
	assert_content(&b, "hello, wo123");
	pg_buf_free(&b);
}

static void
test_consume(void **state)
{
	struct pg_buf b;

	pg_buf_init(&b, 64);
	assert_int_equal(pg_buf_append_str(&b, "SSH-2.0-x\r\nrest"), 0);
	pg_buf_consume(&b, 0);
	assert_content(&b, "SSH-2.0-x\r\nrest");
	pg_buf_consume(&b, 11);
	assert_content(&b, "rest");
	assert_int_equal(pg_buf_append_str(&b, "+more"), 0);
	assert_content(&b, "rest+more");
	pg_buf_consume(&b, 9);
	assert_int_equal(b.len, 0);
	assert_int_equal(pg_buf_append_str(&b, "ab"), 0);
	pg_buf_consume(&b, 5);
	assert_int_equal(b.len, 0);
	pg_buf_free(&b);
}

static void
test_reset_keeps_memory(void **state)
{
	struct pg_buf b;
	uint8_t *p;

	pg_buf_init(&b, 64);
	assert_int_equal(pg_buf_append_str(&b, "abc"), 0);
	p = b.p;
	pg_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.p, p);
	assert_int_equal(pg_buf_append_str(&b, "xy"), 0);
	assert_content(&b, "xy");
	pg_buf_free(&b);
}

static void
test_slice_eq_ci(void **state)
{
	assert_int_equal(pg_slice_eq_ci(PG_SLICE_LIT("Upgrade"), "upgrade"), 1);
	assert_int_equal(pg_slice_eq_ci(PG_SLICE_LIT("UPGRADE"), "upgrade"), 1);
	assert_int_equal(pg_slice_eq_ci(PG_SLICE_LIT("upgrad"), "upgrade"), 0);
	assert_int_equal(pg_slice_eq_ci(PG_SLICE_LIT("upgrades"), "upgrade"), 0);
	assert_int_equal(pg_slice_eq_ci(PG_SLICE_LIT(""), ""), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_empty),
		cmocka_unit_test(test_append_grows),
		cmocka_unit_test(test_max_enforced),
		cmocka_unit_test(test_max_no_overflow),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_printf_max),
		cmocka_unit_test(test_consume),
		cmocka_unit_test(test_append_uint),
		cmocka_unit_test(test_reset_keeps_memory),
		cmocka_unit_test(test_slice_eq_ci),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
