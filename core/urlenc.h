/*
 * Percent-encoding (RFC 3986 2.1), both ways: decoding for paths and form fields that name users
 * (proxy/http/identity.c, the admin API), encoding of one path segment for poolgatectl.
 */
#ifndef PG_CORE_URLENC_H
#define PG_CORE_URLENC_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/*
 * Percent-decodes p[0..len) into out (room for len bytes: decoding never grows). plus_space: '+'
 * is a space (application/x-www-form-urlencoded), else it is itself (URL paths). Sets *outlen and
 * returns 0, or PG_EPARSE for a '%' not followed by two hex digits. Decoded bytes may be anything,
 * NUL included: callers check what they accept.
 */
int pg_pct_decode(const uint8_t *p, size_t len, int plus_space, uint8_t *out, size_t *outlen);

/*
 * Appends s percent-encoded as one path segment to out: everything but the unreserved characters
 * A-Z a-z 0-9 - . _ ~ becomes %XX. Returns 0 or PG_ETOOBIG / PG_ENOMEM.
 */
int pg_pct_encode_segment(struct pg_buf *out, const char *s);

#endif
