/*
 * test_http.c - reading files over HTTP from a real nginx (nginx_fixture):
 * stat and its errors, the secret header, path encoding, sequential and
 * random reads checked byte for byte, how much random reads fetch, a file
 * changed after it was registered, a stopped and a hung server, threads,
 * the block cache, and that secrets never reach a message or stderr.
 *
 * Each test starts its own nginx over its own temporary directory in
 * .init and stops it in .fini, which Criterion runs also after a failed
 * assertion; nginx dies with the test process in any case.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mlfs/http.h"
#include "nginx_fixture.h"

#define MiB (1024u * 1024u)
#define BIG_SIZE (64u * MiB)

static struct nginx_fixture nx;
static char err[512];

static void setup(void)
{
	cr_assert_eq(nginx_fixture_start(&nx), 0, "nginx did not start");
	err[0] = '\0';
}

static void teardown(void)
{
	nginx_fixture_destroy(&nx);
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 240);

/* ---- helpers ------------------------------------------------------------------------- */

/* @len pseudo-random bytes (xorshift: fast, and reproducible per seed). */
static unsigned char *make_bytes(size_t len, uint64_t seed)
{
	unsigned char *p = malloc(len);
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	cr_assert_not_null(p);
	for (size_t i = 0; i < len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, len - i < 8 ? len - i : 8);
	}
	return p;
}

static unsigned char *serve(const char *rel, size_t len, uint64_t seed)
{
	unsigned char *p = make_bytes(len, seed);

	cr_assert_eq(nginx_fixture_write(&nx, rel, p, len), 0);
	return p;
}

static void sha256(const void *p, size_t len, unsigned char out[32])
{
	unsigned int n = 32;

	cr_assert(EVP_Digest(p, len, out, &n, EVP_sha256(), NULL));
}

static struct http_source *source(const char *const *headers)
{
	struct http_source *src = NULL;

	cr_assert_eq(http_source_new(nx.base_url, headers, NULL, &src, err,
				     sizeof(err)), STORE_OK, "%s", err);
	return src;
}

static struct http_file *open_file(struct http_source *src, const char *path,
				   struct http_stat *st, struct blockcache *bc)
{
	struct http_file *f = NULL;

	cr_assert_eq(http_stat(src, path, st, err, sizeof(err)), STORE_OK,
		     "%s", err);
	cr_assert_eq(http_file_open(src, path, st, bc, &f, err, sizeof(err)),
		     STORE_OK, "%s", err);
	return f;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads all of @f in @chunk-sized preads; returns the malloc'd bytes. */
static unsigned char *read_all(struct http_file *f, size_t size, size_t chunk)
{
	unsigned char *got = malloc(size);
	size_t off = 0;

	cr_assert_not_null(got);
	while (off < size) {
		ssize_t n = http_file_pread(f, got + off, chunk, off, err,
					    sizeof(err));

		cr_assert_gt(n, 0, "at %zu: %s", off, err);
		off += (size_t)n;
	}
	cr_assert_eq(http_file_pread(f, got, chunk, off, err, sizeof(err)), 0);
	return got;
}

/* Gives the file a new mtime, so nginx gives it a new ETag. */
static void touch_later(const char *rel, long seconds)
{
	char path[PATH_MAX];
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, 0 } };

	ts[1].tv_sec = time(NULL) + seconds;
	snprintf(path, sizeof(path), "%s/%s", nx.www, rel);
	cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Bytes per second of the curl command fetching www/@rel, for comparison. */
static double curl_speed(const char *rel)
{
	char cmd[256], out[64] = "";
	double speed = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{speed_download}' "
		 "%s/%s", nx.base_url, rel);
	if (!(p = popen(cmd, "r")))
		return 0;
	if (fgets(out, sizeof(out), p))
		speed = strtod(out, NULL);
	pclose(p);
	return speed;
}

/* ---- stat ------------------------------------------------------------------------------ */

Test(http, stat_reports_size_etag_and_mtime)
{
	struct http_source *src = source(NULL);
	struct http_stat st;

	free(serve("data/a.bin", 12345, 1));
	cr_assert_eq(http_stat(src, "data/a.bin", &st, err, sizeof(err)),
		     STORE_OK, "%s", err);
	cr_assert_eq(st.size, 12345);
	cr_assert_eq(st.etag[0], '"', "etag %s", st.etag);
	cr_assert_gt(st.mtime_ms, 1000000000000ll);
	cr_assert_eq(st.ranges, 1);
	http_source_free(src);
}

Test(http, stat_of_a_missing_file_is_not_found)
{
	struct http_source *src = source(NULL);
	struct http_stat st;

	cr_assert_eq(http_stat(src, "nope.bin", &st, err, sizeof(err)),
		     STORE_NOT_FOUND);
	cr_assert_str_eq(err, "cannot stat 'nope.bin': HTTP 404");
	http_source_free(src);
}

Test(http, stat_of_a_server_error_is_io)
{
	struct http_source *src = source(NULL);
	struct http_stat st;

	cr_assert_eq(http_stat(src, "err500", &st, err, sizeof(err)), STORE_IO);
	cr_assert_str_eq(err, "cannot stat 'err500': HTTP 500");
	http_source_free(src);
}

Test(http, the_secret_header_opens_the_secret_location)
{
	const char *const hdrs[] = { "Authorization: Bearer " NGINX_SECRET, NULL };
	struct http_source *anon = source(NULL), *auth = source(hdrs);
	struct http_stat st;

	free(serve("secret/s.bin", 1000, 2));
	cr_assert_eq(http_stat(anon, "secret/s.bin", &st, err, sizeof(err)),
		     STORE_DENIED);
	cr_assert(strstr(err, "HTTP 401"), "%s", err);
	cr_assert_eq(http_stat(auth, "secret/s.bin", &st, err, sizeof(err)),
		     STORE_OK, "%s", err);
	cr_assert_eq(st.size, 1000);
	http_source_free(anon);
	http_source_free(auth);
}

Test(http, bad_paths_urls_and_headers_are_refused)
{
	const char *bad[] = { "../x", "a/../b", "a/./b", "", "/a", "a/", "a//b",
			      ".." };
	const char *const nocolon[] = { "Authorization Bearer x", NULL };
	struct http_source *src = source(NULL), *s2 = NULL;
	struct http_stat st;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(http_stat(src, bad[i], &st, err, sizeof(err)),
			     STORE_INVALID, "path '%s'", bad[i]);
	cr_assert_eq(http_source_new("ftp://127.0.0.1/", NULL, NULL, &s2, err,
				     sizeof(err)), STORE_INVALID);
	cr_assert_eq(http_source_new("http://h/x?q=1", NULL, NULL, &s2, err,
				     sizeof(err)), STORE_INVALID);
	cr_assert_eq(http_source_new(nx.base_url, nocolon, NULL, &s2, err,
				     sizeof(err)), STORE_INVALID);
	cr_assert_null(strstr(err, "Bearer"), "%s", err);
	http_source_free(src);
}

Test(http, path_segments_are_percent_encoded)
{
	struct http_source *src = source(NULL);
	struct http_stat st;

	free(serve("d \xc3\xbc/a b%#?+.bin", 77, 3));
	cr_assert_eq(http_stat(src, "d \xc3\xbc/a b%#?+.bin", &st, err,
			       sizeof(err)), STORE_OK, "%s", err);
	cr_assert_eq(st.size, 77);
	http_source_free(src);
}

/* Distinct connections in nginx's access log (lines "CONN STATUS"). */
static int connections_used(int *requests)
{
	char path[PATH_MAX], line[128];
	long seen[64];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/access.log", nx.dir);
	cr_assert_not_null(f = fopen(path, "r"));
	*requests = 0;
	while (fgets(line, sizeof(line), f)) {
		long c = strtol(line, NULL, 10);
		int known = 0;

		(*requests)++;
		for (int i = 0; i < n; i++)
			known |= seen[i] == c;
		if (!known && n < 64)
			seen[n++] = c;
	}
	fclose(f);
	return n;
}

Test(http, requests_reuse_connections)
{
	struct http_source *src = source(NULL);
	struct http_stat st;
	int requests, conns;

	free(serve("a.bin", 100, 1));
	for (int i = 0; i < 50; i++)
		cr_assert_eq(http_stat(src, "a.bin", &st, err, sizeof(err)),
			     STORE_OK, "%s", err);
	http_source_free(src);
	/* nginx logs a request after its response went out: the last
	 * lines may come a little after the client has its answer */
	for (int tries = 0; tries < 100; tries++) {
		conns = connections_used(&requests);
		if (requests >= 50)
			break;
		usleep(10000);
	}
	cr_assert_eq(requests, 50);
	cr_assert_leq(conns, 2, "%d connections for 50 requests", conns);
}

/* ---- reads -------------------------------------------------------------------------------- */

Test(http, sequential_read_of_64mib_matches_its_sha256)
{
	struct http_source *src = source(NULL);
	unsigned char *want = serve("big.bin", BIG_SIZE, 4);
	unsigned char *buf = malloc(128 * 1024), h1[32], h2[32];
	unsigned int hlen = 32;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct http_stat st;
	struct http_file *f = open_file(src, "big.bin", &st, NULL);
	double in_pread = 0, t0;
	uint64_t fetched;
	size_t off = 0;
	ssize_t n;

	/* One reused buffer, as the kernel's page cache is for FUSE; the
	 * time counted is the time inside pread. */
	cr_assert(buf && md && EVP_DigestInit_ex(md, EVP_sha256(), NULL));
	while (off < BIG_SIZE) {
		t0 = now_s();
		n = http_file_pread(f, buf, 128 * 1024, off, err, sizeof(err));
		in_pread += now_s() - t0;
		cr_assert_gt(n, 0, "at %zu: %s", off, err);
		cr_assert(EVP_DigestUpdate(md, buf, (size_t)n));
		off += (size_t)n;
	}
	cr_assert(EVP_DigestFinal_ex(md, h2, &hlen));
	sha256(want, BIG_SIZE, h1);
	cr_assert_eq(memcmp(h1, h2, 32), 0);
	fetched = http_source_bytes_fetched(src);
	cr_assert_leq(fetched, BIG_SIZE + BIG_SIZE / 20,
		      "read-ahead fetched %llu bytes", (unsigned long long)fetched);
	fprintf(stderr, "sequential 128 KiB preads of 64 MiB: %.0f MiB/s; "
		"curl -o /dev/null of the same URL: %.0f MiB/s\n",
		BIG_SIZE / MiB / in_pread, curl_speed("big.bin") / MiB);
	EVP_MD_CTX_free(md);
	free(want);
	free(buf);
	http_file_close(f);
	http_source_free(src);
}

Test(http, short_reads_only_at_end_of_file)
{
	struct http_source *src = source(NULL);
	unsigned char *want = serve("s.bin", 300000, 5), buf[8192];
	struct http_stat st;
	struct http_file *f = open_file(src, "s.bin", &st, NULL);

	cr_assert_eq(http_file_pread(f, buf, 8192, 300000 - 100, err,
				     sizeof(err)), 100, "%s", err);
	cr_assert_eq(memcmp(buf, want + 300000 - 100, 100), 0);
	cr_assert_eq(http_file_pread(f, buf, 8192, 300000, err, sizeof(err)), 0);
	cr_assert_eq(http_file_pread(f, buf, 8192, 1ull << 40, err, sizeof(err)), 0);
	cr_assert_eq(http_file_pread(f, buf, 0, 0, err, sizeof(err)), 0);
	free(want);
	http_file_close(f);
	http_source_free(src);
}

/*
 * The bodies nginx sent (HEADs have none: left out), in the order the
 * responses ended; up to @max. nginx logs a request once answered.
 */
static int bodies_sent(long *bytes, int max)
{
	char path[PATH_MAX], line[128];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/access.log", nx.dir);
	cr_assert_not_null(f = fopen(path, "r"));
	while (n < max && fgets(line, sizeof(line), f)) {
		/* "CONNECTION STATUS BODY_BYTES" */
		char *p = strchr(line, ' ');

		p = p ? strchr(p + 1, ' ') : NULL;
		if (p && (bytes[n] = strtol(p + 1, NULL, 10)) > 0)
			n++;
	}
	fclose(f);
	return n;
}

Test(http, a_first_small_read_waits_for_its_own_bytes_only)
{
	struct http_source *src = source(NULL);
	unsigned char *want = serve("first.bin", MiB, 21), buf[16384];
	struct http_stat st;
	struct http_file *f = open_file(src, "first.bin", &st, NULL);
	long bytes[16];
	int n = 0;

	cr_assert_eq(http_file_pread(f, buf, sizeof(buf), 0, err, sizeof(err)),
		     (ssize_t)sizeof(buf), "%s", err);
	cr_assert_eq(memcmp(buf, want, sizeof(buf)), 0);
	http_file_close(f);	/* waits for the read-ahead it started */
	for (int tries = 0; tries < 100 && n < 2; tries++, usleep(10000))
		n = bodies_sent(bytes, 16);
	cr_assert_geq(n, 2, "the read-ahead after the first read made no request");
	cr_assert_eq(bytes[0], (long)sizeof(buf),
		     "the first read fetched %ld bytes, not its own %zu",
		     bytes[0], sizeof(buf));
	cr_assert_geq(bytes[1], 256 * 1024, "then its blocks, in the background");
	free(want);
	http_source_free(src);
}

/*
 * Reads as the kernel sends them for a reader that asks for sequential
 * read-ahead (cat, cp, sha256sum): 1 MiB each, an 8 MiB window at a time,
 * out of order inside the window. The stream serves them all from its
 * few long requests: no read makes a request of its own.
 */
Test(http, reads_out_of_order_inside_the_window_make_no_request_of_their_own)
{
	static const int order[8] = { 3, 0, 1, 5, 2, 7, 4, 6 };
	struct http_source *src = source(NULL);
	size_t size = 48 * MiB;
	unsigned char *want = serve("ooo.bin", size, 22);
	unsigned char *buf = malloc(MiB);
	struct http_stat st;
	struct http_file *f = open_file(src, "ooo.bin", &st, NULL);
	long bytes[64];
	int n;

	cr_assert_not_null(buf);
	for (size_t w = 0; w < size; w += 8 * MiB) {
		for (int i = 0; i < 8; i++) {
			/* the first window in order: a reader starts at 0 */
			size_t off = w + (size_t)(w ? order[i] : i) * MiB;

			cr_assert_eq(http_file_pread(f, buf, MiB, off, err,
						     sizeof(err)), (ssize_t)MiB,
				     "at %zu: %s", off, err);
			cr_assert_eq(memcmp(buf, want + off, MiB), 0,
				     "other bytes at %zu", off);
		}
	}
	http_file_close(f);
	n = bodies_sent(bytes, 64);
	cr_assert_leq(n, 8, "%d requests for %zu MiB read in windows", n,
		      size / MiB);
	free(want);
	free(buf);
	http_source_free(src);
}

Test(http, random_reads_of_any_size_match)
{
	struct http_source *src = source(NULL);
	size_t size = 8 * MiB + 12345;
	unsigned char *want = serve("r.bin", size, 6), *buf = malloc(3 * MiB);
	struct http_stat st;
	struct http_file *f = open_file(src, "r.bin", &st, NULL);
	uint64_t x = 42;

	cr_assert_not_null(buf);
	for (int i = 0; i < 300; i++) {
		size_t off, len, expect;
		ssize_t n;

		x = x * 6364136223846793005ull + 1442695040888963407ull;
		off = (size_t)(x >> 20) % size;
		len = i % 10 == 0 ? (size_t)(x >> 40) % (3 * MiB) + 1 :
				    (size_t)(x >> 44) % 70000 + 1;
		expect = len < size - off ? len : size - off;
		n = http_file_pread(f, buf, len, off, err, sizeof(err));
		cr_assert_eq(n, (ssize_t)expect, "read %zu at %zu: %s", len, off, err);
		cr_assert_eq(memcmp(buf, want + off, expect), 0,
			     "bytes differ reading %zu at %zu", len, off);
	}
	free(want);
	free(buf);
	http_file_close(f);
	http_source_free(src);
}

Test(http, random_4k_reads_fetch_at_most_4x_what_they_read)
{
	struct http_source *src = source(NULL);
	unsigned char *want = serve("big.bin", BIG_SIZE, 7), buf[4096];
	struct http_stat st;
	struct http_file *f = open_file(src, "big.bin", &st, NULL);
	uint64_t x = 7, fetched;

	for (int i = 0; i < 1000; i++) {
		size_t off;

		x = x * 6364136223846793005ull + 1442695040888963407ull;
		off = (size_t)(x >> 16) % (BIG_SIZE - 4096);
		cr_assert_eq(http_file_pread(f, buf, 4096, off, err, sizeof(err)),
			     4096, "%s", err);
		cr_assert_eq(memcmp(buf, want + off, 4096), 0);
	}
	fetched = http_source_bytes_fetched(src);
	cr_assert_leq(fetched, 4ull * 1000 * 4096, "fetched %llu bytes",
		      (unsigned long long)fetched);
	free(want);
	http_file_close(f);
	http_source_free(src);
}

struct reader {
	struct http_file *f;
	const unsigned char *want;
	size_t size;
	int id;
	int bad;
	char err[256];
};

/* Thread @id: even ids read their quarter sequentially, odd ones read at
 * random; every byte is compared. */
static void *reader_run(void *arg)
{
	struct reader *r = arg;
	unsigned char *buf = malloc(256 * 1024);
	size_t q = r->size / 4, off = q * (size_t)r->id;
	uint64_t x = (uint64_t)r->id + 99;

	for (int i = 0; buf && i < 200 && !r->bad; i++) {
		size_t len = 128 * 1024;
		ssize_t n;

		if (r->id % 2) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			off = (size_t)(x >> 20) % r->size;
			len = (size_t)(x >> 50) % (200 * 1024) + 1;
		} else if (off >= q * (size_t)(r->id + 1)) {
			break;
		}
		if (len > r->size - off)
			len = r->size - off;
		n = http_file_pread(r->f, buf, len, off, r->err, sizeof(r->err));
		if (n != (ssize_t)len || memcmp(buf, r->want + off, len) != 0)
			r->bad = 1;
		if (!(r->id % 2))
			off += len;
	}
	free(buf);
	return NULL;
}

static void four_threads(struct blockcache *bc)
{
	struct http_source *src = source(NULL);
	size_t size = 16 * MiB + 999;
	unsigned char *want = serve("t.bin", size, 8);
	struct http_stat st;
	struct http_file *f = open_file(src, "t.bin", &st, bc);
	struct reader r[4];
	pthread_t t[4];

	for (int i = 0; i < 4; i++) {
		r[i] = (struct reader){ f, want, size, i, 0, "" };
		cr_assert_eq(pthread_create(&t[i], NULL, reader_run, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(r[i].bad, 0, "thread %d: %s", i, r[i].err);
	}
	free(want);
	http_file_close(f);
	http_source_free(src);
}

Test(http, four_threads_reading_one_file_get_the_right_bytes)
{
	four_threads(NULL);
}

Test(http, four_threads_reading_through_a_cache_get_the_right_bytes)
{
	struct blockcache *bc = NULL;
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/cache", nx.dir);
	cr_assert_eq(blockcache_open(dir, 8 * MiB, 0, &bc, err, sizeof(err)),
		     STORE_OK, "%s", err);
	four_threads(bc);
	blockcache_close(bc);
}

/* Threads as FUSE runs them for kernel read-ahead: each takes the next
 * 128 KiB of the file, so reads arrive at increasing offsets, a little
 * out of order. */
struct shuffled {
	struct http_file *f;
	const unsigned char *want;
	size_t size;
	pthread_mutex_t mu;
	size_t next;
	int bad;
	char err[256];
};

static void *shuffled_run(void *arg)
{
	struct shuffled *sh = arg;
	unsigned char *buf = malloc(128 * 1024);
	size_t off;
	ssize_t n;

	for (int i = 0; buf; i++) {
		pthread_mutex_lock(&sh->mu);
		off = sh->next;
		sh->next += 128 * 1024;
		pthread_mutex_unlock(&sh->mu);
		if (off >= sh->size)
			break;
		if (i % 3 == 0)	/* let another thread overtake */
			nanosleep(&(struct timespec){ 0, 200000 }, NULL);
		n = http_file_pread(sh->f, buf, 128 * 1024, off, sh->err,
				    sizeof(sh->err));
		if (n != (ssize_t)(sh->size - off < 128 * 1024 ?
				   sh->size - off : 128 * 1024) ||
		    memcmp(buf, sh->want + off, (size_t)n) != 0) {
			sh->bad = 1;
			break;
		}
	}
	free(buf);
	return NULL;
}

static void shuffled_readers(struct blockcache *bc)
{
	struct http_source *src = source(NULL);
	size_t size = 48 * MiB + 12345;
	unsigned char *want = serve("o.bin", size, 21);
	struct http_stat st;
	struct http_file *f = open_file(src, "o.bin", &st, bc);
	struct shuffled sh = { f, want, size, PTHREAD_MUTEX_INITIALIZER, 0, 0, "" };
	pthread_t t[4];
	uint64_t fetched;

	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, shuffled_run, &sh), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(sh.bad, 0, "%s", sh.err);
	fetched = http_source_bytes_fetched(src);
	cr_assert_leq(fetched, size + size / 4, "fetched %llu bytes for %zu",
		      (unsigned long long)fetched, size);
	free(want);
	http_file_close(f);
	http_source_free(src);
}

Test(http, threads_reading_ahead_out_of_order_get_the_right_bytes)
{
	shuffled_readers(NULL);
}

Test(http, threads_reading_ahead_out_of_order_through_a_cache_get_the_right_bytes)
{
	struct blockcache *bc = NULL;
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/cache", nx.dir);
	cr_assert_eq(blockcache_open(dir, 64 * MiB, 0, &bc, err, sizeof(err)),
		     STORE_OK, "%s", err);
	shuffled_readers(bc);
	blockcache_close(bc);
}

/* ---- the block cache -------------------------------------------------------------------- */

/* Files up to 4 MiB are read through blocks, which the cache keeps. */
Test(http, cached_blocks_are_not_fetched_again)
{
	struct http_source *src = source(NULL);
	size_t size = 3 * MiB + 7;
	unsigned char *want = serve("c.bin", size, 9), *got;
	struct blockcache *bc = NULL;
	struct http_stat st;
	struct http_file *f;
	char dir[PATH_MAX];
	uint64_t first;

	snprintf(dir, sizeof(dir), "%s/cache", nx.dir);
	cr_assert_eq(blockcache_open(dir, 64 * MiB, 0, &bc, err, sizeof(err)),
		     STORE_OK, "%s", err);
	f = open_file(src, "c.bin", &st, bc);
	free(read_all(f, size, 128 * 1024));
	http_file_close(f);
	first = http_source_bytes_fetched(src);
	cr_assert_geq(first, size);

	/* Another open, after a restart of the cache: all from disk. */
	blockcache_close(bc);
	cr_assert_eq(blockcache_open(dir, 64 * MiB, 0, &bc, err, sizeof(err)),
		     STORE_OK, "%s", err);
	cr_assert_eq(http_file_open(src, "c.bin", &st, bc, &f, err, sizeof(err)),
		     STORE_OK);
	got = read_all(f, size, 128 * 1024);
	cr_assert_eq(memcmp(got, want, size), 0);
	cr_assert_eq(http_source_bytes_fetched(src), first,
		     "fetched %llu more bytes",
		     (unsigned long long)(http_source_bytes_fetched(src) - first));
	free(got);
	free(want);
	http_file_close(f);
	blockcache_close(bc);
	http_source_free(src);
}

/* Larger files read sequentially are streamed, past the cache. */
Test(http, streamed_reads_skip_the_cache)
{
	struct http_source *src = source(NULL);
	size_t size = 10 * MiB + 7;
	unsigned char *want = serve("s.bin", size, 12), *got;
	struct blockcache *bc = NULL;
	struct blockcache_stats bst;
	struct http_stat st;
	struct http_file *f;
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/scache", nx.dir);
	cr_assert_eq(blockcache_open(dir, 64 * MiB, 0, &bc, err, sizeof(err)),
		     STORE_OK, "%s", err);
	f = open_file(src, "s.bin", &st, bc);
	got = read_all(f, size, 1024 * 1024);
	cr_assert_eq(memcmp(got, want, size), 0);
	http_file_close(f);
	blockcache_close(bc);	/* writes whatever was queued */
	cr_assert_eq(blockcache_open(dir, 64 * MiB, 0, &bc, err, sizeof(err)),
		     STORE_OK, "%s", err);
	blockcache_stats(bc, &bst);
	cr_expect_lt(bst.blocks, 4, "%llu blocks cached from a stream",
		     (unsigned long long)bst.blocks);
	free(got);
	free(want);
	blockcache_close(bc);
	http_source_free(src);
}

Test(http, reads_work_when_the_cache_refuses_to_write)
{
	struct http_source *src = source(NULL);
	size_t size = 3 * MiB + 5;
	unsigned char *want = serve("n.bin", size, 16), *got;
	struct blockcache *bc = NULL;
	struct blockcache_stats bst;
	struct http_stat st;
	struct http_file *f;
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/cache", nx.dir);
	cr_assert_eq(blockcache_open(dir, 64 * MiB, UINT64_MAX / 2, &bc, err,
				     sizeof(err)), STORE_OK, "%s", err);
	f = open_file(src, "n.bin", &st, bc);
	got = read_all(f, size, 128 * 1024);
	cr_assert_eq(memcmp(got, want, size), 0);
	blockcache_stats(bc, &bst);
	cr_assert_eq(bst.blocks, 0);
	cr_assert_gt(bst.refused, 0);
	free(got);
	free(want);
	http_file_close(f);
	blockcache_close(bc);
	http_source_free(src);
}

/* ---- servers that ignore ranges ----------------------------------------------------------- */

Test(http, a_small_file_is_read_from_a_server_without_ranges)
{
	struct http_source *src = source(NULL);
	unsigned char *want = serve("noranges/s.bin", 500000, 17), buf[10000];
	struct http_stat st;
	struct http_file *f = open_file(src, "noranges/s.bin", &st, NULL);

	cr_assert_eq(http_file_pread(f, buf, sizeof(buf), 123456, err,
				     sizeof(err)), (ssize_t)sizeof(buf), "%s", err);
	cr_assert_eq(memcmp(buf, want + 123456, sizeof(buf)), 0);
	free(want);
	http_file_close(f);
	http_source_free(src);
}

Test(http, a_large_file_is_not_downloaded_whole_for_a_piece)
{
	struct http_source *src = source(NULL);
	unsigned char *want = serve("noranges/l.bin", 8 * MiB, 18), buf[4096];
	struct http_stat st;
	struct http_file *f = open_file(src, "noranges/l.bin", &st, NULL);

	cr_assert_eq(http_file_pread(f, buf, sizeof(buf), 5 * MiB, err,
				     sizeof(err)), STORE_IO);
	cr_assert(strstr(err, "ignores range requests"), "%s", err);
	cr_assert_lt(http_source_bytes_fetched(src), 1 * MiB);
	free(want);
	http_file_close(f);
	http_source_free(src);
}

/* ---- a file that changed ------------------------------------------------------------------ */

/* Registers "v.bin", replaces its content (same size) and checks that
 * reads at @off fail as changed, with @pin_etag kept or dropped. */
static void changed_after_stat(int keep_etag, size_t new_size)
{
	struct http_source *src = source(NULL);
	unsigned char *v1 = serve("v.bin", 2 * MiB, 10), *v2, buf[4096];
	struct http_stat st;
	struct http_file *f;
	ssize_t n;

	cr_assert_eq(http_stat(src, "v.bin", &st, err, sizeof(err)), STORE_OK);
	if (!keep_etag)
		st.etag[0] = '\0';	/* only Last-Modified pins it */
	cr_assert_eq(http_file_open(src, "v.bin", &st, NULL, &f, err,
				    sizeof(err)), STORE_OK);
	cr_assert_eq(http_file_pread(f, buf, 4096, 1000, err, sizeof(err)), 4096);
	cr_assert_eq(memcmp(buf, v1 + 1000, 4096), 0);

	v2 = serve("v.bin", new_size, 11);
	touch_later("v.bin", 100);
	for (uint64_t off = 0; off < 2 * MiB; off += 700 * 1024) {
		memset(buf, 0, sizeof(buf));
		n = http_file_pread(f, buf, 4096, off + 5000, err, sizeof(err));
		cr_assert_eq(n, STORE_CORRUPT, "read at %llu gave %zd",
			     (unsigned long long)off, n);
		cr_assert(strstr(err, "changed since it was registered"), "%s", err);
		cr_assert(strstr(err, "'v.bin'"), "%s", err);
	}
	free(v1);
	free(v2);
	http_file_close(f);
	http_source_free(src);
}

Test(http, a_file_changed_after_registration_fails_with_if_match)
{
	changed_after_stat(1, 2 * MiB);
}

Test(http, a_file_changed_after_registration_fails_with_last_modified)
{
	changed_after_stat(0, 2 * MiB);
}

Test(http, a_file_that_grew_after_registration_fails)
{
	changed_after_stat(0, 3 * MiB);
}

/* A sequential reader whose file changes between two of its reads: the
 * bytes it got are the registered ones, then it gets STORE_CORRUPT once
 * a new request of the stream meets the new version. The file is three
 * times the stream's ring (32 MiB), which may hold bytes received before
 * the change. */
#define CHANGED_SIZE (96 * MiB)
static void changed_mid_stream(int keep_etag)
{
	struct http_source *src = source(NULL);
	unsigned char *v1 = serve("w.bin", CHANGED_SIZE, 16), *v2;
	unsigned char *buf = malloc(MiB);
	struct http_stat st;
	struct http_file *f;
	size_t off = 0;
	ssize_t n = 0;

	cr_assert_not_null(buf);
	cr_assert_eq(http_stat(src, "w.bin", &st, err, sizeof(err)), STORE_OK);
	if (!keep_etag)
		st.etag[0] = '\0';
	cr_assert_eq(http_file_open(src, "w.bin", &st, NULL, &f, err,
				    sizeof(err)), STORE_OK);
	cr_assert_eq(http_file_pread(f, buf, MiB, 0, err, sizeof(err)),
		     (ssize_t)MiB, "%s", err);
	v2 = serve("w.bin", CHANGED_SIZE, 17);
	touch_later("w.bin", 100);
	for (off = MiB; off < CHANGED_SIZE; off += (size_t)n) {
		n = http_file_pread(f, buf, MiB, off, err, sizeof(err));
		if (n <= 0)
			break;
		cr_assert_eq(memcmp(buf, v1 + off, (size_t)n), 0,
			     "other bytes at %zu", off);
	}
	cr_assert_eq(n, STORE_CORRUPT, "read at %zu gave %zd: %s", off, n, err);
	cr_assert(strstr(err, "changed since it was registered"), "%s", err);
	free(v1);
	free(v2);
	free(buf);
	http_file_close(f);
	http_source_free(src);
}

Test(http, a_file_changed_mid_sequential_read_fails_with_if_match)
{
	changed_mid_stream(1);
}

Test(http, a_file_changed_mid_sequential_read_fails_with_last_modified)
{
	changed_mid_stream(0);
}

/* ---- dead servers ----------------------------------------------------------------------------- */

Test(http, a_stopped_server_gives_an_error_not_a_hang)
{
	struct http_source *src = source(NULL);
	unsigned char *want = serve("d.bin", 4 * MiB, 12), buf[4096];
	struct http_stat st;
	struct http_file *f = open_file(src, "d.bin", &st, NULL);
	double t0;
	ssize_t n;

	cr_assert_eq(http_file_pread(f, buf, 4096, 0, err, sizeof(err)), 4096);
	nginx_fixture_stop(&nx);
	t0 = now_s();
	n = http_file_pread(f, buf, 4096, 3 * MiB, err, sizeof(err));
	cr_assert_eq(n, STORE_IO, "%s", err);
	cr_assert_lt(now_s() - t0, 10.0);
	cr_assert(strstr(err, "cannot read 'd.bin': "), "%s", err);
	cr_assert_eq(http_stat(src, "d.bin", &st, err, sizeof(err)), STORE_IO);

	cr_assert_eq(nginx_fixture_restart(&nx), 0);
	cr_assert_eq(http_file_pread(f, buf, 4096, 3 * MiB, err, sizeof(err)),
		     4096, "%s", err);
	cr_assert_eq(memcmp(buf, want + 3 * MiB, 4096), 0);
	free(want);
	http_file_close(f);
	http_source_free(src);
}

Test(http, a_server_frozen_mid_sequential_read_gives_an_error_in_time)
{
	struct http_source *src = source(NULL);
	unsigned char *want = serve("f.bin", 48 * MiB, 15);
	unsigned char *buf = malloc(128 * 1024);
	struct http_stat st;
	struct http_file *f = open_file(src, "f.bin", &st, NULL);
	size_t off = 0;
	ssize_t n = 0;
	double t0;

	cr_assert_not_null(buf);
	for (; off < 4 * MiB; off += 128 * 1024)	/* the window grows */
		cr_assert_eq(http_file_pread(f, buf, 128 * 1024, off, err,
					     sizeof(err)), 128 * 1024, "%s", err);
	cr_assert_eq(kill(nx.pid, SIGSTOP), 0);
	t0 = now_s();
	/* Blocks fetched already are served; the first missing one fails. */
	while (off < 48 * MiB &&
	       (n = http_file_pread(f, buf, 128 * 1024, off, err,
				    sizeof(err))) > 0) {
		cr_assert_eq(memcmp(buf, want + off, (size_t)n), 0);
		off += (size_t)n;
	}
	cr_assert_eq(n, STORE_IO, "read at %zu: %s", off, err);
	cr_assert_lt(now_s() - t0, 10.0, "%.1f s", now_s() - t0);
	cr_log_info("frozen server: '%s' after %.1f s", err, now_s() - t0);
	http_file_close(f);	/* joins the read-ahead: also bounded */
	cr_assert_lt(now_s() - t0, 10.0, "%.1f s", now_s() - t0);
	free(want);
	free(buf);
	http_source_free(src);
}

/* A sequential reader that pauses for longer than a second while the
 * server drops its connection goes on where it was. */
Test(http, a_sequential_read_resumes_after_an_idle_dropped_connection)
{
	struct http_source *src = source(NULL);
	unsigned char *want = serve("r.bin", 24 * MiB, 18);
	unsigned char *buf = malloc(128 * 1024);
	struct http_stat st;
	struct http_file *f = open_file(src, "r.bin", &st, NULL);
	size_t off = 0;

	cr_assert_not_null(buf);
	for (; off < 24 * MiB; off += 128 * 1024) {
		/* The stream's requests are 1, 2, 4, 8, 16 MiB long: this is
		 * 1 MiB into one of 16 MiB, more than the socket holds. */
		if (off == 16 * MiB) {
			cr_assert_eq(nginx_fixture_restart(&nx), 0);
			nanosleep(&(struct timespec){ 1, 200000000 }, NULL);
		}
		cr_assert_eq(http_file_pread(f, buf, 128 * 1024, off, err,
					     sizeof(err)), 128 * 1024,
			     "at %zu: %s", off, err);
		cr_assert_eq(memcmp(buf, want + off, 128 * 1024), 0,
			     "other bytes at %zu", off);
	}
	free(want);
	free(buf);
	http_file_close(f);
	http_source_free(src);
}

Test(http, a_server_that_never_answers_times_out)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	struct http_source *src = NULL;
	struct http_stat st;
	char url[64];
	double t0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* The kernel completes the handshake; nobody ever reads or writes. */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	cr_assert_eq(http_source_new(url, NULL, NULL, &src, err, sizeof(err)),
		     STORE_OK);
	t0 = now_s();
	cr_assert_eq(http_stat(src, "x.bin", &st, err, sizeof(err)), STORE_IO);
	cr_assert_lt(now_s() - t0, 10.0);
	cr_log_info("hung server: '%s' after %.1f s", err, now_s() - t0);
	http_source_free(src);
	close(fd);
}

/* ---- secrets ----------------------------------------------------------------------------------- */

static void assert_no_secret(const char *text)
{
	cr_assert_null(strstr(text, NGINX_SECRET), "secret in '%s'", text);
	cr_assert_null(strstr(text, "pw-hidden"), "password in '%s'", text);
}

Test(http, secrets_never_reach_messages_or_stderr)
{
	const char *const hdrs[] = { "Authorization: Bearer " NGINX_SECRET,
				     "X-Api-Key: " NGINX_SECRET, NULL };
	char url[128], path[PATH_MAX], captured[65536];
	struct http_source *src = NULL;
	unsigned char *v1 = serve("secret/v.bin", MiB, 13), buf[4096];
	struct http_stat st;
	struct http_file *f;
	int saved, fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/stderr.txt", nx.dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);

	snprintf(url, sizeof(url), "http://user:pw-hidden@127.0.0.1:%d/", nx.port);
	cr_assert_eq(http_source_new(url, hdrs, NULL, &src, err, sizeof(err)),
		     STORE_OK);
	cr_assert_eq(http_stat(src, "secret/missing", &st, err, sizeof(err)),
		     STORE_NOT_FOUND);
	assert_no_secret(err);
	cr_assert_eq(http_stat(src, "err500", &st, err, sizeof(err)), STORE_IO);
	assert_no_secret(err);
	cr_assert_eq(http_stat(src, "../x", &st, err, sizeof(err)), STORE_INVALID);
	assert_no_secret(err);
	cr_assert_eq(http_stat(src, "secret/v.bin", &st, err, sizeof(err)),
		     STORE_OK, "%s", err);
	cr_assert_eq(http_file_open(src, "secret/v.bin", &st, NULL, &f, err,
				    sizeof(err)), STORE_OK);
	free(serve("secret/v.bin", MiB, 14));
	touch_later("secret/v.bin", 50);
	n = http_file_pread(f, buf, 4096, 0, err, sizeof(err));
	cr_assert_eq(n, STORE_CORRUPT);
	assert_no_secret(err);
	nginx_fixture_stop(&nx);
	n = http_file_pread(f, buf, 4096, 8192, err, sizeof(err));
	cr_assert_eq(n, STORE_IO);
	assert_no_secret(err);
	http_file_close(f);
	http_source_free(src);

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, captured, sizeof(captured) - 1, 0);
	cr_assert_geq(n, 0);
	captured[n] = '\0';
	close(fd);
	assert_no_secret(captured);
	free(v1);
}
