/*
 * Busy polling after activity: for a short window after the last read, the event loop polls
 * without sleeping.
 *
 * Why: a loop that runs out of work sleeps in epoll_wait, and on a virtual machine the wake-up
 * that follows (an IPI through the hypervisor to a halted vCPU) adds tens of microseconds to the
 * next event. Under steady load that happens between most events. Polling for a bounded window
 * after activity trades some otherwise idle CPU for that latency: in bench/http a 50 us window took
 * poolgate from 0.96x to 1.00x HAProxy's small requests per second (bench/RESULTS.md). HAProxy's `busy-polling` is the
 * same idea without the window (it never sleeps).
 *
 * One loop per process: the state is the module's own. Every function runs on the loop thread.
 */
#ifndef PG_CORE_BUSYPOLL_H
#define PG_CORE_BUSYPOLL_H

#include <stdint.h>
#include <uv.h>

/* Sets up polling on loop with a window of window_us (0: off). 0 or a negative libuv error. */
int pg_busypoll_init(uv_loop_t *loop, uint32_t window_us);

/* A reload may change the window; 0 turns polling off at once. */
void pg_busypoll_set(uint32_t window_us);

/* A read happened: keep polling until window_us after now. Cheap: one clock read. */
void pg_busypoll_touch(void);

/* Closes the handle (before uv_loop_close). Accepts being called without pg_busypoll_init(). */
void pg_busypoll_close(void);

#endif
