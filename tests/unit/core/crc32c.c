/*
 * core/crc32c.c: CRC-32C against the check value of the catalogue of parametrised CRCs and the
 * iSCSI test patterns of RFC 3720 B.4, and in pieces equal to in one go.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/crc32c.h"

static void
test_vectors(void **state)
{
	uint8_t b[32];

	assert_int_equal(pg_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(pg_crc32c(0, NULL, 0), 0);
	memset(b, 0, sizeof(b));
	assert_int_equal(pg_crc32c(0, b, 32), 0x8A9136AAu);
	memset(b, 0xff, sizeof(b));
	assert_int_equal(pg_crc32c(0, b, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	assert_int_equal(pg_crc32c(0, b, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	assert_int_equal(pg_crc32c(0, b, 32), 0x113FDB5Cu);
}

static void
test_pieces(void **state)
{
	const char *s = "poolgate pins journal";
	size_t n = strlen(s);

	for (size_t cut = 0; cut <= n; cut++)
		assert_int_equal(pg_crc32c(pg_crc32c(0, s, cut), s + cut, n - cut), pg_crc32c(0, s, n));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_pieces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
