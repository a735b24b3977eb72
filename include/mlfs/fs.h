/*
 * fs.h - mounting a workspace: the FUSE file system.
 *
 * fs_mount() serves the tree described in docs/layout.md until the file
 * system is unmounted (fusermount3 -u) or the process gets SIGINT, SIGTERM
 * or SIGHUP, then unmounts and returns. It is the whole life of a mount
 * process and is called once per process.
 */
#ifndef MLFS_FS_H
#define MLFS_FS_H

#include <stdint.h>

struct fuse_args;

struct fs_mount_options {
	const char *workspace;	/* created when missing */
	const char *mountpoint;
	int foreground;		/* do not daemonize */
	int debug;		/* libfuse's -d: log every request */
	int single_thread;
	/* -o max_concurrent_runs=N: runs at once on "local" (0: as many as CPUs) */
	int max_concurrent_runs;	/* -1: leave the workspace's setting */
	/* -o snapshot_max_bytes=, snapshot_max_files=: 0 for the defaults */
	uint64_t snapshot_max_bytes;
	uint64_t snapshot_max_files;
	/*
	 * -o cache_dir=,cache_max=,cache_free_min=: the block cache of HTTP
	 * datastores (NULL / 0 for the defaults: WORKSPACE/cache/http,
	 * FS_CACHE_MAX_DEFAULT, FS_CACHE_FREE_MIN_DEFAULT).
	 */
	char *cache_dir;		/* owned by the caller */
	uint64_t cache_max;
	uint64_t cache_free_min;
	/*
	 * -o passthrough=0|1: the kernel reads model and copied dataset
	 * files straight from their blobs, and local dataset sources under
	 * a read lease, where it can (Linux 6.9+, run as root); 0 sends
	 * every read through the daemon.
	 */
	int passthrough;
	/*
	 * -o http_direct=0|1: 1 reads a remote file over 4 MiB around the
	 * page cache (direct I/O) until a reader has read it to its end.
	 * Faster for large reads where the network outruns the kernel's
	 * caching (loopback, fast LANs), slower for small ones (each is a
	 * round trip to the daemon). Default 0.
	 */
	int http_direct;
};

#define FS_CACHE_MAX_DEFAULT (10ULL << 30)	/* 10 GiB */
#define FS_CACHE_FREE_MIN_DEFAULT (1ULL << 30)	/* keep 1 GiB free */

/*
 * fs_mount - mount @opt->workspace at @opt->mountpoint and serve it.
 * @args holds the remaining FUSE options (-o ...), passed to libfuse.
 * Returns 0 after a clean unmount, or 1 with a message on stderr.
 */
int fs_mount(const struct fs_mount_options *opt, struct fuse_args *args);

#endif
