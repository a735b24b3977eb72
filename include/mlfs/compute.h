/*
 * compute.h - compute targets: where submitted runs execute.
 *
 * The local target runs each run under its own supervisor: a process of
 * its own (the mlfs-supervise binary), in its own
 * session, that outlives the mount. A supervisor claims the oldest Queued
 * run of its target while the target has a free slot (store_run_claim),
 * runs it to the end, then claims the next; it exits when nothing is left
 * to claim. So the queue drains whether or not a mount is running, and the
 * mount only has to start a supervisor when a run is submitted (and at
 * mount, for runs queued meanwhile).
 *
 * Threads: compute_local_spawn() and compute_local_reap() may be called
 * from any thread; the rest belong to one thread at a time.
 */
#ifndef MLFS_COMPUTE_H
#define MLFS_COMPUTE_H

#include <stddef.h>
#include <stdint.h>

#include "mlfs/store.h"

#define COMPUTE_LOCAL "local"
/* SIGTERM first, SIGKILL this long after, on cancel and on time-out. */
#define COMPUTE_KILL_GRACE_MS 10000
/* The error of a run whose supervisor died (seen at mount). */
#define COMPUTE_LOST_ERROR "supervisor lost"

/* ---- processes --------------------------------------------------------- */

/*
 * proc_id_of - fill @out for process @pid: its start time from
 * /proc/PID/stat and this boot's id (copied into @boot, 40 bytes).
 * 0, or -errno (-ESRCH when there is no such process).
 */
int proc_id_of(int64_t pid, struct proc_id *out, char boot[40]);
/*
 * 1 when @p names a process that is still running (same pid, same start
 * time, same boot, not a zombie), else 0.
 */
int proc_id_alive(const struct proc_id *p);
/* The number of CPUs this process may use (at least 1). */
int compute_cpus(void);

/* ---- the local target, seen from the mount ------------------------------ */

struct compute_local;

/*
 * compute_local_new - prepare to start supervisors: @exe is the mlfs
 * binary to run, @workspace the workspace directory and @mountpoint the
 * mount (for MLFS_RUN_DIR; may be NULL). Copies the strings. NULL when out
 * of memory.
 */
struct compute_local *compute_local_new(const char *exe, const char *workspace,
					const char *mountpoint);
/* Waits for nothing: supervisors live on. Reaps the ones that ended. */
void compute_local_free(struct compute_local *cl);

/*
 * compute_local_spawn - start @n supervisors for the local target. Each
 * claims a run if one is queued and a slot is free, and exits otherwise.
 * 0, or -errno from posix_spawn (with a message in @err).
 */
int compute_local_spawn(struct compute_local *cl, int n, char *err,
			size_t errlen);
/* Collects the exit status of supervisors that ended (no zombies). */
void compute_local_reap(struct compute_local *cl);

/*
 * compute_local_recover - at mount: every active run whose supervisor is
 * gone ends Failed with COMPUTE_LOST_ERROR (its leftover process group, if
 * still running, is killed); then supervisors are started for the runs
 * still queued. *lost (may be NULL) counts the runs failed. STORE_* code.
 */
int compute_local_recover(struct compute_local *cl, struct store *st,
			  int *lost);
/*
 * Only the first part of compute_local_recover: fail lost runs, calling
 * @failed (may be NULL) with the id of each run it failed.
 */
typedef void (*compute_lost_fn)(void *ctx, int64_t run_id);
int compute_fail_lost_runs(struct store *st, compute_lost_fn failed,
			   void *ctx, int *lost);

/* ---- the supervisor ----------------------------------------------------- */

/*
 * supervise_main - the body of "mlfs-supervise WORKSPACE COMPUTE
 * [MOUNTPOINT]": claim and run queued runs until none is left. Returns the
 * process exit status (0 when every claimed run was carried to its end,
 * whatever that end was).
 */
int supervise_main(const char *workspace, const char *compute,
		   const char *mountpoint);

#endif
