/*
 * The pin table: which instance each user is pinned to. In memory, keyed by username (1..255 bytes,
 * any bytes but NUL; identity.c decides what a valid JupyterHub name is), with a keyed hash
 * (core/siphash.h, random key per table) because usernames come from unauthenticated peers.
 *
 * Each pin records the instance id (a copy: a pin may name an instance the registry no longer
 * lists, so placement can say where the user was), when it was made (since_ms) and the last
 * activity (active_ms, refreshed by pins_touch()); the idle expiry that DESIGN.md describes will
 * read active_ms. Users are also grouped per instance id, so pins_count() is O(1) and the users of one
 * instance can be listed without scanning the table.
 *
 * Persistence (not implemented yet). DESIGN.md wants a `file` store (journal + snapshot in state_dir)
 * and a `redis` store. The table is meant to stay the in-memory view in front of either one:
 *   - every change goes through pins_set(), pins_remove() and pins_remove_instance(), which already
 *     return an error code, so a store write that fails can fail the change;
 *   - a store implements struct pin_store_ops below; pins_new() will take (ops, store), call load()
 *     to fill the table at start, then put()/del() after each change in memory. pins_touch() is
 *     not journalled each time (activity is frequent); a store may flush active_ms lazily.
 *   - redis, shared by replicas, needs the first placement to be atomic: put_if_absent() returns the
 *     instance id that won, and placement uses that instead of its own choice.
 * Nothing calls these ops today.
 */
#ifndef PG_BACKENDS_PINS_H
#define PG_BACKENDS_PINS_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

#define PIN_USER_MAX 255	/* bytes, without the NUL */

struct pin_table;

struct pin_store_ops {
	/* Calls add(arg, ...) once per stored pin. Returns 0 or a negative PG_E* code. */
	int (*load)(void *store, int (*add)(void *arg, const char *user, const char *instance_id,
	    int64_t since_ms, int64_t active_ms), void *arg);
	/* Records user -> instance_id. Returns 0 or a negative PG_E* code. */
	int (*put)(void *store, const char *user, const char *instance_id, int64_t since_ms,
	    int64_t active_ms);
	/*
	 * Records user -> instance_id only if user has no pin yet; either way copies the pin that holds
	 * afterwards into winner (PG_ID_MAX + 1 bytes). Returns 0 or a negative PG_E* code.
	 */
	int (*put_if_absent)(void *store, const char *user, const char *instance_id, int64_t now_ms,
	    char *winner);
	int (*del)(void *store, const char *user);
	void (*close)(void *store);
};

/* Returns a new empty table, or NULL when out of memory. Free with pins_free() (NULL is fine). */
struct pin_table *pins_new(void);
void pins_free(struct pin_table *t);

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

/* Removes user's pin. Returns 0 or PG_ENOTFOUND. */
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

#endif
