#include "core/ppconn.h"
#include "core/err.h"
#include "core/log.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

int
ppc_policy_set(struct ppc_policy *p, int enabled, const struct pg_cidr *trusted, size_t n,
    uint32_t timeout_ms)
{
	struct pg_cidr *copy = NULL;

	if (n > 0) {
		if ((copy = calloc(n, sizeof(*copy))) == NULL)
			return PG_ENOMEM;
		memcpy(copy, trusted, n * sizeof(*copy));
	}
	free(p->trusted);
	p->trusted = copy;
	p->ntrusted = n;
	p->enabled = enabled;
	p->timeout_ms = timeout_ms;
	return 0;
}

void
ppc_policy_clear(struct ppc_policy *p)
{
	free(p->trusted);
	p->trusted = NULL;
	p->ntrusted = 0;
	p->enabled = 0;
}

int
ppc_start(struct ppc_conn *c, const struct ppc_policy *p, const struct sockaddr *peer)
{
	if (!p->enabled)
		return 0;
	if (!pg_cidr_list_match(p->trusted, p->ntrusted, peer)) {
		c->check_first = 1;
		return 0;
	}
	if ((c->reader = calloc(1, sizeof(*c->reader))) == NULL)
		return PG_ENOMEM;
	return 1;
}

int
ppc_pending(const struct ppc_conn *c)
{
	return c->reader != NULL;
}

int
ppc_feed(struct ppc_conn *c, struct ppc_policy *p, const uint8_t *data, size_t n,
    struct sockaddr_storage *peer, struct pg_slice rest[2], const char *log_prefix)
{
	struct proxyproto_hdr h;
	const char *why = NULL;
	char from[PG_ADDRSTRLEN], client[PG_ADDRSTRLEN];
	enum proxyproto_result res;
	int r = proxyproto_reader_feed(c->reader, data, n, &h, rest, &why);

	if (r == 0)
		return 0;
	pg_addr_format((const struct sockaddr *)peer, from);
	if (r < 0) {
		p->results[PPR_INVALID]++;
		if (!proxyproto_looks_like(c->reader->buf, c->reader->len))
			LOG_NOTICE(log_prefix, "PROXY protocol: trusted source %s sent no header (a "
			    "source in proxy_protocol.trusted must); closing", from);
		else
			LOG_NOTICE(log_prefix, "PROXY protocol: trusted source %s sent no valid "
			    "header: %s; closing", from, why != NULL ? why : pg_strerror(r));
		return r;
	}
	res = proxyproto_result_of(&h);
	p->results[res]++;
	if (res == PPR_LOCAL) {
		LOG_DEBUG(log_prefix, "PROXY v%d from %s: %s, the connection's own address counts",
		    h.version, from, h.version == 1 ? "UNKNOWN" : "LOCAL or unrouted family");
		return 1;
	}
	snprintf(c->via, sizeof(c->via), "%s", from);
	*peer = h.src;
	LOG_DEBUG(log_prefix, "PROXY v%d from %s: client %s (%u TLVs%s)", h.version, from,
	    pg_addr_format((const struct sockaddr *)peer, client), h.ntlvs,
	    h.crc_checked ? ", CRC32C checked" : "");
	return 1;
}

void
ppc_timeout(struct ppc_conn *c, struct ppc_policy *p, const char *log_prefix)
{
	p->results[PPR_TIMEOUT]++;
	LOG_NOTICE(log_prefix, "PROXY protocol: no whole header within %u ms "
	    "(proxy_protocol.timeout_ms); %zu bytes came; closing", p->timeout_ms,
	    c->reader != NULL ? c->reader->len : 0);
}

int
ppc_check_first(struct ppc_conn *c, struct ppc_policy *p, const uint8_t *data, size_t n,
    const char *log_prefix)
{
	if (!c->check_first || n == 0)
		return 0;
	c->check_first = 0;
	if (!proxyproto_looks_like(data, n))
		return 0;
	p->results[PPR_UNTRUSTED]++;
	LOG_NOTICE(log_prefix, "PROXY protocol header from a source not in proxy_protocol.trusted; "
	    "closing");
	return -1;
}

void
ppc_done(struct ppc_conn *c)
{
	free(c->reader);
	c->reader = NULL;
}
