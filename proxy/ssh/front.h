/*
 * The SSH front door: listeners on listen.ssh, one session per user connection (session.c), the
 * pool host keys, the pool user CA, and the policy callbacks (authorized_keys, instances' host
 * keys) the sessions use.
 */
#ifndef PG_PROXY_SSH_FRONT_H
#define PG_PROXY_SSH_FRONT_H

#include <uv.h>

#include "backends/instance.h"
#include "backends/pins.h"
#include "certs/hostpolicy.h"
#include "core/buf.h"
#include "core/config.h"

struct ssh_front;

struct ssh_front_stats {
	uint64_t conns_total;		/* accepted */
	uint64_t conns_rejected;	/* over ssh.max_connections */
	uint64_t auth_failures;		/* failed userauth attempts (wrong key, bad signature) */
	uint64_t sessions_total;	/* pipes opened: user and instance both authenticated */
	uint64_t upstream_errors;	/* instance unreachable, silent, refused, host key refused */
};

/*
 * Loads (or makes, in state_dir) the host keys and the user CA, binds the listeners of cfg and
 * starts serving; users are placed with place_user() on pins (shared with the HTTPS front door);
 * instances' host keys are checked with hosts (main configures it; it must outlive the front
 * door). On failure returns a negative code with a message naming the address or file in err, and
 * binds nothing.
 */
int ssh_front_start(uv_loop_t *loop, const struct pg_config *cfg, struct registry *reg,
    struct pin_table *pins, struct hostpolicy *hosts, struct ssh_front **out, char *err,
    size_t errlen);

/* Takes a reloaded config: limits, authorized_keys pattern, trusted user CAs. Keys stay. */
int ssh_front_reload(struct ssh_front *f, const struct pg_config *cfg, char *err, size_t errlen);

/* Appends the SSH front door's Prometheus families to out. 0 or error. */
int ssh_front_render_metrics(const struct ssh_front *f, struct pg_buf *out);

/*
 * Shutdown's first step: closes the listeners (new connections are refused); sessions go on.
 * Returns how many sessions are open. f may be NULL (0).
 */
size_t ssh_front_drain(struct ssh_front *f);

/* How many sessions are open (closing ones included until they are gone). f may be NULL (0). */
size_t ssh_front_live(const struct ssh_front *f);

/* Stops listening and disconnects every session ("poolgate is shutting down"); memory goes with
 * the last close callback. */
void ssh_front_stop(struct ssh_front *f);

#endif
