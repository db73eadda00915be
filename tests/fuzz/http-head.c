/*
 * Fuzz target: the HTTPS front door's request head path. Bytes go through llhttp (strict) into
 * proxy/http/head.c's collection with small limits, and every complete head is rewritten for the
 * instance with head_write_request. The rewritten head must itself parse as exactly one request
 * with the same method and target, and must carry none of the hop-by-hop or forwarding fields the
 * client sent (poolgate is the edge: X-Forwarded-* are ours alone). head_check_request runs on
 * every head first, as in the front door: a head it passes is HTTP/1.x with at most one Host field,
 * and only such heads are rewritten (seed crash-connect-http09-empty-target: "CONNECT \n" with no
 * target and no version, which once became "CONNECT  HTTP/1.1" towards the instance).
 */
#include "proxy/http/head.h"

#include <llhttp.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ctx {
	struct head h;
	char method[24];
	size_t mlen;
	int chunked, upgrade, bad;
};

static int
on_method(llhttp_t *p, const char *at, size_t len)
{
	struct ctx *c = p->data;

	if (len >= sizeof(c->method) - c->mlen)
		return HPE_USER;
	memcpy(c->method + c->mlen, at, len);
	c->mlen += len;
	c->method[c->mlen] = '\0';
	return 0;
}

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
	return head_add_url(&((struct ctx *)p->data)->h, at, len);
}

static int
on_field(llhttp_t *p, const char *at, size_t len)
{
	return head_add_name(&((struct ctx *)p->data)->h, at, len);
}

static int
on_value(llhttp_t *p, const char *at, size_t len)
{
	return head_add_value(&((struct ctx *)p->data)->h, at, len);
}

/* Checks the rewritten head by parsing it again. */
struct recheck {
	struct head h;
	int messages;
};

static int
re_url(llhttp_t *p, const char *at, size_t len)
{
	return head_add_url(&((struct recheck *)p->data)->h, at, len);
}

static int
re_field(llhttp_t *p, const char *at, size_t len)
{
	return head_add_name(&((struct recheck *)p->data)->h, at, len);
}

static int
re_value(llhttp_t *p, const char *at, size_t len)
{
	return head_add_value(&((struct recheck *)p->data)->h, at, len);
}

static int
re_headers_complete(llhttp_t *p)
{
	((struct recheck *)p->data)->messages++;
	return HPE_PAUSED;
}

static void
check_rewrite(struct ctx *c)
{
	struct fwd_info fi = { "192.0.2.1", "https", 8443, c->upgrade, c->chunked,
		(c->h.nfields & 1) != 0 };
	/* Hop-by-hop fields we never add ourselves; Connection we add exactly once. */
	static const char *const banned[] = { "te:", "proxy-connection:", "keep-alive:",
		"proxy-authorization:", "trailer:" };
	struct pg_buf out;
	llhttp_settings_t s;
	llhttp_t p;
	struct recheck rc;
	size_t forwarded_for = 0, connection = 0;

	pg_buf_init(&out, 1 << 20);
	if (head_write_request(&c->h, c->method, &fi, &out) != 0) {
		pg_buf_free(&out);
		return;
	}
	memset(&rc, 0, sizeof(rc));
	if (head_init(&rc.h, 1 << 20, 1024, 1 << 20) != 0)
		__builtin_trap();
	llhttp_settings_init(&s);
	s.on_url = re_url;
	s.on_header_field = re_field;
	s.on_header_value = re_value;
	s.on_headers_complete = re_headers_complete;
	llhttp_init(&p, HTTP_REQUEST, &s);
	p.data = &rc;
	if (llhttp_execute(&p, (const char *)out.p, out.len) != HPE_PAUSED || rc.messages != 1)
		__builtin_trap();	/* what we send must be one well-formed request head */
	if (rc.h.url_len != c->h.url_len ||
	    memcmp(head_url(&rc.h).p, head_url(&c->h).p, c->h.url_len) != 0)
		__builtin_trap();
	for (size_t i = 0; i < rc.h.nfields; i++) {
		struct pg_slice n = head_name(&rc.h, i);
		for (size_t b = 0; b < sizeof(banned) / sizeof(banned[0]); b++) {
			size_t bl = strcspn(banned[b], ":");
			if (n.len == bl && strncasecmp((const char *)n.p, banned[b], bl) == 0)
				__builtin_trap();
		}
		forwarded_for += pg_slice_eq_ci(n, "x-forwarded-for");
		connection += pg_slice_eq_ci(n, "connection");
	}
	if (forwarded_for != 1 || connection != 1)
		__builtin_trap();	/* exactly ours */
	head_free(&rc.h);
	pg_buf_free(&out);
}

static int
on_headers_complete(llhttp_t *p)
{
	struct ctx *c = p->data;

	c->chunked = (p->flags & F_CHUNKED) != 0;
	c->upgrade = p->upgrade;
	/* As the front door: a head head_check_request refuses gets a 400 and is never rewritten. */
	if (head_check_request(&c->h, c->method, p->http_major, p->http_minor, c->upgrade) == NULL) {
		size_t hosts = 0;

		for (size_t i = 0; i < c->h.nfields; i++)
			hosts += pg_slice_eq_ci(head_name(&c->h, i), "host");
		if (p->http_major != 1 || hosts > 1)
			__builtin_trap();
		check_rewrite(c);
	}
	return 0;
}

static int
on_message_begin(llhttp_t *p)
{
	struct ctx *c = p->data;

	head_reset(&c->h);
	c->mlen = 0;
	c->method[0] = '\0';
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	llhttp_settings_t s;
	llhttp_t p;
	struct ctx c;

	memset(&c, 0, sizeof(c));
	if (head_init(&c.h, 4096, 32, 1024) != 0)
		return 0;
	llhttp_settings_init(&s);
	s.on_message_begin = on_message_begin;
	s.on_method = on_method;
	s.on_url = on_url;
	s.on_header_field = on_field;
	s.on_header_value = on_value;
	s.on_headers_complete = on_headers_complete;
	llhttp_init(&p, HTTP_REQUEST, &s);
	p.data = &c;
	llhttp_execute(&p, (const char *)data, size);
	head_free(&c.h);
	return 0;
}
