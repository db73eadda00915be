#include "core/clock.h"

#include <stdio.h>
#include <time.h>

int64_t
pg_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
pg_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

char *
pg_time_format(int64_t wall_ms, char *buf)
{
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&secs, &tm);
	n = strftime(buf, PG_TIMESTR, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, PG_TIMESTR - n, ".%03dZ", (int)(wall_ms % 1000));
	return buf;
}
