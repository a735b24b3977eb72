#ifndef MLFS_GITINFO_H
#define MLFS_GITINFO_H

#include <stddef.h>

/*
 * gitinfo: what a run records about the git repository its source
 * directory lives in (DESIGN.md, "Runs": repository URL, branch, commit,
 * dirty), read with libgit2.
 *
 * Invariants of a filled `struct gitinfo`:
 *
 *  - `found` is 1 when the source directory is inside a git working tree
 *    (or a bare repository), 0 otherwise. When it is 0 every pointer is
 *    NULL and `dirty` is 0.
 *
 *  - `repository` is the URL of the remote named "origin"; without one,
 *    of the first remote in name order; NULL when there is no remote or
 *    it has no URL. The user and password part of a "scheme://" URL is
 *    dropped ("https://TOKEN@host/x" is recorded as "https://host/x"):
 *    properties are visible to everyone who can read the mount.
 *
 *  - `branch` is the short name of the branch HEAD points at ("main"),
 *    also for a branch with no commits yet; NULL when HEAD is detached.
 *
 *  - `commit` is the 40 lowercase hex digits of the commit HEAD resolves
 *    to; NULL when there is no commit yet.
 *
 *  - `dirty` is 1 when anything under the source directory differs from
 *    HEAD: files modified in the working tree or the index, staged,
 *    deleted, renamed, or untracked and not ignored. Changes elsewhere in
 *    the repository do not count. A bare repository is never dirty.
 *
 *  - Every non-NULL string is malloc'd and owned by the struct.
 *
 * Life cycle
 *
 *	struct gitinfo g = GITINFO_INIT;
 *	rc = gitinfo_read(dir, &g, err, sizeof(err));
 *	... gitinfo_each_property(&g, fn, ctx) ...
 *	gitinfo_release(&g);
 *
 * Threads
 *
 * Every function is thread-safe; calls share no state except libgit2's
 * global one, which the first gitinfo_read() of a process sets up (under
 * pthread_once) and which stays until the process exits. Setting it up
 * loads the system's CA certificates for libgit2's TLS: about 5 ms, which
 * paid per call was a tenth of the submit-to-Completed time of a run.
 */

struct gitinfo {
	int found;
	char *repository;
	char *branch;
	char *commit;
	int dirty;
};

#define GITINFO_INIT { 0, NULL, NULL, NULL, 0 }

/*
 * gitinfo_read - fill @out with the git information of directory @dir.
 *
 * @dir may be relative to the working directory and may be any directory
 * of a working tree; the repository is found by walking up from it as
 * `git` does (not across file system boundaries, and without consulting
 * GIT_DIR and friends). @out is overwritten without being released
 * first.
 *
 * Returns:
 *   STORE_OK       @out is filled; `found` = 0 when @dir is not inside a
 *                  repository, which is not an error.
 *   STORE_INVALID  @dir is NULL or empty.
 *   STORE_NOMEM    out of memory.
 *   STORE_IO       @dir cannot be resolved, or the repository cannot be
 *                  read (damaged, or refused by libgit2's ownership check
 *                  because another user owns it); a message naming @dir
 *                  and libgit2's reason is written to @err.
 *
 * On an error @out is left as GITINFO_INIT, so gitinfo_release() is
 * always safe. @err (may be NULL) of size @errlen gets a message on every
 * error and is untouched on STORE_OK.
 */
int gitinfo_read(const char *dir, struct gitinfo *out, char *err,
		 size_t errlen);

/*
 * gitinfo_release - free the strings of @g and reset it to GITINFO_INIT.
 * Safe on GITINFO_INIT and safe to call twice.
 */
void gitinfo_release(struct gitinfo *g);

/*
 * gitinfo_each_property - the run properties @g stands for: calls @fn
 * once per (key, value) pair, in this order, skipping pairs whose value
 * is NULL:
 *
 *	azureml.git.repository_uri   repository
 *	azureml.git.branch           branch
 *	azureml.git.commit           commit
 *	azureml.git.dirty            "true" or "false" (always present)
 *	mlflow.source.git.repoURL    repository
 *	mlflow.source.git.branch     branch
 *	mlflow.source.git.commit     commit
 *
 * Nothing is called when `found` is 0. The strings passed to @fn are
 * only valid during the call. A non-zero return from @fn stops the walk
 * and is returned; otherwise returns 0.
 */
int gitinfo_each_property(const struct gitinfo *g,
			  int (*fn)(void *ctx, const char *key,
				    const char *value),
			  void *ctx);

#endif /* MLFS_GITINFO_H */
