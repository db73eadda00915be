/*
 * The admin listener's HTTP/1.1 server. Small on purpose: GET and HEAD of four paths, keep-alive,
 * pipelined requests answered in order (responses are queued on the stream in request order), and
 * hard limits on everything a client controls.
 */
#include "health/ops.h"
#include "health/admin.h"
#include "health/dashboard.h"
#include "health/httpreq.h"
#include "core/addr.h"
#include "core/err.h"
#include "core/log.h"
#include "core/uvwrite.h"

#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPS_MAX_QUEUED (4u << 20)		/* unread responses a client may pile up */
#define OPS_MAX_LISTENERS 16

struct ops_listener {
	uv_tcp_t tcp;
	struct ops_server *srv;
	char addr[PG_ADDRSTRLEN];
};

struct ops_server {
	uv_loop_t *loop;
	struct ops_env *env;
	struct ops_listener *listeners;
	size_t nlisteners;
	struct ops_conn *conns;		/* open connections, for ops_stop */
	size_t nconns;
	uint32_t max_conns, timeout_ms;
	int stopping;
	size_t closing;			/* handles of the server itself still closing */
};

enum conn_state { CONN_READING, CONN_CLOSING };

struct ops_conn {
	struct ops_server *srv;
	struct ops_conn *prev, *next;
	uv_tcp_t tcp;
	uv_timer_t timer;		/* request timeout: a request must complete in time */
	enum conn_state state;
	int closes;
	char peer[PG_ADDRSTRLEN + 8];
	struct httpreq_parser req;
	size_t queued;			/* response bytes written but not yet flushed */
	int close_after_write;
};

static const char *
status_text(int code)
{
	switch (code) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	}
	return "Unknown";
}

static void
on_conn_closed(uv_handle_t *h)
{
	struct ops_conn *c = h->data;
	struct ops_server *s = c->srv;

	if (--c->closes > 0)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->nconns--;
	free(c);
	if (s->stopping && s->nconns == 0 && s->closing == 0)
		free(s);
}

/* The one place a connection dies. Pending writes complete (with ECANCELED) before the close cb. */
static void
conn_close(struct ops_conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	c->state = CONN_CLOSING;
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void
on_written(void *arg, int status, size_t len)
{
	struct ops_conn *c = arg;

	c->queued -= len;
	if (status != 0 || (c->close_after_write && c->queued == 0))
		conn_close(c);
}

static int
conn_write(struct ops_conn *c, const void *p, size_t len)
{
	int r;

	if (c->queued + len > OPS_MAX_QUEUED) {
		LOG_NOTICE(c->peer, "client does not read its responses; closing");
		conn_close(c);
		return PG_ETOOBIG;
	}
	if ((r = pg_write_copy((uv_stream_t *)&c->tcp, p, len, on_written, c)) != 0)
		return r;
	c->queued += len;
	return 0;
}

/*
 * Sends one complete response. headers: more header lines ("Name: value\r\n"...) or "". head=1
 * omits the body (HEAD).
 */
static void
respond_with(struct ops_conn *c, int code, const char *ctype, const char *headers,
    const struct pg_buf *body, int head, int keep_alive)
{
	struct pg_buf out;
	size_t blen = body != NULL ? body->len : 0;

	c->srv->env->counters.requests[code / 100 >= 1 && code / 100 <= 5 ? code / 100 : 5]++;
	pg_buf_init(&out, OPS_MAX_QUEUED);
	if (pg_buf_printf(&out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s\r\n", code,
	    status_text(code), ctype, blen, headers, keep_alive ? "" : "Connection: close\r\n") != 0 ||
	    (!head && blen > 0 && pg_buf_append(&out, body->p, blen) != 0)) {
		pg_buf_free(&out);
		conn_close(c);
		return;
	}
	if (!keep_alive)
		c->close_after_write = 1;
	if (conn_write(c, out.p, out.len) != 0)
		conn_close(c);
	pg_buf_free(&out);
}

static void
respond(struct ops_conn *c, int code, const char *ctype, const struct pg_buf *body, int head,
    int keep_alive)
{
	respond_with(c, code, ctype, code == 405 ? "Allow: GET, HEAD\r\n" : "", body, head,
	    keep_alive);
}

static void
respond_text(struct ops_conn *c, int code, const char *text, int head, int keep_alive)
{
	struct pg_buf body;

	pg_buf_init(&body, 4096);
	if (pg_buf_append_str(&body, text) != 0) {
		conn_close(c);
		return;
	}
	respond(c, code, "text/plain; charset=utf-8", &body, head, keep_alive);
	pg_buf_free(&body);
}

/* A request we will not parse further: answer it and close. */
static void
reject(struct ops_conn *c, int code, const char *why)
{
	char text[160];

	c->srv->env->counters.bad_requests++;
	LOG_NOTICE(c->peer, "%d %s: %s; closing", code, status_text(code), why);
	snprintf(text, sizeof(text), "%d %s\n", code, status_text(code));
	uv_read_stop((uv_stream_t *)&c->tcp);
	respond_text(c, code, text, 0, 0);
}

/* Everything under /admin/: the admin API answers (health/admin.h). */
static void
route_admin(struct ops_conn *c, const struct httpreq *req, size_t plen)
{
	struct ops_env *env = c->srv->env;
	struct admin_answer ans;

	if (env->admin == NULL) {
		respond_text(c, 404, "not found\n", 0, req->keep_alive);
		return;
	}
	pg_buf_init(&ans.body, 64u << 20);
	if (admin_handle(env->admin, env, req, req->url, plen, c->peer, &ans) != 0)
		respond_text(c, 500, "internal error\n", 0, req->keep_alive);
	else
		respond_with(c, ans.status, "application/json", ans.headers, &ans.body,
		    req->method == HTTP_HEAD, req->keep_alive);
	pg_buf_free(&ans.body);
}

static void
route(struct ops_conn *c, const struct httpreq *req)
{
	struct ops_env *env = c->srv->env;
	int method = req->method;
	int head = method == HTTP_HEAD;
	int keep = req->keep_alive;
	size_t plen = strcspn(req->url, "?");
	struct pg_buf body;
	int r;

#define PATH_IS(lit) (plen == sizeof(lit) - 1 && memcmp(req->url, lit, plen) == 0)
	if (plen >= 6 && memcmp(req->url, "/admin", 6) == 0 && (plen == 6 || req->url[6] == '/')) {
		route_admin(c, req, plen);
		return;
	}
	if (!PATH_IS("/healthz") && !PATH_IS("/readyz") && !PATH_IS("/status") &&
	    !PATH_IS("/metrics") && !PATH_IS("/")) {
		respond_text(c, 404, "not found: try /, /healthz, /readyz, /status, /metrics, "
		    "/admin/ (docs/admin.md)\n", head, keep);
		return;
	}
	if (method != HTTP_GET && !head) {
		respond_text(c, 405, "method not allowed\n", head, keep);
		return;
	}
	if (PATH_IS("/")) {
		struct pg_buf page;
		const struct dashboard *d = dashboard_get();
		pg_buf_init(&page, 1u << 20);
		if (d == NULL || pg_buf_append(&page, d->html, d->html_len) != 0)
			respond_text(c, 500, "internal error\n", head, keep);
		else
			respond_with(c, 200, "text/html; charset=utf-8", d->headers, &page, head, keep);
		pg_buf_free(&page);
	} else if (PATH_IS("/healthz")) {
		respond_text(c, 200, "ok\n", head, keep);
	} else if (PATH_IS("/readyz")) {
		size_t up = reg_count_up(env->reg);
		char text[64];
		snprintf(text, sizeof(text), up > 0 ? "ready: %zu instance%s up\n" :
		    "not ready: no instance up\n", up, up == 1 ? "" : "s");
		respond_text(c, up > 0 ? 200 : 503, text, head, keep);
	} else {
		int status = PATH_IS("/status");
		pg_buf_init(&body, 64u << 20);
		r = status ? ops_render_status(env, &body) : ops_render_metrics(env, &body);
		if (r != 0)
			respond_text(c, 500, "internal error\n", head, keep);
		else
			respond(c, 200, status ? "application/json" :
			    "text/plain; version=0.0.4; charset=utf-8", &body, head, keep);
		pg_buf_free(&body);
	}
#undef PATH_IS
}

/* --- request framing callbacks -------------------------------------------------------- */

static void on_timeout(uv_timer_t *t);

/* RFC 9110 10.1.1: tell a client waiting to send its body that it may. */
static void
on_continue(void *arg)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct ops_conn *c = arg;

	if (c->state == CONN_READING)
		conn_write(c, cont, sizeof(cont) - 1);
}

static void
on_request_begin(void *arg)
{
	struct ops_conn *c = arg;

	/* The clock runs from the first byte of a request to its end (slowloris). */
	uv_timer_start(&c->timer, on_timeout, c->srv->timeout_ms, 0);
}

static int
on_request(void *arg, const struct httpreq *req)
{
	struct ops_conn *c = arg;

	if (c->state != CONN_READING)
		return 1;
	route(c, req);
	/* Between requests the same timeout bounds how long an idle keep-alive may linger. */
	if (c->state == CONN_READING)
		uv_timer_start(&c->timer, on_timeout, c->srv->timeout_ms, 0);
	return c->close_after_write || c->state != CONN_READING;
}

static void
on_timeout(uv_timer_t *t)
{
	struct ops_conn *c = t->data;

	if (!c->req.in_request) {
		LOG_DEBUG(c->peer, "idle for %u ms; closing", c->srv->timeout_ms);
		conn_close(c);
		return;
	}
	c->srv->env->counters.bad_requests++;
	LOG_NOTICE(c->peer, "request not complete after %u ms; closing", c->srv->timeout_ms);
	c->close_after_write = 1;
	uv_read_stop((uv_stream_t *)&c->tcp);
	respond_text(c, 408, "408 Request Timeout\n", 0, 0);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char slab[16384];	/* one loop thread; consumed before the next read */

	buf->base = slab;
	buf->len = sizeof(slab);
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ops_conn *c = s->data;
	const char *why = NULL;
	int r;

	if (c->state != CONN_READING || n == 0)
		return;
	if (n < 0) {
		if (n != UV_EOF && n != UV_ECONNRESET)
			LOG_NOTICE(c->peer, "read: %s", uv_strerror((int)n));
		conn_close(c);
		return;
	}
	r = httpreq_feed(&c->req, buf->base, (size_t)n, &why);
	if (r == HTTPREQ_OK)
		return;
	if (r == HTTPREQ_PAUSED) {
		/* Paused after a response that closes the connection: read nothing more. */
		uv_read_stop(s);
		return;
	}
	reject(c, r, why);
}

static void
on_connection(uv_stream_t *ls, int status)
{
	struct ops_listener *l = ls->data;
	struct ops_server *s = l->srv;
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	struct ops_conn *c;
	char addr[PG_ADDRSTRLEN];

	if (status != 0) {
		LOG_WARN("admin", "accept on %s: %s", l->addr, uv_strerror(status));
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		LOG_ERR("admin", "out of memory accepting a connection");
		return;
	}
	c->srv = s;
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->closes = 2;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0)
		snprintf(c->peer, sizeof(c->peer), "admin %s", pg_addr_format((struct sockaddr *)&ss,
		    addr));
	else
		snprintf(c->peer, sizeof(c->peer), "admin ?");
	if (s->nconns > s->max_conns) {
		/* Over the limit: close at once rather than queue; the client may retry. */
		s->env->counters.rejected_conns++;
		LOG_NOTICE(c->peer, "over admin.max_connections (%u); closing", s->max_conns);
		conn_close(c);
		return;
	}
	s->env->counters.conns_total++;
	httpreq_init(&c->req, on_request, on_request_begin, c);
	c->req.on_continue = on_continue;
	uv_timer_start(&c->timer, on_timeout, s->timeout_ms, 0);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
		conn_close(c);
}

static void
on_listener_closed(uv_handle_t *h)
{
	struct ops_listener *l = h->data;
	struct ops_server *s = l->srv;

	if (--s->closing == 0 && s->stopping) {
		free(s->listeners);
		s->listeners = NULL;
		if (s->nconns == 0)
			free(s);
	}
}

int
ops_start(uv_loop_t *loop, struct ops_env *env, const struct pg_config *cfg,
    struct ops_server **out, char *err, size_t errlen)
{
	struct ops_server *s = calloc(1, sizeof(*s));
	int r = 0;

	if (s == NULL || (s->listeners = calloc(cfg->nlisten_admin, sizeof(*s->listeners))) == NULL) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return PG_ENOMEM;
	}
	s->loop = loop;
	s->env = env;
	s->max_conns = cfg->admin_max_connections;
	s->timeout_ms = cfg->admin_request_timeout_ms;
	for (size_t i = 0; i < cfg->nlisten_admin; i++) {
		struct ops_listener *l = &s->listeners[i];
		struct sockaddr_storage ss;

		l->srv = s;
		snprintf(l->addr, sizeof(l->addr), "%s", cfg->listen_admin[i]);
		if ((r = pg_addr_parse_hostport(l->addr, &ss)) != 0) {
			snprintf(err, errlen, "admin listener %s: %s", l->addr, pg_strerror(r));
			break;
		}
		uv_tcp_init(loop, &l->tcp);
		l->tcp.data = l;
		s->nlisteners++;
		if ((r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0)) != 0 ||
		    (r = uv_listen((uv_stream_t *)&l->tcp, 128, on_connection)) != 0) {
			snprintf(err, errlen, "admin listener %s: %s", l->addr, uv_strerror(r));
			break;
		}
		LOG_INFO("admin", "listening on http://%s/ (dashboard, healthz, readyz, status, metrics, "
		    "admin)", l->addr);
	}
	if (r != 0) {
		ops_stop(s);
		return r;
	}
	*out = s;
	return 0;
}

void
ops_set_limits(struct ops_server *s, uint32_t max_connections, uint32_t timeout_ms)
{
	s->max_conns = max_connections;
	s->timeout_ms = timeout_ms;
}

void
ops_stop(struct ops_server *s)
{
	if (s == NULL)
		return;
	s->stopping = 1;
	for (size_t i = 0; i < s->nlisteners; i++) {
		s->closing++;
		uv_close((uv_handle_t *)&s->listeners[i].tcp, on_listener_closed);
	}
	for (struct ops_conn *c = s->conns; c != NULL; c = c->next)
		conn_close(c);
	if (s->closing == 0) {
		free(s->listeners);
		if (s->nconns == 0)
			free(s);
	}
}
