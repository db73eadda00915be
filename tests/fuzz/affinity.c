/*
 * Fuzz target: the affinity cookie. The input is one Cookie header value; every poolgate_affinity
 * cookie in it is verified with a fixed secret at a fixed time, as is the whole input taken as a
 * value. Besides not crashing: found values must lie inside the input, and verify must accept nothing
 * but what affinity_mint() writes, byte for byte. Without the secret the fuzzer can only get there
 * from the valid cookies in the seed corpus, which were minted with this secret:
 *
 *   python3 -c 'import hmac,hashlib,base64; s=b"v1.demo-1.4102444800"; print(s.decode()+"."+
 *     base64.urlsafe_b64encode(hmac.new(b"poolgate fuzz secret, not real!!",s,hashlib.sha256)
 *     .digest()).rstrip(b"=").decode())'
 */
#include "core/err.h"
#include "proxy/http/affinity.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW 1700000000	/* seeds expire at 4102444800 (2100) or 1600000000 (already) */

static const uint8_t fuzz_secret[AFFINITY_SECRET_LEN] = "poolgate fuzz secret, not real!!";

static void
check(const struct affinity_key *k, struct pg_slice v)
{
	char id[PG_ID_MAX + 1], again[AFFINITY_VALUE_MAX + 1];
	const uint8_t *last, *prev;
	int64_t expiry = 0;

	if (affinity_verify(k, v, FUZZ_NOW, id) != 0)
		return;
	/* Accepted, hence authentic: the expiry sits between the two last dots. */
	for (last = v.p + v.len - 1; *last != '.'; last--)
		;
	for (prev = last - 1; *prev != '.'; prev--)
		;
	for (const uint8_t *d = prev + 1; d < last; d++)
		expiry = expiry * 10 + (*d - '0');
	if (expiry <= FUZZ_NOW || affinity_mint(k, id, expiry, again) != 0 ||
	    strlen(again) != v.len || memcmp(again, v.p, v.len) != 0)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct affinity_key *k;
	struct pg_slice h = { data, size }, v;

	if (k == NULL && affinity_key_new(fuzz_secret, sizeof(fuzz_secret), &k) != 0)
		__builtin_trap();
	check(k, h);
	while (affinity_cookie_next(&h, AFFINITY_COOKIE_NAME, &v) == 1) {
		if (v.p < data || v.p + v.len > data + size || h.p < data || h.p + h.len != data + size)
			__builtin_trap();
		check(k, v);
	}
	if (h.len != 0)
		__builtin_trap();
	return 0;
}
