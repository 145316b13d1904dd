/* campaign.h - randomised campaign logs to a numeric design for core/uplift.
 *
 * Purpose: read a campaign CSV (plain or gzip) given which columns are
 * features (number, or category whose levels are learned), which column holds
 * the treatment (one control level and K arm levels) and which the outcome,
 * into X (n x d, row-major), arm (0 = control, k = arms[k-1]) and y. The
 * learned encoding is kept (campaign_encoding) so the service can turn a
 * request's {"features": {...}} into the same columns.
 *
 * Encoding: a number feature is one column; a category feature is one 0/1
 * column per learned level (all levels, sorted in byte order so that a
 * shuffled file gives the same model). Trees need no reference level.
 * Errors name file:line:column and the value: a bad number, an empty value,
 * a treatment level that is neither control nor an arm, a wrong field count.
 *
 * Workload: 10^4-10^6 rows, a few dozen columns; one pass, memory grows with
 * rows. Non-goals: missing values (refused), unseen categories at scoring
 * (refused), ordinal or hashed encodings, more than 256 levels per category.
 * Thread safety: an encoding is read-only after creation; every function is
 * reentrant.
 */
#ifndef RFM_CAMPAIGN_H
#define RFM_CAMPAIGN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define CAMPAIGN_MAX_LEVELS 256

typedef enum { CAMPAIGN_NUMBER = 0, CAMPAIGN_CATEGORY = 1 } campaign_ftype;

typedef struct {
    const char *name; /* column name in the header */
    campaign_ftype type;
} campaign_feature;

/* What to read; strings are borrowed for the call only. */
typedef struct {
    const campaign_feature *features;
    size_t n_features;
    const char *treatment;   /* column */
    const char *control;     /* its control level, e.g. "No E-Mail" */
    const char *const *arms; /* its arm levels; arm k is arms[k-1] */
    size_t n_arms;           /* 1..64 */
    const char *outcome;     /* column, read as a number */
} campaign_spec;

typedef struct campaign_encoding campaign_encoding;

typedef struct {
    size_t n, d;     /* rows, encoded columns */
    double *X;       /* n x d, row-major */
    int *arm;        /* n: 0 control, 1..n_arms */
    double *y;       /* n */
    char sha256[65]; /* of the raw file, hex */
    campaign_encoding *enc;
} campaign_data;

/* Reason the spec is invalid (no features, duplicate names, a column used
 * twice, control equal to an arm...), or NULL. */
const char *campaign_check_spec(const campaign_spec *s);

/* Read path with spec. On success *out is new (campaign_data_free). Fails
 * with RFM_EIO (open/read), RFM_EPARSE (malformed CSV, bad value; message
 * "file:line:column: ..."), RFM_EINVAL (bad spec, a column missing from the
 * header), RFM_EDATA (no data rows, a category with too many levels),
 * RFM_ENOMEM; *out is then unchanged. */
rfm_status campaign_read(const char *path, const campaign_spec *spec, campaign_data **out,
                         char *err, size_t errlen);
void campaign_data_free(campaign_data *d);

/* Encoded width, and the name of column j: "recency", "zip_code=Rural". */
size_t campaign_n_columns(const campaign_encoding *e);
const char *campaign_column_name(const campaign_encoding *e, size_t j);
/* K, and the level of arm k (0: the control level). */
size_t campaign_n_arms(const campaign_encoding *e);
const char *campaign_arm_name(const campaign_encoding *e, size_t k);
const char *campaign_outcome_name(const campaign_encoding *e);

/* Encode a request's features object into x (campaign_n_columns doubles).
 * RFM_EINVAL with a message naming the field ("features.zip_code: unknown
 * category 'Mars'", "features.recency: missing", "features.foo: unknown
 * feature", "features.recency: expected a number") - the service's 422. A
 * number feature takes a finite JSON number; a category takes a string.
 * x is unchanged on failure. */
rfm_status campaign_encode_json(const campaign_encoding *e, const json_t *features, double *x,
                                char *err, size_t errlen);

/* {"features": [{"name", "type": "number"|"category", "levels": [...]}],
 * "treatment", "control", "arms": [...], "outcome"}; from_json validates
 * every field (RFM_EFORMAT naming it). */
rfm_status campaign_encoding_to_json(const campaign_encoding *e, json_t **out, char *err,
                                     size_t errlen);
rfm_status campaign_encoding_from_json(const json_t *j, campaign_encoding **out, char *err,
                                       size_t errlen);
void campaign_encoding_free(campaign_encoding *e);

#endif
