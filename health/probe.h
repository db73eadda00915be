/*
 * Health probes. Every instance gets rounds on a jittered timer; a round runs the enabled checks
 * concurrently, each bounded by timeout_ms:
 *   tcp   connect to the ssh port (latency = connect time);
 *   ssh   read the SSH identification line on that same connection;
 *   http  GET http_path (default /hub/health) on the http port, plain or TLS, 2xx = good.
 * The round is good when every enabled check is. hyst.h turns rounds into up/down, which goes to the
 * registry (inst_set_health), which logs the change with the reason.
 *
 * The prober follows the registry through its hooks: new instances get probes, changed endpoints
 * start over from unknown, removed instances' probes stop.
 */
#ifndef PG_HEALTH_PROBE_H
#define PG_HEALTH_PROBE_H

#include <stdint.h>
#include <uv.h>

#include "backends/instance.h"
#include "core/config.h"
#include "health/ident.h"

struct probe_result {
	int ran;		/* 0 until the check completed once */
	int ok;
	double latency_ms;
	int64_t at_ms;		/* wall clock of the last completion */
	int http_status;	/* http only; 0 when no status line arrived */
	char error[160];	/* empty when ok */
	char ident[SSH_IDENT_MAX_LINE + 1];
	uint64_t ok_total, fail_total;
};

struct prober;

/* Creates the prober and installs itself as reg's hooks. Returns NULL on allocation failure. */
struct prober *prober_new(uv_loop_t *loop, struct registry *reg, const struct health_conf *hc);

/* Takes new settings (SIGHUP); they apply from each instance's next round. 0 or PG_ENOMEM. */
int prober_set_conf(struct prober *pr, const struct health_conf *hc);

/* Stops every probe. Memory goes when the last handle has closed; the loop must keep running. */
void prober_stop(struct prober *pr);

/* The last result of each check (PROBE_NCHECKS entries) for in, or NULL if it has no probe. */
const struct probe_result *probe_results(const struct instance *in);

/* Whether check k is enabled in the current settings. */
int prober_check_enabled(const struct prober *pr, enum probe_check k);

#endif
