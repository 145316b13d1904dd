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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numfmt.h"

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *t = realloc(b->s, cap);
        if (!t) {
            b->oom = 1;
            return;
        }
        b->s = t, b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void puts_(buf *b, const char *p) { put(b, p, strlen(p)); }

/* After an opening bracket (comma = 0) or between items (comma = 1). */
static void sep(buf *b, size_t flags, int depth, int comma)
{
    size_t n = flags & JSON_MAX_INDENT;
    if (comma)
        put(b, ",", 1);
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
    put(b, "\"", 1);
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
    put(b, "\"", 1);
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void value(buf *b, const json_t *j, size_t flags, int depth)
{
    char t[NUMFMT_LEN + 4];
    switch (json_typeof(j)) {
    case JSON_NULL: puts_(b, "null"); break;
    case JSON_TRUE: puts_(b, "true"); break;
    case JSON_FALSE: puts_(b, "false"); break;
    case JSON_INTEGER: { /* digits by hand: printf was a tenth of a small reply's cost */
        json_int_t v = json_integer_value(j);
        unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
        size_t k = sizeof t;
        do
            t[--k] = (char)('0' + u % 10);
        while ((u /= 10) > 0);
        if (v < 0)
            t[--k] = '-';
        put(b, t + k, sizeof t - k);
        break;
    }
    case JSON_REAL: {
        size_t n = numfmt_double(json_real_value(j), t);
        if (n == 0) /* jansson refuses non-finite reals; never reached */
            puts_(b, "null");
        else {
            if (!strpbrk(t, ".e"))
                memcpy(t + n, ".0", 3);
            puts_(b, t);
        }
        break;
    }
    case JSON_STRING: string(b, json_string_value(j), json_string_length(j)); break;
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        put(b, "[", 1);
        for (size_t i = 0; i < n; i++) {
            sep(b, flags, depth + 1, i > 0);
            value(b, json_array_get(j, i), flags, depth + 1);
        }
        if (n)
            sep(b, flags, depth, 0);
        put(b, "]", 1);
        break;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(j), k = 0;
        if (!(flags & JSON_SORT_KEYS) || n < 2) { /* in jansson's order: no copy, no lookups */
            const char *key;
            const json_t *v;
            put(b, "{", 1);
            json_object_foreach((json_t *)j, key, v)
            {
                sep(b, flags, depth + 1, k++ > 0);
                string(b, key, strlen(key));
                puts_(b, flags & JSON_COMPACT ? ":" : ": ");
                value(b, v, flags, depth + 1);
            }
            if (n)
                sep(b, flags, depth, 0);
            put(b, "}", 1);
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
        put(b, "{", 1);
        for (size_t i = 0; i < n; i++) {
            sep(b, flags, depth + 1, i > 0);
            string(b, keys[i], strlen(keys[i]));
            puts_(b, flags & JSON_COMPACT ? ":" : ": ");
            value(b, json_object_get(j, keys[i]), flags, depth + 1);
        }
        if (n)
            sep(b, flags, depth, 0);
        put(b, "}", 1);
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
