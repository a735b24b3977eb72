/*
 * model_register.c - models/register: a registration request becomes the
 * next version of a model (DESIGN.md "Model registration").
 *
 * The pipeline of one request, all inside the write() that completed it:
 *   validate the request strictly (unknown fields are refused, naming
 *   them) -> resolve the path (absolute or relative to the writer's
 *   working directory; or, with "run", below WORKSPACE/runs/ID/outputs)
 *   -> collect the files (a file is one file named by its base name; a
 *   directory gives every regular file below it, symlinks not followed,
 *   paths relative to it) -> under ctx->model_lock: blob_put_path each
 *   file, store_model_register -> reply "NAME N".
 * Nothing is half-made: a refused request stores no version; blobs put
 * for it stay only if a version already shares them, else they are
 * removed before the lock is let go (models.h, invariant 4).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_internal.h"
#include "mlfs/blob.h"
#include "mlfs/models.h"
#include "mlfs/parse.h"

#define REGISTER_FILES_MAX 100000	/* files in one version */

struct reg_file {
	char *rel;		/* path inside the version */
	char *abs;		/* where it is read from */
	unsigned int mode;
	struct blob_ref blob;
};

struct registration {
	json_t *req;
	char root[PATH_MAX];	/* the file or directory registered */
	int64_t run_id;
	struct reg_file *files;
	size_t nfiles, alloc;
	struct store_kv *tags, *props;
	size_t ntags, nprops;
};

static void registration_release(struct registration *r)
{
	for (size_t i = 0; i < r->nfiles; i++) {
		free(r->files[i].rel);
		free(r->files[i].abs);
	}
	free(r->files);
	free(r->tags);
	free(r->props);
	json_decref(r->req);
}

/* ---- the request ---------------------------------------------------------- */

static int want_kv(struct fs_handle *h, json_t *obj, const char *field,
		   struct store_kv **out, size_t *n)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return special_fail(h, EINVAL, "field '%s': must be an object of "
				    "strings", field);
	if (!json_object_size(obj))
		return 0;
	*out = calloc(json_object_size(obj), sizeof(**out));
	if (!*out)
		return special_fail(h, ENOMEM, "out of memory");
	json_object_foreach(obj, key, v) {
		if (!name_is_valid(key, strlen(key)))
			return special_fail(h, EINVAL, "field '%s.%.256s': "
					    "invalid key", field, key);
		if (!json_is_string(v))
			return special_fail(h, EINVAL, "field '%s.%.256s': must "
					    "be a string", field, key);
		if (json_string_length(v) > STORE_VALUE_MAX)
			return special_fail(h, EFBIG, "field '%s.%.256s': longer "
					    "than %d bytes", field, key,
					    STORE_VALUE_MAX);
		(*out)[*n].key = key;
		(*out)[*n].value = json_string_value(v);
		(*out)[*n].len = json_string_length(v);
		(*n)++;
	}
	return 0;
}

static int parse_request(struct fs_handle *h, struct registration *r,
			 const char *text, size_t len)
{
	const char *key;
	json_t *v;
	int rc = 0;

	rc = special_parse_object(h, text, len, &r->req);
	if (rc < 0)
		return rc;
	json_object_foreach(r->req, key, v) {
		if (strcmp(key, "name") == 0 || strcmp(key, "framework") == 0)
			rc = special_want_name(h, v, key);
		else if (strcmp(key, "path") == 0)
			rc = special_want_string(h, v, key, PATH_MAX - 1);
		else if (strcmp(key, "run") == 0)
			rc = special_want_name(h, v, key);
		else if (strcmp(key, "description") == 0)
			rc = special_want_string(h, v, key, STORE_VALUE_MAX);
		else if (strcmp(key, "tags") == 0)
			rc = want_kv(h, v, key, &r->tags, &r->ntags);
		else if (strcmp(key, "properties") == 0)
			rc = want_kv(h, v, key, &r->props, &r->nprops);
		else if (strcmp(key, "//") != 0)
			rc = special_fail(h, EINVAL, "field '%.256s': unknown "
					  "field", key);
		if (rc < 0)
			return rc;
	}
	if (!json_object_get(r->req, "name"))
		return special_fail(h, EINVAL, "field 'name': required");
	v = json_object_get(r->req, "path");
	if (!v)
		return special_fail(h, EINVAL, "field 'path': required");
	if (!json_string_length(v))
		return special_fail(h, EINVAL, "field 'path': must not be "
				    "empty");
	return 0;
}

/* ---- where the files are ------------------------------------------------- */

/* A path below a run's outputs: relative, no "." or ".." components. */
static int inner_path_ok(const char *p)
{
	const char *c = p;

	if (*p == '/')
		return 0;
	while (*c) {
		size_t n = strcspn(c, "/");

		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' &&
						 c[1] == '.'))
			return 0;
		c += n;
		while (*c == '/')
			c++;
	}
	return 1;
}

static int resolve_run_path(struct fs_ctx *ctx, struct fs_handle *h,
			    struct registration *r, const char *run,
			    const char *path)
{
	struct store_run sr;
	int rc = store_run_get_by_name(ctx->st, run, &sr);

	if (rc == STORE_NOT_FOUND)
		return special_fail(h, ENOENT, "field 'run': no run '%s'", run);
	if (rc != STORE_OK)
		return special_fail(h, fs_errno(rc), "cannot read run '%s': %s",
				    run, store_strerror(rc));
	r->run_id = sr.id;
	store_run_release(&sr);
	if (!inner_path_ok(path))
		return special_fail(h, EINVAL, "field 'path': '%s' must be a "
				    "relative path under the run's outputs, "
				    "without '.' or '..'", path);
	if (strcmp(path, "outputs") == 0)
		path = "";
	else if (strncmp(path, "outputs/", 8) == 0)
		path += 8;
	if ((size_t)snprintf(r->root, sizeof(r->root), "%s/runs/%s/outputs%s%s",
			     store_dir(ctx->st), run, *path ? "/" : "", path) >=
	    sizeof(r->root))
		return special_fail(h, EINVAL, "field 'path': too long");
	return 0;
}

static int resolve_local_path(struct fs_handle *h, struct registration *r,
			      const char *path)
{
	char cwd[PATH_MAX];
	int rc;

	if (path[0] == '/') {
		if ((size_t)snprintf(r->root, sizeof(r->root), "%s", path) >=
		    sizeof(r->root))
			return special_fail(h, EINVAL, "field 'path': too long");
		return 0;
	}
	rc = special_writer_cwd(h, cwd, sizeof(cwd));
	if (rc < 0)
		return special_fail(h, EIO, "field 'path': cannot find the "
				    "writer's working directory: %s",
				    strerror(-rc));
	if ((size_t)snprintf(r->root, sizeof(r->root), "%s/%s", cwd, path) >=
	    sizeof(r->root))
		return special_fail(h, EINVAL, "field 'path': too long");
	return 0;
}

static int add_file(struct fs_handle *h, struct registration *r,
		    const char *rel, const char *abs, const struct stat *st)
{
	struct reg_file *f;

	if (r->nfiles == REGISTER_FILES_MAX)
		return special_fail(h, EFBIG, "field 'path': more than %d "
				    "files", REGISTER_FILES_MAX);
	if (strlen(rel) > MODEL_FILE_PATH_MAX)
		return special_fail(h, EINVAL, "field 'path': file path '%s' "
				    "is too long", rel);
	if (r->nfiles == r->alloc) {
		size_t alloc = r->alloc ? r->alloc * 2 : 16;
		struct reg_file *v = realloc(r->files, alloc * sizeof(*v));

		if (!v)
			return special_fail(h, ENOMEM, "out of memory");
		r->files = v;
		r->alloc = alloc;
	}
	f = &r->files[r->nfiles];
	memset(f, 0, sizeof(*f));
	f->rel = strdup(rel);
	f->abs = strdup(abs);
	f->mode = st->st_mode & 07777;
	r->nfiles++;
	if (!f->rel || !f->abs)
		return special_fail(h, ENOMEM, "out of memory");
	return 0;
}

/* Every regular file below @abs (a directory), symlinks not followed. */
static int walk(struct fs_handle *h, struct registration *r, const char *abs,
		const char *rel, int depth)
{
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (depth > 64)
		return special_fail(h, EINVAL, "field 'path': directories nest "
				    "deeper than 64 levels");
	d = opendir(abs);
	if (!d)
		return special_fail(h, errno == EACCES ? EACCES : EIO,
				    "field 'path': cannot read directory '%s': "
				    "%s", abs, strerror(errno));
	while (rc == 0 && (de = readdir(d))) {
		char cabs[PATH_MAX], crel[PATH_MAX];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(cabs, sizeof(cabs), "%s/%s", abs,
				     de->d_name) >= sizeof(cabs) ||
		    (size_t)snprintf(crel, sizeof(crel), "%s%s%s", rel,
				     *rel ? "/" : "", de->d_name) >=
		    sizeof(crel)) {
			rc = special_fail(h, EINVAL, "field 'path': path too "
					  "long below '%s'", abs);
			break;
		}
		if (lstat(cabs, &st) < 0)
			continue;	/* gone meanwhile */
		if (!special_writer_may_read(h, &st))
			rc = special_fail(h, EACCES, "field 'path': cannot read "
					  "'%s': permission denied", cabs);
		else if (S_ISDIR(st.st_mode))
			rc = walk(h, r, cabs, crel, depth + 1);
		else if (S_ISREG(st.st_mode))
			rc = add_file(h, r, crel, cabs, &st);
	}
	closedir(d);
	return rc;
}

static int collect_files(struct fs_handle *h, struct registration *r)
{
	struct stat st;
	const char *base;

	if (stat(r->root, &st) < 0)
		return special_fail(h, errno == EACCES ? EACCES : ENOENT,
				    "field 'path': cannot open '%s': %s",
				    r->root, strerror(errno));
	if (!special_writer_may_read(h, &st))
		return special_fail(h, EACCES, "field 'path': cannot read '%s': "
				    "permission denied", r->root);
	if (S_ISDIR(st.st_mode)) {
		int rc = walk(h, r, r->root, "", 0);

		if (rc == 0 && !r->nfiles)
			rc = special_fail(h, EINVAL, "field 'path': directory "
					  "'%s' holds no regular file", r->root);
		return rc;
	}
	if (!S_ISREG(st.st_mode))
		return special_fail(h, EINVAL, "field 'path': '%s' is not a "
				    "regular file or directory", r->root);
	base = strrchr(r->root, '/');
	base = base ? base + 1 : r->root;
	return add_file(h, r, base, r->root, &st);
}

/* ---- storing ------------------------------------------------------------------ */

static int cmp_rel(const void *a, const void *b)
{
	return strcmp(((const struct reg_file *)a)->rel,
		      ((const struct reg_file *)b)->rel);
}

/*
 * Puts the blobs and registers the version; the caller holds
 * ctx->model_lock. On failure, blobs this call made are removed again.
 */
static int store_version(struct fs_ctx *ctx, struct fs_handle *h,
			 struct registration *r,
			 struct store_model_version *out)
{
	const char *ws = store_dir(ctx->st);
	struct store_model_file *mf;
	struct model_version_spec spec = {
		.description = json_string_value(json_object_get(r->req,
								 "description")),
		.framework = json_string_value(json_object_get(r->req,
							       "framework")),
		.run_id = r->run_id,
		.tags = r->tags,
		.ntags = r->ntags,
		.properties = r->props,
		.nproperties = r->nprops,
	};
	const char **made;	/* hexes of the blobs this request made */
	size_t put = 0, nmade = 0;
	char err[512];
	int hold = -1, rc = 0;

	mf = calloc(r->nfiles, sizeof(*mf));
	made = calloc(r->nfiles, sizeof(*made));
	if (!mf || !made) {
		free(mf);
		free(made);
		return special_fail(h, ENOMEM, "out of memory");
	}
	/* until the version refers to them, the blobs are not orphans */
	if (blob_puts_hold(ws, &hold) != STORE_OK) {
		rc = special_fail(h, EIO, "cannot lock '%s/blobs/.puts'", ws);
		goto out_free;
	}
	for (; put < r->nfiles; put++) {
		struct reg_file *f = &r->files[put];
		int brc = blob_put_path(ws, f->abs, &f->blob, err, sizeof(err));

		if (brc != STORE_OK) {
			rc = special_fail(h, brc == STORE_DENIED ? EACCES
						: fs_errno(brc),
					  "field 'path': %s",
					  err[0] ? err : store_strerror(brc));
			goto out_unput;
		}
		mf[put].path = f->rel;
		mf[put].blob = f->blob.hex;
		mf[put].size = (int64_t)f->blob.size;
		mf[put].mode = f->mode;
	}
	spec.files = mf;
	spec.nfiles = r->nfiles;
	rc = store_model_register(ctx->st, json_string_value(
					  json_object_get(r->req, "name")),
				  &spec, out);
	if (rc == STORE_OK)
		goto out_free;
	rc = special_fail(h, fs_errno(rc), "cannot register model '%s': %s",
			  json_string_value(json_object_get(r->req, "name")),
			  store_strerror(rc));
out_unput:
	/* The blobs this request made go, unless another put committed one. */
	for (size_t i = 0; i < put; i++)
		if (!r->files[i].blob.existed)
			made[nmade++] = r->files[i].blob.hex;
	models_unput(ctx, &hold, made, nmade);
out_free:
	blob_puts_release(hold);
	free(made);
	free(mf);
	return rc;
}

static int register_act(struct fs_ctx *ctx, struct fs_handle *h,
			const char *text, size_t len)
{
	struct registration r = { 0 };
	struct store_model_version v = { 0 };
	const char *run, *path;
	int rc;

	rc = parse_request(h, &r, text, len);
	if (rc < 0)
		goto out;
	run = json_string_value(json_object_get(r.req, "run"));
	path = json_string_value(json_object_get(r.req, "path"));
	rc = run ? resolve_run_path(ctx, h, &r, run, path)
		 : resolve_local_path(h, &r, path);
	if (rc == 0)
		rc = collect_files(h, &r);
	if (rc < 0)
		goto out;
	qsort(r.files, r.nfiles, sizeof(*r.files), cmp_rel);
	pthread_mutex_lock(&ctx->model_lock);
	rc = store_version(ctx, h, &r, &v);
	pthread_mutex_unlock(&ctx->model_lock);
	if (rc < 0)
		goto out;
	strbuf_addf(&h->reply, "%s %lld\n", v.model, (long long)v.version);
	version_bump(ctx, DEP_MODELS, 0);
	version_bump(ctx, DEP_MODEL, v.model_id);
	version_bump(ctx, DEP_EVENTS, 0);
	if (v.run_id)
		version_bump(ctx, DEP_RUN, v.run_id);
	store_model_version_release(&v);
out:
	registration_release(&r);
	return rc;
}

const struct fs_kind kind_model_register = {
	.name = "register",
	.mode = S_IFREG | 0666,
	.dep = DEP_NONE,
	.render = special_render,
	.write = special_write,
	.flush = special_flush,
	.truncate = special_truncate,
	.act = register_act,
	.request_json = 1,
};
