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
