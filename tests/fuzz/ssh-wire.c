/*
 * Fuzz target: the SSH wire readers. Each input byte picks the next reader; every slice returned
 * must lie inside the input, a failing reader must consume nothing, and what mpint and name-list
 * readers accept must write back to the same bytes.
 */
#include "core/err.h"
#include "core/sshwire.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
inside(struct pg_slice v, const uint8_t *data, size_t size)
{
	if (v.len > 0 && (v.p < data || v.p + v.len > data + size))
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pg_slice s = { data, size }, v, before, n;
	struct pg_buf b;
	uint8_t op, u8;
	uint32_t u32;
	uint64_t u64;
	BIGNUM *bn;
	int r, bl;

	pg_buf_init(&b, 1 << 16);
	while (ssh_get_u8(&s, &op) == 0) {
		before = s;
		switch (op % 8) {
		case 0: r = ssh_get_u8(&s, &u8); break;
		case 1: r = ssh_get_bool(&s, &bl); break;
		case 2: r = ssh_get_u32(&s, &u32); break;
		case 3: r = ssh_get_u64(&s, &u64); break;
		case 4:
			if ((r = ssh_get_string(&s, &v)) == 0)
				inside(v, data, size);
			break;
		case 5:
			if ((r = ssh_get_namelist(&s, &v)) == 0) {
				inside(v, data, size);
				/* Walking it covers every byte but the commas. */
				size_t total = 0, count = 0;
				struct pg_slice l = v;
				while (ssh_namelist_next(&l, &n)) {
					if (n.len == 0)
						__builtin_trap();
					total += n.len;
					count++;
				}
				if (count > 0 && total + count - 1 != v.len)
					__builtin_trap();
			}
			break;
		case 6:
			if ((r = ssh_get_mpint(&s, &v)) == 0) {
				inside(v, data, size);
				pg_buf_reset(&b);
				if (ssh_put_mpint(&b, v.p, v.len) != 0 ||
				    b.len != (size_t)(s.p - before.p) ||
				    memcmp(b.p, before.p, b.len) != 0)
					__builtin_trap();
			}
			break;
		default:
			if ((r = ssh_get_mpint_bn(&s, &bn)) == 0) {
				pg_buf_reset(&b);
				if (ssh_put_mpint_bn(&b, bn) != 0 || b.len != (size_t)(s.p - before.p) ||
				    memcmp(b.p, before.p, b.len) != 0)
					__builtin_trap();
				BN_free(bn);
			}
			break;
		}
		if (r != 0 && (s.p != before.p || s.len != before.len))
			__builtin_trap();
		if (r != 0 && r != PG_EPARSE && r != PG_ENOMEM)
			__builtin_trap();
		if (r != 0)
			break;
	}
	pg_buf_free(&b);
	return 0;
}
