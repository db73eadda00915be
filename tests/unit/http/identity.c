/*
 * proxy/http/identity.c: usernames from request targets and from the login form, table-driven. The
 * expectations follow JupyterHub 3.0: its routes (handlers/base.py, pages.py, apihandlers/users.py),
 * Tornado's decoding of path arguments and form fields, normalize_username() (lower) and
 * validate_username() (no '/', not empty, no surrounding whitespace).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "proxy/http/identity.h"

struct tcase {
	const char *in;
	int want;		/* return value */
	const char *user;	/* when want == 1 */
};

static struct pg_slice
sl(const char *s)
{
	return (struct pg_slice){ (const uint8_t *)s, strlen(s) };
}

static void
run(const struct tcase *cases, size_t n, int (*fn)(struct pg_slice, char *))
{
	for (size_t i = 0; i < n; i++) {
		char user[IDENTITY_USER_MAX + 1] = "untouched";
		int r = fn(sl(cases[i].in), user);

		if (r != cases[i].want)
			fail_msg("case %zu \"%s\": got %d, want %d", i, cases[i].in, r, cases[i].want);
		if (r == 1 && strcmp(user, cases[i].user) != 0)
			fail_msg("case %zu \"%s\": got user \"%s\", want \"%s\"", i, cases[i].in, user,
			    cases[i].user);
		if (r != 1 && strcmp(user, "untouched") != 0)
			fail_msg("case %zu \"%s\": user written on failure", i, cases[i].in);
	}
}

static void
test_path(void **state)
{
	static const struct tcase cases[] = {
		{ "/user/alice/lab", 1, "alice" },
		{ "/user/alice/", 1, "alice" },
		{ "/user/alice", 1, "alice" },
		{ "/user/alice?x=/user/bob", 1, "alice" },
		{ "/user/alice#frag", 1, "alice" },
		{ "/user/alice/api/kernels/abc/channels?session_id=1", 1, "alice" },
		{ "/hub/user/alice/", 1, "alice" },
		{ "/hub/spawn/alice", 1, "alice" },
		{ "/hub/spawn/alice/gpu", 1, "alice" },
		{ "/hub/spawn-pending/alice", 1, "alice" },
		{ "/hub/spawn-pending/alice/gpu", 1, "alice" },
		{ "/hub/api/users/alice", 1, "alice" },
		{ "/hub/api/users/alice/server/progress", 1, "alice" },
		{ "/hub/api/users/alice/tokens", 1, "alice" },
		/* Normalisation: ASCII folded; non-ASCII (already normalised by JupyterHub) kept. */
		{ "/user/Alice/", 1, "alice" },
		{ "/user/ALICE.Smith-2_x/", 1, "alice.smith-2_x" },
		{ "/user/jos%C3%A9/", 1, "jos\xc3\xa9" },
		{ "/user/jos\xc3\xa9/", 1, "jos\xc3\xa9" },
		{ "/user/%41lice/", 1, "alice" },
		{ "/user/a+b/", 1, "a+b" },
		{ "/user/a%20b/", 1, "a b" },
		{ "/user/a%40example.com/", 1, "a@example.com" },
		{ "/user/a%2bb/", 1, "a+b" },
		/* Nobody. */
		{ "/", 0, NULL },
		{ "", 0, NULL },
		{ "/hub/login", 0, NULL },
		{ "/hub/home", 0, NULL },
		{ "/hub/spawn", 0, NULL },
		{ "/hub/api/users", 0, NULL },
		{ "/hub/api/users/", 0, NULL },
		{ "/user/", 0, NULL },
		{ "/user//lab", 0, NULL },
		{ "/user", 0, NULL },
		{ "/user-redirect/lab/tree/x.ipynb", 0, NULL },
		{ "/User/alice/", 0, NULL },
		{ "//user/alice/", 0, NULL },
		{ "/%75ser/alice/", 0, NULL },
		{ "/hub/users/alice", 0, NULL },
		{ "/hub/api/user/alice", 0, NULL },
		{ "user/alice/", 0, NULL },
		{ "https://pool.example.com/user/alice/", 0, NULL },
		{ "/?/user/alice/", 0, NULL },
		/* Invalid names. */
		{ "/user/a%2Fb/", PG_EPARSE, NULL },
		{ "/user/a%2fb/", PG_EPARSE, NULL },
		{ "/user/a%00b/", PG_EPARSE, NULL },
		{ "/user/a%0Ab/", PG_EPARSE, NULL },
		{ "/user/a%7Fb/", PG_EPARSE, NULL },
		{ "/user/a%/", PG_EPARSE, NULL },
		{ "/user/a%4/", PG_EPARSE, NULL },
		{ "/user/a%4", PG_EPARSE, NULL },
		{ "/user/a%zz/", PG_EPARSE, NULL },
		{ "/user/%C0%AF/", PG_EPARSE, NULL },		/* overlong '/' */
		{ "/user/%C0%80/", PG_EPARSE, NULL },		/* overlong NUL */
		{ "/user/%E0%80%AF/", PG_EPARSE, NULL },	/* overlong '/', three bytes */
		{ "/user/%F0%80%80%AF/", PG_EPARSE, NULL },	/* overlong '/', four bytes */
		{ "/user/%ED%A0%80/", PG_EPARSE, NULL },	/* surrogate */
		{ "/user/%F4%90%80%80/", PG_EPARSE, NULL },	/* past U+10FFFF */
		{ "/user/%C3/", PG_EPARSE, NULL },		/* truncated */
		{ "/user/%A9/", PG_EPARSE, NULL },		/* lone continuation */
		{ "/user/%FF/", PG_EPARSE, NULL },
		{ "/user/%20alice/", PG_EPARSE, NULL },	/* validate_username: strip() changes it */
		{ "/user/alice%20/", PG_EPARSE, NULL },
	};

	run(cases, sizeof(cases) / sizeof(cases[0]), identity_from_path);
}

static void
test_path_length(void **state)
{
	char target[2048], user[IDENTITY_USER_MAX + 1];
	char *p;

	/* 255 bytes is the most; 256 is too many, whether raw or percent-encoded. */
	p = target + sprintf(target, "/user/");
	memset(p, 'a', 255);
	strcpy(p + 255, "/lab");
	assert_int_equal(identity_from_path((struct pg_slice){ (uint8_t *)target, strlen(target) },
	    user), 1);
	assert_int_equal(strlen(user), 255);
	memset(p, 'a', 256);
	strcpy(p + 256, "/lab");
	assert_int_equal(identity_from_path((struct pg_slice){ (uint8_t *)target, strlen(target) },
	    user), PG_ETOOBIG);
	for (int i = 0; i < 256; i++)
		memcpy(p + 3 * i, "%61", 3);
	strcpy(p + 3 * 256, "/");
	assert_int_equal(identity_from_path((struct pg_slice){ (uint8_t *)target, strlen(target) },
	    user), PG_ETOOBIG);
	/* Longer than the decode buffer. */
	static char big[IDENTITY_FORM_MAX + 64];
	p = big + sprintf(big, "/user/");
	memset(p, 'a', IDENTITY_FORM_MAX + 1);
	p[IDENTITY_FORM_MAX + 1] = '\0';
	assert_int_equal(identity_from_path((struct pg_slice){ (uint8_t *)big, strlen(big) }, user),
	    PG_ETOOBIG);
}

static void
test_form(void **state)
{
	static const struct tcase cases[] = {
		{ "username=alice&password=secret", 1, "alice" },
		{ "password=secret&username=alice", 1, "alice" },
		{ "_xsrf=2%7Cabc&username=Alice&password=x", 1, "alice" },
		{ "username=alice", 1, "alice" },
		{ "username=alice&", 1, "alice" },
		{ "&&username=alice", 1, "alice" },
		{ "username=+alice+&password=x", 1, "alice" },		/* Tornado strips */
		{ "username=%20%09alice%0D%0A", 1, "alice" },
		{ "username=alice+smith", 1, "alice smith" },
		{ "username=alice%2Bsmith", 1, "alice+smith" },
		{ "username=a%40b.example", 1, "a@b.example" },
		{ "user%6Eame=alice", 1, "alice" },
		{ "%75%73%65%72%6e%61%6d%65=alice", 1, "alice" },
		{ "username=bob&username=alice", 1, "alice" },	/* get_argument(): the last one */
		{ "password=a%zz&username=alice", 1, "alice" },	/* other fields are not decoded */
		{ "user%zzname=x&username=alice", 1, "alice" },
		/* No name. */
		{ "", 0, NULL },
		{ "password=x", 0, NULL },
		{ "username", 0, NULL },
		{ "username=", 0, NULL },
		{ "username=+++", 0, NULL },
		{ "Username=alice", 0, NULL },
		{ "username =alice", 0, NULL },
		{ "user+name=alice", 0, NULL },
		{ "usernames=alice", 0, NULL },
		{ "xusername=alice", 0, NULL },
		{ "username;x=alice", 0, NULL },
		/* Invalid. */
		{ "username=a%2Fb", PG_EPARSE, NULL },
		{ "username=a/b", PG_EPARSE, NULL },
		{ "username=a%00b", PG_EPARSE, NULL },
		{ "username=a%01b", PG_EPARSE, NULL },
		{ "username=a%zz", PG_EPARSE, NULL },
		{ "username=a%", PG_EPARSE, NULL },
		{ "username=alice&username=a%2", PG_EPARSE, NULL },
		{ "username=%C0%AF", PG_EPARSE, NULL },
		{ "username=%FF", PG_EPARSE, NULL },
		/* Valid but not ASCII: JupyterHub's Unicode lower() is not reproduced. */
		{ "username=jos%C3%A9", PG_ERANGE, NULL },
		{ "username=%C3%89mile", PG_ERANGE, NULL },
		{ "username=%E2%84%AA", PG_ERANGE, NULL },	/* KELVIN SIGN, lower() gives "k" */
	};

	run(cases, sizeof(cases) / sizeof(cases[0]), identity_from_form);
}

static void
test_form_limits(void **state)
{
	static char body[IDENTITY_FORM_MAX + 2];
	char user[IDENTITY_USER_MAX + 1];
	struct pg_slice s;
	size_t n;

	n = (size_t)sprintf(body, "username=");
	memset(body + n, 'a', 255);
	body[n + 255] = '\0';
	s = (struct pg_slice){ (uint8_t *)body, strlen(body) };
	assert_int_equal(identity_from_form(s, user), 1);
	assert_int_equal(strlen(user), 255);
	body[n + 255] = 'a';
	body[n + 256] = '\0';
	s.len++;
	assert_int_equal(identity_from_form(s, user), PG_ETOOBIG);
	/* Surrounding spaces do not count against the limit (they are stripped first). */
	memset(body + n, '+', 100);
	memset(body + n + 100, 'a', 255);
	memset(body + n + 355, '+', 100);
	body[n + 455] = '\0';
	s.len = strlen(body);
	assert_int_equal(identity_from_form(s, user), 1);
	assert_int_equal(strlen(user), 255);

	/* The body limit: IDENTITY_FORM_MAX bytes are read, one more is refused. */
	memset(body, 'x', IDENTITY_FORM_MAX);
	memcpy(body + IDENTITY_FORM_MAX - 15, "&username=alice", 15);
	s = (struct pg_slice){ (uint8_t *)body, IDENTITY_FORM_MAX };
	assert_int_equal(identity_from_form(s, user), 1);
	assert_string_equal(user, "alice");
	body[IDENTITY_FORM_MAX] = 'x';
	s.len++;
	assert_int_equal(identity_from_form(s, user), PG_ETOOBIG);
}

static void
test_is_login(void **state)
{
	assert_true(identity_is_login(sl("POST"), sl("/hub/login")));
	assert_true(identity_is_login(sl("POST"), sl("/hub/login?next=%2Fhub%2F")));
	assert_false(identity_is_login(sl("GET"), sl("/hub/login")));
	assert_false(identity_is_login(sl("post"), sl("/hub/login")));
	assert_false(identity_is_login(sl("POST"), sl("/hub/login/")));
	assert_false(identity_is_login(sl("POST"), sl("/hub/loginx")));
	assert_false(identity_is_login(sl("POST"), sl("/hub/logout")));
	assert_false(identity_is_login(sl("POST"), sl("/hub/logi")));
	assert_false(identity_is_login(sl("POST"), sl("")));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_path_length),
		cmocka_unit_test(test_form),
		cmocka_unit_test(test_form_limits),
		cmocka_unit_test(test_is_login),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
