/* health/hyst.c: rise/fall hysteresis, driven round by round (hyst.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "health/hyst.h"

/* Feeds rounds ("+" good, "-" bad) from cur and returns the health after the last one. */
static enum inst_health
feed(struct hyst *h, enum inst_health cur, const char *rounds, uint32_t rise, uint32_t fall)
{
	for (; *rounds != '\0'; rounds++)
		cur = hyst_feed(h, cur, *rounds == '+', rise, fall);
	return cur;
}

static void
test_unknown_first_round_decides(void **state)
{
	struct hyst h = { 0 };

	assert_int_equal(hyst_feed(&h, HEALTH_UNKNOWN, 1, 5, 5), HEALTH_UP);
	h = (struct hyst){ 0 };
	assert_int_equal(hyst_feed(&h, HEALTH_UNKNOWN, 0, 5, 5), HEALTH_DOWN);
}

static void
test_up_needs_fall_failures(void **state)
{
	struct hyst h = { 0 };
	enum inst_health cur = HEALTH_UP;

	cur = hyst_feed(&h, cur, 0, 2, 3);
	assert_int_equal(cur, HEALTH_UP);
	cur = hyst_feed(&h, cur, 0, 2, 3);
	assert_int_equal(cur, HEALTH_UP);
	cur = hyst_feed(&h, cur, 0, 2, 3);
	assert_int_equal(cur, HEALTH_DOWN);
	/* Once down, further failures keep it down. */
	assert_int_equal(hyst_feed(&h, cur, 0, 2, 3), HEALTH_DOWN);
}

static void
test_success_resets_fall_run(void **state)
{
	struct hyst h = { 0 };

	assert_int_equal(feed(&h, HEALTH_UP, "--+--+--", 2, 3), HEALTH_UP);
	assert_int_equal(feed(&h, HEALTH_UP, "-", 2, 3), HEALTH_DOWN);
}

static void
test_down_needs_rise_successes(void **state)
{
	struct hyst h = { 0 };
	enum inst_health cur = HEALTH_DOWN;

	cur = hyst_feed(&h, cur, 1, 3, 2);
	assert_int_equal(cur, HEALTH_DOWN);
	cur = hyst_feed(&h, cur, 1, 3, 2);
	assert_int_equal(cur, HEALTH_DOWN);
	cur = hyst_feed(&h, cur, 1, 3, 2);
	assert_int_equal(cur, HEALTH_UP);
	assert_int_equal(hyst_feed(&h, cur, 1, 3, 2), HEALTH_UP);
}

static void
test_failure_resets_rise_run(void **state)
{
	struct hyst h = { 0 };

	assert_int_equal(feed(&h, HEALTH_DOWN, "++-++-++", 3, 2), HEALTH_DOWN);
	assert_int_equal(feed(&h, HEALTH_DOWN, "+", 3, 2), HEALTH_UP);
}

/* The whole cycle: unknown, down at once, up after rise, down after fall. */
static void
test_full_cycle(void **state)
{
	struct hyst h = { 0 };
	enum inst_health cur = HEALTH_UNKNOWN;

	cur = feed(&h, cur, "-", 2, 2);
	assert_int_equal(cur, HEALTH_DOWN);
	cur = feed(&h, cur, "+", 2, 2);
	assert_int_equal(cur, HEALTH_DOWN);
	cur = feed(&h, cur, "+", 2, 2);
	assert_int_equal(cur, HEALTH_UP);
	cur = feed(&h, cur, "-", 2, 2);
	assert_int_equal(cur, HEALTH_UP);
	cur = feed(&h, cur, "-", 2, 2);
	assert_int_equal(cur, HEALTH_DOWN);
}

static void
test_rise_fall_one(void **state)
{
	struct hyst h = { 0 };
	enum inst_health cur = HEALTH_UP;

	cur = hyst_feed(&h, cur, 0, 1, 1);
	assert_int_equal(cur, HEALTH_DOWN);
	cur = hyst_feed(&h, cur, 1, 1, 1);
	assert_int_equal(cur, HEALTH_UP);
	cur = hyst_feed(&h, cur, 1, 1, 1);
	assert_int_equal(cur, HEALTH_UP);
	cur = hyst_feed(&h, cur, 0, 1, 1);
	assert_int_equal(cur, HEALTH_DOWN);
	cur = hyst_feed(&h, cur, 0, 1, 1);
	assert_int_equal(cur, HEALTH_DOWN);
}

static void
test_runs_counted(void **state)
{
	struct hyst h = { 0 };

	feed(&h, HEALTH_UP, "++-+++", 2, 3);
	assert_int_equal(h.ok_run, 3);
	assert_int_equal(h.fail_run, 0);
	feed(&h, HEALTH_UP, "--", 2, 3);
	assert_int_equal(h.ok_run, 0);
	assert_int_equal(h.fail_run, 2);
}

static void
test_run_saturates(void **state)
{
	struct hyst h = { UINT32_MAX, 0 };

	assert_int_equal(hyst_feed(&h, HEALTH_DOWN, 1, 3, 3), HEALTH_UP);
	assert_int_equal(h.ok_run, UINT32_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_first_round_decides),
		cmocka_unit_test(test_up_needs_fall_failures),
		cmocka_unit_test(test_success_resets_fall_run),
		cmocka_unit_test(test_down_needs_rise_successes),
		cmocka_unit_test(test_failure_resets_rise_run),
		cmocka_unit_test(test_full_cycle),
		cmocka_unit_test(test_rise_fall_one),
		cmocka_unit_test(test_runs_counted),
		cmocka_unit_test(test_run_saturates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
