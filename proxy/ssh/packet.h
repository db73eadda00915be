/*
 * The SSH binary packet protocol (RFC 4253 section 6) over a pair of ssh_cipher states, with no
 * I/O of its own: bytes from the peer go in through ssh_packet_feed() and come out of
 * ssh_packet_next() as authenticated, decrypted payloads; payloads go in through ssh_packet_send()
 * and come out of ssh_packet_take_output() as framed, padded, encrypted bytes.
 *
 * Limits: a packet is at most SSH_PACKET_MAX bytes on the wire (length field, padding and MAC
 * included), like OpenSSH's PACKET_MAX_SIZE; padding is at least 4 bytes and aligns the packet
 * to the cipher's block size (RFC 4253 6); a payload is never empty (it carries the message
 * number).
 *
 * Errors are sticky: once ssh_packet_next() fails with PG_EPROTO the stream cannot be resynced,
 * every later call returns the same error, and ssh_packet_error() says why ("bad MAC",
 * "packet length 300000 over 262144", ...). Messages never hold packet contents.
 *
 * Return convention: 0 (or 1 where said) on success, or a negative PG_E* code.
 */
#ifndef PG_PROXY_SSH_PACKET_H
#define PG_PROXY_SSH_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "proxy/ssh/cipher.h"

#define SSH_PACKET_MAX (256 * 1024)
/* Undelivered input we hold: a packet in progress plus a generous read's worth after it. */
#define SSH_PACKET_MAX_INPUT (2 * SSH_PACKET_MAX)
/* Output not yet taken; a sender that outruns its socket this far is told PG_ETOOBIG. */
#define SSH_PACKET_MAX_OUTPUT (4 * 1024 * 1024)
/* Padding (4..255 bytes) and the length fields leave at least this much for a payload. */
#define SSH_PACKET_MAX_PAYLOAD (SSH_PACKET_MAX - 4 - 1 - 255 - SSH_CIPHER_MAX_MAC)

enum ssh_dir { SSH_DIR_IN, SSH_DIR_OUT };

/* Per direction, since creation or the last ssh_packet_reset_counters(). */
struct ssh_packet_counters {
	uint64_t packets;
	uint64_t bytes;		/* on the wire, MACs included */
};

struct ssh_packet;

/* Starts with cipher "none" both ways and sequence numbers 0. Free with ssh_packet_free(). */
int ssh_packet_new(struct ssh_packet **out);
void ssh_packet_free(struct ssh_packet *pk);	/* accepts NULL */

/*
 * Installs c for one direction, taking ownership and freeing the previous state (RFC 4253 7.3:
 * outgoing keys change right after we send NEWKEYS, incoming right after we receive it). Call it
 * between packets: after the ssh_packet_next() that returned NEWKEYS, before the next one.
 */
void ssh_packet_set_cipher(struct ssh_packet *pk, enum ssh_dir dir, struct ssh_cipher *c);

/* Queues bytes from the peer. Returns 0, PG_ETOOBIG past SSH_PACKET_MAX_INPUT, PG_ENOMEM. */
int ssh_packet_feed(struct ssh_packet *pk, const uint8_t *p, size_t len);

/*
 * Decodes the next packet. Returns 1 and sets *payload (valid until the next feed or next call)
 * and *seq (the packet's sequence number, for SSH_MSG_UNIMPLEMENTED), 0 when more input is needed,
 * or PG_EPROTO (sticky). The length is checked as soon as its bytes arrive, before the rest is
 * buffered.
 */
int ssh_packet_next(struct ssh_packet *pk, struct pg_slice *payload, uint32_t *seq);

/*
 * Frames, pads (random bytes), encrypts and queues one payload of 1..SSH_PACKET_MAX_PAYLOAD bytes.
 * Returns 0, PG_EINVAL for an empty or oversize payload, PG_ETOOBIG when more than
 * SSH_PACKET_MAX_OUTPUT bytes would wait, PG_ENOMEM; nothing is queued on failure.
 */
int ssh_packet_send(struct ssh_packet *pk, const uint8_t *payload, size_t len);

/*
 * Appends all pending output to dst and consumes it; into an empty dst the buffer itself moves
 * (no copy), and either way the packet layer keeps no output memory afterwards.
 * 0, or PG_ETOOBIG / PG_ENOMEM (nothing moved).
 */
int ssh_packet_take_output(struct ssh_packet *pk, struct pg_buf *dst);
size_t ssh_packet_output_len(const struct ssh_packet *pk);
/* Bytes fed but not yet delivered as packets. */
size_t ssh_packet_input_len(const struct ssh_packet *pk);

/* The next sequence number of a direction; it wraps modulo 2^32 (RFC 4253 6.4). */
uint32_t ssh_packet_seq(const struct ssh_packet *pk, enum ssh_dir dir);
/* 1 if the direction's sequence number wrapped since creation or its last reset. */
int ssh_packet_seq_wrapped(const struct ssh_packet *pk, enum ssh_dir dir);
/* Strict kex: sequence numbers restart at 0 after each NEWKEYS (OpenSSH PROTOCOL 1.10). */
void ssh_packet_reset_seq(struct ssh_packet *pk, enum ssh_dir dir);

struct ssh_packet_counters ssh_packet_counters(const struct ssh_packet *pk, enum ssh_dir dir);
void ssh_packet_reset_counters(struct ssh_packet *pk);

/* Why the stream failed, "" if it has not. Owned by pk. */
const char *ssh_packet_error(const struct ssh_packet *pk);

#endif
