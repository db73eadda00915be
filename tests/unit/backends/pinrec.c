/*
 * backends/pinrec.c: the pin store's records. Round trips; every way a file can end (clean, torn at
 * each byte of its last record, zero-filled, damaged in the middle); records that checksum but do
 * not make sense; snapshots without or with a wrong END.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/pinrec.h"
#include "core/crc32c.h"
#include "core/err.h"

/* A sink that logs what it was given as text lines ("put alice demo-1 1 2", "del bob"). */
struct log_sink {
	char text[8192];
	int fail_at;	/* the record number (from 1) whose callback fails; 0: none */
	int n;
};

static int
log_put(void *arg, const char *user, const char *id, int64_t since, int64_t active)
{
	struct log_sink *l = arg;
	size_t len = strlen(l->text);

	if (++l->n == l->fail_at)
		return PG_ENOMEM;
	snprintf(l->text + len, sizeof(l->text) - len, "put %s %s %lld %lld\n", user, id,
	    (long long)since, (long long)active);
	return 0;
}

static int
log_del(void *arg, const char *user)
{
	struct log_sink *l = arg;
	size_t len = strlen(l->text);

	if (++l->n == l->fail_at)
		return PG_ENOMEM;
	snprintf(l->text + len, sizeof(l->text) - len, "del %s\n", user);
	return 0;
}

static int
replay(const struct pg_buf *b, size_t len, enum pinrec_kind kind, struct log_sink *l,
    struct pinrec_replay *out)
{
	struct pinrec_sink sink = { log_put, log_del, l };

	memset(l->text, 0, sizeof(l->text));
	l->n = 0;
	return pinrec_replay(b->p, len, kind, &sink, out);
}

/* A journal: header, three changes. Returns the offsets where each record starts in starts[]. */
static void
journal(struct pg_buf *b, size_t starts[5])
{
	pg_buf_init(b, 1 << 20);
	starts[0] = b->len;
	assert_int_equal(pinrec_put_header(b, PINREC_JOURNAL, 7, 1000), 0);
	starts[1] = b->len;
	assert_int_equal(pinrec_put_pin(b, "alice", "demo-1", 1, 2), 0);
	starts[2] = b->len;
	assert_int_equal(pinrec_put_pin(b, "bob", "demo-2", 3, 4), 0);
	starts[3] = b->len;
	assert_int_equal(pinrec_put_del(b, "alice"), 0);
	starts[4] = b->len;
}

static void
test_round_trip(void **state)
{
	struct pg_buf b;
	size_t at[5];
	struct log_sink l = { .fail_at = 0 };
	struct pinrec_replay r;
	uint64_t gen = 0;

	journal(&b, at);
	assert_int_equal(replay(&b, b.len, PINREC_JOURNAL, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CLEAN);
	assert_null(r.why);
	assert_int_equal(r.good, b.len);
	assert_true(r.have_header);
	assert_int_equal(r.generation, 7);
	assert_int_equal(r.created_ms, 1000);
	assert_int_equal(r.puts, 2);
	assert_int_equal(r.dels, 1);
	assert_string_equal(l.text, "put alice demo-1 1 2\nput bob demo-2 3 4\ndel alice\n");
	assert_int_equal(pinrec_header(b.p, b.len, PINREC_JOURNAL, &gen), 0);
	assert_int_equal(gen, 7);
	assert_int_equal(pinrec_header(b.p, b.len, PINREC_SNAPSHOT, &gen), PG_EPARSE);
	/* A journal is not read as a snapshot. */
	assert_int_equal(replay(&b, b.len, PINREC_SNAPSHOT, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CORRUPT);
	assert_int_equal(r.good, 0);
	assert_string_equal(r.why, "not a snapshot");
	/* Empty data: clean, nothing in it. */
	assert_int_equal(replay(&b, 0, PINREC_JOURNAL, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CLEAN);
	assert_false(r.have_header);
	pg_buf_free(&b);
}

static void
test_limits_on_encode(void **state)
{
	struct pg_buf b;
	char user[PIN_USER_MAX + 2];
	struct log_sink l = { .fail_at = 0 };
	struct pinrec_replay r;

	pg_buf_init(&b, 1 << 20);
	memset(user, 'u', sizeof(user));
	user[PIN_USER_MAX] = '\0';
	assert_int_equal(pinrec_put_header(&b, PINREC_SNAPSHOT, 1, 0), 0);
	/* The largest record fits the body limit. */
	assert_int_equal(pinrec_put_pin(&b, user,
	    "i123456789012345678901234567890123456789012345678901234567890ab", -5, INT64_MAX), 0);
	user[PIN_USER_MAX] = 'u';
	user[PIN_USER_MAX + 1] = '\0';
	size_t len = b.len;
	assert_int_equal(pinrec_put_pin(&b, user, "demo-1", 0, 0), PG_EINVAL);
	assert_int_equal(pinrec_put_pin(&b, "", "demo-1", 0, 0), PG_EINVAL);
	assert_int_equal(pinrec_put_pin(&b, "alice", "", 0, 0), PG_EINVAL);
	assert_int_equal(pinrec_put_pin(&b, "alice", "bad id", 0, 0), PG_EINVAL);
	assert_int_equal(pinrec_put_del(&b, ""), PG_EINVAL);
	assert_int_equal(b.len, len);
	struct pinrec end = { .type = PINREC_END, .count = 1 };
	assert_int_equal(pinrec_encode(&b, &end), 0);
	assert_int_equal(replay(&b, b.len, PINREC_SNAPSHOT, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CLEAN);
	assert_true(r.complete);
	assert_non_null(strstr(l.text, " -5 9223372036854775807\n"));
	/* A full buffer refuses a record whole. */
	struct pg_buf small;
	pg_buf_init(&small, 20);
	assert_int_equal(pinrec_put_pin(&small, "alice", "demo-1", 0, 0), PG_ETOOBIG);
	assert_int_equal(small.len, 0);
	pg_buf_free(&small);
	pg_buf_free(&b);
}

/* Cut anywhere inside the last record: that record alone is dropped, as a torn tail. */
static void
test_torn_at_every_byte(void **state)
{
	struct pg_buf b;
	size_t at[5];
	struct log_sink l = { .fail_at = 0 };
	struct pinrec_replay r;

	journal(&b, at);
	for (size_t cut = at[3] + 1; cut < at[4]; cut++) {
		assert_int_equal(replay(&b, cut, PINREC_JOURNAL, &l, &r), 0);
		assert_int_equal(r.end, PINREC_TORN);
		assert_int_equal(r.good, at[3]);
		assert_int_equal(r.puts, 2);
		assert_int_equal(r.dels, 0);
		assert_string_equal(l.text, "put alice demo-1 1 2\nput bob demo-2 3 4\n");
	}
	/* A cut at a record boundary is a clean end. */
	assert_int_equal(replay(&b, at[3], PINREC_JOURNAL, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CLEAN);
	/* A torn header: nothing at all. */
	assert_int_equal(replay(&b, 5, PINREC_JOURNAL, &l, &r), 0);
	assert_int_equal(r.end, PINREC_TORN);
	assert_false(r.have_header);
	pg_buf_free(&b);
}

/* The last record's bytes garbled (its length intact): torn. The same record in the middle: corrupt. */
static void
test_checksum_end_vs_middle(void **state)
{
	struct pg_buf b;
	size_t at[5];
	struct log_sink l = { .fail_at = 0 };
	struct pinrec_replay r;

	journal(&b, at);
	b.p[at[4] - 1] ^= 0x40;
	assert_int_equal(replay(&b, b.len, PINREC_JOURNAL, &l, &r), 0);
	assert_int_equal(r.end, PINREC_TORN);
	assert_string_equal(r.why, "checksum mismatch");
	assert_int_equal(r.good, at[3]);
	b.p[at[4] - 1] ^= 0x40;

	b.p[at[2] + PINREC_HEAD_LEN + 3] ^= 0x01;
	assert_int_equal(replay(&b, b.len, PINREC_JOURNAL, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CORRUPT);
	assert_string_equal(r.why, "checksum mismatch");
	assert_int_equal(r.good, at[2]);
	assert_string_equal(l.text, "put alice demo-1 1 2\n");
	pg_buf_free(&b);
}

/* A file extended with zeros (a crash before its data reached the disk) is a torn tail. */
static void
test_zero_tail(void **state)
{
	struct pg_buf b;
	size_t at[5];
	struct log_sink l = { .fail_at = 0 };
	struct pinrec_replay r;
	uint8_t zeros[300] = { 0 };

	journal(&b, at);
	assert_int_equal(pg_buf_append(&b, zeros, sizeof(zeros)), 0);
	assert_int_equal(replay(&b, b.len, PINREC_JOURNAL, &l, &r), 0);
	assert_int_equal(r.end, PINREC_TORN);
	assert_int_equal(r.good, at[4]);
	assert_int_equal(r.puts + r.dels, 3);
	/* Zeros, then something: damage. */
	b.p[b.len - 1] = 1;
	assert_int_equal(replay(&b, b.len, PINREC_JOURNAL, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CORRUPT);
	assert_string_equal(r.why, "impossible record length");
	pg_buf_free(&b);
}

/* Appends a record with a valid checksum around an arbitrary body. */
static void
raw_record(struct pg_buf *b, const uint8_t *body, size_t len)
{
	uint8_t head[8];
	uint32_t crc = pg_crc32c(0, body, len);

	for (int i = 0; i < 4; i++) {
		head[i] = (uint8_t)(len >> (24 - 8 * i));
		head[4 + i] = (uint8_t)(crc >> (24 - 8 * i));
	}
	assert_int_equal(pg_buf_append(b, head, 8), 0);
	assert_int_equal(pg_buf_append(b, body, len), 0);
}

static void
expect_corrupt(const uint8_t *body, size_t len, const char *why)
{
	struct pg_buf b;
	struct log_sink l = { .fail_at = 0 };
	struct pinrec_replay r;
	size_t good;

	pg_buf_init(&b, 1 << 20);
	assert_int_equal(pinrec_put_header(&b, PINREC_JOURNAL, 1, 0), 0);
	good = b.len;
	raw_record(&b, body, len);
	assert_int_equal(pinrec_put_del(&b, "after"), 0);
	assert_int_equal(replay(&b, b.len, PINREC_JOURNAL, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CORRUPT);
	assert_int_equal(r.good, good);
	assert_string_equal(r.why, why);
	assert_string_equal(l.text, "");
	pg_buf_free(&b);
}

static void
test_checksummed_nonsense(void **state)
{
	static const uint8_t v2[] = { 2, PINREC_DEL, 1, 'a' };
	static const uint8_t type9[] = { 1, 9, 1, 'a' };
	static const uint8_t short_del[] = { 1, PINREC_DEL, 5, 'a' };
	static const uint8_t trailing[] = { 1, PINREC_DEL, 1, 'a', 0 };
	static const uint8_t empty_user[] = { 1, PINREC_DEL, 0 };
	static const uint8_t nul_user[] = { 1, PINREC_DEL, 2, 'a', 0 };
	static const uint8_t bad_id[] = { 1, PINREC_PUT, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
		0, 2, 1, 'a', 2, 'a', '/' };
	static const uint8_t one_byte[] = { 1 };
	static const uint8_t end_in_journal[] = { 1, PINREC_END, 0, 0, 0, 0, 0, 0, 0, 0 };

	expect_corrupt(v2, sizeof(v2), "unsupported record version (written by a newer poolgate?)");
	expect_corrupt(type9, sizeof(type9), "unknown record type");
	expect_corrupt(short_del, sizeof(short_del), "malformed record");
	expect_corrupt(trailing, sizeof(trailing), "malformed record");
	expect_corrupt(empty_user, sizeof(empty_user), "malformed record");
	expect_corrupt(nul_user, sizeof(nul_user), "malformed record");
	expect_corrupt(bad_id, sizeof(bad_id), "malformed record");
	expect_corrupt(one_byte, sizeof(one_byte), "record too short");
	expect_corrupt(end_in_journal, sizeof(end_in_journal), "record out of place");
}

static void
test_header_rules(void **state)
{
	struct pg_buf b;
	struct log_sink l = { .fail_at = 0 };
	struct pinrec_replay r;

	/* No header first. */
	pg_buf_init(&b, 1 << 20);
	assert_int_equal(pinrec_put_del(&b, "alice"), 0);
	assert_int_equal(replay(&b, b.len, PINREC_JOURNAL, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CORRUPT);
	assert_string_equal(r.why, "no header record");
	/* A second header. */
	pg_buf_reset(&b);
	assert_int_equal(pinrec_put_header(&b, PINREC_JOURNAL, 1, 0), 0);
	assert_int_equal(pinrec_put_header(&b, PINREC_JOURNAL, 2, 0), 0);
	assert_int_equal(replay(&b, b.len, PINREC_JOURNAL, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CORRUPT);
	assert_string_equal(r.why, "record out of place");
	/* A bad magic. */
	static const uint8_t magic[] = { 1, PINREC_HEADER, 'p', 'o', 'o', 'l', 'g', 'a', 't', 'E',
		1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 };
	pg_buf_reset(&b);
	raw_record(&b, magic, sizeof(magic));
	assert_int_equal(replay(&b, b.len, PINREC_JOURNAL, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CORRUPT);
	assert_false(r.have_header);
	pg_buf_free(&b);
}

static void
test_snapshot_end(void **state)
{
	struct pg_buf b;
	struct log_sink l = { .fail_at = 0 };
	struct pinrec_replay r;
	struct pinrec end = { .type = PINREC_END, .count = 2 };
	size_t before_end;

	pg_buf_init(&b, 1 << 20);
	assert_int_equal(pinrec_put_header(&b, PINREC_SNAPSHOT, 3, 5), 0);
	assert_int_equal(pinrec_put_pin(&b, "alice", "demo-1", 1, 2), 0);
	assert_int_equal(pinrec_put_pin(&b, "bob", "demo-2", 1, 2), 0);
	before_end = b.len;
	/* Whole records but no END: not a whole snapshot. */
	assert_int_equal(replay(&b, b.len, PINREC_SNAPSHOT, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CORRUPT);
	assert_string_equal(r.why, "snapshot without its end record");
	assert_int_equal(r.puts, 2);
	assert_int_equal(pinrec_encode(&b, &end), 0);
	assert_int_equal(replay(&b, b.len, PINREC_SNAPSHOT, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CLEAN);
	assert_true(r.complete);
	/* Anything after END. */
	assert_int_equal(pinrec_put_pin(&b, "carol", "demo-2", 1, 2), 0);
	assert_int_equal(replay(&b, b.len, PINREC_SNAPSHOT, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CORRUPT);
	assert_string_equal(r.why, "records after the end of the snapshot");
	/* A wrong count; a DEL in a snapshot. */
	b.len = before_end;
	end.count = 3;
	assert_int_equal(pinrec_encode(&b, &end), 0);
	assert_int_equal(replay(&b, b.len, PINREC_SNAPSHOT, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CORRUPT);
	assert_string_equal(r.why, "snapshot count does not match its records");
	b.len = before_end;
	assert_int_equal(pinrec_put_del(&b, "alice"), 0);
	assert_int_equal(replay(&b, b.len, PINREC_SNAPSHOT, &l, &r), 0);
	assert_int_equal(r.end, PINREC_CORRUPT);
	assert_string_equal(r.why, "record out of place");
	pg_buf_free(&b);
}

static void
test_sink_failure_stops(void **state)
{
	struct pg_buf b;
	size_t at[5];
	struct log_sink l = { .fail_at = 2 };
	struct pinrec_replay r;
	struct pinrec_sink sink = { log_put, log_del, &l };

	journal(&b, at);
	assert_int_equal(pinrec_replay(b.p, b.len, PINREC_JOURNAL, &sink, &r), PG_ENOMEM);
	assert_int_equal(r.end, PINREC_CORRUPT);
	assert_string_equal(r.why, "not applied");
	assert_int_equal(r.good, at[2]);
	pg_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_limits_on_encode),
		cmocka_unit_test(test_torn_at_every_byte),
		cmocka_unit_test(test_checksum_end_vs_middle),
		cmocka_unit_test(test_zero_tail),
		cmocka_unit_test(test_checksummed_nonsense),
		cmocka_unit_test(test_header_rules),
		cmocka_unit_test(test_snapshot_end),
		cmocka_unit_test(test_sink_failure_stops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
