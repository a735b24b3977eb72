/*
 * gitinfo.c - the git information of a run's source directory, read with
 * libgit2. The contract is in include/mlfs/gitinfo.h.
 *
 * gitinfo_read() is one pipeline over a repository it opens and closes
 * itself: find the repository above the directory → remote URL → branch
 * → commit → dirty (a status walk limited to the directory). Each step
 * fills one field of a local struct; only a complete result is moved to
 * the caller's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "mlfs/gitinfo.h"
#include "mlfs/store.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* libgit2's reason for the last failure, never NULL. */
static pthread_once_t libgit2_once = PTHREAD_ONCE_INIT;
static int libgit2_rc;

static void libgit2_init_once(void)
{
	libgit2_rc = git_libgit2_init();
}

/* libgit2, set up once per process (see gitinfo.h, Threads). */
static int libgit2_ready(void)
{
	pthread_once(&libgit2_once, libgit2_init_once);
	return libgit2_rc < 0 ? -1 : 0;
}

static const char *git_reason(void)
{
	const git_error *e = git_error_last();

	return e && e->message ? e->message : "unknown libgit2 error";
}

/* Reports the libgit2 failure of @what on @dir and returns STORE_IO. */
static int git_fail(const char *dir, const char *what, char *err,
		    size_t errlen)
{
	set_err(err, errlen, "cannot read %s of git repository at '%s': %s",
		what, dir, git_reason());
	return STORE_IO;
}

static int dup_field(char **field, const char *s)
{
	*field = strdup(s);
	return *field ? STORE_OK : STORE_NOMEM;
}

/*
 * A copy of @url without the user information of a "scheme://" URL
 * ("https://user:token@host/p" gives "https://host/p"). Other URLs (scp
 * style "git@host:p", local paths) are copied as they are.
 */
static int dup_url(char **field, const char *url)
{
	const char *auth = strstr(url, "://");
	const char *at, *end;
	size_t head;

	if (!auth)
		return dup_field(field, url);
	auth += 3;
	end = auth + strcspn(auth, "/?#");
	at = memchr(auth, '@', (size_t)(end - auth));
	if (!at)
		return dup_field(field, url);
	head = (size_t)(auth - url);
	*field = malloc(head + strlen(at + 1) + 1);
	if (!*field)
		return STORE_NOMEM;
	memcpy(*field, url, head);
	memcpy(*field + head, at + 1, strlen(at + 1) + 1);
	return STORE_OK;
}

/*
 * The URL of the remote to record: remote.origin.url, else the url of the
 * remote whose name sorts first. Read from the configuration with a plain
 * iterator: libgit2 1.5 (Debian 12) leaks about 20 KiB of pcre2 match
 * data in every git_remote_lookup() and git_remote_list(), which match
 * config keys against regexes - a leak per submit in the mount.
 */
static int remote_url_key(const char *key, size_t *name_len)
{
	static const char pre[] = "remote.", post[] = ".url";
	size_t len = strlen(key);

	if (len <= sizeof(pre) - 1 + sizeof(post) - 1 ||
	    strncmp(key, pre, sizeof(pre) - 1) != 0 ||
	    strcmp(key + len - (sizeof(post) - 1), post) != 0)
		return 0;
	*name_len = len - (sizeof(pre) - 1) - (sizeof(post) - 1);
	return 1;
}

static int read_repository(git_repository *repo, const char *dir,
			   struct gitinfo *g, char *err, size_t errlen)
{
	git_config *cfg = NULL;
	git_config_iterator *it = NULL;
	git_config_entry *e;
	char *best_name = NULL, *best_url = NULL;
	size_t name_len;
	int rc = STORE_OK;

	if (git_repository_config_snapshot(&cfg, repo) < 0)
		return git_fail(dir, "the configuration", err, errlen);
	if (git_config_iterator_new(&it, cfg) < 0) {
		rc = git_fail(dir, "the configuration", err, errlen);
		goto out_cfg;
	}
	while (rc == STORE_OK && git_config_next(&e, it) == 0) {
		char *cand;

		if (!e->value || !remote_url_key(e->name, &name_len))
			continue;
		cand = strndup(e->name + strlen("remote."), name_len);
		if (!cand) {
			rc = STORE_NOMEM;
			break;
		}
		if (best_name && (strcmp(best_name, "origin") == 0 ||
				  (strcmp(cand, "origin") != 0 &&
				   strcmp(cand, best_name) >= 0))) {
			free(cand);
			continue;
		}
		free(best_name);
		free(best_url);
		best_name = cand;
		best_url = strdup(e->value);
		if (!best_url)
			rc = STORE_NOMEM;
	}
	if (rc == STORE_OK && best_url)
		rc = dup_url(&g->repository, best_url);
	free(best_name);
	free(best_url);
	git_config_iterator_free(it);
out_cfg:
	git_config_free(cfg);
	return rc;
}

static int read_branch(git_repository *repo, const char *dir,
		       struct gitinfo *g, char *err, size_t errlen)
{
	static const char heads[] = "refs/heads/";
	git_reference *head = NULL;
	const char *target;
	int rc = STORE_OK;

	if (git_reference_lookup(&head, repo, "HEAD") < 0)
		return git_fail(dir, "HEAD", err, errlen);
	if (git_reference_type(head) != GIT_REFERENCE_SYMBOLIC)
		goto out_head;	/* detached */
	target = git_reference_symbolic_target(head);
	if (strncmp(target, heads, sizeof(heads) - 1) == 0)
		target += sizeof(heads) - 1;
	rc = dup_field(&g->branch, target);
out_head:
	git_reference_free(head);
	return rc;
}

static int read_commit(git_repository *repo, const char *dir,
		       struct gitinfo *g, char *err, size_t errlen)
{
	char hex[GIT_OID_HEXSZ + 1];
	git_oid oid;
	int grc;

	grc = git_reference_name_to_id(&oid, repo, "HEAD");
	if (grc == GIT_ENOTFOUND || grc == GIT_EUNBORNBRANCH)
		return STORE_OK;	/* no commit yet */
	if (grc < 0)
		return git_fail(dir, "the HEAD commit", err, errlen);
	git_oid_tostr(hex, sizeof(hex), &oid);
	return dup_field(&g->commit, hex);
}

/* Stops the status walk at the first change. */
static int status_any(const char *path, unsigned int flags, void *payload)
{
	(void)path;
	(void)flags;
	(void)payload;
	return 1;
}

/*
 * @real_dir is the resolved source directory, @workdir the repository's
 * (resolved too, with a trailing '/'). The status walk is limited by a
 * literal pathspec (no glob characters interpreted) to the part of
 * @real_dir below @workdir; none when they are the same directory, or
 * when @real_dir is not below @workdir at all (a directory inside .git):
 * then the whole working tree counts.
 */
static int read_dirty(git_repository *repo, const char *dir,
		      const char *real_dir, struct gitinfo *g, char *err,
		      size_t errlen)
{
	git_status_options opts;
	const char *workdir = git_repository_workdir(repo);
	char *spec[1];
	size_t wlen;
	int grc;

	if (!workdir)
		return STORE_OK;	/* bare: no working tree to differ */
	if (git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION) < 0)
		return git_fail(dir, "the status", err, errlen);
	opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED |
		     GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
		     GIT_STATUS_OPT_DISABLE_PATHSPEC_MATCH;
	wlen = strlen(workdir);
	if (strncmp(real_dir, workdir, wlen) == 0 && real_dir[wlen]) {
		spec[0] = (char *)real_dir + wlen;
		opts.pathspec.strings = spec;
		opts.pathspec.count = 1;
	}
	grc = git_status_foreach_ext(repo, &opts, status_any, NULL);
	if (grc < 0)
		return git_fail(dir, "the status", err, errlen);
	g->dirty = grc > 0;
	return STORE_OK;
}

/* Fills @g from the repository found above @real_dir; found = 0 if none. */
static int read_all(const char *dir, const char *real_dir, struct gitinfo *g,
		    char *err, size_t errlen)
{
	git_repository *repo = NULL;
	int grc, rc;

	grc = git_repository_open_ext(&repo, real_dir, 0, NULL);
	if (grc == GIT_ENOTFOUND)
		return STORE_OK;
	if (grc < 0)
		return git_fail(dir, "the repository", err, errlen);
	g->found = 1;
	rc = read_repository(repo, dir, g, err, errlen);
	if (rc == STORE_OK)
		rc = read_branch(repo, dir, g, err, errlen);
	if (rc == STORE_OK)
		rc = read_commit(repo, dir, g, err, errlen);
	if (rc == STORE_OK)
		rc = read_dirty(repo, dir, real_dir, g, err, errlen);
	git_repository_free(repo);
	return rc;
}

int gitinfo_read(const char *dir, struct gitinfo *out, char *err,
		 size_t errlen)
{
	struct gitinfo g = GITINFO_INIT;
	char *real_dir;
	int rc;

	*out = g;
	if (!dir || !dir[0]) {
		set_err(err, errlen, "no source directory given");
		return STORE_INVALID;
	}
	real_dir = realpath(dir, NULL);
	if (!real_dir) {
		set_err(err, errlen, "cannot resolve source directory '%s': %s",
			dir, strerror(errno));
		return STORE_IO;
	}
	if (libgit2_ready() < 0) {
		set_err(err, errlen, "cannot initialize libgit2: %s",
			git_reason());
		rc = STORE_IO;
		goto out_free_dir;
	}
	rc = read_all(dir, real_dir, &g, err, errlen);
	if (rc == STORE_NOMEM)
		set_err(err, errlen, "out of memory reading git repository at '%s'",
			dir);
	if (rc == STORE_OK)
		*out = g;
	else
		gitinfo_release(&g);
out_free_dir:
	free(real_dir);
	return rc;
}

void gitinfo_release(struct gitinfo *g)
{
	free(g->repository);
	free(g->branch);
	free(g->commit);
	*g = (struct gitinfo)GITINFO_INIT;
}

int gitinfo_each_property(const struct gitinfo *g,
			  int (*fn)(void *ctx, const char *key,
				    const char *value),
			  void *ctx)
{
	const struct {
		const char *key;
		const char *value;
	} props[] = {
		{ "azureml.git.repository_uri", g->repository },
		{ "azureml.git.branch", g->branch },
		{ "azureml.git.commit", g->commit },
		{ "azureml.git.dirty", g->dirty ? "true" : "false" },
		{ "mlflow.source.git.repoURL", g->repository },
		{ "mlflow.source.git.branch", g->branch },
		{ "mlflow.source.git.commit", g->commit },
	};
	size_t i;
	int rc;

	if (!g->found)
		return 0;
	for (i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
		if (!props[i].value)
			continue;
		rc = fn(ctx, props[i].key, props[i].value);
		if (rc)
			return rc;
	}
	return 0;
}
