/*
 * special.c - special files: writing a request into them acts.
 *
 * The protocol, the same for every special file (DESIGN.md):
 *  - one request per open; the bytes of a handle's writes are gathered
 *    (capped at SPECIAL_REQUEST_MAX) until they form a request: a complete
 *    JSON document for JSON kinds, any bytes at all for the others;
 *  - the request is acted on inside that write(), whose result is the
 *    outcome: success, or the refusal's errno; errors at close are often
 *    lost, so flush only acts on a request that never became complete;
 *  - a read on the same descriptor returns the result line, or the
 *    refusal's message; every refusal also makes an events line;
 *  - whitespace after a request is fine, anything else is a second
 *    request and refused; O_TRUNC and truncate(2) are accepted and ignored.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_internal.h"
#include "mlfs/parse.h"

#define SPECIAL_REQUEST_MAX (1024 * 1024)
#define SPECIAL_READ_MAX 4096	/* bytes of the reply per read() */

int special_fail(struct fs_handle *h, int err, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);	/* long messages are cut */
	va_end(ap);
	strbuf_reset(&h->reply);
	h->reply_pos = 0;
	strbuf_addstr(&h->reply, msg);
	return -err;
}

static int all_space(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return 0;
	return 1;
}

/* Records a refusal: the message for reads, an events line, -err. */
static int refuse(struct fs_ctx *ctx, struct fs_handle *h, int err)
{
	if (h->reply.len && h->reply.buf[h->reply.len - 1] == '\n')
		h->reply.buf[--h->reply.len] = '\0';
	fs_refuse(ctx, "write", h->node, NULL, err, "%s",
		  strbuf_str(&h->reply));
	strbuf_addch(&h->reply, '\n');
	return -err;
}

static int act(struct fs_ctx *ctx, struct fs_handle *h)
{
	const struct fs_kind *k = h->node->id.kind;
	int rc;

	h->acted = 1;
	strbuf_reset(&h->reply);
	h->reply_pos = 0;
	rc = k->act(ctx, h, h->buf.buf, h->buf.len);
	if (rc < 0)
		return refuse(ctx, h, -rc);
	if (!h->reply.len || h->reply.buf[h->reply.len - 1] != '\n')
		strbuf_addch(&h->reply, '\n');
	return 0;
}

/*
 * 1 when the gathered bytes are one whole JSON document, 0 when more may
 * come, -EINVAL (message in reply) when they can never become one.
 */
static int json_complete(struct fs_handle *h)
{
	json_error_t err;
	json_t *doc;

	if (all_space(h->buf.buf, h->buf.len))
		return 0;
	doc = json_loadb(h->buf.buf, h->buf.len, 0, &err);
	if (doc) {
		json_decref(doc);
		return 1;
	}
	if (json_error_code(&err) == json_error_premature_end_of_input)
		return 0;
	/* jansson's text quotes the input ("near '...'"): not for secrets */
	if (h->node->id.kind->request_secret)
		return special_fail(h, EINVAL, "invalid JSON at line %d, "
				    "column %d", err.line, err.column);
	return special_fail(h, EINVAL, "invalid JSON at line %d, column %d: %s",
			    err.line, err.column, err.text);
}

int special_write(struct fs_ctx *ctx, struct fs_handle *h, const char *buf,
		  size_t len, off_t off)
{
	const struct fs_kind *k = h->node->id.kind;
	int rc;

	(void)off;	/* a request is its bytes in order, wherever written */
	if (h->acted) {
		if (all_space(buf, len))
			return (int)len;
		special_fail(h, EINVAL, "one request per open: open the file "
			     "again for another request");
		return refuse(ctx, h, EINVAL);
	}
	h->wrote = 1;
	if (h->buf.len + len > SPECIAL_REQUEST_MAX) {
		h->acted = 1;
		special_fail(h, EFBIG, "request larger than %d bytes",
			     SPECIAL_REQUEST_MAX);
		return refuse(ctx, h, EFBIG);
	}
	if (strbuf_add(&h->buf, buf, len) < 0)
		return -ENOMEM;
	if (k->request_json) {
		rc = json_complete(h);
		if (rc < 0) {
			h->acted = 1;
			return refuse(ctx, h, -rc);
		}
		if (rc == 0)
			return (int)len;	/* more of the document to come */
	}
	rc = act(ctx, h);
	return rc < 0 ? rc : (int)len;
}

int special_flush(struct fs_ctx *ctx, struct fs_handle *h)
{
	if (h->acted || !h->wrote || all_space(h->buf.buf, h->buf.len))
		return 0;
	h->acted = 1;
	special_fail(h, EINVAL, "incomplete request: the JSON document "
		     "ended early");
	return refuse(ctx, h, EINVAL);
}

int special_render(struct fs_ctx *ctx, struct fs_node *node, struct content *c)
{
	(void)node;
	c->mtime_ms = ctx->mount_ms;
	return 0;	/* reads go to the handle's reply, stat shows 0 bytes */
}

int special_truncate(struct fs_ctx *ctx, struct fs_node *node, off_t size)
{
	(void)ctx;
	(void)node;
	(void)size;
	return 0;	/* "> file" truncates before writing: nothing to do */
}

/*
 * The reply is read like a pipe, from where the last read stopped: the
 * descriptor's offset already sits past the request just written
 * ("exec 3<>submit; printf ... >&3; read id <&3").
 */
void special_reply_read(fuse_req_t req, struct fs_handle *h, size_t size,
			off_t off)
{
	char copy[SPECIAL_READ_MAX];
	size_t len = h->reply.len;
	size_t pos = h->reply_pos;

	(void)off;
	if (pos >= len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > len - pos)
		size = len - pos;
	if (size > sizeof(copy))
		size = sizeof(copy);
	/*
	 * Reply from a copy: once the reply is written, the reader may close
	 * at once and its RELEASE free the handle on another thread while
	 * this one still returns from fuse_reply_buf().
	 */
	memcpy(copy, h->reply.buf + pos, size);
	h->reply_pos += size;
	fuse_reply_buf(req, copy, size);
}

/* ---- request fields --------------------------------------------------------- */

int special_parse_object(struct fs_handle *h, const char *text, size_t len,
			 struct json_t **out)
{
	json_error_t jerr;

	*out = json_loadb(text, len, 0, &jerr);
	if (!*out && h->node->id.kind->request_secret)	/* no quoting */
		return special_fail(h, EINVAL, "invalid JSON at line %d, "
				    "column %d", jerr.line, jerr.column);
	if (!*out)
		return special_fail(h, EINVAL, "invalid JSON at line %d, column "
				    "%d: %s", jerr.line, jerr.column, jerr.text);
	if (!json_is_object(*out))
		return special_fail(h, EINVAL, "the request must be a JSON "
				    "object");
	return 0;
}

int special_want_string(struct fs_handle *h, struct json_t *v,
			const char *field, size_t max)
{
	if (!json_is_string(v))
		return special_fail(h, EINVAL, "field '%s': must be a string",
				    field);
	if (json_string_length(v) > max)
		return special_fail(h, EINVAL, "field '%s': longer than %zu "
				    "bytes", field, max);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return special_fail(h, EINVAL, "field '%s': contains a NUL "
				    "byte", field);
	return 0;
}

int special_want_name(struct fs_handle *h, struct json_t *v, const char *field)
{
	int rc = special_want_string(h, v, field, NAME_MAX_LEN);

	if (rc == 0 && !name_is_valid(json_string_value(v),
				      json_string_length(v)))
		return special_fail(h, EINVAL, "field '%s': invalid name '%s': "
				    "use 1-255 of [A-Za-z0-9._-], not starting "
				    "with '.'", field, json_string_value(v));
	return rc;
}

/* ---- the writer ------------------------------------------------------------ */

int special_writer_cwd(const struct fs_handle *h, char *buf, size_t len)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/cwd", (int)h->writer.pid);
	n = readlink(link, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

int special_writer_may_read(const struct fs_handle *h, const struct stat *st)
{
	mode_t need = S_ISDIR(st->st_mode) ? (S_IRUSR | S_IXUSR) : S_IRUSR;
	const struct fuse_ctx *who = &h->writer;

	if (who->uid == 0)
		return 1;
	if (who->uid == st->st_uid)
		return (st->st_mode & need) == need;
	if (who->gid == st->st_gid)
		return (st->st_mode & (need >> 3)) == (need >> 3);
	return (st->st_mode & (need >> 6)) == (need >> 6);
}
