/*
 * test_metricproto.c - the metric protocol's line parser: the text form
 * (NAME VALUE [STEP]) and the JSON form, what each refuses and why.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlfs/metricproto.h"

static struct metricproto_line *pl;
static const char *reason;

static void pl_setup(void)
{
	pl = calloc(1, sizeof(*pl));
	cr_assert_not_null(pl);
	reason = NULL;
}

static void pl_teardown(void)
{
	free(pl);
}

TestSuite(metricproto, .init = pl_setup, .fini = pl_teardown);

static int parse(const char *line)
{
	reason = NULL;
	return metricproto_parse(line, strlen(line), pl, &reason);
}

static void assert_good(const char *line, size_t n)
{
	int rc = parse(line);

	cr_assert_eq(rc, 1, "'%s' refused: %s", line, reason ? reason : "?");
	cr_assert_eq(pl->n, n, "'%s': %zu points, want %zu", line, pl->n, n);
}

static void assert_bad(const char *line, const char *want_reason)
{
	int rc = parse(line);

	cr_assert_eq(rc, -1, "'%s' accepted (rc %d)", line, rc);
	cr_assert_not_null(reason, "'%s': no reason", line);
	cr_assert_eq(pl->n, 0);
	if (want_reason)
		cr_assert_str_eq(reason, want_reason, "'%s'", line);
}

static void assert_point(size_t i, const char *name, const char *text,
			 double value, int has_step, int64_t step)
{
	const struct metricproto_point *p = &pl->pts[i];

	cr_assert_eq(p->name_len, strlen(name));
	cr_assert(!memcmp(p->name, name, p->name_len), "name %zu: '%.*s'", i,
		  (int)p->name_len, p->name);
	cr_assert_eq(p->text_len, strlen(text), "text %zu: '%.*s' want '%s'",
		     i, (int)p->text_len, p->text, text);
	cr_assert(!memcmp(p->text, text, p->text_len));
	cr_assert_eq(p->value, value, "value %zu: %.17g", i, p->value);
	cr_assert_eq(p->has_step, has_step);
	cr_assert_eq(p->step, step);
}

/* ---- text form ------------------------------------------------------- */

Test(metricproto, text_name_value_keeps_the_text_as_written)
{
	assert_good("loss 0.50", 1);
	assert_point(0, "loss", "0.50", 0.5, 0, 0);
	assert_good("acc\t1E3", 1);
	assert_point(0, "acc", "1E3", 1000, 0, 0);
	assert_good("a.b_c-d .5", 1);
	assert_point(0, "a.b_c-d", ".5", 0.5, 0, 0);
}

Test(metricproto, text_with_step_and_blanks_and_cr)
{
	assert_good("  loss   -1.5e-3   7  \r", 1);
	assert_point(0, "loss", "-1.5e-3", -1.5e-3, 1, 7);
	assert_good("loss 2 -3", 1);
	assert_point(0, "loss", "2", 2, 1, -3);
	assert_good("loss +2 +9223372036854775807", 1);
	assert_point(0, "loss", "+2", 2, 1, INT64_MAX);
}

Test(metricproto, blank_lines_are_skipped_silently)
{
	cr_assert_eq(parse(""), 0);
	cr_assert_eq(parse("   \t "), 0);
	cr_assert_eq(parse("\r"), 0);
	cr_assert_eq(parse(" \t\r"), 0);
	cr_assert_eq(pl->n, 0);
	cr_assert_null(reason);
}

Test(metricproto, text_refuses_nan_inf_hex_and_junk_values)
{
	const char *bad[] = {
		"loss nan", "loss NaN", "loss inf", "loss -infinity",
		"loss 0x1p3", "loss 0x10", "loss 1,5", "loss 1.5x", "loss .",
		"loss -", "loss 1e", "loss e5", "loss 1e+",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_bad(bad[i], "value is not a finite decimal number");
	assert_bad("loss 1e999", "value is out of range");
	assert_bad("loss -1e400", "value is out of range");
}

Test(metricproto, text_refuses_bad_names)
{
	const char *bad[] = {
		".hidden 1", "a/b 1", "a:b 1", "été 1", "x\x01 1", "\"loss\" 1",
	};
	char longname[300];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_bad(bad[i], "invalid metric name");
	memset(longname, 'n', 256);
	memcpy(longname + 256, " 1", 3);
	assert_bad(longname, "invalid metric name");
	longname[255] = ' ';
	longname[256] = '1';
	longname[257] = '\0';
	assert_good(longname, 1);
	cr_assert_eq(pl->pts[0].name_len, 255);
}

Test(metricproto, text_refuses_missing_value_bad_step_and_extra_fields)
{
	assert_bad("loss", "no value after the name");
	assert_bad("  loss  \r", "no value after the name");
	assert_bad("loss 1 2.5", "step is not an integer");
	assert_bad("loss 1 x", "step is not an integer");
	assert_bad("loss 1 9223372036854775808", "step is out of range");
	assert_bad("loss 1 2 3", "extra fields after the step");
	assert_bad("loss 1 2 # comment", "extra fields after the step");
	assert_bad("1.5", "no value after the name");
	assert_bad("0.5 0.5 x", "step is not an integer");
	assert_bad("loss 1\r2", "value is not a finite decimal number");
}

/* ---- JSON form -------------------------------------------------------- */

Test(metricproto, json_object_gives_every_key_with_the_step)
{
	assert_good("{\"loss\": 0.3, \"acc\": 0.9, \"step\": 5}", 2);
	assert_point(0, "loss", "0.3", 0.3, 1, 5);
	assert_point(1, "acc", "0.9", 0.9, 1, 5);
}

Test(metricproto, json_without_step_and_with_blanks)
{
	assert_good("  {\"loss\":1}  \r", 1);
	assert_point(0, "loss", "1", 1, 0, 0);
	assert_good("{ \"step\" : -2 , \"m\" : 2 }", 1);
	assert_point(0, "m", "2", 2, 1, -2);
}

Test(metricproto, json_integers_keep_digits_and_reals_round_trip)
{
	assert_good("{\"a\": -42, \"b\": 1e-7, \"c\": 0.10, \"d\": 2.5E3, "
		    "\"e\": 0.30000000000000004, \"f\": -0, "
		    "\"g\": 9007199254740993, \"h\": 1.0}", 8);
	assert_point(0, "a", "-42", -42, 0, 0);
	assert_point(1, "b", "1e-07", 1e-7, 0, 0);
	assert_point(2, "c", "0.1", 0.1, 0, 0);
	assert_point(3, "d", "2500", 2500, 0, 0);
	assert_point(4, "e", "0.30000000000000004", 0.30000000000000004, 0, 0);
	assert_point(5, "f", "0", 0, 0, 0);
	/* the text keeps what the double cannot */
	assert_point(6, "g", "9007199254740993", 9007199254740992.0, 0, 0);
	assert_point(7, "h", "1", 1, 0, 0);
}

Test(metricproto, json_points_outlive_the_input)
{
	char line[] = "{\"loss\": 0.25}";

	assert_good(line, 1);
	memset(line, 'x', sizeof(line) - 1);
	assert_point(0, "loss", "0.25", 0.25, 0, 0);
}

Test(metricproto, json_refuses_non_number_values_whole_line)
{
	assert_bad("{\"loss\": 0.3, \"tag\": \"x\"}",
		   "metric value is not a JSON number");
	assert_bad("{\"ok\": true}", "metric value is not a JSON number");
	assert_bad("{\"ok\": null}", "metric value is not a JSON number");
	assert_bad("{\"v\": [1, 2]}", "metric value is not a JSON number");
	assert_bad("{\"v\": {\"inner\": 1}}",
		   "metric value is not a JSON number");
	assert_bad("{\"v\": \"0.5\"}", "metric value is not a JSON number");
}

Test(metricproto, json_refuses_bad_step)
{
	assert_bad("{\"loss\": 1, \"step\": 1.5}", "step is not an integer");
	assert_bad("{\"loss\": 1, \"step\": 2.0}", "step is not an integer");
	assert_bad("{\"loss\": 1, \"step\": \"3\"}", "step is not an integer");
	assert_bad("{\"loss\": 1, \"step\": null}", "step is not an integer");
	assert_bad("{\"loss\": 1, \"step\": 99999999999999999999}",
		   "number out of range");
}

Test(metricproto, json_refuses_bad_names_duplicates_and_empty_objects)
{
	assert_bad("{\"a b\": 1}", "invalid metric name");
	assert_bad("{\".x\": 1}", "invalid metric name");
	assert_bad("{\"\": 1}", "invalid metric name");
	assert_bad("{\"a/b\": 1}", "invalid metric name");
	assert_bad("{\"a\\u0000b\": 1}", NULL);
	assert_bad("{\"loss\": 1, \"loss\": 2}",
		   "duplicate key in the JSON object");
	assert_bad("{\"step\": 1, \"step\": 2, \"a\": 1}",
		   "duplicate key in the JSON object");
	assert_bad("{}", "no metric in the JSON object");
	assert_bad("{\"step\": 4}", "no metric in the JSON object");
}

Test(metricproto, json_escaped_key_is_decoded_before_the_name_rule)
{
	assert_good("{\"\\u006coss\": 1}", 1);
	assert_point(0, "loss", "1", 1, 0, 0);
}

Test(metricproto, json_refuses_junk_overflow_and_non_objects)
{
	assert_bad("{\"loss\": 1} x", "junk after the JSON object");
	assert_bad("{\"loss\": 1}{\"acc\": 2}", "junk after the JSON object");
	assert_bad("{\"loss\": 1", "JSON object is not closed");
	assert_bad("{\"loss\": 1,}", "invalid JSON");
	assert_bad("{\"loss\": NaN}", "invalid JSON");
	assert_bad("{\"loss\": Infinity}", "invalid JSON");
	assert_bad("{\"loss\": 0x10}", "invalid JSON");
	assert_bad("{\"loss\": 1e400}", "number out of range");
	assert_bad("{'loss': 1}", "invalid JSON");
	/* an array is not JSON form (first byte is not '{') */
	assert_bad("[1, 2]", "invalid metric name");
}

Test(metricproto, json_with_too_many_metrics_is_refused)
{
	char *line = malloc(METRICPROTO_LINE_MAX);
	size_t len = 0;

	cr_assert_not_null(line);
	line[len++] = '{';
	for (int i = 0; i <= METRICPROTO_POINTS_MAX; i++)
		len += (size_t)snprintf(line + len, 32, "%s\"m%d\":%d",
					i ? "," : "", i, i);
	line[len++] = '}';
	line[len] = '\0';
	cr_assert_lt(len, METRICPROTO_LINE_MAX);
	assert_bad(line, "too many metrics on one line");

	/* exactly the maximum is fine */
	len = 0;
	line[len++] = '{';
	for (int i = 0; i < METRICPROTO_POINTS_MAX; i++)
		len += (size_t)snprintf(line + len, 32, "%s\"m%d\":%d.5",
					i ? "," : "", i, i);
	memcpy(line + len, ",\"step\":3}", 11);
	assert_good(line, METRICPROTO_POINTS_MAX);
	assert_point(1000, "m1000", "1000.5", 1000.5, 1, 3);
	free(line);
}

/* ---- bounds ----------------------------------------------------------- */

Test(metricproto, lines_over_the_cap_are_refused)
{
	size_t big = METRICPROTO_LINE_MAX + 1;
	char *line = malloc(big + 1);

	cr_assert_not_null(line);
	memset(line, ' ', big);
	memcpy(line, "loss 1", 6);
	cr_assert_eq(metricproto_parse(line, big, pl, &reason), -1);
	cr_assert_str_eq(reason, "line is longer than 65536 bytes");
	/* at the cap it is only a line with trailing blanks */
	cr_assert_eq(metricproto_parse(line, big - 1, pl, &reason), 1);
	assert_point(0, "loss", "1", 1, 0, 0);
	free(line);
}

Test(metricproto, long_json_key_near_the_cap_fits_the_scratch)
{
	/* 255-byte names, as many as fit in the cap */
	char *line = malloc(METRICPROTO_LINE_MAX + 1);
	size_t len = 0;
	int i;

	cr_assert_not_null(line);
	line[len++] = '{';
	for (i = 0; len + 300 < METRICPROTO_LINE_MAX; i++) {
		len += (size_t)snprintf(line + len, 16, "%s\"%03d", i ? "," : "",
					i);
		memset(line + len, 'k', 252);
		len += 252;
		len += (size_t)snprintf(line + len, 32, "\":%d.125", i);
	}
	line[len++] = '}';
	line[len] = '\0';
	assert_good(line, (size_t)i);
	cr_assert_eq(pl->pts[i - 1].name_len, 255);
	free(line);
}
