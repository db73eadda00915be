#include "core/fileread.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

/* One read in flight: open -> fstat -> read (until EOF or max) -> close -> callback. */
struct fileread {
	uv_fs_t req;
	uv_loop_t *loop;
	uv_file fd;
	char *data;
	size_t len, cap, max;
	int status;
	pg_fileread_cb cb;
	void *arg;
};

static void on_open(uv_fs_t *req);
static void on_fstat(uv_fs_t *req);
static void on_read(uv_fs_t *req);

static void
finish(struct fileread *fr)
{
	fr->cb(fr->arg, fr->status, fr->status == 0 ? fr->data : NULL, fr->status == 0 ? fr->len : 0);
	free(fr->data);
	free(fr);
}

static void
on_close(uv_fs_t *req)
{
	struct fileread *fr = req->data;

	uv_fs_req_cleanup(req);
	finish(fr);
}

static void
close_and_finish(struct fileread *fr, int status)
{
	if (fr->status == 0)
		fr->status = status;
	fr->req.data = fr;
	if (uv_fs_close(fr->loop, &fr->req, fr->fd, on_close) != 0)
		finish(fr);
}

static void
read_more(struct fileread *fr)
{
	uv_buf_t b;
	int r;

	if (fr->len == fr->cap) {
		/* One byte past max tells "exactly max" from "more than max". */
		size_t ncap = fr->cap ? fr->cap * 2 : 4096;
		char *np;
		if (ncap > fr->max + 1)
			ncap = fr->max + 1;
		if (ncap <= fr->cap) {
			close_and_finish(fr, PG_ETOOBIG);
			return;
		}
		if ((np = realloc(fr->data, ncap + 1)) == NULL) {
			close_and_finish(fr, PG_ENOMEM);
			return;
		}
		fr->data = np;
		fr->cap = ncap;
	}
	b = uv_buf_init(fr->data + fr->len, (unsigned)(fr->cap - fr->len));
	fr->req.data = fr;
	if ((r = uv_fs_read(fr->loop, &fr->req, fr->fd, &b, 1, -1, on_read)) != 0)
		close_and_finish(fr, r);
}

static void
on_read(uv_fs_t *req)
{
	struct fileread *fr = req->data;
	ssize_t n = req->result;

	uv_fs_req_cleanup(req);
	if (n < 0) {
		close_and_finish(fr, (int)n);
		return;
	}
	if (n == 0) {
		fr->data[fr->len] = '\0';
		close_and_finish(fr, 0);
		return;
	}
	fr->len += (size_t)n;
	if (fr->len > fr->max) {
		close_and_finish(fr, PG_ETOOBIG);
		return;
	}
	read_more(fr);
}

static void
on_fstat(uv_fs_t *req)
{
	struct fileread *fr = req->data;
	int regular = req->result == 0 && S_ISREG(req->statbuf.st_mode);
	int r = (int)req->result;

	uv_fs_req_cleanup(req);
	if (!regular) {
		close_and_finish(fr, r < 0 ? r : PG_EINVAL);
		return;
	}
	read_more(fr);
}

static void
on_open(uv_fs_t *req)
{
	struct fileread *fr = req->data;
	int r;

	if (req->result < 0) {
		fr->status = (int)req->result;
		uv_fs_req_cleanup(req);
		finish(fr);
		return;
	}
	fr->fd = (uv_file)req->result;
	uv_fs_req_cleanup(req);
	fr->req.data = fr;
	if ((r = uv_fs_fstat(fr->loop, &fr->req, fr->fd, on_fstat)) != 0)
		close_and_finish(fr, r);
}

int
pg_fileread(uv_loop_t *loop, const char *path, size_t max, pg_fileread_cb cb, void *arg)
{
	struct fileread *fr = calloc(1, sizeof(*fr));
	int r;

	if (fr == NULL)
		return PG_ENOMEM;
	fr->loop = loop;
	fr->max = max;
	fr->cb = cb;
	fr->arg = arg;
	fr->fd = -1;
	fr->req.data = fr;
	if ((r = uv_fs_open(loop, &fr->req, path, O_RDONLY | O_CLOEXEC, 0, on_open)) != 0) {
		free(fr);
		return r;
	}
	return 0;
}

int
pg_read_file(const char *path, size_t max, struct pg_buf *out)
{
	uint8_t buf[16384];
	struct stat st;
	size_t got = 0;
	int fd, r = 0;

	/* O_NONBLOCK: a FIFO put where a file should be must not hang the reader in open(). */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
		return errno == ENOENT || errno == ENOTDIR ? PG_ENOTFOUND : PG_EIO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return PG_EINVAL;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? PG_EIO : 0;
			break;
		}
		if ((got += (size_t)n) > max) {
			r = PG_ETOOBIG;
			break;
		}
		if ((r = pg_buf_append(out, buf, (size_t)n)) != 0)
			break;
	}
	close(fd);
	return r;
}
