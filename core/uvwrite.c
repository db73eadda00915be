#include "core/uvwrite.h"
#include "core/err.h"

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

int
pg_write_buf(uv_stream_t *s, struct pg_buf *b, pg_write_cb cb, void *arg)
{
	struct write_copy *w;
	uv_buf_t ub;
	int r;

	if (b->len == 0)
		return 0;
	if (b->len > UINT32_MAX || (w = calloc(1, sizeof(*w))) == NULL)
		return PG_ENOMEM;
	w->cb = cb;
	w->arg = arg;
	w->len = b->len;
	w->owned = b->p;
	w->req.data = w;
	ub = uv_buf_init((char *)b->p, (unsigned)b->len);
	if ((r = uv_write(&w->req, s, &ub, 1, on_written)) != 0) {
		free(w);
		return r;	/* b still owns its memory */
	}
	pg_buf_init(b, b->max);
	return 0;
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
