/*
 * proxy/ssh/auth_server + auth_client: a request the client side signs verifies on the server
 * side; none lists publickey; a query gets PK_OK only for the user's key; a bad signature or a
 * stranger's key fails and counts; max tries; a change of user name is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/err.h"
#include "core/sshwire.h"
#include "proxy/ssh/auth.h"
#include "proxy/ssh/kex.h"

static struct sshkey *alice_key;

static int
key_ok(void *arg, const char *user, const struct sshkey *key)
{
	return strcmp(user, "alice") == 0 && sshkey_equal_public(key, alice_key);
}

static const struct pg_slice sid = PG_SLICE_LIT("0123456789abcdef0123456789abcdef");

static struct pg_buf
signed_req(const char *user, const struct sshkey *k, struct pg_slice session)
{
	struct pg_buf blob, req;

	pg_buf_init(&blob, 4096);
	pg_buf_init(&req, 65536);
	assert_int_equal(sshkey_to_blob(k, &blob), 0);
	assert_int_equal(auth_client_publickey(&req, session, user, "ssh-ed25519",
	    (struct pg_slice){ blob.p, blob.len }, k, "ssh-ed25519"), 0);
	pg_buf_free(&blob);
	return req;
}

static struct pg_buf
simple_req(const char *user, const char *method)
{
	struct pg_buf req;

	pg_buf_init(&req, 4096);
	assert_int_equal(ssh_put_u8(&req, SSH_MSG_USERAUTH_REQUEST), 0);
	assert_int_equal(ssh_put_cstring(&req, user), 0);
	assert_int_equal(ssh_put_cstring(&req, "ssh-connection"), 0);
	assert_int_equal(ssh_put_cstring(&req, method), 0);
	return req;
}

static void
test_flow(void **state)
{
	struct auth_server_conf conf = { .max_tries = 3, .key_ok = key_ok };
	struct auth_server *a;
	struct sshkey *other;
	struct pg_buf req, reply, blob;
	char user[64];

	assert_int_equal(sshkey_generate_ed25519(&alice_key), 0);
	assert_int_equal(sshkey_generate_ed25519(&other), 0);
	assert_non_null(a = auth_server_new(&conf));
	pg_buf_init(&reply, 65536);

	req = simple_req("alice", "none");
	assert_int_equal(auth_request_user((struct pg_slice){ req.p, req.len }, user, sizeof(user)), 0);
	assert_string_equal(user, "alice");
	assert_int_equal(auth_server_handle(a, (struct pg_slice){ req.p, req.len }, sid, &reply), 0);
	assert_int_equal(reply.p[0], SSH_MSG_USERAUTH_FAILURE);
	assert_memory_equal(reply.p + 5, "publickey", 9);
	pg_buf_free(&req);

	/* A query for alice's key: PK_OK. */
	pg_buf_init(&req, 4096);
	pg_buf_init(&blob, 4096);
	assert_int_equal(sshkey_to_blob(alice_key, &blob), 0);
	assert_int_equal(ssh_put_u8(&req, SSH_MSG_USERAUTH_REQUEST), 0);
	assert_int_equal(ssh_put_cstring(&req, "alice"), 0);
	assert_int_equal(ssh_put_cstring(&req, "ssh-connection"), 0);
	assert_int_equal(ssh_put_cstring(&req, "publickey"), 0);
	assert_int_equal(ssh_put_bool(&req, 0), 0);
	assert_int_equal(ssh_put_cstring(&req, "ssh-ed25519"), 0);
	assert_int_equal(ssh_put_string(&req, blob.p, blob.len), 0);
	pg_buf_reset(&reply);
	assert_int_equal(auth_server_handle(a, (struct pg_slice){ req.p, req.len }, sid, &reply), 0);
	assert_int_equal(reply.p[0], SSH_MSG_USERAUTH_PK_OK);
	pg_buf_free(&req);
	pg_buf_free(&blob);

	/* A stranger's key, signed: failure, counted. */
	req = signed_req("alice", other, sid);
	pg_buf_reset(&reply);
	assert_int_equal(auth_server_handle(a, (struct pg_slice){ req.p, req.len }, sid, &reply), 0);
	assert_int_equal(reply.p[0], SSH_MSG_USERAUTH_FAILURE);
	pg_buf_free(&req);

	/* Alice's key signed over another session id: failure, counted. */
	req = signed_req("alice", alice_key, PG_SLICE_LIT("another session"));
	pg_buf_reset(&reply);
	assert_int_equal(auth_server_handle(a, (struct pg_slice){ req.p, req.len }, sid, &reply), 0);
	assert_int_equal(reply.p[0], SSH_MSG_USERAUTH_FAILURE);
	pg_buf_free(&req);

	/* The real thing. */
	req = signed_req("alice", alice_key, sid);
	pg_buf_reset(&reply);
	assert_int_equal(auth_server_handle(a, (struct pg_slice){ req.p, req.len }, sid, &reply), 1);
	assert_int_equal(reply.len, 0);
	pg_buf_free(&req);

	/* Another user name on the same connection: refused. */
	req = simple_req("bob", "none");
	assert_int_equal(auth_server_handle(a, (struct pg_slice){ req.p, req.len }, sid, &reply),
	    PG_EPARSE);
	pg_buf_free(&req);
	auth_server_free(a);

	/* Max tries: the third failure ends it. */
	assert_non_null(a = auth_server_new(&conf));
	for (int i = 0; i < 3; i++) {
		req = signed_req("alice", other, sid);
		pg_buf_reset(&reply);
		assert_int_equal(auth_server_handle(a, (struct pg_slice){ req.p, req.len }, sid,
		    &reply), i < 2 ? 0 : PG_ETOOBIG);
		pg_buf_free(&req);
	}
	auth_server_free(a);
	pg_buf_free(&reply);
	sshkey_free(other);
	sshkey_free(alice_key);
}

/* Probing keys counts: a query for a key that is not the user's is a failed attempt (as sshd). */
static void
test_queries_count(void **state)
{
	struct auth_server_conf conf = { .max_tries = 2, .key_ok = key_ok };
	struct auth_server *a = auth_server_new(&conf);
	struct sshkey *k;
	struct pg_buf req, reply, blob;

	assert_int_equal(sshkey_generate_ed25519(&alice_key), 0);
	assert_int_equal(sshkey_generate_ed25519(&k), 0);
	pg_buf_init(&reply, 4096);
	pg_buf_init(&blob, 4096);
	assert_int_equal(sshkey_to_blob(k, &blob), 0);
	for (int i = 0; i < 2; i++) {
		pg_buf_init(&req, 4096);
		assert_int_equal(ssh_put_u8(&req, SSH_MSG_USERAUTH_REQUEST), 0);
		assert_int_equal(ssh_put_cstring(&req, "alice"), 0);
		assert_int_equal(ssh_put_cstring(&req, "ssh-connection"), 0);
		assert_int_equal(ssh_put_cstring(&req, "publickey"), 0);
		assert_int_equal(ssh_put_bool(&req, 0), 0);
		assert_int_equal(ssh_put_cstring(&req, "ssh-ed25519"), 0);
		assert_int_equal(ssh_put_string(&req, blob.p, blob.len), 0);
		pg_buf_reset(&reply);
		assert_int_equal(auth_server_handle(a, (struct pg_slice){ req.p, req.len }, sid,
		    &reply), i == 0 ? 0 : PG_ETOOBIG);
		pg_buf_free(&req);
	}
	assert_int_equal(auth_server_failures(a), 2);
	pg_buf_free(&blob);
	pg_buf_free(&reply);
	auth_server_free(a);
	sshkey_free(k);
	sshkey_free(alice_key);
}

static void
test_malformed(void **state)
{
	struct auth_server_conf conf = { .max_tries = 3, .key_ok = key_ok };
	struct auth_server *a = auth_server_new(&conf);
	struct pg_buf reply, req = simple_req("alice", "publickey");
	char user[4];

	pg_buf_init(&reply, 4096);
	assert_int_equal(auth_server_handle(a, (struct pg_slice){ req.p, req.len }, sid, &reply),
	    PG_EPARSE);
	assert_int_equal(auth_request_user((struct pg_slice){ req.p, req.len }, user, sizeof(user)),
	    PG_EPARSE);
	assert_int_equal(auth_server_handle(a, (struct pg_slice){ req.p, 3 }, sid, &reply), PG_EPARSE);
	pg_buf_free(&req);
	pg_buf_free(&reply);
	auth_server_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flow),
		cmocka_unit_test(test_queries_count),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
