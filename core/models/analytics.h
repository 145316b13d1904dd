/* analytics.h - the population figures of the analyst pages (/ui/):
 * what the customers of a training run add up to, computed once by
 * rfm-train into models/analytics.json and served from memory by
 * GET /analytics/overview, /analytics/rfm-matrix and /analytics/cltv-churn.
 *
 * Pure functions of the training data and the fitted models: the
 * transactions (monthly revenue and active customers, cohort retention),
 * the training customers' rows (customers.h) and the segments, cltv and
 * churn models, each of which may be missing (its figures are then left
 * out, never made up). Not here: anything that changes while serving (the
 * live state), and the churn curves, Qini, contributions and embedding
 * map, which other modules own.
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
 *                   holdout {days, cut, groups [...], customers, actual, predicted}}}
 */
#ifndef RFM_ANALYTICS_H
#define RFM_ANALYTICS_H

#include <jansson.h>
#include <stddef.h>

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

/* Check a loaded analytics.json: its format version and the members the
 * server serves. RFM_EFORMAT naming what is wrong and how to regenerate. */
rfm_status analytics_check(const json_t *j, char *err, size_t errlen);

#endif
