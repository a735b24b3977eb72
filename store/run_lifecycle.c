/*
 * run_lifecycle.c - submitted runs: from the request to the end.
 *
 *   store_run_submit         -> Queued
 *   store_run_claim          Queued -> Preparing          (a supervisor took it)
 *   store_run_started        Preparing -> Running         (its process runs)
 *   store_run_finalizing     Running | CancelRequested -> Finalizing
 *   store_run_finish         any active -> Completed | Failed | Canceled
 *   store_run_cancel         Queued -> Canceled; Preparing | Running |
 *                            Finalizing -> CancelRequested; interactive
 *                            Running -> Canceled
 *
 * Invariants
 *  1. A run is claimed by exactly one supervisor: the count of active runs
 *     and the pick of the oldest Queued one happen in one BEGIN IMMEDIATE
 *     transaction, which serializes every claimer in every process.
 *  2. A compute target never has more active runs (Preparing through
 *     CancelRequested) than its limit: only store_run_claim makes a run
 *     active.
 *  3. Every transition is one transaction that also touches the run and
 *     its experiment, adds a CHANGE_RUN row and an events line.
 *  4. Once terminal, a run never moves again (store_run_finish refuses).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlfs/parse.h"
#include "mlfs/timefmt.h"
#include "store_internal.h"

_Static_assert(RUN_QUEUED == 1 && RUN_PREPARING == 2 &&
		       RUN_CANCEL_REQUESTED == 5,
	       "statements.c spells these statuses as numbers");

/* Touch, change row and "A -> B" events line for a run that just moved. */
static int run_moved_locked(struct conn *c, const struct store_run *run,
			    enum run_status to, int64_t now)
{
	int rc = run_touch(c, run->id, run->experiment_id, now);

	if (rc == STORE_OK)
		rc = change_add(c, CHANGE_RUN, run->experiment_id, run->id,
				run->id, now);
	if (rc == STORE_OK)
		rc = run_event_locked(c, run->experiment_id, run->name, now,
				      "%s -> %s", run_status_name(run->status),
				      run_status_name(to));
	return rc;
}

static int set_phase_locked(struct conn *c, struct store_run *run,
			    enum run_status to, int64_t now)
{
	sqlite3_stmt *s = stmt_get(c, SQL_RUN_SET_PHASE);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, run->id);
	sqlite3_bind_int(s, 2, to);
	sqlite3_bind_int64(s, 3, now);
	rc = stmt_exec(c, s, "set run status");
	if (rc == STORE_OK)
		rc = run_moved_locked(c, run, to, now);
	return rc;
}

static int set_end_locked(struct conn *c, struct store_run *run,
			  enum run_status to, int has_exit_code, int exit_code,
			  const char *error, int64_t now)
{
	sqlite3_stmt *s = stmt_get(c, SQL_RUN_SET_END);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, run->id);
	sqlite3_bind_int(s, 2, to);
	sqlite3_bind_int64(s, 3, now);
	if (has_exit_code)
		sqlite3_bind_int(s, 4, exit_code);
	if (error)
		sqlite3_bind_text(s, 5, error, -1, SQLITE_STATIC);
	rc = stmt_exec(c, s, "end run");
	if (rc == STORE_OK)
		rc = run_moved_locked(c, run, to, now);
	return rc;
}

/* ---- submitting -------------------------------------------------------- */

static int compute_exists_locked(struct conn *c, const char *name)
{
	sqlite3_stmt *s = stmt_get(c, SQL_COMPUTE_GET);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	rc = rc == SQLITE_ROW ? STORE_OK
	     : rc == SQLITE_DONE ? STORE_NOT_FOUND
				 : store_rc_from_sqlite(c, rc, "find compute");
	sqlite3_reset(s);
	return rc;
}

/*
 * "EXP_MILLISECONDS_HEX8", as Azure ML names runs; the experiment part is
 * cut so the whole stays a valid name.
 */
static int make_run_name(struct conn *c, int64_t exp_id, int64_t now,
			 char *buf, size_t len)
{
	char *exp = NULL;
	unsigned int r;
	int rc = experiment_name_locked(c, exp_id, &exp);

	if (rc != STORE_OK)
		return rc;
	sqlite3_randomness(sizeof(r), &r);
	snprintf(buf, len, "%.200s_%lld_%08x", exp, (long long)now, r);
	free(exp);
	return STORE_OK;
}

static int insert_submitted_locked(struct conn *c, int64_t exp_id,
				   const struct run_submission *sub,
				   const char *name, int64_t number,
				   int64_t now, int64_t *run_id)
{
	sqlite3_stmt *s = stmt_get(c, SQL_RUN_SUBMIT_INSERT);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, exp_id);
	sqlite3_bind_int64(s, 3, number);
	if (sub->display_name)
		sqlite3_bind_text(s, 4, sub->display_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, sub->compute_target, -1, SQLITE_STATIC);
	if (sub->parent_id)
		sqlite3_bind_int64(s, 6, sub->parent_id);
	sqlite3_bind_int64(s, 7, now);
	if (sub->snapshot)
		sqlite3_bind_text(s, 8, sub->snapshot, -1, SQLITE_STATIC);
	if (sub->config)
		sqlite3_bind_text(s, 9, sub->config, -1, SQLITE_STATIC);
	if (sub->max_duration_s > 0)
		sqlite3_bind_int64(s, 10, sub->max_duration_s);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*run_id = sqlite3_column_int64(s, 0);
		rc = STORE_OK;
	} else {
		rc = store_rc_from_sqlite(c, rc, "submit run");
	}
	sqlite3_reset(s);
	return rc;
}

static int annotate_locked(struct conn *c, int64_t run_id,
			   const struct run_submission *sub, int64_t now)
{
	int rc = STORE_OK;

	for (size_t i = 0; rc == STORE_OK && i < sub->ntags; i++)
		rc = tag_set_locked(c, run_id, sub->tags[i].key,
				    sub->tags[i].value, sub->tags[i].len, now);
	for (size_t i = 0; rc == STORE_OK && i < sub->nproperties; i++)
		rc = property_add_locked(c, run_id, sub->properties[i].key,
					 sub->properties[i].value,
					 sub->properties[i].len, now);
	return rc;
}

/* Checks what must exist before the run is made; inside the tx. */
static int check_submission_locked(struct conn *c, int64_t exp_id,
				   const struct run_submission *sub)
{
	struct store_run parent;
	char *exp = NULL;
	int rc;

	rc = experiment_name_locked(c, exp_id, &exp);
	free(exp);
	if (rc != STORE_OK)
		return rc;
	rc = compute_exists_locked(c, sub->compute_target);
	if (rc != STORE_OK || !sub->parent_id)
		return rc;
	rc = run_get_locked(c, sub->parent_id, &parent);
	if (rc != STORE_OK)
		return rc;
	/* Child runs live in their parent's experiment (parent -> ../ID). */
	if (parent.experiment_id != exp_id)
		rc = STORE_INVALID;
	store_run_release(&parent);
	return rc;
}

int store_run_submit(struct store *st, int64_t exp_id,
		     const struct run_submission *sub, struct store_run *out)
{
	int64_t now = time_now_ms();
	int64_t number = 0, run_id = 0;
	char made[320];
	const char *name = sub->name;
	struct conn *c;
	int rc;

	if (name && !name_is_valid(name, strlen(name)))
		return STORE_INVALID;
	if (!sub->compute_target)
		return STORE_INVALID;
	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = check_submission_locked(c, exp_id, sub);
	if (rc != STORE_OK)
		goto out_rollback;
	if (!name) {
		rc = make_run_name(c, exp_id, now, made, sizeof(made));
		if (rc != STORE_OK)
			goto out_rollback;
		name = made;
	}
	rc = run_id_by_name_locked(c, name, &run_id);
	if (rc == STORE_OK)
		rc = STORE_EXISTS;
	if (rc != STORE_NOT_FOUND)
		goto out_rollback;
	rc = next_run_number(c, exp_id, now, &number);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = insert_submitted_locked(c, exp_id, sub, name, number, now,
				     &run_id);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = annotate_locked(c, run_id, sub, now);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = change_add(c, CHANGE_RUN, exp_id, run_id, run_id, now);
	if (rc != STORE_OK)
		goto out_rollback;
	if (sub->parent_id) {
		/* The parent's children/ listing changed too. */
		rc = change_add(c, CHANGE_RUN, exp_id, sub->parent_id,
				sub->parent_id, now);
		if (rc != STORE_OK)
			goto out_rollback;
	}
	rc = run_event_locked(c, exp_id, name, now, "submitted to %s (%s)",
			      sub->compute_target,
			      run_status_name(RUN_QUEUED));
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

/* ---- supervisors ------------------------------------------------------- */

static int int64_query_locked(struct conn *c, enum stmt_id id,
			      const char *text, int64_t *out)
{
	sqlite3_stmt *s = stmt_get(c, id);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		rc = STORE_OK;
	} else {
		rc = rc == SQLITE_DONE ? STORE_NOT_FOUND
				       : store_rc_from_sqlite(c, rc, "query");
	}
	sqlite3_reset(s);
	return rc;
}

static int compute_limit_locked(struct conn *c, const char *compute, int cpus,
				int64_t *limit)
{
	sqlite3_stmt *s = stmt_get(c, SQL_COMPUTE_GET);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_text(s, 1, compute, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*limit = sqlite3_column_int64(s, 2);
		if (*limit <= 0)
			*limit = cpus > 0 ? cpus : 1;
		rc = STORE_OK;
	} else {
		rc = rc == SQLITE_DONE ? STORE_NOT_FOUND
				       : store_rc_from_sqlite(c, rc, "compute");
	}
	sqlite3_reset(s);
	return rc;
}

static int set_supervisor_locked(struct conn *c, int64_t run_id,
				 const struct proc_id *sup, int64_t now)
{
	sqlite3_stmt *s = stmt_get(c, SQL_RUN_SET_SUPERVISOR);

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_int64(s, 2, sup->pid);
	sqlite3_bind_int64(s, 3, sup->start);
	sqlite3_bind_text(s, 4, sup->boot_id ? sup->boot_id : "", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, now);
	return stmt_exec(c, s, "claim run");
}

int store_run_claim(struct store *st, const char *compute, int cpus,
		    const struct proc_id *sup, int64_t *run_id)
{
	struct store_run run = { 0 };
	int64_t now = time_now_ms();
	int64_t limit = 0, active = 0, id = 0;
	struct conn *c;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = compute_limit_locked(c, compute, cpus, &limit);
	if (rc == STORE_OK)
		rc = int64_query_locked(c, SQL_RUN_COUNT_ACTIVE, compute,
					&active);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = STORE_NOT_FOUND;
	if (active >= limit)
		goto out_rollback;
	rc = int64_query_locked(c, SQL_RUN_OLDEST_QUEUED, compute, &id);
	if (rc == STORE_OK)
		rc = run_get_locked(c, id, &run);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = set_supervisor_locked(c, id, sup, now);
	if (rc == STORE_OK)
		rc = run_moved_locked(c, &run, RUN_PREPARING, now);
	if (rc == STORE_OK)
		rc = tx_commit(c);
	if (rc == STORE_OK)
		*run_id = id;
out_rollback:
	tx_rollback(c);
	store_run_release(&run);
out_put:
	conn_put(st, c);
	return rc;
}

/*
 * Runs @fn on run @run_id inside a transaction; @fn sees the run as it is
 * and decides (STORE_OK commits).
 */
typedef int (*run_step_fn)(struct conn *c, struct store_run *run,
			   const void *arg, int64_t now);

static int run_step(struct store *st, int64_t run_id, run_step_fn fn,
		    const void *arg)
{
	struct store_run run = { 0 };
	int64_t now = time_now_ms();
	struct conn *c;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = run_get_locked(c, run_id, &run);
	if (rc == STORE_OK)
		rc = fn(c, &run, arg, now);
	if (rc == STORE_OK)
		rc = tx_commit(c);
	tx_rollback(c);
	store_run_release(&run);
out_put:
	conn_put(st, c);
	return rc;
}

static int started_step(struct conn *c, struct store_run *run,
			const void *arg, int64_t now)
{
	const struct proc_id *proc = arg;
	sqlite3_stmt *s;
	int rc;

	if (run->status != RUN_PREPARING)
		return STORE_DENIED;
	s = stmt_get(c, SQL_RUN_SET_STARTED);
	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, run->id);
	sqlite3_bind_int64(s, 2, proc->pid);
	sqlite3_bind_int64(s, 3, proc->start);
	sqlite3_bind_int64(s, 4, now);
	rc = stmt_exec(c, s, "start run");
	if (rc == STORE_OK)
		rc = run_moved_locked(c, run, RUN_RUNNING, now);
	return rc;
}

int store_run_started(struct store *st, int64_t run_id,
		      const struct proc_id *proc)
{
	return run_step(st, run_id, started_step, proc);
}

static int finalizing_step(struct conn *c, struct store_run *run,
			   const void *arg, int64_t now)
{
	(void)arg;
	if (run->status != RUN_RUNNING && run->status != RUN_CANCEL_REQUESTED)
		return STORE_DENIED;
	return set_phase_locked(c, run, RUN_FINALIZING, now);
}

int store_run_finalizing(struct store *st, int64_t run_id)
{
	return run_step(st, run_id, finalizing_step, NULL);
}

struct finish_arg {
	enum run_status status;
	int has_exit_code;
	int exit_code;
	const char *error;
};

static int finish_step(struct conn *c, struct store_run *run, const void *arg,
		       int64_t now)
{
	const struct finish_arg *f = arg;

	/* Only a claimed run ends this way (a Queued one through cancel). */
	if (run->status < RUN_PREPARING || run->status > RUN_CANCEL_REQUESTED)
		return STORE_DENIED;
	return set_end_locked(c, run, f->status, f->has_exit_code,
			      f->exit_code, f->error, now);
}

int store_run_finish(struct store *st, int64_t run_id, enum run_status status,
		     int has_exit_code, int exit_code, const char *error)
{
	struct finish_arg f = { status, has_exit_code, exit_code, error };

	if (!run_status_is_terminal(status))
		return STORE_INVALID;
	return run_step(st, run_id, finish_step, &f);
}

static int cancel_step(struct conn *c, struct store_run *run, const void *arg,
		       int64_t now)
{
	enum run_status *after = (enum run_status *)arg;
	int rc = STORE_OK;

	switch (run->status) {
	case RUN_QUEUED:
	case RUN_NOT_STARTED:
		rc = set_end_locked(c, run, RUN_CANCELED, 0, 0,
				    "canceled before it started", now);
		*after = RUN_CANCELED;
		break;
	case RUN_RUNNING:
		if (run->interactive) {
			rc = set_end_locked(c, run, RUN_CANCELED, 0, 0, NULL,
					    now);
			*after = RUN_CANCELED;
			break;
		}
		/* fall through */
	case RUN_PREPARING:
	case RUN_FINALIZING:
		rc = set_phase_locked(c, run, RUN_CANCEL_REQUESTED, now);
		*after = RUN_CANCEL_REQUESTED;
		break;
	case RUN_CANCEL_REQUESTED:
	case RUN_CANCELED:
		*after = run->status;
		rc = STORE_OK;
		break;
	default:
		*after = run->status;
		rc = STORE_DENIED;
		break;
	}
	return rc;
}

int store_run_cancel(struct store *st, int64_t run_id, enum run_status *now)
{
	enum run_status after = RUN_NOT_STARTED;
	int rc = run_step(st, run_id, cancel_step, &after);

	if (now && (rc == STORE_OK || rc == STORE_DENIED))
		*now = after;
	return rc;
}

/* ---- listings ---------------------------------------------------------- */

struct active_each {
	store_active_fn fn;
	void *ctx;
};

static int active_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct active_each *e = arg;
	struct store_active_run r = {
		.id = sqlite3_column_int64(s, 0),
		.name = (const char *)sqlite3_column_text(s, 1),
		.status = (enum run_status)sqlite3_column_int(s, 2),
		.updated_ms = sqlite3_column_int64(s, 3),
		.supervisor = {
			.pid = col_int64_or(s, 4, 0),
			.start = col_int64_or(s, 5, 0),
			.boot_id = (const char *)sqlite3_column_text(s, 6),
		},
		.process = {
			.pid = col_int64_or(s, 7, 0),
			.start = col_int64_or(s, 8, 0),
			.boot_id = (const char *)sqlite3_column_text(s, 6),
		},
	};

	(void)st;
	return e->fn(e->ctx, &r) != 0;
}

int store_run_list_active(struct store *st, store_active_fn fn, void *ctx)
{
	struct active_each e = { fn, ctx };
	struct store_read r = {
		.id = SQL_RUN_LIST_ACTIVE, .what = "active runs",
		.row = active_each_row, .row_arg = &e,
	};

	return store_read_rows(st, &r);
}

int store_run_children(struct store *st, int64_t run_id, store_run_fn fn,
		       void *ctx)
{
	return run_entries_each(st, SQL_RUN_CHILDREN, run_id, fn, ctx);
}

int store_run_get_by_name(struct store *st, const char *name,
			  struct store_run *out)
{
	int64_t run_id = 0;
	struct conn *c;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = run_id_by_name_locked(c, name, &run_id);
	if (rc == STORE_OK)
		rc = run_get_locked(c, run_id, out);
	conn_put(st, c);
	return rc;
}

struct queue_each {
	store_queue_fn fn;
	void *ctx;
};

static int queue_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct queue_each *e = arg;
	struct store_run_entry r;

	(void)st;
	run_entry_from_row(s, &r);
	return e->fn(e->ctx, &r, (enum run_status)sqlite3_column_int(s, 5),
		     (const char *)sqlite3_column_text(s, 6)) != 0;
}

int store_compute_queue(struct store *st, const char *compute,
			store_queue_fn fn, void *ctx)
{
	struct queue_each e = { fn, ctx };
	struct store_read r = {
		.id = SQL_COMPUTE_QUEUE, .what = "queue",
		.bind = bind_text1, .bind_arg = compute,
		.row = queue_each_row, .row_arg = &e,
	};

	return store_read_rows(st, &r);
}
