#include "core/jitter.h"
#include "core/clock.h"

#include <sys/random.h>

void
pg_jitter_seed(uint64_t *state)
{
	if (getrandom(state, sizeof(*state), 0) != sizeof(*state) || *state == 0)
		*state = pg_mono_ns() | 1;
}

uint64_t
pg_jitter_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

uint64_t
pg_jitter(uint64_t *state, uint64_t interval_ms, uint32_t pct)
{
	uint64_t span = interval_ms * pct / 100;

	if (span == 0)
		return interval_ms;
	return interval_ms - span + pg_jitter_rand(state) % (2 * span + 1);
}
