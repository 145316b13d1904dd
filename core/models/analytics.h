/* analytics.h - the population figures of the analyst pages (/ui/):
 * what the customers of a training run add up to, computed once by
 * rfm-train into models/analytics.json and served from memory by
 * GET /analytics/overview, /analytics/rfm-matrix, /analytics/cltv-churn,
 * /analytics/shap-sample, /analytics/qini and /analytics/embedding-map.
 *
 * Pure functions of the training data and the fitted models: the
 * transactions (monthly revenue and active customers, cohort retention),
 * the training customers' rows (customers.h) and the segments, cltv and
 * churn models, each of which may be missing (its figures are then left
 * out, never made up); and, by the analytics_add_* functions, figures
 * gathered from the other models' outputs (churn.json's evaluation, the
 * churn model's contributions, the uplift step's held-out curves, the
 * embedding vectors). Not here: anything that changes while serving (the
 * live state), or computing those models' curves (metrics.h, uplift.h).
 *
 * Units: days, money in the data's currency, shares in [0, 1]. Months are
 * calendar months of the data's days ("2011-03"). Workload: one pass over
 * the customer-days and one scoring of each customer; a few hundred ms
 * for a million customers.
 *
 * analytics.json (format_version 1):
 *   {"format_version": 1, "currency", "snapshot_date",
 *    "overview": {customers, active_days, active_customers, active_share,
 *                 revenue, cltv {horizon_days, total, lower, upper},
 *                 churn_risk {low, medium, high}, segments [...], clusters [...],
 *                 monthly [{month, revenue, customers, new_customers}],
 *                 cohorts [{cohort, customers, retention [...]}]},
 *    "rfm_matrix": {segments [...], clusters [...], counts [[...]],
 *                   recency_scores, frequency_scores, grid [[...]]},
 *    "cltv_churn": {by_segment [...], churn_histogram {edges, counts},
 *                   p_alive {...}, expected_purchases {...},
 *                   holdout {days, cut, groups [...], customers, actual, predicted},
 *                   evaluation {served, logistic {...}, boosted {...}}},
 * and, when their models were trained (analytics_add_*):
 *    "shap_sample": {learner, features, base_value, importance, customers,
 *                    sample {ids, probability, values, contributions}},
 *    "qini": {learner, outcome, customers, value, cost, arms [...], comparison [...]},
 *    "embedding_map": {dim, customers, explained_variance, segments,
 *                      points {ids, x, y, segment}}
 */
#ifndef RFM_ANALYTICS_H
#define RFM_ANALYTICS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "customers.h"
#include "score.h"
#include "status.h"
#include "txn.h"

#define ANALYTICS_FORMAT 1

typedef struct {
    int active_days;      /* active: bought within this many days before the snapshot */
    int max_months;       /* the most recent months kept in the series and cohorts */
    int grid_steps;       /* steps of the days-since-last-purchase axis of the heatmaps */
    int max_frequency;    /* the heatmaps' frequency axis ends at most here */
    const char *currency; /* ISO 4217 code of the money, or NULL */
} analytics_options;

/* active_days 90, max_months 120, grid_steps 20, max_frequency 40, no currency. */
void analytics_default_options(analytics_options *o);
/* NULL when o is usable, else a static reason naming the field. */
const char *analytics_check_options(const analytics_options *o);

/* Quantile q in [0, 1] of v[0..n-1] sorted ascending, interpolated
 * between neighbours (the "type 7" of R and numpy's default); NaN when
 * n is 0. */
double analytics_quantile(const double *sorted, size_t n, double q);

/* The figures of d's customers (rows[0..n-1], the training customers as
 * of d's snapshot: those rfm-train writes to customers.csv) scored with m
 * (each model may be NULL; m's horizon_days and discount_rate are the
 * CLTV's). *out is a new object in the format above. RFM_EINVAL on bad
 * options, RFM_EDATA when n is 0, RFM_ENOMEM. Thread-safe. */
rfm_status analytics_compute(const txn_data *d, const customer_row *rows, size_t n,
                             const score_models *m, const analytics_options *o, json_t **out,
                             char *err, size_t errlen);

/* Add cltv_churn.holdout to an analytics object from cltv's calibration/
 * holdout check (cltv_holdout_check): per calibration repeat purchases
 * (0..6 and "7+"), the customers and their mean actual and predicted
 * repeat purchase days over the holdout, and the totals. Nothing is added
 * when h->ok is 0. RFM_ENOMEM leaves j as it was. */
rfm_status analytics_add_holdout(json_t *j, const cltv_holdout *h, char *err, size_t errlen);

/* Add cltv_churn.evaluation from a churn model file (churn.json, as
 * churn_to_json and rfm-train write it): the served learner and, of each
 * learner evaluated on the held-out customers, its AUC, log loss, Brier
 * score, ROC points, calibration and gains deciles (metrics.h). Nothing is
 * added when churn_json has no evaluation. RFM_ENOMEM leaves j unchanged. */
rfm_status analytics_add_churn_curves(json_t *j, const json_t *churn_json, char *err,
                                      size_t errlen);

/* Add shap_sample: the exact contributions (churn_explain, log-odds) of
 * model m for a seeded sample of at most `sample` of the n customers
 * (ids[i], rows[i]) it can score, in row order: their ids, probabilities,
 * raw feature values (null where missing) and contributions; the base
 * value; and the global importance, mean |contribution| per feature over
 * all the customers it can score. RFM_EDATA when it can score none,
 * RFM_ENOMEM; j unchanged on failure. */
rfm_status analytics_add_shap(json_t *j, const churn_model *m, const char *const *ids,
                              const customer_row *rows, size_t n, size_t sample, uint64_t seed,
                              char *err, size_t errlen);

/* Add qini from the uplift step's manifest metrics (metrics.holdout
 * .<learner>.<arm>.curve_frac_qini_uplift, the served learner's used) and
 * the model file's holdout.comparison: per arm the Qini curve points
 * [share, qini, random] (random: the line to the last point), the
 * cumulative uplift rate [share, U(share n) / (share n)] and the uplift
 * per customer of each decile of the ranking, (U(d/10) - U((d-1)/10)) /
 * (n / 10) with U interpolated on the points (n: the arm's held-out
 * customers); the learners compared (by mean normalised Qini, best
 * first); value (of one unit of outcome) and cost (per contact) as given.
 * RFM_EFORMAT naming what is missing from the metrics; RFM_ENOMEM. */
rfm_status analytics_add_qini(json_t *j, const json_t *uplift_metrics, const json_t *uplift_file,
                              double value, double cost, char *err, size_t errlen);

/* Add embedding_map: the n embedding vectors (row-major n x dim, ids
 * vec_ids) projected on their first two principal axes (pca.h, fitted on
 * all of them), a seeded sample of at most max_points of them in index
 * order, coordinates rounded to 4 decimals; each with its cluster's name
 * (segments model seg, from the customer's row found by id among ids[i],
 * rows[i], i < nrows; -1 when seg is NULL or the id has no row) and the
 * share of the total variance along each axis. RFM_EINVAL from pca_fit
 * (fewer than 2 vectors, a non-finite value), RFM_ENOMEM. */
rfm_status analytics_add_embedding_map(json_t *j, const float *vecs, size_t n, int dim,
                                       const char *const *vec_ids, const char *const *ids,
                                       const customer_row *rows, size_t nrows,
                                       const segments_model *seg, size_t max_points, uint64_t seed,
                                       char *err, size_t errlen);

/* Check a loaded analytics.json: its format version and the members the
 * server serves. RFM_EFORMAT naming what is wrong and how to regenerate. */
rfm_status analytics_check(const json_t *j, char *err, size_t errlen);

#endif
