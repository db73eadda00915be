/*
 * poolgatectl's HTTP client for the admin listener: one request per connection, blocking sockets
 * with a deadline (a CLI has nothing else to do meanwhile), the response framed by llhttp in
 * strict mode. Nothing here is shared with the server; only core/ is linked.
 */
#ifndef PG_CTL_CLIENT_H
#define PG_CTL_CLIENT_H

#include <stddef.h>

#include "core/buf.h"

#define CTL_MAX_RESPONSE (64u << 20)

struct ctl_target {
	char host[256];		/* name or address, without brackets */
	char port[8];
	const char *token;	/* bearer token, or NULL */
	int timeout_ms;		/* for connecting, and again for the whole exchange */
};

/*
 * Parses "HOST:PORT" or "[IPV6]:PORT" into t. Returns 0 or -1 (malformed).
 */
int ctl_parse_hostport(const char *s, struct ctl_target *t);

/*
 * Sends METHOD PATH (with body, as JSON, when body is not NULL) and reads the whole response.
 * On success returns 0, sets *status and appends the body to out (max CTL_MAX_RESPONSE). On
 * failure returns -1 with a message in err (cannot resolve, connect, timed out, not HTTP).
 */
int ctl_request(const struct ctl_target *t, const char *method, const char *path,
    const char *body, int *status, struct pg_buf *out, char *err, size_t errlen);

#endif
