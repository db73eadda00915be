/*
 * The discovery file: {"instances": [...]} written by something outside poolgate (an autoscaler
 * hook, a cron job listing the scale set). Polled with uv_fs_poll and re-read without blocking the
 * loop when its stat changes. A file that is invalid or missing is logged and the previous discovery
 * set stays: a half-written file must never empty the pool. An empty "instances" array removes them.
 */
#ifndef PG_BACKENDS_DISCOVERY_H
#define PG_BACKENDS_DISCOVERY_H

#include <stdint.h>
#include <uv.h>

#include "backends/instance.h"

struct discovery;

/* Counters for /metrics. */
struct discovery_stats {
	uint64_t loads_ok, loads_failed;
};

/*
 * Starts watching path and reads it once now. Returns 0 and sets *out, or a negative code.
 * The registry must outlive the watcher.
 */
int discovery_start(uv_loop_t *loop, struct registry *reg, const char *path, uint32_t poll_ms,
    struct discovery **out);

/*
 * Reads the file again now, changed or not: after a config reload released an id the discovery
 * file also lists, that entry must come back without waiting for the file to change.
 */
void discovery_refresh(struct discovery *d);

/* Stops watching; memory goes once the handle and any read in flight are done. Accepts NULL. */
void discovery_stop(struct discovery *d);

const char *discovery_path(const struct discovery *d);
uint32_t discovery_poll_ms(const struct discovery *d);
struct discovery_stats discovery_get_stats(const struct discovery *d);

#endif
