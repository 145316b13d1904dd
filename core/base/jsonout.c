/* jsonout.c - jansson trees to JSON text with shortest round-trip reals.
 *
 * Mirrors jansson 2.14's dump.c layout: with JSON_INDENT(n) a newline and
 * n spaces per level after '{', '[' and ','; ": " between key and value
 * unless JSON_COMPACT; ", " between items when neither is given; empty
 * containers as "{}" and "[]". Strings escape '"', '\\' and controls
 * (\b \f \n \r \t, else \u00XX), nothing else. Trees here are at most a
 * few levels deep (request bodies are capped at depth 32), so the writer
 * recurses.
 */
#include "jsonout.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytescan.h"
#include "numfmt.h"

typedef jsonout_buf buf;

/* Room for n more bytes and the NUL; 0 when memory ran out (then and
 * after, nothing more is written: put and put1 check oom too). */
static __attribute__((noinline)) int grow(buf *b, size_t n)
{
    if (b->oom)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (b->len + n + 1 > cap)
        cap *= 2;
    char *t = realloc(b->s, cap);
    if (!t) {
        b->oom = 1;
        return 0;
    }
    b->s = t, b->cap = cap;
    return 1;
}

static inline void put(buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap && !grow(b, n))
        return;
    if (b->oom)
        return;
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static inline void put1(buf *b, char c)
{
    if (b->len + 2 > b->cap && !grow(b, 1))
        return;
    if (b->oom)
        return;
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

static void puts_(buf *b, const char *p) { put(b, p, strlen(p)); }

/* After an opening bracket (comma = 0) or between items (comma = 1). */
static void sep(buf *b, size_t flags, int depth, int comma)
{
    size_t n = flags & JSON_MAX_INDENT;
    if (comma)
        put1(b, ',');
    if (n) {
        put(b, "\n", 1);
        for (size_t i = 0; i < n * (size_t)depth; i++)
            put(b, " ", 1);
    } else if (comma && !(flags & JSON_COMPACT)) {
        put(b, " ", 1);
    }
}

static void string(buf *b, const char *s, size_t n)
{
    /* Most strings (keys, names, ids) need no escape: a test of eight bytes
     * at a time (bytescan.h; a vectorized byte loop's set-up cost more than
     * the short strings), then one copy. */
    uint64_t esc = 0;
    size_t at = 0;
    for (; at + 8 <= n && !esc; at += 8) {
        uint64_t v = bytescan_word(s + at);
        esc = bytescan_has(v, '"') | bytescan_has(v, '\\') | bytescan_below(v, 0x20);
    }
    for (; at < n && !esc; at++) {
        unsigned char c = (unsigned char)s[at];
        esc = (c == '"') | (c == '\\') | (c < 0x20);
    }
    put1(b, '"');
    if (!esc) {
        put(b, s, n);
        put1(b, '"');
        return;
    }
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != '"' && c != '\\' && c >= 0x20)
            continue;
        put(b, s + start, i - start);
        start = i + 1;
        char e[8];
        switch (c) {
        case '"': puts_(b, "\\\""); break;
        case '\\': puts_(b, "\\\\"); break;
        case '\b': puts_(b, "\\b"); break;
        case '\f': puts_(b, "\\f"); break;
        case '\n': puts_(b, "\\n"); break;
        case '\r': puts_(b, "\\r"); break;
        case '\t': puts_(b, "\\t"); break;
        default: snprintf(e, sizeof e, "\\u%04X", c); puts_(b, e);
        }
    }
    put(b, s + start, n - start);
    put1(b, '"');
}

static void integer(buf *b, long long v)
{
    char t[NUMFMT_INT_LEN];
    put(b, t, numfmt_int64(v, t));
}

/* ".0" appended when the text has neither '.' nor an exponent, so that it
 * reads back as a real; a non-finite x (which jansson never holds) as null.
 * That is a whole x below 1e21 (numfmt_double writes those as digits
 * alone; a fraction always has its point or an exponent, and from 1e21 on
 * the exponent comes): every double from 2^53 on is whole, and below it
 * the cast to int64 truncates. */
static void real(buf *b, double x)
{
    char t[NUMFMT_LEN + 4];
    size_t n = numfmt_double(x, t);
    if (n == 0) {
        puts_(b, "null");
        return;
    }
    const double ax = fabs(x);
    if (ax < 1e21 && (ax >= 0x1p53 || x == (double)(int64_t)x))
        memcpy(t + n, ".0", 3), n += 2;
    put(b, t, n);
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void value(buf *b, const json_t *j, size_t flags, int depth)
{
    switch (json_typeof(j)) {
    case JSON_NULL: puts_(b, "null"); break;
    case JSON_TRUE: puts_(b, "true"); break;
    case JSON_FALSE: puts_(b, "false"); break;
    case JSON_INTEGER: integer(b, json_integer_value(j)); break;
    case JSON_REAL: real(b, json_real_value(j)); break;
    case JSON_STRING: string(b, json_string_value(j), json_string_length(j)); break;
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        put1(b, '[');
        for (size_t i = 0; i < n; i++) {
            sep(b, flags, depth + 1, i > 0);
            value(b, json_array_get(j, i), flags, depth + 1);
        }
        if (n)
            sep(b, flags, depth, 0);
        put1(b, ']');
        break;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(j), k = 0;
        if (!(flags & JSON_SORT_KEYS) || n < 2) { /* in jansson's order: no copy, no lookups */
            const char *key;
            const json_t *v;
            put1(b, '{');
            json_object_foreach((json_t *)j, key, v)
            {
                sep(b, flags, depth + 1, k++ > 0);
                string(b, key, strlen(key));
                puts_(b, flags & JSON_COMPACT ? ":" : ": ");
                value(b, v, flags, depth + 1);
            }
            if (n)
                sep(b, flags, depth, 0);
            put1(b, '}');
            break;
        }
        const char **keys = malloc(n * sizeof *keys);
        if (!keys) {
            b->oom = 1;
            return;
        }
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)j, key, v) keys[k++] = key;
        qsort(keys, n, sizeof *keys, cmp_keys);
        put1(b, '{');
        for (size_t i = 0; i < n; i++) {
            sep(b, flags, depth + 1, i > 0);
            string(b, keys[i], strlen(keys[i]));
            puts_(b, flags & JSON_COMPACT ? ":" : ": ");
            value(b, json_object_get(j, keys[i]), flags, depth + 1);
        }
        if (n)
            sep(b, flags, depth, 0);
        put1(b, '}');
        free(keys);
        break;
    }
    }
}

char *jsonout_dumps(const json_t *j, size_t flags)
{
    if (!j)
        return NULL;
    buf b = {0};
    put(&b, "", 0);
    value(&b, j, flags, 0);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ---- jsonw: compact text without a tree --------------------------------- */

void jsonw_init(jsonw *w) { memset(w, 0, sizeof *w); }

static buf *wbuf(jsonw *w) { return &w->b; }

/* Before a value: a comma when it is not its array's first (a member's
 * comma came with its key). */
static void wvalue(jsonw *w)
{
    if (w->depth > 0 && w->items[w->depth] == 2) /* in an array, not the first */
        put1(wbuf(w), ',');
    else if (w->depth > 0 && w->items[w->depth] == 3) /* an array's first */
        w->items[w->depth] = 2;
}

static void wopen(jsonw *w, char bracket, unsigned char first)
{
    wvalue(w);
    if (w->depth >= JSONW_DEPTH) {
        w->b.oom = 1;
        return;
    }
    put1(wbuf(w), bracket);
    w->items[++w->depth] = first;
}

/* items per level: 0 an object before its first member, 1 an object after
 * one, 3 an array before its first item, 2 an array after one. */
void jsonw_obj(jsonw *w) { wopen(w, '{', 0); }
void jsonw_arr(jsonw *w) { wopen(w, '[', 3); }

void jsonw_end(jsonw *w)
{
    if (w->depth == 0) {
        w->b.oom = 1;
        return;
    }
    unsigned char k = w->items[w->depth--];
    put1(wbuf(w), k <= 1 ? '}' : ']');
}

void jsonw_key(jsonw *w, const char *key)
{
    if (w->items[w->depth] == 1)
        put1(wbuf(w), ',');
    w->items[w->depth] = 1;
    string(wbuf(w), key, strlen(key));
    put1(wbuf(w), ':');
}

char *jsonw_key_text(const char *key, size_t *len)
{
    buf b = {0};
    string(&b, key, strlen(key));
    put1(&b, ':');
    if (b.oom || !b.s) {
        free(b.s);
        return NULL;
    }
    *len = b.len;
    return b.s;
}

void jsonw_key_raw(jsonw *w, const char *quoted, size_t n)
{
    if (w->items[w->depth] == 1)
        put1(wbuf(w), ',');
    w->items[w->depth] = 1;
    put(wbuf(w), quoted, n);
}

void jsonw_str(jsonw *w, const char *s)
{
    wvalue(w);
    string(wbuf(w), s, strlen(s));
}

void jsonw_real(jsonw *w, double x)
{
    wvalue(w);
    real(wbuf(w), x);
}

void jsonw_int(jsonw *w, long long v)
{
    wvalue(w);
    integer(wbuf(w), v);
}

void jsonw_bool(jsonw *w, int v)
{
    wvalue(w);
    puts_(wbuf(w), v ? "true" : "false");
}

void jsonw_null(jsonw *w)
{
    wvalue(w);
    puts_(wbuf(w), "null");
}

char *jsonw_finish(jsonw *w, size_t *len)
{
    put(wbuf(w), "", 0);
    char *s = w->b.s;
    size_t n = w->b.len;
    int bad = w->b.oom || w->depth != 0;
    memset(w, 0, sizeof *w);
    if (bad) {
        free(s);
        return NULL;
    }
    if (len)
        *len = n;
    return s;
}
