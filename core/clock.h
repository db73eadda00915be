/* Wall-clock and monotonic time in milliseconds, and RFC 3339 formatting. */
#ifndef PG_CORE_CLOCK_H
#define PG_CORE_CLOCK_H

#include <stdint.h>

#define PG_TIMESTR 32

int64_t pg_wall_ms(void);	/* milliseconds since the epoch */
uint64_t pg_mono_ns(void);	/* monotonic nanoseconds; only differences mean anything */

/* Formats epoch milliseconds as "2026-11-27T01:29:10.123Z" into buf (PG_TIMESTR bytes). */
char *pg_time_format(int64_t wall_ms, char *buf);

#endif
