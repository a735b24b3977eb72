/*
 * blob.c - the content-addressed blob store (contract: mlfs/blob.h).
 *
 * A put goes through these states, each named for the function that
 * makes the transition:
 *
 *   (nothing) --tmp_create()--> TEMP: an unnamed O_TMPFILE in blobs/, or
 *       blobs/tmp/.tmp-PID-RANDOM where O_TMPFILE is unsupported (or the
 *       test seam forces it)
 *   TEMP --copy()--> FILLED: every byte read from the source was hashed
 *       and written, by a pipeline of two threads (below)
 *   FILLED --blob_check_existing()--> DISCARDED when blobs/AB/CDEF...
 *       exists already (no fsync spent on a copy we throw away)
 *   FILLED --fchmod 0444, fsync--> DURABLE
 *   DURABLE --tmp_publish()--> PUBLISHED: linked (O_TMPFILE) or renamed
 *       without replacing (named) to blobs/AB/CDEF..., directory fsynced;
 *       or, when that name exists, DISCARDED: same content, existed = 1
 *
 * Invariants
 *  1. A final name is only ever given to a DURABLE file whose bytes hash
 *     to that name: the hash is taken of the very buffers that are
 *     written, so a source changing under us cannot make a lie.
 *  2. No final name is ever replaced: linkat and RENAME_NOREPLACE fail
 *     with EEXIST, which means the content is there already.
 *  3. A crash in TEMP or FILLED leaves nothing (O_TMPFILE) or a named
 *     temporary holding a dead pid, which blob_cleanup() removes.
 *
 * The copy pipeline: the calling thread reads CHUNK-sized buffers from
 * the source and hashes them; a writer thread writes them to the
 * temporary, asking the kernel every WRITEBACK_EVERY bytes to start
 * writing back (sync_file_range), so the final fsync has little left to
 * do. sha256 is the slowest stage (about 1.6 GB/s with SHA-NI), so on two
 * cores a put costs about one hashing pass plus the fsync tail. NBUF
 * buffers circulate; the reader only fills a buffer the writer is done
 * with (produced - consumed < NBUF).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlfs/blob.h"
#include "snapshot_internal.h"

#define CHUNK (1u << 20)
#define NBUF 4
#define WRITEBACK_EVERY (32ull << 20)
#define KCOPY_STEP (8u << 20)
#define TMP_DIR "tmp"
#define TMP_PREFIX ".tmp-"

/* strerror(@e) with its first letter lowercased, as messages want it */
#define ERRSTR(e) lc_strerror((e), (char[96]){ 0 }, 96)

static const char *lc_strerror(int e, char *buf, size_t len)
{
	snprintf(buf, len, "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

static atomic_int force_named_tmp;

void blob_test_force_named_tmp(int on)
{
	atomic_store(&force_named_tmp, on != 0);
}

static int hex_is_valid(const char *hex)
{
	size_t i;

	for (i = 0; hex && i < BLOB_HEX_LEN; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') ||
		      (hex[i] >= 'a' && hex[i] <= 'f')))
			return 0;
	return hex && hex[i] == '\0';
}

int blob_path(const char *workspace_dir, const char *hex, char *buf,
	      size_t len)
{
	int n;

	if (!hex_is_valid(hex))
		return STORE_INVALID;
	n = snprintf(buf, len, "%s/blobs/%.2s/%s", workspace_dir, hex, hex + 2);
	return n < 0 || (size_t)n >= len ? STORE_TOO_BIG : STORE_OK;
}

/* mkdirat that accepts an existing directory; 1 if made, 0, or -errno. */
static int mkdir_at(int dfd, const char *name)
{
	if (mkdirat(dfd, name, 0755) == 0)
		return 1;
	return errno == EEXIST ? 0 : -errno;
}

/*
 * Opens WORKSPACE/blobs (made if missing and @create; the workspace
 * directory is fsynced then). A descriptor or -errno.
 */
static int open_blobs(const char *workspace_dir, int create)
{
	int ws_fd, fd, made = 0;

	ws_fd = open(workspace_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ws_fd < 0)
		return -errno;
	if (create && (made = mkdir_at(ws_fd, "blobs")) < 0)
		goto out_close;
	if (made == 1 && fsync(ws_fd) < 0) {
		made = -errno;
		goto out_close;
	}
	fd = openat(ws_fd, "blobs", O_RDONLY | O_DIRECTORY | O_CLOEXEC |
				    O_NOFOLLOW);
	made = fd < 0 ? -errno : fd;
out_close:
	close(ws_fd);
	return made;
}

/* ---- the temporary file ----------------------------------------------------- */

/* The temporary file is a struct blob_tmp (blob.h): its name is
 * "tmp/.tmp-PID-RANDOM" below blobs/, or "" when unnamed. */

/* Makes the temporary file below @blobs_fd: 0 or -errno. */
static int tmp_create(int blobs_fd, struct blob_tmp *t)
{
	uint64_t rnd;
	int rc;

	t->name[0] = '\0';
	if (!atomic_load(&force_named_tmp)) {
		t->fd = openat(blobs_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC,
			       0444);
		if (t->fd >= 0)
			return 0;
		if (errno != EOPNOTSUPP && errno != EISDIR)
			return -errno;
	}
	if ((rc = mkdir_at(blobs_fd, TMP_DIR)) < 0)
		return rc;
	for (int tries = 0; tries < 8; tries++) {
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			return -EIO;
		snprintf(t->name, sizeof(t->name), TMP_DIR "/" TMP_PREFIX "%ld-%016llx",
			 (long)getpid(), (unsigned long long)rnd);
		t->fd = openat(blobs_fd, t->name, O_RDWR | O_CREAT | O_EXCL |
						  O_CLOEXEC | O_NOFOLLOW, 0444);
		if (t->fd >= 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	rc = -errno;
	t->name[0] = '\0';
	return rc;
}

/* Closes @t; a named temporary is unlinked unless it was published. */
static void tmp_discard(int blobs_fd, struct blob_tmp *t)
{
	if (t->name[0])
		unlinkat(blobs_fd, t->name, 0);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->name[0] = '\0';
}

/*
 * Gives the durable temporary @t the final name of @hex, never replacing.
 * 0 (t->name cleared: nothing left to unlink), 1 when the name exists
 * already (@t untouched), or -errno.
 */
static int tmp_publish(int blobs_fd, struct blob_tmp *t, const char *hex)
{
	char dir[3] = { hex[0], hex[1], '\0' };
	char proc[64];
	int dfd, made, rc = 0;

	if ((made = mkdir_at(blobs_fd, dir)) < 0)
		return made;
	if (made && fsync(blobs_fd) < 0)
		return -errno;
	dfd = openat(blobs_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
				    O_NOFOLLOW);
	if (dfd < 0)
		return -errno;
	if (!t->name[0]) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", t->fd);
		if (linkat(AT_FDCWD, proc, dfd, hex + 2, AT_SYMLINK_FOLLOW) < 0)
			rc = -errno;
	} else if (renameat2(blobs_fd, t->name, dfd, hex + 2,
			     RENAME_NOREPLACE) == 0) {
		t->name[0] = '\0';
	} else if (errno != EINVAL) {
		rc = -errno;
	} else if (linkat(blobs_fd, t->name, dfd, hex + 2, 0) < 0) {
		rc = -errno;	/* no RENAME_NOREPLACE here: link + unlink */
	} else {
		unlinkat(blobs_fd, t->name, 0);
		t->name[0] = '\0';
	}
	if (rc == -EEXIST)
		rc = 1;
	else if (rc == 0 && fsync(dfd) < 0)
		rc = -errno;
	close(dfd);
	return rc;
}

/* ---- the copy pipeline ------------------------------------------------------ */

struct pipeline {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned char *buf[NBUF];
	size_t len[NBUF];
	uint64_t produced, consumed;	/* buffers handed over / written */
	int done;			/* the reader has no more */
	int werr;			/* the writer's -errno, sticky */
	int out_fd;
};

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static void *writer_main(void *arg)
{
	struct pipeline *pl = arg;
	uint64_t off = 0, started = 0;
	int rc = 0;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&pl->mu);
		while (pl->consumed == pl->produced && !pl->done)
			pthread_cond_wait(&pl->cv, &pl->mu);
		if (pl->consumed == pl->produced) {
			pthread_mutex_unlock(&pl->mu);
			break;
		}
		i = pl->consumed % NBUF;
		pthread_mutex_unlock(&pl->mu);

		rc = write_all(pl->out_fd, pl->buf[i], pl->len[i]);
		off += pl->len[i];
		if (rc == 0 && off - started >= WRITEBACK_EVERY) {
			/* a hint: start writeback now, fsync waits later */
			sync_file_range(pl->out_fd, (off64_t)started,
					(off64_t)(off - started),
					SYNC_FILE_RANGE_WRITE);
			started = off;
		}

		pthread_mutex_lock(&pl->mu);
		pl->consumed++;
		if (rc < 0)
			pl->werr = rc;
		pthread_cond_broadcast(&pl->cv);
		pthread_mutex_unlock(&pl->mu);
		if (rc < 0)
			break;
	}
	return NULL;
}

/* Reads up to CHUNK bytes into @buf; the count (0 at EOF) or -errno. */
static ssize_t read_chunk(int fd, unsigned char *buf)
{
	size_t len = 0;

	while (len < CHUNK) {
		ssize_t r = read(fd, buf + len, CHUNK - len);

		if (r == 0)
			break;
		if (r > 0) {
			len += (size_t)r;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {	/* a non-blocking pipe or socket */
			struct pollfd p = { .fd = fd, .events = POLLIN };

			if (poll(&p, 1, -1) >= 0 || errno == EINTR)
				continue;
		}
		return -errno;
	}
	return (ssize_t)len;
}

/*
 * Copies @in to @out from @in's offset to EOF, hashing the bytes into
 * @md and counting them into *size. 0, -errno of a read (*rerr = 1) or of
 * a write (*rerr = 0).
 */
static int copy(int in, int out, EVP_MD_CTX *md, uint64_t *size, int *rerr)
{
	struct pipeline pl = { .out_fd = out };
	pthread_t writer;
	int rc = 0, started = 0;

	*size = 0;
	*rerr = 0;
	for (int i = 0; i < NBUF; i++)
		if (!(pl.buf[i] = malloc(CHUNK))) {
			rc = -ENOMEM;
			goto out_free;
		}
	if (pthread_mutex_init(&pl.mu, NULL) != 0) {
		rc = -ENOMEM;
		goto out_free;
	}
	if (pthread_cond_init(&pl.cv, NULL) != 0) {
		rc = -ENOMEM;
		goto out_mutex;
	}
	if (pthread_create(&writer, NULL, writer_main, &pl) != 0) {
		rc = -ENOMEM;
		goto out_cond;
	}
	started = 1;
	for (;;) {
		size_t i;
		ssize_t n;

		pthread_mutex_lock(&pl.mu);
		while (pl.produced - pl.consumed == NBUF && !pl.werr)
			pthread_cond_wait(&pl.cv, &pl.mu);
		rc = pl.werr;
		i = pl.produced % NBUF;
		pthread_mutex_unlock(&pl.mu);
		if (rc < 0)
			break;

		n = read_chunk(in, pl.buf[i]);
		if (n < 0) {
			rc = (int)n;
			*rerr = 1;
			break;
		}
		if (n == 0)
			break;
		if (!EVP_DigestUpdate(md, pl.buf[i], (size_t)n)) {
			rc = -ENOMEM;
			break;
		}
		*size += (uint64_t)n;

		pthread_mutex_lock(&pl.mu);
		pl.len[i] = (size_t)n;
		pl.produced++;
		pthread_cond_broadcast(&pl.cv);
		pthread_mutex_unlock(&pl.mu);
	}
	pthread_mutex_lock(&pl.mu);
	pl.done = 1;
	pthread_cond_broadcast(&pl.cv);
	pthread_mutex_unlock(&pl.mu);
	if (started)
		pthread_join(writer, NULL);
	if (rc == 0)
		rc = pl.werr;	/* the writer's last buffers */
out_cond:
	pthread_cond_destroy(&pl.cv);
out_mutex:
	pthread_mutex_destroy(&pl.mu);
out_free:
	for (int i = 0; i < NBUF; i++)
		free(pl.buf[i]);
	return rc;
}

/*
 * The kernel-copy pipeline, for a regular source: a copier thread moves
 * the bytes with copy_file_range() (no trip through user space: as fast
 * as cp), while the calling thread reads them back from the temporary,
 * where they sit in the page cache, and hashes them. Hashing what the
 * temporary holds, not the source, keeps invariant 1.
 */
struct kcopy {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t copied;	/* bytes in the temporary */
	int done;		/* the copier stopped (EOF or error) */
	int err;		/* the copier's -errno */
	int hash_err;		/* the hasher gave up: the copier stops */
	int in, out;
};

static void *copier_main(void *arg)
{
	struct kcopy *kc = arg;
	uint64_t started = 0;
	int rc = 0;

	for (;;) {
		ssize_t n = copy_file_range(kc->in, NULL, kc->out, NULL,
					    KCOPY_STEP, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		pthread_mutex_lock(&kc->mu);
		if (n > 0)
			kc->copied += (uint64_t)n;
		if (n <= 0 || kc->hash_err) {
			kc->done = 1;
			kc->err = rc;
		}
		n = kc->done ? -1 : n;
		pthread_cond_broadcast(&kc->cv);
		pthread_mutex_unlock(&kc->mu);
		if (n < 0)
			break;
		if (kc->copied - started >= WRITEBACK_EVERY) {
			sync_file_range(kc->out, (off64_t)started,
					(off64_t)(kc->copied - started),
					SYNC_FILE_RANGE_WRITE);
			started = kc->copied;
		}
	}
	return NULL;
}

/*
 * copy() through copy_file_range. 0, 1 when the kernel cannot copy
 * between these files (nothing was copied; use copy()), or -errno as
 * copy() gives it.
 */
static int copy_kernel(int in, int out, EVP_MD_CTX *md, uint64_t *size,
		       int *rerr)
{
	struct kcopy kc = { .in = in, .out = out };
	unsigned char *buf;
	uint64_t hashed = 0;
	pthread_t copier;
	int rc = 0;

	*size = 0;
	*rerr = 0;
	if (!(buf = malloc(CHUNK)))
		return -ENOMEM;
	if (pthread_mutex_init(&kc.mu, NULL) != 0) {
		rc = -ENOMEM;
		goto out_free;
	}
	if (pthread_cond_init(&kc.cv, NULL) != 0) {
		rc = -ENOMEM;
		goto out_mutex;
	}
	if (pthread_create(&copier, NULL, copier_main, &kc) != 0) {
		rc = -ENOMEM;
		goto out_cond;
	}
	for (;;) {
		uint64_t avail;
		ssize_t n;

		pthread_mutex_lock(&kc.mu);
		while (kc.copied == hashed && !kc.done)
			pthread_cond_wait(&kc.cv, &kc.mu);
		avail = kc.copied - hashed;
		pthread_mutex_unlock(&kc.mu);
		if (avail == 0)
			break;
		n = pread(out, buf, avail < CHUNK ? (size_t)avail : CHUNK,
			  (off_t)hashed);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || !EVP_DigestUpdate(md, buf, (size_t)n)) {
			rc = n < 0 ? -errno : n == 0 ? -EIO : -ENOMEM;
			break;
		}
		hashed += (uint64_t)n;
	}
	pthread_mutex_lock(&kc.mu);
	kc.hash_err = rc < 0;
	pthread_mutex_unlock(&kc.mu);
	pthread_join(copier, NULL);
	if (rc == 0 && kc.err < 0) {
		rc = kc.err;
		if (kc.copied == 0 &&
		    (rc == -EXDEV || rc == -EINVAL || rc == -ENOSYS ||
		     rc == -EOPNOTSUPP || rc == -EBADF))
			rc = 1;
		else
			*rerr = 1;	/* cannot tell which side: say read */
	}
	*size = hashed;
out_cond:
	pthread_cond_destroy(&kc.cv);
out_mutex:
	pthread_mutex_destroy(&kc.mu);
out_free:
	free(buf);
	return rc;
}

/* ---- puts ------------------------------------------------------------------- */

/*
 * 1 if blob @ref->hex exists as a regular file of @ref->size bytes, 0 if
 * it does not exist, STORE_CORRUPT (with a message) if it is something
 * else.
 */
static int blob_check_existing(int blobs_fd, const struct blob_ref *ref,
			       char *err, size_t errlen)
{
	char rel[BLOB_HEX_LEN + 2];	/* "ab/cdef..." */
	struct stat st;

	memcpy(rel, ref->hex, 2);
	rel[2] = '/';
	memcpy(rel + 3, ref->hex + 2, BLOB_HEX_LEN - 2 + 1);
	if (fstatat(blobs_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : snap_err(err, errlen, STORE_IO,
			"cannot check blob '%s': %s", ref->hex, ERRSTR(errno));
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != ref->size)
		return snap_err(err, errlen, STORE_CORRUPT,
				"cannot reuse blob '%s': it is not a regular "
				"file of %llu bytes", ref->hex,
				(unsigned long long)ref->size);
	return 1;
}

/*
 * The end of every put: @t holds @ref->size bytes whose sha256 is
 * @ref->hex. Unless that blob is stored already (ref->existed = 1, @t is
 * thrown away unsynced), makes @t durable and gives it its final name.
 * STORE_OK, or a code with a message.
 */
static int finish_put(const char *workspace_dir, int blobs_fd,
		      struct blob_tmp *t, struct blob_ref *ref, char *err,
		      size_t errlen)
{
	int rc = blob_check_existing(blobs_fd, ref, err, errlen);

	if (rc < 0)
		return rc;
	/* already stored? then skip the fsync: ours is thrown away */
	if (rc == 0 && (fchmod(t->fd, 0444) < 0 || fsync(t->fd) < 0))
		return snap_err(err, errlen, STORE_IO,
				"cannot write blob in '%s/blobs': %s",
				workspace_dir, ERRSTR(errno));
	ref->existed = rc == 1;
	/* publish; if the name is taken, check what took it. It can vanish
	 * again (a racing blob_remove): then try once more. */
	for (int tries = 0; !ref->existed && tries < 3; tries++) {
		rc = tmp_publish(blobs_fd, t, ref->hex);
		if (rc < 0)
			return snap_err(err, errlen, STORE_IO,
					"cannot publish blob '%s': %s",
					ref->hex, ERRSTR(-rc));
		if (rc == 0)
			return STORE_OK;
		rc = blob_check_existing(blobs_fd, ref, err, errlen);
		if (rc < 0)
			return rc;
		ref->existed = rc == 1;
	}
	if (!ref->existed)
		return snap_err(err, errlen, STORE_IO, "cannot publish blob "
				"'%s': it keeps being removed", ref->hex);
	return STORE_OK;
}

/* blob_put_fd() of @fd, named @what in messages. */
static int put_fd(const char *workspace_dir, int fd, const char *what,
		  struct blob_ref *out, char *err, size_t errlen)
{
	struct blob_tmp t = { .fd = -1 };
	unsigned char sha[EVP_MAX_MD_SIZE];
	struct blob_ref ref = { .existed = 0 };
	unsigned int shalen = 0;
	EVP_MD_CTX *md;
	struct stat st;
	int blobs_fd, rerr, rc;

	if (fstat(fd, &st) < 0)
		return snap_err(err, errlen, STORE_INVALID, "cannot read '%s': %s",
				what, ERRSTR(errno));
	if (S_ISDIR(st.st_mode))
		return snap_err(err, errlen, STORE_INVALID,
				"cannot store '%s': is a directory", what);
	md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		rc = snap_err(err, errlen, STORE_NOMEM,
			      "cannot start sha256: out of memory");
		goto out_md;
	}
	blobs_fd = open_blobs(workspace_dir, 1);
	if (blobs_fd < 0) {
		rc = snap_err(err, errlen, STORE_IO,
			      "cannot open blob store '%s/blobs': %s",
			      workspace_dir, ERRSTR(-blobs_fd));
		goto out_md;
	}
	rc = tmp_create(blobs_fd, &t);
	if (rc < 0) {
		rc = snap_err(err, errlen, STORE_IO,
			      "cannot create temporary file in '%s/blobs': %s",
			      workspace_dir, ERRSTR(-rc));
		goto out_blobs;
	}

	rc = S_ISREG(st.st_mode) ? copy_kernel(fd, t.fd, md, &ref.size, &rerr)
				 : 1;
	if (rc == 1)
		rc = copy(fd, t.fd, md, &ref.size, &rerr);
	if (rc == -ENOMEM) {
		rc = snap_err(err, errlen, STORE_NOMEM,
			      "cannot store '%s': out of memory", what);
		goto out_tmp;
	}
	if (rc < 0) {
		rc = rerr ? snap_err(err, errlen, STORE_IO, "cannot read '%s': %s",
				     what, ERRSTR(-rc))
			  : snap_err(err, errlen, STORE_IO,
				     "cannot write blob in '%s/blobs': %s",
				     workspace_dir, ERRSTR(-rc));
		goto out_tmp;
	}
	if (!EVP_DigestFinal_ex(md, sha, &shalen) || shalen != 32) {
		rc = snap_err(err, errlen, STORE_NOMEM,
			      "cannot finish sha256 of '%s'", what);
		goto out_tmp;
	}
	hex_encode(sha, 32, ref.hex);

	rc = finish_put(workspace_dir, blobs_fd, &t, &ref, err, errlen);
	if (rc != STORE_OK)
		goto out_tmp;
	*out = ref;
out_tmp:
	tmp_discard(blobs_fd, &t);
out_blobs:
	close(blobs_fd);
out_md:
	EVP_MD_CTX_free(md);
	return rc;
}

int blob_put_fd(const char *workspace_dir, int fd, struct blob_ref *out,
		char *err, size_t errlen)
{
	char what[32];

	snprintf(what, sizeof(what), "fd %d", fd);
	return put_fd(workspace_dir, fd, what, out, err, errlen);
}

static int open_errno_rc(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return STORE_NOT_FOUND;
	case EACCES:
	case EPERM:
		return STORE_DENIED;
	case ELOOP:
		return STORE_INVALID;
	default:
		return STORE_IO;
	}
}

int blob_put_path(const char *workspace_dir, const char *path,
		  struct blob_ref *out, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return snap_err(err, errlen, open_errno_rc(errno),
				"cannot read '%s': %s", path, ERRSTR(errno));
	if (!S_ISREG(st.st_mode))
		return snap_err(err, errlen, STORE_INVALID,
				"cannot store '%s': not a regular file", path);
	/* O_NONBLOCK: if it became a fifo since lstat, do not hang */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return snap_err(err, errlen, open_errno_rc(errno),
				"cannot read '%s': %s", path, ERRSTR(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = snap_err(err, errlen, STORE_INVALID,
			      "cannot store '%s': not a regular file", path);
		goto out_close;
	}
	rc = put_fd(workspace_dir, fd, path, out, err, errlen);
out_close:
	close(fd);
	return rc;
}

/* ---- reading and removing ------------------------------------------------------- */

/* ---- a temporary written by the caller ------------------------------------- */

int blob_tmp_open(const char *workspace_dir, struct blob_tmp *t)
{
	int blobs_fd = open_blobs(workspace_dir, 1);
	int rc;

	t->fd = -1;
	t->name[0] = '\0';
	if (blobs_fd < 0)
		return STORE_IO;
	rc = tmp_create(blobs_fd, t);
	close(blobs_fd);
	return rc < 0 ? STORE_IO : STORE_OK;
}

void blob_tmp_discard(const char *workspace_dir, struct blob_tmp *t)
{
	int blobs_fd = open_blobs(workspace_dir, 0);

	tmp_discard(blobs_fd, t);	/* unnamed: the close is all */
	if (blobs_fd >= 0)
		close(blobs_fd);
}

/* sha256 of @fd's bytes from offset 0 to its end into @ref. */
static int hash_fd(int fd, struct blob_ref *ref, char *err, size_t errlen)
{
	unsigned char sha[EVP_MAX_MD_SIZE];
	unsigned int shalen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *buf = malloc(CHUNK);
	uint64_t off = 0;
	ssize_t n = 0;
	int rc = STORE_NOMEM;

	if (!md || !buf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		goto out;
	while ((n = pread(fd, buf, CHUNK, (off_t)off)) > 0) {
		if (!EVP_DigestUpdate(md, buf, (size_t)n))
			goto out;
		off += (uint64_t)n;
	}
	if (n < 0) {
		rc = snap_err(err, errlen, STORE_IO, "cannot read a temporary "
			      "blob: %s", ERRSTR(errno));
		goto out;
	}
	if (!EVP_DigestFinal_ex(md, sha, &shalen) || shalen != 32)
		goto out;
	hex_encode(sha, 32, ref->hex);
	ref->size = off;
	rc = STORE_OK;
out:
	free(buf);
	EVP_MD_CTX_free(md);
	return rc;
}

int blob_tmp_adopt(const char *workspace_dir, struct blob_tmp *t,
		   struct blob_ref *out, char *err, size_t errlen)
{
	struct blob_ref ref = { .existed = 0 };
	int blobs_fd = open_blobs(workspace_dir, 1);
	int rc;

	if (blobs_fd < 0)
		return snap_err(err, errlen, STORE_IO,
				"cannot open blob store '%s/blobs': %s",
				workspace_dir, ERRSTR(-blobs_fd));
	rc = hash_fd(t->fd, &ref, err, errlen);
	if (rc == STORE_OK)
		rc = finish_put(workspace_dir, blobs_fd, t, &ref, err, errlen);
	if (rc == STORE_OK)
		*out = ref;
	tmp_discard(blobs_fd, t);
	close(blobs_fd);
	return rc;
}

int blob_open(const char *workspace_dir, const char *hex, int *fd)
{
	char path[PATH_MAX];
	int rc = blob_path(workspace_dir, hex, path, sizeof(path));
	int f;

	if (rc != STORE_OK)
		return rc;
	f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0)
		return errno == ENOENT || errno == ENOTDIR ? STORE_NOT_FOUND
							   : STORE_IO;
	*fd = f;
	return STORE_OK;
}

int blob_remove(const char *workspace_dir, const char *hex)
{
	char path[PATH_MAX];
	char *slash;
	int rc = blob_path(workspace_dir, hex, path, sizeof(path));

	if (rc != STORE_OK)
		return rc;
	if (unlink(path) < 0)
		return errno == ENOENT || errno == ENOTDIR ? STORE_OK : STORE_IO;
	slash = strrchr(path, '/');
	*slash = '\0';
	return fsync_dir(path) < 0 ? STORE_IO : STORE_OK;
}

/* ---- the put lock ----------------------------------------------------------- */

#define PUTS_LOCK ".puts"

static int puts_lock(const char *workspace_dir, int how, int *fd)
{
	int blobs_fd = open_blobs(workspace_dir, 1);
	int lfd, rc = STORE_IO;

	if (blobs_fd < 0)
		return STORE_IO;
	lfd = openat(blobs_fd, PUTS_LOCK, O_RDONLY | O_CREAT | O_CLOEXEC |
			O_NOFOLLOW, 0644);
	close(blobs_fd);
	if (lfd < 0)
		return STORE_IO;
	while (flock(lfd, how) < 0) {
		if (errno == EINTR)
			continue;
		rc = errno == EWOULDBLOCK ? STORE_IN_USE : STORE_IO;
		close(lfd);
		return rc;
	}
	*fd = lfd;
	return STORE_OK;
}

int blob_puts_hold(const char *workspace_dir, int *fd)
{
	return puts_lock(workspace_dir, LOCK_SH, fd);
}

int blob_puts_quiet(const char *workspace_dir, int *fd)
{
	return puts_lock(workspace_dir, LOCK_EX | LOCK_NB, fd);
}

int blob_puts_exclusive(const char *workspace_dir, int *fd)
{
	return puts_lock(workspace_dir, LOCK_EX, fd);
}

void blob_puts_release(int fd)
{
	if (fd >= 0)
		close(fd);	/* the lock goes with the last descriptor */
}

/* 1 if @name is TMP_PREFIX PID "-" ... of a process that no longer runs. */
static int tmp_is_stale(const char *name)
{
	char proc[32];
	char *end;
	long pid;

	if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0)
		return 0;
	errno = 0;
	pid = strtol(name + strlen(TMP_PREFIX), &end, 10);
	if (errno || end == name + strlen(TMP_PREFIX) || *end != '-' ||
	    pid <= 0 || pid > INT_MAX || pid == (long)getpid())
		return 0;
	snprintf(proc, sizeof(proc), "/proc/%ld", pid);
	if (access("/proc/self", F_OK) == 0)
		return access(proc, F_OK) < 0 && errno == ENOENT;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;	/* no /proc */
}

int blob_cleanup(const char *workspace_dir, int *removed)
{
	struct dirent *de;
	DIR *d;
	int blobs_fd, tfd, n = 0;

	if (removed)
		*removed = 0;
	blobs_fd = open_blobs(workspace_dir, 0);
	if (blobs_fd < 0)
		return blobs_fd == -ENOENT ? STORE_OK : STORE_IO;
	tfd = openat(blobs_fd, TMP_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
					O_NOFOLLOW);
	close(blobs_fd);
	if (tfd < 0)
		return errno == ENOENT ? STORE_OK : STORE_IO;
	d = fdopendir(tfd);
	if (!d) {
		close(tfd);
		return STORE_IO;
	}
	while ((de = readdir(d)))
		if (tmp_is_stale(de->d_name) &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	closedir(d);
	if (removed)
		*removed = n;
	return STORE_OK;
}
