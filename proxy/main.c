/* poolgate: the single front door of a pool of data-science VMs. See README.md. */
#include "core/config.h"
#include "core/err.h"
#include "core/fileread.h"
#include "proxy/app.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: poolgate [-c FILE]\n"
	    "       poolgate --check-config FILE | --check-discovery FILE\n"
	    "       poolgate --help | --version\n"
	    "\n"
	    "  -c, --config FILE     run with the JSON config FILE (default: embedded defaults)\n"
	    "  --check-config FILE   validate FILE, print the first error, exit 0 (valid) or 2\n"
	    "  --check-discovery FILE  the same for a discovery file ({\"instances\": [...]})\n"
	    "  -h, --help            this text\n"
	    "  -V, --version         print the version\n"
	    "\n"
	    "Signals: SIGTERM/SIGINT stop cleanly; SIGHUP re-reads the config file.\n"
	    "Reference: docs/config.md\n");
}

static int
check_config(const char *path)
{
	struct pg_config *cfg;
	char err[512];

	if (pg_config_load(path, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "poolgate: %s\n", err);
		return PG_EXIT_CONFIG;
	}
	printf("%s: ok (%zu instance%s)\n", path, cfg->ninstances, cfg->ninstances == 1 ? "" : "s");
	pg_config_free(cfg);
	return PG_EXIT_OK;
}

static int
check_discovery(const char *path)
{
	struct inst_conf *list = NULL;
	struct pg_buf text;
	char err[512];
	size_t n = 0;
	int r;

	pg_buf_init(&text, PG_CONFIG_MAX_BYTES + 1);
	if ((r = pg_read_file(path, PG_CONFIG_MAX_BYTES, &text)) != 0) {
		pg_file_error(path, r, err, sizeof(err));
		fprintf(stderr, "poolgate: %s\n", err);
		pg_buf_free(&text);
		return r == PG_ENOMEM ? PG_EXIT_RUNTIME : PG_EXIT_CONFIG;
	}
	r = PG_EXIT_CONFIG;
	if (pg_discovery_parse(text.p != NULL ? (const char *)text.p : "", text.len, &list, &n, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "poolgate: %s: %s\n", path, err);
	} else {
		printf("%s: ok (%zu instance%s)\n", path, n, n == 1 ? "" : "s");
		inst_conf_free_array(list, n);
		r = PG_EXIT_OK;
	}
	pg_buf_free(&text);
	return r;
}

int
main(int argc, char **argv)
{
	const char *config = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return PG_EXIT_OK;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("poolgate %s\n", PG_VERSION);
			return PG_EXIT_OK;
		} else if (strcmp(a, "--check-config") == 0 && i + 1 < argc && argc == 3) {
			return check_config(argv[i + 1]);
		} else if (strcmp(a, "--check-discovery") == 0 && i + 1 < argc && argc == 3) {
			return check_discovery(argv[i + 1]);
		} else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc &&
		    config == NULL) {
			config = argv[++i];
		} else {
			fprintf(stderr, "poolgate: unexpected argument \"%s\"\n\n", a);
			usage(stderr);
			return PG_EXIT_CONFIG;
		}
	}
	/*
	 * Output buffers of tens of KiB are allocated and freed per write on busy connections;
	 * glibc gave the top of the heap back to the kernel after each (8,000 brk calls per GiB
	 * piped in bench/ssh). Keep up to 32 MiB of freed heap instead.
	 *
	 * Setting a threshold turns off glibc's dynamic mmap threshold, which would otherwise have
	 * risen past those buffers: left at its 128 KiB start, every 128 KiB TLS output buffer (one
	 * 64 KiB read from an instance, encrypted) was a fresh mmap, page faults and a munmap, a
	 * quarter of poolgate's CPU on 1 MiB responses (bench/http). Serve up to 4 MiB from the heap.
	 */
	mallopt(M_TRIM_THRESHOLD, 32 << 20);
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	return app_run(config);
}
