/*
 * Shortest round-trip text for doubles. See include/mlfs/numfmt.h.
 *
 * A double has 15 to 17 significant decimal digits worth showing: every
 * decimal with at most 15 digits survives a trip through a double, and
 * 17 digits always identify a double uniquely. So trying 15, 16, 17 in
 * order and keeping the first that strtod() reads back exactly gives the
 * short form people expect without a full shortest-digits algorithm.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlfs/numfmt.h"

static size_t fmt_nonfinite(double v, char *out)
{
	const char *s = isnan(v) ? "nan" : v < 0 ? "-inf" : "inf";
	size_t n = strlen(s);

	memcpy(out, s, n + 1);
	return n;
}

size_t fmt_double(double v, char out[static FMT_DOUBLE_LEN])
{
	int prec;
	int n = 0;

	if (!isfinite(v))
		return fmt_nonfinite(v, out);
	for (prec = 15; prec <= 17; prec++) {
		n = snprintf(out, FMT_DOUBLE_LEN, "%.*g", prec, v);
		if (n < 0 || n >= FMT_DOUBLE_LEN)
			break;
		if (strtod(out, NULL) == v)
			return (size_t)n;
	}
	/* Not reached: %.17g always round-trips and fits. */
	out[0] = '\0';
	return 0;
}
