/*
 * The one rule for files that hold secrets (host keys, the pool user CA key, the upstream and
 * load-probe login keys, TLS private keys, the affinity cookie secret, the admin token), checked
 * wherever such a file is read, at start and at reload:
 *
 *   - a regular file (a symlink is followed to one);
 *   - group and others have no access at all (mode & 077 == 0: 0600 or 0400);
 *   - owned by the user poolgate runs as. A file another user owns is a secret that user can
 *     swap; and with group and others shut out, a file root owns is one an unprivileged
 *     poolgate could not read anyway: the error says whom to chown it to.
 *
 * Every refusal reads "PATH: WHAT: why; fix" (fix a chmod or chown command), never key material.
 *
 * The user poolgate runs as is pg_runas_uid() (core/runas.h): before the drop already the one it
 * drops to, so files read at start answer to the rule that holds after it.
 */
#ifndef PG_CORE_SECRETFILE_H
#define PG_CORE_SECRETFILE_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

struct pg_config;

/*
 * Pure: the rule above on a stat result, against the owner uid. Returns 0, or PG_EINVAL with the
 * message in err.
 */
int pg_secret_check_stat(const struct stat *st, uid_t owner, const char *path, const char *what,
    char *err, size_t errlen);

/* The rule on an open file descriptor (fstat). Returns 0, PG_EIO or PG_EINVAL; err as above. */
int pg_secret_check_fd(int fd, const char *path, const char *what, char *err, size_t errlen);

/*
 * The rule on a path (stat: blocking, start-up or the thread pool). A missing file is
 * PG_ENOTFOUND (err filled in too). Returns 0 or a negative code with err.
 */
int pg_secret_check_path(const char *path, const char *what, char *err, size_t errlen);

/* What pg_secret_check_config() names the host keys and the admin token. */
#define PG_SECRET_HOST_KEYS "ssh.host_keys"
#define PG_SECRET_ADMIN_TOKEN "admin.token_file"

/*
 * The rule on every secret path the config names (ssh.host_keys, ssh.upstream_auth.ca_key and
 * .key, health.load.key, tls.certificates[].key, admin.token_file), in that order; the first
 * refusal is returned, and (what not NULL) *what set to its static config key. Files poolgate
 * makes in state_dir are checked where they are read. Blocking: start-up or the thread pool.
 * Returns 0 or a negative code with err.
 */
int pg_secret_check_config(const struct pg_config *cfg, const char **what, char *err,
    size_t errlen);

#endif
