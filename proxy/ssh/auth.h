/*
 * SSH user authentication (RFC 4252), both ends, with no I/O of their own.
 *
 * Server side (users' clients): `none` gets USERAUTH_FAILURE listing exactly the methods allowed
 * for the user (auth_server_set_methods(); publickey until then); a publickey query gets PK_OK
 * when the caller's key_ok() says the key is the user's; a signed publickey request is verified
 * over (session id, request) and, if key_ok() agrees, succeeds. `password` and
 * `keyboard-interactive` are not decided here: when allowed, the request is handed back to the
 * caller, which relays it to the user's instance (auth_relay.h) and reports the instance's
 * verdict with auth_server_fail(). The user name and service are fixed by the first request
 * (sshd refuses changes too). Every request but `none`, a query answered PK_OK and a relayed one
 * still pending counts towards max_tries, as in sshd. The caller sends USERAUTH_SUCCESS itself,
 * when it is ready (the upstream login done).
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

/*
 * Message numbers 60..79 are method-specific (RFC 4252 7, 8; RFC 4256 3.2): 60 is PK_OK after a
 * publickey query, PASSWD_CHANGEREQ after a password request and INFO_REQUEST during
 * keyboard-interactive. Whoever reads one must know which method is running.
 */
enum {
	SSH_MSG_USERAUTH_BANNER = 53,
	SSH_MSG_USERAUTH_PK_OK = 60,
	SSH_MSG_USERAUTH_PASSWD_CHANGEREQ = 60,
	SSH_MSG_USERAUTH_INFO_REQUEST = 60,
	SSH_MSG_USERAUTH_INFO_RESPONSE = 61,
};

/* Front methods as bits: the values of SSH_FM_* in core/config.h. */
enum {
	AUTH_M_PUBLICKEY = 1,
	AUTH_M_PASSWORD = 2,
	AUTH_M_KBDINT = 4,
};

/* What auth_server_handle() returns besides 0 and errors. */
enum {
	AUTH_PROVEN = 1,	/* the user proved a key */
	AUTH_RELAY_PASSWORD = 2,	/* an allowed password request: relay it */
	AUTH_RELAY_KBDINT = 3,	/* an allowed keyboard-interactive request: relay it */
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
 * reply; AUTH_PROVEN when the user proved a key (nothing appended); AUTH_RELAY_PASSWORD or
 * AUTH_RELAY_KBDINT for a request of an allowed relayed method (nothing appended, nothing
 * counted yet); PG_EPARSE for a malformed request or a change of user or service; PG_ETOOBIG
 * when max_tries failures have been reached (the caller disconnects with
 * SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE).
 */
int auth_server_handle(struct auth_server *a, struct pg_slice payload, struct pg_slice session_id,
    struct pg_buf *reply);

/* The methods (AUTH_M_* bits) the user may use from now on; FAILUREs list them. */
void auth_server_set_methods(struct auth_server *a, unsigned methods);
unsigned auth_server_methods(const struct auth_server *a);

/*
 * A relayed attempt failed (partial 0: counts towards max_tries) or succeeded partially (partial
 * 1: the instance wants another method; not counted). Appends the FAILURE for the user. Returns
 * 0, PG_ETOOBIG as auth_server_handle(), or a buffer error.
 */
int auth_server_fail(struct auth_server *a, int partial, struct pg_buf *reply);

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
