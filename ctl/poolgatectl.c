/*
 * poolgatectl: the operator's command line over poolgate's admin API (docs/admin.md). Human tables
 * by default, the server's JSON with --json. Exit codes: 0 done, 1 the server said no or could not
 * be reached, 2 usage (or a token file that cannot be read).
 */
#include "ctl/client.h"
#include "ctl/table.h"
#include "core/buf.h"
#include "core/token.h"
#include "core/urlenc.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EXIT_DONE = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2 };

#define DEFAULT_ADMIN "127.0.0.1:9090"

struct ctl {
	struct ctl_target t;
	int json;
	const char *cmd;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: poolgatectl [options] COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  status             instances: state, users, load (no token needed)\n"
	    "  pins               every pin: user, instance, since, last activity\n"
	    "  drain ID           no new users on ID; users there keep it while they have sessions\n"
	    "  undrain ID         ID back to active (ends a drain or a maint)\n"
	    "  maint ID           no traffic at all to ID\n"
	    "  unpin USER         forget USER's pin: the next login is placed afresh\n"
	    "  move USER ID       pin USER to ID: the next connection goes there\n"
	    "  add FILE           add an instance: a JSON object as in the config's instances[]\n"
	    "                     (FILE - reads standard input)\n"
	    "  remove ID          remove an instance that was added with add\n"
	    "  reload             poolgate re-reads its config file (as on SIGHUP); waits for the result\n"
	    "\n"
	    "options:\n"
	    "  --admin HOST:PORT  poolgate's admin listener (env POOLGATE_ADMIN; default %s)\n"
	    "  --token-file PATH  the admin token (env POOLGATE_TOKEN_FILE)\n"
	    "  --json             print the server's JSON instead of tables\n"
	    "  --timeout SECONDS  for each request (default 10)\n"
	    "  -h, --help         this text\n"
	    "\n"
	    "exit status: 0 done, 1 poolgate said no or could not be reached, 2 usage\n",
	    DEFAULT_ADMIN);
}

static void
say_refused(const struct ctl *c, const char *what, int status, const struct pg_buf *body)
{
	cJSON *root = cJSON_ParseWithLength(body->p != NULL ? (const char *)body->p : "", body->len);
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
	struct pg_buf msg;

	pg_buf_init(&msg, 1u << 16);
	if (cJSON_IsString(e))
		ctl_sanitize(&msg, e->valuestring);
	else
		pg_buf_printf(&msg, "unexpected answer");
	pg_buf_append(&msg, "", 1);
	fprintf(stderr, "poolgatectl: %s: %s (HTTP %d)\n", what, (const char *)msg.p, status);
	if (status == 401 && c->t.token == NULL)
		fprintf(stderr, "poolgatectl: give the admin token with --token-file PATH or "
		    "POOLGATE_TOKEN_FILE\n");
	pg_buf_free(&msg);
	cJSON_Delete(root);
}

/*
 * Runs one request. Returns the parsed JSON body (the caller deletes it) when the status is 2xx;
 * otherwise says why on stderr and returns NULL with *code set. With --json the body is printed
 * as it came, whatever the status, unless quiet.
 */
static cJSON *
call(const struct ctl *c, const char *method, const char *path, const char *body,
    const char *what, int quiet, int *code)
{
	struct pg_buf out;
	char err[512];
	cJSON *root = NULL;
	int status = 0;

	pg_buf_init(&out, CTL_MAX_RESPONSE);
	*code = EXIT_REFUSED;
	if (ctl_request(&c->t, method, path, body, &status, &out, err, sizeof(err)) != 0) {
		fprintf(stderr, "poolgatectl: %s\n", err);
		goto out;
	}
	if (c->json && !quiet && out.len > 0)
		fwrite(out.p, 1, out.len, stdout);
	if (status < 200 || status > 299) {
		if (!c->json || quiet)
			say_refused(c, what, status, &out);
		goto out;
	}
	root = cJSON_ParseWithLength(out.p != NULL ? (const char *)out.p : "", out.len);
	if (root == NULL)
		fprintf(stderr, "poolgatectl: %s: the answer is not JSON\n", what);
	else
		*code = EXIT_DONE;
out:
	pg_buf_free(&out);
	return root;
}

static const char *
str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double
number(const cJSON *o, const char *key, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* A fraction from a figure given as 0..1 or as a percentage; -1 when absent. */
static double
fraction(const cJSON *o, const char *const *keys)
{
	for (; *keys != NULL; keys++) {
		double v = number(o, *keys, -1);
		if (v >= 0)
			return v > 1 && v <= 100 ? v / 100 : v;
	}
	return -1;
}

/*
 * The LOAD column: what the load probe reported under "load", read loosely (it may say
 * "state": "unknown"), the same way the dashboard does.
 */
static void
load_text(const cJSON *inst, char *out, size_t outlen)
{
	static const char *const cpu_keys[] = { "cpu", "cpu_used", "cpu_util", NULL };
	static const char *const mem_keys[] = { "mem", "mem_used", "memory", NULL };
	static const char *const gpu_keys[] = { "gpu", "gpu_util", NULL };
	const cJSON *l = cJSON_GetObjectItemCaseSensitive(inst, "load"), *f;
	const char *state = str(l, "state");
	double cpu, mem, gpu, load1, ncpu, tot, avail;
	size_t n = 0;

	if (!cJSON_IsObject(l) || (state != NULL && strcmp(state, "known") != 0)) {
		snprintf(out, outlen, "unknown");
		return;
	}
	f = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(l, "figures")) ?
	    cJSON_GetObjectItemCaseSensitive(l, "figures") : l;
	cpu = fraction(f, cpu_keys);
	load1 = number(f, "load1", -1);
	ncpu = number(f, "ncpu", number(f, "cpus", 0));
	if (cpu < 0 && load1 >= 0 && ncpu > 0)
		cpu = load1 / ncpu;
	mem = fraction(f, mem_keys);
	tot = number(f, "mem_total_kb", 0);
	avail = number(f, "mem_avail_kb", -1);
	if (mem < 0 && tot > 0 && avail >= 0)
		mem = 1 - avail / tot;
	gpu = number(f, "ngpu", 1) == 0 ? -1 : fraction(f, gpu_keys);
	out[0] = '\0';
	if (cpu >= 0)
		n += (size_t)snprintf(out + n, outlen - n, "cpu %.0f%%", cpu * 100);
	if (mem >= 0 && n < outlen)
		n += (size_t)snprintf(out + n, outlen - n, "%smem %.0f%%", n ? " " : "", mem * 100);
	if (gpu >= 0 && n < outlen)
		n += (size_t)snprintf(out + n, outlen - n, "%sgpu %.0f%%", n ? " " : "", gpu * 100);
	if (n == 0)
		snprintf(out, outlen, "unknown");
}

static int
cmd_status(const struct ctl *c)
{
	static const char *const head[] = { "INSTANCE", "STATE", "USERS", "LOAD", "ADDRESS",
		"SOURCE", "REASON" };
	const cJSON *arr, *in;
	struct ctl_table *t;
	size_t ninst = 0, nusers = 0, nup = 0;
	cJSON *root;
	int code;

	if ((root = call(c, "GET", "/status", NULL, "status", 0, &code)) == NULL || c->json) {
		cJSON_Delete(root);
		return code;
	}
	if ((t = ctl_table_new(7, head)) == NULL) {
		cJSON_Delete(root);
		return EXIT_REFUSED;
	}
	arr = cJSON_GetObjectItemCaseSensitive(root, "instances");
	cJSON_ArrayForEach(in, arr) {
		char users[48], load[96], addr[96], state[64];
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(in, "users");
		const char *st = str(in, "state"), *ov = str(in, "admin_override");
		int nu = cJSON_IsArray(u) ? cJSON_GetArraySize(u) : 0;
		const char *cells[7];

		ninst++;
		nusers += (size_t)nu;
		nup += st != NULL && strcmp(st, "up") == 0;
		snprintf(state, sizeof(state), "%s%s", st != NULL ? st : "?",
		    ov != NULL ? " (operator)" : "");
		snprintf(users, sizeof(users), "%d/%.0f", nu, number(in, "capacity", 0));
		load_text(in, load, sizeof(load));
		snprintf(addr, sizeof(addr), "%s ssh %.0f", str(in, "address") ? str(in, "address") :
		    "?", number(in, "ssh_port", 0));
		cells[0] = str(in, "id");
		cells[1] = state;
		cells[2] = users;
		cells[3] = load;
		cells[4] = addr;
		cells[5] = str(in, "source");
		cells[6] = str(in, "reason");
		if (ctl_table_add(t, cells) != 0)
			break;
	}
	printf("poolgate %s: %zu instance%s, %zu up, %zu user%s pinned\n",
	    str(root, "version") ? str(root, "version") : "?", ninst, ninst == 1 ? "" : "s", nup,
	    nusers, nusers == 1 ? "" : "s");
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	cJSON_Delete(root);
	return EXIT_DONE;
}

static int
cmd_pins(const struct ctl *c)
{
	static const char *const head[] = { "USER", "INSTANCE", "SINCE", "ACTIVE" };
	const cJSON *p;
	struct ctl_table *t;
	cJSON *root;
	int code;

	if ((root = call(c, "GET", "/admin/pins", NULL, "pins", 0, &code)) == NULL || c->json) {
		cJSON_Delete(root);
		return code;
	}
	if ((t = ctl_table_new(4, head)) == NULL) {
		cJSON_Delete(root);
		return EXIT_REFUSED;
	}
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(root, "pins")) {
		const char *cells[4] = { str(p, "user"), str(p, "instance"), str(p, "since"),
			str(p, "active") };
		if (ctl_table_add(t, cells) != 0)
			break;
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	cJSON_Delete(root);
	return EXIT_DONE;
}

/* Prints one line of the answer, sanitized: it holds names the server passed on. */
static void __attribute__((format(printf, 1, 2)))
report(const char *fmt, ...)
{
	char line[2048];
	struct pg_buf b;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pg_buf_init(&b, 1u << 16);
	if (ctl_sanitize(&b, line) == 0 && pg_buf_append(&b, "", 1) == 0)
		printf("%s\n", (const char *)b.p);
	pg_buf_free(&b);
}

static const char *
or_none(const char *s)
{
	return s != NULL ? s : "none";
}

/*
 * METHOD /admin/FIRST/SEGMENT[/LAST], SEGMENT percent-encoded (a user name may hold anything).
 * Returns what call() returns.
 */
static cJSON *
call_on(const struct ctl *c, const char *method, const char *first, const char *segment,
    const char *last, const char *body, const char *what, int *code)
{
	struct pg_buf path;
	cJSON *root = NULL;

	*code = EXIT_REFUSED;
	pg_buf_init(&path, 8192);
	if (pg_buf_printf(&path, "/admin/%s/", first) == 0 &&
	    pg_pct_encode_segment(&path, segment) == 0 &&
	    (last == NULL || pg_buf_printf(&path, "/%s", last) == 0) &&
	    pg_buf_append(&path, "", 1) == 0)
		root = call(c, method, (const char *)path.p, body, what, 0, code);
	pg_buf_free(&path);
	return root;
}

static int
cmd_admin_state(const struct ctl *c, const char *verb, const char *id)
{
	char what[128];
	cJSON *root;
	int code;

	snprintf(what, sizeof(what), "%s %s", verb, id);
	root = call_on(c, "POST", "instances", id, verb, NULL, what, &code);
	if (root != NULL && !c->json)
		report("%s: %s%s", id, or_none(str(cJSON_GetObjectItemCaseSensitive(root, "instance"),
		    "state")), cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "changed")) ? "" :
		    " (already)");
	cJSON_Delete(root);
	return code;
}

static int
cmd_unpin(const struct ctl *c, const char *user)
{
	int code;
	cJSON *root = call_on(c, "DELETE", "pins", user, NULL, NULL, "unpin", &code);

	if (root != NULL && !c->json)
		report("%s: unpinned (was %s)", user, or_none(str(root, "was")));
	cJSON_Delete(root);
	return code;
}

static int
cmd_move(const struct ctl *c, const char *user, const char *id)
{
	cJSON *req = cJSON_CreateObject(), *root = NULL;
	char *body = NULL;
	int code = EXIT_REFUSED;

	if (req != NULL && cJSON_AddStringToObject(req, "instance", id) != NULL &&
	    (body = cJSON_PrintUnformatted(req)) != NULL)
		root = call_on(c, "PUT", "pins", user, NULL, body, "move", &code);
	if (root != NULL && !c->json)
		report("%s: pinned to %s (was %s)", user, or_none(str(root, "instance")),
		    or_none(str(root, "was")));
	cJSON_Delete(root);
	free(body);
	cJSON_Delete(req);
	return code;
}

static int
cmd_add(const struct ctl *c, const char *file)
{
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	struct pg_buf body;
	char chunk[4096];
	size_t n;
	cJSON *root;
	int code = EXIT_REFUSED;

	if (f == NULL) {
		fprintf(stderr, "poolgatectl: add: cannot open %s\n", file);
		return EXIT_USAGE;
	}
	pg_buf_init(&body, 1u << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (pg_buf_append(&body, chunk, n) != 0) {
			fprintf(stderr, "poolgatectl: add: %s is too large\n", file);
			code = EXIT_USAGE;
			goto out;
		}
	}
	if (pg_buf_append(&body, "", 1) != 0)
		goto out;
	if ((root = call(c, "POST", "/admin/instances", (const char *)body.p, "add", 0,
	    &code)) != NULL) {
		const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, "instance");
		if (!c->json)
			report("%s: added (%s)", or_none(str(in, "id")), or_none(str(in, "state")));
		cJSON_Delete(root);
	}
out:
	if (f != stdin)
		fclose(f);
	pg_buf_free(&body);
	return code;
}

static int
cmd_remove(const struct ctl *c, const char *id)
{
	int code;
	cJSON *root = call_on(c, "DELETE", "instances", id, NULL, NULL, "remove", &code);

	if (root != NULL && !c->json)
		report("%s: removed", id);
	cJSON_Delete(root);
	return code;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/*
 * POST /admin/reload answers 202 with the number of reloads done before it ("after"); the outcome
 * shows in /status admin.reload once "done" passes it and no reload is in progress.
 */
static int
cmd_reload(const struct ctl *c)
{
	double after;
	cJSON *root, *st = NULL;
	const cJSON *rl = NULL;
	int code, tries = c->t.timeout_ms / 100 + 1;

	if ((root = call(c, "POST", "/admin/reload", NULL, "reload", 1, &code)) == NULL)
		return code;
	after = number(root, "after", 0);
	cJSON_Delete(root);
	for (int i = 0; i < tries; i++) {
		st = call(c, "GET", "/status", NULL, "reload", 1, &code);
		rl = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "admin"),
		    "reload");
		if (st == NULL || (number(rl, "done", 0) > after &&
		    !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rl, "in_progress"))))
			break;
		cJSON_Delete(st);
		st = NULL;
		sleep_ms(100);
	}
	if (st == NULL) {
		if (code == EXIT_DONE)
			fprintf(stderr, "poolgatectl: reload: no outcome within the timeout\n");
		return EXIT_REFUSED;
	}
	if (c->json) {
		char *text = cJSON_PrintUnformatted(rl);
		if (text != NULL)
			printf("%s\n", text);
		free(text);
	}
	code = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rl, "ok")) ? EXIT_DONE : EXIT_REFUSED;
	if (code == EXIT_DONE && !c->json)
		printf("config reloaded\n");
	else if (code != EXIT_DONE)
		report("reload refused: %s", or_none(str(rl, "error")));
	cJSON_Delete(st);
	return code;
}

static int
run(struct ctl *c, int argc, char **argv)
{
	const char *cmd = argv[0];
	struct { const char *name; int nargs; } cmds[] = { { "status", 0 }, { "pins", 0 },
		{ "drain", 1 }, { "undrain", 1 }, { "maint", 1 }, { "unpin", 1 }, { "move", 2 },
		{ "add", 1 }, { "remove", 1 }, { "reload", 0 } };
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmds[i].name, cmd) == 0)
			break;
	}
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		fprintf(stderr, "poolgatectl: unknown command \"%s\"\n\n", cmd);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (argc - 1 != cmds[i].nargs) {
		fprintf(stderr, "poolgatectl: %s takes %d argument%s\n\n", cmd, cmds[i].nargs,
		    cmds[i].nargs == 1 ? "" : "s");
		usage(stderr);
		return EXIT_USAGE;
	}
	c->cmd = cmd;
	if (strcmp(cmd, "status") == 0)
		return cmd_status(c);
	if (strcmp(cmd, "pins") == 0)
		return cmd_pins(c);
	if (strcmp(cmd, "drain") == 0 || strcmp(cmd, "undrain") == 0 || strcmp(cmd, "maint") == 0)
		return cmd_admin_state(c, cmd, argv[1]);
	if (strcmp(cmd, "unpin") == 0)
		return cmd_unpin(c, argv[1]);
	if (strcmp(cmd, "move") == 0)
		return cmd_move(c, argv[1], argv[2]);
	if (strcmp(cmd, "add") == 0)
		return cmd_add(c, argv[1]);
	if (strcmp(cmd, "remove") == 0)
		return cmd_remove(c, argv[1]);
	return cmd_reload(c);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "admin", required_argument, NULL, 'a' },
		{ "token-file", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *admin = getenv("POOLGATE_ADMIN"), *token_file = getenv("POOLGATE_TOKEN_FILE");
	char token[PG_TOKEN_MAX + 1], err[512], *end;
	struct ctl c;
	size_t toklen;
	long secs;
	int o, code;

	memset(&c, 0, sizeof(c));
	token[0] = '\0';
	c.t.timeout_ms = 10000;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'a':
			admin = optarg;
			break;
		case 't':
			token_file = optarg;
			break;
		case 'j':
			c.json = 1;
			break;
		case 'T':
			secs = strtol(optarg, &end, 10);
			if (*end != '\0' || secs < 1 || secs > 3600) {
				fprintf(stderr, "poolgatectl: --timeout: expected 1..3600 seconds\n");
				return EXIT_USAGE;
			}
			c.t.timeout_ms = (int)secs * 1000;
			break;
		case 'h':
			usage(stdout);
			return EXIT_DONE;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (admin == NULL || admin[0] == '\0')
		admin = DEFAULT_ADMIN;
	if (ctl_parse_hostport(admin, &c.t) != 0) {
		fprintf(stderr, "poolgatectl: --admin: expected HOST:PORT or [IPV6]:PORT, got \"%s\"\n",
		    admin);
		return EXIT_USAGE;
	}
	if (token_file != NULL && token_file[0] != '\0') {
		if (pg_token_read_file(token_file, 0, token, &toklen, err, sizeof(err)) != 0) {
			fprintf(stderr, "poolgatectl: token file %s\n", err);
			return EXIT_USAGE;
		}
		c.t.token = token;
	}
	code = run(&c, argc - optind, argv + optind);
	OPENSSL_cleanse(token, sizeof(token));
	return code;
}
