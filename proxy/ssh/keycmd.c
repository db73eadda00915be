#include "proxy/ssh/keycmd.h"
#include "certs/authkeys.h"
#include "core/err.h"
#include "core/log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STDERR_KEEP 256

struct keycmd {
	uv_process_t proc;
	uv_pipe_t out, err;
	uv_timer_t timer;
	int handles;		/* initialised handles not yet closed */
	int out_open, err_open, running, closing, cancelled, reported;
	int status;		/* 0 until an outcome is known */
	int64_t exit_status;
	uint32_t timeout_ms;
	int term_signal;
	struct pg_buf output;
	char errbuf[STDERR_KEEP + 1];
	size_t errlen;
	char rbuf[64 * 1024];
	char prefix[128];
	keycmd_done_cb cb;
	void *arg;
};

static void
on_closed(uv_handle_t *h)
{
	struct keycmd *k = h->data;

	if (--k->handles == 0) {
		pg_buf_free(&k->output);
		free(k);
	}
}

static void
close_handle(struct keycmd *k, uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, on_closed);
}

/*
 * Kills the program's whole process group (it is a session leader: UV_PROCESS_DETACHED), also
 * after the leader exited while a child of it still holds the pipes. Never after the report:
 * the group is gone by then and its number could name someone else's.
 */
static void
kill_group(struct keycmd *k)
{
	if (!k->reported && k->proc.pid > 0)
		(void)kill(-k->proc.pid, SIGKILL);
}

static void
close_all(struct keycmd *k)
{
	if (k->closing)
		return;
	k->closing = 1;
	kill_group(k);
	close_handle(k, (uv_handle_t *)&k->out);
	close_handle(k, (uv_handle_t *)&k->err);
	close_handle(k, (uv_handle_t *)&k->timer);
	/* The process handle closes once the exit is reaped (on_exit), or now if it never ran. */
	if (!k->running)
		close_handle(k, (uv_handle_t *)&k->proc);
}

/* The first bytes of its standard error, printable, for a log line. */
static const char *
err_text(struct keycmd *k)
{
	while (k->errlen > 0 && (k->errbuf[k->errlen - 1] == '\n' || k->errbuf[k->errlen - 1] == ' '))
		k->errlen--;
	for (size_t i = 0; i < k->errlen; i++)
		if (k->errbuf[i] < 0x20 || k->errbuf[i] > 0x7e)
			k->errbuf[i] = k->errbuf[i] == '\n' ? ' ' : '?';
	k->errbuf[k->errlen] = '\0';
	return k->errbuf;
}

/* Reports once all is known: the program exited (or was killed) and its output is closed. */
static void
maybe_report(struct keycmd *k)
{
	const char *e;

	if (k->reported || k->running || k->out_open || k->err_open)
		return;
	k->reported = 1;
	e = err_text(k);
	if (k->status == 0 && (k->exit_status != 0 || k->term_signal != 0)) {
		if (k->term_signal != 0)
			LOG_NOTICE(k->prefix, "authorized_keys_command killed by signal %d; no keys%s%s",
			    k->term_signal, e[0] ? ": " : "", e);
		else
			LOG_NOTICE(k->prefix, "authorized_keys_command exited with status %lld; no "
			    "keys%s%s", (long long)k->exit_status, e[0] ? ": " : "", e);
		k->status = PG_ESTATUS;
	}
	if (k->status != 0 && k->status != PG_ETOOBIG)
		k->output.len = 0;
	if (!k->cancelled)
		k->cb(k->arg, k->status, &k->output);
	close_all(k);
}

static void
on_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
	struct keycmd *k = p->data;

	k->running = 0;
	k->exit_status = exit_status;
	k->term_signal = term_signal;
	/* Killed by us (timeout, cut): the outcome is already known. */
	if (k->status == PG_ETIMEDOUT || k->status == PG_ETOOBIG)
		k->term_signal = 0, k->exit_status = 0;
	close_handle(k, (uv_handle_t *)&k->proc);
	if (k->cancelled) {
		close_all(k);
		return;
	}
	maybe_report(k);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct keycmd *k = h->data;

	(void)hint;
	*buf = uv_buf_init(k->rbuf, sizeof(k->rbuf));
}

static void
stop_pipe(struct keycmd *k, uv_pipe_t *p)
{
	uv_read_stop((uv_stream_t *)p);
	if (p == &k->out)
		k->out_open = 0;
	else
		k->err_open = 0;
}

static void
on_out(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct keycmd *k = s->data;
	size_t room;

	if (n == 0)
		return;
	if (n < 0) {
		stop_pipe(k, &k->out);
		maybe_report(k);
		return;
	}
	room = KEYCMD_MAX_OUTPUT - k->output.len;
	if ((size_t)n <= room && pg_buf_append(&k->output, buf->base, (size_t)n) == 0)
		return;
	/* Past the bound: keep the whole lines before it, stop the program. */
	if (pg_buf_append(&k->output, buf->base, (size_t)n < room ? (size_t)n : room) != 0)
		k->output.len = 0;
	while (k->output.len > 0 && k->output.p[k->output.len - 1] != '\n')
		k->output.len--;
	LOG_NOTICE(k->prefix, "authorized_keys_command wrote more than %d bytes: output cut there "
	    "and the program killed", KEYCMD_MAX_OUTPUT);
	k->status = PG_ETOOBIG;
	stop_pipe(k, &k->out);
	kill_group(k);
	maybe_report(k);
}

static void
on_err(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct keycmd *k = s->data;

	if (n < 0) {
		stop_pipe(k, &k->err);
		maybe_report(k);
		return;
	}
	if (n > 0 && k->errlen < STDERR_KEEP) {
		size_t take = STDERR_KEEP - k->errlen < (size_t)n ? STDERR_KEEP - k->errlen : (size_t)n;

		memcpy(k->errbuf + k->errlen, buf->base, take);
		k->errlen += take;
	}
}

static void
on_timeout(uv_timer_t *t)
{
	struct keycmd *k = t->data;

	if (k->reported)
		return;
	LOG_NOTICE(k->prefix, "authorized_keys_command did not finish within %u ms "
	    "(timeout_ms): killed; no keys", k->timeout_ms);
	k->status = PG_ETIMEDOUT;
	kill_group(k);
	/* A grandchild may hold the pipes open: stop waiting for them. */
	stop_pipe(k, &k->out);
	stop_pipe(k, &k->err);
	maybe_report(k);
}

/* Expands %u and %% of one argument into a new string. */
static char *
expand_arg(const char *a, const char *user)
{
	size_t n = 1;
	char *out, *o;

	for (const char *p = a; *p != '\0'; p++)
		n += (p[0] == '%' && p[1] == 'u') ? strlen(user) : 1;
	if ((out = o = malloc(n)) == NULL)
		return NULL;
	for (const char *p = a; *p != '\0'; p++) {
		if (p[0] == '%' && (p[1] == 'u' || p[1] == '%')) {
			if (p[1] == 'u') {
				memcpy(o, user, strlen(user));
				o += strlen(user);
			} else
				*o++ = '%';
			p++;
		} else
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

int
keycmd_run(uv_loop_t *loop, const struct keycmd_conf *conf, const char *user,
    const char *log_prefix, keycmd_done_cb cb, void *arg, struct keycmd **out)
{
	char *args[KEYCMD_MAX_ARGS + 1] = { NULL };
	char *env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", NULL };
	uv_stdio_container_t stdio[3];
	uv_process_options_t opt;
	struct keycmd *k;
	size_t n = conf->argc < KEYCMD_MAX_ARGS ? conf->argc : KEYCMD_MAX_ARGS;
	int r = 0;

	if (!authkeys_user_ok(user) || n == 0)
		return PG_EINVAL;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return PG_ENOMEM;
	for (size_t i = 0; i < n; i++)
		if ((args[i] = expand_arg(conf->argv[i], user)) == NULL)
			r = PG_ENOMEM;
	if (r != 0) {
		for (size_t i = 0; i < n; i++)
			free(args[i]);
		free(k);
		return r;
	}
	pg_buf_init(&k->output, KEYCMD_MAX_OUTPUT);
	snprintf(k->prefix, sizeof(k->prefix), "%s", log_prefix ? log_prefix : "ssh");
	k->cb = cb;
	k->arg = arg;
	k->timeout_ms = conf->timeout_ms;
	k->proc.data = k->out.data = k->err.data = k->timer.data = k;
	uv_pipe_init(loop, &k->out, 0);
	uv_pipe_init(loop, &k->err, 0);
	uv_timer_init(loop, &k->timer);
	k->handles = 4;		/* out, err, timer, and the process handle (closed after spawn too) */
	memset(&opt, 0, sizeof(opt));
	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&k->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&k->err;
	opt.file = args[0];
	opt.args = args;
	opt.env = env;
	opt.cwd = "/";
	opt.exit_cb = on_exit_cb;
	opt.stdio = stdio;
	opt.stdio_count = 3;
	/* Its own session and process group, so a timeout can kill everything it started. */
	opt.flags = UV_PROCESS_DETACHED;
	if (conf->set_ids) {
		opt.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
		opt.uid = conf->uid;
		opt.gid = conf->gid;
	}
	r = uv_spawn(loop, &k->proc, &opt);
	for (size_t i = 0; i < n; i++)
		free(args[i]);
	if (r != 0) {
		LOG_ERR(k->prefix, "authorized_keys_command %s: cannot start: %s", conf->argv[0],
		    uv_strerror(r));
		k->closing = 1;
		close_handle(k, (uv_handle_t *)&k->out);
		close_handle(k, (uv_handle_t *)&k->err);
		close_handle(k, (uv_handle_t *)&k->timer);
		close_handle(k, (uv_handle_t *)&k->proc);
		return r;
	}
	k->running = k->out_open = k->err_open = 1;
	uv_read_start((uv_stream_t *)&k->out, on_alloc, on_out);
	uv_read_start((uv_stream_t *)&k->err, on_alloc, on_err);
	uv_timer_start(&k->timer, on_timeout, conf->timeout_ms, 0);
	*out = k;
	return 0;
}

void
keycmd_cancel(struct keycmd *k)
{
	if (k == NULL)
		return;
	k->cancelled = 1;
	if (k->reported)
		return;		/* close_all() already ran after the report */
	close_all(k);
}
