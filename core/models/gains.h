/* gains.h - the uplift model's expected net gain per customer, for
 * targeting lists ranked by uplift (rfm-score --by uplift_gain, GET
 * /exports/customers.csv?by=uplift_gain).
 *
 * The uplift model scores campaign features (uplift.features: recency,
 * history, zip_code, ... of the campaign log), which the transaction
 * customers' table does not hold. So a customer's gain comes from a row of
 * a campaign file that names the customer in an id column
 * (uplift.id_column): the row's features, encoded as in training, give
 * each arm's uplift u_k, and the gain is the best arm's expected net gain,
 * max_k (u_k x value - cost) with the configured uplift.value and
 * uplift.cost (negative when contacting loses money). A customer without
 * such a row has no gain: gains_of answers NaN and the ranking leaves the
 * customer out. The first row of an id counts; later ones are counted as
 * duplicates. A row whose features the encoding refuses (a missing or
 * non-numeric number, an unknown category) is counted and skipped.
 *
 * Memory: one id and one double a matched row. Read-only after
 * gains_load: any number of threads may call gains_of.
 */
#ifndef RFM_GAINS_H
#define RFM_GAINS_H

#include <stddef.h>

#include "campaign.h"
#include "status.h"
#include "uplift.h"

typedef struct gains gains;

typedef struct {
    size_t rows;       /* data rows read */
    size_t customers;  /* distinct ids with a gain */
    size_t duplicates; /* rows of an id seen before */
    size_t refused;    /* rows without an id or whose features the encoding refused */
} gains_counts;

/* Read path (CSV or CSV.gz with a header naming id_column and every
 * feature of enc) and score each row with m. RFM_EINVAL naming a column
 * missing from the header; RFM_EIO, RFM_EPARSE from the reader;
 * RFM_ENOMEM. *counts (may be NULL) gets what was read. */
rfm_status gains_load(const char *path, const char *id_column, const uplift_model *m,
                      const campaign_encoding *enc, double value, double cost, gains **out,
                      gains_counts *counts, char *err, size_t errlen);
void gains_free(gains *g);

/* The gain of customer id, or NaN. gains_lookup is the same with g as a
 * void * (bulk_input's gain_of). */
double gains_of(const gains *g, const char *id);
double gains_lookup(void *g, const char *id);

#endif
