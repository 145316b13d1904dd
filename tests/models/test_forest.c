/* test_forest.c - regression and causal forests: exact fit, known effects,
 * out-of-bag honesty, determinism across thread counts, JSON round trip, bad input. */
#include "testutil.h"

#include <jansson.h>
#include <gsl/gsl_errno.h>
#include <string.h>

#include "forest.h"
#include "rng.h"

/* A single unrestricted tree on the full sample must reproduce every training
 * outcome: checks that routing by bins at fit time agrees with routing by
 * thresholds at prediction time. 200 distinct values < 256 bins. */
static void test_single_tree_interpolates(void **state)
{
    (void)state;
    size_t n = 200, d = 2;
    double X[400], y[200];
    rfm_rng r;
    rfm_rng_seed(&r, 3);
    for (size_t i = 0; i < n; i++) {
        X[i * d] = rfm_rng_normal(&r);
        X[i * d + 1] = (double)(i % 7);
        y[i] = rfm_rng_normal(&r);
    }
    forest_params p;
    forest_default_params(&p, FOREST_REGRESSION);
    p.n_trees = 1;
    p.sample_frac = 1.0;
    p.min_leaf = 1;
    p.max_depth = 64;
    p.max_bins = 256;
    forest *f = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(forest_fit(X, n, d, y, NULL, &p, NULL, &f, err, sizeof err), RFM_OK);
    double md = 0;
    for (size_t i = 0; i < n; i++)
        md = fmax(md, fabs(forest_predict(f, X + i * d) - y[i]));
    report_maxdiff("single tree vs training y", md, 1e-12);
    forest_free(f);
}

/* Binning sorts each feature's values by their bits (a radix sort): values
 * across the whole double range and both signs, in scrambled order, with
 * -0.0 and +0.0 as one value, must still get one bin each, so a single
 * unrestricted tree reproduces every y. */
static void test_bins_over_the_double_range(void **state)
{
    (void)state;
    enum { N = 120 };
    double X[N], y[N];
    for (size_t i = 0; i < N - 2; i++) {
        size_t k = (i * 37) % (N - 2); /* scrambled order */
        double mag = pow(10.0, -300.0 + 600.0 * (double)(k / 2) / (N / 2 - 1));
        X[i] = k % 2 ? -mag : mag;
        y[i] = (double)k;
    }
    X[N - 2] = -0.0, X[N - 1] = 0.0;
    y[N - 2] = y[N - 1] = -7.0;
    forest_params p;
    forest_default_params(&p, FOREST_REGRESSION);
    p.n_trees = 1;
    p.sample_frac = 1.0;
    p.min_leaf = 1;
    p.max_depth = 64;
    p.max_bins = 256;
    forest *f = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(forest_fit(X, N, 1, y, NULL, &p, NULL, &f, err, sizeof err), RFM_OK);
    double md = 0;
    for (size_t i = 0; i < N; i++)
        md = fmax(md, fabs(forest_predict(f, X + i) - y[i]));
    report_maxdiff("single tree over +-1e-300..1e300 and +-0 vs training y", md, 0.0);
    forest_free(f);
}

/* y = 3 * 1{x0 > 0.5} + x1 + N(0, 0.5^2) with a noise feature: the forest
 * predicts the noiseless mean within 0.35 away from the step and the edges. Out-of-bag
 * residual variance must be near the noise variance (0.25) and above the
 * in-sample one, which the trees have partly fitted. */
static void test_regression_recovers_step(void **state)
{
    (void)state;
    size_t n = 3000, d = 3;
    double *X = malloc(n * d * sizeof *X), *y = malloc(n * sizeof *y),
           *oob = malloc(n * sizeof *oob);
    rfm_rng r;
    rfm_rng_seed(&r, 11);
    for (size_t i = 0; i < n; i++) {
        double *x = X + i * d;
        x[0] = rfm_rng_uniform(&r);
        x[1] = rfm_rng_uniform(&r);
        x[2] = rfm_rng_normal(&r);
        y[i] = 3.0 * (x[0] > 0.5) + x[1] + 0.5 * rfm_rng_normal(&r);
    }
    forest_params p;
    forest_default_params(&p, FOREST_REGRESSION);
    p.n_trees = 100;
    p.min_leaf = 20;
    forest *f = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(forest_fit(X, n, d, y, NULL, &p, oob, &f, err, sizeof err), RFM_OK);
    double md = 0;
    /* Interior points: at the edges a forest flattens the x1 slope. */
    for (int a = 0; a < 10; a++)
        for (int b = 1; b < 9; b++) {
            double x[3] = {0.025 + 0.1 * a, 0.05 + 0.1 * b, 0.0};
            if (fabs(x[0] - 0.5) < 0.05)
                continue;
            md = fmax(md, fabs(forest_predict(f, x) - (3.0 * (x[0] > 0.5) + x[1])));
        }
    report_maxdiff("regression forest vs true mean", md, 0.35);
    double ss_oob = 0, ss_in = 0;
    for (size_t i = 0; i < n; i++) {
        double e = y[i] - oob[i], e2 = y[i] - forest_predict(f, X + i * d);
        ss_oob += e * e / (double)n;
        ss_in += e2 * e2 / (double)n;
    }
    printf("    residual variance: out-of-bag %.3f, in-sample %.3f, noise 0.250\n", ss_oob, ss_in);
    assert_true(ss_oob > ss_in);
    assert_near(ss_oob, 0.25, 0.06);
    forest_free(f);
    free(X);
    free(y);
    free(oob);
}

/* tau(x) = 2 * 1{x0 > 0}, y = 2 x1 + w tau + N(0, 1), w ~ Bernoulli(0.5). */
static void simulate_causal(size_t n, uint64_t seed, double *X, double *y, uint8_t *w)
{
    rfm_rng r;
    rfm_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        double *x = X + i * 3;
        x[0] = rfm_rng_normal(&r);
        x[1] = rfm_rng_normal(&r);
        x[2] = rfm_rng_uniform(&r);
        w[i] = (uint8_t)rfm_rng_below(&r, 2);
        y[i] = 2.0 * x[1] + w[i] * 2.0 * (x[0] > 0) + rfm_rng_normal(&r);
    }
}

static void test_causal_step_and_determinism(void **state)
{
    (void)state;
    size_t n = 4000, d = 3;
    double *X = malloc(n * d * sizeof *X), *y = malloc(n * sizeof *y);
    uint8_t *w = malloc(n);
    simulate_causal(n, 5, X, y, w);
    forest_params p;
    forest_default_params(&p, FOREST_CAUSAL);
    p.n_trees = 60;
    p.min_leaf = 20;
    p.n_threads = 1;
    forest *f1 = NULL, *f2 = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(forest_fit(X, n, d, y, w, &p, NULL, &f1, err, sizeof err), RFM_OK);
    p.n_threads = 2;
    assert_int_equal(forest_fit(X, n, d, y, w, &p, NULL, &f2, err, sizeof err), RFM_OK);
    double md = 0, same = 0;
    for (int a = 0; a < 9; a++) {
        double x[3] = {-2.0 + 0.5 * a, 0.3, 0.5};
        if (fabs(x[0]) < 0.6)
            continue;
        double t = forest_predict(f1, x);
        md = fmax(md, fabs(t - 2.0 * (x[0] > 0)));
        same = fmax(same, fabs(t - forest_predict(f2, x)));
    }
    report_maxdiff("causal forest vs true step effect (|x0| >= 0.6)", md, 0.5);
    report_maxdiff("1 thread vs 2 threads", same, 0.0);
    forest_free(f1);
    forest_free(f2);
    free(X);
    free(y);
    free(w);
}

/* forest_predict_rows walks blocks of rows through each tree together; every
 * row must still get forest_predict's value exactly, for a row list in any
 * order, a count that is no multiple of the block or walk widths, both kinds;
 * and forest_head(f, B) is the forest a B-tree fit gives. */
static void test_predict_rows_matches_pointwise(void **state)
{
    (void)state;
    size_t n = 3001, d = 3, m = 1003;
    double *X = malloc(n * d * sizeof *X), *y = malloc(n * sizeof *y);
    double *out = malloc(n * sizeof *out);
    size_t *rows = malloc(m * sizeof *rows);
    uint8_t *w = malloc(n);
    simulate_causal(n, 11, X, y, w);
    for (size_t r = 0; r < m; r++)
        rows[r] = (r * 7919) % n;
    char err[RFM_ERRLEN];
    for (int kind = 0; kind < 2; kind++) {
        forest_params p;
        forest_default_params(&p, kind ? FOREST_CAUSAL : FOREST_REGRESSION);
        p.n_trees = 37;
        p.min_leaf = kind ? 20 : 5;
        forest *f = NULL;
        assert_int_equal(forest_fit(X, n, d, y, kind ? w : NULL, &p, NULL, &f, err, sizeof err),
                         RFM_OK);
        forest_predict_rows(f, X, d, NULL, n, out);
        size_t differ = 0;
        for (size_t i = 0; i < n; i++)
            differ += out[i] != forest_predict(f, X + i * d);
        forest_predict_rows(f, X, d, rows, m, out);
        for (size_t r = 0; r < m; r++)
            differ += out[r] != forest_predict(f, X + rows[r] * d);
        printf("    %s: %zu of %zu batch predictions differ from pointwise\n",
               kind ? "causal" : "regression", differ, n + m);
        assert_int_equal(differ, 0);
        /* The first 12 trees are the forest a 12-tree fit gives. */
        forest *h = forest_head(f, 12), *g = NULL;
        assert_non_null(h);
        assert_null(forest_head(f, 38));
        p.n_trees = 12;
        assert_int_equal(forest_fit(X, n, d, y, kind ? w : NULL, &p, NULL, &g, err, sizeof err),
                         RFM_OK);
        assert_int_equal(forest_n_trees(h), 12);
        assert_int_equal(forest_n_nodes(h), forest_n_nodes(g));
        size_t hd = 0;
        for (size_t i = 0; i < n; i++)
            hd += forest_predict(h, X + i * d) != forest_predict(g, X + i * d);
        json_t *jh = NULL, *jg = NULL;
        assert_int_equal(forest_to_json(h, &jh, err, sizeof err), RFM_OK);
        assert_int_equal(forest_to_json(g, &jg, err, sizeof err), RFM_OK);
        assert_true(json_equal(jh, jg));
        json_decref(jh), json_decref(jg);
        assert_int_equal(hd, 0);
        forest_free(h), forest_free(g);
        forest_free(f);
    }
    free(X), free(y), free(out), free(rows), free(w);
}

static char *dump(const json_t *j) { return json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17)); }

static void test_json_round_trip_and_validation(void **state)
{
    (void)state;
    size_t n = 1000, d = 3;
    double *X = malloc(n * d * sizeof *X), *y = malloc(n * sizeof *y);
    uint8_t *w = malloc(n);
    simulate_causal(n, 9, X, y, w);
    char err[RFM_ERRLEN];
    for (int kind = 0; kind < 2; kind++) {
        forest_params p;
        forest_default_params(&p, (forest_kind)kind);
        p.n_trees = 20;
        p.min_leaf = 10;
        forest *f = NULL, *g = NULL;
        assert_int_equal(forest_fit(X, n, d, y, w, &p, NULL, &f, err, sizeof err), RFM_OK);
        json_t *j = NULL;
        assert_int_equal(forest_to_json(f, &j, err, sizeof err), RFM_OK);
        char *s = dump(j);
        json_t *back = json_loads(s, 0, NULL);
        assert_non_null(back);
        assert_int_equal(forest_from_json(back, &g, err, sizeof err), RFM_OK);
        double md = 0;
        for (size_t i = 0; i < n; i++)
            md = fmax(md, fabs(forest_predict(f, X + i * d) - forest_predict(g, X + i * d)));
        report_maxdiff(kind ? "causal JSON round trip" : "regression JSON round trip", md, 0.0);
        forest_free(g);
        g = NULL;

        /* A child pointing back to the root would loop forever: refused. */
        json_t *ch = json_object_get(back, "child");
        json_t *fe = json_object_get(back, "feature");
        size_t k = 0;
        while (json_integer_value(json_array_get(fe, k)) < 0)
            k++;
        json_array_set_new(ch, k, json_integer(0));
        assert_int_equal(forest_from_json(back, &g, err, sizeof err), RFM_EFORMAT);
        assert_non_null(strstr(err, "'child'"));
        json_object_del(back, "leaf_value");
        assert_int_equal(forest_from_json(back, &g, err, sizeof err), RFM_EFORMAT);
        assert_null(g);
        json_decref(back);
        free(s);
        json_decref(j);
        forest_free(f);
    }
    free(X);
    free(y);
    free(w);
}

static void test_bad_input(void **state)
{
    (void)state;
    double X[8] = {0, 1, 2, 3, 4, 5, 6, 7}, y[8] = {0, 1, 0, 1, 0, 1, 0, 1};
    uint8_t w[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    forest_params p;
    forest_default_params(&p, FOREST_CAUSAL);
    forest *f = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(forest_fit(X, 8, 1, y, w, &p, NULL, &f, err, sizeof err), RFM_EDATA);
    w[3] = 2;
    assert_int_equal(forest_fit(X, 8, 1, y, w, &p, NULL, &f, err, sizeof err), RFM_EINVAL);
    p.kind = FOREST_REGRESSION;
    X[5] = NAN;
    assert_int_equal(forest_fit(X, 8, 1, y, NULL, &p, NULL, &f, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "X[5][0]"));
    X[5] = 5;
    p.sample_frac = 0;
    assert_int_equal(forest_fit(X, 8, 1, y, NULL, &p, NULL, &f, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "sample_frac"));
    assert_null(f);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_tree_interpolates),
        cmocka_unit_test(test_bins_over_the_double_range),
        cmocka_unit_test(test_regression_recovers_step),
        cmocka_unit_test(test_causal_step_and_determinism),
        cmocka_unit_test(test_predict_rows_matches_pointwise),
        cmocka_unit_test(test_json_round_trip_and_validation),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
