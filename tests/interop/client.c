/*
 * Interop driver, CLIENT role against a real sshd:
 *
 *   ssh-interop-client HOST PORT KEX CIPHER MAC HOSTKEYALG [CAPTURE_DIR]
 *
 * MAC "-" for AEAD ciphers. Completes kex and the ssh-userauth service request, sends a `none`
 * userauth, expects USERAUTH_FAILURE, and prints key=value lines for the test to check: kex,
 * cipher, mac, hostkey, fingerprint, strict, server_sig_algs, methods. Exit 0 only if all of that
 * happened. No rekey here: sshd refuses KEXINIT before authentication ("dispatch_protocol_error:
 * type 20" in its log), so rekeys against real peers are driven from the server driver.
 */
#include "drive.h"
#include "core/err.h"
#include "core/sshwire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fp[SSHKEY_FP_LEN];

static int
remember_key(void *arg, const struct sshkey *key)
{
	return sshkey_fingerprint(key, fp, sizeof(fp));
}

/* string user, string service, string method "none" */
static int
ask_none(int fd, struct ssh_transport *t, char *methods, size_t mlen)
{
	struct pg_buf b;
	struct pg_slice pl, s, list;
	uint8_t type;
	int partial;

	pg_buf_init(&b, 1024);
	if (ssh_put_u8(&b, SSH_MSG_USERAUTH_REQUEST) || ssh_put_cstring(&b, "test") ||
	    ssh_put_cstring(&b, "ssh-connection") || ssh_put_cstring(&b, "none") ||
	    ssh_transport_send_payload(t, b.p, b.len) != 0) {
		fprintf(stderr, "driver: cannot send userauth: %s\n", ssh_transport_error(t));
		return -1;
	}
	pg_buf_free(&b);
	if (drive_next(fd, t, &pl, 15000) != 1)
		return -1;
	/* byte SSH_MSG_USERAUTH_FAILURE, name-list methods, boolean partial success */
	s = pl;
	if (ssh_get_u8(&s, &type) || type != SSH_MSG_USERAUTH_FAILURE ||
	    ssh_get_namelist(&s, &list) || ssh_get_bool(&s, &partial)) {
		fprintf(stderr, "driver: expected USERAUTH_FAILURE, got message %u\n", pl.p[0]);
		return -1;
	}
	snprintf(methods, mlen, "%.*s", (int)list.len, list.p);
	return 0;
}

int
main(int argc, char **argv)
{
	struct ssh_transport_config cfg = { .role = SSH_ROLE_CLIENT, .log_prefix = "interop-client",
		.verify_hostkey = remember_key };
	struct ssh_transport *t;
	const struct ssh_kex_algs *a;
	char methods[256];
	int fd;

	if (argc < 7) {
		fprintf(stderr, "usage: %s HOST PORT KEX CIPHER MAC HOSTKEYALG\n", argv[0]);
		return 2;
	}
	cfg.prefs.kex = argv[3];
	cfg.prefs.ciphers = argv[4];
	cfg.prefs.macs = strcmp(argv[5], "-") ? argv[5] : NULL;
	cfg.prefs.hostkey = argv[6];
	if ((fd = drive_connect(argv[1], argv[2])) < 0)
		return fd == -2 ? 2 : 1;
	if (ssh_transport_new(&cfg, &t) != 0) {
		fprintf(stderr, "driver: bad algorithm names\n");
		return 2;
	}
	if (ask_none(fd, t, methods, sizeof(methods)) != 0)
		return 1;
	a = ssh_transport_algs(t);
	printf("peer=%s\nkex=%s\ncipher=%s\nmac=%s\nhostkey=%s\nfingerprint=%s\nstrict=%d\n"
	    "server_sig_algs=%s\nmethods=%s\n", ssh_transport_peer_version(t), a->kex, a->enc[0],
	    a->mac[0], a->hostkey, fp, ssh_transport_strict(t), ssh_transport_server_sig_algs(t),
	    methods);
	ssh_transport_disconnect(t, SSH_DISCONNECT_BY_APPLICATION, "done");
	drive_flush(fd, t);
	ssh_transport_free(t);
	close(fd);
	return 0;
}
