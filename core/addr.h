/* Socket address text forms: "127.0.0.1:9090", "[::1]:9090"; IP literals only. */
#ifndef PG_CORE_ADDR_H
#define PG_CORE_ADDR_H

#include <stdint.h>
#include <sys/socket.h>

#define PG_ADDRSTRLEN 64

/* Parses "ip:port". Returns 0 and fills *out, or PG_EPARSE / PG_ERANGE. */
int pg_addr_parse_hostport(const char *s, struct sockaddr_storage *out);

/* Parses an IP literal (no brackets) with a port. Returns 0 or PG_EPARSE. */
int pg_addr_from_ip(const char *ip, uint16_t port, struct sockaddr_storage *out);

/* Formats sa as "ip:port" or "[ip6]:port" into buf (PG_ADDRSTRLEN bytes). Returns buf. */
char *pg_addr_format(const struct sockaddr *sa, char *buf);

#endif
