/*
 * The process: one libuv loop and everything on it (registry, discovery watcher, probes, admin
 * listener, signals). SIGTERM/SIGINT stop accepting and close everything cleanly; SIGHUP re-reads the
 * config file without blocking the loop, and an invalid new config is refused with its error while
 * the running one stays.
 */
#ifndef PG_PROXY_APP_H
#define PG_PROXY_APP_H

/* Exit codes of the poolgate binary. */
enum {
	PG_EXIT_OK = 0,
	PG_EXIT_RUNTIME = 1,	/* could not start: a port in use, out of memory */
	PG_EXIT_CONFIG = 2,	/* the config is invalid */
};

/*
 * Runs poolgate with the config at path (NULL: the embedded defaults) until SIGTERM or SIGINT.
 * Returns one of PG_EXIT_*.
 */
int app_run(const char *config_path);

#endif
