/*
 * certs/sshkey: keys that the real ssh-keygen (and openssl genpkey) make at test time load,
 * fingerprint like `ssh-keygen -lf`, write the same public line as the .pub file, and sign and
 * verify with every algorithm they support.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "certs/sshkey.h"
#include "core/err.h"
#include "core/sshwire.h"

static char dir[64];

static const struct {
	const char *file, *gen;
	enum sshkey_type type;
	const char *algs;
} keys[] = {
	{ "ed25519", "ssh-keygen -q -t ed25519 -N '' -C c1 -f %s/ed25519", SSHKEY_ED25519, "ssh-ed25519" },
	{ "p256", "ssh-keygen -q -t ecdsa -b 256 -N '' -C c2 -f %s/p256", SSHKEY_ECDSA_P256, "ecdsa-sha2-nistp256" },
	{ "p384", "ssh-keygen -q -t ecdsa -b 384 -N '' -C c3 -f %s/p384", SSHKEY_ECDSA_P384, "ecdsa-sha2-nistp384" },
	{ "p521", "ssh-keygen -q -t ecdsa -b 521 -N '' -C c4 -f %s/p521", SSHKEY_ECDSA_P521, "ecdsa-sha2-nistp521" },
	{ "rsa", "ssh-keygen -q -t rsa -b 2048 -N '' -C c5 -f %s/rsa", SSHKEY_RSA, "rsa-sha2-512,rsa-sha2-256" },
	/* PEM forms: traditional RSA and EC from ssh-keygen -m PEM, PKCS#8 ed25519 from openssl. */
	{ "rsa-pem", "ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -C c6 -f %s/rsa-pem", SSHKEY_RSA, "rsa-sha2-512,rsa-sha2-256" },
	{ "p256-pem", "ssh-keygen -q -t ecdsa -b 256 -m PEM -N '' -C c7 -f %s/p256-pem", SSHKEY_ECDSA_P256, "ecdsa-sha2-nistp256" },
	{ "ed-pem", "openssl genpkey -algorithm ed25519 -out %s/ed-pem 2>/dev/null", SSHKEY_ED25519, "ssh-ed25519" },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Runs a command template whose one %s is the key directory. */
static int
sh(const char *tmpl, const char *arg)
{
	char cmd[512];
	const char *at = strstr(tmpl, "%s");

	if (at == NULL)
		return system(tmpl);
	snprintf(cmd, sizeof(cmd), "%.*s%s%s", (int)(at - tmpl), tmpl, arg, at + 2);
	return system(cmd);
}

static int
setup(void **state)
{
	strcpy(dir, "/tmp/pg-sshkey-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	for (size_t i = 0; i < NKEYS; i++)
		if (sh(keys[i].gen, dir) != 0)
			return -1;
	/* An encrypted key, which must be refused with a clear message. */
	if (sh("ssh-keygen -q -t ed25519 -N secret -f %s/enc", dir) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	return sh("rm -rf %s", dir) == 0 ? 0 : -1;
}

static struct sshkey *
load(const char *name)
{
	char path[128], err[256];
	struct sshkey *k = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (sshkey_load_private(path, &k, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	return k;
}

/* Reads one line of a command's output. */
static void
run_line(const char *cmd, char *out, size_t outlen)
{
	FILE *p = popen(cmd, "r");

	assert_non_null(p);
	assert_non_null(fgets(out, (int)outlen, p));
	pclose(p);
	out[strcspn(out, "\n")] = '\0';
}

/* OpenSSH 9.2's ssh-keygen cannot read PKCS#8 ed25519 files. */
static int
keygen_reads(size_t i)
{
	return strcmp(keys[i].file, "ed-pem") != 0;
}

/* For a key ssh-keygen cannot read: the blob's raw key equals what openssl derives. */
static void
check_ed_pem(const struct sshkey *k, const char *file)
{
	char cmd[256], want[80], got[80];
	struct pg_buf blob;

	snprintf(cmd, sizeof(cmd), "openssl pkey -in %s/%s -pubout -outform DER | tail -c 32 | "
	    "od -An -tx1 -v | tr -d ' \\n'; echo", dir, file);
	run_line(cmd, want, sizeof(want));
	pg_buf_init(&blob, 256);
	assert_int_equal(sshkey_to_blob(k, &blob), 0);
	for (size_t j = 0; j < 32; j++)
		snprintf(got + 2 * j, 3, "%02x", blob.p[blob.len - 32 + j]);
	assert_string_equal(got, want);
	pg_buf_free(&blob);
}

static void
test_load_and_fingerprint(void **state)
{
	for (size_t i = 0; i < NKEYS; i++) {
		struct sshkey *k = load(keys[i].file);
		char fp[SSHKEY_FP_LEN], cmd[256], line[512], want[128];

		assert_int_equal(sshkey_type(k), keys[i].type);
		assert_true(sshkey_has_private(k));
		assert_string_equal(sshkey_sig_algs(k), keys[i].algs);
		assert_int_equal(sshkey_fingerprint(k, fp, sizeof(fp)), 0);
		if (!keygen_reads(i)) {
			check_ed_pem(k, keys[i].file);
			sshkey_free(k);
			continue;
		}
		/* ssh-keygen -lf reads the private key too: "BITS SHA256:... comment (TYPE)". */
		snprintf(cmd, sizeof(cmd), "ssh-keygen -lf %s/%s", dir, keys[i].file);
		run_line(cmd, line, sizeof(line));
		sscanf(line, "%*s %127s", want);
		assert_string_equal(fp, want);
		sshkey_free(k);
	}
}

static void
test_public_line(void **state)
{
	for (size_t i = 0; i < NKEYS; i++) {
		struct sshkey *k = load(keys[i].file), *pub = NULL;
		char cmd[256], want[8192];
		struct pg_buf out, blob;

		if (!keygen_reads(i)) {
			sshkey_free(k);
			continue;
		}
		/* ssh-keygen -y derives the public line from the private key file, in any format. */
		snprintf(cmd, sizeof(cmd), "ssh-keygen -y -f %s/%s", dir, keys[i].file);
		run_line(cmd, want, sizeof(want));
		want[strcspn(want, " ")] = '\0';	/* type */
		pg_buf_init(&out, 16384);
		assert_int_equal(sshkey_write_public(k, NULL, &out), 0);
		assert_int_equal(out.p[out.len - 1], '\n');
		assert_memory_equal(out.p, want, strlen(want));
		run_line(cmd, want, sizeof(want));
		want[strcspn(want, " ") + 1 + strcspn(want + strcspn(want, " ") + 1, " ")] = '\0';
		assert_int_equal(out.len - 1, strlen(want));
		assert_memory_equal(out.p, want, out.len - 1);
		/* The blob reads back as the same public key, without the private half. */
		pg_buf_init(&blob, 16384);
		assert_int_equal(sshkey_to_blob(k, &blob), 0);
		assert_int_equal(sshkey_from_blob((struct pg_slice){ blob.p, blob.len }, &pub), 0);
		assert_true(sshkey_equal_public(k, pub));
		assert_false(sshkey_has_private(pub));
		/* Trailing bytes and truncation are refused. */
		blob.len--;
		assert_int_equal(sshkey_from_blob((struct pg_slice){ blob.p, blob.len }, &pub), PG_EPARSE);
		sshkey_free(pub);
		pg_buf_free(&blob);
		pg_buf_free(&out);
		sshkey_free(k);
	}
}

static void
test_sign_verify(void **state)
{
	static const uint8_t data[] = "exchange hash H";

	for (size_t i = 0; i < NKEYS; i++) {
		struct sshkey *k = load(keys[i].file), *pub;
		struct pg_buf blob, sig;
		struct pg_slice algs = { (const uint8_t *)keys[i].algs, strlen(keys[i].algs) }, a;

		pg_buf_init(&blob, 16384);
		assert_int_equal(sshkey_to_blob(k, &blob), 0);
		assert_int_equal(sshkey_from_blob((struct pg_slice){ blob.p, blob.len }, &pub), 0);
		while (ssh_namelist_next(&algs, &a)) {
			char alg[32];
			struct pg_slice s;

			memcpy(alg, a.p, a.len);
			alg[a.len] = '\0';
			pg_buf_init(&sig, 16384);
			assert_int_equal(sshkey_sign(k, alg, data, sizeof(data), &sig), 0);
			s = (struct pg_slice){ sig.p, sig.len };
			assert_int_equal(sshkey_verify(pub, alg, s, data, sizeof(data)), 0);
			assert_int_equal(sshkey_verify(pub, NULL, s, data, sizeof(data)), 0);
			/* Other data, another algorithm name, a public key cannot sign. */
			assert_int_equal(sshkey_verify(pub, alg, s, data, sizeof(data) - 1), PG_EPROTO);
			assert_int_equal(sshkey_verify(pub, "ssh-dss", s, data, sizeof(data)), PG_EPROTO);
			assert_int_equal(sshkey_sign(pub, alg, data, sizeof(data), &sig), PG_EINVAL);
			/* A flipped bit in the signature itself. */
			sig.p[sig.len - 2] ^= 4;
			assert_true(sshkey_verify(pub, alg, s, data, sizeof(data)) < 0);
			pg_buf_free(&sig);
		}
		assert_int_equal(sshkey_sign(k, "ssh-rsa", data, sizeof(data), &blob), PG_EINVAL);
		sshkey_free(pub);
		pg_buf_free(&blob);
		sshkey_free(k);
	}
}

static void
test_generate(void **state)
{
	struct sshkey *k;
	struct pg_buf line;
	char path[128], cmd[256], fp[SSHKEY_FP_LEN], out[512], want[128];
	FILE *f;

	assert_int_equal(sshkey_generate_ed25519(&k), 0);
	pg_buf_init(&line, 4096);
	assert_int_equal(sshkey_write_public(k, "pool host key", &line), 0);
	snprintf(path, sizeof(path), "%s/gen.pub", dir);
	assert_non_null(f = fopen(path, "w"));
	fwrite(line.p, 1, line.len, f);
	fclose(f);
	/* The real ssh-keygen reads our authorized_keys line and agrees on the fingerprint. */
	snprintf(cmd, sizeof(cmd), "ssh-keygen -lf %s", path);
	run_line(cmd, out, sizeof(out));
	sscanf(out, "%*s %127s", want);
	assert_int_equal(sshkey_fingerprint(k, fp, sizeof(fp)), 0);
	assert_string_equal(fp, want);
	assert_non_null(strstr(out, "pool host key (ED25519)"));
	pg_buf_free(&line);
	sshkey_free(k);
}

static void
test_bad_files(void **state)
{
	char path[128], err[256];
	struct sshkey *k = NULL;
	static const char garbage[] = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
	    "-----END OPENSSH PRIVATE KEY-----\n";

	snprintf(path, sizeof(path), "%s/enc", dir);
	assert_int_equal(sshkey_load_private(path, &k, err, sizeof(err)), PG_EPARSE);
	assert_non_null(strstr(err, "encrypted"));
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(sshkey_load_private(path, &k, err, sizeof(err)), PG_EIO);
	assert_non_null(strstr(err, "missing"));
	snprintf(path, sizeof(path), "%s/ed25519.pub", dir);
	assert_int_equal(sshkey_load_private(path, &k, err, sizeof(err)), PG_EPARSE);
	assert_int_equal(sshkey_parse_private(PG_SLICE_LIT(garbage), &k, err, sizeof(err)), PG_EPARSE);
	assert_null(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_and_fingerprint),
		cmocka_unit_test(test_public_line),
		cmocka_unit_test(test_sign_verify),
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_bad_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
