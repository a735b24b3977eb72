/*
 * snapshots.c - snapshots/, snapshots/ID/{snapshot.json, snapshot.zip,
 * files/}: the workspace's snapshots, read-only.
 *
 * Everything below snapshots/ID is immutable (DEP_NONE: long timeouts,
 * kept pages) and every change anywhere under snapshots/ is EROFS (the
 * kinds' erofs flag, enforced by ops.c). snapshot.json and snapshot.zip
 * are backing files: reads go straight from the workspace's files.
 *
 * The tree under files/ is served from the zip through struct
 * snapshot_tree. A node's path inside the snapshot is the names of its
 * ancestors up to files/, and the snapshot id is the name of the
 * directory above files/: names never change and parents outlive their
 * children, so this walk needs no lock and no copy of the path.
 *
 * Open trees are cached per snapshot id in ctx->snap_trees: at most
 * SNAP_TREES_MAX, the least recently used one that no request holds is
 * closed to make room; when every slot is busy a request opens a tree of
 * its own and closes it after.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs_internal.h"
#include "mlfs/snapshot.h"

#define SNAP_TREES_MAX 16

struct snap_slot {
	char id[SNAPSHOT_ID_LEN + 1];	/* "" = empty */
	struct snapshot_tree *tree;
	unsigned refs;
	uint64_t used;
};

struct snap_trees {
	pthread_mutex_t lock;
	struct snap_slot slot[SNAP_TREES_MAX];
	uint64_t clock;
	int64_t dir_mtime_ns;	/* snapshots/ when the watcher last looked */
};

/* A tree borrowed for one request; snap_tree_put() gives it back. */
struct snap_ref {
	struct snapshot_tree *tree;
	struct snap_slot *slot;	/* NULL: not cached, freed by the put */
};

int snapshots_ctx_init(struct fs_ctx *ctx)
{
	ctx->snap_trees = calloc(1, sizeof(*ctx->snap_trees));
	if (!ctx->snap_trees)
		return -ENOMEM;
	pthread_mutex_init(&ctx->snap_trees->lock, NULL);
	return 0;
}

void snapshots_ctx_release(struct fs_ctx *ctx)
{
	struct snap_trees *st = ctx->snap_trees;

	if (!st)
		return;
	for (size_t i = 0; i < SNAP_TREES_MAX; i++)
		snapshot_tree_free(st->slot[i].tree);
	pthread_mutex_destroy(&st->lock);
	free(st);
	ctx->snap_trees = NULL;
}

static struct snap_slot *slot_find(struct snap_trees *st, const char *id)
{
	for (size_t i = 0; i < SNAP_TREES_MAX; i++)
		if (strcmp(st->slot[i].id, id) == 0)
			return &st->slot[i];
	return NULL;
}

/* An empty slot, or the least recently used idle one (emptied). */
static struct snap_slot *slot_free(struct snap_trees *st)
{
	struct snap_slot *best = NULL;

	for (size_t i = 0; i < SNAP_TREES_MAX; i++) {
		struct snap_slot *s = &st->slot[i];

		if (!s->id[0])
			return s;
		if (!s->refs && (!best || s->used < best->used))
			best = s;
	}
	if (best) {
		snapshot_tree_free(best->tree);
		memset(best, 0, sizeof(*best));
	}
	return best;
}

static int snap_tree_get(struct fs_ctx *ctx, const char *id,
			 struct snap_ref *ref)
{
	struct snap_trees *st = ctx->snap_trees;
	struct snapshot_tree *t = NULL;
	struct snap_slot *s;
	int rc;

	pthread_mutex_lock(&st->lock);
	s = slot_find(st, id);
	if (s)
		goto out_take;
	pthread_mutex_unlock(&st->lock);
	/* Opening reads the zip's directory: not under the lock. */
	rc = snapshot_tree_open(store_dir(ctx->st), id, &t);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	pthread_mutex_lock(&st->lock);
	s = slot_find(st, id);	/* another request may have opened it */
	if (s) {
		snapshot_tree_free(t);
		goto out_take;
	}
	s = slot_free(st);
	if (!s) {
		pthread_mutex_unlock(&st->lock);
		ref->tree = t;
		ref->slot = NULL;
		return 0;
	}
	memcpy(s->id, id, SNAPSHOT_ID_LEN + 1);
	s->tree = t;
out_take:
	s->refs++;
	s->used = ++st->clock;
	ref->tree = s->tree;
	ref->slot = s;
	pthread_mutex_unlock(&st->lock);
	return 0;
}

static void snap_tree_put(struct fs_ctx *ctx, struct snap_ref *ref)
{
	if (!ref->slot) {
		snapshot_tree_free(ref->tree);
		return;
	}
	pthread_mutex_lock(&ctx->snap_trees->lock);
	ref->slot->refs--;
	pthread_mutex_unlock(&ctx->snap_trees->lock);
}

void snapshots_watch(struct fs_ctx *ctx)
{
	struct snap_trees *st = ctx->snap_trees;
	char path[PATH_MAX];
	struct stat sb;
	int64_t mtime_ns = 0;

	snprintf(path, sizeof(path), "%s/snapshots", store_dir(ctx->st));
	if (stat(path, &sb) == 0)
		mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 +
			   sb.st_mtim.tv_nsec;
	/*
	 * Two snapshots added in one clock tick leave one mtime: keep
	 * bumping while the mtime is recent, so the second one is seen too.
	 */
	if (mtime_ns != st->dir_mtime_ns ||
	    time(NULL) - (time_t)(mtime_ns / 1000000000) < 2)
		version_bump(ctx, DEP_SNAPSHOTS, 0);
	st->dir_mtime_ns = mtime_ns;
}

/* ---- where a node is ---------------------------------------------------- */

extern const struct fs_kind kind_snapshot;
extern const struct fs_kind kind_snap_dir;
static const struct fs_kind kind_snap_files;

/*
 * The snapshot id of @n (a node at or below snapshots/ID/files) and its
 * path inside the snapshot ("" for files/ itself).
 */
static int node_where(struct fs_node *n, const char **id, struct strbuf *path)
{
	const char *names[256];
	size_t depth = 0;

	for (; n && n->id.kind != &kind_snap_files; n = n->parent) {
		if (depth == sizeof(names) / sizeof(names[0]))
			return -ENAMETOOLONG;
		names[depth++] = n->name;
	}
	if (!n || !n->parent || n->parent->id.kind != &kind_snapshot)
		return -EIO;	/* the kinds form a tree: cannot happen */
	*id = n->parent->name;
	while (depth--) {
		strbuf_addstr(path, names[depth]);
		if (depth)
			strbuf_addch(path, '/');
	}
	return path->err;
}

/* The snapshot node @n belongs to (at or below snapshots/ID). */
static struct fs_node *snapshot_node_of(struct fs_node *n)
{
	while (n && n->id.kind != &kind_snapshot)
		n = n->parent;
	return n;
}

/* Looks up @n's tree node; 0 or -errno. */
static int tree_node(struct fs_ctx *ctx, struct fs_node *n,
		     struct snap_ref *ref, struct strbuf *path,
		     struct snapshot_node *out)
{
	const char *id;
	int rc = node_where(n, &id, path);

	if (rc < 0)
		return rc;
	rc = snap_tree_get(ctx, id, ref);
	if (rc < 0)
		return rc;
	rc = snapshot_tree_lookup(ref->tree, strbuf_str(path), out);
	if (rc != STORE_OK) {
		snap_tree_put(ctx, ref);
		return -fs_errno(rc);
	}
	return 0;
}

/* ---- snapshots/ ------------------------------------------------------------ */

static int snapshots_lookup(struct fs_ctx *ctx, struct fs_node *dir,
			    const char *name, struct fs_ident *out)
{
	struct snapshot_info info;
	int rc;

	(void)dir;
	rc = snapshot_get(store_dir(ctx->st), name, &info);
	if (rc == STORE_INVALID)
		return -ENOENT;
	if (rc != STORE_OK)
		return -fs_errno(rc);
	out->kind = &kind_snapshot;
	return 0;
}

static int snapshot_entry(void *arg, const struct snapshot_info *s)
{
	struct fs_ident id = { .kind = &kind_snapshot };

	return dirlist_add(arg, s->id, &id, s->created_ms) < 0;
}

static int snapshots_list(struct fs_ctx *ctx, struct fs_node *dir,
			  struct dirlist *dl)
{
	(void)dir;
	return -fs_errno(snapshot_list(store_dir(ctx->st), snapshot_entry, dl));
}

static int snapshots_dir_render(struct fs_ctx *ctx, struct fs_node *node,
				struct content *c)
{
	char path[PATH_MAX];
	struct stat st;

	(void)node;
	snprintf(path, sizeof(path), "%s/snapshots", store_dir(ctx->st));
	if (stat(path, &st) == 0)
		c->mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 +
			      st.st_mtim.tv_nsec / 1000000;
	else
		c->mtime_ms = ctx->mount_ms;
	return 0;
}

/* ---- snapshots/ID/ ------------------------------------------------------------ */

static int snapshot_render(struct fs_ctx *ctx, struct fs_node *node,
			   struct content *c)
{
	struct snapshot_info info;
	int rc = snapshot_get(store_dir(ctx->st), node->name, &info);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	c->mtime_ms = info.created_ms;
	return 0;
}

static int snap_file_open(struct fs_ctx *ctx, struct fs_node *node, int *fd,
			  int (*path_of)(const char *, const char *, char *,
					 size_t))
{
	struct fs_node *snap = snapshot_node_of(node);
	char path[PATH_MAX];
	int rc;

	if (!snap)
		return -EIO;
	rc = path_of(store_dir(ctx->st), snap->name, path, sizeof(path));
	if (rc != STORE_OK)
		return -fs_errno(rc);
	*fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

static int snap_json_open(struct fs_ctx *ctx, struct fs_node *node,
			  int flags, int *fd)
{
	(void)flags;
	return snap_file_open(ctx, node, fd, snapshot_json_path);
}

static int snap_zip_open(struct fs_ctx *ctx, struct fs_node *node,
			 int flags, int *fd)
{
	(void)flags;
	return snap_file_open(ctx, node, fd, snapshot_zip_path);
}

/* ---- snapshots/ID/files/... ------------------------------------------------------ */

extern const struct fs_kind kind_snap_file;
extern const struct fs_kind kind_snap_exec;
extern const struct fs_kind kind_snap_link;

static const struct fs_kind *kind_of(const struct snapshot_node *n)
{
	switch (n->type) {
	case SNAPSHOT_DIR: return &kind_snap_dir;
	case SNAPSHOT_SYMLINK: return &kind_snap_link;
	case SNAPSHOT_FILE: break;
	}
	return n->mode & 0111 ? &kind_snap_exec : &kind_snap_file;
}

static int snap_dir_lookup(struct fs_ctx *ctx, struct fs_node *dir,
			   const char *name, struct fs_ident *out)
{
	struct strbuf path = STRBUF_INIT;
	struct snapshot_node sn;
	struct snap_ref ref;
	const char *id;
	int rc;

	rc = node_where(dir, &id, &path);
	if (rc == 0 && path.len)
		strbuf_addch(&path, '/');
	if (rc == 0)
		rc = strbuf_addstr(&path, name);
	if (rc == 0)
		rc = snap_tree_get(ctx, id, &ref);
	if (rc < 0)
		goto out;
	rc = -fs_errno(snapshot_tree_lookup(ref.tree, path.buf, &sn));
	if (rc == 0)
		out->kind = kind_of(&sn);
	snap_tree_put(ctx, &ref);
out:
	strbuf_release(&path);
	return rc;
}

static int snap_child(void *arg, const struct snapshot_node *n)
{
	struct fs_ident id = { .kind = kind_of(n) };

	return dirlist_add(arg, n->name, &id, 0) < 0;
}

static int snap_dir_list(struct fs_ctx *ctx, struct fs_node *dir,
			 struct dirlist *dl)
{
	struct strbuf path = STRBUF_INIT;
	struct snap_ref ref;
	const char *id;
	int rc;

	rc = node_where(dir, &id, &path);
	if (rc == 0)
		rc = snap_tree_get(ctx, id, &ref);
	if (rc < 0)
		goto out;
	rc = snapshot_tree_list(ref.tree, strbuf_str(&path), snap_child, dl);
	rc = rc == 1 ? -ENOMEM : -fs_errno(rc);
	snap_tree_put(ctx, &ref);
out:
	strbuf_release(&path);
	return rc;
}

static int snap_node_stat(struct fs_ctx *ctx, struct fs_node *node,
			  struct stat *st)
{
	struct strbuf path = STRBUF_INIT;
	struct snapshot_node sn;
	struct snap_ref ref;
	int rc = tree_node(ctx, node, &ref, &path, &sn);

	if (rc == 0) {
		st->st_size = (off_t)sn.size;
		st->st_mtim.tv_sec = sn.mtime_ms / 1000;
		st->st_mtim.tv_nsec = (sn.mtime_ms % 1000) * 1000000;
		snap_tree_put(ctx, &ref);
	}
	strbuf_release(&path);
	return rc;
}

/* Directories: the time the zip has, or the snapshot's creation. */
static int snap_dir_render(struct fs_ctx *ctx, struct fs_node *node,
			   struct content *c)
{
	struct strbuf path = STRBUF_INIT;
	struct snapshot_node sn;
	struct snap_ref ref;
	int rc = tree_node(ctx, node, &ref, &path, &sn);

	strbuf_release(&path);
	if (rc < 0)
		return rc;
	snap_tree_put(ctx, &ref);
	if (sn.mtime_ms > 0) {
		c->mtime_ms = sn.mtime_ms;
		return 0;
	}
	return snapshot_render(ctx, snapshot_node_of(node), c);
}

static int snap_files_render(struct fs_ctx *ctx, struct fs_node *node,
			     struct content *c)
{
	return snapshot_render(ctx, node->parent, c);
}

static int read_chunk(void *arg, const void *buf, size_t len)
{
	struct sink *s = arg;

	if (strbuf_add(s->sb, buf, len) < 0 || sink_spill(s) < 0)
		return 1;
	return 0;
}

/* Files and symlinks: the bytes, or the target, from the zip. */
static int snap_file_render(struct fs_ctx *ctx, struct fs_node *node,
			    struct content *c)
{
	struct strbuf path = STRBUF_INIT;
	struct snapshot_node sn;
	struct snap_ref ref;
	struct sink s;
	int rc = tree_node(ctx, node, &ref, &path, &sn);

	if (rc < 0)
		goto out;
	sink_begin(&s, ctx, c, 0);
	rc = snapshot_tree_read_fn(ref.tree, path.buf, read_chunk, &s);
	snap_tree_put(ctx, &ref);
	if (rc != STORE_OK) {
		rc = rc == 1 ? (c->mem.err ? c->mem.err : -EIO)
			     : -fs_errno(rc);
		content_release(c);
		goto out;
	}
	c->mtime_ms = sn.mtime_ms;
	rc = sink_end(&s);
out:
	strbuf_release(&path);
	return rc;
}

/* ---- the kinds ---------------------------------------------------------------- */

const struct fs_kind kind_snap_file = {
	.name = "snapshot file",
	.mode = S_IFREG | 0444,
	.dep = DEP_NONE,
	.render = snap_file_render,
	.stat = snap_node_stat,
	.erofs = 1,
};

const struct fs_kind kind_snap_exec = {
	.name = "snapshot executable",
	.mode = S_IFREG | 0555,
	.dep = DEP_NONE,
	.render = snap_file_render,
	.stat = snap_node_stat,
	.erofs = 1,
};

const struct fs_kind kind_snap_link = {
	.name = "snapshot symlink",
	.mode = S_IFLNK | 0777,
	.dep = DEP_NONE,
	.render = snap_file_render,
	.stat = snap_node_stat,
	.erofs = 1,
};

const struct fs_kind kind_snap_dir = {
	.name = "snapshot directory",
	.mode = S_IFDIR | 0555,
	.dep = DEP_NONE,
	.lookup = snap_dir_lookup,
	.list = snap_dir_list,
	.render = snap_dir_render,
	.erofs = 1,
};

/* files/: the root of the tree; a kind of its own so paths start here. */
static const struct fs_kind kind_snap_files = {
	.name = "snapshot files",
	.mode = S_IFDIR | 0555,
	.dep = DEP_NONE,
	.lookup = snap_dir_lookup,
	.list = snap_dir_list,
	.render = snap_files_render,
	.erofs = 1,
	.dyn_name = "PATH",
	.dyn_kind = &kind_snap_file,
	.dyn_help = "the snapshot's files, directories and symlinks as they were (read-only)",
};

static const struct fs_kind kind_snap_json = {
	.name = "snapshot.json",
	.mode = S_IFREG | 0444,
	.dep = DEP_NONE,
	.backing_open = snap_json_open,
	.passthrough = passthrough_always,	/* written once, never changed */
	.erofs = 1,
};

static const struct fs_kind kind_snap_zip = {
	.name = "snapshot.zip",
	.mode = S_IFREG | 0444,
	.dep = DEP_NONE,
	.backing_open = snap_zip_open,
	.passthrough = passthrough_always,	/* written once, never changed */
	.erofs = 1,
};

static const struct fs_entry snapshot_entries[] = {
	{ "snapshot.json", &kind_snap_json, "id, created, files, bytes, zip_bytes, source_directory" },
	{ "snapshot.zip", &kind_snap_zip, "the snapshot as stored: a zip (unzip -l works)" },
	{ "files", &kind_snap_files, "the snapshot's tree, read-only" },
	{ NULL, NULL, NULL },
};

const struct fs_kind kind_snapshot = {
	.name = "snapshot",
	.mode = S_IFDIR | 0555,
	.dep = DEP_NONE,
	.entries = snapshot_entries,
	.render = snapshot_render,
	.erofs = 1,
};

const struct fs_kind kind_snapshots = {
	.name = "snapshots",
	.mode = S_IFDIR | 0555,
	.dep = DEP_SNAPSHOTS,
	.lookup = snapshots_lookup,
	.list = snapshots_list,
	.render = snapshots_dir_render,
	.erofs = 1,
	.dyn_name = "ID",
	.dyn_kind = &kind_snapshot,
	.dyn_help = "a snapshot of a run's source directory: immutable, every change is EROFS",
};
