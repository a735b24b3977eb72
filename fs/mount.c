/*
 * mount.c - one mount's life: open the store, mount, serve, unmount.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs_internal.h"
#include "mlfs/blob.h"
#include "mlfs/compute.h"
#include "mlfs/timefmt.h"

extern const struct fuse_lowlevel_ops mlfs_ops;


/*
 * Supervisors are mlfs-supervise from the directory of this very binary
 * (found through /proc/self/exe), so a test's build runs its own.
 */
static int compute_init(struct fs_ctx *ctx, const struct fs_mount_options *opt)
{
	static const char name[] = "/mlfs-supervise";
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - sizeof(name));
	char *slash;

	if (n < 0)
		return -1;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -1;
	memcpy(slash, name, sizeof(name));
	ctx->compute = compute_local_new(exe, store_dir(ctx->st),
					 opt->mountpoint);
	return ctx->compute ? 0 : -1;
}

/* Settings of the local compute, and runs left behind by the last mount. */
static int compute_start(struct fs_ctx *ctx, const struct fs_mount_options *opt)
{
	int lost = 0;
	int rc = STORE_OK;

	if (opt->max_concurrent_runs >= 0)
		rc = store_compute_set_max(ctx->st, COMPUTE_LOCAL,
					   opt->max_concurrent_runs);
	if (rc == STORE_OK)
		rc = compute_local_recover(ctx->compute, ctx->st, &lost);
	if (rc != STORE_OK) {
		fprintf(stderr, "mlfs: cannot start the local compute: %s\n",
			store_strerror(rc));
		return -1;
	}
	return 0;
}

/*
 * The block cache of HTTP datastores. A cache another mount holds (its
 * owner lock) or that cannot be made is not fatal: reads then go to the
 * server every time, which the mount says once on stderr.
 */
static int http_cache_open(struct fs_ctx *ctx,
			   const struct fs_mount_options *opt)
{
	char err[512] = "", *dir = NULL;
	int rc;

	if (opt->cache_dir)
		dir = strdup(opt->cache_dir);
	else if (asprintf(&dir, "%s/cache/http", store_dir(ctx->st)) < 0)
		dir = NULL;
	if (!dir)
		return -1;
	rc = blockcache_open(dir, opt->cache_max ? opt->cache_max
					   : FS_CACHE_MAX_DEFAULT,
			     opt->cache_free_min ? opt->cache_free_min
						 : FS_CACHE_FREE_MIN_DEFAULT,
			     &ctx->blockcache, err, sizeof(err));
	if (rc != STORE_OK) {
		fprintf(stderr, "mlfs: no block cache for HTTP datastores: "
			"%s\n", err[0] ? err : store_strerror(rc));
		ctx->blockcache = NULL;
	}
	free(dir);
	return 0;
}

static int ctx_init(struct fs_ctx *ctx, const struct fs_mount_options *opt)
{
	char err[512] = "";
	int rc;

	memset(ctx, 0, sizeof(*ctx));
	ctx->mount_ms = time_now_ms();
	ctx->live_timeout = 1.0;	/* the contract: live things stale < 1 s */
	ctx->static_timeout = 86400.0;
	ctx->uid = getuid();
	ctx->gid = getgid();
	pthread_mutex_init(&ctx->carry_lock, NULL);
	pthread_mutex_init(&ctx->model_lock, NULL);
	pthread_mutex_init(&ctx->prefetch_lock, NULL);
	pthread_cond_init(&ctx->carry_done, NULL);
	rc = store_open(opt->workspace, STORE_CREATE, &ctx->st, err, sizeof(err));
	if (rc != STORE_OK) {
		fprintf(stderr, "mlfs: %s\n", err[0] ? err : store_strerror(rc));
		return -1;
	}
	/* Temporaries of blob puts a dead process left (blob.h). */
	if (blob_cleanup(store_dir(ctx->st), NULL) != STORE_OK)
		fprintf(stderr, "mlfs: cannot clean '%s/blobs/tmp'\n",
			store_dir(ctx->st));
	rc = models_mount_cleanup(ctx);
	if (rc < 0)
		fprintf(stderr, "mlfs: cannot remove unused model blobs: %s\n",
			strerror(-rc));
	if (asprintf(&ctx->cache_dir, "%s/cache", store_dir(ctx->st)) < 0) {
		ctx->cache_dir = NULL;
		goto out_close;
	}
	if (version_map_new(&ctx->versions) < 0)
		goto out_close;
	if (itable_init(&ctx->itable, &kind_root) < 0)
		goto out_close;
	ctx->snap_limits.max_bytes = opt->snapshot_max_bytes
		? opt->snapshot_max_bytes : SNAPSHOT_MAX_BYTES_DEFAULT;
	ctx->snap_limits.max_files = opt->snapshot_max_files
		? opt->snapshot_max_files : SNAPSHOT_MAX_FILES_DEFAULT;
	if (snapshots_ctx_init(ctx) < 0)
		goto out_itable;
	if (datastores_ctx_init(ctx) < 0)
		goto out_itable;
	if (http_cache_open(ctx, opt) < 0)
		goto out_itable;
	if (compute_init(ctx, opt) < 0)
		goto out_itable;
	return 0;

out_itable:
	itable_release(&ctx->itable);
out_close:
	fprintf(stderr, "mlfs: out of memory\n");
	version_map_free(ctx->versions);
	free(ctx->cache_dir);
	store_close(ctx->st);
	return -1;
}

static void ctx_release(struct fs_ctx *ctx)
{
	prefetch_stop(ctx);
	pthread_mutex_destroy(&ctx->prefetch_lock);
	compute_local_free(ctx->compute);
	pthread_cond_destroy(&ctx->carry_done);
	pthread_mutex_destroy(&ctx->carry_lock);
	pthread_mutex_destroy(&ctx->model_lock);
	snapshots_ctx_release(ctx);
	datastores_ctx_release(ctx);
	blockcache_close(ctx->blockcache);
	itable_release(&ctx->itable);
	version_map_free(ctx->versions);
	free(ctx->cache_dir);
	store_close(ctx->st);
}

/*
 * The loop returns the signal that ended it (libfuse's handlers record
 * it): SIGINT, SIGTERM and SIGHUP are how a mount is asked to stop.
 */
/*
 * The device numbers "MAJ:MIN" of the newest mount at @mountpoint, from
 * /proc/self/mountinfo: stat() of the mount point would ask this daemon,
 * which does not serve yet. Mount points there escape ' ', '\t', '\n'
 * and '\\' as octal; ours are compared in that form. 0, or -1.
 */
int mount_device(const char *mountpoint, char *dev, size_t devlen)
{
	char want[4 * PATH_MAX];
	char *line = NULL;
	size_t cap = 0, w = 0;
	FILE *f;
	int rc = -1;

	/* Absolute already (cli/main.c); realpath() would stat the mount. */
	for (const char *p = mountpoint; *p && w + 5 < sizeof(want); p++) {
		if (strchr(" \t\n\\", *p))
			w += (size_t)snprintf(want + w, sizeof(want) - w, "\\%03o",
					      (unsigned char)*p);
		else
			want[w++] = *p;
	}
	want[w] = '\0';
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... */
		char *save = NULL, *field[5];
		int i;

		field[0] = strtok_r(line, " ", &save);
		for (i = 1; i < 5 && field[i - 1]; i++)
			field[i] = strtok_r(NULL, " ", &save);
		if (i == 5 && field[4] && strcmp(field[4], want) == 0 &&
		    strlen(field[2]) < devlen) {
			snprintf(dev, devlen, "%s", field[2]);
			rc = 0;		/* keep going: the last one is on top */
		}
	}
	free(line);
	fclose(f);
	return rc;
}

static int loop_status(int rc)
{
	return rc != 0 && rc != SIGINT && rc != SIGTERM && rc != SIGHUP;
}

int fs_mount(const struct fs_mount_options *opt, struct fuse_args *args)
{
	struct fuse_loop_config *loop;
	struct fs_ctx ctx;
	int ret = 1;

	/*
	 * One malloc arena per worker thread keeps megabytes of freed parse
	 * buffers resident per thread; two arenas are plenty for our locking.
	 */
	mallopt(M_ARENA_MAX, 2);
	/*
	 * HTTP blocks (256 KiB) and read buffers (1 MiB) come and go by the
	 * thousand per second: from the heap they are reused; as separate
	 * mappings every one would be faulted in page by page again.
	 */
	mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
	if (ctx_init(&ctx, opt) < 0)
		return 1;
	if (opt->debug && fuse_opt_add_arg(args, "-d") < 0)
		goto out_ctx;
	ctx.se = fuse_session_new(args, &mlfs_ops, sizeof(mlfs_ops), &ctx);
	if (!ctx.se)
		goto out_ctx;
	if (fuse_set_signal_handlers(ctx.se) != 0)
		goto out_session;
	if (fuse_session_mount(ctx.se, opt->mountpoint) != 0)
		goto out_signals;
	ctx.pt.wanted = opt->passthrough;
	ctx.http_direct = opt->http_direct;
	fuse_ext_attach(&ctx);
	if (mount_device(opt->mountpoint, ctx.bdi, sizeof(ctx.bdi)) < 0)
		ctx.bdi[0] = '\0';
	if (!opt->foreground)
		store_before_fork(ctx.st);
	if (fuse_daemonize(opt->foreground) != 0)
		goto out_unmount;
	/* After daemonizing: neither a thread nor a flock'd journal belongs
	 * to the parent that exits. */
	if (store_journal_start(ctx.st) != STORE_OK)
		goto out_unmount;
	if (compute_start(&ctx, opt) < 0)
		goto out_unmount;
	if (watcher_start(&ctx) < 0)
		goto out_unmount;
	if (opt->single_thread) {
		ret = loop_status(fuse_session_loop(ctx.se));
	} else {
		loop = fuse_loop_cfg_create();
		if (!loop)
			goto out_watcher;
		fuse_loop_cfg_set_max_threads(loop, 16);
		fuse_loop_cfg_set_idle_threads(loop, 4);
		/* A device descriptor per thread: no herd on one queue lock
		 * for every request (open/release of many small files). */
		fuse_loop_cfg_set_clone_fd(loop, 1);
		ret = loop_status(fuse_session_loop_mt(ctx.se, loop));
		fuse_loop_cfg_destroy(loop);
	}
out_watcher:
	watcher_stop(&ctx);
out_unmount:
	fuse_session_unmount(ctx.se);
out_signals:
	fuse_remove_signal_handlers(ctx.se);
out_session:
	fuse_session_destroy(ctx.se);
out_ctx:
	ctx_release(&ctx);
	return ret;
}
