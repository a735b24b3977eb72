/*
 * Millisecond wall-clock times and their ISO 8601 text. See
 * include/mlfs/timefmt.h.
 *
 * Parsing converts the calendar date with days_from_civil() instead of
 * timegm(), so it is pure arithmetic and does not look at TZ.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "mlfs/timefmt.h"

#define ISO_TEXT_LEN (TIME_ISO_LEN - 1)

int64_t time_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts))
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t time_format_iso(int64_t ms, char out[static 32])
{
	int64_t sec = ms / 1000;
	int64_t frac = ms % 1000;
	time_t t;
	struct tm tm;
	int n;

	if (frac < 0) {
		frac += 1000;
		sec--;
	}
	t = (time_t)sec;
	if (!gmtime_r(&t, &tm))
		goto out_empty;
	n = snprintf(out, 32, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
		     (long long)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		     tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
	if (n < 0 || n >= 32)
		goto out_empty;
	return (size_t)n;
out_empty:
	out[0] = '\0';
	return 0;
}

/*
 * Read exactly `width` digits at s; returns the value or -1 if any byte
 * is not a digit.
 */
static int read_fixed(const char *s, size_t width)
{
	int v = 0;
	size_t i;

	for (i = 0; i < width; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/*
 * Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil).
 */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Separator bytes of "YYYY-MM-DDTHH:MM:SS.mmmZ" and where they sit. */
static int iso_separators_ok(const char *s)
{
	static const struct {
		size_t pos;
		char c;
	} seps[] = {
		{ 4, '-' }, { 7, '-' }, { 10, 'T' }, { 13, ':' },
		{ 16, ':' }, { 19, '.' }, { 23, 'Z' },
	};
	size_t i;

	for (i = 0; i < sizeof(seps) / sizeof(seps[0]); i++)
		if (s[seps[i].pos] != seps[i].c)
			return 0;
	return 1;
}

int time_parse_iso(const char *s, size_t len, int64_t *ms)
{
	int year, mon, day, hour, min, sec, milli;
	int64_t days;

	if (len != ISO_TEXT_LEN || !iso_separators_ok(s))
		return -EINVAL;
	year = read_fixed(s, 4);
	mon = read_fixed(s + 5, 2);
	day = read_fixed(s + 8, 2);
	hour = read_fixed(s + 11, 2);
	min = read_fixed(s + 14, 2);
	sec = read_fixed(s + 17, 2);
	milli = read_fixed(s + 20, 3);
	if (year < 0 || mon < 1 || mon > 12 || day < 1 || hour < 0 ||
	    hour > 23 || min < 0 || min > 59 || sec < 0 || sec > 59 ||
	    milli < 0)
		return -EINVAL;
	if (day > days_in_month(year, mon))
		return -EINVAL;

	days = days_from_civil(year, mon, day);
	*ms = ((days * 24 + hour) * 60 + min) * 60 * 1000 +
	      (int64_t)sec * 1000 + milli;
	return 0;
}
