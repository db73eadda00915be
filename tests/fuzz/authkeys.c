/*
 * Fuzz target: authorized_keys and known_hosts text. The input is looked up for a fixed key (and
 * host) by both parsers; each may only find it, not find it, or refuse with a documented code.
 * The key is a constant (FUZZ_KEY below) so that seeds holding it, with options in front, reach
 * the option checks (from=, expiry-time=, restrictions) and the cert-authority path (a
 * certificate that key signed at start).
 */
#include "certs/authkeys.h"
#include "certs/usercert.h"
#include "certs/knownhosts.h"
#include "core/err.h"
#include "core/log.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed ed25519 key (a fuzzing constant, not a secret): seeds hold its public line. */
static const char fuzz_key[] = "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIOPi2KOAai99r5Rw/0H7o1IDzgmOIErkEp0yHImsntgV\n"
    "-----END PRIVATE KEY-----\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sshkey *key, *certkey;
	static struct usercert *cert;
	static struct pg_buf blob;	/* the certificate's slices point into it: kept */
	static const struct authkeys_ctx ctx = { .user = "alice", .client_ip = "192.0.2.7",
		.now = 1700000000, .what = "fuzz" };
	struct pg_slice text = { data, size };
	int r;

	pg_log_min_level = PG_LOG_ERR;	/* every refused line logs a notice */
	if (key == NULL) {
		struct usercert_req req = { .principal = "alice", .key_id = "fuzz", .serial = 1,
			.now = 1700000000 };

		if (sshkey_parse_private(PG_SLICE_LIT(fuzz_key), &key, NULL, 0) != 0 ||
		    sshkey_generate_ed25519(&certkey) != 0)
			return 0;
		req.key = certkey;
		req.ca = key;
		pg_buf_init(&blob, 65536);
		if (usercert_make(&req, &blob) != 0 ||
		    usercert_parse((struct pg_slice){ blob.p, blob.len }, &cert) != 0)
			__builtin_trap();
	}
	r = authkeys_match(text, key, &ctx);
	if (r != 0 && r != 1)
		__builtin_trap();
	r = authkeys_match_cert(text, cert, &ctx);
	if (r != 0 && r != 1)
		__builtin_trap();
	r = knownhosts_check(text, "127.0.0.2", 2022, key);
	if (r != 0 && r != PG_ENOTFOUND && r != PG_EAUTH)
		__builtin_trap();
	return 0;
}
