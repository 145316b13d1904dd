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

/* A compact JSON text written as it is made, without a tree: the bytes
 * jsonout_dumps(tree, JSON_COMPACT) gives for the tree holding the same
 * keys and values in the same order (tests/base/test_jsonout.c holds the
 * two equal). For a hot reply whose tree would cost more than its text
 * (GET /customers/{id}). Usage: jsonw_init, then jsonw_obj / jsonw_arr,
 * jsonw_key before each member, values, jsonw_end for each container;
 * jsonw_finish hands over the text. Commas are the writer's business.
 * Nesting is at most JSONW_DEPTH levels (deeper is refused as out of
 * memory is: jsonw_finish returns NULL). */
#define JSONW_DEPTH 16
typedef struct { /* the writer's text so far (internal) */
    char *s;
    size_t len, cap;
    int oom;
} jsonout_buf;
typedef struct {
    jsonout_buf b;
    int depth;
    unsigned char items[JSONW_DEPTH + 1]; /* per level: container kind, item written yet */
} jsonw;

void jsonw_init(jsonw *w);
void jsonw_obj(jsonw *w);
void jsonw_arr(jsonw *w);
void jsonw_end(jsonw *w);
void jsonw_key(jsonw *w, const char *key);
/* A member's key given as its JSON text and colon, "\"name\":" (n bytes),
 * which the caller knows needs no escape: JSONW_KEY takes a string
 * literal and adds both (no strlen, no escape scan; the same bytes as
 * jsonw_key). */
void jsonw_key_raw(jsonw *w, const char *quoted, size_t n);
#define JSONW_KEY(w, lit) jsonw_key_raw((w), "\"" lit "\":", sizeof("\"" lit "\":") - 1)
/* A key's text for jsonw_key_raw, made once for keys known at load (a
 * model's feature names): "\"key\":" escaped as jsonw_key writes it,
 * NUL-terminated, its length in *len; the caller frees it. NULL when
 * memory ran out. */
char *jsonw_key_text(const char *key, size_t *len);
void jsonw_str(jsonw *w, const char *s);
/* A non-finite x (no JSON number) is written as null. */
void jsonw_real(jsonw *w, double x);
void jsonw_int(jsonw *w, long long v);
void jsonw_bool(jsonw *w, int v);
void jsonw_null(jsonw *w);
/* The text (NUL-terminated; the caller frees it) and its length into
 * *len, or NULL when memory ran out or containers are left open; either
 * way w is done. */
char *jsonw_finish(jsonw *w, size_t *len);

#endif
