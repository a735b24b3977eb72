/*
 * datastore.c - datastores in the database, their secret headers in
 * WORKSPACE/credentials (see datastores.h for the rules).
 *
 * Registration writes the credentials first and commits the row after;
 * a failed commit takes the credentials out again. A crash in between
 * leaves credentials of a name that does not exist: never read (reads go
 * through an existing datastore), and replaced when the name is
 * registered.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlfs/datastores.h"
#include "mlfs/parse.h"
#include "mlfs/strbuf.h"
#include "mlfs/timefmt.h"
#include "snapshot_internal.h"	/* fsync_dir */
#include "store_internal.h"

#define CREDENTIALS "credentials"
#define CREDENTIALS_LOCK "credentials.lock"
#define CREDENTIALS_MAX (4 * 1024 * 1024)

const char *datastore_type_name(enum datastore_type t)
{
	switch (t) {
	case DATASTORE_LOCAL: return "local";
	case DATASTORE_HTTP: return "http";
	}
	return "unknown";
}

enum datastore_type datastore_type_parse(const char *s)
{
	if (strcmp(s, "local") == 0)
		return DATASTORE_LOCAL;
	if (strcmp(s, "http") == 0)
		return DATASTORE_HTTP;
	return 0;
}

void store_datastore_release(struct store_datastore *d)
{
	for (size_t i = 0; i < d->nheaders; i++)
		free(d->header_names[i]);
	free(d->header_names);
	free(d->name);
	free(d->path);
	free(d->url);
	memset(d, 0, sizeof(*d));
}

/* ---- validation ------------------------------------------------------- */

static int header_name_is_valid(const char *s)
{
	static const char token[] = "!#$%&'*+-.^_`|~";

	if (!s[0] || strlen(s) > 255)
		return 0;
	for (; *s; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && !strchr(token, *s))
			return 0;
	return 1;
}

static int header_value_is_valid(const char *s)
{
	if (strlen(s) > DATASTORE_HEADER_VALUE_MAX)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* http(s)://HOST[:PORT][/PATH], no user information, no spaces. */
static int url_is_valid(const char *url)
{
	const char *host, *end;

	if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return 0;
	end = host + strcspn(host, "/?#");
	if (end == host || memchr(host, '@', (size_t)(end - host)))
		return 0;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return 0;
	return strlen(url) <= 4096;
}

static int spec_is_valid(const struct datastore_spec *spec)
{
	if (!spec->name || !name_is_valid(spec->name, strlen(spec->name)))
		return 0;
	if (spec->type == DATASTORE_LOCAL)
		return spec->path && spec->path[0] == '/' && !spec->url &&
		       !spec->nheaders && strlen(spec->path) < 4096;
	if (spec->type != DATASTORE_HTTP || spec->path || !spec->url ||
	    !url_is_valid(spec->url) || spec->nheaders > DATASTORE_HEADERS_MAX)
		return 0;
	for (size_t i = 0; i < spec->nheaders; i++) {
		if (!header_name_is_valid(spec->headers[i].name) ||
		    !header_value_is_valid(spec->headers[i].value))
			return 0;
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(spec->headers[i].name,
				       spec->headers[j].name) == 0)
				return 0;
	}
	return 1;
}

/* ---- the credentials file --------------------------------------------- */

static int cred_path(struct store *st, const char *leaf, struct strbuf *out)
{
	return strbuf_addf(out, "%s/%s", store_dir(st), leaf) < 0
		       ? STORE_NOMEM : STORE_OK;
}

/* Takes the credentials lock (exclusive) into *fd. */
static int cred_lock(struct store *st, int *fd)
{
	struct strbuf path = STRBUF_INIT;
	int rc = cred_path(st, CREDENTIALS_LOCK, &path);

	if (rc != STORE_OK)
		return rc;
	*fd = open(path.buf, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0 || flock(*fd, LOCK_EX) < 0) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		rc = STORE_IO;
	}
	strbuf_release(&path);
	return rc;
}

/* The credentials object ({} when there is no file yet) into *out. */
static int cred_load(struct store *st, json_t **out)
{
	struct strbuf path = STRBUF_INIT;
	json_error_t jerr;
	int rc = cred_path(st, CREDENTIALS, &path);
	int fd;

	if (rc != STORE_OK)
		return rc;
	fd = open(path.buf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = errno == ENOENT ? STORE_OK : STORE_IO;
		*out = rc == STORE_OK ? json_object() : NULL;
		goto out;
	}
	*out = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
	close(fd);
	if (!*out || !json_is_object(*out)) {
		/* jerr.text may quote the file: never log it */
		fprintf(stderr, "mlfs: store: '%s' is damaged (line %d)\n",
			path.buf, jerr.line);
		json_decref(*out);
		*out = NULL;
		rc = STORE_IO;
	}
out:
	if (rc == STORE_OK && !*out)
		rc = STORE_NOMEM;
	strbuf_release(&path);
	return rc;
}

/* Replaces the credentials file with @creds: 0600 temp, fsync, rename. */
static int cred_save(struct store *st, json_t *creds)
{
	struct strbuf path = STRBUF_INIT, tmp = STRBUF_INIT;
	char *text = json_dumps(creds, JSON_COMPACT | JSON_SORT_KEYS);
	int rc = STORE_NOMEM, fd = -1;
	size_t len;

	if (!text || cred_path(st, CREDENTIALS, &path) != STORE_OK ||
	    strbuf_addf(&tmp, "%s.tmp-%ld", path.buf, (long)getpid()) < 0)
		goto out;
	rc = STORE_IO;
	len = strlen(text);
	fd = open(tmp.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0 || fchmod(fd, 0600) < 0 ||
	    write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
		goto out_unlink;
	close(fd);
	fd = -1;
	if (rename(tmp.buf, path.buf) < 0)
		goto out_unlink;
	rc = fsync_dir(store_dir(st)) < 0 ? STORE_IO : STORE_OK;
	goto out;
out_unlink:
	unlink(tmp.buf);
out:
	if (fd >= 0)
		close(fd);
	if (text) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
	strbuf_release(&tmp);
	strbuf_release(&path);
	return rc;
}

/*
 * Sets (@spec) or drops (@spec NULL) the headers of datastore @name; the
 * caller holds the credentials lock.
 */
static int cred_update_locked(struct store *st, const char *name,
			      const struct datastore_spec *spec)
{
	json_t *creds = NULL, *list = NULL;
	int rc = cred_load(st, &creds);

	if (rc != STORE_OK)
		goto out;
	if (spec) {
		rc = STORE_NOMEM;
		list = json_array();
		for (size_t i = 0; list && i < spec->nheaders; i++)
			if (json_array_append_new(list, json_pack("[ss]",
					spec->headers[i].name,
					spec->headers[i].value)) < 0)
				goto out;
		if (!list || json_object_set_new(creds, name, list) < 0)
			goto out;
		list = NULL;
	} else if (!json_object_get(creds, name)) {
		goto out;	/* nothing to drop */
	} else {
		json_object_del(creds, name);
	}
	rc = cred_save(st, creds);
out:
	json_decref(list);
	json_decref(creds);
	return rc;
}

int store_datastore_secrets(struct store *st, const char *name,
			    store_header_fn fn, void *ctx)
{
	struct store_datastore d;
	json_t *creds = NULL, *list, *pair;
	size_t i;
	int rc = store_datastore_get(st, name, &d);

	if (rc != STORE_OK)
		return rc;
	rc = cred_load(st, &creds);
	if (rc != STORE_OK)
		goto out;
	list = json_object_get(creds, name);
	if (!list && d.nheaders)
		rc = STORE_IO;	/* the row names headers the file lacks */
	json_array_foreach(list, i, pair) {
		struct datastore_header h = {
			json_string_value(json_array_get(pair, 0)),
			json_string_value(json_array_get(pair, 1)),
		};
		if (!h.name || !h.value) {
			rc = STORE_IO;
			break;
		}
		if (fn(ctx, &h) != 0)
			break;
	}
out:
	json_decref(creds);	/* jansson frees; the values are not kept */
	store_datastore_release(&d);
	return rc;
}

/* ---- rows ------------------------------------------------------------- */

static int names_from_json(const char *text, struct store_datastore *d)
{
	json_t *a = json_loads(text ? text : "[]", 0, NULL);
	json_t *v;
	size_t i;
	int rc = STORE_OK;

	if (!json_is_array(a)) {
		json_decref(a);
		return STORE_CORRUPT;
	}
	d->header_names = calloc(json_array_size(a) + 1, sizeof(char *));
	if (!d->header_names)
		rc = STORE_NOMEM;
	json_array_foreach(a, i, v) {
		if (rc != STORE_OK)
			break;
		d->header_names[i] = strdup(json_string_value(v) ?
					    json_string_value(v) : "");
		if (!d->header_names[i])
			rc = STORE_NOMEM;
		else
			d->nheaders++;
	}
	json_decref(a);
	return rc;
}

static char *dup_or_null(const unsigned char *s)
{
	return s ? strdup((const char *)s) : NULL;
}

/* The row @s stands on into @out; a relative path is the workspace's. */
static int datastore_from_row(struct store *st, sqlite3_stmt *s,
			      struct store_datastore *out)
{
	const unsigned char *path = sqlite3_column_text(s, 3);
	struct store_datastore d = {
		.id = sqlite3_column_int64(s, 0),
		.name = dup_or_null(sqlite3_column_text(s, 1)),
		.type = (enum datastore_type)sqlite3_column_int(s, 2),
		.url = dup_or_null(sqlite3_column_text(s, 4)),
		.created_ms = sqlite3_column_int64(s, 6),
	};
	struct strbuf abs = STRBUF_INIT;
	int rc = names_from_json((const char *)sqlite3_column_text(s, 5), &d);

	if (rc == STORE_OK && path) {
		if (path[0] == '/')
			rc = strbuf_addstr(&abs, (const char *)path);
		else
			rc = strbuf_addf(&abs, "%s/%s", store_dir(st),
					 (const char *)path);
		d.path = rc < 0 ? NULL : strbuf_detach(&abs, NULL);
		rc = d.path ? STORE_OK : STORE_NOMEM;
	}
	if (rc == STORE_OK && !d.name)
		rc = STORE_NOMEM;
	if (rc != STORE_OK) {
		strbuf_release(&abs);
		store_datastore_release(&d);
		return rc;
	}
	*out = d;
	return STORE_OK;
}

static int datastore_row(struct store *st, sqlite3_stmt *s, void *out)
{
	int rc = datastore_from_row(st, s, out);

	return rc == STORE_OK ? 1 : rc;
}

int store_datastore_get(struct store *st, const char *name,
			struct store_datastore *out)
{
	struct store_read r = {
		.id = SQL_DATASTORE_GET, .what = "get datastore",
		.bind = bind_text1, .bind_arg = name,
		.row = datastore_row, .row_arg = out, .need_row = 1,
	};

	return store_read_rows(st, &r);
}

struct datastore_each {
	store_datastore_fn fn;
	void *ctx;
};

static int datastore_each_row(struct store *st, sqlite3_stmt *s, void *arg)
{
	struct datastore_each *e = arg;
	struct store_datastore d;
	int rc = datastore_from_row(st, s, &d);

	if (rc != STORE_OK)
		return rc;
	rc = e->fn(e->ctx, &d) != 0;
	store_datastore_release(&d);
	return rc;
}

int store_datastore_list(struct store *st, store_datastore_fn fn, void *ctx)
{
	struct datastore_each e = { fn, ctx };
	struct store_read r = {
		.id = SQL_DATASTORE_LIST, .what = "list datastores",
		.row = datastore_each_row, .row_arg = &e,
	};

	return store_read_rows(st, &r);
}

/* The header names of @spec as a JSON array text (caller frees). */
static char *names_to_json(const struct datastore_spec *spec)
{
	json_t *a = json_array();
	char *text = NULL;

	for (size_t i = 0; a && i < spec->nheaders; i++)
		if (json_array_append_new(a, json_string(spec->headers[i].name)) < 0)
			goto out;
	if (a)
		text = json_dumps(a, JSON_COMPACT);
out:
	json_decref(a);
	return text;
}

static int insert_locked(struct conn *c, const struct datastore_spec *spec,
			 const char *names, int64_t now, int64_t *id)
{
	sqlite3_stmt *s = stmt_get(c, SQL_DATASTORE_INSERT);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_text(s, 1, spec->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, (int)spec->type);
	sqlite3_bind_text(s, 3, spec->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, spec->url, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, names, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, now);
	rc = stmt_exec(c, s, "register datastore");
	*id = sqlite3_last_insert_rowid(c->db);
	return rc;
}

static int insert_row(struct store *st, const struct datastore_spec *spec,
		      const char *names)
{
	int64_t now = time_now_ms(), id = 0;
	struct conn *c;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc == STORE_OK)
		rc = insert_locked(c, spec, names, now, &id);
	if (rc == STORE_OK)
		rc = change_add(c, CHANGE_DATASTORES, 0, 0, id, now);
	if (rc == STORE_OK)
		rc = event_add_locked(c, now, "datastores/%s registered (%s)",
				      spec->name, datastore_type_name(spec->type));
	if (rc == STORE_OK)
		rc = tx_commit(c);
	tx_rollback(c);
	conn_put(st, c);
	return rc;
}

/*
 * Under the credentials lock from the name check to the commit, so two
 * registrations of one name can never leave the loser's headers behind.
 */
int store_datastore_register(struct store *st, const struct datastore_spec *spec,
			     struct store_datastore *out)
{
	struct store_datastore old = { 0 };
	char *names = NULL;
	int lock = -1, rc;

	if (!spec_is_valid(spec))
		return STORE_INVALID;
	if (strcmp(spec->name, DATASTORE_DEFAULT) == 0)
		return STORE_DENIED;
	names = names_to_json(spec);
	if (!names)
		return STORE_NOMEM;
	rc = cred_lock(st, &lock);
	if (rc != STORE_OK)
		goto out;
	rc = store_datastore_get(st, spec->name, &old);
	if (rc != STORE_NOT_FOUND) {
		rc = rc == STORE_OK ? STORE_EXISTS : rc;
		goto out;
	}
	rc = cred_update_locked(st, spec->name,
				spec->type == DATASTORE_HTTP ? spec : NULL);
	if (rc == STORE_OK)
		rc = insert_row(st, spec, names);
	if (rc != STORE_OK)
		cred_update_locked(st, spec->name, NULL);
	if (rc == STORE_OK && out)
		rc = store_datastore_get(st, spec->name, out);
out:
	store_datastore_release(&old);
	if (lock >= 0)
		close(lock);
	free(names);
	return rc;
}

/* STORE_NOT_EMPTY when a dataset version uses datastore @id. */
static int unused_locked(struct conn *c, int64_t id)
{
	sqlite3_stmt *s = stmt_get(c, SQL_DATASTORE_IN_USE);
	int rc;

	if (!s)
		return STORE_IO;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		rc = sqlite3_column_int(s, 0) ? STORE_NOT_EMPTY : STORE_OK;
	} else {
		rc = store_rc_from_sqlite(c, rc, "check datastore use");
		if (rc == STORE_OK)
			rc = STORE_IO;
	}
	sqlite3_reset(s);
	return rc;
}

/* The use check is inside the delete's transaction: no version slips in. */
static int delete_row(struct store *st, const struct store_datastore *d)
{
	int64_t now = time_now_ms();
	sqlite3_stmt *s = NULL;
	struct conn *c;
	int rc = conn_get(st, &c);

	if (rc != STORE_OK)
		return rc;
	rc = tx_begin(c);
	if (rc == STORE_OK)
		rc = unused_locked(c, d->id);
	if (rc == STORE_OK) {
		s = stmt_get(c, SQL_DATASTORE_DELETE);
		rc = s ? STORE_OK : STORE_IO;
	}
	if (rc == STORE_OK) {
		sqlite3_bind_int64(s, 1, d->id);
		rc = stmt_exec(c, s, "delete datastore");
	}
	if (rc == STORE_OK)
		rc = change_add(c, CHANGE_DATASTORES, 0, 0, d->id, now);
	if (rc == STORE_OK)
		rc = event_add_locked(c, now, "datastores/%s removed", d->name);
	if (rc == STORE_OK)
		rc = tx_commit(c);
	tx_rollback(c);
	conn_put(st, c);
	return rc;
}

/* Under the credentials lock, as registration. */
int store_datastore_delete(struct store *st, const char *name)
{
	struct store_datastore d = { 0 };
	int lock = -1, rc;

	if (strcmp(name, DATASTORE_DEFAULT) == 0)
		return STORE_DENIED;
	rc = cred_lock(st, &lock);
	if (rc == STORE_OK)
		rc = store_datastore_get(st, name, &d);
	if (rc == STORE_OK)
		rc = delete_row(st, &d);
	if (rc == STORE_OK)
		rc = cred_update_locked(st, name, NULL);
	store_datastore_release(&d);
	if (lock >= 0)
		close(lock);
	return rc;
}
