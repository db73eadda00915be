#include "ctl/client.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <llhttp.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int
ctl_parse_hostport(const char *s, struct ctl_target *t)
{
	const char *colon, *host = s;
	size_t hlen;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		host = s + 1;
		hlen = (size_t)(end - host);
		colon = end + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL || strchr(s, ':') != colon)
			return -1;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(t->host) || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= sizeof(t->port) || strspn(colon + 1, "0123456789") !=
	    strlen(colon + 1))
		return -1;
	memcpy(t->host, host, hlen);
	t->host[hlen] = '\0';
	snprintf(t->port, sizeof(t->port), "%s", colon + 1);
	return 0;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes. Returns 1, 0 (timed out) or -1. */
static int
wait_fd(int fd, short events, long deadline)
{
	struct pollfd p = { fd, events, 0 };
	long left;
	int r;

	for (;;) {
		if ((left = deadline - now_ms()) <= 0)
			return 0;
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? -1 : r > 0;
	}
}

/* Connects to the first address that answers before the deadline. Returns the fd or -1. */
static int
dial(const struct ctl_target *t, long deadline, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((r = getaddrinfo(t->host, t->port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", t->host, gai_strerror(r));
		return -1;
	}
	snprintf(err, errlen, "%s:%s: no address", t->host, t->port);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS && (r = wait_fd(fd, POLLOUT, deadline)) > 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0)
			break;
		snprintf(err, errlen, "cannot connect to %s:%s: %s", t->host, t->port,
		    errno == EINPROGRESS && r == 0 ? "timed out" : strerror(soerr ? soerr : errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

struct response {
	int complete;
	struct pg_buf *body;
	int toobig;
};

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
	struct response *rs = p->data;

	if (pg_buf_append(rs->body, at, len) != 0) {
		rs->toobig = 1;
		return HPE_USER;
	}
	return 0;
}

static int
on_complete(llhttp_t *p)
{
	struct response *rs = p->data;

	rs->complete = 1;
	return 0;
}

static int
send_all(int fd, const char *p, size_t len, long deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, POLLOUT, deadline) <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			continue;
		}
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
ctl_request(const struct ctl_target *t, const char *method, const char *path,
    const char *body, int *status, struct pg_buf *out, char *err, size_t errlen)
{
	long deadline = now_ms() + t->timeout_ms;
	struct response rs = { 0, out, 0 };
	llhttp_settings_t settings;
	struct pg_buf req;
	llhttp_t parser;
	char buf[16384];
	int fd, r = -1, host_v6 = strchr(t->host, ':') != NULL;

	pg_buf_init(&req, 1u << 20);
	if ((fd = dial(t, deadline, err, errlen)) < 0)
		goto out;
	if (pg_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: poolgatectl/%s\r\n"
	    "Accept: application/json\r\nConnection: close\r\n", method, path, host_v6 ? "[" : "",
	    t->host, host_v6 ? "]" : "", t->port, PG_VERSION) != 0 ||
	    (t->token != NULL && pg_buf_printf(&req, "Authorization: Bearer %s\r\n", t->token) != 0) ||
	    (body != NULL && pg_buf_printf(&req, "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n", strlen(body)) != 0) ||
	    pg_buf_append_str(&req, "\r\n") != 0 ||
	    (body != NULL && pg_buf_append_str(&req, body) != 0)) {
		snprintf(err, errlen, "request too large");
		goto out;
	}
	if (send_all(fd, (const char *)req.p, req.len, deadline) != 0) {
		snprintf(err, errlen, "cannot send to %s:%s: %s", t->host, t->port, strerror(errno));
		goto out;
	}
	llhttp_settings_init(&settings);
	settings.on_body = on_body;
	settings.on_message_complete = on_complete;
	llhttp_init(&parser, HTTP_RESPONSE, &settings);
	parser.data = &rs;
	while (!rs.complete) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		llhttp_errno_t e;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, POLLIN, deadline) <= 0) {
				snprintf(err, errlen, "%s:%s: no answer in time", t->host, t->port);
				goto out;
			}
			continue;
		}
		if (n < 0) {
			snprintf(err, errlen, "%s:%s: %s", t->host, t->port, strerror(errno));
			goto out;
		}
		e = n == 0 ? llhttp_finish(&parser) : llhttp_execute(&parser, buf, (size_t)n);
		if (e != HPE_OK) {
			snprintf(err, errlen, "%s:%s: %s", t->host, t->port, rs.toobig ?
			    "response too large" : "not an HTTP response");
			goto out;
		}
		if (n == 0 && !rs.complete) {
			snprintf(err, errlen, "%s:%s: connection closed mid-response", t->host, t->port);
			goto out;
		}
	}
	*status = parser.status_code;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	pg_buf_free(&req);
	return r;
}
