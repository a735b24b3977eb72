/*
 * http_bench.c - throughput and time to first byte of sequential
 * http_file_pread() against `curl -o /dev/null` of the same file, both
 * from a private nginx on 127.0.0.1 (nginx_fixture). Not a test: it
 * asserts nothing; scripts/bench reads its output and applies targets.
 *
 *   http_bench [--size-mib N] [--runs N] [--only NAME]
 *
 * Defaults: 1024 MiB, 3 runs, every series; --only runs curl and the
 * series NAME (e.g. pread_128k), for profiling.
 *
 * The file is generated pseudo-random data (each 8-byte word a hash of
 * its offset, so any read can be checked cheaply: the first and last
 * word of every chunk are). Every pread run uses a new source and opens
 * the file with the pin a first http_stat() gave, as the mount does with
 * a registered dataset version: its first read makes the connection,
 * as curl's does. A run with a block cache gets a new, empty cache.
 *
 * Output: one measurement per line, "name value unit":
 *   curl.run1.mibps 2011.3 MiB/s      curl.run1.ttfb 0.412 ms
 *   pread_1m.run1.mibps ...           pread_1m.run1.ttfb ...
 *   pread_1m.mibps_ratio 0.93 x       (median over median curl)
 *   pread_1m.mibps_ratio_paired 0.95 x (median of each run over a curl
 *                                      run just before it)
 *   pread_1m.ttfb_ratio 1.10 x
 *   pread_1m.first_read_ratio 1.05 x  (over `curl -r 0-1048575`'s total)
 * for pread_1m, pread_128k, pread_1m_cache, pread_128k_cache. A failed
 * measurement prints "name.error 1 flag" and a message on stderr.
 * The TTFB of a pread run is the time its first pread took to return,
 * so it includes the transfer of the whole first chunk: curl_first_1m
 * and curl_first_128k time curl fetching just those bytes, for a fair
 * ratio next to the one against curl's time to its first byte.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlfs/blockcache.h"
#include "mlfs/http.h"
#include "mlfs/parse.h"
#include "nginx_fixture.h"

#define MiB (1024u * 1024u)
#define MAX_RUNS 16

static struct nginx_fixture nx;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The 8-byte word at byte offset 8 * @i of the file (splitmix64). */
static uint64_t word_at(uint64_t i)
{
	uint64_t z = i + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int make_file(const char *path, uint64_t size)
{
	size_t cap = 4 * MiB;
	uint64_t *buf = malloc(cap);
	FILE *f = fopen(path, "wb");
	int rc = -1;

	if (!buf || !f)
		goto out;
	for (uint64_t off = 0; off < size; off += cap) {
		size_t n = size - off < cap ? (size_t)(size - off) : cap;

		for (size_t i = 0; i < cap / 8; i++)
			buf[i] = word_at(off / 8 + i);
		if (fwrite(buf, 1, n, f) != n)
			goto out;
	}
	rc = 0;
out:
	if (f && fclose(f) != 0)
		rc = -1;
	free(buf);
	return rc;
}

/* 1 when the words at both ends of [off, off + n) are right (n >= 8,
 * off a multiple of 8). */
static int chunk_ok(const unsigned char *p, uint64_t off, size_t n)
{
	uint64_t a, b;

	memcpy(&a, p, 8);
	memcpy(&b, p + ((n - 8) & ~(size_t)7), 8);
	return a == word_at(off / 8) && b == word_at((off + ((n - 8) & ~7ull)) / 8);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double s[MAX_RUNS];

	memcpy(s, v, (size_t)n * sizeof(*v));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* One curl run of the first @range bytes (0: all): MiB/s and TTFB in
 * ms; for a range, *ttfb_ms is the time of the whole request. 0 or -1. */
static int curl_run(const char *url, uint64_t size, uint64_t range,
		    double *mibps, double *ttfb_ms)
{
	char cmd[512], out[128] = "", r[64] = "";
	double ttfb = 0, total = 0, got = 0;
	FILE *p;

	if (range) {
		snprintf(r, sizeof(r), "-r 0-%llu ",
			 (unsigned long long)(range - 1));
		size = range;
	}
	snprintf(cmd, sizeof(cmd), "curl -s %s-o /dev/null -w "
		 "'%%{time_starttransfer} %%{time_total} %%{size_download}' '%s'",
		 r, url);
	if (!(p = popen(cmd, "r")))
		return -1;
	if (!fgets(out, sizeof(out), p))
		out[0] = '\0';
	if (pclose(p) != 0)
		return -1;
	{
		char *e1, *e2;

		ttfb = strtod(out, &e1);
		total = strtod(e1, &e2);
		got = strtod(e2, NULL);
	}
	if (total <= 0 || got != (double)size)
		return -1;
	*mibps = (double)size / MiB / total;
	*ttfb_ms = (range ? total : ttfb) * 1000;
	return 0;
}

/* One pread run over the whole file in @chunk-sized reads. 0 or -1. */
static int pread_run(const struct http_stat *pin, uint64_t size, size_t chunk,
		     int cached, double *mibps, double *ttfb_ms)
{
	struct http_source *src = NULL;
	struct http_file *f = NULL;
	struct blockcache *bc = NULL;
	unsigned char *buf = malloc(chunk);
	char err[512] = "", dir[PATH_MAX], cmd[PATH_MAX + 16];
	double t0, t1 = 0;
	uint64_t off = 0;
	int rc = -1;

	snprintf(dir, sizeof(dir), "%s/cache", nx.dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (!buf || system(cmd) != 0)
		goto out;
	if (cached && blockcache_open(dir, size + 64 * MiB, 0, &bc, err,
				      sizeof(err)) != STORE_OK)
		goto out;
	if (http_source_new(nx.base_url, NULL, NULL, &src, err, sizeof(err)) ||
	    http_file_open(src, "bench.bin", pin, bc, &f, err, sizeof(err)))
		goto out;
	t0 = now_s();
	while (off < size) {
		ssize_t n = http_file_pread(f, buf, chunk, off, err, sizeof(err));

		if (off == 0)
			t1 = now_s();
		if (n <= 0 || (size_t)n < (size - off < chunk ? size - off : chunk)) {
			if (n >= 0)
				snprintf(err, sizeof(err), "short read at %llu",
					 (unsigned long long)off);
			goto out;
		}
		if (n >= 8 && !chunk_ok(buf, off, (size_t)n)) {
			snprintf(err, sizeof(err), "wrong bytes at %llu",
				 (unsigned long long)off);
			goto out;
		}
		off += (uint64_t)n;
	}
	*mibps = (double)size / MiB / (now_s() - t0);
	*ttfb_ms = (t1 - t0) * 1000;
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "http_bench: %s\n", err);
	http_file_close(f);
	http_source_free(src);
	blockcache_close(bc);
	system(cmd);
	free(buf);
	return rc;
}

struct series {
	const char *name;
	size_t chunk;		/* 0: curl */
	int cached;
	uint64_t range;		/* curl: only the first bytes */
};

int main(int argc, char **argv)
{
	static const struct series series[] = {
		{ "curl", 0, 0, 0 },
		{ "curl_first_1m", 0, 0, MiB },
		{ "curl_first_128k", 0, 0, 128 * 1024 },
		{ "pread_1m", MiB, 0, 0 },
		{ "pread_128k", 128 * 1024, 0, 0 },
		{ "pread_1m_cache", MiB, 1, 0 },
		{ "pread_128k_cache", 128 * 1024, 1, 0 },
	};
	double curl_mibps = 0, curl_ttfb = 0, first_1m = 0, first_128k = 0;
	int64_t size_mib = 1024, runs = 3;
	uint64_t size;
	struct http_source *src = NULL;
	struct http_stat pin;
	char path[PATH_MAX + 16], url[128], err[512] = "";
	const char *only = NULL;
	int rc = 1;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--only") == 0) {
			only = argv[i + 1];
			continue;
		}
		int64_t *v = strcmp(argv[i], "--size-mib") == 0 ? &size_mib :
			      strcmp(argv[i], "--runs") == 0 ? &runs : NULL;

		if (!v || parse_int64(argv[i + 1], strlen(argv[i + 1]), v) ||
		    *v <= 0 || *v > 1 << 20 || (v == &runs && *v > MAX_RUNS)) {
			fprintf(stderr, "usage: http_bench [--size-mib N] "
				"[--runs 1..%d] [--only NAME]\n", MAX_RUNS);
			return 2;
		}
	}
	size = (uint64_t)size_mib * MiB;
	if (nginx_fixture_start(&nx) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/bench.bin", nx.www);
	snprintf(url, sizeof(url), "%s/bench.bin", nx.base_url);
	if (make_file(path, size) < 0) {
		fprintf(stderr, "http_bench: cannot write '%s'\n", path);
		goto out;
	}
	if (http_source_new(nx.base_url, NULL, NULL, &src, err, sizeof(err)) ||
	    http_stat(src, "bench.bin", &pin, err, sizeof(err))) {
		fprintf(stderr, "http_bench: %s\n", err);
		goto out;
	}
	/* Warm the page cache, so the first run is not the disk's. */
	curl_run(url, size, 0, &curl_mibps, &curl_ttfb);
	for (size_t s = 0; s < sizeof(series) / sizeof(series[0]); s++) {
		const struct series *se = &series[s];
		double mibps[MAX_RUNS], ttfb[MAX_RUNS], pair[MAX_RUNS];
		int ok = 1;

		if (only && se->chunk && strcmp(only, se->name) != 0)
			continue;
		for (int r = 0; r < (int)runs && ok; r++) {
			double c_mibps = 0, c_ttfb;

			/* Each pread run next to a curl run of its own: the
			 * machine's load drifts between series. */
			if (se->chunk &&
			    curl_run(url, size, 0, &c_mibps, &c_ttfb) != 0)
				c_mibps = 0;
			ok = se->chunk ? pread_run(&pin, size, se->chunk,
						   se->cached, &mibps[r],
						   &ttfb[r]) == 0
				       : curl_run(url, size, se->range,
						  &mibps[r], &ttfb[r]) == 0;
			if (!ok)
				break;
			printf("%s.run%d.mibps %.1f MiB/s\n", se->name, r + 1,
			       mibps[r]);
			printf("%s.run%d.ttfb %.3f ms\n", se->name, r + 1, ttfb[r]);
			pair[r] = c_mibps > 0 ? mibps[r] / c_mibps : 0;
			if (se->chunk)
				printf("%s.run%d.mibps_ratio_paired %.3f x\n",
				       se->name, r + 1, pair[r]);
			fflush(stdout);
		}
		if (!ok) {
			printf("%s.error 1 flag\n", se->name);
			continue;
		}
		printf("%s.mibps %.1f MiB/s\n", se->name, median(mibps, (int)runs));
		printf("%s.ttfb %.3f ms\n", se->name, median(ttfb, (int)runs));
		if (se->range == MiB) {
			first_1m = median(ttfb, (int)runs);
		} else if (se->range) {
			first_128k = median(ttfb, (int)runs);
		} else if (se->chunk == 0) {
			curl_mibps = median(mibps, (int)runs);
			curl_ttfb = median(ttfb, (int)runs);
		} else if (curl_mibps > 0 && curl_ttfb > 0) {
			double first = se->chunk == MiB ? first_1m : first_128k;

			printf("%s.mibps_ratio %.3f x\n", se->name,
			       median(mibps, (int)runs) / curl_mibps);
			printf("%s.mibps_ratio_paired %.3f x\n", se->name,
			       median(pair, (int)runs));
			printf("%s.ttfb_ratio %.3f x\n", se->name,
			       median(ttfb, (int)runs) / curl_ttfb);
			if (first > 0)	/* against curl's time for those bytes */
				printf("%s.first_read_ratio %.3f x\n", se->name,
				       median(ttfb, (int)runs) / first);
		}
		fflush(stdout);
	}
	rc = 0;
out:
	http_source_free(src);
	nginx_fixture_destroy(&nx);
	return rc;
}
