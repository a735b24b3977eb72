/*
 * run_exec.c - what a submitted run adds to its directory: cancel,
 * config.json, the snapshot and parent links, children/.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"

/* ---- cancel ----------------------------------------------------------------- */

static int cancel_act(struct fs_ctx *ctx, struct fs_handle *h, const char *req,
		      size_t len)
{
	struct fs_node *n = h->node;
	enum run_status now = RUN_NOT_STARTED;
	int rc;

	(void)req;
	(void)len;
	rc = store_run_cancel(ctx->st, n->id.run_id, &now);
	if (rc == STORE_DENIED)
		return special_fail(h, EPERM, "the run has already ended: %s",
				    run_status_name(now));
	if (rc != STORE_OK)
		return special_fail(h, fs_errno(rc), "cannot cancel: %s",
				    store_strerror(rc));
	strbuf_addstr(&h->reply, run_status_name(now));
	version_bump(ctx, DEP_RUN, n->id.run_id);
	version_bump(ctx, DEP_EXPERIMENT, n->id.exp_id);
	version_bump(ctx, DEP_COMPUTES, 0);
	version_bump(ctx, DEP_EVENTS, 0);
	return 0;
}

const struct fs_kind kind_run_cancel = {
	.name = "cancel",
	.mode = S_IFREG | 0666,
	.dep = DEP_NONE,
	.render = special_render,
	.write = special_write,
	.flush = special_flush,
	.truncate = special_truncate,
	.act = cancel_act,
	.request_json = 0,
};

/* ---- config.json ------------------------------------------------------------ */

static int config_render(struct fs_ctx *ctx, struct fs_node *node,
			 struct content *c)
{
	struct store_run r = { 0 };
	struct sink s;
	int rc = store_run_get(ctx->st, node->id.run_id, &r);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	sink_begin(&s, ctx, c, 0);
	strbuf_addf(s.sb, "%s\n", r.config ? r.config : "{}");
	c->mtime_ms = r.created_ms;
	store_run_release(&r);
	return sink_end(&s);
}

/* Tests @what about the run of directory @dir (0 when it cannot tell). */
static int run_has(struct fs_ctx *ctx, const struct fs_ident *dir,
		   int (*what)(const struct store_run *r))
{
	struct store_run r = { 0 };
	int yes = 0;

	if (store_run_get(ctx->st, dir->run_id, &r) == STORE_OK)
		yes = what(&r);
	store_run_release(&r);
	return yes;
}

static int submitted(const struct store_run *r)
{
	return !r->interactive;
}

static int snapshotted(const struct store_run *r)
{
	return r->snapshot != NULL;
}

static int child(const struct store_run *r)
{
	return r->parent_id != 0;
}

static int is_submitted(struct fs_ctx *ctx, const struct fs_ident *dir)
{
	return run_has(ctx, dir, submitted);
}

const struct fs_kind kind_run_config = {
	.name = "config.json",
	.mode = S_IFREG | 0444,
	.dep = DEP_RUN,
	.render = config_render,
	.present = is_submitted,
};

/* ---- snapshot -> ../../../../snapshots/SNAP ------------------------------- */

static int snapshot_link_render(struct fs_ctx *ctx, struct fs_node *node,
				struct content *c)
{
	struct store_run r = { 0 };
	struct sink s;
	int rc = store_run_get(ctx->st, node->id.run_id, &r);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	rc = r.snapshot ? 0 : -ENOENT;
	if (rc == 0) {
		sink_begin(&s, ctx, c, 0);
		strbuf_addf(s.sb, "../../../../snapshots/%s", r.snapshot);
		c->mtime_ms = r.created_ms;
		rc = sink_end(&s);
	}
	store_run_release(&r);
	return rc;
}

static int has_snapshot(struct fs_ctx *ctx, const struct fs_ident *dir)
{
	return run_has(ctx, dir, snapshotted);
}

const struct fs_kind kind_run_snapshot_link = {
	.name = "snapshot",
	.mode = S_IFLNK | 0777,
	.dep = DEP_NONE,
	.render = snapshot_link_render,
	.present = has_snapshot,
};

/* ---- parent -> ../PARENT_ID ------------------------------------------------ */

static int parent_link_render(struct fs_ctx *ctx, struct fs_node *node,
			      struct content *c)
{
	struct store_run r = { 0 }, p = { 0 };
	struct sink s;
	int rc = store_run_get(ctx->st, node->id.run_id, &r);

	if (rc == STORE_OK)
		rc = r.parent_id ? store_run_get(ctx->st, r.parent_id, &p)
				 : STORE_NOT_FOUND;
	if (rc == STORE_OK) {
		sink_begin(&s, ctx, c, 0);
		strbuf_addf(s.sb, "../%s", p.name);
		c->mtime_ms = r.created_ms;
	}
	store_run_release(&p);
	store_run_release(&r);
	return rc == STORE_OK ? sink_end(&s) : -fs_errno(rc);
}

static int has_parent(struct fs_ctx *ctx, const struct fs_ident *dir)
{
	return run_has(ctx, dir, child);
}

const struct fs_kind kind_run_parent_link = {
	.name = "parent",
	.mode = S_IFLNK | 0777,
	.dep = DEP_NONE,
	.render = parent_link_render,
	.present = has_parent,
};

/* ---- children/CHILD -> ../../CHILD ------------------------------------------ */

static int child_link_render(struct fs_ctx *ctx, struct fs_node *node,
			     struct content *c)
{
	struct sink s;

	(void)ctx;
	sink_begin(&s, ctx, c, 0);
	strbuf_addf(s.sb, "../../%s", node->id.key);
	c->mtime_ms = ctx->mount_ms;
	return sink_end(&s);
}

static const struct fs_kind kind_child_link = {
	.name = "child",
	.mode = S_IFLNK | 0777,
	.dep = DEP_NONE,
	.render = child_link_render,
};

struct child_find {
	const char *name;
	int found;
	struct dirlist *dl;
};

static int child_match(void *arg, const struct store_run_entry *r)
{
	struct child_find *f = arg;

	f->found = strcmp(r->name, f->name) == 0;
	return f->found;
}

static int children_lookup(struct fs_ctx *ctx, struct fs_node *dir,
			   const char *name, struct fs_ident *out)
{
	struct child_find f = { name, 0, NULL };
	int rc = store_run_children(ctx->st, dir->id.run_id, child_match, &f);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	if (!f.found)
		return -ENOENT;
	out->kind = &kind_child_link;
	out->key = name;
	return 0;
}

static int child_entry(void *arg, const struct store_run_entry *r)
{
	struct fs_ident id = { .kind = &kind_child_link, .key = r->name };

	return dirlist_add(arg, r->name, &id, r->created_ms) < 0;
}

static int children_list(struct fs_ctx *ctx, struct fs_node *dir,
			 struct dirlist *dl)
{
	int rc = store_run_children(ctx->st, dir->id.run_id, child_entry, dl);

	return rc == STORE_OK ? 0 : -fs_errno(rc);
}

const struct fs_kind kind_run_children = {
	.name = "children",
	.mode = S_IFDIR | 0555,
	.dep = DEP_RUN,
	.lookup = children_lookup,
	.list = children_list,
	.render = run_dir_render,
	.dyn_name = "CHILD_ID",
	.dyn_kind = &kind_child_link,
	.dyn_help = "a child run, linked: CHILD_ID -> ../../CHILD_ID",
};
