/*
 * The SSH audit line: one per connection, logged at info when its memory goes, whatever ended
 * it (refused at accept, timed out, failed login, a session that ran). Text format:
 *
 *   ssh#12 203.0.113.9:50022 alice: audit user=alice src=203.0.113.9:50022 instance=dsvm-2
 *     methods=none,publickey auth=publickey failures=0 duration_ms=8123 bytes_up=2114
 *     bytes_down=1048937 reason="the user disconnected"
 *
 * (one line; "-" where nothing is known: no user named, no instance, no method succeeded); with
 * "via=IP:PORT" (the balancer) when a PROXY header named the source. In JSON log mode the line is
 * {"msg":"audit","audit":{...}} with the same keys, numbers as numbers. bytes_up counts the
 * connection-protocol payloads relayed from the user to the instance, bytes_down the other way
 * (channel data plus their small message headers; not SSH's own packet overhead). No secret
 * ever reaches it: methods are names, reasons are poolgate's own fixed texts.
 */
#ifndef PG_PROXY_SSH_AUDIT_H
#define PG_PROXY_SSH_AUDIT_H

#include <stdint.h>

#include "core/buf.h"

struct ssh_audit {
	uint64_t start_ms, end_ms;
	char methods[96];	/* methods the user tried, in order, each once: "none,publickey" */
	char auth[32];		/* the one that succeeded, "" if none */
	uint32_t failures;
	uint64_t bytes_up, bytes_down;
	char reason[128];	/* the first close reason */
};

void audit_start(struct ssh_audit *a, uint64_t now_ms);

/* A USERAUTH_REQUEST from the user: its method joins the list (a malformed one is skipped). */
void audit_request(struct ssh_audit *a, struct pg_slice payload);

/* The request that authenticated the user: its method is the one that succeeded. */
void audit_success(struct ssh_audit *a, struct pg_slice payload);

/* Why the connection ends; the first reason given stays, with the time it was given. */
void audit_close(struct ssh_audit *a, const char *why, uint64_t now_ms);

/* Writes the line. user, instance, via: "" or NULL when unknown. */
void audit_log(const struct ssh_audit *a, const char *log_prefix, const char *user,
    const char *src, const char *instance, const char *via);

#endif
