/*
 * RFC 4180 field quoting. See include/mlfs/csv.h.
 */
#include <string.h>

#include "mlfs/csv.h"

static int csv_is_edge_space(char c)
{
	return c == ' ' || c == '\t';
}

static int csv_needs_quotes(const char *s, size_t len)
{
	size_t i;

	if (!len)
		return 0;
	if (csv_is_edge_space(s[0]) || csv_is_edge_space(s[len - 1]))
		return 1;
	for (i = 0; i < len; i++)
		if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n')
			return 1;
	return 0;
}

void csv_field(struct strbuf *sb, const char *s, size_t len)
{
	const char *q;
	const char *end = s + len;

	if (!csv_needs_quotes(s, len)) {
		strbuf_add(sb, s, len);
		return;
	}
	strbuf_addch(sb, '"');
	while ((q = memchr(s, '"', (size_t)(end - s)))) {
		strbuf_add(sb, s, (size_t)(q - s) + 1);
		strbuf_addch(sb, '"');
		s = q + 1;
	}
	strbuf_add(sb, s, (size_t)(end - s));
	strbuf_addch(sb, '"');
}
