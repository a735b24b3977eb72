#ifndef MLFS_NUMFMT_H
#define MLFS_NUMFMT_H

#include <stddef.h>

/*
 * Number formatting for files people read.
 *
 * Thread safety: may be called concurrently, given LC_NUMERIC stays "C"
 * (mlfs never calls setlocale()).
 */

/* Bytes fmt_double() may need, NUL included. */
#define FMT_DOUBLE_LEN 32

/*
 * Write the shortest of "%.15g", "%.16g", "%.17g" that strtod() reads
 * back as exactly `v`, so 0.1 gives "0.1" (not 0.10000000000000001) and
 * 0.30000000000000004 keeps its digits. Integral values below 1e15 in
 * magnitude have no exponent ("3", "-42"); -0.0 gives "-0"; exponents
 * look like printf's ("1e+300", "1e-07"), which is valid JSON. Non-finite
 * values give "nan", "inf" or "-inf", which are not JSON: callers avoid
 * them.
 *
 * `out` is NUL-terminated; returns the length (at most 24).
 */
size_t fmt_double(double v, char out[static FMT_DOUBLE_LEN]);

#endif /* MLFS_NUMFMT_H */
