/*
 * http_file.c - reading one pinned remote file: where each read's bytes
 * come from, and read-ahead (contract: mlfs/http.h; the transfers are in
 * http.c).
 *
 * A read of [off, off + len), clamped to the pinned size, is served by
 * the first of these that applies:
 *
 *   1. copy_present(): every block it touches is in memory (the ring) or
 *      in the block cache, possibly after waiting for the read-ahead batch
 *      under way that holds it (readahead_wait()). A sequential read then
 *      tops up the read-ahead when the block half a window ahead is
 *      missing: readahead_top_up() starts a thread fetching the rest of
 *      the window while the reader goes on (one batch per file at a time;
 *      http_file_close() joins it).
 *   2. stream_read(): a sequential read of a file over STREAM_MIN_SIZE
 *      goes through the file's one stream (http_stream.c), whose thread
 *      receives the body of a long range GET into a ring the reads copy
 *      from, in any order; unless the stream's readers took those bytes
 *      already (HTTP_STREAM_BEHIND: fetched as in 3) or its window
 *      is elsewhere (HTTP_STREAM_SKIP: the read goes on to 3 or 4).
 *      Reads served by 1 start no background batch in a file this
 *      large: the stream reads ahead for them.
 *   3. fetch_exact(): a random read smaller than a block, or a read of
 *      more than BIG_READ_BLOCKS blocks, is fetched as exactly its range
 *      (a large one split into parallel parts) straight into the caller's
 *      buffer; nothing is kept.
 *   4. fetch_blocks(): otherwise the missing blocks from the first one
 *      touched to the end of the window are fetched in parallel; the
 *      read is copied out of them and they are kept in the ring and the
 *      cache.
 *
 * Streams (classify()): RA_STREAMS slots remember where recent reads
 * ended. A read starting exactly there, or at offset 0, or in a
 * sequential stream up to RA_SLACK reads of its size before or after
 * (near_next()), continues a stream and doubles its window from
 * HTTP_RA_MIN to HTTP_RA_MAX (divided among the sequential streams, so
 * they fit the ring together); any other
 * read replaces the least recently used slot with a window of 0.
 *
 * Invariants
 *  1. Bytes reach the caller only from a transfer that passed every check
 *     against the pin, from the ring (filled only by such transfers) or
 *     from the cache under a key that includes the pin.
 *  2. f->mu guards streams, the ring, the read-ahead state and the
 *     making of f->stream, and is never held across a transfer or a
 *     cache call. Two threads may fetch the same block at once; both get
 *     the same bytes, one copy stays.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"

#define BLOCK ((uint64_t)BLOCKCACHE_BLOCK)
#define RA_STREAMS 4
#define RA_SLACK 8	/* see near_next() */
#define BIG_READ_BLOCKS 8
#define RING_SLOTS ((int)(HTTP_RA_MAX / BLOCKCACHE_BLOCK) + BIG_READ_BLOCKS)
/* Sequential reads of files over this go through the stream. */
#define STREAM_MIN_SIZE (4ull * 1024 * 1024)
#define EXACT_PART (1u << 20)	/* a large exact read is split in parts of this */

struct ra_stream {
	uint64_t next;		/* where the last read of the stream ended */
	uint64_t window;	/* read-ahead bytes; 0: random */
	uint64_t used;		/* f->clock at last use; 0: free slot */
};

struct ring_slot {
	uint64_t index;
	size_t len;
	unsigned char *data;	/* NULL: empty */
	uint64_t used;
};

struct http_file {
	struct http_source *src;
	char *path;
	char *url;
	char *key;			/* block cache key: public url + pin */
	struct curl_slist *headers;
	struct http_stat pin;
	struct http_req req;
	struct blockcache *cache;
	pthread_mutex_t mu;
	uint64_t clock;
	struct ra_stream streams[RA_STREAMS];
	struct ring_slot ring[RING_SLOTS];
	/* The background read-ahead: at most one batch at a time. */
	pthread_cond_t ra_done;		/* ra_busy went to 0 */
	int ra_busy;			/* a batch is queued or being fetched */
	struct http_job ra_job;		/* its job (http_source_run) */
	uint64_t ra_first, ra_last;	/* the blocks of the batch */
	int ra_rc;			/* how the last batch ended */
	char ra_err[256];		/* and its message */
	/* The stream (http_stream.c), made under mu, then thread-safe. */
	struct http_stream *stream;	/* NULL until a sequential read */
};

#define SET_ERR(...) \
	do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); } while (0)

/* ---- block buffers ---------------------------------------------------------------- */

static unsigned char *block_buf(struct http_file *f)
{
	return http_block_get(f->src);
}

static void block_free(struct http_file *f, unsigned char *p)
{
	http_block_put(f->src, p);
}

/* ---- open and close ---------------------------------------------------------------- */

static int make_key(struct http_file *f)
{
	char *public_url = NULL;
	size_t n;
	int rc;

	if ((rc = http_source_url(f->src, f->path, 1, &public_url, NULL, 0)))
		return rc;
	n = strlen(public_url) + strlen(f->pin.etag) + 64;
	if ((f->key = malloc(n)))
		snprintf(f->key, n, "%s\n%s\n%llu\n%lld", public_url, f->pin.etag,
			 (unsigned long long)f->pin.size,
			 (long long)f->pin.mtime_ms);
	free(public_url);
	return f->key ? STORE_OK : STORE_NOMEM;
}

/* Source headers, plus If-Match when the pin has a strong ETag (a weak
 * one never matches If-Match; the time condition covers it instead). */
static int make_headers(struct http_file *f)
{
	char line[HTTP_ETAG_MAX + 16];

	if (f->pin.etag[0] != '"')
		return http_source_headers(f->src, NULL, &f->headers);
	snprintf(line, sizeof(line), "If-Match: %s", f->pin.etag);
	return http_source_headers(f->src, line, &f->headers);
}

int http_file_open(struct http_source *src, const char *path,
		   const struct http_stat *pin, struct blockcache *cache,
		   struct http_file **out, char *err, size_t errlen)
{
	struct http_file *f;
	int rc;

	if (!(f = calloc(1, sizeof(*f)))) {
		SET_ERR("cannot open '%s': out of memory", path);
		return STORE_NOMEM;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->ra_done, NULL);
	f->src = src;
	f->pin = *pin;
	f->cache = cache;
	if (!(f->path = strdup(path))) {
		rc = STORE_NOMEM;
		goto out_nomem;
	}
	if ((rc = http_source_url(src, path, 0, &f->url, err, errlen)))
		goto out_free;
	if ((rc = make_key(f)) || (rc = make_headers(f)))
		goto out_nomem;
	f->req = (struct http_req){ f->url, f->path, f->headers, &f->pin };
	*out = f;
	return STORE_OK;
out_nomem:
	SET_ERR("cannot open '%s': out of memory", path);
out_free:
	http_file_close(f);
	return rc;
}

void http_file_close(struct http_file *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	while (f->ra_busy)
		pthread_cond_wait(&f->ra_done, &f->mu);
	pthread_mutex_unlock(&f->mu);
	http_stream_free(f->stream);
	for (int i = 0; i < RING_SLOTS; i++)
		block_free(f, f->ring[i].data);
	http_headers_free(f->headers);
	if (f->url) {
		memset(f->url, 0, strlen(f->url));	/* may hold userinfo */
		free(f->url);
	}
	free(f->key);
	free(f->path);
	pthread_cond_destroy(&f->ra_done);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

/* ---- streams ------------------------------------------------------------------------- */

/*
 * Whether a read of [off, off + len) continues stream @t: it starts
 * where the stream ended, or, in a sequential stream, at most
 * RA_SLACK reads of its size before or after (threads serving kernel
 * read-ahead finish out of order).
 */
static int near_next(const struct ra_stream *t, uint64_t off, size_t len)
{
	uint64_t slack = (uint64_t)len * RA_SLACK;

	if (off == t->next)
		return 1;
	return t->window && (off > t->next ? off - t->next : t->next - off) <=
			    slack;
}

/* The read-ahead window for a read of [off, off + len): 0 when random. */
static uint64_t classify(struct http_file *f, uint64_t off, size_t len)
{
	struct ra_stream *s = NULL, *lru = &f->streams[0];
	uint64_t window, nseq = 0;

	pthread_mutex_lock(&f->mu);
	f->clock++;
	for (int i = 0; i < RA_STREAMS && !s; i++) {
		struct ra_stream *t = &f->streams[i];

		if (t->used && near_next(t, off, len))
			s = t;
		else if (t->used < lru->used)
			lru = t;
	}
	if (s) {
		s->window = s->window ? s->window * 2 : HTTP_RA_MIN;
		if (s->window > HTTP_RA_MAX)
			s->window = HTTP_RA_MAX;
	} else {
		s = lru;
		s->window = off == 0 ? HTTP_RA_MIN : 0;
	}
	if (!s->window || off + len > s->next)
		s->next = off + len;
	s->used = f->clock;
	for (int i = 0; i < RA_STREAMS; i++)
		nseq += f->streams[i].window > 0;
	window = nseq ? s->window / nseq : 0;
	pthread_mutex_unlock(&f->mu);
	return window;
}

/* ---- the ring (in-memory blocks) ---------------------------------------------------- */

static uint64_t block_len(const struct http_file *f, uint64_t index)
{
	uint64_t start = index * BLOCK;

	return f->pin.size - start < BLOCK ? f->pin.size - start : BLOCK;
}

/* Caller holds f->mu. */
static struct ring_slot *ring_find(struct http_file *f, uint64_t index)
{
	for (int i = 0; i < RING_SLOTS; i++)
		if (f->ring[i].data && f->ring[i].index == index)
			return &f->ring[i];
	return NULL;
}

/* Copies @n bytes at @boff of block @index from the ring: 1, or 0. */
static int ring_copy(struct http_file *f, uint64_t index, size_t boff,
		     size_t n, unsigned char *dst)
{
	struct ring_slot *s;

	pthread_mutex_lock(&f->mu);
	if ((s = ring_find(f, index))) {
		memcpy(dst, s->data + boff, n);
		/* A block read to its end is most likely done with (a
		 * sequential reader moved on): it goes before the blocks
		 * read-ahead fetched and nobody has read yet. */
		s->used = boff + n == s->len ? 0 : ++f->clock;
	}
	pthread_mutex_unlock(&f->mu);
	return s != NULL;
}

/* Keeps @data (malloc'd, block @index) in the least recently used slot;
 * takes ownership. */
static void ring_insert(struct http_file *f, uint64_t index,
			unsigned char *data, size_t len)
{
	struct ring_slot *s;

	pthread_mutex_lock(&f->mu);
	if (!(s = ring_find(f, index))) {
		s = &f->ring[0];
		for (int i = 1; i < RING_SLOTS && s->data; i++)
			if (!f->ring[i].data || f->ring[i].used < s->used)
				s = &f->ring[i];
	}
	block_free(f, s->data);
	*s = (struct ring_slot){ index, len, data, ++f->clock };
	pthread_mutex_unlock(&f->mu);
}


static int block_present(struct http_file *f, uint64_t index)
{
	int found;

	pthread_mutex_lock(&f->mu);
	found = ring_find(f, index) != NULL;
	pthread_mutex_unlock(&f->mu);
	return found || (f->cache && blockcache_contains(f->cache, f->key, index));
}

/* ---- serving from memory and the cache ---------------------------------------------- */

/* Copies @n bytes at @boff of block @index from the ring or the cache
 * (promoting a cached block to the ring): 1, or 0 when missing. */
static int copy_block_part(struct http_file *f, uint64_t index, size_t boff,
			   size_t n, unsigned char *dst)
{
	size_t blen = (size_t)block_len(f, index);
	unsigned char *data;

	if (ring_copy(f, index, boff, n, dst))
		return 1;
	if (!f->cache || !blockcache_contains(f->cache, f->key, index) ||
	    !(data = block_buf(f)))
		return 0;
	if (blockcache_get(f->cache, f->key, index, data, blen) != STORE_OK) {
		block_free(f, data);
		return 0;
	}
	memcpy(dst, data + boff, n);
	ring_insert(f, index, data, blen);
	return 1;
}

/* Serves [off, off + len) from blocks at hand: 1, or 0 if one is missing. */
static int copy_present(struct http_file *f, unsigned char *buf, size_t len,
			uint64_t off)
{
	uint64_t pos = off, end = off + len;

	while (pos < end) {
		uint64_t index = pos / BLOCK, boff = pos % BLOCK;
		uint64_t n = BLOCK - boff < end - pos ? BLOCK - boff : end - pos;

		if (!copy_block_part(f, index, (size_t)boff, (size_t)n,
				     buf + (pos - off)))
			return 0;
		pos += n;
	}
	return 1;
}

/* ---- fetching ------------------------------------------------------------------------- */

/* Fetches [off, off + len) into @buf, in parallel parts when large. */
static int fetch_exact(struct http_file *f, unsigned char *buf, size_t len,
		       uint64_t off, char *err, size_t errlen)
{
	size_t nparts = (len + EXACT_PART - 1) / EXACT_PART, part;
	struct http_xfer *x;
	int rc;

	if (nparts > (size_t)http_source_parallel(f->src))
		nparts = (size_t)http_source_parallel(f->src);
	part = (len + nparts - 1) / nparts;
	if (!(x = calloc(nparts, sizeof(*x)))) {
		SET_ERR("cannot read '%s': out of memory", f->path);
		return STORE_NOMEM;
	}
	for (size_t i = 0, done = 0; i < nparts; i++, done += part) {
		x[i].start = off + done;
		x[i].len = len - done < part ? len - done : part;
		x[i].buf = buf + done;
	}
	rc = http_xfer_run(f->src, &f->req, x, nparts, err, errlen);
	free(x);
	return rc;
}

static void xfers_free(struct http_file *f, struct http_xfer *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		block_free(f, x[i].buf);
	free(x);
}

/*
 * Plans transfers of the missing blocks in [first, last] (at most
 * RING_SLOTS of them) into *out with their buffers. STORE_OK (*n may be
 * 0) or STORE_NOMEM.
 */
static int plan_blocks(struct http_file *f, uint64_t first, uint64_t last,
		       struct http_xfer **out, size_t *n)
{
	struct http_xfer *x = calloc(RING_SLOTS, sizeof(*x));

	*n = 0;
	if (!x)
		return STORE_NOMEM;
	for (uint64_t b = first; b <= last && *n < (size_t)RING_SLOTS; b++) {
		if (block_present(f, b))
			continue;
		x[*n].start = b * BLOCK;
		x[*n].len = (size_t)block_len(f, b);
		if (!(x[*n].buf = block_buf(f))) {
			xfers_free(f, x, *n);
			return STORE_NOMEM;
		}
		(*n)++;
	}
	*out = x;
	return STORE_OK;
}

/* Hands fetched blocks to the ring and the cache; frees @x. */
static void keep_blocks(struct http_file *f, struct http_xfer *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (f->cache)	/* a refused put only costs a later fetch */
			blockcache_put_async(f->cache, f->key,
					     x[i].start / BLOCK, x[i].buf,
					     x[i].len);
		ring_insert(f, x[i].start / BLOCK, x[i].buf, x[i].len);
		x[i].buf = NULL;
	}
	free(x);
}

/* Fetches the missing blocks of [first, last] and keeps them. */
static int fetch_and_keep(struct http_file *f, uint64_t first, uint64_t last,
			  char *err, size_t errlen)
{
	struct http_xfer *x;
	size_t n;
	int rc;

	if (plan_blocks(f, first, last, &x, &n) != STORE_OK) {
		SET_ERR("cannot read '%s': out of memory", f->path);
		return STORE_NOMEM;
	}
	rc = n ? http_xfer_run(f->src, &f->req, x, n, err, errlen) : STORE_OK;

	if (rc != STORE_OK) {
		xfers_free(f, x, n);
		return rc;
	}
	keep_blocks(f, x, n);
	return STORE_OK;
}

static uint64_t last_block_of(const struct http_file *f, uint64_t end)
{
	if (end > f->pin.size)
		end = f->pin.size;
	return (end - 1) / BLOCK;
}

static void readahead_start(struct http_file *f, uint64_t first,
			    uint64_t last);

/*
 * Serves a sequential read whose blocks are neither at hand nor on the
 * way; the reader waits for its own bytes only. A read smaller than a
 * block fetches exactly its bytes, and its blocks come with the rest of
 * the window in the background: a file's first byte comes after the 16
 * KiB the kernel asked for, not after a 256 KiB block. A larger read
 * fetches its blocks, then starts the read-ahead after them. If another
 * thread pushed a block out of the ring meanwhile, the read falls back to
 * fetch_exact().
 */
static int fetch_blocks(struct http_file *f, unsigned char *buf, size_t len,
			uint64_t off, uint64_t window, char *err, size_t errlen)
{
	uint64_t first = off / BLOCK;
	uint64_t last = last_block_of(f, off + len);
	uint64_t ahead = last_block_of(f, off + len + window);
	int rc;

	if (len < BLOCK) {
		rc = fetch_exact(f, buf, len, off, err, errlen);
		if (rc == STORE_OK)
			readahead_start(f, first, ahead);
		return rc;
	}
	if ((rc = fetch_and_keep(f, first, last, err, errlen)) != STORE_OK)
		return rc;
	if (ahead > last)
		readahead_start(f, last + 1, ahead);
	if (copy_present(f, buf, len, off))
		return STORE_OK;
	return fetch_exact(f, buf, len, off, err, errlen);
}

/* ---- background read-ahead ------------------------------------------------------- */

static void readahead_run(struct http_job *job)
{
	struct http_file *f = (struct http_file *)(void *)
		((char *)job - offsetof(struct http_file, ra_job));
	char err[sizeof(f->ra_err)] = "";
	int rc = fetch_and_keep(f, f->ra_first, f->ra_last, err, sizeof(err));

	pthread_mutex_lock(&f->mu);
	f->ra_rc = rc;
	memcpy(f->ra_err, err, sizeof(err));
	f->ra_busy = 0;
	pthread_cond_broadcast(&f->ra_done);
	pthread_mutex_unlock(&f->mu);	/* close may free f from here on */
}

/* Starts fetching blocks [first, last] in the background, unless a batch
 * is under way already. Without a thread, the reader fetches later. */
static void readahead_start(struct http_file *f, uint64_t first, uint64_t last)
{
	pthread_mutex_lock(&f->mu);
	if (f->ra_busy)
		goto out_unlock;
	f->ra_first = first;
	f->ra_last = last;
	f->ra_job.run = readahead_run;
	f->ra_busy = http_source_run(f->src, &f->ra_job) == STORE_OK;
out_unlock:
	pthread_mutex_unlock(&f->mu);
}

/*
 * Waits while the batch under way holds blocks of [off, off + len).
 * STORE_OK, or the error the batch waited for failed with (and its
 * message): the server just failed those very blocks, and asking again
 * would double the wait on a server that hangs.
 */
static int readahead_wait(struct http_file *f, size_t len, uint64_t off,
			  char *err, size_t errlen)
{
	uint64_t first = off / BLOCK, last = (off + len - 1) / BLOCK;
	int waited = 0, rc = STORE_OK;

	pthread_mutex_lock(&f->mu);
	while (f->ra_busy && first <= f->ra_last && last >= f->ra_first) {
		pthread_cond_wait(&f->ra_done, &f->mu);
		waited = 1;
	}
	if (waited && f->ra_rc != STORE_OK) {
		rc = f->ra_rc;
		SET_ERR("%s", f->ra_err);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/*
 * After a read served from blocks at hand: when the block half a window
 * past the read is missing, fetch the rest of the window in the
 * background, so the reader meets whole batches, already there, rather
 * than one request per read.
 */
static void readahead_top_up(struct http_file *f, size_t len, uint64_t off,
			     uint64_t window)
{
	uint64_t end = off + len;

	if (end >= f->pin.size ||
	    block_present(f, last_block_of(f, end + window / 2)))
		return;
	readahead_start(f, end / BLOCK, last_block_of(f, end + window));
}

/* ---- the stream ------------------------------------------------------------------- */

/*
 * Serves a sequential read through the file's stream (made at the first
 * one): STORE_OK, HTTP_STREAM_SKIP when the stream's window is elsewhere
 * (the read goes through blocks), HTTP_STREAM_BEHIND when its readers took
 * those bytes already (the read is fetched exactly: read-ahead there is
 * behind the reader), or an error.
 */
static int stream_read(struct http_file *f, unsigned char *buf, size_t len,
		       uint64_t off, char *err, size_t errlen)
{
	int rc = STORE_OK;

	pthread_mutex_lock(&f->mu);
	if (!f->stream)
		/* Streamed bytes skip the block cache: on a small machine
		 * writing every byte again halves the stream's speed, and
		 * the kernel keeps the pages of what was read whole. */
		rc = http_stream_new(f->src, &f->req, &f->stream);
	pthread_mutex_unlock(&f->mu);
	if (rc != STORE_OK) {
		SET_ERR("cannot read '%s': out of memory", f->path);
		return rc;
	}
	return http_stream_read(f->stream, buf, len, off, err, errlen);
}

int http_file_streams(const struct http_file *f)
{
	return f->pin.size > STREAM_MIN_SIZE;
}

ssize_t http_file_pread(struct http_file *f, void *buf, size_t len,
			uint64_t off, char *err, size_t errlen)
{
	uint64_t window, blocks;
	int rc, served;

	if (off >= f->pin.size || len == 0)
		return 0;
	if (len > f->pin.size - off)
		len = (size_t)(f->pin.size - off);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	window = classify(f, off, len);
	blocks = (off + len - 1) / BLOCK - off / BLOCK + 1;
	served = copy_present(f, buf, len, off);
	if (!served) {	/* its blocks may be on the way */
		if ((rc = readahead_wait(f, len, off, err, errlen)) != STORE_OK)
			return rc;
		served = copy_present(f, buf, len, off);
	}
	if (served) {
		if (window && !http_file_streams(f))
			readahead_top_up(f, len, off, window);
		return (ssize_t)len;
	}
	rc = HTTP_STREAM_SKIP;
	if (window && http_file_streams(f))
		rc = stream_read(f, buf, len, off, err, errlen);
	if (rc == HTTP_STREAM_BEHIND)
		rc = fetch_exact(f, buf, len, off, err, errlen);
	if (rc != HTTP_STREAM_SKIP)
		return rc == STORE_OK ? (ssize_t)len : rc;
	if ((window == 0 && len < BLOCK) || blocks > BIG_READ_BLOCKS)
		rc = fetch_exact(f, buf, len, off, err, errlen);
	else
		rc = fetch_blocks(f, buf, len, off, window, err, errlen);
	return rc == STORE_OK ? (ssize_t)len : rc;
}
