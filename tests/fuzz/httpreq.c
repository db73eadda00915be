/*
 * Fuzz target: admin-listener request framing. The input is fed whole and again split at a point
 * chosen by its first byte; both must agree on the requests seen (URL, Authorization, body) and
 * the verdict.
 */
#include "health/httpreq.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	unsigned count;
	unsigned long hash;
};

static int
on_request(void *arg, const struct httpreq *req)
{
	struct seen *s = arg;

	if (strlen(req->url) != req->url_len || req->url_len > HTTPREQ_MAX_URL ||
	    req->body_len > HTTPREQ_MAX_BODY || req->body[req->body_len] != '\0' ||
	    (req->authorization != NULL && (req->authorization_len > HTTPREQ_MAX_AUTH ||
	    strlen(req->authorization) != req->authorization_len)))
		__builtin_trap();
	s->count++;
	for (size_t i = 0; i < req->url_len; i++)
		s->hash = s->hash * 31 + (unsigned char)req->url[i];
	for (size_t i = 0; i < req->body_len; i++)
		s->hash = s->hash * 31 + (unsigned char)req->body[i];
	for (size_t i = 0; req->authorization != NULL && i < req->authorization_len; i++)
		s->hash = s->hash * 37 + (unsigned char)req->authorization[i];
	s->hash = s->hash * 31 + (unsigned long)req->method;
	return 0;
}

static int
run(const uint8_t *data, size_t size, size_t split, struct seen *s)
{
	struct httpreq_parser hp;
	int r;

	httpreq_init(&hp, on_request, NULL, s);
	r = httpreq_feed(&hp, (const char *)data, split, NULL);
	if (r == HTTPREQ_OK)
		r = httpreq_feed(&hp, (const char *)data + split, size - split, NULL);
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen a = { 0, 0 }, b = { 0, 0 };
	size_t split = size > 0 ? data[0] % (size + 1) : 0;
	int ra = run(data, size, size, &a), rb = run(data, size, split, &b);

	if (ra != HTTPREQ_OK && ra != 400 && ra != 413 && ra != 414 && ra != 431)
		__builtin_trap();
	/* Where a split lands inside a limit the verdict may legitimately come in a later piece, but
	 * never differ. */
	if (ra != rb || a.count != b.count || a.hash != b.hash)
		__builtin_trap();
	return 0;
}
