/* Internal to proxy/ssh/front.c and session.c: the front door's shared state. */
#ifndef PG_PROXY_SSH_FRONT_INT_H
#define PG_PROXY_SSH_FRONT_INT_H

#include "proxy/ssh/front.h"
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
	/* Reloadable settings (owned copies). */
	char *authorized_keys, *known_hosts, *tofu_file;
	enum ssh_hostkey_check check;
	/*
	 * ssh.known_hosts and state_dir/known_hosts (tofu) as read at start and on SIGHUP, so an
	 * instance's key is checked in memory; a tofu record is appended to both.
	 */
	struct pg_buf kh_text, tofu_text;
	int kh_loaded;
	struct sshkey **user_cas;	/* ssh.front_auth.trusted_user_ca_keys, loaded */
	size_t nuser_cas;
	uint32_t max_auth_tries, login_grace_ms, connect_timeout_ms, max_connections;
	struct sshl_front lim;		/* ssh.limits, proxy_protocol: per-source state and counts */
	struct sconn *conns;
	size_t nconns;
	uint64_t next_id;
	int stopping;
	uint8_t rbuf[SSHF_READ_BUF];	/* one read at a time on one loop: shared */
};

/* session.c */
void session_accept(struct ssh_front *f, uv_stream_t *server);
void session_close_all(struct ssh_front *f);
/* front.c, called when the last session or listener is gone */
void ssh_front_maybe_free(struct ssh_front *f);

/* front.c: policy */
/* 1 if cert may log in as user: a trusted CA signed it and usercert_check() passes. */
int sshf_user_cert_ok(struct ssh_front *f, const char *user, const struct usercert *cert,
    const char *log_prefix);
/* 0 to trust the instance's key; else a reason (static) in *why. */
int sshf_check_hostkey(struct ssh_front *f, const char *inst_id, const char *addr, uint16_t port,
    const struct sshkey *key, const char **why, const char *log_prefix);

#endif
