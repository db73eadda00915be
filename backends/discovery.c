#include "backends/discovery.h"
#include "core/err.h"
#include "core/fileread.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

struct discovery {
	uv_loop_t *loop;
	uv_fs_poll_t poll;
	struct registry *reg;
	char *path;
	uint32_t poll_ms;
	struct discovery_stats stats;
	int reading;	/* a pg_fileread is in flight */
	int again;	/* the file changed while reading: read once more */
	int stopping;
	int poll_open;	/* the poll handle is not closed yet */
	char last_error[256];	/* to log a persisting error once, not on every poll */
};

static void start_read(struct discovery *d);

static void
maybe_free(struct discovery *d)
{
	if (d->stopping && !d->reading && !d->poll_open) {
		free(d->path);
		free(d);
	}
}

static void
report_error(struct discovery *d, const char *msg)
{
	d->stats.loads_failed++;
	if (strcmp(msg, d->last_error) != 0)
		LOG_WARN("discovery", "%s: %s; keeping the previous instance set", d->path, msg);
	snprintf(d->last_error, sizeof(d->last_error), "%s", msg);
}

static void
on_read(void *arg, int status, const char *data, size_t len)
{
	struct discovery *d = arg;
	struct inst_conf *list = NULL;
	char err[256];
	size_t n = 0;

	d->reading = 0;
	if (d->stopping) {
		maybe_free(d);
		return;
	}
	if (status != 0) {
		report_error(d, pg_strerror(status));
	} else if (pg_discovery_parse(data, len, &list, &n, err, sizeof(err)) != 0) {
		report_error(d, err);
	} else {
		if (d->last_error[0] != '\0' || d->stats.loads_ok == 0)
			LOG_INFO("discovery", "%s: %zu instance%s", d->path, n, n == 1 ? "" : "s");
		d->last_error[0] = '\0';
		d->stats.loads_ok++;
		if (reg_apply(d->reg, INST_SRC_DISCOVERY, list, n) != 0)
			LOG_ERR("discovery", "out of memory applying %s", d->path);
		inst_conf_free_array(list, n);
	}
	if (d->again) {
		d->again = 0;
		start_read(d);
	}
}

static void
start_read(struct discovery *d)
{
	int r;

	if (d->reading) {
		d->again = 1;
		return;
	}
	if ((r = pg_fileread(d->loop, d->path, PG_CONFIG_MAX_BYTES, on_read, d)) != 0) {
		report_error(d, pg_strerror(r));
		return;
	}
	d->reading = 1;
}

static void
on_poll(uv_fs_poll_t *h, int status, const uv_stat_t *prev, const uv_stat_t *curr)
{
	struct discovery *d = h->data;

	if (status < 0) {
		/* Missing or unreadable: keep what we have; the next successful stat reads it again. */
		report_error(d, uv_strerror(status));
		return;
	}
	start_read(d);
}

int
discovery_start(uv_loop_t *loop, struct registry *reg, const char *path, uint32_t poll_ms,
    struct discovery **out)
{
	struct discovery *d = calloc(1, sizeof(*d));
	int r;

	if (d == NULL || (d->path = strdup(path)) == NULL) {
		free(d);
		return PG_ENOMEM;
	}
	d->loop = loop;
	d->reg = reg;
	d->poll_ms = poll_ms;
	if ((r = uv_fs_poll_init(loop, &d->poll)) != 0) {
		free(d->path);
		free(d);
		return r;
	}
	d->poll.data = d;
	d->poll_open = 1;
	if ((r = uv_fs_poll_start(&d->poll, on_poll, path, poll_ms)) != 0) {
		d->stopping = 1;
		discovery_stop(d);
		return r;
	}
	LOG_INFO("discovery", "watching %s every %u ms", path, poll_ms);
	start_read(d);
	*out = d;
	return 0;
}

void
discovery_refresh(struct discovery *d)
{
	if (d != NULL && !d->stopping)
		start_read(d);
}

static void
on_poll_closed(uv_handle_t *h)
{
	struct discovery *d = h->data;

	d->poll_open = 0;
	maybe_free(d);
}

void
discovery_stop(struct discovery *d)
{
	if (d == NULL)
		return;
	d->stopping = 1;
	if (!uv_is_closing((uv_handle_t *)&d->poll))
		uv_close((uv_handle_t *)&d->poll, on_poll_closed);
}

const char *
discovery_path(const struct discovery *d)
{
	return d->path;
}

uint32_t
discovery_poll_ms(const struct discovery *d)
{
	return d->poll_ms;
}

struct discovery_stats
discovery_get_stats(const struct discovery *d)
{
	return d->stats;
}
