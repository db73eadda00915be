#include "core/runas.h"

#include <unistd.h>

static uid_t run_uid;
static gid_t run_gid;
static int run_set;

void
pg_runas_set(uid_t uid, gid_t gid)
{
	run_uid = uid;
	run_gid = gid;
	run_set = 1;
}

uid_t
pg_runas_uid(void)
{
	return run_set ? run_uid : geteuid();
}

gid_t
pg_runas_gid(void)
{
	return run_set ? run_gid : getegid();
}
