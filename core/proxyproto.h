/*
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2), receiver side: an
 * L4 balancer in front of poolgate prepends it to each connection so poolgate learns the real
 * client's address. Pure: no I/O, no allocation.
 *
 * Version 1 is one text line, "PROXY TCP4|TCP6|UNKNOWN ... \r\n", at most 107 bytes with the
 * CRLF. Version 2 is a 16-byte binary head (12-byte signature, version/command, family/protocol,
 * length) and an address block of that length, which may end in TLVs. Parsing is strict: any
 * byte that does not match the specification makes the header invalid (PG_EPARSE), as the
 * specification asks ("any sequence which does not exactly match the protocol must be
 * discarded").
 *
 * The header says to use the real connection's endpoints (pph.local = 1) for a v2 LOCAL command
 * (the balancer's own health checks), a v1 UNKNOWN line, and v2 families or protocols poolgate
 * does not route (AF_UNSPEC, AF_UNIX, datagrams): the specification lets a receiver fall back
 * to the real endpoints for those.
 *
 * v2 TLVs after the addresses are checked for structure (each must fit, together they must fill
 * the block exactly); PP2_TYPE_CRC32C, when present, must match the header's CRC32c;
 * PP2_TYPE_UNIQUE_ID may hold at most 128 bytes; the sub-TLVs of PP2_TYPE_SSL must fit too.
 * Other types are skipped.
 */
#ifndef PG_CORE_PROXYPROTO_H
#define PG_CORE_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"

/* Hard bound on a header poolgate accepts (v2 may announce up to 16 + 65535 bytes). */
#define PROXYPROTO_MAX 2048
#define PROXYPROTO_V1_MAX 107	/* the longest v1 line, CRLF included */

struct proxyproto_hdr {
	int version;			/* 1 or 2 */
	int local;			/* 1: use the real connection's endpoints */
	struct sockaddr_storage src;	/* the client, when !local (AF_INET or AF_INET6) */
	struct sockaddr_storage dst;	/* the address it connected to, when !local */
	size_t len;			/* bytes of the header, to skip */
	unsigned ntlvs;			/* v2: TLVs seen (sub-TLVs of PP2_TYPE_SSL not counted) */
	int crc_checked;		/* v2: a PP2_TYPE_CRC32C TLV was present and matched */
};

/*
 * Parses the header at the start of p[0..n). Returns 1 with *out filled (out->len bytes are
 * the header; what follows is the connection's own data), 0 when the bytes so far are a valid
 * beginning and more are needed, PG_ETOOBIG when the header would pass PROXYPROTO_MAX, or
 * PG_EPARSE with a static reason in *why (never NULL then) when it is not a valid header. The
 * answer for a prefix never contradicts the answer for the whole: 0 only while a valid header
 * can still follow.
 */
int proxyproto_parse(const uint8_t *p, size_t n, struct proxyproto_hdr *out, const char **why);

/*
 * 1 if the first bytes of a connection look like a PROXY header (either version's signature,
 * as far as n bytes tell), for refusing one from a source that is not trusted to send it.
 * An SSH identification line ("SSH-") and a TLS record (0x16) never look like one.
 */
int proxyproto_looks_like(const uint8_t *p, size_t n);

/* CRC32c (Castagnoli, RFC 4960 appendix B) of p[0..n), as PP2_TYPE_CRC32C carries it. */
uint32_t proxyproto_crc32c(const uint8_t *p, size_t n);

/* How the headers a listener expected went, for /metrics. */
enum proxyproto_result {
	PPR_V1,			/* v1 with the client's address */
	PPR_V2,			/* v2 with the client's address */
	PPR_LOCAL,		/* v2 LOCAL, v1 UNKNOWN or a family not routed: the peer's own address */
	PPR_INVALID,		/* not a valid header (or too long): closed */
	PPR_TIMEOUT,		/* not whole within the timeout: closed */
	PPR_UNTRUSTED,		/* a header from a source not trusted to send one: closed */
	PPR_N
};

/* "v1", "v2", "local", "invalid", "timeout", "untrusted". */
const char *proxyproto_result_name(enum proxyproto_result r);

/* The result a parsed header counts as. */
enum proxyproto_result proxyproto_result_of(const struct proxyproto_hdr *h);

/*
 * A connection's header as it arrives: bytes collect here (bounded by PROXYPROTO_MAX) until
 * proxyproto_parse() is decisive. Embed it or allocate it; no free needed.
 */
struct proxyproto_reader {
	uint8_t buf[PROXYPROTO_MAX];
	size_t len;
};

/*
 * Adds one read's bytes p[0..n). Returns 1 when the header is complete: *out is filled and
 * rest[0], rest[1] are the bytes after it, in order (rest[0] inside the reader, rest[1] inside
 * p); 0 when more bytes are needed; or proxyproto_parse()'s error (with *why).
 */
int proxyproto_reader_feed(struct proxyproto_reader *r, const uint8_t *p, size_t n,
    struct proxyproto_hdr *out, struct pg_slice rest[2], const char **why);

#endif
