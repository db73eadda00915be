/*
 * backends/score.c and placement by score (score.h, placement.h): the formula on fake load
 * figures, then place_user() / place_anonymous() / place_verdict() over a registry whose
 * instances report such figures, and the decision counters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/placement.h"
#include "backends/score.h"
#include "core/log.h"

#define NOW 1000000

/* Known load: load1 on ncpu, mem_used of memory, optionally one GPU at gpu. */
static struct inst_load
known(double load1, uint32_t ncpu, double mem_used, int with_gpu, double gpu)
{
	struct inst_load l;

	memset(&l, 0, sizeof(l));
	l.state = LOAD_KNOWN;
	l.fig.load1 = load1;
	l.fig.ncpu = ncpu;
	l.fig.mem_total_kb = 1000000;
	l.fig.mem_avail_kb = (uint64_t)(1000000 * (1 - mem_used));
	l.fig.ngpu = with_gpu ? 1 : 0;
	l.fig.gpu_util = gpu;
	l.fig.gpu_mem_used = gpu / 2;
	l.at_ms = NOW - 1000;
	l.valid_until_ms = NOW + 1000;
	return l;
}

static void
test_formula(void **state)
{
	struct placement_weights w = PG_PLACEMENT_WEIGHTS_DEFAULT;
	struct inst_load l = known(2.0, 4, 0.25, 0, 0), g = known(2.0, 4, 0.25, 1, 0.8);
	struct inst_load unknown;

	memset(&unknown, 0, sizeof(unknown));
	unknown.state = LOAD_UNKNOWN;
	/* Users only: (users + 1) / capacity, whatever the weight. */
	assert_float_equal(score_compute(&w, 0, 8, NULL, NOW), 1.0 / 8, 1e-12);
	assert_float_equal(score_compute(&w, 3, 8, &unknown, NOW), 4.0 / 8, 1e-12);
	w.users = 5;
	assert_float_equal(score_compute(&w, 3, 8, NULL, NOW), 4.0 / 8, 1e-12);
	w = PG_PLACEMENT_WEIGHTS_DEFAULT;
	/* Known load without GPU: mean of users 4/8, cpu 2/4, memory 0.25. */
	assert_float_equal(score_compute(&w, 3, 8, &l, NOW), (0.5 + 0.5 + 0.25) / 3, 1e-9);
	/* With a GPU: its term is max(util 0.8, memory 0.4). */
	assert_float_equal(score_compute(&w, 3, 8, &g, NOW), (0.5 + 0.5 + 0.25 + 0.8) / 4, 1e-9);
	/* Weights. */
	w = (struct placement_weights){ .users = 1, .cpu = 3, .memory = 0, .gpu = 0 };
	assert_float_equal(score_compute(&w, 3, 8, &g, NOW), (0.5 + 3 * 0.5) / 4, 1e-9);
	/* Stale figures (the probe stopped reporting) count as unknown. */
	w = PG_PLACEMENT_WEIGHTS_DEFAULT;
	assert_float_equal(score_compute(&w, 3, 8, &l, NOW + 1001), 4.0 / 8, 1e-12);
	/* Overloaded CPU: load 16 on 4 CPUs is a term of 4, never clipped. */
	l = known(16, 4, 0, 0, 0);
	assert_float_equal(score_compute(&w, 0, 1, &l, NOW), (1 + 4 + 0) / 3.0, 1e-9);
}

struct fx {
	struct registry *reg;
	struct pin_table *pins;
};

static struct inst_conf
ic(const char *id, uint32_t capacity)
{
	return (struct inst_conf){ .id = (char *)id, .address = "10.0.0.1", .ssh_port = 22,
		.http_port = 8000, .http_tls_verify = 1, .capacity = capacity, .admin = INST_ACTIVE };
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct inst_conf list[2] = { ic("a", 8), ic("b", 8) };

	if (f == NULL || (f->reg = reg_new()) == NULL || (f->pins = pins_new()) == NULL ||
	    reg_apply(f->reg, INST_SRC_CONFIG, list, 2) != 0)
		return -1;
	for (struct instance *in = reg_first(f->reg); in != NULL; in = in->next)
		inst_set_health(in, HEALTH_UP, "test");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	pins_free(f->pins);
	reg_free(f->reg);
	free(f);
	return 0;
}

static struct instance *
find(struct fx *f, const char *id)
{
	struct instance *in = reg_find(f->reg, id);

	assert_non_null(in);
	return in;
}

static void
pin_n(struct fx *f, const char *id, int n, const char *tag)
{
	char user[32];

	for (int i = 0; i < n; i++) {
		snprintf(user, sizeof(user), "%s%d", tag, i);
		assert_int_equal(pins_set(f->pins, user, id, 1), 0);
	}
}

/* High CPU on a pushes new users to b, though b has more users. */
static void
test_load_beats_user_count(void **state)
{
	struct fx *f = *state;
	struct place_ctl *ctl = reg_placement(f->reg);

	find(f, "a")->load = known(8, 2, 0.9, 0, 0);	/* 4 per cpu, 90% memory */
	find(f, "b")->load = known(0.1, 2, 0.2, 0, 0);
	pin_n(f, "b", 3, "old");
	for (int i = 0; i < 3; i++) {
		char user[16];
		snprintf(user, sizeof(user), "new%d", i);
		assert_ptr_equal(place_user(f->reg, f->pins, user, NOW, NULL), find(f, "b"));
	}
	assert_int_equal(ctl->decisions[PLACE_NEW], 3);
	/* Returning users are counted as kept. */
	assert_ptr_equal(place_user(f->reg, f->pins, "new0", NOW, NULL), find(f, "b"));
	assert_int_equal(ctl->decisions[PLACE_KEPT], 1);
	/* Once a's figures go stale, users alone count again: a has none, b has six. */
	assert_ptr_equal(place_user(f->reg, f->pins, "later", NOW + 5000, NULL), find(f, "a"));
}

/* Unknown load scores users alone; known load is a mean, so it can win or lose against it. */
static void
test_unknown_load_users_only(void **state)
{
	struct fx *f = *state;

	find(f, "a")->load.state = LOAD_UNKNOWN;		/* score 1/8 with no users */
	find(f, "b")->load = known(0, 4, 0.05, 0, 0);		/* (1/8 + 0 + 0.05) / 3 < 1/8 */
	assert_ptr_equal(place_user(f->reg, f->pins, "u1", NOW, NULL), find(f, "b"));
	find(f, "b")->load = known(2, 4, 0.5, 0, 0);		/* (2/8 + 0.5 + 0.5) / 3 > 1/8 */
	assert_ptr_equal(place_user(f->reg, f->pins, "u2", NOW, NULL), find(f, "a"));
}

/* Capacity: with equal load, 2 of 8 beats 1 of 2 (the share after placing is what counts). */
static void
test_capacity_shares(void **state)
{
	struct fx *f = *state;
	struct inst_conf list[2] = { ic("a", 2), ic("b", 8) };

	assert_int_equal(reg_apply(f->reg, INST_SRC_CONFIG, list, 2), 0);
	pin_n(f, "a", 1, "x");
	pin_n(f, "b", 2, "y");
	assert_ptr_equal(place_user(f->reg, f->pins, "new", NOW, NULL), find(f, "b"));
}

/* Equal scores break by the (user, instance) hash: the same answer on any table. */
static void
test_ties(void **state)
{
	struct fx *f = *state;
	int seen_a = 0, seen_b = 0;

	find(f, "a")->load = known(1, 4, 0.5, 0, 0);
	find(f, "b")->load = known(1, 4, 0.5, 0, 0);
	for (int i = 0; i < 20; i++) {
		struct pin_table *other = pins_new();
		char user[16];
		struct instance *x, *y;

		snprintf(user, sizeof(user), "user%d", i);
		x = place_user(f->reg, f->pins, user, NOW, NULL);
		y = place_user(f->reg, other, user, NOW, NULL);
		assert_ptr_equal(x, y);
		seen_a += x == find(f, "a");
		seen_b += x == find(f, "b");
		pins_free(other);
		assert_int_equal(pins_remove(f->pins, user), 0);
	}
	assert_true(seen_a > 0 && seen_b > 0);
}

static void
test_full_and_none(void **state)
{
	struct fx *f = *state;
	struct place_ctl *ctl = reg_placement(f->reg);
	struct inst_conf list[2] = { ic("a", 1), ic("b", 2) };

	assert_int_equal(reg_apply(f->reg, INST_SRC_CONFIG, list, 2), 0);
	pin_n(f, "a", 1, "x");
	assert_int_equal(place_verdict(f->reg, f->pins, "new", NOW), PLACE_NEW);
	assert_ptr_equal(place_anonymous(f->reg, f->pins, NOW), find(f, "b"));
	pin_n(f, "b", 2, "y");
	/* Every up instance at capacity: pool full, for users and for anonymous browsers. */
	assert_null(place_user(f->reg, f->pins, "new", NOW, NULL));
	assert_int_equal(place_verdict(f->reg, f->pins, "new", NOW), PLACE_FULL);
	assert_null(place_anonymous(f->reg, f->pins, NOW));
	assert_int_equal(ctl->decisions[PLACE_FULL], 2);
	assert_null(pins_get(f->pins, "new"));
	/* Pinned users still get in. */
	assert_ptr_equal(place_user(f->reg, f->pins, "y0", NOW, NULL), find(f, "b"));
	assert_int_equal(place_verdict(f->reg, f->pins, "y0", NOW), PLACE_KEPT);
	/* Nothing up: not "full". */
	inst_set_health(find(f, "a"), HEALTH_DOWN, "x");
	inst_set_health(find(f, "b"), HEALTH_DOWN, "x");
	assert_null(place_user(f->reg, f->pins, "new", NOW, NULL));
	assert_int_equal(place_verdict(f->reg, f->pins, "new", NOW), PLACE_NONE);
	assert_int_equal(ctl->decisions[PLACE_NONE], 1);
	assert_string_equal(place_reason_name(PLACE_FULL), "pool_full");
	assert_string_equal(place_reason_name(PLACE_NONE), "no_instance");
}

/* load_set_known / load_set_unknown: the state, the counters, and figures kept for /status. */
static void
test_load_setters(void **state)
{
	struct fx *f = *state;
	struct instance *a = find(f, "a");
	struct inst_load l = known(1, 2, 0.5, 0, 0);

	load_reset(a, "not measured yet");
	assert_int_equal(a->load.state, LOAD_UNKNOWN);
	assert_false(load_usable(&a->load, NOW));
	load_set_known(a, &l.fig, NOW, 3000);
	assert_true(load_usable(&a->load, NOW + 3000));
	assert_false(load_usable(&a->load, NOW + 3001));
	load_set_unknown(a, "timed out");
	load_set_unknown(a, "timed out");
	assert_int_equal(a->load.state, LOAD_UNKNOWN);
	assert_string_equal(a->load.reason, "timed out");
	assert_int_equal(a->load.ok_total, 1);
	assert_int_equal(a->load.fail_total, 2);
	assert_int_equal(a->load.fig.ncpu, 2);	/* the last good figures stay */
	assert_false(load_usable(&a->load, NOW));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formula),
		cmocka_unit_test_setup_teardown(test_load_beats_user_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_load_users_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capacity_shares, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ties, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_and_none, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_setters, setup, teardown),
	};

	pg_log_setup(PG_LOG_ERR, PG_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
