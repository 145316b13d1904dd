/* jsonx.h - checked reads of model files' JSON fields.
 *
 * Every getter names the missing or ill-typed field in err (prefixed by
 * `where`, e.g. "segments.json: kmeans.mean") and returns RFM_EFORMAT, so a
 * loader reads as a list of getters with one error path.
 */
#ifndef RFM_JSONX_H
#define RFM_JSONX_H

#include <jansson.h>
#include <stddef.h>

#include "status.h"

rfm_status jsonx_number(const json_t *obj, const char *key, const char *where, double *out,
                        char *err, size_t errlen);
rfm_status jsonx_int(const json_t *obj, const char *key, const char *where, long long *out,
                     char *err, size_t errlen);
/* An integer in lo..hi. */
rfm_status jsonx_int_in(const json_t *obj, const char *key, const char *where, long long lo,
                        long long hi, long long *out, char *err, size_t errlen);
/* *out borrows the string from obj. */
rfm_status jsonx_string(const json_t *obj, const char *key, const char *where, const char **out,
                        char *err, size_t errlen);
/* An array of exactly n numbers into out. */
rfm_status jsonx_numbers(const json_t *obj, const char *key, const char *where, double *out,
                         size_t n, char *err, size_t errlen);
/* An array value of exactly n finite numbers into out. */
rfm_status jsonx_vec(const json_t *a, const char *where, double *out, size_t n, char *err,
                     size_t errlen);
/* Element i of array a, for loaders that name the field themselves: 0 and
 * *out set when it is an integer in lo..hi (resp. a finite number), else -1
 * and *out unspecified. */
int jsonx_item_int(const json_t *a, size_t i, long long lo, long long hi, long long *out);
int jsonx_item_number(const json_t *a, size_t i, double *out);
/* A member that must be an object (or array, with jsonx_array). */
rfm_status jsonx_object(const json_t *obj, const char *key, const char *where, const json_t **out,
                        char *err, size_t errlen);
rfm_status jsonx_array(const json_t *obj, const char *key, const char *where, const json_t **out,
                       char *err, size_t errlen);
/* New JSON array of n doubles (NULL when out of memory). */
json_t *jsonx_from_doubles(const double *v, size_t n);

/* Flags for writing model files with jsonout_dumps, whose shortest
 * round-trip reals read back bit for bit. */
#define JSONX_DUMP_FLAGS (JSON_INDENT(1) | JSON_SORT_KEYS)

#endif
