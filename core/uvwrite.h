/*
 * Writing a copy: libuv keeps a pointer to the bytes until the write completes, and our callers'
 * buffers do not live that long. pg_write_copy() copies into one heap block with the request and
 * frees it after the callback. Used by every connection that writes (probes, ops, both sides of the
 * HTTPS front door).
 */
#ifndef PG_CORE_UVWRITE_H
#define PG_CORE_UVWRITE_H

#include <stddef.h>
#include <uv.h>

#include "core/buf.h"

/* Called once per write: status is 0 or a UV_E* code (UV_ECANCELED when the handle closed). */
typedef void (*pg_write_cb)(void *arg, int status, size_t len);

/*
 * Queues a copy of p[0..len) on s. Returns 0 (cb will run; len == 0 queues nothing and cb does not
 * run) or a negative code (cb will not run). cb may be NULL.
 */
int pg_write_copy(uv_stream_t *s, const void *p, size_t len, pg_write_cb cb, void *arg);

/*
 * The same, without the copy: takes b's memory (b is left empty, its max kept) and frees it after
 * the write. For buffers built only to be written, such as TLS output.
 */
int pg_write_buf(uv_stream_t *s, struct pg_buf *b, pg_write_cb cb, void *arg);

/*
 * Write-through variants for the busy paths (both front doors). When s has nothing queued, the
 * bytes go to the socket at once (uv_try_write) and only what the socket did not take is queued.
 * That skips libuv's write request and its completion, which would cost an epoll_ctl per write.
 * Return the number of bytes left queued (0: all written; cb runs once with that count, and only
 * when it is not 0) or a negative code (cb will not run; for pg_try_write_buf, b keeps its memory).
 * len must be at most INT_MAX (PG_ETOOBIG).
 */
int pg_try_write_copy(uv_stream_t *s, const void *p, size_t len, pg_write_cb cb, void *arg);
int pg_try_write_buf(uv_stream_t *s, struct pg_buf *b, pg_write_cb cb, void *arg);

#endif
