/*
 * model_internal.h - what model.c and model_meta.c share.
 */
#ifndef MLFS_MODEL_INTERNAL_H
#define MLFS_MODEL_INTERNAL_H

#include "mlfs/models.h"
#include "store_internal.h"

/* Model @name with a malloc'd name; STORE_NOT_FOUND when none. */
int model_get_locked(struct conn *c, const char *name, struct store_model *out);
/* Version @key of model @name, or with @name NULL the version of id @key. */
int version_get_locked(struct conn *c, const char *name, int64_t key,
		       struct store_model_version *out);
/* Touch model @model_id and add its CHANGE_MODEL row (@run_id: 0 or the
 * version's source run). */
int model_changed_locked(struct conn *c, int64_t model_id, int64_t run_id,
			 int64_t now);
/* A (version_id, key, value, now) statement: model tags and properties. */
int model_kv_exec_locked(struct conn *c, enum stmt_id id, int64_t version_id,
			 const char *key, const char *value, size_t len,
			 int64_t now);

#endif
