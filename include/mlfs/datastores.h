/*
 * datastores.h - the workspace's datastores: named places data is read
 * from, a local directory or an HTTP(S) base URL, and their credentials.
 *
 * Invariants
 *  - A datastore has a unique name (name_is_valid), a type and a
 *    location. A local one's path is absolute, except the "default"
 *    datastore's, made with the schema: "datastore", relative to the
 *    workspace directory (store_datastore_get() resolves it). An HTTP
 *    one's URL is http:// or https:// without user information
 *    (credentials belong in headers).
 *  - Header values are secrets. They live only in WORKSPACE/credentials
 *    (mode 0600, replaced whole with temp + fsync + rename), never in the
 *    database, an event, a change or an error message; the database keeps
 *    the header names. store_datastore_secrets() is the one way to read
 *    them.
 *  - "default" cannot be removed or replaced (STORE_DENIED).
 *
 * Results: STORE_OK or a negative STORE_* code (store.h). Strings in
 * struct store_datastore are owned by it: store_datastore_release().
 *
 * Threads: as store.h; the credentials file is read-modify-written under
 * an flock of WORKSPACE/credentials.lock, so processes may register at
 * once.
 */
#ifndef MLFS_DATASTORES_H
#define MLFS_DATASTORES_H

#include <stddef.h>
#include <stdint.h>

#include "mlfs/store.h"

#define DATASTORE_DEFAULT "default"
#define DATASTORE_HEADERS_MAX 32
#define DATASTORE_HEADER_VALUE_MAX 8192

enum datastore_type {
	DATASTORE_LOCAL = 1,
	DATASTORE_HTTP = 2,
};

struct store_datastore {
	int64_t id;
	char *name;
	enum datastore_type type;
	char *path;		/* local: absolute directory; else NULL */
	char *url;		/* http: base URL; else NULL */
	char **header_names;	/* http: the names of its secret headers */
	size_t nheaders;
	int64_t created_ms;
};
void store_datastore_release(struct store_datastore *d);

struct datastore_header {
	const char *name;	/* an HTTP token: [A-Za-z0-9!#$%&'*+.^_`|~-] */
	const char *value;	/* visible ASCII and spaces, no CR/LF */
};

struct datastore_spec {
	const char *name;
	enum datastore_type type;
	const char *path;	/* DATASTORE_LOCAL: an absolute directory */
	const char *url;	/* DATASTORE_HTTP */
	const struct datastore_header *headers;
	size_t nheaders;
};

/*
 * store_datastore_register - make datastore @spec->name and fill @out
 * (may be NULL). The directory of a local datastore must exist (checked
 * by the caller, which knows who asks). STORE_EXISTS (the name is
 * taken), STORE_DENIED ("default"), STORE_INVALID (a name, path, URL or
 * header that breaks the rules above; duplicate header names), STORE_IO.
 * One events line and a CHANGE_DATASTORES change; neither holds a
 * header value.
 */
int store_datastore_register(struct store *st, const struct datastore_spec *spec,
			     struct store_datastore *out);

/* By name; STORE_NOT_FOUND. */
int store_datastore_get(struct store *st, const char *name,
			struct store_datastore *out);

typedef int (*store_datastore_fn)(void *ctx, const struct store_datastore *d);
/* All datastores in name order; @fn returning non-zero stops. */
int store_datastore_list(struct store *st, store_datastore_fn fn, void *ctx);

/*
 * store_datastore_delete - remove datastore @name and its credentials.
 * STORE_DENIED for "default", STORE_NOT_FOUND, STORE_NOT_EMPTY while a
 * dataset version uses it (checked in the deleting transaction).
 */
int store_datastore_delete(struct store *st, const char *name);

typedef int (*store_header_fn)(void *ctx, const struct datastore_header *h);
/*
 * store_datastore_secrets - call @fn with each header of datastore @name,
 * value included, in the order registered. STORE_NOT_FOUND (no such
 * datastore), STORE_IO (the credentials file is unreadable or damaged;
 * the message logged never quotes it).
 */
int store_datastore_secrets(struct store *st, const char *name,
			    store_header_fn fn, void *ctx);

const char *datastore_type_name(enum datastore_type t);
/* "local" / "http" -> the type; 0 for anything else. */
enum datastore_type datastore_type_parse(const char *s);

#endif /* MLFS_DATASTORES_H */
