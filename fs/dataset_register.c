/*
 * dataset_register.c - datasets/register: a request becomes the next version
 * of a dataset (DESIGN.md "datasets").
 *
 * The pipeline of one request, inside the write() that completed it:
 *   validate strictly (unknown fields refused, naming them) -> find the
 *   datastore -> pin the files: a local datastore's patterns are expanded
 *   below its directory, skipping what the writer cannot read; an HTTP
 *   one's paths are each asked for with HEAD -> with "copy": true, put
 *   every file into the blobs -> store_dataset_register -> "NAME N".
 * Nothing is half-made: a refused request stores no version. Copies hold
 * the blob put lock and the mount's blob lock from the first put to the
 * commit, so neither the sweep at mount nor a model version's delete can
 * take a blob the new version is about to name.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs_internal.h"
#include "mlfs/blob.h"
#include "mlfs/datasets.h"
#include "mlfs/parse.h"

#define DATASET_PATTERNS_MAX 10000

struct dataset_request {
	json_t *req;
	const char **patterns;
	size_t npatterns;
	char *tags_json;
	struct store_datastore ds;
	struct dataset_files files;
};

static void request_release(struct dataset_request *r)
{
	free(r->patterns);
	free(r->tags_json);
	store_datastore_release(&r->ds);
	dataset_files_release(&r->files);
	json_decref(r->req);
}

static int want_paths(struct fs_handle *h, json_t *v,
		      struct dataset_request *r)
{
	size_t i;
	json_t *p;

	if (!json_is_array(v) || !json_array_size(v))
		return special_fail(h, EINVAL, "field 'paths': must be a "
				    "non-empty array of paths or globs");
	if (json_array_size(v) > DATASET_PATTERNS_MAX)
		return special_fail(h, EINVAL, "field 'paths': more than %d "
				    "entries", DATASET_PATTERNS_MAX);
	r->patterns = calloc(json_array_size(v), sizeof(*r->patterns));
	if (!r->patterns)
		return special_fail(h, ENOMEM, "out of memory");
	json_array_foreach(v, i, p) {
		char field[32];

		snprintf(field, sizeof(field), "paths.%zu", i);
		if (special_want_string(h, p, field, DATASET_PATH_MAX - 1) < 0)
			return -EINVAL;
		r->patterns[r->npatterns++] = json_string_value(p);
	}
	return 0;
}

static int want_tags(struct fs_handle *h, json_t *v,
		     struct dataset_request *r)
{
	const char *key;
	json_t *val;

	if (!json_is_object(v))
		return special_fail(h, EINVAL, "field 'tags': must be an object "
				    "of strings");
	json_object_foreach(v, key, val) {
		if (!name_is_valid(key, strlen(key)))
			return special_fail(h, EINVAL, "field 'tags': '%.128s' "
					    "is not a valid key", key);
		if (!json_is_string(val) ||
		    json_string_length(val) > STORE_VALUE_MAX)
			return special_fail(h, EINVAL, "field 'tags.%s': must "
					    "be a string of at most %d bytes",
					    key, STORE_VALUE_MAX);
	}
	r->tags_json = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	return r->tags_json ? 0 : special_fail(h, ENOMEM, "out of memory");
}

static int parse_request(struct fs_handle *h, struct dataset_request *r,
			 const char *text, size_t len)
{
	const char *key;
	json_t *v;
	int rc = 0;

	rc = special_parse_object(h, text, len, &r->req);
	if (rc < 0)
		return rc;
	json_object_foreach(r->req, key, v) {
		if (strcmp(key, "name") == 0 || strcmp(key, "datastore") == 0)
			rc = special_want_name(h, v, key);
		else if (strcmp(key, "description") == 0)
			rc = special_want_string(h, v, key, STORE_VALUE_MAX);
		else if (strcmp(key, "paths") == 0)
			rc = want_paths(h, v, r);
		else if (strcmp(key, "tags") == 0)
			rc = want_tags(h, v, r);
		else if (strcmp(key, "copy") == 0)
			rc = json_is_boolean(v) ? 0
			     : special_fail(h, EINVAL, "field 'copy': must be "
					    "true or false");
		else if (strcmp(key, "//") != 0)
			rc = special_fail(h, EINVAL, "field '%.256s': unknown "
					  "field", key);
		if (rc < 0)
			return rc;
	}
	if (!json_object_get(r->req, "name"))
		return special_fail(h, EINVAL, "field 'name': required");
	if (!json_object_get(r->req, "datastore"))
		return special_fail(h, EINVAL, "field 'datastore': required");
	if (!r->npatterns)
		return special_fail(h, EINVAL, "field 'paths': required");
	return 0;
}

/* A store code with its message as the refusal's errno. */
static int fail_store(struct fs_handle *h, int rc, const char *err)
{
	int e;

	switch (rc) {
	case STORE_NOT_FOUND: e = ENOENT; break;
	case STORE_INVALID: e = EINVAL; break;
	case STORE_TOO_BIG: e = EFBIG; break;
	case STORE_DENIED: e = EACCES; break;
	case STORE_NOMEM: e = ENOMEM; break;
	default: e = EIO; break;	/* changed while read, I/O */
	}
	return special_fail(h, e, "%s", err[0] ? err : store_strerror(rc));
}

static int may_read(void *arg, const struct stat *st)
{
	return special_writer_may_read(arg, st);
}

/* The HTTP source of the request's datastore (borrowed). */
static int request_http_source(struct fs_ctx *ctx, struct fs_handle *h,
			       struct dataset_request *r,
			       struct http_source **src)
{
	struct ds_root *root;
	int rc = datastore_root_named(ctx, r->ds.name, r->ds.id, &root);

	if (rc == 0)
		rc = datastore_http(ctx, root, src);
	if (rc < 0)
		return special_fail(h, -rc, "datastore '%s': cannot reach it",
				    r->ds.name);
	return 0;
}

static int pin_files(struct fs_ctx *ctx, struct fs_handle *h,
		     struct dataset_request *r)
{
	struct http_source *src;
	char err[1024] = "";
	int rc;

	if (r->ds.type == DATASTORE_LOCAL)
		rc = dataset_local_expand(r->ds.path, r->patterns, r->npatterns,
					  may_read, h, &r->files, err,
					  sizeof(err));
	else if ((rc = request_http_source(ctx, h, r, &src)) < 0)
		return rc;
	else
		rc = dataset_http_pin(src, r->patterns, r->npatterns,
				      &r->files, err, sizeof(err));
	return rc == STORE_OK ? 0 : fail_store(h, rc, err);
}

static int copy_files(struct fs_ctx *ctx, struct fs_handle *h,
		      struct dataset_request *r)
{
	struct http_source *src;
	char err[1024] = "";
	int rc;

	if (r->ds.type == DATASTORE_LOCAL)
		rc = dataset_local_copy(store_dir(ctx->st), r->ds.path,
					&r->files, err, sizeof(err));
	else if ((rc = request_http_source(ctx, h, r, &src)) < 0)
		return rc;
	else
		rc = dataset_http_copy(store_dir(ctx->st), src, &r->files, err,
				       sizeof(err));
	return rc == STORE_OK ? 0 : fail_store(h, rc, err);
}

static int store_version(struct fs_ctx *ctx, struct fs_handle *h,
			 struct dataset_request *r,
			 struct store_dataset_version *v)
{
	struct dataset_spec spec = {
		.name = json_string_value(json_object_get(r->req, "name")),
		.datastore = r->ds.name,
		.description = json_string_value(json_object_get(r->req,
							 "description")),
		.tags_json = r->tags_json,
		.copy = json_is_true(json_object_get(r->req, "copy")),
		.files = r->files.v,
		.nfiles = r->files.n,
	};
	int rc = store_dataset_register(ctx->st, &spec, v);

	if (rc == STORE_OK)
		return 0;
	return special_fail(h, fs_errno(rc), "cannot register dataset '%s': "
			    "%s", spec.name, store_strerror(rc));
}

/* With "copy": the puts and the commit under both blob locks. */
static int copy_and_store(struct fs_ctx *ctx, struct fs_handle *h,
			  struct dataset_request *r,
			  struct store_dataset_version *v)
{
	int puts_fd = -1;
	int rc;

	pthread_mutex_lock(&ctx->model_lock);
	rc = blob_puts_hold(store_dir(ctx->st), &puts_fd);
	if (rc != STORE_OK)
		rc = special_fail(h, EIO, "cannot lock the blob store");
	if (rc == 0)
		rc = copy_files(ctx, h, r);
	if (rc == 0)
		rc = store_version(ctx, h, r, v);
	blob_puts_release(puts_fd);
	pthread_mutex_unlock(&ctx->model_lock);
	return rc;
}

static int dataset_register_act(struct fs_ctx *ctx, struct fs_handle *h,
				const char *text, size_t len)
{
	struct dataset_request r = { 0 };
	struct store_dataset_version v = { 0 };
	const char *ds;
	int rc;

	rc = parse_request(h, &r, text, len);
	if (rc < 0)
		goto out;
	ds = json_string_value(json_object_get(r.req, "datastore"));
	rc = store_datastore_get(ctx->st, ds, &r.ds);
	if (rc != STORE_OK) {
		rc = special_fail(h, fs_errno(rc), "datastore '%s' %s", ds,
				  rc == STORE_NOT_FOUND ? "does not exist"
				  : store_strerror(rc));
		goto out;
	}
	rc = pin_files(ctx, h, &r);
	if (rc < 0)
		goto out;
	if (json_is_true(json_object_get(r.req, "copy")))
		rc = copy_and_store(ctx, h, &r, &v);
	else
		rc = store_version(ctx, h, &r, &v);
	if (rc < 0)
		goto out;
	strbuf_addf(&h->reply, "%s %lld\n", v.name, (long long)v.version);
	version_bump(ctx, DEP_DATASETS, 0);
	version_bump(ctx, DEP_DATASTORES, 0);
	version_bump(ctx, DEP_EVENTS, 0);
	store_dataset_version_release(&v);
out:
	request_release(&r);
	return rc;
}

const struct fs_kind kind_dataset_register = {
	.name = "register",
	.mode = S_IFREG | 0666,
	.dep = DEP_NONE,
	.render = special_render,
	.write = special_write,
	.flush = special_flush,
	.truncate = special_truncate,
	.act = dataset_register_act,
	.request_json = 1,
};
