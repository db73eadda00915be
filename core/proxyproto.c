/*
 * PROXY protocol header parsing (HAProxy's proxy-protocol.txt, 2020/03/05). Section numbers in
 * comments refer to that document.
 */
#include "core/proxyproto.h"
#include "core/err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* 2.2: the v2 signature; it holds a NUL, so it is never handled as a string. */
static const uint8_t v2sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49,
	0x54, 0x0a };

enum {
	PP2_CMD_LOCAL = 0x0,
	PP2_CMD_PROXY = 0x1,
	PP2_AF_UNSPEC = 0x0,
	PP2_AF_INET = 0x1,
	PP2_AF_INET6 = 0x2,
	PP2_AF_UNIX = 0x3,
	PP2_PROTO_UNSPEC = 0x0,
	PP2_PROTO_STREAM = 0x1,
	PP2_PROTO_DGRAM = 0x2,
	PP2_TYPE_CRC32C = 0x03,
	PP2_TYPE_UNIQUE_ID = 0x05,
	PP2_TYPE_SSL = 0x20,
};

#define UNIQUE_ID_MAX 128	/* 2.2.5 */

const char *
proxyproto_result_name(enum proxyproto_result r)
{
	static const char *const names[PPR_N] = { "v1", "v2", "local", "invalid", "timeout",
		"untrusted" };

	return (unsigned)r < PPR_N ? names[r] : "?";
}

enum proxyproto_result
proxyproto_result_of(const struct proxyproto_hdr *h)
{
	return h->local ? PPR_LOCAL : h->version == 1 ? PPR_V1 : PPR_V2;
}

uint32_t
proxyproto_crc32c(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xffffffffu;

	/* Bit by bit: headers are at most PROXYPROTO_MAX bytes, once per connection. */
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return crc ^ 0xffffffffu;
}

int
proxyproto_looks_like(const uint8_t *p, size_t n)
{
	if (n == 0)
		return 0;
	if (p[0] == 'P')
		return memcmp(p, "PROXY", n < 5 ? n : 5) == 0;
	if (p[0] == 0x0d)
		return memcmp(p, v2sig, n < 12 ? n : 12) == 0;
	return 0;
}

/* ---- version 1 (2.1) ---- */

/* A decimal number of 1..maxdigits digits without a leading zero, at most max. */
static int
dec(const char *s, size_t len, unsigned maxdigits, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (len == 0 || len > maxdigits || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Exactly four decimal parts 0..255 joined by single dots, no leading zeros. */
static int
v1_ipv4(const char *s, size_t len, struct in_addr *out)
{
	uint8_t b[4];
	size_t start = 0;
	int part = 0;

	for (size_t i = 0; i <= len; i++) {
		unsigned long v;

		if (i < len && s[i] != '.')
			continue;
		if (part == 4 || dec(s + start, i - start, 3, 255, &v) != 0)
			return -1;
		b[part++] = (uint8_t)v;
		start = i + 1;
	}
	if (part != 4)
		return -1;
	memcpy(&out->s_addr, b, 4);
	return 0;
}

static int
v1_ipv6(const char *s, size_t len, struct in6_addr *out)
{
	char tmp[INET6_ADDRSTRLEN];

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (strchr("0123456789abcdefABCDEF:.", s[i]) == NULL || s[i] == '\0')
			return -1;
	}
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return inet_pton(AF_INET6, tmp, out) == 1 ? 0 : -1;
}

/* Splits line[0..len) at single spaces into at most max fields; -1 on an empty field. */
static int
fields(const char *line, size_t len, struct pg_slice *f, int max)
{
	size_t start = 0;
	int n = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != ' ')
			continue;
		if (n == max || i == start)
			return -1;
		f[n].p = (const uint8_t *)line + start;
		f[n].len = i - start;
		n++;
		start = i + 1;
	}
	return n;
}

static int
slice_is(struct pg_slice s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* One v1 address of family into ss (its port comes later). */
static int
v1_addr(int family, struct pg_slice f, struct sockaddr_storage *ss)
{
	if (family == AF_INET) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		return v1_ipv4((const char *)f.p, f.len, &((struct sockaddr_in *)ss)->sin_addr);
	}
	((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
	return v1_ipv6((const char *)f.p, f.len, &((struct sockaddr_in6 *)ss)->sin6_addr);
}

static void
set_port(struct sockaddr_storage *ss, unsigned long port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/* The line without its CRLF. */
static int
v1_line(const char *line, size_t len, struct proxyproto_hdr *out, const char **why)
{
	struct pg_slice f[6];
	unsigned long sport, dport;
	int family;

	/* "PROXY UNKNOWN" and whatever follows it up to the CRLF, which is ignored. */
	if (len >= 13 && memcmp(line, "PROXY UNKNOWN", 13) == 0 && (len == 13 || line[13] == ' ')) {
		out->local = 1;
		return 1;
	}
	/* "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport */
	if (fields(line, len, f, 6) != 6) {
		*why = "v1: expected PROXY, a protocol, two addresses and two ports, single spaces";
		return PG_EPARSE;
	}
	if (slice_is(f[1], "TCP4"))
		family = AF_INET;
	else if (slice_is(f[1], "TCP6"))
		family = AF_INET6;
	else {
		*why = "v1: protocol is not TCP4, TCP6 or UNKNOWN";
		return PG_EPARSE;
	}
	if (v1_addr(family, f[2], &out->src) != 0 || v1_addr(family, f[3], &out->dst) != 0) {
		*why = family == AF_INET ? "v1: invalid IPv4 address" : "v1: invalid IPv6 address";
		return PG_EPARSE;
	}
	if (dec((const char *)f[4].p, f[4].len, 5, 65535, &sport) != 0 ||
	    dec((const char *)f[5].p, f[5].len, 5, 65535, &dport) != 0) {
		*why = "v1: invalid port";
		return PG_EPARSE;
	}
	set_port(&out->src, sport);
	set_port(&out->dst, dport);
	return 1;
}

static int
parse_v1(const uint8_t *p, size_t n, struct proxyproto_hdr *out, const char **why)
{
	size_t i;

	if (memcmp(p, "PROXY ", n < 6 ? n : 6) != 0) {
		*why = "not a PROXY protocol header";
		return PG_EPARSE;
	}
	/* The CRLF must end within the first 107 bytes; a lone CR or LF ends nothing (2.1). */
	for (i = 0; i < n && i + 2 <= PROXYPROTO_V1_MAX; i++) {
		if (p[i] == '\n') {
			*why = "v1: LF without CR";
			return PG_EPARSE;
		}
		if (p[i] != '\r')
			continue;
		if (i + 1 == n)
			return 0;
		if (p[i + 1] != '\n') {
			*why = "v1: CR without LF";
			return PG_EPARSE;
		}
		out->version = 1;
		out->len = i + 2;
		return v1_line((const char *)p, i, out, why);
	}
	if (i + 2 > PROXYPROTO_V1_MAX) {
		*why = "v1: no CRLF within 107 bytes";
		return PG_EPARSE;
	}
	return 0;
}

/* ---- version 2 (2.2) ---- */

static uint16_t
be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The CRC32c of the header with the 4 bytes at `at` taken as zeros (2.2.3). */
static uint32_t
crc_zeroed(const uint8_t *p, size_t len, size_t at)
{
	uint8_t copy[PROXYPROTO_MAX];

	memcpy(copy, p, len);
	memset(copy + at, 0, 4);
	return proxyproto_crc32c(copy, len);
}

/*
 * TLVs in p[off..end): each uint8 type, uint16 length, value; together they must fill the block
 * exactly. top: the header's own list (counted, types interpreted), not PP2_TYPE_SSL's sub-TLVs.
 */
static int
tlvs(const uint8_t *p, size_t off, size_t end, int top, struct proxyproto_hdr *out,
    const char **why)
{
	int seen_crc = 0;

	while (off < end) {
		uint8_t type;
		size_t vlen, v;

		if (end - off < 3 || (vlen = be16(p + off + 1)) > end - off - 3) {
			*why = "v2: a TLV overruns the header";
			return PG_EPARSE;
		}
		type = p[off];
		v = off + 3;
		off = v + vlen;
		if (!top)
			continue;
		out->ntlvs++;
		switch (type) {
		case PP2_TYPE_CRC32C:
			/* uint32 crc32c, network order, of the header with this field zeroed */
			if (vlen != 4 || seen_crc) {
				*why = "v2: bad or repeated CRC32C TLV";
				return PG_EPARSE;
			}
			seen_crc = 1;
			if (crc_zeroed(p, out->len, v) != ((uint32_t)be16(p + v) << 16 | be16(p + v + 2))) {
				*why = "v2: CRC32C mismatch";
				return PG_EPARSE;
			}
			out->crc_checked = 1;
			break;
		case PP2_TYPE_UNIQUE_ID:
			if (vlen > UNIQUE_ID_MAX) {
				*why = "v2: UNIQUE_ID longer than 128 bytes";
				return PG_EPARSE;
			}
			break;
		case PP2_TYPE_SSL:
			/* uint8 client, uint32 verify, then sub-TLVs (2.2.6) */
			if (vlen < 5 || tlvs(p, v + 5, v + vlen, 0, out, why) != 0) {
				*why = "v2: malformed SSL TLV";
				return PG_EPARSE;
			}
			break;
		default:
			break;	/* NOOP, ALPN, AUTHORITY, NETNS, custom: nothing poolgate uses */
		}
	}
	return 0;
}

/* An address and its port, in network order, from the v2 address block. */
static void
v2_addr(struct sockaddr_storage *ss, int inet4, const uint8_t *addr, const uint8_t *port)
{
	if (inet4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, addr, 4);
		memcpy(&sin->sin_port, port, 2);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, addr, 16);
		memcpy(&sin6->sin6_port, port, 2);
	}
}

static int
parse_v2(const uint8_t *p, size_t n, struct proxyproto_hdr *out, const char **why)
{
	uint8_t cmd, family, proto;
	size_t total, alen, a, need = 0;

	if (memcmp(p, v2sig, n < 12 ? n : 12) != 0) {
		*why = "not a PROXY protocol header";
		return PG_EPARSE;
	}
	if (n < 16)
		return 0;
	/* uint8 sig[12], uint8 ver_cmd, uint8 fam, uint16 len */
	if ((p[12] >> 4) != 2) {
		*why = "v2: version is not 2";
		return PG_EPARSE;
	}
	cmd = p[12] & 0x0f;
	family = p[13] >> 4;
	proto = p[13] & 0x0f;
	alen = be16(p + 14);
	total = 16 + alen;
	if (cmd != PP2_CMD_LOCAL && cmd != PP2_CMD_PROXY) {
		*why = "v2: unknown command";
		return PG_EPARSE;
	}
	/* LOCAL: the family is ignored, with the whole block (2.2). */
	if (cmd == PP2_CMD_PROXY && (family > PP2_AF_UNIX || proto > PP2_PROTO_DGRAM)) {
		*why = "v2: unknown address family or protocol";
		return PG_EPARSE;
	}
	if (total > PROXYPROTO_MAX) {
		*why = "v2: header longer than poolgate accepts";
		return PG_ETOOBIG;
	}
	if (n < total)
		return 0;
	out->version = 2;
	out->len = total;
	if (cmd == PP2_CMD_LOCAL || family == PP2_AF_UNSPEC || proto == PP2_PROTO_UNSPEC) {
		out->local = 1;
		return 1;
	}
	switch (family) {
	case PP2_AF_INET: need = 12; break;
	case PP2_AF_INET6: need = 36; break;
	default: need = 216; break;	/* AF_UNIX: two 108-byte paths */
	}
	if (alen < need) {
		*why = "v2: address block shorter than its family needs";
		return PG_EPARSE;
	}
	if (tlvs(p, 16 + need, total, 1, out, why) != 0)
		return PG_EPARSE;
	if (family == PP2_AF_UNIX || proto == PP2_PROTO_DGRAM) {
		out->local = 1;		/* valid, but nothing poolgate can route by */
		return 1;
	}
	/*
	 * AF_INET:  uint32 src_addr, uint32 dst_addr, uint16 src_port, uint16 dst_port
	 * AF_INET6: uint8 src_addr[16], uint8 dst_addr[16], uint16 src_port, uint16 dst_port
	 */
	a = family == PP2_AF_INET ? 4 : 16;
	v2_addr(&out->src, family == PP2_AF_INET, p + 16, p + 16 + 2 * a);
	v2_addr(&out->dst, family == PP2_AF_INET, p + 16 + a, p + 18 + 2 * a);
	return 1;
}

int
proxyproto_parse(const uint8_t *p, size_t n, struct proxyproto_hdr *out, const char **why)
{
	struct proxyproto_hdr h;
	int r;

	memset(&h, 0, sizeof(h));
	*why = NULL;
	if (n == 0)
		return 0;
	if (p[0] == 'P')
		r = parse_v1(p, n, &h, why);
	else if (p[0] == 0x0d)
		r = parse_v2(p, n, &h, why);
	else {
		*why = "not a PROXY protocol header";
		r = PG_EPARSE;
	}
	if (r == 1)
		*out = h;
	return r;
}

int
proxyproto_reader_feed(struct proxyproto_reader *r, const uint8_t *p, size_t n,
    struct proxyproto_hdr *out, struct pg_slice rest[2], const char **why)
{
	size_t take = n < sizeof(r->buf) - r->len ? n : sizeof(r->buf) - r->len;
	int rc;

	memcpy(r->buf + r->len, p, take);
	r->len += take;
	rc = proxyproto_parse(r->buf, r->len, out, why);
	if (rc == 0 && r->len == sizeof(r->buf)) {
		/* Cannot happen with the bounds above; kept so a full buffer never waits. */
		*why = "header longer than poolgate accepts";
		return PG_ETOOBIG;
	}
	if (rc != 1)
		return rc;
	rest[0] = (struct pg_slice){ r->buf + out->len, r->len - out->len };
	rest[1] = (struct pg_slice){ p + take, n - take };
	return 1;
}
