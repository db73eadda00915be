/*
 * A TLS session over OpenSSL memory BIOs, with no I/O of its own.
 *
 * poolgate does every socket read and write through libuv, so the engine never touches a socket:
 * the caller feeds in ciphertext it read from the peer, takes out ciphertext to write to the peer,
 * and reads and writes plaintext in between. One engine serves both roles: the client side of
 * health probes and upstream connections to instances, and the server side of the HTTPS front door.
 *
 * The driving loop, for either role:
 *
 *	on socket data:  tls_conn_feed(), then tls_conn_handshake() until it returns 1, then
 *	                 tls_conn_read() until *got is 0;
 *	after any call:  tls_conn_take_output() and write what it moved, if anything.
 *
 * Any call may produce output (handshake messages, alerts, TLS 1.3 key updates and session tickets
 * arrive during reads), so take output after each one, not only after writes.
 *
 * Return convention: 0 (or 1 where said) on success, or a negative PG_E* code from core/err.h.
 * PG_ETLS is sticky: once a call fails with it the connection is dead, every later call returns
 * PG_ETLS again, and tls_conn_error() says why. Output pending at that point may hold an alert
 * for the peer; sending it is courteous but optional.
 *
 * Messages come from OpenSSL's reason strings plus the certificate verify result, e.g.
 * "certificate verify failed: self-signed certificate" or "wrong version number", because health
 * probes show them to operators. They never contain key material. Each failure drains OpenSSL's
 * (per-thread) error queue, so one connection's error never shows up in another's message.
 */
#ifndef PG_CERTS_TLS_H
#define PG_CERTS_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/buf.h"

/*
 * Both contexts allow TLS 1.2 and 1.3 only; for 1.2 only ECDHE key exchange with AEAD ciphers.
 * ALPN is "http/1.1". The caller owns the returned context and frees it with SSL_CTX_free(); each
 * tls_conn holds its own reference, so the context may be freed while connections still use it.
 * On failure both return NULL and write a message naming the file and the OpenSSL reason into
 * err (errlen bytes, always NUL-terminated when errlen > 0).
 */

/*
 * verify = 1: the peer's chain must verify against the PEM bundle ca_file (NULL: OpenSSL's default
 * paths, i.e. the system store) and the certificate must match the name given to tls_conn_new().
 * verify = 0: explicit no-verify, for instances that serve self-signed certificates; ca_file is
 * then ignored.
 */
SSL_CTX *tls_client_ctx_new(const char *ca_file, int verify, char *err, size_t errlen);

/*
 * cert_file is a PEM chain (leaf first), key_file the PEM private key that matches it; an
 * encrypted key is refused rather than prompting on a terminal. Clients that offer ALPN without
 * "http/1.1" are refused with no_application_protocol (RFC 7301, section 3.2).
 */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen);

struct tls_conn;

/*
 * Returns a new connection, freed with tls_conn_free(), or NULL when out of memory or when a
 * verifying client context is given no server_name.
 *
 * server_name (clients only, NULL for servers; copied): a host name is sent as SNI and checked
 * against the certificate; an IP literal is not sent (RFC 6066, section 3 forbids addresses in
 * SNI) but checked against the certificate's IP SANs; write IPv6 without brackets. When the
 * context does not verify, the check's result is ignored but a host name is still sent as SNI,
 * which servers need to pick a certificate.
 */
struct tls_conn *tls_conn_new(SSL_CTX *ctx, int is_server, const char *server_name);

/* Accepts NULL. Does not send close_notify; call tls_conn_shutdown() first for a clean close. */
void tls_conn_free(struct tls_conn *tc);

/*
 * Queues len bytes of ciphertext from the peer. Returns 0, PG_ETOOBIG when more than
 * TLS_CONN_MAX_INPUT bytes would wait unprocessed (a caller that reads after each feed never gets
 * there), PG_ENOMEM, or PG_ETLS after an earlier failure.
 */
#define TLS_CONN_MAX_INPUT (256 * 1024)
int tls_conn_feed(struct tls_conn *tc, const uint8_t *p, size_t len);

/*
 * Drives the handshake. Returns 1 when it is complete (and on every later call), 0 when it needs
 * more input from the peer (take output first: it usually has a flight to send), or PG_ETLS.
 */
int tls_conn_handshake(struct tls_conn *tc);

/*
 * Reads up to cap bytes of plaintext into out. Returns 0 and sets *got (0 means it needs more
 * input), PG_ECLOSED once the peer sent close_notify (and on every later call), PG_EINVAL before
 * the handshake completed, or PG_ETLS. *got is set only when 0 is returned.
 */
int tls_conn_read(struct tls_conn *tc, uint8_t *out, size_t cap, size_t *got);

/*
 * Encrypts all len bytes into pending output. Returns 0, PG_EINVAL before the handshake
 * completed, or PG_ETLS (also after tls_conn_shutdown()).
 */
int tls_conn_write(struct tls_conn *tc, const uint8_t *p, size_t len);

/*
 * Appends all pending ciphertext to dst and consumes it. Returns 0 (also when there was nothing),
 * or PG_ETOOBIG / PG_ENOMEM from the buffer, in which case nothing moved. An empty dst receives
 * the connection's own output buffer rather than a copy of it, so take into a fresh buffer
 * each time; tc keeps no output memory between calls.
 */
int tls_conn_take_output(struct tls_conn *tc, struct pg_buf *dst);

/*
 * Queues close_notify; take output afterwards. Returns 0, PG_EINVAL before the handshake
 * completed, or PG_ETLS. Waiting for the peer's close_notify is optional (tls_conn_read() reports
 * it as PG_ECLOSED); a client may simply close the socket once its own one is written.
 */
int tls_conn_shutdown(struct tls_conn *tc);

/* The failure's message, "" if none. Owned by tc, valid until tls_conn_free(). */
const char *tls_conn_error(const struct tls_conn *tc);

/* The negotiated protocol version ("TLSv1.3"), static. Meaningful once the handshake completed. */
const char *tls_conn_version(const struct tls_conn *tc);

#endif
