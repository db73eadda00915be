/*
 * backends/pins.c: the pin table. Set, move, remove and touch keep the per-instance counts and user
 * lists consistent with the table; limits on names; many users force the table to grow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/pins.h"
#include "core/err.h"

static void
assert_users(struct pin_table *t, const char *id, const char *const *want, size_t nwant)
{
	const char **users = NULL;
	size_t n = 99;

	assert_int_equal(pins_users(t, id, &users, &n), 0);
	assert_int_equal(n, nwant);
	assert_int_equal(pins_count(t, id), nwant);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(users[i], want[i]);
	if (nwant == 0)
		assert_null(users);
	free(users);
}

static void
test_set_get(void **state)
{
	struct pin_table *t = pins_new();
	int64_t since, active;

	assert_non_null(t);
	assert_int_equal(pins_size(t), 0);
	assert_null(pins_get(t, "alice"));
	assert_int_equal(pins_set(t, "alice", "demo-1", 1000), 0);
	assert_int_equal(pins_set(t, "bob", "demo-2", 1001), 0);
	assert_int_equal(pins_set(t, "carol", "demo-1", 1002), 0);
	assert_string_equal(pins_get(t, "alice"), "demo-1");
	assert_string_equal(pins_get(t, "bob"), "demo-2");
	assert_null(pins_get(t, "alic"));
	assert_null(pins_get(t, "alicee"));
	assert_int_equal(pins_size(t), 3);
	assert_int_equal(pins_count(t, "demo-1"), 2);
	assert_int_equal(pins_count(t, "demo-2"), 1);
	assert_int_equal(pins_count(t, "demo-3"), 0);
	assert_int_equal(pins_times(t, "alice", &since, &active), 0);
	assert_int_equal(since, 1000);
	assert_int_equal(active, 1000);

	/* The same pin again is activity, not a new pin. */
	assert_int_equal(pins_set(t, "alice", "demo-1", 2000), 0);
	assert_int_equal(pins_times(t, "alice", &since, &active), 0);
	assert_int_equal(since, 1000);
	assert_int_equal(active, 2000);
	assert_int_equal(pins_size(t), 3);
	assert_int_equal(pins_count(t, "demo-1"), 2);

	assert_int_equal(pins_touch(t, "alice", 3000), 0);
	assert_int_equal(pins_times(t, "alice", NULL, &active), 0);
	assert_int_equal(active, 3000);
	assert_int_equal(pins_touch(t, "nobody", 3000), PG_ENOTFOUND);
	assert_int_equal(pins_times(t, "nobody", &since, &active), PG_ENOTFOUND);
	pins_free(t);
	pins_free(NULL);
}

static void
test_move(void **state)
{
	struct pin_table *t = pins_new();
	int64_t since, active;

	assert_int_equal(pins_set(t, "alice", "demo-1", 1000), 0);
	assert_int_equal(pins_set(t, "alice", "demo-2", 5000), 0);
	assert_string_equal(pins_get(t, "alice"), "demo-2");
	assert_int_equal(pins_count(t, "demo-1"), 0);
	assert_int_equal(pins_count(t, "demo-2"), 1);
	assert_int_equal(pins_size(t), 1);
	assert_int_equal(pins_times(t, "alice", &since, &active), 0);
	assert_int_equal(since, 5000);
	assert_int_equal(active, 5000);
	assert_users(t, "demo-1", NULL, 0);
	pins_free(t);
}

static void
test_remove(void **state)
{
	struct pin_table *t = pins_new();

	assert_int_equal(pins_set(t, "alice", "demo-1", 1), 0);
	assert_int_equal(pins_set(t, "bob", "demo-1", 1), 0);
	assert_int_equal(pins_remove(t, "alice"), 0);
	assert_int_equal(pins_remove(t, "alice"), PG_ENOTFOUND);
	assert_null(pins_get(t, "alice"));
	assert_string_equal(pins_get(t, "bob"), "demo-1");
	assert_int_equal(pins_count(t, "demo-1"), 1);
	assert_int_equal(pins_size(t), 1);
	assert_int_equal(pins_remove(t, "bob"), 0);
	assert_int_equal(pins_size(t), 0);
	assert_int_equal(pins_count(t, "demo-1"), 0);
	/* The table is usable after it went empty. */
	assert_int_equal(pins_set(t, "bob", "demo-1", 2), 0);
	assert_int_equal(pins_count(t, "demo-1"), 1);
	pins_free(t);
}

static void
test_users_sorted(void **state)
{
	struct pin_table *t = pins_new();
	static const char *const want1[] = { "Zed", "alice", "bob", "carol", "carol2" };
	static const char *const want2[] = { "dave" };

	assert_int_equal(pins_set(t, "carol", "demo-1", 1), 0);
	assert_int_equal(pins_set(t, "alice", "demo-1", 1), 0);
	assert_int_equal(pins_set(t, "dave", "demo-2", 1), 0);
	assert_int_equal(pins_set(t, "carol2", "demo-1", 1), 0);
	assert_int_equal(pins_set(t, "Zed", "demo-1", 1), 0);
	assert_int_equal(pins_set(t, "bob", "demo-1", 1), 0);
	assert_users(t, "demo-1", want1, 5);
	assert_users(t, "demo-2", want2, 1);
	assert_users(t, "demo-3", NULL, 0);
	pins_free(t);
}

static void
test_remove_instance(void **state)
{
	struct pin_table *t = pins_new();
	static const char *const want2[] = { "bob", "erin" };

	assert_int_equal(pins_set(t, "alice", "demo-1", 1), 0);
	assert_int_equal(pins_set(t, "bob", "demo-2", 1), 0);
	assert_int_equal(pins_set(t, "carol", "demo-1", 1), 0);
	assert_int_equal(pins_set(t, "dave", "demo-1", 1), 0);
	assert_int_equal(pins_set(t, "erin", "demo-2", 1), 0);
	assert_int_equal(pins_remove_instance(t, "demo-1"), 3);
	assert_null(pins_get(t, "alice"));
	assert_null(pins_get(t, "carol"));
	assert_null(pins_get(t, "dave"));
	assert_int_equal(pins_size(t), 2);
	assert_int_equal(pins_count(t, "demo-1"), 0);
	assert_users(t, "demo-2", want2, 2);
	assert_int_equal(pins_remove_instance(t, "demo-1"), 0);
	assert_int_equal(pins_remove_instance(t, "nope"), 0);
	pins_free(t);
}

static void
test_limits(void **state)
{
	struct pin_table *t = pins_new();
	char user[PIN_USER_MAX + 2], id[PG_ID_MAX + 2];

	memset(user, 'u', sizeof(user) - 1);
	user[PIN_USER_MAX] = '\0';
	memset(id, 'i', sizeof(id) - 1);
	id[PG_ID_MAX] = '\0';
	assert_int_equal(pins_set(t, user, id, 1), 0);
	assert_string_equal(pins_get(t, user), id);
	user[PIN_USER_MAX] = 'u';
	user[PIN_USER_MAX + 1] = '\0';
	assert_int_equal(pins_set(t, user, "demo-1", 1), PG_ETOOBIG);
	id[PG_ID_MAX] = 'i';
	id[PG_ID_MAX + 1] = '\0';
	assert_int_equal(pins_set(t, "alice", id, 1), PG_EINVAL);
	assert_int_equal(pins_set(t, "", "demo-1", 1), PG_EINVAL);
	assert_int_equal(pins_set(t, "alice", "", 1), PG_EINVAL);
	assert_int_equal(pins_size(t), 1);
	pins_free(t);
}

/* Enough users to grow the table several times; every one stays findable and counted. */
static void
test_many(void **state)
{
	struct pin_table *t = pins_new();
	char user[32], id[16];
	const int n = 20000;

	for (int i = 0; i < n; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		snprintf(id, sizeof(id), "demo-%d", i % 7);
		assert_int_equal(pins_set(t, user, id, i), 0);
	}
	assert_int_equal(pins_size(t), n);
	for (int i = 0; i < n; i += 2) {
		snprintf(user, sizeof(user), "user%d", i);
		assert_int_equal(pins_remove(t, user), 0);
	}
	assert_int_equal(pins_size(t), n / 2);
	for (int i = 0; i < n; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		snprintf(id, sizeof(id), "demo-%d", i % 7);
		if (i % 2 == 0)
			assert_null(pins_get(t, user));
		else
			assert_string_equal(pins_get(t, user), id);
	}
	size_t total = 0;
	for (int k = 0; k < 7; k++) {
		snprintf(id, sizeof(id), "demo-%d", k);
		total += pins_count(t, id);
	}
	assert_int_equal(total, n / 2);
	pins_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_get),
		cmocka_unit_test(test_move),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_users_sorted),
		cmocka_unit_test(test_remove_instance),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
