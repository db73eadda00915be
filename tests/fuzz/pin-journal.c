/*
 * Fuzz target: the pin store's record parser (backends/pinrec.c), the code that reads
 * state_dir/pins.journal and pins.snapshot at start. The first input byte picks the kind of file
 * (even: journal, odd: snapshot); the rest is the file. Its records are replayed into a real pin
 * table. Besides not crashing:
 *   - the replay's account adds up: `good` within the input, a clean end only at its end, the
 *     records counted equal the table's changes;
 *   - what the table holds afterwards, written out as a snapshot by the encoder, replays cleanly to
 *     the same pins (encoder and parser agree on everything the parser accepts).
 */
#include "backends/pinrec.h"
#include "backends/pins.h"
#include "core/log.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ctx {
	struct pin_table *t;
	size_t puts, dels;
};

static int
to_table_put(void *arg, const char *user, const char *id, int64_t since_ms, int64_t active_ms)
{
	struct ctx *c = arg;

	(void)active_ms;
	c->puts++;
	return pins_set(c->t, user, id, since_ms);
}

static int
to_table_del(void *arg, const char *user)
{
	struct ctx *c = arg;

	c->dels++;
	(void)pins_remove(c->t, user);
	return 0;
}

static int
emit(void *arg, const char *user, const char *id, int64_t since_ms, int64_t active_ms)
{
	return pinrec_put_pin(arg, user, id, since_ms, active_ms);
}

static int
check_put(void *arg, const char *user, const char *id, int64_t since_ms, int64_t active_ms)
{
	const char *have = pins_get(arg, user);

	(void)since_ms;
	(void)active_ms;
	if (have == NULL || strcmp(have, id) != 0)
		__builtin_trap();
	return 0;
}

static int
no_del(void *arg, const char *user)
{
	(void)arg;
	(void)user;
	__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctx c = { NULL, 0, 0 };
	struct pinrec_sink sink = { to_table_put, to_table_del, &c };
	struct pinrec_sink verify;
	struct pinrec_replay r, again;
	struct pinrec end = { .type = PINREC_END };
	struct pg_buf snap;
	enum pinrec_kind kind;

	if (size < 1)
		return 0;
	pg_log_setup(PG_LOG_ERR, PG_LOG_TEXT);
	kind = (data[0] & 1) ? PINREC_SNAPSHOT : PINREC_JOURNAL;
	if ((c.t = pins_new()) == NULL)
		return 0;
	if (pinrec_replay(data + 1, size - 1, kind, &sink, &r) != 0)
		goto out;	/* out of memory in the table */
	if (r.good > r.len || r.len != size - 1 || (r.end == PINREC_CLEAN && r.good != r.len) ||
	    (r.end != PINREC_CLEAN && r.why == NULL) || r.puts != c.puts || r.dels != c.dels ||
	    (r.puts + r.dels > 0 && !r.have_header))
		__builtin_trap();

	/* The table, written as a snapshot, reads back as itself. */
	pg_buf_init(&snap, 1u << 26);
	if (pinrec_put_header(&snap, PINREC_SNAPSHOT, r.generation, r.created_ms) == 0 &&
	    pins_foreach(c.t, emit, &snap) == 0 &&
	    (end.count = pins_size(c.t), pinrec_encode(&snap, &end)) == 0) {
		verify = (struct pinrec_sink){ check_put, no_del, c.t };
		if (pinrec_replay(snap.p, snap.len, PINREC_SNAPSHOT, &verify, &again) != 0 ||
		    again.end != PINREC_CLEAN || !again.complete || again.puts != pins_size(c.t) ||
		    again.generation != r.generation)
			__builtin_trap();
	}
	pg_buf_free(&snap);
out:
	pins_free(c.t);
	return 0;
}
