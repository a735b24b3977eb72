/*
 * run.c - runs and their lifecycle.
 *
 * Lifecycle (statuses in Azure ML's spelling):
 *
 *   submitted:   Queued -> Preparing -> Running -> Finalizing -> Completed
 *                   |          |           |           \-----> Failed
 *                   \----------+-----------+--> CancelRequested -> Canceled
 *   interactive: Running --(user writes status)--> Completed | Failed | Canceled
 *
 * Invariants
 *  1. A run's number is taken from experiment.next_number inside the
 *     transaction that inserts the run, so numbers are dense and never
 *     reused within an experiment.
 *  2. A finished run (Completed, Failed, Canceled) never changes status
 *     again; store_run_set_status() accepts the same status as a no-op so
 *     that scripts can repeat themselves safely.
 *  3. Every change to a run bumps run.updated_ms and experiment.updated_ms
 *     (run_touch) and records a CHANGE_RUN row, in the same transaction.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlfs/parse.h"
#include "mlfs/timefmt.h"
#include "store_internal.h"

static const char *const status_names[RUN_STATUS_COUNT] = {
	[RUN_NOT_STARTED] = "NotStarted",
	[RUN_QUEUED] = "Queued",
	[RUN_PREPARING] = "Preparing",
	[RUN_RUNNING] = "Running",
	[RUN_FINALIZING] = "Finalizing",
	[RUN_CANCEL_REQUESTED] = "CancelRequested",
	[RUN_COMPLETED] = "Completed",
	[RUN_FAILED] = "Failed",
	[RUN_CANCELED] = "Canceled",
	[RUN_NOT_RESPONDING] = "NotResponding",
};

const char *run_status_name(enum run_status s)
{
	return (unsigned)s < RUN_STATUS_COUNT ? status_names[s] : "Unknown";
}

int run_status_parse(const char *s, size_t len)
{
	for (int i = 0; i < RUN_STATUS_COUNT; i++)
		if (strlen(status_names[i]) == len &&
		    memcmp(status_names[i], s, len) == 0)
			return i;
	return -1;
}

int run_status_is_terminal(enum run_status s)
{
	return s == RUN_COMPLETED || s == RUN_FAILED || s == RUN_CANCELED;
}

void store_run_release(struct store_run *r)
{
	free(r->name);
	free(r->display_name);
	free(r->compute_target);
	free(r->error);
	free(r->snapshot);
	free(r->config);
	r->name = r->display_name = r->compute_target = r->error = NULL;
	r->snapshot = r->config = NULL;
}

int run_from_row(sqlite3_stmt *s, struct store_run *out)
{
	memset(out, 0, sizeof(*out));
	out->id = sqlite3_column_int64(s, 0);
	out->name = col_strdup(s, 1);
	out->experiment_id = sqlite3_column_int64(s, 2);
	out->number = sqlite3_column_int64(s, 3);
	out->status = (enum run_status)sqlite3_column_int(s, 4);
	out->interactive = sqlite3_column_int(s, 5);
	out->display_name = col_strdup(s, 6);
	out->compute_target = col_strdup(s, 7);
	out->parent_id = col_int64_or(s, 8, 0);
	out->created_ms = sqlite3_column_int64(s, 9);
	out->started_ms = col_int64_or(s, 10, -1);
	out->ended_ms = col_int64_or(s, 11, -1);
	out->updated_ms = sqlite3_column_int64(s, 12);
	out->has_exit_code = sqlite3_column_type(s, 13) != SQLITE_NULL;
	out->exit_code = sqlite3_column_int(s, 13);
	out->error = col_strdup(s, 14);
	out->snapshot = col_strdup(s, 15);
	out->config = col_strdup(s, 16);
	out->max_duration_s = col_int64_or(s, 17, 0);
	out->supervisor_pid = col_int64_or(s, 18, 0);
	if (!out->name) {
		store_run_release(out);
		return STORE_NOMEM;
	}
	return STORE_OK;
}

static int run_get_row(struct conn *c, sqlite3_stmt *s, struct store_run *out)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		rc = run_from_row(s, out);
	else if (rc == SQLITE_DONE)
		rc = STORE_NOT_FOUND;
	else
		rc = store_rc_from_sqlite(c, rc, "get run");
	sqlite3_reset(s);
	return rc;
}

int run_get_locked(struct conn *c, int64_t run_id, struct store_run *out)
{
	sqlite3_stmt *s = stmt_get(c, SQL_RUN_GET);

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, run_id);
	return run_get_row(c, s, out);
}

int run_event_locked(struct conn *c, int64_t exp_id, const char *name,
			    int64_t now, const char *fmt, ...)
{
	char what[256];
	char *exp = NULL;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	rc = experiment_name_locked(c, exp_id, &exp);
	if (rc == STORE_OK)
		rc = event_add_locked(c, now, "experiments/%s/runs/%s %s", exp,
				      name, what);
	free(exp);
	return rc;
}

int run_experiment_locked(struct conn *c, int64_t run_id, int64_t *exp_id)
{
	struct store_run run;
	int rc = run_get_locked(c, run_id, &run);

	if (rc == STORE_OK) {
		*exp_id = run.experiment_id;
		store_run_release(&run);
	}
	return rc;
}

int run_touch(struct conn *c, int64_t run_id, int64_t exp_id, int64_t now_ms)
{
	sqlite3_stmt *s = stmt_get(c, SQL_RUN_TOUCH);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_int64(s, 2, now_ms);
	rc = stmt_exec(c, s, "touch run");
	if (rc != STORE_OK)
		return rc;
	s = stmt_get(c, SQL_EXPERIMENT_TOUCH);
	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, exp_id);
	sqlite3_bind_int64(s, 2, now_ms);
	return stmt_exec(c, s, "touch experiment");
}

int next_run_number(struct conn *c, int64_t exp_id, int64_t now,
			   int64_t *number)
{
	sqlite3_stmt *s = stmt_get(c, SQL_EXPERIMENT_NEXT_NUMBER);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, exp_id);
	sqlite3_bind_int64(s, 2, now);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*number = sqlite3_column_int64(s, 0);
		rc = STORE_OK;
	} else {
		rc = rc == SQLITE_DONE ? STORE_NOT_FOUND
				       : store_rc_from_sqlite(c, rc, "number run");
	}
	sqlite3_reset(s);
	return rc;
}

int run_id_by_name_locked(struct conn *c, const char *name, int64_t *run_id)
{
	sqlite3_stmt *s = stmt_get(c, SQL_RUN_BY_NAME);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*run_id = sqlite3_column_int64(s, 0);
		rc = STORE_OK;
	} else {
		rc = rc == SQLITE_DONE ? STORE_NOT_FOUND
				       : store_rc_from_sqlite(c, rc, "find run");
	}
	sqlite3_reset(s);
	return rc;
}

int store_run_create_interactive(struct store *st, int64_t exp_id,
				 const char *name, struct store_run *out)
{
	int64_t now = time_now_ms();
	int64_t number = 0, run_id = 0;
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
	rc = run_id_by_name_locked(c, name, &run_id);
	if (rc == STORE_OK)
		rc = STORE_EXISTS;
	if (rc != STORE_NOT_FOUND)
		goto out_rollback;
	rc = next_run_number(c, exp_id, now, &number);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = STORE_IO;
	s = stmt_get(c, SQL_RUN_INSERT);
	if (!s)
		goto out_rollback;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, exp_id);
	sqlite3_bind_int64(s, 3, number);
	sqlite3_bind_int(s, 4, RUN_RUNNING);
	sqlite3_bind_int(s, 5, 1);
	sqlite3_bind_int64(s, 6, now);
	sqlite3_bind_int64(s, 7, now);
	rc = sqlite3_step(s);
	run_id = sqlite3_column_int64(s, 0);
	rc = rc == SQLITE_ROW ? STORE_OK : store_rc_from_sqlite(c, rc, "create run");
	sqlite3_reset(s);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = change_add(c, CHANGE_RUN, exp_id, run_id, run_id, now);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = run_event_locked(c, exp_id, name, now, "created (interactive, %s)",
			      run_status_name(RUN_RUNNING));
	if (rc != STORE_OK)
		goto out_rollback;
	if (out) {
		rc = run_get_locked(c, run_id, out);
		if (rc != STORE_OK)
			goto out_rollback;
	}
	rc = tx_commit(c);
	if (rc != STORE_OK && out)
		store_run_release(out);
out_rollback:
	tx_rollback(c);
out_put:
	conn_put(st, c);
	return rc;
}

int store_run_get(struct store *st, int64_t run_id, struct store_run *out)
{
	struct conn *c;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = run_get_locked(c, run_id, out);
	conn_put(st, c);
	return rc;
}

/* Run name ?1 in experiment ?2. */
struct run_key {
	const char *name;
	int64_t exp_id;
};

static void run_key_bind(sqlite3_stmt *s, const void *arg)
{
	const struct run_key *k = arg;

	sqlite3_bind_text(s, 1, k->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, k->exp_id);
}

static int run_row(struct store *st, sqlite3_stmt *s, void *out)
{
	(void)st;
	return run_from_row(s, out) == STORE_OK ? 1 : STORE_NOMEM;
}

int store_run_find(struct store *st, int64_t exp_id, const char *name,
		   struct store_run *out)
{
	struct run_key k = { name, exp_id };
	struct store_read r = {
		.id = SQL_RUN_FIND, .what = "get run",
		.bind = run_key_bind, .bind_arg = &k,
		.row = run_row, .row_arg = out, .need_row = 1,
	};

	return store_read_rows(st, &r);
}

/* Fills a run entry from the columns id, name, number, created, updated. */
void run_entry_from_row(sqlite3_stmt *s, struct store_run_entry *r)
{
	r->id = sqlite3_column_int64(s, 0);
	r->name = (const char *)sqlite3_column_text(s, 1);
	r->number = sqlite3_column_int64(s, 2);
	r->created_ms = sqlite3_column_int64(s, 3);
	r->updated_ms = sqlite3_column_int64(s, 4);
}

struct run_each {
	store_run_fn fn;
	void *ctx;
};

static int run_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct run_each *e = arg;
	struct store_run_entry r;

	(void)st;
	run_entry_from_row(s, &r);
	return e->fn(e->ctx, &r) != 0;
}

int run_entries_each(struct store *st, enum stmt_id id, int64_t key,
		     store_run_fn fn, void *ctx)
{
	struct run_each e = { fn, ctx };
	struct store_read r = {
		.id = id, .what = "list runs",
		.bind = bind_int64_1, .bind_arg = &key,
		.row = run_each_row, .row_arg = &e,
	};

	return store_read_rows(st, &r);
}

int store_run_list(struct store *st, int64_t exp_id, store_run_fn fn, void *ctx)
{
	return run_entries_each(st, SQL_RUN_LIST, exp_id, fn, ctx);
}

static int name_row(struct store *st, sqlite3_stmt *s, void *name)
{
	(void)st;
	*(char **)name = col_strdup(s, 0);
	return *(char **)name ? 1 : STORE_NOMEM;
}

int store_run_latest(struct store *st, int64_t exp_id, char **name)
{
	struct store_read r = {
		.id = SQL_RUN_LATEST, .what = "latest run",
		.bind = bind_int64_1, .bind_arg = &exp_id,
		.row = name_row, .row_arg = name, .need_row = 1,
	};

	return store_read_rows(st, &r);
}

/* May a user move @run to @to? See the lifecycle at the top. */
static int user_transition_allowed(const struct store_run *run,
				   enum run_status to)
{
	if (to != RUN_COMPLETED && to != RUN_FAILED && to != RUN_CANCELED)
		return STORE_INVALID;
	if (run_status_is_terminal(run->status))
		return run->status == to ? STORE_OK : STORE_DENIED;
	if (!run->interactive)
		return STORE_DENIED;
	return STORE_OK;
}

int store_run_set_status(struct store *st, int64_t run_id,
			 enum run_status status)
{
	struct store_run run = { 0 };
	int64_t now = time_now_ms();
	struct conn *c;
	sqlite3_stmt *s;
	int rc;

	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = run_get_locked(c, run_id, &run);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = user_transition_allowed(&run, status);
	if (rc != STORE_OK || run.status == status)
		goto out_rollback;
	rc = STORE_IO;
	s = stmt_get(c, SQL_RUN_SET_STATUS);
	if (!s)
		goto out_rollback;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_int(s, 2, status);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_int64(s, 4, now);
	rc = stmt_exec(c, s, "set run status");
	if (rc != STORE_OK)
		goto out_rollback;
	rc = run_touch(c, run_id, run.experiment_id, now);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = change_add(c, CHANGE_RUN, run.experiment_id, run_id, run_id, now);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = run_event_locked(c, run.experiment_id, run.name, now, "%s -> %s",
			      run_status_name(run.status),
			      run_status_name(status));
	if (rc != STORE_OK)
		goto out_rollback;
	rc = tx_commit(c);
out_rollback:
	tx_rollback(c);
	store_run_release(&run);
out_put:
	conn_put(st, c);
	return rc;
}
