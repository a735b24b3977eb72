#ifndef MLFS_METRICPROTO_H
#define MLFS_METRICPROTO_H

#include <stddef.h>
#include <stdint.h>

/*
 * metricproto.h - one line of the metric protocol: what a run appends to
 * $MLFS_METRICS. Pure functions: no store, no I/O, no globals.
 *
 * A line (without its '\n'; one trailing '\r' is dropped) is one of
 *
 *	NAME VALUE [STEP]	tokens separated by spaces or tabs, leading
 *				and trailing blanks ignored
 *	{"NAME": VALUE, ..., "step": STEP}
 *				one JSON object (leading and trailing
 *				blanks ignored)
 *
 *  - NAME follows name_is_valid() (parse.h): 1-255 bytes of
 *    [A-Za-z0-9._-], not starting with '.'.
 *  - In the text form VALUE is a parse_double() number: finite, decimal,
 *    no "nan", "inf" or hex; its text is kept byte for byte as written.
 *    STEP is a parse_int64() integer (negative allowed).
 *  - In the JSON form every key but "step" is a metric name and its value
 *    must be a JSON number. An integer's text is its decimal digits
 *    ("-0" gives "0"); a real's text is fmt_double() of its value
 *    (shortest round trip, so 0.10 gives "0.1"). "step", when present,
 *    must be a JSON integer and is the step of every point of the line.
 *
 * Malformed lines are refused whole: a line gives all of its points or
 * none, never some. In particular a JSON line with one bad key or value
 * (a string, bool, null, array or object value, a bad name, a duplicate
 * key, a non-integer step, an integer beyond int64, a real that overflows)
 * gives no point at all, so a line is one unit for the caller. An object
 * with no metric ({} or only "step") is malformed too.
 *
 * Bounds: a line longer than METRICPROTO_LINE_MAX bytes and an object with
 * more than METRICPROTO_POINTS_MAX metrics are malformed.
 *
 * Thread safety: every function may be called concurrently on distinct
 * outputs, given LC_NUMERIC stays "C" (mlfs never calls setlocale()).
 */

#define METRICPROTO_LINE_MAX 65536
#define METRICPROTO_POINTS_MAX 1024

/* The reason given for a line over METRICPROTO_LINE_MAX bytes. */
#define METRICPROTO_TOO_LONG "line is longer than 65536 bytes"

/* Room for the texts of JSON numbers: at most 24 bytes each, and names. */
#define METRICPROTO_SCRATCH (METRICPROTO_LINE_MAX + METRICPROTO_POINTS_MAX * 32)

struct metricproto_point {
	const char *name;	/* not NUL-terminated */
	size_t name_len;
	double value;
	const char *text;	/* the value as text, not NUL-terminated */
	size_t text_len;
	int64_t step;
	int has_step;		/* 0: no step given, @step is 0 */
};

/*
 * The points of one line. The names and texts point into the parsed line
 * (text form) or into @scratch (JSON form): valid until the next parse
 * into the same struct, and, for the text form, while the line's bytes
 * stay put. About 150 KiB: allocate it, don't put it on a stack.
 */
struct metricproto_line {
	size_t n;
	int json;	/* 1: a JSON line, names and texts are in @scratch */
	struct metricproto_point pts[METRICPROTO_POINTS_MAX];
	char scratch[METRICPROTO_SCRATCH];
};

/*
 * metricproto_parse - parse @line[0..@len) (no '\n') into @out.
 *
 * Returns 1 with @out->n >= 1 points for a good line; 0 for a blank line
 * (empty or only spaces, tabs and one '\r'), which callers skip silently;
 * -1 for a malformed line, with *@reason set to a short static string
 * ("value is not a finite decimal number") naming the first problem. A
 * JSON line is recognized by its first non-blank byte '{'.
 *
 * Allocates nothing for a text-form line; a JSON line is decoded with
 * jansson, which allocates and frees inside the call.
 */
int metricproto_parse(const char *line, size_t len,
		      struct metricproto_line *out, const char **reason);

#endif /* MLFS_METRICPROTO_H */
