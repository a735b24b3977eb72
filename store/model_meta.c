/*
 * model_meta.c - what hangs on model versions besides their files: tags
 * (mutable), properties (add-only), aliases and the references that
 * deployments hold (contract: mlfs/models.h).
 *
 * Every mutation is one transaction that checks the version (or model)
 * exists inside it, writes, then touches the model and adds its
 * CHANGE_MODEL row (model_changed_locked), so a reader never sees a
 * change without its feed row.
 */
#include <stdlib.h>
#include <string.h>

#include "mlfs/parse.h"
#include "mlfs/timefmt.h"
#include "model_internal.h"

/* ---- tags and properties ------------------------------------------------ */

static int version_touch_locked(struct conn *c,
				const struct store_model_version *v,
				int64_t now)
{
	sqlite3_stmt *s = stmt_get(c, SQL_MODEL_VERSION_TOUCH);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, v->id);
	sqlite3_bind_int64(s, 2, now);
	rc = stmt_exec(c, s, "touch model version");
	if (rc == STORE_OK)
		rc = model_changed_locked(c, v->model_id, v->run_id, now);
	return rc;
}

/* Same bytes as property @key of @version_id: STORE_OK, else DENIED. */
static int property_same_locked(struct conn *c, int64_t version_id,
				const char *key, const char *value, size_t len)
{
	sqlite3_stmt *s = stmt_get(c, SQL_MODEL_PROPERTY_GET);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, version_id);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(s, 0);
		const void *b = sqlite3_column_blob(s, 0);

		rc = n == len && (n == 0 || memcmp(b, value, n) == 0)
			     ? STORE_OK : STORE_DENIED;
	} else {
		rc = store_rc_from_sqlite(c, rc, "get model property");
		if (rc == STORE_OK)
			rc = STORE_IO;	/* it was there a moment ago */
	}
	sqlite3_reset(s);
	return rc;
}

enum kv_op { KV_TAG_SET, KV_TAG_DELETE, KV_PROPERTY_ADD };

static int kv_write(struct store *st, enum kv_op op, int64_t version_id,
		    const char *key, const char *value, size_t len)
{
	struct store_model_version v = { 0 };
	int64_t now = time_now_ms();
	struct conn *c;
	int rc = op == KV_TAG_DELETE ? STORE_OK : kv_check(key, value, len);

	if (rc != STORE_OK)
		return rc;
	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = version_get_locked(c, NULL, version_id, &v);
	if (rc != STORE_OK)
		goto out_rollback;
	switch (op) {
	case KV_TAG_SET:
		rc = model_kv_exec_locked(c, SQL_MODEL_TAG_SET, version_id,
					  key, value, len, now);
		break;
	case KV_TAG_DELETE: {
		sqlite3_stmt *s = stmt_get(c, SQL_MODEL_TAG_DELETE);

		rc = STORE_IO;
		if (!s)
			break;
		sqlite3_bind_int64(s, 1, version_id);
		sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
		rc = stmt_exec(c, s, "delete model tag");
		if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
			rc = STORE_NOT_FOUND;
		break;
	}
	case KV_PROPERTY_ADD:
		rc = model_kv_exec_locked(c, SQL_MODEL_PROPERTY_INSERT,
					  version_id, key, value, len, now);
		if (rc == STORE_EXISTS) {
			/* Equal: nothing to write, nothing to commit. */
			rc = property_same_locked(c, version_id, key, value,
						  len);
			goto out_release;
		}
		break;
	}
	if (rc == STORE_OK)
		rc = version_touch_locked(c, &v, now);
	if (rc == STORE_OK)
		rc = tx_commit(c);
out_release:
	store_model_version_release(&v);
out_rollback:
	tx_rollback(c);
out_put:
	conn_put(st, c);
	return rc;
}

int store_model_tag_set(struct store *st, int64_t version_id, const char *key,
			const char *value, size_t len)
{
	return kv_write(st, KV_TAG_SET, version_id, key, value, len);
}

int store_model_tag_delete(struct store *st, int64_t version_id,
			   const char *key)
{
	return kv_write(st, KV_TAG_DELETE, version_id, key, NULL, 0);
}

int store_model_property_add(struct store *st, int64_t version_id,
			     const char *key, const char *value, size_t len)
{
	return kv_write(st, KV_PROPERTY_ADD, version_id, key, value, len);
}

int store_model_tag_list(struct store *st, int64_t version_id, store_kv_fn fn,
			 void *ctx)
{
	return kv_list(st, SQL_MODEL_TAG_LIST, version_id, fn, ctx);
}

int store_model_property_list(struct store *st, int64_t version_id,
			      store_kv_fn fn, void *ctx)
{
	return kv_list(st, SQL_MODEL_PROPERTY_LIST, version_id, fn, ctx);
}

/* ---- aliases ------------------------------------------------------------ */

/* Name rules, and none of the names the mount's tree uses itself. */
static int alias_is_valid(const char *alias)
{
	size_t len = strlen(alias);
	size_t digits = 0;

	if (!name_is_valid(alias, len) || strcmp(alias, "latest") == 0)
		return 0;
	while (digits < len && alias[len - 1 - digits] >= '0' &&
	       alias[len - 1 - digits] <= '9')
		digits++;
	if (digits == len)
		return 0;			/* "3": a version directory */
	if (digits == len - 1 && digits > 0 && alias[0] == 'v')
		return 0;			/* "v3" */
	return 1;
}

int store_model_alias_set(struct store *st, const char *name,
			  const char *alias, int64_t version)
{
	struct store_model_version v = { 0 };
	int64_t now = time_now_ms();
	struct conn *c;
	sqlite3_stmt *s;
	int rc;

	if (!alias_is_valid(alias))
		return STORE_INVALID;
	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = version_get_locked(c, name, version, &v);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = STORE_IO;
	s = stmt_get(c, SQL_MODEL_ALIAS_SET);
	if (!s)
		goto out_release;
	sqlite3_bind_int64(s, 1, v.model_id);
	sqlite3_bind_text(s, 2, alias, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, v.id);
	sqlite3_bind_int64(s, 4, now);
	rc = stmt_exec(c, s, "set alias");
	if (rc == STORE_OK)
		rc = model_changed_locked(c, v.model_id, 0, now);
	if (rc == STORE_OK)
		rc = event_add_locked(c, now, "models/%s alias %s -> %lld",
				      name, alias, (long long)version);
	if (rc == STORE_OK)
		rc = tx_commit(c);
out_release:
	store_model_version_release(&v);
out_rollback:
	tx_rollback(c);
out_put:
	conn_put(st, c);
	return rc;
}

/* Binds model @model_id and aliases @a, @b (may be NULL) to @id's statement. */
static sqlite3_stmt *alias_stmt(struct conn *c, enum stmt_id id,
				int64_t model_id, const char *a, const char *b)
{
	sqlite3_stmt *s = stmt_get(c, id);

	if (s) {
		sqlite3_bind_int64(s, 1, model_id);
		sqlite3_bind_text(s, 2, a, -1, SQLITE_STATIC);
		if (b)
			sqlite3_bind_text(s, 3, b, -1, SQLITE_STATIC);
	}
	return s;
}

static int alias_rename_locked(struct conn *c, int64_t model_id,
			       const char *from, const char *to,
			       int noreplace, int64_t now)
{
	sqlite3_stmt *s;
	int rc;

	if (noreplace) {
		s = alias_stmt(c, SQL_MODEL_ALIAS_GET, model_id, to, NULL);
		if (!s)
			return STORE_IO;
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc == SQLITE_ROW)
			return STORE_EXISTS;
		if (rc != SQLITE_DONE)
			return store_rc_from_sqlite(c, rc, "get alias");
	}
	s = alias_stmt(c, SQL_MODEL_ALIAS_COPY, model_id, from, to);
	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 4, now);
	rc = stmt_exec(c, s, "rename alias");
	if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
		return STORE_NOT_FOUND;
	if (rc != STORE_OK || strcmp(from, to) == 0)
		return rc;
	s = alias_stmt(c, SQL_MODEL_ALIAS_DELETE, model_id, from, NULL);
	return s ? stmt_exec(c, s, "rename alias") : STORE_IO;
}

int store_model_alias_rename(struct store *st, const char *name,
			     const char *from, const char *to, int noreplace)
{
	struct store_model m = { 0 };
	int64_t now = time_now_ms();
	struct conn *c;
	int rc;

	if (!alias_is_valid(to))
		return STORE_INVALID;
	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc == STORE_OK)
		rc = model_get_locked(c, name, &m);
	if (rc == STORE_OK)
		rc = alias_rename_locked(c, m.id, from, to, noreplace, now);
	if (rc == STORE_OK)
		rc = model_changed_locked(c, m.id, 0, now);
	if (rc == STORE_OK)
		rc = event_add_locked(c, now, "models/%s alias %s renamed to %s",
				      name, from, to);
	if (rc == STORE_OK)
		rc = tx_commit(c);
	tx_rollback(c);
	store_model_release(&m);
	conn_put(st, c);
	return rc;
}

int store_model_alias_delete(struct store *st, const char *name,
			     const char *alias)
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
	rc = model_get_locked(c, name, &m);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = STORE_IO;
	s = stmt_get(c, SQL_MODEL_ALIAS_DELETE);
	if (!s)
		goto out_release;
	sqlite3_bind_int64(s, 1, m.id);
	sqlite3_bind_text(s, 2, alias, -1, SQLITE_STATIC);
	rc = stmt_exec(c, s, "delete alias");
	if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
		rc = STORE_NOT_FOUND;
	if (rc == STORE_OK)
		rc = model_changed_locked(c, m.id, 0, now);
	if (rc == STORE_OK)
		rc = event_add_locked(c, now, "models/%s alias %s removed",
				      name, alias);
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

int store_model_alias_get(struct store *st, const char *name,
			  const char *alias, int64_t *version)
{
	struct store_model m = { 0 };
	struct int64_text key = { 0, alias };
	struct store_read r = {
		.id = SQL_MODEL_ALIAS_GET, .what = "get alias",
		.bind = bind_int64_text, .bind_arg = &key,
		.row = int64_row, .row_arg = version, .need_row = 1,
	};
	int rc = store_model_get(st, name, &m);

	if (rc != STORE_OK)
		return rc;
	key.id = m.id;
	rc = store_read_rows(st, &r);
	store_model_release(&m);
	return rc;
}

struct alias_each {
	store_alias_fn fn;
	void *ctx;
};

static int alias_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct alias_each *e = arg;

	(void)st;
	return e->fn(e->ctx, (const char *)sqlite3_column_text(s, 0),
		     sqlite3_column_int64(s, 1)) != 0;
}

int store_model_alias_list(struct store *st, const char *name,
			   store_alias_fn fn, void *ctx)
{
	struct store_model m = { 0 };
	struct alias_each e = { fn, ctx };
	struct store_read r = {
		.id = SQL_MODEL_ALIAS_LIST, .what = "list aliases",
		.bind = bind_int64_1, .bind_arg = &m.id,
		.row = alias_each_row, .row_arg = &e,
	};
	int rc = store_model_get(st, name, &m);

	if (rc != STORE_OK)
		return rc;
	rc = store_read_rows(st, &r);
	store_model_release(&m);
	return rc;
}

/* ---- deployment references ---------------------------------------------- */

int store_deployment_ref_add(struct store *st, const char *deployment,
			     int64_t version_id)
{
	struct store_model_version v = { 0 };
	int64_t now = time_now_ms();
	struct conn *c;
	sqlite3_stmt *s;
	int rc;

	if (!name_is_valid(deployment, strlen(deployment)))
		return STORE_INVALID;
	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = version_get_locked(c, NULL, version_id, &v);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = STORE_IO;
	s = stmt_get(c, SQL_DEPLOYMENT_REF_ADD);
	if (!s)
		goto out_release;
	sqlite3_bind_text(s, 1, deployment, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, version_id);
	sqlite3_bind_int64(s, 3, now);
	rc = stmt_exec(c, s, "add deployment reference");
	if (rc == STORE_OK)
		rc = model_changed_locked(c, v.model_id, 0, now);
	if (rc == STORE_OK)
		rc = tx_commit(c);
out_release:
	store_model_version_release(&v);
out_rollback:
	tx_rollback(c);
out_put:
	conn_put(st, c);
	return rc;
}

/*
 * Runs a deployment statement that returns the version ids it touched,
 * then marks each of their models changed. STORE_NOT_FOUND when it
 * touched none.
 */
static int refs_write(struct store *st, enum stmt_id id,
		      const char *deployment, int active)
{
	int64_t *versions = NULL;
	size_t n = 0, cap = 0;
	int64_t now = time_now_ms();
	struct conn *c;
	sqlite3_stmt *s;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = STORE_IO;
	s = stmt_get(c, id);
	if (!s)
		goto out_rollback;
	sqlite3_bind_text(s, 1, deployment, -1, SQLITE_STATIC);
	if (id == SQL_DEPLOYMENT_REF_SET_ACTIVE)
		sqlite3_bind_int(s, 2, active != 0);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 4;
			int64_t *p = realloc(versions, ncap * sizeof(*p));

			if (!p) {
				rc = SQLITE_NOMEM;
				break;
			}
			versions = p;
			cap = ncap;
		}
		versions[n++] = sqlite3_column_int64(s, 0);
	}
	rc = rc == SQLITE_DONE ? STORE_OK
			       : store_rc_from_sqlite(c, rc, "write deployment");
	sqlite3_reset(s);
	if (rc == STORE_OK && n == 0)
		rc = STORE_NOT_FOUND;
	for (size_t i = 0; i < n && rc == STORE_OK; i++) {
		struct store_model_version v = { 0 };

		rc = version_get_locked(c, NULL, versions[i], &v);
		if (rc == STORE_OK)
			rc = model_changed_locked(c, v.model_id, 0, now);
		store_model_version_release(&v);
	}
	if (rc == STORE_OK)
		rc = tx_commit(c);
out_rollback:
	tx_rollback(c);
	free(versions);
out_put:
	conn_put(st, c);
	return rc;
}

int store_deployment_ref_set_active(struct store *st, const char *deployment,
				    int active)
{
	return refs_write(st, SQL_DEPLOYMENT_REF_SET_ACTIVE, deployment, active);
}

int store_deployment_ref_remove(struct store *st, const char *deployment)
{
	return refs_write(st, SQL_DEPLOYMENT_REF_REMOVE, deployment, 0);
}
