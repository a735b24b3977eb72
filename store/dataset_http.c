/*
 * dataset_http.c - the files of an HTTP datastore: pinning named files
 * with HEAD, copying them into blobs through pinned range reads
 * (contract: mlfs/datasets.h; the transfers: http.h).
 *
 * A server cannot be listed, so a pattern is a literal path. A copy reads
 * through http_file_pread(), which sends the pin as a condition and
 * checks every response against it: a file changed on the server fails
 * the copy with STORE_CORRUPT, and the blob temporary is discarded.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlfs/datasets.h"
#include "dataset_internal.h"

#define CHUNK (1u << 20)

static int pin_one(struct http_source *src, const char *path,
		   struct dataset_files *out, char *err, size_t errlen)
{
	struct http_stat hs;
	struct dataset_file *f;
	int rc;

	if (strpbrk(path, "*?["))
		return dataset_fail(err, errlen, STORE_INVALID,
			    "invalid path '%s': an HTTP datastore cannot be "
			    "listed, so a glob cannot match", path);
	if (!dataset_path_is_valid(path))
		return dataset_fail(err, errlen, STORE_INVALID, "invalid path '%s'", path);
	rc = http_stat(src, path, &hs, err, errlen);
	if (rc != STORE_OK)
		return rc;
	if (hs.is_dir)
		return dataset_fail(err, errlen, STORE_INVALID, "'%s' is a directory: "
			    "an HTTP datastore cannot be listed, so name its "
			    "files", path);
	f = dataset_files_push(out);
	if (!f)
		return dataset_fail(err, errlen, STORE_NOMEM, "out of memory");
	f->path = strdup(path);
	f->etag = strdup(hs.etag);
	if (!f->path || !f->etag) {
		dataset_file_release(f);
		out->n--;
		return dataset_fail(err, errlen, STORE_NOMEM, "out of memory");
	}
	f->size = hs.size;
	f->http_mtime_ms = hs.mtime_ms;
	return STORE_OK;
}

int dataset_http_pin(struct http_source *src, const char *const *paths,
		     size_t npaths, struct dataset_files *out, char *err,
		     size_t errlen)
{
	size_t from = out->n;
	int rc = STORE_OK;

	if (npaths > DATASET_FILES_MAX)
		return dataset_fail(err, errlen, STORE_TOO_BIG, "more than %d files",
			    DATASET_FILES_MAX);
	for (size_t i = 0; i < npaths && rc == STORE_OK; i++)
		rc = pin_one(src, paths[i], out, err, errlen);
	if (rc == STORE_OK)
		dataset_files_sort_unique(out, from);
	else
		dataset_files_truncate(out, from);
	return rc;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The bytes of @hf into the blob temporary @t: @size of them, no fewer. */
static int fetch(struct http_file *hf, const struct dataset_file *f, int fd,
		 char *buf, char *err, size_t errlen)
{
	uint64_t off = 0;

	while (off < f->size) {
		size_t want = f->size - off < CHUNK ? (size_t)(f->size - off)
						    : CHUNK;
		ssize_t n = http_file_pread(hf, buf, want, off, err, errlen);
		int e;

		if (n < 0)
			return (int)n;
		if (n == 0)
			return dataset_fail(err, errlen, STORE_CORRUPT,
				    "'%s' changed while it was copied: "
				    "%llu of %llu bytes", f->path,
				    (unsigned long long)off,
				    (unsigned long long)f->size);
		e = write_all(fd, buf, (size_t)n);
		if (e < 0)
			return dataset_fail(err, errlen, STORE_IO,
				    "cannot write blob of '%s': %s", f->path,
				    strerror(-e));
		off += (uint64_t)n;
	}
	return STORE_OK;
}

static int copy_one(const char *workspace_dir, struct http_source *src,
		    struct dataset_file *f, char *buf, char *err,
		    size_t errlen)
{
	struct http_stat pin = {
		.size = f->size, .mtime_ms = f->http_mtime_ms, .ranges = 1,
	};
	struct blob_tmp t = { .fd = -1 };
	struct http_file *hf = NULL;
	struct blob_ref ref;
	char why[256] = "";
	int rc;

	if (!f->etag || strlen(f->etag) >= sizeof(pin.etag))
		return dataset_fail(err, errlen, STORE_INVALID,
			    "cannot copy '%s': no HTTP pin", f->path);
	memcpy(pin.etag, f->etag, strlen(f->etag) + 1);
	rc = http_file_open(src, f->path, &pin, NULL, &hf, err, errlen);
	if (rc != STORE_OK)
		return rc;
	rc = blob_tmp_open(workspace_dir, &t);
	if (rc != STORE_OK) {
		rc = dataset_fail(err, errlen, rc, "cannot copy '%s': cannot make a "
			  "blob temporary in '%s'", f->path, workspace_dir);
		goto out_close;
	}
	rc = fetch(hf, f, t.fd, buf, err, errlen);
	if (rc != STORE_OK) {
		blob_tmp_discard(workspace_dir, &t);
		goto out_close;
	}
	rc = blob_tmp_adopt(workspace_dir, &t, &ref, why, sizeof(why));
	if (rc != STORE_OK)
		rc = dataset_fail(err, errlen, rc, "cannot copy '%s': %s", f->path, why);
	else if (ref.size != f->size)
		rc = dataset_fail(err, errlen, STORE_CORRUPT,
			  "'%s' changed while it was copied: size %llu -> %llu",
			  f->path, (unsigned long long)f->size,
			  (unsigned long long)ref.size);
	else
		memcpy(f->blob, ref.hex, sizeof(f->blob));
out_close:
	http_file_close(hf);
	return rc;
}

int dataset_http_copy(const char *workspace_dir, struct http_source *src,
		      struct dataset_files *fl, char *err, size_t errlen)
{
	char *buf = malloc(CHUNK);
	int rc = STORE_OK;
	size_t i;

	if (!buf)
		return dataset_fail(err, errlen, STORE_NOMEM, "out of memory");
	for (i = 0; i < fl->n && rc == STORE_OK; i++)
		rc = copy_one(workspace_dir, src, &fl->v[i], buf, err, errlen);
	if (rc != STORE_OK)
		while (i-- > 0)
			fl->v[i].blob[0] = '\0';	/* filled on STORE_OK only */
	free(buf);
	return rc;
}
