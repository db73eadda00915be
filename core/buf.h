/*
 * Two buffer types.
 *
 * struct pg_slice is borrowed: a pointer and a length into memory someone else owns, for parsing.
 *
 * struct pg_buf is owned and growable with a hard maximum. Invariants: len <= cap <= max;
 * p == NULL iff cap == 0. Appends that would pass max fail with PG_ETOOBIG and change nothing.
 * pg_buf_free() releases the memory and leaves an empty buffer with the same max.
 */
#ifndef PG_CORE_BUF_H
#define PG_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct pg_slice {
	const uint8_t *p;
	size_t len;
};

struct pg_buf {
	uint8_t *p;
	size_t len, cap, max;
};

#define PG_SLICE_LIT(s) ((struct pg_slice){ (const uint8_t *)(s), sizeof(s) - 1 })

/* A slice over a NUL-terminated string, without its NUL. */
static inline struct pg_slice
pg_slice_str(const char *s)
{
	return (struct pg_slice){ (const uint8_t *)s, strlen(s) };
}

void pg_buf_init(struct pg_buf *b, size_t max);
void pg_buf_free(struct pg_buf *b);
void pg_buf_reset(struct pg_buf *b);	/* len = 0, keeps the memory */

/* Each returns 0 or PG_ETOOBIG / PG_ENOMEM. */
int pg_buf_reserve(struct pg_buf *b, size_t extra);	/* room for extra more bytes, no append */
int pg_buf_append(struct pg_buf *b, const void *data, size_t len);
int pg_buf_append_str(struct pg_buf *b, const char *s);
int pg_buf_append_uint(struct pg_buf *b, uint64_t v);	/* decimal digits, no printf */
int pg_buf_printf(struct pg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int pg_buf_vprintf(struct pg_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Drops the first n bytes (n <= len). */
void pg_buf_consume(struct pg_buf *b, size_t n);

/* ASCII case-insensitive compare of a slice with a C string (whatever the locale); 1 if equal. */
int pg_slice_eq_ci(struct pg_slice s, const char *lit);

#endif
