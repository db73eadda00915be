/*
 * OpenSSH user certificates (PROTOCOL.certkeys) that the pool user CA signs for one upstream
 * login: the certified key is a fresh per-connection key, the only principal the user, valid from
 * a minute ago (clock skew) for a few minutes, no critical options, the usual permit-* extensions.
 *
 * Return convention: 0 or a negative PG_E* code; out-parameters set only on success.
 */
#ifndef PG_CERTS_USERCERT_H
#define PG_CERTS_USERCERT_H

#include <stdint.h>

#include "certs/sshkey.h"
#include "core/buf.h"

struct usercert_req {
	const struct sshkey *key;	/* the key certified (its public half is used) */
	const struct sshkey *ca;	/* private: signs */
	const char *principal;		/* the user name */
	const char *key_id;		/* names the connection, shows in the instance's sshd log */
	uint64_t serial;
	uint64_t now;			/* Unix seconds */
	uint32_t lifetime_s;		/* valid_before = now + lifetime_s; 0: 300 */
};

/* "ssh-ed25519-cert-v01@openssh.com" for an ed25519 key, and so on. Static; NULL for none. */
const char *usercert_type_name(const struct sshkey *key);

/* Appends the certificate blob (what a publickey userauth request carries as its key). */
int usercert_make(const struct usercert_req *req, struct pg_buf *out);

/*
 * A certificate a user presents (the front side). usercert_parse() checks its structure and its
 * CA's signature over it, nothing else: the caller decides whether that CA is trusted and checks
 * the rest with usercert_check().
 */
struct usercert {
	struct sshkey *key;		/* the certified key: verifies the userauth signature */
	struct sshkey *ca;		/* the signing key */
	uint64_t serial;
	uint32_t type;			/* 1 user, 2 host */
	char key_id[256];
	uint64_t valid_after, valid_before;
	struct pg_slice principals;	/* packed strings; points into the parsed blob */
	struct pg_slice critical;	/* (string name, string data) pairs */
	struct pg_slice extensions;
};

void usercert_free(struct usercert *c);	/* accepts NULL */

/*
 * The signature algorithm a userauth request with certificate algorithm alg is signed with:
 * "ssh-ed25519-cert-v01@openssh.com" -> "ssh-ed25519", "rsa-sha2-512-cert-v01@openssh.com" ->
 * "rsa-sha2-512". NULL if alg names no certificate type we take.
 */
const char *usercert_sig_alg(const char *alg);

/*
 * Parses a certificate blob and verifies its CA signature. Returns 0, PG_EPARSE (malformed, or
 * a type we do not take), PG_EPROTO (the CA signature does not verify), PG_ENOMEM.
 */
int usercert_parse(struct pg_slice blob, struct usercert **out);

/*
 * Checks a user certificate for a login as user at time now (Unix seconds): a user certificate,
 * user among its principals (an empty list is refused), within its validity, no critical options
 * (force-command and source-address are not enforced yet, so they are refused), and every
 * standard permit-* extension present (poolgate cannot enforce their absence yet). Returns 0, or
 * PG_EAUTH with the reason in why (static).
 */
int usercert_check(const struct usercert *c, const char *user, uint64_t now, const char **why);

#endif
