/*
 * http.c - HTTP sources: URLs, the curl handle pool, HEAD, and the
 * transfer engine behind range reads (contract: mlfs/http.h; the file
 * side with its read-ahead is http_file.c).
 *
 * Connections: every easy handle of a source is attached to one curl
 * share handle holding the connection cache, DNS cache and TLS sessions,
 * so a handle taken from the pool by any thread reuses any idle
 * connection, including inside a multi handle (a share's connection cache
 * takes precedence over the multi's). Idle easy handles are kept in a
 * small pool and reset before reuse.
 *
 * Secrecy: the URL with userinfo and the header values are handed to
 * curl and nowhere else. Messages are built from the relative path, the
 * status code and curl_easy_strerror() (generic texts; curl's error
 * buffer is not used, as it may quote a URL). CURLOPT_VERBOSE is never
 * set, redirects are not followed, and only http and https are allowed.
 *
 * Response checks (xfer_check()), in this order: the transfer itself; the
 * status (412 and 416 mean the file changed); Content-Range against the
 * range asked and the pinned size; ETag and Last-Modified against the
 * pin; then that every byte of the range arrived.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "mlfs/parse.h"

#define POOL_MAX 16
#define RECV_BUFFER (256L * 1024)	/* fewer, larger write callbacks */

struct http_source {
	char *base;		/* normalized, no trailing '/', may hold userinfo */
	char *base_public;	/* the same without userinfo */
	char **header_lines;	/* NULL-terminated copies */
	struct http_options opt;
	CURLSH *share;
	pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_mu;
	CURL *pool[POOL_MAX];
	int npool;
	atomic_uint_least64_t fetched;
};

#define SET_ERR(...) \
	do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); } while (0)

/* curl's generic text for @code, first letter lowercased. */
static const char *curl_msg(CURLcode code, char *buf, size_t len)
{
	snprintf(buf, len, "%s", curl_easy_strerror(code));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

#define CURLSTR(c) curl_msg((c), (char[128]){ 0 }, 128)

/* ---- global init ----------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_ALL);
}

/* ---- the share handle's locks ------------------------------------------------- */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access,
		       void *arg)
{
	struct http_source *src = arg;

	(void)h;
	(void)access;
	pthread_mutex_lock(&src->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	struct http_source *src = arg;

	(void)h;
	pthread_mutex_unlock(&src->share_mu[data]);
}

static int share_create(struct http_source *src)
{
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&src->share_mu[i], NULL);
	if (!(src->share = curl_share_init()))
		return STORE_NOMEM;
	if (curl_share_setopt(src->share, CURLSHOPT_LOCKFUNC, share_lock) ||
	    curl_share_setopt(src->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
	    curl_share_setopt(src->share, CURLSHOPT_USERDATA, src) ||
	    curl_share_setopt(src->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) ||
	    curl_share_setopt(src->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
	    curl_share_setopt(src->share, CURLSHOPT_SHARE,
			      CURL_LOCK_DATA_SSL_SESSION))
		return STORE_NOMEM;
	return STORE_OK;
}

/* ---- the source ----------------------------------------------------------------- */

/*
 * Checks and normalizes @base_url into src->base and src->base_public.
 * Messages never quote the URL: it may hold a password.
 */
static int parse_base(struct http_source *src, const char *base_url,
		      char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *query = NULL, *frag = NULL, *s;
	int rc = STORE_INVALID;

	if (!u) {
		SET_ERR("cannot parse base url: out of memory");
		return STORE_NOMEM;
	}
	if (curl_url_set(u, CURLUPART_URL, base_url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		SET_ERR("invalid base url: not an http:// or https:// url");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
		SET_ERR("invalid base url: it has a query or a fragment");
		goto out;
	}
	rc = STORE_NOMEM;
	if (curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK ||
	    !(src->base = strdup(s)))
		goto out_nomem;
	curl_free(s);
	if (curl_url_set(u, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK ||
	    !(src->base_public = strdup(s)))
		goto out_nomem;
	curl_free(s);
	/* Paths are appended after one '/'. */
	while (*src->base && src->base[strlen(src->base) - 1] == '/')
		src->base[strlen(src->base) - 1] = '\0';
	while (*src->base_public &&
	       src->base_public[strlen(src->base_public) - 1] == '/')
		src->base_public[strlen(src->base_public) - 1] = '\0';
	rc = STORE_OK;
	goto out;
out_nomem:
	SET_ERR("cannot parse base url: out of memory");
out:
	curl_free(scheme);
	curl_free(query);
	curl_free(frag);
	curl_url_cleanup(u);
	return rc;
}

/* Copies @headers, refusing malformed ones by position, not by value. */
static int copy_headers(struct http_source *src, const char *const *headers,
			char *err, size_t errlen)
{
	size_t n = 0;

	while (headers && headers[n])
		n++;
	if (!(src->header_lines = calloc(n + 1, sizeof(char *)))) {
		SET_ERR("cannot make http source: out of memory");
		return STORE_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const char *colon = strchr(headers[i], ':');

		if (!colon || colon == headers[i] ||
		    strpbrk(headers[i], "\r\n")) {
			SET_ERR("invalid request header %zu: not 'Name: value' "
				"on one line", i + 1);
			return STORE_INVALID;
		}
		if (!(src->header_lines[i] = strdup(headers[i]))) {
			SET_ERR("cannot make http source: out of memory");
			return STORE_NOMEM;
		}
	}
	return STORE_OK;
}

static void apply_defaults(struct http_options *o)
{
	if (o->connect_timeout_ms <= 0)
		o->connect_timeout_ms = 4000;
	if (o->stall_timeout_s <= 0)
		o->stall_timeout_s = 4;
	if (o->request_timeout_ms <= 0)
		o->request_timeout_ms = 300000;
	if (o->parallel <= 0)
		o->parallel = 6;
}

int http_source_new(const char *base_url, const char *const *headers,
		    const struct http_options *opt, struct http_source **out,
		    char *err, size_t errlen)
{
	struct http_source *src;
	int rc;

	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		SET_ERR("cannot initialize libcurl: %s", CURLSTR(global_rc));
		return STORE_NOMEM;
	}
	if (!(src = calloc(1, sizeof(*src)))) {
		SET_ERR("cannot make http source: out of memory");
		return STORE_NOMEM;
	}
	pthread_mutex_init(&src->pool_mu, NULL);
	if (opt)
		src->opt = *opt;
	apply_defaults(&src->opt);
	if ((rc = share_create(src)) != STORE_OK) {
		SET_ERR("cannot make http source: out of memory");
		goto out_free;
	}
	if ((rc = parse_base(src, base_url, err, errlen)) != STORE_OK)
		goto out_free;
	if ((rc = copy_headers(src, headers, err, errlen)) != STORE_OK)
		goto out_free;
	*out = src;
	return STORE_OK;
out_free:
	http_source_free(src);
	return rc;
}

/* Overwrites and frees a string that may hold a secret. */
static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

void http_source_free(struct http_source *src)
{
	if (!src)
		return;
	for (int i = 0; i < src->npool; i++)
		curl_easy_cleanup(src->pool[i]);
	if (src->share)
		curl_share_cleanup(src->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&src->share_mu[i]);
	pthread_mutex_destroy(&src->pool_mu);
	for (size_t i = 0; src->header_lines && src->header_lines[i]; i++)
		free_secret(src->header_lines[i]);
	free(src->header_lines);
	free_secret(src->base);
	free(src->base_public);
	free(src);
}

uint64_t http_source_bytes_fetched(const struct http_source *src)
{
	return atomic_load(&src->fetched);
}

int http_source_parallel(const struct http_source *src)
{
	return src->opt.parallel;
}

void http_headers_free(struct curl_slist *list)
{
	for (struct curl_slist *l = list; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

int http_source_headers(struct http_source *src, const char *extra,
			struct curl_slist **out)
{
	struct curl_slist *list = NULL, *l;

	for (size_t i = 0; src->header_lines[i]; i++) {
		if (!(l = curl_slist_append(list, src->header_lines[i])))
			goto out_nomem;
		list = l;
	}
	if (extra) {
		if (!(l = curl_slist_append(list, extra)))
			goto out_nomem;
		list = l;
	}
	*out = list;
	return STORE_OK;
out_nomem:
	http_headers_free(list);
	return STORE_NOMEM;
}

/* ---- paths ------------------------------------------------------------------------ */

static int segment_is_valid(const char *seg, size_t len)
{
	return len > 0 && !(len == 1 && seg[0] == '.') &&
	       !(len == 2 && seg[0] == '.' && seg[1] == '.');
}

int http_source_url(struct http_source *src, const char *path, int public_url,
		    char **url, char *err, size_t errlen)
{
	const char *base = public_url ? src->base_public : src->base;
	size_t cap = strlen(base) + 3 * strlen(path) + 2, n;
	const char *p = path;
	char *buf, *esc;

	if (!(buf = malloc(cap))) {
		SET_ERR("cannot build url of '%s': out of memory", path);
		return STORE_NOMEM;
	}
	n = (size_t)snprintf(buf, cap, "%s", base);
	for (;;) {
		size_t len = strcspn(p, "/");

		if (!segment_is_valid(p, len)) {
			SET_ERR("invalid path '%s': empty, '.' or '..' segment",
				path);
			free(buf);
			return STORE_INVALID;
		}
		/* Since curl 7.82 the handle argument is unused. */
		if (!(esc = curl_easy_escape(NULL, p, (int)len))) {
			SET_ERR("cannot build url of '%s': out of memory", path);
			free(buf);
			return STORE_NOMEM;
		}
		n += (size_t)snprintf(buf + n, cap - n, "/%s", esc);
		curl_free(esc);
		if (!p[len])
			break;
		p += len + 1;
	}
	*url = buf;
	return STORE_OK;
}

/* ---- the handle pool ------------------------------------------------------------- */

static CURL *handle_get(struct http_source *src)
{
	CURL *h = NULL;

	pthread_mutex_lock(&src->pool_mu);
	if (src->npool > 0)
		h = src->pool[--src->npool];
	pthread_mutex_unlock(&src->pool_mu);
	return h ? h : curl_easy_init();
}

/* Resets @h (its connections stay in the share) and keeps it for reuse. */
static void handle_put(struct http_source *src, CURL *h)
{
	if (!h)
		return;
	curl_easy_reset(h);
	pthread_mutex_lock(&src->pool_mu);
	if (src->npool < POOL_MAX) {
		src->pool[src->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&src->pool_mu);
	if (h)
		curl_easy_cleanup(h);
}

/* The options every request of @src has. */
static int handle_setup(struct http_source *src, CURL *h, const char *url,
			struct curl_slist *headers)
{
	const struct http_options *o = &src->opt;

	if (curl_easy_setopt(h, CURLOPT_SHARE, src->share) ||
	    curl_easy_setopt(h, CURLOPT_URL, url) ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms) ||
	    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L) ||
	    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, o->stall_timeout_s) ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->request_timeout_ms) ||
	    curl_easy_setopt(h, CURLOPT_FILETIME, 1L))
		return STORE_NOMEM;
	return STORE_OK;
}

/* ---- status and headers ---------------------------------------------------------- */

/* The STORE_* code of an HTTP status that is not a success. */
static int status_rc(long status)
{
	switch (status) {
	case 404:
	case 410:
		return STORE_NOT_FOUND;
	case 401:
	case 403:
		return STORE_DENIED;
	default:
		return STORE_IO;
	}
}

/* Value of response header @name of @h, or NULL. */
static const char *header_value(CURL *h, const char *name)
{
	struct curl_header *hd;

	if (curl_easy_header(h, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK)
		return NULL;
	return hd->value;
}

/* Last-Modified of the response in ms, or -1. */
static int64_t response_mtime_ms(CURL *h)
{
	curl_off_t t = -1;

	if (curl_easy_getinfo(h, CURLINFO_FILETIME_T, &t) != CURLE_OK || t < 0)
		return -1;
	return (int64_t)t * 1000;
}

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

/* ---- HEAD ------------------------------------------------------------------------- */

static size_t discard_body(char *data, size_t size, size_t nmemb, void *arg)
{
	(void)data;
	(void)arg;
	return size * nmemb;
}

/* Fills @st from the HEAD response in @h. */
static int stat_fill(CURL *h, const char *path, struct http_stat *st,
		     char *err, size_t errlen)
{
	curl_off_t size = -1;
	const char *etag, *ranges;

	if (curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &size) !=
	    CURLE_OK || size < 0) {
		SET_ERR("cannot stat '%s': the server sent no content length",
			path);
		return STORE_IO;
	}
	memset(st, 0, sizeof(*st));
	st->size = (uint64_t)size;
	if ((etag = header_value(h, "ETag"))) {
		if (strlen(etag) >= sizeof(st->etag)) {
			SET_ERR("cannot stat '%s': etag over %d bytes", path,
				HTTP_ETAG_MAX - 1);
			return STORE_TOO_BIG;
		}
		snprintf(st->etag, sizeof(st->etag), "%s", etag);
	}
	st->mtime_ms = response_mtime_ms(h);
	ranges = header_value(h, "Accept-Ranges");
	st->ranges = ranges && strstr(ranges, "bytes") != NULL;
	return STORE_OK;
}

int http_stat(struct http_source *src, const char *path, struct http_stat *st,
	      char *err, size_t errlen)
{
	struct curl_slist *headers = NULL;
	char *url = NULL;
	long status = 0;
	CURLcode code;
	CURL *h = NULL;
	int rc;

	if ((rc = http_source_url(src, path, 0, &url, err, errlen)) != STORE_OK)
		return rc;
	rc = STORE_NOMEM;
	if (http_source_headers(src, NULL, &headers) != STORE_OK ||
	    !(h = handle_get(src)) ||
	    handle_setup(src, h, url, headers) != STORE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOBODY, 1L) ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body)) {
		SET_ERR("cannot stat '%s': out of memory", path);
		goto out;
	}
	code = curl_easy_perform(h);
	if (code != CURLE_OK) {
		rc = STORE_IO;
		SET_ERR("cannot stat '%s': %s", path, CURLSTR(code));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		rc = status_rc(status);
		SET_ERR("cannot stat '%s': HTTP %ld", path, status);
		goto out;
	}
	rc = stat_fill(h, path, st, err, errlen);
out:
	handle_put(src, h);
	http_headers_free(headers);
	free_secret(url);
	return rc;
}

/* ---- range transfers ---------------------------------------------------------------- */

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

	atomic_fetch_add(&x->src->fetched, n);
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

static int xfer_setup(struct http_source *src, const struct http_req *req,
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
	if (!(x->h = handle_get(src)))
		return STORE_NOMEM;
	snprintf(range, sizeof(range), "%llu-%llu",
		 (unsigned long long)x->start,
		 (unsigned long long)(x->start + x->len - 1));
	if (handle_setup(src, x->h, req->url, req->headers) ||
	    curl_easy_setopt(x->h, CURLOPT_RANGE, range) ||
	    curl_easy_setopt(x->h, CURLOPT_BUFFERSIZE, (long)RECV_BUFFER) ||
	    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, xfer_write) ||
	    curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x) ||
	    curl_easy_setopt(x->h, CURLOPT_PRIVATE, x))
		return STORE_NOMEM;
	/* Without a strong ETag (If-Match, in req->headers) the condition is
	 * the time: curl sends If-Unmodified-Since itself. */
	if (!(pin->etag[0] == '"') && pin->mtime_ms >= 0 &&
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
		return status_rc(status);
	}
	if (!(cr = header_value(x->h, "Content-Range")) ||
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
	const char *etag = header_value(x->h, "ETag");
	int64_t mtime = response_mtime_ms(x->h);

	if (pin->etag[0] && etag && strcmp(etag, pin->etag) != 0)
		CHANGED("etag %s, registered %s)", req->path, etag, pin->etag);
	if (pin->mtime_ms >= 0 && mtime >= 0 &&
	    mtime / 1000 != pin->mtime_ms / 1000)
		CHANGED("last-modified %lld, registered %lld)", req->path,
			(long long)(mtime / 1000),
			(long long)(pin->mtime_ms / 1000));
	return STORE_OK;
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
	if ((rc = xfer_check_status(req, x, status, err, errlen)) != STORE_OK)
		return rc;
	if ((rc = xfer_check_version(req, x, err, errlen)) != STORE_OK)
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
	handle_put(src, x->h);
	x->h = NULL;
}

/* Starts transfers until @parallel run or none is left. */
static int xfer_start_more(struct http_source *src, const struct http_req *req,
			   CURLM *m, struct http_xfer *x, size_t n,
			   size_t *next, size_t *active)
{
	while (*active < (size_t)src->opt.parallel && *next < n) {
		struct http_xfer *t = &x[(*next)++];

		if (xfer_setup(src, req, t) != STORE_OK ||
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
	if (!(m = curl_multi_init())) {
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
	/* On failure the transfers still running are abandoned. */
	for (size_t i = 0; i < next; i++)
		xfer_release(src, m, &x[i]);
	curl_multi_cleanup(m);
	return rc;
}
