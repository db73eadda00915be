/*
 * HTTP message heads as the proxy sees them: collected from llhttp's data callbacks (which may split
 * any token anywhere), bounded, and rewritten for the other side.
 *
 * A head keeps its bytes in one owned buffer; fields are offsets into it, so a head survives the
 * read buffer it was parsed from.
 */
#ifndef PG_PROXY_HTTP_HEAD_H
#define PG_PROXY_HTTP_HEAD_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct head_field {
	size_t name_off, name_len, value_off, value_len;
};

struct head {
	struct pg_buf bytes;		/* url or status text, then names and values; max = byte limit */
	size_t url_off, url_len;	/* request target (requests) or reason phrase (responses) */
	struct head_field *fields;
	size_t nfields, max_fields;
	int in_value;			/* the last callback was a value: a new field starts next */
	int limit;			/* 0, or 414 / 431 once a limit was hit */
	size_t max_url;
};

/* Limits: max_bytes for everything, max_fields fields, max_url for the target. 0 or PG_ENOMEM. */
int head_init(struct head *h, size_t max_bytes, size_t max_fields, size_t max_url);
void head_reset(struct head *h);	/* for the next message, keeps memory */
void head_free(struct head *h);

/* llhttp data callbacks append through these; each returns 0 or HPE_USER with h->limit set. */
int head_add_url(struct head *h, const char *at, size_t len);
int head_add_name(struct head *h, const char *at, size_t len);
int head_add_value(struct head *h, const char *at, size_t len);

struct pg_slice head_url(const struct head *h);
struct pg_slice head_name(const struct head *h, size_t i);
struct pg_slice head_value(const struct head *h, size_t i);
/* The first field named name (case-insensitive), or a slice with p == NULL. */
struct pg_slice head_get(const struct head *h, const char *name);

/* Whether field i is hop-by-hop (RFC 9110 7.6.1): fixed names plus those listed in Connection. */
int head_is_hop_by_hop(const struct head *h, size_t i);

/*
 * The checks of a request head that llhttp (strict as it is) leaves to the server, for the head
 * just parsed: version 1.0 or 1.1 (llhttp takes "GET /x" as HTTP/0.9), exactly one valid Host in
 * HTTP/1.1 and at most one in 1.0 (RFC 9112 3.2: 400 otherwise), no Transfer-Encoding in HTTP/1.0
 * (RFC 9112 6.1: faulty framing), no CONNECT (we are not a forward proxy), and for a websocket
 * upgrade (websocket set) a GET with Sec-WebSocket-Version 13 and a Sec-WebSocket-Key of 16
 * base64 bytes (RFC 6455 4.2.1). Returns NULL if the head passes, else a static reason for the
 * log line of the 400 the caller answers.
 */
const char *head_check_request(const struct head *h, const char *method, int major, int minor,
    int websocket);

/* What the client said about the connection and the request, for building the upstream request. */
struct fwd_info {
	const char *client_ip;		/* X-Forwarded-For */
	const char *proto;		/* "https" */
	unsigned port;			/* X-Forwarded-Port: our listener's port */
	int websocket;			/* an Upgrade: websocket request */
	int chunked;			/* the request body is chunked: we re-chunk it */
	int drop_expect;		/* we answered Expect: 100-continue ourselves */
};

/*
 * Writes the request head for the instance: request line (HTTP/1.1), end-to-end fields, our
 * X-Forwarded-* and X-Scheme (replacing any the client sent: poolgate is the edge), Connection
 * (keep-alive, or Upgrade for websockets). Returns 0 or PG_ETOOBIG / PG_ENOMEM.
 */
int head_write_request(const struct head *h, const char *method, const struct fwd_info *fi,
    struct pg_buf *out);

/* Framing chosen for a response body towards the client. */
enum body_framing { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

/*
 * Writes the response head for the client: status line, end-to-end fields (Content-Length kept
 * when framing is BODY_LENGTH), then extra (whole header lines, may be NULL), Transfer-Encoding
 * for BODY_CHUNKED, and Connection. For 101 the Upgrade/Connection fields pass unchanged.
 */
int head_write_response(const struct head *h, int status, enum body_framing framing,
    int keep_alive, const char *extra, struct pg_buf *out);

#endif
