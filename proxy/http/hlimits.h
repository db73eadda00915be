/*
 * The HTTPS front door's connection limits (http.limits) and PROXY protocol policies
 * (proxy_protocol.https, proxy_protocol.http); front.c applies them per connection:
 *
 *	accept ─► [PROXY header] ─► admission (https only) ─► TLS handshake ─► requests
 *	                            └ handshakes not yet done, per source and in total (max_startups)
 *
 * A browser opens several connections and many users may share one NAT address, so only
 * connections still in their TLS handshake count; once it is done a connection is the
 * existing http.max_connections' business.
 *
 * (Not "limits.h": meson puts this folder on the include path, and the name would shadow the
 * system's <limits.h> for every file here.)
 */
#ifndef PG_PROXY_HTTP_HLIMITS_H
#define PG_PROXY_HTTP_HLIMITS_H

#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/ppconn.h"
#include "core/ratelimit.h"

struct hlim_front {
	struct rl_table *table;
	struct conn_limits_conf conf;
	struct ppc_policy pp_https, pp_http;
};

/* Start and reload. 0 or PG_ENOMEM. */
int hlim_configure(struct hlim_front *h, const struct pg_config *cfg);
void hlim_free(struct hlim_front *h);

/*
 * A TLS connection from src may start its handshake: NULL (counted: hlim_release() when the
 * handshake is done or the connection closes), or a static reason it is refused (logged).
 */
const char *hlim_admit(struct hlim_front *h, const struct sockaddr *src, uint64_t now,
    const char *log_prefix);
void hlim_release(struct hlim_front *h, const struct sockaddr *src, uint64_t now);

/* Appends the families of limits and PROXY headers to out. */
int hlim_render_metrics(const struct hlim_front *h, uint64_t now, struct pg_buf *out);

#endif
