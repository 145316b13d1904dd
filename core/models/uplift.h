/* uplift.h - uplift (heterogeneous treatment effect) models for campaign targeting.
 *
 * Purpose: from a randomised campaign log (features X, arm per customer with 0 =
 * control and 1..K = treatments, outcome y binary or continuous), estimate per
 * customer the lift of each arm over control, and evaluate rankings by it.
 *
 * Learners (both hold a control outcome forest mu_0, used for outcome_control):
 *   T-learner (fallback): one regression forest per arm and for control,
 *     uplift_k(x) = mu_k(x) - mu_0(x). The outcome forests are ordinary (not
 *     honest) subsampled regression forests: each mu_k is a prediction target
 *     in its own right, and adaptive leaves give it lower error than honest
 *     ones; the price is that noise in the two fits does not cancel, which is
 *     why it is the fallback.
 *   Causal forest (preferred): per arm k, an honest causal forest (forest.h:
 *     grf's gradient criterion, subsampling without replacement, split/estimate
 *     halves, grf's forest-weighted estimate) on the rows of arm k and control,
 *     with w = 1{arm == k}. When centre is set, y is first centred on the
 *     control outcome forest (out-of-bag for control rows, so a row's own
 *     outcome never centres itself), as CausalForestDML residualises outcomes;
 *     the treatment needs no model because in a randomised experiment its
 *     propensity is the known share treated, and the forest's weighted
 *     estimator is invariant to centring w by a constant.
 *
 * Evaluation (uplift_evaluate) follows scikit-uplift (sklift.metrics) exactly;
 * the formulas are in the comment above uplift_evaluate.
 *
 * Units: uplift is in outcome units (probability points for a binary outcome,
 * currency for spend). Workload: 10^4-10^6 training rows, 5-50 features, 1-5
 * arms; scoring one customer walks (K + 1) forests (tens of microseconds).
 * Non-goals: observational data (no propensity model), missing values (the
 * caller encodes or rejects them), confidence intervals.
 */
#ifndef RFM_UPLIFT_H
#define RFM_UPLIFT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "forest.h"
#include "status.h"

#define UPLIFT_MAX_ARMS 64
#define UPLIFT_CURVE_POINTS 101

typedef enum { UPLIFT_T_LEARNER = 0, UPLIFT_CAUSAL_FOREST = 1 } uplift_learner;

typedef struct {
    uplift_learner learner;
    forest_params outcome; /* regression: control forest, and the T-learner's arm forests */
    forest_params effect;  /* causal: the causal forest's per-arm trees */
    int centre;            /* causal forest: centre y on the control outcome forest */
    uint64_t seed;         /* every forest's seed is derived from this one */
    int n_threads;         /* fitting threads (1..64), overrides the forests' own */
    /* rfm-train only (uplift_fit ignores them): */
    int choose_learner; /* 1: evaluate both learners, serve the better mean
                           normalised Qini (learner is then ignored) */
    double holdout;     /* share held out for the evaluation, 0.05..0.9 */
} uplift_params;

typedef struct uplift_model uplift_model;

/* Defaults: forest_default_params for both forests (100 trees each, subsample
 * 0.5, min_leaf 50 outcome / 100 causal, causal trees honest); centre on; 2
 * threads; seed 1; choose_learner 0; holdout 0.3. */
void uplift_default_params(uplift_params *p, uplift_learner learner);

/* Reason the parameters are invalid, or NULL; the reason starts with the
 * field's name. */
const char *uplift_check_params(const uplift_params *p);

/* Fit on X (n x d, row-major, finite), arm (n values in 0..n_arms, 0 =
 * control; every arm and control present) and y (n, finite). n_arms is K >= 1.
 * On success *out owns the model (uplift_free). Failure leaves *out unchanged:
 * RFM_EINVAL (parameters, arm out of range, NaN/Inf), RFM_EDATA (an empty arm
 * or control group), RFM_ENOMEM. Deterministic for p->seed, whatever the
 * thread count. Reentrant. */
rfm_status uplift_fit(const double *X, size_t n, size_t d, const int *arm, int n_arms,
                      const double *y, const uplift_params *p, uplift_model **out, char *err,
                      size_t errlen);

/* Score one customer: uplift[k-1] = effect of arm k over control (n_arms
 * values); *outcome_control (if non-NULL) = the control outcome mu_0(x).
 * RFM_EINVAL naming the feature when an x value is not finite (outputs then
 * unchanged). Thread-safe on a shared model, no allocation. */
rfm_status uplift_predict(const uplift_model *m, const double *x, double *uplift,
                          double *outcome_control, char *err, size_t errlen);

/* The arm to offer one customer: the arm k (1..n_arms) with the largest
 * positive score, or 0 (control) when no arm scores above 0; the first arm
 * wins a tie. Without value (NULL) an arm's score is its uplift[k-1]; with
 * it, the expected net gain uplift[k-1] * *value - cost[k-1] (cost NULL:
 * no costs), written to gain[k-1] when gain is not NULL. Pure. */
int uplift_best_arm(const double *uplift, int n_arms, const double *value, const double *cost,
                    double *gain);
uplift_learner uplift_get_learner(const uplift_model *m);
const char *uplift_learner_name(uplift_learner l); /* "t_learner", "causal_forest" */
int uplift_n_arms(const uplift_model *m);
size_t uplift_n_features(const uplift_model *m);

/* {"format": "rfm-uplift", "version": 1, "learner", "n_features", "n_arms",
 * "centre", "control": forest, "arms": [forest per arm]} (forest.h layout).
 * The caller dumps with jsonout_dumps so doubles round-trip. */
rfm_status uplift_to_json(const uplift_model *m, json_t **out, char *err, size_t errlen);
/* Validates every field; RFM_EFORMAT naming it (and how to regenerate) on a
 * defect or a different format/version. */
rfm_status uplift_from_json(const json_t *j, uplift_model **out, char *err, size_t errlen);
void uplift_free(uplift_model *m);

/* Seeded held-out split, stratified by arm: within each arm, round(test_frac *
 * size) rows chosen uniformly get is_test[i] = 1, the rest 0. arm values must
 * be in 0..UPLIFT_MAX_ARMS; test_frac in [0, 1]. */
rfm_status uplift_holdout(const int *arm, size_t n, double test_frac, uint64_t seed,
                          uint8_t *is_test, char *err, size_t errlen);

/* Ranking quality of one arm k against control on held-out data.
 *
 * Rows with arm == k are treated (t = 1), arm == 0 control (t = 0), others are
 * ignored. Sort the kept rows by score descending; at the end of each group of
 * tied scores (sklift's "threshold indices") with N rows so far, of which N_T
 * treated and N_C control, and outcome sums Y_T, Y_C:
 *   Qini curve    Q(N) = Y_T - Y_C * N_T / N_C             (N_T/N_C := 0 if N_C = 0)
 *   uplift curve  U(N) = (Y_T / N_T - Y_C / N_C) * N       (each ratio := 0 if its
 *                                                           denominator is 0)
 * both starting with the point (0, 0). Areas are trapezoids over these points
 * with x in customers (sklearn.metrics.auc), so they scale as n^2 times
 * outcome units. The random line joins (0, 0) to the curve's last point
 * (n, Q(n)) (resp. (n, U(n))): the expectation of a random ordering, computed
 * exactly rather than by sampling permutations (as causalml's "Random" column
 * does). Its area is n * Q(n) / 2.
 * The perfect curve is the curve of an oracle score (sklift's perfect_*_curve):
 *   Qini (negative_effect=True): score = y*t - y*(1-t)
 *   uplift, binary y: score = 2*(y == t) + (CR > TN ? y : t), where CR counts
 *     control responders and TN treated non-responders;
 *   uplift, non-binary y (sklift leaves this undefined): the Qini oracle.
 * Then
 *   qini_coef = area(Q) - random(Q)           (Radcliffe's Qini coefficient)
 *   qini_norm = qini_coef / (area(Q*) - random(Q))   = sklift qini_auc_score
 *   auuc      = area(U) - random(U)
 *   auuc_norm = auuc / (area(U*) - random(U))         = sklift uplift_auc_score
 * (norms are 0 when the perfect curve has no area above the random line).
 * The raw areas area(Q), area(U) equal sklift's older auqc / auuc.
 * causalml's qini_score/auuc_score instead scale y by the last point, x to
 * [0, 1], average over rows without tie grouping and subtract a sampled random
 * curve; they are not comparable to these numbers.
 * Curve points: frac[j] = j/100 of the kept rows, qini[j] and uplift[j]
 * interpolated linearly on the curves above (so the random line at frac[j] is
 * frac[j] * the last point). */
typedef struct {
    size_t n, n_treated, n_control;
    double qini_area, qini_random, qini_perfect, qini_coef, qini_norm;
    double uplift_area, uplift_random, uplift_perfect, auuc, auuc_norm;
    int n_points;
    double frac[UPLIFT_CURVE_POINTS], qini[UPLIFT_CURVE_POINTS], uplift[UPLIFT_CURVE_POINTS];
} uplift_eval;

/* Fill *out for arm k (>= 1) from y, arm and score (n each, finite).
 * RFM_EDATA if arm k or control has no row; RFM_EINVAL on bad input;
 * RFM_ENOMEM. Reentrant. */
rfm_status uplift_evaluate(const double *y, const int *arm, const double *score, size_t n, int k,
                           uplift_eval *out, char *err, size_t errlen);

/* Held-out evaluation of one learner: fit it (p with p->learner replaced by
 * learner) on the rows with is_test[i] == 0, score the rows with
 * is_test[i] == 1, and evaluate each arm k = 1..n_arms against control on
 * them (uplift_evaluate) into ev[k-1]; *mean_qini_norm is the mean of the
 * arms' qini_norm. X, arm, y as uplift_fit's, n rows each. Failures are
 * uplift_fit's and uplift_evaluate's (an arm or control with no training
 * or no held-out row), RFM_ENOMEM; ev and *mean_qini_norm then
 * unspecified. Reentrant. */
rfm_status uplift_holdout_eval(const double *X, size_t n, size_t d, const int *arm, int n_arms,
                               const double *y, const uint8_t *is_test, const uplift_params *p,
                               uplift_learner learner, uplift_eval *ev, double *mean_qini_norm,
                               char *err, size_t errlen);

/* The learner to serve: p->learner, or with p->choose_learner the one with
 * the larger mean normalised Qini on held-out data (mean_qini_norm[l] for
 * learner l), the causal forest on a tie. Pure. */
uplift_learner uplift_choose_learner(const uplift_params *p, const double mean_qini_norm[2]);

#endif
