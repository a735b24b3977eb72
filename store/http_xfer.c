/*
 * http_xfer.c - the transfer engine behind range reads (contract of the
 * reads: mlfs/http.h; of the engine: http_internal.h).
 *
 * http_xfer_run() runs a batch of range GETs on one curl multi handle,
 * options.parallel at once, each easy handle borrowed from the source's
 * pool (so connections come from the source's share). The first failure
 * aborts the transfers still running.
 *
 * Response checks (xfer_check()), in this order: the transfer itself; the
 * status (412 and 416, or a time condition curl found unmet, mean the
 * file changed); Content-Range against the range asked and the pinned
 * size; ETag and Last-Modified against the pin; then that every byte of
 * the range arrived. Only then are the bytes in the buffer the caller's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "mlfs/blockcache.h"
#include "mlfs/parse.h"


#define SET_ERR(...) \
	do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); } while (0)

#define CURLSTR(c) http_curl_msg((c), (char[128]){ 0 }, 128)

/* Parses "bytes A-B/T" strictly. 0 or -1. */
static int parse_content_range(const char *v, uint64_t *a, uint64_t *b,
			       uint64_t *total)
{
	const char *dash, *slash;
	int64_t x, y, t;

	if (strncmp(v, "bytes ", 6) != 0)
		return -1;
	v += 6;
	dash = strchr(v, '-');
	slash = dash ? strchr(dash, '/') : NULL;
	if (!slash || parse_int64(v, (size_t)(dash - v), &x) ||
	    parse_int64(dash + 1, (size_t)(slash - dash - 1), &y) ||
	    parse_int64(slash + 1, strlen(slash + 1), &t) ||
	    x < 0 || y < x || t <= y)
		return -1;
	*a = (uint64_t)x;
	*b = (uint64_t)y;
	*total = (uint64_t)t;
	return 0;
}

/*
 * Receives body bytes: keeps the part inside the range asked for, drops
 * the bodies of error responses, and cuts off a whole-file 200 once the
 * range is complete (or at once when the file is too large for that).
 */
static size_t xfer_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_xfer *x = arg;
	uint64_t end = x->start + x->len, lo, hi;
	size_t n = size * nmemb;

	http_count_fetched(x->src, n);
	if (!x->status) {
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
		x->body_pos = x->status == 206 ? x->start : 0;
		if (x->status == 200 && !x->whole_ok) {
			x->whole_refused = 1;
			return 0;
		}
	}
	if (x->status != 200 && x->status != 206)
		return n;
	lo = x->body_pos > x->start ? x->body_pos : x->start;
	hi = x->body_pos + n < end ? x->body_pos + n : end;
	if (hi > lo) {
		memcpy(x->buf + (lo - x->start), data + (lo - x->body_pos),
		       (size_t)(hi - lo));
		x->got += (size_t)(hi - lo);
	}
	x->body_pos += n;
	if (x->status == 200 && x->body_pos >= end) {
		x->done_early = 1;
		return 0;
	}
	return x->body_pos > end ? 0 : n;	/* a 206 longer than asked */
}

static long xfer_buffer_size(const struct http_xfer *x)
{
	size_t want = x->len < BLOCKCACHE_BLOCK ? x->len : BLOCKCACHE_BLOCK;

	return want < CURL_MAX_WRITE_SIZE ? CURL_MAX_WRITE_SIZE : (long)want;
}

int http_xfer_setup(struct http_source *src, const struct http_req *req,
		    struct http_xfer *x)
{
	const struct http_stat *pin = req->pin;
	char range[64];

	x->src = src;
	x->got = 0;
	x->status = 0;
	x->done_early = 0;
	x->whole_refused = 0;
	x->whole_ok = pin->size <= HTTP_WHOLE_MAX ||
		      (x->start == 0 && x->len == pin->size);
	if (!(x->h = http_handle_get(src)))
		return STORE_NOMEM;
	snprintf(range, sizeof(range), "%llu-%llu",
		 (unsigned long long)x->start,
		 (unsigned long long)(x->start + x->len - 1));
	if (http_handle_setup(src, x->h, req->url, req->headers) ||
	    curl_easy_setopt(x->h, CURLOPT_RANGE, range) ||
	    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, xfer_write) ||
	    curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x) ||
	    curl_easy_setopt(x->h, CURLOPT_PRIVATE, x) ||
	    /* one recv() per 256 KiB block, not per 16 KiB */
	    curl_easy_setopt(x->h, CURLOPT_BUFFERSIZE, xfer_buffer_size(x)))
		return STORE_NOMEM;
	/* Without a strong ETag (If-Match, in req->headers) the condition is
	 * the time: curl sends If-Unmodified-Since itself. */
	if (pin->etag[0] != '"' && pin->mtime_ms >= 0 &&
	    (curl_easy_setopt(x->h, CURLOPT_TIMECONDITION,
			      (long)CURL_TIMECOND_IFUNMODSINCE) ||
	     curl_easy_setopt(x->h, CURLOPT_TIMEVALUE_LARGE,
			      (curl_off_t)(pin->mtime_ms / 1000))))
		return STORE_NOMEM;
	return STORE_OK;
}

#define CHANGED(...) \
	do { \
		SET_ERR("cannot read '%s': it changed since it was registered (" \
			__VA_ARGS__); \
		return STORE_CORRUPT; \
	} while (0)

/* Checks the status and Content-Range of a finished transfer. */
static int xfer_check_status(const struct http_req *req, struct http_xfer *x,
			     long status, char *err, size_t errlen)
{
	uint64_t a, b, total;
	const char *cr;
	curl_off_t clen = -1;
	long unmet = 0;

	/* When a server ignores If-Unmodified-Since, curl checks the
	 * Last-Modified it got itself and reports the condition unmet. */
	curl_easy_getinfo(x->h, CURLINFO_CONDITION_UNMET, &unmet);
	if (unmet)
		CHANGED("newer last-modified)", req->path);
	if (status == 412 || status == 416)
		CHANGED("HTTP %ld)", req->path, status);
	if (status == 200) {
		curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
		if (clen >= 0 && (uint64_t)clen != req->pin->size)
			CHANGED("size %lld, registered %llu)", req->path,
				(long long)clen,
				(unsigned long long)req->pin->size);
		return STORE_OK;
	}
	if (status != 206) {
		SET_ERR("cannot read '%s': HTTP %ld", req->path, status);
		return http_status_rc(status);
	}
	if (!(cr = http_header_value(x->h, "Content-Range")) ||
	    parse_content_range(cr, &a, &b, &total) < 0) {
		SET_ERR("cannot read '%s': bad content-range in a 206 response",
			req->path);
		return STORE_IO;
	}
	if (total != req->pin->size)
		CHANGED("size %llu, registered %llu)", req->path,
			(unsigned long long)total,
			(unsigned long long)req->pin->size);
	if (a != x->start || b != x->start + x->len - 1) {
		SET_ERR("cannot read '%s': the server sent bytes %llu-%llu, not "
			"%llu-%llu", req->path, (unsigned long long)a,
			(unsigned long long)b, (unsigned long long)x->start,
			(unsigned long long)(x->start + x->len - 1));
		return STORE_IO;
	}
	return STORE_OK;
}

/* Checks the validators of a 200 or 206 response against the pin. */
static int xfer_check_version(const struct http_req *req, struct http_xfer *x,
			      char *err, size_t errlen)
{
	const struct http_stat *pin = req->pin;
	const char *etag = http_header_value(x->h, "ETag");
	int64_t mtime = http_response_mtime_ms(x->h);

	if (pin->etag[0] && etag && strcmp(etag, pin->etag) != 0)
		CHANGED("etag %s, registered %s)", req->path, etag, pin->etag);
	if (pin->mtime_ms >= 0 && mtime >= 0 &&
	    mtime / 1000 != pin->mtime_ms / 1000)
		CHANGED("last-modified %lld, registered %lld)", req->path,
			(long long)(mtime / 1000),
			(long long)(pin->mtime_ms / 1000));
	return STORE_OK;
}

int http_xfer_check_response(const struct http_req *req, struct http_xfer *x,
			     long status, char *err, size_t errlen)
{
	int rc = xfer_check_status(req, x, status, err, errlen);

	return rc != STORE_OK ? rc : xfer_check_version(req, x, err, errlen);
}

/* The result of transfer @x that curl finished with @code. */
static int xfer_check(const struct http_req *req, struct http_xfer *x,
		      CURLcode code, char *err, size_t errlen)
{
	long status = 0;
	int rc;

	if (x->whole_refused) {
		SET_ERR("cannot read '%s': the server ignores range requests",
			req->path);
		return STORE_IO;
	}
	if (code != CURLE_OK && !(code == CURLE_WRITE_ERROR && x->done_early)) {
		SET_ERR("cannot read '%s': %s", req->path, CURLSTR(code));
		return STORE_IO;
	}
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	if ((rc = http_xfer_check_response(req, x, status, err, errlen)))
		return rc;
	if (x->got != x->len) {
		SET_ERR("cannot read '%s': short response (%zu of %zu bytes)",
			req->path, x->got, x->len);
		return STORE_IO;
	}
	return STORE_OK;
}

/* Takes @x out of @m and gives its handle back to the pool. */
static void xfer_release(struct http_source *src, CURLM *m, struct http_xfer *x)
{
	if (!x->h)
		return;
	curl_multi_remove_handle(m, x->h);
	http_handle_put(src, x->h);
	x->h = NULL;
}

/* Starts transfers until @parallel run or none is left. */
static int xfer_start_more(struct http_source *src, const struct http_req *req,
			   CURLM *m, struct http_xfer *x, size_t n,
			   size_t *next, size_t *active)
{
	while (*active < (size_t)http_source_parallel(src) && *next < n) {
		struct http_xfer *t = &x[(*next)++];

		if (http_xfer_setup(src, req, t) != STORE_OK ||
		    curl_multi_add_handle(m, t->h) != CURLM_OK)
			return STORE_NOMEM;
		(*active)++;
	}
	return STORE_OK;
}

/* Collects finished transfers; the first failure into @rc and @err. */
static void xfer_reap(struct http_source *src, const struct http_req *req,
		      CURLM *m, size_t *active, int *rc, char *err,
		      size_t errlen)
{
	struct http_xfer *t;
	CURLMsg *msg;
	char *priv;
	int left, r;

	while ((msg = curl_multi_info_read(m, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		t = (struct http_xfer *)(void *)priv;
		r = xfer_check(req, t, msg->data.result,
			       *rc ? NULL : err, errlen);
		if (r != STORE_OK && *rc == STORE_OK)
			*rc = r;
		xfer_release(src, m, t);
		(*active)--;
	}
}

int http_xfer_run(struct http_source *src, const struct http_req *req,
		  struct http_xfer *x, size_t n, char *err, size_t errlen)
{
	size_t next = 0, active = 0;
	int running, rc = STORE_OK;
	CURLM *m;

	for (size_t i = 0; i < n; i++)
		x[i].h = NULL;
	if (!(m = http_multi_get(src))) {
		SET_ERR("cannot read '%s': out of memory", req->path);
		return STORE_NOMEM;
	}
	while (rc == STORE_OK && (next < n || active > 0)) {
		if (xfer_start_more(src, req, m, x, n, &next, &active)) {
			SET_ERR("cannot read '%s': out of memory", req->path);
			rc = STORE_NOMEM;
			break;
		}
		if (curl_multi_perform(m, &running) != CURLM_OK) {
			SET_ERR("cannot read '%s': curl multi failed", req->path);
			rc = STORE_IO;
			break;
		}
		xfer_reap(src, req, m, &active, &rc, err, errlen);
		if (rc == STORE_OK && active > 0)
			curl_multi_poll(m, NULL, 0, 1000, NULL);
	}
	/* On failure the transfers still running are aborted: taking a
	 * handle out of the multi handle stops its transfer. */
	for (size_t i = 0; i < next; i++)
		xfer_release(src, m, &x[i]);
	http_multi_put(src, m);
	return rc;
}
