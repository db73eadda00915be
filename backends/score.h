/*
 * The placement score: how loaded an instance would be with one more user, lower is better
 * (DESIGN.md, backends/: placement). backends/placement.c gives a new user the instance with the
 * lowest score among those up, active and under capacity; docs/placement.md explains it to
 * operators.
 *
 * The score is the weighted mean of the terms an instance has:
 *
 *             w_users * U  +  w_cpu * C  +  w_memory * M  +  w_gpu * G
 *   score  =  ------------------------------------------------------------
 *             w_users      +  w_cpu      +  w_memory      +  w_gpu
 *
 *   U = (pinned users + 1) / capacity     always present
 *   C = load1 / ncpu                      the 1-minute load average per CPU
 *   M = 1 - MemAvailable / MemTotal       memory in use
 *   G = max(mean GPU utilisation, mean GPU memory in use)
 *
 * C and M (and G) are present only while the instance's load is usable (load_usable(): the last
 * load probe round succeeded and is recent); G only when the instance reported GPUs. A term that
 * is absent is left out of both sums, so an instance whose load is unknown is scored on U alone:
 * the scores stay comparable (both are fractions of "full"), and a broken load probe neither
 * attracts users nor repels them. U counts the user being placed ("+ 1"), so with unequal
 * capacities a user goes where they take the smaller share: 0 of 8 beats 0 of 1.
 *
 * Ties (equal scores) are broken by placement with a hash of (user, instance).
 */
#ifndef PG_BACKENDS_SCORE_H
#define PG_BACKENDS_SCORE_H

#include <stddef.h>
#include <stdint.h>

#include "backends/load.h"
#include "core/config.h"

/*
 * The score of an instance of capacity (>= 1) with users pinned and load l, at now_ms, under
 * weights w. l may be NULL (no load known). Never negative; 0 when every present weight is 0.
 */
double score_compute(const struct placement_weights *w, size_t users, uint32_t capacity,
    const struct inst_load *l, int64_t now_ms);

/* What placement decided, counted in poolgate_placement_decisions_total{reason}. */
enum place_reason {
	PLACE_KEPT,		/* the user's pin holds */
	PLACE_NEW,		/* a user without a pin was pinned */
	PLACE_MOVED,		/* a pin moved: its instance was down, in maint or gone */
	PLACE_ANONYMOUS,	/* a browser with no user and no cookie was sent somewhere */
	PLACE_WAIT,		/* the pinned instance has not been probed yet: try again soon */
	PLACE_FULL,		/* every up and active instance is at capacity */
	PLACE_NONE,		/* no instance is up and active */
	PLACE_ERROR,		/* out of memory recording the pin */
	PLACE_NREASONS
};

/* "kept", "new", "moved", "anonymous", "wait", "pool_full", "no_instance", "error". */
const char *place_reason_name(enum place_reason r);

/* Placement's settings and counters; one per registry (reg_placement()). */
struct place_ctl {
	struct placement_weights weights;
	uint64_t decisions[PLACE_NREASONS];
};

#endif
