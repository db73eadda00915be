#include "health/loadparse.h"
#include "core/err.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_LOAD 1e6			/* a load average above this is not a real reading */
#define MAX_NCPU 65536
#define MAX_MEM_KB (UINT64_C(1) << 50)	/* an exbibyte */
#define MAX_USERS 1000000

enum section { SEC_NONE, SEC_LOADAVG, SEC_NCPU, SEC_MEMINFO, SEC_GPU, SEC_USERS, SEC_OTHER };

static const char *const section_names[] = { "", "loadavg", "ncpu", "meminfo", "gpu", "users" };

/* meminfo keys we read, in the order of the values array below. */
enum { MI_TOTAL, MI_AVAILABLE, MI_FREE, MI_BUFFERS, MI_CACHED, MI_N };
static const char *const meminfo_keys[MI_N] = { "MemTotal", "MemAvailable", "MemFree", "Buffers",
	"Cached" };

struct pstate {
	enum section sec;
	int seen[SEC_OTHER];		/* sections met */
	int have_loadavg, have_ncpu;
	int have_mem[MI_N];
	uint64_t mem[MI_N];
	struct load_figures f;
	uint32_t gpus_util, gpus_mem;	/* GPUs whose utilisation / memory was readable */
	double util_sum, mem_sum;
	uint32_t gpu_lines;
	char *why;
	size_t whylen;
};

static int __attribute__((format(printf, 2, 3)))
fail(struct pstate *st, const char *fmt, ...)
{
	va_list ap;

	if (st->whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(st->why, st->whylen, fmt, ap);
		va_end(ap);
	}
	return PG_EPARSE;
}

/* Splits off the next line of *rest (without its LF and a CR before it). 0 when none is left. */
static int
next_line(struct pg_slice *rest, struct pg_slice *line)
{
	const uint8_t *nl;
	size_t n;

	if (rest->len == 0)
		return 0;
	nl = memchr(rest->p, '\n', rest->len);
	n = nl != NULL ? (size_t)(nl - rest->p) : rest->len;
	*line = (struct pg_slice){ rest->p, n };
	rest->p += nl != NULL ? n + 1 : n;
	rest->len -= nl != NULL ? n + 1 : n;
	if (line->len > 0 && line->p[line->len - 1] == '\r')
		line->len--;
	return 1;
}

static void
skip_blanks(struct pg_slice *s)
{
	while (s->len > 0 && (s->p[0] == ' ' || s->p[0] == '\t')) {
		s->p++;
		s->len--;
	}
}

static void
trim(struct pg_slice *s)
{
	skip_blanks(s);
	while (s->len > 0 && (s->p[s->len - 1] == ' ' || s->p[s->len - 1] == '\t'))
		s->len--;
}

static int
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* An unsigned integer of at most 18 digits at the front of *s, at most max. 0 or -1. */
static int
get_uint(struct pg_slice *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t n = 0;

	while (n < s->len && is_digit(s->p[n])) {
		if (n == 18)
			return -1;
		v = v * 10 + (uint64_t)(s->p[n] - '0');
		n++;
	}
	if (n == 0 || v > max)
		return -1;
	s->p += n;
	s->len -= n;
	*out = v;
	return 0;
}

/* A decimal "12" or "12.345" at the front of *s (at most 9 fraction digits), at most max. */
static int
get_decimal(struct pg_slice *s, double max, double *out)
{
	uint64_t ip, fp = 0;
	double scale = 1;
	size_t n = 0;

	if (get_uint(s, UINT64_C(999999999999999), &ip) != 0)
		return -1;
	if (s->len > 0 && s->p[0] == '.') {
		while (n + 1 < s->len && is_digit(s->p[n + 1])) {
			if (n == 9)
				return -1;
			fp = fp * 10 + (uint64_t)(s->p[n + 1] - '0');
			scale *= 10;
			n++;
		}
		if (n == 0)
			return -1;
		s->p += n + 1;
		s->len -= n + 1;
	}
	*out = (double)ip + (double)fp / scale;
	return *out <= max ? 0 : -1;
}

/* The whole (trimmed) line is one integer in min..max. */
static int
line_uint(struct pg_slice line, uint64_t min, uint64_t max, uint64_t *out)
{
	trim(&line);
	if (get_uint(&line, max, out) != 0 || line.len != 0 || *out < min)
		return -1;
	return 0;
}

static enum section
section_of(struct pg_slice name)
{
	trim(&name);
	for (int i = SEC_LOADAVG; i < SEC_OTHER; i++)
		if (name.len == strlen(section_names[i]) &&
		    memcmp(name.p, section_names[i], name.len) == 0)
			return (enum section)i;
	return SEC_OTHER;
}

/* "0.52 0.58 0.59 1/389 12345": the three load averages. */
static int
loadavg_line(struct pstate *st, struct pg_slice line)
{
	double v[3];

	if (st->have_loadavg)
		return fail(st, "loadavg: more than one line");
	for (int i = 0; i < 3; i++) {
		skip_blanks(&line);
		if (get_decimal(&line, MAX_LOAD, &v[i]) != 0 ||
		    (line.len > 0 && line.p[0] != ' ' && line.p[0] != '\t'))
			return fail(st, "loadavg: expected three load averages");
	}
	st->f.load1 = v[0];
	st->f.load5 = v[1];
	st->f.load15 = v[2];
	st->have_loadavg = 1;
	return 0;
}

/* "MemTotal:       16318412 kB". Keys we do not read are skipped unparsed. */
static int
meminfo_line(struct pstate *st, struct pg_slice line)
{
	const uint8_t *colon = memchr(line.p, ':', line.len);
	size_t klen;
	uint64_t v;

	if (colon == NULL)
		return 0;
	klen = (size_t)(colon - line.p);
	for (int i = 0; i < MI_N; i++) {
		if (klen != strlen(meminfo_keys[i]) || memcmp(line.p, meminfo_keys[i], klen) != 0)
			continue;
		if (st->have_mem[i])
			return fail(st, "meminfo: %s given twice", meminfo_keys[i]);
		line.p += klen + 1;
		line.len -= klen + 1;
		trim(&line);
		if (get_uint(&line, MAX_MEM_KB, &v) != 0)
			return fail(st, "meminfo: %s: expected a number of kB", meminfo_keys[i]);
		skip_blanks(&line);
		if (line.len != 0 && !(line.len == 2 && memcmp(line.p, "kB", 2) == 0))
			return fail(st, "meminfo: %s: expected a number of kB", meminfo_keys[i]);
		st->mem[i] = v;
		st->have_mem[i] = 1;
		return 0;
	}
	return 0;
}

/* One nvidia-smi field: a number up to max, or "[N/A]"-style (unreadable: *known = 0). */
static int
gpu_field(struct pg_slice field, double max, double *out, int *known)
{
	trim(&field);
	*known = 0;
	if (field.len >= 2 && field.p[0] == '[' && field.p[field.len - 1] == ']')
		return 0;
	if (get_decimal(&field, max, out) != 0 || field.len != 0)
		return -1;
	*known = 1;
	return 0;
}

/*
 * "35, 1024, 16384": utilisation %, memory used and total (MiB). Lines of another shape are
 * nvidia-smi talking ("No devices were found") and are skipped.
 */
static int
gpu_line(struct pstate *st, struct pg_slice line)
{
	struct pg_slice field[3];
	double util = 0, used = 0, total = 0;
	int ku, kused, ktotal;

	for (int i = 0; i < 3; i++) {
		const uint8_t *comma = i < 2 ? memchr(line.p, ',', line.len) : NULL;

		if (i < 2 && comma == NULL)
			return 0;
		field[i] = (struct pg_slice){ line.p, comma != NULL ? (size_t)(comma - line.p) :
			line.len };
		if (comma != NULL) {
			line.p = comma + 1;
			line.len -= field[i].len + 1;
		}
	}
	if (gpu_field(field[0], 100, &util, &ku) != 0 || gpu_field(field[1], 1e12, &used,
	    &kused) != 0 || gpu_field(field[2], 1e12, &total, &ktotal) != 0)
		return 0;
	if (++st->gpu_lines > LOADPARSE_MAX_GPUS)
		return fail(st, "gpu: more than %d GPUs", LOADPARSE_MAX_GPUS);
	if (ku) {
		st->util_sum += util / 100;
		st->gpus_util++;
	}
	if (kused && ktotal && total > 0 && used <= total) {
		st->mem_sum += used / total;
		st->gpus_mem++;
	}
	if (ku || (kused && ktotal && total > 0 && used <= total))
		st->f.ngpu++;
	return 0;
}

static int
section_line(struct pstate *st, struct pg_slice line)
{
	uint64_t v;
	struct pg_slice t = line;

	trim(&t);
	if (t.len == 0)
		return 0;
	switch (st->sec) {
	case SEC_LOADAVG:
		return loadavg_line(st, line);
	case SEC_NCPU:
		if (st->have_ncpu || line_uint(line, 1, MAX_NCPU, &v) != 0)
			return fail(st, "ncpu: expected one integer in 1..%d", MAX_NCPU);
		st->f.ncpu = (uint32_t)v;
		st->have_ncpu = 1;
		return 0;
	case SEC_MEMINFO:
		return meminfo_line(st, line);
	case SEC_GPU:
		return gpu_line(st, line);
	case SEC_USERS:
		if (st->f.has_users || line_uint(line, 0, MAX_USERS, &v) != 0)
			return fail(st, "users: expected one integer in 0..%d", MAX_USERS);
		st->f.users = (uint32_t)v;
		st->f.has_users = 1;
		return 0;
	default:
		return 0;	/* before the first section, or a section we do not read */
	}
}

/* Everything read: check what is required and derive the figures. */
static int
finish(struct pstate *st)
{
	uint64_t total = st->mem[MI_TOTAL], avail;

	if (!st->have_loadavg)
		return fail(st, "no load average (section \"== loadavg\")");
	if (!st->have_ncpu)
		return fail(st, "no cpu count (section \"== ncpu\")");
	if (!st->have_mem[MI_TOTAL] || total == 0)
		return fail(st, "no MemTotal (section \"== meminfo\")");
	if (st->have_mem[MI_AVAILABLE]) {
		avail = st->mem[MI_AVAILABLE];
	} else if (st->have_mem[MI_FREE]) {
		/* Kernels before 3.14 have no MemAvailable: free plus reclaimable caches. */
		avail = st->mem[MI_FREE] + st->mem[MI_BUFFERS] + st->mem[MI_CACHED];
		if (avail > total)
			avail = total;
	} else {
		return fail(st, "no MemAvailable or MemFree (section \"== meminfo\")");
	}
	if (avail > total)
		return fail(st, "meminfo: MemAvailable is above MemTotal");
	st->f.mem_total_kb = total;
	st->f.mem_avail_kb = avail;
	st->f.gpu_util = st->gpus_util ? st->util_sum / st->gpus_util : 0;
	st->f.gpu_mem_used = st->gpus_mem ? st->mem_sum / st->gpus_mem : 0;
	return 0;
}

int
loadparse(struct pg_slice text, struct load_figures *out, char *why, size_t whylen)
{
	struct pstate st;
	struct pg_slice line;
	int r;

	memset(&st, 0, sizeof(st));
	st.why = why;
	st.whylen = whylen;
	if (whylen > 0)
		why[0] = '\0';
	while (next_line(&text, &line)) {
		if (line.len >= 3 && memcmp(line.p, "== ", 3) == 0) {
			line.p += 3;
			line.len -= 3;
			st.sec = section_of(line);
			if (st.sec != SEC_OTHER && st.seen[st.sec]++)
				return fail(&st, "section \"== %s\" given twice", section_names[st.sec]);
			continue;
		}
		if ((r = section_line(&st, line)) != 0)
			return r;
	}
	if ((r = finish(&st)) != 0)
		return r;
	*out = st.f;
	return 0;
}
