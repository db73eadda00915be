#include "core/uvwrite.h"
#include "core/err.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct write_copy {
	uv_write_t req;
	pg_write_cb cb;
	void *arg;
	size_t len;
	uint8_t *owned;		/* pg_write_buf: the buffer taken over; NULL for copies */
	uint8_t data[];
};

static void
on_written(uv_write_t *req, int status)
{
	struct write_copy *w = req->data;
	pg_write_cb cb = w->cb;
	void *arg = w->arg;
	size_t len = w->len;

	free(w->owned);
	free(w);
	if (cb != NULL)
		cb(arg, status, len);
}

/* Queues b->p[off..len) and takes b's memory (b is left empty) once the write is queued. */
static int
queue_owned(uv_stream_t *s, struct pg_buf *b, size_t off, pg_write_cb cb, void *arg)
{
	struct write_copy *w;
	uv_buf_t ub;
	int r;

	if (b->len - off > UINT32_MAX || (w = calloc(1, sizeof(*w))) == NULL)
		return PG_ENOMEM;
	w->cb = cb;
	w->arg = arg;
	w->len = b->len - off;
	w->owned = b->p;
	w->req.data = w;
	ub = uv_buf_init((char *)b->p + off, (unsigned)(b->len - off));
	if ((r = uv_write(&w->req, s, &ub, 1, on_written)) != 0) {
		free(w);
		return r;	/* b still owns its memory */
	}
	pg_buf_init(b, b->max);
	return 0;
}

int
pg_write_buf(uv_stream_t *s, struct pg_buf *b, pg_write_cb cb, void *arg)
{
	if (b->len == 0)
		return 0;
	return queue_owned(s, b, 0, cb, arg);
}

int
pg_write_copy(uv_stream_t *s, const void *p, size_t len, pg_write_cb cb, void *arg)
{
	struct write_copy *w;
	uv_buf_t b;
	int r;

	if (len == 0)
		return 0;
	if (len > UINT32_MAX || (w = malloc(sizeof(*w) + len)) == NULL)
		return PG_ENOMEM;
	memcpy(w->data, p, len);
	w->cb = cb;
	w->arg = arg;
	w->len = len;
	w->owned = NULL;
	w->req.data = w;
	b = uv_buf_init((char *)w->data, (unsigned)len);
	if ((r = uv_write(&w->req, s, &b, 1, on_written)) != 0) {
		free(w);
		return r;
	}
	return 0;
}

/* What uv_try_write took of p[0..len): 0..len. Errors are left for the queued write to report. */
static size_t
write_now(uv_stream_t *s, const void *p, size_t len)
{
	uv_buf_t b;
	int n;

	if (len == 0 || s->write_queue_size != 0)
		return 0;
	b = uv_buf_init((char *)p, (unsigned)len);
	n = uv_try_write(s, &b, 1);
	return n > 0 ? (size_t)n : 0;
}

int
pg_try_write_copy(uv_stream_t *s, const void *p, size_t len, pg_write_cb cb, void *arg)
{
	size_t done;
	int r;

	if (len > INT_MAX)
		return PG_ETOOBIG;
	if (len == 0 || (done = write_now(s, p, len)) == len)
		return 0;
	if ((r = pg_write_copy(s, (const uint8_t *)p + done, len - done, cb, arg)) != 0)
		return r;
	return (int)(len - done);
}

int
pg_try_write_buf(uv_stream_t *s, struct pg_buf *b, pg_write_cb cb, void *arg)
{
	size_t done, left;
	int r;

	if (b->len > INT_MAX)
		return PG_ETOOBIG;
	if (b->len == 0)
		return 0;
	if ((done = write_now(s, b->p, b->len)) == b->len) {
		pg_buf_reset(b);
		return 0;
	}
	left = b->len - done;
	if ((r = queue_owned(s, b, done, cb, arg)) != 0)
		return r;
	return (int)left;
}
