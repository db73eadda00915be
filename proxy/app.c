#include "proxy/app.h"
#include "backends/adminstate.h"
#include "backends/discovery.h"
#include "backends/pins.h"
#include "backends/pinstore_file.h"
#include "backends/instance.h"
#include "backends/score.h"
#include "certs/hostpolicy.h"
#include "core/busypoll.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/fileread.h"
#include "core/log.h"
#include "health/loadprobe.h"
#include "health/admin.h"
#include "health/ops.h"
#include "health/probe.h"
#include "core/secretfile.h"
#include "proxy/privdrop.h"
#include "proxy/http/affinity.h"
#include "proxy/http/front.h"
#include "proxy/http/route.h"
#include "proxy/ssh/front.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct app {
	uv_loop_t loop;
	const char *config_path;	/* NULL when running on the embedded defaults */
	struct pg_config *cfg;
	struct registry *reg;
	struct discovery *discovery;
	struct prober *prober;
	struct loadprober *loadprober;	/* NULL unless health.load.enabled */
	struct hostpolicy *hosts;	/* instances' host keys: SSH front door and load probe */
	struct ops_server *ops;
	struct admin *admin;		/* the admin API's token and counters */
	struct astate *astate;		/* the operator's overrides and instances, in state_dir */
	struct pin_table *pins;		/* user -> instance, shared by the front doors */
	struct pinstore_file *pinstore;	/* owned by pins once attached; NULL: store "memory" */
	uv_timer_t pin_sweep;		/* idle expiry of pins */
	int pin_sweep_on;
	uv_timer_t heap_trim;		/* gives freed heap back to the kernel now and then */
	int heap_trim_on;
	struct affinity_key *cookie_key;
	struct router *router;
	struct http_front *front;	/* NULL when no https/http listener is configured */
	struct ssh_front *ssh;		/* NULL when no ssh listener is configured */
	struct ops_env env;
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t grace;		/* shutdown: live sessions' grace, checked every GRACE_TICK_MS */
	uint64_t grace_end;		/* loop ms the grace is up */
	int grace_on;
	int stopping;
	int reloading, reload_again;
	uv_work_t reload_check;		/* the new config's secret files, checked off the loop */
	struct pg_config *reload_cfg;	/* the config being checked; NULL when none */
	char reload_err[512];
	const char *reload_what;	/* the config key whose secret file was refused */
};

/* /metrics: each front door that runs appends its families. */
static int
render_front_metrics(void *arg, struct pg_buf *out)
{
	struct app *a = arg;
	int r;

	if (a->front != NULL && (r = front_render_metrics(a->front, out)) != 0)
		return r;
	if (a->ssh != NULL && (r = ssh_front_render_metrics(a->ssh, out)) != 0)
		return r;
	return 0;
}

static void
apply_logging(const struct pg_config *cfg)
{
	pg_log_setup(cfg->log_level, cfg->log_format);
}

/* Creates state_dir if missing (privdrop_make_dirs()), when poolgate does not drop privileges
 * (privdrop_state_dir() does otherwise). A failure is a warning: what needs the directory says so
 * itself. */
static void
ensure_state_dir(const char *path)
{
	char err[512];

	if (privdrop_make_dirs(path, err, sizeof(err)) != 0)
		LOG_WARN("state", "%s", err);
}

static int
start_discovery(struct app *a, const struct pg_config *cfg)
{
	int r;

	a->discovery = NULL;
	if (cfg->discovery_file == NULL)
		return 0;
	r = discovery_start(&a->loop, a->reg, cfg->discovery_file, cfg->discovery_poll_ms,
	    &a->discovery);
	if (r != 0)
		LOG_ERR("discovery", "cannot watch %s: %s", cfg->discovery_file, pg_strerror(r));
	a->env.discovery = a->discovery;
	return r;
}

static int
same_list(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++) {
		if (strcmp(a[i], b[i]) != 0)
			return 0;
	}
	return 1;
}

/* The front door keeps no pooled connection to an instance that went away or moved. */
static void
front_hook_changed(void *arg, struct instance *in, int endpoint)
{
	struct app *a = arg;

	if (endpoint && a->front != NULL)
		front_forget_instance(a->front, in);
}

/* An instance that is gone releases its users: each is placed anew at their next request. */
static void
front_hook_removed(void *arg, struct instance *in)
{
	struct app *a = arg;
	size_t n = pins_remove_instance(a->pins, in->conf.id);

	if (n > 0)
		LOG_INFO("pins", "instance %s removed: %zu user%s unpinned", in->conf.id, n,
		    n == 1 ? "" : "s");
	if (a->front != NULL)
		front_forget_instance(a->front, in);
}

/* ---- pins: the store and the idle sweep ---- */

#define PIN_STORE_RETRY_MS 5000

static struct pinstore_file_conf
pinstore_conf(const struct pg_config *cfg)
{
	return (struct pinstore_file_conf){ .fsync_interval_ms = cfg->pins.fsync_interval_ms,
		.journal_max_bytes = cfg->pins.journal_max_bytes, .retry_ms = PIN_STORE_RETRY_MS };
}

/*
 * Replays the file store into the pin table (start-up: before any listener accepts). A store that
 * cannot be read or written is logged by the store and poolgate serves from memory; only running
 * out of memory stops the start.
 */
static int
start_pin_store(struct app *a)
{
	struct pinstore_file_conf conf = pinstore_conf(a->cfg);
	int r;

	if (a->cfg->pins.store == PIN_STORE_MEMORY) {
		LOG_INFO("pins", "store \"memory\": pins do not survive a restart");
		return 0;
	}
	if ((r = pinstore_file_open(&a->loop, a->cfg->state_dir, &conf, a->pins, &a->pinstore)) != 0)
		return r;
	r = pins_attach_store(a->pins, &pinstore_file_ops, a->pinstore);
	return r == PG_ENOMEM ? r : 0;
}

/* The sweep runs a few times per TTL, at least every second and at most every minute. */
static uint64_t
pin_sweep_ms(const struct pg_config *cfg)
{
	uint64_t ms = (uint64_t)cfg->pins.idle_ttl_s * 1000 / 4;

	return ms < 1000 ? 1000 : ms > 60000 ? 60000 : ms;
}

static void
on_pin_sweep(uv_timer_t *t)
{
	struct app *a = t->data;

	pins_expire(a->pins, pg_wall_ms(), (int64_t)a->cfg->pins.idle_ttl_s * 1000);
}

static void
start_pin_sweep(struct app *a, const struct pg_config *cfg)
{
	uint64_t ms = pin_sweep_ms(cfg);

	if (!a->pin_sweep_on) {
		uv_timer_init(&a->loop, &a->pin_sweep);
		a->pin_sweep.data = a;
		a->pin_sweep_on = 1;
	}
	uv_timer_start(&a->pin_sweep, on_pin_sweep, ms, ms);
}

#define HEAP_TRIM_MS 60000

/*
 * main.c keeps up to 32 MiB of freed heap so busy connections do not brk per write; after a peak
 * (thousands of connections closed) glibc would keep far more, since only the top of the heap is
 * trimmed. Once a minute malloc_trim() gives free pages back, so RSS follows the load down.
 */
static void
on_heap_trim(uv_timer_t *t)
{
	(void)t;
	malloc_trim(32 << 20);
}

static void
start_heap_trim(struct app *a)
{
	uv_timer_init(&a->loop, &a->heap_trim);
	a->heap_trim_on = 1;
	uv_timer_start(&a->heap_trim, on_heap_trim, HEAP_TRIM_MS, HEAP_TRIM_MS);
}

/*
 * At shutdown, once the front doors are closed: their last session ends are in the table. The
 * heap trim, the other periodic chore, stops here too.
 */
static void
stop_pins(struct app *a)
{
	if (a->heap_trim_on) {
		uv_close((uv_handle_t *)&a->heap_trim, NULL);
		a->heap_trim_on = 0;
	}
	if (a->pin_sweep_on) {
		uv_close((uv_handle_t *)&a->pin_sweep, NULL);
		a->pin_sweep_on = 0;
	}
	if (a->pins != NULL)
		pins_detach_store(a->pins);
	a->pinstore = NULL;
}

static void
apply_pins_reload(struct app *a, const struct pg_config *nc)
{
	struct pinstore_file_conf conf = pinstore_conf(nc);

	if (nc->pins.store != a->cfg->pins.store)
		LOG_WARN("reload", "pins.store changed: the new store takes effect at restart");
	if (a->pinstore != NULL)
		pinstore_file_set_conf(a->pinstore, &conf);
	if (nc->pins.idle_ttl_s != a->cfg->pins.idle_ttl_s)
		start_pin_sweep(a, nc);	/* on_pin_sweep() reads the TTL from a->cfg, nc by then */
}

/*
 * The instances' host key policy, read when something logs in to instances: the SSH front door
 * or the load probe. Returns 0 or PG_ENOMEM.
 */
static int
configure_hosts(struct app *a, const struct pg_config *cfg)
{
	char tofu[4096];

	if (cfg->nlisten_ssh == 0 && !cfg->load.enabled)
		return 0;
	snprintf(tofu, sizeof(tofu), "%s/known_hosts", cfg->state_dir);
	return hostpolicy_configure(a->hosts, cfg->ssh.known_hosts, tofu, cfg->ssh.host_key_check);
}

/* health.load at reload: settings apply; turning the probe on needs its identity, read at start. */
static void
reload_load_probe(struct app *a, const struct pg_config *nc)
{
	if (a->loadprober != NULL && !nc->load.enabled) {
		LOG_INFO("reload", "health.load disabled: load probes stop");
		loadprober_stop(a->loadprober);
		a->loadprober = NULL;
	} else if (a->loadprober != NULL) {
		if (loadprober_reload(a->loadprober, nc) != 0)
			LOG_ERR("reload", "out of memory applying health.load");
	} else if (nc->load.enabled) {
		LOG_WARN("reload", "health.load enabled: the load probe starts at restart");
	}
}

static int
streq_null(const char *x, const char *y)
{
	return (x == NULL && y == NULL) || (x != NULL && y != NULL && strcmp(x, y) == 0);
}

/* Puts a validated new config in force. Settings that need a restart are named in a warning. */
static void
apply_reload(struct app *a, struct pg_config *nc)
{
	struct pg_config *old = a->cfg;
	char err[512];

	if (!same_list(nc->listen_admin, nc->nlisten_admin, old->listen_admin, old->nlisten_admin) ||
	    !same_list(nc->listen_https, nc->nlisten_https, old->listen_https, old->nlisten_https) ||
	    !same_list(nc->listen_http, nc->nlisten_http, old->listen_http, old->nlisten_http) ||
	    !same_list(nc->listen_ssh, nc->nlisten_ssh, old->listen_ssh, old->nlisten_ssh))
		LOG_WARN("reload", "listen changed: new listener addresses take effect at restart");
	if (a->front != NULL && front_reload(a->front, nc, err, sizeof(err)) != 0)
		LOG_ERR("reload", "certificates not reloaded, the old ones stay: %s", err);
	if (configure_hosts(a, nc) != 0)
		LOG_ERR("reload", "out of memory applying ssh.known_hosts");
	if (a->ssh != NULL && ssh_front_reload(a->ssh, nc, err, sizeof(err)) != 0)
		LOG_ERR("reload", "ssh settings not applied: %s", err);
	if (a->router != NULL)
		route_set_cookie(a->router, nc->http.cookie_name, nc->http.cookie_ttl_s);
	pg_busypoll_set(nc->busy_poll_us);
	if (strcmp(nc->state_dir, old->state_dir) != 0)
		LOG_WARN("reload", "state_dir changed: the new directory takes effect at restart");
	if (!streq_null(nc->user, old->user) || !streq_null(nc->group, old->group))
		LOG_WARN("reload", "user or group changed: takes effect at restart");

	apply_logging(nc);
	apply_pins_reload(a, nc);
	if (prober_set_conf(a->prober, &nc->health) != 0)
		LOG_ERR("reload", "out of memory applying health settings");
	reload_load_probe(a, nc);
	reg_placement(a->reg)->weights = nc->weights;
	a->env.health_interval_ms = nc->health.interval_ms;
	ops_set_limits(a->ops, nc->admin_max_connections, nc->admin_request_timeout_ms);
	if (reg_apply(a->reg, INST_SRC_CONFIG, nc->instances, nc->ninstances) != 0)
		LOG_ERR("reload", "out of memory applying instances");
	/* Ids the config gave up may be the admin API's again. */
	astate_refresh(a->astate);
	/* Read the token file again even when its path is the same: it may have been rotated. */
	admin_set_token_file(a->admin, nc->admin_token_file);
	if (!streq_null(nc->discovery_file, old->discovery_file) ||
	    nc->discovery_poll_ms != old->discovery_poll_ms) {
		discovery_stop(a->discovery);
		a->env.discovery = a->discovery = NULL;
		if (old->discovery_file != NULL && nc->discovery_file == NULL) {
			/* Without a discovery file its instances have no source left. */
			reg_apply(a->reg, INST_SRC_DISCOVERY, NULL, 0);
		}
		start_discovery(a, nc);
	} else {
		/* The config may have released ids the discovery file lists: apply it again. */
		discovery_refresh(a->discovery);
	}
	a->cfg = nc;
	pg_config_free(old);
	a->env.counters.reloads_ok++;
	LOG_INFO("reload", "config %s in force: %zu configured instance%s", a->config_path,
	    nc->ninstances, nc->ninstances == 1 ? "" : "s");
}

static void start_reload(struct app *a);

/* What /status says of the last reload (the admin API's reload reports through it). */
static void
note_reload(struct app *a, const char *error)
{
	struct ops_reload *rl = &a->env.reload;

	rl->done++;
	rl->last_ms = pg_wall_ms();
	rl->last_ok = error == NULL;
	snprintf(rl->last_error, sizeof(rl->last_error), "%s", error != NULL ? error : "");
	rl->in_progress = a->reloading || a->reload_again;
}

static void
reload_done(struct app *a)
{
	if (a->reload_again) {
		a->reload_again = 0;
		start_reload(a);
	}
}

/* Thread pool: the new config's private key files (core/secretfile.h), stat() only. */
static void
reload_check_work(uv_work_t *w)
{
	struct app *a = w->data;

	a->reload_what = NULL;
	if (pg_secret_check_config(a->reload_cfg, &a->reload_what, a->reload_err,
	    sizeof(a->reload_err)) != 0)
		return;
	a->reload_err[0] = '\0';
}

static void
on_reload_checked(uv_work_t *w, int status)
{
	struct app *a = w->data;
	struct pg_config *nc = a->reload_cfg;

	a->reload_cfg = NULL;
	a->reloading = 0;
	if (status != 0 || a->stopping) {
		pg_config_free(nc);
		if (!a->stopping) {
			a->env.counters.reloads_failed++;
			LOG_ERR("reload", "refused: %s; the running config stays", uv_strerror(status));
			note_reload(a, uv_strerror(status));
		}
		return;
	}
	if (a->reload_err[0] != '\0') {
		int token_spoiled = a->reload_what != NULL &&
		    strcmp(a->reload_what, PG_SECRET_ADMIN_TOKEN) == 0 &&
		    streq_null(nc->admin_token_file, a->cfg->admin_token_file);

		pg_config_free(nc);
		a->env.counters.reloads_failed++;
		LOG_ERR("reload", "refused: %s; the running config stays", a->reload_err);
		note_reload(a, a->reload_err);
		/*
		 * A token others may now read is no secret any more: admin actions stop (fail closed,
		 * as for a token file that cannot be read) until a reload finds it private again.
		 */
		if (token_spoiled)
			admin_set_token_file(a->admin, a->cfg->admin_token_file);
	} else {
		apply_reload(a, nc);
		note_reload(a, NULL);
	}
	reload_done(a);
}

/*
 * Hands nc to the thread pool for the secret-file check; on_reload_checked() applies or refuses
 * it. Returns 0 (nc is the app's now; a->reloading stays set until then) or a libuv error (nc is
 * still the caller's).
 */
static int
check_reload_secrets(struct app *a, struct pg_config *nc)
{
	int r;

	snprintf(a->reload_err, sizeof(a->reload_err), "secret files not checked");
	a->reload_cfg = nc;
	a->reload_check.data = a;
	if ((r = uv_queue_work(&a->loop, &a->reload_check, reload_check_work,
	    on_reload_checked)) != 0) {
		a->reload_cfg = NULL;
		return r;
	}
	a->reloading = 1;
	return 0;
}

static void
on_config_read(void *arg, int status, const char *data, size_t len)
{
	struct app *a = arg;
	struct pg_config *nc = NULL;
	char err[512];
	int r;

	a->reloading = 0;
	if (a->stopping)
		return;
	if (status != 0) {
		a->env.counters.reloads_failed++;
		LOG_ERR("reload", "refused: %s: %s; the running config stays", a->config_path,
		    pg_strerror(status));
		note_reload(a, pg_strerror(status));
	} else if (pg_config_parse(data, len, &nc, err, sizeof(err)) != 0) {
		a->env.counters.reloads_failed++;
		LOG_ERR("reload", "refused: %s: %s; the running config stays", a->config_path, err);
		note_reload(a, err);
	} else if ((r = check_reload_secrets(a, nc)) == 0) {
		return;		/* on_reload_checked() goes on */
	} else {
		pg_config_free(nc);
		a->env.counters.reloads_failed++;
		LOG_ERR("reload", "refused: %s; the running config stays", pg_strerror(r));
		note_reload(a, pg_strerror(r));
	}
	reload_done(a);
}

static void
start_reload(struct app *a)
{
	int r;

	if (a->config_path == NULL) {
		LOG_NOTICE("reload", "running on the embedded defaults: no config file to re-read");
		return;
	}
	if (a->reloading) {
		a->reload_again = 1;	/* a SIGHUP during a reload reads the file once more after */
		a->env.reload.in_progress = 1;
		return;
	}
	LOG_INFO("reload", "re-reading %s", a->config_path);
	if ((r = pg_fileread(&a->loop, a->config_path, PG_CONFIG_MAX_BYTES, on_config_read, a)) != 0) {
		a->env.counters.reloads_failed++;
		LOG_ERR("reload", "refused: %s: %s; the running config stays", a->config_path,
		    pg_strerror(r));
		note_reload(a, pg_strerror(r));
		return;
	}
	a->reloading = 1;
	a->env.reload.in_progress = 1;
}

/* The admin API's reload: the same path as SIGHUP. */
static int
api_reload(void *arg)
{
	struct app *a = arg;

	if (a->config_path == NULL || a->stopping)
		return PG_EINVAL;
	start_reload(a);
	return 0;
}

#define GRACE_TICK_MS 100

/* Shutdown's second step, after the grace: every session and handle goes; the loop runs dry. */
static void
finish_shutdown(struct app *a)
{
	if (a->grace_on) {
		uv_close((uv_handle_t *)&a->grace, NULL);
		a->grace_on = 0;
	}
	/* A save of the operator's state in flight still completes: the loop runs until it has. */
	astate_close(a->astate);
	a->env.astate = a->astate = NULL;
	admin_free(a->admin);
	a->env.admin = a->admin = NULL;
	front_stop(a->front);
	a->front = NULL;
	ssh_front_stop(a->ssh);
	a->ssh = NULL;
	a->env.extra_metrics = NULL;
	reg_remove_hooks(a->reg, a);
	discovery_stop(a->discovery);
	a->env.discovery = a->discovery = NULL;
	prober_stop(a->prober);
	a->prober = a->env.prober = NULL;
	loadprober_stop(a->loadprober);
	a->loadprober = NULL;
	stop_pins(a);
	uv_close((uv_handle_t *)&a->sigterm, NULL);
	uv_close((uv_handle_t *)&a->sigint, NULL);
	uv_close((uv_handle_t *)&a->sighup, NULL);
}

static void
on_grace_tick(uv_timer_t *t)
{
	struct app *a = t->data;
	size_t live = ssh_front_live(a->ssh) + front_live(a->front);

	if (live == 0) {
		LOG_INFO("main", "every session has ended: stopping");
		finish_shutdown(a);
	} else if (uv_now(&a->loop) >= a->grace_end) {
		LOG_INFO("main", "shutdown grace is up: closing %zu connection%s", live,
		    live == 1 ? "" : "s");
		finish_shutdown(a);
	}
}

/*
 * Shutdown's first step: the listeners close at once (new connections are refused) and so does
 * the admin listener; open SSH sessions, websockets and HTTP exchanges in flight get
 * shutdown_grace_ms to end by themselves, then finish_shutdown() disconnects them ("poolgate is
 * shutting down"). A second SIGTERM/SIGINT cuts the grace short.
 */
static void
shutdown_app(struct app *a, const char *why)
{
	size_t live;

	if (a->stopping) {
		if (a->grace_on) {
			LOG_NOTICE("main", "%s again: ending the shutdown grace now", why);
			finish_shutdown(a);
		} else {
			LOG_NOTICE("main", "%s again: already shutting down", why);
		}
		return;
	}
	a->stopping = 1;
	ops_stop(a->ops);
	a->ops = NULL;
	live = ssh_front_drain(a->ssh) + front_drain(a->front);
	if (live == 0 || a->cfg->shutdown_grace_ms == 0) {
		LOG_INFO("main", "%s: shutting down", why);
		finish_shutdown(a);
		return;
	}
	LOG_INFO("main", "%s: shutting down: listeners closed; %zu connection%s get %u ms to end",
	    why, live, live == 1 ? "" : "s", a->cfg->shutdown_grace_ms);
	uv_timer_init(&a->loop, &a->grace);
	a->grace.data = a;
	a->grace_on = 1;
	a->grace_end = uv_now(&a->loop) + a->cfg->shutdown_grace_ms;
	uv_timer_start(&a->grace, on_grace_tick, GRACE_TICK_MS, GRACE_TICK_MS);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct app *a = h->data;

	if (signum == SIGHUP) {
		if (!a->stopping)
			start_reload(a);
	} else {
		shutdown_app(a, signum == SIGTERM ? "SIGTERM" : "SIGINT");
	}
}

/*
 * The affinity cookie's secret from state_dir. A state_dir that is full or read-only does not stop
 * the start: the secret lives in memory and the warning says what that costs.
 */
static int
load_cookie_key(struct app *a, char *err, size_t errlen)
{
	int ephemeral = 0;
	int r = affinity_key_load_or_ephemeral(a->cfg->state_dir, &a->cookie_key, &ephemeral, err,
	    errlen);

	if (r == 0 && ephemeral) {
		LOG_WARN("affinity", "cannot store a cookie secret: %s; using one in memory: affinity "
		    "cookies will not survive a restart", err);
		err[0] = '\0';
	}
	return r;
}

static void
on_walk(uv_handle_t *h, void *arg)
{
	LOG_ERR("main", "handle still open at exit: %s", uv_handle_type_name(uv_handle_get_type(h)));
}

/*
 * A listener could not start: say why, stop what did start (the loop then runs dry) and return the
 * exit code.
 */
static int
fail_start(struct app *a, const char *why)
{
	LOG_ERR("main", "cannot start: %s", why);
	fprintf(stderr, "poolgate: cannot start: %s\n", why);
	front_stop(a->front);
	a->front = NULL;
	ssh_front_stop(a->ssh);
	a->ssh = NULL;
	reg_remove_hooks(a->reg, a);
	ops_stop(a->ops);
	a->ops = NULL;
	astate_close(a->astate);
	a->env.astate = a->astate = NULL;
	admin_free(a->admin);
	a->env.admin = a->admin = NULL;
	prober_stop(a->prober);
	a->prober = NULL;
	loadprober_stop(a->loadprober);
	a->loadprober = NULL;
	stop_pins(a);
	return PG_EXIT_RUNTIME;
}

/*
 * Before anything reads or makes a file: with "user", state_dir is made or checked and files are
 * touched as the user from here on (proxy/privdrop.h); without, state_dir is made if missing and
 * running as root is worth a warning. Then the private key files the config names are checked
 * (core/secretfile.h). Returns 0, or PG_EXIT_CONFIG with the reason on stderr and in the log.
 */
static int
prepare_privileges(const struct pg_config *cfg, struct privdrop *pd, int *dropping)
{
	char err[512];
	int r = 0;

	*dropping = cfg->user != NULL;
	if (*dropping) {
		if ((r = privdrop_resolve(cfg->user, cfg->group, pd, err, sizeof(err))) != 0 ||
		    (r = privdrop_state_dir(pd, cfg->state_dir, err, sizeof(err))) != 0 ||
		    (r = privdrop_assume_files(pd, err, sizeof(err))) != 0)
			goto out;
	} else {
		if (geteuid() == 0)
			LOG_WARN("main", "poolgate runs as root: set \"user\" to drop privileges once "
			    "the listeners are bound (docs/security.md)");
		ensure_state_dir(cfg->state_dir);
	}
	r = pg_secret_check_config(cfg, NULL, err, sizeof(err));
out:
	if (r != 0) {
		LOG_ERR("main", "cannot start: %s", err);
		fprintf(stderr, "poolgate: cannot start: %s\n", err);
		return PG_EXIT_CONFIG;
	}
	return 0;
}

int
app_run(const char *config_path)
{
	struct app a;
	struct privdrop pd;
	char err[512];
	int r, code = PG_EXIT_OK, dropping = 0;

	memset(&a, 0, sizeof(a));
	a.config_path = config_path;
	r = config_path != NULL ? pg_config_load(config_path, &a.cfg, err, sizeof(err)) :
	    pg_config_default(&a.cfg);
	if (r != 0) {
		fprintf(stderr, "poolgate: %s\n", config_path != NULL ? err : pg_strerror(r));
		return r == PG_ENOMEM ? PG_EXIT_RUNTIME : PG_EXIT_CONFIG;
	}
	apply_logging(a.cfg);
	signal(SIGPIPE, SIG_IGN);
	LOG_INFO("main", "poolgate %s starting with %s", PG_VERSION,
	    config_path != NULL ? config_path : "the embedded defaults");
	if ((code = prepare_privileges(a.cfg, &pd, &dropping)) != 0) {
		pg_config_free(a.cfg);
		return code;
	}

	if ((r = uv_loop_init(&a.loop)) != 0) {
		LOG_ERR("main", "uv_loop_init: %s", uv_strerror(r));
		pg_config_free(a.cfg);
		return PG_EXIT_RUNTIME;
	}
	(void)pg_busypoll_init(&a.loop, a.cfg->busy_poll_us);
	a.env.started_ms = pg_wall_ms();
	a.env.health_interval_ms = a.cfg->health.interval_ms;
	if ((a.reg = reg_new()) == NULL || (a.pins = pins_new()) == NULL ||
	    (a.hosts = hostpolicy_new()) == NULL || configure_hosts(&a, a.cfg) != 0 ||
	    reg_apply(a.reg, INST_SRC_CONFIG, a.cfg->instances, a.cfg->ninstances) != 0 ||
	    start_pin_store(&a) != 0 ||
	    (a.prober = prober_new(&a.loop, a.reg, &a.cfg->health)) == NULL) {
		LOG_ERR("main", "out of memory");
		code = PG_EXIT_RUNTIME;
		stop_pins(&a);	/* the store may have handles on the loop: let them close */
		goto drain;
	}
	start_pin_sweep(&a, a.cfg);
	start_heap_trim(&a);
	reg_placement(a.reg)->weights = a.cfg->weights;
	a.env.reg = a.reg;
	a.env.pins = a.pins;
	a.env.prober = a.prober;
	/* An admin token that cannot be used is a config error: the operator asked for actions. */
	if ((r = admin_new(&a.loop, a.cfg->admin_token_file, &a.admin, err, sizeof(err))) != 0) {
		fprintf(stderr, "poolgate: admin.token_file %s\n", err);
		LOG_ERR("main", "cannot start: admin.token_file %s", err);
		prober_stop(a.prober);
		a.prober = NULL;
		stop_pins(&a);	/* the sweep timer and the store's handles must close too */
		code = r == PG_ENOMEM ? PG_EXIT_RUNTIME : PG_EXIT_CONFIG;
		goto drain;
	}
	if (astate_open(&a.loop, a.reg, a.cfg->state_dir, &a.astate) != 0) {
		code = fail_start(&a, "out of memory");
		goto drain;
	}
	a.env.admin = a.admin;
	a.env.astate = a.astate;
	a.env.start_reload = api_reload;
	a.env.reload_arg = &a;
	if ((r = ops_start(&a.loop, &a.env, a.cfg, &a.ops, err, sizeof(err))) != 0) {
		code = fail_start(&a, err);
		goto drain;
	}
	if (a.cfg->nlisten_https + a.cfg->nlisten_http > 0) {
		struct reg_hooks hooks = { NULL, front_hook_changed, front_hook_removed, &a };
		err[0] = '\0';
		if (load_cookie_key(&a, err, sizeof(err)) != 0 ||
		    (a.router = route_new(a.reg, a.pins, a.cookie_key, a.cfg->http.cookie_name,
		    a.cfg->http.cookie_ttl_s)) == NULL || reg_add_hooks(a.reg, &hooks) != 0 ||
		    (r = front_start(&a.loop, a.cfg, a.reg, a.router, &a.front, err,
		    sizeof(err))) != 0) {
			code = fail_start(&a, err[0] != '\0' ? err : "out of memory");
			goto drain;
		}
	}
	if (a.cfg->nlisten_ssh > 0) {
		err[0] = '\0';
		if ((r = ssh_front_start(&a.loop, a.cfg, a.reg, a.pins, a.hosts, &a.ssh, err,
		    sizeof(err))) != 0) {
			code = fail_start(&a, err);
			goto drain;
		}
	}
	/* After the SSH front door, which makes the pool user CA if it has to and says so. */
	if (a.cfg->load.enabled && (r = loadprober_start(&a.loop, a.reg, a.hosts, a.cfg,
	    &a.loadprober, err, sizeof(err))) != 0) {
		code = fail_start(&a, err);
		goto drain;
	}
	if (a.front != NULL || a.ssh != NULL) {
		a.env.extra_metrics = render_front_metrics;
		a.env.extra_arg = &a;
	}
	/* Every listener is bound and every key read: nothing needs root any more. */
	if (dropping && privdrop_finish(&pd, err, sizeof(err)) != 0) {
		code = fail_start(&a, err);
		goto drain;
	}
	start_discovery(&a, a.cfg);
	uv_signal_init(&a.loop, &a.sigterm);
	uv_signal_init(&a.loop, &a.sigint);
	uv_signal_init(&a.loop, &a.sighup);
	a.sigterm.data = a.sigint.data = a.sighup.data = &a;
	uv_signal_start(&a.sigterm, on_signal, SIGTERM);
	uv_signal_start(&a.sigint, on_signal, SIGINT);
	uv_signal_start(&a.sighup, on_signal, SIGHUP);
	LOG_INFO("main", "ready: %zu instance%s configured", reg_count(a.reg),
	    reg_count(a.reg) == 1 ? "" : "s");
drain:
	uv_run(&a.loop, UV_RUN_DEFAULT);
	/* The busy-poll handle is unreferenced, so the loop ran dry around it: close it, then run. */
	pg_busypoll_close();
	uv_run(&a.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&a.loop) == UV_EBUSY) {
		uv_walk(&a.loop, on_walk, NULL);
		code = code ? code : PG_EXIT_RUNTIME;
	}
	reg_free(a.reg);
	hostpolicy_free(a.hosts);
	route_free(a.router);
	affinity_key_free(a.cookie_key);
	pins_free(a.pins);
	pg_config_free(a.cfg);
	if (code == PG_EXIT_OK)
		LOG_INFO("main", "stopped");
	return code;
}
