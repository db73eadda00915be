/*
 * Placement: which instance a user goes to.
 *
 * A user with a pin keeps it while the pinned instance is serving: health up and not in maint.
 * Draining counts as serving for users already pinned there (draining only stops new pins).
 * A pinned instance whose health is still unknown (not probed yet since start or since its endpoint
 * changed) keeps the pin too, but cannot serve yet: place_user() returns NULL and the caller retries.
 * Otherwise (no pin, or the pinned instance is down, in maint or gone from the registry) the user
 * gets a new pin on the instance that is up and active (inst_state() == INST_S_UP), below its
 * capacity, with the lowest placement score:
 *
 *   score = (w_users * (users + 1) / capacity + w_cpu * load1 / ncpu + w_memory * mem_used
 *            + w_gpu * gpu) / (sum of the weights of the terms present)
 *
 * where the cpu, memory and gpu terms are present only while the instance's load probe reports
 * (backends/score.h has the details; an instance whose load is unknown is scored on its users
 * alone). Weights come from placement.weights (reg_placement()). Equal scores go to the lowest
 * SipHash of (user, NUL, instance id) under a fixed key: deterministic across restarts and
 * replicas, and spread over the tied instances by user.
 *
 * Every decision is counted by reason in reg_placement(reg)->decisions; a refusal for a full pool
 * or for no instance at all is logged at notice.
 */
#ifndef PG_BACKENDS_PLACEMENT_H
#define PG_BACKENDS_PLACEMENT_H

#include <stdint.h>

#include "backends/instance.h"
#include "backends/pins.h"
#include "backends/score.h"

/*
 * Returns the instance user goes to, recording the pin (and its activity at now_ms) in pins, or NULL
 * when no instance can take the user now (pinned instance not probed yet, none serving, pool full, or
 * out of memory); an existing pin is then left as it is, so the user returns to that instance when
 * it recovers. Sets *moved (when moved
 * is not NULL) to 1 if the user had a pin to another instance that changed, else 0, and logs the move
 * at info ("user alice: pinned to demo-2 (was demo-1: down)").
 *
 * The instance is borrowed from reg: take inst_ref() to keep it past the next registry change.
 */
struct instance *place_user(struct registry *reg, struct pin_table *pins, const char *user,
    int64_t now_ms, int *moved);

/*
 * What place_user() would decide for user at now_ms, changing and counting nothing. After
 * place_user() returned NULL it says why: PLACE_WAIT, PLACE_FULL (tell the user the pool is full),
 * PLACE_NONE or, when the pin could not be recorded, PLACE_NEW / PLACE_MOVED.
 */
enum place_reason place_verdict(struct registry *reg, const struct pin_table *pins,
    const char *user, int64_t now_ms);

/*
 * For a browser with neither user nor affinity cookie: the instance a new user would get, by the
 * same score, ties by instance id alone. Makes no pin. NULL when the pool is full or no instance
 * is up (place_verdict(reg, pins, "", now_ms) says which). Borrowed like place_user()'s result.
 */
struct instance *place_anonymous(struct registry *reg, const struct pin_table *pins,
    int64_t now_ms);

#endif
