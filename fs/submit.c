/*
 * submit.c - experiments/E/submit: a run request becomes a Queued run.
 *
 * The pipeline of one request, all inside the write() that completed it:
 *   validate (request.c) -> resolve source_directory against the writer's
 *   working directory -> check what it names exists (source, script,
 *   compute target, parent) -> snapshot the source (store/snapshot.c) ->
 *   read git information -> store_run_submit (run, tags and git
 *   properties in one transaction) -> start a supervisor.
 * Everything that can be refused is checked before the snapshot is made;
 * a snapshot made for a run that then could not be stored is removed
 * again, unless an earlier run shares it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_internal.h"
#include "mlfs/compute.h"
#include "mlfs/gitinfo.h"
#include "mlfs/request.h"
#include "mlfs/snapshot.h"

#define MAX_PROPERTIES 16

struct submission {
	json_t *req;			/* normalized request */
	char source[PATH_MAX];		/* absolute, resolved */
	struct snapshot_info snap;
	int snap_made;
	struct gitinfo git;
	struct store_kv props[MAX_PROPERTIES];
	char *prop_values[MAX_PROPERTIES];
	size_t nprops;
	struct store_kv *tags;
	size_t ntags;
	int64_t parent_id;
};

static void submission_release(struct submission *s)
{
	json_decref(s->req);
	gitinfo_release(&s->git);
	for (size_t i = 0; i < s->nprops; i++)
		free(s->prop_values[i]);
	free(s->tags);
}

/* ---- the source directory --------------------------------------------- */

static int resolve_source(struct fs_handle *h, struct submission *s)
{
	char cwd[PATH_MAX], joined[PATH_MAX];
	struct stat st;
	int rc = special_writer_cwd(h, cwd, sizeof(cwd));

	if (rc < 0)
		return special_fail(h, EIO, "field 'source_directory': cannot "
				    "find the writer's working directory: %s",
				    strerror(-rc));
	rc = run_request_source(s->req, cwd, joined, sizeof(joined));
	if (rc < 0)
		return special_fail(h, EINVAL, "field 'source_directory': "
				    "path too long");
	if (!realpath(joined, s->source) || stat(s->source, &st) < 0)
		return special_fail(h, errno == EACCES ? EACCES : ENOENT,
				    "field 'source_directory': cannot open '%s': %s",
				    joined, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return special_fail(h, ENOENT, "field 'source_directory': '%s' "
				    "is not a directory", s->source);
	if (!special_writer_may_read(h, &st))
		return special_fail(h, EACCES, "field 'source_directory': "
				    "cannot read '%s': permission denied",
				    s->source);
	json_object_set_new(s->req, "source_directory",
			    json_string(s->source));
	return 0;
}

static int check_script(struct fs_handle *h, struct submission *s)
{
	const char *script = json_string_value(json_object_get(s->req,
								"script"));
	char path[PATH_MAX];
	struct stat st;

	if (!script)
		return 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", s->source, script) >=
	    sizeof(path))
		return special_fail(h, EINVAL, "field 'script': path too long");
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return special_fail(h, ENOENT, "field 'script': '%s' is not a "
				    "file in source_directory '%s'", script,
				    s->source);
	return 0;
}

/* ---- what the request names in the store --------------------------------- */

static int check_compute(struct fs_ctx *ctx, struct fs_handle *h,
			 struct submission *s)
{
	const char *name = json_string_value(json_object_get(s->req,
							      "compute_target"));
	struct store_compute c;
	int rc = store_compute_get(ctx->st, name, &c);

	if (rc == STORE_NOT_FOUND)
		return special_fail(h, ENOENT, "field 'compute_target': no "
				    "compute target '%s' (see computes/)", name);
	if (rc != STORE_OK)
		return special_fail(h, fs_errno(rc), "cannot read compute target "
				    "'%s': %s", name, store_strerror(rc));
	store_compute_release(&c);
	return 0;
}

static int check_parent(struct fs_ctx *ctx, struct fs_handle *h,
			struct submission *s)
{
	const char *name = json_string_value(json_object_get(s->req, "parent"));
	struct store_run r;
	int rc;

	if (!name)
		return 0;
	rc = store_run_get_by_name(ctx->st, name, &r);
	if (rc == STORE_NOT_FOUND)
		return special_fail(h, ENOENT, "field 'parent': no run '%s'",
				    name);
	if (rc != STORE_OK)
		return special_fail(h, fs_errno(rc), "cannot read run '%s': %s",
				    name, store_strerror(rc));
	s->parent_id = r.id;
	rc = r.experiment_id == h->node->id.exp_id ? 0 : -EINVAL;
	store_run_release(&r);
	if (rc < 0)
		return special_fail(h, EINVAL, "field 'parent': run '%s' belongs "
				    "to another experiment", name);
	return 0;
}

static int collect_tags(struct fs_handle *h, struct submission *s)
{
	json_t *tags = json_object_get(s->req, "tags");
	const char *key;
	json_t *v;

	if (!json_object_size(tags))
		return 0;
	s->tags = calloc(json_object_size(tags), sizeof(*s->tags));
	if (!s->tags)
		return special_fail(h, ENOMEM, "out of memory");
	json_object_foreach(tags, key, v) {
		s->tags[s->ntags].key = key;
		s->tags[s->ntags].value = json_string_value(v);
		s->tags[s->ntags].len = json_string_length(v);
		s->ntags++;
	}
	return 0;
}

/* ---- snapshot and git ----------------------------------------------------- */

static int make_snapshot(struct fs_ctx *ctx, struct fs_handle *h,
			 struct submission *s)
{
	char err[512] = "";
	int rc = snapshot_build(store_dir(ctx->st), s->source, &ctx->snap_limits,
				&s->snap, err, sizeof(err));

	if (rc != STORE_OK)
		return special_fail(h, rc == STORE_DENIED ? EACCES : fs_errno(rc),
				    "field 'source_directory': %s",
				    err[0] ? err : store_strerror(rc));
	s->snap_made = !s->snap.reused;
	return 0;
}

static int add_git_property(void *arg, const char *key, const char *value)
{
	struct submission *s = arg;

	if (s->nprops == MAX_PROPERTIES)
		return 0;
	s->prop_values[s->nprops] = strdup(value);
	if (!s->prop_values[s->nprops])
		return -1;
	s->props[s->nprops].key = key;
	s->props[s->nprops].value = s->prop_values[s->nprops];
	s->props[s->nprops].len = strlen(value);
	s->nprops++;
	return 0;
}

/* Git information is a bonus: a repository it cannot read is no error. */
static void read_git(struct fs_ctx *ctx, struct fs_node *node,
		     struct submission *s)
{
	char err[512] = "";
	int rc = gitinfo_read(s->source, &s->git, err, sizeof(err));

	if (rc != STORE_OK) {
		fs_refuse(ctx, "git", node, NULL, EIO,
			  "no git information for '%s': %s", s->source, err);
		return;
	}
	if (s->git.found)
		gitinfo_each_property(&s->git, add_git_property, s);
}

/* A snapshot made for a run that was not stored goes again. */
static void drop_snapshot(struct fs_ctx *ctx, struct submission *s)
{
	char path[PATH_MAX];

	if (!s->snap_made)
		return;
	if (snapshot_zip_path(store_dir(ctx->st), s->snap.id, path,
			      sizeof(path)) == STORE_OK)
		unlink(path);
	if (snapshot_json_path(store_dir(ctx->st), s->snap.id, path,
			       sizeof(path)) == STORE_OK)
		unlink(path);
}

/* ---- storing the run ------------------------------------------------------ */

static int store_submission(struct fs_ctx *ctx, struct fs_handle *h,
			    struct submission *s, struct store_run *run)
{
	json_t *req = s->req;
	struct run_submission sub = {
		.display_name = json_string_value(json_object_get(req,
								  "display_name")),
		.compute_target = json_string_value(json_object_get(req,
								    "compute_target")),
		.parent_id = s->parent_id,
		.snapshot = s->snap.id,
		.max_duration_s = json_integer_value(json_object_get(req,
						"max_run_duration_seconds")),
		.tags = s->tags,
		.ntags = s->ntags,
		.properties = s->props,
		.nproperties = s->nprops,
	};
	char *config;
	int rc;

	json_object_set_new(req, "snapshot", json_string(s->snap.id));
	config = json_dumps(req, JSON_SORT_KEYS | JSON_INDENT(2));
	if (!config)
		return special_fail(h, ENOMEM, "out of memory");
	sub.config = config;
	rc = store_run_submit(ctx->st, h->node->id.exp_id, &sub, run);
	free(config);
	if (rc != STORE_OK)
		return special_fail(h, fs_errno(rc), "cannot create the run: %s",
				    store_strerror(rc));
	return 0;
}

static void start_supervisor(struct fs_ctx *ctx, struct fs_node *node)
{
	char err[512];

	if (compute_local_spawn(ctx->compute, 1, err, sizeof(err)) < 0)
		fs_refuse(ctx, "submit", node, NULL, EIO,
			  "the run stays Queued until the next mount: %s", err);
}

static int submit_act(struct fs_ctx *ctx, struct fs_handle *h,
		      const char *text, size_t len)
{
	struct submission s = { 0 };
	struct store_run run = { 0 };
	char err[512];
	int rc;

	rc = run_request_parse(text, len, &s.req, err, sizeof(err));
	if (rc < 0)
		return special_fail(h, -rc, "%s", err);
	rc = resolve_source(h, &s);
	if (rc == 0)
		rc = check_script(h, &s);
	if (rc == 0)
		rc = check_compute(ctx, h, &s);
	if (rc == 0)
		rc = check_parent(ctx, h, &s);
	if (rc == 0)
		rc = collect_tags(h, &s);
	if (rc == 0)
		rc = make_snapshot(ctx, h, &s);
	if (rc < 0)
		goto out;
	read_git(ctx, h->node, &s);
	rc = store_submission(ctx, h, &s, &run);
	if (rc < 0) {
		drop_snapshot(ctx, &s);
		goto out;
	}
	strbuf_addf(&h->reply, "%s\n", run.name);
	version_bump(ctx, DEP_EXPERIMENT, run.experiment_id);
	version_bump(ctx, DEP_RUN, run.id);
	if (run.parent_id)
		version_bump(ctx, DEP_RUN, run.parent_id);
	version_bump(ctx, DEP_COMPUTES, 0);
	version_bump(ctx, DEP_EVENTS, 0);
	start_supervisor(ctx, h->node);
	store_run_release(&run);
out:
	submission_release(&s);
	return rc;
}

const struct fs_kind kind_submit = {
	.name = "submit",
	.mode = S_IFREG | 0666,
	.dep = DEP_NONE,
	.render = special_render,
	.write = special_write,
	.flush = special_flush,
	.truncate = special_truncate,
	.act = submit_act,
	.request_json = 1,
};
