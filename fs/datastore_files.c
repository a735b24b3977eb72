/*
 * datastore_files.c - datastores/NAME/files/ of a local datastore: the
 * directory itself, read-write, behaving as it does without the mount.
 *
 * A node's place is the names from files/ down to it (node_path_below),
 * kept right across renames by node_move(). Every operation opens the
 * parent directory from the datastore's root descriptor with openat2
 * (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) and acts on the last name with
 * the *at() call, never following a symlink: the kernel follows links
 * itself, and nothing the directory holds can lead the daemon outside
 * it. Hooks run as the caller (as_caller): the real filesystem checks
 * permissions, owns new files by the caller and gives its own errnos.
 *
 * Attributes are the real ones (stat_full), trusted for the live timeout
 * (the directory can change behind the mount's back, as over NFS);
 * listings are never cached; file contents are read and written through
 * the file's own descriptor. Sockets, fifos and devices are not shown.
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
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs_internal.h"

static const struct fs_kind kind_ds_dir;
static const struct fs_kind kind_ds_file;
static const struct fs_kind kind_ds_link;

/* The kind that shows a file of type @mode; NULL for the unshown. */
static const struct fs_kind *ds_kind_for(mode_t mode)
{
	if (S_ISDIR(mode))
		return &kind_ds_dir;
	if (S_ISREG(mode))
		return &kind_ds_file;
	if (S_ISLNK(mode))
		return &kind_ds_link;
	return NULL;
}

/*
 * The open(2) flags a caller's open may pass on. The kernel's own bits
 * (an exec's __FMODE_EXEC) would make openat2, which is strict, fail.
 */
#define DS_OPEN_FLAGS (O_ACCMODE | O_APPEND | O_TRUNC | O_CREAT | O_EXCL | \
		       O_NONBLOCK | O_DSYNC | O_SYNC | O_NOATIME | O_DIRECT | \
		       O_DIRECTORY | O_PATH | O_LARGEFILE)

/* openat2 below the datastore's root; a way out is ENOENT, not a file. */
static int beneath(int rootfd, const char *rel, int flags, mode_t mode,
		   int *out)
{
	struct open_how how = {
		.flags = (uint64_t)(flags & DS_OPEN_FLAGS) | O_CLOEXEC |
			 O_NOFOLLOW,
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));

	if (fd < 0)
		return errno == EXDEV || errno == ELOOP ? -ENOENT : -errno;
	*out = (int)fd;
	return 0;
}

/* The datastore root of @n, and @n's path below it. */
static int ds_locate(struct fs_ctx *ctx, const struct fs_node *n, int *rootfd,
		     char *rel, size_t len)
{
	struct ds_root *r = datastore_root(ctx, n->id.exp_id);
	int rc;

	if (!r)
		return -ENOENT;
	rc = datastore_root_fd(r, rootfd);
	if (rc < 0)
		return rc;
	return node_path_below(ctx, n, &kind_ds_root, rel, len);
}

/* Opens directory node @dir (O_PATH unless @flags say otherwise). */
static int ds_open_dir(struct fs_ctx *ctx, const struct fs_node *dir,
		       int flags, int *fd)
{
	char rel[PATH_MAX];
	int rootfd, rc = ds_locate(ctx, dir, &rootfd, rel, sizeof(rel));

	if (rc < 0)
		return rc;
	return beneath(rootfd, rel, flags | O_DIRECTORY, 0, fd);
}

/* Opens @n itself with @flags (O_PATH for a stat or a symlink). */
static int ds_open_node(struct fs_ctx *ctx, const struct fs_node *n, int flags,
			mode_t mode, int *fd)
{
	char rel[PATH_MAX];
	int rootfd, rc = ds_locate(ctx, n, &rootfd, rel, sizeof(rel));

	if (rc < 0)
		return rc;
	return beneath(rootfd, rel, flags, mode, fd);
}

/* ---- directories ------------------------------------------------------------ */

static int ds_lookup(struct fs_ctx *ctx, struct fs_node *dir, const char *name,
		     struct fs_ident *out)
{
	struct stat st;
	int fd, rc = ds_open_dir(ctx, dir, O_PATH, &fd);

	if (rc < 0)
		return rc;
	rc = fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	close(fd);
	if (rc < 0)
		return rc;
	out->kind = ds_kind_for(st.st_mode);
	return out->kind ? 0 : -ENOENT;
}

static const struct fs_kind *kind_of_dirent(int dfd, const struct dirent *e)
{
	struct stat st;

	switch (e->d_type) {
	case DT_DIR: return &kind_ds_dir;
	case DT_REG: return &kind_ds_file;
	case DT_LNK: return &kind_ds_link;
	case DT_UNKNOWN:
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return NULL;
		return ds_kind_for(st.st_mode);
	default: return NULL;
	}
}

static int ds_list(struct fs_ctx *ctx, struct fs_node *dir, struct dirlist *dl)
{
	const struct fs_kind *k;
	struct fs_ident id;
	struct dirent *e;
	DIR *d;
	int fd, rc = ds_open_dir(ctx, dir, O_RDONLY, &fd);

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
		k = kind_of_dirent(dirfd(d), e);
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

static int ds_mkdir(struct fs_ctx *ctx, struct fs_node *dir, const char *name,
		    struct fs_make *mk, struct fs_ident *out)
{
	int fd, rc = ds_open_dir(ctx, dir, O_PATH, &fd);

	if (rc < 0)
		return rc;
	rc = mkdirat(fd, name, mk->mode & 07777) < 0 ? -errno : 0;
	close(fd);
	out->kind = &kind_ds_dir;
	return rc;
}

static int ds_remove(struct fs_ctx *ctx, struct fs_node *dir, const char *name,
		     int flags)
{
	int fd, rc = ds_open_dir(ctx, dir, O_PATH, &fd);

	if (rc < 0)
		return rc;
	rc = unlinkat(fd, name, flags) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int ds_rmdir(struct fs_ctx *ctx, struct fs_node *dir, const char *name)
{
	return ds_remove(ctx, dir, name, AT_REMOVEDIR);
}

static int ds_unlink(struct fs_ctx *ctx, struct fs_node *dir, const char *name)
{
	return ds_remove(ctx, dir, name, 0);
}

static int ds_create(struct fs_ctx *ctx, struct fs_node *dir, const char *name,
		     struct fs_make *mk, struct fs_ident *out)
{
	int dfd, rc = ds_open_dir(ctx, dir, O_PATH, &dfd);

	if (rc < 0)
		return rc;
	rc = beneath(dfd, name, (mk->flags & ~O_NOCTTY) | O_CREAT,
		     mk->mode & 07777, &mk->fd);
	close(dfd);
	out->kind = &kind_ds_file;
	return rc;
}

static int ds_symlink(struct fs_ctx *ctx, struct fs_node *dir,
		      const char *target, const char *name,
		      struct fs_ident *out)
{
	int fd, rc = ds_open_dir(ctx, dir, O_PATH, &fd);

	if (rc < 0)
		return rc;
	rc = symlinkat(target, fd, name) < 0 ? -errno : 0;
	close(fd);
	out->kind = &kind_ds_link;
	return rc;
}

static int ds_move(struct fs_ctx *ctx, struct fs_node *dir, const char *name,
		   struct fs_node *newdir, const char *newname,
		   unsigned int flags)
{
	int from, to, rc = ds_open_dir(ctx, dir, O_PATH, &from);

	if (rc < 0)
		return rc;
	rc = ds_open_dir(ctx, newdir, O_PATH, &to);
	if (rc == 0) {
		rc = renameat2(from, name, to, newname, flags) < 0 ? -errno : 0;
		close(to);
	}
	close(from);
	return rc;
}

static int ds_link(struct fs_ctx *ctx, struct fs_node *node,
		   struct fs_node *dir, const char *name, struct fs_ident *out)
{
	int from, to, rc;

	if (!node->parent || node->id.kind == &kind_ds_root)
		return -EPERM;
	rc = ds_open_dir(ctx, node->parent, O_PATH, &from);
	if (rc < 0)
		return rc;
	rc = ds_open_dir(ctx, dir, O_PATH, &to);
	if (rc == 0) {
		/* node->name is stable here: the kernel holds the inode's
		 * lock for link, and renames of it wait for that. */
		rc = linkat(from, node->name, to, name, 0) < 0 ? -errno : 0;
		close(to);
	}
	close(from);
	out->kind = node->id.kind;
	return rc;
}

/* ---- attributes ------------------------------------------------------------ */

static int ds_stat(struct fs_ctx *ctx, struct fs_node *node, struct stat *st)
{
	int fd, rc = ds_open_node(ctx, node, O_PATH, 0, &fd);

	if (rc < 0)
		return rc;
	rc = fstat(fd, st) < 0 ? -errno : 0;
	close(fd);
	if (rc == 0 && ds_kind_for(st->st_mode) != node->id.kind &&
	    node->id.kind != &kind_ds_root)
		rc = -ENOENT;	/* replaced by another type: look up again */
	return rc;
}

static int ds_statfs(struct fs_ctx *ctx, struct fs_node *node,
		     struct statvfs *sv)
{
	struct ds_root *r = datastore_root(ctx, node->id.exp_id);
	int rootfd, rc;

	if (!r)
		return -ENOENT;
	rc = datastore_root_fd(r, &rootfd);
	if (rc < 0)
		return rc;
	return fstatvfs(rootfd, sv) < 0 ? -errno : 0;
}

static int ds_truncate_path(struct fs_ctx *ctx, struct fs_node *node,
			    off_t size)
{
	int fd, rc = ds_open_node(ctx, node, O_WRONLY, 0, &fd);

	if (rc < 0)
		return rc;
	rc = ftruncate(fd, size) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static struct timespec time_to_set(const struct stat *attr, int to_set,
				   int which_set, int which_now, int atime)
{
	struct timespec t = { .tv_sec = 0, .tv_nsec = UTIME_OMIT };

	if (to_set & which_now)
		t.tv_nsec = UTIME_NOW;
	else if (to_set & which_set)
		t = atime ? attr->st_atim : attr->st_mtim;
	return t;
}

/* A symlink's own times (cp -a, touch -h): by its parent and name. */
static int ds_link_utimens(struct fs_ctx *ctx, struct fs_node *node,
			   const struct timespec times[2])
{
	char rel[PATH_MAX];
	int rootfd, fd, rc = ds_locate(ctx, node->parent, &rootfd, rel,
				       sizeof(rel));
	const char *name;

	if (rc < 0)
		return rc;
	rc = beneath(rootfd, rel, O_PATH | O_DIRECTORY, 0, &fd);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&ctx->itable.lock);	/* node_move() renames */
	name = node->name;
	rc = utimensat(fd, name, times, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	pthread_mutex_unlock(&ctx->itable.lock);
	close(fd);
	return rc;
}

static int ds_setattr(struct fs_ctx *ctx, struct fs_node *node,
		      const struct stat *attr, int to_set, struct fs_handle *h)
{
	struct timespec times[2];
	int fd, rc = ds_open_node(ctx, node, O_PATH, 0, &fd);
	char proc[64];

	if (rc < 0)
		return rc;
	/* chmod, chown and utimens through /proc/self/fd of the O_PATH
	 * descriptor: no path is resolved twice. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if ((to_set & FUSE_SET_ATTR_MODE) && node->id.kind != &kind_ds_link &&
	    chmod(proc, attr->st_mode & 07777) < 0)
		rc = -errno;
	if (rc == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) &&
	    fchownat(fd, "", (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid
			     : (uid_t)-1, (to_set & FUSE_SET_ATTR_GID)
			     ? attr->st_gid : (gid_t)-1, AT_EMPTY_PATH) < 0)
		rc = -errno;
	if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE))
		rc = h && h->backing_fd >= 0
		     ? (ftruncate(h->backing_fd, attr->st_size) < 0 ? -errno : 0)
		     : ds_truncate_path(ctx, node, attr->st_size);
	if (rc == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
				  FUSE_SET_ATTR_ATIME_NOW |
				  FUSE_SET_ATTR_MTIME_NOW))) {
		times[0] = time_to_set(attr, to_set, FUSE_SET_ATTR_ATIME,
				       FUSE_SET_ATTR_ATIME_NOW, 1);
		times[1] = time_to_set(attr, to_set, FUSE_SET_ATTR_MTIME,
				       FUSE_SET_ATTR_MTIME_NOW, 0);
		rc = node->id.kind == &kind_ds_link
		     ? ds_link_utimens(ctx, node, times)
		     : (utimensat(AT_FDCWD, proc, times, 0) < 0 ? -errno : 0);
	}
	close(fd);
	return rc;
}

/* ---- files ----------------------------------------------------------------- */

static int ds_file_open(struct fs_ctx *ctx, struct fs_node *node, int flags,
			int *fd)
{
	/* O_CREAT and O_EXCL came to create(); O_TRUNC is open's own. */
	return ds_open_node(ctx, node, flags & ~(O_CREAT | O_EXCL | O_NOCTTY),
			    0, fd);
}

static int ds_file_write(struct fs_ctx *ctx, struct fs_handle *h,
			 const char *buf, size_t len, off_t off)
{
	ssize_t n;

	(void)ctx;
	n = pwrite(h->backing_fd, buf, len, off);
	return n < 0 ? -errno : (int)n;
}

static int ds_file_fsync(struct fs_ctx *ctx, struct fs_handle *h, int datasync)
{
	(void)ctx;
	if (h->backing_fd < 0)
		return 0;
	if ((datasync ? fdatasync(h->backing_fd) : fsync(h->backing_fd)) < 0)
		return -errno;
	return 0;
}

static int ds_link_render(struct fs_ctx *ctx, struct fs_node *node,
			      struct content *c)
{
	int fd, rc = ds_open_node(ctx, node, O_PATH, 0, &fd);

	if (rc < 0)
		return rc;
	rc = content_from_link(ctx, fd, c);
	close(fd);
	return rc;
}

#define DS_DIR_HOOKS \
	.dep = DEP_DATASTORES, \
	.lookup = ds_lookup, \
	.list = ds_list, \
	.mkdir = ds_mkdir, \
	.rmdir = ds_rmdir, \
	.create = ds_create, \
	.unlink = ds_unlink, \
	.symlink = ds_symlink, \
	.move = ds_move, \
	.link = ds_link, \
	.setattr = ds_setattr, \
	.stat = ds_stat, \
	.stat_full = 1, \
	.as_caller = 1, \
	.statfs = ds_statfs, \
	.listing_live = 1

const struct fs_kind kind_ds_root = {
	.name = "datastore files",
	.mode = S_IFDIR | 0755,
	DS_DIR_HOOKS,
	.dyn_name = "...",
	.dyn_kind = &kind_ds_file,
	.dyn_help = "the datastore directory's files",
};

static const struct fs_kind kind_ds_dir = {
	.name = "datastore directory",
	.mode = S_IFDIR | 0755,
	DS_DIR_HOOKS,
};

static const struct fs_kind kind_ds_file = {
	.name = "datastore file",
	.mode = S_IFREG | 0644,
	.dep = DEP_DATASTORES,
	.backing_open = ds_file_open,
	.write = ds_file_write,
	.fsync = ds_file_fsync,
	.setattr = ds_setattr,
	.stat = ds_stat,
	.stat_full = 1,
	.as_caller = 1,
	.statfs = ds_statfs,
};

static const struct fs_kind kind_ds_link = {
	.name = "datastore symlink",
	.mode = S_IFLNK | 0777,
	.dep = DEP_DATASTORES,
	.render = ds_link_render,
	.setattr = ds_setattr,
	.stat = ds_stat,
	.stat_full = 1,
	.as_caller = 1,
	.statfs = ds_statfs,
};
