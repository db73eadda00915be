/*
 * proxy/ssh/transport: a client and a server transport joined in memory run the full protocol for
 * every kex x cipher x host key combination (each side's output fed to the other), exchange
 * payloads, rekey from both sides with payloads in flight, and fail precisely on tampering, on
 * strict-kex violations and on a rejected host key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/sshkey.h"
#include "core/err.h"
#include "proxy/ssh/transport.h"
#include "core/sshwire.h"

static char dir[64];
static struct sshkey *keys[3];	/* ed25519, ecdsa p256, rsa */

static int
setup(void **state)
{
	static const char *const gen[] = { "ed25519", "ecdsa -b 256", "rsa -b 2048" };
	char cmd[256], path[128], err[256];

	strcpy(dir, "/tmp/pg-transport-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	for (int i = 0; i < 3; i++) {
		snprintf(cmd, sizeof(cmd), "ssh-keygen -q -t %s -N '' -f %s/k%d", gen[i], dir, i);
		snprintf(path, sizeof(path), "%s/k%d", dir, i);
		if (system(cmd) != 0 || sshkey_load_private(path, &keys[i], err, sizeof(err)) != 0)
			return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	for (int i = 0; i < 3; i++)
		sshkey_free(keys[i]);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* One end: its transport and the payloads it received, each as uint32 len || bytes. */
struct end {
	struct ssh_transport *t;
	struct pg_buf got;
	size_t ngot;
	int err;
};

/* Moves a's output to b (chunk bytes at a time; 0 = all) and lets b process it. */
static int
move(struct end *a, struct end *b, size_t chunk)
{
	struct pg_buf out;
	struct pg_slice pl;
	int moved, r = 0;

	pg_buf_init(&out, 16 * 1024 * 1024);
	assert_int_equal(ssh_transport_take_output(a->t, &out), 0);
	moved = out.len > 0;
	for (size_t off = 0; off < out.len && b->err == 0; off += chunk ? chunk : out.len) {
		size_t n = chunk && out.len - off > chunk ? chunk : out.len - off;

		if ((r = ssh_transport_feed(b->t, out.p + off, n)) != 0) {
			b->err = r;
			break;
		}
		while ((r = ssh_transport_next_payload(b->t, &pl)) == 1) {
			assert_int_equal(ssh_put_string(&b->got, pl.p, pl.len), 0);
			b->ngot++;
		}
		if (r < 0)
			b->err = r;
	}
	pg_buf_free(&out);
	return moved;
}

static void
pump(struct end *c, struct end *s, size_t chunk)
{
	for (int i = 0; i < 1000; i++) {
		int m = move(c, s, chunk);

		m |= move(s, c, chunk);
		if (!m)
			return;
	}
	fail_msg("pump did not settle");
}

static int accept_count;

static int
count_accept(void *arg, const struct sshkey *key)
{
	accept_count++;
	return *(int *)arg;
}

/* The client's service for the next ends() (NULL: the default, ssh-userauth). */
static const char *client_service;

static void
ends(struct end *c, struct end *s, struct ssh_kex_prefs cp, struct ssh_kex_prefs sp,
    struct sshkey **hk, size_t nhk, int *verdict)
{
	struct ssh_transport_config cc = { .role = SSH_ROLE_CLIENT, .log_prefix = "client",
		.prefs = cp, .verify_hostkey = verdict ? count_accept : NULL, .verify_arg = verdict,
		.client_service = client_service };
	struct ssh_transport_config sc = { .role = SSH_ROLE_SERVER, .log_prefix = "server",
		.prefs = sp, .host_keys = hk, .n_host_keys = nhk };

	memset(c, 0, sizeof(*c));
	memset(s, 0, sizeof(*s));
	pg_buf_init(&c->got, 16 * 1024 * 1024);
	pg_buf_init(&s->got, 16 * 1024 * 1024);
	assert_int_equal(ssh_transport_new(&cc, &c->t), 0);
	assert_int_equal(ssh_transport_new(&sc, &s->t), 0);
}

static void
end_free(struct end *e)
{
	ssh_transport_free(e->t);
	pg_buf_free(&e->got);
}

/* The idx-th payload e received. */
static struct pg_slice
nth(struct end *e, size_t idx)
{
	struct pg_slice s = { e->got.p, e->got.len }, v = { NULL, 0 };

	for (size_t i = 0; i <= idx; i++)
		assert_int_equal(ssh_get_string(&s, &v), 0);
	return v;
}

static const char *const kexes[] = {
	"curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256",
	"ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "diffie-hellman-group16-sha512",
	"diffie-hellman-group14-sha256",
};
static const struct {
	const char *enc, *mac;
} ciphers[] = {
	{ "chacha20-poly1305@openssh.com", NULL },
	{ "aes256-gcm@openssh.com", NULL },
	{ "aes128-gcm@openssh.com", NULL },
	{ "aes256-ctr", "hmac-sha2-256-etm@openssh.com" },
	{ "aes192-ctr", "hmac-sha2-512-etm@openssh.com" },
	{ "aes128-ctr", "hmac-sha2-256" },
	{ "aes256-ctr", "hmac-sha2-512" },
};
static const char *const hostkey_algs[] = {
	"ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256",
};

/* Runs the initial kex and the service request, then payloads both ways and a rekey from each side. */
static void
full_run(const char *kex, const char *enc, const char *mac, const char *hka, size_t chunk)
{
	struct ssh_kex_prefs p = { kex, hka, enc, mac };
	struct sshkey *hk[3] = { keys[0], keys[1], keys[2] };
	struct end c, s;
	int yes = 0;
	uint8_t msg[3000];

	accept_count = 0;
	ends(&c, &s, p, (struct ssh_kex_prefs){ 0 }, hk, 3, &yes);
	/* A payload sent by the client before the service is up waits in its queue. */
	memset(msg, 0x5a, sizeof(msg));
	msg[0] = SSH_MSG_USERAUTH_REQUEST;
	assert_int_equal(ssh_transport_send_payload(c.t, msg, 100), 0);
	assert_int_equal(ssh_transport_send_payload(s.t, msg, 100), PG_EINVAL);	/* not asked yet */
	pump(&c, &s, chunk);
	assert_int_equal(s.ngot, 1);
	assert_int_equal(nth(&s, 0).len, 100);
	assert_int_equal(c.err, 0);
	assert_int_equal(s.err, 0);
	assert_int_equal(ssh_transport_state(c.t), SSH_T_OPEN);
	assert_int_equal(ssh_transport_state(s.t), SSH_T_OPEN);
	assert_int_equal(accept_count, 1);
	assert_string_equal(ssh_transport_algs(c.t)->kex, kex);
	assert_string_equal(ssh_transport_algs(s.t)->enc[0], enc);
	assert_string_equal(ssh_transport_algs(s.t)->hostkey, hka);
	assert_true(ssh_transport_strict(c.t));
	assert_true(ssh_transport_strict(s.t));
	assert_non_null(strstr(ssh_transport_peer_version(c.t), "SSH-2.0-poolgate_"));
	assert_string_equal(ssh_transport_server_sig_algs(c.t), SSH_HOSTKEY_ALGS_DEFAULT);
	assert_non_null(ssh_transport_hostkey(c.t));
	assert_int_equal(ssh_transport_session_id(c.t).len, ssh_transport_session_id(s.t).len);
	assert_memory_equal(ssh_transport_session_id(c.t).p, ssh_transport_session_id(s.t).p,
	    ssh_transport_session_id(s.t).len);

	/* Payloads both ways. */
	assert_int_equal(ssh_transport_send_payload(c.t, msg, sizeof(msg)), 0);
	msg[0] = SSH_MSG_USERAUTH_FAILURE;
	assert_int_equal(ssh_transport_send_payload(s.t, msg, 10), 0);
	pump(&c, &s, chunk);
	assert_int_equal(s.ngot, 2);
	assert_int_equal(nth(&s, 1).len, sizeof(msg));
	assert_int_equal(c.ngot, 1);
	assert_int_equal(nth(&c, 0).p[0], SSH_MSG_USERAUTH_FAILURE);

	/* Client-initiated rekey with a payload queued behind it on each side. */
	assert_int_equal(ssh_transport_rekey(c.t), 0);
	msg[0] = 94;
	assert_int_equal(ssh_transport_send_payload(c.t, msg, 50), 0);	/* queued */
	assert_int_equal(ssh_transport_send_payload(s.t, msg, 60), 0);	/* goes before its KEXINIT */
	pump(&c, &s, chunk);
	assert_int_equal(c.err, 0);
	assert_int_equal(s.err, 0);
	assert_int_equal(ssh_transport_kex_count(c.t), 2);
	assert_int_equal(ssh_transport_kex_count(s.t), 2);
	assert_int_equal(s.ngot, 3);
	assert_int_equal(nth(&s, 2).len, 50);
	assert_int_equal(c.ngot, 2);
	assert_int_equal(nth(&c, 1).len, 60);
	/* The host key was not asked about again, but the rekey checked it is the same. */
	assert_int_equal(accept_count, 1);

	/* Server-initiated rekey. */
	assert_int_equal(ssh_transport_rekey(s.t), 0);
	assert_int_equal(ssh_transport_send_payload(s.t, msg, 70), 0);
	pump(&c, &s, chunk);
	assert_int_equal(ssh_transport_kex_count(c.t), 3);
	assert_int_equal(c.ngot, 3);
	assert_int_equal(nth(&c, 2).len, 70);

	/* A clean DISCONNECT ends both. */
	assert_int_equal(ssh_transport_disconnect(c.t, SSH_DISCONNECT_BY_APPLICATION, "bye"), 0);
	pump(&c, &s, chunk);
	assert_int_equal(s.err, PG_ECLOSED);
	assert_int_equal(ssh_transport_state(s.t), SSH_T_CLOSED);
	assert_non_null(strstr(ssh_transport_error(s.t), "reason 11): bye"));
	end_free(&c);
	end_free(&s);
}

static void
test_all_combinations(void **state)
{
	for (size_t k = 0; k < sizeof(kexes) / sizeof(kexes[0]); k++)
		for (size_t e = 0; e < sizeof(ciphers) / sizeof(ciphers[0]); e++)
			for (size_t h = 0; h < sizeof(hostkey_algs) / sizeof(hostkey_algs[0]); h++)
				full_run(kexes[k], ciphers[e].enc, ciphers[e].mac, hostkey_algs[h], 0);
}

static void
test_one_byte_feeding(void **state)
{
	for (size_t e = 0; e < sizeof(ciphers) / sizeof(ciphers[0]); e++)
		full_run("curve25519-sha256", ciphers[e].enc, ciphers[e].mac, "ssh-ed25519", 1);
}

static void
test_rekey_by_volume(void **state)
{
	struct sshkey *hk[1] = { keys[0] };
	struct ssh_transport_config cc = { .role = SSH_ROLE_CLIENT, .rekey_bytes = 100000 };
	struct ssh_transport_config sc = { .role = SSH_ROLE_SERVER, .host_keys = hk,
		.n_host_keys = 1 };
	struct end c = { 0 }, s = { 0 };
	uint8_t msg[30000] = { 94 };

	pg_buf_init(&c.got, 16 * 1024 * 1024);
	pg_buf_init(&s.got, 16 * 1024 * 1024);
	assert_int_equal(ssh_transport_new(&cc, &c.t), 0);
	assert_int_equal(ssh_transport_new(&sc, &s.t), 0);
	pump(&c, &s, 0);
	assert_int_equal(ssh_transport_kex_count(c.t), 1);
	assert_int_equal(ssh_transport_check_rekey(c.t), 0);
	/* Not before authentication, however much data: OpenSSH would call it a protocol error. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(ssh_transport_send_payload(c.t, msg, sizeof(msg)), 0);
	pump(&c, &s, 0);
	assert_int_equal(ssh_transport_kex_count(c.t), 1);
	/*
	 * USERAUTH_SUCCESS from the server: now the volume counts, and it is already over the limit,
	 * so receiving that very message starts a kex.
	 */
	assert_int_equal(ssh_transport_send_payload(s.t, (const uint8_t *)"\x34", 1), 0);
	pump(&c, &s, 0);
	assert_int_equal(c.ngot, 1);
	assert_int_equal(ssh_transport_kex_count(c.t), 2);
	assert_int_equal(ssh_transport_check_rekey(c.t), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(ssh_transport_send_payload(c.t, msg, sizeof(msg)), 0);
	/* The fourth payload passed 100000 bytes: a kex started by itself; the fifth waits for it. */
	pump(&c, &s, 0);
	assert_int_equal(ssh_transport_kex_count(c.t), 3);
	assert_int_equal(s.ngot, 10);
	assert_int_equal(c.err, 0);
	end_free(&c);
	end_free(&s);
}

static void
test_hostkey_rejected(void **state)
{
	struct sshkey *hk[1] = { keys[1] };
	struct end c, s;
	int no = -1;

	ends(&c, &s, (struct ssh_kex_prefs){ 0 }, (struct ssh_kex_prefs){ 0 }, hk, 1, &no);
	pump(&c, &s, 0);
	assert_int_equal(c.err, PG_EPROTO);
	assert_string_equal(ssh_transport_error(c.t), "host key not accepted");
	assert_int_equal(ssh_transport_state(c.t), SSH_T_FAILED);
	/* The server got our DISCONNECT and says so. */
	assert_int_equal(s.err, PG_ECLOSED);
	assert_non_null(strstr(ssh_transport_error(s.t), "reason 9"));
	end_free(&c);
	end_free(&s);
}

static void
test_no_common_algorithm(void **state)
{
	struct sshkey *hk[1] = { keys[0] };
	struct end c, s;

	ends(&c, &s, (struct ssh_kex_prefs){ .ciphers = "aes128-ctr" },
	    (struct ssh_kex_prefs){ .ciphers = "aes256-gcm@openssh.com" }, hk, 1, NULL);
	pump(&c, &s, 0);
	assert_int_equal(s.err, PG_EPROTO);
	assert_non_null(strstr(ssh_transport_error(s.t), "no common cipher client->server"));
	end_free(&c);
	end_free(&s);
	/* A server whose only host key is ed25519 cannot serve a client wanting RSA. */
	ends(&c, &s, (struct ssh_kex_prefs){ .hostkey = "rsa-sha2-512" }, (struct ssh_kex_prefs){ 0 },
	    hk, 1, NULL);
	pump(&c, &s, 0);
	assert_non_null(strstr(ssh_transport_error(s.t), "no common host key algorithm"));
	end_free(&c);
	end_free(&s);
}

/* The server side of RFC 4253 10: only ssh-userauth, and nothing of the layers above before it. */
static void
test_client_service(void **state)
{
	/* byte USERAUTH_REQUEST, string "u", string "ssh-connection", string "none" */
	static const uint8_t none_auth[] = "\x32\0\0\0\x01u\0\0\0\x0essh-connection\0\0\0\x04none";
	struct sshkey *hk[1] = { keys[0] };
	struct end c, s;

	client_service = "ssh-nosuchservice";
	ends(&c, &s, (struct ssh_kex_prefs){ 0 }, (struct ssh_kex_prefs){ 0 }, hk, 1, NULL);
	pump(&c, &s, 0);
	assert_int_equal(s.err, PG_EPROTO);
	assert_non_null(strstr(ssh_transport_error(s.t), "service not available"));
	assert_non_null(strstr(ssh_transport_error(c.t), "reason 7"));
	end_free(&c);
	end_free(&s);
	/* No request: the client opens at once and its userauth request breaks the protocol. */
	client_service = "";
	ends(&c, &s, (struct ssh_kex_prefs){ 0 }, (struct ssh_kex_prefs){ 0 }, hk, 1, NULL);
	assert_int_equal(ssh_transport_send_payload(c.t, none_auth, sizeof(none_auth) - 1), 0);
	pump(&c, &s, 0);
	assert_int_equal(ssh_transport_state(c.t), SSH_T_CLOSED);
	assert_int_equal(s.err, PG_EPROTO);
	assert_non_null(strstr(ssh_transport_error(s.t), "message 50 before the service started"));
	end_free(&c);
	end_free(&s);
	client_service = NULL;
	/* Names are bounded. */
	{
		char longname[80];
		struct ssh_transport_config cc = { .role = SSH_ROLE_CLIENT, .client_service = longname };
		struct ssh_transport *t = NULL;

		memset(longname, 'x', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		assert_int_equal(ssh_transport_new(&cc, &t), PG_EINVAL);
	}
}

static void
test_tampered_stream(void **state)
{
	struct sshkey *hk[1] = { keys[0] };
	struct end c, s;
	struct pg_buf out;
	struct pg_slice pl;
	uint8_t msg[64] = { 94 };

	ends(&c, &s, (struct ssh_kex_prefs){ .ciphers = "aes128-gcm@openssh.com" },
	    (struct ssh_kex_prefs){ 0 }, hk, 1, NULL);
	pump(&c, &s, 0);
	assert_int_equal(ssh_transport_send_payload(c.t, msg, sizeof(msg)), 0);
	pg_buf_init(&out, 1 << 20);
	assert_int_equal(ssh_transport_take_output(c.t, &out), 0);
	out.p[out.len - 20] ^= 1;
	assert_int_equal(ssh_transport_feed(s.t, out.p, out.len), 0);
	assert_int_equal(ssh_transport_next_payload(s.t, &pl), PG_EPROTO);
	assert_non_null(strstr(ssh_transport_error(s.t), "bad MAC"));
	/* Sticky. */
	assert_int_equal(ssh_transport_next_payload(s.t, &pl), PG_EPROTO);
	assert_int_equal(ssh_transport_send_payload(s.t, msg, sizeof(msg)), PG_EPROTO);
	pg_buf_free(&out);
	end_free(&c);
	end_free(&s);
}

/* Feeds hand-built plaintext packets (as a raw client) to a fresh server transport. */
static int
raw_to_server(const char *ident, const uint8_t *const *payloads, const size_t *lens, size_t n,
    struct ssh_transport **tp)
{
	struct sshkey *hk[1] = { keys[0] };
	struct ssh_transport_config sc = { .role = SSH_ROLE_SERVER, .host_keys = hk,
		.n_host_keys = 1 };
	struct ssh_transport *t;
	struct pg_slice pl;
	int r;

	assert_int_equal(ssh_transport_new(&sc, &t), 0);
	*tp = t;
	if ((r = ssh_transport_feed(t, (const uint8_t *)ident, strlen(ident))) != 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		uint8_t pkt[4096];
		size_t pad = 8 - (5 + lens[i]) % 8;

		if (pad < 4)
			pad += 8;
		ssh_poke_u32(pkt, (uint32_t)(1 + lens[i] + pad));
		pkt[4] = (uint8_t)pad;
		memcpy(pkt + 5, payloads[i], lens[i]);
		memset(pkt + 5 + lens[i], 0, pad);
		if ((r = ssh_transport_feed(t, pkt, 5 + lens[i] + pad)) != 0)
			return r;
	}
	while ((r = ssh_transport_next_payload(t, &pl)) == 1)
		;
	return r;
}

static void
test_strict_violations(void **state)
{
	struct ssh_transport *t, *cl;
	struct ssh_transport_config cc = { .role = SSH_ROLE_CLIENT };
	struct pg_buf ki;
	const uint8_t ignore[] = { SSH_MSG_IGNORE, 0, 0, 0, 0 };
	const uint8_t *p[2];
	size_t l[2];

	/* A real client KEXINIT (strict marker included), taken from a client transport's output. */
	assert_int_equal(ssh_transport_new(&cc, &cl), 0);
	pg_buf_init(&ki, 1 << 16);
	assert_int_equal(ssh_transport_take_output(cl, &ki), 0);
	{
		const uint8_t *nl = memchr(ki.p, '\n', ki.len);
		size_t off = (size_t)(nl - ki.p) + 1;
		uint32_t plen = ssh_peek_u32(ki.p + off);

		p[1] = ki.p + off + 5;
		l[1] = plen - 1 - ki.p[off + 4];
	}
	/* IGNORE before KEXINIT: KEXINIT is not the first packet. */
	p[0] = ignore;
	l[0] = sizeof(ignore);
	assert_int_equal(raw_to_server("SSH-2.0-x\r\n", p, l, 2, &t), PG_EPROTO);
	assert_non_null(strstr(ssh_transport_error(t), "strict kex: KEXINIT was not the first"));
	ssh_transport_free(t);
	/* IGNORE after KEXINIT, during the initial kex. */
	p[0] = p[1];
	l[0] = l[1];
	p[1] = ignore;
	l[1] = sizeof(ignore);
	assert_int_equal(raw_to_server("SSH-2.0-x\r\n", p, l, 2, &t), PG_EPROTO);
	assert_non_null(strstr(ssh_transport_error(t), "strict kex: message 2 during initial"));
	ssh_transport_free(t);
	/* Without the strict marker the same IGNORE is fine. */
	{
		uint8_t *copy = malloc(l[0]);
		uint8_t *at;

		memcpy(copy, p[0], l[0]);
		at = memmem(copy, l[0], SSH_KEX_STRICT_C, strlen(SSH_KEX_STRICT_C));
		assert_non_null(at);
		memcpy(at, "kex-strict-x", 12);	/* same length, no longer the marker */
		p[0] = copy;
		assert_int_equal(raw_to_server("SSH-2.0-x\r\n", p, l, 2, &t), 0);
		assert_int_equal(ssh_transport_state(t), SSH_T_KEX);
		assert_false(ssh_transport_strict(t));
		ssh_transport_free(t);
		free(copy);
	}
	pg_buf_free(&ki);
	ssh_transport_free(cl);
}

static void
test_version_lines(void **state)
{
	struct ssh_transport *t;
	struct ssh_transport_config cc = { .role = SSH_ROLE_CLIENT };
	struct pg_slice pl;
	char big[300];

	/* A client accepts lines before the server's ident, and LF alone. */
	assert_int_equal(ssh_transport_new(&cc, &t), 0);
	assert_int_equal(ssh_transport_feed(t, (const uint8_t *)"hello\r\nworld\nSSH-2.0-srv x\n", 27), 0);
	assert_int_equal(ssh_transport_next_payload(t, &pl), 0);
	assert_string_equal(ssh_transport_peer_version(t), "SSH-2.0-srv x");
	assert_int_equal(ssh_transport_state(t), SSH_T_KEX);
	ssh_transport_free(t);
	/* A server does not. */
	assert_int_equal(raw_to_server("hello\r\nSSH-2.0-x\r\n", NULL, NULL, 0, &t), PG_EPROTO);
	ssh_transport_free(t);
	assert_int_equal(raw_to_server("SSH-1.5-x\r\n", NULL, NULL, 0, &t), PG_EPROTO);
	assert_non_null(strstr(ssh_transport_error(t), "does not speak SSH 2.0"));
	ssh_transport_free(t);
	memset(big, 'a', sizeof(big));
	memcpy(big, "SSH-2.0-", 8);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(raw_to_server(big, NULL, NULL, 0, &t), PG_EPROTO);
	assert_non_null(strstr(ssh_transport_error(t), "over 255 bytes"));
	ssh_transport_free(t);
	/* The ident and a large first flight in one read: the bytes after the ident are packets. */
	{
		uint8_t *flight = calloc(1, 20000);

		memcpy(flight, "SSH-2.0-x\r\n", 11);
		assert_int_equal(ssh_transport_new(&cc, &t), 0);
		assert_int_equal(ssh_transport_feed(t, flight, 20000), 0);
		assert_int_equal(ssh_transport_next_payload(t, &pl), PG_EPROTO);
		assert_non_null(strstr(ssh_transport_error(t), "packet length 0 below minimum"));
		ssh_transport_free(t);
		free(flight);
	}
	/* Our ident names poolgate and not OpenSSH. */
	assert_null(strstr(SSH_TRANSPORT_IDENT, "OpenSSH"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_combinations),
		cmocka_unit_test(test_one_byte_feeding),
		cmocka_unit_test(test_rekey_by_volume),
		cmocka_unit_test(test_hostkey_rejected),
		cmocka_unit_test(test_no_common_algorithm),
		cmocka_unit_test(test_client_service),
		cmocka_unit_test(test_tampered_stream),
		cmocka_unit_test(test_strict_violations),
		cmocka_unit_test(test_version_lines),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
