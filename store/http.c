/*
 * http.c - HTTP sources: URLs, the curl handle pool, HEAD (contract:
 * mlfs/http.h; range transfers are in http_xfer.c, the file side with
 * its read-ahead in http_file.c).
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
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "http_internal.h"
#include "mlfs/blockcache.h"

/*
 * Kept for reuse across the source's files: a new easy handle costs its
 * buffers, a new multi handle a socket pair, a new 256 KiB block buffer
 * its page faults (0.4 ms in a VM).
 */
#define HANDLES_MAX 16
#define MULTIS_MAX 8
#define BLOCKS_MAX 48
#define KEPT_MAX 48		/* the largest of these */

/* A stack of kept objects of one sort, under http_source.pool_mu. */
struct kept {
	void *v[KEPT_MAX];
	int n, max;
};
/* Threads for background jobs, started as needed and kept: a read that
 * starts a read-ahead batch pays a wake-up, not a thread's creation. */
#define WORKERS_MAX 4
#define WORKER_NICE 5

struct http_source {
	char *base;		/* normalized, no trailing '/', may hold userinfo */
	char *base_public;	/* the same without userinfo */
	char **header_lines;	/* NULL-terminated copies */
	struct http_options opt;
	CURLSH *share;
	pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_mu;
	struct kept handles;	/* CURL * */
	struct kept multis;	/* CURLM * */
	struct kept blocks;	/* BLOCKCACHE_BLOCK bytes, mmap'd */
	/* Background jobs of the source's files (read-ahead batches). */
	pthread_mutex_t jobs_mu;
	pthread_cond_t jobs_cv;
	struct http_job *jobs_head, *jobs_tail;
	pthread_t workers[WORKERS_MAX];
	int nworkers, idle_workers, stopping;
	atomic_uint_least64_t fetched;
};

#define SET_ERR(...) \
	do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); } while (0)

/* curl's generic text for @code, first letter lowercased. */
const char *http_curl_msg(CURLcode code, char *buf, size_t len)
{
	snprintf(buf, len, "%s", curl_easy_strerror(code));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}


#define CURLSTR(c) http_curl_msg((c), (char[128]){ 0 }, 128)

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
	src->handles.max = HANDLES_MAX;
	src->multis.max = MULTIS_MAX;
	src->blocks.max = BLOCKS_MAX;
	pthread_mutex_init(&src->jobs_mu, NULL);
	pthread_cond_init(&src->jobs_cv, NULL);
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

static void workers_stop(struct http_source *src)
{
	pthread_mutex_lock(&src->jobs_mu);
	src->stopping = 1;
	pthread_cond_broadcast(&src->jobs_cv);
	pthread_mutex_unlock(&src->jobs_mu);
	for (int i = 0; i < src->nworkers; i++)
		pthread_join(src->workers[i], NULL);
	pthread_cond_destroy(&src->jobs_cv);
	pthread_mutex_destroy(&src->jobs_mu);
}

void http_source_free(struct http_source *src)
{
	if (!src)
		return;
	workers_stop(src);
	for (int i = 0; i < src->handles.n; i++)
		curl_easy_cleanup(src->handles.v[i]);
	for (int i = 0; i < src->multis.n; i++)
		curl_multi_cleanup(src->multis.v[i]);
	for (int i = 0; i < src->blocks.n; i++)
		munmap(src->blocks.v[i], BLOCKCACHE_BLOCK);
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

long http_source_stall_s(const struct http_source *src)
{
	return src->opt.stall_timeout_s;
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

/* ---- pools ------------------------------------------------------------------ */

static void *kept_pop(struct http_source *src, struct kept *k)
{
	void *p = NULL;

	pthread_mutex_lock(&src->pool_mu);
	if (k->n > 0)
		p = k->v[--k->n];
	pthread_mutex_unlock(&src->pool_mu);
	return p;
}

/* Keeps @p if there is room: 1, else 0 (the caller frees it). */
static int kept_push(struct http_source *src, struct kept *k, void *p)
{
	int kept = 0;

	pthread_mutex_lock(&src->pool_mu);
	if (k->n < k->max) {
		k->v[k->n++] = p;
		kept = 1;
	}
	pthread_mutex_unlock(&src->pool_mu);
	return kept;
}

CURL *http_handle_get(struct http_source *src)
{
	CURL *h = kept_pop(src, &src->handles);

	return h ? h : curl_easy_init();
}

/* Resets @h (its connections stay in the share) and keeps it for reuse. */
void http_handle_put(struct http_source *src, CURL *h)
{
	if (!h)
		return;
	curl_easy_reset(h);
	if (!kept_push(src, &src->handles, h))
		curl_easy_cleanup(h);
}

CURLM *http_multi_get(struct http_source *src)
{
	CURLM *m = kept_pop(src, &src->multis);

	return m ? m : curl_multi_init();
}

void http_multi_put(struct http_source *src, CURLM *m)
{
	if (m && !kept_push(src, &src->multis, m))
		curl_multi_cleanup(m);
}

/*
 * New buffers are mapped with MAP_POPULATE: the kernel fills in all 64
 * pages in one call, where touching fresh malloc'd memory takes a page
 * fault per page (in a VM the faults cost more than the copy into them).
 */
unsigned char *http_block_get(struct http_source *src)
{
	unsigned char *p = kept_pop(src, &src->blocks);

	if (p)
		return p;
	p = mmap(NULL, BLOCKCACHE_BLOCK, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void http_block_put(struct http_source *src, unsigned char *p)
{
	if (p && !kept_push(src, &src->blocks, p))
		munmap(p, BLOCKCACHE_BLOCK);
}

/* ---- background jobs --------------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct http_source *src = arg;
	struct http_job *job;

	/* Read-ahead is for later: a reader woken by its own bytes comes
	 * first (on two cores it otherwise waits for a CPU). */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WORKER_NICE);
	pthread_mutex_lock(&src->jobs_mu);
	for (;;) {
		while (!src->jobs_head && !src->stopping) {
			src->idle_workers++;
			pthread_cond_wait(&src->jobs_cv, &src->jobs_mu);
			src->idle_workers--;
		}
		if (!src->jobs_head)
			break;	/* stopping, and nothing left */
		job = src->jobs_head;
		src->jobs_head = job->next;
		if (!src->jobs_head)
			src->jobs_tail = NULL;
		pthread_mutex_unlock(&src->jobs_mu);
		job->run(job);	/* may free the job's owner: not touched after */
		pthread_mutex_lock(&src->jobs_mu);
	}
	pthread_mutex_unlock(&src->jobs_mu);
	return NULL;
}

int http_source_run(struct http_source *src, struct http_job *job)
{
	int rc = STORE_OK;

	job->next = NULL;
	pthread_mutex_lock(&src->jobs_mu);
	if (src->idle_workers == 0 && src->nworkers < WORKERS_MAX) {
		if (pthread_create(&src->workers[src->nworkers], NULL,
				   worker_main, src) == 0)
			src->nworkers++;
		else if (src->nworkers == 0)
			rc = STORE_NOMEM;
	}
	if (rc == STORE_OK) {
		if (src->jobs_tail)
			src->jobs_tail->next = job;
		else
			src->jobs_head = job;
		src->jobs_tail = job;
		pthread_cond_signal(&src->jobs_cv);
	}
	pthread_mutex_unlock(&src->jobs_mu);
	return rc;
}

/* The options every request of @src has. */
int http_handle_setup(struct http_source *src, CURL *h, const char *url,
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
int http_status_rc(long status)
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
const char *http_header_value(CURL *h, const char *name)
{
	struct curl_header *hd;

	if (curl_easy_header(h, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK)
		return NULL;
	return hd->value;
}

/* Last-Modified of the response in ms, or -1. */
int64_t http_response_mtime_ms(CURL *h)
{
	curl_off_t t = -1;

	if (curl_easy_getinfo(h, CURLINFO_FILETIME_T, &t) != CURLE_OK || t < 0)
		return -1;
	return (int64_t)t * 1000;
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
	if ((etag = http_header_value(h, "ETag"))) {
		if (strlen(etag) >= sizeof(st->etag)) {
			SET_ERR("cannot stat '%s': etag over %d bytes", path,
				HTTP_ETAG_MAX - 1);
			return STORE_TOO_BIG;
		}
		snprintf(st->etag, sizeof(st->etag), "%s", etag);
	}
	st->mtime_ms = http_response_mtime_ms(h);
	ranges = http_header_value(h, "Accept-Ranges");
	st->ranges = ranges && strstr(ranges, "bytes") != NULL;
	return STORE_OK;
}

/*
 * A server answers a directory's path without its slash with a redirect
 * to PATH/ (nginx, Apache, S3 websites): that is a directory, not an
 * error. Redirects are never followed (headers would go along).
 */
static int redirects_to_directory(CURL *h, long status, const char *url)
{
	const char *loc, *upath;
	size_t llen, plen;

	if (status != 301 && status != 302 && status != 307 && status != 308)
		return 0;
	loc = http_header_value(h, "Location");
	upath = strstr(url, "://");
	upath = upath ? strchr(upath + 3, '/') : NULL;
	if (!loc || !upath)
		return 0;
	llen = strlen(loc);
	plen = strlen(upath);
	return llen > plen && loc[llen - 1] == '/' &&
	       strncmp(loc + llen - 1 - plen, upath, plen) == 0;
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
	    !(h = http_handle_get(src)) ||
	    http_handle_setup(src, h, url, headers) != STORE_OK ||
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
	if (redirects_to_directory(h, status, url)) {
		memset(st, 0, sizeof(*st));
		st->mtime_ms = -1;
		st->is_dir = 1;
		rc = STORE_OK;
		goto out;
	}
	if (status != 200) {
		rc = http_status_rc(status);
		SET_ERR("cannot stat '%s': HTTP %ld", path, status);
		goto out;
	}
	rc = stat_fill(h, path, st, err, errlen);
out:
	http_handle_put(src, h);
	http_headers_free(headers);
	free_secret(url);
	return rc;
}

void http_count_fetched(struct http_source *src, size_t n)
{
	atomic_fetch_add(&src->fetched, n);
}
