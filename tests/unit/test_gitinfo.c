/*
 * test_gitinfo.c - git information of a source directory, checked against
 * repositories made with the real `git` command.
 *
 * Each test makes a temporary directory that is also $HOME (so no user
 * configuration leaks in, for git or libgit2) and builds a repository in
 * it with `git`; the usual layout is
 *
 *	repo/            origin remote, branch main, one commit
 *	repo/src/        the source directory (train.py, .gitignore)
 *	repo/src2/       a sibling whose name starts like src
 *	repo/top.txt     outside the source directory
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlfs/gitinfo.h"
#include "mlfs/store.h"
#include "mlfs/strbuf.h"

#define ORIGIN "https://example.com/team/proj.git"

static char root[] = "/tmp/mlfs-gitinfo.XXXXXX";
static char repo[sizeof(root) + 16];
static char src[sizeof(root) + 32];

static void setup(void)
{
	cr_assert_not_null(mkdtemp(root));
	snprintf(repo, sizeof(repo), "%s/repo", root);
	snprintf(src, sizeof(src), "%s/repo/src", root);
	cr_assert_eq(setenv("HOME", root, 1), 0);
	cr_assert_eq(setenv("GIT_CONFIG_NOSYSTEM", "1", 1), 0);
	cr_assert_eq(setenv("XDG_CONFIG_HOME", root, 1), 0);
}

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command in the test's root directory; it must succeed. */
static void run(const char *fmt, ...)
{
	struct strbuf cmd = STRBUF_INIT;
	va_list ap;
	char *body;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	cr_assert_geq(n, 0);
	body = malloc((size_t)n + 1);
	cr_assert_not_null(body);
	va_start(ap, fmt);
	vsnprintf(body, (size_t)n + 1, fmt, ap);
	va_end(ap);
	strbuf_addf(&cmd, "cd '%s' && { %s; } >/dev/null 2>&1", root, body);
	cr_assert_eq(system(strbuf_str(&cmd)), 0, "command failed: %s", body);
	free(body);
	strbuf_release(&cmd);
}

#define GIT "git -c user.name=Test -c user.email=test@example.com"

static void teardown(void)
{
	run("chmod -R u+w . ; rm -rf '%s'", root);
}

TestSuite(gitinfo, .init = setup, .fini = teardown);

/* An empty repository with branch main and the usual files, no commit. */
static void make_uncommitted(void)
{
	run("mkdir -p repo/src repo/src2 && cd repo && git init -q -b main && "
	    "echo print > src/train.py && echo '*.tmp' > src/.gitignore && "
	    "echo x > src2/other.py && echo top > top.txt");
}

/* The usual repository: origin, branch main, everything committed. */
static void make_repo(void)
{
	make_uncommitted();
	run("cd repo && git remote add origin " ORIGIN " && "
	    "git add -A && " GIT " commit -q -m first");
}

/* `git rev-parse HEAD` of the repository. */
static void head_commit(char *out, size_t len)
{
	char cmd[256];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "git -C '%s' rev-parse HEAD", repo);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_not_null(fgets(out, (int)len, p));
	out[strcspn(out, "\n")] = '\0';
	cr_assert_eq(pclose(p), 0);
	cr_assert_eq(strlen(out), 40);
}

static void read_ok(const char *dir, struct gitinfo *g)
{
	char err[512] = "";

	cr_assert_eq(gitinfo_read(dir, g, err, sizeof(err)), STORE_OK,
		     "gitinfo_read: %s", err);
}

static int dirty_of(const char *dir)
{
	struct gitinfo g = GITINFO_INIT;
	int dirty;

	read_ok(dir, &g);
	cr_assert_eq(g.found, 1);
	dirty = g.dirty;
	gitinfo_release(&g);
	return dirty;
}

Test(gitinfo, directory_outside_a_repository_is_not_found)
{
	struct gitinfo g = GITINFO_INIT;

	run("mkdir plain");
	snprintf(repo, sizeof(repo), "%s/plain", root);
	read_ok(repo, &g);
	cr_expect_eq(g.found, 0);
	cr_expect_null(g.repository);
	cr_expect_null(g.branch);
	cr_expect_null(g.commit);
	cr_expect_eq(g.dirty, 0);
	gitinfo_release(&g);
}

Test(gitinfo, committed_repository_fields_match_git)
{
	struct gitinfo g = GITINFO_INIT;
	char want[64];

	make_repo();
	head_commit(want, sizeof(want));
	read_ok(src, &g);
	cr_expect_eq(g.found, 1);
	cr_expect_str_eq(g.repository, ORIGIN);
	cr_expect_str_eq(g.branch, "main");
	cr_expect_str_eq(g.commit, want);
	cr_expect_eq(g.dirty, 0);
	gitinfo_release(&g);
	gitinfo_release(&g);	/* twice is fine */
}

Test(gitinfo, repository_root_as_source_directory)
{
	struct gitinfo g = GITINFO_INIT;

	make_repo();
	read_ok(repo, &g);
	cr_expect_eq(g.found, 1);
	cr_expect_str_eq(g.branch, "main");
	cr_expect_eq(g.dirty, 0);
	gitinfo_release(&g);
	run("echo more >> repo/top.txt");
	cr_expect_eq(dirty_of(repo), 1);
}

Test(gitinfo, relative_source_directory_is_resolved)
{
	struct gitinfo g = GITINFO_INIT;

	make_repo();
	cr_assert_eq(chdir(repo), 0);
	read_ok("src", &g);
	cr_expect_eq(g.found, 1);
	cr_expect_eq(g.dirty, 0);
	gitinfo_release(&g);
	run("echo more >> repo/src/train.py");
	cr_expect_eq(dirty_of("./src/"), 1);
}

Test(gitinfo, modified_file_under_source_is_dirty)
{
	make_repo();
	run("echo more >> repo/src/train.py");
	cr_expect_eq(dirty_of(src), 1);
}

Test(gitinfo, staged_change_under_source_is_dirty)
{
	make_repo();
	run("cd repo && echo more >> src/train.py && git add src/train.py");
	cr_expect_eq(dirty_of(src), 1);
}

Test(gitinfo, deleted_file_under_source_is_dirty)
{
	make_repo();
	run("rm repo/src/train.py");
	cr_expect_eq(dirty_of(src), 1);
}

Test(gitinfo, change_outside_source_only_is_clean)
{
	make_repo();
	run("echo more >> repo/top.txt && echo new > repo/new.txt");
	cr_expect_eq(dirty_of(src), 0);
}

Test(gitinfo, change_in_sibling_with_common_prefix_is_clean)
{
	make_repo();
	run("echo more >> repo/src2/other.py && echo n > repo/src2/new.py");
	cr_expect_eq(dirty_of(src), 0);
}

Test(gitinfo, untracked_file_under_source_is_dirty)
{
	make_repo();
	run("echo new > repo/src/new.py");
	cr_expect_eq(dirty_of(src), 1);
}

Test(gitinfo, untracked_directory_under_source_is_dirty)
{
	make_repo();
	run("mkdir -p repo/src/pkg/deep && echo x > repo/src/pkg/deep/m.py");
	cr_expect_eq(dirty_of(src), 1);
}

Test(gitinfo, ignored_file_under_source_is_clean)
{
	make_repo();
	run("echo scratch > repo/src/scratch.tmp");
	cr_expect_eq(dirty_of(src), 0);
}

Test(gitinfo, source_subdirectory_of_untracked_tree_is_dirty)
{
	struct gitinfo g = GITINFO_INIT;
	char deep[sizeof(root) + 64];

	make_repo();
	run("mkdir -p repo/new/inner && echo x > repo/new/inner/a.py");
	snprintf(deep, sizeof(deep), "%s/repo/new/inner", root);
	read_ok(deep, &g);
	cr_expect_eq(g.found, 1);
	cr_expect_eq(g.dirty, 1);
	gitinfo_release(&g);
}

Test(gitinfo, source_name_with_glob_characters_is_literal)
{
	char odd[sizeof(root) + 64];

	make_repo();
	run("mkdir 'repo/s*' && echo x > 'repo/s*/a.py' && cd repo && "
	    "git add -A && " GIT " commit -q -m odd");
	snprintf(odd, sizeof(odd), "%s/repo/s*", root);
	run("echo more >> repo/src/train.py");
	cr_expect_eq(dirty_of(odd), 0, "'s*' must not match src/");
	cr_expect_eq(dirty_of(src), 1);
}

Test(gitinfo, detached_head_has_no_branch)
{
	struct gitinfo g = GITINFO_INIT;
	char want[64];

	make_repo();
	run("cd repo && git checkout -q --detach HEAD");
	head_commit(want, sizeof(want));
	read_ok(src, &g);
	cr_expect_eq(g.found, 1);
	cr_expect_null(g.branch);
	cr_expect_str_eq(g.commit, want);
	cr_expect_str_eq(g.repository, ORIGIN);
	gitinfo_release(&g);
}

Test(gitinfo, repository_without_commits_has_no_commit)
{
	struct gitinfo g = GITINFO_INIT;

	make_uncommitted();
	read_ok(src, &g);
	cr_expect_eq(g.found, 1);
	cr_expect_null(g.commit);
	cr_expect_str_eq(g.branch, "main");
	cr_expect_null(g.repository);
	cr_expect_eq(g.dirty, 1, "untracked files under src");
	gitinfo_release(&g);
}

Test(gitinfo, repository_without_remote_has_no_url)
{
	struct gitinfo g = GITINFO_INIT;

	make_uncommitted();
	run("cd repo && git add -A && " GIT " commit -q -m first");
	read_ok(src, &g);
	cr_expect_eq(g.found, 1);
	cr_expect_null(g.repository);
	cr_expect_not_null(g.commit);
	gitinfo_release(&g);
}

Test(gitinfo, without_origin_the_first_remote_is_used)
{
	struct gitinfo g = GITINFO_INIT;

	make_uncommitted();
	run("cd repo && git remote add zeta https://z.example/z.git && "
	    "git remote add alpha https://a.example/a.git");
	read_ok(src, &g);
	cr_expect_str_eq(g.repository, "https://a.example/a.git");
	gitinfo_release(&g);
}

Test(gitinfo, origin_wins_over_other_remotes)
{
	struct gitinfo g = GITINFO_INIT;

	make_uncommitted();
	run("cd repo && git remote add aaa https://a.example/a.git && "
	    "git remote add origin " ORIGIN);
	read_ok(src, &g);
	cr_expect_str_eq(g.repository, ORIGIN);
	gitinfo_release(&g);
}

Test(gitinfo, credentials_in_remote_url_are_dropped)
{
	struct gitinfo g = GITINFO_INIT;

	make_uncommitted();
	run("cd repo && git remote add origin "
	    "https://user:s3cret@example.com/team/proj.git");
	read_ok(src, &g);
	cr_expect_str_eq(g.repository, ORIGIN);
	gitinfo_release(&g);
	run("cd repo && git remote set-url origin git@example.com:team/proj.git");
	read_ok(src, &g);
	cr_expect_str_eq(g.repository, "git@example.com:team/proj.git");
	gitinfo_release(&g);
}

Test(gitinfo, damaged_repository_is_an_io_error)
{
	struct gitinfo g = GITINFO_INIT;
	char err[512] = "";

	make_repo();
	run("cd repo && echo 'not a ref' > .git/HEAD");
	cr_expect_eq(gitinfo_read(src, &g, err, sizeof(err)), STORE_IO);
	cr_expect_eq(g.found, 0);
	cr_expect_null(g.branch);
	cr_expect(strstr(err, src) != NULL, "message names the dir: %s", err);
	gitinfo_release(&g);
}

Test(gitinfo, missing_directory_is_an_io_error)
{
	struct gitinfo g = GITINFO_INIT;
	char err[512] = "";

	cr_expect_eq(gitinfo_read("/nonexistent/mlfs/dir", &g, err,
				  sizeof(err)), STORE_IO);
	cr_expect(strstr(err, "'/nonexistent/mlfs/dir'") != NULL, "%s", err);
	cr_expect_eq(gitinfo_read("", &g, err, sizeof(err)), STORE_INVALID);
}

/* Collects "key=value\n" lines; stops after ctx->stop_after pairs. */
struct collect {
	struct strbuf out;
	int calls;
	int stop_after;
};

static int collect_fn(void *ctx, const char *key, const char *value)
{
	struct collect *c = ctx;

	strbuf_addf(&c->out, "%s=%s\n", key, value);
	c->calls++;
	return c->calls == c->stop_after ? 42 : 0;
}

Test(gitinfo, properties_name_both_azureml_and_mlflow_keys)
{
	struct gitinfo g = GITINFO_INIT;
	struct collect c = { STRBUF_INIT, 0, 0 };
	struct strbuf want = STRBUF_INIT;
	char commit[64];

	make_repo();
	head_commit(commit, sizeof(commit));
	read_ok(src, &g);
	cr_assert_eq(gitinfo_each_property(&g, collect_fn, &c), 0);
	strbuf_addf(&want,
		    "azureml.git.repository_uri=" ORIGIN "\n"
		    "azureml.git.branch=main\n"
		    "azureml.git.commit=%s\n"
		    "azureml.git.dirty=false\n"
		    "mlflow.source.git.repoURL=" ORIGIN "\n"
		    "mlflow.source.git.branch=main\n"
		    "mlflow.source.git.commit=%s\n", commit, commit);
	cr_expect_str_eq(strbuf_str(&c.out), strbuf_str(&want));
	strbuf_release(&want);
	strbuf_release(&c.out);
	gitinfo_release(&g);
}

Test(gitinfo, properties_skip_missing_values)
{
	struct gitinfo g = GITINFO_INIT;
	struct collect c = { STRBUF_INIT, 0, 0 };

	make_uncommitted();
	read_ok(src, &g);
	cr_assert_eq(gitinfo_each_property(&g, collect_fn, &c), 0);
	cr_expect_str_eq(strbuf_str(&c.out),
			 "azureml.git.branch=main\n"
			 "azureml.git.dirty=true\n"
			 "mlflow.source.git.branch=main\n");
	strbuf_release(&c.out);
	gitinfo_release(&g);
}

Test(gitinfo, properties_stop_at_a_nonzero_return)
{
	struct gitinfo g = GITINFO_INIT;
	struct collect c = { STRBUF_INIT, 0, 2 };

	make_repo();
	read_ok(src, &g);
	cr_expect_eq(gitinfo_each_property(&g, collect_fn, &c), 42);
	cr_expect_eq(c.calls, 2);
	strbuf_release(&c.out);
	gitinfo_release(&g);
}

Test(gitinfo, no_properties_outside_a_repository)
{
	struct gitinfo g = GITINFO_INIT;
	struct collect c = { STRBUF_INIT, 0, 0 };

	cr_expect_eq(gitinfo_each_property(&g, collect_fn, &c), 0);
	cr_expect_eq(c.calls, 0);
	strbuf_release(&c.out);
}
