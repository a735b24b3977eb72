/*
 * store_internal.h - what the store/ files share and nothing outside sees:
 * the connection pool, prepared statements, transactions, change rows.
 */
#ifndef MLFS_STORE_INTERNAL_H
#define MLFS_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "mlfs/store.h"

/*
 * Every statement the store runs, prepared once per connection on first
 * use and kept (SQLITE_PREPARE_PERSISTENT). The SQL lives beside each
 * enumerator in store/statements.c.
 */
enum stmt_id {
	SQL_BEGIN_IMMEDIATE,
	SQL_COMMIT,
	SQL_ROLLBACK,
	SQL_WORKSPACE_GET,
	SQL_WORKSPACE_TOUCH,
	SQL_EXPERIMENT_INSERT,
	SQL_EXPERIMENT_GET,
	SQL_EXPERIMENT_GET_BY_ID,
	SQL_EXPERIMENT_DELETE,
	SQL_EXPERIMENT_LIST,
	SQL_EXPERIMENT_TOUCH,
	SQL_EXPERIMENT_NEXT_NUMBER,
	SQL_RUN_INSERT,
	SQL_RUN_GET,
	SQL_RUN_FIND,
	SQL_RUN_LIST,
	SQL_RUN_LATEST,
	SQL_RUN_SET_STATUS,
	SQL_RUN_TOUCH,
	SQL_RUN_BY_NAME,
	SQL_RUNS_NEWEST_FIRST,
	SQL_TAG_SET,
	SQL_TAG_DELETE,
	SQL_TAG_GET,
	SQL_TAG_LIST,
	SQL_TAGS_OF_EXPERIMENT,
	SQL_PROPERTY_INSERT,
	SQL_PROPERTY_GET,
	SQL_PROPERTY_LIST,
	SQL_METRIC_GET,
	SQL_METRIC_GET_BY_ID,
	SQL_METRIC_INSERT,
	SQL_METRIC_UPDATE,
	SQL_METRIC_LIST,
	SQL_METRICS_OF_EXPERIMENT,
	SQL_CHUNK_INSERT,
	SQL_CHUNK_READ,
	SQL_EVENT_INSERT,
	SQL_EVENT_PRUNE,
	SQL_EVENT_LIST,
	SQL_CHANGE_INSERT,
	SQL_CHANGE_SINCE,
	SQL_CHANGE_HEAD,
	SQL_CHANGE_PRUNE,
	SQL_JOURNAL_GET,
	SQL_JOURNAL_SET,
	SQL_JOURNAL_DELETE,
	SQL_RUN_SUBMIT_INSERT,
	SQL_RUN_COUNT_ACTIVE,
	SQL_RUN_OLDEST_QUEUED,
	SQL_RUN_SET_SUPERVISOR,
	SQL_RUN_SET_STARTED,
	SQL_RUN_SET_PHASE,
	SQL_RUN_SET_END,
	SQL_RUN_LIST_ACTIVE,
	SQL_RUN_CHILDREN,
	SQL_COMPUTE_QUEUE,
	SQL_COMPUTE_GET,
	SQL_COMPUTE_LIST,
	SQL_COMPUTE_SET_MAX,
	SQL_DATASTORE_INSERT,
	SQL_DATASTORE_GET,
	SQL_DATASTORE_LIST,
	SQL_DATASTORE_DELETE,
	SQL_DATASTORE_IN_USE,
	SQL_DATASET_ENSURE,
	SQL_DATASET_NEXT_VERSION,
	SQL_DATASET_GET_ID,
	SQL_DATASET_LIST,
	SQL_DATASET_VERSION_INSERT,
	SQL_DATASET_VERSION_GET,
	SQL_DATASET_VERSION_LATEST,
	SQL_DATASET_VERSION_GET_BY_ID,
	SQL_DATASET_VERSION_LIST,
	SQL_DATASET_FILE_INSERT,
	SQL_DATASET_FILE_GET,
	SQL_DATASET_FILES_FROM,
	SQL_DATASET_FILES_RANGE,
	SQL_DATASTORE_PATHS_FROM,
	SQL_DATASTORE_PATHS_RANGE,
	SQL_DATASET_PREFIX_FROM,
	SQL_DATASET_PREFIX_RANGE,
	SQL_MODEL_INSERT,
	SQL_MODEL_ENSURE,
	SQL_MODEL_GET,
	SQL_MODEL_LIST,
	SQL_MODEL_DELETE,
	SQL_MODEL_TOUCH,
	SQL_MODEL_NEXT_VERSION,
	SQL_MODEL_VERSION_INSERT,
	SQL_MODEL_VERSION_GET,
	SQL_MODEL_VERSION_GET_BY_ID,
	SQL_MODEL_VERSION_LIST,
	SQL_MODEL_VERSIONS_OF_RUN,
	SQL_MODEL_VERSION_DELETE,
	SQL_MODEL_VERSION_TOUCH,
	SQL_MODEL_FILE_INSERT,
	SQL_MODEL_FILE_LIST,
	SQL_MODEL_FILE_RANGE,
	SQL_MODEL_ORPHANS,
	SQL_MODEL_BLOBS,
	SQL_BLOB_REFERENCED,
	SQL_MODEL_ACTIVE_REFS,
	SQL_MODEL_TAG_SET,
	SQL_MODEL_TAG_DELETE,
	SQL_MODEL_TAG_LIST,
	SQL_MODEL_PROPERTY_INSERT,
	SQL_MODEL_PROPERTY_GET,
	SQL_MODEL_PROPERTY_LIST,
	SQL_MODEL_ALIAS_SET,
	SQL_MODEL_ALIAS_COPY,
	SQL_MODEL_ALIAS_DELETE,
	SQL_MODEL_ALIAS_GET,
	SQL_MODEL_ALIAS_LIST,
	SQL_DEPLOYMENT_REF_ADD,
	SQL_DEPLOYMENT_REF_SET_ACTIVE,
	SQL_DEPLOYMENT_REF_REMOVE,
	SQL_STMT_COUNT
};

extern const char *const store_sql[SQL_STMT_COUNT];

struct conn {
	sqlite3 *db;
	sqlite3_stmt *stmt[SQL_STMT_COUNT];
	struct conn *next_free;
	int64_t busy_deadline;	/* for the busy handler */
	int autocheckpoint_off;
	int64_t origin;		/* the store's, stamped on its change rows */
};

struct store {
	char *dir;
	char *db_path;
	char *notify_path;	/* WORKSPACE/notify, see store_notify() */
	pthread_mutex_t lock;
	pthread_cond_t freed;
	struct conn *free_list;
	int nconn;
	int max_conn;
	int checkpointing;	/* store_checkpoint() is called: no autocheckpoint */
	struct journal *journal;	/* NULL unless store_journal_start() */
	int64_t origin;		/* random, per store_open: whose change is whose */
};

/* Borrow a connection (blocks while all max_conn are in use). */
int conn_get(struct store *st, struct conn **out);
void conn_put(struct store *st, struct conn *c);

/* The prepared statement @id, reset and with bindings cleared; NULL on error. */
sqlite3_stmt *stmt_get(struct conn *c, enum stmt_id id);

/* Map a SQLite result code to a STORE_* code, logging unexpected ones. */
int store_rc_from_sqlite(struct conn *c, int rc, const char *what);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK; tx_rollback is safe to call always. */
int tx_begin(struct conn *c);
int tx_commit(struct conn *c);
void tx_rollback(struct conn *c);

/*
 * A read outside a transaction, on a borrowed connection: statement @id,
 * its parameters set by @bind (NULL: none), each row handed to @row. A
 * row callback returns 0 to go on, 1 to stop (STORE_OK), or a STORE_*
 * error to stop with it. STORE_NOT_FOUND when @need_row and no row came;
 * @what names the read in logged errors.
 */
struct store_read {
	enum stmt_id id;
	const char *what;
	void (*bind)(sqlite3_stmt *s, const void *arg);
	const void *bind_arg;
	int (*row)(struct store *st, sqlite3_stmt *s, void *arg);
	void *row_arg;
	int need_row;
};
int store_read_rows(struct store *st, const struct store_read *r);
/* For the common binding: one text parameter, ?1 = (const char *)arg. */
void bind_text1(sqlite3_stmt *s, const void *arg);
/* ?1 = *(const int64_t *)arg. */
void bind_int64_1(sqlite3_stmt *s, const void *arg);
/* ?1 = id, ?2 = text: a key within an owner (a run, a version, a model). */
struct int64_text {
	int64_t id;
	const char *text;
};
void bind_int64_text(sqlite3_stmt *s, const void *arg);
/* A one-value read: column 0 into *(int64_t *)out, then stop. */
int int64_row(struct store *st, sqlite3_stmt *s, void *out);

/* Runs a statement that returns no rows; STORE_OK or mapped error. */
int stmt_exec(struct conn *c, sqlite3_stmt *s, const char *what);

/* Append a change-feed row inside the current transaction. */
int change_add(struct conn *c, enum change_kind kind, int64_t exp_id,
	       int64_t run_id, int64_t object_id, int64_t now_ms);

/* Mark the run and its experiment changed (updated_ms) inside a tx. */
int run_touch(struct conn *c, int64_t run_id, int64_t exp_id, int64_t now_ms);

/* Copy a column as a malloc'd NUL-terminated string; NULL for SQL NULL. */
char *col_strdup(sqlite3_stmt *s, int col);
int64_t col_int64_or(sqlite3_stmt *s, int col, int64_t dflt);

/* The experiment of run @run_id; STORE_NOT_FOUND when there is no run. */
int run_experiment_locked(struct conn *c, int64_t run_id, int64_t *exp_id);

/* Fill a store_run from the columns of SQL_RUN_GET's select list. */
int run_from_row(sqlite3_stmt *s, struct store_run *out);
int run_get_locked(struct conn *c, int64_t run_id, struct store_run *out);
/* Columns id, name, number, created_ms, updated_ms of a run listing. */
void run_entry_from_row(sqlite3_stmt *s, struct store_run_entry *r);
/* Runs statement @id bound to @key, calling @fn per row (a run listing). */
int run_entries_each(struct store *st, enum stmt_id id, int64_t key,
		     store_run_fn fn, void *ctx);
/* The run's id for @name; STORE_NOT_FOUND when none. */
int run_id_by_name_locked(struct conn *c, const char *name, int64_t *run_id);
/* Takes the next run number of @exp_id (and bumps experiment.updated_ms). */
int next_run_number(struct conn *c, int64_t exp_id, int64_t now,
		    int64_t *number);
/* An event line about run @name: "experiments/E/runs/ID WHAT". */
int run_event_locked(struct conn *c, int64_t exp_id, const char *name,
		     int64_t now, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* tags and properties inside the caller's transaction (annotation.c). */
int tag_set_locked(struct conn *c, int64_t run_id, const char *key,
		   const char *value, size_t len, int64_t now);
int property_add_locked(struct conn *c, int64_t run_id, const char *key,
			const char *value, size_t len, int64_t now);

/* annotation.c: STORE_OK when @key and @value make a valid tag/property. */
int kv_check(const char *key, const char *value, size_t len);
/*
 * Lists (key, value, updated_ms) rows of statement @id bound to @owner_id:
 * the tags or properties of a run or of a model version, in key order.
 */
int kv_list(struct store *st, enum stmt_id id, int64_t owner_id,
	    store_kv_fn fn, void *ctx);

/* event.c: an event line, inside the caller's transaction. */
int event_add_locked(struct conn *c, int64_t now, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* experiment.c: the name of experiment @exp_id (caller frees). */
int experiment_name_locked(struct conn *c, int64_t exp_id, char **name);

/* metric.c: append inside the caller's transaction. */
int metric_append_locked(struct conn *c, int64_t metric_id,
			 const struct metric_point *pts, size_t n, int64_t ts_ms);

/* journal.c */
struct journal;
int journal_append(struct store *st, int64_t metric_id,
		   const struct metric_point *pts, size_t n, int64_t ts_ms);
/* Drains if anything is pending; cheap when nothing is. */
int journal_drain_pending(struct store *st);
/* Merges and removes journals that no live process holds. */
int journal_recover(struct store *st, char *err, size_t errlen);
void journal_close(struct store *st);

/* Schema: create or migrate @db to STORE_SCHEMA_VERSION or @target. */
int schema_migrate(sqlite3 *db, int target, char *err, size_t errlen);
int schema_version(sqlite3 *db, int *version);

#endif
