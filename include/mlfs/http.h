/*
 * http.h - reading files of an HTTP(S) datastore: stat with HEAD, reads
 * with range GETs pinned to the version that was registered, sequential
 * read-ahead, and an optional on-disk block cache (blockcache.h).
 *
 * Invariants
 *  - A struct http_file is pinned to a struct http_stat (size, ETag,
 *    Last-Modified). Every range request carries the pin as a condition
 *    (If-Match with a strong ETag, else If-Unmodified-Since), and every
 *    response is checked against it (206 with the exact Content-Range
 *    and the pinned total size, same ETag and Last-Modified when sent).
 *    A read therefore returns the registered bytes or fails with
 *    STORE_CORRUPT ("... changed since it was registered"); it never
 *    returns bytes of another version.
 *  - Secrets stay secret: request header values and credentials in the
 *    base URL's userinfo never appear in an error message, a log line,
 *    stderr (curl is never made verbose) or a cache file name. Messages
 *    name the relative path, the HTTP status or curl's generic error text.
 *    Redirects are not followed, so headers never reach another host.
 *  - No call hangs: connecting, a stalled transfer and a whole request
 *    each have a timeout (struct http_options). A stream's transfer
 *    counts as stalled only while a read waits on it.
 *
 * Life cycle
 *  http_source_new() -> http_stat() / http_file_open() -> http_file_pread()
 *  ... -> http_file_close() -> http_source_free(). A source must outlive
 *  its files; a block cache must outlive the files using it.
 *
 * Read-ahead
 *  Each file tracks a few read streams. A read starting where a stream
 *  ended (or at offset 0), or up to 8 reads of its size before or after
 *  that in a stream already sequential, is sequential; any other read is
 *  random.
 *
 *  Sequential reads of a file over 4 MiB whose bytes are not at hand go
 *  through the file's stream: one range GET at a time over the next
 *  16 MiB, doubling up to 64 MiB, that the reading thread drives itself,
 *  its body copied straight into the caller's buffer (no batch to wait
 *  for, one copy after the socket). Bytes that arrive past the end of a
 *  read wait for the next one in a stash of up to 128 KiB; past that the
 *  transfer pauses and TCP holds the rest. One thread uses the stream at
 *  a time; a read at most 8 MiB ahead of it waits while the stream
 *  serves the reads before it, and up to 50 ms for one that has not come
 *  (threads serving kernel read-ahead finish out of order), then the
 *  stream moves to it; a read the stream went past is fetched exactly;
 *  a read while the stream serves another reader goes through blocks. A
 *  stream request that fails after it sat unread for a second or more
 *  (the server may have dropped the idle connection) is tried once more.
 *
 *  Other sequential reads use blocks: the stream's window doubles from
 *  HTTP_RA_MIN up to HTTP_RA_MAX and whole BLOCKCACHE_BLOCK blocks of the
 *  window are fetched, up to options.parallel at once on separate
 *  connections, each time the reader gets within half a window of the
 *  end of what is fetched: in a background thread of the file (one batch
 *  at a time), so the reader goes on meanwhile, or by the read itself when
 *  it finds its block missing. A random read smaller than a block fetches
 *  exactly the bytes asked for (so random 4 KiB reads fetch 4 KiB each)
 *  and is not cached. Fetched blocks are kept in memory and in the block
 *  cache when the file has one (written in the background: a read never
 *  waits for the disk). Streamed bytes skip the cache: writing every byte
 *  once more halved a stream's speed on a small machine, and a file read
 *  whole stays in the kernel's page cache. Memory per file: up to
 *  HTTP_RA_MAX + 2 MiB of kept
 *  blocks, plus the blocks of batches in flight (as much again per batch)
 *  and 8 MiB of spare buffers, all allocated only once the file is read
 *  through blocks; the stream's 128 KiB stash and curl's 128 KiB receive
 *  buffer. All freed at close.
 *
 * Results
 *  Functions return STORE_OK (0), a byte count, or a negative STORE_*
 *  code from store.h. @err/@errlen (may be NULL) get a message on
 *  failure: lowercase, failure first, subject quoted, e.g.
 *  "cannot read 'data/a.bin': HTTP 500".
 *
 * Threads
 *  Every call is thread-safe, including many concurrent preads of one
 *  struct http_file. A file runs at most one thread of its own, for
 *  read-ahead; http_file_close() waits for it. Connections, DNS answers
 *  and TLS sessions are shared by all threads of a source (a curl share
 *  handle).
 */
#ifndef MLFS_HTTP_H
#define MLFS_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mlfs/blockcache.h"
#include "mlfs/store.h"

#define HTTP_ETAG_MAX 256		/* bytes of an ETag, quotes included */
#define HTTP_RA_MIN (256u * 1024u)	/* first read-ahead window */
#define HTTP_RA_MAX (16u * 1024u * 1024u)	/* largest window */

/* Zero fields take the default in brackets. */
struct http_options {
	long connect_timeout_ms;	/* [4000] TCP and TLS handshake */
	long stall_timeout_s;		/* [4] abort when under 1 byte/s this long */
	long request_timeout_ms;	/* [300000] one whole request */
	int parallel;			/* [6] range requests in flight per read */
};

struct http_stat {
	uint64_t size;			/* bytes */
	char etag[HTTP_ETAG_MAX];	/* as sent, W/ and quotes kept; "" if none */
	int64_t mtime_ms;		/* Last-Modified, ms since the epoch; -1 if none */
	int ranges;			/* 1: Accept-Ranges: bytes */
	int is_dir;			/* 1: a directory (see http_stat) */
};

struct http_source;
struct http_file;

/*
 * http_source_new - a source reading below @base_url (http:// or
 * https://, optionally with user:password@, no query or fragment),
 * sending the @headers ("Name: value", a NULL-terminated array, may be
 * NULL) with every request. @opt may be NULL for the defaults. Everything
 * is copied. Returns STORE_OK and *out (free with http_source_free()), or
 *   STORE_INVALID  not an http(s) URL, a query or fragment in it, or a
 *                  header without a colon or with CR/LF in it (the
 *                  message names the header's position, never its value)
 *   STORE_NOMEM
 * Calls curl_global_init() once per process (pthread_once).
 */
int http_source_new(const char *base_url, const char *const *headers,
		    const struct http_options *opt, struct http_source **out,
		    char *err, size_t errlen);

/* http_source_free - free @src, wiping its header values. NULL: no-op. */
void http_source_free(struct http_source *src);

/*
 * http_source_bytes_fetched - response body bytes received from the
 * server by all requests of @src so far (for tests and benchmarks).
 */
uint64_t http_source_bytes_fetched(const struct http_source *src);

/*
 * http_stat - HEAD of @path below the base URL into *st. @path is
 * relative: segments separated by single '/', each percent-encoded here;
 * empty, "." and ".." segments are refused. A redirect of @path to
 * @path/ (how servers answer a directory's name) gives STORE_OK with
 * st->is_dir set and nothing else. Returns STORE_OK, or
 *   STORE_INVALID    a bad @path
 *   STORE_NOT_FOUND  404 or 410
 *   STORE_DENIED     401 or 403
 *   STORE_TOO_BIG    an ETag over HTTP_ETAG_MAX bytes
 *   STORE_IO         any other status, no Content-Length, a timeout or a
 *                    connection failure
 *   STORE_NOMEM
 */
int http_stat(struct http_source *src, const char *path, struct http_stat *st,
	      char *err, size_t errlen);

/*
 * http_file_open - a file to read @path of @src as pinned by @pin (from
 * http_stat(), typically stored when a dataset version was registered),
 * using @cache (may be NULL) for its blocks. No request is made. Returns
 * STORE_OK and *out (free with http_file_close()), STORE_INVALID (bad
 * @path) or STORE_NOMEM.
 */
int http_file_open(struct http_source *src, const char *path,
		   const struct http_stat *pin, struct blockcache *cache,
		   struct http_file **out, char *err, size_t errlen);

/*
 * http_file_pread - read up to @len bytes at @off into @buf. Returns the
 * number of bytes read, less than @len only at the pinned end of file (0
 * at or past it), or
 *   STORE_CORRUPT    the remote file changed since it was registered (412,
 *                    another ETag, Last-Modified or size): nothing of it
 *                    was returned; the caller answers EIO
 *   STORE_NOT_FOUND, STORE_DENIED, STORE_IO, STORE_NOMEM as for http_stat()
 * STORE_IO also when the server ignores range requests (answers 200 with
 * the whole body) for a file over 1 MiB: such a file is not downloaded
 * whole to serve a piece of it.
 */
ssize_t http_file_pread(struct http_file *f, void *buf, size_t len,
			uint64_t off, char *err, size_t errlen);

/*
 * http_file_streams - 1 when sequential reads of @f go through a stream
 * (files over 4 MiB): a receive thread takes the body of long range
 * requests as fast as the server sends it, and keeps none of it in the
 * block cache.
 */
int http_file_streams(const struct http_file *f);

/* http_file_close - free @f and its read-ahead blocks. NULL: no-op. */
void http_file_close(struct http_file *f);

#endif /* MLFS_HTTP_H */
