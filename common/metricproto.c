/*
 * metricproto.c - the metric protocol's line parser. See
 * include/mlfs/metricproto.h for the grammar.
 *
 * The text form is the hot path (a training loop printing one value per
 * line): it is split in place and parsed with parse_double() and
 * parse_int64(), and the points point into the line. The JSON form goes
 * through jansson, and the names and value texts are copied into the
 * output's scratch area before the decoded object is freed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "mlfs/metricproto.h"
#include "mlfs/numfmt.h"
#include "mlfs/parse.h"

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* ---- NAME VALUE [STEP] ----------------------------------------------- */

#define TEXT_TOKENS_MAX 3

static int parse_text(const char *s, size_t len, struct metricproto_line *out,
		      const char **reason)
{
	const char *tok[TEXT_TOKENS_MAX];
	size_t tok_len[TEXT_TOKENS_MAX];
	struct metricproto_point *p = &out->pts[0];
	size_t ntok = 0, i = 0;
	int err;

	while (i < len) {
		size_t start;

		while (i < len && is_blank(s[i]))
			i++;
		if (i == len)
			break;
		if (ntok == TEXT_TOKENS_MAX) {
			*reason = "extra fields after the step";
			return -1;
		}
		start = i;
		while (i < len && !is_blank(s[i]))
			i++;
		tok[ntok] = s + start;
		tok_len[ntok++] = i - start;
	}
	/* The caller saw a non-blank byte, so ntok >= 1. */
	if (!name_is_valid(tok[0], tok_len[0])) {
		*reason = "invalid metric name";
		return -1;
	}
	if (ntok < 2) {
		*reason = "no value after the name";
		return -1;
	}
	err = parse_double(tok[1], tok_len[1], &p->value);
	if (err) {
		*reason = err == -ERANGE ? "value is out of range"
					 : "value is not a finite decimal number";
		return -1;
	}
	p->step = 0;
	p->has_step = 0;
	if (ntok == 3) {
		err = parse_int64(tok[2], tok_len[2], &p->step);
		if (err) {
			*reason = err == -ERANGE ? "step is out of range"
						 : "step is not an integer";
			return -1;
		}
		p->has_step = 1;
	}
	p->name = tok[0];
	p->name_len = tok_len[0];
	p->text = tok[1];
	p->text_len = tok_len[1];
	out->n = 1;
	return 1;
}

/* ---- {"NAME": VALUE, ..., "step": STEP} ------------------------------- */

static const char *json_load_reason(const json_error_t *e)
{
	switch (json_error_code(e)) {
	case json_error_duplicate_key:
		return "duplicate key in the JSON object";
	case json_error_numeric_overflow:
		return "number out of range";
	case json_error_premature_end_of_input:
		return "JSON object is not closed";
	case json_error_end_of_input_expected:
		return "junk after the JSON object";
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return "NUL byte in the JSON line";
	case json_error_out_of_memory:
		return "out of memory decoding the JSON line";
	case json_error_stack_overflow:
		return "JSON nested too deep";
	case json_error_invalid_utf8:
		return "JSON line is not valid UTF-8";
	default:
		return "invalid JSON";
	}
}

/* Copy @len bytes into the scratch area at *@used; NULL when full. */
static const char *scratch_put(struct metricproto_line *out, size_t *used,
			       const char *s, size_t len)
{
	char *dst = out->scratch + *used;

	if (len > sizeof(out->scratch) - *used)
		return NULL;
	memcpy(dst, s, len);
	*used += len;
	return dst;
}

/* The point for key @key (valid name, not "step") with number @v. */
static int json_point(struct metricproto_line *out, size_t *used,
		      const char *key, size_t key_len, const json_t *v,
		      const char **reason)
{
	struct metricproto_point *p = &out->pts[out->n];
	char num[FMT_DOUBLE_LEN];
	size_t num_len;

	if (json_is_integer(v)) {
		json_int_t iv = json_integer_value(v);
		int w = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, iv);

		if (w < 0 || (size_t)w >= sizeof(num)) {
			*reason = "number out of range";
			return -1;
		}
		num_len = (size_t)w;
		p->value = (double)iv;
	} else if (json_is_real(v)) {
		p->value = json_real_value(v);
		num_len = fmt_double(p->value, num);
	} else {
		*reason = "metric value is not a JSON number";
		return -1;
	}
	p->name = scratch_put(out, used, key, key_len);
	p->name_len = key_len;
	p->text = scratch_put(out, used, num, num_len);
	p->text_len = num_len;
	if (!p->name || !p->text) {
		*reason = "line is too long";	/* not reached: see SCRATCH */
		return -1;
	}
	p->step = 0;
	p->has_step = 0;
	out->n++;
	return 0;
}

static int json_points(const json_t *obj, struct metricproto_line *out,
		       const char **reason)
{
	const json_t *step = NULL;
	const char *key;
	json_t *v;
	size_t used = 0;

	json_object_foreach((json_t *)obj, key, v) {
		size_t key_len = strlen(key);

		if (!strcmp(key, "step")) {
			step = v;
			continue;
		}
		if (!name_is_valid(key, key_len)) {
			*reason = "invalid metric name";
			return -1;
		}
		if (out->n == METRICPROTO_POINTS_MAX) {
			*reason = "too many metrics on one line";
			return -1;
		}
		if (json_point(out, &used, key, key_len, v, reason) < 0)
			return -1;
	}
	if (step && !json_is_integer(step)) {
		*reason = "step is not an integer";
		return -1;
	}
	if (out->n == 0) {
		*reason = "no metric in the JSON object";
		return -1;
	}
	for (size_t i = 0; step && i < out->n; i++) {
		out->pts[i].step = json_integer_value(step);
		out->pts[i].has_step = 1;
	}
	return 1;
}

static int parse_json(const char *s, size_t len, struct metricproto_line *out,
		      const char **reason)
{
	json_error_t jerr;
	json_t *obj = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
	int rc;

	if (!obj) {
		*reason = json_load_reason(&jerr);
		return -1;
	}
	if (!json_is_object(obj)) {
		*reason = "JSON line is not an object";
		rc = -1;
		goto out_decref;
	}
	rc = json_points(obj, out, reason);
out_decref:
	json_decref(obj);
	return rc;
}

_Static_assert(METRICPROTO_LINE_MAX == 65536,
	       "METRICPROTO_TOO_LONG names the cap");

int metricproto_parse(const char *line, size_t len,
		      struct metricproto_line *out, const char **reason)
{
	size_t start = 0;
	int rc;

	out->n = 0;
	out->json = 0;
	if (len > METRICPROTO_LINE_MAX) {
		*reason = METRICPROTO_TOO_LONG;
		return -1;
	}
	if (len && line[len - 1] == '\r')
		len--;
	while (start < len && is_blank(line[start]))
		start++;
	while (len > start && is_blank(line[len - 1]))
		len--;
	if (start == len)
		return 0;
	out->json = line[start] == '{';
	if (out->json)
		rc = parse_json(line + start, len - start, out, reason);
	else
		rc = parse_text(line + start, len - start, out, reason);
	if (rc < 0)
		out->n = 0;
	return rc;
}
