/*
 * SSH key exchange (RFC 4253 sections 7 and 8): KEXINIT build, parse and negotiation
 * (kexinit.c), the key exchange methods, the exchange hash H and key derivation (kex.c).
 *
 * Methods: curve25519-sha256 (and @libssh.org, RFC 8731), ecdh-sha2-nistp256/384/521 (RFC 5656),
 * diffie-hellman-group16-sha512 and -group14-sha256 (RFC 8268, groups of RFC 3526), all from
 * OpenSSL EVP_PKEY. Every method has the same two messages: INIT (30) from the client with its
 * ephemeral public value and REPLY (31) from the server with its host key, public value and a
 * signature over H.
 *
 * Return convention: 0 or a negative PG_E* code; PG_EPROTO for anything the peer got wrong, with
 * a reason written into the caller's why buffer where one is taken. No secret (K, keys, private
 * exponents) ever reaches a message.
 */
#ifndef PG_PROXY_SSH_KEX_H
#define PG_PROXY_SSH_KEX_H

#include <stddef.h>
#include <stdint.h>

#include "certs/sshkey.h"
#include "core/buf.h"

/* Message numbers of the transport layer (RFC 4250 4.1) that these modules and transport use. */
enum {
	SSH_MSG_DISCONNECT = 1,
	SSH_MSG_IGNORE = 2,
	SSH_MSG_UNIMPLEMENTED = 3,
	SSH_MSG_DEBUG = 4,
	SSH_MSG_SERVICE_REQUEST = 5,
	SSH_MSG_SERVICE_ACCEPT = 6,
	SSH_MSG_EXT_INFO = 7,		/* RFC 8308 */
	SSH_MSG_KEXINIT = 20,
	SSH_MSG_NEWKEYS = 21,
	SSH_MSG_KEX_INIT = 30,		/* KEXDH_INIT, KEX_ECDH_INIT */
	SSH_MSG_KEX_REPLY = 31,		/* KEXDH_REPLY, KEX_ECDH_REPLY */
	SSH_MSG_USERAUTH_REQUEST = 50,
	SSH_MSG_USERAUTH_FAILURE = 51,
	SSH_MSG_USERAUTH_SUCCESS = 52,
};

#define SSH_KEX_DEFAULT \
	"curve25519-sha256,curve25519-sha256@libssh.org," \
	"ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521," \
	"diffie-hellman-group16-sha512,diffie-hellman-group14-sha256"
#define SSH_HOSTKEY_ALGS_DEFAULT \
	"ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521," \
	"rsa-sha2-512,rsa-sha2-256"

/* Pseudo-algorithms in the kex list (OpenSSH PROTOCOL 1.9, 1.10; RFC 8308 2.1). */
#define SSH_KEX_STRICT_C "kex-strict-c-v00@openssh.com"
#define SSH_KEX_STRICT_S "kex-strict-s-v00@openssh.com"
#define SSH_EXT_INFO_C "ext-info-c"
#define SSH_EXT_INFO_S "ext-info-s"

/* The ten name-lists of KEXINIT, in wire order. */
enum ssh_kexinit_list {
	SSH_KI_KEX, SSH_KI_HOSTKEY, SSH_KI_ENC_CS, SSH_KI_ENC_SC, SSH_KI_MAC_CS, SSH_KI_MAC_SC,
	SSH_KI_COMP_CS, SSH_KI_COMP_SC, SSH_KI_LANG_CS, SSH_KI_LANG_SC, SSH_KI_NLISTS
};

/* A parsed KEXINIT; the slices point into the payload it was parsed from. */
struct ssh_kexinit {
	struct pg_slice cookie;
	struct pg_slice lists[SSH_KI_NLISTS];
	int first_kex_follows;
};

/* What we offer; NULL fields take the defaults. Comma-separated, in preference order. */
struct ssh_kex_prefs {
	const char *kex, *hostkey, *ciphers, *macs;
};

/*
 * Appends a KEXINIT payload (message number, random cookie, lists, first_kex_packet_follows 0,
 * reserved 0) to out. initial: the first kex of the connection, which alone carries the strict
 * kex and ext-info markers (OpenSSH sends them only there). Returns 0 or a buffer error.
 */
int ssh_kexinit_build(struct pg_buf *out, const struct ssh_kex_prefs *prefs, int is_server,
    int initial);

/* Parses a KEXINIT payload (message number included). Returns 0 or PG_EPARSE. */
int ssh_kexinit_parse(struct pg_slice payload, struct ssh_kexinit *ki);

#define SSH_ALG_MAX 64

/* The negotiation's outcome. Index 0 is client to server, 1 server to client. */
struct ssh_kex_algs {
	char kex[SSH_ALG_MAX];
	char hostkey[SSH_ALG_MAX];
	char enc[2][SSH_ALG_MAX];
	char mac[2][SSH_ALG_MAX];	/* "" when enc is an AEAD */
	int strict;		/* both sides offered strict kex (initial kex only) */
	int peer_ext_info;	/* the peer offered ext-info-c (to a server) or -s (to a client) */
	int skip_guess;		/* the peer sent a guessed kex packet that guessed wrong: drop it */
};

/*
 * RFC 4253 7.1: for each list the first client algorithm the server also lists; the markers are
 * never chosen. is_server says which of the two we are (for peer_ext_info and skip_guess).
 * Returns 0, or PG_EPROTO with why naming the list that has no match ("no common cipher
 * client->server: client offers ...").
 */
int ssh_kex_negotiate(const struct ssh_kexinit *client, const struct ssh_kexinit *server,
    int is_server, int initial, struct ssh_kex_algs *out, char *why, size_t whylen);

/* 1 if the name is a kex method this module implements. */
int ssh_kex_known(const char *name);

/* The strings hashed into H besides the method's own values (RFC 4253 8). */
struct ssh_kex_hash_in {
	struct pg_slice v_c, v_s;	/* identification lines without CR LF */
	struct pg_slice i_c, i_s;	/* KEXINIT payloads as sent */
};

#define SSH_MPINT_MAX_LEN (4 + 1 + 512)	/* a 4096-bit K with its sign byte */

/* A finished exchange's secrets. Wipe with ssh_kex_secret_clear(). */
struct ssh_kex_secret {
	uint8_t h[64];		/* the exchange hash */
	size_t h_len;
	uint8_t k[SSH_MPINT_MAX_LEN];	/* shared secret K, mpint-encoded (length prefix included) */
	size_t k_len;
	char digest[8];		/* "SHA256", "SHA384", "SHA512" */
};

struct ssh_kex;

/* An exchange of method name with a fresh ephemeral key. Free with ssh_kex_free(). */
int ssh_kex_new(const char *name, struct ssh_kex **out);
void ssh_kex_free(struct ssh_kex *kx);	/* accepts NULL; wipes the ephemeral key */

/* Client: appends the INIT payload (30, Q_C or e). */
int ssh_kex_client_init(struct ssh_kex *kx, struct pg_buf *out);

/*
 * Server: reads the client's INIT payload, computes K and H, signs H with hostkey as
 * hostkey_alg, appends the REPLY payload to out and fills *sec.
 */
int ssh_kex_server_reply(struct ssh_kex *kx, struct pg_slice init, const struct ssh_kex_hash_in *hi,
    const struct sshkey *hostkey, const char *hostkey_alg, struct pg_buf *out,
    struct ssh_kex_secret *sec, char *why, size_t whylen);

/*
 * Client: reads the server's REPLY payload, computes K and H and verifies the signature with the
 * host key it carries (which must be of hostkey_alg's type). On success sets *hostkey (the
 * caller frees it and decides whether to trust it) and fills *sec.
 */
int ssh_kex_client_finish(struct ssh_kex *kx, struct pg_slice reply,
    const struct ssh_kex_hash_in *hi, const char *hostkey_alg, struct sshkey **hostkey,
    struct ssh_kex_secret *sec, char *why, size_t whylen);

/*
 * RFC 4253 7.2: need bytes of key material for letter ('A'..'F') from K, H and the session id
 * (H of the connection's first exchange). need is at most SSH_CIPHER_MAX_KEY.
 */
int ssh_kex_derive(const struct ssh_kex_secret *sec, const uint8_t *session_id, size_t sid_len,
    char letter, uint8_t *out, size_t need);

void ssh_kex_secret_clear(struct ssh_kex_secret *sec);

#endif
