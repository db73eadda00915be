#include "proxy/http/pages.h"

#include <stdio.h>
#include <string.h>

const char *
page_reason(int status)
{
	switch (status) {
	case 301: return "Moved Permanently";
	case 400: return "Bad Request";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return "Error";
}

static const char *
explain(int status)
{
	switch (status) {
	case 400: return "The request could not be understood.";
	case 408: return "The request took too long to arrive.";
	case 413: return "The request is too large.";
	case 414: return "The request address is too long.";
	case 431: return "The request headers are too large.";
	case 502: return "Your notebook server's machine did not answer properly. Try again in a "
	    "moment; if it persists, tell your administrators.";
	case 503: return "No machine of the pool can take you right now. This page will work again "
	    "as soon as one is back; try again in a minute.";
	case 504: return "Your notebook server's machine took too long to answer. Try again in a "
	    "moment.";
	}
	return "Something went wrong on our side.";
}

/* A whole page: status, its reason phrase, text; Retry-After when retry_s > 0. */
static int
write_page(struct pg_buf *out, int status, const char *text, int retry_s)
{
	const char *reason = page_reason(status);
	char body[1024], retry[40] = "";
	int n;

	n = snprintf(body, sizeof(body),
	    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>%d %s</title>"
	    "<style>body{font-family:sans-serif;max-width:40em;margin:4em auto;color:#333}</style>"
	    "</head>\n<body><h1>%d %s</h1>\n<p>%s</p></body></html>\n",
	    status, reason, status, reason, text);
	if (n < 0 || (size_t)n >= sizeof(body))
		return -1;
	if (retry_s > 0)
		snprintf(retry, sizeof(retry), "Retry-After: %d\r\n", retry_s);
	return pg_buf_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
	    "Content-Length: %d\r\nCache-Control: no-store\r\n%sConnection: close\r\n\r\n%s",
	    status, reason, n, retry, body);
}

int
page_write(struct pg_buf *out, int status)
{
	return write_page(out, status, explain(status), status == 503 ? 30 : 0);
}

int
page_write_pool_full(struct pg_buf *out)
{
	return write_page(out, 503, "The pool is full: every machine already has as many users as "
	    "it can take. Please try again later; this page will work as soon as there is room.",
	    PAGE_POOL_FULL_RETRY_S);
}

int
page_write_redirect(struct pg_buf *out, const char *location, int keep_alive)
{
	return pg_buf_printf(out, "HTTP/1.1 301 Moved Permanently\r\nLocation: %s\r\n"
	    "Content-Length: 0\r\nCache-Control: no-store\r\n%s\r\n", location,
	    keep_alive ? "" : "Connection: close\r\n");
}
