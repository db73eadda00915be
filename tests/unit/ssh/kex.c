/*
 * proxy/ssh/kex + kexinit: negotiation rules (RFC 4253 7.1, strict kex, ext-info, guesses) and every
 * method with every host key type run end to end through the client and server halves: both sides
 * must reach the same H and K and derive the same keys; a tampered reply must fail.
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
#include "proxy/ssh/kex.h"
#include "core/sshwire.h"

static char dir[64];
static struct sshkey *hostkeys[4];
static const char *const hostkey_algs[] = {
	"ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-256", "rsa-sha2-512",
};
static const char *const kexes[] = {
	"curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256",
	"ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "diffie-hellman-group16-sha512",
	"diffie-hellman-group14-sha256",
};

static int
setup(void **state)
{
	char cmd[256], path[128], err[256];
	static const char *const gen[] = { "ed25519", "ecdsa -b 256", "rsa -b 2048" };

	strcpy(dir, "/tmp/pg-kex-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	for (int i = 0; i < 3; i++) {
		snprintf(cmd, sizeof(cmd), "ssh-keygen -q -t %s -N '' -f %s/k%d", gen[i], dir, i);
		snprintf(path, sizeof(path), "%s/k%d", dir, i);
		if (system(cmd) != 0 || sshkey_load_private(path, &hostkeys[i], err, sizeof(err)) != 0)
			return -1;
	}
	hostkeys[3] = hostkeys[2];
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	for (int i = 0; i < 3; i++)
		sshkey_free(hostkeys[i]);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Builds a KEXINIT payload into b and parses it into ki. */
static void
kexinit(struct pg_buf *b, const struct ssh_kex_prefs *p, int is_server, int initial,
    struct ssh_kexinit *ki)
{
	pg_buf_init(b, 1 << 16);
	assert_int_equal(ssh_kexinit_build(b, p, is_server, initial), 0);
	assert_int_equal(ssh_kexinit_parse((struct pg_slice){ b->p, b->len }, ki), 0);
}

static void
test_negotiate(void **state)
{
	struct ssh_kex_prefs cp = { "ecdh-sha2-nistp256,curve25519-sha256", "rsa-sha2-256,ssh-ed25519",
		"aes128-ctr,aes256-gcm@openssh.com", "hmac-sha2-512,hmac-sha2-256" };
	struct ssh_kex_prefs sp = { "curve25519-sha256,ecdh-sha2-nistp256", "ssh-ed25519",
		"aes256-gcm@openssh.com,aes128-ctr", "hmac-sha2-256,hmac-sha2-512" };
	struct ssh_kexinit c, s;
	struct ssh_kex_algs a;
	struct pg_buf cb, sb;
	char why[256];

	kexinit(&cb, &cp, 0, 1, &c);
	kexinit(&sb, &sp, 1, 1, &s);
	/* The client's preference wins; the markers never become a method. */
	assert_int_equal(ssh_kex_negotiate(&c, &s, 1, 1, &a, why, sizeof(why)), 0);
	assert_string_equal(a.kex, "ecdh-sha2-nistp256");
	assert_string_equal(a.hostkey, "ssh-ed25519");
	assert_string_equal(a.enc[0], "aes128-ctr");
	assert_string_equal(a.mac[0], "hmac-sha2-512");
	assert_true(a.strict);
	assert_true(a.peer_ext_info);
	assert_false(a.skip_guess);
	assert_true(ssh_namelist_has(c.lists[SSH_KI_KEX], SSH_KEX_STRICT_C));
	assert_true(ssh_namelist_has(c.lists[SSH_KI_KEX], SSH_EXT_INFO_C));
	assert_true(ssh_namelist_has(s.lists[SSH_KI_KEX], SSH_EXT_INFO_S));
	/* As the client: the server's ext-info-s counts. */
	assert_int_equal(ssh_kex_negotiate(&c, &s, 0, 1, &a, why, sizeof(why)), 0);
	assert_true(a.peer_ext_info);
	pg_buf_free(&cb);
	pg_buf_free(&sb);

	/* A rekey KEXINIT carries no markers, and strictness is not renegotiated. */
	kexinit(&cb, &cp, 0, 0, &c);
	kexinit(&sb, &sp, 1, 0, &s);
	assert_false(ssh_namelist_has(c.lists[SSH_KI_KEX], SSH_KEX_STRICT_C));
	assert_int_equal(ssh_kex_negotiate(&c, &s, 1, 0, &a, why, sizeof(why)), 0);
	assert_false(a.strict);
	assert_false(a.peer_ext_info);
	pg_buf_free(&sb);

	/* An AEAD needs no common MAC. */
	sp.macs = "hmac-sha2-512-etm@openssh.com";
	cp.ciphers = "aes256-gcm@openssh.com";
	pg_buf_free(&cb);
	kexinit(&cb, &cp, 0, 1, &c);
	kexinit(&sb, &sp, 1, 1, &s);
	assert_int_equal(ssh_kex_negotiate(&c, &s, 1, 1, &a, why, sizeof(why)), 0);
	assert_string_equal(a.mac[0], "");
	pg_buf_free(&sb);
	pg_buf_free(&cb);

	/* No common cipher or kex: PG_EPROTO naming the list. */
	sp.ciphers = "aes128-ctr";
	kexinit(&cb, &cp, 0, 1, &c);
	kexinit(&sb, &sp, 1, 1, &s);
	assert_int_equal(ssh_kex_negotiate(&c, &s, 1, 1, &a, why, sizeof(why)), PG_EPROTO);
	assert_non_null(strstr(why, "no common cipher client->server"));
	pg_buf_free(&sb);
	sp.kex = "diffie-hellman-group14-sha256";
	kexinit(&sb, &sp, 1, 1, &s);
	assert_int_equal(ssh_kex_negotiate(&c, &s, 1, 1, &a, why, sizeof(why)), PG_EPROTO);
	assert_non_null(strstr(why, "no common kex algorithm"));
	pg_buf_free(&sb);
	pg_buf_free(&cb);
}

/* A peer whose markers are its only "kex" gets no method: markers never match. */
static void
test_markers_never_chosen(void **state)
{
	struct ssh_kex_prefs p = { "ext-info-c", NULL, NULL, NULL };
	struct ssh_kex_prefs q = { "ext-info-c", NULL, NULL, NULL };
	struct ssh_kexinit c, s;
	struct ssh_kex_algs a;
	struct pg_buf cb, sb;
	char why[256];

	kexinit(&cb, &p, 0, 0, &c);
	kexinit(&sb, &q, 1, 0, &s);
	assert_int_equal(ssh_kex_negotiate(&c, &s, 1, 0, &a, why, sizeof(why)), PG_EPROTO);
	pg_buf_free(&cb);
	pg_buf_free(&sb);
}

static void
set_follows(struct pg_buf *b)
{
	/* first_kex_packet_follows is the byte before the trailing reserved uint32. */
	b->p[b->len - 5] = 1;
}

static void
test_guess(void **state)
{
	struct ssh_kex_prefs cp = { "curve25519-sha256,ecdh-sha2-nistp256", NULL, NULL, NULL };
	struct ssh_kex_prefs sp = { "ecdh-sha2-nistp256,curve25519-sha256", NULL, NULL, NULL };
	struct ssh_kexinit c, s;
	struct ssh_kex_algs a;
	struct pg_buf cb, sb;
	char why[256];

	kexinit(&cb, &cp, 0, 1, &c);
	set_follows(&cb);
	assert_int_equal(ssh_kexinit_parse((struct pg_slice){ cb.p, cb.len }, &c), 0);
	assert_true(c.first_kex_follows);
	kexinit(&sb, &sp, 1, 1, &s);
	/* Different first kex: the client's guessed packet must be skipped by the server. */
	assert_int_equal(ssh_kex_negotiate(&c, &s, 1, 1, &a, why, sizeof(why)), 0);
	assert_true(a.skip_guess);
	assert_string_equal(a.kex, "curve25519-sha256");
	/* Same first algorithms: the guess stands. */
	pg_buf_free(&sb);
	kexinit(&sb, &cp, 1, 1, &s);
	assert_int_equal(ssh_kex_negotiate(&c, &s, 1, 1, &a, why, sizeof(why)), 0);
	assert_false(a.skip_guess);
	/* The client only cares about the server's guess. */
	assert_int_equal(ssh_kex_negotiate(&c, &s, 0, 1, &a, why, sizeof(why)), 0);
	assert_false(a.skip_guess);
	pg_buf_free(&sb);
	pg_buf_free(&cb);
}

static void
test_parse_errors(void **state)
{
	struct ssh_kexinit ki;
	struct pg_buf b;

	kexinit(&b, &(struct ssh_kex_prefs){ 0 }, 0, 1, &ki);
	for (size_t n = 0; n < b.len - 4; n++)
		assert_int_equal(ssh_kexinit_parse((struct pg_slice){ b.p, n }, &ki), PG_EPARSE);
	b.p[0] = 21;
	assert_int_equal(ssh_kexinit_parse((struct pg_slice){ b.p, b.len }, &ki), PG_EPARSE);
	pg_buf_free(&b);
}

/* One full exchange through both halves; returns the client's result. */
static int
exchange(const char *kex, int hk, int tamper, struct ssh_kex_secret *cs, struct ssh_kex_secret *ss)
{
	struct ssh_kex_hash_in hi = {
		PG_SLICE_LIT("SSH-2.0-client"), PG_SLICE_LIT("SSH-2.0-server"),
		PG_SLICE_LIT("\x14 client kexinit"), PG_SLICE_LIT("\x14 server kexinit"),
	};
	struct ssh_kex *c, *s;
	struct pg_buf init, reply;
	struct sshkey *got = NULL;
	char why[256];
	int r;

	pg_buf_init(&init, 1 << 16);
	pg_buf_init(&reply, 1 << 16);
	assert_int_equal(ssh_kex_new(kex, &c), 0);
	assert_int_equal(ssh_kex_new(kex, &s), 0);
	assert_int_equal(ssh_kex_client_init(c, &init), 0);
	assert_int_equal(ssh_kex_server_reply(s, (struct pg_slice){ init.p, init.len }, &hi,
	    hostkeys[hk], hostkey_algs[hk], &reply, ss, why, sizeof(why)), 0);
	if (tamper)
		reply.p[reply.len - 3] ^= 1;	/* inside the signature */
	r = ssh_kex_client_finish(c, (struct pg_slice){ reply.p, reply.len }, &hi, hostkey_algs[hk],
	    &got, cs, why, sizeof(why));
	if (r == 0) {
		assert_true(sshkey_equal_public(got, hostkeys[hk]));
		sshkey_free(got);
	} else {
		assert_non_null(strstr(why, "signature"));
	}
	ssh_kex_free(c);
	ssh_kex_free(s);
	pg_buf_free(&init);
	pg_buf_free(&reply);
	return r;
}

static void
test_methods(void **state)
{
	for (size_t k = 0; k < sizeof(kexes) / sizeof(kexes[0]); k++) {
		for (int hk = 0; hk < 4; hk++) {
			struct ssh_kex_secret cs, ss;
			uint8_t a[64], b[64];

			assert_int_equal(exchange(kexes[k], hk, 0, &cs, &ss), 0);
			assert_int_equal(cs.h_len, ss.h_len);
			assert_memory_equal(cs.h, ss.h, cs.h_len);
			assert_int_equal(cs.k_len, ss.k_len);
			assert_memory_equal(cs.k, ss.k, cs.k_len);
			for (char l = 'A'; l <= 'F'; l++) {
				assert_int_equal(ssh_kex_derive(&cs, cs.h, cs.h_len, l, a, 64), 0);
				assert_int_equal(ssh_kex_derive(&ss, cs.h, cs.h_len, l, b, 64), 0);
				assert_memory_equal(a, b, 64);
			}
			/* Letters give different keys; a prefix request gives a prefix. */
			assert_int_equal(ssh_kex_derive(&cs, cs.h, cs.h_len, 'C', b, 64), 0);
			assert_memory_not_equal(a, b, 32);
			assert_int_equal(ssh_kex_derive(&cs, cs.h, cs.h_len, 'F', b, 20), 0);
			assert_memory_equal(a, b, 20);
			ssh_kex_secret_clear(&cs);
			ssh_kex_secret_clear(&ss);
			if (hk == 0 || k == 0) {
				assert_int_equal(exchange(kexes[k], hk, 1, &cs, &ss), PG_EPROTO);
				ssh_kex_secret_clear(&ss);
			}
		}
	}
}

static void
test_bad_public_values(void **state)
{
	struct ssh_kex_hash_in hi = { PG_SLICE_LIT("a"), PG_SLICE_LIT("b"), PG_SLICE_LIT("c"),
		PG_SLICE_LIT("d") };
	struct ssh_kex_secret sec;
	struct ssh_kex *s;
	struct pg_buf out;
	char why[256];
	uint8_t zero32[4 + 1 + 32] = { SSH_MSG_KEX_INIT, 0, 0, 0, 32 };
	uint8_t one[] = { SSH_MSG_KEX_INIT, 0, 0, 0, 1, 1 };
	uint8_t pt[] = { SSH_MSG_KEX_INIT, 0, 0, 0, 3, 4, 1, 2 };

	pg_buf_init(&out, 1 << 16);
	/* X25519 low-order point (all zero): the shared secret would be zero. */
	assert_int_equal(ssh_kex_new("curve25519-sha256", &s), 0);
	assert_int_equal(ssh_kex_server_reply(s, (struct pg_slice){ zero32, 4 + 1 + 32 }, &hi,
	    hostkeys[0], "ssh-ed25519", &out, &sec, why, sizeof(why)), PG_EPROTO);
	ssh_kex_free(s);
	/* DH e = 1 is outside 1 < e < p-1. */
	assert_int_equal(ssh_kex_new("diffie-hellman-group14-sha256", &s), 0);
	assert_int_equal(ssh_kex_server_reply(s, (struct pg_slice){ one, sizeof(one) }, &hi,
	    hostkeys[0], "ssh-ed25519", &out, &sec, why, sizeof(why)), PG_EPROTO);
	assert_non_null(strstr(why, "DH public value"));
	ssh_kex_free(s);
	/* An ECDH point not on the curve. */
	assert_int_equal(ssh_kex_new("ecdh-sha2-nistp256", &s), 0);
	assert_int_equal(ssh_kex_server_reply(s, (struct pg_slice){ pt, sizeof(pt) }, &hi,
	    hostkeys[0], "ssh-ed25519", &out, &sec, why, sizeof(why)), PG_EPROTO);
	ssh_kex_free(s);
	assert_int_equal(out.len, 0);
	pg_buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_negotiate),
		cmocka_unit_test(test_markers_never_chosen),
		cmocka_unit_test(test_guess),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_bad_public_values),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
