/*
 * Reads a whole file without blocking the loop (uv_fs_* on libuv's thread pool), for config reloads
 * and the discovery file.
 */
#ifndef PG_CORE_FILEREAD_H
#define PG_CORE_FILEREAD_H

#include <stddef.h>
#include <uv.h>

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

#endif
