/*
 * Interop driver, CLIENT role against poolgate's SSH front door (through it, a real sshd):
 *
 *   ssh-interop-pipe HOST PORT USER KEYFILE
 *
 * Logs in with the private key in KEYFILE (publickey, the key's first signature algorithm), then
 * checks what the pipe does with messages it must not relay:
 *   - a local-extension message (number 200) is answered with SSH_MSG_UNIMPLEMENTED naming the
 *     sequence number of our packet (RFC 4253 11.4), and the connection stays up;
 *   - a late USERAUTH_REQUEST is ignored (RFC 4252 5.1);
 *   - a global request with want_reply still crosses to the instance's sshd and its answer
 *     (REQUEST_FAILURE for an unknown name) comes back, in order.
 * Prints key=value lines; exit 0 only if all of that happened.
 */
#include "drive.h"
#include "certs/sshkey.h"
#include "core/err.h"
#include "core/sshwire.h"
#include "proxy/ssh/auth.h"
#include "proxy/ssh/kex.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MSG_USERAUTH_BANNER 53
#define MSG_GLOBAL_REQUEST 80
#define MSG_REQUEST_FAILURE 82

static int
send_msg(struct ssh_transport *t, struct pg_buf *b)
{
	int r = ssh_transport_send_payload(t, b->p, b->len);

	pg_buf_free(b);
	if (r != 0)
		fprintf(stderr, "driver: send: %s\n", pg_strerror(r));
	return r;
}

/* The next payload that is not a banner; its type in *type. */
static int
next_msg(int fd, struct ssh_transport *t, struct pg_slice *pl, uint8_t *type)
{
	do {
		if (drive_next(fd, t, pl, 15000) != 1)
			return -1;
		*type = pl->p[0];
	} while (*type == MSG_USERAUTH_BANNER);
	return 0;
}

static int
login(int fd, struct ssh_transport *t, const char *user, const struct sshkey *key)
{
	struct pg_buf b, blob;
	struct pg_slice pl;
	char alg[64];
	const char *algs = sshkey_sig_algs(key), *comma = strchr(algs, ',');
	uint8_t type;

	/* `none` first: its answer means the key exchange is done and the session id known. */
	pg_buf_init(&b, 1024);
	if (ssh_put_u8(&b, SSH_MSG_USERAUTH_REQUEST) || ssh_put_cstring(&b, user) ||
	    ssh_put_cstring(&b, "ssh-connection") || ssh_put_cstring(&b, "none") ||
	    send_msg(t, &b) != 0 || next_msg(fd, t, &pl, &type) != 0)
		return -1;
	if (type != SSH_MSG_USERAUTH_FAILURE) {
		fprintf(stderr, "driver: `none` answered with message %u\n", type);
		return -1;
	}
	snprintf(alg, sizeof(alg), "%.*s", comma ? (int)(comma - algs) : (int)strlen(algs), algs);
	pg_buf_init(&b, 65536);
	pg_buf_init(&blob, 65536);
	if (sshkey_to_blob(key, &blob) != 0 ||
	    auth_client_publickey(&b, ssh_transport_session_id(t), user, alg,
	    (struct pg_slice){ blob.p, blob.len }, key, alg) != 0) {
		fprintf(stderr, "driver: cannot sign the userauth request\n");
		pg_buf_free(&blob);
		pg_buf_free(&b);
		return -1;
	}
	pg_buf_free(&blob);
	if (send_msg(t, &b) != 0 || next_msg(fd, t, &pl, &type) != 0)
		return -1;
	if (type != SSH_MSG_USERAUTH_SUCCESS) {
		fprintf(stderr, "driver: publickey answered with message %u\n", type);
		return -1;
	}
	return 0;
}

static int
check_pipe(int fd, struct ssh_transport *t, const char *user)
{
	static const uint8_t local_ext[] = { 200, 'p', 'g' };
	struct pg_buf b;
	struct pg_slice pl;
	uint32_t sent_seq, seq = 0;
	unsigned n;
	uint8_t type;

	sent_seq = ssh_transport_send_seq(t);
	if (ssh_transport_send_payload(t, local_ext, sizeof(local_ext)) != 0)
		return -1;
	/* A late userauth request: ignored, no answer. */
	pg_buf_init(&b, 1024);
	if (ssh_put_u8(&b, SSH_MSG_USERAUTH_REQUEST) || ssh_put_cstring(&b, user) ||
	    ssh_put_cstring(&b, "ssh-connection") || ssh_put_cstring(&b, "none") ||
	    send_msg(t, &b) != 0)
		return -1;
	/* Then a global request the instance's sshd must answer; its answer ends the exchange. */
	pg_buf_init(&b, 1024);
	if (ssh_put_u8(&b, MSG_GLOBAL_REQUEST) || ssh_put_cstring(&b, "no-such-request@poolgate") ||
	    ssh_put_u8(&b, 1) || send_msg(t, &b) != 0 || next_msg(fd, t, &pl, &type) != 0)
		return -1;
	n = ssh_transport_peer_unimplemented(t, &seq);
	printf("unimplemented=%u\nunimplemented_seq=%u\nsent_seq=%u\nglobal_reply=%u\n", n, seq,
	    sent_seq, type);
	return n == 1 && seq == sent_seq && type == MSG_REQUEST_FAILURE ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct ssh_transport_config cfg = { .role = SSH_ROLE_CLIENT, .log_prefix = "interop-pipe" };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct ssh_transport *t = NULL;
	struct sshkey *key = NULL;
	char err[256];
	int fd = -1, rc = 1;

	if (argc != 5) {
		fprintf(stderr, "usage: %s HOST PORT USER KEYFILE\n", argv[0]);
		return 2;
	}
	sa.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1)
		return 2;
	if (sshkey_load_private(argv[4], &key, err, sizeof(err)) != 0) {
		fprintf(stderr, "driver: %s: %s\n", argv[4], err);
		return 2;
	}
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("connect");
		goto out;
	}
	if (ssh_transport_new(&cfg, &t) != 0)
		goto out;
	if (login(fd, t, argv[3], key) != 0 || check_pipe(fd, t, argv[3]) != 0)
		goto out;
	ssh_transport_disconnect(t, SSH_DISCONNECT_BY_APPLICATION, "done");
	drive_flush(fd, t);
	rc = 0;
out:
	ssh_transport_free(t);
	sshkey_free(key);
	if (fd >= 0)
		close(fd);
	return rc;
}
