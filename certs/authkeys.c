#include "certs/authkeys.h"
#include "certs/keyopts.h"
#include "core/err.h"
#include "core/fileread.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const key_types[] = { "ssh-ed25519", "ecdsa-sha2-nistp256",
	"ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa", NULL };

int
authkeys_user_ok(const char *user)
{
	size_t n = 0;

	if (user == NULL || user[0] == '.' || user[0] == '-')
		return 0;
	for (const char *p = user; *p != '\0'; p++, n++) {
		if (n >= AUTHKEYS_USER_MAX)
			return 0;
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return 0;
	}
	return n > 0;
}

int
authkeys_expand(const char *pattern, const char *user, char *out, size_t outlen)
{
	size_t o = 0;

	if (!authkeys_user_ok(user) || outlen == 0)
		return PG_EINVAL;
	for (const char *p = pattern; *p != '\0'; p++) {
		const char *add;
		char one[2] = { *p, '\0' };
		size_t n;

		if (*p == '%') {
			if (p[1] == 'u')
				add = user;
			else if (p[1] == '%')
				add = "%";
			else
				return PG_EINVAL;
			p++;
		} else
			add = one;
		n = strlen(add);
		if (o + n >= outlen)
			return PG_ETOOBIG;
		memcpy(out + o, add, n);
		o += n;
	}
	out[o] = '\0';
	return 0;
}

static int
is_space(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* Takes the next whitespace-delimited token of line; returns its length (0 at the end). */
static size_t
next_token(struct pg_slice *line, const uint8_t **tok)
{
	size_t i = 0, n;

	while (i < line->len && is_space(line->p[i]))
		i++;
	*tok = line->p + i;
	for (n = 0; i + n < line->len && !is_space(line->p[i + n]); n++)
		;
	line->p += i + n;
	line->len -= i + n;
	return n;
}

static int
known_type(const uint8_t *tok, size_t n)
{
	for (size_t i = 0; key_types[i] != NULL; i++)
		if (strlen(key_types[i]) == n && memcmp(tok, key_types[i], n) == 0)
			return 1;
	return 0;
}

/*
 * Parses one line: returns 1 with its key (the caller frees it) and options, 0 for a blank or
 * comment line, PG_EPARSE with *why for a line that does not parse. sshd's rule: a line whose
 * first field is no key type starts with options.
 */
static int
parse_line(struct pg_slice line, struct keyopts *o, struct sshkey **out, const char **why)
{
	struct pg_slice opts;
	const uint8_t *tok, *b64;
	size_t n, nb;
	struct sshkey *k = NULL;

	memset(o, 0, sizeof(*o));
	while (line.len > 0 && is_space(line.p[0])) {
		line.p++;
		line.len--;
	}
	if (line.len == 0 || line.p[0] == '#')
		return 0;
	{
		struct pg_slice peek = line;

		if ((n = next_token(&peek, &tok)) > 0 && !known_type(tok, n)) {
			if (keyopts_split(&line, &opts) != 0) {
				*why = "unknown key type, or options that do not parse";
				return PG_EPARSE;
			}
			if (keyopts_parse(opts, o, why) != 0)
				return PG_EPARSE;
		}
	}
	if ((n = next_token(&line, &tok)) == 0 || !known_type(tok, n)) {
		*why = "unknown key type";
		return PG_EPARSE;
	}
	if ((nb = next_token(&line, &b64)) == 0 ||
	    sshkey_from_base64((const char *)b64, nb, &k) != 0) {
		*why = "key does not parse";
		return PG_EPARSE;
	}
	/* The blob names its own type; it must agree with the line's. */
	if (strlen(sshkey_type_name(k)) != n || memcmp(sshkey_type_name(k), tok, n) != 0) {
		sshkey_free(k);
		*why = "the key's type differs from the line's";
		return PG_EPARSE;
	}
	*out = k;
	return 1;
}

/*
 * Walks the lines of text; for each line holding `key` (the user's key, or a certificate's CA
 * when cert is set) of the right kind, asks its options, then (certificates) the certificate.
 */
static int
walk(struct pg_slice text, const struct sshkey *key, const struct usercert *cert,
    const struct authkeys_ctx *ctx)
{
	unsigned lineno = 0;
	char buf[KEYOPTS_VALUE_MAX + 256];
	struct keyopts *o = malloc(sizeof(*o));
	int found = 0;

	if (o == NULL)
		return 0;
	while (text.len > 0 && !found) {
		const uint8_t *nl = memchr(text.p, '\n', text.len);
		size_t n = nl != NULL ? (size_t)(nl - text.p) : text.len;
		struct pg_slice line = { text.p, n };
		struct sshkey *k = NULL;
		const char *why = NULL;
		int r;

		lineno++;
		text.p += n + (nl != NULL);
		text.len -= n + (nl != NULL);
		if (n > 0 && line.p[n - 1] == '\r')
			line.len--;
		if ((r = parse_line(line, o, &k, &why)) != 1) {
			if (r < 0)
				LOG_NOTICE(ctx->log_prefix, "%s:%u: %s; line skipped", ctx->what, lineno,
				    why);
			continue;
		}
		if (o->cert_authority != (cert != NULL) || !sshkey_equal_public(k, key)) {
			sshkey_free(k);
			continue;
		}
		sshkey_free(k);
		if ((why = keyopts_refusal(o, ctx->client_ip, ctx->now, buf, sizeof(buf))) == NULL &&
		    cert != NULL) {
			/* principals="a,b": the certificate must name one of them. */
			const char *p = o->has_principals ? o->principals : ctx->user ? ctx->user : "";
			char name[KEYOPTS_VALUE_MAX];

			why = "no principals";
			while (*p != '\0') {
				size_t pn = strcspn(p, ",");

				snprintf(name, sizeof(name), "%.*s", (int)pn, p);
				if (usercert_check(cert, name, ctx->now, &why) == 0) {
					why = NULL;
					break;
				}
				p += pn + (p[pn] == ',');
			}
		}
		if (why != NULL)
			LOG_NOTICE(ctx->log_prefix, "%s:%u: %s for user %s refused: %s", ctx->what,
			    lineno, cert ? "certificate authority" : "key", ctx->user ? ctx->user : "?",
			    why);
		else
			found = 1;
	}
	free(o);
	return found;
}

int
authkeys_match(struct pg_slice text, const struct sshkey *key, const struct authkeys_ctx *ctx)
{
	return walk(text, key, NULL, ctx);
}

int
authkeys_match_cert(struct pg_slice text, const struct usercert *cert,
    const struct authkeys_ctx *ctx)
{
	return walk(text, cert->ca, cert, ctx);
}

int
authkeys_read_file(const char *path, struct pg_buf *out)
{
	int r = pg_read_file(path, AUTHKEYS_MAX_BYTES, out);

	return r == PG_EINVAL ? PG_EIO : r;	/* not a regular file: as unreadable as it gets */
}

int
authkeys_check_file(const char *path, const struct sshkey *key, const struct authkeys_ctx *ctx)
{
	struct pg_buf b;
	int r;

	pg_buf_init(&b, AUTHKEYS_MAX_BYTES);
	if ((r = authkeys_read_file(path, &b)) == 0)
		r = authkeys_match((struct pg_slice){ b.p, b.len }, key, ctx);
	pg_buf_free(&b);
	return r;
}
