/*
 * annotation.c - run tags (mutable) and properties (add-only).
 */
#include <stdlib.h>
#include <string.h>

#include "mlfs/parse.h"
#include "mlfs/timefmt.h"
#include "store_internal.h"

int kv_check(const char *key, const char *value, size_t len)
{
	if (!name_is_valid(key, strlen(key)))
		return STORE_INVALID;
	if (len > STORE_VALUE_MAX)
		return STORE_TOO_BIG;
	/* Values travel in JSON, CSV and XML: text, without NUL. */
	return text_is_valid(value, len) ? STORE_OK : STORE_INVALID;
}

/* Binds (run_id, key, value, now) to @id and runs it: inside a tx. */
static int kv_exec_locked(struct conn *c, enum stmt_id id, int64_t run_id,
			  const char *key, const char *value, size_t len,
			  int64_t now)
{
	sqlite3_stmt *s = stmt_get(c, id);

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, len ? value : "", (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now);
	return stmt_exec(c, s, "write value");
}

int tag_set_locked(struct conn *c, int64_t run_id, const char *key,
		   const char *value, size_t len, int64_t now)
{
	int rc = kv_check(key, value, len);

	if (rc != STORE_OK)
		return rc;
	return kv_exec_locked(c, SQL_TAG_SET, run_id, key, value, len, now);
}

/* For a run being made: its properties are all new. */
int property_add_locked(struct conn *c, int64_t run_id, const char *key,
			const char *value, size_t len, int64_t now)
{
	int rc = kv_check(key, value, len);

	if (rc != STORE_OK)
		return rc;
	return kv_exec_locked(c, SQL_PROPERTY_INSERT, run_id, key, value, len,
			      now);
}

/* Where value_get() puts what it read; @changed_ms may be NULL. */
struct value_out {
	char **value;
	size_t *len;
	int64_t *changed_ms;
};

static int value_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct value_out *o = arg;
	const void *b = sqlite3_column_blob(s, 0);
	size_t n = (size_t)sqlite3_column_bytes(s, 0);

	(void)st;
	*o->value = malloc(n + 1);
	if (!*o->value)
		return STORE_NOMEM;
	if (n)
		memcpy(*o->value, b, n);
	(*o->value)[n] = '\0';
	*o->len = n;
	if (o->changed_ms)
		*o->changed_ms = sqlite3_column_int64(s, 1);
	return 1;
}

/* Reads one value column of a (run_id, key) query into a malloc'd copy. */
static int value_get(struct store *st, enum stmt_id id, int64_t run_id,
		     const char *key, char **value, size_t *len,
		     int64_t *changed_ms)
{
	struct int64_text k = { run_id, key };
	struct value_out o = { value, len, changed_ms };
	struct store_read r = {
		.id = id, .what = "get value",
		.bind = bind_int64_text, .bind_arg = &k,
		.row = value_row, .row_arg = &o, .need_row = 1,
	};

	return store_read_rows(st, &r);
}

/*
 * Runs @id bound to (run_id, key, value, now) inside a transaction that
 * also touches the run and records @kind. @expect_change: a statement that
 * changes no row means the key was missing (STORE_NOT_FOUND).
 */
static int kv_write(struct store *st, enum stmt_id id, enum change_kind kind,
		    int64_t run_id, const char *key, const char *value,
		    size_t len, int expect_change)
{
	int64_t now = time_now_ms();
	int64_t exp_id = 0;
	struct conn *c;
	sqlite3_stmt *s;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = run_experiment_locked(c, run_id, &exp_id);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = STORE_IO;
	s = stmt_get(c, id);
	if (!s)
		goto out_rollback;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	if (value) {
		sqlite3_bind_blob(s, 3, len ? value : "", (int)len, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, now);
	}
	rc = stmt_exec(c, s, "write value");
	if (rc != STORE_OK)
		goto out_rollback;
	rc = STORE_NOT_FOUND;
	if (expect_change && sqlite3_changes(c->db) == 0)
		goto out_rollback;
	rc = run_touch(c, run_id, exp_id, now);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = change_add(c, kind, exp_id, run_id, run_id, now);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = tx_commit(c);
out_rollback:
	tx_rollback(c);
out_put:
	conn_put(st, c);
	return rc;
}

int store_tag_set(struct store *st, int64_t run_id, const char *key,
		  const char *value, size_t len)
{
	int rc = kv_check(key, value, len);

	if (rc != STORE_OK)
		return rc;
	return kv_write(st, SQL_TAG_SET, CHANGE_RUN_TAGS, run_id, key, value,
			len, 0);
}

int store_tag_delete(struct store *st, int64_t run_id, const char *key)
{
	return kv_write(st, SQL_TAG_DELETE, CHANGE_RUN_TAGS, run_id, key, NULL,
			0, 1);
}

int store_tag_get(struct store *st, int64_t run_id, const char *key,
		  char **value, size_t *len, int64_t *changed_ms)
{
	return value_get(st, SQL_TAG_GET, run_id, key, value, len, changed_ms);
}

int store_property_add(struct store *st, int64_t run_id, const char *key,
		       const char *value, size_t len)
{
	char *old = NULL;
	size_t old_len = 0;
	int rc = kv_check(key, value, len);

	if (rc != STORE_OK)
		return rc;
	/*
	 * The primary key makes a second insert fail with STORE_EXISTS, so two
	 * writers racing cannot both win; the read only decides whether the
	 * loser's bytes were the same (fine) or different (denied).
	 */
	rc = kv_write(st, SQL_PROPERTY_INSERT, CHANGE_RUN_PROPERTIES, run_id,
		      key, value, len, 0);
	if (rc != STORE_EXISTS)
		return rc;
	rc = value_get(st, SQL_PROPERTY_GET, run_id, key, &old, &old_len, NULL);
	if (rc != STORE_OK)
		return rc;
	rc = old_len == len && memcmp(old, value, len) == 0 ? STORE_OK
							    : STORE_DENIED;
	free(old);
	return rc;
}

int store_property_get(struct store *st, int64_t run_id, const char *key,
		       char **value, size_t *len, int64_t *changed_ms)
{
	return value_get(st, SQL_PROPERTY_GET, run_id, key, value, len,
			 changed_ms);
}

struct kv_each {
	store_kv_fn fn;
	void *ctx;
};

static int kv_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct kv_each *e = arg;
	struct store_kv kv = {
		.key = (const char *)sqlite3_column_text(s, 0),
		.value = sqlite3_column_blob(s, 1),
		.len = (size_t)sqlite3_column_bytes(s, 1),
		.updated_ms = sqlite3_column_int64(s, 2),
	};

	(void)st;
	if (!kv.value)
		kv.value = "";
	return e->fn(e->ctx, &kv) != 0;
}

int kv_list(struct store *st, enum stmt_id id, int64_t run_id,
	    store_kv_fn fn, void *ctx)
{
	struct kv_each e = { fn, ctx };
	struct store_read r = {
		.id = id, .what = "list values",
		.bind = bind_int64_1, .bind_arg = &run_id,
		.row = kv_each_row, .row_arg = &e,
	};

	return store_read_rows(st, &r);
}

int store_tag_list(struct store *st, int64_t run_id, store_kv_fn fn, void *ctx)
{
	return kv_list(st, SQL_TAG_LIST, run_id, fn, ctx);
}

int store_property_list(struct store *st, int64_t run_id, store_kv_fn fn,
			void *ctx)
{
	return kv_list(st, SQL_PROPERTY_LIST, run_id, fn, ctx);
}
