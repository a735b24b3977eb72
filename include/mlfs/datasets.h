/*
 * datasets.h - dataset versions: named, numbered, immutable lists of files
 * of one datastore (datastores.h), each pinned to what it was when the
 * version was registered (store/dataset.c, store/dataset_local.c).
 *
 * Invariants
 *  1. Version numbers of a dataset name count 1, 2, 3 ... and are never
 *     reused. A version is registered whole or not at all (one
 *     transaction, which also makes the dataset when it is missing).
 *  2. A version never changes: its files, their pins, its description and
 *     tags are fixed at registration.
 *  3. A file's pin is what its bytes must still match to be served:
 *     size and mtime (ns) for a local datastore; size, ETag and
 *     Last-Modified for an HTTP one. A copied file ("copy": true) names a
 *     blob (blob.h) instead and no longer depends on its source.
 *  4. File paths are relative to the datastore's root: '/'-separated
 *     segments, none empty, "." or "..", no NUL; unique within a version;
 *     at most DATASET_PATH_MAX bytes. A path is never both a file and a
 *     directory prefix of another file of the same version.
 *  5. A datastore that a version uses cannot be removed
 *     (store_datastore_delete() gives STORE_NOT_EMPTY).
 *  6. Registering adds a CHANGE_DATASETS change and an events line
 *     ("datasets/NAME/3 registered: 12 files, 3.1 MB from datastore D").
 *
 * Results, ownership and threads as in store.h: STORE_OK or a negative
 * STORE_* code, out-parameters filled only on STORE_OK, strings owned by
 * their struct until its *_release(), every call thread-safe, callbacks
 * must not call back into the store.
 */
#ifndef MLFS_DATASETS_H
#define MLFS_DATASETS_H

#include <stddef.h>
#include <stdint.h>

#include "mlfs/blob.h"
#include "mlfs/datastores.h"
#include "mlfs/http.h"
#include "mlfs/store.h"

#define DATASET_PATH_MAX 4096	/* bytes of a file's path */
#define DATASET_FILES_MAX 1000000	/* files in one version */

/* One file of a version. */
struct dataset_file {
	char *path;		/* relative to the datastore root */
	uint64_t size;
	int64_t mtime_ns;	/* local: st_mtim in ns; http: -1 */
	char *etag;		/* http: as sent ("" if none); local: NULL */
	int64_t http_mtime_ms;	/* http: Last-Modified, -1 if none; local: -1 */
	char blob[BLOB_HEX_LEN + 1];	/* copied: its blob; else "" */
};
void dataset_file_release(struct dataset_file *f);

struct dataset_files {
	struct dataset_file *v;
	size_t n, alloc;
};
void dataset_files_release(struct dataset_files *fl);

struct store_dataset_version {
	int64_t id;		/* row id of the version */
	char *name;
	int64_t version;
	int64_t datastore_id;
	char *datastore;	/* its name */
	char *description;	/* "" when none */
	char *tags_json;	/* a JSON object of strings, "{}" when none */
	int copy;		/* 1: every file is a blob */
	int64_t created_ms;
	int64_t file_count;
	uint64_t total_bytes;
};
void store_dataset_version_release(struct store_dataset_version *v);

struct dataset_spec {
	const char *name;
	const char *datastore;
	const char *description;	/* may be NULL */
	const char *tags_json;		/* may be NULL; a JSON object of strings */
	int copy;
	const struct dataset_file *files;	/* pins (and blobs when copy) */
	size_t nfiles;
};

/*
 * store_dataset_register - make the next version of @spec->name and fill
 * @out (may be NULL). @spec->files may come in any order; they are kept
 * in path order. Tags are stored as compact JSON with sorted keys.
 * STORE_INVALID (bad name, path, duplicate path, a path both file and
 * directory, no files, tags not an object of strings, copy without every
 * blob or a blob without copy, pins that do not fit the datastore's
 * type: an etag on a local one, no etag or an mtime_ns on an HTTP one),
 * STORE_NOT_FOUND (no such datastore), STORE_TOO_BIG (over
 * DATASET_FILES_MAX; a description or tags over STORE_VALUE_MAX bytes;
 * total bytes over INT64_MAX), STORE_IO.
 */
int store_dataset_register(struct store *st, const struct dataset_spec *spec,
			   struct store_dataset_version *out);

/*
 * Version @version of @name; @version 0 is the latest. STORE_NOT_FOUND
 * (also for a negative @version).
 */
int store_dataset_version_get(struct store *st, const char *name,
			      int64_t version,
			      struct store_dataset_version *out);

/* Dataset names in name order, with their latest version number. */
typedef int (*store_dataset_fn)(void *ctx, const char *name, int64_t latest,
				int64_t updated_ms);
int store_dataset_list(struct store *st, store_dataset_fn fn, void *ctx);

/* Versions of @name in number order; STORE_NOT_FOUND if no such dataset. */
typedef int (*store_dataset_version_fn)(void *ctx,
					const struct store_dataset_version *v);
int store_dataset_versions(struct store *st, const char *name,
			   store_dataset_version_fn fn, void *ctx);

/*
 * store_dataset_files - the files of version row @version_id whose paths
 * start with @prefix ("" for all; "dir/" for a directory's subtree), in
 * path order (bytewise), appended to @out (left as it was on error).
 * Uses an index range, so a directory of a large version costs only its
 * own files. An unknown @version_id has no files (STORE_OK).
 */
int store_dataset_files(struct store *st, int64_t version_id,
			const char *prefix, struct dataset_files *out);

/*
 * store_datastore_paths - the distinct file paths that dataset versions of
 * datastore @datastore_id use, starting with @prefix ("" for all), in
 * path order, each once, to @fn; @fn returning non-zero stops (STORE_OK).
 * What an HTTP datastore's files/ lists, a server having no listing.
 */
typedef int (*store_path_fn)(void *ctx, const char *path);
int store_datastore_paths(struct store *st, int64_t datastore_id,
			  const char *prefix, store_path_fn fn, void *ctx);

/*
 * store_dataset_has_prefix - *found = 1 when version row @version_id has
 * a file whose path starts with @prefix ("dir/": a directory), in one
 * index probe whatever the number of files below it.
 */
int store_dataset_has_prefix(struct store *st, int64_t version_id,
			     const char *prefix, int *found);

/* The file @path of version row @version_id; STORE_NOT_FOUND. */
int store_dataset_file_get(struct store *st, int64_t version_id,
			   const char *path, struct dataset_file *out);

/* ---- local datastores (store/dataset_local.c) ---------------------------- */

/*
 * dataset_local_expand - the files of the local directory @root that
 * @patterns name, with their pins, in path order and once each, appended
 * to @out. A pattern is a relative path: a file, a directory (all the
 * regular files below it), or a glob (fnmatch(3) per segment with
 * FNM_PERIOD; "**" as a whole segment matches any number of
 * directories). Nothing is followed outside @root (openat2 with
 * RESOLVE_BENEATH; symlinks inside are followed only when they stay
 * inside). Only regular files are taken. With @may_read non-NULL, a file
 * or directory @may_read(@ctx, &st) refuses is skipped as if absent.
 * STORE_INVALID (an absolute pattern, "..", empty) with @err naming the
 * pattern; STORE_NOT_FOUND with @err naming the first pattern that
 * matches no file; STORE_TOO_BIG past DATASET_FILES_MAX; STORE_IO.
 * Wildcards ('*', '?', '[...]' and "**") never match a name starting
 * with '.', but a directory taken whole includes its hidden files. A
 * trailing '/' makes a pattern match directories only. A symlink to a
 * directory already on the way down (a loop) is not entered. On error
 * @out is left as it was.
 */
struct stat;
typedef int (*dataset_may_read_fn)(void *ctx, const struct stat *st);
int dataset_local_expand(const char *root, const char *const *patterns,
			 size_t npatterns, dataset_may_read_fn may_read,
			 void *ctx, struct dataset_files *out, char *err,
			 size_t errlen);

/*
 * dataset_local_open - open @f below @root read-only (never outside it)
 * and check it still matches its pin. Returns STORE_OK and *fd,
 * STORE_NOT_FOUND (gone, or it now leads outside @root), STORE_CORRUPT
 * (size or mtime differ, or no longer a regular file; @err says which,
 * e.g. "'a/x.csv' changed since it was registered: size 10 -> 12"),
 * STORE_DENIED (permission), STORE_IO. The pin is checked on the
 * returned descriptor itself.
 */
int dataset_local_open(const char *root, const struct dataset_file *f, int *fd,
		       char *err, size_t errlen);

/*
 * dataset_local_check - whether @fd (opened by dataset_local_open()) still
 * matches @f's pin: STORE_OK, STORE_CORRUPT with @err as above ("...
 * changed since it was registered (while open): size 10 -> 12", or the
 * mtime), STORE_IO.
 */
int dataset_local_check(const struct dataset_file *f, int fd, char *err,
			size_t errlen);

/*
 * dataset_local_copy - put every file of @fl (read below @root) into the
 * workspace's blobs and record its hex in f->blob; each file is checked
 * against its pin while it is read (STORE_CORRUPT when it changed). The
 * caller holds the blob put lock (blob_puts_hold()) until the version is
 * committed. f->blob is filled only on STORE_OK; on failure the blobs
 * already stored are left unreferenced (the mount's sweep removes them)
 * and the caller registers nothing. Errors as dataset_local_open(), and
 * blob_put_fd()'s.
 */
int dataset_local_copy(const char *workspace_dir, const char *root,
		       struct dataset_files *fl, char *err, size_t errlen);

/* ---- HTTP datastores (store/dataset_http.c) ------------------------------ */

/*
 * dataset_http_pin - HEAD each of @paths (literal relative paths: an HTTP
 * server cannot be listed, so a glob character '*', '?' or '[' is
 * STORE_INVALID) below @src and append its pin to @out, in path order
 * and once each. STORE_NOT_FOUND (404/410, @err names the path),
 * STORE_DENIED, STORE_IO, as http_stat(); on error @out is left as it
 * was.
 */
int dataset_http_pin(struct http_source *src, const char *const *paths,
		     size_t npaths, struct dataset_files *out, char *err,
		     size_t errlen);

/*
 * dataset_http_copy - as dataset_local_copy() for an HTTP datastore: each
 * file is read through http_file_open(src, path, its pin, NULL) into a
 * blob temporary, so a change mid-copy is STORE_CORRUPT. f->blob is
 * filled only on STORE_OK, as there.
 */
int dataset_http_copy(const char *workspace_dir, struct http_source *src,
		      struct dataset_files *fl, char *err, size_t errlen);

#endif /* MLFS_DATASETS_H */
