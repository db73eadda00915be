/*
 * core/busypoll.c: after a touch the loop polls without sleeping until the window has passed,
 * then sleeps again; a window of 0 never polls; the handle closes so the loop can be closed.
 * Observed as what the loop does: how long one uv_run(UV_RUN_ONCE) takes with a timer due in
 * 300 ms (a sleeping loop waits for it; a polling one returns at once).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>
#include <uv.h>

#include "core/busypoll.h"

static void
on_timer(uv_timer_t *t)
{
	(void)t;
}

/* Milliseconds one loop iteration took. */
static double
run_once_ms(uv_loop_t *loop)
{
	uint64_t t0 = uv_hrtime();

	uv_run(loop, UV_RUN_ONCE);
	return (double)(uv_hrtime() - t0) / 1e6;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void
test_window(void **state)
{
	uv_loop_t loop;
	uv_timer_t timer;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(pg_busypoll_init(&loop, 50000), 0);	/* 50 ms */
	uv_timer_init(&loop, &timer);
	uv_timer_start(&timer, on_timer, 300, 0);

	/* Touched: the iteration does not wait for the timer. */
	pg_busypoll_touch();
	assert_true(run_once_ms(&loop) < 100);
	assert_true(run_once_ms(&loop) < 100);
	/* The window passes without a touch: the handle stops, and the loop sleeps again. */
	sleep_ms(80);
	(void)run_once_ms(&loop);	/* the idle callback sees the window gone and stops */
	uv_timer_start(&timer, on_timer, 300, 0);
	assert_true(run_once_ms(&loop) >= 200);

	/* Window 0: a touch does nothing. */
	pg_busypoll_set(0);
	pg_busypoll_touch();
	uv_timer_start(&timer, on_timer, 300, 0);
	assert_true(run_once_ms(&loop) >= 200);

	/* Turned off while polling: it stops at once. */
	pg_busypoll_set(50000);
	pg_busypoll_touch();
	pg_busypoll_set(0);
	uv_timer_start(&timer, on_timer, 300, 0);
	assert_true(run_once_ms(&loop) >= 200);

	uv_close((uv_handle_t *)&timer, NULL);
	pg_busypoll_close();
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	/* Closed: touching is harmless, and a new loop can set it up again. */
	pg_busypoll_touch();
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(pg_busypoll_init(&loop, 10), 0);
	pg_busypoll_close();
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
