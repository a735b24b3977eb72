/*
 * test_ingest.c - following a metrics file into the store: lines split
 * across polls, both forms mixed, malformed lines reported with their
 * numbers, the last unterminated line at finish, over-long lines, a
 * missing file, recovery after a failed store call, and a throughput run
 * of 1,000,000 lines (it prints points/s; thresholds live in scripts/bench).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mlfs/ingest.h"
#include "mlfs/metricproto.h"
#include "mlfs/store.h"
#include "mlfs/strbuf.h"
#include "ws_fixture.h"

TestSuite(ingest, .init = ws_setup, .fini = ws_teardown, .timeout = 120);

/* The malformed lines reported, as "N:reason" lines. */
struct bad_lines {
	struct strbuf sb;
	size_t n;
};

static void on_bad(void *ctx, uint64_t line_no, const char *line, size_t len,
		   const char *reason)
{
	struct bad_lines *b = ctx;
	char num[32];

	(void)line;
	cr_assert_leq(len, METRICPROTO_LINE_MAX);
	snprintf(num, sizeof(num), "%llu:", (unsigned long long)line_no);
	cr_assert_eq(strbuf_addstr(&b->sb, num), 0);
	cr_assert_eq(strbuf_addstr(&b->sb, reason), 0);
	cr_assert_eq(strbuf_addstr(&b->sb, "\n"), 0);
	b->n++;
}

struct fixture {
	struct store *st;
	int64_t run;
	char path[PATH_MAX];
	struct ingest *in;
	struct bad_lines bad;
	uint64_t logged;
};

static void fx_open(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->st = ws_open();
	f->run = ws_make_run(f->st, "exp", "run-1");
	ws_path(f->path, "metrics.txt");
	f->bad.sb = (struct strbuf)STRBUF_INIT;
	cr_assert_eq(ingest_open(f->path, &f->in), 0);
}

static void fx_close(struct fixture *f)
{
	ingest_free(f->in);
	strbuf_release(&f->bad.sb);
	store_close(f->st);
}

static void put(const struct fixture *f, const char *s, size_t len)
{
	int fd = open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		      0644);

	cr_assert_geq(fd, 0, "open: %s", strerror(errno));
	cr_assert_eq(write(fd, s, len), (ssize_t)len);
	close(fd);
}

static void puts_(const struct fixture *f, const char *s)
{
	put(f, s, strlen(s));
}

/* Poll and return how many points that poll logged. */
static uint64_t poll_(struct fixture *f)
{
	uint64_t before = f->logged;
	int rc = ingest_poll(f->in, f->st, f->run, on_bad, &f->bad, &f->logged);

	cr_assert_eq(rc, 0, "ingest_poll: %s", strerror(-rc));
	return f->logged - before;
}

static uint64_t finish(struct fixture *f)
{
	uint64_t before = f->logged;
	int rc = ingest_finish(f->in, f->st, f->run, on_bad, &f->bad,
			       &f->logged);

	cr_assert_eq(rc, 0, "ingest_finish: %s", strerror(-rc));
	return f->logged - before;
}

static int collect_text(void *ctx, const struct metric_chunk *c)
{
	return strbuf_add(ctx, c->text, c->text_len) != 0;
}

/* The metric's values, one per line, as logged; "" when it is missing. */
static char *values(struct fixture *f, const char *name)
{
	struct strbuf sb = STRBUF_INIT;
	struct store_metric m = { 0 };
	int rc = store_metric_get(f->st, f->run, name, &m);

	if (rc == STORE_OK)
		rc = store_metric_read(f->st, m.id, 0, collect_text, &sb);
	else if (rc == STORE_NOT_FOUND)
		rc = STORE_OK;
	cr_assert_eq(rc, STORE_OK, "metric %s: %s", name, store_strerror(rc));
	store_metric_release(&m);
	cr_assert_eq(strbuf_addstr(&sb, ""), 0);
	return strbuf_detach(&sb, NULL);
}

static void assert_values(struct fixture *f, const char *name,
			  const char *want)
{
	char *got = values(f, name);

	cr_assert_str_eq(got, want, "metric %s", name);
	free(got);
}

static int64_t last_step(struct fixture *f, const char *name)
{
	struct store_metric m = { 0 };
	int64_t step;

	cr_assert_eq(store_metric_get(f->st, f->run, name, &m), STORE_OK);
	step = m.last_step;
	store_metric_release(&m);
	return step;
}

Test(ingest, missing_file_finds_nothing_until_it_appears)
{
	struct fixture f;

	fx_open(&f);
	cr_assert_eq(poll_(&f), 0);
	cr_assert_eq(finish(&f), 0);
	puts_(&f, "loss 1\n");
	cr_assert_eq(poll_(&f), 1);
	assert_values(&f, "loss", "1\n");
	fx_close(&f);
}

Test(ingest, line_split_mid_value_waits_for_its_newline)
{
	struct fixture f;

	fx_open(&f);
	puts_(&f, "loss 0.1");
	cr_assert_eq(poll_(&f), 0);
	puts_(&f, "25\nacc 1");
	cr_assert_eq(poll_(&f), 1);
	assert_values(&f, "loss", "0.125\n");
	assert_values(&f, "acc", "");
	puts_(&f, "0 7\n{\"loss\": 0.");
	cr_assert_eq(poll_(&f), 1);
	assert_values(&f, "acc", "10\n");
	cr_assert_eq(last_step(&f, "acc"), 7);
	puts_(&f, "5, \"step\": 3}\n");
	cr_assert_eq(poll_(&f), 1);
	assert_values(&f, "loss", "0.125\n0.5\n");
	cr_assert_eq(last_step(&f, "loss"), 3);
	cr_assert_eq(f.bad.n, 0);
	fx_close(&f);
}

Test(ingest, both_forms_mixed_keep_order_per_metric)
{
	struct fixture f;

	fx_open(&f);
	puts_(&f, "loss 0.9 0\n"
		  "{\"loss\": 0.8, \"acc\": 0.5, \"step\": 1}\n"
		  "acc 0.6 2\n"
		  "\r\n"
		  "{\"acc\": 1, \"lr\": 1e-4}\n"
		  "loss 0.70 2\n");
	cr_assert_eq(poll_(&f), 7);
	assert_values(&f, "loss", "0.9\n0.8\n0.70\n");
	assert_values(&f, "acc", "0.5\n0.6\n1\n");
	assert_values(&f, "lr", "0.0001\n");
	cr_assert_eq(last_step(&f, "loss"), 2);
	cr_assert_eq(f.bad.n, 0);
	fx_close(&f);
}

Test(ingest, malformed_lines_are_reported_with_their_numbers)
{
	struct fixture f;
	char *bad;

	fx_open(&f);
	puts_(&f, "loss 1\n"			/* 1 */
		  "loss nan\n"			/* 2 */
		  "\n"				/* 3 blank */
		  "{\"loss\": \"x\"}\n"		/* 4 */
		  "loss 2 1 extra\n"		/* 5 */
		  "bad/name 3\n"		/* 6 */
		  "loss 3\n"			/* 7 */
		  "{\"a\": 1, \"a\": 2}\n"	/* 8 */
		  "   \t\n"			/* 9 blank */
		  "loss 4\n");			/* 10 */
	cr_assert_eq(poll_(&f), 3);
	assert_values(&f, "loss", "1\n3\n4\n");
	bad = strbuf_detach(&f.bad.sb, NULL);
	cr_assert_str_eq(bad,
			 "2:value is not a finite decimal number\n"
			 "4:metric value is not a JSON number\n"
			 "5:extra fields after the step\n"
			 "6:invalid metric name\n"
			 "8:duplicate key in the JSON object\n");
	free(bad);
	/* numbering goes on across polls */
	puts_(&f, "loss x\n");
	cr_assert_eq(poll_(&f), 0);
	cr_assert_str_eq(strbuf_str(&f.bad.sb),
			 "11:value is not a finite decimal number\n");
	fx_close(&f);
}

Test(ingest, finish_takes_the_unterminated_last_line)
{
	struct fixture f;

	fx_open(&f);
	puts_(&f, "loss 1\nloss 2");
	cr_assert_eq(poll_(&f), 1);
	cr_assert_eq(poll_(&f), 0);
	cr_assert_eq(finish(&f), 1);
	assert_values(&f, "loss", "1\n2\n");
	cr_assert_eq(finish(&f), 0, "nothing is taken twice");
	puts_(&f, "oops\n");
	cr_assert_eq(finish(&f), 0);
	cr_assert_str_eq(strbuf_str(&f.bad.sb), "3:no value after the name\n");
	fx_close(&f);
}

Test(ingest, finish_reports_a_bad_unterminated_line)
{
	struct fixture f;

	fx_open(&f);
	puts_(&f, "{\"loss\": 1");
	cr_assert_eq(finish(&f), 0);
	cr_assert_str_eq(strbuf_str(&f.bad.sb), "1:JSON object is not closed\n");
	fx_close(&f);
}

Test(ingest, over_long_line_is_reported_and_skipped_to_its_newline)
{
	size_t big = 3 * METRICPROTO_LINE_MAX;
	char *line = malloc(big);
	struct fixture f;

	cr_assert_not_null(line);
	memset(line, '7', big);
	memcpy(line, "loss ", 5);
	fx_open(&f);
	puts_(&f, "loss 1\n");
	put(&f, line, METRICPROTO_LINE_MAX / 2);
	cr_assert_eq(poll_(&f), 1);
	cr_assert_eq(f.bad.n, 0, "not known to be too long yet");
	put(&f, line, big);	/* still no newline */
	cr_assert_eq(poll_(&f), 0);
	cr_assert_str_eq(strbuf_str(&f.bad.sb),
			 "2:line is longer than 65536 bytes\n");
	put(&f, line, big);
	cr_assert_eq(poll_(&f), 0);
	puts_(&f, "77\nloss 2\n");
	cr_assert_eq(poll_(&f), 1);
	/* the same, arriving whole in one read */
	put(&f, line, big);
	puts_(&f, "\nloss 3\n");
	cr_assert_eq(poll_(&f), 1);
	cr_assert_str_eq(strbuf_str(&f.bad.sb),
			 "2:line is longer than 65536 bytes\n"
			 "4:line is longer than 65536 bytes\n");
	assert_values(&f, "loss", "1\n2\n3\n");
	/* and at finish, unterminated */
	put(&f, line, big);
	cr_assert_eq(finish(&f), 0);
	cr_assert_eq(f.bad.n, 3);
	free(line);
	fx_close(&f);
}

Test(ingest, failed_store_call_loses_nothing)
{
	struct fixture f;
	int rc;

	fx_open(&f);
	puts_(&f, "loss 1\nloss x\nacc 2\n");
	rc = ingest_poll(f.in, f.st, f.run + 100, on_bad, &f.bad, &f.logged);
	cr_assert_eq(rc, -ENOENT, "a missing run: %d", rc);
	cr_assert_eq(f.logged, 0);
	cr_assert_eq(poll_(&f), 2);
	assert_values(&f, "loss", "1\n");
	assert_values(&f, "acc", "2\n");
	/* the bad line was reported again on the retry */
	cr_assert_str_eq(strbuf_str(&f.bad.sb),
			 "2:value is not a finite decimal number\n"
			 "2:value is not a finite decimal number\n");
	fx_close(&f);
}

Test(ingest, many_batches_and_chunks)
{
	enum { LINES = 300000 };
	struct strbuf sb = STRBUF_INIT;
	struct store_metric m = { 0 };
	struct fixture f;
	char line[64];

	fx_open(&f);
	for (int i = 0; i < LINES; i++) {
		int n = i % 3 == 2
			? snprintf(line, sizeof(line),
				   "{\"b\": %d, \"c\": %d.5, \"step\": %d}\n",
				   i, i, i)
			: snprintf(line, sizeof(line), "a %d.25 %d\n", i, i);

		cr_assert_eq(strbuf_add(&sb, line, (size_t)n), 0);
	}
	put(&f, sb.buf, sb.len);
	strbuf_release(&sb);
	cr_assert_eq(poll_(&f), LINES / 3 * 4);
	cr_assert_eq(store_metric_get(f.st, f.run, "a", &m), STORE_OK);
	cr_assert_eq(m.count, LINES / 3 * 2);
	cr_assert_eq(m.last_step, LINES - 2);
	cr_assert_eq(m.max, LINES - 2 + 0.25);
	store_metric_release(&m);
	cr_assert_eq(store_metric_get(f.st, f.run, "c", &m), STORE_OK);
	cr_assert_eq(m.count, LINES / 3);
	cr_assert_eq(m.last, LINES - 1 + 0.5);
	store_metric_release(&m);
	fx_close(&f);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 1,000,000 lines of @form ("text" or "json"), ingested; prints points/s. */
static void throughput(const char *form, int json)
{
	enum { LINES = 1000000 };
	static const char *const names[] = { "loss", "acc", "lr", "grad_norm" };
	struct strbuf sb = STRBUF_INIT;
	struct fixture f;
	uint64_t total = 0;
	double t0, t_write, t_ingest;
	char line[96];

	fx_open(&f);
	for (int i = 0; i < LINES; i++) {
		const char *name = names[i % 4];
		int n = json ? snprintf(line, sizeof(line),
					"{\"%s\": 0.%06d, \"step\": %d}\n",
					name, i, i / 4)
			     : snprintf(line, sizeof(line), "%s 0.%06d %d\n",
					name, i, i / 4);

		cr_assert_eq(strbuf_add(&sb, line, (size_t)n), 0);
	}
	t0 = now_s();
	put(&f, sb.buf, sb.len);
	t_write = now_s() - t0;
	t0 = now_s();
	cr_assert_eq(finish(&f), LINES);
	t_ingest = now_s() - t0;
	for (size_t i = 0; i < 4; i++) {
		struct store_metric m = { 0 };

		cr_assert_eq(store_metric_get(f.st, f.run, names[i], &m),
			     STORE_OK);
		total += (uint64_t)m.count;
		store_metric_release(&m);
	}
	cr_assert_eq(total, LINES, "every point is in the store");
	cr_assert_eq(f.bad.n, 0);
	printf("ingest throughput (%s): %d lines, %.1f MB, ingested in %.3f s:"
	       " %.0f points/s (write %.3f s)\n", form, LINES,
	       (double)sb.len / 1e6, t_ingest, LINES / t_ingest, t_write);
	fflush(stdout);
	strbuf_release(&sb);
	fx_close(&f);
}

Test(ingest, throughput_one_million_text_lines)
{
	throughput("text", 0);
}

Test(ingest, throughput_one_million_json_lines)
{
	throughput("json", 1);
}
