/*
 * test_blockcache.c - the on-disk block cache: put and get, persistence
 * across close and open, LRU eviction under max_bytes, damaged files as
 * misses, the free-space floor, one owner per directory, and many
 * threads at once.
 *
 * Each test gets its own temporary directory; the cache lives in
 * cache/ below it.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlfs/blockcache.h"

#define B BLOCKCACHE_BLOCK
#define FILE_BYTES (B + 56)	/* a full block and its header */
#define NO_FLOOR 0

static char tmp[256], dir[512];
static char err[512];

static void setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/mlfs-bc-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(dir, sizeof(dir), "%s/cache", tmp);
	err[0] = '\0';
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(blockcache, .init = setup, .fini = teardown, .timeout = 120);

/* A block whose bytes depend on @seed. */
static void fill(unsigned char *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 9));
}

static struct blockcache *open_cache(uint64_t max, uint64_t free_min)
{
	struct blockcache *bc = NULL;

	cr_assert_eq(blockcache_open(dir, max, free_min, &bc, err, sizeof(err)),
		     STORE_OK, "%s", err);
	return bc;
}

static void put_block(struct blockcache *bc, const char *key, uint64_t i,
		      unsigned seed, size_t len)
{
	unsigned char *p = malloc(len);

	cr_assert_not_null(p);
	fill(p, len, seed);
	cr_assert_eq(blockcache_put(bc, key, i, p, len, err, sizeof(err)),
		     STORE_OK, "%s", err);
	free(p);
}

/* 1 when block @i of @key is cached with the bytes of @seed. */
static int has_block(struct blockcache *bc, const char *key, uint64_t i,
		     unsigned seed, size_t len)
{
	unsigned char *want = malloc(len), *got = malloc(len);
	int ok;

	cr_assert(want && got);
	fill(want, len, seed);
	ok = blockcache_get(bc, key, i, got, len) == STORE_OK &&
	     memcmp(want, got, len) == 0;
	free(want);
	free(got);
	return ok;
}

/* Block files in the cache directory, and the sum of their sizes. */
static int count_files(uint64_t *bytes)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	char p[PATH_MAX];
	int n = 0;

	cr_assert_not_null(d);
	*bytes = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		cr_assert_eq(stat(p, &st), 0);
		*bytes += (uint64_t)st.st_size;
		n++;
	}
	closedir(d);
	return n;
}

/* Path of the only block file in the directory into @out. */
static void only_block_file(char *out, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(out, len, "%s/%s", dir, e->d_name);
		n++;
	}
	closedir(d);
	cr_assert_eq(n, 1);
}

Test(blockcache, put_then_get_returns_the_same_bytes)
{
	struct blockcache *bc = open_cache(64ull << 20, NO_FLOOR);
	struct blockcache_stats st;

	put_block(bc, "http://h/a\n\"e1\"", 0, 1, B);
	put_block(bc, "http://h/a\n\"e1\"", 1, 2, 1000);	/* a short last block */
	cr_assert(has_block(bc, "http://h/a\n\"e1\"", 0, 1, B));
	cr_assert(has_block(bc, "http://h/a\n\"e1\"", 1, 2, 1000));
	cr_assert(blockcache_contains(bc, "http://h/a\n\"e1\"", 1));
	cr_assert_not(blockcache_contains(bc, "http://h/a\n\"e2\"", 0));
	cr_assert_not(has_block(bc, "http://h/a\n\"e2\"", 0, 1, B),
		      "another key (etag) is another block");
	cr_assert_not(has_block(bc, "http://h/a\n\"e1\"", 2, 1, B));
	blockcache_stats(bc, &st);
	cr_assert_eq(st.blocks, 2);
	cr_assert_eq(st.hits, 2);
	cr_assert_eq(st.bytes, (uint64_t)FILE_BYTES + 1000 + 56);
	blockcache_close(bc);
}

Test(blockcache, get_with_another_length_is_a_miss)
{
	struct blockcache *bc = open_cache(64ull << 20, NO_FLOOR);

	put_block(bc, "k", 0, 1, 1000);
	cr_assert_not(has_block(bc, "k", 0, 1, 999));
	blockcache_close(bc);
}

Test(blockcache, put_refuses_empty_and_oversized_blocks)
{
	struct blockcache *bc = open_cache(64ull << 20, NO_FLOOR);
	static unsigned char big[B + 1];

	cr_assert_eq(blockcache_put(bc, "k", 0, big, 0, err, sizeof(err)),
		     STORE_INVALID);
	cr_assert_eq(blockcache_put(bc, "k", 0, big, B + 1, err, sizeof(err)),
		     STORE_INVALID);
	blockcache_close(bc);
}

Test(blockcache, open_refuses_a_limit_under_one_block)
{
	struct blockcache *bc = NULL;

	cr_assert_eq(blockcache_open(dir, B, 0, &bc, err, sizeof(err)),
		     STORE_INVALID);
	cr_assert_null(bc);
}

Test(blockcache, blocks_survive_close_and_open)
{
	struct blockcache *bc = open_cache(64ull << 20, NO_FLOOR);
	struct blockcache_stats st;

	for (unsigned i = 0; i < 5; i++)
		put_block(bc, "key", i, i, B);
	blockcache_close(bc);

	bc = open_cache(64ull << 20, NO_FLOOR);
	blockcache_stats(bc, &st);
	cr_assert_eq(st.blocks, 5);
	cr_assert_eq(st.bytes, 5ull * FILE_BYTES);
	for (unsigned i = 0; i < 5; i++)
		cr_assert(has_block(bc, "key", i, i, B), "block %u", i);
	blockcache_close(bc);
}

Test(blockcache, a_second_owner_is_refused)
{
	struct blockcache *bc = open_cache(64ull << 20, NO_FLOOR), *bc2 = NULL;

	cr_assert_eq(blockcache_open(dir, 64ull << 20, 0, &bc2, err, sizeof(err)),
		     STORE_BUSY);
	cr_assert(strstr(err, "another process"), "%s", err);
	blockcache_close(bc);
}

Test(blockcache, lru_eviction_keeps_the_total_under_max)
{
	struct blockcache *bc = open_cache(4ull * FILE_BYTES, NO_FLOOR);
	struct blockcache_stats st;
	uint64_t bytes;

	for (unsigned i = 0; i < 4; i++)
		put_block(bc, "k", i, i, B);
	cr_assert(has_block(bc, "k", 0, 0, B));	/* 0 is now the newest */
	put_block(bc, "k", 4, 4, B);		/* evicts 1, the oldest */
	put_block(bc, "k", 5, 5, B);		/* evicts 2 */
	cr_assert(has_block(bc, "k", 0, 0, B));
	cr_assert_not(blockcache_contains(bc, "k", 1));
	cr_assert_not(blockcache_contains(bc, "k", 2));
	cr_assert(has_block(bc, "k", 3, 3, B));
	cr_assert(has_block(bc, "k", 5, 5, B));
	blockcache_stats(bc, &st);
	cr_assert_leq(st.bytes, 4ull * FILE_BYTES);
	cr_assert_eq(st.evictions, 2);
	cr_assert_eq(count_files(&bytes), 4);
	cr_assert_leq(bytes, 4ull * FILE_BYTES);
	blockcache_close(bc);
}

Test(blockcache, reopen_with_a_smaller_limit_trims_oldest_first)
{
	struct blockcache *bc = open_cache(64ull << 20, NO_FLOOR);
	struct timespec ts[2] = { { 0, UTIME_OMIT } };
	uint64_t bytes;

	for (unsigned i = 0; i < 6; i++)
		put_block(bc, "k", i, i, B);
	blockcache_close(bc);
	/* Make the mtimes distinct and ordered: block i is i seconds old. */
	{
		DIR *d = opendir(dir);
		struct dirent *e;
		char p[PATH_MAX];

		cr_assert_not_null(d);
		while ((e = readdir(d))) {
			size_t n = strlen(e->d_name);

			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			ts[1].tv_sec = 1700000000 + (e->d_name[n - 1] - '0');
			ts[1].tv_nsec = 0;
			cr_assert_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
		}
		closedir(d);
	}
	bc = open_cache(3ull * FILE_BYTES, NO_FLOOR);
	cr_assert_eq(count_files(&bytes), 3);
	for (unsigned i = 0; i < 3; i++)
		cr_assert_not(blockcache_contains(bc, "k", i), "old block %u", i);
	for (unsigned i = 3; i < 6; i++)
		cr_assert(has_block(bc, "k", i, i, B), "new block %u", i);
	blockcache_close(bc);
}

Test(blockcache, a_truncated_block_file_is_a_miss_and_removed)
{
	struct blockcache *bc = open_cache(64ull << 20, NO_FLOOR);
	struct blockcache_stats st;
	char path[PATH_MAX];
	uint64_t bytes;

	put_block(bc, "k", 7, 7, B);
	only_block_file(path, sizeof(path));
	cr_assert_eq(truncate(path, 1000 + 56), 0);
	cr_assert_not(has_block(bc, "k", 7, 7, B));
	cr_assert_eq(count_files(&bytes), 0, "the damaged file is removed");
	blockcache_stats(bc, &st);
	cr_assert_eq(st.blocks, 0);
	cr_assert_eq(st.bytes, 0);
	put_block(bc, "k", 7, 7, B);	/* and can be stored again */
	cr_assert(has_block(bc, "k", 7, 7, B));
	blockcache_close(bc);
}

Test(blockcache, a_flipped_byte_is_a_miss)
{
	struct blockcache *bc = open_cache(64ull << 20, NO_FLOOR);
	char path[PATH_MAX];
	unsigned char c;
	int fd;

	put_block(bc, "k", 0, 3, B);
	only_block_file(path, sizeof(path));
	fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &c, 1, 56 + 5000), 1);
	c ^= 0x40;
	cr_assert_eq(pwrite(fd, &c, 1, 56 + 5000), 1);
	close(fd);
	cr_assert_not(has_block(bc, "k", 0, 3, B));
	blockcache_close(bc);
}

Test(blockcache, damaged_and_temporary_files_are_dropped_at_open)
{
	struct blockcache *bc = open_cache(64ull << 20, NO_FLOOR);
	struct blockcache_stats st;
	char path[PATH_MAX], tmpf[PATH_MAX + 32];
	uint64_t bytes;
	FILE *f;

	put_block(bc, "k", 0, 3, B);
	blockcache_close(bc);
	only_block_file(path, sizeof(path));
	cr_assert_eq(truncate(path, 10), 0);	/* not even a header */
	snprintf(tmpf, sizeof(tmpf), "%s/.tmp-99999-1", dir);
	cr_assert_not_null(f = fopen(tmpf, "w"));
	fclose(f);

	bc = open_cache(64ull << 20, NO_FLOOR);
	blockcache_stats(bc, &st);
	cr_assert_eq(st.blocks, 0);
	cr_assert_eq(count_files(&bytes), 0);
	cr_assert_neq(access(tmpf, F_OK), 0, "a crashed put's temporary is removed");
	blockcache_close(bc);
}

Test(blockcache, no_writes_below_the_free_space_floor)
{
	struct blockcache *bc = open_cache(64ull << 20, NO_FLOOR);
	struct blockcache_stats st;
	unsigned char *p = malloc(B);
	uint64_t bytes;

	cr_assert_not_null(p);
	put_block(bc, "k", 0, 0, B);
	blockcache_close(bc);

	/* A floor above any disk's free space: every put is refused, after
	 * evicting what was there, and gets still answer (misses). */
	bc = open_cache(64ull << 20, UINT64_MAX / 2);
	fill(p, B, 1);
	cr_assert_eq(blockcache_put(bc, "k", 1, p, B, err, sizeof(err)),
		     STORE_TOO_BIG);
	cr_assert(strstr(err, "free"), "%s", err);
	cr_assert_not(has_block(bc, "k", 1, 1, B));
	cr_assert_eq(count_files(&bytes), 0);
	blockcache_stats(bc, &st);
	cr_assert_eq(st.refused, 1);
	cr_assert_eq(st.evictions, 1, "the old block went first");
	blockcache_close(bc);
	free(p);
}

struct worker {
	struct blockcache *bc;
	unsigned id;
	int bad;
};

/* Puts and gets blocks shared with the other workers, checking bytes. */
static void *worker_run(void *arg)
{
	struct worker *w = arg;
	unsigned char *p = malloc(B), *want = malloc(B);

	for (unsigned round = 0; p && want && round < 200; round++) {
		unsigned i = (round * 7 + w->id * 3) % 24;
		size_t len = B - i * 100;

		fill(want, len, i);
		if (blockcache_get(w->bc, "shared", i, p, len) == STORE_OK) {
			if (memcmp(p, want, len) != 0)
				w->bad++;
		} else if (blockcache_put(w->bc, "shared", i, want, len, NULL, 0) !=
			   STORE_OK) {
			w->bad++;
		}
	}
	free(p);
	free(want);
	return NULL;
}

Test(blockcache, threads_share_one_cache)
{
	struct blockcache *bc = open_cache(10ull * FILE_BYTES, NO_FLOOR);
	struct worker w[6];
	pthread_t t[6];
	struct blockcache_stats st;
	uint64_t bytes;

	for (unsigned i = 0; i < 6; i++) {
		w[i] = (struct worker){ bc, i, 0 };
		cr_assert_eq(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (unsigned i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(w[i].bad, 0, "worker %u", i);
	}
	blockcache_stats(bc, &st);
	cr_assert_leq(st.bytes, 10ull * FILE_BYTES);
	cr_assert_gt(st.hits, 0);
	count_files(&bytes);
	cr_assert_eq(bytes, st.bytes, "the index matches the directory");
	blockcache_close(bc);
}

Test(blockcache, an_async_put_is_found_at_once_and_on_disk_after_close)
{
	struct blockcache *bc = open_cache(64ull << 20, NO_FLOOR);
	unsigned char *p = malloc(BLOCKCACHE_BLOCK);
	uint64_t bytes;

	cr_assert_not_null(p);
	fill(p, BLOCKCACHE_BLOCK, 5);
	cr_assert_eq(blockcache_put_async(bc, "k", 3, p, BLOCKCACHE_BLOCK),
		     STORE_OK);
	memset(p, 0, BLOCKCACHE_BLOCK);	/* the queue has its own copy */
	cr_expect(blockcache_contains(bc, "k", 3));
	cr_expect(has_block(bc, "k", 3, 5, BLOCKCACHE_BLOCK),
		  "queued or written, a get finds the bytes");
	cr_expect_eq(blockcache_put_async(bc, "k", 3, p, 0), STORE_INVALID);
	blockcache_close(bc);	/* writes what is queued */
	cr_expect_eq(count_files(&bytes), 1);
	bc = open_cache(64ull << 20, NO_FLOOR);
	cr_expect(has_block(bc, "k", 3, 5, BLOCKCACHE_BLOCK), "after reopen");
	blockcache_close(bc);
	free(p);
}

Test(blockcache, async_puts_beyond_the_queue_are_dropped_never_waited_for)
{
	struct blockcache *bc = open_cache(1ull << 30, NO_FLOOR);
	struct blockcache_stats st;
	unsigned char *p = malloc(BLOCKCACHE_BLOCK);
	unsigned n = 4 * BLOCKCACHE_PENDING_MAX / BLOCKCACHE_BLOCK;
	uint64_t bytes;
	int files;

	cr_assert_not_null(p);
	for (unsigned i = 0; i < n; i++) {
		int rc;

		fill(p, BLOCKCACHE_BLOCK, i);
		rc = blockcache_put_async(bc, "flood", i, p, BLOCKCACHE_BLOCK);
		cr_assert(rc == STORE_OK || rc == STORE_BUSY, "put %u: %d", i, rc);
	}
	blockcache_stats(bc, &st);
	blockcache_close(bc);
	files = count_files(&bytes);
	/* every block is either on disk or counted as dropped */
	cr_expect_eq((uint64_t)files + st.dropped, n, "%d files, %llu dropped",
		     files, (unsigned long long)st.dropped);
	bc = open_cache(1ull << 30, NO_FLOOR);
	for (unsigned i = 0; i < n; i++)
		if (blockcache_contains(bc, "flood", i))
			cr_expect(has_block(bc, "flood", i, i, BLOCKCACHE_BLOCK),
				  "block %u", i);
	blockcache_close(bc);
	free(p);
}
