/*
 * schema.c - the workspace database schema and its migrations.
 *
 * The schema version lives in PRAGMA user_version. migrations[k] takes a
 * database from version k to k + 1; each runs in its own transaction
 * together with the user_version bump, so a crash mid-migration leaves the
 * previous version intact. Never edit a migration that has shipped: add one.
 */
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

static const char *const migrations[] = {
	/* 0 -> 1: experiments, runs, tags, properties, metrics, events, changes */
	"CREATE TABLE workspace ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  name TEXT NOT NULL,"
	"  uuid TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL);"
	"CREATE TABLE experiment ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL,"
	"  next_number INTEGER NOT NULL DEFAULT 1);"
	"CREATE TABLE run ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  experiment_id INTEGER NOT NULL REFERENCES experiment (id),"
	"  number INTEGER NOT NULL,"
	"  status INTEGER NOT NULL,"
	"  interactive INTEGER NOT NULL,"
	"  display_name TEXT,"
	"  compute_target TEXT,"
	"  parent_id INTEGER REFERENCES run (id),"
	"  created_ms INTEGER NOT NULL,"
	"  started_ms INTEGER,"
	"  ended_ms INTEGER,"
	"  updated_ms INTEGER NOT NULL,"
	"  exit_code INTEGER,"
	"  error TEXT,"
	"  UNIQUE (experiment_id, number));"
	"CREATE TABLE tag ("
	"  run_id INTEGER NOT NULL REFERENCES run (id),"
	"  key TEXT NOT NULL,"
	"  value BLOB NOT NULL,"
	"  updated_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (run_id, key)) WITHOUT ROWID;"
	"CREATE TABLE property ("
	"  run_id INTEGER NOT NULL REFERENCES run (id),"
	"  key TEXT NOT NULL,"
	"  value BLOB NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (run_id, key)) WITHOUT ROWID;"
	"CREATE TABLE metric ("
	"  id INTEGER PRIMARY KEY,"
	"  run_id INTEGER NOT NULL REFERENCES run (id),"
	"  name TEXT NOT NULL,"
	"  count INTEGER NOT NULL,"
	"  last_value REAL,"
	"  last_text TEXT,"
	"  min_value REAL,"
	"  max_value REAL,"
	"  last_step INTEGER,"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL,"
	"  text_bytes INTEGER NOT NULL,"
	"  UNIQUE (run_id, name));"
	/* One row per append: the points of one write stay together. */
	"CREATE TABLE metric_chunk ("
	"  metric_id INTEGER NOT NULL REFERENCES metric (id),"
	"  first_seq INTEGER NOT NULL,"
	"  n INTEGER NOT NULL,"
	"  ts_ms INTEGER NOT NULL,"
	"  text BLOB NOT NULL,"
	"  steps BLOB,"
	"  PRIMARY KEY (metric_id, first_seq)) WITHOUT ROWID;"
	"CREATE TABLE event ("
	"  id INTEGER PRIMARY KEY,"
	"  ts_ms INTEGER NOT NULL,"
	"  line TEXT NOT NULL);"
	"CREATE TABLE change ("
	"  seq INTEGER PRIMARY KEY,"
	"  ts_ms INTEGER NOT NULL,"
	"  kind INTEGER NOT NULL,"
	"  experiment_id INTEGER,"
	"  run_id INTEGER,"
	"  object_id INTEGER,"
	"  origin INTEGER NOT NULL DEFAULT 0);"
	/* How far each metric journal file has been merged (journal.c). */
	"CREATE TABLE journal ("
	"  name TEXT PRIMARY KEY,"
	"  merged INTEGER NOT NULL);",

	/*
	 * 1 -> 2: submitted runs. The normalized request, the snapshot, a
	 * time limit, and who supervises the run (pid + start time + boot,
	 * so a reused pid is never mistaken for the supervisor). Compute
	 * targets, "local" always present.
	 */
	"ALTER TABLE run ADD COLUMN snapshot TEXT;"
	"ALTER TABLE run ADD COLUMN config TEXT;"
	"ALTER TABLE run ADD COLUMN max_duration_s INTEGER;"
	"ALTER TABLE run ADD COLUMN supervisor_pid INTEGER;"
	"ALTER TABLE run ADD COLUMN supervisor_start INTEGER;"
	"ALTER TABLE run ADD COLUMN process_pid INTEGER;"
	"ALTER TABLE run ADD COLUMN process_start INTEGER;"
	"ALTER TABLE run ADD COLUMN boot_id TEXT;"
	"CREATE INDEX run_by_parent ON run (parent_id) "
	"  WHERE parent_id IS NOT NULL;"
	"CREATE INDEX run_by_compute ON run (compute_target, status) "
	"  WHERE compute_target IS NOT NULL;"
	"CREATE TABLE compute ("
	"  name TEXT PRIMARY KEY,"
	"  type TEXT NOT NULL,"
	"  max_concurrent INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL);"
	"INSERT INTO compute VALUES ('local', 'local', 0,"
	"  CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),"
	"  CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));",

	/*
	 * 2 -> 3: the model registry (store/model.c). Version numbers come
	 * from model_seq, keyed by the model's name and never deleted, so a
	 * number is not reused even when the model is removed and made
	 * again. A version's files name blobs (sha256 hex) by reference;
	 * deployment_ref is how a deployment pins a version.
	 */
	"CREATE TABLE model ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL);"
	"CREATE TABLE model_seq ("
	"  name TEXT PRIMARY KEY,"
	"  next_version INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE model_version ("
	"  id INTEGER PRIMARY KEY,"
	"  model_id INTEGER NOT NULL REFERENCES model (id),"
	"  version INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL,"
	"  description TEXT NOT NULL,"
	"  framework TEXT,"
	"  run_id INTEGER REFERENCES run (id),"
	"  UNIQUE (model_id, version));"
	"CREATE INDEX model_version_by_run ON model_version (run_id) "
	"  WHERE run_id IS NOT NULL;"
	"CREATE TABLE model_file ("
	"  version_id INTEGER NOT NULL "
	"    REFERENCES model_version (id) ON DELETE CASCADE,"
	"  path TEXT NOT NULL,"
	"  blob TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  mode INTEGER NOT NULL,"
	"  PRIMARY KEY (version_id, path)) WITHOUT ROWID;"
	"CREATE INDEX model_file_by_blob ON model_file (blob, version_id);"
	"CREATE TABLE model_tag ("
	"  version_id INTEGER NOT NULL "
	"    REFERENCES model_version (id) ON DELETE CASCADE,"
	"  key TEXT NOT NULL,"
	"  value BLOB NOT NULL,"
	"  updated_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (version_id, key)) WITHOUT ROWID;"
	"CREATE TABLE model_property ("
	"  version_id INTEGER NOT NULL "
	"    REFERENCES model_version (id) ON DELETE CASCADE,"
	"  key TEXT NOT NULL,"
	"  value BLOB NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (version_id, key)) WITHOUT ROWID;"
	"CREATE TABLE model_alias ("
	"  model_id INTEGER NOT NULL REFERENCES model (id),"
	"  alias TEXT NOT NULL,"
	"  version_id INTEGER NOT NULL "
	"    REFERENCES model_version (id) ON DELETE CASCADE,"
	"  updated_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (model_id, alias)) WITHOUT ROWID;"
	"CREATE INDEX model_alias_by_version ON model_alias (version_id);"
	"CREATE TABLE deployment_ref ("
	"  deployment TEXT NOT NULL,"
	"  version_id INTEGER NOT NULL "
	"    REFERENCES model_version (id) ON DELETE CASCADE,"
	"  active INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (deployment, version_id)) WITHOUT ROWID;"
	"CREATE INDEX deployment_ref_by_version ON deployment_ref (version_id);",

	/* 3 -> 4: datastores (header values live in WORKSPACE/credentials) */
	"CREATE TABLE datastore ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  type INTEGER NOT NULL,"
	"  path TEXT,"
	"  url TEXT,"
	"  header_names TEXT NOT NULL DEFAULT '[]',"
	"  created_ms INTEGER NOT NULL);"
	"INSERT INTO datastore (name, type, path, created_ms) VALUES "
	"  ('default', 1, 'datastore',"
	"   CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));",

	/*
	 * 4 -> 5: dataset versions (store/dataset.c). A dataset's numbers
	 * come from its next_version; datasets are never removed, so a
	 * number is never reused. A file row holds its pin (size and
	 * mtime_ns for a local datastore, size, etag and http_mtime_ms for
	 * an HTTP one) and, when copied, its blob. The primary key makes
	 * a directory's files one range (version_id, path >= P AND
	 * path < P'); dataset_file_by_blob serves the blob queries of
	 * model.c, which must keep a dataset's blobs.
	 */
	"CREATE TABLE dataset ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  next_version INTEGER NOT NULL DEFAULT 1,"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL);"
	"CREATE TABLE dataset_version ("
	"  id INTEGER PRIMARY KEY,"
	"  dataset_id INTEGER NOT NULL REFERENCES dataset (id),"
	"  version INTEGER NOT NULL,"
	"  datastore_id INTEGER NOT NULL REFERENCES datastore (id),"
	"  description TEXT NOT NULL,"
	"  tags_json TEXT NOT NULL,"
	"  copy INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  file_count INTEGER NOT NULL,"
	"  total_bytes INTEGER NOT NULL,"
	"  UNIQUE (dataset_id, version));"
	"CREATE INDEX dataset_version_by_datastore "
	"  ON dataset_version (datastore_id);"
	"CREATE TABLE dataset_file ("
	"  version_id INTEGER NOT NULL "
	"    REFERENCES dataset_version (id) ON DELETE CASCADE,"
	"  path TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  mtime_ns INTEGER NOT NULL,"
	"  etag TEXT,"
	"  http_mtime_ms INTEGER NOT NULL,"
	"  blob TEXT,"
	"  PRIMARY KEY (version_id, path)) WITHOUT ROWID;"
	"CREATE INDEX dataset_file_by_blob ON dataset_file (blob) "
	"  WHERE blob IS NOT NULL;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) ==
		       STORE_SCHEMA_VERSION,
	       "one migration per schema version");

int schema_version(sqlite3 *db, int *version)
{
	sqlite3_stmt *s = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
	if (rc != SQLITE_OK)
		goto out;
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW)
		goto out;
	*version = sqlite3_column_int(s, 0);
	rc = SQLITE_OK;
out:
	sqlite3_finalize(s);
	return rc == SQLITE_OK ? STORE_OK : STORE_IO;
}

/*
 * Applies migrations[from] if the database is still at version @from once
 * the write lock is held: two processes opening a fresh workspace at once
 * then migrate it exactly once.
 */
static int apply_migration(sqlite3 *db, int from, char *err, size_t errlen)
{
	char sql[64];
	char *msg = NULL;
	int now = -1;
	int rc;

	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		goto out;
	if (schema_version(db, &now) != STORE_OK) {
		rc = SQLITE_ERROR;
		goto out_rollback;
	}
	if (now != from)
		goto out_rollback;	/* someone else got there first */
	rc = sqlite3_exec(db, migrations[from], NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		goto out_rollback;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", from + 1);
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		goto out_rollback;
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		goto out_rollback;
	return STORE_OK;

out_rollback:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		return STORE_OK;
out:
	if (err)
		snprintf(err, errlen, "cannot migrate schema %d to %d: %s",
			 from, from + 1, msg ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	return rc == SQLITE_BUSY ? STORE_BUSY : STORE_IO;
}

int schema_migrate(sqlite3 *db, int target, char *err, size_t errlen)
{
	int version = 0;
	int rc;

	rc = schema_version(db, &version);
	if (rc != STORE_OK) {
		if (err)
			snprintf(err, errlen, "cannot read schema version: %s",
				 sqlite3_errmsg(db));
		return rc;
	}
	if (version > STORE_SCHEMA_VERSION) {
		if (err)
			snprintf(err, errlen,
				 "workspace schema %d is newer than this mlfs (%d)",
				 version, STORE_SCHEMA_VERSION);
		return STORE_TOO_NEW;
	}
	while (version < target) {
		rc = apply_migration(db, version, err, errlen);
		if (rc != STORE_OK)
			return rc;
		rc = schema_version(db, &version);
		if (rc != STORE_OK)
			return rc;
	}
	return STORE_OK;
}
