/*
 * certs/knownhosts and certs/keyfile: plain, [host]:port, wildcard, negated and hashed entries
 * (hashed by the real `ssh-keygen -H`), changed and revoked keys, tofu append; state_dir keys made
 * once with mode 0600 and refused when readable by others.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs/keyfile.h"
#include "certs/knownhosts.h"
#include "core/err.h"

static int
check_text(const char *text, const char *host, uint16_t port, const struct sshkey *k)
{
	return knownhosts_check((struct pg_slice){ (const uint8_t *)text, strlen(text) }, host, port, k);
}

static char *
line(const char *prefix, const struct sshkey *k)
{
	struct pg_buf b;

	pg_buf_init(&b, 65536);
	assert_int_equal(pg_buf_append_str(&b, prefix), 0);
	assert_int_equal(sshkey_write_public(k, "c", &b), 0);
	assert_int_equal(pg_buf_append(&b, "", 1), 0);
	return (char *)b.p;
}

static void
test_plain(void **state)
{
	struct sshkey *a, *b;
	char *la, *lb, *lw, *lr;

	assert_int_equal(sshkey_generate_ed25519(&a), 0);
	assert_int_equal(sshkey_generate_ed25519(&b), 0);
	la = line("10.0.0.1,[127.0.0.2]:2022 ", a);
	assert_int_equal(check_text(la, "127.0.0.2", 2022, a), 0);
	assert_int_equal(check_text(la, "10.0.0.1", 22, a), 0);
	assert_int_equal(check_text(la, "127.0.0.2", 2022, b), PG_EAUTH);
	assert_int_equal(check_text(la, "127.0.0.2", 22, a), PG_ENOTFOUND);
	assert_int_equal(check_text(la, "127.0.0.3", 2022, a), PG_ENOTFOUND);
	lw = line("[127.0.0.*]:2022,!127.0.0.9 ", b);
	assert_int_equal(check_text(lw, "127.0.0.3", 2022, b), 0);
	lb = line("@revoked * ", b);
	{
		char both[4096];

		snprintf(both, sizeof(both), "# comment\n\n%s%s", lw, lb);
		assert_int_equal(check_text(both, "127.0.0.3", 2022, b), PG_EAUTH);
	}
	lr = line("@cert-authority * ", a);
	assert_int_equal(check_text(lr, "127.0.0.3", 2022, a), PG_ENOTFOUND);
	free(la);
	free(lb);
	free(lw);
	free(lr);
	sshkey_free(a);
	sshkey_free(b);
}

/* Regression: the first, recursive wildcard matcher took exponential time on many stars. */
static void
test_wildcards(void **state)
{
	struct sshkey *a;
	char pat[700], *l;

	assert_int_equal(sshkey_generate_ed25519(&a), 0);
	memset(pat, 0, sizeof(pat));
	for (size_t i = 0; i + 3 < 600; i += 2)
		memcpy(pat + i, "*1", 2);
	strcat(pat, "x ");
	l = line(pat, a);
	assert_int_equal(check_text(l, "1111111111111111111111111111111111111111111111", 22, a),
	    PG_ENOTFOUND);
	free(l);
	l = line("* ", a);
	assert_int_equal(check_text(l, "10.1.2.3", 2222, a), 0);
	free(l);
	l = line("1?.*.3,[10.*]:2?22 ", a);
	assert_int_equal(check_text(l, "10.1.2.3", 22, a), 0);
	assert_int_equal(check_text(l, "10.1.2.3", 2022, a), 0);
	assert_int_equal(check_text(l, "10.1.2.4", 22, a), PG_ENOTFOUND);
	free(l);
	sshkey_free(a);
}

static void
test_hashed_and_append(void **state)
{
	char dir[] = "/tmp/pg-kh-XXXXXX", path[256], cmd[600];
	struct sshkey *a, *b;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/known_hosts", dir);
	assert_int_equal(sshkey_generate_ed25519(&a), 0);
	assert_int_equal(sshkey_generate_ed25519(&b), 0);
	assert_int_equal(knownhosts_check_file(path, "127.0.0.2", 2022, a), PG_ENOTFOUND);
	assert_int_equal(knownhosts_append_file(path, "127.0.0.2", 2022, a), 0);
	assert_int_equal(knownhosts_append_file(path, "127.0.0.3", 22, b), 0);
	assert_int_equal(knownhosts_check_file(path, "127.0.0.2", 2022, a), 0);
	assert_int_equal(knownhosts_check_file(path, "127.0.0.3", 22, b), 0);
	assert_int_equal(knownhosts_check_file(path, "127.0.0.2", 2022, b), PG_EAUTH);
	/* Hashed by OpenSSH itself. */
	snprintf(cmd, sizeof(cmd), "ssh-keygen -H -f %s >/dev/null 2>&1 && ! grep -q 127.0.0 %s",
	    path, path);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(knownhosts_check_file(path, "127.0.0.2", 2022, a), 0);
	assert_int_equal(knownhosts_check_file(path, "127.0.0.3", 22, b), 0);
	assert_int_equal(knownhosts_check_file(path, "127.0.0.3", 22, a), PG_EAUTH);
	assert_int_equal(knownhosts_check_file(path, "127.0.0.4", 22, a), PG_ENOTFOUND);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	sshkey_free(a);
	sshkey_free(b);
}

static void
test_keyfile(void **state)
{
	char dir[] = "/tmp/pg-kf-XXXXXX", path[256], cmd[600], err[256];
	struct sshkey *k1, *k2;
	struct stat st;
	int created;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ssh_host_ed25519_key", dir);
	assert_int_equal(keyfile_load_or_create(path, &k1, &created, err, sizeof(err)), 0);
	assert_int_equal(created, 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(keyfile_load_or_create(path, &k2, &created, err, sizeof(err)), 0);
	assert_int_equal(created, 0);
	assert_true(sshkey_equal_public(k1, k2));
	assert_true(sshkey_has_private(k2));
	sshkey_free(k2);
	chmod(path, 0644);
	assert_int_equal(keyfile_load_or_create(path, &k2, &created, err, sizeof(err)), PG_EINVAL);
	assert_non_null(strstr(err, "chmod 600"));
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	sshkey_free(k1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_wildcards),
		cmocka_unit_test(test_hashed_and_append),
		cmocka_unit_test(test_keyfile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
