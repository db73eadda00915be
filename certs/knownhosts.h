/*
 * Instances' host keys in OpenSSH known_hosts format (sshd(8) SSH_KNOWN_HOSTS FILE FORMAT):
 * "[marker] patterns keytype base64 [comment]". Patterns are comma-separated host names, "[host]:port"
 * for ports other than 22, with * and ? wildcards and ! negation, or hashed ("|1|salt|HMAC-SHA1").
 * @revoked lines refuse their key. @cert-authority lines (host certificates) are skipped for now:
 * the instance must be listed by its own key.
 *
 * Return convention as below, or a negative PG_E* code.
 */
#ifndef PG_CERTS_KNOWNHOSTS_H
#define PG_CERTS_KNOWNHOSTS_H

#include <stdint.h>

#include "certs/sshkey.h"
#include "core/buf.h"

#define KNOWNHOSTS_MAX_BYTES (4 * 1024 * 1024)

/*
 * Looks up host:port in text. Returns 0 if a line for the host holds key, PG_ENOTFOUND if no
 * line names the host at all, PG_EAUTH if lines name the host but none holds this key (a changed
 * key) or a @revoked line holds it.
 */
int knownhosts_check(struct pg_slice text, const char *host, uint16_t port,
    const struct sshkey *key);

/* The same on a file; a missing file is PG_ENOTFOUND as if empty. PG_ETOOBIG, PG_EIO. */
int knownhosts_check_file(const char *path, const char *host, uint16_t port,
    const struct sshkey *key);

/* Appends the line "[host]:port keytype base64\n" (plain host name for port 22) to out. */
int knownhosts_format_line(const char *host, uint16_t port, const struct sshkey *key,
    struct pg_buf *out);

/* Reads a known_hosts file (at most KNOWNHOSTS_MAX_BYTES) into out. PG_ENOTFOUND, PG_EIO, ... */
int knownhosts_read_file(const char *path, struct pg_buf *out);

/*
 * Appends "[host]:port keytype base64" (plain host name for port 22) to path, creating it 0600.
 * Returns 0, or PG_EIO with errno saying why (read-only, no space), or PG_ENOMEM.
 */
int knownhosts_append_file(const char *path, const char *host, uint16_t port,
    const struct sshkey *key);

#endif
