/*
 * snapshot.h - immutable, content-addressed copies of a run's source
 * directory, stored as zip files in the workspace.
 *
 * Invariants
 *  - A snapshot is two files, WORKSPACE/snapshots/ID.zip and ID.json
 *    (snapshot.json: id, created, files, bytes, zip_bytes,
 *    source_directory). Each is written to a temporary name, fsynced and
 *    renamed, so a final name never holds a partial file. A snapshot
 *    exists once its .json does; the .json is renamed after the .zip.
 *  - The id is the first SNAPSHOT_ID_LEN hex digits of the sha256 of a
 *    canonical manifest of the tree (sorted relative paths, each with its
 *    type, executable bit and the sha256 of its bytes or its symlink
 *    target). Identical content gives the same id and is stored once;
 *    names, modes other than the executable bit, and times do not count.
 *  - Nothing in a snapshot changes after it is made. Symlinks are stored
 *    as symlinks and never followed, when building or extracting.
 *  - No SQL: snapshots live in files only, so any process may read them.
 *
 * Results
 *  Functions return STORE_OK (0) or a negative STORE_* code from store.h.
 *  Where a function takes @err/@errlen (@err may be NULL), a failure
 *  writes a message there: lowercase, failure first, subject quoted,
 *  e.g. "cannot read 'src/a.py': permission denied". Out-parameters are
 *  filled only on STORE_OK.
 *
 * Threads
 *  Building, getting, listing and extracting keep no shared state: any
 *  number may run at once, in any threads and processes (two builds of the
 *  same content both succeed; one of them stores it). A snapshot_tree may
 *  be used from many threads at once (it holds its own mutex).
 */
#ifndef MLFS_SNAPSHOT_H
#define MLFS_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mlfs/store.h"
#include "mlfs/strbuf.h"

#define SNAPSHOT_ID_LEN 32	/* hex chars */
#define SNAPSHOT_MAX_BYTES_DEFAULT (300ull * 1024 * 1024)
#define SNAPSHOT_MAX_FILES_DEFAULT 2000

struct snapshot_limits {
	uint64_t max_bytes;	/* sum of regular files' sizes */
	uint64_t max_files;	/* regular files and symlinks */
};

struct snapshot_info {
	char id[SNAPSHOT_ID_LEN + 1];
	uint64_t files;		/* regular files and symlinks */
	uint64_t bytes;		/* their sizes (a symlink: its target) */
	uint64_t zip_bytes;	/* size of ID.zip */
	int64_t created_ms;
	int reused;		/* 1: identical content already stored */
};

/*
 * snapshot_build - snapshot the directory @source_dir into the workspace
 * directory @workspace_dir, and fill @out.
 *
 * The tree is walked without following symlinks; ignore rules are those
 * of ignore.h (.amlignore, else .gitignore, plus .git/ and __pycache__/).
 * Regular files keep their executable bit; symlinks are stored as
 * symlinks whatever they point at; directories are stored too (so empty
 * ones survive); sockets, fifos and devices are skipped. @lim NULL means
 * the defaults above.
 *
 * Unchanged files are not read again: a stat cache per source directory
 * (WORKSPACE/cache/statcache/) keeps each file's sha256 with its stat
 * data, like git's index, and does not trust entries modified in the
 * same clock tick as the cache was written ("racy clean").
 *
 * Returns STORE_OK and *out (out->reused = 1 when the content was stored
 * already: nothing was written but the stat cache), or
 *   STORE_NOT_FOUND  @source_dir missing or not a directory
 *   STORE_DENIED     a file or directory cannot be read (named in @err)
 *   STORE_TOO_BIG    over @lim's files or bytes; @err names the limit, the
 *                    actual count or size, and .amlignore. Checked before
 *                    anything is written.
 *   STORE_INVALID    an ignore rules file is larger than IGNORE_FILE_MAX
 *   STORE_IO         reading, zipping or writing failed (file changed
 *                    while it was read, disk full, ...)
 *   STORE_NOMEM
 * On failure nothing is left under WORKSPACE/snapshots but, at worst,
 * temporary files that the next build removes.
 */
int snapshot_build(const char *workspace_dir, const char *source_dir,
		   const struct snapshot_limits *lim, struct snapshot_info *out,
		   char *err, size_t errlen);

/*
 * snapshot_get - the info of snapshot @id, read from its snapshot.json
 * (out->reused is 0). STORE_INVALID for a malformed id (not
 * SNAPSHOT_ID_LEN lowercase hex digits), STORE_NOT_FOUND when there is no
 * such snapshot, STORE_CORRUPT when its json cannot be parsed, STORE_IO.
 */
int snapshot_get(const char *workspace_dir, const char *id,
		 struct snapshot_info *out);

/*
 * snapshot_list - call @fn for every snapshot in id order; a non-zero
 * return from @fn stops the walk and is returned. Snapshots whose json
 * cannot be read are skipped. A workspace with no snapshots/ directory
 * has no snapshots (STORE_OK).
 */
int snapshot_list(const char *workspace_dir,
		  int (*fn)(void *ctx, const struct snapshot_info *s),
		  void *ctx);

/*
 * snapshot_zip_path, snapshot_json_path - write the path of snapshot
 * @id's file into @buf of @len bytes. STORE_INVALID for a malformed id,
 * STORE_TOO_BIG when the path does not fit. Do not check existence.
 */
int snapshot_zip_path(const char *workspace_dir, const char *id, char *buf,
		      size_t len);
int snapshot_json_path(const char *workspace_dir, const char *id, char *buf,
		       size_t len);

/*
 * snapshot_extract_zip - extract the zip @zip_path into the existing
 * directory @dest_dir.
 *
 * Every entry name is checked before anything is written: an absolute
 * name, an empty or "." or ".." component, or a name below an entry that
 * is a symlink or a file gives STORE_INVALID naming the entry, and
 * nothing is extracted. While writing, every directory is opened with
 * O_NOFOLLOW|O_DIRECTORY from its parent's descriptor and files are
 * created with O_EXCL|O_NOFOLLOW, so nothing is ever written outside
 * @dest_dir, even if the tree changes meanwhile. Symlinks are made as
 * symlinks (their targets are not checked: they are never followed).
 * Files get mode 0644, or 0755 when stored executable; directories 0755.
 * Returns STORE_OK, STORE_INVALID, STORE_NOT_FOUND (no zip or no
 * @dest_dir), STORE_EXISTS (a file is already there), STORE_CORRUPT (not
 * a readable zip), STORE_IO, STORE_NOMEM. A failure after writing began
 * may leave part of the tree in @dest_dir.
 */
int snapshot_extract_zip(const char *zip_path, const char *dest_dir,
			 char *err, size_t errlen);

/* snapshot_extract_zip() of snapshot @id; STORE_INVALID for a bad id. */
int snapshot_extract(const char *workspace_dir, const char *id,
		     const char *dest_dir, char *err, size_t errlen);

/* ---- the tree inside a snapshot, for the mount --------------------------- */

struct snapshot_tree;

enum snapshot_type { SNAPSHOT_FILE, SNAPSHOT_DIR, SNAPSHOT_SYMLINK };

/*
 * One node of a tree. The strings are owned by the tree and live as long
 * as it does. @path is relative to the snapshot's root ("" for the root,
 * "a/b"), @name its last component ("" for the root). @mode holds the
 * type and permission bits as stored; @size is the file's length or the
 * symlink target's; @index is the zip entry (meaningless for the root and
 * for directories the zip did not hold as entries).
 */
struct snapshot_node {
	const char *path;
	const char *name;
	enum snapshot_type type;
	mode_t mode;
	uint64_t size;
	int64_t mtime_ms;
	uint64_t index;
};

/*
 * snapshot_tree_open - open snapshot @id's zip and index its entries.
 * Entries with unsafe names (see snapshot_extract_zip) are left out.
 * Returns STORE_OK and *out, which the caller frees with
 * snapshot_tree_free(); STORE_INVALID (bad id), STORE_NOT_FOUND,
 * STORE_CORRUPT, STORE_NOMEM.
 */
int snapshot_tree_open(const char *workspace_dir, const char *id,
		       struct snapshot_tree **out);
/* Free @t; NULL is allowed. No call on @t may be running. */
void snapshot_tree_free(struct snapshot_tree *t);

/* The node at @path ("" the root): STORE_OK or STORE_NOT_FOUND. */
int snapshot_tree_lookup(struct snapshot_tree *t, const char *path,
			 struct snapshot_node *out);

/*
 * Call @fn for each child of the directory @dir_path in name order; a
 * non-zero return stops and is returned. STORE_NOT_FOUND when there is
 * no such node, STORE_INVALID when it is not a directory.
 */
int snapshot_tree_list(struct snapshot_tree *t, const char *dir_path,
		       int (*fn)(void *ctx, const struct snapshot_node *n),
		       void *ctx);

/*
 * Append the whole content of the file at @path, or a symlink's target,
 * to @out. STORE_NOT_FOUND, STORE_INVALID (a directory), STORE_CORRUPT
 * (the zip entry cannot be read or has the wrong size), STORE_NOMEM
 * (also when @out's cap is reached).
 */
int snapshot_tree_read(struct snapshot_tree *t, const char *path,
		       struct strbuf *out);

/*
 * As snapshot_tree_read(), streaming: @fn gets the bytes in order, a
 * chunk at a time, while the tree's mutex is held (it must not call back
 * into @t). A non-zero return from @fn stops and is returned.
 */
int snapshot_tree_read_fn(struct snapshot_tree *t, const char *path,
			  int (*fn)(void *ctx, const void *buf, size_t len),
			  void *ctx);

/* ---- for tests ------------------------------------------------------------ */

/*
 * The number of files whose bytes snapshot_build() has read to hash them,
 * in this process, since it started. Tests use it to prove the stat
 * cache works; nothing else should depend on it. Thread-safe.
 */
uint64_t snapshot_test_hash_reads(void);

#endif /* MLFS_SNAPSHOT_H */
