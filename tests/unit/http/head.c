/*
 * proxy/http/head.c: head_check_request, the request checks llhttp leaves to the server. One
 * table of heads (built field by field, as llhttp's callbacks would), each with the verdict:
 * NULL (passes) or the start of the reason the front door logs with its 400. Then the heads
 * written on each side: hop-by-hop fields (fixed and named in Connection) dropped, the client's
 * forwarding fields replaced by ours, byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proxy/http/head.h"

struct hcase {
	const char *method;
	int major, minor, websocket;
	const char *fields[8];	/* "name", "value" pairs, NULL-terminated */
	const char *want;	/* NULL: passes; else the reason's start */
};

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

static const struct hcase cases[] = {
	{ "GET", 1, 1, 0, { "Host", "pool.test", NULL }, NULL },
	{ "GET", 1, 1, 0, { "Host", "pool.test:8443", NULL }, NULL },
	{ "GET", 1, 1, 0, { "Host", "127.0.0.1:65535", NULL }, NULL },
	{ "GET", 1, 1, 0, { "Host", "[2001:db8::1]:443", NULL }, NULL },
	{ "GET", 1, 0, 0, { NULL }, NULL },			/* HTTP/1.0 may leave Host out */
	{ "GET", 0, 9, 0, { NULL }, "HTTP version" },
	{ "GET", 2, 0, 0, { "Host", "a", NULL }, "HTTP version" },
	{ "GET", 1, 2, 0, { "Host", "a", NULL }, "HTTP version" },
	{ "CONNECT", 1, 1, 0, { "Host", "evil.test:443", NULL }, "CONNECT" },
	{ "GET", 1, 1, 0, { NULL }, "no Host" },
	{ "GET", 1, 1, 0, { "Host", "a", "host", "b", NULL }, "more than one Host" },
	{ "GET", 1, 0, 0, { "Host", "a", "HOST", "a", NULL }, "more than one Host" },
	{ "GET", 1, 1, 0, { "Host", "", NULL }, "invalid Host" },
	{ "GET", 1, 1, 0, { "Host", "pool test", NULL }, "invalid Host" },
	{ "GET", 1, 1, 0, { "Host", "user@evil.test/x", NULL }, "invalid Host" },
	{ "GET", 1, 1, 0, { "Host", "pool.test:http", NULL }, "invalid Host" },
	{ "GET", 1, 1, 0, { "Host", "pool.test:65536", NULL }, "invalid Host" },
	{ "GET", 1, 1, 0, { "Host", "pool.test:000443", NULL }, "invalid Host" },
	{ "GET", 1, 1, 0, { "Host", ":443", NULL }, "invalid Host" },
	{ "GET", 1, 1, 0, { "Host", "[::1", NULL }, "invalid Host" },
	{ "GET", 1, 1, 0, { "Host", "[::1]x", NULL }, "invalid Host" },
	{ "GET", 1, 1, 0, { "Host", "[[::1]", NULL }, "invalid Host" },
	{ "GET", 1, 1, 0, { "Host", "[::1]:", NULL }, NULL },	/* RFC 3986: port = *DIGIT */
	{ "POST", 1, 0, 0, { "Transfer-Encoding", "chunked", NULL }, "Transfer-Encoding" },
	{ "POST", 1, 1, 0, { "Host", "a", "Transfer-Encoding", "chunked", NULL }, NULL },
	{ "GET", 1, 1, 1, { "Host", "a", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", KEY,
	    NULL }, NULL },
	{ "POST", 1, 1, 1, { "Host", "a", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", KEY,
	    NULL }, "websocket upgrade not a GET" },
	{ "GET", 1, 1, 1, { "Host", "a", "Sec-WebSocket-Version", "99", "Sec-WebSocket-Key", KEY,
	    NULL }, "websocket upgrade without Sec-WebSocket-Version" },
	{ "GET", 1, 1, 1, { "Host", "a", "Sec-WebSocket-Key", KEY, NULL },
	    "websocket upgrade without Sec-WebSocket-Version" },
	{ "GET", 1, 1, 1, { "Host", "a", "Sec-WebSocket-Version", "13", NULL },
	    "websocket upgrade without a valid" },
	{ "GET", 1, 1, 1, { "Host", "a", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key",
	    "c2hvcnQ=", NULL }, "websocket upgrade without a valid" },
	{ "GET", 1, 1, 1, { "Host", "a", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key",
	    "!!!!!!!!!!!!!!!!!!!!!!==", NULL }, "websocket upgrade without a valid" },
	/* Not a websocket (another Upgrade was dropped): its fields are not looked at. */
	{ "GET", 1, 1, 0, { "Host", "a", "Sec-WebSocket-Version", "99", NULL }, NULL },
};

static void
test_check_request_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct hcase *c = &cases[i];
		struct head h;
		const char *why;

		assert_int_equal(head_init(&h, 8192, 32, 2048), 0);
		assert_int_equal(head_add_url(&h, "/", 1), 0);
		for (size_t f = 0; c->fields[f] != NULL; f += 2) {
			assert_int_equal(head_add_name(&h, c->fields[f], strlen(c->fields[f])), 0);
			assert_int_equal(head_add_value(&h, c->fields[f + 1],
			    strlen(c->fields[f + 1])), 0);
		}
		why = head_check_request(&h, c->method, c->major, c->minor, c->websocket);
		if (c->want == NULL) {
			if (why != NULL)
				fail_msg("case %zu: refused with \"%s\"", i, why);
		} else if (why == NULL || strncmp(why, c->want, strlen(c->want)) != 0) {
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, why ? why : "(passes)",
			    c->want);
		}
		head_free(&h);
	}
}

static void
build(struct head *h, const char *url, const char *const *fields)
{
	assert_int_equal(head_init(h, 8192, 32, 2048), 0);
	assert_int_equal(head_add_url(h, url, strlen(url)), 0);
	for (size_t f = 0; fields[f] != NULL; f += 2) {
		assert_int_equal(head_add_name(h, fields[f], strlen(fields[f])), 0);
		assert_int_equal(head_add_value(h, fields[f + 1], strlen(fields[f + 1])), 0);
	}
}

static void
assert_buf(const struct pg_buf *b, const char *want)
{
	if (b->len != strlen(want) || memcmp(b->p, want, b->len) != 0)
		fail_msg("got:\n%.*s\nwant:\n%s", (int)b->len, (const char *)b->p, want);
}

static void
test_write_request(void **state)
{
	static const char *const fields[] = {
		"Host", "pool.test", "X-Forwarded-For", "6.6.6.6", "Accept", "*/*",
		"Connection", "keep-alive, X-Secret", "x-secret", "dropped", "TE", "trailers",
		"X-Real-IP", "6.6.6.6", "Keep-Alive", "timeout=5", "Cookie", "a=1",
		"Forwarded", "for=6.6.6.6", "Proxy-Authorization", "Basic x", NULL };
	struct fwd_info fi = { .client_ip = "192.0.2.7", .proto = "https", .port = 8443 };
	struct pg_buf out;
	struct head h;

	(void)state;
	build(&h, "/hub/api?x=1", fields);
	pg_buf_init(&out, 8192);
	assert_int_equal(head_write_request(&h, "GET", &fi, &out), 0);
	assert_buf(&out, "GET /hub/api?x=1 HTTP/1.1\r\n"
	    "Host: pool.test\r\nAccept: */*\r\nCookie: a=1\r\n"
	    "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\n"
	    "X-Forwarded-Port: 8443\r\nX-Scheme: https\r\nX-Forwarded-Host: pool.test\r\n"
	    "Connection: keep-alive\r\n\r\n");
	/* A field named by a Connection field that comes after it is hop-by-hop too. */
	assert_true(head_is_hop_by_hop(&h, 4));
	assert_false(head_is_hop_by_hop(&h, 2));
	pg_buf_free(&out);
	head_free(&h);
}

static void
test_write_response(void **state)
{
	static const char *const fields[] = {
		"Content-Type", "text/plain", "X-Trace", "1", "Content-Length", "5",
		"Transfer-Encoding", "identity", "connection", "x-trace", NULL };
	struct pg_buf out;
	struct head h;

	(void)state;
	build(&h, "OK", fields);
	pg_buf_init(&out, 8192);
	assert_int_equal(head_write_response(&h, 200, BODY_LENGTH, 1, "Set-Cookie: c=1\r\n",
	    &out), 0);
	assert_buf(&out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
	    "Set-Cookie: c=1\r\n\r\n");
	pg_buf_reset(&out);
	assert_int_equal(head_write_response(&h, 200, BODY_CHUNKED, 0, NULL, &out), 0);
	assert_buf(&out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
	pg_buf_free(&out);
	head_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_request_table),
		cmocka_unit_test(test_write_request),
		cmocka_unit_test(test_write_response),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
