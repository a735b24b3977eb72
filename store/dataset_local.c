/*
 * dataset_local.c - the files of a local datastore: expanding patterns
 * into pinned files, opening a file against its pin, copying files into
 * blobs (contract: mlfs/datasets.h).
 *
 * Design notes
 *  1. Everything is opened relative to an O_PATH descriptor of the root
 *     with openat2(RESOLVE_BENEATH): the kernel refuses any path, ".."
 *     or symlink that would leave the root (EXDEV), so a symlink pointing
 *     outside is simply not there. Symlinks that stay inside are
 *     followed; a directory already on the way down (a symlink loop) is
 *     not entered again (struct walk's ancestors).
 *  2. A pattern is matched segment by segment (expand_in()): a literal
 *     segment is looked up, a glob segment is fnmatch()ed with
 *     FNM_PERIOD against the directory's names, "**" tries zero
 *     directories then every subdirectory not starting with '.'. What a
 *     pattern ends on is taken (take()): a regular file, or every
 *     regular file below a directory. Directory names are read whole
 *     and the directory closed before descending, so the depth of the
 *     tree costs no descriptors.
 *  3. A pin is what fstat() says: st_size and st_mtim in nanoseconds.
 *     dataset_local_open() compares the pin with fstat() of the very
 *     descriptor it returns, so what is checked is what is read.
 *  4. dataset_local_copy() checks the pin on the opened descriptor before
 *     reading and again after, and the blob's size against the pin: a
 *     write between the two checks changes the mtime or size. A file
 *     that changed fails the copy (STORE_CORRUPT); blobs already put
 *     stay unreferenced for the mount's sweep, and nothing is registered.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mlfs/datasets.h"
#include "mlfs/strbuf.h"
#include "dataset_internal.h"

#define MAX_DEPTH (DATASET_PATH_MAX / 2 + 2)

/* strerror(@e) with its first letter lowercased, as messages want it */
#define ERRSTR(e) lc_strerror((e), (char[96]){ 0 }, 96)

static const char *lc_strerror(int e, char *buf, size_t len)
{
	snprintf(buf, len, "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

/*
 * @rel ("" for the root itself) below @root_fd, never leaving it.
 * openat2() refuses O_PATH with flags other than O_DIRECTORY, O_NOFOLLOW
 * and O_CLOEXEC (EINVAL), so O_NOCTTY goes only with a real open.
 */
static int open_beneath_follow(int root_fd, const char *rel, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC |
				    (flags & O_PATH ? 0 : O_NOCTTY)),
		.resolve = RESOLVE_BENEATH,
	};
	long fd = syscall(SYS_openat2, root_fd, rel[0] ? rel : ".", &how,
			  sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

/* Errors that mean "not there" for a lookup: gone, outside, a loop. */
static int is_absent(int e)
{
	return e == ENOENT || e == ENOTDIR || e == EXDEV || e == ELOOP ||
	       e == EACCES || e == EPERM || e == ENAMETOOLONG;
}

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int open_root(const char *root, int *fd, char *err, size_t errlen)
{
	*fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*fd >= 0)
		return STORE_OK;
	return dataset_fail(err, errlen, errno == ENOENT ? STORE_NOT_FOUND : STORE_IO,
		    "cannot open datastore directory '%s': %s", root,
		    ERRSTR(errno));
}

/* ---- expanding patterns ---------------------------------------------------- */

struct walk {
	int root_fd;
	dataset_may_read_fn may_read;
	void *ctx;
	struct dataset_files *out;
	size_t from;		/* this call's first entry in out */
	size_t taken;		/* files the current pattern took */
	char *err;
	size_t errlen;
	size_t depth;		/* directories entered, root included */
	struct { dev_t dev; ino_t ino; } up[MAX_DEPTH];
};

/* Enters directory @st: 0 when it is already on the way down (a loop). */
static int enter(struct walk *w, const struct stat *st)
{
	for (size_t i = 0; i < w->depth; i++)
		if (w->up[i].dev == st->st_dev && w->up[i].ino == st->st_ino)
			return 0;
	if (w->depth == MAX_DEPTH)
		return 0;	/* cannot happen: paths end first */
	w->up[w->depth].dev = st->st_dev;
	w->up[w->depth].ino = st->st_ino;
	w->depth++;
	return 1;
}

static void leave(struct walk *w)
{
	w->depth--;
}

/*
 * What @rel is, following symlinks that stay inside: STORE_OK and *st,
 * STORE_NOT_FOUND when absent or refused by may_read, STORE_IO.
 */
static int look(struct walk *w, const char *rel, struct stat *st)
{
	int fd = open_beneath_follow(w->root_fd, rel, O_PATH);
	int e;

	if (fd < 0) {
		if (is_absent(-fd))
			return STORE_NOT_FOUND;
		return dataset_fail(w->err, w->errlen, STORE_IO, "cannot read '%s': %s",
			    rel, ERRSTR(-fd));
	}
	e = fstat(fd, st) < 0 ? errno : 0;
	close(fd);
	if (e)
		return dataset_fail(w->err, w->errlen, STORE_IO, "cannot read '%s': %s",
			    rel, ERRSTR(e));
	if (w->may_read && !w->may_read(w->ctx, st))
		return STORE_NOT_FOUND;
	return STORE_OK;
}

/* @rel "/" @name, or @name at the root, into @sb (reset first). */
static int child_path(struct walk *w, const char *rel, const char *name,
		      struct strbuf *sb)
{
	strbuf_reset(sb);
	if (rel[0])
		strbuf_addf(sb, "%s/%s", rel, name);
	else
		strbuf_addstr(sb, name);
	if (sb->err)
		return dataset_fail(w->err, w->errlen, STORE_NOMEM, "out of memory");
	if (sb->len > DATASET_PATH_MAX)
		return dataset_fail(w->err, w->errlen, STORE_TOO_BIG,
			    "path '%.64s...' is longer than %d bytes", sb->buf,
			    DATASET_PATH_MAX);
	return STORE_OK;
}

struct names {
	char **v;
	size_t n;
};

static void names_release(struct names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
}

/* The names in directory @rel, "." and ".." left out. */
static int list_dir(struct walk *w, const char *rel, struct names *nm)
{
	size_t alloc = 0;
	struct dirent *de;
	DIR *d;
	int fd = open_beneath_follow(w->root_fd, rel, O_RDONLY | O_DIRECTORY);

	memset(nm, 0, sizeof(*nm));
	if (fd < 0)
		return is_absent(-fd) ? STORE_NOT_FOUND
				      : dataset_fail(w->err, w->errlen, STORE_IO,
					     "cannot read directory '%s': %s",
					     rel[0] ? rel : ".", ERRSTR(-fd));
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return dataset_fail(w->err, w->errlen, STORE_NOMEM, "out of memory");
	}
	errno = 0;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (nm->n == alloc) {
			size_t na = alloc ? 2 * alloc : 32;
			char **v = realloc(nm->v, na * sizeof(*v));

			if (!v)
				goto out_nomem;
			nm->v = v;
			alloc = na;
		}
		nm->v[nm->n] = strdup(de->d_name);
		if (!nm->v[nm->n])
			goto out_nomem;
		nm->n++;
		errno = 0;
	}
	if (errno) {
		int e = errno;

		closedir(d);
		names_release(nm);
		return dataset_fail(w->err, w->errlen, STORE_IO,
			    "cannot read directory '%s': %s", rel[0] ? rel : ".",
			    ERRSTR(e));
	}
	closedir(d);
	return STORE_OK;
out_nomem:
	closedir(d);
	names_release(nm);
	return dataset_fail(w->err, w->errlen, STORE_NOMEM, "out of memory");
}

static int too_many(struct walk *w)
{
	return dataset_fail(w->err, w->errlen, STORE_TOO_BIG, "more than %d files match",
		    DATASET_FILES_MAX);
}

static int add_file(struct walk *w, const char *rel, const struct stat *st)
{
	struct dataset_file *f;

	/*
	 * Patterns may overlap: only files counted once can be too many.
	 * Deduplicating at twice the limit keeps the sorts amortized.
	 */
	if (w->out->n - w->from >= 2 * (size_t)DATASET_FILES_MAX) {
		dataset_files_sort_unique(w->out, w->from);
		if (w->out->n - w->from > DATASET_FILES_MAX)
			return too_many(w);
	}
	f = dataset_files_push(w->out);
	if (!f)
		return dataset_fail(w->err, w->errlen, STORE_NOMEM, "out of memory");
	f->path = strdup(rel);
	if (!f->path) {
		w->out->n--;
		return dataset_fail(w->err, w->errlen, STORE_NOMEM, "out of memory");
	}
	f->size = (uint64_t)st->st_size;
	f->mtime_ns = mtime_ns(st);
	w->taken++;
	return STORE_OK;
}

static int walk_all(struct walk *w, const char *rel, const struct stat *st);

/* What a pattern ends on: a regular file, or the files below a directory. */
static int take(struct walk *w, const char *rel, const struct stat *st)
{
	if (S_ISREG(st->st_mode))
		return add_file(w, rel, st);
	if (S_ISDIR(st->st_mode))
		return walk_all(w, rel, st);
	return STORE_OK;	/* devices, fifos, sockets: never data */
}

/* Every regular file below directory @rel (hidden ones too). */
static int walk_all(struct walk *w, const char *rel, const struct stat *st)
{
	struct strbuf child = STRBUF_INIT;
	struct names nm;
	int rc;

	if (!enter(w, st))
		return STORE_OK;
	rc = list_dir(w, rel, &nm);
	if (rc == STORE_NOT_FOUND) {
		rc = STORE_OK;	/* went away meanwhile */
		goto out_leave;
	}
	for (size_t i = 0; i < nm.n && rc == STORE_OK; i++) {
		struct stat cst;

		rc = child_path(w, rel, nm.v[i], &child);
		if (rc == STORE_OK)
			rc = look(w, child.buf, &cst);
		if (rc == STORE_OK)
			rc = take(w, child.buf, &cst);
		else if (rc == STORE_NOT_FOUND)
			rc = STORE_OK;
	}
	names_release(&nm);
	strbuf_release(&child);
out_leave:
	leave(w);
	return rc;
}

struct pattern {
	char *buf;		/* the pattern, '/' replaced by NUL */
	const char **seg;
	size_t nseg;
	int dir_only;		/* it ended in '/' */
};

static int is_glob(const char *seg)
{
	return strpbrk(seg, "*?[\\") != NULL;
}

static int expand_in(struct walk *w, const struct pattern *p, const char *rel,
		     size_t i);

/* Segment @i of @p matched @rel (@st): go on below it, or take it. */
static int matched(struct walk *w, const struct pattern *p, const char *rel,
		   const struct stat *st, size_t i)
{
	int rc;

	if (i + 1 == p->nseg)
		return p->dir_only && !S_ISDIR(st->st_mode) ? STORE_OK
							    : take(w, rel, st);
	if (!S_ISDIR(st->st_mode) || !enter(w, st))
		return STORE_OK;
	rc = expand_in(w, p, rel, i + 1);
	leave(w);
	return rc;
}

/* Segments @i.. of @p below directory @rel (already entered). */
static int expand_in(struct walk *w, const struct pattern *p, const char *rel,
		     size_t i)
{
	struct strbuf child = STRBUF_INIT;
	const char *seg = p->seg[i];
	int star2 = strcmp(seg, "**") == 0;
	struct names nm = { 0 };
	struct stat st;
	int rc;

	if (!is_glob(seg)) {
		rc = child_path(w, rel, seg, &child);
		if (rc == STORE_OK)
			rc = look(w, child.buf, &st);
		if (rc == STORE_OK)
			rc = matched(w, p, child.buf, &st, i);
		strbuf_release(&child);
		return rc == STORE_NOT_FOUND ? STORE_OK : rc;
	}
	if (star2 && i + 1 < p->nseg) {
		rc = expand_in(w, p, rel, i + 1);	/* no directory at all */
		if (rc != STORE_OK)
			return rc;
	}
	rc = list_dir(w, rel, &nm);
	if (rc == STORE_NOT_FOUND)
		return STORE_OK;
	for (size_t k = 0; k < nm.n && rc == STORE_OK; k++) {
		const char *name = nm.v[k];

		if (star2 ? name[0] == '.' : fnmatch(seg, name, FNM_PERIOD) != 0)
			continue;
		rc = child_path(w, rel, name, &child);
		if (rc == STORE_OK)
			rc = look(w, child.buf, &st);
		if (rc == STORE_OK && star2 && i + 1 < p->nseg) {
			/* one more directory for "**", which stays */
			if (S_ISDIR(st.st_mode) && enter(w, &st)) {
				rc = expand_in(w, p, child.buf, i);
				leave(w);
			}
		} else if (rc == STORE_OK) {
			rc = matched(w, p, child.buf, &st, i);
		}
		if (rc == STORE_NOT_FOUND)
			rc = STORE_OK;
	}
	names_release(&nm);
	strbuf_release(&child);
	return rc;
}

static void pattern_release(struct pattern *p)
{
	free(p->buf);
	free(p->seg);
}

/*
 * @text as segments into @p: STORE_INVALID (with @err) when it is empty,
 * absolute, too long or has an empty, "." or ".." segment. One trailing
 * '/' is allowed (a directory); a run of "**" counts as one.
 */
static int pattern_parse(const char *text, struct pattern *p, char *err,
			 size_t errlen)
{
	size_t len = strlen(text);
	char *s;

	memset(p, 0, sizeof(*p));
	if (len == 0)
		return dataset_fail(err, errlen, STORE_INVALID, "invalid pattern '': empty");
	if (text[0] == '/')
		return dataset_fail(err, errlen, STORE_INVALID,
			    "invalid pattern '%s': not relative", text);
	if (len > DATASET_PATH_MAX)
		return dataset_fail(err, errlen, STORE_INVALID,
			    "invalid pattern '%.64s...': longer than %d bytes",
			    text, DATASET_PATH_MAX);
	p->buf = strdup(text);
	p->seg = calloc(len / 2 + 2, sizeof(*p->seg));
	if (!p->buf || !p->seg) {
		free(p->buf);
		free(p->seg);
		return dataset_fail(err, errlen, STORE_NOMEM, "out of memory");
	}
	if (p->buf[len - 1] == '/') {
		p->buf[len - 1] = '\0';
		p->dir_only = 1;
	}
	for (s = p->buf;;) {
		char *slash = strchr(s, '/');

		if (slash)
			*slash = '\0';
		if (!s[0] || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
			dataset_fail(err, errlen, STORE_INVALID, "invalid pattern '%s': %s",
			     text, s[0] ? "'.' and '..' are not allowed"
					: "empty segment");
			pattern_release(p);
			return STORE_INVALID;
		}
		if (!(strcmp(s, "**") == 0 && p->nseg > 0 &&
		      strcmp(p->seg[p->nseg - 1], "**") == 0))
			p->seg[p->nseg++] = s;
		if (!slash)
			break;
		s = slash + 1;
	}
	return STORE_OK;
}

int dataset_local_expand(const char *root, const char *const *patterns,
			 size_t npatterns, dataset_may_read_fn may_read,
			 void *ctx, struct dataset_files *out, char *err,
			 size_t errlen)
{
	struct walk *w;
	struct pattern p;
	struct stat rst;
	int root_fd, rc;

	for (size_t i = 0; i < npatterns; i++) {
		rc = pattern_parse(patterns[i], &p, err, errlen);
		if (rc != STORE_OK)
			return rc;
		pattern_release(&p);
	}
	rc = open_root(root, &root_fd, err, errlen);
	if (rc != STORE_OK)
		return rc;
	w = calloc(1, sizeof(*w));
	if (!w) {
		rc = dataset_fail(err, errlen, STORE_NOMEM, "out of memory");
		goto out_close;
	}
	*w = (struct walk){ .root_fd = root_fd, .may_read = may_read,
			    .ctx = ctx, .out = out, .from = out->n,
			    .err = err, .errlen = errlen };
	if (fstat(root_fd, &rst) < 0) {
		rc = dataset_fail(err, errlen, STORE_IO,
			  "cannot open datastore directory '%s': %s", root,
			  ERRSTR(errno));
		goto out_free;
	}
	enter(w, &rst);
	for (size_t i = 0; i < npatterns && rc == STORE_OK; i++) {
		rc = pattern_parse(patterns[i], &p, err, errlen);
		if (rc != STORE_OK)
			break;
		w->taken = 0;
		rc = expand_in(w, &p, "", 0);
		if (rc == STORE_OK && w->taken == 0)
			rc = dataset_fail(err, errlen, STORE_NOT_FOUND,
				  "no file matches '%s'", patterns[i]);
		pattern_release(&p);
	}
	if (rc == STORE_OK) {
		dataset_files_sort_unique(out, w->from);
		if (out->n - w->from > DATASET_FILES_MAX)
			rc = too_many(w);
	}
	if (rc != STORE_OK)
		dataset_files_truncate(out, w->from);
out_free:
	free(w);
out_close:
	close(root_fd);
	return rc;
}

/* ---- reading against the pin ------------------------------------------------ */

/* STORE_OK when @st still matches @f's pin, else STORE_CORRUPT and why. */
static int pin_check(const struct dataset_file *f, const struct stat *st,
		     const char *when, char *err, size_t errlen)
{
	int64_t now = mtime_ns(st);

	if (!S_ISREG(st->st_mode))
		return dataset_fail(err, errlen, STORE_CORRUPT,
			    "'%s' changed %s: no longer a regular file",
			    f->path, when);
	if ((uint64_t)st->st_size != f->size)
		return dataset_fail(err, errlen, STORE_CORRUPT,
			    "'%s' changed %s: size %llu -> %llu", f->path, when,
			    (unsigned long long)f->size,
			    (unsigned long long)st->st_size);
	if (now != f->mtime_ns)
		return dataset_fail(err, errlen, STORE_CORRUPT,
			    "'%s' changed %s: mtime %lld.%09lld -> %lld.%09lld",
			    f->path, when, (long long)(f->mtime_ns / 1000000000),
			    (long long)(f->mtime_ns % 1000000000),
			    (long long)(now / 1000000000),
			    (long long)(now % 1000000000));
	return STORE_OK;
}

int dataset_local_check(const struct dataset_file *f, int fd, char *err,
			size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return dataset_fail(err, errlen, STORE_IO, "cannot read '%s': %s",
			    f->path, ERRSTR(errno));
	return pin_check(f, &st, "since it was registered (while open)", err,
			 errlen);
}

/* Opens @f below @root_fd and checks its pin. */
static int open_pinned(int root_fd, const struct dataset_file *f, int *fd,
		       char *err, size_t errlen)
{
	struct stat st;
	int rc, e;
	int d = open_beneath_follow(root_fd, f->path, O_RDONLY | O_NONBLOCK);

	if (d < 0) {
		e = -d;
		rc = e == ENOENT || e == ENOTDIR || e == EXDEV || e == ELOOP
			     ? STORE_NOT_FOUND
			     : e == EACCES || e == EPERM ? STORE_DENIED : STORE_IO;
		return dataset_fail(err, errlen, rc, "cannot open '%s': %s", f->path,
			    e == EXDEV ? "it now leads outside the datastore"
				       : ERRSTR(e));
	}
	if (fstat(d, &st) < 0) {
		e = errno;
		close(d);
		return dataset_fail(err, errlen, STORE_IO, "cannot read '%s': %s",
			    f->path, ERRSTR(e));
	}
	rc = pin_check(f, &st, "since it was registered", err, errlen);
	/* a regular file: O_NONBLOCK (kept a fifo from blocking) is moot */
	if (rc == STORE_OK && fcntl(d, F_SETFL, 0) < 0)
		rc = dataset_fail(err, errlen, STORE_IO, "cannot open '%s': %s",
			  f->path, ERRSTR(errno));
	if (rc != STORE_OK) {
		close(d);
		return rc;
	}
	*fd = d;
	return STORE_OK;
}

int dataset_local_open(const char *root, const struct dataset_file *f, int *fd,
		       char *err, size_t errlen)
{
	int root_fd;
	int rc = open_root(root, &root_fd, err, errlen);

	if (rc != STORE_OK)
		return rc;
	rc = open_pinned(root_fd, f, fd, err, errlen);
	close(root_fd);
	return rc;
}

/* One file into a blob, its pin checked before and after reading. */
static int copy_one(const char *workspace_dir, int root_fd,
		    struct dataset_file *f, char *err, size_t errlen)
{
	char why[256] = "";
	struct blob_ref ref;
	struct stat st;
	int fd, rc = open_pinned(root_fd, f, &fd, err, errlen);

	if (rc != STORE_OK)
		return rc;
	rc = blob_put_fd(workspace_dir, fd, &ref, why, sizeof(why));
	if (rc != STORE_OK) {
		rc = dataset_fail(err, errlen, rc, "cannot copy '%s': %s", f->path, why);
		goto out_close;
	}
	if (fstat(fd, &st) < 0) {
		rc = dataset_fail(err, errlen, STORE_IO, "cannot read '%s': %s",
			  f->path, ERRSTR(errno));
		goto out_close;
	}
	rc = pin_check(f, &st, "while it was copied", err, errlen);
	if (rc == STORE_OK && ref.size != f->size)
		rc = dataset_fail(err, errlen, STORE_CORRUPT,
			  "'%s' changed while it was copied: size %llu -> %llu",
			  f->path, (unsigned long long)f->size,
			  (unsigned long long)ref.size);
	if (rc == STORE_OK)
		memcpy(f->blob, ref.hex, sizeof(f->blob));
out_close:
	close(fd);
	return rc;
}

int dataset_local_copy(const char *workspace_dir, const char *root,
		       struct dataset_files *fl, char *err, size_t errlen)
{
	size_t i;
	int root_fd;
	int rc = open_root(root, &root_fd, err, errlen);

	if (rc != STORE_OK)
		return rc;
	for (i = 0; i < fl->n && rc == STORE_OK; i++)
		rc = copy_one(workspace_dir, root_fd, &fl->v[i], err, errlen);
	if (rc != STORE_OK)
		while (i-- > 0)
			fl->v[i].blob[0] = '\0';	/* filled on STORE_OK only */
	close(root_fd);
	return rc;
}
