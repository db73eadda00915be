/*
 * proxy/http/route.c: where an HTTPS request goes. A request naming its user follows the pin (and
 * a known user's pin wins over the browser's cookie); a verified cookie keeps an anonymous browser
 * on its instance; a forged or expired cookie is ignored and never followed; new browsers go to
 * the least-loaded up instance; the Set-Cookie line appears exactly when the cookie must change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/instance.h"
#include "backends/pins.h"
#include "core/log.h"
#include "proxy/http/affinity.h"
#include "proxy/http/route.h"

#define NOW_MS 1700000000000LL

struct fx {
	struct registry *reg;
	struct pin_table *pins;
	struct affinity_key *key;
	struct router *rt;
};

static int
setup(void **state)
{
	static const uint8_t secret[32] = "route-test-secret-route-test-sec";
	struct inst_conf ic[2];
	struct fx *f = calloc(1, sizeof(*f));

	pg_log_setup(PG_LOG_ERR, PG_LOG_TEXT);
	memset(ic, 0, sizeof(ic));
	ic[0] = (struct inst_conf){ .id = "a", .address = "127.0.0.2", .ssh_port = 22,
		.http_port = 8000, .http_tls_verify = 1, .capacity = 8 };
	ic[1] = ic[0];
	ic[1].id = "b";
	ic[1].address = "127.0.0.3";
	f->reg = reg_new();
	f->pins = pins_new();
	assert_int_equal(reg_apply(f->reg, INST_SRC_CONFIG, ic, 2), 0);
	inst_set_health(reg_find(f->reg, "a"), HEALTH_UP, "test");
	inst_set_health(reg_find(f->reg, "b"), HEALTH_UP, "test");
	assert_int_equal(affinity_key_new(secret, 32, &f->key), 0);
	f->rt = route_new(f->reg, f->pins, f->key, "poolgate_affinity", 3600);
	assert_non_null(f->rt);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	route_free(f->rt);
	affinity_key_free(f->key);
	pins_free(f->pins);
	reg_free(f->reg);
	free(f);
	return 0;
}

static struct route_result
pick_at(struct fx *f, const char *url, const char *cookie, const char *form, int64_t now_ms)
{
	struct route_req rq;
	struct route_result res;

	memset(&rq, 0, sizeof(rq));
	rq.url = (struct pg_slice){ (const uint8_t *)url, strlen(url) };
	if (cookie != NULL)
		rq.cookie = (struct pg_slice){ (const uint8_t *)cookie, strlen(cookie) };
	if (form != NULL)
		rq.form = (struct pg_slice){ (const uint8_t *)form, strlen(form) };
	rq.now_ms = now_ms;
	assert_int_equal(route_pick(f->rt, &rq, &res), 0);
	return res;
}

static struct route_result
pick(struct fx *f, const char *url, const char *cookie, const char *form)
{
	return pick_at(f, url, cookie, form, NOW_MS);
}

/* "poolgate_affinity=<value for id>", valid for an hour (or expired when expired=1). */
static void
cookie_for(struct fx *f, const char *id, int expired, char *out, size_t n)
{
	char v[AFFINITY_VALUE_MAX + 1];

	assert_int_equal(affinity_mint(f->key, id, NOW_MS / 1000 + (expired ? -10 : 3600), v), 0);
	snprintf(out, n, "other=1; poolgate_affinity=%s", v);
}

static const char *
id_of(struct route_result *r)
{
	return r->in != NULL ? r->in->conf.id : "(none)";
}

static void
done(struct route_result *r)
{
	inst_unref(r->in);
}

static void
test_user_is_pinned_and_stays(void **state)
{
	struct fx *f = *state;
	struct route_result r1 = pick(f, "/hub/login", NULL, "username=alice&password=x"), r2;

	/* A login nobody confirmed yet: routed where she would go, pinned only once accepted. */
	assert_string_equal(r1.user, "alice");
	assert_non_null(r1.in);
	assert_int_equal(r1.login_unconfirmed, 1);
	assert_null(pins_get(f->pins, "alice"));
	route_login_accepted(f->rt, "alice", r1.in, NOW_MS);
	assert_string_equal(pins_get(f->pins, "alice"), id_of(&r1));
	assert_non_null(strstr(r1.set_cookie, "Set-Cookie: poolgate_affinity=v1."));
	for (int i = 0; i < 20; i++) {
		r2 = pick(f, "/user/alice/tree", NULL, NULL);
		assert_string_equal(id_of(&r2), id_of(&r1));
		assert_int_equal(r2.login_unconfirmed, 0);
		done(&r2);
	}
	done(&r1);
}

static void
test_unproven_names_make_no_pins(void **state)
{
	struct fx *f = *state;
	char path[64];

	/* Requests naming users nobody logged in as: routed, never pinned (no pool to fill). */
	for (int i = 0; i < 50; i++) {
		struct route_result r;

		snprintf(path, sizeof(path), "/hub/api/users/made-up-%d", i);
		r = pick(f, path, NULL, NULL);
		assert_non_null(r.in);
		assert_int_equal(r.login_unconfirmed, 0);
		done(&r);
		r = pick(f, "/hub/login", NULL, "username=nobody&password=wrong");
		assert_non_null(r.in);
		done(&r);	/* JupyterHub refused it: route_login_accepted() is never called */
	}
	assert_int_equal(pins_size(f->pins), 0);
}

static void
test_pin_wins_over_cookie_and_cookie_is_rewritten(void **state)
{
	struct fx *f = *state;
	char cookie[256];
	struct route_result r;

	assert_int_equal(pins_set(f->pins, "alice", "b", NOW_MS), 0);
	cookie_for(f, "a", 0, cookie, sizeof(cookie));
	r = pick(f, "/hub/login", cookie, "username=alice&password=x");
	assert_string_equal(r.user, "alice");
	assert_string_equal(id_of(&r), "b");
	assert_non_null(strstr(r.set_cookie, "poolgate_affinity=v1.b."));
	done(&r);
}

static void
test_valid_cookie_keeps_anonymous_browser(void **state)
{
	struct fx *f = *state;
	char cookie[256];
	struct route_result r;

	/* Load a so that fresh placement would pick b: the cookie must still win. */
	assert_int_equal(pins_set(f->pins, "u1", "a", NOW_MS), 0);
	cookie_for(f, "a", 0, cookie, sizeof(cookie));
	r = pick(f, "/hub/static/js/x.js", cookie, NULL);
	assert_string_equal(r.user, "");
	assert_string_equal(id_of(&r), "a");
	assert_string_equal(r.set_cookie, "");	/* nothing to change */
	done(&r);
}

static void
test_forged_or_expired_cookie_is_never_followed(void **state)
{
	struct fx *f = *state;
	char cookie[256], *mac;
	struct route_result r;

	/* Fresh placement picks a (fewest users); the attacker wants b. */
	assert_int_equal(pins_set(f->pins, "u1", "b", NOW_MS), 0);
	cookie_for(f, "b", 0, cookie, sizeof(cookie));
	mac = strrchr(cookie, '.') + 1;
	mac[0] = mac[0] == 'A' ? 'B' : 'A';
	r = pick(f, "/hub/", cookie, NULL);
	assert_string_equal(id_of(&r), "a");
	assert_non_null(strstr(r.set_cookie, "poolgate_affinity=v1.a."));
	done(&r);

	cookie_for(f, "b", 1, cookie, sizeof(cookie));
	r = pick(f, "/hub/", cookie, NULL);
	assert_string_equal(id_of(&r), "a");
	done(&r);

	r = pick(f, "/hub/", "poolgate_affinity=v1.b.99999999999.AAAA", NULL);
	assert_string_equal(id_of(&r), "a");
	done(&r);
}

static void
test_dead_instance_repins_user(void **state)
{
	struct fx *f = *state;
	struct route_result r;

	assert_int_equal(pins_set(f->pins, "alice", "a", NOW_MS), 0);
	inst_set_health(reg_find(f->reg, "a"), HEALTH_DOWN, "test");
	r = pick(f, "/user/alice/api/status", NULL, NULL);
	assert_string_equal(id_of(&r), "b");
	assert_string_equal(pins_get(f->pins, "alice"), "b");
	done(&r);
}

static void
test_no_instance_up(void **state)
{
	struct fx *f = *state;
	struct route_result r;

	inst_set_health(reg_find(f->reg, "a"), HEALTH_DOWN, "test");
	inst_set_health(reg_find(f->reg, "b"), HEALTH_DOWN, "test");
	r = pick(f, "/hub/", NULL, NULL);
	assert_null(r.in);
	assert_false(r.pool_full);
	r = pick(f, "/user/carol/", NULL, NULL);
	assert_null(r.in);
	assert_false(r.pool_full);
}

/* Every instance up at capacity: no place for new users or new browsers, and it says "full". */
static void
test_pool_full(void **state)
{
	struct fx *f = *state;
	struct route_result r;
	char user[16];

	for (int i = 0; i < 16; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		assert_int_equal(pins_set(f->pins, user, i < 8 ? "a" : "b", NOW_MS), 0);
	}
	r = pick(f, "/user/carol/", NULL, NULL);
	assert_null(r.in);
	assert_true(r.pool_full);
	assert_null(pins_get(f->pins, "carol"));
	r = pick(f, "/hub/login", NULL, NULL);
	assert_null(r.in);
	assert_true(r.pool_full);
	/* Users already pinned still get in. */
	r = pick(f, "/user/u3/", NULL, NULL);
	assert_string_equal(id_of(&r), "a");
	done(&r);
}

/* Checks that a Set-Cookie line carries cookie name, valid at now_s and naming want_id. */
static void
line_names(struct fx *f, const char *line, const char *name, int64_t now_s, const char *want_id)
{
	char prefix[128], id[PG_ID_MAX + 1];
	const char *v, *end;

	snprintf(prefix, sizeof(prefix), "Set-Cookie: %s=", name);
	assert_true(strncmp(line, prefix, strlen(prefix)) == 0);
	v = line + strlen(prefix);
	assert_non_null(end = strchr(v, ';'));
	assert_int_equal(affinity_verify(f->key, (struct pg_slice){ (const uint8_t *)v,
	    (size_t)(end - v) }, now_s, id), 0);
	assert_string_equal(id, want_id);
}

static void
test_remembered_cookie_line_never_goes_stale(void **state)
{
	struct fx *f = *state;
	struct route_result r1, r2, r3, r4;
	char forb[256];

	/*
	 * The remembered line (route.c's set_cookie_line) must never outlive what it names. Reuse
	 * itself is invisible here: an HMAC over the same instance and expiry gives the same line.
	 * Two new browsers in the same second: the same line, and it verifies.
	 */
	r1 = pick_at(f, "/hub/", NULL, NULL, NOW_MS);
	r2 = pick_at(f, "/hub/", NULL, NULL, NOW_MS + 999);
	assert_string_not_equal(r1.set_cookie, "");
	assert_string_equal(r1.set_cookie, r2.set_cookie);
	line_names(f, r1.set_cookie, "poolgate_affinity", NOW_MS / 1000, id_of(&r1));
	/* The next second: a later expiry, so a new line. */
	r3 = pick_at(f, "/hub/", NULL, NULL, NOW_MS + 1000);
	assert_string_not_equal(r1.set_cookie, r3.set_cookie);
	line_names(f, r3.set_cookie, "poolgate_affinity", NOW_MS / 1000 + 1, id_of(&r3));
	/* Another instance in that same second (a cookie for b, b gone): its own line. */
	inst_set_health(reg_find(f->reg, id_of(&r3)), HEALTH_DOWN, "test");
	cookie_for(f, id_of(&r3), 0, forb, sizeof(forb));
	r4 = pick_at(f, "/hub/", forb, NULL, NOW_MS + 1000);
	assert_string_not_equal(id_of(&r4), id_of(&r3));
	line_names(f, r4.set_cookie, "poolgate_affinity", NOW_MS / 1000 + 1, id_of(&r4));
	done(&r4);
	/* A reload renames the cookie: the remembered line is not reused. */
	inst_set_health(reg_find(f->reg, id_of(&r3)), HEALTH_UP, "test");
	route_set_cookie(f->rt, "renamed", 3600);
	r4 = pick_at(f, "/hub/", NULL, NULL, NOW_MS + 1000);
	line_names(f, r4.set_cookie, "renamed", NOW_MS / 1000 + 1, id_of(&r4));
	done(&r1);
	done(&r2);
	done(&r3);
	done(&r4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_user_is_pinned_and_stays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unproven_names_make_no_pins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_wins_over_cookie_and_cookie_is_rewritten,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_valid_cookie_keeps_anonymous_browser, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_forged_or_expired_cookie_is_never_followed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_instance_repins_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_instance_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remembered_cookie_line_never_goes_stale, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
