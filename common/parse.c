/*
 * Strict, bounded parsers for user-written bytes. See include/mlfs/parse.h.
 *
 * Each parser first checks the grammar over the whole span (-EINVAL),
 * then converts (-ERANGE), so "99999999999999999999x" is junk, not an
 * overflow.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlfs/parse.h"

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Number of decimal digits at the start of s[0..len). */
static size_t span_digits(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && is_digit(s[i]))
		i++;
	return i;
}

/*
 * Accumulate the digits s[0..len) into *out, failing with -ERANGE as
 * soon as the value exceeds `limit`. The span must be all digits.
 */
static int digits_to_u64(const char *s, size_t len, uint64_t limit,
			 uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		uint64_t d = (uint64_t)(s[i] - '0');

		if (v > (limit - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int parse_int64(const char *s, size_t len, int64_t *out)
{
	uint64_t limit = INT64_MAX;
	uint64_t mag;
	int neg = 0;
	size_t i = 0;
	int err;

	if (len && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == len || span_digits(s + i, len - i) != len - i)
		return -EINVAL;
	if (neg)
		limit = (uint64_t)INT64_MAX + 1;
	err = digits_to_u64(s + i, len - i, limit, &mag);
	if (err)
		return err;
	if (!neg)
		*out = (int64_t)mag;
	else if (mag == (uint64_t)INT64_MAX + 1)
		*out = INT64_MIN;
	else
		*out = -(int64_t)mag;
	return 0;
}

/*
 * Check s[0..len) against [+-]?(D+(\.D*)?|\.D+)([eE][+-]?D+)?
 * Returns 1 when it matches, else 0.
 */
static int double_syntax_ok(const char *s, size_t len)
{
	size_t i = 0;
	size_t int_digits;
	size_t frac_digits = 0;
	size_t exp_digits;

	if (i < len && (s[i] == '+' || s[i] == '-'))
		i++;
	int_digits = span_digits(s + i, len - i);
	i += int_digits;
	if (i < len && s[i] == '.') {
		i++;
		frac_digits = span_digits(s + i, len - i);
		i += frac_digits;
	}
	if (!int_digits && !frac_digits)
		return 0;
	if (i == len)
		return 1;
	if (s[i] != 'e' && s[i] != 'E')
		return 0;
	i++;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		i++;
	exp_digits = span_digits(s + i, len - i);
	return exp_digits && i + exp_digits == len;
}

int parse_double(const char *s, size_t len, double *out)
{
	char copy[PARSE_DOUBLE_MAX + 1];
	char *end;
	double v;

	if (!len || len > PARSE_DOUBLE_MAX || !double_syntax_ok(s, len))
		return -EINVAL;
	memcpy(copy, s, len);
	copy[len] = '\0';

	v = strtod(copy, &end);
	if (end != copy + len)
		return -EINVAL;
	if (!isfinite(v))
		return -ERANGE;
	*out = v;
	return 0;
}

/* Length of the token (run of non-blank bytes) at the start of s. */
static size_t span_token(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && !is_blank(s[i]))
		i++;
	return i;
}

static size_t span_blanks(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && is_blank(s[i]))
		i++;
	return i;
}

int parse_metric_line(const char *line, size_t len, struct metric_line *out)
{
	struct metric_line m = { 0 };
	size_t start, end, vlen, pos, slen;
	int err;

	if (len && line[len - 1] == '\r')
		len--;
	start = span_blanks(line, len);
	end = len;
	while (end > start && is_blank(line[end - 1]))
		end--;
	if (start == end)
		return 1;

	vlen = span_token(line + start, end - start);
	err = parse_double(line + start, vlen, &m.value);
	if (err)
		return err;
	m.value_off = start;
	m.value_len = vlen;

	pos = start + vlen;
	pos += span_blanks(line + pos, end - pos);
	if (pos < end) {
		slen = span_token(line + pos, end - pos);
		if (pos + slen != end)
			return -EINVAL;
		err = parse_int64(line + pos, slen, &m.step);
		if (err)
			return err;
		m.has_step = 1;
	}
	*out = m;
	return 0;
}

static int is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       is_digit(c) || c == '.' || c == '_' || c == '-';
}

int name_is_valid(const char *name, size_t len)
{
	size_t i;

	if (!len || len > NAME_MAX_LEN || name[0] == '.')
		return 0;
	for (i = 0; i < len; i++)
		if (!is_name_char(name[i]))
			return 0;
	return 1;
}

size_t strip_one_newline(const char *s, size_t len)
{
	if (len && s[len - 1] == '\n')
		return len - 1;
	return len;
}

struct size_unit {
	const char *name;
	unsigned shift;
};

static const struct size_unit size_units[] = {
	{ "", 0 },
	{ "K", 10 }, { "k", 10 }, { "KiB", 10 },
	{ "M", 20 }, { "m", 20 }, { "MiB", 20 },
	{ "G", 30 }, { "g", 30 }, { "GiB", 30 },
	{ "T", 40 }, { "t", 40 }, { "TiB", 40 },
};

/* Shift for the unit suffix s[0..len), or -1 when it is not a unit. */
static int size_unit_shift(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(size_units) / sizeof(size_units[0]); i++) {
		const struct size_unit *u = &size_units[i];

		if (strlen(u->name) == len && !memcmp(u->name, s, len))
			return (int)u->shift;
	}
	return -1;
}

int parse_size(const char *s, size_t len, uint64_t *out)
{
	size_t ndigits = span_digits(s, len);
	uint64_t v;
	int shift;
	int err;

	if (!ndigits)
		return -EINVAL;
	shift = size_unit_shift(s + ndigits, len - ndigits);
	if (shift < 0)
		return -EINVAL;
	err = digits_to_u64(s, ndigits, UINT64_MAX, &v);
	if (err)
		return err;
	if (v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
	size_t len;

	if (avail == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;	/* continuation byte, overlong lead, or too big */
	len = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	if (len > avail)
		return 0;
	*cp = s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = *cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && *cp < 0x800) || (len == 4 && *cp < 0x10000) ||
	    (*cp >= 0xd800 && *cp <= 0xdfff) || *cp > 0x10ffff)
		return 0;
	return len;
}

int text_is_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	uint32_t cp;

	while (i < len) {
		size_t n = utf8_decode(p + i, len - i, &cp);

		if (n == 0 || cp == 0)
			return 0;
		i += n;
	}
	return 1;
}
