/*
 * test_dataset.c - dataset versions (store/dataset.c), local datastores
 * (store/dataset_local.c) and HTTP ones (store/dataset_http.c, against a
 * private nginx); contract: mlfs/datasets.h.
 *
 * Every test gets its own workspace (ws_fixture.h); the dataset_http
 * suite also its own nginx (nginx_fixture.h), stopped in .fini. Local
 * datastores are directories under the workspace's temporary directory.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlfs/blob.h"
#include "mlfs/datasets.h"
#include "mlfs/datastores.h"
#include "mlfs/http.h"
#include "mlfs/models.h"
#include "mlfs/store.h"
#include "nginx_fixture.h"
#include "ws_fixture.h"

TestSuite(dataset, .init = ws_setup, .fini = ws_teardown, .timeout = 120);

/* ---- helpers --------------------------------------------------------------- */

static char err[512];

/* Writes @text to ws_root/@rel, making its directories. */
static void put_file(const char *rel, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	ws_path(path, rel);
	for (char *s = strchr(path + strlen(ws_root) + 1, '/'); s;
	     s = strchr(s + 1, '/')) {
		*s = '\0';
		cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "%s", path);
		*s = '/';
	}
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
}

static void put_symlink(const char *target, const char *rel)
{
	char path[PATH_MAX];

	ws_path(path, rel);
	cr_assert_eq(symlink(target, path), 0, "%s: %s", path, strerror(errno));
}

/* A local datastore @name on ws_root/@dir (made). */
static void make_local(struct store *st, const char *name, const char *dir)
{
	char path[PATH_MAX];
	struct datastore_spec sp = { .name = name, .type = DATASTORE_LOCAL };

	ws_path(path, dir);
	cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST);
	sp.path = path;
	cr_assert_eq(store_datastore_register(st, &sp, NULL), STORE_OK);
}

/* A local pin of a file of @size bytes (mtime 1000 ns). */
static struct dataset_file pin(const char *path, uint64_t size)
{
	struct dataset_file f = {
		.path = (char *)path, .size = size, .mtime_ns = 1000,
		.http_mtime_ms = -1,
	};
	return f;
}

static struct dataset_spec spec(const char *name, const char *datastore,
				const struct dataset_file *files, size_t n)
{
	struct dataset_spec sp = {
		.name = name, .datastore = datastore, .files = files,
		.nfiles = n,
	};
	return sp;
}

static int64_t reg(struct store *st, const struct dataset_spec *sp)
{
	struct store_dataset_version v = { 0 };
	int64_t n;
	int rc = store_dataset_register(st, sp, &v);

	cr_assert_eq(rc, STORE_OK, "register '%s': %s", sp->name,
		     store_strerror(rc));
	n = v.version;
	store_dataset_version_release(&v);
	return n;
}

/* "path size" lines of @fl, for one string comparison. */
static char *files_text(const struct dataset_files *fl)
{
	static char buf[4096];
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < fl->n; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s",
					i ? "," : "", fl->v[i].path);
	return buf;
}

static void sha256_hex(const void *p, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = 32;

	cr_assert_eq(EVP_Digest(p, len, md, &n, EVP_sha256(), NULL), 1);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The bytes of blob @hex, NUL-terminated (caller frees). */
static char *blob_text(const char *hex, size_t *len)
{
	char *buf = calloc(1, 1 << 20);
	int fd = -1;
	ssize_t n;

	cr_assert_eq(blob_open(ws_root, hex, &fd), STORE_OK, "blob %s", hex);
	n = read(fd, buf, (1 << 20) - 1);
	close(fd);
	cr_assert(n >= 0);
	*len = (size_t)n;
	return buf;
}

/* ---- versions -------------------------------------------------------------- */

struct seen {
	char s[16][96];
	size_t n;
};

static int collect_version(void *ctx, const struct store_dataset_version *v)
{
	struct seen *sn = ctx;

	if (sn->n < 16)
		snprintf(sn->s[sn->n++], 96, "%s/%lld:%lld:%s", v->name,
			 (long long)v->version, (long long)v->file_count,
			 v->datastore);
	return 0;
}

static int collect_dataset(void *ctx, const char *name, int64_t latest,
			   int64_t updated_ms)
{
	struct seen *sn = ctx;

	cr_expect_gt(updated_ms, 0);
	if (sn->n < 16)
		snprintf(sn->s[sn->n++], 96, "%s:%lld", name, (long long)latest);
	return 0;
}

Test(dataset, register_numbers_versions_one_two_three_and_get_reads_them)
{
	struct store *st = ws_open();
	struct dataset_file f1[] = { pin("b.csv", 5), pin("a.csv", 7) };
	struct dataset_file f2[] = { pin("c.csv", 1) };
	struct dataset_spec sp = spec("iris", "src", f1, 2);
	struct store_dataset_version v = { 0 };
	struct seen sn = { 0 };

	make_local(st, "src", "src");
	sp.description = "the iris flowers";
	sp.tags_json = "{\"stage\": \"raw\", \"owner\": \"ann\"}";
	cr_assert_eq(reg(st, &sp), 1);
	sp.files = f2;
	sp.nfiles = 1;
	sp.description = NULL;
	sp.tags_json = NULL;
	cr_assert_eq(reg(st, &sp), 2);
	cr_assert_eq(reg(st, &sp), 3);

	cr_assert_eq(store_dataset_version_get(st, "iris", 1, &v), STORE_OK);
	cr_expect_str_eq(v.name, "iris");
	cr_expect_eq(v.version, 1);
	cr_expect_str_eq(v.datastore, "src");
	cr_expect_str_eq(v.description, "the iris flowers");
	cr_expect_str_eq(v.tags_json, "{\"owner\":\"ann\",\"stage\":\"raw\"}");
	cr_expect_eq(v.copy, 0);
	cr_expect_eq(v.file_count, 2);
	cr_expect_eq(v.total_bytes, 12);
	cr_expect_gt(v.created_ms, 0);
	store_dataset_version_release(&v);

	cr_assert_eq(store_dataset_version_get(st, "iris", 0, &v), STORE_OK);
	cr_expect_eq(v.version, 3, "0 is the latest");
	cr_expect_str_eq(v.description, "");
	cr_expect_str_eq(v.tags_json, "{}");
	store_dataset_version_release(&v);
	cr_expect_eq(store_dataset_version_get(st, "iris", 4, &v),
		     STORE_NOT_FOUND);
	cr_expect_eq(store_dataset_version_get(st, "nope", 0, &v),
		     STORE_NOT_FOUND);

	cr_assert_eq(store_dataset_versions(st, "iris", collect_version, &sn),
		     STORE_OK);
	cr_assert_eq(sn.n, 3);
	cr_expect_str_eq(sn.s[0], "iris/1:2:src");
	cr_expect_str_eq(sn.s[1], "iris/2:1:src");
	cr_expect_str_eq(sn.s[2], "iris/3:1:src");
	cr_expect_eq(store_dataset_versions(st, "nope", collect_version, &sn),
		     STORE_NOT_FOUND);

	sp.name = "alpha";
	cr_assert_eq(reg(st, &sp), 1, "numbers count per dataset");
	sn.n = 0;
	cr_assert_eq(store_dataset_list(st, collect_dataset, &sn), STORE_OK);
	cr_assert_eq(sn.n, 2);
	cr_expect_str_eq(sn.s[0], "alpha:1");
	cr_expect_str_eq(sn.s[1], "iris:3");
	store_close(st);
}

struct change_log {
	int datasets;
	int64_t object_id;
};

static int count_change(void *ctx, const struct store_change *c)
{
	struct change_log *cl = ctx;

	if (c->kind == CHANGE_DATASETS) {
		cl->datasets++;
		cl->object_id = c->object_id;
	}
	return 0;
}

static int last_event(void *ctx, const struct store_event *e)
{
	snprintf(ctx, 256, "%s", e->line);
	return 0;
}

Test(dataset, register_adds_a_change_and_an_events_line)
{
	struct store *st = ws_open();
	struct dataset_file f[] = { pin("x", 3100000), pin("y", 0) };
	struct dataset_spec sp = spec("mnist", "src", f, 2);
	struct store_dataset_version v = { 0 };
	struct change_log cl = { 0 };
	char line[256] = "";
	int64_t seq = 0;

	make_local(st, "src", "src");
	cr_assert_eq(store_changes_head(st, &seq), STORE_OK);
	cr_assert_eq(store_dataset_register(st, &sp, &v), STORE_OK);
	cr_assert_eq(store_changes_since(st, &seq, count_change, &cl), STORE_OK);
	cr_expect_eq(cl.datasets, 1);
	cr_expect_eq(cl.object_id, v.id);
	cr_assert_eq(store_event_list(st, 1, last_event, line), STORE_OK);
	cr_expect_str_eq(line, "datasets/mnist/1 registered: 2 files, 3.1 MB "
			       "from datastore src");
	store_dataset_version_release(&v);
	store_close(st);
}

Test(dataset, files_lists_a_prefix_in_bytewise_order)
{
	struct store *st = ws_open();
	struct dataset_file f[] = {
		pin("z", 1), pin("data/y.npy", 2), pin("data-z", 3),
		pin("data/x/2.npy", 4), pin("B.csv", 5), pin("datax", 6),
		pin("data/x/1.npy", 7), pin("\xc3\xa9t\xc3\xa9", 8),
		pin("data/\xc3\xa9", 9),
	};
	struct dataset_spec sp = spec("d", "src", f, sizeof(f) / sizeof(f[0]));
	struct store_dataset_version v = { 0 };
	struct dataset_files fl = { 0 };
	struct dataset_file one = { 0 };

	make_local(st, "src", "src");
	cr_assert_eq(store_dataset_register(st, &sp, &v), STORE_OK);

	cr_assert_eq(store_dataset_files(st, v.id, "", &fl), STORE_OK);
	cr_expect_str_eq(files_text(&fl),
			 "B.csv,data-z,data/x/1.npy,data/x/2.npy,data/y.npy,"
			 "data/\xc3\xa9,datax,z,\xc3\xa9t\xc3\xa9");
	dataset_files_release(&fl);

	cr_assert_eq(store_dataset_files(st, v.id, "data/", &fl), STORE_OK);
	cr_expect_str_eq(files_text(&fl),
			 "data/x/1.npy,data/x/2.npy,data/y.npy,data/\xc3\xa9");
	cr_expect_eq(fl.v[0].size, 7);
	cr_expect_eq(fl.v[0].mtime_ns, 1000);
	cr_expect_null(fl.v[0].etag);
	cr_expect_eq(fl.v[0].http_mtime_ms, -1);
	cr_expect_str_eq(fl.v[0].blob, "");
	/* appends */
	cr_assert_eq(store_dataset_files(st, v.id, "data/x/", &fl), STORE_OK);
	cr_expect_eq(fl.n, 6);
	cr_expect_str_eq(fl.v[5].path, "data/x/2.npy");
	dataset_files_release(&fl);

	cr_assert_eq(store_dataset_files(st, v.id, "nope/", &fl), STORE_OK);
	cr_expect_eq(fl.n, 0);
	cr_assert_eq(store_dataset_files(st, v.id + 1, "", &fl), STORE_OK);
	cr_expect_eq(fl.n, 0, "another version's files leak in");
	cr_assert_eq(store_dataset_files(st, v.id, "\xc3", &fl), STORE_OK);
	cr_expect_str_eq(files_text(&fl), "\xc3\xa9t\xc3\xa9");
	dataset_files_release(&fl);

	cr_assert_eq(store_dataset_file_get(st, v.id, "data/y.npy", &one),
		     STORE_OK);
	cr_expect_str_eq(one.path, "data/y.npy");
	cr_expect_eq(one.size, 2);
	dataset_file_release(&one);
	cr_expect_eq(store_dataset_file_get(st, v.id, "data", &one),
		     STORE_NOT_FOUND);
	store_dataset_version_release(&v);
	store_close(st);
}

struct path_text {
	char buf[512];
	size_t off;
	int stop_after;
};

static int collect_path(void *ctx, const char *path)
{
	struct path_text *t = ctx;

	t->off += (size_t)snprintf(t->buf + t->off, sizeof(t->buf) - t->off,
				   "%s%s", t->off ? "," : "", path);
	return --t->stop_after == 0;
}

Test(dataset, datastore_paths_are_the_union_of_its_versions_once_each)
{
	struct store *st = ws_open();
	struct dataset_file a[] = { pin("data/x.csv", 1), pin("data/y.csv", 2),
				    pin("top.bin", 3) };
	struct dataset_file b[] = { pin("data/x.csv", 4), pin("data/z/w.csv", 5) };
	struct dataset_file c[] = { pin("other.csv", 6) };
	struct dataset_spec sa = spec("a", "src", a, 3);
	struct dataset_spec sb = spec("b", "src", b, 2);
	struct dataset_spec sc = spec("c", "elsewhere", c, 1);
	struct store_datastore src = { 0 };
	struct path_text t = { .stop_after = -1 };

	make_local(st, "src", "src");
	make_local(st, "elsewhere", "elsewhere");
	reg(st, &sa);
	reg(st, &sb);
	reg(st, &sc);
	cr_assert_eq(store_datastore_get(st, "src", &src), STORE_OK);

	cr_assert_eq(store_datastore_paths(st, src.id, "", collect_path, &t),
		     STORE_OK);
	cr_expect_str_eq(t.buf, "data/x.csv,data/y.csv,data/z/w.csv,top.bin");
	t = (struct path_text){ .stop_after = -1 };
	cr_assert_eq(store_datastore_paths(st, src.id, "data/z/", collect_path,
					   &t), STORE_OK);
	cr_expect_str_eq(t.buf, "data/z/w.csv");
	t = (struct path_text){ .stop_after = 1 };
	cr_assert_eq(store_datastore_paths(st, src.id, "data/", collect_path,
					   &t), STORE_OK);
	cr_expect_str_eq(t.buf, "data/x.csv", "a non-zero return stops");
	t = (struct path_text){ .stop_after = -1 };
	cr_assert_eq(store_datastore_paths(st, src.id, "nope/", collect_path,
					   &t), STORE_OK);
	cr_expect_str_eq(t.buf, "");
	store_datastore_release(&src);
	store_close(st);
}

static int count_datasets(void *ctx, const char *name, int64_t latest,
			  int64_t updated_ms)
{
	(void)name;
	(void)latest;
	(void)updated_ms;
	(*(int *)ctx)++;
	return 0;
}

Test(dataset, register_refuses_bad_specs_and_leaves_nothing)
{
	static const char *const bad_paths[] = {
		"", "/abs", "../x", "a/../b", "a/./b", ".", "a//b", "a/",
	};
	static const char *const bad_names[] = { "", ".hidden", "a b", "x/y" };
	static const char *const bad_tags[] = {
		"[]", "{\"a\": 1}", "{\"a\": \"x\", \"a\": \"y\"}", "{", "\"s\"",
		"{\"a\": null}",
	};
	struct store *st = ws_open();
	struct dataset_file ok[] = { pin("a", 1) };
	struct dataset_file dup[] = { pin("a/b", 1), pin("c", 1), pin("a/b", 2) };
	struct dataset_file conflict[] = { pin("a/b/c", 1), pin("a/b-", 1),
					   pin("a/b", 1) };
	struct dataset_file bad;
	struct dataset_spec sp;
	int n = 0;

	make_local(st, "src", "src");
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		sp = spec(bad_names[i], "src", ok, 1);
		cr_expect_eq(store_dataset_register(st, &sp, NULL), STORE_INVALID,
			     "name '%s'", bad_names[i]);
	}
	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		bad = pin(bad_paths[i], 1);
		sp = spec("d", "src", &bad, 1);
		cr_expect_eq(store_dataset_register(st, &sp, NULL), STORE_INVALID,
			     "path '%s'", bad_paths[i]);
	}
	for (size_t i = 0; i < sizeof(bad_tags) / sizeof(bad_tags[0]); i++) {
		sp = spec("d", "src", ok, 1);
		sp.tags_json = bad_tags[i];
		cr_expect_eq(store_dataset_register(st, &sp, NULL), STORE_INVALID,
			     "tags %s", bad_tags[i]);
	}
	sp = spec("d", "src", dup, 3);
	cr_expect_eq(store_dataset_register(st, &sp, NULL), STORE_INVALID,
		     "duplicate path");
	sp = spec("d", "src", conflict, 3);
	cr_expect_eq(store_dataset_register(st, &sp, NULL), STORE_INVALID,
		     "'a/b' both a file and a directory");
	sp = spec("d", "src", ok, 0);
	cr_expect_eq(store_dataset_register(st, &sp, NULL), STORE_INVALID,
		     "no files");
	sp = spec("d", "src", ok, 1);
	sp.copy = 1;
	cr_expect_eq(store_dataset_register(st, &sp, NULL), STORE_INVALID,
		     "copy without a blob");
	bad = pin("a", 1);
	bad.etag = (char *)"\"e\"";
	sp = spec("d", "src", &bad, 1);
	cr_expect_eq(store_dataset_register(st, &sp, NULL), STORE_INVALID,
		     "an HTTP pin on a local datastore");
	sp = spec("d", "nowhere", ok, 1);
	cr_expect_eq(store_dataset_register(st, &sp, NULL), STORE_NOT_FOUND,
		     "unknown datastore");
	sp = spec("d", "src", ok, DATASET_FILES_MAX + 1);
	cr_expect_eq(store_dataset_register(st, &sp, NULL), STORE_TOO_BIG);

	cr_assert_eq(store_dataset_list(st, count_datasets, &n), STORE_OK);
	cr_expect_eq(n, 0, "a refused registration made a dataset");
	sp = spec("d", "src", conflict + 1, 2);	/* "a/b-" and "a/b" are fine */
	cr_expect_eq(reg(st, &sp), 1, "a refused registration took a number");
	store_close(st);
}

Test(dataset, a_used_datastore_cannot_be_removed)
{
	struct store *st = ws_open();
	struct dataset_file f[] = { pin("a", 1) };
	struct dataset_spec sp = spec("d", "used", f, 1);
	struct store_datastore d = { 0 };

	make_local(st, "used", "used");
	make_local(st, "spare", "spare");
	reg(st, &sp);
	cr_expect_eq(store_datastore_delete(st, "used"), STORE_NOT_EMPTY);
	cr_expect_eq(store_datastore_get(st, "used", &d), STORE_OK);
	store_datastore_release(&d);
	cr_expect_eq(store_datastore_delete(st, "spare"), STORE_OK);
	store_close(st);
}

struct hexes {
	char s[8][65];
	size_t n;
};

static int collect_blob(void *ctx, const char *hex)
{
	struct hexes *h = ctx;

	if (h->n < 8)
		snprintf(h->s[h->n], 65, "%s", hex);
	h->n++;
	return 0;
}

/* A valid blob hex: 64 times @c (a..f); one buffer per @c. */
static const char *hex64(char c)
{
	static char buf[16][65];
	char *h = buf[(unsigned char)c % 16];

	memset(h, c, 64);
	h[64] = '\0';
	return h;
}

Test(dataset, blob_each_referenced_and_model_orphans_keep_dataset_blobs)
{
	struct store *st = ws_open();
	struct dataset_file f[] = { pin("x", 1), pin("y", 1), pin("z", 1) };
	struct dataset_spec sp = spec("d", "src", f, 3);
	struct store_model_file mf[] = {
		{ .path = "m.bin", .blob = hex64('b'), .size = 1, .mode = 0644 },
		{ .path = "n.bin", .blob = hex64('a'), .size = 1, .mode = 0644 },
	};
	struct model_version_spec ms = { .files = mf, .nfiles = 2 };
	struct store_model_version mv = { 0 };
	struct store_hex_list orphans = { 0 };
	struct hexes h = { 0 };

	make_local(st, "src", "src");
	memcpy(f[0].blob, hex64('c'), sizeof(f[0].blob));
	memcpy(f[1].blob, hex64('a'), sizeof(f[1].blob));
	memcpy(f[2].blob, hex64('c'), sizeof(f[2].blob));
	sp.copy = 1;
	reg(st, &sp);
	cr_assert_eq(store_model_register(st, "m", &ms, &mv), STORE_OK);

	cr_assert_eq(store_blob_each(st, collect_blob, &h), STORE_OK);
	cr_assert_eq(h.n, 3, "once each");
	cr_expect_str_eq(h.s[0], hex64('a'));
	cr_expect_str_eq(h.s[1], hex64('b'));
	cr_expect_str_eq(h.s[2], hex64('c'));

	/* 'a' is the model's and the dataset's: not the model's orphan */
	cr_assert_eq(store_model_version_delete(st, "m", mv.version, &orphans),
		     STORE_OK);
	cr_assert_eq(orphans.n, 1);
	cr_expect_str_eq(orphans.hex[0], hex64('b'));
	store_hex_list_release(&orphans);
	/* what a failed put's cleanup asks before removing a blob it made */
	for (const char *c = "abcd"; *c; c++) {
		int used = -1;

		cr_assert_eq(store_blob_referenced(st, hex64(*c), &used),
			     STORE_OK);
		cr_expect_eq(used, *c == 'a' || *c == 'c', "blob %c", *c);
	}
	store_model_version_release(&mv);
	store_close(st);
}

Test(dataset, a_schema_4_workspace_migrates_and_takes_datasets)
{
	char dir[PATH_MAX], db_path[PATH_MAX];
	struct store_workspace ws = { 0 };
	struct dataset_file f[] = { pin("a", 1) };
	struct dataset_spec sp = spec("d", DATASTORE_DEFAULT, f, 1);
	struct store *st = NULL;
	int rc;

	ws_path(dir, "v4");
	cr_assert_eq(mkdir(dir, 0755), 0);
	ws_path(db_path, "v4/workspace.db");
	cr_assert_eq(store_migrate_to(db_path, 4), STORE_OK);
	rc = store_open(dir, 0, &st, err, sizeof(err));
	cr_assert_eq(rc, STORE_OK, "store_open: %s", err);
	cr_assert_eq(store_workspace_get(st, &ws), STORE_OK);
	cr_expect_eq(ws.schema_version, 5);
	store_workspace_release(&ws);
	cr_expect_eq(reg(st, &sp), 1);
	cr_expect_eq(store_datastore_delete(st, DATASTORE_DEFAULT), STORE_DENIED);
	cr_assert_eq(store_integrity_check(st), STORE_OK);
	store_close(st);
}

#define WRITERS 4
#define EACH 5

/* A child: @EACH registrations of "shared"; 0 when all were STORE_OK. */
static int writer(int i)
{
	char path[32];
	struct dataset_file f;
	struct dataset_spec sp;
	struct store *st = NULL;

	snprintf(path, sizeof(path), "w%d", i);
	f = pin(path, (uint64_t)i);
	sp = spec("shared", "src", &f, 1);
	if (store_open(ws_root, 0, &st, NULL, 0) != STORE_OK)
		return 1;
	for (int k = 0; k < EACH; k++)
		if (store_dataset_register(st, &sp, NULL) != STORE_OK)
			return 2;
	store_close(st);
	return 0;
}

static int count_version(void *ctx, const struct store_dataset_version *v)
{
	int64_t *next = ctx;

	cr_expect_eq(v->version, *next, "numbers are not consecutive");
	(*next)++;
	return 0;
}

Test(dataset, processes_registering_at_once_get_consecutive_numbers)
{
	struct store *st = ws_open();
	pid_t pids[WRITERS];
	int64_t next = 1;

	make_local(st, "src", "src");
	store_close(st);
	for (int i = 0; i < WRITERS; i++) {
		pids[i] = fork();
		cr_assert_geq(pids[i], 0);
		if (pids[i] == 0)
			_exit(writer(i));
	}
	for (int i = 0; i < WRITERS; i++) {
		int ws = 0;

		cr_assert_eq(waitpid(pids[i], &ws, 0), pids[i]);
		cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
			  "writer %d failed (status 0x%x)", i, ws);
	}
	st = ws_open();
	cr_assert_eq(store_dataset_versions(st, "shared", count_version, &next),
		     STORE_OK);
	cr_expect_eq(next, WRITERS * EACH + 1);
	store_close(st);
}

/* ---- local datastores ------------------------------------------------------ */

/*
 * src/ with files, a hidden one, a deeper tree, a symlink out of the
 * root, one inside it and a loop.
 */
static void make_tree(void)
{
	put_file("src/a.csv", "a,b\n");
	put_file("src/b.csv", "1,2,3\n");
	put_file("src/.hidden.csv", "h\n");
	put_file("src/notes.txt", "notes\n");
	put_file("src/data/3.npy", "three");
	put_file("src/data/readme.md", "# data\n");
	put_file("src/data/x/1.npy", "one");
	put_file("src/data/x/deep/2.npy", "two!");
	put_file("src/data/.cache/4.npy", "four");
	put_file("outside/secret.csv", "secret\n");
	put_symlink("../outside/secret.csv", "src/out.csv");
	put_symlink("/etc", "src/etc");
	put_symlink("data/3.npy", "src/in.npy");
	put_symlink(".", "src/data/loop");
}

static int expand(const char *const *patterns, size_t n,
		  dataset_may_read_fn may_read, struct dataset_files *fl)
{
	char root[PATH_MAX];

	ws_path(root, "src");
	err[0] = '\0';
	return dataset_local_expand(root, patterns, n, may_read, NULL, fl, err,
				    sizeof(err));
}

Test(dataset, local_expand_matches_globs_per_segment)
{
	static const char *const csv[] = { "*.csv" };
	static const char *const npy[] = { "data/**/*.npy" };
	static const char *const both[] = { "a.csv", "*.csv", "a.csv" };
	static const char *const all_npy[] = { "**/*.npy" };
	struct dataset_files fl = { 0 };
	struct stat sb;
	char path[PATH_MAX];

	make_tree();
	cr_assert_eq(expand(csv, 1, NULL, &fl), STORE_OK, "%s", err);
	cr_expect_str_eq(files_text(&fl), "a.csv,b.csv",
			 "out.csv leads outside, .hidden.csv starts with '.'");
	ws_path(path, "src/b.csv");
	cr_assert_eq(stat(path, &sb), 0);
	cr_expect_eq(fl.v[1].size, 6);
	cr_expect_eq(fl.v[1].mtime_ns,
		     (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec);
	cr_expect_null(fl.v[1].etag);
	cr_expect_eq(fl.v[1].http_mtime_ms, -1);
	cr_expect_str_eq(fl.v[1].blob, "");
	dataset_files_release(&fl);

	cr_assert_eq(expand(npy, 1, NULL, &fl), STORE_OK, "%s", err);
	cr_expect_str_eq(files_text(&fl),
			 "data/3.npy,data/x/1.npy,data/x/deep/2.npy");
	dataset_files_release(&fl);

	cr_assert_eq(expand(all_npy, 1, NULL, &fl), STORE_OK, "%s", err);
	cr_expect_str_eq(files_text(&fl),
			 "data/3.npy,data/x/1.npy,data/x/deep/2.npy,in.npy");
	dataset_files_release(&fl);

	cr_assert_eq(expand(both, 3, NULL, &fl), STORE_OK, "%s", err);
	cr_expect_str_eq(files_text(&fl), "a.csv,b.csv", "once each");
	dataset_files_release(&fl);
}

Test(dataset, local_expand_takes_a_directory_whole_and_never_leaves_root)
{
	static const char *const data[] = { "data" };
	static const char *const data_slash[] = { "data/" };
	static const char *const file_slash[] = { "a.csv/" };
	static const char *const in[] = { "in.npy", "etc/*" };
	static const char *const out[] = { "out.csv" };
	static const char *const etc[] = { "etc/passwd" };
	struct dataset_files fl = { 0 };

	make_tree();
	cr_assert_eq(expand(data, 1, NULL, &fl), STORE_OK, "%s", err);
	cr_expect_str_eq(files_text(&fl),
			 "data/.cache/4.npy,data/3.npy,data/readme.md,"
			 "data/x/1.npy,data/x/deep/2.npy",
			 "data/loop is a loop: not entered");
	dataset_files_release(&fl);
	cr_assert_eq(expand(data_slash, 1, NULL, &fl), STORE_OK, "%s", err);
	cr_expect_eq(fl.n, 5);
	dataset_files_release(&fl);
	cr_expect_eq(expand(file_slash, 1, NULL, &fl), STORE_NOT_FOUND);

	cr_expect_eq(expand(out, 1, NULL, &fl), STORE_NOT_FOUND,
		     "a symlink out of the root was followed");
	cr_expect_eq(expand(etc, 1, NULL, &fl), STORE_NOT_FOUND,
		     "an absolute symlink was followed");
	cr_expect_eq(fl.n, 0);
	cr_expect_eq(expand(in, 2, NULL, &fl), STORE_NOT_FOUND);
	cr_expect_str_eq(err, "no file matches 'etc/*'");
	cr_expect_eq(fl.n, 0, "a failed expansion left files behind");
	cr_assert_eq(expand(in, 1, NULL, &fl), STORE_OK, "%s", err);
	cr_expect_str_eq(files_text(&fl), "in.npy");
	cr_expect_eq(fl.v[0].size, 5, "the symlink's target's size");
	dataset_files_release(&fl);
}

Test(dataset, local_expand_names_the_pattern_that_fails)
{
	static const char *const none[] = { "a.csv", "nothing*.bin" };
	static const char *const abs[] = { "/etc/passwd" };
	static const char *const dotdot[] = { "data/../../outside/secret.csv" };
	static const char *const empty[] = { "" };
	static const char *const dslash[] = { "data//3.npy" };
	struct dataset_files fl = { 0 };
	char root[PATH_MAX];

	make_tree();
	cr_expect_eq(expand(none, 2, NULL, &fl), STORE_NOT_FOUND);
	cr_expect_str_eq(err, "no file matches 'nothing*.bin'");
	cr_expect_eq(fl.n, 0);
	cr_expect_eq(expand(abs, 1, NULL, &fl), STORE_INVALID);
	cr_expect_str_eq(err, "invalid pattern '/etc/passwd': not relative");
	cr_expect_eq(expand(dotdot, 1, NULL, &fl), STORE_INVALID);
	cr_expect(strstr(err, "'data/../../outside/secret.csv'"), "%s", err);
	cr_expect_eq(expand(empty, 1, NULL, &fl), STORE_INVALID);
	cr_expect_eq(expand(dslash, 1, NULL, &fl), STORE_INVALID);
	cr_expect_eq(fl.n, 0);

	ws_path(root, "missing");
	cr_expect_eq(dataset_local_expand(root, none, 1, NULL, NULL, &fl, err,
					  sizeof(err)), STORE_NOT_FOUND);
	cr_expect(strstr(err, "cannot open datastore directory"), "%s", err);
}

/* Refuses the directory whose inode ctx holds, and files of 7 bytes. */
static int refuse_some(void *ctx, const struct stat *st)
{
	if (S_ISDIR(st->st_mode))
		return st->st_ino != *(ino_t *)ctx;
	return st->st_size != 7;
}

Test(dataset, local_expand_skips_what_may_read_refuses)
{
	static const char *const data[] = { "data" };
	static const char *const one[] = { "data/x/1.npy" };
	struct dataset_files fl = { 0 };
	char root[PATH_MAX], path[PATH_MAX];
	struct stat sb;

	make_tree();
	ws_path(root, "src");
	ws_path(path, "src/data/x");
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(dataset_local_expand(root, data, 1, refuse_some, &sb.st_ino,
					  &fl, err, sizeof(err)), STORE_OK,
		     "%s", err);
	cr_expect_str_eq(files_text(&fl), "data/.cache/4.npy,data/3.npy",
			 "data/x and data/readme.md (7 bytes) are refused");
	dataset_files_release(&fl);
	cr_expect_eq(dataset_local_expand(root, one, 1, refuse_some, &sb.st_ino,
					  &fl, err, sizeof(err)),
		     STORE_NOT_FOUND);
	cr_expect_eq(fl.n, 0);
}

/* ---- local open and copy --------------------------------------------------- */

/* The pins of src/@rel, as expansion takes them. */
static struct dataset_file local_pin(const char *rel)
{
	const char *const pat[] = { rel };
	struct dataset_files fl = { 0 };
	struct dataset_file f;

	cr_assert_eq(expand(pat, 1, NULL, &fl), STORE_OK, "%s", err);
	cr_assert_eq(fl.n, 1);
	f = fl.v[0];
	free(fl.v);
	return f;
}

static int open_local(const struct dataset_file *f, int *fd)
{
	char root[PATH_MAX];

	ws_path(root, "src");
	err[0] = '\0';
	return dataset_local_open(root, f, fd, err, sizeof(err));
}

Test(dataset, local_open_checks_the_pin)
{
	struct dataset_file f;
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT } };
	char path[PATH_MAX], buf[16] = "";
	int fd = -1;

	make_tree();
	f = local_pin("a.csv");
	cr_assert_eq(open_local(&f, &fd), STORE_OK, "%s", err);
	cr_expect_eq(read(fd, buf, sizeof(buf) - 1), 4);
	cr_expect_str_eq(buf, "a,b\n");
	close(fd);

	put_file("src/a.csv", "a,b,c\n");
	cr_expect_eq(open_local(&f, &fd), STORE_CORRUPT);
	cr_expect_str_eq(err, "'a.csv' changed since it was registered: "
			      "size 4 -> 6");

	put_file("src/a.csv", "x,y\n");	/* same size, new mtime */
	ws_path(path, "src/a.csv");
	ts[1].tv_sec = f.mtime_ns / 1000000000 + 7;
	ts[1].tv_nsec = 0;
	cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
	cr_expect_eq(open_local(&f, &fd), STORE_CORRUPT);
	cr_expect(strstr(err, "'a.csv' changed since it was registered: mtime"),
		  "%s", err);

	cr_assert_eq(unlink(path), 0);
	cr_expect_eq(open_local(&f, &fd), STORE_NOT_FOUND);
	cr_expect(strstr(err, "'a.csv'"), "%s", err);
	dataset_file_release(&f);
}

Test(dataset, local_open_never_leaves_the_root)
{
	struct dataset_file f;
	int fd = -1;

	make_tree();
	f = local_pin("in.npy");
	free(f.path);
	f.path = strdup("out.csv");	/* outside, though the pin would fit */
	cr_expect_eq(open_local(&f, &fd), STORE_NOT_FOUND);
	free(f.path);
	f.path = strdup("data/../../outside/secret.csv");
	cr_expect_eq(open_local(&f, &fd), STORE_NOT_FOUND);
	dataset_file_release(&f);
}

Test(dataset, local_copy_makes_blobs_that_outlive_their_source)
{
	static const char *const pat[] = { "*.csv", "data/x" };
	struct dataset_files fl = { 0 };
	struct store *st = ws_open();
	struct dataset_spec sp = spec("copied", "src", NULL, 0);
	struct hexes h = { 0 };
	char root[PATH_MAX], want[65], *text;
	size_t len;

	make_tree();
	make_local(st, "src", "src");
	cr_assert_eq(expand(pat, 2, NULL, &fl), STORE_OK, "%s", err);
	cr_assert_eq(fl.n, 4);
	ws_path(root, "src");
	cr_assert_eq(dataset_local_copy(ws_root, root, &fl, err, sizeof(err)),
		     STORE_OK, "%s", err);
	cr_expect_str_eq(fl.v[0].path, "a.csv");
	sha256_hex("a,b\n", 4, want);
	cr_expect_str_eq(fl.v[0].blob, want);
	sha256_hex("two!", 4, want);
	cr_expect_str_eq(fl.v[3].path, "data/x/deep/2.npy");
	cr_expect_str_eq(fl.v[3].blob, want);

	sp.files = fl.v;
	sp.nfiles = fl.n;
	sp.copy = 1;
	cr_assert_eq(reg(st, &sp), 1);
	cr_assert_eq(store_blob_each(st, collect_blob, &h), STORE_OK);
	cr_expect_eq(h.n, 4);

	put_file("src/a.csv", "changed!");
	text = blob_text(fl.v[0].blob, &len);
	cr_expect_eq(len, 4);
	cr_expect_str_eq(text, "a,b\n");
	free(text);

	/* the source changed since it was pinned: nothing is copied */
	fl.v[1].blob[0] = '\0';
	fl.v[0].blob[0] = '\0';
	cr_expect_eq(dataset_local_copy(ws_root, root, &fl, err, sizeof(err)),
		     STORE_CORRUPT);
	cr_expect_str_eq(err, "'a.csv' changed since it was registered: "
			      "size 4 -> 8");
	cr_expect_str_eq(fl.v[0].blob, "");
	dataset_files_release(&fl);
	store_close(st);
}

/* ---- HTTP datastores -------------------------------------------------------- */

static struct nginx_fixture nx;

static void http_setup(void)
{
	ws_setup();
	cr_assert_eq(nginx_fixture_start(&nx), 0, "nginx did not start");
}

static void http_teardown(void)
{
	nginx_fixture_destroy(&nx);
	ws_teardown();
}

TestSuite(dataset_http, .init = http_setup, .fini = http_teardown,
	  .timeout = 120);

static struct http_source *source(void)
{
	struct http_source *src = NULL;

	cr_assert_eq(http_source_new(nx.base_url, NULL, NULL, &src, err,
				     sizeof(err)), STORE_OK, "%s", err);
	return src;
}

static void serve(const char *rel, const char *text)
{
	cr_assert_eq(nginx_fixture_write(&nx, rel, text, strlen(text)), 0);
}

Test(dataset_http, pin_heads_literal_paths_only)
{
	static const char *const paths[] = { "d/b.bin", "a.txt", "d/b.bin" };
	static const char *const glob[] = { "a.txt", "d/*.bin" };
	static const char *const missing[] = { "a.txt", "gone.txt" };
	static const char *const bad[] = { "../a.txt" };
	static const char *const secret[] = { "secret/s.txt" };
	struct http_source *src = source();
	struct dataset_files fl = { 0 };

	serve("a.txt", "hello\n");
	serve("d/b.bin", "0123456789");
	serve("secret/s.txt", "psst");
	cr_assert_eq(dataset_http_pin(src, paths, 3, &fl, err, sizeof(err)),
		     STORE_OK, "%s", err);
	cr_assert_str_eq(files_text(&fl), "a.txt,d/b.bin");
	cr_expect_eq(fl.v[0].size, 6);
	cr_expect_eq(fl.v[1].size, 10);
	cr_assert_not_null(fl.v[0].etag);
	cr_expect_eq(fl.v[0].etag[0], '"', "nginx sends a strong ETag");
	cr_expect_gt(fl.v[0].http_mtime_ms, 0);
	cr_expect_eq(fl.v[0].mtime_ns, -1);
	cr_expect_str_eq(fl.v[0].blob, "");
	dataset_files_release(&fl);

	cr_expect_eq(dataset_http_pin(src, glob, 2, &fl, err, sizeof(err)),
		     STORE_INVALID);
	cr_expect(strstr(err, "'d/*.bin'"), "%s", err);
	cr_expect_eq(fl.n, 0);
	cr_expect_eq(dataset_http_pin(src, missing, 2, &fl, err, sizeof(err)),
		     STORE_NOT_FOUND);
	cr_expect(strstr(err, "'gone.txt'"), "%s", err);
	cr_expect_eq(fl.n, 0, "a failed pin left files behind");
	cr_expect_eq(dataset_http_pin(src, bad, 1, &fl, err, sizeof(err)),
		     STORE_INVALID);
	cr_expect_eq(dataset_http_pin(src, secret, 1, &fl, err, sizeof(err)),
		     STORE_DENIED, "no Authorization header was sent");
	cr_expect_eq(fl.n, 0);
	http_source_free(src);
}

Test(dataset_http, copy_reads_the_pinned_bytes_or_fails)
{
	static const char *const paths[] = { "a.txt", "d/b.bin" };
	struct http_source *src = source();
	struct dataset_files fl = { 0 };
	struct store *st = ws_open();
	struct datastore_spec ds = {
		.name = "web", .type = DATASTORE_HTTP, .url = nx.base_url,
	};
	struct dataset_spec sp = spec("remote", "web", NULL, 0);
	struct store_dataset_version v = { 0 };
	struct dataset_file got = { 0 };
	char want[65], *text;
	size_t len;

	serve("a.txt", "hello\n");
	serve("d/b.bin", "0123456789");
	cr_assert_eq(dataset_http_pin(src, paths, 2, &fl, err, sizeof(err)),
		     STORE_OK, "%s", err);
	cr_assert_eq(dataset_http_copy(ws_root, src, &fl, err, sizeof(err)),
		     STORE_OK, "%s", err);
	sha256_hex("hello\n", 6, want);
	cr_expect_str_eq(fl.v[0].blob, want);
	text = blob_text(fl.v[1].blob, &len);
	cr_expect_eq(len, 10);
	cr_expect_str_eq(text, "0123456789");
	free(text);

	cr_assert_eq(store_datastore_register(st, &ds, NULL), STORE_OK);
	sp.files = fl.v;
	sp.nfiles = fl.n;
	sp.copy = 1;
	cr_assert_eq(store_dataset_register(st, &sp, &v), STORE_OK);
	cr_expect_eq(v.copy, 1);
	cr_assert_eq(store_dataset_file_get(st, v.id, "a.txt", &got), STORE_OK);
	cr_expect_str_eq(got.etag, fl.v[0].etag);
	cr_expect_eq(got.http_mtime_ms, fl.v[0].http_mtime_ms);
	cr_expect_eq(got.mtime_ns, -1);
	cr_expect_str_eq(got.blob, want);
	dataset_file_release(&got);
	store_dataset_version_release(&v);

	/* changed on the server since it was pinned */
	sleep(1);	/* a new Last-Modified and ETag */
	serve("d/b.bin", "9876543210");
	fl.v[0].blob[0] = fl.v[1].blob[0] = '\0';
	cr_expect_eq(dataset_http_copy(ws_root, src, &fl, err, sizeof(err)),
		     STORE_CORRUPT);
	cr_expect(strstr(err, "'d/b.bin'"), "%s", err);
	cr_expect_str_eq(fl.v[0].blob, "", "filled on STORE_OK only");
	dataset_files_release(&fl);
	http_source_free(src);
	store_close(st);
}

Test(dataset, has_prefix_answers_for_directories_in_one_probe)
{
	struct store *st = ws_open();
	struct dataset_file f[] = { pin("data/x/1.csv", 1), pin("datax", 2) };
	struct dataset_spec sp = spec("d", "src", f, 2);
	struct store_dataset_version v = { 0 };
	int found = -1;

	make_local(st, "src", "src");
	cr_assert_eq(store_dataset_register(st, &sp, &v), STORE_OK);
	cr_assert_eq(store_dataset_has_prefix(st, v.id, "data/", &found),
		     STORE_OK);
	cr_expect_eq(found, 1);
	cr_assert_eq(store_dataset_has_prefix(st, v.id, "data/x/", &found),
		     STORE_OK);
	cr_expect_eq(found, 1);
	cr_assert_eq(store_dataset_has_prefix(st, v.id, "datax/", &found),
		     STORE_OK);
	cr_expect_eq(found, 0, "a file is not a directory");
	cr_assert_eq(store_dataset_has_prefix(st, v.id, "dat/", &found),
		     STORE_OK);
	cr_expect_eq(found, 0);
	cr_assert_eq(store_dataset_has_prefix(st, v.id + 1, "data/", &found),
		     STORE_OK);
	cr_expect_eq(found, 0, "another version");
	store_dataset_version_release(&v);
	store_close(st);
}
