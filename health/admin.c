/*
 * The admin API. Each request goes through the same steps: find the action from the method and
 * path (for the counters, even when it is refused), authenticate, check the path's arguments and
 * the body, act, answer in JSON, log one line at notice and count the result.
 */
#include "health/admin.h"
#include "backends/adminstate.h"
#include "backends/discovery.h"
#include "backends/pins.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/token.h"
#include "core/urlenc.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One read of the token file on the thread pool. */
struct token_read {
	uv_work_t work;
	struct admin *ad;
	char *path;
	int status;
	uint8_t digest[PG_TOKEN_DIGEST_LEN];
	char err[512];
};

struct admin {
	uv_loop_t *loop;
	int enabled;				/* a token is in force */
	int broken;				/* admin.token_file is set but unusable */
	uint8_t digest[PG_TOKEN_DIGEST_LEN];	/* SHA-256 of that token */
	struct token_read *reading;		/* in flight, or NULL */
	int again;				/* read again once it ends: a newer reload */
	char *again_path;			/* for that read; NULL turns actions off */
	int freeing;
	uint64_t counts[ADMIN_NACTIONS][ADMIN_NRESULTS];
};

static const char *const action_names[] = { "drain", "undrain", "maint", "add", "remove",
	"unpin", "move", "reload", "pins", "unknown" };
static const char *const result_names[] = { "ok", "denied", "rejected", "error" };

const char *
admin_action_name(enum admin_action a)
{
	return (unsigned)a < ADMIN_NACTIONS ? action_names[a] : "?";
}

const char *
admin_result_name(enum admin_result r)
{
	return (unsigned)r < ADMIN_NRESULTS ? result_names[r] : "?";
}

/* --- the token ---------------------------------------------------------------------------- */

static int
read_token(const char *path, uint8_t digest[PG_TOKEN_DIGEST_LEN], char *err, size_t errlen)
{
	char tok[PG_TOKEN_MAX + 1];
	size_t len = 0;
	int r;

	if ((r = pg_token_read_file(path, 1, tok, &len, err, errlen)) == 0 &&
	    (r = pg_token_digest((struct pg_slice){ (const uint8_t *)tok, len }, digest)) != 0)
		snprintf(err, errlen, "%s: out of memory", path);
	OPENSSL_cleanse(tok, sizeof(tok));
	return r;
}

int
admin_new(uv_loop_t *loop, const char *token_file, struct admin **out, char *err,
    size_t errlen)
{
	struct admin *ad = calloc(1, sizeof(*ad));
	int r;

	if (ad == NULL) {
		snprintf(err, errlen, "out of memory");
		return PG_ENOMEM;
	}
	ad->loop = loop;
	if (token_file != NULL) {
		if ((r = read_token(token_file, ad->digest, err, errlen)) != 0) {
			free(ad);
			return r;
		}
		ad->enabled = 1;
		LOG_INFO("admin", "admin actions enabled: bearer token from %s", token_file);
	} else {
		LOG_INFO("admin", "admin actions disabled: no admin.token_file");
	}
	*out = ad;
	return 0;
}

static void
token_work(uv_work_t *w)
{
	struct token_read *tr = w->data;

	tr->status = read_token(tr->path, tr->digest, tr->err, sizeof(tr->err));
}

static void start_token_read(struct admin *ad, char *path);

static void
disable(struct admin *ad, int broken, const char *why)
{
	if (ad->enabled)
		LOG_WARN("admin", "admin actions disabled: %s", why);
	ad->enabled = 0;
	ad->broken = broken;
	OPENSSL_cleanse(ad->digest, sizeof(ad->digest));
}

static void
after_token_read(uv_work_t *w, int status)
{
	struct token_read *tr = w->data;
	struct admin *ad = tr->ad;

	ad->reading = NULL;
	if (ad->freeing) {
		free(ad->again_path);
		free(ad);
	} else if (ad->again) {
		/* A newer reload asked meanwhile: its file is the one that counts. */
		ad->again = 0;
		start_token_read(ad, ad->again_path);
		ad->again_path = NULL;
	} else if (status != 0 || tr->status != 0) {
		LOG_ERR("admin", "admin.token_file %s; admin actions are refused until a reload "
		    "finds a good one", status != 0 ? uv_strerror(status) : tr->err);
		disable(ad, 1, "the token file cannot be used");
	} else {
		memcpy(ad->digest, tr->digest, sizeof(ad->digest));
		ad->enabled = 1;
		ad->broken = 0;
		LOG_INFO("admin", "admin actions enabled: bearer token from %s", tr->path);
	}
	OPENSSL_cleanse(tr->digest, sizeof(tr->digest));
	free(tr->path);
	free(tr);
}

/* Takes path (malloc'd, or NULL: no token file). */
static void
start_token_read(struct admin *ad, char *path)
{
	struct token_read *tr;
	int r;

	if (path == NULL) {
		disable(ad, 0, "no admin.token_file any more");
		return;
	}
	if ((tr = calloc(1, sizeof(*tr))) == NULL) {
		free(path);
		disable(ad, 1, "out of memory reading the token file");
		return;
	}
	tr->ad = ad;
	tr->path = path;
	tr->work.data = tr;
	if ((r = uv_queue_work(ad->loop, &tr->work, token_work, after_token_read)) != 0) {
		LOG_ERR("admin", "cannot read admin.token_file %s: %s", path, uv_strerror(r));
		disable(ad, 1, "the token file could not be read");
		free(path);
		free(tr);
		return;
	}
	ad->reading = tr;
}

void
admin_set_token_file(struct admin *ad, const char *token_file)
{
	char *path = NULL;

	if (token_file != NULL && (path = strdup(token_file)) == NULL) {
		disable(ad, 1, "out of memory reading the token file");
		return;
	}
	if (ad->reading != NULL) {
		free(ad->again_path);
		ad->again = 1;
		ad->again_path = path;
		return;
	}
	start_token_read(ad, path);
}

void
admin_free(struct admin *ad)
{
	if (ad == NULL)
		return;
	OPENSSL_cleanse(ad->digest, sizeof(ad->digest));
	if (ad->reading != NULL) {
		ad->freeing = 1;
		return;
	}
	free(ad->again_path);
	free(ad);
}

int
admin_enabled(const struct admin *ad)
{
	return ad != NULL && ad->enabled;
}

uint64_t
admin_count(const struct admin *ad, enum admin_action a, enum admin_result r)
{
	return ad != NULL && (unsigned)a < ADMIN_NACTIONS && (unsigned)r < ADMIN_NRESULTS ?
	    ad->counts[a][r] : 0;
}

/* --- the path ----------------------------------------------------------------------------- */

/* What the method and path ask for. */
struct target {
	enum admin_action action;
	int status;		/* 0, or what to answer instead: 400, 404, 405 */
	const char *allow;	/* with 405 */
	const char *msg;	/* with a status */
	char id[PG_ID_MAX + 1];
	char user[PIN_USER_MAX + 1];
	const char *label;	/* what the log line names: id, user, or "" */
};

/*
 * Percent-decodes seg into out (cap bytes with the NUL). Returns 0, PG_EPARSE (a broken escape or
 * an encoded NUL) or PG_ETOOBIG.
 */
static int
pct_decode(struct pg_slice seg, char *out, size_t cap)
{
	uint8_t buf[HTTPREQ_MAX_URL];
	size_t n = 0;
	int r;

	if (seg.len > sizeof(buf))
		return PG_ETOOBIG;
	if ((r = pg_pct_decode(seg.p, seg.len, 0, buf, &n)) != 0)
		return r;
	if (memchr(buf, '\0', n) != NULL)
		return PG_EPARSE;
	if (n >= cap)
		return PG_ETOOBIG;
	memcpy(out, buf, n);
	out[n] = '\0';
	return 0;
}

static int
seg_is(struct pg_slice s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* Splits path (after "/admin/") into at most 4 segments; returns how many, or 5 for more. */
static size_t
split(const char *p, size_t len, struct pg_slice seg[4])
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || p[i] == '/') {
			if (n == 4)
				return 5;
			seg[n].p = (const uint8_t *)p + start;
			seg[n].len = i - start;
			n++;
			start = i + 1;
		}
	}
	return n;
}

static void
method_not_allowed(struct target *t, int method, int want, const char *allow)
{
	if (method != want) {
		t->status = 405;
		t->allow = allow;
		t->msg = "method not allowed here";
	}
}

/* Decodes an instance id; one that cannot be an id names no instance. */
static void
target_id(struct target *t, struct pg_slice seg)
{
	if (pct_decode(seg, t->id, sizeof(t->id)) != 0 || t->id[0] == '\0') {
		t->id[0] = '\0';
		t->status = 404;
		t->msg = "no such instance";
	}
	t->label = t->id;
}

static void
target_user(struct target *t, struct pg_slice seg)
{
	int r = pct_decode(seg, t->user, sizeof(t->user));

	t->label = t->user;
	if (r != 0 || t->user[0] == '\0') {
		t->user[0] = '\0';
		t->status = 400;
		t->msg = r == PG_ETOOBIG ? "user: longer than 255 bytes" :
		    "user: expected 1..255 bytes, percent-encoded (no %00)";
	}
}

static void
parse_target(const char *path, size_t len, int method, struct target *t)
{
	static const char prefix[] = "/admin/";
	struct pg_slice seg[4];
	size_t n;

	memset(t, 0, sizeof(*t));
	t->action = ADMIN_UNKNOWN;
	t->label = "";
	t->status = 404;
	t->msg = "no such admin path (docs/admin.md lists them)";
	if (len < sizeof(prefix) - 1 || memcmp(path, prefix, sizeof(prefix) - 1) != 0)
		return;
	n = split(path + sizeof(prefix) - 1, len - (sizeof(prefix) - 1), seg);
	if (n == 1 && seg_is(seg[0], "reload")) {
		t->status = 0;
		t->action = ADMIN_RELOAD;
		method_not_allowed(t, method, HTTP_POST, "Allow: POST\r\n");
	} else if (n == 1 && seg_is(seg[0], "pins")) {
		t->status = 0;
		t->action = ADMIN_PINS;
		method_not_allowed(t, method, HTTP_GET, "Allow: GET\r\n");
	} else if (n == 2 && seg_is(seg[0], "pins") && seg[1].len > 0) {
		t->status = 0;
		t->action = method == HTTP_PUT ? ADMIN_MOVE : ADMIN_UNPIN;
		if (method != HTTP_PUT)
			method_not_allowed(t, method, HTTP_DELETE, "Allow: PUT, DELETE\r\n");
		if (t->status == 0)
			target_user(t, seg[1]);
	} else if (n == 1 && seg_is(seg[0], "instances")) {
		t->status = 0;
		t->action = ADMIN_ADD;
		method_not_allowed(t, method, HTTP_POST, "Allow: POST\r\n");
	} else if (n == 2 && seg_is(seg[0], "instances") && seg[1].len > 0) {
		t->status = 0;
		t->action = ADMIN_REMOVE;
		method_not_allowed(t, method, HTTP_DELETE, "Allow: DELETE\r\n");
		if (t->status == 0)
			target_id(t, seg[1]);
	} else if (n == 3 && seg_is(seg[0], "instances") && seg[1].len > 0) {
		if (seg_is(seg[2], "drain"))
			t->action = ADMIN_DRAIN;
		else if (seg_is(seg[2], "undrain"))
			t->action = ADMIN_UNDRAIN;
		else if (seg_is(seg[2], "maint"))
			t->action = ADMIN_MAINT;
		else
			return;
		t->status = 0;
		method_not_allowed(t, method, HTTP_POST, "Allow: POST\r\n");
		if (t->status == 0)
			target_id(t, seg[1]);
	}
}

/* --- actions ------------------------------------------------------------------------------ */

/* What an action came to. */
struct outcome {
	int status;
	char msg[320];		/* for the log line and, on failure, the "error" member */
	const char *field;	/* the JSON field a 400 is about; NULL: none */
	char fieldbuf[256];
	cJSON *json;		/* the answer on success (a JSON object), owned */
};

static void __attribute__((format(printf, 3, 4)))
set(struct outcome *o, int status, const char *fmt, ...)
{
	va_list ap;

	o->status = status;
	va_start(ap, fmt);
	vsnprintf(o->msg, sizeof(o->msg), fmt, ap);
	va_end(ap);
}

/*
 * Parses the body as one JSON value. Returns the tree (the caller deletes it), or NULL with o set
 * to 400 (a NUL byte, not JSON, or more after the value).
 */
static cJSON *
body_json(const struct httpreq *req, struct outcome *o)
{
	const char *end = NULL, *p = req->body, *lim = req->body + req->body_len;
	cJSON *v;

	if (memchr(p, '\0', req->body_len) != NULL) {
		set(o, 400, "the body holds a NUL byte");
		o->field = "";
		return NULL;
	}
	if ((v = cJSON_ParseWithLengthOpts(p, req->body_len, &end, 0)) == NULL) {
		set(o, 400, "the body is not valid JSON");
		o->field = "";
		return NULL;
	}
	while (end != NULL && end < lim && (*end == ' ' || *end == '\t' || *end == '\r' ||
	    *end == '\n'))
		end++;
	if (end != NULL && end < lim) {
		cJSON_Delete(v);
		set(o, 400, "trailing data after the JSON value");
		o->field = "";
		return NULL;
	}
	return v;
}

/* Actions that take no argument accept no body, or an empty object. Returns 0 or -1 (o set). */
static int
no_body(const struct httpreq *req, struct outcome *o)
{
	size_t i = 0;
	cJSON *v;
	int ok;

	while (i < req->body_len && (req->body[i] == ' ' || req->body[i] == '\t' ||
	    req->body[i] == '\r' || req->body[i] == '\n'))
		i++;
	if (i == req->body_len)
		return 0;
	if ((v = body_json(req, o)) == NULL)
		return -1;
	ok = cJSON_IsObject(v) && v->child == NULL;
	if (!ok) {
		o->field = cJSON_IsObject(v) ? v->child->string : "";
		snprintf(o->fieldbuf, sizeof(o->fieldbuf), "%s", o->field);
		o->field = o->fieldbuf;
		set(o, 400, "%s%sthis action takes no body (or {})", o->field,
		    o->field[0] ? ": " : "");
	}
	cJSON_Delete(v);
	return ok ? 0 : -1;
}

static cJSON *
instance_answer(const struct ops_env *env, const struct instance *in, int changed)
{
	cJSON *o = cJSON_CreateObject(), *it;

	if (o == NULL || (it = ops_instance_json(env, in)) == NULL) {
		cJSON_Delete(o);
		return NULL;
	}
	cJSON_AddBoolToObject(o, "changed", changed);
	cJSON_AddItemToObject(o, "instance", it);
	return o;
}

static void
act_admin_state(struct ops_env *env, const struct target *t, const char *peer,
    const struct httpreq *req, struct outcome *o)
{
	static const char *const verbs[] = { "drained", "undrained", "put in maint" };
	enum inst_admin want = t->action == ADMIN_DRAIN ? INST_DRAINING :
	    t->action == ADMIN_MAINT ? INST_MAINT : INST_ACTIVE;
	struct instance *in = reg_find(env->reg, t->id);
	enum inst_admin before;
	char why[INST_REASON_MAX];
	int r;

	if (no_body(req, o) != 0)
		return;
	if (in == NULL) {
		set(o, 404, "no such instance");
		return;
	}
	before = in->conf.admin;
	snprintf(why, sizeof(why), "%s by an operator (%s)", verbs[t->action], peer);
	if ((r = reg_set_admin(env->reg, t->id, want, why)) != 0) {
		set(o, 500, "%s", pg_strerror(r));
		return;
	}
	set(o, 200, "%s%s", inst_admin_name(want), before == want ? " already" : "");
	if ((o->json = instance_answer(env, in, before != want)) == NULL)
		set(o, 500, "out of memory");
}

static void
act_add(struct ops_env *env, const struct httpreq *req, struct target *t, struct outcome *o)
{
	struct inst_conf ic;
	struct instance *in;
	char err[320];
	int r;

	r = pg_instance_parse(req->body, req->body_len, &ic, o->fieldbuf, sizeof(o->fieldbuf), err,
	    sizeof(err));
	if (r != 0) {
		o->field = o->fieldbuf;
		set(o, r == PG_ENOMEM ? 500 : 400, "%s", err);
		return;
	}
	snprintf(t->id, sizeof(t->id), "%s", ic.id);
	t->label = t->id;
	if (env->astate == NULL) {
		inst_conf_clear(&ic);
		set(o, 500, "the operator's state is not available");
		return;
	}
	r = astate_add(env->astate, &ic);
	inst_conf_clear(&ic);
	if (r == PG_EEXIST) {
		in = reg_find(env->reg, t->id);
		set(o, 409, "instance %s exists already (from the %s)", t->id,
		    in == NULL ? "admin API" : in->source == INST_SRC_CONFIG ? "config file" :
		    in->source == INST_SRC_DISCOVERY ? "discovery file" : "admin API");
		return;
	}
	if (r != 0 || (in = reg_find(env->reg, t->id)) == NULL) {
		set(o, 500, "%s", pg_strerror(r != 0 ? r : PG_ENOMEM));
		return;
	}
	set(o, 201, "added");
	if ((o->json = instance_answer(env, in, 1)) == NULL)
		set(o, 500, "out of memory");
}

static void
act_remove(struct ops_env *env, const struct target *t, const struct httpreq *req,
    struct outcome *o)
{
	struct instance *in = reg_find(env->reg, t->id);
	int r;

	if (no_body(req, o) != 0)
		return;
	if (env->astate == NULL || !astate_has(env->astate, t->id)) {
		if (in == NULL)
			set(o, 404, "no such instance");
		else
			set(o, 409, "instance %s comes from the %s: remove it there (drain or maint it "
			    "here)", t->id, in->source == INST_SRC_CONFIG ? "config file" :
			    "discovery file");
		return;
	}
	if ((r = astate_remove(env->astate, t->id)) != 0) {
		set(o, 500, "%s", pg_strerror(r));
		return;
	}
	/* The discovery file may list the id too; it was refused while the API held it. */
	discovery_refresh(env->discovery);
	set(o, 200, "removed");
	if ((o->json = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(o->json, "removed", t->id) == NULL)
		set(o, 500, "out of memory");
}

static void
pin_answer(struct outcome *o, const char *user, const char *instance, const char *was)
{
	if ((o->json = cJSON_CreateObject()) == NULL) {
		set(o, 500, "out of memory");
		return;
	}
	cJSON_AddStringToObject(o->json, "user", user);
	if (instance != NULL)
		cJSON_AddStringToObject(o->json, "instance", instance);
	else
		cJSON_AddNullToObject(o->json, "instance");
	if (was != NULL)
		cJSON_AddStringToObject(o->json, "was", was);
	else
		cJSON_AddNullToObject(o->json, "was");
}

static void
act_unpin(struct ops_env *env, const struct target *t, const struct httpreq *req,
    struct outcome *o)
{
	char was[PG_ID_MAX + 1];
	const char *cur;

	if (no_body(req, o) != 0)
		return;
	if ((cur = pins_get(env->pins, t->user)) == NULL) {
		set(o, 404, "user has no pin");
		return;
	}
	snprintf(was, sizeof(was), "%s", cur);
	if (pins_remove(env->pins, t->user) != 0) {
		set(o, 404, "user has no pin");
		return;
	}
	set(o, 200, "unpinned (was %s)", was);
	pin_answer(o, t->user, NULL, was);
}

/* PUT /admin/pins/USER {"instance": ID}: the user's next connection goes to ID. */
static void
act_move(struct ops_env *env, const struct target *t, const struct httpreq *req,
    struct outcome *o)
{
	char was[PG_ID_MAX + 1] = "";
	const cJSON *v, *it;
	struct instance *in;
	const char *cur;
	enum inst_state st;
	cJSON *body;
	int r;

	if ((body = body_json(req, o)) == NULL)
		return;
	if (!cJSON_IsObject(body)) {
		set(o, 400, "expected a JSON object: {\"instance\": ID}");
		o->field = "";
		goto out;
	}
	for (it = body->child; it != NULL; it = it->next) {
		if (strcmp(it->string, "instance") != 0) {
			snprintf(o->fieldbuf, sizeof(o->fieldbuf), "%s", it->string);
			o->field = o->fieldbuf;
			set(o, 400, "%s: unknown key", o->fieldbuf);
			goto out;
		}
	}
	v = cJSON_GetObjectItemCaseSensitive(body, "instance");
	if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
		o->field = "instance";
		set(o, 400, "instance: %s", v == NULL ? "required" : "expected an instance id");
		goto out;
	}
	if ((in = reg_find(env->reg, v->valuestring)) == NULL) {
		set(o, 404, "no such instance %s", v->valuestring);
		goto out;
	}
	/* An instance that takes no new users would send the user elsewhere at once. */
	st = inst_state(in);
	if (st == INST_S_DRAINING || st == INST_S_MAINT || st == INST_S_DOWN) {
		set(o, 409, "instance %s is %s: it takes no new users", in->conf.id,
		    inst_state_name(st));
		goto out;
	}
	if ((cur = pins_get(env->pins, t->user)) != NULL)
		snprintf(was, sizeof(was), "%s", cur);
	if ((r = pins_set(env->pins, t->user, in->conf.id, pg_wall_ms())) != 0) {
		if (r == PG_ETOOBIG || r == PG_EINVAL) {
			o->field = "user";
			set(o, 400, "user: not a valid user name");
		} else {
			set(o, 500, "%s", pg_strerror(r));
		}
		goto out;
	}
	set(o, 200, "pinned to %s (was %s)", in->conf.id, was[0] ? was : "none");
	pin_answer(o, t->user, in->conf.id, was[0] ? was : NULL);
out:
	cJSON_Delete(body);
}

static void
act_pins(struct ops_env *env, struct outcome *o)
{
	cJSON *arr;
	char ts[PG_TIMESTR];

	if ((o->json = cJSON_CreateObject()) == NULL ||
	    (arr = cJSON_AddArrayToObject(o->json, "pins")) == NULL) {
		set(o, 500, "out of memory");
		return;
	}
	cJSON_AddNumberToObject(o->json, "total", (double)pins_size(env->pins));
	for (struct instance *in = reg_first(env->reg); in != NULL; in = in->next) {
		const char **users = NULL;
		size_t n = 0;
		if (pins_users(env->pins, in->conf.id, &users, &n) != 0) {
			set(o, 500, "out of memory");
			return;
		}
		for (size_t i = 0; i < n; i++) {
			int64_t since = 0, active = 0;
			cJSON *p = cJSON_CreateObject();
			if (p == NULL || !cJSON_AddItemToArray(arr, p)) {
				cJSON_Delete(p);
				break;
			}
			pins_times(env->pins, users[i], &since, &active);
			cJSON_AddStringToObject(p, "user", users[i]);
			cJSON_AddStringToObject(p, "instance", in->conf.id);
			cJSON_AddStringToObject(p, "since", pg_time_format(since, ts));
			cJSON_AddStringToObject(p, "active", pg_time_format(active, ts));
		}
		free(users);
	}
	set(o, 200, "%zu pins", pins_size(env->pins));
}

static void
act_reload(struct ops_env *env, const struct httpreq *req, struct outcome *o)
{
	uint64_t after = env->reload.done;
	int r;

	if (no_body(req, o) != 0)
		return;
	if (env->start_reload == NULL || (r = env->start_reload(env->reload_arg)) == PG_EINVAL) {
		set(o, 409, "running on the embedded defaults: there is no config file to re-read");
		return;
	}
	if (r != 0) {
		set(o, 500, "%s", pg_strerror(r));
		return;
	}
	set(o, 202, "started");
	/* The outcome shows in /status: reload.done passes "after" and in_progress turns false. */
	if ((o->json = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(o->json, "reload", "started") == NULL ||
	    cJSON_AddNumberToObject(o->json, "after", (double)after) == NULL)
		set(o, 500, "out of memory");
}

static void
dispatch(struct ops_env *env, struct target *t, const struct httpreq *req, const char *peer,
    struct outcome *o)
{
	int needs_pins = t->action == ADMIN_UNPIN || t->action == ADMIN_MOVE ||
	    t->action == ADMIN_PINS;

	if (needs_pins && env->pins == NULL) {
		set(o, 500, "no pin table");
		return;
	}
	switch (t->action) {
	case ADMIN_DRAIN:
	case ADMIN_UNDRAIN:
	case ADMIN_MAINT:
		act_admin_state(env, t, peer, req, o);
		break;
	case ADMIN_ADD:
		act_add(env, req, t, o);
		break;
	case ADMIN_REMOVE:
		act_remove(env, t, req, o);
		break;
	case ADMIN_UNPIN:
		act_unpin(env, t, req, o);
		break;
	case ADMIN_MOVE:
		act_move(env, t, req, o);
		break;
	case ADMIN_PINS:
		act_pins(env, o);
		break;
	case ADMIN_RELOAD:
		act_reload(env, req, o);
		break;
	default:
		set(o, 404, "no such admin path");
		break;
	}
}

/* --- authentication and the answer -------------------------------------------------------- */

#define WWW_AUTH "WWW-Authenticate: Bearer realm=\"poolgate admin\""

/* Returns 0 when the request may act, else the status with o and *headers set. */
static int
authenticate(const struct admin *ad, const struct httpreq *req, struct outcome *o,
    const char **headers)
{
	struct pg_slice tok;

	if (!ad->enabled && ad->broken) {
		set(o, 403, "admin actions are disabled: admin.token_file cannot be used (poolgate's "
		    "log says why); fix it and reload poolgate (SIGHUP)");
		return 403;
	}
	if (!ad->enabled) {
		set(o, 403, "admin actions are disabled: put a token (16 or more characters, e.g. from "
		    "`openssl rand -hex 32`) in a file only poolgate's user can read (chmod 600), set "
		    "admin.token_file to its path and reload poolgate (SIGHUP); see docs/admin.md");
		return 403;
	}
	if (req->authorization == NULL) {
		set(o, 401, "no bearer token: send Authorization: Bearer TOKEN");
		*headers = WWW_AUTH "\r\n";
		return 401;
	}
	if (pg_token_parse_authorization(req->authorization, req->authorization_len, &tok) != 0 ||
	    !pg_token_matches(ad->digest, tok)) {
		set(o, 401, "wrong or malformed bearer token");
		*headers = WWW_AUTH ", error=\"invalid_token\"\r\n";
		return 401;
	}
	return 0;
}

static enum admin_result
result_of(int status)
{
	if (status < 400)
		return ADMIN_OK;
	if (status == 401 || status == 403)
		return ADMIN_DENIED;
	return status < 500 ? ADMIN_REJECTED : ADMIN_FAILED;
}

static int
render(struct outcome *o, struct admin_answer *ans)
{
	cJSON *root = o->json;
	char *text;
	int r;

	o->json = NULL;
	if (o->status >= 300) {
		cJSON_Delete(root);
		if ((root = cJSON_CreateObject()) == NULL)
			return PG_ENOMEM;
		cJSON_AddStringToObject(root, "error", o->msg);
		if (o->field != NULL)
			cJSON_AddStringToObject(root, "field", o->field);
	}
	text = root != NULL ? cJSON_PrintUnformatted(root) : NULL;
	cJSON_Delete(root);
	if (text == NULL)
		return PG_ENOMEM;
	r = pg_buf_append_str(&ans->body, text);
	if (r == 0)
		r = pg_buf_append(&ans->body, "\n", 1);
	free(text);
	return r;
}

int
admin_handle(struct admin *ad, struct ops_env *env, const struct httpreq *req,
    const char *path, size_t path_len, const char *peer, struct admin_answer *ans)
{
	struct outcome o;
	struct target t;
	char shown[80];
	int r;

	memset(&o, 0, sizeof(o));
	ans->headers = "";
	parse_target(path, path_len, req->method, &t);
	if (t.action == ADMIN_UNKNOWN) {
		/* The log line names what was asked for (pg_log escapes control bytes). */
		snprintf(shown, sizeof(shown), "%.*s%s", path_len > 64 ? 64 : (int)path_len, path,
		    path_len > 64 ? "..." : "");
		t.label = shown;
	}
	if (authenticate(ad, req, &o, &ans->headers) != 0) {
		/* Refused before the path is looked at: the answer says nothing about what exists. */
	} else if (t.status != 0) {
		set(&o, t.status, "%s", t.msg);
		if (t.status == 405)
			ans->headers = t.allow;
		if (t.status == 400)
			o.field = "user";
	} else {
		dispatch(env, &t, req, peer, &o);
	}
	ans->status = o.status;
	ad->counts[t.action][result_of(o.status)]++;
	LOG_NOTICE(peer, "admin %s%s%s: %d %s", admin_action_name(t.action), t.label[0] ? " " : "",
	    t.label, o.status, o.msg);
	if ((r = render(&o, ans)) != 0) {
		cJSON_Delete(o.json);
		ans->status = 500;
	}
	return r;
}
