/*
 * proxy/http/affinity.c: the affinity cookie. Round trip; every kind of tampering is refused
 * (id, expiry, MAC changed or truncated, another secret); expiry; the MAC is exactly the documented
 * HMAC-SHA256 in base64url; the Cookie header parser and Set-Cookie builder; the secret file is made
 * 0600 and a group- or world-readable or wrongly sized one is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/err.h"
#include "core/log.h"
#include "proxy/http/affinity.h"

static const uint8_t secret_a[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t secret_b[32] = "0123456789abcdef0123456789abcdeF";

#define NOW 1700000000

static struct affinity_key *
key(const uint8_t *secret)
{
	struct affinity_key *k = NULL;

	assert_int_equal(affinity_key_new(secret, 32, &k), 0);
	assert_non_null(k);
	return k;
}

static struct pg_slice
sl(const char *s)
{
	return (struct pg_slice){ (const uint8_t *)s, strlen(s) };
}

static void
test_round_trip(void **state)
{
	struct affinity_key *k = key(secret_a);
	char v[AFFINITY_VALUE_MAX + 1], id[PG_ID_MAX + 1], longid[PG_ID_MAX + 1];

	assert_int_equal(affinity_mint(k, "demo-2", NOW + 3600, v), 0);
	assert_memory_equal(v, "v1.demo-2.1700003600.", 21);
	assert_int_equal(strlen(v), 21 + AFFINITY_MAC_LEN);
	assert_int_equal(affinity_verify(k, sl(v), NOW, id), 0);
	assert_string_equal(id, "demo-2");

	/* Ids may hold dots: the value is split from the right. */
	assert_int_equal(affinity_mint(k, "a.b.10", 42, v), 0);
	assert_int_equal(affinity_verify(k, sl(v), 41, id), 0);
	assert_string_equal(id, "a.b.10");

	/* The longest id and expiry fit AFFINITY_VALUE_MAX exactly. */
	memset(longid, 'x', PG_ID_MAX);
	longid[PG_ID_MAX] = '\0';
	assert_int_equal(affinity_mint(k, longid, INT64_MAX, v), 0);
	assert_int_equal(strlen(v), AFFINITY_VALUE_MAX);
	assert_int_equal(affinity_verify(k, sl(v), NOW, id), 0);
	assert_string_equal(id, longid);

	/* What mint refuses. */
	assert_int_equal(affinity_mint(k, "", NOW, v), PG_EINVAL);
	assert_int_equal(affinity_mint(k, "a/b", NOW, v), PG_EINVAL);
	assert_int_equal(affinity_mint(k, "a b", NOW, v), PG_EINVAL);
	assert_int_equal(affinity_mint(k, "demo", -1, v), PG_EINVAL);
	char toolong[PG_ID_MAX + 2];
	memset(toolong, 'x', PG_ID_MAX + 1);
	toolong[PG_ID_MAX + 1] = '\0';
	assert_int_equal(affinity_mint(k, toolong, NOW, v), PG_EINVAL);
	affinity_key_free(k);
	affinity_key_free(NULL);
	assert_int_equal(affinity_key_new(secret_a, 31, &k), PG_EINVAL);
}

/*
 * The MAC part is base64url-no-pad(HMAC-SHA256(secret, everything before the last dot)), checked
 * against OpenSSL's one-shot EVP_Q_mac over enough expiries that '-' and '_' both turn up.
 */
static void
test_mac_format(void **state)
{
	struct affinity_key *k = key(secret_a);
	char v[AFFINITY_VALUE_MAX + 1], signed_part[64];
	unsigned char mac[32], b64[64];
	size_t maclen = 0;
	int dash = 0, underscore = 0;

	for (int64_t e = 1767225600; e < 1767225600 + 40; e++) {
		snprintf(signed_part, sizeof(signed_part), "v1.demo-1.%lld", (long long)e);
		assert_int_equal(affinity_mint(k, "demo-1", e, v), 0);
		assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret_a, 32,
		    (const unsigned char *)signed_part, strlen(signed_part), mac, sizeof(mac), &maclen));
		assert_int_equal(maclen, 32);
		assert_int_equal(EVP_EncodeBlock(b64, mac, 32), 44);
		assert_int_equal(b64[43], '=');
		for (int i = 0; i < 43; i++) {
			dash += b64[i] == '+';
			underscore += b64[i] == '/';
			b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
		}
		b64[43] = '\0';
		assert_memory_equal(v, signed_part, strlen(signed_part));
		assert_int_equal(v[strlen(signed_part)], '.');
		assert_string_equal(v + strlen(signed_part) + 1, (char *)b64);
	}
	assert_true(dash > 0 && underscore > 0);
	affinity_key_free(k);
}

static void
test_tampering(void **state)
{
	struct affinity_key *k = key(secret_a), *other = key(secret_b);
	char v[AFFINITY_VALUE_MAX + 1], t[AFFINITY_VALUE_MAX + 2], id[PG_ID_MAX + 1];
	size_t n;

	assert_int_equal(affinity_mint(k, "demo-2", NOW + 3600, v), 0);
	n = strlen(v);
	strcpy(id, "untouched");

	/* Another instance id, same length and longer. */
	strcpy(t, v);
	t[8] = '3';
	assert_int_equal(affinity_verify(k, sl(t), NOW, id), PG_EAUTH);
	snprintf(t, sizeof(t), "v1.demo-20%s", v + 9);
	assert_int_equal(affinity_verify(k, sl(t), NOW, id), PG_EAUTH);
	/* A later expiry. */
	strcpy(t, v);
	t[10] = '2';
	assert_int_equal(affinity_verify(k, sl(t), NOW, id), PG_EAUTH);
	/* One MAC character changed, first and last. */
	strcpy(t, v);
	t[n - 1] = t[n - 1] == 'A' ? 'B' : 'A';
	assert_int_equal(affinity_verify(k, sl(t), NOW, id), PG_EAUTH);
	strcpy(t, v);
	t[n - AFFINITY_MAC_LEN] = t[n - AFFINITY_MAC_LEN] == 'A' ? 'B' : 'A';
	assert_int_equal(affinity_verify(k, sl(t), NOW, id), PG_EAUTH);
	/* Truncated MAC, and a MAC with a byte added. */
	strcpy(t, v);
	t[n - 1] = '\0';
	assert_int_not_equal(affinity_verify(k, sl(t), NOW, id), 0);
	snprintf(t, sizeof(t), "%sA", v);
	assert_int_not_equal(affinity_verify(k, sl(t), NOW, id), 0);
	/* Wrong secret. */
	assert_int_equal(affinity_verify(other, sl(v), NOW, id), PG_EAUTH);
	/* Malformed frames. */
	assert_int_equal(affinity_verify(k, sl(""), NOW, id), PG_EPARSE);
	assert_int_equal(affinity_verify(k, sl("v1.demo-2.1700003600"), NOW, id), PG_EPARSE);
	strcpy(t, v);
	t[1] = '2';
	assert_int_equal(affinity_verify(k, sl(t), NOW, id), PG_EPARSE);
	strcpy(t, v);
	t[n - AFFINITY_MAC_LEN - 1] = 'x';
	assert_int_equal(affinity_verify(k, sl(t), NOW, id), PG_EPARSE);
	/* Nothing leaked into id. */
	assert_string_equal(id, "untouched");
	/* The genuine one still passes. */
	assert_int_equal(affinity_verify(k, sl(v), NOW, id), 0);
	affinity_key_free(k);
	affinity_key_free(other);
}

static void
test_expiry(void **state)
{
	struct affinity_key *k = key(secret_a);
	char v[AFFINITY_VALUE_MAX + 1], id[PG_ID_MAX + 1];

	assert_int_equal(affinity_mint(k, "demo-1", NOW, v), 0);
	assert_int_equal(affinity_verify(k, sl(v), NOW - 1, id), 0);
	assert_int_equal(affinity_verify(k, sl(v), NOW, id), PG_EEXPIRED);
	assert_int_equal(affinity_verify(k, sl(v), NOW + 86400, id), PG_EEXPIRED);
	affinity_key_free(k);
}

static void
expect_cookies(const char *header, const char *const *want, size_t nwant)
{
	struct pg_slice h = sl(header), v;
	size_t i = 0;

	while (affinity_cookie_next(&h, AFFINITY_COOKIE_NAME, &v) == 1) {
		assert_true(i < nwant);
		assert_int_equal(v.len, strlen(want[i]));
		assert_memory_equal(v.p, want[i], v.len);
		assert_true(v.p >= (const uint8_t *)header && v.p + v.len <= (const uint8_t *)header +
		    strlen(header));
		i++;
	}
	assert_int_equal(i, nwant);
}

static void
test_cookie_header(void **state)
{
	static const struct {
		const char *header;
		const char *want[2];
		size_t n;
	} cases[] = {
		{ "poolgate_affinity=abc", { "abc" }, 1 },
		{ "a=1; poolgate_affinity=abc; b=2", { "abc" }, 1 },
		{ "a=1;poolgate_affinity=abc", { "abc" }, 1 },
		{ "  poolgate_affinity = abc  ;", { "abc" }, 1 },
		{ "\tpoolgate_affinity=abc\t", { "abc" }, 1 },
		{ "poolgate_affinity=\"quoted\"", { "quoted" }, 1 },
		{ "poolgate_affinity=", { "" }, 1 },
		{ "poolgate_affinity=a=b", { "a=b" }, 1 },
		{ "poolgate_affinity=one; x=y; poolgate_affinity=two", { "one", "two" }, 2 },
		{ "xpoolgate_affinity=1; poolgate_affinityx=2; Poolgate_affinity=3", { NULL }, 0 },
		{ "poolgate_affinity; other=poolgate_affinity=1", { NULL }, 0 },
		{ "", { NULL }, 0 },
		{ ";;; ;", { NULL }, 0 },
		{ "_xsrf=2|abc|def; jupyterhub-session-id=55; poolgate_affinity=v1.demo-1.5.m",
		  { "v1.demo-1.5.m" }, 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_cookies(cases[i].header, cases[i].want, cases[i].n);
}

static void
test_set_cookie(void **state)
{
	struct pg_buf b;

	pg_buf_init(&b, 4096);
	assert_int_equal(affinity_set_cookie(&b, AFFINITY_COOKIE_NAME, "v1.demo-1.5.xyz", 86400), 0);
	assert_int_equal(pg_buf_append(&b, "", 1), 0);
	assert_string_equal((char *)b.p,
	    "poolgate_affinity=v1.demo-1.5.xyz; Path=/; Max-Age=86400; Secure; HttpOnly; SameSite=Lax");
	pg_buf_reset(&b);
	assert_int_equal(affinity_set_cookie(&b, "bad name", "v", 1), PG_EINVAL);
	assert_int_equal(affinity_set_cookie(&b, "", "v", 1), PG_EINVAL);
	assert_int_equal(affinity_set_cookie(&b, "n", "a;b", 1), PG_EINVAL);
	assert_int_equal(affinity_set_cookie(&b, "n", "a b", 1), PG_EINVAL);
	assert_int_equal(affinity_set_cookie(&b, "n", "a\"", 1), PG_EINVAL);
	assert_int_equal(b.len, 0);
	pg_buf_free(&b);

	/* Too big for the buffer: nothing is appended. */
	pg_buf_init(&b, 20);
	assert_int_equal(pg_buf_append_str(&b, "keep"), 0);
	assert_int_equal(affinity_set_cookie(&b, "n", "v", 0), PG_ETOOBIG);
	assert_int_equal(b.len, 4);
	pg_buf_free(&b);
}

/* ---- The secret file ---- */

struct dir {
	char path[64];
	char file[128];
};

static int
setup_dir(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));

	strcpy(d->path, "/tmp/pg-affinity-XXXXXX");
	if (mkdtemp(d->path) == NULL)
		return -1;
	snprintf(d->file, sizeof(d->file), "%s/cookie_secret", d->path);
	umask(022);
	*state = d;
	return 0;
}

static int
teardown_dir(void **state)
{
	struct dir *d = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
	if (system(cmd) != 0)
		return -1;
	free(d);
	return 0;
}

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void
test_secret_created(void **state)
{
	struct dir *d = *state;
	struct affinity_key *k1 = NULL, *k2 = NULL;
	char err[512] = "", v1[AFFINITY_VALUE_MAX + 1], v2[AFFINITY_VALUE_MAX + 1];
	char id[PG_ID_MAX + 1];
	struct stat st;

	assert_int_equal(affinity_key_load(d->path, &k1, err, sizeof(err)), 0);
	assert_int_equal(stat(d->file, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 32);

	/* Loading again reads the same secret: cookies survive a restart. */
	assert_int_equal(affinity_key_load(d->path, &k2, err, sizeof(err)), 0);
	assert_int_equal(affinity_mint(k1, "demo-1", NOW, v1), 0);
	assert_int_equal(affinity_mint(k2, "demo-1", NOW, v2), 0);
	assert_string_equal(v1, v2);
	assert_int_equal(affinity_verify(k2, sl(v1), NOW - 1, id), 0);
	affinity_key_free(k1);
	affinity_key_free(k2);

	/* No temporary file is left behind. */
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "test \"$(ls -A '%s')\" = cookie_secret", d->path);
	assert_int_equal(system(cmd), 0);
}

static void
test_secret_stale_tmp(void **state)
{
	struct dir *d = *state;
	struct affinity_key *k = NULL;
	char err[512] = "", tmp[160];

	snprintf(tmp, sizeof(tmp), "%s/.cookie_secret.%ld.tmp", d->path, (long)getpid());
	write_file(tmp, "junk", 4, 0600);
	assert_int_equal(affinity_key_load(d->path, &k, err, sizeof(err)), 0);
	assert_int_equal(access(tmp, F_OK), -1);
	affinity_key_free(k);
}

static void
test_secret_refused(void **state)
{
	struct dir *d = *state;
	struct affinity_key *k = NULL;
	char err[512] = "";
	uint8_t secret[33] = { 1 };	/* one more for the oversized case */

	write_file(d->file, secret, 32, 0644);
	assert_int_equal(affinity_key_load(d->path, &k, err, sizeof(err)), PG_EINVAL);
	assert_null(k);
	assert_non_null(strstr(err, "mode 0644"));
	assert_non_null(strstr(err, d->file));

	write_file(d->file, secret, 32, 0640);
	assert_int_equal(affinity_key_load(d->path, &k, err, sizeof(err)), PG_EINVAL);
	write_file(d->file, secret, 32, 0602);
	assert_int_equal(affinity_key_load(d->path, &k, err, sizeof(err)), PG_EINVAL);

	write_file(d->file, secret, 31, 0600);
	assert_int_equal(affinity_key_load(d->path, &k, err, sizeof(err)), PG_EINVAL);
	assert_non_null(strstr(err, "expected 32 bytes, found 31"));
	write_file(d->file, secret, 33, 0600);
	assert_int_equal(affinity_key_load(d->path, &k, err, sizeof(err)), PG_EINVAL);
	assert_null(k);

	/* A correct one is used as it is. */
	write_file(d->file, secret, 32, 0400);
	assert_int_equal(affinity_key_load(d->path, &k, err, sizeof(err)), 0);
	affinity_key_free(k);
	k = NULL;

	/* Not a regular file. */
	assert_int_equal(unlink(d->file), 0);
	assert_int_equal(mkdir(d->file, 0700), 0);
	assert_int_equal(affinity_key_load(d->path, &k, err, sizeof(err)), PG_EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(rmdir(d->file), 0);

	/* No state_dir. */
	char missing[128];
	snprintf(missing, sizeof(missing), "%s/nope", d->path);
	assert_int_equal(affinity_key_load(missing, &k, err, sizeof(err)), PG_EIO);
	assert_non_null(strstr(err, "nope"));
	assert_null(k);

	/* Where no secret can be written, the ephemeral variant makes one in memory... */
	int eph = 0;
	assert_int_equal(affinity_key_load_or_ephemeral(missing, &k, &eph, err, sizeof(err)), 0);
	assert_int_equal(eph, 1);
	assert_non_null(k);
	assert_non_null(strstr(err, "nope"));	/* the reason, for the caller's warning */
	affinity_key_free(k);
	k = NULL;
	/* ...but a secret file that exists and is refused is never replaced by one. */
	assert_int_equal(mkdir(d->file, 0700), 0);
	assert_int_equal(affinity_key_load_or_ephemeral(d->path, &k, &eph, err, sizeof(err)),
	    PG_EINVAL);
	assert_int_equal(eph, 0);
	assert_null(k);
	assert_int_equal(rmdir(d->file), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_mac_format),
		cmocka_unit_test(test_tampering),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_cookie_header),
		cmocka_unit_test(test_set_cookie),
		cmocka_unit_test_setup_teardown(test_secret_created, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_secret_stale_tmp, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_secret_refused, setup_dir, teardown_dir),
	};

	pg_log_setup(PG_LOG_WARN, PG_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
