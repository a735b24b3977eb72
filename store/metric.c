/*
 * metric.c - metric series and their summaries.
 *
 * Design notes
 *  1. Points are stored in chunks, one row per append: the text of the
 *     values (one per line, exactly as logged), their steps, and the time.
 *     A write of 100,000 points is one row, not 100,000, and reading a
 *     series back is a scan of a few blobs; the NAME file is the
 *     concatenation of the chunks' text, so serving it needs no formatting.
 *  2. A chunk's points take sequence numbers first_seq .. first_seq + n - 1,
 *     allocated from metric.count inside the append's transaction, so the
 *     logging order is total even with many writers.
 *  3. steps is NULL when every point of the chunk took the default step
 *     (its sequence number): the common case costs no bytes.
 *  4. Summaries (count, last, min, max, last step, text size) are updated
 *     in the same transaction as the chunk: never a rescan.
 *  5. An append touches three pages (metric row, chunk, change row) and
 *     nothing else: it is the hot path of training scripts. In particular
 *     it does not bump run.updated_ms; what shows metric times (metric
 *     files, metrics.json, runs.csv) reads metric.updated_ms.
 *  6. store_metrics_log() (the run supervisor's batches from $MLFS_METRICS)
 *     groups its points by metric first, so each metric touched gets one
 *     chunk row and one change row per call, whatever the interleaving.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlfs/parse.h"
#include "mlfs/timefmt.h"
#include "store_internal.h"

void store_metric_release(struct store_metric *m)
{
	free(m->name_owned);
	m->name_owned = NULL;
	m->name = NULL;
}

static void metric_from_row(sqlite3_stmt *s, struct store_metric *m)
{
	m->id = sqlite3_column_int64(s, 0);
	m->run_id = sqlite3_column_int64(s, 1);
	m->name = (const char *)sqlite3_column_text(s, 2);
	m->count = sqlite3_column_int64(s, 3);
	m->last = sqlite3_column_double(s, 4);
	m->min = sqlite3_column_double(s, 5);
	m->max = sqlite3_column_double(s, 6);
	m->last_step = sqlite3_column_int64(s, 7);
	m->created_ms = sqlite3_column_int64(s, 8);
	m->updated_ms = sqlite3_column_int64(s, 9);
	m->text_bytes = sqlite3_column_int64(s, 10);
	m->name_owned = NULL;
}

/* metric_from_row() with the name copied, to outlive the statement. */
static int metric_copy_from_row(sqlite3_stmt *s, struct store_metric *out)
{
	metric_from_row(s, out);
	out->name_owned = col_strdup(s, 2);
	out->name = out->name_owned;
	return out->name ? STORE_OK : STORE_NOMEM;
}

/* One-row metric query on the caller's connection. */
static int metric_get_row(struct conn *c, sqlite3_stmt *s,
			  struct store_metric *out)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW) {
		rc = metric_copy_from_row(s, out);
	} else {
		rc = rc == SQLITE_DONE ? STORE_NOT_FOUND
				       : store_rc_from_sqlite(c, rc, "get metric");
	}
	sqlite3_reset(s);
	return rc;
}

static int metric_get_locked(struct conn *c, int64_t run_id, const char *name,
			     size_t name_len, struct store_metric *out)
{
	sqlite3_stmt *s = stmt_get(c, SQL_METRIC_GET);

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_text(s, 2, name, (int)name_len, SQLITE_STATIC);
	return metric_get_row(c, s, out);
}

static int metric_insert_locked(struct conn *c, int64_t run_id,
				const char *name, size_t name_len, int64_t now,
				struct store_metric *out)
{
	sqlite3_stmt *s = stmt_get(c, SQL_METRIC_INSERT);

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_text(s, 2, name, (int)name_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now);
	return metric_get_row(c, s, out);
}

/* The chunk's text and (if any point has its own step) its steps array. */
struct chunk_build {
	char *text;
	size_t text_len;
	int64_t *steps;
};

static int chunk_build(const struct metric_point *pts, size_t n,
		       int64_t first_seq, struct chunk_build *cb)
{
	size_t len = 0;
	int explicit_steps = 0;

	for (size_t i = 0; i < n; i++) {
		len += pts[i].text_len + 1;
		explicit_steps |= pts[i].has_step &&
				  pts[i].step != first_seq + (int64_t)i;
	}
	cb->text = malloc(len ? len : 1);
	cb->steps = explicit_steps ? malloc(n * sizeof(int64_t)) : NULL;
	if (!cb->text || (explicit_steps && !cb->steps))
		return STORE_NOMEM;
	cb->text_len = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(cb->text + cb->text_len, pts[i].text, pts[i].text_len);
		cb->text_len += pts[i].text_len;
		cb->text[cb->text_len++] = '\n';
		if (cb->steps)
			cb->steps[i] = pts[i].has_step ? pts[i].step
						       : first_seq + (int64_t)i;
	}
	return STORE_OK;
}

static void summary_update(struct store_metric *m,
			   const struct metric_point *pts, size_t n,
			   const struct chunk_build *cb)
{
	for (size_t i = 0; i < n; i++) {
		double v = pts[i].value;

		if (m->count == 0 && i == 0) {
			m->min = m->max = v;
		} else {
			m->min = fmin(m->min, v);
			m->max = fmax(m->max, v);
		}
	}
	m->last = pts[n - 1].value;
	m->last_step = pts[n - 1].has_step ? pts[n - 1].step
					   : m->count + (int64_t)n - 1;
	m->count += (int64_t)n;
	m->text_bytes += (int64_t)cb->text_len;
}

static int chunk_insert(struct conn *c, int64_t metric_id, int64_t first_seq,
			size_t n, int64_t now, const struct chunk_build *cb)
{
	sqlite3_stmt *s = stmt_get(c, SQL_CHUNK_INSERT);

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, metric_id);
	sqlite3_bind_int64(s, 2, first_seq);
	sqlite3_bind_int64(s, 3, (int64_t)n);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_blob64(s, 5, cb->text, cb->text_len, SQLITE_STATIC);
	if (cb->steps)
		sqlite3_bind_blob64(s, 6, cb->steps, n * sizeof(int64_t),
				    SQLITE_STATIC);
	return stmt_exec(c, s, "append metric points");
}

static int metric_update(struct conn *c, const struct store_metric *m,
			 const struct metric_point *last, int64_t now)
{
	sqlite3_stmt *s = stmt_get(c, SQL_METRIC_UPDATE);

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, m->id);
	sqlite3_bind_int64(s, 2, m->count);
	sqlite3_bind_double(s, 3, m->last);
	sqlite3_bind_text(s, 4, last->text, (int)last->text_len, SQLITE_STATIC);
	sqlite3_bind_double(s, 5, m->min);
	sqlite3_bind_double(s, 6, m->max);
	sqlite3_bind_int64(s, 7, m->last_step);
	sqlite3_bind_int64(s, 8, now);
	sqlite3_bind_int64(s, 9, m->text_bytes);
	return stmt_exec(c, s, "update metric summary");
}

int metric_append_locked(struct conn *c, int64_t metric_id,
			 const struct metric_point *pts, size_t n, int64_t ts_ms)
{
	struct chunk_build cb = { 0 };
	struct store_metric m = { 0 };
	int64_t exp_id = 0;
	sqlite3_stmt *s = stmt_get(c, SQL_METRIC_GET_BY_ID);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, metric_id);
	rc = metric_get_row(c, s, &m);
	if (rc != STORE_OK)
		return rc;
	rc = run_experiment_locked(c, m.run_id, &exp_id);
	if (rc != STORE_OK)
		goto out_release;
	rc = chunk_build(pts, n, m.count, &cb);
	if (rc != STORE_OK)
		goto out_release;
	rc = chunk_insert(c, m.id, m.count, n, ts_ms, &cb);
	if (rc != STORE_OK)
		goto out_release;
	summary_update(&m, pts, n, &cb);
	rc = metric_update(c, &m, &pts[n - 1], ts_ms);
	if (rc != STORE_OK)
		goto out_release;
	rc = change_add(c, CHANGE_METRIC, exp_id, m.run_id, m.id, ts_ms);
out_release:
	free(cb.text);
	free(cb.steps);
	store_metric_release(&m);
	return rc;
}

int store_metric_ensure(struct store *st, int64_t run_id, const char *name,
			int64_t *metric_id, int *created)
{
	struct store_metric m = { 0 };
	int64_t exp_id = 0;
	struct conn *c;
	int rc;

	if (!name_is_valid(name, strlen(name)))
		return STORE_INVALID;
	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = run_experiment_locked(c, run_id, &exp_id);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = metric_get_locked(c, run_id, name, strlen(name), &m);
	if (created)
		*created = rc == STORE_NOT_FOUND;
	if (rc == STORE_NOT_FOUND) {
		rc = metric_insert_locked(c, run_id, name, strlen(name),
					  time_now_ms(), &m);
		if (rc == STORE_OK)	/* a new name in the run's metrics/ */
			rc = run_touch(c, run_id, exp_id, m.created_ms);
		if (rc == STORE_OK)
			rc = change_add(c, CHANGE_METRIC, exp_id, run_id, m.id,
					m.created_ms);
	}
	if (rc != STORE_OK)
		goto out_rollback;
	*metric_id = m.id;
	rc = tx_commit(c);
out_rollback:
	tx_rollback(c);
	store_metric_release(&m);
out_put:
	conn_put(st, c);
	return rc;
}

int store_metric_append(struct store *st, int64_t metric_id,
			const struct metric_point *pts, size_t n, int64_t ts_ms)
{
	struct conn *c;
	int rc;

	if (n == 0)
		return STORE_OK;
	if (st->journal)
		return journal_append(st, metric_id, pts, n, ts_ms);
	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = metric_append_locked(c, metric_id, pts, n, ts_ms);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = tx_commit(c);
out_rollback:
	tx_rollback(c);
out_put:
	conn_put(st, c);
	return rc;
}

/*
 * A store_metrics_log() call grouped by metric: group g's points are
 * pts[groups[g].first .. + groups[g].n), in call order. Groups are found
 * with an open-addressing table over the names, so grouping is O(n).
 */
struct log_group {
	const char *name;
	size_t name_len;
	size_t first;
	size_t n;
};

struct log_plan {
	struct log_group *groups;
	size_t ngroups;
	struct metric_point *pts;
};

static uint64_t name_hash(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ULL;	/* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void log_plan_release(struct log_plan *p)
{
	free(p->groups);
	free(p->pts);
	p->groups = NULL;
	p->pts = NULL;
}

static int log_plan_build(const struct metric_named_point *in, size_t n,
			  struct log_plan *p)
{
	size_t slots = 16, *fill = NULL;
	uint32_t *table = NULL, *group_of = NULL;
	int rc = STORE_NOMEM;

	while (slots < 2 * n)
		slots *= 2;
	table = malloc(slots * sizeof(*table));
	group_of = malloc(n * sizeof(*group_of));
	p->groups = malloc(n * sizeof(*p->groups));
	p->pts = malloc(n * sizeof(*p->pts));
	p->ngroups = 0;
	if (!table || !group_of || !p->groups || !p->pts)
		goto out_free;
	memset(table, 0xff, slots * sizeof(*table));	/* UINT32_MAX: empty */
	for (size_t i = 0; i < n; i++) {
		size_t h = (size_t)name_hash(in[i].name, in[i].name_len);
		struct log_group *g;

		for (;; h++) {
			uint32_t *slot = &table[h & (slots - 1)];

			if (*slot == UINT32_MAX) {
				*slot = (uint32_t)p->ngroups;
				p->groups[p->ngroups++] = (struct log_group){
					in[i].name, in[i].name_len, 0, 0,
				};
			}
			g = &p->groups[*slot];
			if (g->name_len == in[i].name_len &&
			    !memcmp(g->name, in[i].name, g->name_len))
				break;
		}
		g->n++;
		group_of[i] = (uint32_t)(g - p->groups);
	}
	fill = calloc(p->ngroups, sizeof(*fill));
	if (!fill)
		goto out_free;
	for (size_t g = 1; g < p->ngroups; g++)
		p->groups[g].first = p->groups[g - 1].first + p->groups[g - 1].n;
	for (size_t i = 0; i < n; i++) {
		struct log_group *g = &p->groups[group_of[i]];

		p->pts[g->first + fill[group_of[i]]++] = in[i].pt;
	}
	rc = STORE_OK;
out_free:
	free(fill);
	free(group_of);
	free(table);
	if (rc != STORE_OK)
		log_plan_release(p);
	return rc;
}

/* The metrics of @p logged inside the caller's transaction. */
static int metrics_log_locked(struct conn *c, int64_t run_id,
			      const struct log_plan *p, int64_t ts_ms)
{
	int64_t exp_id = 0;
	int created = 0;
	int rc = run_experiment_locked(c, run_id, &exp_id);

	for (size_t i = 0; rc == STORE_OK && i < p->ngroups; i++) {
		const struct log_group *g = &p->groups[i];
		struct store_metric m = { 0 };

		rc = metric_get_locked(c, run_id, g->name, g->name_len, &m);
		if (rc == STORE_NOT_FOUND) {
			/* the append below adds the metric's change row */
			rc = metric_insert_locked(c, run_id, g->name,
						  g->name_len, ts_ms, &m);
			created = 1;
		}
		if (rc == STORE_OK)
			rc = metric_append_locked(c, m.id, p->pts + g->first,
						  g->n, ts_ms);
		store_metric_release(&m);
	}
	if (rc == STORE_OK && created)	/* new names in the run's metrics/ */
		rc = run_touch(c, run_id, exp_id, ts_ms);
	return rc;
}

int store_metrics_log(struct store *st, int64_t run_id,
		      const struct metric_named_point *pts, size_t n,
		      int64_t ts_ms)
{
	struct log_plan plan = { 0 };
	struct conn *c;
	int rc;

	if (n == 0)
		return STORE_OK;
	if (n > UINT32_MAX - 1)
		return STORE_TOO_BIG;
	for (size_t i = 0; i < n; i++)
		if (!name_is_valid(pts[i].name, pts[i].name_len))
			return STORE_INVALID;
	/* keep this metric's order with appends journaled before */
	rc = journal_drain_pending(st);
	if (rc != STORE_OK)
		return rc;
	rc = log_plan_build(pts, n, &plan);
	if (rc != STORE_OK)
		return rc;
	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		goto out_release;
	rc = tx_begin(c);
	if (rc != STORE_OK)
		goto out_put;
	rc = metrics_log_locked(c, run_id, &plan, ts_ms);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = tx_commit(c);
out_rollback:
	tx_rollback(c);
out_put:
	conn_put(st, c);
out_release:
	log_plan_release(&plan);
	return rc;
}

int store_metric_get(struct store *st, int64_t run_id, const char *name,
		     struct store_metric *out)
{
	struct conn *c;
	int rc = journal_drain_pending(st);

	if (rc == STORE_OK)
		rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = metric_get_locked(c, run_id, name, strlen(name), out);
	conn_put(st, c);
	return rc;
}

int store_metric_find(struct store *st, int64_t run_id, const char *name,
		      int64_t *metric_id)
{
	struct store_metric m = { 0 };
	struct conn *c;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = metric_get_locked(c, run_id, name, strlen(name), &m);
	if (rc == STORE_OK)
		*metric_id = m.id;
	store_metric_release(&m);
	conn_put(st, c);
	return rc;
}

static int metric_row(struct store *st, sqlite3_stmt *s, void *out)
{
	(void)st;
	return metric_copy_from_row(s, out) == STORE_OK ? 1 : STORE_NOMEM;
}

int store_metric_get_by_id(struct store *st, int64_t metric_id,
			   struct store_metric *out)
{
	struct store_read r = {
		.id = SQL_METRIC_GET_BY_ID, .what = "get metric",
		.bind = bind_int64_1, .bind_arg = &metric_id,
		.row = metric_row, .row_arg = out, .need_row = 1,
	};
	int rc = journal_drain_pending(st);

	return rc == STORE_OK ? store_read_rows(st, &r) : rc;
}

struct metric_each {
	store_metric_fn fn;
	void *ctx;
};

static int metric_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct metric_each *e = arg;
	struct store_metric m;

	(void)st;
	metric_from_row(s, &m);
	return e->fn(e->ctx, &m) != 0;
}

int store_metric_list(struct store *st, int64_t run_id, store_metric_fn fn,
		      void *ctx)
{
	struct metric_each e = { fn, ctx };
	struct store_read r = {
		.id = SQL_METRIC_LIST, .what = "list metrics",
		.bind = bind_int64_1, .bind_arg = &run_id,
		.row = metric_each_row, .row_arg = &e,
	};
	int rc = journal_drain_pending(st);

	return rc == STORE_OK ? store_read_rows(st, &r) : rc;
}

/* The chunks of metric ?1 from sequence number ?2 on. */
struct chunk_key {
	int64_t metric_id;
	int64_t from_seq;
};

static void chunk_key_bind(sqlite3_stmt *s, const void *arg)
{
	const struct chunk_key *k = arg;

	sqlite3_bind_int64(s, 1, k->metric_id);
	sqlite3_bind_int64(s, 2, k->from_seq);
}

struct chunk_each {
	store_chunk_fn fn;
	void *ctx;
	int64_t *aligned;	/* the last chunk's steps, copied */
};

static int chunk_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct chunk_each *e = arg;
	struct metric_chunk ch = {
		.first_seq = sqlite3_column_int64(s, 0),
		.n = sqlite3_column_int64(s, 1),
		.ts_ms = sqlite3_column_int64(s, 2),
		.text = sqlite3_column_blob(s, 3),
		.text_len = (size_t)sqlite3_column_bytes(s, 3),
	};
	size_t steps_len = (size_t)sqlite3_column_bytes(s, 4);

	(void)st;
	if (steps_len) {
		/* Blob memory has no alignment promise: copy. */
		free(e->aligned);
		e->aligned = malloc(steps_len);
		if (!e->aligned)
			return STORE_NOMEM;
		memcpy(e->aligned, sqlite3_column_blob(s, 4), steps_len);
		ch.steps = e->aligned;
	}
	if (steps_len && steps_len != (size_t)ch.n * sizeof(int64_t)) {
		/* The line store_rc_from_sqlite() logs; it needs a conn. */
		fprintf(stderr, "mlfs: store: read metric: %s\n",
			sqlite3_errmsg(sqlite3_db_handle(s)));
		return STORE_CORRUPT;
	}
	if (!ch.text)
		ch.text = "";
	return e->fn(e->ctx, &ch) != 0;
}

int store_metric_read(struct store *st, int64_t metric_id, int64_t from_seq,
		      store_chunk_fn fn, void *ctx)
{
	struct chunk_key k = { metric_id, from_seq };
	struct chunk_each e = { fn, ctx, NULL };
	struct store_read r = {
		.id = SQL_CHUNK_READ, .what = "read metric",
		.bind = chunk_key_bind, .bind_arg = &k,
		.row = chunk_each_row, .row_arg = &e,
	};
	int rc = journal_drain_pending(st);

	if (rc == STORE_OK)
		rc = store_read_rows(st, &r);
	free(e.aligned);
	return rc;
}
