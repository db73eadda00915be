/*
 * Routing for the HTTPS front door (DESIGN.md, HTTPS: affinity).
 *
 *   1. A request that names a user poolgate knows (she has a pin: /user/<name>/,
 *      /hub/spawn/<name>, /hub/api/users/<name>, the login form) goes where she is pinned;
 *      place_user() re-pins her if her instance is gone. A known user's pin wins over the
 *      browser's cookie, so a browser logs in where that user's sessions already are.
 *      Names nobody has proven make no pins: a login form for a new user goes where
 *      place_peek() would put her and her pin is recorded only when JupyterHub accepts the
 *      login (route_login_accepted()); a URL naming an unknown user is routed as in 2 and 3.
 *      Otherwise anyone could fill the pool up to capacity with requests for made-up names.
 *   2. Otherwise a valid affinity cookie (MAC checked first, never followed when forged or
 *      expired) names the instance, if it can still serve.
 *   3. Otherwise the browser is anonymous and new: the instance a new user would get
 *      (place_anonymous(): the same placement score), without a pin.
 *
 * The response carries a fresh cookie whenever the browser's is missing, invalid or names another
 * instance. Requests that name a user are her activity (place_user() refreshes her pin); a
 * websocket that names her is her live session while it is open (route_live_begin/end).
 */
#include "proxy/http/route.h"
#include "backends/pins.h"
#include "backends/placement.h"
#include "core/err.h"
#include "core/log.h"
#include "proxy/http/affinity.h"
#include "proxy/http/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct router {
	struct registry *reg;
	struct pin_table *pins;
	struct affinity_key *key;
	char cookie_name[64];
	uint32_t ttl_s;
	/*
	 * The last Set-Cookie line made, with the instance and expiry second it names: browsers
	 * given a cookie for the same instance within the same second get the same line, so the
	 * HMAC runs once a second per instance, not once a request.
	 */
	char last_id[PG_ID_MAX + 1];
	int64_t last_expiry_s;
	char last_line[sizeof(((struct route_result *)0)->set_cookie)];
};

struct router *
route_new(struct registry *reg, struct pin_table *pins, struct affinity_key *key,
    const char *cookie_name, uint32_t ttl_s)
{
	struct router *rt = calloc(1, sizeof(*rt));

	if (rt == NULL)
		return NULL;
	rt->reg = reg;
	rt->pins = pins;
	rt->key = key;
	route_set_cookie(rt, cookie_name, ttl_s);
	return rt;
}

void
route_set_cookie(struct router *rt, const char *cookie_name, uint32_t ttl_s)
{
	snprintf(rt->cookie_name, sizeof(rt->cookie_name), "%s", cookie_name);
	rt->ttl_s = ttl_s;
	rt->last_id[0] = '\0';
}

void
route_free(struct router *rt)
{
	free(rt);
}

/* Whether in may serve a browser that already has a session there. */
static int
can_serve(const struct instance *in)
{
	enum inst_state s = inst_state(in);

	return s == INST_S_UP || (s == INST_S_DRAINING && in->health == HEALTH_UP);
}

/* The instance id of the first of our cookies that verifies, into id; 0 when there is none. */
static int
cookie_instance(struct router *rt, struct pg_slice header, int64_t now_s, char id[PG_ID_MAX + 1])
{
	struct pg_slice value;

	if (header.p == NULL)
		return 0;
	while (affinity_cookie_next(&header, rt->cookie_name, &value) == 1) {
		if (affinity_verify(rt->key, value, now_s, id) == 0)
			return 1;
	}
	return 0;
}

/* Fills line with the Set-Cookie line naming id until expiry_s, or "" when none can be made. */
static void
set_cookie_line(struct router *rt, const char *id, int64_t expiry_s,
    char line[sizeof(((struct route_result *)0)->set_cookie)])
{
	char value[AFFINITY_VALUE_MAX + 1];
	struct pg_buf sc;

	if (rt->last_id[0] != '\0' && rt->last_expiry_s == expiry_s && strcmp(rt->last_id, id) == 0) {
		memcpy(line, rt->last_line, sizeof(rt->last_line));
		return;
	}
	line[0] = '\0';
	if (affinity_mint(rt->key, id, expiry_s, value) != 0)
		return;
	pg_buf_init(&sc, sizeof(rt->last_line) - 1);
	if (pg_buf_append_str(&sc, "Set-Cookie: ") == 0 &&
	    affinity_set_cookie(&sc, rt->cookie_name, value, rt->ttl_s) == 0 &&
	    pg_buf_append_str(&sc, "\r\n") == 0) {
		memcpy(line, sc.p, sc.len);
		line[sc.len] = '\0';
		if (strlen(id) < sizeof(rt->last_id)) {
			memcpy(rt->last_line, line, sizeof(rt->last_line));
			strcpy(rt->last_id, id);
			rt->last_expiry_s = expiry_s;
		}
	}
	pg_buf_free(&sc);
}

int
route_pick(struct router *rt, const struct route_req *req, struct route_result *res)
{
	char cid[PG_ID_MAX + 1];
	int64_t now_s = req->now_ms / 1000;
	int have_cookie, moved = 0, r;
	struct instance *in = NULL;

	memset(res, 0, sizeof(*res));
	r = identity_from_path(req->url, res->user);
	if (r != 1 && req->form.p != NULL)
		r = identity_from_form(req->form, res->user);
	if (r != 1)
		res->user[0] = '\0';
	have_cookie = cookie_instance(rt, req->cookie, now_s, cid);

	if (res->user[0] != '\0' && pins_get(rt->pins, res->user) != NULL) {
		in = place_user(rt->reg, rt->pins, res->user, req->now_ms, &moved);
	} else if (res->user[0] != '\0' && req->form.p != NULL) {
		in = place_peek(rt->reg, rt->pins, res->user, req->now_ms);
		res->login_unconfirmed = in != NULL;
	} else if (have_cookie && (in = reg_find(rt->reg, cid)) != NULL && can_serve(in)) {
		/* keep the browser where its session is */
	} else {
		in = place_anonymous(rt->reg, rt->pins, req->now_ms);
	}
	if (in == NULL) {
		res->pool_full = place_verdict(rt->reg, rt->pins, res->user, req->now_ms) ==
		    PLACE_FULL;
		return 0;
	}
	inst_ref(in);
	res->in = in;
	if (have_cookie && strcmp(cid, in->conf.id) == 0)
		return 0;
	/* A cookie that is missing, forged, expired or names another instance is replaced. */
	set_cookie_line(rt, in->conf.id, now_s + rt->ttl_s, res->set_cookie);
	return 0;
}

void
route_login_accepted(struct router *rt, const char *user, const struct instance *in,
    int64_t now_ms)
{
	if (user[0] != '\0')
		(void)place_record(rt->reg, rt->pins, user, in, now_ms, "JupyterHub accepted the login");
}

int
route_live_begin(struct router *rt, const char *user, const struct instance *in)
{
	return user[0] != '\0' && pins_live_begin(rt->pins, user, in->conf.id) == 0;
}

void
route_live_end(struct router *rt, const char *user, const struct instance *in, int64_t now_ms)
{
	pins_live_end(rt->pins, user, in->conf.id, now_ms);
}
