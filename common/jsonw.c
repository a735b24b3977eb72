/*
 * Streaming JSON writer laid out like Python's json.dumps(indent=2). See
 * include/mlfs/jsonw.h.
 *
 * State: `depth` open containers; first[d] holds the flags of container
 * d (is it an object, has it no members yet). `after_key` is set between
 * jsonw_key() and the member's value. Every value goes through
 * jsonw_value_begin() (separator, indentation, key check) and
 * jsonw_value_end() (final newline at top level).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "mlfs/jsonw.h"
#include "mlfs/numfmt.h"
#include "mlfs/parse.h"
#include "mlfs/timefmt.h"

#define JSONW_F_EMPTY	0x1	/* no member written yet */
#define JSONW_F_OBJECT	0x2	/* object (else array) */

static void jsonw_fail(struct jsonw *w, int err)
{
	if (!w->sb->err)
		w->sb->err = err;
}

static unsigned char *jsonw_top(struct jsonw *w)
{
	return &w->first[w->depth - 1];
}

static void jsonw_indent(struct jsonw *w)
{
	int i;

	strbuf_addch(w->sb, '\n');
	for (i = 0; i < w->depth; i++)
		strbuf_add(w->sb, "  ", 2);
}

/* Comma and line break before a member of the innermost container. */
static void jsonw_separator(struct jsonw *w)
{
	unsigned char *flags = jsonw_top(w);

	if (!(*flags & JSONW_F_EMPTY))
		strbuf_addch(w->sb, ',');
	*flags &= (unsigned char)~JSONW_F_EMPTY;
	if (w->pretty)
		jsonw_indent(w);
}

/* Returns 0 when a value may be written here, -1 (error set) if not. */
static int jsonw_value_begin(struct jsonw *w)
{
	if (!w->depth)
		return 0;
	if (*jsonw_top(w) & JSONW_F_OBJECT) {
		if (!w->after_key) {
			jsonw_fail(w, -EINVAL);
			return -1;
		}
		w->after_key = 0;
		return 0;
	}
	jsonw_separator(w);
	return 0;
}

static void jsonw_value_end(struct jsonw *w)
{
	if (!w->depth && w->pretty)
		strbuf_addch(w->sb, '\n');
}

void jsonw_init(struct jsonw *w, struct strbuf *sb, int pretty)
{
	memset(w, 0, sizeof(*w));
	w->sb = sb;
	w->pretty = pretty;
}

static void jsonw_begin(struct jsonw *w, int is_object)
{
	if (jsonw_value_begin(w))
		return;
	if (w->depth == JSONW_MAX_DEPTH) {
		jsonw_fail(w, -EINVAL);
		return;
	}
	strbuf_addch(w->sb, is_object ? '{' : '[');
	w->first[w->depth++] = JSONW_F_EMPTY |
			       (is_object ? JSONW_F_OBJECT : 0);
}

static void jsonw_end(struct jsonw *w, int is_object)
{
	unsigned char flags;

	if (!w->depth || w->after_key ||
	    !(*jsonw_top(w) & JSONW_F_OBJECT) != !is_object) {
		jsonw_fail(w, -EINVAL);
		return;
	}
	flags = w->first[--w->depth];
	if (w->pretty && !(flags & JSONW_F_EMPTY))
		jsonw_indent(w);
	strbuf_addch(w->sb, is_object ? '}' : ']');
	jsonw_value_end(w);
}

void jsonw_object_begin(struct jsonw *w)
{
	jsonw_begin(w, 1);
}

void jsonw_object_end(struct jsonw *w)
{
	jsonw_end(w, 1);
}

void jsonw_array_begin(struct jsonw *w)
{
	jsonw_begin(w, 0);
}

void jsonw_array_end(struct jsonw *w)
{
	jsonw_end(w, 0);
}

/*
 * The escape for byte c, written into tmp, or NULL when c is copied as
 * it is.
 */
static const char *json_escape(unsigned char c, char tmp[8])
{
	static const char hex[] = "0123456789abcdef";

	switch (c) {
	case '"':  return "\\\"";
	case '\\': return "\\\\";
	case '\n': return "\\n";
	case '\r': return "\\r";
	case '\t': return "\\t";
	case '\b': return "\\b";
	case '\f': return "\\f";
	}
	if (c >= 0x20 && c != 0x7f)
		return NULL;
	memcpy(tmp, "\\u00", 4);
	tmp[4] = hex[c >> 4];
	tmp[5] = hex[c & 0xf];
	tmp[6] = '\0';
	return tmp;
}

/* Append s[0..len) as a quoted, escaped JSON string. */
static void json_quote(struct strbuf *sb, const char *s, size_t len)
{
	size_t run = 0;
	size_t i;
	char tmp[8];

	strbuf_addch(sb, '"');
	for (i = 0; i < len; i++) {
		const char *esc = json_escape((unsigned char)s[i], tmp);

		if (!esc)
			continue;
		strbuf_add(sb, s + run, i - run);
		strbuf_addstr(sb, esc);
		run = i + 1;
	}
	strbuf_add(sb, s + run, len - run);
	strbuf_addch(sb, '"');
}

void jsonw_key(struct jsonw *w, const char *key)
{
	if (!key || !w->depth || w->after_key ||
	    !(*jsonw_top(w) & JSONW_F_OBJECT)) {
		jsonw_fail(w, -EINVAL);
		return;
	}
	jsonw_separator(w);
	json_quote(w->sb, key, strlen(key));
	strbuf_addstr(w->sb, w->pretty ? ": " : ":");
	w->after_key = 1;
}

/* Write one scalar given as ready-made JSON text. */
static void jsonw_raw(struct jsonw *w, const char *text, size_t len)
{
	if (jsonw_value_begin(w))
		return;
	strbuf_add(w->sb, text, len);
	jsonw_value_end(w);
}

void jsonw_json(struct jsonw *w, const char *text, size_t len)
{
	jsonw_raw(w, text, len);
}

void jsonw_string_len(struct jsonw *w, const char *s, size_t len)
{
	if (jsonw_value_begin(w))
		return;
	json_quote(w->sb, s, len);
	jsonw_value_end(w);
}

void jsonw_string(struct jsonw *w, const char *s)
{
	if (!s)
		jsonw_null(w);
	else
		jsonw_string_len(w, s, strlen(s));
}

void jsonw_int(struct jsonw *w, int64_t v)
{
	if (jsonw_value_begin(w))
		return;
	strbuf_addf(w->sb, "%" PRId64, v);
	jsonw_value_end(w);
}

void jsonw_double(struct jsonw *w, double v)
{
	char text[FMT_DOUBLE_LEN];
	size_t n;

	if (!isfinite(v)) {
		jsonw_null(w);
		return;
	}
	n = fmt_double(v, text);
	jsonw_raw(w, text, n);
}

static size_t count_digits(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

/* Is s[0..len) a JSON number: -?(0|[1-9]D*)(\.D+)?([eE][+-]?D+)? */
static int is_json_number(const char *s, size_t len)
{
	size_t i = 0;
	size_t n;

	if (i < len && s[i] == '-')
		i++;
	n = count_digits(s + i, len - i);
	if (!n || (n > 1 && s[i] == '0'))
		return 0;
	i += n;
	if (i < len && s[i] == '.') {
		i++;
		n = count_digits(s + i, len - i);
		if (!n)
			return 0;
		i += n;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		n = count_digits(s + i, len - i);
		if (!n)
			return 0;
		i += n;
	}
	return i == len;
}

void jsonw_number_text(struct jsonw *w, const char *s, size_t len)
{
	double v;

	if (is_json_number(s, len)) {
		jsonw_raw(w, s, len);
		return;
	}
	if (parse_double(s, len, &v)) {
		jsonw_fail(w, -EINVAL);
		return;
	}
	jsonw_double(w, v);
}

void jsonw_bool(struct jsonw *w, int v)
{
	if (v)
		jsonw_raw(w, "true", 4);
	else
		jsonw_raw(w, "false", 5);
}

void jsonw_null(struct jsonw *w)
{
	jsonw_raw(w, "null", 4);
}

void jsonw_time(struct jsonw *w, int64_t ms)
{
	char text[32];
	size_t n;

	if (ms < 0) {
		jsonw_null(w);
		return;
	}
	n = time_format_iso(ms, text);
	jsonw_string_len(w, text, n);
}
