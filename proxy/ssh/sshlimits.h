/*
 * The SSH front door's abuse limits (docs/ssh.md, "Abuse limits"; keys in ssh.limits and
 * proxy_protocol), applied by session.c one connection at a time:
 *
 *	accept ─► [PROXY header, proxy_protocol.timeout_ms] ─► admission ─► ident ─► kex ─► auth ─► pipe
 *	                                                        │          │        │       │
 *	           unauthenticated startups per source and      │    ident_timeout  │   login_grace_ms
 *	           in total (max_startups), blocked sources ────┘          kex_timeout
 *
 * Failed attempts feed the source's penalty (core/ratelimit.h): a USERAUTH_FAILURE is answered
 * after a delay that doubles per failure, and past block_after the source is refused for a while.
 * Everything refused or timed out is counted for /metrics and logged with the connection prefix.
 *
 * (Not "limits.h": meson puts this folder on the include path, and the name would shadow the
 * system's <limits.h> for every file here.)
 *
 * Return convention: 0 or a negative PG_E* code where an int is returned, unless said otherwise.
 */
#ifndef PG_PROXY_SSH_SSHLIMITS_H
#define PG_PROXY_SSH_SSHLIMITS_H

#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/ppconn.h"
#include "core/ratelimit.h"
#include "proxy/ssh/transport.h"

/* Pre-authentication phases that have their own timeout. */
enum sshl_phase { SSHL_IDENT, SSHL_KEX, SSHL_AUTH, SSHL_NPHASES };

/* The front door's part, embedded in struct ssh_front. */
struct sshl_front {
	struct rl_table *table;		/* per-source startups and failures */
	struct ssh_limits_conf conf;	/* ssh.limits in force */
	uint32_t login_grace_ms;	/* ssh.login_grace_ms */
	struct ppc_policy pp;		/* proxy_protocol for ssh listeners */
	uint64_t timeouts[SSHL_NPHASES];
};

/* One connection's part, embedded in struct sconn; zeroed at accept. */
struct sshl_conn {
	struct sockaddr_storage src;	/* the client: the peer, or the PROXY header's source */
	struct ppc_conn pp;
	int counted;			/* an unauthenticated startup in the table */
	uint32_t failures;		/* failed attempts on this connection */
	uint64_t start_ms;		/* the SSH session's start (after any PROXY header) */
	uint64_t hold_end_ms;		/* a held USERAUTH_FAILURE goes out then; 0: none held */
	struct pg_buf held;		/* that reply */
};

/* Start and reload: the table, the settings and the PROXY policy. 0 or PG_ENOMEM. */
int sshl_configure(struct sshl_front *lf, const struct pg_config *cfg);
void sshl_front_free(struct sshl_front *lf);

/*
 * After any PROXY header: admits the connection as an unauthenticated startup, or returns why
 * not (a static reason for the audit line and the DISCONNECT-less close: "max_startups",
 * "per_source", "blocked", ...). Logs refusals at notice.
 */
const char *sshl_admit(struct sshl_front *lf, struct sshl_conn *lc, uint64_t now,
    const char *log_prefix);

/* The user authenticated: the startup no longer counts, this connection's failures are forgiven. */
void sshl_authenticated(struct sshl_front *lf, struct sshl_conn *lc, uint64_t now);

/* n more failed attempts on this connection. Sets *delay_ms (how long to hold the FAILURE).
 * Returns 1 when the source is blocked now (logged at notice): close the connection. */
int sshl_failed(struct sshl_front *lf, struct sshl_conn *lc, uint32_t n, uint64_t now,
    uint32_t *delay_ms, const char *log_prefix);

/*
 * The pre-authentication clock. st is the user's transport state (SSH_T_VERSION while no ident
 * came). Returns a static close reason when a phase ran out (logged at notice, naming the phase
 * and its setting, and counted), else NULL with *next_ms the uv_now() of the next deadline,
 * a held reply's included.
 */
const char *sshl_deadline(struct sshl_front *lf, struct sshl_conn *lc, enum ssh_tstate st,
    uint64_t now, uint64_t *next_ms, const char *log_prefix);

/* The connection is gone: releases what it counted and frees what it holds. */
void sshl_conn_done(struct sshl_front *lf, struct sshl_conn *lc, uint64_t now);

/* Appends the families of limits and PROXY headers to out. */
int sshl_render_metrics(const struct sshl_front *lf, uint64_t now, struct pg_buf *out);

#endif
