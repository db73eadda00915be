#include "health/httpreq.h"
#include "core/buf.h"

#include <string.h>

static int
on_message_begin(llhttp_t *p)
{
	struct httpreq_parser *hp = p->data;

	hp->url_len = 0;
	hp->url[0] = '\0';
	hp->header_bytes = 0;
	hp->name_len = 0;
	hp->header = HRH_OTHER;
	hp->auth_len = 0;
	hp->auth[0] = '\0';
	hp->has_auth = 0;
	hp->expect_len = 0;
	hp->body_len = 0;
	hp->body[0] = '\0';
	hp->in_request = 1;
	if (hp->on_begin != NULL)
		hp->on_begin(hp->arg);
	return 0;
}

/* Counts request-line and header bytes as llhttp hands them over, in however many pieces. */
static int
count_header_bytes(struct httpreq_parser *hp, size_t len)
{
	hp->header_bytes += len;
	if (hp->header_bytes > HTTPREQ_MAX_HEADER_BYTES) {
		hp->limit = 431;
		hp->limit_why = "request line and headers over 8 KiB";
		return HPE_USER;
	}
	return 0;
}

static int
fail(struct httpreq_parser *hp, int status, const char *why)
{
	hp->limit = status;
	hp->limit_why = why;
	return HPE_USER;
}

/*
 * Joins a piece llhttp handed over to dst[0..*dlen) (room for max bytes and a NUL), keeping it
 * NUL-terminated. Returns 0, or -1 when it would pass max.
 */
static int
join(char *dst, size_t *dlen, size_t max, const char *at, size_t len)
{
	if (len > max - *dlen)
		return -1;
	memcpy(dst + *dlen, at, len);
	*dlen += len;
	dst[*dlen] = '\0';
	return 0;
}

/*
 * For values that matter only while short (a header name we look for, Expect): keeps the first max
 * bytes in dst and counts every byte in *dlen, so a longer value is known by its length and is
 * never copied past dst. (*dlen stays below the 8 KiB header limit.)
 */
static void
keep_short(char *dst, size_t *dlen, size_t max, const char *at, size_t len)
{
	if (*dlen <= max && len <= max - *dlen)
		memcpy(dst + *dlen, at, len);
	*dlen += len;
}

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
	struct httpreq_parser *hp = p->data;

	if (join(hp->url, &hp->url_len, HTTPREQ_MAX_URL, at, len) != 0)
		return fail(hp, 414, "request target over 2 KiB");
	return count_header_bytes(hp, len);
}

static int
on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct httpreq_parser *hp = p->data;

	keep_short(hp->name, &hp->name_len, HTTPREQ_NAME_MAX, at, len);
	return count_header_bytes(hp, len);
}

static int
name_is(const struct httpreq_parser *hp, const char *lit)
{
	return hp->name_len == strlen(lit) &&
	    pg_slice_eq_ci((struct pg_slice){ (const uint8_t *)hp->name, hp->name_len }, lit);
}

static int
on_header_field_complete(llhttp_t *p)
{
	struct httpreq_parser *hp = p->data;

	hp->header = name_is(hp, "authorization") ? HRH_AUTHORIZATION :
	    name_is(hp, "expect") ? HRH_EXPECT : HRH_OTHER;
	hp->name_len = 0;
	if (hp->header == HRH_AUTHORIZATION) {
		/* Two credentials in one request: which one counts would be a guess. */
		if (hp->has_auth)
			return fail(hp, 400, "more than one Authorization header");
		hp->has_auth = 1;
	}
	return 0;
}

static int
on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct httpreq_parser *hp = p->data;

	if (hp->header == HRH_AUTHORIZATION) {
		if (join(hp->auth, &hp->auth_len, HTTPREQ_MAX_AUTH, at, len) != 0)
			return fail(hp, 431, "Authorization header over 2 KiB");
	} else if (hp->header == HRH_EXPECT) {
		keep_short(hp->expect, &hp->expect_len, sizeof(hp->expect), at, len);
	}
	return count_header_bytes(hp, len);
}

static int
on_headers_complete(llhttp_t *p)
{
	struct httpreq_parser *hp = p->data;
	int body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);

	if ((p->flags & F_CONTENT_LENGTH) && p->content_length > HTTPREQ_MAX_BODY)
		return fail(hp, 413, "request body over 16 KiB");
	/* RFC 9110 10.1.1: a client that expects 100-continue may wait for it before the body. */
	if (body && hp->on_continue != NULL && hp->expect_len == 12 &&
	    pg_slice_eq_ci((struct pg_slice){ (const uint8_t *)hp->expect, 12 }, "100-continue"))
		hp->on_continue(hp->arg);
	return 0;
}

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
	struct httpreq_parser *hp = p->data;

	if (join(hp->body, &hp->body_len, HTTPREQ_MAX_BODY, at, len) != 0)
		return fail(hp, 413, "request body over 16 KiB");
	return 0;
}

static int
on_message_complete(llhttp_t *p)
{
	struct httpreq_parser *hp = p->data;
	struct httpreq req = { llhttp_get_method(p), hp->url, hp->url_len,
		llhttp_should_keep_alive(p), hp->has_auth ? hp->auth : NULL, hp->auth_len, hp->body,
		hp->body_len };

	hp->in_request = 0;
	return hp->on_request(hp->arg, &req) ? HPE_PAUSED : 0;
}

void
httpreq_init(struct httpreq_parser *hp, httpreq_cb on_request, void (*on_begin)(void *arg),
    void *arg)
{
	memset(hp, 0, sizeof(*hp));
	llhttp_settings_init(&hp->settings);
	hp->settings.on_message_begin = on_message_begin;
	hp->settings.on_url = on_url;
	hp->settings.on_header_field = on_header_field;
	hp->settings.on_header_field_complete = on_header_field_complete;
	hp->settings.on_header_value = on_header_value;
	hp->settings.on_headers_complete = on_headers_complete;
	hp->settings.on_body = on_body;
	hp->settings.on_message_complete = on_message_complete;
	/* No llhttp_set_lenient_*: obs-fold, bare LF, CL+TE and friends are errors here. */
	llhttp_init(&hp->parser, HTTP_REQUEST, &hp->settings);
	hp->parser.data = hp;
	hp->on_request = on_request;
	hp->on_begin = on_begin;
	hp->arg = arg;
}

int
httpreq_feed(struct httpreq_parser *hp, const char *data, size_t len, const char **why)
{
	llhttp_errno_t e = llhttp_execute(&hp->parser, data, len);
	const char *reason;

	if (e == HPE_OK)
		return HTTPREQ_OK;
	if (e == HPE_PAUSED)
		return HTTPREQ_PAUSED;
	/* Our callbacks set limit before they stop llhttp, whatever code llhttp turns that into. */
	if (hp->limit != 0) {
		reason = hp->limit_why;
	} else {
		reason = llhttp_get_error_reason(&hp->parser);
		if (reason == NULL)
			reason = llhttp_errno_name(e);
	}
	if (why != NULL)
		*why = reason;
	return hp->limit != 0 ? hp->limit : 400;
}
