/*
 * backends/placement.c: place_user() over a registry built with reg_apply() and inst_set_health().
 * A pin holds while its instance serves (up, or draining and up with a live session of the user);
 * a pin on an instance that is down, in maint, removed, or draining with no live session of hers
 * moves, with *moved and an info line; new users go to the least pinned up and active instance
 * under capacity, ties broken the same way every time. place_pinned() only asks.
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

#include "backends/placement.h"
#include "core/err.h"
#include "core/log.h"

struct fx {
	struct registry *reg;
	struct pin_table *pins;
};

static struct inst_conf
ic(const char *id, uint32_t capacity, enum inst_admin admin)
{
	return (struct inst_conf){ .id = (char *)id, .address = "10.0.0.1", .ssh_port = 22,
		.http_port = 8000, .http_tls_verify = 1, .capacity = capacity, .admin = admin };
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct inst_conf list[3] = { ic("demo-1", 2, INST_ACTIVE), ic("demo-2", 2, INST_ACTIVE),
		ic("demo-3", 2, INST_ACTIVE) };

	if (f == NULL || (f->reg = reg_new()) == NULL || (f->pins = pins_new()) == NULL ||
	    reg_apply(f->reg, INST_SRC_CONFIG, list, 3) != 0)
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

/* Runs place_user() with stderr captured into log (NUL-terminated). */
static struct instance *
place_logged(struct fx *f, const char *user, int64_t now, int *moved, char *log, size_t loglen)
{
	FILE *tmp = tmpfile();
	int saved = dup(2);
	struct instance *in;
	size_t n;

	assert_non_null(tmp);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(tmp), 2) >= 0);
	in = place_user(f->reg, f->pins, user, now, moved);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(log, 1, loglen - 1, tmp);
	log[n] = '\0';
	fclose(tmp);
	return in;
}

static void
test_spread_and_stick(void **state)
{
	struct fx *f = *state;
	struct instance *first[3];
	const char *users[] = { "alice", "bob", "carol" };
	int moved = -1;
	int64_t active;

	/* Three users on three empty instances: one each (fewest pinned users wins). */
	for (int i = 0; i < 3; i++) {
		first[i] = place_user(f->reg, f->pins, users[i], 1000, &moved);
		assert_non_null(first[i]);
		assert_int_equal(moved, 0);
		assert_string_equal(pins_get(f->pins, users[i]), first[i]->conf.id);
	}
	assert_int_equal(pins_count(f->pins, "demo-1"), 1);
	assert_int_equal(pins_count(f->pins, "demo-2"), 1);
	assert_int_equal(pins_count(f->pins, "demo-3"), 1);

	/* Pinned users come back to their instance; the visit is activity. */
	for (int i = 0; i < 3; i++) {
		moved = -1;
		assert_ptr_equal(place_user(f->reg, f->pins, users[i], 2000, &moved), first[i]);
		assert_int_equal(moved, 0);
		assert_int_equal(pins_times(f->pins, users[i], NULL, &active), 0);
		assert_int_equal(active, 2000);
	}
	assert_int_equal(pins_size(f->pins), 3);
	/* moved may be NULL. */
	assert_ptr_equal(place_user(f->reg, f->pins, "alice", 3000, NULL), first[0]);
}

/* The tie-break depends on (user, instance) only: the same on a fresh table, and it spreads. */
static void
test_tie_break_deterministic(void **state)
{
	struct fx *f = *state;
	int seen[3] = { 0 };
	char user[16];

	for (int i = 0; i < 30; i++) {
		struct pin_table *other = pins_new();
		struct instance *a, *b;

		snprintf(user, sizeof(user), "user%d", i);
		a = place_user(f->reg, f->pins, user, 1, NULL);
		b = place_user(f->reg, other, user, 1, NULL);
		assert_non_null(a);
		assert_ptr_equal(a, b);
		seen[a->conf.id[5] - '1']++;
		pins_free(other);
		/* Keep f->pins empty so each user sees a three-way tie. */
		assert_int_equal(pins_remove(f->pins, user), 0);
	}
	assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
}

static void
test_moves_when_down(void **state)
{
	struct fx *f = *state;
	char log[1024], want[128];
	struct instance *a, *b;
	int moved = -1;

	a = place_user(f->reg, f->pins, "alice", 1000, &moved);
	assert_non_null(a);
	inst_set_health(a, HEALTH_DOWN, "tcp refused");
	b = place_logged(f, "alice", 2000, &moved, log, sizeof(log));
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_int_equal(moved, 1);
	assert_string_equal(pins_get(f->pins, "alice"), b->conf.id);
	assert_int_equal(pins_count(f->pins, a->conf.id), 0);
	snprintf(want, sizeof(want), "user alice: pinned to %s (was %s: down)", b->conf.id, a->conf.id);
	assert_non_null(strstr(log, want));

	/* When the old instance comes back, alice stays where she is now. */
	inst_set_health(a, HEALTH_UP, "ok");
	assert_ptr_equal(place_user(f->reg, f->pins, "alice", 3000, &moved), b);
	assert_int_equal(moved, 0);
}

static void
test_moves_when_maint_or_removed(void **state)
{
	struct fx *f = *state;
	struct inst_conf list[3] = { ic("demo-1", 2, INST_MAINT), ic("demo-2", 2, INST_ACTIVE),
		ic("demo-3", 2, INST_ACTIVE) };
	struct inst_conf two[2] = { ic("demo-2", 2, INST_ACTIVE), ic("demo-3", 2, INST_ACTIVE) };
	char log[1024];
	struct instance *in;
	int moved = -1;

	assert_int_equal(pins_set(f->pins, "alice", "demo-1", 1), 0);
	assert_int_equal(reg_apply(f->reg, INST_SRC_CONFIG, list, 3), 0);
	in = place_logged(f, "alice", 2, &moved, log, sizeof(log));
	assert_non_null(in);
	assert_string_not_equal(in->conf.id, "demo-1");
	assert_int_equal(moved, 1);
	assert_non_null(strstr(log, "(was demo-1: maint)"));

	/* A pin to an instance that left the registry. */
	assert_int_equal(pins_set(f->pins, "bob", "demo-1", 1), 0);
	assert_int_equal(reg_apply(f->reg, INST_SRC_CONFIG, two, 2), 0);
	in = place_logged(f, "bob", 3, &moved, log, sizeof(log));
	assert_non_null(in);
	assert_int_equal(moved, 1);
	assert_non_null(strstr(log, "(was demo-1: removed)"));
	assert_int_equal(pins_count(f->pins, "demo-1"), 0);
}

static void
test_draining(void **state)
{
	struct fx *f = *state;
	struct inst_conf list[3] = { ic("demo-1", 2, INST_DRAINING), ic("demo-2", 2, INST_ACTIVE),
		ic("demo-3", 2, INST_ACTIVE) };
	char user[16], log[1024];
	struct instance *in;
	int moved = -1;

	assert_int_equal(pins_set(f->pins, "alice", "demo-1", 1), 0);
	assert_int_equal(pins_live_begin(f->pins, "alice", "demo-1"), 0);
	assert_int_equal(reg_apply(f->reg, INST_SRC_CONFIG, list, 3), 0);
	assert_int_equal(inst_state(find(f, "demo-1")), INST_S_DRAINING);
	/* A user with a live session there keeps going to a draining instance... */
	assert_ptr_equal(place_user(f->reg, f->pins, "alice", 2, &moved), find(f, "demo-1"));
	assert_int_equal(moved, 0);
	assert_ptr_equal(place_pinned(f->reg, f->pins, "alice"), find(f, "demo-1"));
	/* ...new users never go there. */
	for (int i = 0; i < 4; i++) {
		snprintf(user, sizeof(user), "new%d", i);
		in = place_user(f->reg, f->pins, user, 2, &moved);
		assert_non_null(in);
		assert_string_not_equal(in->conf.id, "demo-1");
	}
	/* Her last session ends: her next placement moves her, and says why. */
	pins_live_end(f->pins, "alice", "demo-1", 3);
	assert_null(place_pinned(f->reg, f->pins, "alice"));
	assert_string_equal(pins_get(f->pins, "alice"), "demo-1");	/* peeking changed nothing */
	assert_int_equal(pins_remove(f->pins, "new0"), 0);
	in = place_logged(f, "alice", 4, &moved, log, sizeof(log));
	assert_non_null(in);
	assert_string_not_equal(in->conf.id, "demo-1");
	assert_int_equal(moved, 1);
	assert_non_null(strstr(log, "(was demo-1: draining, no live session)"));
	assert_int_equal(pins_count(f->pins, "demo-1"), 0);

	/* Draining and down: the pin moves even with a live session (nothing there serves). */
	assert_int_equal(pins_set(f->pins, "bob", "demo-1", 5), 0);
	assert_int_equal(pins_live_begin(f->pins, "bob", "demo-1"), 0);
	inst_set_health(find(f, "demo-1"), HEALTH_DOWN, "gone");
	assert_int_equal(pins_remove(f->pins, "new1"), 0);
	in = place_logged(f, "bob", 6, &moved, log, sizeof(log));
	assert_non_null(in);
	assert_string_not_equal(in->conf.id, "demo-1");
	assert_int_equal(moved, 1);
	assert_non_null(strstr(log, "(was demo-1: down)"));
}

/* Draining, no live session, and nowhere else to go: she stays rather than being turned away. */
static void
test_draining_nowhere_else(void **state)
{
	struct fx *f = *state;
	struct inst_conf list[2] = { ic("demo-1", 1, INST_DRAINING), ic("demo-2", 1, INST_ACTIVE) };
	int moved = -1;

	assert_int_equal(reg_apply(f->reg, INST_SRC_CONFIG, list, 2), 0);
	assert_int_equal(pins_set(f->pins, "alice", "demo-1", 1), 0);
	assert_int_equal(pins_set(f->pins, "bob", "demo-2", 1), 0);	/* demo-2 is full */
	assert_ptr_equal(place_user(f->reg, f->pins, "alice", 2, &moved), find(f, "demo-1"));
	assert_int_equal(moved, 0);
	/* A new user finds no room: a draining instance takes nobody new. */
	assert_null(place_user(f->reg, f->pins, "carol", 2, &moved));
	/* Maint, though, takes nobody at all. */
	list[0].admin = INST_MAINT;
	assert_int_equal(reg_apply(f->reg, INST_SRC_CONFIG, list, 2), 0);
	assert_null(place_user(f->reg, f->pins, "alice", 3, &moved));
	assert_null(place_pinned(f->reg, f->pins, "alice"));
}

/* place_pinned() is a pure question: no pin made, none touched. */
static void
test_place_pinned_changes_nothing(void **state)
{
	struct fx *f = *state;
	int64_t active;

	assert_null(place_pinned(f->reg, f->pins, "alice"));
	assert_null(pins_get(f->pins, "alice"));
	assert_int_equal(pins_set(f->pins, "alice", "demo-2", 100), 0);
	assert_ptr_equal(place_pinned(f->reg, f->pins, "alice"), find(f, "demo-2"));
	assert_int_equal(pins_times(f->pins, "alice", NULL, &active), 0);
	assert_int_equal(active, 100);
	inst_set_health(find(f, "demo-2"), HEALTH_UNKNOWN, "endpoint changed");
	assert_null(place_pinned(f->reg, f->pins, "alice"));
	inst_set_health(find(f, "demo-2"), HEALTH_DOWN, "x");
	assert_null(place_pinned(f->reg, f->pins, "alice"));
	assert_string_equal(pins_get(f->pins, "alice"), "demo-2");
}

static void
test_capacity_and_full(void **state)
{
	struct fx *f = *state;
	char user[16], log[1024];
	int moved = -1;

	/* 3 instances x capacity 2. */
	for (int i = 0; i < 6; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		assert_non_null(place_user(f->reg, f->pins, user, 1, NULL));
	}
	assert_int_equal(pins_count(f->pins, "demo-1"), 2);
	assert_int_equal(pins_count(f->pins, "demo-2"), 2);
	assert_int_equal(pins_count(f->pins, "demo-3"), 2);
	assert_null(place_user(f->reg, f->pins, "late", 1, &moved));
	assert_int_equal(moved, 0);
	assert_null(pins_get(f->pins, "late"));
	/* Full pool, pinned instance down: no place, and the pin stays for when it returns. */
	inst_set_health(find(f, pins_get(f->pins, "u0")), HEALTH_DOWN, "x");
	const char *was = pins_get(f->pins, "u0");
	char wascopy[PG_ID_MAX + 1];
	snprintf(wascopy, sizeof(wascopy), "%s", was);
	assert_null(place_logged(f, "u0", 2, &moved, log, sizeof(log)));
	assert_int_equal(moved, 0);
	assert_string_equal(pins_get(f->pins, "u0"), wascopy);
	assert_null(strstr(log, "pinned to"));
}

static void
test_unknown_and_down_not_chosen(void **state)
{
	struct fx *f = *state;
	struct inst_conf list[3] = { ic("demo-1", 2, INST_ACTIVE), ic("demo-2", 2, INST_ACTIVE),
		ic("demo-3", 2, INST_ACTIVE) };
	struct instance *in;
	int moved = -1;

	inst_set_health(find(f, "demo-1"), HEALTH_DOWN, "x");
	inst_set_health(find(f, "demo-2"), HEALTH_UNKNOWN, "x");
	for (int i = 0; i < 2; i++) {
		char user[8];
		snprintf(user, sizeof(user), "u%d", i);
		in = place_user(f->reg, f->pins, user, 1, NULL);
		assert_non_null(in);
		assert_string_equal(in->conf.id, "demo-3");
	}
	assert_null(place_user(f->reg, f->pins, "u2", 1, NULL));

	/* A pin on an instance not probed yet is kept, but the user has to wait. */
	assert_int_equal(pins_set(f->pins, "alice", "demo-2", 1), 0);
	assert_int_equal(pins_remove(f->pins, "u0"), 0);
	assert_null(place_user(f->reg, f->pins, "alice", 2, &moved));
	assert_int_equal(moved, 0);
	assert_string_equal(pins_get(f->pins, "alice"), "demo-2");

	/* No instances at all. */
	assert_int_equal(reg_apply(f->reg, INST_SRC_CONFIG, list, 0), 0);
	assert_null(place_user(f->reg, f->pins, "bob", 3, &moved));
	assert_int_equal(moved, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spread_and_stick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tie_break_deterministic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moves_when_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moves_when_maint_or_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_draining, setup, teardown),
		cmocka_unit_test_setup_teardown(test_draining_nowhere_else, setup, teardown),
		cmocka_unit_test_setup_teardown(test_place_pinned_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capacity_and_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_and_down_not_chosen, setup, teardown),
	};

	pg_log_setup(PG_LOG_INFO, PG_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
