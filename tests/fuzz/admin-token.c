/*
 * Fuzz target: the admin token's two parsers, the token file's contents and the Authorization
 * header's value. A token either parser returns lies inside the input, has the b64token alphabet,
 * and the digest compare agrees with plain equality.
 */
#include "core/token.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(struct pg_slice t, const uint8_t *data, size_t size)
{
	uint8_t d[PG_TOKEN_DIGEST_LEN];

	if (t.p < data || t.p + t.len > data + size || t.len == 0 || t.len > PG_TOKEN_MAX)
		__builtin_trap();
	for (size_t i = 0; i < t.len; i++) {
		if (strchr("-._~+/=", t.p[i]) == NULL && !(t.p[i] >= '0' && t.p[i] <= '9') &&
		    !(t.p[i] >= 'a' && t.p[i] <= 'z') && !(t.p[i] >= 'A' && t.p[i] <= 'Z'))
			__builtin_trap();
	}
	if (pg_token_digest(t, d) != 0 || !pg_token_matches(d, t))
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pg_slice file, auth;
	const char *why = NULL;
	int rf = pg_token_parse_file((const char *)data, size, &file, &why);
	int ra = pg_token_parse_authorization((const char *)data, size, &auth);

	if (rf == 0) {
		check(file, data, size);
		if (file.len < PG_TOKEN_MIN)
			__builtin_trap();
	} else if (why == NULL) {
		__builtin_trap();
	}
	if (ra == 0)
		check(auth, data, size);
	return 0;
}
