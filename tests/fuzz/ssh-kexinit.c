/*
 * Fuzz target: a peer's KEXINIT payload, parsed and negotiated against our own default KEXINIT in
 * both roles and for the initial kex and a rekey. Whatever is chosen must be a name we offered
 * (the markers never), and a failed negotiation must say why.
 */
#include "core/err.h"
#include "proxy/ssh/kex.h"
#include "core/sshwire.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_offered(const char *chosen, struct pg_slice ours)
{
	if (chosen[0] == '\0')
		return;
	if (!ssh_namelist_has(ours, chosen) || strstr(chosen, "kex-strict") != NULL ||
	    strstr(chosen, "ext-info") != NULL)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ssh_kexinit peer, ours;
	struct ssh_kex_algs a;
	struct pg_buf b;
	char why[256];

	if (ssh_kexinit_parse((struct pg_slice){ data, size }, &peer) != 0)
		return 0;
	for (int is_server = 0; is_server < 2; is_server++) {
		for (int initial = 0; initial < 2; initial++) {
			int r;

			pg_buf_init(&b, 1 << 16);
			if (ssh_kexinit_build(&b, &(struct ssh_kex_prefs){ 0 }, is_server, initial) != 0 ||
			    ssh_kexinit_parse((struct pg_slice){ b.p, b.len }, &ours) != 0)
				__builtin_trap();
			why[0] = '\0';
			r = ssh_kex_negotiate(is_server ? &peer : &ours, is_server ? &ours : &peer,
			    is_server, initial, &a, why, sizeof(why));
			if (r == 0) {
				check_offered(a.kex, ours.lists[SSH_KI_KEX]);
				check_offered(a.hostkey, ours.lists[SSH_KI_HOSTKEY]);
				for (int d = 0; d < 2; d++) {
					check_offered(a.enc[d], ours.lists[SSH_KI_ENC_CS]);
					check_offered(a.mac[d], ours.lists[SSH_KI_MAC_CS]);
				}
				if (!initial && (a.strict || a.peer_ext_info))
					__builtin_trap();
			} else if (r != PG_EPROTO || why[0] == '\0') {
				__builtin_trap();
			}
			pg_buf_free(&b);
		}
	}
	return 0;
}
