/*
 * Fuzz target: authorized_keys and known_hosts text. The input is looked up for a fixed key (and
 * host) by both parsers; each may only find it, not find it, or refuse with a documented code.
 */
#include "certs/authkeys.h"
#include "certs/knownhosts.h"
#include "core/err.h"
#include "core/log.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sshkey *key;
	struct pg_slice text = { data, size };
	int r;

	pg_log_min_level = PG_LOG_ERR;	/* every refused line logs a notice */
	if (key == NULL && sshkey_generate_ed25519(&key) != 0)
		return 0;
	r = authkeys_match(text, key, "fuzz", NULL);
	if (r != 0 && r != 1)
		__builtin_trap();
	r = knownhosts_check(text, "127.0.0.2", 2022, key);
	if (r != 0 && r != PG_ENOTFOUND && r != PG_EAUTH)
		__builtin_trap();
	return 0;
}
