/*
 * Randomised timer intervals, so a pool's instances are not all probed in the same instant.
 * A xorshift64 state per user; nothing here is fit for anything secret.
 */
#ifndef PG_CORE_JITTER_H
#define PG_CORE_JITTER_H

#include <stdint.h>

/* Seeds *state from getrandom(), else from the monotonic clock; never 0. */
void pg_jitter_seed(uint64_t *state);

/* The next pseudo-random number of *state. */
uint64_t pg_jitter_rand(uint64_t *state);

/* interval_ms randomised by up to pct percent either way, uniformly (interval_ms when pct is 0). */
uint64_t pg_jitter(uint64_t *state, uint64_t interval_ms, uint32_t pct);

#endif
