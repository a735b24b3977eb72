#ifndef MLFS_STRBUF_H
#define MLFS_STRBUF_H

#include <stddef.h>
#include <stdint.h>

/*
 * strbuf: a growable byte buffer with a hard cap and a sticky error.
 *
 * Used to render everything mlfs shows to users (JSON, CSV, SVG, text
 * files) and to collect bytes users write into special files. Rendering
 * code adds freely and checks `sb->err` once at the end; buffers fed by
 * user writes get a cap at init so a runaway writer gets EFBIG instead
 * of eating memory.
 *
 * Invariants:
 *
 *  - `len <= max` always. `max` is fixed at init (SIZE_MAX: no cap) and
 *    survives strbuf_release() and strbuf_reset().
 *
 *  - `buf` is NULL until the first byte is added (or strbuf_grow() is
 *    called); from then on it is malloc'd, holds at least `len + 1`
 *    bytes, and `buf[len]` is '\0'. The buffer may contain embedded NULs;
 *    nothing here relies on it being free of them. Use strbuf_str() to
 *    get a string that is never NULL.
 *
 *  - `err` is 0 or the first negative errno an operation failed with.
 *    While it is set every adder and strbuf_grow() does nothing and
 *    returns it. Only strbuf_reset(), strbuf_release() and
 *    strbuf_detach() clear it.
 *
 *  - Adders are all-or-nothing: a failed add leaves `len` and the
 *    contents as they were (apart from setting `err`).
 *
 *  - Do not copy `buf` away and keep using the strbuf; use
 *    strbuf_detach() to take ownership.
 *
 * Thread safety: none inside. A strbuf belongs to one thread at a time;
 * distinct strbufs may be used concurrently.
 */
struct strbuf {
	char *buf;
	size_t len;
	size_t alloc;
	size_t max;
	int err;
};

#define STRBUF_INIT { NULL, 0, 0, SIZE_MAX, 0 }

/* Life cycle */

/*
 * Fill a strbuf you allocated: empty, no memory, no error, contents
 * capped at `max` bytes (SIZE_MAX for no cap). Never fails.
 */
void strbuf_init(struct strbuf *sb, size_t max);

/*
 * Free the buffer and go back to the init state, keeping `max`. Safe on
 * a strbuf that never allocated (STRBUF_INIT) and safe to call twice.
 */
void strbuf_release(struct strbuf *sb);

/*
 * Empty the buffer and clear `err`, keeping its memory for reuse.
 */
void strbuf_reset(struct strbuf *sb);

/*
 * Take the contents: returns the malloc'd, NUL-terminated buffer (the
 * caller frees it) and stores its length in `*len` when `len` is not
 * NULL. An empty strbuf gives a malloc'd "". Returns NULL when `err` is
 * set or when allocating "" fails (with `*len` = 0).
 *
 * In every case the strbuf is left released (init state, `max` kept),
 * so no further strbuf_release() is needed.
 */
char *strbuf_detach(struct strbuf *sb, size_t *len);

/* Adding data */

/*
 * Make sure `extra` more bytes plus the trailing NUL fit without another
 * allocation, allocating the buffer if it has none yet. Growth is
 * geometric and never beyond `max + 1` bytes.
 *
 * Returns 0, or sets `err` and returns it: -EFBIG when `len + extra`
 * would exceed `max`, -ENOMEM when allocation fails.
 */
int strbuf_grow(struct strbuf *sb, size_t extra);

/*
 * Append `len` bytes from `data` (which must not point into sb's own
 * buffer). Returns 0 or the sticky error (-EFBIG, -ENOMEM).
 */
int strbuf_add(struct strbuf *sb, const void *data, size_t len);

/* Append a NUL-terminated string. Returns as strbuf_add(). */
int strbuf_addstr(struct strbuf *sb, const char *s);

/* Append one byte (`c` converted to unsigned char). As strbuf_add(). */
int strbuf_addch(struct strbuf *sb, int c);

/*
 * Append printf-style output. Returns as strbuf_add(), or -EINVAL when
 * vsnprintf() reports an output error. Arguments must not point into
 * sb's own buffer.
 */
int strbuf_addf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Reading */

/* The contents as a C string: "" (a static) while `buf` is NULL. */
static inline const char *strbuf_str(const struct strbuf *sb)
{
	return sb->buf ? sb->buf : "";
}

#endif /* MLFS_STRBUF_H */
