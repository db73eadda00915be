#include "backends/instance.h"
#include "backends/score.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An operator's override; a handful at most, so a list. */
struct override {
	struct override *next;
	char id[PG_ID_MAX + 1];
	enum inst_admin admin, base;
};

struct registry {
	struct instance *head;	/* in configuration order: config first, then the others */
	struct reg_hooks hooks[REG_MAX_HOOKS];
	size_t nhooks;
	struct place_ctl placement;
	struct override *overrides;
	uint64_t overrides_gen;
};

static const char *const state_names[] = { "unknown", "up", "down", "draining", "maint" };
static const char *const health_names[] = { "unknown", "up", "down" };
static const char *const source_names[] = { "config", "discovery", "api" };

const char *
inst_state_name(enum inst_state s)
{
	return (unsigned)s < 5 ? state_names[s] : "?";
}

const char *
inst_health_name(enum inst_health h)
{
	return (unsigned)h < 3 ? health_names[h] : "?";
}

const char *
inst_source_name(enum inst_source s)
{
	return (unsigned)s < 3 ? source_names[s] : "?";
}

/* Which source wins an id: the lower rank (config, then the admin API, then discovery). */
static int
source_rank(enum inst_source s)
{
	return s == INST_SRC_CONFIG ? 0 : s == INST_SRC_API ? 1 : 2;
}

enum inst_state
inst_state(const struct instance *in)
{
	if (in->conf.admin == INST_MAINT)
		return INST_S_MAINT;
	if (in->conf.admin == INST_DRAINING)
		return INST_S_DRAINING;
	switch (in->health) {
	case HEALTH_UP: return INST_S_UP;
	case HEALTH_DOWN: return INST_S_DOWN;
	default: return INST_S_UNKNOWN;
	}
}

/*
 * The one place the reported state changes: called after health or admin state moved, with the
 * state as it was before. Logs "instance ID: old -> new (reason)" at info; the reason is kept
 * for /status only when the state changed, so it always explains the state shown.
 */
static void
note_state(struct instance *in, enum inst_state before, const char *reason)
{
	enum inst_state now = inst_state(in);
	char prefix[PG_ID_MAX + 16];

	if (now == before)
		return;
	snprintf(in->reason, sizeof(in->reason), "%s", reason);
	in->since_ms = pg_wall_ms();
	in->transitions++;
	snprintf(prefix, sizeof(prefix), "instance %s", in->conf.id);
	LOG_INFO(prefix, "%s -> %s (%s)", inst_state_name(before), inst_state_name(now), reason);
}

static struct override **
find_override(struct registry *reg, const char *id)
{
	struct override **pp;

	for (pp = &reg->overrides; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->id, id) == 0)
			break;
	}
	return pp;
}

static void
drop_override(struct registry *reg, struct override **pp)
{
	struct override *o = *pp;

	*pp = o->next;
	free(o);
	reg->overrides_gen++;
}

/*
 * Puts the admin state in force from src_admin and the override, dropping an override the source
 * has overtaken (it now says something else than when the override was made). Does not log the
 * state change: callers do, with their reason.
 */
static void
settle_admin(struct registry *reg, struct instance *in)
{
	struct override **pp = find_override(reg, in->conf.id), *o = *pp;
	char prefix[PG_ID_MAX + 16];

	if (o != NULL && o->base != in->src_admin) {
		snprintf(prefix, sizeof(prefix), "instance %s", in->conf.id);
		LOG_NOTICE(prefix, "operator's %s dropped: the %s now says %s (was %s)",
		    inst_admin_name(o->admin), inst_source_name(in->source),
		    inst_admin_name(in->src_admin), inst_admin_name(o->base));
		drop_override(reg, pp);
		o = NULL;
	}
	in->conf.admin = o != NULL ? o->admin : in->src_admin;
}

void
inst_set_health(struct instance *in, enum inst_health h, const char *reason)
{
	enum inst_state before = inst_state(in);

	in->health = h;
	note_state(in, before, reason);
}

void
inst_ref(struct instance *in)
{
	in->refs++;
}

void
inst_unref(struct instance *in)
{
	if (in == NULL || --in->refs > 0)
		return;
	inst_conf_clear(&in->conf);
	free(in);
}

struct registry *
reg_new(void)
{
	struct registry *reg = calloc(1, sizeof(*reg));

	if (reg != NULL)
		reg->placement.weights = PG_PLACEMENT_WEIGHTS_DEFAULT;
	return reg;
}

struct place_ctl *
reg_placement(struct registry *reg)
{
	return &reg->placement;
}

int
reg_add_hooks(struct registry *reg, const struct reg_hooks *hooks)
{
	if (reg->nhooks == REG_MAX_HOOKS)
		return PG_ERANGE;
	reg->hooks[reg->nhooks++] = *hooks;
	return 0;
}

void
reg_remove_hooks(struct registry *reg, void *arg)
{
	for (size_t i = 0; i < reg->nhooks; i++) {
		if (reg->hooks[i].arg == arg) {
			memmove(&reg->hooks[i], &reg->hooks[i + 1],
			    (reg->nhooks - i - 1) * sizeof(reg->hooks[0]));
			reg->nhooks--;
			return;
		}
	}
}

struct instance *
reg_first(struct registry *reg)
{
	return reg->head;
}

struct instance *
reg_find(struct registry *reg, const char *id)
{
	for (struct instance *in = reg->head; in != NULL; in = in->next) {
		if (strcmp(in->conf.id, id) == 0)
			return in;
	}
	return NULL;
}

size_t
reg_count(struct registry *reg)
{
	size_t n = 0;

	for (struct instance *in = reg->head; in != NULL; in = in->next)
		n++;
	return n;
}

size_t
reg_count_up(struct registry *reg)
{
	size_t n = 0;

	for (struct instance *in = reg->head; in != NULL; in = in->next)
		n += inst_state(in) == INST_S_UP;
	return n;
}

static void
unlink_instance(struct registry *reg, struct instance *victim)
{
	for (struct instance **pp = &reg->head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == victim) {
			*pp = victim->next;
			victim->next = NULL;
			return;
		}
	}
}

static void
remove_instance(struct registry *reg, struct instance *in, const char *why)
{
	char prefix[PG_ID_MAX + 16];

	struct override **pp = find_override(reg, in->conf.id);

	snprintf(prefix, sizeof(prefix), "instance %s", in->conf.id);
	LOG_INFO(prefix, "removed (%s)", why);
	if (*pp != NULL) {
		LOG_INFO(prefix, "operator's %s dropped with the instance",
		    inst_admin_name((*pp)->admin));
		drop_override(reg, pp);
	}
	unlink_instance(reg, in);
	in->removed = 1;
	for (size_t i = 0; i < reg->nhooks; i++) {
		if (reg->hooks[i].removed != NULL)
			reg->hooks[i].removed(reg->hooks[i].arg, in);
	}
	inst_unref(in);
}

static int
add_instance(struct registry *reg, enum inst_source source, const struct inst_conf *ic)
{
	struct instance *in = calloc(1, sizeof(*in)), **tail;
	char prefix[PG_ID_MAX + 16];

	if (in == NULL || inst_conf_copy(&in->conf, ic) != 0) {
		free(in);
		return PG_ENOMEM;
	}
	in->source = source;
	in->src_admin = ic->admin;
	in->health = HEALTH_UNKNOWN;
	in->since_ms = pg_wall_ms();
	in->refs = 1;
	snprintf(in->reason, sizeof(in->reason), "not probed yet");
	settle_admin(reg, in);
	if (in->conf.admin != in->src_admin)
		snprintf(in->reason, sizeof(in->reason), "%s by an operator",
		    inst_admin_name(in->conf.admin));
	/* Sources in order of precedence, so /status reads in a stable order. */
	for (tail = &reg->head; *tail != NULL; tail = &(*tail)->next) {
		if (source_rank((*tail)->source) > source_rank(source))
			break;
	}
	in->next = *tail;
	*tail = in;
	snprintf(prefix, sizeof(prefix), "instance %s", in->conf.id);
	LOG_INFO(prefix, "added from %s: %s ssh %u, %s %u, admin state %s%s", inst_source_name(source),
	    ic->address, ic->ssh_port, ic->http_tls ? "https" : "http", ic->http_port,
	    inst_admin_name(in->conf.admin), in->conf.admin != ic->admin ? " (operator's)" : "");
	for (size_t i = 0; i < reg->nhooks; i++) {
		if (reg->hooks[i].added != NULL)
			reg->hooks[i].added(reg->hooks[i].arg, in);
	}
	return 0;
}

/* Replaces in's configuration with ic (same id). */
static int
update_instance(struct registry *reg, struct instance *in, enum inst_source source,
    const struct inst_conf *ic)
{
	enum inst_state before = inst_state(in);
	int endpoint = !inst_conf_same_endpoint(&in->conf, ic);
	struct inst_conf copy;
	char prefix[PG_ID_MAX + 16], why[96];

	if (inst_conf_copy(&copy, ic) != 0)
		return PG_ENOMEM;
	inst_conf_clear(&in->conf);
	in->conf = copy;
	in->src_admin = ic->admin;
	snprintf(prefix, sizeof(prefix), "instance %s", in->conf.id);
	if (in->source != source) {
		LOG_NOTICE(prefix, "now defined by the %s file, which wins over %s",
		    inst_source_name(source), inst_source_name(in->source));
		in->source = source;
	}
	settle_admin(reg, in);
	if (endpoint) {
		/* New address or ports: what we knew of the old endpoint's health says nothing. */
		LOG_INFO(prefix, "endpoint changed to %s ssh %u, %s %u; health reset", ic->address,
		    ic->ssh_port, ic->http_tls ? "https" : "http", ic->http_port);
		in->health = HEALTH_UNKNOWN;
		note_state(in, before, "endpoint changed");
	} else if (inst_state(in) != before) {
		snprintf(why, sizeof(why), "admin state %s from %s", inst_admin_name(in->conf.admin),
		    in->conf.admin != in->src_admin ? "an operator" : inst_source_name(source));
		note_state(in, before, why);
	}
	for (size_t i = 0; i < reg->nhooks; i++) {
		if (reg->hooks[i].changed != NULL)
			reg->hooks[i].changed(reg->hooks[i].arg, in, endpoint);
	}
	return 0;
}

/* Whether in's configuration is b's; the admin state compared is the source's, not the one in force. */
static int
conf_equal(const struct instance *in, const struct inst_conf *b)
{
	const struct inst_conf *a = &in->conf;

	if (!inst_conf_same_endpoint(a, b) || a->capacity != b->capacity ||
	    in->src_admin != b->admin || a->nlabels != b->nlabels)
		return 0;
	for (size_t i = 0; i < a->nlabels; i++) {
		if (strcmp(a->labels[i].key, b->labels[i].key) != 0 ||
		    strcmp(a->labels[i].value, b->labels[i].value) != 0)
			return 0;
	}
	return 1;
}

int
reg_apply(struct registry *reg, enum inst_source source, const struct inst_conf *list, size_t n)
{
	struct instance *in, *next;
	int r = 0;

	/* Removals first, so an id that moves between sources is never listed twice. */
	for (in = reg->head; in != NULL; in = next) {
		int keep = 0;
		next = in->next;
		if (in->source != source)
			continue;
		for (size_t i = 0; i < n && !keep; i++)
			keep = strcmp(list[i].id, in->conf.id) == 0;
		if (!keep)
			remove_instance(reg, in, source == INST_SRC_CONFIG ? "no longer in the config" :
			    "no longer in the discovery file");
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		in = reg_find(reg, list[i].id);
		if (in == NULL) {
			r = add_instance(reg, source, &list[i]);
		} else if (source_rank(in->source) < source_rank(source)) {
			char prefix[PG_ID_MAX + 16];
			snprintf(prefix, sizeof(prefix), "instance %s", list[i].id);
			LOG_WARN(prefix, "%s entry ignored: the id is defined by the %s, which wins",
			    inst_source_name(source), in->source == INST_SRC_CONFIG ? "config file" :
			    "admin API");
		} else if (in->source != source || !conf_equal(in, &list[i])) {
			r = update_instance(reg, in, source, &list[i]);
		}
	}
	return r;
}

static void
call_changed(struct registry *reg, struct instance *in)
{
	for (size_t i = 0; i < reg->nhooks; i++) {
		if (reg->hooks[i].changed != NULL)
			reg->hooks[i].changed(reg->hooks[i].arg, in, 0);
	}
}

int
reg_set_admin(struct registry *reg, const char *id, enum inst_admin admin, const char *why)
{
	struct instance *in = reg_find(reg, id);
	struct override **pp, *o;
	enum inst_state before;
	uint64_t gen = reg->overrides_gen;

	if (in == NULL)
		return PG_ENOTFOUND;
	before = inst_state(in);
	pp = find_override(reg, id);
	if (admin == in->src_admin) {
		if (*pp != NULL)
			drop_override(reg, pp);
	} else if ((o = *pp) != NULL) {
		if (o->admin != admin) {
			o->admin = admin;
			reg->overrides_gen++;
		}
	} else {
		if ((o = calloc(1, sizeof(*o))) == NULL)
			return PG_ENOMEM;
		snprintf(o->id, sizeof(o->id), "%s", id);
		o->admin = admin;
		o->base = in->src_admin;
		o->next = reg->overrides;
		reg->overrides = o;
		reg->overrides_gen++;
	}
	settle_admin(reg, in);
	note_state(in, before, why);
	if (gen != reg->overrides_gen || inst_state(in) != before)
		call_changed(reg, in);
	return 0;
}

int
reg_restore_override(struct registry *reg, const char *id, enum inst_admin admin,
    enum inst_admin base)
{
	struct override **pp, *o;
	struct instance *in;
	enum inst_state before;
	size_t n = strlen(id);

	if (n == 0 || n > PG_ID_MAX)
		return PG_EINVAL;
	pp = find_override(reg, id);
	if ((o = *pp) == NULL) {
		if ((o = calloc(1, sizeof(*o))) == NULL)
			return PG_ENOMEM;
		memcpy(o->id, id, n + 1);
		o->next = reg->overrides;
		reg->overrides = o;
	}
	o->admin = admin;
	o->base = base;
	reg->overrides_gen++;
	if ((in = reg_find(reg, id)) != NULL) {
		before = inst_state(in);
		settle_admin(reg, in);
		note_state(in, before, "operator's state restored");
		call_changed(reg, in);
	}
	return 0;
}

int
reg_get_override(const struct registry *reg, const char *id, enum inst_admin *admin)
{
	for (const struct override *o = reg->overrides; o != NULL; o = o->next) {
		if (strcmp(o->id, id) == 0) {
			if (admin != NULL)
				*admin = o->admin;
			return 1;
		}
	}
	return 0;
}

int
reg_foreach_override(const struct registry *reg, int (*fn)(void *arg, const char *id,
    enum inst_admin admin, enum inst_admin base), void *arg)
{
	int r;

	for (const struct override *o = reg->overrides; o != NULL; o = o->next) {
		if ((r = fn(arg, o->id, o->admin, o->base)) != 0)
			return r;
	}
	return 0;
}

uint64_t
reg_overrides_gen(const struct registry *reg)
{
	return reg->overrides_gen;
}

void
reg_free(struct registry *reg)
{
	struct instance *in, *next;

	if (reg == NULL)
		return;
	while (reg->overrides != NULL)
		drop_override(reg, &reg->overrides);
	for (in = reg->head; in != NULL; in = next) {
		next = in->next;
		in->removed = 1;
		in->next = NULL;
		inst_unref(in);
	}
	free(reg);
}
