/*
 * Fuzz target: OpenSSH certificate blobs as users present them (certs/usercert.c). A blob must
 * parse and verify, or be refused with a documented code; what parses is then judged by
 * usercert_check(), which may only accept or refuse.
 */
#include "certs/usercert.h"
#include "core/err.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usercert *c = NULL;
	const char *why;
	int r = usercert_parse((struct pg_slice){ data, size }, &c);

	if (r != 0) {
		if ((r != PG_EPARSE && r != PG_EPROTO && r != PG_ENOMEM) || c != NULL)
			__builtin_trap();
		return 0;
	}
	r = usercert_check(c, "alice", 1700000000, &why);
	if (r != 0 && r != PG_EAUTH)
		__builtin_trap();
	usercert_free(c);
	return 0;
}
