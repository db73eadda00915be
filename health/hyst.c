#include "health/hyst.h"

enum inst_health
hyst_feed(struct hyst *h, enum inst_health cur, int ok, uint32_t rise, uint32_t fall)
{
	if (ok) {
		h->fail_run = 0;
		if (h->ok_run < UINT32_MAX)
			h->ok_run++;
	} else {
		h->ok_run = 0;
		if (h->fail_run < UINT32_MAX)
			h->fail_run++;
	}
	switch (cur) {
	case HEALTH_UNKNOWN:
		return ok ? HEALTH_UP : HEALTH_DOWN;
	case HEALTH_UP:
		return h->fail_run >= fall ? HEALTH_DOWN : HEALTH_UP;
	case HEALTH_DOWN:
		return h->ok_run >= rise ? HEALTH_UP : HEALTH_DOWN;
	}
	return cur;
}
