#include "proxy/ssh/packet.h"
#include "core/sshwire.h"
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

struct direction {
	struct ssh_cipher *cipher;
	uint32_t seq;
	int wrapped;
	struct ssh_packet_counters count;
};

struct ssh_packet {
	struct direction in, out;
	/*
	 * Input: in_buf.p[in_off..in_buf.len) is undelivered. The payload handed out last lies before
	 * in_off and stays put until the next feed compacts the buffer.
	 */
	struct pg_buf in_buf, out_buf;
	size_t in_off;
	int have_len;		/* the current packet's length is decoded into plen */
	uint32_t plen;
	int failed;		/* 0 or the sticky error */
	char err[128];
	/*
	 * Random bytes for padding, drawn from RAND_bytes a block at a time: one call per packet
	 * cost a getpid() each (OpenSSL's fork check), 15% of the pipe's syscall time in bench/ssh.
	 */
	uint8_t rnd[4096];
	size_t rnd_left;
};

/* Copies n (<= 255) fresh random bytes into out. Returns 0 or PG_ENOMEM. */
static int
padding_bytes(struct ssh_packet *pk, uint8_t *out, size_t n)
{
	if (pk->rnd_left < n) {
		if (RAND_bytes(pk->rnd, (int)sizeof(pk->rnd)) != 1)
			return PG_ENOMEM;
		pk->rnd_left = sizeof(pk->rnd);
	}
	memcpy(out, pk->rnd + sizeof(pk->rnd) - pk->rnd_left, n);
	pk->rnd_left -= n;
	return 0;
}

int
ssh_packet_new(struct ssh_packet **out)
{
	struct ssh_packet *pk = calloc(1, sizeof(*pk));

	if (pk == NULL)
		return PG_ENOMEM;
	pg_buf_init(&pk->in_buf, SSH_PACKET_MAX_INPUT);
	pg_buf_init(&pk->out_buf, SSH_PACKET_MAX_OUTPUT);
	if (ssh_cipher_new("none", NULL, 0, NULL, NULL, NULL, &pk->in.cipher) != 0 ||
	    ssh_cipher_new("none", NULL, 1, NULL, NULL, NULL, &pk->out.cipher) != 0) {
		ssh_packet_free(pk);
		return PG_ENOMEM;
	}
	*out = pk;
	return 0;
}

void
ssh_packet_free(struct ssh_packet *pk)
{
	if (pk == NULL)
		return;
	ssh_cipher_free(pk->in.cipher);
	ssh_cipher_free(pk->out.cipher);
	pg_buf_free(&pk->in_buf);
	pg_buf_free(&pk->out_buf);
	free(pk);
}

static struct direction *
dir_of(struct ssh_packet *pk, enum ssh_dir dir)
{
	return dir == SSH_DIR_IN ? &pk->in : &pk->out;
}

static const struct direction *
cdir_of(const struct ssh_packet *pk, enum ssh_dir dir)
{
	return dir == SSH_DIR_IN ? &pk->in : &pk->out;
}

void
ssh_packet_set_cipher(struct ssh_packet *pk, enum ssh_dir dir, struct ssh_cipher *c)
{
	struct direction *d = dir_of(pk, dir);

	ssh_cipher_free(d->cipher);
	d->cipher = c;
}

static int __attribute__((format(printf, 2, 3)))
fail(struct ssh_packet *pk, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pk->err, sizeof(pk->err), fmt, ap);
	va_end(ap);
	pk->failed = PG_EPROTO;
	return PG_EPROTO;
}

int
ssh_packet_feed(struct ssh_packet *pk, const uint8_t *p, size_t len)
{
	if (pk->failed)
		return pk->failed;
	if (pk->in_off > 0) {
		pg_buf_consume(&pk->in_buf, pk->in_off);
		pk->in_off = 0;
	}
	return pg_buf_append(&pk->in_buf, p, len);
}

static void
advance_seq(struct direction *d, size_t wire_len)
{
	if (++d->seq == 0)
		d->wrapped = 1;
	d->count.packets++;
	d->count.bytes += wire_len;
}

int
ssh_packet_next(struct ssh_packet *pk, struct pg_slice *payload, uint32_t *seq)
{
	struct ssh_cipher *c = pk->in.cipher;
	size_t bs = ssh_cipher_block_size(c), mac_len = ssh_cipher_mac_len(c);
	size_t avail = pk->in_buf.len - pk->in_off, need;
	uint8_t *p, padlen;
	int r;

	if (pk->failed)
		return pk->failed;
	if (avail == 0) {
		/*
		 * All fed bytes are delivered (the last payload handed out is dead by now): give back
		 * what a burst grew, so a connection at rest holds no input buffer.
		 */
		pg_buf_free(&pk->in_buf);
		pk->in_off = 0;
		return 0;
	}
	p = pk->in_buf.p + pk->in_off;
	if (!pk->have_len) {
		if (avail < ssh_cipher_len_bytes(c))
			return 0;
		if ((r = ssh_cipher_get_length(c, pk->in.seq, p, &pk->plen)) != 0)
			return fail(pk, "cannot decrypt packet length: %s", pg_strerror(r));
		/* RFC 4253 6: room for the padding length byte, a message number and 4 bytes of padding. */
		if (pk->plen < 1 + 1 + 4)
			return fail(pk, "packet length %u below minimum", pk->plen);
		if ((size_t)pk->plen > SSH_PACKET_MAX - 4 - mac_len)
			return fail(pk, "packet length %u over %d", pk->plen, SSH_PACKET_MAX);
		if ((4 + (size_t)pk->plen - ssh_cipher_aad_len(c)) % bs != 0)
			return fail(pk, "packet length %u not a multiple of block size %zu", pk->plen, bs);
		pk->have_len = 1;
	}
	need = 4 + (size_t)pk->plen + mac_len;
	if (avail < need)
		return 0;
	if ((r = ssh_cipher_open(c, pk->in.seq, p, 4 + pk->plen)) != 0) {
		if (r == PG_EPROTO)
			return fail(pk, "bad MAC on packet %u (%s)", pk->in.seq, ssh_cipher_name(c));
		return fail(pk, "cannot decrypt packet: %s", pg_strerror(r));
	}
	padlen = p[4];
	if (padlen < 4)
		return fail(pk, "padding length %u below 4", padlen);
	if ((size_t)padlen + 1 >= pk->plen)
		return fail(pk, "padding length %u leaves no payload in packet length %u", padlen,
		    pk->plen);
	payload->p = p + 5;
	payload->len = pk->plen - 1 - padlen;
	*seq = pk->in.seq;
	advance_seq(&pk->in, need);
	pk->in_off += need;
	pk->have_len = 0;
	return 1;
}

int
ssh_packet_send(struct ssh_packet *pk, const uint8_t *payload, size_t len)
{
	struct ssh_cipher *c = pk->out.cipher;
	size_t bs = ssh_cipher_block_size(c), aad = ssh_cipher_aad_len(c);
	size_t mac_len = ssh_cipher_mac_len(c), pad, plen, old = pk->out_buf.len;
	uint8_t hdr[5], padding[255 + SSH_CIPHER_MAX_MAC] = { 0 };
	int r;

	if (len == 0 || len > SSH_PACKET_MAX_PAYLOAD)
		return PG_EINVAL;
	pad = bs - (4 + 1 + len - aad) % bs;
	if (pad < 4)
		pad += bs;
	plen = 1 + len + pad;
	ssh_poke_u32(hdr, (uint32_t)plen);
	hdr[4] = (uint8_t)pad;
	if (padding_bytes(pk, padding, pad) != 0)
		return PG_ENOMEM;
	/* Padding and MAC go in one append: the MAC slot's zeros are overwritten by seal. */
	if ((r = pg_buf_append(&pk->out_buf, hdr, 5)) != 0 ||
	    (r = pg_buf_append(&pk->out_buf, payload, len)) != 0 ||
	    (r = pg_buf_append(&pk->out_buf, padding, pad + mac_len)) != 0)
		goto out;
	if ((r = ssh_cipher_seal(c, pk->out.seq, pk->out_buf.p + old, 4 + plen)) != 0)
		goto out;
	advance_seq(&pk->out, 4 + plen + mac_len);
out:
	if (r != 0)
		pk->out_buf.len = old;
	return r;
}

int
ssh_packet_take_output(struct ssh_packet *pk, struct pg_buf *dst)
{
	int r;

	if (dst->len == 0 && pk->out_buf.cap <= dst->max) {
		/* Hand the buffer over instead of copying it; ours starts again empty. */
		size_t max = dst->max;

		free(dst->p);
		*dst = pk->out_buf;
		dst->max = max;
		pg_buf_init(&pk->out_buf, SSH_PACKET_MAX_OUTPUT);
		return 0;
	}
	if ((r = pg_buf_append(dst, pk->out_buf.p, pk->out_buf.len)) != 0)
		return r;
	pg_buf_free(&pk->out_buf);
	return 0;
}

size_t
ssh_packet_output_len(const struct ssh_packet *pk)
{
	return pk->out_buf.len;
}

size_t
ssh_packet_input_len(const struct ssh_packet *pk)
{
	return pk->in_buf.len - pk->in_off;
}

uint32_t
ssh_packet_seq(const struct ssh_packet *pk, enum ssh_dir dir)
{
	return cdir_of(pk, dir)->seq;
}

int
ssh_packet_seq_wrapped(const struct ssh_packet *pk, enum ssh_dir dir)
{
	return cdir_of(pk, dir)->wrapped;
}

void
ssh_packet_reset_seq(struct ssh_packet *pk, enum ssh_dir dir)
{
	struct direction *d = dir_of(pk, dir);

	d->seq = 0;
	d->wrapped = 0;
}

struct ssh_packet_counters
ssh_packet_counters(const struct ssh_packet *pk, enum ssh_dir dir)
{
	return cdir_of(pk, dir)->count;
}

void
ssh_packet_reset_counters(struct ssh_packet *pk)
{
	memset(&pk->in.count, 0, sizeof(pk->in.count));
	memset(&pk->out.count, 0, sizeof(pk->out.count));
}

const char *
ssh_packet_error(const struct ssh_packet *pk)
{
	return pk->err;
}
