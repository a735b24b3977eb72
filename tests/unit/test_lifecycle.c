/*
 * test_lifecycle.c - submitted runs (store/run_lifecycle.c), compute
 * targets (store/compute.c) and process identities (compute/proc.c).
 *
 * Every test gets its own workspace (ws_fixture.h). Helpers drive a run
 * through the lifecycle with a fixed, fake supervisor and process, so the
 * recorded ids can be compared exactly; only the proc_id tests and the
 * concurrent claimers use real processes.
 *
 * Code that runs in a forked child never uses cr_assert: it reports
 * through its exit status and a shared page, which the parent asserts.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlfs/compute.h"
#include "mlfs/parse.h"
#include "mlfs/store.h"
#include "ws_fixture.h"

TestSuite(lifecycle, .init = ws_setup, .fini = ws_teardown, .timeout = 120);

#define BOOT "0badc0de-1111-4222-8333-444455556666"

static const struct proc_id SUP = { 4242, 1000001, BOOT };
static const struct proc_id PROC = { 4343, 1000002, BOOT };

/* ---- helpers ------------------------------------------------------------ */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t make_exp(struct store *st, const char *name)
{
	struct store_experiment e = { 0 };
	int rc = store_experiment_create(st, name, &e);
	int64_t id = e.id;

	cr_assert_eq(rc, STORE_OK, "create experiment '%s': %s", name,
		     store_strerror(rc));
	store_experiment_release(&e);
	return id;
}

static int64_t make_interactive(struct store *st, int64_t exp,
				const char *name)
{
	struct store_run r = { 0 };
	int rc = store_run_create_interactive(st, exp, name, &r);
	int64_t id = r.id;

	cr_assert_eq(rc, STORE_OK, "create run '%s': %s", name,
		     store_strerror(rc));
	store_run_release(&r);
	return id;
}

/* A submission to "local" with a snapshot and a config, no name. */
static struct run_submission plain_sub(void)
{
	struct run_submission s = {
		.compute_target = "local",
		.snapshot = "0123456789abcdef",
		.config = "{\"script\":\"train.py\"}",
	};
	return s;
}

/* Submits @name (NULL: generated) and returns the run id. */
static int64_t submit(struct store *st, int64_t exp, const char *name)
{
	struct run_submission sub = plain_sub();
	struct store_run r = { 0 };
	int64_t id;
	int rc;

	sub.name = name;
	rc = store_run_submit(st, exp, &sub, &r);
	cr_assert_eq(rc, STORE_OK, "submit '%s': %s", name ? name : "(null)",
		     store_strerror(rc));
	id = r.id;
	cr_assert_gt(id, 0);
	store_run_release(&r);
	return id;
}

static struct store_run get_run(struct store *st, int64_t id)
{
	struct store_run r = { 0 };
	int rc = store_run_get(st, id, &r);

	cr_assert_eq(rc, STORE_OK, "get run %lld: %s", (long long)id,
		     store_strerror(rc));
	return r;
}

static int64_t number_of(struct store *st, int64_t id)
{
	struct store_run r = get_run(st, id);
	int64_t n = r.number;

	store_run_release(&r);
	return n;
}

static enum run_status status_of(struct store *st, int64_t id)
{
	struct store_run r = get_run(st, id);
	enum run_status s = r.status;

	store_run_release(&r);
	return s;
}

static void assert_status(struct store *st, int64_t id, enum run_status want)
{
	enum run_status got = status_of(st, id);

	cr_assert_eq(got, want, "run %lld is %s, expected %s", (long long)id,
		     run_status_name(got), run_status_name(want));
}

static void set_max(struct store *st, int max)
{
	int rc = store_compute_set_max(st, "local", max);

	cr_assert_eq(rc, STORE_OK, "set_max(%d): %s", max, store_strerror(rc));
}

/* Claims on "local" (large cpus) and asserts it took run @want. */
static void claim_expect(struct store *st, int64_t want)
{
	int64_t got = 0;
	int rc = store_run_claim(st, "local", 64, &SUP, &got);

	cr_assert_eq(rc, STORE_OK, "claim: %s", store_strerror(rc));
	cr_assert_eq(got, want, "claimed run %lld, expected %lld",
		     (long long)got, (long long)want);
}

static int claim_rc(struct store *st, int cpus, int64_t *id)
{
	int64_t dummy = 0;

	return store_run_claim(st, "local", cpus, &SUP, id ? id : &dummy);
}

/*
 * A new submitted run of @exp brought to status @want through the
 * lifecycle calls. The caller makes sure no other run is Queued (a claim
 * takes the oldest) and that "local" has a free slot.
 */
static int64_t run_in(struct store *st, int64_t exp, enum run_status want)
{
	int64_t id = submit(st, exp, NULL);
	int rc;

	if (want == RUN_QUEUED)
		return id;
	if (want == RUN_CANCELED) {
		cr_assert_eq(store_run_cancel(st, id, NULL), STORE_OK);
		return id;
	}
	claim_expect(st, id);
	if (want == RUN_PREPARING)
		return id;
	rc = store_run_started(st, id, &PROC);
	cr_assert_eq(rc, STORE_OK, "started: %s", store_strerror(rc));
	if (want == RUN_RUNNING)
		return id;
	if (want == RUN_CANCEL_REQUESTED) {
		cr_assert_eq(store_run_cancel(st, id, NULL), STORE_OK);
		assert_status(st, id, RUN_CANCEL_REQUESTED);
		return id;
	}
	rc = store_run_finalizing(st, id);
	cr_assert_eq(rc, STORE_OK, "finalizing: %s", store_strerror(rc));
	if (want == RUN_FINALIZING)
		return id;
	cr_assert(want == RUN_COMPLETED || want == RUN_FAILED,
		  "run_in cannot make %s", run_status_name(want));
	rc = store_run_finish(st, id, want, 1, want == RUN_COMPLETED ? 0 : 1,
			      want == RUN_FAILED ? "exit code 1" : NULL);
	cr_assert_eq(rc, STORE_OK, "finish: %s", store_strerror(rc));
	assert_status(st, id, want);
	return id;
}

static int count_run(void *ctx, const struct store_run_entry *r)
{
	(void)r;
	++*(int *)ctx;
	return 0;
}

static int runs_in(struct store *st, int64_t exp)
{
	int n = 0;

	cr_assert_eq(store_run_list(st, exp, count_run, &n), STORE_OK);
	return n;
}

static int count_kv(void *ctx, const struct store_kv *kv)
{
	(void)kv;
	++*(int *)ctx;
	return 0;
}

/* Rows in a table, read with a connection of our own. */
static int64_t db_count(const char *sql)
{
	char db_path[PATH_MAX];
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int64_t n;

	ws_path(db_path, "workspace.db");
	cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK,
		     "'%s': %s", sql, sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

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

/* ---- events and changes ------------------------------------------------- */

#define MAX_LINES 256

struct lines {
	size_t n;
	char *line[MAX_LINES];
};

static int collect_line(void *ctx, const struct store_event *e)
{
	struct lines *l = ctx;

	if (l->n < MAX_LINES)
		l->line[l->n++] = strdup(e->line);
	return 0;
}

static void lines_release(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->line[i]);
	l->n = 0;
}

static void events(struct store *st, struct lines *l)
{
	l->n = 0;
	cr_assert_eq(store_event_list(st, MAX_LINES, collect_line, l),
		     STORE_OK);
}

static int event_count(struct store *st)
{
	struct lines l;
	int n;

	events(st, &l);
	n = (int)l.n;
	lines_release(&l);
	return n;
}

#define MAX_CHANGES 256

struct changes {
	size_t n;
	struct store_change c[MAX_CHANGES];
};

static int collect_change(void *ctx, const struct store_change *c)
{
	struct changes *l = ctx;

	if (l->n < MAX_CHANGES)
		l->c[l->n++] = *c;
	return 0;
}

static int64_t head(struct store *st)
{
	int64_t seq = 0;

	cr_assert_eq(store_changes_head(st, &seq), STORE_OK);
	return seq;
}

static void changes_after(struct store *st, int64_t seq, struct changes *l)
{
	l->n = 0;
	cr_assert_eq(store_changes_since(st, &seq, collect_change, l),
		     STORE_OK);
}

static int run_changes(const struct changes *l, int64_t run_id)
{
	int n = 0;

	for (size_t i = 0; i < l->n; i++)
		n += l->c[i].kind == CHANGE_RUN && l->c[i].run_id == run_id;
	return n;
}

/* ---- store_run_submit ---------------------------------------------------- */

Test(lifecycle, submit_makes_a_queued_run_with_every_field_stored)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct store_kv tags[] = { { "team", "a", 1, 0 } };
	struct run_submission sub = {
		.name = "r-1",
		.display_name = "baseline",
		.compute_target = "local",
		.snapshot = "deadbeef",
		.config = "{\"script\":\"train.py\",\"arguments\":[]}",
		.max_duration_s = 3600,
		.tags = tags,
		.ntags = 1,
	};
	struct store_run out = { 0 }, r;
	int64_t before = now_ms(), after;

	cr_assert_eq(store_run_submit(st, exp, &sub, &out), STORE_OK);
	after = now_ms();
	r = get_run(st, out.id);
	cr_assert_str_eq(r.name, "r-1");
	cr_assert_eq(r.experiment_id, exp);
	cr_assert_eq(r.number, 1);
	cr_assert_eq(r.status, RUN_QUEUED);
	cr_assert_eq(r.interactive, 0);
	cr_assert_str_eq(r.display_name, "baseline");
	cr_assert_str_eq(r.compute_target, "local");
	cr_assert_eq(r.parent_id, 0);
	cr_assert(r.created_ms >= before && r.created_ms <= after);
	cr_assert_eq(r.started_ms, -1);
	cr_assert_eq(r.ended_ms, -1);
	cr_assert_eq(r.has_exit_code, 0);
	cr_assert_null(r.error);
	cr_assert_str_eq(r.snapshot, "deadbeef");
	cr_assert_str_eq(r.config, "{\"script\":\"train.py\",\"arguments\":[]}");
	cr_assert_eq(r.max_duration_s, 3600);
	cr_assert_eq(r.supervisor_pid, 0);
	/* *out is the same run as store_run_get sees. */
	cr_assert_str_eq(out.name, r.name);
	cr_assert_eq(out.status, RUN_QUEUED);
	cr_assert_str_eq(out.snapshot, r.snapshot);
	cr_assert_str_eq(out.config, r.config);
	cr_assert_eq(out.max_duration_s, 3600);
	store_run_release(&r);
	store_run_release(&out);
	store_close(st);
}

Test(lifecycle, submit_without_display_name_or_limit_leaves_them_unset)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct run_submission sub = plain_sub();
	struct store_run out = { 0 };

	cr_assert_eq(store_run_submit(st, exp, &sub, &out), STORE_OK);
	cr_assert_null(out.display_name);
	cr_assert_eq(out.max_duration_s, 0);
	store_run_release(&out);
	store_close(st);
}

Test(lifecycle, submit_accepts_a_null_out)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct run_submission sub = plain_sub();
	struct store_run r = { 0 };

	sub.name = "no-out";
	cr_assert_eq(store_run_submit(st, exp, &sub, NULL), STORE_OK);
	cr_assert_eq(store_run_get_by_name(st, "no-out", &r), STORE_OK);
	cr_assert_eq(r.status, RUN_QUEUED);
	store_run_release(&r);
	store_close(st);
}

Test(lifecycle, submit_numbers_after_interactive_runs)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct store_run r;
	int64_t id;

	make_interactive(st, exp, "i1");
	make_interactive(st, exp, "i2");
	id = submit(st, exp, "s3");
	r = get_run(st, id);
	cr_assert_eq(r.number, 3);
	store_run_release(&r);
	id = make_interactive(st, exp, "i4");
	r = get_run(st, id);
	cr_assert_eq(r.number, 4, "interactive run after a submitted one");
	store_run_release(&r);
	/* Numbers count per experiment. */
	id = submit(st, make_exp(st, "other"), NULL);
	r = get_run(st, id);
	cr_assert_eq(r.number, 1);
	store_run_release(&r);
	store_close(st);
}

/* @name is "EXP_<ms>_<8 lowercase hex>" with ms in [lo, hi]. */
static void assert_generated_name(const char *name, const char *exp,
				  int64_t lo, int64_t hi)
{
	size_t elen = strlen(exp), n = strlen(name);
	const char *ms, *hex;
	char *end = NULL;
	long long v;

	cr_assert(name_is_valid(name, n), "generated name '%s' is invalid",
		  name);
	cr_assert(n > elen + 1 && strncmp(name, exp, elen) == 0 &&
			  name[elen] == '_',
		  "'%s' does not start with '%s_'", name, exp);
	ms = name + elen + 1;
	errno = 0;
	v = strtoll(ms, &end, 10);
	cr_assert(errno == 0 && end != ms && *end == '_',
		  "'%s': no milliseconds", name);
	cr_assert(v >= lo && v <= hi, "'%s': %lld not in [%lld, %lld]", name,
		  v, (long long)lo, (long long)hi);
	hex = end + 1;
	cr_assert_eq(strlen(hex), 8, "'%s': not 8 hex digits at the end", name);
	for (int i = 0; i < 8; i++)
		cr_assert((hex[i] >= '0' && hex[i] <= '9') ||
				  (hex[i] >= 'a' && hex[i] <= 'f'),
			  "'%s': not hex", name);
}

Test(lifecycle, submit_generates_a_valid_unique_name_when_none_is_given)
{
	enum { N = 64 };
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct run_submission sub = plain_sub();
	char *names[N];
	int64_t lo = now_ms(), hi;

	for (int i = 0; i < N; i++) {
		struct store_run r = { 0 };

		cr_assert_eq(store_run_submit(st, exp, &sub, &r), STORE_OK);
		names[i] = strdup(r.name);
		store_run_release(&r);
	}
	hi = now_ms();
	for (int i = 0; i < N; i++) {
		struct store_run r = { 0 };

		assert_generated_name(names[i], "exp", lo, hi);
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(names[i], names[j]);
		cr_assert_eq(store_run_get_by_name(st, names[i], &r), STORE_OK);
		store_run_release(&r);
	}
	for (int i = 0; i < N; i++)
		free(names[i]);
	store_close(st);
}

Test(lifecycle, submit_generated_name_stays_valid_for_the_longest_experiment)
{
	char exp_name[NAME_MAX_LEN + 1];
	struct store *st = ws_open();
	struct run_submission sub = plain_sub();
	struct store_run r = { 0 };
	int64_t exp;

	memset(exp_name, 'e', NAME_MAX_LEN);
	exp_name[NAME_MAX_LEN] = '\0';
	exp = make_exp(st, exp_name);
	cr_assert_eq(store_run_submit(st, exp, &sub, &r), STORE_OK);
	cr_assert(name_is_valid(r.name, strlen(r.name)),
		  "'%s' (%zu bytes) is not a valid name", r.name,
		  strlen(r.name));
	store_run_release(&r);
	store_close(st);
}

Test(lifecycle, submit_uses_the_given_name)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id = submit(st, exp, "my-run.1");
	struct store_run r = { 0 };

	cr_assert_eq(store_run_get_by_name(st, "my-run.1", &r), STORE_OK);
	cr_assert_eq(r.id, id);
	store_run_release(&r);
	cr_assert_eq(store_run_find(st, exp, "my-run.1", &r), STORE_OK);
	cr_assert_eq(r.id, id);
	store_run_release(&r);
	store_close(st);
}

Test(lifecycle, submit_refuses_a_taken_name_anywhere_in_the_workspace)
{
	struct store *st = ws_open();
	int64_t a = make_exp(st, "a"), b = make_exp(st, "b");
	struct run_submission sub = plain_sub();
	int64_t seq;
	int nev;

	make_interactive(st, a, "inter");
	submit(st, a, "sub");
	seq = head(st);
	nev = event_count(st);
	sub.name = "inter";
	cr_assert_eq(store_run_submit(st, a, &sub, NULL), STORE_EXISTS);
	sub.name = "sub";
	cr_assert_eq(store_run_submit(st, a, &sub, NULL), STORE_EXISTS);
	cr_assert_eq(store_run_submit(st, b, &sub, NULL), STORE_EXISTS,
		     "a name taken in another experiment");
	cr_assert_eq(runs_in(st, a), 2);
	cr_assert_eq(runs_in(st, b), 0);
	cr_assert_eq(head(st), seq, "a refused submit added change rows");
	cr_assert_eq(event_count(st), nev, "a refused submit added events");
	/* The refused submits did not use up run numbers. */
	cr_assert_eq(number_of(st, submit(st, b, NULL)), 1);
	store_close(st);
}

Test(lifecycle, submit_refuses_an_invalid_name)
{
	static const char *const bad[] = { "", ".hidden", "a/b", "a b", "é" };
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct run_submission sub = plain_sub();

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		sub.name = bad[i];
		cr_assert_eq(store_run_submit(st, exp, &sub, NULL),
			     STORE_INVALID, "name '%s'", bad[i]);
	}
	cr_assert_eq(runs_in(st, exp), 0);
	store_close(st);
}

static void assert_tag(struct store *st, int64_t run, const char *key,
		       const char *want)
{
	char *v = NULL;
	size_t len = 0;
	int rc = store_tag_get(st, run, key, &v, &len, NULL);

	cr_assert_eq(rc, STORE_OK, "tag '%s': %s", key, store_strerror(rc));
	cr_assert_eq(len, strlen(want));
	cr_assert_str_eq(v, want);
	free(v);
}

static void assert_property(struct store *st, int64_t run, const char *key,
			    const char *want)
{
	char *v = NULL;
	size_t len = 0;
	int rc = store_property_get(st, run, key, &v, &len, NULL);

	cr_assert_eq(rc, STORE_OK, "property '%s': %s", key,
		     store_strerror(rc));
	cr_assert_eq(len, strlen(want));
	cr_assert_str_eq(v, want);
	free(v);
}

Test(lifecycle, submit_stores_tags_and_properties)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct store_kv tags[] = {
		{ "team", "a", 1, 0 },
		{ "lr", "0.1", 3, 0 },
	};
	struct store_kv props[] = {
		{ "azureml.git.commit", "abc123", 6, 0 },
		{ "mlflow.source.git.branch", "main", 4, 0 },
	};
	struct run_submission sub = plain_sub();
	struct store_run r = { 0 };
	int n = 0;

	sub.tags = tags;
	sub.ntags = 2;
	sub.properties = props;
	sub.nproperties = 2;
	cr_assert_eq(store_run_submit(st, exp, &sub, &r), STORE_OK);
	assert_tag(st, r.id, "team", "a");
	assert_tag(st, r.id, "lr", "0.1");
	assert_property(st, r.id, "azureml.git.commit", "abc123");
	assert_property(st, r.id, "mlflow.source.git.branch", "main");
	cr_assert_eq(store_tag_list(st, r.id, count_kv, &n), STORE_OK);
	cr_assert_eq(n, 2);
	n = 0;
	cr_assert_eq(store_property_list(st, r.id, count_kv, &n), STORE_OK);
	cr_assert_eq(n, 2);
	/* Properties made at submit are add-only like any other. */
	cr_assert_eq(store_property_add(st, r.id, "azureml.git.commit", "x", 1),
		     STORE_DENIED);
	store_run_release(&r);
	store_close(st);
}

/*
 * Submits @sub, expects @want, and checks the failed submit left nothing:
 * no run, no tags or properties, no change rows, no events, no number
 * used up.
 */
static void assert_refused_cleanly(struct store *st, int64_t exp,
				   struct run_submission *sub, int want)
{
	struct store_run r = { 0 };
	int64_t seq = head(st);
	int nev = event_count(st);
	int before = exp > 0 ? runs_in(st, exp) : 0;
	int64_t tags = db_count("SELECT count(*) FROM tag");
	int64_t props = db_count("SELECT count(*) FROM property");
	int64_t runs = db_count("SELECT count(*) FROM run");
	int rc = store_run_submit(st, exp, sub, &r);

	cr_assert_eq(rc, want, "submit gave %s, expected %s",
		     store_strerror(rc), store_strerror(want));
	if (exp > 0)
		cr_assert_eq(runs_in(st, exp), before);
	cr_assert_eq(db_count("SELECT count(*) FROM run"), runs,
		     "a refused submit left a run");
	cr_assert_eq(db_count("SELECT count(*) FROM tag"), tags,
		     "a refused submit left tags");
	cr_assert_eq(db_count("SELECT count(*) FROM property"), props,
		     "a refused submit left properties");
	cr_assert_eq(head(st), seq, "a refused submit added change rows");
	cr_assert_eq(event_count(st), nev, "a refused submit added events");
	if (sub->name)
		cr_assert_eq(store_run_get_by_name(st, sub->name, &r),
			     STORE_NOT_FOUND);
}

Test(lifecycle, submit_refuses_a_bad_tag_key_leaving_nothing_behind)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct store_kv tags[] = {
		{ "good", "1", 1, 0 },
		{ "bad key", "2", 1, 0 },
	};
	struct run_submission sub = plain_sub();

	sub.name = "tagged";
	sub.tags = tags;
	sub.ntags = 2;
	assert_refused_cleanly(st, exp, &sub, STORE_INVALID);
	tags[1].key = ".dot";
	assert_refused_cleanly(st, exp, &sub, STORE_INVALID);
	tags[1].key = "";
	assert_refused_cleanly(st, exp, &sub, STORE_INVALID);
	/* A clean submit afterwards still gets number 1. */
	cr_assert_eq(number_of(st, submit(st, exp, NULL)), 1);
	store_close(st);
}

Test(lifecycle, submit_refuses_a_bad_property_or_value_leaving_nothing_behind)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct store_kv tags[] = { { "good", "1", 1, 0 } };
	struct store_kv props[] = {
		{ "p1", "ok", 2, 0 },
		{ "p/2", "ok", 2, 0 },
	};
	struct run_submission sub = plain_sub();
	char *big = malloc(STORE_VALUE_MAX + 2);

	cr_assert_not_null(big);
	memset(big, 'v', STORE_VALUE_MAX + 1);
	big[STORE_VALUE_MAX + 1] = '\0';
	sub.tags = tags;
	sub.ntags = 1;
	sub.properties = props;
	sub.nproperties = 2;
	assert_refused_cleanly(st, exp, &sub, STORE_INVALID);
	props[1].key = "p2";
	props[1].value = "a\0b";
	props[1].len = 3;
	assert_refused_cleanly(st, exp, &sub, STORE_INVALID);
	props[1].value = big;
	props[1].len = STORE_VALUE_MAX + 1;
	assert_refused_cleanly(st, exp, &sub, STORE_TOO_BIG);
	free(big);
	store_close(st);
}

Test(lifecycle, submit_refuses_a_missing_experiment)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct run_submission sub = plain_sub();

	sub.name = "orphan";
	assert_refused_cleanly(st, exp + 100, &sub, STORE_NOT_FOUND);
	sub.name = NULL;
	assert_refused_cleanly(st, exp + 100, &sub, STORE_NOT_FOUND);
	store_close(st);
}

Test(lifecycle, submit_refuses_an_unknown_compute_target)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct run_submission sub = plain_sub();

	sub.name = "nowhere";
	sub.compute_target = "gpu-cluster";
	assert_refused_cleanly(st, exp, &sub, STORE_NOT_FOUND);
	sub.compute_target = NULL;
	assert_refused_cleanly(st, exp, &sub, STORE_INVALID);
	store_close(st);
}

Test(lifecycle, submit_refuses_a_missing_parent)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t p = submit(st, exp, "parent");
	struct run_submission sub = plain_sub();

	sub.name = "child";
	sub.parent_id = p + 100;
	assert_refused_cleanly(st, exp, &sub, STORE_NOT_FOUND);
	store_close(st);
}

struct names {
	size_t n;
	int64_t id[16];
	char *name[16];
};

static int collect_name(void *ctx, const struct store_run_entry *r)
{
	struct names *l = ctx;

	if (l->n < 16) {
		l->id[l->n] = r->id;
		l->name[l->n++] = strdup(r->name);
	}
	return 0;
}

static void names_release(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->name[i]);
	l->n = 0;
}

Test(lifecycle, submit_with_parent_lists_the_child_under_it)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t parent = make_interactive(st, exp, "parent");
	struct run_submission sub = plain_sub();
	struct store_run r = { 0 };
	struct names l = { 0 };
	int64_t seq = head(st);
	struct changes ch;
	int64_t c1, c2;

	sub.parent_id = parent;
	sub.name = "child-1";
	cr_assert_eq(store_run_submit(st, exp, &sub, &r), STORE_OK);
	c1 = r.id;
	cr_assert_eq(r.parent_id, parent);
	store_run_release(&r);
	changes_after(st, seq, &ch);
	cr_assert_eq(run_changes(&ch, parent), 1,
		     "no change row for the parent's children listing");
	sub.name = "child-2";
	cr_assert_eq(store_run_submit(st, exp, &sub, &r), STORE_OK);
	c2 = r.id;
	store_run_release(&r);

	cr_assert_eq(store_run_children(st, parent, collect_name, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 2);
	cr_assert_eq(l.id[0], c1);
	cr_assert_str_eq(l.name[0], "child-1");
	cr_assert_eq(l.id[1], c2);
	cr_assert_str_eq(l.name[1], "child-2");
	names_release(&l);
	cr_assert_eq(store_run_children(st, c1, collect_name, &l), STORE_OK);
	cr_assert_eq(l.n, 0);

	cr_assert_eq(store_run_get_by_name(st, "child-2", &r), STORE_OK);
	cr_assert_eq(r.id, c2);
	cr_assert_eq(r.parent_id, parent);
	store_run_release(&r);
	cr_assert_eq(store_run_get_by_name(st, "child-3", &r),
		     STORE_NOT_FOUND);
	store_close(st);
}

Test(lifecycle, submit_adds_a_change_row_and_an_event)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t seq = head(st);
	struct changes ch;
	struct lines l;
	int64_t id = submit(st, exp, "ev");

	changes_after(st, seq, &ch);
	cr_assert_eq(run_changes(&ch, id), 1);
	events(st, &l);
	cr_assert_geq(l.n, 1);
	cr_assert_str_eq(l.line[l.n - 1],
			 "experiments/exp/runs/ev submitted to local (Queued)");
	lines_release(&l);
	store_close(st);
}

/* ---- store_run_claim ----------------------------------------------------- */

Test(lifecycle, claim_takes_the_oldest_queued_run_first)
{
	struct store *st = ws_open();
	int64_t a = make_exp(st, "a"), b = make_exp(st, "b");
	int64_t r1 = submit(st, b, "r1");
	int64_t r2 = submit(st, a, "r2");
	int64_t r3 = submit(st, b, "r3");

	set_max(st, 10);
	claim_expect(st, r1);
	claim_expect(st, r2);
	claim_expect(st, r3);
	store_close(st);
}

Test(lifecycle, claim_moves_the_run_to_preparing_and_records_the_supervisor)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id = submit(st, exp, "r");
	struct store_run r;

	claim_expect(st, id);
	r = get_run(st, id);
	cr_assert_eq(r.status, RUN_PREPARING);
	cr_assert_eq(r.supervisor_pid, SUP.pid);
	cr_assert_eq(r.started_ms, -1);
	cr_assert_eq(r.ended_ms, -1);
	store_run_release(&r);
	store_close(st);
}

Test(lifecycle, claim_reports_not_found_when_nothing_is_queued)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id = 12345;

	cr_assert_eq(claim_rc(st, 8, &id), STORE_NOT_FOUND);
	cr_assert_eq(id, 12345, "*run_id written on STORE_NOT_FOUND");
	make_interactive(st, exp, "inter");
	cr_assert_eq(claim_rc(st, 8, NULL), STORE_NOT_FOUND,
		     "an interactive run was claimed");
	run_in(st, exp, RUN_CANCELED);
	cr_assert_eq(claim_rc(st, 8, NULL), STORE_NOT_FOUND,
		     "a canceled run was claimed");
	id = submit(st, exp, NULL);
	claim_expect(st, id);
	cr_assert_eq(claim_rc(st, 8, NULL), STORE_NOT_FOUND,
		     "a run was claimed twice");
	store_close(st);
}

Test(lifecycle, claim_refuses_an_unknown_compute_target)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id = 0;

	submit(st, exp, NULL);
	cr_assert_eq(store_run_claim(st, "nowhere", 8, &SUP, &id),
		     STORE_NOT_FOUND);
	store_close(st);
}

Test(lifecycle, claim_never_exceeds_the_compute_limit)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t ids[5], id = 0;

	for (int i = 0; i < 5; i++)
		ids[i] = submit(st, exp, NULL);
	set_max(st, 2);
	claim_expect(st, ids[0]);
	claim_expect(st, ids[1]);
	cr_assert_eq(claim_rc(st, 64, &id), STORE_NOT_FOUND,
		     "a third run was claimed with a limit of 2");
	assert_status(st, ids[2], RUN_QUEUED);
	cr_assert_eq(store_run_finish(st, ids[0], RUN_FAILED, 0, 0, "x"),
		     STORE_OK);
	claim_expect(st, ids[2]);
	cr_assert_eq(claim_rc(st, 64, NULL), STORE_NOT_FOUND);
	/* Raising the limit frees a slot at once. */
	set_max(st, 3);
	claim_expect(st, ids[3]);
	cr_assert_eq(claim_rc(st, 64, NULL), STORE_NOT_FOUND);
	store_close(st);
}

Test(lifecycle, claim_uses_the_cpus_argument_when_the_limit_is_zero)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t ids[5];

	for (int i = 0; i < 5; i++)
		ids[i] = submit(st, exp, NULL);
	set_max(st, 0);
	for (int i = 0; i < 3; i++) {
		int64_t id = 0;

		cr_assert_eq(claim_rc(st, 3, &id), STORE_OK, "claim %d", i);
		cr_assert_eq(id, ids[i]);
	}
	cr_assert_eq(claim_rc(st, 3, NULL), STORE_NOT_FOUND,
		     "a fourth run was claimed with cpus = 3");
	cr_assert_eq(claim_rc(st, 4, NULL), STORE_OK);
	cr_assert_eq(claim_rc(st, 4, NULL), STORE_NOT_FOUND);
	/* A set limit wins over cpus. */
	set_max(st, 1);
	cr_assert_eq(claim_rc(st, 64, NULL), STORE_NOT_FOUND);
	store_close(st);
}

Test(lifecycle, claim_counts_every_active_status_against_the_limit)
{
	static const enum run_status active[] = {
		RUN_PREPARING, RUN_RUNNING, RUN_FINALIZING,
		RUN_CANCEL_REQUESTED,
	};
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");

	for (size_t i = 0; i < 4; i++) {
		int64_t busy, queued, id = 0;

		/* One run in active[i], limit 1: the next one must wait. */
		set_max(st, 1);
		busy = run_in(st, exp, active[i]);
		queued = submit(st, exp, NULL);
		cr_assert_eq(claim_rc(st, 64, &id), STORE_NOT_FOUND,
			     "a %s run was not counted as active",
			     run_status_name(active[i]));
		cr_assert_eq(store_run_finish(st, busy, RUN_CANCELED, 0, 0,
					      NULL), STORE_OK);
		cr_assert_eq(store_run_cancel(st, queued, NULL), STORE_OK);
	}
	store_close(st);
}

Test(lifecycle, claim_ignores_interactive_and_finished_runs)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id;

	set_max(st, 1);
	make_interactive(st, exp, "i1");
	make_interactive(st, exp, "i2");
	run_in(st, exp, RUN_COMPLETED);
	run_in(st, exp, RUN_FAILED);
	run_in(st, exp, RUN_CANCELED);
	id = submit(st, exp, NULL);
	claim_expect(st, id);
	store_close(st);
}

Test(lifecycle, claim_does_not_count_runs_of_another_compute_target)
{
	char db_path[PATH_MAX];
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct run_submission sub = plain_sub();
	struct store_run r = { 0 };
	int64_t other = 0, local, id = 0;

	/* There is no API to add a target yet: add one as a later mlfs would. */
	ws_path(db_path, "workspace.db");
	db_exec_at(db_path, "INSERT INTO compute VALUES "
			    "('other', 'local', 1, 1000, 1000)");
	sub.compute_target = "other";
	cr_assert_eq(store_run_submit(st, exp, &sub, &r), STORE_OK);
	other = r.id;
	store_run_release(&r);
	cr_assert_eq(store_run_claim(st, "other", 64, &SUP, &id), STORE_OK);
	cr_assert_eq(id, other);

	set_max(st, 1);
	local = submit(st, exp, NULL);
	cr_assert_eq(store_run_claim(st, "other", 64, &SUP, &id),
		     STORE_NOT_FOUND, "claimed a run of 'local' for 'other'");
	claim_expect(st, local);
	/* And 'other' is full while 'local' is full too: both at 1. */
	sub.name = "other-2";
	cr_assert_eq(store_run_submit(st, exp, &sub, NULL), STORE_OK);
	cr_assert_eq(store_run_claim(st, "other", 64, &SUP, &id),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_run_finish(st, local, RUN_COMPLETED, 1, 0, NULL),
		     STORE_OK);
	cr_assert_eq(store_run_claim(st, "other", 64, &SUP, &id),
		     STORE_NOT_FOUND,
		     "'other' got a slot when a 'local' run ended");
	store_close(st);
}

/* ---- many claimers in many processes ------------------------------------ */

#define CLAIMERS 4
#define CLAIM_LIMIT 2
#define CLAIM_RUNS 96

struct claim_page {
	int active;		/* claimed and not yet finished, as workers count */
	int peak;		/* the most ever seen in @active */
	int over_counter;	/* times @active went over the limit */
	int over_db;		/* times store_run_list_active saw too many */
	int claims[CLAIM_RUNS];	/* per run: how many times it was claimed */
};

static void note_peak(struct claim_page *pg, int n)
{
	int peak = __atomic_load_n(&pg->peak, __ATOMIC_SEQ_CST);

	while (n > peak &&
	       !__atomic_compare_exchange_n(&pg->peak, &peak, n, 0,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
}

static int count_active(void *ctx, const struct store_active_run *r)
{
	(void)r;
	++*(int *)ctx;
	return 0;
}

static int count_queued(void *ctx, const struct store_run_entry *r,
			enum run_status status, const char *experiment)
{
	(void)r;
	(void)experiment;
	*(int *)ctx += status == RUN_QUEUED;
	return 0;
}

/*
 * One supervisor-like process: claim while anything is queued, hold the
 * run a moment, then carry it to Completed. Exit status 0, or a code
 * saying what failed.
 */
static int claimer(struct claim_page *pg, int64_t first_id, unsigned seed)
{
	struct store *st = NULL;
	struct proc_id me;
	char boot[40];
	int ret = 0;

	if (store_open(ws_root, 0, &st, NULL, 0) != STORE_OK)
		return 10;
	if (proc_id_of(getpid(), &me, boot) != 0) {
		ret = 11;
		goto out;
	}
	for (;;) {
		int64_t id = 0;
		int rc = store_run_claim(st, "local", 64, &me, &id);
		int n;

		if (rc == STORE_NOT_FOUND) {
			int queued = 0;

			if (store_compute_queue(st, "local", count_queued,
						&queued) != STORE_OK) {
				ret = 12;
				break;
			}
			if (!queued)
				break;
			usleep(300);
			continue;
		}
		if (rc != STORE_OK || id < first_id ||
		    id >= first_id + CLAIM_RUNS) {
			ret = 13;
			break;
		}
		__atomic_add_fetch(&pg->claims[id - first_id], 1,
				   __ATOMIC_SEQ_CST);
		/* Counted after the claim, uncounted before the finish: never
		 * more than the runs really active. */
		n = __atomic_add_fetch(&pg->active, 1, __ATOMIC_SEQ_CST);
		if (n > CLAIM_LIMIT)
			__atomic_add_fetch(&pg->over_counter, 1,
					   __ATOMIC_SEQ_CST);
		note_peak(pg, n);
		n = 0;
		if (store_run_list_active(st, count_active, &n) != STORE_OK) {
			ret = 14;
			break;
		}
		if (n > CLAIM_LIMIT)
			__atomic_add_fetch(&pg->over_db, 1, __ATOMIC_SEQ_CST);
		seed = seed * 1103515245u + 12345u;
		usleep(500 + (seed >> 16) % 2000);
		if (store_run_started(st, id, &me) != STORE_OK ||
		    store_run_finalizing(st, id) != STORE_OK) {
			ret = 15;
			break;
		}
		__atomic_sub_fetch(&pg->active, 1, __ATOMIC_SEQ_CST);
		if (store_run_finish(st, id, RUN_COMPLETED, 1, 0, NULL) !=
		    STORE_OK) {
			ret = 16;
			break;
		}
	}
out:
	store_close(st);
	return ret;
}

Test(lifecycle, claim_never_exceeds_the_limit_across_processes,
     .timeout = 240)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct claim_page *pg;
	pid_t pids[CLAIMERS];
	int64_t first = 0;

	for (int i = 0; i < CLAIM_RUNS; i++) {
		int64_t id = submit(st, exp, NULL);

		if (i == 0)
			first = id;
		cr_assert_eq(id, first + i, "run ids are not consecutive");
	}
	set_max(st, CLAIM_LIMIT);
	store_close(st);

	pg = mmap(NULL, sizeof(*pg), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(pg, MAP_FAILED);
	memset(pg, 0, sizeof(*pg));
	for (int i = 0; i < CLAIMERS; i++) {
		pids[i] = fork();
		cr_assert_geq(pids[i], 0);
		if (pids[i] == 0)
			_exit(claimer(pg, first, 77u * (unsigned)i + 1));
	}
	for (int i = 0; i < CLAIMERS; i++) {
		int ws = 0;

		cr_assert_eq(waitpid(pids[i], &ws, 0), pids[i]);
		cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
			  "claimer %d failed (status 0x%x)", i, ws);
	}
	cr_assert_eq(pg->over_counter, 0,
		     "%d claims made more than %d runs active", pg->over_counter,
		     CLAIM_LIMIT);
	cr_assert_eq(pg->over_db, 0,
		     "store_run_list_active saw more than %d active runs %d "
		     "times", CLAIM_LIMIT, pg->over_db);
	cr_assert_eq(pg->peak, CLAIM_LIMIT,
		     "the claimers never ran %d runs at once (peak %d): the "
		     "test did not exercise the limit", CLAIM_LIMIT, pg->peak);
	for (int i = 0; i < CLAIM_RUNS; i++)
		cr_assert_eq(pg->claims[i], 1, "run %lld was claimed %d times",
			     (long long)(first + i), pg->claims[i]);
	st = ws_open();
	for (int i = 0; i < CLAIM_RUNS; i++)
		assert_status(st, first + i, RUN_COMPLETED);
	store_close(st);
	munmap(pg, sizeof(*pg));
}

/* The same with threads sharing one struct store (its connection pool). */
struct claim_thread {
	struct store *st;
	struct claim_page *pg;
	int64_t first_id;
	unsigned seed;
	int ret;
};

static void *claim_thread_main(void *arg)
{
	struct claim_thread *t = arg;
	struct proc_id me = { 7000 + (int64_t)t->seed, 1, BOOT };

	for (;;) {
		int64_t id = 0;
		int rc = store_run_claim(t->st, "local", 64, &me, &id);
		int n, queued = 0;

		if (rc == STORE_NOT_FOUND) {
			if (store_compute_queue(t->st, "local", count_queued,
						&queued) != STORE_OK) {
				t->ret = 12;
				break;
			}
			if (!queued)
				break;
			usleep(300);
			continue;
		}
		if (rc != STORE_OK || id < t->first_id ||
		    id >= t->first_id + CLAIM_RUNS) {
			t->ret = 13;
			break;
		}
		__atomic_add_fetch(&t->pg->claims[id - t->first_id], 1,
				   __ATOMIC_SEQ_CST);
		n = __atomic_add_fetch(&t->pg->active, 1, __ATOMIC_SEQ_CST);
		if (n > CLAIM_LIMIT)
			__atomic_add_fetch(&t->pg->over_counter, 1,
					   __ATOMIC_SEQ_CST);
		note_peak(t->pg, n);
		t->seed = t->seed * 1103515245u + 12345u;
		usleep(300 + (t->seed >> 16) % 1000);
		__atomic_sub_fetch(&t->pg->active, 1, __ATOMIC_SEQ_CST);
		if (store_run_finish(t->st, id, RUN_COMPLETED, 1, 0, NULL) !=
		    STORE_OK) {
			t->ret = 16;
			break;
		}
	}
	return NULL;
}

Test(lifecycle, claim_never_exceeds_the_limit_across_threads,
     .timeout = 240)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	static struct claim_page pg;
	struct claim_thread t[CLAIMERS];
	pthread_t tid[CLAIMERS];
	int64_t first = 0;

	memset(&pg, 0, sizeof(pg));
	for (int i = 0; i < CLAIM_RUNS; i++) {
		int64_t id = submit(st, exp, NULL);

		if (i == 0)
			first = id;
		cr_assert_eq(id, first + i, "run ids are not consecutive");
	}
	set_max(st, CLAIM_LIMIT);
	for (int i = 0; i < CLAIMERS; i++) {
		t[i] = (struct claim_thread){ st, &pg, first, (unsigned)i + 1,
					      0 };
		cr_assert_eq(pthread_create(&tid[i], NULL, claim_thread_main,
					    &t[i]), 0);
	}
	for (int i = 0; i < CLAIMERS; i++) {
		cr_assert_eq(pthread_join(tid[i], NULL), 0);
		cr_assert_eq(t[i].ret, 0, "thread %d failed with %d", i,
			     t[i].ret);
	}
	cr_assert_eq(pg.over_counter, 0,
		     "%d claims made more than %d runs active", pg.over_counter,
		     CLAIM_LIMIT);
	cr_assert_eq(pg.peak, CLAIM_LIMIT, "peak %d", pg.peak);
	for (int i = 0; i < CLAIM_RUNS; i++) {
		cr_assert_eq(pg.claims[i], 1, "run %lld was claimed %d times",
			     (long long)(first + i), pg.claims[i]);
		assert_status(st, first + i, RUN_COMPLETED);
	}
	store_close(st);
}

/* ---- store_run_started, _finalizing, _finish -------------------------- */

Test(lifecycle, started_moves_preparing_to_running_with_the_process)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id = run_in(st, exp, RUN_PREPARING);
	int64_t before = now_ms();
	struct store_run r;

	cr_assert_eq(store_run_started(st, id, &PROC), STORE_OK);
	r = get_run(st, id);
	cr_assert_eq(r.status, RUN_RUNNING);
	cr_assert_geq(r.started_ms, before);
	cr_assert_leq(r.started_ms, now_ms());
	cr_assert_eq(r.ended_ms, -1);
	cr_assert_eq(r.supervisor_pid, SUP.pid);
	store_run_release(&r);
	store_close(st);
}

Test(lifecycle, started_is_denied_unless_the_run_is_preparing)
{
	static const enum run_status from[] = {
		RUN_QUEUED,	     RUN_RUNNING,   RUN_FINALIZING,
		RUN_CANCEL_REQUESTED, RUN_COMPLETED, RUN_FAILED,
		RUN_CANCELED,
	};
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");

	set_max(st, 100);
	for (size_t i = 0; i < sizeof(from) / sizeof(*from); i++) {
		int64_t id = run_in(st, exp, from[i]);

		cr_assert_eq(store_run_started(st, id, &PROC), STORE_DENIED,
			     "started from %s", run_status_name(from[i]));
		assert_status(st, id, from[i]);
		if (from[i] == RUN_QUEUED)
			cr_assert_eq(store_run_cancel(st, id, NULL), STORE_OK);
	}
	cr_assert_eq(store_run_started(st, 9999, &PROC), STORE_NOT_FOUND);
	store_close(st);
}

Test(lifecycle, started_is_denied_after_a_cancel_while_preparing)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id = run_in(st, exp, RUN_PREPARING);
	enum run_status now = RUN_NOT_STARTED;
	struct store_run r;

	cr_assert_eq(store_run_cancel(st, id, &now), STORE_OK);
	cr_assert_eq(now, RUN_CANCEL_REQUESTED);
	cr_assert_eq(store_run_started(st, id, &PROC), STORE_DENIED);
	r = get_run(st, id);
	cr_assert_eq(r.status, RUN_CANCEL_REQUESTED);
	cr_assert_eq(r.started_ms, -1, "a denied start set started_ms");
	store_run_release(&r);
	/* The supervisor then ends it. */
	cr_assert_eq(store_run_finish(st, id, RUN_CANCELED, 0, 0, NULL),
		     STORE_OK);
	assert_status(st, id, RUN_CANCELED);
	store_close(st);
}

Test(lifecycle, finalizing_follows_running_or_cancel_requested_only)
{
	static const enum run_status denied[] = {
		RUN_QUEUED, RUN_PREPARING, RUN_FINALIZING, RUN_COMPLETED,
		RUN_FAILED, RUN_CANCELED,
	};
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id;

	set_max(st, 100);
	id = run_in(st, exp, RUN_RUNNING);
	cr_assert_eq(store_run_finalizing(st, id), STORE_OK);
	assert_status(st, id, RUN_FINALIZING);
	id = run_in(st, exp, RUN_CANCEL_REQUESTED);
	cr_assert_eq(store_run_finalizing(st, id), STORE_OK);
	assert_status(st, id, RUN_FINALIZING);
	for (size_t i = 0; i < sizeof(denied) / sizeof(*denied); i++) {
		id = run_in(st, exp, denied[i]);
		cr_assert_eq(store_run_finalizing(st, id), STORE_DENIED,
			     "finalizing from %s", run_status_name(denied[i]));
		assert_status(st, id, denied[i]);
		if (denied[i] == RUN_QUEUED)
			cr_assert_eq(store_run_cancel(st, id, NULL), STORE_OK);
	}
	store_close(st);
}

Test(lifecycle, finish_stores_exit_code_error_and_end_time)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id = run_in(st, exp, RUN_FINALIZING);
	int64_t before = now_ms();
	struct store_run r;

	cr_assert_eq(store_run_finish(st, id, RUN_FAILED, 1, 137,
				      "killed by signal 9"), STORE_OK);
	r = get_run(st, id);
	cr_assert_eq(r.status, RUN_FAILED);
	cr_assert(r.has_exit_code);
	cr_assert_eq(r.exit_code, 137);
	cr_assert_str_eq(r.error, "killed by signal 9");
	cr_assert_geq(r.ended_ms, before);
	cr_assert_leq(r.ended_ms, now_ms());
	cr_assert_geq(r.ended_ms, r.started_ms);
	store_run_release(&r);
	store_close(st);
}

Test(lifecycle, finish_without_exit_code_or_error_leaves_them_unset)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id = run_in(st, exp, RUN_PREPARING);
	struct store_run r;

	cr_assert_eq(store_run_finish(st, id, RUN_COMPLETED, 0, 5, NULL),
		     STORE_OK);
	r = get_run(st, id);
	cr_assert_eq(r.status, RUN_COMPLETED);
	cr_assert_eq(r.has_exit_code, 0);
	cr_assert_null(r.error);
	cr_assert_gt(r.ended_ms, 0);
	store_run_release(&r);
	store_close(st);
}

Test(lifecycle, finish_refuses_a_non_terminal_status)
{
	static const enum run_status bad[] = {
		RUN_NOT_STARTED, RUN_QUEUED,	       RUN_PREPARING,
		RUN_RUNNING,	 RUN_FINALIZING, RUN_CANCEL_REQUESTED,
		RUN_NOT_RESPONDING,
	};
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id = run_in(st, exp, RUN_RUNNING);
	int64_t seq = head(st);
	struct store_run r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_assert_eq(store_run_finish(st, id, bad[i], 1, 0, NULL),
			     STORE_INVALID, "finish with %s",
			     run_status_name(bad[i]));
	r = get_run(st, id);
	cr_assert_eq(r.status, RUN_RUNNING);
	cr_assert_eq(r.ended_ms, -1);
	cr_assert_eq(r.has_exit_code, 0);
	store_run_release(&r);
	cr_assert_eq(head(st), seq);
	store_close(st);
}

Test(lifecycle, finish_is_denied_once_the_run_ended)
{
	static const enum run_status ends[] = {
		RUN_COMPLETED, RUN_FAILED, RUN_CANCELED,
	};
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id = run_in(st, exp, RUN_FINALIZING);
	int64_t seq;
	struct store_run r, r2;

	cr_assert_eq(store_run_finish(st, id, RUN_COMPLETED, 1, 0, NULL),
		     STORE_OK);
	r = get_run(st, id);
	seq = head(st);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(store_run_finish(st, id, ends[i], 1, 9, "again"),
			     STORE_DENIED, "second finish with %s",
			     run_status_name(ends[i]));
	r2 = get_run(st, id);
	cr_assert_eq(r2.status, RUN_COMPLETED);
	cr_assert_eq(r2.exit_code, 0);
	cr_assert_null(r2.error);
	cr_assert_eq(r2.ended_ms, r.ended_ms);
	cr_assert_eq(r2.updated_ms, r.updated_ms);
	cr_assert_eq(head(st), seq, "a denied finish added change rows");
	store_run_release(&r);
	store_run_release(&r2);
	cr_assert_eq(store_run_finish(st, 9999, RUN_COMPLETED, 0, 0, NULL),
		     STORE_NOT_FOUND);
	store_close(st);
}

/* ---- store_run_cancel ---------------------------------------------------- */

Test(lifecycle, cancel_of_a_queued_run_ends_it_at_once)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id = submit(st, exp, NULL);
	enum run_status now = RUN_NOT_STARTED;
	int64_t before = now_ms();
	struct store_run r;

	cr_assert_eq(store_run_cancel(st, id, &now), STORE_OK);
	cr_assert_eq(now, RUN_CANCELED);
	r = get_run(st, id);
	cr_assert_eq(r.status, RUN_CANCELED);
	cr_assert_geq(r.ended_ms, before);
	cr_assert_eq(r.started_ms, -1);
	store_run_release(&r);
	cr_assert_eq(claim_rc(st, 8, NULL), STORE_NOT_FOUND);
	store_close(st);
}

Test(lifecycle, cancel_of_a_preparing_running_or_finalizing_run_requests_it)
{
	static const enum run_status from[] = {
		RUN_PREPARING, RUN_RUNNING, RUN_FINALIZING,
	};
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");

	set_max(st, 100);
	for (size_t i = 0; i < 3; i++) {
		int64_t id = run_in(st, exp, from[i]);
		enum run_status now = RUN_NOT_STARTED;
		struct store_run r;

		cr_assert_eq(store_run_cancel(st, id, &now), STORE_OK,
			     "cancel from %s", run_status_name(from[i]));
		cr_assert_eq(now, RUN_CANCEL_REQUESTED, "from %s: now %s",
			     run_status_name(from[i]), run_status_name(now));
		r = get_run(st, id);
		cr_assert_eq(r.status, RUN_CANCEL_REQUESTED);
		cr_assert_eq(r.ended_ms, -1, "a requested cancel ended the run");
		cr_assert_eq(r.supervisor_pid, SUP.pid);
		store_run_release(&r);
	}
	store_close(st);
}

Test(lifecycle, cancel_of_an_interactive_run_ends_it_at_once)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id = make_interactive(st, exp, "inter");
	enum run_status now = RUN_NOT_STARTED;
	struct store_run r;

	cr_assert_eq(store_run_cancel(st, id, &now), STORE_OK);
	cr_assert_eq(now, RUN_CANCELED);
	r = get_run(st, id);
	cr_assert_eq(r.status, RUN_CANCELED);
	cr_assert_gt(r.ended_ms, 0);
	store_run_release(&r);
	store_close(st);
}

Test(lifecycle, cancel_leaves_cancel_requested_and_canceled_runs_alone)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t req = run_in(st, exp, RUN_CANCEL_REQUESTED);
	int64_t done = run_in(st, exp, RUN_CANCELED);
	int64_t ids[2] = { req, done };
	enum run_status want[2] = { RUN_CANCEL_REQUESTED, RUN_CANCELED };

	for (int i = 0; i < 2; i++) {
		struct store_run before = get_run(st, ids[i]), after;
		enum run_status now = RUN_NOT_STARTED;
		int64_t seq = head(st);
		int nev = event_count(st);

		cr_assert_eq(store_run_cancel(st, ids[i], &now), STORE_OK);
		cr_assert_eq(now, want[i]);
		after = get_run(st, ids[i]);
		cr_assert_eq(after.status, want[i]);
		cr_assert_eq(after.updated_ms, before.updated_ms);
		cr_assert_eq(after.ended_ms, before.ended_ms);
		cr_assert_eq(head(st), seq, "a no-op cancel added change rows");
		cr_assert_eq(event_count(st), nev,
			     "a no-op cancel added events");
		store_run_release(&before);
		store_run_release(&after);
	}
	store_close(st);
}

Test(lifecycle, cancel_of_a_completed_or_failed_run_is_denied)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t ids[3];
	enum run_status want[3] = { RUN_COMPLETED, RUN_FAILED, RUN_COMPLETED };

	ids[0] = run_in(st, exp, RUN_COMPLETED);
	ids[1] = run_in(st, exp, RUN_FAILED);
	ids[2] = make_interactive(st, exp, "inter");
	cr_assert_eq(store_run_set_status(st, ids[2], RUN_COMPLETED), STORE_OK);
	for (int i = 0; i < 3; i++) {
		enum run_status now = RUN_NOT_STARTED;
		int64_t seq = head(st);

		cr_assert_eq(store_run_cancel(st, ids[i], &now), STORE_DENIED,
			     "cancel of a %s run", run_status_name(want[i]));
		cr_assert_eq(now, want[i], "*now is %s, expected %s",
			     run_status_name(now), run_status_name(want[i]));
		assert_status(st, ids[i], want[i]);
		cr_assert_eq(head(st), seq);
	}
	store_close(st);
}

Test(lifecycle, cancel_of_a_missing_run_is_not_found)
{
	struct store *st = ws_open();
	enum run_status now = RUN_FAILED;

	cr_assert_eq(store_run_cancel(st, 4242, &now), STORE_NOT_FOUND);
	cr_assert_eq(now, RUN_FAILED, "*now written for a missing run");
	store_close(st);
}

/* ---- store_run_list_active ---------------------------------------------- */

#define MAX_ACTIVE 16

struct active_list {
	size_t n;
	struct {
		int64_t id;
		char name[64];
		enum run_status status;
		int64_t sup_pid, sup_start, proc_pid, proc_start;
		char sup_boot[48], proc_boot[48];
	} r[MAX_ACTIVE];
};

static int collect_active(void *ctx, const struct store_active_run *a)
{
	struct active_list *l = ctx;

	if (l->n >= MAX_ACTIVE)
		return 1;
	l->r[l->n].id = a->id;
	snprintf(l->r[l->n].name, sizeof(l->r[0].name), "%s", a->name);
	l->r[l->n].status = a->status;
	l->r[l->n].sup_pid = a->supervisor.pid;
	l->r[l->n].sup_start = a->supervisor.start;
	l->r[l->n].proc_pid = a->process.pid;
	l->r[l->n].proc_start = a->process.start;
	snprintf(l->r[l->n].sup_boot, sizeof(l->r[0].sup_boot), "%s",
		 a->supervisor.boot_id ? a->supervisor.boot_id : "(null)");
	snprintf(l->r[l->n].proc_boot, sizeof(l->r[0].proc_boot), "%s",
		 a->process.boot_id ? a->process.boot_id : "(null)");
	l->n++;
	return 0;
}

Test(lifecycle, list_active_lists_exactly_the_active_runs_and_their_processes)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct active_list l = { 0 };
	int64_t prep, run, fin, creq;

	set_max(st, 100);
	make_interactive(st, exp, "inter");
	run_in(st, exp, RUN_COMPLETED);
	run_in(st, exp, RUN_FAILED);
	run_in(st, exp, RUN_CANCELED);
	prep = run_in(st, exp, RUN_PREPARING);
	run = run_in(st, exp, RUN_RUNNING);
	fin = run_in(st, exp, RUN_FINALIZING);
	creq = run_in(st, exp, RUN_CANCEL_REQUESTED);
	submit(st, exp, "still-queued");

	cr_assert_eq(store_run_list_active(st, collect_active, &l), STORE_OK);
	cr_assert_eq(l.n, 4, "%zu active runs listed, expected 4", l.n);
	cr_assert_eq(l.r[0].id, prep);
	cr_assert_eq(l.r[0].status, RUN_PREPARING);
	cr_assert_eq(l.r[1].id, run);
	cr_assert_eq(l.r[1].status, RUN_RUNNING);
	cr_assert_eq(l.r[2].id, fin);
	cr_assert_eq(l.r[2].status, RUN_FINALIZING);
	cr_assert_eq(l.r[3].id, creq);
	cr_assert_eq(l.r[3].status, RUN_CANCEL_REQUESTED);
	for (size_t i = 0; i < 4; i++) {
		struct store_run r = get_run(st, l.r[i].id);

		cr_assert_str_eq(l.r[i].name, r.name);
		store_run_release(&r);
		cr_assert_eq(l.r[i].sup_pid, SUP.pid);
		cr_assert_eq(l.r[i].sup_start, SUP.start);
		cr_assert_str_eq(l.r[i].sup_boot, BOOT);
	}
	/* Not started yet: no process. */
	cr_assert_eq(l.r[0].proc_pid, 0);
	for (size_t i = 1; i < 4; i++) {
		cr_assert_eq(l.r[i].proc_pid, PROC.pid);
		cr_assert_eq(l.r[i].proc_start, PROC.start);
		cr_assert_str_eq(l.r[i].proc_boot, BOOT);
	}
	store_close(st);
}

Test(lifecycle, list_active_stops_when_the_callback_says_so)
{
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	struct active_list l = { 0 };

	set_max(st, 100);
	for (int i = 0; i < MAX_ACTIVE + 3; i++)
		run_in(st, exp, RUN_PREPARING);
	cr_assert_eq(store_run_list_active(st, collect_active, &l), STORE_OK);
	cr_assert_eq(l.n, MAX_ACTIVE);
	store_close(st);
}

/* ---- events and the change feed ----------------------------------------- */

/* Asserts the last @n events of run @name are exactly @want, in order. */
static void assert_transitions(struct store *st, const char *name,
			       const char *const *want, size_t n)
{
	char prefix[128];
	const char *got[MAX_LINES];
	size_t k = 0;
	struct lines l;

	snprintf(prefix, sizeof(prefix), "experiments/exp/runs/%s ", name);
	events(st, &l);
	for (size_t i = 0; i < l.n; i++)
		if (strncmp(l.line[i], prefix, strlen(prefix)) == 0 &&
		    strstr(l.line[i], " -> "))
			got[k++] = l.line[i] + strlen(prefix);
	cr_assert_eq(k, n, "%zu transition lines for %s, expected %zu", k,
		     name, n);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(got[i], want[i]);
	lines_release(&l);
}

Test(lifecycle, every_transition_adds_an_events_line_and_a_change_row)
{
	static const char *const happy[] = {
		"Queued -> Preparing", "Preparing -> Running",
		"Running -> Finalizing", "Finalizing -> Completed",
	};
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id = submit(st, exp, "happy");
	int64_t seq = head(st);
	struct changes ch;
	struct store_experiment e = { 0 };
	int64_t exp_updated;

	cr_assert_eq(store_experiment_get(st, "exp", &e), STORE_OK);
	exp_updated = e.updated_ms;
	store_experiment_release(&e);
	usleep(5000);
	claim_expect(st, id);
	changes_after(st, seq, &ch);
	cr_assert_eq(run_changes(&ch, id), 1, "claim");
	for (size_t i = 0; i < ch.n; i++)
		if (ch.c[i].kind == CHANGE_RUN)
			cr_assert_eq(ch.c[i].experiment_id, exp);
	seq = head(st);
	cr_assert_eq(store_run_started(st, id, &PROC), STORE_OK);
	changes_after(st, seq, &ch);
	cr_assert_eq(run_changes(&ch, id), 1, "started");
	seq = head(st);
	cr_assert_eq(store_run_finalizing(st, id), STORE_OK);
	changes_after(st, seq, &ch);
	cr_assert_eq(run_changes(&ch, id), 1, "finalizing");
	seq = head(st);
	cr_assert_eq(store_run_finish(st, id, RUN_COMPLETED, 1, 0, NULL),
		     STORE_OK);
	changes_after(st, seq, &ch);
	cr_assert_eq(run_changes(&ch, id), 1, "finish");
	assert_transitions(st, "happy", happy, 4);
	/* Transitions touch the experiment too. */
	cr_assert_eq(store_experiment_get(st, "exp", &e), STORE_OK);
	cr_assert_gt(e.updated_ms, exp_updated);
	store_experiment_release(&e);
	store_close(st);
}

Test(lifecycle, cancel_transitions_add_events_lines_and_change_rows)
{
	static const char *const canceled[] = {
		"Queued -> Preparing", "Preparing -> Running",
		"Running -> CancelRequested", "CancelRequested -> Finalizing",
		"Finalizing -> Canceled",
	};
	static const char *const early[] = { "Queued -> Canceled" };
	static const char *const inter[] = { "Running -> Canceled" };
	struct store *st = ws_open();
	int64_t exp = make_exp(st, "exp");
	int64_t id = submit(st, exp, "c");
	int64_t q, i, seq;
	struct changes ch;

	claim_expect(st, id);
	cr_assert_eq(store_run_started(st, id, &PROC), STORE_OK);
	seq = head(st);
	cr_assert_eq(store_run_cancel(st, id, NULL), STORE_OK);
	changes_after(st, seq, &ch);
	cr_assert_eq(run_changes(&ch, id), 1, "cancel request");
	cr_assert_eq(store_run_finalizing(st, id), STORE_OK);
	cr_assert_eq(store_run_finish(st, id, RUN_CANCELED, 1, -15, NULL),
		     STORE_OK);
	assert_transitions(st, "c", canceled, 5);

	q = submit(st, exp, "q");
	seq = head(st);
	cr_assert_eq(store_run_cancel(st, q, NULL), STORE_OK);
	changes_after(st, seq, &ch);
	cr_assert_eq(run_changes(&ch, q), 1, "queued cancel");
	assert_transitions(st, "q", early, 1);

	i = make_interactive(st, exp, "i");
	seq = head(st);
	cr_assert_eq(store_run_cancel(st, i, NULL), STORE_OK);
	changes_after(st, seq, &ch);
	cr_assert_eq(run_changes(&ch, i), 1, "interactive cancel");
	assert_transitions(st, "i", inter, 1);
	store_close(st);
}

/* ---- compute targets ----------------------------------------------------- */

struct compute_names {
	size_t n;
	char name[8][32];
	int max[8];
};

static int collect_compute(void *ctx, const struct store_compute *c)
{
	struct compute_names *l = ctx;

	if (l->n < 8) {
		snprintf(l->name[l->n], sizeof(l->name[0]), "%s", c->name);
		l->max[l->n++] = c->max_concurrent;
	}
	return 0;
}

Test(lifecycle, compute_local_is_always_present)
{
	struct store *st = ws_open();
	struct store_compute c = { 0 };
	struct compute_names l = { 0 };

	cr_assert_eq(store_compute_get(st, COMPUTE_LOCAL, &c), STORE_OK);
	cr_assert_str_eq(c.name, "local");
	cr_assert_str_eq(c.type, "local");
	cr_assert_eq(c.max_concurrent, 0);
	cr_assert_gt(c.created_ms, 0);
	cr_assert_geq(c.updated_ms, c.created_ms);
	store_compute_release(&c);
	cr_assert_eq(store_compute_list(st, collect_compute, &l), STORE_OK);
	cr_assert_eq(l.n, 1);
	cr_assert_str_eq(l.name[0], "local");
	store_close(st);
	/* Reopening does not add a second one. */
	st = ws_open();
	l.n = 0;
	cr_assert_eq(store_compute_list(st, collect_compute, &l), STORE_OK);
	cr_assert_eq(l.n, 1);
	store_close(st);
}

Test(lifecycle, compute_set_max_changes_the_limit_and_adds_a_change_row)
{
	struct store *st = ws_open();
	struct store_compute c = { 0 };
	struct compute_names l = { 0 };
	int64_t seq = head(st), before;
	struct changes ch;
	int found = 0;

	cr_assert_eq(store_compute_get(st, "local", &c), STORE_OK);
	before = c.updated_ms;
	store_compute_release(&c);
	usleep(3000);
	cr_assert_eq(store_compute_set_max(st, "local", 3), STORE_OK);
	cr_assert_eq(store_compute_get(st, "local", &c), STORE_OK);
	cr_assert_eq(c.max_concurrent, 3);
	cr_assert_gt(c.updated_ms, before);
	store_compute_release(&c);
	cr_assert_eq(store_compute_list(st, collect_compute, &l), STORE_OK);
	cr_assert_eq(l.max[0], 3);
	changes_after(st, seq, &ch);
	for (size_t i = 0; i < ch.n; i++)
		found += ch.c[i].kind == CHANGE_COMPUTE;
	cr_assert_eq(found, 1);
	/* Setting the same value again is fine; 0 goes back to "cpus". */
	cr_assert_eq(store_compute_set_max(st, "local", 3), STORE_OK);
	cr_assert_eq(store_compute_set_max(st, "local", 0), STORE_OK);
	cr_assert_eq(store_compute_get(st, "local", &c), STORE_OK);
	cr_assert_eq(c.max_concurrent, 0);
	store_compute_release(&c);
	store_close(st);
}

Test(lifecycle, compute_set_max_refuses_a_negative_limit)
{
	struct store *st = ws_open();
	struct store_compute c = { 0 };
	int64_t seq;

	set_max(st, 4);
	seq = head(st);
	cr_assert_eq(store_compute_set_max(st, "local", -1), STORE_INVALID);
	cr_assert_eq(store_compute_set_max(st, "local", INT_MIN),
		     STORE_INVALID);
	cr_assert_eq(store_compute_get(st, "local", &c), STORE_OK);
	cr_assert_eq(c.max_concurrent, 4);
	store_compute_release(&c);
	cr_assert_eq(head(st), seq);
	store_close(st);
}

Test(lifecycle, compute_unknown_name_is_not_found)
{
	struct store *st = ws_open();
	struct store_compute c = { 0 };
	int64_t seq = head(st);

	cr_assert_eq(store_compute_get(st, "gpu", &c), STORE_NOT_FOUND);
	cr_assert_eq(store_compute_get(st, "", &c), STORE_NOT_FOUND);
	cr_assert_eq(store_compute_set_max(st, "gpu", 2), STORE_NOT_FOUND);
	cr_assert_eq(head(st), seq, "a refused set_max added a change row");
	store_close(st);
}

struct queue_list {
	size_t n;
	int64_t id[16];
	enum run_status status[16];
	char exp[16][32];
};

static int collect_queue(void *ctx, const struct store_run_entry *r,
			 enum run_status status, const char *experiment)
{
	struct queue_list *l = ctx;

	if (l->n < 16) {
		l->id[l->n] = r->id;
		l->status[l->n] = status;
		snprintf(l->exp[l->n++], sizeof(l->exp[0]), "%s", experiment);
	}
	return 0;
}

Test(lifecycle, compute_queue_lists_queued_and_active_runs_oldest_first)
{
	struct store *st = ws_open();
	int64_t a = make_exp(st, "a"), b = make_exp(st, "b");
	struct queue_list l = { 0 };
	int64_t run, q1, q2;

	set_max(st, 1);
	make_interactive(st, a, "inter");
	run_in(st, a, RUN_COMPLETED);
	run = run_in(st, b, RUN_RUNNING);
	q1 = submit(st, a, NULL);
	q2 = submit(st, b, NULL);
	cr_assert_eq(store_compute_queue(st, "local", collect_queue, &l),
		     STORE_OK);
	cr_assert_eq(l.n, 3);
	cr_assert_eq(l.id[0], run);
	cr_assert_eq(l.status[0], RUN_RUNNING);
	cr_assert_str_eq(l.exp[0], "b");
	cr_assert_eq(l.id[1], q1);
	cr_assert_eq(l.status[1], RUN_QUEUED);
	cr_assert_str_eq(l.exp[1], "a");
	cr_assert_eq(l.id[2], q2);
	cr_assert_str_eq(l.exp[2], "b");
	store_close(st);
}

/* ---- migration ----------------------------------------------------------- */

Test(lifecycle, workspace_from_schema_1_gets_local_compute_and_runs_work)
{
	char dir[PATH_MAX], db_path[PATH_MAX];
	struct store_compute c = { 0 };
	struct store_experiment e = { 0 };
	struct store_run r = { 0 };
	struct store *st = NULL;
	char err[512] = "";
	int64_t id, old_id;
	enum run_status now;
	int rc;

	ws_path(dir, "v1");
	cr_assert_eq(mkdir(dir, 0755), 0);
	ws_path(db_path, "v1/workspace.db");
	cr_assert_eq(store_migrate_to(db_path, 1), STORE_OK);
	/* An experiment with an interactive run, as schema 1 stored it. */
	db_exec_at(db_path,
		   "INSERT INTO experiment (name, created_ms, updated_ms, "
		   "next_number) VALUES ('old', 1000, 2000, 2);"
		   "INSERT INTO run (name, experiment_id, number, status, "
		   "interactive, created_ms, started_ms, updated_ms) VALUES "
		   "('old-run', 1, 1, 3, 1, 1000, 1000, 2000);");

	rc = store_open(dir, 0, &st, err, sizeof(err));
	cr_assert_eq(rc, STORE_OK, "store_open: %s: %s", store_strerror(rc),
		     err);
	cr_assert_eq(store_compute_get(st, "local", &c), STORE_OK,
		     "no 'local' compute after migrating from schema 1");
	cr_assert_str_eq(c.type, "local");
	cr_assert_eq(c.max_concurrent, 0);
	cr_assert_gt(c.created_ms, 0);
	store_compute_release(&c);

	cr_assert_eq(store_run_get_by_name(st, "old-run", &r), STORE_OK);
	old_id = r.id;
	cr_assert_null(r.compute_target);
	cr_assert_null(r.snapshot);
	cr_assert_null(r.config);
	cr_assert_eq(r.max_duration_s, 0);
	cr_assert_eq(r.supervisor_pid, 0);
	store_run_release(&r);

	cr_assert_eq(store_experiment_get(st, "old", &e), STORE_OK);
	set_max(st, 1);
	id = submit(st, e.id, NULL);
	r = get_run(st, id);
	cr_assert_eq(r.number, 2);
	store_run_release(&r);
	store_experiment_release(&e);
	/* The old interactive run does not hold the only slot. */
	claim_expect(st, id);
	cr_assert_eq(store_run_started(st, id, &PROC), STORE_OK);
	cr_assert_eq(store_run_finalizing(st, id), STORE_OK);
	cr_assert_eq(store_run_finish(st, id, RUN_COMPLETED, 1, 0, NULL),
		     STORE_OK);
	assert_status(st, id, RUN_COMPLETED);
	cr_assert_eq(store_run_cancel(st, old_id, &now), STORE_OK);
	cr_assert_eq(now, RUN_CANCELED);
	cr_assert_eq(store_integrity_check(st), STORE_OK);
	store_close(st);
}

/* ---- proc_id_of / proc_id_alive ----------------------------------------- */

static void read_boot_id(char out[64])
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");

	cr_assert_not_null(f);
	cr_assert_not_null(fgets(out, 64, f));
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

Test(lifecycle, proc_id_of_self_is_alive_in_this_boot)
{
	struct proc_id me = { 0 };
	char boot[40], want[64];

	cr_assert_eq(proc_id_of(getpid(), &me, boot), 0);
	cr_assert_eq(me.pid, getpid());
	cr_assert_gt(me.start, 0);
	cr_assert_eq(me.boot_id, boot);
	read_boot_id(want);
	cr_assert_str_eq(boot, want);
	cr_assert_eq(strlen(boot), 36);
	cr_assert_eq(proc_id_alive(&me), 1);
}

Test(lifecycle, proc_id_of_a_missing_process_is_esrch)
{
	struct proc_id p = { 0 };
	char boot[40];

	cr_assert_eq(proc_id_of(INT32_MAX, &p, boot), -ESRCH);
}

Test(lifecycle, proc_id_alive_refuses_pid_zero_and_negative)
{
	struct proc_id me = { 0 };
	char boot[40];

	cr_assert_eq(proc_id_of(getpid(), &me, boot), 0);
	me.pid = 0;
	cr_assert_eq(proc_id_alive(&me), 0);
	me.pid = -1;
	cr_assert_eq(proc_id_alive(&me), 0);
}

/* A child blocked on a pipe until the returned fd is closed. */
static pid_t blocked_child(int *release_fd, const char *comm)
{
	int go[2], ready[2];
	char c = 0;
	pid_t pid;

	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(ready), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(go[1]);
		close(ready[0]);
		if (comm)
			prctl(PR_SET_NAME, comm, 0, 0, 0);
		if (write(ready[1], "x", 1) != 1)
			_exit(2);
		while (read(go[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(go[0]);
	close(ready[1]);
	cr_assert_eq(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*release_fd = go[1];
	return pid;
}

Test(lifecycle, proc_id_of_a_reaped_child_is_not_alive)
{
	struct proc_id p = { 0 };
	char boot[40];
	int fd, ws;
	pid_t pid = blocked_child(&fd, NULL);

	cr_assert_eq(proc_id_of(pid, &p, boot), 0);
	cr_assert_eq(proc_id_alive(&p), 1, "a running child is not alive");
	close(fd);
	cr_assert_eq(waitpid(pid, &ws, 0), pid);
	cr_assert_eq(proc_id_alive(&p), 0, "a reaped child is alive");
}

Test(lifecycle, proc_id_of_a_zombie_is_not_alive)
{
	struct proc_id p = { 0 };
	siginfo_t si;
	char boot[40];
	int fd;
	pid_t pid = blocked_child(&fd, NULL);

	cr_assert_eq(proc_id_of(pid, &p, boot), 0);
	cr_assert_eq(proc_id_alive(&p), 1);
	close(fd);
	/* Wait until it has exited, without reaping it. */
	memset(&si, 0, sizeof(si));
	cr_assert_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	cr_assert_eq(si.si_pid, pid);
	cr_assert_eq(proc_id_alive(&p), 0, "a zombie is alive");
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
}

Test(lifecycle, proc_id_with_a_wrong_start_time_is_not_alive)
{
	struct proc_id me = { 0 };
	char boot[40];

	cr_assert_eq(proc_id_of(getpid(), &me, boot), 0);
	me.start++;
	cr_assert_eq(proc_id_alive(&me), 0);
	me.start -= 2;
	cr_assert_eq(proc_id_alive(&me), 0);
}

Test(lifecycle, proc_id_with_a_wrong_boot_id_is_not_alive)
{
	struct proc_id me = { 0 };
	char boot[40];

	cr_assert_eq(proc_id_of(getpid(), &me, boot), 0);
	me.boot_id = "00000000-0000-0000-0000-000000000000";
	cr_assert_eq(proc_id_alive(&me), 0);
	me.boot_id = "";
	cr_assert_eq(proc_id_alive(&me), 0);
	me.boot_id = NULL;
	cr_assert_eq(proc_id_alive(&me), 0);
}

Test(lifecycle, proc_id_of_reads_the_start_time_past_a_tricky_command_name)
{
	struct proc_id plain = { 0 }, tricky = { 0 };
	char boot[40];
	int fd, fd2;
	pid_t pid = blocked_child(&fd, NULL);
	pid_t pid2 = blocked_child(&fd2, "x) Z 1 2 3 (y");

	/* Both children were forked within moments: same start time or
	 * close, and the tricky one must read as alive (not 'Z'). */
	cr_assert_eq(proc_id_of(pid, &plain, boot), 0);
	cr_assert_eq(proc_id_of(pid2, &tricky, boot), 0);
	cr_assert_geq(tricky.start, plain.start);
	cr_assert_leq(tricky.start - plain.start, 100,
		      "start %lld vs %lld: misread field 22",
		      (long long)tricky.start, (long long)plain.start);
	cr_assert_eq(proc_id_alive(&tricky), 1,
		     "a process named 'x) Z ...' is taken for dead");
	close(fd);
	close(fd2);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	cr_assert_eq(waitpid(pid2, NULL, 0), pid2);
}
