/* yamljson.c - YAML event stream (libyaml) to jansson values. */
#include "yamljson.h"

#include "fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 64

static json_t *scalar_value(const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_stringn(s, n);
    if (n == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
        strcmp(s, "NULL") == 0)
        return json_null();
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
        return json_true();
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
        return json_false();
    char *end;
    errno = 0;
    long long i = strtoll(s, &end, 10);
    if (end == s + n && errno == 0 && (s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
        return json_integer(i);
    /* A float in YAML 1.2 core form: digits with '.', or an exponent. */
    int digits = 0, ok = 1;
    for (size_t k = 0; k < n && ok; k++) {
        char c = s[k];
        if (c >= '0' && c <= '9')
            digits = 1;
        else if (!(c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+'))
            ok = 0;
    }
    if (ok && digits) {
        errno = 0;
        double d = strtod(s, &end);
        if (end == s + n && errno == 0)
            return json_real(d);
    }
    return json_stringn(s, n);
}

rfm_status yamljson_parse(const char *text, size_t len, const char *name, json_t **out, char *err,
                          size_t errlen)
{
    yaml_parser_t p;
    yaml_event_t ev;
    json_t *stack[MAX_DEPTH];
    json_t *keys[MAX_DEPTH]; /* pending key per open mapping, or NULL */
    int depth = 0;
    json_t *root = NULL;
    rfm_status st = RFM_OK;

    *out = NULL;
    if (!yaml_parser_initialize(&p))
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: cannot initialise YAML parser", name);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);

    for (int done = 0; !done;) {
        if (!yaml_parser_parse(&p, &ev)) {
            st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%zu:%zu: %s", name, p.problem_mark.line + 1,
                          p.problem_mark.column + 1, p.problem ? p.problem : "YAML syntax error");
            break;
        }
        size_t line = ev.start_mark.line + 1, col = ev.start_mark.column + 1;
        json_t *val = NULL;
        int opens = 0;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (root) {
                st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%zu:%zu: more than one YAML document",
                              name, line, col);
            }
            break;
        case YAML_ALIAS_EVENT:
            st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%zu:%zu: YAML aliases are not supported",
                          name, line, col);
            break;
        case YAML_SCALAR_EVENT:
            if (ev.data.scalar.anchor) {
                st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%zu:%zu: YAML anchors are not supported",
                              name, line, col);
                break;
            }
            /* A scalar in key position of a mapping is a key. */
            if (depth > 0 && json_is_object(stack[depth - 1]) && !keys[depth - 1]) {
                keys[depth - 1] =
                    json_stringn((const char *)ev.data.scalar.value, ev.data.scalar.length);
                if (!keys[depth - 1])
                    st = rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", name);
                break;
            }
            val = scalar_value(&ev);
            if (!val)
                st = rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", name);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            val = ev.type == YAML_SEQUENCE_START_EVENT ? json_array() : json_object();
            if (!val)
                st = rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", name);
            opens = 1;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: depth--; break;
        default: break;
        }
        if (st == RFM_OK && val) {
            if (depth > 0 && json_is_object(stack[depth - 1]) && !keys[depth - 1]) {
                st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%zu:%zu: mapping keys must be scalars",
                              name, line, col);
                json_decref(val);
            } else if (depth == 0) {
                root = val;
            } else if (json_is_array(stack[depth - 1])) {
                if (json_array_append_new(stack[depth - 1], val)) /* val is freed */
                    st = rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", name);
            } else {
                const char *k = json_string_value(keys[depth - 1]);
                if (json_object_get(stack[depth - 1], k)) {
                    st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%zu:%zu: duplicate key '%s'", name,
                                  line, col, k);
                    json_decref(val);
                } else if (json_object_set_new(stack[depth - 1], k, val)) { /* val is freed */
                    st = rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", name);
                }
                json_decref(keys[depth - 1]);
                keys[depth - 1] = NULL;
            }
            if (st == RFM_OK && opens) {
                if (depth == MAX_DEPTH) {
                    st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%zu:%zu: nesting deeper than %d",
                                  name, line, col, MAX_DEPTH);
                } else {
                    stack[depth] = val;
                    keys[depth] = NULL;
                    depth++;
                }
            }
        }
        yaml_event_delete(&ev);
        if (st != RFM_OK)
            break;
    }
    for (int i = 0; i < depth && i < MAX_DEPTH; i++)
        if (keys[i])
            json_decref(keys[i]);
    yaml_parser_delete(&p);
    if (st != RFM_OK) {
        json_decref(root);
        return st;
    }
    if (!root)
        root = json_null();
    *out = root;
    return RFM_OK;
}

rfm_status yamljson_load(const char *path, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    char *buf;
    size_t len;
    rfm_status st = fileio_read(path, &buf, &len, err, errlen);
    if (st == RFM_OK)
        st = yamljson_parse(buf, len, path, out, err, errlen);
    free(buf);
    return st;
}
