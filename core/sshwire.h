/*
 * SSH wire encodings (RFC 4251 section 5): bounds-checked readers over a borrowed slice and
 * writers appending to an owned buffer.
 *
 * Readers consume from the front of *s. Each returns 0 and sets its out-parameter, or PG_EPARSE
 * when the bytes are short or malformed; on PG_EPARSE neither *s nor the out-parameter changes.
 * Slices they return point into the input and live as long as it does.
 *
 * Writers append to b. Each returns 0, or PG_ETOOBIG / PG_ENOMEM from the buffer (or PG_EINVAL
 * where said), and on failure leaves b as it was: a value is never half written.
 */
#ifndef PG_CORE_SSHWIRE_H
#define PG_CORE_SSHWIRE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bn.h>

#include "core/buf.h"

/* The largest mpint we read: 16384 bits, as OpenSSH's SSHBUF_MAX_BIGNUM (plus the sign byte). */
#define SSH_MPINT_MAX_BYTES (16384 / 8)

int ssh_get_u8(struct pg_slice *s, uint8_t *v);
int ssh_get_bool(struct pg_slice *s, int *v);	/* any non-zero byte is true (RFC 4251 5) */
int ssh_get_u32(struct pg_slice *s, uint32_t *v);
int ssh_get_u64(struct pg_slice *s, uint64_t *v);
/* n raw bytes (no length prefix), e.g. the KEXINIT cookie. */
int ssh_get_bytes(struct pg_slice *s, size_t n, struct pg_slice *v);
/* uint32 length, then that many bytes. */
int ssh_get_string(struct pg_slice *s, struct pg_slice *v);
/*
 * A name-list: a string of comma-separated names, each non-empty printable US-ASCII without
 * commas. An empty list (length 0) is valid. Walk it with ssh_namelist_next().
 */
int ssh_get_namelist(struct pg_slice *s, struct pg_slice *v);
/*
 * A non-negative mpint, as its big-endian magnitude without leading zeros (v->len == 0 for zero).
 * Negative values, unnecessary leading zero bytes and values over SSH_MPINT_MAX_BYTES are
 * PG_EPARSE. The _bn form returns a new BIGNUM the caller frees (PG_ENOMEM possible).
 */
int ssh_get_mpint(struct pg_slice *s, struct pg_slice *v);
int ssh_get_mpint_bn(struct pg_slice *s, BIGNUM **v);
/* 0 if s is empty, PG_EPARSE if bytes are left over (messages must end where they end). */
int ssh_get_end(struct pg_slice s);

/*
 * Name-list iteration: returns 1 and sets *name to the next name (consuming it and its comma from
 * *list), or 0 when the list is exhausted. The list must have come from ssh_get_namelist() or be
 * a trusted constant.
 */
int ssh_namelist_next(struct pg_slice *list, struct pg_slice *name);
/* 1 if name is an element of list (exact, case-sensitive match), else 0. */
int ssh_namelist_has(struct pg_slice list, const char *name);
/* 1 if name equals the C string. */
int ssh_slice_eq(struct pg_slice s, const char *lit);

int ssh_put_u8(struct pg_buf *b, uint8_t v);
int ssh_put_bool(struct pg_buf *b, int v);
int ssh_put_u32(struct pg_buf *b, uint32_t v);
int ssh_put_u64(struct pg_buf *b, uint64_t v);
int ssh_put_string(struct pg_buf *b, const void *p, size_t len);
int ssh_put_cstring(struct pg_buf *b, const char *s);
/*
 * An mpint from a big-endian unsigned magnitude: leading zero bytes are dropped and a zero byte
 * is prepended when the top bit is set, so the value reads back as non-negative (RFC 4251 5).
 */
int ssh_put_mpint(struct pg_buf *b, const uint8_t *mag, size_t len);
/* The same from a BIGNUM; negative values are PG_EINVAL. */
int ssh_put_mpint_bn(struct pg_buf *b, const BIGNUM *v);
/* A name-list from n names; a name that is empty or holds a comma is PG_EINVAL. */
int ssh_put_namelist(struct pg_buf *b, const char *const *names, size_t n);

/* Big-endian helpers for code that frames bytes itself. */
static inline uint32_t
ssh_peek_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void
ssh_poke_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#endif
