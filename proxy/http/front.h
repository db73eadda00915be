/*
 * The HTTPS front door: TLS listeners that reverse-proxy HTTP/1.1 (and websockets) to each user's
 * instance, and plain-http listeners that redirect to https.
 */
#ifndef PG_PROXY_HTTP_FRONT_H
#define PG_PROXY_HTTP_FRONT_H

#include <stdint.h>
#include <uv.h>

#include "backends/instance.h"
#include "core/buf.h"
#include "core/config.h"

struct router;
struct http_front;

struct front_stats {
	uint64_t conns_total, conns_rejected, tls_failures;
	uint64_t requests[6];		/* by status class sent to clients, 1..5 */
	uint64_t bad_requests;		/* closed for malformed input or a limit */
	uint64_t upstream_errors;	/* 502 and 504 answered */
	uint64_t redirects;
	uint64_t websockets_total;
	uint64_t conns_open, websockets_open;
};

/*
 * Binds the https and http listeners of cfg and starts serving. rt decides where requests go.
 * On failure returns a negative code with a message naming the address or file in err, and
 * binds nothing.
 */
int front_start(uv_loop_t *loop, const struct pg_config *cfg, struct registry *reg,
    struct router *rt, struct http_front **out, char *err, size_t errlen);

/*
 * Takes a reloaded config: certificate files are read again (new handshakes see them; open
 * connections keep theirs) and limits change. A certificate that fails to load keeps the old set
 * and returns the error.
 */
int front_reload(struct http_front *f, const struct pg_config *cfg, char *err, size_t errlen);

/* An instance was removed or its endpoint changed: forget pooled connections to it. */
void front_forget_instance(struct http_front *f, const struct instance *in);

const struct front_stats *front_get_stats(const struct http_front *f);

/* Appends the front door's Prometheus families to out (an ops_env.extra_metrics). 0 or error. */
int front_render_metrics(void *front, struct pg_buf *out);

/*
 * Shutdown's first step: closes the listeners (new connections are refused) and the connections
 * that sit between requests; exchanges in flight and websockets go on, each connection closing
 * once its exchange is done. Returns how many connections are still open. f may be NULL (0).
 */
size_t front_drain(struct http_front *f);

/* How many client connections are open and not closing. f may be NULL (0). */
size_t front_live(const struct http_front *f);

/* Stops listening and closes every connection; memory goes with the last close callback. */
void front_stop(struct http_front *f);

#endif
