#include "proxy/http/head.h"
#include "core/err.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int
head_init(struct head *h, size_t max_bytes, size_t max_fields, size_t max_url)
{
	memset(h, 0, sizeof(*h));
	pg_buf_init(&h->bytes, max_bytes);
	h->max_fields = max_fields;
	h->max_url = max_url;
	if ((h->fields = calloc(max_fields, sizeof(*h->fields))) == NULL)
		return PG_ENOMEM;
	return 0;
}

void
head_reset(struct head *h)
{
	pg_buf_reset(&h->bytes);
	h->url_off = h->url_len = 0;
	h->nfields = 0;
	h->in_value = 0;
	h->limit = 0;
}

void
head_free(struct head *h)
{
	pg_buf_free(&h->bytes);
	free(h->fields);
	h->fields = NULL;
}

static int
append(struct head *h, const char *at, size_t len)
{
	if (pg_buf_append(&h->bytes, at, len) != 0) {
		h->limit = 431;
		return HPE_USER;
	}
	return 0;
}

int
head_add_url(struct head *h, const char *at, size_t len)
{
	if (h->url_len == 0)
		h->url_off = h->bytes.len;
	if (len > h->max_url - h->url_len) {
		h->limit = 414;
		return HPE_USER;
	}
	h->url_len += len;
	return append(h, at, len);
}

int
head_add_name(struct head *h, const char *at, size_t len)
{
	struct head_field *f;

	if (h->nfields == 0 || h->in_value) {
		if (h->nfields == h->max_fields) {
			h->limit = 431;
			return HPE_USER;
		}
		f = &h->fields[h->nfields++];
		memset(f, 0, sizeof(*f));
		f->name_off = h->bytes.len;
		h->in_value = 0;
	}
	f = &h->fields[h->nfields - 1];
	f->name_len += len;
	return append(h, at, len);
}

int
head_add_value(struct head *h, const char *at, size_t len)
{
	struct head_field *f;

	if (h->nfields == 0)
		return HPE_USER;	/* llhttp never sends a value first; be safe anyway */
	f = &h->fields[h->nfields - 1];
	if (!h->in_value) {
		f->value_off = h->bytes.len;
		f->value_len = 0;
		h->in_value = 1;
	}
	f->value_len += len;
	return append(h, at, len);
}

static struct pg_slice
slice_at(const struct head *h, size_t off, size_t len)
{
	return (struct pg_slice){ h->bytes.p != NULL ? h->bytes.p + off : (const uint8_t *)"", len };
}

struct pg_slice
head_url(const struct head *h)
{
	return slice_at(h, h->url_off, h->url_len);
}

struct pg_slice
head_name(const struct head *h, size_t i)
{
	return slice_at(h, h->fields[i].name_off, h->fields[i].name_len);
}

struct pg_slice
head_value(const struct head *h, size_t i)
{
	return slice_at(h, h->fields[i].value_off, h->fields[i].value_len);
}

struct pg_slice
head_get(const struct head *h, const char *name)
{
	for (size_t i = 0; i < h->nfields; i++) {
		if (pg_slice_eq_ci(head_name(h, i), name))
			return head_value(h, i);
	}
	return (struct pg_slice){ NULL, 0 };
}

/* Whether the comma-separated list in v names token (case-insensitive). */
static int
list_has(struct pg_slice v, struct pg_slice token)
{
	size_t i = 0;

	while (i < v.len) {
		size_t start, end;
		while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
			i++;
		start = i;
		while (i < v.len && v.p[i] != ',')
			i++;
		end = i;
		while (end > start && (v.p[end - 1] == ' ' || v.p[end - 1] == '\t'))
			end--;
		if (end - start == token.len && token.len > 0 &&
		    strncasecmp((const char *)v.p + start, (const char *)token.p, token.len) == 0)
			return 1;
	}
	return 0;
}

/* A set of field names, each with its length: a compare starts with the lengths. */
struct name_lit {
	const char *s;
	size_t len;
};
#define NAME_LIT(x) { x, sizeof(x) - 1 }

static int
name_in(struct pg_slice name, const struct name_lit *set, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (set[k].len == name.len && pg_slice_eq_ci(name, set[k].s))
			return 1;
	}
	return 0;
}

static const struct name_lit hop_fixed[] = {
	NAME_LIT("connection"), NAME_LIT("keep-alive"), NAME_LIT("proxy-connection"), NAME_LIT("te"),
	NAME_LIT("trailer"), NAME_LIT("transfer-encoding"), NAME_LIT("upgrade"),
	NAME_LIT("proxy-authenticate"), NAME_LIT("proxy-authorization"),
};

static const struct name_lit forwarding[] = {
	NAME_LIT("x-forwarded-for"), NAME_LIT("x-forwarded-proto"), NAME_LIT("x-forwarded-host"),
	NAME_LIT("x-forwarded-port"), NAME_LIT("x-scheme"), NAME_LIT("forwarded"),
	NAME_LIT("x-real-ip"),
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The index of the first Connection field, or h->nfields when there is none. */
static size_t
first_connection(const struct head *h)
{
	size_t i;

	for (i = 0; i < h->nfields; i++) {
		struct pg_slice name = head_name(h, i);
		if (name.len == 10 && pg_slice_eq_ci(name, "connection"))
			break;
	}
	return i;
}

/* head_is_hop_by_hop() with the first Connection field already found (a head is walked once). */
static int
hop_by_hop_from(const struct head *h, size_t i, size_t conn)
{
	struct pg_slice name = head_name(h, i);

	if (name_in(name, hop_fixed, NELEM(hop_fixed)))
		return 1;
	for (size_t j = conn; j < h->nfields; j++) {
		struct pg_slice cn = head_name(h, j);
		if (cn.len == 10 && pg_slice_eq_ci(cn, "connection") &&
		    list_has(head_value(h, j), name))
			return 1;
	}
	return 0;
}

int
head_is_hop_by_hop(const struct head *h, size_t i)
{
	return hop_by_hop_from(h, i, first_connection(h));
}

static int
is_forwarding_field(struct pg_slice name)
{
	return name_in(name, forwarding, NELEM(forwarding));
}

static int
put_field(struct pg_buf *out, struct pg_slice name, struct pg_slice value)
{
	int r;

	if ((r = pg_buf_append(out, name.p, name.len)) != 0 || (r = pg_buf_append(out, ": ", 2)) ||
	    (r = pg_buf_append(out, value.p, value.len)) != 0 || (r = pg_buf_append(out, "\r\n", 2)))
		return r;
	return 0;
}

int
head_write_request(const struct head *h, const char *method, const struct fwd_info *fi,
    struct pg_buf *out)
{
	struct pg_slice url = head_url(h), host = head_get(h, "host");
	size_t conn = first_connection(h);
	int r;

	if ((r = pg_buf_append_str(out, method)) != 0 || (r = pg_buf_append(out, " ", 1)) != 0 ||
	    (r = pg_buf_append(out, url.p, url.len)) != 0 ||
	    (r = pg_buf_append_str(out, " HTTP/1.1\r\n")) != 0)
		return r;
	for (size_t i = 0; i < h->nfields; i++) {
		struct pg_slice name = head_name(h, i);
		if (hop_by_hop_from(h, i, conn) || is_forwarding_field(name))
			continue;
		/* A chunked body is re-chunked by us; Content-Length never travels with it. */
		if (fi->chunked && pg_slice_eq_ci(name, "content-length"))
			continue;
		if (fi->drop_expect && pg_slice_eq_ci(name, "expect"))
			continue;
		if ((r = put_field(out, name, head_value(h, i))) != 0)
			return r;
	}
	/* No printf on the path every request takes. */
	if ((r = put_field(out, PG_SLICE_LIT("X-Forwarded-For"), pg_slice_str(fi->client_ip))) != 0 ||
	    (r = put_field(out, PG_SLICE_LIT("X-Forwarded-Proto"), pg_slice_str(fi->proto))) != 0 ||
	    (r = pg_buf_append_str(out, "X-Forwarded-Port: ")) != 0 ||
	    (r = pg_buf_append_uint(out, fi->port)) != 0 || (r = pg_buf_append(out, "\r\n", 2)) ||
	    (r = put_field(out, PG_SLICE_LIT("X-Scheme"), pg_slice_str(fi->proto))) != 0)
		return r;
	if (host.p != NULL && (r = put_field(out, PG_SLICE_LIT("X-Forwarded-Host"), host)) != 0)
		return r;
	if (fi->chunked && (r = pg_buf_append_str(out, "Transfer-Encoding: chunked\r\n")) != 0)
		return r;
	return pg_buf_append_str(out, fi->websocket ?
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n" : "Connection: keep-alive\r\n\r\n");
}

/*
 * A Host value (RFC 9110 7.2, RFC 3986 3.2.2): reg-name or IPv4 (unreserved, sub-delims,
 * percent signs) or an IP-literal in brackets, then optionally ':' and up to 5 digits <= 65535.
 */
static int
host_valid(struct pg_slice v)
{
	static const char reg[] = "-._~!$&'()*+,;=%";
	size_t i = 0, port = 0, digits = 0;

	if (v.len == 0)
		return 0;
	if (v.p[0] == '[') {
		for (i = 1; i < v.len && v.p[i] != ']'; i++)
			if (!isxdigit(v.p[i]) && v.p[i] != ':' && v.p[i] != '.')
				return 0;
		if (i++ == v.len)
			return 0;	/* no ']' */
	} else {
		while (i < v.len && v.p[i] != ':') {
			/* (strchr would find a NUL byte: the string's own terminator) */
			if (!isalnum(v.p[i]) && (v.p[i] == '\0' || strchr(reg, v.p[i]) == NULL))
				return 0;
			i++;
		}
		if (i == 0)
			return 0;
	}
	if (i == v.len)
		return 1;
	if (v.p[i++] != ':')
		return 0;
	for (; i < v.len; i++, digits++) {
		if (!isdigit(v.p[i]) || digits == 5)
			return 0;
		port = port * 10 + (size_t)(v.p[i] - '0');
	}
	return port <= 65535;
}

/* Sec-WebSocket-Key: base64 of 16 bytes is 22 characters of the alphabet and "==" (RFC 6455 4.1). */
static int
ws_key_valid(struct pg_slice k)
{
	if (k.len != 24 || k.p[22] != '=' || k.p[23] != '=')
		return 0;
	for (size_t i = 0; i < 22; i++)
		if (!isalnum(k.p[i]) && k.p[i] != '+' && k.p[i] != '/')
			return 0;
	return 1;
}

const char *
head_check_request(const struct head *h, const char *method, int major, int minor, int websocket)
{
	struct pg_slice host = { NULL, 0 }, v;
	size_t hosts = 0;

	if (major != 1 || minor > 1)
		return "HTTP version not 1.0 or 1.1";
	if (strcmp(method, "CONNECT") == 0)
		return "CONNECT is not served";
	for (size_t i = 0; i < h->nfields; i++) {
		if (pg_slice_eq_ci(head_name(h, i), "host")) {
			host = head_value(h, i);
			hosts++;
		}
	}
	if (hosts > 1)
		return "more than one Host field";
	if (hosts == 0 && minor == 1)
		return "no Host field in an HTTP/1.1 request";
	if (hosts == 1 && !host_valid(host))
		return "invalid Host field";
	if (minor == 0 && head_get(h, "transfer-encoding").p != NULL)
		return "Transfer-Encoding in an HTTP/1.0 request";
	if (!websocket)
		return NULL;
	if (strcmp(method, "GET") != 0)
		return "websocket upgrade not a GET";
	v = head_get(h, "sec-websocket-version");
	if (v.p == NULL || !pg_slice_eq_ci(v, "13"))
		return "websocket upgrade without Sec-WebSocket-Version 13";
	if (!ws_key_valid(head_get(h, "sec-websocket-key")))
		return "websocket upgrade without a valid Sec-WebSocket-Key";
	return NULL;
}

int
head_write_response(const struct head *h, int status, enum body_framing framing,
    int keep_alive, const char *extra, struct pg_buf *out)
{
	struct pg_slice reason = head_url(h);
	int r;
	char line[13] = "HTTP/1.1 000 ";

	/* Three digits (RFC 9110 15); no printf on the path every response takes. */
	if (status < 100 || status > 999)
		return PG_EINVAL;
	line[9] = (char)('0' + status / 100 % 10);
	line[10] = (char)('0' + status / 10 % 10);
	line[11] = (char)('0' + status % 10);
	if ((r = pg_buf_append(out, line, sizeof(line))) != 0 ||
	    (r = pg_buf_append(out, reason.p, reason.len)) != 0 ||
	    (r = pg_buf_append(out, "\r\n", 2)) != 0)
		return r;
	size_t conn = first_connection(h);

	for (size_t i = 0; i < h->nfields; i++) {
		struct pg_slice name = head_name(h, i);
		if (status == 101 && (pg_slice_eq_ci(name, "upgrade") ||
		    pg_slice_eq_ci(name, "connection"))) {
			if ((r = put_field(out, name, head_value(h, i))) != 0)
				return r;
			continue;
		}
		if (hop_by_hop_from(h, i, conn))
			continue;
		if (pg_slice_eq_ci(name, "content-length") && framing != BODY_LENGTH)
			continue;
		if ((r = put_field(out, name, head_value(h, i))) != 0)
			return r;
	}
	if (extra != NULL && (r = pg_buf_append_str(out, extra)) != 0)
		return r;
	if (framing == BODY_CHUNKED && (r = pg_buf_append_str(out, "Transfer-Encoding: chunked\r\n")))
		return r;
	if (status != 101 && (r = pg_buf_append_str(out, keep_alive ? "" :
	    "Connection: close\r\n")) != 0)
		return r;
	return pg_buf_append(out, "\r\n", 2);
}
