/*
 * SSH public keys, private host keys and signatures (RFC 4253 6.6, RFC 5656 3, RFC 8332, RFC 8709):
 * ssh-ed25519, ecdsa-sha2-nistp256/384/521, and RSA keys ("ssh-rsa" blobs) signing with
 * rsa-sha2-256 or rsa-sha2-512 (never SHA-1). Everything is OpenSSL EVP.
 *
 * A struct sshkey holds a public key, or a private key and its public half. It is immutable once
 * made, so several connections may share one (a host key) as long as nobody frees it under them.
 *
 * Return convention: 0 on success, or a negative PG_E* code: PG_EPARSE for a malformed blob, key
 * file or signature encoding, PG_EPROTO for a well-formed signature that does not verify,
 * PG_EINVAL for an algorithm the key cannot do, PG_ENOMEM. Out-parameters are set only on success.
 * No message or log line ever holds private key material.
 */
#ifndef PG_CERTS_SSHKEY_H
#define PG_CERTS_SSHKEY_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum sshkey_type {
	SSHKEY_ED25519,
	SSHKEY_ECDSA_P256,
	SSHKEY_ECDSA_P384,
	SSHKEY_ECDSA_P521,
	SSHKEY_RSA,
};

/* RSA moduli outside this range are refused, as OpenSSH does (SSH_RSA_MINIMUM_MODULUS_SIZE). */
#define SSHKEY_RSA_MIN_BITS 1024
#define SSHKEY_RSA_MAX_BITS 16384

/* "SHA256:" + 43 base64 characters + NUL. */
#define SSHKEY_FP_LEN 51

struct sshkey;

void sshkey_free(struct sshkey *k);	/* accepts NULL; wipes the private key */

/* Parses a public key blob (string type, then type-specific fields, nothing after). */
int sshkey_from_blob(struct pg_slice blob, struct sshkey **out);
/* Appends the public key blob. */
int sshkey_to_blob(const struct sshkey *k, struct pg_buf *out);

enum sshkey_type sshkey_type(const struct sshkey *k);
/* The blob's type name: "ssh-ed25519", "ecdsa-sha2-nistp256", ..., "ssh-rsa". Static. */
const char *sshkey_type_name(const struct sshkey *k);
int sshkey_has_private(const struct sshkey *k);
/* 1 if both hold the same public key. */
int sshkey_equal_public(const struct sshkey *a, const struct sshkey *b);

/*
 * The signature algorithms this key makes, most preferred first, comma-separated and static:
 * "ssh-ed25519", "ecdsa-sha2-nistp256", ..., "rsa-sha2-512,rsa-sha2-256".
 */
const char *sshkey_sig_algs(const struct sshkey *k);
/* 1 if alg is one of sshkey_sig_algs(k). */
int sshkey_can_sign_as(const struct sshkey *k, const char *alg);

/* Signs data with alg (one of sshkey_sig_algs) and appends the signature blob (string alg, ...). */
int sshkey_sign(const struct sshkey *k, const char *alg, const uint8_t *data, size_t len,
    struct pg_buf *sig);

/*
 * Verifies a signature blob over data. The blob's algorithm must equal alg (the negotiated host
 * key algorithm, say); alg NULL accepts any algorithm the key can make. Returns 0, PG_EPROTO for a
 * signature that does not verify or names another algorithm, PG_EPARSE for a malformed blob.
 */
int sshkey_verify(const struct sshkey *k, const char *alg, struct pg_slice sig,
    const uint8_t *data, size_t len);

/*
 * Reads a private key: OpenSSH's format ("-----BEGIN OPENSSH PRIVATE KEY-----", unencrypted only)
 * or PEM (PKCS#8, traditional RSA/EC; encrypted PEM is refused rather than prompting). On failure
 * writes a message naming the problem (never key material) into err (errlen bytes, NUL-terminated
 * when errlen > 0). The _file form reads a path; the message then names it.
 */
int sshkey_parse_private(struct pg_slice text, struct sshkey **out, char *err, size_t errlen);
int sshkey_load_private(const char *path, struct sshkey **out, char *err, size_t errlen);

/* A new ed25519 private key. */
int sshkey_generate_ed25519(struct sshkey **out);
/*
 * A new ECDSA P-256 private key: for logins through libssh2 1.10, which can present an ECDSA
 * certificate but not an ed25519 one (the load probe).
 */
int sshkey_generate_ecdsa_p256(struct sshkey **out);

/* Appends "type base64(blob)[ comment]\n", one authorized_keys / .pub line. comment may be NULL. */
int sshkey_write_public(const struct sshkey *k, const char *comment, struct pg_buf *out);

/*
 * Appends the private key as unencrypted PKCS#8 PEM (which sshkey_load_private reads back), for
 * keys poolgate makes itself in state_dir. PG_EINVAL for a public-only key.
 */
int sshkey_write_private_pem(const struct sshkey *k, struct pg_buf *out);

/* Parses the base64 blob of an authorized_keys / .pub line (len bytes, padded base64). */
int sshkey_from_base64(const char *b64, size_t len, struct sshkey **out);

/* Writes "SHA256:<base64, no padding>" as `ssh-keygen -lf` prints it; out has SSHKEY_FP_LEN bytes. */
int sshkey_fingerprint(const struct sshkey *k, char *out, size_t outlen);

#endif
