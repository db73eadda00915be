/* The short HTML pages poolgate answers with itself. They never name an internal address. */
#ifndef PG_PROXY_HTTP_PAGES_H
#define PG_PROXY_HTTP_PAGES_H

#include "core/buf.h"

/*
 * Writes a complete response (head and body, "Connection: close") for status into out: 400, 408,
 * 413, 414, 431, 500, 502, 503 (with Retry-After), 504. Returns 0 or PG_ETOOBIG / PG_ENOMEM.
 */
int page_write(struct pg_buf *out, int status);

/*
 * The 503 for a full pool (every machine up is at capacity), worded apart from the plain 503 (no
 * machine up), with Retry-After: PAGE_POOL_FULL_RETRY_S.
 */
#define PAGE_POOL_FULL_RETRY_S 120
int page_write_pool_full(struct pg_buf *out);

/* A 301 to location (already validated: no CR or LF). */
int page_write_redirect(struct pg_buf *out, const char *location, int keep_alive);

const char *page_reason(int status);

#endif
