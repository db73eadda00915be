#include "proxy/ssh/sshlimits.h"
#include "core/addr.h"
#include "core/err.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

static struct rl_conf
table_conf(const struct ssh_limits_conf *l)
{
	return (struct rl_conf){ .max_sources = l->conn.max_sources,
		.ipv6_prefix = l->conn.ipv6_prefix, .start = l->conn.start, .rate = l->conn.rate,
		.full = l->conn.full, .per_source = l->conn.per_source,
		.free_failures = l->free_failures, .delay_ms = l->delay_ms,
		.max_delay_ms = l->max_delay_ms, .half_life_ms = l->half_life_ms,
		.block_after = l->block_after, .block_ms = l->block_ms };
}

int
sshl_configure(struct sshl_front *lf, const struct pg_config *cfg)
{
	const struct proxy_protocol_conf *pp = &cfg->proxy_protocol;
	struct rl_conf rc = table_conf(&cfg->ssh.limits);

	if (rl_configure(&lf->table, &rc) != 0 ||
	    ppc_policy_set(&lf->pp, pp->ssh, pp->trusted, pp->ntrusted, pp->timeout_ms) != 0)
		return PG_ENOMEM;
	lf->conf = cfg->ssh.limits;
	lf->login_grace_ms = cfg->ssh.login_grace_ms;
	return 0;
}

void
sshl_front_free(struct sshl_front *lf)
{
	rl_free(lf->table);
	lf->table = NULL;
	ppc_policy_clear(&lf->pp);
}

const char *
sshl_admit(struct sshl_front *lf, struct sshl_conn *lc, uint64_t now, const char *log_prefix)
{
	enum rl_verdict v = rl_admit(lf->table, (const struct sockaddr *)&lc->src, now);
	const struct conn_limits_conf *c = &lf->conf.conn;

	lc->start_ms = now;
	switch (v) {
	case RL_OK:
		lc->counted = 1;
		return NULL;
	case RL_BLOCKED:
		/* Logged once when the block started; each refusal shows in the audit line. */
		return "source blocked after failed logins (ssh.limits.penalty)";
	case RL_FULL:
		LOG_NOTICE(log_prefix, "refused: %u unauthenticated connections "
		    "(ssh.limits.max_startups %u:%u:%u)", c->full, c->start, c->rate, c->full);
		return "max_startups";
	case RL_RANDOM:
		LOG_NOTICE(log_prefix, "refused: random early drop past %u unauthenticated "
		    "connections (ssh.limits.max_startups %u:%u:%u)", c->start, c->start, c->rate,
		    c->full);
		return "max_startups (random early drop)";
	case RL_PER_SOURCE:
		LOG_NOTICE(log_prefix, "refused: %u unauthenticated connections from this source "
		    "(ssh.limits.per_source_startups)", c->per_source);
		return "per_source_startups";
	default:
		LOG_NOTICE(log_prefix, "refused: the table of sources is full of connections "
		    "(ssh.limits.max_sources %u)", c->max_sources);
		return "max_sources";
	}
}

void
sshl_authenticated(struct sshl_front *lf, struct sshl_conn *lc, uint64_t now)
{
	const struct sockaddr *sa = (const struct sockaddr *)&lc->src;

	if (lc->counted)
		rl_release(lf->table, sa, now);
	lc->counted = 0;
	rl_forgive(lf->table, sa, lc->failures, now);
	lc->failures = 0;
}

int
sshl_failed(struct sshl_front *lf, struct sshl_conn *lc, uint32_t n, uint64_t now,
    uint32_t *delay_ms, const char *log_prefix)
{
	const struct sockaddr *sa = (const struct sockaddr *)&lc->src;
	char ip[PG_ADDRSTRLEN];
	int blocked = 0;

	*delay_ms = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t d;

		lc->failures++;
		blocked |= rl_failure(lf->table, sa, now, &d);
		if (d > *delay_ms)
			*delay_ms = d;
	}
	if (blocked)
		LOG_NOTICE(log_prefix, "source %s blocked for %u ms after %u failed attempts "
		    "(ssh.limits.penalty.block_after)", pg_addr_ip(sa, ip), lf->conf.block_ms,
		    lf->conf.block_after);
	else if (*delay_ms > 0)
		LOG_INFO(log_prefix, "failed attempt answered after %u ms (ssh.limits.penalty)",
		    *delay_ms);
	return blocked;
}

const char *
sshl_deadline(struct sshl_front *lf, struct sshl_conn *lc, enum ssh_tstate st, uint64_t now,
    uint64_t *next_ms, const char *log_prefix)
{
	/* Each phase's limit counts from the start; the earliest unmet one decides. */
	const uint64_t ident = lc->start_ms + lf->conf.ident_timeout_ms,
	    kex = lc->start_ms + lf->conf.kex_timeout_ms, grace = lc->start_ms + lf->login_grace_ms;
	int in_ident = st == SSH_T_VERSION, in_kex = in_ident || st == SSH_T_KEX;
	uint64_t next = grace;

	if (in_ident && now >= ident) {
		lf->timeouts[SSHL_IDENT]++;
		LOG_NOTICE(log_prefix, "phase ident: no identification line within %u ms "
		    "(ssh.limits.ident_timeout_ms)", lf->conf.ident_timeout_ms);
		return "ident timeout";
	}
	if (in_kex && now >= kex) {
		lf->timeouts[SSHL_KEX]++;
		LOG_NOTICE(log_prefix, "phase kex: key exchange not done within %u ms "
		    "(ssh.limits.kex_timeout_ms)", lf->conf.kex_timeout_ms);
		return "key exchange timeout";
	}
	if (now >= grace) {
		lf->timeouts[SSHL_AUTH]++;
		LOG_NOTICE(log_prefix, "login grace time (%u ms) over in phase %s",
		    lf->login_grace_ms, in_ident ? "ident" : in_kex ? "kex" : "auth");
		return "login grace time over";
	}
	if (in_ident && ident < next)
		next = ident;
	if (in_kex && kex < next)
		next = kex;
	if (lc->hold_end_ms != 0 && lc->hold_end_ms < next)
		next = lc->hold_end_ms;
	*next_ms = next;
	return NULL;
}

void
sshl_conn_done(struct sshl_front *lf, struct sshl_conn *lc, uint64_t now)
{
	if (lc->counted && lf->table != NULL)
		rl_release(lf->table, (const struct sockaddr *)&lc->src, now);
	lc->counted = 0;
	pg_buf_free(&lc->held);
	ppc_done(&lc->pp);
}

#define FAMILY(name, type, help) \
	if ((r = pg_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type)) != 0) \
		return r
#define SAMPLE(...) if ((r = pg_buf_printf(out, __VA_ARGS__)) != 0) return r

int
sshl_render_metrics(const struct sshl_front *lf, uint64_t now, struct pg_buf *out)
{
	static const char *const phases[SSHL_NPHASES] = { "ident", "kex", "auth" };
	const struct ssh_limits_conf *c = &lf->conf;
	struct rl_stats st;
	int r;

	rl_get_stats(lf->table, now, &st);
	FAMILY("poolgate_ssh_limit", "gauge", "SSH abuse limits in force (ssh.limits), by name.");
	SAMPLE("poolgate_ssh_limit{name=\"max_startups_start\"} %u\n", c->conn.start);
	SAMPLE("poolgate_ssh_limit{name=\"max_startups_rate\"} %u\n", c->conn.rate);
	SAMPLE("poolgate_ssh_limit{name=\"max_startups_full\"} %u\n", c->conn.full);
	SAMPLE("poolgate_ssh_limit{name=\"per_source_startups\"} %u\n", c->conn.per_source);
	SAMPLE("poolgate_ssh_limit{name=\"max_sources\"} %u\n", c->conn.max_sources);
	SAMPLE("poolgate_ssh_limit{name=\"ident_timeout_seconds\"} %.3f\n",
	    c->ident_timeout_ms / 1000.0);
	SAMPLE("poolgate_ssh_limit{name=\"kex_timeout_seconds\"} %.3f\n", c->kex_timeout_ms / 1000.0);
	SAMPLE("poolgate_ssh_limit{name=\"login_grace_seconds\"} %.3f\n",
	    lf->login_grace_ms / 1000.0);
	SAMPLE("poolgate_ssh_limit{name=\"penalty_block_after\"} %u\n", c->block_after);
	SAMPLE("poolgate_ssh_limit{name=\"penalty_block_seconds\"} %.3f\n", c->block_ms / 1000.0);
	FAMILY("poolgate_ssh_unauthenticated_connections", "gauge",
	    "SSH connections admitted and not yet authenticated (what max_startups counts).");
	SAMPLE("poolgate_ssh_unauthenticated_connections %u\n", st.startups);
	FAMILY("poolgate_ssh_limit_refused_total", "counter",
	    "SSH connections refused by an abuse limit, by limit.");
	for (int v = RL_FULL; v < RL_NVERDICTS; v++)
		SAMPLE("poolgate_ssh_limit_refused_total{limit=\"%s\"} %llu\n",
		    rl_verdict_name((enum rl_verdict)v), (unsigned long long)st.refused[v]);
	FAMILY("poolgate_ssh_timeouts_total", "counter",
	    "SSH connections closed before authentication by a phase's time limit.");
	for (int p = 0; p < SSHL_NPHASES; p++)
		SAMPLE("poolgate_ssh_timeouts_total{phase=\"%s\"} %llu\n", phases[p],
		    (unsigned long long)lf->timeouts[p]);
	FAMILY("poolgate_ssh_auth_delays_total", "counter",
	    "Failed SSH authentication attempts answered late (ssh.limits.penalty).");
	SAMPLE("poolgate_ssh_auth_delays_total %llu\n", (unsigned long long)st.delays);
	FAMILY("poolgate_ssh_auth_delay_seconds_total", "counter",
	    "Time failed SSH authentication attempts were held, summed.");
	SAMPLE("poolgate_ssh_auth_delay_seconds_total %.3f\n", st.delay_ms_total / 1000.0);
	FAMILY("poolgate_ssh_source_blocks_total", "counter",
	    "Sources blocked after too many failed SSH logins.");
	SAMPLE("poolgate_ssh_source_blocks_total %llu\n", (unsigned long long)st.blocks);
	FAMILY("poolgate_ssh_sources_blocked", "gauge", "Sources blocked now.");
	SAMPLE("poolgate_ssh_sources_blocked %zu\n", st.blocked);
	FAMILY("poolgate_ssh_sources_tracked", "gauge",
	    "Source addresses remembered (bounded by ssh.limits.max_sources).");
	SAMPLE("poolgate_ssh_sources_tracked %zu\n", st.sources);
	FAMILY("poolgate_ssh_proxy_headers_total", "counter",
	    "PROXY protocol headers on ssh listeners, by result.");
	for (int i = 0; i < PPR_N; i++)
		SAMPLE("poolgate_ssh_proxy_headers_total{result=\"%s\"} %llu\n",
		    proxyproto_result_name((enum proxyproto_result)i),
		    (unsigned long long)lf->pp.results[i]);
	return 0;
}
