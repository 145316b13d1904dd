/* churn.h - churn probability by L2-regularised logistic regression or by
 * gradient-boosted trees (boost.h), with exact per-feature explanations and
 * purchase counterfactuals.
 *
 * Two learners behind one model type. The logistic model is described
 * below. The boosted model (churn_fit_boosted) is boost.h's trees on the
 * richer features of churn_features_asof; its explanation is exact TreeSHAP
 * in log-odds (base_value + sum of contributions = logit), and it takes
 * missing values (NaN) where the logistic model refuses them. Every scoring
 * function below works on both; churn_evaluate fits both on one time-split
 * holdout and churn_choose picks the one to serve.
 *
 * Purpose: score "will this customer buy nothing in the next period?" from d
 * raw non-negative per-customer features (the trainer uses d = 3: recency in
 * days since the last purchase, frequency as a purchase count, monetary as
 * total spend in the data's currency), explain each score, and say how many
 * purchases would bring a risky customer back under a threshold.
 *
 * Model. Each raw feature x_j >= 0 is transformed and standardised with the
 * training mean and population standard deviation (ddof = 0, as
 * sklearn.preprocessing.StandardScaler):
 *     z_j = log1p(x_j),   s_j = (z_j - mu_j) / sd_j,
 *     eta = b + sum_j w_j s_j,   P(churn) = sigmoid(eta).
 * A feature constant in training gets sd_j = 1 (as StandardScaler does).
 *
 * Objective minimised by churn_fit, over the intercept b and weights w:
 *     F(b, w) = - sum_i [ y_i log p_i + (1 - y_i) log(1 - p_i) ] + lambda/2 ||w||^2
 * The loss is a SUM over customers and the intercept is not penalised, so it
 * is scikit-learn's LogisticRegression(penalty="l2", C=1/lambda) on the
 * standardised features (lbfgs/newton-cg/newton-cholesky solvers, which do not
 * penalise the intercept; liblinear does, and differs). lambda = 0 is the
 * plain maximum-likelihood fit (penalty=None), which does not exist when the
 * classes are separable: churn_fit then fails rather than return weights
 * drifting to infinity.
 *
 * Fit: Newton's method (IRLS) from w = 0, b = logit(mean y), solving
 * H step = g with a Cholesky factorisation of the (d+1)x(d+1) Hessian (GSL),
 * halving the step while it does not decrease F. Converged when
 * max_j |step_j| <= tol (parameters on the standardised scale). Cost per
 * iteration O(n d^2); typically 5-10 iterations.
 *
 * Workload: fit once per training run on up to a few million customers;
 * score, explain and search counterfactuals per HTTP request. The scoring
 * functions only read the model: any number of threads may call them on
 * one model at once; each call costs O(d) (counterfactual O(d n_max)) and
 * well under a microsecond for d = 3.
 *
 * Non-goals: other transforms per feature, interactions, sample weights,
 * class weights, L1 penalties, standard errors.
 */
#ifndef RFM_CHURN_H
#define RFM_CHURN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "boost.h"
#include "customers.h"
#include "metrics.h"
#include "status.h"
#include "txn.h"

#define CHURN_FORMAT "rfm-churn"
#define CHURN_VERSION 2 /* 2: "learner" and the boosted model; 1 (logistic only) still loads */
#define CHURN_MAX_FEATURES 64
#define CHURN_MAX_NAME 63 /* bytes in a feature name, excluding the NUL */

/* |eta| is clamped to this before the sigmoid so that the returned
 * probability is always strictly inside (0, 1) in double precision
 * (sigmoid(35) = 1 - 6.3e-16 < 1). Only scores beyond odds of e^35 are
 * affected; churn_explain reports the unclamped eta. */
#define CHURN_ETA_CLAMP 35.0

typedef struct churn_model churn_model; /* opaque; see churn_info */

/* The churn section of the config: the fit, the risk levels, and how
 * rfm-train labels, splits and serves (churn_fit reads the first five). */
typedef struct {
    double lambda;           /* L2 penalty on w (standardised scale), >= 0; 1 = sklearn C=1 */
    int max_iter;            /* Newton iteration cap, 1..10000 */
    double tol;              /* converged when max |Newton step| <= tol, in (0, 1) */
    double threshold_medium; /* risk is "medium" from this probability up */
    double threshold_high;   /* risk is "high" from this probability up */
    int cut_days;            /* label: no purchase in the last cut_days days, 7..3650 */
    double test_share;       /* customers held out for the evaluation, 0.05..0.9 */
    uint64_t seed;           /* of the held-out split */
    double counterfactual_threshold; /* counterfactuals for p above it, in (0, 1) */
    int max_purchases;               /* counterfactual search bound, 1..1000 */
    boost_params boost;              /* the boosted learner (boost.h's defaults but depth 3) */
} churn_params;

typedef enum { CHURN_LOGISTIC = 0, CHURN_BOOSTED = 1 } churn_learner;

/* "logistic" or "boosted". */
const char *churn_learner_name(churn_learner l);

/* Details of the fit, saved with the model. */
typedef struct {
    int iterations;        /* Newton steps taken */
    int converged;         /* 1: stopping rule met (a fitted model always has 1) */
    double log_likelihood; /* sum_i log P(y_i) at the solution (nats, <= 0) */
    double objective;      /* F(b, w) above at the solution */
    double grad_max;       /* max |dF/dtheta| at the solution */
    double last_step;      /* max |step| of the last Newton step */
    size_t n;              /* training customers */
    size_t n_positive;     /* of which churned (y = 1) */
} churn_fit_info;

/* Read-only view of a model; pointers stay valid until churn_free. */
typedef struct {
    churn_learner learner;
    size_t d;
    const char *const *names; /* d feature names */
    /* The logistic model's parameters (zeros for a boosted model): */
    const double *mean;    /* d: training mean of log1p(x_j) */
    const double *sd;      /* d: training sd of log1p(x_j), > 0 */
    const double *weights; /* d: w_j, on the standardised scale */
    double intercept;      /* b */
    double lambda;
    double threshold_medium, threshold_high;
    churn_fit_info fit;       /* logistic only; a boosted model has n and n_positive */
    const boost_model *boost; /* the boosted model's trees, NULL for logistic */
} churn_info;

typedef enum { CHURN_RISK_LOW = 0, CHURN_RISK_MEDIUM = 1, CHURN_RISK_HIGH = 2 } churn_risk;

typedef enum {
    CHURN_CF_NOT_NEEDED = 0, /* probability already below the threshold */
    CHURN_CF_PURCHASES = 1,  /* n_purchases purchases now bring it below */
    CHURN_CF_NONE = 2,       /* no n in 1..n_max does */
} churn_cf_kind;

/* Result of churn_counterfactual; x_after has room for CHURN_MAX_FEATURES. */
typedef struct {
    churn_cf_kind kind;
    int n_purchases; /* PURCHASES: the smallest n; otherwise 0 */
    double probability_before;
    double probability_after;           /* PURCHASES: probability after n purchases;
                                           NONE: the lowest probability over n = 1..n_max;
                                           NOT_NEEDED, or NONE with no n in bounds:
                                           probability_before */
    double order_value;                 /* value assumed per added purchase */
    double x_after[CHURN_MAX_FEATURES]; /* raw features after the change (or unchanged) */
} churn_counterfactual_result;

/* lambda 1, max_iter 100, tol 1e-10, thresholds 0.3 and 0.6; cut_days 90,
 * test_share 0.2, seed 42, counterfactual_threshold 0.6, max_purchases 10;
 * boost: boost_default_params with max_depth 3. */
void churn_default_params(churn_params *par);

/* NULL if par is usable, else a static string that starts with the bad
 * field's name. */
const char *churn_check_params(const churn_params *par);

/* Fit on n customers: x is row-major n x d raw features (x[i*d + j] finite
 * and >= 0), y[i] in {0, 1}, names[d] distinct non-empty feature names of at
 * most CHURN_MAX_NAME bytes (copied). Needs both classes present and n > d+1.
 * On success *out is a new model the caller frees with churn_free.
 * Failures (*out untouched): RFM_EINVAL bad argument (message names the row
 * and feature), RFM_EDATA one class absent or a constant feature with
 * lambda = 0, RFM_ENOCONVERGE the classes are perfectly separated with
 * lambda = 0 (the MLE does not exist) or max_iter reached,
 * RFM_ELIBRARY a GSL failure, RFM_ENOMEM. */
rfm_status churn_fit(const double *x, const int *y, size_t n, size_t d, const char *const *names,
                     const churn_params *par, churn_model **out, char *err, size_t errlen);

/* The boosted learner: boost_fit with par->boost on n rows of d features
 * (x row-major, each finite or NaN = missing), names as churn_fit, risk
 * thresholds from par. Failures as boost_fit (RFM_EINVAL, RFM_EDATA,
 * RFM_ELIBRARY, RFM_ENOMEM), *out untouched. */
rfm_status churn_fit_boosted(const double *x, const int *y, size_t n, size_t d,
                             const char *const *names, const churn_params *par, churn_model **out,
                             char *err, size_t errlen);

/* The model's features for a customer row (customers.h): recency,
 * frequency, monetary for the logistic model, churn_row_features for the
 * boosted one. x has room for CHURN_MAX_FEATURES; returns d. */
size_t churn_model_row(const churn_model *m, const customer_row *c, double *x);

/* Free a model (NULL is fine). */
void churn_free(churn_model *m);

/* Fill *info with a read-only view of m. Thread-safe. */
void churn_info_get(const churn_model *m, churn_info *info);

/* Replace the risk thresholds (0 < medium <= high < 1), e.g. from config
 * before saving. Not thread-safe: call before the model is shared. */
rfm_status churn_set_thresholds(churn_model *m, double threshold_medium, double threshold_high,
                                char *err, size_t errlen);

/* Index of the feature called name, or -1. */
int churn_feature_index(const churn_model *m, const char *name);

/* Probability of churn for one customer's d raw features (model order),
 * strictly inside (0, 1) and never NaN (eta clamped to +-CHURN_ETA_CLAMP).
 * RFM_EINVAL names the feature if a value is not finite or is < 0 (logistic)
 * or is infinite (boosted, where NaN means missing); *prob is
 * written only on success. Thread-safe on a shared read-only model. */
rfm_status churn_predict(const churn_model *m, const double *x, double *prob, char *err,
                         size_t errlen);

/* churn_predict for n customers (row-major n x d raw features) into prob[n].
 * A bad row fails with its index in the message; prob[] rows before it are
 * written, the rest untouched. Thread-safe. */
rfm_status churn_predict_many(const churn_model *m, const double *x, size_t n, double *prob,
                              char *err, size_t errlen);

/* Exact SHAP values in log-odds for the linear model with independent
 * features (interventional, background = the training customers):
 *     contrib[j] = w_j (s_j - mean_train(s_j)) = w_j (log1p(x_j) - mu_j) / sd_j,
 *     *base_value = b + sum_j w_j mean_train(s_j) = b,
 * since standardising makes mean_train(s_j) = 0. Hence
 *     *base_value + sum_j contrib[j] = eta = logit(*prob)
 * (to rounding, whenever |eta| <= CHURN_ETA_CLAMP; beyond it *prob is the
 * clamped value and *logit still holds the unclamped eta). contrib has room
 * for d values; logit and prob may be NULL. Same failures and thread safety
 * as churn_predict; outputs are written only on success. */
rfm_status churn_explain(const churn_model *m, const double *x, double *base_value, double *contrib,
                         double *logit, double *prob, char *err, size_t errlen);

/* Global importance: importance[j] = mean over the n customers in x (row-major
 * n x d raw features, normally the training set) of |contrib[j]|. Fails as
 * churn_predict on a bad row (message names it); importance[] is written only
 * on success. Thread-safe. */
rfm_status churn_global_importance(const churn_model *m, const double *x, size_t n,
                                   double *importance, char *err, size_t errlen);

/* Risk level of probability p: LOW if p < threshold_medium, MEDIUM if
 * threshold_medium <= p < threshold_high, HIGH if p >= threshold_high. */
churn_risk churn_risk_level(const churn_model *m, double p);

/* "low", "medium" or "high". */
const char *churn_risk_name(churn_risk r);

/* Counterfactual for one customer x (d raw features) against threshold t in
 * (0, 1). Needs features named "recency", "frequency" and "monetary"
 * (RFM_EINVAL otherwise); any other features are held fixed.
 *
 * Definition. Let r, f, m be the customer's recency (days), frequency
 * (purchases) and monetary (total spend), and its average order value
 * v = m / max(f, 1) (a customer without purchases on record counts as one
 * order of value m). "n purchases now" is the customer
 *     x(n) = (recency 0, frequency f + n, monetary m + n v),
 * n = 1 being "a purchase now". With p(.) the model's probability:
 *   - if p(x) < t: kind NOT_NEEDED;
 *   - else if some n in 1..n_max has p(x(n)) < t: kind PURCHASES with the
 *     smallest such n, x_after = x(n), probability_after = p(x(n));
 *   - else: kind NONE, probability_after = min over n of p(x(n)).
 * Changes whose frequency or monetary would overflow a double are out of
 * bounds (the scan stops there). The scan is exhaustive, so the smallest n is found even when
 * p(x(n)) is not monotone in n. n_max in 1..1000. Thread-safe; *res written only on success. */
rfm_status churn_counterfactual(const churn_model *m, const double *x, double t, int n_max,
                                churn_counterfactual_result *res, char *err, size_t errlen);
/* The same for a customer whose probability p0 is known (churn_predict's or
 * churn_explain's for x, the same bits; x checked by that call): the model
 * is not walked for x again. */
rfm_status churn_counterfactual_at(const churn_model *m, const double *x, double p0, double t,
                                   int n_max, churn_counterfactual_result *res, char *err,
                                   size_t errlen);

/* The penalised objective F, its gradient and Hessian at theta = (b, w_1..w_d)
 * on standardised rows s (row-major n x d) and labels y: the quantities the
 * Newton fit uses, exposed so tests can check them against finite
 * differences. grad (d+1) and hess ((d+1)^2, row-major) may be NULL.
 * Returns F. No validation; thread-safe. */
double churn_objective(const double *s, const int *y, size_t n, size_t d, double lambda,
                       const double *theta, double *grad, double *hess);

/* Serialise to a new JSON object (caller decrefs *out). Write it with
 * jsonout_dumps to read back exactly. RFM_ENOMEM on failure. */
rfm_status churn_to_json(const churn_model *m, json_t **out, char *err, size_t errlen);

/* Load a model from JSON written by churn_to_json, validating every field: a
 * missing, ill-typed or out-of-range field is RFM_EFORMAT naming it; a wrong
 * "format"/"version" says to regenerate with rfm-train. *out is a new model
 * on success, untouched on failure. */
rfm_status churn_from_json(const json_t *j, churn_model **out, char *err, size_t errlen);

/* ---- labels from a time split ------------------------------------------- */

/* Customers who bought before the cut (snapshot - cut_days), labelled 1
 * (churned) when they bought nothing on or after it, with features as of
 * the cut, and a seeded held-out split of them. x rows are recency,
 * frequency, monetary (the trainer's three features); bg rows the BG/NBD
 * summary repeat purchases, t_x, T. Rows of x, bg and y are in customer
 * order (txn's); order is a seeded permutation of 0..n-1 (rfm_rng_shuffle)
 * whose first n_test = round(test_share n) rows are held out, the rest
 * (n_train) used for fitting. */
typedef struct {
    int32_t cut;       /* day number of the cut */
    size_t n, churned; /* labelled customers; of them churned */
    double *x, *bg;    /* n x 3 each */
    double *xr;        /* n x CHURN_RICH_FEATURES (churn_features_asof at the cut) */
    int *y;            /* n labels */
    size_t *order;     /* n row indices: held out first */
    size_t n_test, n_train;
} churn_split;

/* Fill *out (every pointer new; churn_split_free). RFM_EDATA when the cut
 * leaves no purchase before it, RFM_EINVAL when test_share is not in
 * [0, 1), RFM_ENOMEM; *out is zeroed on failure. */
rfm_status churn_time_split(const txn_data *d, int cut_days, double test_share, uint64_t seed,
                            churn_split *out, char *err, size_t errlen);
void churn_split_free(churn_split *s);

/* ---- the boosted learner's features -------------------------------------- */

/* Features of a customer's purchase days d_1 < ... < d_k strictly before the
 * as-of day (spends s_1..s_k, the day's purchases less nothing: returns are
 * not netted per day), in this order:
 *   recency, frequency, monetary, tenure, aov   as txn_features (txn.h)
 *   ipt_mean     mean days between purchase days, (d_k - d_1) / (k - 1)
 *   ipt_trend    last gap minus the mean of the earlier ones,
 *                (d_k - d_{k-1}) - (d_{k-1} - d_1) / (k - 2): > 0 slowing down
 *   spend_trend  s_k - mean(s_1..s_{k-1}): the last purchase day's spend
 *                against the customer's earlier days (currency)
 * A feature a history cannot have is NaN (missing, which the trees route by
 * their default direction): ipt_mean with k < 2, ipt_trend with k < 3,
 * spend_trend with k < 2. Product breadth is not among them: txn keeps a
 * customer's products over the whole data, not by day, so it would leak
 * purchases after a cut into the features. */
#define CHURN_RICH_FEATURES 8
extern const char *const churn_rich_names[CHURN_RICH_FEATURES];

/* x (txn_ncustomers(d) x CHURN_RICH_FEATURES, customer order) as of asof;
 * a customer without a purchase before it gets a row of NaN. Pure. */
void churn_features_asof(const txn_data *d, int32_t asof, double *x);

/* The same features from a row of the customer table (customers.h) or a
 * request: tenure = days_since_first + 1, aov = monetary / frequency,
 * ipt_mean = days_first_to_last / repeat_purchases, the trends from the
 * row's own columns; whatever the row lacks (NaN, or no repeat purchase)
 * is NaN. x has room for CHURN_RICH_FEATURES. */
void churn_row_features(const customer_row *c, double *x);

/* ---- held-out evaluation ------------------------------------------------ */

#define CHURN_SPLIT_FEATURES 3 /* recency, frequency, monetary: churn_split's x rows */
#define CHURN_CALIB_BINS 10    /* deciles of predicted probability */

typedef struct {
    double auc, logloss, brier; /* metrics_auc, metrics_logloss, metrics_brier */
} churn_scores;

typedef struct {
    churn_scores logistic; /* churn_fit on the training rows, scored on the held-out */
    churn_scores boosted;  /* churn_fit_boosted on the same rows' rich features (xr) */
    metrics_calib_bin bins_boosted[CHURN_CALIB_BINS]; /* the boosted model's calibration */
    size_t nbins_boosted;
    double importance_boosted[CHURN_RICH_FEATURES]; /* mean |TreeSHAP| on the training rows */
    double fit_s_logistic, fit_s_boosted;           /* wall-clock seconds of each fit */
    churn_scores bgnbd; /* 1 - P(alive) from BG/NBD fitted on the training rows'
                           (x, t_x, T), clamped to [0, 1]; NaN where BG/NBD could
                           not be fitted or scored (it is a yardstick, not a model) */
    metrics_calib_bin bins[CHURN_CALIB_BINS]; /* the logistic model's calibration */
    size_t nbins;
    double importance[CHURN_SPLIT_FEATURES]; /* churn_global_importance on the training rows */
    /* Optional, the caller's arrays of s->n_test (NULL: not wanted), set
     * before the call: each learner's held-out probabilities and the
     * labels, row k being the held-out row s->order[k], for curves that
     * need every row (metrics_evaluation_json). */
    double *p_logistic, *p_boosted;
    int *y_test;
} churn_eval;

/* Evaluate both learners on s: fit (churn_fit with par, feature names
 * names[3], on x; churn_fit_boosted with par->boost on xr, churn_rich_names)
 * on the rows s->order[n_test..n), score the rows
 * s->order[0..n_test) beside BG/NBD's 1 - P(alive), calibration in
 * CHURN_CALIB_BINS bins, global importance on the training rows. Needs
 * n_test >= 1 and both classes among the training rows. Failures of the
 * logistic fit or its scores are returned (RFM_EDATA, RFM_ENOCONVERGE, ...,
 * RFM_ENOMEM), *out then unspecified. Reentrant. */
rfm_status churn_evaluate(const churn_split *s, const char *const *names, const churn_params *par,
                          churn_eval *out, char *err, size_t errlen);

/* The learner to serve: the boosted one when its held-out AUC is strictly
 * higher than the logistic one's (a tie, or a NaN AUC, keeps the simpler
 * logistic model). Log loss and calibration are reported, not used. */
churn_learner churn_choose(const churn_eval *ev);

#endif
