/*
 * core/token.c: token files (line ends, alphabet, length, permissions), Authorization headers, and
 * the digest compare.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/token.h"

#define TOK "0123456789abcdef0123456789abcdef"

static int
parse_file(const char *text, struct pg_slice *tok)
{
	const char *why = NULL;
	int r = pg_token_parse_file(text, strlen(text), tok, &why);

	if (r != 0)
		assert_non_null(why);
	return r;
}

static void
test_file_line_ends(void **state)
{
	struct pg_slice t;

	assert_int_equal(parse_file(TOK, &t), 0);
	assert_int_equal(t.len, 32);
	assert_int_equal(parse_file(TOK "\n", &t), 0);
	assert_int_equal(t.len, 32);
	assert_int_equal(parse_file(TOK "\r\n", &t), 0);
	assert_int_equal(t.len, 32);
	/* One line end only: a blank second line is a second line. */
	assert_int_equal(parse_file(TOK "\n\n", &t), PG_EPARSE);
	assert_int_equal(parse_file(TOK " \n", &t), PG_EPARSE);
	assert_int_equal(parse_file(" " TOK, &t), PG_EPARSE);
	assert_int_equal(parse_file(TOK "\nsecond\n", &t), PG_EPARSE);
	assert_int_equal(parse_file("", &t), PG_EPARSE);
	assert_int_equal(parse_file("\n", &t), PG_EPARSE);
}

static void
test_file_alphabet_and_length(void **state)
{
	struct pg_slice t;
	char big[PG_TOKEN_MAX + 2];

	assert_int_equal(parse_file("aZ09-._~+/aZ09-._~+/==", &t), 0);
	assert_int_equal(parse_file("short-token-15c", &t), PG_EPARSE);
	assert_int_equal(parse_file("exactly-16-chars", &t), 0);
	assert_int_equal(parse_file("0123456789abcdef=x", &t), PG_EPARSE);	/* '=' only at the end */
	assert_int_equal(parse_file("=0123456789abcdef", &t), PG_EPARSE);
	assert_int_equal(parse_file("0123456789abcdef\"", &t), PG_EPARSE);
	assert_int_equal(parse_file("0123456789ab\tcdef", &t), PG_EPARSE);
	memset(big, 'a', sizeof(big));
	big[PG_TOKEN_MAX] = '\0';
	assert_int_equal(parse_file(big, &t), 0);
	big[PG_TOKEN_MAX] = 'a';
	big[PG_TOKEN_MAX + 1] = '\0';
	assert_int_equal(parse_file(big, &t), PG_EPARSE);
}

static int
parse_auth(const char *v, struct pg_slice *tok)
{
	return pg_token_parse_authorization(v, strlen(v), tok);
}

static void
test_authorization(void **state)
{
	struct pg_slice t;

	assert_int_equal(parse_auth("Bearer " TOK, &t), 0);
	assert_int_equal(t.len, 32);
	assert_memory_equal(t.p, TOK, 32);
	assert_int_equal(parse_auth("bearer " TOK, &t), 0);
	assert_int_equal(parse_auth("BEARER   " TOK "  ", &t), 0);
	assert_int_equal(t.len, 32);
	assert_int_equal(parse_auth("  Bearer " TOK, &t), 0);
	assert_int_equal(parse_auth("Bearer short", &t), 0);	/* a wrong guess, not malformed */
	assert_int_equal(parse_auth("Basic " TOK, &t), PG_EPARSE);
	assert_int_equal(parse_auth("Bearer", &t), PG_EPARSE);
	assert_int_equal(parse_auth("Bearer ", &t), PG_EPARSE);
	assert_int_equal(parse_auth("Bearer\t" TOK, &t), PG_EPARSE);
	assert_int_equal(parse_auth("Bearer" TOK, &t), PG_EPARSE);
	assert_int_equal(parse_auth("Bearer " TOK " extra", &t), PG_EPARSE);
	assert_int_equal(parse_auth("Bearer tok\"en", &t), PG_EPARSE);
	assert_int_equal(parse_auth("Bearers " TOK, &t), PG_EPARSE);
}

static void
test_matches(void **state)
{
	uint8_t d[PG_TOKEN_DIGEST_LEN];
	struct pg_slice good = PG_SLICE_LIT(TOK), same_len = PG_SLICE_LIT(
	    "0123456789abcdef0123456789abcdeX"), prefix = PG_SLICE_LIT("0123456789abcdef"),
	    longer = PG_SLICE_LIT(TOK "0");

	assert_int_equal(pg_token_digest(good, d), 0);
	assert_true(pg_token_matches(d, good));
	assert_false(pg_token_matches(d, same_len));
	assert_false(pg_token_matches(d, prefix));
	assert_false(pg_token_matches(d, longer));
	assert_false(pg_token_matches(d, (struct pg_slice){ (const uint8_t *)"", 0 }));
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void
test_read_file(void **state)
{
	char dir[] = "/tmp/pg-token-XXXXXX", path[128], tok[PG_TOKEN_MAX + 1], err[512];
	size_t len = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/token", dir);
	write_file(path, TOK "\n", 0600);
	assert_int_equal(pg_token_read_file(path, 1, tok, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 32);
	assert_string_equal(tok, TOK);
	write_file(path, TOK "\n", 0400);
	assert_int_equal(pg_token_read_file(path, 1, tok, &len, err, sizeof(err)), 0);
	/* Group or others may not even read it; the CLI (private=0) does not care. */
	write_file(path, TOK "\n", 0640);
	assert_int_equal(pg_token_read_file(path, 1, tok, &len, err, sizeof(err)), PG_EINVAL);
	assert_non_null(strstr(err, "mode 0640"));
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(pg_token_read_file(path, 0, tok, &len, err, sizeof(err)), 0);
	write_file(path, TOK "\n", 0602);
	assert_int_equal(pg_token_read_file(path, 1, tok, &len, err, sizeof(err)), PG_EINVAL);
	write_file(path, "too-short\n", 0600);
	assert_int_equal(pg_token_read_file(path, 1, tok, &len, err, sizeof(err)), PG_EPARSE);
	assert_non_null(strstr(err, "shorter than 16"));
	unlink(path);
	assert_int_equal(pg_token_read_file(path, 1, tok, &len, err, sizeof(err)), PG_ENOTFOUND);
	assert_int_equal(pg_token_read_file(dir, 1, tok, &len, err, sizeof(err)), PG_EINVAL);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_line_ends),
		cmocka_unit_test(test_file_alphabet_and_length),
		cmocka_unit_test(test_authorization),
		cmocka_unit_test(test_matches),
		cmocka_unit_test(test_read_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
