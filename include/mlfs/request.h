/*
 * request.h - the run request written into experiments/E/submit: strict
 * validation and normalization.
 *
 * A request is one JSON object (DESIGN.md, "Run request"):
 *
 *   source_directory          string, required: absolute, or relative to
 *                             the writer's working directory
 *   script | command          exactly one: a relative path inside the
 *                             source directory, or a non-empty array of
 *                             strings run as given
 *   arguments                 array of strings
 *   compute_target            name, default "local"
 *   environment               {"variables": {NAME: string}, no MLFS_*,
 *                              "interpreter": string (default "python3")}
 *   display_name              string
 *   tags                      {KEY: string}
 *   parent                    run id
 *   max_run_duration_seconds  integer > 0
 *   "//"                      a comment, any value, ignored
 *
 * Any other field, a wrong type or a bad value is refused with a message
 * that names the field ("field 'environment.variables.1X': ...").
 */
#ifndef MLFS_REQUEST_H
#define MLFS_REQUEST_H

#include <jansson.h>
#include <stddef.h>

#define REQUEST_MAX_DURATION_S (10LL * 366 * 24 * 3600)

/*
 * run_request_parse - validate @len bytes of @text. On success returns 0
 * and *out, a new object (the caller json_decref()s it) holding every
 * field with its default filled in and no comments; source_directory is
 * left as written (see run_request_resolve). Otherwise -EINVAL and a
 * message in @err.
 */
int run_request_parse(const char *text, size_t len, json_t **out, char *err,
		      size_t errlen);

/*
 * run_request_source - the source directory of normalized request @req
 * made absolute against @cwd (the writer's working directory) in @buf:
 * lexically, without touching the filesystem. 0, -ENAMETOOLONG.
 */
int run_request_source(json_t *req, const char *cwd, char *buf, size_t len);

#endif
