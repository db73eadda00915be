#include "backends/placement.h"
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

static struct instance *
choose(struct registry *reg, const struct pin_table *pins, const char *user)
{
	struct instance *best = NULL;
	size_t best_n = 0;
	uint64_t best_h = 0;

	for (struct instance *in = reg_first(reg); in != NULL; in = in->next) {
		size_t n;
		uint64_t h;

		if (inst_state(in) != INST_S_UP)
			continue;
		n = pins_count(pins, in->conf.id);
		if (n >= in->conf.capacity)
			continue;
		h = tie_hash(user, in->conf.id);
		if (best == NULL || n < best_n || (n == best_n && h < best_h)) {
			best = in;
			best_n = n;
			best_h = h;
		}
	}
	return best;
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
 * The one decision place_user() records and place_peek() only reports: the instance user goes to
 * now, or NULL (none can take her, or her pinned instance's health is not known yet). *keep is
 * 1 when that is her current pin, left as it is.
 */
static struct instance *
decide(struct registry *reg, const struct pin_table *pins, const char *user, int *keep)
{
	const char *pinned = pins_get(pins, user);
	struct instance *cur = pinned != NULL ? reg_find(reg, pinned) : NULL, *in;

	*keep = 1;
	if ((in = pin_holds(reg, pins, user)) != NULL)
		return in;
	/*
	 * Unknown health (not probed yet since start or since an endpoint change) is no reason to move
	 * anybody: after a restart every instance is unknown for a round or two. Wait for a verdict.
	 */
	if (cur != NULL && cur->health == HEALTH_UNKNOWN && cur->conf.admin != INST_MAINT)
		return NULL;
	if ((in = choose(reg, pins, user)) == NULL) {
		/*
		 * Draining, up, nowhere else to go: better the draining instance than no service
		 * (drain stops new pins, it does not turn users away).
		 */
		return cur != NULL && serves_pinned(cur) ? cur : NULL;
	}
	*keep = 0;
	return in;
}

struct instance *
place_user(struct registry *reg, struct pin_table *pins, const char *user, int64_t now_ms,
    int *moved)
{
	const char *pinned = pins_get(pins, user);
	struct instance *cur = pinned != NULL ? reg_find(reg, pinned) : NULL, *in;
	char prefix[PIN_USER_MAX + 8], was[PG_ID_MAX + 1];
	const char *why = NULL;
	int r, keep, had_pin = pinned != NULL;

	if (moved != NULL)
		*moved = 0;
	if ((in = decide(reg, pins, user, &keep)) == NULL)
		return NULL;
	if (keep) {
		pins_touch(pins, user, now_ms);
		return in;
	}
	if (had_pin) {
		/* pins_set() frees the old id string when the pin moves. */
		snprintf(was, sizeof(was), "%s", pinned);
		/* Not serving and not unknown: draining (idle), in maint, or down. */
		why = cur == NULL ? "removed" : cur->conf.admin == INST_MAINT ? "maint" :
		    serves_pinned(cur) ? "draining, no live session" : inst_health_name(cur->health);
	}
	snprintf(prefix, sizeof(prefix), "user %s", user);
	if ((r = pins_set(pins, user, in->conf.id, now_ms)) != 0) {
		LOG_ERR(prefix, "cannot pin to %s: %s", in->conf.id, pg_strerror(r));
		return NULL;
	}
	if (had_pin) {
		LOG_INFO(prefix, "pinned to %s (was %s: %s)", in->conf.id, was, why);
		if (moved != NULL)
			*moved = 1;
	} else {
		LOG_INFO(prefix, "pinned to %s", in->conf.id);
	}
	return in;
}

struct instance *
place_peek(struct registry *reg, struct pin_table *pins, const char *user)
{
	int keep;

	return decide(reg, pins, user, &keep);
}
