/*
 * Reads a whole file without blocking the loop (uv_fs_* on libuv's thread pool), for config reloads
 * and the discovery file.
 */
#ifndef PG_CORE_FILEREAD_H
#define PG_CORE_FILEREAD_H

#include <stddef.h>
#include <uv.h>

#include "core/buf.h"

/*
 * Called once. status is 0 or a negative code (UV_ENOENT, PG_ETOOBIG, ...). data is NUL-terminated,
 * owned by the reader and freed after the callback returns.
 */
typedef void (*pg_fileread_cb)(void *arg, int status, const char *data, size_t len);

/*
 * Starts reading path (at most max bytes). Returns 0 (the callback will run) or a negative code
 * (it will not). Keep arg valid until the callback; there is no cancel.
 */
int pg_fileread(uv_loop_t *loop, const char *path, size_t max, pg_fileread_cb cb, void *arg);

/*
 * The blocking counterpart, for start-up and for work already on libuv's thread pool: appends the
 * regular file at path to out, refusing more than max bytes (counted as read, not trusted from
 * fstat: the file may grow). Returns 0, PG_ENOTFOUND (no such file or directory on the way),
 * PG_EINVAL (not a regular file), PG_ETOOBIG, PG_EIO or PG_ENOMEM; on failure out may hold part of
 * the file.
 */
int pg_read_file(const char *path, size_t max, struct pg_buf *out);

#endif
