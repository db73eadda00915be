#include "proxy/ssh/auth.h"
#include "proxy/ssh/kex.h"
#include "certs/usercert.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sshwire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER_MAX 256

struct auth_server {
	struct auth_server_conf conf;
	char user[USER_MAX];
	int have_user;
	unsigned methods;	/* AUTH_M_* */
	uint32_t failures;
};

struct auth_server *
auth_server_new(const struct auth_server_conf *conf)
{
	struct auth_server *a = calloc(1, sizeof(*a));

	if (a != NULL) {
		a->conf = *conf;
		a->methods = AUTH_M_PUBLICKEY;
	}
	return a;
}

void
auth_server_free(struct auth_server *a)
{
	free(a);
}

uint32_t
auth_server_failures(const struct auth_server *a)
{
	return a->failures;
}

const char *
auth_server_user(const struct auth_server *a)
{
	return a->user;
}

static int
copy_cstr(struct pg_slice s, char *out, size_t outlen)
{
	if (s.len >= outlen || memchr(s.p, '\0', s.len) != NULL)
		return PG_EPARSE;
	memcpy(out, s.p, s.len);
	out[s.len] = '\0';
	return 0;
}

int
auth_request_user(struct pg_slice payload, char *out, size_t outlen)
{
	struct pg_slice user;
	uint8_t type;

	/* byte SSH_MSG_USERAUTH_REQUEST, string user name, ... */
	if (ssh_get_u8(&payload, &type) != 0 || type != SSH_MSG_USERAUTH_REQUEST ||
	    ssh_get_string(&payload, &user) != 0)
		return PG_EPARSE;
	return copy_cstr(user, out, outlen);
}

void
auth_server_set_methods(struct auth_server *a, unsigned methods)
{
	a->methods = methods;
}

unsigned
auth_server_methods(const struct auth_server *a)
{
	return a->methods;
}

/* byte SSH_MSG_USERAUTH_FAILURE, name-list authentications that can continue, boolean partial */
static int
put_failure(struct auth_server *a, int partial, struct pg_buf *reply)
{
	char list[64];
	int r;

	/* sshd's order; clients try methods in their own order anyway. */
	snprintf(list, sizeof(list), "%s%s%s",
	    a->methods & AUTH_M_PUBLICKEY ? "publickey," : "",
	    a->methods & AUTH_M_KBDINT ? "keyboard-interactive," : "",
	    a->methods & AUTH_M_PASSWORD ? "password," : "");
	if (list[0] != '\0')
		list[strlen(list) - 1] = '\0';
	if ((r = ssh_put_u8(reply, SSH_MSG_USERAUTH_FAILURE)) != 0 ||
	    (r = ssh_put_cstring(reply, list)) != 0 || (r = ssh_put_bool(reply, partial)) != 0)
		return r;
	return 0;
}

static int
failed(struct auth_server *a, struct pg_buf *reply)
{
	if (++a->failures >= a->conf.max_tries)
		return PG_ETOOBIG;
	return put_failure(a, 0, reply);
}

int
auth_server_fail(struct auth_server *a, int partial, struct pg_buf *reply)
{
	return partial ? put_failure(a, 1, reply) : failed(a, reply);
}

/* The bytes a publickey signature covers (RFC 4252 7). */
static int
signed_data(struct pg_buf *d, struct pg_slice sid, struct pg_slice user, struct pg_slice service,
    struct pg_slice alg, struct pg_slice blob)
{
	int r;

	if ((r = ssh_put_string(d, sid.p, sid.len)) != 0 ||
	    (r = ssh_put_u8(d, SSH_MSG_USERAUTH_REQUEST)) != 0 ||
	    (r = ssh_put_string(d, user.p, user.len)) != 0 ||
	    (r = ssh_put_string(d, service.p, service.len)) != 0 ||
	    (r = ssh_put_cstring(d, "publickey")) != 0 || (r = ssh_put_bool(d, 1)) != 0 ||
	    (r = ssh_put_string(d, alg.p, alg.len)) != 0 ||
	    (r = ssh_put_string(d, blob.p, blob.len)) != 0)
		return r;
	return 0;
}

static int
publickey(struct auth_server *a, struct pg_slice rest, struct pg_slice sid, struct pg_slice user,
    struct pg_slice service, struct pg_buf *reply)
{
	struct pg_slice alg, blob, sig;
	struct sshkey *k = NULL;
	struct pg_buf d;
	char algname[64];
	const char *sigalg = algname;
	int has_sig, r;

	/* boolean has signature, string algorithm, string key blob, [string signature] */
	if (ssh_get_bool(&rest, &has_sig) != 0 || ssh_get_string(&rest, &alg) != 0 ||
	    ssh_get_string(&rest, &blob) != 0 || (has_sig && ssh_get_string(&rest, &sig) != 0) ||
	    ssh_get_end(rest) != 0)
		return PG_EPARSE;
	if (copy_cstr(alg, algname, sizeof(algname)) != 0)
		return failed(a, reply);
	if (usercert_sig_alg(algname) != NULL) {
		struct usercert *cert = NULL;
		int ok;

		/* A certificate: its CA, principals, validity and options decide, not a key list. */
		sigalg = usercert_sig_alg(algname);
		if ((r = usercert_parse(blob, &cert)) != 0 || !sshkey_can_sign_as(cert->key, sigalg)) {
			LOG_NOTICE(a->conf.log_prefix, "user %s: certificate refused: %s", a->user,
			    r == PG_EPROTO ? "its CA signature does not verify" : "malformed");
			usercert_free(cert);
			return r == PG_ENOMEM ? r : failed(a, reply);
		}
		ok = a->conf.cert_ok != NULL && a->conf.cert_ok(a->conf.arg, a->user, cert);
		k = cert->key;
		cert->key = NULL;
		usercert_free(cert);
		if (!ok) {
			sshkey_free(k);
			return failed(a, reply);
		}
	} else if (sshkey_from_blob(blob, &k) != 0 || !sshkey_can_sign_as(k, algname) ||
	    !a->conf.key_ok(a->conf.arg, a->user, k)) {
		/* Unknown algorithms (ssh-rsa with SHA-1, sk-*) are a plain failure too. */
		sshkey_free(k);
		/*
		 * A query for a key that is not the user's counts, as in sshd (auth2.c
		 * userauth_finish): otherwise a client could probe any number of keys.
		 */
		return failed(a, reply);
	}
	if (!has_sig) {
		sshkey_free(k);
		/* byte SSH_MSG_USERAUTH_PK_OK, string algorithm, string blob */
		if ((r = ssh_put_u8(reply, SSH_MSG_USERAUTH_PK_OK)) != 0 ||
		    (r = ssh_put_string(reply, alg.p, alg.len)) != 0 ||
		    (r = ssh_put_string(reply, blob.p, blob.len)) != 0)
			return r;
		return 0;
	}
	pg_buf_init(&d, 65536);
	if ((r = signed_data(&d, sid, user, service, alg, blob)) == 0)
		r = sshkey_verify(k, sigalg, sig, d.p, d.len);
	pg_buf_free(&d);
	if (r == 0) {
		char fp[SSHKEY_FP_LEN];

		if (sshkey_fingerprint(k, fp, sizeof(fp)) != 0)
			fp[0] = '\0';
		LOG_INFO(a->conf.log_prefix, "user %s: publickey %s %s accepted", a->user, algname, fp);
	} else
		LOG_NOTICE(a->conf.log_prefix, "user %s: publickey signature does not verify",
		    a->user);
	sshkey_free(k);
	if (r == PG_ENOMEM)
		return r;
	return r == 0 ? AUTH_PROVEN : failed(a, reply);
}

int
auth_server_handle(struct auth_server *a, struct pg_slice payload, struct pg_slice session_id,
    struct pg_buf *reply)
{
	struct pg_slice s = payload, user, service, method;
	uint8_t type;
	char name[USER_MAX];

	/* byte SSH_MSG_USERAUTH_REQUEST, string user, string service, string method, ... */
	if (ssh_get_u8(&s, &type) != 0 || type != SSH_MSG_USERAUTH_REQUEST ||
	    ssh_get_string(&s, &user) != 0 || ssh_get_string(&s, &service) != 0 ||
	    ssh_get_string(&s, &method) != 0 || copy_cstr(user, name, sizeof(name)) != 0)
		return PG_EPARSE;
	if (!ssh_slice_eq(service, "ssh-connection"))
		return PG_EPARSE;
	if (!a->have_user) {
		memcpy(a->user, name, sizeof(name));
		a->have_user = 1;
	} else if (strcmp(a->user, name) != 0) {
		LOG_NOTICE(a->conf.log_prefix, "user %s: change of user name refused", a->user);
		return PG_EPARSE;
	}
	if (ssh_slice_eq(method, "publickey") && (a->methods & AUTH_M_PUBLICKEY))
		return publickey(a, s, session_id, user, service, reply);
	if (ssh_slice_eq(method, "password") && (a->methods & AUTH_M_PASSWORD))
		return AUTH_RELAY_PASSWORD;
	if (ssh_slice_eq(method, "keyboard-interactive") && (a->methods & AUTH_M_KBDINT))
		return AUTH_RELAY_KBDINT;
	/* "none" and every other method: what can continue. Only real attempts count. */
	if (ssh_slice_eq(method, "none"))
		return put_failure(a, 0, reply);
	return failed(a, reply);
}
