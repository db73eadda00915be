/*
 * poolgatectl's human output: aligned tables of text that came from the server. Instance ids are
 * restricted by the config, but user names reach poolgate from unauthenticated peers; before any
 * of it is printed, control characters (C0, DEL, and C1 as UTF-8) become \xNN, so a name cannot
 * move the cursor, retitle the terminal or hide a line.
 */
#ifndef PG_CTL_TABLE_H
#define PG_CTL_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include "core/buf.h"

#define CTL_TABLE_MAX_COLS 12

/* Appends s to out with control characters escaped. Returns 0 or PG_ETOOBIG / PG_ENOMEM. */
int ctl_sanitize(struct pg_buf *out, const char *s);

/* Display columns of UTF-8 text: one per code point (no wide-character tables here). */
size_t ctl_width(const char *s);

struct ctl_table;

/* A table with ncols columns (1..CTL_TABLE_MAX_COLS) and these headers. NULL when out of memory. */
struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers);
/* Adds a row of ncols cells (NULL prints as "-"); each is copied, sanitized. 0 or PG_ENOMEM. */
int ctl_table_add(struct ctl_table *t, const char *const *cells);
/* Prints the header and the rows, columns padded to their widest cell, two spaces apart. */
void ctl_table_print(const struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

#endif
