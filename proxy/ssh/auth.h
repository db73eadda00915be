/*
 * SSH user authentication (RFC 4252), both ends, with no I/O of their own.
 *
 * Server side (users' clients): `none` gets USERAUTH_FAILURE listing "publickey"; a publickey
 * query gets PK_OK when the caller's key_ok() says the key is the user's; a signed publickey
 * request is verified over (session id, request) and, if key_ok() agrees, succeeds. The user name
 * and service are fixed by the first request (sshd refuses changes too). Every request but
 * `none` and a query answered PK_OK counts towards max_tries, as in sshd. The caller sends USERAUTH_SUCCESS itself, when it is ready (the upstream login done).
 *
 * Client side (instances' sshd): one signed publickey request, with a user certificate or a key.
 *
 * Return convention: 0 / 1 as said, or a negative PG_E* code.
 */
#ifndef PG_PROXY_SSH_AUTH_H
#define PG_PROXY_SSH_AUTH_H

#include <stdint.h>

#include "certs/sshkey.h"
#include "certs/usercert.h"
#include "core/buf.h"

enum {
	SSH_MSG_USERAUTH_BANNER = 53,
	SSH_MSG_USERAUTH_PK_OK = 60,
};

struct auth_server_conf {
	uint32_t max_tries;
	/* 1 if key may log in as user, 0 if not (log why there). */
	int (*key_ok)(void *arg, const char *user, const struct sshkey *key);
	/*
	 * For OpenSSH user certificates (their CA signature already verified): 1 if this one may
	 * log in as user. NULL: certificates are refused.
	 */
	int (*cert_ok)(void *arg, const char *user, const struct usercert *cert);
	void *arg;
	const char *log_prefix;		/* borrowed; must outlive the auth_server */
};

struct auth_server;

struct auth_server *auth_server_new(const struct auth_server_conf *conf);
void auth_server_free(struct auth_server *a);	/* accepts NULL */

/*
 * Takes one USERAUTH_REQUEST payload. Returns 0 with the answer (FAILURE or PK_OK) appended to
 * reply; 1 when the user proved a key (nothing appended); PG_EPARSE for a malformed request or
 * a change of user or service; PG_ETOOBIG when max_tries failures have been reached (the
 * caller disconnects with SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE).
 */
int auth_server_handle(struct auth_server *a, struct pg_slice payload, struct pg_slice session_id,
    struct pg_buf *reply);

/* Failed attempts so far (what max_tries counts). */
uint32_t auth_server_failures(const struct auth_server *a);

/* The user name of the first request, "" before it. */
const char *auth_server_user(const struct auth_server *a);

/*
 * Reads only the user name of a USERAUTH_REQUEST (for routing before any key check) into out,
 * NUL-terminated. PG_EPARSE if malformed, holding a NUL, or longer than outlen - 1.
 */
int auth_request_user(struct pg_slice payload, char *out, size_t outlen);

/*
 * Appends a signed publickey USERAUTH_REQUEST for user and service "ssh-connection":
 * alg and blob are what the server sees (a certificate type and blob, or the key's own), signer
 * signs with sig_alg over (session id, request).
 */
int auth_client_publickey(struct pg_buf *out, struct pg_slice session_id, const char *user,
    const char *alg, struct pg_slice blob, const struct sshkey *signer, const char *sig_alg);

#define SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE 14
#define SSH_DISCONNECT_ILLEGAL_USER_NAME 15

#endif
