/* oas.c - OpenAPI operations and a JSON Schema validator over jansson. */
#include "oas.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "yamljson.h"

#define MAX_REF_DEPTH 32

typedef struct {
    const json_t *ref; /* the "$ref" string value in the document */
    const json_t *target;
} ref_entry;

/* A path of the document and its operations, by the index of METHODS. */
typedef struct {
    const char *path;
    oas_op ops[7];
} path_entry;

struct oas_spec {
    json_t *root;
    path_entry *paths; /* sorted by path (strcmp), for oas_find */
    size_t npaths;
    oas_op none; /* what oas_find answers for an unknown operation */
    /* Every $ref resolved once at load, sorted by the address of its
     * string, so that validation finds a target without parsing pointers. */
    ref_entry *refs;
    size_t nrefs, caprefs;
};

static const json_t *resolve(const oas_spec *s, const char *ref);
static const json_t *deref(const oas_spec *s, const json_t *schema);

/* Every $ref of the document must point within it and resolve, and no
 * chain of bare references may loop: checked once at load, so that a
 * broken contract stops the server at start, not on some request. */
static rfm_status check_refs(oas_spec *s, const json_t *node, int depth, const char *path,
                             char *err, size_t errlen)
{
    if (depth > 200)
        return rfm_fail(err, errlen, RFM_EFORMAT, "%s: document nests too deeply", path);
    if (json_is_object(node)) {
        const json_t *r = json_object_get(node, "$ref");
        if (r) {
            const char *ref = json_string_value(r);
            if (!ref || strncmp(ref, "#/", 2) != 0)
                return rfm_fail(err, errlen, RFM_EFORMAT,
                                "%s: $ref %s: only references within the file (#/...) are "
                                "supported",
                                path, ref ? ref : "(not a string)");
            if (!resolve(s, ref))
                return rfm_fail(err, errlen, RFM_EFORMAT, "%s: $ref %s does not resolve", path,
                                ref);
            if (!deref(s, node))
                return rfm_fail(err, errlen, RFM_EFORMAT, "%s: $ref %s is a cycle of references",
                                path, ref);
            if (s->nrefs == s->caprefs) {
                size_t cap = s->caprefs ? 2 * s->caprefs : 32;
                ref_entry *e = realloc(s->refs, cap * sizeof *e);
                if (!e)
                    return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
                s->refs = e;
                s->caprefs = cap;
            }
            s->refs[s->nrefs++] = (ref_entry){r, resolve(s, ref)};
        }
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)node, key, v)
        {
            rfm_status st = check_refs(s, v, depth + 1, path, err, errlen);
            if (st != RFM_OK)
                return st;
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v)
        {
            rfm_status st = check_refs(s, v, depth + 1, path, err, errlen);
            if (st != RFM_OK)
                return st;
        }
    }
    return RFM_OK;
}

static int cmp_ref(const void *a, const void *b)
{
    const json_t *x = ((const ref_entry *)a)->ref, *y = ((const ref_entry *)b)->ref;
    return (uintptr_t)x < (uintptr_t)y ? -1 : (uintptr_t)x > (uintptr_t)y;
}

/* The target of a $ref string of the document (NULL if it is not one). */
static const json_t *lookup_ref(const oas_spec *s, const json_t *ref)
{
    ref_entry key = {ref, NULL};
    const ref_entry *e = bsearch(&key, s->refs, s->nrefs, sizeof key, cmp_ref);
    return e ? e->target : NULL;
}

static const char *const METHODS[] = {"get", "put", "post", "delete", "options", "head", "patch"};

static int cmp_path(const void *a, const void *b)
{
    return strcmp(((const path_entry *)a)->path, ((const path_entry *)b)->path);
}

/* Whether schema (an object) has only keys among the NULL-ended list. */
static int only_keys(const json_t *schema, const char *const *keys)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)schema, k, v)
    {
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], k) != 0)
            i++;
        if (!keys[i])
            return 0;
    }
    return 1;
}

/* The index of name among f's, f->n when it is none of them (or NULL). */
static size_t flat_index(const oas_flat *f, const char *name)
{
    size_t i = 0;
    while (name && i < f->n && strcmp(f->name[i], name) != 0)
        i++;
    return name ? i : f->n;
}

/* Whether schema (dereferenced) is a flat object of numbers; if so, f. */
static int flat_object(const oas_spec *s, const json_t *schema, oas_flat *f)
{
    static const char *const OBJ[] = {
        "type", "required", "properties", "additionalProperties", "description", "title", NULL};
    static const char *const NUM[] = {
        "type",  "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "description",
        "title", "example", NULL};
    static const char *const STR[] = {"type",  "minLength", "maxLength", "description",
                                      "title", "example",   NULL};
    const json_t *props = json_object_get(schema, "properties"),
                 *req = json_object_get(schema, "required");
    const char *type = json_string_value(json_object_get(schema, "type"));
    if (!json_is_object(schema) || !only_keys(schema, OBJ) || !type ||
        strcmp(type, "object") != 0 || !json_is_object(props) || json_object_size(props) == 0 ||
        json_object_size(props) > OAS_FLAT_MAX ||
        !json_is_false(json_object_get(schema, "additionalProperties")) ||
        (req && !json_is_array(req)))
        return 0;
    memset(f, 0, sizeof *f);
    const char *name;
    const json_t *p;
    json_object_foreach((json_t *)props, name, p)
    {
        const json_t *ps = deref(s, p);
        const char *t = json_string_value(json_object_get(ps, "type"));
        int str = t && strcmp(t, "string") == 0;
        if (!json_is_object(ps) || !only_keys(ps, str ? STR : NUM) || !t ||
            (!str && strcmp(t, "number") != 0 && strcmp(t, "integer") != 0))
            return 0;
        for (const char *c = name; *c; c++) /* a name the text spells without escapes */
            if ((unsigned char)*c < 0x20 || *c == '"' || *c == '\\' || (unsigned char)*c >= 0x80)
                return 0;
        size_t i = f->n++;
        f->name[i] = name, f->len[i] = strlen(name);
        f->minlen[i] = 0, f->maxlen[i] = SIZE_MAX;
        if (str) {
            const json_t *lo = json_object_get(ps, "minLength"),
                         *hi = json_object_get(ps, "maxLength");
            if ((lo && (!json_is_integer(lo) || json_integer_value(lo) < 0)) ||
                (hi && (!json_is_integer(hi) || json_integer_value(hi) < 0)))
                return 0;
            if (lo)
                f->minlen[i] = (size_t)json_integer_value(lo);
            if (hi)
                f->maxlen[i] = (size_t)json_integer_value(hi);
            f->string |= 1u << i;
            f->min[i] = -INFINITY, f->max[i] = INFINITY;
            continue;
        }
        f->integer |= (unsigned)(strcmp(t, "integer") == 0) << i;
        const json_t *b;
        f->min[i] = -INFINITY, f->max[i] = INFINITY;
        if (json_is_number(b = json_object_get(ps, "minimum")))
            f->min[i] = json_number_value(b);
        if (json_is_number(b = json_object_get(ps, "exclusiveMinimum"))) {
            if (f->min[i] != -INFINITY)
                return 0; /* both: not worth the cases */
            f->min[i] = json_number_value(b), f->xmin |= 1u << i;
        }
        if (json_is_number(b = json_object_get(ps, "maximum")))
            f->max[i] = json_number_value(b);
        if (json_is_number(b = json_object_get(ps, "exclusiveMaximum"))) {
            if (f->max[i] != INFINITY)
                return 0;
            f->max[i] = json_number_value(b), f->xmax |= 1u << i;
        }
    }
    size_t k;
    const json_t *r;
    json_array_foreach((json_t *)req, k, r)
    {
        size_t i = flat_index(f, json_string_value(r));
        if (i == f->n)
            return 0; /* a required name that is no property: no body passes */
        f->required |= 1u << i;
    }
    return 1;
}

/* f for a request schema: a flat object, or a oneOf with one flat
 * alternative whose every other alternative requires a name it lacks;
 * with strings (some property a string) or without (numbers alone). */
static void flat_of(const oas_spec *s, const json_t *schema, oas_flat *f, int strings)
{
    static const char *const ONEOF[] = {"oneOf", "description", "title", NULL};
    oas_flat t, found;
    memset(f, 0, sizeof *f);
    schema = deref(s, schema);
    if (!json_is_object(schema))
        return;
    const json_t *alts = json_object_get(schema, "oneOf");
    if (!alts) {
        if (flat_object(s, schema, &t) && (t.string != 0) == strings)
            *f = t;
        return;
    }
    if (!json_is_array(alts) || !only_keys(schema, ONEOF))
        return;
    size_t i, which = (size_t)-1;
    const json_t *a;
    json_array_foreach((json_t *)alts, i, a)
    {
        if (!flat_object(s, deref(s, a), &t) || (t.string != 0) != strings)
            continue;
        if (which != (size_t)-1)
            return; /* two flat ones of the kind */
        which = i, found = t;
    }
    if (which == (size_t)-1)
        return;
    json_array_foreach((json_t *)alts, i, a)
    {
        const json_t *req = json_object_get(deref(s, a), "required");
        int excluded = i == which;
        size_t k;
        const json_t *r;
        json_array_foreach((json_t *)req, k, r) excluded |=
            json_is_string(r) && flat_index(&found, json_string_value(r)) == found.n;
        if (!excluded)
            return;
    }
    *f = found;
}

static oas_op op_entry(const oas_spec *s, const json_t *op)
{
    oas_op e = {op, NULL, 0, 0, {0}, {0}};
    const char *bad;
    e.request = op ? oas_request_schema(s, op) : NULL;
    e.auth = oas_security(s, op, &e.scopes, &bad);
    if (e.request) {
        flat_of(s, e.request, &e.flat, 0);
        flat_of(s, e.request, &e.flat_str, 1);
    }
    return e;
}

/* ---- a flat body read from its text ---------------------------------------- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A JSON number at p (RFC 8259 grammar) into *v as the reader gives it;
 * the end, or NULL. */
static const char *read_number(const char *p, const char *end, double *v)
{
    const char *b = p;
    int is_int = 1;
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (p < end && *p >= '1' && *p <= '9')
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (p < end && *p == '.') {
        is_int = 0, p++;
        if (!(p < end && *p >= '0' && *p <= '9'))
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        is_int = 0, p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!(p < end && *p >= '0' && *p <= '9'))
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    size_t n = (size_t)(p - b);
    int neg = *b == '-';
    if (is_int && n - (size_t)neg <= 18) {
        /* Up to 18 digits fit in 64 bits: strtoll's value, without it. */
        long long ll = 0;
        for (const char *d = b + neg; d < p; d++)
            ll = ll * 10 + (*d - '0');
        *v = (double)(neg ? -ll : ll);
        return p;
    }
    char buf[64];
    if (n >= sizeof buf)
        return NULL;
    memcpy(buf, b, n);
    buf[n] = '\0';
    if (is_int) { /* jansson: an integer when it fits in 64 bits, else a real */
        errno = 0;
        long long ll = strtoll(buf, NULL, 10);
        if (errno == 0) {
            *v = (double)ll;
            return p;
        }
    }
    errno = 0;
    *v = strtod(buf, NULL);
    return isfinite(*v) && errno != ERANGE ? p : NULL; /* overflow: jansson's 400 */
}

int oas_flat_read(const oas_flat *f, const char *text, size_t len, double *v, oas_str *str)
{
    if (!f->n || (f->string && !str))
        return 0;
    const char *p = text, *end = text + len;
    unsigned seen = 0;
    p = skip_ws(p, end);
    if (p == end || *p++ != '{')
        return 0;
    p = skip_ws(p, end);
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            if (p == end || *p++ != '"')
                return 0;
            const char *k = p;
            while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
                p++;
            if (p == end || *p != '"')
                return 0;
            size_t kl = (size_t)(p++ - k), i = 0;
            while (i < f->n && !(f->len[i] == kl && memcmp(f->name[i], k, kl) == 0))
                i++;
            if (i == f->n || (seen >> i & 1))
                return 0; /* another member, or one twice */
            p = skip_ws(p, end);
            if (p == end || *p++ != ':')
                return 0;
            p = skip_ws(p, end);
            if (f->string >> i & 1) {
                /* Printable ASCII alone: its length in bytes is the
                 * schema's length in characters, and it is its value. */
                if (p == end || *p++ != '"')
                    return 0;
                const char *b = p;
                while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20 &&
                       (unsigned char)*p < 0x80)
                    p++;
                if (p == end || *p != '"')
                    return 0;
                size_t sl = (size_t)(p++ - b);
                if (sl < f->minlen[i] || sl > f->maxlen[i])
                    return 0;
                str[i].p = b, str[i].n = sl;
                v[i] = NAN;
            } else {
                double x;
                if (!(p = read_number(p, end, &x)))
                    return 0;
                if (x < f->min[i] || x > f->max[i] || ((f->xmin >> i & 1) && x <= f->min[i]) ||
                    ((f->xmax >> i & 1) && x >= f->max[i]) ||
                    ((f->integer >> i & 1) && x != floor(x)))
                    return 0;
                v[i] = x;
                if (str)
                    str[i].p = NULL, str[i].n = 0;
            }
            seen |= 1u << i;
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            return 0;
        }
    }
    if (skip_ws(p, end) != end || (seen & f->required) != f->required)
        return 0;
    for (size_t i = 0; i < f->n; i++)
        if (!(seen >> i & 1)) {
            v[i] = NAN;
            if (str)
                str[i].p = NULL, str[i].n = 0;
        }
    return 1;
}

/* The table of oas_find, from the document's paths (after check_refs). */
static rfm_status index_paths(oas_spec *s)
{
    const json_t *paths = json_object_get(s->root, "paths");
    s->none = op_entry(s, NULL);
    s->npaths = 0;
    s->paths = calloc(json_object_size(paths) + 1, sizeof *s->paths);
    if (!s->paths)
        return RFM_ENOMEM;
    const char *path;
    const json_t *item;
    json_object_foreach((json_t *)paths, path, item)
    {
        path_entry *e = &s->paths[s->npaths++];
        e->path = path;
        for (size_t i = 0; i < sizeof METHODS / sizeof *METHODS; i++) {
            const json_t *op = json_object_get(item, METHODS[i]);
            e->ops[i] = op ? op_entry(s, op) : s->none;
        }
    }
    qsort(s->paths, s->npaths, sizeof *s->paths, cmp_path);
    return RFM_OK;
}

const oas_op *oas_find(const oas_spec *s, const char *method, const char *path)
{
    /* METHODS are lower case: the first letter, folded, before the rest. */
    size_t m = 0;
    while (m < sizeof METHODS / sizeof *METHODS &&
           !((method[0] | 0x20) == METHODS[m][0] && strcasecmp(method, METHODS[m]) == 0))
        m++;
    if (m == sizeof METHODS / sizeof *METHODS)
        return &s->none;
    size_t lo = 0, hi = s->npaths;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(path, s->paths[mid].path);
        if (c == 0)
            return &s->paths[mid].ops[m];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return &s->none;
}

rfm_status oas_load(const char *path, oas_spec **out, char *err, size_t errlen)
{
    *out = NULL;
    json_t *root;
    rfm_status st = yamljson_load(path, &root, err, errlen);
    if (st != RFM_OK)
        return st;
    const char *v = json_string_value(json_object_get(root, "openapi"));
    if (!v || strncmp(v, "3.", 2) != 0 || !json_is_object(json_object_get(root, "paths"))) {
        json_decref(root);
        return rfm_fail(err, errlen, RFM_EFORMAT, "%s: not an OpenAPI 3 document with paths", path);
    }
    oas_spec *s = calloc(1, sizeof *s);
    if (!s) {
        json_decref(root);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    s->root = root;
    st = check_refs(s, root, 0, path, err, errlen);
    if (st != RFM_OK) {
        oas_free(s);
        return st;
    }
    if (s->nrefs > 0) /* a contract without $ref has no array: qsort(NULL) is undefined */
        qsort(s->refs, s->nrefs, sizeof *s->refs, cmp_ref);
    if (index_paths(s) != RFM_OK) {
        oas_free(s);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    *out = s;
    return RFM_OK;
}

void oas_free(oas_spec *s)
{
    if (!s)
        return;
    json_decref(s->root);
    free(s->refs);
    free(s->paths);
    free(s);
}

const json_t *oas_root(const oas_spec *s) { return s->root; }

const json_t *oas_operation(const oas_spec *s, const char *method, const char *path)
{
    const json_t *item = json_object_get(json_object_get(s->root, "paths"), path);
    if (!item)
        return NULL;
    for (size_t i = 0; i < sizeof METHODS / sizeof *METHODS; i++)
        if (strcasecmp(method, METHODS[i]) == 0)
            return json_object_get(item, METHODS[i]);
    return NULL;
}

int oas_path_allow(const oas_spec *s, const char *path, char *allow, size_t len)
{
    const json_t *item = json_object_get(json_object_get(s->root, "paths"), path);
    if (!item)
        return 0;
    size_t n = 0;
    allow[0] = '\0';
    for (size_t i = 0; i < sizeof METHODS / sizeof *METHODS; i++) {
        if (!json_object_get(item, METHODS[i]))
            continue;
        for (const char *m = METHODS[i]; *m && n + 3 < len; m++)
            allow[n++] = (char)toupper((unsigned char)*m);
        if (n + 3 < len) {
            allow[n++] = ',';
            allow[n++] = ' ';
        }
        allow[n] = '\0';
    }
    if (n >= 2)
        allow[n - 2] = '\0';
    return 1;
}

/* Follow "#/a/b~1c" within the document. */
static const json_t *resolve(const oas_spec *s, const char *ref)
{
    if (strncmp(ref, "#/", 2) != 0)
        return NULL;
    const json_t *cur = s->root;
    const char *p = ref + 2;
    char key[256];
    while (cur && *p) {
        size_t k = 0;
        for (; *p && *p != '/' && k + 1 < sizeof key; p++) {
            if (p[0] == '~' && p[1] == '0') {
                key[k++] = '~';
                p++;
            } else if (p[0] == '~' && p[1] == '1') {
                key[k++] = '/';
                p++;
            } else {
                key[k++] = *p;
            }
        }
        key[k] = '\0';
        cur =
            json_is_array(cur) ? json_array_get(cur, (size_t)atol(key)) : json_object_get(cur, key);
        if (*p == '/')
            p++;
    }
    return cur;
}

static const json_t *deref(const oas_spec *s, const json_t *schema)
{
    for (int i = 0; i < MAX_REF_DEPTH && schema; i++) {
        const char *ref = json_string_value(json_object_get(schema, "$ref"));
        if (!ref)
            return schema;
        schema = resolve(s, ref);
    }
    return NULL; /* a cycle of bare references */
}

const json_t *oas_request_schema(const oas_spec *s, const json_t *op)
{
    const json_t *rb = deref(s, json_object_get(op, "requestBody"));
    return deref(
        s, json_object_get(json_object_get(json_object_get(rb, "content"), "application/json"),
                           "schema"));
}

const json_t *oas_response_schema(const oas_spec *s, const json_t *op, int status)
{
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    const json_t *rs = json_object_get(op, "responses");
    const json_t *r = json_object_get(rs, code);
    if (!r)
        r = json_object_get(rs, "default");
    r = deref(s, r);
    return deref(s,
                 json_object_get(json_object_get(json_object_get(r, "content"), "application/json"),
                                 "schema"));
}

/* ---- validation ------------------------------------------------------ */

typedef struct {
    const oas_spec *s;
    oas_violation *out;
    size_t max, n;
    char ptr[192];
    size_t plen;
    size_t level; /* tokens in the pointer (ptr holds them only when out is set) */
    int depth;
    /* For choosing which alternative of a oneOf/anyOf to report: base is
     * the pointer length where the alternative applies; against counts the
     * violations saying the value is not of that alternative's shape (its
     * type, enum or bounds at base, or a field it does not allow). A
     * missing required field is not counted: {} is nearer to a single
     * request than to a batch. base and the comparisons are in levels, so
     * that a trial, which reports nothing, need not spell the pointer. */
    size_t base, against;
} vctx;

/* Length of the UTF-8 sequence starting at s (at most n bytes), or 0 when
 * it is not a complete, well-formed sequence. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80             ? 1
                 : (s[0] & 0xE0) == 0xC0 ? 2
                 : (s[0] & 0xF0) == 0xE0 ? 3
                 : (s[0] & 0xF8) == 0xF0 ? 4
                                         : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

static void add(vctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(vctx *c, const char *fmt, ...)
{
    if (c->out && c->n < c->max) {
        oas_violation *v = &c->out[c->n];
        snprintf(v->pointer, sizeof v->pointer, "%.*s", (int)c->plen, c->ptr);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->message, sizeof v->message, fmt, ap);
        va_end(ap);
    }
    c->n++;
    c->against += c->level == c->base;
}

/* Append "/token" (escaped) to the pointer; returns the old length (for
 * pop). A pointer longer than the buffer is cut at a character boundary,
 * so that it stays valid UTF-8 (keys come from jansson, which checked
 * them). Without violations to report (a trial), only the level moves. */
static size_t push(vctx *c, const char *tok)
{
    size_t old = c->plen, room = sizeof c->ptr - 1;
    c->level++;
    if (!c->out)
        return old;
    if (c->plen < room)
        c->ptr[c->plen++] = '/';
    for (size_t n = strlen(tok); *tok;) {
        if (*tok == '~' || *tok == '/') {
            if (c->plen + 2 > room)
                break;
            c->ptr[c->plen++] = '~';
            c->ptr[c->plen++] = *tok == '~' ? '0' : '1';
            tok++, n--;
            continue;
        }
        size_t k = utf8_seq((const unsigned char *)tok, n);
        if (k == 0)
            k = 1; /* not reached with jansson's keys; copy the byte as is */
        if (c->plen + k > room)
            break;
        memcpy(c->ptr + c->plen, tok, k);
        c->plen += k;
        tok += k, n -= k;
    }
    return old;
}

static size_t push_index(vctx *c, size_t i)
{
    if (!c->out) {
        c->level++;
        return c->plen;
    }
    char b[24];
    snprintf(b, sizeof b, "%zu", i);
    return push(c, b);
}

static void pop(vctx *c, size_t old)
{
    c->plen = old;
    c->level--;
}

static int is_integer(const json_t *v)
{
    if (json_is_integer(v))
        return 1;
    if (!json_is_real(v))
        return 0;
    double d = json_real_value(v);
    return isfinite(d) && d == floor(d);
}

static int type_matches(const json_t *v, const char *t)
{
    if (strcmp(t, "object") == 0)
        return json_is_object(v);
    if (strcmp(t, "array") == 0)
        return json_is_array(v);
    if (strcmp(t, "string") == 0)
        return json_is_string(v);
    if (strcmp(t, "number") == 0)
        return json_is_number(v);
    if (strcmp(t, "integer") == 0)
        return is_integer(v);
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(t, "null") == 0)
        return json_is_null(v);
    return 0;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static size_t utf8_length(const char *s, size_t n)
{
    size_t cp = 0;
    for (size_t i = 0; i < n; i++)
        cp += ((unsigned char)s[i] & 0xC0) != 0x80;
    return cp;
}

/* JSON Schema equality: like json_equal, except that numbers compare by
 * value (1 equals 1.0), also inside arrays and objects. */
static int same_value(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_array(a)) {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return 0;
        for (size_t i = 0; i < n; i++)
            if (!same_value(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        const char *key;
        json_t *va;
        json_object_foreach((json_t *)a, key, va)
        {
            const json_t *vb = json_object_get(b, key);
            if (!vb || !same_value(va, vb))
                return 0;
        }
        return 1;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

static void validate(vctx *c, const json_t *schema, const json_t *v);

/* Count violations of one subschema without reporting them; *against
 * gets those that speak against the value having its shape (see vctx). */
static size_t trial(vctx *c, const json_t *schema, const json_t *v, size_t *against)
{
    vctx t = *c;
    t.out = NULL;
    t.n = 0;
    t.base = c->level;
    t.against = 0;
    validate(&t, schema, v);
    *against = t.against;
    return t.n;
}

/* Validate v against the alternatives in list (a oneOf when one, else an
 * anyOf). When none matches, report the violations of the alternative the
 * value is nearest to: the fewest violations against its shape, the
 * first on a tie. This is what lets a batch with bad customers be told
 * about the customers, not that it lacks the fields of a single request. */
static void alternatives(vctx *c, const json_t *list, const json_t *v, int one)
{
    size_t i, best = 0, best_against = SIZE_MAX, matched = 0;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        size_t against;
        size_t n = trial(c, e, v, &against);
        matched += n == 0;
        if (n == 0 && !one)
            return;
        if (against < best_against)
            best_against = against, best = i;
    }
    if (one && matched > 1)
        add(c, "matches %zu of the alternatives; exactly one is allowed", matched);
    else if (matched == 0 && json_array_size(list) > 0)
        validate(c, json_array_get(list, best), v);
}

/* The keywords of one schema object, gathered in one pass over its keys:
 * schemas have a handful of keys, so this costs less than looking up each
 * of the twenty keywords that might be there. */
typedef struct {
    const json_t *ref, *type, *en, *cn, *min, *max, *xmin, *xmax, *minlen, *maxlen, *minitems,
        *maxitems, *items, *props, *req, *addl, *all, *any, *one;
} keywords;

static void gather(const json_t *schema, keywords *k)
{
    memset(k, 0, sizeof *k);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)schema, key, val)
    {
        const json_t **slot = NULL;
        switch (key[0]) {
        case '$': slot = strcmp(key, "$ref") == 0 ? &k->ref : NULL; break;
        case 'a':
            slot = strcmp(key, "additionalProperties") == 0 ? &k->addl
                   : strcmp(key, "allOf") == 0              ? &k->all
                   : strcmp(key, "anyOf") == 0              ? &k->any
                                                            : NULL;
            break;
        case 'c': slot = strcmp(key, "const") == 0 ? &k->cn : NULL; break;
        case 'e':
            slot = strcmp(key, "enum") == 0               ? &k->en
                   : strcmp(key, "exclusiveMinimum") == 0 ? &k->xmin
                   : strcmp(key, "exclusiveMaximum") == 0 ? &k->xmax
                                                          : NULL;
            break;
        case 'i': slot = strcmp(key, "items") == 0 ? &k->items : NULL; break;
        case 'm':
            slot = strcmp(key, "minimum") == 0     ? &k->min
                   : strcmp(key, "maximum") == 0   ? &k->max
                   : strcmp(key, "minLength") == 0 ? &k->minlen
                   : strcmp(key, "maxLength") == 0 ? &k->maxlen
                   : strcmp(key, "minItems") == 0  ? &k->minitems
                   : strcmp(key, "maxItems") == 0  ? &k->maxitems
                                                   : NULL;
            break;
        case 'o': slot = strcmp(key, "oneOf") == 0 ? &k->one : NULL; break;
        case 'p': slot = strcmp(key, "properties") == 0 ? &k->props : NULL; break;
        case 'r': slot = strcmp(key, "required") == 0 ? &k->req : NULL; break;
        case 't': slot = strcmp(key, "type") == 0 ? &k->type : NULL; break;
        default: break;
        }
        if (slot)
            *slot = val;
    }
}

/* $ref: validate v against the schema it names. */
static void check_ref(vctx *c, const keywords *kw, const json_t *v)
{
    const char *ref = json_string_value(kw->ref);
    if (!ref)
        return;
    const json_t *target = lookup_ref(c->s, kw->ref);
    if (!target) /* a schema from outside the document */
        target = resolve(c->s, ref);
    if (!target)
        add(c, "schema reference %s cannot be resolved", ref);
    else
        validate(c, target, v);
}

/* type: 1 when v has (one of) the types, else 0 after reporting it. */
static int check_type(vctx *c, const keywords *kw, const json_t *v)
{
    const json_t *t = kw->type;
    if (!t)
        return 1;
    int ok = 0;
    if (json_is_string(t)) {
        ok = type_matches(v, json_string_value(t));
    } else if (json_is_array(t)) {
        size_t i;
        json_t *e;
        json_array_foreach(t, i, e) ok |=
            json_is_string(e) && type_matches(v, json_string_value(e));
    }
    if (ok)
        return 1;
    char want[96] = "";
    if (json_is_string(t)) {
        snprintf(want, sizeof want, "%s", json_string_value(t));
    } else {
        size_t i, n = 0;
        json_t *e;
        json_array_foreach(t, i, e)
        {
            const char *ts = json_string_value(e);
            if (!ts)
                continue;
            n += (size_t)snprintf(want + n, n < sizeof want ? sizeof want - n : 0, "%s%s",
                                  n ? " or " : "", ts);
            if (n >= sizeof want)
                n = sizeof want - 1;
        }
    }
    add(c, "must be %s %s, not %s", want[0] && strchr("aeiou", want[0]) ? "an" : "a", want,
        type_name(v));
    return 0;
}

/* enum and const. */
static void check_values(vctx *c, const keywords *kw, const json_t *v)
{
    const json_t *en = kw->en;
    if (json_is_array(en)) {
        size_t i;
        json_t *e;
        int found = 0;
        json_array_foreach(en, i, e) found |= same_value(e, v);
        if (!found) {
            char list[120] = "";
            size_t n = 0;
            json_array_foreach(en, i, e)
            {
                if (json_is_string(e) && n < sizeof list)
                    n += (size_t)snprintf(list + n, sizeof list - n, "%s'%s'", i ? ", " : "",
                                          json_string_value(e));
            }
            add(c, "must be one of %s", list);
        }
    }
    const json_t *cn = kw->cn;
    if (cn && !same_value(cn, v))
        add(c, "must equal the constant value");
}

/* minimum, maximum and their exclusive forms. */
static void check_number(vctx *c, const keywords *kw, const json_t *v)
{
    double x = json_number_value(v);
    const json_t *k;
    if ((k = kw->min) && json_is_number(k) && x < json_number_value(k))
        add(c, "must be >= %.17g", json_number_value(k));
    if ((k = kw->max) && json_is_number(k) && x > json_number_value(k))
        add(c, "must be <= %.17g", json_number_value(k));
    if ((k = kw->xmin) && json_is_number(k) && x <= json_number_value(k))
        add(c, "must be > %.17g", json_number_value(k));
    if ((k = kw->xmax) && json_is_number(k) && x >= json_number_value(k))
        add(c, "must be < %.17g", json_number_value(k));
}

/* minLength and maxLength, in code points. */
static void check_string(vctx *c, const keywords *kw, const json_t *v)
{
    size_t cp = utf8_length(json_string_value(v), json_string_length(v));
    const json_t *k;
    if ((k = kw->minlen) && json_is_integer(k) && (json_int_t)cp < json_integer_value(k))
        add(c, "must have at least %lld characters", (long long)json_integer_value(k));
    if ((k = kw->maxlen) && json_is_integer(k) && (json_int_t)cp > json_integer_value(k))
        add(c, "must have at most %lld characters", (long long)json_integer_value(k));
}

/* minItems, maxItems and items (one schema for every item). */
static void check_array(vctx *c, const keywords *kw, const json_t *v)
{
    size_t n = json_array_size(v);
    const json_t *k;
    if ((k = kw->minitems) && json_is_integer(k) && (json_int_t)n < json_integer_value(k))
        add(c, "must have at least %lld items", (long long)json_integer_value(k));
    if ((k = kw->maxitems) && json_is_integer(k) && (json_int_t)n > json_integer_value(k))
        add(c, "must have at most %lld items", (long long)json_integer_value(k));
    const json_t *items = kw->items;
    if (items && !json_is_array(items))
        for (size_t i = 0; i < n; i++) {
            size_t old = push_index(c, i);
            validate(c, items, json_array_get(v, i));
            pop(c, old);
        }
}

/* required, properties and additionalProperties. */
static void check_object(vctx *c, const keywords *kw, const json_t *v)
{
    const json_t *props = kw->props;
    const json_t *req = kw->req;
    size_t i;
    json_t *e;
    if (json_is_array(req))
        json_array_foreach(req, i, e)
        {
            const char *name = json_string_value(e);
            if (name && !json_object_get(v, name)) {
                size_t old = push(c, name);
                add(c, "is required");
                pop(c, old);
            }
        }
    const json_t *addl = kw->addl;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        const json_t *ps = json_object_get(props, key);
        int at_base = c->level == c->base;
        size_t old = push(c, key);
        if (ps) {
            validate(c, ps, val);
        } else if (json_is_false(addl)) {
            add(c, "is not an allowed field");
            c->against += at_base;
        } else if (json_is_object(addl))
            validate(c, addl, val);
        pop(c, old);
    }
}

/* allOf, anyOf, oneOf. */
static void check_combinators(vctx *c, const keywords *kw, const json_t *v)
{
    const json_t *k;
    if ((k = kw->all) && json_is_array(k)) {
        size_t i;
        json_t *e;
        json_array_foreach(k, i, e) validate(c, e, v);
    }
    if ((k = kw->any) && json_is_array(k))
        alternatives(c, k, v, 0);
    if ((k = kw->one) && json_is_array(k))
        alternatives(c, k, v, 1);
}

static void validate(vctx *c, const json_t *schema, const json_t *v)
{
    if (json_is_true(schema) || !schema)
        return;
    if (json_is_false(schema)) {
        add(c, "is not allowed");
        return;
    }
    if (++c->depth > 64) {
        add(c, "schema nests too deeply");
        c->depth--;
        return;
    }
    keywords kw;
    gather(schema, &kw);
    check_ref(c, &kw, v);
    if (check_type(c, &kw, v)) { /* else other keywords would only repeat the complaint */
        check_values(c, &kw, v);
        if (json_is_number(v))
            check_number(c, &kw, v);
        if (json_is_string(v))
            check_string(c, &kw, v);
        if (json_is_array(v))
            check_array(c, &kw, v);
        if (json_is_object(v))
            check_object(c, &kw, v);
        check_combinators(c, &kw, v);
    }
    c->depth--;
}

size_t oas_validate(const oas_spec *s, const json_t *schema, const json_t *value,
                    oas_violation *out, size_t max)
{
    vctx c = {s, out, max, 0, "", 0, 0, 0, 0, 0};
    validate(&c, schema, value);
    return c.n;
}

int oas_security(const oas_spec *s, const json_t *op, unsigned *scopes, const char **bad)
{
    *scopes = RFM_SCOPE_ADMIN;
    *bad = NULL;
    const json_t *sec = json_object_get(op, "security");
    if (!sec)
        sec = json_object_get(oas_root(s), "security");
    if (json_is_array(sec) && json_array_size(sec) == 0)
        return OAS_AUTH_NONE;
    int optional = 0, found = 0;
    size_t i;
    const json_t *req;
    json_array_foreach(sec, i, req)
    {
        if (json_is_object(req) && json_object_size(req) == 0)
            optional = 1;
        const json_t *list = json_object_get(req, "bearer");
        if (found || !json_is_array(list))
            continue;
        found = 1;
        unsigned need = 0;
        size_t k;
        const json_t *name;
        json_array_foreach(list, k, name)
        {
            const char *n = json_string_value(name);
            unsigned bit = n ? config_scope_bit(n, strlen(n)) : 0;
            if (!bit) {
                *bad = n ? n : "(not a string)";
                return OAS_AUTH_BAD;
            }
            need |= bit;
        }
        if (need)
            *scopes = need;
    }
    return optional ? OAS_AUTH_OPTIONAL : OAS_AUTH_REQUIRED;
}
