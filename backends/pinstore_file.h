/*
 * The `file` pin store (pins.store "file", the default): an append-only journal and a snapshot in
 * state_dir, in the record format of backends/pinrec.h.
 *
 *   pins.snapshot   every pin at one moment (generation N), written whole to a temporary file,
 *                   fsync'd and renamed into place, then the directory fsync'd;
 *   pins.journal    generation N: the changes since snapshot N, appended in batches.
 *
 * Writes never block the loop. Changes are encoded on the loop into a pending buffer; a group
 * commit (after pins.fsync_interval_ms, or at once past 64 KiB) hands the batch to libuv's thread
 * pool, which writes it at the journal's known end (pwrite, so a failed write leaves nothing the
 * next one appends after) and fdatasyncs. One job runs at a time; changes made meanwhile wait for
 * the next batch. A change is therefore durable within fsync_interval_ms plus one write and fsync;
 * the stats say how many are not yet (unsynced).
 *
 * Compaction: when the journal passes pins.journal_max_bytes (and the size of the snapshot), the
 * table is serialised on the loop into snapshot N+1, and the thread pool writes it, then a fresh
 * journal N+1 (temporary file, fsync, rename). A crash between the two renames leaves snapshot N+1
 * with journal N, which start-up recognises as stale and ignores: its changes are in the snapshot.
 * Every start compacts once after replay, so the journal never has to be appended to after a torn
 * or corrupt tail.
 *
 * Disk errors (ENOSPC, EROFS, EIO, ...): the first failure of an episode is logged at error, later
 * ones at debug; pins stay in memory and poolgate keeps serving. Pending changes are then dropped
 * from the buffer (memory stays bounded) and a compaction, which writes the whole table, is retried
 * every retry_ms; its success ends the episode (logged at notice). If the files cannot even be
 * read at start (other than missing), the store never writes this run, so that what it could not
 * read is not overwritten.
 */
#ifndef PG_BACKENDS_PINSTORE_FILE_H
#define PG_BACKENDS_PINSTORE_FILE_H

#include <stdint.h>
#include <uv.h>

#include "backends/pins.h"

#define PINSTORE_FILE_BATCH_BYTES (64 * 1024)	/* a batch this big is committed at once */
#define PINSTORE_FILE_MAX_BYTES (1u << 30)	/* larger snapshot or journal files are refused */

struct pinstore_file_conf {
	uint32_t fsync_interval_ms;	/* group commit window */
	uint32_t journal_max_bytes;	/* compact past this */
	uint32_t retry_ms;		/* after a failed write */
};

struct pinstore_file;

extern const struct pin_store_ops pinstore_file_ops;

/*
 * Makes a store for the files in dir (nothing is read before load()). table is what compactions
 * serialise: the table this store will be attached to, valid until the store's close(). Returns 0
 * and sets *out, or PG_ENOMEM / PG_EINVAL (dir too long).
 */
int pinstore_file_open(uv_loop_t *loop, const char *dir, const struct pinstore_file_conf *conf,
    const struct pin_table *table, struct pinstore_file **out);

/* A reload's new settings; they apply from the next batch. */
void pinstore_file_set_conf(struct pinstore_file *s, const struct pinstore_file_conf *conf);

#endif
