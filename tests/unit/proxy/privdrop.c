/* proxy/privdrop: the state_dir rule (the drop itself is tested end to end, as root). */
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
#include "proxy/privdrop.h"

static void
test_state_dir_rule(void **state)
{
	char err[512];

	(void)state;
	assert_int_equal(privdrop_state_dir_ok("/s", S_IFDIR | 0700, 999, 999, err, sizeof(err)), 0);
	assert_int_equal(privdrop_state_dir_ok("/s", S_IFDIR | 0750, 999, 999, err, sizeof(err)), 0);
	assert_int_equal(privdrop_state_dir_ok("/s", S_IFDIR | 0755, 999, 999, err, sizeof(err)), 0);
	assert_int_equal(privdrop_state_dir_ok("/s", S_IFDIR | 0770, 999, 999, err, sizeof(err)),
	    PG_EINVAL);
	assert_string_equal(err, "state_dir /s: mode 0770 lets group or others write in it; "
	    "chmod 700 /s");
	assert_int_equal(privdrop_state_dir_ok("/s", S_IFDIR | 0702, 999, 999, err, sizeof(err)),
	    PG_EINVAL);
	assert_int_equal(privdrop_state_dir_ok("/s", S_IFDIR | 0700, 0, 999, err, sizeof(err)),
	    PG_EINVAL);
	assert_string_equal(err, "state_dir /s: owned by uid 0, not by \"user\" (uid 999); "
	    "chown -R 999 /s");
	assert_int_equal(privdrop_state_dir_ok("/s", S_IFLNK | 0777, 999, 999, err, sizeof(err)),
	    PG_EINVAL);
	assert_non_null(strstr(err, "not a directory"));
}

static mode_t
mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void
test_make_dirs(void **state)
{
	char dir[] = "/tmp/pg-mkdirs-XXXXXX", path[128], err[512];
	mode_t old = umask(022);

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a/b/state/", dir);
	assert_int_equal(privdrop_make_dirs(path, err, sizeof(err)), 0);
	assert_int_equal(mode_of(path), 0700);
	snprintf(path, sizeof(path), "%s/a/b", dir);
	assert_int_equal(mode_of(path), 0755);
	/* Again: nothing to do. A file in the way is an error naming it. */
	assert_int_equal(privdrop_make_dirs(path, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/a/b/state/x", dir);
	assert_int_equal(close(open(path, O_WRONLY | O_CREAT, 0600)), 0);
	snprintf(path, sizeof(path), "%s/a/b/state/x/y", dir);
	assert_int_equal(privdrop_make_dirs(path, err, sizeof(err)), PG_EIO);
	assert_non_null(strstr(err, "cannot create"));
	assert_int_equal(privdrop_make_dirs("", err, sizeof(err)), PG_EINVAL);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
	umask(old);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_dir_rule),
		cmocka_unit_test(test_make_dirs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
