#include "certs/knownhosts.h"
#include "core/err.h"
#include "core/fileread.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define NAME_MAX_LEN 300

static void
host_name(const char *host, uint16_t port, char *out, size_t outlen)
{
	if (port == 22)
		snprintf(out, outlen, "%s", host);
	else
		snprintf(out, outlen, "[%s]:%u", host, port);
}

static int
b64_decode(const uint8_t *p, size_t n, uint8_t *out, size_t outmax, size_t *outlen)
{
	int len, pad = 0;

	if (n == 0 || n % 4 != 0 || n / 4 * 3 > outmax)
		return PG_EPARSE;
	if (p[n - 1] == '=')
		pad++;
	if (n > 1 && p[n - 2] == '=')
		pad++;
	if ((len = EVP_DecodeBlock(out, p, (int)n)) < pad)
		return PG_EPARSE;
	*outlen = (size_t)(len - pad);
	return 0;
}

/* "|1|base64(salt)|base64(HMAC-SHA1(salt, name))" */
static int
hashed_match(const uint8_t *p, size_t n, const char *name)
{
	const uint8_t *bar;
	uint8_t salt[64], want[64], got[EVP_MAX_MD_SIZE];
	size_t slen, wlen;
	unsigned int glen = 0;

	if (n < 3 || memcmp(p, "|1|", 3) != 0 || (bar = memchr(p + 3, '|', n - 3)) == NULL)
		return 0;
	if (b64_decode(p + 3, (size_t)(bar - p - 3), salt, sizeof(salt), &slen) != 0 ||
	    b64_decode(bar + 1, n - (size_t)(bar + 1 - p), want, sizeof(want), &wlen) != 0 ||
	    slen != 20 || wlen != 20)
		return 0;
	if (HMAC(EVP_sha1(), salt, (int)slen, (const uint8_t *)name, strlen(name), got, &glen) == NULL)
		return 0;
	return glen == wlen && CRYPTO_memcmp(got, want, wlen) == 0;
}

/*
 * OpenSSH's match_pattern(): only * and ? are special ("[host]:port" is literal). Iterative, with
 * one backtracking point (the last *), so "*a*a*a*...b" costs O(len(s) * len(pat)), not
 * exponential time (the fuzzer found the recursive form hanging).
 */
static int
wild_match(const char *s, const char *pat)
{
	const char *star = NULL, *resume = NULL;

	while (*s != '\0') {
		if (*pat == '*') {
			star = pat++;
			resume = s;
		} else if (*pat != '\0' && (*pat == '?' || *pat == *s)) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++resume;
		} else
			return 0;
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

/* 1 if the comma-separated patterns name the host, 0 if not (a negated match wins). */
static int
patterns_match(const uint8_t *p, size_t n, const char *name)
{
	int hit = 0;

	while (n > 0) {
		const uint8_t *comma = memchr(p, ',', n);
		size_t len = comma != NULL ? (size_t)(comma - p) : n;
		char pat[NAME_MAX_LEN];
		int neg = len > 0 && p[0] == '!';

		if (p[0] == '|') {
			if (hashed_match(p, len, name))
				hit = 1;
		} else if (len - neg < sizeof(pat)) {
			memcpy(pat, p + neg, len - neg);
			pat[len - neg] = '\0';
			if (wild_match(name, pat)) {
				if (neg)
					return 0;
				hit = 1;
			}
		}
		p += len + (comma != NULL);
		n -= len + (comma != NULL);
	}
	return hit;
}

static size_t
token(struct pg_slice *l, const uint8_t **t)
{
	size_t i = 0, n = 0;

	while (i < l->len && (l->p[i] == ' ' || l->p[i] == '\t'))
		i++;
	*t = l->p + i;
	while (i + n < l->len && l->p[i + n] != ' ' && l->p[i + n] != '\t')
		n++;
	l->p += i + n;
	l->len -= i + n;
	return n;
}

int
knownhosts_check(struct pg_slice text, const char *host, uint16_t port, const struct sshkey *key)
{
	char name[NAME_MAX_LEN];
	int named = 0, matched = 0, revoked = 0;

	host_name(host, port, name, sizeof(name));
	while (text.len > 0) {
		const uint8_t *nl = memchr(text.p, '\n', text.len), *t, *pats, *b64;
		size_t n = nl != NULL ? (size_t)(nl - text.p) : text.len, tn, pn, bn;
		struct pg_slice l = { text.p, n };
		struct sshkey *k = NULL;
		int is_revoked = 0;

		text.p += n + (nl != NULL);
		text.len -= n + (nl != NULL);
		if (l.len > 0 && l.p[l.len - 1] == '\r')
			l.len--;
		if ((tn = token(&l, &t)) == 0 || t[0] == '#')
			continue;
		if (t[0] == '@') {
			if (tn != 8 || memcmp(t, "@revoked", 8) != 0)
				continue;	/* @cert-authority: not supported yet */
			is_revoked = 1;
			tn = token(&l, &t);
		}
		pats = t;
		pn = tn;
		if (pn == 0 || token(&l, &t) == 0 || (bn = token(&l, &b64)) == 0)
			continue;
		if (!is_revoked && !patterns_match(pats, pn, name))
			continue;
		if (sshkey_from_base64((const char *)b64, bn, &k) != 0)
			continue;
		if (is_revoked) {
			if (sshkey_equal_public(k, key))
				revoked = 1;
		} else {
			named = 1;
			if (sshkey_equal_public(k, key))
				matched = 1;
		}
		sshkey_free(k);
	}
	if (revoked)
		return PG_EAUTH;
	if (matched)
		return 0;
	return named ? PG_EAUTH : PG_ENOTFOUND;
}

int
knownhosts_read_file(const char *path, struct pg_buf *out)
{
	int r = pg_read_file(path, KNOWNHOSTS_MAX_BYTES, out);

	return r == PG_EINVAL ? PG_EIO : r;	/* not a regular file: as unreadable as it gets */
}

int
knownhosts_check_file(const char *path, const char *host, uint16_t port, const struct sshkey *key)
{
	struct pg_buf b;
	int r;

	pg_buf_init(&b, KNOWNHOSTS_MAX_BYTES);
	if ((r = knownhosts_read_file(path, &b)) == 0)
		r = knownhosts_check((struct pg_slice){ b.p, b.len }, host, port, key);
	pg_buf_free(&b);
	return r;
}

int
knownhosts_format_line(const char *host, uint16_t port, const struct sshkey *key,
    struct pg_buf *out)
{
	char name[NAME_MAX_LEN];
	size_t start = out->len;
	int r;

	host_name(host, port, name, sizeof(name));
	if ((r = pg_buf_printf(out, "%s ", name)) != 0 ||
	    (r = sshkey_write_public(key, NULL, out)) != 0)
		out->len = start;
	return r;
}

int
knownhosts_append_file(const char *path, const char *host, uint16_t port, const struct sshkey *key)
{
	struct pg_buf line;
	int fd, r;

	pg_buf_init(&line, 65536);
	if ((r = knownhosts_format_line(host, port, key, &line)) != 0)
		goto out;
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		r = PG_EIO;
		goto out;
	}
	/* One write() of one line with O_APPEND: lines never interleave. */
	errno = 0;
	if (write(fd, line.p, line.len) != (ssize_t)line.len) {
		int e = errno ? errno : ENOSPC;	/* a short write is a full disk */
		r = PG_EIO;
		close(fd);
		errno = e;	/* the caller's log line says why */
		goto out;
	}
	close(fd);
out:
	pg_buf_free(&line);
	return r;
}
