/*
 * http_internal.h - what the parts of the HTTP reader share: URLs, the
 * request headers and the handle pool (http.c), and the transfer engine
 * that runs range GETs in parallel and checks each response against the
 * pinned version (http_xfer.c); http_file.c builds reads on them.
 */
#ifndef MLFS_HTTP_INTERNAL_H
#define MLFS_HTTP_INTERNAL_H

#include <curl/curl.h>

#include "mlfs/http.h"

/* A 200 with the whole body answers a range request only up to this size;
 * past it we refuse to download a large file to read a piece of it. */
#define HTTP_WHOLE_MAX (1024u * 1024u)

/* What every request of one file shares. */
struct http_req {
	const char *url;		/* with userinfo: never printed */
	const char *path;		/* relative path, for messages */
	struct curl_slist *headers;	/* source headers + If-Match */
	const struct http_stat *pin;
};

/* One range [start, start + len) of the file, received into buf. */
struct http_xfer {
	uint64_t start;
	size_t len;
	unsigned char *buf;
	/* set by the engine */
	size_t got;			/* bytes of the range written to buf */
	uint64_t body_pos;		/* file offset of the next body byte */
	long status;			/* 0 until the first body byte */
	int whole_ok;			/* a 200 with the whole file will do */
	int whole_refused;		/* a 200 for a file over HTTP_WHOLE_MAX */
	int done_early;			/* a 200 cut off after our range */
	struct http_source *src;
	CURL *h;
};

/*
 * Builds BASE/SEG/SEG... of @path with each segment percent-encoded into
 * *url (malloc'd); @public_url leaves out the base's userinfo. STORE_OK,
 * STORE_INVALID (empty, ".", ".." segments) or STORE_NOMEM.
 */
int http_source_url(struct http_source *src, const char *path, int public_url,
		    char **url, char *err, size_t errlen);

/* A copy of the source's headers plus @extra (may be NULL) into *out
 * (NULL when there are none). STORE_OK or STORE_NOMEM. */
int http_source_headers(struct http_source *src, const char *extra,
			struct curl_slist **out);

/* Wipes the values in @list (they may be secrets) and frees it. */
void http_headers_free(struct curl_slist *list);

/* options.parallel and options.stall_timeout_s after defaults. */
int http_source_parallel(const struct http_source *src);
long http_source_stall_s(const struct http_source *src);

/* ---- shared by http.c and http_xfer.c ---- */

/* An easy handle from the source's pool (or a new one), NULL without
 * memory; back with http_handle_put(), which resets it. */
CURL *http_handle_get(struct http_source *src);
void http_handle_put(struct http_source *src, CURL *h);

/*
 * Background work of a source's files: http_source_run() queues @job for
 * one of the source's threads (started as needed, at most a few, kept
 * until http_source_free()), which calls job->run(job) once. The job's
 * owner stays until run() tells it, under its own lock, that it is done.
 * STORE_OK, or STORE_NOMEM when no thread could be started.
 */
struct http_job {
	void (*run)(struct http_job *job);
	struct http_job *next;		/* the queue's */
};
int http_source_run(struct http_source *src, struct http_job *job);

/*
 * A multi handle from the source's pool (or a new one; NULL without
 * memory), with no transfer in it; back with http_multi_put() once every
 * handle was removed from it.
 */
CURLM *http_multi_get(struct http_source *src);
void http_multi_put(struct http_source *src, CURLM *m);

/*
 * A BLOCKCACHE_BLOCK-sized buffer from the source's pool (or a new one;
 * NULL without memory); back with http_block_put() (NULL is ignored).
 */
unsigned char *http_block_get(struct http_source *src);
void http_block_put(struct http_source *src, unsigned char *p);

/* Sets the options every request has (share, URL, headers, timeouts,
 * protocols, no signals, Last-Modified). STORE_OK or STORE_NOMEM. */
int http_handle_setup(struct http_source *src, CURL *h, const char *url,
		      struct curl_slist *headers);

/* STORE_NOT_FOUND (404, 410), STORE_DENIED (401, 403), else STORE_IO. */
int http_status_rc(long status);

/* The value of response header @name of @h, or NULL. */
const char *http_header_value(CURL *h, const char *name);

/* Last-Modified of the response of @h in ms, or -1. */
int64_t http_response_mtime_ms(CURL *h);

/* curl's generic text for @code in @buf, first letter lowercased. */
const char *http_curl_msg(CURLcode code, char *buf, size_t len);

/* Adds @n to the source's count of fetched body bytes. */
void http_count_fetched(struct http_source *src, size_t n);

/*
 * Makes @x->h (from the pool) a range GET of [@x->start, @x->start +
 * @x->len) of @req with the pin's conditions, writing into @x->buf.
 * STORE_OK or STORE_NOMEM (@x->h may then be set: give it back).
 */
int http_xfer_setup(struct http_source *src, const struct http_req *req,
		    struct http_xfer *x);

/*
 * Checks the response of @x->h so far (status @status; its headers are
 * all in, the body may not be) against @req->pin: 412, 416 or an unmet
 * time condition, the Content-Range of a 206 against the range asked
 * and the pinned size, ETag and Last-Modified. STORE_OK for a 200 or 206
 * that matches, else the error of http_file_pread() with its message.
 */
int http_xfer_check_response(const struct http_req *req, struct http_xfer *x,
			     long status, char *err, size_t errlen);

/*
 * Runs the @n transfers of @x, options.parallel at once, stopping at the
 * first failure. STORE_OK when every range was received whole and matches
 * @req->pin, else the first error (see http_file_pread() in http.h) with
 * its message; the contents of the buffers are then undefined.
 */
int http_xfer_run(struct http_source *src, const struct http_req *req,
		  struct http_xfer *x, size_t n, char *err, size_t errlen);

/* ---- streams (http_stream.c) ---- */

/*
 * A stream serves sequential reads of one file from one long range GET
 * at a time, received by a thread of its own into a ring of the next
 * bytes of the file; reads copy out of it, in any order, from any thread.
 * @req must outlive it. Streamed bytes are not put into the block cache
 * (http.h). STORE_OK and *out, or STORE_NOMEM. http_stream_free() stops
 * its thread and drops the request under way.
 */
struct http_stream;
int http_stream_new(struct http_source *src, const struct http_req *req,
		    struct http_stream **out);
void http_stream_free(struct http_stream *s);

/* http_stream_read() results besides STORE_* codes */
#define HTTP_STREAM_SKIP 3	/* past the stream's window: fetch otherwise */
#define HTTP_STREAM_BEHIND 4	/* before it (taken already): fetch exactly */

/*
 * Reads exactly [@off, @off + @len) (inside the pinned size, @len at most
 * a few MiB) into @dst, waiting for the stream's bytes. A stream whose
 * readers went elsewhere starts again at @off. STORE_OK,
 * HTTP_STREAM_SKIP, HTTP_STREAM_BEHIND, or an error of http_file_pread()
 * with its message (the next read starts a new request).
 */
int http_stream_read(struct http_stream *s, unsigned char *dst, size_t len,
		     uint64_t off, char *err, size_t errlen);

#endif /* MLFS_HTTP_INTERNAL_H */
