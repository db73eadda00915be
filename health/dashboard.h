/*
 * The dashboard: GET / on the admin listener. One self-contained HTML page (inline CSS and
 * JavaScript, nothing fetched from anywhere else) that reads /status every few seconds and shows
 * each instance's state, users against capacity, load bars when the load probe reports figures
 * ("unknown" when it does not) and the users pinned there.
 *
 * The page itself is constant: no value from /status is ever put into HTML text. The script builds
 * the table with DOM calls and textContent, so an instance id or a user name full of markup stays
 * text. The Content-Security-Policy allows exactly the page's own script and style (by SHA-256
 * hash, computed once here), fetches to the same origin only, and Trusted Types, under which the
 * browser refuses any assignment of a string to an HTML sink (innerHTML and friends) outright.
 */
#ifndef PG_HEALTH_DASHBOARD_H
#define PG_HEALTH_DASHBOARD_H

#include <stddef.h>

struct dashboard {
	const char *html;
	size_t html_len;
	const char *headers;	/* header lines for the response: CSP and friends, "...\r\n" each */
};

/* The page, built on the first call (static storage, the loop thread only); NULL when out of memory. */
const struct dashboard *dashboard_get(void);

#endif
