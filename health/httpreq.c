#include "health/httpreq.h"

#include <string.h>

static int
on_message_begin(llhttp_t *p)
{
	struct httpreq_parser *hp = p->data;

	hp->url_len = 0;
	hp->url[0] = '\0';
	hp->header_bytes = 0;
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
		return HPE_USER;
	}
	return 0;
}

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
	struct httpreq_parser *hp = p->data;

	if (len > HTTPREQ_MAX_URL - hp->url_len) {
		hp->limit = 414;
		return HPE_USER;
	}
	memcpy(hp->url + hp->url_len, at, len);
	hp->url_len += len;
	hp->url[hp->url_len] = '\0';
	return count_header_bytes(hp, len);
}

static int
on_header_data(llhttp_t *p, const char *at, size_t len)
{
	return count_header_bytes(p->data, len);
}

static int
on_message_complete(llhttp_t *p)
{
	struct httpreq_parser *hp = p->data;
	struct httpreq req = { llhttp_get_method(p), hp->url, hp->url_len,
		llhttp_should_keep_alive(p) };

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
	hp->settings.on_header_field = on_header_data;
	hp->settings.on_header_value = on_header_data;
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
	if (e == HPE_USER && hp->limit == 414) {
		reason = "request target over 2 KiB";
	} else if (e == HPE_USER && hp->limit == 431) {
		reason = "request line and headers over 8 KiB";
	} else {
		reason = llhttp_get_error_reason(&hp->parser);
		if (reason == NULL)
			reason = llhttp_errno_name(e);
	}
	if (why != NULL)
		*why = reason;
	return e == HPE_USER && hp->limit != 0 ? hp->limit : 400;
}
