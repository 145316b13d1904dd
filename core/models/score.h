/* score.h - one customer's scores across the fitted models: the single
 * code path behind rfm-serve's answers (/segment, /predict_cltv,
 * /predict_churn) and every row of rfm-score, so that a bulk export and the
 * API agree to the last digit for the same customer.
 *
 * Input is a customer_row (customers.h): a row of models/customers.csv, or
 * one the server fills from a request body. Which parts are computed is
 * chosen by a mask; a part whose model is absent (NULL) is skipped and
 * reported as not done, never as an error.
 *
 * Not here: counterfactuals, uplift and neighbours (they need more than a
 * customer row), percentiles (they need the whole population: rfm-score).
 * Thread safety: reads the models only; any number of threads may score
 * (each with its own cltv_cache, if any).
 */
#ifndef RFM_SCORE_H
#define RFM_SCORE_H

#include <stddef.h>

#include "churn.h"
#include "cltv.h"
#include "customers.h"
#include "segments.h"
#include "status.h"

/* The models one scores with (each may be NULL) and the lifetime-value
 * horizon (days) and discount rate (per 30 days) they are served with.
 * cltv_cache (may be NULL) keeps lifetime-value terms across customers
 * (cltv.h): the figures are the same with or without it, only faster; it
 * is written by each call, so a score_models with one is for one thread. */
typedef struct {
    const segments_model *segments;
    const cltv_model *cltv;
    const churn_model *churn;
    double horizon_days, discount_rate;
    cltv_cache *cltv_cache;
} score_models;

enum {
    SCORE_SEGMENTS = 1, /* from recency, frequency, monetary */
    SCORE_CLTV = 2,     /* from repeat_purchases, t_x, T, mean_repeat_spend */
    SCORE_CHURN = 4,    /* from recency, frequency, monetary (and the boosted model's
                           other features: churn_model_row; missing ones are NaN) */
    SCORE_ALL = 7,
    SCORE_CLTV_POINT = 8,  /* with SCORE_CLTV: no interval (cltv.lower, upper NaN), 8x cheaper */
    SCORE_CHURN_POINT = 16 /* with SCORE_CHURN: the probability and risk alone (churn_predict,
                              the same bits as churn_explain's), no explanation: churn_base,
                              churn_logit NaN, churn_d 0; a boosted model's SHAP is most of
                              the cost */
};

typedef struct {
    int done; /* the SCORE_* parts computed */
    segments_result seg;
    cltv_prediction cltv;
    double churn_probability, churn_base, churn_logit;
    double churn_contrib[CHURN_MAX_FEATURES]; /* one per feature of the churn model */
    size_t churn_d;                           /* that many */
    churn_risk risk;
} score_result;

/* Score c with the parts of want whose model m has. A part whose inputs
 * the row lacks (NaN recency, frequency or monetary, as in a table
 * trained from a customer summary) is skipped when skip_missing is set;
 * otherwise, like any input the model refuses, it fails with the model's
 * message (RFM_EINVAL, naming the field). out->done tells what was done. */
rfm_status score_customer(const score_models *m, const customer_row *c, int want, int skip_missing,
                          score_result *out, char *err, size_t errlen);
/* The churn probabilities of customers rows[0..n-1] into prob[], as
 * score_customer's SCORE_CHURN | SCORE_CHURN_POINT gives them (the same
 * bits), NaN where it would do no churn (no churn model; with skip_missing,
 * a row without recency, frequency or monetary). The rows go through the
 * model together (churn_predict_many: a boosted model walks its trees for
 * several rows at once, a few times faster than one by one). On a row the
 * model refuses, *bad is its index, err score_customer's message for it and
 * prob[] holds the rows before it. */
rfm_status score_churn_many(const score_models *m, const customer_row *const *rows, size_t n,
                            int skip_missing, double *prob, size_t *bad, char *err, size_t errlen);
/* What score_customer will read for c from memory that misses the caches
 * (its CLTV terms), asked for ahead: a loop calls it a customer early. */
void score_prefetch(const score_models *m, const customer_row *c);

#endif
