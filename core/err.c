#include "core/err.h"

#include <uv.h>

const char *
pg_strerror(int err)
{
	switch (err) {
	case PG_OK: return "success";
	case PG_ENOMEM: return "out of memory";
	case PG_EINVAL: return "invalid argument";
	case PG_EPARSE: return "parse error";
	case PG_ERANGE: return "value out of range";
	case PG_ETOOBIG: return "too big";
	case PG_ETIMEDOUT: return "timed out";
	case PG_EPROTO: return "protocol error";
	case PG_ENOTFOUND: return "not found";
	case PG_EEXIST: return "already exists";
	case PG_ETLS: return "TLS error";
	case PG_ECLOSED: return "connection closed by peer";
	case PG_EIO: return "I/O error";
	case PG_ESTATUS: return "unexpected status";
	case PG_EAUTH: return "authentication failed";
	case PG_EEXPIRED: return "expired";
	}
	if (err < 0 && err > -10000)
		return uv_strerror(err);
	return "unknown error";
}
