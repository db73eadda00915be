#include "core/token.h"
#include "core/secretfile.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int
b64token_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

/* Returns NULL when p[0..len) is a valid token, else why not. */
static const char *
check_token(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && b64token_char((unsigned char)p[i]))
		i++;
	if (i == 0 && len > 0)
		return "the token holds a character outside A-Z a-z 0-9 - . _ ~ + / =";
	while (i < len && p[i] == '=')
		i++;
	if (i < len)
		return "the token holds a character outside A-Z a-z 0-9 - . _ ~ + / = (or a second line)";
	if (len < PG_TOKEN_MIN)
		return "the token is shorter than 16 characters";
	if (len > PG_TOKEN_MAX)
		return "the token is longer than 1024 characters";
	return NULL;
}

int
pg_token_parse_file(const char *text, size_t len, struct pg_slice *tok, const char **why)
{
	const char *reason;

	if (len > 0 && text[len - 1] == '\n') {
		len--;
		if (len > 0 && text[len - 1] == '\r')
			len--;
	}
	if (len == 0) {
		*why = "the file is empty";
		return PG_EPARSE;
	}
	if ((reason = check_token(text, len)) != NULL) {
		*why = reason;
		return PG_EPARSE;
	}
	tok->p = (const uint8_t *)text;
	tok->len = len;
	return 0;
}

int
pg_token_parse_authorization(const char *value, size_t len, struct pg_slice *tok)
{
	static const char scheme[] = "bearer";
	size_t i = 0, n = sizeof(scheme) - 1, start;

	while (i < len && (value[i] == ' ' || value[i] == '\t'))
		i++;
	if (len - i <= n)
		return PG_EPARSE;
	for (size_t k = 0; k < n; k++) {
		char c = value[i + k];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != scheme[k])
			return PG_EPARSE;
	}
	i += n;
	if (value[i] != ' ')
		return PG_EPARSE;
	while (i < len && value[i] == ' ')
		i++;
	start = i;
	while (i < len && value[i] != ' ' && value[i] != '\t')
		i++;
	tok->p = (const uint8_t *)value + start;
	tok->len = i - start;
	while (i < len && (value[i] == ' ' || value[i] == '\t'))
		i++;
	if (i != len || tok->len == 0 || tok->len > PG_TOKEN_MAX)
		return PG_EPARSE;
	/* Its alphabet only: the length rule is the token file's, a short guess is just wrong. */
	for (size_t k = 0; k < tok->len; k++) {
		if (!b64token_char(tok->p[k]) && tok->p[k] != '=')
			return PG_EPARSE;
	}
	return 0;
}

int
pg_token_digest(struct pg_slice tok, uint8_t out[PG_TOKEN_DIGEST_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(tok.p, tok.len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != PG_TOKEN_DIGEST_LEN)
		return PG_ENOMEM;
	return 0;
}

int
pg_token_matches(const uint8_t digest[PG_TOKEN_DIGEST_LEN], struct pg_slice presented)
{
	uint8_t d[PG_TOKEN_DIGEST_LEN];
	int eq;

	if (pg_token_digest(presented, d) != 0)
		return 0;
	eq = CRYPTO_memcmp(d, digest, PG_TOKEN_DIGEST_LEN) == 0;
	OPENSSL_cleanse(d, sizeof(d));
	return eq;
}

int
pg_token_read_file(const char *path, int private, char *tok, size_t *toklen, char *err,
    size_t errlen)
{
	char buf[PG_TOKEN_MAX + 4];	/* token, CRLF, and one byte to see it is too long */
	struct pg_slice t;
	struct stat st;
	const char *why = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, r = PG_EPARSE;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? PG_ENOTFOUND : PG_EIO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		r = PG_EINVAL;
		goto out;
	}
	if (private && (r = pg_secret_check_fd(fd, path, "admin token", err, errlen)) != 0)
		goto out;
	r = PG_EPARSE;
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			r = PG_EIO;
			goto out;
		}
		len += (size_t)n;
	}
	if (len == sizeof(buf)) {
		snprintf(err, errlen, "%s: the token is longer than %d characters", path, PG_TOKEN_MAX);
		goto out;
	}
	if (pg_token_parse_file(buf, len, &t, &why) != 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		goto out;
	}
	memcpy(tok, t.p, t.len);
	tok[t.len] = '\0';
	*toklen = t.len;
	r = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return r;
}
