/*
 * The SSH transport layer (RFC 4253) in either role, with no I/O of its own: the server role
 * faces users' SSH clients, the client role faces instances' sshd. Modelled on certs/tls.h.
 *
 * The driving loop, for either role:
 *
 *	on socket data:  ssh_transport_feed(), then ssh_transport_next_payload() until it returns 0
 *	                 (each 1 hands over one message of the layers above: numbers 50 and up);
 *	to send:         ssh_transport_send_payload() (messages 50 and up; queued during a kex);
 *	on a timer:      ssh_transport_check_rekey();
 *	after any call:  ssh_transport_take_output() and write what it moved, if anything.
 *
 * The transport handles everything below message 50 itself: version exchange (RFC 4253 4.2),
 * KEXINIT and key exchange, NEWKEYS, strict kex (OpenSSH PROTOCOL 1.10), ext-info (RFC 8308:
 * the server sends server-sig-algs, the client records it), SERVICE_REQUEST/ACCEPT for one service
 * (ssh-userauth), IGNORE, DEBUG, UNIMPLEMENTED, DISCONNECT, and rekeying whenever the peer asks,
 * when the caller asks, and after rekey_bytes or rekey_seconds.
 *
 * States (ssh_transport_state()):
 *	VERSION  waiting for the peer's identification line (our own goes out at once, with KEXINIT)
 *	KEX      the initial key exchange
 *	SERVICE  keys are in place; the client waits for SERVICE_ACCEPT, the server for a request
 *	OPEN     the service runs: payloads 50 and up flow both ways (rekeys happen inside OPEN)
 *	CLOSED   a DISCONNECT was sent or received
 *	FAILED   a protocol, crypto or limit error; a DISCONNECT naming it is in the output
 *
 * Return convention: 0 (or 1 where said) or a negative PG_E* code. Failures are sticky: PG_EPROTO
 * (or PG_ECLOSED after a DISCONNECT) from every later call, and ssh_transport_error() says why
 * ("bad MAC on packet 7 (aes128-ctr)", "strict kex: message 2 during initial key exchange").
 * Messages never contain key material.
 */
#ifndef PG_PROXY_SSH_TRANSPORT_H
#define PG_PROXY_SSH_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "certs/sshkey.h"
#include "core/buf.h"
#include "proxy/ssh/kex.h"

/* Our identification: names poolgate, never OpenSSH (peers key quirks off "OpenSSH"). */
#define SSH_TRANSPORT_IDENT "SSH-2.0-poolgate_" PG_VERSION

#define SSH_TRANSPORT_REKEY_BYTES (1ull << 30)	/* 1 GiB either way */
#define SSH_TRANSPORT_REKEY_SECONDS 3600
/* Payloads the caller sends during a key exchange wait, up to this many bytes. */
#define SSH_TRANSPORT_MAX_QUEUE (1024 * 1024)

/* RFC 4253 11.1 reason codes the transport uses. */
enum {
	SSH_DISCONNECT_PROTOCOL_ERROR = 2,
	SSH_DISCONNECT_KEY_EXCHANGE_FAILED = 3,
	SSH_DISCONNECT_MAC_ERROR = 5,
	SSH_DISCONNECT_SERVICE_NOT_AVAILABLE = 7,
	SSH_DISCONNECT_HOST_KEY_NOT_VERIFIABLE = 9,
	SSH_DISCONNECT_BY_APPLICATION = 11,
	SSH_DISCONNECT_TOO_MANY_CONNECTIONS = 12,
};

enum ssh_role { SSH_ROLE_CLIENT, SSH_ROLE_SERVER };

enum ssh_tstate {
	SSH_T_VERSION,
	SSH_T_KEX,
	SSH_T_SERVICE,
	SSH_T_OPEN,
	SSH_T_CLOSED,
	SSH_T_FAILED,
};

struct ssh_transport_config {
	enum ssh_role role;
	const char *log_prefix;		/* "ssh 192.0.2.7:50122"; copied; NULL for none */
	struct ssh_kex_prefs prefs;	/* NULL fields: the defaults; copied */
	/* Server: the host keys (borrowed; they must outlive the transport). */
	struct sshkey *const *host_keys;
	size_t n_host_keys;
	/*
	 * Client: decides whether to trust the server's host key (after its signature verified).
	 * Returns 0 to accept. NULL accepts any key: for callers that check ssh_transport_hostkey()
	 * themselves before sending anything that matters.
	 */
	int (*verify_hostkey)(void *arg, const struct sshkey *key);
	void *verify_arg;
	/*
	 * Client: the service it requests after the first kex; NULL is "ssh-userauth", the only one
	 * poolgate speaks. Another name, or "" (no request: the transport opens at once), exists
	 * for test drivers that must show a server refusing them (tests/interop/raw.c). At most 63
	 * bytes; copied.
	 */
	const char *client_service;
	uint64_t rekey_bytes;		/* 0: SSH_TRANSPORT_REKEY_BYTES */
	uint64_t rekey_seconds;		/* 0: SSH_TRANSPORT_REKEY_SECONDS */
};

struct ssh_transport;

/*
 * A new transport; our identification line and first KEXINIT are already in its output.
 * Returns 0, PG_EINVAL (unknown algorithm in prefs, a server without host keys) or PG_ENOMEM.
 */
int ssh_transport_new(const struct ssh_transport_config *cfg, struct ssh_transport **out);
void ssh_transport_free(struct ssh_transport *t);	/* accepts NULL */

/* Queues bytes from the peer. Returns 0, PG_ETOOBIG (input over its bound), or the sticky error. */
int ssh_transport_feed(struct ssh_transport *t, const uint8_t *p, size_t len);

/*
 * Processes input. Returns 1 and sets *payload to a message numbered 50 or above (valid until the
 * next feed or next_payload), 0 when more input is needed, or an error.
 */
int ssh_transport_next_payload(struct ssh_transport *t, struct pg_slice *payload);

/*
 * Sends one payload of a layer above (first byte 50..255). While a key exchange of ours is in
 * progress, or (client) before the service is accepted, it waits in a queue. Returns 0, PG_EINVAL
 * (transport message number, empty, oversize, or a server before OPEN), PG_ETOOBIG (the queue is
 * over SSH_TRANSPORT_MAX_QUEUE), or the sticky error.
 */
int ssh_transport_send_payload(struct ssh_transport *t, const uint8_t *p, size_t len);

/*
 * Answers the payload next_payload returned last with SSH_MSG_UNIMPLEMENTED (RFC 4253 11.4), for a
 * message number the layers above do not implement. Returns 0 or the sticky error.
 */
int ssh_transport_unimplemented(struct ssh_transport *t);

/* Appends all pending output to dst and consumes it. 0, or PG_ETOOBIG / PG_ENOMEM (nothing moved). */
int ssh_transport_take_output(struct ssh_transport *t, struct pg_buf *dst);

/*
 * Starts a key exchange now (no-op if one is running). 0, PG_EINVAL before SERVICE, or the error.
 * OpenSSH (ssh and sshd) treats a KEXINIT before authentication as a protocol error, so call it
 * before then only with peers known to cope (libssh2 does).
 */
int ssh_transport_rekey(struct ssh_transport *t);
/*
 * Starts one when rekey_bytes or rekey_seconds (or 2^31 packets) have passed since the last, but
 * only once authentication succeeded: the transport notes USERAUTH_SUCCESS passing through it
 * (sent by a server, received by a client). Returns 1 if started, 0 if not, or the error. Also
 * runs after every payload sent or received, so a timer needs only cover the time limit.
 */
int ssh_transport_check_rekey(struct ssh_transport *t);

/* Sends DISCONNECT with reason and text and moves to CLOSED. */
int ssh_transport_disconnect(struct ssh_transport *t, uint32_t reason, const char *text);

enum ssh_tstate ssh_transport_state(const struct ssh_transport *t);
const char *ssh_transport_state_name(enum ssh_tstate s);
const char *ssh_transport_error(const struct ssh_transport *t);	/* "" if none */

/* Meaningful once the first kex completed: the algorithms of the latest exchange. */
const struct ssh_kex_algs *ssh_transport_algs(const struct ssh_transport *t);
/* Completed key exchanges (1 after the initial one). */
unsigned ssh_transport_kex_count(const struct ssh_transport *t);
/* The peer's identification line without CR LF, "" before it arrived. */
const char *ssh_transport_peer_version(const struct ssh_transport *t);
/* Client: the server's host key after the first kex, else NULL. Owned by t. */
const struct sshkey *ssh_transport_hostkey(const struct ssh_transport *t);
/* Client: the server-sig-algs extension the server sent, "" if none. */
const char *ssh_transport_server_sig_algs(const struct ssh_transport *t);
/* H of the first exchange; empty before it. */
struct pg_slice ssh_transport_session_id(const struct ssh_transport *t);
/* The sequence number of the payload next_payload returned last (for SSH_MSG_UNIMPLEMENTED). */
uint32_t ssh_transport_last_seq(const struct ssh_transport *t);
/* The sequence number our next packet will carry (what a peer's SSH_MSG_UNIMPLEMENTED names). */
uint32_t ssh_transport_send_seq(const struct ssh_transport *t);
/* How many SSH_MSG_UNIMPLEMENTED the peer sent; *seq (if not NULL) gets the last one's number. */
unsigned ssh_transport_peer_unimplemented(const struct ssh_transport *t, uint32_t *seq);
/* Bytes of caller payloads waiting out a key exchange (bounded by SSH_TRANSPORT_MAX_QUEUE). */
size_t ssh_transport_queued(const struct ssh_transport *t);
/* 1 if strict kex is in force. */
int ssh_transport_strict(const struct ssh_transport *t);

#endif
