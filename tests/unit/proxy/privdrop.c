/* proxy/privdrop: the state_dir rule (the drop itself is tested end to end, as root). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/stat.h>

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_dir_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
