#include "backends/pins.h"
#include "core/err.h"
#include "core/siphash.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

/*
 * Layout: a chained hash table of struct pin, and beside it one struct pin_group per instance id
 * that has users, holding a doubly linked list of those users and their count. Groups live in a
 * plain list: a pool has tens of instances, not thousands, and a group goes away with its last user.
 *
 * Invariants: every pin is in exactly one bucket chain and exactly one group; group->count is the
 * length of group->head's list and never 0 (an empty group is freed); t->size is the number of pins;
 * nbuckets is a power of two.
 */

#define INITIAL_BUCKETS 64

struct pin_group {
	struct pin_group *next;
	struct pin *head;
	size_t count;
	char id[PG_ID_MAX + 1];
};

struct pin {
	struct pin *hnext;		/* bucket chain */
	struct pin *gprev, *gnext;	/* users of the same instance */
	struct pin_group *group;
	uint64_t hash;
	int64_t since_ms, active_ms;
	size_t ulen;
	char user[];			/* NUL-terminated */
};

struct pin_table {
	struct pin **buckets;
	size_t nbuckets;
	size_t size;
	struct pin_group *groups;
	uint8_t key[PG_SIPHASH_KEY_LEN];
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

static struct pin_group *
group_find(const struct pin_table *t, const char *id)
{
	for (struct pin_group *g = t->groups; g != NULL; g = g->next) {
		if (strcmp(g->id, id) == 0)
			return g;
	}
	return NULL;
}

/* Returns the group of id, creating an empty one (count 0) if needed; NULL when out of memory. */
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
	if (g->count > 0)
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
group_link(struct pin_group *g, struct pin *p)
{
	p->group = g;
	p->gprev = NULL;
	p->gnext = g->head;
	if (g->head != NULL)
		g->head->gprev = p;
	g->head = p;
	g->count++;
}

/* Takes p out of its group; the group may now be empty (the caller drops it). */
static void
group_unlink(struct pin *p)
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

	if (t->size <= t->nbuckets || n > SIZE_MAX / sizeof(*nb) || (nb = calloc(n, sizeof(*nb))) == NULL)
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

const char *
pins_get(const struct pin_table *t, const char *user)
{
	struct pin *p = lookup(t, user);

	return p != NULL ? p->group->id : NULL;
}

int
pins_set(struct pin_table *t, const char *user, const char *instance_id, int64_t now_ms)
{
	size_t ulen = strlen(user), idlen = strlen(instance_id);
	uint64_t h;
	struct pin *p;
	struct pin_group *g, *old;

	if (ulen == 0 || idlen == 0 || idlen > PG_ID_MAX)
		return PG_EINVAL;
	if (ulen > PIN_USER_MAX)
		return PG_ETOOBIG;
	h = pg_siphash(t->key, user, ulen);
	if ((p = find(t, user, ulen, h)) != NULL) {
		if (strcmp(p->group->id, instance_id) == 0) {
			p->active_ms = now_ms;
			return 0;
		}
		if ((g = group_get(t, instance_id)) == NULL)
			return PG_ENOMEM;
		old = p->group;
		group_unlink(p);
		group_drop_if_empty(t, old);
		group_link(g, p);
		p->since_ms = p->active_ms = now_ms;
		return 0;
	}
	if ((p = calloc(1, sizeof(*p) + ulen + 1)) == NULL)
		return PG_ENOMEM;
	if ((g = group_get(t, instance_id)) == NULL) {
		free(p);
		return PG_ENOMEM;
	}
	memcpy(p->user, user, ulen + 1);
	p->ulen = ulen;
	p->hash = h;
	p->since_ms = p->active_ms = now_ms;
	group_link(g, p);
	p->hnext = t->buckets[h & (t->nbuckets - 1)];
	t->buckets[h & (t->nbuckets - 1)] = p;
	t->size++;
	maybe_grow(t);
	return 0;
}

static void
destroy(struct pin_table *t, struct pin *p)
{
	struct pin_group *g = p->group;

	bucket_unlink(t, p);
	group_unlink(p);
	group_drop_if_empty(t, g);
	t->size--;
	free(p);
}

int
pins_remove(struct pin_table *t, const char *user)
{
	struct pin *p = lookup(t, user);

	if (p == NULL)
		return PG_ENOTFOUND;
	destroy(t, p);
	return 0;
}

int
pins_touch(struct pin_table *t, const char *user, int64_t now_ms)
{
	struct pin *p = lookup(t, user);

	if (p == NULL)
		return PG_ENOTFOUND;
	p->active_ms = now_ms;
	return 0;
}

int
pins_times(const struct pin_table *t, const char *user, int64_t *since_ms, int64_t *active_ms)
{
	struct pin *p = lookup(t, user);

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

	if (g == NULL) {
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

	/* destroy() frees the group along with its last user: g is not read after that. */
	for (size_t i = 0; i < n; i++)
		destroy(t, g->head);
	return n;
}
