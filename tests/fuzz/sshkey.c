/*
 * Fuzz target: SSH public key blobs and signature blobs. The input is string blob || string sig
 * (SSH wire strings). An accepted blob must write back to the same bytes; the signature is then
 * checked over fixed data (the seeds hold real signatures over it, so mutations reach the
 * verifiers) and may only succeed or fail with a documented code.
 */
#include "certs/sshkey.h"
#include "core/err.h"
#include "core/sshwire.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t signed_data[] = "poolgate sshkey fuzz";
	struct pg_slice s = { data, size }, blob, sig;
	struct sshkey *k = NULL;
	struct pg_buf back;
	int r;

	if (ssh_get_string(&s, &blob) != 0)
		return 0;
	if (ssh_get_string(&s, &sig) != 0)
		sig = (struct pg_slice){ NULL, 0 };
	if ((r = sshkey_from_blob(blob, &k)) != 0) {
		if (r != PG_EPARSE && r != PG_ENOMEM)
			__builtin_trap();
		return 0;
	}
	pg_buf_init(&back, 1 << 16);
	if (sshkey_to_blob(k, &back) != 0 || back.len != blob.len ||
	    memcmp(back.p, blob.p, blob.len) != 0)
		__builtin_trap();
	r = sshkey_verify(k, NULL, sig, signed_data, sizeof(signed_data));
	if (r != 0 && r != PG_EPROTO && r != PG_EPARSE && r != PG_ENOMEM)
		__builtin_trap();
	pg_buf_free(&back);
	sshkey_free(k);
	return 0;
}
