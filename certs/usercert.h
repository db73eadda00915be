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

#endif
