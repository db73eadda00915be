#include "proxy/http/upstream.h"
#include "certs/tls.h"
#include "core/addr.h"
#include "core/buf.h"
#include "core/busypoll.h"
#include "core/err.h"
#include "core/readturn.h"
#include "core/log.h"
#include "core/uvwrite.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UC_HELD_MAX (8u << 20)		/* plaintext held before open; the owner pauses long before */
#define UC_LOW_WATER (64u << 10)
/*
 * Idle connections kept per instance. bench/http showed 32 too few for 50 concurrent browsers:
 * every exchange beyond it closed its connection and the next one paid a new connect.
 */
#define POOL_IDLE_PER_INSTANCE 512

enum uc_state { UCS_CONNECTING, UCS_TLS, UCS_OPEN, UCS_IDLE, UCS_CLOSING };

struct uconn {
	struct upool *pool;
	struct instance *in;		/* our own reference */
	enum uc_state state;
	uv_tcp_t tcp;
	uv_timer_t timer;		/* connect timeout; idle expiry while pooled */
	uv_connect_t creq;
	int closes;
	struct tls_conn *tls;
	struct pg_buf held;		/* plaintext written before open */
	size_t queued;			/* bytes in libuv's write queue */
	int was_above_low;
	struct uconn_owner owner;
	char error[160];
	struct uconn *next_idle;	/* pool list */
	int paused;
	struct pg_read_turn turn;	/* one full read per loop turn (core/readturn.h) */
};

struct tls_cache {
	struct instance *in;		/* referenced */
	SSL_CTX *ctx;
	struct tls_cache *next;
};

struct upool {
	uv_loop_t *loop;
	uint32_t connect_timeout_ms, idle_ms;
	struct uconn *idle;		/* idle connections, any instance */
	struct tls_cache *tls;		/* client contexts per instance */
	size_t live;			/* uconns not yet freed */
	int freeing;
};

static void uc_fail(struct uconn *uc, enum uconn_event ev, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
pool_maybe_free(struct upool *p)
{
	if (p->freeing && p->live == 0) {
		struct tls_cache *t, *next;
		for (t = p->tls; t != NULL; t = next) {
			next = t->next;
			SSL_CTX_free(t->ctx);
			inst_unref(t->in);
			free(t);
		}
		free(p);
	}
}

static void
on_uc_closed(uv_handle_t *h)
{
	struct uconn *uc = h->data;
	struct upool *p = uc->pool;

	if (--uc->closes > 0)
		return;
	tls_conn_free(uc->tls);
	pg_buf_free(&uc->held);
	inst_unref(uc->in);
	free(uc);
	p->live--;
	pool_maybe_free(p);
}

static void
unlink_idle(struct uconn *uc)
{
	for (struct uconn **pp = &uc->pool->idle; *pp != NULL; pp = &(*pp)->next_idle) {
		if (*pp == uc) {
			*pp = uc->next_idle;
			uc->next_idle = NULL;
			return;
		}
	}
}

void
uconn_close(struct uconn *uc)
{
	if (uc == NULL || uc->state == UCS_CLOSING)
		return;
	if (uc->state == UCS_IDLE)
		unlink_idle(uc);
	uc->state = UCS_CLOSING;
	uc->owner.data = NULL;
	uc->owner.event = NULL;
	uv_close((uv_handle_t *)&uc->tcp, on_uc_closed);
	uv_close((uv_handle_t *)&uc->timer, on_uc_closed);
}

static void
emit(struct uconn *uc, enum uconn_event ev)
{
	if (uc->owner.event != NULL)
		uc->owner.event(uc->owner.arg, ev);
}

static void
uc_fail(struct uconn *uc, enum uconn_event ev, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(uc->error, sizeof(uc->error), fmt, ap);
	va_end(ap);
	if (uc->state == UCS_IDLE) {
		/* The instance closed an idle connection: nobody to tell. */
		uconn_close(uc);
		return;
	}
	emit(uc, ev);
}

static void
on_written(void *arg, int status, size_t len)
{
	struct uconn *uc = arg;

	uc->queued -= len;
	if (status != 0 || uc->state == UCS_CLOSING)
		return;	/* a failed write shows as a read error too */
	if (uc->was_above_low && uc->queued < UC_LOW_WATER) {
		uc->was_above_low = 0;
		emit(uc, UC_DRAINED);
	}
}

static int
raw_send(struct uconn *uc, const uint8_t *p, size_t len)
{
	int r = pg_try_write_copy((uv_stream_t *)&uc->tcp, p, len, on_written, uc);

	if (r < 0)
		return r;
	uc->queued += (size_t)r;
	if (uc->queued >= UC_LOW_WATER)
		uc->was_above_low = 1;
	return 0;
}

static int
flush_tls(struct uconn *uc)
{
	struct pg_buf out;
	int r;

	pg_buf_init(&out, 16u << 20);
	if ((r = tls_conn_take_output(uc->tls, &out)) == 0 &&
	    (r = pg_try_write_buf((uv_stream_t *)&uc->tcp, &out, on_written, uc)) > 0) {
		uc->queued += (size_t)r;
		if (uc->queued >= UC_LOW_WATER)
			uc->was_above_low = 1;
		r = 0;
	}
	pg_buf_free(&out);
	return r;
}

static int
send_plain(struct uconn *uc, const uint8_t *p, size_t len)
{
	int r;

	if (uc->tls == NULL)
		return raw_send(uc, p, len);
	if ((r = tls_conn_write(uc->tls, p, len)) != 0)
		return r;
	return flush_tls(uc);
}

int
uconn_write(struct uconn *uc, const void *p, size_t len)
{
	if (uc->state == UCS_CLOSING)
		return PG_ECLOSED;
	if (uc->state != UCS_OPEN)
		return pg_buf_append(&uc->held, p, len);
	return send_plain(uc, p, len);
}

size_t
uconn_queued(const struct uconn *uc)
{
	return uc->queued + uc->held.len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char slab[PG_TURN_READ_SIZE];	/* one loop thread; consumed before the next read */
	struct uconn *uc = h->data;

	if (pg_turn_over(&uc->turn)) {
		*buf = uv_buf_init(NULL, 0);	/* libuv says UV_ENOBUFS; the next turn reads again */
		return;
	}
	buf->base = slab;
	buf->len = sizeof(slab);
}

void
uconn_pause(struct uconn *uc, int pause)
{
	if (uc->state == UCS_CLOSING || uc->paused == pause)
		return;
	uc->paused = pause;
	if (uc->state == UCS_CONNECTING)
		return;
	if (pause)
		uv_read_stop((uv_stream_t *)&uc->tcp);
	else
		uv_read_start((uv_stream_t *)&uc->tcp, on_alloc, on_read);
}

static void
became_open(struct uconn *uc)
{
	int flushed = 0;

	uv_timer_stop(&uc->timer);
	uc->state = UCS_OPEN;
	if (uc->held.len > 0) {
		int r = send_plain(uc, uc->held.p, uc->held.len);
		pg_buf_free(&uc->held);
		if (r != 0) {
			uc_fail(uc, UC_ERROR, "write: %s", pg_strerror(r));
			return;
		}
		flushed = 1;
	}
	emit(uc, UC_OPEN);
	/*
	 * The held bytes counted as queued (uconn_queued()), and may have paused the writer. If the
	 * socket took them at once no write callback will say they left: say it here.
	 */
	if (flushed && uc->state == UCS_OPEN && uc->queued < UC_LOW_WATER)
		emit(uc, UC_DRAINED);
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct uconn *uc = s->data;
	uint8_t plain[16384];
	size_t got;
	int r;

	pg_busypoll_touch();
	pg_turn_after_read(&uc->turn, n);
	if (uc->state == UCS_CLOSING || n == 0 || n == UV_ENOBUFS)
		return;
	if (n < 0) {
		if (n == UV_EOF)
			uc_fail(uc, UC_EOF, "connection closed by the instance");
		else
			uc_fail(uc, UC_ERROR, "%s", uv_strerror((int)n));
		return;
	}
	if (uc->state == UCS_IDLE) {
		/* Bytes on an idle connection: the instance is confused; never reuse it. */
		uconn_close(uc);
		return;
	}
	if (uc->tls == NULL) {
		if (uc->owner.data != NULL)
			uc->owner.data(uc->owner.arg, (const uint8_t *)buf->base, (size_t)n);
		return;
	}
	if (tls_conn_feed(uc->tls, (const uint8_t *)buf->base, (size_t)n) != 0)
		goto tls_fail;
	if (uc->state == UCS_TLS) {
		r = tls_conn_handshake(uc->tls);
		if (r < 0 || flush_tls(uc) != 0)
			goto tls_fail;
		if (r == 0)
			return;
		became_open(uc);
	}
	while (uc->state == UCS_OPEN) {
		r = tls_conn_read(uc->tls, plain, sizeof(plain), &got);
		if (flush_tls(uc) != 0)
			goto tls_fail;
		if (r == PG_ECLOSED) {
			uc_fail(uc, UC_EOF, "connection closed by the instance");
			return;
		}
		if (r != 0)
			goto tls_fail;
		if (got == 0)
			return;
		if (uc->owner.data != NULL)
			uc->owner.data(uc->owner.arg, plain, got);
	}
	return;
tls_fail:
	uc_fail(uc, UC_ERROR, "TLS: %s", tls_conn_error(uc->tls));
}

static SSL_CTX *
tls_ctx_for(struct upool *p, struct instance *in, char *err, size_t errlen)
{
	struct tls_cache *t;

	for (t = p->tls; t != NULL; t = t->next) {
		if (t->in == in)
			return t->ctx;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((t->ctx = tls_client_ctx_new(in->conf.http_ca_file, in->conf.http_tls_verify, err,
	    errlen)) == NULL) {
		free(t);
		return NULL;
	}
	t->in = in;
	inst_ref(in);
	t->next = p->tls;
	p->tls = t;
	return t->ctx;
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct uconn *uc = req->data;
	char err[160];
	SSL_CTX *ctx;

	if (uc->state == UCS_CLOSING)
		return;
	if (status != 0) {
		uc_fail(uc, UC_ERROR, "%s", uv_strerror(status));
		return;
	}
	if (!uc->in->conf.http_tls) {
		if (!uc->paused)
			uv_read_start((uv_stream_t *)&uc->tcp, on_alloc, on_read);
		became_open(uc);
		return;
	}
	if ((ctx = tls_ctx_for(uc->pool, uc->in, err, sizeof(err))) == NULL) {
		uc_fail(uc, UC_ERROR, "TLS: %s", err);
		return;
	}
	if ((uc->tls = tls_conn_new(ctx, 0, uc->in->conf.address)) == NULL) {
		uc_fail(uc, UC_ERROR, "TLS: out of memory");
		return;
	}
	uc->state = UCS_TLS;
	/* The handshake must finish even if the owner paused reading. */
	uv_read_start((uv_stream_t *)&uc->tcp, on_alloc, on_read);
	if (tls_conn_handshake(uc->tls) < 0 || flush_tls(uc) != 0)
		uc_fail(uc, UC_ERROR, "TLS: %s", tls_conn_error(uc->tls));
}

static void
on_timer(uv_timer_t *t)
{
	struct uconn *uc = t->data;

	if (uc->state == UCS_IDLE) {
		uconn_close(uc);
		return;
	}
	uc_fail(uc, UC_TIMEOUT, "no connection within %u ms", uc->pool->connect_timeout_ms);
}

struct upool *
upool_new(uv_loop_t *loop, uint32_t connect_timeout_ms, uint32_t idle_ms)
{
	struct upool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->loop = loop;
	p->connect_timeout_ms = connect_timeout_ms;
	p->idle_ms = idle_ms;
	return p;
}

void
upool_set_connect_timeout(struct upool *p, uint32_t ms)
{
	p->connect_timeout_ms = ms;
}

struct uconn *
upool_get(struct upool *p, struct instance *in, const struct uconn_owner *owner, int *reused)
{
	struct sockaddr_storage ss;
	struct uconn *uc;
	int r;

	for (struct uconn **pp = &p->idle; *pp != NULL; pp = &(*pp)->next_idle) {
		uc = *pp;
		if (uc->in == in) {
			*pp = uc->next_idle;
			uc->next_idle = NULL;
			uv_timer_stop(&uc->timer);
			uc->state = UCS_OPEN;
			uc->owner = *owner;
			uc->error[0] = '\0';
			*reused = 1;
			return uc;
		}
	}
	*reused = 0;
	if (pg_addr_from_ip(in->conf.address, in->conf.http_port, &ss) != 0 ||
	    (uc = calloc(1, sizeof(*uc))) == NULL)
		return NULL;
	uc->pool = p;
	uc->in = in;
	inst_ref(in);
	uc->owner = *owner;
	uc->state = UCS_CONNECTING;
	pg_buf_init(&uc->held, UC_HELD_MAX);
	uv_tcp_init(p->loop, &uc->tcp);
	uv_timer_init(p->loop, &uc->timer);
	uc->tcp.data = uc->timer.data = uc->creq.data = uc;
	uc->closes = 2;
	p->live++;
	uv_tcp_nodelay(&uc->tcp, 1);
	uv_timer_start(&uc->timer, on_timer, p->connect_timeout_ms, 0);
	if ((r = uv_tcp_connect(&uc->creq, &uc->tcp, (struct sockaddr *)&ss, on_connect)) != 0) {
		/* Report asynchronously-shaped: the owner gets UC_ERROR on its first event. */
		snprintf(uc->error, sizeof(uc->error), "%s", uv_strerror(r));
		uc->state = UCS_CLOSING;
		uv_close((uv_handle_t *)&uc->tcp, on_uc_closed);
		uv_close((uv_handle_t *)&uc->timer, on_uc_closed);
		return NULL;
	}
	return uc;
}

void
uconn_release(struct uconn *uc)
{
	struct upool *p = uc->pool;
	size_t n = 0;

	if (uc->state != UCS_OPEN || p->freeing || uc->in->removed || uc->held.len > 0) {
		uconn_close(uc);
		return;
	}
	for (struct uconn *i = p->idle; i != NULL; i = i->next_idle)
		n += i->in == uc->in;
	if (n >= POOL_IDLE_PER_INSTANCE) {
		uconn_close(uc);
		return;
	}
	uc->owner.data = NULL;
	uc->owner.event = NULL;
	uc->state = UCS_IDLE;
	/* Keep reading: an idle connection that the instance closes must be noticed. */
	uc->paused = 0;
	uv_read_start((uv_stream_t *)&uc->tcp, on_alloc, on_read);
	uv_timer_start(&uc->timer, on_timer, p->idle_ms, 0);
	uc->next_idle = p->idle;
	p->idle = uc;
}

void
upool_forget(struct upool *p, const struct instance *in)
{
	struct uconn *uc, *next;
	struct tls_cache **tp;

	for (uc = p->idle; uc != NULL; uc = next) {
		next = uc->next_idle;
		if (uc->in == in)
			uconn_close(uc);
	}
	for (tp = &p->tls; *tp != NULL; ) {
		struct tls_cache *t = *tp;
		if (t->in == in) {
			*tp = t->next;
			SSL_CTX_free(t->ctx);
			inst_unref(t->in);
			free(t);
		} else {
			tp = &t->next;
		}
	}
}

void
upool_free(struct upool *p)
{
	if (p == NULL)
		return;
	p->freeing = 1;
	while (p->idle != NULL)
		uconn_close(p->idle);
	pool_maybe_free(p);
}

const char *
uconn_error(const struct uconn *uc)
{
	return uc->error[0] != '\0' ? uc->error : "unknown error";
}

struct instance *
uconn_instance(const struct uconn *uc)
{
	return uc->in;
}
