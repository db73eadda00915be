#include "proxy/ssh/audit.h"
#include "core/log.h"
#include "core/sshwire.h"

#include <stdio.h>
#include <string.h>

void
audit_start(struct ssh_audit *a, uint64_t now)
{
	memset(a, 0, sizeof(*a));
	a->start_ms = now;
}

/* The method name of a USERAUTH_REQUEST, or -1 when it is malformed or not a plain token. */
static int
method_of(struct pg_slice payload, char *out, size_t outlen)
{
	struct pg_slice s = payload, user, service, method;
	uint8_t type;

	/* byte SSH_MSG_USERAUTH_REQUEST, string user name, string service, string method */
	if (ssh_get_u8(&s, &type) != 0 || ssh_get_string(&s, &user) != 0 ||
	    ssh_get_string(&s, &service) != 0 || ssh_get_string(&s, &method) != 0 ||
	    method.len == 0 || method.len >= outlen)
		return -1;
	for (size_t i = 0; i < method.len; i++) {
		/* Method names are US-ASCII without controls or commas (RFC 4250 4.6.1). */
		if (method.p[i] <= 0x20 || method.p[i] >= 0x7f || method.p[i] == ',')
			return -1;
	}
	memcpy(out, method.p, method.len);
	out[method.len] = '\0';
	return 0;
}

void
audit_request(struct ssh_audit *a, struct pg_slice payload)
{
	char m[32], *p = a->methods;
	size_t mlen, have = strlen(a->methods);

	if (method_of(payload, m, sizeof(m)) != 0)
		return;
	mlen = strlen(m);
	/* Each name once: look for it between commas. */
	while (*p != '\0') {
		size_t len = strcspn(p, ",");

		if (len == mlen && memcmp(p, m, mlen) == 0)
			return;
		p += len + (p[len] == ',');
	}
	if (have + 1 + mlen < sizeof(a->methods))
		snprintf(a->methods + have, sizeof(a->methods) - have, "%s%s", have ? "," : "", m);
}

void
audit_success(struct ssh_audit *a, struct pg_slice payload)
{
	if (method_of(payload, a->auth, sizeof(a->auth)) != 0)
		snprintf(a->auth, sizeof(a->auth), "?");
}

void
audit_close(struct ssh_audit *a, const char *why, uint64_t now)
{
	if (a->reason[0] != '\0')
		return;
	snprintf(a->reason, sizeof(a->reason), "%s", why);
	a->end_ms = now;
}

static const char *
or_dash(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : "-";
}

void
audit_log(const struct ssh_audit *a, const char *log_prefix, const char *user, const char *src,
    const char *instance, const char *via)
{
	struct pg_log_field f[12];
	size_t n = 0;

	f[n++] = (struct pg_log_field){ "user", or_dash(user), 0 };
	f[n++] = (struct pg_log_field){ "src", or_dash(src), 0 };
	if (via != NULL && via[0] != '\0')
		f[n++] = (struct pg_log_field){ "via", via, 0 };
	f[n++] = (struct pg_log_field){ "instance", or_dash(instance), 0 };
	f[n++] = (struct pg_log_field){ "methods", or_dash(a->methods), 0 };
	f[n++] = (struct pg_log_field){ "auth", or_dash(a->auth), 0 };
	f[n++] = (struct pg_log_field){ "failures", NULL, a->failures };
	f[n++] = (struct pg_log_field){ "duration_ms", NULL,
		a->end_ms > a->start_ms ? a->end_ms - a->start_ms : 0 };
	f[n++] = (struct pg_log_field){ "bytes_up", NULL, a->bytes_up };
	f[n++] = (struct pg_log_field){ "bytes_down", NULL, a->bytes_down };
	f[n++] = (struct pg_log_field){ "reason", a->reason[0] ? a->reason : "closed", 0 };
	pg_log_fields(PG_LOG_INFO, log_prefix, "audit", f, n);
}
