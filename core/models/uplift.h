/* uplift.h - uplift (heterogeneous treatment effect) models for campaign targeting.
 *
 * Purpose: from a randomised campaign log (features X, arm per customer with 0 =
 * control and 1..K = treatments, outcome y binary or continuous), estimate per
 * customer the lift of each arm over control, and evaluate rankings by it.
 *
 * Learners (all hold a control outcome forest mu_0, used for outcome_control;
 * the propensity of arm k is the share e_k of arm k among the rows of arm k and
 * control, estimated on the rows a model is fitted on - in a randomised
 * experiment it is known up to that sampling noise, and the share is what the
 * experiment actually assigned):
 *   T-learner: one regression forest per arm and for control,
 *     uplift_k(x) = mu_k(x) - mu_0(x). The outcome forests are ordinary (not
 *     honest) subsampled regression forests: each mu_k is a prediction target
 *     in its own right, and adaptive leaves give it lower error than honest
 *     ones; the price is that noise in the two fits does not cancel.
 *   Causal forest: per arm k, an honest causal forest (forest.h: grf's
 *     gradient criterion, subsampling without replacement, split/estimate
 *     halves, grf's forest-weighted estimate) on the rows of arm k and control,
 *     with w = 1{arm == k}. When centre is set, y is first centred on the
 *     control outcome forest (out-of-bag for control rows, so a row's own
 *     outcome never centres itself), as CausalForestDML residualises outcomes;
 *     the forest's weighted estimator is invariant to centring w by a
 *     constant, so the known propensity needs no model. With tune set, the
 *     leaf size and the features tried per split are chosen on the fitting
 *     rows alone (uplift_fit): an inner stratified split, a small grid, the
 *     best mean normalised Qini on the inner validation part.
 *   X-learner (Kuenzel et al. 2019): mu_0 and mu_k as the T-learner's; imputed
 *     effects D1 = y - mu_0(x) on arm k's rows and D0 = mu_k(x) - y on control
 *     rows (each model predicts rows it never saw), one honest regression
 *     forest per group on them, tau_k(x) = e_k tau0_k(x) + (1 - e_k) tau1_k(x).
 *   DR-learner (Kennedy 2023, AIPW pseudo-outcomes): the rows are cut into
 *     `folds` parts (stratified by arm and outcome); for the rows of part f,
 *     mu_0, mu_k and e_k are fitted on the other parts, and
 *       phi = mu_k - mu_0 + w (y - mu_k) / e_k - (1 - w) (y - mu_0) / (1 - e_k);
 *     tau_k is an honest regression forest of phi on x over arm k and control.
 *   Rule: per arm, the best single-feature split "x[f] <= t" (uplift_rule_search:
 *     every feature and threshold, direction from the data) scoring each side
 *     with its difference in means; the obvious rule a learner must beat, and a
 *     model kind of its own so that it can be served when it wins.
 *
 * Evaluation (uplift_evaluate) follows scikit-uplift (sklift.metrics) exactly;
 * the formulas are in the comment above uplift_evaluate.
 *
 * Units: uplift is in outcome units (probability points for a binary outcome,
 * currency for spend). Workload: 10^4-10^6 training rows, 5-50 features, 1-5
 * arms; scoring one customer walks (K + 1) forests (2K + 1 for the X-learner;
 * tens of microseconds). Non-goals: observational data (no propensity model
 * of x), missing values (the caller encodes or rejects them), confidence
 * intervals of a customer's effect (only of the holdout Qini).
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

typedef enum {
    UPLIFT_T_LEARNER = 0,
    UPLIFT_CAUSAL_FOREST = 1,
    UPLIFT_X_LEARNER = 2,
    UPLIFT_DR_LEARNER = 3,
    UPLIFT_RULE = 4
} uplift_learner;
#define UPLIFT_N_LEARNERS 5

typedef struct {
    uplift_learner learner;
    forest_params outcome; /* regression: control forest, and the T-learner's arm forests */
    forest_params effect;  /* causal: the causal forest's per-arm trees */
    int centre;            /* causal forest: centre y on the control outcome forest */
    uint64_t seed;         /* every forest's seed is derived from this one */
    int n_threads;         /* fitting threads (1..64), overrides the forests' own */
    int tune;              /* causal forest: choose min_leaf and mtry on an inner split */
    int folds;             /* DR-learner: cross-fitting parts, 2..10 */
    int nuisance_trees;    /* trees of the X- and DR-learners' outcome models and of
                              the tuning forests (at most outcome.n_trees; 0: as
                              outcome) */
    double rule_min_share; /* rule: least share of rows on each side, (0, 0.5] */
    /* rfm-train only (uplift_fit ignores them): */
    int choose_learner; /* 1: evaluate every learner, serve the best mean
                           normalised Qini (learner is then ignored) */
    double holdout;     /* share held out for the evaluation, 0.05..0.9 */
    int n_boot;         /* bootstrap resamples for the Qini intervals, 0..10000 */
} uplift_params;

typedef struct uplift_model uplift_model;

/* Defaults: forest_default_params for both forests (100 trees each, subsample
 * 0.5, min_leaf 50 outcome / 100 causal, causal trees honest); centre on; 2
 * threads; seed 1; tune 0; folds 2; nuisance_trees 50; rule_min_share 0.05; choose_learner 0;
 * holdout 0.3; n_boot 200. */
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
/* "t_learner", "causal_forest", "x_learner", "dr_learner", "rule". */
const char *uplift_learner_name(uplift_learner l);
/* The learner named name (as above); -1 if none. */
int uplift_learner_from_name(const char *name);
int uplift_n_arms(const uplift_model *m);
size_t uplift_n_features(const uplift_model *m);

/* The fitted rule of arm k (1..n_arms) when the model is a rule: rows with
 * x[feature] <= threshold score uplift_le, the others uplift_gt. RFM_EINVAL
 * for another learner or k out of range. */
typedef struct {
    int feature;
    double threshold, uplift_le, uplift_gt;
    double train_qini; /* Qini coefficient of the rule on the rows searched */
} uplift_rule;
rfm_status uplift_get_rule(const uplift_model *m, int k, uplift_rule *out);

/* The causal forest's tuned settings (min_leaf, mtry) and the inner
 * validation mean normalised Qini they won with; 0s when not tuned. */
void uplift_get_tuning(const uplift_model *m, int *min_leaf, int *mtry, double *inner_qini);

/* The best rule "x[f] <= t" for arm k against control on the given rows: over
 * every feature and every threshold between distinct values (at most 64
 * quantile thresholds for a feature with more distinct values), with at least
 * min_share of the rows of arm k and control on each side, the one whose
 * ranking (each side scored by its treated-minus-control difference in
 * means, so the direction comes from the data) has the largest Qini
 * coefficient on those rows. RFM_EDATA when no split leaves both groups on
 * both sides. Reentrant. */
rfm_status uplift_rule_search(const double *X, size_t n, size_t d, const int *arm, int k,
                              const double *y, double min_share, uplift_rule *out, char *err,
                              size_t errlen);

/* {"format": "rfm-uplift", "version": 2, "learner", "n_features", "n_arms",
 * "centre", "control": forest, "arms": [per arm: a forest, or for a rule
 * {"feature", "threshold", "uplift_le", "uplift_gt", "train_qini"}]}, and for the
 * X-learner "arms_control": [tau0 forest per arm], "propensity": [e_k]; a tuned
 * causal forest adds "tuning": {"min_leaf", "mtry", "inner_qini"}.
 * Version 1 files (T-learner, causal forest) still load.
 * The caller dumps with jsonout_dumps so doubles round-trip. */
rfm_status uplift_to_json(const uplift_model *m, json_t **out, char *err, size_t errlen);
/* Validates every field; RFM_EFORMAT naming it (and how to regenerate) on a
 * defect or a different format/version. */
rfm_status uplift_from_json(const json_t *j, uplift_model **out, char *err, size_t errlen);
void uplift_free(uplift_model *m);

/* Seeded held-out split, stratified by arm and outcome (y > 0 or not; y NULL:
 * by arm only): within each stratum, round(test_frac * size) rows chosen
 * uniformly get is_test[i] = 1, the rest 0. arm values must be in
 * 0..UPLIFT_MAX_ARMS; test_frac in [0, 1]. */
rfm_status uplift_holdout(const int *arm, const double *y, size_t n, double test_frac,
                          uint64_t seed, uint8_t *is_test, char *err, size_t errlen);

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
    /* uplift_bootstrap / uplift_holdout_eval with n_boot > 0: the percentile
     * interval (5 %, 95 %) and standard deviation of qini_norm over resamples */
    int n_boot;
    double qini_lo, qini_hi, qini_sd;
    int n_points;
    double frac[UPLIFT_CURVE_POINTS], qini[UPLIFT_CURVE_POINTS], uplift[UPLIFT_CURVE_POINTS];
} uplift_eval;

/* Fill *out for arm k (>= 1) from y, arm and score (n each, finite).
 * RFM_EDATA if arm k or control has no row; RFM_EINVAL on bad input;
 * RFM_ENOMEM. Reentrant. */
rfm_status uplift_evaluate(const double *y, const int *arm, const double *score, size_t n, int k,
                           uplift_eval *out, char *err, size_t errlen);

/* Bootstrap of qini_norm for arm k: n_boot resamples (seeded), each drawn
 * with replacement within the strata arm x outcome (y > 0 or not) of the rows
 * of arm k and control, so every resample keeps the holdout's group sizes;
 * sets out->n_boot, qini_lo and qini_hi (the 5 % and 95 % percentiles) and
 * qini_sd. Scores are sorted once, and each resample is a weighted pass over
 * the sorted rows (O(n) per resample). Other fields of *out are untouched.
 * Failures as uplift_evaluate's. Reentrant. */
rfm_status uplift_bootstrap(const double *y, const int *arm, const double *score, size_t n, int k,
                            int n_boot, uint64_t seed, uplift_eval *out, char *err, size_t errlen);

/* What a ranking with no information scores on these rows, for arm k: R
 * seeded random orderings of the rows of arm k and control, each evaluated as
 * uplift_evaluate would (no ties). *out gets uplift_evaluate's fields for the
 * first ordering, then qini_coef, qini_norm, auuc and auuc_norm replaced by
 * their means over the R orderings (0 up to noise: the random line is the
 * exact expectation), n_boot = R, and qini_lo, qini_hi, qini_sd the 5th and
 * 95th percentiles and the sd of qini_norm over them: how far a random
 * ranking strays. O(n) per ordering. Failures as uplift_evaluate's; R >= 2. */
rfm_status uplift_random_band(const double *y, const int *arm, size_t n, int k, int R,
                              uint64_t seed, uplift_eval *out, char *err, size_t errlen);

/* The bootstrap seed uplift_holdout_eval uses for arm k: the same for every
 * learner, so resamples (which depend on the seed and the strata sizes only)
 * are paired across learners and any other score evaluated with it. */
uint64_t uplift_boot_seed(uint64_t seed, int k);

/* Held-out evaluation of one learner: fit it (p with p->learner replaced by
 * learner) on the rows with is_test[i] == 0, score the rows with
 * is_test[i] == 1, and evaluate each arm k = 1..n_arms against control on
 * them (uplift_evaluate, and uplift_bootstrap when p->n_boot > 0) into
 * ev[k-1]; *mean_qini_norm is the mean of the arms' qini_norm. When model is
 * not NULL it receives the fitted model (the caller frees it). X, arm, y as uplift_fit's, n rows
 * each. Failures are uplift_fit's and uplift_evaluate's (an arm or control with no training or no
 * held-out row), RFM_ENOMEM; ev and *mean_qini_norm then unspecified. Reentrant. */
rfm_status uplift_holdout_eval(const double *X, size_t n, size_t d, const int *arm, int n_arms,
                               const double *y, const uint8_t *is_test, const uplift_params *p,
                               uplift_learner learner, uplift_eval *ev, double *mean_qini_norm,
                               uplift_model **model, char *err, size_t errlen);

/* uplift_holdout_eval for each of learners[0..n_learners) on one split, with
 * the same results (tests/models/test_uplift.c compares them) for less work:
 * the control outcome forest every learner keeps (and the causal forest's
 * centred outcomes) is fitted once on the training rows and copied into each
 * model. ev holds n_arms entries per learner (ev[j * n_arms + k - 1]),
 * mean_qini_norm one per learner; models, when not NULL, receives each
 * fitted model (the caller frees them; all NULL on failure). Failures as
 * uplift_holdout_eval's, RFM_EINVAL for an unknown learner. Reentrant. */
rfm_status uplift_holdout_compare(const double *X, size_t n, size_t d, const int *arm, int n_arms,
                                  const double *y, const uint8_t *is_test, const uplift_params *p,
                                  const uplift_learner *learners, int n_learners, uplift_eval *ev,
                                  double *mean_qini_norm, uplift_model **models, char *err,
                                  size_t errlen);

/* The learner to serve: p->learner, or with p->choose_learner the one with
 * the largest mean normalised Qini on held-out data among the evaluated ones
 * (mean_qini_norm[l] for learner l, NaN for one not evaluated). Ties go by
 * the order causal forest, DR-learner, X-learner, T-learner, rule, so the
 * rule is served only when strictly better than every learner evaluated.
 * With no number at all, p->learner. Pure. */
uplift_learner uplift_choose_learner(const uplift_params *p,
                                     const double mean_qini_norm[UPLIFT_N_LEARNERS]);

#endif
