/*
 * The AuthorizedKeysCommand-style program (ssh.front_auth.authorized_keys_command): run once per
 * connection, for the user its first userauth request names, off the loop thread (uv_spawn with
 * pipes; the loop only reads them). Its standard output is authorized_keys text.
 *
 * Bounds: a timeout kills it (SIGKILL to its whole process group: it runs in a session of its
 * own, so a shell's children die too); output past KEYCMD_MAX_OUTPUT is cut at the last whole
 * line before the bound, the program killed, and what came before used; a non-zero exit or a
 * signal means no keys. Each outcome but a clean exit logs a line (with the first bytes of its
 * standard error, made printable). Its environment holds PATH only; stdin is /dev/null; cwd /.
 *
 * Return convention: 0 or a negative PG_E* / libuv code.
 */
#ifndef PG_PROXY_SSH_KEYCMD_H
#define PG_PROXY_SSH_KEYCMD_H

#include <uv.h>

#include "core/buf.h"

#define KEYCMD_MAX_OUTPUT (1024 * 1024)
#define KEYCMD_MAX_ARGS 32

struct keycmd_conf {
	char **argv;		/* argv[0] an absolute path; %u and %% expanded in each */
	size_t argc;
	int set_ids;		/* run as uid/gid (run_as), else as poolgate */
	uv_uid_t uid;
	uv_gid_t gid;
	uint32_t timeout_ms;
};

struct keycmd;

/*
 * status: 0 (output whole), PG_ETOOBIG (cut at the bound: out holds the whole lines before it),
 * PG_ETIMEDOUT, PG_ESTATUS (non-zero exit or killed), or the spawn's error; out is empty except
 * for 0 and PG_ETOOBIG. out is borrowed for the call.
 */
typedef void (*keycmd_done_cb)(void *arg, int status, const struct pg_buf *out);

/*
 * Starts the program for user (already checked safe by authkeys_user_ok()). cb runs once, later,
 * on the loop, unless keycmd_cancel() comes first. log_prefix is copied. Returns 0 with *out
 * set, or an error (nothing started, cb never called).
 */
int keycmd_run(uv_loop_t *loop, const struct keycmd_conf *conf, const char *user,
    const char *log_prefix, keycmd_done_cb cb, void *arg, struct keycmd **out);

/* The caller is gone: cb will not run; the program is killed; memory goes when handles close. */
void keycmd_cancel(struct keycmd *k);

#endif
