/*
 * test_ignore.c - gitignore rules, checked against real git.
 *
 * The main test builds a tree with rules files at several depths, walks
 * it the way a snapshotter does (push on entering a directory, pop on
 * leaving, never entering an ignored one) and compares every answer of
 * ignore_match() with `git check-ignore --no-index` run on the same tree.
 * For the directory using .amlignore, git runs on a copy where the
 * .amlignore is renamed to .gitignore.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mlfs/ignore.h"
#include "mlfs/strbuf.h"

/* A file of the test tree; a path ending in '/' is an empty directory. */
struct entry {
	const char *path;
	const char *content;
};

/*
 * Rules: 32 patterns at the root, 8 in sub/, 4 in sub/child/, 4 in the
 * .amlignore of aml/ (and 3 in its unused .gitignore) = 51 lines that
 * are patterns (comments and blanks not counted).
 */
#define PATTERN_CASES 51

static const char root_rules[] =
	"# a comment\n"
	"*.log\n"
	"!keep.log\n"
	"build/\n"
	"/rootonly.txt\n"
	"doc/*.tmp\n"
	"**/cache\n"
	"logs/**\n"
	"a/**/z.txt\n"
	"\\#hash\n"
	"\\!bang\n"
	"trailing\\ \n"
	"spaces.txt   \n"
	"file[a-c].dat\n"
	"file[!a-c].bin\n"
	"?.q\n"
	"excl/\n"
	"!excl/inner.txt\n"
	"deep/**/*.o\n"
	"*.swp\n"
	"!important.swp\n"
	"foo/bar/\n"
	"[Mm]akefile.bak\n"
	"**/tmp/\n"
	"#not-a-pattern.txt\n"
	"\n"
	"   \n"
	"lib.[oa]\n"
	"data/**/\n"
	"noslash*star\n"
	"mid/*/leaf\n"
	"[]]x\n"
	"num[[:digit:]]\n"
	"win\r\n"
	"esc\\*\n"
	"tab\t\n";

static const char sub_rules[] =
	"!*.log\n"
	"/local.txt\n"
	"inner/\n"
	"x/y.txt\n"
	"**/deep.txt\n"
	"*.dat\n"
	"!keep.dat\n"
	"/anch/**\n";

static const char child_rules[] =
	"*.txt\n"
	"!ok.txt   \n"
	"re?d.md\n"
	"# comment\n"
	"!build\n";

static const char aml_rules[] =
	"*.md\n"
	"!README.md\n"
	"out/\n"
	"gen[0-9].c\n";

static const char aml_git_rules[] =
	"*.txt\n"
	"!*.md\n"
	"*.c\n";

static const struct entry tree[] = {
	{ ".gitignore", root_rules },
	{ "sub/.gitignore", sub_rules },
	{ "sub/child/.gitignore", child_rules },
	{ "aml/.amlignore", aml_rules },
	{ "aml/.gitignore", aml_git_rules },
	{ "keep.log", "" }, { "debug.log", "" }, { "other/x.log", "" },
	{ "build/o.bin", "" }, { "other/build", "" }, { "other/q/build/f", "" },
	{ "rootonly.txt", "" }, { "sub/rootonly.txt", "" },
	{ "doc/a.tmp", "" }, { "doc/x/b.tmp", "" }, { "other/doc/c.tmp", "" },
	{ "cache/f", "" }, { "x/cache", "" }, { "x/y/cache/g", "" },
	{ "logs/l1.txt", "" }, { "logs/in/l2.txt", "" }, { "other/logs/l3", "" },
	{ "a/z.txt", "" }, { "a/b/z.txt", "" }, { "a/b/c/z.txt", "" },
	{ "a/y.txt", "" }, { "b/a/z.txt", "" },
	{ "#hash", "" }, { "!bang", "" }, { "bang", "" }, { "hash", "" },
	{ "trailing ", "" }, { "trailing", "" },
	{ "spaces.txt", "" }, { "spaces.txt   ", "" },
	{ "filea.dat", "" }, { "filec.dat", "" }, { "filed.dat", "" },
	{ "filea.bin", "" }, { "filed.bin", "" },
	{ "a.q", "" }, { "ab.q", "" }, { "other/b.q", "" },
	{ "excl/inner.txt", "" }, { "excl/other.txt", "" },
	{ "deep/x.o", "" }, { "deep/1/2/y.o", "" }, { "deep/y.c", "" },
	{ "x.swp", "" }, { "important.swp", "" }, { "other/important.swp", "" },
	{ "foo/bar/f", "" }, { "foo/baz", "" }, { "other/foo/bar/f", "" },
	{ "Makefile.bak", "" }, { "makefile.bak", "" }, { "Xakefile.bak", "" },
	{ "tmp/t", "" }, { "sub/tmp/t", "" }, { "other/tmp", "" },
	{ "#not-a-pattern.txt", "" },
	{ "lib.a", "" }, { "lib.o", "" }, { "lib.c", "" },
	{ "data/d1/f", "" }, { "data/f2", "" }, { "data/d2/", "" },
	{ "noslashXstar", "" }, { "sub/noslashstar", "" }, { "noslash/star", "" },
	{ "mid/m/leaf", "" }, { "mid/m/n/leaf", "" }, { "mid/leaf", "" },
	{ "]x", "" }, { "ax", "" }, { "num7", "" }, { "numx", "" },
	{ "win", "" }, { "esc*", "" }, { "escX", "" }, { "tab\t", "" },
	{ "tab", "" }, { "empty/", "" },
	{ "sub/a.log", "" }, { "sub/local.txt", "" }, { "sub/q/local.txt", "" },
	{ "sub/inner/f", "" }, { "sub/q/inner/f", "" }, { "sub/inner2", "" },
	{ "sub/x/y.txt", "" }, { "sub/q/x/y.txt", "" },
	{ "sub/z/deep.txt", "" }, { "sub/deep.txt", "" },
	{ "sub/k.dat", "" }, { "sub/keep.dat", "" }, { "sub/filea.dat", "" },
	{ "sub/anch/f", "" }, { "sub/anch/g/h", "" }, { "sub/q/anch/f", "" },
	{ "sub/child/a.txt", "" }, { "sub/child/ok.txt", "" },
	{ "sub/child/c.log", "" }, { "sub/child/read.md", "" },
	{ "sub/child/reed.md", "" }, { "sub/child/rd.md", "" },
	{ "sub/child/build/f", "" },
	{ "aml/a.md", "" }, { "aml/README.md", "" }, { "aml/x.txt", "" },
	{ "aml/out/f", "" }, { "aml/gen1.c", "" }, { "aml/gen.c", "" },
	{ "aml/sub/b.md", "" }, { "aml/sub/out/g", "" }, { "aml/sub/y.txt", "" },
	{ "aml/debug.log", "" },
};

/* One compared path and what ignore_match() said about it. */
struct seen {
	char *path;
	int is_dir;
	int ignored;
};

struct seen_list {
	struct seen *v;
	size_t n, alloc;
};

static void seen_add(struct seen_list *l, const char *path, int is_dir,
		     int ignored)
{
	if (l->n == l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 64;
		l->v = realloc(l->v, l->alloc * sizeof(*l->v));
		cr_assert_not_null(l->v);
	}
	l->v[l->n].path = strdup(path);
	cr_assert_not_null(l->v[l->n].path);
	l->v[l->n].is_dir = is_dir;
	l->v[l->n++].ignored = ignored;
}

static void seen_release(struct seen_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
}

/* mkdir -p for the parent directories of @path under @root. */
static void make_parents(const char *root, const char *path)
{
	char buf[4096];
	const char *p;

	for (p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
		snprintf(buf, sizeof(buf), "%s/%.*s", root, (int)(p - path),
			 path);
		cr_assert(mkdir(buf, 0755) == 0 || errno == EEXIST,
			  "cannot create '%s'", buf);
	}
}

static void write_file(const char *root, const char *path, const char *data)
{
	char buf[4096];
	size_t len = strlen(data);
	int fd;

	make_parents(root, path);
	if (path[strlen(path) - 1] == '/')
		return;
	snprintf(buf, sizeof(buf), "%s/%s", root, path);
	fd = open(buf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0, "cannot create '%s'", buf);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void make_tree(char *root)
{
	size_t i;

	cr_assert_not_null(mkdtemp(root));
	for (i = 0; i < sizeof(tree) / sizeof(tree[0]); i++)
		write_file(root, tree[i].path, tree[i].content);
}

static void run(const char *cmd)
{
	int rc = system(cmd);

	cr_assert_eq(rc, 0, "command failed (%d): %s", rc, cmd);
}

static void remove_tree(const char *root)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	run(cmd);
}

/* Walk directory @fd (path @rel) as a snapshotter would. */
static void walk(struct ignore *ig, int fd, const char *rel,
		 struct seen_list *out)
{
	char path[4096];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int sub, is_dir, ign;

	cr_assert_eq(ignore_push_dir(ig, fd, rel), 0, "cannot push '%s'", rel);
	d = fdopendir(dup(fd));
	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!*rel && !strcmp(de->d_name, ".git"))
			continue;	/* mlfs excludes it by default */
		snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "",
			 de->d_name);
		cr_assert_eq(fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
		is_dir = S_ISDIR(st.st_mode);
		ign = ignore_match(ig, path, is_dir);
		seen_add(out, path, is_dir, ign);
		if (!is_dir || ign)
			continue;
		sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY);
		cr_assert_geq(sub, 0);
		walk(ig, sub, path, out);
		close(sub);
	}
	closedir(d);
	ignore_pop_dir(ig);
}

/* Is @path in the NUL-separated list @buf? */
static int in_list(const struct strbuf *buf, const char *path)
{
	const char *p = strbuf_str(buf), *end = p + buf->len;

	for (; p < end; p += strlen(p) + 1)
		if (!strcmp(p, path))
			return 1;
	return 0;
}

static void read_whole(const char *file, struct strbuf *out)
{
	char chunk[4096];
	ssize_t n;
	int fd = open(file, O_RDONLY);

	cr_assert_geq(fd, 0);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		cr_assert_eq(strbuf_add(out, chunk, (size_t)n), 0);
	cr_assert_eq(n, 0);
	close(fd);
}

/* Run git check-ignore in @root on the paths in @in; ignored ones -> @out. */
static void git_check_ignore(const char *root, const char *in,
			     struct strbuf *out)
{
	char cmd[1024], outfile[512];

	snprintf(outfile, sizeof(outfile), "%s.out", in);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 "
		 "git -c core.excludesFile=/dev/null check-ignore --no-index "
		 "-z --stdin < '%s' > '%s'; test $? -le 1", root, in, outfile);
	run(cmd);
	read_whole(outfile, out);
	unlink(outfile);
}

static void write_path_list(const char *file, const struct seen_list *l)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;
	int fd;

	for (i = 0; i < l->n; i++)
		cr_assert_eq(strbuf_add(&sb, l->v[i].path,
					strlen(l->v[i].path) + 1), 0);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, strbuf_str(&sb), sb.len), (ssize_t)sb.len);
	close(fd);
	strbuf_release(&sb);
}

Test(ignore, walk_agrees_with_git_check_ignore)
{
	char root[] = "/tmp/mlfs-ignore-XXXXXX";
	char copy[64], list[64], cmd[512];
	struct strbuf git = STRBUF_INIT, git_aml = STRBUF_INIT;
	struct seen_list seen = { NULL, 0, 0 };
	struct ignore *ig;
	size_t i, aml_paths = 0, aml_differ = 0, ignored = 0;
	int fd, want, other;

	make_tree(root);
	snprintf(copy, sizeof(copy), "%s-aml", root);
	snprintf(list, sizeof(list), "%s.paths", root);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && git init -q && cp -a '%s' '%s' && cd '%s/aml' && "
		 "mv .amlignore .gitignore && : > .amlignore",
		 root, root, copy, copy);
	run(cmd);

	ig = ignore_new();
	cr_assert_not_null(ig);
	fd = open(root, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(fd, 0);
	walk(ig, fd, "", &seen);
	/* Re-including below an excluded directory has no effect. */
	cr_assert_eq(ignore_push_dir(ig, fd, ""), 0);
	close(fd);
	cr_assert_eq(ignore_match(ig, "excl/inner.txt", 0), 1);
	seen_add(&seen, "excl/inner.txt", 0, 1);
	seen_add(&seen, "logs/in", 1, ignore_match(ig, "logs/in", 1));
	seen_add(&seen, "logs/in/l2.txt", 0,
		 ignore_match(ig, "logs/in/l2.txt", 0));

	write_path_list(list, &seen);
	git_check_ignore(root, list, &git);
	git_check_ignore(copy, list, &git_aml);
	for (i = 0; i < seen.n; i++) {
		const char *p = seen.v[i].path;
		int is_aml = !strncmp(p, "aml/", 4);

		want = in_list(is_aml ? &git_aml : &git, p);
		other = in_list(&git, p);
		cr_expect_eq(seen.v[i].ignored, want,
			     "'%s' (%s): ignore_match says %d, git says %d", p,
			     seen.v[i].is_dir ? "dir" : "file",
			     seen.v[i].ignored, want);
		aml_paths += is_aml;
		aml_differ += is_aml && want != other;
		ignored += (size_t)want;
	}
	cr_expect_gt(aml_differ, 0, "aml/.gitignore should have differed");
	printf("ignore: %d pattern cases, %zu paths compared with git "
	       "(%zu ignored, %zu under aml/, %zu where aml/.gitignore would "
	       "differ)\n", PATTERN_CASES, seen.n, ignored, aml_paths,
	       aml_differ);
	fflush(stdout);

	ignore_free(ig);
	seen_release(&seen);
	strbuf_release(&git);
	strbuf_release(&git_aml);
	unlink(list);
	remove_tree(copy);
	remove_tree(root);
}

/* Push @rules as the root's .gitignore from a fresh temp dir. */
static struct ignore *ignore_with_rules(const char *rules, char *root)
{
	struct ignore *ig;
	int fd;

	cr_assert_not_null(mkdtemp(root));
	write_file(root, ".gitignore", rules);
	ig = ignore_new();
	cr_assert_not_null(ig);
	fd = open(root, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ignore_push_dir(ig, fd, ""), 0);
	close(fd);
	return ig;
}

Test(ignore, git_and_pycache_are_excluded_by_default)
{
	struct ignore *ig = ignore_new();

	cr_assert_not_null(ig);
	cr_expect_eq(ignore_match(ig, ".git", 1), 1);
	cr_expect_eq(ignore_match(ig, "a/__pycache__", 1), 1);
	cr_expect_eq(ignore_match(ig, "a/__pycache__/x.pyc", 0), 1);
	cr_expect_eq(ignore_match(ig, "__pycache__", 0), 0);
	cr_expect_eq(ignore_match(ig, "src/x.py", 0), 0);
	cr_expect_eq(ignore_match(ig, "", 1), 0);
	ignore_pop_dir(ig);	/* popping the defaults does nothing */
	cr_expect_eq(ignore_match(ig, ".git", 1), 1);
	ignore_free(ig);
}

Test(ignore, pop_drops_the_rules_of_the_directory_left)
{
	char root[] = "/tmp/mlfs-ignore-XXXXXX";
	struct ignore *ig = ignore_with_rules("*.o\n", root);

	cr_expect_eq(ignore_match(ig, "a/x.o", 0), 1);
	ignore_pop_dir(ig);
	cr_expect_eq(ignore_match(ig, "a/x.o", 0), 0);
	ignore_free(ig);
	remove_tree(root);
}

Test(ignore, amlignore_takes_the_place_of_gitignore)
{
	char root[] = "/tmp/mlfs-ignore-XXXXXX";
	struct ignore *ig;
	int fd;

	cr_assert_not_null(mkdtemp(root));
	write_file(root, ".gitignore", "*.a\n");
	write_file(root, ".amlignore", "*.b\n");
	ig = ignore_new();
	fd = open(root, O_RDONLY | O_DIRECTORY);
	cr_assert_eq(ignore_push_dir(ig, fd, ""), 0);
	close(fd);
	cr_expect_eq(ignore_match(ig, "x.a", 0), 0);
	cr_expect_eq(ignore_match(ig, "x.b", 0), 1);
	ignore_free(ig);
	remove_tree(root);
}

Test(ignore, missing_rules_file_pushes_an_empty_set)
{
	char root[] = "/tmp/mlfs-ignore-XXXXXX";
	struct ignore *ig = ignore_new();
	int fd;

	cr_assert_not_null(mkdtemp(root));
	fd = open(root, O_RDONLY | O_DIRECTORY);
	cr_assert_eq(ignore_push_dir(ig, fd, "sub"), 0);
	cr_expect_eq(ignore_match(ig, "sub/x", 0), 0);
	ignore_pop_dir(ig);
	cr_expect_eq(ignore_push_dir(ig, fd, "/abs"), -EINVAL);
	cr_expect_eq(ignore_push_dir(ig, fd, "slash/"), -EINVAL);
	close(fd);
	ignore_free(ig);
	remove_tree(root);
}

Test(ignore, oversized_rules_file_gives_efbig)
{
	char root[] = "/tmp/mlfs-ignore-XXXXXX";
	char *big = malloc(IGNORE_FILE_MAX + 2);
	struct ignore *ig = ignore_new();
	int fd;

	cr_assert_not_null(big);
	memset(big, 'x', IGNORE_FILE_MAX + 1);
	big[IGNORE_FILE_MAX + 1] = '\0';
	cr_assert_not_null(mkdtemp(root));
	write_file(root, ".gitignore", big);
	fd = open(root, O_RDONLY | O_DIRECTORY);
	cr_expect_eq(ignore_push_dir(ig, fd, ""), -EFBIG);
	close(fd);
	ignore_free(ig);
	free(big);
	remove_tree(root);
}

Test(ignore, many_stars_match_in_linear_time, .timeout = 10)
{
	char root[] = "/tmp/mlfs-ignore-XXXXXX";
	char path[IGNORE_PATTERN_MAX];
	struct ignore *ig = ignore_with_rules(
		"**/a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b\n"
		"x/**/**/**/**/**/**/**/**/**/**/**/**/**/c\n", root);
	clock_t t0 = clock();
	int i;

	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	for (i = 0; i < 20; i++)
		cr_expect_eq(ignore_match(ig, path, 0), 0);
	for (i = 1; i < (int)sizeof(path) - 1; i += 2)
		path[i] = '/';
	path[0] = 'x';
	path[sizeof(path) - 2] = 'c';
	cr_expect_eq(ignore_match(ig, path, 0), 1);
	cr_expect_lt((double)(clock() - t0) / CLOCKS_PER_SEC, 5.0);
	ignore_free(ig);
	remove_tree(root);
}
