/*
 * Fuzz target: usernames from request targets and login form bodies. Every name returned must be
 * what identity.h promises (1..255 bytes, no '/', no control byte, no ASCII capital, no surrounding
 * space; ASCII only from the form), and must come back unchanged when percent-encoded into a path or
 * a form again.
 */
#include "core/err.h"
#include "proxy/http/identity.h"

#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_name(const char *user, int form)
{
	size_t n = strlen(user);

	if (n == 0 || n > IDENTITY_USER_MAX || user[0] == ' ' || user[n - 1] == ' ')
		__builtin_trap();
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)user[i];
		if (c < 0x20 || c == 0x7f || c == '/' || (c >= 'A' && c <= 'Z') || (form && c >= 0x80))
			__builtin_trap();
	}
}

/* Writes prefix + percent-encoded user (every byte but [a-z0-9]) + suffix into out. */
static size_t
encode(char *out, const char *prefix, const char *user, const char *suffix)
{
	size_t n = (size_t)sprintf(out, "%s", prefix);

	for (const unsigned char *p = (const unsigned char *)user; *p != 0; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
			out[n++] = (char)*p;
		else
			n += (size_t)sprintf(out + n, "%%%02X", *p);
	}
	return n + (size_t)sprintf(out + n, "%s", suffix);
}

static void
round_trip(const char *user, int form)
{
	char buf[3 * IDENTITY_USER_MAX + 64], again[IDENTITY_USER_MAX + 1];
	size_t n = form ? encode(buf, "a=1&username=", user, "&b=2") :
	    encode(buf, "/user/", user, "/lab?x=1");
	struct pg_slice s = { (const uint8_t *)buf, n };
	int r = form ? identity_from_form(s, again) : identity_from_path(s, again);

	if (r != 1 || strcmp(again, user) != 0)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pg_slice s = { data, size };
	char user[IDENTITY_USER_MAX + 1];

	if (identity_from_path(s, user) == 1) {
		check_name(user, 0);
		round_trip(user, 0);
	}
	if (identity_from_form(s, user) == 1) {
		check_name(user, 1);
		round_trip(user, 1);
	}
	(void)identity_is_login((struct pg_slice){ (const uint8_t *)"POST", 4 }, s);
	return 0;
}
