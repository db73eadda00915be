/*
 * Fuzz target: the binary packet decoder with a fixed key. Byte 0 picks the cipher (none or one
 * of the keyed ones below, all with the constant keys here) and the chunk size the rest is fed
 * in; the rest is the byte stream from the peer. Seeds are valid streams under these keys, so
 * mutations reach the length checks, the MAC check and the padding checks behind it. Every
 * payload returned must lie in the decoder's buffer bounds and be non-empty, and a failure must
 * come with a reason.
 */
#include "core/err.h"
#include "proxy/ssh/packet.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
	const char *enc, *mac;
} pairs[] = {
	{ "none", NULL },
	{ "chacha20-poly1305@openssh.com", NULL },
	{ "aes256-gcm@openssh.com", NULL },
	{ "aes128-ctr", "hmac-sha2-256" },
	{ "aes256-ctr", "hmac-sha2-512-etm@openssh.com" },
};

/* Fixed key material: byte i of each is i + a per-purpose offset. */
static void
fixed(uint8_t *p, size_t n, uint8_t base)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(base + i);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t key[SSH_CIPHER_MAX_KEY], iv[SSH_CIPHER_MAX_IV], mk[SSH_CIPHER_MAX_MAC];
	struct ssh_packet *pk;
	struct ssh_cipher *c;
	struct pg_slice pl;
	size_t sel, chunk, off;
	uint32_t seq;
	int r = 0;

	if (size < 1)
		return 0;
	sel = data[0] % (sizeof(pairs) / sizeof(pairs[0]));
	chunk = (data[0] >> 4) + 1;
	if (data[0] >> 4 == 15)
		chunk = size;
	data++;
	size--;
	fixed(key, sizeof(key), 0x10);
	fixed(iv, sizeof(iv), 0x60);
	fixed(mk, sizeof(mk), 0x80);
	if (ssh_packet_new(&pk) != 0)
		return 0;
	if (ssh_cipher_new(pairs[sel].enc, pairs[sel].mac, 0, key, iv, mk, &c) != 0)
		__builtin_trap();
	ssh_packet_set_cipher(pk, SSH_DIR_IN, c);
	for (off = 0; off < size && r >= 0; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (ssh_packet_feed(pk, data + off, n) != 0)
			break;
		while ((r = ssh_packet_next(pk, &pl, &seq)) == 1)
			if (pl.len == 0 || pl.len > SSH_PACKET_MAX)
				__builtin_trap();
	}
	if (r < 0 && (r != PG_EPROTO || ssh_packet_error(pk)[0] == '\0'))
		__builtin_trap();
	ssh_packet_free(pk);
	return 0;
}
