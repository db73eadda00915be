/*
 * Fuzz target: the key exchange messages a peer sends, in both roles, for every method.
 * Input: one selector byte, then a payload.
 *   selector & 0x80: we are the server and the payload is the client's INIT (30: Q_C or e);
 *   otherwise we are the client and the payload is the server's REPLY (31: K_S, Q_S or f, sig).
 *   (selector & 0x7f) % N picks the method from SSH_KEX_DEFAULT.
 * Each run makes a fresh ephemeral key, so a REPLY recorded from another run reaches the shared
 * secret and the exchange hash but never a valid signature: it must be refused then, with a
 * reason, and nothing may be returned on failure.
 */
#include "certs/sshkey.h"
#include "core/err.h"
#include "proxy/ssh/kex.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const methods[] = {
	"curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256",
	"ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "diffie-hellman-group16-sha512",
	"diffie-hellman-group14-sha256",
};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

static struct sshkey *hostkey;

static const struct ssh_kex_hash_in hash_in = {
	.v_c = { (const uint8_t *)"SSH-2.0-client", 14 },
	.v_s = { (const uint8_t *)"SSH-2.0-server", 14 },
	.i_c = { (const uint8_t *)"\x14i_c", 4 },
	.i_s = { (const uint8_t *)"\x14i_s", 4 },
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ssh_kex *kx = NULL;
	struct ssh_kex_secret sec;
	struct sshkey *peer_key = NULL;
	struct pg_buf out;
	struct pg_slice payload;
	char why[256];
	int r;

	if (size < 1)
		return 0;
	if (hostkey == NULL && sshkey_generate_ed25519(&hostkey) != 0)
		__builtin_trap();
	payload = (struct pg_slice){ data + 1, size - 1 };
	if (ssh_kex_new(methods[(data[0] & 0x7f) % NMETHODS], &kx) != 0)
		__builtin_trap();
	pg_buf_init(&out, 1 << 16);
	memset(&sec, 0, sizeof(sec));
	why[0] = '\0';
	if (data[0] & 0x80) {
		r = ssh_kex_server_reply(kx, payload, &hash_in, hostkey, "ssh-ed25519", &out, &sec,
		    why, sizeof(why));
		if (r != 0 && (out.len != 0 || why[0] == '\0'))
			__builtin_trap();
	} else {
		if (ssh_kex_client_init(kx, &out) != 0)
			__builtin_trap();
		r = ssh_kex_client_finish(kx, payload, &hash_in, "ssh-ed25519", &peer_key, &sec, why,
		    sizeof(why));
		if (r != 0 && (peer_key != NULL || why[0] == '\0'))
			__builtin_trap();
	}
	if (r == 0 && (sec.h_len == 0 || sec.k_len == 0))
		__builtin_trap();
	ssh_kex_secret_clear(&sec);
	sshkey_free(peer_key);
	pg_buf_free(&out);
	ssh_kex_free(kx);
	return 0;
}
