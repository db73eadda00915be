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

#endif
