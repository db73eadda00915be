#include "certs/usercert.h"
#include "core/err.h"
#include "core/sshwire.h"

#include <openssl/rand.h>
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
