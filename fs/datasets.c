/*
 * datasets.c - datasets/: NAME/latest, NAME/N/dataset.json and NAME/N/files/
 * (DESIGN.md "datasets"; registering is dataset_register.c).
 *
 * A version never changes (datasets.h), so its nodes have long timeouts
 * and the kernel keeps read pages across opens. Its files are read from:
 *  - a blob, when the version was registered with "copy": true;
 *  - the local datastore's file, checked against its pin (size, mtime) at
 *    every open: a file changed since registration gives EIO and an events
 *    line naming it, never other bytes under the same version;
 *  - the HTTP server, with a range reader pinned to the registered ETag /
 *    Last-Modified / size, which fails every read of another version.
 *
 * Nodes: datasets/NAME keeps the name in id.key; NAME/N and everything
 * below it keep the version's row id in id.exp_id and the name in id.key.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_internal.h"
#include "mlfs/blob.h"
#include "mlfs/datasets.h"
#include "mlfs/jsonw.h"
#include "mlfs/parse.h"

static const struct fs_kind kind_dataset;
static const struct fs_kind kind_dsv;
static const struct fs_kind kind_dsv_files;
static const struct fs_kind kind_dsv_dir;
static const struct fs_kind kind_dsv_file;

static int version_of(struct fs_ctx *ctx, const struct fs_node *n,
		      struct store_dataset_version *v)
{
	int rc = store_dataset_version_get(ctx->st, n->id.key, n->id.run_id, v);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	return 0;
}

/* ---- NAME/N/dataset.json ----------------------------------------------- */

static void file_json(struct jsonw *w, const struct dataset_file *f)
{
	jsonw_object_begin(w);
	jsonw_key(w, "path");
	jsonw_string(w, f->path);
	jsonw_key(w, "size");
	jsonw_int(w, (int64_t)f->size);
	if (f->etag) {
		jsonw_key(w, "etag");
		jsonw_string(w, f->etag);
		jsonw_key(w, "last_modified");
		if (f->http_mtime_ms >= 0)
			jsonw_time(w, f->http_mtime_ms);
		else
			jsonw_null(w);
	} else {
		jsonw_key(w, "mtime");
		jsonw_time(w, f->mtime_ns / 1000000);
	}
	if (f->blob[0]) {
		jsonw_key(w, "sha256");
		jsonw_string(w, f->blob);
	}
	jsonw_object_end(w);
}

static int dsv_json_render(struct fs_ctx *ctx, struct fs_node *node,
			   struct content *c)
{
	struct store_dataset_version v = { 0 };
	struct dataset_files fl = { 0 };
	struct jsonw w;
	struct sink s;
	int rc = version_of(ctx, node, &v);

	if (rc < 0)
		return rc;
	rc = store_dataset_files(ctx->st, v.id, "", &fl);
	if (rc != STORE_OK) {
		rc = -fs_errno(rc);
		goto out;
	}
	sink_begin(&s, ctx, c, 0);
	jsonw_init(&w, s.sb, 1);
	jsonw_object_begin(&w);
	jsonw_key(&w, "name");
	jsonw_string(&w, v.name);
	jsonw_key(&w, "version");
	jsonw_int(&w, v.version);
	jsonw_key(&w, "datastore");
	jsonw_string(&w, v.datastore);
	jsonw_key(&w, "description");
	jsonw_string(&w, v.description);
	jsonw_key(&w, "tags");
	jsonw_json(&w, v.tags_json, strlen(v.tags_json));
	jsonw_key(&w, "copy");
	jsonw_bool(&w, v.copy);
	jsonw_key(&w, "created");
	jsonw_time(&w, v.created_ms);
	jsonw_key(&w, "file_count");
	jsonw_int(&w, v.file_count);
	jsonw_key(&w, "total_bytes");
	jsonw_int(&w, (int64_t)v.total_bytes);
	jsonw_key(&w, "files");
	jsonw_array_begin(&w);
	for (size_t i = 0; i < fl.n; i++)
		file_json(&w, &fl.v[i]);
	jsonw_array_end(&w);
	jsonw_object_end(&w);
	c->mtime_ms = v.created_ms;
	rc = sink_end(&s);
out:
	dataset_files_release(&fl);
	store_dataset_version_release(&v);
	return rc;
}

static const struct fs_kind kind_dsv_json = {
	.name = "dataset.json",
	.mode = S_IFREG | 0444,
	.dep = DEP_NONE,
	.render = dsv_json_render,
	.erofs = 1,
};

/* ---- NAME/N/files/ -------------------------------------------------------- */

/* Path of a node below files/ ("" for files/ itself). */
static int dsv_rel(struct fs_ctx *ctx, const struct fs_node *n,
		   const char *name, char *buf, size_t len)
{
	return node_path_join(ctx, n, &kind_dsv_files, name, buf, len);
}

static int dsv_lookup(struct fs_ctx *ctx, struct fs_node *dir,
		      const char *name, struct fs_ident *out)
{
	struct dataset_file f = { 0 };
	char rel[DATASET_PATH_MAX + 2];
	size_t len;
	int found, rc = dsv_rel(ctx, dir, name, rel, sizeof(rel) - 1);

	if (rc < 0)
		return rc;
	out->key = dir->id.key;	/* the dataset's name, for every node */
	rc = store_dataset_file_get(ctx->st, dir->id.exp_id, rel, &f);
	if (rc == STORE_OK) {
		dataset_file_release(&f);
		out->kind = &kind_dsv_file;
		return 0;
	}
	if (rc != STORE_NOT_FOUND)
		return -fs_errno(rc);
	/* A directory: some file's path goes on below "rel/". */
	len = strlen(rel);
	rel[len] = '/';
	rel[len + 1] = '\0';
	rc = store_dataset_has_prefix(ctx->st, dir->id.exp_id, rel, &found);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	out->kind = &kind_dsv_dir;
	return found ? 0 : -ENOENT;
}

/*
 * What a version's file node needs, read once and kept with the node (a
 * version never changes): opens and stats cost no query after the first.
 */
struct dsv_cached {
	struct dataset_file f;
	int64_t created_ms;
	int64_t datastore_id;
	char *datastore;
};

static void dsv_cached_free(void *p)
{
	struct dsv_cached *c = p;

	dataset_file_release(&c->f);
	free(c->datastore);
	free(c);
}

/* A local source for the prefetcher: its root and pin in one allocation. */
struct local_source {
	struct dataset_file f;
	char *root;
};

static int local_source_open(const void *arg, int *fd)
{
	const struct local_source *ls = arg;
	char err[256];

	return dataset_local_open(ls->root, &ls->f, fd, err, sizeof(err)) ==
	       STORE_OK ? 0 : -1;
}

/* Queues @f for the prefetcher: its blob, or its local source. */
static int prefetch_add(struct prefetch_list *pl, const struct ds_root *root,
			const struct dataset_file *f)
{
	struct local_source *ls;
	size_t plen, rlen;

	if (f->blob[0])
		return prefetch_list_add(pl, f->blob, (int64_t)f->size);
	if (!root || root->type != DATASTORE_LOCAL)
		return 0;	/* HTTP: the server's bytes, not ours to warm */
	plen = strlen(f->path) + 1;
	rlen = strlen(root->path) + 1;
	ls = malloc(sizeof(*ls) + plen + rlen);
	if (!ls)
		return -ENOMEM;
	ls->f = *f;
	ls->f.path = memcpy((char *)(ls + 1), f->path, plen);
	ls->f.etag = NULL;
	ls->root = memcpy(ls->f.path + plen, root->path, rlen);
	return prefetch_list_add_open(pl, local_source_open, ls,
				      (int64_t)f->size);
}

/* A file's entry, with the node's cache made from @f (taken). */
static int file_entry_add(struct dirlist *dl, const char *name,
			  const struct fs_ident *id,
			  const struct store_dataset_version *v,
			  struct dataset_file *f)
{
	struct dsv_cached *c = calloc(1, sizeof(*c));

	if (!c || !(c->datastore = strdup(v->datastore))) {
		free(c);
		return -ENOMEM;
	}
	c->f = *f;
	memset(f, 0, sizeof(*f));
	c->created_ms = v->created_ms;
	c->datastore_id = v->datastore_id;
	return dirlist_add_cached(dl, name, id, 0, c);
}

/*
 * Lists a directory of a version's files. Each file's entry carries what
 * its node keeps (dsv_cached), so readdirplus costs no query per file;
 * the listing of files/ itself warms the version (prefetch.c).
 */
static int dsv_list(struct fs_ctx *ctx, struct fs_node *dir,
		    struct dirlist *dl)
{
	struct dataset_files fl = { 0 };
	struct store_dataset_version v = { 0 };
	struct prefetch_list pl = { 0 };
	struct ds_root *root = NULL;
	char prefix[DATASET_PATH_MAX + 2], last[NAME_MAX + 1] = "";
	struct fs_ident id;
	size_t plen;
	int rc = dsv_rel(ctx, dir, NULL, prefix, sizeof(prefix) - 1);

	if (rc == 0)
		rc = version_of(ctx, dir, &v);
	if (rc < 0)
		return rc;
	plen = strlen(prefix);
	if (plen) {
		prefix[plen++] = '/';
		prefix[plen] = '\0';
	} else if (datastore_root_named(ctx, v.datastore, v.datastore_id,
					&root) < 0) {
		root = NULL;	/* copies are warmed all the same */
	}
	rc = -fs_errno(store_dataset_files(ctx->st, dir->id.exp_id, prefix,
					   &fl));
	for (size_t i = 0; rc == 0 && i < fl.n; i++) {
		const char *rest = fl.v[i].path + plen;
		const char *slash = strchr(rest, '/');
		size_t len = slash ? (size_t)(slash - rest) : strlen(rest);
		char name[NAME_MAX + 1];

		if (!plen)
			rc = prefetch_add(&pl, root, &fl.v[i]);
		if (rc < 0 || !len || len > NAME_MAX)
			continue;
		memcpy(name, rest, len);
		name[len] = '\0';
		if (strcmp(name, last) == 0)
			continue;	/* in path order: a directory's files
					 * are adjacent */
		memcpy(last, name, len + 1);
		id = dir->id;
		id.kind = slash ? &kind_dsv_dir : &kind_dsv_file;
		rc = slash ? dirlist_add(dl, name, &id, 0)
			   : file_entry_add(dl, name, &id, &v, &fl.v[i]);
	}
	if (rc == 0 && !plen)
		prefetch_version(ctx, -dir->id.exp_id, &pl);
	prefetch_list_release(&pl);
	dataset_files_release(&fl);
	store_dataset_version_release(&v);
	return rc;
}

static int dsv_dir_render(struct fs_ctx *ctx, struct fs_node *node,
			  struct content *c)
{
	struct store_dataset_version v = { 0 };
	int rc = version_of(ctx, node, &v);

	if (rc < 0)
		return rc;
	c->mtime_ms = v.created_ms;
	store_dataset_version_release(&v);
	return 0;
}

#define DSV_DIR_HOOKS \
	.mode = S_IFDIR | 0555, \
	.dep = DEP_NONE, \
	.lookup = dsv_lookup, \
	.list = dsv_list, \
	.render = dsv_dir_render, \
	.erofs = 1

static const struct fs_kind kind_dsv_files = {
	.name = "dataset files",
	DSV_DIR_HOOKS,
	.dyn_name = "...",
	.dyn_kind = &kind_dsv_file,
	.dyn_help = "the version's files, read-only, always the registered bytes",
};

static const struct fs_kind kind_dsv_dir = {
	.name = "dataset directory",
	DSV_DIR_HOOKS,
};

/* ---- a version's file -------------------------------------------------------- */

static int dsv_cached_fill(struct fs_ctx *ctx, struct fs_node *node,
			   void **out)
{
	struct store_dataset_version v = { 0 };
	char rel[DATASET_PATH_MAX + 1];
	struct dsv_cached *c;
	int rc = dsv_rel(ctx, node, NULL, rel, sizeof(rel));

	if (rc < 0)
		return rc;
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	rc = version_of(ctx, node, &v);
	if (rc == 0) {
		rc = -fs_errno(store_dataset_file_get(ctx->st, node->id.exp_id,
						      rel, &c->f));
		c->created_ms = v.created_ms;
		c->datastore_id = v.datastore_id;
		c->datastore = strdup(v.datastore);
		if (rc == 0 && !c->datastore)
			rc = -ENOMEM;
		store_dataset_version_release(&v);
	}
	if (rc < 0) {
		dsv_cached_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* The node's file and its version, borrowed for the node's life. */
static int dsv_cached_get(struct fs_ctx *ctx, struct fs_node *node,
			  const struct dsv_cached **out)
{
	int rc;

	*out = node_cache_get(ctx, node, dsv_cached_fill, &rc);
	return rc;
}

static int dsv_file_stat(struct fs_ctx *ctx, struct fs_node *node,
			 struct stat *st)
{
	const struct dsv_cached *c;
	int rc = dsv_cached_get(ctx, node, &c);
	int64_t ms;

	if (rc < 0)
		return rc;
	st->st_size = (off_t)c->f.size;
	if (c->f.mtime_ns >= 0) {
		st->st_mtim.tv_sec = c->f.mtime_ns / 1000000000;
		st->st_mtim.tv_nsec = c->f.mtime_ns % 1000000000;
		return 0;
	}
	if (!c->f.blob[0])	/* a remote file, read through us */
		st->st_blksize = FS_READ_BLKSIZE;
	ms = c->f.http_mtime_ms >= 0 ? c->f.http_mtime_ms : c->created_ms;
	st->st_mtim.tv_sec = ms / 1000;
	st->st_mtim.tv_nsec = (ms % 1000) * 1000000;
	return 0;
}

/* A changed or vanished source: EIO, and the events line says which. */
static int dsv_refuse_source(struct fs_ctx *ctx, struct fs_node *node,
			     int store_rc, const char *err)
{
	int e = store_rc == STORE_NOMEM ? ENOMEM : EIO;

	return fs_refuse(ctx, "open", node, NULL, e, "%s", err);
}

/*
 * A local file passed its pin check at open; every read through us
 * checks it again against the registered pin (kept with the node): a
 * source rewritten while a reader holds it open gives EIO, not a mix of
 * two versions (bytes the kernel already holds are the registered ones).
 * The same check runs once a read lease is held (fuse_ext.c).
 */
static int dsv_read_check(struct fs_ctx *ctx, struct fs_handle *h)
{
	const struct dsv_cached *c;
	char err[512];
	int rc = dsv_cached_get(ctx, h->node, &c);

	if (rc < 0 || c->f.blob[0])	/* a blob never changes */
		return rc;
	rc = dataset_local_check(&c->f, h->backing_fd, err, sizeof(err));
	return rc == STORE_OK ? 0 : fs_refuse(ctx, "read", h->node, NULL, EIO,
					      "%s", err);
}

/*
 * HTTP files have no descriptor: open pins a reader to the registered
 * version (dataset.json's etag, last_modified and size).
 */
static int dsv_file_opened(struct fs_ctx *ctx, struct fs_handle *h)
{
	const struct dsv_cached *c;
	struct http_source *src;
	struct http_stat pin = { 0 };
	struct http_file *f;
	struct ds_root *root;
	char err[512];
	int rc;

	rc = dsv_cached_get(ctx, h->node, &c);
	if (rc < 0)
		return rc;
	if (h->backing_fd >= 0)	/* a blob or a local source (read_check) */
		return 0;
	rc = datastore_root_named(ctx, c->datastore, c->datastore_id,
				  &root);
	if (rc == 0)
		rc = datastore_http(ctx, root, &src);
	if (rc < 0)	/* the message never quotes the credentials */
		return fs_refuse(ctx, "open", h->node, NULL, -rc, "cannot use "
				 "datastore '%s': it is gone or its credentials "
				 "could not be read", c->datastore);
	pin.size = c->f.size;
	snprintf(pin.etag, sizeof(pin.etag), "%s", c->f.etag ? c->f.etag : "");
	pin.mtime_ms = c->f.http_mtime_ms;
	pin.ranges = 1;
	rc = http_file_open(src, c->f.path, &pin, ctx->blockcache, &f, err,
			    sizeof(err));
	if (rc != STORE_OK)
		return dsv_refuse_source(ctx, h->node, rc, err);
	h->kind_data = f;
	return 0;
}

/*
 * Copied files open their blob, local ones their source (checked against
 * the pin); HTTP ones have no descriptor (*fd -1: read by the hook).
 */
static int dsv_file_open(struct fs_ctx *ctx, struct fs_node *node, int flags,
			 int *fd)
{
	const struct dsv_cached *c;
	struct ds_root *root = NULL;
	char err[512] = "";
	int rc = dsv_cached_get(ctx, node, &c);

	(void)flags;	/* read-only: writers were refused (erofs) */
	if (rc == 0 && !c->f.blob[0])
		rc = datastore_root_named(ctx, c->datastore, c->datastore_id,
					  &root);
	if (rc < 0)
		return rc;
	*fd = -1;
	if (c->f.blob[0]) {
		rc = blob_open(store_dir(ctx->st), c->f.blob, fd);
		if (rc != STORE_OK)
			snprintf(err, sizeof(err), "the copy of '%s' (blob %s) "
				 "is missing", c->f.path, c->f.blob);
	} else if (root->type == DATASTORE_LOCAL) {
		rc = dataset_local_open(root->path, &c->f, fd, err,
					sizeof(err));
	} else {
		rc = STORE_OK;
	}
	return rc == STORE_OK ? 0 : dsv_refuse_source(ctx, node, rc, err);
}

static void dsv_file_release(struct fs_ctx *ctx, struct fs_handle *h)
{
	if (h->kind_data)	/* HTTP files only */
		http_handle_release(ctx, h);
}

/*
 * A copy is a blob: the kernel may read it alone. A local source may
 * change, so the kernel reads it only under a read lease: a writer then
 * waits for the readers, who read the pinned bytes to the end (and the
 * pin, checked at each open, fails the opens after the change).
 */
static int dsv_file_passthrough(struct fs_ctx *ctx, struct fs_handle *h)
{
	const struct dsv_cached *c;

	if (dsv_cached_get(ctx, h->node, &c) < 0)
		return PASS_NO;
	return c->f.blob[0] ? PASS_ALWAYS : PASS_LEASED;
}

/*
 * With -o http_direct=1 the first pass over a large remote file goes
 * around the page cache (http_handle_direct). Once a reader has read it
 * to its end, later opens let the kernel keep its pages: from the pass
 * after next on, a pinned file is read from memory and never reaches us.
 */
static int dsv_file_direct(struct fs_ctx *ctx, struct fs_handle *h)
{
	return !atomic_load(&h->node->read_to_end) &&
	       http_handle_direct(ctx, h);
}

static const struct fs_kind kind_dsv_file = {
	.name = "dataset file",
	.mode = S_IFREG | 0444,
	.dep = DEP_NONE,
	.backing_open = dsv_file_open,
	.stat = dsv_file_stat,
	.opened = dsv_file_opened,
	.read_check = dsv_read_check,
	.passthrough = dsv_file_passthrough,
	.read = http_handle_read,
	.read_direct = dsv_file_direct,
	.release = dsv_file_release,
	.cache_free = dsv_cached_free,
	.erofs = 1,
};

/* ---- NAME/N ------------------------------------------------------------------ */

static const struct fs_entry dsv_entries[] = {
	{ "dataset.json", &kind_dsv_json, "name, version, datastore, description, tags, copy, created, files with their pins" },
	{ "files", &kind_dsv_files, "the version's files (read-only)" },
	{ NULL, NULL, NULL },
};

static const struct fs_kind kind_dsv = {
	.name = "dataset version",
	.mode = S_IFDIR | 0555,
	.dep = DEP_NONE,
	.entries = dsv_entries,
	.render = dsv_dir_render,
	.erofs = 1,
};

/* ---- NAME ------------------------------------------------------------------------ */

static int dataset_lookup(struct fs_ctx *ctx, struct fs_node *dir,
			  const char *name, struct fs_ident *out)
{
	struct store_dataset_version v = { 0 };
	int64_t num;
	int rc;

	if (model_version_parse(name, &num) < 0)
		return -ENOENT;
	rc = store_dataset_version_get(ctx->st, dir->id.key, num, &v);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	out->kind = &kind_dsv;
	out->key = dir->id.key;
	out->exp_id = v.id;
	out->run_id = v.version;
	store_dataset_version_release(&v);
	return 0;
}

struct version_listing {
	struct dirlist *dl;
	const struct fs_node *dir;
	int err;
};

static int version_entry(void *arg, const struct store_dataset_version *v)
{
	struct version_listing *l = arg;
	struct fs_ident id = l->dir->id;
	char name[24];

	id.kind = &kind_dsv;
	id.exp_id = v->id;
	id.run_id = v->version;
	snprintf(name, sizeof(name), "%lld", (long long)v->version);
	l->err = dirlist_add(l->dl, name, &id, v->created_ms);
	return l->err < 0;
}

static int dataset_list(struct fs_ctx *ctx, struct fs_node *dir,
			struct dirlist *dl)
{
	struct version_listing l = { .dl = dl, .dir = dir };
	int rc = store_dataset_versions(ctx->st, dir->id.key, version_entry,
					&l);

	if (l.err < 0)
		return l.err;
	return rc == STORE_OK ? 0 : -fs_errno(rc);
}

static int dataset_latest_render(struct fs_ctx *ctx, struct fs_node *node,
				 struct content *c)
{
	struct store_dataset_version v = { 0 };
	struct sink s;
	int rc = store_dataset_version_get(ctx->st, node->id.key, 0, &v);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	sink_begin(&s, ctx, c, 0);
	strbuf_addf(s.sb, "%lld", (long long)v.version);
	c->mtime_ms = v.created_ms;
	store_dataset_version_release(&v);
	return sink_end(&s);
}

static const struct fs_kind kind_dataset_latest = {
	.name = "dataset latest",
	.mode = S_IFLNK | 0777,
	.dep = DEP_DATASETS,
	.render = dataset_latest_render,
};

static int dataset_render(struct fs_ctx *ctx, struct fs_node *node,
			  struct content *c)
{
	struct store_dataset_version v = { 0 };
	int rc = store_dataset_version_get(ctx->st, node->id.key, 0, &v);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	c->mtime_ms = v.created_ms;
	store_dataset_version_release(&v);
	return 0;
}

static const struct fs_entry dataset_entries[] = {
	{ "latest", &kind_dataset_latest, "-> N, the newest version" },
	{ NULL, NULL, NULL },
};

static const struct fs_kind kind_dataset = {
	.name = "dataset",
	.mode = S_IFDIR | 0555,
	.dep = DEP_DATASETS,
	.entries = dataset_entries,
	.lookup = dataset_lookup,
	.list = dataset_list,
	.render = dataset_render,
	.erofs = 1,
	.dyn_name = "N",
	.dyn_kind = &kind_dsv,
	.dyn_help = "version N: dataset.json and files/, never changing",
	.name_stays = 1,
};

/* ---- datasets/ -------------------------------------------------------------------- */

static int datasets_lookup(struct fs_ctx *ctx, struct fs_node *dir,
			   const char *name, struct fs_ident *out)
{
	struct store_dataset_version v = { 0 };
	int rc = store_dataset_version_get(ctx->st, name, 0, &v);

	(void)dir;
	if (rc != STORE_OK)
		return -fs_errno(rc);
	store_dataset_version_release(&v);
	out->kind = &kind_dataset;
	out->key = name;
	return 0;
}

static int dataset_entry(void *arg, const char *name, int64_t latest,
			 int64_t updated_ms)
{
	struct fs_ident id = { .kind = &kind_dataset, .key = name };

	(void)latest;
	return dirlist_add(arg, name, &id, updated_ms) < 0;
}

static int datasets_list(struct fs_ctx *ctx, struct fs_node *dir,
			 struct dirlist *dl)
{
	int rc = store_dataset_list(ctx->st, dataset_entry, dl);

	(void)dir;
	return rc == STORE_OK ? 0 : -fs_errno(rc);
}

static int datasets_render(struct fs_ctx *ctx, struct fs_node *node,
			   struct content *c)
{
	(void)node;
	c->mtime_ms = ctx->mount_ms;
	return 0;
}

static const struct fs_entry datasets_entries[] = {
	{ "register", &kind_dataset_register, "special: {\"name\", \"datastore\", \"paths\": [files, dirs or globs], \"copy\": false} -> a new version; read back \"NAME N\"" },
	{ NULL, NULL, NULL },
};

const struct fs_kind kind_datasets = {
	.name = "datasets",
	.mode = S_IFDIR | 0755,
	.dep = DEP_DATASETS,
	.entries = datasets_entries,
	.lookup = datasets_lookup,
	.list = datasets_list,
	.render = datasets_render,
	.dyn_name = "NAME",
	.dyn_kind = &kind_dataset,
	.dyn_help = "a dataset: latest -> N and its versions",
};
