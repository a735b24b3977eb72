/*
 * blockcache.c - the on-disk block cache (contract: mlfs/blockcache.h).
 *
 * State: an index of the block files in the directory (a chained hash
 * table by file name) threaded on an LRU list (head = most recently
 * used), the sum of their sizes, and counters, all under one mutex.
 *
 * A put goes through these states:
 *
 *   (absent) --make_room()--> RESERVED: LRU blocks evicted until the
 *       block fits under max_bytes and the free-space floor; its bytes
 *       are added to the total before anything is written, so two puts
 *       at once cannot both squeeze in
 *   RESERVED --write_block_file()--> ON DISK under .tmp-PID-N, renamed
 *       to its final name (no fsync: a block torn by a power loss fails
 *       its length or crc check and is dropped, which is all a cache
 *       needs)
 *   ON DISK --index_insert()--> INDEXED, or the reservation is returned
 *       when the write failed or a racing put indexed it first
 *
 * Asynchronous puts (the HTTP reader's) queue a copy of the block, at
 * most BLOCKCACHE_PENDING_MAX bytes, for one writer thread that puts
 * them as above; a queued block is served from memory by get.
 *
 * Invariants
 *  1. total == sum of the sizes of indexed entries + open reservations
 *     <= max_bytes.
 *  2. A get reads its file outside the mutex; an eviction meanwhile only
 *     unlinks the name, so the reader either has the whole file open or
 *     misses. Every byte served has passed the header and crc checks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "mlfs/blockcache.h"

#define MAGIC "mlfsblk1"
#define NAME_LEN (64 + 1 + 16)	/* SHA256HEX-INDEXHEX */
#define TMP_PREFIX ".tmp-"
#define LOCK_NAME ".lock"

struct blk_header {
	char magic[8];
	uint32_t len;		/* data bytes after the header */
	uint32_t crc;		/* crc32 of the data */
	uint64_t index;
	unsigned char key_sha[32];
};				/* native byte order: the cache never moves */

#define HDR_LEN sizeof(struct blk_header)

struct entry {
	char name[NAME_LEN + 1];
	uint64_t bytes;			/* file size */
	int64_t mtime_ns;		/* only used while rebuilding */
	struct entry *hnext;		/* hash chain */
	struct entry *prev, *next;	/* LRU list */
};

/* A block waiting for the writer thread (blockcache_put_async). */
struct pending {
	struct pending *next;
	unsigned char *data;	/* owned: BLOCKCACHE_BLOCK bytes or fewer */
	uint64_t index;
	size_t len;
	char key[];
};

struct blockcache {
	int dfd;
	int lock_fd;
	uint64_t max_bytes, free_min;
	pthread_mutex_t mu;
	struct entry **buckets;
	size_t nbuckets;		/* a power of two */
	struct entry lru;		/* sentinel: lru.next is the newest */
	struct blockcache_stats st;	/* bytes is invariant 1's total */
	/* Asynchronous puts: a queue under mu, drained by one thread. */
	struct pending *pq_head, *pq_tail;
	size_t pending_bytes;
	pthread_cond_t pq_cond;
	pthread_t writer;
	int writer_started;
	int closing;
};

static atomic_uint tmp_counter;

/* strerror(@e) with its first letter lowercased, as messages want it */
#define ERRSTR(e) lc_strerror((e), (char[96]){ 0 }, 96)

static const char *lc_strerror(int e, char *buf, size_t len)
{
	snprintf(buf, len, "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

#define SET_ERR(...) \
	do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); } while (0)

/* ---- names ----------------------------------------------------------------- */

static void key_sha256(const char *key, unsigned char sha[32])
{
	unsigned int n = 32;

	/* EVP_Digest fails only without memory for its context; a zeroed
	 * hash then names a block no get will find intact. */
	if (!EVP_Digest(key, strlen(key), sha, &n, EVP_sha256(), NULL))
		memset(sha, 0, 32);
}

static void block_name(const unsigned char sha[32], uint64_t index,
		       char name[NAME_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		name[2 * i] = hex[sha[i] >> 4];
		name[2 * i + 1] = hex[sha[i] & 15];
	}
	snprintf(name + 64, NAME_LEN + 1 - 64, "-%016llx",
		 (unsigned long long)index);
}

static int name_is_block(const char *name)
{
	size_t i;

	for (i = 0; i < NAME_LEN; i++) {
		char c = name[i];

		if (i == 64 ? c != '-' :
		    !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	return name[i] == '\0';
}

/* ---- the index (caller holds mu) ---------------------------------------------- */

static size_t name_hash(const char *name)
{
	size_t h = 1469598103934665603ull;

	while (*name)
		h = (h ^ (unsigned char)*name++) * 1099511628211ull;
	return h;
}

static struct entry *index_find(struct blockcache *bc, const char *name)
{
	struct entry *e = bc->buckets[name_hash(name) & (bc->nbuckets - 1)];

	while (e && strcmp(e->name, name) != 0)
		e = e->hnext;
	return e;
}

/* Doubles the bucket array when it is full; on ENOMEM chains get longer. */
static void index_grow(struct blockcache *bc)
{
	size_t n = bc->nbuckets * 2;
	struct entry **b;

	if (bc->st.blocks < bc->nbuckets || !(b = calloc(n, sizeof(*b))))
		return;
	for (size_t i = 0; i < bc->nbuckets; i++) {
		struct entry *e = bc->buckets[i], *next;

		for (; e; e = next) {
			size_t h = name_hash(e->name) & (n - 1);

			next = e->hnext;
			e->hnext = b[h];
			b[h] = e;
		}
	}
	free(bc->buckets);
	bc->buckets = b;
	bc->nbuckets = n;
}

static void lru_unlink(struct entry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void lru_push_front(struct blockcache *bc, struct entry *e)
{
	e->prev = &bc->lru;
	e->next = bc->lru.next;
	bc->lru.next->prev = e;
	bc->lru.next = e;
}

/* Adds @e (its bytes already counted in the total) as the newest. */
static void index_insert(struct blockcache *bc, struct entry *e)
{
	size_t h;

	index_grow(bc);
	h = name_hash(e->name) & (bc->nbuckets - 1);
	e->hnext = bc->buckets[h];
	bc->buckets[h] = e;
	lru_push_front(bc, e);
	bc->st.blocks++;
}

/* Unlinks @e's file, takes it out of the index and the total, frees it. */
static void index_drop(struct blockcache *bc, struct entry *e)
{
	struct entry **p = &bc->buckets[name_hash(e->name) & (bc->nbuckets - 1)];

	while (*p != e)
		p = &(*p)->hnext;
	*p = e->hnext;
	lru_unlink(e);
	unlinkat(bc->dfd, e->name, 0);
	bc->st.bytes -= e->bytes;
	bc->st.blocks--;
	free(e);
}

static int evict_oldest(struct blockcache *bc)
{
	if (bc->lru.prev == &bc->lru)
		return 0;
	index_drop(bc, bc->lru.prev);
	bc->st.evictions++;
	return 1;
}

static uint64_t free_bytes(struct blockcache *bc)
{
	struct statvfs sv;

	if (fstatvfs(bc->dfd, &sv) < 0)
		return 0;	/* unknown: write nothing rather than fill a disk */
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/*
 * Evicts until @need more bytes fit under max_bytes and leave free_min
 * free on the filesystem, then reserves them. STORE_OK, or STORE_TOO_BIG
 * with nothing reserved when even an empty cache would not do.
 */
static int make_room(struct blockcache *bc, uint64_t need)
{
	while (bc->st.bytes + need > bc->max_bytes)
		if (!evict_oldest(bc))
			return STORE_TOO_BIG;	/* reservations of other puts */
	while (free_bytes(bc) < bc->free_min + need)
		if (!evict_oldest(bc))
			return STORE_TOO_BIG;
	bc->st.bytes += need;
	return STORE_OK;
}

/* ---- block files ------------------------------------------------------------ */

/* Writes @hdr and @buf to a temporary and renames it to @name: 0 or -errno. */
static int write_block_file(struct blockcache *bc, const char *name,
			    const struct blk_header *hdr, const void *buf)
{
	char tmp[64];
	struct iovec iov[2] = {
		{ (void *)hdr, HDR_LEN }, { (void *)buf, hdr->len },
	};
	size_t total = HDR_LEN + hdr->len;
	ssize_t n;
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%ld-%u", (long)getpid(),
		 atomic_fetch_add(&tmp_counter, 1));
	fd = openat(bc->dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
				  O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	/* A regular file takes a 256 KiB writev whole or fails; a short
	 * count means a full disk. */
	n = writev(fd, iov, 2);
	if (n < 0)
		rc = -errno;
	else if ((size_t)n != total)
		rc = -ENOSPC;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && renameat(bc->dfd, tmp, bc->dfd, name) < 0)
		rc = -errno;
	if (rc)
		unlinkat(bc->dfd, tmp, 0);
	return rc;
}

/* Reads and checks the file @name holding @len bytes: 0, or -1 if bad. */
static int read_block_file(struct blockcache *bc, const char *name,
			   const unsigned char sha[32], uint64_t index,
			   void *buf, size_t len)
{
	struct blk_header hdr;
	struct iovec iov[2] = { { &hdr, HDR_LEN }, { buf, len } };
	struct stat st;
	int fd, rc = -1;

	fd = openat(bc->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != HDR_LEN + len)
		goto out_close;
	if (preadv(fd, iov, 2, 0) != (ssize_t)(HDR_LEN + len))
		goto out_close;
	if (memcmp(hdr.magic, MAGIC, 8) != 0 || hdr.len != len ||
	    hdr.index != index || memcmp(hdr.key_sha, sha, 32) != 0)
		goto out_close;
	if (hdr.crc != (uint32_t)crc32(0L, buf, (uInt)len))
		goto out_close;
	rc = 0;
out_close:
	close(fd);
	return rc;
}

/* ---- pending blocks ------------------------------------------------------------ */

/* The queued block @index of @key, or NULL; mu held. */
static struct pending *pending_find(struct blockcache *bc, const char *key,
				    uint64_t index)
{
	for (struct pending *p = bc->pq_head; p; p = p->next)
		if (p->index == index && strcmp(p->key, key) == 0)
			return p;
	return NULL;
}

/* Copies a queued block of exactly @len bytes into @buf: 1, else 0; mu held. */
static int pending_copy(struct blockcache *bc, const char *key, uint64_t index,
			void *buf, size_t len)
{
	struct pending *p = pending_find(bc, key, index);

	if (!p || p->len != len)
		return 0;
	memcpy(buf, p->data, len);
	return 1;
}

/*
 * The writer: puts queued blocks in order until the cache closes. A
 * block stays in the queue while it is written, so a get meanwhile still
 * finds it.
 */
static void *writer_main(void *arg)
{
	struct blockcache *bc = arg;
	struct sched_param idle = { 0 };
	struct pending *p;

	/* The cache gets the CPU's idle time only: readers come first (a
	 * full queue drops blocks rather than slow them). */
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);

	pthread_mutex_lock(&bc->mu);
	for (;;) {
		while (!bc->pq_head && !bc->closing)
			pthread_cond_wait(&bc->pq_cond, &bc->mu);
		if (!bc->pq_head)
			break;	/* closing, and everything written */
		p = bc->pq_head;
		pthread_mutex_unlock(&bc->mu);
		blockcache_put(bc, p->key, p->index, p->data, p->len, NULL, 0);
		pthread_mutex_lock(&bc->mu);
		bc->pq_head = p->next;
		if (!bc->pq_head)
			bc->pq_tail = NULL;
		bc->pending_bytes -= p->len;
		free(p->data);
		free(p);
	}
	pthread_mutex_unlock(&bc->mu);
	return NULL;
}

/* Queues @buf (malloc'd, taken: freed when not queued). */
static int queue_block(struct blockcache *bc, const char *key, uint64_t index,
		       void *buf, size_t len)
{
	size_t klen = strlen(key);
	struct pending *p;
	int rc = STORE_OK;

	if (len == 0 || len > BLOCKCACHE_BLOCK) {
		free(buf);
		return STORE_INVALID;
	}
	pthread_mutex_lock(&bc->mu);
	if (pending_find(bc, key, index))
		goto out_unlock;
	if (bc->pending_bytes + len > BLOCKCACHE_PENDING_MAX) {
		bc->st.dropped++;	/* the disk is behind: never wait */
		rc = STORE_BUSY;
		goto out_unlock;
	}
	if (!bc->writer_started) {
		if (pthread_create(&bc->writer, NULL, writer_main, bc) != 0) {
			rc = STORE_NOMEM;
			goto out_unlock;
		}
		bc->writer_started = 1;
	}
	p = malloc(sizeof(*p) + klen + 1);
	if (!p) {
		rc = STORE_NOMEM;
		goto out_unlock;
	}
	p->next = NULL;
	p->data = buf;
	buf = NULL;
	p->index = index;
	p->len = len;
	memcpy(p->key, key, klen + 1);
	if (bc->pq_tail)
		bc->pq_tail->next = p;
	else
		bc->pq_head = p;
	bc->pq_tail = p;
	bc->pending_bytes += len;
	pthread_cond_signal(&bc->pq_cond);
out_unlock:
	pthread_mutex_unlock(&bc->mu);
	free(buf);	/* not queued */
	return rc;
}

int blockcache_put_async(struct blockcache *bc, const char *key,
			 uint64_t index, const void *buf, size_t len)
{
	void *copy;

	if (len == 0 || len > BLOCKCACHE_BLOCK)
		return STORE_INVALID;
	copy = malloc(len);
	if (!copy)
		return STORE_NOMEM;
	memcpy(copy, buf, len);
	return queue_block(bc, key, index, copy, len);
}

/* ---- the calls ---------------------------------------------------------------- */

int blockcache_get(struct blockcache *bc, const char *key, uint64_t index,
		   void *buf, size_t len)
{
	unsigned char sha[32];
	char name[NAME_LEN + 1];
	struct entry *e;

	if (len == 0 || len > BLOCKCACHE_BLOCK)
		return STORE_NOT_FOUND;
	key_sha256(key, sha);
	block_name(sha, index, name);
	pthread_mutex_lock(&bc->mu);
	if (pending_copy(bc, key, index, buf, len)) {
		bc->st.hits++;
		pthread_mutex_unlock(&bc->mu);
		return STORE_OK;
	}
	e = index_find(bc, name);
	if (!e) {
		bc->st.misses++;
		pthread_mutex_unlock(&bc->mu);
		return STORE_NOT_FOUND;
	}
	lru_unlink(e);
	lru_push_front(bc, e);
	pthread_mutex_unlock(&bc->mu);

	if (read_block_file(bc, name, sha, index, buf, len) == 0) {
		pthread_mutex_lock(&bc->mu);
		bc->st.hits++;
		pthread_mutex_unlock(&bc->mu);
		return STORE_OK;
	}
	pthread_mutex_lock(&bc->mu);
	bc->st.misses++;
	if ((e = index_find(bc, name)))
		index_drop(bc, e);	/* damaged, short or evicted */
	pthread_mutex_unlock(&bc->mu);
	return STORE_NOT_FOUND;
}

int blockcache_contains(struct blockcache *bc, const char *key,
			uint64_t index)
{
	unsigned char sha[32];
	char name[NAME_LEN + 1];
	int found;

	key_sha256(key, sha);
	block_name(sha, index, name);
	pthread_mutex_lock(&bc->mu);
	found = index_find(bc, name) != NULL ||
		pending_find(bc, key, index) != NULL;
	pthread_mutex_unlock(&bc->mu);
	return found;
}

int blockcache_put(struct blockcache *bc, const char *key, uint64_t index,
		   const void *buf, size_t len, char *err, size_t errlen)
{
	struct blk_header hdr = { .len = (uint32_t)len, .index = index };
	struct entry *e;
	uint64_t need = HDR_LEN + len;
	int rc;

	if (len == 0 || len > BLOCKCACHE_BLOCK) {
		SET_ERR("cannot cache block %llu: length %zu out of range",
			(unsigned long long)index, len);
		return STORE_INVALID;
	}
	if (!(e = calloc(1, sizeof(*e)))) {
		SET_ERR("cannot cache block %llu: out of memory",
			(unsigned long long)index);
		return STORE_NOMEM;
	}
	memcpy(hdr.magic, MAGIC, 8);
	hdr.crc = (uint32_t)crc32(0L, buf, (uInt)len);
	key_sha256(key, hdr.key_sha);
	block_name(hdr.key_sha, index, e->name);
	e->bytes = need;

	pthread_mutex_lock(&bc->mu);
	if (index_find(bc, e->name)) {
		rc = STORE_OK;
		goto out_unlock;
	}
	if ((rc = make_room(bc, need)) != STORE_OK) {
		bc->st.refused++;
		SET_ERR("cannot cache block %llu: less than %llu bytes would be "
			"left free", (unsigned long long)index,
			(unsigned long long)bc->free_min);
		goto out_unlock;
	}
	pthread_mutex_unlock(&bc->mu);

	rc = write_block_file(bc, e->name, &hdr, buf);

	pthread_mutex_lock(&bc->mu);
	if (rc < 0 || index_find(bc, e->name)) {
		bc->st.bytes -= need;	/* return the reservation */
		if (rc < 0)
			SET_ERR("cannot write cache block '%s': %s", e->name,
				ERRSTR(-rc));
		rc = rc < 0 ? STORE_IO : STORE_OK;
		goto out_unlock;
	}
	index_insert(bc, e);
	e = NULL;
	rc = STORE_OK;
out_unlock:
	pthread_mutex_unlock(&bc->mu);
	free(e);
	return rc;
}

void blockcache_stats(struct blockcache *bc, struct blockcache_stats *st)
{
	pthread_mutex_lock(&bc->mu);
	*st = bc->st;
	pthread_mutex_unlock(&bc->mu);
}

/* ---- open and close --------------------------------------------------------- */

static int by_mtime(const void *a, const void *b)
{
	const struct entry *x = *(struct entry *const *)a;
	const struct entry *y = *(struct entry *const *)b;

	return (x->mtime_ns > y->mtime_ns) - (x->mtime_ns < y->mtime_ns);
}

/* Lists the block files of the directory in *out (*n of them), oldest
 * first; removes temporaries and files too short to hold a header. */
static int scan_dir(struct blockcache *bc, struct entry ***out, size_t *n)
{
	struct entry **v = NULL, **nv, *e;
	size_t cap = 0;
	struct dirent *d;
	struct stat st;
	DIR *dir;
	int fd, rc = 0;

	*n = 0;
	*out = NULL;
	if ((fd = dup(bc->dfd)) < 0)
		return -errno;
	if (!(dir = fdopendir(fd))) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((errno = 0, d = readdir(dir))) {
		if (strncmp(d->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
			unlinkat(bc->dfd, d->d_name, 0);	/* a crashed put */
			continue;
		}
		if (!name_is_block(d->d_name) ||
		    fstatat(bc->dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if ((uint64_t)st.st_size <= HDR_LEN) {
			unlinkat(bc->dfd, d->d_name, 0);
			continue;
		}
		if (*n == cap) {
			cap = cap ? 2 * cap : 256;
			if (!(nv = realloc(v, cap * sizeof(*v))))
				goto out_nomem;
			v = nv;
		}
		if (!(e = calloc(1, sizeof(*e))))
			goto out_nomem;
		memcpy(e->name, d->d_name, NAME_LEN + 1);
		e->bytes = (uint64_t)st.st_size;
		e->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
			      st.st_mtim.tv_nsec;
		v[(*n)++] = e;
	}
	rc = errno ? -errno : 0;
	goto out_sort;
out_nomem:
	rc = -ENOMEM;
out_sort:
	closedir(dir);
	if (*n > 1)
		qsort(v, *n, sizeof(*v), by_mtime);
	*out = v;
	return rc;
}

/* Indexes what the directory holds and trims it to max_bytes. */
static int rebuild(struct blockcache *bc)
{
	struct entry **v;
	size_t n;
	int rc = scan_dir(bc, &v, &n);

	for (size_t i = 0; i < n; i++) {
		if (rc == 0) {
			bc->st.bytes += v[i]->bytes;
			index_insert(bc, v[i]);	/* oldest first: newest ends at head */
		} else {
			free(v[i]);
		}
	}
	free(v);
	while (rc == 0 && bc->st.bytes > bc->max_bytes)
		evict_oldest(bc);
	return rc;
}

static int lock_dir(struct blockcache *bc)
{
	bc->lock_fd = openat(bc->dfd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC |
						 O_NOFOLLOW, 0600);
	if (bc->lock_fd < 0)
		return -errno;
	return flock(bc->lock_fd, LOCK_EX | LOCK_NB) < 0 ? -errno : 0;
}

int blockcache_open(const char *dir, uint64_t max_bytes, uint64_t free_min,
		    struct blockcache **out, char *err, size_t errlen)
{
	struct blockcache *bc;
	int rc;

	if (max_bytes < HDR_LEN + BLOCKCACHE_BLOCK) {
		SET_ERR("cannot open cache '%s': a limit of %llu bytes is less "
			"than one block", dir, (unsigned long long)max_bytes);
		return STORE_INVALID;
	}
	if (!(bc = calloc(1, sizeof(*bc))) ||
	    !(bc->buckets = calloc(256, sizeof(*bc->buckets)))) {
		free(bc);
		SET_ERR("cannot open cache '%s': out of memory", dir);
		return STORE_NOMEM;
	}
	bc->nbuckets = 256;
	bc->lru.next = bc->lru.prev = &bc->lru;
	bc->max_bytes = max_bytes;
	bc->free_min = free_min;
	bc->lock_fd = -1;
	bc->dfd = -1;
	pthread_mutex_init(&bc->mu, NULL);
	pthread_cond_init(&bc->pq_cond, NULL);

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		goto out_fail;
	}
	bc->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bc->dfd < 0) {
		rc = -errno;
		goto out_fail;
	}
	if ((rc = lock_dir(bc)) < 0)
		goto out_fail;
	if ((rc = rebuild(bc)) < 0)
		goto out_fail;
	*out = bc;
	return STORE_OK;
out_fail:
	if (rc == -EWOULDBLOCK)
		SET_ERR("cannot open cache '%s': another process uses it", dir);
	else
		SET_ERR("cannot open cache '%s': %s", dir, ERRSTR(-rc));
	blockcache_close(bc);
	return rc == -EWOULDBLOCK ? STORE_BUSY :
	       rc == -ENOMEM ? STORE_NOMEM : STORE_IO;
}

void blockcache_close(struct blockcache *bc)
{
	if (!bc)
		return;
	if (bc->writer_started) {
		/* the queued blocks are written first: at most
		 * BLOCKCACHE_PENDING_MAX bytes */
		pthread_mutex_lock(&bc->mu);
		bc->closing = 1;
		pthread_cond_signal(&bc->pq_cond);
		pthread_mutex_unlock(&bc->mu);
		pthread_join(bc->writer, NULL);
	}
	for (size_t i = 0; bc->buckets && i < bc->nbuckets; i++) {
		struct entry *e = bc->buckets[i], *next;

		for (; e; e = next) {
			next = e->hnext;
			free(e);
		}
	}
	free(bc->buckets);
	if (bc->lock_fd >= 0)
		close(bc->lock_fd);	/* drops the flock */
	if (bc->dfd >= 0)
		close(bc->dfd);
	pthread_cond_destroy(&bc->pq_cond);
	pthread_mutex_destroy(&bc->mu);
	free(bc);
}
