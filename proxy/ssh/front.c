#include "proxy/ssh/front_int.h"
#include "certs/authkeys.h"
#include "certs/keyfile.h"
#include "core/addr.h"
#include "core/err.h"
#include "core/runas.h"
#include "core/log.h"

#include <fnmatch.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOGP "ssh"

static int
set_str(char **dst, const char *src)
{
	char *c = NULL;

	if (src != NULL && (c = strdup(src)) == NULL)
		return PG_ENOMEM;
	free(*dst);
	*dst = c;
	return 0;
}

static void
free_cas(struct sshkey **cas, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sshkey_free(cas[i]);
	free(cas);
}

/* Reads the trusted user CA file ("type base64 [comment]" lines), at start and reload. */
static int
load_user_cas(const char *path, struct sshkey ***out, size_t *nout)
{
	struct pg_buf text;
	struct sshkey **cas = NULL;
	size_t n = 0;
	int r;

	*out = NULL;
	*nout = 0;
	if (path == NULL)
		return 0;
	pg_buf_init(&text, AUTHKEYS_MAX_BYTES);
	if ((r = authkeys_read_file(path, &text)) != 0) {
		LOG_ERR(LOGP, "ssh.front_auth.trusted_user_ca_keys %s: %s; no user CA trusted", path,
		    pg_strerror(r));
		pg_buf_free(&text);
		return 0;
	}
	for (size_t off = 0; off < text.len;) {
		uint8_t *nl = memchr(text.p + off, '\n', text.len - off);
		size_t len = nl ? (size_t)(nl - (text.p + off)) : text.len - off;
		char *line = strndup((const char *)text.p + off, len), *sp, *b64;
		struct sshkey *k = NULL, **grown;

		off += len + 1;
		if (line == NULL) {
			r = PG_ENOMEM;
			break;
		}
		if (line[0] == '#' || (sp = strchr(line, ' ')) == NULL) {
			free(line);
			continue;
		}
		b64 = sp + 1;
		b64[strcspn(b64, " \t\r")] = '\0';
		if (sshkey_from_base64(b64, strlen(b64), &k) != 0 ||
		    (grown = realloc(cas, (n + 1) * sizeof(*cas))) == NULL) {
			if (k == NULL)
				LOG_WARN(LOGP, "%s: a line that is no public key skipped", path);
			sshkey_free(k);
			free(line);
			continue;
		}
		cas = grown;
		cas[n++] = k;
		free(line);
	}
	pg_buf_free(&text);
	if (r != 0) {
		free_cas(cas, n);
		return r;
	}
	LOG_INFO(LOGP, "%zu user CA key%s trusted from %s", n, n == 1 ? "" : "s", path);
	*out = cas;
	*nout = n;
	return 0;
}

static void
free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int
copy_strv(char **src, size_t n, char ***out)
{
	char **v = calloc(n ? n : 1, sizeof(*v));

	if (v == NULL)
		return PG_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if ((v[i] = strdup(src[i])) == NULL) {
			free_strv(v, i);
			return PG_ENOMEM;
		}
	}
	*out = v;
	return 0;
}

static void
free_rules(struct ssh_method_rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free_strv(r[i].users, r[i].nusers);
	free(r);
}

/*
 * Copies the method settings and the keys program of cfg. run_as is looked up in the password
 * database here (start and SIGHUP): an unknown user disables the program (logged), since
 * running it as poolgate instead could be running it as root.
 */
static int
apply_auth_settings(struct ssh_front *f, const struct ssh_conf *sc)
{
	struct ssh_method_rule *rules = NULL;
	struct keycmd_conf kc = { .timeout_ms = sc->keys_command_timeout_ms };
	size_t i;

	if (sc->nmethod_rules > 0 &&
	    (rules = calloc(sc->nmethod_rules, sizeof(*rules))) == NULL)
		return PG_ENOMEM;
	for (i = 0; i < sc->nmethod_rules; i++) {
		rules[i].methods = sc->method_rules[i].methods;
		rules[i].nusers = sc->method_rules[i].nusers;
		if (copy_strv(sc->method_rules[i].users, rules[i].nusers, &rules[i].users) != 0) {
			rules[i].nusers = 0;
			free_rules(rules, i + 1);
			return PG_ENOMEM;
		}
	}
	if (sc->nkeys_command > 0) {
		if (copy_strv(sc->keys_command, sc->nkeys_command, &kc.argv) != 0) {
			free_rules(rules, sc->nmethod_rules);
			return PG_ENOMEM;
		}
		kc.argc = sc->nkeys_command;
		if (sc->keys_command_user == NULL && pg_runas_uid() == 0)
			LOG_WARN(LOGP, "ssh.front_auth.authorized_keys_command runs as root: set run_as "
			    "to an unprivileged user");
		if (sc->keys_command_user != NULL) {
			struct passwd pw, *res = NULL;
			char buf[4096];

			if (getpwnam_r(sc->keys_command_user, &pw, buf, sizeof(buf), &res) != 0 ||
			    res == NULL) {
				LOG_ERR(LOGP, "ssh.front_auth.authorized_keys_command.run_as: no user "
				    "\"%s\"; the program will not run", sc->keys_command_user);
				free_strv(kc.argv, kc.argc);
				kc.argv = NULL;
				kc.argc = 0;
			} else {
				/* Equal to the user poolgate serves as (after a drop, the only one
				 * allowed: core/config.c): no switch. */
				kc.set_ids = pw.pw_uid != pg_runas_uid() || pw.pw_gid != pg_runas_gid();
				kc.uid = pw.pw_uid;
				kc.gid = pw.pw_gid;
			}
		}
	}
	free_rules(f->method_rules, f->nmethod_rules);
	f->method_rules = rules;
	f->nmethod_rules = sc->nmethod_rules;
	f->front_methods = sc->front_methods;
	free_strv(f->keys_cmd.argv, f->keys_cmd.argc);
	f->keys_cmd = kc;
	return 0;
}

static int
apply_settings(struct ssh_front *f, const struct pg_config *cfg)
{
	struct sshkey **cas;
	size_t ncas;

	if (load_user_cas(cfg->ssh.trusted_user_ca_keys, &cas, &ncas) != 0 ||
	    apply_auth_settings(f, &cfg->ssh) != 0)
		return PG_ENOMEM;
	free_cas(f->user_cas, f->nuser_cas);
	f->user_cas = cas;
	f->nuser_cas = ncas;

	if (set_str(&f->authorized_keys, cfg->ssh.authorized_keys) != 0)
		return PG_ENOMEM;
	f->max_auth_tries = cfg->ssh.max_auth_tries;
	f->login_grace_ms = cfg->ssh.login_grace_ms;
	f->connect_timeout_ms = cfg->ssh.connect_timeout_ms;
	f->max_connections = cfg->ssh.max_connections;
	if (sshl_configure(&f->lim, cfg) != 0)
		return PG_ENOMEM;
	if (f->authorized_keys == NULL && f->nuser_cas == 0 && f->keys_cmd.argc == 0 &&
	    f->front_methods == SSH_FM_PUBLICKEY && f->nmethod_rules == 0)
		LOG_WARN(LOGP, "only publickey is allowed and neither ssh.front_auth.authorized_keys, "
		    "authorized_keys_command nor trusted_user_ca_keys is set: nobody can log in");
	return 0;
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct ssh_listener *l = server->data;

	if (status != 0) {
		LOG_WARN(LOGP, "accept on %s: %s", l->addr, uv_strerror(status));
		return;
	}
	session_accept(l->f, server);
}

static int
bind_listeners(struct ssh_front *f, char **addrs, size_t n, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		struct ssh_listener *l = &f->listeners[f->nlisteners];
		struct sockaddr_storage ss;
		int r;

		l->f = f;
		snprintf(l->addr, sizeof(l->addr), "%s", addrs[i]);
		if ((r = pg_addr_parse_hostport(l->addr, &ss)) != 0) {
			snprintf(err, errlen, "ssh listener %s: %s", l->addr, pg_strerror(r));
			return r;
		}
		uv_tcp_init(f->loop, &l->tcp);
		l->tcp.data = l;
		f->nlisteners++;
		if ((r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0)) != 0 ||
		    (r = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection)) != 0) {
			snprintf(err, errlen, "ssh listener %s: %s", l->addr, uv_strerror(r));
			return r;
		}
		LOG_INFO(LOGP, "listening on ssh://%s", l->addr);
	}
	return 0;
}

static void
front_free(struct ssh_front *f)
{
	for (size_t i = 0; i < f->nhost_keys; i++)
		sshkey_free(f->host_keys[i]);
	sshkey_free(f->ca);
	sshkey_free(f->upstream_key);
	free_cas(f->user_cas, f->nuser_cas);
	free_rules(f->method_rules, f->nmethod_rules);
	free_strv(f->keys_cmd.argv, f->keys_cmd.argc);
	sshl_front_free(&f->lim);
	free(f->authorized_keys);
	free(f->listeners);
	free(f);
}

void
ssh_front_maybe_free(struct ssh_front *f)
{
	if (f->stopping && f->closing_listeners == 0 && f->conns == NULL)
		front_free(f);
}

static void
on_listener_closed(uv_handle_t *h)
{
	struct ssh_listener *l = h->data;
	struct ssh_front *f = l->f;

	f->closing_listeners--;
	ssh_front_maybe_free(f);
}

static void
close_listeners(struct ssh_front *f)
{
	if (f->listeners_closed)
		return;
	f->listeners_closed = 1;
	for (size_t i = 0; i < f->nlisteners; i++) {
		f->closing_listeners++;
		uv_close((uv_handle_t *)&f->listeners[i].tcp, on_listener_closed);
	}
}

size_t
ssh_front_drain(struct ssh_front *f)
{
	if (f == NULL || f->stopping)
		return 0;
	close_listeners(f);
	return f->nconns;
}

size_t
ssh_front_live(const struct ssh_front *f)
{
	return f != NULL ? f->nconns : 0;
}

void
ssh_front_stop(struct ssh_front *f)
{
	if (f == NULL || f->stopping)
		return;
	f->stopping = 1;
	close_listeners(f);
	session_close_all(f);
	ssh_front_maybe_free(f);
}

int
ssh_front_start(uv_loop_t *loop, const struct pg_config *cfg, struct registry *reg,
    struct pin_table *pins, struct hostpolicy *hosts, struct ssh_front **out, char *err,
    size_t errlen)
{
	const struct ssh_conf *sc = &cfg->ssh;
	struct ssh_front *f = calloc(1, sizeof(*f));
	int r;

	if (f == NULL || (f->listeners = calloc(cfg->nlisten_ssh ? cfg->nlisten_ssh : 1,
	    sizeof(*f->listeners))) == NULL) {
		free(f);
		snprintf(err, errlen, "out of memory");
		return PG_ENOMEM;
	}
	f->loop = loop;
	f->reg = reg;
	f->pins = pins;
	f->hosts = hosts;
	f->mode = sc->upstream_mode;
	f->next_id = 1;
	if (sc->nhost_keys > SSHF_MAX_HOST_KEYS) {
		snprintf(err, errlen, "ssh.host_keys: at most %d keys", SSHF_MAX_HOST_KEYS);
		r = PG_EINVAL;
		goto fail;
	}
	if (sc->nhost_keys == 0) {
		if ((r = keyfile_load(NULL, cfg->state_dir, "ssh_host_ed25519_key", "host key",
		    LOGP, &f->host_keys[0], err, errlen)) != 0)
			goto fail;
		f->nhost_keys = 1;
	}
	for (size_t i = 0; i < sc->nhost_keys; i++) {
		if ((r = keyfile_load(sc->host_keys[i], NULL, NULL, "host key", LOGP,
		    &f->host_keys[i], err, errlen)) != 0)
			goto fail;
		f->nhost_keys++;
	}
	if (f->mode == SSH_UP_CERTIFICATE)
		r = keyfile_load(sc->ca_key, cfg->state_dir, KEYFILE_USER_CA, KEYFILE_USER_CA_WHAT,
		    LOGP, &f->ca, err, errlen);
	else
		r = keyfile_load(sc->upstream_key, NULL, NULL, "upstream login key", LOGP,
		    &f->upstream_key, err, errlen);
	if (r != 0 || (r = apply_settings(f, cfg)) != 0)
		goto fail;
	if ((r = bind_listeners(f, cfg->listen_ssh, cfg->nlisten_ssh, err, errlen)) != 0)
		goto fail;
	*out = f;
	return 0;
fail:
	if (r == PG_ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (f->nlisteners > 0) {
		/* Handles were initialised: they go through uv_close. */
		ssh_front_stop(f);
		return r;
	}
	front_free(f);
	return r;
}

int
ssh_front_reload(struct ssh_front *f, const struct pg_config *cfg, char *err, size_t errlen)
{
	int r = apply_settings(f, cfg);

	if (r != 0)
		snprintf(err, errlen, "out of memory");
	return r;
}

int
sshf_ca_trusted(const struct ssh_front *f, const struct sshkey *ca)
{
	for (size_t i = 0; i < f->nuser_cas; i++)
		if (sshkey_equal_public(ca, f->user_cas[i]))
			return 1;
	return 0;
}

unsigned
sshf_user_methods(const struct ssh_front *f, const char *user)
{
	for (size_t i = 0; i < f->nmethod_rules; i++)
		for (size_t j = 0; j < f->method_rules[i].nusers; j++)
			if (fnmatch(f->method_rules[i].users[j], user, 0) == 0)
				return f->method_rules[i].methods;
	return f->front_methods;
}

const struct keycmd_conf *
sshf_keys_cmd(const struct ssh_front *f)
{
	return f->keys_cmd.argc > 0 ? &f->keys_cmd : NULL;
}

int
sshf_user_cert_ok(struct ssh_front *f, const char *user, const struct usercert *cert,
    const char *log_prefix)
{
	char fp[SSHKEY_FP_LEN];
	const char *why = NULL;

	if (sshkey_fingerprint(cert->ca, fp, sizeof(fp)) != 0)
		fp[0] = '\0';
	if (!sshf_ca_trusted(f, cert->ca))
		why = "its CA is not trusted (ssh.front_auth.trusted_user_ca_keys, or a cert-authority "
		    "line of the user's keys)";
	else if (usercert_check(cert, user, (uint64_t)time(NULL), &why) == 0)
		why = NULL;
	if (why != NULL) {
		LOG_NOTICE(log_prefix, "user %s: certificate \"%s\" serial %llu (CA %s) refused: %s",
		    user, cert->key_id, (unsigned long long)cert->serial, fp, why);
		return 0;
	}
	LOG_INFO(log_prefix, "user %s: certificate \"%s\" serial %llu (CA %s) accepted", user,
	    cert->key_id, (unsigned long long)cert->serial, fp);
	return 1;
}

#define FAMILY(name, type, help) \
	if ((r = pg_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type)) != 0) \
		return r
#define SAMPLE(...) if ((r = pg_buf_printf(out, __VA_ARGS__)) != 0) return r

int
ssh_front_render_metrics(const struct ssh_front *f, struct pg_buf *out)
{
	const struct ssh_front_stats *st = &f->stats;
	int r;

	FAMILY("poolgate_ssh_connections_total", "counter", "SSH connections accepted.");
	SAMPLE("poolgate_ssh_connections_total %llu\n", (unsigned long long)st->conns_total);
	FAMILY("poolgate_ssh_connections_open", "gauge", "SSH connections open now.");
	SAMPLE("poolgate_ssh_connections_open %zu\n", f->nconns);
	FAMILY("poolgate_ssh_connections_rejected_total", "counter",
	    "SSH connections refused over ssh.max_connections.");
	SAMPLE("poolgate_ssh_connections_rejected_total %llu\n",
	    (unsigned long long)st->conns_rejected);
	FAMILY("poolgate_ssh_auth_failures_total", "counter",
	    "Failed publickey attempts (key not authorized, bad signature).");
	SAMPLE("poolgate_ssh_auth_failures_total %llu\n", (unsigned long long)st->auth_failures);
	FAMILY("poolgate_ssh_sessions_total", "counter",
	    "Sessions piped to an instance (user and instance both authenticated).");
	SAMPLE("poolgate_ssh_sessions_total %llu\n", (unsigned long long)st->sessions_total);
	FAMILY("poolgate_ssh_upstream_errors_total", "counter",
	    "Sessions that failed at the instance: unreachable, silent, login refused, host key "
	    "refused.");
	SAMPLE("poolgate_ssh_upstream_errors_total %llu\n", (unsigned long long)st->upstream_errors);
	return sshl_render_metrics(&f->lim, uv_now(f->loop), out);
}
