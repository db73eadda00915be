/*
 * Password and keyboard-interactive passthrough (RFC 4252 8, RFC 4256): a user's attempt is
 * relayed to their instance's sshd, which decides. No I/O here: the session feeds in what each
 * side sends and forwards what this module validated. One attempt is in flight at a time (the
 * session stops reading from the user meanwhile), so the relay is a small state machine:
 *
 *	IDLE   nothing in flight
 *	HELD   the user's request is kept (a copy) until the instance's transport is ready
 *	WAIT   the request went to the instance; its verdict is awaited
 *	INFO   keyboard-interactive: the instance's INFO_REQUEST went to the user; their
 *	       INFO_RESPONSE is awaited (any number of rounds)
 *
 * The user's payloads cross unchanged: a password request and a keyboard-interactive request
 * carry the same user name and service to the instance (auth_server fixed both), and an
 * INFO_RESPONSE has no field poolgate would change. Secrets are never logged; every copy this
 * module keeps is wiped (OPENSSL_cleanse) when it is sent or dropped, and the session wipes the
 * user's payloads in the transport's buffer after use (auth_relay_wipe()).
 *
 * Message number 60 from the instance is PASSWD_CHANGEREQ during a password attempt and
 * INFO_REQUEST during keyboard-interactive; 61 from the user is INFO_RESPONSE only in INFO.
 *
 * Return convention: 0 (or a value named below) or a negative PG_E* code.
 */
#ifndef PG_PROXY_SSH_AUTH_RELAY_H
#define PG_PROXY_SSH_AUTH_RELAY_H

#include <stdint.h>

#include "core/buf.h"

/* At most this many prompts in one INFO_REQUEST (sshd sends one per PAM message). */
#define AUTH_RELAY_MAX_PROMPTS 64

enum auth_relay_kind { AUTH_RELAY_PASSWORD_KIND = 1, AUTH_RELAY_KBDINT_KIND = 2 };
enum auth_relay_state { AUTH_RELAY_IDLE, AUTH_RELAY_HELD, AUTH_RELAY_WAIT, AUTH_RELAY_INFO };

/* The instance's verdict on a relayed message (auth_relay_from_instance()). */
enum auth_relay_verdict {
	AUTH_RELAY_V_IGNORE = 1,	/* a banner: nothing to do */
	AUTH_RELAY_V_SUCCESS,		/* USERAUTH_SUCCESS: the user is in */
	AUTH_RELAY_V_FAILURE,		/* USERAUTH_FAILURE: a failed attempt */
	AUTH_RELAY_V_PARTIAL,		/* USERAUTH_FAILURE with partial success: another method */
	AUTH_RELAY_V_INFO,		/* INFO_REQUEST: send the payload on to the user */
	AUTH_RELAY_V_CHANGEREQ,		/* PASSWD_CHANGEREQ: refused (docs/ssh.md) */
};

struct auth_relay;

struct auth_relay *auth_relay_new(void);
void auth_relay_free(struct auth_relay *r);	/* accepts NULL; wipes what it holds */

enum auth_relay_state auth_relay_state(const struct auth_relay *r);
enum auth_relay_kind auth_relay_kind(const struct auth_relay *r);
const char *auth_relay_kind_name(enum auth_relay_kind k);	/* "password", ... */

/*
 * Takes the user's USERAUTH_REQUEST for method kind (IDLE or INFO: a new request ends a
 * keyboard-interactive exchange, RFC 4256 3.1) and keeps a copy for the instance: state HELD.
 * Returns 0, PG_EPARSE (malformed), PG_EINVAL (a password change request from the user: never
 * relayed; the caller answers FAILURE), PG_ENOMEM.
 */
int auth_relay_begin(struct auth_relay *r, enum auth_relay_kind kind, struct pg_slice payload);

/* HELD: the request to send to the instance (borrowed until auth_relay_sent()). */
struct pg_slice auth_relay_request(const struct auth_relay *r);
/* The request went out: its copy is wiped, state WAIT. */
void auth_relay_sent(struct auth_relay *r);

/*
 * WAIT: a userauth message (50..79) from the instance. Returns a verdict (state IDLE after
 * SUCCESS, FAILURE, PARTIAL and CHANGEREQ; INFO after INFO; unchanged after IGNORE) or
 * PG_EPARSE (malformed, or a message that has no place in this method). For FAILURE and
 * PARTIAL, *methods gets the AUTH_M_* bits the instance lists as able to continue.
 */
int auth_relay_from_instance(struct auth_relay *r, struct pg_slice payload, unsigned *methods);

/*
 * INFO: the user's INFO_RESPONSE. Checks it answers the prompts relayed (count and shape);
 * then the caller sends payload on to the instance unchanged and state is WAIT. Returns 0 or
 * PG_EPARSE.
 */
int auth_relay_info_response(struct auth_relay *r, struct pg_slice payload);

/* Drops whatever is in flight (the copy wiped): state IDLE. */
void auth_relay_abort(struct auth_relay *r);

/* Wipes a payload that held a secret, in the buffer it lies in. */
void auth_relay_wipe(struct pg_slice payload);

#endif
