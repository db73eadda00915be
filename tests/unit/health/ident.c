/* health/ident.c: scanning for the SSH identification line (RFC 4253 section 4.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "health/ident.h"

static int
scan(const char *s, size_t len, struct pg_slice *ident)
{
	return ssh_ident_scan((const uint8_t *)s, len, ident);
}

static void
assert_ident(const char *in, size_t len, const char *want)
{
	struct pg_slice id = { NULL, 0 };

	assert_int_equal(scan(in, len, &id), 1);
	assert_int_equal(id.len, strlen(want));
	assert_memory_equal(id.p, want, id.len);
	/* The slice points into the input, it is not a copy. */
	assert_true(id.p >= (const uint8_t *)in && id.p + id.len <= (const uint8_t *)in + len);
}

static void
test_crlf(void **state)
{
	static const char in[] = "SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n";

	assert_ident(in, sizeof(in) - 1, "SSH-2.0-OpenSSH_9.6p1 Debian-4");
}

static void
test_lf(void **state)
{
	static const char in[] = "SSH-2.0-dropbear_2022.83\n";

	assert_ident(in, sizeof(in) - 1, "SSH-2.0-dropbear_2022.83");
}

static void
test_v199(void **state)
{
	static const char in[] = "SSH-1.99-Cisco-1.25\r\n";

	assert_ident(in, sizeof(in) - 1, "SSH-1.99-Cisco-1.25");
}

static void
test_banner_before_ident(void **state)
{
	static const char in[] = "Welcome to dsvm-0\r\nAuthorized use only\n\r\nSSH-2.0-OpenSSH_9.6\r\n";

	assert_ident(in, sizeof(in) - 1, "SSH-2.0-OpenSSH_9.6");
}

/* Key exchange bytes after the ident are not looked at, even a NUL in them. */
static void
test_bytes_after_ident(void **state)
{
	static const char in[] = "SSH-2.0-x\r\n\0\0\1\x14";

	assert_ident(in, sizeof(in) - 1, "SSH-2.0-x");
}

static void
test_incomplete(void **state)
{
	static const char *const partial[] = { "", "S", "SSH-2.0-Open", "SSH-2.0-OpenSSH\r",
		"banner\r\n", "banner\r\nSSH-2", "SSH-1.5-x" };
	struct pg_slice id = { NULL, 0 };

	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
		if (scan(partial[i], strlen(partial[i]), &id) != 0)
			print_error("\"%s\" should need more bytes\n", partial[i]);
		assert_int_equal(scan(partial[i], strlen(partial[i]), &id), 0);
	}
	assert_null(id.p);
}

/* A line of 'fill' bytes of total length n including its "\r\n". */
static char *
line_of(size_t n, const char *tail)
{
	size_t tl = strlen(tail);
	char *s = malloc(n + tl + 1);

	assert_non_null(s);
	memset(s, 'b', n - 2);
	memcpy(s + n - 2, "\r\n", 2);
	memcpy(s + n, tail, tl + 1);
	return s;
}

static void
test_line_length_limit(void **state)
{
	struct pg_slice id;
	char *ok = line_of(SSH_IDENT_MAX_LINE, "SSH-2.0-x\r\n");
	char *bad = line_of(SSH_IDENT_MAX_LINE + 1, "SSH-2.0-x\r\n");
	char *open = malloc(SSH_IDENT_MAX_LINE + 1);

	assert_int_equal(scan(ok, strlen(ok), &id), 1);
	assert_int_equal(scan(bad, strlen(bad), &id), PG_EPROTO);
	/* Without its newline yet, an overlong line is refused as soon as it is overlong. */
	memset(open, 'b', SSH_IDENT_MAX_LINE + 1);
	assert_int_equal(scan(open, SSH_IDENT_MAX_LINE, &id), 0);
	assert_int_equal(scan(open, SSH_IDENT_MAX_LINE + 1, &id), PG_EPROTO);
	free(ok);
	free(bad);
	free(open);
}

static void
test_overlong_ident(void **state)
{
	char in[400];
	struct pg_slice id;

	memcpy(in, "SSH-2.0-", 8);
	memset(in + 8, 'v', 300);
	memcpy(in + 308, "\r\n", 2);
	assert_int_equal(scan(in, 310, &id), PG_EPROTO);
}

static void
test_nul(void **state)
{
	static const char in_ident[] = "SSH-2.0-Open\0SSH\r\n";
	static const char in_banner[] = "hel\0lo\r\nSSH-2.0-x\r\n";
	static const char in_open[] = "SSH-2.0\0";
	struct pg_slice id;

	assert_int_equal(scan(in_ident, sizeof(in_ident) - 1, &id), PG_EPROTO);
	assert_int_equal(scan(in_banner, sizeof(in_banner) - 1, &id), PG_EPROTO);
	assert_int_equal(scan(in_open, sizeof(in_open) - 1, &id), PG_EPROTO);
}

/* n banner lines, then the ident. */
static char *
banner_lines(size_t n)
{
	char *s = malloc(n * 8 + 32), *w = s;

	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		w += sprintf(w, "line%02zu\n", i % 100);
	strcpy(w, "SSH-2.0-x\r\n");
	return s;
}

static void
test_too_many_lines(void **state)
{
	struct pg_slice id;
	char *at_limit = banner_lines(SSH_IDENT_MAX_LINES);
	char *over = banner_lines(SSH_IDENT_MAX_LINES + 1);
	char *many = banner_lines(1000);

	/* SSH_IDENT_MAX_LINES pre-ident lines are accepted (ident.h); one more is not. */
	assert_int_equal(scan(at_limit, strlen(at_limit), &id), 1);
	assert_int_equal(scan(over, strlen(over), &id), PG_EPROTO);
	assert_int_equal(scan(many, strlen(many), &id), PG_EPROTO);
	free(at_limit);
	free(over);
	free(many);
}

static void
test_other_versions(void **state)
{
	static const char *const bad[] = { "SSH-1.5-OpenSSH_1.2\r\n", "SSH-1.5-\r\n", "SSH-2.0\r\n",
		"SSH-3.0-x\r\n", "SSH-2.0_x\r\n", "SSH-\r\n", "banner\r\nSSH-1.5-x\r\nSSH-2.0-y\r\n" };
	struct pg_slice id;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (scan(bad[i], strlen(bad[i]), &id) != PG_EPROTO)
			print_error("\"%s\" should be refused\n", bad[i]);
		assert_int_equal(scan(bad[i], strlen(bad[i]), &id), PG_EPROTO);
	}
}

/*
 * What a probe does: bytes arrive one at a time and it scans after each. It must reach the same
 * verdict (and ident) as a scan of everything at once, and never a different one on the way.
 */
static void
assert_bytewise_same(const char *in, size_t len)
{
	struct pg_slice whole = { NULL, 0 }, part = { NULL, 0 };
	int rw = scan(in, len, &whole), rp = 0;
	size_t n;

	for (n = 0; n <= len; n++) {
		if ((rp = scan(in, n, &part)) != 0)
			break;
	}
	assert_int_equal(rp, rw);
	if (rw == 1) {
		assert_int_equal(part.len, whole.len);
		assert_ptr_equal(part.p, whole.p);
	}
}

static void
test_bytewise(void **state)
{
	static const char *const inputs[] = { "SSH-2.0-OpenSSH_9.6\r\n", "SSH-2.0-x\n",
		"motd\r\n\r\nSSH-1.99-y z\r\nrest", "SSH-1.5-x\r\n", "a\0b\n", "SSH-2.0-x", "" };
	char *lines = banner_lines(SSH_IDENT_MAX_LINES + 1);
	char *longline = line_of(SSH_IDENT_MAX_LINE + 10, "SSH-2.0-x\r\n");

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		assert_bytewise_same(inputs[i], i == 4 ? 4 : strlen(inputs[i]));
	assert_bytewise_same(lines, strlen(lines));
	assert_bytewise_same(longline, strlen(longline));
	free(lines);
	free(longline);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_lf),
		cmocka_unit_test(test_v199),
		cmocka_unit_test(test_banner_before_ident),
		cmocka_unit_test(test_bytes_after_ident),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_line_length_limit),
		cmocka_unit_test(test_overlong_ident),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_too_many_lines),
		cmocka_unit_test(test_other_versions),
		cmocka_unit_test(test_bytewise),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
