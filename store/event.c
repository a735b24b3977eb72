/*
 * event.c - the workspace's event log (the mount's /events) and the
 * change feed that lets every process see what others changed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlfs/timefmt.h"
#include "store_internal.h"

static int event_prune(struct conn *c)
{
	sqlite3_stmt *s = stmt_get(c, SQL_EVENT_PRUNE);

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, STORE_EVENTS_KEEP);
	return stmt_exec(c, s, "prune events");
}

int event_add_locked(struct conn *c, int64_t now, const char *fmt, ...)
{
	char line[1024];
	sqlite3_stmt *s;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);	/* long lines are cut */
	va_end(ap);
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';	/* one event, one line */
	s = stmt_get(c, SQL_EVENT_INSERT);
	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_text(s, 2, line, -1, SQLITE_STATIC);
	rc = stmt_exec(c, s, "add event");
	/* A range delete on the rowid: cheap enough to do every time. */
	if (rc == STORE_OK)
		rc = event_prune(c);
	if (rc == STORE_OK)
		rc = change_add(c, CHANGE_EVENTS, 0, 0, 0, now);
	return rc;
}

int store_event_add(struct store *st, const char *line)
{
	struct conn *c;
	int rc;

	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = event_add_locked(c, time_now_ms(), "%s", line);
	if (rc == STORE_OK)
		rc = tx_commit(c);
	tx_rollback(c);
out_put:
	conn_put(st, c);
	return rc;
}

struct event_each {
	store_event_fn fn;
	void *ctx;
};

static int event_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct event_each *e = arg;
	struct store_event ev = {
		.id = sqlite3_column_int64(s, 0),
		.ts_ms = sqlite3_column_int64(s, 1),
		.line = (const char *)sqlite3_column_text(s, 2),
	};

	(void)st;
	return e->fn(e->ctx, &ev) != 0;
}

int store_event_list(struct store *st, int64_t limit, store_event_fn fn,
		     void *ctx)
{
	struct event_each e = { fn, ctx };
	struct store_read r = {
		.id = SQL_EVENT_LIST, .what = "list events",
		.bind = bind_int64_1, .bind_arg = &limit,
		.row = event_each_row, .row_arg = &e,
	};

	return store_read_rows(st, &r);
}

struct change_each {
	int64_t *seq;
	store_change_fn fn;
	void *ctx;
};

/* Moves *seq past each change before handing it on, stop or not. */
static int change_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct change_each *e = arg;
	struct store_change ch = {
		.seq = sqlite3_column_int64(s, 0),
		.kind = (enum change_kind)sqlite3_column_int(s, 1),
		.experiment_id = sqlite3_column_int64(s, 2),
		.run_id = sqlite3_column_int64(s, 3),
		.object_id = sqlite3_column_int64(s, 4),
		.mine = sqlite3_column_int64(s, 5) == st->origin,
	};

	*e->seq = ch.seq;
	return e->fn(e->ctx, &ch) != 0;
}

int store_changes_since(struct store *st, int64_t *seq, store_change_fn fn,
			void *ctx)
{
	struct change_each e = { seq, fn, ctx };
	struct store_read r = {
		.id = SQL_CHANGE_SINCE, .what = "read changes",
		.bind = bind_int64_1, .bind_arg = seq,
		.row = change_each_row, .row_arg = &e,
	};

	return store_read_rows(st, &r);
}

int store_changes_head(struct store *st, int64_t *seq)
{
	struct store_read r = {
		.id = SQL_CHANGE_HEAD, .what = "change head",
		.row = int64_row, .row_arg = seq,
	};

	return store_read_rows(st, &r);
}

int store_changes_prune(struct store *st, int64_t keep)
{
	struct conn *c;
	sqlite3_stmt *s;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = STORE_IO;
	s = stmt_get(c, SQL_CHANGE_PRUNE);
	if (s) {
		/* The newest row always stays: seq must never go back. */
		sqlite3_bind_int64(s, 1, keep > 0 ? keep : 1);
		rc = stmt_exec(c, s, "prune changes");
	}
	conn_put(st, c);
	return rc;
}
