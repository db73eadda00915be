/* core/ratelimit.c: startups per source and in total, failure penalties, bounded memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/addr.h"
#include "core/ratelimit.h"

static struct sockaddr_storage
ip(const char *s)
{
	struct sockaddr_storage ss;

	assert_int_equal(pg_addr_from_ip(s, 1234, &ss), 0);
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static const struct rl_conf base = { .max_sources = 1000, .ipv6_prefix = 64, .start = 0,
	.rate = 0, .full = 0, .per_source = 0, .free_failures = 0, .delay_ms = 0,
	.max_delay_ms = 0, .half_life_ms = 60000, .block_after = 0, .block_ms = 0 };

static void
test_per_source(void **state)
{
	struct rl_conf c = base;
	struct rl_table *t;
	struct sockaddr_storage a = ip("192.0.2.7"), b = ip("192.0.2.8");
	struct rl_stats st;

	c.per_source = 3;
	assert_non_null(t = rl_new(&c, 1));
	for (int i = 0; i < 3; i++)
		assert_int_equal(rl_admit(t, SA(a), 0), RL_OK);
	assert_int_equal(rl_admit(t, SA(a), 0), RL_PER_SOURCE);
	assert_int_equal(rl_admit(t, SA(b), 0), RL_OK);
	rl_release(t, SA(a), 0);
	assert_int_equal(rl_admit(t, SA(a), 0), RL_OK);
	rl_get_stats(t, 0, &st);
	assert_int_equal(st.startups, 4);
	assert_int_equal(st.refused[RL_PER_SOURCE], 1);
	assert_int_equal(st.admitted, 5);
	rl_free(t);
}

static void
test_max_startups_random_early_drop(void **state)
{
	struct rl_conf c = base;
	struct rl_table *t;
	struct sockaddr_storage ss;
	char addr[32];
	int ok = 0, dropped = 0;

	/* 10:50:20: all of the first 10 pass, about half of the next ones, none past 20. */
	c.start = 10;
	c.rate = 50;
	c.full = 20;
	assert_non_null(t = rl_new(&c, 42));
	for (int i = 0; i < 10; i++) {
		snprintf(addr, sizeof(addr), "10.0.0.%d", i + 1);
		ss = ip(addr);
		assert_int_equal(rl_admit(t, SA(ss), 0), RL_OK);
	}
	for (int i = 0; i < 1000; i++) {
		enum rl_verdict v;

		snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 200, i % 200);
		ss = ip(addr);
		v = rl_admit(t, SA(ss), 0);
		if (v == RL_OK) {
			ok++;
			rl_release(t, SA(ss), 0);	/* stay at 10 startups: p is 50% */
		} else {
			assert_int_equal(v, RL_RANDOM);
			dropped++;
		}
	}
	assert_in_range(dropped, 400, 600);
	for (int i = 0; i < 100; i++) {
		snprintf(addr, sizeof(addr), "10.2.0.%d", i);
		ss = ip(addr);
		(void)rl_admit(t, SA(ss), 0);
	}
	ss = ip("10.3.0.1");
	assert_int_equal(rl_admit(t, SA(ss), 0), RL_FULL);
	rl_free(t);
}

static void
test_penalty_delays_then_block(void **state)
{
	struct rl_conf c = base;
	struct rl_table *t;
	struct sockaddr_storage a = ip("198.51.100.1"), b = ip("198.51.100.2");
	uint32_t d, expect[] = { 0, 0, 100, 200, 400, 800, 1000, 1000 };

	c.free_failures = 2;
	c.delay_ms = 100;
	c.max_delay_ms = 1000;
	c.block_after = 9;
	c.block_ms = 5000;
	c.half_life_ms = 10000;
	assert_non_null(t = rl_new(&c, 1));
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		assert_int_equal(rl_failure(t, SA(a), 1000, &d), 0);
		assert_int_equal(d, expect[i]);
	}
	assert_int_equal(rl_failure(t, SA(a), 1000, &d), 1);	/* the ninth blocks */
	assert_int_equal(rl_admit(t, SA(a), 1000), RL_BLOCKED);
	assert_true(rl_blocked(t, SA(a), 5999));
	assert_int_equal(rl_admit(t, SA(b), 1000), RL_OK);	/* others are not */
	assert_int_equal(rl_admit(t, SA(a), 6000), RL_OK);	/* the block ends */
	/* Remembered, half forgotten: three more failures (not nine) block it again. */
	assert_int_equal(rl_failure(t, SA(a), 6000, &d), 0);
	assert_int_equal(d, 1000);
	assert_int_equal(rl_failure(t, SA(a), 6000, &d), 0);
	assert_int_equal(rl_failure(t, SA(a), 6000, &d), 1);
	rl_free(t);
}

static void
test_penalty_decays_and_forgives(void **state)
{
	struct rl_conf c = base;
	struct rl_table *t;
	struct sockaddr_storage a = ip("198.51.100.1");
	uint32_t d;

	c.free_failures = 1;
	c.delay_ms = 100;
	c.max_delay_ms = 100000;
	c.half_life_ms = 1000;
	assert_non_null(t = rl_new(&c, 1));
	for (int i = 0; i < 4; i++)
		rl_failure(t, SA(a), 0, &d);
	assert_int_equal(d, 400);
	/* Two half-lives later 4 failures weigh 1: the next is the second, 100 ms. */
	rl_failure(t, SA(a), 2000, &d);
	assert_int_equal(d, 100);
	/* Failures of a connection that then logged in are forgiven. */
	rl_forgive(t, SA(a), 2, 2000);
	rl_failure(t, SA(a), 2000, &d);
	assert_int_equal(d, 0);
	rl_free(t);
}

static void
test_bounded_and_evicts_idle_oldest(void **state)
{
	struct rl_conf c = base;
	struct rl_table *t;
	struct rl_stats st;
	struct sockaddr_storage ss, first = ip("10.9.0.1"), live = ip("10.9.0.2");
	char addr[32];
	uint32_t d;

	c.max_sources = 100;
	c.block_after = 1;
	c.block_ms = 1000000;
	assert_non_null(t = rl_new(&c, 1));
	/* One counted connection (never evicted) and a hundred blocked sources after it. */
	assert_int_equal(rl_admit(t, SA(live), 0), RL_OK);
	rl_failure(t, SA(first), 0, &d);
	for (int i = 0; i < 1000; i++) {
		snprintf(addr, sizeof(addr), "10.8.%d.%d", i / 250, i % 250);
		ss = ip(addr);
		rl_failure(t, SA(ss), (uint64_t)i + 1, &d);
	}
	rl_get_stats(t, 1, &st);
	assert_int_equal(st.sources, 100);
	assert_int_equal(st.evictions, 1000 - 99 + 1);
	assert_int_equal(st.blocks, 1001);
	assert_false(rl_blocked(t, SA(first), 2));	/* the oldest went first */
	ss = ip("10.8.3.249");
	assert_true(rl_blocked(t, SA(ss), 2));		/* the newest stayed */
	rl_release(t, SA(live), 5);
	rl_get_stats(t, 5, &st);
	assert_int_equal(st.startups, 0);
	rl_free(t);
}

static void
test_table_full_of_counted_refuses(void **state)
{
	struct rl_conf c = base;
	struct rl_table *t;
	struct sockaddr_storage ss;
	char addr[32];

	c.max_sources = 100;
	assert_non_null(t = rl_new(&c, 1));
	for (int i = 0; i < 100; i++) {
		snprintf(addr, sizeof(addr), "10.7.0.%d", i);
		ss = ip(addr);
		assert_int_equal(rl_admit(t, SA(ss), 0), RL_OK);
	}
	ss = ip("10.7.1.1");
	assert_int_equal(rl_admit(t, SA(ss), 0), RL_TABLE);
	ss = ip("10.7.0.5");
	assert_int_equal(rl_admit(t, SA(ss), 0), RL_OK);	/* a known source still fits */
	rl_free(t);
}

static void
test_ipv6_grouping_and_mapped(void **state)
{
	struct rl_conf c = base;
	struct rl_table *t;
	struct sockaddr_storage a = ip("2001:db8:1:2::1"), b = ip("2001:db8:1:2:ffff::9"),
	    other = ip("2001:db8:1:3::1"), v4 = ip("192.0.2.7"), mapped = ip("::ffff:192.0.2.7");

	c.per_source = 1;
	assert_non_null(t = rl_new(&c, 1));
	assert_int_equal(rl_admit(t, SA(a), 0), RL_OK);
	assert_int_equal(rl_admit(t, SA(b), 0), RL_PER_SOURCE);	/* same /64 */
	assert_int_equal(rl_admit(t, SA(other), 0), RL_OK);
	assert_int_equal(rl_admit(t, SA(v4), 0), RL_OK);
	assert_int_equal(rl_admit(t, SA(mapped), 0), RL_PER_SOURCE);	/* the same host */
	rl_release(t, SA(mapped), 0);
	assert_int_equal(rl_admit(t, SA(v4), 0), RL_OK);
	rl_free(t);
}

static void
test_reload_keeps_counts(void **state)
{
	struct rl_conf c = base;
	struct rl_table *t;
	struct sockaddr_storage a = ip("192.0.2.1");
	struct rl_stats st;

	c.per_source = 5;
	assert_non_null(t = rl_new(&c, 1));
	assert_int_equal(rl_admit(t, SA(a), 0), RL_OK);
	assert_int_equal(rl_admit(t, SA(a), 0), RL_OK);
	c.per_source = 2;
	c.max_sources = 5000000;
	c.ipv6_prefix = 48;
	assert_int_equal(rl_set_conf(t, &c), 0);
	assert_int_equal(rl_admit(t, SA(a), 0), RL_PER_SOURCE);
	rl_release(t, SA(a), 0);
	rl_release(t, SA(a), 0);
	rl_get_stats(t, 0, &st);
	assert_int_equal(st.startups, 0);
	assert_int_equal(st.sources, 0);	/* nothing to remember: gone */
	rl_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_source),
		cmocka_unit_test(test_max_startups_random_early_drop),
		cmocka_unit_test(test_penalty_delays_then_block),
		cmocka_unit_test(test_penalty_decays_and_forgives),
		cmocka_unit_test(test_bounded_and_evicts_idle_oldest),
		cmocka_unit_test(test_table_full_of_counted_refuses),
		cmocka_unit_test(test_ipv6_grouping_and_mapped),
		cmocka_unit_test(test_reload_keeps_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
