/*
 * proxy/ssh/auth_relay + auth_server's relayed methods: what `none` lists per user, password
 * and keyboard-interactive requests handed back only when allowed, the relay's states and the
 * instance's verdicts (message 60 read per method), INFO_RESPONSE checked against the prompts,
 * a user's password change refused, partial success.
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
#include "proxy/ssh/auth_relay.h"
#include "proxy/ssh/kex.h"

static const struct pg_slice sid = PG_SLICE_LIT("0123456789abcdef0123456789abcdef");

static int
no_key(void *arg, const char *user, const struct sshkey *key)
{
	return 0;
}

static struct pg_buf
req(const char *method)
{
	struct pg_buf b;

	pg_buf_init(&b, 4096);
	assert_int_equal(ssh_put_u8(&b, SSH_MSG_USERAUTH_REQUEST), 0);
	assert_int_equal(ssh_put_cstring(&b, "alice"), 0);
	assert_int_equal(ssh_put_cstring(&b, "ssh-connection"), 0);
	assert_int_equal(ssh_put_cstring(&b, method), 0);
	return b;
}

static struct pg_buf
password_req(int change, const char *pw)
{
	struct pg_buf b = req("password");

	assert_int_equal(ssh_put_bool(&b, change), 0);
	assert_int_equal(ssh_put_cstring(&b, pw), 0);
	if (change)
		assert_int_equal(ssh_put_cstring(&b, "new"), 0);
	return b;
}

static struct pg_buf
kbd_req(void)
{
	struct pg_buf b = req("keyboard-interactive");

	assert_int_equal(ssh_put_cstring(&b, ""), 0);
	assert_int_equal(ssh_put_cstring(&b, ""), 0);
	return b;
}

#define SL(b) ((struct pg_slice){ (b).p, (b).len })

static void
failure_list(struct pg_buf *reply, const char *want, int partial)
{
	struct pg_slice s = SL(*reply), list;
	uint8_t t;
	int p;

	assert_int_equal(ssh_get_u8(&s, &t), 0);
	assert_int_equal(t, SSH_MSG_USERAUTH_FAILURE);
	assert_int_equal(ssh_get_string(&s, &list), 0);
	assert_true(ssh_slice_eq(list, want));
	assert_int_equal(ssh_get_bool(&s, &p), 0);
	assert_int_equal(p, partial);
	pg_buf_reset(reply);
}

static void
test_server_methods(void **state)
{
	struct auth_server_conf conf = { .max_tries = 3, .key_ok = no_key };
	struct auth_server *a = auth_server_new(&conf);
	struct pg_buf reply, r;

	pg_buf_init(&reply, 4096);
	/* Default: publickey only; a password request is a counted failure. */
	r = req("none");
	assert_int_equal(auth_server_handle(a, SL(r), sid, &reply), 0);
	failure_list(&reply, "publickey", 0);
	pg_buf_free(&r);
	r = password_req(0, "x");
	assert_int_equal(auth_server_handle(a, SL(r), sid, &reply), 0);
	failure_list(&reply, "publickey", 0);
	assert_int_equal(auth_server_failures(a), 1);
	pg_buf_free(&r);

	/* Exactly the user's methods, sshd's order. */
	auth_server_set_methods(a, AUTH_M_PASSWORD | AUTH_M_KBDINT);
	r = req("none");
	assert_int_equal(auth_server_handle(a, SL(r), sid, &reply), 0);
	failure_list(&reply, "keyboard-interactive,password", 0);
	pg_buf_free(&r);
	r = password_req(0, "x");
	assert_int_equal(auth_server_handle(a, SL(r), sid, &reply), AUTH_RELAY_PASSWORD);
	assert_int_equal(reply.len, 0);
	assert_int_equal(auth_server_failures(a), 1);	/* not counted until the verdict */
	pg_buf_free(&r);
	r = kbd_req();
	assert_int_equal(auth_server_handle(a, SL(r), sid, &reply), AUTH_RELAY_KBDINT);
	pg_buf_free(&r);
	/* publickey is not among them now: a counted failure. */
	r = req("publickey");
	assert_int_equal(auth_server_handle(a, SL(r), sid, &reply), 0);
	failure_list(&reply, "keyboard-interactive,password", 0);
	assert_int_equal(auth_server_failures(a), 2);
	pg_buf_free(&r);

	/* The instance's verdicts: partial is not counted, a failure is, up to max_tries. */
	assert_int_equal(auth_server_fail(a, 1, &reply), 0);
	failure_list(&reply, "keyboard-interactive,password", 1);
	assert_int_equal(auth_server_failures(a), 2);
	assert_int_equal(auth_server_fail(a, 0, &reply), PG_ETOOBIG);
	pg_buf_free(&reply);
	auth_server_free(a);
}

static struct pg_buf
info_request(uint32_t n, uint32_t declared)
{
	struct pg_buf b;

	pg_buf_init(&b, 65536);
	assert_int_equal(ssh_put_u8(&b, SSH_MSG_USERAUTH_INFO_REQUEST), 0);
	assert_int_equal(ssh_put_cstring(&b, "name"), 0);
	assert_int_equal(ssh_put_cstring(&b, "instruction"), 0);
	assert_int_equal(ssh_put_cstring(&b, ""), 0);
	assert_int_equal(ssh_put_u32(&b, declared), 0);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(ssh_put_cstring(&b, "Password: "), 0);
		assert_int_equal(ssh_put_bool(&b, 0), 0);
	}
	return b;
}

static struct pg_buf
info_response(uint32_t n)
{
	struct pg_buf b;

	pg_buf_init(&b, 4096);
	assert_int_equal(ssh_put_u8(&b, SSH_MSG_USERAUTH_INFO_RESPONSE), 0);
	assert_int_equal(ssh_put_u32(&b, n), 0);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(ssh_put_cstring(&b, "secret"), 0);
	return b;
}

static struct pg_buf
failure(const char *list, int partial)
{
	struct pg_buf b;

	pg_buf_init(&b, 4096);
	assert_int_equal(ssh_put_u8(&b, SSH_MSG_USERAUTH_FAILURE), 0);
	assert_int_equal(ssh_put_cstring(&b, list), 0);
	assert_int_equal(ssh_put_bool(&b, partial), 0);
	return b;
}

static void
test_password_relay(void **state)
{
	struct auth_relay *r = auth_relay_new();
	struct pg_buf p = password_req(0, "hunter2"), f, ch;
	struct pg_slice held;
	unsigned m = 0;
	static const uint8_t success = SSH_MSG_USERAUTH_SUCCESS;

	assert_int_equal(auth_relay_state(r), AUTH_RELAY_IDLE);
	assert_int_equal(auth_relay_begin(r, AUTH_RELAY_PASSWORD_KIND, SL(p)), 0);
	assert_int_equal(auth_relay_state(r), AUTH_RELAY_HELD);
	held = auth_relay_request(r);
	assert_int_equal(held.len, p.len);
	assert_memory_equal(held.p, p.p, p.len);	/* it crosses unchanged */
	auth_relay_wipe(SL(p));
	assert_null(memmem(p.p, p.len, "hunter2", 7));
	pg_buf_free(&p);
	p = password_req(0, "hunter2");
	auth_relay_sent(r);
	assert_int_equal(auth_relay_state(r), AUTH_RELAY_WAIT);
	/* A banner changes nothing; a failure lists what can continue. */
	{
		struct pg_buf b;

		pg_buf_init(&b, 256);
		assert_int_equal(ssh_put_u8(&b, SSH_MSG_USERAUTH_BANNER), 0);
		assert_int_equal(ssh_put_cstring(&b, "hello"), 0);
		assert_int_equal(ssh_put_cstring(&b, ""), 0);
		assert_int_equal(auth_relay_from_instance(r, SL(b), &m), AUTH_RELAY_V_IGNORE);
		pg_buf_free(&b);
	}
	f = failure("publickey,password", 0);
	assert_int_equal(auth_relay_from_instance(r, SL(f), &m), AUTH_RELAY_V_FAILURE);
	assert_int_equal(m, AUTH_M_PUBLICKEY | AUTH_M_PASSWORD);
	assert_int_equal(auth_relay_state(r), AUTH_RELAY_IDLE);
	pg_buf_free(&f);
	/* Message 60 during a password attempt is PASSWD_CHANGEREQ. */
	assert_int_equal(auth_relay_begin(r, AUTH_RELAY_PASSWORD_KIND, SL(p)), 0);
	auth_relay_sent(r);
	pg_buf_init(&ch, 256);
	assert_int_equal(ssh_put_u8(&ch, SSH_MSG_USERAUTH_PASSWD_CHANGEREQ), 0);
	assert_int_equal(ssh_put_cstring(&ch, "expired"), 0);
	assert_int_equal(ssh_put_cstring(&ch, ""), 0);
	assert_int_equal(auth_relay_from_instance(r, SL(ch), &m), AUTH_RELAY_V_CHANGEREQ);
	pg_buf_free(&ch);
	/* Success, with nothing after it. */
	assert_int_equal(auth_relay_begin(r, AUTH_RELAY_PASSWORD_KIND, SL(p)), 0);
	auth_relay_sent(r);
	assert_int_equal(auth_relay_from_instance(r, (struct pg_slice){ &success, 1 }, &m),
	    AUTH_RELAY_V_SUCCESS);
	/* Out of place: nothing in flight. */
	assert_int_equal(auth_relay_from_instance(r, (struct pg_slice){ &success, 1 }, &m),
	    PG_EPARSE);
	pg_buf_free(&p);
	/* The user's own password change request is never relayed. */
	p = password_req(1, "old");
	assert_int_equal(auth_relay_begin(r, AUTH_RELAY_PASSWORD_KIND, SL(p)), PG_EINVAL);
	assert_int_equal(auth_relay_state(r), AUTH_RELAY_IDLE);
	pg_buf_free(&p);
	/* Malformed: trailing bytes; the method does not match the kind. */
	p = password_req(0, "x");
	assert_int_equal(pg_buf_append(&p, "z", 1), 0);
	assert_int_equal(auth_relay_begin(r, AUTH_RELAY_PASSWORD_KIND, SL(p)), PG_EPARSE);
	pg_buf_free(&p);
	p = kbd_req();
	assert_int_equal(auth_relay_begin(r, AUTH_RELAY_PASSWORD_KIND, SL(p)), PG_EPARSE);
	pg_buf_free(&p);
	auth_relay_free(r);
}

static void
test_kbd_relay(void **state)
{
	struct auth_relay *r = auth_relay_new();
	struct pg_buf k = kbd_req(), ir, resp, f;
	unsigned m = 0;

	assert_int_equal(auth_relay_begin(r, AUTH_RELAY_KBDINT_KIND, SL(k)), 0);
	auth_relay_sent(r);
	/* Several rounds: two prompts, then none (sshd ends PAM with an empty request). */
	ir = info_request(2, 2);
	assert_int_equal(auth_relay_from_instance(r, SL(ir), &m), AUTH_RELAY_V_INFO);
	assert_int_equal(auth_relay_state(r), AUTH_RELAY_INFO);
	pg_buf_free(&ir);
	resp = info_response(1);
	assert_int_equal(auth_relay_info_response(r, SL(resp)), PG_EPARSE);	/* wrong count */
	pg_buf_free(&resp);
	resp = info_response(2);
	assert_int_equal(auth_relay_info_response(r, SL(resp)), 0);
	assert_int_equal(auth_relay_state(r), AUTH_RELAY_WAIT);
	pg_buf_free(&resp);
	ir = info_request(0, 0);
	assert_int_equal(auth_relay_from_instance(r, SL(ir), &m), AUTH_RELAY_V_INFO);
	pg_buf_free(&ir);
	resp = info_response(0);
	assert_int_equal(auth_relay_info_response(r, SL(resp)), 0);
	pg_buf_free(&resp);
	/* Partial success: the instance wants another method. */
	f = failure("keyboard-interactive", 1);
	assert_int_equal(auth_relay_from_instance(r, SL(f), &m), AUTH_RELAY_V_PARTIAL);
	assert_int_equal(m, AUTH_M_KBDINT);
	pg_buf_free(&f);
	/* Malformed INFO_REQUESTs: count over the bound, count above what follows. */
	assert_int_equal(auth_relay_begin(r, AUTH_RELAY_KBDINT_KIND, SL(k)), 0);
	auth_relay_sent(r);
	ir = info_request(0, AUTH_RELAY_MAX_PROMPTS + 1);
	assert_int_equal(auth_relay_from_instance(r, SL(ir), &m), PG_EPARSE);
	pg_buf_free(&ir);
	ir = info_request(1, 2);
	assert_int_equal(auth_relay_from_instance(r, SL(ir), &m), PG_EPARSE);
	pg_buf_free(&ir);
	/* A new request during the prompts starts over (RFC 4256 3.1). */
	ir = info_request(1, 1);
	assert_int_equal(auth_relay_from_instance(r, SL(ir), &m), AUTH_RELAY_V_INFO);
	pg_buf_free(&ir);
	assert_int_equal(auth_relay_begin(r, AUTH_RELAY_KBDINT_KIND, SL(k)), 0);
	assert_int_equal(auth_relay_state(r), AUTH_RELAY_HELD);
	/* An INFO_RESPONSE with nothing asked is refused. */
	resp = info_response(0);
	assert_int_equal(auth_relay_info_response(r, SL(resp)), PG_EPARSE);
	pg_buf_free(&resp);
	auth_relay_abort(r);
	assert_int_equal(auth_relay_state(r), AUTH_RELAY_IDLE);
	pg_buf_free(&k);
	auth_relay_free(r);
	auth_relay_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_methods),
		cmocka_unit_test(test_password_relay),
		cmocka_unit_test(test_kbd_relay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
