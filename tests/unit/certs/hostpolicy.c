/*
 * certs/hostpolicy: the one known_hosts policy the SSH front door and the load probe share. A
 * listed key passes, a changed one is refused in both modes, an unknown host is refused unless
 * tofu, which records it once (in the file and in memory, so the second look finds it).
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

#include "certs/hostpolicy.h"
#include "certs/knownhosts.h"
#include "core/err.h"
#include "core/log.h"

static void
write_known(const char *path, const char *host, uint16_t port, const struct sshkey *k)
{
	struct pg_buf b;
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	pg_buf_init(&b, 65536);
	assert_int_equal(knownhosts_format_line(host, port, k, &b), 0);
	assert_int_equal(fwrite(b.p, 1, b.len, f), b.len);
	fclose(f);
	pg_buf_free(&b);
}

static int
lines(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0, ch;

	if (f == NULL)
		return 0;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

static void
test_policy(void **state)
{
	char dir[] = "/tmp/pg-hostpolicy-XXXXXX", kh[256], tofu[256];
	struct sshkey *a, *b, *c;
	struct hostpolicy *p = hostpolicy_new();
	const char *why = NULL;

	assert_non_null(p);
	assert_non_null(mkdtemp(dir));
	snprintf(kh, sizeof(kh), "%s/known_hosts", dir);
	snprintf(tofu, sizeof(tofu), "%s/tofu", dir);
	assert_int_equal(sshkey_generate_ed25519(&a), 0);
	assert_int_equal(sshkey_generate_ed25519(&b), 0);
	assert_int_equal(sshkey_generate_ecdsa_p256(&c), 0);
	write_known(kh, "10.0.0.1", 2022, a);

	/* Unconfigured: nobody. */
	assert_int_equal(hostpolicy_check(p, "i1", "10.0.0.1", 2022, a, &why, "t"), PG_ENOTFOUND);

	assert_int_equal(hostpolicy_configure(p, kh, tofu, SSH_HKC_KNOWN_HOSTS), 0);
	assert_int_equal(hostpolicy_check(p, "i1", "10.0.0.1", 2022, a, &why, "t"), 0);
	assert_int_equal(hostpolicy_check(p, "i1", "10.0.0.1", 2022, b, &why, "t"), PG_EAUTH);
	assert_string_equal(why, "the instance's host key has changed");
	assert_int_equal(hostpolicy_check(p, "i2", "10.0.0.2", 22, c, &why, "t"), PG_ENOTFOUND);
	assert_string_equal(why, "the instance's host key is not known");
	assert_int_equal(lines(tofu), 0);

	/* tofu: an unknown host is recorded once; a changed key is still refused. */
	assert_int_equal(hostpolicy_configure(p, kh, tofu, SSH_HKC_TOFU), 0);
	assert_int_equal(hostpolicy_check(p, "i2", "10.0.0.2", 22, c, &why, "t"), 0);
	assert_int_equal(hostpolicy_check(p, "i2", "10.0.0.2", 22, c, &why, "t"), 0);
	assert_int_equal(lines(tofu), 1);
	assert_int_equal(hostpolicy_check(p, "i2", "10.0.0.2", 22, b, &why, "t"), PG_EAUTH);
	assert_int_equal(hostpolicy_check(p, "i1", "10.0.0.1", 2022, b, &why, "t"), PG_EAUTH);

	/* A reload reads the tofu file back. */
	assert_int_equal(hostpolicy_configure(p, NULL, tofu, SSH_HKC_TOFU), 0);
	assert_int_equal(hostpolicy_check(p, "i2", "10.0.0.2", 22, c, &why, "t"), 0);
	assert_int_equal(lines(tofu), 1);

	/*
	 * A tofu file that cannot be written (its directory is gone: as for a state_dir that is
	 * full or read-only): a new host is trusted in memory, and a changed key still refused.
	 */
	char gone[300];
	snprintf(gone, sizeof(gone), "%s/nodir/tofu", dir);
	assert_int_equal(hostpolicy_configure(p, NULL, gone, SSH_HKC_TOFU), 0);
	assert_int_equal(hostpolicy_check(p, "i3", "10.0.0.3", 22, a, &why, "t"), 0);
	assert_int_equal(hostpolicy_check(p, "i3", "10.0.0.3", 22, a, &why, "t"), 0);
	assert_int_equal(hostpolicy_check(p, "i3", "10.0.0.3", 22, b, &why, "t"), PG_EAUTH);

	hostpolicy_free(p);
	hostpolicy_free(NULL);
	sshkey_free(a);
	sshkey_free(b);
	sshkey_free(c);
	unlink(kh);
	unlink(tofu);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy),
	};

	pg_log_setup(PG_LOG_ERR, PG_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
