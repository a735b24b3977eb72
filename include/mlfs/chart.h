/*
 * chart.h - render a metric series as a standalone SVG line chart.
 *
 * A metric is a series of (step, value) points in logging order; the file
 * metrics/NAME.svg shows it.  Points are streamed in one at a time so that a
 * ten-million-point metric is never held in memory, not even once.
 *
 * Invariants:
 *
 *  - Memory is bounded: a chart holds at most CHART_BUCKETS buckets whatever
 *    the number of points.  Points are grouped, in logging order, into
 *    buckets of 2^k consecutive points; each bucket remembers its first,
 *    last, smallest and largest point.  When the buckets are full, neighbours
 *    are merged pairwise and the bucket width doubles.  The drawing therefore
 *    always contains the first point, the last point and the points holding
 *    the true minimum and maximum value.
 *
 *  - Steps are used as x but need not be increasing: steps may repeat or go
 *    backwards (a resumed run), and the line follows logging order.
 *
 *  - Only finite values are kept; NaN and infinities are ignored and are not
 *    counted.
 *
 *  - Output is deterministic: the same points, title and subtitle always
 *    give the same bytes.
 *
 * Thread safety: a chart has no locking; one chart must not be used from
 * two threads at once.  Distinct charts are independent (no global state).
 */
#ifndef MLFS_CHART_H
#define MLFS_CHART_H

#include <stdint.h>

struct strbuf;

/* Number of min/max buckets; the polyline has at most 4 points per bucket. */
#define CHART_BUCKETS 1024

/* Document size in SVG user units (also the width/height attributes). */
#define CHART_WIDTH 800
#define CHART_HEIGHT 450

/* Opaque; owned by the caller from chart_new() until chart_free(). */
struct chart;

/*
 * Allocate an empty chart.  `title` (the metric name) and `subtitle` (the
 * run id) are copied; NULL is taken as "".  They may hold any bytes: the
 * renderer XML-escapes them, replaces invalid UTF-8 and control characters,
 * and shortens very long ones with an ellipsis.
 *
 * Returns the chart, or NULL with errno = ENOMEM.
 */
struct chart *chart_new(const char *title, const char *subtitle);

/*
 * Append one point in logging order.  O(1) amortized, never allocates.
 *
 * Returns 0 (also when a non-finite value is ignored).  The -ENOMEM in the
 * contract is reserved for implementations that grow; callers should still
 * check it.
 */
int chart_add(struct chart *c, int64_t step, double value);

/*
 * Append the SVG 1.1 document for the points added so far to `out` (800x450,
 * white background, title and subtitle, axes labelled "step" and "value"
 * with 1-2-5 ticks and light grid, the series as one <polyline>, a marker on
 * the last point and a caption with the point count and last value).  An
 * empty chart renders a valid document saying "no data".  The plot area is
 * the element <rect id="plot-area" .../>; the y axis always ends on ticks
 * that enclose every value.  The chart is not changed: points may be added
 * and the chart rendered again.
 *
 * Returns 0, or out->err (a negative errno, e.g. -ENOMEM or the buffer's cap
 * error) if any append failed or the buffer was already in error; the
 * buffer's contents are then unspecified.
 */
int chart_render_svg(struct chart *c, struct strbuf *out);

/* Free the chart and its copies of the strings.  NULL is a no-op. */
void chart_free(struct chart *c);

#endif /* MLFS_CHART_H */
