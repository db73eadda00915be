/*
 * poolgate's affinity cookie: which instance an anonymous browser was sent to, so its next request
 * (before anyone knows who the user is) goes to the same JupyterHub. JupyterHub's own cookies are
 * per instance and never used for routing. A known user's pin wins over this cookie.
 *
 * Value (ASCII, all cookie-octets, RFC 6265 section 4.1.1):
 *
 *     v1.<instance-id>.<expiry>.<mac>
 *
 *   v1           format version; anything else is malformed.
 *   instance-id  1..PG_ID_MAX bytes of [A-Za-z0-9._-]; it may contain dots, so the value is split
 *                from the right: the mac is the last 43 bytes, the expiry sits between the two last
 *                dots.
 *   expiry       Unix time in seconds, decimal, no sign, no leading zeros; the cookie is valid while
 *                now < expiry.
 *   mac          base64url without padding (RFC 4648 section 5) of
 *                HMAC-SHA256(secret, "v1." instance-id "." expiry), i.e. of every byte before the last
 *                dot. Always 43 characters.
 *
 * Example: v1.demo-2.1767225600.<43 characters of MAC>
 *
 * affinity_verify() checks the MAC (in constant time, CRYPTO_memcmp) before it looks at the id or the
 * expiry, so no byte chosen by a browser is interpreted unless poolgate wrote it.
 *
 * The secret is 32 random bytes in <state_dir>/cookie_secret (mode 0600), made on first start.
 * Changing it logs everybody's browser out of its affinity (not out of JupyterHub): their next
 * request is placed afresh.
 */
#ifndef PG_PROXY_HTTP_AFFINITY_H
#define PG_PROXY_HTTP_AFFINITY_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"

#define AFFINITY_COOKIE_NAME "poolgate_affinity"
#define AFFINITY_SECRET_FILE "cookie_secret"
#define AFFINITY_SECRET_LEN 32
#define AFFINITY_MAC_LEN 43	/* base64url, no padding, of 32 bytes */
/* The longest value affinity_mint() writes, without the NUL: "v1." id "." 19 digits "." mac. */
#define AFFINITY_VALUE_MAX (3 + PG_ID_MAX + 1 + 19 + 1 + AFFINITY_MAC_LEN)

/* A loaded secret, ready to compute MACs. Opaque; one per process, shared by all connections. */
struct affinity_key;

/*
 * Makes a key from len bytes of secret (len must be AFFINITY_SECRET_LEN). On success sets *out (free
 * with affinity_key_free()) and returns 0; otherwise PG_EINVAL, PG_ENOMEM or PG_ETLS.
 */
int affinity_key_new(const uint8_t *secret, size_t len, struct affinity_key **out);

/*
 * Reads <state_dir>/cookie_secret, creating it first if it does not exist: 32 bytes from RAND_bytes
 * written to a temporary file opened with O_EXCL and mode 0600, fsync'd, then linked into place
 * (link() fails if another process made the file meanwhile, and then that file is used; on file
 * systems without hard links, rename()). Refuses a file that is not a regular file, that grants any
 * permission to group or others, or that is not exactly 32 bytes. Synchronous: call at start-up,
 * before the loop runs. The directory must exist.
 *
 * On success sets *out and returns 0. On failure writes a message naming the file into err and
 * returns PG_EIO (a system call failed), PG_EINVAL (bad mode or size, or not a regular file),
 * PG_ENOMEM or PG_ETLS.
 */
int affinity_key_load(const char *state_dir, struct affinity_key **out, char *err, size_t errlen);

/*
 * As affinity_key_load(), except that when no secret file exists and none can be created (a
 * state_dir that is full or read-only), a random secret is made in memory: returns 0, sets
 * *ephemeral to 1 and leaves the reason in err for the caller's warning. Cookies signed with it
 * do not survive a restart. A file that exists but cannot be read or is refused still fails.
 */
int affinity_key_load_or_ephemeral(const char *state_dir, struct affinity_key **out,
    int *ephemeral, char *err, size_t errlen);

void affinity_key_free(struct affinity_key *k);	/* NULL is fine */

/*
 * Writes the cookie value for instance_id, valid until expiry_s, into out (NUL-terminated).
 * Returns 0, PG_EINVAL (instance_id is not 1..PG_ID_MAX bytes of [A-Za-z0-9._-], or expiry_s < 0)
 * or PG_ETLS.
 */
int affinity_mint(const struct affinity_key *k, const char *instance_id, int64_t expiry_s,
    char out[AFFINITY_VALUE_MAX + 1]);

/*
 * Checks a cookie value at time now_s. On success copies the instance id (NUL-terminated) into id
 * and returns 0. Otherwise returns PG_EPARSE (malformed), PG_EAUTH (the MAC does not match: forged,
 * tampered, truncated, or made with another secret), PG_EEXPIRED (now_s >= expiry) or PG_ETLS /
 * PG_ENOMEM; id is then untouched.
 */
int affinity_verify(const struct affinity_key *k, struct pg_slice value, int64_t now_s,
    char id[PG_ID_MAX + 1]);

/*
 * Cookie request header parsing (RFC 6265 section 5.4 / 4.2.1): finds the next cookie called name
 * in *header (the value of one Cookie header field), tolerating what browsers send: spaces or tabs
 * around pairs, a missing space after ';', pairs without '=' (skipped). A value in double quotes is
 * returned without them. Names compare case-sensitively. On a match sets *value (a slice of the
 * header), advances *header past the pair and returns 1; returns 0 when there is none left. Call
 * again to see later cookies of the same name (a browser may send two, from different paths or
 * domains).
 */
int affinity_cookie_next(struct pg_slice *header, const char *name, struct pg_slice *value);

/*
 * Appends a Set-Cookie field value (no field name, no CRLF) to out:
 *     <name>=<value>; Path=/; Max-Age=<max_age_s>; Secure; HttpOnly; SameSite=Lax
 * Max-Age 0 removes the cookie. Returns 0, PG_EINVAL (name is not an RFC 7230 token or value holds
 * a byte that is not a cookie-octet), PG_ETOOBIG or PG_ENOMEM (out unchanged).
 */
int affinity_set_cookie(struct pg_buf *out, const char *name, const char *value,
    uint32_t max_age_s);

#endif
