/*
 * The load probe's command output, parsed (pure: no I/O, no allocation).
 *
 * The output is made of sections, each opened by a line "== NAME"; lines before the first
 * section and sections with other names are ignored (room for later additions):
 *
 *   == loadavg     /proc/loadavg: "0.52 0.58 0.59 1/389 12345"; the first three fields are read
 *   == ncpu        one integer, 1..65536 (nproc)
 *   == meminfo     /proc/meminfo: "MemTotal:  16318412 kB" lines; MemTotal is needed, and
 *                  MemAvailable (else MemFree + Buffers + Cached)
 *   == gpu         optional; one line per GPU as nvidia-smi --query-gpu=utilization.gpu,
 *                  memory.used,memory.total --format=csv,noheader,nounits prints it:
 *                  "35, 1024, 16384"; "[N/A]" or "[Not Supported]" for a field it cannot read
 *   == users       optional; one integer, the logged-in users (who | wc -l)
 *
 * loadavg, ncpu and meminfo are required; each section may appear once. Lines end in LF (a CR
 * before it is dropped). Numbers are plain decimals ("0.52", "16318412"); no signs, exponents or
 * locales. LOADPARSE_DEFAULT_COMMAND prints exactly this from a Linux instance; a command of
 * one's own must print the same sections.
 */
#ifndef PG_HEALTH_LOADPARSE_H
#define PG_HEALTH_LOADPARSE_H

#include <stddef.h>

#include "backends/load.h"
#include "core/buf.h"

#define LOADPARSE_MAX_GPUS 64

/* The built-in probe command (POSIX sh on the instance; reads only). */
#define LOADPARSE_DEFAULT_COMMAND \
	"echo '== loadavg'; cat /proc/loadavg; " \
	"echo '== ncpu'; nproc 2>/dev/null || grep -c '^processor' /proc/cpuinfo; " \
	"echo '== meminfo'; cat /proc/meminfo; " \
	"if command -v nvidia-smi >/dev/null 2>&1; then echo '== gpu'; " \
	"nvidia-smi --query-gpu=utilization.gpu,memory.used,memory.total " \
	"--format=csv,noheader,nounits; fi; " \
	"echo '== users'; who | wc -l"

/*
 * Parses text into *out. Returns 0, or PG_EPARSE with a one-line reason (no bytes of the input
 * beyond a section name) in why (whylen bytes, NUL-terminated when whylen > 0); *out is then
 * unchanged.
 */
int loadparse(struct pg_slice text, struct load_figures *out, char *why, size_t whylen);

#endif
