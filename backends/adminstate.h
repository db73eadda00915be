/*
 * The operator's layer, kept on disk: state_dir/admin.json holds the overrides of instances'
 * admin states (backends/instance.h says how they meet the config) and the instances added through
 * the admin API (source "api"). core/config.h, pg_admin_state_parse(), documents the format.
 *
 * Read once at start, blocking, before the loop runs. Written after every change, off the loop:
 * the JSON is rendered on the loop thread, a uv_queue_work job writes a temporary file, fsyncs it,
 * renames it over admin.json and fsyncs the directory, so a crash leaves the old file or the new
 * one, never half of one. Changes made while a write runs are written once it ends (only the
 * newest state). Overrides are watched through registry hooks, so a change made anywhere (the
 * admin API, a reload that overtakes an override, an instance that goes away) is saved.
 *
 * A file that does not parse is logged at error and ignored: poolgate starts without the operator's
 * layer rather than not at all, and the file stays as it was until the next change rewrites it. A
 * write that fails is logged; the state stays in force in memory and the next change tries again.
 */
#ifndef PG_BACKENDS_ADMINSTATE_H
#define PG_BACKENDS_ADMINSTATE_H

#include <uv.h>

#include "backends/instance.h"

struct astate;

/*
 * Reads state_dir/admin.json (a missing file is an empty state), restores its overrides into reg
 * and applies its instances as source INST_SRC_API; then watches reg. Returns 0 and sets *out, or
 * PG_ENOMEM. Stop with astate_close() before reg is freed.
 */
int astate_open(uv_loop_t *loop, struct registry *reg, const char *state_dir, struct astate **out);

/*
 * Stops watching the registry. A write in progress, and the newest state waiting for it, still
 * complete (the loop runs until they have); the memory goes after that. NULL is fine.
 */
void astate_close(struct astate *s);

/*
 * Adds an instance from the admin API. Returns 0, PG_EEXIST (the registry lists that id already,
 * from any source) or PG_ENOMEM. ic is copied.
 */
int astate_add(struct astate *s, const struct inst_conf *ic);

/* Removes an instance the admin API added. Returns 0 or PG_ENOTFOUND (not one of those). */
int astate_remove(struct astate *s, const char *id);

/* 1 when the admin API added id (whether or not the config has since taken the id over). */
int astate_has(const struct astate *s, const char *id);

/*
 * Applies the API's instances again; after a config reload, since an id the config gave up may
 * now be the API's again.
 */
void astate_refresh(struct astate *s);

/*
 * The registry's overrides as a JSON array of {"id", "admin_state", "base"}: the file's format,
 * and /status's "admin.overrides". Returns a new cJSON array (the caller deletes it) or NULL when
 * out of memory.
 */
struct cJSON;
struct cJSON *astate_overrides_json(const struct registry *reg);

/* Writes done and failed since start, for /metrics. */
struct astate_stats {
	uint64_t writes_ok, writes_failed;
};
struct astate_stats astate_get_stats(const struct astate *s);

#endif
