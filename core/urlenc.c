#include "core/urlenc.h"
#include "core/err.h"

static int
hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
pg_pct_decode(const uint8_t *p, size_t len, int plus_space, uint8_t *out, size_t *outlen)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '%') {
			int hi, lo;
			if (len - i < 3 || (hi = hexval(p[i + 1])) < 0 || (lo = hexval(p[i + 2])) < 0)
				return PG_EPARSE;
			out[n++] = (uint8_t)(hi << 4 | lo);
			i += 2;
		} else {
			out[n++] = plus_space && p[i] == '+' ? ' ' : p[i];
		}
	}
	*outlen = n;
	return 0;
}

int
pg_pct_encode_segment(struct pg_buf *out, const char *s)
{
	int r = 0;

	for (; *s != '\0' && r == 0; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			r = pg_buf_append(out, s, 1);
		else
			r = pg_buf_printf(out, "%%%02X", c);
	}
	return r;
}
