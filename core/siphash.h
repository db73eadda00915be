/*
 * SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash for hash tables whose keys come
 * from peers (usernames), so that nobody can choose keys that all land in one bucket without knowing
 * the key. It is the hash redis, Python and Rust use for the same reason. Not a MAC: poolgate's
 * integrity checks use HMAC-SHA256 through OpenSSL.
 */
#ifndef PG_CORE_SIPHASH_H
#define PG_CORE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define PG_SIPHASH_KEY_LEN 16

/* Returns SipHash-2-4 of data[0..len) under key (16 bytes), as the little-endian 64-bit word. */
uint64_t pg_siphash(const uint8_t key[PG_SIPHASH_KEY_LEN], const void *data, size_t len);

#endif
