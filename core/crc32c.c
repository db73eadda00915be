#include "core/crc32c.h"

#include <pthread.h>

/*
 * A byte-at-a-time table. Records are small and written in batches, so a faster slicing variant
 * or the SSE4.2 instruction would not show; this one runs everywhere. The table is built once,
 * under pthread_once because the file store's worker threads may be first.
 */
static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void
build_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		table[i] = c;
	}
}

uint32_t
pg_crc32c(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	pthread_once(&table_once, build_table);
	crc = ~crc;
	for (size_t i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}
