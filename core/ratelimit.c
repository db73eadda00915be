/*
 * Per-source abuse limits: a bounded hash table of sources (SipHash-2-4 under a random key) with,
 * per source, the connections counted now, a decaying failure score and a block deadline.
 *
 * Invariants: an entry with live > 0 is never evicted and is not on the idle list; an entry with
 * live == 0 is on the idle list, most recently seen first, and is the list's tail when it has
 * been seen least recently. t->n <= conf.max_sources except transiently after a reload that
 * lowered it (the surplus goes at the next insertions).
 */
#include "core/ratelimit.h"
#include "core/err.h"
#include "core/siphash.h"

#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define KEY_LEN 17		/* family byte + up to 16 address bytes */
#define MIN_BUCKETS 64
#define SCORE_GONE 0.01		/* a score below this is no score: the entry may go */

struct rl_entry {
	struct rl_entry *hnext;		/* bucket chain */
	struct rl_entry *prev, *next;	/* idle list (live == 0 only) */
	uint8_t key[KEY_LEN];
	uint32_t live;
	double score;
	uint64_t score_ms;		/* when score was last decayed */
	uint64_t blocked_until;
};

struct rl_table {
	struct rl_conf conf;
	struct rl_entry **buckets;
	size_t nbuckets;		/* a power of two */
	size_t n;
	struct rl_entry *idle_head, *idle_tail;
	uint8_t hkey[PG_SIPHASH_KEY_LEN];
	uint64_t rng;
	struct rl_stats st;		/* counters; sizes are filled in by rl_get_stats() */
};

static const char *const verdict_names[RL_NVERDICTS] = { "ok", "max_startups",
	"max_startups_random", "per_source", "blocked", "source_table" };

const char *
rl_verdict_name(enum rl_verdict v)
{
	return (unsigned)v < RL_NVERDICTS ? verdict_names[v] : "?";
}

/* xorshift64*: the random early drop needs unpredictability from outside, not crypto. */
static uint64_t
next_random(struct rl_table *t)
{
	t->rng ^= t->rng >> 12;
	t->rng ^= t->rng << 25;
	t->rng ^= t->rng >> 27;
	return t->rng * 0x2545f4914f6cdd1dull;
}

static void
key_of(const struct rl_table *t, const struct sockaddr *sa, uint8_t key[KEY_LEN])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(key, 0, KEY_LEN);
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		unsigned bits = t->conf.ipv6_prefix;

		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			key[0] = 4;
			memcpy(key + 1, a + 12, 4);
			return;
		}
		key[0] = 6;
		memcpy(key + 1, a, bits / 8);
		if (bits % 8 != 0)
			key[1 + bits / 8] = (uint8_t)(a[bits / 8] & (0xff << (8 - bits % 8)));
	}
	/* Other families (none reach here from TCP) share the all-zero key. */
}

static size_t
bucket_of(const struct rl_table *t, const uint8_t key[KEY_LEN])
{
	return (size_t)pg_siphash(t->hkey, key, KEY_LEN) & (t->nbuckets - 1);
}

static struct rl_entry *
find(const struct rl_table *t, const uint8_t key[KEY_LEN])
{
	struct rl_entry *e = t->buckets[bucket_of(t, key)];

	while (e != NULL && memcmp(e->key, key, KEY_LEN) != 0)
		e = e->hnext;
	return e;
}

static void
idle_unlink(struct rl_table *t, struct rl_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		t->idle_head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		t->idle_tail = e->prev;
	e->prev = e->next = NULL;
}

static void
idle_push(struct rl_table *t, struct rl_entry *e)
{
	e->prev = NULL;
	e->next = t->idle_head;
	if (t->idle_head != NULL)
		t->idle_head->prev = e;
	else
		t->idle_tail = e;
	t->idle_head = e;
}

/* Marks an idle entry as just seen. */
static void
touch(struct rl_table *t, struct rl_entry *e)
{
	if (e->live == 0 && t->idle_head != e) {
		idle_unlink(t, e);
		idle_push(t, e);
	}
}

static void
remove_entry(struct rl_table *t, struct rl_entry *e)
{
	struct rl_entry **pp = &t->buckets[bucket_of(t, e->key)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->live == 0)
		idle_unlink(t, e);
	t->n--;
	free(e);
}

static void
decay(const struct rl_table *t, struct rl_entry *e, uint64_t now)
{
	if (now > e->score_ms && e->score > 0)
		e->score *= exp2(-(double)(now - e->score_ms) / (double)t->conf.half_life_ms);
	if (now > e->score_ms)
		e->score_ms = now;
}

/* An idle entry that remembers nothing is removed, so quiet sources take no room. */
static void
maybe_forget(struct rl_table *t, struct rl_entry *e, uint64_t now)
{
	decay(t, e, now);
	if (e->live == 0 && e->blocked_until <= now && e->score < SCORE_GONE)
		remove_entry(t, e);
}

/* A new idle entry for key, evicting the least recently seen idle ones to stay in bounds. */
static struct rl_entry *
insert(struct rl_table *t, const uint8_t key[KEY_LEN], uint64_t now)
{
	struct rl_entry *e;
	size_t b;

	while (t->n >= t->conf.max_sources && t->idle_tail != NULL) {
		remove_entry(t, t->idle_tail);
		t->st.evictions++;
	}
	if (t->n >= t->conf.max_sources || (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	memcpy(e->key, key, KEY_LEN);
	e->score_ms = now;
	b = bucket_of(t, key);
	e->hnext = t->buckets[b];
	t->buckets[b] = e;
	t->n++;
	idle_push(t, e);
	return e;
}

static size_t
buckets_for(uint32_t max_sources)
{
	size_t n = MIN_BUCKETS;

	/* About one entry per bucket when full; capped so a huge bound does not allocate up front. */
	while (n < max_sources && n < (1u << 20))
		n <<= 1;
	return n;
}

/* Moves every entry into a bucket array of n heads. */
static int
rehash(struct rl_table *t, size_t n)
{
	struct rl_entry **nb = calloc(n, sizeof(*nb)), **old = t->buckets;
	size_t oldn = t->nbuckets;

	if (nb == NULL)
		return PG_ENOMEM;
	t->buckets = nb;
	t->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		struct rl_entry *e = old[i], *next;

		for (; e != NULL; e = next) {
			size_t b = bucket_of(t, e->key);

			next = e->hnext;
			e->hnext = nb[b];
			nb[b] = e;
		}
	}
	free(old);
	return 0;
}

struct rl_table *
rl_new(const struct rl_conf *conf, uint64_t seed)
{
	struct rl_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->conf = *conf;
	if (rehash(t, buckets_for(conf->max_sources)) != 0 ||
	    uv_random(NULL, NULL, t->hkey, sizeof(t->hkey), 0, NULL) != 0 ||
	    (seed == 0 && uv_random(NULL, NULL, &seed, sizeof(seed), 0, NULL) != 0)) {
		rl_free(t);
		return NULL;
	}
	t->rng = seed != 0 ? seed : 0x9e3779b97f4a7c15ull;
	return t;
}

void
rl_free(struct rl_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct rl_entry *e = t->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->hnext;
			free(e);
		}
	}
	free(t->buckets);
	free(t);
}

int
rl_set_conf(struct rl_table *t, const struct rl_conf *conf)
{
	size_t want = buckets_for(conf->max_sources);
	uint32_t prefix = t->conf.ipv6_prefix;

	if (want > t->nbuckets && rehash(t, want) != 0)
		return PG_ENOMEM;
	t->conf = *conf;
	/* The IPv6 grouping makes the keys of counted connections: it stays until a restart. */
	t->conf.ipv6_prefix = prefix;
	return 0;
}

int
rl_configure(struct rl_table **t, const struct rl_conf *conf)
{
	if (*t != NULL)
		return rl_set_conf(*t, conf);
	return (*t = rl_new(conf, 0)) != NULL ? 0 : PG_ENOMEM;
}

enum rl_verdict
rl_admit(struct rl_table *t, const struct sockaddr *sa, uint64_t now)
{
	const struct rl_conf *c = &t->conf;
	uint8_t key[KEY_LEN];
	struct rl_entry *e;
	enum rl_verdict v = RL_OK;

	key_of(t, sa, key);
	if ((e = find(t, key)) != NULL)
		touch(t, e);
	if (e != NULL && e->blocked_until > now) {
		v = RL_BLOCKED;
	} else if (c->full != 0 && t->st.startups >= c->full) {
		v = RL_FULL;
	} else if (c->full != 0 && t->st.startups >= c->start) {
		/* OpenSSH's drop_connection(): rate% at start, growing linearly to 100% at full. */
		uint64_t p = c->rate + (uint64_t)(t->st.startups - c->start) * (100 - c->rate) /
		    (c->full - c->start);

		if (next_random(t) % 100 < p)
			v = RL_RANDOM;
	}
	if (v == RL_OK && c->per_source != 0 && e != NULL && e->live >= c->per_source)
		v = RL_PER_SOURCE;
	if (v == RL_OK && e == NULL && (e = insert(t, key, now)) == NULL)
		v = RL_TABLE;
	if (v != RL_OK) {
		t->st.refused[v]++;
		return v;
	}
	if (e->live++ == 0)
		idle_unlink(t, e);
	t->st.startups++;
	t->st.admitted++;
	return RL_OK;
}

void
rl_release(struct rl_table *t, const struct sockaddr *sa, uint64_t now)
{
	uint8_t key[KEY_LEN];
	struct rl_entry *e;

	key_of(t, sa, key);
	/* Counted entries are never evicted, so it is there. */
	if ((e = find(t, key)) == NULL || e->live == 0)
		return;
	t->st.startups--;
	if (--e->live == 0) {
		idle_push(t, e);
		maybe_forget(t, e, now);
	}
}

int
rl_failure(struct rl_table *t, const struct sockaddr *sa, uint64_t now, uint32_t *delay_ms)
{
	const struct rl_conf *c = &t->conf;
	uint8_t key[KEY_LEN];
	struct rl_entry *e;
	uint32_t n;

	*delay_ms = 0;
	t->st.failures++;
	key_of(t, sa, key);
	if ((e = find(t, key)) == NULL && (e = insert(t, key, now)) == NULL)
		return 0;
	touch(t, e);
	decay(t, e, now);
	e->score += 1;
	/* Failures remembered: each weighs less as it ages, and counts while it weighs 1/2 or more. */
	n = e->score >= UINT32_MAX ? UINT32_MAX : (uint32_t)(e->score + 0.5);
	if (c->delay_ms != 0 && n > c->free_failures) {
		uint32_t shift = n - c->free_failures - 1;

		*delay_ms = shift >= 31 || ((uint64_t)c->delay_ms << shift) > c->max_delay_ms ?
		    c->max_delay_ms : c->delay_ms << shift;
		t->st.delays++;
		t->st.delay_ms_total += *delay_ms;
	}
	if (c->block_after != 0 && n >= c->block_after && e->blocked_until <= now) {
		e->blocked_until = now + c->block_ms;
		t->st.blocks++;
		return 1;
	}
	return 0;
}

void
rl_forgive(struct rl_table *t, const struct sockaddr *sa, uint32_t n, uint64_t now)
{
	uint8_t key[KEY_LEN];
	struct rl_entry *e;

	key_of(t, sa, key);
	if (n == 0 || (e = find(t, key)) == NULL)
		return;
	decay(t, e, now);
	e->score = e->score > n ? e->score - n : 0;
}

int
rl_blocked(const struct rl_table *t, const struct sockaddr *sa, uint64_t now)
{
	uint8_t key[KEY_LEN];
	const struct rl_entry *e;

	key_of(t, sa, key);
	return (e = find(t, key)) != NULL && e->blocked_until > now;
}

void
rl_get_stats(const struct rl_table *t, uint64_t now, struct rl_stats *out)
{
	*out = t->st;
	out->sources = t->n;
	out->blocked = 0;
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (const struct rl_entry *e = t->buckets[i]; e != NULL; e = e->hnext)
			out->blocked += e->blocked_until > now;
	}
}
