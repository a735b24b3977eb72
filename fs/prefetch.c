/*
 * prefetch.c - warming a version's files when its files/ is listed.
 *
 * A directory of small files (a tokenizer, a sharded checkpoint, a
 * dataset copy) is read file by file: cp -r, tar and loaders open, read
 * and close each in turn, and on a cold cache every file waits for the
 * disk twice (its directory entry and inode, then its bytes), one after
 * the other. A version never changes, and a listing of its files/ is
 * nearly always followed by reading them, so the listing hands the
 * version's files (blobs, or a local dataset's sources), in path order,
 * to a few background threads that open each one (reading its inode) and
 * ask for the bytes of the small ones (POSIX_FADV_WILLNEED, which queues
 * the reads and returns). The reader
 * then mostly finds the page cache filled, and the disk sees several
 * requests at once instead of one.
 *
 * Bounded: PREFETCH_FILES files and PREFETCH_BYTES bytes per version,
 * data only for files up to PREFETCH_FILE_MAX (the kernel reads ahead in
 * large files by itself), and a version listed again within
 * PREFETCH_AGAIN_MS is not warmed twice. Best effort: a file that cannot
 * be opened is skipped (the reader's own open reports it).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs_internal.h"
#include "mlfs/blob.h"
#include "mlfs/timefmt.h"

#define PREFETCH_THREADS 4
#define PREFETCH_FILES 4096
#define PREFETCH_BYTES (256LL * 1024 * 1024)
#define PREFETCH_FILE_MAX (4LL * 1024 * 1024)
#define PREFETCH_AGAIN_MS (30 * 1000)
#define PREFETCH_RECENT 16

struct prefetch_job {
	struct prefetch_job *next;
	struct prefetch_item *items;
	size_t n, taken;
};

struct prefetcher {
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct prefetch_job *head, *tail;
	int stopping;
	size_t threads;
	pthread_t thread[PREFETCH_THREADS];
	char workspace[4096];
	/* versions warmed lately: (key, when) in a ring */
	int64_t recent_key[PREFETCH_RECENT];
	int64_t recent_ms[PREFETCH_RECENT];
	size_t recent_next;
};

/* The next item of @pl, or NULL when @pl is full (or no memory: -ENOMEM). */
static struct prefetch_item *item_next(struct prefetch_list *pl, int64_t size,
				       int *rc)
{
	struct prefetch_item *it;

	*rc = 0;
	if (pl->n >= PREFETCH_FILES || size < 0)
		return NULL;
	if (pl->n == pl->alloc) {
		size_t alloc = pl->alloc ? pl->alloc * 2 : 64;
		struct prefetch_item *v = realloc(pl->v, alloc * sizeof(*v));

		if (!v) {
			*rc = -ENOMEM;
			return NULL;
		}
		pl->v = v;
		pl->alloc = alloc;
	}
	it = &pl->v[pl->n++];
	memset(it, 0, sizeof(*it));
	/* only the bytes within the budget are asked for */
	it->size = size <= PREFETCH_FILE_MAX &&
		   pl->bytes + size <= PREFETCH_BYTES ? size : 0;
	pl->bytes += it->size;
	return it;
}

int prefetch_list_add(struct prefetch_list *pl, const char *hex, int64_t size)
{
	int rc;
	struct prefetch_item *it = item_next(pl, size, &rc);

	if (it)
		snprintf(it->hex, sizeof(it->hex), "%s", hex);
	return rc;
}

int prefetch_list_add_open(struct prefetch_list *pl,
			   int (*open)(const void *arg, int *fd), void *arg,
			   int64_t size)
{
	int rc;
	struct prefetch_item *it = item_next(pl, size, &rc);

	if (!it) {
		free(arg);
		return rc;
	}
	it->open = open;
	it->arg = arg;
	return 0;
}

static void items_free(struct prefetch_item *v, size_t from, size_t n)
{
	for (size_t i = from; i < n; i++)
		free(v[i].arg);
	free(v);
}

void prefetch_list_release(struct prefetch_list *pl)
{
	items_free(pl->v, 0, pl->n);
	memset(pl, 0, sizeof(*pl));
}

static void warm_file(const char *workspace, struct prefetch_item *it)
{
	int fd, rc;

	rc = it->open ? it->open(it->arg, &fd)
		      : blob_open(workspace, it->hex, &fd) == STORE_OK ? 0 : -1;
	free(it->arg);
	it->arg = NULL;
	if (rc < 0)
		return;
	if (it->size > 0)
		posix_fadvise(fd, 0, (off_t)it->size, POSIX_FADV_WILLNEED);
	close(fd);
}

/* The next item to warm, copied out, or 0 when stopping. */
static int take_item(struct prefetcher *p, struct prefetch_item *out)
{
	int got = 0;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping && !p->head)
		pthread_cond_wait(&p->work, &p->lock);
	if (!p->stopping) {
		struct prefetch_job *j = p->head;

		*out = j->items[j->taken++];	/* the item's arg goes with it */
		if (j->taken == j->n) {
			p->head = j->next;
			if (!p->head)
				p->tail = NULL;
			free(j->items);
			free(j);
		}
		got = 1;
	}
	pthread_mutex_unlock(&p->lock);
	return got;
}

static void *prefetch_loop(void *arg)
{
	struct prefetcher *p = arg;
	struct prefetch_item it;

	while (take_item(p, &it))
		warm_file(p->workspace, &it);
	return NULL;
}

static struct prefetcher *prefetcher_new(struct fs_ctx *ctx)
{
	struct prefetcher *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	snprintf(p->workspace, sizeof(p->workspace), "%s",
		 store_dir(ctx->st));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	for (; p->threads < PREFETCH_THREADS; p->threads++)
		if (pthread_create(&p->thread[p->threads], NULL,
				   prefetch_loop, p) != 0)
			break;
	if (p->threads == 0) {
		pthread_cond_destroy(&p->work);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return NULL;
	}
	return p;
}

/* 1 when @key was warmed within PREFETCH_AGAIN_MS; else notes it now. */
static int warmed_lately(struct prefetcher *p, int64_t key)
{
	int64_t now = time_now_ms();

	for (size_t i = 0; i < PREFETCH_RECENT; i++)
		if (p->recent_key[i] == key &&
		    now - p->recent_ms[i] < PREFETCH_AGAIN_MS)
			return 1;
	p->recent_key[p->recent_next] = key;
	p->recent_ms[p->recent_next] = now;
	p->recent_next = (p->recent_next + 1) % PREFETCH_RECENT;
	return 0;
}

void prefetch_version(struct fs_ctx *ctx, int64_t key, struct prefetch_list *pl)
{
	struct prefetch_job *j = NULL;
	struct prefetcher *p;

	pthread_mutex_lock(&ctx->prefetch_lock);
	if (!ctx->prefetch && !ctx->stopping)
		ctx->prefetch = prefetcher_new(ctx);
	p = ctx->prefetch;
	pthread_mutex_unlock(&ctx->prefetch_lock);
	if (!p || pl->n == 0)
		goto out;
	pthread_mutex_lock(&p->lock);
	if (!p->stopping && !warmed_lately(p, key))
		j = calloc(1, sizeof(*j));
	if (j) {
		j->items = pl->v;
		j->n = pl->n;
		pl->v = NULL;	/* the job owns them now */
		pl->n = 0;
		if (p->tail)
			p->tail->next = j;
		else
			p->head = j;
		p->tail = j;
		pthread_cond_broadcast(&p->work);
	}
	pthread_mutex_unlock(&p->lock);
out:
	prefetch_list_release(pl);
}

void prefetch_stop(struct fs_ctx *ctx)
{
	struct prefetcher *p = ctx->prefetch;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < p->threads; i++)
		pthread_join(p->thread[i], NULL);
	while (p->head) {
		struct prefetch_job *j = p->head;

		p->head = j->next;
		items_free(j->items, j->taken, j->n);
		free(j);
	}
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p);
	ctx->prefetch = NULL;
}
