/*
 * Bearer tokens of the admin API (RFC 6750): the token file both poolgate and poolgatectl read,
 * the Authorization header poolgate checks, and the constant-time check itself.
 *
 * A token is PG_TOKEN_MIN..PG_TOKEN_MAX characters of RFC 6750's b64token alphabet
 * (A-Z a-z 0-9 - . _ ~ + /, then optional trailing '='), so it travels in a header unchanged and
 * `openssl rand -hex 32` or `-base64 32` makes one. A token file holds the token alone, optionally
 * followed by one line end (LF or CRLF).
 */
#ifndef PG_CORE_TOKEN_H
#define PG_CORE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define PG_TOKEN_MIN 16
#define PG_TOKEN_MAX 1024
#define PG_TOKEN_DIGEST_LEN 32	/* SHA-256 */

/*
 * Parses the contents of a token file. On success returns 0 and sets *tok to the token inside
 * text (borrowed). Otherwise returns PG_EPARSE and sets *why to a static reason for the message.
 */
int pg_token_parse_file(const char *text, size_t len, struct pg_slice *tok, const char **why);

/*
 * Parses an Authorization header value: the scheme "Bearer" (any case, RFC 7235 2.1), one or more
 * spaces, a token; spaces or tabs around it are allowed. Returns 0 and sets *tok (borrowed), or
 * PG_EPARSE (another scheme, no token, a malformed token).
 */
int pg_token_parse_authorization(const char *value, size_t len, struct pg_slice *tok);

/* SHA-256 of the token (EVP). Returns 0 or PG_ENOMEM. */
int pg_token_digest(struct pg_slice tok, uint8_t out[PG_TOKEN_DIGEST_LEN]);

/*
 * 1 when presented is the token whose digest is given, else 0. The compare runs over the two
 * digests with CRYPTO_memcmp: equal lengths whatever was presented, constant time, so the timing
 * tells neither the token's length nor where a guess differs.
 */
int pg_token_matches(const uint8_t digest[PG_TOKEN_DIGEST_LEN], struct pg_slice presented);

/*
 * Reads the token file at path (blocking: start-up, the thread pool, or a CLI) into tok (a buffer
 * of PG_TOKEN_MAX + 1 bytes, NUL-terminated on success) and sets *toklen. With private=1 the file
 * must be a regular file that group and others cannot access at all (mode 0600 or 0400): a token
 * others can read is no secret. Returns 0, or a negative code with "PATH: why" in err. The
 * caller should OPENSSL_cleanse(tok) once done with it.
 */
int pg_token_read_file(const char *path, int private, char *tok, size_t *toklen, char *err,
    size_t errlen);

#endif
