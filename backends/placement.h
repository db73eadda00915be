/*
 * Placement: which instance a user goes to.
 *
 * A user with a pin keeps it while the pinned instance is serving: health up and not in maint.
 * A draining instance takes no new pins; it keeps serving the users pinned there while they have a
 * live session (backends/pins.h: an SSH connection, a websocket). A user pinned to a draining
 * instance who has none left is pinned elsewhere at her next placement (logged as "draining, no
 * live session"), unless no other instance can take her: then she stays. A user pinned to an
 * instance in maint is pinned elsewhere at her next connection; maint takes no traffic at all.
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
 * Where place_user() would send user now, without recording or touching anything: for logins
 * the instance itself decides (password, keyboard-interactive), where the user must reach an
 * instance before anyone knows the name is real. The caller records the pin (place_user() or
 * pins_set()) only once the login succeeded, so unauthenticated names never make pins. NULL as
 * place_user() (place_verdict() says why). Borrowed like place_user()'s result.
 */
struct instance *place_peek(struct registry *reg, struct pin_table *pins, const char *user,
    int64_t now_ms);

/*
 * The instance user's existing pin would send her to now, changing nothing (no activity, no new
 * pin, no log): NULL when place_user() would not simply keep the pin (no pin, a pin that would
 * move, or health unknown). For work started before the user has proved who she is. Borrowed as
 * above.
 */
struct instance *place_pinned(struct registry *reg, const struct pin_table *pins,
    const char *user);

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

/*
 * Records user's first pin on in, where place_peek() sent her, once her login there was accepted
 * (by the instance's sshd or JupyterHub; why says which, for the log line). Does nothing when she
 * has a pin by now. Counted as a new placement. Returns 0 or pins_set()'s error.
 */
int place_record(struct registry *reg, struct pin_table *pins, const char *user,
    const struct instance *in, int64_t now_ms, const char *why);

#endif
