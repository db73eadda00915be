/*
 * authorized_keys for the SSH front door (sshd(8) AUTHORIZED_KEYS FILE FORMAT, the subset poolgate
 * enforces): one key per line, "type base64 [comment]", blank lines and '#' comments skipped, key
 * types those of certs/sshkey. A line that starts with options (restrict, from=, command=, no-pty,
 * ...) is REFUSED with a log line and never matches: poolgate does not enforce options yet, and a
 * key whose owner asked for restrictions must not get an unrestricted session.
 *
 * Return convention: 0/1 as said, or a negative PG_E* code.
 */
#ifndef PG_CERTS_AUTHKEYS_H
#define PG_CERTS_AUTHKEYS_H

#include <stddef.h>

#include "certs/sshkey.h"
#include "core/buf.h"

#define AUTHKEYS_MAX_BYTES (256 * 1024)	/* larger files are refused, not truncated */
#define AUTHKEYS_USER_MAX 32

/*
 * 1 if user is safe to put in a path: 1..AUTHKEYS_USER_MAX of [A-Za-z0-9._-], not starting with
 * '.' or '-' (so never "..", never an option). Else 0.
 */
int authkeys_user_ok(const char *user);

/*
 * Expands a pattern's %u (the user) and %% into out. Returns 0, PG_EINVAL (user not
 * authkeys_user_ok, or a bad escape) or PG_ETOOBIG (outlen too small).
 */
int authkeys_expand(const char *pattern, const char *user, char *out, size_t outlen);

/*
 * Looks for key in authorized_keys text. what names the text in log lines ("/home/a/.ssh/...").
 * Returns 1 if a plain (option-free) line holds the same public key, else 0. Lines that do not
 * parse are skipped with a notice; lines with options are refused with a notice.
 */
int authkeys_match(struct pg_slice text, const struct sshkey *key, const char *what,
    const char *log_prefix);

/*
 * Reads path (at most AUTHKEYS_MAX_BYTES) into out (appended). Returns 0, PG_ENOTFOUND (no such
 * file), PG_ETOOBIG, PG_EIO, PG_ENOMEM. Blocking: run it off the loop (uv_queue_work). Logs
 * nothing, so it is safe on a worker thread.
 */
int authkeys_read_file(const char *path, struct pg_buf *out);

/*
 * Reads path (at most AUTHKEYS_MAX_BYTES) and matches as above. Returns 1, 0, or PG_ENOTFOUND
 * (no such file), PG_ETOOBIG, PG_EIO. This is a synchronous read: see docs/ssh.md.
 */
int authkeys_check_file(const char *path, const struct sshkey *key, const char *log_prefix);

#endif
