#include "core/secretfile.h"
#include "core/config.h"
#include "core/err.h"
#include "core/runas.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>


int
pg_secret_check_stat(const struct stat *st, uid_t owner, const char *path, const char *what,
    char *err, size_t errlen)
{
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "%s: %s: not a regular file", path, what);
		return PG_EINVAL;
	}
	if ((st->st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: %s: mode %04o gives group or others access to a secret; "
		    "chmod 600 %s", path, what, (unsigned)(st->st_mode & 07777), path);
		return PG_EINVAL;
	}
	if (st->st_uid != owner) {
		snprintf(err, errlen, "%s: %s: owned by uid %u, but poolgate runs as uid %u; "
		    "chown %u %s", path, what, (unsigned)st->st_uid, (unsigned)owner,
		    (unsigned)owner, path);
		return PG_EINVAL;
	}
	return 0;
}

int
pg_secret_check_fd(int fd, const char *path, const char *what, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s: %s", path, what, strerror(errno));
		return PG_EIO;
	}
	return pg_secret_check_stat(&st, pg_runas_uid(), path, what, err, errlen);
}

int
pg_secret_check_path(const char *path, const char *what, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "%s: %s: %s", path, what, strerror(errno));
		return errno == ENOENT ? PG_ENOTFOUND : PG_EIO;
	}
	return pg_secret_check_stat(&st, pg_runas_uid(), path, what, err, errlen);
}

int
pg_secret_check_config(const struct pg_config *cfg, const char **what, char *err, size_t errlen)
{
	const char *w = NULL;
	int r = 0;

	for (size_t i = 0; r == 0 && i < cfg->ssh.nhost_keys; i++)
		r = pg_secret_check_path(cfg->ssh.host_keys[i], w = PG_SECRET_HOST_KEYS, err, errlen);
	if (r == 0 && cfg->ssh.ca_key != NULL)
		r = pg_secret_check_path(cfg->ssh.ca_key, w = "ssh.upstream_auth.ca_key", err, errlen);
	if (r == 0 && cfg->ssh.upstream_key != NULL)
		r = pg_secret_check_path(cfg->ssh.upstream_key, w = "ssh.upstream_auth.key", err,
		    errlen);
	if (r == 0 && cfg->load.enabled && cfg->load.key != NULL)
		r = pg_secret_check_path(cfg->load.key, w = "health.load.key", err, errlen);
	for (size_t i = 0; r == 0 && i < cfg->ncerts; i++)
		r = pg_secret_check_path(cfg->certs[i].key, w = "tls.certificates[].key", err, errlen);
	if (r == 0 && cfg->admin_token_file != NULL)
		r = pg_secret_check_path(cfg->admin_token_file, w = PG_SECRET_ADMIN_TOKEN, err, errlen);
	if (r != 0 && what != NULL)
		*what = w;
	return r;
}
