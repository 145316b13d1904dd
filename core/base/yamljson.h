/* yamljson.h - read a YAML file into a jansson tree.
 *
 * Config (config/rfm.yaml) and the API contract (openapi.yaml) are YAML;
 * everything downstream of this module sees JSON values. Supports block and
 * flow mappings and sequences and plain/quoted scalars; anchors, aliases and
 * tags are refused. Plain scalars are typed as YAML 1.2's core schema does:
 * null/~, true/false, integers, floats (incl. .inf/.nan refused), else
 * strings; quoted scalars are always strings.
 */
#ifndef RFM_YAMLJSON_H
#define RFM_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

#include "status.h"

/* Parse YAML text (len bytes) into *out (new reference, caller decrefs).
 * name is used in messages ("file:line:column: ..."). On failure *out is
 * NULL and err holds the position and reason. */
rfm_status yamljson_parse(const char *text, size_t len, const char *name, json_t **out, char *err,
                          size_t errlen);

/* Read and parse a YAML file. */
rfm_status yamljson_load(const char *path, json_t **out, char *err, size_t errlen);

#endif
