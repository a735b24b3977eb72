/*
 * content.c - versions of workspace objects, and the rendered content and
 * attributes of nodes made from them.
 *
 * Invariants
 *  1. A node's content is used only while content.ver equals the current
 *     version of the object it depends on. The version is read *before*
 *     rendering, so a change that lands during rendering leaves the
 *     content stale, never wrongly fresh.
 *  2. Versions only grow. An object never bumped has version 0.
 *  3. content is guarded by node->lock, held across refresh and reply, so
 *     a reader never sees a half-rendered buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_internal.h"
#include "mlfs/fileio.h"

/* ---- versions -------------------------------------------------------- */

struct version_slot {
	uint64_t key;		/* 0 = empty */
	uint64_t ver;
};

struct version_map {
	pthread_mutex_t lock;
	struct version_slot *slots;
	size_t cap;		/* power of two */
	size_t used;
	uint64_t clock;		/* every bump takes a new, larger value */
};

static uint64_t version_key(enum dep_kind kind, int64_t id)
{
	return (uint64_t)kind << 56 | ((uint64_t)id & ((1ULL << 56) - 1));
}

int version_map_new(struct version_map **out)
{
	struct version_map *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->cap = 1024;
	m->slots = calloc(m->cap, sizeof(*m->slots));
	if (!m->slots) {
		free(m);
		return -ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return 0;
}

void version_map_free(struct version_map *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->slots);
	free(m);
}

static struct version_slot *slot_find(struct version_slot *slots, size_t cap,
				      uint64_t key)
{
	size_t i = (size_t)(key * 0x9E3779B97F4A7C15ULL >> 17) & (cap - 1);

	while (slots[i].key && slots[i].key != key)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static void map_grow(struct version_map *m)
{
	size_t cap = m->cap * 2;
	struct version_slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return;	/* keep probing the fuller table */
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key)
			*slot_find(slots, cap, m->slots[i].key) = m->slots[i];
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
}

uint64_t version_get(struct fs_ctx *ctx, enum dep_kind kind, int64_t id)
{
	struct version_map *m = ctx->versions;
	uint64_t key = version_key(kind, id), ver;

	pthread_mutex_lock(&m->lock);
	ver = slot_find(m->slots, m->cap, key)->ver;
	pthread_mutex_unlock(&m->lock);
	return ver;
}

uint64_t version_clock(struct fs_ctx *ctx)
{
	struct version_map *m = ctx->versions;
	uint64_t clock;

	pthread_mutex_lock(&m->lock);
	clock = m->clock;
	pthread_mutex_unlock(&m->lock);
	return clock;
}

uint64_t version_bump_from(struct fs_ctx *ctx, enum dep_kind kind, int64_t id,
			   uint64_t expected)
{
	struct version_map *m = ctx->versions;
	uint64_t key = version_key(kind, id), ver = 0;
	struct version_slot *s;

	pthread_mutex_lock(&m->lock);
	if (m->used * 2 >= m->cap)
		map_grow(m);
	s = slot_find(m->slots, m->cap, key);
	if (!s->key) {
		if (m->used + 1 >= m->cap) {
			/* Table full and could not grow: make everything stale. */
			for (size_t i = 0; i < m->cap; i++)
				m->slots[i].ver = ++m->clock;
			pthread_mutex_unlock(&m->lock);
			return 0;
		}
		s->key = key;
		m->used++;
	}
	if (s->ver == expected)
		ver = m->clock + 1;
	s->ver = ++m->clock;
	pthread_mutex_unlock(&m->lock);
	return ver;
}

void version_bump(struct fs_ctx *ctx, enum dep_kind kind, int64_t id)
{
	version_bump_from(ctx, kind, id, UINT64_MAX);
}

void version_bump_change(struct fs_ctx *ctx, const struct store_change *ch)
{
	switch (ch->kind) {
	case CHANGE_EXPERIMENTS:
		version_bump(ctx, DEP_EXPERIMENTS, 0);
		version_bump(ctx, DEP_EXPERIMENT, ch->experiment_id);
		break;
	case CHANGE_METRIC:
		version_bump(ctx, DEP_METRIC, ch->object_id);
		/* a metric is part of its run and experiment */
		__attribute__((fallthrough));
	case CHANGE_RUN_TAGS:
	case CHANGE_RUN_PROPERTIES:
		version_bump(ctx, DEP_RUN, ch->run_id);
		version_bump(ctx, DEP_EXPERIMENT, ch->experiment_id);
		break;
	case CHANGE_RUN:
		version_bump(ctx, DEP_RUN, ch->run_id);
		version_bump(ctx, DEP_EXPERIMENT, ch->experiment_id);
		/* a status change moves the run through its compute's queue */
		version_bump(ctx, DEP_COMPUTES, 0);
		break;
	case CHANGE_COMPUTE:
		version_bump(ctx, DEP_COMPUTES, 0);
		break;
	case CHANGE_EVENTS:
		version_bump(ctx, DEP_EVENTS, 0);
		break;
	case CHANGE_MODELS:
		version_bump(ctx, DEP_MODELS, 0);
		version_bump(ctx, DEP_MODEL, ch->object_id);
		break;
	case CHANGE_DATASTORES:
		version_bump(ctx, DEP_DATASTORES, 0);
		break;
	case CHANGE_DATASETS:
		version_bump(ctx, DEP_DATASETS, 0);
		/* an HTTP datastore's files/ lists the paths of its datasets */
		version_bump(ctx, DEP_DATASTORES, 0);
		break;
	case CHANGE_MODEL:
		version_bump(ctx, DEP_MODEL, ch->object_id);
		/* the source run's run.json lists its model versions */
		if (ch->run_id) {
			version_bump(ctx, DEP_RUN, ch->run_id);
			version_bump(ctx, DEP_EXPERIMENT, ch->experiment_id);
		}
		break;
	}
}

int64_t node_dep_id(const struct fs_node *n)
{
	switch (n->id.kind->dep) {
	case DEP_EXPERIMENT: return n->id.exp_id;
	case DEP_RUN: return n->id.run_id;
	case DEP_METRIC: return n->id.obj_id;
	case DEP_MODEL: return n->id.exp_id;	/* models.c: the model id */
	default: return 0;
	}
}

/* ---- content --------------------------------------------------------- */

void content_release(struct content *c)
{
	if (c->fd >= 0)
		close(c->fd);
	strbuf_release(&c->mem);
	c->fd = -1;
	c->fd_len = 0;
	c->len = 0;
	c->rendered = 0;
	c->aux = 0;
}

void sink_begin(struct sink *s, struct fs_ctx *ctx, struct content *c,
		int append)
{
	s->ctx = ctx;
	s->c = c;
	s->sb = &c->mem;
	if (!append || !c->rendered)
		content_release(c);
	c->rendered = 0;
}

static int spill_open(struct fs_ctx *ctx, struct content *c)
{
	/* O_TMPFILE: the bytes vanish with the descriptor, even on a crash. */
	c->fd = open(ctx->cache_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (c->fd < 0) {
		int err = errno;

		fprintf(stderr, "mlfs: cannot create a cache file in '%s': %s\n",
			ctx->cache_dir, strerror(err));
		return -err;
	}
	c->fd_len = 0;
	return 0;
}

static int spill_write(struct content *c)
{
	int rc = pwrite_all(c->fd, c->mem.buf, c->mem.len, c->fd_len);

	if (rc < 0)
		return rc;
	c->fd_len += c->mem.len;
	strbuf_reset(&c->mem);
	return 0;
}

int sink_spill(struct sink *s)
{
	struct content *c = s->c;
	int rc;

	if (c->mem.err)
		return c->mem.err;
	if (c->mem.len < CONTENT_SPILL_BYTES)
		return 0;
	if (c->fd < 0) {
		rc = spill_open(s->ctx, c);
		if (rc < 0)
			return rc;
	}
	return spill_write(c);
}

int sink_end(struct sink *s)
{
	struct content *c = s->c;
	int rc = 0;

	if (c->mem.err) {
		rc = c->mem.err;
		goto out_fail;
	}
	if (c->fd >= 0 && c->mem.len) {
		rc = spill_write(c);
		if (rc < 0)
			goto out_fail;
	} else if (c->fd < 0 && c->mem.len >= CONTENT_SPILL_BYTES) {
		rc = sink_spill(s);
		if (rc < 0)
			goto out_fail;
	}
	c->len = c->fd >= 0 ? c->fd_len : c->mem.len;
	return 0;

out_fail:
	content_release(c);
	return rc;
}

/* Up to @len bytes of @c at @off into @buf: the count, or -errno. */
static ssize_t content_pread(const struct content *c, void *buf, size_t len,
			     size_t off)
{
	ssize_t n;

	if (off >= c->len)
		return 0;
	if (len > c->len - off)
		len = c->len - off;
	if (c->fd < 0) {
		memcpy(buf, c->mem.buf + off, len);
		return (ssize_t)len;
	}
	n = pread(c->fd, buf, len, (off_t)off);
	return n < 0 ? -errno : n;
}

int content_view_take(struct content *view, const struct content *c)
{
	if (view->rendered && view->ver == c->ver && view->len == c->len)
		return 0;
	content_release(view);
	if (c->fd >= 0) {
		/* A spill file is never written again once rendered (a new
		 * render makes a new one): the view shares it. */
		view->fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
		if (view->fd < 0)
			return -errno;
		view->fd_len = c->fd_len;
	} else if (strbuf_add(&view->mem, c->mem.buf, c->len) < 0) {
		return -ENOMEM;
	}
	view->len = c->len;
	view->ver = c->ver;
	view->mtime_ms = c->mtime_ms;
	view->rendered = 1;
	return 0;
}

int content_extends(const struct content *c, const struct content *view)
{
	char a[16384], b[16384];
	size_t off = 0;

	if (c->len <= view->len)
		return 0;
	while (off < view->len) {
		size_t want = view->len - off < sizeof(a) ? view->len - off
							   : sizeof(a);
		ssize_t na = content_pread(c, a, want, off);
		ssize_t nb = content_pread(view, b, want, off);

		if (na != (ssize_t)want || nb != (ssize_t)want ||
		    memcmp(a, b, want) != 0)
			return 0;
		off += want;
	}
	return 1;
}

void content_reply_read(fuse_req_t req, struct content *c, size_t size,
			off_t off)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(0);

	if (off < 0 || (size_t)off >= c->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > c->len - (size_t)off)
		size = c->len - (size_t)off;
	if (c->fd < 0) {
		fuse_reply_buf(req, c->mem.buf + off, size);
		return;
	}
	bv.buf[0].size = size;
	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = c->fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

int node_refresh(struct fs_ctx *ctx, struct fs_node *n)
{
	const struct fs_kind *k = n->id.kind;
	uint64_t ver = version_get(ctx, k->dep, node_dep_id(n));
	int rc;

	/* A mirrored symlink can be replaced outside the mount: no cache. */
	if (n->content.rendered && n->content.ver == ver && !k->stat_full)
		return 0;
	if (!k->render) {
		n->content.mtime_ms = ctx->mount_ms;
		n->content.rendered = 1;
		n->content.ver = ver;
		return 0;
	}
	rc = k->render(ctx, n, &n->content);
	if (rc < 0)
		return rc;
	n->content.rendered = 1;
	n->content.ver = ver;
	return 0;
}

double node_attr_timeout(struct fs_ctx *ctx, const struct fs_node *n)
{
	/* Mirrored files change outside the mount too: as directories. */
	if (n->id.kind->stat_full)
		return ctx->live_timeout;
	if (n->id.kind->dep == DEP_NONE)
		return ctx->static_timeout;
	if (S_ISREG(n->id.kind->mode) && !n->id.kind->attr_cached)
		return 0;
	return ctx->live_timeout;
}

double node_entry_timeout(struct fs_ctx *ctx, const struct fs_node *n)
{
	const struct fs_kind *k = n->id.kind;

	return k->dep == DEP_NONE || n->fixed || k->name_stays
		       ? ctx->static_timeout : ctx->live_timeout;
}

/*
 * Kinds that know their size and mtime without rendering: the kind's
 * stat(), or the fstat of the backing file.
 */
static int node_stat_direct(struct fs_ctx *ctx, struct fs_node *n,
			    struct stat *st)
{
	const struct fs_kind *k = n->id.kind;
	struct stat bst;
	int fd, rc;

	memset(&bst, 0, sizeof(bst));
	if (k->stat) {
		rc = k->stat(ctx, n, &bst);
	} else {
		rc = k->backing_open(ctx, n, O_RDONLY, &fd);
		if (rc == 0) {
			rc = fstat(fd, &bst) < 0 ? -errno : 0;
			close(fd);
		}
	}
	if (rc < 0)
		return rc;
	if (k->stat_full) {
		*st = bst;
		st->st_ino = n->ino;
		return 0;
	}
	st->st_blksize = bst.st_blksize;
	st->st_ino = n->ino;
	st->st_mode = k->mode;
	st->st_nlink = S_ISDIR(k->mode) ? 2 : 1;
	st->st_uid = ctx->uid;
	st->st_gid = ctx->gid;
	st->st_size = S_ISDIR(k->mode) ? 0 : bst.st_size;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_mtim = bst.st_mtim;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
	return 0;
}

int node_stat(struct fs_ctx *ctx, struct fs_node *n, struct stat *st)
{
	const struct fs_kind *k = n->id.kind;
	int rc;

	memset(st, 0, sizeof(*st));
	if (k->stat || k->backing_open)
		return node_stat_direct(ctx, n, st);
	pthread_mutex_lock(&n->lock);
	rc = node_refresh(ctx, n);
	if (rc < 0)
		goto out_unlock;
	st->st_ino = n->ino;
	st->st_mode = k->mode;
	st->st_nlink = S_ISDIR(k->mode) ? 2 : 1;
	st->st_uid = ctx->uid;
	st->st_gid = ctx->gid;
	st->st_size = S_ISDIR(k->mode) ? 0 : (off_t)n->content.len;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_mtim.tv_sec = n->content.mtime_ms / 1000;
	st->st_mtim.tv_nsec = (n->content.mtime_ms % 1000) * 1000000;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
out_unlock:
	pthread_mutex_unlock(&n->lock);
	return rc;
}

int content_from_link(struct fs_ctx *ctx, int fd, struct content *c)
{
	char target[PATH_MAX];
	struct stat st;
	struct sink s;
	ssize_t n;

	n = readlinkat(fd, "", target, sizeof(target) - 1);
	if (n < 0 || fstat(fd, &st) < 0)
		return -errno;
	sink_begin(&s, ctx, c, 0);
	strbuf_add(s.sb, target, (size_t)n);
	c->mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 +
		      st.st_mtim.tv_nsec / 1000000;
	return sink_end(&s);
}
