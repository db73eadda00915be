#include "health/probe.h"
#include "certs/tls.h"
#include "core/addr.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/jitter.h"
#include "core/log.h"
#include "core/uvwrite.h"
#include "health/hyst.h"

#include <llhttp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_MAX_HEADER_BYTES (16u << 10)	/* response bytes read before giving up on headers */
#define IDENT_MAX_BYTES (SSH_IDENT_MAX_LINE * SSH_IDENT_MAX_LINES)

struct prober {
	uv_loop_t *loop;
	struct registry *reg;
	struct health_conf hc;		/* http_path owned */
	uint64_t rng;			/* xorshift state for jitter; not security relevant */
	size_t live;			/* iprobes not yet freed */
	int stopping;
};

struct pconn;

/* One instance's probe state; lives in instance->probe while the instance is probed. */
struct iprobe {
	struct prober *pr;
	struct instance *in;		/* a reference of our own */
	uv_timer_t timer;		/* next round */
	struct hyst hyst;
	struct probe_result res[PROBE_NCHECKS];
	struct pconn *ssh_pc, *http_pc;	/* this round's connections, NULL when done */
	SSL_CTX *tls_ctx;		/* built on first https check, dropped on endpoint change */
	uint64_t generation;		/* bumped on endpoint change: late results are ignored */
	int pending;			/* connections still running this round */
	int stopping, timer_closed;
};

enum pconn_kind { PC_SSH, PC_HTTP };	/* PC_SSH serves the tcp and ssh checks */
enum pconn_phase { PH_CONNECTING, PH_IDENT, PH_TLS, PH_RESPONSE, PH_DONE };

/* One probe connection. Freed when both its handles have closed. */
struct pconn {
	struct iprobe *ip;
	enum pconn_kind kind;
	enum pconn_phase phase;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t creq;
	uint64_t t0;			/* uv_hrtime at connect start */
	uint64_t generation;
	struct pg_buf in;		/* ident bytes; response bytes counted in header_bytes */
	size_t header_bytes;
	llhttp_t parser;
	llhttp_settings_t settings;
	int status;			/* HTTP status once headers are complete */
	struct tls_conn *tls;
	int closes;			/* handles still to close */
};

static void round_start(uv_timer_t *t);
static void pconn_finish(struct pconn *pc);

static double
ms_since(uint64_t t0)
{
	return (double)(uv_hrtime() - t0) / 1e6;
}

/* interval +- jitter_pct percent. */
static uint64_t
next_delay(struct prober *pr)
{
	return pg_jitter(&pr->rng, pr->hc.interval_ms, pr->hc.jitter_pct);
}

static const char *
inst_prefix(const struct iprobe *ip, char *buf, size_t n)
{
	snprintf(buf, n, "probe %s", ip->in->conf.id);
	return buf;
}

static void
record(struct iprobe *ip, enum probe_check k, int ok, double latency_ms, const char *error)
{
	struct probe_result *r = &ip->res[k];

	r->ran = 1;
	r->ok = ok;
	r->latency_ms = latency_ms;
	r->at_ms = pg_wall_ms();
	snprintf(r->error, sizeof(r->error), "%s", ok ? "" : error);
	if (ok)
		r->ok_total++;
	else
		r->fail_total++;
}

/* --- rounds ------------------------------------------------------------------------------ */

static void
schedule(struct iprobe *ip, uint64_t delay)
{
	if (!ip->stopping)
		uv_timer_start(&ip->timer, round_start, delay, 0);
}

/* All of this round's connections are done: judge the round and schedule the next. */
static void
round_end(struct iprobe *ip)
{
	struct prober *pr = ip->pr;
	char reason[INST_REASON_MAX] = "", part[96];
	enum inst_health h;
	int ok = 1;

	for (int k = 0; k < PROBE_NCHECKS; k++) {
		const struct probe_result *r = &ip->res[k];
		if (!(pr->hc.checks & (1u << k)))
			continue;
		if (!r->ok && ok) {
			/* The first failing check explains the round. */
			snprintf(reason, sizeof(reason), "%s: %s", probe_check_name(k), r->error);
			ok = 0;
		}
	}
	if (ok) {
		size_t n = 0;
		for (int k = 0; k < PROBE_NCHECKS && n < sizeof(reason); k++) {
			if (!(pr->hc.checks & (1u << k)))
				continue;
			if (k == PROBE_HTTP)
				snprintf(part, sizeof(part), "http %d", ip->res[k].http_status);
			else
				snprintf(part, sizeof(part), "%s ok", probe_check_name(k));
			n += (size_t)snprintf(reason + n, sizeof(reason) - n, "%s%s", n ? ", " : "",
			    part);
		}
	}
	h = hyst_feed(&ip->hyst, ip->in->health, ok, pr->hc.rise, pr->hc.fall);
	if (h != ip->in->health || !ok) {
		char prefix[96];
		LOG_DEBUG(inst_prefix(ip, prefix, sizeof(prefix)), "round %s (%s); ok run %u, fail run %u",
		    ok ? "good" : "bad", reason, ip->hyst.ok_run, ip->hyst.fail_run);
	}
	inst_set_health(ip->in, h, reason);
	schedule(ip, next_delay(pr));
}

/* Queues bytes on the connection. Returns 0 or a negative code. */
static int
pconn_send(struct pconn *pc, const uint8_t *p, size_t len)
{
	return pg_write_copy((uv_stream_t *)&pc->tcp, p, len, NULL, NULL);
}

/* Sends whatever ciphertext the TLS engine has produced. */
static int
pconn_flush_tls(struct pconn *pc)
{
	struct pg_buf out;
	int r;

	pg_buf_init(&out, 1u << 20);
	if ((r = tls_conn_take_output(pc->tls, &out)) == 0 && out.len > 0)
		r = pconn_send(pc, out.p, out.len);
	pg_buf_free(&out);
	return r;
}

/* --- a connection's checks completing ------------------------------------------------------ */

/* Ends the connection's checks with a failure; msg explains it (no internal address needed). */
static void
pconn_fail(struct pconn *pc, const char *msg)
{
	struct iprobe *ip = pc->ip;
	double lat = ms_since(pc->t0);
	int stale = pc->generation != ip->generation;

	if (pc->phase == PH_DONE)
		return;
	if (!stale && pc->kind == PC_SSH) {
		unsigned checks = ip->pr->hc.checks;
		if (pc->phase == PH_CONNECTING && (checks & (1u << PROBE_TCP)))
			record(ip, PROBE_TCP, 0, lat, msg);
		if (checks & (1u << PROBE_SSH)) {
			char m[160];
			if (pc->phase == PH_CONNECTING && (checks & (1u << PROBE_TCP)))
				snprintf(m, sizeof(m), "not reached (tcp: %s)", msg);
			else
				snprintf(m, sizeof(m), "%s", msg);
			record(ip, PROBE_SSH, 0, lat, m);
		}
	} else if (!stale) {
		ip->res[PROBE_HTTP].http_status = pc->status;
		record(ip, PROBE_HTTP, 0, lat, msg);
	}
	pconn_finish(pc);
}

static void
on_pconn_closed(uv_handle_t *h)
{
	struct pconn *pc = h->data;

	if (--pc->closes > 0)
		return;
	tls_conn_free(pc->tls);
	pg_buf_free(&pc->in);
	free(pc);
}

static void iprobe_maybe_free(struct iprobe *ip);

/* The connection's checks are recorded: close it and, if it was the last, end the round. */
static void
pconn_finish(struct pconn *pc)
{
	struct iprobe *ip = pc->ip;

	pc->phase = PH_DONE;
	if (ip->ssh_pc == pc)
		ip->ssh_pc = NULL;
	if (ip->http_pc == pc)
		ip->http_pc = NULL;
	uv_close((uv_handle_t *)&pc->tcp, on_pconn_closed);
	uv_close((uv_handle_t *)&pc->timer, on_pconn_closed);
	if (--ip->pending == 0) {
		if (ip->stopping)
			iprobe_maybe_free(ip);
		else if (pc->generation == ip->generation)
			round_end(ip);
		else
			schedule(ip, 0);	/* the endpoint changed mid-round: start afresh */
	}
}

static void
on_pconn_timeout(uv_timer_t *t)
{
	struct pconn *pc = t->data;
	char m[96];
	const char *what = "waiting";

	switch (pc->phase) {
	case PH_CONNECTING: what = "connecting"; break;
	case PH_IDENT: what = "waiting for the SSH ident line"; break;
	case PH_TLS: what = "in the TLS handshake"; break;
	case PH_RESPONSE: what = "waiting for the HTTP response"; break;
	case PH_DONE: return;
	}
	snprintf(m, sizeof(m), "timed out after %u ms %s", pc->ip->pr->hc.timeout_ms, what);
	pconn_fail(pc, m);
}

/* --- ssh ident ----------------------------------------------------------------------------- */

static void
ident_input(struct pconn *pc, const uint8_t *p, size_t len)
{
	struct pg_slice ident;
	int r;

	if (pg_buf_append(&pc->in, p, len) != 0) {
		pconn_fail(pc, "no SSH ident line in the first bytes");
		return;
	}
	r = ssh_ident_scan(pc->in.p, pc->in.len, &ident);
	if (r == 0)
		return;
	if (r < 0) {
		pconn_fail(pc, "not an SSH 2 server (bad identification line)");
		return;
	}
	if (pc->generation == pc->ip->generation) {
		struct probe_result *res = &pc->ip->res[PROBE_SSH];
		/* The ident is printable by ssh_ident_scan's rules except for control bytes: drop them. */
		size_t n = 0;
		for (size_t i = 0; i < ident.len && n < sizeof(res->ident) - 1; i++)
			res->ident[n++] = ident.p[i] >= 0x20 && ident.p[i] < 0x7f ? (char)ident.p[i] : '?';
		res->ident[n] = '\0';
		record(pc->ip, PROBE_SSH, 1, ms_since(pc->t0), NULL);
	}
	pconn_finish(pc);
}

/* --- http ---------------------------------------------------------------------------------- */

static int
on_headers_complete(llhttp_t *p)
{
	struct pconn *pc = p->data;

	pc->status = p->status_code;
	return HPE_PAUSED;	/* the status line is all we need */
}

static int
http_send_request(struct pconn *pc)
{
	const struct inst_conf *ic = &pc->ip->in->conf;
	struct pg_buf req;
	int r, v6 = strchr(ic->address, ':') != NULL;

	pg_buf_init(&req, 4096);
	r = pg_buf_printf(&req, "GET %s HTTP/1.1\r\nHost: %s%s%s:%u\r\n"
	    "User-Agent: poolgate-probe/" PG_VERSION "\r\nAccept: */*\r\nConnection: close\r\n\r\n",
	    pc->ip->pr->hc.http_path, v6 ? "[" : "", ic->address, v6 ? "]" : "", ic->http_port);
	if (r == 0)
		r = pc->tls != NULL ? tls_conn_write(pc->tls, req.p, req.len) : pconn_send(pc, req.p,
		    req.len);
	if (r == 0 && pc->tls != NULL)
		r = pconn_flush_tls(pc);
	pg_buf_free(&req);
	pc->phase = PH_RESPONSE;
	return r;
}

static void
http_plain_input(struct pconn *pc, const uint8_t *p, size_t len)
{
	llhttp_errno_t e;
	char m[160];

	pc->header_bytes += len;
	e = llhttp_execute(&pc->parser, (const char *)p, len);
	if (e == HPE_PAUSED) {
		int ok = pc->status >= 200 && pc->status < 300;
		if (pc->generation == pc->ip->generation) {
			pc->ip->res[PROBE_HTTP].http_status = pc->status;
			snprintf(m, sizeof(m), "HTTP status %d", pc->status);
			record(pc->ip, PROBE_HTTP, ok, ms_since(pc->t0), m);
		}
		pconn_finish(pc);
	} else if (e != HPE_OK) {
		snprintf(m, sizeof(m), "invalid HTTP response: %s", llhttp_errno_name(e));
		pconn_fail(pc, m);
	} else if (pc->header_bytes > HTTP_MAX_HEADER_BYTES) {
		pconn_fail(pc, "HTTP response headers too large");
	}
}

static void
http_tls_input(struct pconn *pc, const uint8_t *p, size_t len)
{
	uint8_t plain[4096];
	size_t got;
	char m[200];
	int r;

	if (tls_conn_feed(pc->tls, p, len) != 0)
		goto tls_fail;
	if (pc->phase == PH_TLS) {
		if ((r = tls_conn_handshake(pc->tls)) < 0 || pconn_flush_tls(pc) != 0)
			goto tls_fail;
		if (r == 0)
			return;
		if (http_send_request(pc) != 0)
			goto tls_fail;
	}
	while (pc->phase == PH_RESPONSE) {
		r = tls_conn_read(pc->tls, plain, sizeof(plain), &got);
		if (r == PG_ECLOSED) {
			pconn_fail(pc, "connection closed before the response");
			return;
		}
		if (r != 0)
			goto tls_fail;
		if (got == 0)
			return;
		http_plain_input(pc, plain, got);
	}
	return;
tls_fail:
	snprintf(m, sizeof(m), "TLS: %s", tls_conn_error(pc->tls));
	pconn_fail(pc, m);
}

/* --- connection plumbing ------------------------------------------------------------------- */

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char slab[16384];	/* one loop thread; data is consumed before the next read */

	buf->base = slab;
	buf->len = sizeof(slab);
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct pconn *pc = s->data;

	if (pc->phase == PH_DONE || n == 0)
		return;
	if (n < 0) {
		pconn_fail(pc, n == UV_EOF ? "connection closed by the instance" :
		    uv_strerror((int)n));
		return;
	}
	if (pc->phase == PH_IDENT)
		ident_input(pc, (const uint8_t *)buf->base, (size_t)n);
	else if (pc->tls != NULL)
		http_tls_input(pc, (const uint8_t *)buf->base, (size_t)n);
	else
		http_plain_input(pc, (const uint8_t *)buf->base, (size_t)n);
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct pconn *pc = req->data;
	struct iprobe *ip = pc->ip;
	unsigned checks = ip->pr->hc.checks;
	char m[160];

	if (status == UV_ECANCELED || pc->phase == PH_DONE)
		return;
	if (status != 0) {
		pconn_fail(pc, uv_strerror(status));
		return;
	}
	if (pc->kind == PC_SSH) {
		if ((checks & (1u << PROBE_TCP)) && pc->generation == ip->generation)
			record(ip, PROBE_TCP, 1, ms_since(pc->t0), NULL);
		if (!(checks & (1u << PROBE_SSH))) {
			pconn_finish(pc);
			return;
		}
		pc->phase = PH_IDENT;
	} else if (ip->in->conf.http_tls) {
		const struct inst_conf *ic = &ip->in->conf;
		if (ip->tls_ctx == NULL)
			ip->tls_ctx = tls_client_ctx_new(ic->http_ca_file, ic->http_tls_verify, m,
			    sizeof(m));
		if (ip->tls_ctx == NULL) {
			pconn_fail(pc, m);
			return;
		}
		if ((pc->tls = tls_conn_new(ip->tls_ctx, 0, ic->address)) == NULL) {
			pconn_fail(pc, "TLS: out of memory");
			return;
		}
		pc->phase = PH_TLS;
		if (tls_conn_handshake(pc->tls) < 0 || pconn_flush_tls(pc) != 0) {
			snprintf(m, sizeof(m), "TLS: %s", tls_conn_error(pc->tls));
			pconn_fail(pc, m);
			return;
		}
	} else if (http_send_request(pc) != 0) {
		pconn_fail(pc, "could not send the request");
		return;
	}
	if (uv_read_start((uv_stream_t *)&pc->tcp, on_alloc, on_read) != 0)
		pconn_fail(pc, "could not read from the socket");
}

/* Starts one probe connection to port. Returns it, or NULL after recording the failure. */
static struct pconn *
pconn_start(struct iprobe *ip, enum pconn_kind kind, uint16_t port)
{
	struct prober *pr = ip->pr;
	struct sockaddr_storage ss;
	struct pconn *pc = calloc(1, sizeof(*pc));
	int r;

	if (pc == NULL)
		return NULL;
	pc->ip = ip;
	pc->kind = kind;
	pc->phase = PH_CONNECTING;
	pc->generation = ip->generation;
	pc->t0 = uv_hrtime();
	pg_buf_init(&pc->in, IDENT_MAX_BYTES);
	uv_tcp_init(pr->loop, &pc->tcp);
	uv_timer_init(pr->loop, &pc->timer);
	pc->tcp.data = pc->timer.data = pc->creq.data = pc;
	pc->closes = 2;
	ip->pending++;
	llhttp_settings_init(&pc->settings);
	pc->settings.on_headers_complete = on_headers_complete;
	llhttp_init(&pc->parser, HTTP_RESPONSE, &pc->settings);
	pc->parser.data = pc;
	uv_timer_start(&pc->timer, on_pconn_timeout, pr->hc.timeout_ms, 0);
	if (pg_addr_from_ip(ip->in->conf.address, port, &ss) != 0)
		r = UV_EINVAL;
	else
		r = uv_tcp_connect(&pc->creq, &pc->tcp, (struct sockaddr *)&ss, on_connect);
	if (r != 0) {
		pconn_fail(pc, uv_strerror(r));
		return NULL;
	}
	return pc;
}

static void
round_start(uv_timer_t *t)
{
	struct iprobe *ip = t->data;
	unsigned checks = ip->pr->hc.checks;

	if (ip->stopping || ip->pending > 0)
		return;
	/* Count the round as pending while starting, so a connection failing synchronously cannot
	 * end it before the other has started. */
	ip->pending++;
	if (checks & ((1u << PROBE_TCP) | (1u << PROBE_SSH)))
		ip->ssh_pc = pconn_start(ip, PC_SSH, ip->in->conf.ssh_port);
	if (checks & (1u << PROBE_HTTP))
		ip->http_pc = pconn_start(ip, PC_HTTP, ip->in->conf.http_port);
	if (--ip->pending == 0)
		round_end(ip);
}

/* --- instance lifecycle -------------------------------------------------------------------- */

static void
iprobe_free_now(struct iprobe *ip)
{
	struct prober *pr = ip->pr;

	SSL_CTX_free(ip->tls_ctx);
	inst_unref(ip->in);
	free(ip);
	if (--pr->live == 0 && pr->stopping) {
		free(pr->hc.http_path);
		free(pr);
	}
}

static void
on_iprobe_timer_closed(uv_handle_t *h)
{
	struct iprobe *ip = h->data;

	ip->timer_closed = 1;
	iprobe_maybe_free(ip);
}

static void
iprobe_maybe_free(struct iprobe *ip)
{
	if (ip->stopping && ip->timer_closed && ip->pending == 0)
		iprobe_free_now(ip);
}

static void
iprobe_stop(struct iprobe *ip)
{
	if (ip->stopping)
		return;
	ip->stopping = 1;
	ip->in->probe = NULL;
	if (ip->ssh_pc != NULL)
		pconn_fail(ip->ssh_pc, "probe stopped");
	if (ip->http_pc != NULL)
		pconn_fail(ip->http_pc, "probe stopped");
	uv_close((uv_handle_t *)&ip->timer, on_iprobe_timer_closed);
}

static void
hook_added(void *arg, struct instance *in)
{
	struct prober *pr = arg;
	struct iprobe *ip;

	if (pr->stopping || (ip = calloc(1, sizeof(*ip))) == NULL)
		return;
	ip->pr = pr;
	ip->in = in;
	inst_ref(in);
	in->probe = ip;
	uv_timer_init(pr->loop, &ip->timer);
	ip->timer.data = ip;
	pr->live++;
	/* Spread first rounds a little so a big pool is not probed in one burst. */
	schedule(ip, pg_jitter_rand(&pr->rng) % 100);
}

static void
hook_changed(void *arg, struct instance *in, int endpoint)
{
	struct iprobe *ip = in->probe;

	if (ip == NULL || !endpoint)
		return;
	/* What we measured belongs to the old endpoint: forget it and probe the new one now. */
	ip->generation++;
	memset(&ip->hyst, 0, sizeof(ip->hyst));
	for (int k = 0; k < PROBE_NCHECKS; k++) {
		uint64_t okt = ip->res[k].ok_total, ft = ip->res[k].fail_total;
		memset(&ip->res[k], 0, sizeof(ip->res[k]));
		ip->res[k].ok_total = okt;
		ip->res[k].fail_total = ft;
	}
	SSL_CTX_free(ip->tls_ctx);
	ip->tls_ctx = NULL;
	if (ip->ssh_pc != NULL)
		pconn_fail(ip->ssh_pc, "endpoint changed");
	if (ip->http_pc != NULL)
		pconn_fail(ip->http_pc, "endpoint changed");
	if (ip->pending == 0)
		schedule(ip, 0);
}

static void
hook_removed(void *arg, struct instance *in)
{
	if (in->probe != NULL)
		iprobe_stop(in->probe);
}

struct prober *
prober_new(uv_loop_t *loop, struct registry *reg, const struct health_conf *hc)
{
	struct prober *pr = calloc(1, sizeof(*pr));
	struct reg_hooks hooks = { hook_added, hook_changed, hook_removed, NULL };

	if (pr == NULL)
		return NULL;
	pr->loop = loop;
	pr->reg = reg;
	if (prober_set_conf(pr, hc) != 0) {
		free(pr);
		return NULL;
	}
	pg_jitter_seed(&pr->rng);
	hooks.arg = pr;
	if (reg_add_hooks(reg, &hooks) != 0) {
		free(pr->hc.http_path);
		free(pr);
		return NULL;
	}
	for (struct instance *in = reg_first(reg); in != NULL; in = in->next)
		hook_added(pr, in);
	return pr;
}

int
prober_set_conf(struct prober *pr, const struct health_conf *hc)
{
	char *path = strdup(hc->http_path);

	if (path == NULL)
		return PG_ENOMEM;
	free(pr->hc.http_path);
	pr->hc = *hc;
	pr->hc.http_path = path;
	return 0;
}

void
prober_stop(struct prober *pr)
{
	pr->stopping = 1;
	reg_remove_hooks(pr->reg, pr);
	for (struct instance *in = reg_first(pr->reg); in != NULL; in = in->next) {
		if (in->probe != NULL)
			iprobe_stop(in->probe);
	}
	if (pr->live == 0) {
		free(pr->hc.http_path);
		free(pr);
	}
}

const struct probe_result *
probe_results(const struct instance *in)
{
	const struct iprobe *ip = in->probe;

	return ip != NULL ? ip->res : NULL;
}

int
prober_check_enabled(const struct prober *pr, enum probe_check k)
{
	return (pr->hc.checks & (1u << k)) != 0;
}
