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
#include "certs/keyopts.h"
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

static const struct authkeys_ctx ctx = { .user = "alice", .client_ip = "192.0.2.7",
	.now = 1700000000, .what = "t" };

static void
test_match(void **state)
{
	struct sshkey *a, *b;
	struct pg_buf t, la;

	assert_int_equal(sshkey_generate_ed25519(&a), 0);
	assert_int_equal(sshkey_generate_ed25519(&b), 0);
	la = line_of(a, "", "alice@laptop");
	t = line_of(b, "# a comment\n\n   \t\ngarbage line\nssh-ed25519 AAAA!!!\n", NULL);
	assert_int_equal(authkeys_match((struct pg_slice){ t.p, t.len }, a, &ctx), 0);
	assert_int_equal(authkeys_match((struct pg_slice){ t.p, t.len }, b, &ctx), 1);
	assert_int_equal(pg_buf_append(&t, la.p, la.len), 0);
	assert_int_equal(authkeys_match((struct pg_slice){ t.p, t.len }, a, &ctx), 1);
	pg_buf_free(&t);

	/* Options: honoured or refused, never ignored. */
	{
		static const struct {
			const char *opts;
			int want;
		} cases[] = {
			{ "restrict ", 0 },
			{ "no-pty ", 0 },
			{ "no-port-forwarding,no-agent-forwarding ", 0 },
			{ "command=\"/bin/true\" ", 0 },
			{ "environment=\"A=b\" ", 0 },
			{ "permitopen=\"host:1\" ", 0 },
			{ "verify-required ", 0 },
			{ "unknown-option ", 0 },
			{ "principals=\"alice\" ", 0 },	/* only with cert-authority */
			{ "cert-authority ", 0 },		/* a CA is no user key */
			{ "restrict,pty,port-forwarding,agent-forwarding,X11-forwarding,user-rc ", 1 },
			{ "no-pty,pty ", 1 },
			{ "no-touch-required ", 1 },
			{ "from=\"192.0.2.7\" ", 1 },
			{ "from=\"192.0.2.*\" ", 1 },
			{ "from=\"10.0.0.0/8,192.0.2.0/24\" ", 1 },
			{ "from=\"10.0.0.0/8\" ", 0 },
			{ "from=\"*,!192.0.2.7\" ", 0 },
			{ "from=\"!10.*,192.0.2.?\" ", 1 },
			{ "from=\"10.0.0.1/8\" ", 0 },		/* host bits: malformed */
			{ "FROM=\"192.0.2.7\" ", 1 },		/* names are case-insensitive */
			{ "expiry-time=\"20991231\" ", 1 },
			{ "expiry-time=\"20200101Z\" ", 0 },
			{ "expiry-time=\"2099\" ", 0 },		/* malformed: the line is invalid */
			{ "from=\"192.0.2.7\",expiry-time=\"209901010000Z\" ", 1 },
			{ "from=\"192.0.2.7\" ,expiry-time=\"20990101\" ", 0 },
			{ "from=\"unterminated ", 0 },
			{ "from=192.0.2.7 ", 0 },			/* values are quoted */
			{ "from=\"192.0.2.7\",from=\"*\" ", 0 },	/* repeated */
			{ ",restrict ", 0 },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			t = line_of(a, cases[i].opts, NULL);
			if (authkeys_match((struct pg_slice){ t.p, t.len }, a, &ctx) != cases[i].want)
				fail_msg("options %s: expected %d", cases[i].opts, cases[i].want);
			pg_buf_free(&t);
		}
	}
	/* from= with no client address known refuses. */
	{
		struct authkeys_ctx noip = ctx;

		noip.client_ip = NULL;
		t = line_of(a, "from=\"*\" ", NULL);
		assert_int_equal(authkeys_match((struct pg_slice){ t.p, t.len }, a, &noip), 0);
		pg_buf_free(&t);
	}

	/* CRLF line ends and no final newline. */
	t = line_of(a, "", NULL);
	t.p[t.len - 1] = '\r';
	assert_int_equal(authkeys_match((struct pg_slice){ t.p, t.len }, a, &ctx), 1);
	pg_buf_free(&t);

	/* A blob under another type's name does not match. */
	{
		char *sp = memchr(la.p, ' ', la.len);
		struct pg_buf m;

		pg_buf_init(&m, 65536);
		assert_int_equal(pg_buf_append_str(&m, "ssh-rsa"), 0);
		assert_int_equal(pg_buf_append(&m, sp, la.len - (size_t)((uint8_t *)sp - la.p)), 0);
		assert_int_equal(authkeys_match((struct pg_slice){ m.p, m.len }, a, &ctx), 0);
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
	assert_int_equal(authkeys_check_file(path, a, &ctx), 1);
	unlink(path);
	assert_int_equal(authkeys_check_file(path, a, &ctx), PG_ENOTFOUND);
	pg_buf_free(&la);
	sshkey_free(a);
}

static struct pg_buf
make_cert(const struct sshkey *ca, const struct sshkey *k, const char *principal, uint64_t now)
{
	struct usercert_req req = { .key = k, .ca = ca, .principal = principal, .key_id = "t",
		.serial = 1, .now = now };
	struct pg_buf b;

	pg_buf_init(&b, 65536);
	assert_int_equal(usercert_make(&req, &b), 0);
	return b;
}

static void
test_cert_authority(void **state)
{
	struct sshkey *ca, *other, *k;
	struct usercert *cert = NULL, *bobs = NULL;
	struct pg_buf t, cb, bb;

	assert_int_equal(sshkey_generate_ed25519(&ca), 0);
	assert_int_equal(sshkey_generate_ed25519(&other), 0);
	assert_int_equal(sshkey_generate_ed25519(&k), 0);
	cb = make_cert(ca, k, "alice", ctx.now);
	bb = make_cert(ca, k, "bob", ctx.now);
	assert_int_equal(usercert_parse((struct pg_slice){ cb.p, cb.len }, &cert), 0);
	assert_int_equal(usercert_parse((struct pg_slice){ bb.p, bb.len }, &bobs), 0);

	t = line_of(ca, "cert-authority ", NULL);
	assert_int_equal(authkeys_match_cert((struct pg_slice){ t.p, t.len }, cert, &ctx), 1);
	assert_int_equal(authkeys_match_cert((struct pg_slice){ t.p, t.len }, bobs, &ctx), 0);
	/* The CA's key on a plain line is no CA, and a CA line lets no plain key in. */
	assert_int_equal(authkeys_match((struct pg_slice){ t.p, t.len }, ca, &ctx), 0);
	pg_buf_free(&t);
	t = line_of(ca, "", NULL);
	assert_int_equal(authkeys_match_cert((struct pg_slice){ t.p, t.len }, cert, &ctx), 0);
	pg_buf_free(&t);
	/* principals= replaces the user name. */
	t = line_of(ca, "cert-authority,principals=\"carol,bob\" ", NULL);
	assert_int_equal(authkeys_match_cert((struct pg_slice){ t.p, t.len }, bobs, &ctx), 1);
	assert_int_equal(authkeys_match_cert((struct pg_slice){ t.p, t.len }, cert, &ctx), 0);
	pg_buf_free(&t);
	/* Options of the CA line apply; another CA does not match. */
	t = line_of(ca, "cert-authority,from=\"10.0.0.0/8\" ", NULL);
	assert_int_equal(authkeys_match_cert((struct pg_slice){ t.p, t.len }, cert, &ctx), 0);
	pg_buf_free(&t);
	t = line_of(other, "cert-authority ", NULL);
	assert_int_equal(authkeys_match_cert((struct pg_slice){ t.p, t.len }, cert, &ctx), 0);
	pg_buf_free(&t);
	/* An expired certificate from a listed CA is refused. */
	{
		struct authkeys_ctx later = ctx;

		later.now = ctx.now + 3600;
		t = line_of(ca, "cert-authority ", NULL);
		assert_int_equal(authkeys_match_cert((struct pg_slice){ t.p, t.len }, cert, &later),
		    0);
		pg_buf_free(&t);
	}
	usercert_free(cert);
	usercert_free(bobs);
	pg_buf_free(&cb);
	pg_buf_free(&bb);
	sshkey_free(ca);
	sshkey_free(other);
	sshkey_free(k);
}

static void
test_keyopts(void **state)
{
	uint64_t t;

	assert_int_equal(keyopts_parse_time("19700101Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(keyopts_parse_time("20240229123000Z", &t), 0);
	assert_int_equal(t, 1709209800);
	assert_int_equal(keyopts_parse_time("202402291230Z", &t), 0);
	assert_int_equal(t, 1709209800);
	assert_int_equal(keyopts_parse_time("2024022912300Z", &t), PG_EPARSE);
	assert_int_equal(keyopts_parse_time("20241301", &t), PG_EPARSE);
	assert_int_equal(keyopts_parse_time("2024010x", &t), PG_EPARSE);
	assert_int_equal(keyopts_parse_time("", &t), PG_EPARSE);

	assert_int_equal(keyopts_from_match("127.0.0.1", "127.0.0.1"), 1);
	assert_int_equal(keyopts_from_match("127.0.0.2", "127.0.0.1"), 0);
	assert_int_equal(keyopts_from_match("127.0.0.0/8", "127.0.0.1"), 1);
	assert_int_equal(keyopts_from_match("127.0.0.0/31", "127.0.0.1"), 1);
	assert_int_equal(keyopts_from_match("127.0.0.2/31", "127.0.0.1"), 0);
	assert_int_equal(keyopts_from_match("0.0.0.0/0", "203.0.113.9"), 1);
	assert_int_equal(keyopts_from_match("2001:db8::/32", "2001:db8::1"), 1);
	assert_int_equal(keyopts_from_match("2001:db8::/32", "127.0.0.1"), 0);
	assert_int_equal(keyopts_from_match("::1", "::1"), 1);
	assert_int_equal(keyopts_from_match("*", "::1"), 1);
	assert_int_equal(keyopts_from_match("!*", "::1"), 0);
	assert_int_equal(keyopts_from_match("host.example.com", "192.0.2.1"), 0);
	assert_int_equal(keyopts_from_match("1.2.3.4/33", "1.2.3.4"), PG_EPARSE);
	assert_int_equal(keyopts_from_match("1.2.3.4/", "1.2.3.4"), PG_EPARSE);
	assert_int_equal(keyopts_from_match("", "1.2.3.4"), 0);
	assert_int_equal(keyopts_from_match(",,", "1.2.3.4"), 0);
	assert_int_equal(keyopts_from_match("1*4", "1.2.3.4"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_ok),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_cert_authority),
		cmocka_unit_test(test_keyopts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
