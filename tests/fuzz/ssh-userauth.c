/*
 * Fuzz target: USERAUTH_REQUEST payloads as a user's client sends them, into the server side of
 * userauth (proxy/ssh/auth_server.c), with a key_ok() that accepts one fixed ed25519 key (the
 * seeds hold queries and signed requests, so mutations reach the signature path). The input is a
 * sequence of SSH strings, one request each, so the fixed-user and max-tries logic is reached.
 */
#include "proxy/ssh/auth.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sshwire.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
key_ok(void *arg, const char *user, const struct sshkey *key)
{
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct pg_slice sid = PG_SLICE_LIT("fuzz session id, 32 bytes long..");
	struct auth_server_conf conf = { .max_tries = 3, .key_ok = key_ok };
	struct pg_slice s = { data, size }, req;
	struct auth_server *a;
	struct pg_buf reply;
	char user[64];

	pg_log_min_level = PG_LOG_ERR;
	if ((a = auth_server_new(&conf)) == NULL)
		return 0;
	/* The input's length picks the methods, so every combination is reached. */
	auth_server_set_methods(a, (unsigned)(size % 7) + 1);
	pg_buf_init(&reply, 1 << 16);
	while (ssh_get_string(&s, &req) == 0 && req.len > 0) {
		int r;

		(void)auth_request_user(req, user, sizeof(user));
		r = auth_server_handle(a, req, sid, &reply);
		if (r != 0 && r != AUTH_PROVEN && r != AUTH_RELAY_PASSWORD && r != AUTH_RELAY_KBDINT &&
		    r != PG_EPARSE && r != PG_ETOOBIG && r != PG_ENOMEM)
			__builtin_trap();
		/* A relayed attempt's verdict, as the instance might give it. */
		if (r == AUTH_RELAY_PASSWORD || r == AUTH_RELAY_KBDINT)
			r = auth_server_fail(a, req.len & 1, &reply);
		if (r < 0)
			break;
		pg_buf_reset(&reply);
	}
	pg_buf_free(&reply);
	auth_server_free(a);
	return 0;
}
