#ifndef MLFS_JSONW_H
#define MLFS_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "mlfs/strbuf.h"

/*
 * jsonw: a streaming JSON writer over a strbuf.
 *
 * We parse JSON with jansson but write it ourselves, because files people
 * cat must show 0.1 as 0.1 (jansson prints 0.10000000000000001) and must
 * be laid out the way Python's json.dumps(obj, indent=2) lays them out.
 *
 * Usage: jsonw_init(), then exactly one top-level value built from the
 * calls below, then check `sb->err`. Inside an object, every value is
 * preceded by jsonw_key(). The writer inserts commas, colons, newlines
 * and indentation itself.
 *
 * Pretty mode (pretty != 0) matches json.dumps(obj, indent=2): two-space
 * indent, "key": value, items separated by ",\n", and empty containers
 * as [] and {}. A final '\n' follows the top-level value. Compact mode
 * writes no whitespace at all and no final newline.
 *
 * Errors: the writer returns nothing; every failure lands in the
 * strbuf's sticky `err` (-ENOMEM, -EFBIG from the strbuf; -EINVAL for
 * misuse: nesting deeper than JSONW_MAX_DEPTH, a key outside an object,
 * a value inside an object without its key, a NULL key, or an end call
 * that does not match the open container). After an error the output is
 * incomplete and must be discarded.
 *
 * Strings are escaped per RFC 8259: \" \\ \n \r \t \b \f, other control
 * bytes (0x00-0x1f and 0x7f) as \u00xx. Bytes >= 0x80 are copied as they
 * are, so UTF-8 stays readable; invalid UTF-8 is not repaired.
 *
 * Ownership: the writer borrows `sb`, which must outlive it; it holds no
 * memory of its own and needs no release. Thread safety: one thread per
 * writer (and per strbuf).
 */
#define JSONW_MAX_DEPTH 64

struct jsonw {
	struct strbuf *sb;
	int pretty;
	int depth;
	/* per open container: JSONW_F_* flags (private) */
	unsigned char first[JSONW_MAX_DEPTH];
	int after_key;
};

/* Start writing into `sb` (appending to what it holds). */
void jsonw_init(struct jsonw *w, struct strbuf *sb, int pretty);

/* Containers. */
void jsonw_object_begin(struct jsonw *w);
void jsonw_object_end(struct jsonw *w);
void jsonw_array_begin(struct jsonw *w);
void jsonw_array_end(struct jsonw *w);

/* The key of the next object member; NUL-terminated, escaped as a string. */
void jsonw_key(struct jsonw *w, const char *key);

/* Values. */

/* A NUL-terminated string; NULL writes null. */
void jsonw_string(struct jsonw *w, const char *s);

/* `len` bytes of `s` as a string (embedded NULs become \u0000). */
void jsonw_string_len(struct jsonw *w, const char *s, size_t len);

void jsonw_int(struct jsonw *w, int64_t v);

/* Shortest round-trip text (fmt_double()); nan and inf write null. */
void jsonw_double(struct jsonw *w, double v);

/*
 * Numeric text, e.g. a metric value exactly as the user wrote it. Text
 * that is already a JSON number is emitted verbatim. Text that
 * parse_double() accepts but JSON does not ("5.", ".5", "+1", "007") is
 * emitted as jsonw_double() of its value, so the output stays valid
 * JSON. Anything else sets -EINVAL.
 */
void jsonw_number_text(struct jsonw *w, const char *s, size_t len);

/*
 * A value that is already JSON text (made by a JSON library), emitted
 * verbatim; the caller vouches for its validity.
 */
void jsonw_json(struct jsonw *w, const char *text, size_t len);

void jsonw_bool(struct jsonw *w, int v);
void jsonw_null(struct jsonw *w);

/* Milliseconds since the epoch as an ISO string; ms < 0 writes null. */
void jsonw_time(struct jsonw *w, int64_t ms);

#endif /* MLFS_JSONW_H */
