/*
 * The HTTPS front door's connections. One struct hconn per client connection owns its TCP handle,
 * its timer, its TLS session and, while an exchange runs, one upstream connection (upstream.c).
 *
 * Each direction has its own state (STYLE.md): req_state for what we read from the client,
 * resp_state for what we relay back. An exchange ends when both are done; only then is the next
 * pipelined request parsed, so responses go out in request order.
 *
 * Bodies stream: llhttp hands over body bytes as they arrive and they are written on at once, with
 * flow control both ways (a side whose peer does not read is paused at FLOW_HIGH bytes queued).
 */
#include "proxy/http/front.h"
#include "certs/tls.h"
#include "certs/tlsctx.h"
#include "core/addr.h"
#include "core/busypoll.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/readturn.h"
#include "core/log.h"
#include "core/uvwrite.h"
#include "proxy/http/head.h"
#include "proxy/http/hlimits.h"
#include "proxy/http/pages.h"
#include "proxy/http/route.h"
#include "proxy/http/upstream.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FLOW_HIGH (256u << 10)	/* pause the other side above this many queued bytes */
#define FLOW_LOW (64u << 10)	/* and resume below this */
#define FORM_MAX 8192		/* a login form we buffer to learn the user */
#define RESP_HEAD_MAX (64u << 10)
#define UPSTREAM_IDLE_MS 4000	/* below Node's 5 s keep-alive in configurable-http-proxy */

struct listener {
	uv_tcp_t tcp;
	struct http_front *f;
	int tls;		/* 1: https; 0: plain http that redirects */
	unsigned port;
	char addr[PG_ADDRSTRLEN];
};

struct http_front {
	uv_loop_t *loop;
	struct registry *reg;
	struct router *rt;
	struct http_conf conf;		/* cookie_name not used here */
	struct tls_server_set *tls;
	struct upool *upool;
	unsigned https_port;		/* where the redirect listener sends browsers */
	struct listener *listeners;
	size_t nlisteners, closing_listeners;
	struct hconn *conns;
	struct front_stats stats;
	struct hlim_front lim;		/* http.limits, proxy_protocol.https/http */
	llhttp_settings_t req_settings, resp_settings;	/* shared by every connection */
	int stopping;
	int draining;			/* front_drain(): no listener; exchanges end with the connection */
	int listeners_closed;
	int reloads;			/* certificate loads running on the thread pool */
};

enum req_state { REQ_IDLE, REQ_HEAD, REQ_FORM, REQ_ROUTING, REQ_BODY, REQ_DONE };
enum resp_state { RESP_NONE, RESP_WAIT, RESP_BODY, RESP_DONE };
enum timer_kind { T_NONE, T_PROXY, T_HEADER, T_IDLE, T_RESPONSE, T_TUNNEL };

struct hconn {
	struct http_front *f;
	struct listener *l;
	struct hconn *prev, *next;
	uv_tcp_t tcp;
	uv_timer_t timer;
	enum timer_kind tkind;
	uint64_t deadline;		/* loop ms when tkind's time is up (arm()) */
	uint64_t timer_due;		/* loop ms the libuv timer is set for, while it is active */
	int closes, closing, close_after_write;
	char peer[PG_ADDRSTRLEN + 8];
	char client_ip[PG_ADDRSTRLEN];
	struct sockaddr_storage src;	/* the client (a trusted PROXY header's source) */
	struct ppc_conn ppc;
	int counted;			/* a TLS handshake in http.limits' count */
	struct tls_conn *tls;
	struct tls_server_set *tlsset;	/* referenced while the handshake may consult it */
	int handshaken;
	size_t out_queued;
	int reading_paused;
	struct pg_read_turn turn;	/* one full read per loop turn (core/readturn.h) */
	/*
	 * While one read from the instance is being relayed, what goes to the client collects here
	 * and leaves as one TLS record and one write (head and body of a small response together).
	 */
	struct pg_buf outbatch;
	int batching;
	struct pg_slice batch_ref;	/* the batch's first piece, not copied (down_write_body) */
	int resp_finished;		/* the response ended inside a batch: finish after the flush */

	/* Client -> instance. */
	enum req_state req_state;
	llhttp_t rp;
	struct head rh;
	struct pg_buf inbuf;		/* plaintext not yet parsed (the parser pauses) */
	struct pg_buf form;
	int req_chunked, req_keep_alive, req_upgrade, req_head_method, req_http10;
	char method[24];

	/* Instance -> client. */
	enum resp_state resp_state;
	struct uconn *up;
	int up_reused, retried;
	struct instance *in;		/* where this exchange goes; referenced */
	llhttp_t pp;
	struct head ph;
	enum body_framing framing;
	int resp_keep_alive, resp_status, resp_close_delimited;
	int tunnel;
	int live;			/* the tunnel counts as user's live session */
	char user[256];			/* the user this exchange was attributed to, or "" */
	int login_unconfirmed;		/* route_result.login_unconfirmed of this exchange */
	char set_cookie[512];
	struct pg_buf sent_head;	/* the request head, kept for one retry on a stale connection */
};

static void hc_close(struct hconn *hc);
static void front_maybe_free(struct http_front *f);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void parse_requests(struct hconn *hc);
static void reject(struct hconn *hc, int status, const char *why);
static void up_event(void *arg, enum uconn_event ev);
static void up_data(void *arg, const uint8_t *p, size_t len);

/* --- writing to the client ------------------------------------------------------------------ */

static void
on_down_written(void *arg, int status, size_t len)
{
	struct hconn *hc = arg;

	hc->out_queued -= len;
	if (hc->closing)
		return;
	if (status != 0) {
		hc_close(hc);
		return;
	}
	if (hc->up != NULL && hc->out_queued < FLOW_LOW)
		uconn_pause(hc->up, 0);
	if (hc->close_after_write && hc->out_queued == 0)
		hc_close(hc);
}

static int
raw_write(struct hconn *hc, const uint8_t *p, size_t len)
{
	int r = pg_try_write_copy((uv_stream_t *)&hc->tcp, p, len, on_down_written, hc);

	if (r < 0)
		return r;
	hc->out_queued += (size_t)r;
	return 0;
}

static int
flush_tls(struct hconn *hc)
{
	struct pg_buf out;
	int r;

	pg_buf_init(&out, 32u << 20);
	if ((r = tls_conn_take_output(hc->tls, &out)) == 0 &&
	    (r = pg_try_write_buf((uv_stream_t *)&hc->tcp, &out, on_down_written, hc)) > 0) {
		hc->out_queued += (size_t)r;
		r = 0;
	}
	pg_buf_free(&out);
	return r;
}

static int down_send(struct hconn *hc, const void *p, size_t len);

/* Plaintext to the client. On failure the connection is closed and PG_ECLOSED returned. */
static int
down_write(struct hconn *hc, const void *p, size_t len)
{
	if (hc->closing)
		return PG_ECLOSED;
	if (hc->batching) {
		if (hc->batch_ref.p != NULL) {
			/* A second piece: the first one is copied after all, ahead of it. */
			struct pg_slice ref = hc->batch_ref;
			hc->batch_ref.p = NULL;
			if (pg_buf_append(&hc->outbatch, ref.p, ref.len) != 0) {
				int r = down_send(hc, ref.p, ref.len);
				if (r != 0)
					return r;
			}
		}
		if (pg_buf_append(&hc->outbatch, p, len) == 0)
			return 0;
		/* Full: what collected goes first, so the order holds. */
		if (hc->outbatch.len > 0) {
			int r = down_send(hc, hc->outbatch.p, hc->outbatch.len);
			pg_buf_reset(&hc->outbatch);
			if (r != 0)
				return r;
		}
	}
	return down_send(hc, p, len);
}

/*
 * A response body piece that points into the instance's read, which lives until down_flush() at
 * the end of up_data(). Starting a batch, it is only remembered: a read that is all body, as in
 * a large download, goes to TLS without a copy first.
 */
static int
down_write_body(struct hconn *hc, const void *p, size_t len)
{
	if (hc->batching && !hc->closing && hc->outbatch.len == 0 && hc->batch_ref.p == NULL) {
		hc->batch_ref = (struct pg_slice){ p, len };
		return 0;
	}
	return down_write(hc, p, len);
}

/* Sends what collected during a batch. */
static int
down_flush(struct hconn *hc)
{
	int r = 0;

	hc->batching = 0;
	if (hc->batch_ref.p != NULL) {
		struct pg_slice ref = hc->batch_ref;
		hc->batch_ref.p = NULL;
		return down_send(hc, ref.p, ref.len);	/* nothing else collected after it */
	}
	if (hc->outbatch.len > 0) {
		r = down_send(hc, hc->outbatch.p, hc->outbatch.len);
		pg_buf_reset(&hc->outbatch);
	}
	return r;
}

static int
down_send(struct hconn *hc, const void *p, size_t len)
{
	int r;

	if (hc->closing)
		return PG_ECLOSED;
	if (hc->tls != NULL)
		r = tls_conn_write(hc->tls, p, len) == 0 ? flush_tls(hc) : PG_ETLS;
	else
		r = raw_write(hc, p, len);
	if (r != 0) {
		hc_close(hc);
		return PG_ECLOSED;
	}
	if (hc->up != NULL && hc->out_queued > FLOW_HIGH)
		uconn_pause(hc->up, 1);
	return 0;
}

/* The PROXY protocol policy of the connection's listener kind. */
static struct ppc_policy *
policy(struct hconn *hc)
{
	return hc->l->tls ? &hc->f->lim.pp_https : &hc->f->lim.pp_http;
}

static void
count_status(struct hconn *hc, int status)
{
	int k = status / 100;

	hc->f->stats.requests[k >= 1 && k <= 5 ? k : 5]++;
}

/*
 * Answers with one of our own pages and closes after it is written; pool_full picks the 503 that
 * says the pool is full.
 */
static void
send_page_full(struct hconn *hc, int status, int pool_full)
{
	struct pg_buf out;
	int r;

	count_status(hc, status);
	pg_buf_init(&out, 8192);
	r = pool_full ? page_write_pool_full(&out) : page_write(&out, status);
	if (r == 0)
		down_write(hc, out.p, out.len);
	pg_buf_free(&out);
	down_flush(hc);
	hc->close_after_write = 1;
	uv_read_stop((uv_stream_t *)&hc->tcp);
	if (!hc->closing && hc->out_queued == 0)
		hc_close(hc);
}

static void
send_page(struct hconn *hc, int status)
{
	send_page_full(hc, status, 0);
}

/* --- timers --------------------------------------------------------------------------------- */

static void
on_timer(uv_timer_t *t)
{
	struct hconn *hc = t->data;
	uint64_t now = uv_now(t->loop);

	if (hc->tkind == T_NONE)
		return;
	if (now < hc->deadline) {
		/* arm() moved the deadline later without touching the timer: sleep on. */
		hc->timer_due = hc->deadline;
		uv_timer_start(&hc->timer, on_timer, hc->deadline - now, 0);
		return;
	}
	switch (hc->tkind) {
	case T_PROXY:
		ppc_timeout(&hc->ppc, policy(hc), hc->peer);
		hc_close(hc);
		break;
	case T_HEADER:
		hc->f->stats.bad_requests++;
		LOG_NOTICE(hc->peer, "request head not complete within %u ms; closing",
		    hc->f->conf.header_timeout_ms);
		if (hc->handshaken)
			send_page(hc, 408);
		else
			hc_close(hc);
		break;
	case T_RESPONSE:
		LOG_NOTICE(hc->peer, "instance %s: no response within %u ms", hc->in ?
		    hc->in->conf.id : "?", hc->f->conf.response_timeout_ms);
		hc->f->stats.upstream_errors++;
		if (hc->resp_state == RESP_WAIT)
			send_page(hc, 504);
		else
			hc_close(hc);
		break;
	case T_IDLE:
	case T_TUNNEL:
		LOG_DEBUG(hc->peer, "idle; closing");
		hc_close(hc);
		break;
	case T_NONE:
		break;
	}
}

/*
 * Sets what the connection's one timer means and when it is up. Lazily: a running timer due no
 * later than the new deadline is left alone and re-armed when it fires early (on_timer), so the
 * calls made for every request and body chunk do not each stop and restart a libuv timer.
 */
static void
arm(struct hconn *hc, enum timer_kind k)
{
	uint32_t ms = 0;

	hc->tkind = k;
	switch (k) {
	case T_PROXY: ms = policy(hc)->timeout_ms; break;
	case T_HEADER: ms = hc->f->conf.header_timeout_ms; break;
	case T_IDLE: ms = hc->f->conf.idle_timeout_ms; break;
	case T_RESPONSE: ms = hc->f->conf.response_timeout_ms; break;
	case T_TUNNEL: ms = hc->f->conf.websocket_idle_timeout_ms; break;
	case T_NONE: return;	/* a running timer finds T_NONE and does nothing */
	}
	hc->deadline = uv_now(hc->timer.loop) + ms;
	if (uv_is_active((uv_handle_t *)&hc->timer) && hc->timer_due <= hc->deadline)
		return;
	hc->timer_due = hc->deadline;
	uv_timer_start(&hc->timer, on_timer, ms, 0);
}

/* --- the exchange with the instance ----------------------------------------------------------- */

static void
exchange_reset(struct hconn *hc)
{
	if (hc->up != NULL) {
		uconn_close(hc->up);
		hc->up = NULL;
	}
	inst_unref(hc->in);
	hc->in = NULL;
	head_reset(&hc->rh);
	head_reset(&hc->ph);
	pg_buf_reset(&hc->form);
	pg_buf_reset(&hc->sent_head);
	hc->set_cookie[0] = '\0';
	hc->login_unconfirmed = 0;
	hc->resp_state = RESP_NONE;
	hc->req_state = REQ_IDLE;
	hc->retried = hc->tunnel = 0;
}

/* Both directions are done: reuse what can be reused and read the next request. */
static void
exchange_done(struct hconn *hc)
{
	int up_keep = !hc->resp_close_delimited && llhttp_should_keep_alive(&hc->pp);

	if (hc->up != NULL) {
		if (up_keep)
			uconn_release(hc->up);
		else
			uconn_close(hc->up);
		hc->up = NULL;
	}
	/* While draining for shutdown, a finished exchange is the connection's last. */
	if (!hc->resp_keep_alive || !hc->req_keep_alive || hc->f->draining) {
		exchange_reset(hc);
		hc->close_after_write = 1;
		uv_read_stop((uv_stream_t *)&hc->tcp);
		if (hc->out_queued == 0)
			hc_close(hc);
		return;
	}
	exchange_reset(hc);
	arm(hc, T_IDLE);
	llhttp_resume(&hc->rp);
	parse_requests(hc);
	if (!hc->closing && hc->reading_paused && hc->inbuf.len <= FLOW_LOW &&
	    (hc->up == NULL || uconn_queued(hc->up) < FLOW_LOW)) {
		hc->reading_paused = 0;
		uv_read_start((uv_stream_t *)&hc->tcp, on_alloc, on_read);
	}
}

static void
maybe_done(struct hconn *hc)
{
	if (hc->req_state == REQ_DONE && hc->resp_state == RESP_DONE)
		exchange_done(hc);
}

static int
up_write(struct hconn *hc, const void *p, size_t len)
{
	if (uconn_write(hc->up, p, len) != 0)
		return -1;
	if (uconn_queued(hc->up) > FLOW_HIGH && !hc->reading_paused) {
		hc->reading_paused = 1;
		uv_read_stop((uv_stream_t *)&hc->tcp);
	}
	return 0;
}

static void
send_body_piece(struct hconn *hc, const char *at, size_t len)
{
	char chunk[24];

	if (len == 0 || hc->up == NULL)
		return;
	if (hc->req_chunked) {
		snprintf(chunk, sizeof(chunk), "%zx\r\n", len);
		up_write(hc, chunk, strlen(chunk));
		up_write(hc, at, len);
		up_write(hc, "\r\n", 2);
	} else {
		up_write(hc, at, len);
	}
}

/* Starts the exchange on the routed instance: an upstream connection and the request head. */
static void
start_upstream(struct hconn *hc)
{
	struct uconn_owner owner = { up_data, up_event, hc };
	struct fwd_info fi = { hc->client_ip, "https", hc->l->port, hc->req_upgrade, hc->req_chunked,
		hc->form.len > 0 };
	int r;

	hc->up = upool_get(hc->f->upool, hc->in, &owner, &hc->up_reused);
	if (hc->up == NULL) {
		LOG_NOTICE(hc->peer, "instance %s: cannot connect", hc->in->conf.id);
		hc->f->stats.upstream_errors++;
		send_page(hc, 502);
		return;
	}
	if (hc->sent_head.len == 0 &&
	    (r = head_write_request(&hc->rh, hc->method, &fi, &hc->sent_head)) != 0) {
		send_page(hc, r == PG_ETOOBIG ? 431 : 500);
		return;
	}
	llhttp_init(&hc->pp, HTTP_RESPONSE, &hc->f->resp_settings);
	hc->pp.data = hc;
	head_reset(&hc->ph);
	hc->resp_state = RESP_WAIT;
	up_write(hc, hc->sent_head.p, hc->sent_head.len);
	if (hc->form.len > 0)
		send_body_piece(hc, (const char *)hc->form.p, hc->form.len);
}

/* Routing decision for the request whose head (and login form) has arrived. */
static void
route_and_start(struct hconn *hc)
{
	struct route_req rq;
	struct route_result res;

	memset(&rq, 0, sizeof(rq));
	rq.url = head_url(&hc->rh);
	rq.cookie = head_get(&hc->rh, "cookie");
	if (hc->req_state == REQ_FORM)
		rq.form = (struct pg_slice){ hc->form.p ? hc->form.p : (const uint8_t *)"",
			hc->form.len };
	rq.now_ms = pg_wall_ms();
	if (route_pick(hc->f->rt, &rq, &res) != 0 || res.in == NULL) {
		LOG_NOTICE(hc->peer, "%s for %s: answering 503", res.pool_full ? "pool full" :
		    "no instance", res.user[0] ? res.user : "this browser");
		send_page_full(hc, 503, res.pool_full);
		return;
	}
	hc->in = res.in;
	snprintf(hc->set_cookie, sizeof(hc->set_cookie), "%s", res.set_cookie);
	snprintf(hc->user, sizeof(hc->user), "%s", res.user);
	hc->login_unconfirmed = res.login_unconfirmed;
	LOG_DEBUG(hc->peer, "%s %.*s -> %s%s%s", hc->method, (int)rq.url.len, rq.url.p,
	    hc->in->conf.id, res.user[0] ? " for " : "", res.user);
	start_upstream(hc);
}

/* --- request parsing (client -> instance) ----------------------------------------------------- */

static int
rq_on_message_begin(llhttp_t *p)
{
	struct hconn *hc = p->data;

	hc->req_state = REQ_HEAD;
	hc->method[0] = '\0';
	head_reset(&hc->rh);
	arm(hc, T_HEADER);
	return 0;
}

static int
rq_on_url(llhttp_t *p, const char *at, size_t len)
{
	return head_add_url(&((struct hconn *)p->data)->rh, at, len);
}

static int
rq_on_method(llhttp_t *p, const char *at, size_t len)
{
	struct hconn *hc = p->data;
	size_t n = strlen(hc->method);

	if (len >= sizeof(hc->method) - n)
		return HPE_USER;
	memcpy(hc->method + n, at, len);
	hc->method[n + len] = '\0';
	return 0;
}

static int
rq_on_field(llhttp_t *p, const char *at, size_t len)
{
	return head_add_name(&((struct hconn *)p->data)->rh, at, len);
}

static int
rq_on_value(llhttp_t *p, const char *at, size_t len)
{
	return head_add_value(&((struct hconn *)p->data)->rh, at, len);
}

static int
is_login_form(struct hconn *hc)
{
	struct pg_slice url = head_url(&hc->rh), ct = head_get(&hc->rh, "content-type");
	size_t plen = 0;

	while (plen < url.len && url.p[plen] != '?')
		plen++;
	return strcmp(hc->method, "POST") == 0 && plen >= 10 &&
	    memcmp(url.p + plen - 10, "/hub/login", 10) == 0 && ct.p != NULL && ct.len >= 33 &&
	    strncasecmp((const char *)ct.p, "application/x-www-form-urlencoded", 33) == 0 &&
	    !hc->req_chunked && hc->rp.content_length <= FORM_MAX;
}

static int
rq_on_headers_complete(llhttp_t *p)
{
	struct hconn *hc = p->data;
	const char *why;

	hc->req_keep_alive = llhttp_should_keep_alive(p);
	hc->req_chunked = (p->flags & F_CHUNKED) != 0;
	hc->req_upgrade = p->upgrade;
	hc->req_http10 = p->http_major == 1 && p->http_minor == 0;
	hc->req_head_method = llhttp_get_method(p) == HTTP_HEAD;
	if (hc->req_upgrade) {
		struct pg_slice up = head_get(&hc->rh, "upgrade");
		if (up.p == NULL || !pg_slice_eq_ci(up, "websocket"))
			hc->req_upgrade = 0;	/* only websockets are tunnelled */
	}
	/*
	 * What llhttp leaves to us (Host, versions, websocket handshake fields): a bad head gets its
	 * 400 and a log line here, on either listener, before any routing or redirect.
	 */
	why = head_check_request(&hc->rh, hc->method, p->http_major, p->http_minor,
	    hc->req_upgrade);
	if (why != NULL) {
		reject(hc, 400, why);
		return HPE_PAUSED;
	}
	if (!hc->l->tls)
		return HPE_PAUSED;	/* the redirect listener answers now */
	arm(hc, T_IDLE);
	if (is_login_form(hc)) {
		/*
		 * Buffer the (small) form: the user it names picks the instance. A client that waits
		 * for 100 Continue before sending it would wait for us forever, so we answer that
		 * ourselves and the instance never sees the Expect.
		 */
		struct pg_slice expect = head_get(&hc->rh, "expect");
		hc->req_state = REQ_FORM;
		if (expect.p != NULL && pg_slice_eq_ci(expect, "100-continue") &&
		    hc->rp.content_length > 0)
			down_write(hc, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		return 0;
	}
	hc->req_state = REQ_ROUTING;
	route_and_start(hc);
	if (hc->closing || hc->close_after_write)
		return HPE_PAUSED;
	hc->req_state = REQ_BODY;
	return 0;
}

static int
rq_on_body(llhttp_t *p, const char *at, size_t len)
{
	struct hconn *hc = p->data;

	if (hc->req_state == REQ_FORM) {
		if (pg_buf_append(&hc->form, at, len) != 0)
			return HPE_USER;
		return 0;
	}
	arm(hc, T_IDLE);
	send_body_piece(hc, at, len);
	return 0;
}

static int
rq_on_message_complete(llhttp_t *p)
{
	struct hconn *hc = p->data;

	if (!hc->l->tls)
		return HPE_PAUSED;
	if (hc->req_state == REQ_FORM) {
		route_and_start(hc);	/* the form goes out right after the head */
	} else if (hc->req_chunked && hc->up != NULL) {
		up_write(hc, "0\r\n\r\n", 5);
	}
	hc->req_state = REQ_DONE;
	if (!hc->closing && !hc->close_after_write && hc->resp_state == RESP_WAIT)
		arm(hc, T_RESPONSE);
	/* Parse nothing more until this exchange's response is done (ordering). */
	return HPE_PAUSED;
}

static void
reject(struct hconn *hc, int status, const char *why)
{
	hc->f->stats.bad_requests++;
	LOG_NOTICE(hc->peer, "%d %s: %s; closing", status, page_reason(status), why);
	send_page(hc, status);
}

/*
 * Runs the request parser over inbuf until it needs us: routing, waiting for a response, an
 * upgrade, or more bytes.
 */
static void
parse_requests(struct hconn *hc)
{
	llhttp_errno_t e;
	const char *pos, *why;
	size_t used;
	int st;

	if (hc->closing || hc->inbuf.len == 0 || hc->tunnel)
		return;
	if (llhttp_get_errno(&hc->rp) == HPE_PAUSED || llhttp_get_errno(&hc->rp) == HPE_PAUSED_UPGRADE)
		return;	/* paused by us: resumed when the exchange is done */
	e = llhttp_execute(&hc->rp, (const char *)hc->inbuf.p, hc->inbuf.len);
	if (hc->closing)
		return;
	if (e == HPE_OK) {
		pg_buf_reset(&hc->inbuf);
		return;
	}
	if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
		/* What follows the request (the next one, or early websocket bytes) waits here. */
		pos = llhttp_get_error_pos(&hc->rp);
		used = pos != NULL ? (size_t)(pos - (const char *)hc->inbuf.p) : hc->inbuf.len;
		pg_buf_consume(&hc->inbuf, used);
		return;
	}
	if (hc->close_after_write)
		return;	/* we already answered (and a callback stopped the parser) */
	why = llhttp_get_error_reason(&hc->rp);
	st = 400;
	if (e == HPE_USER && hc->rh.limit != 0)
		st = hc->rh.limit;
	else if (e == HPE_USER && hc->req_state == REQ_FORM)
		st = 413;
	reject(hc, st, st == 414 ? "request target too long" : st == 431 ?
	    "request head too large" : why != NULL ? why : llhttp_errno_name(e));
}

/* --- response parsing (instance -> client) ---------------------------------------------------- */

static int
rs_on_status(llhttp_t *p, const char *at, size_t len)
{
	return head_add_url(&((struct hconn *)p->data)->ph, at, len);
}

static int
rs_on_field(llhttp_t *p, const char *at, size_t len)
{
	return head_add_name(&((struct hconn *)p->data)->ph, at, len);
}

static int
rs_on_value(llhttp_t *p, const char *at, size_t len)
{
	return head_add_value(&((struct hconn *)p->data)->ph, at, len);
}

static int
rs_on_headers_complete(llhttp_t *p)
{
	struct hconn *hc = p->data;
	int status = p->status_code;
	struct pg_buf out;
	int r, skip_body = 0;

	if (status >= 100 && status < 200 && status != 101) {
		/* Interim (100 Continue): pass it on and wait for the real response. */
		char line[64];
		int n = snprintf(line, sizeof(line), "HTTP/1.1 %d Continue\r\n\r\n", status);
		down_write(hc, line, (size_t)n);
		head_reset(&hc->ph);
		return 0;
	}
	hc->resp_status = status;
	hc->resp_close_delimited = 0;
	/* JupyterHub answers an accepted login with a redirect that sets its login cookie. */
	if (hc->login_unconfirmed && (status == 302 || status == 303) &&
	    head_get(&hc->ph, "set-cookie").p != NULL)
		route_login_accepted(hc->f->rt, hc->user, hc->in, pg_wall_ms());
	if (status == 101) {
		if (!hc->req_upgrade)
			return HPE_USER;	/* an upgrade we did not ask for */
		hc->framing = BODY_NONE;
	} else if (hc->req_head_method || status == 204 || status == 304) {
		hc->framing = BODY_NONE;
		skip_body = 1;
	} else if (p->flags & F_CONTENT_LENGTH) {
		hc->framing = BODY_LENGTH;
	} else if (p->flags & F_CHUNKED) {
		hc->framing = hc->req_http10 ? BODY_CLOSE : BODY_CHUNKED;
	} else {
		hc->resp_close_delimited = 1;
		hc->framing = hc->req_http10 ? BODY_CLOSE : BODY_CHUNKED;
	}
	/* A failed upgrade leaves the client parser in upgrade mode: the connection ends after it. */
	hc->resp_keep_alive = hc->framing != BODY_CLOSE && !(hc->req_upgrade && status != 101);
	pg_buf_init(&out, RESP_HEAD_MAX + sizeof(hc->set_cookie) + 256);
	r = head_write_response(&hc->ph, status, hc->framing,
	    hc->resp_keep_alive && hc->req_keep_alive && !hc->f->draining,
	    hc->set_cookie[0] ? hc->set_cookie : NULL, &out);
	if (r == 0)
		r = down_write(hc, out.p, out.len);
	pg_buf_free(&out);
	if (r != 0)
		return HPE_USER;
	count_status(hc, status);
	hc->resp_state = RESP_BODY;
	arm(hc, status == 101 ? T_TUNNEL : T_IDLE);
	return skip_body;
}

static int
rs_on_body(llhttp_t *p, const char *at, size_t len)
{
	struct hconn *hc = p->data;
	char chunk[24];

	arm(hc, T_IDLE);
	if (hc->framing == BODY_CHUNKED) {
		int n = snprintf(chunk, sizeof(chunk), "%zx\r\n", len);
		if (down_write(hc, chunk, (size_t)n) != 0 || down_write(hc, at, len) != 0 ||
		    down_write(hc, "\r\n", 2) != 0)
			return HPE_USER;
		return 0;
	}
	return down_write_body(hc, at, len) == 0 ? 0 : HPE_USER;
}

static int
rs_on_message_complete(llhttp_t *p)
{
	struct hconn *hc = p->data;

	if (hc->resp_state != RESP_BODY || hc->resp_status == 101)
		return 0;	/* an interim response ended, or llhttp now pauses for the upgrade */
	if (hc->framing == BODY_CHUNKED && down_write(hc, "0\r\n\r\n", 5) != 0)
		return HPE_USER;
	hc->resp_state = RESP_DONE;
	return HPE_PAUSED;
}

/* 101: from now on both connections are one byte tunnel. */
static void
open_tunnel(struct hconn *hc, const uint8_t *rest, size_t len)
{
	hc->tunnel = 1;
	hc->f->stats.websockets_total++;
	hc->f->stats.websockets_open++;
	hc->live = route_live_begin(hc->f->rt, hc->user, hc->in);
	LOG_DEBUG(hc->peer, "websocket to %s", hc->in->conf.id);
	if (len > 0)
		down_write(hc, rest, len);
	if (hc->inbuf.len > 0 && hc->up != NULL) {
		up_write(hc, hc->inbuf.p, hc->inbuf.len);
		pg_buf_reset(&hc->inbuf);
	}
	arm(hc, T_TUNNEL);
}

static void up_parse(struct hconn *hc, const uint8_t *p, size_t len);

static void
up_data(void *arg, const uint8_t *p, size_t len)
{
	struct hconn *hc = arg;

	if (hc->closing)
		return;
	if (hc->tunnel) {
		arm(hc, T_TUNNEL);
		down_write(hc, p, len);
		return;
	}
	hc->batching = 1;
	up_parse(hc, p, len);
	if (hc->closing) {
		hc->batch_ref.p = NULL;	/* p is gone after this call */
		return;
	}
	down_flush(hc);
	if (hc->resp_finished) {
		hc->resp_finished = 0;
		maybe_done(hc);
	}
}

/* Parses one read of the instance's response (batched by up_data). */
static void
up_parse(struct hconn *hc, const uint8_t *p, size_t len)
{
	llhttp_errno_t e;

	if (hc->resp_state == RESP_NONE || hc->resp_state == RESP_DONE) {
		/* Bytes the instance sends outside a response: it is broken; drop the connection. */
		uconn_close(hc->up);
		hc->up = NULL;
		return;
	}
	e = llhttp_execute(&hc->pp, (const char *)p, len);
	if (e == HPE_OK)
		return;
	if (e == HPE_PAUSED_UPGRADE && hc->resp_status == 101) {
		const char *pos = llhttp_get_error_pos(&hc->pp);
		size_t used = pos != NULL ? (size_t)(pos - (const char *)p) : len;
		open_tunnel(hc, p + used, len - used);
		return;
	}
	if (e == HPE_PAUSED) {
		hc->resp_finished = 1;	/* maybe_done() once the batch is on its way */
		return;
	}
	/* A response we cannot relay faithfully: the client must not get half of it as whole. */
	LOG_NOTICE(hc->peer, "instance %s sent an invalid response: %s", hc->in->conf.id,
	    llhttp_get_error_reason(&hc->pp) ? llhttp_get_error_reason(&hc->pp) :
	    llhttp_errno_name(e));
	hc->f->stats.upstream_errors++;
	if (hc->resp_state == RESP_WAIT)
		send_page(hc, 502);
	else
		hc_close(hc);
}

static void
up_event(void *arg, enum uconn_event ev)
{
	struct hconn *hc = arg;
	const char *err = hc->up != NULL ? uconn_error(hc->up) : "?";

	if (hc->closing)
		return;
	switch (ev) {
	case UC_OPEN:
		return;
	case UC_DRAINED:
		if (hc->reading_paused) {
			hc->reading_paused = 0;
			if (!hc->close_after_write)
				uv_read_start((uv_stream_t *)&hc->tcp, on_alloc, on_read);
		}
		return;
	case UC_EOF:
		if (hc->tunnel) {
			hc->close_after_write = 1;
			if (hc->out_queued == 0)
				hc_close(hc);
			return;
		}
		if (hc->resp_state == RESP_BODY && hc->resp_close_delimited) {
			llhttp_finish(&hc->pp);	/* fires message complete for a close-delimited body */
			maybe_done(hc);
			return;
		}
		/* fall through */
	case UC_ERROR:
	case UC_TIMEOUT:
		if (hc->resp_state == RESP_WAIT && hc->up_reused && !hc->retried &&
		    hc->req_state == REQ_DONE && (strcmp(hc->method, "GET") == 0 ||
		    strcmp(hc->method, "HEAD") == 0)) {
			/* A reused connection the instance had just closed: try once on a new one. */
			hc->retried = 1;
			uconn_close(hc->up);
			hc->up = NULL;
			start_upstream(hc);
			return;
		}
		hc->f->stats.upstream_errors++;
		LOG_NOTICE(hc->peer, "instance %s: %s", hc->in ? hc->in->conf.id : "?", err);
		if (hc->resp_state == RESP_WAIT)
			send_page(hc, ev == UC_TIMEOUT ? 504 : 502);
		else
			hc_close(hc);
		return;
	}
}

/* --- client connection plumbing ----------------------------------------------------------------- */

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char slab[PG_TURN_READ_SIZE];	/* one loop thread; consumed before the next read */
	struct hconn *hc = h->data;

	if (pg_turn_over(&hc->turn)) {
		*buf = uv_buf_init(NULL, 0);	/* libuv says UV_ENOBUFS; the next turn reads again */
		return;
	}
	buf->base = slab;
	buf->len = sizeof(slab);
}

static void
down_plain(struct hconn *hc, const uint8_t *p, size_t len)
{
	if (hc->tunnel) {
		arm(hc, T_TUNNEL);
		if (hc->up != NULL)
			up_write(hc, p, len);
		return;
	}
	if (hc->req_state == REQ_IDLE && hc->inbuf.len == 0)
		arm(hc, T_HEADER);
	if (pg_buf_append(&hc->inbuf, p, len) != 0) {
		/* The parser is paused and the client keeps sending: flow control failed. */
		reject(hc, 413, "client sent too much while a response was pending");
		return;
	}
	parse_requests(hc);
	/* Pipelined bytes wait while a response is pending: stop reading past FLOW_LOW of them. */
	if (!hc->closing && hc->inbuf.len > FLOW_LOW && !hc->reading_paused) {
		hc->reading_paused = 1;
		uv_read_stop((uv_stream_t *)&hc->tcp);
	}
}

/* The plain-http listener: every request gets a 301 to https. */
static void
redirect_input(struct hconn *hc, const uint8_t *p, size_t len)
{
	struct pg_buf loc, out;
	struct pg_slice host, url;
	llhttp_errno_t e;
	size_t hl;

	if (pg_buf_append(&hc->inbuf, p, len) != 0) {
		reject(hc, 431, "request head too large");
		return;
	}
	e = llhttp_execute(&hc->rp, (const char *)hc->inbuf.p, hc->inbuf.len);
	pg_buf_reset(&hc->inbuf);
	if (e != HPE_OK && e != HPE_PAUSED) {
		reject(hc, e == HPE_USER && hc->rh.limit ? hc->rh.limit : 400, "bad request");
		return;
	}
	if (e != HPE_PAUSED || hc->close_after_write)
		return;	/* more bytes to come, or the head was refused (rq_on_headers_complete) */
	/* Host without its port; the https listener's port is added unless it is 443. */
	host = head_get(&hc->rh, "host");
	url = head_url(&hc->rh);
	hl = host.p != NULL ? host.len : 0;
	if (hl > 0 && host.p[0] != '[') {
		const uint8_t *c = memchr(host.p, ':', host.len);
		if (c != NULL)
			hl = (size_t)(c - host.p);
	} else if (hl > 0) {
		const uint8_t *c = memchr(host.p, ']', host.len);
		hl = c != NULL ? (size_t)(c - host.p) + 1 : hl;
	}
	pg_buf_init(&loc, 16384);
	pg_buf_init(&out, 20000);
	if (hl == 0 || memchr(host.p, '\r', host.len) || memchr(host.p, '\n', host.len)) {
		reject(hc, 400, "no usable Host header to redirect to");
	} else if (pg_buf_append_str(&loc, "https://") != 0 || pg_buf_append(&loc, host.p, hl) != 0 ||
	    (hc->f->https_port != 443 && pg_buf_printf(&loc, ":%u", hc->f->https_port) != 0) ||
	    pg_buf_append(&loc, url.p, url.len) != 0 || pg_buf_append(&loc, "", 1) != 0 ||
	    page_write_redirect(&out, (const char *)loc.p, 0) != 0) {
		reject(hc, 414, "redirect target too long");
	} else {
		hc->f->stats.redirects++;
		count_status(hc, 301);
		down_write(hc, out.p, out.len);
		hc->close_after_write = 1;
		uv_read_stop((uv_stream_t *)&hc->tcp);
		if (!hc->closing && hc->out_queued == 0)
			hc_close(hc);
	}
	pg_buf_free(&loc);
	pg_buf_free(&out);
}

/*
 * The client will send nothing more. One that half-closes after a whole request still gets the
 * response, and the connection ends after it (returns 1); otherwise its leaving ends everything,
 * websockets included (returns 0: the caller closes).
 */
static int
client_finished_sending(struct hconn *hc)
{
	if (hc->tunnel || hc->req_state != REQ_DONE ||
	    (hc->resp_state != RESP_WAIT && hc->resp_state != RESP_BODY))
		return 0;
	hc->req_keep_alive = 0;
	uv_read_stop((uv_stream_t *)&hc->tcp);
	return 1;
}

static void client_bytes(struct hconn *hc, const uint8_t *p, size_t n);
static int admit(struct hconn *hc);
static void set_client(struct hconn *hc);

/* A trusted balancer's PROXY header, before anything else on the connection. */
static void
header_input(struct hconn *hc, const uint8_t *p, size_t n)
{
	struct pg_slice rest[2];
	int r = ppc_feed(&hc->ppc, policy(hc), p, n, &hc->src, rest, hc->peer);

	if (r == 0)
		return;
	if (r < 0) {
		hc->f->stats.bad_requests++;
		hc_close(hc);
		return;
	}
	set_client(hc);
	arm(hc, T_HEADER);
	if (admit(hc) == 0) {
		for (int i = 0; i < 2 && !hc->closing; i++) {
			if (rest[i].len > 0)
				client_bytes(hc, rest[i].p, rest[i].len);
		}
	}
	ppc_done(&hc->ppc);
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct hconn *hc = s->data;

	pg_busypoll_touch();
	pg_turn_after_read(&hc->turn, n);
	if (hc->closing || n == 0 || n == UV_ENOBUFS)
		return;
	if (n < 0) {
		if (n != UV_EOF || !client_finished_sending(hc))
			hc_close(hc);
		return;
	}
	if (ppc_pending(&hc->ppc)) {
		header_input(hc, (const uint8_t *)buf->base, (size_t)n);
		return;
	}
	if (ppc_check_first(&hc->ppc, policy(hc), (const uint8_t *)buf->base, (size_t)n,
	    hc->peer) != 0) {
		hc->f->stats.bad_requests++;
		hc_close(hc);
		return;
	}
	client_bytes(hc, (const uint8_t *)buf->base, (size_t)n);
}

/* What the client sent: TLS records (or plain http on the redirect listener). */
static void
client_bytes(struct hconn *hc, const uint8_t *p, size_t n)
{
	uint8_t plain[16384];
	size_t got;
	int r;

	if (hc->tls == NULL) {
		if (hc->l->tls)
			return;
		redirect_input(hc, p, n);
		return;
	}
	if (tls_conn_feed(hc->tls, p, n) != 0)
		goto tls_fail;
	if (!hc->handshaken) {
		r = tls_conn_handshake(hc->tls);
		if (flush_tls(hc) != 0 || r < 0)
			goto tls_fail;
		if (r == 0)
			return;
		hc->handshaken = 1;
		if (hc->counted)
			hlim_release(&hc->f->lim, (struct sockaddr *)&hc->src, uv_now(hc->f->loop));
		hc->counted = 0;
		tls_server_set_unref(hc->tlsset);
		hc->tlsset = NULL;
		arm(hc, T_IDLE);
	}
	while (!hc->closing) {
		r = tls_conn_read(hc->tls, plain, sizeof(plain), &got);
		if (flush_tls(hc) != 0)
			goto tls_fail;
		if (r == PG_ECLOSED) {
			/* close_notify: TLS's own half-close, treated like the socket's EOF. */
			if (!client_finished_sending(hc))
				hc_close(hc);
			return;
		}
		if (r != 0)
			goto tls_fail;
		if (got == 0)
			return;
		down_plain(hc, plain, got);
	}
	return;
tls_fail:
	hc->f->stats.tls_failures++;
	LOG_NOTICE(hc->peer, "TLS: %s; closing", tls_conn_error(hc->tls));
	flush_tls(hc);	/* the alert, if any */
	hc_close(hc);
}

static void
on_hc_closed(uv_handle_t *h)
{
	struct hconn *hc = h->data;
	struct http_front *f = hc->f;

	if (--hc->closes > 0)
		return;
	if (hc->counted)
		hlim_release(&f->lim, (struct sockaddr *)&hc->src, uv_now(f->loop));
	ppc_done(&hc->ppc);
	if (hc->prev != NULL)
		hc->prev->next = hc->next;
	else
		f->conns = hc->next;
	if (hc->next != NULL)
		hc->next->prev = hc->prev;
	tls_conn_free(hc->tls);
	tls_server_set_unref(hc->tlsset);
	head_free(&hc->rh);
	head_free(&hc->ph);
	pg_buf_free(&hc->inbuf);
	pg_buf_free(&hc->form);
	pg_buf_free(&hc->sent_head);
	pg_buf_free(&hc->outbatch);
	free(hc);
	f->stats.conns_open--;
	front_maybe_free(f);
}

/* The front goes when it was stopped and nothing of it is left running. */
static void
front_maybe_free(struct http_front *f)
{
	if (!f->stopping || f->conns != NULL || f->closing_listeners != 0 || f->reloads != 0)
		return;
	upool_free(f->upool);
	tls_server_set_unref(f->tls);
	hlim_free(&f->lim);
	free(f->listeners);
	free(f);
}

/* The one place a client connection dies. */
static void
hc_close(struct hconn *hc)
{
	if (hc->closing)
		return;
	hc->closing = 1;
	if (hc->tunnel)
		hc->f->stats.websockets_open--;
	if (hc->live) {
		hc->live = 0;
		route_live_end(hc->f->rt, hc->user, hc->in, pg_wall_ms());
	}
	if (hc->up != NULL) {
		uconn_close(hc->up);
		hc->up = NULL;
	}
	inst_unref(hc->in);
	hc->in = NULL;
	uv_close((uv_handle_t *)&hc->tcp, on_hc_closed);
	uv_close((uv_handle_t *)&hc->timer, on_hc_closed);
}

/* The client's address names the connection in logs and goes to X-Forwarded-For. */
static void
set_client(struct hconn *hc)
{
	char addr[PG_ADDRSTRLEN];

	snprintf(hc->peer, sizeof(hc->peer), "%s %s", hc->l->tls ? "https" : "http",
	    pg_addr_format((struct sockaddr *)&hc->src, addr));
	pg_addr_ip((struct sockaddr *)&hc->src, hc->client_ip);
}

/* A TLS connection counts among the handshakes in progress (http.limits) or is closed. */
static int
admit(struct hconn *hc)
{
	if (!hc->l->tls)
		return 0;
	if (hlim_admit(&hc->f->lim, (struct sockaddr *)&hc->src, uv_now(hc->f->loop),
	    hc->peer) != NULL) {
		hc->f->stats.conns_rejected++;
		hc_close(hc);
		return -1;
	}
	hc->counted = 1;
	return 0;
}

static void
on_connection(uv_stream_t *ls, int status)
{
	struct listener *l = ls->data;
	struct http_front *f = l->f;
	int sslen = sizeof(struct sockaddr_storage), r;
	struct hconn *hc;

	if (status != 0 || (hc = calloc(1, sizeof(*hc))) == NULL)
		return;
	hc->f = f;
	hc->l = l;
	uv_tcp_init(f->loop, &hc->tcp);
	uv_timer_init(f->loop, &hc->timer);
	hc->tcp.data = hc->timer.data = hc;
	hc->closes = 2;
	hc->next = f->conns;
	if (f->conns != NULL)
		f->conns->prev = hc;
	f->conns = hc;
	f->stats.conns_open++;
	if (uv_accept(ls, (uv_stream_t *)&hc->tcp) != 0) {
		hc_close(hc);
		return;
	}
	if (uv_tcp_getpeername(&hc->tcp, (struct sockaddr *)&hc->src, &sslen) != 0)
		memset(&hc->src, 0, sizeof(hc->src));
	set_client(hc);
	if (f->stats.conns_open > f->conf.max_connections) {
		f->stats.conns_rejected++;
		LOG_NOTICE(hc->peer, "over http.max_connections (%u); closing", f->conf.max_connections);
		hc_close(hc);
		return;
	}
	f->stats.conns_total++;
	pg_buf_init(&hc->inbuf, (size_t)f->conf.max_header_bytes + FLOW_HIGH);
	pg_buf_init(&hc->form, FORM_MAX);
	pg_buf_init(&hc->outbatch, 4u << 20);
	pg_buf_init(&hc->sent_head, (size_t)f->conf.max_header_bytes + 4096);
	if (head_init(&hc->rh, f->conf.max_header_bytes, f->conf.max_headers,
	    f->conf.max_request_line) != 0 ||
	    head_init(&hc->ph, RESP_HEAD_MAX, 256, 1024) != 0) {
		hc_close(hc);
		return;
	}
	llhttp_init(&hc->rp, HTTP_REQUEST, &f->req_settings);
	hc->rp.data = hc;
	uv_tcp_nodelay(&hc->tcp, 1);
	if (l->tls) {
		hc->tlsset = f->tls;
		tls_server_set_ref(hc->tlsset);
		if ((hc->tls = tls_conn_new(tls_server_set_default(f->tls), 1, NULL)) == NULL) {
			hc_close(hc);
			return;
		}
	}
	if ((r = ppc_start(&hc->ppc, policy(hc), (struct sockaddr *)&hc->src)) < 0) {
		hc_close(hc);
		return;
	}
	/* A trusted balancer's header comes first: limits wait for the address it names. */
	arm(hc, r == 1 ? T_PROXY : T_HEADER);
	if ((r == 0 && admit(hc) != 0) ||
	    uv_read_start((uv_stream_t *)&hc->tcp, on_alloc, on_read) != 0)
		hc_close(hc);
}

static void
settings_init(llhttp_settings_t *rs, llhttp_settings_t *ps)
{
	llhttp_settings_init(rs);
	rs->on_message_begin = rq_on_message_begin;
	rs->on_method = rq_on_method;
	rs->on_url = rq_on_url;
	rs->on_header_field = rq_on_field;
	rs->on_header_value = rq_on_value;
	rs->on_headers_complete = rq_on_headers_complete;
	rs->on_body = rq_on_body;
	rs->on_message_complete = rq_on_message_complete;
	llhttp_settings_init(ps);
	ps->on_status = rs_on_status;
	ps->on_header_field = rs_on_field;
	ps->on_header_value = rs_on_value;
	ps->on_headers_complete = rs_on_headers_complete;
	ps->on_body = rs_on_body;
	ps->on_message_complete = rs_on_message_complete;
}

static void
on_listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	struct http_front *f = l->f;

	f->closing_listeners--;
	front_maybe_free(f);
}

static int
bind_listeners(struct http_front *f, char **addrs, size_t n, int tls, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		struct listener *l = &f->listeners[f->nlisteners];
		struct sockaddr_storage ss;
		int r;

		l->f = f;
		l->tls = tls;
		snprintf(l->addr, sizeof(l->addr), "%s", addrs[i]);
		if ((r = pg_addr_parse_hostport(l->addr, &ss)) != 0) {
			snprintf(err, errlen, "%s listener %s: %s", tls ? "https" : "http", l->addr,
			    pg_strerror(r));
			return r;
		}
		l->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
		    ((struct sockaddr_in6 *)&ss)->sin6_port);
		if (tls && f->https_port == 0)
			f->https_port = l->port;
		uv_tcp_init(f->loop, &l->tcp);
		l->tcp.data = l;
		f->nlisteners++;
		if ((r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0)) != 0 ||
		    (r = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection)) != 0) {
			snprintf(err, errlen, "%s listener %s: %s", tls ? "https" : "http", l->addr,
			    uv_strerror(r));
			return r;
		}
		LOG_INFO(tls ? "https" : "http", "listening on %s://%s/%s", tls ? "https" : "http",
		    l->addr, tls ? "" : " (redirects to https)");
	}
	return 0;
}

int
front_start(uv_loop_t *loop, const struct pg_config *cfg, struct registry *reg,
    struct router *rt, struct http_front **out, char *err, size_t errlen)
{
	struct http_front *f = calloc(1, sizeof(*f));
	size_t n = cfg->nlisten_https + cfg->nlisten_http;
	int r;

	if (f == NULL || (f->listeners = calloc(n ? n : 1, sizeof(*f->listeners))) == NULL ||
	    (f->upool = upool_new(loop, cfg->http.connect_timeout_ms, UPSTREAM_IDLE_MS)) == NULL) {
		if (f != NULL)
			free(f->listeners);
		free(f);
		snprintf(err, errlen, "out of memory");
		return PG_ENOMEM;
	}
	f->loop = loop;
	f->reg = reg;
	f->rt = rt;
	f->conf = cfg->http;
	f->conf.cookie_name = NULL;
	settings_init(&f->req_settings, &f->resp_settings);
	f->https_port = 443;	/* with no https listener here, redirect to the standard port */
	if (hlim_configure(&f->lim, cfg) != 0) {
		snprintf(err, errlen, "out of memory");
		front_stop(f);
		return PG_ENOMEM;
	}
	if (cfg->nlisten_https > 0)
		f->https_port = 0;
	if (cfg->nlisten_https > 0) {
		if ((r = tls_server_set_load(cfg, &f->tls, err, errlen)) != 0) {
			front_stop(f);
			return r;
		}
		for (size_t i = 0; i < tls_server_set_count(f->tls); i++)
			LOG_INFO("tls", "certificate %s", tls_server_set_describe(f->tls, i));
	}
	if ((r = bind_listeners(f, cfg->listen_https, cfg->nlisten_https, 1, err, errlen)) != 0 ||
	    (r = bind_listeners(f, cfg->listen_http, cfg->nlisten_http, 0, err, errlen)) != 0) {
		front_stop(f);
		return r;
	}
	*out = f;
	return 0;
}

/* A certificate reload on libuv's thread pool: file reads and key parsing stay off the loop. */
struct cert_reload {
	uv_work_t req;
	struct http_front *f;
	struct pg_config cfg;		/* only state_dir and certs are filled */
	struct tls_server_set *set;
	int r;
	char err[512];
};

static void
cert_reload_work(uv_work_t *req)
{
	struct cert_reload *cr = req->data;

	cr->r = tls_server_set_load(&cr->cfg, &cr->set, cr->err, sizeof(cr->err));
}

static void
cert_reload_free(struct cert_reload *cr)
{
	for (size_t i = 0; i < cr->cfg.ncerts; i++) {
		free(cr->cfg.certs[i].cert);
		free(cr->cfg.certs[i].key);
	}
	free(cr->cfg.certs);
	free(cr->cfg.state_dir);
	free(cr);
}

static void
cert_reload_done(uv_work_t *req, int status)
{
	struct cert_reload *cr = req->data;
	struct http_front *f = cr->f;

	f->reloads--;
	if (status != 0 || cr->r != 0) {
		LOG_ERR("tls", "certificates not reloaded, the old ones stay: %s",
		    status != 0 ? uv_strerror(status) : cr->err);
	} else if (f->stopping) {
		tls_server_set_unref(cr->set);
	} else {
		/* Open connections keep the set they started with (their own reference). */
		tls_server_set_unref(f->tls);
		f->tls = cr->set;
		for (size_t i = 0; i < tls_server_set_count(cr->set); i++)
			LOG_INFO("tls", "certificate reloaded: %s", tls_server_set_describe(cr->set, i));
	}
	cert_reload_free(cr);
	front_maybe_free(f);
}

int
front_reload(struct http_front *f, const struct pg_config *cfg, char *err, size_t errlen)
{
	struct cert_reload *cr;
	int r;

	f->conf = cfg->http;
	f->conf.cookie_name = NULL;
	upool_set_connect_timeout(f->upool, cfg->http.connect_timeout_ms);
	if (hlim_configure(&f->lim, cfg) != 0)
		LOG_ERR("reload", "out of memory applying http.limits and proxy_protocol");
	if (f->tls == NULL)
		return 0;
	if ((cr = calloc(1, sizeof(*cr))) == NULL ||
	    (cr->cfg.state_dir = strdup(cfg->state_dir)) == NULL ||
	    (cfg->ncerts > 0 && (cr->cfg.certs = calloc(cfg->ncerts, sizeof(*cr->cfg.certs))) == NULL))
		goto nomem;
	for (size_t i = 0; i < cfg->ncerts; i++) {
		cr->cfg.ncerts++;
		if ((cr->cfg.certs[i].cert = strdup(cfg->certs[i].cert)) == NULL ||
		    (cr->cfg.certs[i].key = strdup(cfg->certs[i].key)) == NULL)
			goto nomem;
	}
	cr->f = f;
	cr->req.data = cr;
	if ((r = uv_queue_work(f->loop, &cr->req, cert_reload_work, cert_reload_done)) != 0) {
		snprintf(err, errlen, "cannot start the certificate reload: %s", uv_strerror(r));
		cert_reload_free(cr);
		return r;
	}
	f->reloads++;
	return 0;
nomem:
	if (cr != NULL)
		cert_reload_free(cr);
	snprintf(err, errlen, "out of memory");
	return PG_ENOMEM;
}

void
front_forget_instance(struct http_front *f, const struct instance *in)
{
	upool_forget(f->upool, in);
}

const struct front_stats *
front_get_stats(const struct http_front *f)
{
	return &f->stats;
}

#define FAMILY(name, type, help) \
	if ((r = pg_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type)) != 0) \
		return r
#define SAMPLE(...) if ((r = pg_buf_printf(out, __VA_ARGS__)) != 0) return r

int
front_render_metrics(void *arg, struct pg_buf *out)
{
	static const char *const klass[] = { "", "1xx", "2xx", "3xx", "4xx", "5xx" };
	const struct http_front *f = arg;
	const struct front_stats *st = &f->stats;
	int r;

	FAMILY("poolgate_http_connections_total", "counter", "HTTPS and HTTP connections accepted.");
	SAMPLE("poolgate_http_connections_total %llu\n", (unsigned long long)st->conns_total);
	FAMILY("poolgate_http_connections_open", "gauge", "Client connections open now.");
	SAMPLE("poolgate_http_connections_open %llu\n", (unsigned long long)st->conns_open);
	FAMILY("poolgate_http_connections_rejected_total", "counter",
	    "Connections refused over http.max_connections.");
	SAMPLE("poolgate_http_connections_rejected_total %llu\n",
	    (unsigned long long)st->conns_rejected);
	FAMILY("poolgate_http_tls_failures_total", "counter", "TLS handshakes or sessions that failed.");
	SAMPLE("poolgate_http_tls_failures_total %llu\n", (unsigned long long)st->tls_failures);
	FAMILY("poolgate_http_responses_total", "counter",
	    "Responses sent to clients by status class.");
	for (int i = 1; i <= 5; i++)
		SAMPLE("poolgate_http_responses_total{code=\"%s\"} %llu\n", klass[i],
		    (unsigned long long)st->requests[i]);
	FAMILY("poolgate_http_bad_requests_total", "counter",
	    "Client connections closed for malformed input or a limit.");
	SAMPLE("poolgate_http_bad_requests_total %llu\n", (unsigned long long)st->bad_requests);
	FAMILY("poolgate_http_upstream_errors_total", "counter",
	    "Exchanges an instance failed (answered 502 or 504, or cut).");
	SAMPLE("poolgate_http_upstream_errors_total %llu\n", (unsigned long long)st->upstream_errors);
	FAMILY("poolgate_http_redirects_total", "counter", "Plain-http requests redirected to https.");
	SAMPLE("poolgate_http_redirects_total %llu\n", (unsigned long long)st->redirects);
	FAMILY("poolgate_http_websockets_total", "counter", "Websockets opened.");
	SAMPLE("poolgate_http_websockets_total %llu\n", (unsigned long long)st->websockets_total);
	FAMILY("poolgate_http_websockets_open", "gauge", "Websockets open now.");
	SAMPLE("poolgate_http_websockets_open %llu\n", (unsigned long long)st->websockets_open);
	return hlim_render_metrics(&f->lim, uv_now(f->loop), out);
}

static void
close_listeners(struct http_front *f)
{
	if (f->listeners_closed)
		return;
	f->listeners_closed = 1;
	for (size_t i = 0; i < f->nlisteners; i++) {
		f->closing_listeners++;
		uv_close((uv_handle_t *)&f->listeners[i].tcp, on_listener_closed);
	}
}

size_t
front_drain(struct http_front *f)
{
	struct hconn *hc, *next;

	if (f == NULL)
		return 0;
	f->draining = 1;
	close_listeners(f);
	/*
	 * A connection between requests (or still in its handshake) has nothing to finish: it goes
	 * now. An exchange in flight or a websocket keeps going until it ends or the grace is up.
	 */
	for (hc = f->conns; hc != NULL; hc = next) {
		next = hc->next;
		if (!hc->tunnel && hc->req_state == REQ_IDLE && hc->resp_state == RESP_NONE &&
		    hc->inbuf.len == 0 && hc->out_queued == 0)
			hc_close(hc);
	}
	return front_live(f);
}

size_t
front_live(const struct http_front *f)
{
	size_t n = 0;

	if (f == NULL)
		return 0;
	for (const struct hconn *hc = f->conns; hc != NULL; hc = hc->next)
		n += !hc->closing;
	return n;
}

void
front_stop(struct http_front *f)
{
	struct hconn *hc, *next;

	if (f == NULL)
		return;
	f->stopping = 1;
	close_listeners(f);
	for (hc = f->conns; hc != NULL; hc = next) {
		next = hc->next;
		hc_close(hc);
	}
	front_maybe_free(f);
}
