#include "core/log.h"
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum pg_log_level pg_log_min_level = PG_LOG_INFO;
static enum pg_log_format log_format = PG_LOG_TEXT;

static const char *const level_names[] = { "debug", "info", "notice", "warn", "error" };

void
pg_log_setup(enum pg_log_level min, enum pg_log_format format)
{
	pg_log_min_level = min;
	log_format = format;
}

int
pg_log_level_parse(const char *s, enum pg_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum pg_log_level)i;
			return 0;
		}
	}
	return PG_EINVAL;
}

const char *
pg_log_level_name(enum pg_log_level level)
{
	return (unsigned)level < 5 ? level_names[level] : "?";
}

/* Appends s to out[*n..cap) escaped for a JSON string (json=1) or for a one-line text log. */
static void
append_escaped(char *out, size_t cap, size_t *n, const char *s, int json)
{
	for (; *s != '\0' && *n + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\n') {
			out[(*n)++] = '\\'; out[(*n)++] = 'n';
		} else if (json && (c == '"' || c == '\\')) {
			out[(*n)++] = '\\'; out[(*n)++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			*n += (size_t)snprintf(out + *n, cap - *n, json ? "\\u%04x" : "\\x%02x", c);
		} else {
			out[(*n)++] = (char)c;
		}
	}
}

/* The line up to the message: timestamp, level and connection prefix, in either format. */
static size_t
line_head(char *line, size_t cap, enum pg_log_level level, const char *prefix)
{
	char ts[40];
	struct timespec now;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);

	n = 0;
	if (log_format == PG_LOG_JSON) {
		n += (size_t)snprintf(line, cap, "{\"ts\":\"%s\",\"level\":\"%s\"", ts,
		    pg_log_level_name(level));
		if (prefix != NULL) {
			n += (size_t)snprintf(line + n, cap - n, ",\"conn\":\"");
			append_escaped(line, cap - 8, &n, prefix, 1);
			line[n++] = '"';
		}
		n += (size_t)snprintf(line + n, cap - n, ",\"msg\":\"");
	} else {
		n += (size_t)snprintf(line, cap, "%s %-6s ", ts, pg_log_level_name(level));
		if (prefix != NULL) {
			append_escaped(line, cap - 8, &n, prefix, 0);
			line[n++] = ':';
			line[n++] = ' ';
		}
	}
	return n;
}

static void
line_write(char *line, size_t n)
{
	line[n++] = '\n';
	/* One write per line so concurrent writers (tests, systemd) never see interleaved halves. */
	fwrite(line, 1, n, stderr);
	fflush(stderr);
}

void
pg_log(enum pg_log_level level, const char *prefix, const char *fmt, ...)
{
	char msg[2048], line[4608];
	size_t n;
	va_list ap;

	if (level < pg_log_min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	n = line_head(line, sizeof(line), level, prefix);
	append_escaped(line, sizeof(line) - 8, &n, msg, log_format == PG_LOG_JSON);
	if (log_format == PG_LOG_JSON) {
		line[n++] = '"';
		line[n++] = '}';
	}
	line_write(line, n);
}

/* A text-format value: bare when it is a plain token, else quoted with " and \ escaped. */
static void
append_text_value(char *line, size_t cap, size_t *n, const char *v)
{
	if (v[0] != '\0' && strpbrk(v, " \"\\=") == NULL) {
		append_escaped(line, cap, n, v, 0);
		return;
	}
	if (*n + 2 >= cap)
		return;
	line[(*n)++] = '"';
	for (; *v != '\0' && *n + 8 < cap; v++) {
		char one[2] = { *v, '\0' };

		if (*v == '"' || *v == '\\')
			line[(*n)++] = '\\';
		append_escaped(line, cap, n, one, 0);
	}
	line[(*n)++] = '"';
}

void
pg_log_fields(enum pg_log_level level, const char *prefix, const char *event,
    const struct pg_log_field *f, size_t nf)
{
	char line[4608];
	size_t n, cap = sizeof(line) - 16;
	int json = log_format == PG_LOG_JSON;

	if (level < pg_log_min_level)
		return;
	n = line_head(line, sizeof(line), level, prefix);
	append_escaped(line, cap, &n, event, json);
	if (json)
		n += (size_t)snprintf(line + n, cap - n, "\",\"%s\":{", event);
	for (size_t i = 0; i < nf && i < 32 && n + 64 < cap; i++) {
		if (json) {
			n += (size_t)snprintf(line + n, cap - n, "%s\"%s\":", i ? "," : "", f[i].key);
			if (f[i].str != NULL) {
				line[n++] = '"';
				append_escaped(line, cap - 4, &n, f[i].str, 1);
				line[n++] = '"';
			} else {
				n += (size_t)snprintf(line + n, cap - n, "%llu", f[i].num);
			}
		} else {
			n += (size_t)snprintf(line + n, cap - n, " %s=", f[i].key);
			if (f[i].str != NULL)
				append_text_value(line, cap - 4, &n, f[i].str);
			else
				n += (size_t)snprintf(line + n, cap - n, "%llu", f[i].num);
		}
	}
	if (json) {
		line[n++] = '}';
		line[n++] = '}';
	}
	line_write(line, n);
}
