/*
 * datastore_http.c - datastores/NAME/files/ of an HTTP datastore: read-only.
 *
 * An HTTP server cannot be listed, so the tree shows what is known: a
 * name is a file when a HEAD of its path answers, and a directory when a
 * dataset version of this datastore has files below it; listings show
 * the paths dataset versions use. Each open pins the file as the HEAD
 * before it saw it (size, ETag, Last-Modified), so one open never mixes
 * two versions of a file; reads go through the HTTP reader (http.h) with
 * its read-ahead and the mount's block cache.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs_internal.h"
#include "mlfs/datasets.h"
#include "mlfs/http.h"

static const struct fs_kind kind_ds_http_dir;
static const struct fs_kind kind_ds_http_file;

static int http_rel(struct fs_ctx *ctx, const struct fs_node *n,
		   const char *name, char *buf, size_t len)
{
	return node_path_join(ctx, n, &kind_ds_http_root, name, buf, len);
}

static int http_source_of(struct fs_ctx *ctx, struct fs_node *n,
			  struct http_source **src)
{
	struct ds_root *r = datastore_root(ctx, n->id.exp_id);
	int rc;

	if (!r)
		return -ENOENT;
	rc = datastore_http(ctx, r, src);
	if (rc < 0)	/* the message never quotes the credentials */
		return fs_refuse(ctx, "open", n, NULL, -rc, "cannot use "
				 "datastore '%s': its credentials could not be "
				 "read", r->name);
	return 0;
}

/* HEAD of @rel; failures other than "no such file" go to the events. */
static int http_head(struct fs_ctx *ctx, struct fs_node *at, const char *rel,
		     struct http_stat *hs)
{
	struct http_source *src;
	char err[512];
	int rc = http_source_of(ctx, at, &src);

	if (rc < 0)
		return rc;
	rc = http_stat(src, rel, hs, err, sizeof(err));
	if (rc == STORE_OK)
		return 0;
	if (rc == STORE_NOT_FOUND)
		return -ENOENT;
	if (rc == STORE_DENIED)	/* 401 or 403: the server's permission */
		return fs_refuse(ctx, "lookup", at, NULL, EACCES, "%s", err);
	return fs_refuse(ctx, "lookup", at, NULL, fs_errno(rc), "%s", err);
}

static int path_found(void *arg, const char *path)
{
	(void)path;
	*(int *)arg = 1;
	return 1;	/* one is enough */
}

/* Is @rel a directory: some dataset version's file below it? */
static int http_known_dir(struct fs_ctx *ctx, const struct fs_node *n,
			  const char *rel)
{
	char prefix[DATASET_PATH_MAX + 2];
	int found = 0;

	if ((size_t)snprintf(prefix, sizeof(prefix), "%s/", rel) >=
	    sizeof(prefix))
		return 0;
	if (store_datastore_paths(ctx->st, n->id.exp_id, prefix, path_found,
				  &found) != STORE_OK)
		return 0;
	return found;
}

static int http_lookup(struct fs_ctx *ctx, struct fs_node *dir,
		       const char *name, struct fs_ident *out)
{
	char rel[DATASET_PATH_MAX];
	struct http_stat hs;
	int rc = http_rel(ctx, dir, name, rel, sizeof(rel));

	if (rc < 0)
		return rc;
	if (http_known_dir(ctx, dir, rel)) {
		out->kind = &kind_ds_http_dir;
		return 0;
	}
	rc = http_head(ctx, dir, rel, &hs);
	if (rc == 0)
		out->kind = hs.is_dir ? &kind_ds_http_dir : &kind_ds_http_file;
	return rc;
}

struct http_listing {
	struct dirlist *dl;
	const struct fs_node *dir;
	size_t prefix_len;
	char last[NAME_MAX + 1];
};

/* One path below the directory: its first segment, once. */
static int http_list_path(void *arg, const char *path)
{
	struct http_listing *l = arg;
	const char *rest = path + l->prefix_len;
	const char *slash = strchr(rest, '/');
	size_t len = slash ? (size_t)(slash - rest) : strlen(rest);
	char name[NAME_MAX + 1];
	struct fs_ident id;

	if (!len || len > NAME_MAX)
		return 0;
	memcpy(name, rest, len);
	name[len] = '\0';
	if (strcmp(name, l->last) == 0)
		return 0;	/* paths come in order: duplicates are adjacent */
	memcpy(l->last, name, len + 1);
	id = l->dir->id;
	id.kind = slash ? &kind_ds_http_dir : &kind_ds_http_file;
	id.key = NULL;
	return dirlist_add(l->dl, name, &id, 0) < 0;
}

static int http_list(struct fs_ctx *ctx, struct fs_node *dir,
		     struct dirlist *dl)
{
	struct http_listing l = { .dl = dl, .dir = dir };
	char prefix[DATASET_PATH_MAX + 2];
	int rc = http_rel(ctx, dir, NULL, prefix, sizeof(prefix) - 1);

	if (rc < 0)
		return rc;
	l.prefix_len = strlen(prefix);
	if (l.prefix_len) {
		prefix[l.prefix_len++] = '/';
		prefix[l.prefix_len] = '\0';
	}
	rc = store_datastore_paths(ctx->st, dir->id.exp_id, prefix,
				   http_list_path, &l);
	return rc == STORE_OK ? 0 : -fs_errno(rc);
}

static int http_dir_stat(struct fs_ctx *ctx, struct fs_node *node,
			 struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	st->st_uid = ctx->uid;
	st->st_gid = ctx->gid;
	st->st_mtim.tv_sec = ctx->mount_ms / 1000;
	st->st_ctim = st->st_atim = st->st_mtim;
	(void)node;
	return 0;
}

static int http_file_stat(struct fs_ctx *ctx, struct fs_node *node,
			  struct stat *st)
{
	char rel[DATASET_PATH_MAX];
	struct http_stat hs;
	int rc = http_rel(ctx, node, NULL, rel, sizeof(rel));

	if (rc == 0)
		rc = http_head(ctx, node, rel, &hs);
	if (rc == 0 && hs.is_dir)
		rc = -ENOENT;	/* now a directory: look it up again */
	if (rc < 0)
		return rc;
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_uid = ctx->uid;
	st->st_gid = ctx->gid;
	st->st_size = (off_t)hs.size;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_blksize = FS_READ_BLKSIZE;
	if (hs.mtime_ms >= 0) {
		st->st_mtim.tv_sec = hs.mtime_ms / 1000;
		st->st_mtim.tv_nsec = (hs.mtime_ms % 1000) * 1000000;
	}
	st->st_ctim = st->st_atim = st->st_mtim;
	return 0;
}

/* ---- reading ----------------------------------------------------------------- */

static int http_opened(struct fs_ctx *ctx, struct fs_handle *h)
{
	char rel[DATASET_PATH_MAX], err[512];
	struct http_source *src;
	struct http_file *f;
	struct http_stat hs;
	int rc = http_rel(ctx, h->node, NULL, rel, sizeof(rel));

	if (rc == 0)
		rc = http_source_of(ctx, h->node, &src);
	if (rc == 0)
		rc = http_head(ctx, h->node, rel, &hs);
	if (rc < 0)
		return rc;
	rc = http_file_open(src, rel, &hs, ctx->blockcache, &f, err,
			    sizeof(err));
	if (rc != STORE_OK)
		return fs_refuse(ctx, "open", h->node, NULL, fs_errno(rc),
				 "%s", err);
	h->kind_data = f;
	return 0;
}

ssize_t http_handle_read(struct fs_ctx *ctx, struct fs_handle *h, char *buf,
			 size_t size, off_t off)
{
	char err[512];
	ssize_t n = http_file_pread(h->kind_data, buf, size, (uint64_t)off,
				    err, sizeof(err));

	if (n >= 0)
		return n;
	/* Every failure is EIO for the reader, with the reason in events. */
	return fs_refuse(ctx, "read", h->node, NULL, EIO, "%s", err);
}

/*
 * With -o http_direct=1, large files are read around the page cache
 * (direct I/O). The kernel caches FUSE files a 4 KiB page at a time,
 * which costs more CPU than receiving the bytes when the network is
 * fast: on loopback, on 2 cores, reads went at about half the server's
 * speed. Their stream reads ahead instead (http_stream.c). But each
 * read(2) is then a round trip to us: small reads (tar's 10 KiB,
 * sha256sum's 32 KiB) went 2-4 times slower, hence off by default.
 * Files of this view are read again at every open anyway: their bytes
 * are not pinned.
 */
int http_handle_direct(struct fs_ctx *ctx, struct fs_handle *h)
{
	return ctx->http_direct && h->kind_data &&
	       http_file_streams(h->kind_data);
}

void http_handle_release(struct fs_ctx *ctx, struct fs_handle *h)
{
	(void)ctx;
	http_file_close(h->kind_data);
	h->kind_data = NULL;
}

static const struct fs_kind kind_ds_http_file = {
	.name = "HTTP file",
	.mode = S_IFREG | 0444,
	.dep = DEP_DATASTORES,
	.stat = http_file_stat,
	.stat_full = 1,
	.opened = http_opened,
	.read = http_handle_read,
	.read_direct = http_handle_direct,
	.release = http_handle_release,
	.erofs = 1,
};

#define HTTP_DIR_HOOKS \
	.dep = DEP_DATASTORES, \
	.lookup = http_lookup, \
	.list = http_list, \
	.stat = http_dir_stat, \
	.stat_full = 1, \
	.erofs = 1

const struct fs_kind kind_ds_http_root = {
	.name = "HTTP datastore files",
	.mode = S_IFDIR | 0555,
	HTTP_DIR_HOOKS,
};

static const struct fs_kind kind_ds_http_dir = {
	.name = "HTTP directory",
	.mode = S_IFDIR | 0555,
	HTTP_DIR_HOOKS,
};
