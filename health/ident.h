/*
 * The SSH identification line a server sends first (RFC 4253 section 4.2):
 *   SSH-protoversion-softwareversion SP comments CR LF
 * A server may send other lines before it; each line is at most 255 bytes including CR LF. We accept
 * LF alone too (the RFC asks clients to), and protocol versions "2.0" and "1.99".
 */
#ifndef PG_HEALTH_IDENT_H
#define PG_HEALTH_IDENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define SSH_IDENT_MAX_LINE 255
#define SSH_IDENT_MAX_LINES 32	/* pre-ident lines accepted before giving up */

/*
 * Scans the bytes received so far. Returns 1 and sets *ident (the line without CR LF, pointing into
 * p) when the identification line is complete; 0 when more bytes are needed; PG_EPROTO when the
 * server is not speaking SSH 2 (an overlong line, a NUL, too many lines, an "SSH-" line with another
 * version). Pure: the same bytes give the same answer.
 */
int ssh_ident_scan(const uint8_t *p, size_t len, struct pg_slice *ident);

#endif
