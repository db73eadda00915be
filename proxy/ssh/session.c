/*
 * One SSH session: a user's connection (server-role transport, "down") and, from the first
 * userauth request on, a connection to the user's instance (client-role transport, "up").
 *
 * Phases (set_phase() is the one place they change):
 *	AUTH     the user authenticates with us; the upstream connects and exchanges keys meanwhile;
 *	         password and keyboard-interactive attempts are relayed to the instance (auth_relay)
 *	UPAUTH   the user proved a key; we log in upstream with a certificate signed on the spot
 *	PIPE     both sides authenticated: messages 80..127 cross unchanged (but hostkeys-*)
 *	CLOSING  DISCONNECTs are queued; sockets shut down after their writes, then close
 *
 * One struct owns both sockets and the timer; it is freed in the last close callback. Callbacks
 * that may close the session only mark it (phase CLOSING); memory goes later.
 */
#include "proxy/ssh/front_int.h"
#include "proxy/ssh/audit.h"
#include "proxy/ssh/auth.h"
#include "proxy/ssh/auth_relay.h"
#include "proxy/ssh/sshlimits.h"
#include "proxy/ssh/transport.h"
#include "proxy/ssh/userkeys.h"
#include "backends/placement.h"
#include "certs/authkeys.h"
#include "certs/usercert.h"
#include "core/addr.h"
#include "core/busypoll.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/uvwrite.h"
#include "core/sshwire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SSH_MSG_GLOBAL_REQUEST 80
#define SSH_MSG_REQUEST_FAILURE 82
#define CLOSE_GRACE_MS 3000
#define REKEY_CHECK_MS 10000	/* the time-based rekey (1 hour) is checked this often */

enum phase { PH_AUTH, PH_UPAUTH, PH_PIPE, PH_CLOSING };

static const char *const phase_names[] = { "auth", "upauth", "pipe", "closing" };

struct side {
	uv_tcp_t tcp;
	uv_shutdown_t shutdown;
	struct ssh_transport *t;
	int inited;		/* tcp initialised: must be closed */
	int connected;
	int closing;		/* uv_close called */
	int paused;		/* reading stopped by flow control */
	int held;		/* reading stopped: the user's keys are read, or a relayed attempt runs */
	int reading;
	const char *name;	/* "user", "instance" */
	struct sconn *conn;	/* the session this side belongs to */
};

struct sconn {
	struct ssh_front *f;
	struct sconn *next, **pprev;
	uint64_t id;
	char prefix[128];
	char peer[PG_ADDRSTRLEN];
	struct side down, up;
	uv_timer_t timer;
	uv_connect_t connect;
	int pending_closes;
	enum phase phase;
	struct auth_server *auth;
	char user[AUTHKEYS_USER_MAX + 1];
	struct instance *inst;		/* referenced */
	char inst_addr[64];
	uint16_t inst_port;
	const char *hostkey_why;	/* static: why the instance's host key was refused */
	int user_ok;
	int live;			/* counted as the user's live session (pins_live_begin) */
	int timer_closing;
	uint64_t up_end_ms;		/* the instance must have exchanged keys by then; 0: none */
	/* Abuse limits; lim.src is the client's address (a trusted PROXY header's source). */
	struct sshl_conn lim;
	struct ssh_audit audit;
	/*
	 * The user's keys (userkeys.h), fetched once off the loop at the first userauth request;
	 * that request waits in `first` meanwhile, and nothing more is read from the user.
	 */
	enum { KEYS_NONE, KEYS_READING, KEYS_READY } keys_state;
	struct ukeys *keys;
	struct pg_buf first;
	struct auth_relay *relay;	/* password / keyboard-interactive passthrough */
	const char *method;		/* static: how the user got in */
};

static void conn_close(struct sconn *c, const char *why);
static void flush(struct sconn *c, struct side *s);
static void on_timer(uv_timer_t *t);
static void header_input(struct sconn *c, const uint8_t *p, size_t n);

static void
upstream_failed(struct sconn *c, const char *why)
{
	c->f->stats.upstream_errors++;
	conn_close(c, why);
}

static void
set_phase(struct sconn *c, enum phase p)
{
	if (c->phase == p)
		return;
	LOG_DEBUG(c->prefix, "phase %s -> %s", phase_names[c->phase], phase_names[p]);
	c->phase = p;
}

static struct side *
other(struct sconn *c, struct side *s)
{
	return s == &c->down ? &c->up : &c->down;
}

static void on_handle_closed(uv_handle_t *h);

static void
close_timer(struct sconn *c)
{
	if (c->timer_closing)
		return;
	c->timer_closing = 1;
	c->pending_closes++;
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static int
side_gone(const struct side *s)
{
	return !s->inited || s->closing;
}

/* The session stops counting as live: its end is the user's latest activity. */
static void
end_live(struct sconn *c)
{
	if (!c->live)
		return;
	c->live = 0;
	pins_live_end(c->f->pins, c->user, c->inst->conf.id, pg_wall_ms());
}

static void
maybe_free(struct sconn *c)
{
	struct ssh_front *f = c->f;

	/* Both sockets closed: the timer (close grace) has nothing left to guard. */
	if (c->phase == PH_CLOSING && side_gone(&c->down) && side_gone(&c->up))
		close_timer(c);
	if (c->pending_closes > 0 || !c->timer_closing)
		return;
	end_live(c);
	audit_close(&c->audit, "closed", uv_now(f->loop));
	audit_log(&c->audit, c->prefix, c->user, c->peer, c->inst ? c->inst->conf.id : NULL,
	    c->lim.pp.via);
	sshl_conn_done(&f->lim, &c->lim, uv_now(f->loop));
	if (c->next != NULL)
		c->next->pprev = c->pprev;
	*c->pprev = c->next;
	f->nconns--;
	ssh_transport_free(c->down.t);
	ssh_transport_free(c->up.t);
	ukeys_release(c->keys);
	pg_buf_free(&c->first);
	auth_server_free(c->auth);
	auth_relay_free(c->relay);
	if (c->inst != NULL)
		inst_unref(c->inst);
	free(c);
	ssh_front_maybe_free(f);
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct sconn *c = h->data;

	c->pending_closes--;
	maybe_free(c);
}

static void
close_side(struct sconn *c, struct side *s)
{
	if (!s->inited || s->closing)
		return;
	s->closing = 1;
	c->pending_closes++;
	uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
}

/* ---- writing ---- */

static size_t
queued(struct side *s)
{
	return (s->inited ? s->tcp.write_queue_size : 0) + (s->t ? ssh_transport_queued(s->t) : 0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf);

static void
resume(struct sconn *c, struct side *s)
{
	int r;

	if (!s->paused || s->closing || c->phase == PH_CLOSING)
		return;
	s->paused = 0;
	if (s->held)
		return;
	LOG_DEBUG(c->prefix, "%s: reading again", s->name);
	if (s->reading && (r = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read)) != 0)
		conn_close(c, "connection lost");
}

static void
on_write(void *arg, int status, size_t len)
{
	struct side *s = arg;
	struct sconn *c = s->conn;
	struct side *o = other(c, s);

	if (status != 0 && status != UV_ECANCELED && c->phase != PH_CLOSING) {
		LOG_INFO(c->prefix, "%s: write: %s", s->name, uv_strerror(status));
		conn_close(c, "connection lost");
		return;
	}
	if (o->paused && queued(s) < SSHF_QUEUE_LOW)
		resume(c, o);
}

/*
 * Writes what the transport has for s: straight to the socket when nothing is queued there
 * (pg_try_write_buf), else behind the queue. A write that left nothing queued has no callback,
 * so the other side is resumed here if s drained below the low mark.
 */

static void
flush(struct sconn *c, struct side *s)
{
	struct pg_buf out;
	int r;

	if (s->t == NULL || !s->connected || s->closing)
		return;
	pg_buf_init(&out, 64 * 1024 * 1024);
	if ((r = ssh_transport_take_output(s->t, &out)) == 0 && out.len > 0 &&
	    (r = pg_try_write_buf((uv_stream_t *)&s->tcp, &out, on_write, s)) < 0) {
		LOG_INFO(c->prefix, "%s: write: %s", s->name, pg_strerror(r));
		if (c->phase != PH_CLOSING)
			conn_close(c, "connection lost");
	} else if (r == 0 && other(c, s)->paused && queued(s) < SSHF_QUEUE_LOW) {
		resume(c, other(c, s));
	}
	pg_buf_free(&out);
}

/* Stop reading from src while its messages pile up towards dst. */
static void
backpressure(struct sconn *c, struct side *src, struct side *dst)
{
	if (src->paused || queued(dst) < SSHF_QUEUE_HIGH)
		return;
	src->paused = 1;
	LOG_DEBUG(c->prefix, "%s: %zu bytes queued towards %s, reading paused", src->name,
	    queued(dst), dst->name);
	if (src->inited && !src->closing)
		uv_read_stop((uv_stream_t *)&src->tcp);
}

/* ---- closing ---- */

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	struct side *s = req->data;
	struct sconn *c = s->tcp.data;

	(void)status;
	close_side(c, s);
}

static void
shut_side(struct sconn *c, struct side *s, const char *why)
{
	if (!s->inited || s->closing)
		return;
	if (!s->connected) {
		close_side(c, s);	/* a pending connect is cancelled */
		return;
	}
	if (s->t != NULL) {
		enum ssh_tstate st = ssh_transport_state(s->t);

		if (st != SSH_T_CLOSED && st != SSH_T_FAILED)
			ssh_transport_disconnect(s->t, SSH_DISCONNECT_BY_APPLICATION, why);
		flush(c, s);
	}
	uv_read_stop((uv_stream_t *)&s->tcp);
	s->shutdown.data = s;
	if (uv_shutdown(&s->shutdown, (uv_stream_t *)&s->tcp, on_shutdown) != 0)
		close_side(c, s);
}

static void
on_close_timeout(uv_timer_t *t)
{
	struct sconn *c = t->data;

	close_side(c, &c->down);
	close_side(c, &c->up);
	close_timer(c);
}

/* The one way a session ends: both sides get a DISCONNECT naming why, then close. */
static void
conn_close(struct sconn *c, const char *why)
{
	if (c->phase == PH_CLOSING)
		return;
	audit_close(&c->audit, why, uv_now(c->f->loop));
	LOG_INFO(c->prefix, "closing: %s", why);
	end_live(c);
	set_phase(c, PH_CLOSING);
	shut_side(c, &c->down, why);
	shut_side(c, &c->up, why);
	/* Sockets whose peer does not read get CLOSE_GRACE_MS, then are closed anyway. */
	uv_timer_stop(&c->timer);
	uv_timer_start(&c->timer, on_close_timeout, CLOSE_GRACE_MS, 0);
}

void
session_close_all(struct ssh_front *f)
{
	for (struct sconn *c = f->conns; c != NULL; c = c->next)
		conn_close(c, "poolgate is shutting down");
}

/* ---- upstream ---- */

static int
verify_hostkey(void *arg, const struct sshkey *key)
{
	struct sconn *c = arg;

	return hostpolicy_check(c->f->hosts, c->inst->conf.id, c->inst_addr, c->inst_port, key,
	    &c->hostkey_why, c->prefix);
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct sconn *c = req->data;
	struct ssh_transport_config tc = { .role = SSH_ROLE_CLIENT, .log_prefix = c->prefix,
		.verify_hostkey = verify_hostkey, .verify_arg = c };
	int r;

	if (status == UV_ECANCELED || c->phase == PH_CLOSING)
		return;
	if (status != 0) {
		LOG_NOTICE(c->prefix, "instance %s (%s:%u): connect: %s", c->inst->conf.id,
		    c->inst_addr, c->inst_port, uv_strerror(status));
		upstream_failed(c, "the instance cannot be reached");
		return;
	}
	c->up.connected = 1;
	if ((r = ssh_transport_new(&tc, &c->up.t)) != 0) {
		conn_close(c, "out of memory");
		return;
	}
	c->up.reading = 1;
	uv_tcp_nodelay(&c->up.tcp, 1);
	uv_read_start((uv_stream_t *)&c->up.tcp, on_alloc, on_read);
	flush(c, &c->up);
}

static int
start_upstream(struct sconn *c)
{
	struct sockaddr_storage ss;
	int r;

	snprintf(c->inst_addr, sizeof(c->inst_addr), "%s", c->inst->conf.address);
	c->inst_port = c->inst->conf.ssh_port;
	if ((r = pg_addr_from_ip(c->inst_addr, c->inst_port, &ss)) != 0)
		return r;
	uv_tcp_init(c->f->loop, &c->up.tcp);
	c->up.tcp.data = c;
	c->up.inited = 1;
	c->connect.data = c;
	/* One timer: the earliest of the pre-auth deadlines and the instance's connect deadline. */
	c->up_end_ms = uv_now(c->f->loop) + c->f->connect_timeout_ms;
	if (uv_timer_get_due_in(&c->timer) > c->f->connect_timeout_ms) {
		uv_timer_stop(&c->timer);
		uv_timer_start(&c->timer, on_timer, c->f->connect_timeout_ms, 0);
	}
	return uv_tcp_connect(&c->connect, &c->up.tcp, (struct sockaddr *)&ss, on_connect);
}

/* The signed publickey request that logs us in upstream as the user. */
static int
send_upstream_auth(struct sconn *c)
{
	struct ssh_front *f = c->f;
	struct pg_buf req, blob;
	struct sshkey *eph = NULL;
	char key_id[256];
	int r;

	pg_buf_init(&req, 65536);
	pg_buf_init(&blob, 65536);
	if (f->mode == SSH_UP_CERTIFICATE) {
		struct usercert_req cr = { .ca = f->ca, .principal = c->user, .key_id = key_id,
			.serial = c->id, .now = (uint64_t)time(NULL) };

		snprintf(key_id, sizeof(key_id), "poolgate session %llu: %s from %s",
		    (unsigned long long)c->id, c->user, c->peer);
		if ((r = sshkey_generate_ed25519(&eph)) != 0)
			goto out;
		cr.key = eph;
		if ((r = usercert_make(&cr, &blob)) != 0 ||
		    (r = auth_client_publickey(&req, ssh_transport_session_id(c->up.t), c->user,
		    usercert_type_name(eph), (struct pg_slice){ blob.p, blob.len }, eph,
		    "ssh-ed25519")) != 0)
			goto out;
	} else {
		const char *algs = sshkey_sig_algs(f->upstream_key), *comma = strchr(algs, ',');
		char alg[64];

		snprintf(alg, sizeof(alg), "%.*s", comma ? (int)(comma - algs) : (int)strlen(algs),
		    algs);
		if ((r = sshkey_to_blob(f->upstream_key, &blob)) != 0 ||
		    (r = auth_client_publickey(&req, ssh_transport_session_id(c->up.t), c->user,
		    alg, (struct pg_slice){ blob.p, blob.len }, f->upstream_key, alg)) != 0)
			goto out;
	}
	r = ssh_transport_send_payload(c->up.t, req.p, req.len);
out:
	sshkey_free(eph);
	pg_buf_free(&req);
	pg_buf_free(&blob);
	return r;
}

static void send_relayed(struct sconn *c);

/*
 * Once the upstream keys are in place: a held password or keyboard-interactive attempt goes to
 * the instance, or, once the user proved a key, our own login does.
 */
static void
maybe_upauth(struct sconn *c)
{
	enum ssh_tstate st;
	int r;

	if (c->phase != PH_AUTH || c->up.t == NULL)
		return;
	st = ssh_transport_state(c->up.t);
	if (c->relay != NULL && auth_relay_state(c->relay) == AUTH_RELAY_HELD && st == SSH_T_OPEN)
		send_relayed(c);
	if (!c->user_ok || c->phase != PH_AUTH || (st != SSH_T_SERVICE && st != SSH_T_OPEN))
		return;
	set_phase(c, PH_UPAUTH);
	if ((r = send_upstream_auth(c)) != 0) {
		LOG_ERR(c->prefix, "cannot make the upstream login: %s", pg_strerror(r));
		conn_close(c, "poolgate cannot log in to the instance");
		return;
	}
	flush(c, &c->up);
}

/* ---- the pipe ---- */

/* hostkeys-00@openssh.com / hostkeys-prove-00@openssh.com: never cross (DESIGN.md, the pipe). */
static int
stopped_global(struct sconn *c, struct side *from, struct pg_slice pl)
{
	struct pg_slice s = pl, name;
	uint8_t type;
	int want_reply;
	static const uint8_t failure = SSH_MSG_REQUEST_FAILURE;

	/* byte SSH_MSG_GLOBAL_REQUEST, string request name, boolean want reply, ... */
	if (ssh_get_u8(&s, &type) != 0 || type != SSH_MSG_GLOBAL_REQUEST ||
	    ssh_get_string(&s, &name) != 0 || ssh_get_bool(&s, &want_reply) != 0)
		return 0;
	if (!ssh_slice_eq(name, "hostkeys-00@openssh.com") &&
	    !ssh_slice_eq(name, "hostkeys-prove-00@openssh.com"))
		return 0;
	LOG_DEBUG(c->prefix, "%s: %.*s stopped", from->name, (int)name.len, name.p);
	if (want_reply && ssh_transport_send_payload(from->t, &failure, 1) != 0)
		return -1;
	return 1;
}

static int
pipe_payload(struct sconn *c, struct side *from, struct pg_slice pl)
{
	struct side *to = other(c, from);
	int r;

	if (pl.p[0] > 127) {
		/* Local extensions (128..255) are not relayed; RFC 4253 11.4 wants a reply. */
		LOG_DEBUG(c->prefix, "%s: message %u not relayed", from->name, pl.p[0]);
		return ssh_transport_unimplemented(from->t);
	}
	if (pl.p[0] < 80) {
		/* Late userauth messages are ignored (RFC 4252 5.1). */
		LOG_DEBUG(c->prefix, "%s: message %u not relayed", from->name, pl.p[0]);
		return 0;
	}
	if ((r = stopped_global(c, from, pl)) != 0)
		return r < 0 ? r : 0;
	if ((r = ssh_transport_send_payload(to->t, pl.p, pl.len)) != 0)
		return r;
	if (from == &c->down)
		c->audit.bytes_up += pl.len;
	else
		c->audit.bytes_down += pl.len;
	backpressure(c, from, to);
	return 0;
}

/*
 * The user is in: a user placed with place_peek() (a relayed login) gets their pin now, on the
 * instance that let them in; anyone else's pin is touched.
 */
static void
record_pin(struct sconn *c)
{
	const char *pinned = pins_get(c->f->pins, c->user);

	if (pinned != NULL && strcmp(pinned, c->inst->conf.id) != 0)
		LOG_NOTICE(c->prefix, "user %s: logged in on %s while pinned to %s; pin kept",
		    c->user, c->inst->conf.id, pinned);
	if (pinned != NULL) {
		pins_touch(c->f->pins, c->user, pg_wall_ms());
		return;
	}
	(void)place_record(c->f->reg, c->f->pins, c->user, c->inst, pg_wall_ms(),
	    "the instance accepted the login");
}

static void
open_pipe(struct sconn *c)
{
	struct pg_buf b;
	static const uint8_t success = SSH_MSG_USERAUTH_SUCCESS;
	char text[256];

	/* byte SSH_MSG_USERAUTH_BANNER, string message, string language tag */
	snprintf(text, sizeof(text), "%s -> %s\r\n", c->user, c->inst->conf.id);
	pg_buf_init(&b, 1024);
	if (ssh_put_u8(&b, SSH_MSG_USERAUTH_BANNER) != 0 || ssh_put_cstring(&b, text) != 0 ||
	    ssh_put_cstring(&b, "") != 0 || ssh_transport_send_payload(c->down.t, b.p, b.len) != 0 ||
	    ssh_transport_send_payload(c->down.t, &success, 1) != 0) {
		pg_buf_free(&b);
		conn_close(c, "cannot send USERAUTH_SUCCESS");
		return;
	}
	pg_buf_free(&b);
	set_phase(c, PH_PIPE);
	c->f->stats.sessions_total++;
	/* Idle sessions stay small: the user's keys and the auth state are done with. */
	ukeys_release(c->keys);
	c->keys = NULL;
	auth_server_free(c->auth);
	c->auth = NULL;
	auth_relay_free(c->relay);
	c->relay = NULL;
	record_pin(c);
	/* From here to its close it is a live session. */
	c->live = pins_live_begin(c->f->pins, c->user, c->inst->conf.id) == 0;
	LOG_INFO(c->prefix, "user %s: session open on %s (%s:%u) after %s", c->user,
	    c->inst->conf.id, c->inst_addr, c->inst_port, c->method ? c->method : "publickey");
	/* From now on the timer drives the time-based rekeys of idle sessions (1 hour). */
	uv_timer_stop(&c->timer);
	uv_timer_start(&c->timer, on_timer, REKEY_CHECK_MS, 0);
	flush(c, &c->down);
}

/* ---- messages from each side ---- */

/* Tells a user who cannot be placed why: an auth banner, then a DISCONNECT with reason. */
static void
refuse(struct sconn *c, const char *banner, uint32_t code, const char *reason)
{
	struct pg_buf b;

	pg_buf_init(&b, 1024);
	/* byte SSH_MSG_USERAUTH_BANNER, string message, string language tag */
	if (ssh_put_u8(&b, SSH_MSG_USERAUTH_BANNER) == 0 && ssh_put_cstring(&b, banner) == 0 &&
	    ssh_put_cstring(&b, "") == 0)
		(void)ssh_transport_send_payload(c->down.t, b.p, b.len);
	pg_buf_free(&b);
	ssh_transport_disconnect(c->down.t, code, reason);
}

/* Starts the connection to in, where the user goes. Returns 0, or -1 after closing the session. */
static int
connect_to(struct sconn *c, struct instance *in)
{
	int r;

	c->inst = in;
	inst_ref(c->inst);
	LOG_INFO(c->prefix, "user %s -> instance %s", c->user, c->inst->conf.id);
	if ((r = start_upstream(c)) != 0) {
		LOG_ERR(c->prefix, "instance %s: cannot connect: %s", c->inst->conf.id,
		    pg_strerror(r));
		upstream_failed(c, "the instance cannot be reached");
		return -1;
	}
	return 0;
}

/*
 * Places the user (place_user() records the pin) and connects to the instance. Returns 0, or
 * -1 after closing the session.
 */
static int
place_and_connect(struct sconn *c, int record)
{
	int64_t now = pg_wall_ms();
	struct instance *in;

	in = record ? place_user(c->f->reg, c->f->pins, c->user, now, NULL) :
	    place_peek(c->f->reg, c->f->pins, c->user, now);
	if (in == NULL) {
		int full = place_verdict(c->f->reg, c->f->pins, c->user, now) == PLACE_FULL;

		LOG_NOTICE(c->prefix, "user %s: %s: banner and disconnect", c->user, full ?
		    "pool full" : "no instance is available");
		if (full)
			refuse(c, "poolgate: the pool is full: every machine has as many users as it "
			    "can take. Try again later.\r\n", SSH_DISCONNECT_TOO_MANY_CONNECTIONS,
			    "pool full: no machine can take another user; try again later");
		else
			refuse(c, "poolgate: no instance is available for you right now; try again in "
			    "a minute.\r\n", SSH_DISCONNECT_SERVICE_NOT_AVAILABLE,
			    "no instance is available; try again in a minute");
		conn_close(c, full ? "pool full" : "no instance available");
		return -1;
	}
	return connect_to(c, in);
}

/*
 * The first userauth request names the user. A user whose pin holds as it is gets the connection
 * to their instance started now, so its key exchange overlaps their authentication. Anyone else
 * is placed only once their key is proven: names from unauthenticated peers must never make,
 * move or refresh pins (they would fill the table, skew placement or keep idle pins alive).
 */
static void
route_user(struct sconn *c, struct pg_slice pl)
{
	struct instance *in;

	if (auth_request_user(pl, c->user, sizeof(c->user)) != 0 || !authkeys_user_ok(c->user)) {
		LOG_NOTICE(c->prefix, "invalid user name refused");
		c->user[0] = '\0';
		ssh_transport_disconnect(c->down.t, SSH_DISCONNECT_ILLEGAL_USER_NAME,
		    "invalid user name");
		conn_close(c, "invalid user name");
		return;
	}
	snprintf(c->prefix + strlen(c->prefix), sizeof(c->prefix) - strlen(c->prefix), " %s",
	    c->user);
	auth_server_set_methods(c->auth, sshf_user_methods(c->f, c->user));
	if ((in = place_pinned(c->f->reg, c->f->pins, c->user)) != NULL)
		(void)connect_to(c, in);
}

static void drain(struct sconn *c, struct side *s);
static void from_user(struct sconn *c, struct pg_slice pl);

/* Stops handing the user's messages over until release_user(). */
static void
hold_user(struct sconn *c)
{
	c->down.held = 1;
	uv_read_stop((uv_stream_t *)&c->down.tcp);
}

/*
 * Reads from the user again after a hold: their keys being fetched, a relayed attempt waiting
 * for the instance's verdict, or an answer held back for a penalty.
 */
static void
release_user(struct sconn *c)
{
	if (!c->down.held || c->phase == PH_CLOSING)
		return;
	c->down.held = 0;
	drain(c, &c->down);
	if (c->phase != PH_CLOSING && !c->down.held && !c->down.paused && !c->down.closing &&
	    uv_read_start((uv_stream_t *)&c->down.tcp, on_alloc, on_read) != 0)
		conn_close(c, "connection lost");
}

/*
 * n failed attempts (ssh.limits.penalty). Returns 1 when the answer in reply was taken: held
 * back for the penalty's delay (nothing more is read from the user meanwhile), or the session
 * closed because its source is now blocked. reply NULL: count only (the session is ending).
 */
static int
penalize(struct sconn *c, uint32_t n, struct pg_buf *reply)
{
	uint64_t now = uv_now(c->f->loop);
	uint32_t delay;

	c->audit.failures += n;
	if (sshl_failed(&c->f->lim, &c->lim, n, now, &delay, c->prefix)) {
		ssh_transport_disconnect(c->down.t, SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE,
		    "too many failed logins from your address; try again later");
		conn_close(c, "source blocked after failed logins");
		return 1;
	}
	if (delay == 0 || reply == NULL || reply->len == 0)
		return 0;
	c->lim.held = *reply;
	pg_buf_init(reply, 0);
	c->lim.hold_end_ms = now + delay;
	hold_user(c);
	if (uv_timer_get_due_in(&c->timer) > delay) {
		uv_timer_stop(&c->timer);
		uv_timer_start(&c->timer, on_timer, delay, 0);
	}
	return 1;
}

/* The held answer's time has come. */
static void
release_held(struct sconn *c)
{
	struct pg_buf b = c->lim.held;
	int r = ssh_transport_send_payload(c->down.t, b.p, b.len);

	pg_buf_init(&c->lim.held, 0);
	pg_buf_free(&b);
	c->lim.hold_end_ms = 0;
	if (r != 0) {
		conn_close(c, "protocol error");
		return;
	}
	release_user(c);
}

/* Every key source answered: the first request, held meanwhile, is handled now. */
static void
keys_done(void *arg)
{
	struct sconn *c = arg;
	struct pg_buf first = c->first;

	c->keys_state = KEYS_READY;
	if (c->phase == PH_CLOSING)
		return;
	pg_buf_init(&c->first, 0);
	from_user(c, (struct pg_slice){ first.p, first.len });
	pg_buf_free(&first);
	if (c->phase == PH_CLOSING || c->lim.hold_end_ms != 0)
		return;		/* closed, or its answer held back for a penalty (release_held()) */
	/* A first request that was a relayed attempt keeps the user waiting for its verdict. */
	if (c->relay == NULL || (auth_relay_state(c->relay) != AUTH_RELAY_HELD &&
	    auth_relay_state(c->relay) != AUTH_RELAY_WAIT))
		release_user(c);
}

/*
 * The first request names the user: fetch their keys (when publickey is theirs to use) before
 * answering it.
 */
static void
start_keys_read(struct sconn *c, struct pg_slice pl)
{
	int r = 1;

	pg_buf_init(&c->first, 65536);
	if (pg_buf_append(&c->first, pl.p, pl.len) != 0) {
		conn_close(c, "out of memory");
		return;
	}
	c->keys_state = KEYS_READING;
	hold_user(c);
	if ((auth_server_methods(c->auth) & AUTH_M_PUBLICKEY) &&
	    (r = ukeys_start(c->f->loop, c->f->authorized_keys, sshf_keys_cmd(c->f), c->user,
	    c->prefix, keys_done, c, &c->keys)) < 0) {
		LOG_ERR(c->prefix, "cannot fetch the user's keys: %s", pg_strerror(r));
		conn_close(c, "internal error");
		return;
	}
	if (r == 1)
		keys_done(c);	/* nothing to fetch */
}

/* The held attempt goes to the instance; the user's copy of any secret is wiped. */
static void
send_relayed(struct sconn *c)
{
	struct pg_slice req = auth_relay_request(c->relay);
	int r;

	LOG_DEBUG(c->prefix, "user %s: %s attempt relayed to %s", c->user,
	    auth_relay_kind_name(auth_relay_kind(c->relay)), c->inst->conf.id);
	r = ssh_transport_send_payload(c->up.t, req.p, req.len);
	auth_relay_sent(c->relay);
	if (r != 0) {
		conn_close(c, "relay to the instance failed");
		return;
	}
	flush(c, &c->up);
}

/*
 * A password or keyboard-interactive attempt: the user's instance decides. A user without a pin
 * is sent where placement would put them, without a pin (place_peek); the pin is recorded when
 * the instance lets them in (record_pin). The user's later messages wait until the instance
 * answers. Returns 0 (relayed, or a FAILURE appended to reply), PG_ETOOBIG (too many failures),
 * or PG_EPARSE (malformed; the caller disconnects); after closing the session, PG_ECLOSED.
 */
static int
relay_attempt(struct sconn *c, int kind, struct pg_slice pl, struct pg_buf *reply)
{
	int r;

	if (c->relay == NULL && (c->relay = auth_relay_new()) == NULL)
		return PG_ENOMEM;
	r = auth_relay_begin(c->relay, kind == AUTH_RELAY_PASSWORD ? AUTH_RELAY_PASSWORD_KIND :
	    AUTH_RELAY_KBDINT_KIND, pl);
	auth_relay_wipe(pl);
	if (r == PG_EINVAL) {
		/* A password change the user asks for on their own: never relayed (docs/ssh.md). */
		LOG_NOTICE(c->prefix, "user %s: password change request refused", c->user);
		return auth_server_fail(c->auth, 0, reply);
	}
	if (r != 0)
		return r;
	if (c->inst == NULL && place_and_connect(c, 0) != 0)
		return PG_ECLOSED;
	hold_user(c);
	maybe_upauth(c);
	return c->phase == PH_CLOSING ? PG_ECLOSED : 0;
}

/* The user's answers to the prompts the instance sent (keyboard-interactive). */
static void
relay_info_response(struct sconn *c, struct pg_slice pl)
{
	int r;

	if ((r = auth_relay_info_response(c->relay, pl)) == 0)
		r = ssh_transport_send_payload(c->up.t, pl.p, pl.len);
	auth_relay_wipe(pl);
	if (r != 0) {
		LOG_NOTICE(c->prefix, "bad keyboard-interactive response: %s", pg_strerror(r));
		ssh_transport_disconnect(c->down.t, SSH_DISCONNECT_PROTOCOL_ERROR,
		    "bad keyboard-interactive response");
		conn_close(c, "protocol error");
		return;
	}
	hold_user(c);
	flush(c, &c->up);
}

static void
too_many_failures(struct sconn *c)
{
	LOG_NOTICE(c->prefix, "user %s: too many authentication failures", c->user);
	ssh_transport_disconnect(c->down.t, SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE,
	    "too many authentication failures");
	conn_close(c, "too many authentication failures");
}

static void
from_user(struct sconn *c, struct pg_slice pl)
{
	struct pg_buf reply;
	uint32_t failures;
	int r;

	if (c->phase == PH_PIPE) {
		if ((r = pipe_payload(c, &c->down, pl)) != 0)
			conn_close(c, r == PG_ETOOBIG ? "queue towards the instance overflowed" :
			    "relay to the instance failed");
		return;
	}
	if (pl.p[0] == SSH_MSG_USERAUTH_INFO_RESPONSE && c->relay != NULL &&
	    auth_relay_state(c->relay) == AUTH_RELAY_INFO && c->phase == PH_AUTH) {
		relay_info_response(c, pl);
		return;
	}
	if (pl.p[0] != SSH_MSG_USERAUTH_REQUEST) {
		LOG_NOTICE(c->prefix, "message %u before authentication", pl.p[0]);
		ssh_transport_disconnect(c->down.t, SSH_DISCONNECT_PROTOCOL_ERROR,
		    "message before authentication");
		conn_close(c, "protocol error");
		return;
	}
	if (c->phase != PH_AUTH || c->user_ok)
		return;		/* a request while the upstream login runs: ignored */
	audit_request(&c->audit, pl);
	if (c->user[0] == '\0') {
		route_user(c, pl);
		if (c->phase != PH_CLOSING)
			start_keys_read(c, pl);
		return;
	}
	/* A new request ends a keyboard-interactive exchange (RFC 4256 3.1). */
	if (c->relay != NULL)
		auth_relay_abort(c->relay);
	pg_buf_init(&reply, 65536);
	failures = auth_server_failures(c->auth);
	r = auth_server_handle(c->auth, pl, ssh_transport_session_id(c->down.t), &reply);
	if (r == AUTH_RELAY_PASSWORD || r == AUTH_RELAY_KBDINT)
		r = relay_attempt(c, r, pl, &reply);
	failures = auth_server_failures(c->auth) - failures;
	c->f->stats.auth_failures += failures;
	if (r == PG_ECLOSED ||
	    (failures > 0 && penalize(c, failures, r == 0 ? &reply : NULL))) {
		pg_buf_free(&reply);
		return;
	}
	if (r == 0 && reply.len > 0 &&
	    (r = ssh_transport_send_payload(c->down.t, reply.p, reply.len)) == 0)
		r = 0;
	pg_buf_free(&reply);
	if (r == AUTH_PROVEN) {
		audit_success(&c->audit, pl);
		sshl_authenticated(&c->f->lim, &c->lim, uv_now(c->f->loop));
		c->user_ok = 1;
		if (c->inst == NULL && place_and_connect(c, 1) != 0)
			return;
		maybe_upauth(c);
	} else if (r == PG_ETOOBIG) {
		too_many_failures(c);
	} else if (r < 0) {
		LOG_NOTICE(c->prefix, "bad userauth request: %s", pg_strerror(r));
		ssh_transport_disconnect(c->down.t, SSH_DISCONNECT_PROTOCOL_ERROR,
		    "bad userauth request");
		conn_close(c, "protocol error");
	}
}

/*
 * The instance's answer to a relayed attempt: success opens the pipe; a failure is an ordinary
 * USERAUTH_FAILURE to the user, who may try again up to max_auth_tries; keyboard-interactive
 * prompts go to the user as they are.
 */
static void
relay_verdict(struct sconn *c, struct pg_slice pl)
{
	const char *what = auth_relay_kind_name(auth_relay_kind(c->relay));
	uint32_t failures = auth_server_failures(c->auth);
	unsigned methods = 0;
	struct pg_buf reply;
	int v = auth_relay_from_instance(c->relay, pl, &methods), r = 0;

	if (v < 0) {
		LOG_NOTICE(c->prefix, "instance: message %u out of place in a %s login", pl.p[0],
		    what);
		conn_close(c, "instance protocol error");
		return;
	}
	pg_buf_init(&reply, 65536);
	switch (v) {
	case AUTH_RELAY_V_IGNORE:
		pg_buf_free(&reply);
		return;		/* a banner: the verdict is still to come */
	case AUTH_RELAY_V_SUCCESS:
		pg_buf_free(&reply);
		LOG_INFO(c->prefix, "user %s: %s accepted by instance %s", c->user, what,
		    c->inst->conf.id);
		c->user_ok = 1;
		c->method = what;
		snprintf(c->audit.auth, sizeof(c->audit.auth), "%s", what);
		sshl_authenticated(&c->f->lim, &c->lim, uv_now(c->f->loop));
		open_pipe(c);
		release_user(c);
		return;
	case AUTH_RELAY_V_INFO:
		r = ssh_transport_send_payload(c->down.t, pl.p, pl.len);
		break;
	case AUTH_RELAY_V_CHANGEREQ:
		LOG_NOTICE(c->prefix, "user %s: instance %s asks for a password change, which poolgate "
		    "does not relay; refused", c->user, c->inst->conf.id);
		r = auth_server_fail(c->auth, 0, &reply);
		break;
	case AUTH_RELAY_V_PARTIAL:
		/* The instance wants a second method: only the ones we can relay can follow. */
		methods &= auth_server_methods(c->auth) & (AUTH_M_PASSWORD | AUTH_M_KBDINT);
		LOG_INFO(c->prefix, "user %s: %s partly accepted by instance %s", c->user, what,
		    c->inst->conf.id);
		if (methods != 0) {
			auth_server_set_methods(c->auth, methods);
			r = auth_server_fail(c->auth, 1, &reply);
			break;
		}
		LOG_NOTICE(c->prefix, "user %s: instance %s wants a further method poolgate cannot "
		    "relay", c->user, c->inst->conf.id);
		r = auth_server_fail(c->auth, 0, &reply);
		break;
	default:
		LOG_NOTICE(c->prefix, "user %s: %s refused by instance %s", c->user, what,
		    c->inst->conf.id);
		r = auth_server_fail(c->auth, 0, &reply);
		break;
	}
	failures = auth_server_failures(c->auth) - failures;
	c->f->stats.auth_failures += failures;
	/* A refused password counts like a refused key (ssh.limits.penalty). */
	if (failures > 0 && penalize(c, failures, r == 0 ? &reply : NULL)) {
		pg_buf_free(&reply);
		return;
	}
	if (r == 0 && reply.len > 0)
		r = ssh_transport_send_payload(c->down.t, reply.p, reply.len);
	pg_buf_free(&reply);
	if (r == PG_ETOOBIG) {
		too_many_failures(c);
		return;
	}
	if (r != 0) {
		conn_close(c, "relay to the user failed");
		return;
	}
	flush(c, &c->down);
	release_user(c);
}

static void
from_instance(struct sconn *c, struct pg_slice pl)
{
	int r;

	if (c->phase == PH_PIPE) {
		if ((r = pipe_payload(c, &c->up, pl)) != 0)
			conn_close(c, r == PG_ETOOBIG ? "queue towards the user overflowed" :
			    "relay to the user failed");
		return;
	}
	if (c->phase == PH_AUTH && c->relay != NULL &&
	    auth_relay_state(c->relay) == AUTH_RELAY_WAIT) {
		relay_verdict(c, pl);
		return;
	}
	if (c->phase != PH_UPAUTH) {
		LOG_NOTICE(c->prefix, "instance: message %u before our login", pl.p[0]);
		conn_close(c, "instance protocol error");
		return;
	}
	switch (pl.p[0]) {
	case SSH_MSG_USERAUTH_SUCCESS:
		open_pipe(c);
		break;
	case SSH_MSG_USERAUTH_FAILURE:
		LOG_ERR(c->prefix, "instance %s refused our %s login as %s (TrustedUserCAKeys "
		    "set there?)", c->inst->conf.id,
		    c->f->mode == SSH_UP_CERTIFICATE ? "certificate" : "key", c->user);
		upstream_failed(c, "the instance refused the login");
		break;
	case SSH_MSG_USERAUTH_BANNER:
		break;		/* the instance's banner would hide ours; not shown */
	default:
		LOG_NOTICE(c->prefix, "instance: message %u during our login", pl.p[0]);
		conn_close(c, "instance protocol error");
	}
}

/* ---- reading ---- */

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct sconn *c = h->data;

	(void)hint;
	*buf = uv_buf_init((char *)c->f->rbuf, sizeof(c->f->rbuf));
}

static void
transport_failed(struct sconn *c, struct side *s, int r)
{
	const char *err = ssh_transport_error(s->t);

	if (r == PG_ECLOSED) {
		LOG_INFO(c->prefix, "%s disconnected%s%s", s->name, err[0] ? ": " : "", err);
		conn_close(c, s == &c->down ? "the user disconnected" :
		    "the instance closed the connection");
		return;
	}
	if (s == &c->up && c->hostkey_why != NULL) {
		upstream_failed(c, c->hostkey_why);
		return;
	}
	LOG_NOTICE(c->prefix, "%s: %s", s->name, err[0] ? err : pg_strerror(r));
	conn_close(c, s == &c->down ? "protocol error" : "SSH error talking to the instance");
}

static void
on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct sconn *c = stream->data;
	struct side *s = (uv_tcp_t *)stream == &c->down.tcp ? &c->down : &c->up;
	int r;

	pg_busypoll_touch();
	if (n == 0 || c->phase == PH_CLOSING)
		return;
	if (n < 0) {
		if (n != UV_EOF)
			LOG_INFO(c->prefix, "%s: read: %s", s->name, uv_strerror((int)n));
		conn_close(c, s == &c->down ? "the user closed the connection" :
		    "the instance closed the connection");
		return;
	}
	if (s == &c->down && ppc_pending(&c->lim.pp)) {
		header_input(c, (const uint8_t *)buf->base, (size_t)n);
		return;
	}
	if (s == &c->down && ppc_check_first(&c->lim.pp, &c->f->lim.pp,
	    (const uint8_t *)buf->base, (size_t)n, c->prefix) != 0) {
		conn_close(c, "PROXY header from an untrusted source");
		return;
	}
	if ((r = ssh_transport_feed(s->t, (const uint8_t *)buf->base, (size_t)n)) != 0) {
		flush(c, s);
		transport_failed(c, s, r);
		return;
	}
	drain(c, s);
}

/* Hands every whole message the transport holds to its side's handler, then writes. */
static void
drain(struct sconn *c, struct side *s)
{
	struct pg_slice pl;
	int r = 0;

	while (c->phase != PH_CLOSING && !s->held &&
	    (r = ssh_transport_next_payload(s->t, &pl)) == 1) {
		if (s == &c->down)
			from_user(c, pl);
		else
			from_instance(c, pl);
	}
	if (c->phase == PH_CLOSING)
		return;
	if (r < 0) {
		flush(c, s);
		transport_failed(c, s, r);
		return;
	}
	if (s == &c->up)
		maybe_upauth(c);
	flush(c, &c->down);
	flush(c, &c->up);
}

/* ---- timers ---- */

static void
on_timer(uv_timer_t *t)
{
	struct sconn *c = t->data;

	if (c->phase == PH_PIPE) {
		if (ssh_transport_check_rekey(c->down.t) < 0 || ssh_transport_check_rekey(c->up.t) < 0) {
			conn_close(c, "rekey failed");
			return;
		}
		flush(c, &c->down);
		flush(c, &c->up);
		uv_timer_start(&c->timer, on_timer, REKEY_CHECK_MS, 0);
		return;
	}
	{
		uint64_t now = uv_now(c->f->loop), next;
		enum ssh_tstate st = c->up.t ? ssh_transport_state(c->up.t) : SSH_T_VERSION;
		int up_ready = st == SSH_T_SERVICE || st == SSH_T_OPEN;
		const char *why;

		if (ppc_pending(&c->lim.pp)) {
			ppc_timeout(&c->lim.pp, &c->f->lim.pp, c->prefix);
			conn_close(c, "no PROXY protocol header in time");
			return;
		}
		if (c->lim.hold_end_ms != 0 && now >= c->lim.hold_end_ms) {
			release_held(c);
			if (c->phase == PH_CLOSING)
				return;
		}
		if (c->up_end_ms != 0 && now >= c->up_end_ms && !up_ready) {
			LOG_NOTICE(c->prefix, "instance %s (%s:%u): no key exchange within %u ms "
			    "(ssh.connect_timeout_ms)", c->inst->conf.id, c->inst_addr, c->inst_port,
			    c->f->connect_timeout_ms);
			upstream_failed(c, "the instance did not answer in time");
			return;
		}
		if ((why = sshl_deadline(&c->f->lim, &c->lim, ssh_transport_state(c->down.t), now,
		    &next, c->prefix)) != NULL) {
			conn_close(c, why);
			return;
		}
		if (c->up_end_ms > now && c->up_end_ms < next && !up_ready)
			next = c->up_end_ms;
		uv_timer_start(&c->timer, on_timer, next > now ? next - now : 0, 0);
	}
}

/* ---- accepting ---- */

/* The user's address for from= (without the port): "192.0.2.7", "2001:db8::1". */
static void
peer_ip(const struct sconn *c, char *out, size_t outlen)
{
	const char *p = c->peer, *end = strrchr(p, ':');

	if (p[0] == '[') {
		p++;
		end = strchr(p, ']');
	}
	if (end == NULL || (size_t)(end - p) >= outlen) {
		out[0] = '\0';
		return;
	}
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
}

static int
session_key_ok(void *arg, const char *user, const struct sshkey *key)
{
	struct sconn *c = arg;
	char ip[PG_ADDRSTRLEN];
	struct authkeys_ctx ctx = { .user = user, .client_ip = ip, .now = (uint64_t)time(NULL),
		.log_prefix = c->prefix };

	if (c->keys_state != KEYS_READY || c->keys == NULL)
		return 0;
	peer_ip(c, ip, sizeof(ip));
	return ukeys_key_ok(c->keys, key, &ctx);
}

/* A certificate: from a trusted_user_ca_keys CA, or a CA on a cert-authority line of the user. */
static int
session_cert_ok(void *arg, const char *user, const struct usercert *cert)
{
	struct sconn *c = arg;
	char ip[PG_ADDRSTRLEN];
	struct authkeys_ctx ctx = { .user = user, .client_ip = ip, .now = (uint64_t)time(NULL),
		.log_prefix = c->prefix };

	if (sshf_ca_trusted(c->f, cert->ca) || c->keys == NULL || c->keys_state != KEYS_READY)
		return sshf_user_cert_ok(c->f, user, cert, c->prefix);
	peer_ip(c, ip, sizeof(ip));
	if (ukeys_cert_ok(c->keys, cert, &ctx))
		return 1;
	return sshf_user_cert_ok(c->f, user, cert, c->prefix);
}

/* The client's address (after any PROXY header) names the connection in every log line. */
static void
set_peer(struct sconn *c)
{
	pg_addr_format((struct sockaddr *)&c->lim.src, c->peer);
	snprintf(c->prefix, sizeof(c->prefix), "ssh#%llu %s", (unsigned long long)c->id, c->peer);
}

/* Closes a session that never started: nothing was sent, nothing is owed. */
static void
refuse_unstarted(struct sconn *c, const char *why)
{
	audit_close(&c->audit, why, uv_now(c->f->loop));
	set_phase(c, PH_CLOSING);
	close_side(c, &c->down);
	close_timer(c);
}

/*
 * The SSH session proper: admission by the abuse limits, then our ident and KEXINIT. rest holds
 * bytes that came behind a PROXY header (NULL: none).
 */
static void
session_start(struct sconn *c, const struct pg_slice *rest)
{
	struct ssh_front *f = c->f;
	struct ssh_transport_config tc = { .role = SSH_ROLE_SERVER, .log_prefix = c->prefix,
		.host_keys = f->host_keys, .n_host_keys = f->nhost_keys };
	struct auth_server_conf ac = { .max_tries = f->max_auth_tries, .log_prefix = c->prefix,
		.arg = c, .key_ok = session_key_ok, .cert_ok = session_cert_ok };
	uint64_t now = uv_now(f->loop), next;
	const char *why;
	int r = 0;

	if ((why = sshl_admit(&f->lim, &c->lim, now, c->prefix)) != NULL) {
		refuse_unstarted(c, why);
		return;
	}
	if (ssh_transport_new(&tc, &c->down.t) != 0 || (c->auth = auth_server_new(&ac)) == NULL) {
		LOG_ERR(c->prefix, "out of memory");
		refuse_unstarted(c, "out of memory");
		return;
	}
	LOG_DEBUG(c->prefix, "connected");
	(void)sshl_deadline(&f->lim, &c->lim, SSH_T_VERSION, now, &next, c->prefix);
	uv_timer_stop(&c->timer);
	uv_timer_start(&c->timer, on_timer, next - now, 0);
	flush(c, &c->down);
	for (int i = 0; rest != NULL && i < 2 && r == 0; i++) {
		if (rest[i].len > 0)
			r = ssh_transport_feed(c->down.t, rest[i].p, rest[i].len);
	}
	if (r != 0) {
		flush(c, &c->down);
		transport_failed(c, &c->down, r);
		return;
	}
	if (rest != NULL)
		drain(c, &c->down);
}

/* Bytes from a trusted balancer before the session: its PROXY header, maybe more. */
static void
header_input(struct sconn *c, const uint8_t *p, size_t n)
{
	struct pg_slice rest[2];
	int r = ppc_feed(&c->lim.pp, &c->f->lim.pp, p, n, &c->lim.src, rest, c->prefix);

	if (r == 0)
		return;
	if (r < 0) {
		conn_close(c, "invalid PROXY protocol header");
		return;
	}
	set_peer(c);
	session_start(c, rest);
	ppc_done(&c->lim.pp);
}

void
session_accept(struct ssh_front *f, uv_stream_t *server)
{
	int len = sizeof(struct sockaddr_storage), r;
	struct sconn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		LOG_ERR("ssh", "out of memory accepting a connection");
		return;
	}
	c->f = f;
	c->id = f->next_id++;
	c->down.name = "user";
	c->up.name = "instance";
	c->down.conn = c->up.conn = c;
	uv_tcp_init(f->loop, &c->down.tcp);
	uv_timer_init(f->loop, &c->timer);
	c->down.tcp.data = c->up.tcp.data = c->timer.data = c;
	c->down.inited = 1;
	c->next = f->conns;
	if (f->conns != NULL)
		f->conns->pprev = &c->next;
	f->conns = c;
	c->pprev = &f->conns;
	f->nconns++;
	audit_start(&c->audit, uv_now(f->loop));
	snprintf(c->prefix, sizeof(c->prefix), "ssh#%llu", (unsigned long long)c->id);
	if ((r = uv_accept(server, (uv_stream_t *)&c->down.tcp)) != 0) {
		LOG_WARN("ssh", "accept: %s", uv_strerror(r));
		refuse_unstarted(c, "accept failed");
		return;
	}
	c->down.connected = 1;
	f->stats.conns_total++;
	if (uv_tcp_getpeername(&c->down.tcp, (struct sockaddr *)&c->lim.src, &len) != 0)
		memset(&c->lim.src, 0, sizeof(c->lim.src));
	set_peer(c);
	if (f->stopping || f->nconns > f->max_connections) {
		LOG_NOTICE(c->prefix, "refused: %zu connections open (ssh.max_connections)",
		    f->nconns - 1);
		f->stats.conns_rejected++;
		refuse_unstarted(c, "max_connections");
		return;
	}
	if ((r = ppc_start(&c->lim.pp, &f->lim.pp, (struct sockaddr *)&c->lim.src)) < 0) {
		LOG_ERR(c->prefix, "out of memory");
		refuse_unstarted(c, "out of memory");
		return;
	}
	uv_tcp_nodelay(&c->down.tcp, 1);
	c->down.reading = 1;
	uv_read_start((uv_stream_t *)&c->down.tcp, on_alloc, on_read);
	if (r == 1) {
		/* A trusted balancer's PROXY header comes first; nothing is sent before it. */
		uv_timer_start(&c->timer, on_timer, f->lim.pp.timeout_ms, 0);
		return;
	}
	session_start(c, NULL);
}
