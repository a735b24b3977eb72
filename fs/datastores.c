/*
 * datastores.c - datastores/: register, NAME/datastore.json and NAME/files/
 * (DESIGN.md "datastores"; the files/ trees are datastore_files.c for a
 * local directory and datastore_http.c for an HTTP server).
 *
 * A datastore's node keeps its id in id.exp_id (children inherit it), and
 * its name in id.key. The roots are kept per id for the whole mount
 * (struct ds_root): a local one's directory is opened once, O_PATH, and
 * every path below it is resolved from that descriptor, never outside it;
 * an HTTP one's source (its connections and secret headers) is made at
 * first use. A datastore removed and registered again under its name gets
 * a new id, so a root never changes meaning.
 *
 * Secrets: the request written to register may hold header values. Its
 * bytes are wiped when the handle goes, refusals never quote the request
 * (not even jansson's "near '...'"), and datastore.json lists header
 * names only.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_internal.h"
#include "mlfs/datastores.h"
#include "mlfs/jsonw.h"
#include "mlfs/parse.h"

/* ---- roots --------------------------------------------------------------- */

struct ds_roots {
	pthread_mutex_t lock;
	struct ds_root **v;
	size_t n, alloc;
};

int datastores_ctx_init(struct fs_ctx *ctx)
{
	ctx->ds_roots = calloc(1, sizeof(*ctx->ds_roots));
	if (!ctx->ds_roots)
		return -ENOMEM;
	pthread_mutex_init(&ctx->ds_roots->lock, NULL);
	return 0;
}

static void ds_root_free(struct ds_root *r)
{
	if (r->dirfd >= 0)
		close(r->dirfd);
	http_source_free(r->http);
	pthread_mutex_destroy(&r->lock);
	free(r->name);
	free(r->path);
	free(r->url);
	free(r);
}

void datastores_ctx_release(struct fs_ctx *ctx)
{
	struct ds_roots *rs = ctx->ds_roots;

	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++)
		ds_root_free(rs->v[i]);
	free(rs->v);
	pthread_mutex_destroy(&rs->lock);
	free(rs);
	ctx->ds_roots = NULL;
}

static struct ds_root *ds_root_find_locked(struct ds_roots *rs, int64_t id)
{
	for (size_t i = 0; i < rs->n; i++)
		if (rs->v[i]->id == id)
			return rs->v[i];
	return NULL;
}

static struct ds_root *ds_root_new(const struct store_datastore *d)
{
	struct ds_root *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->id = d->id;
	r->type = d->type;
	r->dirfd = -1;
	pthread_mutex_init(&r->lock, NULL);
	r->name = strdup(d->name);
	r->path = d->path ? strdup(d->path) : NULL;
	r->url = d->url ? strdup(d->url) : NULL;
	if (!r->name || (d->path && !r->path) || (d->url && !r->url)) {
		ds_root_free(r);
		return NULL;
	}
	return r;
}

/* Remembers the root of @d (a lookup found it). 0 or -ENOMEM. */
static int ds_root_note(struct fs_ctx *ctx, const struct store_datastore *d)
{
	struct ds_roots *rs = ctx->ds_roots;
	struct ds_root *r;
	int rc = 0;

	pthread_mutex_lock(&rs->lock);
	if (ds_root_find_locked(rs, d->id))
		goto out_unlock;
	if (rs->n == rs->alloc) {
		size_t alloc = rs->alloc ? rs->alloc * 2 : 8;
		struct ds_root **v = realloc(rs->v, alloc * sizeof(*v));

		if (!v) {
			rc = -ENOMEM;
			goto out_unlock;
		}
		rs->v = v;
		rs->alloc = alloc;
	}
	r = ds_root_new(d);
	if (!r)
		rc = -ENOMEM;
	else
		rs->v[rs->n++] = r;
out_unlock:
	pthread_mutex_unlock(&rs->lock);
	return rc;
}

struct ds_root *datastore_root(struct fs_ctx *ctx, int64_t id)
{
	struct ds_root *r;

	pthread_mutex_lock(&ctx->ds_roots->lock);
	r = ds_root_find_locked(ctx->ds_roots, id);
	pthread_mutex_unlock(&ctx->ds_roots->lock);
	return r;
}

int datastore_root_named(struct fs_ctx *ctx, const char *name, int64_t id,
			 struct ds_root **out)
{
	struct store_datastore d = { 0 };
	int rc;

	*out = datastore_root(ctx, id);
	if (*out)
		return 0;
	rc = store_datastore_get(ctx->st, name, &d);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	rc = d.id == id ? ds_root_note(ctx, &d) : -ENOENT;
	store_datastore_release(&d);
	if (rc == 0)
		*out = datastore_root(ctx, id);
	return *out ? 0 : (rc < 0 ? rc : -ENOENT);
}

int datastore_root_fd(struct ds_root *r, int *fd)
{
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	if (r->dirfd < 0 && r->path) {
		/* Opened by the daemon, O_PATH: it grants no access itself;
		 * every open below it is checked as the caller. */
		r->dirfd = open(r->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (r->dirfd < 0)
			rc = -errno;
	} else if (!r->path) {
		rc = -EIO;
	}
	*fd = r->dirfd;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

struct secret_list {
	char **lines;
	size_t n;
	int err;
};

static int secret_line(void *arg, const struct datastore_header *hd)
{
	struct secret_list *sl = arg;
	size_t len = strlen(hd->name) + strlen(hd->value) + 3;
	char *line = malloc(len);

	if (!line) {
		sl->err = -ENOMEM;
		return 1;
	}
	snprintf(line, len, "%s: %s", hd->name, hd->value);
	sl->lines[sl->n++] = line;
	return 0;
}

static void secret_list_wipe(struct secret_list *sl)
{
	for (size_t i = 0; i < sl->n; i++) {
		explicit_bzero(sl->lines[i], strlen(sl->lines[i]));
		free(sl->lines[i]);
	}
	free(sl->lines);
}

int datastore_http(struct fs_ctx *ctx, struct ds_root *r,
		   struct http_source **out)
{
	struct secret_list sl = { 0 };
	char err[256];
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	if (r->http || r->type != DATASTORE_HTTP)
		goto out_unlock;
	sl.lines = calloc(DATASTORE_HEADERS_MAX + 1, sizeof(*sl.lines));
	if (!sl.lines) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	rc = store_datastore_secrets(ctx->st, r->name, secret_line, &sl);
	rc = rc != STORE_OK ? -fs_errno(rc) : sl.err;
	if (rc == 0) {
		rc = http_source_new(r->url, (const char *const *)sl.lines,
				     &ctx->http_opt, &r->http, err, sizeof(err));
		rc = rc == STORE_OK ? 0 : -fs_errno(rc);
	}
	secret_list_wipe(&sl);
out_unlock:
	*out = r->http;
	pthread_mutex_unlock(&r->lock);
	if (rc == 0 && !*out)
		rc = -EIO;
	return rc;
}

/* ---- datastores/NAME ----------------------------------------------------- */

static int ds_get(struct fs_ctx *ctx, struct fs_node *node,
		  struct store_datastore *d)
{
	int rc = store_datastore_get(ctx->st, node->id.key, d);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	if (d->id != node->id.exp_id) {
		store_datastore_release(d);
		return -ENOENT;	/* removed, and made again since */
	}
	return 0;
}

static int ds_json_render(struct fs_ctx *ctx, struct fs_node *node,
			  struct content *c)
{
	struct store_datastore d = { 0 };
	struct jsonw w;
	struct sink s;
	int rc = ds_get(ctx, node, &d);

	if (rc < 0)
		return rc;
	sink_begin(&s, ctx, c, 0);
	jsonw_init(&w, s.sb, 1);
	jsonw_object_begin(&w);
	jsonw_key(&w, "name");
	jsonw_string(&w, d.name);
	jsonw_key(&w, "type");
	jsonw_string(&w, datastore_type_name(d.type));
	if (d.path) {
		jsonw_key(&w, "path");
		jsonw_string(&w, d.path);
	}
	if (d.url) {
		jsonw_key(&w, "url");
		jsonw_string(&w, d.url);
		/* The names only: the values are secrets. */
		jsonw_key(&w, "headers");
		jsonw_array_begin(&w);
		for (size_t i = 0; i < d.nheaders; i++)
			jsonw_string(&w, d.header_names[i]);
		jsonw_array_end(&w);
	}
	jsonw_key(&w, "created");
	jsonw_time(&w, d.created_ms);
	jsonw_object_end(&w);
	c->mtime_ms = d.created_ms;
	store_datastore_release(&d);
	return sink_end(&s);
}

static const struct fs_kind kind_ds_json = {
	.name = "datastore.json",
	.mode = S_IFREG | 0444,
	.dep = DEP_DATASTORES,
	.render = ds_json_render,
};

static int ds_dir_render(struct fs_ctx *ctx, struct fs_node *node,
			 struct content *c)
{
	struct store_datastore d = { 0 };
	int rc = ds_get(ctx, node, &d);

	if (rc < 0)
		return rc;
	c->mtime_ms = d.created_ms;
	store_datastore_release(&d);
	return 0;
}

static const struct fs_entry ds_local_entries[] = {
	{ "datastore.json", &kind_ds_json, "name, type, path or url, header names (never their values), created" },
	{ "files", &kind_ds_root, "the directory's contents, read-write, as the directory itself behaves" },
	{ NULL, NULL, NULL },
};

static const struct fs_entry ds_http_entries[] = {
	{ "datastore.json", &kind_ds_json, NULL },
	{ "files", &kind_ds_http_root, "read-only; any path can be looked up (HEAD); lists the paths datasets use" },
	{ NULL, NULL, NULL },
};

static const struct fs_kind kind_datastore_local = {
	.name = "datastore",
	.mode = S_IFDIR | 0555,
	.dep = DEP_DATASTORES,
	.entries = ds_local_entries,
	.render = ds_dir_render,
};

/* Only in the README through the local kind: the same NAME/ */
static const struct fs_kind kind_datastore_http = {
	.name = "HTTP datastore",
	.mode = S_IFDIR | 0555,
	.dep = DEP_DATASTORES,
	.entries = ds_http_entries,
	.render = ds_dir_render,
};

/* ---- datastores/ ------------------------------------------------------------ */

static void ds_ident(const struct store_datastore *d, struct fs_ident *out)
{
	out->kind = d->type == DATASTORE_HTTP ? &kind_datastore_http
					       : &kind_datastore_local;
	out->exp_id = d->id;
}

static int datastores_lookup(struct fs_ctx *ctx, struct fs_node *dir,
			     const char *name, struct fs_ident *out)
{
	struct store_datastore d = { 0 };
	int rc = store_datastore_get(ctx->st, name, &d);

	(void)dir;
	if (rc != STORE_OK)
		return -fs_errno(rc);
	rc = ds_root_note(ctx, &d);
	if (rc == 0) {
		ds_ident(&d, out);
		out->key = name;
	}
	store_datastore_release(&d);
	return rc;
}

struct ds_listing {
	struct fs_ctx *ctx;
	struct dirlist *dl;
	int err;
};

/* Listed entries become nodes without a lookup: note their roots too. */
static int ds_entry(void *arg, const struct store_datastore *d)
{
	struct ds_listing *l = arg;
	struct fs_ident id = { 0 };

	l->err = ds_root_note(l->ctx, d);
	if (l->err == 0) {
		ds_ident(d, &id);
		id.key = d->name;
		l->err = dirlist_add(l->dl, d->name, &id, d->created_ms);
	}
	return l->err < 0;
}

static int datastores_list(struct fs_ctx *ctx, struct fs_node *dir,
			   struct dirlist *dl)
{
	struct ds_listing l = { .ctx = ctx, .dl = dl };
	int rc = store_datastore_list(ctx->st, ds_entry, &l);

	(void)dir;
	if (l.err < 0)
		return l.err;
	return rc == STORE_OK ? 0 : -fs_errno(rc);
}

static int datastores_rmdir(struct fs_ctx *ctx, struct fs_node *dir,
			    const char *name)
{
	int rc = store_datastore_delete(ctx->st, name);

	if (rc == STORE_DENIED)
		return fs_refuse(ctx, "rmdir", dir, name, EPERM,
				 "the default datastore cannot be removed");
	if (rc == STORE_NOT_EMPTY)
		return fs_refuse(ctx, "rmdir", dir, name, ENOTEMPTY,
				 "dataset versions use datastore '%s'", name);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	version_bump(ctx, DEP_DATASTORES, 0);
	version_bump(ctx, DEP_EVENTS, 0);
	return 0;
}

static int datastores_render(struct fs_ctx *ctx, struct fs_node *node,
			     struct content *c)
{
	(void)node;
	c->mtime_ms = ctx->mount_ms;
	return 0;
}

/* ---- datastores/register ------------------------------------------------- */

struct ds_request {
	json_t *req;
	struct datastore_spec spec;
	struct datastore_header headers[DATASTORE_HEADERS_MAX];
	char path[PATH_MAX];
};

/* Header names are checked by the store; values are never quoted. */
static int want_headers(struct fs_handle *h, json_t *v, struct ds_request *r)
{
	const char *key;
	json_t *val;

	if (!json_is_object(v))
		return special_fail(h, EINVAL, "field 'headers': must be an "
				    "object of strings");
	if (json_object_size(v) > DATASTORE_HEADERS_MAX)
		return special_fail(h, EINVAL, "field 'headers': more than %d "
				    "headers", DATASTORE_HEADERS_MAX);
	json_object_foreach(v, key, val) {
		if (!json_is_string(val) ||
		    json_string_length(val) > DATASTORE_HEADER_VALUE_MAX ||
		    strlen(json_string_value(val)) != json_string_length(val))
			return special_fail(h, EINVAL, "field 'headers.%.128s': "
					    "the value must be a string of at "
					    "most %d bytes", key,
					    DATASTORE_HEADER_VALUE_MAX);
		r->headers[r->spec.nheaders].name = key;
		r->headers[r->spec.nheaders].value = json_string_value(val);
		r->spec.nheaders++;
	}
	r->spec.headers = r->headers;
	return 0;
}

static int ds_parse(struct fs_handle *h, struct ds_request *r,
		    const char *text, size_t len)
{
	const char *key;
	json_t *v;
	int rc = 0;

	rc = special_parse_object(h, text, len, &r->req);
	if (rc < 0)
		return rc;
	json_object_foreach(r->req, key, v) {
		if (strcmp(key, "name") == 0)
			rc = special_want_name(h, v, key);
		else if (strcmp(key, "type") == 0)
			rc = special_want_string(h, v, key, 16);
		else if (strcmp(key, "path") == 0 || strcmp(key, "url") == 0)
			rc = special_want_string(h, v, key, PATH_MAX - 1);
		else if (strcmp(key, "headers") == 0)
			rc = want_headers(h, v, r);
		else if (strcmp(key, "//") != 0)
			rc = special_fail(h, EINVAL, "field '%.256s': unknown "
					  "field", key);
		if (rc < 0)
			return rc;
	}
	r->spec.name = json_string_value(json_object_get(r->req, "name"));
	if (!r->spec.name)
		return special_fail(h, EINVAL, "field 'name': required");
	v = json_object_get(r->req, "type");
	r->spec.type = v ? datastore_type_parse(json_string_value(v)) : 0;
	if (!r->spec.type)
		return special_fail(h, EINVAL, "field 'type': required, "
				    "\"local\" or \"http\"");
	return 0;
}

/*
 * A local datastore's directory: absolute, or relative to the writer's
 * working directory; it must exist and the writer must be able to read it.
 */
static int ds_resolve_path(struct fs_handle *h, struct ds_request *r)
{
	const char *path = json_string_value(json_object_get(r->req, "path"));
	char cwd[PATH_MAX], joined[PATH_MAX * 2];
	struct stat st;

	if (json_object_get(r->req, "url") || json_object_get(r->req, "headers"))
		return special_fail(h, EINVAL, "fields 'url' and 'headers' are "
				    "for \"http\" datastores");
	if (!path || !*path)
		return special_fail(h, EINVAL, "field 'path': required for a "
				    "local datastore");
	if (path[0] != '/') {
		if (special_writer_cwd(h, cwd, sizeof(cwd)) < 0)
			return special_fail(h, ENOENT, "field 'path': '%s' is "
					    "relative and the writer's working "
					    "directory is unknown", path);
		snprintf(joined, sizeof(joined), "%s/%s", cwd, path);
		path = joined;
	}
	if (!realpath(path, r->path))
		return special_fail(h, errno == ENOENT ? ENOENT : EINVAL,
				    "field 'path': '%s': %s", path,
				    strerror(errno));
	if (stat(r->path, &st) < 0 || !S_ISDIR(st.st_mode))
		return special_fail(h, ENOTDIR, "field 'path': '%s' is not a "
				    "directory", r->path);
	if (!special_writer_may_read(h, &st))
		return special_fail(h, EACCES, "field 'path': '%s': you cannot "
				    "read it", r->path);
	r->spec.path = r->path;
	return 0;
}

static int ds_check_http(struct fs_handle *h, struct ds_request *r)
{
	if (json_object_get(r->req, "path"))
		return special_fail(h, EINVAL, "field 'path' is for \"local\" "
				    "datastores; an HTTP one has 'url'");
	r->spec.url = json_string_value(json_object_get(r->req, "url"));
	if (!r->spec.url)
		return special_fail(h, EINVAL, "field 'url': required for an "
				    "HTTP datastore");
	return 0;
}

/*
 * jansson frees strings without clearing them: wipe the header values of
 * the parsed request first (their buffers are jansson's own copies).
 */
static void wipe_header_values(json_t *req)
{
	json_t *headers = json_object_get(req, "headers"), *v;
	const char *key;

	if (!json_is_object(headers))
		return;
	json_object_foreach(headers, key, v)
		if (json_is_string(v))
			explicit_bzero((char *)json_string_value(v),
				       json_string_length(v));
}

/*
 * A local datastore must not show the workspace's own files (its
 * database, credentials, blobs): its directory may be neither the
 * workspace, above it, nor inside it, except below WORKSPACE/datastore.
 */
static int ds_check_not_workspace(struct fs_ctx *ctx, struct fs_handle *h,
				  const char *path)
{
	char ws[PATH_MAX], inside[PATH_MAX + 16];
	size_t plen = strlen(path), wlen;

	if (!realpath(store_dir(ctx->st), ws))
		return special_fail(h, EIO, "cannot resolve the workspace");
	wlen = strlen(ws);
	snprintf(inside, sizeof(inside), "%s/datastore", ws);
	if (strncmp(path, inside, strlen(inside)) == 0 &&
	    (path[strlen(inside)] == '/' || path[strlen(inside)] == '\0'))
		return 0;
	if ((strncmp(ws, path, plen) == 0 && (ws[plen] == '/' ||
	     ws[plen] == '\0' || plen == 1)) ||
	    (strncmp(path, ws, wlen) == 0 && path[wlen] == '/'))
		return special_fail(h, EINVAL, "field 'path': '%s' would show "
				    "the workspace's own files", path);
	return 0;
}

static int ds_register_act(struct fs_ctx *ctx, struct fs_handle *h,
			   const char *text, size_t len)
{
	struct ds_request r = { 0 };
	struct store_datastore d = { 0 };
	int rc;

	rc = ds_parse(h, &r, text, len);
	if (rc == 0)
		rc = r.spec.type == DATASTORE_LOCAL ? ds_resolve_path(h, &r)
						    : ds_check_http(h, &r);
	if (rc == 0 && r.spec.type == DATASTORE_LOCAL)
		rc = ds_check_not_workspace(ctx, h, r.spec.path);
	if (rc < 0)
		goto out;
	rc = store_datastore_register(ctx->st, &r.spec, &d);
	if (rc == STORE_EXISTS)
		rc = special_fail(h, EEXIST, "datastore '%s' exists",
				  r.spec.name);
	else if (rc == STORE_DENIED)
		rc = special_fail(h, EPERM, "the default datastore cannot be "
				  "replaced");
	else if (rc == STORE_INVALID)
		rc = special_fail(h, EINVAL, "invalid datastore: a URL must be "
				  "http:// or https:// without user:password@ "
				  "(put credentials in 'headers'), header names "
				  "HTTP tokens and values visible ASCII");
	else if (rc != STORE_OK)
		rc = special_fail(h, fs_errno(rc), "cannot register datastore "
				  "'%s'", r.spec.name);
	if (rc < 0)
		goto out;
	strbuf_addf(&h->reply, "%s\n", d.name);
	version_bump(ctx, DEP_DATASTORES, 0);
	version_bump(ctx, DEP_EVENTS, 0);
	store_datastore_release(&d);
out:
	wipe_header_values(r.req);
	json_decref(r.req);
	return rc;
}

/* The request may hold header values: leave none of it in freed memory. */
static void ds_register_release(struct fs_ctx *ctx, struct fs_handle *h)
{
	(void)ctx;
	if (h->buf.buf)
		explicit_bzero(h->buf.buf, h->buf.len);
}

static const struct fs_kind kind_ds_register = {
	.name = "register",
	.mode = S_IFREG | 0666,
	.dep = DEP_NONE,
	.render = special_render,
	.write = special_write,
	.flush = special_flush,
	.release = ds_register_release,
	.truncate = special_truncate,
	.act = ds_register_act,
	.request_json = 1,
	.request_secret = 1,
};

static const struct fs_entry datastores_entries[] = {
	{ "register", &kind_ds_register, "special: {\"name\", \"type\": \"local\", \"path\"} or {\"name\", \"type\": \"http\", \"url\", \"headers\"} -> a datastore" },
	{ NULL, NULL, NULL },
};

const struct fs_kind kind_datastores = {
	.name = "datastores",
	.mode = S_IFDIR | 0755,
	.dep = DEP_DATASTORES,
	.entries = datastores_entries,
	.lookup = datastores_lookup,
	.list = datastores_list,
	.rmdir = datastores_rmdir,
	.render = datastores_render,
	.dyn_name = "NAME",
	.dyn_kind = &kind_datastore_local,
	.dyn_help = "a datastore (\"default\", inside the workspace, always exists); rmdir forgets one no dataset uses",
};
