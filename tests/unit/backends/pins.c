/*
 * backends/pins.c: the pin table. Set, move, remove and touch keep the per-instance counts and user
 * lists consistent with the table; limits on names; many users force the table to grow. Live
 * sessions are counted per user and per instance apart from pins; the idle sweep spares live users;
 * every change reaches an attached store (a fake one that writes down its calls), activity lazily.
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


static void
test_live_sessions(void **state)
{
	struct pin_table *t = pins_new();
	int64_t active;

	assert_int_equal(pins_set(t, "alice", "demo-1", 1000), 0);
	assert_int_equal(pins_live_begin(t, "alice", "demo-1"), 0);
	assert_int_equal(pins_live_begin(t, "alice", "demo-1"), 0);
	assert_int_equal(pins_live_begin(t, "bob", "demo-2"), 0);	/* not pinned: still counted */
	assert_int_equal(pins_live_user(t, "alice"), 2);
	assert_int_equal(pins_live_user(t, "bob"), 1);
	assert_int_equal(pins_live_user(t, "carol"), 0);
	assert_int_equal(pins_live_instance(t, "demo-1"), 2);
	assert_int_equal(pins_live_instance(t, "demo-2"), 1);
	assert_int_equal(pins_live_total(t), 3);
	/* Sessions are not pins. */
	assert_int_equal(pins_size(t), 1);
	assert_null(pins_get(t, "bob"));
	assert_int_equal(pins_count(t, "demo-2"), 0);
	assert_users(t, "demo-2", NULL, 0);
	assert_int_equal(pins_touch(t, "bob", 5), PG_ENOTFOUND);

	/* Unpinning does not end sessions; moving keeps them counted where they run. */
	assert_int_equal(pins_remove(t, "alice"), 0);
	assert_int_equal(pins_live_user(t, "alice"), 2);
	assert_int_equal(pins_set(t, "alice", "demo-2", 2000), 0);
	assert_int_equal(pins_live_instance(t, "demo-1"), 2);
	pins_live_end(t, "alice", "demo-1", 3000);
	assert_int_equal(pins_live_user(t, "alice"), 1);
	assert_int_equal(pins_live_instance(t, "demo-1"), 1);
	/* The end of a session is the pinned user's activity. */
	assert_int_equal(pins_times(t, "alice", NULL, &active), 0);
	assert_int_equal(active, 3000);
	pins_live_end(t, "alice", "demo-1", 4000);
	assert_int_equal(pins_live_instance(t, "demo-1"), 0);
	assert_int_equal(pins_live_total(t), 1);
	/* Ends that were never begun change nothing. */
	pins_live_end(t, "alice", "demo-1", 5000);
	pins_live_end(t, "nobody", "demo-1", 5000);
	pins_live_end(t, "bob", "demo-9", 5000);
	assert_int_equal(pins_live_total(t), 1);
	pins_live_end(t, "bob", "demo-2", 5000);
	assert_int_equal(pins_live_total(t), 0);
	assert_int_equal(pins_live_user(t, "bob"), 0);
	assert_null(pins_get(t, "bob"));
	assert_int_equal(pins_size(t), 1);
	assert_int_equal(pins_live_begin(t, "", "demo-1"), PG_EINVAL);
	assert_int_equal(pins_live_begin(t, "alice", ""), PG_EINVAL);
	pins_free(t);
}

static void
test_expire(void **state)
{
	struct pin_table *t = pins_new();
	int64_t active;

	assert_int_equal(pins_set(t, "alice", "demo-1", 0), 0);
	assert_int_equal(pins_set(t, "bob", "demo-1", 0), 0);
	assert_int_equal(pins_set(t, "carol", "demo-2", 5000), 0);
	assert_int_equal(pins_live_begin(t, "bob", "demo-1"), 0);
	/* Nobody idle for 10 s yet. */
	assert_int_equal(pins_expire(t, 9999, 10000), 0);
	/* alice is; bob has a live session, which counts as activity now. */
	assert_int_equal(pins_expire(t, 10000, 10000), 1);
	assert_null(pins_get(t, "alice"));
	assert_string_equal(pins_get(t, "bob"), "demo-1");
	assert_int_equal(pins_times(t, "bob", NULL, &active), 0);
	assert_int_equal(active, 10000);
	assert_string_equal(pins_get(t, "carol"), "demo-2");
	assert_int_equal(pins_expire(t, 15000, 10000), 1);
	assert_null(pins_get(t, "carol"));
	/* bob's session ends at 16 s: idle from then on. */
	pins_live_end(t, "bob", "demo-1", 16000);
	assert_int_equal(pins_expire(t, 25999, 10000), 0);
	assert_int_equal(pins_expire(t, 26000, 10000), 1);
	assert_int_equal(pins_size(t), 0);
	assert_int_equal(pins_get_counters(t)->expired, 3);
	assert_int_equal(pins_get_counters(t)->created, 3);
	pins_free(t);
}

/* A store that writes its calls down, one per line. */
struct fake_store {
	char log[4096];
	int closed;
	const char *winner;	/* put_if_absent answers this when set */
	int load_calls;
};

/* The format attribute: clang's -Wformat-nonliteral (the fuzz build) wants it on vsnprintf's caller. */
__attribute__((format(printf, 2, 3))) static void
fake_log(struct fake_store *f, const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(f->log);

	va_start(ap, fmt);
	vsnprintf(f->log + n, sizeof(f->log) - n, fmt, ap);
	va_end(ap);
}

static int
fake_load(void *store, pin_put_fn put, pin_del_fn del, void *arg)
{
	struct fake_store *f = store;

	f->load_calls++;
	assert_int_equal(put(arg, "alice", "demo-1", 10, 20), 0);
	assert_int_equal(put(arg, "bob", "demo-2", 11, 21), 0);
	assert_int_equal(put(arg, "alice", "demo-3", 12, 22), 0);
	assert_int_equal(del(arg, "bob"), 0);
	assert_int_equal(del(arg, "nobody"), 0);
	return 0;
}

static int
fake_put(void *store, const char *user, const char *id, int64_t since, int64_t active)
{
	fake_log(store, "put %s %s %lld %lld\n", user, id, (long long)since, (long long)active);
	return 0;
}

static int
fake_claim(void *store, const char *user, const char *id, int64_t since, int64_t active,
    pin_claim_fn done, void *arg)
{
	struct fake_store *f = store;

	fake_log(f, "claim %s %s %lld\n", user, id, (long long)since);
	done(arg, user, 0, f->winner != NULL ? f->winner : id);
	return 0;
}

static int
fake_del(void *store, const char *user)
{
	fake_log(store, "del %s\n", user);
	return 0;
}

static void
fake_stats(void *store, struct pin_store_stats *st)
{
	st->name = "fake";
	st->healthy = 1;
}

static void
fake_close(void *store)
{
	struct fake_store *f = store;

	f->closed++;
	fake_log(f, "close\n");
}

static const struct pin_store_ops fake_ops = { fake_load, fake_put, fake_claim, fake_del,
	fake_stats, fake_close };

static void
test_store_hooks(void **state)
{
	struct pin_table *t = pins_new();
	struct fake_store f;
	struct pin_store_stats st;
	int64_t since, active;

	memset(&f, 0, sizeof(f));
	assert_int_equal(pins_store_stats(t, &st), PG_ENOTFOUND);
	/* The replay fills the table and writes nothing back. */
	assert_int_equal(pins_attach_store(t, &fake_ops, &f), 0);
	assert_int_equal(f.load_calls, 1);
	assert_string_equal(f.log, "");
	assert_string_equal(pins_get(t, "alice"), "demo-3");
	assert_null(pins_get(t, "bob"));
	assert_int_equal(pins_times(t, "alice", &since, &active), 0);
	assert_int_equal(since, 12);
	assert_int_equal(active, 22);
	assert_int_equal(pins_store_stats(t, &st), 0);
	assert_string_equal(st.name, "fake");

	/* A first pin is a claim; a move is a put; a removal a delete. */
	assert_int_equal(pins_set(t, "carol", "demo-1", 1000), 0);
	assert_int_equal(pins_set(t, "carol", "demo-2", 2000), 0);
	assert_int_equal(pins_remove(t, "carol"), 0);
	assert_string_equal(f.log, "claim carol demo-1 1000\nput carol demo-2 2000 2000\n"
	    "del carol\n");
	f.log[0] = '\0';

	/* Activity goes to the store at most once a minute per user... */
	assert_int_equal(pins_set(t, "dave", "demo-1", 100000), 0);
	assert_int_equal(pins_touch(t, "dave", 130000), 0);
	assert_int_equal(pins_set(t, "dave", "demo-1", 159999), 0);
	pins_live_end(t, "dave", "demo-1", 159999);	/* never begun: nothing */
	assert_string_equal(f.log, "claim dave demo-1 100000\n");
	assert_int_equal(pins_touch(t, "dave", 160000), 0);
	assert_string_equal(f.log, "claim dave demo-1 100000\nput dave demo-1 100000 160000\n");
	f.log[0] = '\0';
	assert_int_equal(pins_live_begin(t, "dave", "demo-1"), 0);
	pins_live_end(t, "dave", "demo-1", 230000);
	assert_string_equal(f.log, "put dave demo-1 100000 230000\n");
	f.log[0] = '\0';
	/* ...and the sweep's refresh of live users too; expiry is a delete. */
	assert_int_equal(pins_live_begin(t, "dave", "demo-1"), 0);
	assert_int_equal(pins_expire(t, 240000, 1000000), 0);
	assert_string_equal(f.log, "");
	assert_int_equal(pins_expire(t, 290000, 1000000), 0);
	assert_string_equal(f.log, "put dave demo-1 100000 290000\n");
	f.log[0] = '\0';
	pins_live_end(t, "dave", "demo-1", 300000);	/* under a minute after the last write */
	assert_string_equal(f.log, "");
	assert_int_equal(pins_expire(t, 1200000, 1000000), 1);	/* alice, idle since 22 ms */
	assert_string_equal(f.log, "del alice\n");
	f.log[0] = '\0';
	assert_int_equal(pins_remove_instance(t, "demo-1"), 1);
	assert_string_equal(f.log, "del dave\n");
	f.log[0] = '\0';

	/* Detaching writes the activity the lazy rule held back, then closes. */
	assert_int_equal(pins_set(t, "erin", "demo-2", 3000000), 0);
	assert_int_equal(pins_touch(t, "erin", 3000001), 0);
	assert_int_equal(pins_set(t, "fred", "demo-2", 3000000), 0);
	f.log[0] = '\0';
	pins_detach_store(t);
	assert_string_equal(f.log, "put erin demo-2 3000000 3000001\nclose\n");
	assert_int_equal(pins_store_stats(t, &st), PG_ENOTFOUND);
	/* Memory only from now on. */
	assert_int_equal(pins_set(t, "gina", "demo-2", 1), 0);
	assert_int_equal(f.closed, 1);
	pins_free(t);
	assert_int_equal(f.closed, 1);
}

/* A shared store says another poolgate pinned the user first: the table follows it. */
static void
test_claim_lost(void **state)
{
	struct pin_table *t = pins_new();
	struct fake_store f;

	memset(&f, 0, sizeof(f));
	assert_int_equal(pins_attach_store(t, &fake_ops, &f), 0);
	f.winner = "demo-9";
	assert_int_equal(pins_set(t, "zoe", "demo-1", 1), 0);
	assert_string_equal(pins_get(t, "zoe"), "demo-9");
	assert_int_equal(pins_count(t, "demo-1"), 0);
	assert_int_equal(pins_count(t, "demo-9"), 1);
	assert_int_equal(pins_get_counters(t)->claims_lost, 1);
	/* A winner that is no valid id is ignored. */
	f.winner = "no such/id";
	assert_int_equal(pins_set(t, "yan", "demo-1", 1), 0);
	assert_string_equal(pins_get(t, "yan"), "demo-1");
	pins_free(t);	/* closes the attached store */
	assert_int_equal(f.closed, 1);
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
		cmocka_unit_test(test_live_sessions),
		cmocka_unit_test(test_expire),
		cmocka_unit_test(test_store_hooks),
		cmocka_unit_test(test_claim_lost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
