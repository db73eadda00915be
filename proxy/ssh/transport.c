#include "proxy/ssh/transport.h"
#include "proxy/ssh/cipher.h"
#include "proxy/ssh/packet.h"
#include "core/sshwire.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* RFC 4253 4.2: the identification line is at most 255 bytes with CR LF; so are the lines before. */
#define VERSION_MAX_LINE 255
#define VERSION_MAX_LINES 32

/* Where a key exchange stands; K_IDLE between exchanges. */
enum kstate {
	K_IDLE,
	K_WAIT_KEXINIT,	/* ours is sent, the peer's has not come */
	K_WAIT_INIT,	/* server: waiting for the client's KEX_INIT */
	K_WAIT_REPLY,	/* client: waiting for the server's KEX_REPLY */
	K_WAIT_NEWKEYS,	/* ours is sent, the peer's has not come */
};

static const char *const tstate_names[] = {
	"version", "kex", "service", "open", "closed", "failed",
};
static const char *const kstate_names[] = {
	"idle", "wait-kexinit", "wait-init", "wait-reply", "wait-newkeys",
};

struct ssh_transport {
	enum ssh_role role;
	enum ssh_tstate state;
	enum kstate kstate;
	char *prefix;
	struct ssh_kex_prefs prefs;	/* strings owned */
	char *hostkey_algs;		/* server: what our keys can sign, in preference order */
	struct sshkey *const *host_keys;
	size_t n_host_keys;
	int (*verify_hostkey)(void *, const struct sshkey *);
	void *verify_arg;
	uint64_t rekey_bytes, rekey_ns;

	struct ssh_packet *pk;
	struct pg_buf vin;		/* input before and including the peer's ident line */
	struct pg_buf vout;		/* our ident line, until taken */
	unsigned vlines;
	char peer_version[VERSION_MAX_LINE + 1];
	char our_version[64];

	/* The exchange in progress. */
	struct pg_buf our_kexinit, peer_kexinit;
	int kexinit_sent;		/* ours for this exchange is out */
	int peer_in_kex;		/* the peer sent KEXINIT and not yet NEWKEYS */
	int skip_guess;
	struct ssh_kex *kx;
	struct ssh_cipher *pending_in;	/* installed when the peer's NEWKEYS arrives */
	struct ssh_kex_algs algs, next_algs;

	unsigned kex_count;
	int strict;
	int authenticated;		/* USERAUTH_SUCCESS went by (rekeys on our own only after) */
	uint8_t session_id[64];
	size_t session_id_len;
	struct sshkey *hostkey;		/* client: the server's, from the first exchange */
	char *server_sig_algs;
	char client_service[64];	/* client: what it requests; "": nothing */
	uint64_t kex_done_ns;

	struct pg_buf queue;		/* caller payloads waiting out a kex: uint32 len || payload */
	uint32_t last_seq;
	unsigned unimplemented;		/* SSH_MSG_UNIMPLEMENTED received, and the last one's number */
	uint32_t unimplemented_seq;
	int failed;
	char err[256];
};

static void
set_state(struct ssh_transport *t, enum ssh_tstate next)
{
	if (t->state == next)
		return;
	/* Forward only, except that nothing leaves CLOSED or FAILED. */
	assert(next > t->state || next >= SSH_T_CLOSED);
	LOG_DEBUG(t->prefix, "ssh state %s -> %s", tstate_names[t->state], tstate_names[next]);
	t->state = next;
}

static void
set_kstate(struct ssh_transport *t, enum kstate next)
{
	LOG_DEBUG(t->prefix, "ssh kex %s -> %s", kstate_names[t->kstate], kstate_names[next]);
	t->kstate = next;
}

const char *
ssh_transport_state_name(enum ssh_tstate s)
{
	return s <= SSH_T_FAILED ? tstate_names[s] : "?";
}

/* Sends DISCONNECT (best effort) and fails with PG_EPROTO; why goes to the peer and to err. */
static int __attribute__((format(printf, 3, 4)))
fail(struct ssh_transport *t, uint32_t reason, const char *fmt, ...)
{
	struct pg_buf b;
	va_list ap;

	if (t->failed)
		return t->failed;
	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
	pg_buf_init(&b, 1024);
	/* byte SSH_MSG_DISCONNECT, uint32 reason, string description, string language */
	if (ssh_put_u8(&b, SSH_MSG_DISCONNECT) == 0 && ssh_put_u32(&b, reason) == 0 &&
	    ssh_put_cstring(&b, t->err) == 0 && ssh_put_cstring(&b, "") == 0)
		(void)ssh_packet_send(t->pk, b.p, b.len);
	pg_buf_free(&b);
	LOG_NOTICE(t->prefix, "ssh: %s", t->err);
	t->failed = PG_EPROTO;
	set_state(t, SSH_T_FAILED);
	return PG_EPROTO;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* 1 if every name of list passes known(). */
static int
all_known(const char *list, int (*known)(const char *))
{
	struct pg_slice l = { (const uint8_t *)list, strlen(list) }, n;
	char name[SSH_ALG_MAX];

	if (list[0] == '\0')
		return 0;
	while (ssh_namelist_next(&l, &n)) {
		if (n.len == 0 || n.len >= sizeof(name))
			return 0;
		memcpy(name, n.p, n.len);
		name[n.len] = '\0';
		if (!known(name))
			return 0;
	}
	return 1;
}

static int
hostkey_alg_known(const char *name)
{
	struct pg_slice all = PG_SLICE_LIT(SSH_HOSTKEY_ALGS_DEFAULT);

	return ssh_namelist_has(all, name);
}

/* Server: the preferred algorithms some host key of ours can sign with. */
static int
server_hostkey_algs(struct ssh_transport *t, const char *prefs)
{
	struct pg_slice l = { (const uint8_t *)prefs, strlen(prefs) }, n;
	struct pg_buf b;
	char name[SSH_ALG_MAX];

	pg_buf_init(&b, 4096);
	while (ssh_namelist_next(&l, &n)) {
		memcpy(name, n.p, n.len);
		name[n.len] = '\0';
		for (size_t i = 0; i < t->n_host_keys; i++) {
			if (sshkey_has_private(t->host_keys[i]) &&
			    sshkey_can_sign_as(t->host_keys[i], name)) {
				if (pg_buf_printf(&b, "%s%s", b.len ? "," : "", name) != 0) {
					pg_buf_free(&b);
					return PG_ENOMEM;
				}
				break;
			}
		}
	}
	if (b.len == 0 || pg_buf_append(&b, "", 1) != 0) {
		pg_buf_free(&b);
		return PG_EINVAL;
	}
	t->hostkey_algs = (char *)b.p;
	return 0;
}

static int send_kexinit(struct ssh_transport *t);

int
ssh_transport_new(const struct ssh_transport_config *cfg, struct ssh_transport **out)
{
	const struct ssh_kex_prefs *p = &cfg->prefs;
	struct ssh_transport *t;
	int r = PG_ENOMEM;

	if ((p->kex && !all_known(p->kex, ssh_kex_known)) ||
	    (p->hostkey && !all_known(p->hostkey, hostkey_alg_known)) ||
	    (p->ciphers && !all_known(p->ciphers, ssh_cipher_known)) ||
	    (p->macs && !all_known(p->macs, ssh_mac_known)))
		return PG_EINVAL;
	if (cfg->role == SSH_ROLE_SERVER && cfg->n_host_keys == 0)
		return PG_EINVAL;
	if (cfg->client_service != NULL && strlen(cfg->client_service) >= 64)
		return PG_EINVAL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return PG_ENOMEM;
	t->role = cfg->role;
	t->host_keys = cfg->host_keys;
	t->n_host_keys = cfg->n_host_keys;
	t->verify_hostkey = cfg->verify_hostkey;
	t->verify_arg = cfg->verify_arg;
	t->rekey_bytes = cfg->rekey_bytes ? cfg->rekey_bytes : SSH_TRANSPORT_REKEY_BYTES;
	t->rekey_ns = (cfg->rekey_seconds ? cfg->rekey_seconds : SSH_TRANSPORT_REKEY_SECONDS) *
	    1000000000ull;
	/*
	 * The peer's first read may hold its ident, its KEXINIT and a guessed kex packet: vin takes
	 * as much as the packet layer would, and read_version() bounds the lines themselves.
	 */
	pg_buf_init(&t->vin, SSH_PACKET_MAX_INPUT);
	pg_buf_init(&t->vout, 256);
	pg_buf_init(&t->our_kexinit, 64 * 1024);
	pg_buf_init(&t->peer_kexinit, SSH_PACKET_MAX);
	pg_buf_init(&t->queue, SSH_TRANSPORT_MAX_QUEUE);
	snprintf(t->our_version, sizeof(t->our_version), "%s", SSH_TRANSPORT_IDENT);
	snprintf(t->client_service, sizeof(t->client_service), "%s",
	    cfg->client_service ? cfg->client_service : "ssh-userauth");
	if ((cfg->log_prefix && (t->prefix = strdup(cfg->log_prefix)) == NULL) ||
	    (p->kex && (t->prefs.kex = dup_or_null(p->kex)) == NULL) ||
	    (p->hostkey && (t->prefs.hostkey = dup_or_null(p->hostkey)) == NULL) ||
	    (p->ciphers && (t->prefs.ciphers = dup_or_null(p->ciphers)) == NULL) ||
	    (p->macs && (t->prefs.macs = dup_or_null(p->macs)) == NULL) ||
	    (t->server_sig_algs = strdup("")) == NULL)
		goto fail;
	if (t->role == SSH_ROLE_SERVER &&
	    (r = server_hostkey_algs(t, p->hostkey ? p->hostkey : SSH_HOSTKEY_ALGS_DEFAULT)) != 0)
		goto fail;
	if ((r = ssh_packet_new(&t->pk)) != 0 ||
	    (r = pg_buf_printf(&t->vout, "%s\r\n", t->our_version)) != 0 ||
	    (r = send_kexinit(t)) != 0)
		goto fail;
	*out = t;
	return 0;
fail:
	ssh_transport_free(t);
	return r;
}

void
ssh_transport_free(struct ssh_transport *t)
{
	if (t == NULL)
		return;
	ssh_packet_free(t->pk);
	ssh_kex_free(t->kx);
	ssh_cipher_free(t->pending_in);
	sshkey_free(t->hostkey);
	pg_buf_free(&t->vin);
	pg_buf_free(&t->vout);
	pg_buf_free(&t->our_kexinit);
	pg_buf_free(&t->peer_kexinit);
	OPENSSL_clear_free(t->queue.p, t->queue.cap);
	free(t->prefix);
	free((char *)t->prefs.kex);
	free((char *)t->prefs.hostkey);
	free((char *)t->prefs.ciphers);
	free((char *)t->prefs.macs);
	free(t->hostkey_algs);
	free(t->server_sig_algs);
	OPENSSL_cleanse(t->session_id, sizeof(t->session_id));
	free(t);
}

/* Version exchange */

/*
 * Looks for the peer's identification line in vin. Returns 1 when found (the bytes after it are
 * handed to the packet layer), 0 when more input is needed, or the failure.
 */
static int
read_version(struct ssh_transport *t)
{
	for (;;) {
		uint8_t *nl = t->vin.len ? memchr(t->vin.p, '\n', t->vin.len) : NULL;
		size_t len, linelen;
		int r;

		if (nl == NULL) {
			if (t->vin.len > VERSION_MAX_LINE)
				return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR,
				    "identification line over %d bytes", VERSION_MAX_LINE);
			return 0;
		}
		linelen = (size_t)(nl - t->vin.p) + 1;
		if (linelen > VERSION_MAX_LINE)
			return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR,
			    "identification line over %d bytes", VERSION_MAX_LINE);
		len = linelen - 1;
		if (len > 0 && t->vin.p[len - 1] == '\r')	/* LF alone is tolerated (4.2) */
			len--;
		if (memchr(t->vin.p, '\0', len) != NULL)
			return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "NUL in identification line");
		if (len >= 4 && memcmp(t->vin.p, "SSH-", 4) == 0) {
			/* A client never sends SSH-1.99 (RFC 4253 5.1: that is a server's compat mark). */
			if (!(len >= 8 && memcmp(t->vin.p, "SSH-2.0-", 8) == 0) &&
			    !(t->role == SSH_ROLE_CLIENT && len >= 9 && memcmp(t->vin.p, "SSH-1.99-", 9) == 0))
				return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR,
				    "peer does not speak SSH 2.0");
			memcpy(t->peer_version, t->vin.p, len);
			t->peer_version[len] = '\0';
			for (size_t i = 0; i < len; i++)	/* for logs: printable only */
				if (t->peer_version[i] < 0x20 || t->peer_version[i] > 0x7e)
					return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR,
					    "control character in identification line");
			LOG_DEBUG(t->prefix, "ssh peer version \"%s\"", t->peer_version);
			if ((r = ssh_packet_feed(t->pk, t->vin.p + linelen, t->vin.len - linelen)) != 0)
				return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "input over its bound");
			pg_buf_free(&t->vin);
			set_state(t, SSH_T_KEX);
			return 1;
		}
		/* RFC 4253 4.2: only a server may send other lines before its version. */
		if (t->role == SSH_ROLE_SERVER)
			return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR,
			    "client sent something other than an identification line");
		if (++t->vlines > VERSION_MAX_LINES)
			return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR,
			    "more than %d lines before the identification line", VERSION_MAX_LINES);
		pg_buf_consume(&t->vin, linelen);
	}
}

/* Sending */

static int
send_raw(struct ssh_transport *t, const struct pg_buf *b)
{
	int r = ssh_packet_send(t->pk, b->p, b->len);

	if (r != 0)
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "cannot send: %s", pg_strerror(r));
	return 0;
}

static int
send_kexinit(struct ssh_transport *t)
{
	struct ssh_kex_prefs p = t->prefs;
	int r;

	if (t->role == SSH_ROLE_SERVER)
		p.hostkey = t->hostkey_algs;
	pg_buf_reset(&t->our_kexinit);
	if ((r = ssh_kexinit_build(&t->our_kexinit, &p, t->role == SSH_ROLE_SERVER,
	    t->kex_count == 0)) != 0)
		return r;
	if ((r = send_raw(t, &t->our_kexinit)) != 0)
		return r;
	t->kexinit_sent = 1;
	if (t->kstate == K_IDLE)
		set_kstate(t, K_WAIT_KEXINIT);
	return 0;
}

/* Payloads queued during a kex go out once our NEWKEYS is sent and the service is open. */
static int
flush_queue(struct ssh_transport *t)
{
	size_t off = 0;
	int r = 0;

	if (t->kexinit_sent || t->state != SSH_T_OPEN)
		return 0;
	while (off + 4 <= t->queue.len) {
		uint32_t n = ssh_peek_u32(t->queue.p + off);

		if ((r = ssh_packet_send(t->pk, t->queue.p + off + 4, n)) != 0)
			break;
		off += 4 + (size_t)n;
	}
	pg_buf_consume(&t->queue, off);
	if (t->queue.len == 0)
		pg_buf_free(&t->queue);	/* a rekey's backlog is not kept at rest */
	if (r != 0)
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "cannot send: %s", pg_strerror(r));
	return 0;
}

static int
send_simple_string(struct ssh_transport *t, uint8_t type, const char *s)
{
	struct pg_buf b;
	int r;

	pg_buf_init(&b, 1024);
	if ((r = ssh_put_u8(&b, type)) == 0 && (r = ssh_put_cstring(&b, s)) == 0)
		r = send_raw(t, &b);
	pg_buf_free(&b);
	return r;
}

/* Key exchange */

/* Builds one direction's cipher from the exchange: d 0 is client->server (letters A, C, E). */
static int
make_cipher(struct ssh_transport *t, const struct ssh_kex_secret *sec, int d, int encrypt,
    struct ssh_cipher **out)
{
	uint8_t iv[SSH_CIPHER_MAX_KEY], key[SSH_CIPHER_MAX_KEY], mk[SSH_CIPHER_MAX_KEY];
	const char *enc = t->next_algs.enc[d];
	const char *mac = t->next_algs.mac[d][0] ? t->next_algs.mac[d] : NULL;
	size_t kl, il, ml;
	int r;

	if ((r = ssh_cipher_sizes(enc, mac, &kl, &il, &ml)) != 0)
		return r;
	if ((il && (r = ssh_kex_derive(sec, t->session_id, t->session_id_len, d ? 'B' : 'A', iv,
	    il)) != 0) ||
	    (r = ssh_kex_derive(sec, t->session_id, t->session_id_len, d ? 'D' : 'C', key, kl)) != 0 ||
	    (ml && (r = ssh_kex_derive(sec, t->session_id, t->session_id_len, d ? 'F' : 'E', mk,
	    ml)) != 0))
		goto out;
	r = ssh_cipher_new(enc, mac, encrypt, key, iv, mk, out);
out:
	OPENSSL_cleanse(iv, sizeof(iv));
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(mk, sizeof(mk));
	return r;
}

/* Sends EXT_INFO with server-sig-algs (RFC 8308 3.1): the algorithms front auth can verify. */
static int
send_ext_info(struct ssh_transport *t)
{
	struct pg_buf b;
	int r;

	pg_buf_init(&b, 1024);
	if ((r = ssh_put_u8(&b, SSH_MSG_EXT_INFO)) == 0 && (r = ssh_put_u32(&b, 1)) == 0 &&
	    (r = ssh_put_cstring(&b, "server-sig-algs")) == 0 &&
	    (r = ssh_put_cstring(&b, SSH_HOSTKEY_ALGS_DEFAULT)) == 0)
		r = send_raw(t, &b);
	pg_buf_free(&b);
	return r;
}

/* With K and H known: remember the session id, make both ciphers, send NEWKEYS, switch output. */
static int
keys_ready(struct ssh_transport *t, struct ssh_kex_secret *sec)
{
	struct ssh_cipher *out = NULL;
	int us = t->role == SSH_ROLE_CLIENT ? 0 : 1;	/* our sending direction */
	static const uint8_t newkeys = SSH_MSG_NEWKEYS;
	int r;

	if (t->session_id_len == 0) {
		memcpy(t->session_id, sec->h, sec->h_len);
		t->session_id_len = sec->h_len;
	}
	if ((r = make_cipher(t, sec, us, 1, &out)) != 0 ||
	    (r = make_cipher(t, sec, !us, 0, &t->pending_in)) != 0) {
		ssh_cipher_free(out);
		return fail(t, SSH_DISCONNECT_KEY_EXCHANGE_FAILED, "cannot set up keys: %s",
		    pg_strerror(r));
	}
	if ((r = ssh_packet_send(t->pk, &newkeys, 1)) != 0) {
		ssh_cipher_free(out);
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "cannot send: %s", pg_strerror(r));
	}
	/* RFC 4253 7.3: everything after our NEWKEYS uses the new keys. */
	ssh_packet_set_cipher(t->pk, SSH_DIR_OUT, out);
	if (t->strict)
		ssh_packet_reset_seq(t->pk, SSH_DIR_OUT);
	t->kexinit_sent = 0;
	set_kstate(t, K_WAIT_NEWKEYS);
	if (t->role == SSH_ROLE_SERVER && t->kex_count == 0 && t->next_algs.peer_ext_info &&
	    (r = send_ext_info(t)) != 0)
		return r;
	return flush_queue(t);
}

static int
hash_in(struct ssh_transport *t, struct ssh_kex_hash_in *hi)
{
	struct pg_slice ours_v = { (const uint8_t *)t->our_version, strlen(t->our_version) };
	struct pg_slice peer_v = { (const uint8_t *)t->peer_version, strlen(t->peer_version) };
	struct pg_slice ours_i = { t->our_kexinit.p, t->our_kexinit.len };
	struct pg_slice peer_i = { t->peer_kexinit.p, t->peer_kexinit.len };
	int client = t->role == SSH_ROLE_CLIENT;

	hi->v_c = client ? ours_v : peer_v;
	hi->v_s = client ? peer_v : ours_v;
	hi->i_c = client ? ours_i : peer_i;
	hi->i_s = client ? peer_i : ours_i;
	return 0;
}

static int
on_kexinit(struct ssh_transport *t, struct pg_slice pl, uint32_t seq)
{
	struct ssh_kexinit ours, peer;
	struct pg_buf init;
	char why[200];
	int r, initial = t->kex_count == 0;

	if (t->peer_in_kex)
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "second KEXINIT during key exchange");
	if (ssh_kexinit_parse(pl, &peer) != 0)
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "malformed KEXINIT");
	pg_buf_reset(&t->peer_kexinit);
	if (pg_buf_append(&t->peer_kexinit, pl.p, pl.len) != 0)
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "KEXINIT too large");
	t->peer_in_kex = 1;
	/* The peer started it: answer with ours (RFC 4253 7.1). */
	if (!t->kexinit_sent && (r = send_kexinit(t)) != 0)
		return r;
	if (ssh_kexinit_parse((struct pg_slice){ t->our_kexinit.p, t->our_kexinit.len }, &ours) != 0)
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "internal: own KEXINIT unparsable");
	if (ssh_kex_negotiate(t->role == SSH_ROLE_CLIENT ? &ours : &peer,
	    t->role == SSH_ROLE_CLIENT ? &peer : &ours, t->role == SSH_ROLE_SERVER, initial,
	    &t->next_algs, why, sizeof(why)) != 0)
		return fail(t, SSH_DISCONNECT_KEY_EXCHANGE_FAILED, "%s", why);
	if (initial) {
		t->strict = t->next_algs.strict;
		/* PROTOCOL 1.10: in strict mode KEXINIT must be the peer's very first packet. */
		if (t->strict && seq != 0)
			return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR,
			    "strict kex: KEXINIT was not the first packet");
	}
	t->skip_guess = t->next_algs.skip_guess;
	LOG_DEBUG(t->prefix, "ssh kex %s hostkey %s c2s %s %s s2c %s %s%s", t->next_algs.kex,
	    t->next_algs.hostkey, t->next_algs.enc[0], t->next_algs.mac[0], t->next_algs.enc[1],
	    t->next_algs.mac[1], t->strict ? " strict" : "");
	ssh_kex_free(t->kx);
	t->kx = NULL;
	if ((r = ssh_kex_new(t->next_algs.kex, &t->kx)) != 0)
		return fail(t, SSH_DISCONNECT_KEY_EXCHANGE_FAILED, "cannot start %s", t->next_algs.kex);
	if (t->role == SSH_ROLE_SERVER) {
		set_kstate(t, K_WAIT_INIT);
		return 0;
	}
	pg_buf_init(&init, 4096);
	if ((r = ssh_kex_client_init(t->kx, &init)) == 0)
		r = send_raw(t, &init);
	pg_buf_free(&init);
	if (r == 0)
		set_kstate(t, K_WAIT_REPLY);
	return r;
}

static const struct sshkey *
pick_hostkey(struct ssh_transport *t, const char *alg)
{
	for (size_t i = 0; i < t->n_host_keys; i++)
		if (sshkey_has_private(t->host_keys[i]) && sshkey_can_sign_as(t->host_keys[i], alg))
			return t->host_keys[i];
	return NULL;
}

static int
on_kex_message(struct ssh_transport *t, uint8_t type, struct pg_slice pl)
{
	struct ssh_kex_hash_in hi;
	struct ssh_kex_secret sec;
	struct sshkey *key = NULL;
	struct pg_buf reply;
	char why[200];
	int r;

	if (t->skip_guess) {
		/* RFC 4253 7: the peer's wrongly guessed first kex packet is dropped unread. */
		t->skip_guess = 0;
		return 0;
	}
	hash_in(t, &hi);
	if (t->kstate == K_WAIT_INIT && type == SSH_MSG_KEX_INIT) {
		const struct sshkey *hk = pick_hostkey(t, t->next_algs.hostkey);

		pg_buf_init(&reply, 64 * 1024);
		r = ssh_kex_server_reply(t->kx, pl, &hi, hk, t->next_algs.hostkey, &reply, &sec, why,
		    sizeof(why));
		if (r == 0)
			r = send_raw(t, &reply);
		else
			r = fail(t, SSH_DISCONNECT_KEY_EXCHANGE_FAILED, "%s", why);
		pg_buf_free(&reply);
	} else if (t->kstate == K_WAIT_REPLY && type == SSH_MSG_KEX_REPLY) {
		r = ssh_kex_client_finish(t->kx, pl, &hi, t->next_algs.hostkey, &key, &sec, why,
		    sizeof(why));
		if (r != 0)
			return fail(t, SSH_DISCONNECT_KEY_EXCHANGE_FAILED, "%s", why);
		if (t->hostkey == NULL) {
			if (t->verify_hostkey != NULL && t->verify_hostkey(t->verify_arg, key) != 0) {
				sshkey_free(key);
				return fail(t, SSH_DISCONNECT_HOST_KEY_NOT_VERIFIABLE,
				    "host key not accepted");
			}
			t->hostkey = key;
		} else {
			/* A rekey must not swap the host key under us. */
			int same = sshkey_equal_public(t->hostkey, key);

			sshkey_free(key);
			if (!same)
				return fail(t, SSH_DISCONNECT_HOST_KEY_NOT_VERIFIABLE,
				    "host key changed during rekey");
		}
	} else {
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "unexpected kex message %u in %s", type,
		    kstate_names[t->kstate]);
	}
	if (r == 0)
		r = keys_ready(t, &sec);
	ssh_kex_secret_clear(&sec);
	ssh_kex_free(t->kx);
	t->kx = NULL;
	return r;
}

static int
on_newkeys(struct ssh_transport *t)
{
	if (t->kstate != K_WAIT_NEWKEYS)
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "NEWKEYS in %s", kstate_names[t->kstate]);
	ssh_packet_set_cipher(t->pk, SSH_DIR_IN, t->pending_in);
	t->pending_in = NULL;
	if (t->strict)
		ssh_packet_reset_seq(t->pk, SSH_DIR_IN);
	ssh_packet_reset_counters(t->pk);
	t->kex_done_ns = pg_mono_ns();
	t->algs = t->next_algs;
	t->peer_in_kex = 0;
	t->kex_count++;
	set_kstate(t, K_IDLE);
	LOG_DEBUG(t->prefix, "ssh key exchange %u done (%s, %s)", t->kex_count, t->algs.kex,
	    t->algs.enc[t->role == SSH_ROLE_CLIENT ? 0 : 1]);
	if (t->state == SSH_T_KEX) {
		set_state(t, SSH_T_SERVICE);
		if (t->role == SSH_ROLE_CLIENT && t->client_service[0] == '\0')
			set_state(t, SSH_T_OPEN);	/* a test driver's "no service request" */
		else if (t->role == SSH_ROLE_CLIENT)
			return send_simple_string(t, SSH_MSG_SERVICE_REQUEST, t->client_service);
	}
	return flush_queue(t);
}

/* Other transport messages */

static int
on_disconnect(struct ssh_transport *t, struct pg_slice pl)
{
	struct pg_slice desc = { NULL, 0 };
	uint32_t reason = 0;
	char text[128];
	size_t n = 0;

	pl.p++;
	pl.len--;
	(void)(ssh_get_u32(&pl, &reason) == 0 && ssh_get_string(&pl, &desc) == 0);
	/* The peer's text goes to logs: keep printable ASCII only. */
	for (size_t i = 0; i < desc.len && n + 1 < sizeof(text); i++)
		text[n++] = desc.p[i] >= 0x20 && desc.p[i] < 0x7f ? (char)desc.p[i] : '?';
	text[n] = '\0';
	snprintf(t->err, sizeof(t->err), "peer disconnected (reason %u): %s", reason, text);
	LOG_INFO(t->prefix, "ssh: %s", t->err);
	t->failed = PG_ECLOSED;
	set_state(t, SSH_T_CLOSED);
	return PG_ECLOSED;
}

static int
on_ext_info(struct ssh_transport *t, struct pg_slice pl)
{
	struct pg_slice name, value;
	uint32_t n;

	pl.p++;
	pl.len--;
	if (ssh_get_u32(&pl, &n) != 0)
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "malformed EXT_INFO");
	for (uint32_t i = 0; i < n; i++) {
		if (ssh_get_string(&pl, &name) != 0 || ssh_get_string(&pl, &value) != 0)
			return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "malformed EXT_INFO");
		if (t->role == SSH_ROLE_CLIENT && ssh_slice_eq(name, "server-sig-algs")) {
			struct pg_slice v = value;
			char *s;

			if ((s = malloc(v.len + 1)) == NULL)
				return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "out of memory");
			memcpy(s, v.p, v.len);
			s[v.len] = '\0';
			for (size_t k = 0; k < v.len; k++)
				if (s[k] <= 0x20 || s[k] >= 0x7f)
					s[k] = '?';
			free(t->server_sig_algs);
			t->server_sig_algs = s;
		}
	}
	return 0;
}

static int
on_service(struct ssh_transport *t, uint8_t type, struct pg_slice pl)
{
	struct pg_slice name;

	pl.p++;
	pl.len--;
	if (ssh_get_string(&pl, &name) != 0)
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "malformed service message");
	if (t->state != SSH_T_SERVICE ||
	    (type == SSH_MSG_SERVICE_REQUEST) != (t->role == SSH_ROLE_SERVER))
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "unexpected service message %u", type);
	if (!ssh_slice_eq(name, "ssh-userauth")) {
		if (type == SSH_MSG_SERVICE_REQUEST)
			return fail(t, SSH_DISCONNECT_SERVICE_NOT_AVAILABLE,
			    "service not available");
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "server accepted another service");
	}
	if (type == SSH_MSG_SERVICE_REQUEST) {
		int r = send_simple_string(t, SSH_MSG_SERVICE_ACCEPT, "ssh-userauth");

		if (r != 0)
			return r;
	}
	set_state(t, SSH_T_OPEN);
	return flush_queue(t);
}

static int
send_unimplemented(struct ssh_transport *t, uint32_t seq)
{
	struct pg_buf b;
	int r;

	pg_buf_init(&b, 16);
	if ((r = ssh_put_u8(&b, SSH_MSG_UNIMPLEMENTED)) == 0 && (r = ssh_put_u32(&b, seq)) == 0)
		r = send_raw(t, &b);
	pg_buf_free(&b);
	return r;
}

/* byte SSH_MSG_UNIMPLEMENTED, uint32 packet sequence number rejected: noted, nothing else. */
static int
on_unimplemented(struct ssh_transport *t, struct pg_slice pl)
{
	struct pg_slice s = { pl.p + 1, pl.len - 1 };
	uint32_t seq;

	if (ssh_get_u32(&s, &seq) != 0)
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "malformed UNIMPLEMENTED");
	t->unimplemented++;
	t->unimplemented_seq = seq;
	LOG_DEBUG(t->prefix, "peer did not implement our packet %u", seq);
	return 0;
}

/* 1 for the messages a key exchange consists of (RFC 4250 4.1.2: 20..49). */
static int
is_kex_message(uint8_t type)
{
	return type >= SSH_MSG_KEXINIT && type <= 49;
}

/* Returns 1 to hand pl to the caller, 0 when handled here, or the failure. */
static int
dispatch(struct ssh_transport *t, struct pg_slice pl, uint32_t seq)
{
	uint8_t type = pl.p[0];

	if (type == SSH_MSG_DISCONNECT)
		return on_disconnect(t, pl);
	/* PROTOCOL 1.10: during the initial kex in strict mode only kex messages may come. */
	if (t->strict && t->kex_count == 0 && !is_kex_message(type))
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR,
		    "strict kex: message %u during initial key exchange", type);
	if (t->strict && t->kex_count == 0 && ssh_packet_seq_wrapped(t->pk, SSH_DIR_IN))
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR,
		    "strict kex: sequence number wrapped during initial key exchange");
	switch (type) {
	case SSH_MSG_IGNORE:
	case SSH_MSG_DEBUG:
		return 0;
	case SSH_MSG_UNIMPLEMENTED:
		return on_unimplemented(t, pl);
	case SSH_MSG_KEXINIT:
		return on_kexinit(t, pl, seq);
	case SSH_MSG_NEWKEYS:
		return on_newkeys(t);
	case SSH_MSG_SERVICE_REQUEST:
	case SSH_MSG_SERVICE_ACCEPT:
		return on_service(t, type, pl);
	case SSH_MSG_EXT_INFO:
		if (t->kex_count == 0)
			return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "EXT_INFO before NEWKEYS");
		return on_ext_info(t, pl);
	}
	if (type >= 30 && type <= 49) {
		if (!t->peer_in_kex || t->kstate == K_WAIT_NEWKEYS)
			return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR,
			    "kex message %u outside a key exchange", type);
		return on_kex_message(t, type, pl);
	}
	if (type < 50)
		return send_unimplemented(t, seq);
	/* RFC 4253 7.1: between its KEXINIT and its NEWKEYS the peer may send only kex messages. */
	if (t->peer_in_kex)
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "message %u during key exchange", type);
	if (t->state != SSH_T_OPEN)
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "message %u before the service started",
		    type);
	if (type == SSH_MSG_USERAUTH_SUCCESS && t->role == SSH_ROLE_CLIENT)
		t->authenticated = 1;
	t->last_seq = seq;
	return 1;
}

/* The API */

int
ssh_transport_unimplemented(struct ssh_transport *t)
{
	return send_unimplemented(t, t->last_seq);
}

int
ssh_transport_feed(struct ssh_transport *t, const uint8_t *p, size_t len)
{
	int r;

	if (t->failed)
		return t->failed;
	if (t->state == SSH_T_VERSION) {
		if ((r = pg_buf_append(&t->vin, p, len)) != 0)
			return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "no identification line");
		return 0;
	}
	if ((r = ssh_packet_feed(t->pk, p, len)) == PG_ETOOBIG)
		return fail(t, SSH_DISCONNECT_PROTOCOL_ERROR, "input over %d bytes unprocessed",
		    SSH_PACKET_MAX_INPUT);
	return r;
}

int
ssh_transport_next_payload(struct ssh_transport *t, struct pg_slice *payload)
{
	struct pg_slice pl;
	uint32_t seq;
	int r;

	if (t->failed)
		return t->failed;
	if (t->state == SSH_T_VERSION && (r = read_version(t)) != 1)
		return r;
	for (;;) {
		if ((r = ssh_packet_next(t->pk, &pl, &seq)) == 0)
			return 0;
		if (r < 0)
			return fail(t, strstr(ssh_packet_error(t->pk), "MAC") ?
			    SSH_DISCONNECT_MAC_ERROR : SSH_DISCONNECT_PROTOCOL_ERROR, "%s",
			    ssh_packet_error(t->pk));
		if ((r = dispatch(t, pl, seq)) == 1) {
			*payload = pl;
			(void)ssh_transport_check_rekey(t);
			return t->failed ? t->failed : 1;
		}
		if (r < 0)
			return r;
	}
}

int
ssh_transport_send_payload(struct ssh_transport *t, const uint8_t *p, size_t len)
{
	uint8_t n[4];
	int r;

	if (t->failed)
		return t->failed;
	if (len == 0 || p[0] < 50 || len > SSH_PACKET_MAX_PAYLOAD)
		return PG_EINVAL;
	if (p[0] == SSH_MSG_USERAUTH_SUCCESS && t->role == SSH_ROLE_SERVER)
		t->authenticated = 1;
	/* A client may queue its first userauth request at once; a server speaks when asked. */
	if (t->state != SSH_T_OPEN && t->role == SSH_ROLE_SERVER)
		return PG_EINVAL;
	if (t->kexinit_sent || t->state != SSH_T_OPEN) {
		if (len + 4 > t->queue.max - t->queue.len)
			return PG_ETOOBIG;
		ssh_poke_u32(n, (uint32_t)len);
		if ((r = pg_buf_append(&t->queue, n, 4)) != 0 ||
		    (r = pg_buf_append(&t->queue, p, len)) != 0)
			return r;
		return 0;
	}
	if ((r = ssh_packet_send(t->pk, p, len)) != 0)
		return r;
	(void)ssh_transport_check_rekey(t);
	return t->failed;
}

int
ssh_transport_take_output(struct ssh_transport *t, struct pg_buf *dst)
{
	size_t old = dst->len;
	int r;

	if ((r = pg_buf_append(dst, t->vout.p, t->vout.len)) != 0)
		return r;
	if ((r = ssh_packet_take_output(t->pk, dst)) != 0) {
		dst->len = old;
		return r;
	}
	pg_buf_reset(&t->vout);
	return 0;
}

int
ssh_transport_rekey(struct ssh_transport *t)
{
	if (t->failed)
		return t->failed;
	if (t->state != SSH_T_OPEN && t->state != SSH_T_SERVICE)
		return PG_EINVAL;
	if (t->kstate != K_IDLE)
		return 0;
	LOG_DEBUG(t->prefix, "ssh rekey");
	return send_kexinit(t);
}

int
ssh_transport_check_rekey(struct ssh_transport *t)
{
	struct ssh_packet_counters in, out;
	int r;

	/*
	 * OpenSSH neither starts nor accepts a rekey before authentication (sshd logs
	 * "dispatch_protocol_error: type 20", ssh "bad message during authentication: type 20"),
	 * so ours waits for USERAUTH_SUCCESS too.
	 */
	if (t->failed || t->kstate != K_IDLE || t->state != SSH_T_OPEN || !t->authenticated)
		return 0;
	in = ssh_packet_counters(t->pk, SSH_DIR_IN);
	out = ssh_packet_counters(t->pk, SSH_DIR_OUT);
	/* RFC 4344 3.1 also asks for a rekey before sequence numbers wrap: 2^31 packets is early. */
	if (in.bytes < t->rekey_bytes && out.bytes < t->rekey_bytes &&
	    in.packets < (1u << 31) && out.packets < (1u << 31) &&
	    pg_mono_ns() - t->kex_done_ns < t->rekey_ns)
		return 0;
	if ((r = ssh_transport_rekey(t)) != 0)
		return r;
	return 1;
}

int
ssh_transport_disconnect(struct ssh_transport *t, uint32_t reason, const char *text)
{
	struct pg_buf b;
	int r;

	if (t->failed)
		return t->failed;
	pg_buf_init(&b, 1024);
	if ((r = ssh_put_u8(&b, SSH_MSG_DISCONNECT)) == 0 && (r = ssh_put_u32(&b, reason)) == 0 &&
	    (r = ssh_put_cstring(&b, text)) == 0 && (r = ssh_put_cstring(&b, "")) == 0)
		r = ssh_packet_send(t->pk, b.p, b.len);
	pg_buf_free(&b);
	snprintf(t->err, sizeof(t->err), "disconnected: %s", text);
	t->failed = PG_ECLOSED;
	set_state(t, SSH_T_CLOSED);
	return r;
}

enum ssh_tstate
ssh_transport_state(const struct ssh_transport *t)
{
	return t->state;
}

const char *
ssh_transport_error(const struct ssh_transport *t)
{
	return t->err;
}

const struct ssh_kex_algs *
ssh_transport_algs(const struct ssh_transport *t)
{
	return &t->algs;
}

unsigned
ssh_transport_kex_count(const struct ssh_transport *t)
{
	return t->kex_count;
}

const char *
ssh_transport_peer_version(const struct ssh_transport *t)
{
	return t->peer_version;
}

const struct sshkey *
ssh_transport_hostkey(const struct ssh_transport *t)
{
	return t->hostkey;
}

const char *
ssh_transport_server_sig_algs(const struct ssh_transport *t)
{
	return t->server_sig_algs;
}

struct pg_slice
ssh_transport_session_id(const struct ssh_transport *t)
{
	return (struct pg_slice){ t->session_id, t->session_id_len };
}

uint32_t
ssh_transport_last_seq(const struct ssh_transport *t)
{
	return t->last_seq;
}

unsigned
ssh_transport_peer_unimplemented(const struct ssh_transport *t, uint32_t *seq)
{
	if (t->unimplemented > 0 && seq != NULL)
		*seq = t->unimplemented_seq;
	return t->unimplemented;
}

uint32_t
ssh_transport_send_seq(const struct ssh_transport *t)
{
	return ssh_packet_seq(t->pk, SSH_DIR_OUT);
}

int
ssh_transport_strict(const struct ssh_transport *t)
{
	return t->strict;
}

size_t
ssh_transport_queued(const struct ssh_transport *t)
{
	return t->queue.len;
}
