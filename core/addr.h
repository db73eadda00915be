/* Socket address text forms: "127.0.0.1:9090", "[::1]:9090"; IP literals only. */
#ifndef PG_CORE_ADDR_H
#define PG_CORE_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PG_ADDRSTRLEN 64

/* Parses "ip:port". Returns 0 and fills *out, or PG_EPARSE / PG_ERANGE. */
int pg_addr_parse_hostport(const char *s, struct sockaddr_storage *out);

/* Parses an IP literal (no brackets) with a port. Returns 0 or PG_EPARSE. */
int pg_addr_from_ip(const char *ip, uint16_t port, struct sockaddr_storage *out);

/* Formats sa as "ip:port" or "[ip6]:port" into buf (PG_ADDRSTRLEN bytes). Returns buf. */
char *pg_addr_format(const struct sockaddr *sa, char *buf);

/* Formats only sa's IP ("192.0.2.7", "2001:db8::1") into buf (PG_ADDRSTRLEN bytes). Returns buf. */
char *pg_addr_ip(const struct sockaddr *sa, char *buf);

/* An address block: "10.0.0.0/8", "2001:db8::/32", or one address ("192.0.2.7" is /32). */
struct pg_cidr {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* network order; 4 bytes used for AF_INET */
	unsigned bits;		/* prefix length */
};

/* Parses s. Returns 0, or PG_EPARSE (also when bits beyond the prefix are set: "10.0.0.1/8"). */
int pg_cidr_parse(const char *s, struct pg_cidr *out);

/* 1 if sa's address lies in c; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) counts as IPv4. */
int pg_cidr_match(const struct pg_cidr *c, const struct sockaddr *sa);

/* 1 if sa lies in any of list[0..n). */
int pg_cidr_list_match(const struct pg_cidr *list, size_t n, const struct sockaddr *sa);

#endif
