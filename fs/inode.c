/*
 * inode.c - the inode table: kernel inode numbers <-> nodes.
 *
 * Invariants
 *  1. A node lives while the kernel holds lookups on it (nlookup) or we
 *     hold references (refs: a child's parent pointer, an open handle, a
 *     request in progress). The last of the two to drop frees it.
 *  2. A hashed node is found by (parent inode, name). When a name comes to
 *     mean another object (an experiment removed and made again), the old
 *     node is unhashed, not reused: the kernel may still hold its inode
 *     number, and that number must keep meaning the old, now gone, object.
 *  3. Inode numbers are never reused while mounted (a 64-bit counter).
 *  4. One mutex guards both hash tables and every nlookup/refs count; node
 *     contents have their own per-node lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs_internal.h"

#define INITIAL_BUCKETS 4096

static size_t hash_ino(fuse_ino_t ino, size_t nbuckets)
{
	return (size_t)(ino * 0x9E3779B97F4A7C15ULL >> 20) & (nbuckets - 1);
}

static size_t hash_name(fuse_ino_t parent, const char *name, size_t nbuckets)
{
	uint64_t h = 1469598103934665603ULL ^ parent;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h ^ h >> 29) & (nbuckets - 1);
}

static void by_name_remove(struct inode_table *t, struct fs_node *n)
{
	struct fs_node **pp;

	if (n->unhashed || !n->parent)
		return;
	pp = &t->by_name[hash_name(n->parent->ino, n->name, t->nbuckets)];
	for (; *pp; pp = &(*pp)->name_next) {
		if (*pp == n) {
			*pp = n->name_next;
			break;
		}
	}
	n->unhashed = 1;
}

static void by_ino_remove(struct inode_table *t, struct fs_node *n)
{
	struct fs_node **pp = &t->by_ino[hash_ino(n->ino, t->nbuckets)];

	for (; *pp; pp = &(*pp)->ino_next) {
		if (*pp == n) {
			*pp = n->ino_next;
			break;
		}
	}
}

/* Doubles the bucket arrays; failure just leaves chains longer. */
static void table_grow(struct inode_table *t)
{
	size_t nb = t->nbuckets * 2;
	struct fs_node **by_ino = calloc(nb, sizeof(*by_ino));
	struct fs_node **by_name = calloc(nb, sizeof(*by_name));

	if (!by_ino || !by_name) {
		free(by_ino);
		free(by_name);
		return;
	}
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct fs_node *n, *next;

		for (n = t->by_ino[i]; n; n = next) {
			size_t b = hash_ino(n->ino, nb);

			next = n->ino_next;
			n->ino_next = by_ino[b];
			by_ino[b] = n;
		}
		for (n = t->by_name[i]; n; n = next) {
			size_t b = hash_name(n->parent->ino, n->name, nb);

			next = n->name_next;
			n->name_next = by_name[b];
			by_name[b] = n;
		}
	}
	free(t->by_ino);
	free(t->by_name);
	t->by_ino = by_ino;
	t->by_name = by_name;
	t->nbuckets = nb;
}

static struct fs_node *node_alloc(const char *name, const struct fs_ident *id)
{
	struct fs_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->name = strdup(name);
	if (id->key) {
		n->key_owned = strdup(id->key);
		if (!n->key_owned)
			goto out_free;
	}
	if (!n->name)
		goto out_free;
	n->id = *id;
	n->id.key = n->key_owned;
	n->content.fd = -1;
	strbuf_init(&n->content.mem, SIZE_MAX);
	pthread_mutex_init(&n->lock, NULL);
	return n;

out_free:
	free(n->key_owned);
	free(n->name);
	free(n);
	return NULL;
}

static void node_free(struct fs_node *n)
{
	if (n->kind_cache && n->id.kind->cache_free)
		n->id.kind->cache_free(n->kind_cache);
	content_release(&n->content);
	pthread_mutex_destroy(&n->lock);
	free(n->key_owned);
	free(n->name);
	free(n);
}

int itable_init(struct inode_table *t, const struct fs_kind *root_kind)
{
	struct fs_ident id = { .kind = root_kind };

	memset(t, 0, sizeof(*t));
	t->nbuckets = INITIAL_BUCKETS;
	t->by_ino = calloc(t->nbuckets, sizeof(*t->by_ino));
	t->by_name = calloc(t->nbuckets, sizeof(*t->by_name));
	t->root = node_alloc("", &id);
	if (!t->by_ino || !t->by_name || !t->root) {
		itable_release(t);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->root->ino = FUSE_ROOT_ID;
	t->root->nlookup = 1;	/* never forgotten */
	t->root->unhashed = 1;
	t->next_ino = FUSE_ROOT_ID + 1;
	t->by_ino[hash_ino(FUSE_ROOT_ID, t->nbuckets)] = t->root;
	t->count = 1;
	return 0;
}

void itable_release(struct inode_table *t)
{
	for (size_t i = 0; t->by_ino && i < t->nbuckets; i++) {
		struct fs_node *n, *next;

		for (n = t->by_ino[i]; n; n = next) {
			next = n->ino_next;
			node_free(n);
		}
	}
	if (t->by_ino)
		pthread_mutex_destroy(&t->lock);
	else if (t->root)
		node_free(t->root);
	free(t->by_ino);
	free(t->by_name);
	memset(t, 0, sizeof(*t));
}

struct fs_node *node_get(struct fs_ctx *ctx, fuse_ino_t ino)
{
	struct inode_table *t = &ctx->itable;
	struct fs_node *n;

	pthread_mutex_lock(&t->lock);
	for (n = t->by_ino[hash_ino(ino, t->nbuckets)]; n; n = n->ino_next)
		if (n->ino == ino)
			break;
	if (n)
		n->refs++;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* Frees @n and then any ancestor it was keeping alive; table locked. */
static void node_maybe_free_locked(struct inode_table *t, struct fs_node *n)
{
	while (n && n->refs == 0 && n->nlookup == 0 && n != t->root) {
		struct fs_node *parent = n->parent;

		by_name_remove(t, n);
		by_ino_remove(t, n);
		t->count--;
		node_free(n);
		n = parent;
		if (n)
			n->refs--;
	}
}

void node_put(struct fs_ctx *ctx, struct fs_node *n)
{
	struct inode_table *t = &ctx->itable;

	if (!n)
		return;
	pthread_mutex_lock(&t->lock);
	n->refs--;
	node_maybe_free_locked(t, n);
	pthread_mutex_unlock(&t->lock);
}

void node_forget(struct fs_ctx *ctx, fuse_ino_t ino, uint64_t nlookup)
{
	struct inode_table *t = &ctx->itable;
	struct fs_node *n;

	pthread_mutex_lock(&t->lock);
	for (n = t->by_ino[hash_ino(ino, t->nbuckets)]; n; n = n->ino_next)
		if (n->ino == ino)
			break;
	if (n && n != t->root) {
		n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
		node_maybe_free_locked(t, n);
	}
	pthread_mutex_unlock(&t->lock);
}

static int ident_equal(const struct fs_ident *a, const struct fs_ident *b)
{
	if (a->kind != b->kind || a->exp_id != b->exp_id ||
	    a->run_id != b->run_id)
		return 0;
	/* A file made but not yet stored (obj_id 0) becomes its object. */
	return a->obj_id == b->obj_id || a->obj_id == 0 || b->obj_id == 0;
}

static struct fs_node *child_find_locked(struct inode_table *t,
					 struct fs_node *dir, const char *name)
{
	struct fs_node *n;

	n = t->by_name[hash_name(dir->ino, name, t->nbuckets)];
	for (; n; n = n->name_next)
		if (n->parent == dir && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

struct fs_node *node_lookup_ref(struct fs_ctx *ctx, struct fs_node *dir,
				const char *name, const struct fs_ident *id)
{
	struct inode_table *t = &ctx->itable;
	struct fs_node *n, *old;

	pthread_mutex_lock(&t->lock);
	old = child_find_locked(t, dir, name);
	if (old && ident_equal(&old->id, id)) {
		if (old->id.obj_id == 0)
			old->id.obj_id = id->obj_id;
		old->nlookup++;
		pthread_mutex_unlock(&t->lock);
		return old;
	}
	n = node_alloc(name, id);
	if (!n) {
		pthread_mutex_unlock(&t->lock);
		return NULL;
	}
	if (old)
		by_name_remove(t, old);
	if (t->count >= t->nbuckets)
		table_grow(t);
	n->ino = t->next_ino++;
	n->parent = dir;
	dir->refs++;
	n->nlookup = 1;
	n->ino_next = t->by_ino[hash_ino(n->ino, t->nbuckets)];
	t->by_ino[hash_ino(n->ino, t->nbuckets)] = n;
	n->name_next = t->by_name[hash_name(dir->ino, name, t->nbuckets)];
	t->by_name[hash_name(dir->ino, name, t->nbuckets)] = n;
	t->count++;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void node_unhash_child(struct fs_ctx *ctx, struct fs_node *dir,
		       const char *name)
{
	struct inode_table *t = &ctx->itable;
	struct fs_node *n;

	pthread_mutex_lock(&t->lock);
	n = child_find_locked(t, dir, name);
	if (n)
		by_name_remove(t, n);
	pthread_mutex_unlock(&t->lock);
}

struct fs_node *node_child_get(struct fs_ctx *ctx, struct fs_node *dir,
			       const char *name)
{
	struct fs_node *n;

	pthread_mutex_lock(&ctx->itable.lock);
	n = child_find_locked(&ctx->itable, dir, name);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&ctx->itable.lock);
	return n;
}

#define CARRY_WAIT_MS 200

void node_carry_update(struct fs_ctx *ctx, struct fs_node *n, int had, int has)
{
	if (!had == !has)
		return;
	pthread_mutex_lock(&ctx->carry_lock);
	__atomic_add_fetch(&n->carrying, has ? 1 : -1, __ATOMIC_RELEASE);
	if (!n->carrying)
		pthread_cond_broadcast(&ctx->carry_done);
	pthread_mutex_unlock(&ctx->carry_lock);
}

int node_wait_carry(struct fs_ctx *ctx, struct fs_node *n)
{
	struct timespec deadline;

	/* The common case, on every getattr: nothing to wait for, no lock. */
	if (!__atomic_load_n(&n->carrying, __ATOMIC_ACQUIRE))
		return 0;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_nsec += CARRY_WAIT_MS * 1000000L;
	deadline.tv_sec += deadline.tv_nsec / 1000000000L;
	deadline.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&ctx->carry_lock);
	while (n->carrying &&
	       pthread_cond_timedwait(&ctx->carry_done, &ctx->carry_lock,
				      &deadline) == 0)
		;
	pthread_mutex_unlock(&ctx->carry_lock);
	return 1;
}

void node_set_obj_id(struct fs_ctx *ctx, struct fs_node *n, int64_t obj_id)
{
	pthread_mutex_lock(&ctx->itable.lock);
	n->id.obj_id = obj_id;
	pthread_mutex_unlock(&ctx->itable.lock);
}

void node_move(struct fs_ctx *ctx, struct fs_node *dir, const char *name,
	       struct fs_node *newdir, const char *newname)
{
	struct inode_table *t = &ctx->itable;
	struct fs_node *n, *over, *old_parent;
	char *copy = strdup(newname);

	pthread_mutex_lock(&t->lock);
	over = child_find_locked(t, newdir, newname);
	if (over)
		by_name_remove(t, over);
	n = child_find_locked(t, dir, name);
	if (n && !copy) {
		by_name_remove(t, n);	/* found again by a new lookup */
	} else if (n) {
		by_name_remove(t, n);
		free(n->name);
		n->name = copy;
		copy = NULL;
		old_parent = n->parent;
		n->parent = newdir;
		newdir->refs++;
		n->unhashed = 0;
		n->name_next = t->by_name[hash_name(newdir->ino, n->name,
						    t->nbuckets)];
		t->by_name[hash_name(newdir->ino, n->name, t->nbuckets)] = n;
		old_parent->refs--;
		node_maybe_free_locked(t, old_parent);
	}
	pthread_mutex_unlock(&t->lock);
	free(copy);
}

int node_path_below(struct fs_ctx *ctx, const struct fs_node *n,
		    const struct fs_kind *top, char *buf, size_t len)
{
	const char *names[256];
	size_t depth = 0, used = 0;
	int rc = 0;

	pthread_mutex_lock(&ctx->itable.lock);
	for (; n && n->id.kind != top; n = n->parent) {
		if (depth == sizeof(names) / sizeof(names[0])) {
			rc = -ENAMETOOLONG;
			goto out_unlock;
		}
		names[depth++] = n->name;
	}
	if (!n) {
		rc = -EIO;
		goto out_unlock;
	}
	if (len < 2) {
		rc = -ENAMETOOLONG;
		goto out_unlock;
	}
	buf[0] = '.';
	buf[1] = '\0';
	if (depth)
		buf[0] = '\0';
	while (depth--) {
		int w = snprintf(buf + used, len - used, "%s%s",
				 used ? "/" : "", names[depth]);

		if (w < 0 || (size_t)w >= len - used) {
			rc = -ENAMETOOLONG;
			break;
		}
		used += (size_t)w;
	}
out_unlock:
	pthread_mutex_unlock(&ctx->itable.lock);
	return rc;
}

int node_path_join(struct fs_ctx *ctx, const struct fs_node *n,
		   const struct fs_kind *top, const char *name, char *buf,
		   size_t len)
{
	int rc = node_path_below(ctx, n, top, buf, len);
	size_t used;

	if (rc < 0)
		return rc;
	if (strcmp(buf, ".") == 0)
		buf[0] = '\0';
	used = strlen(buf);
	if (name && (size_t)snprintf(buf + used, len - used, "%s%s",
				     used ? "/" : "", name) >= len - used)
		return -ENAMETOOLONG;
	return 0;
}

static int path_add(struct fs_node *n, struct strbuf *out)
{
	if (!n->parent)
		return 0;
	path_add(n->parent, out);
	if (out->len)
		strbuf_addch(out, '/');
	return strbuf_addstr(out, n->name);
}

int node_path(struct fs_ctx *ctx, struct fs_node *n, struct strbuf *out)
{
	/*
	 * Parents outlive children; names change only by node_move() in
	 * mirrored trees, which frees the old name: read them with the
	 * table's lock held.
	 */
	pthread_mutex_lock(&ctx->itable.lock);
	path_add(n, out);
	pthread_mutex_unlock(&ctx->itable.lock);
	return out->err;
}
