#include "certs/keyfile.h"
#include "core/secretfile.h"
#include "core/err.h"
#include "core/log.h"

#include <openssl/crypto.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
write_new(const char *path, const struct sshkey *k, char *err, size_t errlen)
{
	char tmp[4096];
	struct pg_buf pem;
	int fd, r = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return PG_EINVAL;
	}
	pg_buf_init(&pem, 65536);
	if ((r = sshkey_write_private_pem(k, &pem)) != 0) {
		snprintf(err, errlen, "%s: cannot encode the new key", path);
		goto out;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		r = PG_EIO;
		goto out;
	}
	if (write(fd, pem.p, pem.len) != (ssize_t)pem.len || fsync(fd) != 0) {
		snprintf(err, errlen, "%s: write: %s", tmp, strerror(errno));
		r = PG_EIO;
	}
	close(fd);
	/* link() fails with EEXIST if another process won the race: then its key is the key. */
	if (r == 0 && link(tmp, path) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		r = PG_EIO;
	}
	unlink(tmp);
out:
	if (pem.p != NULL)
		OPENSSL_cleanse(pem.p, pem.cap);
	pg_buf_free(&pem);
	return r;
}

int
keyfile_load_or_create(const char *path, struct sshkey **out, int *created, char *err,
    size_t errlen)
{
	struct sshkey *k = NULL;
	struct stat st;
	int r;

	*created = 0;
	if (stat(path, &st) != 0) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return PG_EIO;
		}
		if ((r = sshkey_generate_ed25519(&k)) != 0) {
			snprintf(err, errlen, "%s: cannot generate a key", path);
			return r;
		}
		r = write_new(path, k, err, errlen);
		sshkey_free(k);
		if (r != 0)
			return r;
		*created = 1;
		if (stat(path, &st) != 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return PG_EIO;
		}
	}
	if ((r = pg_secret_check_path(path, "private key", err, errlen)) != 0)
		return r;
	return sshkey_load_private(path, out, err, errlen);
}

int
keyfile_load(const char *configured, const char *state_dir, const char *name,
    const char *what, const char *log_prefix, struct sshkey **out, char *err, size_t errlen)
{
	char path[4096], fp[SSHKEY_FP_LEN];
	struct pg_buf line;
	int created = 0, r;

	if (configured != NULL) {
		snprintf(path, sizeof(path), "%s", configured);
		if ((r = pg_secret_check_path(path, what, err, errlen)) == 0)
			r = sshkey_load_private(path, out, err, errlen);
	} else {
		snprintf(path, sizeof(path), "%s/%s", state_dir, name);
		r = keyfile_load_or_create(path, out, &created, err, errlen);
	}
	if (r != 0)
		return r;
	if (sshkey_fingerprint(*out, fp, sizeof(fp)) != 0)
		fp[0] = '\0';
	if (!created) {
		LOG_INFO(log_prefix, "%s %s: %s %s", what, path, sshkey_type_name(*out), fp);
		return 0;
	}
	pg_buf_init(&line, 8192);
	if (sshkey_write_public(*out, "poolgate", &line) == 0 && line.len > 0)
		LOG_NOTICE(log_prefix, "made a new %s in %s (%s): %.*s", what, path, fp,
		    (int)line.len - 1, line.p);
	pg_buf_free(&line);
	return 0;
}
