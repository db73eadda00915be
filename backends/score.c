#include "backends/score.h"

static const char *const reason_names[PLACE_NREASONS] = { "kept", "new", "moved", "anonymous",
	"wait", "pool_full", "no_instance", "error" };

const char *
place_reason_name(enum place_reason r)
{
	return (unsigned)r < PLACE_NREASONS ? reason_names[r] : "?";
}

double
score_compute(const struct placement_weights *w, size_t users, uint32_t capacity,
    const struct inst_load *l, int64_t now_ms)
{
	double num, den;

	num = w->users * ((double)users + 1) / (double)(capacity ? capacity : 1);
	den = w->users;
	if (l != NULL && load_usable(l, now_ms)) {
		/* The parser guarantees ncpu >= 1 and finite, non-negative figures. */
		num += w->cpu * l->fig.load1 / (double)l->fig.ncpu;
		num += w->memory * load_mem_used(&l->fig);
		den += w->cpu + w->memory;
		if (l->fig.ngpu > 0) {
			num += w->gpu * load_gpu(&l->fig);
			den += w->gpu;
		}
	}
	return den > 0 ? num / den : 0;
}
