/*
 * experiments.c - experiments/, experiments/E/ and experiments/E/runs.csv.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"
#include "mlfs/csv.h"
#include "mlfs/numfmt.h"
#include "mlfs/parse.h"
#include "mlfs/timefmt.h"

/* ---- experiments/ ------------------------------------------------------ */

static int experiments_lookup(struct fs_ctx *ctx, struct fs_node *dir,
			      const char *name, struct fs_ident *out)
{
	struct store_experiment e = { 0 };
	int rc;

	(void)dir;
	rc = store_experiment_get(ctx->st, name, &e);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	out->kind = &kind_experiment;
	out->exp_id = e.id;
	store_experiment_release(&e);
	return 0;
}

static int experiment_entry(void *arg, const struct store_experiment *e)
{
	struct fs_ident id = { .kind = &kind_experiment, .exp_id = e->id };

	return dirlist_add(arg, e->name, &id, e->updated_ms) < 0;
}

static int experiments_list(struct fs_ctx *ctx, struct fs_node *dir,
			    struct dirlist *dl)
{
	(void)dir;
	return -fs_errno(store_experiment_list(ctx->st, experiment_entry, dl));
}

static int experiments_mkdir(struct fs_ctx *ctx, struct fs_node *dir,
			     const char *name, struct fs_make *mk,
			     struct fs_ident *out)
{
	struct store_experiment e = { 0 };
	int rc;

	(void)mk;	/* modes are the kind's */
	if (!name_is_valid(name, strlen(name)))
		return fs_refuse(ctx, "mkdir", dir, name, EINVAL,
				 "invalid experiment name: use 1-255 of "
				 "[A-Za-z0-9._-], not starting with '.'");
	rc = store_experiment_create(ctx->st, name, &e);
	if (rc == STORE_EXISTS)
		return fs_refuse(ctx, "mkdir", dir, name, EEXIST,
				 "experiment '%s' already exists", name);
	if (rc != STORE_OK)
		return fs_refuse(ctx, "mkdir", dir, name, fs_errno(rc),
				 "cannot create experiment '%s': %s", name,
				 store_strerror(rc));
	version_bump(ctx, DEP_EXPERIMENTS, 0);
	version_bump(ctx, DEP_EVENTS, 0);
	out->kind = &kind_experiment;
	out->exp_id = e.id;
	store_experiment_release(&e);
	return 0;
}

static int experiments_rmdir(struct fs_ctx *ctx, struct fs_node *dir,
			     const char *name)
{
	int rc = store_experiment_delete(ctx->st, name);

	if (rc == STORE_NOT_EMPTY)
		return fs_refuse(ctx, "rmdir", dir, name, ENOTEMPTY,
				 "experiment '%s' has runs; runs are kept "
				 "forever, so it cannot be removed", name);
	if (rc == STORE_NOT_FOUND)
		return -ENOENT;
	if (rc != STORE_OK)
		return fs_refuse(ctx, "rmdir", dir, name, fs_errno(rc),
				 "cannot remove experiment '%s': %s", name,
				 store_strerror(rc));
	version_bump(ctx, DEP_EXPERIMENTS, 0);
	version_bump(ctx, DEP_EVENTS, 0);
	return 0;
}

const struct fs_kind kind_experiments = {
	.name = "experiments",
	.mode = S_IFDIR | 0755,
	.dep = DEP_EXPERIMENTS,
	.lookup = experiments_lookup,
	.list = experiments_list,
	.mkdir = experiments_mkdir,
	.rmdir = experiments_rmdir,
	.render = experiments_dir_render,
	.dyn_name = "E",
	.dyn_kind = &kind_experiment,
	.dyn_help = "an experiment: mkdir creates it; rmdir only while it has no runs (ENOTEMPTY)",
};

/* ---- experiments/E/ ------------------------------------------------------- */

int experiment_render(struct fs_ctx *ctx, struct fs_node *node,
		      struct content *c)
{
	struct store_experiment e = { 0 };
	int rc = store_experiment_get_by_id(ctx->st, node->id.exp_id, &e);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	c->mtime_ms = e.updated_ms;
	store_experiment_release(&e);
	return 0;
}

/* ---- experiments/E/runs.csv ------------------------------------------------ */

static void csv_str(struct strbuf *sb, const char *s)
{
	if (s)
		csv_field(sb, s, strlen(s));
}

static void csv_time(struct strbuf *sb, int64_t ms)
{
	char ts[32];

	if (ms >= 0)
		strbuf_add(sb, ts, time_format_iso(ms, ts));
}

static void csv_duration(struct strbuf *sb, const struct store_run *r)
{
	char num[FMT_DOUBLE_LEN];

	if (r->started_ms >= 0 && r->ended_ms >= 0)
		strbuf_add(sb, num, fmt_double((double)(r->ended_ms -
							r->started_ms) / 1000.0,
					       num));
}

static const char *parent_name(const struct runs_table *t, int64_t parent_id)
{
	for (size_t i = 0; parent_id && i < t->nrows; i++)
		if (t->rows[i].run.id == parent_id)
			return t->rows[i].run.name;
	return NULL;
}

static void runs_csv_header(struct strbuf *sb, const struct runs_table *t)
{
	strbuf_addstr(sb, "run_id,number,status,display_name,created,started,"
			  "ended,duration_s,compute_target,parent");
	for (size_t k = 0; k < t->ntag_keys; k++) {
		strbuf_addch(sb, ',');
		strbuf_addstr(sb, "tag.");	/* keys need no quoting: name rules */
		strbuf_addstr(sb, t->tag_keys[k]);
	}
	for (size_t k = 0; k < t->nmetric_names; k++) {
		strbuf_addstr(sb, ",metric.");
		strbuf_addstr(sb, t->metric_names[k]);
	}
	strbuf_addch(sb, '\n');
}

static void runs_csv_row(struct strbuf *sb, const struct runs_table *t,
			 const struct runs_table_row *row)
{
	const struct store_run *r = &row->run;

	csv_str(sb, r->name);
	strbuf_addf(sb, ",%lld,%s,", (long long)r->number,
		    run_status_name(r->status));
	csv_str(sb, r->display_name);
	strbuf_addch(sb, ',');
	csv_time(sb, r->created_ms);
	strbuf_addch(sb, ',');
	csv_time(sb, r->started_ms);
	strbuf_addch(sb, ',');
	csv_time(sb, r->ended_ms);
	strbuf_addch(sb, ',');
	csv_duration(sb, r);
	strbuf_addch(sb, ',');
	csv_str(sb, r->compute_target);
	strbuf_addch(sb, ',');
	csv_str(sb, parent_name(t, r->parent_id));
	for (size_t k = 0; k < t->ntag_keys; k++) {
		strbuf_addch(sb, ',');
		csv_str(sb, row->tag_values[k]);
	}
	for (size_t k = 0; k < t->nmetric_names; k++) {
		strbuf_addch(sb, ',');
		csv_str(sb, row->metric_last[k]);
	}
	strbuf_addch(sb, '\n');
}

static int runs_csv_render(struct fs_ctx *ctx, struct fs_node *node,
			   struct content *c)
{
	struct store_experiment e = { 0 };
	struct runs_table t = { 0 };
	struct sink s;
	int rc;

	rc = store_experiment_get_by_id(ctx->st, node->id.exp_id, &e);
	if (rc == STORE_OK)
		rc = store_runs_table(ctx->st, node->id.exp_id, &t);
	if (rc != STORE_OK) {
		store_experiment_release(&e);
		return -fs_errno(rc);
	}
	sink_begin(&s, ctx, c, 0);
	runs_csv_header(s.sb, &t);
	for (size_t i = 0; i < t.nrows && sink_spill(&s) == 0; i++)
		runs_csv_row(s.sb, &t, &t.rows[i]);
	c->mtime_ms = e.updated_ms > t.metrics_updated_ms ? e.updated_ms
							  : t.metrics_updated_ms;
	store_runs_table_release(&t);
	store_experiment_release(&e);
	return sink_end(&s);
}

static const struct fs_kind kind_runs_csv = {
	.name = "runs.csv",
	.mode = S_IFREG | 0444,
	.dep = DEP_EXPERIMENT,
	.render = runs_csv_render,
};

static const struct fs_entry experiment_entries[] = {
	{ "submit", &kind_submit, "write a run request (JSON); read the run id back on the same descriptor" },
	{ "runs.csv", &kind_runs_csv, "one row per run, newest first: fixed columns, tag.KEY, metric.NAME (last value)" },
	{ "runs", &kind_runs, "the experiment's runs" },
	{ NULL, NULL, NULL },
};

const struct fs_kind kind_experiment = {
	.name = "experiment",
	.mode = S_IFDIR | 0755,
	.dep = DEP_EXPERIMENT,
	.entries = experiment_entries,
	.render = experiment_render,
};
