/*
 * backends/instance.c: the registry. reg_apply() adds, updates and removes with the right hooks; the
 * config file wins over discovery for an id; inst_state() folds admin over health; an instance held
 * by inst_ref() outlives its removal (run the ASan build to see no use after free).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "backends/instance.h"
#include "core/err.h"

struct rec {
	int added, changed, changed_endpoint, removed;
	int last_endpoint;
	struct instance *last;
	char last_removed_id[PG_ID_MAX + 1];
	int removed_flag_seen;	/* in->removed when the removed hook ran */
};

static void
on_added(void *arg, struct instance *in)
{
	struct rec *r = arg;

	r->added++;
	r->last = in;
}

static void
on_changed(void *arg, struct instance *in, int endpoint)
{
	struct rec *r = arg;

	r->changed++;
	r->changed_endpoint += endpoint != 0;
	r->last_endpoint = endpoint;
	r->last = in;
}

static void
on_removed(void *arg, struct instance *in)
{
	struct rec *r = arg;

	r->removed++;
	r->last = in;
	r->removed_flag_seen = in->removed;
	strcpy(r->last_removed_id, in->conf.id);
}

static struct registry *
new_reg(struct rec *r)
{
	struct registry *reg = reg_new();
	struct reg_hooks hooks = { on_added, on_changed, on_removed, r };

	assert_non_null(reg);
	memset(r, 0, sizeof(*r));
	assert_int_equal(reg_add_hooks(reg, &hooks), 0);
	return reg;
}

static struct inst_conf
ic(const char *id, const char *address)
{
	return (struct inst_conf){ .id = (char *)id, .address = (char *)address, .ssh_port = 22,
		.http_port = 8000, .http_tls_verify = 1, .capacity = 8 };
}

static void
assert_hooks(const struct rec *r, int added, int changed, int endpoint, int removed)
{
	assert_int_equal(r->added, added);
	assert_int_equal(r->changed, changed);
	assert_int_equal(r->changed_endpoint, endpoint);
	assert_int_equal(r->removed, removed);
}

static void
test_add(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf list[2] = { ic("a", "10.0.0.1"), ic("b", "10.0.0.2") };
	struct instance *a;

	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, list, 2), 0);
	assert_hooks(&r, 2, 0, 0, 0);
	assert_int_equal(reg_count(reg), 2);
	a = reg_first(reg);
	assert_string_equal(a->conf.id, "a");
	assert_string_equal(a->next->conf.id, "b");
	assert_null(a->next->next);
	/* The registry keeps its own copy. */
	assert_true(a->conf.id != list[0].id);
	assert_string_equal(a->conf.address, "10.0.0.1");
	assert_int_equal(a->source, INST_SRC_CONFIG);
	assert_int_equal(a->health, HEALTH_UNKNOWN);
	assert_int_equal(inst_state(a), INST_S_UNKNOWN);
	assert_int_equal(a->transitions, 0);
	assert_int_equal(a->removed, 0);
	assert_ptr_equal(reg_find(reg, "b"), a->next);
	assert_null(reg_find(reg, "c"));

	/* The same list again changes nothing. */
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, list, 2), 0);
	assert_hooks(&r, 2, 0, 0, 0);
	reg_free(reg);
}

static void
test_update_not_endpoint(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf one = ic("a", "10.0.0.1");
	char k[] = "zone", v[] = "2";
	struct inst_label label = { k, v };
	struct instance *a;

	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	a = reg_find(reg, "a");
	inst_set_health(a, HEALTH_UP, "probe ok");

	one.capacity = 20;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_hooks(&r, 1, 1, 0, 0);
	assert_int_equal(r.last_endpoint, 0);
	assert_ptr_equal(r.last, a);
	assert_ptr_equal(reg_find(reg, "a"), a);
	assert_int_equal(a->conf.capacity, 20);
	/* Health survives a change that is not the endpoint. */
	assert_int_equal(a->health, HEALTH_UP);

	one.labels = &label;
	one.nlabels = 1;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_hooks(&r, 1, 2, 0, 0);
	assert_int_equal(a->conf.nlabels, 1);
	assert_string_equal(a->conf.labels[0].value, "2");
	v[0] = '3';
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_hooks(&r, 1, 3, 0, 0);
	assert_string_equal(a->conf.labels[0].value, "3");

	one.admin = INST_DRAINING;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_hooks(&r, 1, 4, 0, 0);
	assert_int_equal(inst_state(a), INST_S_DRAINING);
	assert_int_equal(a->health, HEALTH_UP);
	reg_free(reg);
}

static void
test_update_endpoint(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf one = ic("a", "10.0.0.1");
	char ca[] = "/ca.pem";
	struct instance *a;
	int n = 0;

	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	a = reg_find(reg, "a");

	/* Each endpoint field: one changed(endpoint=1), and health starts over from unknown. */
	for (int field = 0; field < 6; field++) {
		inst_set_health(a, HEALTH_UP, "probe ok");
		switch (field) {
		case 0: one.address = "10.0.0.9"; break;
		case 1: one.ssh_port = 2222; break;
		case 2: one.http_port = 8443; break;
		case 3: one.http_tls = 1; break;
		case 4: one.http_ca_file = ca; break;
		case 5: one.http_tls_verify = 0; break;
		}
		assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
		n++;
		assert_hooks(&r, 1, n, n, 0);
		assert_int_equal(r.last_endpoint, 1);
		assert_ptr_equal(reg_find(reg, "a"), a);
		assert_int_equal(a->health, HEALTH_UNKNOWN);
		assert_int_equal(inst_state(a), INST_S_UNKNOWN);
		assert_string_equal(a->reason, "endpoint changed");
	}
	assert_string_equal(a->conf.address, "10.0.0.9");
	assert_int_equal(a->conf.ssh_port, 2222);
	assert_int_equal(a->conf.http_port, 8443);
	assert_int_equal(a->conf.http_tls, 1);
	assert_string_equal(a->conf.http_ca_file, "/ca.pem");
	assert_int_equal(a->conf.http_tls_verify, 0);
	reg_free(reg);
}

static void
test_remove(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf list[3] = { ic("a", "10.0.0.1"), ic("b", "10.0.0.2"), ic("c", "10.0.0.3") };

	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, list, 3), 0);
	list[1] = list[2];
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, list, 2), 0);
	assert_hooks(&r, 3, 0, 0, 1);
	assert_string_equal(r.last_removed_id, "b");
	assert_int_equal(r.removed_flag_seen, 1);
	assert_null(reg_find(reg, "b"));
	assert_int_equal(reg_count(reg), 2);
	assert_string_equal(reg_first(reg)->conf.id, "a");
	assert_string_equal(reg_first(reg)->next->conf.id, "c");

	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, NULL, 0), 0);
	assert_hooks(&r, 3, 0, 0, 3);
	assert_int_equal(reg_count(reg), 0);
	assert_null(reg_first(reg));
	reg_free(reg);
}

/* Adding and removing in one apply: removals of the source only, additions in list order. */
static void
test_replace_set(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf first[2] = { ic("a", "10.0.0.1"), ic("b", "10.0.0.2") };
	struct inst_conf second[2] = { ic("b", "10.0.0.2"), ic("c", "10.0.0.3") };
	struct inst_conf disc = ic("d", "10.0.0.4");

	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, &disc, 1), 0);
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, first, 2), 0);
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, second, 2), 0);
	assert_hooks(&r, 4, 0, 0, 1);
	assert_null(reg_find(reg, "a"));
	assert_non_null(reg_find(reg, "b"));
	assert_non_null(reg_find(reg, "c"));
	/* The discovery instance is untouched by config applies, and listed after config ones. */
	assert_non_null(reg_find(reg, "d"));
	assert_string_equal(reg_first(reg)->conf.id, "b");
	assert_string_equal(reg_first(reg)->next->conf.id, "c");
	assert_string_equal(reg_first(reg)->next->next->conf.id, "d");
	reg_free(reg);
}

static void
test_config_wins_config_first(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf conf = ic("a", "10.0.0.1"), disc = ic("a", "10.9.9.9");
	struct instance *a;

	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &conf, 1), 0);
	a = reg_find(reg, "a");
	disc.capacity = 99;
	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, &disc, 1), 0);
	assert_hooks(&r, 1, 0, 0, 0);
	assert_int_equal(reg_count(reg), 1);
	assert_ptr_equal(reg_find(reg, "a"), a);
	assert_int_equal(a->source, INST_SRC_CONFIG);
	assert_string_equal(a->conf.address, "10.0.0.1");
	assert_int_equal(a->conf.capacity, 8);
	/* Discovery dropping the id does not remove what the config defines. */
	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, NULL, 0), 0);
	assert_hooks(&r, 1, 0, 0, 0);
	assert_ptr_equal(reg_find(reg, "a"), a);
	reg_free(reg);
}

static void
test_config_wins_discovery_first(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf conf = ic("a", "10.0.0.1"), disc = ic("a", "10.9.9.9");
	struct instance *a;

	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, &disc, 1), 0);
	a = reg_find(reg, "a");
	assert_int_equal(a->source, INST_SRC_DISCOVERY);
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &conf, 1), 0);
	/* Taken over in place: one changed (a new endpoint), no remove and re-add. */
	assert_hooks(&r, 1, 1, 1, 0);
	assert_int_equal(reg_count(reg), 1);
	assert_ptr_equal(reg_find(reg, "a"), a);
	assert_int_equal(a->source, INST_SRC_CONFIG);
	assert_string_equal(a->conf.address, "10.0.0.1");
	/* The discovery file listing it again, or no longer, changes nothing now. */
	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, &disc, 1), 0);
	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, NULL, 0), 0);
	assert_hooks(&r, 1, 1, 1, 0);
	assert_string_equal(a->conf.address, "10.0.0.1");
	assert_int_equal(a->source, INST_SRC_CONFIG);
	reg_free(reg);
}

/* The same conf from the other source still moves ownership, without an endpoint change. */
static void
test_takeover_same_conf(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf one = ic("a", "10.0.0.1");
	struct instance *a;

	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, &one, 1), 0);
	a = reg_find(reg, "a");
	inst_set_health(a, HEALTH_UP, "probe ok");
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_hooks(&r, 1, 1, 0, 0);
	assert_int_equal(a->source, INST_SRC_CONFIG);
	assert_int_equal(a->health, HEALTH_UP);
	reg_free(reg);
}

static void
test_state_fold(void **state)
{
	static const struct {
		enum inst_admin admin;
		enum inst_health health;
		enum inst_state want;
	} cases[] = {
		{ INST_ACTIVE, HEALTH_UNKNOWN, INST_S_UNKNOWN },
		{ INST_ACTIVE, HEALTH_UP, INST_S_UP },
		{ INST_ACTIVE, HEALTH_DOWN, INST_S_DOWN },
		{ INST_DRAINING, HEALTH_UNKNOWN, INST_S_DRAINING },
		{ INST_DRAINING, HEALTH_UP, INST_S_DRAINING },
		{ INST_DRAINING, HEALTH_DOWN, INST_S_DRAINING },
		{ INST_MAINT, HEALTH_UNKNOWN, INST_S_MAINT },
		{ INST_MAINT, HEALTH_UP, INST_S_MAINT },
		{ INST_MAINT, HEALTH_DOWN, INST_S_MAINT },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct instance in;

		memset(&in, 0, sizeof(in));
		in.conf.admin = cases[i].admin;
		in.health = cases[i].health;
		assert_int_equal(inst_state(&in), cases[i].want);
	}
	assert_string_equal(inst_state_name(INST_S_DRAINING), "draining");
	assert_string_equal(inst_state_name(INST_S_MAINT), "maint");
	assert_string_equal(inst_health_name(HEALTH_DOWN), "down");
	assert_string_equal(inst_source_name(INST_SRC_DISCOVERY), "discovery");
	assert_string_equal(inst_state_name((enum inst_state)42), "?");
}

static void
test_transitions(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf one = ic("a", "10.0.0.1");
	struct instance *a;

	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	a = reg_find(reg, "a");
	assert_true(a->since_ms > 0);
	assert_string_equal(a->reason, "not probed yet");

	/* A sentinel since_ms shows whether it was touched. */
	a->since_ms = 1;
	inst_set_health(a, HEALTH_UNKNOWN, "nothing");
	assert_int_equal(a->transitions, 0);
	assert_int_equal(a->since_ms, 1);
	assert_string_equal(a->reason, "not probed yet");

	inst_set_health(a, HEALTH_UP, "all checks ok");
	assert_int_equal(a->transitions, 1);
	assert_true(a->since_ms > 1);
	assert_string_equal(a->reason, "all checks ok");

	a->since_ms = 1;
	inst_set_health(a, HEALTH_UP, "still ok");
	assert_int_equal(a->transitions, 1);
	assert_int_equal(a->since_ms, 1);
	assert_string_equal(a->reason, "all checks ok");

	inst_set_health(a, HEALTH_DOWN, "tcp: connection refused");
	assert_int_equal(a->transitions, 2);
	assert_true(a->since_ms > 1);

	/* Maintenance hides health: health moves, the state (and so the counter) does not. */
	one.admin = INST_MAINT;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_int_equal(a->transitions, 3);
	assert_int_equal(inst_state(a), INST_S_MAINT);
	a->since_ms = 1;
	inst_set_health(a, HEALTH_UP, "ok");
	inst_set_health(a, HEALTH_DOWN, "bad");
	assert_int_equal(a->health, HEALTH_DOWN);
	assert_int_equal(a->transitions, 3);
	assert_int_equal(a->since_ms, 1);

	/* Only a real state change counts: draining -> maint -> draining are two. */
	one.admin = INST_DRAINING;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_int_equal(a->transitions, 4);
	assert_true(a->since_ms > 1);

	/* A capacity change is not a state change. */
	a->since_ms = 1;
	one.capacity = 3;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_int_equal(a->transitions, 4);
	assert_int_equal(a->since_ms, 1);

	/* An endpoint change while unknown stays unknown: no transition. */
	one.admin = INST_ACTIVE;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_int_equal(a->transitions, 5);	/* draining -> down */
	inst_set_health(a, HEALTH_UNKNOWN, "reset");
	assert_int_equal(a->transitions, 6);
	a->since_ms = 1;
	one.ssh_port = 2022;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_int_equal(a->transitions, 6);
	assert_int_equal(a->since_ms, 1);
	reg_free(reg);
}

static void
test_ref_outlives_removal(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf list[2] = { ic("held", "10.0.0.1"), ic("other", "10.0.0.2") };
	struct instance *held;

	list[0].labels = &(struct inst_label){ "k", "v" };
	list[0].nlabels = 1;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, list, 2), 0);
	held = reg_find(reg, "held");
	inst_ref(held);
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &list[1], 1), 0);
	assert_hooks(&r, 2, 0, 0, 1);
	assert_ptr_equal(r.last, held);
	assert_null(reg_find(reg, "held"));
	assert_int_equal(reg_count(reg), 1);

	/* Still ours: every field readable (ASan reports a use after free if it was freed). */
	assert_int_equal(held->removed, 1);
	assert_int_equal(held->refs, 1);
	assert_string_equal(held->conf.id, "held");
	assert_string_equal(held->conf.address, "10.0.0.1");
	assert_string_equal(held->conf.labels[0].value, "v");
	assert_null(held->next);
	inst_set_health(held, HEALTH_UP, "a late probe verdict");
	assert_int_equal(held->health, HEALTH_UP);
	inst_unref(held);
	reg_free(reg);
}

static void
test_ref_outlives_registry(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf one = ic("held", "10.0.0.1");
	struct instance *held;

	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, &one, 1), 0);
	held = reg_find(reg, "held");
	inst_ref(held);
	inst_ref(held);
	reg_free(reg);
	assert_int_equal(held->removed, 1);
	assert_string_equal(held->conf.id, "held");
	inst_unref(held);
	assert_string_equal(held->conf.address, "10.0.0.1");
	inst_unref(held);
	inst_unref(NULL);
}

static void
test_count_up(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf list[3] = { ic("a", "10.0.0.1"), ic("b", "10.0.0.2"), ic("c", "10.0.0.3") };
	struct inst_conf disc = ic("d", "10.0.0.4");

	list[2].admin = INST_DRAINING;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, list, 3), 0);
	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, &disc, 1), 0);
	assert_int_equal(reg_count(reg), 4);
	assert_int_equal(reg_count_up(reg), 0);
	inst_set_health(reg_find(reg, "a"), HEALTH_UP, "ok");
	assert_int_equal(reg_count_up(reg), 1);
	/* Draining is not up, whatever its health. */
	inst_set_health(reg_find(reg, "c"), HEALTH_UP, "ok");
	assert_int_equal(reg_count_up(reg), 1);
	inst_set_health(reg_find(reg, "d"), HEALTH_UP, "ok");
	assert_int_equal(reg_count_up(reg), 2);
	inst_set_health(reg_find(reg, "b"), HEALTH_DOWN, "bad");
	assert_int_equal(reg_count_up(reg), 2);
	inst_set_health(reg_find(reg, "a"), HEALTH_DOWN, "bad");
	assert_int_equal(reg_count_up(reg), 1);
	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, NULL, 0), 0);
	assert_int_equal(reg_count_up(reg), 0);
	reg_free(reg);
}


static void
test_override_survives_reload(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf one = ic("a", "10.0.0.1");
	struct instance *a;
	enum inst_admin ov;
	uint64_t gen = reg_overrides_gen(reg);

	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	a = reg_find(reg, "a");
	inst_set_health(a, HEALTH_UP, "probe ok");
	assert_int_equal(reg_set_admin(reg, "a", INST_DRAINING, "drained by an operator"), 0);
	assert_int_equal(inst_state(a), INST_S_DRAINING);
	assert_int_equal(a->conf.admin, INST_DRAINING);
	assert_int_equal(a->src_admin, INST_ACTIVE);
	assert_string_equal(a->reason, "drained by an operator");
	assert_hooks(&r, 1, 1, 0, 0);
	assert_true(reg_get_override(reg, "a", &ov));
	assert_int_equal(ov, INST_DRAINING);
	assert_true(reg_overrides_gen(reg) != gen);

	/* A reload with the same config, or one that changes something else, keeps the drain. */
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_hooks(&r, 1, 1, 0, 0);
	one.capacity = 3;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_int_equal(inst_state(a), INST_S_DRAINING);
	assert_int_equal(a->conf.capacity, 3);
	one.address = "10.0.0.9";
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_int_equal(inst_state(a), INST_S_DRAINING);

	/* The config changing this instance's own admin_state is newer than the override: it wins. */
	gen = reg_overrides_gen(reg);
	one.admin = INST_MAINT;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_int_equal(inst_state(a), INST_S_MAINT);
	assert_false(reg_get_override(reg, "a", NULL));
	assert_true(reg_overrides_gen(reg) != gen);
	reg_free(reg);
}

static void
test_override_dropped_when_source_agrees(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf one = ic("a", "10.0.0.1");
	struct instance *a;
	enum inst_admin ov;

	one.admin = INST_DRAINING;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	a = reg_find(reg, "a");
	/* Undrain an instance the config drains: an override "active" with base "draining". */
	assert_int_equal(reg_set_admin(reg, "a", INST_ACTIVE, "undrained by an operator"), 0);
	assert_int_equal(a->conf.admin, INST_ACTIVE);
	assert_true(reg_get_override(reg, "a", &ov));
	assert_int_equal(ov, INST_ACTIVE);
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &one, 1), 0);
	assert_int_equal(a->conf.admin, INST_ACTIVE);
	/* Draining again is what the config says: nothing left to override. */
	assert_int_equal(reg_set_admin(reg, "a", INST_DRAINING, "drained by an operator"), 0);
	assert_false(reg_get_override(reg, "a", NULL));
	assert_int_equal(a->conf.admin, INST_DRAINING);
	/* Setting the state in force again changes nothing and calls no hook. */
	r.changed = 0;
	assert_int_equal(reg_set_admin(reg, "a", INST_DRAINING, "again"), 0);
	assert_int_equal(r.changed, 0);
	assert_int_equal(reg_set_admin(reg, "zz", INST_MAINT, "nobody"), PG_ENOTFOUND);
	reg_free(reg);
}

static void
test_override_goes_with_instance(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf one = ic("a", "10.0.0.1");

	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, &one, 1), 0);
	assert_int_equal(reg_set_admin(reg, "a", INST_MAINT, "maint by an operator"), 0);
	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, NULL, 0), 0);
	assert_false(reg_get_override(reg, "a", NULL));
	/* A later instance with that id starts afresh. */
	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, &one, 1), 0);
	assert_int_equal(reg_find(reg, "a")->conf.admin, INST_ACTIVE);
	reg_free(reg);
}

static int
count_override(void *arg, const char *id, enum inst_admin admin, enum inst_admin base)
{
	(*(int *)arg)++;
	return 0;
}

static void
test_restore_waits_for_id(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf d = ic("d", "10.0.0.4"), e = ic("e", "10.0.0.5");
	struct instance *in;
	int n = 0;

	/* At start the overrides come back before discovery has listed anything. */
	assert_int_equal(reg_restore_override(reg, "d", INST_DRAINING, INST_ACTIVE), 0);
	assert_int_equal(reg_restore_override(reg, "e", INST_MAINT, INST_ACTIVE), 0);
	assert_int_equal(reg_restore_override(reg, "", INST_MAINT, INST_ACTIVE), PG_EINVAL);
	assert_int_equal(reg_foreach_override(reg, count_override, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, &d, 1), 0);
	in = reg_find(reg, "d");
	assert_int_equal(inst_state(in), INST_S_DRAINING);
	assert_string_equal(in->reason, "draining by an operator");
	/* e's source says draining now, not the active the override was made against: dropped. */
	e.admin = INST_DRAINING;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &e, 1), 0);
	assert_int_equal(reg_find(reg, "e")->conf.admin, INST_DRAINING);
	assert_false(reg_get_override(reg, "e", NULL));
	/* Restoring onto a listed instance applies at once. */
	assert_int_equal(reg_restore_override(reg, "d", INST_MAINT, INST_ACTIVE), 0);
	assert_int_equal(inst_state(in), INST_S_MAINT);
	reg_free(reg);
}

static void
test_api_source_precedence(void **state)
{
	struct rec r;
	struct registry *reg = new_reg(&r);
	struct inst_conf api = ic("x", "10.0.0.7"), disc = ic("x", "10.0.0.8"),
	    conf = ic("x", "10.0.0.9"), c0 = ic("c0", "10.0.0.1");
	struct instance *in;

	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &c0, 1), 0);
	assert_int_equal(reg_apply(reg, INST_SRC_API, &api, 1), 0);
	in = reg_find(reg, "x");
	assert_int_equal(in->source, INST_SRC_API);
	assert_string_equal(inst_source_name(in->source), "api");
	/* Discovery comes after the admin API. */
	assert_int_equal(reg_apply(reg, INST_SRC_DISCOVERY, &disc, 1), 0);
	assert_ptr_equal(reg_find(reg, "x"), in);
	assert_string_equal(in->conf.address, "10.0.0.7");
	/* The config comes first: it takes the id over. */
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, (struct inst_conf[]){ c0, conf }, 2), 0);
	assert_int_equal(in->source, INST_SRC_CONFIG);
	assert_string_equal(in->conf.address, "10.0.0.9");
	/* Config instances are listed before API ones. */
	assert_string_equal(reg_first(reg)->conf.id, "c0");
	/* Once the config lets go, applying the API's list again brings its entry back. */
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, &c0, 1), 0);
	assert_null(reg_find(reg, "x"));
	assert_int_equal(reg_apply(reg, INST_SRC_API, &api, 1), 0);
	assert_int_equal(reg_find(reg, "x")->source, INST_SRC_API);
	reg_free(reg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_update_not_endpoint),
		cmocka_unit_test(test_update_endpoint),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_replace_set),
		cmocka_unit_test(test_config_wins_config_first),
		cmocka_unit_test(test_config_wins_discovery_first),
		cmocka_unit_test(test_takeover_same_conf),
		cmocka_unit_test(test_state_fold),
		cmocka_unit_test(test_transitions),
		cmocka_unit_test(test_ref_outlives_removal),
		cmocka_unit_test(test_ref_outlives_registry),
		cmocka_unit_test(test_count_up),
		cmocka_unit_test(test_override_survives_reload),
		cmocka_unit_test(test_override_dropped_when_source_agrees),
		cmocka_unit_test(test_override_goes_with_instance),
		cmocka_unit_test(test_restore_waits_for_id),
		cmocka_unit_test(test_api_source_precedence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
