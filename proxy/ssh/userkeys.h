/*
 * A user's keys for one connection, from every configured source, fetched once at the first
 * userauth request (which names the user) and held until the user is authenticated: the
 * authorized_keys file the %u pattern names (read on libuv's thread pool) and the output of the
 * AuthorizedKeysCommand-style program (keycmd.h), both at once. A key, or a certificate's CA
 * on a cert-authority line, found in either logs in, as its options allow (certs/authkeys.h).
 *
 * Return convention: 0/1 as said, or a negative PG_E* / libuv code.
 */
#ifndef PG_PROXY_SSH_USERKEYS_H
#define PG_PROXY_SSH_USERKEYS_H

#include <uv.h>

#include "certs/authkeys.h"
#include "proxy/ssh/keycmd.h"

struct ukeys;

typedef void (*ukeys_done_cb)(void *arg);

/*
 * Starts fetching user's keys: from the file pattern names (NULL: none) and by running cmd
 * (NULL: none). Returns 0 when done(arg) will run later on the loop once every source has
 * answered; 1 when nothing is to be fetched (no source configured; done never runs); or an error
 * (then *out is NULL). Failures of a source (no file, the program failed) are logged and leave
 * that source empty; they are not errors here. log_prefix is copied.
 */
int ukeys_start(uv_loop_t *loop, const char *pattern, const struct keycmd_conf *cmd,
    const char *user, const char *log_prefix, ukeys_done_cb done, void *arg, struct ukeys **out);

/* 1 if key may log in (ctx->what is set here per source), else 0. Only after done. */
int ukeys_key_ok(struct ukeys *u, const struct sshkey *key, struct authkeys_ctx *ctx);

/* 1 if a cert-authority line of some source lets cert log in, else 0. */
int ukeys_cert_ok(struct ukeys *u, const struct usercert *cert, struct authkeys_ctx *ctx);

/* The caller is done (accepts NULL): pending work is dropped; memory goes when it is safe. */
void ukeys_release(struct ukeys *u);

#endif
