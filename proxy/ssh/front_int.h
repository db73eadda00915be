/* Internal to proxy/ssh/front.c and session.c: the front door's shared state. */
#ifndef PG_PROXY_SSH_FRONT_INT_H
#define PG_PROXY_SSH_FRONT_INT_H

#include "proxy/ssh/front.h"
#include "proxy/ssh/keycmd.h"
#include "certs/hostpolicy.h"
#include "proxy/ssh/sshlimits.h"
#include "certs/sshkey.h"
#include "certs/usercert.h"

#define SSHF_MAX_HOST_KEYS 8
#define SSHF_READ_BUF (64 * 1024)
/* Flow control: past HIGH bytes queued towards one side, reading from the other pauses. */
#define SSHF_QUEUE_HIGH (512 * 1024)
#define SSHF_QUEUE_LOW (128 * 1024)

struct sconn;

struct ssh_listener {
	uv_tcp_t tcp;
	struct ssh_front *f;
	char addr[64];
};

struct ssh_front {
	struct ssh_front_stats stats;
	uv_loop_t *loop;
	struct registry *reg;
	struct pin_table *pins;
	struct ssh_listener *listeners;
	size_t nlisteners, closing_listeners;
	struct sshkey *host_keys[SSHF_MAX_HOST_KEYS];
	size_t nhost_keys;
	struct sshkey *ca;		/* mode certificate */
	struct sshkey *upstream_key;	/* mode key */
	enum ssh_upstream_mode mode;
	struct hostpolicy *hosts;	/* instances' host keys; borrowed from main */
	/* Reloadable settings (owned copies). */
	char *authorized_keys;
	struct sshkey **user_cas;	/* ssh.front_auth.trusted_user_ca_keys, loaded */
	size_t nuser_cas;
	unsigned front_methods;		/* AUTH_M_* for users no per_user rule matches */
	struct ssh_method_rule *method_rules;	/* owned copies */
	size_t nmethod_rules;
	struct keycmd_conf keys_cmd;	/* argv owned; argc 0: no program */
	uint32_t max_auth_tries, login_grace_ms, connect_timeout_ms, max_connections;
	struct sshl_front lim;		/* ssh.limits, proxy_protocol: per-source state and counts */
	struct sconn *conns;
	size_t nconns;
	uint64_t next_id;
	int stopping;
	int listeners_closed;	/* ssh_front_drain() or ssh_front_stop() closed them */
	uint8_t rbuf[SSHF_READ_BUF];	/* one read at a time on one loop: shared */
};

/* session.c */
void session_accept(struct ssh_front *f, uv_stream_t *server);
void session_close_all(struct ssh_front *f);
/* front.c, called when the last session or listener is gone */
void ssh_front_maybe_free(struct ssh_front *f);

/* front.c: policy */
/* 1 if a trusted_user_ca_keys CA signed cert and usercert_check() passes for user, else 0. */
int sshf_user_cert_ok(struct ssh_front *f, const char *user, const struct usercert *cert,
    const char *log_prefix);
/* 1 if ca is one of ssh.front_auth.trusted_user_ca_keys. */
int sshf_ca_trusted(const struct ssh_front *f, const struct sshkey *ca);
/* The front methods (AUTH_M_* bits) user may use: the first per_user rule that matches, else
 * ssh.front_auth.methods. */
unsigned sshf_user_methods(const struct ssh_front *f, const char *user);
/* The AuthorizedKeysCommand-style program, or NULL when none is configured (or usable). */
const struct keycmd_conf *sshf_keys_cmd(const struct ssh_front *f);

#endif
