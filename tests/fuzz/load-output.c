/*
 * Fuzz target: the load probe's output parser (health/loadparse.h). Besides not crashing, what it
 * accepts must be sane figures (the placement score divides by ncpu and MemTotal), the score of
 * any accepted output must be a finite number, and a refusal must leave the output untouched and
 * explain itself.
 */
#include "backends/score.h"
#include "health/loadparse.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct load_figures f, sentinel;
	struct inst_load l;
	struct placement_weights w = PG_PLACEMENT_WEIGHTS_DEFAULT;
	char why[128];
	double s;

	memset(&sentinel, 0xa5, sizeof(sentinel));
	f = sentinel;
	if (loadparse((struct pg_slice){ data, size }, &f, why, sizeof(why)) != 0) {
		if (memcmp(&f, &sentinel, sizeof(f)) != 0 || why[0] == '\0' ||
		    memchr(why, '\0', sizeof(why)) == NULL)
			__builtin_trap();
		return 0;
	}
	if (f.ncpu < 1 || f.mem_total_kb == 0 || f.mem_avail_kb > f.mem_total_kb ||
	    f.ngpu > LOADPARSE_MAX_GPUS || !(f.load1 >= 0 && f.load1 <= 1e6) ||
	    !(f.load5 >= 0 && f.load15 >= 0) || !(f.gpu_util >= 0 && f.gpu_util <= 1) ||
	    !(f.gpu_mem_used >= 0 && f.gpu_mem_used <= 1))
		__builtin_trap();
	memset(&l, 0, sizeof(l));
	l.state = LOAD_KNOWN;
	l.fig = f;
	l.valid_until_ms = 1;
	s = score_compute(&w, 3, 8, &l, 0);
	if (!isfinite(s) || s < 0)
		__builtin_trap();
	return 0;
}
