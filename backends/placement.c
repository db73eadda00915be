#include "backends/placement.h"
#include "backends/score.h"
#include "core/err.h"
#include "core/log.h"
#include "core/siphash.h"

#include <stdio.h>
#include <string.h>

/*
 * The tie-break key is fixed on purpose: two replicas, or one poolgate before and after a restart,
 * must break a tie the same way. It is not a secret; a user who can choose a name can choose where
 * ties send them, which is no more than choosing the name already allows.
 */
static const uint8_t tie_key[PG_SIPHASH_KEY_LEN] = "poolgate-place-1";

/* An instance keeps the users pinned to it while it serves: health up, and drained or not. */
static int
serves_pinned(const struct instance *in)
{
	enum inst_state s = inst_state(in);

	return s == INST_S_UP || (s == INST_S_DRAINING && in->health == HEALTH_UP);
}

static uint64_t
tie_hash(const char *user, const char *id)
{
	uint8_t buf[PIN_USER_MAX + 1 + PG_ID_MAX];
	size_t ulen = strlen(user), ilen = strlen(id);

	if (ulen > PIN_USER_MAX)
		ulen = PIN_USER_MAX;
	if (ilen > PG_ID_MAX)
		ilen = PG_ID_MAX;
	memcpy(buf, user, ulen);
	buf[ulen] = 0;	/* ("ab", "c") and ("a", "bc") must not hash alike */
	memcpy(buf + ulen + 1, id, ilen);
	return pg_siphash(tie_key, buf, ulen + 1 + ilen);
}

/*
 * The instance a new user goes to: up and active, under capacity, lowest score (backends/score.h);
 * equal scores go to the lowest tie hash. NULL when none qualifies.
 */
static struct instance *
choose(struct registry *reg, const struct pin_table *pins, const char *user, int64_t now_ms)
{
	const struct place_ctl *ctl = reg_placement(reg);
	struct instance *best = NULL;
	double best_s = 0;
	uint64_t best_h = 0;

	for (struct instance *in = reg_first(reg); in != NULL; in = in->next) {
		size_t n;
		double sc;
		uint64_t h;

		if (inst_state(in) != INST_S_UP)
			continue;
		n = pins_count(pins, in->conf.id);
		if (n >= in->conf.capacity)
			continue;
		sc = score_compute(&ctl->weights, n, in->conf.capacity, &in->load, now_ms);
		h = tie_hash(user, in->conf.id);
		if (best == NULL || sc < best_s || (sc == best_s && h < best_h)) {
			best = in;
			best_s = sc;
			best_h = h;
		}
	}
	return best;
}

/* Why choose() found nothing: the up and active instances are all full, or there are none. */
static enum place_reason
none_reason(struct registry *reg)
{
	return reg_count_up(reg) > 0 ? PLACE_FULL : PLACE_NONE;
}

/*
 * The instance user's pin sends her to as it stands, or NULL when it would not hold: no pin, an
 * instance gone, down or in maint, health unknown, or draining with no live session of hers left
 * (then she moves, if another instance can take her).
 */
static struct instance *
pin_holds(struct registry *reg, const struct pin_table *pins, const char *user)
{
	const char *pinned = pins_get(pins, user);
	struct instance *cur = pinned != NULL ? reg_find(reg, pinned) : NULL;

	if (cur == NULL || !serves_pinned(cur))
		return NULL;
	if (inst_state(cur) == INST_S_DRAINING && pins_live_user(pins, user) == 0)
		return NULL;
	return cur;
}

struct instance *
place_pinned(struct registry *reg, const struct pin_table *pins, const char *user)
{
	return pin_holds(reg, pins, user);
}

/*
 * What placement decides for user now, without changing anything. *out (when not NULL) is set to
 * the instance for PLACE_KEPT, PLACE_NEW and PLACE_MOVED, else NULL.
 */
static enum place_reason
decide(struct registry *reg, const struct pin_table *pins, const char *user, int64_t now_ms,
    struct instance **out)
{
	const char *pinned = pins_get(pins, user);
	struct instance *cur = pinned != NULL ? reg_find(reg, pinned) : NULL, *in;

	*out = NULL;
	if ((in = pin_holds(reg, pins, user)) != NULL) {
		*out = in;
		return PLACE_KEPT;
	}
	/*
	 * Unknown health (not probed yet since start or since an endpoint change) is no reason to move
	 * anybody: after a restart every instance is unknown for a round or two. Wait for a verdict.
	 */
	if (cur != NULL && cur->health == HEALTH_UNKNOWN && cur->conf.admin != INST_MAINT)
		return PLACE_WAIT;
	if ((in = choose(reg, pins, user, now_ms)) == NULL) {
		/*
		 * Draining, up, nowhere else to go: better the draining instance than no service
		 * (drain stops new pins, it does not turn users away).
		 */
		if (cur != NULL && serves_pinned(cur)) {
			*out = cur;
			return PLACE_KEPT;
		}
		return none_reason(reg);
	}
	*out = in;
	return pinned != NULL ? PLACE_MOVED : PLACE_NEW;
}

enum place_reason
place_verdict(struct registry *reg, const struct pin_table *pins, const char *user,
    int64_t now_ms)
{
	struct instance *in;

	return decide(reg, pins, user, now_ms, &in);
}

/* Logs a refusal the user will be told about; WAIT is routine and only counted. */
static void
log_refusal(struct registry *reg, const char *who, enum place_reason why)
{
	if (why == PLACE_FULL)
		LOG_NOTICE(who, "not placed: pool full (each of the %zu up and active instance%s is "
		    "at capacity)", reg_count_up(reg), reg_count_up(reg) == 1 ? "" : "s");
	else if (why == PLACE_NONE)
		LOG_NOTICE(who, "not placed: no instance is up and active");
}

struct instance *
place_user(struct registry *reg, struct pin_table *pins, const char *user, int64_t now_ms,
    int *moved)
{
	struct place_ctl *ctl = reg_placement(reg);
	const char *pinned = pins_get(pins, user);
	struct instance *cur = pinned != NULL ? reg_find(reg, pinned) : NULL, *in;
	char prefix[PIN_USER_MAX + 8], was[PG_ID_MAX + 1];
	const char *why = NULL;
	enum place_reason reason;
	int r;

	if (moved != NULL)
		*moved = 0;
	reason = decide(reg, pins, user, now_ms, &in);
	snprintf(prefix, sizeof(prefix), "user %s", user);
	if (reason != PLACE_NEW && reason != PLACE_MOVED) {
		ctl->decisions[reason]++;
		if (reason == PLACE_KEPT)
			pins_touch(pins, user, now_ms);
		else
			log_refusal(reg, prefix, reason);
		return in;
	}
	if (reason == PLACE_MOVED) {
		/* pins_set() frees the old id string when the pin moves. */
		snprintf(was, sizeof(was), "%s", pinned);
		/* Not serving and not unknown: draining (idle), in maint, or down. */
		why = cur == NULL ? "removed" : cur->conf.admin == INST_MAINT ? "maint" :
		    serves_pinned(cur) ? "draining, no live session" : inst_health_name(cur->health);
	}
	if ((r = pins_set(pins, user, in->conf.id, now_ms)) != 0) {
		ctl->decisions[PLACE_ERROR]++;
		LOG_ERR(prefix, "cannot pin to %s: %s", in->conf.id, pg_strerror(r));
		return NULL;
	}
	ctl->decisions[reason]++;
	if (reason == PLACE_MOVED) {
		LOG_INFO(prefix, "pinned to %s (was %s: %s)", in->conf.id, was, why);
		if (moved != NULL)
			*moved = 1;
	} else {
		LOG_INFO(prefix, "pinned to %s", in->conf.id);
	}
	return in;
}

struct instance *
place_anonymous(struct registry *reg, const struct pin_table *pins, int64_t now_ms)
{
	struct place_ctl *ctl = reg_placement(reg);
	struct instance *in = choose(reg, pins, "", now_ms);
	enum place_reason reason = in != NULL ? PLACE_ANONYMOUS : none_reason(reg);

	ctl->decisions[reason]++;
	if (in == NULL)
		log_refusal(reg, "browser", reason);
	return in;
}

struct instance *
place_peek(struct registry *reg, struct pin_table *pins, const char *user, int64_t now_ms)
{
	struct instance *in;

	(void)decide(reg, pins, user, now_ms, &in);
	return in;
}

int
place_record(struct registry *reg, struct pin_table *pins, const char *user,
    const struct instance *in, int64_t now_ms, const char *why)
{
	struct place_ctl *ctl = reg_placement(reg);
	char prefix[PIN_USER_MAX + 8];
	int r;

	if (pins_get(pins, user) != NULL)
		return 0;
	snprintf(prefix, sizeof(prefix), "user %s", user);
	if ((r = pins_set(pins, user, in->conf.id, now_ms)) != 0) {
		ctl->decisions[PLACE_ERROR]++;
		LOG_ERR(prefix, "cannot pin to %s: %s", in->conf.id, pg_strerror(r));
		return r;
	}
	ctl->decisions[PLACE_NEW]++;
	LOG_INFO(prefix, "pinned to %s (%s)", in->conf.id, why);
	return 0;
}
