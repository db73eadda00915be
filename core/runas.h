/*
 * The user and group poolgate serves as: its effective ids, unless the start-up named the ones it
 * is about to drop to (proxy/privdrop.h). Code that runs before the drop but must decide as the
 * dropped process will (who may own a secret file, whether the keys program needs to switch
 * user) asks here rather than geteuid(). Process-wide; set once at start-up, before the loop.
 */
#ifndef PG_CORE_RUNAS_H
#define PG_CORE_RUNAS_H

#include <sys/types.h>

/* Names the ids poolgate will serve as (called once, before anything reads them). */
void pg_runas_set(uid_t uid, gid_t gid);

/* The uid / gid poolgate serves as. */
uid_t pg_runas_uid(void);
gid_t pg_runas_gid(void);

#endif
