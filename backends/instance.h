/*
 * The instance registry: every instance poolgate knows, where it came from (config file, discovery
 * file or the admin API), and its state.
 *
 * An instance's reported state combines two things kept apart: its health, which only probes change
 * (unknown, up, down), and its admin state, which only configuration and operators change
 * (active, draining, maint). inst_state() folds them: maint and draining win over health.
 *
 * Admin state has two layers. The source (config or discovery file, or the instance as the admin
 * API added it) says one (src_admin); an operator may override it through the admin API
 * (reg_set_admin). conf.admin is the one in force: the override when there is one, else src_admin.
 * An override lives in the registry by id and holds across reloads and discovery updates (so a
 * SIGHUP never undoes an operator's drain) until the first of:
 *   - an operator sets the state again (setting what the source says drops the override);
 *   - the source changes that instance's own admin_state: the override remembers the source's
 *     value when it was made (base), and a different one now is a newer decision, which wins;
 *   - the instance leaves the registry (a later instance with the same id starts afresh).
 * backends/adminstate.c keeps the overrides in state_dir, so a restart keeps them too; an override
 * restored for an id not listed yet (discovery is read after start) waits for that id.
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
/* Sources in order of precedence for one id: config, then admin API, then discovery. */
enum inst_source { INST_SRC_CONFIG, INST_SRC_DISCOVERY, INST_SRC_API };

#define INST_REASON_MAX 192

struct instance {
	struct inst_conf conf;		/* owned copy; conf.id never changes; conf.admin in force */
	enum inst_admin src_admin;	/* the admin state its source gives */
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
#define REG_MAX_HOOKS 8
int reg_add_hooks(struct registry *reg, const struct reg_hooks *hooks);
void reg_remove_hooks(struct registry *reg, void *arg);

/*
 * Makes the instances from source exactly list[0..n): adds new ids, updates changed ones, removes
 * ids of that source no longer listed. An id owned by another source goes to the one that comes
 * first in config, admin API, discovery: an entry from a later source is refused and logged, an
 * entry from an earlier one takes the id over. Returns 0 or PG_ENOMEM (then the registry is
 * partially updated but consistent).
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

/*
 * Overrides (see the top of this file). reg_set_admin puts admin in force for the listed instance
 * id, or drops its override when admin is what the source says; logs a state change with why,
 * and calls the changed hooks (endpoint 0) when the state in force or the override changed.
 * Returns 0, PG_ENOTFOUND (no such instance) or PG_ENOMEM.
 */
int reg_set_admin(struct registry *reg, const char *id, enum inst_admin admin, const char *why);
/*
 * Restores an override read back at start; id need not be listed (yet). Applied at once to a
 * listed instance (and dropped if its source now says something else than base). Returns 0,
 * PG_EINVAL (id not a valid instance id) or PG_ENOMEM.
 */
int reg_restore_override(struct registry *reg, const char *id, enum inst_admin admin,
    enum inst_admin base);
/* Returns 1 and sets *admin (may be NULL) when id has an override, else 0. */
int reg_get_override(const struct registry *reg, const char *id, enum inst_admin *admin);
/*
 * Calls fn for each override (most recent first) until fn returns non-zero, which is returned;
 * else 0.
 */
int reg_foreach_override(const struct registry *reg, int (*fn)(void *arg, const char *id,
    enum inst_admin admin, enum inst_admin base), void *arg);
/* Changes whenever the set of overrides changes (for whoever keeps them on disk). */
uint64_t reg_overrides_gen(const struct registry *reg);

#endif
