/*
 * The PROXY protocol on a listener (core/proxyproto.h parses; this decides and keeps count),
 * shared by the SSH and HTTPS front doors. The rule (docs/config.md, proxy_protocol):
 *
 * - a connection from a trusted source (proxy_protocol.trusted) must start with a header, whole
 *   within timeout_ms; nothing is sent to it before (no SSH ident); its client address then
 *   replaces the peer's for everything (limits, logs, audit, X-Forwarded-For);
 * - a connection from any other source is served with its own address, and is closed if its
 *   first bytes look like a PROXY header: only a trusted balancer may name another address.
 *
 * Every decision is logged (notice for refusals, debug for accepted headers) with the
 * connection's prefix, and counted by result for /metrics.
 */
#ifndef PG_CORE_PPCONN_H
#define PG_CORE_PPCONN_H

#include <stdint.h>

#include "core/addr.h"
#include "core/proxyproto.h"

struct ppc_policy {
	int enabled;			/* this listener kind expects headers from trusted sources */
	struct pg_cidr *trusted;	/* owned */
	size_t ntrusted;
	uint32_t timeout_ms;
	uint64_t results[PPR_N];	/* headers by result */
};

/* Sets p from the config (copies the list; counts stay). 0 or PG_ENOMEM (p unchanged). */
int ppc_policy_set(struct ppc_policy *p, int enabled, const struct pg_cidr *trusted, size_t n,
    uint32_t timeout_ms);
void ppc_policy_clear(struct ppc_policy *p);

/* One connection's state; zero it to start. */
struct ppc_conn {
	struct proxyproto_reader *reader;	/* while a header is read */
	int check_first;			/* untrusted source on such a listener */
	char via[PG_ADDRSTRLEN];		/* "ip:port" of the balancer once a header named the client */
};

/*
 * A new connection from peer. Returns 1 when a header must be read first (feed its bytes to
 * ppc_feed()), 0 when not, PG_ENOMEM.
 */
int ppc_start(struct ppc_conn *c, const struct ppc_policy *p, const struct sockaddr *peer);

/*
 * Bytes of a connection ppc_start() said 1 for. Returns 1 when the header is whole: *peer is
 * the client's address from now on (unless the header said to keep the peer's), rest[0..1] the
 * bytes after the header, valid until ppc_done(). 0: more bytes are needed. Negative: not a
 * valid header (logged, counted): close the connection.
 */
int ppc_feed(struct ppc_conn *c, struct ppc_policy *p, const uint8_t *data, size_t n,
    struct sockaddr_storage *peer, struct pg_slice rest[2], const char *log_prefix);

/* The header did not arrive within timeout_ms: logs and counts; close the connection. */
void ppc_timeout(struct ppc_conn *c, struct ppc_policy *p, const char *log_prefix);

/*
 * The first bytes of a connection ppc_start() said 0 for. Returns -1 (logged, counted) when
 * it is an untrusted source sending a PROXY header: close it. 0 otherwise (checked once).
 */
int ppc_check_first(struct ppc_conn *c, struct ppc_policy *p, const uint8_t *data, size_t n,
    const char *log_prefix);

/* Frees the reader (after the caller used rest). Safe to call more than once. */
void ppc_done(struct ppc_conn *c);

/* 1 while a header is awaited. */
int ppc_pending(const struct ppc_conn *c);

#endif
