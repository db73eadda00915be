#include "drive.h"
#include "core/clock.h"
#include "core/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int
drive_connect(const char *host, const char *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd, p = atoi(port);

	if (p <= 0 || p > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -2;
	sa.sin_port = htons((uint16_t)p);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("connect");
		close(fd);
		return -1;
	}
	return fd;
}

int
drive_flush(int fd, struct ssh_transport *t)
{
	struct pg_buf out;
	size_t off = 0;

	pg_buf_init(&out, 8 * 1024 * 1024);
	if (ssh_transport_take_output(t, &out) != 0)
		return -1;
	while (off < out.len) {
		ssize_t n = write(fd, out.p + off, out.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pg_buf_free(&out);
			return -1;
		}
		off += (size_t)n;
	}
	pg_buf_free(&out);
	return 0;
}

int
drive_next(int fd, struct ssh_transport *t, struct pg_slice *pl, int timeout_ms)
{
	uint64_t deadline = pg_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	uint8_t buf[65536];

	for (;;) {
		int r = ssh_transport_next_payload(t, pl);
		struct pollfd p = { fd, POLLIN, 0 };
		uint64_t now;
		ssize_t n;

		if (drive_flush(fd, t) != 0) {
			fprintf(stderr, "driver: write failed\n");
			return -1;
		}
		if (r == 1)
			return 1;
		if (r < 0) {
			fprintf(stderr, "driver: transport: %s (%s)\n", ssh_transport_error(t),
			    pg_strerror(r));
			return -1;
		}
		now = pg_mono_ns();
		if (now >= deadline || poll(&p, 1, (int)((deadline - now) / 1000000) + 1) <= 0) {
			fprintf(stderr, "driver: timed out in state %s\n",
			    ssh_transport_state_name(ssh_transport_state(t)));
			return -1;
		}
		if ((n = read(fd, buf, sizeof(buf))) <= 0) {
			fprintf(stderr, "driver: connection closed by peer in state %s\n",
			    ssh_transport_state_name(ssh_transport_state(t)));
			return -1;
		}
		if ((r = ssh_transport_feed(t, buf, (size_t)n)) != 0) {
			fprintf(stderr, "driver: feed: %s\n", ssh_transport_error(t));
			return -1;
		}
	}
}
