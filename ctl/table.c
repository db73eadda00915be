#include "ctl/table.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>

struct ctl_table {
	size_t ncols, rows, cap;
	char **cells;		/* rows * ncols: the header row first */
};

int
ctl_sanitize(struct pg_buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int r = 0;

	for (; *p != '\0' && r == 0; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			r = pg_buf_printf(out, "\\x%02x", *p);
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			/* U+0080..U+009F, the C1 controls (CSI among them), in UTF-8. */
			r = pg_buf_printf(out, "\\xc2\\x%02x", p[1]);
			p++;
		} else if (*p == '\\') {
			r = pg_buf_append(out, "\\\\", 2);
		} else {
			r = pg_buf_append(out, p, 1);
		}
	}
	return r;
}

size_t
ctl_width(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

struct ctl_table *
ctl_table_new(size_t ncols, const char *const *headers)
{
	struct ctl_table *t;

	if (ncols == 0 || ncols > CTL_TABLE_MAX_COLS || (t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->ncols = ncols;
	if (ctl_table_add(t, headers) != 0) {
		ctl_table_free(t);
		return NULL;
	}
	return t;
}

int
ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	size_t base = t->rows * t->ncols;

	if (base + t->ncols > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : t->ncols * 16;
		char **grown = realloc(t->cells, cap * sizeof(*grown));
		if (grown == NULL)
			return PG_ENOMEM;
		t->cells = grown;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		struct pg_buf b;
		pg_buf_init(&b, 1u << 20);
		if (ctl_sanitize(&b, cells[i] != NULL ? cells[i] : "-") != 0 ||
		    pg_buf_append(&b, "", 1) != 0) {
			pg_buf_free(&b);
			for (size_t k = 0; k < i; k++)
				free(t->cells[base + k]);
			return PG_ENOMEM;
		}
		t->cells[base + i] = (char *)b.p;
	}
	t->rows++;
	return 0;
}

void
ctl_table_print(const struct ctl_table *t, FILE *f)
{
	size_t width[CTL_TABLE_MAX_COLS] = { 0 };

	for (size_t r = 0; r < t->rows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = ctl_width(t->cells[r * t->ncols + c]);
			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t r = 0; r < t->rows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			fputs(cell, f);
			/* No trailing blanks after the last column. */
			for (size_t w = ctl_width(cell); c + 1 < t->ncols && w < width[c] + 2; w++)
				fputc(' ', f);
		}
		fputc('\n', f);
	}
}

void
ctl_table_free(struct ctl_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->rows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
