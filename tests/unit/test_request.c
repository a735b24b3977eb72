/*
 * test_request.c - run requests (compute/request.c): strict validation,
 * normalization with defaults, and making source_directory absolute.
 *
 * Refusals are checked for -EINVAL and for a message that names the
 * field ("field 'environment.variables.1X': ..."), since that message is
 * what the writer of experiments/E/submit reads back.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mlfs/request.h"
#include "mlfs/store.h"

TestSuite(request, .timeout = 60);

/* ---- helpers ------------------------------------------------------------ */

static json_t *parse_ok(const char *text)
{
	char err[512] = "";
	json_t *req = NULL;
	int rc = run_request_parse(text, strlen(text), &req, err, sizeof(err));

	cr_assert_eq(rc, 0, "refused %s: %s", text, err);
	cr_assert_not_null(req);
	cr_assert(json_is_object(req));
	return req;
}

/* Refused with -EINVAL and a message; returns it (static buffer). */
static const char *refused(const char *text, size_t len)
{
	static char err[512];
	json_t *req = NULL;
	int rc;

	memset(err, 0, sizeof(err));
	rc = run_request_parse(text, len, &req, err, sizeof(err));
	cr_assert_eq(rc, -EINVAL, "%.200s: got %d, expected -EINVAL", text, rc);
	cr_assert_null(req, "%.200s: *out set on a refusal", text);
	cr_assert_neq(err[0], '\0', "%.200s: no message", text);
	cr_assert_neq(err[strlen(err) - 1], '.',
		      "message ends with a period: %s", err);
	cr_assert_neq(err[strlen(err) - 1], '\n', "message ends with a newline");
	return err;
}

/* Refused, with a message that names @field as "field '@field'". */
static void refused_naming(const char *text, const char *field)
{
	char want[512];
	const char *err = refused(text, strlen(text));

	snprintf(want, sizeof(want), "field '%s'", field);
	cr_assert_not_null(strstr(err, want),
			   "%.200s: message '%s' does not name %s", text, err,
			   want);
}

/* {"source_directory": "/src", "script": "t.py", @extra} refused on @field. */
static void script_req_refused(const char *extra, const char *field)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "{\"source_directory\": \"/src\", \"script\": \"t.py\", %s}",
		 extra);
	refused_naming(text, field);
}

static json_t *script_req_ok(const char *extra)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "{\"source_directory\": \"/src\", \"script\": \"t.py\"%s%s}",
		 *extra ? ", " : "", extra);
	return parse_ok(text);
}

static const char *str_at(json_t *req, const char *key)
{
	json_t *v = json_object_get(req, key);

	cr_assert(json_is_string(v), "'%s' is not a string", key);
	return json_string_value(v);
}

/* Every key of @obj is in @allowed. */
static void assert_keys_only(json_t *obj, const char *const *allowed,
			     size_t n)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		size_t i;

		(void)v;
		for (i = 0; i < n; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		cr_assert_lt(i, n, "unexpected key '%s' in the normalized request",
			     key);
	}
}

static const char *const normalized_keys[] = {
	"source_directory", "script", "command", "arguments",
	"compute_target", "environment", "display_name", "tags", "parent",
	"max_run_duration_seconds",
};

/* ---- accepted requests and defaults ------------------------------------- */

Test(request, minimal_script_request_gets_every_default)
{
	json_t *req = parse_ok("{\"source_directory\": \"/home/me/proj\", "
			       "\"script\": \"train.py\"}");
	json_t *env, *vars, *args;

	cr_assert_str_eq(str_at(req, "source_directory"), "/home/me/proj");
	cr_assert_str_eq(str_at(req, "script"), "train.py");
	cr_assert_null(json_object_get(req, "command"));
	args = json_object_get(req, "arguments");
	cr_assert(json_is_array(args) && json_array_size(args) == 0);
	cr_assert_str_eq(str_at(req, "compute_target"), "local");
	env = json_object_get(req, "environment");
	cr_assert(json_is_object(env));
	vars = json_object_get(env, "variables");
	cr_assert(json_is_object(vars) && json_object_size(vars) == 0,
		  "environment.variables is not {}");
	cr_assert_str_eq(str_at(env, "interpreter"), "python3");
	cr_assert_eq(json_object_size(env), 2);
	cr_assert_null(json_object_get(req, "display_name"));
	cr_assert_null(json_object_get(req, "tags"));
	cr_assert_null(json_object_get(req, "parent"));
	cr_assert_null(json_object_get(req, "max_run_duration_seconds"));
	assert_keys_only(req, normalized_keys,
			 sizeof(normalized_keys) / sizeof(*normalized_keys));
	json_decref(req);
}

Test(request, minimal_command_request_keeps_the_command_as_given)
{
	json_t *req = parse_ok("{\"source_directory\": \"proj\", "
			       "\"command\": [\"python3\", \"-c\", \"print(1)\"]}");
	json_t *cmd = json_object_get(req, "command");

	cr_assert(json_is_array(cmd));
	cr_assert_eq(json_array_size(cmd), 3);
	cr_assert_str_eq(json_string_value(json_array_get(cmd, 0)), "python3");
	cr_assert_str_eq(json_string_value(json_array_get(cmd, 2)), "print(1)");
	cr_assert_null(json_object_get(req, "script"));
	cr_assert_str_eq(str_at(req, "source_directory"), "proj");
	cr_assert_str_eq(str_at(req, "compute_target"), "local");
	cr_assert_eq(json_array_size(json_object_get(req, "arguments")), 0);
	json_decref(req);
}

Test(request, design_example_with_repeated_comments_is_accepted_whole)
{
	static const char text[] =
		"{\n"
		"  \"source_directory\": \"/home/me/proj\",   \"//\": \"absolute, "
		"or relative to the writer's working directory\",\n"
		"  \"script\": \"train.py\",                  \"//\": \"or "
		"\\\"command\\\": [\\\"python3\\\", \\\"train.py\\\"]\",\n"
		"  \"arguments\": [\"--lr\", \"0.1\"],\n"
		"  \"compute_target\": \"local\",\n"
		"  \"environment\": {\"variables\": {\"K\": \"V\"}, "
		"\"interpreter\": \"python3\"},\n"
		"  \"display_name\": \"baseline\",\n"
		"  \"tags\": {\"team\": \"a\"},\n"
		"  \"parent\": \"RUN_ID\",\n"
		"  \"max_run_duration_seconds\": 3600\n"
		"}\n";
	json_t *req = parse_ok(text);
	json_t *env = json_object_get(req, "environment");

	cr_assert_null(json_object_get(req, "//"), "a comment was kept");
	cr_assert_str_eq(str_at(req, "script"), "train.py");
	cr_assert_eq(json_array_size(json_object_get(req, "arguments")), 2);
	cr_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(req, "arguments"), 1)), "0.1");
	cr_assert_str_eq(str_at(json_object_get(env, "variables"), "K"), "V");
	cr_assert_str_eq(str_at(env, "interpreter"), "python3");
	cr_assert_str_eq(str_at(req, "display_name"), "baseline");
	cr_assert_str_eq(str_at(json_object_get(req, "tags"), "team"), "a");
	cr_assert_str_eq(str_at(req, "parent"), "RUN_ID");
	cr_assert_eq(json_integer_value(json_object_get(
			     req, "max_run_duration_seconds")), 3600);
	assert_keys_only(req, normalized_keys,
			 sizeof(normalized_keys) / sizeof(*normalized_keys));
	json_decref(req);
}

Test(request, comments_of_any_type_are_ignored_and_dropped)
{
	json_t *req = script_req_ok("\"//\": 5, \"//\": null, "
				    "\"//\": {\"nested\": [1, 2]}, "
				    "\"//\": [\"x\"], \"//\": true");

	cr_assert_null(json_object_get(req, "//"));
	json_decref(req);
}

Test(request, comment_holding_a_number_beyond_64_bits_is_ignored)
{
	json_decref(script_req_ok("\"//\": 99999999999999999999999"));
}

Test(request, comment_inside_environment_is_ignored_and_dropped)
{
	json_t *req = script_req_ok("\"environment\": {\"//\": \"why\", "
				    "\"variables\": {\"A\": \"1\"}, \"//\": 2}");
	json_t *env = json_object_get(req, "environment");

	cr_assert_null(json_object_get(env, "//"));
	cr_assert_str_eq(str_at(json_object_get(env, "variables"), "A"), "1");
	cr_assert_str_eq(str_at(env, "interpreter"), "python3");
	json_decref(req);
}

Test(request, environment_keeps_given_interpreter_and_fills_variables)
{
	json_t *req = script_req_ok("\"environment\": {\"interpreter\": "
				    "\"/usr/bin/python3.11\"}");
	json_t *env = json_object_get(req, "environment");

	cr_assert_str_eq(str_at(env, "interpreter"), "/usr/bin/python3.11");
	cr_assert(json_is_object(json_object_get(env, "variables")));
	cr_assert_eq(json_object_size(json_object_get(env, "variables")), 0);
	json_decref(req);
	req = script_req_ok("\"environment\": {}");
	env = json_object_get(req, "environment");
	cr_assert_str_eq(str_at(env, "interpreter"), "python3");
	cr_assert_eq(json_object_size(json_object_get(env, "variables")), 0);
	json_decref(req);
}

Test(request, valid_variable_names_are_accepted)
{
	json_t *req = script_req_ok("\"environment\": {\"variables\": "
				    "{\"_X1\": \"a\", \"lower\": \"\", "
				    "\"CUDA_VISIBLE_DEVICES\": \"0\"}}");

	cr_assert_eq(json_object_size(json_object_get(
			     json_object_get(req, "environment"), "variables")),
		     3);
	json_decref(req);
}

Test(request, inner_script_paths_are_accepted)
{
	static const char *const ok[] = {
		"./train.py", "sub/dir/train.py", "..hidden.py", "a..b/c.py",
		"a/...", "x/./y.py",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		char text[256];
		json_t *req;

		snprintf(text, sizeof(text),
			 "{\"source_directory\": \"/s\", \"script\": \"%s\"}",
			 ok[i]);
		req = parse_ok(text);
		cr_assert_str_eq(str_at(req, "script"), ok[i]);
		json_decref(req);
	}
}

Test(request, limits_at_their_edge_are_accepted)
{
	char text[1024], name[256];
	json_t *req;

	memset(name, 'd', 255);
	name[255] = '\0';
	snprintf(text, sizeof(text), "\"display_name\": \"%s\"", name);
	req = script_req_ok(text);
	cr_assert_eq(strlen(str_at(req, "display_name")), 255);
	json_decref(req);
	req = script_req_ok("\"max_run_duration_seconds\": 1");
	json_decref(req);
	snprintf(text, sizeof(text), "\"max_run_duration_seconds\": %lld",
		 (long long)REQUEST_MAX_DURATION_S);
	req = script_req_ok(text);
	json_decref(req);
}

Test(request, utf8_display_name_and_empty_arguments_are_accepted)
{
	json_t *req = script_req_ok("\"display_name\": \"r\\u00e9sum\\u00e9 \\u2603\", "
				    "\"arguments\": [\"\", \"--x\"], "
				    "\"tags\": {}");

	cr_assert_str_eq(str_at(req, "display_name"), "résumé ☃");
	cr_assert_eq(json_array_size(json_object_get(req, "arguments")), 2);
	json_decref(req);
}

Test(request, only_the_given_length_is_parsed)
{
	static const char text[] =
		"{\"source_directory\": \"/s\", \"script\": \"t.py\"}GARBAGE";
	char err[256] = "";
	json_t *req = NULL;

	cr_assert_eq(run_request_parse(text, strlen(text) - 7, &req, err,
				       sizeof(err)), 0, "%s", err);
	json_decref(req);
}

/* ---- refusals ------------------------------------------------------------ */

Test(request, text_that_is_not_json_is_refused)
{
	static const char *const bad[] = {
		"", "{", "{\"source_directory\": }", "nul",
		"{\"source_directory\": \"/s\", \"script\": \"t.py\"} {}",
		"{'source_directory': '/s'}",
		"{\"source_directory\": \"/s\xff\", \"script\": \"t.py\"}",
	};
	static const char nul[] = "{\"source_directory\": \"/s\", \0 "
				  "\"script\": \"t.py\"}";

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		refused(bad[i], strlen(bad[i]));
	refused(nul, sizeof(nul) - 1);
}

Test(request, json_that_is_not_an_object_is_refused)
{
	static const char *const bad[] = {
		"[]", "\"x\"", "42", "null", "true",
		"[{\"source_directory\": \"/s\", \"script\": \"t.py\"}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		refused(bad[i], strlen(bad[i]));
	/* An array parses as JSON: the message says what was wanted. */
	cr_assert_not_null(strstr(refused("[]", 2), "object"));
}

Test(request, a_nul_byte_in_a_string_is_refused)
{
	refused("{\"source_directory\": \"/s\\u0000x\", \"script\": \"t.py\"}",
		strlen("{\"source_directory\": \"/s\\u0000x\", \"script\": "
		       "\"t.py\"}"));
}

Test(request, unknown_field_is_refused_by_name)
{
	json_decref(script_req_ok(""));
	script_req_refused("\"scrpit\": \"t.py\"", "scrpit");
	script_req_refused("\"Script\": \"t.py\"", "Script");
	script_req_refused("\"/\": 1", "/");
	script_req_refused("\"name\": \"r1\"", "name");
}

Test(request, unknown_environment_field_is_refused_by_name)
{
	script_req_refused("\"environment\": {\"vars\": {}}",
			   "environment.vars");
	script_req_refused("\"environment\": {\"docker\": {\"image\": \"x\"}}",
			   "environment.docker");
}

Test(request, wrong_types_are_refused_by_field)
{
	static const struct {
		const char *extra, *field;
	} cases[] = {
		{ "\"arguments\": \"--lr 0.1\"", "arguments" },
		{ "\"arguments\": [\"--lr\", 0.1]", "arguments" },
		{ "\"arguments\": null", "arguments" },
		{ "\"compute_target\": 5", "compute_target" },
		{ "\"compute_target\": null", "compute_target" },
		{ "\"environment\": \"python3\"", "environment" },
		{ "\"environment\": null", "environment" },
		{ "\"environment\": {\"variables\": [\"A=1\"]}",
		  "environment.variables" },
		{ "\"environment\": {\"variables\": {\"A\": 1}}",
		  "environment.variables.A" },
		{ "\"environment\": {\"variables\": {\"A\": null}}",
		  "environment.variables.A" },
		{ "\"environment\": {\"interpreter\": [\"python3\"]}",
		  "environment.interpreter" },
		{ "\"display_name\": 7", "display_name" },
		{ "\"tags\": [\"a\"]", "tags" },
		{ "\"tags\": \"a=b\"", "tags" },
		{ "\"parent\": 12", "parent" },
		{ "\"max_run_duration_seconds\": \"3600\"",
		  "max_run_duration_seconds" },
		{ "\"max_run_duration_seconds\": true",
		  "max_run_duration_seconds" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		script_req_refused(cases[i].extra, cases[i].field);
	refused_naming("{\"source_directory\": 1, \"script\": \"t.py\"}",
		       "source_directory");
	refused_naming("{\"source_directory\": [\"/s\"], \"script\": \"t.py\"}",
		       "source_directory");
	refused_naming("{\"source_directory\": \"/s\", \"script\": 1}",
		       "script");
	refused_naming("{\"source_directory\": \"/s\", \"script\": [\"t.py\"]}",
		       "script");
	refused_naming("{\"source_directory\": \"/s\", \"command\": \"python3 t.py\"}",
		       "command");
	refused_naming("{\"source_directory\": \"/s\", \"command\": {\"0\": \"x\"}}",
		       "command");
}

Test(request, empty_strings_are_refused_by_field)
{
	refused_naming("{\"source_directory\": \"\", \"script\": \"t.py\"}",
		       "source_directory");
	refused_naming("{\"source_directory\": \"/s\", \"script\": \"\"}",
		       "script");
	script_req_refused("\"display_name\": \"\"", "display_name");
	script_req_refused("\"compute_target\": \"\"", "compute_target");
	script_req_refused("\"parent\": \"\"", "parent");
	script_req_refused("\"environment\": {\"interpreter\": \"\"}",
			   "environment.interpreter");
}

Test(request, script_outside_the_source_directory_is_refused)
{
	static const char *const bad[] = {
		"/abs/train.py", "/", "..", "../train.py", "a/../../t.py",
		"a/..", "./../t.py", "a//../../t.py",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char text[256];

		snprintf(text, sizeof(text),
			 "{\"source_directory\": \"/s\", \"script\": \"%s\"}",
			 bad[i]);
		refused_naming(text, "script");
	}
}

Test(request, script_and_command_together_or_neither_are_refused)
{
	const char *err;

	err = refused("{\"source_directory\": \"/s\", \"script\": \"t.py\", "
		      "\"command\": [\"python3\"]}", strlen(
		      "{\"source_directory\": \"/s\", \"script\": \"t.py\", "
		      "\"command\": [\"python3\"]}"));
	cr_assert(strstr(err, "script") && strstr(err, "command"),
		  "message '%s' names only one of script and command", err);
	err = refused("{\"source_directory\": \"/s\", \"arguments\": []}",
		      strlen("{\"source_directory\": \"/s\", \"arguments\": []}"));
	cr_assert(strstr(err, "script") && strstr(err, "command"),
		  "message '%s' names only one of script and command", err);
	refused_naming("{\"script\": \"t.py\"}", "source_directory");
	refused_naming("{}", "source_directory");
}

Test(request, empty_command_or_command_with_non_strings_is_refused)
{
	static const char *const bad[] = {
		"[]", "[\"\"]", "[\"\", \"x\"]", "[\"python3\", 3]",
		"[null]", "[[\"python3\"]]", "[\"python3\", {\"a\": 1}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char text[256];

		snprintf(text, sizeof(text),
			 "{\"source_directory\": \"/s\", \"command\": %s}",
			 bad[i]);
		refused_naming(text, "command");
	}
}

Test(request, bad_environment_variable_names_are_refused_by_name)
{
	static const char *const bad[] = {
		"1X", "A-B", "A B", "A=B", "A.B", "", "\\u00e9",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char extra[256], field[256];

		snprintf(extra, sizeof(extra),
			 "\"environment\": {\"variables\": {\"%s\": \"v\"}}",
			 bad[i]);
		snprintf(field, sizeof(field), "environment.variables.%s",
			 strcmp(bad[i], "\\u00e9") == 0 ? "é" : bad[i]);
		script_req_refused(extra, field);
	}
}

Test(request, invalid_tag_keys_are_refused_by_name)
{
	static const char *const bad[] = {
		"bad key", ".hidden", "a/b", "", "//", "t\\u00e9",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char extra[256], field[256];

		snprintf(extra, sizeof(extra), "\"tags\": {\"%s\": \"v\"}",
			 bad[i]);
		snprintf(field, sizeof(field), "tags.%s",
			 strcmp(bad[i], "t\\u00e9") == 0 ? "té" : bad[i]);
		script_req_refused(extra, field);
	}
}

Test(request, non_string_tag_values_are_refused_by_name)
{
	script_req_refused("\"tags\": {\"lr\": 0.1}", "tags.lr");
	script_req_refused("\"tags\": {\"ok\": \"1\", \"n\": null}", "tags.n");
	script_req_refused("\"tags\": {\"o\": {}}", "tags.o");
	script_req_refused("\"tags\": {\"b\": true}", "tags.b");
}

Test(request, tag_value_over_the_store_limit_is_refused)
{
	size_t n = STORE_VALUE_MAX + 1;
	size_t cap = n + 128;
	char *text = malloc(cap);
	char *p;
	int len;

	cr_assert_not_null(text);
	len = snprintf(text, cap, "{\"source_directory\": \"/s\", "
			     "\"script\": \"t.py\", \"tags\": {\"big\": \"");
	p = text + len;
	memset(p, 'v', n);
	p += n;
	snprintf(p, cap - (size_t)(p - text), "\"}}");
	refused_naming(text, "tags.big");
	/* Exactly at the limit is fine. */
	p[-1] = '"';
	p[0] = '}';
	p[1] = '}';
	p[2] = '\0';
	json_decref(parse_ok(text));
	free(text);
}

Test(request, display_name_over_255_bytes_is_refused)
{
	char extra[1024], name[300];

	memset(name, 'd', 256);
	name[256] = '\0';
	snprintf(extra, sizeof(extra), "\"display_name\": \"%s\"", name);
	script_req_refused(extra, "display_name");
	/* 128 two-byte characters: 256 bytes. */
	{
		size_t n = (size_t)snprintf(extra, sizeof(extra),
					    "\"display_name\": \"");

		for (int i = 0; i < 128; i++)
			n += (size_t)snprintf(extra + n, sizeof(extra) - n,
					      "\\u00e9");
		snprintf(extra + n, sizeof(extra) - n, "\"");
	}
	script_req_refused(extra, "display_name");
	/* 127 of them and one ASCII byte: 255 bytes, accepted. */
	{
		size_t n = (size_t)snprintf(extra, sizeof(extra),
					    "\"display_name\": \"x");

		for (int i = 0; i < 127; i++)
			n += (size_t)snprintf(extra + n, sizeof(extra) - n,
					      "\\u00e9");
		snprintf(extra + n, sizeof(extra) - n, "\"");
	}
	json_decref(script_req_ok(extra));
}

Test(request, max_run_duration_out_of_range_is_refused)
{
	static const char *const bad[] = {
		"0", "-1", "-0", "1.5", "1e-3", "\"60\"",
		"-9223372036854775808", "9223372036854775807",
	};
	char extra[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		snprintf(extra, sizeof(extra),
			 "\"max_run_duration_seconds\": %s", bad[i]);
		script_req_refused(extra, "max_run_duration_seconds");
	}
	snprintf(extra, sizeof(extra), "\"max_run_duration_seconds\": %lld",
		 (long long)REQUEST_MAX_DURATION_S + 1);
	script_req_refused(extra, "max_run_duration_seconds");
}

Test(request, max_run_duration_written_as_a_whole_real_is_an_integer)
{
	static const char *const good[] = { "3600", "3600.0", "3.6e3" };
	char extra[128];

	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		json_t *req;

		snprintf(extra, sizeof(extra),
			 "\"max_run_duration_seconds\": %s", good[i]);
		req = script_req_ok(extra);
		cr_assert(json_is_integer(json_object_get(req,
				"max_run_duration_seconds")), "%s", good[i]);
		cr_assert_eq(json_integer_value(json_object_get(req,
				"max_run_duration_seconds")), 3600, "%s", good[i]);
		json_decref(req);
	}
}

Test(request, max_run_duration_beyond_64_bits_is_refused_by_name)
{
	script_req_refused("\"max_run_duration_seconds\": "
			   "99999999999999999999999",
			   "max_run_duration_seconds");
}

Test(request, invalid_compute_target_and_parent_names_are_refused)
{
	static const char *const bad[] = {
		"a/b", ".local", "has space", "..", "x\\ty",
	};
	char extra[512], name[300];

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		snprintf(extra, sizeof(extra), "\"compute_target\": \"%s\"",
			 bad[i]);
		script_req_refused(extra, "compute_target");
		snprintf(extra, sizeof(extra), "\"parent\": \"%s\"", bad[i]);
		script_req_refused(extra, "parent");
	}
	memset(name, 'p', 256);
	name[256] = '\0';
	snprintf(extra, sizeof(extra), "\"parent\": \"%s\"", name);
	script_req_refused(extra, "parent");
}

Test(request, format_directives_in_names_are_quoted_as_text)
{
	script_req_refused("\"%n%s%s\": 1", "%n%s%s");
	script_req_refused("\"environment\": {\"%n%s\": 1}",
			   "environment.%n%s");
	script_req_refused("\"environment\": {\"variables\": {\"%n\": \"v\"}}",
			   "environment.variables.%n");
	script_req_refused("\"tags\": {\"%s%n\": \"v\"}", "tags.%s%n");
	script_req_refused("\"parent\": \"%s%n\"", "parent");
}

Test(request, a_long_unknown_field_is_refused_without_overrun)
{
	char extra[1400];
	int n = snprintf(extra, sizeof(extra), "\"");

	memset(extra + n, 'k', 1200);
	snprintf(extra + n + 1200, sizeof(extra) - (size_t)n - 1200,
		 "\": 1");
	{
		char text[2048];
		const char *err;

		snprintf(text, sizeof(text), "{\"source_directory\": \"/s\", "
			 "\"script\": \"t.py\", %s}", extra);
		err = refused(text, strlen(text));
		cr_assert_eq(strncmp(err, "field 'kkkkkkkk", 15), 0,
			     "message '%s' does not name the field", err);
		cr_assert_lt(strlen(err), 512);
	}
}

Test(request, a_small_error_buffer_is_never_overrun)
{
	char buf[16];
	json_t *req = NULL;

	memset(buf, 'X', sizeof(buf));
	cr_assert_eq(run_request_parse("{\"nope\": 1}", 11, &req, buf, 8),
		     -EINVAL);
	cr_assert_eq(strlen(buf), 7);
	for (size_t i = 8; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 'X', "byte %zu written past errlen", i);
	memset(buf, 'X', sizeof(buf));
	cr_assert_eq(run_request_parse("{", 1, &req, buf, 8), -EINVAL);
	for (size_t i = 8; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 'X', "byte %zu written past errlen", i);
}

/* ---- run_request_source ------------------------------------------------- */

static void assert_source(const char *src, const char *cwd, const char *want)
{
	char text[1024], buf[PATH_MAX];
	json_t *req;

	snprintf(text, sizeof(text),
		 "{\"source_directory\": \"%s\", \"script\": \"t.py\"}", src);
	req = parse_ok(text);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(run_request_source(req, cwd, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, want, "source '%s' in '%s'", src, cwd);
	json_decref(req);
}

Test(request, source_absolute_path_is_kept)
{
	assert_source("/home/me/proj", "/somewhere/else", "/home/me/proj");
	assert_source("/", "/x", "/");
}

Test(request, source_relative_path_is_joined_to_the_cwd)
{
	assert_source("proj", "/home/me", "/home/me/proj");
	assert_source("a/b", "/home/me", "/home/me/a/b");
}

Test(request, source_too_long_is_enametoolong)
{
	char buf[32];
	json_t *req = parse_ok("{\"source_directory\": \"proj\", "
			       "\"script\": \"t.py\"}");

	/* "/0123456789/proj" is 16 bytes: fits 17, not 16. */
	cr_assert_eq(run_request_source(req, "/0123456789", buf, 17), 0);
	cr_assert_str_eq(buf, "/0123456789/proj");
	cr_assert_eq(run_request_source(req, "/0123456789", buf, 16),
		     -ENAMETOOLONG);
	json_decref(req);
	req = parse_ok("{\"source_directory\": \"/abcdefghijklmnopqrstuvwxyz"
		       "0123456789\", \"script\": \"t.py\"}");
	cr_assert_eq(run_request_source(req, "/cwd", buf, sizeof(buf)),
		     -ENAMETOOLONG);
	json_decref(req);
}

Test(request, source_longest_relative_path_under_a_deep_cwd_is_enametoolong)
{
	char *text = malloc(4200), *cwd = malloc(PATH_MAX);
	char buf[PATH_MAX];
	json_t *req;
	int len;

	cr_assert(text && cwd);
	len = snprintf(text, 4200, "{\"source_directory\": \"");
	memset(text + len, 's', 4095);
	snprintf(text + len + 4095, 4200 - (size_t)len - 4095,
		 "\", \"script\": \"t.py\"}");
	req = parse_ok(text);
	cwd[0] = '/';
	memset(cwd + 1, 'c', 200);
	cwd[201] = '\0';
	cr_assert_eq(run_request_source(req, cwd, buf, sizeof(buf)),
		     -ENAMETOOLONG);
	json_decref(req);
	free(text);
	free(cwd);
}
