/*
 * The pin table: which instance each user is pinned to, shared by both front doors. In memory,
 * keyed by username (1..255 bytes, any bytes but NUL; identity.c decides what a valid JupyterHub
 * name is), with a keyed hash (core/siphash.h, random key per table) because usernames come from
 * unauthenticated peers.
 *
 * Each pin records the instance id (a copy: a pin may name an instance the registry no longer
 * lists, so placement can say where the user was), when it was made (since_ms) and the last
 * activity (active_ms). Users are grouped per instance id, so pins_count() is O(1) and the users of
 * one instance can be listed without scanning the table.
 *
 * Live sessions. A user's SSH connection (from the pipe opening to its close) and open websocket
 * are live sessions, counted per user and per instance they run on (pins_live_begin/end). They
 * are kept apart from the pin: unpinning or moving a user does not end her sessions, and a session
 * keeps counting on the instance it runs on. A pin with a live session never expires, and the end
 * of a session is activity. docs/pins.md has the rules.
 *
 * Idle expiry: pins_expire() (run by a timer in proxy/app.c) removes pins idle for the TTL whose
 * user has no live session, and refreshes active_ms of users who have one.
 *
 * Persistence. The table is the in-memory view in front of a store (struct pin_store_ops, below;
 * backends/pinstore_file.c is the `file` store). pins_attach_store() replays the store into the
 * table; from then on every change is handed to the store: a new pin as put_if_absent(), a moved
 * pin or new activity as put(), a removed one as del(). The table never waits for the store:
 * memory is the truth while poolgate runs, and a store that cannot write says so itself (logs,
 * stats) and catches up later. Activity is written lazily: active_ms goes to the store at most
 * once per PIN_ACTIVE_WRITE_MS per user (and for everyone when the store is detached at a clean
 * stop), so after a crash a pin's idle time is known to within that.
 *
 * Threading: loop thread only.
 */
#ifndef PG_BACKENDS_PINS_H
#define PG_BACKENDS_PINS_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

#define PIN_USER_MAX 255		/* bytes, without the NUL */
#define PIN_ACTIVE_WRITE_MS 60000	/* activity reaches the store at most this often per user */

struct pin_table;

/* What a store reports for /metrics (fields a store does not track stay 0). */
struct pin_store_stats {
	const char *name;		/* "file", ... (static) */
	int healthy;			/* 0 while writes fail (or were disabled at start) */
	uint64_t records_synced;	/* records made durable (written and fsync'd) */
	uint64_t unsynced;		/* changes handed over and not yet durable */
	uint64_t syncs;			/* successful group commits (fsyncs) */
	uint64_t errors;		/* failed writes, fsyncs, compactions */
	uint64_t compactions;		/* snapshots written */
	uint64_t journal_bytes;		/* size of the current journal */
	int64_t snapshot_ms;		/* wall time the current snapshot was written; 0: none */
	int last_error;			/* 0 or the negative code of the last failure */
	const char *last_error_op;	/* static: what failed ("fsync", "write", ...) or NULL */
	int64_t last_error_ms;
	uint64_t replayed;		/* records replayed at start */
	uint64_t torn;			/* torn tails dropped at start (0 or 1 per file) */
	uint64_t corrupt;		/* files whose replay stopped at a corrupt record */
};

/* Replay sink handed to load(): put() pins (or re-pins) a user, del() unpins. 0 to go on. */
typedef int (*pin_put_fn)(void *arg, const char *user, const char *instance_id, int64_t since_ms,
    int64_t active_ms);
typedef int (*pin_del_fn)(void *arg, const char *user);
/*
 * The answer to put_if_absent(): status 0 and winner the instance id the store holds for user
 * afterwards (ours, or another writer's that got there first), or a negative status (then winner
 * is NULL and the table keeps its own choice).
 */
typedef void (*pin_claim_fn)(void *arg, const char *user, int status, const char *winner);

struct pin_store_ops {
	/*
	 * Replays what the store holds through put/del (at start-up, before anyone is served; may
	 * block). Returns 0 or a negative code (the store logs what went wrong; the table keeps what
	 * was replayed).
	 */
	int (*load)(void *store, pin_put_fn put, pin_del_fn del, void *arg);
	/* Upserts user -> instance_id with its times. Returns 0 or a negative code. */
	int (*put)(void *store, const char *user, const char *instance_id, int64_t since_ms,
	    int64_t active_ms);
	/*
	 * A first placement: records user -> instance_id only if the store has no pin for user, then
	 * calls done(arg, user, status, winner), before returning or later (a shared store over the
	 * network: redis SET NX). A store shared by several poolgates makes two replicas agree here.
	 * After close() no done() call may come. Returns 0 (done will be called) or a negative code
	 * (it will not).
	 */
	int (*put_if_absent)(void *store, const char *user, const char *instance_id, int64_t since_ms,
	    int64_t active_ms, pin_claim_fn done, void *arg);
	int (*del)(void *store, const char *user);
	void (*stats)(void *store, struct pin_store_stats *out);
	/* Writes what is pending and frees the store, possibly after the loop has run a while. */
	void (*close)(void *store);
};

/* Counters since start, for /metrics. */
struct pin_counters {
	uint64_t created, moved, removed, expired;
	uint64_t claims_lost;	/* first placements another writer of a shared store won */
};

/* Returns a new empty table, or NULL when out of memory. Free with pins_free() (NULL is fine). */
struct pin_table *pins_new(void);
/* Frees the table; a store still attached is closed first (pins_detach_store()). */
void pins_free(struct pin_table *t);

/*
 * Attaches store: replays it into the table (which should be empty), then hands every change to
 * it. The table owns the store from now on (pins_detach_store() closes it). Returns what load()
 * returned; the store stays attached either way.
 */
int pins_attach_store(struct pin_table *t, const struct pin_store_ops *ops, void *store);
/*
 * Writes the activity times the store has not had yet, closes the store and detaches it; the table
 * goes on in memory only. Call at shutdown once the front doors have stopped. NULL store: no-op.
 */
void pins_detach_store(struct pin_table *t);
/* Fills *st from the attached store. Returns 0, or PG_ENOTFOUND when none is attached. */
int pins_store_stats(const struct pin_table *t, struct pin_store_stats *st);

/*
 * Returns the id of the instance user is pinned to, or NULL when user has no pin. The string belongs
 * to the table and stays valid until that user's pin changes or is removed.
 */
const char *pins_get(const struct pin_table *t, const char *user);

/*
 * Pins user to instance_id, replacing any pin user had. since_ms and active_ms become now_ms (setting
 * the same instance again only refreshes active_ms). Returns 0, PG_EINVAL (empty user or
 * instance_id, or an instance_id longer than PG_ID_MAX), PG_ETOOBIG (user longer than PIN_USER_MAX)
 * or PG_ENOMEM (then nothing changed).
 */
int pins_set(struct pin_table *t, const char *user, const char *instance_id, int64_t now_ms);

/* Removes user's pin (her live sessions go on counting). Returns 0 or PG_ENOTFOUND. */
int pins_remove(struct pin_table *t, const char *user);

/* Records activity: active_ms = now_ms. Returns 0 or PG_ENOTFOUND. */
int pins_touch(struct pin_table *t, const char *user, int64_t now_ms);

/* Copies the times of user's pin into *since_ms / *active_ms (either may be NULL). 0 or PG_ENOTFOUND. */
int pins_times(const struct pin_table *t, const char *user, int64_t *since_ms, int64_t *active_ms);

/* Number of users pinned to instance_id (0 for an id nobody is pinned to). */
size_t pins_count(const struct pin_table *t, const char *instance_id);

/* Number of pins in the table. */
size_t pins_size(const struct pin_table *t);

/*
 * The users pinned to instance_id, sorted by strcmp() (for /status "users"). On success sets *users
 * to a malloc'd array of *n pointers (NULL when *n is 0); the array is the caller's to free(), the
 * strings stay the table's and are valid until the table next changes. Returns 0 or PG_ENOMEM.
 */
int pins_users(const struct pin_table *t, const char *instance_id, const char ***users, size_t *n);

/*
 * Unpins every user of instance_id (the instance left the registry). Returns the number of users
 * unpinned.
 */
size_t pins_remove_instance(struct pin_table *t, const char *instance_id);

/*
 * Calls fn for every pin (in no particular order) until fn returns non-zero, which is returned;
 * 0 when all were visited. fn must not change the table.
 */
int pins_foreach(const struct pin_table *t, pin_put_fn fn, void *arg);

/*
 * A live session of user on instance_id begins (SSH pipe open, websocket open). Pinned or not.
 * Returns 0, PG_EINVAL / PG_ETOOBIG (as pins_set) or PG_ENOMEM (then nothing is counted and
 * pins_live_end() must not be called for it).
 */
int pins_live_begin(struct pin_table *t, const char *user, const char *instance_id);
/* That session ended at now_ms: counts go down and, if user is pinned, it is her activity. */
void pins_live_end(struct pin_table *t, const char *user, const char *instance_id, int64_t now_ms);
/* Live sessions of user (anywhere), of instance_id (anyone's), and in all. */
uint32_t pins_live_user(const struct pin_table *t, const char *user);
size_t pins_live_instance(const struct pin_table *t, const char *instance_id);
size_t pins_live_total(const struct pin_table *t);

/*
 * The idle sweep at now_ms: every pin whose user has no live session and whose active_ms is
 * idle_ms or more in the past is removed (logged at info); users with a live session have their
 * active_ms set to now_ms. Returns the number of pins removed.
 */
size_t pins_expire(struct pin_table *t, int64_t now_ms, int64_t idle_ms);

const struct pin_counters *pins_get_counters(const struct pin_table *t);

#endif
