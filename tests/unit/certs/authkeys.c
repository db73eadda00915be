/*
 * certs/authkeys: user names safe for paths, %u expansion, and authorized_keys matching (options
 * refused, comments and junk skipped, type of line and blob must agree).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "certs/authkeys.h"
#include "core/err.h"

static void
test_user_ok(void **state)
{
	assert_true(authkeys_user_ok("alice"));
	assert_true(authkeys_user_ok("pgtest-alice"));
	assert_true(authkeys_user_ok("a.b_c"));
	assert_false(authkeys_user_ok(""));
	assert_false(authkeys_user_ok(".."));
	assert_false(authkeys_user_ok("-oProxy"));
	assert_false(authkeys_user_ok("a/b"));
	assert_false(authkeys_user_ok("a b"));
	assert_false(authkeys_user_ok("abcdefghijabcdefghijabcdefghijabc"));	/* 33 */
}

static void
test_expand(void **state)
{
	char out[64];

	assert_int_equal(authkeys_expand("/h/%u/.ssh/ak", "bob", out, sizeof(out)), 0);
	assert_string_equal(out, "/h/bob/.ssh/ak");
	assert_int_equal(authkeys_expand("/h/%%/%u%u", "bob", out, sizeof(out)), 0);
	assert_string_equal(out, "/h/%/bobbob");
	assert_int_equal(authkeys_expand("/h/%u", "../x", out, sizeof(out)), PG_EINVAL);
	assert_int_equal(authkeys_expand("/h/%h/%u", "bob", out, sizeof(out)), PG_EINVAL);
	assert_int_equal(authkeys_expand("/a/very/long/path/%u", "bob", out, 10), PG_ETOOBIG);
}

static struct pg_buf
line_of(const struct sshkey *k, const char *prefix, const char *comment)
{
	struct pg_buf b;

	pg_buf_init(&b, 65536);
	assert_int_equal(pg_buf_append_str(&b, prefix), 0);
	assert_int_equal(sshkey_write_public(k, comment, &b), 0);
	return b;
}

static void
test_match(void **state)
{
	struct sshkey *a, *b;
	struct pg_buf t, la;

	assert_int_equal(sshkey_generate_ed25519(&a), 0);
	assert_int_equal(sshkey_generate_ed25519(&b), 0);
	la = line_of(a, "", "alice@laptop");
	t = line_of(b, "# a comment\n\n   \t\ngarbage line\nssh-ed25519 AAAA!!!\n", NULL);
	assert_int_equal(authkeys_match((struct pg_slice){ t.p, t.len }, a, "t", NULL), 0);
	assert_int_equal(authkeys_match((struct pg_slice){ t.p, t.len }, b, "t", NULL), 1);
	assert_int_equal(pg_buf_append(&t, la.p, la.len), 0);
	assert_int_equal(authkeys_match((struct pg_slice){ t.p, t.len }, a, "t", NULL), 1);
	pg_buf_free(&t);

	/* Options: refused, never ignored. */
	t = line_of(a, "restrict ", NULL);
	assert_int_equal(authkeys_match((struct pg_slice){ t.p, t.len }, a, "t", NULL), 0);
	pg_buf_free(&t);
	t = line_of(a, "from=\"10.0.0.0/8\" ", NULL);
	assert_int_equal(authkeys_match((struct pg_slice){ t.p, t.len }, a, "t", NULL), 0);
	pg_buf_free(&t);

	/* CRLF line ends and no final newline. */
	t = line_of(a, "", NULL);
	t.p[t.len - 1] = '\r';
	assert_int_equal(authkeys_match((struct pg_slice){ t.p, t.len }, a, "t", NULL), 1);
	pg_buf_free(&t);

	/* A blob under another type's name does not match. */
	{
		char *sp = memchr(la.p, ' ', la.len);
		struct pg_buf m;

		pg_buf_init(&m, 65536);
		assert_int_equal(pg_buf_append_str(&m, "ssh-rsa"), 0);
		assert_int_equal(pg_buf_append(&m, sp, la.len - (size_t)((uint8_t *)sp - la.p)), 0);
		assert_int_equal(authkeys_match((struct pg_slice){ m.p, m.len }, a, "t", NULL), 0);
		pg_buf_free(&m);
	}
	pg_buf_free(&la);
	sshkey_free(a);
	sshkey_free(b);
}

static void
test_file(void **state)
{
	char path[] = "/tmp/pg-authkeys-XXXXXX";
	struct sshkey *a;
	struct pg_buf la;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(sshkey_generate_ed25519(&a), 0);
	la = line_of(a, "", "x");
	assert_int_equal(write(fd, la.p, la.len), (ssize_t)la.len);
	close(fd);
	assert_int_equal(authkeys_check_file(path, a, NULL), 1);
	unlink(path);
	assert_int_equal(authkeys_check_file(path, a, NULL), PG_ENOTFOUND);
	pg_buf_free(&la);
	sshkey_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_ok),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
