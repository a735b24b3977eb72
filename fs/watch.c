/*
 * watch.c - the watcher thread: follows the store's change feed, so that
 * changes made by other processes (run supervisors, another mount) make
 * this mount's cached content stale within WATCH_INTERVAL_MS; and the
 * keeper of the write-ahead log, checkpointed here off the write path.
 */
#include <stdio.h>
#include <time.h>

#include "fs_internal.h"
#include "mlfs/timefmt.h"

#define WATCH_INTERVAL_MS 100
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

static void *watch_loop(void *arg)
{
	struct fs_ctx *ctx = arg;
	struct timespec pause = { 0, WATCH_INTERVAL_MS * 1000000L };
	int64_t last_prune = time_now_ms();
	int64_t last_checkpoint = last_prune;

	while (!ctx->stopping) {
		int rc = store_changes_since(ctx->st, &ctx->change_seq,
					     on_change, ctx);

		if (rc != STORE_OK)
			fprintf(stderr, "mlfs: cannot read changes: %s\n",
				store_strerror(rc));
		/* Snapshots are files, not rows: they have no change feed. */
		snapshots_watch(ctx);
		/* Other processes read the database: keep it current. */
		store_journal_drain(ctx->st);
		if (time_now_ms() - last_prune > PRUNE_EVERY_MS) {
			store_changes_prune(ctx->st, CHANGES_KEEP);
			last_prune = time_now_ms();
		}
		if (time_now_ms() - last_checkpoint > CHECKPOINT_EVERY_MS) {
			store_checkpoint(ctx->st);
			last_checkpoint = time_now_ms();
		}
		nanosleep(&pause, NULL);
	}
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
