/*
 * run_files.c - a run's outputs/ and logs/: read-only views of the run's
 * working directory WORKSPACE/runs/ID/{outputs,logs}.
 *
 * A node's path inside the working directory is not stored: it is made
 * from the names of the node and its parents up to the run directory (the
 * names never change and parents outlive their children). Every access
 * opens that path with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from
 * the working directory: whatever a run leaves there (symlinks to
 * /etc/shadow, directories swapped for links while we look), the daemon
 * never reads outside it. Symlinks are shown as symlinks; the kernel
 * follows them, not us.
 *
 * The files are the real ones, growing while the run runs: their sizes
 * and times come from fstat at every getattr (attribute timeout 0) and
 * listings are never cached, so "tail -f logs/user_logs/std_log.txt"
 * sees new lines as soon as they are written. Reads go straight to the
 * file's descriptor. Nothing can be changed through the mount (EROFS).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs_internal.h"

extern const struct fs_kind kind_run_area;
static const struct fs_kind kind_area_file;
static const struct fs_kind kind_area_exec;
static const struct fs_kind kind_area_link;

/* Builds "outputs/a/b" for @n from the node names up to the run dir. */
static int area_path(const struct fs_node *n, char *buf, size_t len,
		     const char **run_name)
{
	const char *names[PATH_MAX / 2];
	size_t depth = 0, used = 0;

	for (; n && n->id.kind != &kind_run; n = n->parent) {
		if (depth == sizeof(names) / sizeof(names[0]))
			return -ENAMETOOLONG;
		names[depth++] = n->name;
	}
	if (!n)
		return -EIO;
	*run_name = n->name;
	buf[0] = '\0';
	while (depth--) {
		int w = snprintf(buf + used, len - used, "%s%s",
				 used ? "/" : "", names[depth]);

		if (w < 0 || (size_t)w >= len - used)
			return -ENAMETOOLONG;
		used += (size_t)w;
	}
	return 0;
}

/*
 * Opens @n's file below the run's working directory with @flags: never
 * through a symlink, never outside. A symlink node itself is opened
 * O_PATH.
 */
static int area_open(struct fs_ctx *ctx, const struct fs_node *n, int flags,
		     int *out)
{
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC | O_NOFOLLOW,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	char rel[PATH_MAX], dir[PATH_MAX];
	const char *run = NULL;
	long fd;
	int dfd, rc, saved;

	rc = area_path(n, rel, sizeof(rel), &run);
	if (rc < 0)
		return rc;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/runs/%s", store_dir(ctx->st),
			     run) >= sizeof(dir))
		return -ENAMETOOLONG;
	dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	fd = syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
	saved = errno;
	close(dfd);
	if (fd < 0)
		return saved == ELOOP || saved == EXDEV ? -EACCES : -saved;
	*out = (int)fd;
	return 0;
}

static int area_lstat(struct fs_ctx *ctx, const struct fs_node *n,
		      struct stat *st)
{
	int fd, rc = area_open(ctx, n, O_PATH, &fd);

	if (rc < 0)
		return rc;
	rc = fstat(fd, st) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* The kind that shows a file of type @mode. NULL for sockets and such. */
static const struct fs_kind *kind_for(mode_t mode)
{
	if (S_ISDIR(mode))
		return &kind_run_area;
	if (S_ISLNK(mode))
		return &kind_area_link;
	if (S_ISREG(mode))
		return (mode & 0111) ? &kind_area_exec : &kind_area_file;
	return NULL;
}

/* ---- directories ------------------------------------------------------- */

/*
 * A run that never ran here (an interactive run, a queued one) has no
 * working directory: its outputs/ and logs/ are empty, as of its creation.
 */
static int area_dir_stat(struct fs_ctx *ctx, struct fs_node *node,
			 struct stat *st)
{
	struct store_run r = { 0 };
	int rc = area_lstat(ctx, node, st);

	if (rc != -ENOENT || node->parent->id.kind != &kind_run)
		return rc;
	rc = store_run_get(ctx->st, node->id.run_id, &r);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	st->st_mtim.tv_sec = r.created_ms / 1000;
	st->st_mtim.tv_nsec = (r.created_ms % 1000) * 1000000;
	store_run_release(&r);
	return 0;
}

static int area_lookup(struct fs_ctx *ctx, struct fs_node *dir,
		       const char *name, struct fs_ident *out)
{
	struct fs_node probe = { .name = (char *)name, .parent = dir };
	struct stat st;
	int rc = area_lstat(ctx, &probe, &st);

	if (rc < 0)
		return rc;
	out->kind = kind_for(st.st_mode);
	return out->kind ? 0 : -ENOENT;
}

static int area_list(struct fs_ctx *ctx, struct fs_node *dir,
		     struct dirlist *dl)
{
	const struct fs_kind *k;
	struct dirent *e;
	struct fs_ident id;
	DIR *d;
	int fd, rc = area_open(ctx, dir, O_RDONLY | O_DIRECTORY, &fd);

	if (rc == -ENOENT && dir->parent->id.kind == &kind_run)
		return 0;	/* no working directory (yet) */
	if (rc < 0)
		return rc;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while (rc == 0 && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		k = e->d_type == DT_DIR ? &kind_run_area
		    : e->d_type == DT_LNK ? &kind_area_link
		    : e->d_type == DT_REG ? NULL : &kind_area_file;
		if (e->d_type == DT_REG || e->d_type == DT_UNKNOWN) {
			struct stat st;

			if (fstatat(dirfd(d), e->d_name, &st,
				    AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			k = kind_for(st.st_mode);
		} else if (e->d_type != DT_DIR && e->d_type != DT_LNK) {
			continue;
		}
		if (!k)
			continue;
		id = dir->id;
		id.kind = k;
		id.key = NULL;
		rc = dirlist_add(dl, e->d_name, &id, 0);
	}
	closedir(d);
	return rc;
}

const struct fs_kind kind_run_area = {
	.name = "run files",
	.mode = S_IFDIR | 0555,
	.dep = DEP_RUN,
	.lookup = area_lookup,
	.list = area_list,
	.stat = area_dir_stat,
	.erofs = 1,
	.listing_live = 1,
	.dyn_name = "...",
	.dyn_kind = &kind_area_file,
	.dyn_help = "whatever the run wrote there, read-only",
};

/* ---- files and links --------------------------------------------------------- */

static int area_file_open(struct fs_ctx *ctx, struct fs_node *node,
			  int flags, int *fd)
{
	(void)flags;	/* read-only: writers were refused (erofs) */
	return area_open(ctx, node, O_RDONLY, fd);
}

static int area_file_stat(struct fs_ctx *ctx, struct fs_node *node,
			  struct stat *st)
{
	return area_lstat(ctx, node, st);
}

static const struct fs_kind kind_area_file = {
	.name = "run file",
	.mode = S_IFREG | 0444,
	.dep = DEP_RUN,
	.backing_open = area_file_open,
	.stat = area_file_stat,
	.erofs = 1,
};

static const struct fs_kind kind_area_exec = {
	.name = "run executable",
	.mode = S_IFREG | 0555,
	.dep = DEP_RUN,
	.backing_open = area_file_open,
	.stat = area_file_stat,
	.erofs = 1,
};

static int area_link_render(struct fs_ctx *ctx, struct fs_node *node,
			    struct content *c)
{
	int fd, rc = area_open(ctx, node, O_PATH, &fd);

	if (rc < 0)
		return rc;
	rc = content_from_link(ctx, fd, c);
	close(fd);
	return rc;
}

static const struct fs_kind kind_area_link = {
	.name = "run symlink",
	.mode = S_IFLNK | 0777,
	.dep = DEP_RUN,
	.render = area_link_render,
	.erofs = 1,
};
