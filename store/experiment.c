/*
 * experiment.c - experiments: named groups of runs.
 */
#include <stdlib.h>
#include <string.h>

#include "mlfs/parse.h"
#include "mlfs/timefmt.h"
#include "store_internal.h"

void store_experiment_release(struct store_experiment *e)
{
	free(e->name);
	e->name = NULL;
}

static int experiment_from_row(sqlite3_stmt *s, struct store_experiment *out)
{
	out->id = sqlite3_column_int64(s, 0);
	out->name = col_strdup(s, 1);
	out->created_ms = sqlite3_column_int64(s, 2);
	out->updated_ms = sqlite3_column_int64(s, 3);
	out->run_count = sqlite3_column_int64(s, 4);
	return out->name ? STORE_OK : STORE_NOMEM;
}

/* The list of experiments changed: the experiments/ directory's mtime. */
static int workspace_touch(struct conn *c, int64_t now)
{
	sqlite3_stmt *s = stmt_get(c, SQL_WORKSPACE_TOUCH);

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, now);
	return stmt_exec(c, s, "touch workspace");
}

/* Runs a one-row experiment query bound by @bind and fills @out. */
static int experiment_get_one(struct conn *c, enum stmt_id id,
			      const char *name, int64_t exp_id,
			      struct store_experiment *out)
{
	sqlite3_stmt *s = stmt_get(c, id);
	int rc;

	if (!s)
		return STORE_IO;
	if (name)
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(s, 1, exp_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = experiment_from_row(s, out);
	else if (rc == SQLITE_DONE)
		rc = STORE_NOT_FOUND;
	else
		rc = store_rc_from_sqlite(c, rc, "get experiment");
	sqlite3_reset(s);
	return rc;
}

int experiment_name_locked(struct conn *c, int64_t exp_id, char **name)
{
	struct store_experiment e = { 0 };
	int rc = experiment_get_one(c, SQL_EXPERIMENT_GET_BY_ID, NULL, exp_id,
				    &e);

	if (rc == STORE_OK)
		*name = e.name;	/* handed over: not released */
	return rc;
}

int store_experiment_create(struct store *st, const char *name,
			    struct store_experiment *out)
{
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
	s = stmt_get(c, SQL_EXPERIMENT_INSERT);
	if (!s)
		goto out_rollback;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	rc = stmt_exec(c, s, "create experiment");
	if (rc != STORE_OK)
		goto out_rollback;
	rc = change_add(c, CHANGE_EXPERIMENTS, sqlite3_last_insert_rowid(c->db),
			0, 0, now);
	if (rc == STORE_OK)
		rc = workspace_touch(c, now);
	if (rc == STORE_OK)
		rc = event_add_locked(c, now, "experiment %s created", name);
	if (rc != STORE_OK)
		goto out_rollback;
	if (out) {
		rc = experiment_get_one(c, SQL_EXPERIMENT_GET, name, 0, out);
		if (rc != STORE_OK)
			goto out_rollback;
	}
	rc = tx_commit(c);
	if (rc != STORE_OK && out)
		store_experiment_release(out);
out_rollback:
	tx_rollback(c);
out_put:
	conn_put(st, c);
	return rc;
}

int store_experiment_get(struct store *st, const char *name,
			 struct store_experiment *out)
{
	struct conn *c;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = experiment_get_one(c, SQL_EXPERIMENT_GET, name, 0, out);
	conn_put(st, c);
	return rc;
}

int store_experiment_get_by_id(struct store *st, int64_t id,
			       struct store_experiment *out)
{
	struct conn *c;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = experiment_get_one(c, SQL_EXPERIMENT_GET_BY_ID, NULL, id, out);
	conn_put(st, c);
	return rc;
}

int store_experiment_delete(struct store *st, const char *name)
{
	struct store_experiment e = { 0 };
	struct conn *c;
	sqlite3_stmt *s;
	int rc;

	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	/* Checked inside the write transaction so no run can slip in. */
	rc = experiment_get_one(c, SQL_EXPERIMENT_GET, name, 0, &e);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = STORE_NOT_EMPTY;
	if (e.run_count > 0)
		goto out_rollback;
	rc = STORE_IO;
	s = stmt_get(c, SQL_EXPERIMENT_DELETE);
	if (!s)
		goto out_rollback;
	sqlite3_bind_int64(s, 1, e.id);
	rc = stmt_exec(c, s, "delete experiment");
	if (rc != STORE_OK)
		goto out_rollback;
	rc = change_add(c, CHANGE_EXPERIMENTS, e.id, 0, 0, time_now_ms());
	if (rc == STORE_OK)
		rc = workspace_touch(c, time_now_ms());
	if (rc == STORE_OK)
		rc = event_add_locked(c, time_now_ms(), "experiment %s removed",
				      name);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = tx_commit(c);
out_rollback:
	tx_rollback(c);
	store_experiment_release(&e);
out_put:
	conn_put(st, c);
	return rc;
}

struct experiment_each {
	store_experiment_fn fn;
	void *ctx;
};

static int experiment_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct experiment_each *e = arg;
	struct store_experiment one = {
		.id = sqlite3_column_int64(s, 0),
		.name = (char *)sqlite3_column_text(s, 1),
		.created_ms = sqlite3_column_int64(s, 2),
		.updated_ms = sqlite3_column_int64(s, 3),
		.run_count = sqlite3_column_int64(s, 4),
	};

	(void)st;
	return e->fn(e->ctx, &one) != 0;
}

int store_experiment_list(struct store *st, store_experiment_fn fn, void *ctx)
{
	struct experiment_each e = { fn, ctx };
	struct store_read r = {
		.id = SQL_EXPERIMENT_LIST, .what = "list experiments",
		.row = experiment_each_row, .row_arg = &e,
	};

	return store_read_rows(st, &r);
}
