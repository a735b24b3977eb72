/*
 * test_model.c - the model registry of the store (store/model.c,
 * store/model_meta.c; contract: mlfs/models.h).
 *
 * Every test gets its own workspace (ws_fixture.h). Blobs are only
 * referenced by hex here: the registry never opens them. Refusals are
 * checked for atomicity by looking at everything the refused call could
 * have half-made (model rows, version numbers, files, blobs).
 *
 * Code that runs in a forked child never uses cr_assert: it reports
 * through its exit status, which the parent asserts.
 */
#include <criterion/criterion.h>

#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mlfs/models.h"
#include "mlfs/store.h"
#include "ws_fixture.h"

TestSuite(model, .init = ws_setup, .fini = ws_teardown, .timeout = 120);

/* ---- helpers ------------------------------------------------------------ */

/* A valid blob hex: 64 times @c (a digit or a..f). */
static const char *hex(char c)
{
	static char buf[16][65];
	static int next;
	char *h = buf[next++ % 16];

	memset(h, c, 64);
	h[64] = '\0';
	return h;
}

/* Registers @nfiles files on @name and returns the version; asserts OK. */
static struct store_model_version reg_files(struct store *st, const char *name,
					    const struct store_model_file *f,
					    size_t nfiles, int64_t run_id)
{
	struct model_version_spec sp = {
		.description = "a model",
		.framework = "ScikitLearn",
		.run_id = run_id,
		.files = f,
		.nfiles = nfiles,
	};
	struct store_model_version v = { 0 };
	int rc = store_model_register(st, name, &sp, &v);

	cr_assert_eq(rc, STORE_OK, "register '%s': %s", name,
		     store_strerror(rc));
	return v;
}

/* Registers one file "model.pkl" with blob hex(@c); returns the number. */
static int64_t reg(struct store *st, const char *name, char c)
{
	struct store_model_file f = { "model.pkl", hex(c), 10, 0644 };
	struct store_model_version v = reg_files(st, name, &f, 1, 0);
	int64_t n = v.version;

	store_model_version_release(&v);
	return n;
}

static int64_t version_id(struct store *st, const char *name, int64_t n)
{
	struct store_model_version v = { 0 };
	int64_t id;
	int rc = store_model_version_get(st, name, n, &v);

	cr_assert_eq(rc, STORE_OK, "get %s/%lld: %s", name, (long long)n,
		     store_strerror(rc));
	id = v.id;
	store_model_version_release(&v);
	return id;
}

static int register_spec(struct store *st, const char *name,
			 const struct model_version_spec *sp)
{
	return store_model_register(st, name, sp, NULL);
}

#define MAX_ITEMS 64

struct items {
	size_t n;
	char *s[MAX_ITEMS];
	int64_t num[MAX_ITEMS];
};

static void items_release(struct items *it)
{
	for (size_t i = 0; i < it->n; i++)
		free(it->s[i]);
	it->n = 0;
}

static int collect_model(void *ctx, const struct store_model *m)
{
	struct items *it = ctx;

	it->num[it->n] = m->version_count;
	it->s[it->n++] = strdup(m->name);
	return 0;
}

static int collect_version(void *ctx, const struct store_model_version *v)
{
	struct items *it = ctx;
	char buf[300];

	snprintf(buf, sizeof(buf), "%s/%lld", v->model, (long long)v->version);
	it->num[it->n] = v->run_id;
	it->s[it->n++] = strdup(buf);
	return 0;
}

static int collect_file(void *ctx, const struct store_model_file *f)
{
	struct items *it = ctx;
	char buf[4200];

	snprintf(buf, sizeof(buf), "%s %.4s %lld %o", f->path, f->blob,
		 (long long)f->size, f->mode);
	it->s[it->n++] = strdup(buf);
	return 0;
}

static int collect_blob(void *ctx, const char *h)
{
	struct items *it = ctx;

	it->s[it->n++] = strdup(h);
	return 0;
}

static int collect_kv(void *ctx, const struct store_kv *kv)
{
	struct items *it = ctx;
	char buf[300];

	snprintf(buf, sizeof(buf), "%s=%.*s", kv->key, (int)kv->len, kv->value);
	it->s[it->n++] = strdup(buf);
	return 0;
}

static int collect_alias(void *ctx, const char *alias, int64_t version)
{
	struct items *it = ctx;

	it->num[it->n] = version;
	it->s[it->n++] = strdup(alias);
	return 0;
}

static int count_models(struct store *st)
{
	struct items it = { 0 };
	int n;

	cr_assert_eq(store_model_list(st, collect_model, &it), STORE_OK);
	n = (int)it.n;
	items_release(&it);
	return n;
}

static size_t count_blobs(struct store *st)
{
	struct items it = { 0 };
	size_t n;

	cr_assert_eq(store_blob_each(st, collect_blob, &it), STORE_OK);
	n = it.n;
	items_release(&it);
	return n;
}

static int collect_event(void *ctx, const struct store_event *e)
{
	struct items *it = ctx;

	if (it->n < MAX_ITEMS)
		it->s[it->n++] = strdup(e->line);
	return 0;
}

static int has_event(struct store *st, const char *line)
{
	struct items it = { 0 };
	int found = 0;

	cr_assert_eq(store_event_list(st, MAX_ITEMS, collect_event, &it),
		     STORE_OK);
	for (size_t i = 0; i < it.n; i++)
		found |= strcmp(it.s[i], line) == 0;
	items_release(&it);
	return found;
}

/* ---- models ------------------------------------------------------------- */

Test(model, create_makes_an_empty_model)
{
	struct store *st = ws_open();
	struct store_model m = { 0 };

	cr_assert_eq(store_model_create(st, "churn", &m), STORE_OK);
	cr_assert_gt(m.id, 0);
	cr_assert_str_eq(m.name, "churn");
	cr_assert_eq(m.version_count, 0);
	cr_assert_eq(m.latest, 0);
	cr_assert_gt(m.created_ms, 0);
	store_model_release(&m);
	cr_assert_eq(store_model_get(st, "churn", &m), STORE_OK);
	cr_assert_str_eq(m.name, "churn");
	store_model_release(&m);
	cr_assert(has_event(st, "models/churn created"));
	store_close(st);
}

Test(model, create_rejects_bad_names)
{
	struct store *st = ws_open();
	const char *bad[] = { "", ".hidden", "a/b", "..", "with space" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_assert_eq(store_model_create(st, bad[i], NULL), STORE_INVALID,
			     "'%s' accepted", bad[i]);
	cr_assert_eq(count_models(st), 0);
	store_close(st);
}

Test(model, create_twice_is_exists)
{
	struct store *st = ws_open();

	cr_assert_eq(store_model_create(st, "churn", NULL), STORE_OK);
	cr_assert_eq(store_model_create(st, "churn", NULL), STORE_EXISTS);
	cr_assert_eq(count_models(st), 1);
	store_close(st);
}

Test(model, get_missing_is_not_found)
{
	struct store *st = ws_open();
	struct store_model m = { 0 };

	cr_assert_eq(store_model_get(st, "nope", &m), STORE_NOT_FOUND);
	cr_assert_null(m.name);
	store_close(st);
}

Test(model, list_is_in_name_order_with_counts)
{
	struct store *st = ws_open();
	struct items it = { 0 };

	reg(st, "zeta", 'a');
	reg(st, "zeta", 'b');
	cr_assert_eq(store_model_create(st, "alpha", NULL), STORE_OK);
	reg(st, "mid", 'c');
	cr_assert_eq(store_model_list(st, collect_model, &it), STORE_OK);
	cr_assert_eq(it.n, 3);
	cr_assert_str_eq(it.s[0], "alpha");
	cr_assert_str_eq(it.s[1], "mid");
	cr_assert_str_eq(it.s[2], "zeta");
	cr_assert_eq(it.num[0], 0);
	cr_assert_eq(it.num[1], 1);
	cr_assert_eq(it.num[2], 2);
	items_release(&it);
	store_close(st);
}

Test(model, delete_removes_an_empty_model)
{
	struct store *st = ws_open();

	cr_assert_eq(store_model_create(st, "churn", NULL), STORE_OK);
	cr_assert_eq(store_model_delete(st, "churn"), STORE_OK);
	cr_assert_eq(store_model_get(st, "churn", &(struct store_model){ 0 }),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_model_delete(st, "churn"), STORE_NOT_FOUND);
	cr_assert(has_event(st, "models/churn removed"));
	store_close(st);
}

Test(model, delete_with_versions_is_not_empty_and_keeps_all)
{
	struct store *st = ws_open();
	struct store_model m = { 0 };

	reg(st, "churn", 'a');
	cr_assert_eq(store_model_delete(st, "churn"), STORE_NOT_EMPTY);
	cr_assert_eq(store_model_get(st, "churn", &m), STORE_OK);
	cr_assert_eq(m.version_count, 1);
	store_model_release(&m);
	cr_assert_eq(count_blobs(st), 1);
	store_close(st);
}

Test(model, delete_after_last_version_deleted)
{
	struct store *st = ws_open();

	reg(st, "churn", 'a');
	cr_assert_eq(store_model_version_delete(st, "churn", 1, NULL), STORE_OK);
	cr_assert_eq(store_model_delete(st, "churn"), STORE_OK);
	cr_assert_eq(count_models(st), 0);
	store_close(st);
}

/* ---- registering -------------------------------------------------------- */

Test(model, register_makes_the_model_and_version_1)
{
	struct store *st = ws_open();
	struct store_model_file f = { "model.pkl", hex('a'), 123, 0100644 };
	struct store_model_version v = reg_files(st, "churn", &f, 1, 0);
	struct store_model m = { 0 };

	cr_assert_eq(v.version, 1);
	cr_assert_str_eq(v.model, "churn");
	cr_assert_str_eq(v.description, "a model");
	cr_assert_str_eq(v.framework, "ScikitLearn");
	cr_assert_eq(v.run_id, 0);
	cr_assert_gt(v.created_ms, 0);
	cr_assert_eq(store_model_get(st, "churn", &m), STORE_OK);
	cr_assert_eq(m.id, v.model_id);
	cr_assert_eq(m.version_count, 1);
	cr_assert_eq(m.latest, 1);
	store_model_release(&m);
	store_model_version_release(&v);
	cr_assert(has_event(st, "models/churn created"));
	cr_assert(has_event(st, "models/churn/1 registered"));
	store_close(st);
}

Test(model, register_defaults_description_and_framework)
{
	struct store *st = ws_open();
	struct model_version_spec sp = { 0 };
	struct store_model_version v = { 0 };

	cr_assert_eq(store_model_register(st, "bare", &sp, &v), STORE_OK);
	cr_assert_str_eq(v.description, "");
	cr_assert_null(v.framework);
	cr_assert_eq(v.version, 1);
	store_model_version_release(&v);
	store_close(st);
}

Test(model, register_into_a_model_made_by_mkdir)
{
	struct store *st = ws_open();
	struct store_model m = { 0 }, m2 = { 0 };

	cr_assert_eq(store_model_create(st, "churn", &m), STORE_OK);
	cr_assert_eq(reg(st, "churn", 'a'), 1);
	cr_assert_eq(store_model_get(st, "churn", &m2), STORE_OK);
	cr_assert_eq(m.id, m2.id);
	store_model_release(&m);
	store_model_release(&m2);
	store_close(st);
}

Test(model, versions_count_up_per_name)
{
	struct store *st = ws_open();

	cr_assert_eq(reg(st, "a", '1'), 1);
	cr_assert_eq(reg(st, "a", '2'), 2);
	cr_assert_eq(reg(st, "b", '3'), 1);
	cr_assert_eq(reg(st, "a", '4'), 3);
	cr_assert_eq(reg(st, "b", '5'), 2);
	store_close(st);
}

Test(model, version_numbers_are_not_reused_after_deletes)
{
	struct store *st = ws_open();

	reg(st, "churn", 'a');
	reg(st, "churn", 'b');
	reg(st, "churn", 'c');
	cr_assert_eq(store_model_version_delete(st, "churn", 3, NULL), STORE_OK);
	cr_assert_eq(store_model_version_delete(st, "churn", 1, NULL), STORE_OK);
	cr_assert_eq(reg(st, "churn", 'd'), 4);
	cr_assert_eq(store_model_version_delete(st, "churn", 2, NULL), STORE_OK);
	cr_assert_eq(store_model_version_delete(st, "churn", 4, NULL), STORE_OK);
	cr_assert_eq(reg(st, "churn", 'e'), 5);
	store_close(st);
}

Test(model, version_numbers_survive_removing_and_remaking_the_model)
{
	struct store *st = ws_open();

	reg(st, "churn", 'a');
	reg(st, "churn", 'b');
	cr_assert_eq(store_model_version_delete(st, "churn", 1, NULL), STORE_OK);
	cr_assert_eq(store_model_version_delete(st, "churn", 2, NULL), STORE_OK);
	cr_assert_eq(store_model_delete(st, "churn"), STORE_OK);
	cr_assert_eq(store_model_create(st, "churn", NULL), STORE_OK);
	cr_assert_eq(reg(st, "churn", 'c'), 3);
	store_close(st);
}

Test(model, register_records_files_in_path_order)
{
	struct store *st = ws_open();
	struct store_model_file f[] = {
		{ "z.txt", hex('a'), 1, 0644 },
		{ "sub/dir/w.bin", hex('b'), 2000000000000LL, 0600 },
		{ "a.json", hex('c'), 0, 0100755 },
	};
	struct store_model_version v = reg_files(st, "churn", f, 3, 0);
	struct items it = { 0 };

	cr_assert_eq(store_model_files(st, v.id, collect_file, &it), STORE_OK);
	cr_assert_eq(it.n, 3);
	cr_assert_str_eq(it.s[0], "a.json cccc 0 755");
	cr_assert_str_eq(it.s[1], "sub/dir/w.bin bbbb 2000000000000 600");
	cr_assert_str_eq(it.s[2], "z.txt aaaa 1 644");
	items_release(&it);
	store_model_version_release(&v);
	store_close(st);
}

Test(model, files_at_a_path_are_one_range)
{
	struct store *st = ws_open();
	struct store_model_file f[] = {
		{ "a.b", hex('b'), 2, 0644 },
		{ "a/x", hex('c'), 3, 0644 },
		{ "a/y/z", hex('d'), 4, 0644 },
		{ "a0", hex('e'), 5, 0644 },
		{ "b", hex('f'), 6, 0644 },
	};
	struct store_model_version v = reg_files(st, "churn", f, 5, 0);
	struct items it = { 0 };

	cr_assert_eq(store_model_files_at(st, v.id, "a", collect_file, &it),
		     STORE_OK);
	/* "a.b" shares the prefix (callers match exactly); "a0", "b" do not */
	cr_assert_eq(it.n, 3);
	cr_expect_str_eq(it.s[0], "a.b bbbb 2 644");
	cr_expect_str_eq(it.s[1], "a/x cccc 3 644");
	cr_expect_str_eq(it.s[2], "a/y/z dddd 4 644");
	items_release(&it);
	cr_assert_eq(store_model_files_at(st, v.id, "a/y/z", collect_file, &it),
		     STORE_OK);
	cr_assert_eq(it.n, 1);
	items_release(&it);
	cr_assert_eq(store_model_files_at(st, v.id, "", collect_file, &it),
		     STORE_OK);
	cr_expect_eq(it.n, 5, "all");
	items_release(&it);
	cr_assert_eq(store_model_files_at(st, v.id, "nope", collect_file, &it),
		     STORE_OK);
	cr_expect_eq(it.n, 0);
	items_release(&it);
	store_model_version_release(&v);
	store_close(st);
}

/* Asserts that nothing of a refused registration of "churn" remains. */
static void assert_nothing_registered(struct store *st)
{
	cr_assert_eq(count_models(st), 0, "a refused registration left a model");
	cr_assert_eq(count_blobs(st), 0, "a refused registration left files");
	/* and its number was not taken */
	cr_assert_eq(reg(st, "churn", 'f'), 1);
}

Test(model, register_refuses_bad_paths_and_makes_nothing)
{
	struct store *st = ws_open();
	const char *bad[] = { "", "/abs", "a/../b", "..", "./x", "a//b",
			      "a/", "a/.", "bad\xff" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct store_model_file f[] = {
			{ "ok.bin", hex('a'), 1, 0644 },
			{ bad[i], hex('b'), 1, 0644 },
		};
		struct model_version_spec sp = { .files = f, .nfiles = 2 };

		cr_assert_eq(register_spec(st, "churn", &sp), STORE_INVALID,
			     "path '%s' accepted", bad[i]);
	}
	assert_nothing_registered(st);
	store_close(st);
}

Test(model, register_refuses_bad_blob_hex_and_sizes)
{
	struct store *st = ws_open();
	char upper[65], shorter[64];
	struct store_model_file f = { "m", NULL, 1, 0644 };
	struct model_version_spec sp = { .files = &f, .nfiles = 1 };

	memset(upper, 'A', 64);
	upper[64] = '\0';
	memset(shorter, 'a', 63);
	shorter[63] = '\0';
	f.blob = upper;
	cr_assert_eq(register_spec(st, "churn", &sp), STORE_INVALID);
	f.blob = shorter;
	cr_assert_eq(register_spec(st, "churn", &sp), STORE_INVALID);
	f.blob = NULL;
	cr_assert_eq(register_spec(st, "churn", &sp), STORE_INVALID);
	f.blob = hex('a');
	f.size = -1;
	cr_assert_eq(register_spec(st, "churn", &sp), STORE_INVALID);
	sp = (struct model_version_spec){ .nfiles = 1 };	/* no array */
	cr_assert_eq(register_spec(st, "churn", &sp), STORE_INVALID);
	sp = (struct model_version_spec){ .ntags = 1 };
	cr_assert_eq(register_spec(st, "churn", &sp), STORE_INVALID);
	assert_nothing_registered(st);
	store_close(st);
}

Test(model, register_refuses_a_path_twice_and_rolls_back)
{
	struct store *st = ws_open();
	struct store_model_file f[] = {
		{ "m.pkl", hex('a'), 1, 0644 },
		{ "m.pkl", hex('b'), 1, 0644 },
	};
	struct model_version_spec sp = { .files = f, .nfiles = 2 };

	/* Passes the checks before the transaction; fails inside it. */
	cr_assert_eq(register_spec(st, "churn", &sp), STORE_INVALID);
	assert_nothing_registered(st);
	store_close(st);
}

Test(model, register_from_a_missing_run_is_not_found_and_rolls_back)
{
	struct store *st = ws_open();
	struct store_model_file f = { "m", hex('a'), 1, 0644 };
	struct model_version_spec sp = { .run_id = 999, .files = &f,
					 .nfiles = 1 };

	cr_assert_eq(register_spec(st, "churn", &sp), STORE_NOT_FOUND);
	assert_nothing_registered(st);
	store_close(st);
}

Test(model, register_refuses_bad_name_description_framework)
{
	struct store *st = ws_open();
	struct model_version_spec sp = { 0 };
	char *big = malloc(STORE_VALUE_MAX + 2);

	cr_assert_eq(register_spec(st, "bad/name", &sp), STORE_INVALID);
	sp.framework = "not valid";
	cr_assert_eq(register_spec(st, "churn", &sp), STORE_INVALID);
	sp.framework = NULL;
	memset(big, 'x', STORE_VALUE_MAX + 1);
	big[STORE_VALUE_MAX + 1] = '\0';
	sp.description = big;
	cr_assert_eq(register_spec(st, "churn", &sp), STORE_TOO_BIG);
	sp.description = "bad \xc3";
	cr_assert_eq(register_spec(st, "churn", &sp), STORE_INVALID);
	free(big);
	assert_nothing_registered(st);
	store_close(st);
}

Test(model, register_sets_tags_and_properties)
{
	struct store *st = ws_open();
	struct store_kv tags[] = { { "stage", "dev", 3, 0 }, { "acc", "0.9", 3, 0 } };
	struct store_kv props[] = { { "algo", "rf", 2, 0 } };
	struct model_version_spec sp = { .tags = tags, .ntags = 2,
					 .properties = props, .nproperties = 1 };
	struct store_model_version v = { 0 };
	struct items it = { 0 };

	cr_assert_eq(store_model_register(st, "churn", &sp, &v), STORE_OK);
	cr_assert_eq(store_model_tag_list(st, v.id, collect_kv, &it), STORE_OK);
	cr_assert_eq(it.n, 2);
	cr_assert_str_eq(it.s[0], "acc=0.9");
	cr_assert_str_eq(it.s[1], "stage=dev");
	items_release(&it);
	cr_assert_eq(store_model_property_list(st, v.id, collect_kv, &it),
		     STORE_OK);
	cr_assert_eq(it.n, 1);
	cr_assert_str_eq(it.s[0], "algo=rf");
	items_release(&it);
	store_model_version_release(&v);
	store_close(st);
}

Test(model, register_refuses_bad_tags_and_repeated_properties)
{
	struct store *st = ws_open();
	struct store_kv bad_tag[] = { { "bad key", "x", 1, 0 } };
	struct store_kv twice[] = { { "k", "1", 1, 0 }, { "k", "2", 1, 0 } };
	struct store_kv nul[] = { { "k", "a\0b", 3, 0 } };
	struct model_version_spec sp = { .tags = bad_tag, .ntags = 1 };

	cr_assert_eq(register_spec(st, "churn", &sp), STORE_INVALID);
	sp = (struct model_version_spec){ .tags = nul, .ntags = 1 };
	cr_assert_eq(register_spec(st, "churn", &sp), STORE_INVALID);
	sp = (struct model_version_spec){ .properties = twice, .nproperties = 2 };
	cr_assert_eq(register_spec(st, "churn", &sp), STORE_INVALID);
	assert_nothing_registered(st);
	store_close(st);
}

/* ---- reading versions --------------------------------------------------- */

Test(model, version_get_missing_is_not_found)
{
	struct store *st = ws_open();
	struct store_model_version v = { 0 };

	cr_assert_eq(store_model_version_get(st, "churn", 1, &v),
		     STORE_NOT_FOUND);
	reg(st, "churn", 'a');
	cr_assert_eq(store_model_version_get(st, "churn", 2, &v),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_model_version_get(st, "other", 1, &v),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_model_version_get_by_id(st, 12345, &v),
		     STORE_NOT_FOUND);
	store_close(st);
}

Test(model, version_get_by_id_matches_get)
{
	struct store *st = ws_open();
	struct store_model_version a = { 0 }, b = { 0 };

	reg(st, "churn", 'a');
	reg(st, "churn", 'b');
	cr_assert_eq(store_model_version_get(st, "churn", 2, &a), STORE_OK);
	cr_assert_eq(store_model_version_get_by_id(st, a.id, &b), STORE_OK);
	cr_assert_eq(b.version, 2);
	cr_assert_str_eq(b.model, "churn");
	cr_assert_eq(a.created_ms, b.created_ms);
	store_model_version_release(&a);
	store_model_version_release(&b);
	store_close(st);
}

Test(model, version_list_is_in_number_order)
{
	struct store *st = ws_open();
	struct items it = { 0 };

	for (int i = 0; i < 4; i++)
		reg(st, "churn", 'a');
	reg(st, "other", 'a');
	cr_assert_eq(store_model_version_delete(st, "churn", 2, NULL), STORE_OK);
	cr_assert_eq(store_model_version_list(st, "churn", collect_version, &it),
		     STORE_OK);
	cr_assert_eq(it.n, 3);
	cr_assert_str_eq(it.s[0], "churn/1");
	cr_assert_str_eq(it.s[1], "churn/3");
	cr_assert_str_eq(it.s[2], "churn/4");
	items_release(&it);
	cr_assert_eq(store_model_version_list(st, "nope", collect_version, &it),
		     STORE_NOT_FOUND);
	store_close(st);
}

Test(model, latest_is_the_highest_existing_version)
{
	struct store *st = ws_open();
	int64_t n = 0;

	cr_assert_eq(store_model_latest(st, "churn", &n), STORE_NOT_FOUND);
	cr_assert_eq(store_model_create(st, "churn", NULL), STORE_OK);
	cr_assert_eq(store_model_latest(st, "churn", &n), STORE_NOT_FOUND);
	reg(st, "churn", 'a');
	reg(st, "churn", 'b');
	reg(st, "churn", 'c');
	cr_assert_eq(store_model_latest(st, "churn", &n), STORE_OK);
	cr_assert_eq(n, 3);
	cr_assert_eq(store_model_version_delete(st, "churn", 3, NULL), STORE_OK);
	cr_assert_eq(store_model_latest(st, "churn", &n), STORE_OK);
	cr_assert_eq(n, 2);
	store_close(st);
}

Test(model, files_of_a_missing_version_are_none)
{
	struct store *st = ws_open();
	struct items it = { 0 };

	cr_assert_eq(store_model_files(st, 42, collect_file, &it), STORE_OK);
	cr_assert_eq(it.n, 0);
	store_close(st);
}

/* ---- deleting versions and blobs ---------------------------------------- */

Test(model, version_delete_missing_is_not_found)
{
	struct store *st = ws_open();

	cr_assert_eq(store_model_version_delete(st, "churn", 1, NULL),
		     STORE_NOT_FOUND);
	reg(st, "churn", 'a');
	cr_assert_eq(store_model_version_delete(st, "churn", 2, NULL),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_model_version_delete(st, "churn", 1, NULL), STORE_OK);
	cr_assert_eq(store_model_version_delete(st, "churn", 1, NULL),
		     STORE_NOT_FOUND);
	store_close(st);
}

Test(model, version_delete_returns_its_unshared_blobs_sorted)
{
	struct store *st = ws_open();
	struct store_model_file f[] = {
		{ "b", hex('b'), 1, 0644 },
		{ "a", hex('a'), 1, 0644 },
		{ "a2", hex('a'), 1, 0644 },	/* same blob twice: once */
	};
	struct store_model_version v = reg_files(st, "churn", f, 3, 0);
	struct store_hex_list o = { 0 };
	struct items it = { 0 };

	cr_assert_eq(store_model_version_delete(st, "churn", 1, &o), STORE_OK);
	cr_assert_eq(o.n, 2);
	cr_assert_str_eq(o.hex[0], hex('a'));
	cr_assert_str_eq(o.hex[1], hex('b'));
	store_hex_list_release(&o);
	cr_assert_eq(store_model_files(st, v.id, collect_file, &it), STORE_OK);
	cr_assert_eq(it.n, 0, "the deleted version's files remain");
	store_model_version_release(&v);
	cr_assert(has_event(st, "models/churn/1 deleted"));
	store_close(st);
}

Test(model, shared_blob_is_orphaned_only_by_its_last_version)
{
	struct store *st = ws_open();
	struct store_model_file f1[] = { { "w", hex('5'), 1, 0644 },
					 { "x", hex('1'), 1, 0644 } };
	struct store_model_file f2[] = { { "w", hex('5'), 1, 0644 } };
	struct store_model_file f3[] = { { "other/path", hex('5'), 1, 0644 } };
	struct store_model_version v;
	struct store_hex_list o = { 0 };

	v = reg_files(st, "a", f1, 2, 0);
	store_model_version_release(&v);
	v = reg_files(st, "a", f2, 1, 0);
	store_model_version_release(&v);
	v = reg_files(st, "b", f3, 1, 0);	/* another model shares it */
	store_model_version_release(&v);

	cr_assert_eq(store_model_version_delete(st, "a", 1, &o), STORE_OK);
	cr_assert_eq(o.n, 1);
	cr_assert_str_eq(o.hex[0], hex('1'));
	store_hex_list_release(&o);
	cr_assert_eq(store_model_version_delete(st, "a", 2, &o), STORE_OK);
	cr_assert_eq(o.n, 0, "a blob model b still uses was orphaned");
	store_hex_list_release(&o);
	cr_assert_eq(store_model_version_delete(st, "b", 1, &o), STORE_OK);
	cr_assert_eq(o.n, 1);
	cr_assert_str_eq(o.hex[0], hex('5'));
	store_hex_list_release(&o);
	cr_assert_eq(count_blobs(st), 0);
	store_close(st);
}

Test(model, blob_each_lists_each_referenced_blob_once_in_order)
{
	struct store *st = ws_open();
	struct store_model_file f1[] = { { "x", hex('c'), 1, 0644 },
					 { "y", hex('a'), 1, 0644 } };
	struct store_model_file f2[] = { { "x", hex('a'), 1, 0644 },
					 { "z", hex('b'), 1, 0644 } };
	struct store_model_version v;
	struct items it = { 0 };

	cr_assert_eq(count_blobs(st), 0);
	v = reg_files(st, "m", f1, 2, 0);
	store_model_version_release(&v);
	v = reg_files(st, "n", f2, 2, 0);
	store_model_version_release(&v);
	cr_assert_eq(store_blob_each(st, collect_blob, &it), STORE_OK);
	cr_assert_eq(it.n, 3);
	cr_assert_str_eq(it.s[0], hex('a'));
	cr_assert_str_eq(it.s[1], hex('b'));
	cr_assert_str_eq(it.s[2], hex('c'));
	items_release(&it);
	cr_assert_eq(store_model_version_delete(st, "m", 1, NULL), STORE_OK);
	cr_assert_eq(store_blob_each(st, collect_blob, &it), STORE_OK);
	cr_assert_eq(it.n, 2);
	cr_assert_str_eq(it.s[0], hex('a'));
	cr_assert_str_eq(it.s[1], hex('b'));
	items_release(&it);
	store_close(st);
}

Test(model, blob_referenced_follows_versions)
{
	struct store *st = ws_open();
	struct store_model_file f[] = { { "x", hex('a'), 1, 0644 } };
	struct store_model_version v;
	int used = -1;

	cr_assert_eq(store_blob_referenced(st, hex('a'), &used), STORE_OK);
	cr_expect_eq(used, 0, "no version yet");
	v = reg_files(st, "m", f, 1, 0);
	store_model_version_release(&v);
	v = reg_files(st, "n", f, 1, 0);
	store_model_version_release(&v);
	cr_assert_eq(store_blob_referenced(st, hex('a'), &used), STORE_OK);
	cr_expect_eq(used, 1);
	cr_assert_eq(store_blob_referenced(st, hex('b'), &used), STORE_OK);
	cr_expect_eq(used, 0, "another blob");
	cr_assert_eq(store_model_version_delete(st, "m", 1, NULL), STORE_OK);
	cr_assert_eq(store_blob_referenced(st, hex('a'), &used), STORE_OK);
	cr_expect_eq(used, 1, "the other model's version still names it");
	cr_assert_eq(store_model_version_delete(st, "n", 1, NULL), STORE_OK);
	cr_assert_eq(store_blob_referenced(st, hex('a'), &used), STORE_OK);
	cr_expect_eq(used, 0, "its last version deleted");
	store_close(st);
}

static int stop_at_first(void *ctx, const char *h)
{
	(void)h;
	(*(int *)ctx)++;
	return 1;
}

Test(model, blob_each_stops_when_the_callback_says_so)
{
	struct store *st = ws_open();
	int calls = 0;

	reg(st, "a", 'a');
	reg(st, "a", 'b');
	cr_assert_eq(store_blob_each(st, stop_at_first, &calls), STORE_OK);
	cr_assert_eq(calls, 1);
	store_close(st);
}

/* ---- tags and properties ------------------------------------------------ */

Test(model, tag_set_overwrites_and_lists_in_key_order)
{
	struct store *st = ws_open();
	struct items it = { 0 };
	int64_t id;

	reg(st, "churn", 'a');
	id = version_id(st, "churn", 1);
	cr_assert_eq(store_model_tag_set(st, id, "stage", "dev", 3), STORE_OK);
	cr_assert_eq(store_model_tag_set(st, id, "owner", "ann", 3), STORE_OK);
	cr_assert_eq(store_model_tag_set(st, id, "stage", "prod", 4), STORE_OK);
	cr_assert_eq(store_model_tag_set(st, id, "empty", "", 0), STORE_OK);
	cr_assert_eq(store_model_tag_list(st, id, collect_kv, &it), STORE_OK);
	cr_assert_eq(it.n, 3);
	cr_assert_str_eq(it.s[0], "empty=");
	cr_assert_str_eq(it.s[1], "owner=ann");
	cr_assert_str_eq(it.s[2], "stage=prod");
	items_release(&it);
	store_close(st);
}

Test(model, tag_change_touches_the_version)
{
	struct store *st = ws_open();
	struct store_model_version a = { 0 }, b = { 0 };

	reg(st, "churn", 'a');
	cr_assert_eq(store_model_version_get(st, "churn", 1, &a), STORE_OK);
	usleep(5000);
	cr_assert_eq(store_model_tag_set(st, a.id, "k", "v", 1), STORE_OK);
	cr_assert_eq(store_model_version_get(st, "churn", 1, &b), STORE_OK);
	cr_assert_gt(b.updated_ms, a.updated_ms);
	cr_assert_eq(b.created_ms, a.created_ms);
	store_model_version_release(&a);
	store_model_version_release(&b);
	store_close(st);
}

Test(model, tag_delete_and_its_refusals)
{
	struct store *st = ws_open();
	struct items it = { 0 };
	int64_t id;

	reg(st, "churn", 'a');
	id = version_id(st, "churn", 1);
	cr_assert_eq(store_model_tag_set(st, id, "k", "v", 1), STORE_OK);
	cr_assert_eq(store_model_tag_delete(st, id, "k"), STORE_OK);
	cr_assert_eq(store_model_tag_delete(st, id, "k"), STORE_NOT_FOUND);
	cr_assert_eq(store_model_tag_delete(st, id + 100, "k"), STORE_NOT_FOUND);
	cr_assert_eq(store_model_tag_list(st, id, collect_kv, &it), STORE_OK);
	cr_assert_eq(it.n, 0);
	store_close(st);
}

Test(model, tag_set_refusals)
{
	struct store *st = ws_open();
	char *big = calloc(1, STORE_VALUE_MAX + 1);
	int64_t id;

	memset(big, 'x', STORE_VALUE_MAX + 1);
	reg(st, "churn", 'a');
	id = version_id(st, "churn", 1);
	cr_assert_eq(store_model_tag_set(st, id + 100, "k", "v", 1),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_model_tag_set(st, id, "bad key", "v", 1),
		     STORE_INVALID);
	cr_assert_eq(store_model_tag_set(st, id, "k", "a\0b", 3), STORE_INVALID);
	cr_assert_eq(store_model_tag_set(st, id, "k", big, STORE_VALUE_MAX + 1),
		     STORE_TOO_BIG);
	cr_assert_eq(store_model_tag_set(st, id, "k", big, STORE_VALUE_MAX),
		     STORE_OK);
	free(big);
	store_close(st);
}

Test(model, properties_are_add_only)
{
	struct store *st = ws_open();
	struct items it = { 0 };
	int64_t id;

	reg(st, "churn", 'a');
	id = version_id(st, "churn", 1);
	cr_assert_eq(store_model_property_add(st, id, "algo", "rf", 2), STORE_OK);
	cr_assert_eq(store_model_property_add(st, id, "algo", "rf", 2), STORE_OK);
	cr_assert_eq(store_model_property_add(st, id, "algo", "gbm", 3),
		     STORE_DENIED);
	cr_assert_eq(store_model_property_add(st, id, "algo", "r", 1),
		     STORE_DENIED);
	cr_assert_eq(store_model_property_add(st, id + 100, "algo", "rf", 2),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_model_property_add(st, id, "bad key", "x", 1),
		     STORE_INVALID);
	cr_assert_eq(store_model_property_list(st, id, collect_kv, &it),
		     STORE_OK);
	cr_assert_eq(it.n, 1);
	cr_assert_str_eq(it.s[0], "algo=rf");
	items_release(&it);
	store_close(st);
}

Test(model, tags_and_properties_are_per_version)
{
	struct store *st = ws_open();
	struct items it = { 0 };

	reg(st, "churn", 'a');
	reg(st, "churn", 'b');
	cr_assert_eq(store_model_tag_set(st, version_id(st, "churn", 1), "k",
					 "one", 3), STORE_OK);
	cr_assert_eq(store_model_property_add(st, version_id(st, "churn", 2),
					      "p", "two", 3), STORE_OK);
	cr_assert_eq(store_model_tag_list(st, version_id(st, "churn", 2),
					  collect_kv, &it), STORE_OK);
	cr_assert_eq(it.n, 0);
	cr_assert_eq(store_model_property_list(st, version_id(st, "churn", 1),
					       collect_kv, &it), STORE_OK);
	cr_assert_eq(it.n, 0);
	store_close(st);
}

/* ---- aliases ------------------------------------------------------------ */

Test(model, alias_set_get_list)
{
	struct store *st = ws_open();
	struct items it = { 0 };
	int64_t n = 0;

	reg(st, "churn", 'a');
	reg(st, "churn", 'b');
	cr_assert_eq(store_model_alias_set(st, "churn", "production", 1),
		     STORE_OK);
	cr_assert_eq(store_model_alias_set(st, "churn", "canary", 2), STORE_OK);
	cr_assert_eq(store_model_alias_get(st, "churn", "production", &n),
		     STORE_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(store_model_alias_list(st, "churn", collect_alias, &it),
		     STORE_OK);
	cr_assert_eq(it.n, 2);
	cr_assert_str_eq(it.s[0], "canary");
	cr_assert_eq(it.num[0], 2);
	cr_assert_str_eq(it.s[1], "production");
	cr_assert_eq(it.num[1], 1);
	items_release(&it);
	cr_assert(has_event(st, "models/churn alias production -> 1"));
	store_close(st);
}

Test(model, alias_set_again_moves_it)
{
	struct store *st = ws_open();
	int64_t n = 0;

	reg(st, "churn", 'a');
	reg(st, "churn", 'b');
	cr_assert_eq(store_model_alias_set(st, "churn", "prod", 1), STORE_OK);
	cr_assert_eq(store_model_alias_set(st, "churn", "prod", 2), STORE_OK);
	cr_assert_eq(store_model_alias_get(st, "churn", "prod", &n), STORE_OK);
	cr_assert_eq(n, 2);
	store_close(st);
}

Test(model, alias_rename_moves_in_one_step)
{
	struct store *st = ws_open();
	int64_t n = 0;

	reg(st, "churn", 'a');
	reg(st, "churn", 'b');
	cr_assert_eq(store_model_alias_set(st, "churn", "prod", 1), STORE_OK);
	cr_assert_eq(store_model_alias_set(st, "churn", "tmp", 2), STORE_OK);
	cr_expect_eq(store_model_alias_rename(st, "churn", "tmp", "prod", 1),
		     STORE_EXISTS, "noreplace");
	cr_assert_eq(store_model_alias_rename(st, "churn", "tmp", "prod", 0),
		     STORE_OK);
	cr_assert_eq(store_model_alias_get(st, "churn", "prod", &n), STORE_OK);
	cr_expect_eq(n, 2);
	cr_expect_eq(store_model_alias_get(st, "churn", "tmp", &n),
		     STORE_NOT_FOUND);
	cr_expect_eq(store_model_alias_rename(st, "churn", "tmp", "x", 0),
		     STORE_NOT_FOUND, "a missing source");
	cr_expect_eq(store_model_alias_rename(st, "churn", "prod", "v2", 0),
		     STORE_INVALID);
	cr_assert_eq(store_model_alias_rename(st, "churn", "prod", "prod", 0),
		     STORE_OK, "onto itself");
	cr_expect_eq(store_model_alias_get(st, "churn", "prod", &n), STORE_OK);
	cr_expect_eq(store_model_alias_rename(st, "nope", "prod", "x", 0),
		     STORE_NOT_FOUND);
	store_close(st);
}

Test(model, alias_refuses_names_the_tree_uses)
{
	struct store *st = ws_open();
	const char *bad[] = { "latest", "v1", "v007", "12", "0", "bad name",
			      ".x", "" };
	const char *good[] = { "v", "v1a", "x1", "V1", "vv1", "latest2",
			       "prod" };
	struct items it = { 0 };

	reg(st, "churn", 'a');
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_assert_eq(store_model_alias_set(st, "churn", bad[i], 1),
			     STORE_INVALID, "alias '%s' accepted", bad[i]);
	cr_assert_eq(store_model_alias_list(st, "churn", collect_alias, &it),
		     STORE_OK);
	cr_assert_eq(it.n, 0);
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		cr_assert_eq(store_model_alias_set(st, "churn", good[i], 1),
			     STORE_OK, "alias '%s' refused", good[i]);
	store_close(st);
}

Test(model, alias_to_a_missing_version_or_model_is_not_found)
{
	struct store *st = ws_open();
	int64_t n = 0;

	cr_assert_eq(store_model_alias_set(st, "churn", "prod", 1),
		     STORE_NOT_FOUND);
	reg(st, "churn", 'a');
	cr_assert_eq(store_model_alias_set(st, "churn", "prod", 2),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_model_alias_get(st, "churn", "prod", &n),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_model_alias_get(st, "nope", "prod", &n),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_model_alias_list(st, "nope", collect_alias, NULL),
		     STORE_NOT_FOUND);
	store_close(st);
}

Test(model, alias_delete)
{
	struct store *st = ws_open();
	int64_t n = 0;

	reg(st, "churn", 'a');
	cr_assert_eq(store_model_alias_set(st, "churn", "prod", 1), STORE_OK);
	cr_assert_eq(store_model_alias_delete(st, "churn", "prod"), STORE_OK);
	cr_assert_eq(store_model_alias_get(st, "churn", "prod", &n),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_model_alias_delete(st, "churn", "prod"),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_model_alias_delete(st, "nope", "prod"),
		     STORE_NOT_FOUND);
	cr_assert(has_event(st, "models/churn alias prod removed"));
	store_close(st);
}

Test(model, aliases_go_with_their_deleted_version)
{
	struct store *st = ws_open();
	int64_t n = 0;

	reg(st, "churn", 'a');
	reg(st, "churn", 'b');
	cr_assert_eq(store_model_alias_set(st, "churn", "prod", 1), STORE_OK);
	cr_assert_eq(store_model_alias_set(st, "churn", "next", 2), STORE_OK);
	cr_assert_eq(store_model_version_delete(st, "churn", 1, NULL), STORE_OK);
	cr_assert_eq(store_model_alias_get(st, "churn", "prod", &n),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_model_alias_get(st, "churn", "next", &n), STORE_OK);
	cr_assert_eq(n, 2);
	store_close(st);
}

/* ---- deployment references ---------------------------------------------- */

Test(model, active_deployment_refuses_version_delete_and_keeps_all)
{
	struct store *st = ws_open();
	struct store_hex_list o = { 0 };
	struct items it = { 0 };
	int64_t id;

	reg(st, "churn", 'a');
	id = version_id(st, "churn", 1);
	cr_assert_eq(store_deployment_ref_add(st, "svc", id), STORE_OK);
	cr_assert_eq(store_model_version_delete(st, "churn", 1, &o),
		     STORE_IN_USE);
	cr_assert_null(o.hex);
	cr_assert_eq(version_id(st, "churn", 1), id);
	cr_assert_eq(store_model_files(st, id, collect_file, &it), STORE_OK);
	cr_assert_eq(it.n, 1);
	items_release(&it);
	cr_assert_eq(count_blobs(st), 1);
	cr_assert_str_eq(store_strerror(STORE_IN_USE),
			 "in use by an active deployment");
	store_close(st);
}

Test(model, version_delete_allowed_once_the_deployment_is_inactive)
{
	struct store *st = ws_open();
	struct store_hex_list o = { 0 };
	int64_t id;

	reg(st, "churn", 'a');
	id = version_id(st, "churn", 1);
	cr_assert_eq(store_deployment_ref_add(st, "svc", id), STORE_OK);
	cr_assert_eq(store_deployment_ref_set_active(st, "svc", 0), STORE_OK);
	cr_assert_eq(store_model_version_delete(st, "churn", 1, &o), STORE_OK);
	cr_assert_eq(o.n, 1);
	store_hex_list_release(&o);
	/* the inactive reference went with the version */
	cr_assert_eq(store_deployment_ref_remove(st, "svc"), STORE_NOT_FOUND);
	store_close(st);
}

Test(model, reactivated_deployment_refuses_again)
{
	struct store *st = ws_open();
	int64_t id;

	reg(st, "churn", 'a');
	id = version_id(st, "churn", 1);
	cr_assert_eq(store_deployment_ref_add(st, "svc", id), STORE_OK);
	cr_assert_eq(store_deployment_ref_set_active(st, "svc", 0), STORE_OK);
	cr_assert_eq(store_deployment_ref_set_active(st, "svc", 1), STORE_OK);
	cr_assert_eq(store_model_version_delete(st, "churn", 1, NULL),
		     STORE_IN_USE);
	store_close(st);
}

Test(model, version_delete_allowed_after_the_reference_is_removed)
{
	struct store *st = ws_open();
	int64_t id;

	reg(st, "churn", 'a');
	reg(st, "churn", 'b');
	id = version_id(st, "churn", 1);
	cr_assert_eq(store_deployment_ref_add(st, "svc", id), STORE_OK);
	cr_assert_eq(store_deployment_ref_add(st, "svc",
					      version_id(st, "churn", 2)),
		     STORE_OK);
	/* a reference to another version does not block this one */
	cr_assert_eq(store_deployment_ref_add(st, "other", id), STORE_OK);
	cr_assert_eq(store_deployment_ref_remove(st, "svc"), STORE_OK);
	cr_assert_eq(store_model_version_delete(st, "churn", 2, NULL), STORE_OK);
	cr_assert_eq(store_model_version_delete(st, "churn", 1, NULL),
		     STORE_IN_USE);
	cr_assert_eq(store_deployment_ref_remove(st, "other"), STORE_OK);
	cr_assert_eq(store_model_version_delete(st, "churn", 1, NULL), STORE_OK);
	store_close(st);
}

Test(model, deployment_ref_refusals)
{
	struct store *st = ws_open();
	int64_t id;

	reg(st, "churn", 'a');
	id = version_id(st, "churn", 1);
	cr_assert_eq(store_deployment_ref_add(st, "bad name", id), STORE_INVALID);
	cr_assert_eq(store_deployment_ref_add(st, "svc", id + 100),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_deployment_ref_add(st, "svc", id), STORE_OK);
	cr_assert_eq(store_deployment_ref_add(st, "svc", id), STORE_EXISTS);
	cr_assert_eq(store_deployment_ref_set_active(st, "nope", 0),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_deployment_ref_remove(st, "nope"), STORE_NOT_FOUND);
	store_close(st);
}

/* ---- runs --------------------------------------------------------------- */

Test(model, run_models_lists_versions_registered_from_the_run)
{
	struct store *st = ws_open();
	int64_t run = ws_make_run(st, "exp", "run-1");
	int64_t other = ws_make_run(st, "exp", "run-2");
	struct store_model_file f = { "m", hex('a'), 1, 0644 };
	struct store_model_version v;
	struct items it = { 0 };

	v = reg_files(st, "zeta", &f, 1, run);
	cr_assert_eq(v.run_id, run);
	store_model_version_release(&v);
	v = reg_files(st, "alpha", &f, 1, run);
	store_model_version_release(&v);
	v = reg_files(st, "alpha", &f, 1, other);
	store_model_version_release(&v);
	v = reg_files(st, "alpha", &f, 1, run);
	store_model_version_release(&v);
	reg(st, "alpha", 'b');	/* no run */

	cr_assert_eq(store_run_models(st, run, collect_version, &it), STORE_OK);
	cr_assert_eq(it.n, 3);
	cr_assert_str_eq(it.s[0], "alpha/1");
	cr_assert_str_eq(it.s[1], "alpha/3");
	cr_assert_str_eq(it.s[2], "zeta/1");
	cr_assert_eq(it.num[0], run);
	items_release(&it);
	cr_assert_eq(store_model_version_delete(st, "alpha", 1, NULL), STORE_OK);
	cr_assert_eq(store_run_models(st, run, collect_version, &it), STORE_OK);
	cr_assert_eq(it.n, 2);
	items_release(&it);
	cr_assert_eq(store_run_models(st, 9999, collect_version, &it), STORE_OK);
	cr_assert_eq(it.n, 0);
	store_close(st);
}

/* ---- change feed -------------------------------------------------------- */

struct changes {
	int models, model;
	int64_t model_id, run_id, exp_id;
};

static int collect_change(void *ctx, const struct store_change *c)
{
	struct changes *ch = ctx;

	if (c->kind == CHANGE_MODELS)
		ch->models++;
	if (c->kind == CHANGE_MODEL) {
		ch->model++;
		ch->model_id = c->object_id;
		ch->run_id = c->run_id;
		ch->exp_id = c->experiment_id;
	}
	return 0;
}

static struct changes changes_after(struct store *st, int64_t *seq)
{
	struct changes ch = { 0 };

	cr_assert_eq(store_changes_since(st, seq, collect_change, &ch), STORE_OK);
	return ch;
}

Test(model, mutations_add_change_rows)
{
	struct store *st = ws_open();
	int64_t run = ws_make_run(st, "exp", "run-1");
	struct store_model_file f = { "m", hex('a'), 1, 0644 };
	struct store_model_version v;
	struct store_experiment e = { 0 };
	struct changes ch;
	int64_t seq = 0;

	cr_assert_eq(store_changes_head(st, &seq), STORE_OK);
	v = reg_files(st, "churn", &f, 1, run);
	ch = changes_after(st, &seq);
	cr_assert_eq(ch.models, 1, "a new model adds CHANGE_MODELS");
	cr_assert_eq(ch.model, 1);
	cr_assert_eq(ch.model_id, v.model_id);
	cr_assert_eq(ch.run_id, run, "the source run's run.json changes");
	cr_assert_eq(store_experiment_get(st, "exp", &e), STORE_OK);
	cr_assert_eq(ch.exp_id, e.id);
	store_experiment_release(&e);

	reg(st, "churn", 'b');
	ch = changes_after(st, &seq);
	cr_assert_eq(ch.models, 0);
	cr_assert_eq(ch.model, 1);

	cr_assert_eq(store_model_tag_set(st, v.id, "k", "v", 1), STORE_OK);
	cr_assert_eq(changes_after(st, &seq).model, 1);
	cr_assert_eq(store_model_alias_set(st, "churn", "prod", 1), STORE_OK);
	cr_assert_eq(changes_after(st, &seq).model, 1);
	cr_assert_eq(store_deployment_ref_add(st, "svc", v.id), STORE_OK);
	cr_assert_eq(changes_after(st, &seq).model, 1);
	cr_assert_eq(store_deployment_ref_remove(st, "svc"), STORE_OK);
	cr_assert_eq(changes_after(st, &seq).model, 1);
	cr_assert_eq(store_model_version_delete(st, "churn", 1, NULL), STORE_OK);
	ch = changes_after(st, &seq);
	cr_assert_eq(ch.model, 1);
	cr_assert_eq(ch.run_id, run);
	store_model_version_release(&v);

	/* a refusal adds nothing */
	cr_assert_eq(store_model_delete(st, "churn"), STORE_NOT_EMPTY);
	ch = changes_after(st, &seq);
	cr_assert_eq(ch.model + ch.models, 0);
	cr_assert_eq(store_model_version_delete(st, "churn", 2, NULL), STORE_OK);
	cr_assert_eq(store_model_delete(st, "churn"), STORE_OK);
	cr_assert_eq(changes_after(st, &seq).models, 1);
	store_close(st);
}

/* ---- migration ---------------------------------------------------------- */

static void db_exec_at(const char *db_path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc;

	cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL),
		     SQLITE_OK, "cannot open '%s'", db_path);
	sqlite3_busy_timeout(db, 10000);
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	cr_assert_eq(rc, SQLITE_OK, "'%s': %s", sql, msg ? msg : "?");
	sqlite3_free(msg);
	sqlite3_close(db);
}

Test(model, migrates_a_schema_2_workspace)
{
	char dir[PATH_MAX], db_path[PATH_MAX], err[512] = "";
	struct store_workspace ws = { 0 };
	struct store_run r = { 0 };
	struct store *st = NULL;
	struct store_model_file f = { "m", hex('a'), 1, 0644 };
	struct store_model_version v;
	struct items it = { 0 };
	int rc;

	ws_path(dir, "v2");
	cr_assert_eq(mkdir(dir, 0755), 0);
	ws_path(db_path, "v2/workspace.db");
	cr_assert_eq(store_migrate_to(db_path, 2), STORE_OK);
	db_exec_at(db_path,
		   "INSERT INTO experiment (name, created_ms, updated_ms, "
		   "next_number) VALUES ('old', 1000, 2000, 2);"
		   "INSERT INTO run (name, experiment_id, number, status, "
		   "interactive, created_ms, started_ms, updated_ms) VALUES "
		   "('old-run', 1, 1, 6, 1, 1000, 1000, 2000);");

	rc = store_open(dir, 0, &st, err, sizeof(err));
	cr_assert_eq(rc, STORE_OK, "store_open: %s: %s", store_strerror(rc),
		     err);
	cr_assert_eq(store_workspace_get(st, &ws), STORE_OK);
	cr_assert_eq(ws.schema_version, STORE_SCHEMA_VERSION);
	store_workspace_release(&ws);
	cr_assert_eq(count_models(st), 0);
	cr_assert_eq(store_run_get_by_name(st, "old-run", &r), STORE_OK);
	v = reg_files(st, "churn", &f, 1, r.id);
	cr_assert_eq(v.version, 1);
	store_model_version_release(&v);
	cr_assert_eq(store_run_models(st, r.id, collect_version, &it), STORE_OK);
	cr_assert_eq(it.n, 1);
	items_release(&it);
	store_run_release(&r);
	store_close(st);
}

/* ---- concurrency -------------------------------------------------------- */

#define WRITERS 4

/*
 * Child @i: its own store, one registration of "shared" with two files
 * of its own (blob hex digit '0' + i and 'a' + i) and a tag naming it.
 * Exit 0 on success.
 */
static int writer(int i)
{
	struct store *st = NULL;
	char tag[8], p0[32];
	const char *h0 = hex((char)('0' + i)), *h1 = hex((char)('a' + i));
	struct store_model_file f[2] = {
		{ p0, h0, 100 + i, 0644 },
		{ "common.txt", h1, 200 + i, 0600 },
	};
	struct store_kv t = { "writer", tag, 1, 0 };
	struct model_version_spec sp = { .files = f, .nfiles = 2, .tags = &t,
					 .ntags = 1 };
	int rc;

	snprintf(tag, sizeof(tag), "%d", i);
	snprintf(p0, sizeof(p0), "own-%d.bin", i);
	if (store_open(ws_root, STORE_CREATE, &st, NULL, 0) != STORE_OK)
		return 2;
	rc = store_model_register(st, "shared", &sp, NULL);
	store_close(st);
	return rc == STORE_OK ? 0 : 3;
}

static int find_writer_tag(void *ctx, const struct store_kv *kv)
{
	if (strcmp(kv->key, "writer") == 0 && kv->len == 1)
		*(int *)ctx = kv->value[0] - '0';
	return 0;
}

Test(model, four_processes_registering_one_name_get_1_to_4)
{
	struct store *st = ws_open();
	pid_t pids[WRITERS];
	int seen[WRITERS] = { 0 };
	struct items it = { 0 };

	store_close(st);	/* the workspace exists before the race */
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
	cr_assert_eq(count_models(st), 1);
	cr_assert_eq(store_model_version_list(st, "shared", collect_version, &it),
		     STORE_OK);
	cr_assert_eq(it.n, WRITERS);
	for (int n = 1; n <= WRITERS; n++) {
		char want[32];
		struct items files = { 0 };
		int64_t id = version_id(st, "shared", n);
		int w = -1;
		char line0[128], line1[128];

		snprintf(want, sizeof(want), "shared/%d", n);
		cr_assert_str_eq(it.s[n - 1], want);
		cr_assert_eq(store_model_tag_list(st, id, find_writer_tag, &w),
			     STORE_OK);
		cr_assert(w >= 0 && w < WRITERS, "version %d has no writer", n);
		cr_assert_eq(seen[w], 0, "writer %d registered twice", w);
		seen[w] = 1;
		cr_assert_eq(store_model_files(st, id, collect_file, &files),
			     STORE_OK);
		cr_assert_eq(files.n, 2);
		snprintf(line0, sizeof(line0), "common.txt %.4s %d 600",
			 hex((char)('a' + w)), 200 + w);
		snprintf(line1, sizeof(line1), "own-%d.bin %.4s %d 644", w,
			 hex((char)('0' + w)), 100 + w);
		cr_assert_str_eq(files.s[0], line0);
		cr_assert_str_eq(files.s[1], line1);
		items_release(&files);
	}
	items_release(&it);
	cr_assert_eq(count_blobs(st), 2 * WRITERS);
	store_close(st);
}
