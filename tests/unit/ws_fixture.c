/*
 * ws_fixture.c - see ws_fixture.h.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_fixture.h"

char ws_root[PATH_MAX];

void ws_setup(void)
{
	char tmpl[] = "/tmp/mlfs-test-ws-XXXXXX";
	char *dir = mkdtemp(tmpl);

	cr_assert_not_null(dir, "cannot create temporary directory: %s",
			   strerror(errno));
	cr_assert_not_null(realpath(dir, ws_root));
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void ws_teardown(void)
{
	if (ws_root[0])
		nftw(ws_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void ws_path(char *out, const char *rel)
{
	int n = snprintf(out, PATH_MAX, "%s%s%s", ws_root, *rel ? "/" : "",
			 rel);

	cr_assert(n > 0 && n < PATH_MAX);
}

struct store *ws_open(void)
{
	struct store *st = NULL;
	char err[512] = "";
	int rc = store_open(ws_root, STORE_CREATE, &st, err, sizeof(err));

	cr_assert_eq(rc, STORE_OK, "store_open('%s'): %s: %s", ws_root,
		     store_strerror(rc), err);
	return st;
}

int64_t ws_make_run(struct store *st, const char *exp, const char *run)
{
	struct store_experiment e = { 0 };
	struct store_run r = { 0 };
	int64_t id;
	int rc = store_experiment_get(st, exp, &e);

	if (rc == STORE_NOT_FOUND)
		rc = store_experiment_create(st, exp, &e);
	cr_assert_eq(rc, STORE_OK, "experiment '%s': %s", exp,
		     store_strerror(rc));
	rc = store_run_create_interactive(st, e.id, run, &r);
	cr_assert_eq(rc, STORE_OK, "create run '%s': %s", run,
		     store_strerror(rc));
	id = r.id;
	store_run_release(&r);
	store_experiment_release(&e);
	return id;
}
