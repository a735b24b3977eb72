/*
 * snapshot.c - building snapshots (finding them: snapshot_meta.c).
 *
 * A build goes through these steps, each named for the function doing it:
 *
 *  1. walk_dir():   depth-first walk of the source with openat/fdopendir,
 *                   never following a symlink, applying ignore rules.
 *                   Each regular file is hashed as it is met, unless the
 *                   stat cache knows it (statcache.c) or a limit is
 *                   already exceeded (then only sizes are counted, so the
 *                   message can tell the real size).
 *  2. limits:       over a limit -> STORE_TOO_BIG; nothing written yet.
 *  3. manifest_id(): the items sorted by path, the manifest hashed: the id.
 *  4. the stat cache is saved (also when the snapshot exists already).
 *  5. ID.zip exists -> reused. Else zip_write() writes .tmp-PID-ID.zip
 *     with libzip, reading each file again (through open_beneath) and
 *     checking its bytes still hash as in step 1; fsync; rename without
 *     replacing (a concurrent build of the same content may have won).
 *  6. json_write(): ID.json the same way. The snapshot now exists.
 *
 * Temporary names start with ".tmp-PID-"; clean_stale() removes those of
 * processes that are gone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/openat2.h>
#include <math.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zip.h>

#include "mlfs/ignore.h"
#include "mlfs/jsonw.h"
#include "mlfs/timefmt.h"
#include "snapshot_internal.h"

#define READ_CHUNK (256 * 1024)

static uint64_t hash_reads;

uint64_t snapshot_test_hash_reads(void)
{
	return __atomic_load_n(&hash_reads, __ATOMIC_RELAXED);
}

/* ---- step 1: the walk ------------------------------------------------------------ */

struct item {
	char *path;
	enum snapshot_type type;
	struct stat st;		/* files: as hashed, kept in the stat cache */
	unsigned char sha[SHA256_LEN];	/* files */
	char *target;			/* symlinks */
};

struct walk {
	const char *source;
	int root_fd;
	struct ignore *ig;
	struct item *v;
	size_t n, alloc;
	uint64_t files, bytes;
	const struct snapshot_limits *lim;
	int over;			/* a limit is exceeded: count only */
	struct statcache old;
	uint64_t hashed;		/* files read to hash (not cached) */
	char *err;
	size_t errlen;
};

static int item_add(struct walk *w, const char *rel, const struct stat *st,
		    enum snapshot_type type, struct item **out)
{
	struct item *it;

	if (w->n == w->alloc) {
		size_t alloc = w->alloc ? w->alloc * 2 : 256;
		struct item *v = realloc(w->v, alloc * sizeof(*v));

		if (!v)
			return STORE_NOMEM;
		w->v = v;
		w->alloc = alloc;
	}
	it = &w->v[w->n];
	memset(it, 0, sizeof(*it));
	it->path = strdup(rel);
	if (!it->path)
		return STORE_NOMEM;
	it->type = type;
	it->st = *st;
	w->n++;
	*out = it;
	return STORE_OK;
}

static int errno_rc(int err)
{
	switch (err) {
	case EACCES:
	case EPERM: return STORE_DENIED;
	case ENOENT:
	case ENOTDIR: return STORE_NOT_FOUND;
	case ENOMEM: return STORE_NOMEM;
	case EFBIG: return STORE_INVALID;
	default: return STORE_IO;
	}
}

static int cannot(struct walk *w, const char *what, const char *rel, int err)
{
	return snap_err(w->err, w->errlen, errno_rc(err), "cannot %s '%s': %s",
			what, rel, strerror(err));
}

/* Hashes the regular file @name of @dir_fd (stat @st), or takes the cache's. */
static int hash_file(struct walk *w, int dir_fd, const char *name,
		     const char *rel, const struct stat *st, struct item *it)
{
	const unsigned char *cached = statcache_find(&w->old, rel, st);
	EVP_MD_CTX *md;
	struct stat fst;
	char *buf;
	int fd, rc = STORE_OK;

	if (cached) {
		memcpy(it->sha, cached, SHA256_LEN);
		return STORE_OK;
	}
	/* O_NONBLOCK: a file swapped for a fifo must not hang us. */
	fd = openat(dir_fd, name,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return cannot(w, "read", rel, errno);
	__atomic_add_fetch(&hash_reads, 1, __ATOMIC_RELAXED);
	w->hashed++;
	md = EVP_MD_CTX_new();
	buf = malloc(READ_CHUNK);
	if (!md || !buf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		rc = STORE_NOMEM;
		goto out;
	}
	/* The stat kept is the one from before reading: a change made while
	 * reading then shows at the next build. */
	if (fstat(fd, &fst) < 0) {
		rc = cannot(w, "read", rel, errno);
		goto out;
	}
	if (!S_ISREG(fst.st_mode)) {
		rc = snap_err(w->err, w->errlen, STORE_IO, "cannot snapshot "
			      "'%s': it changed while it was read", rel);
		goto out;
	}
	it->st = fst;
	for (uint64_t got = 0;;) {
		ssize_t r = read(fd, buf, READ_CHUNK);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = cannot(w, "read", rel, errno);
			goto out;
		}
		if (r == 0) {
			if (got != (uint64_t)fst.st_size)
				rc = snap_err(w->err, w->errlen, STORE_IO,
					      "cannot snapshot '%s': it changed "
					      "while it was read", rel);
			break;
		}
		got += (uint64_t)r;
		EVP_DigestUpdate(md, buf, (size_t)r);
	}
	if (rc == STORE_OK)
		EVP_DigestFinal_ex(md, it->sha, NULL);
out:
	free(buf);
	EVP_MD_CTX_free(md);
	close(fd);
	return rc;
}

static int walk_entry(struct walk *w, int dir_fd, const char *name,
		      const char *rel);

/* Walks the directory open as @fd (which it takes) at @rel. */
static int walk_dir(struct walk *w, int fd, const char *rel)
{
	struct strbuf child = STRBUF_INIT;
	struct dirent *de;
	DIR *d;
	int rc;

	rc = ignore_push_dir(w->ig, fd, rel);
	if (rc < 0) {
		close(fd);
		if (rc == -EFBIG)
			return snap_err(w->err, w->errlen, STORE_INVALID,
					"cannot use the ignore rules in '%s': "
					"larger than %u bytes", *rel ? rel : ".",
					IGNORE_FILE_MAX);
		return cannot(w, "read ignore rules in", *rel ? rel : ".", -rc);
	}
	d = fdopendir(fd);
	if (!d) {
		rc = cannot(w, "read directory", *rel ? rel : ".", errno);
		close(fd);
		goto out_pop;
	}
	for (errno = 0; (de = readdir(d)); errno = 0) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		strbuf_reset(&child);
		if (*rel)
			strbuf_addf(&child, "%s/", rel);
		if (strbuf_addstr(&child, de->d_name) < 0) {
			rc = STORE_NOMEM;
			goto out_close;
		}
		rc = walk_entry(w, dirfd(d), de->d_name, child.buf);
		if (rc != STORE_OK)
			goto out_close;
	}
	if (errno)
		rc = cannot(w, "read directory", *rel ? rel : ".", errno);
out_close:
	closedir(d);
out_pop:
	ignore_pop_dir(w->ig);
	strbuf_release(&child);
	return rc;
}

static int walk_entry(struct walk *w, int dir_fd, const char *name,
		      const char *rel)
{
	struct item *it;
	struct stat st;
	char target[PATH_MAX];
	ssize_t n;
	int fd, rc;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? STORE_OK : cannot(w, "stat", rel, errno);
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
		return STORE_OK;	/* sockets, fifos, devices */
	if (ignore_match(w->ig, rel, S_ISDIR(st.st_mode)))
		return STORE_OK;
	if (S_ISDIR(st.st_mode)) {
		if (!w->over && (rc = item_add(w, rel, &st, SNAPSHOT_DIR, &it)))
			return rc;
		fd = openat(dir_fd, name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return cannot(w, "read directory", rel, errno);
		return walk_dir(w, fd, rel);
	}
	w->files++;
	if (S_ISLNK(st.st_mode)) {
		n = readlinkat(dir_fd, name, target, sizeof(target) - 1);
		if (n < 0)
			return cannot(w, "read symlink", rel, errno);
		target[n] = '\0';
		w->bytes += (uint64_t)n;
	} else {
		w->bytes += (uint64_t)st.st_size;
	}
	if (w->files > w->lim->max_files || w->bytes > w->lim->max_bytes)
		w->over = 1;
	if (w->over)
		return STORE_OK;	/* count on, for the message */
	rc = item_add(w, rel, &st, S_ISLNK(st.st_mode) ? SNAPSHOT_SYMLINK
						       : SNAPSHOT_FILE, &it);
	if (rc != STORE_OK)
		return rc;
	if (S_ISLNK(st.st_mode)) {
		it->target = strdup(target);
		return it->target ? STORE_OK : STORE_NOMEM;
	}
	return hash_file(w, dir_fd, name, rel, &st, it);
}

static void walk_release(struct walk *w)
{
	for (size_t i = 0; i < w->n; i++) {
		free(w->v[i].path);
		free(w->v[i].target);
	}
	free(w->v);
	ignore_free(w->ig);
	statcache_release(&w->old);
	if (w->root_fd >= 0)
		close(w->root_fd);
}

/* ---- step 2 and 3: limits, manifest ---------------------------------------------- */

static int check_limits(const struct walk *w)
{
	if (w->files > w->lim->max_files)
		return snap_err(w->err, w->errlen, STORE_TOO_BIG,
				"snapshot of '%s' has %llu files, over the "
				"limit of %llu: leave files out with .amlignore",
				w->source, (unsigned long long)w->files,
				(unsigned long long)w->lim->max_files);
	if (w->bytes > w->lim->max_bytes)
		return snap_err(w->err, w->errlen, STORE_TOO_BIG,
				"snapshot of '%s' has %llu bytes, over the "
				"limit of %llu bytes: leave files out with "
				".amlignore", w->source,
				(unsigned long long)w->bytes,
				(unsigned long long)w->lim->max_bytes);
	return STORE_OK;
}

static int item_cmp(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->path,
		      ((const struct item *)b)->path);
}

/*
 * The manifest: per item in path order, a type letter (d, f, l), an
 * executable letter (x or -), a space, the sha256 hex (files), the target
 * (symlinks) or nothing (directories), NUL, the path, NUL.
 */
static int manifest_id(const struct walk *w, char id[SNAPSHOT_ID_LEN + 1])
{
	struct strbuf m = STRBUF_INIT;
	unsigned char sha[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	int rc;

	for (size_t i = 0; i < w->n && !m.err; i++) {
		const struct item *it = &w->v[i];

		strbuf_addch(&m, "dfl"[it->type == SNAPSHOT_DIR ? 0 :
				      it->type == SNAPSHOT_FILE ? 1 : 2]);
		strbuf_addch(&m, it->type == SNAPSHOT_FILE &&
				 (it->st.st_mode & 0111) ? 'x' : '-');
		strbuf_addch(&m, ' ');
		if (it->type == SNAPSHOT_FILE) {
			hex_encode(it->sha, SHA256_LEN, hex);
			strbuf_addstr(&m, hex);
		} else if (it->type == SNAPSHOT_SYMLINK) {
			strbuf_addstr(&m, it->target);
		}
		strbuf_addch(&m, '\0');
		strbuf_addstr(&m, it->path);
		strbuf_addch(&m, '\0');
	}
	rc = m.err ? STORE_NOMEM : STORE_OK;
	if (rc == STORE_OK && sha256_buf(m.buf ? m.buf : "", m.len, sha) < 0)
		rc = STORE_NOMEM;
	if (rc == STORE_OK) {
		hex_encode(sha, SHA256_LEN, hex);
		memcpy(id, hex, SNAPSHOT_ID_LEN);
		id[SNAPSHOT_ID_LEN] = '\0';
	}
	strbuf_release(&m);
	return rc;
}

static int statcache_update(const char *workspace_dir, const char *root_real,
			    const struct walk *w)
{
	struct statcache sc = STATCACHE_INIT;
	size_t regular = 0;
	int rc = 0;

	for (size_t i = 0; i < w->n; i++)
		regular += w->v[i].type == SNAPSHOT_FILE;
	/*
	 * Every file came from the cache and none went: it is current, and
	 * a re-submit of an unchanged tree writes (and fsyncs) nothing.
	 */
	if (w->hashed == 0 && regular == w->old.n)
		return 0;
	for (size_t i = 0; i < w->n && rc == 0; i++)
		if (w->v[i].type == SNAPSHOT_FILE)
			rc = statcache_add(&sc, w->v[i].path, &w->v[i].st,
					   w->v[i].sha);
	if (rc == 0)
		rc = statcache_save(workspace_dir, root_real, &sc);
	statcache_release(&sc);
	return rc;
}

/* ---- step 5: the zip ----------------------------------------------------------------- */

/*
 * A libzip source reading one file of the walk again, beneath the root,
 * and checking its bytes against the hash the id was made from.
 */
struct file_src {
	int root_fd;
	const struct item *it;
	int fd;
	EVP_MD_CTX *md;
	uint64_t got;
	zip_error_t error;
	const char **changed;	/* set to the path when it changed */
};

static zip_int64_t file_src_cb(void *ud, void *data, zip_uint64_t len,
			       zip_source_cmd_t cmd)
{
	struct file_src *fs = ud;
	unsigned char sha[SHA256_LEN];
	ssize_t r;

	switch (cmd) {
	case ZIP_SOURCE_OPEN:
		fs->fd = open_beneath(fs->root_fd, fs->it->path,
				      O_RDONLY | O_NONBLOCK);
		if (fs->fd < 0) {
			zip_error_set(&fs->error, ZIP_ER_OPEN, -fs->fd);
			return -1;
		}
		fs->got = 0;
		fs->md = EVP_MD_CTX_new();
		if (!fs->md || !EVP_DigestInit_ex(fs->md, EVP_sha256(), NULL)) {
			zip_error_set(&fs->error, ZIP_ER_MEMORY, 0);
			return -1;
		}
		return 0;
	case ZIP_SOURCE_READ:
		do
			r = read(fs->fd, data, len);
		while (r < 0 && errno == EINTR);
		if (r < 0) {
			zip_error_set(&fs->error, ZIP_ER_READ, errno);
			return -1;
		}
		if (r > 0) {
			fs->got += (uint64_t)r;
			EVP_DigestUpdate(fs->md, data, (size_t)r);
			return r;
		}
		EVP_DigestFinal_ex(fs->md, sha, NULL);
		if (fs->got != (uint64_t)fs->it->st.st_size ||
		    memcmp(sha, fs->it->sha, SHA256_LEN) != 0) {
			*fs->changed = fs->it->path;
			zip_error_set(&fs->error, ZIP_ER_INCONS, 0);
			return -1;
		}
		return 0;
	case ZIP_SOURCE_CLOSE:
		if (fs->fd >= 0)
			close(fs->fd);
		fs->fd = -1;
		EVP_MD_CTX_free(fs->md);
		fs->md = NULL;
		return 0;
	case ZIP_SOURCE_STAT: {
		zip_stat_t *st = data;

		zip_stat_init(st);
		st->size = (zip_uint64_t)fs->it->st.st_size;
		st->mtime = fs->it->st.st_mtim.tv_sec;
		st->valid |= ZIP_STAT_SIZE | ZIP_STAT_MTIME;
		return sizeof(*st);
	}
	case ZIP_SOURCE_ERROR:
		return zip_error_to_data(&fs->error, data, len);
	case ZIP_SOURCE_FREE:
		if (fs->fd >= 0)
			close(fs->fd);
		EVP_MD_CTX_free(fs->md);
		zip_error_fini(&fs->error);
		free(fs);
		return 0;
	case ZIP_SOURCE_SUPPORTS:
		return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN,
			ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT,
			ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
	default:
		zip_error_set(&fs->error, ZIP_ER_OPNOTSUPP, 0);
		return -1;
	}
}

/* Adds one item; its index in *idx. 0 or -1 (zip_get_error(za) says). */
/*
 * Is deflate worth its time on @it? Deflate runs at about 25 MB/s on this
 * kind of machine (level 1): on data that does not compress (archives,
 * weights, images, random bytes) it would cost seconds and save nothing.
 * The order-0 entropy of the first SAMPLE_BYTES predicts Huffman's gain:
 * above ENTROPY_MAX bits per byte the file is stored as it is. Source code
 * and text sit near 4.5-5.5 bits, compressed data near 8. Small files are
 * always deflated (cheap either way).
 */
#define SAMPLE_BYTES 16384
#define ENTROPY_MAX 6.2

static int compresses(int root_fd, const struct item *it)
{
	static const struct open_how how = {
		.flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
	};
	unsigned char buf[SAMPLE_BYTES];
	size_t count[256] = { 0 };
	double bits = 0;
	ssize_t n;
	long fd;

	if (it->st.st_size < SAMPLE_BYTES)
		return 1;
	fd = syscall(SYS_openat2, root_fd, it->path, &how, sizeof(how));
	if (fd < 0)
		return 1;	/* the zip source reports the error */
	n = pread((int)fd, buf, sizeof(buf), 0);
	close((int)fd);
	if (n <= 0)
		return 1;
	for (ssize_t i = 0; i < n; i++)
		count[buf[i]]++;
	for (int c = 0; c < 256; c++) {
		double p = (double)count[c] / (double)n;

		if (count[c])
			bits -= p * log2(p);
	}
	return bits <= ENTROPY_MAX;
}

static int zip_add_item(zip_t *za, int root_fd, const struct item *it,
			const char **changed)
{
	struct strbuf name = STRBUF_INIT;
	zip_source_t *src = NULL;
	zip_int64_t idx = -1;
	struct file_src *fs;
	mode_t mode = it->st.st_mode;

	switch (it->type) {
	case SNAPSHOT_DIR:
		if (strbuf_addf(&name, "%s/", it->path) == 0)
			idx = zip_dir_add(za, name.buf, ZIP_FL_ENC_RAW);
		mode = S_IFDIR | 0755;
		break;
	case SNAPSHOT_SYMLINK:
		src = zip_source_buffer(za, it->target, strlen(it->target), 0);
		mode = S_IFLNK | 0777;
		break;
	case SNAPSHOT_FILE:
		fs = calloc(1, sizeof(*fs));
		if (!fs)
			break;
		fs->root_fd = root_fd;
		fs->it = it;
		fs->fd = -1;
		fs->changed = changed;
		zip_error_init(&fs->error);
		src = zip_source_function(za, file_src_cb, fs);
		if (!src) {
			zip_error_fini(&fs->error);
			free(fs);
		}
		mode = S_IFREG | (mode & 0111 ? 0755 : 0644);
		break;
	}
	if (src) {
		idx = zip_file_add(za, it->path, src, ZIP_FL_ENC_RAW);
		if (idx < 0)
			zip_source_free(src);
	}
	strbuf_release(&name);
	if (idx < 0)
		return -1;
	if (zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0,
					     ZIP_OPSYS_UNIX,
					     (zip_uint32_t)mode << 16) < 0 ||
	    zip_file_set_mtime(za, (zip_uint64_t)idx, it->st.st_mtim.tv_sec,
			       0) < 0)
		return -1;
	if (it->type == SNAPSHOT_FILE)
		return zip_set_file_compression(za, (zip_uint64_t)idx,
			compresses(root_fd, it) ? ZIP_CM_DEFLATE : ZIP_CM_STORE,
			1);
	if (it->type == SNAPSHOT_SYMLINK)
		return zip_set_file_compression(za, (zip_uint64_t)idx,
						ZIP_CM_STORE, 0);
	return 0;
}

/*
 * libzip deletes an archive left without entries at zip_close, so an
 * empty source directory gets the zip format's empty archive: its
 * end-of-central-directory record alone, which libzip reads back.
 */
static int zip_write_empty(const struct walk *w, const char *tmp)
{
	static const unsigned char eocd[22] = { 'P', 'K', 5, 6 };
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = STORE_OK;

	if (fd < 0 || write(fd, eocd, sizeof(eocd)) != (ssize_t)sizeof(eocd))
		rc = snap_err(w->err, w->errlen, STORE_IO, "cannot write '%s': %s",
			      tmp, strerror(errno ? errno : EIO));
	if (fd >= 0)
		close(fd);
	if (rc != STORE_OK)
		unlink(tmp);
	return rc;
}

/* Writes the walk's items as the zip @tmp. */
static int zip_write(const struct walk *w, const char *tmp)
{
	const char *changed = NULL;
	int zerr = 0;
	zip_t *za;

	if (w->n == 0)
		return zip_write_empty(w, tmp);
	za = zip_open(tmp, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
	if (!za)
		return snap_err(w->err, w->errlen, STORE_IO,
				"cannot create '%s': libzip error %d", tmp, zerr);
	for (size_t i = 0; i < w->n; i++) {
		if (zip_add_item(za, w->root_fd, &w->v[i], &changed) < 0) {
			snap_err(w->err, w->errlen, STORE_IO,
				 "cannot add '%s' to the snapshot: %s",
				 w->v[i].path, zip_strerror(za));
			zip_discard(za);
			return STORE_IO;
		}
	}
	if (zip_close(za) < 0) {
		if (changed)
			snap_err(w->err, w->errlen, STORE_IO, "cannot snapshot "
				 "'%s': it changed while it was read", changed);
		else
			snap_err(w->err, w->errlen, STORE_IO,
				 "cannot write '%s': %s", tmp, zip_strerror(za));
		zip_discard(za);
		unlink(tmp);
		return STORE_IO;
	}
	return STORE_OK;
}

/* Removes ".tmp-PID-*" files of processes that no longer run. */
static void clean_stale(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		long pid;

		if (strncmp(de->d_name, ".tmp-", 5) != 0)
			continue;
		errno = 0;
		pid = strtol(de->d_name + 5, &end, 10);
		if (errno || end == de->d_name + 5 || *end != '-' || pid <= 0)
			continue;
		if (pid != (long)getpid() && kill((pid_t)pid, 0) < 0 &&
		    errno == ESRCH)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* fsync @tmp, then rename it to @final unless that exists (0 or 1). */
static int publish(const char *tmp, const char *final, const char *dir,
		   int *existed)
{
	int fd = open(tmp, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	*existed = 0;
	if (rc == 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, final,
				 RENAME_NOREPLACE) < 0) {
		rc = -errno;
		if (rc == -EEXIST) {
			*existed = 1;
			rc = 0;
		}
	}
	if (rc < 0 || *existed)
		unlink(tmp);
	return rc ? rc : fsync_dir(dir);
}

/* ---- the build ------------------------------------------------------------------------- */

static int store_snapshot(const char *workspace_dir, struct walk *w,
			  struct snapshot_info *info)
{
	struct strbuf dir = STRBUF_INIT, tmp = STRBUF_INIT;
	char zip_path[PATH_MAX], json_path[PATH_MAX];
	struct stat st;
	int existed = 0, rc;

	if (strbuf_addf(&dir, "%s/snapshots", workspace_dir) < 0 ||
	    strbuf_addf(&tmp, "%s/.tmp-%ld-%s.zip", dir.buf, (long)getpid(),
			info->id) < 0) {
		rc = STORE_NOMEM;
		goto out;
	}
	snapshot_zip_path(workspace_dir, info->id, zip_path, sizeof(zip_path));
	snapshot_json_path(workspace_dir, info->id, json_path, sizeof(json_path));
	rc = mkdir_parents(dir.buf);
	if (rc < 0) {
		rc = snap_err(w->err, w->errlen, errno_rc(-rc), "cannot create "
			      "'%s': %s", dir.buf, strerror(-rc));
		goto out;
	}
	clean_stale(dir.buf);
	if (stat(zip_path, &st) == 0) {
		info->reused = 1;
		if (snapshot_get(workspace_dir, info->id, info) == STORE_OK) {
			info->reused = 1;
			goto out;
		}
	} else {
		rc = zip_write(w, tmp.buf);
		if (rc != STORE_OK)
			goto out;
		rc = publish(tmp.buf, zip_path, dir.buf, &existed);
		if (rc < 0) {
			rc = snap_err(w->err, w->errlen, STORE_IO, "cannot store "
				      "'%s': %s", zip_path, strerror(-rc));
			goto out;
		}
		info->reused = existed;
		if (stat(zip_path, &st) < 0) {
			rc = snap_err(w->err, w->errlen, STORE_IO, "cannot stat "
				      "'%s': %s", zip_path, strerror(errno));
			goto out;
		}
	}
	/* New, or a zip whose json a crash kept from being written. */
	info->zip_bytes = (uint64_t)st.st_size;
	info->created_ms = time_now_ms();
	rc = json_write(dir.buf, json_path, info, w->source);
	if (rc < 0)
		rc = snap_err(w->err, w->errlen, STORE_IO, "cannot write '%s': %s",
			      json_path, strerror(-rc));
out:
	strbuf_release(&tmp);
	strbuf_release(&dir);
	return rc;
}

int snapshot_build(const char *workspace_dir, const char *source_dir,
		   const struct snapshot_limits *lim, struct snapshot_info *out,
		   char *err, size_t errlen)
{
	static const struct snapshot_limits defaults = {
		SNAPSHOT_MAX_BYTES_DEFAULT, SNAPSHOT_MAX_FILES_DEFAULT
	};
	struct walk w = { .root_fd = -1, .err = err, .errlen = errlen };
	struct snapshot_info info;
	char *real;
	int rc, fd;

	w.lim = lim ? lim : &defaults;
	w.source = source_dir;
	real = realpath(source_dir, NULL);
	if (!real)
		return snap_err(err, errlen, errno_rc(errno) == STORE_DENIED ?
				STORE_DENIED : STORE_NOT_FOUND,
				"cannot snapshot '%s': %s", source_dir,
				strerror(errno));
	w.source = real;
	fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = snap_err(err, errlen, errno == ENOTDIR ? STORE_NOT_FOUND :
			      errno_rc(errno), "cannot snapshot '%s': %s",
			      source_dir, errno == ENOTDIR ? "not a directory"
			      : strerror(errno));
		goto out_free;
	}
	w.root_fd = dup(fd);
	w.ig = ignore_new();
	if (w.root_fd < 0 || !w.ig ||
	    statcache_load(workspace_dir, real, &w.old) < 0) {
		close(fd);
		rc = snap_err(err, errlen, STORE_NOMEM, "out of memory");
		goto out_release;
	}
	rc = walk_dir(&w, fd, "");
	if (rc == STORE_OK)
		rc = check_limits(&w);
	if (rc != STORE_OK)
		goto out_release;
	if (w.n)	/* an empty walk has no array */
		qsort(w.v, w.n, sizeof(*w.v), item_cmp);
	memset(&info, 0, sizeof(info));
	info.files = w.files;
	info.bytes = w.bytes;
	rc = manifest_id(&w, info.id);
	if (rc != STORE_OK)
		goto out_release;
	/* Only a shortcut: a failure to save it fails nothing. */
	statcache_update(workspace_dir, real, &w);
	rc = store_snapshot(workspace_dir, &w, &info);
	if (rc == STORE_OK)
		*out = info;
out_release:
	walk_release(&w);
out_free:
	free(real);
	return rc;
}
