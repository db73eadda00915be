#include "certs/usercert.h"
#include "core/err.h"
#include "core/sshwire.h"

#include <stdio.h>

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define SSH2_CERT_TYPE_USER 1

const char *
usercert_type_name(const struct sshkey *key)
{
	switch (sshkey_type(key)) {
	case SSHKEY_ED25519:
		return "ssh-ed25519-cert-v01@openssh.com";
	case SSHKEY_ECDSA_P256:
		return "ecdsa-sha2-nistp256-cert-v01@openssh.com";
	case SSHKEY_ECDSA_P384:
		return "ecdsa-sha2-nistp384-cert-v01@openssh.com";
	case SSHKEY_ECDSA_P521:
		return "ecdsa-sha2-nistp521-cert-v01@openssh.com";
	case SSHKEY_RSA:
		return "ssh-rsa-cert-v01@openssh.com";
	}
	return NULL;
}

/* The signature algorithm the CA uses: its first (most preferred). */
static int
ca_alg(const struct sshkey *ca, char *out, size_t outlen)
{
	const char *algs = sshkey_sig_algs(ca), *comma = strchr(algs, ',');
	size_t n = comma != NULL ? (size_t)(comma - algs) : strlen(algs);

	if (n >= outlen)
		return PG_EINVAL;
	memcpy(out, algs, n);
	out[n] = '\0';
	return 0;
}

int
usercert_make(const struct usercert_req *req, struct pg_buf *out)
{
	/* Sorted by name, as PROTOCOL.certkeys requires; each with empty data. */
	static const char *const exts[] = { "permit-X11-forwarding", "permit-agent-forwarding",
		"permit-port-forwarding", "permit-pty", "permit-user-rc" };
	struct pg_buf c, blob, sub, sig;
	struct pg_slice s, tname;
	uint8_t nonce[32];
	char alg[32];
	size_t start = out->len;
	uint64_t after = req->now > 60 ? req->now - 60 : 0;
	int r;

	if (usercert_type_name(req->key) == NULL || !sshkey_has_private(req->ca) ||
	    ca_alg(req->ca, alg, sizeof(alg)) != 0)
		return PG_EINVAL;
	pg_buf_init(&c, 65536);
	pg_buf_init(&blob, 16384);
	pg_buf_init(&sub, 4096);
	pg_buf_init(&sig, 4096);
	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		r = PG_ENOMEM;
		goto out;
	}
	/* The key's own blob minus its type name is the cert's key fields. */
	if ((r = sshkey_to_blob(req->key, &blob)) != 0)
		goto out;
	s = (struct pg_slice){ blob.p, blob.len };
	if ((r = ssh_get_string(&s, &tname)) != 0)
		goto out;
	/* string type, string nonce, key fields, uint64 serial, uint32 type, string key id */
	if ((r = ssh_put_cstring(&c, usercert_type_name(req->key))) != 0 ||
	    (r = ssh_put_string(&c, nonce, sizeof(nonce))) != 0 ||
	    (r = pg_buf_append(&c, s.p, s.len)) != 0 ||
	    (r = ssh_put_u64(&c, req->serial)) != 0 ||
	    (r = ssh_put_u32(&c, SSH2_CERT_TYPE_USER)) != 0 ||
	    (r = ssh_put_cstring(&c, req->key_id)) != 0)
		goto out;
	/* string valid principals (a packed list of strings) */
	if ((r = ssh_put_cstring(&sub, req->principal)) != 0 ||
	    (r = ssh_put_string(&c, sub.p, sub.len)) != 0)
		goto out;
	/* uint64 valid after, uint64 valid before, string critical options (none) */
	if ((r = ssh_put_u64(&c, after)) != 0 ||
	    (r = ssh_put_u64(&c, req->now + (req->lifetime_s ? req->lifetime_s : 300))) != 0 ||
	    (r = ssh_put_string(&c, NULL, 0)) != 0)
		goto out;
	/* string extensions: (string name, string data) pairs */
	pg_buf_reset(&sub);
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if ((r = ssh_put_cstring(&sub, exts[i])) != 0 || (r = ssh_put_string(&sub, NULL, 0)) != 0)
			goto out;
	/* string extensions, string reserved, string signature key */
	pg_buf_reset(&blob);
	if ((r = ssh_put_string(&c, sub.p, sub.len)) != 0 ||
	    (r = ssh_put_string(&c, NULL, 0)) != 0 ||
	    (r = sshkey_to_blob(req->ca, &blob)) != 0 ||
	    (r = ssh_put_string(&c, blob.p, blob.len)) != 0)
		goto out;
	/* string signature, over everything before it */
	if ((r = sshkey_sign(req->ca, alg, c.p, c.len, &sig)) != 0 ||
	    (r = ssh_put_string(&c, sig.p, sig.len)) != 0 ||
	    (r = pg_buf_append(out, c.p, c.len)) != 0)
		goto out;
out:
	if (r != 0)
		out->len = start;
	pg_buf_free(&c);
	pg_buf_free(&blob);
	pg_buf_free(&sub);
	pg_buf_free(&sig);
	return r;
}

static const struct {
	const char *alg, *sig;
} cert_algs[] = {
	{ "ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519" },
	{ "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp256" },
	{ "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp384" },
	{ "ecdsa-sha2-nistp521-cert-v01@openssh.com", "ecdsa-sha2-nistp521" },
	{ "rsa-sha2-256-cert-v01@openssh.com", "rsa-sha2-256" },
	{ "rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-512" },
};

const char *
usercert_sig_alg(const char *alg)
{
	for (size_t i = 0; i < sizeof(cert_algs) / sizeof(cert_algs[0]); i++)
		if (strcmp(alg, cert_algs[i].alg) == 0)
			return cert_algs[i].sig;
	return NULL;
}

void
usercert_free(struct usercert *c)
{
	if (c == NULL)
		return;
	sshkey_free(c->key);
	sshkey_free(c->ca);
	free(c);
}

/* The certified key's fields after the nonce, per type (PROTOCOL.certkeys). */
static int
key_fields(struct pg_slice tname, const char **base, int *nfields)
{
	static const struct {
		const char *cert, *base;
		int n;
	} t[] = {
		{ "ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519", 1 },
		{ "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp256", 2 },
		{ "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp384", 2 },
		{ "ecdsa-sha2-nistp521-cert-v01@openssh.com", "ecdsa-sha2-nistp521", 2 },
		{ "ssh-rsa-cert-v01@openssh.com", "ssh-rsa", 2 },	/* mpint e, mpint n */
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (ssh_slice_eq(tname, t[i].cert)) {
			*base = t[i].base;
			*nfields = t[i].n;
			return 0;
		}
	}
	return PG_EPARSE;
}

int
usercert_parse(struct pg_slice blob, struct usercert **out)
{
	struct pg_slice s = blob, tname, nonce, f, keyid, reserved, cakey, sig;
	const uint8_t *fields;
	const char *base;
	struct usercert *c;
	struct pg_buf kb;
	int n, r;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return PG_ENOMEM;
	pg_buf_init(&kb, 65536);
	/* string type, string nonce, key fields... */
	if ((r = ssh_get_string(&s, &tname)) != 0 || (r = key_fields(tname, &base, &n)) != 0 ||
	    (r = ssh_get_string(&s, &nonce)) != 0)
		goto out;
	fields = s.p;
	for (int i = 0; i < n; i++)
		if ((r = ssh_get_string(&s, &f)) != 0)
			goto out;
	if ((r = ssh_put_cstring(&kb, base)) != 0 ||
	    (r = pg_buf_append(&kb, fields, (size_t)(s.p - fields))) != 0)
		goto out;
	if ((r = sshkey_from_blob((struct pg_slice){ kb.p, kb.len }, &c->key)) != 0)
		goto out;
	/*
	 * uint64 serial, uint32 type, string key id, string valid principals, uint64 valid after,
	 * uint64 valid before, string critical options, string extensions, string reserved,
	 * string signature key, string signature
	 */
	if ((r = ssh_get_u64(&s, &c->serial)) != 0 || (r = ssh_get_u32(&s, &c->type)) != 0 ||
	    (r = ssh_get_string(&s, &keyid)) != 0 || (r = ssh_get_string(&s, &c->principals)) != 0 ||
	    (r = ssh_get_u64(&s, &c->valid_after)) != 0 ||
	    (r = ssh_get_u64(&s, &c->valid_before)) != 0 ||
	    (r = ssh_get_string(&s, &c->critical)) != 0 ||
	    (r = ssh_get_string(&s, &c->extensions)) != 0 ||
	    (r = ssh_get_string(&s, &reserved)) != 0 || (r = ssh_get_string(&s, &cakey)) != 0)
		goto out;
	{
		size_t signed_len = (size_t)(s.p - blob.p);

		if ((r = ssh_get_string(&s, &sig)) != 0 || (r = ssh_get_end(s)) != 0)
			goto out;
		snprintf(c->key_id, sizeof(c->key_id), "%.*s",
		    (int)(keyid.len < 255 ? keyid.len : 255), keyid.p);
		for (char *p = c->key_id; *p != '\0'; p++)
			if (*p < 0x20 || *p > 0x7e)
				*p = '?';	/* it goes into log lines */
		if ((r = sshkey_from_blob(cakey, &c->ca)) != 0)
			goto out;
		r = sshkey_verify(c->ca, NULL, sig, blob.p, signed_len);
	}
out:
	pg_buf_free(&kb);
	if (r != 0) {
		usercert_free(c);
		return r;
	}
	*out = c;
	return 0;
}

int
usercert_check(const struct usercert *c, const char *user, uint64_t now, const char **why)
{
	static const char *const needed[] = { "permit-X11-forwarding", "permit-agent-forwarding",
		"permit-port-forwarding", "permit-pty", "permit-user-rc" };
	struct pg_slice s, name, data;
	int found = 0;

	if (c->type != SSH2_CERT_TYPE_USER) {
		*why = "not a user certificate";
		return PG_EAUTH;
	}
	s = c->principals;
	while (s.len > 0) {
		if (ssh_get_string(&s, &name) != 0) {
			*why = "malformed principals";
			return PG_EAUTH;
		}
		if (ssh_slice_eq(name, user))
			found = 1;
	}
	if (!found) {
		*why = "the user is not among its principals";
		return PG_EAUTH;
	}
	if (now < c->valid_after) {
		*why = "not yet valid";
		return PG_EAUTH;
	}
	if (now >= c->valid_before) {
		*why = "expired";
		return PG_EAUTH;
	}
	if (c->critical.len > 0) {
		*why = "critical options (force-command, source-address) are not supported yet";
		return PG_EAUTH;
	}
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		int have = 0;

		s = c->extensions;
		while (s.len > 0 && !have) {
			if (ssh_get_string(&s, &name) != 0 || ssh_get_string(&s, &data) != 0) {
				*why = "malformed extensions";
				return PG_EAUTH;
			}
			have = ssh_slice_eq(name, needed[i]);
		}
		if (!have) {
			*why = "restricted certificates (a permit-* extension missing) are not "
			    "supported yet";
			return PG_EAUTH;
		}
	}
	return 0;
}
