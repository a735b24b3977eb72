/*
 * test_snapshot.c - building, storing, reading and extracting snapshots.
 *
 * Each test makes its own temporary directory holding a source tree
 * (src/), a workspace (ws/) and an extraction target (out/).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

#include "mlfs/snapshot.h"

static char tmp[256], src[512], ws[512], out[512];
static char err[512];

static void setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/mlfs-snap-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(src, sizeof(src), "%s/src", tmp);
	snprintf(ws, sizeof(ws), "%s/ws", tmp);
	snprintf(out, sizeof(out), "%s/out", tmp);
	cr_assert_eq(mkdir(src, 0755), 0);
	cr_assert_eq(mkdir(ws, 0755), 0);
	cr_assert_eq(mkdir(out, 0755), 0);
	err[0] = '\0';
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(snapshot, .init = setup, .fini = teardown);

/* Writes @content to @dir/@rel, making parent directories. */
static void put(const char *dir, const char *rel, const char *content)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (char *s = strchr(path + strlen(dir) + 1, '/'); s;
	     s = strchr(s + 1, '/')) {
		*s = '\0';
		mkdir(path, 0755);
		*s = '/';
	}
	f = fopen(path, "w");
	cr_assert_not_null(f, "fopen %s", path);
	fputs(content, f);
	cr_assert_eq(fclose(f), 0);
}

static void mkdir_in(const char *dir, const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	cr_assert_eq(mkdir(path, 0755), 0, "mkdir %s", path);
}

static void symlink_in(const char *dir, const char *rel, const char *target)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	cr_assert_eq(symlink(target, path), 0);
}

static int exists_in(const char *dir, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return lstat(path, &st) == 0;
}

static struct snapshot_info build_ok(const char *source)
{
	struct snapshot_info info;
	int rc = snapshot_build(ws, source, NULL, &info, err, sizeof(err));

	cr_assert_eq(rc, STORE_OK, "build: %d %s", rc, err);
	return info;
}

/* Entries in @dir other than "." and "..". */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

static struct snapshot_tree *tree_of(const char *id)
{
	struct snapshot_tree *t = NULL;

	cr_assert_eq(snapshot_tree_open(ws, id, &t), STORE_OK);
	return t;
}

static int tree_has(struct snapshot_tree *t, const char *path)
{
	struct snapshot_node n;

	return snapshot_tree_lookup(t, path, &n) == STORE_OK;
}

/* ---- building ----------------------------------------------------------------- */

Test(snapshot, build_applies_ignore_rules_and_defaults)
{
	struct snapshot_info info;
	struct snapshot_tree *t;

	put(src, "train.py", "print(1)\n");
	put(src, ".amlignore", "*.log\ndata/\n!keep.log\n");
	put(src, ".gitignore", "train.py\n");	/* unused: .amlignore wins */
	put(src, "run.log", "x");
	put(src, "keep.log", "k");
	put(src, "data/big.bin", "0123456789");
	put(src, ".git/config", "[core]\n");
	put(src, "pkg/__pycache__/m.pyc", "pyc");
	put(src, "pkg/m.py", "m\n");
	put(src, "pkg/.gitignore", "secret.txt\n");
	put(src, "pkg/secret.txt", "s");
	info = build_ok(src);
	t = tree_of(info.id);
	cr_expect(tree_has(t, "train.py"));
	cr_expect(tree_has(t, "keep.log"));
	cr_expect(tree_has(t, "pkg/m.py"));
	cr_expect(tree_has(t, ".amlignore"));
	cr_expect(!tree_has(t, "run.log"));
	cr_expect(!tree_has(t, "data"));
	cr_expect(!tree_has(t, "data/big.bin"));
	cr_expect(!tree_has(t, ".git"));
	cr_expect(!tree_has(t, "pkg/__pycache__"));
	cr_expect(!tree_has(t, "pkg/secret.txt"));
	snapshot_tree_free(t);
}

Test(snapshot, same_content_gives_same_id_and_is_stored_once)
{
	struct snapshot_info a, b, c;
	char other[PATH_MAX];

	put(src, "a.py", "alpha\n");
	put(src, "d/b.py", "beta\n");
	a = build_ok(src);
	cr_expect_eq(a.reused, 0);
	cr_expect_eq(a.files, 2);
	cr_expect_eq(a.bytes, 11);
	cr_expect_eq(strlen(a.id), SNAPSHOT_ID_LEN);
	b = build_ok(src);
	cr_expect_str_eq(b.id, a.id);
	cr_expect_eq(b.reused, 1);
	cr_expect_eq(b.created_ms, a.created_ms);
	/* The same content elsewhere, made later: same id. */
	snprintf(other, sizeof(other), "%s/other", tmp);
	cr_assert_eq(mkdir(other, 0755), 0);
	put(other, "a.py", "alpha\n");
	put(other, "d/b.py", "beta\n");
	c = build_ok(other);
	cr_expect_str_eq(c.id, a.id);
	cr_expect_eq(c.reused, 1);
	/* zip + json, and no temporary files left */
	snprintf(other, sizeof(other), "%s/snapshots", ws);
	cr_expect_eq(count_entries(other), 2);
}

Test(snapshot, changed_byte_or_exec_bit_gives_new_id)
{
	struct snapshot_info a, b, c;
	char path[PATH_MAX];

	put(src, "a.py", "alpha\n");
	a = build_ok(src);
	put(src, "a.py", "alphb\n");
	b = build_ok(src);
	cr_expect_str_neq(b.id, a.id);
	cr_expect_eq(b.reused, 0);
	snprintf(path, sizeof(path), "%s/a.py", src);
	cr_assert_eq(chmod(path, 0755), 0);
	c = build_ok(src);
	cr_expect_str_neq(c.id, b.id);
}

Test(snapshot, stat_cache_skips_reading_unchanged_files)
{
	struct timespec pause = { 0, 50 * 1000000L };
	struct snapshot_info a, b, c;
	uint64_t r0, r1, r2, r3;

	put(src, "a.py", "alpha\n");
	put(src, "b.py", "beta\n");
	put(src, "c/d.py", "delta\n");
	/* Older than the cache will be: not "racily clean". */
	nanosleep(&pause, NULL);
	r0 = snapshot_test_hash_reads();
	a = build_ok(src);
	r1 = snapshot_test_hash_reads();
	cr_expect_eq(r1 - r0, 3, "first build reads every file");
	b = build_ok(src);
	r2 = snapshot_test_hash_reads();
	cr_expect_eq(r2 - r1, 0, "unchanged files are not read again");
	cr_expect_str_eq(b.id, a.id);
	put(src, "b.py", "BETA\n");	/* same size, new mtime and ctime */
	c = build_ok(src);
	r3 = snapshot_test_hash_reads();
	cr_expect_eq(r3 - r2, 1, "only the changed file is read");
	cr_expect_str_neq(c.id, a.id);
}

Test(snapshot, racily_clean_files_are_read_again)
{
	struct snapshot_info a;
	uint64_t r0, r1;

	/* Written right before the build: same tick as the cache, maybe. */
	put(src, "a.py", "alpha\n");
	a = build_ok(src);
	(void)a;
	r0 = snapshot_test_hash_reads();
	build_ok(src);
	r1 = snapshot_test_hash_reads();
	/* Either trusted (the tick passed) or read again: never wrong. */
	cr_expect(r1 - r0 <= 1);
}

Test(snapshot, over_file_limit_is_too_big_and_writes_nothing)
{
	struct snapshot_limits lim = { SNAPSHOT_MAX_BYTES_DEFAULT, 2 };
	struct snapshot_info info;
	char dir[PATH_MAX];
	int rc;

	put(src, "a", "1");
	put(src, "b", "2");
	put(src, "c/d", "3");
	rc = snapshot_build(ws, src, &lim, &info, err, sizeof(err));
	cr_expect_eq(rc, STORE_TOO_BIG);
	cr_expect(strstr(err, "has 3 files, over the limit of 2") != NULL, "%s",
		  err);
	cr_expect(strstr(err, ".amlignore") != NULL, "%s", err);
	snprintf(dir, sizeof(dir), "%s/snapshots", ws);
	cr_expect_eq(count_entries(dir), 0);
}

Test(snapshot, over_byte_limit_is_too_big_and_writes_nothing)
{
	struct snapshot_limits lim = { 10, SNAPSHOT_MAX_FILES_DEFAULT };
	struct snapshot_info info;
	char dir[PATH_MAX];
	int rc;

	put(src, "a", "123456");
	put(src, "b", "123456");
	rc = snapshot_build(ws, src, &lim, &info, err, sizeof(err));
	cr_expect_eq(rc, STORE_TOO_BIG);
	cr_expect(strstr(err, "has 12 bytes, over the limit of 10 bytes") != NULL,
		  "%s", err);
	snprintf(dir, sizeof(dir), "%s/snapshots", ws);
	cr_expect_eq(count_entries(dir), 0);
}

Test(snapshot, missing_source_is_not_found)
{
	struct snapshot_info info;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/nope", tmp);
	cr_expect_eq(snapshot_build(ws, path, NULL, &info, err, sizeof(err)),
		     STORE_NOT_FOUND);
	cr_expect(strstr(err, "nope") != NULL, "%s", err);
	put(src, "file", "x");
	snprintf(path, sizeof(path), "%s/file", src);
	cr_expect_eq(snapshot_build(ws, path, NULL, &info, err, sizeof(err)),
		     STORE_NOT_FOUND);
	cr_expect(strstr(err, "not a directory") != NULL, "%s", err);
}

Test(snapshot, unreadable_file_is_denied_naming_it)
{
	struct snapshot_info info;
	char path[PATH_MAX];

	if (geteuid() == 0) {
		teardown();	/* a skipped test's fini does not run */
		cr_skip_test("root reads files whatever their mode");
	}
	put(src, "sub/secret.py", "x");
	snprintf(path, sizeof(path), "%s/sub/secret.py", src);
	cr_assert_eq(chmod(path, 0), 0);
	cr_expect_eq(snapshot_build(ws, src, NULL, &info, err, sizeof(err)),
		     STORE_DENIED);
	cr_expect(strstr(err, "cannot read 'sub/secret.py'") != NULL, "%s", err);
}

Test(snapshot, symlink_to_etc_passwd_is_stored_as_a_link)
{
	struct snapshot_info info;
	struct snapshot_tree *t;
	struct snapshot_node n;
	struct strbuf sb = STRBUF_INIT;
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t len;

	put(src, "a.py", "a\n");
	symlink_in(src, "pw", "/etc/passwd");
	symlink_in(src, "dirlink", "/etc");
	info = build_ok(src);
	cr_expect_eq(info.files, 3);
	t = tree_of(info.id);
	cr_assert_eq(snapshot_tree_lookup(t, "pw", &n), STORE_OK);
	cr_expect_eq(n.type, SNAPSHOT_SYMLINK);
	cr_expect_eq(n.size, strlen("/etc/passwd"));
	cr_assert_eq(snapshot_tree_read(t, "pw", &sb), STORE_OK);
	cr_expect_str_eq(strbuf_str(&sb), "/etc/passwd");
	cr_expect(!tree_has(t, "dirlink/passwd"), "a link is never entered");
	strbuf_release(&sb);
	snapshot_tree_free(t);

	cr_assert_eq(snapshot_extract(ws, info.id, out, err, sizeof(err)),
		     STORE_OK, "%s", err);
	snprintf(path, sizeof(path), "%s/pw", out);
	len = readlink(path, target, sizeof(target) - 1);
	cr_assert_gt(len, 0);
	target[len] = '\0';
	cr_expect_str_eq(target, "/etc/passwd");
}

Test(snapshot, exec_bit_and_empty_dirs_survive_extraction)
{
	struct snapshot_info info;
	char path[PATH_MAX];
	struct stat st;

	put(src, "run.sh", "#!/bin/sh\necho hi\n");
	put(src, "lib/plain.py", "p\n");
	snprintf(path, sizeof(path), "%s/run.sh", src);
	cr_assert_eq(chmod(path, 0755), 0);
	mkdir_in(src, "empty");
	mkdir_in(src, "lib/empty2");
	info = build_ok(src);
	cr_assert_eq(snapshot_extract(ws, info.id, out, err, sizeof(err)),
		     STORE_OK, "%s", err);
	snprintf(path, sizeof(path), "%s/run.sh", out);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect(st.st_mode & S_IXUSR, "run.sh is executable");
	snprintf(path, sizeof(path), "%s/lib/plain.py", out);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect(!(st.st_mode & S_IXUSR), "plain.py is not executable");
	snprintf(path, sizeof(path), "%s/empty", out);
	cr_expect(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
	snprintf(path, sizeof(path), "%s/lib/empty2", out);
	cr_expect(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
}

static int add_name(void *ctx, const struct snapshot_node *c);

/* libzip writes no file for an archive without entries. */
Test(snapshot, empty_source_gives_an_empty_zip_that_reads_and_extracts)
{
	struct snapshot_info info, again;
	struct snapshot_tree *t;
	char names[256] = "";

	put(src, "only.log", "ignored\n");
	put(src, ".amlignore", "*\n");
	info = build_ok(src);
	cr_expect_eq(info.files, 0);
	cr_expect_eq(info.bytes, 0);
	cr_expect_eq(info.zip_bytes, 22);
	t = tree_of(info.id);
	cr_assert_eq(snapshot_tree_list(t, "", add_name, names), STORE_OK);
	cr_expect_str_eq(names, "");
	snapshot_tree_free(t);
	cr_assert_eq(snapshot_extract(ws, info.id, out, err, sizeof(err)),
		     STORE_OK, "%s", err);
	cr_expect_eq(count_entries(out), 0);
	again = build_ok(src);
	cr_expect_str_eq(again.id, info.id);
	cr_expect_eq(again.reused, 1);
}

static int add_name(void *ctx, const struct snapshot_node *c)
{
	char *names = ctx;

	strncat(names, c->name, 255 - strlen(names));
	strncat(names, " ", 255 - strlen(names));
	return 0;
}

Test(snapshot, tree_lookup_list_and_read)
{
	struct snapshot_info info;
	struct snapshot_tree *t;
	struct snapshot_node n;
	struct strbuf sb = STRBUF_INIT;
	char names[256] = "";

	put(src, "a", "top\n");
	put(src, "d/x.txt", "xx\n");
	put(src, "d/sub/y", "yy\n");
	put(src, "d.b", "dot\n");	/* sorts between "d" and "d/" */
	mkdir_in(src, "e");
	info = build_ok(src);
	t = tree_of(info.id);
	cr_assert_eq(snapshot_tree_lookup(t, "", &n), STORE_OK);
	cr_expect_eq(n.type, SNAPSHOT_DIR);
	cr_assert_eq(snapshot_tree_lookup(t, "d/x.txt", &n), STORE_OK);
	cr_expect_eq(n.type, SNAPSHOT_FILE);
	cr_expect_eq(n.size, 3);
	cr_expect_str_eq(n.name, "x.txt");
	cr_expect(n.mtime_ms > 0);
	cr_expect_eq(snapshot_tree_lookup(t, "d/none", &n), STORE_NOT_FOUND);

	cr_assert_eq(snapshot_tree_list(t, "", add_name, names), STORE_OK);
	cr_expect_str_eq(names, "a d d.b e ");
	names[0] = '\0';
	cr_assert_eq(snapshot_tree_list(t, "d", add_name, names), STORE_OK);
	cr_expect_str_eq(names, "sub x.txt ");
	names[0] = '\0';
	cr_assert_eq(snapshot_tree_list(t, "e", add_name, names), STORE_OK);
	cr_expect_str_eq(names, "");
	cr_expect_eq(snapshot_tree_list(t, "a", add_name, names), STORE_INVALID);

	cr_assert_eq(snapshot_tree_read(t, "d/sub/y", &sb), STORE_OK);
	cr_expect_str_eq(strbuf_str(&sb), "yy\n");
	cr_expect_eq(snapshot_tree_read(t, "d", &sb), STORE_INVALID);
	strbuf_release(&sb);
	snapshot_tree_free(t);
}

static int count_cb(void *ctx, const struct snapshot_info *s)
{
	(void)s;
	(*(int *)ctx)++;
	return 0;
}

Test(snapshot, get_list_and_paths)
{
	struct snapshot_info a, b, g;
	char path[PATH_MAX];
	int n = 0;

	cr_expect_eq(snapshot_list(ws, count_cb, &n), STORE_OK);
	cr_expect_eq(n, 0);
	put(src, "a", "1");
	a = build_ok(src);
	put(src, "a", "2");
	b = build_ok(src);
	cr_expect_eq(snapshot_list(ws, count_cb, &n), STORE_OK);
	cr_expect_eq(n, 2);
	cr_assert_eq(snapshot_get(ws, b.id, &g), STORE_OK);
	cr_expect_eq(g.files, 1);
	cr_expect_eq(g.zip_bytes, b.zip_bytes);
	cr_expect_eq(g.created_ms, b.created_ms);
	cr_expect_eq(snapshot_get(ws, "xyz", &g), STORE_INVALID);
	cr_expect_eq(snapshot_get(ws, "0123456789abcdef0123456789abcdef", &g),
		     STORE_NOT_FOUND);
	cr_assert_eq(snapshot_zip_path(ws, a.id, path, sizeof(path)), STORE_OK);
	cr_expect(access(path, R_OK) == 0);
	cr_expect_eq(snapshot_zip_path(ws, "../../etc", path, sizeof(path)),
		     STORE_INVALID);
}

/* ---- hostile zips ------------------------------------------------------------- */

/* Makes @path with entries (name, content, mode) until a NULL name. */
static void make_zip(const char *path, const char *const *names,
		     const char *const *contents, const mode_t *modes)
{
	int zerr = 0;
	zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);

	cr_assert_not_null(za);
	for (size_t i = 0; names[i]; i++) {
		zip_source_t *s = zip_source_buffer(za, contents[i],
						    strlen(contents[i]), 0);
		zip_int64_t idx = zip_file_add(za, names[i], s, ZIP_FL_ENC_RAW);

		cr_assert_geq(idx, 0, "add %s: %s", names[i], zip_strerror(za));
		zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0,
						 ZIP_OPSYS_UNIX,
						 (zip_uint32_t)modes[i] << 16);
	}
	cr_assert_eq(zip_close(za), 0);
}

static void expect_refused(const char *name_in_message,
			   const char *const *names,
			   const char *const *contents, const mode_t *modes)
{
	char zpath[PATH_MAX];

	snprintf(zpath, sizeof(zpath), "%s/evil.zip", tmp);
	make_zip(zpath, names, contents, modes);
	cr_expect_eq(snapshot_extract_zip(zpath, out, err, sizeof(err)),
		     STORE_INVALID);
	cr_expect(strstr(err, name_in_message) != NULL, "message '%s'", err);
	cr_expect_eq(count_entries(out), 0, "nothing written into dest");
}

Test(snapshot, extract_refuses_dotdot_absolute_and_writes_through_links)
{
	static const mode_t file = S_IFREG | 0644, link = S_IFLNK | 0777;
	char escape[512];

	{
		const char *n[] = { "ok.txt", "../evil", NULL };
		const char *c[] = { "fine", "bad" };
		const mode_t m[] = { file, file };

		expect_refused("../evil", n, c, m);
	}
	{
		const char *n[] = { "/abs", NULL };
		const char *c[] = { "bad" };
		const mode_t m[] = { file };

		expect_refused("/abs", n, c, m);
	}
	{
		const char *n[] = { "a/../../evil2", NULL };
		const char *c[] = { "bad" };
		const mode_t m[] = { file };

		expect_refused("a/../../evil2", n, c, m);
	}
	{
		const char *n[] = { "link", "link/x", NULL };
		const char *c[] = { tmp, "bad" };
		const mode_t m[] = { link, file };

		expect_refused("link/x", n, c, m);
	}
	cr_expect(!exists_in(tmp, "evil"));
	cr_expect(!exists_in(tmp, "x"), "nothing written through the link");
	snprintf(escape, sizeof(escape), "%s/..", tmp);
	cr_expect(!exists_in(escape, "evil2"));
}

Test(snapshot, extract_of_a_snapshot_matches_the_source)
{
	struct snapshot_info info;
	char cmd[3 * PATH_MAX];

	put(src, "a.py", "a\n");
	put(src, "d/e/f.txt", "deep\n");
	put(src, "d/g", "");
	info = build_ok(src);
	cr_assert_eq(snapshot_extract(ws, info.id, out, err, sizeof(err)),
		     STORE_OK, "%s", err);
	snprintf(cmd, sizeof(cmd), "diff -r '%s' '%s' >/dev/null", src, out);
	cr_expect_eq(system(cmd), 0);
	/* Extracting again over it: files exist, refused with EXISTS. */
	cr_expect_eq(snapshot_extract(ws, info.id, out, err, sizeof(err)),
		     STORE_EXISTS);
}
