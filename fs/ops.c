/*
 * ops.c - the libfuse low-level operations table.
 *
 * Every handler has the same shape: resolve the inode to a node, check the
 * kind can do the operation, act through the kind (which calls store/),
 * bump versions (done by the kind), reply once. A kind that lacks an
 * operation gets a refusal with a message in the event log here, so no
 * kind has to remember to refuse what it does not do.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs_internal.h"

static struct fs_ctx *ctx_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- acting as the caller ------------------------------------------------- */

#define CALLER_GROUPS_MAX 64

/*
 * For kinds that mirror a real directory (as_caller): this thread's
 * filesystem identity becomes the caller's, so the real filesystem checks
 * permissions and owns new files as without the mount. fsuid, fsgid and
 * groups are per thread at the system call level (glibc's setgroups()
 * would change every thread: the raw call is used). A root caller, or a
 * daemon that is not root, needs no switch.
 */
static int caller_enter(fuse_req_t req, const struct fs_kind *k)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	gid_t groups[CALLER_GROUPS_MAX];
	int n;

	if (!k || !k->as_caller || fc->uid == 0 || geteuid() != 0)
		return 0;
	n = fuse_req_getgroups(req, CALLER_GROUPS_MAX, groups);
	if (n < 0)
		n = 0;
	if (n > CALLER_GROUPS_MAX)
		n = CALLER_GROUPS_MAX;
	syscall(SYS_setgroups, (size_t)n, groups);
	syscall(SYS_setfsgid, fc->gid);
	syscall(SYS_setfsuid, fc->uid);
	return 1;
}

static void caller_leave(int entered)
{
	if (!entered)
		return;
	syscall(SYS_setfsuid, 0);
	syscall(SYS_setfsgid, 0);
	syscall(SYS_setgroups, (size_t)0, NULL);
}

/* ---- small helpers shared by the kinds -------------------------------- */

int dirlist_add(struct dirlist *dl, const char *name, const struct fs_ident *id,
		int64_t mtime_ms)
{
	return dirlist_add_cached(dl, name, id, mtime_ms, NULL);
}

static void entry_cache_free(const struct fs_ident *id, void *cache)
{
	if (cache && id->kind->cache_free)
		id->kind->cache_free(cache);
}

int dirlist_add_cached(struct dirlist *dl, const char *name,
		       const struct fs_ident *id, int64_t mtime_ms, void *cache)
{
	struct dir_entry *e;

	if (dl->n == dl->alloc) {
		size_t alloc = dl->alloc ? dl->alloc * 2 : 32;
		struct dir_entry *v = realloc(dl->v, alloc * sizeof(*v));

		if (!v) {
			entry_cache_free(id, cache);
			return -ENOMEM;
		}
		dl->v = v;
		dl->alloc = alloc;
	}
	e = &dl->v[dl->n];
	e->name = strdup(name);
	if (!e->name) {
		entry_cache_free(id, cache);
		return -ENOMEM;
	}
	e->id = *id;
	/* A key that is the entry's name is kept with it; another key
	 * (a dataset's name in its versions) must outlive the listing. */
	if (id->key && strcmp(id->key, name) == 0)
		e->id.key = e->name;
	e->mtime_ms = mtime_ms;
	e->cache = cache;
	dl->n++;
	return 0;
}

const void *node_cache_get(struct fs_ctx *ctx, struct fs_node *node,
			   int (*fill)(struct fs_ctx *ctx,
				       struct fs_node *node, void **out),
			   int *err)
{
	const void *cache;
	void *made = NULL;

	*err = 0;
	pthread_mutex_lock(&node->lock);
	if (!node->kind_cache) {
		*err = fill(ctx, node, &made);
		if (*err == 0)
			node->kind_cache = made;
	}
	cache = node->kind_cache;
	pthread_mutex_unlock(&node->lock);
	return cache;
}

void dirlist_release(struct dirlist *dl)
{
	for (size_t i = 0; i < dl->n; i++) {
		free(dl->v[i].name);
		entry_cache_free(&dl->v[i].id, dl->v[i].cache);
	}
	free(dl->v);
	memset(dl, 0, sizeof(*dl));
}

int handle_accumulate(struct fs_handle *h, const char *buf, size_t len,
		      off_t off, size_t cap)
{
	if (off == 0)
		strbuf_reset(&h->buf);	/* rewritten from the start */
	h->wrote = 1;
	if (h->buf.len + len > cap)
		return -EFBIG;
	return strbuf_add(&h->buf, buf, len);
}

/* The identity of @dir/@name: a fixed entry, or one the kind looks up. */
static int resolve_child(struct fs_ctx *ctx, struct fs_node *dir,
			 const char *name, struct fs_ident *out)
{
	const struct fs_kind *k = dir->id.kind;

	*out = dir->id;	/* children inherit the experiment and run */
	out->key = NULL;
	out->obj_id = 0;
	for (const struct fs_entry *e = k->entries; e && e->name; e++) {
		if (strcmp(e->name, name) == 0) {
			if (e->kind->present && !e->kind->present(ctx, &dir->id))
				return -ENOENT;
			out->kind = e->kind;
			/* e.g. computes/NAME/queue: the key names the object */
			out->key = dir->id.key;
			return 0;
		}
	}
	return k->lookup ? k->lookup(ctx, dir, name, out) : -ENOENT;
}

/*
 * Whether @name is a fixed entry of directory kind @k that is always
 * there (no present hook): the kernel may keep such a name for as long
 * as it keeps its directory's, since it never goes while that does.
 */
static int name_is_fixed(const struct fs_kind *k, const char *name)
{
	for (const struct fs_entry *e = k->entries; e && e->name; e++)
		if (strcmp(e->name, name) == 0)
			return !e->kind->present;
	return 0;
}

/* Replies with the entry of @n, whose kernel lookup the caller took. */
static void reply_entry(fuse_req_t req, struct fs_ctx *ctx, struct fs_node *n)
{
	struct fuse_entry_param e;
	int rc;

	memset(&e, 0, sizeof(e));
	rc = node_stat(ctx, n, &e.attr);
	if (rc < 0) {
		node_forget(ctx, n->ino, 1);
		fuse_reply_err(req, -rc);
		return;
	}
	e.ino = n->ino;
	e.attr_timeout = node_attr_timeout(ctx, n);
	e.entry_timeout = node_entry_timeout(ctx, n);
	fuse_reply_entry(req, &e);
}

/* EROFS for a change to @node (or its entry @name) in a read-only part. */
static int refuse_erofs(struct fs_ctx *ctx, const char *op,
			struct fs_node *node, const char *name)
{
	return fs_refuse(ctx, op, node, name, EROFS,
			 "this part of the workspace is immutable");
}

static struct fs_node *dir_get(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_node *dir = node_get(ctx_of(req), ino);

	if (!dir) {
		fuse_reply_err(req, ENOENT);
		return NULL;
	}
	if (!S_ISDIR(dir->id.kind->mode)) {
		node_put(ctx_of(req), dir);
		fuse_reply_err(req, ENOTDIR);
		return NULL;
	}
	return dir;
}

/* ---- names -------------------------------------------------------------- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_node *dir, *n;
	struct fs_ident id;
	int rc, as;

	dir = dir_get(req, parent);
	if (!dir)
		return;
	as = caller_enter(req, dir->id.kind);
	rc = resolve_child(ctx, dir, name, &id);
	caller_leave(as);
	if (rc == -ENOENT) {
		/* Made by a writer whose first line is still on its way? */
		struct fs_node *child = node_child_get(ctx, dir, name);

		if (child && node_wait_carry(ctx, child))
			rc = resolve_child(ctx, dir, name, &id);
		node_put(ctx, child);
	}
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		goto out_put;
	}
	n = node_lookup_ref(ctx, dir, name, &id);
	if (!n) {
		fuse_reply_err(req, ENOMEM);
		goto out_put;
	}
	if (name_is_fixed(dir->id.kind, name))
		n->fixed = 1;
	reply_entry(req, ctx, n);
out_put:
	node_put(ctx, dir);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(ctx_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		node_forget(ctx_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* Shared by mkdir and create: the new child's entry after @make ran. */
static struct fs_node *child_made(fuse_req_t req, struct fs_node *dir,
				  const char *name, const struct fs_ident *id)
{
	struct fs_node *n = node_lookup_ref(ctx_of(req), dir, name, id);

	if (!n)
		fuse_reply_err(req, ENOMEM);
	return n;
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_make mk = { .mode = mode, .flags = 0, .fd = -1 };
	struct fs_node *dir, *n;
	struct fs_ident id;
	int rc, as;

	dir = dir_get(req, parent);
	if (!dir)
		return;
	if (dir->id.kind->erofs) {
		rc = refuse_erofs(ctx, "mkdir", dir, name);
		goto out_reply_err;
	}
	if (resolve_child(ctx, dir, name, &id) == 0) {
		rc = fs_refuse(ctx, "mkdir", dir, name, EEXIST,
			       "'%s' already exists", name);
		goto out_reply_err;
	}
	if (!dir->id.kind->mkdir) {
		rc = fs_refuse(ctx, "mkdir", dir, name, EPERM,
			       "directories cannot be made here");
		goto out_reply_err;
	}
	id = dir->id;
	id.key = NULL;
	id.obj_id = 0;
	as = caller_enter(req, dir->id.kind);
	rc = dir->id.kind->mkdir(ctx, dir, name, &mk, &id);
	caller_leave(as);
	if (rc < 0)
		goto out_reply_err;
	n = child_made(req, dir, name, &id);
	if (n)
		reply_entry(req, ctx, n);
	node_put(ctx, dir);
	return;

out_reply_err:
	fuse_reply_err(req, -rc);
	node_put(ctx, dir);
}

/* rmdir and unlink: the kind removes, then the name stops resolving. */
static void remove_child(fuse_req_t req, fuse_ino_t parent, const char *name,
			 int is_dir)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_node *dir;
	struct fs_ident id;
	int (*remove)(struct fs_ctx *, struct fs_node *, const char *);
	int rc, as;

	dir = dir_get(req, parent);
	if (!dir)
		return;
	as = caller_enter(req, dir->id.kind);
	rc = resolve_child(ctx, dir, name, &id);
	if (rc < 0)
		goto out_reply;
	remove = is_dir ? dir->id.kind->rmdir : dir->id.kind->unlink;
	if (dir->id.kind->erofs)
		rc = refuse_erofs(ctx, is_dir ? "rmdir" : "unlink", dir, name);
	else if (is_dir != !!S_ISDIR(id.kind->mode))
		rc = fs_refuse(ctx, is_dir ? "rmdir" : "unlink", dir, name,
			       is_dir ? ENOTDIR : EISDIR, "'%s' is %s", name,
			       is_dir ? "not a directory" : "a directory");
	else if (!remove)
		rc = fs_refuse(ctx, is_dir ? "rmdir" : "unlink", dir, name,
			       EPERM, "'%s' is part of the workspace's layout "
			       "and cannot be removed", name);
	else
		rc = remove(ctx, dir, name);
	if (rc == 0)
		node_unhash_child(ctx, dir, name);
out_reply:
	caller_leave(as);
	fuse_reply_err(req, -rc);
	node_put(ctx, dir);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_child(req, parent, name, 1);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_child(req, parent, name, 0);
}

/* rename(2) in a mirrored tree: the kind moves, the inode table follows. */
static void move_child(fuse_req_t req, struct fs_node *dir, const char *name,
		       fuse_ino_t newparent, const char *newname,
		       unsigned int flags)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_node *newdir = node_get(ctx, newparent);
	int rc, as;

	if (!newdir) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (newdir->id.kind->move != dir->id.kind->move ||
	    newdir->id.exp_id != dir->id.exp_id) {
		/* Another datastore, or the rest of the tree: as rename(2)
		 * across filesystems, so mv copies and removes. */
		fuse_reply_err(req, EXDEV);
		node_put(ctx, newdir);
		return;
	}
	as = caller_enter(req, dir->id.kind);
	rc = dir->id.kind->move(ctx, dir, name, newdir, newname, flags);
	caller_leave(as);
	if (rc == 0)
		node_move(ctx, dir, name, newdir, newname);
	fuse_reply_err(req, -rc);
	node_put(ctx, newdir);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_node *dir = node_get(ctx, parent);

	if (dir && dir->id.kind->move && !dir->id.kind->erofs) {
		move_child(req, dir, name, newparent, newname, flags);
	} else if (dir && dir->id.kind->rename && !dir->id.kind->erofs &&
	    newparent == parent) {
		int rc = dir->id.kind->rename(ctx, dir, name, newname, flags);

		if (rc == 0) {
			node_unhash_child(ctx, dir, name);
			node_unhash_child(ctx, dir, newname);
		}
		fuse_reply_err(req, -rc);
	} else if (dir && dir->id.kind->erofs)
		fuse_reply_err(req, -refuse_erofs(ctx, "rename", dir, name));
	else
		fuse_reply_err(req, -fs_refuse(ctx, "rename", dir, name, EPERM,
					       "names are ids and cannot "
					       "change (to '%s')", newname));
	node_put(ctx, dir);
}

/* Links and special files: nothing in the tree is made this way (yet). */
static void refuse_make(fuse_req_t req, fuse_ino_t parent, const char *name,
			const char *op, const char *what)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_node *dir = node_get(ctx, parent);

	if (dir && dir->id.kind->erofs)
		fuse_reply_err(req, -refuse_erofs(ctx, op, dir, name));
	else
		fuse_reply_err(req, -fs_refuse(ctx, op, dir, name, EPERM,
					       "%s cannot be made here", what));
	node_put(ctx, dir);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_node *dir, *n;
	struct fs_ident id;
	int rc, as;

	dir = node_get(ctx, parent);
	if (!dir || !dir->id.kind->symlink || dir->id.kind->erofs) {
		node_put(ctx, dir);
		refuse_make(req, parent, name, "symlink", "symbolic links");
		return;
	}
	id = dir->id;
	id.key = NULL;
	id.obj_id = 0;
	as = caller_enter(req, dir->id.kind);
	rc = dir->id.kind->symlink(ctx, dir, link, name, &id);
	caller_leave(as);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		goto out_put;
	}
	node_unhash_child(ctx, dir, name);	/* a moved alias: new target */
	n = child_made(req, dir, name, &id);
	if (n)
		reply_entry(req, ctx, n);
out_put:
	node_put(ctx, dir);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_node *n = node_get(ctx, ino);
	struct fs_node *dir = node_get(ctx, newparent), *made;
	struct fs_ident id;
	int rc, as;

	if (!n || !dir || !dir->id.kind->link || dir->id.kind->erofs) {
		refuse_make(req, newparent, newname, "link", "hard links");
		goto out_put;
	}
	if (n->id.exp_id != dir->id.exp_id || !n->id.kind->as_caller) {
		fuse_reply_err(req, EXDEV);
		goto out_put;
	}
	id = dir->id;
	id.key = NULL;
	as = caller_enter(req, dir->id.kind);
	rc = dir->id.kind->link(ctx, n, dir, newname, &id);
	caller_leave(as);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		goto out_put;
	}
	made = child_made(req, dir, newname, &id);
	if (made)
		reply_entry(req, ctx, made);
out_put:
	node_put(ctx, dir);
	node_put(ctx, n);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void)mode;
	(void)rdev;
	refuse_make(req, parent, name, "mknod", "device files and fifos");
}

/* ---- attributes ------------------------------------------------------------ */

/*
 * fstat of an open mirrored file: it answers even after the file was
 * removed or renamed outside the mount. -ENOENT when it does not apply.
 */
static int getattr_open(struct fs_node *n, struct fuse_file_info *fi,
			struct stat *st)
{
	struct fs_handle *h;

	if (!fi || !n->id.kind->stat_full)
		return -ENOENT;
	h = (struct fs_handle *)(uintptr_t)fi->fh;
	if (!h || h->backing_fd < 0)
		return -ENOENT;
	if (fstat(h->backing_fd, st) < 0)
		return -errno;
	st->st_ino = n->ino;
	return 0;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_node *n = node_get(ctx, ino);
	struct stat st;
	int rc;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	node_wait_carry(ctx, n);
	rc = getattr_open(n, fi, &st);
	if (rc == -ENOENT)
		rc = node_stat(ctx, n, &st);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, node_attr_timeout(ctx, n));
	node_put(ctx, n);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_node *n = node_get(ctx, ino);
	const struct fs_kind *k;
	struct stat st;
	int rc = 0;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	k = n->id.kind;
	if (k->erofs) {
		rc = refuse_erofs(ctx, (to_set & FUSE_SET_ATTR_SIZE) ? "truncate"
				  : "setattr", n, NULL);
	} else if (k->setattr) {
		int as = caller_enter(req, k);

		rc = k->setattr(ctx, n, attr, to_set,
				fi ? (struct fs_handle *)(uintptr_t)fi->fh : NULL);
		caller_leave(as);
	} else if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
			   FUSE_SET_ATTR_GID))
		rc = fs_refuse(ctx, "setattr", n, NULL, EPERM,
			       "mode and owner are fixed: they tell what the "
			       "file does");
	else if ((to_set & FUSE_SET_ATTR_SIZE) && S_ISDIR(k->mode))
		rc = fs_refuse(ctx, "truncate", n, NULL, EISDIR,
			       "a directory has no size to set");
	else if ((to_set & FUSE_SET_ATTR_SIZE) && !k->truncate)
		rc = fs_refuse(ctx, "truncate", n, NULL, EACCES,
			       "the file is read-only");
	else if (to_set & FUSE_SET_ATTR_SIZE)
		rc = k->truncate(ctx, n, attr->st_size);
	else if ((to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) &&
		 k->touch)
		rc = k->touch(ctx, n);
	/* Times are the objects' own: touch changes none of them. */
	if (rc == 0)
		rc = node_stat(ctx, n, &st);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, node_attr_timeout(ctx, n));
	node_put(ctx, n);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_node *n = node_get(ctx, ino);
	int rc;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	pthread_mutex_lock(&n->lock);
	rc = S_ISLNK(n->id.kind->mode) ? node_refresh(ctx, n) : -EINVAL;
	if (rc == 0 && n->content.fd >= 0)
		rc = -EIO;	/* link targets are short and never spilled */
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, strbuf_str(&n->content.mem));
	pthread_mutex_unlock(&n->lock);
	node_put(ctx, n);
}

/* ---- files ------------------------------------------------------------------- */

static struct fs_handle *handle_new(struct fs_node *n, int flags)
{
	struct fs_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->node = n;
	h->flags = flags;
	h->backing_fd = -1;
	strbuf_init(&h->buf, SIZE_MAX);
	strbuf_init(&h->reply, SIZE_MAX);
	strbuf_init(&h->view.mem, SIZE_MAX);
	h->view.fd = -1;
	return h;
}

static void handle_free(struct fs_ctx *ctx, struct fs_handle *h)
{
	passthrough_end(ctx, h);
	if (h->backing_fd >= 0)
		close(h->backing_fd);
	strbuf_release(&h->buf);
	strbuf_release(&h->reply);
	if (h->viewing && h->node) {
		/*
		 * A reader is woken while the reply to its read is still in
		 * writev(), and may close at once: the view goes once
		 * read_view is done with it (it replies under the lock).
		 */
		pthread_mutex_lock(&h->node->lock);
		content_release(&h->view);
		pthread_mutex_unlock(&h->node->lock);
	}
	dirlist_release(&h->dl);
	node_put(ctx, h->node);
	free(h);
}

/*
 * A reader may keep the kernel's cached pages of @n: content that only
 * grows keeps them (they are a prefix of the new bytes), other content
 * only if it is the version the kernel was last given. Writers never read
 * through the cache (direct_io), so they skip this and its rendering.
 */
static int open_decide_cache(struct fs_ctx *ctx, struct fs_node *n,
			     struct fuse_file_info *fi)
{
	int rc;

	node_wait_carry(ctx, n);
	pthread_mutex_lock(&n->lock);
	rc = node_refresh(ctx, n);
	if (rc == 0) {
		fi->keep_cache = n->id.kind->append_only ||
				 n->content.kernel_ver == n->content.ver;
		n->content.kernel_ver = n->content.ver;
	}
	pthread_mutex_unlock(&n->lock);
	return rc;
}

/*
 * Rendered files that change by being replaced (a status, a JSON file,
 * the events), not by growing: a reader reads them one version at a time.
 */
static int read_by_version(const struct fs_kind *k, int flags)
{
	return S_ISREG(k->mode) && k->render && !k->append_only &&
	       !k->backing_open && !k->read && !k->act &&
	       (flags & O_ACCMODE) == O_RDONLY;
}

/* Renders @n at open, so that a file that cannot be made fails there. */
static int open_render(struct fs_ctx *ctx, struct fs_node *n)
{
	int rc;

	pthread_mutex_lock(&n->lock);
	rc = node_refresh(ctx, n);
	pthread_mutex_unlock(&n->lock);
	return rc;
}

/* May @n be opened with @fi->flags? Truncates append-only files. */
static int open_check(struct fs_ctx *ctx, struct fs_node *n,
		      struct fuse_file_info *fi, int created)
{
	const struct fs_kind *k = n->id.kind;
	int writable = (fi->flags & O_ACCMODE) != O_RDONLY;

	if (S_ISDIR(k->mode))
		return fs_refuse(ctx, "open", n, NULL, EISDIR,
				 "a directory cannot be opened as a file");
	if (writable && k->erofs)
		return refuse_erofs(ctx, "open", n, NULL);
	if (writable && !k->write)
		return fs_refuse(ctx, "open", n, NULL, EACCES,
				 "the file is read-only");
	if (writable && (fi->flags & O_TRUNC) && k->append_only && !created)
		return k->truncate(ctx, n, 0);
	return 0;
}

/*
 * Checks an open of @n with @fi->flags and makes its handle; the node
 * reference passes to the handle, and so does @made_fd (a descriptor the
 * kind's create opened, or -1), which is closed on failure. 0 or -errno.
 */
static int open_file(struct fs_ctx *ctx, struct fs_node *n,
		     struct fuse_file_info *fi, int created, int made_fd)
{
	const struct fs_kind *k = n->id.kind;
	int writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct fs_handle *h = NULL;
	int backing_fd = made_fd;
	int rc;

	rc = open_check(ctx, n, fi, created);
	if (rc < 0)
		goto out_close;
	if (k->backing_open) {
		if (backing_fd < 0)
			rc = k->backing_open(ctx, n, fi->flags, &backing_fd);
		/* A mirrored file can change outside the mount: reread. */
		fi->keep_cache = !k->stat_full &&
				 (k->dep == DEP_NONE || k->append_only);
	} else if (k->read) {
		fi->keep_cache = k->dep == DEP_NONE;
	} else if (read_by_version(k, fi->flags)) {
		rc = open_render(ctx, n);	/* no page cache is kept */
	} else if ((fi->flags & O_ACCMODE) != O_WRONLY && !k->act) {
		rc = open_decide_cache(ctx, n, fi);
	}
	if (rc < 0)
		goto out_close;
	h = handle_new(n, fi->flags);
	if (!h) {
		rc = -ENOMEM;
		goto out_close;
	}
	h->backing_fd = backing_fd;
	backing_fd = -1;
	h->created = created;
	h->truncated = writable && (fi->flags & O_TRUNC);
	if (k->opened) {
		rc = k->opened(ctx, h);
		if (rc < 0) {
			h->node = NULL;	/* the caller keeps its reference */
			handle_free(ctx, h);
			return rc;
		}
	}
	/*
	 * Writers bypass the page cache: we store what they mean, not bytes.
	 * Files with a backing descriptor are bytes, cached as any file.
	 * Readers of a file that is replaced bypass it too: the page cache
	 * holds one version for every reader, and a file replaced between a
	 * reader's read() calls would give it the start of one version and
	 * the end of the next (read_view). And a kind may read around it
	 * (read_direct: the first pass over a large remote file).
	 */
	h->viewing = read_by_version(k, fi->flags);
	h->direct = k->read_direct && k->read_direct(ctx, h);
	fi->direct_io = (writable && !k->backing_open) || k->act ||
			h->viewing || h->direct;
	/* No FLUSH round trip at every close unless the kind acts on it. */
	fi->noflush = !k->flush;
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;

out_close:
	if (backing_fd >= 0)
		close(backing_fd);
	return rc;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_node *n = node_get(ctx, ino);
	struct fs_handle *h;
	int rc, as, id;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	as = caller_enter(req, n->id.kind);
	rc = open_file(ctx, n, fi, 0, -1);
	caller_leave(as);
	if (rc < 0) {
		node_put(ctx, n);
		fuse_reply_err(req, -rc);
		return;
	}
	h = (struct fs_handle *)(uintptr_t)fi->fh;
	id = passthrough_begin(ctx, h);
	if (id < 0) {
		handle_free(ctx, h);
		fuse_reply_err(req, -id);
		return;
	}
	rc = id > 0 ? passthrough_reply_open(req, fi, id)
		    : fuse_reply_open(req, fi);
	/* The kernel never got the handle (the opener was interrupted, the
	 * mount is going): it will send no release for it. */
	if (rc < 0)
		handle_free(ctx, h);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_make mk = { .mode = mode, .flags = fi->flags, .fd = -1 };
	struct fs_node *dir, *n;
	struct fuse_entry_param e;
	struct fs_ident id;
	int created = 0;
	int rc, as;

	dir = dir_get(req, parent);
	if (!dir)
		return;
	as = caller_enter(req, dir->id.kind);
	if (dir->id.kind->erofs) {
		rc = refuse_erofs(ctx, "create", dir, name);
		goto out_reply_err;
	}
	rc = resolve_child(ctx, dir, name, &id);
	if (rc == 0 && (fi->flags & O_EXCL)) {
		rc = fs_refuse(ctx, "create", dir, name, EEXIST,
			       "'%s' already exists", name);
		goto out_reply_err;
	}
	if (rc == -ENOENT) {
		if (!dir->id.kind->create) {
			rc = fs_refuse(ctx, "create", dir, name, EACCES,
				       "files cannot be made here");
			goto out_reply_err;
		}
		id = dir->id;
		id.key = NULL;
		id.obj_id = 0;
		rc = dir->id.kind->create(ctx, dir, name, &mk, &id);
		created = 1;
	}
	if (rc < 0)
		goto out_reply_err;
	n = child_made(req, dir, name, &id);
	if (!n)
		goto out_put;
	memset(&e, 0, sizeof(e));
	rc = node_stat(ctx, n, &e.attr);
	if (rc == 0) {
		pthread_mutex_lock(&ctx->itable.lock);
		n->refs++;	/* the handle's */
		pthread_mutex_unlock(&ctx->itable.lock);
		rc = open_file(ctx, n, fi, created, mk.fd);
		mk.fd = -1;	/* the handle's now, or closed by open_file */
		if (rc < 0)
			node_put(ctx, n);
	}
	if (rc < 0) {
		node_forget(ctx, n->ino, 1);
		goto out_reply_err;
	}
	e.ino = n->ino;
	e.attr_timeout = node_attr_timeout(ctx, n);
	/*
	 * A file made here exists in the store only from its first accepted
	 * write: the kernel must ask again, or a refused first write would
	 * leave a name that looks real for a while.
	 */
	e.entry_timeout = created && !n->id.kind->stat_full
			  ? 0 : node_entry_timeout(ctx, n);
	caller_leave(as);
	as = 0;
	if (fuse_reply_create(req, &e, fi) < 0)	/* as in op_open */
		handle_free(ctx, (struct fs_handle *)(uintptr_t)fi->fh);
	goto out_put;

out_reply_err:
	fuse_reply_err(req, -rc);
out_put:
	caller_leave(as);
	if (mk.fd >= 0)
		close(mk.fd);
	node_put(ctx, dir);
}

/*
 * The buffer of a worker thread's reads made by a kind, kept for the
 * thread's life: a fresh 1 MiB allocation per read would be mapped and
 * faulted in page by page every time.
 */
static __thread char *read_buf;
static __thread size_t read_buf_len;

static void read_buf_free(void *p)
{
	free(p);
}

static pthread_key_t read_buf_key;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;

static void read_buf_key_make(void)
{
	pthread_key_create(&read_buf_key, read_buf_free);
}

static char *read_buf_get(size_t size)
{
	char *p;

	if (size <= read_buf_len)
		return read_buf;
	p = realloc(read_buf, size);
	if (!p)
		return NULL;
	read_buf = p;
	read_buf_len = size;
	/* freed when the worker thread ends */
	pthread_once(&read_buf_once, read_buf_key_make);
	pthread_setspecific(read_buf_key, p);
	return p;
}

/* Files whose kind makes their bytes per read (an HTTP file). */
static void read_by_kind(fuse_req_t req, struct fs_handle *h, size_t size,
			 off_t off)
{
	char *buf = read_buf_get(size ? size : 1);
	ssize_t n;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = h->node->id.kind->read(ctx_of(req), h, buf, size, off);
	if (n >= 0 && (size_t)n < size && h->direct)
		atomic_store(&h->node->read_to_end, 1);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

/*
 * A read of a backing file too large to splice: into this thread's
 * buffer, kept from read to read, then out. libfuse's own fallback
 * mallocs and frees a fresh buffer per read, each faulted in anew.
 */
static void read_backing(fuse_req_t req, struct fs_handle *h, size_t size,
			 off_t off)
{
	char *buf = read_buf_get(size);
	size_t got = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	while (got < size) {
		ssize_t n = pread(h->backing_fd, buf + got, size - got,
				  off + (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;

			fuse_reply_err(req, -fs_refuse(ctx_of(req), "read",
						       h->node, NULL, err,
						       "%s", strerror(err)));
			return;
		}
		if (n == 0)
			break;	/* end of file */
		got += (size_t)n;
	}
	fuse_reply_buf(req, buf, got);
}

/*
 * A read of a file read one version at a time: a read from the start
 * takes the current version; reads further on continue in it. At its
 * end, a version that only grew since continues (tail -f of events); one
 * rewritten otherwise ends there, and the next read from the start gives
 * it. Each read(2) reaches us (direct_io) with this open's handle.
 */
static void read_view(fuse_req_t req, struct fs_ctx *ctx, struct fs_handle *h,
		      size_t size, off_t off)
{
	struct fs_node *n = h->node;
	int rc, view_rc = 0;

	pthread_mutex_lock(&n->lock);
	rc = node_refresh(ctx, n);
	if (rc == 0 && (off == 0 || !h->view.rendered ||
			((size_t)off >= h->view.len &&
			 content_extends(&n->content, &h->view))))
		view_rc = content_view_take(&h->view, &n->content);
	if (rc == 0 && view_rc == 0)
		content_reply_read(req, &h->view, size, off);
	pthread_mutex_unlock(&n->lock);
	if (view_rc < 0)	/* the events line is written without the lock */
		rc = fs_refuse(ctx, "read", n, NULL, -view_rc, "cannot keep the "
			       "version this open reads: %s", strerror(-view_rc));
	if (rc < 0)
		fuse_reply_err(req, -rc);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	struct fs_node *n = h->node;
	int rc;

	(void)ino;
	if (n->id.kind->act) {
		special_reply_read(req, h, size, off);
		return;
	}
	if (h->backing_fd >= 0 && n->id.kind->read_check &&
	    (rc = n->id.kind->read_check(ctx, h)) < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (h->backing_fd >= 0 && size > FS_SPLICE_MAX) {
		read_backing(req, h, size, off);
		return;
	}
	if (h->backing_fd >= 0) {
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv.buf[0].fd = h->backing_fd;
		bv.buf[0].pos = off;
		fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
		return;
	}
	if (n->id.kind->read) {
		read_by_kind(req, h, size, off);
		return;
	}
	if (h->viewing) {
		read_view(req, ctx, h, size, off);
		return;
	}
	pthread_mutex_lock(&n->lock);
	rc = node_refresh(ctx, n);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		content_reply_read(req, &n->content, size, off);
	pthread_mutex_unlock(&n->lock);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	int rc;

	(void)ino;
	h->writer = *fuse_req_ctx(req);
	rc = h->node->id.kind->write(ctx, h, buf, size, off);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, (size_t)rc);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	const struct fs_kind *k = h->node->id.kind;

	(void)ino;
	h->closer = fuse_req_ctx(req)->pid;
	fuse_reply_err(req, k->flush ? -k->flush(ctx_of(req), h) : 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	const struct fs_kind *k = h->node->id.kind;

	(void)ino;
	if (k->release)
		k->release(ctx_of(req), h);
	handle_free(ctx_of(req), h);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	const struct fs_kind *k = h->node->id.kind;

	(void)ino;
	/* Without a hook every write was committed before it returned. */
	fuse_reply_err(req, k->fsync ? -k->fsync(ctx_of(req), h, datasync) : 0);
}

/* ---- directories ---------------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_node *n = dir_get(req, ino);
	struct fs_handle *h;
	uint64_t ver;

	if (!n)
		return;
	h = handle_new(n, fi->flags);
	if (!h) {
		node_put(ctx, n);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	/* The kernel may keep our listing while the directory is unchanged. */
	ver = version_get(ctx, n->id.kind->dep, node_dep_id(n));
	fi->cache_readdir = !n->id.kind->listing_live;
	pthread_mutex_lock(&n->lock);
	fi->keep_cache = n->list_cached && n->list_ver == ver &&
			 fi->cache_readdir;
	n->list_cached = 1;
	n->list_ver = ver;
	pthread_mutex_unlock(&n->lock);
	if (fuse_reply_open(req, fi) == -ENOENT)
		handle_free(ctx, h);
}

static int listing_build(struct fs_ctx *ctx, struct fs_handle *h)
{
	struct fs_node *dir = h->node;
	const struct fs_kind *k = dir->id.kind;
	struct fs_ident id;
	int rc;

	h->list_clock = version_clock(ctx);
	for (const struct fs_entry *e = k->entries; e && e->name; e++) {
		if (e->kind->present && !e->kind->present(ctx, &dir->id))
			continue;
		id = dir->id;
		id.kind = e->kind;
		id.key = NULL;
		id.obj_id = 0;
		rc = dirlist_add(&h->dl, e->name, &id, 0);
		if (rc < 0)
			return rc;
		/* fixed entries share their directory's key (see resolve_child) */
		h->dl.v[h->dl.n - 1].id.key = dir->id.key;
	}
	if (k->list) {
		rc = k->list(ctx, dir, &h->dl);
		if (rc < 0)
			return rc;
	}
	h->listed = 1;
	return 0;
}

/*
 * A listed directory's times came with the listing: keep them, so that
 * "ls -l" of 10,000 runs costs one query, not 10,000. A file whose kind
 * keeps a cache (a version's file) takes the one its listing made.
 */
static void prime_from_listing(struct fs_ctx *ctx, struct fs_handle *h,
			       struct fs_node *n, struct dir_entry *e)
{
	const struct fs_kind *k = n->id.kind;
	uint64_t ver;

	if (!S_ISDIR(k->mode)) {
		pthread_mutex_lock(&n->lock);
		if (e->cache && !n->kind_cache && e->id.kind == k) {
			n->kind_cache = e->cache;
			e->cache = NULL;
		}
		pthread_mutex_unlock(&n->lock);
		return;
	}
	if (e->mtime_ms <= 0)
		return;
	ver = version_get(ctx, k->dep, node_dep_id(n));
	pthread_mutex_lock(&n->lock);
	if (!n->content.rendered && ver <= h->list_clock) {
		n->content.mtime_ms = e->mtime_ms;
		n->content.ver = ver;
		n->content.rendered = 1;
	}
	pthread_mutex_unlock(&n->lock);
}

/* Adds one entry; 0 when it did not fit. */
static size_t add_entry(fuse_req_t req, struct fs_handle *h, char *buf,
			size_t room, struct dir_entry *e, off_t next,
			int plus)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fuse_entry_param ep;
	struct fs_node *n;
	size_t used;

	memset(&ep, 0, sizeof(ep));
	if (!plus) {
		ep.attr.st_mode = e->id.kind->mode;
		used = fuse_add_direntry(req, buf, room, e->name, &ep.attr, next);
		return used > room ? 0 : used;
	}
	n = node_lookup_ref(ctx, h->node, e->name, &e->id);
	if (!n)
		return 0;
	if (name_is_fixed(h->node->id.kind, e->name))
		n->fixed = 1;
	prime_from_listing(ctx, h, n, e);
	if (node_stat(ctx, n, &ep.attr) < 0) {
		/* Gone since listed: hand out no lookup; the name stays. */
		node_forget(ctx, n->ino, 1);
		ep.attr.st_mode = e->id.kind->mode;
		used = fuse_add_direntry_plus(req, buf, room, e->name, &ep, next);
		return used > room ? 0 : used;
	}
	ep.ino = n->ino;
	ep.attr_timeout = node_attr_timeout(ctx, n);
	ep.entry_timeout = node_entry_timeout(ctx, n);
	used = fuse_add_direntry_plus(req, buf, room, e->name, &ep, next);
	if (used > room) {
		node_forget(ctx, n->ino, 1);	/* not sent: not looked up */
		return 0;
	}
	return used;
}

static void readdir_common(fuse_req_t req, size_t size, off_t off,
			   struct fuse_file_info *fi, int plus)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	size_t pos = 0;
	char *buf;
	int rc;

	if (!h->listed) {
		rc = listing_build(ctx, h);
		if (rc < 0) {
			fuse_reply_err(req, -rc);
			return;
		}
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = (size_t)off; i < h->dl.n; i++) {
		size_t used = add_entry(req, h, buf + pos, size - pos,
					&h->dl.v[i], (off_t)i + 1, plus);

		if (!used)
			break;
		pos += used;
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)ino;
	readdir_common(req, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	readdir_common(req, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	handle_free(ctx_of(req), (struct fs_handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* ---- the file system ------------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs_ctx *ctx = userdata;

	atomic_store(&ctx->inited, 1);
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* Always readdirplus: "ls" then "ls -l" should not look up twice. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/*
	 * Page cache validity is decided at open (keep_cache) and by size
	 * changes; with automatic invalidation the kernel would also ask for
	 * attributes before every read() of a live file.
	 */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* O_TRUNC in open's flags, not a separate truncate: "echo x > tag"
	 * then replaces the value in one step. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_ctx *ctx = ctx_of(req);
	struct fs_node *n = node_get(ctx, ino);
	struct statvfs sv;
	int rc = 0;

	/* df in a datastore's files/ tells about the datastore's disk. */
	if (n && n->id.kind->statfs)
		rc = n->id.kind->statfs(ctx, n, &sv);
	else if (statvfs(store_dir(ctx->st), &sv) < 0)
		rc = -errno;
	node_put(ctx, n);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops mlfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mkdir = op_mkdir,
	.rmdir = op_rmdir,
	.unlink = op_unlink,
	.rename = op_rename,
	.symlink = op_symlink,
	.link = op_link,
	.mknod = op_mknod,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
};
