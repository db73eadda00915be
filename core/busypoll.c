#include "core/busypoll.h"

/*
 * An active uv_idle handle makes libuv poll with a zero timeout; it is started by a touch and
 * stops itself once the window has passed without one. It is unreferenced, so it never keeps
 * the loop alive.
 */
static struct {
	uv_idle_t idle;
	int inited, closing;
	uint64_t window_ns;
	uint64_t last_ns;	/* uv_hrtime() of the last touch */
} bp;

static void
on_idle(uv_idle_t *h)
{
	if (uv_hrtime() - bp.last_ns > bp.window_ns)
		uv_idle_stop(h);
}

int
pg_busypoll_init(uv_loop_t *loop, uint32_t window_us)
{
	int r;

	if (bp.inited)
		return UV_EALREADY;
	if ((r = uv_idle_init(loop, &bp.idle)) != 0)
		return r;
	uv_unref((uv_handle_t *)&bp.idle);
	bp.inited = 1;
	bp.closing = 0;
	pg_busypoll_set(window_us);
	return 0;
}

void
pg_busypoll_set(uint32_t window_us)
{
	bp.window_ns = (uint64_t)window_us * 1000;
	if (bp.window_ns == 0 && bp.inited && !bp.closing)
		uv_idle_stop(&bp.idle);
}

void
pg_busypoll_touch(void)
{
	if (bp.window_ns == 0 || !bp.inited || bp.closing)
		return;
	bp.last_ns = uv_hrtime();
	if (!uv_is_active((uv_handle_t *)&bp.idle))
		uv_idle_start(&bp.idle, on_idle);
}

static void
on_closed(uv_handle_t *h)
{
	(void)h;
	bp.inited = 0;
	bp.closing = 0;
}

void
pg_busypoll_close(void)
{
	if (!bp.inited || bp.closing)
		return;
	bp.closing = 1;
	uv_close((uv_handle_t *)&bp.idle, on_closed);
}
