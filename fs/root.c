/*
 * root.c - the mount's root: README, workspace.json, events, experiments/.
 */
#include <errno.h>
#include <stdlib.h>

#include "fs_internal.h"
#include "mlfs/jsonw.h"
#include "mlfs/timefmt.h"
#include "mlfs_config.h"

static int workspace_json_render(struct fs_ctx *ctx, struct fs_node *node,
				 struct content *c)
{
	struct store_workspace ws = { 0 };
	struct jsonw w;
	struct sink s;
	int rc;

	(void)node;
	rc = store_workspace_get(ctx->st, &ws);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	sink_begin(&s, ctx, c, 0);
	jsonw_init(&w, s.sb, 1);
	jsonw_object_begin(&w);
	jsonw_key(&w, "name");
	jsonw_string(&w, ws.name);
	jsonw_key(&w, "id");
	jsonw_string(&w, ws.uuid);
	jsonw_key(&w, "created");
	jsonw_time(&w, ws.created_ms);
	jsonw_key(&w, "schema_version");
	jsonw_int(&w, ws.schema_version);
	jsonw_key(&w, "mlfs_version");
	jsonw_string(&w, MLFS_VERSION);
	jsonw_key(&w, "path");
	jsonw_string(&w, store_dir(ctx->st));
	jsonw_key(&w, "limits");
	jsonw_object_begin(&w);
	jsonw_key(&w, "name_bytes");
	jsonw_int(&w, 255);
	jsonw_key(&w, "tag_value_bytes");
	jsonw_int(&w, STORE_VALUE_MAX);
	jsonw_key(&w, "property_value_bytes");
	jsonw_int(&w, STORE_VALUE_MAX);
	jsonw_key(&w, "events_kept");
	jsonw_int(&w, STORE_EVENTS_KEEP);
	jsonw_object_end(&w);
	jsonw_object_end(&w);
	c->mtime_ms = ws.created_ms;
	store_workspace_release(&ws);
	return sink_end(&s);
}

struct events_render {
	struct sink *s;
	int64_t last_ms;
};

static int event_line(void *arg, const struct store_event *e)
{
	struct events_render *er = arg;
	char ts[32];

	time_format_iso(e->ts_ms, ts);
	strbuf_addstr(er->s->sb, ts);
	strbuf_addch(er->s->sb, ' ');
	strbuf_addstr(er->s->sb, e->line);
	strbuf_addch(er->s->sb, '\n');
	er->last_ms = e->ts_ms;
	return sink_spill(er->s) < 0;
}

static int events_render(struct fs_ctx *ctx, struct fs_node *node,
			 struct content *c)
{
	struct sink s;
	struct events_render er = { &s, ctx->mount_ms };
	int rc;

	(void)node;
	sink_begin(&s, ctx, c, 0);
	rc = store_event_list(ctx->st, STORE_EVENTS_KEEP, event_line, &er);
	if (rc != STORE_OK) {
		content_release(c);
		return -fs_errno(rc);
	}
	c->mtime_ms = er.last_ms;
	return sink_end(&s);
}

/* experiments/: changes when an experiment is made or removed. */
int experiments_dir_render(struct fs_ctx *ctx, struct fs_node *node,
			   struct content *c)
{
	struct store_workspace ws = { 0 };
	int rc = store_workspace_get(ctx->st, &ws);

	(void)node;
	if (rc != STORE_OK)
		return -fs_errno(rc);
	c->mtime_ms = ws.updated_ms;
	store_workspace_release(&ws);
	return 0;
}

static const struct fs_kind kind_readme = {
	.name = "README",
	.mode = S_IFREG | 0444,
	.dep = DEP_NONE,
	.render = readme_render,
};

static const struct fs_kind kind_workspace_json = {
	.name = "workspace.json",
	.mode = S_IFREG | 0444,
	.dep = DEP_NONE,
	.render = workspace_json_render,
};

static const struct fs_kind kind_events = {
	.name = "events",
	.mode = S_IFREG | 0444,
	.dep = DEP_EVENTS,
	.render = events_render,
	.append_only = 0,	/* old events are pruned from the front */
};

static const struct fs_entry root_entries[] = {
	{ "README", &kind_readme, "what each file and special file does (this file)" },
	{ "workspace.json", &kind_workspace_json, "name, id, created, schema version, limits" },
	{ "events", &kind_events, "recent events and every refused request, one line each, newest last" },
	{ "experiments", &kind_experiments, "one directory per experiment" },
	{ "computes", &kind_computes, "compute targets: NAME/compute.json and NAME/queue; local always exists" },
	{ "snapshots", &kind_snapshots, "one directory per snapshot of a run's source (read-only)" },
	{ "models", &kind_models, "the model registry: NAME/N/ versions, NAME/latest, NAME/aliases/" },
	{ "datasets", &kind_datasets, "dataset versions: NAME/latest, NAME/N/{dataset.json, files/}, pinned to their bytes" },
	{ "datastores", &kind_datastores, "where data lives: NAME/datastore.json and NAME/files/ (a local directory or an HTTP server)" },
	{ NULL, NULL, NULL },
};

const struct fs_kind kind_root = {
	.name = "root",
	.mode = S_IFDIR | 0755,
	.dep = DEP_NONE,
	.entries = root_entries,
};
