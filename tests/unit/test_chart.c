/*
 * test_chart.c - the SVG line chart: edge cases, decimation, escaping, ticks.
 *
 * Geometry is read back from the document itself (the plot-area rect and
 * the polyline), so the tests do not depend on the layout constants.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mlfs/chart.h"
#include "mlfs/strbuf.h"

struct plot_area {
	double x, y, w, h;
};

struct points {
	double *x, *y;
	size_t n;
};

/* Render c and return the document as a NUL-terminated heap string. */
static char *render(struct chart *c)
{
	struct strbuf sb = STRBUF_INIT;
	char *svg;

	cr_assert_eq(chart_render_svg(c, &sb), 0);
	svg = strbuf_detach(&sb, NULL);
	cr_assert_not_null(svg);
	return svg;
}

/* Exit status of python's strict XML parser run on the document. */
static int xml_parse_status(const char *svg)
{
	char path[] = "/tmp/mlfs-chart-XXXXXX";
	char cmd[256];
	size_t len = strlen(svg);
	int fd, rc;

	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, svg, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c \"import xml.dom.minidom,"
		 "sys; xml.dom.minidom.parse(sys.argv[1])\" %s", path);
	rc = system(cmd);
	unlink(path);
	return rc;
}

static void assert_well_formed(const char *svg)
{
	cr_assert_eq(xml_parse_status(svg), 0, "SVG is not well-formed XML");
}

/* The number in attribute `name="..."` at or after `from`. */
static double attr_number(const char *from, const char *name)
{
	char key[32];
	const char *p;

	snprintf(key, sizeof(key), " %s=\"", name);
	p = strstr(from, key);
	cr_assert_not_null(p, "no attribute %s", name);
	return strtod(p + strlen(key), NULL);
}

static struct plot_area find_plot_area(const char *svg)
{
	const char *p = strstr(svg, "id=\"plot-area\"");
	struct plot_area a;

	cr_assert_not_null(p);
	a.x = attr_number(p, "x");
	a.y = attr_number(p, "y");
	a.w = attr_number(p, "width");
	a.h = attr_number(p, "height");
	return a;
}

static struct points find_polyline(const char *svg)
{
	struct points pts = { NULL, NULL, 0 };
	const char *p = strstr(svg, "<polyline");
	size_t cap = 0;
	char *end;

	cr_assert_not_null(p, "no polyline");
	cr_assert_null(strstr(p + 1, "<polyline"), "more than one polyline");
	p = strstr(p, " points=\"");
	cr_assert_not_null(p);
	p += strlen(" points=\"");
	while (*p != '"') {
		if (pts.n == cap) {
			cap = cap ? 2 * cap : 256;
			pts.x = realloc(pts.x, cap * sizeof(double));
			pts.y = realloc(pts.y, cap * sizeof(double));
			cr_assert(pts.x && pts.y);
		}
		pts.x[pts.n] = strtod(p, &end);
		cr_assert(end != p && *end == ',', "bad point at '%.20s'", p);
		p = end + 1;
		pts.y[pts.n] = strtod(p, &end);
		cr_assert(end != p, "bad point at '%.20s'", p);
		p = end;
		if (*p == ' ')
			p++;
		pts.n++;
	}
	return pts;
}

static void points_free(struct points *pts)
{
	free(pts->x);
	free(pts->y);
}

static double min_of(const double *v, size_t n)
{
	double m = v[0];

	for (size_t i = 1; i < n; i++)
		m = fmin(m, v[i]);
	return m;
}

static double max_of(const double *v, size_t n)
{
	double m = v[0];

	for (size_t i = 1; i < n; i++)
		m = fmax(m, v[i]);
	return m;
}

/* The multiplier of an SI suffix on a tick label ("200k"), 1 for none. */
static double si_unit(char suffix)
{
	switch (suffix) {
	case 'k':
		return 1e3;
	case 'M':
		return 1e6;
	case 'G':
		return 1e9;
	case 'T':
		return 1e12;
	default:
		return 1;
	}
}

/*
 * Tick labels that follow each occurrence of `marker`, parsed as numbers.
 * Returns how many were found (at most max).
 */
static size_t tick_labels(const char *svg, const char *marker, double *out,
			  size_t max)
{
	const char *p = svg;
	size_t n = 0;
	char *end;

	while (n < max && (p = strstr(p, marker)) != NULL) {
		p = strchr(p, '>');
		cr_assert_not_null(p);
		out[n] = strtod(p + 1, &end);
		cr_assert(end != p + 1, "bad label '%.20s'", p + 1);
		out[n] *= si_unit(*end);
		if (*end != '<')
			end++;
		cr_assert(*end == '<', "bad label '%.20s'", p + 1);
		n++;
	}
	return n;
}

static size_t y_ticks(const char *svg, double *out, size_t max)
{
	return tick_labels(svg, "<text class=\"tick-y\"", out, max);
}

static size_t x_ticks(const char *svg, double *out, size_t max)
{
	return tick_labels(svg, "<text class=\"tick-x\"", out, max);
}

/* Whether d is 1, 2 or 5 times a power of ten (to label precision). */
static int is_nice_step(double d)
{
	double e = floor(log10(d));
	double m = d / pow(10, e);

	return fabs(m - 1) < 1e-6 || fabs(m - 2) < 1e-6 || fabs(m - 5) < 1e-6 ||
	       fabs(m - 10) < 1e-6;
}

/* Ticks are evenly spaced by a 1-2-5 step, at least 2 of them. */
static void assert_nice_ticks(const double *t, size_t n, double lo, double hi)
{
	double d;

	cr_assert_geq(n, 2, "only %zu ticks", n);
	d = t[1] - t[0];
	cr_assert_gt(d, 0);
	cr_assert(is_nice_step(d), "tick step %g is not 1-2-5", d);
	for (size_t i = 1; i < n; i++) {
		cr_assert_float_eq(t[i] - t[i - 1], d, fabs(d) * 1e-4,
				   "uneven ticks %g %g", t[i - 1], t[i]);
		cr_assert_float_eq(fmod(fabs(t[i]) / d + 0.5, 1.0), 0.5, 1e-3,
				   "tick %g is not a multiple of %g", t[i], d);
	}
	cr_assert_leq(t[0], lo, "first tick %g above data min %g", t[0], lo);
	cr_assert_geq(t[n - 1], hi, "last tick %g below data max %g", t[n - 1], hi);
}

Test(chart, empty_series_renders_valid_svg_saying_no_data)
{
	struct chart *c = chart_new("loss", "run-1");
	char *svg;

	cr_assert_not_null(c);
	svg = render(c);
	assert_well_formed(svg);
	cr_assert_not_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
	cr_assert_not_null(strstr(svg, ">no data</text>"));
	cr_assert_not_null(strstr(svg, ">0 points</text>"));
	cr_assert_null(strstr(svg, "<polyline"));
	cr_assert_null(strstr(svg, "<circle"));
	free(svg);
	chart_free(c);
}

Test(chart, null_title_and_subtitle_render_as_empty)
{
	struct chart *c = chart_new(NULL, NULL);
	char *svg;

	cr_assert_not_null(c);
	svg = render(c);
	assert_well_formed(svg);
	free(svg);
	chart_free(c);
}

Test(chart, one_point_is_drawn_as_a_visible_marker)
{
	struct chart *c = chart_new("acc", "run-1");
	struct plot_area a;
	char *svg, *circle;

	chart_add(c, 42, 0.5);
	svg = render(c);
	assert_well_formed(svg);
	a = find_plot_area(svg);
	cr_assert_null(strstr(svg, "<polyline"), "one point is not a line");
	circle = strstr(svg, "<circle");
	cr_assert_not_null(circle);
	cr_assert_gt(attr_number(circle, "r"), 2);
	/* Both axes are padded around a lone point: it is never on an edge. */
	cr_assert(attr_number(circle, "cx") > a.x + 1);
	cr_assert(attr_number(circle, "cx") < a.x + a.w - 1);
	cr_assert(attr_number(circle, "cy") > a.y + 1);
	cr_assert(attr_number(circle, "cy") < a.y + a.h - 1);
	cr_assert_not_null(strstr(svg, "1 point, last value 0.5 at step 42"));
	free(svg);
	chart_free(c);
}

Test(chart, constant_series_gets_a_sensible_y_range_with_line_mid_height)
{
	struct chart *c = chart_new("lr", "run-1");
	struct plot_area a;
	struct points pts;
	double t[16];
	size_t n;
	char *svg;

	for (int i = 0; i < 100; i++)
		chart_add(c, i, 3e-4);
	svg = render(c);
	assert_well_formed(svg);
	a = find_plot_area(svg);
	pts = find_polyline(svg);
	cr_assert_eq(pts.n, 100);
	for (size_t i = 0; i < pts.n; i++)
		cr_assert_float_eq(pts.y[i], a.y + a.h / 2, 0.01);
	n = y_ticks(svg, t, 16);
	assert_nice_ticks(t, n, 3e-4, 3e-4);
	cr_assert_lt(t[0], 3e-4);
	cr_assert_gt(t[n - 1], 3e-4);
	points_free(&pts);
	free(svg);
	chart_free(c);
}

Test(chart, constant_zero_series_spans_minus_one_to_one)
{
	struct chart *c = chart_new("zero", "run-1");
	double t[16];
	size_t n;
	char *svg;

	chart_add(c, 0, 0.0);
	chart_add(c, 1, 0.0);
	svg = render(c);
	assert_well_formed(svg);
	n = y_ticks(svg, t, 16);
	assert_nice_ticks(t, n, 0, 0);
	cr_assert_float_eq(t[0], -1, 1e-12);
	cr_assert_float_eq(t[n - 1], 1, 1e-12);
	free(svg);
	chart_free(c);
}

Test(chart, million_points_render_small_and_keep_spike_dip_and_ends)
{
	struct chart *c = chart_new("loss", "run-big");
	struct timespec t0, t1;
	struct plot_area a;
	struct points pts;
	uint32_t rng = 12345;
	double secs, v;
	char *svg;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int64_t i = 0; i < 1000000; i++) {
		rng = rng * 1664525u + 1013904223u;
		v = (double)(rng >> 8) / (1u << 24);	/* noise in [0, 1) */
		if (i == 500000)
			v = 100;	/* the one spike: must reach the top */
		if (i == 250001)
			v = -100;	/* the one dip: must reach the bottom */
		cr_assert_eq(chart_add(c, i, v), 0);
	}
	svg = render(c);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_lt(secs, 1.0, "1M points took %.3f s", secs);

	cr_assert_lt(strlen(svg), 200 * 1024, "document is %zu bytes", strlen(svg));
	assert_well_formed(svg);
	a = find_plot_area(svg);
	pts = find_polyline(svg);
	cr_assert_leq(pts.n, 4 * CHART_BUCKETS);
	/* y axis is exactly [-100, 100]: extremes touch the plot edges. */
	cr_assert_float_eq(min_of(pts.y, pts.n), a.y, 0.005);
	cr_assert_float_eq(max_of(pts.y, pts.n), a.y + a.h, 0.005);
	/* x axis is [0, 1e6]: the spike sits at the middle. */
	for (size_t i = 0; i < pts.n; i++)
		if (fabs(pts.y[i] - a.y) < 0.005)
			cr_assert_float_eq(pts.x[i], a.x + a.w / 2, 0.005);
	cr_assert_float_eq(pts.x[0], a.x, 0.005, "first point kept");
	cr_assert_float_eq(pts.x[pts.n - 1], a.x + a.w * 0.999999, 0.01,
			   "last point kept");
	cr_assert_not_null(strstr(svg, "1000000 points, last value"));
	points_free(&pts);
	free(svg);
	chart_free(c);
}

Test(chart, title_and_subtitle_are_xml_escaped)
{
	struct chart *c = chart_new("a&b<c>\"d\"'e'", "run<&>'\"");
	char *svg;

	chart_add(c, 0, 1);
	chart_add(c, 1, 2);
	svg = render(c);
	assert_well_formed(svg);
	cr_assert_not_null(strstr(svg, ">a&amp;b&lt;c&gt;&quot;d&quot;&apos;e&apos;<"));
	cr_assert_not_null(strstr(svg, ">run&lt;&amp;&gt;&apos;&quot;<"));
	cr_assert_null(strstr(svg, "a&b"));
	free(svg);
	chart_free(c);
}

Test(chart, invalid_utf8_and_control_bytes_in_title_stay_well_formed)
{
	struct chart *c = chart_new("bad\xff\xc0\x80\xed\xa0\x80\x01tab\there",
				    "ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	char *svg;

	chart_add(c, 0, 1);
	svg = render(c);
	assert_well_formed(svg);
	/* Valid multi-byte characters pass through untouched. */
	cr_assert_not_null(strstr(svg, "ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80<"));
	cr_assert_not_null(strstr(svg, "tab here"));
	free(svg);
	chart_free(c);
}

Test(chart, very_long_title_is_cut_with_an_ellipsis)
{
	char title[1001];
	struct chart *c;
	char *svg;

	memset(title, 'x', 1000);
	title[1000] = '\0';
	c = chart_new(title, "run");
	svg = render(c);
	assert_well_formed(svg);
	cr_assert_null(strstr(svg, title + 900), "title not shortened");
	cr_assert_not_null(strstr(svg, "x\xe2\x80\xa6<"));
	free(svg);
	chart_free(c);
}

static void check_ticks_for_range(double lo, double hi, int64_t s0, int64_t s1)
{
	struct chart *c = chart_new("m", "r");
	double t[32];
	size_t n;
	char *svg;

	chart_add(c, s0, lo);
	chart_add(c, (s0 + s1) / 2, (lo + hi) / 2);
	chart_add(c, s1, hi);
	svg = render(c);
	assert_well_formed(svg);
	cr_assert_null(strstr(svg, "nan"), "range [%g, %g]", lo, hi);
	cr_assert_null(strstr(svg, "inf"), "range [%g, %g]", lo, hi);
	n = y_ticks(svg, t, 32);
	assert_nice_ticks(t, n, lo, hi);
	cr_assert_leq(n, 9, "%zu y ticks crowd the axis", n);
	n = x_ticks(svg, t, 32);
	assert_nice_ticks(t, n, (double)s0, (double)s1);
	cr_assert_leq(n, 9, "%zu x ticks crowd the axis", n);
	free(svg);
	chart_free(c);
}

Test(chart, ticks_are_evenly_spaced_1_2_5_numbers_enclosing_the_data)
{
	check_ticks_for_range(0.37, 8.3, 0, 4999);
	check_ticks_for_range(-3.2, 17, 1, 1023);
	check_ticks_for_range(-250, -0.5, 100, 1000000);
	check_ticks_for_range(1e-9, 7.5e-9, 0, 10);
	check_ticks_for_range(2e11, 1.3e12, 5, 7);
	check_ticks_for_range(-4e12, 1e12, -1000, 1000);
	check_ticks_for_range(0.999, 1.001, 0, 3);
}

Test(chart, large_tick_labels_use_si_suffixes)
{
	struct chart *c = chart_new("m", "r");
	char *svg;

	chart_add(c, 0, 2e4);
	chart_add(c, 10000000, 1.5e5);
	svg = render(c);
	cr_assert_not_null(strstr(svg, ">2M</text>"), "x labels like 2M");
	cr_assert_not_null(strstr(svg, ">10M</text>"));
	cr_assert_not_null(strstr(svg, ">100k</text>"), "y labels like 100k");
	cr_assert_null(strstr(svg, "e+0"), "no exponent below 1e15");
	free(svg);
	chart_free(c);
}

Test(chart, huge_tiny_and_negative_values_give_finite_coordinates)
{
	static const double vals[][2] = {
		{ 1e-9, 1e-9 }, { 1e12, 1e12 }, { -1e12, -1e12 + 1 },
		{ -1e-300, 1e-300 }, { -1.7e308, 1.7e308 }, { 1e300, 1e300 },
	};

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		struct chart *c = chart_new("m", "r");
		struct plot_area a;
		struct points pts;
		char *svg;

		chart_add(c, 0, vals[i][0]);
		chart_add(c, 10, vals[i][1]);
		svg = render(c);
		assert_well_formed(svg);
		cr_assert_null(strstr(svg, "nan"), "case %zu", i);
		cr_assert_null(strstr(svg, "inf"), "case %zu", i);
		a = find_plot_area(svg);
		pts = find_polyline(svg);
		for (size_t j = 0; j < pts.n; j++) {
			cr_assert(pts.y[j] >= a.y && pts.y[j] <= a.y + a.h,
				  "case %zu: y %g outside plot", i, pts.y[j]);
		}
		points_free(&pts);
		free(svg);
		chart_free(c);
	}
}

Test(chart, all_steps_equal_draws_a_vertical_line_in_the_middle)
{
	struct chart *c = chart_new("m", "r");
	struct plot_area a;
	struct points pts;
	double t[16];
	size_t n;
	char *svg;

	for (int i = 0; i < 50; i++)
		chart_add(c, 7, i);
	svg = render(c);
	assert_well_formed(svg);
	a = find_plot_area(svg);
	pts = find_polyline(svg);
	for (size_t i = 0; i < pts.n; i++)
		cr_assert_float_eq(pts.x[i], a.x + a.w / 2, 0.01);
	n = x_ticks(svg, t, 16);
	assert_nice_ticks(t, n, 7, 7);
	for (size_t i = 0; i < n; i++)
		cr_assert_float_eq(t[i], round(t[i]), 1e-12, "step tick %g", t[i]);
	points_free(&pts);
	free(svg);
	chart_free(c);
}

Test(chart, steps_going_backwards_are_drawn_in_logging_order)
{
	struct chart *c = chart_new("m", "r");
	struct points pts;
	char *svg;

	for (int i = 0; i <= 100; i++)
		chart_add(c, i, i);
	for (int i = 50; i <= 150; i++)	/* resumed from a checkpoint */
		chart_add(c, i, i);
	svg = render(c);
	pts = find_polyline(svg);
	cr_assert_eq(pts.n, 202);
	for (size_t i = 1; i < pts.n; i++) {
		if (i == 101)
			cr_assert_lt(pts.x[i], pts.x[i - 1], "no jump back to 50");
		else
			cr_assert_gt(pts.x[i], pts.x[i - 1], "point %zu", i);
	}
	points_free(&pts);
	free(svg);
	chart_free(c);
}

Test(chart, non_finite_values_are_ignored)
{
	struct chart *c = chart_new("m", "r");
	char *svg;

	chart_add(c, 0, 1);
	cr_assert_eq(chart_add(c, 1, NAN), 0);
	cr_assert_eq(chart_add(c, 2, INFINITY), 0);
	cr_assert_eq(chart_add(c, 3, -INFINITY), 0);
	chart_add(c, 4, 2);
	svg = render(c);
	assert_well_formed(svg);
	cr_assert_not_null(strstr(svg, "2 points, last value 2 at step 4"));
	free(svg);
	chart_free(c);
}

Test(chart, same_points_give_the_same_bytes)
{
	struct chart *a = chart_new("loss", "run-1");
	struct chart *b = chart_new("loss", "run-1");
	char *sa, *sb, *sa2;

	for (int i = 0; i < 300000; i++) {
		double v = exp(-i / 50000.0) + 0.01 * sin(i * 0.7);

		chart_add(a, i, v);
		chart_add(b, i, v);
	}
	sa = render(a);
	sb = render(b);
	sa2 = render(a);
	cr_assert_str_eq(sa, sb);
	cr_assert_str_eq(sa, sa2, "rendering must not change the chart");
	free(sa);
	free(sb);
	free(sa2);
	chart_free(a);
	chart_free(b);
}

Test(chart, render_reports_the_buffer_error)
{
	struct chart *c = chart_new("m", "r");
	struct strbuf sb;
	int rc;

	chart_add(c, 0, 1);
	chart_add(c, 1, 2);
	strbuf_init(&sb, 64);	/* far too small for any document */
	rc = chart_render_svg(c, &sb);
	cr_assert_lt(rc, 0);
	cr_assert_eq(rc, sb.err);
	strbuf_release(&sb);
	chart_free(c);
}
