/* metrics.h - binary-classification metrics for scored probabilities.
 *
 * Purpose: the churn model card reports how well predicted probabilities p_i
 * match 0/1 outcomes y_i on held-out customers, with the same numbers
 * scikit-learn prints (roc_auc_score, log_loss, brier_score_loss,
 * calibration_curve(strategy="quantile")), optionally weighted by w_i >= 0.
 *
 * Inputs for every function: p[n] in [0, 1] (finite), y[n] in {0, 1},
 * w[n] finite and >= 0 or w == NULL for all-ones weights; n > 0 and the total
 * weight must be > 0. A bad value fails with RFM_EINVAL naming the index and
 * value. Results are never NaN or Inf.
 *
 * Workload: held-out sets of up to a few million customers, computed once
 * per training run. AUC and the calibration table sort a copy (O(n log n),
 * O(n) extra memory); log loss and Brier are single passes with no memory.
 *
 * The report's curves (rfm-report, docs/report.md) come from the same
 * inputs: the ROC curve as points, cumulative gains and lift by share
 * targeted, and metrics_evaluation_json, which gathers them for any
 * learner's held-out (scores, labels).
 *
 * Non-goals: multiclass metrics, confidence intervals. Thread safety: every
 * function is reentrant (no shared state).
 */
#ifndef RFM_METRICS_H
#define RFM_METRICS_H

#include <jansson.h>
#include <stddef.h>

#include "status.h"

/* Log loss clips probabilities to [eps, 1 - eps] like scikit-learn's
 * log_loss(eps=1e-15) did before version 1.5, so a confident wrong answer
 * costs at most -log(1e-15) = 34.54 nats instead of Inf. */
#define METRICS_LOGLOSS_EPS 1e-15

/* One bin of a calibration table. */
typedef struct {
    double lo, hi;         /* bin edges in predicted probability: lo < p <= hi
                              (the first bin also holds p == lo) */
    size_t count;          /* rows in the bin */
    double weight;         /* sum of their weights (== count when w is NULL) */
    double mean_predicted; /* weighted mean of p in the bin */
    double observed_rate;  /* weighted mean of y in the bin */
} metrics_calib_bin;

/* Area under the ROC curve: the weighted probability that a random positive
 * is scored above a random negative, ties counting one half,
 *   AUC = sum_{i: y=1} sum_{j: y=0} w_i w_j ([p_i > p_j] + [p_i == p_j]/2)
 *         / (W_pos * W_neg).
 * Equals roc_auc_score(y, p, sample_weight=w). Fails with RFM_EDATA when the
 * positive or the negative weight is zero (AUC undefined), RFM_ENOMEM when the
 * O(n) sort buffer cannot be allocated. *out is written only on success. */
rfm_status metrics_auc(const double *p, const int *y, const double *w, size_t n, double *out,
                       char *err, size_t errlen);

/* Weighted mean negative log-likelihood in nats,
 *   -sum w_i (y_i log q_i + (1 - y_i) log(1 - q_i)) / sum w_i,
 * q_i = clip(p_i, METRICS_LOGLOSS_EPS, 1 - METRICS_LOGLOSS_EPS). */
rfm_status metrics_logloss(const double *p, const int *y, const double *w, size_t n, double *out,
                           char *err, size_t errlen);

/* Weighted mean squared error of the probability, sum w_i (p_i - y_i)^2 / sum w_i. */
rfm_status metrics_brier(const double *p, const int *y, const double *w, size_t n, double *out,
                         char *err, size_t errlen);

/* Calibration table by quantiles of the predicted probability, as
 * sklearn.calibration.calibration_curve(strategy="quantile") builds it:
 * edges e_0..e_nbins are the k/nbins percentiles of p (unweighted, numpy's
 * linear interpolation); row i goes to bin b = number of inner edges
 * e_1..e_{nbins-1} strictly below p_i. Bins left empty (ties among the p
 * make edges coincide) are dropped, as scikit-learn drops them, so *nout <=
 * nbins; nbins = 10 gives the deciles. bins must hold nbins entries (caller
 * owns them); on success *nout non-empty bins are written in increasing
 * order of probability. nbins must be in 1..1000. RFM_ENOMEM if the sort
 * buffer cannot be allocated; nothing is written on failure. */
rfm_status metrics_calibration(const double *p, const int *y, const double *w, size_t n,
                               size_t nbins, metrics_calib_bin *bins, size_t *nout, char *err,
                               size_t errlen);

/* One point of a ROC curve: the false and true positive rates (weighted)
 * when every row scored at or above some threshold is called positive. */
typedef struct {
    double fpr, tpr;
} metrics_roc_point;

/* The ROC curve: (0, 0), then one point per distinct score from the highest
 * down (a group of tied scores is one step, drawn as a straight segment, as
 * sklearn.metrics.roc_curve(drop_intermediate=False) does), ending at
 * (1, 1). Its trapezoid area is metrics_auc. When the curve has more than
 * max_points points it is thinned: the first and last are kept, and a point
 * is kept when fpr + tpr has grown by at least 2 / (max_points - 2) since the
 * last kept one, so at most max_points remain, each on the full curve.
 * pts holds max_points entries (caller owns them; max_points >= 3); *npts
 * are written. Fails as metrics_auc (RFM_EDATA with one class absent,
 * RFM_ENOMEM), RFM_EINVAL for max_points < 3; nothing written on failure. */
rfm_status metrics_roc(const double *p, const int *y, const double *w, size_t n, size_t max_points,
                       metrics_roc_point *pts, size_t *npts, char *err, size_t errlen);

/* Cumulative gains and lift when the rows with the highest scores are
 * targeted first, at shares k / nbins (k = 1..nbins) of the total weight.
 * Tied scores straddling a share count with their average: the curve is
 * linear within a group of ties, the expectation over the orders of the
 * tied rows. */
typedef struct {
    double share; /* k / nbins: the share of the weight targeted */
    double gain;  /* share of the positive weight among the targeted (cumulative gains) */
    double lift;  /* gain / share: how many times the base rate they hold */
    double rate;  /* positive rate within the slice ((k-1)/nbins, k/nbins] alone */
} metrics_gains_bin;

/* Fill bins[0..nbins-1] (caller owns them), nbins in 1..1000 (10 gives
 * deciles). RFM_EDATA when the positive weight is zero; otherwise fails as
 * metrics_calibration; nothing written on failure. */
rfm_status metrics_gains(const double *p, const int *y, const double *w, size_t n, size_t nbins,
                         metrics_gains_bin *bins, char *err, size_t errlen);

#define METRICS_EVAL_ROC_POINTS 201 /* ROC points kept in an evaluation block */
#define METRICS_EVAL_BINS 10        /* calibration and gains by deciles */

/* The held-out evaluation of a binary scorer as one JSON object, for the
 * model files and the report (docs/report.md):
 *   {"customers", "positives", "auc", "log_loss", "brier",
 *    "roc": [[fpr, tpr], ...]            (metrics_roc, METRICS_EVAL_ROC_POINTS),
 *    "calibration": [{"count", "mean_predicted", "observed_rate"}, ...] (deciles),
 *    "gains": [{"share", "gain", "lift", "rate"}, ...]                  (deciles)}
 * from scores p[n] and labels y[n] (unweighted; same checks as above: both
 * classes needed). *out is a new object the caller decrefs; NULL on
 * failure (RFM_EDATA, RFM_EINVAL, RFM_ENOMEM). */
rfm_status metrics_evaluation_json(const double *p, const int *y, size_t n, json_t **out, char *err,
                                   size_t errlen);

#endif
