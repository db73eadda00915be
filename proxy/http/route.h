/*
 * Which instance a request goes to, and what affinity cookie the response carries. Inputs are the
 * request target, the Cookie header and (for the login POST) the small form body; the answer uses
 * the pin table, the registry and the affinity cookie (see DESIGN.md, HTTPS: affinity).
 */
#ifndef PG_PROXY_HTTP_ROUTE_H
#define PG_PROXY_HTTP_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "backends/instance.h"
#include "core/buf.h"

struct router;

struct pin_table;
struct affinity_key;

/*
 * A router over reg, pins and the cookie key (all must outlive it; it owns none of them).
 * NULL when out of memory.
 */
struct router *route_new(struct registry *reg, struct pin_table *pins, struct affinity_key *key,
    const char *cookie_name, uint32_t ttl_s);
/* A reload may rename the cookie or change its lifetime. */
void route_set_cookie(struct router *rt, const char *cookie_name, uint32_t ttl_s);
void route_free(struct router *rt);	/* accepts NULL */

struct route_result {
	struct instance *in;		/* a reference for the caller; NULL: no instance can serve */
	char set_cookie[512];		/* a whole "Set-Cookie: ...\r\n" line, or "" */
	char user[256];			/* the user the request was attributed to, or "" */
	int pool_full;			/* in == NULL because every instance up is full */
	/*
	 * A login form for a user poolgate does not know yet: routed where she would be placed, but
	 * pinned only when JupyterHub accepts the login (route_login_accepted()).
	 */
	int login_unconfirmed;
};

struct route_req {
	struct pg_slice url;
	struct pg_slice cookie;		/* Cookie header value; p == NULL when absent */
	struct pg_slice form;		/* login form body; p == NULL when not a login POST */
	int64_t now_ms;
};

/* Returns 0 and fills *res (res->in may be NULL: answer 503). */
int route_pick(struct router *rt, const struct route_req *req, struct route_result *res);

/*
 * JupyterHub accepted the unconfirmed login of user on in (its answer to the login form was a
 * redirect that set a cookie): records her pin there, unless one was made meanwhile.
 */
void route_login_accepted(struct router *rt, const char *user, const struct instance *in,
    int64_t now_ms);

/*
 * A websocket of user (route_result.user) to in opened: it counts as her live session until
 * route_live_end() (backends/pins.h: pins_live_begin). Returns 1 when counted (then call
 * route_live_end() exactly once with the same user and in), 0 when not (no user, no memory).
 */
int route_live_begin(struct router *rt, const char *user, const struct instance *in);
void route_live_end(struct router *rt, const char *user, const struct instance *in, int64_t now_ms);

#endif
