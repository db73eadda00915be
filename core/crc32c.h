/*
 * CRC-32C (Castagnoli, polynomial 0x1EDC6F41 reflected), the checksum iSCSI (RFC 3720 B.4), ext4
 * metadata and LevelDB/RocksDB logs use to detect torn or damaged records. It detects accidental
 * damage, not tampering: a file an attacker can write is not protected by it.
 */
#ifndef PG_CORE_CRC32C_H
#define PG_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Returns the CRC-32C of data[0..len) continued from crc (0 to start; pass a previous result to
 * checksum a message in pieces). Thread-safe.
 */
uint32_t pg_crc32c(uint32_t crc, const void *data, size_t len);

#endif
