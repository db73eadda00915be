/*
 * The ops endpoint on the admin listener: GET /healthz, /readyz, /status (JSON), /metrics
 * (Prometheus text) and / (the dashboard, health/dashboard.h), open to whoever reaches the
 * listener; and the admin API under /admin/ (health/admin.h), behind a bearer token. Requests are
 * parsed with llhttp, strictly (no lenient flags); a request that does not parse gets 400 and its
 * connection is closed with a log line; other clients carry on.
 */
#ifndef PG_HEALTH_OPS_H
#define PG_HEALTH_OPS_H

#include <stdint.h>
#include <uv.h>

#include "backends/discovery.h"
#include "backends/instance.h"
#include "core/buf.h"
#include "core/config.h"
#include "health/probe.h"

struct ops_counters {
	uint64_t reloads_ok, reloads_failed;
	uint64_t requests[6];		/* by status class: index 1..5 = 1xx..5xx */
	uint64_t bad_requests;		/* closed for a parse error or a limit */
	uint64_t rejected_conns;	/* over admin.max_connections */
	uint64_t conns_total;
};

/* Config reloads as /status reports them; the app keeps it current. */
struct ops_reload {
	int in_progress;
	uint64_t done;			/* reloads finished (either way) since start */
	int64_t last_ms;		/* wall clock of the last one; 0: none yet */
	int last_ok;
	char last_error[512];		/* why the last one was refused; "" when it was not */
};

/*
 * What the endpoint reports on and acts on. Owned by main, which keeps the pointers current (the
 * discovery watcher is replaced when its file changes on reload). discovery, admin and astate may
 * be NULL.
 */
struct pin_table;
struct admin;
struct astate;

struct ops_env {
	struct registry *reg;
	struct pin_table *pins;		/* may be NULL: no user lists */
	struct prober *prober;
	struct discovery *discovery;
	struct admin *admin;		/* token and counters of the admin API; NULL: no API */
	struct astate *astate;		/* the operator's layer on disk; NULL: no add/remove */
	/* Starts a config reload, the same as SIGHUP. Returns 0 or PG_EINVAL (no config file). */
	int (*start_reload)(void *arg);
	void *reload_arg;
	struct ops_reload reload;
	struct ops_counters counters;
	int64_t started_ms;
	uint32_t health_interval_ms;
	/* Families that subsystems above health/ (the front doors) append to /metrics; may be NULL. */
	int (*extra_metrics)(void *arg, struct pg_buf *out);
	void *extra_arg;
};

/*
 * One instance as /status lists it (also in the admin API's answers). Returns a new cJSON object
 * (the caller deletes it) or NULL when out of memory.
 */
struct cJSON;
struct cJSON *ops_instance_json(const struct ops_env *env, const struct instance *in);

/* Renders GET /status into out. Returns 0 or PG_ENOMEM / PG_ETOOBIG. */
int ops_render_status(const struct ops_env *env, struct pg_buf *out);
/* Renders GET /metrics (Prometheus text exposition format 0.0.4) into out. */
int ops_render_metrics(const struct ops_env *env, struct pg_buf *out);

struct ops_server;

/*
 * Binds every address in cfg->listen_admin and starts serving. On failure returns a negative code,
 * writes a message naming the address into err, and binds nothing.
 */
int ops_start(uv_loop_t *loop, struct ops_env *env, const struct pg_config *cfg,
    struct ops_server **out, char *err, size_t errlen);

/* Applies admin.max_connections and admin.request_timeout_ms from a reloaded config. */
void ops_set_limits(struct ops_server *s, uint32_t max_connections, uint32_t timeout_ms);

/* Closes the listeners and every connection; memory goes with the last close callback. */
void ops_stop(struct ops_server *s);

#endif
