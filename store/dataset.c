/*
 * dataset.c - dataset versions in the database (contract: mlfs/datasets.h;
 * finding and copying their files: dataset_local.c, dataset_http.c).
 *
 * Design notes
 *  1. Numbers come from dataset.next_version, bumped in the registering
 *     transaction. Neither datasets nor versions are ever removed, so the
 *     counter only grows and no number comes back (invariant 1). A
 *     future delete must keep the dataset row, as model_seq does for
 *     models.
 *  2. store_dataset_register checks everything that needs no database
 *     first (spec_check(): names, paths, duplicates, a path that is both
 *     a file and a directory, tags), then runs one BEGIN IMMEDIATE
 *     transaction: find the datastore, ensure the dataset, take a
 *     number, insert the version and its files, change row, events line,
 *     read the version back. Writers in every process are serialized by
 *     the write lock, so concurrent registrations get consecutive
 *     numbers and a refused one leaves nothing.
 *  3. File rows are keyed (version_id, path) WITHOUT ROWID and paths
 *     compare bytewise (BINARY), so the files under a prefix P are the
 *     key range [P, prefix_upper(P)), read in path order.
 *  4. A copied file names a blob; model.c's blob queries see dataset
 *     files too (store_blob_each(), a model version's orphans), so
 *     neither the mount's sweep nor a model version delete removes a
 *     blob a dataset still needs.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlfs/datasets.h"
#include "mlfs/parse.h"
#include "mlfs/strbuf.h"
#include "mlfs/timefmt.h"
#include "dataset_internal.h"
#include "store_internal.h"

/* ---- life cycle ------------------------------------------------------------ */

void dataset_file_release(struct dataset_file *f)
{
	free(f->path);
	free(f->etag);
	memset(f, 0, sizeof(*f));
}

void dataset_files_release(struct dataset_files *fl)
{
	for (size_t i = 0; i < fl->n; i++)
		dataset_file_release(&fl->v[i]);
	free(fl->v);
	memset(fl, 0, sizeof(*fl));
}

void store_dataset_version_release(struct store_dataset_version *v)
{
	free(v->name);
	free(v->datastore);
	free(v->description);
	free(v->tags_json);
	memset(v, 0, sizeof(*v));
}

struct dataset_file *dataset_files_push(struct dataset_files *fl)
{
	struct dataset_file *f;

	if (fl->n == fl->alloc) {
		size_t alloc = fl->alloc ? 2 * fl->alloc : 16;
		struct dataset_file *v = realloc(fl->v, alloc * sizeof(*v));

		if (!v)
			return NULL;
		fl->v = v;
		fl->alloc = alloc;
	}
	f = &fl->v[fl->n++];
	memset(f, 0, sizeof(*f));
	f->mtime_ns = -1;
	f->http_mtime_ms = -1;
	return f;
}

void dataset_files_truncate(struct dataset_files *fl, size_t from)
{
	while (fl->n > from)
		dataset_file_release(&fl->v[--fl->n]);
	if (from == 0)
		dataset_files_release(fl);	/* as it was before any push */
}

/* strcmp() compares as unsigned char: bytewise, as SQLite's BINARY. */
int dataset_path_cmp(const char *a, const char *b)
{
	return strcmp(a, b);
}

static int file_cmp(const void *a, const void *b)
{
	const struct dataset_file *x = a, *y = b;

	return dataset_path_cmp(x->path, y->path);
}

void dataset_files_sort_unique(struct dataset_files *fl, size_t from)
{
	size_t out = from;

	if (fl->n - from < 2)
		return;
	qsort(fl->v + from, fl->n - from, sizeof(fl->v[0]), file_cmp);
	for (size_t i = from; i < fl->n; i++) {
		if (out > from &&
		    dataset_path_cmp(fl->v[out - 1].path, fl->v[i].path) == 0) {
			dataset_file_release(&fl->v[i]);
			continue;
		}
		fl->v[out++] = fl->v[i];
	}
	fl->n = out;
}

/* ---- validation ------------------------------------------------------------ */

int dataset_path_is_valid(const char *path)
{
	size_t len = path ? strlen(path) : 0;
	const char *p = path;

	if (len == 0 || len > DATASET_PATH_MAX)
		return 0;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!slash)
			return 1;
		p = slash + 1;	/* a trailing '/' gives an empty segment */
	}
}

static int hex_is_valid(const char *hex)
{
	size_t i;

	for (i = 0; i < BLOB_HEX_LEN; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') ||
		      (hex[i] >= 'a' && hex[i] <= 'f')))
			return 0;
	return hex[i] == '\0';
}

/*
 * @tags_json (NULL: none) as a compact JSON object with sorted keys into
 * *out (caller frees): STORE_INVALID unless it is an object of strings.
 */
static int tags_normalize(const char *tags_json, char **out)
{
	json_t *o, *v;
	const char *key;
	int rc = STORE_OK;

	if (!tags_json) {
		*out = strdup("{}");
		return *out ? STORE_OK : STORE_NOMEM;
	}
	if (strlen(tags_json) > STORE_VALUE_MAX)
		return STORE_TOO_BIG;
	o = json_loads(tags_json, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return STORE_INVALID;
	}
	json_object_foreach(o, key, v)
		if (!json_is_string(v))
			rc = STORE_INVALID;
	if (rc == STORE_OK) {
		*out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		rc = *out ? STORE_OK : STORE_NOMEM;
	}
	json_decref(o);
	return rc;
}

static int ptr_cmp(const void *a, const void *b)
{
	const struct dataset_file *const *x = a, *const *y = b;

	return dataset_path_cmp((*x)->path, (*y)->path);
}

/*
 * Duplicates and a path that is also a directory of another: each
 * directory prefix of each path is looked up among the sorted paths.
 */
static int paths_check(const struct dataset_file **sorted, size_t n)
{
	char prefix[DATASET_PATH_MAX + 1];
	struct dataset_file key = { .path = prefix };
	const struct dataset_file *keyp = &key;

	for (size_t i = 0; i < n; i++) {
		const char *path = sorted[i]->path;

		if (i > 0 && dataset_path_cmp(sorted[i - 1]->path, path) == 0)
			return STORE_INVALID;
		for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
			memcpy(prefix, path, (size_t)(s - path));
			prefix[s - path] = '\0';
			if (bsearch(&keyp, sorted, n, sizeof(*sorted), ptr_cmp))
				return STORE_INVALID;
		}
	}
	return STORE_OK;
}

/*
 * Everything checkable without the database, before the transaction;
 * *sorted (caller frees) gets the files in path order, *total their bytes.
 */
static int spec_check(const struct dataset_spec *sp,
		      const struct dataset_file ***sorted, uint64_t *total)
{
	const struct dataset_file **v;
	int rc;

	if (!sp->name || !name_is_valid(sp->name, strlen(sp->name)) ||
	    !sp->datastore)
		return STORE_INVALID;
	if (sp->description) {
		size_t n = strlen(sp->description);

		if (n > STORE_VALUE_MAX)
			return STORE_TOO_BIG;
		if (!text_is_valid(sp->description, n))
			return STORE_INVALID;
	}
	if (sp->nfiles > DATASET_FILES_MAX)
		return STORE_TOO_BIG;
	if (sp->nfiles == 0 || !sp->files)
		return STORE_INVALID;
	*total = 0;
	for (size_t i = 0; i < sp->nfiles; i++) {
		const struct dataset_file *f = &sp->files[i];

		if (!dataset_path_is_valid(f->path) || f->size > INT64_MAX ||
		    (f->etag && strlen(f->etag) >= HTTP_ETAG_MAX) ||
		    (sp->copy ? !hex_is_valid(f->blob) : f->blob[0] != '\0'))
			return STORE_INVALID;
		if (f->size > UINT64_MAX - *total)
			return STORE_TOO_BIG;
		*total += f->size;
	}
	if (*total > INT64_MAX)
		return STORE_TOO_BIG;
	v = malloc(sp->nfiles * sizeof(*v));
	if (!v)
		return STORE_NOMEM;
	for (size_t i = 0; i < sp->nfiles; i++)
		v[i] = &sp->files[i];
	qsort(v, sp->nfiles, sizeof(*v), ptr_cmp);
	rc = paths_check(v, sp->nfiles);
	if (rc != STORE_OK) {
		free(v);
		return rc;
	}
	*sorted = v;
	return STORE_OK;
}

/* The pins fit the datastore's type: an ETag (maybe "") only for HTTP. */
static int pins_fit(const struct dataset_spec *sp, int type)
{
	for (size_t i = 0; i < sp->nfiles; i++) {
		const struct dataset_file *f = &sp->files[i];

		if (type == DATASTORE_LOCAL ? f->etag != NULL
					    : !f->etag || f->mtime_ns != -1)
			return 0;
	}
	return 1;
}

/* ---- rows ------------------------------------------------------------------ */

/* DATASET_VERSION_COLUMNS (statements.c) into @out. */
static int version_from_row(sqlite3_stmt *s, struct store_dataset_version *out)
{
	struct store_dataset_version v = {
		.id = sqlite3_column_int64(s, 0),
		.name = col_strdup(s, 1),
		.version = sqlite3_column_int64(s, 2),
		.datastore_id = sqlite3_column_int64(s, 3),
		.datastore = col_strdup(s, 4),
		.description = col_strdup(s, 5),
		.tags_json = col_strdup(s, 6),
		.copy = sqlite3_column_int(s, 7),
		.created_ms = sqlite3_column_int64(s, 8),
		.file_count = sqlite3_column_int64(s, 9),
		.total_bytes = (uint64_t)sqlite3_column_int64(s, 10),
	};

	if (!v.name || !v.datastore || !v.description || !v.tags_json) {
		store_dataset_version_release(&v);
		return STORE_NOMEM;
	}
	*out = v;
	return STORE_OK;
}

/* Steps @s (bound) for one version row: STORE_NOT_FOUND when none. */
static int version_step(struct conn *c, sqlite3_stmt *s,
			struct store_dataset_version *out)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		rc = version_from_row(s, out);
	else
		rc = rc == SQLITE_DONE ? STORE_NOT_FOUND
				       : store_rc_from_sqlite(c, rc, "get dataset version");
	sqlite3_reset(s);
	return rc;
}

static int version_get_by_id_locked(struct conn *c, int64_t id,
				    struct store_dataset_version *out)
{
	sqlite3_stmt *s = stmt_get(c, SQL_DATASET_VERSION_GET_BY_ID);

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, id);
	return version_step(c, s, out);
}

/* DATASET_FILE_COLUMNS into @out. */
static int file_from_row(sqlite3_stmt *s, struct dataset_file *out)
{
	const unsigned char *blob = sqlite3_column_text(s, 5);
	struct dataset_file f = {
		.path = col_strdup(s, 0),
		.size = (uint64_t)sqlite3_column_int64(s, 1),
		.mtime_ns = sqlite3_column_int64(s, 2),
		.etag = col_strdup(s, 3),
		.http_mtime_ms = sqlite3_column_int64(s, 4),
	};

	if (blob && strlen((const char *)blob) == BLOB_HEX_LEN)
		memcpy(f.blob, blob, BLOB_HEX_LEN + 1);
	if (!f.path || (!f.etag && sqlite3_column_type(s, 3) != SQLITE_NULL)) {
		dataset_file_release(&f);
		return STORE_NOMEM;
	}
	*out = f;
	return STORE_OK;
}

/* ---- registering ----------------------------------------------------------- */

static int datastore_locked(struct conn *c, const char *name, int64_t *id,
			    int *type)
{
	sqlite3_stmt *s = stmt_get(c, SQL_DATASTORE_GET);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(s, 0);
		*type = sqlite3_column_int(s, 2);
		rc = STORE_OK;
	} else {
		rc = rc == SQLITE_DONE ? STORE_NOT_FOUND
				       : store_rc_from_sqlite(c, rc, "get datastore");
	}
	sqlite3_reset(s);
	return rc;
}

/* Makes dataset @name if missing and takes its next number. */
static int take_number_locked(struct conn *c, const char *name, int64_t now,
			      int64_t *dataset_id, int64_t *number)
{
	sqlite3_stmt *s = stmt_get(c, SQL_DATASET_ENSURE);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	rc = stmt_exec(c, s, "make dataset");
	if (rc != STORE_OK)
		return rc;
	s = stmt_get(c, SQL_DATASET_NEXT_VERSION);
	if (!s)
		return STORE_IO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*dataset_id = sqlite3_column_int64(s, 0);
		*number = sqlite3_column_int64(s, 1);
		rc = STORE_OK;
	} else {
		rc = store_rc_from_sqlite(c, rc, "number dataset version");
		if (rc == STORE_OK)
			rc = STORE_IO;
	}
	sqlite3_reset(s);
	return rc;
}

struct reg {
	const struct dataset_spec *sp;
	const struct dataset_file **sorted;
	const char *tags;
	uint64_t total;
	int64_t now;
	int64_t datastore_id;
	int64_t dataset_id;
	int64_t number;
	int64_t version_id;
};

static int version_insert_locked(struct conn *c, struct reg *r)
{
	sqlite3_stmt *s = stmt_get(c, SQL_DATASET_VERSION_INSERT);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, r->dataset_id);
	sqlite3_bind_int64(s, 2, r->number);
	sqlite3_bind_int64(s, 3, r->datastore_id);
	sqlite3_bind_text(s, 4, r->sp->description ? r->sp->description : "",
			  -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, r->tags, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 6, r->sp->copy ? 1 : 0);
	sqlite3_bind_int64(s, 7, r->now);
	sqlite3_bind_int64(s, 8, (int64_t)r->sp->nfiles);
	sqlite3_bind_int64(s, 9, (int64_t)r->total);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		r->version_id = sqlite3_column_int64(s, 0);
		rc = STORE_OK;
	} else {
		rc = store_rc_from_sqlite(c, rc, "insert dataset version");
		if (rc == STORE_OK)
			rc = STORE_IO;
	}
	sqlite3_reset(s);
	return rc;
}

/* In path order: the rows go into the primary key's b-tree in order. */
static int files_insert_locked(struct conn *c, const struct reg *r)
{
	int rc = STORE_OK;

	for (size_t i = 0; i < r->sp->nfiles && rc == STORE_OK; i++) {
		const struct dataset_file *f = r->sorted[i];
		sqlite3_stmt *s = stmt_get(c, SQL_DATASET_FILE_INSERT);

		if (!s)
			return STORE_IO;
		sqlite3_bind_int64(s, 1, r->version_id);
		sqlite3_bind_text(s, 2, f->path, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, (int64_t)f->size);
		sqlite3_bind_int64(s, 4, f->mtime_ns);
		if (f->etag)
			sqlite3_bind_text(s, 5, f->etag, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 6, f->http_mtime_ms);
		if (r->sp->copy)
			sqlite3_bind_text(s, 7, f->blob, -1, SQLITE_STATIC);
		rc = stmt_exec(c, s, "insert dataset file");
	}
	return rc;
}

/* "3.1 MB": decimal units, as people read sizes in a log. */
static void size_text(uint64_t n, char *buf, size_t len)
{
	static const char *const unit[] = { "kB", "MB", "GB", "TB", "PB", "EB" };
	double v = (double)n;
	size_t u = 0;

	if (n < 1000) {
		snprintf(buf, len, "%llu B", (unsigned long long)n);
		return;
	}
	v /= 1000;
	while (v >= 999.95 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1000;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, unit[u]);
}

static int register_locked(struct conn *c, struct reg *r,
			   struct store_dataset_version *out)
{
	char size[32];
	int type = 0;
	int rc = datastore_locked(c, r->sp->datastore, &r->datastore_id, &type);

	if (rc == STORE_OK && !pins_fit(r->sp, type))
		rc = STORE_INVALID;
	if (rc == STORE_OK)
		rc = take_number_locked(c, r->sp->name, r->now, &r->dataset_id,
					&r->number);
	if (rc == STORE_OK)
		rc = version_insert_locked(c, r);
	if (rc == STORE_OK)
		rc = files_insert_locked(c, r);
	if (rc == STORE_OK)
		rc = change_add(c, CHANGE_DATASETS, 0, 0, r->version_id, r->now);
	size_text(r->total, size, sizeof(size));
	if (rc == STORE_OK)
		rc = event_add_locked(c, r->now,
				      "datasets/%s/%lld registered: %zu file%s, "
				      "%s from datastore %s", r->sp->name,
				      (long long)r->number, r->sp->nfiles,
				      r->sp->nfiles == 1 ? "" : "s", size,
				      r->sp->datastore);
	if (rc == STORE_OK && out)
		rc = version_get_by_id_locked(c, r->version_id, out);
	return rc;
}

int store_dataset_register(struct store *st, const struct dataset_spec *spec,
			   struct store_dataset_version *out)
{
	struct store_dataset_version v = { 0 };
	struct reg r = { .sp = spec, .now = time_now_ms() };
	char *tags = NULL;
	struct conn *c;
	int rc = spec_check(spec, &r.sorted, &r.total);

	if (rc != STORE_OK)
		return rc;
	rc = tags_normalize(spec->tags_json, &tags);
	if (rc != STORE_OK)
		goto out_free;
	r.tags = tags;
	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		goto out_free;
	rc = tx_begin(c);
	if (rc == STORE_OK)
		rc = register_locked(c, &r, out ? &v : NULL);
	if (rc == STORE_OK)
		rc = tx_commit(c);
	tx_rollback(c);
	conn_put(st, c);
	if (rc == STORE_OK && out) {
		*out = v;
		v = (struct store_dataset_version){ 0 };	/* handed over */
	}
	store_dataset_version_release(&v);
out_free:
	free(tags);
	free(r.sorted);
	return rc;
}

/* ---- reading ---------------------------------------------------------------- */

/* Name ?1 and, unless 0 (the latest: no ?2), version ?2. */
struct version_key {
	const char *name;
	int64_t version;
};

static void version_key_bind(sqlite3_stmt *s, const void *arg)
{
	const struct version_key *k = arg;

	sqlite3_bind_text(s, 1, k->name, -1, SQLITE_STATIC);
	if (k->version)
		sqlite3_bind_int64(s, 2, k->version);
}

static int version_row(struct store *st, sqlite3_stmt *s, void *out)
{
	(void)st;
	return version_from_row(s, out) == STORE_OK ? 1 : STORE_NOMEM;
}

int store_dataset_version_get(struct store *st, const char *name,
			      int64_t version,
			      struct store_dataset_version *out)
{
	struct version_key k = { name, version };
	struct store_read r = {
		.id = version ? SQL_DATASET_VERSION_GET
			      : SQL_DATASET_VERSION_LATEST,
		.what = "get dataset version",
		.bind = version_key_bind, .bind_arg = &k,
		.row = version_row, .row_arg = out, .need_row = 1,
	};

	if (version < 0)
		return STORE_NOT_FOUND;
	return store_read_rows(st, &r);
}

struct dataset_each {
	store_dataset_fn fn;
	void *ctx;
};

static int dataset_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct dataset_each *e = arg;

	(void)st;
	return e->fn(e->ctx, (const char *)sqlite3_column_text(s, 0),
		     sqlite3_column_int64(s, 1),
		     sqlite3_column_int64(s, 2)) != 0;
}

int store_dataset_list(struct store *st, store_dataset_fn fn, void *ctx)
{
	struct dataset_each e = { fn, ctx };
	struct store_read r = {
		.id = SQL_DATASET_LIST, .what = "list datasets",
		.row = dataset_each_row, .row_arg = &e,
	};

	return store_read_rows(st, &r);
}

static int dataset_id_get(struct store *st, const char *name, int64_t *id)
{
	struct store_read r = {
		.id = SQL_DATASET_GET_ID, .what = "get dataset",
		.bind = bind_text1, .bind_arg = name,
		.row = int64_row, .row_arg = id, .need_row = 1,
	};

	return store_read_rows(st, &r);
}

struct version_each {
	store_dataset_version_fn fn;
	void *ctx;
};

static int version_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct version_each *e = arg;
	struct store_dataset_version v;
	int stop;

	(void)st;
	if (version_from_row(s, &v) != STORE_OK)
		return STORE_NOMEM;
	stop = e->fn(e->ctx, &v) != 0;
	store_dataset_version_release(&v);
	return stop;
}

int store_dataset_versions(struct store *st, const char *name,
			   store_dataset_version_fn fn, void *ctx)
{
	struct version_each e = { fn, ctx };
	int64_t id = 0;
	struct store_read r = {
		.id = SQL_DATASET_VERSION_LIST, .what = "list dataset versions",
		.bind = bind_int64_1, .bind_arg = &id,
		.row = version_each_row, .row_arg = &e,
	};
	int rc = dataset_id_get(st, name, &id);

	return rc == STORE_OK ? store_read_rows(st, &r) : rc;
}

/*
 * The least string above every string that starts with @prefix: @prefix
 * without its trailing 0xff bytes, the last remaining byte plus one.
 * 0 when there is none (@prefix is empty or all 0xff): no upper bound.
 */
static size_t prefix_upper(const char *prefix, char *buf)
{
	size_t n = strlen(prefix);

	while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
		n--;
	if (n == 0)
		return 0;
	memcpy(buf, prefix, n);
	buf[n - 1] = (char)((unsigned char)buf[n - 1] + 1);
	buf[n] = '\0';
	return n;
}

/* The parameters of a query on the paths under @prefix of @id. */
struct prefix_key {
	int64_t id;
	const char *prefix;
	char upper[DATASET_PATH_MAX + 1];
	size_t nupper;
};

/*
 * Fills @k and picks the statement: @range, bounded above by
 * prefix_upper(), or @from when nothing bounds it.
 */
static enum stmt_id prefix_key_init(struct prefix_key *k, int64_t id,
				    const char *prefix, enum stmt_id from,
				    enum stmt_id range)
{
	k->id = id;
	k->prefix = prefix;
	k->nupper = prefix_upper(prefix, k->upper);
	return k->nupper ? range : from;
}

static void prefix_key_bind(sqlite3_stmt *s, const void *arg)
{
	const struct prefix_key *k = arg;

	sqlite3_bind_int64(s, 1, k->id);
	sqlite3_bind_text(s, 2, k->prefix, -1, SQLITE_STATIC);
	if (k->nupper)
		sqlite3_bind_text(s, 3, k->upper, (int)k->nupper,
				  SQLITE_STATIC);
}

/* Appends the row's file to the dataset_files @arg. */
static int file_push_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct dataset_files *out = arg;
	struct dataset_file *f = dataset_files_push(out);
	int rc;

	(void)st;
	if (!f)
		return STORE_NOMEM;
	rc = file_from_row(s, f);
	if (rc != STORE_OK)
		out->n--;	/* the zeroed slot holds nothing */
	return rc;
}

int store_dataset_files(struct store *st, int64_t version_id,
			const char *prefix, struct dataset_files *out)
{
	struct prefix_key k;
	size_t from = out->n;
	struct store_read r = {
		.what = "list dataset files",
		.bind = prefix_key_bind, .bind_arg = &k,
		.row = file_push_row, .row_arg = out,
	};
	int rc;

	if (strlen(prefix) > DATASET_PATH_MAX)
		return STORE_OK;	/* no path is that long */
	r.id = prefix_key_init(&k, version_id, prefix, SQL_DATASET_FILES_FROM,
			       SQL_DATASET_FILES_RANGE);
	rc = store_read_rows(st, &r);
	if (rc != STORE_OK)
		dataset_files_truncate(out, from);
	return rc;
}

static int file_row(struct store *st, sqlite3_stmt *s, void *out)
{
	(void)st;
	return file_from_row(s, out) == STORE_OK ? 1 : STORE_NOMEM;
}

int store_dataset_file_get(struct store *st, int64_t version_id,
			   const char *path, struct dataset_file *out)
{
	struct int64_text key = { version_id, path };
	struct store_read r = {
		.id = SQL_DATASET_FILE_GET, .what = "get dataset file",
		.bind = bind_int64_text, .bind_arg = &key,
		.row = file_row, .row_arg = out, .need_row = 1,
	};

	return store_read_rows(st, &r);
}

struct path_each {
	store_path_fn fn;
	void *ctx;
};

static int path_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct path_each *e = arg;

	(void)st;
	return e->fn(e->ctx, (const char *)sqlite3_column_text(s, 0)) != 0;
}

int store_datastore_paths(struct store *st, int64_t datastore_id,
			  const char *prefix, store_path_fn fn, void *ctx)
{
	struct path_each e = { fn, ctx };
	struct prefix_key k;
	struct store_read r = {
		.what = "list a datastore's paths",
		.bind = prefix_key_bind, .bind_arg = &k,
		.row = path_each_row, .row_arg = &e,
	};

	if (strlen(prefix) > DATASET_PATH_MAX)
		return STORE_OK;	/* no path is that long */
	r.id = prefix_key_init(&k, datastore_id, prefix,
			       SQL_DATASTORE_PATHS_FROM,
			       SQL_DATASTORE_PATHS_RANGE);
	return store_read_rows(st, &r);
}

int dataset_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int found_row(struct store *st, sqlite3_stmt *s, void *found)
{
	(void)st;
	(void)s;
	*(int *)found = 1;
	return 1;
}

int store_dataset_has_prefix(struct store *st, int64_t version_id,
			     const char *prefix, int *found)
{
	struct prefix_key k;
	struct store_read r = {
		.what = "look up a dataset directory",
		.bind = prefix_key_bind, .bind_arg = &k,
		.row = found_row, .row_arg = found,
	};

	*found = 0;
	if (strlen(prefix) > DATASET_PATH_MAX)
		return STORE_OK;
	r.id = prefix_key_init(&k, version_id, prefix, SQL_DATASET_PREFIX_FROM,
			       SQL_DATASET_PREFIX_RANGE);
	return store_read_rows(st, &r);
}
