/*
 * http_stream.c - the streamed path of sequential reads (contract of the
 * reads: mlfs/http.h; of the stream: http_internal.h).
 *
 * A stream is one range GET at a time over a long stretch of the file
 * ([pos, pos + request length), the length doubling from STREAM_REQ_MIN
 * to STREAM_REQ_MAX: the first is short, so its first bytes come soon), driven by the reader itself: http_stream_read()
 * runs the transfer until the caller's buffer is full, and curl's write
 * callback copies the body straight into that buffer. Bytes of a
 * callback past the end of the buffer go to a small stash the next read
 * starts with; when even the stash is full the transfer is paused
 * (CURL_WRITEFUNC_PAUSE) and resumed by the next read. Between reads the
 * kernel's socket buffer holds what the server sent, and TCP flow
 * control stops the server: nothing else is buffered.
 *
 * So a byte is copied once after recv(), as `curl -o file` does, and a
 * sequential reader waits for no batch: it takes bytes as they arrive.
 *
 * Invariants
 *  1. No byte reaches a caller before the response's headers passed
 *     http_xfer_check_response() (206, the exact Content-Range, the
 *     pinned size, ETag and Last-Modified), at its first body byte.
 *  2. pos + stash_len == recv_pos: the stash holds exactly the bytes
 *     received after the last one a reader took.
 *  3. A stream is used by one thread at a time (http_file.c sees to it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"

#define STREAM_BUF (128u * 1024u)	/* curl's largest receive buffer */
#define STREAM_BUF_MIN (16u * 1024u)	/* and its smallest (curl's default) */
#define STREAM_REQ_MIN (1ull * 1024 * 1024)	/* first request */
#define STREAM_REQ_MAX (64ull * 1024 * 1024)

struct http_stream {
	struct http_source *src;
	const struct http_req *req;
	struct http_xfer x;		/* the request under way; x.h NULL: none */
	CURLM *m;
	uint64_t req_len;		/* length of the next request */
	uint64_t pos;			/* file offset the next read takes */
	uint64_t recv_pos;		/* file offset of the next body byte */
	int checked;			/* the response's headers passed */
	int paused;			/* the write callback paused curl */
	/* the read being served */
	unsigned char *dst;
	size_t need, got;
	/* bytes received past the read */
	unsigned char *stash;
	size_t stash_cap, stash_off, stash_len;
	double idle_since;		/* when the last read returned */
	int req_idled;			/* the request sat idle for 1 s or more */
	double last_rx;			/* when a read last got bytes */
	int rc;				/* a failure the callback found */
	char err[256];
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
	s->stash_cap = STREAM_BUF;
	if (!(s->m = curl_multi_init()) || !(s->stash = malloc(s->stash_cap))) {
		http_stream_free(s);
		return STORE_NOMEM;
	}
	*out = s;
	return STORE_OK;
}

/* Drops the request under way and the stash. */
static void stream_drop(struct http_stream *s)
{
	if (s->x.h) {
		curl_multi_remove_handle(s->m, s->x.h);	/* aborts it */
		http_handle_put(s->src, s->x.h);
		s->x.h = NULL;
	}
	s->recv_pos = s->pos;
	s->stash_off = s->stash_len = 0;
	s->paused = 0;
	s->rc = STORE_OK;
}

void http_stream_free(struct http_stream *s)
{
	if (!s)
		return;
	stream_drop(s);
	if (s->m)
		curl_multi_cleanup(s->m);
	free(s->stash);
	free(s);
}

uint64_t http_stream_pos(const struct http_stream *s)
{
	return s->pos;
}

/* Fails the transfer from inside the write callback. */
static size_t stream_fail(struct http_stream *s, int rc)
{
	s->rc = rc;
	return 0;
}

/* The first body byte: the headers must match the pin (invariant 1). */
static int stream_check(struct http_stream *s)
{
	const struct http_req *req = s->req;
	char *err = s->err;
	size_t errlen = sizeof(s->err);
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

static size_t stream_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_stream *s = arg;
	size_t n = size * nmemb, k, rest;
	int rc;

	if (!s->checked) {
		if ((rc = stream_check(s)) != STORE_OK)
			return stream_fail(s, rc);
		s->checked = 1;
	}
	if (s->x.status != 206)
		return n;
	if (s->recv_pos + n > s->x.start + s->x.len) {
		snprintf(s->err, sizeof(s->err), "cannot read '%s': the server "
			 "sent more than the range asked for", s->req->path);
		return stream_fail(s, STORE_IO);
	}
	k = s->need - s->got < n ? s->need - s->got : n;
	rest = n - k;
	if (rest > s->stash_cap - s->stash_off - s->stash_len) {
		if (k == 0) {	/* the next read resumes it */
			s->paused = 1;
			return CURL_WRITEFUNC_PAUSE;
		}
		/* The stash is empty while a read is not full (the read took
		 * it first); make it hold the rest of this chunk. */
		size_t cap = rest > STREAM_BUF ? rest : STREAM_BUF;
		unsigned char *p = realloc(s->stash, cap);

		if (!p) {
			snprintf(s->err, sizeof(s->err),
				 "cannot read '%s': out of memory", s->req->path);
			return stream_fail(s, STORE_NOMEM);
		}
		s->stash = p;
		s->stash_cap = cap;
		s->stash_off = 0;
	}
	http_count_fetched(s->src, n);
	if (k)
		s->last_rx = now_s();
	memcpy(s->dst + s->got, data, k);
	s->got += k;
	memcpy(s->stash + s->stash_off + s->stash_len, data + k, rest);
	s->stash_len += rest;
	s->recv_pos += n;
	return n;
}

/*
 * Starts the request for the bytes after recv_pos. curl's receive buffer
 * is an eighth of the read (16-128 KiB): what a callback brings past the
 * end of a read goes through the stash, a second copy, so the buffer is
 * kept small against reads; but larger buffers take fewer calls. The
 * first request keeps curl's default: a fresh large buffer costs page
 * faults before the first byte.
 */
static int stream_start(struct http_stream *s, char *err, size_t errlen)
{
	uint64_t size = s->req->pin->size;
	size_t buf = s->need / 8;

	if (buf > STREAM_BUF)
		buf = STREAM_BUF;
	if (buf < STREAM_BUF_MIN || s->req_len == STREAM_REQ_MIN)
		buf = STREAM_BUF_MIN;

	memset(&s->x, 0, sizeof(s->x));
	s->x.start = s->recv_pos;
	s->x.len = (size_t)(size - s->recv_pos < s->req_len ?
			    size - s->recv_pos : s->req_len);
	s->checked = 0;
	s->paused = 0;
	s->req_idled = 0;
	s->rc = STORE_OK;
	if (http_xfer_setup(s->src, s->req, &s->x) != STORE_OK ||
	    curl_easy_setopt(s->x.h, CURLOPT_WRITEFUNCTION, stream_write) ||
	    curl_easy_setopt(s->x.h, CURLOPT_WRITEDATA, s) ||
	    curl_easy_setopt(s->x.h, CURLOPT_BUFFERSIZE, (long)buf) ||
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
static int stream_done(struct http_stream *s, CURLcode code, char *err,
		       size_t errlen)
{
	long status = 0;
	int rc;

	if (s->rc != STORE_OK) {
		SET_ERR("%s", s->err);
		return s->rc;
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
	if (s->recv_pos != s->x.start + s->x.len) {
		SET_ERR("cannot read '%s': short response (%llu of %zu bytes)",
			s->req->path,
			(unsigned long long)(s->recv_pos - s->x.start), s->x.len);
		return STORE_IO;
	}
	curl_multi_remove_handle(s->m, s->x.h);
	http_handle_put(s->src, s->x.h);
	s->x.h = NULL;
	return STORE_OK;
}

/*
 * Runs the transfer until the read is full or the request ends. The
 * stall timeout is kept here: curl averages its speed over several
 * seconds, so a long request that stops after a fast start would be
 * given up only seconds after the timeout.
 */
static int stream_drive(struct http_stream *s, char *err, size_t errlen)
{
	double stall = (double)http_source_stall_s(s->src);
	CURLMsg *msg;
	int running, left;

	s->last_rx = now_s();
	if (s->paused) {
		s->paused = 0;
		curl_easy_pause(s->x.h, CURLPAUSE_CONT);	/* delivers */
	}
	while (s->got < s->need && !s->paused) {
		if (curl_multi_perform(s->m, &running) != CURLM_OK) {
			SET_ERR("cannot read '%s': curl multi failed",
				s->req->path);
			return STORE_IO;
		}
		while ((msg = curl_multi_info_read(s->m, &left)))
			if (msg->msg == CURLMSG_DONE)
				return stream_done(s, msg->data.result, err,
						   errlen);
		if (s->got < s->need && now_s() - s->last_rx >= stall) {
			SET_ERR("cannot read '%s': %s", s->req->path,
				http_curl_msg(CURLE_OPERATION_TIMEDOUT,
					      (char[128]){ 0 }, 128));
			return STORE_IO;
		}
		if (s->got < s->need && !s->paused)
			curl_multi_poll(s->m, NULL, 0, 250, NULL);
	}
	return STORE_OK;
}

int http_stream_read(struct http_stream *s, unsigned char *dst, size_t len,
		     uint64_t off, char *err, size_t errlen)
{
	int retried = 0, idled, rc = STORE_OK;

	if (off != s->pos) {
		s->pos = off;
		stream_drop(s);
	}
	/* The server may drop a connection that sat idle (and curl may
	 * time it out): a request that did gets one fresh try when it fails,
	 * at whichever later read finds out. */
	if (s->x.h && now_s() - s->idle_since >= 1.0)
		s->req_idled = 1;
	s->dst = dst;
	s->need = len;
	s->got = s->stash_len < len ? s->stash_len : len;
	memcpy(dst, s->stash + s->stash_off, s->got);
	s->stash_off += s->got;
	s->stash_len -= s->got;
	if (!s->stash_len)
		s->stash_off = 0;
	while (s->got < s->need) {
		if (!s->x.h && (rc = stream_start(s, err, errlen)) != STORE_OK)
			break;
		if ((rc = stream_drive(s, err, errlen)) == STORE_OK)
			continue;
		idled = s->req_idled;
		s->pos = off + s->got;
		stream_drop(s);
		if (s->got == s->need) {	/* the end came after our bytes */
			rc = STORE_OK;
			break;
		}
		if (!idled || retried || rc != STORE_IO)
			break;
		retried = 1;
	}
	s->pos = off + s->got;
	s->dst = NULL;
	s->idle_since = now_s();
	if (rc != STORE_OK)
		stream_drop(s);
	return rc;
}
