/*
 * blob.h - the workspace's content-addressed blob store: immutable files
 * named by the sha256 of their bytes, under WORKSPACE/blobs/. The model
 * registry keeps its version files here; it counts references in its
 * database, this module only stores, opens and removes files.
 *
 * Invariants
 *  - A blob lives at WORKSPACE/blobs/AB/CDEF... where ABCDEF... is the
 *    lowercase hex sha256 of its bytes (BLOB_HEX_LEN digits; the first two
 *    name the directory). A file under a final name is always complete:
 *    bytes are written to a temporary file, hashed as they are written,
 *    fsynced, and only then given their final name, without replacing
 *    anything. Its directory is fsynced after.
 *  - The temporary file is an unnamed O_TMPFILE in blobs/ where the
 *    filesystem supports it (published with linkat of /proc/self/fd/N): a
 *    crash then leaves nothing at all. Elsewhere it is a named file
 *    blobs/tmp/.tmp-PID-RANDOM (published with renameat2 RENAME_NOREPLACE)
 *    and blob_cleanup() removes those of processes that are gone.
 *  - Identical content is stored once: when the final name exists, the
 *    new copy is discarded and the put reports existed = 1.
 *  - Blob files have mode 0444 and never change; directories are created
 *    (0755) as needed. Nothing here touches SQL.
 *
 * Results
 *  Functions return STORE_OK (0) or a negative STORE_* code from store.h.
 *  Where a function takes @err/@errlen (@err may be NULL), a failure
 *  writes a message there: lowercase, failure first, subject quoted, e.g.
 *  "cannot read '/x': permission denied". Out-parameters are filled only
 *  on STORE_OK.
 *
 * Threads
 *  No shared state but the test seam below: any number of calls may run
 *  at once, in any threads and processes, on the same workspace. Two puts
 *  of the same content both return STORE_OK; one stores it, the other
 *  reports existed = 1. A put runs one helper thread of its own (the
 *  writer) for its duration; it does not touch signals.
 */
#ifndef MLFS_BLOB_H
#define MLFS_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "mlfs/store.h"

#define BLOB_HEX_LEN 64		/* lowercase hex digits of a sha256 */

struct blob_ref {
	char hex[BLOB_HEX_LEN + 1];	/* NUL-terminated */
	uint64_t size;			/* bytes */
	int existed;			/* 1: the content was already stored */
};

/*
 * blob_put_fd - store the bytes of @fd, from its current offset to end of
 * file, as a blob of the workspace in directory @workspace_dir, and fill
 * @out.
 *
 * @fd may be a regular file, a pipe or a socket; it is read with read(),
 * so its offset ends at EOF. The bytes are hashed as they are copied and
 * the hash names exactly the bytes written, even if the source changes
 * meanwhile. @fd stays open and owned by the caller.
 *
 * Returns STORE_OK and *out, or
 *   STORE_INVALID  @fd is not open, or is a directory
 *   STORE_CORRUPT  a blob of this hash exists with another size (it was
 *                  tampered with; blob_remove() it and put again)
 *   STORE_IO       reading @fd or writing the store failed (disk full,
 *                  ...)
 *   STORE_NOMEM    no memory or no thread for the writer
 * On failure no blob was made under a final name; an unnamed temporary
 * file vanishes with its descriptor, a named one is removed (or left for
 * blob_cleanup() if the process dies).
 */
int blob_put_fd(const char *workspace_dir, int fd, struct blob_ref *out,
		char *err, size_t errlen);

/*
 * blob_put_path - blob_put_fd() of the regular file @path.
 *
 * A final symlink is not followed (symlinks in the directories above are).
 * The file type is checked before it is opened, so a fifo or a device is
 * never opened. Returns as blob_put_fd(), and
 *   STORE_NOT_FOUND  @path does not exist
 *   STORE_DENIED     @path cannot be read (permission)
 *   STORE_INVALID    @path is a symlink, a directory or anything else
 *                    not a regular file
 */
int blob_put_path(const char *workspace_dir, const char *path,
		  struct blob_ref *out, char *err, size_t errlen);

/*
 * A blob written by the caller in place, so its bytes are not copied
 * again: a file dropped into the mount is written straight into one.
 *
 * blob_tmp_open - a new empty temporary file in the blob store, open
 * read-write in t->fd (unnamed where the filesystem allows, else a named
 * one blob_cleanup() finds if the process dies). STORE_OK or STORE_IO.
 * blob_tmp_adopt - make the bytes of @t, offset 0 to its end, a blob: hash
 * them (one read), fsync, give the final name. @t is consumed either way
 * (closed; a named temporary removed). Returns as blob_put_fd().
 * blob_tmp_discard - close and remove @t without storing it.
 */
struct blob_tmp {
	int fd;
	char name[64];	/* private: a named temporary's path, or "" */
};
int blob_tmp_open(const char *workspace_dir, struct blob_tmp *t);
int blob_tmp_adopt(const char *workspace_dir, struct blob_tmp *t,
		   struct blob_ref *out, char *err, size_t errlen);
void blob_tmp_discard(const char *workspace_dir, struct blob_tmp *t);

/*
 * blob_path - write WORKSPACE/blobs/AB/CDEF... for @hex into @buf of @len
 * bytes. STORE_INVALID when @hex is not BLOB_HEX_LEN lowercase hex
 * digits, STORE_TOO_BIG when the path does not fit. Does not check that
 * the blob exists.
 */
int blob_path(const char *workspace_dir, const char *hex, char *buf,
	      size_t len);

/*
 * blob_open - open blob @hex read-only (O_RDONLY | O_CLOEXEC, never
 * following a symlink) into *fd, which the caller closes. pread() and
 * mmap() work on it. STORE_INVALID (malformed @hex), STORE_NOT_FOUND,
 * STORE_IO.
 */
int blob_open(const char *workspace_dir, const char *hex, int *fd);

/*
 * blob_remove - delete blob @hex and fsync its directory. Open
 * descriptors of it keep working. STORE_OK also when it is absent;
 * STORE_INVALID (malformed @hex), STORE_IO. Callers make sure no version
 * uses the blob any more: nothing here counts references.
 */
int blob_remove(const char *workspace_dir, const char *hex);

/*
 * blob_cleanup - at mount: remove named temporary files (blobs/tmp/)
 * left by processes that died in the middle of a put, and set *removed
 * (may be NULL) to how many. The temporaries of this process and of any
 * running process are kept (a pid is running while /proc/PID exists, so
 * it needs the same pid namespace as the writers; a reused pid only
 * delays the removal). STORE_OK also without a blobs/ directory, or
 * STORE_IO when blobs/tmp/ cannot be read.
 */
int blob_cleanup(const char *workspace_dir, int *removed);

/*
 * Unreferenced blobs. Between a put and the commit of the row that refers
 * to it, a blob has no reference; a process killed in between leaves it
 * orphaned for good. A sweeper must tell those from blobs another process
 * is about to refer to: every such window is held open with a shared
 * flock(2) on WORKSPACE/blobs/.puts, which the kernel drops with a dead
 * process.
 *
 * blob_puts_hold - take the shared lock (waiting while a sweep holds it
 * exclusively) into *fd, made with the file if missing. STORE_OK, or
 * STORE_IO.
 * blob_puts_release - drop it (@fd < 0 is a no-op).
 * blob_puts_quiet - take it exclusively without waiting: STORE_OK and *fd
 * when no put window is open in any process, so every unreferenced blob is
 * an orphan until blob_puts_release(*fd); STORE_IN_USE when one is open;
 * STORE_IO.
 * blob_puts_exclusive - the same, waiting for open windows to close: for
 * removing the blobs of a deleted version, which a put in another process
 * may have just found stored ("existed") and be about to refer to.
 */
int blob_puts_hold(const char *workspace_dir, int *fd);
void blob_puts_release(int fd);
int blob_puts_quiet(const char *workspace_dir, int *fd);
int blob_puts_exclusive(const char *workspace_dir, int *fd);

/* ---- for tests ------------------------------------------------------------ */

/*
 * blob_test_force_named_tmp - with @on non-zero, puts in this process
 * skip O_TMPFILE and use the named-temporary fallback, as on a filesystem
 * without O_TMPFILE. Tests use it to exercise the fallback and
 * blob_cleanup(); nothing else should call it. Thread-safe (atomic).
 */
void blob_test_force_named_tmp(int on);

#endif /* MLFS_BLOB_H */
