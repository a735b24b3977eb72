/*
 * db.c - opening a workspace, the connection pool, statements and
 * transactions.
 *
 * Design notes
 *  1. One SQLite connection per concurrent caller, pooled: WAL lets readers
 *     run beside the one writer, and a connection is never shared between
 *     two threads at once, so statements need no further locking.
 *  2. Writers always BEGIN IMMEDIATE. A deferred transaction that later
 *     upgrades can fail with SQLITE_BUSY_SNAPSHOT, which no busy handler can
 *     wait out; taking the write lock up front makes the busy handler the
 *     one place where contention is waited for.
 *  3. The busy handler sleeps briefly and retries for up to
 *     STORE_BUSY_TIMEOUT_MS. SQLite's default handler sleeps up to 100 ms
 *     at a time, which turns four busy writers into a convoy.
 *  4. synchronous=NORMAL in WAL mode: a committed transaction survives a
 *     crash of any process (it is in the WAL, in the OS page cache); only
 *     a power loss can take the last commits back.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mlfs/timefmt.h"
#include "store_internal.h"

#define POOL_MAX 8

static const char *const workspace_subdirs[] = {
	"runs", "blobs", "cache", "journal", "datastore",
};

const char *store_strerror(int rc)
{
	switch (rc) {
	case STORE_OK: return "success";
	case STORE_NOT_FOUND: return "not found";
	case STORE_EXISTS: return "already exists";
	case STORE_INVALID: return "invalid";
	case STORE_NOT_EMPTY: return "not empty";
	case STORE_DENIED: return "not permitted";
	case STORE_BUSY: return "workspace database is busy";
	case STORE_NOMEM: return "out of memory";
	case STORE_IO: return "workspace database error";
	case STORE_TOO_NEW: return "workspace made by a newer mlfs";
	case STORE_CORRUPT: return "workspace database is damaged";
	case STORE_TOO_BIG: return "value too large";
	case STORE_IN_USE: return "in use by an active deployment";
	}
	return "unknown error";
}

const char *store_notify_path(const struct store *st)
{
	return st->notify_path;
}

int store_notify(struct store *st)
{
	int fd = open(st->notify_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	int rc = 0;

	if (fd < 0)
		return -errno;
	/* a 0-byte write is no event: the time is (IN_ATTRIB) */
	if (futimens(fd, NULL) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

const char *store_dir(const struct store *st)
{
	return st->dir;
}

int store_rc_from_sqlite(struct conn *c, int rc, const char *what)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return STORE_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return STORE_BUSY;
	case SQLITE_NOMEM:
		return STORE_NOMEM;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE ||
		    rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return STORE_EXISTS;
		break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		fprintf(stderr, "mlfs: store: %s: %s\n", what,
			c ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		return STORE_CORRUPT;
	case SQLITE_TOOBIG:
		return STORE_TOO_BIG;
	}
	fprintf(stderr, "mlfs: store: %s: %s\n", what,
		c ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
	return STORE_IO;
}

static int busy_wait(void *arg, int attempt)
{
	long usec = 50L << (attempt < 7 ? attempt : 7);	/* 50 us .. 6.4 ms */
	struct timespec ts = { 0, usec * 1000 };
	int64_t *deadline = arg;
	int64_t now = time_now_ms();

	if (attempt == 0)
		*deadline = now + STORE_BUSY_TIMEOUT_MS;
	if (now >= *deadline)
		return 0;
	nanosleep(&ts, NULL);
	return 1;
}

static int conn_open(const char *path, struct conn **out)
{
	struct conn *c;
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c)
		return STORE_NOMEM;
	rc = sqlite3_open_v2(path, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		goto out_close;
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_handler(c->db, busy_wait, &c->busy_deadline);
	rc = sqlite3_exec(c->db,
			  "PRAGMA synchronous = NORMAL;"
			  "PRAGMA foreign_keys = ON;"
			  "PRAGMA temp_store = MEMORY;"
			  "PRAGMA cache_size = -2048;",	/* KiB per connection */
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto out_close;
	*out = c;
	return STORE_OK;

out_close:
	rc = store_rc_from_sqlite(NULL, rc, "open database");
	sqlite3_close(c->db);
	free(c);
	return rc;
}

static void conn_close(struct conn *c)
{
	for (int i = 0; i < SQL_STMT_COUNT; i++)
		sqlite3_finalize(c->stmt[i]);
	sqlite3_close(c->db);
	free(c);
}

int conn_get(struct store *st, struct conn **out)
{
	struct conn *c = NULL;
	int rc = STORE_OK;
	int open_new = 0;
	int checkpointing;

	pthread_mutex_lock(&st->lock);
	while (!st->free_list && st->nconn >= st->max_conn)
		pthread_cond_wait(&st->freed, &st->lock);
	if (st->free_list) {
		c = st->free_list;
		st->free_list = c->next_free;
	} else {
		st->nconn++;
		open_new = 1;
	}
	pthread_mutex_unlock(&st->lock);

	if (open_new) {
		rc = conn_open(st->db_path, &c);
		if (rc != STORE_OK) {
			pthread_mutex_lock(&st->lock);
			st->nconn--;
			pthread_cond_signal(&st->freed);
			pthread_mutex_unlock(&st->lock);
			return rc;
		}
	}
	pthread_mutex_lock(&st->lock);
	checkpointing = st->checkpointing;
	pthread_mutex_unlock(&st->lock);
	c->origin = st->origin;
	if (checkpointing && !c->autocheckpoint_off) {
		sqlite3_wal_autocheckpoint(c->db, 0);
		c->autocheckpoint_off = 1;
	}
	*out = c;
	return STORE_OK;
}

void conn_put(struct store *st, struct conn *c)
{
	pthread_mutex_lock(&st->lock);
	c->next_free = st->free_list;
	st->free_list = c;
	pthread_cond_signal(&st->freed);
	pthread_mutex_unlock(&st->lock);
}

sqlite3_stmt *stmt_get(struct conn *c, enum stmt_id id)
{
	sqlite3_stmt *s = c->stmt[id];

	if (!s) {
		if (sqlite3_prepare_v3(c->db, store_sql[id], -1,
				       SQLITE_PREPARE_PERSISTENT, &s,
				       NULL) != SQLITE_OK) {
			fprintf(stderr, "mlfs: store: cannot prepare '%s': %s\n",
				store_sql[id], sqlite3_errmsg(c->db));
			return NULL;
		}
		c->stmt[id] = s;
		return s;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

int store_read_rows(struct store *st, const struct store_read *r)
{
	struct conn *c;
	sqlite3_stmt *s;
	int rows = 0, stop = 0;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	s = stmt_get(c, r->id);
	if (!s) {
		conn_put(st, c);
		return STORE_IO;
	}
	if (r->bind)
		r->bind(s, r->bind_arg);
	while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		rows++;
		stop = r->row(st, s, r->row_arg);
	}
	if (stop < 0)
		rc = stop;	/* the row callback's error */
	else if (!stop && rc != SQLITE_DONE)
		rc = store_rc_from_sqlite(c, rc, r->what);
	else
		rc = rows || !r->need_row ? STORE_OK : STORE_NOT_FOUND;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	conn_put(st, c);
	return rc;
}

void bind_text1(sqlite3_stmt *s, const void *arg)
{
	sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
}

void bind_int64_1(sqlite3_stmt *s, const void *arg)
{
	sqlite3_bind_int64(s, 1, *(const int64_t *)arg);
}

void bind_int64_text(sqlite3_stmt *s, const void *arg)
{
	const struct int64_text *k = arg;

	sqlite3_bind_int64(s, 1, k->id);
	sqlite3_bind_text(s, 2, k->text, -1, SQLITE_STATIC);
}

int int64_row(struct store *st, sqlite3_stmt *s, void *out)
{
	(void)st;
	*(int64_t *)out = sqlite3_column_int64(s, 0);
	return 1;
}

int stmt_exec(struct conn *c, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	rc = rc == SQLITE_DONE ? STORE_OK : store_rc_from_sqlite(c, rc, what);
	sqlite3_reset(s);
	return rc;
}

int tx_begin(struct conn *c)
{
	sqlite3_stmt *s = stmt_get(c, SQL_BEGIN_IMMEDIATE);

	return s ? stmt_exec(c, s, "begin transaction") : STORE_IO;
}

int tx_commit(struct conn *c)
{
	sqlite3_stmt *s = stmt_get(c, SQL_COMMIT);

	return s ? stmt_exec(c, s, "commit") : STORE_IO;
}

void tx_rollback(struct conn *c)
{
	sqlite3_stmt *s;

	if (sqlite3_get_autocommit(c->db))
		return;	/* nothing open, or SQLite already rolled back */
	s = stmt_get(c, SQL_ROLLBACK);
	if (s)
		stmt_exec(c, s, "rollback");
}

char *col_strdup(sqlite3_stmt *s, int col)
{
	const unsigned char *t;
	int n;
	char *p;

	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return NULL;
	t = sqlite3_column_text(s, col);
	n = sqlite3_column_bytes(s, col);
	p = malloc((size_t)n + 1);
	if (!p)
		return NULL;
	memcpy(p, t ? (const char *)t : "", (size_t)n);
	p[n] = '\0';
	return p;
}

int64_t col_int64_or(sqlite3_stmt *s, int col, int64_t dflt)
{
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return dflt;
	return sqlite3_column_int64(s, col);
}

int change_add(struct conn *c, enum change_kind kind, int64_t exp_id,
	       int64_t run_id, int64_t object_id, int64_t now_ms)
{
	sqlite3_stmt *s = stmt_get(c, SQL_CHANGE_INSERT);

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, now_ms);
	sqlite3_bind_int(s, 2, kind);
	sqlite3_bind_int64(s, 3, exp_id);
	sqlite3_bind_int64(s, 4, run_id);
	sqlite3_bind_int64(s, 5, object_id);
	sqlite3_bind_int64(s, 6, c->origin);
	return stmt_exec(c, s, "record change");
}

/* ---- opening --------------------------------------------------------- */

static int make_dirs(const char *dir, char *err, size_t errlen)
{
	char path[4096];

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		goto fail_dir;
	for (size_t i = 0; i < sizeof(workspace_subdirs) / sizeof(*workspace_subdirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, workspace_subdirs[i]);
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			dir = path;
			goto fail_dir;
		}
	}
	return STORE_OK;

fail_dir:
	if (err)
		snprintf(err, errlen, "cannot create directory '%s': %s", dir,
			 strerror(errno));
	return STORE_IO;
}

static void random_uuid(char out[37])
{
	unsigned char b[16] = { 0 };
	static const char hex[] = "0123456789abcdef";
	int j = 0;

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		int64_t t = time_now_ms() ^ (int64_t)getpid() << 20;

		memcpy(b, &t, sizeof(t));
	}
	b[6] = (b[6] & 0x0f) | 0x40;	/* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[b[i] >> 4];
		out[j++] = hex[b[i] & 15];
	}
	out[j] = '\0';
}

static int init_workspace_row(sqlite3 *db, const char *dir)
{
	char *copy = strdup(dir);
	char uuid[37];
	sqlite3_stmt *s = NULL;
	int rc;

	if (!copy)
		return STORE_NOMEM;
	random_uuid(uuid);
	rc = sqlite3_prepare_v2(db,
				"INSERT OR IGNORE INTO workspace (id, name, uuid, "
				"created_ms, updated_ms) VALUES (1, ?1, ?2, ?3, ?3)",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		goto out;
	sqlite3_bind_text(s, 1, basename(copy), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, time_now_ms());
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
out:
	sqlite3_finalize(s);
	free(copy);
	return rc == SQLITE_OK ? STORE_OK : store_rc_from_sqlite(NULL, rc, "init workspace");
}

/*
 * Switches @db to WAL. Needs an exclusive lock for a moment, and SQLite
 * may answer SQLITE_BUSY without calling the busy handler (to avoid
 * deadlock) when several processes open a new workspace at once: retry.
 */
static int use_wal(sqlite3 *db)
{
	struct timespec pause = { 0, 1000000 };	/* 1 ms */
	int64_t deadline = time_now_ms() + STORE_BUSY_TIMEOUT_MS;
	int rc;

	do {
		rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL,
				  NULL);
		if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			return rc;
		nanosleep(&pause, NULL);
	} while (time_now_ms() < deadline);
	return rc;
}

/* Opens (creating if asked) the database file and brings its schema up. */
static int prepare_database(const char *dir, const char *db_path, int create,
			    char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int64_t deadline = 0;
	int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
	int rc;

	rc = sqlite3_open_v2(db_path, &db, flags, NULL);
	if (rc != SQLITE_OK) {
		if (err)
			snprintf(err, errlen, "cannot open '%s': %s", db_path,
				 sqlite3_errstr(rc));
		rc = rc == SQLITE_CANTOPEN ? STORE_NOT_FOUND : STORE_IO;
		goto out;
	}
	sqlite3_busy_handler(db, busy_wait, &deadline);
	rc = use_wal(db);
	if (rc != SQLITE_OK) {
		if (err)
			snprintf(err, errlen, "cannot use '%s': %s", db_path,
				 sqlite3_errmsg(db));
		rc = rc == SQLITE_NOTADB ? STORE_CORRUPT : STORE_IO;
		goto out;
	}
	rc = schema_migrate(db, STORE_SCHEMA_VERSION, err, errlen);
	if (rc != STORE_OK)
		goto out;
	rc = init_workspace_row(db, dir);
	if (rc != STORE_OK && err)
		snprintf(err, errlen, "cannot initialise workspace: %s",
			 store_strerror(rc));
out:
	sqlite3_close(db);
	return rc;
}

int store_open(const char *dir, int flags, struct store **out, char *err,
	       size_t errlen)
{
	struct store *st;
	struct stat sb;
	int rc;

	st = calloc(1, sizeof(*st));
	if (!st)
		return STORE_NOMEM;
	rc = STORE_NOMEM;
	st->dir = realpath(dir, NULL);
	if (!st->dir && errno == ENOENT && (flags & STORE_CREATE)) {
		rc = make_dirs(dir, err, errlen);
		if (rc != STORE_OK)
			goto out_free;
		st->dir = realpath(dir, NULL);
	}
	if (!st->dir) {
		if (err)
			snprintf(err, errlen, "cannot open workspace '%s': %s",
				 dir, strerror(errno));
		rc = errno == ENOENT ? STORE_NOT_FOUND : STORE_IO;
		goto out_free;
	}
	if (asprintf(&st->db_path, "%s/workspace.db", st->dir) < 0) {
		st->db_path = NULL;
		goto out_free;
	}
	if (asprintf(&st->notify_path, "%s/notify", st->dir) < 0) {
		st->notify_path = NULL;
		goto out_free;
	}
	if (stat(st->db_path, &sb) < 0 && !(flags & STORE_CREATE)) {
		if (err)
			snprintf(err, errlen, "'%s' is not an mlfs workspace "
				 "(no workspace.db)", st->dir);
		rc = STORE_NOT_FOUND;
		goto out_free;
	}
	/* Also for an existing workspace: a newer mlfs may add directories
	 * (datastore/ came with schema 4). */
	rc = make_dirs(st->dir, err, errlen);
	if (rc != STORE_OK)
		goto out_free;
	rc = prepare_database(st->dir, st->db_path, flags & STORE_CREATE, err,
			      errlen);
	if (rc != STORE_OK)
		goto out_free;
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->freed, NULL);
	st->max_conn = POOL_MAX;
	if (getrandom(&st->origin, sizeof(st->origin), 0) != sizeof(st->origin))
		st->origin = time_now_ms() ^ (int64_t)getpid() << 32;
	st->origin &= INT64_MAX;
	rc = journal_recover(st, err, errlen);
	if (rc != STORE_OK) {
		store_close(st);
		return rc;
	}
	*out = st;
	return STORE_OK;

out_free:
	free(st->notify_path);
	free(st->db_path);
	free(st->dir);
	free(st);
	return rc;
}

static void close_pooled(struct store *st)
{
	struct conn *c, *next;

	pthread_mutex_lock(&st->lock);
	for (c = st->free_list; c; c = next) {
		next = c->next_free;
		conn_close(c);
		st->nconn--;
	}
	st->free_list = NULL;
	pthread_mutex_unlock(&st->lock);
}

void store_before_fork(struct store *st)
{
	close_pooled(st);
}

void store_close(struct store *st)
{
	if (!st)
		return;
	journal_close(st);
	close_pooled(st);
	pthread_cond_destroy(&st->freed);
	pthread_mutex_destroy(&st->lock);
	free(st->notify_path);
	free(st->db_path);
	free(st->dir);
	free(st);
}

int store_migrate_to(const char *db_path, int version)
{
	sqlite3 *db = NULL;
	int rc;

	if (version < 1 || version > STORE_SCHEMA_VERSION)
		return STORE_INVALID;
	rc = sqlite3_open_v2(db_path, &db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL,
				  NULL);
	rc = rc == SQLITE_OK ? schema_migrate(db, version, NULL, 0)
			     : store_rc_from_sqlite(NULL, rc, "migrate");
	sqlite3_close(db);
	return rc;
}

int store_workspace_get(struct store *st, struct store_workspace *out)
{
	struct conn *c;
	sqlite3_stmt *s;
	int rc;

	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	s = stmt_get(c, SQL_WORKSPACE_GET);
	rc = STORE_IO;
	if (!s)
		goto out_put;
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? STORE_CORRUPT
				       : store_rc_from_sqlite(c, rc, "workspace");
		goto out_reset;
	}
	out->name = col_strdup(s, 0);
	out->uuid = col_strdup(s, 1);
	out->created_ms = sqlite3_column_int64(s, 2);
	out->updated_ms = sqlite3_column_int64(s, 3);
	out->schema_version = STORE_SCHEMA_VERSION;
	rc = out->name && out->uuid ? STORE_OK : STORE_NOMEM;
	if (rc != STORE_OK)
		store_workspace_release(out);
out_reset:
	sqlite3_reset(s);
out_put:
	conn_put(st, c);
	return rc;
}

void store_workspace_release(struct store_workspace *ws)
{
	free(ws->name);
	free(ws->uuid);
	ws->name = ws->uuid = NULL;
}

int store_checkpoint(struct store *st)
{
	struct conn *c;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	pthread_mutex_lock(&st->lock);
	st->checkpointing = 1;	/* from now on, here and not on commit */
	pthread_mutex_unlock(&st->lock);
	rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
				       NULL, NULL);
	rc = rc == SQLITE_OK ? STORE_OK : store_rc_from_sqlite(c, rc, "checkpoint");
	conn_put(st, c);
	return rc;
}

int store_integrity_check(struct store *st)
{
	struct conn *c;
	sqlite3_stmt *s = NULL;
	int rc;

	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		return rc;
	rc = sqlite3_prepare_v2(c->db, "PRAGMA integrity_check", -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0
			     ? STORE_OK : STORE_CORRUPT;
	else
		rc = store_rc_from_sqlite(c, rc, "integrity check");
	sqlite3_finalize(s);
	conn_put(st, c);
	return rc;
}
