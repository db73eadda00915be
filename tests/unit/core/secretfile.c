/* core/secretfile: the one rule for files holding secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/err.h"
#include "core/runas.h"
#include "core/secretfile.h"

static struct stat
st_of(mode_t mode, uid_t uid)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_mode = mode;
	st.st_uid = uid;
	return st;
}

static void
test_stat_rule(void **state)
{
	char err[512];
	struct stat st;

	(void)state;
	st = st_of(S_IFREG | 0600, 1000);
	assert_int_equal(pg_secret_check_stat(&st, 1000, "/k", "host key", err, sizeof(err)), 0);
	st = st_of(S_IFREG | 0400, 1000);
	assert_int_equal(pg_secret_check_stat(&st, 1000, "/k", "host key", err, sizeof(err)), 0);
	st = st_of(S_IFREG | 0400, 0);
	assert_int_equal(pg_secret_check_stat(&st, 0, "/k", "host key", err, sizeof(err)), 0);
	/* Root's own, but poolgate runs as 1000: it could not even read it. */
	assert_int_equal(pg_secret_check_stat(&st, 1000, "/k", "host key", err, sizeof(err)),
	    PG_EINVAL);
	assert_string_equal(err, "/k: host key: owned by uid 0, but poolgate runs as uid 1000; "
	    "chown 1000 /k");
	/* Any access by group or others, read, write or execute, is refused. */
	for (mode_t bit = 1; bit <= 040; bit <<= 1) {
		st = st_of(S_IFREG | 0600 | bit, 1000);
		assert_int_equal(pg_secret_check_stat(&st, 1000, "/k", "host key", err,
		    sizeof(err)), PG_EINVAL);
		assert_non_null(strstr(err, "/k: host key: mode 06"));
		assert_non_null(strstr(err, "chmod 600 /k"));
	}
	st = st_of(S_IFREG | 0644, 1000);
	pg_secret_check_stat(&st, 1000, "/k", "TLS private key", err, sizeof(err));
	assert_string_equal(err, "/k: TLS private key: mode 0644 gives group or others access to "
	    "a secret; chmod 600 /k");
	/* Another unprivileged owner could swap it. */
	st = st_of(S_IFREG | 0600, 1001);
	assert_int_equal(pg_secret_check_stat(&st, 1000, "/k", "host key", err, sizeof(err)),
	    PG_EINVAL);
	assert_non_null(strstr(err, "owned by uid 1001, but poolgate runs as uid 1000"));
	st = st_of(S_IFDIR | 0700, 1000);
	assert_int_equal(pg_secret_check_stat(&st, 1000, "/k", "host key", err, sizeof(err)),
	    PG_EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
}

static void
test_paths_and_config(void **state)
{
	char dir[] = "/tmp/pg-secret-XXXXXX", key[128], tok[128], err[512];
	struct pg_config *cfg = NULL;
	const char *what = NULL;
	char *keys[1];
	int fd;

	(void)state;
	pg_runas_set(geteuid(), getegid());
	assert_non_null(mkdtemp(dir));
	snprintf(key, sizeof(key), "%s/key", dir);
	snprintf(tok, sizeof(tok), "%s/token", dir);
	assert_true((fd = open(key, O_WRONLY | O_CREAT, 0600)) >= 0);
	close(fd);
	assert_true((fd = open(tok, O_WRONLY | O_CREAT, 0600)) >= 0);
	close(fd);
	assert_int_equal(pg_secret_check_path(key, "k", err, sizeof(err)), 0);
	assert_int_equal(pg_secret_check_path(dir, "k", err, sizeof(err)), PG_EINVAL);
	snprintf(err, sizeof(err), "%s/none", dir);
	assert_int_equal(pg_secret_check_path(err, "k", err, sizeof(err)), PG_ENOTFOUND);

	assert_int_equal(pg_config_default(&cfg), 0);
	keys[0] = key;
	cfg->ssh.host_keys = keys;
	cfg->ssh.nhost_keys = 1;
	cfg->admin_token_file = tok;
	assert_int_equal(pg_secret_check_config(cfg, NULL, err, sizeof(err)), 0);
	assert_int_equal(chmod(tok, 0640), 0);
	assert_int_equal(pg_secret_check_config(cfg, &what, err, sizeof(err)), PG_EINVAL);
	assert_non_null(strstr(err, "admin.token_file: mode 0640"));
	assert_string_equal(what, PG_SECRET_ADMIN_TOKEN);
	assert_int_equal(chmod(key, 0604), 0);
	assert_int_equal(pg_secret_check_config(cfg, &what, err, sizeof(err)), PG_EINVAL);
	assert_non_null(strstr(err, "ssh.host_keys: mode 0604"));
	assert_string_equal(what, PG_SECRET_HOST_KEYS);
	cfg->ssh.host_keys = NULL;
	cfg->ssh.nhost_keys = 0;
	cfg->admin_token_file = NULL;
	pg_config_free(cfg);
	unlink(key);
	unlink(tok);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stat_rule),
		cmocka_unit_test(test_paths_and_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
