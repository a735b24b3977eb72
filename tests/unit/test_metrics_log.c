/*
 * test_metrics_log.c - store_metrics_log(), the multi-metric batch append
 * the run supervisor uses: grouping by metric, steps, summaries, change
 * rows, all-or-none on a bad name or a missing run, and its order against
 * journaled appends.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlfs/store.h"
#include "mlfs/strbuf.h"
#include "ws_fixture.h"

TestSuite(metrics_log, .init = ws_setup, .fini = ws_teardown, .timeout = 60);

/* A point of metric @name whose value is parsed from @text. */
static struct metric_named_point np(const char *name, const char *text,
				    int has_step, int64_t step)
{
	return (struct metric_named_point){
		.name = name,
		.name_len = strlen(name),
		.pt = { strtod(text, NULL), step, has_step, text, strlen(text) },
	};
}

/* Every chunk of a metric: its text concatenated, its steps, its count. */
struct series {
	struct strbuf text;
	int64_t steps[64];
	int64_t n;
	size_t nchunks;
};

static int collect(void *ctx, const struct metric_chunk *c)
{
	struct series *s = ctx;

	cr_assert_eq(c->first_seq, s->n, "chunks are contiguous");
	for (int64_t i = 0; i < c->n && s->n + i < 64; i++)
		s->steps[s->n + i] = c->steps ? c->steps[i] : c->first_seq + i;
	s->n += c->n;
	s->nchunks++;
	return strbuf_add(&s->text, c->text, c->text_len) != 0;
}

static void read_series(struct store *st, int64_t run, const char *name,
			struct store_metric *m, struct series *s)
{
	memset(s, 0, sizeof(*s));
	s->text = (struct strbuf)STRBUF_INIT;
	cr_assert_eq(store_metric_get(st, run, name, m), STORE_OK, "metric %s",
		     name);
	cr_assert_eq(store_metric_read(st, m->id, 0, collect, s), STORE_OK);
}

static int count_metric(void *ctx, const struct store_metric *m)
{
	(void)m;
	++*(size_t *)ctx;
	return 0;
}

static size_t metric_count(struct store *st, int64_t run)
{
	size_t n = 0;

	cr_assert_eq(store_metric_list(st, run, count_metric, &n), STORE_OK);
	return n;
}

static int count_change(void *ctx, const struct store_change *c)
{
	size_t *n = ctx;

	n[c->kind]++;
	return 0;
}

Test(metrics_log, interleaved_metrics_keep_order_steps_and_summaries)
{
	struct store *st = ws_open();
	int64_t run = ws_make_run(st, "exp", "run-1");
	struct metric_named_point pts[] = {
		np("loss", "0.5", 0, 0),   np("acc", "0.1", 1, 10),
		np("loss", "0.25", 0, 0),  np("lr", "1e-3", 0, 0),
		np("acc", "0.7", 1, 20),   np("loss", "0.75", 0, 0),
		np("acc", "0.30", 1, 30),
	};
	struct store_metric m = { 0 };
	struct series s;

	cr_assert_eq(store_metrics_log(st, run, pts, 7, 1000), STORE_OK);
	cr_assert_eq(metric_count(st, run), 3);

	read_series(st, run, "loss", &m, &s);
	cr_assert_str_eq(strbuf_str(&s.text), "0.5\n0.25\n0.75\n");
	cr_assert_eq(s.nchunks, 1, "one chunk per metric per call");
	cr_assert_eq(m.count, 3);
	cr_assert_eq(m.last, 0.75);
	cr_assert_eq(m.min, 0.25);
	cr_assert_eq(m.max, 0.75);
	cr_assert_eq(m.last_step, 2, "default step is the index");
	cr_assert_eq(m.created_ms, 1000);
	cr_assert_eq(m.updated_ms, 1000);
	cr_assert_eq(m.text_bytes, (int64_t)strlen("0.5\n0.25\n0.75\n"));
	strbuf_release(&s.text);
	store_metric_release(&m);

	read_series(st, run, "acc", &m, &s);
	cr_assert_str_eq(strbuf_str(&s.text), "0.1\n0.7\n0.30\n");
	cr_assert_eq(s.steps[0], 10);
	cr_assert_eq(s.steps[1], 20);
	cr_assert_eq(s.steps[2], 30);
	cr_assert_eq(m.last, 0.3);
	cr_assert_eq(m.min, 0.1);
	cr_assert_eq(m.max, 0.7);
	cr_assert_eq(m.last_step, 30);
	strbuf_release(&s.text);
	store_metric_release(&m);

	read_series(st, run, "lr", &m, &s);
	cr_assert_str_eq(strbuf_str(&s.text), "1e-3\n");
	cr_assert_eq(m.count, 1);
	strbuf_release(&s.text);
	store_metric_release(&m);
	store_close(st);
}

Test(metrics_log, second_batch_appends_after_the_first)
{
	struct store *st = ws_open();
	int64_t run = ws_make_run(st, "exp", "run-1");
	struct metric_named_point a[] = { np("loss", "3", 0, 0),
					  np("acc", "1", 1, 5) };
	struct metric_named_point b[] = { np("loss", "-2", 0, 0),
					  np("loss", "4", 1, 100),
					  np("new", "9", 0, 0) };
	struct store_metric m = { 0 };
	struct series s;

	cr_assert_eq(store_metrics_log(st, run, a, 2, 1000), STORE_OK);
	cr_assert_eq(store_metrics_log(st, run, b, 3, 2000), STORE_OK);

	read_series(st, run, "loss", &m, &s);
	cr_assert_str_eq(strbuf_str(&s.text), "3\n-2\n4\n");
	cr_assert_eq(s.nchunks, 2);
	cr_assert_eq(s.steps[0], 0);
	cr_assert_eq(s.steps[1], 1);
	cr_assert_eq(s.steps[2], 100);
	cr_assert_eq(m.count, 3);
	cr_assert_eq(m.min, -2);
	cr_assert_eq(m.max, 4);
	cr_assert_eq(m.last, 4);
	cr_assert_eq(m.last_step, 100);
	cr_assert_eq(m.created_ms, 1000);
	cr_assert_eq(m.updated_ms, 2000);
	strbuf_release(&s.text);
	store_metric_release(&m);
	cr_assert_eq(metric_count(st, run), 3);
	store_close(st);
}

Test(metrics_log, one_change_row_per_metric_touched)
{
	struct store *st = ws_open();
	int64_t run = ws_make_run(st, "exp", "run-1");
	struct metric_named_point pts[] = {
		np("a", "1", 0, 0), np("b", "2", 0, 0), np("a", "3", 0, 0),
		np("b", "4", 0, 0), np("a", "5", 0, 0),
	};
	size_t kinds[8] = { 0 };
	int64_t seq = 0;

	cr_assert_eq(store_changes_head(st, &seq), STORE_OK);
	cr_assert_eq(store_metrics_log(st, run, pts, 5, 1000), STORE_OK);
	cr_assert_eq(store_changes_since(st, &seq, count_change, kinds),
		     STORE_OK);
	cr_assert_eq(kinds[CHANGE_METRIC], 2);
	memset(kinds, 0, sizeof(kinds));
	cr_assert_eq(store_metrics_log(st, run, pts, 5, 2000), STORE_OK);
	cr_assert_eq(store_changes_since(st, &seq, count_change, kinds),
		     STORE_OK);
	cr_assert_eq(kinds[CHANGE_METRIC], 2);
	store_close(st);
}

Test(metrics_log, bad_name_logs_nothing)
{
	struct store *st = ws_open();
	int64_t run = ws_make_run(st, "exp", "run-1");
	struct metric_named_point first[] = { np("loss", "1", 0, 0) };
	struct metric_named_point pts[] = {
		np("loss", "2", 0, 0), np("fresh", "1", 0, 0),
		np("a/b", "3", 0, 0),
	};
	struct metric_named_point empty = np("", "1", 0, 0);
	struct metric_named_point dot = np(".x", "1", 0, 0);
	struct store_metric m = { 0 };

	cr_assert_eq(store_metrics_log(st, run, first, 1, 1000), STORE_OK);
	cr_assert_eq(store_metrics_log(st, run, pts, 3, 2000), STORE_INVALID);
	cr_assert_eq(store_metrics_log(st, run, &empty, 1, 2000),
		     STORE_INVALID);
	cr_assert_eq(store_metrics_log(st, run, &dot, 1, 2000), STORE_INVALID);
	cr_assert_eq(metric_count(st, run), 1, "no metric was made");
	cr_assert_eq(store_metric_get(st, run, "loss", &m), STORE_OK);
	cr_assert_eq(m.count, 1, "no point was logged");
	cr_assert_eq(m.updated_ms, 1000);
	store_metric_release(&m);
	store_close(st);
}

Test(metrics_log, name_is_a_span_not_a_c_string)
{
	struct store *st = ws_open();
	int64_t run = ws_make_run(st, "exp", "run-1");
	struct metric_named_point p = np("loss 0.5 7", "0.5", 1, 7);
	struct store_metric m = { 0 };

	p.name_len = 4;
	cr_assert_eq(store_metrics_log(st, run, &p, 1, 1000), STORE_OK);
	cr_assert_eq(store_metric_get(st, run, "loss", &m), STORE_OK);
	cr_assert_eq(m.count, 1);
	store_metric_release(&m);
	store_close(st);
}

Test(metrics_log, missing_run_is_not_found_and_logs_nothing)
{
	struct store *st = ws_open();
	int64_t run = ws_make_run(st, "exp", "run-1");
	struct metric_named_point p = np("loss", "1", 0, 0);

	cr_assert_eq(store_metrics_log(st, run + 100, &p, 1, 1000),
		     STORE_NOT_FOUND);
	cr_assert_eq(store_metrics_log(st, run, &p, 0, 1000), STORE_OK);
	cr_assert_eq(metric_count(st, run), 0);
	cr_assert_eq(metric_count(st, run + 100), 0);
	store_close(st);
}

Test(metrics_log, many_distinct_names_in_one_call)
{
	enum { NAMES = 3000, PER = 3 };
	struct store *st = ws_open();
	int64_t run = ws_make_run(st, "exp", "run-1");
	struct metric_named_point *pts = calloc(NAMES * PER, sizeof(*pts));
	char (*names)[16] = calloc(NAMES, sizeof(*names));
	static const char *const texts[PER] = { "1", "2", "3" };
	struct store_metric m = { 0 };

	cr_assert(pts && names);
	for (int i = 0; i < NAMES; i++)
		snprintf(names[i], sizeof(names[i]), "m%d", i);
	for (int k = 0; k < PER; k++)
		for (int i = 0; i < NAMES; i++)
			pts[k * NAMES + i] = np(names[i], texts[k], 0, 0);
	cr_assert_eq(store_metrics_log(st, run, pts, NAMES * PER, 1000),
		     STORE_OK);
	cr_assert_eq(metric_count(st, run), NAMES);
	cr_assert_eq(store_metric_get(st, run, "m2999", &m), STORE_OK);
	cr_assert_eq(m.count, PER);
	cr_assert_eq(m.last, 3);
	cr_assert_eq(m.min, 1);
	store_metric_release(&m);
	free(names);
	free(pts);
	store_close(st);
}

Test(metrics_log, journaled_appends_stay_first)
{
	struct store *st = ws_open();
	int64_t run = ws_make_run(st, "exp", "run-1");
	struct metric_named_point p = np("loss", "2", 0, 0);
	struct metric_point j = { 1, 0, 0, "1", 1 };
	struct store_metric m = { 0 };
	struct series s;
	int64_t id = 0;

	cr_assert_eq(store_journal_start(st), STORE_OK);
	cr_assert_eq(store_metric_ensure(st, run, "loss", &id, NULL), STORE_OK);
	cr_assert_eq(store_metric_append(st, id, &j, 1, 1000), STORE_OK);
	cr_assert_eq(store_metrics_log(st, run, &p, 1, 2000), STORE_OK);
	read_series(st, run, "loss", &m, &s);
	cr_assert_str_eq(strbuf_str(&s.text), "1\n2\n");
	strbuf_release(&s.text);
	store_metric_release(&m);
	store_close(st);
}
