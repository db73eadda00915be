/* core/proxyproto.c: PROXY protocol v1 and v2 headers, strictly per proxy-protocol.txt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/addr.h"
#include "core/err.h"
#include "core/proxyproto.h"

static const uint8_t sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49,
	0x54, 0x0a };

static int
parse_str(const char *s, struct proxyproto_hdr *h, const char **why)
{
	return proxyproto_parse((const uint8_t *)s, strlen(s), h, why);
}

static const char *
src_text(const struct proxyproto_hdr *h, char *buf)
{
	return pg_addr_format((const struct sockaddr *)&h->src, buf);
}

static void
test_v1_tcp4(void **state)
{
	const char *line = "PROXY TCP4 192.0.2.7 10.0.0.4 50022 2222\r\nSSH-2.0-x\r\n";
	struct proxyproto_hdr h;
	const char *why;
	char buf[PG_ADDRSTRLEN];

	assert_int_equal(parse_str(line, &h, &why), 1);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.local, 0);
	assert_int_equal(h.len, strlen("PROXY TCP4 192.0.2.7 10.0.0.4 50022 2222\r\n"));
	assert_string_equal(src_text(&h, buf), "192.0.2.7:50022");
	assert_string_equal(pg_addr_format((const struct sockaddr *)&h.dst, buf), "10.0.0.4:2222");
}

static void
test_v1_tcp6_and_unknown(void **state)
{
	struct proxyproto_hdr h;
	const char *why;
	char buf[PG_ADDRSTRLEN];

	assert_int_equal(parse_str("PROXY TCP6 2001:db8::7 2001:db8::1 0 443\r\n", &h, &why), 1);
	assert_string_equal(src_text(&h, buf), "[2001:db8::7]:0");
	/* UNKNOWN: whatever follows up to the CRLF is ignored; the real endpoints count. */
	assert_int_equal(parse_str("PROXY UNKNOWN\r\n", &h, &why), 1);
	assert_int_equal(h.local, 1);
	assert_int_equal(h.len, 15);
	assert_int_equal(parse_str("PROXY UNKNOWN ffff::1 ::2 1 2\r\n", &h, &why), 1);
	assert_int_equal(h.local, 1);
	assert_int_equal(parse_str("PROXY UNKNOWNX\r\n", &h, &why), PG_EPARSE);
}

static void
test_v1_longest_lines(void **state)
{
	char line[200];
	struct proxyproto_hdr h;
	const char *why;
	const char *v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

	/* 104 bytes: the longest TCP6 line the specification lists. */
	snprintf(line, sizeof(line), "PROXY TCP6 %s %s 65535 65535\r\n", v6, v6);
	assert_int_equal(strlen(line), 104);
	assert_int_equal(parse_str(line, &h, &why), 1);
	/* 107: the worst case, UNKNOWN with everything. One byte more is refused. */
	snprintf(line, sizeof(line), "PROXY UNKNOWN %s %s 65535 65535\r\n", v6, v6);
	assert_int_equal(strlen(line), 107);
	assert_int_equal(parse_str(line, &h, &why), 1);
	snprintf(line, sizeof(line), "PROXY UNKNOWN %s %s 65535 655350\r\n", v6, v6);
	assert_int_equal(parse_str(line, &h, &why), PG_EPARSE);
	assert_string_equal(why, "v1: no CRLF within 107 bytes");
}

static void
test_v1_strictness(void **state)
{
	static const char *const bad[] = {
		"PROXY TCP4 192.0.2.7 10.0.0.4 50022 2222\n",		/* LF alone */
		"PROXY TCP4 192.0.2.7 10.0.0.4 50022 2222\rX",		/* CR alone */
		"PROXY TCP4 192.0.2.7  10.0.0.4 50022 2222\r\n",	/* two spaces */
		"PROXY TCP4 192.0.2.07 10.0.0.4 50022 2222\r\n",	/* leading zero */
		"PROXY TCP4 192.0.2.256 10.0.0.4 50022 2222\r\n",
		"PROXY TCP4 192.0.2 10.0.0.4 50022 2222\r\n",
		"PROXY TCP4 192.0.2.7 10.0.0.4 050022 2222\r\n",	/* leading zero port */
		"PROXY TCP4 192.0.2.7 10.0.0.4 65536 2222\r\n",
		"PROXY TCP4 2001:db8::1 10.0.0.4 1 2\r\n",		/* family mismatch */
		"PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n",
		"PROXY TCP4 192.0.2.7 10.0.0.4 50022\r\n",		/* a field missing */
		"PROXY TCP4 192.0.2.7 10.0.0.4 50022 2222 9\r\n",	/* one too many */
		"PROXY UDP4 192.0.2.7 10.0.0.4 50022 2222\r\n",
		"PROXY tcp4 192.0.2.7 10.0.0.4 50022 2222\r\n",
		"PROXYTCP4 192.0.2.7 10.0.0.4 50022 2222\r\n",
		"PROXY TCP4 192.0.2.7 10.0.0.4 50022 2222 \r\n",
		"SSH-2.0-OpenSSH_9.2\r\n",
		"GET / HTTP/1.1\r\n",
	};
	struct proxyproto_hdr h;
	const char *why;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (parse_str(bad[i], &h, &why) != PG_EPARSE)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(why);
	}
}

static void
test_prefixes_need_more(void **state)
{
	const char *line = "PROXY TCP4 192.0.2.7 10.0.0.4 50022 2222\r\n";
	struct proxyproto_hdr h;
	const char *why;

	for (size_t i = 0; i < strlen(line); i++)
		assert_int_equal(proxyproto_parse((const uint8_t *)line, i, &h, &why), 0);
	/* A wrong byte is decisive at once, long before the CRLF would be. */
	assert_int_equal(proxyproto_parse((const uint8_t *)"PROXX", 5, &h, &why), PG_EPARSE);
	assert_int_equal(proxyproto_parse(sig, 5, &h, &why), 0);
}

/* A v2 header: ver_cmd, fam, the address block and TLVs as given. */
static size_t
v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *block, size_t blen)
{
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(blen >> 8);
	out[15] = (uint8_t)blen;
	memcpy(out + 16, block, blen);
	return 16 + blen;
}

static const uint8_t inet_block[12] = { 203, 0, 113, 9, 10, 0, 0, 4, 0xc3, 0x50, 0x08, 0xae };

static void
test_v2_inet(void **state)
{
	uint8_t buf[256];
	struct proxyproto_hdr h;
	const char *why;
	char text[PG_ADDRSTRLEN];
	size_t n = v2(buf, 0x21, 0x11, inet_block, sizeof(inet_block));

	memcpy(buf + n, "SSH-2.0-x\r\n", 11);
	assert_int_equal(proxyproto_parse(buf, n + 11, &h, &why), 1);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.len, 28);
	assert_int_equal(h.local, 0);
	assert_string_equal(src_text(&h, text), "203.0.113.9:50000");
	assert_string_equal(pg_addr_format((const struct sockaddr *)&h.dst, text), "10.0.0.4:2222");
	for (size_t i = 0; i < n; i++)
		assert_int_equal(proxyproto_parse(buf, i, &h, &why), 0);
}

static void
test_v2_inet6(void **state)
{
	uint8_t block[36], buf[256];
	struct proxyproto_hdr h;
	const char *why;
	char text[PG_ADDRSTRLEN];

	memset(block, 0, sizeof(block));
	inet_pton(AF_INET6, "2001:db8::9", block);
	inet_pton(AF_INET6, "2001:db8::1", block + 16);
	block[32] = 0x01;
	block[33] = 0x02;
	block[35] = 22;
	assert_int_equal(proxyproto_parse(buf, v2(buf, 0x21, 0x21, block, 36), &h, &why), 1);
	assert_string_equal(src_text(&h, text), "[2001:db8::9]:258");
	/* A block shorter than the family needs is refused. */
	assert_int_equal(proxyproto_parse(buf, v2(buf, 0x21, 0x21, block, 35), &h, &why),
	    PG_EPARSE);
}

static void
test_v2_local_and_fallbacks(void **state)
{
	uint8_t buf[512], junk[216];
	struct proxyproto_hdr h;
	const char *why;

	/* LOCAL: the block is skipped whatever it holds, the family included. */
	memset(junk, 0xee, sizeof(junk));
	assert_int_equal(proxyproto_parse(buf, v2(buf, 0x20, 0x00, junk, 0), &h, &why), 1);
	assert_int_equal(h.local, 1);
	assert_int_equal(h.len, 16);
	assert_int_equal(proxyproto_parse(buf, v2(buf, 0x20, 0xff, junk, 20), &h, &why), 1);
	assert_int_equal(h.local, 1);
	assert_int_equal(h.len, 36);
	/* PROXY with UNSPEC, UNIX or a datagram protocol: valid, the real endpoints count. */
	assert_int_equal(proxyproto_parse(buf, v2(buf, 0x21, 0x00, junk, 7), &h, &why), 1);
	assert_int_equal(h.local, 1);
	memset(junk, 0, sizeof(junk));
	assert_int_equal(proxyproto_parse(buf, v2(buf, 0x21, 0x31, junk, 216), &h, &why), 1);
	assert_int_equal(h.local, 1);
	assert_int_equal(proxyproto_parse(buf, v2(buf, 0x21, 0x12, inet_block, 12), &h, &why), 1);
	assert_int_equal(h.local, 1);
}

static void
test_v2_bad_head(void **state)
{
	uint8_t buf[4096];
	struct proxyproto_hdr h;
	const char *why;

	assert_int_equal(proxyproto_parse(buf, v2(buf, 0x11, 0x11, inet_block, 12), &h, &why),
	    PG_EPARSE);	/* version 1 in the binary form */
	assert_int_equal(proxyproto_parse(buf, v2(buf, 0x22, 0x11, inet_block, 12), &h, &why),
	    PG_EPARSE);	/* command 2 */
	assert_int_equal(proxyproto_parse(buf, v2(buf, 0x21, 0x41, inet_block, 12), &h, &why),
	    PG_EPARSE);	/* family 4 */
	assert_int_equal(proxyproto_parse(buf, v2(buf, 0x21, 0x13, inet_block, 12), &h, &why),
	    PG_EPARSE);	/* protocol 3 */
	/* Decisive from the 16-byte head alone: no waiting for the announced block. */
	v2(buf, 0x21, 0x11, inet_block, 12);
	buf[14] = 0xff;
	buf[15] = 0xff;
	assert_int_equal(proxyproto_parse(buf, 16, &h, &why), PG_ETOOBIG);
	buf[14] = 0x07;
	buf[15] = 0xf1;	/* 2033 + 16 > PROXYPROTO_MAX */
	assert_int_equal(proxyproto_parse(buf, 16, &h, &why), PG_ETOOBIG);
	buf[15] = 0xf0;	/* exactly PROXYPROTO_MAX: accepted once it is all there */
	assert_int_equal(proxyproto_parse(buf, 16, &h, &why), 0);
}

/* The address block for TCP over IPv4 followed by tlvs. */
static size_t
with_tlvs(uint8_t *buf, const uint8_t *tlv, size_t tlen)
{
	uint8_t block[512];

	memcpy(block, inet_block, 12);
	memcpy(block + 12, tlv, tlen);
	return v2(buf, 0x21, 0x11, block, 12 + tlen);
}

static void
test_v2_tlvs(void **state)
{
	/* NOOP (3 bytes), UNIQUE_ID "abc", a custom type, then SSL with a VERSION sub-TLV. */
	static const uint8_t good[] = { 0x04, 0x00, 0x03, 0, 0, 0, 0x05, 0x00, 0x03, 'a', 'b', 'c',
		0xe0, 0x00, 0x00, 0x20, 0x00, 0x0b, 0x01, 0, 0, 0, 0, 0x21, 0x00, 0x03, '1', '.',
		'3' };
	static const uint8_t overrun[] = { 0x04, 0x00, 0x05, 0, 0 };
	static const uint8_t stub[] = { 0x04, 0x00 };
	static const uint8_t bad_ssl[] = { 0x20, 0x00, 0x07, 0x01, 0, 0, 0, 0, 0x21, 0x00 };
	uint8_t buf[1024], long_id[3 + 129];
	struct proxyproto_hdr h;
	const char *why;

	assert_int_equal(proxyproto_parse(buf, with_tlvs(buf, good, sizeof(good)), &h, &why), 1);
	assert_int_equal(h.ntlvs, 4);
	assert_int_equal(h.local, 0);
	assert_int_equal(proxyproto_parse(buf, with_tlvs(buf, overrun, sizeof(overrun)), &h, &why),
	    PG_EPARSE);
	assert_int_equal(proxyproto_parse(buf, with_tlvs(buf, stub, sizeof(stub)), &h, &why),
	    PG_EPARSE);
	assert_int_equal(proxyproto_parse(buf, with_tlvs(buf, bad_ssl, sizeof(bad_ssl)), &h, &why),
	    PG_EPARSE);
	memset(long_id, 'x', sizeof(long_id));
	long_id[0] = 0x05;
	long_id[1] = 0;
	long_id[2] = 129;
	assert_int_equal(proxyproto_parse(buf, with_tlvs(buf, long_id, sizeof(long_id)), &h, &why),
	    PG_EPARSE);
	long_id[2] = 128;
	assert_int_equal(proxyproto_parse(buf, with_tlvs(buf, long_id, sizeof(long_id) - 1), &h,
	    &why), 1);
}

static void
test_v2_crc32c(void **state)
{
	uint8_t tlv[7] = { 0x03, 0x00, 0x04, 0, 0, 0, 0 }, buf[256];
	struct proxyproto_hdr h;
	const char *why;
	size_t n;
	uint32_t crc;

	/* The check value of CRC-32C (RFC 3720 B.4 lists it). */
	assert_int_equal(proxyproto_crc32c((const uint8_t *)"123456789", 9), 0xe3069283);
	n = with_tlvs(buf, tlv, sizeof(tlv));
	crc = proxyproto_crc32c(buf, n);
	buf[n - 4] = (uint8_t)(crc >> 24);
	buf[n - 3] = (uint8_t)(crc >> 16);
	buf[n - 2] = (uint8_t)(crc >> 8);
	buf[n - 1] = (uint8_t)crc;
	assert_int_equal(proxyproto_parse(buf, n, &h, &why), 1);
	assert_int_equal(h.crc_checked, 1);
	buf[17] ^= 1;	/* the client address, as if rewritten on the way */
	assert_int_equal(proxyproto_parse(buf, n, &h, &why), PG_EPARSE);
	assert_string_equal(why, "v2: CRC32C mismatch");
}

static void
test_looks_like(void **state)
{
	assert_true(proxyproto_looks_like((const uint8_t *)"PROXY TCP4", 10));
	assert_true(proxyproto_looks_like((const uint8_t *)"PRO", 3));
	assert_true(proxyproto_looks_like(sig, 12));
	assert_true(proxyproto_looks_like(sig, 3));
	assert_false(proxyproto_looks_like((const uint8_t *)"SSH-2.0-x\r\n", 11));
	assert_false(proxyproto_looks_like((const uint8_t *)"\x16\x03\x01", 3));
	assert_false(proxyproto_looks_like((const uint8_t *)"PUT /", 5));
	assert_false(proxyproto_looks_like((const uint8_t *)"", 0));
}

static void
test_reader_split_reads(void **state)
{
	const char *all = "PROXY TCP4 192.0.2.7 10.0.0.4 50022 2222\r\nSSH-2.0-client\r\n";
	struct proxyproto_reader r;
	struct proxyproto_hdr h;
	struct pg_slice rest[2];
	const char *why;
	size_t hl = strlen("PROXY TCP4 192.0.2.7 10.0.0.4 50022 2222\r\n");

	memset(&r, 0, sizeof(r));
	assert_int_equal(proxyproto_reader_feed(&r, (const uint8_t *)all, 10, &h, rest, &why), 0);
	assert_int_equal(proxyproto_reader_feed(&r, (const uint8_t *)all + 10, strlen(all) - 10, &h,
	    rest, &why), 1);
	assert_int_equal(h.len, hl);
	assert_int_equal(rest[0].len + rest[1].len, strlen(all) - hl);
	assert_memory_equal(rest[0].p, all + hl, rest[0].len);
	assert_memory_equal(rest[1].p, all + hl + rest[0].len, rest[1].len);
}

static void
test_reader_bounded(void **state)
{
	static uint8_t big[8192];
	struct proxyproto_reader r;
	struct proxyproto_hdr h;
	struct pg_slice rest[2];
	const char *why;
	size_t n;

	/* A maximal v2 header in one read, with more bytes than the reader holds behind it. */
	memset(big, 0, sizeof(big));
	n = v2(big, 0x20, 0x00, big + 4096, PROXYPROTO_MAX - 16);
	assert_int_equal(n, PROXYPROTO_MAX);
	memset(&r, 0, sizeof(r));
	assert_int_equal(proxyproto_reader_feed(&r, big, sizeof(big), &h, rest, &why), 1);
	assert_int_equal(rest[0].len, 0);
	assert_int_equal(rest[1].len, sizeof(big) - PROXYPROTO_MAX);
	assert_ptr_equal(rest[1].p, big + PROXYPROTO_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6_and_unknown),
		cmocka_unit_test(test_v1_longest_lines),
		cmocka_unit_test(test_v1_strictness),
		cmocka_unit_test(test_prefixes_need_more),
		cmocka_unit_test(test_v2_inet),
		cmocka_unit_test(test_v2_inet6),
		cmocka_unit_test(test_v2_local_and_fallbacks),
		cmocka_unit_test(test_v2_bad_head),
		cmocka_unit_test(test_v2_tlvs),
		cmocka_unit_test(test_v2_crc32c),
		cmocka_unit_test(test_looks_like),
		cmocka_unit_test(test_reader_split_reads),
		cmocka_unit_test(test_reader_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
