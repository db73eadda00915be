/*
 * Shared by the interop drivers: a blocking TCP loop around a struct ssh_transport, bounded in
 * time. Each driver is a plain executable that tests/integration/test_ssh_interop.py runs against
 * the real OpenSSH (sshd, ssh) and libssh2.
 */
#ifndef PG_TESTS_INTEROP_DRIVE_H
#define PG_TESTS_INTEROP_DRIVE_H

#include "proxy/ssh/transport.h"

/*
 * A TCP connection to the IPv4 address host, port port (both as on the command line). Returns the
 * fd, -2 for a bad address or port, -1 when the connection fails (perror says why).
 */
int drive_connect(const char *host, const char *port);

/* Writes all pending output to fd. 0 or -1. */
int drive_flush(int fd, struct ssh_transport *t);

/*
 * Reads from fd and runs the transport until it hands over a payload (returns 1, *pl set), the
 * deadline passes (-1) or something fails (-1, with a message on stderr).
 */
int drive_next(int fd, struct ssh_transport *t, struct pg_slice *pl, int timeout_ms);

#endif
