/*
 * annotations.c - a run's tags/ (mutable) and properties/ (add-only),
 * one file per key.
 *
 * The same files serve a model version's tags/ (models/NAME/N/tags/KEY):
 * there id.run_id is the version's internal id and id.exp_id the model's
 * (see models.c), and a change bumps the model instead of the run.
 *
 * A value is everything written through one open, with one trailing
 * newline stripped; reading gives it back with a newline. A file made by
 * create() exists in the store from its first write, or, if nothing is
 * written, with an empty value when it is closed (touch).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"
#include "mlfs/models.h"
#include "mlfs/parse.h"

/* What differs between tags and properties. */
struct annotation_ops {
	const char *what;	/* "tag" / "property" */
	int (*get)(struct store *st, int64_t run_id, const char *key,
		   char **value, size_t *len, int64_t *changed_ms);
	int (*put)(struct store *st, int64_t run_id, const char *key,
		   const char *value, size_t len);
	int (*list)(struct store *st, int64_t run_id, store_kv_fn fn, void *ctx);
	const struct fs_kind *file_kind;
	int model;		/* a model version's, not a run's */
};

static const struct annotation_ops tag_ops;
static const struct annotation_ops property_ops;
static const struct annotation_ops model_tag_ops;

static const struct annotation_ops *ops_of(const struct fs_kind *k);

static void bump_run(struct fs_ctx *ctx, const struct fs_node *n)
{
	if (ops_of(n->id.kind)->model) {
		version_bump(ctx, DEP_MODEL, n->id.exp_id);
		return;
	}
	version_bump(ctx, DEP_RUN, n->id.run_id);
	version_bump(ctx, DEP_EXPERIMENT, n->id.exp_id);
}

/* models.h has no single-tag get: find the key in the list. */
struct tag_find {
	const char *key;
	char *value;
	size_t len;
	int64_t changed_ms;
	int found;
};

static int tag_find_one(void *arg, const struct store_kv *kv)
{
	struct tag_find *tf = arg;

	if (strcmp(kv->key, tf->key) != 0)
		return 0;
	tf->value = malloc(kv->len + 1);
	if (!tf->value)
		return 1;
	memcpy(tf->value, kv->value, kv->len);
	tf->value[kv->len] = '\0';
	tf->len = kv->len;
	tf->changed_ms = kv->updated_ms;
	tf->found = 1;
	return 1;
}

static int model_tag_get(struct store *st, int64_t version_id, const char *key,
			 char **value, size_t *len, int64_t *changed_ms)
{
	struct tag_find tf = { .key = key };
	int rc = store_model_tag_list(st, version_id, tag_find_one, &tf);

	if (rc < 0)
		return rc;
	if (!tf.found)
		return tf.value || rc == STORE_OK ? STORE_NOT_FOUND : STORE_NOMEM;
	*value = tf.value;
	*len = tf.len;
	if (changed_ms)
		*changed_ms = tf.changed_ms;
	return STORE_OK;
}

/* ---- the directories --------------------------------------------------- */

static int annotations_lookup(struct fs_ctx *ctx, struct fs_node *dir,
			      const char *name, struct fs_ident *out)
{
	const struct annotation_ops *ops = ops_of(dir->id.kind);
	char *value = NULL;
	size_t len;
	int rc;

	rc = ops->get(ctx->st, dir->id.run_id, name, &value, &len, NULL);
	free(value);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	out->kind = ops->file_kind;
	out->key = name;
	return 0;
}

struct list_ctx {
	struct dirlist *dl;
	const struct fs_node *dir;
	const struct fs_kind *file_kind;
};

static int annotation_entry(void *arg, const struct store_kv *kv)
{
	struct list_ctx *lc = arg;
	struct fs_ident id = lc->dir->id;

	id.kind = lc->file_kind;
	id.key = kv->key;
	return dirlist_add(lc->dl, kv->key, &id, kv->updated_ms) < 0;
}

static int annotations_list(struct fs_ctx *ctx, struct fs_node *dir,
			    struct dirlist *dl)
{
	const struct annotation_ops *ops = ops_of(dir->id.kind);
	struct list_ctx lc = { dl, dir, ops->file_kind };

	return -fs_errno(ops->list(ctx->st, dir->id.run_id, annotation_entry,
				   &lc));
}

static int annotations_create(struct fs_ctx *ctx, struct fs_node *dir,
			      const char *name, struct fs_make *mk,
			      struct fs_ident *out)
{
	const struct annotation_ops *ops = ops_of(dir->id.kind);

	(void)mk;
	if (!name_is_valid(name, strlen(name)))
		return fs_refuse(ctx, "create", dir, name, EINVAL,
				 "invalid %s key: use 1-255 of [A-Za-z0-9._-], "
				 "not starting with '.'", ops->what);
	out->kind = ops->file_kind;
	out->key = name;
	return 0;
}

static int tags_unlink(struct fs_ctx *ctx, struct fs_node *dir,
		       const char *name)
{
	int rc = store_tag_delete(ctx->st, dir->id.run_id, name);

	if (rc == STORE_NOT_FOUND)
		return -ENOENT;
	if (rc != STORE_OK)
		return fs_refuse(ctx, "unlink", dir, name, fs_errno(rc),
				 "cannot delete tag: %s", store_strerror(rc));
	bump_run(ctx, dir);
	return 0;
}

static int model_tags_unlink(struct fs_ctx *ctx, struct fs_node *dir,
			     const char *name)
{
	int rc = store_model_tag_delete(ctx->st, dir->id.run_id, name);

	if (rc == STORE_NOT_FOUND)
		return -ENOENT;
	if (rc != STORE_OK)
		return fs_refuse(ctx, "unlink", dir, name, fs_errno(rc),
				 "cannot delete tag: %s", store_strerror(rc));
	version_bump(ctx, DEP_MODEL, dir->id.exp_id);
	return 0;
}

static int properties_unlink(struct fs_ctx *ctx, struct fs_node *dir,
			     const char *name)
{
	return fs_refuse(ctx, "unlink", dir, name, EPERM,
			 "properties are add-only and cannot be removed");
}

/* ---- the files --------------------------------------------------------------- */

static int annotation_render(struct fs_ctx *ctx, struct fs_node *node,
			     struct content *c)
{
	const struct annotation_ops *ops = ops_of(node->id.kind);
	int64_t changed_ms = 0;
	char *value = NULL;
	size_t len = 0;
	struct sink s;
	int rc;

	rc = ops->get(ctx->st, node->id.run_id, node->id.key, &value, &len,
		      &changed_ms);
	if (rc == STORE_NOT_FOUND) {
		/* Made by create() and not written yet: an empty file. */
		sink_begin(&s, ctx, c, 0);
		c->mtime_ms = ctx->mount_ms;
		return sink_end(&s);
	}
	if (rc != STORE_OK)
		return -fs_errno(rc);
	sink_begin(&s, ctx, c, 0);
	strbuf_add(s.sb, value, len);
	strbuf_addch(s.sb, '\n');
	c->mtime_ms = changed_ms;
	free(value);
	return sink_end(&s);
}

static int annotation_store(struct fs_ctx *ctx, struct fs_handle *h,
			    const char *value, size_t len)
{
	const struct annotation_ops *ops = ops_of(h->node->id.kind);
	struct fs_node *n = h->node;
	int rc;

	rc = ops->put(ctx->st, n->id.run_id, n->id.key, value, len);
	if (rc == STORE_DENIED)
		return fs_refuse(ctx, "write", n, NULL, EPERM,
				 "property '%s' is already set to another "
				 "value; properties are add-only", n->id.key);
	if (rc == STORE_TOO_BIG)
		return fs_refuse(ctx, "write", n, NULL, EFBIG,
				 "%s value is over %d bytes", ops->what,
				 STORE_VALUE_MAX);
	if (rc == STORE_INVALID)
		return fs_refuse(ctx, "write", n, NULL, EINVAL,
				 "%s values are UTF-8 text without NUL bytes",
				 ops->what);
	if (rc != STORE_OK)
		return fs_refuse(ctx, "write", n, NULL, fs_errno(rc),
				 "cannot set %s '%s': %s", ops->what, n->id.key,
				 store_strerror(rc));
	bump_run(ctx, n);
	return 0;
}

static int annotation_write(struct fs_ctx *ctx, struct fs_handle *h,
			    const char *buf, size_t len, off_t off)
{
	int rc = handle_accumulate(h, buf, len, off, STORE_VALUE_MAX + 1);

	if (rc < 0)
		return fs_refuse(ctx, "write", h->node, NULL, EFBIG,
				 "%s value is over %d bytes",
				 ops_of(h->node->id.kind)->what, STORE_VALUE_MAX);
	rc = annotation_store(ctx, h, h->buf.buf,
			      strip_one_newline(h->buf.buf, h->buf.len));
	return rc < 0 ? rc : (int)len;
}

/*
 * touch, or "> file" with nothing written: the key with an empty value.
 * At release, not flush: a shell's "echo v > f" closes a dup of the file
 * (a flush) before it writes. On an existing property O_TRUNC alone is
 * ignored: "echo v > p" must work for the same bytes, so the open cannot
 * fail, and a refusal at release would reach nobody.
 */
static void annotation_release(struct fs_ctx *ctx, struct fs_handle *h)
{
	if (h->wrote || !(h->created || h->truncated))
		return;
	if (!h->created && ops_of(h->node->id.kind) == &property_ops)
		return;
	if (!(h->flags & (O_WRONLY | O_RDWR)))
		return;
	annotation_store(ctx, h, "", 0);
}

/*
 * touch: a key that does not exist yet gets an empty value now, not at
 * release (which the kernel sends after close() has returned).
 */
static int annotation_touch(struct fs_ctx *ctx, struct fs_node *node)
{
	const struct annotation_ops *ops = ops_of(node->id.kind);
	char *value = NULL;
	size_t len;
	int rc;

	rc = ops->get(ctx->st, node->id.run_id, node->id.key, &value, &len,
		      NULL);
	free(value);
	if (rc != STORE_NOT_FOUND)
		return -fs_errno(rc);
	rc = ops->put(ctx->st, node->id.run_id, node->id.key, "", 0);
	if (rc != STORE_OK)
		return fs_refuse(ctx, "touch", node, NULL, fs_errno(rc),
				 "cannot make %s '%s': %s", ops->what,
				 node->id.key, store_strerror(rc));
	bump_run(ctx, node);
	return 0;
}

static int annotation_truncate(struct fs_ctx *ctx, struct fs_node *node,
			       off_t size)
{
	const struct annotation_ops *ops = ops_of(node->id.kind);
	int rc;

	if (size != 0)
		return fs_refuse(ctx, "truncate", node, NULL, EINVAL,
				 "a %s can only be emptied, not truncated to "
				 "%lld bytes", ops->what, (long long)size);
	rc = ops->put(ctx->st, node->id.run_id, node->id.key, "", 0);
	if (rc == STORE_DENIED)
		return fs_refuse(ctx, "truncate", node, NULL, EPERM,
				 "property '%s' is already set; properties are "
				 "add-only", node->id.key);
	if (rc != STORE_OK)
		return fs_refuse(ctx, "truncate", node, NULL, fs_errno(rc),
				 "cannot empty %s: %s", ops->what,
				 store_strerror(rc));
	bump_run(ctx, node);
	return 0;
}

static const struct fs_kind kind_tag = {
	.name = "tag",
	.mode = S_IFREG | 0644,
	.dep = DEP_RUN,
	.render = annotation_render,
	.write = annotation_write,
	.release = annotation_release,
	.truncate = annotation_truncate,
	.touch = annotation_touch,
};

static const struct fs_kind kind_property = {
	.name = "property",
	.mode = S_IFREG | 0644,
	.dep = DEP_RUN,
	.render = annotation_render,
	.write = annotation_write,
	.release = annotation_release,
	.truncate = annotation_truncate,
	.touch = annotation_touch,
};

const struct fs_kind kind_run_tags = {
	.name = "tags",
	.mode = S_IFDIR | 0755,
	.dep = DEP_RUN,
	.render = run_dir_render,
	.lookup = annotations_lookup,
	.list = annotations_list,
	.create = annotations_create,
	.unlink = tags_unlink,
	.dyn_name = "KEY",
	.dyn_kind = &kind_tag,
	.dyn_help = "a tag: writing replaces the value, rm deletes it",
};

const struct fs_kind kind_run_properties = {
	.name = "properties",
	.mode = S_IFDIR | 0755,
	.dep = DEP_RUN,
	.render = run_dir_render,
	.lookup = annotations_lookup,
	.list = annotations_list,
	.create = annotations_create,
	.unlink = properties_unlink,
	.dyn_name = "KEY",
	.dyn_kind = &kind_property,
	.dyn_help = "a property: add-only; the same bytes again are fine, other bytes or rm give EPERM",
};

static const struct fs_kind kind_model_tag = {
	.name = "model tag",
	.mode = S_IFREG | 0644,
	.dep = DEP_MODEL,
	.render = annotation_render,
	.write = annotation_write,
	.release = annotation_release,
	.truncate = annotation_truncate,
	.touch = annotation_touch,
};

const struct fs_kind kind_model_version_tags = {
	.name = "model tags",
	.mode = S_IFDIR | 0755,
	.dep = DEP_MODEL,
	.lookup = annotations_lookup,
	.list = annotations_list,
	.create = annotations_create,
	.unlink = model_tags_unlink,
	.dyn_name = "KEY",
	.dyn_kind = &kind_model_tag,
	.dyn_help = "a tag of the version: writing replaces the value, rm deletes it",
};

static const struct annotation_ops model_tag_ops = {
	.what = "tag",
	.get = model_tag_get,
	.put = store_model_tag_set,
	.list = store_model_tag_list,
	.file_kind = &kind_model_tag,
	.model = 1,
};

static const struct annotation_ops tag_ops = {
	.what = "tag",
	.get = store_tag_get,
	.put = store_tag_set,
	.list = store_tag_list,
	.file_kind = &kind_tag,
};

static const struct annotation_ops property_ops = {
	.what = "property",
	.get = store_property_get,
	.put = store_property_add,
	.list = store_property_list,
	.file_kind = &kind_property,
};

static const struct annotation_ops *ops_of(const struct fs_kind *k)
{
	if (k == &kind_model_version_tags || k == &kind_model_tag)
		return &model_tag_ops;
	return k == &kind_run_properties || k == &kind_property ? &property_ops
								: &tag_ops;
}
