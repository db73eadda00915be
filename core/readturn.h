/*
 * Read turns: at most one full buffer from a socket per event-loop turn.
 *
 * libuv reads a readable stream up to 32 times in a row, 64 KiB each, before it looks at the next
 * ready socket: one fast peer could have 2 MiB relayed while 49 others wait, which shows as a long
 * latency tail. An alloc callback that says "no buffer" once the stream had its read makes libuv
 * report UV_ENOBUFS and move on; the socket is still readable (level-triggered epoll), so the next
 * turn serves it again, after the others. bench/http, 50 clients of 1 MiB responses: 1.30x ->
 * 1.62x HAProxy's req/s and p99 1.05x -> 0.61x (bench/RESULTS.md).
 *
 * Usage, per connection: pg_turn_over() in the alloc callback (give a zero-length buffer when it
 * says so), pg_turn_after_read() first thing in the read callback, and ignore UV_ENOBUFS there.
 */
#ifndef PG_CORE_READTURN_H
#define PG_CORE_READTURN_H

#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#define PG_TURN_READ_SIZE 65536		/* the one read buffer each alloc callback hands out */

struct pg_read_turn {
	int full;	/* this turn's read filled the buffer: the socket may hold more */
};

/* Whether the stream already had its read in this turn. */
static inline int
pg_turn_over(const struct pg_read_turn *t)
{
	return t->full;
}

/*
 * Accounts for a read callback's n. A short read, EAGAIN (0) or our own UV_ENOBUFS ends the
 * turn; a full buffer uses it up.
 */
static inline void
pg_turn_after_read(struct pg_read_turn *t, ssize_t n)
{
	t->full = n == PG_TURN_READ_SIZE;
}

#endif
