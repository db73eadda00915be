#include "proxy/http/identity.h"
#include "core/err.h"
#include "core/urlenc.h"

#include <string.h>

/*
 * Strict UTF-8 (RFC 3629 section 4): no overlong forms, no surrogates, nothing past U+10FFFF.
 * Returns 1 if p[0..len) is valid.
 */
static int
utf8_valid(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];
		size_t need;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			need = 1, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;	/* continuation byte, 0xc0/0xc1 (always overlong), or 0xf5.. */
		}
		if (len - i - 1 < need)
			return 0;
		for (size_t k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

static int
is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/*
 * Checks and normalises a decoded name into user. form: strip surrounding whitespace first (Tornado's
 * get_argument(strip=True)), and refuse non-ASCII. Returns 1, 0 (empty form name) or an error.
 */
static int
finish(const uint8_t *p, size_t len, int form, char user[IDENTITY_USER_MAX + 1])
{
	int ascii = 1;

	if (form) {
		while (len > 0 && is_space(p[0])) {
			p++;
			len--;
		}
		while (len > 0 && is_space(p[len - 1]))
			len--;
		if (len == 0)
			return 0;
	}
	if (len == 0)
		return PG_EPARSE;
	if (len > IDENTITY_USER_MAX)
		return PG_ETOOBIG;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '/')
			return PG_EPARSE;
		ascii &= p[i] < 0x80;
	}
	/* validate_username(): a name that strip() would change is invalid. */
	if (p[0] == ' ' || p[len - 1] == ' ' || !utf8_valid(p, len))
		return PG_EPARSE;
	if (form && !ascii)
		return PG_ERANGE;
	for (size_t i = 0; i < len; i++)
		user[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + ('a' - 'A') : p[i]);
	user[len] = '\0';
	return 1;
}

static int
has_prefix(const uint8_t *p, size_t len, const char *lit, size_t litlen)
{
	return len >= litlen && memcmp(p, lit, litlen) == 0;
}

int
identity_from_path(struct pg_slice target, char user[IDENTITY_USER_MAX + 1])
{
	static const char *const routes[] = { "/user/", "/hub/user/", "/hub/spawn/",
		"/hub/spawn-pending/", "/hub/api/users/" };
	uint8_t buf[IDENTITY_FORM_MAX];
	const uint8_t *p = target.p, *seg = NULL, *end;
	size_t len = target.len, seglen, n;
	int r;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '?' || p[i] == '#') {
			len = i;
			break;
		}
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]) && seg == NULL; i++) {
		size_t rl = strlen(routes[i]);
		if (has_prefix(p, len, routes[i], rl))
			seg = p + rl;
	}
	if (seg == NULL)
		return 0;
	end = memchr(seg, '/', (size_t)(p + len - seg));
	seglen = end != NULL ? (size_t)(end - seg) : (size_t)(p + len - seg);
	if (seglen == 0)
		return 0;	/* "/user/" or "/hub/api/users/": Tornado's [^/]+ does not match */
	if (seglen > sizeof(buf))
		return PG_ETOOBIG;
	if ((r = pg_pct_decode(seg, seglen, 0, buf, &n)) != 0)
		return r;
	return finish(buf, n, 0, user);
}

int
identity_from_form(struct pg_slice body, char user[IDENTITY_USER_MAX + 1])
{
	static const char field[] = "username";
	uint8_t buf[IDENTITY_FORM_MAX];
	const uint8_t *p = body.p, *val = NULL;
	size_t len = body.len, vallen = 0, n;
	int r;

	if (len > IDENTITY_FORM_MAX)
		return PG_ETOOBIG;
	while (len > 0) {
		const uint8_t *amp = memchr(p, '&', len), *eq;
		size_t flen = amp != NULL ? (size_t)(amp - p) : len, klen;

		eq = memchr(p, '=', flen);
		klen = eq != NULL ? (size_t)(eq - p) : flen;
		/* A name that decodes to "username" is the field; each escape shrinks it by two. */
		if (klen <= 3 * (sizeof(field) - 1) && pg_pct_decode(p, klen, 1, buf, &n) == 0 &&
		    n == sizeof(field) - 1 && memcmp(buf, field, n) == 0) {
			val = eq != NULL ? eq + 1 : p + flen;
			vallen = eq != NULL ? flen - klen - 1 : 0;
		}
		p += flen + (amp != NULL);
		len -= flen + (amp != NULL);
	}
	if (val == NULL)
		return 0;
	if ((r = pg_pct_decode(val, vallen, 1, buf, &n)) != 0)
		return r;
	return finish(buf, n, 1, user);
}

int
identity_is_login(struct pg_slice method, struct pg_slice target)
{
	static const char path[] = "/hub/login";
	size_t pl = sizeof(path) - 1;

	return method.len == 4 && memcmp(method.p, "POST", 4) == 0 && has_prefix(target.p, target.len,
	    path, pl) && (target.len == pl || target.p[pl] == '?');
}
