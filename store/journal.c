/*
 * journal.c - the metric journal: how the mount logs a metric point with
 * one write(2) instead of one SQLite transaction.
 *
 * A training loop that runs "echo $loss >> metrics/loss" makes one small
 * append per step. As a SQLite transaction that costs a dozen system calls
 * (file locks, one write per page of the WAL) and tens of microseconds of
 * checksums; as a record appended to a journal file it costs one pwrite.
 * The records are merged into the database in batches.
 *
 * Invariants
 *  1. An append is acknowledged only after its whole record is in the
 *     journal file. The file lives in the OS page cache, so a crash of the
 *     process (kill -9) loses no acknowledged append.
 *  2. Records are [head: magic, crc32 of payload, payload length][payload].
 *     A failed or torn write is never acknowledged, and the next append
 *     overwrites it (end only advances over whole records).
 *  3. The journal table holds, per journal file, how many bytes have been
 *     merged. A batch of records and the new count commit in one
 *     transaction: each record reaches the database exactly once.
 *  4. Every store call that reads metrics drains first (journal_drain_
 *     pending), so no reader ever sees the database behind an append that
 *     returned.
 *  5. A journal file belongs to the process holding its flock; it is made
 *     and locked as NAME.log.new and only then renamed to NAME.log, the
 *     only names recovery looks at. Files no process holds were left by a
 *     crash: journal_recover() merges them up
 *     to the first bad record, deletes the file, then its row — in that
 *     order, so a crash in between never replays a record twice.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "mlfs/fileio.h"
#include "mlfs/timefmt.h"
#include "store_internal.h"

#define JOURNAL_MAGIC 0x316a6c6dU	/* "mlj1" */
#define JOURNAL_BATCH (2u << 20)	/* bytes merged per transaction */
#define STEP_DEFAULT INT64_MIN		/* "the point's index" */

struct journal {
	pthread_mutex_t append_lock;	/* fd writes and end */
	pthread_mutex_t drain_lock;	/* merged */
	int fd;
	char *name;
	char *path;
	uint64_t end;			/* bytes of whole records */
	uint64_t merged;		/* bytes merged into the database */
};

struct record_head {
	uint32_t magic;
	uint32_t crc;
	uint64_t len;
};

struct record_fixed {
	int64_t metric_id;
	int64_t ts_ms;
	int64_t n;
	uint32_t text_len;
	uint32_t has_steps;
};

/* ---- writing ------------------------------------------------------------ */

/* Lays out one record: head, fixed part, values, steps, text. */
static char *record_build(int64_t metric_id, const struct metric_point *pts,
			  size_t n, int64_t ts_ms, size_t *size)
{
	struct record_fixed fx = { metric_id, ts_ms, (int64_t)n, 0, 0 };
	struct record_head head = { JOURNAL_MAGIC, 0, 0 };
	size_t text_len = 0, payload;
	char *rec, *p;

	for (size_t i = 0; i < n; i++) {
		text_len += pts[i].text_len + 1;
		fx.has_steps |= (uint32_t)pts[i].has_step;
	}
	fx.text_len = (uint32_t)text_len;
	payload = sizeof(fx) + n * sizeof(double) +
		  (fx.has_steps ? n * sizeof(int64_t) : 0) + text_len;
	rec = malloc(sizeof(head) + payload);
	if (!rec)
		return NULL;
	p = rec + sizeof(head);
	memcpy(p, &fx, sizeof(fx));
	p += sizeof(fx);
	for (size_t i = 0; i < n; i++, p += sizeof(double))
		memcpy(p, &pts[i].value, sizeof(double));
	for (size_t i = 0; fx.has_steps && i < n; i++, p += sizeof(int64_t)) {
		int64_t step = pts[i].has_step ? pts[i].step : STEP_DEFAULT;

		memcpy(p, &step, sizeof(step));
	}
	for (size_t i = 0; i < n; i++) {
		memcpy(p, pts[i].text, pts[i].text_len);
		p += pts[i].text_len;
		*p++ = '\n';
	}
	head.len = payload;
	head.crc = (uint32_t)crc32(0, (const Bytef *)rec + sizeof(head),
				   (uInt)payload);
	memcpy(rec, &head, sizeof(head));
	*size = sizeof(head) + payload;
	return rec;
}

int journal_append(struct store *st, int64_t metric_id,
		   const struct metric_point *pts, size_t n, int64_t ts_ms)
{
	struct journal *j = st->journal;
	size_t size = 0;
	char *rec;
	int rc;

	for (size_t i = 0, total = 0; i < n; i++) {
		total += pts[i].text_len + 1;
		if (total > UINT32_MAX)
			return STORE_TOO_BIG;
	}
	rec = record_build(metric_id, pts, n, ts_ms, &size);
	if (!rec)
		return STORE_NOMEM;
	pthread_mutex_lock(&j->append_lock);
	rc = pwrite_all(j->fd, rec, size, j->end);
	if (rc == 0)
		__atomic_store_n(&j->end, j->end + size, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&j->append_lock);
	free(rec);
	if (rc < 0) {
		fprintf(stderr, "mlfs: cannot write metric journal '%s': %s\n",
			j->path, strerror(-rc));
		return STORE_IO;
	}
	return STORE_OK;
}

/* ---- merging ------------------------------------------------------------- */

/*
 * Decodes the record payload @p of @len bytes into points (which point
 * into @p). STORE_CORRUPT when it does not add up.
 */
static int record_decode(const char *p, uint64_t len, struct record_fixed *fx,
			 struct metric_point **out)
{
	const char *values, *steps, *text, *end = p + len;
	struct metric_point *pts;
	uint64_t need;

	if (len < sizeof(*fx))
		return STORE_CORRUPT;
	memcpy(fx, p, sizeof(*fx));
	if (fx->n <= 0 || (uint64_t)fx->n > len)
		return STORE_CORRUPT;
	need = sizeof(*fx) + (uint64_t)fx->n * sizeof(double) +
	       (fx->has_steps ? (uint64_t)fx->n * sizeof(int64_t) : 0) +
	       fx->text_len;
	if (need != len)
		return STORE_CORRUPT;
	values = p + sizeof(*fx);
	steps = fx->has_steps ? values + fx->n * sizeof(double) : NULL;
	text = values + fx->n * sizeof(double) +
	       (steps ? fx->n * sizeof(int64_t) : 0);
	pts = calloc((size_t)fx->n, sizeof(*pts));
	if (!pts)
		return STORE_NOMEM;
	for (int64_t i = 0; i < fx->n; i++) {
		const char *nl = memchr(text, '\n', (size_t)(end - text));

		if (!nl) {
			free(pts);
			return STORE_CORRUPT;
		}
		memcpy(&pts[i].value, values + i * sizeof(double), sizeof(double));
		if (steps) {
			memcpy(&pts[i].step, steps + i * sizeof(int64_t),
			       sizeof(int64_t));
			pts[i].has_step = pts[i].step != STEP_DEFAULT;
		}
		pts[i].text = text;
		pts[i].text_len = (size_t)(nl - text);
		text = nl + 1;
	}
	*out = pts;
	return STORE_OK;
}

static int merged_set(struct conn *c, const char *name, uint64_t merged)
{
	sqlite3_stmt *s = stmt_get(c, SQL_JOURNAL_SET);

	if (!s)
		return STORE_IO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)merged);
	return stmt_exec(c, s, "record journal progress");
}

/*
 * Merges the whole records in buf[0..len) (read from offset *merged) in
 * one transaction and advances *merged. Stops at a bad record: with
 * @tolerant (recovery of a crashed journal: a torn tail) quietly, else as
 * STORE_CORRUPT.
 */
static int merge_batch(struct conn *c, const char *name, const char *buf,
		       size_t len, uint64_t *merged, int tolerant, int *bad)
{
	size_t off = 0;
	int rc;

	rc = tx_begin(c);
	if (rc != STORE_OK)
		return rc;
	while (off + sizeof(struct record_head) <= len) {
		struct record_head head;
		struct record_fixed fx;
		struct metric_point *pts = NULL;

		memcpy(&head, buf + off, sizeof(head));
		if (head.magic != JOURNAL_MAGIC ||
		    head.len > len - off - sizeof(head)) {
			*bad = head.magic != JOURNAL_MAGIC;
			break;	/* bad, or whole but beyond this batch */
		}
		if (crc32(0, (const Bytef *)buf + off + sizeof(head),
			  (uInt)head.len) != head.crc) {
			*bad = 1;
			break;
		}
		rc = record_decode(buf + off + sizeof(head), head.len, &fx, &pts);
		if (rc == STORE_CORRUPT) {
			*bad = 1;
			break;
		}
		if (rc == STORE_OK)
			rc = metric_append_locked(c, fx.metric_id, pts,
						  (size_t)fx.n, fx.ts_ms);
		free(pts);
		if (rc == STORE_NOT_FOUND) {
			fprintf(stderr, "mlfs: journal '%s': metric %lld is gone; "
				"skipping its points\n", name,
				(long long)fx.metric_id);
			rc = STORE_OK;
		}
		if (rc != STORE_OK)
			goto out_rollback;
		off += sizeof(head) + head.len;
	}
	rc = STORE_CORRUPT;
	if (*bad && !tolerant)
		goto out_rollback;
	rc = merged_set(c, name, *merged + off);
	if (rc != STORE_OK)
		goto out_rollback;
	rc = tx_commit(c);
	if (rc == STORE_OK)
		*merged += off;
out_rollback:
	tx_rollback(c);
	return rc;
}

/* Merges [*merged, end) of @fd into the database, batch by batch. */
static int merge_range(struct store *st, int fd, const char *name,
		       uint64_t *merged, uint64_t end, int tolerant)
{
	size_t cap = JOURNAL_BATCH;
	char *buf = malloc(cap);
	struct conn *c;
	int bad = 0;
	int rc;

	if (!buf)
		return STORE_NOMEM;
	rc = conn_get(st, &c);
	if (rc != STORE_OK)
		goto out_free;
	while (*merged < end && !bad) {
		uint64_t before = *merged;
		size_t want = end - *merged > cap ? cap : (size_t)(end - *merged);
		ssize_t got = pread(fd, buf, want, (off_t)*merged);

		if (got <= 0) {
			rc = got < 0 ? STORE_IO : STORE_OK;
			break;
		}
		rc = merge_batch(c, name, buf, (size_t)got, merged, tolerant, &bad);
		if (rc != STORE_OK)
			break;
		if (*merged == before && !bad) {
			/*
			 * No whole record in the batch: either one larger than
			 * the buffer (read it whole) or a torn tail.
			 */
			struct record_head head;
			char *bigger;

			if ((size_t)got >= sizeof(head))
				memcpy(&head, buf, sizeof(head));
			if ((size_t)got < sizeof(head) ||
			    head.magic != JOURNAL_MAGIC ||
			    head.len > end - *merged - sizeof(head) ||
			    sizeof(head) + head.len <= cap) {
				bad = 1;
				rc = tolerant ? STORE_OK : STORE_CORRUPT;
				break;
			}
			cap = sizeof(head) + (size_t)head.len;
			bigger = realloc(buf, cap);
			if (!bigger) {
				rc = STORE_NOMEM;
				break;
			}
			buf = bigger;
		}
	}
	conn_put(st, c);
out_free:
	free(buf);
	return rc;
}

int store_journal_drain(struct store *st)
{
	struct journal *j = st->journal;
	uint64_t end;
	int rc;

	if (!j)
		return STORE_OK;
	pthread_mutex_lock(&j->drain_lock);
	end = __atomic_load_n(&j->end, __ATOMIC_ACQUIRE);
	rc = merge_range(st, j->fd, j->name, &j->merged, end, 0);
	pthread_mutex_unlock(&j->drain_lock);
	if (rc != STORE_OK)
		fprintf(stderr, "mlfs: cannot merge metric journal '%s': %s\n",
			j->path, store_strerror(rc));
	return rc;
}

int journal_drain_pending(struct store *st)
{
	struct journal *j = st->journal;

	if (!j || __atomic_load_n(&j->end, __ATOMIC_ACQUIRE) ==
			  __atomic_load_n(&j->merged, __ATOMIC_ACQUIRE))
		return STORE_OK;
	return store_journal_drain(st);
}

/* ---- life cycle --------------------------------------------------------- */

static int journal_row_delete(struct store *st, const char *name)
{
	struct conn *c;
	sqlite3_stmt *s;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = STORE_IO;
	s = stmt_get(c, SQL_JOURNAL_DELETE);
	if (s) {
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
		rc = stmt_exec(c, s, "forget journal");
	}
	conn_put(st, c);
	return rc;
}

/* How far journal @name was merged: 0 when it has no row. */
static int journal_merged_get(struct store *st, const char *name,
			      uint64_t *merged)
{
	int64_t n = 0;
	struct store_read r = {
		.id = SQL_JOURNAL_GET, .what = "journal",
		.bind = bind_text1, .bind_arg = name,
		.row = int64_row, .row_arg = &n,
	};
	int rc = store_read_rows(st, &r);

	*merged = (uint64_t)n;
	return rc;
}

/* Merges one journal left by a dead process, then removes it. */
static int recover_one(struct store *st, const char *dir, const char *name)
{
	uint64_t merged = 0;
	struct stat sb;
	char *path = NULL;
	int fd, rc;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return STORE_NOMEM;
	fd = open(path, O_RDWR | O_CLOEXEC);
	rc = STORE_OK;
	if (fd < 0)
		goto out_free;	/* someone else recovered it */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		goto out_close;	/* alive: its owner merges it */
	rc = fstat(fd, &sb) < 0 ? STORE_IO : STORE_OK;
	if (rc == STORE_OK && sb.st_nlink == 0)
		goto out_close;	/* merged and removed while we waited */
	if (rc == STORE_OK)
		rc = journal_merged_get(st, name, &merged);
	if (rc == STORE_OK)
		rc = merge_range(st, fd, name, &merged, (uint64_t)sb.st_size, 1);
	if (rc != STORE_OK)
		goto out_close;
	/* File first, then row: a crash in between must not replay. */
	if (unlink(path) < 0 && errno != ENOENT)
		rc = STORE_IO;
	else
		rc = journal_row_delete(st, name);
out_close:
	close(fd);
out_free:
	free(path);
	return rc;
}

int journal_recover(struct store *st, char *err, size_t errlen)
{
	char *dir = NULL;
	struct dirent *de;
	DIR *d;
	int rc = STORE_OK;

	if (asprintf(&dir, "%s/journal", st->dir) < 0)
		return STORE_NOMEM;
	d = opendir(dir);
	if (!d)
		goto out_free;	/* made by an older mlfs: nothing to do */
	while ((de = readdir(d)) && rc == STORE_OK) {
		size_t len = strlen(de->d_name);

		if (len > 4 && strcmp(de->d_name + len - 4, ".log") == 0)
			rc = recover_one(st, dir, de->d_name);
	}
	closedir(d);
	if (rc != STORE_OK && err)
		snprintf(err, errlen, "cannot merge metric journals in '%s': %s",
			 dir, store_strerror(rc));
out_free:
	free(dir);
	return rc;
}

int store_journal_start(struct store *st)
{
	struct journal *j;
	char *tmp = NULL;
	int rc = STORE_NOMEM;

	if (st->journal)
		return STORE_OK;
	j = calloc(1, sizeof(*j));
	if (!j)
		return STORE_NOMEM;
	j->fd = -1;
	if (asprintf(&j->name, "%d-%lld.log", (int)getpid(),
		     (long long)time_now_ms()) < 0) {
		j->name = NULL;
		goto out_free;
	}
	if (asprintf(&j->path, "%s/journal/%s", st->dir, j->name) < 0) {
		j->path = NULL;
		goto out_free;
	}
	if (asprintf(&tmp, "%s.new", j->path) < 0) {
		tmp = NULL;
		goto out_free;
	}
	/*
	 * Made and locked under a name recovery ignores, then renamed: a
	 * store_open() elsewhere can never take a journal that is being born
	 * for a dead one.
	 */
	rc = STORE_IO;
	j->fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (j->fd < 0 || flock(j->fd, LOCK_EX | LOCK_NB) < 0 ||
	    rename(tmp, j->path) < 0) {
		fprintf(stderr, "mlfs: cannot create metric journal '%s': %s\n",
			j->path, strerror(errno));
		goto out_free;
	}
	free(tmp);
	pthread_mutex_init(&j->append_lock, NULL);
	pthread_mutex_init(&j->drain_lock, NULL);
	st->journal = j;
	return STORE_OK;

out_free:
	if (j->fd >= 0) {
		close(j->fd);
		unlink(tmp);
	}
	free(tmp);
	free(j->path);
	free(j->name);
	free(j);
	return rc;
}

void journal_close(struct store *st)
{
	struct journal *j = st->journal;

	if (!j)
		return;
	/* Merged and removed now; if that fails the next open recovers it. */
	if (store_journal_drain(st) == STORE_OK && unlink(j->path) == 0)
		journal_row_delete(st, j->name);
	st->journal = NULL;
	close(j->fd);
	pthread_mutex_destroy(&j->append_lock);
	pthread_mutex_destroy(&j->drain_lock);
	free(j->path);
	free(j->name);
	free(j);
}
