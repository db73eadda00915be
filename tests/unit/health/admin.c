/*
 * health/admin.c: the admin API without sockets. Requests are built by hand and handed to
 * admin_handle() with a registry, a pin table and the operator's layer behind it: the token
 * checks (403 without a token file, 401 without or with a wrong token, also of the same length,
 * before anything about the path is said), routing (404, 405 with Allow), every action, and the
 * errors that name a field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/adminstate.h"
#include "backends/pins.h"
#include "core/err.h"
#include "health/admin.h"

#define TOKEN "0123456789abcdef0123456789abcdef"
#define AUTH "Bearer " TOKEN

struct fixture {
	char dir[64];
	uv_loop_t loop;
	struct registry *reg;
	struct pin_table *pins;
	struct astate *astate;
	struct admin *admin;
	struct ops_env env;
	int reloads;
	int reload_result;
	/* the last answer */
	int status;
	char headers[256];
	cJSON *json;
};

static int
stub_reload(void *arg)
{
	struct fixture *f = arg;

	if (f->reload_result == 0)
		f->reloads++;
	return f->reload_result;
}

static int
setup_with(void **state, int with_token)
{
	struct inst_conf conf[2] = {
		{ .id = "c1", .address = "10.0.0.1", .ssh_port = 22, .http_port = 8000,
		  .http_tls_verify = 1, .capacity = 8 },
		{ .id = "c2", .address = "10.0.0.2", .ssh_port = 22, .http_port = 8000,
		  .http_tls_verify = 1, .capacity = 8 },
	};
	struct fixture *f = calloc(1, sizeof(*f));
	char path[128], err[256];
	int fd;

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/pg-admin-XXXXXX");
	if (mkdtemp(f->dir) == NULL || uv_loop_init(&f->loop) != 0 || (f->reg = reg_new()) == NULL ||
	    (f->pins = pins_new()) == NULL || reg_apply(f->reg, INST_SRC_CONFIG, conf, 2) != 0 ||
	    astate_open(&f->loop, f->reg, f->dir, &f->astate) != 0)
		return -1;
	inst_set_health(reg_find(f->reg, "c1"), HEALTH_UP, "ok");
	inst_set_health(reg_find(f->reg, "c2"), HEALTH_UP, "ok");
	snprintf(path, sizeof(path), "%s/token", f->dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
	    write(fd, TOKEN "\n", sizeof(TOKEN)) != (ssize_t)sizeof(TOKEN))
		return -1;
	close(fd);
	if (admin_new(&f->loop, with_token ? path : NULL, &f->admin, err, sizeof(err)) != 0)
		return -1;
	f->env.reg = f->reg;
	f->env.pins = f->pins;
	f->env.admin = f->admin;
	f->env.astate = f->astate;
	f->env.start_reload = stub_reload;
	f->env.reload_arg = f;
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	return setup_with(state, 1);
}

static int
setup_no_token(void **state)
{
	return setup_with(state, 0);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];

	cJSON_Delete(f->json);
	astate_close(f->astate);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	admin_free(f->admin);
	pins_free(f->pins);
	reg_free(f->reg);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	snprintf(path, sizeof(path), "%s/token", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/admin.json", f->dir);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* One request; returns the status and keeps the parsed answer in f->json. */
static int
req(struct fixture *f, int method, const char *path, const char *auth, const char *body)
{
	struct httpreq rq = { method, path, strlen(path), 1, auth, auth ? strlen(auth) : 0,
		body ? body : "", body ? strlen(body) : 0 };
	struct admin_answer ans;

	cJSON_Delete(f->json);
	pg_buf_init(&ans.body, 1u << 20);
	assert_int_equal(admin_handle(f->admin, &f->env, &rq, path, strlen(path), "admin test",
	    &ans), 0);
	f->status = ans.status;
	snprintf(f->headers, sizeof(f->headers), "%s", ans.headers);
	assert_true(ans.body.len > 0);
	f->json = cJSON_ParseWithLength((const char *)ans.body.p, ans.body.len);
	assert_non_null(f->json);
	pg_buf_free(&ans.body);
	return f->status;
}

static const char *
jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void
test_no_token_file_403(void **state)
{
	struct fixture *f = *state;

	assert_false(admin_enabled(f->admin));
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/drain", AUTH, NULL), 403);
	assert_non_null(strstr(jstr(f->json, "error"), "admin.token_file"));
	assert_int_equal(inst_state(reg_find(f->reg, "c1")), INST_S_UP);
	assert_int_equal(admin_count(f->admin, ADMIN_DRAIN, ADMIN_DENIED), 1);
}

static void
test_401(void **state)
{
	struct fixture *f = *state;

	assert_true(admin_enabled(f->admin));
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/drain", NULL, NULL), 401);
	assert_string_equal(f->headers, "WWW-Authenticate: Bearer realm=\"poolgate admin\"\r\n");
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/drain", "Bearer wrong", NULL), 401);
	assert_non_null(strstr(f->headers, "error=\"invalid_token\""));
	/* Same length, one character off. */
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/drain",
	    "Bearer 0123456789abcdef0123456789abcdeF", NULL), 401);
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/drain", "Basic " TOKEN, NULL), 401);
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/drain", AUTH "x", NULL), 401);
	/* Nothing changed, and an unknown path says nothing before the token is right. */
	assert_int_equal(inst_state(reg_find(f->reg, "c1")), INST_S_UP);
	assert_int_equal(req(f, HTTP_GET, "/admin/nothing-here", NULL, NULL), 401);
	assert_int_equal(admin_count(f->admin, ADMIN_DRAIN, ADMIN_DENIED), 5);
	assert_int_equal(admin_count(f->admin, ADMIN_UNKNOWN, ADMIN_DENIED), 1);
}

static void
test_routing(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(req(f, HTTP_GET, "/admin/nothing-here", AUTH, NULL), 404);
	assert_int_equal(req(f, HTTP_GET, "/admin", AUTH, NULL), 404);
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/explode", AUTH, NULL), 404);
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/drain/more", AUTH, NULL), 404);
	assert_int_equal(req(f, HTTP_GET, "/admin/instances/c1/drain", AUTH, NULL), 405);
	assert_string_equal(f->headers, "Allow: POST\r\n");
	assert_int_equal(req(f, HTTP_POST, "/admin/pins/alice", AUTH, NULL), 405);
	assert_string_equal(f->headers, "Allow: PUT, DELETE\r\n");
	assert_int_equal(req(f, HTTP_DELETE, "/admin/pins", AUTH, NULL), 405);
	assert_int_equal(req(f, HTTP_GET, "/admin/reload", AUTH, NULL), 405);
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/no-such/drain", AUTH, NULL), 404);
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/%zz/drain", AUTH, NULL), 404);
	assert_int_equal(admin_count(f->admin, ADMIN_DRAIN, ADMIN_REJECTED), 3);
}

static void
test_drain_undrain_maint(void **state)
{
	struct fixture *f = *state;
	struct instance *c1 = reg_find(f->reg, "c1");
	const cJSON *in;

	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/drain", AUTH, NULL), 200);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f->json, "changed")));
	in = cJSON_GetObjectItemCaseSensitive(f->json, "instance");
	assert_string_equal(jstr(in, "state"), "draining");
	assert_string_equal(jstr(in, "admin_override"), "draining");
	assert_non_null(strstr(jstr(in, "reason"), "drained by an operator (admin test)"));
	assert_int_equal(inst_state(c1), INST_S_DRAINING);
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/drain", AUTH, "{}"), 200);
	assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f->json, "changed")));
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/maint", AUTH, " \r\n"), 200);
	assert_int_equal(inst_state(c1), INST_S_MAINT);
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/undrain", AUTH, NULL), 200);
	assert_int_equal(inst_state(c1), INST_S_UP);
	assert_false(reg_get_override(f->reg, "c1", NULL));
	/* These take no body. */
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/drain", AUTH, "{\"why\": 1}"), 400);
	assert_string_equal(jstr(f->json, "field"), "why");
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/drain", AUTH, "[1]"), 400);
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c1/drain", AUTH, "{} x"), 400);
	assert_int_equal(inst_state(c1), INST_S_UP);
	assert_int_equal(admin_count(f->admin, ADMIN_DRAIN, ADMIN_OK), 2);
	assert_int_equal(admin_count(f->admin, ADMIN_MAINT, ADMIN_OK), 1);
	assert_int_equal(admin_count(f->admin, ADMIN_UNDRAIN, ADMIN_OK), 1);
}

static void
test_move_and_unpin(void **state)
{
	struct fixture *f = *state;

	/* A user name with a slash and markup, percent-encoded in the path. */
	assert_int_equal(req(f, HTTP_PUT, "/admin/pins/al%2Fice%3Cb%3E", AUTH,
	    "{\"instance\": \"c2\"}"), 200);
	assert_string_equal(jstr(f->json, "user"), "al/ice<b>");
	assert_string_equal(jstr(f->json, "instance"), "c2");
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(f->json, "was")));
	assert_string_equal(pins_get(f->pins, "al/ice<b>"), "c2");
	assert_int_equal(req(f, HTTP_PUT, "/admin/pins/al%2Fice%3Cb%3E", AUTH,
	    "{\"instance\": \"c1\"}"), 200);
	assert_string_equal(jstr(f->json, "was"), "c2");
	assert_string_equal(pins_get(f->pins, "al/ice<b>"), "c1");

	assert_int_equal(req(f, HTTP_GET, "/admin/pins", AUTH, NULL), 200);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f->json, "pins")), 1);

	/* Refused moves leave the pin alone. */
	assert_int_equal(req(f, HTTP_PUT, "/admin/pins/bob", AUTH, "{\"instance\": \"c9\"}"), 404);
	assert_int_equal(req(f, HTTP_PUT, "/admin/pins/bob", AUTH, "{}"), 400);
	assert_string_equal(jstr(f->json, "field"), "instance");
	assert_int_equal(req(f, HTTP_PUT, "/admin/pins/bob", AUTH, "{\"instance\": 3}"), 400);
	assert_string_equal(jstr(f->json, "field"), "instance");
	assert_int_equal(req(f, HTTP_PUT, "/admin/pins/bob", AUTH,
	    "{\"instance\": \"c1\", \"force\": true}"), 400);
	assert_string_equal(jstr(f->json, "field"), "force");
	assert_int_equal(req(f, HTTP_PUT, "/admin/pins/bob", AUTH, "not json"), 400);
	assert_int_equal(req(f, HTTP_PUT, "/admin/pins/b%zzob", AUTH, "{\"instance\": \"c1\"}"), 400);
	assert_string_equal(jstr(f->json, "field"), "user");
	assert_int_equal(req(f, HTTP_PUT, "/admin/pins/b%00ob", AUTH, "{\"instance\": \"c1\"}"), 400);
	assert_int_equal(req(f, HTTP_PUT, "/admin/pins/b%2", AUTH, "{\"instance\": \"c1\"}"), 400);
	assert_int_equal(req(f, HTTP_POST, "/admin/instances/c2/drain", AUTH, NULL), 200);
	assert_int_equal(req(f, HTTP_PUT, "/admin/pins/bob", AUTH, "{\"instance\": \"c2\"}"), 409);
	assert_null(pins_get(f->pins, "bob"));

	assert_int_equal(req(f, HTTP_DELETE, "/admin/pins/al%2Fice%3Cb%3E", AUTH, NULL), 200);
	assert_string_equal(jstr(f->json, "was"), "c1");
	assert_null(pins_get(f->pins, "al/ice<b>"));
	assert_int_equal(req(f, HTTP_DELETE, "/admin/pins/al%2Fice%3Cb%3E", AUTH, NULL), 404);
	assert_int_equal(admin_count(f->admin, ADMIN_MOVE, ADMIN_OK), 2);
	assert_int_equal(admin_count(f->admin, ADMIN_UNPIN, ADMIN_REJECTED), 1);
}

static void
test_add_remove(void **state)
{
	struct fixture *f = *state;
	struct instance *in;

	/* The config's own validator: the error names the field. */
	assert_int_equal(req(f, HTTP_POST, "/admin/instances", AUTH,
	    "{\"id\": \"n1\", \"address\": \"10.0.0.5\", \"ssh_port\": 70000}"), 400);
	assert_string_equal(jstr(f->json, "field"), "ssh_port");
	assert_int_equal(req(f, HTTP_POST, "/admin/instances", AUTH,
	    "{\"id\": \"n<1>\", \"address\": \"10.0.0.5\"}"), 400);
	assert_string_equal(jstr(f->json, "field"), "id");
	assert_int_equal(req(f, HTTP_POST, "/admin/instances", AUTH,
	    "{\"id\": \"n1\", \"address\": \"10.0.0.5\", \"colour\": \"red\"}"), 400);
	assert_string_equal(jstr(f->json, "field"), "colour");
	assert_int_equal(req(f, HTTP_POST, "/admin/instances", AUTH, "{\"address\": \"10.0.0.5\"}"),
	    400);
	assert_string_equal(jstr(f->json, "field"), "id");
	assert_int_equal(req(f, HTTP_POST, "/admin/instances", AUTH, ""), 400);
	assert_null(reg_find(f->reg, "n1"));

	assert_int_equal(req(f, HTTP_POST, "/admin/instances", AUTH,
	    "{\"id\": \"n1\", \"address\": \"10.0.0.5\", \"ssh_port\": 2022, \"capacity\": 2}"), 201);
	in = reg_find(f->reg, "n1");
	assert_non_null(in);
	assert_int_equal(in->source, INST_SRC_API);
	assert_int_equal(in->conf.capacity, 2);
	assert_string_equal(jstr(cJSON_GetObjectItemCaseSensitive(f->json, "instance"), "source"),
	    "api");
	assert_int_equal(req(f, HTTP_POST, "/admin/instances", AUTH,
	    "{\"id\": \"c1\", \"address\": \"10.0.0.5\"}"), 409);
	assert_int_equal(req(f, HTTP_POST, "/admin/instances", AUTH,
	    "{\"id\": \"n1\", \"address\": \"10.0.0.6\"}"), 409);

	assert_int_equal(req(f, HTTP_DELETE, "/admin/instances/c1", AUTH, NULL), 409);
	assert_non_null(strstr(jstr(f->json, "error"), "config file"));
	assert_int_equal(req(f, HTTP_DELETE, "/admin/instances/zz", AUTH, NULL), 404);
	assert_int_equal(req(f, HTTP_DELETE, "/admin/instances/n1", AUTH, NULL), 200);
	assert_null(reg_find(f->reg, "n1"));
	assert_int_equal(req(f, HTTP_DELETE, "/admin/instances/n1", AUTH, NULL), 404);
	assert_int_equal(admin_count(f->admin, ADMIN_ADD, ADMIN_OK), 1);
	assert_int_equal(admin_count(f->admin, ADMIN_ADD, ADMIN_REJECTED), 7);
	assert_int_equal(admin_count(f->admin, ADMIN_REMOVE, ADMIN_OK), 1);
}

static void
test_reload(void **state)
{
	struct fixture *f = *state;

	f->env.reload.done = 4;
	assert_int_equal(req(f, HTTP_POST, "/admin/reload", AUTH, NULL), 202);
	assert_int_equal(f->reloads, 1);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(f->json, "after")->valuedouble, 4);
	f->reload_result = PG_EINVAL;
	assert_int_equal(req(f, HTTP_POST, "/admin/reload", AUTH, NULL), 409);
	assert_non_null(strstr(jstr(f->json, "error"), "no config file"));
	assert_int_equal(admin_count(f->admin, ADMIN_RELOAD, ADMIN_OK), 1);
	assert_int_equal(admin_count(f->admin, ADMIN_RELOAD, ADMIN_REJECTED), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_token_file_403, setup_no_token, teardown),
		cmocka_unit_test_setup_teardown(test_401, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_undrain_maint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move_and_unpin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
