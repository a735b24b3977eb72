#ifndef MLFS_TIMEFMT_H
#define MLFS_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Wall-clock time as mlfs stores and shows it: int64_t milliseconds
 * since the Unix epoch, rendered as ISO 8601 in UTC with exactly three
 * decimals, e.g. "2025-11-25T12:10:00.123Z".
 *
 * Thread safety: all functions may be called concurrently (gmtime_r, no
 * shared state, no dependence on TZ).
 */

/* Bytes needed for a formatted time in years 0000-9999, NUL included. */
#define TIME_ISO_LEN 25

/*
 * Current CLOCK_REALTIME in milliseconds since the epoch (truncated).
 * Returns 0 if the clock cannot be read, which does not happen on Linux.
 */
int64_t time_now_ms(void);

/*
 * Write `ms` as "YYYY-MM-DDTHH:MM:SS.mmmZ" into `out`, NUL-terminated,
 * and return its length: 24 for years 0000-9999. Negative `ms` round
 * toward minus infinity (-1 is 1969-12-31T23:59:59.999Z). Years outside
 * 0000-9999 are written with more digits or a '-' sign and still fit
 * the 32 bytes; time_parse_iso() does not read them back. Returns 0
 * with `out` = "" if the time cannot be broken down (not reachable with
 * a 64-bit time_t).
 */
size_t time_format_iso(int64_t ms, char out[static 32]);

/*
 * Parse exactly the format time_format_iso() writes for years 0000-9999:
 * 24 bytes, every field zero-padded, month and day valid for the year
 * (leap years included), hour 00-23, minute and second 00-59, and the
 * final 'Z'. No leading or trailing bytes.
 * Returns 0 and sets `*ms`, or -EINVAL.
 */
int time_parse_iso(const char *s, size_t len, int64_t *ms);

#endif /* MLFS_TIMEFMT_H */
