/*
 * dataset_internal.h - what dataset.c, dataset_local.c and dataset_http.c
 * share: the path rule and the file lists they build.
 */
#ifndef MLFS_DATASET_INTERNAL_H
#define MLFS_DATASET_INTERNAL_H

#include <stddef.h>

#include "mlfs/datasets.h"

/*
 * 1 when @path follows datasets.h invariant 4: '/'-separated segments,
 * none empty, "." or "..", at most DATASET_PATH_MAX bytes.
 */
int dataset_path_is_valid(const char *path);

/*
 * A new zeroed entry at the end of @fl (pins unset: mtime_ns and
 * http_mtime_ms -1), or NULL when out of memory.
 */
struct dataset_file *dataset_files_push(struct dataset_files *fl);

/* Drops entries @from.. of @fl (releasing them; all of @fl when 0). */
void dataset_files_truncate(struct dataset_files *fl, size_t from);

/*
 * Sorts entries @from.. of @fl by path, bytewise, and drops all but the
 * first of equal paths.
 */
void dataset_files_sort_unique(struct dataset_files *fl, size_t from);

/* Writes the message into @err (may be NULL) and returns @rc. */
int dataset_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Bytewise order of two paths, for qsort() and bsearch(). */
int dataset_path_cmp(const char *a, const char *b);

#endif /* MLFS_DATASET_INTERNAL_H */
