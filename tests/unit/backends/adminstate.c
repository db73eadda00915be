/*
 * backends/adminstate.c: the operator's overrides and API instances survive a "restart" (a second
 * registry reading the same state_dir), a drop of an override is saved too, an unreadable file is
 * ignored, and writes run on the thread pool (the loop runs until they are done).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/adminstate.h"
#include "core/err.h"

struct fixture {
	char dir[64];
	uv_loop_t loop;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/pg-astate-XXXXXX");
	if (mkdtemp(f->dir) == NULL || uv_loop_init(&f->loop) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];

	snprintf(path, sizeof(path), "%s/admin.json", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/admin.json.tmp", f->dir);
	unlink(path);
	rmdir(f->dir);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

static struct inst_conf
ic(const char *id, const char *address)
{
	return (struct inst_conf){ .id = (char *)id, .address = (char *)address, .ssh_port = 22,
		.http_port = 8000, .http_tls_verify = 1, .capacity = 8 };
}

/* A "process": a registry with the config's instances and the operator's layer from dir. */
static struct registry *
start(struct fixture *f, struct astate **s)
{
	struct inst_conf conf[2] = { ic("c1", "10.0.0.1"), ic("c2", "10.0.0.2") };
	struct registry *reg = reg_new();

	assert_non_null(reg);
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, conf, 2), 0);
	assert_int_equal(astate_open(&f->loop, reg, f->dir, s), 0);
	return reg;
}

static void
stop(struct fixture *f, struct registry *reg, struct astate *s)
{
	astate_close(s);
	/* The write in flight finishes on the loop. */
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	reg_free(reg);
}

static void
test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct inst_conf added = ic("api-1", "10.0.0.9");
	char k[] = "zone", v[] = "\"quoted\" \\ value";
	struct inst_label label = { k, v };
	struct registry *reg;
	struct astate *s;
	struct instance *in;
	enum inst_admin ov;
	struct stat st;
	char path[128];

	reg = start(f, &s);
	added.labels = &label;
	added.nlabels = 1;
	added.http_tls = 1;
	added.http_tls_verify = 0;
	added.capacity = 3;
	assert_int_equal(astate_add(s, &added), 0);
	assert_int_equal(astate_add(s, &added), PG_EEXIST);
	assert_int_equal(astate_add(s, &(struct inst_conf){ .id = "c1" }), PG_EEXIST);
	assert_true(astate_has(s, "api-1"));
	assert_int_equal(reg_find(reg, "api-1")->source, INST_SRC_API);
	assert_int_equal(reg_set_admin(reg, "c1", INST_DRAINING, "drained by an operator"), 0);
	assert_int_equal(reg_set_admin(reg, "api-1", INST_MAINT, "maint by an operator"), 0);
	stop(f, reg, s);

	snprintf(path, sizeof(path), "%s/admin.json", f->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* The next "process" finds all of it again. */
	reg = start(f, &s);
	in = reg_find(reg, "api-1");
	assert_non_null(in);
	assert_int_equal(in->source, INST_SRC_API);
	assert_int_equal(in->conf.capacity, 3);
	assert_int_equal(in->conf.http_tls, 1);
	assert_int_equal(in->conf.http_tls_verify, 0);
	assert_int_equal(in->conf.nlabels, 1);
	assert_string_equal(in->conf.labels[0].value, "\"quoted\" \\ value");
	assert_int_equal(inst_state(in), INST_S_MAINT);
	assert_true(reg_get_override(reg, "c1", &ov));
	assert_int_equal(ov, INST_DRAINING);
	assert_int_equal(inst_state(reg_find(reg, "c1")), INST_S_DRAINING);

	/* Undrain and remove; both saved. */
	assert_int_equal(reg_set_admin(reg, "c1", INST_ACTIVE, "undrained by an operator"), 0);
	assert_int_equal(astate_remove(s, "api-1"), 0);
	assert_int_equal(astate_remove(s, "api-1"), PG_ENOTFOUND);
	assert_int_equal(astate_remove(s, "c2"), PG_ENOTFOUND);
	assert_null(reg_find(reg, "api-1"));
	stop(f, reg, s);

	reg = start(f, &s);
	assert_null(reg_find(reg, "api-1"));
	assert_false(reg_get_override(reg, "c1", NULL));
	assert_false(reg_get_override(reg, "api-1", NULL));
	stop(f, reg, s);
}

/* An override the config overtakes is dropped, and the drop is saved without any admin action. */
static void
test_drop_saved(void **state)
{
	struct fixture *f = *state;
	struct inst_conf conf[2] = { ic("c1", "10.0.0.1"), ic("c2", "10.0.0.2") };
	struct registry *reg;
	struct astate *s;

	reg = start(f, &s);
	assert_int_equal(reg_set_admin(reg, "c2", INST_MAINT, "maint by an operator"), 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(astate_get_stats(s).writes_ok, 1);
	conf[1].admin = INST_DRAINING;
	assert_int_equal(reg_apply(reg, INST_SRC_CONFIG, conf, 2), 0);
	assert_false(reg_get_override(reg, "c2", NULL));
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(astate_get_stats(s).writes_ok, 2);
	stop(f, reg, s);

	reg = start(f, &s);
	assert_false(reg_get_override(reg, "c2", NULL));
	stop(f, reg, s);
}

static void
test_bad_file_ignored(void **state)
{
	struct fixture *f = *state;
	struct registry *reg;
	struct astate *s;
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/admin.json", f->dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs("{\"version\": 1, \"overrides\": [{\"id\": \"c1\", \"admin_state\": \"sideways\"", fp);
	fclose(fp);
	reg = start(f, &s);
	assert_false(reg_get_override(reg, "c1", NULL));
	assert_int_equal(reg_count(reg), 2);
	/* Left as it was until a change rewrites it. */
	assert_int_equal(astate_get_stats(s).writes_ok, 0);
	stop(f, reg, s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_saved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_file_ignored, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
