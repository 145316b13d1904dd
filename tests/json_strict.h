/* json_strict.h - a request body parsed as rfm-serve's general path does
 * (server/http.c parse_body): strict JSON, duplicate members refused, an
 * integer beyond 64 bits read as a real. For tests that hold a reader
 * without a tree (event.h, oas_flat_read) to it. */
#ifndef RFM_TEST_JSON_STRICT_H
#define RFM_TEST_JSON_STRICT_H

#include <jansson.h>
#include <string.h>

static inline json_t *json_strict(const char *text, size_t len)
{
    json_error_t je;
    size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
    json_t *j = json_loadb(text, len, flags, &je);
    if (!j && json_error_code(&je) == json_error_numeric_overflow &&
        strncmp(je.text, "too big", 7) == 0)
        j = json_loadb(text, len, flags | JSON_DECODE_INT_AS_REAL, &je);
    return j;
}

#endif
