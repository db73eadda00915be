/*
 * Keys poolgate keeps in state_dir: loaded when the file exists, else made once (ed25519) and
 * written with mode 0600 through a temporary file and link(), so two processes starting together
 * never end up with different keys. Runs at start-up, before the loop (a synchronous read and,
 * the first time, one ed25519 generation: microseconds).
 */
#ifndef PG_CERTS_KEYFILE_H
#define PG_CERTS_KEYFILE_H

#include <stddef.h>

#include "certs/sshkey.h"

/*
 * Loads path, or creates it when it does not exist (*created set to 1). A file that group or
 * others can read is refused. Returns 0 or a negative code with a message (naming the path,
 * never key material) in err.
 */
int keyfile_load_or_create(const char *path, struct sshkey **out, int *created, char *err,
    size_t errlen);

/* The pool user CA's file name in state_dir, and what log lines call it. */
#define KEYFILE_USER_CA "user_ca_ed25519"
#define KEYFILE_USER_CA_WHAT "pool user CA (instances trust it with TrustedUserCAKeys)"

/*
 * A key from the configured path, or (configured NULL) state_dir/name loaded or made once.
 * Logs under log_prefix what (say "host key") with its path and fingerprint at info, and a key
 * made just now at notice with its public line, for the operator to copy. Returns 0 or a
 * negative code with a message in err.
 */
int keyfile_load(const char *configured, const char *state_dir, const char *name,
    const char *what, const char *log_prefix, struct sshkey **out, char *err, size_t errlen);

#endif
