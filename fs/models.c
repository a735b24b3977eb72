/*
 * models.c - models/: the model registry (include/mlfs/models.h).
 *
 *   models/NAME/            mkdir makes an empty model; rmdir only without
 *                           versions (ENOTEMPTY)
 *   models/NAME/latest      -> N, the highest existing version
 *   models/NAME/aliases/A   -> ../N; ln -s N sets, rm drops
 *   models/NAME/N/          model.json, files/ (read-only), run -> the
 *                           source run; rmdir deletes the version
 *
 * Identities: every node below models/NAME keeps the model's name in
 * id.key and the model's id in id.exp_id; nodes at or below a version
 * keep the version's internal id in id.run_id; an alias keeps the version
 * number it names in id.obj_id (a moved alias is a new node, and a node
 * renamed by "ln -sf" needs no name to know its target). (The fields are the
 * generic ones of struct fs_ident; in this tree they mean the above.)
 * A model removed and made again has a new id, so old nodes never
 * resolve to the new model.
 *
 * Caching: a model's directories and metadata depend on DEP_MODEL (the
 * model id), models/ on DEP_MODELS. A version's files never change: the
 * files/ tree is DEP_NONE (long timeouts, kept pages) and read straight
 * from the blobs' descriptors.
 *
 * Blobs: deleting a version hands back the blobs no version uses any
 * more, which are removed here. The delete and the removal run under
 * ctx->model_lock, the same lock registrations hold from their blob put
 * to their store commit, so a registration of the same content cannot
 * see its blob vanish between the two (models.h, invariant 4).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs_internal.h"
#include "mlfs/blob.h"
#include "mlfs/fileio.h"
#include "mlfs/jsonw.h"
#include "mlfs/models.h"
#include "mlfs/parse.h"

extern const struct fs_kind kind_model;
extern const struct fs_kind kind_model_version;
extern const struct fs_kind kind_model_aliases;
static const struct fs_kind kind_model_alias;
static const struct fs_kind kind_model_drop;
static const struct fs_kind kind_vfiles;
static const struct fs_kind kind_vdir;
static const struct fs_kind kind_vfile;
static const struct fs_kind kind_vexec;

/*
 * A version number as the tree spells it: digits without a leading zero,
 * 1 to 10^15. 0 and the number, or -EINVAL.
 */
int model_version_parse(const char *s, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (!s[0] || s[0] == '0')
		return -EINVAL;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 15)
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* ---- the cleanup at mount ---------------------------------------------- */

/*
 * Blobs no version refers to are what a daemon killed between a blob put
 * and its registration, or between a version delete and the removal of
 * its blobs, leaves. Removed at mount, before any registration. When
 * another process holds a put window open (blob_puts_hold), blobs
 * younger than BLOB_SWEEP_MIN_AGE_S are kept: they may be its.
 */
#define BLOB_SWEEP_MIN_AGE_S 3600

struct hexset {
	char (*v)[BLOB_HEX_LEN + 1];
	size_t n, alloc;
};

static int hexset_add(void *arg, const char *hex)
{
	struct hexset *hs = arg;

	if (strlen(hex) != BLOB_HEX_LEN)
		return 0;
	if (hs->n == hs->alloc) {
		size_t alloc = hs->alloc ? hs->alloc * 2 : 256;
		void *v = realloc(hs->v, alloc * sizeof(*hs->v));

		if (!v)
			return 1;
		hs->v = v;
		hs->alloc = alloc;
	}
	memcpy(hs->v[hs->n++], hex, BLOB_HEX_LEN + 1);
	return 0;
}

static int hex_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void sweep_dir(const char *ws, int blobs_fd, const char *sub,
		      const struct hexset *keep, time_t min_age, int *removed)
{
	char hex[BLOB_HEX_LEN + 1];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd;

	fd = openat(blobs_fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (strlen(de->d_name) != BLOB_HEX_LEN - 2)
			continue;
		memcpy(hex, sub, 2);
		memcpy(hex + 2, de->d_name, BLOB_HEX_LEN - 2 + 1);
		if (keep->n && bsearch(hex, keep->v, keep->n, sizeof(*keep->v),
				       hex_cmp))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) ||
		    time(NULL) - st.st_mtim.tv_sec < min_age)
			continue;
		if (blob_remove(ws, hex) == STORE_OK)
			(*removed)++;
	}
	closedir(d);
}

int models_mount_cleanup(struct fs_ctx *ctx)
{
	const char *ws = store_dir(ctx->st);
	struct hexset keep = { NULL, 0, 0 };
	char blobs[PATH_MAX];
	struct dirent *de;
	int removed = 0, quiet, lock = -1, rc;
	DIR *d;

	/* The lock before the listing: a put committed after the listing
	 * would look like an orphan. */
	quiet = blob_puts_quiet(ws, &lock) == STORE_OK;
	rc = store_blob_each(ctx->st, hexset_add, &keep);
	if (rc != STORE_OK || (keep.n && !keep.v)) {
		removed = rc == STORE_OK ? -ENOMEM : -fs_errno(rc);
		goto out;
	}
	/* store order is hex order, but do not depend on it */
	if (keep.n)
		qsort(keep.v, keep.n, sizeof(*keep.v), hex_cmp);
	snprintf(blobs, sizeof(blobs), "%s/blobs", ws);
	d = opendir(blobs);
	if (d) {
		while ((de = readdir(d)))
			if (strlen(de->d_name) == 2 &&
			    strspn(de->d_name, "0123456789abcdef") == 2)
				sweep_dir(ws, dirfd(d), de->d_name, &keep,
					  quiet ? 0 : BLOB_SWEEP_MIN_AGE_S,
					  &removed);
		closedir(d);
	}
out:
	blob_puts_release(lock);
	free(keep.v);
	return removed;
}

/* ---- models/ ------------------------------------------------------------- */

static int models_lookup(struct fs_ctx *ctx, struct fs_node *dir,
			 const char *name, struct fs_ident *out)
{
	struct store_model m;
	int rc;

	(void)dir;
	if (!name_is_valid(name, strlen(name)))
		return -ENOENT;
	rc = store_model_get(ctx->st, name, &m);
	if (rc != STORE_OK)
		return -fs_errno(rc);
	out->kind = &kind_model;
	out->key = name;
	out->exp_id = m.id;
	out->run_id = 0;
	store_model_release(&m);
	return 0;
}

static int model_entry(void *arg, const struct store_model *m)
{
	struct fs_ident id = { .kind = &kind_model, .key = m->name,
			       .exp_id = m->id };

	return dirlist_add(arg, m->name, &id, m->updated_ms) < 0;
}

static int models_list(struct fs_ctx *ctx, struct fs_node *dir,
		       struct dirlist *dl)
{
	int rc = store_model_list(ctx->st, model_entry, dl);

	(void)dir;
	if (rc == 1)
		return -ENOMEM;
	return -fs_errno(rc);
}

static int models_mkdir(struct fs_ctx *ctx, struct fs_node *dir,
			const char *name, struct fs_make *mk,
			struct fs_ident *out)
{
	struct store_model m;
	int rc;

	(void)mk;	/* modes are the kind's */
	if (!name_is_valid(name, strlen(name)))
		return fs_refuse(ctx, "mkdir", dir, name, EINVAL,
				 "invalid model name '%s'", name);
	rc = store_model_create(ctx->st, name, &m);
	if (rc != STORE_OK)
		return fs_refuse(ctx, "mkdir", dir, name, fs_errno(rc),
				 "cannot make model '%s': %s", name,
				 store_strerror(rc));
	version_bump(ctx, DEP_MODELS, 0);
	version_bump(ctx, DEP_MODEL, m.id);
	out->kind = &kind_model;
	out->key = name;
	out->exp_id = m.id;
	out->run_id = 0;
	store_model_release(&m);
	return 0;
}

static int models_rmdir(struct fs_ctx *ctx, struct fs_node *dir,
			const char *name)
{
	int rc = store_model_delete(ctx->st, name);

	if (rc == STORE_NOT_EMPTY)
		return fs_refuse(ctx, "rmdir", dir, name, ENOTEMPTY,
				 "model '%s' has versions: delete them first",
				 name);
	if (rc != STORE_OK)
		return fs_refuse(ctx, "rmdir", dir, name, fs_errno(rc),
				 "cannot remove model '%s': %s", name,
				 store_strerror(rc));
	version_bump(ctx, DEP_MODELS, 0);
	return 0;
}

static int models_render(struct fs_ctx *ctx, struct fs_node *node,
			 struct content *c)
{
	(void)node;
	c->mtime_ms = ctx->mount_ms;
	return 0;
}

/* ---- models/NAME/ ------------------------------------------------------ */

static int model_dir_render(struct fs_ctx *ctx, struct fs_node *node,
			    struct content *c)
{
	struct store_model m;
	int rc = store_model_get(ctx->st, node->id.key, &m);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	c->mtime_ms = m.updated_ms;
	store_model_release(&m);
	return 0;
}

static int version_ident(struct fs_ctx *ctx, const char *model, int64_t num,
			 struct fs_ident *out)
{
	struct store_model_version v;
	int rc = store_model_version_get(ctx->st, model, num, &v);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	out->kind = &kind_model_version;
	out->exp_id = v.model_id;
	out->run_id = v.id;
	store_model_version_release(&v);
	return 0;
}

static int model_lookup(struct fs_ctx *ctx, struct fs_node *dir,
			const char *name, struct fs_ident *out)
{
	int64_t num;

	if (model_version_parse(name, &num) < 0)
		return -ENOENT;
	out->key = dir->id.key;
	return version_ident(ctx, dir->id.key, num, out);
}

struct version_listing {
	struct dirlist *dl;
	const char *model;
};

static int version_entry(void *arg, const struct store_model_version *v)
{
	struct version_listing *vl = arg;
	struct fs_ident id = { .kind = &kind_model_version, .key = vl->model,
			       .exp_id = v->model_id, .run_id = v->id };
	char num[24];

	snprintf(num, sizeof(num), "%lld", (long long)v->version);
	return dirlist_add(vl->dl, num, &id, v->updated_ms) < 0;
}

static int model_list(struct fs_ctx *ctx, struct fs_node *dir,
		      struct dirlist *dl)
{
	struct version_listing vl = { dl, dir->id.key };
	int rc = store_model_version_list(ctx->st, dir->id.key, version_entry,
					  &vl);

	if (rc == 1)
		return -ENOMEM;
	/* dirlist keeps key pointing into the name: fix it to the model */
	for (size_t i = 0; i < dl->n; i++)
		if (dl->v[i].id.kind == &kind_model_version)
			dl->v[i].id.key = dir->id.key;
	return -fs_errno(rc);
}

void models_unput(struct fs_ctx *ctx, int *hold, const char *const *hex,
		  size_t n)
{
	const char *ws = store_dir(ctx->st);
	int lock = -1, rc;

	blob_puts_release(*hold);
	*hold = -1;
	if (n == 0)
		return;
	/* Every put window closes first: what it found is committed now. */
	rc = blob_puts_exclusive(ws, &lock);
	for (size_t i = 0; rc == STORE_OK && i < n; i++) {
		int used = 1;

		if (store_blob_referenced(ctx->st, hex[i], &used) == STORE_OK &&
		    !used)
			blob_remove(ws, hex[i]);
	}
	/* A blob kept by a failure here is an orphan for the mount's sweep. */
	blob_puts_release(lock);
}

/* rmdir models/NAME/N: delete the version, then its orphaned blobs. */
static int model_rmdir(struct fs_ctx *ctx, struct fs_node *dir,
		       const char *name)
{
	struct store_hex_list orphans = { 0, NULL };
	struct store_model_version v;
	int64_t num, run_id = 0;
	int lock = -1, rc;

	if (model_version_parse(name, &num) < 0)
		return fs_refuse(ctx, "rmdir", dir, name, EPERM,
				 "'%s' is part of the model's layout and cannot "
				 "be removed", name);
	/* its source run's run.json lists it: note the run first */
	if (store_model_version_get(ctx->st, dir->id.key, num, &v) == STORE_OK) {
		run_id = v.run_id;
		store_model_version_release(&v);
	}
	pthread_mutex_lock(&ctx->model_lock);
	/* No put of another process may find these blobs stored meanwhile */
	rc = blob_puts_exclusive(store_dir(ctx->st), &lock);
	if (rc == STORE_OK)
		rc = store_model_version_delete(ctx->st, dir->id.key, num,
						&orphans);
	for (size_t i = 0; rc == STORE_OK && i < orphans.n; i++) {
		int brc = blob_remove(store_dir(ctx->st), orphans.hex[i]);

		if (brc != STORE_OK)	/* left for the cleanup at mount */
			fprintf(stderr, "mlfs: cannot remove blob '%s': %s\n",
				orphans.hex[i], store_strerror(brc));
	}
	blob_puts_release(lock);
	pthread_mutex_unlock(&ctx->model_lock);
	store_hex_list_release(&orphans);
	if (rc == STORE_IN_USE)
		return fs_refuse(ctx, "rmdir", dir, name, EBUSY,
				 "version %s of model '%s' is used by an "
				 "active deployment", name, dir->id.key);
	if (rc != STORE_OK)
		return fs_refuse(ctx, "rmdir", dir, name, fs_errno(rc),
				 "cannot delete version %s of model '%s': %s",
				 name, dir->id.key, store_strerror(rc));
	version_bump(ctx, DEP_MODEL, dir->id.exp_id);
	version_bump(ctx, DEP_MODELS, 0);
	if (run_id)
		version_bump(ctx, DEP_RUN, run_id);
	return 0;
}

static int model_latest_present(struct fs_ctx *ctx, const struct fs_ident *dir)
{
	int64_t v;

	return store_model_latest(ctx->st, dir->key, &v) == STORE_OK;
}

static int model_latest_render(struct fs_ctx *ctx, struct fs_node *node,
			       struct content *c)
{
	struct store_model m;
	struct sink s;
	int rc = store_model_get(ctx->st, node->id.key, &m);

	if (rc != STORE_OK)
		return -fs_errno(rc);

	if (m.latest <= 0) {
		store_model_release(&m);
		return -ENOENT;
	}
	sink_begin(&s, ctx, c, 0);
	strbuf_addf(s.sb, "%lld", (long long)m.latest);
	c->mtime_ms = m.updated_ms;
	store_model_release(&m);
	return sink_end(&s);
}

/*
 * ---- a file dropped into models/NAME/ --------------------------------------
 *
 * create gives a node only the writer's handle knows (the name does not
 * resolve for anyone else: model_lookup knows versions only, and the
 * create's entry timeout is 0). Writes go straight into a temporary file
 * of the blob store (blob_tmp_open, held in h->kind_data), so the bytes
 * are written once. The first flush after a write (the writer's close)
 * adopts it as a blob and registers a single-file version, so the
 * version exists once close() returns, whole. A write that failed leaves
 * no version; a daemon killed meanwhile leaves nothing (the temporary
 * file has no name). Writes after that flush fail with EIO: one version
 * per open.
 */

static int model_create(struct fs_ctx *ctx, struct fs_node *dir,
			const char *name, struct fs_make *mk,
			struct fs_ident *out)
{
	int64_t num;

	(void)mk;
	if (!name_is_valid(name, strlen(name)) ||
	    model_version_parse(name, &num) == 0)
		return fs_refuse(ctx, "create", dir, name, EINVAL,
				 "invalid file name '%s' for a new version "
				 "(a name, not a number)", name);
	out->kind = &kind_model_drop;
	out->key = dir->id.key;
	out->exp_id = dir->id.exp_id;
	out->run_id = 0;
	return 0;
}

static struct blob_tmp *drop_tmp(struct fs_handle *h)
{
	return h->kind_data;
}

static int drop_write(struct fs_ctx *ctx, struct fs_handle *h,
		      const char *buf, size_t len, off_t off)
{
	int rc;

	if (h->acted)
		return fs_refuse(ctx, "write", h->node, NULL, EIO,
				 "the version was registered at the first "
				 "close; write a new file for a new version");
	if (!h->kind_data) {
		struct blob_tmp *t = malloc(sizeof(*t));

		if (!t || blob_tmp_open(store_dir(ctx->st), t) != STORE_OK) {
			free(t);
			h->act_err = t ? EIO : ENOMEM;
			return -h->act_err;
		}
		h->kind_data = t;
	}
	h->wrote = 1;
	rc = pwrite_all(drop_tmp(h)->fd, buf, len, (uint64_t)off);
	if (rc < 0) {
		h->act_err = -rc;
		return rc;
	}
	/* the size the writer's stat sees (drop_stat) */
	pthread_mutex_lock(&h->node->lock);
	if ((size_t)off + len > h->node->content.len)
		h->node->content.len = (size_t)off + len;
	pthread_mutex_unlock(&h->node->lock);
	return (int)len;
}

static int drop_register(struct fs_ctx *ctx, struct fs_handle *h)
{
	struct store_model_file f = { .path = h->node->name, .mode = 0644 };
	struct model_version_spec spec = { .files = &f, .nfiles = 1 };
	struct store_model_version v;
	struct blob_ref ref;
	char err[512] = "";
	int hold = -1, rc;

	pthread_mutex_lock(&ctx->model_lock);
	rc = blob_puts_hold(store_dir(ctx->st), &hold);
	if (rc == STORE_OK)
		rc = blob_tmp_adopt(store_dir(ctx->st), drop_tmp(h), &ref, err,
				    sizeof(err));
	if (rc == STORE_OK) {
		f.blob = ref.hex;
		f.size = (int64_t)ref.size;
		rc = store_model_register(ctx->st, h->node->id.key, &spec, &v);
		if (rc != STORE_OK && !ref.existed) {
			const char *made = ref.hex;

			models_unput(ctx, &hold, &made, 1);
		}
	}
	blob_puts_release(hold);
	pthread_mutex_unlock(&ctx->model_lock);
	if (rc != STORE_OK)
		return fs_refuse(ctx, "close", h->node, NULL, fs_errno(rc),
				 "cannot register '%s' as a new version of "
				 "model '%s': %s", h->node->name,
				 h->node->id.key,
				 err[0] ? err : store_strerror(rc));
	version_bump(ctx, DEP_MODELS, 0);
	version_bump(ctx, DEP_MODEL, v.model_id);
	version_bump(ctx, DEP_EVENTS, 0);
	store_model_version_release(&v);
	return 0;
}

/*
 * Is thread @pid closing its files because a signal killed it? A killed
 * writer's descriptors are flushed while it exits: PF_EXITING is set and
 * its exit code (field 52 of /proc/PID/stat, set before the files are
 * closed) names the signal. 0 for a normal exit or close, and when that
 * cannot be told.
 */
static int closer_killed(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long long flags = 0;
	long long exit_code = 0;
	ssize_t n;
	int fd, field;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* the command may hold spaces and ')' */
	if (!p)
		return 0;
	/* after ')': field 3 (state) onwards, space separated */
	for (field = 2; *p && field < 52; p++) {
		if (*p != ' ')
			continue;
		field++;
		if (field == 9)
			flags = strtoull(p + 1, NULL, 10);
		else if (field == 52)
			exit_code = strtoll(p + 1, NULL, 10);
	}
	return (flags & 0x4) && (exit_code & 0x7f);	/* PF_EXITING */
}

static int drop_flush(struct fs_ctx *ctx, struct fs_handle *h)
{
	int rc;

	if (!h->wrote || h->acted || !drop_tmp(h))
		return 0;
	h->acted = 1;
	if (h->act_err)
		return fs_refuse(ctx, "close", h->node, NULL, h->act_err,
				 "a write failed: no version registered");
	if (closer_killed(h->closer))
		return fs_refuse(ctx, "close", h->node, NULL, EINTR,
				 "the writer was killed by a signal: no version "
				 "registered");
	rc = drop_register(ctx, h);
	/* the name was never the writer's to keep: versions are N/ */
	node_unhash_child(ctx, h->node->parent, h->node->name);
	return rc;
}

/* The bytes written so far; content holds nothing else for this kind. */
static int drop_stat(struct fs_ctx *ctx, struct fs_node *node,
		     struct stat *st)
{
	(void)ctx;
	pthread_mutex_lock(&node->lock);
	st->st_size = (off_t)node->content.len;
	pthread_mutex_unlock(&node->lock);
	clock_gettime(CLOCK_REALTIME, &st->st_mtim);
	return 0;
}

static int drop_truncate(struct fs_ctx *ctx, struct fs_node *node, off_t size)
{
	(void)ctx;
	(void)node;
	return size == 0 ? 0 : -EINVAL;
}

/* A temporary never adopted (a refused or killed writer) goes here. */
static void drop_release(struct fs_ctx *ctx, struct fs_handle *h)
{
	struct blob_tmp *t = drop_tmp(h);

	if (t && t->fd >= 0)
		blob_tmp_discard(store_dir(ctx->st), t);
	free(t);
	h->kind_data = NULL;
}

static const struct fs_kind kind_model_drop = {
	.name = "new model file",
	.mode = S_IFREG | 0644,
	.dep = DEP_MODEL,
	.write = drop_write,
	.flush = drop_flush,
	.release = drop_release,
	.stat = drop_stat,
	.truncate = drop_truncate,
};

/* ---- models/NAME/aliases/ ------------------------------------------------ */

static int aliases_lookup(struct fs_ctx *ctx, struct fs_node *dir,
			  const char *name, struct fs_ident *out)
{
	int64_t v;
	int rc = store_model_alias_get(ctx->st, dir->id.key, name, &v);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	out->kind = &kind_model_alias;
	out->key = dir->id.key;
	out->obj_id = v;
	return 0;
}

struct alias_listing {
	struct dirlist *dl;
	const struct fs_ident *dir;
};

static int alias_entry(void *arg, const char *alias, int64_t version)
{
	struct alias_listing *al = arg;
	struct fs_ident id = *al->dir;

	id.kind = &kind_model_alias;
	id.key = NULL;
	id.obj_id = version;
	return dirlist_add(al->dl, alias, &id, 0) < 0;
}

static int aliases_list(struct fs_ctx *ctx, struct fs_node *dir,
			struct dirlist *dl)
{
	struct alias_listing al = { dl, &dir->id };
	int rc = store_model_alias_list(ctx->st, dir->id.key, alias_entry, &al);

	if (rc == 1)
		return -ENOMEM;
	for (size_t i = 0; i < dl->n; i++)
		dl->v[i].id.key = dir->id.key;
	return -fs_errno(rc);
}

/* ln -s N aliases/ALIAS (or ../N): sets or moves the alias. */
static int aliases_symlink(struct fs_ctx *ctx, struct fs_node *dir,
			   const char *target, const char *name,
			   struct fs_ident *out)
{
	int64_t num;
	int rc;

	if (strncmp(target, "../", 3) == 0)
		target += 3;
	if (model_version_parse(target, &num) < 0)
		return fs_refuse(ctx, "symlink", dir, name, EINVAL,
				 "alias target '%s' is not a version number "
				 "(N or ../N)", target);
	rc = store_model_alias_set(ctx->st, dir->id.key, name, num);
	if (rc == STORE_INVALID)
		return fs_refuse(ctx, "symlink", dir, name, EINVAL,
				 "invalid alias '%s' (\"latest\", vN and "
				 "numbers are reserved)", name);
	if (rc == STORE_NOT_FOUND)
		return fs_refuse(ctx, "symlink", dir, name, ENOENT,
				 "model '%s' has no version %lld", dir->id.key,
				 (long long)num);
	if (rc != STORE_OK)
		return fs_refuse(ctx, "symlink", dir, name, fs_errno(rc),
				 "cannot set alias '%s': %s", name,
				 store_strerror(rc));
	version_bump(ctx, DEP_MODEL, dir->id.exp_id);
	out->kind = &kind_model_alias;
	out->key = dir->id.key;
	out->obj_id = num;
	return 0;
}

static int aliases_unlink(struct fs_ctx *ctx, struct fs_node *dir,
			  const char *name)
{
	int rc = store_model_alias_delete(ctx->st, dir->id.key, name);

	if (rc != STORE_OK)
		return fs_refuse(ctx, "unlink", dir, name, fs_errno(rc),
				 "cannot drop alias '%s': %s", name,
				 store_strerror(rc));
	version_bump(ctx, DEP_MODEL, dir->id.exp_id);
	return 0;
}

/* rename A B: "ln -sfn N B" makes a temporary alias and renames it over B. */
static int aliases_rename(struct fs_ctx *ctx, struct fs_node *dir,
			  const char *name, const char *newname,
			  unsigned int flags)
{
	int rc;

	if (flags & RENAME_EXCHANGE)
		return fs_refuse(ctx, "rename", dir, name, EINVAL,
				 "aliases cannot be exchanged");
	rc = store_model_alias_rename(ctx->st, dir->id.key, name, newname,
				      (flags & RENAME_NOREPLACE) != 0);
	if (rc == STORE_INVALID)
		return fs_refuse(ctx, "rename", dir, name, EINVAL,
				 "invalid alias '%s' (\"latest\", vN and "
				 "numbers are reserved)", newname);
	if (rc != STORE_OK)
		return fs_refuse(ctx, "rename", dir, name, fs_errno(rc),
				 "cannot rename alias '%s' to '%s': %s", name,
				 newname, store_strerror(rc));
	version_bump(ctx, DEP_MODEL, dir->id.exp_id);
	return 0;
}

static int alias_render(struct fs_ctx *ctx, struct fs_node *node,
			struct content *c)
{
	struct sink s;
	int64_t v = node->id.obj_id;
	int rc;

	rc = model_dir_render(ctx, node, c);
	if (rc < 0)
		return rc;
	sink_begin(&s, ctx, c, 0);
	strbuf_addf(s.sb, "../%lld", (long long)v);
	return sink_end(&s);
}

/* ---- models/NAME/N/ ------------------------------------------------------- */

static int mversion_get(struct fs_ctx *ctx, const struct fs_node *node,
		       struct store_model_version *v)
{
	return -fs_errno(store_model_version_get_by_id(ctx->st,
						       node->id.run_id, v));
}

static int version_dir_render(struct fs_ctx *ctx, struct fs_node *node,
			      struct content *c)
{
	struct store_model_version v;
	int rc = mversion_get(ctx, node, &v);

	if (rc < 0)
		return rc;
	c->mtime_ms = v.updated_ms;
	store_model_version_release(&v);
	return 0;
}

static int json_kv(void *arg, const struct store_kv *kv)
{
	struct jsonw *w = arg;

	jsonw_key(w, kv->key);
	jsonw_string_len(w, kv->value, kv->len);
	return 0;
}

static int json_file(void *arg, const struct store_model_file *f)
{
	struct jsonw *w = arg;

	jsonw_object_begin(w);
	jsonw_key(w, "path");
	jsonw_string(w, f->path);
	jsonw_key(w, "size");
	jsonw_int(w, f->size);
	jsonw_key(w, "sha256");
	jsonw_string(w, f->blob);
	jsonw_object_end(w);
	return 0;
}

/* "experiments/E/runs/ID" of run @run_id, for model.json and run links. */
static int run_path(struct fs_ctx *ctx, int64_t run_id, struct strbuf *out)
{
	struct store_run r;
	struct store_experiment e;
	int rc = store_run_get(ctx->st, run_id, &r);

	if (rc != STORE_OK)
		return -fs_errno(rc);
	rc = store_experiment_get_by_id(ctx->st, r.experiment_id, &e);
	if (rc != STORE_OK) {
		store_run_release(&r);
		return -fs_errno(rc);
	}
	strbuf_addf(out, "experiments/%s/runs/%s", e.name, r.name);
	store_experiment_release(&e);
	store_run_release(&r);
	return out->err;
}

static int model_json_render(struct fs_ctx *ctx, struct fs_node *node,
			     struct content *c)
{
	struct store_model_version v;
	struct strbuf run = STRBUF_INIT;
	struct jsonw w;
	struct sink s;
	int rc = mversion_get(ctx, node, &v);

	if (rc < 0)
		return rc;
	if (v.run_id) {
		rc = run_path(ctx, v.run_id, &run);
		if (rc < 0)
			goto out;
	}
	sink_begin(&s, ctx, c, 0);
	jsonw_init(&w, s.sb, 1);
	jsonw_object_begin(&w);
	jsonw_key(&w, "name");
	jsonw_string(&w, v.model);
	jsonw_key(&w, "version");
	jsonw_int(&w, v.version);
	jsonw_key(&w, "created");
	jsonw_time(&w, v.created_ms);
	jsonw_key(&w, "description");
	jsonw_string(&w, v.description);
	jsonw_key(&w, "tags");
	jsonw_object_begin(&w);
	rc = store_model_tag_list(ctx->st, v.id, json_kv, &w);
	jsonw_object_end(&w);
	jsonw_key(&w, "properties");
	jsonw_object_begin(&w);
	if (rc == STORE_OK)
		rc = store_model_property_list(ctx->st, v.id, json_kv, &w);
	jsonw_object_end(&w);
	jsonw_key(&w, "framework");
	if (v.framework)
		jsonw_string(&w, v.framework);
	else
		jsonw_null(&w);
	jsonw_key(&w, "run");
	if (v.run_id)
		jsonw_string(&w, strbuf_str(&run));
	else
		jsonw_null(&w);
	jsonw_key(&w, "files");
	jsonw_array_begin(&w);
	if (rc == STORE_OK)
		rc = store_model_files(ctx->st, v.id, json_file, &w);
	jsonw_array_end(&w);
	jsonw_object_end(&w);
	if (rc != STORE_OK) {
		content_release(c);
		rc = -fs_errno(rc);
		goto out;
	}
	c->mtime_ms = v.updated_ms;
	rc = sink_end(&s);
out:
	strbuf_release(&run);
	store_model_version_release(&v);
	return rc;
}

static int version_run_present(struct fs_ctx *ctx, const struct fs_ident *dir)
{
	struct store_model_version v;
	int has;

	if (store_model_version_get_by_id(ctx->st, dir->run_id, &v) != STORE_OK)
		return 0;
	has = v.run_id != 0;
	store_model_version_release(&v);
	return has;
}

/* run -> ../../../experiments/E/runs/ID (from models/NAME/N). */
static int version_run_render(struct fs_ctx *ctx, struct fs_node *node,
			      struct content *c)
{
	struct store_model_version v;
	struct sink s;
	int rc = mversion_get(ctx, node, &v);

	if (rc < 0)
		return rc;
	sink_begin(&s, ctx, c, 0);
	strbuf_addstr(s.sb, "../../../");
	rc = v.run_id ? run_path(ctx, v.run_id, s.sb) : -ENOENT;
	c->mtime_ms = v.created_ms;
	store_model_version_release(&v);
	if (rc < 0) {
		content_release(c);
		return rc;
	}
	return sink_end(&s);
}

/* ---- models/NAME/N/files/... ----------------------------------------------- */

/* @n's path inside the version ("" for files/ itself). */
static int vfile_path(const struct fs_node *n, struct strbuf *path)
{
	const char *names[256];
	size_t depth = 0;

	for (; n && n->id.kind != &kind_vfiles; n = n->parent) {
		if (depth == sizeof(names) / sizeof(names[0]))
			return -ENAMETOOLONG;
		names[depth++] = n->name;
	}
	if (!n)
		return -EIO;	/* the kinds form a tree: cannot happen */
	while (depth--) {
		strbuf_addstr(path, names[depth]);
		if (depth)
			strbuf_addch(path, '/');
	}
	return path->err;
}

/* What a version file's node keeps (kind_cache): its blob, size and time. */
struct vfile_cached {
	char blob[BLOB_HEX_LEN + 1];
	int64_t size;
	int64_t mtime_ms;	/* the version's creation */
};

static int vfile_cached_new(const struct store_model_file *f,
			    int64_t created_ms, struct vfile_cached **out)
{
	struct vfile_cached *c = malloc(sizeof(*c));

	if (!c)
		return -ENOMEM;
	snprintf(c->blob, sizeof(c->blob), "%s", f->blob);
	c->size = f->size;
	c->mtime_ms = created_ms;
	*out = c;
	return 0;
}

/* A file's entry in a listing, with what its node will keep. */
static int vfile_entry_add(struct dirlist *dl, const char *name,
			   const struct fs_ident *id, int64_t created_ms,
			   const struct store_model_file *f)
{
	struct vfile_cached *c;
	int rc = vfile_cached_new(f, created_ms, &c);

	return rc < 0 ? rc : dirlist_add_cached(dl, name, id, created_ms, c);
}

/*
 * Finds what @path names among a version's files: the file itself, or a
 * directory (a prefix of some file's path); with @list, adds every child
 * of the directory @path to it, once each.
 */
struct vfind {
	const char *path;	/* "" for the root */
	size_t plen;
	int found;		/* 1 file, 2 directory */
	struct store_model_file file;
	char blob[BLOB_HEX_LEN + 1];
	struct dirlist *list;
	const struct fs_ident *dir;
	char last[MODEL_FILE_PATH_MAX + 1];	/* last child listed */
	struct prefetch_list *prefetch;	/* non-NULL: collect every file */
	int64_t created_ms;	/* listing: the version's, for its entries */
};

static int vfind_one(void *arg, const struct store_model_file *f)
{
	struct vfind *vf = arg;
	const char *rest, *slash;
	size_t nlen;

	if (vf->plen) {
		if (strncmp(f->path, vf->path, vf->plen) != 0)
			return 0;
		if (f->path[vf->plen] == '\0') {
			vf->found = 1;
			vf->file = *f;
			snprintf(vf->blob, sizeof(vf->blob), "%s", f->blob);
			vf->file.blob = vf->blob;
			vf->file.path = NULL;
			return 0;
		}
		if (f->path[vf->plen] != '/')
			return 0;
		rest = f->path + vf->plen + 1;
	} else {
		rest = f->path;
	}
	if (vf->prefetch && prefetch_list_add(vf->prefetch, f->blob,
					      f->size) < 0)
		return 1;
	vf->found = 2;
	if (!vf->list)
		return 0;
	slash = strchr(rest, '/');
	nlen = slash ? (size_t)(slash - rest) : strlen(rest);
	/* files come in path order: children sharing a name are adjacent */
	if (strlen(vf->last) == nlen && memcmp(vf->last, rest, nlen) == 0)
		return 0;
	memcpy(vf->last, rest, nlen);
	vf->last[nlen] = '\0';
	{
		struct fs_ident id = *vf->dir;

		id.kind = slash ? &kind_vdir
				: (f->mode & 0111) ? &kind_vexec : &kind_vfile;
		id.key = NULL;
		/* a file's entry carries what its node keeps (vfile_cached) */
		if (slash ? dirlist_add(vf->list, vf->last, &id,
					vf->created_ms) < 0
			  : vfile_entry_add(vf->list, vf->last, &id,
					    vf->created_ms, f) < 0)
			return 1;
	}
	return 0;
}

static int vfind(struct fs_ctx *ctx, int64_t version_id, struct vfind *vf)
{
	int rc = store_model_files_at(ctx->st, version_id,
				      vf->plen ? vf->path : "", vfind_one, vf);

	if (rc == 1)
		return -ENOMEM;
	if (rc != STORE_OK)
		return -fs_errno(rc);
	return vf->found ? 0 : -ENOENT;
}

static int vdir_lookup(struct fs_ctx *ctx, struct fs_node *dir,
		       const char *name, struct fs_ident *out)
{
	struct strbuf path = STRBUF_INIT;
	struct vfind *vf;
	int rc = vfile_path(dir, &path);

	if (rc == 0 && path.len)
		strbuf_addch(&path, '/');
	if (rc == 0)
		rc = strbuf_addstr(&path, name);
	vf = calloc(1, sizeof(*vf));
	if (!vf)
		rc = -ENOMEM;
	if (rc < 0)
		goto out;
	vf->path = path.buf;
	vf->plen = path.len;
	rc = vfind(ctx, dir->id.run_id, vf);
	if (rc == 0) {
		out->kind = vf->found == 2 ? &kind_vdir
			    : (vf->file.mode & 0111) ? &kind_vexec
			    : &kind_vfile;
		out->key = dir->id.key;
	}
out:
	free(vf);
	strbuf_release(&path);
	return rc;
}

static int vdir_list(struct fs_ctx *ctx, struct fs_node *dir,
		     struct dirlist *dl)
{
	struct strbuf path = STRBUF_INIT;
	struct prefetch_list pl = { 0 };
	struct store_model_version v;
	struct vfind *vf = calloc(1, sizeof(*vf));
	int rc = vf ? vfile_path(dir, &path) : -ENOMEM;

	if (rc == 0)
		rc = mversion_get(ctx, dir, &v);
	if (rc < 0)
		goto out;
	vf->created_ms = v.created_ms;
	store_model_version_release(&v);
	vf->path = strbuf_str(&path);
	vf->plen = path.len;
	vf->list = dl;
	vf->dir = &dir->id;
	/* files/ itself: its listing warms the version (prefetch.c) */
	if (!path.len)
		vf->prefetch = &pl;
	rc = vfind(ctx, dir->id.run_id, vf);
	if (rc == -ENOENT && !path.len)
		rc = 0;		/* a version without files */
	if (rc == 0 && vf->prefetch)
		prefetch_version(ctx, dir->id.run_id, &pl);
	for (size_t i = 0; i < dl->n; i++)
		dl->v[i].id.key = dir->id.key;
out:
	prefetch_list_release(&pl);
	free(vf);
	strbuf_release(&path);
	return rc;
}

/* The file @node names: its blob and size. */
static int vfile_find(struct fs_ctx *ctx, struct fs_node *node,
		      struct vfind *vf)
{
	struct strbuf path = STRBUF_INIT;
	int rc = vfile_path(node, &path);

	if (rc == 0) {
		vf->path = strbuf_str(&path);
		vf->plen = path.len;
		rc = vfind(ctx, node->id.run_id, vf);
		if (rc == 0 && vf->found != 1)
			rc = -EISDIR;
	}
	strbuf_release(&path);
	return rc;
}

/*
 * A version's file never changes, so what it is made of is looked up once
 * per node and kept in the node's content, which these kinds do not
 * otherwise use: mem holds the blob's hex, aux the size, mtime_ms the
 * version's creation. Opens and stats of a large model then cost no query.
 */
static int vfile_fill(struct fs_ctx *ctx, struct fs_node *node, void **out)
{
	struct vfile_cached *c;
	struct store_model_version v;
	struct vfind *vf = calloc(1, sizeof(*vf));
	int rc = vf ? vfile_find(ctx, node, vf) : -ENOMEM;

	if (rc == 0)
		rc = mversion_get(ctx, node, &v);
	if (rc < 0)
		goto out;
	rc = vfile_cached_new(&vf->file, v.created_ms, &c);
	store_model_version_release(&v);
	if (rc == 0)
		*out = c;
out:
	free(vf);
	return rc;
}

/* The node's blob, size and time (kind_cache: borrowed for its life). */
static int vfile_ref(struct fs_ctx *ctx, struct fs_node *node,
		     const struct vfile_cached **ref)
{
	int rc;

	*ref = node_cache_get(ctx, node, vfile_fill, &rc);
	return rc;
}

static int vfile_open(struct fs_ctx *ctx, struct fs_node *node, int flags,
		      int *fd)
{
	const struct vfile_cached *ref;
	int rc = vfile_ref(ctx, node, &ref);

	(void)flags;	/* read-only: writers were refused (erofs) */
	if (rc < 0)
		return rc;
	rc = -fs_errno(blob_open(store_dir(ctx->st), ref->blob, fd));
	/* A model is mostly read whole: let the disk read ahead far. */
	if (rc == 0)
		posix_fadvise(*fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return rc;
}

static int vfile_stat(struct fs_ctx *ctx, struct fs_node *node,
		      struct stat *st)
{
	const struct vfile_cached *ref;
	int rc = vfile_ref(ctx, node, &ref);

	if (rc == 0) {
		st->st_size = (off_t)ref->size;
		st->st_mtim.tv_sec = ref->mtime_ms / 1000;
		st->st_mtim.tv_nsec = (ref->mtime_ms % 1000) * 1000000;
	}
	return rc;
}

static int vdir_render(struct fs_ctx *ctx, struct fs_node *node,
		       struct content *c)
{
	struct store_model_version v;
	int rc = mversion_get(ctx, node, &v);

	if (rc < 0)
		return rc;
	c->mtime_ms = v.created_ms;
	store_model_version_release(&v);
	return 0;
}

/* ---- the kinds ---------------------------------------------------------------- */

static const struct fs_kind kind_vfile = {
	.name = "model file",
	.mode = S_IFREG | 0444,
	.dep = DEP_NONE,
	.backing_open = vfile_open,
	.stat = vfile_stat,
	.passthrough = passthrough_always,	/* a blob never changes */
	.cache_free = free,
	.erofs = 1,
};

static const struct fs_kind kind_vexec = {
	.name = "model executable",
	.mode = S_IFREG | 0555,
	.dep = DEP_NONE,
	.backing_open = vfile_open,
	.stat = vfile_stat,
	.passthrough = passthrough_always,	/* a blob never changes */
	.cache_free = free,
	.erofs = 1,
};

static const struct fs_kind kind_vdir = {
	.name = "model directory",
	.mode = S_IFDIR | 0555,
	.dep = DEP_NONE,
	.lookup = vdir_lookup,
	.list = vdir_list,
	.render = vdir_render,
	.erofs = 1,
};

static const struct fs_kind kind_vfiles = {
	.name = "model files",
	.mode = S_IFDIR | 0555,
	.dep = DEP_NONE,
	.lookup = vdir_lookup,
	.list = vdir_list,
	.render = vdir_render,
	.erofs = 1,
	.dyn_name = "PATH",
	.dyn_kind = &kind_vfile,
	.dyn_help = "the version's files as registered (read-only: EROFS)",
};

static const struct fs_kind kind_model_json = {
	.name = "model.json",
	.mode = S_IFREG | 0444,
	.dep = DEP_MODEL,
	.render = model_json_render,
};

static const struct fs_kind kind_version_run = {
	.name = "model run link",
	.mode = S_IFLNK | 0777,
	.dep = DEP_MODEL,
	.render = version_run_render,
	.present = version_run_present,
};

static const struct fs_entry version_entries[] = {
	{ "model.json", &kind_model_json, "name, version, created, description, tags, properties, framework, run, files (path, size, sha256)" },
	{ "tags", &kind_model_version_tags, "one file per tag: write replaces, rm deletes" },
	{ "files", &kind_vfiles, "the version's files, read-only" },
	{ "run", &kind_version_run, "the run the version was registered from (when any)" },
	{ NULL, NULL, NULL },
};

const struct fs_kind kind_model_version = {
	.name = "model version",
	.mode = S_IFDIR | 0555,
	.dep = DEP_MODEL,
	.entries = version_entries,
	.render = version_dir_render,
};

static const struct fs_kind kind_model_alias = {
	.name = "model alias",
	.mode = S_IFLNK | 0777,
	.dep = DEP_MODEL,
	.render = alias_render,
};

const struct fs_kind kind_model_aliases = {
	.name = "model aliases",
	.mode = S_IFDIR | 0755,
	.dep = DEP_MODEL,
	.lookup = aliases_lookup,
	.list = aliases_list,
	.symlink = aliases_symlink,
	.rename = aliases_rename,
	.unlink = aliases_unlink,
	.render = model_dir_render,
	.dyn_name = "ALIAS",
	.dyn_kind = &kind_model_alias,
	.dyn_help = "-> ../N: ln -s N sets or moves, rm drops; \"latest\" and vN are refused",
};

static const struct fs_kind kind_model_latest = {
	.name = "model latest",
	.mode = S_IFLNK | 0777,
	.dep = DEP_MODEL,
	.render = model_latest_render,
	.present = model_latest_present,
};

static const struct fs_entry model_entries[] = {
	{ "latest", &kind_model_latest, "-> N, the highest version" },
	{ "aliases", &kind_model_aliases, "named versions" },
	{ NULL, NULL, NULL },
};

const struct fs_kind kind_model = {
	.name = "model",
	.mode = S_IFDIR | 0755,
	.dep = DEP_MODEL,
	.entries = model_entries,
	.lookup = model_lookup,
	.list = model_list,
	.rmdir = model_rmdir,
	.create = model_create,
	.render = model_dir_render,
	.dyn_name = "N",
	.dyn_kind = &kind_model_version,
	.dyn_help = "a version: rmdir deletes it (numbers are never reused)",
};

static const struct fs_entry models_entries[] = {
	{ "register", &kind_model_register, "special: write a registration request (JSON) -> a new version; read back \"NAME N\"" },
	{ NULL, NULL, NULL },
};

const struct fs_kind kind_models = {
	.name = "models",
	.mode = S_IFDIR | 0755,
	.dep = DEP_MODELS,
	.entries = models_entries,
	.lookup = models_lookup,
	.list = models_list,
	.mkdir = models_mkdir,
	.rmdir = models_rmdir,
	.render = models_render,
	.dyn_name = "NAME",
	.dyn_kind = &kind_model,
	.dyn_help = "a model: mkdir makes one, rmdir removes one without versions",
};
