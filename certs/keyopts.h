/*
 * authorized_keys options (sshd(8), AUTHORIZED_KEYS FILE FORMAT) as a proxy can treat them.
 * poolgate passes the connection protocol through without interpreting it, so it can honour only
 * options that decide whether a key logs in at all; every option that would restrict what the
 * session then does is refused (the key does not log in), never ignored:
 *
 *	honoured    from="pattern-list"   the client address must match (see keyopts_from_match)
 *	            expiry-time="time"    the key is refused from that time on
 *	            cert-authority        the key is a CA: user certificates it signed log in
 *	            principals="list"     with cert-authority: the names the certificate must hold
 *	neutral     pty, port-forwarding, agent-forwarding, X11-forwarding, user-rc (they only lift
 *	            a restriction), no-touch-required (FIDO keys are not accepted anyway)
 *	refused     restrict and no-pty, no-port-forwarding, no-agent-forwarding,
 *	            no-X11-forwarding, no-user-rc, unless a later option lifts them again;
 *	            command=, environment=, permitopen=, permitlisten=, tunnel=, verify-required
 *
 * An unknown option, or one that does not parse, makes the whole line invalid (as in sshd).
 *
 * Return convention: 0/1 as said, or a negative PG_E* code.
 */
#ifndef PG_CERTS_KEYOPTS_H
#define PG_CERTS_KEYOPTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum {
	KEYOPT_R_PTY = 1,
	KEYOPT_R_PORTFWD = 2,
	KEYOPT_R_AGENT = 4,
	KEYOPT_R_X11 = 8,
	KEYOPT_R_USERRC = 16,
	KEYOPT_R_ALL = 31,
};

#define KEYOPTS_VALUE_MAX 1024

struct keyopts {
	unsigned restricted;	/* KEYOPT_R_* still in force after the whole list */
	int cert_authority;
	int has_from, has_principals, has_expiry;
	char from[KEYOPTS_VALUE_MAX];		/* the pattern list, unquoted */
	char principals[KEYOPTS_VALUE_MAX];	/* comma-separated names, unquoted */
	uint64_t expiry;			/* Unix seconds: refused from then on */
	char refused[32];	/* the first option poolgate cannot honour ("command"), or "" */
};

/*
 * Splits the options field off the front of a line: the bytes up to the first space or tab
 * outside double quotes. Returns 0 with *opts set and *rest advanced past it, or PG_EPARSE
 * (an unterminated quote, or nothing after the options).
 */
int keyopts_split(struct pg_slice *rest, struct pg_slice *opts);

/*
 * Parses a comma-separated option list into *o (zeroed first). Returns 0, or PG_EPARSE with the
 * reason in *why (static: "unknown option", "bad expiry-time", ...).
 */
int keyopts_parse(struct pg_slice list, struct keyopts *o, const char **why);

/*
 * Why a key line with options o must not log in a user from ip (NULL: not known) at now (Unix
 * seconds); NULL when it may. The reason is static or written into buf (which should hold
 * KEYOPTS_VALUE_MAX + 128 bytes to name a from= list whole).
 */
const char *keyopts_refusal(const struct keyopts *o, const char *ip, uint64_t now, char *buf,
    size_t buflen);

/*
 * Matches an IP address (text, "192.0.2.7" or "2001:db8::1") against a from= pattern list:
 * comma-separated patterns with * and ? wildcards (matched against the address text, case
 * insensitive) or CIDR blocks ("10.0.0.0/8", "2001:db8::/32"), each negated by a leading '!'.
 * Host names are never resolved, so a name pattern matches only an address written the same way.
 * Returns 1 if some pattern matches and no negated one does, 0 if not, PG_EPARSE for a malformed
 * CIDR block (as in sshd, the line is then refused).
 */
int keyopts_from_match(const char *patterns, const char *ip);

/*
 * Parses an expiry-time value: YYYYMMDD or YYYYMMDDHHMM[SS], in the local time zone, or in UTC
 * with a trailing Z. Returns 0 with Unix seconds in *out, or PG_EPARSE.
 */
int keyopts_parse_time(const char *s, uint64_t *out);

#endif
