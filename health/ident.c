#include "health/ident.h"
#include "core/err.h"

#include <string.h>

int
ssh_ident_scan(const uint8_t *p, size_t len, struct pg_slice *ident)
{
	size_t start = 0, lines = 0;

	while (start < len) {
		const uint8_t *nl = memchr(p + start, '\n', len - start);
		size_t linelen = nl != NULL ? (size_t)(nl - (p + start)) + 1 : len - start;

		if (linelen > SSH_IDENT_MAX_LINE || memchr(p + start, '\0', linelen) != NULL)
			return PG_EPROTO;
		if (nl == NULL)
			return 0;	/* an incomplete line, short enough so far */
		if (linelen >= 4 && memcmp(p + start, "SSH-", 4) == 0) {
			size_t n = linelen - 1;
			if (n > 0 && p[start + n - 1] == '\r')
				n--;
			if (!(n >= 8 && memcmp(p + start, "SSH-2.0-", 8) == 0) &&
			    !(n >= 9 && memcmp(p + start, "SSH-1.99-", 9) == 0))
				return PG_EPROTO;
			ident->p = p + start;
			ident->len = n;
			return 1;
		}
		if (++lines > SSH_IDENT_MAX_LINES)
			return PG_EPROTO;
		start += linelen;
	}
	return 0;
}
