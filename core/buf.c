#include "core/buf.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void
pg_buf_init(struct pg_buf *b, size_t max)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

void
pg_buf_free(struct pg_buf *b)
{
	free(b->p);
	pg_buf_init(b, b->max);
}

void
pg_buf_reset(struct pg_buf *b)
{
	b->len = 0;
}

static int
reserve(struct pg_buf *b, size_t extra)
{
	size_t want, ncap;
	uint8_t *np;

	if (extra > b->max - b->len)
		return PG_ETOOBIG;
	want = b->len + extra;
	if (want <= b->cap)
		return 0;
	/*
	 * Start small (or at once at the size asked for: a first append or reservation of 64 KiB
	 * should not pass through nine reallocations), but never above max: the invariant is
	 * cap <= max (buf.h).
	 */
	ncap = b->cap ? b->cap : want > 256 ? want : 256;
	if (ncap > b->max)
		ncap = b->max;
	while (ncap < want)
		ncap = ncap > b->max / 2 ? b->max : ncap * 2;
	if ((np = realloc(b->p, ncap)) == NULL)
		return PG_ENOMEM;
	b->p = np;
	b->cap = ncap;
	return 0;
}

int
pg_buf_reserve(struct pg_buf *b, size_t extra)
{
	return reserve(b, extra);
}

int
pg_buf_append(struct pg_buf *b, const void *data, size_t len)
{
	int r;

	if (len == 0)
		return 0;
	if ((r = reserve(b, len)) != 0)
		return r;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

int
pg_buf_append_str(struct pg_buf *b, const char *s)
{
	return pg_buf_append(b, s, strlen(s));
}

int
pg_buf_append_uint(struct pg_buf *b, uint64_t v)
{
	char tmp[20];	/* UINT64_MAX has 20 digits */
	size_t n = sizeof(tmp);

	do {
		tmp[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return pg_buf_append(b, tmp + n, sizeof(tmp) - n);
}

int
pg_buf_vprintf(struct pg_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n, r;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return PG_EINVAL;
	if ((size_t)n == b->max - b->len) {
		/*
		 * The text fits exactly but vsnprintf's terminator would pass max: format it aside, so
		 * printf refuses only what append would (buf.h).
		 */
		char *tmp = malloc((size_t)n + 1);

		if (tmp == NULL)
			return PG_ENOMEM;
		vsnprintf(tmp, (size_t)n + 1, fmt, ap);
		r = pg_buf_append(b, tmp, (size_t)n);
		free(tmp);
		return r;
	}
	/* +1 for the terminator vsnprintf writes; it is not counted in len. */
	if ((r = reserve(b, (size_t)n + 1)) != 0)
		return r;
	vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
pg_buf_printf(struct pg_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = pg_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

void
pg_buf_consume(struct pg_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

static unsigned char
ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* One pass, no strlen: most calls (header names against a list) fail on the first byte. */
int
pg_slice_eq_ci(struct pg_slice s, const char *lit)
{
	size_t i;

	for (i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)lit[i];

		if (c == '\0' || ascii_lower(s.p[i]) != ascii_lower(c))
			return 0;
	}
	return lit[i] == '\0';
}
