/*
 * blockcache.h - a bounded on-disk cache of fixed-size blocks of remote
 * files, in one directory. The HTTP reader (http.h) keeps the blocks it
 * fetched here so a block is fetched from the server once while its key
 * stays the same.
 *
 * Invariants
 *  - A block is named by (key, index): @key is any string the caller
 *    chooses that changes whenever the remote bytes may have changed (the
 *    HTTP reader uses URL, ETag, size and Last-Modified); @index counts
 *    BLOCKCACHE_BLOCK-sized blocks from the start of the file. The file
 *    holding it is CACHE_DIR/SHA256HEX(key)-INDEXHEX, so keys (which may
 *    name hosts and paths) never appear in file names.
 *  - A block file is a header (magic, length, index, sha256 of the key,
 *    crc32 of the data) then the data. It is written to a temporary file
 *    and renamed into place, so a name holds a whole block or, after a
 *    crash or a power loss, something that fails the header, length or
 *    crc check: such a file is a miss and is removed, never served.
 *  - The bytes of all block files (their sizes, headers included; a
 *    filesystem may round each up to its own block size) never exceed
 *    @max_bytes once a put returns, and nothing is written while the
 *    filesystem of the directory has less than @free_min bytes free for
 *    unprivileged users: least recently used blocks are evicted first, and
 *    if that is not enough the put writes nothing.
 *  - One process owns a cache directory at a time (an flock on
 *    CACHE_DIR/.lock). At open, block files found there are indexed again
 *    (least recently used = oldest mtime first), temporaries of a crashed
 *    run are removed, and the total is brought under @max_bytes.
 *
 * Why 256 KiB blocks: one range request costs about a round trip plus
 * per-request work on both sides; at 256 KiB that is small against the
 * transfer even on a fast link, and a 1 GiB cache is 4096 files, a
 * directory size every filesystem handles well. Small random reads do not
 * go through whole blocks (the HTTP reader fetches exactly what they ask
 * for), so the block size does not multiply their cost.
 *
 * Results
 *  Functions return STORE_OK (0) or a negative STORE_* code from store.h;
 *  @err/@errlen (may be NULL) get a message on failure, lowercase, failure
 *  first, subject quoted.
 *
 * Threads
 *  Every call is thread-safe on one struct blockcache: an internal mutex
 *  guards the index, and file reads and writes happen outside it.
 */
#ifndef MLFS_BLOCKCACHE_H
#define MLFS_BLOCKCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "mlfs/store.h"

#define BLOCKCACHE_BLOCK (256u * 1024u)	/* bytes per block */

struct blockcache;

struct blockcache_stats {
	uint64_t bytes;		/* bytes of all block files, headers included */
	uint64_t blocks;	/* block files indexed */
	uint64_t hits;		/* gets that returned a block */
	uint64_t misses;	/* gets that did not (absent or damaged) */
	uint64_t evictions;	/* blocks removed to make room */
	uint64_t refused;	/* puts that wrote nothing for want of space */
	uint64_t dropped;	/* async puts dropped: the writer was behind */
};

/* Bytes of blocks an asynchronous put may leave waiting for the disk. */
#define BLOCKCACHE_PENDING_MAX (32u * 1024u * 1024u)

/*
 * blockcache_open - open (creating it, 0700, if missing) the cache in
 * directory @dir, holding at most @max_bytes, writing only while its
 * filesystem has at least @free_min bytes available. Returns STORE_OK and
 * *out (free it with blockcache_close()), or
 *   STORE_INVALID  @max_bytes is smaller than one block file
 *   STORE_BUSY     another process has the directory open
 *   STORE_IO       the directory cannot be made, locked or read
 *   STORE_NOMEM
 */
int blockcache_open(const char *dir, uint64_t max_bytes, uint64_t free_min,
		    struct blockcache **out, char *err, size_t errlen);

/*
 * blockcache_close - free @bc and release its directory. The block files
 * stay for the next open. NULL is a no-op.
 */
void blockcache_close(struct blockcache *bc);

/*
 * blockcache_get - copy block @index of @key, which must be exactly @len
 * bytes long (1..BLOCKCACHE_BLOCK; the last block of a file is shorter),
 * into @buf, and mark it recently used. Returns STORE_OK, or
 * STORE_NOT_FOUND when it is not cached, or its file is damaged, short or
 * of another length (the file is then removed). Never fails otherwise:
 * an unreadable block is a miss.
 */
int blockcache_get(struct blockcache *bc, const char *key, uint64_t index,
		   void *buf, size_t len);

/*
 * blockcache_contains - 1 when block @index of @key is indexed, else 0.
 * No I/O: a later get may still miss (evicted or damaged meanwhile).
 */
int blockcache_contains(struct blockcache *bc, const char *key,
			uint64_t index);

/*
 * blockcache_put - store @len bytes (1..BLOCKCACHE_BLOCK) at @buf as block
 * @index of @key, evicting least recently used blocks as needed. A block
 * already cached is kept as it is. Returns STORE_OK, or
 *   STORE_INVALID  @len is 0 or over BLOCKCACHE_BLOCK
 *   STORE_TOO_BIG  nothing written: even with every other block evicted
 *                  the filesystem would have less than @free_min free
 *   STORE_IO       writing failed (the temporary is removed)
 * A failed put changes nothing a get can see; callers may ignore it.
 */
int blockcache_put(struct blockcache *bc, const char *key, uint64_t index,
		   const void *buf, size_t len, char *err, size_t errlen);

/*
 * blockcache_put_async - as blockcache_put(), but the block is copied to a
 * queue and written by the cache's own thread, so a reader never waits
 * for the disk. While queued it is found by get and contains. When more
 * than BLOCKCACHE_PENDING_MAX bytes are waiting, the block is dropped
 * (STORE_BUSY, counted in st.dropped): a slow disk costs cache hits
 * later, never speed now. STORE_OK, STORE_INVALID (bad @len), STORE_BUSY,
 * STORE_NOMEM. blockcache_close() writes what is queued first.
 */
int blockcache_put_async(struct blockcache *bc, const char *key,
			 uint64_t index, const void *buf, size_t len);

/* blockcache_stats - a consistent snapshot of the counters into *st. */
void blockcache_stats(struct blockcache *bc, struct blockcache_stats *st);

#endif /* MLFS_BLOCKCACHE_H */
