/*
 * One struct lprobe per instance (its timer, its kept connection, the round in progress) and one
 * struct lconn per TCP connection (the socket, its uv_poll handle, the libssh2 session). Phases
 * change in set_phase() only; step() drives libssh2 as far as it goes without blocking and then
 * waits on the socket for the direction libssh2 names.
 *
 * Lifetimes: an lconn is torn down synchronously (socket shut down first, so libssh2 cannot want
 * to wait any more, then the session freed) and its memory and socket go in its poll handle's
 * close callback. An lprobe goes when it is stopping, its timer has closed and no lconn of its is
 * still closing; the prober when its last lprobe is gone.
 */
#include "health/loadprobe.h"
#include "backends/load.h"
#include "core/secretfile.h"
#include "certs/keyfile.h"
#include "certs/usercert.h"
#include "core/addr.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/jitter.h"
#include "core/log.h"
#include "core/sshwire.h"
#include "health/loadparse.h"

#include <libssh2.h>

#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOGP "load"
#define CERT_LIFETIME_S 600	/* the probe certificate; renewed at a new login past half of it */
#define MAX_STDERR_KEPT 512	/* for the reason a failing command gives */
#define MAX_STDERR_READ (1u << 20)
#define BANNER "SSH-2.0-poolgate_load_probe"
/* Host key algorithms certs/sshkey can check (no ssh-rsa SHA-1, no DSA). */
#define HOSTKEY_ALGS "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521," \
	"rsa-sha2-512,rsa-sha2-256"

struct loadprober {
	uv_loop_t *loop;
	struct registry *reg;
	struct hostpolicy *hosts;
	/* Settings (reloadable). */
	uint32_t interval_ms, timeout_ms, jitter_pct;
	char *user, *command;
	uint64_t user_gen;		/* bumped when user changes: older sessions are dropped */
	/* Identity (start-up only). */
	enum load_auth auth;
	char *key_path;			/* auth key; for the reload warning */
	struct sshkey *key;		/* signs the logins */
	struct sshkey *ca;		/* auth certificate: signs the certificate */
	struct pg_buf cert;		/* the current certificate blob */
	uint64_t cert_until;		/* Unix seconds it expires */
	uint64_t cert_serial;
	uint64_t rng;			/* jitter; not security relevant */
	size_t live;			/* lprobes not yet freed */
	int stopping;
};

enum lphase { LP_IDLE, LP_CONNECT, LP_HANDSHAKE, LP_AUTH, LP_OPEN, LP_EXEC, LP_READ, LP_CLOSE,
	LP_FREE };

static const char *const phase_names[] = { "idle", "connecting", "in the SSH handshake",
	"logging in", "opening a channel", "starting the command", "reading the output",
	"closing the channel", "freeing the channel" };

struct lprobe;

struct lconn {
	struct lprobe *p;
	uv_poll_t poll;
	int fd;
	LIBSSH2_SESSION *sess;
	LIBSSH2_CHANNEL *chan;
	struct pg_buf pub;		/* the key or certificate blob this login presents */
	void *sign_arg;			/* libssh2's abstract for sign(): the prober */
	uint64_t user_gen;
	int authed;
};

struct lprobe {
	struct loadprober *lp;
	struct instance *in;		/* a reference of our own */
	uv_timer_t timer;		/* the next round, or the current phase's deadline */
	struct lconn *c;		/* the connection, kept between rounds; NULL when none */
	enum lphase phase;
	int reused;			/* this round began on a kept session */
	int retried;			/* this round already reconnected once */
	struct pg_buf out, err;		/* the command's stdout (bounded) and its first stderr */
	size_t err_total;
	int closing;			/* lconns whose poll handle is still closing */
	int stopping, timer_closed;
	char prefix[PG_ID_MAX + 8];
};

static void step(struct lprobe *p);
static void on_timer(uv_timer_t *t);

/* --- small things --------------------------------------------------------------------------- */

static LIBSSH2_ALLOC_FUNC(ls_alloc)
{
	return malloc(count);
}

static LIBSSH2_FREE_FUNC(ls_free)
{
	free(ptr);
}

static LIBSSH2_REALLOC_FUNC(ls_realloc)
{
	return realloc(ptr, count);
}

/* libssh2's last error in words; its own messages name its internals ("transport read"). */
static const char *
ls_error(LIBSSH2_SESSION *s)
{
	char *msg = NULL;

	switch (libssh2_session_last_error(s, &msg, NULL, 0)) {
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
		return "the instance closed the connection";
	case LIBSSH2_ERROR_SOCKET_RECV:
		return "receiving failed";
	case LIBSSH2_ERROR_SOCKET_SEND:
		return "sending failed";
	case LIBSSH2_ERROR_KEX_FAILURE:
		return "key exchange failed";
	case LIBSSH2_ERROR_CHANNEL_FAILURE:
		return "the instance refused the channel";
	}
	return msg != NULL && msg[0] != '\0' ? msg : "unknown libssh2 error";
}

/* Printable ASCII of the first line of b, at most n bytes, for a reason or a log line. */
static void
first_line(const struct pg_buf *b, char *out, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < b->len && k + 1 < n && b->p[i] != '\n'; i++)
		out[k++] = b->p[i] >= 0x20 && b->p[i] < 0x7f ? (char)b->p[i] : '?';
	out[k] = '\0';
}

/* --- the identity --------------------------------------------------------------------------- */

/*
 * libssh2 asks for the signature of a userauth request (RFC 4252 7) and wants the signature
 * blob's inner part: for ECDSA the (mpint r, mpint s) string, for ed25519 the 64 bytes. It adds
 * the algorithm name itself (for an ECDSA certificate, the plain key's name).
 */
static LIBSSH2_USERAUTH_PUBLICKEY_SIGN_FUNC(sign)
{
	struct loadprober *lp = *abstract;
	const char *algs = sshkey_sig_algs(lp->key), *comma = strchr(algs, ',');
	char alg[64];
	struct pg_buf blob;
	struct pg_slice s, name, inner;
	int r = -1;

	snprintf(alg, sizeof(alg), "%.*s", comma ? (int)(comma - algs) : (int)strlen(algs), algs);
	pg_buf_init(&blob, 4096);
	if (sshkey_sign(lp->key, alg, data, data_len, &blob) != 0)
		goto out;
	/* string algorithm, string signature */
	s = (struct pg_slice){ blob.p, blob.len };
	if (ssh_get_string(&s, &name) != 0 || ssh_get_string(&s, &inner) != 0 ||
	    (*sig = malloc(inner.len ? inner.len : 1)) == NULL)
		goto out;
	memcpy(*sig, inner.p, inner.len);
	*sig_len = inner.len;
	r = 0;
out:
	pg_buf_free(&blob);
	return r;
}

/* The blob a new login presents: the key's, or a certificate renewed past half its life. */
static int
identity_blob(struct loadprober *lp, struct pg_buf *out)
{
	uint64_t now = (uint64_t)time(NULL);
	int r;

	if (lp->auth == LOAD_AUTH_KEY)
		return sshkey_to_blob(lp->key, out);
	if (lp->cert.len == 0 || now + CERT_LIFETIME_S / 2 >= lp->cert_until) {
		struct usercert_req req = { .key = lp->key, .ca = lp->ca, .principal = lp->user,
			.key_id = "poolgate load probe", .serial = ++lp->cert_serial, .now = now,
			.lifetime_s = CERT_LIFETIME_S };

		pg_buf_reset(&lp->cert);
		if ((r = usercert_make(&req, &lp->cert)) != 0)
			return r;
		lp->cert_until = now + CERT_LIFETIME_S;
		LOG_DEBUG(LOGP, "new probe certificate for %s, serial %llu", lp->user,
		    (unsigned long long)lp->cert_serial);
	}
	return pg_buf_append(out, lp->cert.p, lp->cert.len);
}

/* --- connections ---------------------------------------------------------------------------- */

static void lprobe_maybe_free(struct lprobe *p);

static void
on_lconn_closed(uv_handle_t *h)
{
	struct lconn *c = h->data;
	struct lprobe *p = c->p;

	close(c->fd);
	pg_buf_free(&c->pub);
	free(c);
	p->closing--;
	lprobe_maybe_free(p);
}

/*
 * Ends the connection now. The socket is shut down first: libssh2 then sees EOF and EPIPE, never
 * "would block", so freeing its channel and session cannot want to wait (and is told not to in
 * any case). graceful: a kept, idle session says goodbye first (best effort, not waited for).
 */
static void
lconn_drop(struct lprobe *p, int graceful)
{
	struct lconn *c = p->c;
	int r;

	if (c == NULL)
		return;
	p->c = NULL;
	if (c->sess != NULL) {
		if (graceful && c->authed && c->chan == NULL)
			(void)libssh2_session_disconnect(c->sess, "poolgate load probe stopping");
		shutdown(c->fd, SHUT_RDWR);
		libssh2_session_set_blocking(c->sess, 1);
		libssh2_session_set_timeout(c->sess, 100);
		if (c->chan != NULL)
			(void)libssh2_channel_free(c->chan);
		if ((r = libssh2_session_free(c->sess)) != 0)
			LOG_ERR(p->prefix, "libssh2 session not freed: %d", r);
	}
	p->closing++;
	uv_close((uv_handle_t *)&c->poll, on_lconn_closed);
}

static void
set_phase(struct lprobe *p, enum lphase ph)
{
	if (p->phase != ph)
		LOG_DEBUG(p->prefix, "%s -> %s", phase_names[p->phase], phase_names[ph]);
	p->phase = ph;
	uv_timer_stop(&p->timer);
	if (ph != LP_IDLE)
		uv_timer_start(&p->timer, on_timer, p->lp->timeout_ms, 0);
}

/* The round is over (good or bad): keep the session if asked, schedule the next round. */
static void
round_over(struct lprobe *p)
{
	if (p->c != NULL)
		uv_poll_stop(&p->c->poll);
	set_phase(p, LP_IDLE);
	pg_buf_free(&p->out);
	pg_buf_free(&p->err);
	if (!p->stopping)
		uv_timer_start(&p->timer, on_timer, pg_jitter(&p->lp->rng, p->lp->interval_ms,
		    p->lp->jitter_pct), 0);
}

static int connect_start(struct lprobe *p, char *why, size_t whylen);

/*
 * The round failed with reason. keep: the session is fine (the command failed, or said something
 * unparsable) and stays for the next round. Otherwise the connection goes, and a kept session that
 * broke before the command said anything is replaced once, at once; failing that, the load
 * becomes unknown.
 */
static void
vfail(struct lprobe *p, int keep, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

static void
vfail(struct lprobe *p, int keep, const char *fmt, va_list ap)
{
	char reason[LOAD_REASON_MAX];

	vsnprintf(reason, sizeof(reason), fmt, ap);
	if (keep) {
		load_set_unknown(p->in, reason);
		round_over(p);
		return;
	}
	lconn_drop(p, 0);
	if (p->reused && !p->retried && (p->phase == LP_OPEN || p->phase == LP_EXEC ||
	    (p->phase == LP_READ && p->out.len == 0))) {
		LOG_INFO(p->prefix, "kept session gone (%s); logging in again", reason);
		p->retried = 1;
		p->reused = 0;
		if (connect_start(p, reason, sizeof(reason)) == 0)
			return;
	}
	load_set_unknown(p->in, reason);
	round_over(p);
}

static void __attribute__((format(printf, 2, 3)))
fail(struct lprobe *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(p, 0, fmt, ap);
	va_end(ap);
}

/* A failed round whose session is still good. */
static void __attribute__((format(printf, 2, 3)))
fail_keep(struct lprobe *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(p, 1, fmt, ap);
	va_end(ap);
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Waits for the socket in the direction libssh2 was blocked on. */
static void
wait_socket(struct lprobe *p)
{
	struct lconn *c = p->c;
	int dirs = libssh2_session_block_directions(c->sess), events = 0, r;

	if (dirs & LIBSSH2_SESSION_BLOCK_INBOUND)
		events |= UV_READABLE;
	if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		events |= UV_WRITABLE;
	/* libssh2 says "would block" without a direction only while it waits for the peer. */
	if (events == 0)
		events = UV_READABLE;
	if ((r = uv_poll_start(&c->poll, events, on_poll)) != 0)
		fail(p, "cannot watch the socket: %s", uv_strerror(r));
}

static void
on_poll(uv_poll_t *h, int status, int events)
{
	struct lconn *c = h->data;
	struct lprobe *p = c->p;
	socklen_t slen = sizeof(int);
	int soerr = 0;

	if (p->c != c || p->stopping)
		return;
	if (status < 0) {
		/* libuv reports POLLERR as UV_EBADF; the socket knows what really happened. */
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 && soerr != 0)
			fail(p, "%s: %s", p->phase == LP_CONNECT ? "connect" : "socket",
			    strerror(soerr));
		else
			fail(p, "socket: %s", uv_strerror(status));
		return;
	}
	step(p);
}

/* Opens a socket to the instance's sshd and a libssh2 session for it. 0, or -1 with why. */
static int
connect_start(struct lprobe *p, char *why, size_t whylen)
{
	struct loadprober *lp = p->lp;
	const struct inst_conf *ic = &p->in->conf;
	struct sockaddr_storage ss;
	struct lconn *c = NULL;
	int fd = -1, one = 1, r;

	if (pg_addr_from_ip(ic->address, ic->ssh_port, &ss) != 0) {
		snprintf(why, whylen, "invalid address %s", ic->address);
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, ss.ss_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) != 0 && errno != EINPROGRESS) {
		snprintf(why, whylen, "connect: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (r = uv_poll_init_socket(lp->loop, &c->poll, fd)) != 0) {
		snprintf(why, whylen, "%s", c == NULL ? "out of memory" : uv_strerror(r));
		free(c);
		close(fd);
		return -1;
	}
	/* From here the poll handle owns fd: it is closed in on_lconn_closed. */
	c->p = p;
	c->fd = fd;
	c->poll.data = c;
	c->sign_arg = lp;
	c->user_gen = lp->user_gen;
	pg_buf_init(&c->pub, 16384);
	p->c = c;
	if ((c->sess = libssh2_session_init_ex(ls_alloc, ls_free, ls_realloc, c)) == NULL ||
	    identity_blob(lp, &c->pub) != 0) {
		snprintf(why, whylen, "out of memory");
		lconn_drop(p, 0);
		return -1;
	}
	libssh2_session_set_blocking(c->sess, 0);
	(void)libssh2_banner_set(c->sess, BANNER);
	(void)libssh2_session_method_pref(c->sess, LIBSSH2_METHOD_HOSTKEY, HOSTKEY_ALGS);
	set_phase(p, LP_CONNECT);
	if ((r = uv_poll_start(&c->poll, UV_WRITABLE, on_poll)) != 0) {
		snprintf(why, whylen, "cannot watch the socket: %s", uv_strerror(r));
		lconn_drop(p, 0);
		return -1;
	}
	return 0;
}

/* --- the round ------------------------------------------------------------------------------ */

/* 0 to go on with the login; else the round has failed. */
static int
check_hostkey(struct lprobe *p)
{
	struct lconn *c = p->c;
	const struct inst_conf *ic = &p->in->conf;
	const char *blob, *why = NULL;
	struct sshkey *key = NULL;
	size_t len = 0;
	int type, r;

	if ((blob = libssh2_session_hostkey(c->sess, &len, &type)) == NULL ||
	    sshkey_from_blob((struct pg_slice){ (const uint8_t *)blob, len }, &key) != 0) {
		fail(p, "host key of a type poolgate cannot check");
		return -1;
	}
	r = hostpolicy_check(p->lp->hosts, ic->id, ic->address, ic->ssh_port, key, &why, p->prefix);
	sshkey_free(key);
	if (r != 0) {
		fail(p, "host key refused: %s", why);
		return -1;
	}
	return 0;
}

/* Reads what the command wrote so far. 1 at the end of its output, 0 to wait, -1 failed. */
static int
read_output(struct lprobe *p)
{
	LIBSSH2_CHANNEL *ch = p->c->chan;
	char buf[16384];
	ssize_t n, e;

	for (;;) {
		n = libssh2_channel_read(ch, buf, sizeof(buf));
		if (n > 0 && pg_buf_append(&p->out, buf, (size_t)n) != 0) {
			fail(p, "output longer than %u bytes", LOADPROBE_MAX_OUTPUT);
			return -1;
		}
		e = libssh2_channel_read_stderr(ch, buf, sizeof(buf));
		if (e > 0) {
			size_t keep = MAX_STDERR_KEPT - p->err.len;
			(void)pg_buf_append(&p->err, buf, (size_t)e < keep ? (size_t)e : keep);
			if ((p->err_total += (size_t)e) > MAX_STDERR_READ) {
				fail(p, "more than %u bytes on stderr", MAX_STDERR_READ);
				return -1;
			}
		}
		if ((n < 0 && n != LIBSSH2_ERROR_EAGAIN) || (e < 0 && e != LIBSSH2_ERROR_EAGAIN)) {
			fail(p, "reading the output: %s", ls_error(p->c->sess));
			return -1;
		}
		if (n <= 0 && e <= 0)
			break;
	}
	return n == 0 && e == 0 && libssh2_channel_eof(ch) ? 1 : 0;
}

/* The command has finished and its channel is freed: judge what it said. */
static void
judge(struct lprobe *p, int status)
{
	struct loadprober *lp = p->lp;
	struct load_figures f;
	char why[LOAD_REASON_MAX - 32], line[128];

	if (status != 0) {
		first_line(&p->err, line, sizeof(line));
		fail_keep(p, "the command exited with status %d%s%s", status, line[0] ? ": " : "",
		    line);
		return;
	}
	if (loadparse((struct pg_slice){ p->out.p, p->out.len }, &f, why, sizeof(why)) != 0) {
		fail_keep(p, "output: %s", why);
		return;
	}
	/* Placement trusts the figures for three intervals plus a slow round of timeouts. */
	load_set_known(p->in, &f, pg_wall_ms(),
	    (int64_t)lp->interval_ms * 3 + (int64_t)lp->timeout_ms * 8);
	LOG_DEBUG(p->prefix, "load1 %.2f on %u cpus, memory %.1f%% used, %u gpus, %u users", f.load1,
	    f.ncpu, 100 * load_mem_used(&f), f.ngpu, f.users);
	round_over(p);
}

/* Drives the current phase as far as libssh2 goes without blocking. */
static void
step(struct lprobe *p)
{
	struct loadprober *lp = p->lp;
	struct lconn *c = p->c;
	socklen_t slen = sizeof(int);
	int rc, soerr = 0, status;

	for (;;) {
		switch (p->phase) {
		case LP_IDLE:
			return;
		case LP_CONNECT:
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) != 0)
				soerr = errno;
			if (soerr != 0) {
				fail(p, "connect: %s", strerror(soerr));
				return;
			}
			set_phase(p, LP_HANDSHAKE);
			break;
		case LP_HANDSHAKE:
			if ((rc = libssh2_session_handshake(c->sess, c->fd)) == LIBSSH2_ERROR_EAGAIN)
				goto wait;
			if (rc != 0) {
				fail(p, "SSH handshake: %s", ls_error(c->sess));
				return;
			}
			if (check_hostkey(p) != 0)
				return;
			set_phase(p, LP_AUTH);
			break;
		case LP_AUTH:
			rc = libssh2_userauth_publickey(c->sess, lp->user, c->pub.p, c->pub.len, sign,
			    &c->sign_arg);
			if (rc == LIBSSH2_ERROR_EAGAIN)
				goto wait;
			if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED ||
			    rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
				fail(p, "login as %s refused (%s)", lp->user, lp->auth == LOAD_AUTH_KEY ?
				    "key" : "certificate from the pool user CA");
				return;
			}
			if (rc != 0) {
				fail(p, "login as %s: %s", lp->user, ls_error(c->sess));
				return;
			}
			c->authed = 1;
			load_note_login(p->in);
			LOG_INFO(p->prefix, "logged in to %s:%u as %s; the session is kept for later "
			    "rounds", p->in->conf.address, p->in->conf.ssh_port, lp->user);
			set_phase(p, LP_OPEN);
			break;
		case LP_OPEN:
			if ((c->chan = libssh2_channel_open_session(c->sess)) == NULL) {
				if (libssh2_session_last_errno(c->sess) == LIBSSH2_ERROR_EAGAIN)
					goto wait;
				fail(p, "opening a channel: %s", ls_error(c->sess));
				return;
			}
			set_phase(p, LP_EXEC);
			break;
		case LP_EXEC:
			rc = libssh2_channel_exec(c->chan, lp->command != NULL ? lp->command :
			    LOADPARSE_DEFAULT_COMMAND);
			if (rc == LIBSSH2_ERROR_EAGAIN)
				goto wait;
			if (rc != 0) {
				fail(p, "starting the command: %s", ls_error(c->sess));
				return;
			}
			pg_buf_reset(&p->out);
			pg_buf_reset(&p->err);
			p->err_total = 0;
			set_phase(p, LP_READ);
			break;
		case LP_READ:
			if ((rc = read_output(p)) < 0)
				return;
			if (rc == 0)
				goto wait;
			set_phase(p, LP_CLOSE);
			break;
		case LP_CLOSE:
			if ((rc = libssh2_channel_close(c->chan)) == LIBSSH2_ERROR_EAGAIN)
				goto wait;
			if (rc != 0) {
				fail(p, "closing the channel: %s", ls_error(c->sess));
				return;
			}
			set_phase(p, LP_FREE);
			break;
		case LP_FREE:
			status = libssh2_channel_get_exit_status(c->chan);
			if ((rc = libssh2_channel_free(c->chan)) == LIBSSH2_ERROR_EAGAIN)
				goto wait;
			c->chan = NULL;
			if (rc != 0) {
				fail(p, "freeing the channel: %s", ls_error(c->sess));
				return;
			}
			judge(p, status);
			return;
		}
	}
wait:
	wait_socket(p);
}

static void
round_start(struct lprobe *p)
{
	char why[LOAD_REASON_MAX];

	p->retried = 0;
	if (p->c != NULL && p->c->authed && p->c->user_gen == p->lp->user_gen) {
		p->reused = 1;
		set_phase(p, LP_OPEN);
		step(p);
		return;
	}
	lconn_drop(p, 1);
	p->reused = 0;
	if (connect_start(p, why, sizeof(why)) != 0) {
		load_set_unknown(p->in, why);
		round_over(p);
	}
}

static void
on_timer(uv_timer_t *t)
{
	struct lprobe *p = t->data;

	if (p->stopping)
		return;
	if (p->phase == LP_IDLE) {
		round_start(p);
		return;
	}
	fail(p, "timed out after %u ms %s", p->lp->timeout_ms, phase_names[p->phase]);
}

/* --- instances ------------------------------------------------------------------------------ */

static void
prober_free(struct loadprober *lp)
{
	sshkey_free(lp->key);
	sshkey_free(lp->ca);
	pg_buf_free(&lp->cert);
	free(lp->user);
	free(lp->command);
	free(lp->key_path);
	free(lp);
	libssh2_exit();
}

static void
lprobe_maybe_free(struct lprobe *p)
{
	struct loadprober *lp = p->lp;

	if (!p->stopping || !p->timer_closed || p->closing > 0)
		return;
	pg_buf_free(&p->out);
	pg_buf_free(&p->err);
	inst_unref(p->in);
	free(p);
	if (--lp->live == 0 && lp->stopping)
		prober_free(lp);
}

static void
on_timer_closed(uv_handle_t *h)
{
	struct lprobe *p = h->data;

	p->timer_closed = 1;
	lprobe_maybe_free(p);
}

static void
lprobe_stop(struct lprobe *p)
{
	if (p->stopping)
		return;
	p->stopping = 1;
	load_set_off(p->in);
	if (p->in->probe_load == p)
		p->in->probe_load = NULL;
	lconn_drop(p, 1);
	uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}

static void
hook_added(void *arg, struct instance *in)
{
	struct loadprober *lp = arg;
	struct lprobe *p;

	if (lp->stopping || (p = calloc(1, sizeof(*p))) == NULL)
		return;
	p->lp = lp;
	p->in = in;
	inst_ref(in);
	in->probe_load = p;
	snprintf(p->prefix, sizeof(p->prefix), "load %s", in->conf.id);
	pg_buf_init(&p->out, LOADPROBE_MAX_OUTPUT);
	pg_buf_init(&p->err, MAX_STDERR_KEPT);
	uv_timer_init(lp->loop, &p->timer);
	p->timer.data = p;
	lp->live++;
	load_reset(in, "not measured yet");
	/* Spread first rounds so a big pool is not logged in to in one burst. */
	uv_timer_start(&p->timer, on_timer, 100 + pg_jitter_rand(&lp->rng) % 1000, 0);
}

static void
hook_changed(void *arg, struct instance *in, int endpoint)
{
	struct lprobe *p = in->probe_load;

	if (p == NULL || !endpoint)
		return;
	/* The figures and the session belong to the old endpoint. */
	lconn_drop(p, 1);
	load_reset(in, "endpoint changed: not measured yet");
	pg_buf_free(&p->out);
	pg_buf_free(&p->err);
	set_phase(p, LP_IDLE);
	uv_timer_start(&p->timer, on_timer, 0, 0);
}

static void
hook_removed(void *arg, struct instance *in)
{
	if (in->probe_load != NULL)
		lprobe_stop(in->probe_load);
}

/* --- the prober ----------------------------------------------------------------------------- */

static int
set_settings(struct loadprober *lp, const struct pg_config *cfg)
{
	char *user = strdup(cfg->load.user != NULL ? cfg->load.user : ""), *cmd = NULL;

	if (user == NULL || (cfg->load.command != NULL && (cmd = strdup(cfg->load.command)) == NULL)) {
		free(user);
		return PG_ENOMEM;
	}
	if (lp->user != NULL && strcmp(lp->user, user) != 0) {
		lp->user_gen++;
		pg_buf_reset(&lp->cert);	/* its principal is the old user */
	}
	free(lp->user);
	free(lp->command);
	lp->user = user;
	lp->command = cmd;
	lp->interval_ms = cfg->load.interval_ms;
	lp->timeout_ms = cfg->load.timeout_ms;
	lp->jitter_pct = cfg->health.jitter_pct;
	return 0;
}

/* The key that signs: a file (auth key), or a fresh P-256 key and the pool CA (certificate). */
static int
load_identity(struct loadprober *lp, const struct pg_config *cfg, char *err, size_t errlen)
{
	char fp[SSHKEY_FP_LEN];
	int r;

	if (cfg->load.auth == LOAD_AUTH_KEY) {
		if ((r = pg_secret_check_path(cfg->load.key, "health.load.key", err, errlen)) != 0 ||
		    (r = sshkey_load_private(cfg->load.key, &lp->key, err, errlen)) != 0)
			return r;
		if (sshkey_type(lp->key) == SSHKEY_RSA) {
			snprintf(err, errlen, "health.load.key %s: an RSA key cannot be used (libssh2 "
			    "1.10 signs RSA logins with SHA-1, which OpenSSH refuses); use ed25519 or "
			    "ECDSA", cfg->load.key);
			return PG_EINVAL;
		}
		if ((lp->key_path = strdup(cfg->load.key)) == NULL)
			return PG_ENOMEM;
		if (sshkey_fingerprint(lp->key, fp, sizeof(fp)) != 0)
			fp[0] = '\0';
		LOG_INFO(LOGP, "load probe logs in as %s with key %s (%s %s)", cfg->load.user,
		    cfg->load.key, sshkey_type_name(lp->key), fp);
		return 0;
	}
	/* The same CA as the SSH front door's; made here when that door is off or in key mode. */
	if ((r = keyfile_load(cfg->ssh.ca_key, cfg->state_dir, KEYFILE_USER_CA,
	    KEYFILE_USER_CA_WHAT, LOGP, &lp->ca, err, errlen)) != 0)
		return r;
	if ((r = sshkey_generate_ecdsa_p256(&lp->key)) != 0) {
		snprintf(err, errlen, "cannot make the load probe's key");
		return r;
	}
	LOG_INFO(LOGP, "load probe logs in as %s with ECDSA P-256 certificates from the pool user "
	    "CA", cfg->load.user);
	return 0;
}

int
loadprober_start(uv_loop_t *loop, struct registry *reg, struct hostpolicy *hosts,
    const struct pg_config *cfg, struct loadprober **out, char *err, size_t errlen)
{
	struct loadprober *lp = calloc(1, sizeof(*lp));
	struct reg_hooks hooks = { hook_added, hook_changed, hook_removed, NULL };
	int r;

	if (lp == NULL) {
		snprintf(err, errlen, "out of memory");
		return PG_ENOMEM;
	}
	if (libssh2_init(0) != 0) {
		free(lp);
		snprintf(err, errlen, "libssh2_init failed");
		return PG_ENOMEM;
	}
	lp->loop = loop;
	lp->reg = reg;
	lp->hosts = hosts;
	lp->auth = cfg->load.auth;
	pg_buf_init(&lp->cert, 16384);
	pg_jitter_seed(&lp->rng);
	if ((r = set_settings(lp, cfg)) != 0 || (r = load_identity(lp, cfg, err, errlen)) != 0)
		goto fail;
	hooks.arg = lp;
	if ((r = reg_add_hooks(reg, &hooks)) != 0) {
		snprintf(err, errlen, "too many registry observers");
		goto fail;
	}
	for (struct instance *in = reg_first(reg); in != NULL; in = in->next)
		hook_added(lp, in);
	*out = lp;
	return 0;
fail:
	if (r == PG_ENOMEM)
		snprintf(err, errlen, "out of memory");
	prober_free(lp);
	return r;
}

int
loadprober_reload(struct loadprober *lp, const struct pg_config *cfg)
{
	if (cfg->load.auth != lp->auth || (lp->auth == LOAD_AUTH_KEY &&
	    strcmp(cfg->load.key, lp->key_path) != 0))
		LOG_WARN(LOGP, "health.load.auth or .key changed: the new identity is used after a "
		    "restart");
	return set_settings(lp, cfg);
}

void
loadprober_stop(struct loadprober *lp)
{
	if (lp == NULL || lp->stopping)
		return;
	lp->stopping = 1;
	reg_remove_hooks(lp->reg, lp);
	for (struct instance *in = reg_first(lp->reg); in != NULL; in = in->next) {
		if (in->probe_load != NULL)
			lprobe_stop(in->probe_load);
	}
	if (lp->live == 0)
		prober_free(lp);
}
