/*
 * proxy/http/head.c: head_check_request, the request checks llhttp leaves to the server. One
 * table of heads (built field by field, as llhttp's callbacks would), each with the verdict:
 * NULL (passes) or the start of the reason the front door logs with its 400.
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_request_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
