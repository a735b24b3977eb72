/*
 * model.c - the model registry: models, versions and their files
 * (contract: mlfs/models.h; tags, aliases, deployments in model_meta.c).
 *
 * Design notes
 *  1. Numbers come from model_seq (name -> next_version), bumped in the
 *     registering transaction. The row is keyed by name and outlives the
 *     model row, so neither a version delete nor removing and making the
 *     model again brings a number back (models.h, invariant 1).
 *  2. store_model_register runs in one BEGIN IMMEDIATE transaction:
 *     ensure the model, take a number, insert the version, its files,
 *     tags and properties, touch the model, change rows, events line.
 *     Every writer in every process is serialized by the write lock, so
 *     concurrent registrations get consecutive numbers.
 *  3. Version delete finds the orphaned blobs (blobs of the version no
 *     other version names) and the active deployment references inside
 *     the same transaction as the delete, so no registration can adopt a
 *     blob between the look and the delete.
 *  4. Children of a version (files, tags, properties, aliases, deployment
 *     references) go with it by ON DELETE CASCADE.
 */
#include <stdlib.h>
#include <string.h>

#include "mlfs/blob.h"
#include "mlfs/models.h"
#include "mlfs/parse.h"
#include "mlfs/strbuf.h"
#include "mlfs/timefmt.h"
#include "store_internal.h"
#include "model_internal.h"

void store_model_release(struct store_model *m)
{
	free(m->name);
	m->name = NULL;
}

void store_model_version_release(struct store_model_version *v)
{
	free(v->model);
	free(v->description);
	free(v->framework);
	v->model = v->description = v->framework = NULL;
}

void store_hex_list_release(struct store_hex_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->hex[i]);
	free(l->hex);
	l->hex = NULL;
	l->n = 0;
}

/* ---- rows --------------------------------------------------------------- */

static void model_view_from_row(sqlite3_stmt *s, struct store_model *m)
{
	m->id = sqlite3_column_int64(s, 0);
	m->name = (char *)sqlite3_column_text(s, 1);
	m->created_ms = sqlite3_column_int64(s, 2);
	m->updated_ms = sqlite3_column_int64(s, 3);
	m->version_count = sqlite3_column_int64(s, 4);
	m->latest = sqlite3_column_int64(s, 5);
}

int model_get_locked(struct conn *c, const char *name, struct store_model *out)
{
	sqlite3_stmt *s = stmt_get(c, SQL_MODEL_GET);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		model_view_from_row(s, out);
		out->name = col_strdup(s, 1);
		rc = out->name ? STORE_OK : STORE_NOMEM;
	} else {
		rc = rc == SQLITE_DONE ? STORE_NOT_FOUND
				       : store_rc_from_sqlite(c, rc, "get model");
	}
	sqlite3_reset(s);
	return rc;
}

/* The columns of VERSION_COLUMNS, pointing into the row. */
static void version_view_from_row(sqlite3_stmt *s, struct store_model_version *v)
{
	v->id = sqlite3_column_int64(s, 0);
	v->model_id = sqlite3_column_int64(s, 1);
	v->model = (char *)sqlite3_column_text(s, 2);
	v->version = sqlite3_column_int64(s, 3);
	v->created_ms = sqlite3_column_int64(s, 4);
	v->updated_ms = sqlite3_column_int64(s, 5);
	v->description = (char *)sqlite3_column_text(s, 6);
	v->framework = (char *)sqlite3_column_text(s, 7);
	v->run_id = col_int64_or(s, 8, 0);
}

static int version_copy_from_row(sqlite3_stmt *s, struct store_model_version *v)
{
	version_view_from_row(s, v);
	v->model = col_strdup(s, 2);
	v->description = col_strdup(s, 6);
	v->framework = col_strdup(s, 7);
	if (!v->model || !v->description ||
	    (!v->framework && sqlite3_column_type(s, 7) != SQLITE_NULL)) {
		store_model_version_release(v);
		return STORE_NOMEM;
	}
	return STORE_OK;
}

/* One version by (name, number) or, with @name NULL, by id @key. */
int version_get_locked(struct conn *c, const char *name, int64_t key,
		       struct store_model_version *out)
{
	sqlite3_stmt *s = stmt_get(c, name ? SQL_MODEL_VERSION_GET
					   : SQL_MODEL_VERSION_GET_BY_ID);
	int rc;

	if (!s)
		return STORE_IO;
	if (name) {
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, key);
	} else {
		sqlite3_bind_int64(s, 1, key);
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = version_copy_from_row(s, out);
	else
		rc = rc == SQLITE_DONE ? STORE_NOT_FOUND
				       : store_rc_from_sqlite(c, rc, "get version");
	sqlite3_reset(s);
	return rc;
}

/* Bumps model.updated_ms and records a CHANGE_MODEL row. */
int model_changed_locked(struct conn *c, int64_t model_id, int64_t run_id,
			 int64_t now)
{
	sqlite3_stmt *s = stmt_get(c, SQL_MODEL_TOUCH);
	int64_t exp_id = 0;
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, model_id);
	sqlite3_bind_int64(s, 2, now);
	rc = stmt_exec(c, s, "touch model");
	if (rc == STORE_OK && run_id)
		rc = run_experiment_locked(c, run_id, &exp_id);
	if (rc == STORE_OK)
		rc = change_add(c, CHANGE_MODEL, exp_id, run_id, model_id, now);
	return rc;
}

/* ---- models ------------------------------------------------------------- */

int store_model_create(struct store *st, const char *name,
		       struct store_model *out)
{
	struct store_model m = { 0 };
	int64_t now = time_now_ms();
	struct conn *c;
	sqlite3_stmt *s;
	int rc;

	if (!name_is_valid(name, strlen(name)))
		return STORE_INVALID;
	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = STORE_IO;
	s = stmt_get(c, SQL_MODEL_INSERT);
	if (!s)
		goto out_rollback;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	rc = stmt_exec(c, s, "create model");
	if (rc != STORE_OK)
		goto out_rollback;
	rc = model_get_locked(c, name, &m);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = change_add(c, CHANGE_MODELS, 0, 0, m.id, now);
	if (rc == STORE_OK)
		rc = change_add(c, CHANGE_MODEL, 0, 0, m.id, now);
	if (rc == STORE_OK)
		rc = event_add_locked(c, now, "models/%s created", name);
	if (rc != STORE_OK)
		goto out_release;
	rc = tx_commit(c);
	if (rc == STORE_OK && out) {
		*out = m;
		m.name = NULL;	/* handed over */
	}
out_release:
	store_model_release(&m);
out_rollback:
	tx_rollback(c);
out_put:
	conn_put(st, c);
	return rc;
}

int store_model_get(struct store *st, const char *name, struct store_model *out)
{
	struct conn *c;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = model_get_locked(c, name, out);
	conn_put(st, c);
	return rc;
}

int store_model_delete(struct store *st, const char *name)
{
	struct store_model m = { 0 };
	int64_t now = time_now_ms();
	struct conn *c;
	sqlite3_stmt *s;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	/* Inside the write transaction: no version can slip in. */
	rc = model_get_locked(c, name, &m);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = STORE_NOT_EMPTY;
	if (m.version_count > 0)
		goto out_release;
	rc = STORE_IO;
	s = stmt_get(c, SQL_MODEL_DELETE);
	if (!s)
		goto out_release;
	sqlite3_bind_int64(s, 1, m.id);
	rc = stmt_exec(c, s, "delete model");
	if (rc == STORE_OK)
		rc = change_add(c, CHANGE_MODELS, 0, 0, m.id, now);
	if (rc == STORE_OK)
		rc = change_add(c, CHANGE_MODEL, 0, 0, m.id, now);
	if (rc == STORE_OK)
		rc = event_add_locked(c, now, "models/%s removed", name);
	if (rc == STORE_OK)
		rc = tx_commit(c);
out_release:
	store_model_release(&m);
out_rollback:
	tx_rollback(c);
out_put:
	conn_put(st, c);
	return rc;
}

struct model_each {
	store_model_fn fn;
	void *ctx;
};

static int model_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct model_each *e = arg;
	struct store_model m;

	(void)st;
	model_view_from_row(s, &m);
	return e->fn(e->ctx, &m) != 0;
}

int store_model_list(struct store *st, store_model_fn fn, void *ctx)
{
	struct model_each e = { fn, ctx };
	struct store_read r = {
		.id = SQL_MODEL_LIST, .what = "list models",
		.row = model_each_row, .row_arg = &e,
	};

	return store_read_rows(st, &r);
}

/* ---- registering -------------------------------------------------------- */

static int hex_is_valid(const char *hex)
{
	size_t i;

	for (i = 0; hex && i < BLOB_HEX_LEN; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') ||
		      (hex[i] >= 'a' && hex[i] <= 'f')))
			return 0;
	return hex && hex[i] == '\0';
}

/* Relative, no empty, "." or ".." component, text, bounded. */
static int file_path_is_valid(const char *path)
{
	size_t len = path ? strlen(path) : 0;
	const char *p = path;

	if (len == 0 || len > MODEL_FILE_PATH_MAX || !text_is_valid(path, len))
		return 0;
	while (*p) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!end)
			break;
		p = end + 1;
		if (!*p)
			return 0;	/* trailing '/' */
	}
	return 1;
}

/* Everything checkable without the database, before the transaction. */
static int spec_check(const char *name, const struct model_version_spec *sp)
{
	int rc;

	if (!name_is_valid(name, strlen(name)))
		return STORE_INVALID;
	if (sp->description) {
		size_t n = strlen(sp->description);

		if (n > STORE_VALUE_MAX)
			return STORE_TOO_BIG;
		if (!text_is_valid(sp->description, n))
			return STORE_INVALID;
	}
	if (sp->framework && !name_is_valid(sp->framework, strlen(sp->framework)))
		return STORE_INVALID;
	if ((sp->nfiles && !sp->files) || (sp->ntags && !sp->tags) ||
	    (sp->nproperties && !sp->properties))
		return STORE_INVALID;
	for (size_t i = 0; i < sp->nfiles; i++) {
		const struct store_model_file *f = &sp->files[i];

		if (!file_path_is_valid(f->path) || !hex_is_valid(f->blob) ||
		    f->size < 0)
			return STORE_INVALID;
	}
	for (size_t i = 0; i < sp->ntags; i++) {
		rc = kv_check(sp->tags[i].key, sp->tags[i].value, sp->tags[i].len);
		if (rc != STORE_OK)
			return rc;
	}
	for (size_t i = 0; i < sp->nproperties; i++) {
		rc = kv_check(sp->properties[i].key, sp->properties[i].value,
			      sp->properties[i].len);
		if (rc != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

/* Runs a (version_id, key, value, now) statement: a tag or property. */
int model_kv_exec_locked(struct conn *c, enum stmt_id id, int64_t version_id,
			 const char *key, const char *value, size_t len,
			 int64_t now)
{
	sqlite3_stmt *s = stmt_get(c, id);

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, version_id);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, len ? value : "", (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now);
	return stmt_exec(c, s, "write model value");
}

static int take_version_number(struct conn *c, const char *name,
			       int64_t *number)
{
	sqlite3_stmt *s = stmt_get(c, SQL_MODEL_NEXT_VERSION);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*number = sqlite3_column_int64(s, 0);
		rc = STORE_OK;
	} else {
		rc = store_rc_from_sqlite(c, rc, "number model version");
		if (rc == STORE_OK)
			rc = STORE_IO;
	}
	sqlite3_reset(s);
	return rc;
}

static int version_insert_locked(struct conn *c, int64_t model_id,
				 int64_t number,
				 const struct model_version_spec *sp,
				 int64_t now, int64_t *version_id)
{
	sqlite3_stmt *s = stmt_get(c, SQL_MODEL_VERSION_INSERT);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, model_id);
	sqlite3_bind_int64(s, 2, number);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_text(s, 4, sp->description ? sp->description : "", -1,
			  SQLITE_STATIC);
	if (sp->framework)
		sqlite3_bind_text(s, 5, sp->framework, -1, SQLITE_STATIC);
	if (sp->run_id)
		sqlite3_bind_int64(s, 6, sp->run_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*version_id = sqlite3_column_int64(s, 0);
		rc = STORE_OK;
	} else {
		rc = store_rc_from_sqlite(c, rc, "insert model version");
		if (rc == STORE_OK)
			rc = STORE_IO;
	}
	sqlite3_reset(s);
	return rc;
}

static int files_insert_locked(struct conn *c, int64_t version_id,
			       const struct model_version_spec *sp)
{
	int rc = STORE_OK;

	for (size_t i = 0; i < sp->nfiles && rc == STORE_OK; i++) {
		const struct store_model_file *f = &sp->files[i];
		sqlite3_stmt *s = stmt_get(c, SQL_MODEL_FILE_INSERT);

		if (!s)
			return STORE_IO;
		sqlite3_bind_int64(s, 1, version_id);
		sqlite3_bind_text(s, 2, f->path, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, f->blob, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, f->size);
		sqlite3_bind_int(s, 5, (int)(f->mode & 07777));
		rc = stmt_exec(c, s, "insert model file");
		if (rc == STORE_EXISTS)
			rc = STORE_INVALID;	/* the same path twice */
	}
	return rc;
}

static int annotations_insert_locked(struct conn *c, int64_t version_id,
				     const struct model_version_spec *sp,
				     int64_t now)
{
	int rc = STORE_OK;

	for (size_t i = 0; i < sp->ntags && rc == STORE_OK; i++)
		rc = model_kv_exec_locked(c, SQL_MODEL_TAG_SET, version_id,
					  sp->tags[i].key, sp->tags[i].value,
					  sp->tags[i].len, now);
	for (size_t i = 0; i < sp->nproperties && rc == STORE_OK; i++) {
		rc = model_kv_exec_locked(c, SQL_MODEL_PROPERTY_INSERT,
					  version_id, sp->properties[i].key,
					  sp->properties[i].value,
					  sp->properties[i].len, now);
		if (rc == STORE_EXISTS)
			rc = STORE_INVALID;	/* the same key twice */
	}
	return rc;
}

static int model_ensure_locked(struct conn *c, const char *name, int64_t now,
			       struct store_model *m)
{
	sqlite3_stmt *s = stmt_get(c, SQL_MODEL_ENSURE);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	rc = stmt_exec(c, s, "ensure model");
	if (rc != STORE_OK)
		return rc;
	if (sqlite3_changes(c->db) > 0) {
		rc = model_get_locked(c, name, m);
		if (rc == STORE_OK)
			rc = change_add(c, CHANGE_MODELS, 0, 0, m->id, now);
		if (rc == STORE_OK)
			rc = event_add_locked(c, now, "models/%s created", name);
		return rc;
	}
	return model_get_locked(c, name, m);
}

int store_model_register(struct store *st, const char *name,
			 const struct model_version_spec *spec,
			 struct store_model_version *out)
{
	struct store_model m = { 0 };
	int64_t now = time_now_ms();
	int64_t number = 0, version_id = 0, exp_id = 0;
	struct conn *c;
	int rc = spec_check(name, spec);

	if (rc != STORE_OK)
		return rc;
	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	if (spec->run_id) {
		rc = run_experiment_locked(c, spec->run_id, &exp_id);
		if (rc != STORE_OK)
			goto out_rollback;
	}
	rc = model_ensure_locked(c, name, now, &m);
	if (rc == STORE_OK)
		rc = take_version_number(c, name, &number);
	if (rc == STORE_OK)
		rc = version_insert_locked(c, m.id, number, spec, now,
					   &version_id);
	if (rc == STORE_OK)
		rc = files_insert_locked(c, version_id, spec);
	if (rc == STORE_OK)
		rc = annotations_insert_locked(c, version_id, spec, now);
	if (rc == STORE_OK)
		rc = model_changed_locked(c, m.id, spec->run_id, now);
	if (rc == STORE_OK)
		rc = event_add_locked(c, now, "models/%s/%lld registered", name,
				      (long long)number);
	if (rc == STORE_OK && out)
		rc = version_get_locked(c, NULL, version_id, out);
	if (rc != STORE_OK)
		goto out_release;
	rc = tx_commit(c);
	if (rc != STORE_OK && out)
		store_model_version_release(out);
out_release:
	store_model_release(&m);
out_rollback:
	tx_rollback(c);
out_put:
	conn_put(st, c);
	return rc;
}

/* ---- reading versions --------------------------------------------------- */

int store_model_version_get(struct store *st, const char *name,
			    int64_t version, struct store_model_version *out)
{
	struct conn *c;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = version_get_locked(c, name, version, out);
	conn_put(st, c);
	return rc;
}

int store_model_version_get_by_id(struct store *st, int64_t version_id,
				  struct store_model_version *out)
{
	struct conn *c;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = version_get_locked(c, NULL, version_id, out);
	conn_put(st, c);
	return rc;
}

struct version_each {
	store_model_version_fn fn;
	void *ctx;
};

static int version_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct version_each *e = arg;
	struct store_model_version v;

	(void)st;
	version_view_from_row(s, &v);
	return e->fn(e->ctx, &v) != 0;
}

/* Runs version listing @id bound to @key, one callback per row. */
static int versions_each(struct store *st, enum stmt_id id, int64_t key,
			 store_model_version_fn fn, void *ctx)
{
	struct version_each e = { fn, ctx };
	struct store_read r = {
		.id = id, .what = "list versions",
		.bind = bind_int64_1, .bind_arg = &key,
		.row = version_each_row, .row_arg = &e,
	};

	return store_read_rows(st, &r);
}

int store_model_version_list(struct store *st, const char *name,
			     store_model_version_fn fn, void *ctx)
{
	struct store_model m = { 0 };
	int rc = store_model_get(st, name, &m);

	if (rc == STORE_OK)
		rc = versions_each(st, SQL_MODEL_VERSION_LIST, m.id, fn, ctx);
	store_model_release(&m);
	return rc;
}

int store_run_models(struct store *st, int64_t run_id,
		     store_model_version_fn fn, void *ctx)
{
	return versions_each(st, SQL_MODEL_VERSIONS_OF_RUN, run_id, fn, ctx);
}

int store_model_latest(struct store *st, const char *name, int64_t *version)
{
	struct store_model m = { 0 };
	int rc = store_model_get(st, name, &m);

	if (rc == STORE_OK && m.latest == 0)
		rc = STORE_NOT_FOUND;
	if (rc == STORE_OK)
		*version = m.latest;
	store_model_release(&m);
	return rc;
}

struct file_each {
	store_model_file_fn fn;
	void *ctx;
};

static int file_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct file_each *e = arg;
	struct store_model_file f = {
		.path = (const char *)sqlite3_column_text(s, 0),
		.blob = (const char *)sqlite3_column_text(s, 1),
		.size = sqlite3_column_int64(s, 2),
		.mode = (unsigned int)sqlite3_column_int(s, 3),
	};

	(void)st;
	return e->fn(e->ctx, &f) != 0;
}

int store_model_files(struct store *st, int64_t version_id,
		      store_model_file_fn fn, void *ctx)
{
	struct file_each e = { fn, ctx };
	struct store_read r = {
		.id = SQL_MODEL_FILE_LIST, .what = "list files",
		.bind = bind_int64_1, .bind_arg = &version_id,
		.row = file_each_row, .row_arg = &e,
	};

	return store_read_rows(st, &r);
}

/* Version ?1's paths in [?2, ?3); ?3 stays NULL, no bound, for "". */
struct file_range {
	int64_t version_id;
	const char *path;
	const struct strbuf *end;
};

static void file_range_bind(sqlite3_stmt *s, const void *arg)
{
	const struct file_range *k = arg;

	sqlite3_bind_int64(s, 1, k->version_id);
	sqlite3_bind_text(s, 2, k->path, -1, SQLITE_STATIC);
	if (k->path[0])
		sqlite3_bind_text(s, 3, k->end->buf, (int)k->end->len,
				  SQLITE_STATIC);
}

int store_model_files_at(struct store *st, int64_t version_id,
			 const char *path, store_model_file_fn fn, void *ctx)
{
	struct strbuf end = STRBUF_INIT;
	struct file_range k = { version_id, path, &end };
	struct file_each e = { fn, ctx };
	struct store_read r = {
		.id = SQL_MODEL_FILE_RANGE, .what = "list files",
		.bind = file_range_bind, .bind_arg = &k,
		.row = file_each_row, .row_arg = &e,
	};
	int rc;

	/* '0' follows '/': [path, path "0") holds path and path/... */
	if (path[0] && (strbuf_addstr(&end, path) < 0 ||
			strbuf_addch(&end, '0') < 0)) {
		strbuf_release(&end);
		return STORE_NOMEM;
	}
	rc = store_read_rows(st, &r);
	strbuf_release(&end);
	return rc;
}

struct blob_each {
	store_blob_fn fn;
	void *ctx;
};

static int blob_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct blob_each *e = arg;

	(void)st;
	return e->fn(e->ctx, (const char *)sqlite3_column_text(s, 0)) != 0;
}

int store_blob_each(struct store *st, store_blob_fn fn, void *ctx)
{
	struct blob_each e = { fn, ctx };
	struct store_read r = {
		.id = SQL_MODEL_BLOBS, .what = "list blobs",
		.row = blob_each_row, .row_arg = &e,
	};

	return store_read_rows(st, &r);
}

static int int_row(struct store *st, sqlite3_stmt *s, void *out)
{
	(void)st;
	*(int *)out = sqlite3_column_int(s, 0);
	return 1;
}

int store_blob_referenced(struct store *st, const char *hex, int *referenced)
{
	struct store_read r = {
		.id = SQL_BLOB_REFERENCED, .what = "look up a blob",
		.bind = bind_text1, .bind_arg = hex,
		.row = int_row, .row_arg = referenced, .need_row = 1,
	};

	return store_read_rows(st, &r);
}

/* ---- deleting versions -------------------------------------------------- */

static int active_refs_locked(struct conn *c, int64_t version_id,
			      int64_t *count)
{
	sqlite3_stmt *s = stmt_get(c, SQL_MODEL_ACTIVE_REFS);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, version_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*count = sqlite3_column_int64(s, 0);
		rc = STORE_OK;
	} else {
		rc = store_rc_from_sqlite(c, rc, "count deployments");
		if (rc == STORE_OK)
			rc = STORE_IO;
	}
	sqlite3_reset(s);
	return rc;
}

static int orphans_locked(struct conn *c, int64_t version_id,
			  struct store_hex_list *out)
{
	sqlite3_stmt *s = stmt_get(c, SQL_MODEL_ORPHANS);
	size_t cap = 0;
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, version_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		char *hex;

		if (out->n == cap) {
			size_t ncap = cap ? 2 * cap : 8;
			char **p = realloc(out->hex, ncap * sizeof(*p));

			if (!p)
				goto out_nomem;
			out->hex = p;
			cap = ncap;
		}
		hex = col_strdup(s, 0);
		if (!hex)
			goto out_nomem;
		out->hex[out->n++] = hex;
	}
	rc = rc == SQLITE_DONE ? STORE_OK
			       : store_rc_from_sqlite(c, rc, "find orphans");
	sqlite3_reset(s);
	return rc;

out_nomem:
	sqlite3_reset(s);
	return STORE_NOMEM;
}

int store_model_version_delete(struct store *st, const char *name,
			       int64_t version, struct store_hex_list *orphans)
{
	struct store_model_version v = { 0 };
	struct store_hex_list gone = { 0 };
	int64_t now = time_now_ms();
	int64_t active = 0;
	struct conn *c;
	sqlite3_stmt *s;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = version_get_locked(c, name, version, &v);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = active_refs_locked(c, v.id, &active);
	if (rc == STORE_OK && active > 0)
		rc = STORE_IN_USE;
	if (rc == STORE_OK)
		rc = orphans_locked(c, v.id, &gone);
	if (rc != STORE_OK)
		goto out_release;
	rc = STORE_IO;
	s = stmt_get(c, SQL_MODEL_VERSION_DELETE);
	if (!s)
		goto out_release;
	sqlite3_bind_int64(s, 1, v.id);
	rc = stmt_exec(c, s, "delete model version");
	if (rc == STORE_OK)
		rc = model_changed_locked(c, v.model_id, v.run_id, now);
	if (rc == STORE_OK)
		rc = event_add_locked(c, now, "models/%s/%lld deleted", name,
				      (long long)version);
	if (rc == STORE_OK)
		rc = tx_commit(c);
	if (rc == STORE_OK && orphans) {
		*orphans = gone;
		gone = (struct store_hex_list){ 0 };	/* handed over */
	}
out_release:
	store_hex_list_release(&gone);
	store_model_version_release(&v);
out_rollback:
	tx_rollback(c);
out_put:
	conn_put(st, c);
	return rc;
}
