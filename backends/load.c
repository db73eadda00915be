#include "backends/load.h"
#include "backends/instance.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

static const char *const state_names[] = { "off", "unknown", "known" };

const char *
load_state_name(enum load_state s)
{
	return (unsigned)s < 3 ? state_names[s] : "?";
}

double
load_mem_used(const struct load_figures *f)
{
	if (f->mem_total_kb == 0 || f->mem_avail_kb >= f->mem_total_kb)
		return 0;
	return 1.0 - (double)f->mem_avail_kb / (double)f->mem_total_kb;
}

double
load_gpu(const struct load_figures *f)
{
	if (f->ngpu == 0)
		return 0;
	return f->gpu_util > f->gpu_mem_used ? f->gpu_util : f->gpu_mem_used;
}

int
load_usable(const struct inst_load *l, int64_t now_ms)
{
	return l->state == LOAD_KNOWN && now_ms <= l->valid_until_ms;
}

static const char *
prefix_of(const struct instance *in, char *buf, size_t n)
{
	snprintf(buf, n, "load %s", in->conf.id);
	return buf;
}

void
load_set_known(struct instance *in, const struct load_figures *f, int64_t now_ms,
    int64_t valid_ms)
{
	struct inst_load *l = &in->load;
	char prefix[PG_ID_MAX + 8];

	if (l->state != LOAD_KNOWN)
		LOG_INFO(prefix_of(in, prefix, sizeof(prefix)), "load known%s: load1 %.2f on %u cpu%s, "
		    "memory %.0f%% used", l->at_ms != 0 ? " again" : "", f->load1, f->ncpu,
		    f->ncpu == 1 ? "" : "s", 100 * load_mem_used(f));
	l->state = LOAD_KNOWN;
	l->fig = *f;
	l->at_ms = now_ms;
	l->valid_until_ms = now_ms + valid_ms;
	l->reason[0] = '\0';
	l->ok_total++;
}

void
load_set_unknown(struct instance *in, const char *reason)
{
	struct inst_load *l = &in->load;
	char prefix[PG_ID_MAX + 8];

	l->fail_total++;
	if (l->state == LOAD_UNKNOWN && strcmp(l->reason, reason) == 0)
		return;
	LOG_NOTICE(prefix_of(in, prefix, sizeof(prefix)), "load unknown: %s", reason);
	l->state = LOAD_UNKNOWN;
	snprintf(l->reason, sizeof(l->reason), "%s", reason);
}

void
load_reset(struct instance *in, const char *reason)
{
	struct inst_load *l = &in->load;

	memset(&l->fig, 0, sizeof(l->fig));
	l->at_ms = l->valid_until_ms = 0;
	l->state = LOAD_UNKNOWN;
	snprintf(l->reason, sizeof(l->reason), "%s", reason);
}

void
load_note_login(struct instance *in)
{
	in->load.logins_total++;
}

void
load_set_off(struct instance *in)
{
	in->load.state = LOAD_OFF;
	in->load.reason[0] = '\0';
}
