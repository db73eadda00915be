/*
 * Interop driver: libssh2 as a second, independent client against ssh-interop-server.
 *
 *   ssh-interop-libssh2 PORT
 *   ssh-interop-libssh2 PORT USER PASSWORD COMMAND
 *
 * Completes libssh2's handshake (kex with our server), prints the negotiated methods, then asks
 * for the userauth list (a `none` request) and prints it. Exit 0 if both worked.
 *
 * With USER and PASSWORD it logs in by password instead, with no `none` request first (unlike
 * OpenSSH's client: the password is the connection's first userauth request), runs COMMAND and
 * prints its output. Exit 0 if the login and the command worked, 3 if the password was refused.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh2.h>

int
main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	LIBSSH2_SESSION *s;
	const char *list;
	int fd, r;

	if (argc < 2)
		return 2;
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || libssh2_init(0) != 0 ||
	    (s = libssh2_session_init()) == NULL)
		return 1;
	libssh2_session_set_timeout(s, 15000);
	if ((r = libssh2_session_handshake(s, fd)) != 0) {
		char *msg;

		libssh2_session_last_error(s, &msg, NULL, 0);
		fprintf(stderr, "handshake failed: %d %s\n", r, msg);
		return 1;
	}
	printf("kex=%s\ncipher=%s\nmac=%s\nhostkey=%s\n",
	    libssh2_session_methods(s, LIBSSH2_METHOD_KEX),
	    libssh2_session_methods(s, LIBSSH2_METHOD_CRYPT_CS),
	    libssh2_session_methods(s, LIBSSH2_METHOD_MAC_CS),
	    libssh2_session_methods(s, LIBSSH2_METHOD_HOSTKEY));
	if (argc >= 5) {
		LIBSSH2_CHANNEL *ch = NULL;
		char buf[4096];
		ssize_t n = -1;

		if (libssh2_userauth_password(s, argv[2], argv[3]) != 0) {
			printf("auth=refused\n");
			r = 3;
		} else {
			printf("auth=ok\n");
			if ((ch = libssh2_channel_open_session(s)) != NULL &&
			    libssh2_channel_exec(ch, argv[4]) == 0)
				while ((n = libssh2_channel_read(ch, buf, sizeof(buf))) > 0)
					fwrite(buf, 1, (size_t)n, stdout);
			r = n < 0 ? 1 : 0;
			if (ch != NULL) {
				libssh2_channel_close(ch);
				libssh2_channel_free(ch);
			}
		}
		libssh2_session_disconnect(s, "done");
		libssh2_session_free(s);
		close(fd);
		libssh2_exit();
		return r;
	}
	list = libssh2_userauth_list(s, "test", 4);
	printf("methods=%s\n", list ? list : "");
	libssh2_session_disconnect(s, "done");
	libssh2_session_free(s);
	close(fd);
	libssh2_exit();
	return list != NULL ? 0 : 1;
}
