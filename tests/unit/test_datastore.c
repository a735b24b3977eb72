/*
 * Unit tests for the datastore store (store/datastore.c): registration
 * rules, the default datastore, and the secrecy of header values, which
 * must live only in the 0600 credentials file.
 *
 * Every test gets its own workspace (ws_fixture.h).
 */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mlfs/datastores.h"
#include "mlfs/store.h"
#include "ws_fixture.h"

TestSuite(datastore, .init = ws_setup, .fini = ws_teardown, .timeout = 60);

#define SECRET "Bearer s3cr3t-Tok3n-xyzzy"

static const struct datastore_header secret_headers[] = {
	{ "Authorization", SECRET },
	{ "X-Team", "vision" },
};

static struct datastore_spec http_spec(const char *name)
{
	struct datastore_spec s = {
		.name = name,
		.type = DATASTORE_HTTP,
		.url = "http://127.0.0.1:8080/data",
		.headers = secret_headers,
		.nheaders = 2,
	};
	return s;
}

static struct datastore_spec local_spec(const char *name, const char *path)
{
	struct datastore_spec s = {
		.name = name, .type = DATASTORE_LOCAL, .path = path,
	};
	return s;
}

/* 1 if @needle occurs in the file @path (its first 16 MiB). */
static int file_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;
	int found;

	if (!f)
		return 0;
	buf = calloc(1, 16 * 1024 * 1024);
	cr_assert_not_null(buf);
	n = (long)fread(buf, 1, 16 * 1024 * 1024 - 1, f);
	fclose(f);
	found = n > 0 && memmem(buf, (size_t)n, needle, strlen(needle)) != NULL;
	free(buf);
	return found;
}

struct names {
	char s[8][64];
	size_t n;
};

static int collect_name(void *ctx, const struct store_datastore *d)
{
	struct names *nm = ctx;

	if (nm->n < 8)
		snprintf(nm->s[nm->n++], 64, "%s:%s", d->name,
			 datastore_type_name(d->type));
	return 0;
}

struct headers {
	char s[8][256];
	size_t n;
};

static int collect_header(void *ctx, const struct datastore_header *h)
{
	struct headers *hs = ctx;

	if (hs->n < 8)
		snprintf(hs->s[hs->n++], 256, "%s: %s", h->name, h->value);
	return 0;
}

static int collect_event_line(void *ctx, const struct store_event *e)
{
	int *leaks = ctx;

	*leaks += strstr(e->line, "s3cr3t") != NULL;
	return 0;
}

Test(datastore, default_exists_in_the_workspace_and_cannot_go)
{
	struct store *st = ws_open();
	struct store_datastore d;
	char want[PATH_MAX];
	struct stat sb;

	cr_assert_eq(store_datastore_get(st, "default", &d), STORE_OK);
	cr_expect_eq(d.type, DATASTORE_LOCAL);
	ws_path(want, "datastore");
	cr_expect_str_eq(d.path, want);
	cr_expect(stat(want, &sb) == 0 && S_ISDIR(sb.st_mode), "made at init");
	cr_expect(d.created_ms > 0);
	store_datastore_release(&d);
	cr_expect_eq(store_datastore_delete(st, "default"), STORE_DENIED);
	struct datastore_spec s = local_spec("default", "/tmp");
	cr_expect_eq(store_datastore_register(st, &s, NULL), STORE_DENIED);
	store_close(st);
}

Test(datastore, register_local_get_list_delete)
{
	struct store *st = ws_open();
	struct datastore_spec s = local_spec("raw", "/srv/raw");
	struct store_datastore d;
	struct names nm = { 0 };

	cr_assert_eq(store_datastore_register(st, &s, &d), STORE_OK);
	cr_expect_str_eq(d.name, "raw");
	cr_expect_str_eq(d.path, "/srv/raw");
	cr_expect_null(d.url);
	cr_expect_eq(d.nheaders, 0);
	store_datastore_release(&d);
	cr_expect_eq(store_datastore_register(st, &s, NULL), STORE_EXISTS);
	cr_assert_eq(store_datastore_list(st, collect_name, &nm), STORE_OK);
	cr_assert_eq(nm.n, 2);
	cr_expect_str_eq(nm.s[0], "default:local");
	cr_expect_str_eq(nm.s[1], "raw:local");
	cr_assert_eq(store_datastore_delete(st, "raw"), STORE_OK);
	cr_expect_eq(store_datastore_get(st, "raw", &d), STORE_NOT_FOUND);
	cr_expect_eq(store_datastore_delete(st, "raw"), STORE_NOT_FOUND);
	store_close(st);
}

Test(datastore, invalid_specs_are_refused_and_make_nothing)
{
	struct store *st = ws_open();
	const struct datastore_header crlf[] = { { "X-A", "a\r\nX-B: b" } };
	const struct datastore_header badname[] = { { "X A", "v" } };
	const struct datastore_header twice[] = { { "X-A", "1" }, { "x-a", "2" } };
	struct datastore_spec bad[] = {
		local_spec("../up", "/srv"),
		local_spec(".hidden", "/srv"),
		local_spec("rel", "srv/raw"),
		{ .name = "u", .type = DATASTORE_HTTP, .url = "ftp://h/x" },
		{ .name = "u", .type = DATASTORE_HTTP, .url = "http://me:pw@h/x" },
		{ .name = "u", .type = DATASTORE_HTTP, .url = "http:///x" },
		{ .name = "u", .type = DATASTORE_HTTP, .url = "http://h/a b" },
		{ .name = "u", .type = DATASTORE_HTTP, .url = "http://h", .headers = crlf, .nheaders = 1 },
		{ .name = "u", .type = DATASTORE_HTTP, .url = "http://h", .headers = badname, .nheaders = 1 },
		{ .name = "u", .type = DATASTORE_HTTP, .url = "http://h", .headers = twice, .nheaders = 2 },
		{ .name = "u", .type = DATASTORE_HTTP, .path = "/srv", .url = "http://h" },
		{ .name = "u", .type = 7, .path = "/srv" },
	};
	struct names nm = { 0 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(store_datastore_register(st, &bad[i], NULL),
			     STORE_INVALID, "spec %zu", i);
	cr_assert_eq(store_datastore_list(st, collect_name, &nm), STORE_OK);
	cr_expect_eq(nm.n, 1, "only the default");
	store_close(st);
}

Test(datastore, http_headers_are_kept_apart_0600_and_read_back)
{
	struct store *st = ws_open();
	struct datastore_spec s = http_spec("web");
	struct store_datastore d;
	struct headers hs = { 0 };
	char cred[PATH_MAX], db[PATH_MAX], wal[PATH_MAX];
	struct stat sb;
	int leaks = 0;

	cr_assert_eq(store_datastore_register(st, &s, &d), STORE_OK);
	cr_expect_str_eq(d.url, "http://127.0.0.1:8080/data");
	cr_assert_eq(d.nheaders, 2);
	cr_expect_str_eq(d.header_names[0], "Authorization");
	cr_expect_str_eq(d.header_names[1], "X-Team");
	store_datastore_release(&d);
	cr_assert_eq(store_datastore_secrets(st, "web", collect_header, &hs),
		     STORE_OK);
	cr_assert_eq(hs.n, 2);
	cr_expect_str_eq(hs.s[0], "Authorization: " SECRET);
	cr_expect_str_eq(hs.s[1], "X-Team: vision");

	ws_path(cred, "credentials");
	cr_assert_eq(stat(cred, &sb), 0);
	cr_expect_eq(sb.st_mode & 0777, 0600);
	cr_expect(file_contains(cred, SECRET));
	ws_path(db, "workspace.db");
	ws_path(wal, "workspace.db-wal");
	cr_expect(!file_contains(db, "s3cr3t"), "the secret is in the database");
	cr_expect(!file_contains(wal, "s3cr3t"), "the secret is in the WAL");
	cr_assert_eq(store_event_list(st, 100, collect_event_line, &leaks),
		     STORE_OK);
	cr_expect_eq(leaks, 0, "an event quotes the secret");
	store_close(st);
}

Test(datastore, headers_survive_reopen_and_go_with_the_datastore)
{
	struct store *st = ws_open();
	struct datastore_spec s = http_spec("web");
	struct headers hs = { 0 };
	char cred[PATH_MAX];

	cr_assert_eq(store_datastore_register(st, &s, NULL), STORE_OK);
	store_close(st);
	st = ws_open();
	cr_assert_eq(store_datastore_secrets(st, "web", collect_header, &hs),
		     STORE_OK);
	cr_expect_eq(hs.n, 2);
	cr_assert_eq(store_datastore_delete(st, "web"), STORE_OK);
	ws_path(cred, "credentials");
	cr_expect(!file_contains(cred, SECRET), "deleted datastore's secret kept");
	cr_expect_eq(store_datastore_secrets(st, "web", collect_header, &hs),
		     STORE_NOT_FOUND);
	store_close(st);
}

Test(datastore, a_refused_duplicate_keeps_the_first_headers)
{
	struct store *st = ws_open();
	struct datastore_spec s = http_spec("web");
	const struct datastore_header other[] = { { "Authorization", "Bearer other" } };
	struct datastore_spec s2 = http_spec("web");
	struct headers hs = { 0 };

	s2.headers = other;
	s2.nheaders = 1;
	cr_assert_eq(store_datastore_register(st, &s, NULL), STORE_OK);
	cr_expect_eq(store_datastore_register(st, &s2, NULL), STORE_EXISTS);
	cr_assert_eq(store_datastore_secrets(st, "web", collect_header, &hs),
		     STORE_OK);
	cr_expect_str_eq(hs.s[0], "Authorization: " SECRET);
	store_close(st);
}

Test(datastore, concurrent_registrations_of_one_name_leave_one_whole)
{
	const int procs = 4;
	struct store *st;
	struct headers hs = { 0 };
	int won = 0;

	for (int i = 0; i < procs; i++) {
		pid_t pid = fork();

		cr_assert_geq(pid, 0);
		if (pid == 0) {
			char value[64];
			struct datastore_header h[] = { { "Authorization", value } };
			struct datastore_spec s = http_spec("web");
			struct store *cst = ws_open();
			int rc;

			snprintf(value, sizeof(value), "Bearer writer-%d", i);
			s.headers = h;
			s.nheaders = 1;
			rc = store_datastore_register(cst, &s, NULL);
			store_close(cst);
			_exit(rc == STORE_OK ? 0 : rc == STORE_EXISTS ? 1 : 2);
		}
	}
	for (int i = 0; i < procs; i++) {
		int status;

		cr_assert_gt(wait(&status), 0);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) < 2,
			  "a registration failed otherwise than EXISTS");
		won += WEXITSTATUS(status) == 0;
	}
	cr_expect_eq(won, 1);
	st = ws_open();
	cr_assert_eq(store_datastore_secrets(st, "web", collect_header, &hs),
		     STORE_OK);
	cr_expect_eq(hs.n, 1);
	cr_expect(strncmp(hs.s[0], "Authorization: Bearer writer-", 29) == 0,
		  "%s", hs.s[0]);
	store_close(st);
}

Test(datastore, a_schema_3_workspace_gets_the_default_datastore)
{
	char dir[PATH_MAX], db_path[PATH_MAX], want[PATH_MAX], err[512] = "";
	struct store_datastore d;
	struct store *st = NULL;
	struct stat sb;
	int rc;

	ws_path(dir, "v3");
	cr_assert_eq(mkdir(dir, 0755), 0);
	ws_path(db_path, "v3/workspace.db");
	cr_assert_eq(store_migrate_to(db_path, 3), STORE_OK);
	rc = store_open(dir, 0, &st, err, sizeof(err));
	cr_assert_eq(rc, STORE_OK, "store_open: %s", err);
	cr_assert_eq(store_datastore_get(st, "default", &d), STORE_OK);
	ws_path(want, "v3/datastore");
	cr_expect_str_eq(d.path, want);
	cr_expect(stat(want, &sb) == 0 && S_ISDIR(sb.st_mode));
	store_datastore_release(&d);
	store_close(st);
}
