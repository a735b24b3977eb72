#ifndef MLFS_PARSE_H
#define MLFS_PARSE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Strict parsers for bytes users write into the mount.
 *
 * Every input is a span (`s`, `len`): it need not be NUL-terminated, and
 * a NUL inside the span is just another junk byte. Nothing is skipped
 * silently: no leading or trailing whitespace, no locale-dependent
 * grouping, no base prefixes. The caller strips the one trailing newline
 * `echo` adds (strip_one_newline()) before parsing.
 *
 * Errors are negative errnos:
 *   -EINVAL  the text does not match the grammar (including empty input)
 *   -ERANGE  it matches, but the value does not fit the result type
 *
 * Output parameters are written only when the call returns 0.
 *
 * Thread safety: all functions are pure and may be called concurrently,
 * given the process never changes LC_NUMERIC away from "C" (mlfs never
 * calls setlocale(), so strtod() always uses '.').
 */

/*
 * Parse a decimal integer: an optional '+' or '-', then one or more
 * digits 0-9, nothing else. Leading zeros are allowed.
 * Returns 0, -EINVAL or -ERANGE (outside INT64_MIN..INT64_MAX).
 */
int parse_int64(const char *s, size_t len, int64_t *out);

/*
 * Parse a decimal floating-point number matching
 *
 *	[+-]?(D+(\.D*)?|\.D+)([eE][+-]?D+)?
 *
 * so "0.5", "-1e-3", ".5", "5." and "1E10" are accepted, and hex floats,
 * "nan", "inf", spaces and trailing junk are not. Inputs longer than
 * PARSE_DOUBLE_MAX bytes give -EINVAL. The value is converted with
 * strtod(), so it is correctly rounded.
 *
 * Returns 0, -EINVAL, or -ERANGE when the magnitude overflows to
 * infinity. Underflow to zero or to a subnormal is not an error.
 */
#define PARSE_DOUBLE_MAX 64
int parse_double(const char *s, size_t len, double *out);

/*
 * One line of a metrics file, as written by the user.
 *
 * `value_off` and `value_len` locate the VALUE token inside the line
 * that was parsed, so the caller can store the text exactly as written
 * and show it back byte for byte.
 */
struct metric_line {
	double value;
	int64_t step;
	int has_step;		/* 0: no STEP given, `step` is 0 */
	size_t value_off;
	size_t value_len;
};

/*
 * Parse one metrics line, without its '\n'. One trailing '\r' is
 * dropped, then leading and trailing spaces and tabs. What is left must
 * be
 *
 *	VALUE			a parse_double() number
 *	VALUE STEP		STEP a parse_int64() integer (may be negative;
 *				the caller decides whether that is allowed)
 *
 * with one or more spaces or tabs between the two tokens.
 *
 * Returns 0 on success, 1 when the line is blank (empty or only
 * whitespace: the caller skips it, `*out` untouched), -EINVAL for junk
 * or extra tokens, -ERANGE when VALUE or STEP is out of range.
 */
int parse_metric_line(const char *line, size_t len, struct metric_line *out);

/*
 * Name rule for runs, experiments and other user-created entries.
 * Returns 1 when `name` is 1 to 255 bytes of [A-Za-z0-9._-] and does not
 * start with '.' (so "." and ".." are out too), else 0.
 */
#define NAME_MAX_LEN 255
int name_is_valid(const char *name, size_t len);

/*
 * Length of `s` without one trailing '\n' (only one is removed, "\n\n"
 * gives len - 1). Returns `len` when `s` does not end with '\n'.
 */
size_t strip_one_newline(const char *s, size_t len);

/*
 * Parse a byte size such as the mount option cache_max=300M: one or more
 * digits, then an optional unit, each a power of 1024:
 *
 *	K k KiB		2^10
 *	M m MiB		2^20
 *	G g GiB		2^30
 *	T t TiB		2^40
 *
 * No sign, no spaces, no fractions, no plain "B".
 * Returns 0, -EINVAL, or -ERANGE when the result does not fit uint64_t.
 */
int parse_size(const char *s, size_t len, uint64_t *out);

/*
 * utf8_decode - decode the UTF-8 sequence at @s (at most @avail bytes)
 * into *cp. Returns its length (1-4), or 0 if it is not valid UTF-8
 * (truncated, overlong, a surrogate, beyond U+10FFFF).
 */
size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp);

/*
 * text_is_valid - 1 if @s[0..len) is valid UTF-8 with no NUL byte: text
 * that every format mlfs writes (JSON, CSV, XML) can carry, else 0.
 */
int text_is_valid(const char *s, size_t len);

#endif /* MLFS_PARSE_H */
