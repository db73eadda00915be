/*
 * Interop driver, CLIENT role against poolgate's SSH front door, for the bad-input suite
 * (tests/integration/test_bad_input.py): the bad message must come after a real key exchange.
 *
 *   ssh-interop-raw HOST PORT PAYLOAD...
 *
 * Completes kex and the ssh-userauth service request, then sends each PAYLOAD in order. A PAYLOAD
 * is hex (its first byte the message number, 50 and up: the transport sends nothing below); the
 * prefix "badmac:" sends it with the last byte of its packet (the MAC or AEAD tag) flipped. Then
 * reads until the server closes or has answered USERAUTH_FAILURE once per PAYLOAD (a refusal that
 * keeps the connection, which RFC 4252 allows for a well-formed but unacceptable request), at most
 * 10 seconds, and
 * prints key=value lines:
 *   port=N           our local port (the test finds the connection's log lines by it)
 *   kex=1            the key exchange completed
 *   msg=N            each message the server sent (one line each)
 *   end=TEXT         the transport's error: "peer disconnected (reason R): ..." after a DISCONNECT
 *   eof=1|0          the server closed the connection within the bound
 *   refused=1|0      the server answered USERAUTH_FAILURE
 * Exit 0 if the key exchange completed and the server closed or refused within the bound.
 *
 * Environment RAW_SERVICE=NAME requests service NAME instead of ssh-userauth (the server must
 * refuse it); RAW_SERVICE= (empty) requests none, so the payloads come before any SERVICE_REQUEST.
 * With RAW_SERVICE set, no PAYLOAD is needed.
 */
#include "drive.h"
#include "core/clock.h"
#include "core/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 10000

/* Hex to bytes into b. 0 or -1. */
static int
unhex(const char *s, struct pg_buf *b)
{
	size_t n = strlen(s);

	if (n == 0 || n % 2 != 0)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		unsigned v;
		uint8_t c;

		if (sscanf(s + i, "%2x", &v) != 1)
			return -1;
		c = (uint8_t)v;
		if (pg_buf_append(b, &c, 1) != 0)
			return -1;
	}
	return 0;
}

/* Writes all of b to fd; with flip, the last byte (the packet's MAC or tag) inverted. */
static int
write_all(int fd, struct pg_buf *b, int flip)
{
	size_t off = 0;

	if (flip && b->len > 0)
		b->p[b->len - 1] ^= 0xff;
	while (off < b->len) {
		ssize_t n = write(fd, b->p + off, b->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/*
 * Feeds what the server sends into t, printing every message handed over, until the transport
 * reaches `until` (returns 0), the socket closes (returns 1), the stop_after_failures'th
 * USERAUTH_FAILURE arrives (returns 2; 0: never) or the deadline passes (-1).
 */
static int
pump(int fd, struct ssh_transport *t, enum ssh_tstate until, int stop_after_failures, int timeout_ms)
{
	uint64_t deadline = pg_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	uint8_t buf[65536];
	int failures = 0;

	for (;;) {
		struct pg_slice pl;
		struct pollfd p = { fd, POLLIN, 0 };
		uint64_t now;
		ssize_t n;
		int r;

		while ((r = ssh_transport_next_payload(t, &pl)) == 1) {
			printf("msg=%u\n", pl.p[0]);
			if (pl.p[0] == SSH_MSG_USERAUTH_FAILURE && ++failures == stop_after_failures)
				return 2;
		}
		if (ssh_transport_state(t) == until)
			return 0;
		if (r >= 0 && drive_flush(fd, t) != 0)
			return 1;
		now = pg_mono_ns();
		if (now >= deadline || poll(&p, 1, (int)((deadline - now) / 1000000) + 1) <= 0)
			return -1;
		if ((n = read(fd, buf, sizeof(buf))) <= 0)
			return 1;
		(void)ssh_transport_feed(t, buf, (size_t)n);
	}
}

int
main(int argc, char **argv)
{
	struct ssh_transport_config cfg = { .role = SSH_ROLE_CLIENT, .log_prefix = "interop-raw" };
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	struct ssh_transport *t = NULL;
	struct pg_buf pl, out;
	const char *service = getenv("RAW_SERVICE");
	enum ssh_tstate kexed;
	int fd = -1, rc = 1, r;

	pg_buf_init(&pl, 1024 * 1024);
	pg_buf_init(&out, 8 * 1024 * 1024);
	/* The state the kex ends in: SERVICE while a request waits for its answer, else OPEN. */
	kexed = service != NULL && service[0] != '\0' ? SSH_T_SERVICE : SSH_T_OPEN;
	cfg.client_service = service;
	if (argc < (service != NULL ? 3 : 4)) {
		fprintf(stderr, "usage: %s HOST PORT PAYLOAD...\n", argv[0]);
		return 2;
	}
	if ((fd = drive_connect(argv[1], argv[2])) < 0) {
		rc = fd == -2 ? 2 : 1;
		goto out;
	}
	if (ssh_transport_new(&cfg, &t) != 0 || pump(fd, t, kexed, 0, WAIT_MS) != 0) {
		fprintf(stderr, "driver: no key exchange: %s\n", t ? ssh_transport_error(t) : "");
		goto out;
	}
	if (getsockname(fd, (struct sockaddr *)&sa, &salen) == 0)
		printf("port=%u\n", ntohs(sa.sin_port));
	printf("kex=1\n");
	fflush(stdout);
	for (int i = 3; i < argc; i++) {
		int flip = strncmp(argv[i], "badmac:", 7) == 0;

		pl.len = 0;
		out.len = 0;
		if (unhex(argv[i] + (flip ? 7 : 0), &pl) != 0) {
			fprintf(stderr, "driver: bad hex payload %s\n", argv[i]);
			rc = 2;
			goto out;
		}
		if ((r = ssh_transport_send_payload(t, pl.p, pl.len)) != 0) {
			fprintf(stderr, "driver: cannot send payload %d: %s\n", i - 2, pg_strerror(r));
			rc = 2;
			goto out;
		}
		if (ssh_transport_take_output(t, &out) != 0 || write_all(fd, &out, flip) != 0)
			break;	/* the server may close after an earlier payload */
	}
	r = pump(fd, t, SSH_T_FAILED, argc - 3, WAIT_MS);
	/* FAILED only when our side found fault with what the server sent: keep reading to EOF. */
	if (r == 0)
		r = pump(fd, t, (enum ssh_tstate)-1, argc - 3, WAIT_MS);
	printf("end=%s\neof=%d\nrefused=%d\n", ssh_transport_error(t), r == 1, r == 2);
	rc = r == 1 || r == 2 ? 0 : 1;
out:
	pg_buf_free(&pl);
	pg_buf_free(&out);
	ssh_transport_free(t);
	if (fd >= 0)
		close(fd);
	return rc;
}
