/* boost.h - gradient-boosted trees for a binary label: fitted by XGBoost
 * (C API), served by our own tree walk, explained by our own exact TreeSHAP.
 *
 * Purpose: the churn step's second learner (churn.h). XGBoost fits the trees
 * (objective binary:logistic, tree_method hist, fixed seed, nthread from the
 * options); the fitted booster is dumped as XGBoost's JSON model and its trees
 * copied into flat arrays, which every scoring call reads: no XGBoost call and
 * no XGBoost state on the serving path (XGBoost's per-call overhead is tens of
 * microseconds, and its predict is not documented thread-safe on one booster).
 *
 * Model. T regression trees over d features, margin (log-odds)
 *     margin(x) = base_margin + sum_t f_t(x),   P(y = 1) = sigmoid(margin),
 * base_margin = logit(base_score) (base_score 0.5: margin 0). A node splits on
 * feature j at threshold c: x_j < c goes left, else right; a missing value
 * (NaN) goes the node's default direction. Comparisons are made in single
 * precision, as XGBoost stores features and thresholds as floats: x_j is
 * rounded to float first. Leaf values are XGBoost's floats, summed in double
 * in the model's tree order, the same in every path (so every margin is the
 * same double): XGBoost's order, except that a model loaded or fitted with
 * a nonzero vary (boost_fit, boost_from_json) adds first the trees that split
 * on none of the features in vary, then those that cut them into at most
 * eight cells, then the others (each group in XGBoost's order). A search
 * along rows that differ only in those features (boost_margin_along_until)
 * then adds the first group's leaves once and finds the second group's by
 * one permute a tree instead of gathers.
 *
 * Explanations: exact SHAP values in log-odds by Lundberg, Erion and Lee's
 * polynomial TreeSHAP (path-dependent, "Consistent individualized feature
 * attribution for tree ensembles", 2018, Algorithm 2; the variant XGBoost's
 * pred_contribs computes), where the expectation over absent features follows
 * the training cover (sum of hessians) of each branch. base_value is the
 * cover-weighted mean margin, and base_value + sum_j phi_j = margin(x) to
 * rounding. The recursion costs O(T L D^2) per customer for L leaves of depth
 * D, about 0.1 ms for 200 trees of depth 3: too slow to serve. For trees of
 * depth <= 4 each leaf's contributions are tabulated at load for every
 * pattern of path features x follows (2^D rows), and scoring reads one row
 * per leaf: O(T L D), a few microseconds (boost_shap_path keeps the
 * recursion, and the tests hold the two together). For models of at most 8
 * features each tree's whole row is tabulated per cell (the intervals its
 * thresholds cut each feature into), so an explanation is one lookup per
 * feature a tree and one row added (docs/churn.md, "Cells").
 *
 * Files: boost_to_json keeps XGBoost's own JSON model text verbatim (a JSON
 * string, so no number is re-printed) beside our format tag and the fit's
 * options; boost_from_json parses the trees from it again, and
 * boost_xgb_predict loads XGBoost's booster from the same text on its first
 * call (XGBoosterLoadModelFromBuffer; scoring never needs it), so a loaded
 * model predicts the same through both paths.
 *
 * Workload: fit once per training run on up to a few million rows; score and
 * explain per HTTP request. Thread safety: boost_margin, boost_predict and
 * boost_shap only read the model (any number of threads on one model).
 * boost_fit is reentrant (each fit owns its booster). boost_xgb_predict calls
 * XGBoost on the model's booster (loading it on the first call): one thread
 * per model at a time.
 *
 * Non-goals: multi-class, regression, categorical splits, DART, interaction
 * values, sample weights, early stopping (the held-out evaluation in churn.c
 * judges the fit).
 */
#ifndef RFM_BOOST_H
#define RFM_BOOST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define BOOST_FORMAT "rfm-boost"
#define BOOST_VERSION 1
#define BOOST_MAX_FEATURES 64
#define BOOST_MAX_DEPTH 12
#define BOOST_PAR_ROWS 100000

typedef struct boost_model boost_model; /* opaque */

typedef struct {
    int rounds;              /* trees, 1..5000 */
    int max_depth;           /* 1..BOOST_MAX_DEPTH */
    double eta;              /* learning rate, (0, 1] */
    double lambda;           /* L2 penalty on leaf weights, >= 0 */
    double min_child_weight; /* minimum hessian sum in a child, >= 0 */
    double subsample;        /* share of rows per tree, (0, 1] */
    uint64_t seed;           /* XGBoost's seed (subsampling) */
    int nthread;             /* XGBoost threads for the fit, 1..256; fits of
                              * fewer than BOOST_PAR_ROWS rows use one */
} boost_params;

/* rounds 200, max_depth 4, eta 0.05, lambda 1, min_child_weight 5,
 * subsample 0.8, seed 42, nthread 2. */
void boost_default_params(boost_params *p);

/* NULL if p is usable, else a static string starting with the bad field. */
const char *boost_check_params(const boost_params *p);

/* Fit on n rows: x row-major n x d (d in 1..BOOST_MAX_FEATURES), each value
 * finite or NaN (missing); y[i] in {0, 1}, both classes present. vary: bit j
 * for feature j, the tree order above (0: XGBoost's); loading the model
 * again needs the same vary for the same bits. On success *out is new
 * (boost_free). Failures, *out untouched: RFM_EINVAL (bad argument, naming
 * row and column), RFM_EDATA (one class only), RFM_ELIBRARY (XGBoost's
 * message), RFM_ENOMEM. Reentrant. */
rfm_status boost_fit(const double *x, const int *y, size_t n, size_t d, const boost_params *p,
                     uint32_t vary, boost_model **out, char *err, size_t errlen);

/* XGBoost's library (libxgboost.so.0) is loaded by the first boost_fit or
 * boost_xgb_predict of the process, not when a program starts (about 3 ms
 * that scoring never needs). This loads it now: for a program that will
 * fit to call on a thread of its own while it does other work. RFM_ELIBRARY
 * when the library or one of its functions is missing. Thread-safe. */
rfm_status boost_load_library(char *err, size_t errlen);

void boost_free(boost_model *m);

size_t boost_nfeatures(const boost_model *m);
size_t boost_ntrees(const boost_model *m);
/* The trees first in the model's order: those that split on no feature in
 * its vary (0 when vary is 0). */
size_t boost_ntrees_first(const boost_model *m);
/* The trees next: those with at most eight cells on vary's features, so
 * that a search adds their leaves by permutes (0 when vary is 0). */
size_t boost_ntrees_block(const boost_model *m);
/* The options of the fit (as saved). */
const boost_params *boost_get_params(const boost_model *m);

/* Margin (log-odds) of one row of d values (NaN = missing; other values must
 * be finite, which the caller checks). With the cells (boost_has_cells), each
 * tree's leaf is its cell's; else trees of depth <= 8 are walked in a
 * complete-tree layout without data-dependent branches. Thread-safe. */
double boost_margin(const boost_model *m, const double *x);

/* The same by following each tree's nodes from the root: the plain version
 * the tests check boost_margin against (equal to the bit: the same leaf
 * values added in the same order). Thread-safe. */
double boost_margin_walk(const boost_model *m, const double *x);

/* boost_margin of n rows, row-major (n x d): out[i] the same double, for
 * every row together several times faster (trees of depth <= 4: eight rows
 * a vector). Thread-safe. */
void boost_margin_many(const boost_model *m, const double *x, size_t n, double *out);

/* Exact TreeSHAP: phi[d] (log-odds) for row x; returns the margin, which
 * equals boost_base_value(m) + sum_j phi[j] to rounding and boost_margin(m, x)
 * exactly (the same leaf values added in the same order). Thread-safe. */
double boost_shap(const boost_model *m, const double *x, double *phi);

/* Whether boost_shap reads the cell tables (models of at most 8 features
 * whose trees cut them into few enough cells). */
int boost_has_cells(const boost_model *m);
/* boost_margin of n rows xs (row-major, n x d) that differ from one another
 * only in features j1 and j2 (j2 -1: j1 alone), searched in order for a
 * margin below stop: out[i] the same double as boost_margin(m, xs + i * d),
 * the leaves added in the model's order, for i < the r returned, which is n, or
 * fewer when one of out[0 .. r) is below stop (the rows after it are left;
 * -INFINITY: every row). With the cells (and AVX2), each tree's cell on
 * the other features is found once a call, from the first row; then eight
 * rows a pass take each tree's entries on j1 and j2 (adjacent across the
 * trees: two loads for eight trees) and their leaves by gathers, so a
 * search that ends early pays for a pass (the counterfactual's
 * candidates, which differ in frequency and monetary value); else
 * boost_margin_many, eight rows at a time, stopping the same way.
 * Thread-safe. */
size_t boost_margin_along_until(const boost_model *m, const double *xs, size_t n, int j1, int j2,
                                double stop, double *out);
/* The same from the leaf tables (each leaf's row for the pattern of its
 * path x follows, WIDE_D wide for models of at most 8 features), as
 * boost_shap computed it before the cells; a missing value (NaN) in x is
 * explained this way by boost_shap too. Within rounding of the cells
 * (another order of the same sums; the margin the same double). */
double boost_shap_rows(const boost_model *m, const double *x, double *phi);
/* The same from the narrow tables (each leaf's m path features added to
 * phi one by one): the tests hold boost_shap_rows equal to it to the bit. */
double boost_shap_narrow(const boost_model *m, const double *x, double *phi);

/* The same by the recursive path algorithm itself (Lundberg et al.'s
 * Algorithm 2), whatever the depth: the plain version the tests check
 * boost_shap's tables against. boost_shap uses it for trees deeper than 4. */
double boost_shap_path(const boost_model *m, const double *x, double *phi);

/* The expected margin over the training cover: TreeSHAP's base value. */
double boost_base_value(const boost_model *m);

/* XGBoost's own prediction for n rows (x row-major n x d, NaN missing):
 * with contribs 0, the margin into out[n]; with contribs 1, pred_contribs
 * (d values then the bias) into out[n * (d + 1)]. The reference the tests
 * check the tree walk and TreeSHAP against; XGBoost computes in single
 * precision. RFM_ELIBRARY with XGBoost's message, RFM_ENOMEM. Not
 * thread-safe on one model. */
rfm_status boost_xgb_predict(const boost_model *m, const double *x, size_t n, int contribs,
                             double *out, char *err, size_t errlen);

/* {"format": "rfm-boost", "version": 1, "params": {...}, "xgboost_json":
 * "<XGBoost's JSON model>"} as a new object (caller decrefs). RFM_ENOMEM. */
rfm_status boost_to_json(const boost_model *m, json_t **out, char *err, size_t errlen);

/* Load what boost_to_json wrote, d features expected (0: any), the trees in
 * the order vary gives (boost_fit: the fit's vary, for the same margins).
 * A missing or
 * ill-formed field, a tree that is not a binary tree over d features or
 * deeper than BOOST_MAX_DEPTH, or a booster XGBoost refuses is RFM_EFORMAT
 * naming it (where prefixes the message, e.g. "churn.json.boost"); a wrong
 * format/version says to regenerate with rfm-train. *out untouched on
 * failure. */
rfm_status boost_from_json(const json_t *j, size_t d, uint32_t vary, const char *where,
                           boost_model **out, char *err, size_t errlen);

#endif
