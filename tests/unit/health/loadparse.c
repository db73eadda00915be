/*
 * health/loadparse.c: the load probe's output (loadparse.h), from real /proc text to the edge
 * cases a command of one's own or a half-working nvidia-smi produce.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "health/loadparse.h"

static const char meminfo[] =
	"MemTotal:       16318412 kB\n"
	"MemFree:         1101320 kB\n"
	"MemAvailable:    8159206 kB\n"
	"Buffers:          301420 kB\n"
	"Cached:          6716028 kB\n"
	"SwapCached:            0 kB\n"
	"HugePages_Total:       0\n"
	"Hugepagesize:       2048 kB\n";

static int
parse(const char *text, struct load_figures *f, char *why)
{
	memset(f, 0, sizeof(*f));
	return loadparse((struct pg_slice){ (const uint8_t *)text, strlen(text) }, f, why, 128);
}

static void
test_default_command_output(void **state)
{
	char text[2048], why[128];
	struct load_figures f;

	snprintf(text, sizeof(text), "== loadavg\n0.52 0.58 0.59 1/389 12345\n== ncpu\n4\n"
	    "== meminfo\n%s== users\n3\n", meminfo);
	assert_int_equal(parse(text, &f, why), 0);
	assert_float_equal(f.load1, 0.52, 1e-9);
	assert_float_equal(f.load5, 0.58, 1e-9);
	assert_float_equal(f.load15, 0.59, 1e-9);
	assert_int_equal(f.ncpu, 4);
	assert_int_equal(f.mem_total_kb, 16318412);
	assert_int_equal(f.mem_avail_kb, 8159206);
	assert_float_equal(load_mem_used(&f), 1 - 8159206.0 / 16318412.0, 1e-9);
	assert_int_equal(f.ngpu, 0);
	assert_float_equal(load_gpu(&f), 0, 0);
	assert_true(f.has_users);
	assert_int_equal(f.users, 3);
}

static void
test_gpus(void **state)
{
	char text[2048], why[128];
	struct load_figures f;

	/* nvidia-smi's three fields; [N/A] is a field it cannot read. */
	snprintf(text, sizeof(text), "== loadavg\n1 1 1 1/1 1\n== ncpu\n8\n== meminfo\n%s"
	    "== gpu\n40, 4096, 16384\n80, [N/A], 16384\n[Not Supported], 8192, 16384\n", meminfo);
	assert_int_equal(parse(text, &f, why), 0);
	assert_int_equal(f.ngpu, 3);
	assert_float_equal(f.gpu_util, 0.6, 1e-9);		/* (40 + 80) / 2 */
	assert_float_equal(f.gpu_mem_used, 0.375, 1e-9);	/* (0.25 + 0.5) / 2 */
	assert_float_equal(load_gpu(&f), 0.6, 1e-9);
	assert_false(f.has_users);

	/* nvidia-smi installed without a GPU or driver talks instead: no GPU, still a good round. */
	snprintf(text, sizeof(text), "== loadavg\n1 1 1\n== ncpu\n8\n== meminfo\n%s== gpu\n"
	    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"
	    "No devices were found\n", meminfo);
	assert_int_equal(parse(text, &f, why), 0);
	assert_int_equal(f.ngpu, 0);
}

static void
test_crlf_noise_and_unknown_sections(void **state)
{
	char why[128];
	struct load_figures f;

	assert_int_equal(parse("Welcome to dsvm!\r\n== loadavg\r\n2.50 1.00 0.50 3/100 9\r\n"
	    "== future\r\nanything: 1\r\n== ncpu\r\n 2 \r\n\r\n== meminfo\r\nMemTotal: 1000 kB\r\n"
	    "MemAvailable: 250 kB\r\n", &f, why), 0);
	assert_float_equal(f.load1, 2.5, 1e-9);
	assert_int_equal(f.ncpu, 2);
	assert_float_equal(load_mem_used(&f), 0.75, 1e-9);
}

static void
test_old_kernel_without_memavailable(void **state)
{
	char why[128];
	struct load_figures f;

	assert_int_equal(parse("== loadavg\n0 0 0\n== ncpu\n1\n== meminfo\nMemTotal: 1000 kB\n"
	    "MemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n", &f, why), 0);
	assert_int_equal(f.mem_avail_kb, 400);
}

static void
test_refusals(void **state)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
		{ "", "no load average" },
		{ "== ncpu\n4\n== meminfo\nMemTotal: 10 kB\nMemFree: 1 kB\n", "no load average" },
		{ "== loadavg\n1 1 1\n== meminfo\nMemTotal: 10 kB\nMemFree: 1 kB\n", "no cpu count" },
		{ "== loadavg\n1 1 1\n== ncpu\n4\n", "no MemTotal" },
		{ "== loadavg\n1 1 1\n== ncpu\n4\n== meminfo\nMemTotal: 10 kB\n", "no MemAvailable" },
		{ "== loadavg\n1 1\n", "loadavg: expected three" },
		{ "== loadavg\n1 1 1x\n", "loadavg: expected three" },
		{ "== loadavg\n-1 1 1\n", "loadavg: expected three" },
		{ "== loadavg\n1e3 1 1\n", "loadavg: expected three" },
		{ "== loadavg\n1 1 1\n2 2 2\n", "loadavg: more than one line" },
		{ "== loadavg\n2000000 1 1\n", "loadavg: expected three" },
		{ "== ncpu\n0\n", "ncpu: expected" },
		{ "== ncpu\n4 cores\n", "ncpu: expected" },
		{ "== ncpu\n99999999999999999999999\n", "ncpu: expected" },
		{ "== ncpu\n4\n4\n", "ncpu: expected" },
		{ "== users\nthree\n", "users: expected" },
		{ "== meminfo\nMemTotal: 10 MB\n", "meminfo: MemTotal: expected" },
		{ "== meminfo\nMemTotal: 10 kB\nMemTotal: 10 kB\n", "meminfo: MemTotal given twice" },
		{ "== loadavg\n1 1 1\n== ncpu\n4\n== meminfo\nMemTotal: 10 kB\nMemAvailable: 11 kB\n",
		  "MemAvailable is above MemTotal" },
		{ "== loadavg\n1 1 1\n== ncpu\n4\n== meminfo\nMemTotal: 0 kB\nMemAvailable: 0 kB\n",
		  "no MemTotal" },
		{ "== ncpu\n4\n== ncpu\n4\n", "section \"== ncpu\" given twice" },
	};
	struct load_figures f;
	char why[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&f, 0x5a, sizeof(f));
		assert_int_equal(loadparse((struct pg_slice){ (const uint8_t *)cases[i].text,
		    strlen(cases[i].text) }, &f, why, sizeof(why)), PG_EPARSE);
		if (strstr(why, cases[i].why) == NULL)
			fail_msg("case %zu: reason \"%s\", wanted \"%s\"", i, why, cases[i].why);
		/* Refused output leaves *out as it was. */
		assert_int_equal(((uint8_t *)&f)[0], 0x5a);
	}
}

static void
test_gpu_limit(void **state)
{
	char text[8192], why[128];
	struct load_figures f;
	size_t n;

	n = (size_t)snprintf(text, sizeof(text), "== loadavg\n1 1 1\n== ncpu\n1\n== meminfo\n"
	    "MemTotal: 10 kB\nMemAvailable: 5 kB\n== gpu\n");
	for (int i = 0; i < LOADPARSE_MAX_GPUS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "10, 1, 2\n");
	assert_int_equal(parse(text, &f, why), 0);
	assert_int_equal(f.ngpu, LOADPARSE_MAX_GPUS);
	snprintf(text + n, sizeof(text) - n, "10, 1, 2\n");
	assert_int_equal(parse(text, &f, why), PG_EPARSE);
	assert_non_null(strstr(why, "more than"));
}

/* The built-in command, run here, parses, and says what this machine has. */
static void
test_default_command_here(void **state)
{
	char buf[65536], why[128];
	struct load_figures f;
	FILE *p = popen(LOADPARSE_DEFAULT_COMMAND, "r");
	size_t n;

	assert_non_null(p);
	n = fread(buf, 1, sizeof(buf), p);
	pclose(p);
	assert_int_equal(loadparse((struct pg_slice){ (const uint8_t *)buf, n }, &f, why,
	    sizeof(why)), 0);
	assert_true(f.ncpu >= 1);
	assert_true(f.mem_total_kb > 0);
	assert_true(f.has_users);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_command_output),
		cmocka_unit_test(test_gpus),
		cmocka_unit_test(test_crlf_noise_and_unknown_sections),
		cmocka_unit_test(test_old_kernel_without_memavailable),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_gpu_limit),
		cmocka_unit_test(test_default_command_here),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
