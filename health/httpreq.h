/*
 * Request framing for the admin listener: llhttp in strict mode plus our limits, with no I/O, so
 * the same code runs in the server and in the fuzz harness (tests/fuzz/httpreq.c).
 *
 * Feed bytes as they arrive; on_request fires once per complete request, in order, for pipelined
 * requests too. Data callbacks of llhttp may split the URL anywhere; it is joined here.
 */
#ifndef PG_HEALTH_HTTPREQ_H
#define PG_HEALTH_HTTPREQ_H

#include <llhttp.h>
#include <stddef.h>

#define HTTPREQ_MAX_HEADER_BYTES (8u << 10)	/* request line + headers; more is 431 */
#define HTTPREQ_MAX_URL (2u << 10)		/* more is 414 */

struct httpreq {
	int method;		/* llhttp_method_t */
	const char *url;	/* NUL-terminated; valid during the callback only */
	size_t url_len;
	int keep_alive;
};

/* Return 0 to keep parsing, 1 to pause (e.g. the connection will close after this response). */
typedef int (*httpreq_cb)(void *arg, const struct httpreq *req);

struct httpreq_parser {
	llhttp_t parser;
	llhttp_settings_t settings;
	httpreq_cb on_request;
	void (*on_begin)(void *arg);	/* first byte of a request; may be NULL */
	void *arg;
	char url[HTTPREQ_MAX_URL + 1];
	size_t url_len, header_bytes;
	int limit;		/* 414 or 431 once a limit was hit */
	int in_request;
};

/* Results of httpreq_feed. */
enum { HTTPREQ_OK = 0, HTTPREQ_PAUSED = 1 };

void httpreq_init(struct httpreq_parser *hp, httpreq_cb on_request, void (*on_begin)(void *arg),
    void *arg);

/*
 * Parses len bytes. Returns HTTPREQ_OK (all consumed), HTTPREQ_PAUSED (on_request asked to pause;
 * the rest is not parsed), or an HTTP status to answer before closing: 400, 414 or 431. On an error
 * *why (if not NULL) says what was wrong, for the log line.
 */
int httpreq_feed(struct httpreq_parser *hp, const char *data, size_t len, const char **why);

#endif
