/*
 * store.h - the workspace store: experiments, runs, tags, properties,
 * metrics, events and the change feed of one mlfs workspace.
 *
 * Invariants
 *  - The store is the only code that touches SQL. Callers see plain structs
 *    and the STORE_* result codes below, never SQLite handles or errno.
 *  - Every mutation is one SQLite transaction (BEGIN IMMEDIATE ... COMMIT):
 *    it happens whole or not at all, and it is durable against a crash of
 *    the process once the call returned STORE_OK (WAL, synchronous=NORMAL).
 *  - Every mutation also appends a row to the change feed in the same
 *    transaction, so any process can learn what changed (store_changes_since)
 *    without rescanning.
 *  - Many threads of one process and many processes may call the store at
 *    once. A writer that finds the database locked waits (up to
 *    STORE_BUSY_TIMEOUT_MS) and retries; a write is never dropped: it either
 *    returns STORE_OK or an error the caller reports.
 *
 * Life cycle
 *  store_open() -> any calls, from any thread -> store_close().
 *
 * Results
 *  Functions return STORE_OK (0) or one of the negative codes below.
 *  store_strerror() names a code. Out-parameters are filled only on
 *  STORE_OK. Strings in result structs are owned by the struct: release
 *  them with the matching *_release() (safe on a zeroed struct).
 *
 * Threads
 *  Every function is thread-safe: each call borrows a connection from an
 *  internal pool. Callbacks run while that connection is borrowed: they
 *  must not call back into the store.
 */
#ifndef MLFS_STORE_H
#define MLFS_STORE_H

#include <stddef.h>
#include <stdint.h>

enum store_rc {
	STORE_OK = 0,
	STORE_NOT_FOUND = -1,	/* no such experiment, run, tag, metric, model */
	STORE_EXISTS = -2,	/* the name is taken */
	STORE_INVALID = -3,	/* bad name, value or status transition */
	STORE_NOT_EMPTY = -4,	/* experiment still has runs */
	STORE_DENIED = -5,	/* add-only value changed, or not allowed */
	STORE_BUSY = -6,	/* database locked for longer than the timeout */
	STORE_NOMEM = -7,
	STORE_IO = -8,		/* database or filesystem error (logged) */
	STORE_TOO_NEW = -9,	/* workspace made by a newer mlfs */
	STORE_CORRUPT = -10,	/* workspace database is damaged */
	STORE_TOO_BIG = -11,	/* value over its size limit */
	STORE_IN_USE = -12,	/* an active deployment uses the model version */
};

#define STORE_BUSY_TIMEOUT_MS 60000
#define STORE_VALUE_MAX 65536	/* tag and property values, bytes */
#define STORE_EVENTS_KEEP 10000	/* events kept; older ones are pruned */

/* The schema version this build writes (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 5

struct store;

/* ---- opening ------------------------------------------------------ */

enum store_open_flags {
	STORE_CREATE = 1 << 0,	/* create the workspace directory and db */
};

/*
 * store_open - open the workspace in directory @dir.
 *
 * Creates @dir, its database and subdirectories when STORE_CREATE is set
 * and they are missing; migrates an older schema forward. Returns
 * STORE_OK and *out, STORE_NOT_FOUND (no workspace and no STORE_CREATE),
 * STORE_TOO_NEW, STORE_CORRUPT, STORE_IO. On error *out is untouched and a
 * reason is written to @err (may be NULL) of size @errlen.
 */
int store_open(const char *dir, int flags, struct store **out,
	       char *err, size_t errlen);
void store_close(struct store *st);

/*
 * store_before_fork - close every pooled database connection; the next
 * call opens fresh ones. Call it before fork() when the child will use
 * @st (a daemonizing mount): an SQLite connection must not cross fork().
 * The parent's POSIX locks on the WAL index die with the parent, so a
 * child reusing its connections would hold none and read a snapshot
 * other processes' commits never move (and could be checkpointed under).
 * No connection may be in use: call it from the only thread.
 */
void store_before_fork(struct store *st);

const char *store_strerror(int rc);
const char *store_dir(const struct store *st);

struct store_workspace {
	char *name;
	char *uuid;
	int64_t created_ms;
	int64_t updated_ms;	/* an experiment was made or removed */
	int schema_version;
};
int store_workspace_get(struct store *st, struct store_workspace *out);
void store_workspace_release(struct store_workspace *ws);

/*
 * store_migrate_to - bring the database at @db_path to schema @version
 * (0 < version <= STORE_SCHEMA_VERSION) and stop there. For tests that
 * build a workspace as an older mlfs left it.
 */
int store_migrate_to(const char *db_path, int version);

/* ---- experiments --------------------------------------------------- */

struct store_experiment {
	int64_t id;
	char *name;
	int64_t created_ms;
	int64_t updated_ms;	/* last change to the experiment or its runs */
	int64_t run_count;
};
void store_experiment_release(struct store_experiment *e);

/* STORE_INVALID for a bad name, STORE_EXISTS when taken. */
int store_experiment_create(struct store *st, const char *name,
			    struct store_experiment *out);
int store_experiment_get(struct store *st, const char *name,
			 struct store_experiment *out);
int store_experiment_get_by_id(struct store *st, int64_t id,
			       struct store_experiment *out);
/* STORE_NOT_EMPTY while the experiment has runs. */
int store_experiment_delete(struct store *st, const char *name);

/* Calls @fn for each experiment in name order; a non-zero return stops. */
typedef int (*store_experiment_fn)(void *ctx, const struct store_experiment *e);
int store_experiment_list(struct store *st, store_experiment_fn fn, void *ctx);

/* ---- runs ---------------------------------------------------------- */

/*
 * Run statuses, in Azure ML's spelling. The lifecycle is described at the
 * top of store/run.c.
 */
enum run_status {
	RUN_NOT_STARTED,
	RUN_QUEUED,
	RUN_PREPARING,
	RUN_RUNNING,
	RUN_FINALIZING,
	RUN_CANCEL_REQUESTED,
	RUN_COMPLETED,
	RUN_FAILED,
	RUN_CANCELED,
	RUN_NOT_RESPONDING,
	RUN_STATUS_COUNT
};
const char *run_status_name(enum run_status s);
/* Exact, case-sensitive match of a status name; -1 when unknown. */
int run_status_parse(const char *s, size_t len);
int run_status_is_terminal(enum run_status s);

struct store_run {
	int64_t id;		/* internal, stable */
	char *name;		/* the run id users see; unique in the workspace */
	int64_t experiment_id;
	int64_t number;		/* 1, 2, 3 ... within the experiment */
	enum run_status status;
	int interactive;	/* made by mkdir, ended by writing status */
	char *display_name;	/* NULL when none */
	char *compute_target;	/* NULL for interactive runs */
	int64_t parent_id;	/* 0 when none */
	int64_t created_ms, started_ms, ended_ms, updated_ms; /* -1 unset */
	int has_exit_code;
	int exit_code;
	char *error;		/* NULL when none */
	/* Submitted runs only (NULL / 0 otherwise): */
	char *snapshot;		/* snapshot id */
	char *config;		/* the normalized request, JSON */
	int64_t max_duration_s;	/* 0: no limit */
	int64_t supervisor_pid;	/* 0 until a supervisor claimed it */
};
void store_run_release(struct store_run *r);

/*
 * store_run_create_interactive - make run @name in experiment @exp_id,
 * status Running, numbered next in the experiment. STORE_INVALID for a bad
 * name, STORE_EXISTS when any run in the workspace has that name,
 * STORE_NOT_FOUND when the experiment is gone.
 */
int store_run_create_interactive(struct store *st, int64_t exp_id,
				 const char *name, struct store_run *out);
int store_run_get(struct store *st, int64_t run_id, struct store_run *out);
/* Finds run @name only if it belongs to experiment @exp_id. */
int store_run_find(struct store *st, int64_t exp_id, const char *name,
		   struct store_run *out);

/* A run as listed in a directory: enough for names and attributes. */
struct store_run_entry {
	int64_t id;
	const char *name;
	int64_t number;
	int64_t created_ms;
	int64_t updated_ms;
};
typedef int (*store_run_fn)(void *ctx, const struct store_run_entry *r);
/* Runs of @exp_id in number order; a non-zero return from @fn stops. */
int store_run_list(struct store *st, int64_t exp_id, store_run_fn fn,
		   void *ctx);
/* The newest run's name in *name (caller frees); STORE_NOT_FOUND if none. */
int store_run_latest(struct store *st, int64_t exp_id, char **name);

/*
 * store_run_set_status - move run @run_id to @status by a user's request.
 * Interactive runs go Running -> Completed | Failed | Canceled; writing the
 * status a finished run already has is accepted and changes nothing.
 * STORE_INVALID for a status a user may not set, STORE_DENIED for a run
 * already finished with another status or not interactive.
 */
int store_run_set_status(struct store *st, int64_t run_id,
			 enum run_status status);

/* ---- submitted runs: the lifecycle (store/run_lifecycle.c) ----------- */

/*
 * A run request, validated and normalized by the caller. @name may be
 * NULL: the store then makes one ("EXP_MILLISECONDS_HEX8", unique in the
 * workspace). Tags and properties are set in the same transaction.
 */
struct run_submission {
	const char *name;
	const char *display_name;	/* NULL for none */
	const char *compute_target;	/* must exist (store_compute_get) */
	int64_t parent_id;		/* 0 for none */
	const char *snapshot;
	const char *config;		/* JSON text */
	int64_t max_duration_s;		/* 0: no limit */
	const struct store_kv *tags;
	size_t ntags;
	const struct store_kv *properties;
	size_t nproperties;
};

/*
 * store_run_submit - make a Queued run in experiment @exp_id. All or
 * nothing. STORE_NOT_FOUND for a missing experiment, parent or compute
 * target; STORE_INVALID for a bad name, tag or property, or a parent in
 * another experiment; STORE_EXISTS for a taken name.
 */
int store_run_submit(struct store *st, int64_t exp_id,
		     const struct run_submission *sub, struct store_run *out);

/*
 * Who supervises a run: a process, told apart from a later process with
 * the same pid by its start time (clock ticks since boot, field 22 of
 * /proc/PID/stat) and the boot it runs in.
 */
struct proc_id {
	int64_t pid;
	int64_t start;
	const char *boot_id;
};

/*
 * store_run_claim - take the oldest Queued run of compute target @compute
 * for the supervisor @sup if the target has a free slot (fewer active
 * runs than its max_concurrent, or than @cpus when that is 0): the run
 * becomes Preparing with @sup recorded, in one transaction, so two
 * supervisors never take the same run. STORE_OK and *run_id, or
 * STORE_NOT_FOUND when nothing is queued or no slot is free.
 */
int store_run_claim(struct store *st, const char *compute, int cpus,
		    const struct proc_id *sup, int64_t *run_id);

/*
 * store_run_started - Preparing -> Running, with the run's process group
 * leader @proc. STORE_DENIED when the run is no longer Preparing (a
 * cancel came first): the caller must then stop the process.
 */
int store_run_started(struct store *st, int64_t run_id,
		      const struct proc_id *proc);
/* Running or CancelRequested -> Finalizing (the process has ended). */
int store_run_finalizing(struct store *st, int64_t run_id);
/*
 * store_run_finish - an active run (Preparing .. CancelRequested) ends
 * with terminal @status, its exit code (when @has_exit_code) and @error
 * (NULL for none). STORE_DENIED for a run that is not active: one that
 * ended already, or a Queued one (those end through store_run_cancel).
 */
int store_run_finish(struct store *st, int64_t run_id, enum run_status status,
		     int has_exit_code, int exit_code, const char *error);
/*
 * store_run_cancel - a user's cancel: Queued and interactive runs become
 * Canceled at once; Preparing, Running and Finalizing runs become
 * CancelRequested for their supervisor to act on. A run already
 * CancelRequested or Canceled is left as it is (STORE_OK). STORE_DENIED
 * for a run that Completed or Failed. *now (may be NULL) gets the status
 * after the call.
 */
int store_run_cancel(struct store *st, int64_t run_id, enum run_status *now);

/* An active run (Preparing .. CancelRequested) and who supervises it. */
struct store_active_run {
	int64_t id;
	const char *name;
	enum run_status status;
	int64_t updated_ms;
	struct proc_id supervisor;	/* pid 0: not claimed yet */
	struct proc_id process;		/* pid 0: not started */
};
typedef int (*store_active_fn)(void *ctx, const struct store_active_run *r);
int store_run_list_active(struct store *st, store_active_fn fn, void *ctx);

/* Children of @run_id in creation order (entries as in store_run_list). */
int store_run_children(struct store *st, int64_t run_id, store_run_fn fn,
		       void *ctx);
/* Run @name anywhere in the workspace. */
int store_run_get_by_name(struct store *st, const char *name,
			  struct store_run *out);
/*
 * Queued and active runs of compute target @compute, oldest first: the
 * compute's queue. Entries as in store_run_list plus the status.
 */
typedef int (*store_queue_fn)(void *ctx, const struct store_run_entry *r,
			      enum run_status status, const char *experiment);
int store_compute_queue(struct store *st, const char *compute,
			store_queue_fn fn, void *ctx);

/* ---- compute targets (store/compute.c) ------------------------------- */

struct store_compute {
	char *name;
	char *type;		/* "local" */
	int max_concurrent;	/* 0: the number of CPUs of the machine */
	int64_t created_ms, updated_ms;
};
void store_compute_release(struct store_compute *c);
int store_compute_get(struct store *st, const char *name,
		      struct store_compute *out);
typedef int (*store_compute_fn)(void *ctx, const struct store_compute *c);
int store_compute_list(struct store *st, store_compute_fn fn, void *ctx);
/* STORE_INVALID for a negative @max. */
int store_compute_set_max(struct store *st, const char *name, int max);

/* ---- tags and properties -------------------------------------------- */

/*
 * Tags are mutable; properties are add-only. Keys follow the name rules
 * and values are UTF-8 text without NUL bytes (else STORE_INVALID), at
 * most STORE_VALUE_MAX bytes (else STORE_TOO_BIG).
 */
int store_tag_set(struct store *st, int64_t run_id, const char *key,
		  const char *value, size_t len);
int store_tag_delete(struct store *st, int64_t run_id, const char *key);
/*
 * STORE_OK and a malloc'd *value (caller frees; NUL-terminated) and, if
 * @changed_ms is not NULL, when it was last set.
 */
int store_tag_get(struct store *st, int64_t run_id, const char *key,
		  char **value, size_t *len, int64_t *changed_ms);

/* STORE_OK if new or equal to the value already there, else STORE_DENIED. */
int store_property_add(struct store *st, int64_t run_id, const char *key,
		       const char *value, size_t len);
int store_property_get(struct store *st, int64_t run_id, const char *key,
		       char **value, size_t *len, int64_t *changed_ms);

struct store_kv {
	const char *key;
	const char *value;
	size_t len;
	int64_t updated_ms;
};
typedef int (*store_kv_fn)(void *ctx, const struct store_kv *kv);
/* Key order. */
int store_tag_list(struct store *st, int64_t run_id, store_kv_fn fn, void *ctx);
int store_property_list(struct store *st, int64_t run_id, store_kv_fn fn,
			void *ctx);

/* ---- metrics ------------------------------------------------------- */

/*
 * A metric is a series of points in logging order. Each point keeps the
 * value's text as it was logged (validated as a finite decimal number by
 * the caller), its double, a step (the point's index when not given) and
 * the time it was logged. Summaries are kept up to date on every append.
 */
struct metric_point {
	double value;
	int64_t step;
	int has_step;
	const char *text;	/* the value as logged, no newline */
	size_t text_len;
};

struct store_metric {
	int64_t id;
	int64_t run_id;
	const char *name;	/* valid during the callback / until release */
	int64_t count;
	double last, min, max;	/* meaningful when count > 0 */
	int64_t last_step;
	int64_t created_ms;
	int64_t updated_ms;
	int64_t text_bytes;	/* size of the one-value-per-line rendering */
	char *name_owned;
};
void store_metric_release(struct store_metric *m);

/*
 * store_metric_ensure - the id of metric @name of run @run_id in
 * *metric_id, creating the metric (with no points) if needed; *created
 * (if not NULL) says whether this call made it. STORE_INVALID for a bad
 * name, STORE_NOT_FOUND for a missing run.
 */
int store_metric_ensure(struct store *st, int64_t run_id, const char *name,
			int64_t *metric_id, int *created);

/*
 * store_metric_append - log @n points to metric @metric_id at time @ts_ms:
 * all of them or none. Durable against a crash of this process once it
 * returns STORE_OK. With a journal (store_journal_start) this is one
 * write(2) to the journal; the points reach the database at the next
 * drain, and every store call that reads metrics drains first, so a read
 * always sees every append that returned. @metric_id must come from
 * store_metric_ensure() or a read: with a journal an unknown id is only
 * found (and its points dropped, with a message on stderr) at the drain.
 */
int store_metric_append(struct store *st, int64_t metric_id,
			const struct metric_point *pts, size_t n,
			int64_t ts_ms);

/*
 * store_metrics_log - log @n points of run @run_id, each naming its metric
 * (@name[0..@name_len), not NUL-terminated), creating the metrics that do
 * not exist yet, at time @ts_ms (also the creation time of those
 * metrics). One transaction: all points or none. Points of one metric keep
 * the order they have in @pts; each metric touched gets one chunk and one
 * change row, however its points interleave with others'.
 *
 * Returns STORE_OK (also for @n == 0, which touches nothing),
 * STORE_INVALID when any name is bad (nothing logged), STORE_NOT_FOUND
 * for a missing run, STORE_BUSY, STORE_NOMEM, STORE_IO. The caller keeps
 * ownership of @pts and everything they point to.
 *
 * Not routed through the journal, even when this process started one: it
 * writes the database directly (after merging any pending journal, so
 * earlier appends stay first). Meant for processes other than the mount,
 * such as the run supervisor, which log big batches.
 */
struct metric_named_point {
	const char *name;
	size_t name_len;
	struct metric_point pt;
};
int store_metrics_log(struct store *st, int64_t run_id,
		      const struct metric_named_point *pts, size_t n,
		      int64_t ts_ms);

int store_metric_get(struct store *st, int64_t run_id, const char *name,
		     struct store_metric *out);
/*
 * The id of metric @name of run @run_id, without merging the journal
 * first (a metric's row exists from its creation): for name lookups.
 */
int store_metric_find(struct store *st, int64_t run_id, const char *name,
		      int64_t *metric_id);
int store_metric_get_by_id(struct store *st, int64_t metric_id,
			   struct store_metric *out);
typedef int (*store_metric_fn)(void *ctx, const struct store_metric *m);
/* Metrics of a run in name order. */
int store_metric_list(struct store *st, int64_t run_id, store_metric_fn fn,
		      void *ctx);

/*
 * Points come back in chunks, as they were appended: @text holds the
 * values one per line ("0.5\n0.25\n"); @steps[i] is the step of point
 * first_seq + i, and @steps is NULL when every point of the chunk has its
 * default step (its index: first_seq + i); @ts_ms is when it was logged.
 */
struct metric_chunk {
	int64_t first_seq;	/* 0-based index of the first point */
	int64_t n;
	int64_t ts_ms;
	const char *text;
	size_t text_len;
	const int64_t *steps;
};
typedef int (*store_chunk_fn)(void *ctx, const struct metric_chunk *c);
/* Chunks of @metric_id whose points start at or after @from_seq. */
int store_metric_read(struct store *st, int64_t metric_id, int64_t from_seq,
		      store_chunk_fn fn, void *ctx);

/* ---- the runs table of an experiment (runs.csv) --------------------- */

struct runs_table_row {
	struct store_run run;
	char **tag_values;	/* [ntag_keys], NULL where the run has no tag */
	char **metric_last;	/* [nmetric_names], last value text or NULL */
};
struct runs_table {
	int64_t metrics_updated_ms;	/* newest metric change, or 0 */
	size_t nrows;
	struct runs_table_row *rows;	/* newest run first */
	size_t ntag_keys;
	char **tag_keys;		/* sorted */
	size_t nmetric_names;
	char **metric_names;		/* sorted */
};
int store_runs_table(struct store *st, int64_t exp_id, struct runs_table *out);
void store_runs_table_release(struct runs_table *t);

/* ---- events -------------------------------------------------------- */

/* Appends one line: newlines become spaces; cut at 1023 bytes. */
int store_event_add(struct store *st, const char *line);
struct store_event {
	int64_t id;
	int64_t ts_ms;
	const char *line;
};
typedef int (*store_event_fn)(void *ctx, const struct store_event *e);
/* The newest @limit events, oldest first. */
int store_event_list(struct store *st, int64_t limit, store_event_fn fn,
		     void *ctx);

/* ---- the change feed ----------------------------------------------- */

enum change_kind {
	CHANGE_EXPERIMENTS = 1,	/* an experiment was made or removed */
	CHANGE_RUN = 2,		/* a run was made or its fields changed */
	CHANGE_RUN_TAGS = 3,
	CHANGE_RUN_PROPERTIES = 4,
	CHANGE_METRIC = 5,	/* points were appended; object_id = metric */
	CHANGE_EVENTS = 6,
	CHANGE_COMPUTE = 7,	/* a compute target's settings changed */
	CHANGE_MODELS = 8,	/* a model was made or removed; object_id = model */
	CHANGE_MODEL = 9,	/* a model, its versions, tags, properties,
				 * aliases or deployment references changed;
				 * object_id = model, run_id = the version's
				 * source run (0 when none) */
	CHANGE_DATASTORES = 10,	/* a datastore was made or removed;
				 * object_id = datastore */
	CHANGE_DATASETS = 11,	/* a dataset version was registered;
				 * object_id = the version's row */
};

struct store_change {
	int64_t seq;
	enum change_kind kind;
	int64_t experiment_id;
	int64_t run_id;
	int64_t object_id;
	int mine;		/* made through this struct store */
};
typedef int (*store_change_fn)(void *ctx, const struct store_change *c);
/*
 * store_changes_since - call @fn for each change after *seq in order (at
 * most 4096 per call: call again while it advances) and advance *seq. A caller that starts with *seq = 0 should first call
 * store_changes_head() to skip history.
 */
int store_changes_since(struct store *st, int64_t *seq, store_change_fn fn,
			void *ctx);
int store_changes_head(struct store *st, int64_t *seq);
/* Keeps the newest @keep (at least 1) change rows and drops the rest. */
int store_changes_prune(struct store *st, int64_t keep);

/*
 * Telling other processes that the store changed: store_notify() touches
 * the file store_notify_path() names (WORKSPACE/notify), which a mount
 * watches with inotify, so a change made by a run's supervisor shows at
 * once rather than at the mount's next poll of the change feed. A hint
 * only: the change feed stays the truth, polled anyway. 0 or -errno.
 */
int store_notify(struct store *st);
const char *store_notify_path(const struct store *st);

/*
 * store_checkpoint - copy the write-ahead log into the database without
 * blocking readers or writers (a passive checkpoint). The connections of
 * a process that calls this regularly do not checkpoint on commit, which
 * keeps an fsync off the path of every thousandth write.
 */
int store_checkpoint(struct store *st);

/* ---- the metric journal ---------------------------------------------- */

/*
 * store_journal_start - route this process's metric appends through an
 * append-only journal file in WORKSPACE/journal/ (see store/journal.c).
 * For the one long-lived process that takes many small appends: the mount.
 * store_close() drains and removes it. Journals left by a process that
 * died are merged by the next store_open() of the workspace.
 */
int store_journal_start(struct store *st);
/* Merge every journaled append into the database now. */
int store_journal_drain(struct store *st);

/* PRAGMA integrity_check; STORE_OK when it says "ok". */
int store_integrity_check(struct store *st);

#endif
