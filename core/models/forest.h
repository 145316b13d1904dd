/* forest.h - random forests of binned regression trees and honest causal trees.
 *
 * Purpose: the tree ensembles behind core/uplift (T-learner outcome models and
 * the causal forest). Two kinds share one grower:
 *   FOREST_REGRESSION  CART on y (variance reduction), leaf = mean of y.
 *   FOREST_CAUSAL      trees that split on treatment-effect heterogeneity with
 *                      grf's gradient ("relabelling") criterion (Athey, Tibshirani
 *                      and Wager 2019, sec. 2.3; Wager and Athey 2018): at a node P
 *                      with split-half samples, W̄ = mean w, Ȳ = mean y,
 *                      A = mean (w - W̄)^2, tau_P = sum (w-W̄)(y-Ȳ) / sum (w-W̄)^2, and
 *                      the pseudo-outcome rho_i = (w_i-W̄)(y_i-Ȳ-(w_i-W̄) tau_P) / A;
 *                      the split maximises sum over children (sum rho)^2 / n_child,
 *                      each child holding >= min_leaf samples and >= min_arm
 *                      treated and >= min_arm control samples.
 * Each tree sees a subsample drawn without replacement (sample_frac of the rows).
 * Honest trees split the subsample in two random halves: the first chooses the
 * splits, the second fills the leaves (its samples are routed down the grown
 * tree); a leaf that receives no estimation sample is skipped at prediction.
 *
 * Prediction:
 *   regression: mean over trees (with a non-empty leaf) of the leaf means.
 *   causal: grf's forest-weighted estimate. Each leaf stores the means of w, y
 *     and w*y over its estimation samples; averaging them over trees gives the
 *     alpha-weighted moments E_a[w], E_a[y], E_a[wy] with grf's weights
 *     alpha_i(x) = (1/B) sum_b 1{i in L_b(x)} / |L_b(x)|, and
 *     tau(x) = (E_a[wy] - E_a[w] E_a[y]) / (E_a[w] - E_a[w]^2),
 *     i.e. the weighted difference of treated and control means. With w binary
 *     this is invariant to centring y on any function of x, which is why the
 *     caller may centre y on an outcome model without biasing tau.
 *
 * Features are binned once per fit (each distinct value its own bin when there
 * are <= max_bins of them, else quantile bins); a split is a threshold halfway
 * between two adjacent observed values, so prediction on raw x (x <= thr goes
 * left) routes training rows exactly as their bins did.
 *
 * Determinism: tree b uses its own rfm_rng seeded from (seed, b), and trees are
 * merged in index order, so the forest depends on the seed only - not on
 * n_threads or on thread scheduling.
 *
 * Workload: 10^4-10^5 rows, 5-50 features, 100-1000 trees; fitting is
 * O(trees * rows * depth * mtry); prediction is one root-to-leaf walk per tree
 * over flat node arrays (no allocation).
 * Non-goals: missing values (callers reject NaN), classification criteria,
 * variance estimates / confidence intervals, sample weights.
 */
#ifndef RFM_FOREST_H
#define RFM_FOREST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef enum { FOREST_REGRESSION = 0, FOREST_CAUSAL = 1 } forest_kind;

typedef struct {
    forest_kind kind;
    int n_trees;        /* >= 1 */
    double sample_frac; /* subsample share per tree, without replacement, (0, 1] */
    int honest;         /* 1: half the subsample splits, the other half estimates */
    int min_leaf;       /* >= 1: minimum split-half samples per child */
    int min_arm;        /* causal: minimum treated and control per child, >= 1 */
    int mtry;           /* features tried per split; 0 = min(ceil(sqrt(d) + 20), d) as grf */
    int max_depth;      /* >= 1 */
    int max_bins;       /* 2..256 */
    int n_threads;      /* 1..64 worker threads for fitting */
    uint64_t seed;
} forest_params;

typedef struct forest forest;

/* Defaults for a kind, sized for 10^4-10^5 rows: 100 trees, frac 0.5, min_leaf
 * 50 (regression) or 100 (causal), min_arm 5, max_depth 20, 64 bins, 2
 * threads, seed 1; honest for causal, not for regression. Small data sets
 * want smaller leaves. */
void forest_default_params(forest_params *p, forest_kind kind);

/* Reason the parameters are invalid, or NULL when they are fine. */
const char *forest_check_params(const forest_params *p);

/* Fit a forest on X (n x d, row-major, finite) and y (n, finite); w (n, each 0
 * or 1) is the treatment indicator, required for FOREST_CAUSAL and ignored for
 * FOREST_REGRESSION. If oob is non-NULL (n doubles, regression only) it
 * receives out-of-bag predictions: each row predicted by the trees whose
 * subsample left it out (by all trees in the rare case none did).
 * On success *out owns a new forest (free with forest_free). On failure
 * *out and oob are unchanged: RFM_EINVAL (bad parameters, NaN/Inf, w not 0/1),
 * RFM_EDATA (too few rows, or a causal fit without both groups), RFM_ENOMEM.
 * Uses p->n_threads pthreads; reentrant. */
rfm_status forest_fit(const double *X, size_t n, size_t d, const double *y, const uint8_t *w,
                      const forest_params *p, double *oob, forest **out, char *err, size_t errlen);

/* Prediction at one point x (d finite doubles; the caller validates).
 * regression: the forest's mean outcome. causal: the effect tau(x) (0 when the
 * weighted leaves hold only one group, which the per-child min_arm rule makes
 * practically impossible). Thread-safe on a shared forest; no allocation. */
double forest_predict(const forest *f, const double *x);

forest_kind forest_get_kind(const forest *f);
size_t forest_n_features(const forest *f);
int forest_n_trees(const forest *f);
size_t forest_n_nodes(const forest *f);

/* Serialise as {"kind", "n_features", "n_trees", "tree_start", "feature",
 * "threshold", "child", "leaf_count", "leaf_value"}: one array per node field
 * (feature -1 marks a leaf, whose child is its leaf index; an internal node's
 * children are child and child + 1), leaf_value holding 1 (regression) or 3
 * (causal: mean w, mean y, mean w*y) values per leaf. *out is a new reference. */
rfm_status forest_to_json(const forest *f, json_t **out, char *err, size_t errlen);
/* Load and validate every field (lengths, ranges, children pointing forward
 * inside their tree so walks terminate, finite values); RFM_EFORMAT naming the
 * field on any defect. */
rfm_status forest_from_json(const json_t *j, forest **out, char *err, size_t errlen);

/* A deep copy of f (its own arrays), or NULL when out of memory. */
forest *forest_clone(const forest *f);

void forest_free(forest *f);

#endif
