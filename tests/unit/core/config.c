/*
 * core/config.c: the strict JSON config and discovery parsers, and the inst_conf helpers.
 * Every error message must start with the JSON path it concerns (config.h); the error cases are one
 * table of (input, expected message prefix).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"

#define CHECKS_ALL ((1u << PROBE_TCP) | (1u << PROBE_SSH) | (1u << PROBE_HTTP))

static struct pg_config *
parse_ok(const char *json)
{
	struct pg_config *cfg = NULL;
	char err[512] = "";
	int r = pg_config_parse(json, strlen(json), &cfg, err, sizeof(err));

	if (r != 0)
		print_error("unexpected error: %s\n", err);
	assert_int_equal(r, 0);
	assert_non_null(cfg);
	return cfg;
}

static void
test_full_config(void **state)
{
	static const char json[] =
	    "{\n"
	    "  \"listen\": {\"admin\": [\"127.0.0.1:9191\", \"[::1]:9192\"]},\n"
	    "  \"state_dir\": \"/tmp/pg-state\",\n"
	    "  \"shutdown_grace_ms\": 2500,\n"
	    "  \"busy_poll_us\": 0,\n"
	    "  \"log\": {\"level\": \"debug\", \"format\": \"json\"},\n"
	    "  \"instances\": [\n"
	    "    {\"id\": \"dsvm-0\", \"address\": \"10.0.0.4\", \"ssh_port\": 2222,\n"
	    "     \"http_port\": 8443, \"http_tls\": true, \"http_tls_verify\": false,\n"
	    "     \"http_ca_file\": \"/etc/pg/ca.pem\", \"capacity\": 16,\n"
	    "     \"admin_state\": \"draining\", \"labels\": {\"zone\": \"1\", \"sku\": \"D4s\"}},\n"
	    "    {\"id\": \"dsvm_1.b\", \"address\": \"fd00::5\", \"admin_state\": \"maint\"}\n"
	    "  ],\n"
	    "  \"discovery\": {\"file\": \"/run/pg/discovery.json\", \"poll_ms\": 500},\n"
	    "  \"health\": {\"interval_ms\": 5000, \"timeout_ms\": 1500, \"rise\": 3, \"fall\": 4,\n"
	    "             \"jitter_pct\": 20, \"checks\": [\"tcp\", \"http\"], \"http_path\": \"/ping\"},\n"
	    "  \"admin\": {\"max_connections\": 10, \"request_timeout_ms\": 2000},\n"
	    "  \"pins\": {\"idle_ttl_s\": 3600, \"store\": \"memory\", \"fsync_interval_ms\": 50,\n"
	    "           \"journal_max_bytes\": 65536}\n"
	    "}\n";
	struct pg_config *cfg = parse_ok(json);
	const struct inst_conf *a, *b;

	assert_int_equal(cfg->nlisten_admin, 2);
	assert_string_equal(cfg->listen_admin[0], "127.0.0.1:9191");
	assert_string_equal(cfg->listen_admin[1], "[::1]:9192");
	assert_string_equal(cfg->state_dir, "/tmp/pg-state");
	assert_int_equal(cfg->shutdown_grace_ms, 2500);
	assert_int_equal(cfg->busy_poll_us, 0);
	assert_int_equal(cfg->log_level, PG_LOG_DEBUG);
	assert_int_equal(cfg->log_format, PG_LOG_JSON);

	assert_int_equal(cfg->ninstances, 2);
	a = &cfg->instances[0];
	assert_string_equal(a->id, "dsvm-0");
	assert_string_equal(a->address, "10.0.0.4");
	assert_int_equal(a->ssh_port, 2222);
	assert_int_equal(a->http_port, 8443);
	assert_int_equal(a->http_tls, 1);
	assert_int_equal(a->http_tls_verify, 0);
	assert_string_equal(a->http_ca_file, "/etc/pg/ca.pem");
	assert_int_equal(a->capacity, 16);
	assert_int_equal(a->admin, INST_DRAINING);
	assert_int_equal(a->nlabels, 2);
	assert_string_equal(a->labels[0].key, "zone");
	assert_string_equal(a->labels[0].value, "1");
	assert_string_equal(a->labels[1].key, "sku");
	assert_string_equal(a->labels[1].value, "D4s");
	b = &cfg->instances[1];
	assert_string_equal(b->id, "dsvm_1.b");
	assert_string_equal(b->address, "fd00::5");
	assert_int_equal(b->admin, INST_MAINT);

	assert_string_equal(cfg->discovery_file, "/run/pg/discovery.json");
	assert_int_equal(cfg->discovery_poll_ms, 500);
	assert_int_equal(cfg->health.interval_ms, 5000);
	assert_int_equal(cfg->health.timeout_ms, 1500);
	assert_int_equal(cfg->health.rise, 3);
	assert_int_equal(cfg->health.fall, 4);
	assert_int_equal(cfg->health.jitter_pct, 20);
	assert_int_equal(cfg->health.checks, (1u << PROBE_TCP) | (1u << PROBE_HTTP));
	assert_string_equal(cfg->health.http_path, "/ping");
	assert_int_equal(cfg->admin_max_connections, 10);
	assert_int_equal(cfg->admin_request_timeout_ms, 2000);
	assert_int_equal(cfg->pins.idle_ttl_s, 3600);
	assert_int_equal(cfg->pins.store, PIN_STORE_MEMORY);
	assert_int_equal(cfg->pins.fsync_interval_ms, 50);
	assert_int_equal(cfg->pins.journal_max_bytes, 65536);
	pg_config_free(cfg);
}

static void
check_defaults(const struct pg_config *cfg)
{
	assert_int_equal(cfg->nlisten_admin, 1);
	assert_string_equal(cfg->listen_admin[0], "127.0.0.1:9090");
	assert_string_equal(cfg->state_dir, "/var/lib/poolgate");
	assert_int_equal(cfg->shutdown_grace_ms, 10000);
	assert_int_equal(cfg->busy_poll_us, 50);
	assert_int_equal(cfg->log_level, PG_LOG_INFO);
	assert_int_equal(cfg->log_format, PG_LOG_TEXT);
	assert_null(cfg->discovery_file);
	assert_int_equal(cfg->discovery_poll_ms, 1000);
	assert_int_equal(cfg->health.interval_ms, 2000);
	assert_int_equal(cfg->health.timeout_ms, 1000);
	assert_int_equal(cfg->health.rise, 2);
	assert_int_equal(cfg->health.fall, 3);
	assert_int_equal(cfg->health.jitter_pct, 10);
	assert_int_equal(cfg->health.checks, CHECKS_ALL);
	assert_string_equal(cfg->health.http_path, "/hub/health");
	assert_int_equal(cfg->admin_max_connections, 64);
	assert_int_equal(cfg->admin_request_timeout_ms, 10000);
	assert_int_equal(cfg->pins.idle_ttl_s, 28800);
	assert_int_equal(cfg->pins.store, PIN_STORE_FILE);
	assert_int_equal(cfg->pins.fsync_interval_ms, 200);
	assert_int_equal(cfg->pins.journal_max_bytes, 8u << 20);
}

static void
test_defaults_empty_object(void **state)
{
	struct pg_config *cfg = parse_ok("{}");

	check_defaults(cfg);
	assert_int_equal(cfg->ninstances, 0);
	assert_null(cfg->instances);
	pg_config_free(cfg);
}

/* Present but partial objects keep the defaults of the keys they leave out. */
static void
test_defaults_partial_objects(void **state)
{
	struct pg_config *cfg = parse_ok("{\"health\": {\"rise\": 5}, \"log\": {}, \"admin\": {},"
	    " \"instances\": [{\"id\": \"a\", \"address\": \"192.0.2.1\"}]}");
	const struct inst_conf *ic = &cfg->instances[0];

	assert_int_equal(cfg->health.rise, 5);
	cfg->health.rise = 2;
	check_defaults(cfg);
	assert_int_equal(cfg->ninstances, 1);
	assert_int_equal(ic->ssh_port, 22);
	assert_int_equal(ic->http_port, 8000);
	assert_int_equal(ic->http_tls, 0);
	assert_int_equal(ic->http_tls_verify, 1);
	assert_null(ic->http_ca_file);
	assert_int_equal(ic->capacity, 8);
	assert_int_equal(ic->admin, INST_ACTIVE);
	assert_int_equal(ic->nlabels, 0);
	pg_config_free(cfg);
}

static void
test_builtin_default_matches(void **state)
{
	struct pg_config *cfg = NULL;

	assert_int_equal(pg_config_default(&cfg), 0);
	check_defaults(cfg);
	assert_int_equal(cfg->ninstances, 0);
	pg_config_free(cfg);
}

static void
test_ipv6_admin_listener(void **state)
{
	struct pg_config *cfg = parse_ok("{\"listen\": {\"admin\": [\"[::1]:9090\"]}}");

	assert_int_equal(cfg->nlisten_admin, 1);
	assert_string_equal(cfg->listen_admin[0], "[::1]:9090");
	pg_config_free(cfg);
}

static void
test_limits_inclusive(void **state)
{
	struct pg_config *cfg = parse_ok("{\"health\": {\"rise\": 1, \"fall\": 100, \"interval_ms\": 100,"
	    " \"timeout_ms\": 99}, \"instances\": [{\"id\": \"a\", \"address\": \"::1\", \"ssh_port\": 65535,"
	    " \"http_port\": 1}]}");

	assert_int_equal(cfg->health.rise, 1);
	assert_int_equal(cfg->health.fall, 100);
	assert_int_equal(cfg->health.timeout_ms, 99);
	assert_int_equal(cfg->instances[0].ssh_port, 65535);
	assert_int_equal(cfg->instances[0].http_port, 1);
	pg_config_free(cfg);
}

struct err_case {
	const char *name;
	const char *json;
	size_t len;		/* 0: strlen(json) */
	const char *prefix;	/* the message must start with this */
};

#define INST_A "{\"id\": \"a\", \"address\": \"192.0.2.1\""

static const struct err_case config_errors[] = {
	{ "unknown top-level key", "{\"bogus\": 1}", 0, "bogus: unknown key" },
	{ "unknown nested key", "{\"health\": {\"rise\": 2, \"bogus\": 1}}", 0,
	  "health.bogus: unknown key" },
	{ "unknown pins key", "{\"pins\": {\"ttl\": 2}}", 0, "pins.ttl: unknown key" },
	{ "pins store", "{\"pins\": {\"store\": \"redis\"}}", 0,
	  "pins.store: expected one of \"file\", \"memory\"" },
	{ "pins ttl zero", "{\"pins\": {\"idle_ttl_s\": 0}}", 0,
	  "pins.idle_ttl_s: expected an integer in 1..31536000" },
	{ "pins journal too small", "{\"pins\": {\"journal_max_bytes\": 100}}", 0,
	  "pins.journal_max_bytes: expected an integer in 4096..1073741824" },
	{ "pins fsync interval", "{\"pins\": {\"fsync_interval_ms\": 0}}", 0,
	  "pins.fsync_interval_ms: expected an integer in 1..60000" },
	{ "unknown instance key", "{\"instances\": [" INST_A ", \"sshport\": 22}]}", 0,
	  "instances[0].sshport: unknown key" },
	{ "wrong type", "{\"instances\": [" INST_A "}, {\"id\": \"b\", \"address\": \"192.0.2.2\","
	  " \"ssh_port\": \"22\"}]}", 0,
	  "instances[1].ssh_port: expected an integer in 1..65535" },
	{ "port out of range", "{\"instances\": [" INST_A ", \"ssh_port\": 70000}]}", 0,
	  "instances[0].ssh_port: expected an integer in 1..65535" },
	{ "busy poll too long", "{\"busy_poll_us\": 1001}", 0,
	  "busy_poll_us: expected an integer in 0..1000" },
	{ "port zero", "{\"instances\": [" INST_A ", \"http_port\": 0}]}", 0,
	  "instances[0].http_port: expected an integer in 1..65535" },
	{ "fractional port", "{\"instances\": [" INST_A ", \"ssh_port\": 22.5}]}", 0,
	  "instances[0].ssh_port: expected an integer" },
	{ "rise zero", "{\"health\": {\"rise\": 0}}", 0, "health.rise: expected an integer in 1..100" },
	{ "negative fall", "{\"health\": {\"fall\": -1}}", 0,
	  "health.fall: expected an integer in 1..100" },
	{ "bool expected", "{\"instances\": [" INST_A ", \"http_tls\": 1}]}", 0,
	  "instances[0].http_tls: expected true or false" },
	{ "duplicate top-level key", "{\"state_dir\": \"/a\", \"state_dir\": \"/b\"}", 0,
	  "state_dir: duplicate key" },
	{ "duplicate nested key", "{\"health\": {\"rise\": 2, \"fall\": 3, \"rise\": 4}}", 0,
	  "health.rise: duplicate key" },
	{ "duplicate instance key", "{\"instances\": [" INST_A ", \"id\": \"b\"}]}", 0,
	  "instances[0].id: duplicate key" },
	{ "duplicate label", "{\"instances\": [" INST_A ", \"labels\": {\"z\": \"1\", \"z\": \"2\"}}]}",
	  0, "instances[0].labels.z: duplicate key" },
	{ "duplicate instance id", "{\"instances\": [" INST_A "}, {\"id\": \"b\", \"address\": \"::1\"},"
	  " {\"id\": \"a\", \"address\": \"::2\"}]}", 0,
	  "instances[2].id: duplicate instance id \"a\" (also instances[0])" },
	{ "id with a space", "{\"instances\": [{\"id\": \"a b\", \"address\": \"::1\"}]}", 0,
	  "instances[0].id: expected 1..63 characters" },
	{ "id with a slash", "{\"instances\": [{\"id\": \"../x\", \"address\": \"::1\"}]}", 0,
	  "instances[0].id: expected 1..63 characters" },
	{ "id too long", "{\"instances\": [{\"id\": "
	  "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"address\": \"::1\"}]}",
	  0, "instances[0].id: expected 1..63 characters" },
	{ "id missing", "{\"instances\": [{\"address\": \"::1\"}]}", 0, "instances[0].id: required" },
	{ "empty id", "{\"instances\": [{\"id\": \"\", \"address\": \"::1\"}]}", 0,
	  "instances[0].id: must not be empty" },
	{ "host name for address", "{\"instances\": [{\"id\": \"a\", \"address\": \"example.com\"}]}", 0,
	  "instances[0].address: expected an IPv4 or IPv6 address, got \"example.com\"" },
	{ "address with port", "{\"instances\": [{\"id\": \"a\", \"address\": \"192.0.2.1:22\"}]}", 0,
	  "instances[0].address: expected an IPv4 or IPv6 address" },
	{ "invalid JSON", "{\n  \"state_dir\": \"/a\",\n  \"log\": {\"level\": }\n}\n", 0,
	  "(top level): invalid JSON near line 3 column 20" },
	{ "invalid JSON on line 1", "{\"a\" 1}", 0, "(top level): invalid JSON near line 1 column 6" },
	{ "empty input", "", 0, "(top level): invalid JSON" },
	{ "trailing garbage", "{\"state_dir\": \"/a\"} x", 0,
	  "(top level): trailing data after the JSON value" },
	{ "second value", "{} {}", 0, "(top level): trailing data after the JSON value" },
	{ "NUL byte", "{\"state_dir\": \"/a\"}\0", 20, "(top level): file contains a NUL byte" },
	{ "NUL inside a string", "{\"state_dir\": \"/a\0b\"}", 21,
	  "(top level): file contains a NUL byte" },
	{ "not an object", "[1, 2]", 0, "(top level): expected a JSON object" },
	{ "timeout equals interval", "{\"health\": {\"interval_ms\": 1000, \"timeout_ms\": 1000}}", 0,
	  "health.timeout_ms: must be less than interval_ms (1000)" },
	{ "timeout above default interval", "{\"health\": {\"timeout_ms\": 2500}}", 0,
	  "health.timeout_ms: must be less than interval_ms (2000)" },
	{ "ca file without tls", "{\"instances\": [" INST_A ", \"http_ca_file\": \"/ca.pem\"}]}", 0,
	  "instances[0].http_ca_file: only meaningful with \"http_tls\": true" },
	{ "unknown check", "{\"health\": {\"checks\": [\"tcp\", \"icmp\"]}}", 0,
	  "health.checks[1]: expected one of \"tcp\", \"ssh\", \"http\"" },
	{ "empty checks", "{\"health\": {\"checks\": []}}", 0,
	  "health.checks: expected a non-empty array of strings" },
	{ "http_path without slash", "{\"health\": {\"http_path\": \"hub\"}}", 0,
	  "health.http_path: must start with /" },
	{ "admin listener not ip:port", "{\"listen\": {\"admin\": [\"localhost:9090\"]}}", 0,
	  "listen.admin[0]: expected \"ip:port\" or \"[ipv6]:port\", got \"localhost:9090\"" },
	{ "admin listener without port", "{\"listen\": {\"admin\": [\"127.0.0.1\"]}}", 0,
	  "listen.admin[0]: expected \"ip:port\"" },
	{ "second admin listener", "{\"listen\": {\"admin\": [\"[::1]:9090\", \"::1:9090\"]}}", 0,
	  "listen.admin[1]: expected \"ip:port\"" },
	{ "admin listener not a string", "{\"listen\": {\"admin\": [9090]}}", 0,
	  "listen.admin[0]: expected a non-empty string" },
	{ "bad enum", "{\"log\": {\"level\": \"verbose\"}}", 0,
	  "log.level: expected one of \"debug\", \"info\", \"notice\", \"warn\", \"error\"" },
	{ "bad admin state", "{\"instances\": [" INST_A ", \"admin_state\": \"off\"}]}", 0,
	  "instances[0].admin_state: expected one of \"active\", \"draining\", \"maint\"" },
	{ "object expected", "{\"health\": []}", 0, "health: expected an object" },
	{ "instances not an array", "{\"instances\": {}}", 0,
	  "instances: expected an array of instance objects" },
	{ "instance not an object", "{\"instances\": [" INST_A "}, 3]}", 0,
	  "instances[1]: expected an object" },
	{ "label value not a string", "{\"instances\": [" INST_A ", \"labels\": {\"n\": 1}}]}", 0,
	  "instances[0].labels.n: expected a string" },
	{ "discovery without file", "{\"discovery\": {\"poll_ms\": 500}}", 0, "discovery.file: required" },
	{ "ssh unknown key", "{\"ssh\": {\"hostkeys\": []}}", 0, "ssh.hostkeys: unknown key" },
	{ "ssh listener bad", "{\"listen\": {\"ssh\": [\"x:22\"]}}", 0, "listen.ssh[0]: expected" },
	{ "ssh pattern without %u", "{\"ssh\": {\"front_auth\": {\"authorized_keys\": \"/a/b\"}}}", 0,
	  "ssh.front_auth.authorized_keys: must contain %u" },
	{ "ssh pattern bad escape", "{\"ssh\": {\"front_auth\": {\"authorized_keys\": \"/%h/%u\"}}}",
	  0, "ssh.front_auth.authorized_keys: only %u and %% may follow %" },
	{ "ssh front_auth unknown", "{\"ssh\": {\"front_auth\": {\"method\": []}}}", 0,
	  "ssh.front_auth.method: unknown key" },
	{ "ssh methods empty", "{\"ssh\": {\"front_auth\": {\"methods\": []}}}", 0,
	  "ssh.front_auth.methods: expected a non-empty array" },
	{ "ssh methods unknown", "{\"ssh\": {\"front_auth\": {\"methods\": [\"hostbased\"]}}}",
	  0, "ssh.front_auth.methods[0]: expected \"publickey\"" },
	{ "ssh methods twice", "{\"ssh\": {\"front_auth\": {\"methods\": [\"password\", "
	  "\"password\"]}}}", 0, "ssh.front_auth.methods[1]: \"password\" given twice" },
	{ "ssh per_user not array", "{\"ssh\": {\"front_auth\": {\"per_user\": {}}}}", 0,
	  "ssh.front_auth.per_user: expected an array" },
	{ "ssh per_user no methods", "{\"ssh\": {\"front_auth\": {\"per_user\": [{\"users\": "
	  "[\"a*\"]}]}}}", 0, "ssh.front_auth.per_user[0]: needs both" },
	{ "ssh per_user unknown key", "{\"ssh\": {\"front_auth\": {\"per_user\": [{\"user\": "
	  "[\"a*\"]}]}}}", 0, "ssh.front_auth.per_user[0].user: unknown key" },
	{ "ssh per_user bad method", "{\"ssh\": {\"front_auth\": {\"per_user\": [{\"users\": "
	  "[\"a*\"], \"methods\": [\"none\"]}]}}}", 0,
	  "ssh.front_auth.per_user[0].methods[0]: expected" },
	{ "ssh keys command missing", "{\"ssh\": {\"front_auth\": {\"authorized_keys_command\": "
	  "{\"timeout_ms\": 1000}}}}", 0, "ssh.front_auth.authorized_keys_command.command: required" },
	{ "ssh keys command relative", "{\"ssh\": {\"front_auth\": {\"authorized_keys_command\": "
	  "{\"command\": [\"keys\", \"%u\"]}}}}", 0,
	  "ssh.front_auth.authorized_keys_command.command: the program must be an absolute path" },
	{ "ssh keys command escape", "{\"ssh\": {\"front_auth\": {\"authorized_keys_command\": "
	  "{\"command\": [\"/k\", \"%h\"]}}}}", 0,
	  "ssh.front_auth.authorized_keys_command.command[1]: only %u and %% may follow %" },
	/* A '%' at the very end used to make the check read past the string (found by fuzz-config). */
	{ "ssh keys command trailing percent", "{\"ssh\": {\"front_auth\": "
	  "{\"authorized_keys_command\": {\"command\": [\"/k\", \"e%\"]}}}}", 0,
	  "ssh.front_auth.authorized_keys_command.command[1]: only %u and %% may follow %" },
	{ "ssh keys command timeout", "{\"ssh\": {\"front_auth\": {\"authorized_keys_command\": "
	  "{\"command\": [\"/k\"], \"timeout_ms\": 5}}}}", 0,
	  "ssh.front_auth.authorized_keys_command.timeout_ms: expected an integer in 100..600000" },
	{ "ssh keys command unknown", "{\"ssh\": {\"front_auth\": {\"authorized_keys_command\": "
	  "{\"command\": [\"/k\"], \"user\": \"x\"}}}}", 0,
	  "ssh.front_auth.authorized_keys_command.user: unknown key" },
	{ "ssh bad mode", "{\"ssh\": {\"upstream_auth\": {\"mode\": \"password\"}}}", 0,
	  "ssh.upstream_auth.mode: expected one of \"certificate\", \"key\"" },
	{ "ssh key mode without key", "{\"ssh\": {\"upstream_auth\": {\"mode\": \"key\"}}}", 0,
	  "ssh.upstream_auth.key: required when mode is \"key\"" },
	{ "ssh bad check", "{\"ssh\": {\"host_key_check\": \"none\"}}", 0,
	  "ssh.host_key_check: expected one of \"known_hosts\", \"tofu\"" },
	{ "ssh max_auth_tries 0", "{\"ssh\": {\"max_auth_tries\": 0}}", 0,
	  "ssh.max_auth_tries: expected an integer in 1..100" },
	{ "ssh grace too short", "{\"ssh\": {\"login_grace_ms\": 5}}", 0,
	  "ssh.login_grace_ms: expected an integer in 1000..3600000" },
	{ "ssh host_keys not strings", "{\"ssh\": {\"host_keys\": [1]}}", 0,
	  "ssh.host_keys[0]: expected a non-empty string" },
	{ "load unknown key", "{\"health\": {\"load\": {\"period\": 1}}}", 0,
	  "health.load.period: unknown key" },
	{ "load enabled without user", "{\"health\": {\"load\": {\"enabled\": true}}}", 0,
	  "health.load.user: required when the load probe is enabled" },
	{ "load key auth without key", "{\"health\": {\"load\": {\"auth\": \"key\"}}}", 0,
	  "health.load.key: required when auth is \"key\"" },
	{ "load key with certificate", "{\"health\": {\"load\": {\"key\": \"/k\"}}}", 0,
	  "health.load.key: only meaningful with \"auth\": \"key\"" },
	{ "load bad auth", "{\"health\": {\"load\": {\"auth\": \"password\"}}}", 0,
	  "health.load.auth: expected one of \"certificate\", \"key\"" },
	{ "load timeout above interval", "{\"health\": {\"load\": {\"interval_ms\": 2000, "
	  "\"timeout_ms\": 2000}}}", 0, "health.load.timeout_ms: must be less than interval_ms" },
	{ "load interval too short", "{\"health\": {\"load\": {\"interval_ms\": 500}}}", 0,
	  "health.load.interval_ms: expected an integer in 1000..3600000" },
	{ "load bad user", "{\"health\": {\"load\": {\"user\": \"a b\"}}}", 0,
	  "health.load.user: not a valid user name" },
	{ "placement unknown key", "{\"placement\": {\"weight\": {}}}", 0,
	  "placement.weight: unknown key" },
	{ "placement unknown weight", "{\"placement\": {\"weights\": {\"disk\": 1}}}", 0,
	  "placement.weights.disk: unknown key" },
	{ "placement weight not a number", "{\"placement\": {\"weights\": {\"cpu\": \"1\"}}}",
	  0, "placement.weights.cpu: expected a number in 0..1000" },
	{ "placement negative weight", "{\"placement\": {\"weights\": {\"gpu\": -1}}}", 0,
	  "placement.weights.gpu: expected a number in 0..1000" },
	{ "placement users weight zero", "{\"placement\": {\"weights\": {\"users\": 0}}}", 0,
	  "placement.weights.users: must be above 0" },
	{ "ssh limits unknown", "{\"ssh\": {\"limits\": {\"max_startup\": \"1\"}}}", 0,
	  "ssh.limits.max_startup: unknown key" },
	{ "startups start > full", "{\"ssh\": {\"limits\": {\"max_startups\": \"20:30:10\"}}}", 0,
	  "ssh.limits.max_startups: expected \"start:rate:full\"" },
	{ "startups two fields", "{\"ssh\": {\"limits\": {\"max_startups\": \"1:2\"}}}", 0,
	  "ssh.limits.max_startups: expected" },
	{ "startups trailing colon", "{\"ssh\": {\"limits\": {\"max_startups\": \"1:2:3:\"}}}",
	  0, "ssh.limits.max_startups: expected" },
	{ "startups rate", "{\"http\": {\"limits\": {\"max_startups\": \"1:101:3\"}}}", 0,
	  "http.limits.max_startups: expected" },
	{ "startups zero", "{\"http\": {\"limits\": {\"max_startups\": \"0\"}}}", 0,
	  "http.limits.max_startups: expected" },
	{ "startups sign", "{\"http\": {\"limits\": {\"max_startups\": \"-1:3:4\"}}}", 0,
	  "http.limits.max_startups: expected" },
	{ "penalty max below delay",
	  "{\"ssh\": {\"limits\": {\"penalty\": {\"delay_ms\": 900, \"max_delay_ms\": 800}}}}", 0,
	  "ssh.limits.penalty.max_delay_ms: must be at least delay_ms (900)" },
	{ "penalty unknown", "{\"ssh\": {\"limits\": {\"penalty\": {\"delay\": 1}}}}", 0,
	  "ssh.limits.penalty.delay: unknown key" },
	{ "ipv6 prefix", "{\"ssh\": {\"limits\": {\"ipv6_prefix\": 0}}}", 0,
	  "ssh.limits.ipv6_prefix: expected an integer in 1..128" },
	{ "pp without trusted", "{\"proxy_protocol\": {\"ssh\": true}}", 0,
	  "proxy_protocol.trusted: required" },
	{ "pp bad cidr", "{\"proxy_protocol\": {\"trusted\": [\"10.0.0.0/8\", \"10.0.0.1/8\"]}}", 0,
	  "proxy_protocol.trusted[1]: expected an IP address or a block" },
	{ "pp not bool", "{\"proxy_protocol\": {\"https\": 1, \"trusted\": [\"10.0.0.1\"]}}", 0,
	  "proxy_protocol.https: expected true or false" },
	{ "pp unknown", "{\"proxy_protocol\": {\"smtp\": true}}", 0,
	  "proxy_protocol.smtp: unknown key" },
};

static void
test_load_and_placement(void **state)
{
	struct pg_config *cfg = parse_ok("{}");

	assert_false(cfg->load.enabled);
	assert_int_equal(cfg->load.interval_ms, 15000);
	assert_int_equal(cfg->load.timeout_ms, 5000);
	assert_int_equal(cfg->load.auth, LOAD_AUTH_CERTIFICATE);
	assert_null(cfg->load.user);
	assert_null(cfg->load.command);
	assert_true(cfg->weights.users == 1 && cfg->weights.cpu == 1 && cfg->weights.memory == 1 &&
	    cfg->weights.gpu == 1);
	pg_config_free(cfg);
	cfg = parse_ok("{\"health\": {\"load\": {\"enabled\": true, \"interval_ms\": 20000, "
	    "\"timeout_ms\": 3000, \"user\": \"probe\", \"auth\": \"key\", \"key\": \"/k\", "
	    "\"command\": \"cat /x\"}}, \"placement\": {\"weights\": {\"users\": 2, "
	    "\"cpu\": 0.5, \"memory\": 0, \"gpu\": 10}}}");
	assert_true(cfg->load.enabled);
	assert_int_equal(cfg->load.interval_ms, 20000);
	assert_int_equal(cfg->load.timeout_ms, 3000);
	assert_string_equal(cfg->load.user, "probe");
	assert_int_equal(cfg->load.auth, LOAD_AUTH_KEY);
	assert_string_equal(cfg->load.key, "/k");
	assert_string_equal(cfg->load.command, "cat /x");
	assert_true(cfg->weights.users == 2 && cfg->weights.cpu == 0.5 && cfg->weights.memory == 0 &&
	    cfg->weights.gpu == 10);
	assert_string_equal(load_auth_name(LOAD_AUTH_KEY), "key");
	pg_config_free(cfg);
}

static void
test_ssh_defaults(void **state)
{
	struct pg_config *cfg = parse_ok("{}");

	assert_int_equal(cfg->nlisten_ssh, 1);
	assert_string_equal(cfg->listen_ssh[0], "0.0.0.0:2222");
	assert_int_equal(cfg->ssh.nhost_keys, 0);
	assert_null(cfg->ssh.authorized_keys);
	assert_int_equal(cfg->ssh.upstream_mode, SSH_UP_CERTIFICATE);
	assert_null(cfg->ssh.ca_key);
	assert_null(cfg->ssh.known_hosts);
	assert_int_equal(cfg->ssh.host_key_check, SSH_HKC_KNOWN_HOSTS);
	assert_int_equal(cfg->ssh.max_auth_tries, 6);
	assert_int_equal(cfg->ssh.login_grace_ms, 120000);
	assert_int_equal(cfg->ssh.front_methods, SSH_FM_PUBLICKEY);
	assert_int_equal(cfg->ssh.nmethod_rules, 0);
	assert_null(cfg->ssh.keys_command);
	assert_int_equal(cfg->ssh.keys_command_timeout_ms, 5000);
	assert_int_equal(cfg->ssh.limits.conn.start, 100);
	assert_int_equal(cfg->ssh.limits.conn.rate, 30);
	assert_int_equal(cfg->ssh.limits.conn.full, 1000);
	assert_int_equal(cfg->ssh.limits.conn.per_source, 20);
	assert_int_equal(cfg->ssh.limits.ident_timeout_ms, 10000);
	assert_int_equal(cfg->ssh.limits.kex_timeout_ms, 30000);
	assert_int_equal(cfg->ssh.limits.block_after, 20);
	assert_int_equal(cfg->http.limits.full, 1000);
	assert_int_equal(cfg->proxy_protocol.ssh, 0);
	assert_int_equal(cfg->proxy_protocol.ntrusted, 0);
	assert_int_equal(cfg->proxy_protocol.timeout_ms, 3000);
	pg_config_free(cfg);
}

static void
test_limits_and_proxy_protocol(void **state)
{
	struct pg_config *cfg = parse_ok("{\"ssh\": {\"limits\": {\"max_startups\": \"5:50:60\","
	    " \"per_source_startups\": 0, \"max_sources\": 100, \"ipv6_prefix\": 128,"
	    " \"ident_timeout_ms\": 100, \"kex_timeout_ms\": 200, \"penalty\": {\"free_failures\": 0,"
	    " \"delay_ms\": 0, \"max_delay_ms\": 0, \"half_life_ms\": 1000, \"block_after\": 0,"
	    " \"block_ms\": 1000}}}, \"http\": {\"limits\": {\"max_startups\": \"7\"}},"
	    " \"proxy_protocol\": {\"ssh\": true, \"https\": false, \"http\": true,"
	    " \"trusted\": [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\"], \"timeout_ms\": 500}}");
	const struct ssh_limits_conf *l = &cfg->ssh.limits;

	assert_int_equal(l->conn.start, 5);
	assert_int_equal(l->conn.rate, 50);
	assert_int_equal(l->conn.full, 60);
	assert_int_equal(l->conn.per_source, 0);
	assert_int_equal(l->conn.max_sources, 100);
	assert_int_equal(l->conn.ipv6_prefix, 128);
	assert_int_equal(l->ident_timeout_ms, 100);
	assert_int_equal(l->kex_timeout_ms, 200);
	assert_int_equal(l->delay_ms, 0);
	assert_int_equal(l->block_after, 0);
	/* One number is a hard limit: full:100:full. */
	assert_int_equal(cfg->http.limits.start, 7);
	assert_int_equal(cfg->http.limits.rate, 100);
	assert_int_equal(cfg->http.limits.full, 7);
	assert_int_equal(cfg->http.limits.per_source, 200);
	assert_int_equal(cfg->proxy_protocol.ssh, 1);
	assert_int_equal(cfg->proxy_protocol.https, 0);
	assert_int_equal(cfg->proxy_protocol.http, 1);
	assert_int_equal(cfg->proxy_protocol.ntrusted, 3);
	assert_int_equal(cfg->proxy_protocol.trusted[1].bits, 32);
	assert_int_equal(cfg->proxy_protocol.trusted[2].bits, 32);
	assert_int_equal(cfg->proxy_protocol.timeout_ms, 500);
	pg_config_free(cfg);
}

static void
test_ssh_full(void **state)
{
	struct pg_config *cfg = parse_ok("{\"listen\": {\"ssh\": []}, \"ssh\": {"
	    "\"host_keys\": [\"/k1\", \"/k2\"],"
	    "\"front_auth\": {\"authorized_keys\": \"/home/%u/.ssh/authorized_keys\","
	    " \"trusted_user_ca_keys\": \"/etc/pg/user_ca.pub\","
	    " \"methods\": [\"password\", \"keyboard-interactive\"],"
	    " \"per_user\": [{\"users\": [\"svc-*\", \"ops\"], \"methods\": [\"publickey\"]}],"
	    " \"authorized_keys_command\": {\"command\": [\"/bin/keys\", \"%u\", \"100%%\"],"
	    " \"run_as\": \"nobody\", \"timeout_ms\": 2000}},"
	    "\"upstream_auth\": {\"mode\": \"key\", \"key\": \"/up\", \"ca_key\": \"/ca\"},"
	    "\"known_hosts\": \"/kh\", \"host_key_check\": \"tofu\", \"max_auth_tries\": 3,"
	    "\"login_grace_ms\": 5000}}");

	assert_int_equal(cfg->nlisten_ssh, 0);
	assert_int_equal(cfg->ssh.nhost_keys, 2);
	assert_string_equal(cfg->ssh.host_keys[1], "/k2");
	assert_string_equal(cfg->ssh.authorized_keys, "/home/%u/.ssh/authorized_keys");
	assert_string_equal(cfg->ssh.trusted_user_ca_keys, "/etc/pg/user_ca.pub");
	assert_int_equal(cfg->ssh.upstream_mode, SSH_UP_KEY);
	assert_string_equal(cfg->ssh.upstream_key, "/up");
	assert_string_equal(cfg->ssh.ca_key, "/ca");
	assert_string_equal(cfg->ssh.known_hosts, "/kh");
	assert_int_equal(cfg->ssh.host_key_check, SSH_HKC_TOFU);
	assert_int_equal(cfg->ssh.max_auth_tries, 3);
	assert_int_equal(cfg->ssh.login_grace_ms, 5000);
	assert_int_equal(cfg->ssh.front_methods, SSH_FM_PASSWORD | SSH_FM_KBDINT);
	assert_int_equal(cfg->ssh.nmethod_rules, 1);
	assert_int_equal(cfg->ssh.method_rules[0].nusers, 2);
	assert_string_equal(cfg->ssh.method_rules[0].users[1], "ops");
	assert_int_equal(cfg->ssh.method_rules[0].methods, SSH_FM_PUBLICKEY);
	assert_int_equal(cfg->ssh.nkeys_command, 3);
	assert_string_equal(cfg->ssh.keys_command[2], "100%%");
	assert_string_equal(cfg->ssh.keys_command_user, "nobody");
	assert_int_equal(cfg->ssh.keys_command_timeout_ms, 2000);
	pg_config_free(cfg);
}

static void
run_error_case(const struct err_case *ec)
{
	struct pg_config *sentinel = (struct pg_config *)&sentinel, *cfg = sentinel;
	size_t len = ec->len ? ec->len : strlen(ec->json);
	char err[512] = "";
	int r;

	r = pg_config_parse(ec->json, len, &cfg, err, sizeof(err));
	if (r != PG_EPARSE || strncmp(err, ec->prefix, strlen(ec->prefix)) != 0)
		print_error("case \"%s\":\n  got      %d \"%s\"\n  expected %d \"%s...\"\n", ec->name, r,
		    err, PG_EPARSE, ec->prefix);
	assert_int_equal(r, PG_EPARSE);
	assert_true(strncmp(err, ec->prefix, strlen(ec->prefix)) == 0);
	/* Out-parameters are set only on success. */
	assert_ptr_equal(cfg, sentinel);
}

static void
test_config_errors(void **state)
{
	for (size_t i = 0; i < sizeof(config_errors) / sizeof(config_errors[0]); i++)
		run_error_case(&config_errors[i]);
}

/* A message that does not fit is cut, never overrun. */
static void
test_error_truncated(void **state)
{
	char err[8];
	struct pg_config *cfg = NULL;

	memset(err, 'x', sizeof(err));
	assert_int_equal(pg_config_parse("{\"bogus\": 1}", 12, &cfg, err, sizeof(err)), PG_EPARSE);
	assert_string_equal(err, "bogus: ");
	assert_null(cfg);
}

static void
test_discovery_valid(void **state)
{
	static const char json[] = "{\"instances\": [{\"id\": \"d0\", \"address\": \"198.51.100.7\","
	    " \"capacity\": 4}, {\"id\": \"d1\", \"address\": \"2001:db8::7\", \"http_tls\": true}]}";
	struct inst_conf *arr = NULL;
	size_t n = 0;
	char err[256] = "";

	assert_int_equal(pg_discovery_parse(json, strlen(json), &arr, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(arr[0].id, "d0");
	assert_string_equal(arr[0].address, "198.51.100.7");
	assert_int_equal(arr[0].capacity, 4);
	assert_int_equal(arr[0].ssh_port, 22);
	assert_string_equal(arr[1].id, "d1");
	assert_int_equal(arr[1].http_tls, 1);
	assert_int_equal(arr[1].http_port, 8000);
	inst_conf_free_array(arr, n);
}

static void
test_discovery_empty(void **state)
{
	struct inst_conf *arr = (struct inst_conf *)&arr;
	size_t n = 99;
	char err[256] = "";

	assert_int_equal(pg_discovery_parse("{\"instances\": []}", 17, &arr, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_null(arr);
}

static void
test_discovery_errors(void **state)
{
	static const struct err_case cases[] = {
		{ "missing instances", "{}", 0, "instances: required" },
		{ "bad address", "{\"instances\": [{\"id\": \"d0\", \"address\": \"not-an-ip\"}]}", 0,
		  "instances[0].address: expected an IPv4 or IPv6 address" },
		{ "unknown key", "{\"instances\": [], \"extra\": 1}", 0, "extra: unknown key" },
		{ "not an object", "[]", 0, "(top level): expected a JSON object" },
		{ "truncated", "{\"instances\": [", 0, "(top level): invalid JSON near line 1" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct inst_conf *sentinel = (struct inst_conf *)&sentinel, *arr = sentinel;
		size_t n = 99;
		char err[256] = "";
		int r = pg_discovery_parse(cases[i].json, strlen(cases[i].json), &arr, &n, err,
		    sizeof(err));

		if (r != PG_EPARSE || strncmp(err, cases[i].prefix, strlen(cases[i].prefix)) != 0)
			print_error("case \"%s\": got %d \"%s\"\n", cases[i].name, r, err);
		assert_int_equal(r, PG_EPARSE);
		assert_true(strncmp(err, cases[i].prefix, strlen(cases[i].prefix)) == 0);
		assert_ptr_equal(arr, sentinel);
		assert_int_equal(n, 99);
	}
}

static void
test_conf_copy(void **state)
{
	char id[] = "dsvm-3", address[] = "10.1.2.3", ca[] = "/ca.pem";
	char k0[] = "zone", v0[] = "eu-1", k1[] = "sku", v1[] = "D4";
	struct inst_label labels[2] = { { k0, v0 }, { k1, v1 } };
	struct inst_conf src = { .id = id, .address = address, .ssh_port = 2200, .http_port = 443,
		.http_tls = 1, .http_tls_verify = 1, .http_ca_file = ca, .capacity = 12,
		.admin = INST_DRAINING, .labels = labels, .nlabels = 2 };
	struct inst_conf dst;

	assert_int_equal(inst_conf_copy(&dst, &src), 0);
	/* A deep copy: equal values in memory of its own. */
	assert_true(dst.id != src.id && dst.address != src.address && dst.labels != src.labels);
	assert_true(dst.http_ca_file != src.http_ca_file);
	assert_string_equal(dst.id, "dsvm-3");
	assert_string_equal(dst.address, "10.1.2.3");
	assert_string_equal(dst.http_ca_file, "/ca.pem");
	assert_int_equal(dst.ssh_port, 2200);
	assert_int_equal(dst.http_port, 443);
	assert_int_equal(dst.http_tls, 1);
	assert_int_equal(dst.http_tls_verify, 1);
	assert_int_equal(dst.capacity, 12);
	assert_int_equal(dst.admin, INST_DRAINING);
	assert_int_equal(dst.nlabels, 2);
	id[0] = 'X';
	labels[0].value[0] = 'E';
	assert_string_equal(dst.id, "dsvm-3");
	assert_string_equal(dst.labels[0].key, "zone");
	assert_string_equal(dst.labels[0].value, "eu-1");
	assert_string_equal(dst.labels[1].key, "sku");
	assert_string_equal(dst.labels[1].value, "D4");
	assert_int_equal(inst_conf_same_endpoint(&dst, &src), 1);
	inst_conf_clear(&dst);
	assert_null(dst.id);
	assert_int_equal(dst.nlabels, 0);
}

static void
test_conf_copy_minimal(void **state)
{
	char id[] = "a", address[] = "::1";
	struct inst_conf src = { .id = id, .address = address, .ssh_port = 22, .http_port = 8000 };
	struct inst_conf dst;

	assert_int_equal(inst_conf_copy(&dst, &src), 0);
	assert_null(dst.http_ca_file);
	assert_null(dst.labels);
	assert_int_equal(dst.nlabels, 0);
	assert_string_equal(dst.address, "::1");
	inst_conf_clear(&dst);
}

static void
test_same_endpoint(void **state)
{
	char a1[] = "10.0.0.1", a2[] = "10.0.0.2", ca1[] = "/a.pem", ca2[] = "/b.pem";
	struct inst_label l = { "k", "v" };
	const struct inst_conf base = { .id = "x", .address = a1, .ssh_port = 22, .http_port = 8000,
		.http_tls = 1, .http_tls_verify = 1, .http_ca_file = ca1, .capacity = 8 };
	struct inst_conf o;

	o = base;
	assert_int_equal(inst_conf_same_endpoint(&base, &o), 1);
	/* Neither capacity, admin state, labels nor the id are part of the endpoint. */
	o.capacity = 99;
	o.admin = INST_MAINT;
	o.labels = &l;
	o.nlabels = 1;
	o.id = "y";
	assert_int_equal(inst_conf_same_endpoint(&base, &o), 1);

	o = base;
	o.address = a2;
	assert_int_equal(inst_conf_same_endpoint(&base, &o), 0);
	o = base;
	o.ssh_port = 2222;
	assert_int_equal(inst_conf_same_endpoint(&base, &o), 0);
	o = base;
	o.http_port = 8001;
	assert_int_equal(inst_conf_same_endpoint(&base, &o), 0);
	o = base;
	o.http_tls = 0;
	assert_int_equal(inst_conf_same_endpoint(&base, &o), 0);
	o = base;
	o.http_tls_verify = 0;
	assert_int_equal(inst_conf_same_endpoint(&base, &o), 0);
	o = base;
	o.http_ca_file = ca2;
	assert_int_equal(inst_conf_same_endpoint(&base, &o), 0);
	o = base;
	o.http_ca_file = NULL;
	assert_int_equal(inst_conf_same_endpoint(&base, &o), 0);
	assert_int_equal(inst_conf_same_endpoint(&o, &base), 0);
	o.http_ca_file = NULL;
	{
		struct inst_conf p = o;
		assert_int_equal(inst_conf_same_endpoint(&o, &p), 1);
	}
}


static void
test_admin_token_file(void **state)
{
	struct pg_config *cfg = parse_ok("{}");

	assert_null(cfg->admin_token_file);
	pg_config_free(cfg);
	cfg = parse_ok("{\"admin\": {\"token_file\": \"/etc/poolgate/admin.token\"}}");
	assert_string_equal(cfg->admin_token_file, "/etc/poolgate/admin.token");
	pg_config_free(cfg);
}

static int
instance_parse(const char *json, struct inst_conf *ic, char *field, char *err)
{
	return pg_instance_parse(json, strlen(json), ic, field, 64, err, 256);
}

/* One instance object, by the config's own rules; the field of an error comes apart. */
static void
test_instance_parse(void **state)
{
	struct inst_conf ic;
	char field[64], err[256];

	assert_int_equal(instance_parse("{\"id\": \"n1\", \"address\": \"10.0.0.5\", "
	    "\"capacity\": 3, \"labels\": {\"zone\": \"c\"}}", &ic, field, err), 0);
	assert_string_equal(ic.id, "n1");
	assert_int_equal(ic.capacity, 3);
	assert_int_equal(ic.ssh_port, 22);
	assert_int_equal(ic.nlabels, 1);
	inst_conf_clear(&ic);
	assert_int_equal(instance_parse("{\"id\": \"n1\", \"address\": \"10.0.0.5\", "
	    "\"ssh_port\": 0}", &ic, field, err), PG_EPARSE);
	assert_string_equal(field, "ssh_port");
	assert_string_equal(err, "ssh_port: expected an integer in 1..65535");
	assert_int_equal(instance_parse("{\"id\": \"n1\", \"address\": \"10.0.0.5\", "
	    "\"labels\": {\"zone\": 1}}", &ic, field, err), PG_EPARSE);
	assert_string_equal(field, "labels.zone");
	assert_int_equal(instance_parse("{\"address\": \"10.0.0.5\"}", &ic, field, err),
	    PG_EPARSE);
	assert_string_equal(field, "id");
	assert_string_equal(err, "id: required");
	assert_int_equal(instance_parse("[]", &ic, field, err), PG_EPARSE);
	assert_string_equal(field, "");
	assert_int_equal(instance_parse("{\"id\": \"n1\", \"address\": \"10.0.0.5\"} {}", &ic,
	    field, err), PG_EPARSE);
	assert_int_equal(instance_parse("", &ic, field, err), PG_EPARSE);
}

static int
state_parse(const char *json, struct admin_override **ov, size_t *nov, struct inst_conf **in,
    size_t *nin, char *err)
{
	return pg_admin_state_parse(json, strlen(json), ov, nov, in, nin, err, 256);
}

static void
test_admin_state_parse(void **state)
{
	struct admin_override *ov = NULL;
	struct inst_conf *in = NULL;
	size_t nov = 0, nin = 0;
	char err[256];

	assert_int_equal(state_parse("{\"version\": 1, \"overrides\": [{\"id\": \"a\", "
	    "\"admin_state\": \"draining\", \"base\": \"active\"}], \"instances\": [{\"id\": "
	    "\"n1\", \"address\": \"10.0.0.5\"}]}", &ov, &nov, &in, &nin, err), 0);
	assert_int_equal(nov, 1);
	assert_string_equal(ov[0].id, "a");
	assert_int_equal(ov[0].admin, INST_DRAINING);
	assert_int_equal(ov[0].base, INST_ACTIVE);
	assert_int_equal(nin, 1);
	assert_string_equal(in[0].id, "n1");
	pg_admin_overrides_free(ov, nov);
	inst_conf_free_array(in, nin);
	assert_int_equal(state_parse("{\"version\": 1}", &ov, &nov, &in, &nin, err), 0);
	assert_int_equal(nov + nin, 0);

	assert_int_equal(state_parse("{}", &ov, &nov, &in, &nin, err), PG_EPARSE);
	assert_string_equal(err, "version: required (1)");
	assert_int_equal(state_parse("{\"version\": 2}", &ov, &nov, &in, &nin, err), PG_EPARSE);
	assert_int_equal(state_parse("{\"version\": 1, \"overrides\": [{\"id\": \"a\", "
	    "\"admin_state\": \"sideways\", \"base\": \"active\"}]}", &ov, &nov, &in, &nin, err),
	    PG_EPARSE);
	assert_true(strncmp(err, "overrides[0].admin_state: expected one of", 41) == 0);
	assert_int_equal(state_parse("{\"version\": 1, \"overrides\": [{\"id\": \"a\", "
	    "\"admin_state\": \"maint\"}]}", &ov, &nov, &in, &nin, err), PG_EPARSE);
	assert_string_equal(err, "overrides[0].base: required");
	assert_int_equal(state_parse("{\"version\": 1, \"overrides\": [{\"id\": \"a b\", "
	    "\"admin_state\": \"maint\", \"base\": \"active\"}]}", &ov, &nov, &in, &nin, err),
	    PG_EPARSE);
	assert_true(strncmp(err, "overrides[0].id: expected 1..63", 31) == 0);
	assert_int_equal(state_parse("{\"version\": 1, \"overrides\": [{\"id\": \"a\", "
	    "\"admin_state\": \"maint\", \"base\": \"active\"}, {\"id\": \"a\", "
	    "\"admin_state\": \"maint\", \"base\": \"active\"}]}", &ov, &nov, &in, &nin, err),
	    PG_EPARSE);
	assert_string_equal(err, "overrides[1].id: duplicate id \"a\"");
	assert_int_equal(state_parse("{\"version\": 1, \"instances\": [{\"id\": \"n1\"}]}", &ov,
	    &nov, &in, &nin, err), PG_EPARSE);
	assert_string_equal(err, "instances[0].address: required");
	assert_int_equal(state_parse("{\"version\": 1, \"extra\": 1}", &ov, &nov, &in, &nin, err),
	    PG_EPARSE);
	assert_string_equal(err, "extra: unknown key");
}
/* "user" and "group": bind, then drop; the keys program may only run as that user then. */
static void
test_user_group(void **state)
{
	static const struct {
		const char *json, *err;
	} bad[] = {
		{ "{\"group\": \"pg\"}", "group: needs \"user\"" },
		{ "{\"user\": 7}", "user: " },
		{ "{\"user\": \"pg\", \"ssh\": {\"front_auth\": {\"authorized_keys_command\": "
		  "{\"command\": [\"/bin/k\"], \"run_as\": \"nobody\"}}}}",
		  "ssh.front_auth.authorized_keys_command.run_as: must be \"user\" (\"pg\") or unset" },
	};
	struct pg_config *cfg;
	char err[512];

	(void)state;
	cfg = parse_ok("{\"user\": \"pg\", \"group\": \"pgg\", \"ssh\": {\"front_auth\": "
	    "{\"authorized_keys_command\": {\"command\": [\"/bin/k\"], \"run_as\": \"pg\"}}}}");
	assert_string_equal(cfg->user, "pg");
	assert_string_equal(cfg->group, "pgg");
	pg_config_free(cfg);
	cfg = parse_ok("{}");
	assert_null(cfg->user);
	assert_null(cfg->group);
	pg_config_free(cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg = NULL;
		assert_int_equal(pg_config_parse(bad[i].json, strlen(bad[i].json), &cfg, err,
		    sizeof(err)), PG_EPARSE);
		assert_null(cfg);
		if (strstr(err, bad[i].err) != err)
			print_error("case %zu: %s\n", i, err);
		assert_ptr_equal(strstr(err, bad[i].err), err);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_load_and_placement),
		cmocka_unit_test(test_defaults_empty_object),
		cmocka_unit_test(test_defaults_partial_objects),
		cmocka_unit_test(test_builtin_default_matches),
		cmocka_unit_test(test_ipv6_admin_listener),
		cmocka_unit_test(test_limits_inclusive),
		cmocka_unit_test(test_user_group),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_ssh_defaults),
		cmocka_unit_test(test_ssh_full),
		cmocka_unit_test(test_limits_and_proxy_protocol),
		cmocka_unit_test(test_error_truncated),
		cmocka_unit_test(test_discovery_valid),
		cmocka_unit_test(test_discovery_empty),
		cmocka_unit_test(test_discovery_errors),
		cmocka_unit_test(test_conf_copy),
		cmocka_unit_test(test_conf_copy_minimal),
		cmocka_unit_test(test_same_endpoint),
		cmocka_unit_test(test_admin_token_file),
		cmocka_unit_test(test_instance_parse),
		cmocka_unit_test(test_admin_state_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
