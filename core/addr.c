#include "core/addr.h"
#include "core/err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
pg_addr_from_ip(const char *ip, uint16_t port, struct sockaddr_storage *out)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
	} else {
		return PG_EPARSE;
	}
	*out = ss;
	return 0;
}

int
pg_addr_parse_hostport(const char *s, struct sockaddr_storage *out)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *hs = s;
	size_t hlen;
	char *end;
	long port;

	if ((colon = strrchr(s, ':')) == NULL)
		return PG_EPARSE;
	hlen = (size_t)(colon - s);
	if (s[0] == '[') {
		/* "[v6]:port": the bracket must close right before the colon. */
		if (hlen < 2 || s[hlen - 1] != ']')
			return PG_EPARSE;
		hs = s + 1;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return PG_EPARSE;
	memcpy(host, hs, hlen);
	host[hlen] = '\0';
	if (colon[1] < '0' || colon[1] > '9')
		return PG_EPARSE;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0')
		return PG_EPARSE;
	if (port < 1 || port > 65535)
		return PG_ERANGE;
	/* Brackets exactly when the host is IPv6: "::1:90" is ambiguous, "[1.2.3.4]" is not a form. */
	if ((s[0] == '[') != (strchr(host, ':') != NULL))
		return PG_EPARSE;
	return pg_addr_from_ip(host, (uint16_t)port, out);
}

char *
pg_addr_format(const struct sockaddr *sa, char *buf)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, PG_ADDRSTRLEN, "%s:%u", ip, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, PG_ADDRSTRLEN, "[%s]:%u", ip, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, PG_ADDRSTRLEN, "?");
	}
	return buf;
}

char *
pg_addr_ip(const struct sockaddr *sa, char *buf)
{
	const void *a = sa->sa_family == AF_INET ?
	    (const void *)&((const struct sockaddr_in *)sa)->sin_addr :
	    (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;

	if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
	    inet_ntop(sa->sa_family, a, buf, PG_ADDRSTRLEN) == NULL)
		snprintf(buf, PG_ADDRSTRLEN, "?");
	return buf;
}

int
pg_cidr_parse(const char *s, struct pg_cidr *out)
{
	char ip[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t iplen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	struct pg_cidr c;
	unsigned long bits;
	char *end;

	memset(&c, 0, sizeof(c));
	if (iplen == 0 || iplen >= sizeof(ip))
		return PG_EPARSE;
	memcpy(ip, s, iplen);
	ip[iplen] = '\0';
	if (inet_pton(AF_INET, ip, c.addr) == 1)
		c.family = AF_INET;
	else if (inet_pton(AF_INET6, ip, c.addr) == 1)
		c.family = AF_INET6;
	else
		return PG_EPARSE;
	bits = c.family == AF_INET ? 32 : 128;
	if (slash != NULL) {
		unsigned long max = bits;

		if (slash[1] < '0' || slash[1] > '9' || (slash[1] == '0' && slash[2] != '\0'))
			return PG_EPARSE;
		bits = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || bits > max)
			return PG_EPARSE;
	}
	c.bits = (unsigned)bits;
	/* Bits past the prefix must be zero: "10.0.0.1/8" is a typo, not a block. */
	for (unsigned i = c.bits; i < (c.family == AF_INET ? 32u : 128u); i++) {
		if (c.addr[i / 8] & (0x80 >> (i % 8)))
			return PG_EPARSE;
	}
	*out = c;
	return 0;
}

int
pg_cidr_match(const struct pg_cidr *c, const struct sockaddr *sa)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *a;
	int family = sa->sa_family;

	if (family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			family = AF_INET;
			a += 12;
		}
	} else {
		return 0;
	}
	if (family != c->family)
		return 0;
	for (unsigned i = 0; i < c->bits / 8; i++) {
		if (a[i] != c->addr[i])
			return 0;
	}
	if (c->bits % 8 != 0) {
		uint8_t m = (uint8_t)(0xff << (8 - c->bits % 8));

		if ((a[c->bits / 8] & m) != c->addr[c->bits / 8])
			return 0;
	}
	return 1;
}

int
pg_cidr_list_match(const struct pg_cidr *list, size_t n, const struct sockaddr *sa)
{
	for (size_t i = 0; i < n; i++) {
		if (pg_cidr_match(&list[i], sa))
			return 1;
	}
	return 0;
}
