/*
 * Unit tests for common/: strbuf, parsers, time and number formatting,
 * JSON and CSV writers.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlfs/csv.h"
#include "mlfs/jsonw.h"
#include "mlfs/numfmt.h"
#include "mlfs/parse.h"
#include "mlfs/strbuf.h"
#include "mlfs/timefmt.h"

/* A string literal as a (pointer, length) span. */
#define SPAN(lit) (lit), (sizeof(lit) - 1)

/* strbuf */

Test(strbuf, init_is_empty_string_without_memory)
{
	struct strbuf sb = STRBUF_INIT;

	cr_assert_null(sb.buf);
	cr_assert_str_eq(strbuf_str(&sb), "");
	cr_assert_eq(sb.max, SIZE_MAX);
	strbuf_release(&sb);
	strbuf_release(&sb);
}

Test(strbuf, grow_zero_allocates_terminated_buffer)
{
	struct strbuf sb = STRBUF_INIT;

	cr_assert_eq(strbuf_grow(&sb, 0), 0);
	cr_assert_not_null(sb.buf);
	cr_assert_eq(sb.buf[0], '\0');
	strbuf_release(&sb);
}

Test(strbuf, adds_grow_geometrically_and_stay_terminated)
{
	struct strbuf sb = STRBUF_INIT;
	size_t reallocs = 0;
	size_t last_alloc = 0;
	size_t i;

	for (i = 0; i < 100000; i++) {
		cr_assert_eq(strbuf_addch(&sb, 'a' + (int)(i % 26)), 0);
		cr_assert_eq(sb.buf[sb.len], '\0');
		if (sb.alloc != last_alloc) {
			reallocs++;
			last_alloc = sb.alloc;
		}
	}
	cr_assert_eq(sb.len, 100000);
	cr_assert_eq(sb.buf[25], 'z');
	cr_assert_leq(reallocs, 20, "%zu reallocations is not geometric", reallocs);
	strbuf_release(&sb);
}

Test(strbuf, add_keeps_embedded_nul)
{
	struct strbuf sb = STRBUF_INIT;

	cr_assert_eq(strbuf_add(&sb, "a\0b", 3), 0);
	cr_assert_eq(sb.len, 3);
	cr_assert_eq(memcmp(sb.buf, "a\0b", 4), 0);
	strbuf_release(&sb);
}

Test(strbuf, cap_allows_exactly_max_bytes)
{
	struct strbuf sb;

	strbuf_init(&sb, 4);
	cr_assert_eq(strbuf_addstr(&sb, "1234"), 0);
	cr_assert_leq(sb.alloc, 5);
	cr_assert_eq(strbuf_addch(&sb, '5'), -EFBIG);
	cr_assert_str_eq(strbuf_str(&sb), "1234");
	strbuf_release(&sb);
}

Test(strbuf, cap_error_is_sticky_until_reset)
{
	struct strbuf sb;

	strbuf_init(&sb, 10);
	cr_assert_eq(strbuf_addstr(&sb, "12345"), 0);
	cr_assert_eq(strbuf_addstr(&sb, "678901"), -EFBIG);
	cr_assert_eq(sb.len, 5, "a failed add must not add a part");
	cr_assert_str_eq(strbuf_str(&sb), "12345");
	cr_assert_eq(strbuf_addch(&sb, 'x'), -EFBIG, "error must be sticky");
	cr_assert_eq(strbuf_addf(&sb, "%d", 1), -EFBIG);
	cr_assert_eq(strbuf_grow(&sb, 0), -EFBIG);
	cr_assert_eq(sb.err, -EFBIG);
	cr_assert_eq(sb.len, 5);

	strbuf_reset(&sb);
	cr_assert_eq(sb.err, 0);
	cr_assert_eq(sb.len, 0);
	cr_assert_eq(strbuf_addstr(&sb, "0123456789"), 0);
	strbuf_release(&sb);
	cr_assert_eq(sb.max, 10, "release keeps the cap");
}

Test(strbuf, addf_formats_and_grows)
{
	struct strbuf sb = STRBUF_INIT;
	char big[301];

	memset(big, 'q', 300);
	big[300] = '\0';
	cr_assert_eq(strbuf_addf(&sb, "%d-%s", 42, "x"), 0);
	cr_assert_eq(strbuf_addf(&sb, "[%s]", big), 0);
	cr_assert_eq(sb.len, 4 + 302);
	cr_assert_eq(strncmp(sb.buf, "42-x[qqq", 8), 0);
	cr_assert_eq(sb.buf[sb.len - 1], ']');
	cr_assert_eq(sb.buf[sb.len], '\0');
	strbuf_release(&sb);
}

Test(strbuf, addf_over_cap_adds_nothing)
{
	struct strbuf sb;

	strbuf_init(&sb, 8);
	cr_assert_eq(strbuf_addstr(&sb, "ab"), 0);
	cr_assert_eq(strbuf_addf(&sb, "%s", "123456789"), -EFBIG);
	cr_assert_eq(sb.len, 2);
	cr_assert_str_eq(sb.buf, "ab");
	strbuf_release(&sb);
}

Test(strbuf, detach_hands_over_buffer_and_releases)
{
	struct strbuf sb = STRBUF_INIT;
	size_t len = 0;
	char *s;

	strbuf_addstr(&sb, "hello");
	s = strbuf_detach(&sb, &len);
	cr_assert_str_eq(s, "hello");
	cr_assert_eq(len, 5);
	cr_assert_null(sb.buf);
	cr_assert_eq(sb.len, 0);
	free(s);
}

Test(strbuf, detach_of_empty_gives_allocated_empty_string)
{
	struct strbuf sb = STRBUF_INIT;
	size_t len = 99;
	char *s = strbuf_detach(&sb, &len);

	cr_assert_not_null(s);
	cr_assert_str_eq(s, "");
	cr_assert_eq(len, 0);
	free(s);
}

Test(strbuf, detach_after_error_returns_null)
{
	struct strbuf sb;
	size_t len = 99;

	strbuf_init(&sb, 2);
	strbuf_addstr(&sb, "abc");
	cr_assert_null(strbuf_detach(&sb, &len));
	cr_assert_eq(len, 0);
	cr_assert_eq(sb.err, 0);
	cr_assert_null(sb.buf);
}

/* parse_int64 */

Test(parse, int64_accepts_signs_and_limits)
{
	int64_t v;

	cr_assert_eq(parse_int64(SPAN("0"), &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(parse_int64(SPAN("+17"), &v), 0);
	cr_assert_eq(v, 17);
	cr_assert_eq(parse_int64(SPAN("-17"), &v), 0);
	cr_assert_eq(v, -17);
	cr_assert_eq(parse_int64(SPAN("007"), &v), 0);
	cr_assert_eq(v, 7);
	cr_assert_eq(parse_int64(SPAN("9223372036854775807"), &v), 0);
	cr_assert_eq(v, INT64_MAX);
	cr_assert_eq(parse_int64(SPAN("-9223372036854775808"), &v), 0);
	cr_assert_eq(v, INT64_MIN);
}

Test(parse, int64_overflow_is_erange)
{
	int64_t v = 5;

	cr_assert_eq(parse_int64(SPAN("9223372036854775808"), &v), -ERANGE);
	cr_assert_eq(parse_int64(SPAN("-9223372036854775809"), &v), -ERANGE);
	cr_assert_eq(parse_int64(SPAN("99999999999999999999999"), &v), -ERANGE);
	cr_assert_eq(v, 5, "output must be untouched on error");
}

Test(parse, int64_rejects_junk)
{
	int64_t v;

	cr_assert_eq(parse_int64(SPAN("12a"), &v), -EINVAL);
	cr_assert_eq(parse_int64(SPAN(""), &v), -EINVAL);
	cr_assert_eq(parse_int64(SPAN(" 1"), &v), -EINVAL);
	cr_assert_eq(parse_int64(SPAN("1 "), &v), -EINVAL);
	cr_assert_eq(parse_int64(SPAN("-"), &v), -EINVAL);
	cr_assert_eq(parse_int64(SPAN("+-1"), &v), -EINVAL);
	cr_assert_eq(parse_int64(SPAN("0x10"), &v), -EINVAL);
	cr_assert_eq(parse_int64(SPAN("1.0"), &v), -EINVAL);
	cr_assert_eq(parse_int64(SPAN("1\n"), &v), -EINVAL);
	cr_assert_eq(parse_int64(SPAN("99999999999999999999x"), &v), -EINVAL);
	cr_assert_eq(parse_int64(SPAN("1\0"), &v), -EINVAL);
}

Test(parse, int64_reads_only_the_span)
{
	int64_t v;

	cr_assert_eq(parse_int64("123456", 3, &v), 0);
	cr_assert_eq(v, 123);
}

/* parse_double */

Test(parse, double_accepts_decimal_forms)
{
	double v;

	cr_assert_eq(parse_double(SPAN("0.5"), &v), 0);
	cr_assert_eq(v, 0.5);
	cr_assert_eq(parse_double(SPAN("-1e-3"), &v), 0);
	cr_assert_eq(v, -1e-3);
	cr_assert_eq(parse_double(SPAN(".5"), &v), 0);
	cr_assert_eq(v, 0.5);
	cr_assert_eq(parse_double(SPAN("5."), &v), 0);
	cr_assert_eq(v, 5.0);
	cr_assert_eq(parse_double(SPAN("1E10"), &v), 0);
	cr_assert_eq(v, 1e10);
	cr_assert_eq(parse_double(SPAN("+2e+2"), &v), 0);
	cr_assert_eq(v, 200.0);
	cr_assert_eq(parse_double(SPAN("-0"), &v), 0);
	cr_assert(v == 0.0 && signbit(v));
}

Test(parse, double_rejects_hex)
{
	double v;

	cr_assert_eq(parse_double(SPAN("0x10"), &v), -EINVAL);
	cr_assert_eq(parse_double(SPAN("0x1p3"), &v), -EINVAL);
}

Test(parse, double_rejects_nan_and_inf)
{
	double v;

	cr_assert_eq(parse_double(SPAN("nan"), &v), -EINVAL);
	cr_assert_eq(parse_double(SPAN("inf"), &v), -EINVAL);
	cr_assert_eq(parse_double(SPAN("-infinity"), &v), -EINVAL);
}

Test(parse, double_rejects_junk)
{
	double v = 7;

	cr_assert_eq(parse_double(SPAN("1.5abc"), &v), -EINVAL);
	cr_assert_eq(parse_double(SPAN(""), &v), -EINVAL);
	cr_assert_eq(parse_double(SPAN("1e"), &v), -EINVAL);
	cr_assert_eq(parse_double(SPAN("1e+"), &v), -EINVAL);
	cr_assert_eq(parse_double(SPAN("--1"), &v), -EINVAL);
	cr_assert_eq(parse_double(SPAN("1 2"), &v), -EINVAL);
	cr_assert_eq(parse_double(SPAN("."), &v), -EINVAL);
	cr_assert_eq(parse_double(SPAN("-.e1"), &v), -EINVAL);
	cr_assert_eq(parse_double(SPAN(" 1"), &v), -EINVAL);
	cr_assert_eq(parse_double(SPAN("1,5"), &v), -EINVAL);
	cr_assert_eq(v, 7);
}

Test(parse, double_rejects_text_longer_than_bound)
{
	char s[PARSE_DOUBLE_MAX + 1];
	double v;

	memset(s, '1', sizeof(s));
	cr_assert_eq(parse_double(s, PARSE_DOUBLE_MAX, &v), 0);
	cr_assert_eq(parse_double(s, PARSE_DOUBLE_MAX + 1, &v), -EINVAL);
}

Test(parse, double_overflow_is_erange)
{
	double v;

	cr_assert_eq(parse_double(SPAN("1e400"), &v), -ERANGE);
	cr_assert_eq(parse_double(SPAN("-1e400"), &v), -ERANGE);
}

Test(parse, double_underflow_is_not_an_error)
{
	double v;

	cr_assert_eq(parse_double(SPAN("1e-400"), &v), 0);
	cr_assert_eq(v, 0.0);
	cr_assert_eq(parse_double(SPAN("5e-324"), &v), 0);
	cr_assert_gt(v, 0.0);
}

/* parse_metric_line */

Test(parse, metric_line_value_only)
{
	struct metric_line m;

	cr_assert_eq(parse_metric_line(SPAN("0.5"), &m), 0);
	cr_assert_eq(m.value, 0.5);
	cr_assert_eq(m.has_step, 0);
	cr_assert_eq(m.value_off, 0);
	cr_assert_eq(m.value_len, 3);
}

Test(parse, metric_line_value_and_step)
{
	struct metric_line m;

	cr_assert_eq(parse_metric_line(SPAN("0.5 3"), &m), 0);
	cr_assert_eq(m.value, 0.5);
	cr_assert_eq(m.has_step, 1);
	cr_assert_eq(m.step, 3);
}

Test(parse, metric_line_locates_value_text_among_blanks)
{
	static const char line[] = " \t1.50e0\t\t 42 \t\r";
	struct metric_line m;

	cr_assert_eq(parse_metric_line(SPAN(line), &m), 0);
	cr_assert_eq(m.value, 1.5);
	cr_assert_eq(m.step, 42);
	cr_assert_eq(m.value_off, 2);
	cr_assert_eq(m.value_len, 6);
	cr_assert_eq(memcmp(line + m.value_off, "1.50e0", m.value_len), 0);
}

Test(parse, metric_line_strips_one_cr)
{
	struct metric_line m;

	cr_assert_eq(parse_metric_line(SPAN("2\r"), &m), 0);
	cr_assert_eq(m.value, 2.0);
	cr_assert_eq(parse_metric_line(SPAN("2\r\r"), &m), -EINVAL);
}

Test(parse, metric_line_blank_returns_one)
{
	struct metric_line m;

	cr_assert_eq(parse_metric_line(SPAN(""), &m), 1);
	cr_assert_eq(parse_metric_line(SPAN(" \t "), &m), 1);
	cr_assert_eq(parse_metric_line(SPAN("\r"), &m), 1);
	cr_assert_eq(parse_metric_line(SPAN("\t\r"), &m), 1);
}

Test(parse, metric_line_rejects_extra_tokens_and_junk)
{
	struct metric_line m;

	cr_assert_eq(parse_metric_line(SPAN("0.5 3 4"), &m), -EINVAL);
	cr_assert_eq(parse_metric_line(SPAN("0.5 3.5"), &m), -EINVAL);
	cr_assert_eq(parse_metric_line(SPAN("abc"), &m), -EINVAL);
	cr_assert_eq(parse_metric_line(SPAN("0.5,3"), &m), -EINVAL);
	cr_assert_eq(parse_metric_line(SPAN("0.5 x"), &m), -EINVAL);
	cr_assert_eq(parse_metric_line(SPAN("nan"), &m), -EINVAL);
	cr_assert_eq(parse_metric_line(SPAN("0.5\n"), &m), -EINVAL);
}

Test(parse, metric_line_out_of_range_is_erange)
{
	struct metric_line m;

	cr_assert_eq(parse_metric_line(SPAN("1e999"), &m), -ERANGE);
	cr_assert_eq(parse_metric_line(SPAN("1 9223372036854775808"), &m),
		     -ERANGE);
}

Test(parse, metric_line_allows_negative_step)
{
	struct metric_line m;

	cr_assert_eq(parse_metric_line(SPAN("-3 -1"), &m), 0);
	cr_assert_eq(m.value, -3.0);
	cr_assert_eq(m.step, -1);
}

/* name_is_valid, strip_one_newline */

Test(parse, name_is_valid_follows_the_name_rule)
{
	char name[257];

	cr_assert_eq(name_is_valid(SPAN("run-1_a.b")), 1);
	cr_assert_eq(name_is_valid(SPAN("A9")), 1);
	cr_assert_eq(name_is_valid(SPAN(".a")), 0);
	cr_assert_eq(name_is_valid(SPAN(".")), 0);
	cr_assert_eq(name_is_valid(SPAN("..")), 0);
	cr_assert_eq(name_is_valid(SPAN("a/b")), 0);
	cr_assert_eq(name_is_valid(SPAN("")), 0);
	cr_assert_eq(name_is_valid(SPAN("a b")), 0);
	cr_assert_eq(name_is_valid(SPAN("a\0b")), 0);
	cr_assert_eq(name_is_valid(SPAN("caf\xc3\xa9")), 0);

	memset(name, 'n', sizeof(name));
	cr_assert_eq(name_is_valid(name, 255), 1);
	cr_assert_eq(name_is_valid(name, 256), 0);
}

Test(parse, strip_one_newline_removes_only_one)
{
	cr_assert_eq(strip_one_newline(SPAN("abc\n")), 3);
	cr_assert_eq(strip_one_newline(SPAN("abc\n\n")), 4);
	cr_assert_eq(strip_one_newline(SPAN("abc")), 3);
	cr_assert_eq(strip_one_newline(SPAN("\n")), 0);
	cr_assert_eq(strip_one_newline(SPAN("")), 0);
	cr_assert_eq(strip_one_newline(SPAN("abc\r\n")), 4);
}

/* parse_size */

Test(parse, size_accepts_units)
{
	static const struct {
		const char *s;
		uint64_t v;
	} cases[] = {
		{ "0", 0 },
		{ "4096", 4096 },
		{ "1K", 1024 },
		{ "2k", 2048 },
		{ "1KiB", 1024 },
		{ "300M", 300ULL << 20 },
		{ "3m", 3ULL << 20 },
		{ "5MiB", 5ULL << 20 },
		{ "2G", 2ULL << 30 },
		{ "2g", 2ULL << 30 },
		{ "1GiB", 1ULL << 30 },
		{ "1T", 1ULL << 40 },
		{ "7TiB", 7ULL << 40 },
		{ "18446744073709551615", UINT64_MAX },
		{ "16777215T", 16777215ULL << 40 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 0;

		cr_assert_eq(parse_size(cases[i].s, strlen(cases[i].s), &v), 0,
			     "'%s' rejected", cases[i].s);
		cr_assert_eq(v, cases[i].v, "'%s'", cases[i].s);
	}
}

Test(parse, size_rejects_junk)
{
	static const char *const bad[] = {
		"", "M", "-1", "+1", "1.5M", "1 M", " 1", "1MB", "1Mi", "1B",
		"1KK", "1P", "0x10", "1m ",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v;

		cr_assert_eq(parse_size(bad[i], strlen(bad[i]), &v), -EINVAL,
			     "'%s' accepted", bad[i]);
	}
}

Test(parse, size_overflow_is_erange)
{
	uint64_t v;

	cr_assert_eq(parse_size(SPAN("18446744073709551616"), &v), -ERANGE);
	cr_assert_eq(parse_size(SPAN("16777216T"), &v), -ERANGE);
	cr_assert_eq(parse_size(SPAN("17179869184G"), &v), -ERANGE);
}

/* timefmt */

static void assert_iso(int64_t ms, const char *want)
{
	char out[32];
	size_t n = time_format_iso(ms, out);

	cr_assert_str_eq(out, want, "ms %lld", (long long)ms);
	cr_assert_eq(n, strlen(want));
}

Test(timefmt, formats_known_epochs)
{
	assert_iso(0, "1970-01-01T00:00:00.000Z");
	assert_iso(1764072600123, "2025-11-25T12:10:00.123Z");
	assert_iso(951782400000, "2000-02-29T00:00:00.000Z");
	assert_iso(253402300799999, "9999-12-31T23:59:59.999Z");
	cr_assert_eq(TIME_ISO_LEN, 25);
}

Test(timefmt, negative_ms_round_down)
{
	assert_iso(-1, "1969-12-31T23:59:59.999Z");
	assert_iso(-1000, "1969-12-31T23:59:59.000Z");
	assert_iso(-1001, "1969-12-31T23:59:58.999Z");
	assert_iso(-62167219200000, "0000-01-01T00:00:00.000Z");
}

Test(timefmt, extreme_ms_fit_the_buffer)
{
	char out[32];

	cr_assert_gt(time_format_iso(INT64_MAX, out), 24);
	cr_assert_gt(time_format_iso(INT64_MIN, out), 24);
}

Test(timefmt, parse_reads_known_epochs)
{
	int64_t ms;

	cr_assert_eq(time_parse_iso(SPAN("1970-01-01T00:00:00.000Z"), &ms), 0);
	cr_assert_eq(ms, 0);
	cr_assert_eq(time_parse_iso(SPAN("2025-11-25T12:10:00.123Z"), &ms), 0);
	cr_assert_eq(ms, 1764072600123);
	cr_assert_eq(time_parse_iso(SPAN("1969-12-31T23:59:59.999Z"), &ms), 0);
	cr_assert_eq(ms, -1);
	cr_assert_eq(time_parse_iso(SPAN("2024-02-29T00:00:00.000Z"), &ms), 0);
}

Test(timefmt, parse_rejects_other_formats)
{
	static const char *const bad[] = {
		"",
		"2025-11-25T12:10:00.123",
		"2025-11-25T12:10:00.123Z ",
		"2025-11-25 12:10:00.123Z",
		"2025-11-25T12:10:00Z",
		"2025-11-25T12:10:00.12Z",
		"2025-13-25T12:10:00.123Z",
		"2025-00-25T12:10:00.123Z",
		"2025-11-00T12:10:00.123Z",
		"2025-11-31T12:10:00.123Z",
		"2025-02-29T12:10:00.123Z",
		"1900-02-29T12:10:00.123Z",
		"2025-11-25T24:00:00.000Z",
		"2025-11-25T12:60:00.000Z",
		"2025-11-25T12:10:60.000Z",
		"2025-11-25T12:10:00.1a3Z",
		"+025-11-25T12:10:00.123Z",
		"2025-11-25T12:10:00.123z",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ms;

		cr_assert_eq(time_parse_iso(bad[i], strlen(bad[i]), &ms),
			     -EINVAL, "'%s' accepted", bad[i]);
	}
}

Test(timefmt, format_and_parse_round_trip)
{
	const int64_t lo = -62167219200000;	/* 0000-01-01 */
	const int64_t hi = 253402300799999;	/* 9999-12-31 end */
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	int i;

	for (i = 0; i < 20000; i++) {
		char out[32];
		int64_t ms, back;
		size_t n;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		ms = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
		n = time_format_iso(ms, out);
		cr_assert_eq(n, 24, "%s", out);
		cr_assert_eq(time_parse_iso(out, n, &back), 0, "%s", out);
		cr_assert_eq(back, ms, "%s", out);
	}
}

Test(timefmt, now_is_after_2025)
{
	cr_assert_gt(time_now_ms(), 1735689600000);
}

/* fmt_double */

static void assert_fmt(double v, const char *want)
{
	char out[FMT_DOUBLE_LEN];
	size_t n = fmt_double(v, out);

	cr_assert_str_eq(out, want);
	cr_assert_eq(n, strlen(want));
}

Test(numfmt, double_prints_shortest_form)
{
	assert_fmt(0.1, "0.1");
	assert_fmt(1.0 / 3, "0.3333333333333333");
	assert_fmt(2.0 / 3, "0.6666666666666666");
	assert_fmt(1e300, "1e+300");
	assert_fmt(3, "3");
	assert_fmt(-42, "-42");
	assert_fmt(1e-7, "1e-07");
	assert_fmt(0.30000000000000004, "0.30000000000000004");
	assert_fmt(0.1 + 0.2, "0.30000000000000004");
	assert_fmt(0.5, "0.5");
	assert_fmt(5e-324, "4.94065645841247e-324");
	assert_fmt(1.7976931348623157e308, "1.7976931348623157e+308");
}

Test(numfmt, integral_values_below_1e15_have_no_exponent)
{
	assert_fmt(0, "0");
	assert_fmt(1e14, "100000000000000");
	assert_fmt(999999999999999.0, "999999999999999");
	assert_fmt(-123456789012345.0, "-123456789012345");
}

Test(numfmt, negative_zero_and_non_finite)
{
	assert_fmt(-0.0, "-0");
	assert_fmt(NAN, "nan");
	assert_fmt(INFINITY, "inf");
	assert_fmt(-INFINITY, "-inf");
}

static uint64_t xorshift64(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void assert_round_trip(double v)
{
	char out[FMT_DOUBLE_LEN];
	size_t n = fmt_double(v, out);
	double back;
	char *end;

	cr_assert_leq(n, 24, "%s", out);
	back = strtod(out, &end);
	cr_assert_eq(*end, '\0', "%s", out);
	cr_assert_eq(memcmp(&back, &v, sizeof(v)), 0, "%s (%a) came back as %a",
		     out, v, back);
}

Test(numfmt, random_doubles_round_trip_bit_exactly)
{
	uint64_t x = 0x2545f4914f6cdd1dULL;
	int checked = 0;

	while (checked < 100000) {
		uint64_t bits = xorshift64(&x);
		double v;

		memcpy(&v, &bits, sizeof(v));
		if (!isfinite(v))
			continue;
		assert_round_trip(v);
		checked++;
	}
}

Test(numfmt, random_decimal_doubles_round_trip_bit_exactly)
{
	uint64_t x = 0x853c49e6748fea9bULL;
	int i;

	for (i = 0; i < 100000; i++) {
		double v = (double)(int64_t)(xorshift64(&x) % 2000001 - 1000000) /
			   1000.0;

		assert_round_trip(v);
		assert_round_trip(v * 1e-9);
	}
}

/* jsonw */

static char *render_nested(int pretty)
{
	struct strbuf sb = STRBUF_INIT;
	struct jsonw w;

	jsonw_init(&w, &sb, pretty);
	jsonw_object_begin(&w);
	jsonw_key(&w, "name");
	jsonw_string(&w, "run-1");
	jsonw_key(&w, "lr");
	jsonw_double(&w, 0.1);
	jsonw_key(&w, "steps");
	jsonw_int(&w, 3);
	jsonw_key(&w, "tags");
	jsonw_array_begin(&w);
	jsonw_string(&w, "a");
	jsonw_string(&w, "b\"c");
	jsonw_array_end(&w);
	jsonw_key(&w, "empty_list");
	jsonw_array_begin(&w);
	jsonw_array_end(&w);
	jsonw_key(&w, "empty_obj");
	jsonw_object_begin(&w);
	jsonw_object_end(&w);
	jsonw_key(&w, "nested");
	jsonw_object_begin(&w);
	jsonw_key(&w, "ok");
	jsonw_bool(&w, 1);
	jsonw_key(&w, "none");
	jsonw_string(&w, NULL);
	jsonw_key(&w, "x");
	jsonw_array_begin(&w);
	jsonw_int(&w, 1);
	jsonw_object_begin(&w);
	jsonw_key(&w, "y");
	jsonw_double(&w, -0.5);
	jsonw_object_end(&w);
	jsonw_array_end(&w);
	jsonw_object_end(&w);
	jsonw_object_end(&w);
	cr_assert_eq(sb.err, 0);
	return strbuf_detach(&sb, NULL);
}

/* Same as Python's json.dumps(obj, indent=2) + "\n". */
Test(jsonw, pretty_nested_object_matches_python)
{
	static const char want[] =
		"{\n"
		"  \"name\": \"run-1\",\n"
		"  \"lr\": 0.1,\n"
		"  \"steps\": 3,\n"
		"  \"tags\": [\n"
		"    \"a\",\n"
		"    \"b\\\"c\"\n"
		"  ],\n"
		"  \"empty_list\": [],\n"
		"  \"empty_obj\": {},\n"
		"  \"nested\": {\n"
		"    \"ok\": true,\n"
		"    \"none\": null,\n"
		"    \"x\": [\n"
		"      1,\n"
		"      {\n"
		"        \"y\": -0.5\n"
		"      }\n"
		"    ]\n"
		"  }\n"
		"}\n";
	char *got = render_nested(1);

	cr_assert_str_eq(got, want);
	free(got);
}

Test(jsonw, compact_mode_has_no_whitespace)
{
	static const char want[] =
		"{\"name\":\"run-1\",\"lr\":0.1,\"steps\":3,"
		"\"tags\":[\"a\",\"b\\\"c\"],\"empty_list\":[],\"empty_obj\":{},"
		"\"nested\":{\"ok\":true,\"none\":null,\"x\":[1,{\"y\":-0.5}]}}";
	char *got = render_nested(0);

	cr_assert_str_eq(got, want);
	free(got);
}

static char *render_string(const char *s, size_t len)
{
	struct strbuf sb = STRBUF_INIT;
	struct jsonw w;

	jsonw_init(&w, &sb, 0);
	jsonw_string_len(&w, s, len);
	cr_assert_eq(sb.err, 0);
	return strbuf_detach(&sb, NULL);
}

Test(jsonw, strings_escape_per_rfc8259)
{
	char *got = render_string(SPAN("q\"b\\s/n\nr\rt\tb\bf\f"));

	cr_assert_str_eq(got, "\"q\\\"b\\\\s/n\\nr\\rt\\tb\\bf\\f\"");
	free(got);
}

Test(jsonw, control_bytes_escape_as_u00xx)
{
	char *got = render_string(SPAN("\x01\x1f\x7f\0z"));

	cr_assert_str_eq(got, "\"\\u0001\\u001f\\u007f\\u0000z\"");
	free(got);
}

Test(jsonw, high_bytes_pass_through)
{
	char *got = render_string(SPAN("caf\xc3\xa9 \xff"));

	cr_assert_str_eq(got, "\"caf\xc3\xa9 \xff\"");
	free(got);
}

Test(jsonw, keys_are_escaped)
{
	struct strbuf sb = STRBUF_INIT;
	struct jsonw w;

	jsonw_init(&w, &sb, 0);
	jsonw_object_begin(&w);
	jsonw_key(&w, "a\"\n");
	jsonw_int(&w, 1);
	jsonw_object_end(&w);
	cr_assert_str_eq(strbuf_str(&sb), "{\"a\\\"\\n\":1}");
	strbuf_release(&sb);
}

Test(jsonw, empty_top_level_containers)
{
	struct strbuf sb = STRBUF_INIT;
	struct jsonw w;

	jsonw_init(&w, &sb, 1);
	jsonw_array_begin(&w);
	jsonw_array_end(&w);
	cr_assert_str_eq(strbuf_str(&sb), "[]\n");

	strbuf_reset(&sb);
	jsonw_init(&w, &sb, 1);
	jsonw_object_begin(&w);
	jsonw_object_end(&w);
	cr_assert_str_eq(strbuf_str(&sb), "{}\n");

	strbuf_reset(&sb);
	jsonw_init(&w, &sb, 1);
	jsonw_array_begin(&w);
	jsonw_array_begin(&w);
	jsonw_array_end(&w);
	jsonw_array_end(&w);
	cr_assert_str_eq(strbuf_str(&sb), "[\n  []\n]\n");
	strbuf_release(&sb);
}

Test(jsonw, pretty_top_level_scalar_ends_with_newline)
{
	struct strbuf sb = STRBUF_INIT;
	struct jsonw w;

	jsonw_init(&w, &sb, 1);
	jsonw_int(&w, INT64_MIN);
	cr_assert_str_eq(strbuf_str(&sb), "-9223372036854775808\n");
	strbuf_release(&sb);
}

Test(jsonw, scalars_render_as_json)
{
	struct strbuf sb = STRBUF_INIT;
	struct jsonw w;

	jsonw_init(&w, &sb, 0);
	jsonw_array_begin(&w);
	jsonw_double(&w, NAN);
	jsonw_double(&w, INFINITY);
	jsonw_double(&w, 3.0);
	jsonw_double(&w, 1e300);
	jsonw_bool(&w, 0);
	jsonw_null(&w);
	jsonw_time(&w, 1764072600123);
	jsonw_time(&w, -1);
	jsonw_int(&w, INT64_MAX);
	jsonw_array_end(&w);
	cr_assert_eq(sb.err, 0);
	cr_assert_str_eq(strbuf_str(&sb),
			 "[null,null,3,1e+300,false,null,"
			 "\"2025-11-25T12:10:00.123Z\",null,9223372036854775807]");
	strbuf_release(&sb);
}

Test(jsonw, number_text_is_verbatim_when_valid_json)
{
	struct strbuf sb = STRBUF_INIT;
	struct jsonw w;

	jsonw_init(&w, &sb, 0);
	jsonw_array_begin(&w);
	jsonw_number_text(&w, SPAN("0.50"));
	jsonw_number_text(&w, SPAN("-1E-3"));
	jsonw_number_text(&w, SPAN("0"));
	jsonw_number_text(&w, SPAN("5."));
	jsonw_number_text(&w, SPAN(".5"));
	jsonw_number_text(&w, SPAN("+1"));
	jsonw_number_text(&w, SPAN("007"));
	jsonw_array_end(&w);
	cr_assert_eq(sb.err, 0);
	cr_assert_str_eq(strbuf_str(&sb), "[0.50,-1E-3,0,5,0.5,1,7]");
	strbuf_release(&sb);
}

Test(jsonw, number_text_rejects_non_numbers)
{
	struct strbuf sb = STRBUF_INIT;
	struct jsonw w;

	jsonw_init(&w, &sb, 0);
	jsonw_number_text(&w, SPAN("nan"));
	cr_assert_eq(sb.err, -EINVAL);
	strbuf_release(&sb);
}

Test(jsonw, misuse_sets_einval)
{
	struct strbuf sb = STRBUF_INIT;
	struct jsonw w;

	jsonw_init(&w, &sb, 0);
	jsonw_array_begin(&w);
	jsonw_key(&w, "k");
	cr_assert_eq(sb.err, -EINVAL, "key inside an array");

	strbuf_release(&sb);
	jsonw_init(&w, &sb, 0);
	jsonw_object_begin(&w);
	jsonw_int(&w, 1);
	cr_assert_eq(sb.err, -EINVAL, "value without key");

	strbuf_release(&sb);
	jsonw_init(&w, &sb, 0);
	jsonw_object_begin(&w);
	jsonw_array_end(&w);
	cr_assert_eq(sb.err, -EINVAL, "mismatched end");

	strbuf_release(&sb);
	jsonw_init(&w, &sb, 0);
	jsonw_object_end(&w);
	cr_assert_eq(sb.err, -EINVAL, "end without begin");

	strbuf_release(&sb);
	jsonw_init(&w, &sb, 0);
	jsonw_object_begin(&w);
	jsonw_key(&w, "k");
	jsonw_object_end(&w);
	cr_assert_eq(sb.err, -EINVAL, "key without value");
	strbuf_release(&sb);
}

Test(jsonw, nesting_is_bounded)
{
	struct strbuf sb = STRBUF_INIT;
	struct jsonw w;
	int i;

	jsonw_init(&w, &sb, 0);
	for (i = 0; i < JSONW_MAX_DEPTH; i++)
		jsonw_array_begin(&w);
	for (i = 0; i < JSONW_MAX_DEPTH; i++)
		jsonw_array_end(&w);
	cr_assert_eq(sb.err, 0);
	cr_assert_eq(sb.len, 2 * JSONW_MAX_DEPTH);

	strbuf_release(&sb);
	jsonw_init(&w, &sb, 0);
	for (i = 0; i <= JSONW_MAX_DEPTH; i++)
		jsonw_array_begin(&w);
	cr_assert_eq(sb.err, -EINVAL);
	strbuf_release(&sb);
}

Test(jsonw, errors_come_from_the_strbuf_cap)
{
	struct strbuf sb;
	struct jsonw w;

	strbuf_init(&sb, 8);
	jsonw_init(&w, &sb, 1);
	jsonw_string(&w, "this does not fit");
	cr_assert_eq(sb.err, -EFBIG);
	strbuf_release(&sb);
}

/* csv */

static void assert_csv(const char *in, size_t len, const char *want)
{
	struct strbuf sb = STRBUF_INIT;

	csv_field(&sb, in, len);
	cr_assert_eq(sb.err, 0);
	cr_assert_str_eq(strbuf_str(&sb), want);
	strbuf_release(&sb);
}

Test(csv, plain_fields_are_verbatim)
{
	assert_csv(SPAN("plain"), "plain");
	assert_csv(SPAN("0.5"), "0.5");
	assert_csv(SPAN("in side"), "in side");
	assert_csv(SPAN(""), "");
	assert_csv(SPAN("caf\xc3\xa9"), "caf\xc3\xa9");
}

Test(csv, special_fields_are_quoted_with_doubled_quotes)
{
	assert_csv(SPAN("a,b"), "\"a,b\"");
	assert_csv(SPAN("say \"hi\""), "\"say \"\"hi\"\"\"");
	assert_csv(SPAN("\""), "\"\"\"\"");
	assert_csv(SPAN("line\nbreak"), "\"line\nbreak\"");
	assert_csv(SPAN("cr\r"), "\"cr\r\"");
	assert_csv(SPAN(" lead"), "\" lead\"");
	assert_csv(SPAN("trail "), "\"trail \"");
	assert_csv(SPAN("\ttab"), "\"\ttab\"");
}

Test(csv, fields_join_into_a_record)
{
	struct strbuf sb = STRBUF_INIT;

	csv_field(&sb, SPAN("step"));
	strbuf_addch(&sb, ',');
	csv_field(&sb, SPAN("a,b"));
	strbuf_addch(&sb, '\n');
	cr_assert_str_eq(strbuf_str(&sb), "step,\"a,b\"\n");
	strbuf_release(&sb);
}

Test(parse, text_is_valid_accepts_utf8_and_refuses_nul_and_bad_bytes)
{
	cr_assert(text_is_valid("", 0));
	cr_assert(text_is_valid("plain ascii\n\t", 13));
	cr_assert(text_is_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
	cr_assert_not(text_is_valid("a\0b", 3), "NUL is not text here");
	cr_assert_not(text_is_valid("caf\xe9", 4), "latin-1 byte");
	cr_assert_not(text_is_valid("\xe2\x82", 2), "cut sequence");
	cr_assert_not(text_is_valid("\xc0\xaf", 2), "overlong '/'");
	cr_assert_not(text_is_valid("\xed\xa0\x80", 3), "surrogate");
	cr_assert_not(text_is_valid("\xf4\x90\x80\x80", 4), "beyond U+10FFFF");
	cr_assert_not(text_is_valid("\x80", 1), "lone continuation byte");
}

Test(parse, utf8_decode_reports_code_point_and_length)
{
	uint32_t cp = 0;

	cr_assert_eq(utf8_decode((const unsigned char *)"A", 1, &cp), 1);
	cr_assert_eq(cp, 0x41);
	cr_assert_eq(utf8_decode((const unsigned char *)"\xe2\x82\xac", 3, &cp), 3);
	cr_assert_eq(cp, 0x20ac);
	cr_assert_eq(utf8_decode((const unsigned char *)"\xe2\x82\xac", 2, &cp), 0,
		     "a sequence longer than what is available");
}
