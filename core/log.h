/*
 * Logging: one line per event on stderr, as text or as JSON lines. The level is checked before any
 * formatting (PG_LOG), so a debug line costs a compare when debug is off. Never pass a secret
 * (password, key, cookie, token) to these functions.
 */
#ifndef PG_CORE_LOG_H
#define PG_CORE_LOG_H

#include <stddef.h>

enum pg_log_level { PG_LOG_DEBUG, PG_LOG_INFO, PG_LOG_NOTICE, PG_LOG_WARN, PG_LOG_ERR };
enum pg_log_format { PG_LOG_TEXT, PG_LOG_JSON };

extern enum pg_log_level pg_log_min_level;

void pg_log_setup(enum pg_log_level min, enum pg_log_format format);

/* Parses "debug", "info", "notice", "warn", "error". Returns 0 and sets *out, or PG_EINVAL. */
int pg_log_level_parse(const char *s, enum pg_log_level *out);
const char *pg_log_level_name(enum pg_log_level level);

/*
 * Writes one line. prefix names the connection or subsystem ("admin 127.0.0.1:4242",
 * "instance dsvm-0") and may be NULL. Newlines in the message are escaped so one event stays one line.
 */
void pg_log(enum pg_log_level level, const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One field of a structured line: a string (str != NULL) or an unsigned number. */
struct pg_log_field {
	const char *key;	/* [a-z_]+ */
	const char *str;
	unsigned long long num;
};

/*
 * Writes one structured line for an event (the SSH audit line): in text format the event name
 * and then key=value pairs, a value quoted ("...", with \" and \\) when it is empty or holds a
 * space, quote, backslash or '='; in JSON format a line whose "msg" is the event name and whose
 * member of that name is an object of the fields, numbers as JSON numbers. At most 32 fields.
 */
void pg_log_fields(enum pg_log_level level, const char *prefix, const char *event,
    const struct pg_log_field *fields, size_t n);

#define PG_LOG(level, prefix, ...) do { \
	if ((level) >= pg_log_min_level) \
		pg_log((level), (prefix), __VA_ARGS__); \
} while (0)

#define LOG_DEBUG(prefix, ...) PG_LOG(PG_LOG_DEBUG, prefix, __VA_ARGS__)
#define LOG_INFO(prefix, ...) PG_LOG(PG_LOG_INFO, prefix, __VA_ARGS__)
#define LOG_NOTICE(prefix, ...) PG_LOG(PG_LOG_NOTICE, prefix, __VA_ARGS__)
#define LOG_WARN(prefix, ...) PG_LOG(PG_LOG_WARN, prefix, __VA_ARGS__)
#define LOG_ERR(prefix, ...) PG_LOG(PG_LOG_ERR, prefix, __VA_ARGS__)

#endif
