/*
 * Who is this request for? The JupyterHub username, learnt from what the request itself says, so the
 * front door can route it by the user's pin. Pure functions over slices; nothing here is
 * authentication (JupyterHub still checks its own cookies and the password), it only decides which
 * instance gets to check.
 *
 * Names are normalised the way JupyterHub 3.0 does for its default authenticators
 * (Authenticator.normalize_username: str.lower(), then username_map, which poolgate does not know
 * and so must be empty) and checked as Authenticator.validate_username does (not empty, no '/', no
 * leading or trailing whitespace). poolgate folds ASCII only:
 *   - names in URLs are the already-normalised names JupyterHub put there; non-ASCII (valid UTF-8)
 *     passes unchanged, ASCII capitals are folded;
 *   - a name typed into the login form that holds any non-ASCII byte is refused with PG_ERANGE,
 *     because Python's Unicode lower() cannot be reproduced here ("É" -> "é", the Kelvin sign -> "k"),
 *     and a wrong guess would pin a user who does not exist. The request is then routed without a
 *     name, and the name is learnt from the /hub/spawn-pending/ or /user/ URL JupyterHub redirects to.
 * Control bytes (NUL included) and '/' are refused everywhere, as are invalid percent escapes and
 * invalid UTF-8 (overlong forms such as %C0%AF for '/', surrogates, beyond U+10FFFF). At most
 * IDENTITY_USER_MAX bytes after decoding. JupyterHub's base_url is assumed to be "/".
 */
#ifndef PG_PROXY_HTTP_IDENTITY_H
#define PG_PROXY_HTTP_IDENTITY_H

#include "core/buf.h"

#define IDENTITY_USER_MAX 255	/* bytes, without the NUL; the same as PIN_USER_MAX */
#define IDENTITY_FORM_MAX 8192	/* login form bodies longer than this are not looked at */

/*
 * Finds the username in a request target (origin-form; the query and fragment are ignored) of one
 * of JupyterHub's per-user routes:
 *     /user/<name>[/...]                  /hub/user/<name>[/...]
 *     /hub/spawn/<name>[/<server>]        /hub/spawn-pending/<name>[/<server>]
 *     /hub/api/users/<name>[/...]
 * The route prefixes match byte for byte, as Tornado's routing does on the raw path; the name is the
 * percent-decoded segment ('+' stays '+', as in Tornado's path arguments). /user-redirect/ and
 * every other path name nobody.
 *
 * Returns 1 and writes the normalised name (NUL-terminated) into user; 0 when the path names nobody
 * (also an empty name segment); PG_EPARSE when the segment is not a valid name; PG_ETOOBIG when it
 * decodes to more than IDENTITY_USER_MAX bytes. user is written only when 1 is returned.
 */
int identity_from_path(struct pg_slice target, char user[IDENTITY_USER_MAX + 1]);

/*
 * Finds the username in an application/x-www-form-urlencoded body of POST /hub/login (field
 * "username"; names and values percent-decoded, '+' as space). Like Tornado's get_argument(), the
 * last "username" field wins and surrounding whitespace is stripped. Fields other than the username
 * (the password) are never decoded.
 *
 * Returns 1 and writes the normalised name into user; 0 when there is no username field or it is
 * empty; PG_ETOOBIG when the body is longer than IDENTITY_FORM_MAX or the name than
 * IDENTITY_USER_MAX; PG_ERANGE for a non-ASCII name (see above); PG_EPARSE for an invalid one.
 */
int identity_from_form(struct pg_slice body, char user[IDENTITY_USER_MAX + 1]);

/* Returns 1 when method and target are a login form submission: POST /hub/login[?query]. */
int identity_is_login(struct pg_slice method, struct pg_slice target);

#endif
