#include "certs/hostpolicy.h"
#include "certs/knownhosts.h"
#include "core/err.h"
#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOGP "ssh"

struct hostpolicy {
	char *known_hosts, *tofu_file;		/* owned; known_hosts may be NULL */
	enum ssh_hostkey_check mode;
	struct pg_buf kh_text, tofu_text;	/* the files as last read (and tofu records since) */
	int kh_loaded;				/* known_hosts could be read (or is unset) */
};

struct hostpolicy *
hostpolicy_new(void)
{
	struct hostpolicy *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	pg_buf_init(&p->kh_text, KNOWNHOSTS_MAX_BYTES);
	pg_buf_init(&p->tofu_text, KNOWNHOSTS_MAX_BYTES);
	return p;
}

void
hostpolicy_free(struct hostpolicy *p)
{
	if (p == NULL)
		return;
	pg_buf_free(&p->kh_text);
	pg_buf_free(&p->tofu_text);
	free(p->known_hosts);
	free(p->tofu_file);
	free(p);
}

/* Reads a known_hosts file into b (emptied first); a missing file is empty. */
static int
load_file(const char *path, struct pg_buf *b, const char *what)
{
	int r;

	pg_buf_free(b);
	pg_buf_init(b, KNOWNHOSTS_MAX_BYTES);
	if (path == NULL || (r = knownhosts_read_file(path, b)) == PG_ENOTFOUND)
		return 0;
	if (r != 0) {
		LOG_ERR(LOGP, "%s %s: %s; instances listed there will be refused", what, path,
		    pg_strerror(r));
		pg_buf_free(b);
		return r;
	}
	return 0;
}

int
hostpolicy_configure(struct hostpolicy *p, const char *known_hosts, const char *tofu_file,
    enum ssh_hostkey_check mode)
{
	char *kh = NULL, *tofu = strdup(tofu_file);

	if (tofu == NULL || (known_hosts != NULL && (kh = strdup(known_hosts)) == NULL)) {
		free(tofu);
		return PG_ENOMEM;
	}
	free(p->known_hosts);
	free(p->tofu_file);
	p->known_hosts = kh;
	p->tofu_file = tofu;
	p->mode = mode;
	p->kh_loaded = load_file(p->known_hosts, &p->kh_text, "ssh.known_hosts") == 0;
	(void)load_file(p->tofu_file, &p->tofu_text, "tofu");
	if (mode == SSH_HKC_KNOWN_HOSTS && known_hosts == NULL)
		LOG_WARN(LOGP, "ssh.known_hosts is not set and host_key_check is \"known_hosts\": "
		    "every instance will be refused");
	return 0;
}

int
hostpolicy_check(struct hostpolicy *p, const char *inst_id, const char *addr, uint16_t port,
    const struct sshkey *key, const char **why, const char *log_prefix)
{
	char fp[SSHKEY_FP_LEN];
	int r = PG_ENOTFOUND;

	if (sshkey_fingerprint(key, fp, sizeof(fp)) != 0)
		fp[0] = '\0';
	if (p->known_hosts != NULL)
		r = p->kh_loaded ? knownhosts_check((struct pg_slice){ p->kh_text.p, p->kh_text.len },
		    addr, port, key) : PG_EIO;
	if (r == PG_ENOTFOUND && p->mode == SSH_HKC_TOFU) {
		r = knownhosts_check((struct pg_slice){ p->tofu_text.p, p->tofu_text.len }, addr,
		    port, key);
		if (r == PG_ENOTFOUND) {
			int wr = knownhosts_append_file(p->tofu_file, addr, port, key);
			const char *werr = wr == PG_EIO ? strerror(errno) : pg_strerror(wr);
			/*
			 * A state_dir that is full or read-only does not turn tofu into "refuse
			 * everyone new": the key is trusted and remembered in memory (a change is
			 * still caught) until the file can be read again at a reload or restart.
			 */
			if ((r = knownhosts_format_line(addr, port, key, &p->tofu_text)) == 0 &&
			    wr == 0)
				LOG_NOTICE(log_prefix, "instance %s (%s:%u): host key %s %s recorded "
				    "in %s (tofu)", inst_id, addr, port, sshkey_type_name(key), fp,
				    p->tofu_file);
			else if (r == 0)
				LOG_ERR(log_prefix, "instance %s (%s:%u): host key %s %s trusted in "
				    "memory only (tofu): cannot append to %s: %s", inst_id, addr, port,
				    sshkey_type_name(key), fp, p->tofu_file, werr);
		}
	}
	switch (r) {
	case 0:
		return 0;
	case PG_EAUTH:
		*why = "the instance's host key has changed";
		LOG_ERR(log_prefix, "instance %s (%s:%u): HOST KEY MISMATCH: %s %s is not the key "
		    "known for it; refused", inst_id, addr, port, sshkey_type_name(key), fp);
		return r;
	case PG_ENOTFOUND:
		*why = "the instance's host key is not known";
		LOG_ERR(log_prefix, "instance %s (%s:%u): host key %s %s is in no known_hosts; "
		    "refused", inst_id, addr, port, sshkey_type_name(key), fp);
		return r;
	default:
		*why = "the instance's host key cannot be checked";
		LOG_ERR(log_prefix, "instance %s (%s:%u): cannot check its host key: %s", inst_id,
		    addr, port, pg_strerror(r));
		return r;
	}
}
