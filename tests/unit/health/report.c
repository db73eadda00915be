/*
 * health/report.c: /status JSON and /metrics text, rendered from a registry built by hand. /status is
 * parsed back with cJSON; /metrics is checked line by line against the Prometheus text exposition
 * format 0.0.4 and then by the real `promtool check metrics`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "backends/pins.h"
#include "core/err.h"
#include "health/admin.h"
#include "health/ops.h"

/* Labels that need escaping in the exposition format: a quote, a backslash, a newline. */
static char k_team[] = "team", v_team[] = "data \"science\"";
static char k_path[] = "path", v_path[] = "C:\\pool\\";
static char k_note[] = "note", v_note[] = "two\nlines";
static char k_odd[] = "k\"ey\\", v_odd[] = "plain";

struct fixture {
	struct registry *reg;
	struct pin_table *pins;
	struct ops_env env;
	struct pg_buf out;
};

/* A pin store that writes nothing and reports a disk-error episode, for the store's families. */
static int
nop_load(void *store, pin_put_fn put, pin_del_fn del, void *arg)
{
	return 0;
}

static int
nop_put(void *store, const char *user, const char *id, int64_t since, int64_t active)
{
	return 0;
}

static int
nop_claim(void *store, const char *user, const char *id, int64_t since, int64_t active,
    pin_claim_fn done, void *arg)
{
	done(arg, user, 0, id);
	return 0;
}

static int
nop_del(void *store, const char *user)
{
	return 0;
}

static void
failing_stats(void *store, struct pin_store_stats *st)
{
	st->name = "file";
	st->healthy = 0;
	st->records_synced = 40;
	st->unsynced = 3;
	st->errors = 2;
	st->last_error = UV_ENOSPC;
	st->last_error_op = "write";
	st->last_error_ms = 1767225700000;
	st->snapshot_ms = 1767225600000;
	st->replayed = 12;
	st->torn = 1;
}

static void
nop_close(void *store)
{
}

static const struct pin_store_ops failing_store = { nop_load, nop_put, nop_claim, nop_del,
	failing_stats, nop_close };

static int
setup(void **state)
{
	static struct inst_label labels[] = { { k_team, v_team }, { k_path, v_path },
		{ k_note, v_note }, { k_odd, v_odd } };
	struct inst_conf list[2] = {
		{ .id = "alpha", .address = "10.0.0.1", .ssh_port = 22, .http_port = 8000,
		  .http_tls_verify = 1, .capacity = 8, .labels = labels, .nlabels = 4 },
		{ .id = "beta", .address = "fd00::2", .ssh_port = 2222, .http_port = 443, .http_tls = 1,
		  .http_tls_verify = 1, .capacity = 4 },
	};
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || (f->reg = reg_new()) == NULL)
		return -1;
	if (reg_apply(f->reg, INST_SRC_CONFIG, list, 2) != 0)
		return -1;
	inst_set_health(reg_find(f->reg, "alpha"), HEALTH_UP, "all checks ok");
	/* alice and bob on alpha, bob with two live sessions there; carol live on beta, unpinned. */
	if ((f->pins = pins_new()) == NULL ||
	    pins_attach_store(f->pins, &failing_store, NULL) != 0 ||
	    pins_set(f->pins, "alice", "alpha", 1000) != 0 || pins_set(f->pins, "bob", "alpha", 1000) ||
	    pins_live_begin(f->pins, "bob", "alpha") != 0 ||
	    pins_live_begin(f->pins, "bob", "alpha") != 0 ||
	    pins_live_begin(f->pins, "carol", "beta") != 0)
		return -1;
	f->env.reg = f->reg;
	f->env.pins = f->pins;
	f->env.prober = NULL;
	f->env.discovery = NULL;
	f->env.started_ms = 1767225600123;	/* 2026-01-01T00:00:00.123Z */
	f->env.health_interval_ms = 2000;
	f->env.counters.reloads_ok = 2;
	f->env.counters.reloads_failed = 1;
	f->env.counters.requests[2] = 17;
	f->env.counters.requests[4] = 3;
	f->env.counters.bad_requests = 1;
	f->env.counters.conns_total = 21;
	pg_buf_init(&f->out, 1u << 20);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	pg_buf_free(&f->out);
	pins_free(f->pins);
	reg_free(f->reg);
	free(f);
	return 0;
}

/* ---- /status ---- */

static cJSON *
render_status(struct fixture *f)
{
	cJSON *root;

	assert_int_equal(ops_render_status(&f->env, &f->out), 0);
	assert_true(f->out.len > 0);
	assert_int_equal(f->out.p[f->out.len - 1], '\n');
	root = cJSON_ParseWithLength((const char *)f->out.p, f->out.len);
	assert_non_null(root);
	return root;
}

static const char *
str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsString(v))
		fail_msg("\"%s\" is not a string", key);
	return v->valuestring;
}

static double
num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsNumber(v))
		fail_msg("\"%s\" is not a number", key);
	return v->valuedouble;
}

static void
test_status(void **state)
{
	struct fixture *f = *state;
	cJSON *root = render_status(f), *arr, *a, *b, *labels, *users, *checks;

	assert_string_equal(str(root, "version"), PG_VERSION);
	assert_string_equal(str(root, "started"), "2026-01-01T00:00:00.123Z");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "ready")));
	arr = cJSON_GetObjectItemCaseSensitive(root, "instances");
	assert_true(cJSON_IsArray(arr));
	assert_int_equal(cJSON_GetArraySize(arr), 2);

	a = cJSON_GetArrayItem(arr, 0);
	assert_string_equal(str(a, "id"), "alpha");
	assert_string_equal(str(a, "address"), "10.0.0.1");
	assert_int_equal((int)num(a, "ssh_port"), 22);
	assert_int_equal((int)num(a, "http_port"), 8000);
	assert_string_equal(str(a, "http_scheme"), "http");
	assert_string_equal(str(a, "state"), "up");
	assert_string_equal(str(a, "health"), "up");
	assert_string_equal(str(a, "admin_state"), "active");
	assert_string_equal(str(a, "source"), "config");
	assert_string_equal(str(a, "reason"), "all checks ok");
	assert_int_equal(strlen(str(a, "since")), 24);
	assert_int_equal((int)num(a, "capacity"), 8);
	labels = cJSON_GetObjectItemCaseSensitive(a, "labels");
	assert_true(cJSON_IsObject(labels));
	assert_int_equal(cJSON_GetArraySize(labels), 4);
	assert_string_equal(str(labels, "team"), "data \"science\"");
	assert_string_equal(str(labels, "path"), "C:\\pool\\");
	assert_string_equal(str(labels, "note"), "two\nlines");
	assert_string_equal(str(labels, "k\"ey\\"), "plain");
	users = cJSON_GetObjectItemCaseSensitive(a, "users");
	assert_true(cJSON_IsArray(users));
	assert_int_equal(cJSON_GetArraySize(users), 2);
	assert_int_equal((int)num(a, "live_sessions"), 2);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(a, "drained")));
	/* Without a prober no check is enabled, so none is listed. */
	checks = cJSON_GetObjectItemCaseSensitive(a, "checks");
	assert_true(cJSON_IsObject(checks));
	assert_int_equal(cJSON_GetArraySize(checks), 0);

	b = cJSON_GetArrayItem(arr, 1);
	assert_string_equal(str(b, "id"), "beta");
	assert_string_equal(str(b, "address"), "fd00::2");
	assert_string_equal(str(b, "http_scheme"), "https");
	assert_string_equal(str(b, "state"), "unknown");
	assert_string_equal(str(b, "health"), "unknown");
	assert_string_equal(str(b, "admin_state"), "active");
	assert_string_equal(str(b, "source"), "config");
	assert_string_equal(str(b, "reason"), "not probed yet");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "labels")), 0);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "users")), 0);
	cJSON_Delete(root);
}

static void
test_status_not_ready(void **state)
{
	struct fixture *f = *state;
	struct instance *alpha = reg_find(f->reg, "alpha");
	cJSON *root, *a;

	inst_set_health(alpha, HEALTH_DOWN, "tcp: connection refused");
	root = render_status(f);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(root, "ready")));
	a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "instances"), 0);
	assert_string_equal(str(a, "state"), "down");
	assert_string_equal(str(a, "reason"), "tcp: connection refused");
	cJSON_Delete(root);
}

static void
test_status_admin_and_source(void **state)
{
	struct fixture *f = *state;
	struct inst_conf d = { .id = "gamma", .address = "10.0.0.3", .ssh_port = 22, .http_port = 8000,
		.http_tls_verify = 1, .capacity = 8, .admin = INST_MAINT };
	cJSON *root, *g;

	assert_int_equal(reg_apply(f->reg, INST_SRC_DISCOVERY, &d, 1), 0);
	inst_set_health(reg_find(f->reg, "gamma"), HEALTH_UP, "ok");
	root = render_status(f);
	g = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "instances"), 2);
	assert_string_equal(str(g, "id"), "gamma");
	assert_string_equal(str(g, "state"), "maint");
	assert_string_equal(str(g, "health"), "up");
	assert_string_equal(str(g, "admin_state"), "maint");
	assert_string_equal(str(g, "source"), "discovery");
	cJSON_Delete(root);
}

/* Pins, live sessions and the drained flag an autoscaler waits for. */
static void
test_status_pins_and_drain(void **state)
{
	struct fixture *f = *state;
	struct inst_conf list[2] = {
		{ .id = "alpha", .address = "10.0.0.1", .ssh_port = 22, .http_port = 8000,
		  .http_tls_verify = 1, .capacity = 8, .admin = INST_DRAINING },
		{ .id = "beta", .address = "fd00::2", .ssh_port = 2222, .http_port = 443, .http_tls = 1,
		  .http_tls_verify = 1, .capacity = 4, .admin = INST_DRAINING },
	};
	cJSON *root, *pins, *a, *b, *users;

	assert_int_equal(reg_apply(f->reg, INST_SRC_CONFIG, list, 2), 0);
	pins_live_end(f->pins, "carol", "beta", 2000);
	root = render_status(f);
	pins = cJSON_GetObjectItemCaseSensitive(root, "pins");
	assert_int_equal(num(pins, "total"), 2);
	assert_int_equal(num(pins, "live_sessions"), 2);
	assert_string_equal(str(pins, "store"), "file");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(pins, "store_healthy")));
	assert_string_equal(str(pins, "store_last_error"), "no space left on device");
	a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "instances"), 0);
	b = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "instances"), 1);
	assert_string_equal(str(a, "state"), "draining");
	assert_int_equal(num(a, "live_sessions"), 2);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(a, "drained")));
	users = cJSON_GetObjectItemCaseSensitive(a, "users");
	assert_int_equal(cJSON_GetArraySize(users), 2);
	assert_string_equal(cJSON_GetArrayItem(users, 0)->valuestring, "alice");
	assert_int_equal(num(b, "live_sessions"), 0);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "drained")));
	cJSON_Delete(root);
}

/* A full buffer is an error, not a truncated document. */
static void
test_status_too_big(void **state)
{
	struct fixture *f = *state;

	f->out.max = 64;
	assert_int_equal(ops_render_status(&f->env, &f->out), PG_ETOOBIG);
	assert_int_equal(f->out.len, 0);
	f->out.max = 1u << 20;
}

/* ---- /metrics ---- */

#define MAX_LABELS 8
#define MAX_FAMILIES 64

struct sample {
	char name[128];
	size_t nlabels;
	char lname[MAX_LABELS][64];
	char lvalue[MAX_LABELS][256];	/* unescaped */
	double value;
};

static int
name_start(int c, int colon)
{
	return isalpha(c) || c == '_' || (colon && c == ':');
}

static int
name_char(int c, int colon)
{
	return isalnum(c) || c == '_' || (colon && c == ':');
}

/*
 * One sample line of the text format 0.0.4, without a timestamp (we never send one):
 *   name [ "{" lname "=" "\"" value "\"" { "," lname "=" "\"" value "\"" } "}" ] " " float
 * Inside a label value only \\, \" and \n are legal escapes. Returns NULL, or what is wrong.
 */
static const char *
parse_sample(const char *line, struct sample *s)
{
	const char *p = line;
	char *end;
	size_t n;

	memset(s, 0, sizeof(*s));
	if (!name_start((unsigned char)*p, 1))
		return "bad metric name";
	for (n = 0; name_char((unsigned char)*p, 1); p++) {
		if (n + 1 >= sizeof(s->name))
			return "metric name too long";
		s->name[n++] = *p;
	}
	if (*p == '{') {
		p++;
		while (*p != '}') {
			if (s->nlabels == MAX_LABELS)
				return "too many labels";
			if (!name_start((unsigned char)*p, 0))
				return "bad label name";
			for (n = 0; name_char((unsigned char)*p, 0); p++) {
				if (n + 1 >= sizeof(s->lname[0]))
					return "label name too long";
				s->lname[s->nlabels][n++] = *p;
			}
			if (*p++ != '=' || *p++ != '"')
				return "expected =\"";
			for (n = 0; *p != '"'; p++) {
				char c = *p;
				if (c == '\0')
					return "unterminated label value";
				if (c == '\\') {
					p++;
					if (*p == '\\' || *p == '"')
						c = *p;
					else if (*p == 'n')
						c = '\n';
					else
						return "bad escape in label value";
				}
				if (n + 1 >= sizeof(s->lvalue[0]))
					return "label value too long";
				s->lvalue[s->nlabels][n++] = c;
			}
			p++;
			s->nlabels++;
			if (*p == ',')
				p++;
			else if (*p != '}')
				return "expected , or }";
		}
		p++;
	}
	if (*p++ != ' ')
		return "expected one space before the value";
	if (*p == '\0' || isspace((unsigned char)*p))
		return "missing value";
	s->value = strtod(p, &end);
	if (*end != '\0')
		return "value is not a float";
	return NULL;
}

struct family {
	char name[128];
	int help, type;
	int closed;	/* another family started after it */
};

static struct family *
family_get(struct family *fams, size_t *nfams, const char *name)
{
	for (size_t i = 0; i < *nfams; i++) {
		if (strcmp(fams[i].name, name) == 0)
			return &fams[i];
	}
	assert_true(*nfams < MAX_FAMILIES);
	snprintf(fams[*nfams].name, sizeof(fams[0].name), "%s", name);
	return &fams[(*nfams)++];
}

/* Returns the text as a NUL-terminated copy. */
static char *
render_metrics(struct fixture *f)
{
	char *text;

	assert_int_equal(ops_render_metrics(&f->env, &f->out), 0);
	assert_true(f->out.len > 0);
	assert_int_equal(f->out.p[f->out.len - 1], '\n');
	assert_null(memchr(f->out.p, '\0', f->out.len));
	text = malloc(f->out.len + 1);
	assert_non_null(text);
	memcpy(text, f->out.p, f->out.len);
	text[f->out.len] = '\0';
	return text;
}

static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	}
	return 0;
}

static void
test_metrics_format(void **state)
{
	struct fixture *f = *state;
	char *text = render_metrics(f), *save = NULL, *line;
	struct family fams[MAX_FAMILIES];
	struct family *cur = NULL;
	size_t nfams = 0, nsamples = 0, lineno = 0;
	char seen[256][512];
	size_t nseen = 0;

	memset(fams, 0, sizeof(fams));
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		struct sample s;
		const char *why;
		struct family *fam;
		char key[512];
		int n;

		lineno++;
		if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
			char name[128];
			const char *rest = line + 7;
			size_t len = strcspn(rest, " ");

			assert_true(len > 0 && len < sizeof(name) && rest[len] == ' ' && rest[len + 1] != '\0');
			memcpy(name, rest, len);
			name[len] = '\0';
			fam = family_get(fams, &nfams, name);
			if (fam != cur) {
				if (fam->closed || fam->help || fam->type)
					fail_msg("line %zu: family %s declared twice or split", lineno, name);
				if (cur != NULL)
					cur->closed = 1;
				cur = fam;
			}
			if (line[2] == 'H') {
				assert_int_equal(fam->help, 0);
				fam->help = 1;
			} else {
				const char *t = rest + len + 1;
				assert_int_equal(fam->type, 0);
				assert_true(strcmp(t, "counter") == 0 || strcmp(t, "gauge") == 0);
				fam->type = 1;
			}
			continue;
		}
		if (line[0] == '#')
			fail_msg("line %zu: unexpected comment \"%s\"", lineno, line);
		if ((why = parse_sample(line, &s)) != NULL)
			fail_msg("line %zu: %s: \"%s\"", lineno, why, line);
		nsamples++;
		fam = family_get(fams, &nfams, s.name);
		if (fam != cur)
			fail_msg("line %zu: sample of %s outside its family block", lineno, s.name);
		if (!fam->help || !fam->type)
			fail_msg("line %zu: %s has no HELP or TYPE before its samples", lineno, s.name);
		/* No series twice: name plus its label set (we always emit labels in one order). */
		n = snprintf(key, sizeof(key), "%s", s.name);
		for (size_t i = 0; i < s.nlabels && n > 0 && (size_t)n < sizeof(key); i++)
			n += snprintf(key + n, sizeof(key) - (size_t)n, "|%s=%s", s.lname[i], s.lvalue[i]);
		for (size_t i = 0; i < nseen; i++) {
			if (strcmp(seen[i], key) == 0)
				fail_msg("line %zu: duplicate series %s", lineno, line);
		}
		assert_true(nseen < 256);
		snprintf(seen[nseen++], sizeof(seen[0]), "%s", key);
		assert_false(isnan(s.value));
	}
	assert_true(nsamples > 20);
	for (size_t i = 0; i < nfams; i++) {
		if (!fams[i].help || !fams[i].type)
			fail_msg("family %s lacks HELP or TYPE", fams[i].name);
	}
	free(text);
}

static void
test_metrics_values(void **state)
{
	struct fixture *f = *state;
	char *text = render_metrics(f);

	assert_true(has_line(text, "poolgate_instance_up{instance=\"alpha\"} 1"));
	assert_true(has_line(text, "poolgate_instance_up{instance=\"beta\"} 0"));
	assert_true(has_line(text, "poolgate_ready 1"));
	assert_true(has_line(text, "poolgate_instances{state=\"up\"} 1"));
	assert_true(has_line(text, "poolgate_instances{state=\"unknown\"} 1"));
	assert_true(has_line(text, "poolgate_instances{state=\"down\"} 0"));
	assert_true(has_line(text, "poolgate_instance_state{instance=\"alpha\",state=\"up\"} 1"));
	assert_true(has_line(text, "poolgate_instance_state{instance=\"alpha\",state=\"unknown\"} 0"));
	assert_true(has_line(text, "poolgate_instance_state{instance=\"beta\",state=\"unknown\"} 1"));
	assert_true(has_line(text, "poolgate_instance_state_changes_total{instance=\"alpha\"} 1"));
	assert_true(has_line(text, "poolgate_instance_state_changes_total{instance=\"beta\"} 0"));
	assert_true(has_line(text, "poolgate_instance_capacity_users{instance=\"beta\"} 4"));
	assert_true(has_line(text, "poolgate_start_time_seconds 1767225600.123"));
	assert_true(has_line(text, "poolgate_config_reloads_total{result=\"ok\"} 2"));
	assert_true(has_line(text, "poolgate_config_reloads_total{result=\"error\"} 1"));
	assert_true(has_line(text, "poolgate_admin_requests_total{code=\"2xx\"} 17"));
	assert_true(has_line(text, "poolgate_admin_requests_total{code=\"4xx\"} 3"));
	assert_true(has_line(text, "poolgate_admin_connections_total 21"));
	assert_true(has_line(text, "# TYPE poolgate_instance_up gauge"));
	assert_true(has_line(text, "# TYPE poolgate_config_reloads_total counter"));
	assert_true(has_line(text, "poolgate_pins 2"));
	assert_true(has_line(text, "poolgate_live_sessions 3"));
	assert_true(has_line(text, "poolgate_instance_users{instance=\"alpha\"} 2"));
	assert_true(has_line(text, "poolgate_instance_live_sessions{instance=\"alpha\"} 2"));
	assert_true(has_line(text, "poolgate_instance_live_sessions{instance=\"beta\"} 1"));
	assert_true(has_line(text, "poolgate_instance_drained{instance=\"alpha\"} 0"));
	assert_true(has_line(text, "poolgate_pin_changes_total{change=\"created\"} 2"));
	assert_true(has_line(text, "poolgate_pin_store_info{store=\"file\"} 1"));
	assert_true(has_line(text, "poolgate_pin_store_healthy{store=\"file\"} 0"));
	assert_true(has_line(text, "poolgate_pin_journal_unsynced_changes 3"));
	assert_true(has_line(text, "poolgate_pin_store_last_error_timestamp_seconds 1767225700.000"));
	assert_true(has_line(text, "poolgate_pin_store_last_error_info{op=\"write\","
	    "error=\"no space left on device\"} 1"));
	assert_true(has_line(text, "poolgate_pin_replay_torn_tails 1"));
	assert_true(has_line(text, "# TYPE poolgate_pin_journal_synced_records_total counter"));
	/* No discovery watcher: no discovery family. */
	assert_null(strstr(text, "poolgate_discovery_loads_total"));
	/* No prober: no probe samples, but the families are still declared. */
	assert_null(strstr(text, "poolgate_probe_total{"));
	free(text);
}

static void
test_metrics_label_escaping(void **state)
{
	struct fixture *f = *state;
	char *text = render_metrics(f);

	assert_true(has_line(text, "poolgate_instance_label_info{instance=\"alpha\",label=\"team\","
	    "value=\"data \\\"science\\\"\"} 1"));
	assert_true(has_line(text, "poolgate_instance_label_info{instance=\"alpha\",label=\"path\","
	    "value=\"C:\\\\pool\\\\\"} 1"));
	assert_true(has_line(text, "poolgate_instance_label_info{instance=\"alpha\",label=\"note\","
	    "value=\"two\\nlines\"} 1"));
	assert_true(has_line(text, "poolgate_instance_label_info{instance=\"alpha\","
	    "label=\"k\\\"ey\\\\\",value=\"plain\"} 1"));
	free(text);
}

/* The unescaped values read back equal the configured ones. */
static void
test_metrics_label_round_trip(void **state)
{
	struct fixture *f = *state;
	char *text = render_metrics(f), *save = NULL;
	int found = 0;

	for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		struct sample s;

		if (strncmp(line, "poolgate_instance_label_info{", 29) != 0)
			continue;
		assert_null(parse_sample(line, &s));
		assert_int_equal(s.nlabels, 3);
		assert_string_equal(s.lvalue[0], "alpha");
		if (strcmp(s.lvalue[1], "team") == 0)
			assert_string_equal(s.lvalue[2], v_team);
		else if (strcmp(s.lvalue[1], "path") == 0)
			assert_string_equal(s.lvalue[2], v_path);
		else if (strcmp(s.lvalue[1], "note") == 0)
			assert_string_equal(s.lvalue[2], v_note);
		else if (strcmp(s.lvalue[1], k_odd) == 0)
			assert_string_equal(s.lvalue[2], v_odd);
		else
			fail_msg("unexpected label %s", s.lvalue[1]);
		found++;
	}
	assert_int_equal(found, 4);
	free(text);
}

/* The checker above must itself reject what the format does not allow. */
static void
test_parser_rejects(void **state)
{
	static const char *const bad[] = { "1abc 1", "m{a=\"x} 1", "m{a=\"x\\t\"} 1", "m{a=x} 1",
		"m  1", "m 1 ", "m", "m{a=\"x\"}1", "m{a=\"x\" } 1", "m{1a=\"x\"} 1", "m 1x" };
	struct sample s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_sample(bad[i], &s) == NULL)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_null(parse_sample("m{a=\"x\\\"\\\\\\n\",b=\"\"} -1.5e3", &s));
	assert_int_equal(s.nlabels, 2);
	assert_string_equal(s.lvalue[0], "x\"\\\n");
	assert_true(s.value == -1500);
}

/* An operator's override shows per instance, in admin.overrides and in /metrics. */
static void
test_status_admin_override(void **state)
{
	struct fixture *f = *state;
	const cJSON *a, *ov, *acts;
	cJSON *root;
	char *text;

	assert_int_equal(reg_set_admin(f->reg, "alpha", INST_DRAINING, "drained by an operator"), 0);
	root = render_status(f);
	a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "instances"), 0);
	assert_string_equal(str(a, "state"), "draining");
	assert_string_equal(str(a, "admin_override"), "draining");
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "instances"), 1),
	    "admin_override")));
	a = cJSON_GetObjectItemCaseSensitive(root, "admin");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(a, "actions_enabled")));
	ov = cJSON_GetObjectItemCaseSensitive(a, "overrides");
	assert_int_equal(cJSON_GetArraySize(ov), 1);
	assert_string_equal(str(cJSON_GetArrayItem(ov, 0), "id"), "alpha");
	assert_string_equal(str(cJSON_GetArrayItem(ov, 0), "base"), "active");
	acts = cJSON_GetObjectItemCaseSensitive(a, "actions");
	assert_int_equal(cJSON_GetArraySize(acts), ADMIN_NACTIONS);
	assert_non_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(acts,
	    "drain"), "denied"));
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(a, "reload"), "last")));
	cJSON_Delete(root);
	text = render_metrics(f);
	assert_non_null(strstr(text,
	    "\npoolgate_admin_override{instance=\"alpha\",admin_state=\"draining\"} 1\n"));
	assert_non_null(strstr(text,
	    "\npoolgate_admin_actions_total{action=\"move\",result=\"rejected\"} 0\n"));
	assert_non_null(strstr(text, "\npoolgate_admin_actions_enabled 0\n"));
	free(text);
}

static void
test_promtool(void **state)
{
	struct fixture *f = *state;
	char *text;
	FILE *p;
	int st;

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		print_message("promtool is not installed (Debian: prometheus); skipping the promtool "
		    "check of /metrics\n");
		skip();
	}
	text = render_metrics(f);
	signal(SIGPIPE, SIG_IGN);
	p = popen("promtool check metrics", "w");
	assert_non_null(p);
	assert_int_equal(fwrite(text, 1, strlen(text), p), strlen(text));
	st = pclose(p);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_not_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_admin_and_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_pins_and_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_admin_override, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_label_escaping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_label_round_trip, setup, teardown),
		cmocka_unit_test(test_parser_rejects),
		cmocka_unit_test_setup_teardown(test_promtool, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
