#include "proxy/ssh/auth.h"
#include "proxy/ssh/kex.h"
#include "core/err.h"
#include "core/sshwire.h"

int
auth_client_publickey(struct pg_buf *out, struct pg_slice session_id, const char *user,
    const char *alg, struct pg_slice blob, const struct sshkey *signer, const char *sig_alg)
{
	struct pg_buf req, d;
	size_t start = out->len;
	int r;

	pg_buf_init(&req, 65536);
	pg_buf_init(&d, 65536);
	/*
	 * byte SSH_MSG_USERAUTH_REQUEST, string user, string "ssh-connection", string "publickey",
	 * boolean TRUE, string algorithm, string blob; then string signature over
	 * string session id || all of that (RFC 4252 7).
	 */
	if ((r = ssh_put_u8(&req, SSH_MSG_USERAUTH_REQUEST)) != 0 ||
	    (r = ssh_put_cstring(&req, user)) != 0 ||
	    (r = ssh_put_cstring(&req, "ssh-connection")) != 0 ||
	    (r = ssh_put_cstring(&req, "publickey")) != 0 || (r = ssh_put_bool(&req, 1)) != 0 ||
	    (r = ssh_put_cstring(&req, alg)) != 0 ||
	    (r = ssh_put_string(&req, blob.p, blob.len)) != 0)
		goto out;
	if ((r = ssh_put_string(&d, session_id.p, session_id.len)) != 0 ||
	    (r = pg_buf_append(&d, req.p, req.len)) != 0)
		goto out;
	{
		struct pg_buf sig;

		pg_buf_init(&sig, 8192);
		if ((r = sshkey_sign(signer, sig_alg, d.p, d.len, &sig)) == 0)
			r = ssh_put_string(&req, sig.p, sig.len);
		pg_buf_free(&sig);
		if (r != 0)
			goto out;
	}
	r = pg_buf_append(out, req.p, req.len);
out:
	if (r != 0)
		out->len = start;
	pg_buf_free(&req);
	pg_buf_free(&d);
	return r;
}
