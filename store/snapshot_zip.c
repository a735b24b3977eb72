/*
 * snapshot_zip.c - reading snapshots back: extracting a zip safely, and
 * the indexed tree of a snapshot that the mount serves.
 *
 * Extraction is two passes over the entries. check_entries() refuses the
 * whole zip before anything is written if an entry name is unsafe
 * (absolute, empty, "." or ".." components), appears twice, or lies below
 * an entry that is a symlink or a file. write_entries() then creates
 * everything through descriptors: each directory opened from its parent
 * with O_NOFOLLOW|O_DIRECTORY, each file created with O_EXCL|O_NOFOLLOW,
 * so even a tree changed by someone else meanwhile cannot make us write
 * outside the destination.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "snapshot_internal.h"

#define COPY_CHUNK (256 * 1024)

/* ---- entries ---------------------------------------------------------------- */

struct entry {
	char *path;		/* without a trailing '/' */
	enum snapshot_type type;
	mode_t mode;
	uint64_t size;
	int64_t mtime_ms;
	uint64_t index;
	const char *name;	/* last component, inside path */
};

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->path,
		      ((const struct entry *)b)->path);
}

static int entry_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct entry *)elem)->path);
}

/*
 * Reads entry @i of @za: its name (raw) and what it is. Returns 0, 1 for
 * an entry with an unsafe name (out->path holds the raw name, for the
 * message), or -ENOMEM / -EIO.
 */
static int entry_read(zip_t *za, zip_uint64_t i, struct entry *out)
{
	const char *raw = zip_get_name(za, i, ZIP_FL_ENC_RAW);
	zip_uint8_t opsys;
	zip_uint32_t attr;
	zip_stat_t st;
	size_t len;
	int dir_name;

	memset(out, 0, sizeof(*out));
	if (!raw || zip_stat_index(za, i, ZIP_FL_ENC_RAW, &st) < 0 ||
	    zip_file_get_external_attributes(za, i, 0, &opsys, &attr) < 0)
		return -EIO;
	len = strlen(raw);
	dir_name = len && raw[len - 1] == '/';
	out->path = strndup(raw, dir_name ? len - 1 : len);
	if (!out->path)
		return -ENOMEM;
	out->index = i;
	out->size = st.valid & ZIP_STAT_SIZE ? st.size : 0;
	out->mtime_ms = st.valid & ZIP_STAT_MTIME ? (int64_t)st.mtime * 1000 : 0;
	out->mode = opsys == ZIP_OPSYS_UNIX ? (mode_t)(attr >> 16) : 0;
	if (S_ISLNK(out->mode) && !dir_name) {
		out->type = SNAPSHOT_SYMLINK;
		out->mode = S_IFLNK | 0777;
	} else if (dir_name || S_ISDIR(out->mode)) {
		out->type = SNAPSHOT_DIR;
		out->mode = S_IFDIR | 0755;
	} else {
		out->type = SNAPSHOT_FILE;
		out->mode = S_IFREG | (out->mode & 0111 ? 0755 : 0644);
	}
	{
		const char *slash = strrchr(out->path, '/');

		out->name = slash ? slash + 1 : out->path;
	}
	return snapshot_name_is_safe(raw) ? 0 : 1;
}

static void entries_free(struct entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

/*
 * Reads every entry of @za into *out (sorted by path when @sort). With
 * @strict, an unsafe name is STORE_INVALID (message in @err); without,
 * such entries are skipped.
 */
static int entries_load(zip_t *za, int strict, struct entry **out, size_t *n,
			char *err, size_t errlen)
{
	zip_int64_t count = zip_get_num_entries(za, 0);
	struct entry *v;
	size_t used = 0;
	int rc = STORE_OK;

	if (count < 0)
		return STORE_CORRUPT;
	v = calloc((size_t)count + 1, sizeof(*v));
	if (!v)
		return STORE_NOMEM;
	for (zip_int64_t i = 0; i < count; i++) {
		int r = entry_read(za, (zip_uint64_t)i, &v[used]);

		if (r < 0) {
			rc = r == -ENOMEM ? STORE_NOMEM : STORE_CORRUPT;
			free(v[used].path);
			goto out_fail;
		}
		if (r == 1 && strict) {
			rc = snap_err(err, errlen, STORE_INVALID, "cannot extract "
				      "'%s': the entry's name leaves the "
				      "destination", zip_get_name(za,
				      (zip_uint64_t)i, ZIP_FL_ENC_RAW));
			free(v[used].path);
			goto out_fail;
		}
		if (r == 1) {
			free(v[used].path);
			continue;
		}
		used++;
	}
	qsort(v, used, sizeof(*v), entry_cmp);
	*out = v;
	*n = used;
	return STORE_OK;

out_fail:
	entries_free(v, used);
	return rc;
}

/* Refuses duplicates and entries below a symlink or a file. */
static int check_entries(const struct entry *v, size_t n, char *err,
			 size_t errlen)
{
	char prefix[PATH_MAX];

	for (size_t i = 0; i < n; i++) {
		if (i && strcmp(v[i - 1].path, v[i].path) == 0)
			return snap_err(err, errlen, STORE_INVALID,
					"cannot extract '%s': the zip holds it "
					"twice", v[i].path);
		for (const char *s = strchr(v[i].path, '/'); s;
		     s = strchr(s + 1, '/')) {
			const struct entry *p;
			size_t len = (size_t)(s - v[i].path);

			if (len >= sizeof(prefix))
				return snap_err(err, errlen, STORE_INVALID,
						"cannot extract '%s': name too "
						"long", v[i].path);
			memcpy(prefix, v[i].path, len);
			prefix[len] = '\0';
			p = bsearch(prefix, v, n, sizeof(*v), entry_key_cmp);
			if (p && p->type != SNAPSHOT_DIR)
				return snap_err(err, errlen, STORE_INVALID,
						"cannot extract '%s': it lies "
						"below '%s', which is a %s",
						v[i].path, prefix,
						p->type == SNAPSHOT_SYMLINK
						? "symlink" : "file");
		}
	}
	return STORE_OK;
}

/* ---- extraction ------------------------------------------------------------------- */

/*
 * Opens the directory holding @path below @dest_fd, making missing
 * directories, never following a symlink. Returns the fd or -errno; *last
 * points at the last component.
 */
static int open_parent(int dest_fd, const char *path, const char **last)
{
	char comp[NAME_MAX + 1];
	const char *p = path, *slash;
	int fd = dup(dest_fd);

	while (fd >= 0 && (slash = strchr(p, '/'))) {
		size_t len = (size_t)(slash - p);
		int next;

		if (len > NAME_MAX) {
			close(fd);
			return -ENAMETOOLONG;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
			next = -errno;
		} else {
			next = openat(fd, comp, O_RDONLY | O_DIRECTORY |
						O_NOFOLLOW | O_CLOEXEC);
			if (next < 0)
				next = -errno;
		}
		close(fd);
		if (next < 0)
			return next;
		fd = next;
		p = slash + 1;
	}
	*last = p;
	return fd < 0 ? -errno : fd;
}

/* Reads entry @e whole into @sb (symlink targets, PATH_MAX at most). */
static int read_entry(zip_t *za, const struct entry *e,
		      int (*fn)(void *ctx, const void *buf, size_t len),
		      void *ctx)
{
	zip_file_t *zf = zip_fopen_index(za, e->index, 0);
	uint64_t got = 0;
	char *buf;
	int rc = STORE_OK;

	if (!zf)
		return STORE_CORRUPT;
	buf = malloc(COPY_CHUNK);
	if (!buf) {
		zip_fclose(zf);
		return STORE_NOMEM;
	}
	for (;;) {
		zip_int64_t r = zip_fread(zf, buf, COPY_CHUNK);

		if (r < 0) {
			rc = STORE_CORRUPT;
			break;
		}
		if (r == 0)
			break;
		got += (uint64_t)r;
		rc = fn(ctx, buf, (size_t)r);
		if (rc != 0)
			break;
	}
	if (rc == STORE_OK && got != e->size)
		rc = STORE_CORRUPT;
	free(buf);
	zip_fclose(zf);
	return rc;
}

static int write_fd_cb(void *ctx, const void *buf, size_t len)
{
	const char *p = buf;
	int fd = *(int *)ctx;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return STORE_IO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int strbuf_cb(void *ctx, const void *buf, size_t len)
{
	return strbuf_add(ctx, buf, len) < 0 ? STORE_NOMEM : 0;
}

static int extract_one(zip_t *za, int dest_fd, const struct entry *e,
		       char *err, size_t errlen)
{
	struct strbuf target = STRBUF_INIT;
	struct timespec times[2];
	const char *last;
	int dir_fd, fd, rc = STORE_OK;

	dir_fd = open_parent(dest_fd, e->path, &last);
	if (dir_fd < 0)
		return snap_err(err, errlen, dir_fd == -ENOMEM ? STORE_NOMEM :
				STORE_IO, "cannot extract '%s': %s", e->path,
				strerror(-dir_fd));
	switch (e->type) {
	case SNAPSHOT_DIR:
		if (mkdirat(dir_fd, last, 0755) < 0 && errno != EEXIST)
			rc = snap_err(err, errlen, STORE_IO, "cannot extract "
				      "'%s': %s", e->path, strerror(errno));
		break;
	case SNAPSHOT_SYMLINK:
		strbuf_init(&target, PATH_MAX);
		rc = read_entry(za, e, strbuf_cb, &target);
		if (rc == STORE_OK &&
		    symlinkat(strbuf_str(&target), dir_fd, last) < 0)
			rc = snap_err(err, errlen, errno == EEXIST ?
				      STORE_EXISTS : STORE_IO, "cannot extract "
				      "'%s': %s", e->path, strerror(errno));
		else if (rc != STORE_OK)
			snap_err(err, errlen, rc, "cannot extract '%s': "
				 "damaged entry", e->path);
		strbuf_release(&target);
		break;
	case SNAPSHOT_FILE:
		fd = openat(dir_fd, last, O_WRONLY | O_CREAT | O_EXCL |
					  O_NOFOLLOW | O_CLOEXEC,
			    e->mode & 0777);
		if (fd < 0) {
			rc = snap_err(err, errlen, errno == EEXIST ?
				      STORE_EXISTS : STORE_IO, "cannot extract "
				      "'%s': %s", e->path, strerror(errno));
			break;
		}
		rc = read_entry(za, e, write_fd_cb, &fd);
		if (rc != STORE_OK)
			snap_err(err, errlen, rc, "cannot extract '%s': %s",
				 e->path, rc == STORE_IO ? strerror(errno)
				 : "damaged entry");
		times[0].tv_sec = times[1].tv_sec = e->mtime_ms / 1000;
		times[0].tv_nsec = times[1].tv_nsec = 0;
		if (rc == STORE_OK && (fchmod(fd, e->mode & 0777) < 0 ||
				       futimens(fd, times) < 0))
			rc = snap_err(err, errlen, STORE_IO, "cannot extract "
				      "'%s': %s", e->path, strerror(errno));
		if (close(fd) < 0 && rc == STORE_OK)
			rc = snap_err(err, errlen, STORE_IO, "cannot extract "
				      "'%s': %s", e->path, strerror(errno));
		break;
	}
	close(dir_fd);
	return rc;
}

int snapshot_extract_zip(const char *zip_path, const char *dest_dir,
			 char *err, size_t errlen)
{
	struct entry *v = NULL;
	size_t n = 0;
	int zerr = 0, dest_fd, rc;
	zip_t *za;

	za = zip_open(zip_path, ZIP_RDONLY, &zerr);
	if (!za)
		return snap_err(err, errlen, zerr == ZIP_ER_NOENT ?
				STORE_NOT_FOUND : STORE_CORRUPT,
				"cannot open '%s': %s", zip_path,
				zerr == ZIP_ER_NOENT ? "no such file" :
				"not a readable zip");
	dest_fd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dest_fd < 0) {
		rc = snap_err(err, errlen, STORE_NOT_FOUND, "cannot extract "
			      "into '%s': %s", dest_dir, strerror(errno));
		goto out_close;
	}
	rc = entries_load(za, 1, &v, &n, err, errlen);
	if (rc == STORE_OK)
		rc = check_entries(v, n, err, errlen);
	for (size_t i = 0; i < n && rc == STORE_OK; i++)
		rc = extract_one(za, dest_fd, &v[i], err, errlen);
	entries_free(v, n);
	close(dest_fd);
out_close:
	zip_discard(za);
	return rc;
}

int snapshot_extract(const char *workspace_dir, const char *id,
		     const char *dest_dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int rc = snapshot_zip_path(workspace_dir, id, path, sizeof(path));

	if (rc != STORE_OK)
		return snap_err(err, errlen, rc, "cannot extract snapshot "
				"'%s': not a snapshot id", id);
	return snapshot_extract_zip(path, dest_dir, err, errlen);
}

/* ---- the tree --------------------------------------------------------------------- */

/*
 * Invariants: @v is sorted by path and holds the root ("") and every
 * directory on the way to each entry, so a lookup is one bisection and a
 * directory's children are a contiguous run of @v. @za is only touched
 * under @lock.
 */
struct snapshot_tree {
	pthread_mutex_t lock;
	zip_t *za;
	struct entry *v;
	size_t n;
};

static void node_of(const struct entry *e, struct snapshot_node *out)
{
	out->path = e->path;
	out->name = e->name;
	out->type = e->type;
	out->mode = e->mode;
	out->size = e->size;
	out->mtime_ms = e->mtime_ms;
	out->index = e->index;
}

static int entry_push(struct entry **v, size_t *n, size_t *alloc,
		      char *dir_path)
{
	if (*n == *alloc) {
		size_t a = *alloc * 2 + 16;
		struct entry *nv = realloc(*v, a * sizeof(*nv));

		if (!nv)
			return STORE_NOMEM;
		*v = nv;
		*alloc = a;
	}
	memset(&(*v)[*n], 0, sizeof(**v));
	(*v)[*n].path = dir_path;
	(*v)[*n].type = SNAPSHOT_DIR;
	(*v)[*n].mode = S_IFDIR | 0755;
	(*v)[*n].index = UINT64_MAX;	/* implied, not in the zip */
	(*n)++;
	return STORE_OK;
}

/* Real entries before implied ones of the same path. */
static int entry_cmp_real_first(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	if (c)
		return c;
	return (x->index == UINT64_MAX) - (y->index == UINT64_MAX);
}

/*
 * Adds the root and every directory the zip implies but does not hold as
 * an entry, then sorts. Entries hold no duplicates (check_entries).
 */
static int add_implied_dirs(struct snapshot_tree *t)
{
	size_t n0 = t->n, alloc = t->n, out = 0;
	char *dir;
	int rc;

	dir = strdup("");
	if (!dir || (rc = entry_push(&t->v, &t->n, &alloc, dir)) != STORE_OK) {
		free(dir);
		return STORE_NOMEM;
	}
	for (size_t i = 0; i < n0; i++) {
		for (const char *s = strchr(t->v[i].path, '/'); s;
		     s = strchr(s + 1, '/')) {
			dir = strndup(t->v[i].path, (size_t)(s - t->v[i].path));
			if (!dir || entry_push(&t->v, &t->n, &alloc, dir)) {
				free(dir);
				return STORE_NOMEM;
			}
		}
	}
	qsort(t->v, t->n, sizeof(*t->v), entry_cmp_real_first);
	for (size_t i = 0; i < t->n; i++) {
		if (out && strcmp(t->v[out - 1].path, t->v[i].path) == 0) {
			free(t->v[i].path);
			continue;
		}
		t->v[out++] = t->v[i];
	}
	t->n = out;
	return STORE_OK;
}

int snapshot_tree_open(const char *workspace_dir, const char *id,
		       struct snapshot_tree **out)
{
	char path[PATH_MAX];
	struct snapshot_tree *t;
	int zerr = 0, rc;

	rc = snapshot_zip_path(workspace_dir, id, path, sizeof(path));
	if (rc != STORE_OK)
		return rc;
	t = calloc(1, sizeof(*t));
	if (!t)
		return STORE_NOMEM;
	t->za = zip_open(path, ZIP_RDONLY, &zerr);
	if (!t->za) {
		free(t);
		return zerr == ZIP_ER_NOENT ? STORE_NOT_FOUND : STORE_CORRUPT;
	}
	rc = entries_load(t->za, 0, &t->v, &t->n, NULL, 0);
	if (rc != STORE_OK)
		goto out_fail;
	/* Entries below a file or symlink would have no parent to show. */
	if (check_entries(t->v, t->n, NULL, 0) != STORE_OK) {
		rc = STORE_CORRUPT;
		goto out_fail;
	}
	rc = add_implied_dirs(t);
	if (rc != STORE_OK)
		goto out_fail;
	for (size_t i = 0; i < t->n; i++) {
		const char *slash = strrchr(t->v[i].path, '/');

		t->v[i].name = slash ? slash + 1 : t->v[i].path;
	}
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return STORE_OK;

out_fail:
	entries_free(t->v, t->n);
	zip_discard(t->za);
	free(t);
	return rc;
}

void snapshot_tree_free(struct snapshot_tree *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	entries_free(t->v, t->n);
	zip_discard(t->za);
	free(t);
}

static const struct entry *tree_find(const struct snapshot_tree *t,
				     const char *path)
{
	return bsearch(path, t->v, t->n, sizeof(*t->v), entry_key_cmp);
}

int snapshot_tree_lookup(struct snapshot_tree *t, const char *path,
			 struct snapshot_node *out)
{
	const struct entry *e = tree_find(t, path);

	if (!e)
		return STORE_NOT_FOUND;
	node_of(e, out);
	return STORE_OK;
}

int snapshot_tree_list(struct snapshot_tree *t, const char *dir_path,
		       int (*fn)(void *ctx, const struct snapshot_node *n),
		       void *ctx)
{
	const struct entry *e = tree_find(t, dir_path);
	size_t plen = strlen(dir_path);
	struct snapshot_node node;
	int rc;

	if (!e)
		return STORE_NOT_FOUND;
	if (e->type != SNAPSHOT_DIR)
		return STORE_INVALID;
	/* Children follow their directory: everything with its prefix. */
	for (e++; e < t->v + t->n; e++) {
		const char *rest = e->path;

		if (plen) {
			if (strncmp(e->path, dir_path, plen) != 0 ||
			    e->path[plen] != '/') {
				/* "a.b" sorts between "a" and "a/": skip */
				if (strncmp(e->path, dir_path, plen) == 0 &&
				    (unsigned char)e->path[plen] < '/')
					continue;
				break;
			}
			rest = e->path + plen + 1;
		}
		if (strchr(rest, '/'))
			continue;
		node_of(e, &node);
		rc = fn(ctx, &node);
		if (rc)
			return rc;
	}
	return STORE_OK;
}

int snapshot_tree_read_fn(struct snapshot_tree *t, const char *path,
			  int (*fn)(void *ctx, const void *buf, size_t len),
			  void *ctx)
{
	const struct entry *e = tree_find(t, path);
	int rc;

	if (!e)
		return STORE_NOT_FOUND;
	if (e->type == SNAPSHOT_DIR)
		return STORE_INVALID;
	pthread_mutex_lock(&t->lock);
	rc = read_entry(t->za, e, fn, ctx);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int snapshot_tree_read(struct snapshot_tree *t, const char *path,
		       struct strbuf *out)
{
	return snapshot_tree_read_fn(t, path, strbuf_cb, out);
}
