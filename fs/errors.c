/*
 * errors.c - the one place where store results become errno values, and
 * where refusals are written to the event log.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fs_internal.h"

int fs_errno(int store_rc)
{
	switch (store_rc) {
	case STORE_OK: return 0;
	case STORE_NOT_FOUND: return ENOENT;
	case STORE_EXISTS: return EEXIST;
	case STORE_INVALID: return EINVAL;
	case STORE_NOT_EMPTY: return ENOTEMPTY;
	case STORE_DENIED: return EPERM;
	case STORE_BUSY: return EBUSY;
	case STORE_NOMEM: return ENOMEM;
	case STORE_TOO_BIG: return EFBIG;
	case STORE_IN_USE: return EBUSY;
	case STORE_TOO_NEW:
	case STORE_CORRUPT:
	case STORE_IO:
	default: return EIO;
	}
}

static const char *errno_name(int err)
{
	switch (err) {
	case EINVAL: return "EINVAL";
	case ENOENT: return "ENOENT";
	case EEXIST: return "EEXIST";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOTEMPTY: return "ENOTEMPTY";
	case EBUSY: return "EBUSY";
	case EFBIG: return "EFBIG";
	case EROFS: return "EROFS";
	case EIO: return "EIO";
	case ENOMEM: return "ENOMEM";
	case ENOSPC: return "ENOSPC";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case ERANGE: return "ERANGE";
	case EXDEV: return "EXDEV";
	case ENOTSUP: return "ENOTSUP";
	case EINTR: return "EINTR";
	}
	return "error";
}

/* Logs an event line; a failure to log only reaches stderr. */
static void fs_event(struct fs_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fs_event(struct fs_ctx *ctx, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);	/* long lines are cut */
	va_end(ap);
	rc = store_event_add(ctx->st, line);
	if (rc == STORE_OK)
		version_bump(ctx, DEP_EVENTS, 0);
	else
		fprintf(stderr, "mlfs: cannot log event '%s': %s\n", line,
			store_strerror(rc));
}

int fs_refuse(struct fs_ctx *ctx, const char *op, struct fs_node *node,
	      const char *name, int err, const char *fmt, ...)
{
	struct strbuf path = STRBUF_INIT;
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (node)
		node_path(ctx, node, &path);
	if (name) {
		if (path.len)
			strbuf_addch(&path, '/');
		strbuf_addstr(&path, name);
	}
	fs_event(ctx, "refused %s %s: %s (%s)", op, strbuf_str(&path), reason,
		 errno_name(err));
	strbuf_release(&path);
	return -err;
}
