/*
 * The instance registry: every instance poolgate knows, where it came from (config file or
 * discovery file; later the admin API), and its state.
 *
 * An instance's reported state combines two things kept apart: its health, which only probes change
 * (unknown, up, down), and its admin state, which only configuration and operators change
 * (active, draining, maint). inst_state() folds them: maint and draining win over health.
 *
 * Lifetime: the registry holds one reference to each instance it lists. Anything that keeps a pointer
 * across loop iterations (a probe, later a connection) takes its own with inst_ref() and drops it with
 * inst_unref(); the memory goes with the last reference. A removed instance has removed=1 and is no
 * longer listed, but stays valid for those still holding it.
 */
#ifndef PG_BACKENDS_INSTANCE_H
#define PG_BACKENDS_INSTANCE_H

#include <stddef.h>
#include <stdint.h>

#include "backends/load.h"
#include "core/config.h"

enum inst_health { HEALTH_UNKNOWN, HEALTH_UP, HEALTH_DOWN };
enum inst_state { INST_S_UNKNOWN, INST_S_UP, INST_S_DOWN, INST_S_DRAINING, INST_S_MAINT };
enum inst_source { INST_SRC_CONFIG, INST_SRC_DISCOVERY };

#define INST_REASON_MAX 192

struct instance {
	struct inst_conf conf;		/* owned copy; conf.id never changes */
	enum inst_source source;
	enum inst_health health;
	int64_t since_ms;		/* wall clock of the last change of inst_state() */
	char reason[INST_REASON_MAX];	/* why it is in that state */
	uint64_t transitions;		/* changes of inst_state() since it was added */
	int removed;
	void *probe;			/* owned by health/; opaque here */
	void *probe_load;		/* owned by health/loadprobe; opaque here */
	struct inst_load load;		/* written by the load probe (backends/load.h) */

	/* Registry internals. */
	int refs;
	struct instance *next;
};

/* Observers of the instance set, called synchronously from reg_apply(). */
struct reg_hooks {
	void (*added)(void *arg, struct instance *in);
	/* The configuration changed; endpoint=1 when address, ports or TLS settings changed. */
	void (*changed)(void *arg, struct instance *in, int endpoint);
	void (*removed)(void *arg, struct instance *in);
	void *arg;
};

struct registry;

/* Returns a new empty registry or NULL. Free with reg_free() (drops its references). */
struct registry *reg_new(void);
void reg_free(struct registry *reg);
/*
 * Observers: up to REG_MAX_HOOKS sets of hooks, called in the order added. reg_add_hooks returns 0
 * or PG_ERANGE; reg_remove_hooks removes the set whose arg is arg.
 */
#define REG_MAX_HOOKS 4
int reg_add_hooks(struct registry *reg, const struct reg_hooks *hooks);
void reg_remove_hooks(struct registry *reg, void *arg);

/*
 * Makes the instances from source exactly list[0..n): adds new ids, updates changed ones, removes
 * ids of that source no longer listed. Ids owned by the other source: the config file wins (a
 * discovery entry with a config id is refused and logged; a config entry takes over a discovery id).
 * Returns 0 or PG_ENOMEM (then the registry is partially updated but consistent).
 */
int reg_apply(struct registry *reg, enum inst_source source, const struct inst_conf *list, size_t n);

struct instance *reg_first(struct registry *reg);	/* iteration: in->next */
struct instance *reg_find(struct registry *reg, const char *id);
size_t reg_count(struct registry *reg);
/* Instances whose inst_state() is INST_S_UP. */
size_t reg_count_up(struct registry *reg);
/*
 * Placement's weights and decision counters for the instances of reg (backends/score.h); they
 * live here because place_user() is given the registry. The registry owns the struct; its weights
 * start as the config defaults.
 */
struct place_ctl *reg_placement(struct registry *reg);

void inst_ref(struct instance *in);
void inst_unref(struct instance *in);

enum inst_state inst_state(const struct instance *in);
const char *inst_state_name(enum inst_state s);
const char *inst_health_name(enum inst_health h);
const char *inst_source_name(enum inst_source s);

/* Sets the health from a probe verdict; logs the state change at info with the reason. */
void inst_set_health(struct instance *in, enum inst_health h, const char *reason);

#endif
