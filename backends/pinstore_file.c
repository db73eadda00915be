#include "backends/pinstore_file.h"
#include "backends/pinrec.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/fileread.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOGP "pins"

enum job_kind { JOB_APPEND, JOB_COMPACT };

/*
 * One job on the thread pool. The loop fills the inputs and does not touch the job again until
 * after_work; the worker reads the inputs and writes only err, op and new_fd.
 */
struct job {
	enum job_kind kind;
	struct pg_buf data;	/* APPEND: journal records; COMPACT: the whole snapshot */
	uint64_t records;	/* APPEND: records in data */
	uint64_t covers;	/* changes durable once the job succeeds */
	uint64_t generation;	/* COMPACT: the new generation */
	int fd;			/* the journal (APPEND; COMPACT closes it on success) */
	uint64_t off;		/* APPEND: where data goes */
	const char *dir, *snapshot, *snapshot_tmp, *journal, *journal_tmp;
	int64_t now_ms;
	/* Out. */
	int err;		/* 0 or a negated errno */
	const char *op;		/* static: the step that failed */
	int new_fd;		/* COMPACT: the new journal, open for writing */
	uint64_t new_off;	/* COMPACT: its length (the header) */
};

struct pinstore_file {
	uv_loop_t *loop;
	const struct pin_table *table;	/* NULL once closed */
	struct pinstore_file_conf conf;
	char *dir, *snapshot, *snapshot_tmp, *journal, *journal_tmp;
	uv_timer_t timer;		/* group commit and retry */
	uv_work_t work;
	uv_fs_t close_req;
	struct job job;
	int busy;			/* a job is on the thread pool */
	struct pg_buf pending;		/* encoded journal records waiting for the next batch */
	uint64_t pending_records;
	int fd;				/* the journal, -1 when none is open */
	uint64_t journal_off;		/* its length: where the next batch goes */
	uint64_t snapshot_bytes;
	uint64_t generation;
	int snapshot_due;		/* the next job writes a snapshot; changes need no record */
	int disabled;			/* never write: the files could not be read at start */
	int failing;			/* in a disk-error episode */
	int64_t failing_since_ms;
	uint64_t retry_at;		/* uv_now(): no job before this while failing */
	int closing, finished;
	struct pin_store_stats st;
};

static char *
path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + 1 + strlen(name) + 1;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static void
free_store(struct pinstore_file *s)
{
	pg_buf_free(&s->pending);
	pg_buf_free(&s->job.data);
	free(s->dir);
	free(s->snapshot);
	free(s->snapshot_tmp);
	free(s->journal);
	free(s->journal_tmp);
	free(s);
}

int
pinstore_file_open(uv_loop_t *loop, const char *dir, const struct pinstore_file_conf *conf,
    const struct pin_table *table, struct pinstore_file **out)
{
	struct pinstore_file *s;

	if (strlen(dir) == 0 || strlen(dir) > 4000)
		return PG_EINVAL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return PG_ENOMEM;
	s->loop = loop;
	s->table = table;
	s->conf = *conf;
	s->fd = -1;
	s->st.name = "file";
	/* The pending buffer is bounded; past it, a snapshot replaces the records (queue_record). */
	pg_buf_init(&s->pending, 16u << 20);
	pg_buf_init(&s->job.data, PINSTORE_FILE_MAX_BYTES);
	if ((s->dir = strdup(dir)) == NULL || (s->snapshot = path_in(dir, "pins.snapshot")) == NULL ||
	    (s->snapshot_tmp = path_in(dir, "pins.snapshot.tmp")) == NULL ||
	    (s->journal = path_in(dir, "pins.journal")) == NULL ||
	    (s->journal_tmp = path_in(dir, "pins.journal.tmp")) == NULL ||
	    uv_timer_init(loop, &s->timer) != 0) {
		free_store(s);
		return PG_ENOMEM;
	}
	s->timer.data = s;
	s->work.data = s;
	*out = s;
	return 0;
}

void
pinstore_file_set_conf(struct pinstore_file *s, const struct pinstore_file_conf *conf)
{
	s->conf = *conf;
}

/* ---- the worker side (libuv's thread pool: file I/O only, no loop state, no logging) ---- */

static int
write_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : UV_EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	/* Some file systems cannot fsync a directory (EINVAL): their renames are as durable as it gets. */
	if (fsync(fd) != 0 && errno != EINVAL)
		r = -errno;
	close(fd);
	return r;
}

/* Sets job->err from errno (or r) and job->op, and returns -1. */
static int
job_fail(struct job *j, const char *op, int r)
{
	j->err = r != 0 ? r : (errno != 0 ? -errno : UV_EIO);
	j->op = op;
	return -1;
}

/* Writes data into a new file at tmp, fsyncs it and renames it to path. Returns its fd or -1. */
static int
replace_file(struct job *j, const char *tmp, const char *path, const uint8_t *data, size_t len)
{
	int fd, r;

	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return job_fail(j, "create", 0);
	if ((r = write_all(fd, data, len, 0)) != 0) {
		job_fail(j, "write", r);
		goto fail;
	}
	if (fdatasync(fd) != 0) {
		job_fail(j, "fsync", 0);
		goto fail;
	}
	if (rename(tmp, path) != 0) {
		job_fail(j, "rename", 0);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	unlink(tmp);
	return -1;
}

static void
compact_work(struct job *j)
{
	uint8_t head[64];
	struct pg_buf h;
	int fd, jfd, r;

	if ((fd = replace_file(j, j->snapshot_tmp, j->snapshot, j->data.p, j->data.len)) < 0)
		return;
	close(fd);
	/* The new journal starts with its header; it is the fd later batches go to. */
	pg_buf_init(&h, sizeof(head));
	if (pinrec_put_header(&h, PINREC_JOURNAL, j->generation, j->now_ms) != 0) {
		job_fail(j, "encode", PG_ENOMEM);
		pg_buf_free(&h);
		return;
	}
	jfd = replace_file(j, j->journal_tmp, j->journal, h.p, h.len);
	j->new_off = h.len;
	pg_buf_free(&h);
	if (jfd < 0)
		return;
	if ((r = fsync_dir(j->dir)) != 0) {
		job_fail(j, "fsync of the directory", r);
		close(jfd);
		return;
	}
	if (j->fd >= 0)
		close(j->fd);
	j->new_fd = jfd;
}

static void
work(uv_work_t *w)
{
	struct pinstore_file *s = w->data;
	struct job *j = &s->job;
	int r;

	j->err = 0;
	j->op = NULL;
	j->new_fd = -1;
	errno = 0;
	if (j->kind == JOB_COMPACT) {
		compact_work(j);
		return;
	}
	if ((r = write_all(j->fd, j->data.p, j->data.len, j->off)) != 0)
		job_fail(j, "write", r);
	else if (fdatasync(j->fd) != 0)
		job_fail(j, "fsync", 0);
}

/* ---- the loop side ---- */

static void schedule(struct pinstore_file *s);
static void after_work(uv_work_t *w, int status);

static void
start_job(struct pinstore_file *s)
{
	struct job *j = &s->job;
	int r;

	j->fd = s->fd;
	j->dir = s->dir;
	j->snapshot = s->snapshot;
	j->snapshot_tmp = s->snapshot_tmp;
	j->journal = s->journal;
	j->journal_tmp = s->journal_tmp;
	j->now_ms = pg_wall_ms();
	if ((r = uv_queue_work(s->loop, &s->work, work, after_work)) != 0) {
		/* Cannot happen with a valid loop; treat it as a failed write. */
		j->err = r;
		j->op = "queue";
		after_work(&s->work, r);
		return;
	}
	s->busy = 1;
}

static void
start_append(struct pinstore_file *s)
{
	struct pg_buf t = s->job.data;

	/* Swap buffers: the batch goes to the worker, the emptied one takes new records. */
	pg_buf_reset(&t);
	s->job.data = s->pending;
	s->pending = t;
	s->job.kind = JOB_APPEND;
	s->job.records = s->job.covers = s->pending_records;
	s->pending_records = 0;
	s->job.off = s->journal_off;
	start_job(s);
}

struct snap_ctx {
	struct pg_buf *out;
	uint64_t count;
};

static int
emit_snapshot_pin(void *arg, const char *user, const char *id, int64_t since_ms,
    int64_t active_ms)
{
	struct snap_ctx *c = arg;
	int r = pinrec_put_pin(c->out, user, id, since_ms, active_ms);

	/* A name the record format refuses cannot come from the table; skip rather than fail. */
	if (r == PG_EINVAL)
		return 0;
	c->count += r == 0;
	return r;
}

static void
start_compact(struct pinstore_file *s)
{
	struct job *j = &s->job;
	struct snap_ctx c = { &j->data, 0 };
	struct pinrec end = { .type = PINREC_END };
	int r;

	pg_buf_reset(&j->data);
	j->kind = JOB_COMPACT;
	j->generation = s->generation + 1;
	/* Everything changed so far is in this snapshot; pending records are not needed. */
	j->covers = s->st.unsynced;
	pg_buf_reset(&s->pending);
	s->pending_records = 0;
	s->snapshot_due = 0;
	if ((r = pinrec_put_header(&j->data, PINREC_SNAPSHOT, j->generation, pg_wall_ms())) != 0 ||
	    (r = pins_foreach(s->table, emit_snapshot_pin, &c)) != 0 ||
	    (end.count = c.count, r = pinrec_encode(&j->data, &end)) != 0) {
		j->err = r;
		j->op = "encode";
		after_work(&s->work, r);
		return;
	}
	start_job(s);
}

static void
finish_closed(uv_handle_t *h)
{
	free_store(h->data);
}

static void
on_fd_closed(uv_fs_t *req)
{
	struct pinstore_file *s = req->data;

	uv_fs_req_cleanup(req);
	uv_close((uv_handle_t *)&s->timer, finish_closed);
}

/* Closing and nothing left to try: close the journal off the loop, then free. */
static void
finish(struct pinstore_file *s)
{
	s->finished = 1;
	if (s->st.unsynced > 0 && !s->disabled)
		LOG_ERR(LOGP, "%llu pin change%s not written before exit: they are lost",
		    (unsigned long long)s->st.unsynced, s->st.unsynced == 1 ? " was" : "s were");
	uv_timer_stop(&s->timer);
	s->close_req.data = s;
	if (s->fd >= 0 && uv_fs_close(s->loop, &s->close_req, s->fd, on_fd_closed) == 0) {
		s->fd = -1;
		return;
	}
	uv_close((uv_handle_t *)&s->timer, finish_closed);
}

static void
on_timer(uv_timer_t *t)
{
	schedule(t->data);
}

/* Starts the next job if one is due; otherwise arms the timer for when one will be. */
static void
schedule(struct pinstore_file *s)
{
	uint64_t now = uv_now(s->loop);

	if (s->busy || s->finished)
		return;
	if (s->disabled) {
		if (s->closing)
			finish(s);
		return;
	}
	if (s->failing && now < s->retry_at) {
		uv_timer_start(&s->timer, on_timer, s->retry_at - now, 0);
		return;
	}
	uv_timer_stop(&s->timer);
	if (s->snapshot_due && s->table != NULL)
		start_compact(s);
	else if (s->pending.len > 0 && !s->snapshot_due)
		start_append(s);
	else if (s->closing)
		finish(s);
}

static void
record_error(struct pinstore_file *s, const char *op, int r)
{
	s->st.errors++;
	s->st.last_error = r;
	s->st.last_error_op = op;
	s->st.last_error_ms = pg_wall_ms();
}

static void
note_failure(struct pinstore_file *s, const struct job *j)
{
	const char *what = j->kind == JOB_COMPACT ? "write the snapshot in" : "append to";

	record_error(s, j->op, j->err);
	/* The next job rewrites everything, so nothing queued for the journal is needed. */
	s->snapshot_due = 1;
	pg_buf_reset(&s->pending);
	s->pending_records = 0;
	s->retry_at = uv_now(s->loop) + s->conf.retry_ms;
	if (s->failing) {
		LOG_DEBUG(LOGP, "still cannot %s %s: %s: %s", what, s->dir, j->op,
		    pg_strerror(j->err));
		return;
	}
	s->failing = 1;
	s->failing_since_ms = s->st.last_error_ms;
	LOG_ERR(LOGP, "cannot %s %s: %s: %s; pins are kept in memory and served from there; "
	    "retrying every %u ms", what, s->dir, j->op, pg_strerror(j->err), s->conf.retry_ms);
}

static void
after_work(uv_work_t *w, int status)
{
	struct pinstore_file *s = w->data;
	struct job *j = &s->job;
	uint64_t limit;

	s->busy = 0;
	if (status != 0 && j->err == 0) {
		j->err = status;
		j->op = "queue";
	}
	if (j->err != 0) {
		note_failure(s, j);
		if (s->closing) {
			/* One more try was made at close; do not keep the process waiting. */
			finish(s);
			return;
		}
		schedule(s);
		return;
	}
	s->st.unsynced -= j->covers;
	s->st.syncs++;
	if (j->kind == JOB_APPEND) {
		s->journal_off += j->data.len;
		s->st.records_synced += j->records;
	} else {
		s->fd = j->new_fd;
		s->journal_off = j->new_off;
		s->generation = j->generation;
		s->snapshot_bytes = j->data.len;
		s->st.snapshot_ms = j->now_ms;
		s->st.compactions++;
		LOG_DEBUG(LOGP, "snapshot %llu written (%zu bytes)", (unsigned long long)j->generation,
		    j->data.len);
		if (s->failing) {
			s->failing = 0;
			LOG_NOTICE(LOGP, "%s is writable again after %lld s: every pin is on disk",
			    s->dir, (long long)((pg_wall_ms() - s->failing_since_ms) / 1000));
		}
	}
	s->st.journal_bytes = s->journal_off;
	limit = s->conf.journal_max_bytes > s->snapshot_bytes ? s->conf.journal_max_bytes :
	    s->snapshot_bytes;
	if (s->journal_off > limit)
		s->snapshot_due = 1;
	/* What arrived during this job goes now: batches form while the previous one is written. */
	schedule(s);
}

/* Queues one journal record made by enc; the group commit timer takes it from there. */
static int
queue_record(struct pinstore_file *s, int r)
{
	if (r != 0) {
		/* Over the pending bound or out of memory: a snapshot will carry the change. */
		pg_buf_reset(&s->pending);
		s->pending_records = 0;
		s->snapshot_due = 1;
	} else {
		s->pending_records++;
	}
	if (s->busy || s->failing)
		return 0;
	if (s->snapshot_due || s->pending.len >= PINSTORE_FILE_BATCH_BYTES)
		schedule(s);
	else if (!uv_is_active((uv_handle_t *)&s->timer))
		uv_timer_start(&s->timer, on_timer, s->conf.fsync_interval_ms, 0);
	return 0;
}

/* Whether a change needs a journal record: not while writing is off or a snapshot will hold it. */
static int
wants_record(struct pinstore_file *s)
{
	if (s->disabled)
		return 0;
	s->st.unsynced++;
	return !s->snapshot_due;
}

static int
fs_put(void *store, const char *user, const char *id, int64_t since_ms, int64_t active_ms)
{
	struct pinstore_file *s = store;

	if (!wants_record(s))
		return 0;
	return queue_record(s, pinrec_put_pin(&s->pending, user, id, since_ms, active_ms));
}

/*
 * One poolgate owns the files, and its table is consulted before any first placement, so the
 * user has no pin here: the claim is ours, at once.
 */
static int
fs_put_if_absent(void *store, const char *user, const char *id, int64_t since_ms,
    int64_t active_ms, pin_claim_fn done, void *arg)
{
	int r = fs_put(store, user, id, since_ms, active_ms);

	done(arg, user, r, r == 0 ? id : NULL);
	return 0;
}

static int
fs_del(void *store, const char *user)
{
	struct pinstore_file *s = store;

	if (!wants_record(s))
		return 0;
	return queue_record(s, pinrec_put_del(&s->pending, user));
}

static void
fs_stats(void *store, struct pin_store_stats *out)
{
	struct pinstore_file *s = store;

	*out = s->st;
	out->healthy = !s->failing && !s->disabled;
}

/* ---- start-up: replay (blocking reads are allowed before the loop serves anyone) ---- */

/* Reads path whole into buf. Returns 0, PG_ENOTFOUND, or another error (logged; writes off). */
static int
read_whole(struct pinstore_file *s, const char *path, struct pg_buf *buf)
{
	int r = pg_read_file(path, PINSTORE_FILE_MAX_BYTES, buf);

	if (r == 0 || r == PG_ENOTFOUND)
		return r;
	s->disabled = 1;
	record_error(s, "read", r);
	LOG_ERR(LOGP, "cannot read %s: %s; no pin will be written this run, so that it is not "
	    "overwritten: repair or remove it, then restart", path, pg_strerror(r));
	return r;
}

/* A damaged file is renamed out of the way (not deleted): the next snapshot replaces it. */
static void
keep_aside(const char *path)
{
	char aside[4200];

	snprintf(aside, sizeof(aside), "%s.corrupt", path);
	if (rename(path, aside) == 0)
		LOG_NOTICE(LOGP, "%s moved to %s for inspection", path, aside);
	else
		LOG_WARN(LOGP, "cannot move %s aside: %s", path, strerror(errno));
}

static const char *
plural(size_t n)
{
	return n == 1 ? "" : "s";
}

/*
 * Logs how the replay of path ended and returns 1 when the file is damaged beyond a torn tail
 * (it is then kept aside). A torn tail is expected of a journal after a crash; of a snapshot,
 * which is renamed into place only when whole, nothing short of a clean end is.
 */
static int
report_replay(struct pinstore_file *s, const char *path, const struct pinrec_replay *rp,
    int journal)
{
	size_t kept = rp->puts + rp->dels, lost = rp->len - rp->good;

	if (rp->end == PINREC_CLEAN && rp->have_header)
		return 0;
	if (rp->end == PINREC_TORN && journal) {
		s->st.torn++;
		LOG_WARN(LOGP, "%s: torn last record at offset %zu (%s): %zu byte%s dropped, the %zu "
		    "record%s before it replayed", path, rp->good, rp->why, lost, plural(lost), kept,
		    plural(kept));
		return 0;
	}
	s->st.corrupt++;
	LOG_ERR(LOGP, "%s: %s at offset %zu: replay stops there; %zu record%s before it replayed, "
	    "%zu byte%s after it not", path, rp->why != NULL ? rp->why : "no header record",
	    rp->good, kept, plural(kept), lost, plural(lost));
	return 1;
}

static int
fs_load(void *store, pin_put_fn put, pin_del_fn del, void *arg)
{
	struct pinstore_file *s = store;
	struct pinrec_sink sink = { put, del, arg };
	struct pinrec_replay sr, jr;
	struct pg_buf snap, jour;
	uint64_t sgen = 0, jgen = 0;
	int r, have_snap, have_jour;

	memset(&sr, 0, sizeof(sr));
	memset(&jr, 0, sizeof(jr));
	pg_buf_init(&snap, PINSTORE_FILE_MAX_BYTES);
	pg_buf_init(&jour, PINSTORE_FILE_MAX_BYTES);
	if ((r = read_whole(s, s->snapshot, &snap)) != 0 && r != PG_ENOTFOUND)
		goto out;
	have_snap = r == 0;
	if ((r = read_whole(s, s->journal, &jour)) != 0 && r != PG_ENOTFOUND)
		goto out;
	have_jour = r == 0;
	r = 0;
	if (have_snap) {
		if ((r = pinrec_replay(snap.p, snap.len, PINREC_SNAPSHOT, &sink, &sr)) != 0)
			goto out;
		if (report_replay(s, s->snapshot, &sr, 0))
			keep_aside(s->snapshot);
		sgen = sr.generation;
		s->st.snapshot_ms = sr.created_ms;
		s->snapshot_bytes = snap.len;
	}
	if (have_jour && pinrec_header(jour.p, jour.len, PINREC_JOURNAL, &jgen) == 0 &&
	    jgen < sgen) {
		/* Snapshot N+1 was renamed into place, journal N+1 was not: N is all in the snapshot. */
		LOG_INFO(LOGP, "%s (generation %llu) predates %s (generation %llu): ignored, its "
		    "changes are in the snapshot", s->journal, (unsigned long long)jgen, s->snapshot,
		    (unsigned long long)sgen);
	} else if (have_jour) {
		if (jgen > sgen)
			LOG_WARN(LOGP, "snapshot generation %llu is missing: %s is replayed on its own",
			    (unsigned long long)jgen, s->journal);
		if ((r = pinrec_replay(jour.p, jour.len, PINREC_JOURNAL, &sink, &jr)) != 0)
			goto out;
		if (report_replay(s, s->journal, &jr, 1))
			keep_aside(s->journal);
	}
	s->generation = sgen > jgen ? sgen : jgen;
	s->st.replayed = sr.puts + sr.dels + jr.puts + jr.dels;
	LOG_INFO(LOGP, "%zu pin%s replayed from %s (snapshot: %zu record%s, journal: %zu record%s)",
	    pins_size(s->table), plural(pins_size(s->table)), s->dir, sr.puts, plural(sr.puts),
	    jr.puts + jr.dels, plural(jr.puts + jr.dels));
	/* Start from a fresh snapshot: nothing is ever appended after a torn or corrupt tail. */
	s->snapshot_due = 1;
	schedule(s);
out:
	pg_buf_free(&snap);
	pg_buf_free(&jour);
	return r;
}

static void
fs_close(void *store)
{
	struct pinstore_file *s = store;

	s->closing = 1;
	s->retry_at = 0;	/* one last try, even in an error episode */
	if (!s->busy)
		schedule(s);	/* a snapshot, if due, is serialised now, while the table exists */
	s->table = NULL;
}

const struct pin_store_ops pinstore_file_ops = {
	.load = fs_load,
	.put = fs_put,
	.put_if_absent = fs_put_if_absent,
	.del = fs_del,
	.stats = fs_stats,
	.close = fs_close,
};
