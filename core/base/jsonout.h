/* jsonout.h - JSON text of a jansson tree, numbers in their shortest form.
 *
 * jansson prints reals with %.17g (0.6 becomes 0.59999999999999998) and
 * takes no number formatter, so every reply and model file is written by
 * jsonout_dumps instead of json_dumps. It is a drop-in replacement: the
 * same flags (JSON_COMPACT, JSON_INDENT(n), JSON_SORT_KEYS; others are
 * ignored and any value may be the root), the same layout and escaping
 * byte for byte, keys in insertion order unless sorted. Only reals differ:
 * numfmt_double's text, with ".0" appended when it has neither '.' nor an
 * exponent so that it reads back as a real ("3.0"). Integers stay integers.
 * jansson holds no NaN or infinity, so none is ever written.
 */
#ifndef RFM_JSONOUT_H
#define RFM_JSONOUT_H

#include <jansson.h>
#include <stddef.h>

/* A new NUL-terminated string the caller frees, or NULL when j is NULL or
 * memory runs out. Thread-safe for trees no other thread modifies. */
char *jsonout_dumps(const json_t *j, size_t flags);

#endif
