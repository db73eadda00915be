/*
 * Connections from the HTTPS front door to instances' JupyterHub: a byte pipe per connection
 * (TCP, optionally TLS as the instance is configured), and a small pool of idle keep-alive
 * connections per instance for reuse.
 *
 * The owner (a client connection of front.c) writes plaintext, gets plaintext and events back
 * through struct uconn_owner. Writes made before the connection is open are held (bounded by the
 * caller's flow control) and sent once it is.
 */
#ifndef PG_PROXY_HTTP_UPSTREAM_H
#define PG_PROXY_HTTP_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "backends/instance.h"

struct uconn;

enum uconn_event {
	UC_OPEN,	/* connected (and TLS done): held writes are on their way */
	UC_DRAINED,	/* the socket's write queue went below the low-water mark */
	UC_EOF,		/* the instance closed its side */
	UC_ERROR,	/* connect refused, TLS failure, reset...: see uconn_error() */
	UC_TIMEOUT,	/* connect (or TLS handshake) took longer than the connect timeout */
};

struct uconn_owner {
	void (*data)(void *arg, const uint8_t *p, size_t len);
	void (*event)(void *arg, enum uconn_event ev);
	void *arg;
};

struct upool;

/* idle_ms: how long an unused connection is kept (keep it below the instance's own keep-alive). */
struct upool *upool_new(uv_loop_t *loop, uint32_t connect_timeout_ms, uint32_t idle_ms);
/* Closes every idle connection; the pool goes when the last of them has closed. */
void upool_free(struct upool *p);
/* Drops idle connections to in (it was removed or its endpoint changed). */
void upool_forget(struct upool *p, const struct instance *in);
void upool_set_connect_timeout(struct upool *p, uint32_t ms);

/*
 * An idle connection to in, or a new one being opened. *reused says which (a reused connection may
 * turn out closed by the instance; the owner may retry an idempotent request once). NULL when out
 * of memory or the instance's address does not parse.
 */
struct uconn *upool_get(struct upool *p, struct instance *in, const struct uconn_owner *owner,
    int *reused);

/* Queues plaintext. 0 or a negative code (then the connection is dead: expect UC_ERROR). */
int uconn_write(struct uconn *uc, const void *p, size_t len);
size_t uconn_queued(const struct uconn *uc);	/* bytes written but not yet on the wire */
void uconn_pause(struct uconn *uc, int pause);	/* stop/start reading (flow control) */

/* Returns the connection to the pool for reuse (the exchange completed and both sides agree). */
void uconn_release(struct uconn *uc);
/* Closes the connection; no more callbacks. Accepts NULL. */
void uconn_close(struct uconn *uc);

const char *uconn_error(const struct uconn *uc);
struct instance *uconn_instance(const struct uconn *uc);

#endif
