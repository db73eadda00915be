/*
 * Fuzz target: the admin state file (state_dir/admin.json) parser, then the registry restoring
 * its overrides and applying its instances as the admin API's.
 */
#include "backends/instance.h"
#include "core/config.h"
#include "core/log.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct admin_override *ov = NULL;
	struct inst_conf *list = NULL;
	size_t nov = 0, n = 0;
	struct registry *reg;
	char err[512];

	pg_log_setup(PG_LOG_ERR, PG_LOG_TEXT);
	if (pg_admin_state_parse((const char *)data, size, &ov, &nov, &list, &n, err,
	    sizeof(err)) != 0) {
		if (err[0] == '\0')
			__builtin_trap();
		return 0;
	}
	if ((reg = reg_new()) != NULL) {
		for (size_t i = 0; i < nov; i++) {
			if (strlen(ov[i].id) == 0 || strlen(ov[i].id) > PG_ID_MAX ||
			    reg_restore_override(reg, ov[i].id, ov[i].admin, ov[i].base) != 0)
				__builtin_trap();
		}
		reg_apply(reg, INST_SRC_API, list, n);
		for (struct instance *in = reg_first(reg); in != NULL; in = in->next) {
			enum inst_admin a;
			/* In force: the override if one survived, else the instance's own. */
			if (in->conf.admin != (reg_get_override(reg, in->conf.id, &a) ? a : in->src_admin))
				__builtin_trap();
		}
		reg_apply(reg, INST_SRC_API, NULL, 0);
		reg_free(reg);
	}
	pg_admin_overrides_free(ov, nov);
	inst_conf_free_array(list, n);
	return 0;
}
