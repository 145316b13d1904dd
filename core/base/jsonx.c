/* jsonx.c - checked JSON field access for model loaders. */
#include "jsonx.h"

#include <math.h>
#include <stdio.h>

static rfm_status missing(const char *where, const char *key, const char *what, char *err,
                          size_t errlen)
{
    return rfm_fail(err, errlen, RFM_EFORMAT, "%s.%s: %s", where, key, what);
}

rfm_status jsonx_number(const json_t *obj, const char *key, const char *where, double *out,
                        char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return missing(where, key, "missing", err, errlen);
    if (!json_is_number(v))
        return missing(where, key, "must be a number", err, errlen);
    *out = json_number_value(v);
    if (!isfinite(*out))
        return missing(where, key, "must be finite", err, errlen);
    return RFM_OK;
}

rfm_status jsonx_int(const json_t *obj, const char *key, const char *where, long long *out,
                     char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return missing(where, key, "missing", err, errlen);
    if (!json_is_integer(v))
        return missing(where, key, "must be an integer", err, errlen);
    *out = json_integer_value(v);
    return RFM_OK;
}

rfm_status jsonx_int_in(const json_t *obj, const char *key, const char *where, long long lo,
                        long long hi, long long *out, char *err, size_t errlen)
{
    rfm_status st = jsonx_int(obj, key, where, out, err, errlen);
    if (st == RFM_OK && (*out < lo || *out > hi))
        return rfm_fail(err, errlen, RFM_EFORMAT, "%s.%s: must be an integer in %lld..%lld", where,
                        key, lo, hi);
    return st;
}

int jsonx_item_int(const json_t *a, size_t i, long long lo, long long hi, long long *out)
{
    const json_t *v = json_array_get(a, i);
    if (!json_is_integer(v))
        return -1;
    *out = json_integer_value(v);
    return *out < lo || *out > hi ? -1 : 0;
}

int jsonx_item_number(const json_t *a, size_t i, double *out)
{
    const json_t *v = json_array_get(a, i);
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return isfinite(*out) ? 0 : -1;
}

rfm_status jsonx_string(const json_t *obj, const char *key, const char *where, const char **out,
                        char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return missing(where, key, "missing", err, errlen);
    if (!json_is_string(v))
        return missing(where, key, "must be a string", err, errlen);
    *out = json_string_value(v);
    return RFM_OK;
}

rfm_status jsonx_vec(const json_t *a, const char *where, double *out, size_t n, char *err,
                     size_t errlen)
{
    if (!json_is_array(a) || json_array_size(a) != n)
        return rfm_fail(err, errlen, RFM_EFORMAT, "%s: must be an array of %zu numbers", where, n);
    for (size_t i = 0; i < n; i++)
        if (jsonx_item_number(a, i, &out[i]))
            return rfm_fail(err, errlen, RFM_EFORMAT, "%s[%zu]: must be a finite number", where, i);
    return RFM_OK;
}

rfm_status jsonx_numbers(const json_t *obj, const char *key, const char *where, double *out,
                         size_t n, char *err, size_t errlen)
{
    const json_t *a = json_object_get(obj, key);
    if (!a)
        return missing(where, key, "missing", err, errlen);
    char w[256];
    snprintf(w, sizeof w, "%s.%s", where, key);
    return jsonx_vec(a, w, out, n, err, errlen);
}

rfm_status jsonx_object(const json_t *obj, const char *key, const char *where, const json_t **out,
                        char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return missing(where, key, "missing", err, errlen);
    if (!json_is_object(v))
        return missing(where, key, "must be an object", err, errlen);
    *out = v;
    return RFM_OK;
}

rfm_status jsonx_array(const json_t *obj, const char *key, const char *where, const json_t **out,
                       char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return missing(where, key, "missing", err, errlen);
    if (!json_is_array(v))
        return missing(where, key, "must be an array", err, errlen);
    *out = v;
    return RFM_OK;
}

json_t *jsonx_from_doubles(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_real(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}
