/*
 * snapshot_internal.h - what the snapshot files of store/ share:
 * sha256, messages, safe names and opens, and the stat cache.
 */
#ifndef MLFS_SNAPSHOT_INTERNAL_H
#define MLFS_SNAPSHOT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "mlfs/snapshot.h"

#define SHA256_LEN 32

/* sha256 of @len bytes at @data into @out; 0 or -ENOMEM. */
int sha256_buf(const void *data, size_t len, unsigned char out[SHA256_LEN]);
/* Lowercase hex of @n bytes into @out (2n + 1 bytes, NUL-terminated). */
void hex_encode(const unsigned char *in, size_t n, char *out);

/* Writes a message into @err (NULL allowed); returns @rc. */
int snap_err(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* 1 if @id is SNAPSHOT_ID_LEN lowercase hex digits. */
int snapshot_id_is_valid(const char *id);

/*
 * 1 if @name (a zip entry name, a trailing '/' allowed) is a relative
 * path whose every component is non-empty and neither "." nor "..".
 */
int snapshot_name_is_safe(const char *name);

/*
 * Opens @rel below the directory @root_fd read-only, refusing to follow
 * any symlink on the way or at the end (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS; on kernels without it, O_NOFOLLOW on the last
 * component only). Returns the descriptor or -errno.
 */
int open_beneath(int root_fd, const char *rel, int flags);

/* mkdir -p of @path's last two levels at most: @path and its parent. */
int mkdir_parents(const char *path);

/* Writes @len bytes to a temporary file in @dir, fsyncs it, renames it to
 * @final (replacing it) and fsyncs @dir. 0 or -errno. */
int write_file_atomic(const char *dir, const char *final, const void *buf,
		      size_t len);

/* fsync the directory @dir; 0 or -errno. */
int fsync_dir(const char *dir);

/* Writes ID.json for @info (temporary file + rename) into @snap_dir. */
int json_write(const char *snap_dir, const char *final,
	       const struct snapshot_info *info, const char *source);

/* ---- statcache.c ------------------------------------------------------------ */

/*
 * The stat cache of one source directory: relative path -> stat data ->
 * sha256 of the file's bytes, as git's index keeps it. Loaded at the
 * start of a build, rebuilt during it from what the build saw, and saved
 * at its end (temporary file + rename).
 */
struct statcache_entry {
	char *path;
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
	uint32_t mode;
	unsigned char sha[SHA256_LEN];
};

struct statcache {
	struct statcache_entry *v;
	size_t n, alloc;
	int64_t written_ns;	/* the cache file's mtime when loaded */
};

#define STATCACHE_INIT { NULL, 0, 0, 0 }

/*
 * Load the cache of the source root @root_real (a realpath) from
 * WORKSPACE/cache/statcache/. A missing or unreadable cache loads empty
 * (a cache is only ever a shortcut). 0 or -ENOMEM.
 */
int statcache_load(const char *workspace_dir, const char *root_real,
		   struct statcache *sc);
/*
 * The sha256 cached for @path if @st (from lstat) matches the entry in
 * device, inode, size, mode, mtime and ctime, and the entry was modified
 * strictly before the cache was written (else it may have changed in the
 * same clock tick after it was hashed: "racily clean"). NULL otherwise.
 */
const unsigned char *statcache_find(const struct statcache *sc,
				    const char *path, const struct stat *st);
/* Append an entry; entries must be added in strcmp order of path. */
int statcache_add(struct statcache *sc, const char *path,
		  const struct stat *st, const unsigned char sha[SHA256_LEN]);
/* Save @sc as the cache of @root_real. 0 or -errno. */
int statcache_save(const char *workspace_dir, const char *root_real,
		   const struct statcache *sc);
void statcache_release(struct statcache *sc);

#endif
