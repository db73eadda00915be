/*
 * core/siphash.c: SipHash-2-4 against the paper's test vector and against OpenSSL's SIPHASH (an
 * independent implementation) for every length that exercises the tail handling.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/siphash.h"

static void
test_paper_vector(void **state)
{
	uint8_t key[16], msg[15];

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	/* SipHash paper, appendix A. */
	assert_int_equal(pg_siphash(key, msg, 15), 0xa129ca6149be45e5ULL);
	assert_int_equal(pg_siphash(key, NULL, 0), 0x726fdb47dd0e0e31ULL);
}

static uint64_t
openssl_siphash(const uint8_t key[16], const uint8_t *msg, size_t len)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
	size_t size = 8, outl = 0;
	OSSL_PARAM params[] = { OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_construct_end() };
	uint8_t out[8];
	uint64_t v = 0;

	assert_non_null(ctx);
	assert_int_equal(EVP_MAC_init(ctx, key, 16, params), 1);
	assert_int_equal(EVP_MAC_update(ctx, msg, len), 1);
	assert_int_equal(EVP_MAC_final(ctx, out, &outl, sizeof(out)), 1);
	assert_int_equal(outl, 8);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	for (int i = 7; i >= 0; i--)
		v = v << 8 | out[i];
	return v;
}

static void
test_against_openssl(void **state)
{
	uint8_t key[16], msg[80];

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)(0xf0 ^ (i * 7));
	for (int i = 0; i < 80; i++)
		msg[i] = (uint8_t)(i * 31 + 5);
	for (size_t len = 0; len <= sizeof(msg); len++)
		assert_int_equal(pg_siphash(key, msg, len), openssl_siphash(key, msg, len));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paper_vector),
		cmocka_unit_test(test_against_openssl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
