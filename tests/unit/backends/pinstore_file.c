/*
 * backends/pinstore_file.c on a real libuv loop and real files in a temporary directory: what was
 * fsync'd replays after a "crash" (the files copied away while the store still runs, nothing
 * flushed at close); a torn tail is dropped with a log line and the rest kept; a corrupt middle
 * stops the replay and is kept aside; the journal is compacted into a snapshot as it grows, and a
 * journal older than the snapshot is ignored; activity is stored lazily and exactly at a clean
 * close; a directory that cannot be written is an episode that ends when it can; files that
 * cannot be read are never overwritten.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/pinrec.h"
#include "backends/pinstore_file.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"

struct fx {
	char root[256];		/* mkdtemp */
	char dir[300];		/* the state directory under test: root/state */
	uv_loop_t loop;
	struct pin_table *t;
	struct pinstore_file *s;
	struct pinstore_file_conf conf;
	char log[16384];	/* stderr of the last attach_logged() */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->root, sizeof(f->root), "/tmp/pinstore-test-XXXXXX");
	if (mkdtemp(f->root) == NULL || uv_loop_init(&f->loop) != 0)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/state", f->root);
	if (mkdir(f->dir, 0700) != 0)
		return -1;
	f->conf = (struct pinstore_file_conf){ .fsync_interval_ms = 5, .journal_max_bytes = 1 << 20,
		.retry_ms = 20 };
	pg_log_setup(PG_LOG_INFO, PG_LOG_TEXT);
	*state = f;
	return 0;
}

static void
rm_tree(const char *path)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

/* Closes the store (if attached) and lets the loop run dry: everything it opened is closed. */
static void
close_store(struct fx *f)
{
	pins_free(f->t);
	f->t = NULL;
	f->s = NULL;
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	close_store(f);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	rm_tree(f->root);
	free(f);
	return 0;
}

/* A new table with a file store on dir attached (replayed), stderr captured into f->log. */
static int
attach_logged(struct fx *f, const char *dir)
{
	FILE *tmp = tmpfile();
	int saved = dup(2), r;
	size_t n;

	assert_non_null(tmp);
	assert_non_null(f->t = pins_new());
	assert_int_equal(pinstore_file_open(&f->loop, dir, &f->conf, f->t, &f->s), 0);
	fflush(stderr);
	assert_true(dup2(fileno(tmp), 2) >= 0);
	r = pins_attach_store(f->t, &pinstore_file_ops, f->s);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(f->log, 1, sizeof(f->log) - 1, tmp);
	f->log[n] = '\0';
	fclose(tmp);
	return r;
}

static struct pin_store_stats
stats(struct fx *f)
{
	struct pin_store_stats st;

	assert_int_equal(pins_store_stats(f->t, &st), 0);
	return st;
}

/*
 * Runs the loop until every change is on disk and at least `compactions` snapshots were written
 * (bounded: 10 s).
 */
static void
settle(struct fx *f, uint64_t compactions)
{
	uint64_t deadline = pg_mono_ns() + 10ull * 1000000000;
	struct pin_store_stats st;

	for (int i = 0; i < 100000; i++) {
		st = stats(f);
		if (st.unsynced == 0 && st.compactions >= compactions && st.healthy)
			return;
		assert_true(pg_mono_ns() < deadline);
		uv_run(&f->loop, UV_RUN_ONCE);
	}
	fail_msg("the store did not settle");
}

static void
copy_file(const char *from, const char *to)
{
	char buf[65536];
	FILE *a = fopen(from, "rb"), *b;
	size_t n;

	if (a == NULL) {
		assert_int_equal(errno, ENOENT);
		return;
	}
	assert_non_null(b = fopen(to, "wb"));
	while ((n = fread(buf, 1, sizeof(buf), a)) > 0)
		assert_int_equal(fwrite(buf, 1, n, b), n);
	fclose(a);
	fclose(b);
}

/* What a crash would leave: the files as they are now, in a new directory, returned in out. */
static void
crash_image(struct fx *f, const char *name, char *out, size_t outlen)
{
	char a[512], b[512];

	snprintf(out, outlen, "%s/%s", f->root, name);
	assert_int_equal(mkdir(out, 0700), 0);
	for (int i = 0; i < 2; i++) {
		const char *file = i == 0 ? "pins.snapshot" : "pins.journal";
		snprintf(a, sizeof(a), "%s/%s", f->dir, file);
		snprintf(b, sizeof(b), "%s/%s", out, file);
		copy_file(a, b);
	}
}

static off_t
file_size(const char *dir, const char *name)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0 ? st.st_size : -1;
}

static void
test_replay_after_crash(void **state)
{
	struct fx *f = *state;
	char img[400];
	int64_t since, active;

	assert_int_equal(attach_logged(f, f->dir), 0);
	assert_non_null(strstr(f->log, "pins: 0 pins replayed from"));
	settle(f, 1);
	assert_true(file_size(f->dir, "pins.snapshot") > 0);
	assert_true(file_size(f->dir, "pins.journal") > 0);
	assert_int_equal(pins_set(f->t, "alice", "demo-1", 1000), 0);
	assert_int_equal(pins_set(f->t, "bob", "demo-2", 1001), 0);
	assert_int_equal(pins_set(f->t, "carol", "demo-1", 1002), 0);
	assert_int_equal(pins_set(f->t, "bob", "demo-1", 1003), 0);
	assert_int_equal(pins_remove(f->t, "carol"), 0);
	assert_true(stats(f).unsynced > 0);
	settle(f, 1);
	assert_int_equal(stats(f).records_synced, 5);
	crash_image(f, "crash", img, sizeof(img));
	close_store(f);

	assert_int_equal(attach_logged(f, img), 0);
	assert_non_null(strstr(f->log, "2 pins replayed from"));
	assert_non_null(strstr(f->log, "journal: 5 records"));
	assert_int_equal(pins_size(f->t), 2);
	assert_string_equal(pins_get(f->t, "alice"), "demo-1");
	assert_string_equal(pins_get(f->t, "bob"), "demo-1");
	assert_null(pins_get(f->t, "carol"));
	assert_int_equal(pins_times(f->t, "bob", &since, &active), 0);
	assert_int_equal(since, 1003);
	assert_int_equal(active, 1003);
	assert_int_equal(stats(f).replayed, 5);
	/* The start compacts: the next start reads the snapshot alone. */
	settle(f, 1);
	close_store(f);
	assert_int_equal(attach_logged(f, img), 0);
	assert_non_null(strstr(f->log, "snapshot: 2 records, journal: 0 records"));
	assert_int_equal(pins_size(f->t), 2);
}

static void
test_torn_tail(void **state)
{
	struct fx *f = *state;
	char img[400], path[512];
	off_t before, after;

	assert_int_equal(attach_logged(f, f->dir), 0);
	settle(f, 1);
	assert_int_equal(pins_set(f->t, "alice", "demo-1", 1), 0);
	assert_int_equal(pins_set(f->t, "bob", "demo-2", 2), 0);
	settle(f, 1);
	before = file_size(f->dir, "pins.journal");
	assert_int_equal(pins_set(f->t, "carol", "demo-2", 3), 0);
	settle(f, 1);
	after = file_size(f->dir, "pins.journal");
	crash_image(f, "crash", img, sizeof(img));
	/* Cut carol's record in the middle. */
	snprintf(path, sizeof(path), "%s/pins.journal", img);
	assert_int_equal(truncate(path, before + (after - before) / 2), 0);
	close_store(f);

	assert_int_equal(attach_logged(f, img), 0);
	assert_non_null(strstr(f->log, "pins.journal: torn last record at offset"));
	assert_non_null(strstr(f->log, "the 2 records before it replayed"));
	assert_string_equal(pins_get(f->t, "alice"), "demo-1");
	assert_string_equal(pins_get(f->t, "bob"), "demo-2");
	assert_null(pins_get(f->t, "carol"));
	assert_int_equal(stats(f).torn, 1);
	assert_int_equal(stats(f).corrupt, 0);
	/* New changes go to a fresh journal, never after the torn bytes. */
	settle(f, 1);
	assert_int_equal(pins_set(f->t, "dave", "demo-1", 4), 0);
	settle(f, 1);
	close_store(f);
	assert_int_equal(attach_logged(f, img), 0);
	assert_null(strstr(f->log, "torn"));
	assert_string_equal(pins_get(f->t, "dave"), "demo-1");
	assert_int_equal(pins_size(f->t), 3);
}

static void
test_corrupt_middle(void **state)
{
	struct fx *f = *state;
	char img[400], path[512];
	off_t first;
	FILE *fp;
	int c;

	assert_int_equal(attach_logged(f, f->dir), 0);
	settle(f, 1);
	first = file_size(f->dir, "pins.journal");
	assert_int_equal(pins_set(f->t, "alice", "demo-1", 1), 0);
	assert_int_equal(pins_set(f->t, "bob", "demo-2", 2), 0);
	assert_int_equal(pins_set(f->t, "carol", "demo-2", 3), 0);
	settle(f, 1);
	crash_image(f, "crash", img, sizeof(img));
	close_store(f);
	/* Flip a byte inside alice's record: the first change after the header. */
	snprintf(path, sizeof(path), "%s/pins.journal", img);
	assert_non_null(fp = fopen(path, "r+b"));
	assert_int_equal(fseek(fp, first + 12, SEEK_SET), 0);
	c = fgetc(fp);
	assert_int_equal(fseek(fp, first + 12, SEEK_SET), 0);
	fputc(c ^ 0x20, fp);
	fclose(fp);

	assert_int_equal(attach_logged(f, img), 0);
	assert_non_null(strstr(f->log, "checksum mismatch at offset"));
	assert_non_null(strstr(f->log, "replay stops there"));
	assert_non_null(strstr(f->log, "moved to"));
	assert_int_equal(pins_size(f->t), 0);
	assert_int_equal(stats(f).corrupt, 1);
	assert_true(file_size(img, "pins.journal.corrupt") > 0);
	settle(f, 1);
	assert_true(file_size(img, "pins.journal") > 0);
}

static void
test_compaction(void **state)
{
	struct fx *f = *state;
	char user[32], id[16], img[400];
	uint64_t compactions;

	f->conf.journal_max_bytes = 4096;
	assert_int_equal(attach_logged(f, f->dir), 0);
	settle(f, 1);
	for (int round = 0; round < 40; round++) {
		for (int i = 0; i < 20; i++) {
			snprintf(user, sizeof(user), "user%d", i);
			snprintf(id, sizeof(id), "demo-%d", (i + round) % 3);
			assert_int_equal(pins_set(f->t, user, id, round * 100 + i), 0);
		}
		if (round % 4 == 3)
			assert_int_equal(pins_remove(f->t, "user0"), 0);
		settle(f, 1);
	}
	compactions = stats(f).compactions;
	assert_true(compactions >= 3);
	/* The journal stays bounded by its limit plus one batch. */
	assert_true(file_size(f->dir, "pins.journal") < 4096 + 2048);
	crash_image(f, "crash", img, sizeof(img));
	close_store(f);
	assert_int_equal(attach_logged(f, img), 0);
	assert_int_equal(pins_size(f->t), 19);
	assert_null(pins_get(f->t, "user0"));
	for (int i = 1; i < 20; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		snprintf(id, sizeof(id), "demo-%d", (i + 39) % 3);
		assert_string_equal(pins_get(f->t, user), id);
	}
}

/* Snapshot N+1 renamed into place, the crash before journal N+1: journal N must not replay. */
static void
test_stale_journal_ignored(void **state)
{
	struct fx *f = *state;
	char old[400], img[400], a[512], b[512];

	assert_int_equal(attach_logged(f, f->dir), 0);
	settle(f, 1);
	assert_int_equal(pins_set(f->t, "alice", "demo-1", 1), 0);
	settle(f, 1);
	crash_image(f, "old", old, sizeof(old));	/* snapshot 1 + journal 1 (alice) */
	close_store(f);
	/* Start again: snapshot 2 (alice); then alice is removed in journal 2. */
	assert_int_equal(attach_logged(f, f->dir), 0);
	settle(f, 1);
	assert_int_equal(pins_remove(f->t, "alice"), 0);
	assert_int_equal(pins_set(f->t, "bob", "demo-2", 2), 0);
	settle(f, 1);
	crash_image(f, "img", img, sizeof(img));
	close_store(f);
	/* The image gets the old journal (generation 1) beside snapshot 2. */
	snprintf(a, sizeof(a), "%s/pins.journal", old);
	snprintf(b, sizeof(b), "%s/pins.journal", img);
	copy_file(a, b);
	assert_int_equal(attach_logged(f, img), 0);
	assert_non_null(strstr(f->log, "predates"));
	assert_string_equal(pins_get(f->t, "alice"), "demo-1");	/* as snapshot 2 has it */
	assert_null(pins_get(f->t, "bob"));	/* journal 2 is gone in this image */
}

/* Activity is stored at most once a minute per user; a crash loses at most that much. */
static void
test_lazy_activity(void **state)
{
	struct fx *f = *state;
	char img[400];
	int64_t active;

	assert_int_equal(attach_logged(f, f->dir), 0);
	settle(f, 1);
	assert_int_equal(pins_set(f->t, "alice", "demo-1", 1000000), 0);
	assert_int_equal(pins_touch(f->t, "alice", 1030000), 0);	/* not stored */
	assert_int_equal(pins_touch(f->t, "alice", 1061000), 0);	/* stored */
	assert_int_equal(pins_touch(f->t, "alice", 1090000), 0);	/* not stored */
	settle(f, 1);
	crash_image(f, "crash", img, sizeof(img));
	/* A clean close stores what was held back. */
	close_store(f);
	assert_int_equal(attach_logged(f, f->dir), 0);
	assert_int_equal(pins_times(f->t, "alice", NULL, &active), 0);
	assert_int_equal(active, 1090000);
	close_store(f);
	assert_int_equal(attach_logged(f, img), 0);
	assert_int_equal(pins_times(f->t, "alice", NULL, &active), 0);
	assert_int_equal(active, 1061000);
	assert_true(1090000 - active < PIN_ACTIVE_WRITE_MS);
}

/* A state directory that cannot be written: logged once, served from memory, written when it can. */
static void
test_disk_error_episode(void **state)
{
	struct fx *f = *state;
	char link[400], target[400], img[400];
	struct pin_store_stats st;

	snprintf(link, sizeof(link), "%s/link", f->root);
	snprintf(target, sizeof(target), "%s/target", f->root);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(attach_logged(f, link), 0);
	/* The start-up snapshot fails: no such directory. */
	for (int i = 0; i < 1000 && stats(f).errors == 0; i++)
		uv_run(&f->loop, UV_RUN_ONCE);
	st = stats(f);
	assert_int_equal(st.healthy, 0);
	assert_int_equal(st.last_error, UV_ENOENT);
	assert_string_equal(st.last_error_op, "create");
	/* Changes keep working in memory and count as not on disk. */
	assert_int_equal(pins_set(f->t, "alice", "demo-1", 1), 0);
	assert_int_equal(pins_set(f->t, "bob", "demo-2", 2), 0);
	assert_string_equal(pins_get(f->t, "alice"), "demo-1");
	assert_true(stats(f).unsynced >= 2);
	/* A few retries fail quietly. */
	uint64_t errors = stats(f).errors;
	for (int i = 0; i < 1000 && stats(f).errors < errors + 2; i++)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_true(stats(f).errors >= errors + 2);
	/* The directory appears: the next retry writes everything. */
	assert_int_equal(mkdir(target, 0700), 0);
	settle(f, 1);
	st = stats(f);
	assert_int_equal(st.healthy, 1);
	assert_int_equal(st.unsynced, 0);
	assert_int_equal(pins_set(f->t, "carol", "demo-1", 3), 0);
	settle(f, 1);
	crash_image(f, "crash", img, sizeof(img));
	(void)img;
	close_store(f);
	assert_int_equal(attach_logged(f, link), 0);
	assert_int_equal(pins_size(f->t), 3);
}

/* Files that exist but cannot be read are left alone: nothing is written this run. */
static void
test_unreadable_not_overwritten(void **state)
{
	struct fx *f = *state;
	char path[512];

	snprintf(path, sizeof(path), "%s/pins.snapshot", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);	/* not a regular file */
	assert_int_not_equal(attach_logged(f, f->dir), 0);
	assert_non_null(strstr(f->log, "no pin will be written this run"));
	assert_int_equal(stats(f).healthy, 0);
	assert_int_equal(pins_set(f->t, "alice", "demo-1", 1), 0);
	for (int i = 0; i < 20; i++)
		uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(file_size(f->dir, "pins.journal"), -1);
	close_store(f);
	assert_int_equal(rmdir(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_replay_after_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_middle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_journal_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lazy_activity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_error_episode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_not_overwritten, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
