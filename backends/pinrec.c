#include "backends/pinrec.h"
#include "core/crc32c.h"
#include "core/err.h"
#include "core/sshwire.h"

#include <string.h>

static const char magic[8] = { 'p', 'o', 'o', 'l', 'g', 'a', 't', 'e' };

static int
user_ok(const char *s, size_t len)
{
	return len > 0 && len <= PIN_USER_MAX && memchr(s, '\0', len) == NULL;
}

/* ---- encoding ---- */

/* byte len, byte[len] s (len checked by the caller) */
static int
put_name(struct pg_buf *b, const char *s, size_t len)
{
	int r;

	if ((r = ssh_put_u8(b, (uint8_t)len)) != 0)
		return r;
	return pg_buf_append(b, s, len);
}

int
pinrec_encode(struct pg_buf *out, const struct pinrec *r)
{
	size_t start = out->len, ulen = strnlen(r->user, sizeof(r->user)),
	    ilen = strnlen(r->id, sizeof(r->id));
	int e;

	switch (r->type) {
	case PINREC_HEADER:
		if (r->kind != PINREC_JOURNAL && r->kind != PINREC_SNAPSHOT)
			return PG_EINVAL;
		break;
	case PINREC_PUT:
		if (!user_ok(r->user, ulen) || ilen > PG_ID_MAX || !inst_id_ok(r->id))
			return PG_EINVAL;
		break;
	case PINREC_DEL:
		if (!user_ok(r->user, ulen))
			return PG_EINVAL;
		break;
	case PINREC_END:
		break;
	default:
		return PG_EINVAL;
	}
	/* The head is written as zeros and filled in once the body is there. */
	if ((e = ssh_put_u64(out, 0)) != 0 || (e = ssh_put_u8(out, PINREC_VERSION)) != 0 ||
	    (e = ssh_put_u8(out, (uint8_t)r->type)) != 0)
		goto fail;
	switch (r->type) {
	case PINREC_HEADER:
		if ((e = pg_buf_append(out, magic, sizeof(magic))) != 0 ||
		    (e = ssh_put_u8(out, (uint8_t)r->kind)) != 0 ||
		    (e = ssh_put_u64(out, r->generation)) != 0 ||
		    (e = ssh_put_u64(out, (uint64_t)r->created_ms)) != 0)
			goto fail;
		break;
	case PINREC_PUT:
		if ((e = ssh_put_u64(out, (uint64_t)r->since_ms)) != 0 ||
		    (e = ssh_put_u64(out, (uint64_t)r->active_ms)) != 0 ||
		    (e = put_name(out, r->user, ulen)) != 0 || (e = put_name(out, r->id, ilen)) != 0)
			goto fail;
		break;
	case PINREC_DEL:
		if ((e = put_name(out, r->user, ulen)) != 0)
			goto fail;
		break;
	case PINREC_END:
		if ((e = ssh_put_u64(out, r->count)) != 0)
			goto fail;
		break;
	}
	{
		uint8_t *head = out->p + start, *body = head + PINREC_HEAD_LEN;
		size_t blen = out->len - start - PINREC_HEAD_LEN;
		uint32_t crc = pg_crc32c(0, body, blen);

		for (int i = 0; i < 4; i++) {
			head[i] = (uint8_t)(blen >> (24 - 8 * i));
			head[4 + i] = (uint8_t)(crc >> (24 - 8 * i));
		}
	}
	return 0;
fail:
	out->len = start;	/* a record is never half written */
	return e;
}

int
pinrec_put_header(struct pg_buf *out, enum pinrec_kind kind, uint64_t generation,
    int64_t created_ms)
{
	struct pinrec r = { .type = PINREC_HEADER, .kind = kind, .generation = generation,
		.created_ms = created_ms };

	return pinrec_encode(out, &r);
}

/* Copies a C string into a record field of size cap; PG_EINVAL when it does not fit. */
static int
copy_field(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		return PG_EINVAL;
	memcpy(dst, src, n + 1);
	return 0;
}

int
pinrec_put_pin(struct pg_buf *out, const char *user, const char *id, int64_t since_ms,
    int64_t active_ms)
{
	struct pinrec r = { .type = PINREC_PUT, .since_ms = since_ms, .active_ms = active_ms };

	if (copy_field(r.user, sizeof(r.user), user) != 0 || copy_field(r.id, sizeof(r.id), id) != 0)
		return PG_EINVAL;
	return pinrec_encode(out, &r);
}

int
pinrec_put_del(struct pg_buf *out, const char *user)
{
	struct pinrec r = { .type = PINREC_DEL };

	if (copy_field(r.user, sizeof(r.user), user) != 0)
		return PG_EINVAL;
	return pinrec_encode(out, &r);
}

/* ---- decoding ---- */

/* byte len, byte[len] into dst (cap bytes with the NUL). */
static int
get_name(struct pg_slice *s, char *dst, size_t cap)
{
	uint8_t len;
	struct pg_slice v;

	if (ssh_get_u8(s, &len) != 0 || len == 0 || len >= cap || ssh_get_bytes(s, len, &v) != 0 ||
	    memchr(v.p, '\0', len) != NULL)
		return PG_EPARSE;
	memcpy(dst, v.p, len);
	dst[len] = '\0';
	return 0;
}

/* Decodes a body whose checksum matched. Returns 0, or PG_EPARSE with *why set. */
static int
decode_body(struct pg_slice s, struct pinrec *r, const char **why)
{
	uint8_t version, type, kind;
	uint64_t u1, u2;
	struct pg_slice m;
	static const char *const malformed = "malformed record";

	memset(r, 0, sizeof(*r));
	if (ssh_get_u8(&s, &version) != 0 || ssh_get_u8(&s, &type) != 0) {
		*why = "record too short";
		return PG_EPARSE;
	}
	if (version != PINREC_VERSION) {
		*why = "unsupported record version (written by a newer poolgate?)";
		return PG_EPARSE;
	}
	switch (type) {
	case PINREC_HEADER:
		if (ssh_get_bytes(&s, sizeof(magic), &m) != 0 || memcmp(m.p, magic, sizeof(magic)) != 0 ||
		    ssh_get_u8(&s, &kind) != 0 || (kind != PINREC_JOURNAL && kind != PINREC_SNAPSHOT) ||
		    ssh_get_u64(&s, &u1) != 0 || ssh_get_u64(&s, &u2) != 0)
			goto bad;
		r->kind = (enum pinrec_kind)kind;
		r->generation = u1;
		r->created_ms = (int64_t)u2;
		break;
	case PINREC_PUT:
		if (ssh_get_u64(&s, &u1) != 0 || ssh_get_u64(&s, &u2) != 0 ||
		    get_name(&s, r->user, sizeof(r->user)) != 0 ||
		    get_name(&s, r->id, sizeof(r->id)) != 0 || !inst_id_ok(r->id))
			goto bad;
		r->since_ms = (int64_t)u1;
		r->active_ms = (int64_t)u2;
		break;
	case PINREC_DEL:
		if (get_name(&s, r->user, sizeof(r->user)) != 0)
			goto bad;
		break;
	case PINREC_END:
		if (ssh_get_u64(&s, &r->count) != 0)
			goto bad;
		break;
	default:
		*why = "unknown record type";
		return PG_EPARSE;
	}
	if (ssh_get_end(s) != 0)
		goto bad;
	r->type = (enum pinrec_type)type;
	return 0;
bad:
	*why = malformed;
	return PG_EPARSE;
}

static int
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != 0)
			return 0;
	}
	return 1;
}

/*
 * The record at data[off..len): returns 0 with *r and *used, or sets out->end (TORN or CORRUPT) and
 * out->why and returns -1.
 */
static int
next_record(const uint8_t *data, size_t len, size_t off, struct pinrec *r, size_t *used,
    struct pinrec_replay *out)
{
	size_t left = len - off;
	uint32_t blen, crc;

	if (left < PINREC_HEAD_LEN) {
		out->end = PINREC_TORN;
		out->why = "incomplete record head";
		return -1;
	}
	blen = ssh_peek_u32(data + off);
	crc = ssh_peek_u32(data + off + 4);
	if (blen == 0 || blen > PINREC_BODY_MAX) {
		int zeros = all_zero(data + off, left);

		out->end = zeros ? PINREC_TORN : PINREC_CORRUPT;
		out->why = zeros ? "zero bytes where a record should be" : "impossible record length";
		return -1;
	}
	if (left - PINREC_HEAD_LEN < blen) {
		out->end = PINREC_TORN;
		out->why = "incomplete record";
		return -1;
	}
	if (pg_crc32c(0, data + off + PINREC_HEAD_LEN, blen) != crc) {
		/* The last record is the one a crash can tear; anywhere else it is damage. */
		out->end = left == PINREC_HEAD_LEN + blen ? PINREC_TORN : PINREC_CORRUPT;
		out->why = "checksum mismatch";
		return -1;
	}
	if (decode_body((struct pg_slice){ data + off + PINREC_HEAD_LEN, blen }, r, &out->why) != 0) {
		out->end = PINREC_CORRUPT;
		return -1;
	}
	*used = PINREC_HEAD_LEN + blen;
	return 0;
}

int
pinrec_replay(const uint8_t *data, size_t len, enum pinrec_kind kind,
    const struct pinrec_sink *sink, struct pinrec_replay *out)
{
	struct pinrec r;
	size_t off = 0, used = 0;
	int e = 0;

	memset(out, 0, sizeof(*out));
	out->len = len;
	out->end = PINREC_CLEAN;
	while (off < len) {
		if (next_record(data, len, off, &r, &used, out) != 0)
			break;
		if (!out->have_header) {
			if (r.type != PINREC_HEADER || r.kind != kind) {
				out->end = PINREC_CORRUPT;
				out->why = r.type != PINREC_HEADER ? "no header record" :
				    kind == PINREC_JOURNAL ? "not a journal" : "not a snapshot";
				break;
			}
			out->have_header = 1;
			out->generation = r.generation;
			out->created_ms = r.created_ms;
		} else if (out->complete || r.type == PINREC_HEADER ||
		    (kind == PINREC_JOURNAL && r.type == PINREC_END) ||
		    (kind == PINREC_SNAPSHOT && r.type == PINREC_DEL)) {
			out->end = PINREC_CORRUPT;
			out->why = out->complete ? "records after the end of the snapshot" :
			    "record out of place";
			break;
		} else if (r.type == PINREC_END) {
			if (r.count != out->puts) {
				out->end = PINREC_CORRUPT;
				out->why = "snapshot count does not match its records";
				break;
			}
			out->complete = 1;
		} else if ((e = r.type == PINREC_PUT ?
		    sink->put(sink->arg, r.user, r.id, r.since_ms, r.active_ms) :
		    sink->del(sink->arg, r.user)) != 0) {
			out->end = PINREC_CORRUPT;
			out->why = "not applied";
			break;
		} else if (r.type == PINREC_PUT) {
			out->puts++;
		} else {
			out->dels++;
		}
		off += used;
		out->good = off;
	}
	if (out->end == PINREC_CLEAN && kind == PINREC_SNAPSHOT && out->have_header &&
	    !out->complete) {
		/* Whole records, but no END: a snapshot is renamed into place only once complete. */
		out->end = PINREC_CORRUPT;
		out->why = "snapshot without its end record";
	}
	return e;
}

int
pinrec_header(const uint8_t *data, size_t len, enum pinrec_kind kind, uint64_t *generation)
{
	struct pinrec r;
	struct pinrec_replay scratch;
	size_t used;

	memset(&scratch, 0, sizeof(scratch));
	if (len == 0 || next_record(data, len, 0, &r, &used, &scratch) != 0 ||
	    r.type != PINREC_HEADER || r.kind != kind)
		return PG_EPARSE;
	*generation = r.generation;
	return 0;
}
