/*
 * Config parsing. Each JSON object is read by one function that first rejects keys it does not know
 * (and duplicates, which cJSON would silently shadow), then reads each known key with a typed getter.
 * Getters take the object's JSON path so every message names where the problem is.
 */
#include "core/config.h"
#include "core/addr.h"
#include "core/err.h"
#include "core/fileread.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_MAX_LEN 256

/* Parsing context: the first error wins; later getters become no-ops once one failed. */
struct pctx {
	char *err;
	size_t errlen;
	int failed;
	int nomem;
	char *field;		/* when not NULL: gets the path of the first error alone */
	size_t fieldlen;
};

static void __attribute__((format(printf, 3, 4)))
fail(struct pctx *c, const char *path, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (c->failed)
		return;
	c->failed = 1;
	if (c->field != NULL)
		snprintf(c->field, c->fieldlen, "%s", path);
	n = (size_t)snprintf(c->err, c->errlen, "%s: ", path[0] ? path : "(top level)");
	if (n >= c->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - n, fmt, ap);
	va_end(ap);
}

static char *
xstrdup(struct pctx *c, const char *s)
{
	char *d = strdup(s);

	if (d == NULL && !c->failed) {
		c->nomem = 1;
		fail(c, "", "out of memory");
	}
	return d;
}

/* Paths longer than PATH_MAX_LEN end in "..."; they are only for messages. */
static void
mark_truncated(char *out, int n)
{
	if (n >= PATH_MAX_LEN)
		memcpy(out + PATH_MAX_LEN - 4, "...", 4);
}

static void
join(char *out, const char *path, const char *key)
{
	mark_truncated(out, snprintf(out, PATH_MAX_LEN, "%s%s%s", path, path[0] ? "." : "", key));
}

static void
join_index(char *out, const char *path, size_t i)
{
	mark_truncated(out, snprintf(out, PATH_MAX_LEN, "%s[%zu]", path, i));
}

/* Rejects keys of obj not in allowed (NULL-terminated) and keys given twice. */
static void
check_keys(struct pctx *c, const cJSON *obj, const char *path, const char *const *allowed)
{
	char kp[PATH_MAX_LEN];

	if (c->failed)
		return;
	for (const cJSON *it = obj->child; it != NULL; it = it->next) {
		int known = 0;
		join(kp, path, it->string);
		for (const char *const *a = allowed; *a != NULL; a++)
			known |= strcmp(*a, it->string) == 0;
		if (!known) {
			fail(c, kp, "unknown key");
			return;
		}
		for (const cJSON *prev = obj->child; prev != it; prev = prev->next) {
			if (strcmp(prev->string, it->string) == 0) {
				fail(c, kp, "duplicate key");
				return;
			}
		}
	}
}

static const cJSON *
get_object(struct pctx *c, const cJSON *obj, const char *key, const char *path)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char kp[PATH_MAX_LEN];

	if (c->failed || v == NULL)
		return NULL;
	if (!cJSON_IsObject(v)) {
		join(kp, path, key);
		fail(c, kp, "expected an object");
		return NULL;
	}
	return v;
}

/* Reads a string; *out is replaced only when the key is present. */
static void
get_string(struct pctx *c, const cJSON *obj, const char *key, const char *path, int required,
    char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char kp[PATH_MAX_LEN];

	if (c->failed)
		return;
	join(kp, path, key);
	if (v == NULL) {
		if (required)
			fail(c, kp, "required");
		return;
	}
	if (!cJSON_IsString(v)) {
		fail(c, kp, "expected a string");
		return;
	}
	if (v->valuestring[0] == '\0') {
		fail(c, kp, "must not be empty");
		return;
	}
	free(*out);
	*out = xstrdup(c, v->valuestring);
}

static void
get_uint(struct pctx *c, const cJSON *obj, const char *key, const char *path, uint32_t min,
    uint32_t max, uint32_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char kp[PATH_MAX_LEN];
	double d;

	if (c->failed || v == NULL)
		return;
	join(kp, path, key);
	d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
	if (!cJSON_IsNumber(v) || d != floor(d) || d < min || d > max) {
		fail(c, kp, "expected an integer in %u..%u", min, max);
		return;
	}
	*out = (uint32_t)d;
}

/* A number (integer or fraction) in min..max. */
static void
get_double(struct pctx *c, const cJSON *obj, const char *key, const char *path, double min,
    double max, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char kp[PATH_MAX_LEN];

	if (c->failed || v == NULL)
		return;
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= min && v->valuedouble <= max)) {
		join(kp, path, key);
		fail(c, kp, "expected a number in %g..%g", min, max);
		return;
	}
	*out = v->valuedouble;
}

static void
get_port(struct pctx *c, const cJSON *obj, const char *key, const char *path, uint16_t *out)
{
	uint32_t v = *out;

	get_uint(c, obj, key, path, 1, 65535, &v);
	*out = (uint16_t)v;
}

static void
get_bool(struct pctx *c, const cJSON *obj, const char *key, const char *path, int *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char kp[PATH_MAX_LEN];

	if (c->failed || v == NULL)
		return;
	if (!cJSON_IsBool(v)) {
		join(kp, path, key);
		fail(c, kp, "expected true or false");
		return;
	}
	*out = cJSON_IsTrue(v);
}

/* Reads one of choices[] and stores its index. */
static void
get_enum(struct pctx *c, const cJSON *obj, const char *key, const char *path,
    const char *const *choices, int *out)
{
	char *s = NULL, kp[PATH_MAX_LEN], list[128] = "";

	get_string(c, obj, key, path, 0, &s);
	if (s == NULL)
		return;
	for (int i = 0; choices[i] != NULL; i++) {
		if (strcmp(s, choices[i]) == 0) {
			*out = i;
			free(s);
			return;
		}
		if (snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"",
		    i ? ", " : "", choices[i]) < 0)
			break;
	}
	join(kp, path, key);
	fail(c, kp, "expected one of %s", list);
	free(s);
}

/* Reads an array of non-empty strings; allow_empty says whether [] is valid. */
static void
get_string_array_ex(struct pctx *c, const cJSON *obj, const char *key, const char *path,
    int allow_empty, char ***out, size_t *nout)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char kp[PATH_MAX_LEN], ip[PATH_MAX_LEN];
	char **arr;
	size_t n = 0, i = 0;

	if (c->failed || v == NULL)
		return;
	join(kp, path, key);
	if (!cJSON_IsArray(v) || ((n = (size_t)cJSON_GetArraySize(v)) == 0 && !allow_empty)) {
		fail(c, kp, allow_empty ? "expected an array of strings" :
		    "expected a non-empty array of strings");
		return;
	}
	if ((arr = calloc(n ? n : 1, sizeof(*arr))) == NULL) {
		c->nomem = 1;
		fail(c, kp, "out of memory");
		return;
	}
	for (const cJSON *it = v->child; it != NULL; it = it->next, i++) {
		join_index(ip, kp, i);
		if (!cJSON_IsString(it) || it->valuestring[0] == '\0') {
			fail(c, ip, "expected a non-empty string");
			break;
		}
		arr[i] = xstrdup(c, it->valuestring);
	}
	if (c->failed) {
		for (i = 0; i < n; i++)
			free(arr[i]);
		free(arr);
		return;
	}
	for (i = 0; i < *nout; i++)
		free((*out)[i]);
	free(*out);
	*out = arr;
	*nout = n;
}

static void
get_string_array(struct pctx *c, const cJSON *obj, const char *key, const char *path,
    char ***out, size_t *nout)
{
	get_string_array_ex(c, obj, key, path, 0, out, nout);
}

/* listen.<key>: an array of "ip:port"; [] turns that listener off. */
static void
get_listen(struct pctx *c, const cJSON *obj, const char *key, int allow_empty, char ***out,
    size_t *nout)
{
	char kp[PATH_MAX_LEN], ip[PATH_MAX_LEN];
	struct sockaddr_storage ss;

	get_string_array_ex(c, obj, key, "listen", allow_empty, out, nout);
	for (size_t i = 0; i < *nout && !c->failed; i++) {
		if (pg_addr_parse_hostport((*out)[i], &ss) != 0) {
			join(ip, "listen", key);
			join_index(kp, ip, i);
			fail(c, kp, "expected \"ip:port\" or \"[ipv6]:port\", got \"%s\"", (*out)[i]);
		}
	}
}

int
inst_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > PG_ID_MAX)
		return 0;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		    *s == '.' || *s == '_' || *s == '-'))
			return 0;
	}
	return 1;
}

static const char *const admin_names[] = { "active", "draining", "maint", NULL };
static const char *const check_names[] = { "tcp", "ssh", "http", NULL };
static const char *const load_auth_names[] = { "certificate", "key", NULL };

const char *
load_auth_name(enum load_auth a)
{
	return (unsigned)a < 2 ? load_auth_names[a] : "?";
}

const char *
inst_admin_name(enum inst_admin a)
{
	return (unsigned)a < 3 ? admin_names[a] : "?";
}

const char *
probe_check_name(enum probe_check k)
{
	return (unsigned)k < PROBE_NCHECKS ? check_names[k] : "?";
}

static void
parse_labels(struct pctx *c, const cJSON *v, const char *path, struct inst_conf *ic)
{
	char kp[PATH_MAX_LEN];
	size_t n;

	if (c->failed || v == NULL)
		return;
	if (!cJSON_IsObject(v)) {
		fail(c, path, "expected an object of string values");
		return;
	}
	n = (size_t)cJSON_GetArraySize(v);
	if (n == 0)
		return;
	if ((ic->labels = calloc(n, sizeof(*ic->labels))) == NULL) {
		c->nomem = 1;
		fail(c, path, "out of memory");
		return;
	}
	for (const cJSON *it = v->child; it != NULL && !c->failed; it = it->next) {
		join(kp, path, it->string);
		if (!cJSON_IsString(it)) {
			fail(c, kp, "expected a string");
			break;
		}
		for (size_t j = 0; j < ic->nlabels; j++) {
			if (strcmp(ic->labels[j].key, it->string) == 0)
				fail(c, kp, "duplicate key");
		}
		if (c->failed)
			break;
		ic->labels[ic->nlabels].key = xstrdup(c, it->string);
		ic->labels[ic->nlabels].value = xstrdup(c, it->valuestring);
		ic->nlabels++;
	}
}

static void
parse_instance(struct pctx *c, const cJSON *v, const char *path, struct inst_conf *ic)
{
	static const char *const keys[] = { "id", "address", "ssh_port", "http_port", "http_tls",
		"http_tls_verify", "http_ca_file", "capacity", "admin_state", "labels", NULL };
	struct sockaddr_storage ss;
	char kp[PATH_MAX_LEN];
	int admin = INST_ACTIVE;

	memset(ic, 0, sizeof(*ic));
	ic->ssh_port = 22;
	ic->http_port = 8000;
	ic->http_tls_verify = 1;
	ic->capacity = 8;
	if (!cJSON_IsObject(v)) {
		fail(c, path, "expected an object");
		return;
	}
	check_keys(c, v, path, keys);
	get_string(c, v, "id", path, 1, &ic->id);
	if (!c->failed && !inst_id_ok(ic->id)) {
		join(kp, path, "id");
		fail(c, kp, "expected 1..%d characters from A-Z a-z 0-9 . _ -", PG_ID_MAX);
	}
	get_string(c, v, "address", path, 1, &ic->address);
	if (!c->failed && pg_addr_from_ip(ic->address, 1, &ss) != 0) {
		join(kp, path, "address");
		fail(c, kp, "expected an IPv4 or IPv6 address, got \"%s\"", ic->address);
	}
	get_port(c, v, "ssh_port", path, &ic->ssh_port);
	get_port(c, v, "http_port", path, &ic->http_port);
	get_bool(c, v, "http_tls", path, &ic->http_tls);
	get_bool(c, v, "http_tls_verify", path, &ic->http_tls_verify);
	get_string(c, v, "http_ca_file", path, 0, &ic->http_ca_file);
	get_uint(c, v, "capacity", path, 1, 100000, &ic->capacity);
	get_enum(c, v, "admin_state", path, admin_names, &admin);
	ic->admin = (enum inst_admin)admin;
	join(kp, path, "labels");
	parse_labels(c, cJSON_GetObjectItemCaseSensitive(v, "labels"), kp, ic);
	if (!c->failed && ic->http_ca_file != NULL && !ic->http_tls) {
		join(kp, path, "http_ca_file");
		fail(c, kp, "only meaningful with \"http_tls\": true");
	}
}

/* Parses an array of instances at obj[key]; ids must be unique within it. */
static void
parse_instances(struct pctx *c, const cJSON *obj, const char *key, const char *path,
    struct inst_conf **out, size_t *nout)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char kp[PATH_MAX_LEN], ip[PATH_MAX_LEN];
	struct inst_conf *arr;
	size_t n, i = 0;

	if (c->failed || v == NULL)
		return;
	join(kp, path, key);
	if (!cJSON_IsArray(v)) {
		fail(c, kp, "expected an array of instance objects");
		return;
	}
	n = (size_t)cJSON_GetArraySize(v);
	if (n == 0)
		return;
	if ((arr = calloc(n, sizeof(*arr))) == NULL) {
		c->nomem = 1;
		fail(c, kp, "out of memory");
		return;
	}
	for (const cJSON *it = v->child; it != NULL && !c->failed; it = it->next, i++) {
		join_index(ip, kp, i);
		parse_instance(c, it, ip, &arr[i]);
		for (size_t j = 0; j < i && !c->failed; j++) {
			if (strcmp(arr[j].id, arr[i].id) == 0) {
				char idp[PATH_MAX_LEN];
				join(idp, ip, "id");
				fail(c, idp, "duplicate instance id \"%s\" (also %s[%zu])", arr[i].id, kp, j);
			}
		}
	}
	if (c->failed) {
		inst_conf_free_array(arr, n);
		return;
	}
	*out = arr;
	*nout = n;
}

/* health.load: the load probe. */
static void
parse_load(struct pctx *c, const cJSON *v, struct load_conf *l)
{
	static const char *const keys[] = { "enabled", "interval_ms", "timeout_ms", "user", "auth",
		"key", "command", NULL };
	const char *path = "health.load";
	char kp[PATH_MAX_LEN];
	int e = (int)l->auth;

	if (c->failed || v == NULL)
		return;
	check_keys(c, v, path, keys);
	get_bool(c, v, "enabled", path, &l->enabled);
	get_uint(c, v, "interval_ms", path, 1000, 3600000, &l->interval_ms);
	get_uint(c, v, "timeout_ms", path, 100, 600000, &l->timeout_ms);
	get_string(c, v, "user", path, 0, &l->user);
	get_enum(c, v, "auth", path, load_auth_names, &e);
	l->auth = (enum load_auth)e;
	get_string(c, v, "key", path, 0, &l->key);
	get_string(c, v, "command", path, 0, &l->command);
	if (c->failed)
		return;
	if (l->timeout_ms >= l->interval_ms) {
		join(kp, path, "timeout_ms");
		fail(c, kp, "must be less than interval_ms (%u)", l->interval_ms);
	} else if (l->enabled && l->user == NULL) {
		join(kp, path, "user");
		fail(c, kp, "required when the load probe is enabled");
	} else if (l->auth == LOAD_AUTH_KEY && l->key == NULL) {
		join(kp, path, "key");
		fail(c, kp, "required when auth is \"key\"");
	} else if (l->auth == LOAD_AUTH_CERTIFICATE && l->key != NULL) {
		join(kp, path, "key");
		fail(c, kp, "only meaningful with \"auth\": \"key\"");
	} else if (l->user != NULL && strpbrk(l->user, " \t\r\n\"'\\/:@") != NULL) {
		join(kp, path, "user");
		fail(c, kp, "not a valid user name");
	}
}

/* placement: the weights of the placement score. */
static void
parse_placement(struct pctx *c, const cJSON *v, struct placement_weights *w)
{
	static const char *const keys[] = { "weights", NULL };
	static const char *const wkeys[] = { "users", "cpu", "memory", "gpu", NULL };
	const cJSON *o;

	if (c->failed || v == NULL)
		return;
	check_keys(c, v, "placement", keys);
	if ((o = get_object(c, v, "weights", "placement")) == NULL)
		return;
	check_keys(c, o, "placement.weights", wkeys);
	get_double(c, o, "users", "placement.weights", 0, 1000, &w->users);
	get_double(c, o, "cpu", "placement.weights", 0, 1000, &w->cpu);
	get_double(c, o, "memory", "placement.weights", 0, 1000, &w->memory);
	get_double(c, o, "gpu", "placement.weights", 0, 1000, &w->gpu);
	if (!c->failed && !(w->users > 0))
		fail(c, "placement.weights.users", "must be above 0 (the one term every instance "
		    "has)");
}

static void
parse_health(struct pctx *c, const cJSON *v, const char *path, struct health_conf *h,
    struct load_conf *load)
{
	static const char *const keys[] = { "interval_ms", "timeout_ms", "rise", "fall",
		"jitter_pct", "checks", "http_path", "load", NULL };
	char **checks = NULL, kp[PATH_MAX_LEN];
	size_t nchecks = 0;

	if (v == NULL)
		return;
	check_keys(c, v, path, keys);
	get_uint(c, v, "interval_ms", path, 100, 3600000, &h->interval_ms);
	get_uint(c, v, "timeout_ms", path, 50, 600000, &h->timeout_ms);
	get_uint(c, v, "rise", path, 1, 100, &h->rise);
	get_uint(c, v, "fall", path, 1, 100, &h->fall);
	get_uint(c, v, "jitter_pct", path, 0, 50, &h->jitter_pct);
	get_string(c, v, "http_path", path, 0, &h->http_path);
	if (!c->failed && h->http_path[0] != '/') {
		join(kp, path, "http_path");
		fail(c, kp, "must start with /");
	}
	if (!c->failed && strpbrk(h->http_path, " \r\n\t") != NULL) {
		join(kp, path, "http_path");
		fail(c, kp, "must not contain whitespace");
	}
	get_string_array(c, v, "checks", path, &checks, &nchecks);
	if (checks != NULL) {
		h->checks = 0;
		for (size_t i = 0; i < nchecks; i++) {
			int found = 0;
			for (int k = 0; check_names[k] != NULL; k++) {
				if (strcmp(checks[i], check_names[k]) == 0) {
					h->checks |= 1u << k;
					found = 1;
				}
			}
			if (!found) {
				join_index(kp, "health.checks", i);
				fail(c, kp, "expected one of \"tcp\", \"ssh\", \"http\"");
			}
			free(checks[i]);
		}
		free(checks);
	}
	if (!c->failed && h->timeout_ms >= h->interval_ms) {
		join(kp, path, "timeout_ms");
		fail(c, kp, "must be less than interval_ms (%u)", h->interval_ms);
	}
	parse_load(c, get_object(c, v, "load", path), load);
}

static void
parse_tls(struct pctx *c, const cJSON *v, struct pg_config *cfg)
{
	static const char *const keys[] = { "certificates", NULL };
	static const char *const cert_keys[] = { "cert", "key", NULL };
	const cJSON *arr;
	char kp[PATH_MAX_LEN];
	size_t n, i = 0;

	if (c->failed || v == NULL)
		return;
	check_keys(c, v, "tls", keys);
	if (c->failed || (arr = cJSON_GetObjectItemCaseSensitive(v, "certificates")) == NULL)
		return;
	if (!cJSON_IsArray(arr)) {
		fail(c, "tls.certificates", "expected an array of {\"cert\", \"key\"} objects");
		return;
	}
	if ((n = (size_t)cJSON_GetArraySize(arr)) == 0)
		return;
	if ((cfg->certs = calloc(n, sizeof(*cfg->certs))) == NULL) {
		c->nomem = 1;
		fail(c, "tls.certificates", "out of memory");
		return;
	}
	cfg->ncerts = n;
	for (const cJSON *it = arr->child; it != NULL && !c->failed; it = it->next, i++) {
		join_index(kp, "tls.certificates", i);
		if (!cJSON_IsObject(it)) {
			fail(c, kp, "expected an object with \"cert\" and \"key\"");
			break;
		}
		check_keys(c, it, kp, cert_keys);
		get_string(c, it, "cert", kp, 1, &cfg->certs[i].cert);
		get_string(c, it, "key", kp, 1, &cfg->certs[i].key);
	}
}

/* "start:rate:full" (OpenSSH's MaxStartups) or one number, meaning full:100:full. */
static void
get_startups(struct pctx *c, const cJSON *obj, const char *path, struct conn_limits_conf *l)
{
	char *s = NULL, kp[PATH_MAX_LEN];
	unsigned long v[3] = { 0, 0, 0 };
	size_t n = 0, start = 0, len;
	int ok = 1;

	get_string(c, obj, "max_startups", path, 0, &s);
	if (s == NULL)
		return;
	len = strlen(s);
	/* Up to three fields of 1..7 digits joined by ':'. */
	for (size_t i = 0; i <= len && ok; i++) {
		if (i < len && s[i] != ':') {
			ok = s[i] >= '0' && s[i] <= '9';
			continue;
		}
		if (n == 3 || i == start || i - start > 7) {
			ok = 0;
			break;
		}
		v[n++] = strtoul(s + start, NULL, 10);
		start = i + 1;
	}
	if (ok && n == 1) {
		v[2] = v[0];
		v[1] = 100;
		n = 3;
	}
	join(kp, path, "max_startups");
	if (!ok || n != 3 || v[2] < 1 || v[2] > 1000000 || v[0] > v[2] || v[1] > 100)
		fail(c, kp, "expected \"start:rate:full\" (start <= full <= 1000000, rate <= 100) "
		    "or one number");
	else
		*l = (struct conn_limits_conf){ (uint32_t)v[0], (uint32_t)v[1], (uint32_t)v[2],
			l->per_source, l->max_sources, l->ipv6_prefix };
	free(s);
}

/* The keys ssh.limits and http.limits share. */
static void
get_conn_limits(struct pctx *c, const cJSON *v, const char *path, struct conn_limits_conf *l)
{
	get_startups(c, v, path, l);
	get_uint(c, v, "per_source_startups", path, 0, 1000000, &l->per_source);
	get_uint(c, v, "max_sources", path, 100, 10000000, &l->max_sources);
	get_uint(c, v, "ipv6_prefix", path, 1, 128, &l->ipv6_prefix);
}

static void
parse_http_limits(struct pctx *c, const cJSON *v, struct conn_limits_conf *l)
{
	static const char *const keys[] = { "max_startups", "per_source_startups", "max_sources",
		"ipv6_prefix", NULL };

	if (c->failed || v == NULL)
		return;
	check_keys(c, v, "http.limits", keys);
	get_conn_limits(c, v, "http.limits", l);
}

static void
parse_ssh_limits(struct pctx *c, const cJSON *v, struct ssh_limits_conf *l)
{
	static const char *const keys[] = { "max_startups", "per_source_startups", "max_sources",
		"ipv6_prefix", "ident_timeout_ms", "kex_timeout_ms", "penalty", NULL };
	static const char *const pkeys[] = { "free_failures", "delay_ms", "max_delay_ms",
		"half_life_ms", "block_after", "block_ms", NULL };
	const cJSON *o;

	if (c->failed || v == NULL)
		return;
	check_keys(c, v, "ssh.limits", keys);
	get_conn_limits(c, v, "ssh.limits", &l->conn);
	get_uint(c, v, "ident_timeout_ms", "ssh.limits", 100, 600000, &l->ident_timeout_ms);
	get_uint(c, v, "kex_timeout_ms", "ssh.limits", 100, 3600000, &l->kex_timeout_ms);
	if ((o = get_object(c, v, "penalty", "ssh.limits")) != NULL) {
		check_keys(c, o, "ssh.limits.penalty", pkeys);
		get_uint(c, o, "free_failures", "ssh.limits.penalty", 0, 1000, &l->free_failures);
		get_uint(c, o, "delay_ms", "ssh.limits.penalty", 0, 60000, &l->delay_ms);
		get_uint(c, o, "max_delay_ms", "ssh.limits.penalty", 0, 600000, &l->max_delay_ms);
		get_uint(c, o, "half_life_ms", "ssh.limits.penalty", 1000, 86400000, &l->half_life_ms);
		get_uint(c, o, "block_after", "ssh.limits.penalty", 0, 100000, &l->block_after);
		get_uint(c, o, "block_ms", "ssh.limits.penalty", 1000, 86400000, &l->block_ms);
		if (!c->failed && l->max_delay_ms < l->delay_ms)
			fail(c, "ssh.limits.penalty.max_delay_ms", "must be at least delay_ms (%u)",
			    l->delay_ms);
	}
}

static void
parse_proxy_protocol(struct pctx *c, const cJSON *v, struct proxy_protocol_conf *pp)
{
	static const char *const keys[] = { "ssh", "https", "http", "trusted", "timeout_ms", NULL };
	char **list = NULL, kp[PATH_MAX_LEN];
	size_t n = 0;

	if (c->failed || v == NULL)
		return;
	check_keys(c, v, "proxy_protocol", keys);
	get_bool(c, v, "ssh", "proxy_protocol", &pp->ssh);
	get_bool(c, v, "https", "proxy_protocol", &pp->https);
	get_bool(c, v, "http", "proxy_protocol", &pp->http);
	get_uint(c, v, "timeout_ms", "proxy_protocol", 100, 60000, &pp->timeout_ms);
	get_string_array_ex(c, v, "trusted", "proxy_protocol", 1, &list, &n);
	if (!c->failed && n > 0 && (pp->trusted = calloc(n, sizeof(*pp->trusted))) == NULL) {
		c->nomem = 1;
		fail(c, "proxy_protocol.trusted", "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (!c->failed && pg_cidr_parse(list[i], &pp->trusted[i]) != 0) {
			join_index(kp, "proxy_protocol.trusted", i);
			fail(c, kp, "expected an IP address or a block like \"10.0.0.0/8\" (no bits "
			    "set past the prefix), got \"%s\"", list[i]);
		}
		free(list[i]);
	}
	free(list);
	if (!c->failed)
		pp->ntrusted = n;
	if (!c->failed && (pp->ssh || pp->https || pp->http) && pp->ntrusted == 0)
		fail(c, "proxy_protocol.trusted", "required (a non-empty list) when a listener kind "
		    "expects the PROXY protocol");
}

static void
parse_http(struct pctx *c, const cJSON *v, struct http_conf *h)
{
	static const char *const keys[] = { "max_connections", "header_timeout_ms", "idle_timeout_ms",
		"websocket_idle_timeout_ms", "connect_timeout_ms", "response_timeout_ms",
		"max_header_bytes", "max_headers", "max_request_line", "cookie_name", "cookie_ttl_s",
		"limits", NULL };
	char kp[PATH_MAX_LEN];

	if (c->failed || v == NULL)
		return;
	check_keys(c, v, "http", keys);
	get_uint(c, v, "max_connections", "http", 1, 1000000, &h->max_connections);
	get_uint(c, v, "header_timeout_ms", "http", 100, 600000, &h->header_timeout_ms);
	get_uint(c, v, "idle_timeout_ms", "http", 100, 86400000, &h->idle_timeout_ms);
	get_uint(c, v, "websocket_idle_timeout_ms", "http", 1000, 604800000,
	    &h->websocket_idle_timeout_ms);
	get_uint(c, v, "connect_timeout_ms", "http", 100, 600000, &h->connect_timeout_ms);
	get_uint(c, v, "response_timeout_ms", "http", 100, 86400000, &h->response_timeout_ms);
	get_uint(c, v, "max_header_bytes", "http", 1024, 1048576, &h->max_header_bytes);
	get_uint(c, v, "max_headers", "http", 8, 1000, &h->max_headers);
	get_uint(c, v, "max_request_line", "http", 256, 65536, &h->max_request_line);
	get_string(c, v, "cookie_name", "http", 0, &h->cookie_name);
	get_uint(c, v, "cookie_ttl_s", "http", 60, 31536000, &h->cookie_ttl_s);
	parse_http_limits(c, get_object(c, v, "limits", "http"), &h->limits);
	if (!c->failed) {
		/* A cookie name is an RFC 6265 token. */
		for (const char *p = h->cookie_name; *p != '\0'; p++) {
			if (*p <= 0x20 || *p >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", *p) != NULL) {
				join(kp, "http", "cookie_name");
				fail(c, kp, "expected a cookie token (letters, digits, - _ . etc.)");
				break;
			}
		}
	}
}

/* A %u pattern: "%u" and "%%" are the only escapes, and %u must appear (one file per user). */
static void
check_user_pattern(struct pctx *c, const char *kp, const char *pat)
{
	int has_u = 0;

	if (c->failed || pat == NULL)
		return;
	for (const char *p = pat; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		if (p[1] == 'u')
			has_u = 1;
		else if (p[1] != '%') {
			fail(c, kp, "only %%u and %%%% may follow %% in the pattern");
			return;
		}
		p++;
	}
	if (!has_u)
		fail(c, kp, "must contain %%u (the user name)");
}

/* A list of front auth method names into SSH_FM_* bits: non-empty, known, no repeats. */
static void
get_methods(struct pctx *c, const cJSON *obj, const char *path, unsigned *out)
{
	static const char *const names[] = { "publickey", "password", "keyboard-interactive", NULL };
	char **m = NULL, kp[PATH_MAX_LEN], ip[PATH_MAX_LEN];
	size_t n = 0;
	unsigned bits = 0;

	get_string_array(c, obj, "methods", path, &m, &n);
	join(kp, path, "methods");
	for (size_t i = 0; i < n; i++) {
		int k = 0;

		while (names[k] != NULL && strcmp(names[k], m[i]) != 0)
			k++;
		join_index(ip, kp, i);
		if (names[k] == NULL)
			fail(c, ip, "expected \"publickey\", \"password\" or \"keyboard-interactive\"");
		else if (bits & (1u << k))
			fail(c, ip, "\"%s\" given twice", m[i]);
		bits |= 1u << k;
		free(m[i]);
	}
	free(m);
	if (n > 0 && !c->failed)
		*out = bits;
}

static void
parse_method_rules(struct pctx *c, const cJSON *obj, struct ssh_conf *s)
{
	static const char *const keys[] = { "users", "methods", NULL };
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "per_user");
	const char *path = "ssh.front_auth.per_user";
	char ip[PATH_MAX_LEN];
	size_t n, i = 0;

	if (c->failed || v == NULL)
		return;
	if (!cJSON_IsArray(v)) {
		fail(c, path, "expected an array of {\"users\": [...], \"methods\": [...]}");
		return;
	}
	if ((n = (size_t)cJSON_GetArraySize(v)) == 0)
		return;
	if ((s->method_rules = calloc(n, sizeof(*s->method_rules))) == NULL) {
		c->nomem = 1;
		fail(c, path, "out of memory");
		return;
	}
	s->nmethod_rules = n;
	for (const cJSON *it = v->child; it != NULL && !c->failed; it = it->next, i++) {
		struct ssh_method_rule *r = &s->method_rules[i];

		join_index(ip, path, i);
		if (!cJSON_IsObject(it)) {
			fail(c, ip, "expected an object");
			break;
		}
		check_keys(c, it, ip, keys);
		get_string_array(c, it, "users", ip, &r->users, &r->nusers);
		get_methods(c, it, ip, &r->methods);
		if (!c->failed && (r->users == NULL || r->methods == 0))
			fail(c, ip, "needs both \"users\" and \"methods\"");
	}
}

/* %u and %% are the only escapes in the command's arguments. */
static void
check_escapes(struct pctx *c, const char *kp, const char *arg)
{
	for (const char *p = arg; *p != '\0' && !c->failed; p++) {
		if (*p != '%')
			continue;
		if (p[1] != 'u' && p[1] != '%') {
			/* Also a '%' that ends the string: stop here, p[1] is its NUL. */
			fail(c, kp, "only %%u and %%%% may follow %%");
			return;
		}
		p++;
	}
}

static void
parse_keys_command(struct pctx *c, const cJSON *obj, struct ssh_conf *s)
{
	static const char *const keys[] = { "command", "run_as", "timeout_ms", NULL };
	const char *path = "ssh.front_auth.authorized_keys_command";
	const cJSON *o = get_object(c, obj, "authorized_keys_command", "ssh.front_auth");
	char kp[PATH_MAX_LEN], ip[PATH_MAX_LEN];

	if (o == NULL)
		return;
	check_keys(c, o, path, keys);
	get_string_array(c, o, "command", path, &s->keys_command, &s->nkeys_command);
	get_string(c, o, "run_as", path, 0, &s->keys_command_user);
	get_uint(c, o, "timeout_ms", path, 100, 600000, &s->keys_command_timeout_ms);
	join(kp, path, "command");
	if (!c->failed && s->keys_command == NULL)
		fail(c, kp, "required");
	if (!c->failed && s->keys_command[0][0] != '/')
		fail(c, kp, "the program must be an absolute path");
	for (size_t i = 0; i < s->nkeys_command && !c->failed; i++) {
		join_index(ip, kp, i);
		check_escapes(c, ip, s->keys_command[i]);
	}
}

static void
parse_ssh(struct pctx *c, const cJSON *v, struct ssh_conf *s)
{
	static const char *const keys[] = { "host_keys", "front_auth", "upstream_auth",
		"known_hosts", "host_key_check", "max_auth_tries", "login_grace_ms",
		"connect_timeout_ms", "max_connections", "limits", NULL };
	static const char *const front_keys[] = { "authorized_keys", "trusted_user_ca_keys",
		"methods", "per_user", "authorized_keys_command", NULL };
	static const char *const up_keys[] = { "mode", "ca_key", "key", NULL };
	static const char *const modes[] = { "certificate", "key", NULL };
	static const char *const checks[] = { "known_hosts", "tofu", NULL };
	const cJSON *o;
	int e;

	if (c->failed || v == NULL)
		return;
	check_keys(c, v, "ssh", keys);
	get_string_array_ex(c, v, "host_keys", "ssh", 1, &s->host_keys, &s->nhost_keys);
	if ((o = get_object(c, v, "front_auth", "ssh")) != NULL) {
		check_keys(c, o, "ssh.front_auth", front_keys);
		get_string(c, o, "authorized_keys", "ssh.front_auth", 0, &s->authorized_keys);
		check_user_pattern(c, "ssh.front_auth.authorized_keys", s->authorized_keys);
		get_string(c, o, "trusted_user_ca_keys", "ssh.front_auth", 0,
		    &s->trusted_user_ca_keys);
		get_methods(c, o, "ssh.front_auth", &s->front_methods);
		parse_method_rules(c, o, s);
		parse_keys_command(c, o, s);
	}
	if ((o = get_object(c, v, "upstream_auth", "ssh")) != NULL) {
		check_keys(c, o, "ssh.upstream_auth", up_keys);
		e = (int)s->upstream_mode;
		get_enum(c, o, "mode", "ssh.upstream_auth", modes, &e);
		s->upstream_mode = (enum ssh_upstream_mode)e;
		get_string(c, o, "ca_key", "ssh.upstream_auth", 0, &s->ca_key);
		get_string(c, o, "key", "ssh.upstream_auth", 0, &s->upstream_key);
		if (!c->failed && s->upstream_mode == SSH_UP_KEY && s->upstream_key == NULL)
			fail(c, "ssh.upstream_auth.key", "required when mode is \"key\"");
	}
	get_string(c, v, "known_hosts", "ssh", 0, &s->known_hosts);
	e = (int)s->host_key_check;
	get_enum(c, v, "host_key_check", "ssh", checks, &e);
	s->host_key_check = (enum ssh_hostkey_check)e;
	get_uint(c, v, "max_auth_tries", "ssh", 1, 100, &s->max_auth_tries);
	get_uint(c, v, "login_grace_ms", "ssh", 1000, 3600000, &s->login_grace_ms);
	get_uint(c, v, "connect_timeout_ms", "ssh", 100, 600000, &s->connect_timeout_ms);
	get_uint(c, v, "max_connections", "ssh", 1, 1000000, &s->max_connections);
	parse_ssh_limits(c, get_object(c, v, "limits", "ssh"), &s->limits);
}

static int
config_defaults(struct pg_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = PG_LOG_INFO;
	cfg->log_format = PG_LOG_TEXT;
	cfg->discovery_poll_ms = 1000;
	cfg->health = (struct health_conf){ .interval_ms = 2000, .timeout_ms = 1000, .rise = 2,
		.fall = 3, .jitter_pct = 10, .checks = 7 };
	cfg->load = (struct load_conf){ .interval_ms = 15000, .timeout_ms = 5000 };
	cfg->weights = PG_PLACEMENT_WEIGHTS_DEFAULT;
	cfg->http = (struct http_conf){ .max_connections = 10000, .header_timeout_ms = 10000,
		.idle_timeout_ms = 60000, .websocket_idle_timeout_ms = 3600000,
		.connect_timeout_ms = 5000, .response_timeout_ms = 120000, .max_header_bytes = 16384,
		.max_headers = 100, .max_request_line = 8192, .cookie_ttl_s = 86400 };
	cfg->http.cookie_name = strdup("poolgate_affinity");
	/* Abuse limits (docs/config.md): sshd's MaxStartups scaled for a pool's front door. */
	cfg->http.limits = (struct conn_limits_conf){ .start = 100, .rate = 30, .full = 1000,
		.per_source = 20, .max_sources = 100000, .ipv6_prefix = 64 };
	/* DESIGN.md's listener defaults; "[]" in the config turns one off. */
	cfg->nlisten_https = cfg->nlisten_http = 1;
	cfg->listen_https = calloc(1, sizeof(char *));
	cfg->listen_http = calloc(1, sizeof(char *));
	if (cfg->http.cookie_name == NULL || cfg->listen_https == NULL || cfg->listen_http == NULL ||
	    (cfg->listen_https[0] = strdup("0.0.0.0:8443")) == NULL ||
	    (cfg->listen_http[0] = strdup("0.0.0.0:8080")) == NULL)
		return PG_ENOMEM;
	cfg->ssh = (struct ssh_conf){ .max_auth_tries = 6, .login_grace_ms = 120000,
		.connect_timeout_ms = 10000, .max_connections = 10000,
		.front_methods = SSH_FM_PUBLICKEY, .keys_command_timeout_ms = 5000 };
	cfg->ssh.limits = (struct ssh_limits_conf){ .conn = cfg->http.limits,
		.ident_timeout_ms = 10000, .kex_timeout_ms = 30000, .free_failures = 5,
		.delay_ms = 500, .max_delay_ms = 10000, .half_life_ms = 600000, .block_after = 20,
		.block_ms = 300000 };
	/*
	 * Browsers open several connections at once and a whole office may share one NAT address:
	 * per source, https allows more handshakes in flight than ssh allows unauthenticated logins.
	 */
	cfg->http.limits.per_source = 200;
	cfg->proxy_protocol.timeout_ms = 3000;
	cfg->nlisten_ssh = 1;
	if ((cfg->listen_ssh = calloc(1, sizeof(char *))) == NULL ||
	    (cfg->listen_ssh[0] = strdup("0.0.0.0:2222")) == NULL)
		return PG_ENOMEM;
	cfg->admin_max_connections = 64;
	cfg->pins = (struct pins_conf){ .idle_ttl_s = 28800, .store = PIN_STORE_FILE,
		.fsync_interval_ms = 200, .journal_max_bytes = 8u << 20 };
	cfg->admin_request_timeout_ms = 10000;
	cfg->shutdown_grace_ms = 10000;
	cfg->busy_poll_us = 50;
	cfg->nlisten_admin = 1;
	cfg->listen_admin = calloc(1, sizeof(char *));
	cfg->state_dir = strdup("/var/lib/poolgate");
	cfg->health.http_path = strdup("/hub/health");
	if (cfg->listen_admin == NULL || cfg->state_dir == NULL || cfg->health.http_path == NULL ||
	    (cfg->listen_admin[0] = strdup("127.0.0.1:9090")) == NULL)
		return PG_ENOMEM;
	return 0;
}

int
pg_config_default(struct pg_config **out)
{
	struct pg_config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return PG_ENOMEM;
	if (config_defaults(cfg) != 0) {
		pg_config_free(cfg);
		return PG_ENOMEM;
	}
	*out = cfg;
	return 0;
}

static void
parse_root(struct pctx *c, const cJSON *root, struct pg_config *cfg)
{
	static const char *const keys[] = { "listen", "state_dir", "log", "instances", "discovery",
		"health", "admin", "tls", "http", "ssh", "pins", "placement", "proxy_protocol", "user",
		"group", "shutdown_grace_ms", "busy_poll_us", NULL };
	static const char *const listen_keys[] = { "admin", "ssh", "https", "http", NULL };
	static const char *const log_keys[] = { "level", "format", NULL };
	static const char *const disc_keys[] = { "file", "poll_ms", NULL };
	static const char *const admin_keys[] = { "max_connections", "request_timeout_ms",
		"token_file", NULL };
	static const char *const pins_keys[] = { "idle_ttl_s", "store", "fsync_interval_ms",
		"journal_max_bytes", NULL };
	static const char *const stores[] = { "file", "memory", NULL };
	static const char *const levels[] = { "debug", "info", "notice", "warn", "error", NULL };
	static const char *const formats[] = { "text", "json", NULL };
	const cJSON *v;
	int e;

	if (!cJSON_IsObject(root)) {
		fail(c, "", "expected a JSON object");
		return;
	}
	check_keys(c, root, "", keys);

	if ((v = get_object(c, root, "listen", "")) != NULL) {
		check_keys(c, v, "listen", listen_keys);
		get_listen(c, v, "admin", 0, &cfg->listen_admin, &cfg->nlisten_admin);
		get_listen(c, v, "ssh", 1, &cfg->listen_ssh, &cfg->nlisten_ssh);
		get_listen(c, v, "https", 1, &cfg->listen_https, &cfg->nlisten_https);
		get_listen(c, v, "http", 1, &cfg->listen_http, &cfg->nlisten_http);
	}
	parse_tls(c, get_object(c, root, "tls", ""), cfg);
	parse_http(c, get_object(c, root, "http", ""), &cfg->http);
	parse_ssh(c, get_object(c, root, "ssh", ""), &cfg->ssh);
	parse_proxy_protocol(c, get_object(c, root, "proxy_protocol", ""), &cfg->proxy_protocol);
	get_string(c, root, "state_dir", "", 0, &cfg->state_dir);
	get_string(c, root, "user", "", 0, &cfg->user);
	get_string(c, root, "group", "", 0, &cfg->group);
	if (cfg->group != NULL && cfg->user == NULL)
		fail(c, "group", "needs \"user\": poolgate drops to both at once");
	if (cfg->user != NULL && cfg->ssh.keys_command_user != NULL &&
	    strcmp(cfg->user, cfg->ssh.keys_command_user) != 0)
		fail(c, "ssh.front_auth.authorized_keys_command.run_as", "must be \"user\" (\"%s\") "
		    "or unset: once poolgate has dropped to it, it cannot switch to another user",
		    cfg->user);
	get_uint(c, root, "shutdown_grace_ms", "", 0, 3600000, &cfg->shutdown_grace_ms);
	get_uint(c, root, "busy_poll_us", "", 0, 1000, &cfg->busy_poll_us);
	if ((v = get_object(c, root, "log", "")) != NULL) {
		check_keys(c, v, "log", log_keys);
		e = (int)cfg->log_level;
		get_enum(c, v, "level", "log", levels, &e);
		cfg->log_level = (enum pg_log_level)e;
		e = (int)cfg->log_format;
		get_enum(c, v, "format", "log", formats, &e);
		cfg->log_format = (enum pg_log_format)e;
	}
	parse_instances(c, root, "instances", "", &cfg->instances, &cfg->ninstances);
	if ((v = get_object(c, root, "discovery", "")) != NULL) {
		check_keys(c, v, "discovery", disc_keys);
		get_string(c, v, "file", "discovery", 1, &cfg->discovery_file);
		get_uint(c, v, "poll_ms", "discovery", 100, 600000, &cfg->discovery_poll_ms);
	}
	parse_health(c, get_object(c, root, "health", ""), "health", &cfg->health, &cfg->load);
	parse_placement(c, get_object(c, root, "placement", ""), &cfg->weights);
	if ((v = get_object(c, root, "admin", "")) != NULL) {
		check_keys(c, v, "admin", admin_keys);
		get_uint(c, v, "max_connections", "admin", 1, 100000, &cfg->admin_max_connections);
		get_uint(c, v, "request_timeout_ms", "admin", 100, 3600000,
		    &cfg->admin_request_timeout_ms);
		get_string(c, v, "token_file", "admin", 0, &cfg->admin_token_file);
	}
	if ((v = get_object(c, root, "pins", "")) != NULL) {
		check_keys(c, v, "pins", pins_keys);
		get_uint(c, v, "idle_ttl_s", "pins", 1, 31536000, &cfg->pins.idle_ttl_s);
		e = (int)cfg->pins.store;
		get_enum(c, v, "store", "pins", stores, &e);
		cfg->pins.store = (enum pin_store_kind)e;
		get_uint(c, v, "fsync_interval_ms", "pins", 1, 60000, &cfg->pins.fsync_interval_ms);
		get_uint(c, v, "journal_max_bytes", "pins", 4096, 1073741824,
		    &cfg->pins.journal_max_bytes);
	}
}

/* cJSON reports only where it stopped; turn that into a line:column for the message. */
static void
fail_syntax(struct pctx *c, const char *text, size_t len)
{
	const char *at = cJSON_GetErrorPtr();
	size_t line = 1, col = 1;

	if (at == NULL || at < text || at > text + len) {
		fail(c, "", "invalid JSON");
		return;
	}
	for (const char *p = text; p < at; p++) {
		if (*p == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	fail(c, "", "invalid JSON near line %zu column %zu", line, col);
}

static cJSON *
parse_json(struct pctx *c, const char *text, size_t len)
{
	const char *end = NULL;
	cJSON *root;

	if (len > PG_CONFIG_MAX_BYTES) {
		fail(c, "", "file larger than %u bytes", PG_CONFIG_MAX_BYTES);
		return NULL;
	}
	if (memchr(text, '\0', len) != NULL) {
		fail(c, "", "file contains a NUL byte");
		return NULL;
	}
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (root == NULL) {
		fail_syntax(c, text, len);
		return NULL;
	}
	/* Trailing garbage after the top-level value is an error, not ignored. */
	while (end != NULL && end < text + len && (*end == ' ' || *end == '\n' || *end == '\t' ||
	    *end == '\r'))
		end++;
	if (end != NULL && end < text + len) {
		cJSON_Delete(root);
		fail(c, "", "trailing data after the JSON value");
		return NULL;
	}
	return root;
}

int
pg_config_parse(const char *text, size_t len, struct pg_config **out, char *err, size_t errlen)
{
	struct pctx c = { err, errlen, 0, 0, NULL, 0 };
	struct pg_config *cfg;
	cJSON *root;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL || config_defaults(cfg) != 0) {
		pg_config_free(cfg);
		snprintf(err, errlen, "out of memory");
		return PG_ENOMEM;
	}
	if ((root = parse_json(&c, text, len)) != NULL) {
		parse_root(&c, root, cfg);
		cJSON_Delete(root);
	}
	if (c.failed) {
		pg_config_free(cfg);
		return c.nomem ? PG_ENOMEM : PG_EPARSE;
	}
	*out = cfg;
	return 0;
}

int
pg_discovery_parse(const char *text, size_t len, struct inst_conf **out, size_t *n, char *err,
    size_t errlen)
{
	static const char *const keys[] = { "instances", NULL };
	struct pctx c = { err, errlen, 0, 0, NULL, 0 };
	struct inst_conf *arr = NULL;
	size_t narr = 0;
	cJSON *root;

	if ((root = parse_json(&c, text, len)) != NULL) {
		if (!cJSON_IsObject(root))
			fail(&c, "", "expected a JSON object with an \"instances\" array");
		check_keys(&c, root, "", keys);
		if (!c.failed && cJSON_GetObjectItemCaseSensitive(root, "instances") == NULL)
			fail(&c, "instances", "required");
		parse_instances(&c, root, "instances", "", &arr, &narr);
		cJSON_Delete(root);
	}
	if (c.failed)
		return c.nomem ? PG_ENOMEM : PG_EPARSE;
	*out = arr;
	*n = narr;
	return 0;
}

int
pg_instance_parse(const char *text, size_t len, struct inst_conf *out, char *field,
    size_t fieldlen, char *err, size_t errlen)
{
	struct pctx c = { err, errlen, 0, 0, field, fieldlen };
	struct inst_conf ic;
	cJSON *root;

	memset(&ic, 0, sizeof(ic));
	if (fieldlen > 0)
		field[0] = '\0';
	if ((root = parse_json(&c, text, len)) != NULL) {
		parse_instance(&c, root, "", &ic);
		cJSON_Delete(root);
	}
	if (c.failed) {
		inst_conf_clear(&ic);
		return c.nomem ? PG_ENOMEM : PG_EPARSE;
	}
	*out = ic;
	return 0;
}

static void
parse_overrides(struct pctx *c, const cJSON *root, struct admin_override **out, size_t *nout)
{
	static const char *const keys[] = { "id", "admin_state", "base", NULL };
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "overrides");
	struct admin_override *arr;
	char ip[PATH_MAX_LEN], kp[PATH_MAX_LEN];
	size_t n, i = 0;

	if (c->failed || v == NULL)
		return;
	if (!cJSON_IsArray(v)) {
		fail(c, "overrides", "expected an array of override objects");
		return;
	}
	if ((n = (size_t)cJSON_GetArraySize(v)) == 0)
		return;
	if ((arr = calloc(n, sizeof(*arr))) == NULL) {
		c->nomem = 1;
		fail(c, "overrides", "out of memory");
		return;
	}
	for (const cJSON *it = v->child; it != NULL && !c->failed; it = it->next, i++) {
		int admin = -1, base = -1;
		join_index(ip, "overrides", i);
		if (!cJSON_IsObject(it)) {
			fail(c, ip, "expected an object");
			break;
		}
		check_keys(c, it, ip, keys);
		get_string(c, it, "id", ip, 1, &arr[i].id);
		get_enum(c, it, "admin_state", ip, admin_names, &admin);
		get_enum(c, it, "base", ip, admin_names, &base);
		if (!c->failed && !inst_id_ok(arr[i].id)) {
			join(kp, ip, "id");
			fail(c, kp, "expected 1..%d characters from A-Z a-z 0-9 . _ -", PG_ID_MAX);
		}
		if (!c->failed && (admin < 0 || base < 0)) {
			join(kp, ip, admin < 0 ? "admin_state" : "base");
			fail(c, kp, "required");
		}
		for (size_t j = 0; j < i && !c->failed; j++) {
			if (strcmp(arr[j].id, arr[i].id) == 0) {
				join(kp, ip, "id");
				fail(c, kp, "duplicate id \"%s\"", arr[i].id);
			}
		}
		arr[i].admin = (enum inst_admin)admin;
		arr[i].base = (enum inst_admin)base;
	}
	if (c->failed) {
		pg_admin_overrides_free(arr, n);
		return;
	}
	*out = arr;
	*nout = n;
}

int
pg_admin_state_parse(const char *text, size_t len, struct admin_override **ov, size_t *nov,
    struct inst_conf **inst, size_t *ninst, char *err, size_t errlen)
{
	static const char *const keys[] = { "version", "overrides", "instances", NULL };
	struct pctx c = { err, errlen, 0, 0, NULL, 0 };
	struct admin_override *oarr = NULL;
	struct inst_conf *iarr = NULL;
	size_t on = 0, in = 0;
	uint32_t version = 0;
	cJSON *root;

	if ((root = parse_json(&c, text, len)) != NULL) {
		if (!cJSON_IsObject(root))
			fail(&c, "", "expected a JSON object");
		check_keys(&c, root, "", keys);
		get_uint(&c, root, "version", "", 1, 1, &version);
		if (!c.failed && version != 1)
			fail(&c, "version", "required (1)");
		parse_overrides(&c, root, &oarr, &on);
		parse_instances(&c, root, "instances", "", &iarr, &in);
		cJSON_Delete(root);
	}
	if (c.failed) {
		pg_admin_overrides_free(oarr, on);
		inst_conf_free_array(iarr, in);
		return c.nomem ? PG_ENOMEM : PG_EPARSE;
	}
	*ov = oarr;
	*nov = on;
	*inst = iarr;
	*ninst = in;
	return 0;
}

void
pg_admin_overrides_free(struct admin_override *ov, size_t n)
{
	if (ov == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(ov[i].id);
	free(ov);
}

/* A message for a pg_read_file() failure, naming the file. */
void
pg_file_error(const char *path, int r, char *err, size_t errlen)
{
	const char *why;

	switch (r) {
	case PG_ENOTFOUND: why = "no such file"; break;
	case PG_EINVAL: why = "not a regular file"; break;
	case PG_ETOOBIG: why = "too large"; break;
	case PG_ENOMEM: why = "out of memory"; break;
	default: why = "cannot be read"; break;
	}
	snprintf(err, errlen, "%s: %s", path, why);
}

int
pg_config_load(const char *path, struct pg_config **out, char *err, size_t errlen)
{
	struct pg_buf text;
	int r;

	pg_buf_init(&text, PG_CONFIG_MAX_BYTES + 1);
	if ((r = pg_read_file(path, PG_CONFIG_MAX_BYTES, &text)) != 0) {
		pg_file_error(path, r, err, errlen);
		pg_buf_free(&text);
		return r;
	}
	r = pg_config_parse(text.p != NULL ? (const char *)text.p : "", text.len, out, err, errlen);
	if (r != 0) {
		/* Prefix the file name: "poolgate.json: instances[0].id: required". */
		char tmp[512];
		if (snprintf(tmp, sizeof(tmp), "%s", err) >= 0 &&
		    snprintf(err, errlen, "%s: %s", path, tmp) < 0)
			err[0] = '\0';
	}
	pg_buf_free(&text);
	return r;
}

int
inst_conf_copy(struct inst_conf *dst, const struct inst_conf *src)
{
	*dst = *src;
	dst->id = strdup(src->id);
	dst->address = strdup(src->address);
	dst->http_ca_file = src->http_ca_file ? strdup(src->http_ca_file) : NULL;
	dst->labels = src->nlabels ? calloc(src->nlabels, sizeof(*dst->labels)) : NULL;
	dst->nlabels = 0;
	if (dst->id == NULL || dst->address == NULL || (src->http_ca_file && !dst->http_ca_file) ||
	    (src->nlabels && dst->labels == NULL))
		goto nomem;
	for (size_t i = 0; i < src->nlabels; i++) {
		dst->labels[i].key = strdup(src->labels[i].key);
		dst->labels[i].value = strdup(src->labels[i].value);
		dst->nlabels++;
		if (dst->labels[i].key == NULL || dst->labels[i].value == NULL)
			goto nomem;
	}
	return 0;
nomem:
	inst_conf_clear(dst);
	return PG_ENOMEM;
}

static int
streq_null(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int
inst_conf_same_endpoint(const struct inst_conf *a, const struct inst_conf *b)
{
	return strcmp(a->address, b->address) == 0 && a->ssh_port == b->ssh_port &&
	    a->http_port == b->http_port && a->http_tls == b->http_tls &&
	    a->http_tls_verify == b->http_tls_verify && streq_null(a->http_ca_file, b->http_ca_file);
}

void
inst_conf_clear(struct inst_conf *ic)
{
	free(ic->id);
	free(ic->address);
	free(ic->http_ca_file);
	for (size_t i = 0; i < ic->nlabels; i++) {
		free(ic->labels[i].key);
		free(ic->labels[i].value);
	}
	free(ic->labels);
	memset(ic, 0, sizeof(*ic));
}

void
inst_conf_free_array(struct inst_conf *a, size_t n)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		inst_conf_clear(&a[i]);
	free(a);
}

void
pg_config_free(struct pg_config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nlisten_ssh; i++)
		free(c->listen_ssh[i]);
	free(c->listen_ssh);
	for (size_t i = 0; i < c->ssh.nhost_keys; i++)
		free(c->ssh.host_keys[i]);
	free(c->ssh.host_keys);
	free(c->ssh.authorized_keys);
	free(c->ssh.trusted_user_ca_keys);
	for (size_t i = 0; i < c->ssh.nmethod_rules; i++) {
		for (size_t j = 0; j < c->ssh.method_rules[i].nusers; j++)
			free(c->ssh.method_rules[i].users[j]);
		free(c->ssh.method_rules[i].users);
	}
	free(c->ssh.method_rules);
	for (size_t i = 0; i < c->ssh.nkeys_command; i++)
		free(c->ssh.keys_command[i]);
	free(c->ssh.keys_command);
	free(c->ssh.keys_command_user);
	free(c->ssh.ca_key);
	free(c->ssh.upstream_key);
	free(c->ssh.known_hosts);
	free(c->proxy_protocol.trusted);
	for (size_t i = 0; i < c->nlisten_admin; i++)
		free(c->listen_admin[i]);
	free(c->listen_admin);
	for (size_t i = 0; i < c->nlisten_https; i++)
		free(c->listen_https[i]);
	free(c->listen_https);
	for (size_t i = 0; i < c->nlisten_http; i++)
		free(c->listen_http[i]);
	free(c->listen_http);
	for (size_t i = 0; i < c->ncerts; i++) {
		free(c->certs[i].cert);
		free(c->certs[i].key);
	}
	free(c->certs);
	free(c->http.cookie_name);
	free(c->state_dir);
	free(c->user);
	free(c->group);
	inst_conf_free_array(c->instances, c->ninstances);
	free(c->discovery_file);
	free(c->health.http_path);
	free(c->load.user);
	free(c->load.key);
	free(c->load.command);
	free(c->admin_token_file);
	free(c);
}
