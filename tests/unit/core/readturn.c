/*
 * core/readturn.h on a real libuv loop: two sockets, each holding several buffers' worth, are
 * read in alternation, one full read each per turn, instead of one being drained before the
 * other is looked at (what libuv does alone: up to 32 reads in a row). Every byte still arrives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "core/readturn.h"

struct side {
	uv_pipe_t pipe;
	struct pg_read_turn turn;
	int use_turns;
	size_t want, got;
	char name;
};

static char order[4096];	/* which side each read came from */
static size_t norder;

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char slab[PG_TURN_READ_SIZE];
	struct side *s = h->data;

	(void)suggested;
	if (s->use_turns && pg_turn_over(&s->turn)) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	*buf = uv_buf_init(slab, sizeof(slab));
}

static void
on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct side *s = st->data;

	(void)buf;
	pg_turn_after_read(&s->turn, n);
	if (n <= 0)
		return;
	s->got += (size_t)n;
	if (norder < sizeof(order))
		order[norder++] = s->name;
	if (s->got >= s->want)
		uv_close((uv_handle_t *)&s->pipe, NULL);
}

/* Fills fd's peer until the socket takes no more; returns how much went in. */
static size_t
fill(int fd)
{
	static char junk[65536];
	size_t total = 0;
	ssize_t w;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while ((w = write(fd, junk, sizeof(junk))) > 0)
		total += (size_t)w;
	assert_true(w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
	return total;
}

/* The longest run of consecutive reads from one side while both still had data. */
static size_t
longest_run(void)
{
	size_t best = 0, run = 0;
	size_t last_a = 0, last_b = 0;

	for (size_t i = 0; i < norder; i++) {
		if (order[i] == 'a')
			last_a = i;
		else
			last_b = i;
	}
	for (size_t i = 0; i < norder && i <= (last_a < last_b ? last_a : last_b); i++) {
		run = i > 0 && order[i] == order[i - 1] ? run + 1 : 1;
		if (run > best)
			best = run;
	}
	return best;
}

static size_t
run_pair(int use_turns)
{
	uv_loop_t loop;
	struct side a = { .name = 'a' }, b = { .name = 'b' };
	int fa[2], fb[2], bufsz = 1 << 20;

	norder = 0;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fa), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fb), 0);
	setsockopt(fa[1], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	setsockopt(fb[1], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	a.want = fill(fa[1]);
	b.want = fill(fb[1]);
	/* Several full buffers each, or there is nothing to interleave. */
	assert_true(a.want >= 3 * PG_TURN_READ_SIZE && b.want >= 3 * PG_TURN_READ_SIZE);
	a.use_turns = b.use_turns = use_turns;
	assert_int_equal(uv_loop_init(&loop), 0);
	uv_pipe_init(&loop, &a.pipe, 0);
	uv_pipe_init(&loop, &b.pipe, 0);
	a.pipe.data = &a;
	b.pipe.data = &b;
	assert_int_equal(uv_pipe_open(&a.pipe, fa[0]), 0);
	assert_int_equal(uv_pipe_open(&b.pipe, fb[0]), 0);
	uv_read_start((uv_stream_t *)&a.pipe, on_alloc, on_read);
	uv_read_start((uv_stream_t *)&b.pipe, on_alloc, on_read);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(a.got, a.want);
	assert_int_equal(b.got, b.want);
	assert_int_equal(uv_loop_close(&loop), 0);
	close(fa[1]);
	close(fb[1]);
	return longest_run();
}

static void
test_turns_alternate(void **state)
{
	(void)state;
	/* The baseline shows what the turns change: libuv alone drains one socket first. */
	assert_true(run_pair(0) >= 3);
	assert_int_equal(run_pair(1), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_turns_alternate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
