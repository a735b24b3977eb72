/*
 * computes.c - computes/: the compute targets, their settings and queues.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"
#include "mlfs/compute.h"
#include "mlfs/jsonw.h"
#include "mlfs/timefmt.h"

/* A compute target's node keeps its name in id.key. */

static int compute_json_render(struct fs_ctx *ctx, struct fs_node *node,
			       struct content *c)
{
	struct store_compute cp = { 0 };
	struct jsonw w;
	struct sink s;
	int rc = store_compute_get(ctx->st, node->id.key, &cp);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	sink_begin(&s, ctx, c, 0);
	jsonw_init(&w, s.sb, 1);
	jsonw_object_begin(&w);
	jsonw_key(&w, "name");
	jsonw_string(&w, cp.name);
	jsonw_key(&w, "type");
	jsonw_string(&w, cp.type);
	jsonw_key(&w, "max_concurrent_runs");
	jsonw_int(&w, cp.max_concurrent > 0 ? cp.max_concurrent
					    : compute_cpus());
	jsonw_key(&w, "max_concurrent_runs_set");
	jsonw_bool(&w, cp.max_concurrent > 0);
	jsonw_key(&w, "cpus");
	jsonw_int(&w, compute_cpus());
	jsonw_key(&w, "created");
	jsonw_time(&w, cp.created_ms);
	jsonw_key(&w, "updated");
	jsonw_time(&w, cp.updated_ms);
	jsonw_object_end(&w);
	c->mtime_ms = cp.updated_ms;
	store_compute_release(&cp);
	return sink_end(&s);
}

struct queue_render {
	struct strbuf *sb;
	int64_t newest_ms;
};

static int queue_line(void *arg, const struct store_run_entry *r,
		      enum run_status status, const char *experiment)
{
	struct queue_render *q = arg;

	if (r->updated_ms > q->newest_ms)
		q->newest_ms = r->updated_ms;
	return strbuf_addf(q->sb, "%s\t%s\t%s\n", run_status_name(status),
			   experiment, r->name) < 0;
}

/* One line per Queued or active run, oldest first: STATUS EXP RUN_ID. */
static int queue_render(struct fs_ctx *ctx, struct fs_node *node,
			struct content *c)
{
	struct queue_render q;
	struct sink s;
	int rc;

	sink_begin(&s, ctx, c, 0);
	q.sb = s.sb;
	q.newest_ms = ctx->mount_ms;
	rc = store_compute_queue(ctx->st, node->id.key, queue_line, &q);
	if (rc != STORE_OK) {
		content_release(c);
		return -fs_errno(rc);
	}
	c->mtime_ms = q.newest_ms;
	return sink_end(&s);
}

static const struct fs_kind kind_compute_json = {
	.name = "compute.json",
	.mode = S_IFREG | 0444,
	.dep = DEP_COMPUTES,
	.render = compute_json_render,
};

static const struct fs_kind kind_compute_queue = {
	.name = "queue",
	.mode = S_IFREG | 0444,
	.dep = DEP_COMPUTES,
	.render = queue_render,
};

static const struct fs_entry compute_entries[] = {
	{ "compute.json", &kind_compute_json, "name, type, max_concurrent_runs (mount option), cpus" },
	{ "queue", &kind_compute_queue, "Queued and active runs, oldest first: STATUS<TAB>EXPERIMENT<TAB>RUN_ID" },
	{ NULL, NULL, NULL },
};

static int compute_dir_render(struct fs_ctx *ctx, struct fs_node *node,
			      struct content *c)
{
	struct store_compute cp = { 0 };
	int rc = store_compute_get(ctx->st, node->id.key, &cp);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	c->mtime_ms = cp.updated_ms;
	store_compute_release(&cp);
	return 0;
}

static const struct fs_kind kind_compute = {
	.name = "compute",
	.mode = S_IFDIR | 0555,
	.dep = DEP_COMPUTES,
	.entries = compute_entries,
	.render = compute_dir_render,
};

static int computes_lookup(struct fs_ctx *ctx, struct fs_node *dir,
			   const char *name, struct fs_ident *out)
{
	struct store_compute cp;
	int rc = store_compute_get(ctx->st, name, &cp);

	(void)dir;
	if (rc != STORE_OK)
		return -fs_errno(rc);
	store_compute_release(&cp);
	out->kind = &kind_compute;
	out->key = name;
	return 0;
}

static int compute_entry(void *arg, const struct store_compute *cp)
{
	struct fs_ident id = { .kind = &kind_compute, .key = cp->name };

	return dirlist_add(arg, cp->name, &id, cp->updated_ms) < 0;
}

static int computes_list(struct fs_ctx *ctx, struct fs_node *dir,
			 struct dirlist *dl)
{
	int rc = store_compute_list(ctx->st, compute_entry, dl);

	(void)dir;
	return rc == STORE_OK ? 0 : -fs_errno(rc);
}

static int computes_render(struct fs_ctx *ctx, struct fs_node *node,
			   struct content *c)
{
	(void)node;
	c->mtime_ms = ctx->mount_ms;
	return 0;
}

const struct fs_kind kind_computes = {
	.name = "computes",
	.mode = S_IFDIR | 0555,
	.dep = DEP_COMPUTES,
	.lookup = computes_lookup,
	.list = computes_list,
	.render = computes_render,
	.dyn_name = "NAME",
	.dyn_kind = &kind_compute,
	.dyn_help = "a compute target",
};
