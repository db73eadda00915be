/*
 * Interop driver, SERVER role for a real SSH client (OpenSSH ssh, libssh2):
 *
 *   ssh-interop-server PORTFILE CAPTURE HOSTKEY...
 *
 * Listens on 127.0.0.1, an ephemeral port written to PORTFILE, accepts one connection and serves
 * it with the host keys given: kex, SERVICE_ACCEPT for ssh-userauth, and USERAUTH_FAILURE
 * "publickey,password" to every userauth request, until the client disconnects. Everything the
 * client sent is written to CAPTURE (the test cuts fuzz seeds from its plaintext start). Prints
 * key=value lines (kex, cipher, mac, hostkey, strict, kexes, userauth_requests) and exits 0 if at
 * least one key exchange completed. Gives up after 30 seconds. Environment REKEY=1: rekey when
 * the first userauth request arrives.
 */
#include "drive.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/sshwire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t salen = sizeof(sa);
	struct sshkey *keys[8];
	struct ssh_transport_config cfg = { .role = SSH_ROLE_SERVER, .log_prefix = "interop-server",
		.host_keys = keys };
	struct ssh_transport *t;
	struct pollfd pfd;
	FILE *cap, *pf;
	uint64_t deadline = pg_mono_ns() + 30000000000ull;
	uint8_t buf[65536];
	unsigned requests = 0;
	int ls, fd, one = 1, r;
	char err[256];

	if (argc < 4 || argc - 3 > 8) {
		fprintf(stderr, "usage: %s PORTFILE CAPTURE HOSTKEY...\n", argv[0]);
		return 2;
	}
	for (int i = 3; i < argc; i++) {
		if (sshkey_load_private(argv[i], &keys[i - 3], err, sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err);
			return 2;
		}
	}
	cfg.n_host_keys = (size_t)argc - 3;
	if ((ls = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(ls, 1) != 0 ||
	    getsockname(ls, (struct sockaddr *)&sa, &salen) != 0 || (pf = fopen(argv[1], "w")) == NULL) {
		perror("listen");
		return 1;
	}
	fprintf(pf, "%u\n", ntohs(sa.sin_port));
	fclose(pf);
	pfd = (struct pollfd){ ls, POLLIN, 0 };
	if (poll(&pfd, 1, 30000) != 1 || (fd = accept(ls, NULL, NULL)) < 0) {
		fprintf(stderr, "driver: no connection\n");
		return 1;
	}
	close(ls);
	if ((cap = fopen(argv[2], "wb")) == NULL || ssh_transport_new(&cfg, &t) != 0)
		return 1;
	for (;;) {
		struct pg_slice pl;
		ssize_t n;

		while ((r = ssh_transport_next_payload(t, &pl)) == 1) {
			if (pl.p[0] == SSH_MSG_USERAUTH_REQUEST) {
				/* byte USERAUTH_FAILURE, name-list methods, boolean partial success */
				static const uint8_t fail[] = "\x33\x00\x00\x00\x12publickey,password\x00";

				/*
				 * With REKEY set, the first request is answered after a rekey we
				 * start, so the real client proves the new keys both ways.
				 */
				if (requests++ == 0 && getenv("REKEY") != NULL &&
				    ssh_transport_rekey(t) != 0)
					r = -1;
				if (ssh_transport_send_payload(t, fail, sizeof(fail) - 1) != 0)
					r = -1;
			}
		}
		if (drive_flush(fd, t) != 0 || r < 0)
			break;
		pfd = (struct pollfd){ fd, POLLIN, 0 };
		if (pg_mono_ns() > deadline || poll(&pfd, 1, 1000) < 0)
			break;
		if (!(pfd.revents & (POLLIN | POLLHUP)))
			continue;
		if ((n = read(fd, buf, sizeof(buf))) <= 0)
			break;
		fwrite(buf, 1, (size_t)n, cap);
		if (ssh_transport_feed(t, buf, (size_t)n) != 0)
			break;
	}
	fclose(cap);
	if (ssh_transport_kex_count(t) > 0) {
		const struct ssh_kex_algs *a = ssh_transport_algs(t);

		printf("peer=%s\nkex=%s\ncipher=%s\nmac=%s\nhostkey=%s\nstrict=%d\n", 
		    ssh_transport_peer_version(t), a->kex, a->enc[1], a->mac[1], a->hostkey,
		    ssh_transport_strict(t));
	}
	printf("kexes=%u\nuserauth_requests=%u\nend=%s\n", ssh_transport_kex_count(t), requests,
	    ssh_transport_error(t));
	r = ssh_transport_kex_count(t) > 0 ? 0 : 1;
	ssh_transport_free(t);
	close(fd);
	for (int i = 3; i < argc; i++)
		sshkey_free(keys[i - 3]);
	return r;
}
