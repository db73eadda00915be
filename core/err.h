/*
 * One error space for the whole project. Functions that can fail return 0 on success or a negative
 * code: either a PG_E* value below or a libuv error (a negated errno, UV_E*), which never overlap.
 * pg_strerror() names both.
 */
#ifndef PG_CORE_ERR_H
#define PG_CORE_ERR_H

enum {
	PG_OK = 0,
	PG_ENOMEM = -10001,	/* allocation failed */
	PG_EINVAL = -10002,	/* caller passed something invalid */
	PG_EPARSE = -10003,	/* peer or file sent something that does not parse */
	PG_ERANGE = -10004,	/* a value is outside its allowed range */
	PG_ETOOBIG = -10005,	/* input exceeds a configured or protocol limit */
	PG_ETIMEDOUT = -10006,	/* a deadline passed */
	PG_EPROTO = -10007,	/* a peer broke its protocol */
	PG_ENOTFOUND = -10008,	/* no such item */
	PG_EEXIST = -10009,	/* item already exists */
	PG_ETLS = -10010,	/* TLS failure; details are in the OpenSSL error queue */
	PG_ECLOSED = -10011,	/* the peer closed the connection */
	PG_EIO = -10012,	/* file or socket I/O failed */
	PG_ESTATUS = -10013,	/* a peer answered, but with a failure status */
	PG_EAUTH = -10014,	/* a MAC or signature did not verify */
	PG_EEXPIRED = -10015,	/* a credential (cookie, certificate) is past its expiry */
};

/* Returns a static string naming err (a PG_E* or UV_E* code). Never NULL. */
const char *pg_strerror(int err);

#endif
