#include "proxy/ssh/auth_relay.h"
#include "proxy/ssh/auth.h"
#include "proxy/ssh/kex.h"
#include "core/err.h"
#include "core/sshwire.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

struct auth_relay {
	enum auth_relay_state state;
	enum auth_relay_kind kind;
	uint8_t *held;		/* HELD: the user's request, wiped once sent */
	size_t held_len;
	uint32_t prompts;	/* INFO: prompts the user must answer */
};

struct auth_relay *
auth_relay_new(void)
{
	return calloc(1, sizeof(struct auth_relay));
}

static void
drop_held(struct auth_relay *r)
{
	if (r->held != NULL) {
		OPENSSL_cleanse(r->held, r->held_len);
		free(r->held);
	}
	r->held = NULL;
	r->held_len = 0;
}

void
auth_relay_free(struct auth_relay *r)
{
	if (r == NULL)
		return;
	drop_held(r);
	free(r);
}

void
auth_relay_wipe(struct pg_slice payload)
{
	if (payload.len > 0)
		OPENSSL_cleanse((void *)payload.p, payload.len);
}

enum auth_relay_state
auth_relay_state(const struct auth_relay *r)
{
	return r->state;
}

enum auth_relay_kind
auth_relay_kind(const struct auth_relay *r)
{
	return r->kind;
}

const char *
auth_relay_kind_name(enum auth_relay_kind k)
{
	return k == AUTH_RELAY_KBDINT_KIND ? "keyboard-interactive" : "password";
}

void
auth_relay_abort(struct auth_relay *r)
{
	drop_held(r);
	r->state = AUTH_RELAY_IDLE;
	r->prompts = 0;
}

int
auth_relay_begin(struct auth_relay *r, enum auth_relay_kind kind, struct pg_slice payload)
{
	struct pg_slice s = payload, user, service, method, a, b;
	uint8_t type;
	int change;

	if (r->state != AUTH_RELAY_IDLE && r->state != AUTH_RELAY_INFO)
		return PG_EPARSE;
	auth_relay_abort(r);
	/* byte SSH_MSG_USERAUTH_REQUEST, string user, string service, string method */
	if (ssh_get_u8(&s, &type) != 0 || type != SSH_MSG_USERAUTH_REQUEST ||
	    ssh_get_string(&s, &user) != 0 || ssh_get_string(&s, &service) != 0 ||
	    ssh_get_string(&s, &method) != 0)
		return PG_EPARSE;
	if (kind == AUTH_RELAY_PASSWORD_KIND) {
		/* boolean FALSE, string plaintext password (TRUE: a new password follows, 8) */
		if (!ssh_slice_eq(method, "password") || ssh_get_bool(&s, &change) != 0 ||
		    ssh_get_string(&s, &a) != 0)
			return PG_EPARSE;
		if (change)
			return PG_EINVAL;
	} else {
		/* string language tag (deprecated), string submethods (RFC 4256 3.1) */
		if (!ssh_slice_eq(method, "keyboard-interactive") || ssh_get_string(&s, &a) != 0 ||
		    ssh_get_string(&s, &b) != 0)
			return PG_EPARSE;
	}
	if (ssh_get_end(s) != 0)
		return PG_EPARSE;
	if ((r->held = malloc(payload.len)) == NULL)
		return PG_ENOMEM;
	memcpy(r->held, payload.p, payload.len);
	r->held_len = payload.len;
	r->kind = kind;
	r->state = AUTH_RELAY_HELD;
	return 0;
}

struct pg_slice
auth_relay_request(const struct auth_relay *r)
{
	return (struct pg_slice){ r->held, r->held_len };
}

void
auth_relay_sent(struct auth_relay *r)
{
	drop_held(r);
	r->state = AUTH_RELAY_WAIT;
}

/* Methods in a FAILURE's name-list, as AUTH_M_* bits (others are of no use through us). */
static unsigned
method_bits(struct pg_slice list)
{
	struct pg_slice name;
	unsigned m = 0;

	while (ssh_namelist_next(&list, &name)) {
		if (ssh_slice_eq(name, "publickey"))
			m |= AUTH_M_PUBLICKEY;
		else if (ssh_slice_eq(name, "password"))
			m |= AUTH_M_PASSWORD;
		else if (ssh_slice_eq(name, "keyboard-interactive"))
			m |= AUTH_M_KBDINT;
	}
	return m;
}

/*
 * byte INFO_REQUEST, string name, string instruction, string language tag, int num-prompts,
 * then per prompt: string prompt, boolean echo (RFC 4256 3.2).
 */
static int
info_request(struct auth_relay *r, struct pg_slice s)
{
	struct pg_slice name, instr, lang, prompt;
	uint32_t n;
	int echo;

	if (ssh_get_string(&s, &name) != 0 || ssh_get_string(&s, &instr) != 0 ||
	    ssh_get_string(&s, &lang) != 0 || ssh_get_u32(&s, &n) != 0 ||
	    n > AUTH_RELAY_MAX_PROMPTS)
		return PG_EPARSE;
	for (uint32_t i = 0; i < n; i++)
		if (ssh_get_string(&s, &prompt) != 0 || ssh_get_bool(&s, &echo) != 0)
			return PG_EPARSE;
	if (ssh_get_end(s) != 0)
		return PG_EPARSE;
	r->prompts = n;
	r->state = AUTH_RELAY_INFO;
	return AUTH_RELAY_V_INFO;
}

int
auth_relay_from_instance(struct auth_relay *r, struct pg_slice payload, unsigned *methods)
{
	struct pg_slice s = payload, list, prompt, lang;
	uint8_t type;
	int partial;

	if (r->state != AUTH_RELAY_WAIT || ssh_get_u8(&s, &type) != 0)
		return PG_EPARSE;
	switch (type) {
	case SSH_MSG_USERAUTH_BANNER:
		return AUTH_RELAY_V_IGNORE;
	case SSH_MSG_USERAUTH_SUCCESS:
		if (ssh_get_end(s) != 0)
			return PG_EPARSE;
		r->state = AUTH_RELAY_IDLE;
		return AUTH_RELAY_V_SUCCESS;
	case SSH_MSG_USERAUTH_FAILURE:
		/* name-list authentications that can continue, boolean partial success */
		if (ssh_get_namelist(&s, &list) != 0 || ssh_get_bool(&s, &partial) != 0 ||
		    ssh_get_end(s) != 0)
			return PG_EPARSE;
		*methods = method_bits(list);
		r->state = AUTH_RELAY_IDLE;
		return partial ? AUTH_RELAY_V_PARTIAL : AUTH_RELAY_V_FAILURE;
	case 60:
		if (r->kind == AUTH_RELAY_KBDINT_KIND)
			return info_request(r, s);
		/* PASSWD_CHANGEREQ: string prompt, string language tag */
		if (ssh_get_string(&s, &prompt) != 0 || ssh_get_string(&s, &lang) != 0 ||
		    ssh_get_end(s) != 0)
			return PG_EPARSE;
		r->state = AUTH_RELAY_IDLE;
		return AUTH_RELAY_V_CHANGEREQ;
	default:
		return PG_EPARSE;
	}
}

int
auth_relay_info_response(struct auth_relay *r, struct pg_slice payload)
{
	struct pg_slice s = payload, answer;
	uint8_t type;
	uint32_t n;

	/* byte INFO_RESPONSE, int num-responses, string response... (RFC 4256 3.4) */
	if (r->state != AUTH_RELAY_INFO || ssh_get_u8(&s, &type) != 0 ||
	    type != SSH_MSG_USERAUTH_INFO_RESPONSE || ssh_get_u32(&s, &n) != 0 || n != r->prompts)
		return PG_EPARSE;
	for (uint32_t i = 0; i < n; i++)
		if (ssh_get_string(&s, &answer) != 0)
			return PG_EPARSE;
	if (ssh_get_end(s) != 0)
		return PG_EPARSE;
	r->state = AUTH_RELAY_WAIT;
	r->prompts = 0;
	return 0;
}
