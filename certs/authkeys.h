/*
 * authorized_keys for the SSH front door (sshd(8) AUTHORIZED_KEYS FILE FORMAT): one key per line,
 * "[options] type base64 [comment]", blank lines and '#' comments skipped, key types those of
 * certs/sshkey. Options are honoured or refused as certs/keyopts.h says: from=, expiry-time=,
 * cert-authority and principals= are enforced; an option that would restrict the session
 * (restrict, no-pty, command=, ...) makes its line refuse the key, with a log line, since
 * poolgate passes sessions through without interpreting them. Never silently ignored.
 *
 * The same text serves the file read from the authorized_keys pattern and the output of the
 * AuthorizedKeysCommand-style program.
 *
 * Return convention: 0/1 as said, or a negative PG_E* code.
 */
#ifndef PG_CERTS_AUTHKEYS_H
#define PG_CERTS_AUTHKEYS_H

#include <stddef.h>

#include "certs/sshkey.h"
#include "certs/usercert.h"
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

/* What a key line's options are checked against, and how log lines name things. */
struct authkeys_ctx {
	const char *user;	/* the login name: the principal a cert-authority line wants */
	const char *client_ip;	/* from=; NULL: unknown, so every from= refuses */
	uint64_t now;		/* Unix seconds: expiry-time= */
	const char *what;	/* names the text in log lines ("/home/a/.ssh/authorized_keys") */
	const char *log_prefix;
};

/*
 * Looks for key in authorized_keys text. Returns 1 if a line (not cert-authority) holds the same
 * public key and its options let it log in, else 0. Lines that do not parse are skipped with a
 * notice; a line for this key whose options refuse it logs a notice saying which.
 */
int authkeys_match(struct pg_slice text, const struct sshkey *key, const struct authkeys_ctx *ctx);

/*
 * Looks for cert's CA among the text's cert-authority lines. Returns 1 if such a line's options
 * let it log in and the certificate passes usercert_check() for one of the line's principals=
 * (or, without principals=, for ctx->user); else 0, with a notice saying why.
 */
int authkeys_match_cert(struct pg_slice text, const struct usercert *cert,
    const struct authkeys_ctx *ctx);

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
int authkeys_check_file(const char *path, const struct sshkey *key, const struct authkeys_ctx *ctx);

#endif
