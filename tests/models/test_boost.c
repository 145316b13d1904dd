/* test_boost.c - the boosted-tree learner against independent references:
 * XGBoost's own predict and pred_contribs, Shapley values by brute force over
 * every feature subset, simulation with a known non-linear signal, a round
 * trip through the model file. */
#include "testutil.h"

#include <dlfcn.h>

#include "boost.h"
#include "churn.h"
#include "jsonout.h"
#include "metrics.h"
#include "rng.h"

enum { D = 4 };

static double sig(double t) { return 1.0 / (1.0 + exp(-t)); }

/* Rows with a known non-linear churn signal: churn is likely when x0 (days
 * since the last purchase, say) is inside a band [40, 80) XOR x1 > 3, which
 * no monotone transform of single features separates; x2 is noise, x3 is
 * missing (NaN) for a fifth of the rows. */
static void simulate(rfm_rng *rng, size_t n, double *x, int *y)
{
    for (size_t i = 0; i < n; i++) {
        double *r = x + i * D;
        r[0] = 120.0 * rfm_rng_uniform(rng);
        r[1] = floor(7.0 * rfm_rng_uniform(rng));
        r[2] = rfm_rng_normal(rng);
        r[3] = rfm_rng_uniform(rng) < 0.2 ? NAN : 10.0 * rfm_rng_uniform(rng);
        int band = r[0] >= 40.0 && r[0]<80.0, many = r[1]> 3.0;
        y[i] = rfm_rng_uniform(rng) < sig((band ^ many) ? 2.5 : -2.5);
    }
}

/* n simulated rows (simulate) from seed: x (n x D) and labels *y. */
static double *simulated(uint64_t seed, size_t n, int **y)
{
    rfm_rng rng;
    rfm_rng_seed(&rng, seed);
    double *x = malloc(n * D * sizeof *x);
    *y = malloc(n * sizeof **y);
    assert_non_null(x);
    assert_non_null(*y);
    simulate(&rng, n, x, *y);
    return x;
}

/* A fit of rounds trees of depth at eta 0.3 on one thread; min_child_weight
 * above the default makes uneven trees (some leaves stop early; < 0: the
 * default). */
static boost_model *fit_vary(const double *x, const int *y, size_t n, int rounds, int depth,
                             double min_child_weight, uint32_t vary)
{
    boost_params p;
    boost_default_params(&p);
    p.rounds = rounds, p.max_depth = depth, p.eta = 0.3, p.nthread = 1;
    if (min_child_weight >= 0)
        p.min_child_weight = min_child_weight;
    boost_model *m = NULL;
    char err[RFM_ERRLEN] = "";
    if (boost_fit(x, y, n, D, &p, vary, &m, err, sizeof err) != RFM_OK)
        fail_msg("boost_fit: %s", err);
    return m;
}

/* The same, the trees in XGBoost's order. */
static boost_model *fit_depth(const double *x, const int *y, size_t n, int rounds, int depth,
                              double min_child_weight)
{
    return fit_vary(x, y, n, rounds, depth, min_child_weight, 0);
}

/* Features 2 and 3 (the noise and the sometimes missing one of simulate) as
 * vary: the trees that split on neither first (boost.h); every tree splits
 * on x0 or x1, which carry the signal. */
#define VARY23 (1u << 2 | 1u << 3)

static boost_model *fit_small(size_t n, uint64_t seed, double **xo, int **yo)
{
    *xo = simulated(seed, n, yo);
    return fit_depth(*xo, *yo, n, 40, 4, -1);
}

/* ---- the reference: Shapley values from their definition -------------------
 * v(S) = E[f(x) | x_S], the path-dependent expectation TreeSHAP uses: at a
 * split on a feature in S follow x, else average the two children weighted
 * by their training cover (the children's, which XGBoost's float covers
 * make slightly different from the parent's). The cover is read back through the model file
 * (the test's own parse of XGBoost's JSON), not through boost.c's arrays. */
typedef struct {
    size_t nn;
    long long *left, *right, *feat, *dleft;
    double *thr, *value, *cover;
} ref_tree;

static double ref_expect(const ref_tree *t, size_t k, const double *x, unsigned S)
{
    if (t->left[k] < 0)
        return t->value[k];
    long long f = t->feat[k];
    if (S & (1u << f)) {
        double v = x[f];
        int left = isnan(v) ? (int)t->dleft[k] : (float)v < (float)t->thr[k];
        return ref_expect(t, (size_t)(left ? t->left[k] : t->right[k]), x, S);
    }
    size_t l = (size_t)t->left[k], r = (size_t)t->right[k];
    return (t->cover[l] * ref_expect(t, l, x, S) + t->cover[r] * ref_expect(t, r, x, S)) /
           (t->cover[l] + t->cover[r]);
}

static ref_tree *ref_trees(const boost_model *m, size_t *nt)
{
    json_t *j;
    char err[RFM_ERRLEN];
    assert_int_equal(boost_to_json(m, &j, err, sizeof err), RFM_OK);
    json_t *root = json_loads(json_string_value(json_object_get(j, "xgboost_json")), 0, NULL);
    assert_non_null(root);
    const json_t *trees = json_object_get(
        json_object_get(json_object_get(json_object_get(root, "learner"), "gradient_booster"),
                        "model"),
        "trees");
    *nt = json_array_size(trees);
    ref_tree *rt = calloc(*nt, sizeof *rt);
    for (size_t t = 0; t < *nt; t++) {
        const json_t *tr = json_array_get(trees, t);
        size_t nn = json_array_size(json_object_get(tr, "left_children"));
        ref_tree *r = &rt[t];
        r->nn = nn;
        r->left = malloc(nn * sizeof(long long)), r->right = malloc(nn * sizeof(long long));
        r->feat = malloc(nn * sizeof(long long)), r->dleft = malloc(nn * sizeof(long long));
        r->thr = malloc(nn * sizeof(double)), r->value = malloc(nn * sizeof(double));
        r->cover = malloc(nn * sizeof(double));
        for (size_t k = 0; k < nn; k++) {
            r->left[k] =
                json_integer_value(json_array_get(json_object_get(tr, "left_children"), k));
            r->right[k] =
                json_integer_value(json_array_get(json_object_get(tr, "right_children"), k));
            r->feat[k] =
                json_integer_value(json_array_get(json_object_get(tr, "split_indices"), k));
            r->dleft[k] =
                json_integer_value(json_array_get(json_object_get(tr, "default_left"), k));
            double c =
                json_number_value(json_array_get(json_object_get(tr, "split_conditions"), k));
            r->thr[k] = c;
            r->value[k] = (double)(float)c;
            r->cover[k] = json_number_value(json_array_get(json_object_get(tr, "sum_hessian"), k));
        }
    }
    json_decref(root);
    json_decref(j);
    return rt;
}

static void ref_free(ref_tree *rt, size_t nt)
{
    for (size_t t = 0; t < nt; t++) {
        free(rt[t].left), free(rt[t].right), free(rt[t].feat), free(rt[t].dleft);
        free(rt[t].thr), free(rt[t].value), free(rt[t].cover);
    }
    free(rt);
}

/* phi_j = sum over S not holding j of |S|! (d - |S| - 1)! / d! [v(S + j) - v(S)]. */
static void ref_shapley(const ref_tree *rt, size_t nt, const double *x, double *phi)
{
    double fact[D + 1] = {1};
    for (int k = 1; k <= D; k++)
        fact[k] = fact[k - 1] * k;
    for (int j = 0; j < D; j++) {
        phi[j] = 0;
        for (unsigned S = 0; S < (1u << D); S++) {
            if (S & (1u << j))
                continue;
            int s = __builtin_popcount(S);
            double w = fact[s] * fact[D - s - 1] / fact[D], dv = 0;
            for (size_t t = 0; t < nt; t++)
                dv += ref_expect(&rt[t], 0, x, S | (1u << j)) - ref_expect(&rt[t], 0, x, S);
            phi[j] += w * dv;
        }
    }
}

/* ---- tests ---------------------------------------------------------------- */

/* Our tree walk gives XGBoost's margin (XGBoost sums floats: 1e-5). */
/* XGBoost's library is not loaded when a program linking boost.c starts,
 * only when it is asked for (boost_load_library, or the first fit): runs
 * first, before any test fits. */
static void test_library_loaded_on_demand(void **state)
{
    (void)state;
    assert_null(dlopen("libxgboost.so.0", RTLD_NOW | RTLD_NOLOAD));
    char err[RFM_ERRLEN];
    assert_int_equal(boost_load_library(err, sizeof err), RFM_OK);
    void *h = dlopen("libxgboost.so.0", RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(h);
    dlclose(h);
    assert_int_equal(boost_load_library(err, sizeof err), RFM_OK); /* again: already loaded */
}

static void test_walk_equals_xgboost(void **state)
{
    (void)state;
    double *x;
    int *y;
    size_t n = 2000;
    boost_model *m = fit_small(n, 11, &x, &y);
    /* trees of depth 2, in both orders: most split on neither x2 nor x3 */
    boost_model *m2 = fit_vary(x, y, n, 40, 2, -1, 0), *mv = fit_vary(x, y, n, 40, 2, -1, VARY23);
    double *ref = malloc(n * sizeof *ref);
    char err[RFM_ERRLEN];
    double *ref2 = malloc(n * sizeof *ref2);
    assert_int_equal(boost_xgb_predict(m, x, n, 0, ref, err, sizeof err), RFM_OK);
    assert_int_equal(boost_xgb_predict(m2, x, n, 0, ref2, err, sizeof err), RFM_OK);
    double mx = 0, mxv = 0, order = 0;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs(boost_margin(m, x + i * D) - ref[i]) / (1 + fabs(ref[i])));
        mxv = fmax(mxv, fabs(boost_margin(mv, x + i * D) - ref2[i]) / (1 + fabs(ref2[i])));
        order = fmax(order, fabs(boost_margin(mv, x + i * D) - boost_margin(m2, x + i * D)));
    }
    report_maxdiff("tree walk vs XGBoost margin (relative)", mx, 1e-5);
    report_maxdiff("depth 2, trees splitting on neither x2 nor x3 first", mxv, 1e-5);
    report_maxdiff("the two orders (rounding only)", order, 1e-12);
    printf("    %zu of %zu trees split on neither x2 nor x3\n", boost_ntrees_first(mv),
           boost_ntrees(mv));
    assert_int_equal(boost_ntrees_first(m2), 0);
    assert_true(boost_ntrees_first(mv) > 0 && boost_ntrees_first(mv) < boost_ntrees(mv));
    free(ref), free(ref2), free(x), free(y);
    boost_free(m), boost_free(m2), boost_free(mv);
}

/* The complete-tree walk (boost_margin) against the plain node walk, which
 * test_walk_equals_xgboost holds to XGBoost: the same leaves added in the
 * same order, so equal to the bit, at every depth: 1 to 4 (boost_margin_many's
 * lanes), uneven trees with leaves above the deepest level (padded in the
 * layout), 5 and the layout's limit 8 (the walk a row at a time), and 10
 * (beyond it: the node walk itself). Rows with every
 * feature missing and with features on the split values are included. */
static void test_flat_walk_equals_node_walk(void **state)
{
    (void)state;
    size_t n = 3000;
    int *y;
    double *x = simulated(21, n, &y);
    for (size_t j = 0; j < D; j++)
        x[j] = NAN; /* row 0: nothing known */
    static const int depths[] = {1, 2, 3, 4, 5, 8, 10};
    for (size_t k = 0; k < 2 * (sizeof depths / sizeof *depths); k++) {
        /* each depth in XGBoost's order, then with vary (boost.h) */
        const size_t nd = sizeof depths / sizeof *depths;
        boost_model *m = fit_vary(x, y, n, 25, depths[k % nd], 20, k < nd ? 0 : VARY23);
        size_t differ = 0, differ_many = 0;
        for (size_t i = 0; i < n; i++)
            differ += boost_margin(m, x + i * D) != boost_margin_walk(m, x + i * D);
        /* boost_margin_many: every count from 1 to 17 (partly filled lane
         * groups) and all rows but three, from row 0 (nothing known) */
        double many[3000];
        for (size_t cnt = 1; cnt <= 17; cnt++) {
            boost_margin_many(m, x + 5 * D, cnt, many);
            for (size_t i = 0; i < cnt; i++)
                differ_many += many[i] != boost_margin_walk(m, x + (5 + i) * D);
        }
        boost_margin_many(m, x, n - 3, many);
        for (size_t i = 0; i < n - 3; i++)
            differ_many += many[i] != boost_margin_walk(m, x + i * D);
        printf("    max_depth %2d%s: %zu of %zu margins differ from the node walk, %zu of the "
               "row blocks'\n",
               depths[k % nd], k < nd ? "" : " (vary)", differ, n, differ_many);
        assert_int_equal(differ, 0);
        assert_int_equal(differ_many, 0);
        boost_free(m);
    }
    free(x), free(y);
}

/* base_value + sum phi = margin to 1e-9; phi equals the brute-force Shapley
 * values to 1e-9 and XGBoost's pred_contribs to float precision. */
static void test_treeshap(void **state)
{
    (void)state;
    double *x;
    int *y;
    size_t n = 1500;
    boost_model *m = fit_small(n, 12, &x, &y);
    size_t nt;
    ref_tree *rt = ref_trees(m, &nt);
    size_t nchk = 200;
    double *xc = malloc(nchk * (D + 1) * sizeof *xc);
    char err[RFM_ERRLEN];
    assert_int_equal(boost_xgb_predict(m, x, nchk, 1, xc, err, sizeof err), RFM_OK);
    double add = 0, brute = 0, xgb = 0, bias = 0, tab = 0;
    for (size_t i = 0; i < nchk; i++) {
        const double *xi = x + i * D;
        double phi[D], ref[D];
        double margin = boost_shap(m, xi, phi), path[D];
        /* The tables of the fast path against the recursion itself. */
        assert_true(fabs(boost_shap_path(m, xi, path) - margin) <= 1e-12);
        for (int j = 0; j < D; j++)
            tab = fmax(tab, fabs(phi[j] - path[j]));
        assert_true(margin == boost_margin(m, xi));
        double s = boost_base_value(m);
        for (int j = 0; j < D; j++)
            s += phi[j];
        add = fmax(add, fabs(s - margin));
        ref_shapley(rt, nt, xi, ref);
        for (int j = 0; j < D; j++) {
            brute = fmax(brute, fabs(phi[j] - ref[j]));
            xgb = fmax(xgb, fabs(phi[j] - xc[i * (D + 1) + (size_t)j]));
        }
        bias = fmax(bias, fabs(boost_base_value(m) - xc[i * (D + 1) + D]));
    }
    report_maxdiff("tabulated vs recursive TreeSHAP", tab, 1e-12);
    report_maxdiff("base + sum phi - margin", add, 1e-9);
    report_maxdiff("phi vs brute-force Shapley", brute, 1e-9);
    report_maxdiff("phi vs XGBoost pred_contribs (float)", xgb, 1e-4);
    report_maxdiff("base_value vs XGBoost bias (float)", bias, 1e-4);
    free(xc), free(x), free(y);
    ref_free(rt, nt);
    boost_free(m);
}

/* The wide rows (phi in registers) against the narrow ones, bit for bit,
 * on every row (a fifth with x3 missing, row 0 with nothing known), over
 * trees of each depth the tables serve. */
static void test_wide_rows_equal_narrow(void **state)
{
    (void)state;
    size_t n = 2000;
    int *y;
    double *x = simulated(33, n, &y);
    for (size_t j = 0; j < D; j++)
        x[j] = NAN;
    for (int depth = 1; depth <= 4; depth++) {
        boost_model *m = fit_depth(x, y, n, 60, depth, 20);
        size_t differ = 0;
        for (size_t i = 0; i < n; i++) {
            double a[D], b[D];
            double ma = boost_shap_rows(m, x + i * D, a), mb = boost_shap_narrow(m, x + i * D, b);
            differ += memcmp(a, b, sizeof a) != 0 || memcmp(&ma, &mb, sizeof ma) != 0;
        }
        printf("    max_depth %d: %zu of %zu explanations differ from the narrow rows\n", depth,
               differ, n);
        assert_int_equal(differ, 0);
        boost_free(m);
    }
    free(x), free(y);
}

/* The cells against the leaf tables (and the recursion, for trees deeper
 * than the tables): the same margin to the bit, the same contributions to
 * rounding, on every row of trees of depth 1 to 6 (a fifth with x3
 * missing: the cells keep an interval for it), then on rows moved to the
 * float just below or above a value (the thresholds are floats of the
 * data: x compared as a float lands on them). */
static void test_cells_equal_leaf_rows(void **state)
{
    (void)state;
    size_t n = 2000;
    int *y;
    double *x = simulated(71, n, &y);
    rfm_rng rng; /* the rows moved beside a value */
    rfm_rng_seed(&rng, 72);
    for (int depth = 1; depth <= 6; depth++) {
        boost_model *m = fit_depth(x, y, n, 50, depth, 10);
        double worst = 0;
        size_t missing = 0, rows = 0;
        for (size_t i = 0; i < 2 * n; i++) {
            double r[D], a[D], b[D];
            memcpy(r, x + (i % n) * D, sizeof r);
            if (i >= n) { /* the float next to a value, either side */
                size_t j = rfm_rng_below(&rng, D);
                float f = (float)x[rfm_rng_below(&rng, n) * D + j];
                if (!isnan(f))
                    r[j] =
                        rfm_rng_below(&rng, 2) ? nextafterf(f, INFINITY) : nextafterf(f, -INFINITY);
            }
            double ma = boost_shap(m, r, a), mb = boost_shap_rows(m, r, b);
            if (memcmp(&ma, &mb, sizeof ma) != 0 || ma != boost_margin(m, r))
                fail_msg("depth %d row %zu: margin %.17g, leaf tables %.17g", depth, i, ma, mb);
            for (int j = 0; j < D; j++)
                worst = fmax(worst, fabs(a[j] - b[j]));
            missing += isnan(r[3]);
            rows++;
        }
        printf("    max_depth %d: cells %s, %zu rows (%zu with x3 missing), max |phi - leaf "
               "tables'| %.3g\n",
               depth, boost_has_cells(m) ? "kept" : "not kept", rows, missing, worst);
        assert_true(worst <= 1e-12 && missing > rows / 10);
        if (depth <= 3)
            assert_true(boost_has_cells(m));
        boost_free(m);
    }
    /* Nine features (the four and five of noise): no cells, the leaf
     * tables explain, the same bits as boost_shap_rows. */
    enum { D9 = 9 };
    double *x9 = malloc(n * D9 * sizeof *x9);
    assert_non_null(x9);
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < D9; j++)
            x9[i * D9 + j] = j < D ? x[i * D + j] : rfm_rng_uniform(&rng);
    boost_params p;
    boost_default_params(&p);
    p.rounds = 30, p.max_depth = 3, p.nthread = 1;
    boost_model *m = NULL;
    char err[RFM_ERRLEN] = "";
    if (boost_fit(x9, y, n, D9, &p, 0, &m, err, sizeof err) != RFM_OK)
        fail_msg("boost_fit: %s", err);
    assert_false(boost_has_cells(m));
    for (size_t i = 0; i < n; i += 7) {
        double a[D9], b[D9];
        double ma = boost_shap(m, x9 + i * D9, a), mb = boost_shap_rows(m, x9 + i * D9, b);
        assert_true(memcmp(a, b, sizeof a) == 0 && memcmp(&ma, &mb, sizeof ma) == 0);
    }
    boost_free(m);
    free(x9), free(x), free(y);
}

/* boost_margin_along_until: rows that differ from one another in one or two
 * features, each the same double as boost_margin of the row (the
 * counterfactual's candidates are compared with the probability the
 * server answers for them): any pair of features, 2 to 21 rows (past one
 * block of 16), values on and beside the thresholds, missing ones. */
static void test_margin_along(void **state)
{
    (void)state;
    double *x;
    int *y;
    size_t n = 1500;
    boost_model *m40 = fit_small(n, 5, &x, &y);
    /* 42 trees as well: the trees past the last four taken at once */
    boost_model *m42 = fit_depth(x, y, n, 42, 4, -1);
    /* and trees of depth 3 and 2 with those that split on neither x2 nor
     * x3 first: a search along them adds those once; their count is no
     * multiple of eight, so the passes start mid-block */
    boost_model *v40 = fit_vary(x, y, n, 40, 3, -1, VARY23),
                *v42 = fit_vary(x, y, n, 42, 2, -1, VARY23);
    assert_true(boost_has_cells(m40) && boost_has_cells(m42));
    assert_true(boost_has_cells(v40) && boost_has_cells(v42));
    assert_int_equal(boost_ntrees(m42) % 4, 2);
    assert_true(boost_ntrees_first(v40) % 8 != 0 || boost_ntrees_first(v42) % 8 != 0);
    printf("    with vary: %zu of 40 and %zu of 42 trees first, %zu and %zu next (at most eight "
           "cells on x2 and x3)\n",
           boost_ntrees_first(v40), boost_ntrees_first(v42), boost_ntrees_block(v40),
           boost_ntrees_block(v42));
    /* each group, and trees past the second, in at least one model */
    assert_true(boost_ntrees_block(v40) > 0 && boost_ntrees_block(v42) > 0);
    assert_true(boost_ntrees_first(v40) + boost_ntrees_block(v40) < 40 ||
                boost_ntrees_first(v42) + boost_ntrees_block(v42) < 42);
    const boost_model *models[4] = {m40, m42, v40, v42};
    rfm_rng rng;
    rfm_rng_seed(&rng, 9);
    enum { NR = 21 };
    size_t checked = 0, stopped = 0;
    for (int rep = 0; rep < 2000; rep++) {
        const boost_model *m = models[rep % 4];
        const double *x0 = x + rfm_rng_below(&rng, n) * D;
        int j1 = (int)rfm_rng_below(&rng, D), j2 = (int)rfm_rng_below(&rng, D + 1) - 1;
        if (rep % 8 >= 2 && rep % 4 >= 2) /* mostly along the vary pair, or one of it */
            j1 = 2 + (int)rfm_rng_below(&rng, 2), j2 = rep % 8 == 7 ? -1 : 5 - j1;
        size_t nr = 2 + rfm_rng_below(&rng, NR - 1);
        double xs[NR * D], out[NR];
        for (size_t i = 0; i < nr; i++) {
            memcpy(xs + i * D, x0, D * sizeof *x0);
            for (int j = 0; j < D; j++)
                if (j == j1 || j == j2) {
                    double v = x[rfm_rng_below(&rng, n) * D + (size_t)j];
                    if (!isnan(v) && rfm_rng_below(&rng, 3) == 0)
                        v = nextafterf((float)v, rfm_rng_below(&rng, 2) ? INFINITY : -INFINITY);
                    xs[i * D + j] = v;
                }
        }
        assert_int_equal(boost_margin_along_until(m, xs, nr, j1, j2, -INFINITY, out), nr);
        double want[NR];
        for (size_t i = 0; i < nr; i++) {
            want[i] = boost_margin_walk(m, xs + i * D);
            const double one = boost_margin(m, xs + i * D);
            if (memcmp(&want[i], &out[i], sizeof want[i]) != 0 ||
                memcmp(&want[i], &one, sizeof one) != 0)
                fail_msg("rep %d row %zu of %zu (features %d, %d): %.17g and %.17g alone, the "
                         "walk %.17g",
                         rep, i, nr, j1, j2, out[i], one, want[i]);
            checked++;
        }
        /* Searched for a margin below a stop (one of the rows' own, or
         * none): the rows up to the first below it, each the walk's double,
         * and at most a pass of eight past it; all rows when none is. */
        size_t pick = rfm_rng_below(&rng, nr + 1);
        double stop = pick == nr ? -INFINITY : want[pick], got[NR];
        size_t r = boost_margin_along_until(m, xs, nr, j1, j2, stop, got);
        size_t first = nr;
        for (size_t i = 0; i < nr && first == nr; i++)
            if (want[i] < stop)
                first = i;
        assert_true(r >= 1 && r <= nr);
        assert_true(r >= (first < nr ? first + 1 : nr));
        assert_true(r <= first + 1 + 8 || r == nr);
        assert_memory_equal(got, want, r * sizeof *got);
        if (r < nr)
            stopped++;
    }
    assert_true(stopped > 0);
    printf("    %zu rows along one or two features: each the walk's double; %zu searches "
           "stopped early\n",
           checked, stopped);
    free(x), free(y);
    boost_free(m40), boost_free(m42), boost_free(v40), boost_free(v42);
}

/* A model written with jsonout and read back scores and explains the same,
 * through our walk and through XGBoost's reloaded booster. */
static void test_round_trip(void **state)
{
    (void)state;
    double *x;
    int *y;
    size_t n = 800;
    /* fitted and loaded with the same vary: the same order, the same bits */
    x = simulated(13, n, &y);
    boost_model *m = fit_vary(x, y, n, 40, 4, -1, VARY23);
    json_t *j;
    char err[RFM_ERRLEN];
    assert_int_equal(boost_to_json(m, &j, err, sizeof err), RFM_OK);
    char *txt = jsonout_dumps(j, JSON_COMPACT);
    json_decref(j);
    json_t *back = json_loads(txt, 0, NULL);
    assert_non_null(back);
    boost_model *m2 = NULL;
    if (boost_from_json(back, D, VARY23, "t", &m2, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    assert_int_equal(boost_ntrees(m2), boost_ntrees(m));
    assert_int_equal(boost_ntrees_first(m2), boost_ntrees_first(m));
    assert_true(boost_base_value(m2) == boost_base_value(m));
    double *p1 = malloc(n * sizeof *p1), *p2 = malloc(n * sizeof *p2);
    assert_int_equal(boost_xgb_predict(m, x, n, 0, p1, err, sizeof err), RFM_OK);
    assert_int_equal(boost_xgb_predict(m2, x, n, 0, p2, err, sizeof err), RFM_OK);
    for (size_t i = 0; i < n; i++) {
        double a[D], b[D];
        assert_true(boost_shap(m, x + i * D, a) == boost_shap(m2, x + i * D, b));
        assert_memory_equal(a, b, sizeof a);
        assert_true(p1[i] == p2[i]);
    }
    /* A wrong number of features, a broken tree, a wrong version: refused. */
    boost_model *m3 = NULL;
    assert_int_equal(boost_from_json(back, D + 1, 0, "t", &m3, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, "num_feature"));
    json_object_set_new(back, "version", json_integer(99));
    assert_int_equal(boost_from_json(back, D, 0, "t", &m3, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, "regenerate"));
    json_object_set_new(back, "version", json_integer(BOOST_VERSION));
    char *bad = strdup(txt);
    char *lc = strstr(bad, "left_children\\\":[");
    assert_non_null(lc);
    lc[strlen("left_children\\\":[")] = '5'; /* root's left child out of range or a cycle */
    json_t *bj = json_loads(bad, 0, NULL);
    assert_non_null(bj);
    assert_int_equal(boost_from_json(bj, D, 0, "t", &m3, err, sizeof err), RFM_EFORMAT);
    assert_null(m3);
    printf("    broken tree: %s\n", err);
    json_decref(bj), free(bad);
    json_decref(back), free(txt), free(p1), free(p2), free(x), free(y);
    boost_free(m), boost_free(m2);
}

/* The model file j (boost_to_json's) with its XGBoost text replaced. */
static boost_model *load_text(const json_t *j, const char *text, rfm_status *st, char *err,
                              size_t errlen)
{
    json_t *c = json_copy((json_t *)j);
    assert_non_null(c);
    assert_int_equal(json_object_set_new(c, "xgboost_json", json_string(text)), 0);
    boost_model *m = NULL;
    *st = boost_from_json(c, 0, 0, "t", &m, err, errlen);
    json_decref(c);
    return m;
}

/* The model text's own reader against a JSON library (jansson): a text
 * jansson refuses is refused (RFM_EFORMAT), never a crash, whatever byte
 * is changed or wherever the text is cut; a text both read gives the trees
 * jansson's reading gives (ref_trees). The text of a small fit, cut at 400
 * places, 2,000 single bytes replaced by JSON's structural and number
 * characters, and the members XGBoost writes given twice. */
static void test_model_text_reader(void **state)
{
    (void)state;
    double *x;
    int *y;
    size_t n = 300;
    x = simulated(17, n, &y);
    boost_model *m = fit_vary(x, y, n, 12, 3, -1, 0);
    json_t *j;
    char err[RFM_ERRLEN];
    assert_int_equal(boost_to_json(m, &j, err, sizeof err), RFM_OK);
    const char *orig = json_string_value(json_object_get(j, "xgboost_json"));
    size_t len = strlen(orig);
    char *t = malloc(len + 1);
    rfm_rng g;
    rfm_rng_seed(&g, 3);
    static const char repl[] = "{}[],:\"0123456789eE.-+ tfnu\\";
    long refused = 0, both = 0;
    for (int trial = 0; trial < 2400; trial++) {
        memcpy(t, orig, len + 1);
        size_t at = rfm_rng_below(&g, len);
        if (trial < 400)
            t[at] = '\0'; /* cut */
        else
            t[at] = repl[rfm_rng_below(&g, sizeof repl - 1)];
        rfm_status st;
        boost_model *b = load_text(j, t, &st, err, sizeof err);
        json_t *ref = json_loads(t, 0, NULL);
        if (!ref) {
            if (st != RFM_EFORMAT || b)
                fail_msg(
                    "trial %d: a text jansson refuses was taken (status %d): at %zu '%c': %.40s",
                    trial, st, at, t[at], t + (at > 20 ? at - 20 : 0));
            refused++;
        } else if (st == RFM_OK) {
            both++;
            assert_int_equal(boost_ntrees(b), boost_ntrees(m));
        } else if (st != RFM_EFORMAT) {
            fail_msg("trial %d: status %d: %s", trial, st, err);
        }
        json_decref(ref);
        boost_free(b);
    }
    /* The unchanged text: the same trees as a JSON library reads. */
    rfm_status st;
    boost_model *b = load_text(j, orig, &st, err, sizeof err);
    assert_int_equal(st, RFM_OK);
    size_t nt;
    ref_tree *rt = ref_trees(m, &nt);
    assert_int_equal(nt, boost_ntrees(b));
    json_t *root = json_loads(orig, 0, NULL);
    double bs = strtod(json_string_value(json_object_get(
                           json_object_get(json_object_get(root, "learner"), "learner_model_param"),
                           "base_score")),
                       NULL);
    json_decref(root);
    for (size_t i = 0; i < n; i++) {
        double walk = boost_margin_walk(b, x + i * D), want = log(bs / (1 - bs));
        for (size_t k = 0; k < nt; k++) {
            size_t node = 0;
            while (rt[k].left[node] >= 0) {
                double v = x[i * D + rt[k].feat[node]];
                int left = isnan(v) ? (int)rt[k].dleft[node] : (float)v < (float)rt[k].thr[node];
                node = (size_t)(left ? rt[k].left[node] : rt[k].right[node]);
            }
            want += rt[k].value[node];
        }
        assert_true(fabs(walk - want) <= 1e-9 * (1 + fabs(want)));
    }
    ref_free(rt, nt);
    boost_free(b);
    /* A member given twice: refused, saying so. */
    const char *dups[] = {"\"learner\":", "\"trees\":", "\"left_children\":"};
    for (int k = 0; k < 3; k++) {
        const char *p = strstr(orig, dups[k]);
        assert_non_null(p);
        /* insert a copy of the member's key and a value before the first */
        char *d2 = malloc(len + 64);
        size_t off = (size_t)(p - orig);
        snprintf(d2, len + 64, "%.*s%s%s,%s", (int)off, orig, dups[k],
                 k == 2   ? "[1]"
                 : k == 1 ? "[]"
                          : "{}",
                 p);
        b = load_text(j, d2, &st, err, sizeof err);
        assert_int_equal(st, RFM_EFORMAT);
        assert_null(b);
        printf("    %.*s twice: %s\n", (int)strlen(dups[k]) - 1, dups[k], err);
        free(d2);
    }
    printf("    %ld changed texts refused as jansson refuses them, %ld read by both\n", refused,
           both);
    free(t);
    json_decref(j);
    boost_free(m);
    free(x), free(y);
}

/* Same seed, same data: the same trees (the fit is deterministic with two
 * threads too), and a one-class label or a bad option is refused. */
static void test_deterministic_and_refusals(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 5);
    size_t n = 600;
    double *x = malloc(n * D * sizeof *x);
    int *y = malloc(n * sizeof *y);
    simulate(&rng, n, x, y);
    boost_params p;
    boost_default_params(&p);
    p.rounds = 20;
    p.nthread = 2;
    boost_model *a = NULL, *b = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(boost_fit(x, y, n, D, &p, 0, &a, err, sizeof err), RFM_OK);
    assert_int_equal(boost_fit(x, y, n, D, &p, 0, &b, err, sizeof err), RFM_OK);
    json_t *ja, *jb;
    assert_int_equal(boost_to_json(a, &ja, err, sizeof err), RFM_OK);
    assert_int_equal(boost_to_json(b, &jb, err, sizeof err), RFM_OK);
    assert_true(json_equal(ja, jb));
    json_decref(ja), json_decref(jb);
    boost_free(a), boost_free(b);
    int *one = calloc(n, sizeof *one);
    boost_model *c = NULL;
    assert_int_equal(boost_fit(x, one, n, D, &p, 0, &c, err, sizeof err), RFM_EDATA);
    p.eta = 0;
    assert_int_equal(boost_fit(x, y, n, D, &p, 0, &c, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "eta"));
    boost_default_params(&p);
    x[7] = INFINITY;
    assert_int_equal(boost_fit(x, y, n, D, &p, 0, &c, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "row 1 column 3"));
    assert_null(c);
    free(one), free(x), free(y);
}

/* Recovery: on the band-XOR signal the trees rank held-out rows well (AUC
 * near the Bayes AUC of the simulation, about 0.92) while logistic
 * regression on the same features cannot (AUC near 0.5). */
static void test_recovers_nonlinear_signal(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 77);
    size_t ntr = 4000, nte = 2000;
    double *x = malloc((ntr + nte) * D * sizeof *x);
    int *y = malloc((ntr + nte) * sizeof *y);
    simulate(&rng, ntr + nte, x, y);
    boost_params p;
    boost_default_params(&p);
    p.nthread = 1;
    boost_model *m = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(boost_fit(x, y, ntr, D, &p, 0, &m, err, sizeof err), RFM_OK);
    double *pb = malloc(nte * sizeof *pb), *pl = malloc(nte * sizeof *pl);
    for (size_t i = 0; i < nte; i++)
        pb[i] = sig(boost_margin(m, x + (ntr + i) * D));
    /* Logistic regression needs finite, non-negative features: x2 shifted,
     * x3's missing values as 0. */
    double *xl = malloc((ntr + nte) * D * sizeof *xl);
    for (size_t i = 0; i < (ntr + nte) * D; i++)
        xl[i] = isnan(x[i]) ? 0 : (i % D == 2 ? x[i] + 10 : x[i]);
    static const char *const names[D] = {"a", "b", "c", "d"};
    churn_params cp;
    churn_default_params(&cp);
    churn_model *lm = NULL;
    assert_int_equal(churn_fit(xl, y, ntr, D, names, &cp, &lm, err, sizeof err), RFM_OK);
    assert_int_equal(churn_predict_many(lm, xl + ntr * D, nte, pl, err, sizeof err), RFM_OK);
    double auc_b, auc_l;
    assert_int_equal(metrics_auc(pb, y + ntr, NULL, nte, &auc_b, err, sizeof err), RFM_OK);
    assert_int_equal(metrics_auc(pl, y + ntr, NULL, nte, &auc_l, err, sizeof err), RFM_OK);
    printf("    held-out AUC: boosted %.4f, logistic %.4f\n", auc_b, auc_l);
    assert_true(auc_b > 0.85);
    assert_true(auc_l < 0.7);
    /* The explanation finds the signal: x0 and x1 carry most of |phi|. */
    double imp[D] = {0};
    for (size_t i = 0; i < nte; i++) {
        double phi[D];
        boost_shap(m, x + (ntr + i) * D, phi);
        for (int j = 0; j < D; j++)
            imp[j] += fabs(phi[j]);
    }
    printf("    mean |phi|: %.3f %.3f %.3f %.3f\n", imp[0] / nte, imp[1] / nte, imp[2] / nte,
           imp[3] / nte);
    assert_true(imp[0] > 4 * imp[2] && imp[1] > 4 * imp[2] && imp[0] > 4 * imp[3]);
    churn_free(lm);
    boost_free(m);
    free(x), free(y), free(xl), free(pb), free(pl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_library_loaded_on_demand),
        cmocka_unit_test(test_walk_equals_xgboost),
        cmocka_unit_test(test_flat_walk_equals_node_walk),
        cmocka_unit_test(test_treeshap),
        cmocka_unit_test(test_wide_rows_equal_narrow),
        cmocka_unit_test(test_cells_equal_leaf_rows),
        cmocka_unit_test(test_margin_along),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_model_text_reader),
        cmocka_unit_test(test_deterministic_and_refusals),
        cmocka_unit_test(test_recovers_nonlinear_signal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
