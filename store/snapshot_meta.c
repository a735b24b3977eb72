/*
 * snapshot_meta.c - the small helpers the snapshot files share (sha256,
 * messages, safe names and opens, atomic writes), snapshot paths, and
 * snapshot.json: writing it, and reading it back for get and list.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mlfs/jsonw.h"
#include "mlfs/timefmt.h"
#include "snapshot_internal.h"

/* ---- small shared helpers ------------------------------------------------- */

int sha256_buf(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
	unsigned int n = SHA256_LEN;

	return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) ? 0 : -ENOMEM;
}

void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int snap_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int snapshot_id_is_valid(const char *id)
{
	size_t i;

	for (i = 0; id && i < SNAPSHOT_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return id && id[i] == '\0';
}

int snapshot_name_is_safe(const char *name)
{
	const char *p = name;

	if (!*p || *p == '/')
		return 0;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!slash)
			break;
		p = slash + 1;	/* a trailing '/' ends the loop here */
	}
	return 1;
}

int open_beneath(int root_fd, const char *rel, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
	};
	long fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS)
		fd = openat(root_fd, rel, flags | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : (int)fd;
}

int mkdir_parents(const char *path)
{
	char parent[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT || !slash ||
	    (size_t)(slash - path) >= sizeof(parent))
		return -errno;
	memcpy(parent, path, (size_t)(slash - path));
	parent[slash - path] = '\0';
	if (mkdir(parent, 0755) < 0 && errno != EEXIST)
		return -errno;
	return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int write_file_atomic(const char *dir, const char *final, const void *buf,
		      size_t len)
{
	struct strbuf tmp = STRBUF_INIT;
	const char *p = buf;
	int fd, rc = 0;

	if (strbuf_addf(&tmp, "%s/.tmp-%ld-XXXXXX", dir, (long)getpid()) < 0)
		return -ENOMEM;
	fd = mkostemp(tmp.buf, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out_free;
	}
	while (len && rc == 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno != EINTR)
			rc = -errno;
		if (w > 0) {
			p += w;
			len -= (size_t)w;
		}
	}
	if (rc == 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp.buf, final) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp.buf);
	else
		rc = fsync_dir(dir);
out_free:
	strbuf_release(&tmp);
	return rc;
}

/* ---- paths ------------------------------------------------------------------ */

static int snap_path(const char *workspace_dir, const char *id,
		     const char *ext, char *buf, size_t len)
{
	int n;

	if (!snapshot_id_is_valid(id))
		return STORE_INVALID;
	n = snprintf(buf, len, "%s/snapshots/%s.%s", workspace_dir, id, ext);
	return n < 0 || (size_t)n >= len ? STORE_TOO_BIG : STORE_OK;
}

int snapshot_zip_path(const char *workspace_dir, const char *id, char *buf,
		      size_t len)
{
	return snap_path(workspace_dir, id, "zip", buf, len);
}

int snapshot_json_path(const char *workspace_dir, const char *id, char *buf,
		       size_t len)
{
	return snap_path(workspace_dir, id, "json", buf, len);
}

/* ---- snapshot.json ------------------------------------------------------------- */

int json_write(const char *snap_dir, const char *final,
		      const struct snapshot_info *info, const char *source)
{
	struct strbuf sb = STRBUF_INIT;
	struct jsonw w;
	int rc;

	jsonw_init(&w, &sb, 1);
	jsonw_object_begin(&w);
	jsonw_key(&w, "id");
	jsonw_string(&w, info->id);
	jsonw_key(&w, "created");
	jsonw_time(&w, info->created_ms);
	jsonw_key(&w, "files");
	jsonw_int(&w, (int64_t)info->files);
	jsonw_key(&w, "bytes");
	jsonw_int(&w, (int64_t)info->bytes);
	jsonw_key(&w, "zip_bytes");
	jsonw_int(&w, (int64_t)info->zip_bytes);
	jsonw_key(&w, "source_directory");
	jsonw_string(&w, source);
	jsonw_object_end(&w);
	rc = sb.err ? sb.err : write_file_atomic(snap_dir, final, sb.buf, sb.len);
	strbuf_release(&sb);
	return rc;
}

static int json_uint(json_t *root, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(root, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int json_read(const char *path, struct snapshot_info *out)
{
	json_error_t jerr;
	json_t *root;
	const char *id, *created;
	int rc = STORE_CORRUPT;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return access(path, F_OK) < 0 && errno == ENOENT
			       ? STORE_NOT_FOUND : STORE_CORRUPT;
	memset(out, 0, sizeof(*out));
	id = json_string_value(json_object_get(root, "id"));
	created = json_string_value(json_object_get(root, "created"));
	if (!id || !snapshot_id_is_valid(id) || !created ||
	    time_parse_iso(created, strlen(created), &out->created_ms) < 0 ||
	    json_uint(root, "files", &out->files) < 0 ||
	    json_uint(root, "bytes", &out->bytes) < 0 ||
	    json_uint(root, "zip_bytes", &out->zip_bytes) < 0)
		goto out;
	memcpy(out->id, id, SNAPSHOT_ID_LEN + 1);
	rc = STORE_OK;
out:
	json_decref(root);
	return rc;
}

int snapshot_get(const char *workspace_dir, const char *id,
		 struct snapshot_info *out)
{
	char path[PATH_MAX];
	struct snapshot_info info;
	int rc = snapshot_json_path(workspace_dir, id, path, sizeof(path));

	if (rc != STORE_OK)
		return rc;
	rc = json_read(path, &info);
	if (rc == STORE_OK && strcmp(info.id, id) != 0)
		rc = STORE_CORRUPT;
	if (rc == STORE_OK)
		*out = info;
	return rc;
}

static int id_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int snapshot_list(const char *workspace_dir,
		  int (*fn)(void *ctx, const struct snapshot_info *s),
		  void *ctx)
{
	char dir[PATH_MAX];
	char **ids = NULL;
	size_t n = 0, alloc = 0;
	struct dirent *de;
	DIR *d;
	int rc = STORE_OK;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/snapshots", workspace_dir) >=
	    sizeof(dir))
		return STORE_TOO_BIG;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? STORE_OK : STORE_IO;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len != SNAPSHOT_ID_LEN + 5 ||
		    strcmp(de->d_name + SNAPSHOT_ID_LEN, ".json") != 0)
			continue;
		if (n == alloc) {
			char **v = realloc(ids, (alloc = alloc ? alloc * 2 : 64) *
						       sizeof(*v));

			if (!v) {
				rc = STORE_NOMEM;
				goto out_free;
			}
			ids = v;
		}
		ids[n] = strndup(de->d_name, SNAPSHOT_ID_LEN);
		if (!ids[n]) {
			rc = STORE_NOMEM;
			goto out_free;
		}
		n++;
	}
	qsort(ids, n, sizeof(*ids), id_cmp);
	for (size_t i = 0; i < n && rc == STORE_OK; i++) {
		struct snapshot_info info;

		if (snapshot_get(workspace_dir, ids[i], &info) == STORE_OK)
			rc = fn(ctx, &info);
	}
out_free:
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	closedir(d);
	return rc;
}

