/*
 * The ops endpoint on the admin listener: GET /healthz, /readyz, /status (JSON), /metrics
 * (Prometheus text). Requests are parsed with llhttp, strictly (no lenient flags); a request that
 * does not parse gets 400 and its connection is closed with a log line; other clients carry on.
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

/*
 * What the endpoint reports on. Owned by main, which keeps the pointers current (the discovery
 * watcher is replaced when its file changes on reload). discovery may be NULL.
 */
struct pin_table;

struct ops_env {
	struct registry *reg;
	struct pin_table *pins;		/* may be NULL: no user lists */
	struct prober *prober;
	struct discovery *discovery;
	struct ops_counters counters;
	int64_t started_ms;
	uint32_t health_interval_ms;
	/* Families that subsystems above health/ (the front doors) append to /metrics; may be NULL. */
	int (*extra_metrics)(void *arg, struct pg_buf *out);
	void *extra_arg;
};

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
