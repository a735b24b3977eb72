/*
 * local.c - the local compute target, as the mount sees it: starting
 * supervisors, reaping them, and failing runs whose supervisor died.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mlfs/compute.h"

extern char **environ;

#define MAX_CHILDREN 1024

struct compute_local {
	char *exe;
	char *workspace;
	char *mountpoint;
	pthread_mutex_t lock;
	pid_t children[MAX_CHILDREN];	/* supervisors not yet reaped */
	size_t nchildren;
};

struct compute_local *compute_local_new(const char *exe, const char *workspace,
					const char *mountpoint)
{
	struct compute_local *cl = calloc(1, sizeof(*cl));

	if (!cl)
		return NULL;
	cl->exe = strdup(exe);
	cl->workspace = strdup(workspace);
	cl->mountpoint = mountpoint ? strdup(mountpoint) : NULL;
	pthread_mutex_init(&cl->lock, NULL);
	if (!cl->exe || !cl->workspace || (mountpoint && !cl->mountpoint)) {
		compute_local_free(cl);
		return NULL;
	}
	return cl;
}

void compute_local_free(struct compute_local *cl)
{
	if (!cl)
		return;
	compute_local_reap(cl);
	pthread_mutex_destroy(&cl->lock);
	free(cl->exe);
	free(cl->workspace);
	free(cl->mountpoint);
	free(cl);
}

void compute_local_reap(struct compute_local *cl)
{
	size_t i = 0;

	pthread_mutex_lock(&cl->lock);
	while (i < cl->nchildren) {
		if (waitpid(cl->children[i], NULL, WNOHANG) != 0)
			cl->children[i] = cl->children[--cl->nchildren];
		else
			i++;
	}
	pthread_mutex_unlock(&cl->lock);
}

static int spawn_one(struct compute_local *cl, char *err, size_t errlen)
{
	char *argv[] = {
		(char *)"mlfs-supervise", cl->workspace,
		(char *)COMPUTE_LOCAL, cl->mountpoint, NULL,
	};
	posix_spawnattr_t attr;
	sigset_t none;
	pid_t pid;
	int rc;

	rc = posix_spawnattr_init(&attr);
	if (rc != 0)
		goto out;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID |
					       POSIX_SPAWN_SETSIGMASK);
	rc = posix_spawn(&pid, cl->exe, NULL, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	if (rc != 0)
		goto out;
	pthread_mutex_lock(&cl->lock);
	if (cl->nchildren < MAX_CHILDREN)
		cl->children[cl->nchildren++] = pid;
	pthread_mutex_unlock(&cl->lock);
	return 0;
out:
	snprintf(err, errlen, "cannot start a supervisor '%s': %s", cl->exe,
		 strerror(rc));
	return -rc;
}

int compute_local_spawn(struct compute_local *cl, int n, char *err,
			size_t errlen)
{
	int rc = 0;

	compute_local_reap(cl);
	for (int i = 0; i < n && rc == 0; i++)
		rc = spawn_one(cl, err, errlen);
	return rc;
}

/* ---- recovery at mount ---------------------------------------------------- */

struct lost_run {
	int64_t id;
	struct proc_id process;
	char boot[40];
};

struct lost_list {
	struct lost_run *v;
	size_t n, alloc;
};

static int collect_lost(void *ctx, const struct store_active_run *r)
{
	struct lost_list *l = ctx;
	struct lost_run *v;

	if (proc_id_alive(&r->supervisor))
		return 0;
	if (l->n == l->alloc) {
		size_t alloc = l->alloc ? 2 * l->alloc : 16;

		v = realloc(l->v, alloc * sizeof(*v));
		if (!v)
			return 1;
		l->v = v;
		l->alloc = alloc;
	}
	v = &l->v[l->n++];
	v->id = r->id;
	v->process = r->process;
	snprintf(v->boot, sizeof(v->boot), "%s",
		 r->process.boot_id ? r->process.boot_id : "");
	v->process.boot_id = v->boot;
	return 0;
}

int compute_fail_lost_runs(struct store *st, compute_lost_fn failed,
			   void *ctx, int *lost)
{
	struct lost_list l = { 0 };
	int rc = store_run_list_active(st, collect_lost, &l);
	int nfailed = 0;

	for (size_t i = 0; rc == STORE_OK && i < l.n; i++) {
		/* the command may outlive its supervisor: stop what is left */
		if (proc_id_alive(&l.v[i].process))
			kill(-(pid_t)l.v[i].process.pid, SIGKILL);
		rc = store_run_finish(st, l.v[i].id, RUN_FAILED, 0, 0,
				      COMPUTE_LOST_ERROR);
		if (rc == STORE_DENIED) {
			rc = STORE_OK;	/* it ended meanwhile after all */
		} else if (rc == STORE_OK) {
			nfailed++;
			if (failed)
				failed(ctx, l.v[i].id);
		}
	}
	free(l.v);
	if (lost)
		*lost = nfailed;
	return rc;
}

static int count_queued(void *ctx, const struct store_run_entry *r,
			enum run_status status, const char *experiment)
{
	int *n = ctx;

	(void)r;
	(void)experiment;
	if (status == RUN_QUEUED)
		(*n)++;
	return 0;
}

int compute_local_recover(struct compute_local *cl, struct store *st,
			  int *lost)
{
	char err[512];
	int queued = 0;
	int rc = compute_fail_lost_runs(st, NULL, NULL, lost);

	if (rc == STORE_OK)
		rc = store_compute_queue(st, COMPUTE_LOCAL, count_queued,
					 &queued);
	if (rc != STORE_OK)
		return rc;
	if (queued > compute_cpus() * 4)
		queued = compute_cpus() * 4;
	if (queued > 0 && compute_local_spawn(cl, queued, err, sizeof(err)) < 0) {
		fprintf(stderr, "mlfs: %s\n", err);
		return STORE_IO;
	}
	return STORE_OK;
}
