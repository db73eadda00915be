#include "proxy/privdrop.h"
#include "core/err.h"
#include "core/log.h"
#include "core/runas.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

int
privdrop_resolve(const char *user, const char *group, struct privdrop *pd, char *err,
    size_t errlen)
{
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;
	char buf[8192];

	memset(pd, 0, sizeof(*pd));
	if (geteuid() != 0) {
		snprintf(err, errlen, "user \"%s\": dropping privileges needs poolgate to start as "
		    "root (it runs as uid %u); remove \"user\" to run as this user", user,
		    (unsigned)geteuid());
		return PG_EINVAL;
	}
	if (getpwnam_r(user, &pw, buf, sizeof(buf), &pwr) != 0 || pwr == NULL) {
		snprintf(err, errlen, "user: no user \"%s\" (useradd --system %s)", user, user);
		return PG_ENOTFOUND;
	}
	if (pw.pw_uid == 0) {
		snprintf(err, errlen, "user: \"%s\" is uid 0: that drops nothing", user);
		return PG_EINVAL;
	}
	pd->uid = pw.pw_uid;
	pd->gid = pw.pw_gid;
	snprintf(pd->user, sizeof(pd->user), "%s", user);
	if (group != NULL) {
		if (getgrnam_r(group, &gr, buf, sizeof(buf), &grr) != 0 || grr == NULL) {
			snprintf(err, errlen, "group: no group \"%s\"", group);
			return PG_ENOTFOUND;
		}
		pd->gid = gr.gr_gid;
	}
	if (pd->gid == 0) {
		snprintf(err, errlen, "group: gid 0 for \"%s\": name an unprivileged \"group\"", user);
		return PG_EINVAL;
	}
	snprintf(pd->group, sizeof(pd->group), "%s", group != NULL ? group : "");
	return 0;
}

int
privdrop_state_dir_ok(const char *path, unsigned mode, uid_t owner, uid_t want, char *err,
    size_t errlen)
{
	if (!S_ISDIR(mode)) {
		snprintf(err, errlen, "state_dir %s: not a directory", path);
		return PG_EINVAL;
	}
	if (owner != want) {
		snprintf(err, errlen, "state_dir %s: owned by uid %u, not by \"user\" (uid %u); "
		    "chown -R %u %s", path, (unsigned)owner, (unsigned)want, (unsigned)want, path);
		return PG_EINVAL;
	}
	if ((mode & 022) != 0) {
		snprintf(err, errlen, "state_dir %s: mode %04o lets group or others write in it; "
		    "chmod 700 %s", path, mode & 07777, path);
		return PG_EINVAL;
	}
	return 0;
}

int
privdrop_make_dirs(const char *path, char *err, size_t errlen)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf)) {
		snprintf(err, errlen, "state_dir: empty or too long");
		return PG_EINVAL;
	}
	memcpy(buf, path, n + 1);
	while (n > 1 && buf[n - 1] == '/')	/* "dir/" is dir, made 0700 too */
		buf[--n] = '\0';
	for (char *p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(buf, saved == '\0' ? 0700 : 0755) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "state_dir: cannot create %s: %s", buf, strerror(errno));
			return PG_EIO;
		}
		*p = saved;
		if (saved == '\0')
			return 0;
	}
}

int
privdrop_state_dir(const struct privdrop *pd, const char *state_dir, char *err, size_t errlen)
{
	struct stat st;
	int r;

	/* stat, not lstat: a symlink to the directory is fine, the rule applies to its target. */
	if (stat(state_dir, &st) != 0) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "state_dir %s: %s", state_dir, strerror(errno));
			return PG_EIO;
		}
		if ((r = privdrop_make_dirs(state_dir, err, errlen)) != 0)
			return r;
		if (chown(state_dir, pd->uid, pd->gid) != 0) {
			snprintf(err, errlen, "state_dir %s: chown: %s", state_dir, strerror(errno));
			return PG_EIO;
		}
		LOG_NOTICE("main", "state_dir %s created, owned by %s", state_dir, pd->user);
		if (stat(state_dir, &st) != 0) {
			snprintf(err, errlen, "state_dir %s: %s", state_dir, strerror(errno));
			return PG_EIO;
		}
	}
	return privdrop_state_dir_ok(state_dir, st.st_mode, st.st_uid, pd->uid, err, errlen);
}

int
privdrop_assume_files(const struct privdrop *pd, char *err, size_t errlen)
{
	/* setfsuid reports the previous id, never an error: read it back to know it took. */
	setfsgid(pd->gid);
	setfsuid(pd->uid);
	if ((uid_t)setfsuid((uid_t)-1) != pd->uid || (gid_t)setfsgid((gid_t)-1) != pd->gid) {
		snprintf(err, errlen, "user: cannot act on files as uid %u gid %u",
		    (unsigned)pd->uid, (unsigned)pd->gid);
		return PG_EINVAL;
	}
	pg_runas_set(pd->uid, pd->gid);
	return 0;
}

int
privdrop_finish(const struct privdrop *pd, char *err, size_t errlen)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	/* glibc applies each of these to every thread of the process (libuv's pool among them). */
	if (setgroups(1, &pd->gid) != 0 || setresgid(pd->gid, pd->gid, pd->gid) != 0 ||
	    setresuid(pd->uid, pd->uid, pd->uid) != 0) {
		snprintf(err, errlen, "user: cannot drop to uid %u gid %u: %s", (unsigned)pd->uid,
		    (unsigned)pd->gid, strerror(errno));
		return PG_EIO;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || getresuid(&ru, &eu, &su) != 0 ||
	    getresgid(&rg, &eg, &sg) != 0 || ru != pd->uid || eu != pd->uid || su != pd->uid ||
	    rg != pd->gid || eg != pd->gid || sg != pd->gid) {
		snprintf(err, errlen, "user: the drop to uid %u did not hold (root could be regained)",
		    (unsigned)pd->uid);
		return PG_EIO;
	}
	LOG_NOTICE("main", "dropped privileges: now uid %u (%s) gid %u%s%s", (unsigned)pd->uid,
	    pd->user, (unsigned)pd->gid, pd->group[0] != '\0' ? " " : "", pd->group);
	return 0;
}
