#include "proxy/http/hlimits.h"
#include "core/err.h"
#include "core/log.h"

int
hlim_configure(struct hlim_front *h, const struct pg_config *cfg)
{
	const struct conn_limits_conf *l = &cfg->http.limits;
	const struct proxy_protocol_conf *pp = &cfg->proxy_protocol;
	struct rl_conf rc = { .max_sources = l->max_sources, .ipv6_prefix = l->ipv6_prefix,
		.start = l->start, .rate = l->rate, .full = l->full, .per_source = l->per_source,
		.half_life_ms = 1000 };

	if (rl_configure(&h->table, &rc) != 0 ||
	    ppc_policy_set(&h->pp_https, pp->https, pp->trusted, pp->ntrusted, pp->timeout_ms) != 0 ||
	    ppc_policy_set(&h->pp_http, pp->http, pp->trusted, pp->ntrusted, pp->timeout_ms) != 0)
		return PG_ENOMEM;
	h->conf = *l;
	return 0;
}

void
hlim_free(struct hlim_front *h)
{
	rl_free(h->table);
	h->table = NULL;
	ppc_policy_clear(&h->pp_https);
	ppc_policy_clear(&h->pp_http);
}

const char *
hlim_admit(struct hlim_front *h, const struct sockaddr *src, uint64_t now, const char *log_prefix)
{
	enum rl_verdict v = rl_admit(h->table, src, now);
	const struct conn_limits_conf *c = &h->conf;

	switch (v) {
	case RL_OK:
		return NULL;
	case RL_PER_SOURCE:
		LOG_NOTICE(log_prefix, "refused: %u TLS handshakes in progress from this source "
		    "(http.limits.per_source_startups); closing", c->per_source);
		return "per_source_startups";
	case RL_FULL:
	case RL_RANDOM:
		LOG_NOTICE(log_prefix, "refused: %s past %u TLS handshakes in progress "
		    "(http.limits.max_startups %u:%u:%u); closing",
		    v == RL_FULL ? "hard limit" : "random early drop", v == RL_FULL ? c->full :
		    c->start, c->start, c->rate, c->full);
		return "max_startups";
	default:
		LOG_NOTICE(log_prefix, "refused: the table of sources is full (http.limits.max_sources "
		    "%u); closing", c->max_sources);
		return "max_sources";
	}
}

void
hlim_release(struct hlim_front *h, const struct sockaddr *src, uint64_t now)
{
	rl_release(h->table, src, now);
}

#define FAMILY(name, type, help) \
	if ((r = pg_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type)) != 0) \
		return r
#define SAMPLE(...) if ((r = pg_buf_printf(out, __VA_ARGS__)) != 0) return r

int
hlim_render_metrics(const struct hlim_front *h, uint64_t now, struct pg_buf *out)
{
	const struct conn_limits_conf *c = &h->conf;
	struct rl_stats st;
	int r;

	rl_get_stats(h->table, now, &st);
	FAMILY("poolgate_http_limit", "gauge", "HTTPS connection limits in force (http.limits).");
	SAMPLE("poolgate_http_limit{name=\"max_startups_start\"} %u\n", c->start);
	SAMPLE("poolgate_http_limit{name=\"max_startups_rate\"} %u\n", c->rate);
	SAMPLE("poolgate_http_limit{name=\"max_startups_full\"} %u\n", c->full);
	SAMPLE("poolgate_http_limit{name=\"per_source_startups\"} %u\n", c->per_source);
	SAMPLE("poolgate_http_limit{name=\"max_sources\"} %u\n", c->max_sources);
	FAMILY("poolgate_http_handshakes_in_progress", "gauge",
	    "HTTPS connections admitted whose TLS handshake is not done (what max_startups counts).");
	SAMPLE("poolgate_http_handshakes_in_progress %u\n", st.startups);
	FAMILY("poolgate_http_limit_refused_total", "counter",
	    "HTTPS connections refused by a connection limit, by limit.");
	for (int v = RL_FULL; v < RL_NVERDICTS; v++) {
		if (v != RL_BLOCKED)	/* nothing blocks sources on this front door */
			SAMPLE("poolgate_http_limit_refused_total{limit=\"%s\"} %llu\n",
			    rl_verdict_name((enum rl_verdict)v), (unsigned long long)st.refused[v]);
	}
	FAMILY("poolgate_http_proxy_headers_total", "counter",
	    "PROXY protocol headers on https and http listeners, by listener and result.");
	for (int i = 0; i < PPR_N; i++) {
		SAMPLE("poolgate_http_proxy_headers_total{listener=\"https\",result=\"%s\"} %llu\n",
		    proxyproto_result_name((enum proxyproto_result)i),
		    (unsigned long long)h->pp_https.results[i]);
		SAMPLE("poolgate_http_proxy_headers_total{listener=\"http\",result=\"%s\"} %llu\n",
		    proxyproto_result_name((enum proxyproto_result)i),
		    (unsigned long long)h->pp_http.results[i]);
	}
	return 0;
}
