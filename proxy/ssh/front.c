#include "proxy/ssh/front_int.h"
#include "certs/authkeys.h"
#include "certs/keyfile.h"
#include "certs/knownhosts.h"
#include "core/addr.h"
#include "core/err.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Reads a known_hosts file into b (emptied first); a missing file is empty. */
static int
load_known_hosts(const char *path, struct pg_buf *b, const char *what)
{
	int r;

	pg_buf_free(b);
	pg_buf_init(b, KNOWNHOSTS_MAX_BYTES);
	if (path == NULL || (r = knownhosts_read_file(path, b)) == PG_ENOTFOUND)
		return 0;
	if (r != 0) {
		LOG_ERR(LOGP, "%s %s: %s; instances listed there will be refused", what, path,
		    pg_strerror(r));
		pg_buf_free(b);
		return r;
	}
	return 0;
}

static int
apply_settings(struct ssh_front *f, const struct pg_config *cfg)
{
	char tofu[4096];
	struct sshkey **cas;
	size_t ncas;

	if (load_user_cas(cfg->ssh.trusted_user_ca_keys, &cas, &ncas) != 0)
		return PG_ENOMEM;
	free_cas(f->user_cas, f->nuser_cas);
	f->user_cas = cas;
	f->nuser_cas = ncas;

	snprintf(tofu, sizeof(tofu), "%s/known_hosts", cfg->state_dir);
	if (set_str(&f->authorized_keys, cfg->ssh.authorized_keys) != 0 ||
	    set_str(&f->known_hosts, cfg->ssh.known_hosts) != 0 || set_str(&f->tofu_file, tofu) != 0)
		return PG_ENOMEM;
	f->check = cfg->ssh.host_key_check;
	f->kh_loaded = load_known_hosts(f->known_hosts, &f->kh_text, "ssh.known_hosts") == 0;
	(void)load_known_hosts(f->tofu_file, &f->tofu_text, "tofu");
	f->max_auth_tries = cfg->ssh.max_auth_tries;
	f->login_grace_ms = cfg->ssh.login_grace_ms;
	f->connect_timeout_ms = cfg->ssh.connect_timeout_ms;
	f->max_connections = cfg->ssh.max_connections;
	if (sshl_configure(&f->lim, cfg) != 0)
		return PG_ENOMEM;
	if (f->authorized_keys == NULL && f->nuser_cas == 0)
		LOG_WARN(LOGP, "neither ssh.front_auth.authorized_keys nor trusted_user_ca_keys is set: "
		    "nobody can log in");
	if (f->check == SSH_HKC_KNOWN_HOSTS && f->known_hosts == NULL)
		LOG_WARN(LOGP, "ssh.known_hosts is not set and host_key_check is \"known_hosts\": "
		    "every instance will be refused");
	return 0;
}

/* A key from a configured path, or made once in state_dir. */
static int
load_key(const char *configured, const char *state_dir, const char *name, const char *what,
    struct sshkey **out, char *err, size_t errlen)
{
	char path[4096], fp[SSHKEY_FP_LEN];
	int created = 0, r;

	if (configured != NULL) {
		if ((r = sshkey_load_private(configured, out, err, errlen)) != 0)
			return r;
	} else {
		snprintf(path, sizeof(path), "%s/%s", state_dir, name);
		if ((r = keyfile_load_or_create(path, out, &created, err, errlen)) != 0)
			return r;
	}
	if (sshkey_fingerprint(*out, fp, sizeof(fp)) != 0)
		fp[0] = '\0';
	if (created) {
		struct pg_buf line;

		pg_buf_init(&line, 8192);
		if (sshkey_write_public(*out, "poolgate", &line) == 0 && line.len > 0)
			LOG_NOTICE(LOGP, "made a new %s in %s (%s): %.*s", what, path, fp,
			    (int)line.len - 1, line.p);
		pg_buf_free(&line);
	} else
		LOG_INFO(LOGP, "%s %s: %s %s", what, configured ? configured : path,
		    sshkey_type_name(*out), fp);
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
	sshl_front_free(&f->lim);
	pg_buf_free(&f->kh_text);
	pg_buf_free(&f->tofu_text);
	free(f->authorized_keys);
	free(f->known_hosts);
	free(f->tofu_file);
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

void
ssh_front_stop(struct ssh_front *f)
{
	if (f == NULL || f->stopping)
		return;
	f->stopping = 1;
	for (size_t i = 0; i < f->nlisteners; i++) {
		f->closing_listeners++;
		uv_close((uv_handle_t *)&f->listeners[i].tcp, on_listener_closed);
	}
	session_close_all(f);
	ssh_front_maybe_free(f);
}

int
ssh_front_start(uv_loop_t *loop, const struct pg_config *cfg, struct registry *reg,
    struct pin_table *pins, struct ssh_front **out, char *err, size_t errlen)
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
	f->mode = sc->upstream_mode;
	f->next_id = 1;
	if (sc->nhost_keys > SSHF_MAX_HOST_KEYS) {
		snprintf(err, errlen, "ssh.host_keys: at most %d keys", SSHF_MAX_HOST_KEYS);
		r = PG_EINVAL;
		goto fail;
	}
	if (sc->nhost_keys == 0) {
		if ((r = load_key(NULL, cfg->state_dir, "ssh_host_ed25519_key", "host key",
		    &f->host_keys[0], err, errlen)) != 0)
			goto fail;
		f->nhost_keys = 1;
	}
	for (size_t i = 0; i < sc->nhost_keys; i++) {
		if ((r = load_key(sc->host_keys[i], NULL, NULL, "host key", &f->host_keys[i], err,
		    errlen)) != 0)
			goto fail;
		f->nhost_keys++;
	}
	if (f->mode == SSH_UP_CERTIFICATE)
		r = load_key(sc->ca_key, cfg->state_dir, "user_ca_ed25519",
		    "pool user CA (instances trust it with TrustedUserCAKeys)", &f->ca, err, errlen);
	else
		r = load_key(sc->upstream_key, NULL, NULL, "upstream login key", &f->upstream_key,
		    err, errlen);
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
sshf_user_cert_ok(struct ssh_front *f, const char *user, const struct usercert *cert,
    const char *log_prefix)
{
	char fp[SSHKEY_FP_LEN];
	const char *why = NULL;
	size_t i;

	if (sshkey_fingerprint(cert->ca, fp, sizeof(fp)) != 0)
		fp[0] = '\0';
	for (i = 0; i < f->nuser_cas; i++)
		if (sshkey_equal_public(cert->ca, f->user_cas[i]))
			break;
	if (i == f->nuser_cas)
		why = "its CA is not trusted (ssh.front_auth.trusted_user_ca_keys)";
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

int
sshf_check_hostkey(struct ssh_front *f, const char *inst_id, const char *addr, uint16_t port,
    const struct sshkey *key, const char **why, const char *log_prefix)
{
	char fp[SSHKEY_FP_LEN];
	int r = PG_ENOTFOUND;

	if (sshkey_fingerprint(key, fp, sizeof(fp)) != 0)
		fp[0] = '\0';
	if (f->known_hosts != NULL)
		r = f->kh_loaded ? knownhosts_check((struct pg_slice){ f->kh_text.p, f->kh_text.len },
		    addr, port, key) : PG_EIO;
	if (r == PG_ENOTFOUND && f->check == SSH_HKC_TOFU) {
		r = knownhosts_check((struct pg_slice){ f->tofu_text.p, f->tofu_text.len }, addr,
		    port, key);
		if (r == PG_ENOTFOUND) {
			if ((r = knownhosts_append_file(f->tofu_file, addr, port, key)) == 0 &&
			    (r = knownhosts_format_line(addr, port, key, &f->tofu_text)) == 0)
				LOG_NOTICE(log_prefix, "instance %s (%s:%u): host key %s %s recorded "
				    "in %s (tofu)", inst_id, addr, port, sshkey_type_name(key), fp,
				    f->tofu_file);
		}
	}
	switch (r) {
	case 0:
		return 0;
	case PG_EAUTH:
		*why = "the instance's host key has changed";
		LOG_ERR(log_prefix, "instance %s (%s:%u): HOST KEY MISMATCH: %s %s is not the key "
		    "known for it; refused", inst_id, addr, port, sshkey_type_name(key), fp);
		return r;
	case PG_ENOTFOUND:
		*why = "the instance's host key is not known";
		LOG_ERR(log_prefix, "instance %s (%s:%u): host key %s %s is in no known_hosts; "
		    "refused", inst_id, addr, port, sshkey_type_name(key), fp);
		return r;
	default:
		*why = "the instance's host key cannot be checked";
		LOG_ERR(log_prefix, "instance %s (%s:%u): cannot check its host key: %s", inst_id,
		    addr, port, pg_strerror(r));
		return r;
	}
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
