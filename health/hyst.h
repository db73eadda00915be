/*
 * rise/fall hysteresis: the pure state machine behind health probes, kept apart so unit tests can
 * drive it round by round.
 *
 * From HEALTH_UNKNOWN the first round decides (nothing is known yet, so there is nothing to flap
 * from). From UP, `fall` consecutive failed rounds make it DOWN; from DOWN, `rise` consecutive good
 * rounds make it UP. A round of the other kind resets the run.
 */
#ifndef PG_HEALTH_HYST_H
#define PG_HEALTH_HYST_H

#include <stdint.h>

#include "backends/instance.h"

struct hyst {
	uint32_t ok_run, fail_run;	/* consecutive rounds of each kind, the current run only */
};

/* Feeds one round's verdict; returns the health to be in now (== cur when nothing changes). */
enum inst_health hyst_feed(struct hyst *h, enum inst_health cur, int ok, uint32_t rise,
    uint32_t fall);

#endif
