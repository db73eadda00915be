/*
 * certs/usercert: a certificate we make must read back in `ssh-keygen -L` with the fields we put
 * in, and verify (ssh-keygen checks the CA signature when it prints).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "certs/usercert.h"
#include "core/err.h"

static void
test_keygen_reads_it(void **state)
{
	struct sshkey *key, *ca;
	struct pg_buf cert, caline;
	char dir[] = "/tmp/pg-usercert-XXXXXX", path[256], cmd[600], out[8192];
	char *b64;
	FILE *f;
	size_t n;
	struct usercert_req req = { .principal = "pgtest-alice", .key_id = "poolgate conn 7",
		.serial = 7, .now = (uint64_t)time(NULL) };

	assert_non_null(mkdtemp(dir));
	assert_int_equal(sshkey_generate_ed25519(&key), 0);
	assert_int_equal(sshkey_generate_ed25519(&ca), 0);
	req.key = key;
	req.ca = ca;
	pg_buf_init(&cert, 65536);
	assert_int_equal(usercert_make(&req, &cert), 0);

	if ((b64 = malloc(cert.len * 2 + 4)) == NULL)
		fail();
	EVP_EncodeBlock((unsigned char *)b64, cert.p, (int)cert.len);
	snprintf(path, sizeof(path), "%s/id-cert.pub", dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "%s %s\n", usercert_type_name(key), b64);
	fclose(f);
	free(b64);

	snprintf(cmd, sizeof(cmd), "ssh-keygen -L -f %s 2>&1", path);
	assert_non_null(f = popen(cmd, "r"));
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	assert_int_equal(pclose(f), 0);
	if (strstr(out, "Type: ssh-ed25519-cert-v01@openssh.com user certificate") == NULL ||
	    strstr(out, "Key ID: \"poolgate conn 7\"") == NULL ||
	    strstr(out, "Serial: 7") == NULL ||
	    strstr(out, "Principals: \n                pgtest-alice") == NULL ||
	    strstr(out, "Critical Options: (none)") == NULL ||
	    strstr(out, "permit-pty") == NULL || strstr(out, "permit-agent-forwarding") == NULL ||
	    strstr(out, "permit-port-forwarding") == NULL)
		print_error("ssh-keygen -L said:\n%s\n", out);
	assert_non_null(strstr(out, "Type: ssh-ed25519-cert-v01@openssh.com user certificate"));
	assert_non_null(strstr(out, "Key ID: \"poolgate conn 7\""));
	assert_non_null(strstr(out, "Serial: 7"));
	assert_non_null(strstr(out, "pgtest-alice"));
	assert_non_null(strstr(out, "Critical Options: (none)"));
	assert_non_null(strstr(out, "permit-pty"));
	assert_non_null(strstr(out, "permit-agent-forwarding"));
	assert_non_null(strstr(out, "permit-port-forwarding"));

	/* The signing CA's fingerprint is what ssh-keygen names. */
	{
		char fp[SSHKEY_FP_LEN];

		assert_int_equal(sshkey_fingerprint(ca, fp, sizeof(fp)), 0);
		assert_non_null(strstr(out, fp));
	}
	(void)caline;
	unlink(path);
	rmdir(dir);
	pg_buf_free(&cert);
	sshkey_free(key);
	sshkey_free(ca);
}

static void
test_refuses_public_ca(void **state)
{
	struct sshkey *key, *ca, *capub;
	struct pg_buf b, cert;
	struct usercert_req req = { .principal = "a", .key_id = "k", .now = 1000 };

	assert_int_equal(sshkey_generate_ed25519(&key), 0);
	assert_int_equal(sshkey_generate_ed25519(&ca), 0);
	pg_buf_init(&b, 4096);
	pg_buf_init(&cert, 4096);
	assert_int_equal(sshkey_to_blob(ca, &b), 0);
	assert_int_equal(sshkey_from_blob((struct pg_slice){ b.p, b.len }, &capub), 0);
	req.key = key;
	req.ca = capub;
	assert_int_equal(usercert_make(&req, &cert), PG_EINVAL);
	assert_int_equal(cert.len, 0);
	pg_buf_free(&b);
	pg_buf_free(&cert);
	sshkey_free(key);
	sshkey_free(ca);
	sshkey_free(capub);
}

/*
 * The load probe's identity: a fresh ECDSA P-256 key (libssh2 1.10 cannot present ed25519
 * certificates) certified by the ed25519 pool CA. It must read back, verify and sign.
 */
static void
test_ecdsa_p256_certificate(void **state)
{
	struct sshkey *key, *ca;
	struct usercert *c;
	struct pg_buf cert, sig;
	const char *why = NULL;
	static const uint8_t data[] = "session id and userauth request";
	struct usercert_req req = { .principal = "pgprobe", .key_id = "poolgate load probe",
		.serial = 1, .now = 1000000, .lifetime_s = 600 };

	assert_int_equal(sshkey_generate_ecdsa_p256(&key), 0);
	assert_int_equal(sshkey_type(key), SSHKEY_ECDSA_P256);
	assert_string_equal(sshkey_type_name(key), "ecdsa-sha2-nistp256");
	assert_int_equal(sshkey_generate_ed25519(&ca), 0);
	req.key = key;
	req.ca = ca;
	pg_buf_init(&cert, 65536);
	pg_buf_init(&sig, 4096);
	assert_int_equal(usercert_make(&req, &cert), 0);
	assert_int_equal(usercert_parse((struct pg_slice){ cert.p, cert.len }, &c), 0);
	assert_string_equal(usercert_type_name(c->key), "ecdsa-sha2-nistp256-cert-v01@openssh.com");
	assert_true(sshkey_equal_public(c->key, key));
	assert_true(sshkey_equal_public(c->ca, ca));
	assert_int_equal(usercert_check(c, "pgprobe", 1000000 + 599, &why), 0);
	assert_int_equal(usercert_check(c, "pgprobe", 1000000 + 601, &why), PG_EAUTH);
	assert_int_equal(sshkey_sign(key, "ecdsa-sha2-nistp256", data, sizeof(data), &sig), 0);
	assert_int_equal(sshkey_verify(c->key, "ecdsa-sha2-nistp256",
	    (struct pg_slice){ sig.p, sig.len }, data, sizeof(data)), 0);
	usercert_free(c);
	pg_buf_free(&cert);
	pg_buf_free(&sig);
	sshkey_free(key);
	sshkey_free(ca);
}

/* What usercert_make writes, usercert_parse reads back and usercert_check judges. */
static void
test_parse_and_check(void **state)
{
	struct sshkey *key, *ca;
	struct usercert *c;
	struct pg_buf cert;
	const char *why = NULL;
	struct usercert_req req = { .principal = "alice", .key_id = "k1", .serial = 42,
		.now = 1000000, .lifetime_s = 300 };

	assert_int_equal(sshkey_generate_ed25519(&key), 0);
	assert_int_equal(sshkey_generate_ed25519(&ca), 0);
	req.key = key;
	req.ca = ca;
	pg_buf_init(&cert, 65536);
	assert_int_equal(usercert_make(&req, &cert), 0);
	assert_int_equal(usercert_parse((struct pg_slice){ cert.p, cert.len }, &c), 0);
	assert_true(sshkey_equal_public(c->key, key));
	assert_true(sshkey_equal_public(c->ca, ca));
	assert_int_equal(c->serial, 42);
	assert_string_equal(c->key_id, "k1");
	assert_int_equal(c->valid_after, 1000000 - 60);
	assert_int_equal(c->valid_before, 1000000 + 300);
	assert_int_equal(usercert_check(c, "alice", 1000000, &why), 0);
	assert_int_equal(usercert_check(c, "bob", 1000000, &why), PG_EAUTH);
	assert_int_equal(usercert_check(c, "alice", 1000300, &why), PG_EAUTH);
	assert_string_equal(why, "expired");
	assert_int_equal(usercert_check(c, "alice", 1000000 - 61, &why), PG_EAUTH);
	assert_string_equal(why, "not yet valid");
	usercert_free(c);
	assert_string_equal(usercert_sig_alg("rsa-sha2-512-cert-v01@openssh.com"), "rsa-sha2-512");
	assert_null(usercert_sig_alg("ssh-ed25519"));

	/* One flipped bit anywhere in the signed part: the CA signature no longer verifies. */
	cert.p[cert.len / 2] ^= 1;
	c = NULL;
	assert_true(usercert_parse((struct pg_slice){ cert.p, cert.len }, &c) < 0);
	assert_null(c);
	cert.p[cert.len / 2] ^= 1;
	/* Truncated: malformed. */
	assert_int_equal(usercert_parse((struct pg_slice){ cert.p, cert.len - 1 }, &c), PG_EPARSE);
	pg_buf_free(&cert);
	sshkey_free(key);
	sshkey_free(ca);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keygen_reads_it),
		cmocka_unit_test(test_refuses_public_ca),
		cmocka_unit_test(test_ecdsa_p256_certificate),
		cmocka_unit_test(test_parse_and_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
