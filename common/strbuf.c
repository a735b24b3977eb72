/*
 * Growable byte buffer with a hard cap and a sticky error. The contract
 * and invariants are in include/mlfs/strbuf.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlfs/strbuf.h"

/* First allocation size when nothing bigger is asked for. */
#define STRBUF_MIN_ALLOC 64

static int strbuf_fail(struct strbuf *sb, int err)
{
	if (!sb->err)
		sb->err = err;
	return sb->err;
}

void strbuf_init(struct strbuf *sb, size_t max)
{
	sb->buf = NULL;
	sb->len = 0;
	sb->alloc = 0;
	sb->max = max;
	sb->err = 0;
}

void strbuf_release(struct strbuf *sb)
{
	free(sb->buf);
	strbuf_init(sb, sb->max);
}

void strbuf_reset(struct strbuf *sb)
{
	sb->len = 0;
	sb->err = 0;
	if (sb->buf)
		sb->buf[0] = '\0';
}

char *strbuf_detach(struct strbuf *sb, size_t *len)
{
	char *res = NULL;
	size_t res_len = 0;

	if (sb->err)
		goto out_release;
	if (!sb->buf) {
		res = calloc(1, 1);
		goto out_release;
	}
	res = sb->buf;
	res_len = sb->len;
	sb->buf = NULL;
out_release:
	if (len)
		*len = res_len;
	strbuf_release(sb);
	return res;
}

/*
 * Next allocation size for a buffer that must hold `need` bytes: double
 * from the current size, but never beyond `max + 1` (the cap plus NUL).
 */
static size_t strbuf_next_alloc(const struct strbuf *sb, size_t need)
{
	size_t limit = sb->max == SIZE_MAX ? SIZE_MAX : sb->max + 1;
	size_t n = sb->alloc ? sb->alloc : STRBUF_MIN_ALLOC;

	while (n < need && n <= SIZE_MAX / 2)
		n *= 2;
	if (n < need)
		n = need;
	if (n > limit)
		n = limit;
	return n;
}

int strbuf_grow(struct strbuf *sb, size_t extra)
{
	size_t need;
	size_t n;
	char *p;

	if (sb->err)
		return sb->err;
	if (extra > sb->max - sb->len)
		return strbuf_fail(sb, -EFBIG);
	if (sb->len + extra == SIZE_MAX)
		return strbuf_fail(sb, -ENOMEM);
	need = sb->len + extra + 1;
	if (need <= sb->alloc)
		return 0;

	n = strbuf_next_alloc(sb, need);
	p = realloc(sb->buf, n);
	if (!p)
		return strbuf_fail(sb, -ENOMEM);
	if (!sb->buf)
		p[0] = '\0';
	sb->buf = p;
	sb->alloc = n;
	return 0;
}

int strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
	int err;

	if (sb->err)
		return sb->err;
	if (!len)
		return 0;
	err = strbuf_grow(sb, len);
	if (err)
		return err;
	memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
	return 0;
}

int strbuf_addstr(struct strbuf *sb, const char *s)
{
	return strbuf_add(sb, s, strlen(s));
}

int strbuf_addch(struct strbuf *sb, int c)
{
	unsigned char ch = (unsigned char)c;

	return strbuf_add(sb, &ch, 1);
}

/*
 * Format into the free space after `len`. Returns what vsnprintf()
 * returns; the buffer's NUL may be overwritten when the output does not
 * fit, so the caller restores it.
 */
__attribute__((format(printf, 2, 0)))
static int strbuf_try_vprintf(struct strbuf *sb, const char *fmt, va_list ap)
{
	char *dst = sb->buf ? sb->buf + sb->len : NULL;
	size_t room = sb->alloc ? sb->alloc - sb->len : 0;

	return vsnprintf(dst, room, fmt, ap);
}

int strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;
	int err;

	if (sb->err)
		return sb->err;

	va_start(ap, fmt);
	n = strbuf_try_vprintf(sb, fmt, ap);
	va_end(ap);
	if (n < 0)
		goto out_einval;
	if (sb->alloc && (size_t)n < sb->alloc - sb->len)
		goto out_commit;

	err = strbuf_grow(sb, (size_t)n);
	if (err)
		goto out_restore;
	va_start(ap, fmt);
	n = strbuf_try_vprintf(sb, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sb->alloc - sb->len)
		goto out_einval;
out_commit:
	sb->len += (size_t)n;
	return 0;
out_einval:
	err = strbuf_fail(sb, -EINVAL);
out_restore:
	if (sb->buf)
		sb->buf[sb->len] = '\0';
	return err;
}
