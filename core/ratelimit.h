/*
 * Abuse limits keyed by the peer's address, for the front doors (proxy/ssh, proxy/http). Pure:
 * the caller passes the time (a monotonic ms clock, uv_now()), so tests drive it by hand.
 *
 * Two things are limited:
 *
 * - Startups: connections admitted and not yet released (for SSH: not yet authenticated; for
 *   HTTPS: TLS handshake not yet done). Per source address at most `per_source`; in total
 *   OpenSSH's MaxStartups rule "start:rate:full": below `start` every connection is admitted, at
 *   `full` or more none, in between a connection is refused with a probability growing linearly
 *   from rate% at `start` to 100% at `full` (random early drop).
 * - Failures (failed authentication attempts) per source: a score that grows by one per failure
 *   and halves every `half_life_ms` (rounded, it is the number of failures remembered). Past `free_failures`, each failure is answered after a delay
 *   that doubles per failure from `delay_ms` up to `max_delay_ms`; at `block_after` the source is
 *   refused new connections for `block_ms`. Failures of a connection that then authenticates are
 *   forgiven (a user's agent offering several keys is not an attack).
 *
 * A source is an IPv4 address, or an IPv6 address cut to `ipv6_prefix` bits (one host usually
 * owns a whole /64); IPv4-mapped IPv6 addresses count as IPv4. The table of sources is a hash
 * table under a random SipHash key, so peers cannot aim at one bucket, and holds at most
 * `max_sources` entries: a new source evicts the one seen least recently among those with no
 * connection counted. Memory stays bounded whatever the peers do; an entry is about 80 bytes.
 *
 * Returns: 0 or a negative PG_E* code where a function returns int, unless said otherwise.
 */
#ifndef PG_CORE_RATELIMIT_H
#define PG_CORE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct rl_conf {
	uint32_t max_sources;		/* entries kept (>= 1) */
	uint32_t ipv6_prefix;		/* 1..128 */
	uint32_t start, rate, full;	/* startups in total; full 0: no total limit */
	uint32_t per_source;		/* startups per source; 0: no limit */
	uint32_t free_failures;		/* failures answered without delay */
	uint32_t delay_ms, max_delay_ms;	/* delay_ms 0: never delay */
	uint32_t half_life_ms;		/* how fast failures are forgotten (>= 1) */
	uint32_t block_after;		/* failures that block the source; 0: never block */
	uint32_t block_ms;
};

enum rl_verdict {
	RL_OK,			/* admitted: counted until rl_release() */
	RL_FULL,		/* `full` startups in total */
	RL_RANDOM,		/* between `start` and `full`, and this one was dropped */
	RL_PER_SOURCE,		/* `per_source` startups from this source */
	RL_BLOCKED,		/* the source is blocked after too many failures */
	RL_TABLE,		/* no entry could be made: every one has connections (or out of memory) */
	RL_NVERDICTS
};

struct rl_stats {
	uint64_t admitted;
	uint64_t refused[RL_NVERDICTS];	/* by verdict; [RL_OK] stays 0 */
	uint64_t failures;		/* rl_failure() calls */
	uint64_t delays;		/* failures answered late */
	uint64_t delay_ms_total;	/* the sum of those delays */
	uint64_t blocks;		/* sources blocked (each time a block starts) */
	uint64_t evictions;		/* entries dropped to make room */
	uint32_t startups;		/* counted now */
	size_t sources;			/* entries now */
	size_t blocked;			/* sources blocked now */
};

struct rl_table;

/* A new table. seed 0: the drop randomness comes from OpenSSL; other values make it repeatable
 * (tests). Returns NULL when out of memory. */
struct rl_table *rl_new(const struct rl_conf *conf, uint64_t seed);
void rl_free(struct rl_table *t);	/* accepts NULL */

/* Makes *t with conf (seed 0) if it is NULL, else gives it conf (rl_set_conf). 0 or PG_ENOMEM. */
int rl_configure(struct rl_table **t, const struct rl_conf *conf);

/*
 * Takes new settings (a reload). Entries, counts and blocks stay; ipv6_prefix keeps its first
 * value (it makes the keys of connections counted now). 0 or PG_ENOMEM (nothing changed).
 */
int rl_set_conf(struct rl_table *t, const struct rl_conf *conf);

/* A new connection from sa. RL_OK counts it as a startup (release it with rl_release()). */
enum rl_verdict rl_admit(struct rl_table *t, const struct sockaddr *sa, uint64_t now_ms);

/* A connection rl_admit() counted authenticated (or closed): it no longer counts. */
void rl_release(struct rl_table *t, const struct sockaddr *sa, uint64_t now_ms);

/*
 * One failed authentication attempt from sa. Sets *delay_ms to how long to wait before answering
 * it. Returns 1 when this failure starts a block of the source, else 0.
 */
int rl_failure(struct rl_table *t, const struct sockaddr *sa, uint64_t now_ms, uint32_t *delay_ms);

/* A connection from sa authenticated after n failures: those are forgiven. */
void rl_forgive(struct rl_table *t, const struct sockaddr *sa, uint32_t n, uint64_t now_ms);

/* 1 if sa is blocked now. */
int rl_blocked(const struct rl_table *t, const struct sockaddr *sa, uint64_t now_ms);

/* Counters and the current sizes (walks the table: for /metrics, not per connection). */
void rl_get_stats(const struct rl_table *t, uint64_t now_ms, struct rl_stats *out);

/* "max_startups", "max_startups_random", "per_source", "blocked", "source_table"; "ok". */
const char *rl_verdict_name(enum rl_verdict v);

#endif
