/*
 * The HTTPS front door's certificates: one server SSL_CTX per configured certificate, chosen by
 * SNI (the first whose certificate matches the requested name, else the first), or a self-signed
 * certificate made once in state_dir when none is configured.
 *
 * A set is reference-counted: connections take a reference for as long as their handshake may
 * consult it, so a SIGHUP can install a new set while old connections finish with the old one.
 */
#ifndef PG_CERTS_TLSCTX_H
#define PG_CERTS_TLSCTX_H

#include <stddef.h>
#include <openssl/ssl.h>

#include "core/config.h"

struct tls_server_set;

/*
 * Loads every certificate of cfg (or makes/loads the self-signed one in
 * cfg->state_dir/tls/selfsigned.{crt,key}). Returns 0 and sets *out, or a negative code with a
 * message naming the file in err. Blocking file I/O: call at start and from the reload path.
 */
int tls_server_set_load(const struct pg_config *cfg, struct tls_server_set **out, char *err,
    size_t errlen);

/* The context new connections start with (SNI may switch it during the handshake). */
SSL_CTX *tls_server_set_default(struct tls_server_set *s);

void tls_server_set_ref(struct tls_server_set *s);
void tls_server_set_unref(struct tls_server_set *s);	/* accepts NULL */

/* Number of certificates and a one-line description of each, for the start-up log. */
size_t tls_server_set_count(const struct tls_server_set *s);
const char *tls_server_set_describe(const struct tls_server_set *s, size_t i);

#endif
