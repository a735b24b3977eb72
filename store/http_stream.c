/*
 * http_stream.c - the streamed path of sequential reads (contract of the
 * reads: mlfs/http.h; of the stream: http_internal.h).
 *
 * A stream receives one file's bytes from one long range GET at a time
 * ([head, head + request length), the length doubling from
 * STREAM_REQ_MIN to STREAM_REQ_MAX: the first is short, so its first
 * bytes come soon) into a ring of STREAM_RING bytes that holds the file
 * from offset base on. Its own thread, the pump, runs the transfer while
 * the ring has room: it takes bytes as fast as the server sends them,
 * whatever order the reads come in. Readers copy their range out of the
 * ring, waiting for bytes on the way. The ring follows the furthest read:
 * it keeps STREAM_KEEP bytes behind its end, for reads that come late,
 * and the rest of the ring fills ahead of it. When the ring is full the
 * transfer is paused (CURL_WRITEFUNC_PAUSE) and the socket buffer, then
 * TCP flow control, stop the server.
 *
 * The kernel's read-ahead sends a sequential reader's reads several at a
 * time, from several threads, in sizes that vary with the reader (cat
 * reads 128 KiB and asks for sequential read-ahead, dd bs=1M reads 1
 * MiB): any read inside the ring's window is served, in any order.
 *
 * A read before base is HTTP_STREAM_BEHIND, one STREAM_JUMP or more past
 * head HTTP_STREAM_SKIP: the caller fetches those otherwise. A stream
 * whose readers went elsewhere moves: once no read took bytes for
 * STREAM_IDLE seconds and none waits, such a read stops the pump and
 * starts the stream again at its own offset. A pump whose ring stays
 * full for PUMP_IDLE seconds ends and lets its connection go.
 *
 * Invariants
 *  1. No byte reaches the ring before the response's headers passed
 *     http_xfer_check_response() (206, the exact Content-Range, the
 *     pinned size, ETag and Last-Modified), at its first body byte.
 *  2. base <= head <= base + STREAM_RING; the ring holds [base, head).
 *     File offset o is at ring[o % STREAM_RING].
 *  3. s->mu guards everything but the pump's own state (m, x, req_len,
 *     checked, paused, last_rx, cb_*) and the ring bytes: the pump writes
 *     [head, base + STREAM_RING) outside the lock; readers copy out of
 *     [base, head) with the lock let go, base held at or below the
 *     lowest of their copies (copy_floor).
 *  4. One pump thread at a time; http_stream_free() stops and joins it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"

#define STREAM_RING (32u * 1024u * 1024u)
#define STREAM_KEEP (STREAM_RING / 2)	/* kept behind the furthest read */
#define STREAM_JUMP (STREAM_RING / 2)	/* a read this far past head moves */
#define STREAM_BUF (128u * 1024u)	/* curl's largest receive buffer */
#define STREAM_BUF_MIN (16u * 1024u)	/* and its smallest (curl's default) */
#define STREAM_REQ_MIN (1ull * 1024 * 1024)	/* first request */
#define STREAM_REQ_MAX (64ull * 1024 * 1024)
#define STREAM_IDLE 0.05	/* seconds without a read before it may move */
#define PUMP_IDLE 10.0		/* a full ring nobody reads ends the pump */
#define IDLED 1.0		/* a request paused this long may be dropped */

struct http_stream {
	struct http_source *src;
	const struct http_req *req;
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* bytes came, room was made, state */
	unsigned char *ring;
	uint64_t base, head;
	uint64_t front;			/* the end of the furthest read */
	uint64_t wake_at;		/* head that wakes the waiting reads */
	int copiers;			/* reads copying out, lock let go */
	uint64_t copy_floor;		/* the lowest offset they copy */
	pthread_t thread;
	int pumping;			/* the pump runs */
	int joinable;			/* a pump ended, not joined yet */
	int stop;			/* the pump must end (free, move) */
	int moving;			/* a read is moving the stream */
	int waiting;			/* readers waiting for bytes */
	double last_take;		/* when a read last took bytes */
	/* the pump's last failure: readers that waited through it get it */
	unsigned int fail_gen;
	int fail_rc;
	char fail_err[256];
	/* the pump's own (invariant 3) */
	CURLM *m;
	struct http_xfer x;		/* the request under way; x.h NULL: none */
	uint64_t req_len;		/* length of the next request */
	int checked;			/* the response's headers passed */
	int paused;			/* the write callback paused curl */
	double paused_since;
	int idled;			/* the request sat paused IDLED or more */
	double last_rx;
	int cb_rc;			/* a failure the write callback found */
	char cb_err[256];
};

#define SET_ERR(...) \
	do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); } while (0)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int http_stream_new(struct http_source *src, const struct http_req *req,
		    struct http_stream **out)
{
	struct http_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return STORE_NOMEM;
	s->src = src;
	s->req = req;
	s->req_len = STREAM_REQ_MIN;
	s->wake_at = UINT64_MAX;
	s->copy_floor = UINT64_MAX;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (!(s->m = curl_multi_init()) || !(s->ring = malloc(STREAM_RING))) {
		http_stream_free(s);
		return STORE_NOMEM;
	}
	*out = s;
	return STORE_OK;
}

/* Drops the request under way (the pump's, or nobody's). */
static void transfer_drop(struct http_stream *s)
{
	if (s->x.h) {
		curl_multi_remove_handle(s->m, s->x.h);	/* aborts it */
		http_handle_put(s->src, s->x.h);
		s->x.h = NULL;
	}
	s->paused = 0;
}

/* Stops the pump and waits for it to end; caller holds s->mu. */
static void pump_stop(struct http_stream *s)
{
	s->stop = 1;
	pthread_cond_broadcast(&s->cv);
	while (s->pumping)
		pthread_cond_wait(&s->cv, &s->mu);
	if (s->joinable) {
		pthread_join(s->thread, NULL);
		s->joinable = 0;
	}
	s->stop = 0;
}

void http_stream_free(struct http_stream *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	pump_stop(s);
	pthread_mutex_unlock(&s->mu);
	transfer_drop(s);
	if (s->m)
		curl_multi_cleanup(s->m);
	free(s->ring);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---- the window ------------------------------------------------------------- */

/*
 * Moves base up to @want (at most head): those bytes go, read or not, and
 * the pump may fill their room. Caller holds s->mu.
 */
static void drop_front(struct http_stream *s, uint64_t want)
{
	if (want > s->head)
		want = s->head;
	if (s->copiers && want > s->copy_floor)
		want = s->copy_floor;	/* bytes being copied out stay */
	if (want <= s->base)
		return;
	s->base = want;
	pthread_cond_broadcast(&s->cv);	/* room for the pump */
}

/*
 * Copies [off, off + len), inside [base, head), out of the ring. The lock
 * is let go meanwhile (the pump goes on receiving): base stays at or
 * below the copy (drop_front), so the pump cannot write over it. Caller
 * holds s->mu, held again on return.
 */
static void copy_out(struct http_stream *s, unsigned char *dst, uint64_t off,
		     size_t len)
{
	size_t at = (size_t)(off % STREAM_RING);
	size_t first = STREAM_RING - at < len ? STREAM_RING - at : len;

	if (s->copiers++ == 0 || off < s->copy_floor)
		s->copy_floor = off;
	pthread_mutex_unlock(&s->mu);
	memcpy(dst, s->ring + at, first);
	memcpy(dst + first, s->ring, len - first);
	pthread_mutex_lock(&s->mu);
	if (--s->copiers == 0)
		s->copy_floor = UINT64_MAX;
	s->last_take = now_s();
}

/* ---- the pump ----------------------------------------------------------------- */

/* Fails the transfer from inside the write callback. */
static size_t callback_fail(struct http_stream *s, int rc)
{
	s->cb_rc = rc;
	return 0;
}

/* The first body byte: the headers must match the pin (invariant 1). */
static int response_check(struct http_stream *s)
{
	const struct http_req *req = s->req;
	char *err = s->cb_err;
	size_t errlen = sizeof(s->cb_err);
	long status = 0;

	curl_easy_getinfo(s->x.h, CURLINFO_RESPONSE_CODE, &status);
	s->x.status = status;
	if (status == 200) {
		SET_ERR("cannot read '%s': the server ignores range requests",
			req->path);
		return STORE_IO;
	}
	if (status != 206)
		return STORE_OK;	/* an error body: judged at the end */
	return http_xfer_check_response(req, &s->x, status, err, errlen);
}

/* Room in the ring past head, read under the lock (it only grows). */
static size_t ring_room(struct http_stream *s)
{
	size_t room;

	pthread_mutex_lock(&s->mu);
	room = (size_t)(s->base + STREAM_RING - s->head);
	pthread_mutex_unlock(&s->mu);
	return room;
}

static size_t pump_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_stream *s = arg;
	size_t n = size * nmemb, at, first;
	int rc;

	if (!s->checked) {
		if ((rc = response_check(s)) != STORE_OK)
			return callback_fail(s, rc);
		s->checked = 1;
	}
	if (s->x.status != 206)
		return n;
	if (s->x.got + n > s->x.len) {
		snprintf(s->cb_err, sizeof(s->cb_err), "cannot read '%s': the "
			 "server sent more than the range asked for",
			 s->req->path);
		return callback_fail(s, STORE_IO);
	}
	if (n > ring_room(s)) {	/* curl hands the same bytes again */
		s->paused = 1;
		s->paused_since = now_s();
		return CURL_WRITEFUNC_PAUSE;
	}
	/* [head, head + n) is the pump's alone (invariant 3) */
	at = (size_t)((s->x.start + s->x.got) % STREAM_RING);
	first = STREAM_RING - at < n ? STREAM_RING - at : n;
	memcpy(s->ring + at, data, first);
	memcpy(s->ring, data + first, n - first);
	s->x.got += n;
	s->last_rx = now_s();
	http_count_fetched(s->src, n);
	pthread_mutex_lock(&s->mu);
	s->head += n;
	if (s->head >= s->wake_at) {	/* not at every chunk: at theirs */
		s->wake_at = UINT64_MAX;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return n;
}

/*
 * Starts the request for the bytes from head on. curl's receive buffer
 * is small for the first request (its first bytes come sooner), then
 * STREAM_BUF: larger buffers take fewer calls.
 */
static int request_start(struct http_stream *s, uint64_t head, char *err,
			 size_t errlen)
{
	uint64_t size = s->req->pin->size;
	long buf = s->req_len == STREAM_REQ_MIN ? STREAM_BUF_MIN : STREAM_BUF;

	memset(&s->x, 0, sizeof(s->x));
	s->x.start = head;
	s->x.len = (size_t)(size - head < s->req_len ? size - head :
						       s->req_len);
	s->checked = 0;
	s->paused = 0;
	s->idled = 0;
	s->cb_rc = STORE_OK;
	s->last_rx = now_s();
	if (http_xfer_setup(s->src, s->req, &s->x) != STORE_OK ||
	    curl_easy_setopt(s->x.h, CURLOPT_WRITEFUNCTION, pump_write) ||
	    curl_easy_setopt(s->x.h, CURLOPT_WRITEDATA, s) ||
	    curl_easy_setopt(s->x.h, CURLOPT_BUFFERSIZE, buf) ||
	    curl_multi_add_handle(s->m, s->x.h) != CURLM_OK) {
		if (s->x.h)
			http_handle_put(s->src, s->x.h);
		s->x.h = NULL;
		SET_ERR("cannot read '%s': out of memory", s->req->path);
		return STORE_NOMEM;
	}
	if (s->req_len < STREAM_REQ_MAX)
		s->req_len *= 2;
	return STORE_OK;
}

/* The request finished with @code: STORE_OK when all of it came. */
static int request_done(struct http_stream *s, CURLcode code, char *err,
			size_t errlen)
{
	long status = 0;
	int rc;

	if (s->cb_rc != STORE_OK) {
		SET_ERR("%s", s->cb_err);
		return s->cb_rc;
	}
	if (code != CURLE_OK) {
		SET_ERR("cannot read '%s': %s", s->req->path,
			http_curl_msg(code, (char[128]){ 0 }, 128));
		return STORE_IO;
	}
	curl_easy_getinfo(s->x.h, CURLINFO_RESPONSE_CODE, &status);
	if ((rc = http_xfer_check_response(s->req, &s->x, status, err,
					   errlen)) != STORE_OK)
		return rc;
	if (s->x.got != s->x.len) {
		SET_ERR("cannot read '%s': short response (%zu of %zu bytes)",
			s->req->path, s->x.got, s->x.len);
		return STORE_IO;
	}
	transfer_drop(s);
	return STORE_OK;
}

/*
 * One turn of the transfer: resumes it if the ring has room again, runs
 * curl, and keeps the stall timeout (curl averages its speed over
 * several seconds, so a request that stops after a fast start would be
 * given up only seconds after it). STORE_OK, or a failure.
 */
static int pump_turn(struct http_stream *s, char *err, size_t errlen)
{
	double stall = (double)http_source_stall_s(s->src);
	CURLMsg *msg;
	int running, left;

	if (s->paused) {
		if (ring_room(s) < STREAM_BUF)
			return STORE_OK;	/* the caller waits for room */
		if (now_s() - s->paused_since >= IDLED)
			s->idled = 1;
		s->paused = 0;
		s->last_rx = now_s();
		curl_easy_pause(s->x.h, CURLPAUSE_CONT);	/* delivers */
	}
	if (curl_multi_perform(s->m, &running) != CURLM_OK) {
		SET_ERR("cannot read '%s': curl multi failed", s->req->path);
		return STORE_IO;
	}
	while ((msg = curl_multi_info_read(s->m, &left)))
		if (msg->msg == CURLMSG_DONE)
			return request_done(s, msg->data.result, err, errlen);
	if (!s->paused && now_s() - s->last_rx >= stall) {
		SET_ERR("cannot read '%s': %s", s->req->path,
			http_curl_msg(CURLE_OPERATION_TIMEDOUT,
				      (char[128]){ 0 }, 128));
		return STORE_IO;
	}
	if (!s->paused)
		curl_multi_poll(s->m, NULL, 0, 100, NULL);
	return STORE_OK;
}

/* Waits (s->mu held) for room, a stop, or PUMP_IDLE without readers:
 * 0 to go on, -1 to end. */
static int pump_wait_room(struct http_stream *s)
{
	struct timespec until;

	while (!s->stop && s->head - s->base + STREAM_BUF > STREAM_RING) {
		if (now_s() - s->last_take >= PUMP_IDLE)
			return -1;	/* nobody reads: let the connection go */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&s->cv, &s->mu, &until);
	}
	return s->stop ? -1 : 0;
}

static void pump_fail(struct http_stream *s, int rc, const char *err)
{
	s->fail_rc = rc;
	snprintf(s->fail_err, sizeof(s->fail_err), "%s", err);
	s->fail_gen++;
}

static void *pump_main(void *arg)
{
	struct http_stream *s = arg;
	uint64_t size = s->req->pin->size;
	char err[256] = "";
	int rc = STORE_OK, retried = 0;

	pthread_mutex_lock(&s->mu);
	while (!s->stop && s->head < size) {
		if (s->paused && pump_wait_room(s) < 0)
			break;
		if (!s->x.h) {
			rc = request_start(s, s->head, err, sizeof(err));
			retried = 0;
			if (rc != STORE_OK)
				break;
		}
		pthread_mutex_unlock(&s->mu);
		rc = pump_turn(s, err, sizeof(err));
		pthread_mutex_lock(&s->mu);
		if (rc == STORE_OK)
			continue;
		/* The server may drop a connection that sat idle (and curl
		 * may time it out): a request that did gets one fresh try. */
		if (rc == STORE_IO && s->idled && !retried) {
			transfer_drop(s);
			if ((rc = request_start(s, s->head, err,
						sizeof(err))) != STORE_OK)
				break;
			retried = 1;
			continue;
		}
		break;
	}
	if (rc != STORE_OK)
		pump_fail(s, rc, err);
	if (rc != STORE_OK || s->stop || s->head < size)
		transfer_drop(s);
	s->pumping = 0;
	s->joinable = 1;
	s->wake_at = UINT64_MAX;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Starts the pump unless it runs; caller holds s->mu. */
static int pump_start(struct http_stream *s)
{
	if (s->pumping)
		return STORE_OK;
	if (s->joinable) {	/* ended already: it holds no lock */
		pthread_join(s->thread, NULL);
		s->joinable = 0;
	}
	if (pthread_create(&s->thread, NULL, pump_main, s) != 0)
		return STORE_NOMEM;
	s->pumping = 1;
	s->last_take = now_s();	/* PUMP_IDLE counts from now */
	return STORE_OK;
}

/*
 * Starts the stream afresh at @off: stops the pump (other reads wait
 * meanwhile: s->moving), then starts it at @off. Caller holds s->mu.
 */
static int stream_move(struct http_stream *s, uint64_t off)
{
	int rc;

	s->moving = 1;
	pump_stop(s);
	transfer_drop(s);
	s->base = s->head = s->front = off;
	s->req_len = STREAM_REQ_MIN;
	rc = pump_start(s);
	s->moving = 0;
	pthread_cond_broadcast(&s->cv);
	return rc;
}

/* ---- reads ------------------------------------------------------------------- */

/* Whether the stream may move for a read: none of its readers is left. */
static int stream_idle(const struct http_stream *s)
{
	return s->waiting == 0 && now_s() - s->last_take >= STREAM_IDLE;
}

int http_stream_read(struct http_stream *s, unsigned char *dst, size_t len,
		     uint64_t off, char *err, size_t errlen)
{
	uint64_t end = off + len;
	unsigned int gen;
	int rc;

	pthread_mutex_lock(&s->mu);
	gen = s->fail_gen;
	for (;;) {
		if (s->moving) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		if (off < s->base || off >= s->head + STREAM_JUMP ||
		    (!s->pumping && off > s->head)) {
			/* elsewhere: move there once the stream's readers
			 * are gone, else leave the read to others */
			if (!stream_idle(s)) {
				rc = off < s->base ? HTTP_STREAM_BEHIND :
						     HTTP_STREAM_SKIP;
				break;
			}
			if ((rc = stream_move(s, off)) != STORE_OK)
				goto out_nomem;
			continue;
		}
		/* the window follows the furthest read */
		if (end > s->front)
			s->front = end;
		if (s->front > s->base + STREAM_KEEP)
			drop_front(s, s->front - STREAM_KEEP);
		if (off < s->base) {
			rc = HTTP_STREAM_BEHIND;
			break;
		}
		if (end <= s->head) {
			copy_out(s, dst, off, len);
			rc = STORE_OK;
			break;
		}
		if (s->fail_gen != gen) {	/* the pump failed meanwhile */
			rc = s->fail_rc;
			SET_ERR("%s", s->fail_err);
			break;
		}
		if ((rc = pump_start(s)) != STORE_OK)
			goto out_nomem;
		if (end < s->wake_at)
			s->wake_at = end;
		s->waiting++;
		pthread_cond_wait(&s->cv, &s->mu);
		s->waiting--;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
out_nomem:
	SET_ERR("cannot read '%s': out of memory", s->req->path);
	pthread_mutex_unlock(&s->mu);
	return rc;
}
