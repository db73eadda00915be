#include "backends/pins.h"
#include "core/err.h"
#include "core/log.h"
#include "core/siphash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/*
 * Layout: a chained hash table of struct pin, one entry per user who is pinned or has live sessions
 * (or both), and beside it one struct pin_group per instance id that has pinned users or live
 * sessions, holding a doubly linked list of its pinned users, their count and the live sessions on
 * it. Groups live in a plain list: a pool has tens of instances, not thousands.
 *
 * Invariants: every entry is in exactly one bucket chain; an entry is pinned iff p->group != NULL,
 * and then it is in that group's list; an entry with no group has live > 0 (otherwise it is freed);
 * group->count is the length of its list; a group with count == 0 and live == 0 is freed;
 * t->size is the number of pinned entries, t->entries the number of entries; nbuckets is a power
 * of two.
 */

#define INITIAL_BUCKETS 64

struct pin_group {
	struct pin_group *next;
	struct pin *head;
	size_t count;		/* pinned users */
	size_t live;		/* live sessions running on this instance */
	char id[PG_ID_MAX + 1];
};

struct pin {
	struct pin *hnext;		/* bucket chain */
	struct pin *gprev, *gnext;	/* users pinned to the same instance */
	struct pin_group *group;	/* NULL: not pinned (live sessions only) */
	uint64_t hash;
	int64_t since_ms, active_ms;
	int64_t stored_active_ms;	/* the active_ms the store last got */
	uint32_t live;			/* this user's live sessions, wherever they run */
	size_t ulen;
	char user[];			/* NUL-terminated */
};

struct pin_table {
	struct pin **buckets;
	size_t nbuckets;
	size_t size, entries;
	size_t live;
	struct pin_group *groups;
	uint8_t key[PG_SIPHASH_KEY_LEN];
	const struct pin_store_ops *ops;	/* NULL: memory only */
	void *store;
	int loading;				/* replaying the store: hand nothing back to it */
	struct pin_counters counters;
};

struct pin_table *
pins_new(void)
{
	struct pin_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->nbuckets = INITIAL_BUCKETS;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	/* A fresh key per table: bucket placement must not be predictable from outside. */
	if (t->buckets == NULL || uv_random(NULL, NULL, t->key, sizeof(t->key), 0, NULL) != 0) {
		free(t->buckets);
		free(t);
		return NULL;
	}
	return t;
}

void
pins_free(struct pin_table *t)
{
	struct pin *p, *pn;
	struct pin_group *g, *gn;

	if (t == NULL)
		return;
	pins_detach_store(t);
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (p = t->buckets[i]; p != NULL; p = pn) {
			pn = p->hnext;
			free(p);
		}
	}
	for (g = t->groups; g != NULL; g = gn) {
		gn = g->next;
		free(g);
	}
	free(t->buckets);
	free(t);
}

/* ---- the store ---- */

static void
store_put(struct pin_table *t, struct pin *p)
{
	if (t->ops == NULL || t->loading)
		return;
	/* The table goes on whatever the store says: it logs and counts its own trouble. */
	(void)t->ops->put(t->store, p->user, p->group->id, p->since_ms, p->active_ms);
	p->stored_active_ms = p->active_ms;
}

static void
store_del(struct pin_table *t, const char *user)
{
	if (t->ops != NULL && !t->loading)
		(void)t->ops->del(t->store, user);
}

/* Activity reaches the store lazily: at most once per PIN_ACTIVE_WRITE_MS per user. */
static void
store_activity(struct pin_table *t, struct pin *p)
{
	if (p->active_ms - p->stored_active_ms >= PIN_ACTIVE_WRITE_MS)
		store_put(t, p);
}

static void on_claim(void *arg, const char *user, int status, const char *winner);

static void
store_claim(struct pin_table *t, struct pin *p)
{
	if (t->ops == NULL || t->loading)
		return;
	p->stored_active_ms = p->active_ms;
	(void)t->ops->put_if_absent(t->store, p->user, p->group->id, p->since_ms, p->active_ms,
	    on_claim, t);
}

/* ---- entries and groups ---- */

static struct pin *
find(const struct pin_table *t, const char *user, size_t ulen, uint64_t h)
{
	for (struct pin *p = t->buckets[h & (t->nbuckets - 1)]; p != NULL; p = p->hnext) {
		if (p->hash == h && p->ulen == ulen && memcmp(p->user, user, ulen) == 0)
			return p;
	}
	return NULL;
}

static struct pin *
lookup(const struct pin_table *t, const char *user)
{
	size_t ulen = strlen(user);

	return find(t, user, ulen, pg_siphash(t->key, user, ulen));
}

/* The entry of a pinned user, or NULL. */
static struct pin *
lookup_pinned(const struct pin_table *t, const char *user)
{
	struct pin *p = lookup(t, user);

	return p != NULL && p->group != NULL ? p : NULL;
}

static struct pin_group *
group_find(const struct pin_table *t, const char *id)
{
	for (struct pin_group *g = t->groups; g != NULL; g = g->next) {
		if (strcmp(g->id, id) == 0)
			return g;
	}
	return NULL;
}

/* Returns the group of id, creating an empty one if needed; NULL when out of memory. */
static struct pin_group *
group_get(struct pin_table *t, const char *id)
{
	struct pin_group *g = group_find(t, id);

	if (g != NULL)
		return g;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	memcpy(g->id, id, strlen(id) + 1);
	g->next = t->groups;
	t->groups = g;
	return g;
}

static void
group_drop_if_empty(struct pin_table *t, struct pin_group *g)
{
	if (g->count > 0 || g->live > 0)
		return;
	for (struct pin_group **pp = &t->groups; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			free(g);
			return;
		}
	}
}

static void
group_link(struct pin_table *t, struct pin_group *g, struct pin *p)
{
	p->group = g;
	p->gprev = NULL;
	p->gnext = g->head;
	if (g->head != NULL)
		g->head->gprev = p;
	g->head = p;
	g->count++;
	t->size++;
}

/* Takes p out of its group, dropping the group if that emptied it. */
static void
group_unlink(struct pin_table *t, struct pin *p)
{
	struct pin_group *g = p->group;

	if (p->gprev != NULL)
		p->gprev->gnext = p->gnext;
	else
		g->head = p->gnext;
	if (p->gnext != NULL)
		p->gnext->gprev = p->gprev;
	p->gprev = p->gnext = NULL;
	p->group = NULL;
	g->count--;
	t->size--;
	group_drop_if_empty(t, g);
}

static void
bucket_unlink(struct pin_table *t, struct pin *p)
{
	for (struct pin **pp = &t->buckets[p->hash & (t->nbuckets - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext) {
		if (*pp == p) {
			*pp = p->hnext;
			return;
		}
	}
}

/* Doubles the bucket array when the load passes 1. Failing to grow only costs speed. */
static void
maybe_grow(struct pin_table *t)
{
	size_t n = t->nbuckets * 2;
	struct pin **nb, *p, *pn;

	if (t->entries <= t->nbuckets || n > SIZE_MAX / sizeof(*nb) ||
	    (nb = calloc(n, sizeof(*nb))) == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (p = t->buckets[i]; p != NULL; p = pn) {
			pn = p->hnext;
			p->hnext = nb[p->hash & (n - 1)];
			nb[p->hash & (n - 1)] = p;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
}

/* Checks user and id as pins_set() documents. */
static int
check_names(const char *user, const char *instance_id)
{
	size_t ulen = strlen(user), idlen = strlen(instance_id);

	if (ulen == 0 || idlen == 0 || idlen > PG_ID_MAX)
		return PG_EINVAL;
	return ulen > PIN_USER_MAX ? PG_ETOOBIG : 0;
}

/* The entry of user, made (unpinned, no sessions) if missing. NULL when out of memory. */
static struct pin *
entry_get(struct pin_table *t, const char *user)
{
	size_t ulen = strlen(user);
	uint64_t h = pg_siphash(t->key, user, ulen);
	struct pin *p = find(t, user, ulen, h);

	if (p != NULL)
		return p;
	if ((p = calloc(1, sizeof(*p) + ulen + 1)) == NULL)
		return NULL;
	memcpy(p->user, user, ulen + 1);
	p->ulen = ulen;
	p->hash = h;
	p->hnext = t->buckets[h & (t->nbuckets - 1)];
	t->buckets[h & (t->nbuckets - 1)] = p;
	t->entries++;
	maybe_grow(t);
	return p;
}

/* Frees p if it is neither pinned nor live. */
static void
entry_drop_if_unused(struct pin_table *t, struct pin *p)
{
	if (p->group != NULL || p->live > 0)
		return;
	bucket_unlink(t, p);
	t->entries--;
	free(p);
}

/*
 * Pins user to id with the given times, in memory only; *out is the user's entry. Returns 0,
 * PG_ENOMEM (nothing changed), or 1 when the same pin already held (only active_ms changed).
 */
static int
set_pin(struct pin_table *t, const char *user, const char *id, int64_t since_ms,
    int64_t active_ms, struct pin **out)
{
	struct pin *p = entry_get(t, user);
	struct pin_group *g;

	if (p == NULL)
		return PG_ENOMEM;
	*out = p;
	if (p->group != NULL && strcmp(p->group->id, id) == 0) {
		p->active_ms = active_ms;
		return 1;
	}
	if ((g = group_get(t, id)) == NULL) {
		entry_drop_if_unused(t, p);
		return PG_ENOMEM;
	}
	if (p->group != NULL)
		group_unlink(t, p);
	group_link(t, g, p);
	p->since_ms = since_ms;
	p->active_ms = active_ms;
	return 0;
}

/* Unpins p's user and frees the entry unless she has live sessions. */
static void
unpin(struct pin_table *t, struct pin *p)
{
	group_unlink(t, p);
	entry_drop_if_unused(t, p);
}

/* ---- replay ---- */

static int
load_put(void *arg, const char *user, const char *id, int64_t since_ms, int64_t active_ms)
{
	struct pin_table *t = arg;
	struct pin *p = NULL;
	int r;

	if (check_names(user, id) != 0)
		return 0;	/* the store checked; nothing to apply */
	if ((r = set_pin(t, user, id, since_ms, active_ms, &p)) < 0)
		return r;
	p->since_ms = since_ms;
	p->stored_active_ms = active_ms;
	return 0;
}

static int
load_del(void *arg, const char *user)
{
	struct pin_table *t = arg;
	struct pin *p = lookup_pinned(t, user);

	if (p != NULL)
		unpin(t, p);
	return 0;
}

int
pins_attach_store(struct pin_table *t, const struct pin_store_ops *ops, void *store)
{
	int r;

	pins_detach_store(t);
	t->ops = ops;
	t->store = store;
	t->loading = 1;
	r = ops->load(store, load_put, load_del, t);
	t->loading = 0;
	return r;
}

void
pins_detach_store(struct pin_table *t)
{
	if (t->ops == NULL)
		return;
	/* A clean stop loses no activity: what the lazy rule held back goes now. */
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct pin *p = t->buckets[i]; p != NULL; p = p->hnext) {
			if (p->group != NULL && p->active_ms != p->stored_active_ms)
				store_put(t, p);
		}
	}
	t->ops->close(t->store);
	t->ops = NULL;
	t->store = NULL;
}

int
pins_store_stats(const struct pin_table *t, struct pin_store_stats *st)
{
	if (t->ops == NULL)
		return PG_ENOTFOUND;
	memset(st, 0, sizeof(*st));
	t->ops->stats(t->store, st);
	return 0;
}

/* A shared store may say that another writer pinned this user first: that pin wins. */
static void
on_claim(void *arg, const char *user, int status, const char *winner)
{
	struct pin_table *t = arg;
	struct pin *p = lookup_pinned(t, user);
	char prefix[PIN_USER_MAX + 8];

	if (status != 0 || p == NULL || winner == NULL || strcmp(p->group->id, winner) == 0 ||
	    !inst_id_ok(winner))
		return;
	snprintf(prefix, sizeof(prefix), "user %s", user);
	LOG_INFO(prefix, "pinned to %s by another poolgate first; %s gives way", winner,
	    p->group->id);
	t->counters.claims_lost++;
	/* set_pin() tells the store nothing: it already holds the winner. */
	(void)set_pin(t, user, winner, p->since_ms, p->active_ms, &p);
}

/* ---- the public table ---- */

const char *
pins_get(const struct pin_table *t, const char *user)
{
	struct pin *p = lookup_pinned(t, user);

	return p != NULL ? p->group->id : NULL;
}

int
pins_set(struct pin_table *t, const char *user, const char *instance_id, int64_t now_ms)
{
	struct pin *p = NULL;
	int had, r;

	if ((r = check_names(user, instance_id)) != 0)
		return r;
	had = lookup_pinned(t, user) != NULL;
	if ((r = set_pin(t, user, instance_id, now_ms, now_ms, &p)) < 0)
		return r;
	if (r == 1) {
		store_activity(t, p);
		return 0;
	}
	if (had) {
		t->counters.moved++;
		store_put(t, p);
	} else {
		t->counters.created++;
		store_claim(t, p);
	}
	return 0;
}

int
pins_remove(struct pin_table *t, const char *user)
{
	struct pin *p = lookup_pinned(t, user);

	if (p == NULL)
		return PG_ENOTFOUND;
	store_del(t, p->user);
	t->counters.removed++;
	unpin(t, p);
	return 0;
}

int
pins_touch(struct pin_table *t, const char *user, int64_t now_ms)
{
	struct pin *p = lookup_pinned(t, user);

	if (p == NULL)
		return PG_ENOTFOUND;
	p->active_ms = now_ms;
	store_activity(t, p);
	return 0;
}

int
pins_times(const struct pin_table *t, const char *user, int64_t *since_ms, int64_t *active_ms)
{
	struct pin *p = lookup_pinned(t, user);

	if (p == NULL)
		return PG_ENOTFOUND;
	if (since_ms != NULL)
		*since_ms = p->since_ms;
	if (active_ms != NULL)
		*active_ms = p->active_ms;
	return 0;
}

size_t
pins_count(const struct pin_table *t, const char *instance_id)
{
	struct pin_group *g = group_find(t, instance_id);

	return g != NULL ? g->count : 0;
}

size_t
pins_size(const struct pin_table *t)
{
	return t->size;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
pins_users(const struct pin_table *t, const char *instance_id, const char ***users, size_t *n)
{
	struct pin_group *g = group_find(t, instance_id);
	const char **v;
	size_t i = 0;

	if (g == NULL || g->count == 0) {
		*users = NULL;
		*n = 0;
		return 0;
	}
	if ((v = malloc(g->count * sizeof(*v))) == NULL)
		return PG_ENOMEM;
	for (struct pin *p = g->head; p != NULL; p = p->gnext)
		v[i++] = p->user;
	qsort(v, i, sizeof(*v), cmp_str);
	*users = v;
	*n = i;
	return 0;
}

size_t
pins_remove_instance(struct pin_table *t, const char *instance_id)
{
	struct pin_group *g = group_find(t, instance_id);
	size_t n = g != NULL ? g->count : 0;

	/* The group may go with its last user (no live sessions): g is not read after that. */
	for (size_t i = 0; i < n; i++)
		(void)pins_remove(t, g->head->user);
	return n;
}

int
pins_foreach(const struct pin_table *t, pin_put_fn fn, void *arg)
{
	int r;

	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct pin *p = t->buckets[i]; p != NULL; p = p->hnext) {
			if (p->group != NULL &&
			    (r = fn(arg, p->user, p->group->id, p->since_ms, p->active_ms)) != 0)
				return r;
		}
	}
	return 0;
}

/* ---- live sessions ---- */

int
pins_live_begin(struct pin_table *t, const char *user, const char *instance_id)
{
	struct pin *p;
	struct pin_group *g;
	int r;

	if ((r = check_names(user, instance_id)) != 0)
		return r;
	if ((p = entry_get(t, user)) == NULL)
		return PG_ENOMEM;
	if ((g = group_get(t, instance_id)) == NULL) {
		entry_drop_if_unused(t, p);
		return PG_ENOMEM;
	}
	p->live++;
	g->live++;
	t->live++;
	return 0;
}

void
pins_live_end(struct pin_table *t, const char *user, const char *instance_id, int64_t now_ms)
{
	struct pin *p = lookup(t, user);
	struct pin_group *g = group_find(t, instance_id);

	/* Both exist for a session pins_live_begin() counted; anything else is a caller's bug. */
	if (p == NULL || p->live == 0 || g == NULL || g->live == 0)
		return;
	p->live--;
	g->live--;
	t->live--;
	group_drop_if_empty(t, g);
	if (p->group != NULL) {
		p->active_ms = now_ms;
		store_activity(t, p);
	}
	entry_drop_if_unused(t, p);
}

uint32_t
pins_live_user(const struct pin_table *t, const char *user)
{
	struct pin *p = lookup(t, user);

	return p != NULL ? p->live : 0;
}

size_t
pins_live_instance(const struct pin_table *t, const char *instance_id)
{
	struct pin_group *g = group_find(t, instance_id);

	return g != NULL ? g->live : 0;
}

size_t
pins_live_total(const struct pin_table *t)
{
	return t->live;
}

/* ---- idle expiry ---- */

size_t
pins_expire(struct pin_table *t, int64_t now_ms, int64_t idle_ms)
{
	struct pin *p, *pn;
	size_t n = 0;
	char prefix[PIN_USER_MAX + 8];

	for (size_t i = 0; i < t->nbuckets; i++) {
		for (p = t->buckets[i]; p != NULL; p = pn) {
			pn = p->hnext;	/* p may be freed below */
			if (p->group == NULL)
				continue;
			if (p->live > 0) {
				/* Working counts as activity, so a crash does not make her look idle. */
				p->active_ms = now_ms;
				store_activity(t, p);
				continue;
			}
			if (now_ms - p->active_ms < idle_ms)
				continue;
			snprintf(prefix, sizeof(prefix), "user %s", p->user);
			LOG_INFO(prefix, "pin to %s expired: idle for %lld s, no live session",
			    p->group->id, (long long)((now_ms - p->active_ms) / 1000));
			store_del(t, p->user);
			t->counters.expired++;
			unpin(t, p);
			n++;
		}
	}
	return n;
}

const struct pin_counters *
pins_get_counters(const struct pin_table *t)
{
	return &t->counters;
}
