/* Fuzz target: the discovery file parser, then the registry applying what it returned. */
#include "backends/instance.h"
#include "core/config.h"
#include "core/log.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inst_conf *list = NULL;
	struct registry *reg;
	size_t n = 0;
	char err[512];

	pg_log_setup(PG_LOG_ERR, PG_LOG_TEXT);
	if (pg_discovery_parse((const char *)data, size, &list, &n, err, sizeof(err)) != 0)
		return 0;
	if ((reg = reg_new()) != NULL) {
		/* Apply twice and then nothing: add, no-op update, remove all. */
		reg_apply(reg, INST_SRC_DISCOVERY, list, n);
		reg_apply(reg, INST_SRC_DISCOVERY, list, n);
		reg_apply(reg, INST_SRC_DISCOVERY, NULL, 0);
		if (reg_count(reg) != 0)
			__builtin_trap();
		reg_free(reg);
	}
	inst_conf_free_array(list, n);
	return 0;
}
