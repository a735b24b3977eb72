/*
 * watch.c - the watcher thread: follows the store's change feed, so that
 * changes made by other processes (run supervisors, another mount) make
 * this mount's cached content stale within WATCH_INTERVAL_MS; and the
 * keeper of the write-ahead log, checkpointed here off the write path;
 * and the mount's side of the local compute: reaping the supervisors it
 * started, failing runs whose supervisor died.
 *
 * Between rounds the thread sleeps on inotify of WORKSPACE/notify, which
 * supervisors touch after their changes, so a run moving to Completed
 * shows at once instead of at the next tick.
 */
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "fs_internal.h"
#include "mlfs/compute.h"
#include "mlfs/timefmt.h"

#define WATCH_INTERVAL_MS 100
#define LOST_CHECK_EVERY_MS 5000
#define CHANGES_KEEP 100000
#define PRUNE_EVERY_MS (60 * 1000)
#define CHECKPOINT_EVERY_MS 1000

static int on_change(void *arg, const struct store_change *ch)
{
	/* Our own changes were bumped when they were made. */
	if (!ch->mine)
		version_bump_change(arg, ch);
	return 0;
}

/*
 * An inotify descriptor watching the workspace's notify file, which
 * supervisors touch after each change they make (store_notify), or -1.
 * Not the WAL: our own commits write it too, and waking for each of them
 * cost a mkdir loop 40% of its rate.
 */
static int notify_watch_open(struct fs_ctx *ctx)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (fd < 0)
		return -1;
	if (store_notify(ctx->st) < 0 ||
	    inotify_add_watch(fd, store_notify_path(ctx->st),
			      IN_ATTRIB | IN_MODIFY) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Sleeps until another process notifies a change or a tick passed; never
 * begins a round sooner than WATCH_MIN_ROUND_MS after the last one began,
 * so a run logging metrics fast cannot keep this thread busy.
 */
#define WATCH_MIN_ROUND_MS 2

static void wait_for_writes(int fd, int64_t round_start)
{
	struct timespec pause = { 0, WATCH_INTERVAL_MS * 1000000L };
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int64_t since = time_now_ms() - round_start;
	char buf[4096];

	if (fd < 0) {
		nanosleep(&pause, NULL);
		return;
	}
	if (since < WATCH_MIN_ROUND_MS) {
		struct timespec rest = { 0, (WATCH_MIN_ROUND_MS - since) * 1000000L };

		nanosleep(&rest, NULL);
	}
	if (poll(&p, 1, WATCH_INTERVAL_MS) > 0) {
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	}
}

/*
 * The kernel reads ahead 128 KiB on a FUSE mount: one request at a time
 * through the daemon, half the speed of reading a large model or dataset
 * from disk. A mount's read-ahead is its backing device info's, settable
 * by root in sysfs, but the kernel lowers it to what INIT agreed when it
 * takes our reply, and INIT was asked before we could raise it: so it is
 * raised here, after, and read back until it holds. Not root: no effect.
 */
#define READ_AHEAD_KB 4096
#define READ_AHEAD_TRIES 20

static void tune_read_ahead(struct fs_ctx *ctx)
{
	char path[96], buf[32] = "";
	FILE *f;

	if (!ctx->bdi[0] || !atomic_load(&ctx->inited) ||
	    ctx->read_ahead_set >= READ_AHEAD_TRIES)
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", ctx->bdi);
	f = fopen(path, "r+e");
	if (!f) {
		ctx->read_ahead_set = READ_AHEAD_TRIES;
		return;
	}
	if (fgets(buf, sizeof(buf), f) && strtol(buf, NULL, 10) >= READ_AHEAD_KB)
		ctx->read_ahead_set = READ_AHEAD_TRIES;	/* it holds */
	else
		ctx->read_ahead_set++;
	if (ctx->read_ahead_set < READ_AHEAD_TRIES) {
		rewind(f);
		fprintf(f, "%d\n", READ_AHEAD_KB);
	}
	fclose(f);
}

/* Our own change: the change feed will not tell us (see on_change). */
static void run_lost(void *arg, int64_t run_id)
{
	struct fs_ctx *ctx = arg;
	struct store_run r = { 0 };
	struct store_change ch = { .kind = CHANGE_RUN, .run_id = run_id };

	if (store_run_get(ctx->st, run_id, &r) == STORE_OK)
		ch.experiment_id = r.experiment_id;
	store_run_release(&r);
	version_bump_change(ctx, &ch);
	version_bump(ctx, DEP_EVENTS, 0);
}

static void check_supervisors(struct fs_ctx *ctx, int64_t *last_check)
{
	compute_local_reap(ctx->compute);
	if (time_now_ms() - *last_check < LOST_CHECK_EVERY_MS)
		return;
	*last_check = time_now_ms();
	compute_fail_lost_runs(ctx->st, run_lost, ctx, NULL);
}

static void *watch_loop(void *arg)
{
	struct fs_ctx *ctx = arg;
	int64_t last_prune = time_now_ms();
	int64_t last_checkpoint = last_prune;
	int64_t last_lost_check = last_prune;
	int64_t last_drain = last_prune;
	int notify_fd = notify_watch_open(ctx);

	while (!ctx->stopping) {
		int64_t round_start = time_now_ms();
		int rc = store_changes_since(ctx->st, &ctx->change_seq,
					     on_change, ctx);

		if (rc != STORE_OK)
			fprintf(stderr, "mlfs: cannot read changes: %s\n",
				store_strerror(rc));
		/*
		 * Other processes read the database: keep it current, in
		 * batches (waking on our own drain's WAL write must not turn
		 * into a drain per append).
		 */
		if (time_now_ms() - last_drain >= WATCH_INTERVAL_MS) {
			store_journal_drain(ctx->st);
			last_drain = time_now_ms();
		}
		/* Snapshots are files, not rows: they have no change feed. */
		snapshots_watch(ctx);
		if (time_now_ms() - last_prune > PRUNE_EVERY_MS) {
			store_changes_prune(ctx->st, CHANGES_KEEP);
			last_prune = time_now_ms();
		}
		if (time_now_ms() - last_checkpoint > CHECKPOINT_EVERY_MS) {
			store_checkpoint(ctx->st);
			last_checkpoint = time_now_ms();
		}
		check_supervisors(ctx, &last_lost_check);
		tune_read_ahead(ctx);
		wait_for_writes(notify_fd, round_start);
	}
	if (notify_fd >= 0)
		close(notify_fd);
	return NULL;
}

int watcher_start(struct fs_ctx *ctx)
{
	int rc = store_changes_head(ctx->st, &ctx->change_seq);

	if (rc != STORE_OK) {
		fprintf(stderr, "mlfs: cannot read the change feed: %s\n",
			store_strerror(rc));
		return -1;
	}
	if (pthread_create(&ctx->watcher, NULL, watch_loop, ctx) != 0)
		return -1;
	ctx->watcher_running = 1;
	return 0;
}

void watcher_stop(struct fs_ctx *ctx)
{
	if (!ctx->watcher_running)
		return;
	ctx->stopping = 1;
	pthread_join(ctx->watcher, NULL);
	ctx->watcher_running = 0;
}
