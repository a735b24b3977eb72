/*
 * runs_table.c - everything runs.csv shows about an experiment, in three
 * queries (runs, tags, last metric values) instead of one per run.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

struct cell {
	int64_t run_id;
	char *key;
	char *value;
};

struct cells {
	struct cell *v;
	size_t n, alloc;
};

static int cells_push(struct cells *cs, int64_t run_id, const char *key,
		      const char *value, size_t value_len)
{
	struct cell *c;

	if (cs->n == cs->alloc) {
		size_t alloc = cs->alloc ? cs->alloc * 2 : 64;
		struct cell *v = realloc(cs->v, alloc * sizeof(*v));

		if (!v)
			return STORE_NOMEM;
		cs->v = v;
		cs->alloc = alloc;
	}
	c = &cs->v[cs->n];
	c->run_id = run_id;
	c->key = strdup(key);
	c->value = strndup(value ? value : "", value_len);
	if (!c->key || !c->value) {
		free(c->key);
		free(c->value);
		return STORE_NOMEM;
	}
	cs->n++;
	return STORE_OK;
}

static void cells_release(struct cells *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		free(cs->v[i].key);
		free(cs->v[i].value);
	}
	free(cs->v);
}

/*
 * (run_id, key, value) rows of @id for experiment @exp_id; a fourth
 * column, when the query has one, is a time whose maximum goes to @newest.
 */
static int cells_load(struct conn *c, enum stmt_id id, int64_t exp_id,
		      struct cells *out, int64_t *newest)
{
	sqlite3_stmt *s = stmt_get(c, id);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, exp_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int err = cells_push(out, sqlite3_column_int64(s, 0),
				     (const char *)sqlite3_column_text(s, 1),
				     sqlite3_column_blob(s, 2),
				     (size_t)sqlite3_column_bytes(s, 2));
		if (newest && sqlite3_column_int64(s, 3) > *newest)
			*newest = sqlite3_column_int64(s, 3);
		if (err != STORE_OK) {
			sqlite3_reset(s);
			return err;
		}
	}
	rc = rc == SQLITE_DONE ? STORE_OK : store_rc_from_sqlite(c, rc, "runs table");
	sqlite3_reset(s);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted, distinct keys of @cs, as copies. */
static int distinct_keys(const struct cells *cs, char ***keys, size_t *n)
{
	char **v = calloc(cs->n ? cs->n : 1, sizeof(*v));
	size_t m = 0;

	if (!v)
		return STORE_NOMEM;
	for (size_t i = 0; i < cs->n; i++)
		v[i] = cs->v[i].key;
	qsort(v, cs->n, sizeof(*v), cmp_str);
	for (size_t i = 0; i < cs->n; i++)
		if (m == 0 || strcmp(v[m - 1], v[i]) != 0)
			v[m++] = v[i];
	for (size_t i = 0; i < m; i++) {
		v[i] = strdup(v[i]);
		if (!v[i]) {
			while (i--)
				free(v[i]);
			free(v);
			return STORE_NOMEM;
		}
	}
	*keys = v;
	*n = m;
	return STORE_OK;
}

static size_t key_index(char **keys, size_t n, const char *key)
{
	char **hit = bsearch(&key, keys, n, sizeof(*keys), cmp_str);

	return (size_t)(hit - keys);
}

struct row_index {
	int64_t run_id;
	struct runs_table_row *row;
};

static int cmp_row_index(const void *a, const void *b)
{
	int64_t x = ((const struct row_index *)a)->run_id;
	int64_t y = ((const struct row_index *)b)->run_id;

	return (x > y) - (x < y);
}

static struct runs_table_row *row_of(const struct row_index *idx, size_t n,
				     int64_t run_id)
{
	struct row_index key = { .run_id = run_id };
	const struct row_index *hit = bsearch(&key, idx, n, sizeof(*idx),
					      cmp_row_index);

	return hit ? hit->row : NULL;
}

static int rows_load(struct conn *c, int64_t exp_id, struct runs_table *t)
{
	sqlite3_stmt *s = stmt_get(c, SQL_RUNS_NEWEST_FIRST);
	size_t alloc = 0;
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, exp_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (t->nrows == alloc) {
			size_t na = alloc ? alloc * 2 : 64;
			struct runs_table_row *v = realloc(t->rows, na * sizeof(*v));

			if (!v) {
				rc = SQLITE_NOMEM;
				break;
			}
			t->rows = v;
			alloc = na;
		}
		memset(&t->rows[t->nrows], 0, sizeof(t->rows[0]));
		if (run_from_row(s, &t->rows[t->nrows].run) != STORE_OK) {
			rc = SQLITE_NOMEM;
			break;
		}
		t->nrows++;
	}
	rc = rc == SQLITE_DONE ? STORE_OK : store_rc_from_sqlite(c, rc, "runs table");
	sqlite3_reset(s);
	return rc;
}

/* Moves each cell's value into its row's column (the cell gives it up). */
static int fill_columns(struct runs_table *t, struct cells *cs, char **keys,
			size_t nkeys, int metric)
{
	struct row_index *idx = calloc(t->nrows ? t->nrows : 1, sizeof(*idx));

	if (!idx)
		return STORE_NOMEM;
	/* Rows are newest first, not by id: index them once, not per cell. */
	for (size_t r = 0; r < t->nrows; r++)
		idx[r] = (struct row_index){ t->rows[r].run.id, &t->rows[r] };
	qsort(idx, t->nrows, sizeof(*idx), cmp_row_index);
	for (size_t r = 0; r < t->nrows; r++) {
		char ***col = metric ? &t->rows[r].metric_last
				     : &t->rows[r].tag_values;

		*col = calloc(nkeys ? nkeys : 1, sizeof(char *));
		if (!*col) {
			free(idx);
			return STORE_NOMEM;
		}
	}
	for (size_t i = 0; i < cs->n; i++) {
		struct runs_table_row *row = row_of(idx, t->nrows, cs->v[i].run_id);
		size_t k = key_index(keys, nkeys, cs->v[i].key);
		char **col;

		if (!row)
			continue;
		col = metric ? row->metric_last : row->tag_values;
		col[k] = cs->v[i].value;
		cs->v[i].value = NULL;
	}
	free(idx);
	return STORE_OK;
}

int store_runs_table(struct store *st, int64_t exp_id, struct runs_table *out)
{
	struct cells tags = { 0 }, metrics = { 0 };
	struct runs_table t = { 0 };
	struct conn *c;
	int rc = journal_drain_pending(st);

	if (rc == STORE_OK)
		rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	/* One read transaction: the three queries see the same snapshot. */
	rc = sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK
		     ? STORE_OK : STORE_IO;
	if (rc != STORE_OK)
		goto out_put;
	rc = rows_load(c, exp_id, &t);
	if (rc == STORE_OK)
		rc = cells_load(c, SQL_TAGS_OF_EXPERIMENT, exp_id, &tags, NULL);
	if (rc == STORE_OK)
		rc = cells_load(c, SQL_METRICS_OF_EXPERIMENT, exp_id, &metrics,
				&t.metrics_updated_ms);
	sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
	if (rc == STORE_OK)
		rc = distinct_keys(&tags, &t.tag_keys, &t.ntag_keys);
	if (rc == STORE_OK)
		rc = distinct_keys(&metrics, &t.metric_names, &t.nmetric_names);
	if (rc == STORE_OK)
		rc = fill_columns(&t, &tags, t.tag_keys, t.ntag_keys, 0);
	if (rc == STORE_OK)
		rc = fill_columns(&t, &metrics, t.metric_names, t.nmetric_names, 1);
	if (rc == STORE_OK)
		*out = t;
	else
		store_runs_table_release(&t);
	cells_release(&tags);
	cells_release(&metrics);
out_put:
	conn_put(st, c);
	return rc;
}

void store_runs_table_release(struct runs_table *t)
{
	for (size_t r = 0; r < t->nrows; r++) {
		struct runs_table_row *row = &t->rows[r];

		for (size_t k = 0; row->tag_values && k < t->ntag_keys; k++)
			free(row->tag_values[k]);
		for (size_t k = 0; row->metric_last && k < t->nmetric_names; k++)
			free(row->metric_last[k]);
		free(row->tag_values);
		free(row->metric_last);
		store_run_release(&row->run);
	}
	for (size_t k = 0; k < t->ntag_keys; k++)
		free(t->tag_keys[k]);
	for (size_t k = 0; k < t->nmetric_names; k++)
		free(t->metric_names[k]);
	free(t->tag_keys);
	free(t->metric_names);
	free(t->rows);
	memset(t, 0, sizeof(*t));
}
