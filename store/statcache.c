/*
 * statcache.c - the stat cache that lets a re-submitted source directory
 * be snapshotted without reading its unchanged files again.
 *
 * File format (WORKSPACE/cache/statcache/<sha256 hex of the root's
 * realpath>): the line "mlfs-statcache 1\n", then one record per file,
 *
 *	SHA256HEX DEV INO SIZE MTIME_NS CTIME_NS MODE PATH '\0'
 *
 * numbers in decimal, separated by one space; the path runs to the NUL
 * (paths cannot hold NUL, and may hold spaces and newlines). Records are
 * in strcmp order of path so lookups bisect.
 *
 * Racy clean: a file changed in the same clock tick as it was hashed can
 * keep its size and mtime. Git's answer is ours: an entry is trusted only
 * if its mtime is strictly older than the cache file's own mtime, taken
 * from the same (coarse) file system clock. An entry that fails the test
 * is hashed again, and is trusted from the next build on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot_internal.h"

#define STATCACHE_MAGIC "mlfs-statcache 1\n"
#define STATCACHE_MAX_BYTES (64u << 20)

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int cache_path(const char *workspace_dir, const char *root_real,
		      struct strbuf *out)
{
	unsigned char sha[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];

	if (sha256_buf(root_real, strlen(root_real), sha) < 0)
		return -ENOMEM;
	hex_encode(sha, SHA256_LEN, hex);
	strbuf_addf(out, "%s/cache/statcache/%s", workspace_dir, hex);
	return out->err;
}

static int hex_decode(const char *s, size_t n, unsigned char *out)
{
	for (size_t i = 0; i < n; i++) {
		int v = 0;

		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + k];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= c - '0';
			else if (c >= 'a' && c <= 'f')
				v |= c - 'a' + 10;
			else
				return -1;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

/* One decimal field ending in a space; advances *p. */
static int parse_field(const char **p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;

	if (s >= end || *s < '0' || *s > '9')
		return -1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (s >= end || *s != ' ')
		return -1;
	*p = s + 1;
	*out = v;
	return 0;
}

static int push(struct statcache *sc, struct statcache_entry *e)
{
	if (sc->n == sc->alloc) {
		size_t alloc = sc->alloc ? sc->alloc * 2 : 64;
		struct statcache_entry *v = realloc(sc->v, alloc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		sc->v = v;
		sc->alloc = alloc;
	}
	sc->v[sc->n++] = *e;
	return 0;
}

/* Parses records; stops quietly at the first malformed one. */
static int parse_records(struct statcache *sc, const char *p, const char *end)
{
	while (p < end) {
		struct statcache_entry e = { 0 };
		uint64_t mtime, ctime, mode;
		const char *nul;

		if (end - p < 2 * SHA256_LEN + 1 ||
		    hex_decode(p, SHA256_LEN, e.sha) < 0 ||
		    p[2 * SHA256_LEN] != ' ')
			return 0;
		p += 2 * SHA256_LEN + 1;
		if (parse_field(&p, end, &e.dev) < 0 ||
		    parse_field(&p, end, &e.ino) < 0 ||
		    parse_field(&p, end, &e.size) < 0 ||
		    parse_field(&p, end, &mtime) < 0 ||
		    parse_field(&p, end, &ctime) < 0 ||
		    parse_field(&p, end, &mode) < 0)
			return 0;
		nul = memchr(p, '\0', (size_t)(end - p));
		if (!nul || nul == p)
			return 0;
		/* Out of order: the file is not ours; keep what bisects. */
		if (sc->n && strcmp(sc->v[sc->n - 1].path, p) >= 0)
			return 0;
		e.mtime_ns = (int64_t)mtime;
		e.ctime_ns = (int64_t)ctime;
		e.mode = (uint32_t)mode;
		e.path = strdup(p);
		if (!e.path || push(sc, &e) < 0) {
			free(e.path);
			return -ENOMEM;
		}
		p = nul + 1;
	}
	return 0;
}

int statcache_load(const char *workspace_dir, const char *root_real,
		   struct statcache *sc)
{
	struct strbuf path = STRBUF_INIT, data = STRBUF_INIT;
	struct stat st;
	int fd, rc = 0;

	rc = cache_path(workspace_dir, root_real, &path);
	if (rc < 0)
		goto out;
	fd = open(path.buf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		goto out;	/* no cache yet */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > STATCACHE_MAX_BYTES ||
	    strbuf_grow(&data, (size_t)st.st_size) < 0)
		goto out_close;
	while (data.len < (size_t)st.st_size) {
		ssize_t r = read(fd, data.buf + data.len,
				 (size_t)st.st_size - data.len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto out_close;
		data.len += (size_t)r;
	}
	sc->written_ns = ts_ns(&st.st_mtim);
	if (data.len >= strlen(STATCACHE_MAGIC) &&
	    memcmp(data.buf, STATCACHE_MAGIC, strlen(STATCACHE_MAGIC)) == 0)
		rc = parse_records(sc, data.buf + strlen(STATCACHE_MAGIC),
				   data.buf + data.len);
out_close:
	close(fd);
out:
	strbuf_release(&data);
	strbuf_release(&path);
	return rc;
}

static int entry_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct statcache_entry *)elem)->path);
}

const unsigned char *statcache_find(const struct statcache *sc,
				    const char *path, const struct stat *st)
{
	const struct statcache_entry *e;

	if (!sc->n)
		return NULL;
	e = bsearch(path, sc->v, sc->n, sizeof(*e), entry_cmp);
	if (!e || e->dev != (uint64_t)st->st_dev ||
	    e->ino != (uint64_t)st->st_ino ||
	    e->size != (uint64_t)st->st_size || e->mode != st->st_mode ||
	    e->mtime_ns != ts_ns(&st->st_mtim) ||
	    e->ctime_ns != ts_ns(&st->st_ctim))
		return NULL;
	if (e->mtime_ns >= sc->written_ns || e->ctime_ns >= sc->written_ns)
		return NULL;	/* racily clean */
	return e->sha;
}

int statcache_add(struct statcache *sc, const char *path,
		  const struct stat *st, const unsigned char sha[SHA256_LEN])
{
	struct statcache_entry e = {
		.dev = (uint64_t)st->st_dev,
		.ino = (uint64_t)st->st_ino,
		.size = (uint64_t)st->st_size,
		.mtime_ns = ts_ns(&st->st_mtim),
		.ctime_ns = ts_ns(&st->st_ctim),
		.mode = st->st_mode,
	};

	memcpy(e.sha, sha, SHA256_LEN);
	e.path = strdup(path);
	if (!e.path || push(sc, &e) < 0) {
		free(e.path);
		return -ENOMEM;
	}
	return 0;
}

int statcache_save(const char *workspace_dir, const char *root_real,
		   const struct statcache *sc)
{
	struct strbuf path = STRBUF_INIT, dir = STRBUF_INIT, data = STRBUF_INIT;
	char hex[2 * SHA256_LEN + 1];
	int rc;

	rc = cache_path(workspace_dir, root_real, &path);
	if (rc == 0)
		rc = strbuf_addf(&dir, "%s/cache/statcache", workspace_dir);
	if (rc < 0)
		goto out;
	rc = mkdir_parents(dir.buf);
	if (rc < 0)
		goto out;
	strbuf_addstr(&data, STATCACHE_MAGIC);
	for (size_t i = 0; i < sc->n && !data.err; i++) {
		const struct statcache_entry *e = &sc->v[i];

		hex_encode(e->sha, SHA256_LEN, hex);
		strbuf_addf(&data, "%s %llu %llu %llu %lld %lld %u %s", hex,
			    (unsigned long long)e->dev,
			    (unsigned long long)e->ino,
			    (unsigned long long)e->size,
			    (long long)e->mtime_ns, (long long)e->ctime_ns,
			    (unsigned)e->mode, e->path);
		strbuf_addch(&data, '\0');
	}
	rc = data.err;
	if (rc == 0)
		rc = write_file_atomic(dir.buf, path.buf, data.buf, data.len);
out:
	strbuf_release(&data);
	strbuf_release(&dir);
	strbuf_release(&path);
	return rc;
}

void statcache_release(struct statcache *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		free(sc->v[i].path);
	free(sc->v);
	memset(sc, 0, sizeof(*sc));
}
