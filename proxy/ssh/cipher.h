/*
 * Packet protection for one direction of an SSH connection (RFC 4253 section 6): the cipher and
 * MAC negotiated for it, or "none" before the first NEWKEYS.
 *
 *   chacha20-poly1305@openssh.com   OpenSSH PROTOCOL.chacha20poly1305: two ChaCha20 keys, the
 *                                   length encrypted on its own, a Poly1305 tag over the rest
 *   aes128-gcm@openssh.com,         RFC 5647 as OpenSSH does it: length in clear as AAD, 16-byte
 *   aes256-gcm@openssh.com          tag, the IV's 64-bit invocation counter bumped per packet
 *   aes128/192/256-ctr              RFC 4344, with one of the MACs below
 *   hmac-sha2-256, hmac-sha2-512    RFC 6668: MAC over seq || plaintext packet
 *   hmac-sha2-*-etm@openssh.com     OpenSSH PROTOCOL 1.5: length in clear, MAC over
 *                                   seq || length || ciphertext, checked before decrypting
 *
 * The packet layer (packet.c) frames; this module only transforms bytes in place. A packet here
 * is the RFC 4253 layout: uint32 packet_length || byte padding_length || payload || padding,
 * followed in memory by ssh_cipher_mac_len() bytes of MAC or tag.
 *
 * Every primitive is OpenSSL EVP; MACs are compared with CRYPTO_memcmp. Keys are copied in and
 * wiped on free.
 *
 * Returns: 0, PG_EPROTO when a MAC or tag does not verify (the connection must die), PG_EINVAL
 * for unknown names or an OpenSSL failure, PG_ENOMEM.
 */
#ifndef PG_PROXY_SSH_CIPHER_H
#define PG_PROXY_SSH_CIPHER_H

#include <stddef.h>
#include <stdint.h>

/* Ours, in preference order: AEADs first, then counter mode with encrypt-then-MAC first. */
#define SSH_CIPHERS_DEFAULT \
	"chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com," \
	"aes256-ctr,aes192-ctr,aes128-ctr"
#define SSH_MACS_DEFAULT \
	"hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha2-256,hmac-sha2-512"

/* The most key material any cipher or MAC here needs (chacha20-poly1305: 64 bytes). */
#define SSH_CIPHER_MAX_KEY 64
#define SSH_CIPHER_MAX_IV 16
#define SSH_CIPHER_MAX_MAC 64
#define SSH_CIPHER_MAX_BLOCK 16

struct ssh_cipher;

/* 1 if the name is a cipher (or MAC) this module implements ("none" is not offered, so 0). */
int ssh_cipher_known(const char *name);
int ssh_mac_known(const char *name);
/* 1 if the cipher carries its own authentication, so the negotiated MAC is not used. */
int ssh_cipher_is_aead(const char *name);

/*
 * The sizes key derivation (RFC 4253 7.2) must produce for this pair. mac may be NULL for an
 * AEAD cipher; *mac_key_len is then 0. Returns 0 or PG_EINVAL for unknown names.
 */
int ssh_cipher_sizes(const char *enc, const char *mac, size_t *key_len, size_t *iv_len,
    size_t *mac_key_len);

/*
 * A new direction state, freed with ssh_cipher_free(). enc "none" (with mac "none" or NULL) is
 * the initial state; key, iv and mac_key are then unused. encrypt: 1 to seal, 0 to open.
 * Key buffers hold the sizes ssh_cipher_sizes() gave. Returns 0 and sets *out, or an error.
 */
int ssh_cipher_new(const char *enc, const char *mac, int encrypt, const uint8_t *key,
    const uint8_t *iv, const uint8_t *mac_key, struct ssh_cipher **out);
void ssh_cipher_free(struct ssh_cipher *c);	/* accepts NULL; wipes keys */

/* "aes128-ctr" etc., for logs; the MAC name is "" for AEADs and "none". */
const char *ssh_cipher_name(const struct ssh_cipher *c);
const char *ssh_cipher_mac_name(const struct ssh_cipher *c);

/* Padding aligns (packet_length field excluded when aad_len is 4) to this: 8 or 16. */
size_t ssh_cipher_block_size(const struct ssh_cipher *c);
/* Bytes of MAC or tag after each packet: 0 for none. */
size_t ssh_cipher_mac_len(const struct ssh_cipher *c);
/*
 * 4 when the packet_length field is outside the aligned, encrypted region (AEADs, -etm MACs),
 * else 0: padding makes (packet_length field + rest) - aad_len a multiple of the block size.
 */
size_t ssh_cipher_aad_len(const struct ssh_cipher *c);
/* How many leading bytes of a packet ssh_cipher_get_length() needs: 4, or a block for CTR+MAC. */
size_t ssh_cipher_len_bytes(const struct ssh_cipher *c);

/*
 * Reads packet_length from the first ssh_cipher_len_bytes() bytes of an incoming packet so the
 * caller can bound the packet before it has all of it. For CTR with a plain MAC the first block
 * is decrypted in place (the stream moves on), so call this exactly once per packet, then
 * ssh_cipher_open() on the same bytes. The length is not authenticated yet: bound it, and trust
 * it only after ssh_cipher_open() succeeds. Opening side only.
 */
int ssh_cipher_get_length(struct ssh_cipher *c, uint32_t seq, uint8_t *p, uint32_t *plen);

/*
 * Authenticates and decrypts in place the packet at p: len = 4 + packet_length bytes, followed
 * by the MAC. On success p[0..len) is plaintext (length field included). PG_EPROTO on a MAC
 * mismatch. Opening side only.
 */
int ssh_cipher_open(struct ssh_cipher *c, uint32_t seq, uint8_t *p, size_t len);

/*
 * Encrypts in place the plaintext packet at p (len = 4 + packet_length bytes) and writes the
 * MAC after it: p must have room for len + ssh_cipher_mac_len() bytes. Sealing side only.
 */
int ssh_cipher_seal(struct ssh_cipher *c, uint32_t seq, uint8_t *p, size_t len);

#endif
