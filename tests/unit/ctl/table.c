/*
 * ctl/table.c and the pure parts of ctl/client.c: names from the server cannot drive the terminal
 * (control characters escaped), tables align by display width, user names are percent-encoded
 * into paths (core/urlenc.c), --admin parses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/client.h"
#include "ctl/table.h"
#include "core/urlenc.h"

static void
sanitized(const char *in, const char *want)
{
	struct pg_buf b;

	pg_buf_init(&b, 4096);
	assert_int_equal(ctl_sanitize(&b, in), 0);
	assert_int_equal(pg_buf_append(&b, "", 1), 0);
	assert_string_equal((const char *)b.p, want);
	pg_buf_free(&b);
}

static void
test_sanitize(void **state)
{
	sanitized("alice", "alice");
	sanitized("\x1b]0;owned\x07", "\\x1b]0;owned\\x07");
	sanitized("a\nb\rc\x7f", "a\\x0ab\\x0dc\\x7f");
	sanitized("back\\slash", "back\\\\slash");
	/* U+009B (CSI as one C1 character) in UTF-8; U+00E9 stays. */
	sanitized("x\xc2\x9b" "31m\xc3\xa9", "x\\xc2\\x9b31m\xc3\xa9");
	assert_int_equal(ctl_width("\xc3\xa9t\xc3\xa9"), 3);
	assert_int_equal(ctl_width(""), 0);
}

static void
test_table(void **state)
{
	static const char *const head[] = { "USER", "INSTANCE" };
	const char *r1[] = { "al\x1b[2Jice", "demo-1" }, *r2[] = { "b\xc3\xa9", NULL };
	struct ctl_table *t = ctl_table_new(2, head);
	char out[512] = "";
	FILE *f = fmemopen(out, sizeof(out) - 1, "w");

	assert_non_null(t);
	assert_non_null(f);
	assert_int_equal(ctl_table_add(t, r1), 0);
	assert_int_equal(ctl_table_add(t, r2), 0);
	ctl_table_print(t, f);
	fclose(f);
	assert_string_equal(out,
	    "USER          INSTANCE\n"
	    "al\\x1b[2Jice  demo-1\n"
	    "b\xc3\xa9            -\n");
	ctl_table_free(t);
	assert_null(ctl_table_new(0, head));
}

static void
test_path_segment(void **state)
{
	struct pg_buf b;

	pg_buf_init(&b, 4096);
	assert_int_equal(pg_pct_encode_segment(&b, "al/ice <b>%?#\xc3\xa9~._-Z9"), 0);
	assert_int_equal(pg_buf_append(&b, "", 1), 0);
	assert_string_equal((const char *)b.p, "al%2Fice%20%3Cb%3E%25%3F%23%C3%A9~._-Z9");
	pg_buf_free(&b);
}

static void
test_hostport(void **state)
{
	struct ctl_target t;

	assert_int_equal(ctl_parse_hostport("127.0.0.1:9090", &t), 0);
	assert_string_equal(t.host, "127.0.0.1");
	assert_string_equal(t.port, "9090");
	assert_int_equal(ctl_parse_hostport("[::1]:9090", &t), 0);
	assert_string_equal(t.host, "::1");
	assert_int_equal(ctl_parse_hostport("admin.example:80", &t), 0);
	assert_int_equal(ctl_parse_hostport("::1:9090", &t), -1);
	assert_int_equal(ctl_parse_hostport("127.0.0.1", &t), -1);
	assert_int_equal(ctl_parse_hostport("127.0.0.1:", &t), -1);
	assert_int_equal(ctl_parse_hostport(":9090", &t), -1);
	assert_int_equal(ctl_parse_hostport("h:90x", &t), -1);
	assert_int_equal(ctl_parse_hostport("[::1]9090", &t), -1);
	assert_int_equal(ctl_parse_hostport("h:12345678", &t), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_path_segment),
		cmocka_unit_test(test_hostport),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
