#include "health/loadreport.h"
#include "backends/pins.h"
#include "backends/score.h"
#include "core/clock.h"
#include "core/err.h"

#include <math.h>
#include <stdio.h>

/* Rounded to 4 decimals: ratios and load averages need no more. */
static double
r4(double v)
{
	return round(v * 10000) / 10000;
}

static double
score_of(const struct ops_env *env, const struct instance *in, int64_t now_ms)
{
	size_t users = env->pins != NULL ? pins_count(env->pins, in->conf.id) : 0;

	return score_compute(&reg_placement(env->reg)->weights, users, in->conf.capacity,
	    &in->load, now_ms);
}

/* Adds key: v, or key: null when !present. */
static void
add_number(cJSON *o, const char *key, int present, double v)
{
	if (present)
		cJSON_AddNumberToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

cJSON *
loadreport_status(const struct ops_env *env, const struct instance *in, int64_t now_ms)
{
	const struct inst_load *l = &in->load;
	const struct load_figures *f = &l->fig;
	cJSON *o = cJSON_CreateObject();
	char ts[PG_TIMESTR];
	int have = l->at_ms != 0;

	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "state", load_state_name(l->state));
	if (l->state == LOAD_UNKNOWN)
		cJSON_AddStringToObject(o, "reason", l->reason);
	else
		cJSON_AddNullToObject(o, "reason");
	/* The last good figures, also while the state is unknown (then they are that old). */
	if (have)
		cJSON_AddStringToObject(o, "at", pg_time_format(l->at_ms, ts));
	else
		cJSON_AddNullToObject(o, "at");
	add_number(o, "age_s", have, r4((double)(now_ms - l->at_ms) / 1000));
	add_number(o, "load1", have, r4(f->load1));
	add_number(o, "load5", have, r4(f->load5));
	add_number(o, "load15", have, r4(f->load15));
	add_number(o, "ncpu", have, f->ncpu);
	add_number(o, "mem_used", have, r4(load_mem_used(f)));
	add_number(o, "mem_total_kb", have, (double)f->mem_total_kb);
	add_number(o, "gpus", have, f->ngpu);
	add_number(o, "gpu_util", have && f->ngpu > 0, r4(f->gpu_util));
	add_number(o, "gpu_mem_used", have && f->ngpu > 0, r4(f->gpu_mem_used));
	add_number(o, "users_logged_in", have && f->has_users, f->users);
	cJSON_AddBoolToObject(o, "weighed", load_usable(l, now_ms));
	cJSON_AddNumberToObject(o, "placement_score", r4(score_of(env, in, now_ms)));
	cJSON_AddNumberToObject(o, "rounds_ok", (double)l->ok_total);
	cJSON_AddNumberToObject(o, "rounds_failed", (double)l->fail_total);
	cJSON_AddNumberToObject(o, "logins", (double)l->logins_total);
	return o;
}

#define EMIT(...) do { if ((r = pg_buf_printf(out, __VA_ARGS__)) != 0) return r; } while (0)
#define FAMILY(name, type, help) EMIT("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type)

/* Figures that have a gauge of their own. */
enum figure { FIG_CPUS, FIG_MEM_USED, FIG_MEM_BYTES, FIG_GPUS, FIG_GPU_UTIL, FIG_GPU_MEM,
	FIG_USERS };

static const struct {
	enum figure fig;
	const char *name, *help;
} gauges[] = {
	{ FIG_CPUS, "poolgate_instance_cpus", "CPUs the instance reported." },
	{ FIG_MEM_USED, "poolgate_instance_memory_used_ratio",
	  "Fraction of the instance's memory in use (1 - MemAvailable / MemTotal)." },
	{ FIG_MEM_BYTES, "poolgate_instance_memory_bytes", "Memory of the instance (MemTotal)." },
	{ FIG_GPUS, "poolgate_instance_gpus", "GPUs the instance reported." },
	{ FIG_GPU_UTIL, "poolgate_instance_gpu_utilization_ratio",
	  "Mean GPU utilisation of the instance, 0..1." },
	{ FIG_GPU_MEM, "poolgate_instance_gpu_memory_used_ratio",
	  "Mean fraction of GPU memory in use on the instance." },
	{ FIG_USERS, "poolgate_instance_logged_in_users",
	  "Users logged in to the instance, as its load probe counted them." },
};

/* Sets *v to figure k of f; 0 when f has no such figure (no GPU, users not counted). */
static int
figure(const struct load_figures *f, enum figure k, double *v)
{
	switch (k) {
	case FIG_CPUS: *v = f->ncpu; return 1;
	case FIG_MEM_USED: *v = load_mem_used(f); return 1;
	case FIG_MEM_BYTES: *v = (double)f->mem_total_kb * 1024; return 1;
	case FIG_GPUS: *v = f->ngpu; return 1;
	case FIG_GPU_UTIL: *v = f->gpu_util; return f->ngpu > 0;
	case FIG_GPU_MEM: *v = f->gpu_mem_used; return f->ngpu > 0;
	case FIG_USERS: *v = f->users; return f->has_users;
	}
	return 0;
}

int
loadreport_metrics(const struct ops_env *env, struct pg_buf *out, int64_t now_ms)
{
	const struct place_ctl *ctl = reg_placement(env->reg);
	struct instance *in;
	int r;

	FAMILY("poolgate_instance_load_known", "gauge",
	    "1 when the last load probe round of the instance succeeded, else 0.");
	for (in = reg_first(env->reg); in != NULL; in = in->next)
		EMIT("poolgate_instance_load_known{instance=\"%s\"} %d\n", in->conf.id,
		    in->load.state == LOAD_KNOWN);
	FAMILY("poolgate_instance_load_average", "gauge",
	    "Load average the instance reported (only while its load is known).");
	for (in = reg_first(env->reg); in != NULL; in = in->next) {
		const struct load_figures *f = &in->load.fig;
		if (in->load.state != LOAD_KNOWN)
			continue;
		EMIT("poolgate_instance_load_average{instance=\"%s\",period=\"1m\"} %.6g\n",
		    in->conf.id, f->load1);
		EMIT("poolgate_instance_load_average{instance=\"%s\",period=\"5m\"} %.6g\n",
		    in->conf.id, f->load5);
		EMIT("poolgate_instance_load_average{instance=\"%s\",period=\"15m\"} %.6g\n",
		    in->conf.id, f->load15);
	}
	/* Figures only while known: a stale value would look current on a dashboard. */
	for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
		FAMILY(gauges[g].name, "gauge", gauges[g].help);
		for (in = reg_first(env->reg); in != NULL; in = in->next) {
			double v;
			if (in->load.state == LOAD_KNOWN && figure(&in->load.fig, gauges[g].fig, &v))
				EMIT("%s{instance=\"%s\"} %.12g\n", gauges[g].name, in->conf.id, v);
		}
	}
	FAMILY("poolgate_instance_load_age_seconds", "gauge",
	    "Age of the instance's last good load figures.");
	for (in = reg_first(env->reg); in != NULL; in = in->next) {
		if (in->load.at_ms != 0)
			EMIT("poolgate_instance_load_age_seconds{instance=\"%s\"} %.3f\n", in->conf.id,
			    (double)(now_ms - in->load.at_ms) / 1000);
	}
	FAMILY("poolgate_instance_placement_score", "gauge",
	    "The placement score a new user would see on the instance (lower wins).");
	for (in = reg_first(env->reg); in != NULL; in = in->next)
		EMIT("poolgate_instance_placement_score{instance=\"%s\"} %.6g\n", in->conf.id,
		    score_of(env, in, now_ms));
	FAMILY("poolgate_load_probe_rounds_total", "counter",
	    "Load probe rounds by instance and result.");
	for (in = reg_first(env->reg); in != NULL; in = in->next) {
		if (in->load.state == LOAD_OFF && in->load.ok_total + in->load.fail_total == 0)
			continue;
		EMIT("poolgate_load_probe_rounds_total{instance=\"%s\",result=\"ok\"} %llu\n",
		    in->conf.id, (unsigned long long)in->load.ok_total);
		EMIT("poolgate_load_probe_rounds_total{instance=\"%s\",result=\"fail\"} %llu\n",
		    in->conf.id, (unsigned long long)in->load.fail_total);
	}
	FAMILY("poolgate_load_probe_logins_total", "counter",
	    "SSH logins of the load probe (one per kept session).");
	for (in = reg_first(env->reg); in != NULL; in = in->next) {
		if (in->load.state != LOAD_OFF || in->load.logins_total > 0)
			EMIT("poolgate_load_probe_logins_total{instance=\"%s\"} %llu\n", in->conf.id,
			    (unsigned long long)in->load.logins_total);
	}
	FAMILY("poolgate_placement_decisions_total", "counter",
	    "Placement decisions by reason (kept pin, new pin, moved pin, anonymous browser, wait, "
	    "pool full, no instance, error).");
	for (int i = 0; i < PLACE_NREASONS; i++)
		EMIT("poolgate_placement_decisions_total{reason=\"%s\"} %llu\n",
		    place_reason_name((enum place_reason)i), (unsigned long long)ctl->decisions[i]);
	return 0;
}
