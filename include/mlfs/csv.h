#ifndef MLFS_CSV_H
#define MLFS_CSV_H

#include <stddef.h>

#include "mlfs/strbuf.h"

/*
 * CSV output per RFC 4180, as mlfs writes it: fields separated by ',',
 * records ended by "\n" (not CRLF). The caller writes the separators and
 * line ends; csv_field() writes one field.
 *
 * Errors go to the strbuf's sticky `err`. Thread safety: as the strbuf.
 */

/*
 * Append s[0..len) as one field. The field is quoted, with every '"'
 * doubled, when it contains ',', '"', '\r' or '\n', or starts or ends
 * with a space or tab (which readers may trim otherwise). Anything else,
 * including the empty field, is copied verbatim.
 */
void csv_field(struct strbuf *sb, const char *s, size_t len);

#endif /* MLFS_CSV_H */
