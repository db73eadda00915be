/*
 * An instance's load as its load probe last measured it (DESIGN.md, health/: the load probe).
 * health/loadprobe.c writes it through the setters below; placement (backends/score.h) and
 * /status read it. It lives in struct instance (in->load), so it goes with the instance.
 *
 * States: off (the load probe is not enabled), unknown (not measured yet, or the last round
 * failed: reason says why), known (the last round succeeded). A failing load probe never changes
 * the instance's health: it only makes the load unknown, and placement then weighs users alone.
 * Figures from a good round stay in `fig` after later failures, for /status; placement uses them
 * only while load_usable() says so.
 */
#ifndef PG_BACKENDS_LOAD_H
#define PG_BACKENDS_LOAD_H

#include <stdint.h>

#define LOAD_REASON_MAX 192

/* What one run of the probe command reported (health/loadparse.h documents the output). */
struct load_figures {
	double load1, load5, load15;	/* /proc/loadavg */
	uint32_t ncpu;			/* >= 1 */
	uint64_t mem_total_kb;		/* > 0 */
	uint64_t mem_avail_kb;		/* <= mem_total_kb */
	uint32_t ngpu;			/* GPUs reported; 0: none (no nvidia-smi) */
	double gpu_util;		/* mean utilisation of those GPUs, 0..1 */
	double gpu_mem_used;		/* mean fraction of GPU memory in use, 0..1 */
	int has_users;			/* the command counted logged-in users */
	uint32_t users;			/* that count */
};

enum load_state { LOAD_OFF, LOAD_UNKNOWN, LOAD_KNOWN };

struct inst_load {
	enum load_state state;
	struct load_figures fig;	/* the last good figures; meaningful when at_ms != 0 */
	int64_t at_ms;			/* wall clock of the last good figures; 0: never */
	int64_t valid_until_ms;		/* placement ignores fig after this */
	char reason[LOAD_REASON_MAX];	/* why the state is unknown; "" otherwise */
	uint64_t ok_total, fail_total;	/* rounds by result */
	uint64_t logins_total;		/* SSH logins the probe made (one per kept session) */
};

struct instance;

const char *load_state_name(enum load_state s);

/* Fraction of memory in use: 1 - MemAvailable / MemTotal. */
double load_mem_used(const struct load_figures *f);

/* The GPU term: the larger of mean utilisation and mean memory in use, 0..1 (0 without GPUs). */
double load_gpu(const struct load_figures *f);

/* 1 when placement may weigh l's figures at now_ms: known and not older than valid_until_ms. */
int load_usable(const struct inst_load *l, int64_t now_ms);

/*
 * A good round: the figures become in's load, usable until now_ms + valid_ms. Logs the change
 * from unknown at info ("load known again").
 */
void load_set_known(struct instance *in, const struct load_figures *f, int64_t now_ms,
    int64_t valid_ms);

/*
 * A failed round: in's load becomes unknown with reason. Logs at notice when the state or the
 * reason changes (not every round that fails the same way).
 */
void load_set_unknown(struct instance *in, const char *reason);

/*
 * Nothing measured (yet): a probe starting, or an endpoint change (old figures describe another
 * machine). Forgets the figures; state unknown with reason; counts no failure.
 */
void load_reset(struct instance *in, const char *reason);

/* The load probe logged in to in (a new session, kept for later rounds). */
void load_note_login(struct instance *in);

/* The load probe is off for in (disabled, or stopping): state off, reason cleared. */
void load_set_off(struct instance *in);

#endif
