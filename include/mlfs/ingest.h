#ifndef MLFS_INGEST_H
#define MLFS_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "mlfs/store.h"

/*
 * ingest.h - following a run's metrics file ($MLFS_METRICS) into the
 * store, for the run supervisor.
 *
 * The run appends lines in the metric protocol (metricproto.h); the
 * supervisor calls ingest_poll() every so often while the run goes and
 * ingest_finish() once it has ended. Each call reads what was appended
 * since the last one in chunks of INGEST_CHUNK bytes, parses it without
 * allocating per line, and logs the points with store_metrics_log() in
 * transactions of at most INGEST_BATCH points. A line's points are never
 * split across two transactions.
 *
 * Invariants
 *  - Lines are counted from 1 over the whole file, blank lines included.
 *  - Every complete line is either logged or reported to the @bad
 *    callback, once, in file order; blank lines are skipped silently.
 *  - Memory is bounded (about 7 MiB) whatever the file holds: a line longer
 *    than METRICPROTO_LINE_MAX is reported as soon as that is known and
 *    its bytes are dropped up to its newline.
 *  - The file is only read, from offset 0 on, and is assumed to grow by
 *    appends only: a file truncated or replaced under it is not noticed.
 *
 * Errors
 *  The calls return 0 or a negative errno: from opening or reading the
 *  file (-EACCES, -EIO, ...), or from the store: -ENOENT (the run is
 *  gone), -ENOMEM, -EBUSY (the database stayed locked), -EIO (any other
 *  store error). After an error nothing is lost: the next call starts
 *  again after the last batch that was logged (so a malformed line after
 *  it may be reported a second time).
 *
 * Threads
 *  A struct ingest is used by one thread at a time.
 */

#define INGEST_CHUNK (2u << 20)	/* bytes read per read(2) at most */
#define INGEST_BATCH 65536	/* points per store transaction at most */

struct ingest;

/*
 * ingest_bad_fn - line @line_no was malformed and skipped, for @reason (a
 * static string from metricproto.h). @line[0..@len) is the line without
 * its newline, cut to METRICPROTO_LINE_MAX bytes when longer; valid only
 * during the call. Cut it further before logging it.
 */
typedef void (*ingest_bad_fn)(void *ctx, uint64_t line_no, const char *line,
			      size_t len, const char *reason);

/*
 * ingest_open - follow the file at @path from offset 0. The file need not
 * exist yet: polls find nothing until it does. Returns 0 and *@out (free
 * it with ingest_free()), or -ENOMEM.
 */
int ingest_open(const char *path, struct ingest **out);

/*
 * ingest_poll - log every complete line appended since the last call, up
 * to the file's size when the call started, as points of run @run_id;
 * call @bad (may be NULL) with @ctx for each malformed line. An
 * unterminated last line is kept for the next call. Adds the number of
 * points logged to *@logged, also when it fails part way.
 */
int ingest_poll(struct ingest *in, struct store *st, int64_t run_id,
		ingest_bad_fn bad, void *ctx, uint64_t *logged);

/*
 * ingest_finish - at the end of the run: like ingest_poll(), and an
 * unterminated last line counts as complete.
 */
int ingest_finish(struct ingest *in, struct store *st, int64_t run_id,
		  ingest_bad_fn bad, void *ctx, uint64_t *logged);

/* Closes the file and frees @in; NULL is fine. */
void ingest_free(struct ingest *in);

#endif /* MLFS_INGEST_H */
