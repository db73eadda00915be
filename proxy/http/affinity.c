#include "proxy/http/affinity.h"
#include "core/secretfile.h"
#include "core/err.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

struct affinity_key {
	EVP_MAC *mac;
	EVP_MAC_CTX *keyed;	/* HMAC-SHA256 initialised with the secret; duplicated per MAC */
};

void
affinity_key_free(struct affinity_key *k)
{
	if (k == NULL)
		return;
	EVP_MAC_CTX_free(k->keyed);
	EVP_MAC_free(k->mac);
	free(k);
}

int
affinity_key_new(const uint8_t *secret, size_t len, struct affinity_key **out)
{
	struct affinity_key *k;
	OSSL_PARAM params[2];

	if (len != AFFINITY_SECRET_LEN)
		return PG_EINVAL;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return PG_ENOMEM;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((k->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (k->keyed = EVP_MAC_CTX_new(k->mac)) == NULL ||
	    EVP_MAC_init(k->keyed, secret, len, params) != 1) {
		affinity_key_free(k);
		return PG_ETLS;
	}
	*out = k;
	return 0;
}

/* Writes base64url-no-pad(HMAC-SHA256(key, data)) and a NUL into b64 (AFFINITY_MAC_LEN + 1). */
static int
mac_b64(const struct affinity_key *k, const uint8_t *data, size_t len,
    char b64[AFFINITY_MAC_LEN + 1])
{
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(k->keyed);
	unsigned char mac[32], enc[45];	/* EVP_EncodeBlock: 4 * ceil(32 / 3) = 44, plus a NUL */
	size_t maclen = 0;
	int r = PG_ETLS;

	if (ctx == NULL)
		return PG_ETLS;
	if (EVP_MAC_update(ctx, data, len) != 1 || EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) != 1 ||
	    maclen != sizeof(mac))
		goto out;
	if (EVP_EncodeBlock(enc, mac, (int)sizeof(mac)) != 44)
		goto out;
	/* RFC 4648 section 5: the URL-safe alphabet; the one '=' of padding is dropped. */
	for (int i = 0; i < AFFINITY_MAC_LEN; i++)
		b64[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : (char)enc[i];
	b64[AFFINITY_MAC_LEN] = '\0';
	r = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	EVP_MAC_CTX_free(ctx);
	return r;
}

static int
id_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
	    c == '_' || c == '-';
}

static int
valid_id(const uint8_t *p, size_t len)
{
	if (len == 0 || len > PG_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (!id_char(p[i]))
			return 0;
	}
	return 1;
}

int
affinity_mint(const struct affinity_key *k, const char *instance_id, int64_t expiry_s,
    char out[AFFINITY_VALUE_MAX + 1])
{
	char buf[AFFINITY_VALUE_MAX + 1];
	int n, r;

	if (!valid_id((const uint8_t *)instance_id, strlen(instance_id)) || expiry_s < 0)
		return PG_EINVAL;
	n = snprintf(buf, sizeof(buf), "v1.%s.%" PRId64 ".", instance_id, expiry_s);
	if (n < 0 || (size_t)n + AFFINITY_MAC_LEN > AFFINITY_VALUE_MAX)
		return PG_EINVAL;
	if ((r = mac_b64(k, (const uint8_t *)buf, (size_t)n - 1, buf + n)) != 0)
		return r;
	memcpy(out, buf, (size_t)n + AFFINITY_MAC_LEN + 1);
	return 0;
}

/* Parses 1..19 decimal digits without a leading zero (except "0") into *out; 0 on failure. */
static int
parse_expiry(const uint8_t *p, size_t len, int64_t *out)
{
	int64_t v = 0;

	if (len == 0 || len > 19 || (len > 1 && p[0] == '0'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (INT64_MAX - (p[i] - '0')) / 10)
			return 0;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 1;
}

int
affinity_verify(const struct affinity_key *k, struct pg_slice value, int64_t now_s,
    char id[PG_ID_MAX + 1])
{
	char want[AFFINITY_MAC_LEN + 1];
	const uint8_t *p = value.p, *e;
	size_t n = value.len, signed_len, idlen;
	int64_t expiry;
	int r;

	/*
	 * Only the frame is checked before the MAC: the length, the version, and the dot in front of
	 * the last 43 bytes. The shortest signed part is "v1.X.0".
	 */
	if (n < 6 + 1 + AFFINITY_MAC_LEN || n > AFFINITY_VALUE_MAX || memcmp(p, "v1.", 3) != 0)
		return PG_EPARSE;
	signed_len = n - AFFINITY_MAC_LEN - 1;
	if (p[signed_len] != '.')
		return PG_EPARSE;
	if ((r = mac_b64(k, p, signed_len, want)) != 0)
		return r;
	if (CRYPTO_memcmp(want, p + signed_len + 1, AFFINITY_MAC_LEN) != 0)
		return PG_EAUTH;

	/* Authentic from here on: we wrote these bytes. Parse them as strictly as mint() writes. */
	for (e = p + signed_len - 1; e > p + 3 && *e != '.'; e--)
		;
	idlen = (size_t)(e - (p + 3));
	if (e <= p + 3 || !valid_id(p + 3, idlen) ||
	    !parse_expiry(e + 1, (size_t)(p + signed_len - (e + 1)), &expiry))
		return PG_EPARSE;
	if (now_s >= expiry)
		return PG_EEXPIRED;
	memcpy(id, p + 3, idlen);
	id[idlen] = '\0';
	return 0;
}

static int
is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static struct pg_slice
trim(const uint8_t *p, size_t len)
{
	while (len > 0 && is_ows(p[0])) {
		p++;
		len--;
	}
	while (len > 0 && is_ows(p[len - 1]))
		len--;
	return (struct pg_slice){ p, len };
}

int
affinity_cookie_next(struct pg_slice *header, const char *name, struct pg_slice *value)
{
	size_t namelen = strlen(name);

	while (header->len > 0) {
		const uint8_t *semi = memchr(header->p, ';', header->len), *eq;
		size_t pairlen = semi != NULL ? (size_t)(semi - header->p) : header->len;
		struct pg_slice pair = trim(header->p, pairlen), n, v;

		header->p += pairlen + (semi != NULL);
		header->len -= pairlen + (semi != NULL);
		/* RFC 6265 section 5.2 step 2 would give an '='-less pair an empty name; nobody named
		 * a cookie "", so skip it. */
		if (pair.len == 0 || (eq = memchr(pair.p, '=', pair.len)) == NULL)
			continue;
		n = trim(pair.p, (size_t)(eq - pair.p));
		if (n.len != namelen || memcmp(n.p, name, namelen) != 0)
			continue;
		v = trim(eq + 1, (size_t)(pair.p + pair.len - (eq + 1)));
		if (v.len >= 2 && v.p[0] == '"' && v.p[v.len - 1] == '"') {
			v.p++;
			v.len -= 2;
		}
		*value = v;
		return 1;
	}
	return 0;
}

/* RFC 7230 section 3.2.6 tchar. */
static int
tchar(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* RFC 6265 section 4.1.1 cookie-octet: US-ASCII visible characters but DQUOTE , ; and backslash. */
static int
cookie_octet(uint8_t c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
	    (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

int
affinity_set_cookie(struct pg_buf *out, const char *name, const char *value, uint32_t max_age_s)
{
	size_t nlen = strlen(name), vlen = strlen(value);
	struct pg_buf tmp;
	int r;

	if (nlen == 0)
		return PG_EINVAL;
	for (size_t i = 0; i < nlen; i++) {
		if (!tchar((uint8_t)name[i]))
			return PG_EINVAL;
	}
	for (size_t i = 0; i < vlen; i++) {
		if (!cookie_octet((uint8_t)value[i]))
			return PG_EINVAL;
	}
	/* Built apart and appended once, so a failure leaves out as it was. */
	pg_buf_init(&tmp, out->max);
	if ((r = pg_buf_append(&tmp, name, nlen)) == 0 && (r = pg_buf_append(&tmp, "=", 1)) == 0 &&
	    (r = pg_buf_append(&tmp, value, vlen)) == 0 &&
	    (r = pg_buf_append_str(&tmp, "; Path=/; Max-Age=")) == 0 &&
	    (r = pg_buf_append_uint(&tmp, max_age_s)) == 0)
		r = pg_buf_append_str(&tmp, "; Secure; HttpOnly; SameSite=Lax");
	if (r == 0)
		r = pg_buf_append(out, tmp.p, tmp.len);
	pg_buf_free(&tmp);
	return r;
}

/* ---- The secret file ---- */

static void
errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Reads exactly len bytes; 0 or -1 (errno set; EIO for a short file). */
static int
read_full(int fd, uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
write_full(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Returns 0, PG_ENOTFOUND (no such file; err untouched), or an error with err filled in. */
static int
read_secret(const char *path, uint8_t secret[AFFINITY_SECRET_LEN], char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), r = PG_EIO;

	if (fd < 0) {
		if (errno == ENOENT)
			return PG_ENOTFOUND;
		errf(err, errlen, "%s: %s", path, strerror(errno));
		return PG_EIO;
	}
	/* Anyone who reads it can mint cookies; anyone who writes it can swap it. */
	if ((r = pg_secret_check_fd(fd, path, "cookie secret", err, errlen)) != 0)
		goto out;
	r = PG_EIO;
	if (fstat(fd, &st) != 0) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
	} else if (st.st_size != AFFINITY_SECRET_LEN) {
		errf(err, errlen, "%s: expected %d bytes, found %lld; remove it to make a new secret",
		    path, AFFINITY_SECRET_LEN, (long long)st.st_size);
		r = PG_EINVAL;
	} else if (read_full(fd, secret, AFFINITY_SECRET_LEN) != 0) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
	} else {
		r = 0;
	}
out:
	close(fd);
	return r;
}

static int
create_secret(const char *dir, const char *path, char *err, size_t errlen)
{
	uint8_t secret[AFFINITY_SECRET_LEN];
	char tmp[4096];
	int fd = -1, dfd, r = PG_EIO;

	if (RAND_bytes(secret, sizeof(secret)) != 1) {
		errf(err, errlen, "%s: RAND_bytes failed", path);
		return PG_ETLS;
	}
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.tmp", dir, AFFINITY_SECRET_FILE,
	    (long)getpid()) >= (int)sizeof(tmp)) {
		errf(err, errlen, "%s: path too long", dir);
		r = PG_EINVAL;
		goto out;
	}
	/* A temporary file of ours left by a crash under the same pid is stale: one retry. */
	for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 && (errno != EEXIST || attempt == 1 || unlink(tmp) != 0))
			break;
	}
	if (fd < 0) {
		errf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (write_full(fd, secret, sizeof(secret)) != 0 || fsync(fd) != 0) {
		errf(err, errlen, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	/*
	 * link() rather than rename(): rename would replace a secret another poolgate created in the
	 * meantime and that it may already use. EEXIST means exactly that; the caller reads theirs.
	 * A file system without hard links (EPERM, ENOTSUP) gets rename().
	 */
	if (link(tmp, path) != 0 && errno != EEXIST) {
		if ((errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP) || rename(tmp, path) != 0) {
			errf(err, errlen, "%s: %s", path, strerror(errno));
			unlink(tmp);
			goto out;
		}
	}
	unlink(tmp);
	/* The new name must survive a crash too, or the next start makes another secret. */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	LOG_NOTICE("affinity", "created a new cookie secret in %s", path);
	r = 0;
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	return r;
}

/* affinity_key_load(); with ephemeral != NULL a secret that cannot be written lives in memory. */
static int
key_load(const char *state_dir, struct affinity_key **out, int *ephemeral, char *err,
    size_t errlen)
{
	uint8_t secret[AFFINITY_SECRET_LEN];
	char path[4096];
	int r;

	if (snprintf(path, sizeof(path), "%s/%s", state_dir, AFFINITY_SECRET_FILE) >=
	    (int)sizeof(path)) {
		errf(err, errlen, "%s: path too long", state_dir);
		return PG_EINVAL;
	}
	r = read_secret(path, secret, err, errlen);
	if (r == PG_ENOTFOUND && (r = create_secret(state_dir, path, err, errlen)) == 0) {
		/* Read back what is on disk: ours, or the one another process linked first. */
		if ((r = read_secret(path, secret, err, errlen)) == PG_ENOTFOUND) {
			errf(err, errlen, "%s: vanished right after it was created", path);
			r = PG_EIO;
		}
	} else if (r == PG_EIO && ephemeral != NULL && access(path, F_OK) != 0 && errno == ENOENT) {
		/* No secret on disk and none can be written (state_dir full or read-only). */
		if (RAND_bytes(secret, sizeof(secret)) != 1) {
			errf(err, errlen, "%s: RAND_bytes failed", path);
			r = PG_ETLS;
		} else {
			*ephemeral = 1;
			r = 0;
		}
	}
	if (r == 0 && (r = affinity_key_new(secret, sizeof(secret), out)) != 0)
		errf(err, errlen, "%s: cannot set up HMAC-SHA256: %s", path, pg_strerror(r));
	OPENSSL_cleanse(secret, sizeof(secret));
	return r;
}

int
affinity_key_load(const char *state_dir, struct affinity_key **out, char *err, size_t errlen)
{
	return key_load(state_dir, out, NULL, err, errlen);
}

int
affinity_key_load_or_ephemeral(const char *state_dir, struct affinity_key **out, int *ephemeral,
    char *err, size_t errlen)
{
	*ephemeral = 0;
	return key_load(state_dir, out, ephemeral, err, errlen);
}
