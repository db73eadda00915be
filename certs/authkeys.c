#include "certs/authkeys.h"
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

/* 1 if the line holds key, 0 if not (or skipped). */
static int
match_line(struct pg_slice line, const struct sshkey *key, const char *what, unsigned lineno,
    const char *log_prefix)
{
	const uint8_t *tok, *b64;
	size_t n, nb;
	struct sshkey *k = NULL;
	int r;

	if ((n = next_token(&line, &tok)) == 0 || tok[0] == '#')
		return 0;
	if (!known_type(tok, n)) {
		LOG_NOTICE(log_prefix, "%s:%u: line with options or an unknown key type refused "
		    "(options are not supported yet)", what, lineno);
		return 0;
	}
	if ((nb = next_token(&line, &b64)) == 0 ||
	    (r = sshkey_from_base64((const char *)b64, nb, &k)) != 0) {
		LOG_NOTICE(log_prefix, "%s:%u: key does not parse, skipped", what, lineno);
		return 0;
	}
	/* The blob names its own type; it must agree with the line's. */
	r = strlen(sshkey_type_name(k)) == n && memcmp(sshkey_type_name(k), tok, n) == 0 &&
	    sshkey_equal_public(k, key);
	sshkey_free(k);
	return r;
}

int
authkeys_match(struct pg_slice text, const struct sshkey *key, const char *what,
    const char *log_prefix)
{
	unsigned lineno = 0;

	while (text.len > 0) {
		const uint8_t *nl = memchr(text.p, '\n', text.len);
		size_t n = nl != NULL ? (size_t)(nl - text.p) : text.len;
		struct pg_slice line = { text.p, n };

		lineno++;
		if (n > 0 && line.p[n - 1] == '\r')
			line.len--;
		if (match_line(line, key, what, lineno, log_prefix))
			return 1;
		text.p += n + (nl != NULL);
		text.len -= n + (nl != NULL);
	}
	return 0;
}

int
authkeys_read_file(const char *path, struct pg_buf *out)
{
	int r = pg_read_file(path, AUTHKEYS_MAX_BYTES, out);

	return r == PG_EINVAL ? PG_EIO : r;	/* not a regular file: as unreadable as it gets */
}

int
authkeys_check_file(const char *path, const struct sshkey *key, const char *log_prefix)
{
	struct pg_buf b;
	int r;

	pg_buf_init(&b, AUTHKEYS_MAX_BYTES);
	if ((r = authkeys_read_file(path, &b)) == 0)
		r = authkeys_match((struct pg_slice){ b.p, b.len }, key, path, log_prefix);
	pg_buf_free(&b);
	return r;
}
