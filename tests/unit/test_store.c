/*
 * test_store.c - the workspace store: opening and migrations, experiments,
 * runs, tags, properties, metrics, the runs table, events, the change
 * feed, the metric journal and concurrent writers (threads, processes).
 *
 * Every test gets its own workspace: the suite's .init makes a fresh
 * directory with mkdtemp() under /tmp and .fini removes it. Randomness is
 * a fixed-seed xorshift, so a failure reproduces.
 *
 * Code that runs in a forked child never uses cr_assert: it reports
 * through its exit status, which the parent asserts. A crashed mount is
 * a child that journals appends and _exit()s without store_close().
 *
 * The slow tests are the two event-pruning ones (STORE_EVENTS_KEEP + 300
 * events each) and the concurrent writers; the rest take milliseconds.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlfs/store.h"
#include "mlfs/strbuf.h"

/* ---- fixture: one temporary workspace directory per test ------------- */

static char ws_root[PATH_MAX];	/* the mkdtemp directory */

static void ws_setup(void)
{
	char tmpl[] = "/tmp/mlfs-test-store-XXXXXX";
	char *dir = mkdtemp(tmpl);

	cr_assert_not_null(dir, "cannot create temporary directory: %s",
			   strerror(errno));
	/* realpath: store_dir() and error messages use the resolved path. */
	cr_assert_not_null(realpath(dir, ws_root));
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void ws_teardown(void)
{
	if (ws_root[0])
		nftw(ws_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(store, .init = ws_setup, .fini = ws_teardown, .timeout = 120);

/* ws_root/@rel, or ws_root itself for "". */
static void ws_path(char *out, const char *rel)
{
	int n = snprintf(out, PATH_MAX, "%s%s%s", ws_root, *rel ? "/" : "",
			 rel);

	cr_assert(n > 0 && n < PATH_MAX);
}

static struct store *open_ws(const char *dir, int flags)
{
	struct store *st = NULL;
	char err[512] = "";
	int rc = store_open(dir, flags, &st, err, sizeof(err));

	cr_assert_eq(rc, STORE_OK, "store_open('%s'): %s: %s", dir,
		     store_strerror(rc), err);
	cr_assert_not_null(st);
	return st;
}

static struct store *open_fresh(void)
{
	return open_ws(ws_root, STORE_CREATE);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deterministic xorshift64*; never rand(). */
static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed ? seed : 1;
}

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* Uniform in [lo, hi]. */
static int64_t rng_range(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1));
}

/* PRAGMA user_version of @db_path, read with SQLite directly. */
static int db_user_version(const char *db_path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int v;

	cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL),
		     SQLITE_OK, "cannot open '%s'", db_path);
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s,
					NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static void db_exec(const char *db_path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc;

	cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL),
		     SQLITE_OK, "cannot open '%s'", db_path);
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	cr_assert_eq(rc, SQLITE_OK, "'%s': %s", sql, msg ? msg : "?");
	sqlite3_free(msg);
	sqlite3_close(db);
}

static int64_t make_experiment(struct store *st, const char *name)
{
	struct store_experiment e = { 0 };
	int rc = store_experiment_create(st, name, &e);
	int64_t id = e.id;

	cr_assert_eq(rc, STORE_OK, "create experiment '%s': %s", name,
		     store_strerror(rc));
	store_experiment_release(&e);
	return id;
}

static int64_t make_run(struct store *st, int64_t exp_id, const char *name)
{
	struct store_run r = { 0 };
	int rc = store_run_create_interactive(st, exp_id, name, &r);
	int64_t id = r.id;

	cr_assert_eq(rc, STORE_OK, "create run '%s': %s", name,
		     store_strerror(rc));
	store_run_release(&r);
	return id;
}

/*
 * Logs @n points to metric @name of run @run_id, creating the metric
 * first (store_metric_ensure + store_metric_append).
 */
static int append_named(struct store *st, int64_t run_id, const char *name,
			const struct metric_point *pts, size_t n, int64_t ts_ms)
{
	int64_t id = 0;
	int rc = store_metric_ensure(st, run_id, name, &id, NULL);

	return rc != STORE_OK ? rc : store_metric_append(st, id, pts, n, ts_ms);
}

static int64_t ensure_metric(struct store *st, int64_t run_id,
			     const char *name)
{
	int64_t id = 0;
	int rc = store_metric_ensure(st, run_id, name, &id, NULL);

	cr_assert_eq(rc, STORE_OK, "ensure metric '%s': %s", name,
		     store_strerror(rc));
	cr_assert_gt(id, 0);
	return id;
}

/* Appends one point whose text is @text (its value parsed from it). */
static int append_text(struct store *st, int64_t metric_id, const char *text)
{
	struct metric_point p = {
		.value = strtod(text, NULL),
		.text = text,
		.text_len = strlen(text),
	};

	return store_metric_append(st, metric_id, &p, 1, now_ms());
}

/* All chunk text of a metric, concatenated, as a heap string. */
struct chunk_text {
	struct strbuf sb;
	int64_t next_seq;
	int ordered;		/* chunks came back contiguous, in order */
	size_t nchunks;
};

static int collect_text(void *ctx, const struct metric_chunk *c)
{
	struct chunk_text *ct = ctx;

	if (c->first_seq != ct->next_seq)
		ct->ordered = 0;
	ct->next_seq = c->first_seq + c->n;
	ct->nchunks++;
	return strbuf_add(&ct->sb, c->text, c->text_len) != 0;
}

static char *metric_text(struct store *st, int64_t metric_id, size_t *len,
			 size_t *nchunks)
{
	struct chunk_text ct = { STRBUF_INIT, 0, 1, 0 };
	int rc = store_metric_read(st, metric_id, 0, collect_text, &ct);
	char *text;

	cr_assert_eq(rc, STORE_OK, "store_metric_read: %s", store_strerror(rc));
	cr_assert(ct.ordered, "chunks are not contiguous from seq 0");
	if (nchunks)
		*nchunks = ct.nchunks;
	text = strbuf_detach(&ct.sb, len);
	cr_assert_not_null(text);
	return text;
}

/* ---- opening and migrations ------------------------------------------ */

Test(store, open_empty_directory_creates_current_schema)
{
	char db_path[PATH_MAX], sub[PATH_MAX];
	static const char *const subdirs[] = { "runs", "blobs", "cache",
						 "journal" };
	struct store *st = open_fresh();
	struct stat sb;

	cr_assert_str_eq(store_dir(st), ws_root);
	cr_assert_eq(store_integrity_check(st), STORE_OK);
	store_close(st);

	ws_path(db_path, "workspace.db");
	cr_assert_eq(stat(db_path, &sb), 0, "no workspace.db was created");
	cr_assert_eq(db_user_version(db_path), STORE_SCHEMA_VERSION);
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(*subdirs); i++) {
		ws_path(sub, subdirs[i]);
		cr_assert_eq(stat(sub, &sb), 0, "no '%s' directory", subdirs[i]);
		cr_assert(S_ISDIR(sb.st_mode));
	}
}

Test(store, open_creates_missing_directory_with_create_flag)
{
	char dir[PATH_MAX], db_path[PATH_MAX];
	struct store *st;

	ws_path(dir, "new-ws");
	st = open_ws(dir, STORE_CREATE);
	cr_assert_str_eq(store_dir(st), dir);
	store_close(st);
	ws_path(db_path, "new-ws/workspace.db");
	cr_assert_eq(db_user_version(db_path), STORE_SCHEMA_VERSION);
}

/*
 * Builds a database at schema @version the way an older mlfs left it,
 * seeds it with SQL valid at every version, opens it with store_open and
 * checks the data survived and the schema is current.
 */
static void check_migration_from(int version)
{
	char dir[PATH_MAX], db_path[PATH_MAX], sql[512];
	struct store_experiment e = { 0 };
	struct store_workspace ws = { 0 };
	static const char uuid[] = "0badc0de-0000-4000-8000-0123456789ab";
	struct store *st;
	int rc;

	snprintf(sql, sizeof(sql), "v%d", version);
	ws_path(dir, sql);
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(sql, sizeof(sql), "v%d/workspace.db", version);
	ws_path(db_path, sql);

	rc = store_migrate_to(db_path, version);
	cr_assert_eq(rc, STORE_OK, "store_migrate_to(%d): %s", version,
		     store_strerror(rc));
	cr_assert_eq(db_user_version(db_path), version);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO workspace (id, name, uuid, created_ms, updated_ms) "
		 "VALUES (1, 'old', '%s', 1234, 1234);"
		 "INSERT INTO experiment (name, created_ms, updated_ms) "
		 "VALUES ('kept', 1000, 2000);", uuid);
	db_exec(db_path, sql);

	st = open_ws(dir, 0);
	cr_assert_eq(store_workspace_get(st, &ws), STORE_OK);
	cr_assert_str_eq(ws.uuid, uuid, "schema %d: uuid lost", version);
	cr_assert_str_eq(ws.name, "old");
	cr_assert_eq(ws.created_ms, 1234);
	cr_assert_eq(ws.schema_version, STORE_SCHEMA_VERSION);
	store_workspace_release(&ws);
	cr_assert_eq(store_experiment_get(st, "kept", &e), STORE_OK,
		     "schema %d: experiment lost", version);
	cr_assert_eq(e.created_ms, 1000);
	cr_assert_eq(e.run_count, 0);
	store_experiment_release(&e);
	/* The migrated store is fully usable. */
	make_run(st, make_experiment(st, "after"), "r1");
	cr_assert_eq(store_integrity_check(st), STORE_OK);
	store_close(st);
	cr_assert_eq(db_user_version(db_path), STORE_SCHEMA_VERSION,
		     "schema %d was not migrated to %d", version,
		     STORE_SCHEMA_VERSION);
}

Test(store, open_migrates_every_older_schema_keeping_data)
{
	for (int v = 1; v < STORE_SCHEMA_VERSION; v++)
		check_migration_from(v);
}

Test(store, open_accepts_db_built_at_current_schema)
{
	check_migration_from(STORE_SCHEMA_VERSION);
}

Test(store, migrate_to_rejects_versions_out_of_range)
{
	char db_path[PATH_MAX];
	struct stat sb;

	ws_path(db_path, "workspace.db");
	cr_assert_eq(store_migrate_to(db_path, 0), STORE_INVALID);
	cr_assert_eq(store_migrate_to(db_path, STORE_SCHEMA_VERSION + 1),
		     STORE_INVALID);
	cr_assert_neq(stat(db_path, &sb), 0, "a refused migration made a file");
}

Test(store, open_refuses_newer_schema)
{
	char db_path[PATH_MAX], sql[64], err[512] = "";
	struct store *st = open_fresh();
	struct store *out = (struct store *)&st;	/* sentinel */
	int rc;

	store_close(st);
	ws_path(db_path, "workspace.db");
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		 STORE_SCHEMA_VERSION + 1);
	db_exec(db_path, sql);

	rc = store_open(ws_root, 0, &out, err, sizeof(err));
	cr_assert_eq(rc, STORE_TOO_NEW, "got %s", store_strerror(rc));
	cr_assert_eq(out, (struct store *)&st, "*out changed on error");
	cr_assert_neq(err[0], '\0', "no error message");
	rc = store_open(ws_root, STORE_CREATE, &out, err, sizeof(err));
	cr_assert_eq(rc, STORE_TOO_NEW, "with STORE_CREATE: got %s",
		     store_strerror(rc));
	cr_assert_eq(db_user_version(db_path), STORE_SCHEMA_VERSION + 1,
		     "the newer schema version was overwritten");
}

Test(store, open_refuses_file_that_is_not_a_database)
{
	char db_path[PATH_MAX], err[512] = "", back[4096];
	char junk[4096];
	struct store *out = NULL;
	int fd, rc;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = "this is not an sqlite database\n"[i % 31];
	ws_path(db_path, "workspace.db");
	fd = open(db_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);

	for (int flags = 0; flags <= STORE_CREATE; flags += STORE_CREATE) {
		err[0] = '\0';
		rc = store_open(ws_root, flags, &out, err, sizeof(err));
		cr_assert(rc == STORE_CORRUPT || rc == STORE_IO,
			  "flags %d: got %d (%s)", flags, rc,
			  store_strerror(rc));
		cr_assert_null(out);
		cr_assert_not_null(strstr(err, db_path),
				   "message does not name '%s': '%s'", db_path,
				   err);
	}
	/* Refusing must not touch the file. */
	fd = open(db_path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(read(fd, back, sizeof(back)), (ssize_t)sizeof(back));
	cr_assert_eq(read(fd, back, 1), 0, "the file grew");
	close(fd);
	cr_assert_eq(memcmp(back, junk, sizeof(junk)), 0, "the file changed");
}

Test(store, open_missing_workspace_without_create_is_not_found)
{
	char dir[PATH_MAX], db_path[PATH_MAX], err[512] = "";
	struct store *out = (struct store *)&out;
	struct stat sb;
	int rc;

	ws_path(dir, "missing");
	rc = store_open(dir, 0, &out, err, sizeof(err));
	cr_assert_eq(rc, STORE_NOT_FOUND, "got %s", store_strerror(rc));
	cr_assert_eq(out, (struct store *)&out, "*out changed on error");
	cr_assert_neq(err[0], '\0');
	cr_assert_neq(stat(dir, &sb), 0, "the directory was created");

	/* An existing directory without workspace.db is not a workspace. */
	err[0] = '\0';
	rc = store_open(ws_root, 0, &out, err, sizeof(err));
	cr_assert_eq(rc, STORE_NOT_FOUND, "got %s", store_strerror(rc));
	cr_assert_neq(err[0], '\0');
	ws_path(db_path, "workspace.db");
	cr_assert_neq(stat(db_path, &sb), 0, "workspace.db was created");
	/* err may be NULL. */
	cr_assert_eq(store_open(dir, 0, &out, NULL, 0), STORE_NOT_FOUND);
}

Test(store, reopen_keeps_workspace_identity)
{
	struct store_workspace a = { 0 }, b = { 0 }, c = { 0 };
	const char *base = strrchr(ws_root, '/') + 1;
	struct store *st = open_fresh();

	cr_assert_eq(store_workspace_get(st, &a), STORE_OK);
	cr_assert_eq(strlen(a.uuid), 36, "uuid '%s'", a.uuid);
	cr_assert_eq(a.uuid[8], '-');
	cr_assert_eq(a.uuid[14], '4', "not a version 4 uuid: '%s'", a.uuid);
	cr_assert_str_eq(a.name, base);
	cr_assert_eq(a.schema_version, STORE_SCHEMA_VERSION);
	cr_assert_gt(a.created_ms, 0);
	store_close(st);

	st = open_ws(ws_root, 0);
	cr_assert_eq(store_workspace_get(st, &b), STORE_OK);
	store_close(st);
	st = open_ws(ws_root, STORE_CREATE);
	cr_assert_eq(store_workspace_get(st, &c), STORE_OK);
	store_close(st);

	cr_assert_str_eq(b.uuid, a.uuid);
	cr_assert_str_eq(c.uuid, a.uuid);
	cr_assert_eq(b.created_ms, a.created_ms);
	cr_assert_eq(c.created_ms, a.created_ms);
	store_workspace_release(&a);
	store_workspace_release(&b);
	store_workspace_release(&c);
	store_workspace_release(&c);	/* safe twice */
}

Test(store, integrity_check_ok_on_fresh_store)
{
	struct store *st = open_fresh();

	cr_assert_eq(store_integrity_check(st), STORE_OK);
	store_close(st);
}

Test(store, strerror_names_every_code)
{
	static const int codes[] = {
		STORE_OK, STORE_NOT_FOUND, STORE_EXISTS, STORE_INVALID,
		STORE_NOT_EMPTY, STORE_DENIED, STORE_BUSY, STORE_NOMEM,
		STORE_IO, STORE_TOO_NEW, STORE_CORRUPT, STORE_TOO_BIG,
	};
	const char *unknown = store_strerror(12345);

	for (size_t i = 0; i < sizeof(codes) / sizeof(*codes); i++) {
		const char *s = store_strerror(codes[i]);

		cr_assert_not_null(s);
		cr_assert_neq(s[0], '\0');
		cr_assert_str_neq(s, unknown, "code %d has no name", codes[i]);
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(s, store_strerror(codes[j]));
	}
}

/* ---- experiments ----------------------------------------------------- */

struct name_list {
	char *v[64];
	int64_t id[64];
	size_t n;
	size_t stop_after;	/* 0: never stop */
};

static int collect_experiment(void *ctx, const struct store_experiment *e)
{
	struct name_list *l = ctx;

	cr_assert_lt(l->n, 64);
	l->id[l->n] = e->id;
	l->v[l->n++] = strdup(e->name);
	return l->stop_after && l->n >= l->stop_after;
}

static void name_list_release(struct name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

Test(store, experiment_create_get_and_get_by_id)
{
	struct store_experiment e = { 0 }, g = { 0 }, h = { 0 };
	int64_t before = now_ms(), after;
	struct store *st = open_fresh();

	cr_assert_eq(store_experiment_create(st, "exp-1", &e), STORE_OK);
	after = now_ms();
	cr_assert_gt(e.id, 0);
	cr_assert_str_eq(e.name, "exp-1");
	cr_assert(e.created_ms >= before && e.created_ms <= after);
	cr_assert_eq(e.updated_ms, e.created_ms);
	cr_assert_eq(e.run_count, 0);

	cr_assert_eq(store_experiment_get(st, "exp-1", &g), STORE_OK);
	cr_assert_eq(g.id, e.id);
	cr_assert_str_eq(g.name, "exp-1");
	cr_assert_eq(g.created_ms, e.created_ms);
	cr_assert_eq(store_experiment_get_by_id(st, e.id, &h), STORE_OK);
	cr_assert_str_eq(h.name, "exp-1");
	cr_assert_eq(h.id, e.id);

	cr_assert_eq(store_experiment_get(st, "exp-2", &g), STORE_NOT_FOUND);
	cr_assert_eq(store_experiment_get(st, "EXP-1", &g), STORE_NOT_FOUND);
	cr_assert_eq(store_experiment_get_by_id(st, e.id + 100, &g),
		     STORE_NOT_FOUND);
	/* out is optional. */
	cr_assert_eq(store_experiment_create(st, "no-out", NULL), STORE_OK);
	store_experiment_release(&e);
	store_experiment_release(&g);
	store_experiment_release(&h);
	store_experiment_release(&h);
	store_close(st);
}

Test(store, experiment_list_is_in_name_order)
{
	static const char *const created[] = { "exp_a", "exp-b", "Exp.C", "1",
					       "exp" };
	static const char *const sorted[] = { "1", "Exp.C", "exp", "exp-b",
					      "exp_a" };
	struct name_list l = { .n = 0 };
	struct store *st = open_fresh();

	cr_assert_eq(store_experiment_list(st, collect_experiment, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 0);
	for (size_t i = 0; i < 5; i++)
		make_experiment(st, created[i]);
	cr_assert_eq(store_experiment_list(st, collect_experiment, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 5);
	for (size_t i = 0; i < 5; i++)
		cr_assert_str_eq(l.v[i], sorted[i], "position %zu", i);
	name_list_release(&l);

	/* A non-zero return stops the walk. */
	l.stop_after = 2;
	cr_assert_eq(store_experiment_list(st, collect_experiment, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 2);
	name_list_release(&l);
	store_close(st);
}

Test(store, experiment_create_rejects_invalid_names)
{
	char long_ok[256], long_bad[257];
	static const char *const bad[] = {
		".x", "a b", "", "a/b", ".", "..", "a\nb", "tab\t", "é",
		"a\\b", "a:b",
	};
	struct name_list l = { .n = 0 };
	struct store *st = open_fresh();

	memset(long_ok, 'a', 255);
	long_ok[255] = '\0';
	memset(long_bad, 'a', 256);
	long_bad[256] = '\0';
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_assert_eq(store_experiment_create(st, bad[i], NULL),
			     STORE_INVALID, "'%s' accepted", bad[i]);
	cr_assert_eq(store_experiment_create(st, long_bad, NULL),
		     STORE_INVALID, "256-byte name accepted");
	cr_assert_eq(store_experiment_create(st, long_ok, NULL), STORE_OK,
		     "255-byte name refused");
	cr_assert_eq(store_experiment_create(st, "a.b-c_D9", NULL), STORE_OK);
	cr_assert_eq(store_experiment_list(st, collect_experiment, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 2, "a refused name was stored");
	name_list_release(&l);
	store_close(st);
}

Test(store, experiment_create_duplicate_is_exists)
{
	struct store_experiment e = { 0 };
	struct store *st = open_fresh();
	int64_t id = make_experiment(st, "dup");

	cr_assert_eq(store_experiment_create(st, "dup", &e), STORE_EXISTS);
	cr_assert_null(e.name, "out filled on error");
	cr_assert_eq(store_experiment_create(st, "Dup", NULL), STORE_OK,
		     "names are case-sensitive");
	cr_assert_eq(store_experiment_get(st, "dup", &e), STORE_OK);
	cr_assert_eq(e.id, id);
	store_experiment_release(&e);
	store_close(st);
}

Test(store, experiment_delete_removes_it)
{
	struct store_experiment e = { 0 };
	struct name_list l = { .n = 0 };
	struct store *st = open_fresh();
	int64_t id = make_experiment(st, "gone");

	make_experiment(st, "stays");
	cr_assert_eq(store_experiment_delete(st, "gone"), STORE_OK);
	cr_assert_eq(store_experiment_get(st, "gone", &e), STORE_NOT_FOUND);
	cr_assert_eq(store_experiment_get_by_id(st, id, &e), STORE_NOT_FOUND);
	cr_assert_eq(store_experiment_list(st, collect_experiment, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 1);
	cr_assert_str_eq(l.v[0], "stays");
	name_list_release(&l);
	cr_assert_eq(store_experiment_delete(st, "gone"), STORE_NOT_FOUND);
	cr_assert_eq(store_experiment_delete(st, "never"), STORE_NOT_FOUND);
	/* The name is free again. */
	cr_assert_eq(store_experiment_create(st, "gone", NULL), STORE_OK);
	store_close(st);
}

Test(store, experiment_delete_with_runs_is_not_empty)
{
	struct store_experiment e = { 0 };
	struct store *st = open_fresh();
	int64_t id = make_experiment(st, "busy");

	make_run(st, id, "r1");
	cr_assert_eq(store_experiment_delete(st, "busy"), STORE_NOT_EMPTY);
	cr_assert_eq(store_experiment_get(st, "busy", &e), STORE_OK);
	cr_assert_eq(e.id, id);
	cr_assert_eq(e.run_count, 1);
	store_experiment_release(&e);
	store_close(st);
}

/* ---- runs ------------------------------------------------------------ */

struct run_list {
	char *name[64];
	int64_t id[64], number[64];
	size_t n;
	size_t stop_after;
};

static int collect_run(void *ctx, const struct store_run_entry *r)
{
	struct run_list *l = ctx;

	cr_assert_lt(l->n, 64);
	l->name[l->n] = strdup(r->name);
	l->id[l->n] = r->id;
	l->number[l->n++] = r->number;
	return l->stop_after && l->n >= l->stop_after;
}

static void run_list_release(struct run_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->name[i]);
	l->n = 0;
}

Test(store, run_create_numbers_per_experiment_and_starts_running)
{
	static const struct {
		int exp;
		const char *name;
		int64_t number;
	} seq[] = {
		{ 0, "a1", 1 }, { 0, "a2", 2 }, { 1, "b1", 1 }, { 0, "a3", 3 },
		{ 1, "b2", 2 }, { 0, "a4", 4 },
	};
	struct store_experiment e = { 0 };
	struct store *st = open_fresh();
	int64_t exp[2];

	exp[0] = make_experiment(st, "A");
	exp[1] = make_experiment(st, "B");
	for (size_t i = 0; i < sizeof(seq) / sizeof(*seq); i++) {
		struct store_run r = { 0 };
		int64_t before = now_ms(), after;

		cr_assert_eq(store_run_create_interactive(st, exp[seq[i].exp],
							  seq[i].name, &r),
			     STORE_OK);
		after = now_ms();
		cr_assert_gt(r.id, 0);
		cr_assert_str_eq(r.name, seq[i].name);
		cr_assert_eq(r.experiment_id, exp[seq[i].exp]);
		cr_assert_eq(r.number, seq[i].number, "run %s numbered %lld",
			     seq[i].name, (long long)r.number);
		cr_assert_eq(r.status, RUN_RUNNING);
		cr_assert_eq(r.interactive, 1);
		cr_assert(r.started_ms >= before && r.started_ms <= after,
			  "started_ms not set");
		cr_assert(r.created_ms >= before && r.created_ms <= after);
		cr_assert_eq(r.ended_ms, -1);
		cr_assert_null(r.display_name);
		cr_assert_null(r.compute_target);
		cr_assert_eq(r.parent_id, 0);
		cr_assert_eq(r.has_exit_code, 0);
		cr_assert_null(r.error);
		store_run_release(&r);
		store_run_release(&r);
	}
	cr_assert_eq(store_experiment_get_by_id(st, exp[0], &e), STORE_OK);
	cr_assert_eq(e.run_count, 4);
	store_experiment_release(&e);
	store_close(st);
}

Test(store, run_create_refuses_taken_invalid_names_and_missing_experiment)
{
	struct store_run r = { 0 };
	struct store *st = open_fresh();
	int64_t a = make_experiment(st, "A");
	int64_t b = make_experiment(st, "B");
	char long_bad[257];

	memset(long_bad, 'r', 256);
	long_bad[256] = '\0';
	make_run(st, a, "shared");
	cr_assert_eq(store_run_create_interactive(st, b, "shared", &r),
		     STORE_EXISTS, "run names are unique in the workspace");
	cr_assert_null(r.name);
	cr_assert_eq(store_run_create_interactive(st, a, "shared", NULL),
		     STORE_EXISTS);
	cr_assert_eq(store_run_create_interactive(st, a, ".x", NULL),
		     STORE_INVALID);
	cr_assert_eq(store_run_create_interactive(st, a, "a b", NULL),
		     STORE_INVALID);
	cr_assert_eq(store_run_create_interactive(st, a, "", NULL),
		     STORE_INVALID);
	cr_assert_eq(store_run_create_interactive(st, a, "a/b", NULL),
		     STORE_INVALID);
	cr_assert_eq(store_run_create_interactive(st, a, long_bad, NULL),
		     STORE_INVALID);
	cr_assert_eq(store_run_create_interactive(st, b + 100, "orphan", NULL),
		     STORE_NOT_FOUND);
	/* Refused creates take no number: B's first run is still 1. */
	cr_assert_eq(store_run_create_interactive(st, b, "b1", &r), STORE_OK);
	cr_assert_eq(r.number, 1);
	store_run_release(&r);
	store_close(st);
}

Test(store, run_find_only_within_its_experiment)
{
	struct store_run r = { 0 };
	struct store *st = open_fresh();
	int64_t a = make_experiment(st, "A");
	int64_t b = make_experiment(st, "B");
	int64_t id = make_run(st, a, "only-in-a");

	cr_assert_eq(store_run_find(st, a, "only-in-a", &r), STORE_OK);
	cr_assert_eq(r.id, id);
	cr_assert_eq(r.experiment_id, a);
	store_run_release(&r);
	cr_assert_eq(store_run_find(st, b, "only-in-a", &r), STORE_NOT_FOUND);
	cr_assert_eq(store_run_find(st, a, "other", &r), STORE_NOT_FOUND);
	cr_assert_eq(store_run_get(st, id, &r), STORE_OK);
	cr_assert_str_eq(r.name, "only-in-a");
	store_run_release(&r);
	cr_assert_eq(store_run_get(st, id + 100, &r), STORE_NOT_FOUND);
	store_close(st);
}

Test(store, run_list_in_number_order_and_latest)
{
	static const char *const names[] = { "zeta", "alpha", "mid", "beta" };
	struct run_list l = { .n = 0 };
	struct store *st = open_fresh();
	int64_t a = make_experiment(st, "A");
	int64_t b = make_experiment(st, "B");
	char *latest = NULL;

	cr_assert_eq(store_run_latest(st, a, &latest), STORE_NOT_FOUND);
	cr_assert_eq(store_run_list(st, a, collect_run, &l), STORE_OK);
	cr_assert_eq(l.n, 0);
	for (size_t i = 0; i < 4; i++) {
		make_run(st, a, names[i]);
		if (i == 1)
			make_run(st, b, "in-b");
	}
	cr_assert_eq(store_run_list(st, a, collect_run, &l), STORE_OK);
	cr_assert_eq(l.n, 4);
	for (size_t i = 0; i < 4; i++) {
		cr_assert_str_eq(l.name[i], names[i]);
		cr_assert_eq(l.number[i], (int64_t)i + 1);
	}
	run_list_release(&l);
	l.stop_after = 1;
	cr_assert_eq(store_run_list(st, a, collect_run, &l), STORE_OK);
	cr_assert_eq(l.n, 1);
	run_list_release(&l);

	cr_assert_eq(store_run_latest(st, a, &latest), STORE_OK);
	cr_assert_str_eq(latest, "beta");
	free(latest);
	cr_assert_eq(store_run_latest(st, b, &latest), STORE_OK);
	cr_assert_str_eq(latest, "in-b");
	free(latest);
	store_close(st);
}

Test(store, run_set_status_follows_the_lifecycle)
{
	struct store_run r = { 0 }, r2 = { 0 };
	struct store *st = open_fresh();
	int64_t exp = make_experiment(st, "A");
	int64_t id = make_run(st, exp, "r1");
	int64_t other = make_run(st, exp, "r2");
	int64_t before, after, head, head2;

	before = now_ms();
	cr_assert_eq(store_run_set_status(st, id, RUN_COMPLETED), STORE_OK);
	after = now_ms();
	cr_assert_eq(store_run_get(st, id, &r), STORE_OK);
	cr_assert_eq(r.status, RUN_COMPLETED);
	cr_assert(r.ended_ms >= before && r.ended_ms <= after,
		  "ended_ms %lld not set", (long long)r.ended_ms);
	cr_assert_geq(r.ended_ms, r.started_ms);

	/* The same status again: accepted, nothing changes. */
	cr_assert_eq(store_changes_head(st, &head), STORE_OK);
	cr_assert_eq(store_run_set_status(st, id, RUN_COMPLETED), STORE_OK);
	cr_assert_eq(store_run_get(st, id, &r2), STORE_OK);
	cr_assert_eq(r2.status, RUN_COMPLETED);
	cr_assert_eq(r2.ended_ms, r.ended_ms);
	cr_assert_eq(r2.updated_ms, r.updated_ms);
	cr_assert_eq(store_changes_head(st, &head2), STORE_OK);
	cr_assert_eq(head2, head, "a no-op status write recorded a change");
	store_run_release(&r2);

	/* A finished run keeps its status. */
	cr_assert_eq(store_run_set_status(st, id, RUN_FAILED), STORE_DENIED);
	cr_assert_eq(store_run_set_status(st, id, RUN_CANCELED), STORE_DENIED);
	cr_assert_eq(store_run_set_status(st, id, RUN_RUNNING), STORE_INVALID);
	cr_assert_eq(store_run_get(st, id, &r2), STORE_OK);
	cr_assert_eq(r2.status, RUN_COMPLETED);
	cr_assert_eq(r2.ended_ms, r.ended_ms);
	store_run_release(&r2);
	store_run_release(&r);

	/* Users may only finish a run. */
	cr_assert_eq(store_run_set_status(st, other, RUN_QUEUED), STORE_INVALID);
	cr_assert_eq(store_run_set_status(st, other, RUN_RUNNING),
		     STORE_INVALID);
	cr_assert_eq(store_run_set_status(st, other, RUN_NOT_STARTED),
		     STORE_INVALID);
	cr_assert_eq(store_run_set_status(st, other, RUN_FINALIZING),
		     STORE_INVALID);
	cr_assert_eq(store_run_set_status(st, other, RUN_STATUS_COUNT),
		     STORE_INVALID);
	cr_assert_eq(store_run_get(st, other, &r), STORE_OK);
	cr_assert_eq(r.status, RUN_RUNNING);
	cr_assert_eq(r.ended_ms, -1);
	store_run_release(&r);
	cr_assert_eq(store_run_set_status(st, other, RUN_CANCELED), STORE_OK);
	cr_assert_eq(store_run_get(st, other, &r), STORE_OK);
	cr_assert_eq(r.status, RUN_CANCELED);
	store_run_release(&r);
	cr_assert_eq(store_run_set_status(st, id + 100, RUN_COMPLETED),
		     STORE_NOT_FOUND);
	store_close(st);
}

Test(store, run_status_name_and_parse_round_trip)
{
	for (int s = 0; s < RUN_STATUS_COUNT; s++) {
		const char *name = run_status_name((enum run_status)s);

		cr_assert_not_null(name);
		cr_assert_eq(run_status_parse(name, strlen(name)), s,
			     "'%s' does not parse back", name);
		for (int t = 0; t < s; t++)
			cr_assert_str_neq(name,
					  run_status_name((enum run_status)t));
	}
	cr_assert_str_eq(run_status_name(RUN_RUNNING), "Running");
	cr_assert_str_eq(run_status_name(RUN_CANCEL_REQUESTED),
			 "CancelRequested");
	cr_assert_eq(run_status_parse("running", 7), -1, "case-insensitive");
	cr_assert_eq(run_status_parse("RUNNING", 7), -1);
	cr_assert_eq(run_status_parse("Runnin", 6), -1, "prefix accepted");
	cr_assert_eq(run_status_parse("RunningX", 8), -1, "suffix accepted");
	cr_assert_eq(run_status_parse("Running\n", 8), -1);
	cr_assert_eq(run_status_parse("", 0), -1);
	/* Only @len bytes count. */
	cr_assert_eq(run_status_parse("Completed\n", 9), RUN_COMPLETED);
	cr_assert_str_eq(run_status_name(RUN_STATUS_COUNT), "Unknown");
	cr_assert(run_status_is_terminal(RUN_COMPLETED));
	cr_assert(run_status_is_terminal(RUN_FAILED));
	cr_assert(run_status_is_terminal(RUN_CANCELED));
	cr_assert_not(run_status_is_terminal(RUN_RUNNING));
	cr_assert_not(run_status_is_terminal(RUN_CANCEL_REQUESTED));
}

/* ---- tags and properties --------------------------------------------- */

struct kv_list {
	char *key[16];
	char *value[16];
	size_t len[16];
	size_t n;
};

static int collect_kv(void *ctx, const struct store_kv *kv)
{
	struct kv_list *l = ctx;

	cr_assert_lt(l->n, 16);
	l->key[l->n] = strdup(kv->key);
	l->value[l->n] = malloc(kv->len + 1);
	memcpy(l->value[l->n], kv->value, kv->len);
	l->len[l->n++] = kv->len;
	return 0;
}

static void kv_list_release(struct kv_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->key[i]);
		free(l->value[i]);
	}
	l->n = 0;
}

static void assert_tag(struct store *st, int64_t run, const char *key,
		       const char *want, size_t want_len)
{
	char *v = NULL;
	size_t len = 0;
	int rc = store_tag_get(st, run, key, &v, &len, NULL);

	cr_assert_eq(rc, STORE_OK, "tag '%s': %s", key, store_strerror(rc));
	cr_assert_eq(len, want_len, "tag '%s': %zu bytes, want %zu", key, len,
		     want_len);
	cr_assert_eq(memcmp(v, want, len), 0, "tag '%s' bytes differ", key);
	cr_assert_eq(v[len], '\0', "tag '%s' not NUL-terminated", key);
	free(v);
}

Test(store, tag_set_replace_get_delete_list)
{
	struct kv_list l = { .n = 0 };
	struct store *st = open_fresh();
	int64_t run = make_run(st, make_experiment(st, "A"), "r1");
	int64_t other = make_run(st, make_experiment(st, "B"), "r2");
	int64_t before = now_ms(), changed = 0;
	char *v = NULL;
	size_t len = 0;

	cr_assert_eq(store_tag_set(st, run, "b", "two", 3), STORE_OK);
	cr_assert_eq(store_tag_set(st, run, "a", "one", 3), STORE_OK);
	cr_assert_eq(store_tag_set(st, run, "c", "", 0), STORE_OK);
	cr_assert_eq(store_tag_set(st, other, "a", "elsewhere", 9), STORE_OK);
	assert_tag(st, run, "a", "one", 3);
	assert_tag(st, run, "c", "", 0);
	cr_assert_eq(store_tag_get(st, run, "b", &v, &len, &changed), STORE_OK);
	cr_assert(changed >= before && changed <= now_ms());
	free(v);

	cr_assert_eq(store_tag_set(st, run, "a", "replaced value", 14),
		     STORE_OK);
	assert_tag(st, run, "a", "replaced value", 14);
	assert_tag(st, other, "a", "elsewhere", 9);

	cr_assert_eq(store_tag_list(st, run, collect_kv, &l), STORE_OK);
	cr_assert_eq(l.n, 3);
	cr_assert_str_eq(l.key[0], "a");
	cr_assert_str_eq(l.key[1], "b");
	cr_assert_str_eq(l.key[2], "c");
	cr_assert_eq(l.len[0], 14);
	cr_assert_eq(memcmp(l.value[0], "replaced value", 14), 0);
	cr_assert_eq(l.len[2], 0);
	kv_list_release(&l);

	cr_assert_eq(store_tag_delete(st, run, "b"), STORE_OK);
	cr_assert_eq(store_tag_get(st, run, "b", &v, &len, NULL),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_tag_delete(st, run, "b"), STORE_NOT_FOUND);
	cr_assert_eq(store_tag_get(st, run, "zz", &v, &len, NULL),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_tag_list(st, run, collect_kv, &l), STORE_OK);
	cr_assert_eq(l.n, 2);
	kv_list_release(&l);
	store_close(st);
}

Test(store, tag_and_property_values_must_be_text)
{
	struct store *st = open_fresh();
	int64_t run = make_run(st, make_experiment(st, "A"), "r1");
	char *v = NULL;
	size_t len = 0;

	cr_assert_eq(store_tag_set(st, run, "nul", "a\0b", 3), STORE_INVALID);
	cr_assert_eq(store_tag_set(st, run, "bad", "caf\xe9", 4), STORE_INVALID);
	cr_assert_eq(store_tag_set(st, run, "cut", "\xe2\x82", 2), STORE_INVALID);
	cr_assert_eq(store_tag_set(st, run, "over", "\xc0\xaf", 2), STORE_INVALID);
	cr_assert_eq(store_property_add(st, run, "nul", "a\0b", 3),
		     STORE_INVALID);
	cr_assert_eq(store_property_add(st, run, "bad", "\xff", 1),
		     STORE_INVALID);
	cr_assert_eq(store_tag_get(st, run, "nul", &v, &len, NULL),
		     STORE_NOT_FOUND, "a refused value stored something");
	cr_assert_eq(store_property_get(st, run, "bad", &v, &len, NULL),
		     STORE_NOT_FOUND, "a refused value stored something");
	store_close(st);
}

Test(store, tag_value_is_byte_exact)
{
	static const char odd[] = "line one\nline two\r\n\t caf\xc3\xa9 \xe2\x82\xac\x01 end\n";
	char *big = malloc(STORE_VALUE_MAX + 1);
	struct kv_list l = { .n = 0 };
	struct store *st = open_fresh();
	int64_t run = make_run(st, make_experiment(st, "A"), "r1");

	cr_assert_eq(store_tag_set(st, run, "odd", odd, sizeof(odd) - 1),
		     STORE_OK);
	assert_tag(st, run, "odd", odd, sizeof(odd) - 1);
	cr_assert_eq(store_tag_list(st, run, collect_kv, &l), STORE_OK);
	cr_assert_eq(l.n, 1);
	cr_assert_eq(l.len[0], sizeof(odd) - 1);
	cr_assert_eq(memcmp(l.value[0], odd, sizeof(odd) - 1), 0);
	kv_list_release(&l);

	for (size_t i = 0; i < STORE_VALUE_MAX + 1; i++)
		big[i] = (char)('a' + i % 26);
	big[100] = '\n';
	cr_assert_eq(store_tag_set(st, run, "big", big, STORE_VALUE_MAX),
		     STORE_OK, "a value of STORE_VALUE_MAX bytes was refused");
	assert_tag(st, run, "big", big, STORE_VALUE_MAX);
	cr_assert_eq(store_tag_set(st, run, "big", big, STORE_VALUE_MAX + 1),
		     STORE_TOO_BIG);
	cr_assert_eq(store_tag_set(st, run, "new", big, STORE_VALUE_MAX + 1),
		     STORE_TOO_BIG);
	assert_tag(st, run, "big", big, STORE_VALUE_MAX);
	cr_assert_eq(store_tag_get(st, run, "new", &big, &l.len[0], NULL),
		     STORE_NOT_FOUND);
	free(big);
	store_close(st);
}

Test(store, tag_refuses_invalid_key_and_missing_run)
{
	static const char *const bad[] = { "", ".x", "a b", "a/b", "a\nb" };
	struct kv_list l = { .n = 0 };
	struct store *st = open_fresh();
	int64_t run = make_run(st, make_experiment(st, "A"), "r1");
	char *v = NULL;
	size_t len;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cr_assert_eq(store_tag_set(st, run, bad[i], "v", 1),
			     STORE_INVALID, "tag key '%s' accepted", bad[i]);
		cr_assert_eq(store_property_add(st, run, bad[i], "v", 1),
			     STORE_INVALID, "property key '%s' accepted",
			     bad[i]);
	}
	cr_assert_eq(store_tag_list(st, run, collect_kv, &l), STORE_OK);
	cr_assert_eq(l.n, 0);
	cr_assert_eq(store_tag_set(st, run + 100, "k", "v", 1),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_tag_get(st, run + 100, "k", &v, &len, NULL),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_tag_delete(st, run + 100, "k"), STORE_NOT_FOUND);
	cr_assert_eq(store_property_add(st, run + 100, "k", "v", 1),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_property_get(st, run + 100, "k", &v, &len, NULL),
		     STORE_NOT_FOUND);
	store_close(st);
}

Test(store, property_add_refuses_different_bytes)
{
	struct kv_list l = { .n = 0 };
	struct store *st = open_fresh();
	int64_t run = make_run(st, make_experiment(st, "A"), "r1");
	int64_t head, head2;
	char *v = NULL;
	size_t len = 0;

	cr_assert_eq(store_property_add(st, run, "p", "a\nb", 3), STORE_OK);
	cr_assert_eq(store_changes_head(st, &head), STORE_OK);
	cr_assert_eq(store_property_add(st, run, "p", "a\nb", 3), STORE_OK,
		     "the same bytes again must be accepted");
	cr_assert_eq(store_property_add(st, run, "p", "a\nc", 3),
		     STORE_DENIED);
	cr_assert_eq(store_property_add(st, run, "p", "a", 1), STORE_DENIED,
		     "a prefix of the value is a different value");
	cr_assert_eq(store_property_add(st, run, "p", "a\nbc", 4),
		     STORE_DENIED);
	cr_assert_eq(store_property_add(st, run, "p", "", 0), STORE_DENIED);
	cr_assert_eq(store_changes_head(st, &head2), STORE_OK);
	cr_assert_eq(head2, head, "a refused or repeated add recorded a change");
	cr_assert_eq(store_property_get(st, run, "p", &v, &len, NULL),
		     STORE_OK);
	cr_assert_eq(len, 3);
	cr_assert_eq(memcmp(v, "a\nb", 3), 0, "the value changed");
	free(v);

	cr_assert_eq(store_property_add(st, run, "empty", "", 0), STORE_OK);
	cr_assert_eq(store_property_add(st, run, "empty", "", 0), STORE_OK);
	cr_assert_eq(store_property_add(st, run, "empty", "x", 1),
		     STORE_DENIED);
	cr_assert_eq(store_property_add(st, run, "big", "x",
					STORE_VALUE_MAX + 1), STORE_TOO_BIG);
	cr_assert_eq(store_property_add(st, run, "b-key", "val", 3), STORE_OK);

	cr_assert_eq(store_property_list(st, run, collect_kv, &l), STORE_OK);
	cr_assert_eq(l.n, 3);
	cr_assert_str_eq(l.key[0], "b-key");
	cr_assert_str_eq(l.key[1], "empty");
	cr_assert_str_eq(l.key[2], "p");
	cr_assert_eq(l.len[1], 0);
	cr_assert_eq(l.len[2], 3);
	cr_assert_eq(memcmp(l.value[2], "a\nb", 3), 0);
	kv_list_release(&l);
	/* Properties and tags are separate namespaces. */
	cr_assert_eq(store_tag_list(st, run, collect_kv, &l), STORE_OK);
	cr_assert_eq(l.n, 0);
	store_close(st);
}

/* ---- metrics --------------------------------------------------------- */

struct collected_chunk {
	int64_t first_seq, n, ts_ms;
	char *text;
	size_t text_len;
	int64_t *steps;		/* given or defaulted, always filled */
};

struct chunk_list {
	struct collected_chunk *v;
	size_t n, alloc;
	size_t stop_after;
};

static int collect_chunk(void *ctx, const struct metric_chunk *c)
{
	struct chunk_list *l = ctx;
	struct collected_chunk *cc;

	if (l->n == l->alloc) {
		l->alloc = l->alloc ? 2 * l->alloc : 64;
		l->v = realloc(l->v, l->alloc * sizeof(*l->v));
		cr_assert_not_null(l->v);
	}
	cc = &l->v[l->n++];
	cc->first_seq = c->first_seq;
	cc->n = c->n;
	cc->ts_ms = c->ts_ms;
	cc->text = malloc(c->text_len + 1);
	memcpy(cc->text, c->text, c->text_len);
	cc->text_len = c->text_len;
	cc->steps = malloc((size_t)(c->n ? c->n : 1) * sizeof(int64_t));
	/* fs/ reads a NULL steps array as "each point's own index". */
	for (int64_t i = 0; i < c->n; i++)
		cc->steps[i] = c->steps ? c->steps[i] : c->first_seq + i;
	return l->stop_after && l->n >= l->stop_after;
}

static void chunk_list_release(struct chunk_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].text);
		free(l->v[i].steps);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

Test(store, metric_append_with_and_without_steps)
{
	static const char *const texts[] = { "0.5", "0.25", "1e-3", "-7" };
	struct metric_point p[4];
	struct store_metric m = { 0 };
	struct chunk_list l = { 0 };
	struct store *st = open_fresh();
	int64_t run = make_run(st, make_experiment(st, "A"), "r1");
	int64_t before = now_ms(), created;

	for (int i = 0; i < 4; i++)
		p[i] = (struct metric_point){ strtod(texts[i], NULL), 0, 0,
					      texts[i], strlen(texts[i]) };
	ensure_metric(st, run, "loss");
	created = now_ms();
	/* Two default steps, then explicit 100, then default again. */
	cr_assert_eq(append_named(st, run, "loss", p, 2, 5000),
		     STORE_OK);
	p[2].has_step = 1;
	p[2].step = 100;
	cr_assert_eq(append_named(st, run, "loss", &p[2], 1, 6000),
		     STORE_OK);
	cr_assert_eq(append_named(st, run, "loss", &p[3], 1, 7000),
		     STORE_OK);

	cr_assert_eq(store_metric_get(st, run, "loss", &m), STORE_OK);
	cr_assert_str_eq(m.name, "loss");
	cr_assert_eq(m.run_id, run);
	cr_assert_eq(m.count, 4);
	cr_assert_eq(m.last, -7.0);
	cr_assert_eq(m.min, -7.0);
	cr_assert_eq(m.max, 0.5);
	cr_assert_eq(m.last_step, 3, "a default step is the point's index");
	cr_assert_eq(m.text_bytes, (int64_t)strlen("0.5\n0.25\n1e-3\n-7\n"));
	cr_assert(m.created_ms >= before && m.created_ms <= created,
		  "created_ms is when the metric was made");
	cr_assert_eq(m.updated_ms, 7000, "updated_ms is the last append's");

	cr_assert_eq(store_metric_read(st, m.id, 0, collect_chunk, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 3, "one chunk per append");
	cr_assert_eq(l.v[0].first_seq, 0);
	cr_assert_eq(l.v[0].n, 2);
	cr_assert_eq(l.v[0].ts_ms, 5000);
	cr_assert_eq(l.v[0].text_len, 9);
	cr_assert_eq(memcmp(l.v[0].text, "0.5\n0.25\n", 9), 0);
	cr_assert_eq(l.v[0].steps[0], 0);
	cr_assert_eq(l.v[0].steps[1], 1);
	cr_assert_eq(l.v[1].first_seq, 2);
	cr_assert_eq(l.v[1].steps[0], 100);
	cr_assert_eq(l.v[1].ts_ms, 6000);
	cr_assert_eq(l.v[2].first_seq, 3);
	cr_assert_eq(l.v[2].steps[0], 3);
	cr_assert_eq(memcmp(l.v[2].text, "-7\n", 3), 0);
	chunk_list_release(&l);
	store_metric_release(&m);
	store_metric_release(&m);

	/* An explicit step as the last point is the last step. */
	cr_assert_eq(append_named(st, run, "loss", &p[2], 1, 8000),
		     STORE_OK);
	cr_assert_eq(store_metric_get(st, run, "loss", &m), STORE_OK);
	cr_assert_eq(m.last_step, 100);
	cr_assert_eq(m.last, 1e-3);
	store_metric_release(&m);
	store_close(st);
}

Test(store, metric_ensure_creates_once_and_refuses_bad_name_or_run)
{
	struct store_metric m = { 0 };
	struct store *st = open_fresh();
	int64_t run = make_run(st, make_experiment(st, "A"), "r1");
	int64_t id = 0, again = 0, other = 0;

	cr_assert_eq(store_metric_ensure(st, run, "a b", &id, NULL), STORE_INVALID);
	cr_assert_eq(store_metric_ensure(st, run, "", &id, NULL), STORE_INVALID);
	cr_assert_eq(store_metric_ensure(st, run, ".x", &id, NULL), STORE_INVALID);
	cr_assert_eq(store_metric_ensure(st, run, "a/b", &id, NULL), STORE_INVALID);
	cr_assert_eq(store_metric_ensure(st, run + 100, "m", &id, NULL),
		     STORE_NOT_FOUND);
	cr_assert_eq(id, 0, "*metric_id set on error");
	cr_assert_eq(store_metric_get(st, run, "a b", &m), STORE_NOT_FOUND);

	cr_assert_eq(store_metric_ensure(st, run, "m", &id, NULL), STORE_OK);
	cr_assert_gt(id, 0);
	cr_assert_eq(store_metric_ensure(st, run, "m", &again, NULL), STORE_OK);
	cr_assert_eq(again, id, "a second ensure made another metric");
	cr_assert_eq(store_metric_ensure(st, run, "m2", &other, NULL), STORE_OK);
	cr_assert_neq(other, id);

	/* Made with no points. */
	cr_assert_eq(store_metric_get(st, run, "m", &m), STORE_OK);
	cr_assert_eq(m.id, id);
	cr_assert_eq(m.count, 0);
	cr_assert_eq(m.text_bytes, 0);
	store_metric_release(&m);
	store_close(st);
}

Test(store, metric_append_ignores_empty_and_refuses_missing_metric)
{
	struct metric_point p = { 1.0, 0, 0, "1", 1 };
	struct store_metric m = { 0 };
	struct chunk_list l = { 0 };
	struct store *st = open_fresh();
	int64_t run = make_run(st, make_experiment(st, "A"), "r1");
	int64_t id = ensure_metric(st, run, "m");

	cr_assert_eq(store_metric_append(st, id, &p, 0, 1), STORE_OK);
	cr_assert_eq(store_metric_get_by_id(st, id, &m), STORE_OK);
	cr_assert_eq(m.count, 0, "an empty append added points");
	store_metric_release(&m);
	cr_assert_eq(store_metric_read(st, id, 0, collect_chunk, &l), STORE_OK);
	cr_assert_eq(l.n, 0, "an empty append made a chunk");
	chunk_list_release(&l);
	cr_assert_eq(store_metric_append(st, id + 100, &p, 1, 1),
		     STORE_NOT_FOUND);
	store_close(st);
}

struct metric_names {
	char *name[8];
	int64_t id[8], count[8];
	size_t n;
};

static int collect_metric(void *ctx, const struct store_metric *m)
{
	struct metric_names *l = ctx;

	cr_assert_lt(l->n, 8);
	l->name[l->n] = strdup(m->name);
	l->id[l->n] = m->id;
	l->count[l->n++] = m->count;
	return 0;
}

Test(store, metric_list_in_name_order_and_get_by_id)
{
	static const char *const names[] = { "val_loss", "acc", "loss", "Lr" };
	struct metric_point p = { 2.0, 0, 0, "2", 1 };
	struct metric_names l = { .n = 0 };
	struct store_metric m = { 0 };
	struct store *st = open_fresh();
	int64_t exp = make_experiment(st, "A");
	int64_t run = make_run(st, exp, "r1");
	int64_t other = make_run(st, exp, "r2");

	for (size_t i = 0; i < 4; i++)
		for (size_t k = 0; k <= i; k++)
			cr_assert_eq(append_named(st, run, names[i], &p, 1, 1),
				     STORE_OK);
	cr_assert_eq(append_named(st, other, "zzz", &p, 1, 1), STORE_OK);
	cr_assert_eq(store_metric_list(st, run, collect_metric, &l), STORE_OK);
	cr_assert_eq(l.n, 4);
	cr_assert_str_eq(l.name[0], "Lr");
	cr_assert_str_eq(l.name[1], "acc");
	cr_assert_str_eq(l.name[2], "loss");
	cr_assert_str_eq(l.name[3], "val_loss");
	cr_assert_eq(l.count[0], 4);
	cr_assert_eq(l.count[3], 1);
	cr_assert_eq(store_metric_get_by_id(st, l.id[2], &m), STORE_OK);
	cr_assert_str_eq(m.name, "loss");
	cr_assert_eq(m.run_id, run);
	cr_assert_eq(m.count, 3);
	store_metric_release(&m);
	cr_assert_eq(store_metric_get_by_id(st, l.id[3] + 100, &m),
		     STORE_NOT_FOUND);
	for (size_t i = 0; i < l.n; i++)
		free(l.name[i]);
	store_close(st);
}

#define RANDOM_POINTS 10000

/* A random finite decimal in one of several spellings. */
static void random_value_text(char *buf, size_t size)
{
	int64_t mant = rng_range(-999999, 999999);

	switch (rng_range(0, 4)) {
	case 0:
		snprintf(buf, size, "%lld", (long long)mant);
		break;
	case 1:
		snprintf(buf, size, "%.6f", (double)mant / 1e4);
		break;
	case 2:
		snprintf(buf, size, "%.3e", (double)mant * 1e3);
		break;
	case 3:
		snprintf(buf, size, "%.17g", (double)mant / 7.0);
		break;
	default:
		snprintf(buf, size, "%lld.%lld", (long long)rng_range(0, 9),
			 (long long)rng_range(0, 99));
		break;
	}
}

/*
 * Appends RANDOM_POINTS random points in random-size batches (through a
 * journal if @journal) and compares everything the store says about them
 * with a brute-force computation.
 */
static void check_random_points(int journal)
{
	char (*text)[40] = calloc(RANDOM_POINTS, sizeof(*text));
	struct metric_point *pts = calloc(RANDOM_POINTS, sizeof(*pts));
	int64_t *want_step = calloc(RANDOM_POINTS, sizeof(*want_step));
	size_t *batch_start = calloc(RANDOM_POINTS + 1, sizeof(*batch_start));
	struct strbuf all = STRBUF_INIT;
	struct chunk_list l = { 0 };
	struct store_metric m = { 0 };
	double min = 0, max = 0;
	int64_t text_bytes = 0;
	size_t nbatch = 0, i, b;
	struct store *st = open_fresh();
	int64_t run = make_run(st, make_experiment(st, "A"), "r1");
	int64_t id = ensure_metric(st, run, "m");

	if (journal)
		cr_assert_eq(store_journal_start(st), STORE_OK);
	rng_seed(0x5eed0001);
	for (i = 0; i < RANDOM_POINTS; i++) {
		random_value_text(text[i], sizeof(text[i]));
		pts[i].text = text[i];
		pts[i].text_len = strlen(text[i]);
		pts[i].value = strtod(text[i], NULL);
		/* Explicit steps: sometimes equal to the index, sometimes not. */
		pts[i].has_step = rng_range(0, 2) == 0;
		if (pts[i].has_step)
			pts[i].step = rng_range(0, 3) == 0
					      ? (int64_t)i
					      : rng_range(-1000, 1000000);
		want_step[i] = pts[i].has_step ? pts[i].step : (int64_t)i;
		min = i == 0 || pts[i].value < min ? pts[i].value : min;
		max = i == 0 || pts[i].value > max ? pts[i].value : max;
		text_bytes += (int64_t)pts[i].text_len + 1;
		cr_assert_eq(strbuf_add(&all, text[i], pts[i].text_len), 0);
		cr_assert_eq(strbuf_addch(&all, '\n'), 0);
	}
	for (i = 0; i < RANDOM_POINTS; nbatch++) {
		/* Mostly small batches, now and then a large one. */
		size_t n = rng_range(0, 9) == 0 ? (size_t)rng_range(100, 1500)
						: (size_t)rng_range(1, 40);

		if (n > RANDOM_POINTS - i)
			n = RANDOM_POINTS - i;
		batch_start[nbatch] = i;
		cr_assert_eq(store_metric_append(st, id, &pts[i], n,
						 1000 + (int64_t)nbatch),
			     STORE_OK);
		i += n;
	}
	batch_start[nbatch] = RANDOM_POINTS;

	cr_assert_eq(store_metric_get(st, run, "m", &m), STORE_OK);
	cr_assert_eq(m.count, RANDOM_POINTS);
	cr_assert_eq(m.last, pts[RANDOM_POINTS - 1].value);
	cr_assert_eq(m.min, min, "min %.17g, want %.17g", m.min, min);
	cr_assert_eq(m.max, max, "max %.17g, want %.17g", m.max, max);
	cr_assert_eq(m.last_step, want_step[RANDOM_POINTS - 1]);
	cr_assert_eq(m.text_bytes, text_bytes);
	cr_assert_eq(m.updated_ms, 1000 + (int64_t)nbatch - 1);

	cr_assert_eq(store_metric_read(st, m.id, 0, collect_chunk, &l),
		     STORE_OK);
	cr_assert_eq(l.n, nbatch, "%zu chunks for %zu appends", l.n, nbatch);
	{
		struct strbuf got = STRBUF_INIT;

		for (b = 0; b < l.n; b++) {
			struct collected_chunk *c = &l.v[b];

			cr_assert_eq(c->first_seq, (int64_t)batch_start[b]);
			cr_assert_eq(c->n, (int64_t)(batch_start[b + 1] -
						     batch_start[b]));
			cr_assert_eq(c->ts_ms, 1000 + (int64_t)b);
			for (int64_t k = 0; k < c->n; k++)
				cr_assert_eq(c->steps[k],
					     want_step[c->first_seq + k],
					     "step of point %lld",
					     (long long)(c->first_seq + k));
			cr_assert_eq(strbuf_add(&got, c->text, c->text_len), 0);
		}
		cr_assert_eq(got.len, all.len);
		cr_assert_eq(memcmp(got.buf, all.buf, all.len), 0,
			     "the text read back differs from the text logged");
		cr_assert_eq((int64_t)got.len, m.text_bytes);
		strbuf_release(&got);
	}
	chunk_list_release(&l);

	/* From a chunk boundary: exactly the later chunks. */
	b = nbatch / 2;
	cr_assert_eq(store_metric_read(st, m.id, (int64_t)batch_start[b],
				       collect_chunk, &l), STORE_OK);
	cr_assert_eq(l.n, nbatch - b);
	cr_assert_eq(l.v[0].first_seq, (int64_t)batch_start[b]);
	chunk_list_release(&l);
	/* Past the end: nothing. */
	cr_assert_eq(store_metric_read(st, m.id, RANDOM_POINTS, collect_chunk,
				       &l), STORE_OK);
	cr_assert_eq(l.n, 0);
	chunk_list_release(&l);
	/* A non-zero return stops the read. */
	l.stop_after = 2;
	cr_assert_eq(store_metric_read(st, m.id, 0, collect_chunk, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 2);
	chunk_list_release(&l);

	store_metric_release(&m);
	strbuf_release(&all);
	free(text);
	free(pts);
	free(want_step);
	free(batch_start);
	store_close(st);
}

Test(store, metric_summaries_and_chunks_match_brute_force)
{
	check_random_points(0);
}

Test(store, metric_journal_summaries_and_chunks_match_brute_force)
{
	check_random_points(1);
}

Test(store, metric_read_from_mid_chunk_starts_at_next_chunk)
{
	struct metric_point p[3] = {
		{ 1, 0, 0, "1", 1 }, { 2, 0, 0, "2", 1 }, { 3, 0, 0, "3", 1 },
	};
	struct chunk_list l = { 0 };
	struct store_metric m = { 0 };
	struct store *st = open_fresh();
	int64_t run = make_run(st, make_experiment(st, "A"), "r1");

	cr_assert_eq(append_named(st, run, "m", p, 3, 1), STORE_OK);
	cr_assert_eq(append_named(st, run, "m", p, 2, 2), STORE_OK);
	cr_assert_eq(store_metric_get(st, run, "m", &m), STORE_OK);
	cr_assert_eq(store_metric_read(st, m.id, 3, collect_chunk, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 1);
	cr_assert_eq(l.v[0].first_seq, 3);
	cr_assert_eq(l.v[0].n, 2);
	cr_assert_eq(memcmp(l.v[0].text, "1\n2\n", 4), 0);
	chunk_list_release(&l);
	cr_assert_eq(store_metric_read(st, m.id, 1, collect_chunk, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 1, "chunks start at or after from_seq");
	cr_assert_eq(l.v[0].first_seq, 3);
	chunk_list_release(&l);
	store_metric_release(&m);
	store_close(st);
}

/* ---- the runs table -------------------------------------------------- */

static void assert_cell(char *got, const char *want, const char *what)
{
	if (!want)
		cr_assert_null(got, "%s: '%s', want NULL", what, got);
	else
		cr_assert(got && strcmp(got, want) == 0, "%s: '%s', want '%s'",
			  what, got ? got : "(null)", want);
}

Test(store, runs_table_rows_newest_first_with_sorted_columns)
{
	struct metric_point p[2] = { { 0.5, 0, 0, "0.5", 3 },
				     { 0.25, 0, 0, "0.250", 5 } };
	struct metric_point one = { 1, 0, 0, "1", 1 };
	struct metric_point two = { 2, 0, 0, "2e0", 3 };
	struct runs_table t = { 0 };
	struct store *st = open_fresh();
	int64_t exp = make_experiment(st, "A");
	int64_t other_exp = make_experiment(st, "B");
	int64_t r1 = make_run(st, exp, "r1");
	int64_t r2 = make_run(st, exp, "r2");
	int64_t rx = make_run(st, other_exp, "rx");
	int64_t r3 = make_run(st, exp, "r3");

	cr_assert_eq(store_tag_set(st, r1, "b", "1", 1), STORE_OK);
	cr_assert_eq(store_tag_set(st, r1, "a", "x", 1), STORE_OK);
	cr_assert_eq(store_tag_set(st, r3, "c", "z", 1), STORE_OK);
	cr_assert_eq(store_tag_set(st, r3, "a", "y", 1), STORE_OK);
	cr_assert_eq(store_tag_set(st, rx, "other-tag", "o", 1), STORE_OK);
	cr_assert_eq(append_named(st, r2, "loss", p, 2, 10), STORE_OK);
	cr_assert_eq(append_named(st, r1, "acc", &one, 1, 30), STORE_OK);
	cr_assert_eq(append_named(st, r3, "loss", &two, 1, 20),
		     STORE_OK);
	/* A metric without points is no column. */
	ensure_metric(st, r2, "no-points");
	/* Another experiment's newer metric does not count. */
	cr_assert_eq(append_named(st, rx, "other", &two, 1, 99),
		     STORE_OK);

	cr_assert_eq(store_runs_table(st, exp, &t), STORE_OK);
	cr_assert_eq(t.nrows, 3);
	cr_assert_str_eq(t.rows[0].run.name, "r3");
	cr_assert_str_eq(t.rows[1].run.name, "r2");
	cr_assert_str_eq(t.rows[2].run.name, "r1");
	cr_assert_eq(t.rows[0].run.number, 3);
	cr_assert_eq(t.rows[0].run.status, RUN_RUNNING);
	cr_assert_eq(t.ntag_keys, 3);
	cr_assert_str_eq(t.tag_keys[0], "a");
	cr_assert_str_eq(t.tag_keys[1], "b");
	cr_assert_str_eq(t.tag_keys[2], "c");
	cr_assert_eq(t.metrics_updated_ms, 30);
	cr_assert_eq(t.nmetric_names, 2);
	cr_assert_str_eq(t.metric_names[0], "acc");
	cr_assert_str_eq(t.metric_names[1], "loss");

	assert_cell(t.rows[0].tag_values[0], "y", "r3 a");
	assert_cell(t.rows[0].tag_values[1], NULL, "r3 b");
	assert_cell(t.rows[0].tag_values[2], "z", "r3 c");
	assert_cell(t.rows[0].metric_last[0], NULL, "r3 acc");
	assert_cell(t.rows[0].metric_last[1], "2e0", "r3 loss");
	for (int k = 0; k < 3; k++)
		assert_cell(t.rows[1].tag_values[k], NULL, "r2 tag");
	assert_cell(t.rows[1].metric_last[0], NULL, "r2 acc");
	assert_cell(t.rows[1].metric_last[1], "0.250", "r2 loss (last text)");
	assert_cell(t.rows[2].tag_values[0], "x", "r1 a");
	assert_cell(t.rows[2].tag_values[1], "1", "r1 b");
	assert_cell(t.rows[2].tag_values[2], NULL, "r1 c");
	assert_cell(t.rows[2].metric_last[0], "1", "r1 acc");
	assert_cell(t.rows[2].metric_last[1], NULL, "r1 loss");
	store_runs_table_release(&t);
	store_runs_table_release(&t);

	/* An experiment without runs: an empty table. */
	cr_assert_eq(store_runs_table(st, make_experiment(st, "C"), &t),
		     STORE_OK);
	cr_assert_eq(t.nrows, 0);
	cr_assert_eq(t.ntag_keys, 0);
	cr_assert_eq(t.nmetric_names, 0);
	cr_assert_eq(t.metrics_updated_ms, 0);
	store_runs_table_release(&t);
	store_close(st);
}

/* ---- events ---------------------------------------------------------- */

struct event_list {
	char **line;
	int64_t *id;
	size_t n, alloc;
};

static int collect_event(void *ctx, const struct store_event *e)
{
	struct event_list *l = ctx;

	if (l->n == l->alloc) {
		l->alloc = l->alloc ? 2 * l->alloc : 64;
		l->line = realloc(l->line, l->alloc * sizeof(*l->line));
		l->id = realloc(l->id, l->alloc * sizeof(*l->id));
		cr_assert(l->line && l->id);
	}
	l->id[l->n] = e->id;
	l->line[l->n++] = strdup(e->line);
	return 0;
}

static void event_list_release(struct event_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->line[i]);
	free(l->line);
	free(l->id);
	memset(l, 0, sizeof(*l));
}

Test(store, event_list_gives_newest_oldest_first_and_flattens_lines)
{
	struct event_list l = { 0 };
	struct store *st = open_fresh();
	char line[32];

	cr_assert_eq(store_event_list(st, 10, collect_event, &l), STORE_OK);
	cr_assert_eq(l.n, 0);
	for (int i = 0; i < 5; i++) {
		snprintf(line, sizeof(line), "event %d", i);
		cr_assert_eq(store_event_add(st, line), STORE_OK);
	}
	cr_assert_eq(store_event_add(st, "two\nlines\r\nhere"), STORE_OK);

	cr_assert_eq(store_event_list(st, 3, collect_event, &l), STORE_OK);
	cr_assert_eq(l.n, 3);
	cr_assert_str_eq(l.line[0], "event 3");
	cr_assert_str_eq(l.line[1], "event 4");
	cr_assert_str_eq(l.line[2], "two lines  here");
	cr_assert_lt(l.id[0], l.id[1]);
	cr_assert_lt(l.id[1], l.id[2]);
	event_list_release(&l);

	cr_assert_eq(store_event_list(st, 100, collect_event, &l), STORE_OK);
	cr_assert_eq(l.n, 6);
	cr_assert_str_eq(l.line[0], "event 0");
	event_list_release(&l);
	store_close(st);
}

/*
 * Checks that the store holds exactly the newest STORE_EVENTS_KEEP of
 * @total events named "event <i>".
 */
static void assert_events_pruned(struct store *st, int total)
{
	struct event_list l = { 0 };
	char want[32];

	cr_assert_eq(store_event_list(st, (int64_t)total + 1000, collect_event,
				      &l), STORE_OK);
	cr_assert_leq(l.n, STORE_EVENTS_KEEP,
		      "%zu events kept, at most %d allowed", l.n,
		      STORE_EVENTS_KEEP);
	cr_assert_eq(l.n, STORE_EVENTS_KEEP, "newest events were pruned");
	for (size_t i = 0; i < l.n; i++) {
		snprintf(want, sizeof(want), "event %zu",
			 (size_t)total - l.n + i);
		cr_assert_str_eq(l.line[i], want);
	}
	event_list_release(&l);
}

Test(store, events_pruned_to_keep_limit)
{
	const int total = STORE_EVENTS_KEEP + 300;
	struct store *st = open_fresh();
	char line[32];

	for (int i = 0; i < total; i++) {
		snprintf(line, sizeof(line), "event %d", i);
		cr_assert_eq(store_event_add(st, line), STORE_OK);
	}
	assert_events_pruned(st, total);
	store_close(st);
}

/*
 * A workspace is opened by many short-lived processes (the CLI, each
 * mount): pruning must not depend on one connection adding many events.
 */
Test(store, events_pruned_when_added_by_short_lived_opens)
{
	const int total = STORE_EVENTS_KEEP + 300;
	struct store *st = NULL;
	char line[32];

	for (int i = 0; i < total; i++) {
		if (i % 100 == 0) {
			store_close(st);
			st = open_fresh();
		}
		snprintf(line, sizeof(line), "event %d", i);
		cr_assert_eq(store_event_add(st, line), STORE_OK);
	}
	assert_events_pruned(st, total);
	store_close(st);
}

/* ---- the change feed ------------------------------------------------- */

struct change_list {
	struct store_change v[64];
	size_t n;
};

static int collect_change(void *ctx, const struct store_change *c)
{
	struct change_list *l = ctx;

	cr_assert_lt(l->n, 64);
	l->v[l->n++] = *c;
	return 0;
}

/* Counts changes and keeps the last. */
struct change_tail {
	size_t n;
	struct store_change last;
};

static int collect_tail(void *ctx, const struct store_change *c)
{
	struct change_tail *t = ctx;

	t->n++;
	t->last = *c;
	return 0;
}

static void assert_change(const struct change_list *l, size_t i,
			  enum change_kind kind, int64_t exp, int64_t run,
			  int64_t obj)
{
	cr_assert_lt(i, l->n, "change %zu missing", i);
	cr_assert_eq(l->v[i].kind, kind, "change %zu: kind %d, want %d", i,
		     l->v[i].kind, kind);
	cr_assert_eq(l->v[i].experiment_id, exp, "change %zu: experiment", i);
	cr_assert_eq(l->v[i].run_id, run, "change %zu: run", i);
	cr_assert_eq(l->v[i].object_id, obj, "change %zu: object", i);
}

Test(store, changes_since_reports_each_mutation_in_order)
{
	struct metric_point p = { 1, 0, 0, "1", 1 };
	struct change_list l = { .n = 0 };
	struct store_metric m = { 0 };
	struct store *st = open_fresh();
	int64_t head, seq, exp, run, gone;

	make_experiment(st, "history");
	cr_assert_eq(store_changes_head(st, &head), STORE_OK);
	cr_assert_gt(head, 0);
	seq = head;
	cr_assert_eq(store_changes_since(st, &seq, collect_change, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 0, "the head skips history");
	cr_assert_eq(seq, head);

	exp = make_experiment(st, "A");
	run = make_run(st, exp, "r1");
	cr_assert_eq(store_tag_set(st, run, "k", "v", 1), STORE_OK);
	cr_assert_eq(store_property_add(st, run, "p", "v", 1), STORE_OK);
	cr_assert_eq(append_named(st, run, "loss", &p, 1, 1), STORE_OK);
	cr_assert_eq(store_event_add(st, "hello"), STORE_OK);
	cr_assert_eq(store_tag_delete(st, run, "k"), STORE_OK);
	cr_assert_eq(store_run_set_status(st, run, RUN_COMPLETED), STORE_OK);
	gone = make_experiment(st, "gone");
	cr_assert_eq(store_experiment_delete(st, "gone"), STORE_OK);
	/* Refused mutations leave no trace. */
	cr_assert_eq(store_experiment_create(st, "A", NULL), STORE_EXISTS);
	cr_assert_eq(store_property_add(st, run, "p", "w", 1), STORE_DENIED);
	cr_assert_eq(store_tag_delete(st, run, "k"), STORE_NOT_FOUND);
	cr_assert_eq(store_metric_ensure(st, run, "loss", &m.id, NULL), STORE_OK);
	cr_assert_eq(store_metric_get(st, run, "loss", &m), STORE_OK);

	cr_assert_eq(store_changes_since(st, &seq, collect_change, &l),
		     STORE_OK);
	/* Lifecycle mutations also log an event line: a CHANGE_EVENTS row. */
	cr_assert_eq(l.n, 16, "%zu changes, want 16", l.n);
	assert_change(&l, 0, CHANGE_EXPERIMENTS, exp, 0, 0);
	assert_change(&l, 1, CHANGE_EVENTS, 0, 0, 0);
	assert_change(&l, 2, CHANGE_RUN, exp, run, run);
	assert_change(&l, 3, CHANGE_EVENTS, 0, 0, 0);
	assert_change(&l, 4, CHANGE_RUN_TAGS, exp, run, run);
	assert_change(&l, 5, CHANGE_RUN_PROPERTIES, exp, run, run);
	assert_change(&l, 6, CHANGE_METRIC, exp, run, m.id);	/* made */
	assert_change(&l, 7, CHANGE_METRIC, exp, run, m.id);	/* points */
	assert_change(&l, 8, CHANGE_EVENTS, 0, 0, 0);
	assert_change(&l, 9, CHANGE_RUN_TAGS, exp, run, run);
	assert_change(&l, 10, CHANGE_RUN, exp, run, run);
	assert_change(&l, 11, CHANGE_EVENTS, 0, 0, 0);
	assert_change(&l, 12, CHANGE_EXPERIMENTS, gone, 0, 0);
	assert_change(&l, 13, CHANGE_EVENTS, 0, 0, 0);
	assert_change(&l, 14, CHANGE_EXPERIMENTS, gone, 0, 0);
	assert_change(&l, 15, CHANGE_EVENTS, 0, 0, 0);
	cr_assert_gt(l.v[0].seq, head);
	for (size_t i = 1; i < l.n; i++)
		cr_assert_gt(l.v[i].seq, l.v[i - 1].seq, "seq not increasing");
	cr_assert_eq(seq, l.v[l.n - 1].seq, "*seq not advanced to the last");
	cr_assert_eq(store_changes_head(st, &head), STORE_OK);
	cr_assert_eq(head, seq);

	/* Nothing new: nothing reported, *seq unchanged. */
	l.n = 0;
	cr_assert_eq(store_changes_since(st, &seq, collect_change, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 0);
	cr_assert_eq(seq, head);
	store_metric_release(&m);
	store_close(st);
}

static int collect_lines(void *arg, const struct store_event *e)
{
	struct strbuf *sb = arg;

	strbuf_addstr(sb, e->line);
	strbuf_addch(sb, '\n');
	return 0;
}

Test(store, lifecycle_changes_log_event_lines)
{
	struct strbuf sb = STRBUF_INIT;
	struct store *st = open_fresh();
	int64_t run = make_run(st, make_experiment(st, "life"), "r1");

	cr_assert_eq(store_run_set_status(st, run, RUN_FAILED), STORE_OK);
	cr_assert_eq(store_run_set_status(st, run, RUN_FAILED), STORE_OK,
		     "the same status again is accepted");
	make_experiment(st, "brief");
	cr_assert_eq(store_experiment_delete(st, "brief"), STORE_OK);
	cr_assert_eq(store_event_list(st, 100, collect_lines, &sb), STORE_OK);
	cr_assert_str_eq(strbuf_str(&sb),
			 "experiment life created\n"
			 "experiments/life/runs/r1 created (interactive, Running)\n"
			 "experiments/life/runs/r1 Running -> Failed\n"
			 "experiment brief created\n"
			 "experiment brief removed\n");
	strbuf_release(&sb);
	store_close(st);
}

Test(store, changes_are_seen_by_another_open_store)
{
	struct change_list l = { .n = 0 };
	struct store *a = open_fresh();
	struct store *b = open_ws(ws_root, 0);
	int64_t seq, exp;

	cr_assert_eq(store_changes_head(b, &seq), STORE_OK);
	exp = make_experiment(a, "from-a");
	cr_assert_eq(store_changes_since(b, &seq, collect_change, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 2);
	assert_change(&l, 0, CHANGE_EXPERIMENTS, exp, 0, 0);
	assert_change(&l, 1, CHANGE_EVENTS, 0, 0, 0);
	store_close(a);
	store_close(b);
}

Test(store, changes_prune_keeps_the_newest_rows)
{
	struct change_list l = { .n = 0 };
	struct store *st = open_fresh();
	int64_t head, head2, seq = 0;

	for (int i = 0; i < 20; i++)
		cr_assert_eq(store_event_add(st, "e"), STORE_OK);
	cr_assert_eq(store_changes_head(st, &head), STORE_OK);
	cr_assert_eq(store_changes_prune(st, 5), STORE_OK);
	cr_assert_eq(store_changes_head(st, &head2), STORE_OK);
	cr_assert_eq(head2, head, "pruning moved the head");
	cr_assert_eq(store_changes_since(st, &seq, collect_change, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 5, "%zu rows kept, want 5", l.n);
	for (size_t i = 0; i < l.n; i++)
		cr_assert_eq(l.v[i].seq, head - 4 + (int64_t)i);
	cr_assert_eq(seq, head);
	/* Keeping more than there are drops nothing. */
	cr_assert_eq(store_changes_prune(st, 1000), STORE_OK);
	l.n = 0;
	seq = 0;
	cr_assert_eq(store_changes_since(st, &seq, collect_change, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 5);
	store_close(st);
}

/*
 * A reader holding *seq = head must see the next change even when
 * pruning emptied the feed: sequence numbers are never reused.
 */
Test(store, changes_seq_never_reused_after_prune)
{
	struct change_list l = { .n = 0 };
	struct store *st = open_fresh();
	int64_t head, seq;

	for (int i = 0; i < 10; i++)
		cr_assert_eq(store_event_add(st, "e"), STORE_OK);
	cr_assert_eq(store_changes_head(st, &head), STORE_OK);
	seq = head;
	cr_assert_eq(store_changes_prune(st, 0), STORE_OK);
	cr_assert_eq(store_event_add(st, "after prune"), STORE_OK);
	cr_assert_eq(store_changes_since(st, &seq, collect_change, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 1, "the change after pruning was not reported");
	cr_assert_gt(l.v[0].seq, head, "seq %lld reused (head was %lld)",
		     (long long)l.v[0].seq, (long long)head);
	store_close(st);
}

Test(store, checkpoint_keeps_every_write)
{
	struct store_metric m = { 0 };
	struct store *st = open_fresh();
	int64_t run = make_run(st, make_experiment(st, "A"), "r1");
	int64_t id = ensure_metric(st, run, "m");
	char text[32];

	cr_assert_eq(store_checkpoint(st), STORE_OK);
	for (int i = 0; i < 500; i++) {
		snprintf(text, sizeof(text), "1.%d", i);
		cr_assert_eq(append_text(st, id, text), STORE_OK);
		if (i % 100 == 0)
			cr_assert_eq(store_checkpoint(st), STORE_OK);
	}
	cr_assert_eq(store_checkpoint(st), STORE_OK);
	store_close(st);

	st = open_ws(ws_root, 0);
	cr_assert_eq(store_metric_get(st, run, "m", &m), STORE_OK);
	cr_assert_eq(m.count, 500);
	store_metric_release(&m);
	cr_assert_eq(store_integrity_check(st), STORE_OK);
	store_close(st);
}

/* ---- concurrency: threads -------------------------------------------- */

#define NTHREADS 8
#define THREAD_POINTS 2000
#define READ_EVERY 250		/* a writer reads its metric back this often */

struct shared_writes {
	struct store *st;
	int64_t run_id;
	int64_t acked;		/* appends that returned STORE_OK (atomic) */
};

struct writer {
	pthread_t tid;
	struct shared_writes *sw;
	int index;		/* 1-based: values are "<index>.<i>" */
	int64_t metric_id;
	int failures;
	int last_rc;
	int stale_reads;	/* a read missed an append that had returned */
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct shared_writes *sw = w->sw;
	char text[32];
	int rc;

	rc = store_metric_ensure(sw->st, sw->run_id, "shared", &w->metric_id, NULL);
	if (rc != STORE_OK) {
		w->failures++;
		w->last_rc = rc;
		return NULL;
	}
	for (int i = 0; i < THREAD_POINTS; i++) {
		snprintf(text, sizeof(text), "%d.%d", w->index, i);
		rc = append_text(sw->st, w->metric_id, text);
		if (rc != STORE_OK) {
			w->failures++;
			w->last_rc = rc;
			continue;
		}
		__atomic_add_fetch(&sw->acked, 1, __ATOMIC_SEQ_CST);
		if (i % READ_EVERY == READ_EVERY - 1) {
			int64_t acked = __atomic_load_n(&sw->acked,
							__ATOMIC_SEQ_CST);
			struct store_metric m = { 0 };

			rc = store_metric_get_by_id(sw->st, w->metric_id, &m);
			if (rc != STORE_OK) {
				w->failures++;
				w->last_rc = rc;
			} else if (m.count < acked) {
				w->stale_reads++;
			}
			store_metric_release(&m);
		}
	}
	return NULL;
}

struct keeper {
	pthread_t tid;
	struct store *st;
	int journal;
	int stop;		/* atomic: set once the writers are joined */
	int failures;
	int rounds;
};

/* What fs/watch.c does beside the writers: checkpoint and drain. */
static void *keeper_main(void *arg)
{
	struct keeper *k = arg;
	struct timespec pause = { 0, 2 * 1000000L };

	while (!__atomic_load_n(&k->stop, __ATOMIC_SEQ_CST)) {
		int rc = store_checkpoint(k->st);

		/* A passive checkpoint may find another one running. */
		if (rc != STORE_OK && rc != STORE_BUSY)
			k->failures++;
		if (k->journal && store_journal_drain(k->st) != STORE_OK)
			k->failures++;
		k->rounds++;
		nanosleep(&pause, NULL);
	}
	return NULL;
}

/*
 * Checks that @text holds each "<w>.<i>" for w in 1..@nwriters and i in
 * 0..@per-1 exactly once, and that each writer's values are in order.
 */
static void assert_each_value_once(const char *text, size_t len,
				   int nwriters, int per)
{
	unsigned char *seen = calloc((size_t)nwriters * (size_t)per, 1);
	int *next = calloc((size_t)nwriters, sizeof(int));
	const char *p = text, *end = text + len;
	size_t lines = 0;

	cr_assert(seen && next);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char *stop = NULL;
		long w, i;

		cr_assert_not_null(nl, "last line has no newline");
		w = strtol(p, &stop, 10);
		cr_assert(stop < nl && *stop == '.', "bad line '%.*s'",
			  (int)(nl - p), p);
		i = strtol(stop + 1, &stop, 10);
		cr_assert_eq(stop, nl, "bad line '%.*s'", (int)(nl - p), p);
		cr_assert(w >= 1 && w <= nwriters && i >= 0 && i < per,
			  "bad value '%.*s'", (int)(nl - p), p);
		cr_assert_eq(seen[(w - 1) * per + i], 0, "'%ld.%ld' twice", w,
			     i);
		seen[(w - 1) * per + i] = 1;
		cr_assert_eq(next[w - 1], i, "writer %ld: %ld logged before %d",
			     w, i, next[w - 1]);
		next[w - 1]++;
		lines++;
		p = nl + 1;
	}
	cr_assert_eq(lines, (size_t)nwriters * (size_t)per,
		     "%zu values, want %d", lines, nwriters * per);
	free(seen);
	free(next);
}

static int64_t text_bytes_of(int nwriters, int per)
{
	int64_t n = 0;

	for (int w = 1; w <= nwriters; w++)
		for (int i = 0; i < per; i++)
			n += snprintf(NULL, 0, "%d.%d\n", w, i);
	return n;
}

static void check_threads_appending(int journal)
{
	struct writer w[NTHREADS];
	struct keeper k = { .journal = journal };
	struct store_metric m = { 0 };
	struct shared_writes sw = { .acked = 0 };
	struct store *st = open_fresh();
	size_t len, nchunks;
	char *text;

	if (journal)
		cr_assert_eq(store_journal_start(st), STORE_OK);
	sw.st = st;
	sw.run_id = make_run(st, make_experiment(st, "A"), "r1");
	k.st = st;
	cr_assert_eq(pthread_create(&k.tid, NULL, keeper_main, &k), 0);
	for (int t = 0; t < NTHREADS; t++) {
		w[t] = (struct writer){ .sw = &sw, .index = t + 1 };
		cr_assert_eq(pthread_create(&w[t].tid, NULL, writer_main,
					    &w[t]), 0);
	}
	for (int t = 0; t < NTHREADS; t++)
		cr_assert_eq(pthread_join(w[t].tid, NULL), 0);
	__atomic_store_n(&k.stop, 1, __ATOMIC_SEQ_CST);
	cr_assert_eq(pthread_join(k.tid, NULL), 0);
	for (int t = 0; t < NTHREADS; t++) {
		cr_assert_eq(w[t].failures, 0, "thread %d: %d failed calls "
			     "(%s)", t, w[t].failures,
			     store_strerror(w[t].last_rc));
		cr_assert_eq(w[t].metric_id, w[0].metric_id,
			     "two threads ensured two metrics");
		cr_assert_eq(w[t].stale_reads, 0, "thread %d: %d reads missed "
			     "appends that had returned", t, w[t].stale_reads);
	}
	cr_assert_eq(k.failures, 0, "%d failed checkpoints or drains",
		     k.failures);

	cr_assert_eq(store_metric_get(st, sw.run_id, "shared", &m), STORE_OK);
	cr_assert_eq(m.count, NTHREADS * THREAD_POINTS);
	cr_assert_eq(m.text_bytes, text_bytes_of(NTHREADS, THREAD_POINTS));
	text = metric_text(st, m.id, &len, &nchunks);
	cr_assert_eq(nchunks, NTHREADS * THREAD_POINTS, "one chunk per append");
	cr_assert_eq((int64_t)len, m.text_bytes);
	assert_each_value_once(text, len, NTHREADS, THREAD_POINTS);
	free(text);
	store_metric_release(&m);
	cr_assert_eq(store_integrity_check(st), STORE_OK);
	store_close(st);
}

Test(store, threads_appending_to_one_metric_lose_no_point)
{
	check_threads_appending(0);
}

Test(store, threads_appending_through_journal_lose_no_point)
{
	check_threads_appending(1);
}

/* ---- concurrency: processes ------------------------------------------ */

#define NPROCS 4
#define PROC_POINTS 2000
#define PROC_RUN_EVERY 40	/* a run per 40 points: 50 per process */

/*
 * Forks @n children running @fn(index 1..n, arg) once the parent lets
 * them all go together, waits for them and asserts each exited 0.
 */
static void run_children(int n, int (*fn)(int index, void *arg), void *arg)
{
	pid_t pid[16];
	int go[2];

	cr_assert_leq(n, 16);
	cr_assert_eq(pipe(go), 0);
	fflush(NULL);
	for (int k = 0; k < n; k++) {
		pid[k] = fork();
		cr_assert_geq(pid[k], 0, "fork: %s", strerror(errno));
		if (pid[k] == 0) {
			char c;

			close(go[1]);
			/* Blocks until the parent closes the write end. */
			if (read(go[0], &c, 1) != 0)
				_exit(90);
			close(go[0]);
			_exit(fn(k + 1, arg));
		}
	}
	close(go[0]);
	close(go[1]);
	for (int k = 0; k < n; k++) {
		int status = 0;

		cr_assert_eq(waitpid(pid[k], &status, 0), pid[k]);
		cr_assert(WIFEXITED(status), "child %d died (signal %d)", k + 1,
			  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		cr_assert_eq(WEXITSTATUS(status), 0, "child %d exited %d", k + 1,
			     WEXITSTATUS(status));
	}
}

struct proc_job {
	char dir[PATH_MAX];
	int64_t exp_id;
	int64_t run_id;
	int64_t metric_id;
	int journal;
	int points;
	int drain_at;		/* crash_writer: read (drain) after this many */
};

/* In a child: no cr_assert; the exit status says what failed. */
static int proc_writer(int index, void *arg)
{
	const struct proc_job *job = arg;
	struct store *st = NULL;
	char text[32], err[256];
	int64_t id = 0;
	int rc, status = 0;

	rc = store_open(job->dir, 0, &st, err, sizeof(err));
	if (rc != STORE_OK) {
		fprintf(stderr, "child %d: open: %s: %s\n", index,
			store_strerror(rc), err);
		return 10;
	}
	if (job->journal && store_journal_start(st) != STORE_OK)
		status = 13;
	if (!status && store_metric_ensure(st, job->run_id, "shared", &id, NULL) !=
			       STORE_OK)
		status = 14;
	for (int i = 0; i < PROC_POINTS && !status; i++) {
		snprintf(text, sizeof(text), "%d.%d", index, i);
		rc = append_text(st, id, text);
		if (rc != STORE_OK) {
			fprintf(stderr, "child %d: append %d: %s\n", index, i,
				store_strerror(rc));
			status = 11;
		}
		if (!status && i % PROC_RUN_EVERY == 0) {
			snprintf(text, sizeof(text), "p%d-r%d", index,
				 i / PROC_RUN_EVERY);
			rc = store_run_create_interactive(st, job->exp_id, text,
							  NULL);
			if (rc != STORE_OK) {
				fprintf(stderr, "child %d: run %s: %s\n", index,
					text, store_strerror(rc));
				status = 12;
			}
		}
	}
	store_close(st);
	return status;
}

struct run_check {
	int64_t expect;		/* next number */
	int bad_number;
	int bad_name;
	int dup;
	unsigned char seen[NPROCS][PROC_POINTS / PROC_RUN_EVERY];
};

static int check_run(void *ctx, const struct store_run_entry *r)
{
	struct run_check *rc = ctx;
	char *end = NULL;
	long p = -1, k = -1;

	if (r->number != rc->expect)
		rc->bad_number++;
	rc->expect++;
	/* "p<proc>-r<k>" */
	if (r->name[0] == 'p')
		p = strtol(r->name + 1, &end, 10);
	if (end && end[0] == '-' && end[1] == 'r')
		k = strtol(end + 2, &end, 10);
	if (!end || *end || p < 1 || p > NPROCS || k < 0 ||
	    k >= PROC_POINTS / PROC_RUN_EVERY) {
		rc->bad_name++;
		return 0;
	}
	if (rc->seen[p - 1][k]++)
		rc->dup++;
	return 0;
}

static void check_processes_appending(int journal)
{
	const int nruns = NPROCS * (PROC_POINTS / PROC_RUN_EVERY);
	struct proc_job job = { .journal = journal };
	struct run_check rc = { .expect = 1 };
	struct store_experiment e = { 0 };
	struct store_metric m = { 0 };
	struct store *st = open_fresh();
	size_t len;
	char *text;

	job.exp_id = make_experiment(st, "conc");
	job.run_id = make_run(st, make_experiment(st, "metrics"), "main");
	snprintf(job.dir, sizeof(job.dir), "%s", ws_root);
	store_close(st);

	run_children(NPROCS, proc_writer, &job);

	st = open_ws(ws_root, 0);
	cr_assert_eq(store_integrity_check(st), STORE_OK);
	cr_assert_eq(store_metric_get(st, job.run_id, "shared", &m), STORE_OK);
	cr_assert_eq(m.count, NPROCS * PROC_POINTS);
	cr_assert_eq(m.text_bytes, text_bytes_of(NPROCS, PROC_POINTS));
	text = metric_text(st, m.id, &len, NULL);
	cr_assert_eq((int64_t)len, m.text_bytes);
	assert_each_value_once(text, len, NPROCS, PROC_POINTS);
	free(text);
	store_metric_release(&m);

	/* Runs: numbered densely 1..N in list order, each name once. */
	cr_assert_eq(store_run_list(st, job.exp_id, check_run, &rc), STORE_OK);
	cr_assert_eq(rc.expect - 1, nruns, "%lld runs, want %d",
		     (long long)(rc.expect - 1), nruns);
	cr_assert_eq(rc.bad_number, 0, "run numbers are not dense");
	cr_assert_eq(rc.bad_name, 0);
	cr_assert_eq(rc.dup, 0);
	for (int p = 0; p < NPROCS; p++)
		for (int k = 0; k < PROC_POINTS / PROC_RUN_EVERY; k++)
			cr_assert_eq(rc.seen[p][k], 1, "run p%d-r%d missing",
				     p + 1, k);
	cr_assert_eq(store_experiment_get_by_id(st, job.exp_id, &e), STORE_OK);
	cr_assert_eq(e.run_count, nruns);
	store_experiment_release(&e);
	store_close(st);
}

Test(store, processes_appending_and_creating_runs_lose_nothing)
{
	check_processes_appending(0);
}

Test(store, processes_appending_through_journals_lose_nothing)
{
	check_processes_appending(1);
}

/* In a child: open a workspace that does not exist yet. */
static int proc_creator(int index, void *arg)
{
	const struct proc_job *job = arg;
	struct store *st = NULL;
	char err[256], name[32];
	int rc = store_open(job->dir, STORE_CREATE, &st, err, sizeof(err));

	if (rc != STORE_OK) {
		fprintf(stderr, "child %d: open: %s: %s\n", index,
			store_strerror(rc), err);
		return 20;
	}
	snprintf(name, sizeof(name), "exp-%d", index);
	rc = store_experiment_create(st, name, NULL);
	store_close(st);
	if (rc != STORE_OK) {
		fprintf(stderr, "child %d: experiment: %s\n", index,
			store_strerror(rc));
		return 21;
	}
	return 0;
}

Test(store, processes_creating_one_workspace_at_once_all_succeed)
{
	struct proc_job job = { .exp_id = 0 };
	struct name_list l = { .n = 0 };
	char db_path[PATH_MAX];
	struct store *st;

	ws_path(job.dir, "together");
	run_children(NPROCS, proc_creator, &job);

	ws_path(db_path, "together/workspace.db");
	cr_assert_eq(db_user_version(db_path), STORE_SCHEMA_VERSION);
	st = open_ws(job.dir, 0);
	cr_assert_eq(store_integrity_check(st), STORE_OK);
	cr_assert_eq(store_experiment_list(st, collect_experiment, &l),
		     STORE_OK);
	cr_assert_eq(l.n, NPROCS, "%zu experiments, want %d", l.n, NPROCS);
	name_list_release(&l);
	store_close(st);
}

/* ---- the metric journal ---------------------------------------------- */

/* How many *.log files WORKSPACE/journal holds; the last one's path. */
static int journal_files(const char *ws, char *last, size_t size)
{
	char dir[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/journal", ws);
	d = opendir(dir);
	cr_assert_not_null(d, "no '%s': %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len > 4 && strcmp(de->d_name + len - 4, ".log") == 0) {
			n++;
			if (last)
				cr_assert_lt((size_t)snprintf(last, size, "%s/%s",
							      dir, de->d_name),
					     size);
		}
	}
	closedir(d);
	return n;
}

/* Rows of the journal progress table, read with SQLite directly. */
static int journal_rows(const char *ws)
{
	char db_path[PATH_MAX];
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int n;

	snprintf(db_path, sizeof(db_path), "%s/workspace.db", ws);
	cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM journal", -1,
					&s, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	n = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

/* The metric of @run_id named "m" holds "1.0" .. "1.<n-1>" in order. */
static void assert_journaled_points(struct store *st, int64_t metric_id,
				    int n)
{
	struct store_metric m = { 0 };
	size_t len;
	char *text;

	cr_assert_eq(store_metric_get_by_id(st, metric_id, &m), STORE_OK);
	cr_assert_eq(m.count, n, "%lld points, want %d", (long long)m.count,
		     n);
	text = metric_text(st, metric_id, &len, NULL);
	assert_each_value_once(text, len, 1, n);
	free(text);
	store_metric_release(&m);
}

Test(store, journal_appends_are_read_back_and_merged_on_close)
{
	struct store *st = open_fresh();
	int64_t run = make_run(st, make_experiment(st, "A"), "r1");
	int64_t id = ensure_metric(st, run, "m");
	struct change_tail ct = { .n = 0 };
	int64_t head, seq;
	char text[32];

	cr_assert_eq(journal_files(ws_root, NULL, 0), 0);
	cr_assert_eq(store_journal_start(st), STORE_OK);
	cr_assert_eq(store_journal_start(st), STORE_OK, "a second start");
	cr_assert_eq(journal_files(ws_root, NULL, 0), 1);
	cr_assert_eq(store_changes_head(st, &head), STORE_OK);
	for (int i = 0; i < 300; i++) {
		snprintf(text, sizeof(text), "1.%d", i);
		cr_assert_eq(append_text(st, id, text), STORE_OK);
	}
	/* Reads drain first: every acknowledged append is visible. */
	assert_journaled_points(st, id, 300);
	/* The merge records the change, as a direct append would. */
	seq = head;
	cr_assert_eq(store_changes_since(st, &seq, collect_tail, &ct),
		     STORE_OK);
	cr_assert_gt(ct.n, 0);
	cr_assert_eq(ct.last.kind, CHANGE_METRIC);
	cr_assert_eq(ct.last.run_id, run);
	cr_assert_eq(ct.last.object_id, id);
	/* Draining again changes nothing. */
	cr_assert_eq(store_journal_drain(st), STORE_OK);
	cr_assert_eq(store_journal_drain(st), STORE_OK);
	for (int i = 300; i < 400; i++) {
		snprintf(text, sizeof(text), "1.%d", i);
		cr_assert_eq(append_text(st, id, text), STORE_OK);
	}
	store_close(st);

	cr_assert_eq(journal_files(ws_root, NULL, 0), 0,
		     "store_close left its journal");
	cr_assert_eq(journal_rows(ws_root), 0, "store_close left its row");
	st = open_ws(ws_root, 0);
	assert_journaled_points(st, id, 400);
	store_close(st);
}

/*
 * In a child: journal @job->points appends "1.<i>" to @job->metric_id,
 * draining once after @job->drain_at of them, then die without closing
 * the store, as a killed mount would.
 */
static int crash_writer(int index, void *arg)
{
	const struct proc_job *job = arg;
	struct store *st = NULL;
	struct store_metric m = { 0 };
	char text[32], err[256];

	(void)index;
	if (store_open(job->dir, 0, &st, err, sizeof(err)) != STORE_OK)
		return 30;
	if (store_journal_start(st) != STORE_OK)
		return 31;
	for (int i = 0; i < job->points; i++) {
		snprintf(text, sizeof(text), "1.%d", i);
		if (append_text(st, job->metric_id, text) != STORE_OK)
			return 32;
		if (i + 1 == job->drain_at) {
			if (store_metric_get_by_id(st, job->metric_id, &m) !=
				    STORE_OK || m.count != job->drain_at)
				return 33;
			store_metric_release(&m);
		}
	}
	_exit(0);	/* no store_close: the journal stays behind */
}

/* Makes workspace ws_root/@rel with a metric and a crashed journal. */
static void crashed_workspace(struct proc_job *job, const char *rel,
			      int points, int drain_at)
{
	struct store *st;

	ws_path(job->dir, rel);
	st = open_ws(job->dir, STORE_CREATE);
	job->run_id = make_run(st, make_experiment(st, "A"), "r1");
	job->metric_id = ensure_metric(st, job->run_id, "m");
	job->points = points;
	job->drain_at = drain_at;
	store_close(st);
	run_children(1, crash_writer, job);
	cr_assert_eq(journal_files(job->dir, NULL, 0), 1,
		     "the crashed writer left no journal");
}

Test(store, journal_of_crashed_process_is_merged_exactly_once)
{
	struct proc_job job = { .exp_id = 0 };
	struct store *st;

	/* Partly drained before the crash: the rest merges, once. */
	crashed_workspace(&job, "ws", 500, 200);
	st = open_ws(job.dir, 0);
	assert_journaled_points(st, job.metric_id, 500);
	store_close(st);
	cr_assert_eq(journal_files(job.dir, NULL, 0), 0,
		     "the recovered journal was not removed");
	cr_assert_eq(journal_rows(job.dir), 0);

	st = open_ws(job.dir, 0);
	assert_journaled_points(st, job.metric_id, 500);
	store_close(st);
}

static void append_bytes(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	cr_assert_geq(fd, 0, "cannot open '%s': %s", path, strerror(errno));
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/*
 * Opens the workspace in @dir in a child (so journal recovery runs there):
 * 0 when that worked, 1 when it failed, 2 when it did not finish within
 * @seconds (the child is killed).
 */
static int open_in_child_within(const char *dir, int seconds)
{
	struct timespec pause = { 0, 10 * 1000000L };
	int status = 0;
	pid_t pid, done = 0;

	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct store *st = NULL;

		if (store_open(dir, 0, &st, NULL, 0) != STORE_OK)
			_exit(1);
		store_close(st);
		_exit(0);
	}
	for (int i = 0; i < seconds * 100 && !done; i++) {
		done = waitpid(pid, &status, WNOHANG);
		if (!done)
			nanosleep(&pause, NULL);
	}
	if (!done) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return 2;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

/*
 * A crash can leave anything after the last whole record: zeros of a file
 * extended but never written, garbage, a record cut short.
 */
Test(store, journal_recovery_stops_at_torn_tail)
{
	enum { FILL, HEAD_BYTES, RECORD_LESS };
	static const struct {
		const char *name;
		int kind;
		size_t len;	/* FILL, HEAD_BYTES: bytes; RECORD_LESS: cut */
		int byte;
	} tails[] = {
		{ "zeros-5", FILL, 5, 0 },
		{ "zeros-12", FILL, 12, 0 },
		{ "zeros-64", FILL, 64, 0 },
		{ "garbage-40", FILL, 40, 0xab },
		{ "head-only", HEAD_BYTES, 16, 0 },
		{ "record-less-1", RECORD_LESS, 1, 0 },
		{ "record-less-16", RECORD_LESS, 16, 0 },
		{ "record-less-17", RECORD_LESS, 17, 0 },
	};
	struct strbuf failed = STRBUF_INIT;

	for (size_t t = 0; t < sizeof(tails) / sizeof(*tails); t++) {
		struct proc_job job = { .exp_id = 0 };
		char path[PATH_MAX], tail[256];
		size_t len = tails[t].len;
		struct store *st;

		crashed_workspace(&job, tails[t].name, 50, 0);
		cr_assert_eq(journal_files(job.dir, path, sizeof(path)), 1);
		if (tails[t].kind == FILL) {
			memset(tail, tails[t].byte, len);
		} else {
			/* The start of the journal's first record. */
			int fd = open(path, O_RDONLY);
			uint64_t payload;

			cr_assert_geq(fd, 0);
			cr_assert_eq(read(fd, tail, sizeof(tail)),
				     (ssize_t)sizeof(tail));
			close(fd);
			memcpy(&payload, tail + 8, sizeof(payload));
			if (tails[t].kind == RECORD_LESS)
				len = 16 + (size_t)payload - tails[t].len;
			cr_assert_lt(len, sizeof(tail));
		}
		append_bytes(path, tail, len);

		switch (open_in_child_within(job.dir, 3)) {
		case 1:
			strbuf_addf(&failed, " %s (open failed)", tails[t].name);
			continue;
		case 2:
			strbuf_addf(&failed, " %s (open hangs)", tails[t].name);
			continue;
		}
		st = open_ws(job.dir, 0);
		assert_journaled_points(st, job.metric_id, 50);
		store_close(st);
		cr_assert_eq(journal_files(job.dir, NULL, 0), 0,
			     "%s: the journal was not removed", tails[t].name);
	}
	cr_assert_eq(failed.len, 0, "journal recovery with a torn tail:%s",
		     strbuf_str(&failed));
	strbuf_release(&failed);
}

/*
 * A journal whose process is alive belongs to it: another process's
 * store_open must leave it, or the owner's own drain merges it twice.
 */
Test(store, journal_of_live_process_is_left_to_its_owner)
{
	struct proc_job job = { .exp_id = 0 };
	struct store_metric m = { 0 };
	int ready[2], done[2], status = 0;
	struct store *st;
	pid_t pid;
	char c;

	ws_path(job.dir, "");
	st = open_fresh();
	job.run_id = make_run(st, make_experiment(st, "A"), "r1");
	job.metric_id = ensure_metric(st, job.run_id, "m");
	store_close(st);

	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(done), 0);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char text[32];
		int rc = 0;

		close(ready[0]);
		close(done[1]);
		st = NULL;
		if (store_open(job.dir, 0, &st, NULL, 0) != STORE_OK ||
		    store_journal_start(st) != STORE_OK)
			_exit(40);
		for (int i = 0; i < 100 && !rc; i++) {
			snprintf(text, sizeof(text), "1.%d", i);
			rc = append_text(st, job.metric_id, text);
		}
		if (rc != STORE_OK)
			_exit(41);
		if (write(ready[1], "r", 1) != 1)
			_exit(42);
		if (read(done[0], &c, 1) != 0)	/* until the parent closes */
			_exit(43);
		store_close(st);	/* drains its own journal */
		_exit(0);
	}
	close(ready[1]);
	close(done[0]);
	cr_assert_eq(read(ready[0], &c, 1), 1, "the child failed");
	/* The child is alive, its journal unmerged: opening must not take it. */
	st = open_ws(job.dir, 0);
	cr_assert_eq(journal_files(job.dir, NULL, 0), 1,
		     "a live journal was recovered");
	store_close(st);
	close(done[1]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "child status %d", status);
	close(ready[0]);

	st = open_ws(job.dir, 0);
	cr_assert_eq(store_metric_get_by_id(st, job.metric_id, &m), STORE_OK);
	cr_assert_eq(m.count, 100, "%lld points, want 100",
		     (long long)m.count);
	store_metric_release(&m);
	assert_journaled_points(st, job.metric_id, 100);
	store_close(st);
}
