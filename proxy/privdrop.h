/*
 * Bind, then drop (the config's top-level "user" and "group"; docs/security.md). poolgate starts
 * as root, and in this order:
 *
 *   1. privdrop_resolve(): looks the user (and group; default the user's primary group) up;
 *   2. privdrop_state_dir(): makes state_dir (mode 0700, owned by the user) when missing, and
 *      refuses one that exists but is not owned by the user or that group or others may write;
 *   3. privdrop_assume_files(): from here the process touches files as the user (setfsgid,
 *      setfsuid: Linux), still root for binding sockets, so every file read or made at start
 *      (keys, the self-signed certificate, the pin journal) already answers to the user's rights;
 *      pg_runas_set() (core/runas.h) names the user to the rest of the start;
 *   4. the listeners bind (ports below 1024 too), keys load;
 *   5. privdrop_finish(): setgroups to the one group, setgid, setuid, then checks that setuid(0)
 *      fails and every id is the user's. Logged at notice.
 *
 * All blocking, start-up only. Every function returns 0 or a negative PG_E* code with the reason
 * in err (naming the path or the id, and the fix).
 */
#ifndef PG_PROXY_PRIVDROP_H
#define PG_PROXY_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

struct privdrop {
	uid_t uid;
	gid_t gid;
	char user[64], group[64];
};

/* Fills pd from the names (group NULL: the user's primary group). Needs euid 0. */
int privdrop_resolve(const char *user, const char *group, struct privdrop *pd, char *err,
    size_t errlen);

/*
 * Pure: the state_dir rule on a stat result. Returns 0 or PG_EINVAL with err: not a directory,
 * owned by another uid, or writable by group or others.
 */
int privdrop_state_dir_ok(const char *path, unsigned mode, uid_t owner, uid_t want, char *err,
    size_t errlen);

/*
 * mkdir -p path: missing parents 0755 (the user must be able to pass through them), path itself
 * 0700; existing ones are left as they are. Returns 0 or PG_EINVAL / PG_EIO with err.
 */
int privdrop_make_dirs(const char *path, char *err, size_t errlen);

/* Step 2 above: creates (parents 0755 root, state_dir 0700 the user) or checks state_dir. */
int privdrop_state_dir(const struct privdrop *pd, const char *state_dir, char *err,
    size_t errlen);

/* Step 3 above. */
int privdrop_assume_files(const struct privdrop *pd, char *err, size_t errlen);

/* Step 5 above: the drop itself, checked. Once it returns 0 there is no way back to root. */
int privdrop_finish(const struct privdrop *pd, char *err, size_t errlen);

#endif
