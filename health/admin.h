/*
 * The admin API: operators' actions on the admin listener, behind a bearer token (docs/admin.md is
 * the reference). ops.c hands it every request under /admin/; this module authenticates it, parses
 * the path and the JSON body, acts through the registry (backends/instance.h), the operator's
 * layer (backends/adminstate.h) and the pin table (backends/pins.h), and renders a JSON answer.
 *
 *   POST   /admin/instances/ID/drain | undrain | maint    admin state, as an operator's override
 *   POST   /admin/instances                               add (body: an instances[] entry)
 *   DELETE /admin/instances/ID                            remove one the API added
 *   GET    /admin/pins                                    every pin
 *   PUT    /admin/pins/USER      {"instance": ID}         move: pin USER to ID
 *   DELETE /admin/pins/USER                               unpin
 *   POST   /admin/reload                                  re-read the config, as SIGHUP does
 *
 * USER is percent-encoded in the path. Without admin.token_file every action is refused with 403;
 * a request without the right token gets 401 and WWW-Authenticate: Bearer. Every action is logged
 * at notice with its target, result and the peer (never the token), and counted by action and
 * result for /status and /metrics.
 */
#ifndef PG_HEALTH_ADMIN_H
#define PG_HEALTH_ADMIN_H

#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "health/httpreq.h"
#include "health/ops.h"

enum admin_action {
	ADMIN_DRAIN, ADMIN_UNDRAIN, ADMIN_MAINT, ADMIN_ADD, ADMIN_REMOVE, ADMIN_UNPIN, ADMIN_MOVE,
	ADMIN_RELOAD, ADMIN_PINS, ADMIN_UNKNOWN, ADMIN_NACTIONS
};
enum admin_result { ADMIN_OK, ADMIN_DENIED, ADMIN_REJECTED, ADMIN_FAILED, ADMIN_NRESULTS };

const char *admin_action_name(enum admin_action a);
const char *admin_result_name(enum admin_result r);

struct admin;

/*
 * Reads the token file (blocking: start-up only) when token_file is not NULL. Returns 0 and sets
 * *out, or a negative code with the reason in err (a token file that cannot be used stops the
 * start: the operator asked for admin actions).
 */
int admin_new(uv_loop_t *loop, const char *token_file, struct admin **out, char *err,
    size_t errlen);

/*
 * Takes admin.token_file from a reloaded config: the file is read again on the thread pool (it may
 * have changed even when its path has not). NULL turns admin actions off. A file that cannot be
 * used turns them off too, with the reason in the log, until a reload finds it good: a token file
 * others can read is no secret any more.
 */
void admin_set_token_file(struct admin *ad, const char *token_file);

/* Frees ad now, or once a token read in flight has finished. NULL is fine. */
void admin_free(struct admin *ad);

/* 1 when a token is in force (admin actions possible). */
int admin_enabled(const struct admin *ad);

/* Times each action ended with each result. */
uint64_t admin_count(const struct admin *ad, enum admin_action a, enum admin_result r);

/* What admin_handle() answers. */
struct admin_answer {
	int status;
	const char *headers;	/* extra header lines ("Name: value\r\n"...), static; "" if none */
	struct pg_buf body;	/* JSON; the caller frees it */
};

/*
 * Handles one request under /admin/ (path without the query string). peer names the client for
 * the log. Fills ans (initialise ans->body before: pg_buf_init) and returns 0, or PG_ENOMEM when
 * not even an answer could be made.
 */
int admin_handle(struct admin *ad, struct ops_env *env, const struct httpreq *req,
    const char *path, size_t path_len, const char *peer, struct admin_answer *ans);

#endif
