/* Fuzz target: the config parser (any bytes in, an error or a config out, never a crash). */
#include "core/config.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pg_config *cfg = NULL;
	char err[512];

	if (pg_config_parse((const char *)data, size, &cfg, err, sizeof(err)) == 0)
		pg_config_free(cfg);
	else if (memchr(err, '\0', sizeof(err)) == NULL)
		__builtin_trap();	/* an error message must always be terminated */
	return 0;
}
