/*
 * Request framing for the admin listener: llhttp in strict mode plus our limits, with no I/O, so
 * the same code runs in the server and in the fuzz harness (tests/fuzz/httpreq.c).
 *
 * Feed bytes as they arrive; on_request fires once per complete request, in order, for pipelined
 * requests too. Data callbacks of llhttp may split the URL, a header or the body anywhere; what
 * the admin API needs is joined here: the URL, the Authorization header and a small body.
 */
#ifndef PG_HEALTH_HTTPREQ_H
#define PG_HEALTH_HTTPREQ_H

#include <llhttp.h>
#include <stddef.h>

#define HTTPREQ_MAX_HEADER_BYTES (8u << 10)	/* request line + headers; more is 431 */
#define HTTPREQ_MAX_URL (2u << 10)		/* more is 414 */
#define HTTPREQ_MAX_AUTH (2u << 10)		/* Authorization value; more is 431 */
#define HTTPREQ_MAX_BODY (16u << 10)		/* request body; more is 413 */
#define HTTPREQ_NAME_MAX 32			/* longer header names are none we read */

struct httpreq {
	int method;		/* llhttp_method_t */
	const char *url;	/* NUL-terminated; valid during the callback only */
	size_t url_len;
	int keep_alive;
	const char *authorization;	/* the header's value, NUL-terminated; NULL when absent */
	size_t authorization_len;
	const char *body;	/* NUL-terminated (it may hold NULs itself); "" when none */
	size_t body_len;
};

/* Return 0 to keep parsing, 1 to pause (e.g. the connection will close after this response). */
typedef int (*httpreq_cb)(void *arg, const struct httpreq *req);

enum httpreq_header { HRH_OTHER, HRH_AUTHORIZATION, HRH_EXPECT };

struct httpreq_parser {
	llhttp_t parser;
	llhttp_settings_t settings;
	httpreq_cb on_request;
	void (*on_begin)(void *arg);	/* first byte of a request; may be NULL */
	/* The head asked for "Expect: 100-continue" and a body follows; may be NULL. */
	void (*on_continue)(void *arg);
	void *arg;
	char url[HTTPREQ_MAX_URL + 1];
	size_t url_len, header_bytes;
	char name[HTTPREQ_NAME_MAX + 1];	/* the header name being read, while short */
	size_t name_len;
	enum httpreq_header header;		/* which header the value being read belongs to */
	char auth[HTTPREQ_MAX_AUTH + 1];
	size_t auth_len;
	int has_auth;
	char expect[16];
	size_t expect_len;
	char body[HTTPREQ_MAX_BODY + 1];
	size_t body_len;
	int limit;		/* 400, 413, 414 or 431 once a limit was hit */
	const char *limit_why;
	int in_request;
};

/* Results of httpreq_feed. */
enum { HTTPREQ_OK = 0, HTTPREQ_PAUSED = 1 };

void httpreq_init(struct httpreq_parser *hp, httpreq_cb on_request, void (*on_begin)(void *arg),
    void *arg);

/*
 * Parses len bytes. Returns HTTPREQ_OK (all consumed), HTTPREQ_PAUSED (on_request asked to pause;
 * the rest is not parsed), or an HTTP status to answer before closing: 400, 413, 414 or 431. On an
 * error *why (if not NULL) says what was wrong, for the log line.
 */
int httpreq_feed(struct httpreq_parser *hp, const char *data, size_t len, const char **why);

#endif
