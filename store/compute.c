/*
 * compute.c - compute targets: where submitted runs execute. The schema
 * makes "local" (this machine) in every workspace.
 */
#include <stdlib.h>
#include <string.h>

#include "mlfs/timefmt.h"
#include "store_internal.h"

void store_compute_release(struct store_compute *c)
{
	free(c->name);
	free(c->type);
	c->name = c->type = NULL;
}

static int compute_from_row(sqlite3_stmt *s, struct store_compute *out)
{
	memset(out, 0, sizeof(*out));
	out->name = col_strdup(s, 0);
	out->type = col_strdup(s, 1);
	out->max_concurrent = sqlite3_column_int(s, 2);
	out->created_ms = sqlite3_column_int64(s, 3);
	out->updated_ms = sqlite3_column_int64(s, 4);
	if (!out->name || !out->type) {
		store_compute_release(out);
		return STORE_NOMEM;
	}
	return STORE_OK;
}

static int compute_row(struct store *st, sqlite3_stmt *s, void *out)
{
	(void)st;
	return compute_from_row(s, out) == STORE_OK ? 1 : STORE_NOMEM;
}

int store_compute_get(struct store *st, const char *name,
		      struct store_compute *out)
{
	struct store_read r = {
		.id = SQL_COMPUTE_GET, .what = "compute",
		.bind = bind_text1, .bind_arg = name,
		.row = compute_row, .row_arg = out, .need_row = 1,
	};

	return store_read_rows(st, &r);
}

struct compute_each {
	store_compute_fn fn;
	void *ctx;
};

static int compute_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct compute_each *e = arg;
	struct store_compute one;
	int stop;

	(void)st;
	if (compute_from_row(s, &one) != STORE_OK)
		return STORE_NOMEM;
	stop = e->fn(e->ctx, &one) != 0;
	store_compute_release(&one);
	return stop;
}

int store_compute_list(struct store *st, store_compute_fn fn, void *ctx)
{
	struct compute_each e = { fn, ctx };
	struct store_read r = {
		.id = SQL_COMPUTE_LIST, .what = "computes",
		.row = compute_each_row, .row_arg = &e,
	};

	return store_read_rows(st, &r);
}

int store_compute_set_max(struct store *st, const char *name, int max)
{
	int64_t now = time_now_ms();
	struct conn *c;
	sqlite3_stmt *s;
	int rc;

	if (max < 0)
		return STORE_INVALID;
	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = STORE_IO;
	s = stmt_get(c, SQL_COMPUTE_SET_MAX);
	if (!s)
		goto out_rollback;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, max);
	sqlite3_bind_int64(s, 3, now);
	rc = stmt_exec(c, s, "set compute limit");
	if (rc != STORE_OK)
		goto out_rollback;
	rc = STORE_NOT_FOUND;
	if (sqlite3_changes(c->db) == 0)
		goto out_rollback;
	rc = change_add(c, CHANGE_COMPUTE, 0, 0, 0, now);
	if (rc == STORE_OK)
		rc = tx_commit(c);
out_rollback:
	tx_rollback(c);
out_put:
	conn_put(st, c);
	return rc;
}
