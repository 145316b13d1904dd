/* oas.h - the API contract: operations of openapi.yaml and JSON Schema
 * validation of request and response bodies against it.
 *
 * Supports the keywords openapi.yaml uses, with JSON Schema 2020-12
 * semantics: type (string or list; "integer" is any number with no
 * fractional part, so 1.0 is one), required, properties,
 * additionalProperties (bool or schema), enum, const, minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum (numbers, as in 3.1), minLength and
 * maxLength (in Unicode code points), items, minItems, maxItems, oneOf,
 * anyOf, allOf, and $ref to "#/..." within the file. Unknown keywords are
 * ignored, as the specification says.
 *
 * Every violation is reported (up to a cap) with an RFC 6901 JSON pointer
 * to the offending value, the way FastAPI lists pydantic errors. When no
 * alternative of a oneOf/anyOf matches, the violations of the nearest one
 * are reported: the alternative with the fewest violations against its
 * shape (type, enum and bounds of the value itself, fields it does not
 * allow; missing required fields do not count), the first on a tie. Enum
 * and const compare numbers by value (1 equals 1.0).
 *
 * Workload: every request body, at tens of thousands per second; a single
 * /segment body takes about a microsecond. Alternatives are tried before
 * reporting, so a failing oneOf is walked twice; nested alternatives in a
 * recursive schema would multiply that (openapi.yaml has none).
 * Non-goals: $ref outside the file, $dynamicRef, format, pattern,
 * dependentSchemas and the other keywords openapi.yaml does not use.
 * Thread safety: a loaded spec is read-only; validation allocates nothing.
 */
#ifndef RFM_OAS_H
#define RFM_OAS_H

#include <jansson.h>
#include <stddef.h>

#include "status.h"

typedef struct oas_spec oas_spec;

typedef struct {
    char pointer[192]; /* "/customers/3/recency"; "" is the whole body; a
                          longer pointer is cut at a character boundary */
    char message[160];
} oas_violation;

/* Load an OpenAPI 3.x YAML (or JSON) file. Every $ref must point within
 * the file, resolve, and not be part of a cycle of bare references;
 * otherwise RFM_EFORMAT naming it (RFM_EIO, RFM_EPARSE for the file). */
rfm_status oas_load(const char *path, oas_spec **out, char *err, size_t errlen);
void oas_free(oas_spec *s);
const json_t *oas_root(const oas_spec *s);

/* The Operation Object for method ("get", "post", ...; any case) and an
 * exact path, or NULL. */
const json_t *oas_operation(const oas_spec *s, const char *method, const char *path);
/* Whether the path exists; if so, its methods in upper case joined by
 * ", " into allow (for a 405's Allow header). */
int oas_path_allow(const oas_spec *s, const char *path, char *allow, size_t len);
/* Schema of the application/json request body of op, or NULL. */
const json_t *oas_request_schema(const oas_spec *s, const json_t *op);
/* Schema of the application/json response for status (or "default"), or
 * NULL. */
const json_t *oas_response_schema(const oas_spec *s, const json_t *op, int status);

/* Who may call op (docs/security.md, "Scopes"): the operation's security
 * requirements, else the document's. OAS_AUTH_NONE for an empty list
 * (security: []); OAS_AUTH_OPTIONAL when one requirement is the empty
 * object {} (no token needed unless the server asks for one, as /metrics);
 * else OAS_AUTH_REQUIRED. *scopes gets the RFM_SCOPE_* bits the first
 * bearer requirement lists (all of them are needed), or RFM_SCOPE_ADMIN
 * when it lists none: an operation that declares no scope is for admin
 * tokens. An unknown scope name: OAS_AUTH_BAD, its name in *bad (which
 * borrows from the spec). */
enum { OAS_AUTH_NONE = 0, OAS_AUTH_OPTIONAL = 1, OAS_AUTH_REQUIRED = 2, OAS_AUTH_BAD = -1 };
int oas_security(const oas_spec *s, const json_t *op, unsigned *scopes, const char **bad);

/* A request schema that is, or has as one alternative of a oneOf, a flat
 * object: properties of type number or integer with at most minimum,
 * maximum and their exclusive forms, or of type string with at most
 * minLength and maxLength; some required, no other property allowed
 * (SegmentRequest: recency, frequency, monetary; CltvById: customer_id,
 * horizon_days, discount_rate). A body of that shape can be read from its
 * text without a JSON tree (oas_flat_read). Found at load; n 0 when the
 * schema is not so. Another alternative of the oneOf must require a
 * property the flat one does not have, so that a flat body matches the flat
 * alternative alone. An operation keeps its alternative of numbers alone
 * (oas_op.flat) apart from one with strings (oas_op.flat_str). */
enum { OAS_FLAT_MAX = 8 };
typedef struct {
    size_t n;                       /* properties, in the schema's order */
    const char *name[OAS_FLAT_MAX]; /* borrowed from the spec */
    size_t len[OAS_FLAT_MAX];
    unsigned required, integer;                        /* bit i: name[i] is required / an integer */
    double min[OAS_FLAT_MAX], max[OAS_FLAT_MAX];       /* -inf / inf when not given */
    unsigned xmin, xmax;                               /* bit i: min[i] / max[i] is exclusive */
    unsigned string;                                   /* bit i: name[i] is a string */
    size_t minlen[OAS_FLAT_MAX], maxlen[OAS_FLAT_MAX]; /* a string's bounds (0, SIZE_MAX) */
} oas_flat;

/* A string member of a flat body: its bytes in the text (no escapes, so
 * the string's value), NULL when absent. */
typedef struct {
    const char *p;
    size_t n;
} oas_str;

/* Whether text (len bytes) is a JSON object that oas_validate would
 * accept against f's schema and that the server's JSON reading takes
 * (strict JSON, no duplicate member): each member one of f's names once,
 * written without escapes, with a number in bounds or, for a string, a
 * string of printable ASCII (no escape: other strings go the general way)
 * within its length bounds; every required one present. Then v[i] is
 * name[i]'s value as the JSON reader gives it (an integer literal that
 * fits in 64 bits through that integer, so -0 is +0; else strtod), NAN
 * when absent or a string, and str[i] a string's bytes (NULL when absent
 * or a number; str may be NULL when f has no string). 0 for any other text, which the general path
 * answers (it may be valid all the same). Allocates nothing. */
int oas_flat_read(const oas_flat *f, const char *text, size_t len, double *v, oas_str *str);

/* An operation as the request path needs it, looked up once at load:
 * the request path asks for it by method and path with oas_find (a binary
 * search over the paths, no lookups in the document). */
typedef struct {
    const json_t *op;      /* the Operation Object, or NULL: no such operation */
    const json_t *request; /* oas_request_schema of op */
    int auth;              /* oas_security of op (of the document's when op is NULL) */
    unsigned scopes;       /* its scopes */
    oas_flat flat;         /* the request schema's flat object of numbers, if it has one */
    oas_flat flat_str;     /* its flat object with a string (customer_id), if it has one */
} oas_op;
/* The operation for method (any case) and an exact path: never NULL; its
 * op is NULL when the contract has no such operation. */
const oas_op *oas_find(const oas_spec *s, const char *method, const char *path);

/* Validate value against schema. Returns the number of violations found
 * (0: valid); the first `max` are written to out (out may be NULL). */
size_t oas_validate(const oas_spec *s, const json_t *schema, const json_t *value,
                    oas_violation *out, size_t max);

#endif
