#include "proxy/ssh/userkeys.h"
#include "core/err.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ukeys {
	uv_work_t work;
	struct keycmd *cmd;
	int work_pending, cmd_pending, released;
	int file_status;
	char path[4096];
	struct pg_buf file;		/* the authorized_keys file */
	struct pg_buf cmd_out;		/* the program's output */
	char prefix[128];
	ukeys_done_cb done;
	void *arg;
};

static void
free_ukeys(struct ukeys *u)
{
	pg_buf_free(&u->file);
	pg_buf_free(&u->cmd_out);
	free(u);
}

static void
maybe_done(struct ukeys *u)
{
	if (u->work_pending || u->cmd_pending)
		return;
	if (u->released) {
		free_ukeys(u);
		return;
	}
	u->done(u->arg);
}

static void
file_work(uv_work_t *w)
{
	struct ukeys *u = w->data;

	/* A worker thread: file I/O only, no loop state, no logging. */
	u->file_status = authkeys_read_file(u->path, &u->file);
}

static void
file_done(uv_work_t *w, int status)
{
	struct ukeys *u = w->data;

	u->work_pending = 0;
	if (status != 0)
		u->file_status = status;
	if (u->file_status != 0 && !u->released)
		LOG_NOTICE(u->prefix, "%s: %s", u->path, u->file_status == PG_ENOTFOUND ?
		    "no such file" : pg_strerror(u->file_status));
	maybe_done(u);
}

static void
cmd_done(void *arg, int status, const struct pg_buf *out)
{
	struct ukeys *u = arg;

	u->cmd_pending = 0;
	u->cmd = NULL;
	if ((status == 0 || status == PG_ETOOBIG) &&
	    pg_buf_append(&u->cmd_out, out->p, out->len) != 0)
		u->cmd_out.len = 0;
	maybe_done(u);
}

int
ukeys_start(uv_loop_t *loop, const char *pattern, const struct keycmd_conf *cmd,
    const char *user, const char *log_prefix, ukeys_done_cb done, void *arg, struct ukeys **out)
{
	struct ukeys *u = calloc(1, sizeof(*u));
	int r;

	*out = NULL;
	if (u == NULL)
		return PG_ENOMEM;
	pg_buf_init(&u->file, AUTHKEYS_MAX_BYTES);
	pg_buf_init(&u->cmd_out, KEYCMD_MAX_OUTPUT);
	snprintf(u->prefix, sizeof(u->prefix), "%s", log_prefix ? log_prefix : "ssh");
	u->done = done;
	u->arg = arg;
	u->file_status = PG_ENOTFOUND;
	if (pattern != NULL) {
		if (authkeys_expand(pattern, user, u->path, sizeof(u->path)) != 0) {
			LOG_NOTICE(u->prefix, "ssh.front_auth.authorized_keys does not expand for %s",
			    user);
		} else {
			u->work.data = u;
			if ((r = uv_queue_work(loop, &u->work, file_work, file_done)) != 0) {
				free_ukeys(u);
				return r;
			}
			u->work_pending = 1;
		}
	}
	/* A program that cannot start is logged by keycmd and gives no keys. */
	if (cmd != NULL && keycmd_run(loop, cmd, user, u->prefix, cmd_done, u, &u->cmd) == 0)
		u->cmd_pending = 1;
	*out = u;
	return u->work_pending || u->cmd_pending ? 0 : 1;
}

int
ukeys_key_ok(struct ukeys *u, const struct sshkey *key, struct authkeys_ctx *ctx)
{
	if (u->work_pending || u->cmd_pending)
		return 0;
	ctx->what = u->path;
	if (u->file_status == 0 && authkeys_match((struct pg_slice){ u->file.p, u->file.len }, key,
	    ctx) == 1)
		return 1;
	ctx->what = "authorized_keys_command";
	return authkeys_match((struct pg_slice){ u->cmd_out.p, u->cmd_out.len }, key, ctx) == 1;
}

int
ukeys_cert_ok(struct ukeys *u, const struct usercert *cert, struct authkeys_ctx *ctx)
{
	if (u->work_pending || u->cmd_pending)
		return 0;
	ctx->what = u->path;
	if (u->file_status == 0 && authkeys_match_cert((struct pg_slice){ u->file.p, u->file.len },
	    cert, ctx) == 1)
		return 1;
	ctx->what = "authorized_keys_command";
	return authkeys_match_cert((struct pg_slice){ u->cmd_out.p, u->cmd_out.len }, cert,
	    ctx) == 1;
}

void
ukeys_release(struct ukeys *u)
{
	if (u == NULL)
		return;
	u->released = 1;
	if (u->cmd_pending) {
		keycmd_cancel(u->cmd);
		u->cmd_pending = 0;
	}
	if (!u->work_pending)
		free_ukeys(u);
}
