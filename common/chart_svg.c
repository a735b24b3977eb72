/*
 * chart_svg.c - streaming min/max decimation and the SVG line chart writer.
 *
 * Design notes
 *
 * 1. Decimation is over logging order, not over the step axis.  The step
 *    range is unknown in advance and steps may repeat or go backwards, so
 *    bucketing by step would need re-bucketing on every new extreme and
 *    would lose the order the line must follow.  Point number i lands in
 *    bucket i / width; width is a power of two.
 *
 * 2. Every bucket keeps four points: first, min, max, last (ties keep the
 *    earliest).  When all CHART_BUCKETS buckets are full, chart_add() calls
 *    buckets_halve(), which merges neighbours pairwise and doubles width;
 *    that is O(CHART_BUCKETS) once per doubling, so O(1) amortized.  Merging
 *    keeps a.first, b.last and the smaller min / larger max, so the global
 *    extremes and the first and last point survive every merge.
 *
 * 3. Rendering draws each bucket's kept points in logging order (the "M4"
 *    scheme), so the envelope of a noisy series is exact at bucket
 *    resolution.  Consecutive points that land on the same 1/100 user unit
 *    are written once, which keeps the document small.
 *
 * 4. Axis arithmetic is done in long double: a value range like
 *    [-1e308, 1e308] overflows double when padded to nice ticks.  Tick
 *    labels have at most 6 significant digits, so the tick step is widened
 *    until adjacent labels differ.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlfs/chart.h"
#include "mlfs/parse.h"
#include "mlfs/strbuf.h"

/* Layout of the 800x450 document, in user units. */
#define PLOT_X 100
#define PLOT_Y 70
/* The right margin leaves room for half of a long last x label. */
#define PLOT_W 664
#define PLOT_H 300
#define PLOT_RIGHT (PLOT_X + PLOT_W)
#define PLOT_BOTTOM (PLOT_Y + PLOT_H)

/* More intervals than this and the tick labels crowd each other. */
#define MAX_INTERVALS 8
/* Longest title and subtitle shown, in characters, before an ellipsis. */
#define TITLE_MAX_CHARS 70
#define SUBTITLE_MAX_CHARS 100

#define SERIES_COLOR "#1f77b4"
#define TEXT_COLOR "#222222"
#define MUTED_COLOR "#666666"
#define GRID_COLOR "#e6e6e6"
#define AXIS_COLOR "#888888"

struct chart_point {
	uint64_t seq;		/* position in logging order, from 0 */
	int64_t step;
	double value;
};

struct chart_bucket {
	struct chart_point first, min, max, last;
};

struct chart {
	char *title;
	char *subtitle;
	uint64_t count;		/* finite points added */
	uint64_t width;		/* points per bucket, a power of two */
	size_t nbuckets;	/* buckets in use; only the last may be partial */
	int64_t step_min, step_max;
	struct chart_bucket buckets[CHART_BUCKETS];
};

/* A linear axis from lo to hi, ticks at (k0 + i) * step for i <= intervals. */
struct axis {
	long double lo, hi, step, k0;
	int intervals;
};

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

struct chart *chart_new(const char *title, const char *subtitle)
{
	struct chart *c;

	c = calloc(1, sizeof(*c));
	if (!c)
		goto out;
	c->width = 1;
	c->title = dup_or_empty(title);
	if (!c->title)
		goto out_free_chart;
	c->subtitle = dup_or_empty(subtitle);
	if (!c->subtitle)
		goto out_free_title;
	return c;

out_free_title:
	free(c->title);
out_free_chart:
	free(c);
	errno = ENOMEM;
out:
	return NULL;
}

void chart_free(struct chart *c)
{
	if (!c)
		return;
	free(c->subtitle);
	free(c->title);
	free(c);
}

static struct chart_bucket bucket_merge(const struct chart_bucket *a,
					const struct chart_bucket *b)
{
	struct chart_bucket m;

	m.first = a->first;
	m.last = b->last;
	/* Strict comparisons: on ties the earlier point (in a) wins. */
	m.min = b->min.value < a->min.value ? b->min : a->min;
	m.max = b->max.value > a->max.value ? b->max : a->max;
	return m;
}

/* Merge full buckets pairwise; afterwards half are in use, twice as wide. */
static void buckets_halve(struct chart *c)
{
	size_t i;

	for (i = 0; i < CHART_BUCKETS / 2; i++)
		c->buckets[i] = bucket_merge(&c->buckets[2 * i],
					     &c->buckets[2 * i + 1]);
	c->nbuckets = CHART_BUCKETS / 2;
	c->width *= 2;
}

int chart_add(struct chart *c, int64_t step, double value)
{
	struct chart_point p = { c->count, step, value };
	struct chart_bucket *b;

	if (!isfinite(value))
		return 0;

	if (c->count == 0) {
		c->step_min = step;
		c->step_max = step;
	} else {
		if (step < c->step_min)
			c->step_min = step;
		if (step > c->step_max)
			c->step_max = step;
	}

	/* All buckets in use are full exactly when count is a multiple. */
	if (c->count == (uint64_t)c->nbuckets * c->width) {
		if (c->nbuckets == CHART_BUCKETS)
			buckets_halve(c);
		b = &c->buckets[c->nbuckets++];
		b->first = b->min = b->max = b->last = p;
	} else {
		b = &c->buckets[c->nbuckets - 1];
		b->last = p;
		if (value < b->min.value)
			b->min = p;
		if (value > b->max.value)
			b->max = p;
	}
	c->count++;
	return 0;
}

/* ---- axes ---------------------------------------------------------- */

/*
 * Tick label: %g with 6 significant digits, but 1e4 <= |v| < 1e15 gets an
 * SI suffix ("200k", "1.5M") so step axes read "2M 4M" rather than mixing
 * "2000000" with "1e+07".  -0 prints as 0.
 */
static void format_number(char *buf, size_t size, long double v)
{
	static const struct {
		long double unit;
		const char *suffix;
	} si[] = { { 1e12L, "T" }, { 1e9L, "G" }, { 1e6L, "M" }, { 1e3L, "k" } };
	long double a;
	size_t i;

	if (v == 0)
		v = 0;
	a = fabsl(v);
	if (a >= 1e4L && a < 1e15L) {
		for (i = 0; a < si[i].unit; i++)
			;
		snprintf(buf, size, "%.6Lg%s", v / si[i].unit, si[i].suffix);
		return;
	}
	snprintf(buf, size, "%.6Lg", v);
}

static long double axis_tick(const struct axis *ax, int i)
{
	return (ax->k0 + i) * ax->step;
}

/* Whether every tick label differs from its neighbour. */
static int axis_labels_distinct(const struct axis *ax)
{
	char prev[64], cur[64];
	int i;

	format_number(prev, sizeof(prev), axis_tick(ax, 0));
	for (i = 1; i <= ax->intervals; i++) {
		format_number(cur, sizeof(cur), axis_tick(ax, i));
		if (strcmp(prev, cur) == 0)
			return 0;
		memcpy(prev, cur, sizeof(prev));
	}
	return 1;
}

/*
 * Give a degenerate range some height: a constant series is shown at mid
 * height in value +- 10% (+- 1 around zero).  Ranges too thin to label with
 * 6 digits count as constant.  Integer axes (steps) pad by at least 1.
 */
static void axis_unflatten(long double *lo, long double *hi, int integral)
{
	long double mag = fmaxl(fabsl(*lo), fabsl(*hi));
	long double c, pad;

	if (*hi - *lo > mag * 1e-6L)
		return;
	c = (*lo + *hi) / 2;
	pad = c == 0 ? 1 : fabsl(c) / 10;
	if (integral && pad < 1)
		pad = 1;
	*lo = c - pad;
	*hi = c + pad;
}

/*
 * Choose the smallest 1-2-5 x 10^k tick step that covers [lo, hi] in at
 * most MAX_INTERVALS intervals with distinct labels, and extend the axis to
 * the enclosing ticks.  Integer axes never get fractional ticks.
 */
static void axis_fit(struct axis *ax, long double lo, long double hi,
		     int integral)
{
	static const int mult[] = { 1, 2, 5 };
	long double base, k1;
	int i;

	axis_unflatten(&lo, &hi, integral);
	base = powl(10, floorl(log10l((hi - lo) / MAX_INTERVALS)));
	for (i = 0; i < 3 * 40; i++) {
		ax->step = base * mult[i % 3] * powl(10, i / 3);
		if (integral && ax->step < 1)
			continue;
		/* The slack keeps 2.7e-4 / 1e-5 = 26.99.. from adding a tick. */
		ax->k0 = floorl(lo / ax->step + 1e-9L);
		k1 = ceill(hi / ax->step - 1e-9L);
		if (k1 - ax->k0 > MAX_INTERVALS)
			continue;
		ax->intervals = k1 > ax->k0 ? (int)(k1 - ax->k0) : 1;
		if (!axis_labels_distinct(ax))
			continue;
		ax->lo = axis_tick(ax, 0);
		ax->hi = axis_tick(ax, ax->intervals);
		return;
	}
	/* Unreachable for finite input; keep the data range, unticked. */
	ax->lo = lo;
	ax->hi = hi;
	ax->step = hi - lo;
	ax->k0 = lo / ax->step;
	ax->intervals = 1;
}

static long double map_x(const struct axis *ax, long double v)
{
	return PLOT_X + (v - ax->lo) / (ax->hi - ax->lo) * PLOT_W;
}

static long double map_y(const struct axis *ax, long double v)
{
	return PLOT_BOTTOM - (v - ax->lo) / (ax->hi - ax->lo) * PLOT_H;
}

/* ---- SVG output ---------------------------------------------------- */

/* A coordinate in hundredths of a user unit, clamped far off-canvas. */
static long long to_hundredths(long double v)
{
	if (!(v > -1e7L))
		return -1000000000LL;
	if (!(v < 1e7L))
		return 1000000000LL;
	return llroundl(v * 100);
}

/* Print hundredths with at most 2 decimals and no trailing zeros. */
static void put_coord(struct strbuf *out, long long h)
{
	if (h < 0) {
		strbuf_addch(out, '-');
		h = -h;
	}
	if (h % 100 == 0)
		strbuf_addf(out, "%lld", h / 100);
	else if (h % 10 == 0)
		strbuf_addf(out, "%lld.%lld", h / 100, h % 100 / 10);
	else
		strbuf_addf(out, "%lld.%02lld", h / 100, h % 100);
}

static void put_attr_coord(struct strbuf *out, const char *name, long double v)
{
	strbuf_addf(out, " %s=\"", name);
	put_coord(out, to_hundredths(v));
	strbuf_addch(out, '"');
}

/*
 * Length of the valid UTF-8 sequence at s that is also an XML Char, or 0.
 * Rejects what utf8_decode rejects, and U+FFFE/U+FFFF.
 */
static size_t utf8_xml_char_len(const unsigned char *s)
{
	uint32_t cp;
	size_t len = utf8_decode(s, strnlen((const char *)s, 4), &cp);

	if (len < 2 || cp == 0xfffe || cp == 0xffff)
		return 0;
	return len;
}

static void put_escaped_byte(struct strbuf *out, unsigned char ch)
{
	switch (ch) {
	case '&':
		strbuf_addstr(out, "&amp;");
		break;
	case '<':
		strbuf_addstr(out, "&lt;");
		break;
	case '>':
		strbuf_addstr(out, "&gt;");
		break;
	case '"':
		strbuf_addstr(out, "&quot;");
		break;
	case '\'':
		strbuf_addstr(out, "&apos;");
		break;
	default:
		/* Control characters are not XML; a space reads best. */
		strbuf_addch(out, ch < 0x20 ? ' ' : ch);
		break;
	}
}

/*
 * Append s as XML character data, at most max_chars characters (then "…").
 * Names come from file names and may hold any bytes; each invalid byte
 * becomes U+FFFD so the document stays well-formed.
 */
static void put_escaped(struct strbuf *out, const char *s, size_t max_chars)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t chars, len;

	for (chars = 0; *p; chars++) {
		if (chars == max_chars) {
			strbuf_addstr(out, "\xe2\x80\xa6");
			return;
		}
		if (*p < 0x80) {
			put_escaped_byte(out, *p++);
			continue;
		}
		len = utf8_xml_char_len(p);
		if (len == 0) {
			strbuf_addstr(out, "\xef\xbf\xbd");
			p++;
			continue;
		}
		strbuf_add(out, p, len);
		p += len;
	}
}

static void put_header(struct strbuf *out, const struct chart *c)
{
	strbuf_addstr(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	strbuf_addf(out,
		    "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
		    "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		    "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
		    CHART_WIDTH, CHART_HEIGHT, CHART_WIDTH, CHART_HEIGHT);
	strbuf_addstr(out, "<title>");
	put_escaped(out, c->title, TITLE_MAX_CHARS);
	strbuf_addstr(out, "</title>\n");
	strbuf_addf(out, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
		    CHART_WIDTH, CHART_HEIGHT);
	strbuf_addf(out, "<text x=\"%d\" y=\"30\" font-size=\"18\" "
		    "font-weight=\"bold\" fill=\"" TEXT_COLOR "\">", PLOT_X);
	put_escaped(out, c->title, TITLE_MAX_CHARS);
	strbuf_addstr(out, "</text>\n");
	strbuf_addf(out, "<text x=\"%d\" y=\"50\" font-size=\"12\" fill=\""
		    MUTED_COLOR "\">", PLOT_X);
	put_escaped(out, c->subtitle, SUBTITLE_MAX_CHARS);
	strbuf_addstr(out, "</text>\n");
}

static void put_plot_area(struct strbuf *out)
{
	strbuf_addf(out, "<rect id=\"plot-area\" x=\"%d\" y=\"%d\" width=\"%d\" "
		    "height=\"%d\" fill=\"none\" stroke=\"" GRID_COLOR "\"/>\n",
		    PLOT_X, PLOT_Y, PLOT_W, PLOT_H);
}

/*
 * Axis titles.  The rotated "value" sits value_x units from the left edge,
 * just clear of the widest y tick label.
 */
static void put_axis_titles(struct strbuf *out, int value_x)
{
	int mid = PLOT_Y + PLOT_H / 2;

	strbuf_addf(out, "<text x=\"%d\" y=\"%d\" font-size=\"12\" "
		    "text-anchor=\"middle\" fill=\"" MUTED_COLOR "\">step</text>\n",
		    PLOT_X + PLOT_W / 2, PLOT_BOTTOM + 38);
	strbuf_addf(out, "<text x=\"%d\" y=\"%d\" font-size=\"12\" "
		    "text-anchor=\"middle\" fill=\"" MUTED_COLOR "\" "
		    "transform=\"rotate(-90 %d %d)\">value</text>\n",
		    value_x, mid, value_x, mid);
}

static void put_x_ticks(struct strbuf *out, const struct axis *ax)
{
	char label[64];
	long double x;
	int i;

	for (i = 0; i <= ax->intervals; i++) {
		x = map_x(ax, axis_tick(ax, i));
		format_number(label, sizeof(label), axis_tick(ax, i));
		strbuf_addstr(out, "<line");
		put_attr_coord(out, "x1", x);
		put_attr_coord(out, "x2", x);
		strbuf_addf(out, " y1=\"%d\" y2=\"%d\" stroke=\"" GRID_COLOR
			    "\"/>\n", PLOT_Y, PLOT_BOTTOM + 5);
		strbuf_addstr(out, "<text class=\"tick-x\"");
		put_attr_coord(out, "x", x);
		strbuf_addf(out, " y=\"%d\" font-size=\"11\" text-anchor=\"middle\" "
			    "fill=\"" MUTED_COLOR "\">%s</text>\n",
			    PLOT_BOTTOM + 18, label);
	}
}

/* Returns the length of the longest label, in characters (all ASCII). */
static size_t put_y_ticks(struct strbuf *out, const struct axis *ax)
{
	char label[64];
	size_t widest = 0;
	long double y;
	int i;

	for (i = 0; i <= ax->intervals; i++) {
		y = map_y(ax, axis_tick(ax, i));
		format_number(label, sizeof(label), axis_tick(ax, i));
		if (strlen(label) > widest)
			widest = strlen(label);
		strbuf_addf(out, "<line x1=\"%d\" x2=\"%d\"", PLOT_X - 5,
			    PLOT_RIGHT);
		put_attr_coord(out, "y1", y);
		put_attr_coord(out, "y2", y);
		strbuf_addstr(out, " stroke=\"" GRID_COLOR "\"/>\n");
		/* +4 centres 11-unit digits on the line without baseline tricks. */
		strbuf_addf(out, "<text class=\"tick-y\" x=\"%d\"", PLOT_X - 8);
		put_attr_coord(out, "y", y + 4);
		strbuf_addf(out, " font-size=\"11\" text-anchor=\"end\" fill=\""
			    MUTED_COLOR "\">%s</text>\n", label);
	}
	return widest;
}

static void put_axis_lines(struct strbuf *out)
{
	strbuf_addf(out, "<path d=\"M%d %dV%dH%d\" fill=\"none\" stroke=\""
		    AXIS_COLOR "\"/>\n", PLOT_X, PLOT_Y, PLOT_BOTTOM, PLOT_RIGHT);
}

/* Polyline writer: drops repeats and opens the element at the 2nd point. */
struct line_writer {
	struct strbuf *out;
	long long x, y;		/* last point written, in hundredths */
	uint64_t n;		/* distinct points seen */
};

static void line_point(struct line_writer *w, long long x, long long y)
{
	if (w->n > 0 && x == w->x && y == w->y)
		return;
	if (w->n == 1) {
		strbuf_addstr(w->out, "<polyline fill=\"none\" stroke=\""
			      SERIES_COLOR "\" stroke-width=\"1.25\" "
			      "stroke-linejoin=\"round\" stroke-linecap=\"round\" "
			      "points=\"");
		put_coord(w->out, w->x);
		strbuf_addch(w->out, ',');
		put_coord(w->out, w->y);
	}
	if (w->n >= 1) {
		strbuf_addch(w->out, ' ');
		put_coord(w->out, x);
		strbuf_addch(w->out, ',');
		put_coord(w->out, y);
	}
	w->x = x;
	w->y = y;
	w->n++;
}

static void line_plot(struct line_writer *w, const struct axis *xa,
		      const struct axis *ya, const struct chart_point *p)
{
	line_point(w, to_hundredths(map_x(xa, p->step)),
		   to_hundredths(map_y(ya, p->value)));
}

/* A bucket's kept points in logging order, each once. */
static void put_bucket(struct line_writer *w, const struct axis *xa,
		       const struct axis *ya, const struct chart_bucket *b)
{
	const struct chart_point *lo = &b->min, *hi = &b->max;

	if (lo->seq > hi->seq) {
		lo = &b->max;
		hi = &b->min;
	}
	line_plot(w, xa, ya, &b->first);
	if (lo->seq != b->first.seq)
		line_plot(w, xa, ya, lo);
	if (hi->seq != lo->seq && hi->seq != b->first.seq)
		line_plot(w, xa, ya, hi);
	if (b->last.seq != hi->seq && b->last.seq != b->first.seq)
		line_plot(w, xa, ya, &b->last);
}

static void put_series(struct strbuf *out, const struct chart *c,
		       const struct axis *xa, const struct axis *ya)
{
	struct line_writer w = { out, 0, 0, 0 };
	const struct chart_point *last = &c->buckets[c->nbuckets - 1].last;
	size_t i;

	for (i = 0; i < c->nbuckets; i++)
		put_bucket(&w, xa, ya, &c->buckets[i]);
	if (w.n >= 2)
		strbuf_addstr(out, "\"/>\n");

	/* The last point is marked; for a single point it is the only mark. */
	strbuf_addstr(out, "<circle");
	put_attr_coord(out, "cx", map_x(xa, last->step));
	put_attr_coord(out, "cy", map_y(ya, last->value));
	strbuf_addf(out, " r=\"%s\" fill=\"" SERIES_COLOR "\"/>\n",
		    w.n >= 2 ? "3" : "4");
}

static void put_caption(struct strbuf *out, const struct chart *c)
{
	const struct chart_point *last;
	char value[64];

	strbuf_addf(out, "<text class=\"caption\" x=\"%d\" y=\"%d\" "
		    "font-size=\"11\" text-anchor=\"end\" fill=\"" MUTED_COLOR
		    "\">", PLOT_RIGHT, CHART_HEIGHT - 12);
	if (c->count == 0) {
		strbuf_addstr(out, "0 points</text>\n");
		return;
	}
	last = &c->buckets[c->nbuckets - 1].last;
	snprintf(value, sizeof(value), "%.6g", last->value);
	strbuf_addf(out, "%" PRIu64 " point%s, last value %s at step %" PRId64
		    "</text>\n", c->count, c->count == 1 ? "" : "s", value,
		    last->step);
}

static void put_no_data(struct strbuf *out)
{
	put_axis_titles(out, PLOT_X - 20);
	strbuf_addf(out, "<text x=\"%d\" y=\"%d\" font-size=\"16\" "
		    "text-anchor=\"middle\" fill=\"" MUTED_COLOR "\">no data</text>\n",
		    PLOT_X + PLOT_W / 2, PLOT_Y + PLOT_H / 2 + 6);
}

static void value_range(const struct chart *c, double *lo, double *hi)
{
	size_t i;

	*lo = c->buckets[0].min.value;
	*hi = c->buckets[0].max.value;
	for (i = 1; i < c->nbuckets; i++) {
		*lo = fmin(*lo, c->buckets[i].min.value);
		*hi = fmax(*hi, c->buckets[i].max.value);
	}
}

/*
 * Where the rotated "value" title goes: left of a y tick label `chars`
 * long (11-unit digits are about 7 units wide), never off the canvas.
 */
static int value_title_x(size_t chars)
{
	long x = PLOT_X - 8 - 7 * (long)chars - 8;

	return x < 14 ? 14 : (int)x;
}

/* Ticks, grid, axes and the line for a chart with at least one point. */
static void put_data(struct strbuf *out, const struct chart *c)
{
	struct axis xa, ya;
	double vlo, vhi;
	size_t widest;

	value_range(c, &vlo, &vhi);
	axis_fit(&xa, c->step_min, c->step_max, 1);
	axis_fit(&ya, vlo, vhi, 0);
	put_x_ticks(out, &xa);
	widest = put_y_ticks(out, &ya);
	put_axis_titles(out, value_title_x(widest));
	put_axis_lines(out);
	put_series(out, c, &xa, &ya);
}

int chart_render_svg(struct chart *c, struct strbuf *out)
{
	put_header(out, c);
	put_plot_area(out);
	if (c->count == 0)
		put_no_data(out);
	else
		put_data(out, c);
	put_caption(out, c);
	strbuf_addstr(out, "</svg>\n");
	return out->err;
}
