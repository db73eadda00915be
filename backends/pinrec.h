/*
 * Records of the pin store's files (backends/pinstore_file.c): encoding, and replay of a whole file
 * held in memory. Pure: no I/O, no logging, so the parser can be fuzzed (tests/fuzz/pin-journal.c)
 * and unit-tested byte by byte. docs/pins.md is the operator's description of the format.
 *
 * A file is a sequence of records. Each record (integers big-endian, as in SSH):
 *
 *	uint32	length of the body (1..PINREC_BODY_MAX)
 *	uint32	CRC-32C of the body
 *	body:
 *	  byte	version (PINREC_VERSION)
 *	  byte	type
 *	  HEADER: byte[8] "poolgate", byte kind (1 journal, 2 snapshot), uint64 generation,
 *	          int64 created_ms
 *	  PUT:    int64 since_ms, int64 active_ms, byte ulen, byte[ulen] user, byte idlen, byte[idlen] id
 *	  DEL:    byte ulen, byte[ulen] user
 *	  END:    uint64 number of PUT records in the snapshot
 *
 * A file starts with one HEADER. A journal then holds PUT and DEL records in the order the changes
 * happened (PUT is an upsert: pin, move or new activity time); a snapshot holds one PUT per pin and
 * ends with END, so a snapshot cut short is told from a whole one. user is 1..255 bytes without
 * NUL; id is an instance id (1..63 of [A-Za-z0-9._-]).
 *
 * How a replay ends (struct pinrec_replay.end):
 *   CLEAN    every byte was a valid record.
 *   TORN     the last record is incomplete: fewer bytes than a record head, fewer than its length
 *            says, a checksum that fails on the record that reaches the end of the data, or a
 *            length field of zero or past the limit followed only by zero bytes (a file extended
 *            by a crash before its data reached the disk). Only the tail is lost: an append that
 *            never completed was never acknowledged as durable.
 *   CORRUPT  a record that fails with more data after it, or a record with a valid checksum that
 *            does not make sense (unknown version or type, bad lengths or names, records out of
 *            place), or a snapshot whose records are whole but that lacks its END. Replay stops
 *            there: what follows cannot be trusted to be in order.
 * In both TORN and CORRUPT, the records before `good` have been applied.
 */
#ifndef PG_BACKENDS_PINREC_H
#define PG_BACKENDS_PINREC_H

#include <stddef.h>
#include <stdint.h>

#include "backends/pins.h"
#include "core/buf.h"

#define PINREC_VERSION 1
#define PINREC_HEAD_LEN 8	/* length + checksum */
#define PINREC_BODY_MAX 512	/* the largest body: a PUT with a 255-byte user is 2+16+1+255+1+63 */

enum pinrec_type { PINREC_HEADER = 1, PINREC_PUT = 2, PINREC_DEL = 3, PINREC_END = 4 };
enum pinrec_kind { PINREC_JOURNAL = 1, PINREC_SNAPSHOT = 2 };

struct pinrec {
	enum pinrec_type type;
	enum pinrec_kind kind;		/* HEADER */
	uint64_t generation;		/* HEADER */
	int64_t created_ms;		/* HEADER */
	uint64_t count;			/* END */
	int64_t since_ms, active_ms;	/* PUT */
	char user[PIN_USER_MAX + 1];	/* PUT, DEL */
	char id[PG_ID_MAX + 1];		/* PUT */
};

/*
 * Appends r, framed and checksummed, to out. Returns 0, PG_EINVAL (a field out of range: empty or
 * over-long user or id, an id with other characters, a user with NUL) or the buffer's PG_ETOOBIG /
 * PG_ENOMEM; on failure out is unchanged.
 */
int pinrec_encode(struct pg_buf *out, const struct pinrec *r);

/* Shorthands for the records the store writes. Same returns. */
int pinrec_put_header(struct pg_buf *out, enum pinrec_kind kind, uint64_t generation,
    int64_t created_ms);
int pinrec_put_pin(struct pg_buf *out, const char *user, const char *id, int64_t since_ms,
    int64_t active_ms);
int pinrec_put_del(struct pg_buf *out, const char *user);

enum pinrec_end { PINREC_CLEAN, PINREC_TORN, PINREC_CORRUPT };

/* Where replayed records go. put/del return 0 to go on; anything else stops the replay. */
struct pinrec_sink {
	int (*put)(void *arg, const char *user, const char *id, int64_t since_ms, int64_t active_ms);
	int (*del)(void *arg, const char *user);
	void *arg;
};

struct pinrec_replay {
	enum pinrec_end end;
	const char *why;	/* static text: what was wrong at `good` (NULL when CLEAN) */
	size_t good;		/* bytes of records applied, from the start */
	size_t len;		/* bytes given */
	int have_header;
	uint64_t generation;	/* from the header */
	int64_t created_ms;	/* from the header */
	size_t puts, dels;	/* records applied */
	int complete;		/* snapshot: END seen with the right count */
};

/*
 * Replays data[0..len), a whole file of the given kind, into sink, and describes how it ended in
 * *out (always filled). Returns 0, or the first non-zero value a sink callback returned (then
 * replay stopped before that record and out->end is CORRUPT with why "not applied").
 */
int pinrec_replay(const uint8_t *data, size_t len, enum pinrec_kind kind,
    const struct pinrec_sink *sink, struct pinrec_replay *out);

/*
 * Reads only the header record at the start of data. Returns 0 and sets *generation, or PG_EPARSE
 * when data does not start with a valid header of that kind.
 */
int pinrec_header(const uint8_t *data, size_t len, enum pinrec_kind kind, uint64_t *generation);

#endif
