/*
 * runs.c - experiments/E/runs/, runs/latest, and a run's directory with
 * run.json, status and metrics.json.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"
#include "mlfs/jsonw.h"
#include "mlfs/models.h"
#include "mlfs/parse.h"

/* ---- runs/latest -------------------------------------------------------- */

static int latest_render(struct fs_ctx *ctx, struct fs_node *node,
			 struct content *c)
{
	struct store_experiment e = { 0 };
	char *name = NULL;
	struct sink s;
	int rc;

	rc = store_run_latest(ctx->st, node->id.exp_id, &name);
	if (rc == STORE_OK)
		rc = store_experiment_get_by_id(ctx->st, node->id.exp_id, &e);
	if (rc != STORE_OK) {
		free(name);
		return -fs_errno(rc);
	}
	sink_begin(&s, ctx, c, 0);
	strbuf_addstr(s.sb, name);
	c->mtime_ms = e.updated_ms;
	free(name);
	store_experiment_release(&e);
	return sink_end(&s);
}

static const struct fs_kind kind_latest = {
	.name = "latest",
	.mode = S_IFLNK | 0777,
	.dep = DEP_EXPERIMENT,
	.render = latest_render,
};

/* ---- runs/ ---------------------------------------------------------------- */

static int runs_lookup(struct fs_ctx *ctx, struct fs_node *dir,
		       const char *name, struct fs_ident *out)
{
	struct store_run r = { 0 };
	char *latest = NULL;
	int rc;

	if (strcmp(name, "latest") == 0) {
		rc = store_run_latest(ctx->st, dir->id.exp_id, &latest);
		free(latest);
		out->kind = &kind_latest;
		return -fs_errno(rc);
	}
	rc = store_run_find(ctx->st, dir->id.exp_id, name, &r);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	out->kind = &kind_run;
	out->run_id = r.id;
	store_run_release(&r);
	return 0;
}

struct runs_list {
	struct dirlist *dl;
	int64_t exp_id;
};

static int run_entry(void *arg, const struct store_run_entry *r)
{
	struct runs_list *rl = arg;
	struct fs_ident id = {
		.kind = &kind_run, .exp_id = rl->exp_id, .run_id = r->id,
	};

	return dirlist_add(rl->dl, r->name, &id, r->updated_ms) < 0;
}

static int runs_list(struct fs_ctx *ctx, struct fs_node *dir,
		     struct dirlist *dl)
{
	struct runs_list rl = { dl, dir->id.exp_id };
	size_t before = dl->n;
	int rc;

	rc = store_run_list(ctx->st, dir->id.exp_id, run_entry, &rl);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	if (dl->n > before) {
		struct fs_ident id = { .kind = &kind_latest,
				       .exp_id = dir->id.exp_id };

		return dirlist_add(dl, "latest", &id, 0);
	}
	return 0;
}

static int runs_mkdir(struct fs_ctx *ctx, struct fs_node *dir,
		      const char *name, struct fs_make *mk,
		      struct fs_ident *out)
{
	struct store_run r = { 0 };
	int rc;

	(void)mk;	/* modes are the kind's */
	if (strcmp(name, "latest") == 0 || !name_is_valid(name, strlen(name)))
		return fs_refuse(ctx, "mkdir", dir, name, EINVAL,
				 "invalid run id: use 1-255 of [A-Za-z0-9._-], "
				 "not starting with '.', and not 'latest'");
	rc = store_run_create_interactive(ctx->st, dir->id.exp_id, name, &r);
	if (rc == STORE_EXISTS)
		return fs_refuse(ctx, "mkdir", dir, name, EEXIST,
				 "a run '%s' already exists in this workspace",
				 name);
	if (rc != STORE_OK)
		return fs_refuse(ctx, "mkdir", dir, name, fs_errno(rc),
				 "cannot create run '%s': %s", name,
				 store_strerror(rc));
	version_bump(ctx, DEP_EXPERIMENT, dir->id.exp_id);
	version_bump(ctx, DEP_RUN, r.id);
	version_bump(ctx, DEP_EVENTS, 0);
	out->kind = &kind_run;
	out->run_id = r.id;
	store_run_release(&r);
	return 0;
}

static int runs_rmdir(struct fs_ctx *ctx, struct fs_node *dir,
		      const char *name)
{
	return fs_refuse(ctx, "rmdir", dir, name, EPERM,
			 "runs are kept forever and cannot be removed");
}

const struct fs_kind kind_runs = {
	.name = "runs",
	.mode = S_IFDIR | 0755,
	.dep = DEP_EXPERIMENT,
	.lookup = runs_lookup,
	.list = runs_list,
	.mkdir = runs_mkdir,
	.rmdir = runs_rmdir,
	.render = experiment_render,	/* runs are counted by the experiment */
	.dyn_name = "ID",
	.dyn_kind = &kind_run,
	.dyn_help = "a run: mkdir makes an interactive run (Running); runs/latest links to the newest",
};

/* ---- the run directory and its files --------------------------------------- */

int run_dir_render(struct fs_ctx *ctx, struct fs_node *node, struct content *c)
{
	struct store_run r = { 0 };
	int rc = store_run_get(ctx->st, node->id.run_id, &r);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	c->mtime_ms = r.updated_ms;
	store_run_release(&r);
	return 0;
}

static int json_kv(void *arg, const struct store_kv *kv)
{
	struct jsonw *w = arg;

	jsonw_key(w, kv->key);
	jsonw_string_len(w, kv->value, kv->len);
	return 0;
}

static void json_time_or_null(struct jsonw *w, const char *key, int64_t ms)
{
	jsonw_key(w, key);
	jsonw_time(w, ms);
}

/* A value from the run's config, written as it is. */
static void json_raw_or_null(struct jsonw *w, json_t *v)
{
	char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
					   JSON_SORT_KEYS) : NULL;

	if (text)
		jsonw_json(w, text, strlen(text));
	else
		jsonw_null(w);
	free(text);
}

struct git_fields {
	struct jsonw *w;
	int any;
};

static int git_property(void *arg, const struct store_kv *kv)
{
	static const char prefix[] = "azureml.git.";
	struct git_fields *g = arg;
	const char *field = kv->key + sizeof(prefix) - 1;

	if (strncmp(kv->key, prefix, sizeof(prefix) - 1) != 0)
		return 0;
	if (!g->any)
		jsonw_object_begin(g->w);
	g->any = 1;
	jsonw_key(g->w, strcmp(field, "repository_uri") == 0 ? "repository"
							      : field);
	if (strcmp(field, "dirty") == 0)
		jsonw_bool(g->w, kv->len == 4 && memcmp(kv->value, "true", 4) == 0);
	else
		jsonw_string_len(g->w, kv->value, kv->len);
	return 0;
}

/* "git": {repository, branch, commit, dirty} from the git properties. */
static int run_json_git(struct fs_ctx *ctx, struct jsonw *w,
			const struct store_run *r)
{
	struct git_fields g = { w, 0 };
	int rc;

	jsonw_key(w, "git");
	rc = store_property_list(ctx->st, r->id, git_property, &g);
	if (g.any)
		jsonw_object_end(w);
	else
		jsonw_null(w);
	return rc;
}

static int child_name(void *arg, const struct store_run_entry *e)
{
	jsonw_string(arg, e->name);
	return 0;
}

static int run_json_family(struct fs_ctx *ctx, struct jsonw *w,
			   const struct store_run *r)
{
	struct store_run p = { 0 };
	int rc = STORE_OK;

	jsonw_key(w, "parent");
	if (r->parent_id)
		rc = store_run_get(ctx->st, r->parent_id, &p);
	if (rc != STORE_OK)
		return rc;
	jsonw_string(w, p.name);
	store_run_release(&p);
	jsonw_key(w, "children");
	jsonw_array_begin(w);
	rc = store_run_children(ctx->st, r->id, child_name, w);
	jsonw_array_end(w);
	return rc;
}

/* A model version registered from the run: {"name": .., "version": N}. */
static int json_model_version(void *arg, const struct store_model_version *v)
{
	struct jsonw *w = arg;

	jsonw_object_begin(w);
	jsonw_key(w, "name");
	jsonw_string(w, v->model);
	jsonw_key(w, "version");
	jsonw_int(w, v->version);
	jsonw_object_end(w);
	return 0;
}

static int run_json_body(struct fs_ctx *ctx, struct jsonw *w,
			 const struct store_run *r, const char *experiment,
			 json_t *config)
{
	int rc;

	jsonw_key(w, "id");
	jsonw_string(w, r->name);
	jsonw_key(w, "number");
	jsonw_int(w, r->number);
	jsonw_key(w, "experiment");
	jsonw_string(w, experiment);
	jsonw_key(w, "display_name");
	jsonw_string(w, r->display_name);
	jsonw_key(w, "status");
	jsonw_string(w, run_status_name(r->status));
	jsonw_key(w, "interactive");
	jsonw_bool(w, r->interactive);
	json_time_or_null(w, "created", r->created_ms);
	json_time_or_null(w, "started", r->started_ms);
	json_time_or_null(w, "ended", r->ended_ms);
	jsonw_key(w, "duration_s");
	if (r->started_ms >= 0 && r->ended_ms >= 0)
		jsonw_double(w, (double)(r->ended_ms - r->started_ms) / 1000.0);
	else
		jsonw_null(w);
	jsonw_key(w, "compute_target");
	jsonw_string(w, r->compute_target);
	jsonw_key(w, "environment");
	json_raw_or_null(w, json_object_get(config, "environment"));
	jsonw_key(w, "snapshot");
	jsonw_string(w, r->snapshot);
	rc = run_json_git(ctx, w, r);
	if (rc != STORE_OK)
		return rc;
	rc = run_json_family(ctx, w, r);
	if (rc != STORE_OK)
		return rc;
	jsonw_key(w, "tags");
	jsonw_object_begin(w);
	rc = store_tag_list(ctx->st, r->id, json_kv, w);
	jsonw_object_end(w);
	if (rc != STORE_OK)
		return rc;
	jsonw_key(w, "properties");
	jsonw_object_begin(w);
	rc = store_property_list(ctx->st, r->id, json_kv, w);
	jsonw_object_end(w);
	if (rc != STORE_OK)
		return rc;
	jsonw_key(w, "exit_code");
	if (r->has_exit_code)
		jsonw_int(w, r->exit_code);
	else
		jsonw_null(w);
	jsonw_key(w, "error");
	jsonw_string(w, r->error);
	jsonw_key(w, "arguments");
	if (json_is_array(json_object_get(config, "arguments")))
		json_raw_or_null(w, json_object_get(config, "arguments"));
	else {
		jsonw_array_begin(w);
		jsonw_array_end(w);
	}
	jsonw_key(w, "models");
	jsonw_array_begin(w);
	rc = store_run_models(ctx->st, r->id, json_model_version, w);
	jsonw_array_end(w);
	return rc;
}

static int run_json_render(struct fs_ctx *ctx, struct fs_node *node,
			   struct content *c)
{
	struct store_experiment e = { 0 };
	struct store_run r = { 0 };
	json_t *config;
	struct jsonw w;
	struct sink s;
	int rc;

	rc = store_run_get(ctx->st, node->id.run_id, &r);
	if (rc == STORE_OK)
		rc = store_experiment_get_by_id(ctx->st, r.experiment_id, &e);
	if (rc != STORE_OK)
		goto out_release;
	sink_begin(&s, ctx, c, 0);
	jsonw_init(&w, s.sb, 1);
	jsonw_object_begin(&w);
	config = r.config ? json_loads(r.config, 0, NULL) : NULL;
	rc = run_json_body(ctx, &w, &r, e.name, config);
	json_decref(config);
	jsonw_object_end(&w);
	c->mtime_ms = r.updated_ms;
	if (rc != STORE_OK)
		content_release(c);
out_release:
	store_experiment_release(&e);
	store_run_release(&r);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	return sink_end(&s);
}

static int status_render(struct fs_ctx *ctx, struct fs_node *node,
			 struct content *c)
{
	struct store_run r = { 0 };
	struct sink s;
	int rc = store_run_get(ctx->st, node->id.run_id, &r);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	sink_begin(&s, ctx, c, 0);
	strbuf_addf(s.sb, "%s\n", run_status_name(r.status));
	c->mtime_ms = r.updated_ms;
	store_run_release(&r);
	return sink_end(&s);
}

#define STATUS_WRITE_MAX 64

static int status_write(struct fs_ctx *ctx, struct fs_handle *h,
			const char *buf, size_t len, off_t off)
{
	struct fs_node *n = h->node;
	size_t vlen;
	int status, rc;

	rc = handle_accumulate(h, buf, len, off, STATUS_WRITE_MAX);
	if (rc < 0)
		return fs_refuse(ctx, "write", n, NULL, EINVAL,
				 "status is one word: Completed, Failed or "
				 "Canceled");
	vlen = strip_one_newline(h->buf.buf, h->buf.len);
	status = run_status_parse(h->buf.buf, vlen);
	if (status != RUN_COMPLETED && status != RUN_FAILED &&
	    status != RUN_CANCELED)
		return fs_refuse(ctx, "write", n, NULL, EINVAL,
				 "invalid status '%.*s': interactive runs "
				 "accept Completed, Failed or Canceled",
				 (int)vlen, h->buf.buf);
	rc = store_run_set_status(ctx->st, n->id.run_id, status);
	if (rc == STORE_DENIED)
		return fs_refuse(ctx, "write", n, NULL, EPERM,
				 "run has already ended with another status, "
				 "or is not interactive (use cancel)");
	if (rc != STORE_OK)
		return fs_refuse(ctx, "write", n, NULL, fs_errno(rc),
				 "cannot set status: %s", store_strerror(rc));
	version_bump(ctx, DEP_RUN, n->id.run_id);
	version_bump(ctx, DEP_EXPERIMENT, n->id.exp_id);
	version_bump(ctx, DEP_EVENTS, 0);
	return (int)len;
}

static int status_truncate(struct fs_ctx *ctx, struct fs_node *node, off_t size)
{
	(void)ctx;
	(void)node;
	(void)size;
	return 0;	/* "echo X > status" truncates first: nothing to do */
}

struct metrics_json {
	struct jsonw *w;
	int64_t newest_ms;
};

static int metric_summary(void *arg, const struct store_metric *m)
{
	struct metrics_json *mj = arg;
	struct jsonw *w = mj->w;

	if (m->updated_ms > mj->newest_ms)
		mj->newest_ms = m->updated_ms;
	jsonw_key(w, m->name);
	jsonw_object_begin(w);
	jsonw_key(w, "last");
	if (m->count)
		jsonw_double(w, m->last);
	else
		jsonw_null(w);
	jsonw_key(w, "min");
	if (m->count)
		jsonw_double(w, m->min);
	else
		jsonw_null(w);
	jsonw_key(w, "max");
	if (m->count)
		jsonw_double(w, m->max);
	else
		jsonw_null(w);
	jsonw_key(w, "count");
	jsonw_int(w, m->count);
	jsonw_key(w, "last_step");
	jsonw_int(w, m->last_step);
	jsonw_key(w, "updated");
	jsonw_time(w, m->updated_ms);
	jsonw_object_end(w);
	return 0;
}

static int metrics_json_render(struct fs_ctx *ctx, struct fs_node *node,
			       struct content *c)
{
	struct store_run r = { 0 };
	struct jsonw w;
	struct metrics_json mj = { &w, 0 };
	struct sink s;
	int rc = store_run_get(ctx->st, node->id.run_id, &r);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	sink_begin(&s, ctx, c, 0);
	jsonw_init(&w, s.sb, 1);
	jsonw_object_begin(&w);
	mj.newest_ms = r.created_ms;
	rc = store_metric_list(ctx->st, node->id.run_id, metric_summary, &mj);
	jsonw_object_end(&w);
	c->mtime_ms = mj.newest_ms;
	store_run_release(&r);
	if (rc != STORE_OK) {
		content_release(c);
		return -fs_errno(rc);
	}
	return sink_end(&s);
}

static const struct fs_kind kind_run_json = {
	.name = "run.json",
	.mode = S_IFREG | 0444,
	.dep = DEP_RUN,
	.render = run_json_render,
};

static const struct fs_kind kind_run_status = {
	.name = "status",
	.mode = S_IFREG | 0644,
	.dep = DEP_RUN,
	.render = status_render,
	.write = status_write,
	.truncate = status_truncate,
};

static const struct fs_kind kind_metrics_json = {
	.name = "metrics.json",
	.mode = S_IFREG | 0444,
	.dep = DEP_RUN,
	.render = metrics_json_render,
};

static const struct fs_entry run_entries[] = {
	{ "run.json", &kind_run_json, "the run's metadata: status, times, tags, properties, ..." },
	{ "status", &kind_run_status, "one word; write Completed, Failed or Canceled to end an interactive run" },
	{ "tags", &kind_run_tags, "mutable tags, one file each" },
	{ "properties", &kind_run_properties, "add-only properties, one file each" },
	{ "metrics", &kind_run_metrics, "one file per metric" },
	{ "metrics.json", &kind_metrics_json, "per metric: last, min, max, count" },
	{ "config.json", &kind_run_config, "submitted runs: the normalized request the run was made from" },
	{ "cancel", &kind_run_cancel, "any write cancels a Queued or running run; read back the status" },
	{ "snapshot", &kind_run_snapshot_link, "submitted runs: -> ../../../../snapshots/SNAP, the source it ran" },
	{ "parent", &kind_run_parent_link, "child runs: -> ../PARENT_ID" },
	{ "children", &kind_run_children, "child runs: CHILD_ID -> ../../CHILD_ID" },
	{ "outputs", &kind_run_area, "what the run wrote to ./outputs (read-only)" },
	{ "logs", &kind_run_area, "user_logs/std_log.txt (stdout+stderr, live), system_logs/mlfs.log, and what the run wrote to ./logs" },
	{ NULL, NULL, NULL },
};

const struct fs_kind kind_run = {
	.name = "run",
	.mode = S_IFDIR | 0755,
	.dep = DEP_RUN,
	.entries = run_entries,
	.render = run_dir_render,
};
