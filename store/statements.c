/*
 * statements.c - every SQL statement the store runs, in one table.
 *
 * Keeping the SQL together makes a second backend a matter of translating
 * one file, and shows at a glance which indexes each query relies on.
 */
#include "store_internal.h"

#define RUN_COLUMNS                                                          \
	"id, name, experiment_id, number, status, interactive, display_name, " \
	"compute_target, parent_id, created_ms, started_ms, ended_ms, "       \
	"updated_ms, exit_code, error, snapshot, config, max_duration_s, "     \
	"supervisor_pid"

#define METRIC_COLUMNS                                                       \
	"id, run_id, name, count, last_value, min_value, max_value, "         \
	"last_step, created_ms, updated_ms, text_bytes"

/* A model's version count and latest version: model_version (model_id, version). */
#define MODEL_COLUMNS                                                        \
	"m.id, m.name, m.created_ms, m.updated_ms, "                          \
	"(SELECT count(*) FROM model_version v WHERE v.model_id = m.id), "    \
	"(SELECT coalesce(max(v.version), 0) FROM model_version v "          \
	"WHERE v.model_id = m.id)"

#define VERSION_COLUMNS                                                      \
	"v.id, v.model_id, m.name, v.version, v.created_ms, v.updated_ms, "   \
	"v.description, v.framework, v.run_id"

#define DATASET_VERSION_COLUMNS                                              \
	"v.id, d.name, v.version, v.datastore_id, s.name, v.description, "    \
	"v.tags_json, v.copy, v.created_ms, v.file_count, v.total_bytes"

#define DATASET_VERSION_JOIN                                                 \
	"dataset_version v JOIN dataset d ON d.id = v.dataset_id "            \
	"JOIN datastore s ON s.id = v.datastore_id"

#define DATASET_FILE_COLUMNS "path, size, mtime_ns, etag, http_mtime_ms, blob"

/*
 * An experiment's run count is next_number - 1: runs are numbered densely
 * from 1 and never removed (run.c, invariant 1), and counting the rows
 * instead made every look at a directory of n runs cost O(n).
 */
const char *const store_sql[SQL_STMT_COUNT] = {
	[SQL_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
	[SQL_COMMIT] = "COMMIT",
	[SQL_ROLLBACK] = "ROLLBACK",
	[SQL_WORKSPACE_GET] =
		"SELECT name, uuid, created_ms, updated_ms FROM workspace "
		"WHERE id = 1",
	[SQL_WORKSPACE_TOUCH] = "UPDATE workspace SET updated_ms = ?1",

	[SQL_EXPERIMENT_INSERT] =
		"INSERT INTO experiment (name, created_ms, updated_ms) "
		"VALUES (?1, ?2, ?2)",
	[SQL_EXPERIMENT_GET] =
		"SELECT e.id, e.name, e.created_ms, e.updated_ms, "
		"e.next_number - 1 "
		"FROM experiment e WHERE e.name = ?1",
	[SQL_EXPERIMENT_GET_BY_ID] =
		"SELECT e.id, e.name, e.created_ms, e.updated_ms, "
		"e.next_number - 1 "
		"FROM experiment e WHERE e.id = ?1",
	[SQL_EXPERIMENT_DELETE] = "DELETE FROM experiment WHERE id = ?1",
	[SQL_EXPERIMENT_LIST] =
		"SELECT e.id, e.name, e.created_ms, e.updated_ms, "
		"e.next_number - 1 "
		"FROM experiment e ORDER BY e.name",
	[SQL_EXPERIMENT_TOUCH] =
		"UPDATE experiment SET updated_ms = ?2 WHERE id = ?1",
	[SQL_EXPERIMENT_NEXT_NUMBER] =
		"UPDATE experiment SET next_number = next_number + 1, "
		"updated_ms = ?2 WHERE id = ?1 RETURNING next_number - 1",

	[SQL_RUN_INSERT] =
		"INSERT INTO run (name, experiment_id, number, status, "
		"interactive, created_ms, started_ms, updated_ms) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6) RETURNING id",
	[SQL_RUN_GET] = "SELECT " RUN_COLUMNS " FROM run WHERE id = ?1",
	[SQL_RUN_FIND] = "SELECT " RUN_COLUMNS
			 " FROM run WHERE name = ?1 AND experiment_id = ?2",
	[SQL_RUN_LIST] =
		"SELECT id, name, number, created_ms, updated_ms FROM run "
		"WHERE experiment_id = ?1 ORDER BY number",
	[SQL_RUN_LATEST] =
		"SELECT name FROM run WHERE experiment_id = ?1 "
		"ORDER BY number DESC LIMIT 1",
	[SQL_RUN_SET_STATUS] =
		"UPDATE run SET status = ?2, ended_ms = ?3, updated_ms = ?4 "
		"WHERE id = ?1",
	[SQL_RUN_TOUCH] = "UPDATE run SET updated_ms = ?2 WHERE id = ?1",
	[SQL_RUN_BY_NAME] = "SELECT id FROM run WHERE name = ?1",
	[SQL_RUNS_NEWEST_FIRST] = "SELECT " RUN_COLUMNS
				  " FROM run WHERE experiment_id = ?1 "
				  "ORDER BY number DESC",

	[SQL_TAG_SET] =
		"INSERT INTO tag (run_id, key, value, updated_ms) "
		"VALUES (?1, ?2, ?3, ?4) ON CONFLICT (run_id, key) "
		"DO UPDATE SET value = excluded.value, "
		"updated_ms = excluded.updated_ms",
	[SQL_TAG_DELETE] = "DELETE FROM tag WHERE run_id = ?1 AND key = ?2",
	[SQL_TAG_GET] = "SELECT value, updated_ms FROM tag WHERE run_id = ?1 AND key = ?2",
	[SQL_TAG_LIST] = "SELECT key, value, updated_ms FROM tag "
			 "WHERE run_id = ?1 ORDER BY key",
	[SQL_TAGS_OF_EXPERIMENT] =
		"SELECT t.run_id, t.key, t.value FROM tag t "
		"JOIN run r ON r.id = t.run_id WHERE r.experiment_id = ?1",

	[SQL_PROPERTY_INSERT] =
		"INSERT INTO property (run_id, key, value, created_ms) "
		"VALUES (?1, ?2, ?3, ?4)",
	[SQL_PROPERTY_GET] =
		"SELECT value, created_ms FROM property "
		"WHERE run_id = ?1 AND key = ?2",
	[SQL_PROPERTY_LIST] = "SELECT key, value, created_ms FROM property "
			      "WHERE run_id = ?1 ORDER BY key",

	[SQL_METRIC_GET] = "SELECT " METRIC_COLUMNS
			   " FROM metric WHERE run_id = ?1 AND name = ?2",
	[SQL_METRIC_GET_BY_ID] = "SELECT " METRIC_COLUMNS
				 " FROM metric WHERE id = ?1",
	[SQL_METRIC_INSERT] =
		"INSERT INTO metric (run_id, name, count, created_ms, "
		"updated_ms, text_bytes) VALUES (?1, ?2, 0, ?3, ?3, 0) "
		"RETURNING " METRIC_COLUMNS,
	[SQL_METRIC_UPDATE] =
		"UPDATE metric SET count = ?2, last_value = ?3, last_text = ?4, "
		"min_value = ?5, max_value = ?6, last_step = ?7, "
		"updated_ms = ?8, text_bytes = ?9 WHERE id = ?1",
	[SQL_METRIC_LIST] = "SELECT " METRIC_COLUMNS
			    " FROM metric WHERE run_id = ?1 ORDER BY name",
	[SQL_METRICS_OF_EXPERIMENT] =
		"SELECT m.run_id, m.name, m.last_text, m.updated_ms FROM metric m "
		"JOIN run r ON r.id = m.run_id "
		"WHERE r.experiment_id = ?1 AND m.count > 0",

	[SQL_CHUNK_INSERT] =
		"INSERT INTO metric_chunk (metric_id, first_seq, n, ts_ms, "
		"text, steps) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[SQL_CHUNK_READ] =
		"SELECT first_seq, n, ts_ms, text, steps FROM metric_chunk "
		"WHERE metric_id = ?1 AND first_seq >= ?2 "
		"ORDER BY first_seq",

	[SQL_EVENT_INSERT] = "INSERT INTO event (ts_ms, line) VALUES (?1, ?2)",
	[SQL_EVENT_PRUNE] =
		"DELETE FROM event WHERE id <= (SELECT max(id) FROM event) - ?1",
	[SQL_EVENT_LIST] =
		"SELECT id, ts_ms, line FROM (SELECT id, ts_ms, line FROM event "
		"ORDER BY id DESC LIMIT ?1) ORDER BY id",

	[SQL_CHANGE_INSERT] =
		"INSERT INTO change (ts_ms, kind, experiment_id, run_id, "
		"object_id, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[SQL_CHANGE_SINCE] =
		"SELECT seq, kind, experiment_id, run_id, object_id, origin "
		"FROM change "
		"WHERE seq > ?1 ORDER BY seq LIMIT 4096",
	[SQL_JOURNAL_GET] = "SELECT merged FROM journal WHERE name = ?1",
	[SQL_JOURNAL_SET] =
		"INSERT INTO journal (name, merged) VALUES (?1, ?2) "
		"ON CONFLICT (name) DO UPDATE SET merged = excluded.merged",
	[SQL_JOURNAL_DELETE] = "DELETE FROM journal WHERE name = ?1",
	[SQL_CHANGE_HEAD] = "SELECT coalesce(max(seq), 0) FROM change",

	/* Submitted runs: statuses are enum run_status values (store.h). */
	[SQL_RUN_SUBMIT_INSERT] =
		"INSERT INTO run (name, experiment_id, number, status, "
		"interactive, display_name, compute_target, parent_id, "
		"created_ms, updated_ms, snapshot, config, max_duration_s) "
		"VALUES (?1, ?2, ?3, 1, 0, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10) "
		"RETURNING id",
	[SQL_RUN_COUNT_ACTIVE] =
		"SELECT count(*) FROM run WHERE compute_target = ?1 "
		"AND status BETWEEN 2 AND 5",
	[SQL_RUN_OLDEST_QUEUED] =
		"SELECT id FROM run WHERE compute_target = ?1 AND status = 1 "
		"ORDER BY id LIMIT 1",
	[SQL_RUN_SET_SUPERVISOR] =
		"UPDATE run SET status = 2, supervisor_pid = ?2, "
		"supervisor_start = ?3, boot_id = ?4, updated_ms = ?5 "
		"WHERE id = ?1",
	[SQL_RUN_SET_STARTED] =
		"UPDATE run SET status = 3, process_pid = ?2, process_start = ?3, "
		"started_ms = ?4, updated_ms = ?4 WHERE id = ?1",
	[SQL_RUN_SET_PHASE] =
		"UPDATE run SET status = ?2, updated_ms = ?3 WHERE id = ?1",
	[SQL_RUN_SET_END] =
		"UPDATE run SET status = ?2, ended_ms = ?3, updated_ms = ?3, "
		"exit_code = ?4, error = ?5 WHERE id = ?1",
	[SQL_RUN_LIST_ACTIVE] =
		"SELECT id, name, status, updated_ms, supervisor_pid, "
		"supervisor_start, boot_id, process_pid, process_start "
		"FROM run WHERE status BETWEEN 2 AND 5 AND interactive = 0 "
		"ORDER BY id",
	[SQL_RUN_CHILDREN] =
		"SELECT id, name, number, created_ms, updated_ms FROM run "
		"WHERE parent_id = ?1 ORDER BY id",
	[SQL_COMPUTE_QUEUE] =
		"SELECT r.id, r.name, r.number, r.created_ms, r.updated_ms, "
		"r.status, e.name FROM run r "
		"JOIN experiment e ON e.id = r.experiment_id "
		"WHERE r.compute_target = ?1 AND r.status BETWEEN 1 AND 5 "
		"ORDER BY r.id",
	[SQL_COMPUTE_GET] =
		"SELECT name, type, max_concurrent, created_ms, updated_ms "
		"FROM compute WHERE name = ?1",
	[SQL_COMPUTE_LIST] =
		"SELECT name, type, max_concurrent, created_ms, updated_ms "
		"FROM compute ORDER BY name",
	[SQL_COMPUTE_SET_MAX] =
		"UPDATE compute SET max_concurrent = ?2, updated_ms = ?3 "
		"WHERE name = ?1",
	[SQL_CHANGE_PRUNE] =
		"DELETE FROM change WHERE seq <= (SELECT max(seq) FROM change) - ?1",

	/* The model registry (model.c, model_meta.c). */
	[SQL_DATASTORE_INSERT] =
		"INSERT INTO datastore (name, type, path, url, header_names, "
		"created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[SQL_DATASTORE_GET] =
		"SELECT id, name, type, path, url, header_names, created_ms "
		"FROM datastore WHERE name = ?1",
	[SQL_DATASTORE_LIST] =
		"SELECT id, name, type, path, url, header_names, created_ms "
		"FROM datastore ORDER BY name",
	[SQL_DATASTORE_DELETE] = "DELETE FROM datastore WHERE id = ?1",
	/* dataset_version_by_datastore */
	[SQL_DATASTORE_IN_USE] =
		"SELECT EXISTS (SELECT 1 FROM dataset_version "
		"WHERE datastore_id = ?1)",

	/* Dataset versions (dataset.c). */
	[SQL_DATASET_ENSURE] =
		"INSERT INTO dataset (name, created_ms, updated_ms) "
		"VALUES (?1, ?2, ?2) ON CONFLICT (name) DO NOTHING",
	[SQL_DATASET_NEXT_VERSION] =
		"UPDATE dataset SET next_version = next_version + 1, "
		"updated_ms = ?2 WHERE name = ?1 "
		"RETURNING id, next_version - 1",
	[SQL_DATASET_GET_ID] = "SELECT id FROM dataset WHERE name = ?1",
	[SQL_DATASET_LIST] =
		"SELECT d.name, (SELECT max(v.version) FROM dataset_version v "
		"WHERE v.dataset_id = d.id), d.updated_ms "
		"FROM dataset d ORDER BY d.name",
	[SQL_DATASET_VERSION_INSERT] =
		"INSERT INTO dataset_version (dataset_id, version, "
		"datastore_id, description, tags_json, copy, created_ms, "
		"file_count, total_bytes) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
	[SQL_DATASET_VERSION_GET] =
		"SELECT " DATASET_VERSION_COLUMNS " FROM " DATASET_VERSION_JOIN
		" WHERE d.name = ?1 AND v.version = ?2",
	[SQL_DATASET_VERSION_LATEST] =
		"SELECT " DATASET_VERSION_COLUMNS " FROM " DATASET_VERSION_JOIN
		" WHERE d.name = ?1 ORDER BY v.version DESC LIMIT 1",
	[SQL_DATASET_VERSION_GET_BY_ID] =
		"SELECT " DATASET_VERSION_COLUMNS " FROM " DATASET_VERSION_JOIN
		" WHERE v.id = ?1",
	[SQL_DATASET_VERSION_LIST] =
		"SELECT " DATASET_VERSION_COLUMNS " FROM " DATASET_VERSION_JOIN
		" WHERE v.dataset_id = ?1 ORDER BY v.version",
	[SQL_DATASET_FILE_INSERT] =
		"INSERT INTO dataset_file (version_id, path, size, mtime_ns, "
		"etag, http_mtime_ms, blob) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[SQL_DATASET_FILE_GET] =
		"SELECT " DATASET_FILE_COLUMNS " FROM dataset_file "
		"WHERE version_id = ?1 AND path = ?2",
	/*
	 * The files under a prefix: a range of the primary key. Two
	 * statements, because "?3 IS NULL OR path < ?3" would leave the
	 * upper bound out of the index range and scan to the version's end.
	 */
	[SQL_DATASET_FILES_FROM] =
		"SELECT " DATASET_FILE_COLUMNS " FROM dataset_file "
		"WHERE version_id = ?1 AND path >= ?2 ORDER BY path",
	[SQL_DATASET_FILES_RANGE] =
		"SELECT " DATASET_FILE_COLUMNS " FROM dataset_file "
		"WHERE version_id = ?1 AND path >= ?2 AND path < ?3 "
		"ORDER BY path",
	/* Whether a version has a file under a prefix: one index probe. */
	[SQL_DATASET_PREFIX_FROM] =
		"SELECT 1 FROM dataset_file WHERE version_id = ?1 AND "
		"path >= ?2 LIMIT 1",
	[SQL_DATASET_PREFIX_RANGE] =
		"SELECT 1 FROM dataset_file WHERE version_id = ?1 AND "
		"path >= ?2 AND path < ?3 LIMIT 1",
	/* The paths a datastore's dataset versions use: each version's
	 * files by a range of the primary key, as above. */
	[SQL_DATASTORE_PATHS_FROM] =
		"SELECT DISTINCT f.path FROM dataset_version v "
		"JOIN dataset_file f ON f.version_id = v.id "
		"WHERE v.datastore_id = ?1 AND f.path >= ?2 ORDER BY f.path",
	[SQL_DATASTORE_PATHS_RANGE] =
		"SELECT DISTINCT f.path FROM dataset_version v "
		"JOIN dataset_file f ON f.version_id = v.id "
		"WHERE v.datastore_id = ?1 AND f.path >= ?2 AND f.path < ?3 "
		"ORDER BY f.path",
	[SQL_MODEL_INSERT] =
		"INSERT INTO model (name, created_ms, updated_ms) "
		"VALUES (?1, ?2, ?2)",
	[SQL_MODEL_ENSURE] =
		"INSERT INTO model (name, created_ms, updated_ms) "
		"VALUES (?1, ?2, ?2) ON CONFLICT (name) DO NOTHING",
	[SQL_MODEL_GET] = "SELECT " MODEL_COLUMNS " FROM model m "
			  "WHERE m.name = ?1",
	[SQL_MODEL_LIST] = "SELECT " MODEL_COLUMNS " FROM model m "
			   "ORDER BY m.name",
	[SQL_MODEL_DELETE] = "DELETE FROM model WHERE id = ?1",
	[SQL_MODEL_TOUCH] = "UPDATE model SET updated_ms = ?2 WHERE id = ?1",
	[SQL_MODEL_NEXT_VERSION] =
		"INSERT INTO model_seq (name, next_version) VALUES (?1, 2) "
		"ON CONFLICT (name) DO UPDATE SET "
		"next_version = next_version + 1 RETURNING next_version - 1",
	[SQL_MODEL_VERSION_INSERT] =
		"INSERT INTO model_version (model_id, version, created_ms, "
		"updated_ms, description, framework, run_id) "
		"VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6) RETURNING id",
	[SQL_MODEL_VERSION_GET] = "SELECT " VERSION_COLUMNS " FROM "
				  "model_version v JOIN model m ON "
				  "m.id = v.model_id "
				  "WHERE m.name = ?1 AND v.version = ?2",
	[SQL_MODEL_VERSION_GET_BY_ID] = "SELECT " VERSION_COLUMNS " FROM "
					"model_version v JOIN model m ON "
					"m.id = v.model_id WHERE v.id = ?1",
	[SQL_MODEL_VERSION_LIST] = "SELECT " VERSION_COLUMNS " FROM "
				   "model_version v JOIN model m ON "
				   "m.id = v.model_id WHERE v.model_id = ?1 "
				   "ORDER BY v.version",
	[SQL_MODEL_VERSIONS_OF_RUN] = "SELECT " VERSION_COLUMNS " FROM "
				      "model_version v JOIN model m ON "
				      "m.id = v.model_id WHERE v.run_id = ?1 "
				      "ORDER BY m.name, v.version",
	[SQL_MODEL_VERSION_DELETE] = "DELETE FROM model_version WHERE id = ?1",
	[SQL_MODEL_VERSION_TOUCH] =
		"UPDATE model_version SET updated_ms = ?2 WHERE id = ?1",
	[SQL_MODEL_FILE_INSERT] =
		"INSERT INTO model_file (version_id, path, blob, size, mode) "
		"VALUES (?1, ?2, ?3, ?4, ?5)",
	[SQL_MODEL_FILE_LIST] =
		"SELECT path, blob, size, mode FROM model_file "
		"WHERE version_id = ?1 ORDER BY path",
	/* The files at or below a path: a range of the primary key. */
	[SQL_MODEL_FILE_RANGE] =
		"SELECT path, blob, size, mode FROM model_file "
		"WHERE version_id = ?1 AND path >= ?2 AND (?3 IS NULL OR path < ?3) "
		"ORDER BY path",
	/*
	 * Blobs of version ?1 that no other model version and no dataset
	 * file names (model_file_by_blob, dataset_file_by_blob).
	 */
	[SQL_MODEL_ORPHANS] =
		"SELECT DISTINCT f.blob FROM model_file f "
		"WHERE f.version_id = ?1 AND NOT EXISTS (SELECT 1 FROM "
		"model_file g WHERE g.blob = f.blob AND g.version_id <> ?1) "
		"AND NOT EXISTS (SELECT 1 FROM dataset_file d "
		"WHERE d.blob = f.blob) "
		"ORDER BY f.blob",
	/* Every blob a model version or a copied dataset file names. */
	[SQL_MODEL_BLOBS] =
		"SELECT blob FROM model_file UNION "
		"SELECT blob FROM dataset_file WHERE blob IS NOT NULL "
		"ORDER BY 1",
	[SQL_BLOB_REFERENCED] =
		"SELECT EXISTS (SELECT 1 FROM model_file WHERE blob = ?1) OR "
		"EXISTS (SELECT 1 FROM dataset_file WHERE blob = ?1)",
	[SQL_MODEL_ACTIVE_REFS] =
		"SELECT count(*) FROM deployment_ref "
		"WHERE version_id = ?1 AND active",
	[SQL_MODEL_TAG_SET] =
		"INSERT INTO model_tag (version_id, key, value, updated_ms) "
		"VALUES (?1, ?2, ?3, ?4) ON CONFLICT (version_id, key) "
		"DO UPDATE SET value = excluded.value, "
		"updated_ms = excluded.updated_ms",
	[SQL_MODEL_TAG_DELETE] =
		"DELETE FROM model_tag WHERE version_id = ?1 AND key = ?2",
	[SQL_MODEL_TAG_LIST] = "SELECT key, value, updated_ms FROM model_tag "
			       "WHERE version_id = ?1 ORDER BY key",
	[SQL_MODEL_PROPERTY_INSERT] =
		"INSERT INTO model_property (version_id, key, value, "
		"created_ms) VALUES (?1, ?2, ?3, ?4)",
	[SQL_MODEL_PROPERTY_GET] =
		"SELECT value FROM model_property "
		"WHERE version_id = ?1 AND key = ?2",
	[SQL_MODEL_PROPERTY_LIST] =
		"SELECT key, value, created_ms FROM model_property "
		"WHERE version_id = ?1 ORDER BY key",
	[SQL_MODEL_ALIAS_SET] =
		"INSERT INTO model_alias (model_id, alias, version_id, "
		"updated_ms) VALUES (?1, ?2, ?3, ?4) "
		"ON CONFLICT (model_id, alias) DO UPDATE SET "
		"version_id = excluded.version_id, "
		"updated_ms = excluded.updated_ms",
	/* Alias ?3 names what alias ?2 names (made or moved). */
	[SQL_MODEL_ALIAS_COPY] =
		"INSERT INTO model_alias (model_id, alias, version_id, "
		"updated_ms) SELECT model_id, ?3, version_id, ?4 FROM model_alias "
		"WHERE model_id = ?1 AND alias = ?2 "
		"ON CONFLICT (model_id, alias) DO UPDATE SET "
		"version_id = excluded.version_id, "
		"updated_ms = excluded.updated_ms",
	[SQL_MODEL_ALIAS_DELETE] =
		"DELETE FROM model_alias WHERE model_id = ?1 AND alias = ?2",
	[SQL_MODEL_ALIAS_GET] =
		"SELECT v.version FROM model_alias a JOIN model_version v "
		"ON v.id = a.version_id WHERE a.model_id = ?1 AND a.alias = ?2",
	[SQL_MODEL_ALIAS_LIST] =
		"SELECT a.alias, v.version FROM model_alias a JOIN "
		"model_version v ON v.id = a.version_id "
		"WHERE a.model_id = ?1 ORDER BY a.alias",
	[SQL_DEPLOYMENT_REF_ADD] =
		"INSERT INTO deployment_ref (deployment, version_id, active, "
		"created_ms) VALUES (?1, ?2, 1, ?3)",
	[SQL_DEPLOYMENT_REF_SET_ACTIVE] =
		"UPDATE deployment_ref SET active = ?2 WHERE deployment = ?1 "
		"RETURNING version_id",
	[SQL_DEPLOYMENT_REF_REMOVE] =
		"DELETE FROM deployment_ref WHERE deployment = ?1 "
		"RETURNING version_id",
};
