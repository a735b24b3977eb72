/*
 * models.h - the model registry of a workspace store: models, their
 * numbered versions, version files, tags, properties, aliases and the
 * references deployments hold on versions (store/model.c,
 * store/model_meta.c).
 *
 * Invariants
 *  1. Version numbers of a model name count 1, 2, 3 ... and are never
 *     reused: not after a version is deleted, nor after the model itself
 *     is removed and made again (the counter is kept per name).
 *  2. A version is registered whole or not at all: its number, files,
 *     tags and properties are written in one transaction, and the model
 *     is made in the same transaction when it is missing.
 *  3. A version's files and properties never change; its description,
 *     framework and source run neither. Tags change.
 *  4. Files name blobs (mlfs/blob.h) by their sha256 hex; the store only
 *     records references. A blob stays referenced until the last version
 *     naming it is deleted: store_model_version_delete() hands back the
 *     hexes that became unreferenced, for the caller to remove. The
 *     store cannot see blob files: a caller that puts a blob and then
 *     registers it must not race with one removing that hex as an
 *     orphan (the mount serializes the two; see store_blob_each() for
 *     the cleanup at mount, which runs before any registration).
 *  5. A version an active deployment refers to cannot be deleted
 *     (STORE_IN_USE). Deleting a version drops its aliases, tags,
 *     properties and inactive deployment references with it.
 *  6. Every mutation adds a CHANGE_MODEL row (and CHANGE_MODELS when a
 *     model is made or removed) in its transaction; registering,
 *     deleting versions, making and removing models and moving aliases
 *     also add an events line ("models/NAME/3 registered").
 *
 * Results, ownership and threads are as in store.h: STORE_OK or a
 * negative STORE_* code, out-parameters filled only on STORE_OK, strings
 * owned by their struct until its *_release(), every call thread-safe,
 * callbacks must not call back into the store.
 */
#ifndef MLFS_MODELS_H
#define MLFS_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "mlfs/store.h"

#define MODEL_FILE_PATH_MAX 4096	/* bytes of a version file's path */

/* ---- models ---------------------------------------------------------- */

struct store_model {
	int64_t id;
	char *name;
	int64_t created_ms;
	int64_t updated_ms;	/* last change to the model or its versions */
	int64_t version_count;	/* versions that exist now */
	int64_t latest;		/* highest existing version, 0 when none */
};
void store_model_release(struct store_model *m);

/*
 * store_model_create - make an empty model (mkdir models/NAME). @out may
 * be NULL. STORE_INVALID for a bad name (name_is_valid()), STORE_EXISTS.
 */
int store_model_create(struct store *st, const char *name,
		       struct store_model *out);
int store_model_get(struct store *st, const char *name,
		    struct store_model *out);
/* STORE_NOT_FOUND, STORE_NOT_EMPTY while the model has versions. */
int store_model_delete(struct store *st, const char *name);
/* Models in name order; a non-zero return from @fn stops. */
typedef int (*store_model_fn)(void *ctx, const struct store_model *m);
int store_model_list(struct store *st, store_model_fn fn, void *ctx);

/* ---- versions -------------------------------------------------------- */

/* One file of a version. @mode keeps only permission bits (07777). */
struct store_model_file {
	const char *path;	/* relative: "model.pkl", "sub/weights.bin" */
	const char *blob;	/* BLOB_HEX_LEN lowercase hex digits */
	int64_t size;
	unsigned int mode;
};

/*
 * What to register. Strings are the caller's; every field but @files may
 * be NULL / 0. Paths must be relative, without empty, "." or ".."
 * components, valid text, at most MODEL_FILE_PATH_MAX bytes, and unique
 * in the version. Tags and properties follow store.h's rules.
 */
struct model_version_spec {
	const char *description;	/* NULL: "" */
	const char *framework;		/* NULL: none; else name_is_valid() */
	int64_t run_id;			/* the source run, 0 for none */
	const struct store_model_file *files;
	size_t nfiles;
	const struct store_kv *tags;
	size_t ntags;
	const struct store_kv *properties;
	size_t nproperties;
};

struct store_model_version {
	int64_t id;		/* internal, stable */
	int64_t model_id;
	char *model;		/* the model's name */
	int64_t version;	/* 1, 2, 3 ... within the model */
	int64_t created_ms;
	int64_t updated_ms;	/* registration or last tag change */
	char *description;	/* never NULL */
	char *framework;	/* NULL when none */
	int64_t run_id;		/* 0 when none */
};
void store_model_version_release(struct store_model_version *v);

/*
 * store_model_register - register the next version of model @name,
 * making the model if it does not exist. All or nothing (invariant 2):
 * concurrent registrations of one name, from any thread or process, get
 * distinct consecutive numbers. @out may be NULL.
 *
 * STORE_INVALID for a bad name, path, blob hex, size, description,
 * framework, tag or property, or a path given twice; STORE_TOO_BIG for a
 * value over STORE_VALUE_MAX; STORE_NOT_FOUND when @spec->run_id names no
 * run.
 */
int store_model_register(struct store *st, const char *name,
			 const struct model_version_spec *spec,
			 struct store_model_version *out);

/* Version @version of model @name; STORE_NOT_FOUND for either missing. */
int store_model_version_get(struct store *st, const char *name,
			    int64_t version, struct store_model_version *out);
/* The version with internal id @version_id. */
int store_model_version_get_by_id(struct store *st, int64_t version_id,
				  struct store_model_version *out);

/* Versions are passed with fields valid during the callback only. */
typedef int (*store_model_version_fn)(void *ctx,
				      const struct store_model_version *v);
/* Versions of model @name in number order; STORE_NOT_FOUND: no model. */
int store_model_version_list(struct store *st, const char *name,
			     store_model_version_fn fn, void *ctx);
/* Versions registered from run @run_id, by model name then number. */
int store_run_models(struct store *st, int64_t run_id,
		     store_model_version_fn fn, void *ctx);

/* Highest existing version of @name; STORE_NOT_FOUND when none. */
int store_model_latest(struct store *st, const char *name, int64_t *version);

/* Files of version @version_id in path order (STORE_OK for none). */
typedef int (*store_model_file_fn)(void *ctx, const struct store_model_file *f);
int store_model_files(struct store *st, int64_t version_id,
		      store_model_file_fn fn, void *ctx);
/*
 * store_model_files_at - the files of version @version_id whose path is
 * @path or lies below it (@path "/"-separated, no trailing "/"; "" for
 * all), in path order, and possibly a few more that share @path as a
 * string prefix ("a.b" for "a"): callers match exactly. One index range,
 * so a lookup in a large version costs what its answer holds.
 */
int store_model_files_at(struct store *st, int64_t version_id,
			 const char *path, store_model_file_fn fn, void *ctx);

/* A list of blob hexes, owned by the struct. */
struct store_hex_list {
	size_t n;
	char **hex;
};
void store_hex_list_release(struct store_hex_list *l);

/*
 * store_model_version_delete - delete version @version of @name, with its
 * files, tags, properties, aliases and inactive deployment references.
 * Its number is not reused. *orphans (may be NULL) gets, sorted, the blob
 * hexes no remaining model version and no dataset file refers to: the
 * caller removes those files
 * (blob_remove()) after this returns. STORE_NOT_FOUND, STORE_IN_USE while
 * an active deployment refers to the version (nothing changes).
 */
int store_model_version_delete(struct store *st, const char *name,
			       int64_t version, struct store_hex_list *orphans);

/*
 * store_blob_each - every blob hex some model version or some copied
 * dataset file (datasets.h) refers to, once each, in hex order: what a
 * cleanup at mount must keep.
 */
typedef int (*store_blob_fn)(void *ctx, const char *hex);
int store_blob_each(struct store *st, store_blob_fn fn, void *ctx);

/*
 * store_blob_referenced - *referenced = 1 when some model version or some
 * copied dataset file refers to blob @hex, else 0. For a failed put's
 * cleanup: a blob it made may meanwhile have been found stored by
 * another process's put and committed there, and must then stay (ask
 * while holding the put lock exclusively, blob.h). STORE_OK, STORE_IO.
 */
int store_blob_referenced(struct store *st, const char *hex, int *referenced);

/* ---- tags and properties of versions (store/model_meta.c) ------------ */

/*
 * As for runs (store.h): keys follow the name rules, values are text of
 * at most STORE_VALUE_MAX bytes; tags change, properties are add-only
 * (adding an equal value is STORE_OK, a different one STORE_DENIED).
 * STORE_NOT_FOUND for a missing version, or a missing tag to delete.
 */
int store_model_tag_set(struct store *st, int64_t version_id, const char *key,
			const char *value, size_t len);
int store_model_tag_delete(struct store *st, int64_t version_id,
			   const char *key);
int store_model_tag_list(struct store *st, int64_t version_id,
			 store_kv_fn fn, void *ctx);
int store_model_property_add(struct store *st, int64_t version_id,
			     const char *key, const char *value, size_t len);
int store_model_property_list(struct store *st, int64_t version_id,
			      store_kv_fn fn, void *ctx);

/* ---- aliases (store/model_meta.c) ------------------------------------ */

/*
 * An alias names one version of a model ("production" -> 3) and shows in
 * the mount beside the version directories. Aliases follow the name
 * rules, and may not be "latest", "v" followed by digits only, or digits
 * only, which the mount's tree uses (STORE_INVALID). Setting an existing
 * alias moves it. STORE_NOT_FOUND for a missing model or version.
 */
int store_model_alias_set(struct store *st, const char *name,
			  const char *alias, int64_t version);
/*
 * store_model_alias_rename - alias @to names what @from names, and @from
 * goes: one transaction, so no reader sees both names or neither ("ln
 * -sfn" renames a temporary alias over the real one). STORE_NOT_FOUND
 * (model or @from), STORE_INVALID (@to as store_model_alias_set),
 * STORE_EXISTS (@to exists and @noreplace).
 */
int store_model_alias_rename(struct store *st, const char *name,
			     const char *from, const char *to, int noreplace);
/* STORE_NOT_FOUND for a missing model or alias. */
int store_model_alias_delete(struct store *st, const char *name,
			     const char *alias);
int store_model_alias_get(struct store *st, const char *name,
			  const char *alias, int64_t *version);
/* Aliases of @name in alias order. */
typedef int (*store_alias_fn)(void *ctx, const char *alias, int64_t version);
int store_model_alias_list(struct store *st, const char *name,
			   store_alias_fn fn, void *ctx);

/* ---- deployment references (store/model_meta.c) ---------------------- */

/*
 * A deployment (a later feature) pins the versions it serves. A new
 * reference is active. STORE_INVALID for a bad deployment name,
 * STORE_NOT_FOUND for a missing version, STORE_EXISTS when the
 * deployment already refers to the version.
 */
int store_deployment_ref_add(struct store *st, const char *deployment,
			     int64_t version_id);
/*
 * Marks every reference of @deployment active (1) or not (0).
 * STORE_NOT_FOUND when the deployment has none.
 */
int store_deployment_ref_set_active(struct store *st, const char *deployment,
				    int active);
/* Drops every reference of @deployment. STORE_NOT_FOUND when none. */
int store_deployment_ref_remove(struct store *st, const char *deployment);

#endif
