/*
 * The configuration: one JSON file, parsed once (at start and on SIGHUP) with cJSON into the plain
 * structs below, strictly validated. Unknown keys, duplicate keys, wrong types and out-of-range values
 * are errors, and every error message starts with the JSON path it concerns
 * ("instances[2].ssh_port: expected an integer in 1..65535"). Runtime code never sees cJSON.
 *
 * docs/config.md is the reference for every key below.
 */
#ifndef PG_CORE_CONFIG_H
#define PG_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"
#include "core/log.h"

#define PG_CONFIG_MAX_BYTES (4u << 20)	/* config and discovery files larger than this are refused */
#define PG_ID_MAX 63			/* instance ids: [A-Za-z0-9._-], 1..63 bytes */

enum inst_admin { INST_ACTIVE, INST_DRAINING, INST_MAINT };

struct inst_label {
	char *key, *value;
};

/* One instance as configured (in the config file or in the discovery file). */
struct inst_conf {
	char *id;
	char *address;		/* IP literal */
	uint16_t ssh_port;	/* default 22 */
	uint16_t http_port;	/* default 8000 */
	int http_tls;		/* JupyterHub speaks https */
	int http_tls_verify;	/* verify its certificate (default 1); 0 = explicit no-verify */
	char *http_ca_file;	/* CA bundle for that verification; NULL = system default */
	uint32_t capacity;	/* users; default 8 */
	enum inst_admin admin;	/* default INST_ACTIVE */
	struct inst_label *labels;
	size_t nlabels;
};

enum probe_check { PROBE_TCP, PROBE_SSH, PROBE_HTTP, PROBE_NCHECKS };

struct health_conf {
	uint32_t interval_ms, timeout_ms, rise, fall, jitter_pct;
	unsigned checks;	/* bit (1u << PROBE_*) set when that check runs */
	char *http_path;	/* default "/hub/health" */
};

/* The load probe (health/loadprobe.h): logs in to each instance and runs a read-only command. */
enum load_auth { LOAD_AUTH_CERTIFICATE, LOAD_AUTH_KEY };

struct load_conf {
	int enabled;			/* default 0 */
	uint32_t interval_ms;		/* between rounds of one instance; default 15000 */
	uint32_t timeout_ms;		/* bound on each phase of a round; default 5000 */
	char *user;			/* the login name on the instances; required when enabled */
	enum load_auth auth;		/* default LOAD_AUTH_CERTIFICATE (signed by the pool user CA) */
	char *key;			/* auth key: the private key file; required then */
	char *command;			/* NULL: the built-in command (health/loadparse.h) */
};

/*
 * The weights of the placement score (backends/score.h), each 0..1000. The users weight must be
 * above 0: it is the one term every instance has.
 */
struct placement_weights {
	double users, cpu, memory, gpu;
};
#define PG_PLACEMENT_WEIGHTS_DEFAULT ((struct placement_weights){ 1, 1, 1, 1 })

struct tls_cert_conf {
	char *cert, *key;	/* PEM files: certificate chain, private key */
};

/*
 * Connection limits by source address (core/ratelimit.h), in ssh.limits and http.limits:
 * connections not yet through their handshake ("startups") per source and in total.
 */
struct conn_limits_conf {
	uint32_t start, rate, full;	/* max_startups "start:rate:full" */
	uint32_t per_source;		/* per_source_startups; 0: no limit */
	uint32_t max_sources;		/* sources remembered */
	uint32_t ipv6_prefix;		/* IPv6 sources grouped by this prefix */
};

/* The HTTPS front door (proxy/http). */
struct http_conf {
	uint32_t max_connections;
	uint32_t header_timeout_ms;	/* a request head must arrive whole within this */
	uint32_t idle_timeout_ms;	/* keep-alive between requests, and body inactivity */
	uint32_t websocket_idle_timeout_ms;
	uint32_t connect_timeout_ms;	/* to an instance; past it: 504 */
	uint32_t response_timeout_ms;	/* request sent -> response head; past it: 504 */
	uint32_t max_header_bytes;	/* request line + headers; past it: 431 */
	uint32_t max_headers;		/* header count; past it: 431 */
	uint32_t max_request_line;	/* past it: 414 */
	char *cookie_name;
	uint32_t cookie_ttl_s;
	struct conn_limits_conf limits;	/* TLS handshakes not yet done */
};

enum ssh_upstream_mode { SSH_UP_CERTIFICATE, SSH_UP_KEY };
/* Front authentication methods, as bits (ssh.front_auth.methods). */
enum { SSH_FM_PUBLICKEY = 1, SSH_FM_PASSWORD = 2, SSH_FM_KBDINT = 4 };

/* ssh.front_auth.per_user[]: users matching one of the globs get these methods. */
struct ssh_method_rule {
	char **users;		/* fnmatch(3) globs on the user name */
	size_t nusers;
	unsigned methods;	/* SSH_FM_* bits, never 0 */
};
enum ssh_hostkey_check { SSH_HKC_KNOWN_HOSTS, SSH_HKC_TOFU };

/* ssh.limits: abuse limits of the SSH front door (docs/config.md). */
struct ssh_limits_conf {
	struct conn_limits_conf conn;	/* unauthenticated connections */
	uint32_t ident_timeout_ms;	/* accept -> the client's identification line */
	uint32_t kex_timeout_ms;	/* accept -> the first key exchange done */
	/* ssh.limits.penalty: failed authentication attempts per source (core/ratelimit.h) */
	uint32_t free_failures, delay_ms, max_delay_ms, half_life_ms, block_after, block_ms;
};

/* The SSH front door (proxy/ssh). Paths are NULL when unset; docs/config.md says what then. */
struct ssh_conf {
	char **host_keys;		/* private key files; none: state_dir/ssh_host_ed25519_key */
	size_t nhost_keys;
	char *authorized_keys;		/* path pattern, %u = user name, %% = % */
	char *trusted_user_ca_keys;	/* CA public keys whose user certificates log in */
	unsigned front_methods;		/* SSH_FM_* bits; default publickey */
	struct ssh_method_rule *method_rules;	/* first match wins over front_methods */
	size_t nmethod_rules;
	/* AuthorizedKeysCommand-style program: argv (%u, %% expanded per user); NULL when unset. */
	char **keys_command;
	size_t nkeys_command;
	char *keys_command_user;	/* run as this user; NULL: poolgate's own */
	uint32_t keys_command_timeout_ms;
	enum ssh_upstream_mode upstream_mode;
	char *ca_key;			/* pool user CA; none: state_dir/user_ca_ed25519 */
	char *upstream_key;		/* mode "key": the private key poolgate logs in with */
	char *known_hosts;		/* instances' host keys (OpenSSH known_hosts format) */
	enum ssh_hostkey_check host_key_check;
	uint32_t max_auth_tries;
	uint32_t login_grace_ms;
	uint32_t connect_timeout_ms;	/* to an instance's sshd, up to its ident + kex */
	uint32_t max_connections;
	struct ssh_limits_conf limits;
};

/* proxy_protocol: PROXY protocol headers (core/proxyproto.h) on the front doors' listeners. */
struct proxy_protocol_conf {
	int ssh, https, http;		/* listener kinds that expect it from trusted sources */
	struct pg_cidr *trusted;	/* the balancers allowed (and required) to send it */
	size_t ntrusted;
	uint32_t timeout_ms;		/* the whole header must arrive within this */
};

enum pin_store_kind { PIN_STORE_FILE, PIN_STORE_MEMORY };

/* The pin table and its store (backends/pins, backends/pinstore_file); docs/pins.md. */
struct pins_conf {
	uint32_t idle_ttl_s;		/* a pin idle this long, with no live session, expires */
	enum pin_store_kind store;	/* default PIN_STORE_FILE */
	uint32_t fsync_interval_ms;	/* group commit window of the file store */
	uint32_t journal_max_bytes;	/* the file store compacts past this */
};

struct pg_config {
	char **listen_ssh;	/* empty when the SSH front door is off */
	size_t nlisten_ssh;
	struct ssh_conf ssh;
	char **listen_admin;	/* "ip:port" strings */
	size_t nlisten_admin;
	char **listen_https;	/* empty when the HTTPS front door is off */
	size_t nlisten_https;
	char **listen_http;	/* plain-http listeners that redirect to https */
	size_t nlisten_http;
	struct tls_cert_conf *certs;	/* none: a self-signed one is made in state_dir */
	size_t ncerts;
	struct http_conf http;
	struct proxy_protocol_conf proxy_protocol;
	char *state_dir;
	char *user, *group;	/* bind, then drop to these (proxy/privdrop.h); NULL: stay as started */
	enum pg_log_level log_level;
	enum pg_log_format log_format;
	struct inst_conf *instances;
	size_t ninstances;
	char *discovery_file;	/* NULL when unset */
	uint32_t discovery_poll_ms;
	struct health_conf health;
	struct load_conf load;		/* "health.load" */
	struct placement_weights weights;	/* "placement.weights" */
	uint32_t admin_max_connections;
	uint32_t admin_request_timeout_ms;
	struct pins_conf pins;
	char *admin_token_file;	/* bearer token for admin actions; NULL: they are refused (403) */
	uint32_t shutdown_grace_ms;	/* SIGTERM: live sessions' time before they are closed */
	uint32_t busy_poll_us;		/* poll without sleeping this long after a read (busypoll.h) */
};

/*
 * Parses and validates the config text. On success returns 0 and sets *out (free it with
 * pg_config_free). On failure returns PG_EPARSE or PG_ENOMEM, writes a message naming the JSON path
 * into err, and leaves *out untouched.
 */
int pg_config_parse(const char *text, size_t len, struct pg_config **out, char *err, size_t errlen);

/* Writes "PATH: why" for a pg_read_file() error code into err. */
void pg_file_error(const char *path, int r, char *err, size_t errlen);

/* Reads path synchronously (start-up only) and parses it; errors name the file. */
int pg_config_load(const char *path, struct pg_config **out, char *err, size_t errlen);

/* The embedded defaults: what poolgate runs with when no -c is given. Returns 0 or PG_ENOMEM. */
int pg_config_default(struct pg_config **out);

void pg_config_free(struct pg_config *c);

/*
 * Parses a discovery file: {"instances": [ ...same objects as the config's instances... ]}.
 * On success returns 0 and sets *out / *n (free with inst_conf_free_array). Errors as above.
 */
int pg_discovery_parse(const char *text, size_t len, struct inst_conf **out, size_t *n,
    char *err, size_t errlen);

/*
 * Validates one instance object given as JSON text, by exactly the rules of the config's
 * instances[] entries (the admin API adds instances with it). On success returns 0 and fills *out
 * (free it with inst_conf_clear). On failure returns PG_EPARSE or PG_ENOMEM, writes "PATH: why"
 * into err and the JSON path alone ("ssh_port"; "" for the object as a whole) into field, and
 * leaves *out untouched.
 */
int pg_instance_parse(const char *text, size_t len, struct inst_conf *out, char *field,
    size_t fieldlen, char *err, size_t errlen);

/*
 * An operator's override of one instance's admin state (backends/instance.h says how overrides
 * and the config interact): the state in force, and the admin_state its source file gave when the
 * override was made.
 */
struct admin_override {
	char *id;
	enum inst_admin admin, base;
};

/*
 * Parses the admin state file that backends/adminstate.c writes in state_dir:
 *   {"version": 1,
 *    "overrides": [{"id": ID, "admin_state": STATE, "base": STATE}, ...],
 *    "instances": [ ...instances added through the admin API, as in the config... ]}
 * Both arrays are optional. On success returns 0 and sets the four outputs (free them with
 * pg_admin_overrides_free and inst_conf_free_array); errors as for pg_config_parse.
 */
int pg_admin_state_parse(const char *text, size_t len, struct admin_override **ov, size_t *nov,
    struct inst_conf **inst, size_t *ninst, char *err, size_t errlen);
void pg_admin_overrides_free(struct admin_override *ov, size_t n);

/* Deep-copies src into dst. Returns 0 or PG_ENOMEM (then dst holds nothing to free). */
int inst_conf_copy(struct inst_conf *dst, const struct inst_conf *src);
/* 1 when a and b describe the same endpoints (address, ports, TLS settings). */
int inst_conf_same_endpoint(const struct inst_conf *a, const struct inst_conf *b);
void inst_conf_clear(struct inst_conf *ic);
void inst_conf_free_array(struct inst_conf *a, size_t n);

/* 1 when s is a valid instance id (1..PG_ID_MAX bytes of [A-Za-z0-9._-]), else 0. */
int inst_id_ok(const char *s);

const char *inst_admin_name(enum inst_admin a);
const char *probe_check_name(enum probe_check c);
const char *load_auth_name(enum load_auth a);

#endif
