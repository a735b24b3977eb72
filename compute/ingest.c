/*
 * ingest.c - following a run's metrics file into the store. See
 * include/mlfs/ingest.h for the contract.
 *
 * Design notes
 *  1. The read buffer holds the file's bytes from @buf_off on: complete
 *     lines are parsed in place, the unterminated tail is moved to the
 *     front before the next read. Text-form points point into the buffer,
 *     JSON points into @arena (their names and texts are copied out of the
 *     parser's scratch), so the batch is logged before the buffer moves
 *     and before the arena fills: no allocation per line.
 *  2. Two positions: the cursor (@buf_off, @line_no, @skipping), where
 *     parsing is, and @done, just after the last line whose points were
 *     logged (or that was reported or blank) when a batch was committed.
 *     A failed store call rolls the cursor back to @done and empties the
 *     buffer, so the next call re-reads those lines and nothing is lost.
 *  3. A line that cannot fit (longer than METRICPROTO_LINE_MAX, with no
 *     newline yet) is reported as soon as the buffer holds more than the
 *     cap of it, and @skipping drops bytes up to its newline; so the
 *     buffer never needs to hold more than the cap plus one chunk.
 *  4. A poll stops at the file size it saw when it started, so a run that
 *     writes faster than we ingest cannot keep one call going forever.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlfs/ingest.h"
#include "mlfs/metricproto.h"
#include "mlfs/timefmt.h"

#define INGEST_ARENA (1u << 20)	/* names and texts of JSON points */
#define INGEST_BUF (INGEST_CHUNK + METRICPROTO_LINE_MAX + 1)

_Static_assert(INGEST_BATCH >= METRICPROTO_POINTS_MAX,
	       "a line's points fit one batch");
_Static_assert(INGEST_ARENA >= METRICPROTO_SCRATCH,
	       "a JSON line's texts fit the arena");

struct ingest_pos {
	uint64_t off;		/* file offset */
	uint64_t line_no;	/* lines before @off */
	int skipping;		/* inside an over-long line */
};

struct ingest {
	char *path;
	int fd;			/* -1 until the file exists */

	char *buf;		/* [INGEST_BUF]: file bytes from cur.off */
	size_t len;
	struct ingest_pos cur;	/* of buf[0]; line_no counts as parsed */
	struct ingest_pos done;	/* everything before it is logged */

	struct metricproto_line *pl;
	struct metric_named_point *batch;	/* [INGEST_BATCH] */
	size_t nbatch;
	char *arena;		/* [INGEST_ARENA] */
	size_t arena_used;
};

/* What one ingest_poll/finish call logs into and reports to. */
struct sink {
	struct store *st;
	int64_t run_id;
	ingest_bad_fn bad;
	void *ctx;
	uint64_t *logged;
};

int ingest_open(const char *path, struct ingest **out)
{
	struct ingest *in = calloc(1, sizeof(*in));

	if (!in)
		return -ENOMEM;
	in->fd = -1;
	in->path = strdup(path);
	in->buf = malloc(INGEST_BUF);
	in->pl = malloc(sizeof(*in->pl));
	in->batch = malloc(INGEST_BATCH * sizeof(*in->batch));
	in->arena = malloc(INGEST_ARENA);
	if (!in->path || !in->buf || !in->pl || !in->batch || !in->arena) {
		ingest_free(in);
		return -ENOMEM;
	}
	*out = in;
	return 0;
}

void ingest_free(struct ingest *in)
{
	if (!in)
		return;
	if (in->fd >= 0)
		close(in->fd);
	free(in->arena);
	free(in->batch);
	free(in->pl);
	free(in->buf);
	free(in->path);
	free(in);
}

static int errno_from_store(int rc)
{
	switch (rc) {
	case STORE_OK:
		return 0;
	case STORE_NOT_FOUND:
		return -ENOENT;
	case STORE_NOMEM:
		return -ENOMEM;
	case STORE_BUSY:
		return -EBUSY;
	default:
		return -EIO;
	}
}

/*
 * Log the batch, then mark everything before @upto done. On failure the
 * cursor goes back to the last done position and the buffer is dropped.
 */
static int batch_flush(struct ingest *in, struct sink *k,
		       const struct ingest_pos *upto)
{
	int rc = STORE_OK;

	if (in->nbatch)
		rc = store_metrics_log(k->st, k->run_id, in->batch, in->nbatch,
				       time_now_ms());
	if (rc == STORE_OK) {
		*k->logged += in->nbatch;
		in->done = *upto;
	} else {
		in->cur = in->done;
		in->len = 0;
	}
	in->nbatch = 0;
	in->arena_used = 0;
	return errno_from_store(rc);
}

static void report(struct sink *k, uint64_t line_no, const char *s,
		   size_t len, const char *reason)
{
	if (k->bad)
		k->bad(k->ctx, line_no, s,
		       len > METRICPROTO_LINE_MAX ? METRICPROTO_LINE_MAX : len,
		       reason);
}

/* Copy @len bytes into the arena (room was checked). */
static const char *arena_put(struct ingest *in, const char *s, size_t len)
{
	char *dst = in->arena + in->arena_used;

	memcpy(dst, s, len);
	in->arena_used += len;
	return dst;
}

/*
 * Line @at->line_no + 1, s[0..len), starting at @at: parse it and add its
 * points to the batch, logging the batch first when they do not fit.
 */
static int take_line(struct ingest *in, struct sink *k,
		     const struct ingest_pos *at, const char *s, size_t len)
{
	struct metricproto_line *pl = in->pl;
	const char *reason = NULL;
	size_t need = 0;
	int rc = metricproto_parse(s, len, pl, &reason);

	if (rc <= 0) {
		if (rc < 0)
			report(k, at->line_no + 1, s, len, reason);
		return 0;
	}
	for (size_t i = 0; pl->json && i < pl->n; i++)
		need += pl->pts[i].name_len + pl->pts[i].text_len;
	if (in->nbatch + pl->n > INGEST_BATCH ||
	    need > INGEST_ARENA - in->arena_used) {
		rc = batch_flush(in, k, at);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < pl->n; i++) {
		const struct metricproto_point *p = &pl->pts[i];
		struct metric_named_point *b = &in->batch[in->nbatch++];

		b->name = pl->json ? arena_put(in, p->name, p->name_len)
				   : p->name;
		b->name_len = p->name_len;
		b->pt.value = p->value;
		b->pt.step = p->step;
		b->pt.has_step = p->has_step;
		b->pt.text = pl->json ? arena_put(in, p->text, p->text_len)
				      : p->text;
		b->pt.text_len = p->text_len;
	}
	return 0;
}

/*
 * Take the complete lines of the buffer (with @final, the unterminated
 * tail too), log the batch, and keep the tail at the buffer's front.
 */
static int take_buffer(struct ingest *in, struct sink *k, int final)
{
	struct ingest_pos at = in->cur;
	const char *p = in->buf, *end = in->buf + in->len;
	int rc;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t llen = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (!nl && !final) {
			if (at.skipping || llen <= METRICPROTO_LINE_MAX)
				break;
			/* too long already: report it, drop to its end */
			report(k, at.line_no + 1, p, llen,
			       METRICPROTO_TOO_LONG);
			at.line_no++;
			at.skipping = 1;
		} else if (at.skipping) {
			at.skipping = 0;
		} else {
			rc = take_line(in, k, &at, p, llen);
			if (rc)
				return rc;
			at.line_no++;
		}
		llen += nl ? 1 : 0;
		at.off += llen;
		p += llen;
	}
	rc = batch_flush(in, k, &at);
	if (rc)
		return rc;
	if (at.skipping) {	/* the rest of an over-long line */
		at.off += (size_t)(end - p);
		p = end;
		in->done = at;
	}
	in->len = (size_t)(end - p);
	memmove(in->buf, p, in->len);
	in->cur = at;
	return 0;
}

/* Open the file if it exists now: 0 (also when it does not) or -errno. */
static int ingest_open_file(struct ingest *in)
{
	if (in->fd >= 0)
		return 0;
	in->fd = open(in->path, O_RDONLY | O_CLOEXEC);
	if (in->fd < 0)
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

static int ingest_run(struct ingest *in, struct sink *k, int final)
{
	struct stat sb;
	int rc = ingest_open_file(in);

	if (rc || in->fd < 0)
		return rc;
	if (fstat(in->fd, &sb) < 0)
		return -errno;
	while (in->cur.off + in->len < (uint64_t)sb.st_size) {
		size_t room = INGEST_BUF - in->len;
		ssize_t n;

		if (room > INGEST_CHUNK)
			room = INGEST_CHUNK;
		n = pread(in->fd, in->buf + in->len, room,
			  (off_t)(in->cur.off + in->len));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		in->len += (size_t)n;
		rc = take_buffer(in, k, 0);
		if (rc)
			return rc;
	}
	if (final && in->len)
		return take_buffer(in, k, 1);
	return 0;
}

int ingest_poll(struct ingest *in, struct store *st, int64_t run_id,
		ingest_bad_fn bad, void *ctx, uint64_t *logged)
{
	struct sink k = { st, run_id, bad, ctx, logged };

	return ingest_run(in, &k, 0);
}

int ingest_finish(struct ingest *in, struct store *st, int64_t run_id,
		  ingest_bad_fn bad, void *ctx, uint64_t *logged)
{
	struct sink k = { st, run_id, bad, ctx, logged };

	return ingest_run(in, &k, 1);
}
