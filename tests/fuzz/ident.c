/*
 * Fuzz target: the SSH identification-line scanner. Besides not crashing, it must give the same
 * answer whether the bytes arrive at once or one at a time, and a found ident must lie in the input.
 */
#include "health/ident.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pg_slice whole, part;
	int r = ssh_ident_scan(data, size, &whole), rp = 0;
	size_t i;

	if (r == 1 && (whole.p < data || whole.p + whole.len > data + size))
		__builtin_trap();
	/* Growing prefixes: the first decisive answer must equal the whole-input answer. */
	for (i = 1; i <= size; i++) {
		if ((rp = ssh_ident_scan(data, i, &part)) != 0)
			break;
	}
	if (i <= size && (rp != r || (r == 1 && (part.p != whole.p || part.len != whole.len))))
		__builtin_trap();
	return 0;
}
