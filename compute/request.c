/*
 * request.c - strict validation of run requests (see request.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mlfs/parse.h"
#include "mlfs/request.h"
#include "mlfs/store.h"

static int fail(char *err, size_t errlen, const char *field, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, const char *field, const char *fmt,
		...)
{
	char why[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "field '%.256s': %s", field, why);
	return -EINVAL;
}

static int env_name_is_valid(const char *s)
{
	if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
		return 0;
	for (s++; *s; s++)
		if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
			return 0;
	return 1;
}

/* A string field: present, a string, non-empty, valid text. */
static int want_text(json_t *v, const char *field, size_t max, char *err,
		     size_t errlen)
{
	if (!json_is_string(v))
		return fail(err, errlen, field, "must be a string");
	if (json_string_length(v) == 0)
		return fail(err, errlen, field, "must not be empty");
	if (json_string_length(v) > max)
		return fail(err, errlen, field, "longer than %zu bytes", max);
	return 0;
}

static int want_string_array(json_t *v, const char *field, int nonempty,
			     char *err, size_t errlen)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return fail(err, errlen, field, "must be an array of strings");
	if (nonempty && json_array_size(v) == 0)
		return fail(err, errlen, field, "must not be empty");
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			return fail(err, errlen, field,
				    "item %zu must be a string", i);
		if (nonempty && i == 0 && json_string_length(e) == 0)
			return fail(err, errlen, field,
				    "the program must not be empty");
	}
	return 0;
}

/* A relative path that stays inside the source directory. */
static int want_inner_path(json_t *v, const char *field, char *err,
			   size_t errlen)
{
	const char *p;
	int rc = want_text(v, field, 4096, err, errlen);

	if (rc < 0)
		return rc;
	p = json_string_value(v);
	if (p[0] == '/')
		return fail(err, errlen, field,
			    "'%s' must be relative to source_directory", p);
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return fail(err, errlen, field,
				    "'%s' leaves source_directory",
				    json_string_value(v));
		p += n;
		p += *p == '/';
	}
	return 0;
}

static int check_variables(json_t *vars, char *err, size_t errlen)
{
	char field[320];
	const char *key;
	json_t *v;

	if (!json_is_object(vars))
		return fail(err, errlen, "environment.variables",
			    "must be an object of strings");
	json_object_foreach(vars, key, v) {
		snprintf(field, sizeof(field), "environment.variables.%.256s",
			 key);
		if (!env_name_is_valid(key))
			return fail(err, errlen, field,
				    "not a valid variable name");
		if (strncmp(key, "MLFS_", 5) == 0)
			return fail(err, errlen, field,
				    "reserved: mlfs sets the MLFS_ variables");
		if (!json_is_string(v))
			return fail(err, errlen, field, "must be a string");
	}
	return 0;
}

/* environment: checks it and fills the defaults into a new object. */
static int normalize_environment(json_t *env, json_t **out, char *err,
				 size_t errlen)
{
	json_t *vars = NULL, *interp = NULL, *v;
	char field[320];
	const char *key;
	int rc;

	if (env && !json_is_object(env))
		return fail(err, errlen, "environment", "must be an object");
	json_object_foreach(env, key, v) {
		if (strcmp(key, "variables") == 0) {
			rc = check_variables(v, err, errlen);
			if (rc < 0)
				return rc;
			vars = v;
		} else if (strcmp(key, "interpreter") == 0) {
			rc = want_text(v, "environment.interpreter", 4096, err,
				       errlen);
			if (rc < 0)
				return rc;
			interp = v;
		} else if (strcmp(key, "//") != 0) {
			snprintf(field, sizeof(field), "environment.%.256s", key);
			return fail(err, errlen, field, "unknown field");
		}
	}
	*out = json_pack("{s:O?,s:O?}", "variables",
			 vars ? vars : NULL, "interpreter", interp);
	if (!*out)
		return fail(err, errlen, "environment", "out of memory");
	if (!vars)
		json_object_set_new(*out, "variables", json_object());
	if (!interp)
		json_object_set_new(*out, "interpreter", json_string("python3"));
	return 0;
}

static int check_tags(json_t *tags, char *err, size_t errlen)
{
	char field[320];
	const char *key;
	json_t *v;

	if (!json_is_object(tags))
		return fail(err, errlen, "tags", "must be an object of strings");
	json_object_foreach(tags, key, v) {
		snprintf(field, sizeof(field), "tags.%.256s", key);
		if (!name_is_valid(key, strlen(key)))
			return fail(err, errlen, field,
				    "invalid key: use 1-255 of [A-Za-z0-9._-], "
				    "not starting with '.'");
		if (!json_is_string(v))
			return fail(err, errlen, field, "must be a string");
		if (json_string_length(v) > STORE_VALUE_MAX)
			return fail(err, errlen, field,
				    "longer than %d bytes", STORE_VALUE_MAX);
	}
	return 0;
}

static int want_name(json_t *v, const char *field, char *err, size_t errlen)
{
	const char *s = json_string_value(v);

	if (!json_is_string(v))
		return fail(err, errlen, field, "must be a string");
	if (!name_is_valid(s, json_string_length(v)))
		return fail(err, errlen, field, "invalid name '%s'", s);
	return 0;
}

static int check_duration(json_t *v, char *err, size_t errlen)
{
	const char *field = "max_run_duration_seconds";
	double d = json_number_value(v);

	/* Numbers load as doubles (see run_request_parse): whole ones only. */
	if (!json_is_number(v) || d != (double)(long long)d)
		return fail(err, errlen, field, "must be an integer");
	if (d <= 0 || d > (double)REQUEST_MAX_DURATION_S)
		return fail(err, errlen, field,
			    "must be between 1 and %lld seconds",
			    (long long)REQUEST_MAX_DURATION_S);
	return 0;
}

/* Checks one top-level field; -EINVAL for unknown ones. */
static int check_field(const char *key, json_t *v, char *err, size_t errlen)
{
	if (strcmp(key, "source_directory") == 0)
		return want_text(v, key, 4095, err, errlen);
	if (strcmp(key, "script") == 0)
		return want_inner_path(v, key, err, errlen);
	if (strcmp(key, "command") == 0)
		return want_string_array(v, key, 1, err, errlen);
	if (strcmp(key, "arguments") == 0)
		return want_string_array(v, key, 0, err, errlen);
	if (strcmp(key, "compute_target") == 0 || strcmp(key, "parent") == 0)
		return want_name(v, key, err, errlen);
	if (strcmp(key, "display_name") == 0) {
		int rc = want_text(v, key, 255, err, errlen);

		if (rc == 0 && !text_is_valid(json_string_value(v),
					      json_string_length(v)))
			rc = fail(err, errlen, key, "must be UTF-8 text");
		return rc;
	}
	if (strcmp(key, "tags") == 0)
		return check_tags(v, err, errlen);
	if (strcmp(key, "max_run_duration_seconds") == 0)
		return check_duration(v, err, errlen);
	if (strcmp(key, "environment") == 0 || strcmp(key, "//") == 0)
		return 0;	/* environment is checked as it is normalized */
	return fail(err, errlen, key, "unknown field");
}

static int check_required(json_t *doc, char *err, size_t errlen)
{
	int has_script = json_object_get(doc, "script") != NULL;
	int has_command = json_object_get(doc, "command") != NULL;

	if (!json_object_get(doc, "source_directory"))
		return fail(err, errlen, "source_directory", "missing");
	if (!has_script && !has_command)
		return fail(err, errlen, "script",
			    "missing: give \"script\" or \"command\"");
	if (has_script && has_command)
		return fail(err, errlen, "command",
			    "give either \"script\" or \"command\", not both");
	return 0;
}

/* The normalized copy: every known field, defaults filled, no comments. */
static int normalize(json_t *doc, json_t **out, char *err, size_t errlen)
{
	static const char *const copied[] = {
		"source_directory", "script", "command", "display_name",
		"tags", "parent",
	};
	json_t *duration = json_object_get(doc, "max_run_duration_seconds");
	json_t *n = json_object();
	json_t *env = NULL;
	int rc;

	if (!n)
		return fail(err, errlen, "request", "out of memory");
	for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
		json_t *v = json_object_get(doc, copied[i]);

		if (v)
			json_object_set(n, copied[i], v);
	}
	if (duration)
		json_object_set_new(n, "max_run_duration_seconds",
				    json_integer((json_int_t)json_number_value(duration)));
	json_object_set_new(n, "arguments", json_object_get(doc, "arguments")
		? json_incref(json_object_get(doc, "arguments")) : json_array());
	json_object_set_new(n, "compute_target",
			    json_object_get(doc, "compute_target")
			    ? json_incref(json_object_get(doc, "compute_target"))
			    : json_string("local"));
	rc = normalize_environment(json_object_get(doc, "environment"), &env,
				   err, errlen);
	if (rc < 0) {
		json_decref(n);
		return rc;
	}
	json_object_set_new(n, "environment", env);
	*out = n;
	return 0;
}

int run_request_parse(const char *text, size_t len, json_t **out, char *err,
		      size_t errlen)
{
	json_error_t jerr;
	const char *key;
	json_t *doc, *v;
	int rc = 0;

	/*
	 * "//" may repeat (DESIGN.md's own example does). Integers load as
	 * doubles, so one too big for 64 bits is refused by its field's
	 * check, with the field's name, not by the loader.
	 */
	doc = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &jerr);
	if (!doc) {
		snprintf(err, errlen, "invalid JSON at line %d, column %d: %s",
			 jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "the request must be a JSON object");
		rc = -EINVAL;
		goto out;
	}
	json_object_foreach(doc, key, v) {
		rc = check_field(key, v, err, errlen);
		if (rc < 0)
			goto out;
	}
	rc = check_required(doc, err, errlen);
	if (rc == 0)
		rc = normalize(doc, out, err, errlen);
out:
	json_decref(doc);
	return rc;
}

int run_request_source(json_t *req, const char *cwd, char *buf, size_t len)
{
	const char *src = json_string_value(json_object_get(req,
							    "source_directory"));
	int n;

	if (!src)
		return -EINVAL;
	n = src[0] == '/' ? snprintf(buf, len, "%s", src)
	    : strcmp(cwd, "/") == 0 ? snprintf(buf, len, "/%s", src)
				    : snprintf(buf, len, "%s/%s", cwd, src);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
