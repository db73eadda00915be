/*
 * What /status and /metrics say. Kept apart from the HTTP server so unit tests can render them from
 * a registry they built by hand.
 */
#include "backends/adminstate.h"
#include "backends/pins.h"
#include "core/clock.h"
#include "core/err.h"
#include "health/loadreport.h"
#include "health/admin.h"
#include "health/ops.h"

#include <cjson/cJSON.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static cJSON *
time_item(int64_t ms)
{
	char buf[PG_TIMESTR];

	return cJSON_CreateString(pg_time_format(ms, buf));
}

static cJSON *
check_item(const struct probe_result *r, enum probe_check k)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return NULL;
	if (r == NULL || !r->ran) {
		cJSON_AddNullToObject(o, "ok");
		cJSON_AddNullToObject(o, "latency_ms");
		cJSON_AddNullToObject(o, "at");
		cJSON_AddNullToObject(o, "error");
		return o;
	}
	cJSON_AddBoolToObject(o, "ok", r->ok);
	/* Round to microseconds: more digits would be noise. */
	cJSON_AddNumberToObject(o, "latency_ms", (double)(int64_t)(r->latency_ms * 1000 + 0.5) / 1000);
	cJSON_AddItemToObject(o, "at", time_item(r->at_ms));
	if (r->ok)
		cJSON_AddNullToObject(o, "error");
	else
		cJSON_AddStringToObject(o, "error", r->error);
	if (k == PROBE_SSH && r->ok)
		cJSON_AddStringToObject(o, "ident", r->ident);
	if (k == PROBE_HTTP && r->http_status != 0)
		cJSON_AddNumberToObject(o, "status", r->http_status);
	return o;
}

cJSON *
ops_instance_json(const struct ops_env *env, const struct instance *in)
{
	const struct inst_conf *ic = &in->conf;
	const struct probe_result *res = probe_results(in);
	cJSON *o = cJSON_CreateObject(), *labels, *checks, *users;
	const char **names = NULL;
	size_t nnames = 0;
	enum inst_admin ov;

	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "id", ic->id);
	cJSON_AddStringToObject(o, "address", ic->address);
	cJSON_AddNumberToObject(o, "ssh_port", ic->ssh_port);
	cJSON_AddNumberToObject(o, "http_port", ic->http_port);
	cJSON_AddStringToObject(o, "http_scheme", ic->http_tls ? "https" : "http");
	cJSON_AddStringToObject(o, "source", inst_source_name(in->source));
	cJSON_AddStringToObject(o, "state", inst_state_name(inst_state(in)));
	cJSON_AddStringToObject(o, "health", inst_health_name(in->health));
	cJSON_AddStringToObject(o, "admin_state", inst_admin_name(ic->admin));
	/* The operator's override in force (admin API), else null: then admin_state is the source's. */
	if (reg_get_override(env->reg, ic->id, &ov))
		cJSON_AddStringToObject(o, "admin_override", inst_admin_name(ov));
	else
		cJSON_AddNullToObject(o, "admin_override");
	cJSON_AddItemToObject(o, "since", time_item(in->since_ms));
	cJSON_AddStringToObject(o, "reason", in->reason);
	cJSON_AddNumberToObject(o, "capacity", ic->capacity);
	labels = cJSON_AddObjectToObject(o, "labels");
	for (size_t i = 0; labels != NULL && i < ic->nlabels; i++)
		cJSON_AddStringToObject(labels, ic->labels[i].key, ic->labels[i].value);
	if (env->pins != NULL) {
		size_t live = pins_live_instance(env->pins, ic->id);

		cJSON_AddNumberToObject(o, "live_sessions", (double)live);
		/* What an autoscaler waits for before it deletes the instance. */
		cJSON_AddBoolToObject(o, "drained", ic->admin == INST_DRAINING && live == 0);
	}
	users = cJSON_AddArrayToObject(o, "users");
	if (users != NULL && env->pins != NULL &&
	    pins_users(env->pins, ic->id, &names, &nnames) == 0) {
		for (size_t i = 0; i < nnames; i++)
			cJSON_AddItemToArray(users, cJSON_CreateString(names[i]));
		free(names);
	}
	cJSON_AddItemToObject(o, "load", loadreport_status(env, in, pg_wall_ms()));
	checks = cJSON_AddObjectToObject(o, "checks");
	for (int k = 0; checks != NULL && k < PROBE_NCHECKS; k++) {
		if (env->prober != NULL && prober_check_enabled(env->prober, (enum probe_check)k))
			cJSON_AddItemToObject(checks, probe_check_name((enum probe_check)k),
			    check_item(res != NULL ? &res[k] : NULL, (enum probe_check)k));
	}
	return o;
}

/* "pins": the table's size and its store's health. */
static int
pins_item(const struct pin_table *pins, cJSON *root)
{
	cJSON *o = cJSON_AddObjectToObject(root, "pins");
	struct pin_store_stats st;
	int stored = pins_store_stats(pins, &st) == 0;

	if (o == NULL)
		return PG_ENOMEM;
	cJSON_AddNumberToObject(o, "total", (double)pins_size(pins));
	cJSON_AddNumberToObject(o, "live_sessions", (double)pins_live_total(pins));
	cJSON_AddStringToObject(o, "store", stored ? st.name : "memory");
	cJSON_AddBoolToObject(o, "store_healthy", !stored || st.healthy);
	if (stored && st.last_error != 0) {
		cJSON_AddStringToObject(o, "store_last_error", pg_strerror(st.last_error));
		cJSON_AddItemToObject(o, "store_last_error_at", time_item(st.last_error_ms));
	}
	return 0;
}

/*
 * /status "admin": whether actions are enabled, the overrides (also those waiting for their
 * instance to be listed), actions by result, and the config reloads.
 */
static int
admin_status(const struct ops_env *env, cJSON *root)
{
	cJSON *a = cJSON_AddObjectToObject(root, "admin"), *acts, *rl;

	if (a == NULL)
		return PG_ENOMEM;
	cJSON_AddBoolToObject(a, "actions_enabled", admin_enabled(env->admin));
	if (!cJSON_AddItemToObject(a, "overrides", astate_overrides_json(env->reg)) ||
	    (acts = cJSON_AddObjectToObject(a, "actions")) == NULL ||
	    (rl = cJSON_AddObjectToObject(a, "reload")) == NULL)
		return PG_ENOMEM;
	for (int i = 0; i < ADMIN_NACTIONS; i++) {
		cJSON *c = cJSON_AddObjectToObject(acts, admin_action_name((enum admin_action)i));
		for (int k = 0; c != NULL && k < ADMIN_NRESULTS; k++)
			cJSON_AddNumberToObject(c, admin_result_name((enum admin_result)k),
			    (double)admin_count(env->admin, (enum admin_action)i, (enum admin_result)k));
	}
	cJSON_AddBoolToObject(rl, "in_progress", env->reload.in_progress);
	cJSON_AddNumberToObject(rl, "done", (double)env->reload.done);
	if (env->reload.last_ms != 0) {
		cJSON_AddItemToObject(rl, "last", time_item(env->reload.last_ms));
		cJSON_AddBoolToObject(rl, "ok", env->reload.last_ok);
		if (env->reload.last_ok)
			cJSON_AddNullToObject(rl, "error");
		else
			cJSON_AddStringToObject(rl, "error", env->reload.last_error);
	} else {
		cJSON_AddNullToObject(rl, "last");
		cJSON_AddNullToObject(rl, "ok");
		cJSON_AddNullToObject(rl, "error");
	}
	return 0;
}

int
ops_render_status(const struct ops_env *env, struct pg_buf *out)
{
	cJSON *root = cJSON_CreateObject(), *arr;
	char *text = NULL;
	int r = PG_ENOMEM;

	if (root == NULL)
		return PG_ENOMEM;
	cJSON_AddStringToObject(root, "version", PG_VERSION);
	cJSON_AddItemToObject(root, "now", time_item(pg_wall_ms()));
	cJSON_AddItemToObject(root, "started", time_item(env->started_ms));
	cJSON_AddBoolToObject(root, "ready", reg_count_up(env->reg) > 0);
	if (env->pins != NULL && pins_item(env->pins, root) != 0)
		goto out;
	if ((arr = cJSON_AddArrayToObject(root, "instances")) == NULL)
		goto out;
	for (struct instance *in = reg_first(env->reg); in != NULL; in = in->next) {
		cJSON *item = ops_instance_json(env, in);
		if (item == NULL || !cJSON_AddItemToArray(arr, item)) {
			cJSON_Delete(item);
			goto out;
		}
	}
	if (admin_status(env, root) != 0)
		goto out;
	/* cJSON drops members it could not allocate silently; print failing is our only signal. */
	if ((text = cJSON_PrintUnformatted(root)) == NULL)
		goto out;
	r = pg_buf_append_str(out, text);
	if (r == 0)
		r = pg_buf_append(out, "\n", 1);
out:
	free(text);
	cJSON_Delete(root);
	return r;
}

/*
 * Label values are escaped per the exposition format: backslash, double quote and newline. Instance
 * ids are restricted to [A-Za-z0-9._-] by the config, so only label values from elsewhere need it.
 */
static int
label_value(struct pg_buf *b, const char *s)
{
	int r = 0;

	for (; *s != '\0' && r == 0; s++) {
		if (*s == '\\' || *s == '"')
			r = pg_buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			r = pg_buf_append_str(b, "\\n");
		else
			r = pg_buf_append(b, s, 1);
	}
	return r;
}

#define EMIT(...) do { if ((r = pg_buf_printf(out, __VA_ARGS__)) != 0) return r; } while (0)

static int
family(struct pg_buf *out, const char *name, const char *type, const char *help)
{
	return pg_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one unlabelled sample. */
static int
scalar(struct pg_buf *out, const char *name, const char *type, const char *help, uint64_t v)
{
	int r;

	if ((r = family(out, name, type, help)) != 0)
		return r;
	return pg_buf_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

/* The pin store's families (docs/pins.md); none when the store is "memory". */
static int
render_store_metrics(const struct pin_store_stats *st, struct pg_buf *out)
{
	int r;

	if ((r = family(out, "poolgate_pin_store_healthy", "gauge",
	    "0 while the pin store cannot write (pins are then served from memory).")) != 0)
		return r;
	EMIT("poolgate_pin_store_healthy{store=\"%s\"} %d\n", st->name, st->healthy);
	if ((r = scalar(out, "poolgate_pin_journal_synced_records_total", "counter",
	    "Journal records written and fsync'd.", st->records_synced)) != 0 ||
	    (r = scalar(out, "poolgate_pin_journal_syncs_total", "counter",
	    "Group commits and snapshots that reached the disk.", st->syncs)) != 0 ||
	    (r = scalar(out, "poolgate_pin_journal_unsynced_changes", "gauge",
	    "Pin changes not yet on disk.", st->unsynced)) != 0 ||
	    (r = scalar(out, "poolgate_pin_journal_bytes", "gauge",
	    "Size of the current journal.", st->journal_bytes)) != 0 ||
	    (r = scalar(out, "poolgate_pin_store_errors_total", "counter",
	    "Failed reads, writes, fsyncs and snapshots of the pin store.", st->errors)) != 0 ||
	    (r = family(out, "poolgate_pin_store_last_error_timestamp_seconds", "gauge",
	    "When the pin store last failed, since the epoch (0: never).")) != 0)
		return r;
	EMIT("poolgate_pin_store_last_error_timestamp_seconds %.3f\n",
	    (double)st->last_error_ms / 1000);
	if (st->last_error != 0) {
		if ((r = family(out, "poolgate_pin_store_last_error_info", "gauge",
		    "The pin store's last failure: the step and the error.")) != 0)
			return r;
		EMIT("poolgate_pin_store_last_error_info{op=\"");
		if ((r = label_value(out, st->last_error_op != NULL ? st->last_error_op : "")) != 0)
			return r;
		EMIT("\",error=\"");
		if ((r = label_value(out, pg_strerror(st->last_error))) != 0)
			return r;
		EMIT("\"} 1\n");
	}
	if (st->snapshot_ms != 0) {
		if ((r = family(out, "poolgate_pin_snapshot_age_seconds", "gauge",
		    "Time since the current snapshot was written.")) != 0)
			return r;
		EMIT("poolgate_pin_snapshot_age_seconds %.3f\n",
		    (double)(pg_wall_ms() - st->snapshot_ms) / 1000);
	}
	if ((r = scalar(out, "poolgate_pin_snapshot_compactions_total", "counter",
	    "Snapshots written (at start and when the journal grew).", st->compactions)) != 0 ||
	    (r = scalar(out, "poolgate_pin_replay_records", "gauge",
	    "Records replayed from the pin store at start.", st->replayed)) != 0 ||
	    (r = scalar(out, "poolgate_pin_replay_torn_tails", "gauge",
	    "Torn last records dropped at start.", st->torn)) != 0)
		return r;
	return scalar(out, "poolgate_pin_replay_corrupt_files", "gauge",
	    "Files whose replay stopped at a corrupt record at start.", st->corrupt);
}

/* Pins, live sessions and drains. */
static int
render_pin_metrics(const struct ops_env *env, struct pg_buf *out)
{
	const struct pin_counters *pc = pins_get_counters(env->pins);
	struct pin_store_stats st;
	struct instance *in;
	int r;

	if ((r = scalar(out, "poolgate_pins", "gauge", "Users pinned to an instance.",
	    pins_size(env->pins))) != 0)
		return r;
	if ((r = family(out, "poolgate_pin_changes_total", "counter",
	    "Pins made, moved to another instance, removed and expired.")) != 0)
		return r;
	EMIT("poolgate_pin_changes_total{change=\"created\"} %llu\n",
	    (unsigned long long)pc->created);
	EMIT("poolgate_pin_changes_total{change=\"moved\"} %llu\n", (unsigned long long)pc->moved);
	EMIT("poolgate_pin_changes_total{change=\"removed\"} %llu\n",
	    (unsigned long long)pc->removed);
	EMIT("poolgate_pin_changes_total{change=\"expired\"} %llu\n",
	    (unsigned long long)pc->expired);
	if ((r = scalar(out, "poolgate_live_sessions", "gauge",
	    "Live sessions (SSH connections, websockets) in all.", pins_live_total(env->pins))) != 0)
		return r;
	if ((r = family(out, "poolgate_instance_live_sessions", "gauge",
	    "Live sessions (SSH connections, websockets) running on the instance.")) != 0)
		return r;
	for (in = reg_first(env->reg); in != NULL; in = in->next)
		EMIT("poolgate_instance_live_sessions{instance=\"%s\"} %zu\n", in->conf.id,
		    pins_live_instance(env->pins, in->conf.id));
	if ((r = family(out, "poolgate_instance_drained", "gauge",
	    "1 when the instance is draining and no live session is left on it.")) != 0)
		return r;
	for (in = reg_first(env->reg); in != NULL; in = in->next)
		EMIT("poolgate_instance_drained{instance=\"%s\"} %d\n", in->conf.id,
		    in->conf.admin == INST_DRAINING && pins_live_instance(env->pins, in->conf.id) == 0);
	if ((r = family(out, "poolgate_pin_store_info", "gauge",
	    "The pin store in use (pins.store).")) != 0)
		return r;
	if (pins_store_stats(env->pins, &st) != 0) {
		EMIT("poolgate_pin_store_info{store=\"memory\"} 1\n");
		return 0;
	}
	EMIT("poolgate_pin_store_info{store=\"%s\"} 1\n", st.name);
	return render_store_metrics(&st, out);
}

/* A counter family with the two series result="ok" and result="error". */
static int
ok_error_counter(struct pg_buf *out, const char *name, const char *help, uint64_t ok,
    uint64_t failed)
{
	int r;

	if ((r = family(out, name, "counter", help)) != 0)
		return r;
	EMIT("%s{result=\"ok\"} %llu\n", name, (unsigned long long)ok);
	EMIT("%s{result=\"error\"} %llu\n", name, (unsigned long long)failed);
	return 0;
}

static int
override_metric(void *arg, const char *id, enum inst_admin admin, enum inst_admin base)
{
	return pg_buf_printf(arg, "poolgate_admin_override{instance=\"%s\",admin_state=\"%s\"} 1\n",
	    id, inst_admin_name(admin));
}

static int
admin_metrics(const struct ops_env *env, struct pg_buf *out)
{
	struct astate_stats st = astate_get_stats(env->astate);
	int r;

	if ((r = family(out, "poolgate_admin_actions_total", "counter",
	    "Admin API requests by action and result (ok, denied: 401/403, rejected: other 4xx, "
	    "error: 5xx).")) != 0)
		return r;
	for (int i = 0; i < ADMIN_NACTIONS; i++) {
		for (int k = 0; k < ADMIN_NRESULTS; k++)
			EMIT("poolgate_admin_actions_total{action=\"%s\",result=\"%s\"} %llu\n",
			    admin_action_name((enum admin_action)i), admin_result_name((enum admin_result)k),
			    (unsigned long long)admin_count(env->admin, (enum admin_action)i,
			    (enum admin_result)k));
	}
	if ((r = family(out, "poolgate_admin_actions_enabled", "gauge",
	    "1 when an admin token is in force (admin.token_file), else 0.")) != 0)
		return r;
	EMIT("poolgate_admin_actions_enabled %d\n", admin_enabled(env->admin));
	if ((r = family(out, "poolgate_admin_override", "gauge",
	    "Operator overrides of instances' admin states in force, one series each.")) != 0 ||
	    (r = reg_foreach_override(env->reg, override_metric, out)) != 0)
		return r;
	return ok_error_counter(out, "poolgate_admin_state_writes_total",
	    "Writes of the operator's state file (state_dir/admin.json) by result.", st.writes_ok,
	    st.writes_failed);
}

int
ops_render_metrics(const struct ops_env *env, struct pg_buf *out)
{
	static const char *const klass[] = { "", "1xx", "2xx", "3xx", "4xx", "5xx" };
	const struct ops_counters *c = &env->counters;
	struct instance *in;
	int r;

	if ((r = family(out, "poolgate_build_info", "gauge", "Version of poolgate.")) != 0)
		return r;
	EMIT("poolgate_build_info{version=\"%s\"} 1\n", PG_VERSION);
	if ((r = family(out, "poolgate_start_time_seconds", "gauge",
	    "Start time of the process since the epoch in seconds.")) != 0)
		return r;
	EMIT("poolgate_start_time_seconds %.3f\n", (double)env->started_ms / 1000);
	{
		/* glibc's own count: memory freed but kept for reuse (M_TRIM_THRESHOLD) is not in it. */
		struct mallinfo2 mi = mallinfo2();

		if ((r = family(out, "poolgate_heap_inuse_bytes", "gauge",
		    "Heap bytes allocated and not freed (glibc mallinfo2).")) != 0)
			return r;
		EMIT("poolgate_heap_inuse_bytes %zu\n", mi.uordblks + mi.hblkhd);
	}

	if ((r = family(out, "poolgate_instances", "gauge", "Instances by state.")) != 0)
		return r;
	for (int s = INST_S_UNKNOWN; s <= INST_S_MAINT; s++) {
		size_t n = 0;
		for (in = reg_first(env->reg); in != NULL; in = in->next)
			n += inst_state(in) == (enum inst_state)s;
		EMIT("poolgate_instances{state=\"%s\"} %zu\n", inst_state_name((enum inst_state)s), n);
	}
	if ((r = family(out, "poolgate_ready", "gauge",
	    "1 when at least one instance is up (what /readyz says).")) != 0)
		return r;
	EMIT("poolgate_ready %d\n", reg_count_up(env->reg) > 0);

	if ((r = family(out, "poolgate_instance_up", "gauge",
	    "1 when the instance is up and active, else 0.")) != 0)
		return r;
	for (in = reg_first(env->reg); in != NULL; in = in->next)
		EMIT("poolgate_instance_up{instance=\"%s\"} %d\n", in->conf.id,
		    inst_state(in) == INST_S_UP);
	if ((r = family(out, "poolgate_instance_state", "gauge",
	    "1 for the state the instance is in, 0 for the others.")) != 0)
		return r;
	for (in = reg_first(env->reg); in != NULL; in = in->next) {
		for (int s = INST_S_UNKNOWN; s <= INST_S_MAINT; s++)
			EMIT("poolgate_instance_state{instance=\"%s\",state=\"%s\"} %d\n", in->conf.id,
			    inst_state_name((enum inst_state)s), inst_state(in) == (enum inst_state)s);
	}
	if ((r = family(out, "poolgate_instance_state_since_seconds", "gauge",
	    "When the instance entered its state, since the epoch in seconds.")) != 0)
		return r;
	for (in = reg_first(env->reg); in != NULL; in = in->next)
		EMIT("poolgate_instance_state_since_seconds{instance=\"%s\"} %.3f\n", in->conf.id,
		    (double)in->since_ms / 1000);
	if ((r = family(out, "poolgate_instance_state_changes_total", "counter",
	    "State changes of the instance since it was added.")) != 0)
		return r;
	for (in = reg_first(env->reg); in != NULL; in = in->next)
		EMIT("poolgate_instance_state_changes_total{instance=\"%s\"} %llu\n", in->conf.id,
		    (unsigned long long)in->transitions);
	if ((r = family(out, "poolgate_instance_capacity_users", "gauge",
	    "Configured user capacity of the instance.")) != 0)
		return r;
	for (in = reg_first(env->reg); in != NULL; in = in->next)
		EMIT("poolgate_instance_capacity_users{instance=\"%s\"} %u\n", in->conf.id,
		    in->conf.capacity);
	if ((r = family(out, "poolgate_instance_users", "gauge",
	    "Users pinned to the instance.")) != 0)
		return r;
	for (in = reg_first(env->reg); in != NULL; in = in->next)
		EMIT("poolgate_instance_users{instance=\"%s\"} %zu\n", in->conf.id,
		    env->pins != NULL ? pins_count(env->pins, in->conf.id) : 0);

	if (env->pins != NULL && (r = render_pin_metrics(env, out)) != 0)
		return r;

	if ((r = family(out, "poolgate_probe_total", "counter",
	    "Completed health checks by instance, check and result.")) != 0)
		return r;
	for (in = reg_first(env->reg); in != NULL; in = in->next) {
		const struct probe_result *res = probe_results(in);
		for (int k = 0; res != NULL && k < PROBE_NCHECKS; k++) {
			const char *name = probe_check_name((enum probe_check)k);
			EMIT("poolgate_probe_total{instance=\"%s\",check=\"%s\",result=\"ok\"} %llu\n",
			    in->conf.id, name, (unsigned long long)res[k].ok_total);
			EMIT("poolgate_probe_total{instance=\"%s\",check=\"%s\",result=\"fail\"} %llu\n",
			    in->conf.id, name, (unsigned long long)res[k].fail_total);
		}
	}
	if ((r = family(out, "poolgate_probe_latency_seconds", "gauge",
	    "Latency of the last completed health check.")) != 0)
		return r;
	for (in = reg_first(env->reg); in != NULL; in = in->next) {
		const struct probe_result *res = probe_results(in);
		for (int k = 0; res != NULL && k < PROBE_NCHECKS; k++) {
			if (res[k].ran)
				EMIT("poolgate_probe_latency_seconds{instance=\"%s\",check=\"%s\"} %.6f\n",
				    in->conf.id, probe_check_name((enum probe_check)k),
				    res[k].latency_ms / 1000);
		}
	}
	if ((r = family(out, "poolgate_instance_label_info", "gauge",
	    "Labels of the instance, one series per label.")) != 0)
		return r;
	for (in = reg_first(env->reg); in != NULL; in = in->next) {
		for (size_t i = 0; i < in->conf.nlabels; i++) {
			EMIT("poolgate_instance_label_info{instance=\"%s\",label=\"", in->conf.id);
			if ((r = label_value(out, in->conf.labels[i].key)) != 0)
				return r;
			EMIT("\",value=\"");
			if ((r = label_value(out, in->conf.labels[i].value)) != 0)
				return r;
			EMIT("\"} 1\n");
		}
	}

	if ((r = loadreport_metrics(env, out, pg_wall_ms())) != 0)
		return r;
	if ((r = ok_error_counter(out, "poolgate_config_reloads_total",
	    "Config reloads (SIGHUP or the admin API) by result.", c->reloads_ok,
	    c->reloads_failed)) != 0)
		return r;
	if (env->discovery != NULL) {
		struct discovery_stats ds = discovery_get_stats(env->discovery);
		if ((r = ok_error_counter(out, "poolgate_discovery_loads_total",
		    "Reads of the discovery file by result.", ds.loads_ok, ds.loads_failed)) != 0)
			return r;
	}
	if ((r = family(out, "poolgate_admin_requests_total", "counter",
	    "Requests answered on the admin listener by status class.")) != 0)
		return r;
	for (int i = 1; i <= 5; i++)
		EMIT("poolgate_admin_requests_total{code=\"%s\"} %llu\n", klass[i],
		    (unsigned long long)c->requests[i]);
	if ((r = family(out, "poolgate_admin_bad_requests_total", "counter",
	    "Admin connections closed for a malformed request or a limit.")) != 0)
		return r;
	EMIT("poolgate_admin_bad_requests_total %llu\n", (unsigned long long)c->bad_requests);
	if ((r = family(out, "poolgate_admin_connections_total", "counter",
	    "Admin connections accepted.")) != 0)
		return r;
	EMIT("poolgate_admin_connections_total %llu\n", (unsigned long long)c->conns_total);
	if ((r = family(out, "poolgate_admin_rejected_connections_total", "counter",
	    "Admin connections refused over admin.max_connections.")) != 0)
		return r;
	EMIT("poolgate_admin_rejected_connections_total %llu\n",
	    (unsigned long long)c->rejected_conns);
	if ((r = admin_metrics(env, out)) != 0)
		return r;
	if (env->extra_metrics != NULL)
		return env->extra_metrics(env->extra_arg, out);
	return 0;
}
