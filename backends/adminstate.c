#include "backends/adminstate.h"
#include "core/err.h"
#include "core/fileread.h"
#include "core/log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ASTATE_FILE "admin.json"

/* One write on the thread pool: the text to write, and what became of it. */
struct awrite {
	uv_work_t work;
	struct astate *s;
	char *text;
	int status;		/* 0 or a negative code */
	char err[256];
};

struct astate {
	uv_loop_t *loop;
	struct registry *reg;
	char *path, *tmp_path, *dir;
	struct inst_conf *list;		/* instances the admin API added, in the order added */
	size_t n;
	uint64_t gen_saved;		/* reg_overrides_gen() of the newest state handed to a write */
	struct awrite *writing;		/* in flight, or NULL */
	char *pending;			/* the newest state, waiting for that write to end */
	struct astate_stats stats;
	int closing;
};

/* --- rendering: the format pg_admin_state_parse() reads ------------------------------------- */

static cJSON *
instance_json(const struct inst_conf *ic)
{
	cJSON *o = cJSON_CreateObject(), *labels;

	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "id", ic->id);
	cJSON_AddStringToObject(o, "address", ic->address);
	cJSON_AddNumberToObject(o, "ssh_port", ic->ssh_port);
	cJSON_AddNumberToObject(o, "http_port", ic->http_port);
	cJSON_AddBoolToObject(o, "http_tls", ic->http_tls);
	cJSON_AddBoolToObject(o, "http_tls_verify", ic->http_tls_verify);
	if (ic->http_ca_file != NULL)
		cJSON_AddStringToObject(o, "http_ca_file", ic->http_ca_file);
	cJSON_AddNumberToObject(o, "capacity", ic->capacity);
	cJSON_AddStringToObject(o, "admin_state", inst_admin_name(ic->admin));
	labels = cJSON_AddObjectToObject(o, "labels");
	for (size_t i = 0; labels != NULL && i < ic->nlabels; i++)
		cJSON_AddStringToObject(labels, ic->labels[i].key, ic->labels[i].value);
	return o;
}

static int
override_json(void *arg, const char *id, enum inst_admin admin, enum inst_admin base)
{
	cJSON *arr = arg, *o = cJSON_CreateObject();

	if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
		cJSON_Delete(o);
		return PG_ENOMEM;
	}
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "admin_state", inst_admin_name(admin));
	cJSON_AddStringToObject(o, "base", inst_admin_name(base));
	return 0;
}

cJSON *
astate_overrides_json(const struct registry *reg)
{
	cJSON *arr = cJSON_CreateArray();

	if (arr != NULL && reg_foreach_override(reg, override_json, arr) != 0) {
		cJSON_Delete(arr);
		arr = NULL;
	}
	return arr;
}

/* Returns the state as JSON text (the caller frees it) or NULL when out of memory. */
static char *
render(struct astate *s)
{
	cJSON *root = cJSON_CreateObject(), *arr;
	char *text = NULL;

	if (root == NULL)
		return NULL;
	cJSON_AddNumberToObject(root, "version", 1);
	if (!cJSON_AddItemToObject(root, "overrides", astate_overrides_json(s->reg)) ||
	    (arr = cJSON_AddArrayToObject(root, "instances")) == NULL)
		goto out;
	for (size_t i = 0; i < s->n; i++) {
		cJSON *o = instance_json(&s->list[i]);
		if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			goto out;
		}
	}
	/* cJSON drops members it could not allocate silently; printing failing is our only signal. */
	text = cJSON_Print(root);
out:
	cJSON_Delete(root);
	return text;
}

/* --- writing, on the thread pool ------------------------------------------------------------ */

static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
write_work(uv_work_t *w)
{
	struct awrite *aw = w->data;
	struct astate *s = aw->s;
	int fd, dfd;

	fd = open(s->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(aw->err, sizeof(aw->err), "%s: %s", s->tmp_path, strerror(errno));
		aw->status = PG_EIO;
		return;
	}
	if (write_all(fd, aw->text, strlen(aw->text)) != 0 || write_all(fd, "\n", 1) != 0 ||
	    fsync(fd) != 0) {
		snprintf(aw->err, sizeof(aw->err), "%s: %s", s->tmp_path, strerror(errno));
		aw->status = PG_EIO;
		close(fd);
		unlink(s->tmp_path);
		return;
	}
	close(fd);
	if (rename(s->tmp_path, s->path) != 0) {
		snprintf(aw->err, sizeof(aw->err), "rename to %s: %s", s->path, strerror(errno));
		aw->status = PG_EIO;
		unlink(s->tmp_path);
		return;
	}
	/* The rename itself is durable only once the directory is. */
	if ((dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		if (fsync(dfd) != 0) {
			snprintf(aw->err, sizeof(aw->err), "fsync %s: %s", s->dir, strerror(errno));
			aw->status = PG_EIO;
		}
		close(dfd);
	}
}

static void start_write(struct astate *s, char *text);

static void
free_state(struct astate *s)
{
	inst_conf_free_array(s->list, s->n);
	free(s->pending);
	free(s->path);
	free(s->tmp_path);
	free(s->dir);
	free(s);
}

static void
after_write(uv_work_t *w, int status)
{
	struct awrite *aw = w->data;
	struct astate *s = aw->s;
	char *next;

	if (status != 0 && aw->status == 0) {
		snprintf(aw->err, sizeof(aw->err), "%s", uv_strerror(status));
		aw->status = status;
	}
	if (aw->status != 0) {
		s->stats.writes_failed++;
		LOG_ERR("admin", "cannot save the operator's state: %s; it stays in force in memory",
		    aw->err);
	} else {
		s->stats.writes_ok++;
		LOG_DEBUG("admin", "operator's state saved in %s", s->path);
	}
	free(aw->text);
	free(aw);
	s->writing = NULL;
	if ((next = s->pending) != NULL) {
		s->pending = NULL;
		start_write(s, next);
	} else if (s->closing) {
		free_state(s);
	}
}

/* Takes text (malloc'd). */
static void
start_write(struct astate *s, char *text)
{
	struct awrite *aw;
	int r;

	if (s->writing != NULL) {
		free(s->pending);
		s->pending = text;
		return;
	}
	if ((aw = calloc(1, sizeof(*aw))) == NULL) {
		free(text);
		s->stats.writes_failed++;
		LOG_ERR("admin", "out of memory saving the operator's state");
		return;
	}
	aw->s = s;
	aw->text = text;
	aw->work.data = aw;
	if ((r = uv_queue_work(s->loop, &aw->work, write_work, after_write)) != 0) {
		s->stats.writes_failed++;
		LOG_ERR("admin", "cannot save the operator's state: %s", uv_strerror(r));
		free(text);
		free(aw);
		return;
	}
	s->writing = aw;
}

static void
save(struct astate *s)
{
	char *text;

	if (s->closing)
		return;
	s->gen_saved = reg_overrides_gen(s->reg);
	if ((text = render(s)) == NULL) {
		s->stats.writes_failed++;
		LOG_ERR("admin", "out of memory saving the operator's state");
		return;
	}
	start_write(s, text);
}

/* --- watching the registry ------------------------------------------------------------------ */

static void
check_overrides(struct astate *s)
{
	if (reg_overrides_gen(s->reg) != s->gen_saved)
		save(s);
}

static void
hook_added(void *arg, struct instance *in)
{
	check_overrides(arg);
}

static void
hook_changed(void *arg, struct instance *in, int endpoint)
{
	check_overrides(arg);
}

static void
hook_removed(void *arg, struct instance *in)
{
	check_overrides(arg);
}

/* --- the API ------------------------------------------------------------------------------- */

static void
apply(struct astate *s)
{
	if (reg_apply(s->reg, INST_SRC_API, s->list, s->n) != 0)
		LOG_ERR("admin", "out of memory applying the admin API's instances");
}

static char *
join_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Reads the file and restores what it holds. Every problem is logged; none stops the start. */
static int
load(struct astate *s)
{
	struct admin_override *ov = NULL;
	struct inst_conf *list = NULL;
	size_t nov = 0, n = 0;
	struct pg_buf text;
	char err[512];
	int r;

	pg_buf_init(&text, PG_CONFIG_MAX_BYTES + 1);
	r = pg_read_file(s->path, PG_CONFIG_MAX_BYTES, &text);
	if (r == PG_ENOTFOUND) {
		r = 0;
		goto out;
	}
	if (r != 0) {
		pg_file_error(s->path, r, err, sizeof(err));
		LOG_ERR("admin", "%s; starting without the operator's overrides and instances", err);
		r = r == PG_ENOMEM ? r : 0;
		goto out;
	}
	r = pg_admin_state_parse(text.p != NULL ? (const char *)text.p : "", text.len, &ov, &nov,
	    &list, &n, err, sizeof(err));
	if (r != 0) {
		LOG_ERR("admin", "%s: %s; starting without the operator's overrides and instances "
		    "(the file is left as it is until the next admin action rewrites it)", s->path, err);
		r = r == PG_ENOMEM ? r : 0;
		goto out;
	}
	for (size_t i = 0; i < nov && r == 0; i++)
		r = reg_restore_override(s->reg, ov[i].id, ov[i].admin, ov[i].base);
	s->list = list;
	s->n = n;
	list = NULL;
	apply(s);
	if (nov + s->n > 0)
		LOG_INFO("admin", "restored from %s: %zu operator override%s, %zu instance%s added "
		    "through the admin API", s->path, nov, nov == 1 ? "" : "s", s->n,
		    s->n == 1 ? "" : "s");
out:
	pg_admin_overrides_free(ov, nov);
	inst_conf_free_array(list, n);
	pg_buf_free(&text);
	return r;
}

int
astate_open(uv_loop_t *loop, struct registry *reg, const char *state_dir, struct astate **out)
{
	struct astate *s = calloc(1, sizeof(*s));
	struct reg_hooks hooks = { hook_added, hook_changed, hook_removed, NULL };
	int r = PG_ENOMEM;

	if (s == NULL)
		return PG_ENOMEM;
	s->loop = loop;
	s->reg = reg;
	hooks.arg = s;
	if ((s->dir = strdup(state_dir)) == NULL ||
	    (s->path = join_path(state_dir, ASTATE_FILE)) == NULL ||
	    (s->tmp_path = join_path(state_dir, ASTATE_FILE ".tmp")) == NULL ||
	    (r = load(s)) != 0)
		goto fail;
	/* What was just restored is what the file says: nothing to write back. */
	s->gen_saved = reg_overrides_gen(reg);
	if ((r = reg_add_hooks(reg, &hooks)) != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	free_state(s);
	return r;
}

void
astate_close(struct astate *s)
{
	if (s == NULL)
		return;
	reg_remove_hooks(s->reg, s);
	s->closing = 1;
	s->reg = NULL;
	if (s->writing == NULL)
		free_state(s);
}

static size_t
find(const struct astate *s, const char *id)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (strcmp(s->list[i].id, id) == 0)
			break;
	}
	return i;
}

int
astate_has(const struct astate *s, const char *id)
{
	return find(s, id) < s->n;
}

int
astate_add(struct astate *s, const struct inst_conf *ic)
{
	struct inst_conf *grown;

	if (reg_find(s->reg, ic->id) != NULL || astate_has(s, ic->id))
		return PG_EEXIST;
	if ((grown = realloc(s->list, (s->n + 1) * sizeof(*grown))) == NULL)
		return PG_ENOMEM;
	s->list = grown;
	if (inst_conf_copy(&s->list[s->n], ic) != 0)
		return PG_ENOMEM;
	s->n++;
	apply(s);
	save(s);
	return 0;
}

int
astate_remove(struct astate *s, const char *id)
{
	size_t i = find(s, id);

	if (i == s->n)
		return PG_ENOTFOUND;
	inst_conf_clear(&s->list[i]);
	memmove(&s->list[i], &s->list[i + 1], (s->n - i - 1) * sizeof(s->list[0]));
	s->n--;
	apply(s);
	save(s);
	return 0;
}

void
astate_refresh(struct astate *s)
{
	if (s != NULL)
		apply(s);
}

struct astate_stats
astate_get_stats(const struct astate *s)
{
	struct astate_stats none = { 0, 0 };

	return s != NULL ? s->stats : none;
}
