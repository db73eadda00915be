/*
 * Fuzz target: password / keyboard-interactive passthrough (proxy/ssh/auth_relay.c). The input
 * is a sequence of SSH strings, each one message; the relay's state decides who sent it: in
 * IDLE the user (a USERAUTH_REQUEST, password or keyboard-interactive by its first byte's low
 * bit), in WAIT the instance (FAILURE, SUCCESS, BANNER, INFO_REQUEST, PASSWD_CHANGEREQ), in INFO
 * the user again (INFO_RESPONSE). Seeds hold whole keyboard-interactive rounds.
 */
#include "proxy/ssh/auth_relay.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sshwire.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pg_slice s = { data, size }, msg;
	struct auth_relay *r;
	unsigned methods;
	int kind = size > 0 && (data[0] & 1) ? AUTH_RELAY_KBDINT_KIND : AUTH_RELAY_PASSWORD_KIND, v;

	pg_log_min_level = PG_LOG_ERR;
	if (size > 0) {
		s.p++;
		s.len--;
	}
	if ((r = auth_relay_new()) == NULL)
		return 0;
	while (ssh_get_string(&s, &msg) == 0) {
		switch (auth_relay_state(r)) {
		case AUTH_RELAY_IDLE:
			v = auth_relay_begin(r, kind, msg);
			if (v != 0 && v != PG_EPARSE && v != PG_EINVAL && v != PG_ENOMEM)
				__builtin_trap();
			if (v == 0) {
				if (auth_relay_request(r).len != msg.len)
					__builtin_trap();
				auth_relay_sent(r);
			}
			break;
		case AUTH_RELAY_WAIT:
			v = auth_relay_from_instance(r, msg, &methods);
			if (v != PG_EPARSE && (v < AUTH_RELAY_V_IGNORE || v > AUTH_RELAY_V_CHANGEREQ))
				__builtin_trap();
			if (v == PG_EPARSE)
				auth_relay_abort(r);
			break;
		case AUTH_RELAY_INFO:
			v = auth_relay_info_response(r, msg);
			if (v != 0 && v != PG_EPARSE)
				__builtin_trap();
			if (v != 0)
				auth_relay_abort(r);
			break;
		default:
			__builtin_trap();	/* HELD never outlives begin() here */
		}
	}
	auth_relay_free(r);
	return 0;
}
