#include "certs/keyopts.h"
#include "core/err.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int
keyopts_split(struct pg_slice *rest, struct pg_slice *opts)
{
	size_t i = 0;
	int quoted = 0;

	for (; i < rest->len; i++) {
		uint8_t ch = rest->p[i];

		if (quoted && ch == '\\' && i + 1 < rest->len && rest->p[i + 1] == '"')
			i++;
		else if (ch == '"')
			quoted = !quoted;
		else if (!quoted && (ch == ' ' || ch == '\t'))
			break;
	}
	if (quoted || i == rest->len || i == 0)
		return PG_EPARSE;
	*opts = (struct pg_slice){ rest->p, i };
	rest->p += i;
	rest->len -= i;
	return 0;
}

/* Reads "quoted value" (\" is a quote) from the front of *s into out, NUL-terminated. */
static int
get_value(struct pg_slice *s, char *out, size_t outlen)
{
	size_t i = 1, o = 0;

	if (s->len == 0 || s->p[0] != '"')
		return PG_EPARSE;
	for (; i < s->len && s->p[i] != '"'; i++) {
		uint8_t ch = s->p[i];

		if (ch == '\\' && i + 1 < s->len && s->p[i + 1] == '"')
			ch = s->p[++i];
		if (ch == '\0' || o + 1 >= outlen)
			return PG_EPARSE;
		out[o++] = (char)ch;
	}
	if (i == s->len)
		return PG_EPARSE;
	out[o] = '\0';
	s->p += i + 1;
	s->len -= i + 1;
	return 0;
}

/* Flag options: what each does to the restrictions. */
static const struct {
	const char *name;
	unsigned set, clear;
} flag_opts[] = {
	{ "restrict", KEYOPT_R_ALL, 0 },
	{ "no-pty", KEYOPT_R_PTY, 0 },
	{ "no-port-forwarding", KEYOPT_R_PORTFWD, 0 },
	{ "no-agent-forwarding", KEYOPT_R_AGENT, 0 },
	{ "no-x11-forwarding", KEYOPT_R_X11, 0 },
	{ "no-user-rc", KEYOPT_R_USERRC, 0 },
	{ "pty", 0, KEYOPT_R_PTY },
	{ "port-forwarding", 0, KEYOPT_R_PORTFWD },
	{ "agent-forwarding", 0, KEYOPT_R_AGENT },
	{ "x11-forwarding", 0, KEYOPT_R_X11 },
	{ "user-rc", 0, KEYOPT_R_USERRC },
	{ "no-touch-required", 0, 0 },
};

/* Options whose presence alone means a restriction poolgate cannot enforce. */
static const char *const refused_flags[] = { "verify-required", NULL };
static const char *const refused_values[] = { "command", "environment", "permitopen",
	"permitlisten", "tunnel", NULL };

static int
in_list(struct pg_slice name, const char *const *list)
{
	for (size_t i = 0; list[i] != NULL; i++)
		if (pg_slice_eq_ci(name, list[i]))
			return 1;
	return 0;
}

static void
note_refused(struct keyopts *o, struct pg_slice name)
{
	if (o->refused[0] == '\0')
		snprintf(o->refused, sizeof(o->refused), "%.*s", (int)name.len, name.p);
}

static int
value_opt(struct keyopts *o, struct pg_slice name, struct pg_slice *s, const char **why)
{
	char scratch[KEYOPTS_VALUE_MAX];

	if (pg_slice_eq_ci(name, "from")) {
		if (o->has_from || get_value(s, o->from, sizeof(o->from)) != 0)
			goto bad;
		o->has_from = 1;
	} else if (pg_slice_eq_ci(name, "principals")) {
		if (o->has_principals || get_value(s, o->principals, sizeof(o->principals)) != 0)
			goto bad;
		o->has_principals = 1;
	} else if (pg_slice_eq_ci(name, "expiry-time")) {
		if (o->has_expiry || get_value(s, scratch, sizeof(scratch)) != 0 ||
		    keyopts_parse_time(scratch, &o->expiry) != 0) {
			*why = "bad expiry-time";
			return PG_EPARSE;
		}
		o->has_expiry = 1;
	} else if (in_list(name, refused_values)) {
		if (get_value(s, scratch, sizeof(scratch)) != 0)
			goto bad;
		note_refused(o, name);
	} else {
		*why = "unknown option";
		return PG_EPARSE;
	}
	return 0;
bad:
	*why = "bad or repeated option value";
	return PG_EPARSE;
}

int
keyopts_parse(struct pg_slice list, struct keyopts *o, const char **why)
{
	struct pg_slice s = list;

	memset(o, 0, sizeof(*o));
	while (s.len > 0) {
		struct pg_slice name = { s.p, 0 };
		int done = 0;

		while (name.len < s.len && s.p[name.len] != '=' && s.p[name.len] != ',')
			name.len++;
		s.p += name.len;
		s.len -= name.len;
		if (name.len == 0) {
			*why = "empty option";
			return PG_EPARSE;
		}
		if (s.len > 0 && s.p[0] == '=') {
			s.p++;
			s.len--;
			if (value_opt(o, name, &s, why) != 0)
				return PG_EPARSE;
			done = 1;
		} else if (pg_slice_eq_ci(name, "cert-authority")) {
			o->cert_authority = 1;
			done = 1;
		} else if (in_list(name, refused_flags)) {
			note_refused(o, name);
			done = 1;
		}
		for (size_t i = 0; !done && i < sizeof(flag_opts) / sizeof(flag_opts[0]); i++) {
			if (pg_slice_eq_ci(name, flag_opts[i].name)) {
				o->restricted = (o->restricted | flag_opts[i].set) & ~flag_opts[i].clear;
				done = 1;
			}
		}
		if (!done) {
			*why = "unknown option";
			return PG_EPARSE;
		}
		if (s.len == 0)
			break;
		if (s.p[0] != ',' || s.len == 1) {
			*why = "options must be separated by single commas";
			return PG_EPARSE;
		}
		s.p++;
		s.len--;
	}
	return 0;
}

static const char *
restriction_name(unsigned r)
{
	if (r == KEYOPT_R_ALL)
		return "restrict";
	if (r & KEYOPT_R_PTY)
		return "no-pty";
	if (r & KEYOPT_R_PORTFWD)
		return "no-port-forwarding";
	if (r & KEYOPT_R_AGENT)
		return "no-agent-forwarding";
	if (r & KEYOPT_R_X11)
		return "no-X11-forwarding";
	return "no-user-rc";
}

const char *
keyopts_refusal(const struct keyopts *o, const char *ip, uint64_t now, char *buf, size_t buflen)
{
	int r;

	if (o->refused[0] != '\0') {
		snprintf(buf, buflen, "option %s cannot be enforced through poolgate", o->refused);
		return buf;
	}
	if (o->restricted != 0) {
		snprintf(buf, buflen, "option %s cannot be enforced through poolgate (poolgate passes "
		    "sessions through uninterpreted)", restriction_name(o->restricted));
		return buf;
	}
	if (o->has_principals && !o->cert_authority)
		return "principals= without cert-authority";
	if (o->has_expiry && now >= o->expiry)
		return "expired (expiry-time)";
	if (o->has_from) {
		if (ip == NULL || ip[0] == '\0')
			return "from= given and the client address is not known";
		if ((r = keyopts_from_match(o->from, ip)) < 0)
			return "from= holds a malformed CIDR block";
		if (r == 0) {
			snprintf(buf, buflen, "the client address %s does not match from=\"%s\"", ip,
			    o->from);
			return buf;
		}
	}
	return NULL;
}

/* '*' and '?' wildcards, case-insensitive (OpenSSH match_pattern). Iterative, no recursion. */
static int
wild_match(const char *s, const char *p, size_t plen)
{
	size_t si = 0, pi = 0, star_p = (size_t)-1, star_s = 0, slen = strlen(s);

	while (si < slen) {
		if (pi < plen && (p[pi] == '?' || tolower((unsigned char)p[pi]) ==
		    tolower((unsigned char)s[si]))) {
			si++;
			pi++;
		} else if (pi < plen && p[pi] == '*') {
			star_p = pi++;
			star_s = si;
		} else if (star_p != (size_t)-1) {
			pi = star_p + 1;
			si = ++star_s;
		} else
			return 0;
	}
	while (pi < plen && p[pi] == '*')
		pi++;
	return pi == plen;
}

/* 1 if ip is inside the block "addr/bits", 0 if not, PG_EPARSE if the block is malformed. */
static int
cidr_match(const char *block, size_t len, const char *ip)
{
	char a[INET6_ADDRSTRLEN + 8];
	const char *slash;
	uint8_t net[16], host[16];
	int fam, alen, bits;
	char *end;
	long b;

	if (len >= sizeof(a))
		return PG_EPARSE;
	memcpy(a, block, len);
	a[len] = '\0';
	slash = strchr(a, '/');
	a[slash - a] = '\0';
	fam = strchr(a, ':') != NULL ? AF_INET6 : AF_INET;
	alen = fam == AF_INET6 ? 16 : 4;
	b = strtol(slash + 1, &end, 10);
	if (slash[1] == '\0' || *end != '\0' || b < 0 || b > alen * 8 ||
	    inet_pton(fam, a, net) != 1)
		return PG_EPARSE;
	bits = (int)b;
	/* Host bits set ("10.0.0.1/8") is an error in sshd too: the writer meant something else. */
	for (int i = 0; i < alen; i++) {
		int keep = bits >= (i + 1) * 8 ? 8 : bits <= i * 8 ? 0 : bits - i * 8;

		if ((net[i] & (uint8_t)~(0xff00u >> keep)) != 0)
			return PG_EPARSE;
	}
	if (inet_pton(fam, ip, host) != 1)
		return 0;	/* the other address family */
	for (int i = 0; i < alen; i++) {
		int keep = bits >= (i + 1) * 8 ? 8 : bits <= i * 8 ? 0 : bits - i * 8;
		uint8_t mask = (uint8_t)(0xff00u >> keep);

		if ((net[i] & mask) != (host[i] & mask))
			return 0;
	}
	return 1;
}

int
keyopts_from_match(const char *patterns, const char *ip)
{
	const char *p = patterns;
	int matched = 0;

	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		int neg = p[0] == '!', r;
		const char *pat = p + neg;
		size_t plen = n - (size_t)neg;

		if (memchr(pat, '/', plen) != NULL)
			r = cidr_match(pat, plen, ip);
		else
			r = plen > 0 && wild_match(ip, pat, plen);
		if (r < 0)
			return r;
		if (r == 1) {
			if (neg)
				return 0;	/* a negated match refuses whatever else matches */
			matched = 1;
		}
		p += n + (p[n] == ',');
	}
	return matched;
}

static int
digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return PG_EPARSE;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int
keyopts_parse_time(const char *s, uint64_t *out)
{
	size_t n = strlen(s);
	int utc = 0, y, mo, d, h = 0, mi = 0, sec = 0;
	struct tm tm;
	time_t t;

	if (n > 0 && (s[n - 1] == 'Z' || s[n - 1] == 'z')) {
		utc = 1;
		n--;
	}
	if ((n != 8 && n != 12 && n != 14) || digits(s, 4, &y) != 0 ||
	    digits(s + 4, 2, &mo) != 0 || digits(s + 6, 2, &d) != 0 ||
	    (n >= 12 && (digits(s + 8, 2, &h) != 0 || digits(s + 10, 2, &mi) != 0)) ||
	    (n == 14 && digits(s + 12, 2, &sec) != 0))
		return PG_EPARSE;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
		return PG_EPARSE;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	tm.tm_isdst = -1;
	t = utc ? timegm(&tm) : mktime(&tm);
	if (t == (time_t)-1 || t < 0)
		return PG_EPARSE;
	*out = (uint64_t)t;
	return 0;
}
