#include "core/sshwire.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

int
ssh_get_bytes(struct pg_slice *s, size_t n, struct pg_slice *v)
{
	if (s->len < n)
		return PG_EPARSE;
	v->p = s->p;
	v->len = n;
	s->p += n;
	s->len -= n;
	return 0;
}

int
ssh_get_u8(struct pg_slice *s, uint8_t *v)
{
	if (s->len < 1)
		return PG_EPARSE;
	*v = s->p[0];
	s->p++;
	s->len--;
	return 0;
}

int
ssh_get_bool(struct pg_slice *s, int *v)
{
	uint8_t b;
	int r;

	if ((r = ssh_get_u8(s, &b)) != 0)
		return r;
	*v = b != 0;
	return 0;
}

int
ssh_get_u32(struct pg_slice *s, uint32_t *v)
{
	if (s->len < 4)
		return PG_EPARSE;
	*v = ssh_peek_u32(s->p);
	s->p += 4;
	s->len -= 4;
	return 0;
}

int
ssh_get_u64(struct pg_slice *s, uint64_t *v)
{
	if (s->len < 8)
		return PG_EPARSE;
	*v = (uint64_t)ssh_peek_u32(s->p) << 32 | ssh_peek_u32(s->p + 4);
	s->p += 8;
	s->len -= 8;
	return 0;
}

int
ssh_get_string(struct pg_slice *s, struct pg_slice *v)
{
	uint32_t n;

	if (s->len < 4)
		return PG_EPARSE;
	n = ssh_peek_u32(s->p);
	if (n > s->len - 4)
		return PG_EPARSE;
	v->p = s->p + 4;
	v->len = n;
	s->p += 4 + (size_t)n;
	s->len -= 4 + (size_t)n;
	return 0;
}

int
ssh_get_namelist(struct pg_slice *s, struct pg_slice *v)
{
	struct pg_slice t = *s, l;
	size_t i;

	if (ssh_get_string(&t, &l) != 0)
		return PG_EPARSE;
	/* RFC 4251 5: names are non-empty, US-ASCII, without commas; no control characters or NUL. */
	for (i = 0; i < l.len; i++) {
		uint8_t c = l.p[i];

		if (c == ',') {
			if (i == 0 || i + 1 == l.len || l.p[i - 1] == ',')
				return PG_EPARSE;
		} else if (c <= 0x20 || c >= 0x7f) {
			return PG_EPARSE;
		}
	}
	*s = t;
	*v = l;
	return 0;
}

int
ssh_get_mpint(struct pg_slice *s, struct pg_slice *v)
{
	struct pg_slice t = *s, m;

	if (ssh_get_string(&t, &m) != 0)
		return PG_EPARSE;
	if (m.len > 0 && (m.p[0] & 0x80))
		return PG_EPARSE;	/* negative: no key exchange or key value is */
	if (m.len > 0 && m.p[0] == 0) {
		/* One zero byte is allowed only to keep a set top bit from reading as a sign. */
		if (m.len == 1 || !(m.p[1] & 0x80))
			return PG_EPARSE;
		m.p++;
		m.len--;
	}
	if (m.len > SSH_MPINT_MAX_BYTES)
		return PG_EPARSE;
	*s = t;
	*v = m;
	return 0;
}

int
ssh_get_mpint_bn(struct pg_slice *s, BIGNUM **v)
{
	struct pg_slice t = *s, m;
	BIGNUM *bn;

	if (ssh_get_mpint(&t, &m) != 0)
		return PG_EPARSE;
	if ((bn = BN_bin2bn(m.p, (int)m.len, NULL)) == NULL)
		return PG_ENOMEM;
	*s = t;
	*v = bn;
	return 0;
}

int
ssh_get_end(struct pg_slice s)
{
	return s.len == 0 ? 0 : PG_EPARSE;
}

int
ssh_namelist_next(struct pg_slice *list, struct pg_slice *name)
{
	const uint8_t *comma;

	if (list->len == 0)
		return 0;
	name->p = list->p;
	if ((comma = memchr(list->p, ',', list->len)) == NULL) {
		name->len = list->len;
		list->p += list->len;
		list->len = 0;
	} else {
		name->len = (size_t)(comma - list->p);
		list->p = comma + 1;
		list->len -= name->len + 1;
	}
	return 1;
}

int
ssh_slice_eq(struct pg_slice s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && (n == 0 || memcmp(s.p, lit, n) == 0);
}

int
ssh_namelist_has(struct pg_slice list, const char *name)
{
	struct pg_slice n;

	while (ssh_namelist_next(&list, &n))
		if (ssh_slice_eq(n, name))
			return 1;
	return 0;
}

int
ssh_put_u8(struct pg_buf *b, uint8_t v)
{
	return pg_buf_append(b, &v, 1);
}

int
ssh_put_bool(struct pg_buf *b, int v)
{
	return ssh_put_u8(b, v ? 1 : 0);
}

int
ssh_put_u32(struct pg_buf *b, uint32_t v)
{
	uint8_t p[4];

	ssh_poke_u32(p, v);
	return pg_buf_append(b, p, 4);
}

int
ssh_put_u64(struct pg_buf *b, uint64_t v)
{
	uint8_t p[8];

	ssh_poke_u32(p, (uint32_t)(v >> 32));
	ssh_poke_u32(p + 4, (uint32_t)v);
	return pg_buf_append(b, p, 8);
}

int
ssh_put_string(struct pg_buf *b, const void *p, size_t len)
{
	size_t old = b->len;
	int r;

	if (len > UINT32_MAX)
		return PG_EINVAL;
	if ((r = ssh_put_u32(b, (uint32_t)len)) != 0 || (r = pg_buf_append(b, p, len)) != 0)
		b->len = old;
	return r;
}

int
ssh_put_cstring(struct pg_buf *b, const char *s)
{
	return ssh_put_string(b, s, strlen(s));
}

int
ssh_put_mpint(struct pg_buf *b, const uint8_t *mag, size_t len)
{
	static const uint8_t zero = 0;
	size_t old = b->len;
	int pad, r;

	while (len > 0 && mag[0] == 0) {
		mag++;
		len--;
	}
	pad = len > 0 && (mag[0] & 0x80);
	if (len + (size_t)pad > UINT32_MAX)
		return PG_EINVAL;
	if ((r = ssh_put_u32(b, (uint32_t)(len + (size_t)pad))) != 0 ||
	    (pad && (r = pg_buf_append(b, &zero, 1)) != 0) ||
	    (r = pg_buf_append(b, mag, len)) != 0)
		b->len = old;
	return r;
}

int
ssh_put_mpint_bn(struct pg_buf *b, const BIGNUM *v)
{
	uint8_t *tmp;
	int n, r;

	if (BN_is_negative(v))
		return PG_EINVAL;
	n = BN_num_bytes(v);
	if ((tmp = malloc(n > 0 ? (size_t)n : 1)) == NULL)
		return PG_ENOMEM;
	BN_bn2bin(v, tmp);
	r = ssh_put_mpint(b, tmp, (size_t)n);
	/* Private values (DH exponents, RSA factors) pass through here. */
	OPENSSL_cleanse(tmp, (size_t)n);
	free(tmp);
	return r;
}

int
ssh_put_namelist(struct pg_buf *b, const char *const *names, size_t n)
{
	size_t old = b->len, i, total = 0;
	int r;

	for (i = 0; i < n; i++) {
		if (names[i][0] == '\0' || strchr(names[i], ',') != NULL)
			return PG_EINVAL;
		total += strlen(names[i]) + (i > 0);
	}
	if (total > UINT32_MAX)
		return PG_EINVAL;
	r = ssh_put_u32(b, (uint32_t)total);
	for (i = 0; r == 0 && i < n; i++) {
		if (i > 0)
			r = pg_buf_append(b, ",", 1);
		if (r == 0)
			r = pg_buf_append_str(b, names[i]);
	}
	if (r != 0)
		b->len = old;
	return r;
}
