/* test_churn.c - the churn model against independent references: closed-form
 * and gradient-descent fits, finite differences, simulation from known
 * coefficients, brute-force Shapley values and a counterfactual grid. */
#include "testutil.h"

#include <float.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "bgnbd.h"
#include "churn.h"
#include "jsonout.h"
#include "date.h"
#include "rng.h"
#include "score.h"

static const char *const RFM_NAMES[] = {"recency", "frequency", "monetary"};

/* Log-odds true model on log1p(raw) features; beta = (b0, b_rec, b_freq, b_mon). */
static const double TRUE_BETA[4] = {-2.0, 0.8, -0.9, -0.2};

static double sig(double t) { return 1.0 / (1.0 + exp(-t)); }

/* RFM-like customers: recency ~ exponential (mean 60 days), frequency
 * 1 + geometric (mean ~3), monetary = frequency x lognormal order value;
 * labels drawn from the logistic model beta on log1p of the raw values. */
static void simulate(rfm_rng *rng, size_t n, const double *beta, double *x, int *y)
{
    for (size_t i = 0; i < n; i++) {
        double rec = -60.0 * log(1.0 - rfm_rng_uniform(rng));
        double freq = 1.0 + floor(-3.0 * log(1.0 - rfm_rng_uniform(rng)));
        double mon = freq * exp(3.0 + 0.5 * rfm_rng_normal(rng));
        x[i * 3 + 0] = rec;
        x[i * 3 + 1] = freq;
        x[i * 3 + 2] = mon;
        double eta = beta[0] + beta[1] * log1p(rec) + beta[2] * log1p(freq) + beta[3] * log1p(mon);
        y[i] = rfm_rng_uniform(rng) < sig(eta);
    }
}

static churn_model *fit_ok(const double *x, const int *y, size_t n, size_t d,
                           const char *const *names, double lambda)
{
    churn_params par;
    churn_default_params(&par);
    par.lambda = lambda;
    churn_model *m = NULL;
    char err[RFM_ERRLEN] = "";
    rfm_status st = churn_fit(x, y, n, d, names, &par, &m, err, sizeof err);
    if (st != RFM_OK)
        fail_msg("churn_fit: %s", err);
    return m;
}

/* The test's own standardisation (population sd), written out again. */
static void standardise(const double *x, size_t n, size_t d, double *s)
{
    for (size_t j = 0; j < d; j++) {
        double mu = 0.0, v = 0.0;
        for (size_t i = 0; i < n; i++)
            mu += log1p(x[i * d + j]) / (double)n;
        for (size_t i = 0; i < n; i++)
            v += pow(log1p(x[i * d + j]) - mu, 2) / (double)n;
        for (size_t i = 0; i < n; i++)
            s[i * d + j] = (log1p(x[i * d + j]) - mu) / sqrt(v);
    }
}

/* Gradient of F = -loglik + lambda/2 |w|^2, straight from the definition. */
static void naive_grad(const double *s, const int *y, size_t n, size_t d, double lambda,
                       const double *th, double *g)
{
    for (size_t a = 0; a <= d; a++)
        g[a] = a ? lambda * th[a] : 0.0;
    for (size_t i = 0; i < n; i++) {
        double eta = th[0];
        for (size_t j = 0; j < d; j++)
            eta += th[j + 1] * s[i * d + j];
        double r = sig(eta) - y[i];
        g[0] += r;
        for (size_t j = 0; j < d; j++)
            g[j + 1] += r * s[i * d + j];
    }
}

static void model_theta(const churn_model *m, double *th)
{
    churn_info in;
    churn_info_get(m, &in);
    th[0] = in.intercept;
    for (size_t j = 0; j < in.d; j++)
        th[j + 1] = in.weights[j];
}

/* ---- fits ---------------------------------------------------------------- */

/* One binary feature: raw 0 or e-1 (log1p = 0 or 1, standardised -1 or +1),
 * 4 customers each, 1 of 4 and 3 of 4 churned. By symmetry b = 0 and
 *   dF/dw = 8 (sigmoid(w) - 3/4) + lambda w = 0,
 * so w = log 3 exactly for lambda = 0, and the root of that scalar equation
 * (found here by bisection) for lambda > 0. */
static void test_hand_example(void **state)
{
    (void)state;
    double x[8];
    int y[8] = {1, 0, 0, 0, 1, 1, 1, 0};
    for (int i = 0; i < 8; i++)
        x[i] = i < 4 ? 0.0 : expm1(1.0);
    const char *const nm[] = {"flag"};
    double lambdas[] = {0.0, 2.0, 10.0}, maxdiff = 0.0;
    for (int k = 0; k < 3; k++) {
        double lam = lambdas[k], lo = 0.0, hi = 5.0;
        for (int it = 0; it < 200; it++) {
            double mid = 0.5 * (lo + hi);
            if (8.0 * (sig(mid) - 0.75) + lam * mid > 0.0)
                hi = mid;
            else
                lo = mid;
        }
        double w_exp = lam == 0.0 ? log(3.0) : 0.5 * (lo + hi);
        churn_model *m = fit_ok(x, y, 8, 1, nm, lam);
        double th[2];
        model_theta(m, th);
        maxdiff = fmax(maxdiff, fmax(fabs(th[0]), fabs(th[1] - w_exp)));
        printf("    lambda %g: w = %.12f (hand %.12f), b = %.2g\n", lam, th[1], w_exp, th[0]);
        churn_free(m);
    }
    report_maxdiff("Newton vs hand-computed optimum (binary feature)", maxdiff, 1e-9);
}

static double max_abs3(const double *v) { return fmax(fabs(v[0]), fmax(fabs(v[1]), fabs(v[2]))); }

/* Four customers, two features, lambda = 1: the analytic gradient (the
 * test's own formula) vanishes at the fit, and churn_objective's gradient
 * and Hessian match central finite differences of its value/gradient. */
static void test_gradient_hessian(void **state)
{
    (void)state;
    const double x[] = {3, 120, 40, 10, 1, 35, 7, 900};
    const int y[] = {1, 0, 1, 0};
    const char *const nm[] = {"a", "b"};
    const size_t n = 4, d = 2, D = 3;
    churn_model *m = fit_ok(x, y, n, d, nm, 1.0);
    double s[8], th[3], g[3], gl[3], H[9];
    standardise(x, n, d, s);
    model_theta(m, th);
    naive_grad(s, y, n, d, 1.0, th, g);
    report_maxdiff("4 points: |gradient| of penalised objective at the fit", max_abs3(g), 1e-10);

    /* At the fit and at an arbitrary point. */
    double pts[2][3] = {{th[0], th[1], th[2]}, {0.3, -1.2, 0.7}};
    double gd = 0.0, hd = 0.0;
    for (int p = 0; p < 2; p++) {
        churn_objective(s, y, n, d, 1.0, pts[p], gl, H);
        for (size_t a = 0; a < D; a++) {
            double h = 1e-5, tp[3], tm[3], gp[3], gm[3];
            memcpy(tp, pts[p], sizeof tp);
            memcpy(tm, pts[p], sizeof tm);
            tp[a] += h;
            tm[a] -= h;
            double fd = (churn_objective(s, y, n, d, 1.0, tp, gp, NULL) -
                         churn_objective(s, y, n, d, 1.0, tm, gm, NULL)) /
                        (2 * h);
            gd = fmax(gd, fabs(fd - gl[a]));
            for (size_t c = 0; c < D; c++)
                hd = fmax(hd, fabs((gp[c] - gm[c]) / (2 * h) - H[c * D + a]));
        }
    }
    report_maxdiff("gradient vs central differences of F", gd, 1e-8);
    report_maxdiff("Hessian vs central differences of the gradient", hd, 1e-8);
    churn_free(m);
}

/* Plain gradient descent on the same objective, step 1/L with L a bound on
 * the Hessian's largest eigenvalue (trace of X^T X / 4 + lambda). */
static void gd_fit(const double *s, const int *y, size_t n, size_t d, double lambda, double *th)
{
    double L = lambda;
    for (size_t i = 0; i < n; i++) {
        L += 0.25;
        for (size_t j = 0; j < d; j++)
            L += 0.25 * s[i * d + j] * s[i * d + j];
    }
    double g[16];
    memset(th, 0, (d + 1) * sizeof *th);
    for (long it = 0; it < 2000000; it++) {
        naive_grad(s, y, n, d, lambda, th, g);
        double gm = 0.0;
        for (size_t a = 0; a <= d; a++) {
            gm = fmax(gm, fabs(g[a]));
            th[a] -= g[a] / L;
        }
        if (gm < 1e-10)
            return;
    }
    fail_msg("gradient descent did not reach |g| < 1e-10");
}

static void test_newton_vs_gradient_descent(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 2024);
    enum { N = 300 };
    static double x[N * 5], s[N * 5];
    static int y[N];
    double maxdiff = 0.0;
    /* RFM data (d = 3) and 5 features with extra noise columns (d = 5). */
    simulate(&rng, N, TRUE_BETA, x, y);
    standardise(x, N, 3, s);
    double th[16], tn[16];
    gd_fit(s, y, N, 3, 1.0, th);
    churn_model *m = fit_ok(x, y, N, 3, RFM_NAMES, 1.0);
    model_theta(m, tn);
    for (int a = 0; a <= 3; a++)
        maxdiff = fmax(maxdiff, fabs(th[a] - tn[a]));
    churn_free(m);

    const char *const nm5[] = {"f1", "f2", "f3", "f4", "f5"};
    for (int i = 0; i < N; i++) {
        double u = -log(1.0 - rfm_rng_uniform(&rng)) * 10;
        for (int j = 0; j < 5; j++)
            x[i * 5 + j] = u * (j + 1) * rfm_rng_uniform(&rng) + j;
        y[i] = rfm_rng_uniform(&rng) < sig(0.2 * log1p(x[i * 5]) - 0.3 * log1p(x[i * 5 + 3]));
    }
    standardise(x, N, 5, s);
    gd_fit(s, y, N, 5, 0.1, th);
    m = fit_ok(x, y, N, 5, nm5, 0.1);
    model_theta(m, tn);
    for (int a = 0; a <= 5; a++)
        maxdiff = fmax(maxdiff, fabs(th[a] - tn[a]));
    churn_free(m);
    report_maxdiff("Newton vs gradient descent (d = 3, lambda 1; d = 5, lambda 0.1)", maxdiff,
                   1e-6);
}

/* n = 20000 customers from known coefficients; the unpenalised fit must land
 * within 4 standard errors (from the Fisher information, inverted here). */
static void test_recovery(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 11);
    enum { N = 20000 };
    static double x[N * 3];
    static int y[N];
    simulate(&rng, N, TRUE_BETA, x, y);
    churn_model *m = fit_ok(x, y, N, 3, RFM_NAMES, 0.0);
    churn_info in;
    churn_info_get(m, &in);
    /* back to the log1p scale: beta_j = w_j / sd_j, beta_0 = b - sum w_j mu_j / sd_j */
    double beta[4] = {in.intercept, 0, 0, 0};
    for (int j = 0; j < 3; j++) {
        beta[j + 1] = in.weights[j] / in.sd[j];
        beta[0] -= in.weights[j] * in.mean[j] / in.sd[j];
    }
    gsl_matrix *I = gsl_matrix_calloc(4, 4);
    for (int i = 0; i < N; i++) {
        double z[4] = {1, log1p(x[i * 3]), log1p(x[i * 3 + 1]), log1p(x[i * 3 + 2])};
        double eta = 0;
        for (int a = 0; a < 4; a++)
            eta += beta[a] * z[a];
        double v = sig(eta) * (1 - sig(eta));
        for (int a = 0; a < 4; a++)
            for (int c = 0; c < 4; c++)
                *gsl_matrix_ptr(I, a, c) += v * z[a] * z[c];
    }
    assert_int_equal(gsl_linalg_cholesky_decomp1(I), GSL_SUCCESS);
    assert_int_equal(gsl_linalg_cholesky_invert(I), GSL_SUCCESS);
    double zmax = 0.0;
    for (int a = 0; a < 4; a++) {
        double se = sqrt(gsl_matrix_get(I, a, a));
        double zs = (beta[a] - TRUE_BETA[a]) / se;
        printf("    beta[%d] = %+.4f (true %+.4f, se %.4f, z %+.2f)\n", a, beta[a], TRUE_BETA[a],
               se, zs);
        zmax = fmax(zmax, fabs(zs));
    }
    printf("    Newton: %d iterations, log-likelihood %.6f, max |gradient| %.2g\n",
           in.fit.iterations, in.fit.log_likelihood, in.fit.grad_max);
    assert_true(in.fit.converged && in.fit.iterations < 20 && in.fit.grad_max < 1e-6);
    report_maxdiff("recovered coefficients, |z| in standard errors", zmax, 4.0);
    gsl_matrix_free(I);
    churn_free(m);
}

static void test_separable(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 5);
    enum { N = 400 };
    static double x[N * 3];
    static int y[N];
    simulate(&rng, N, TRUE_BETA, x, y);
    for (int i = 0; i < N; i++) /* churned exactly when recency > 60 days */
        y[i] = x[i * 3] > 60.0;
    churn_model *m = fit_ok(x, y, N, 3, RFM_NAMES, 1.0);
    churn_info in;
    churn_info_get(m, &in);
    printf("    lambda 1: converged in %d iterations, w = (%.3f, %.3f, %.3f)\n", in.fit.iterations,
           in.weights[0], in.weights[1], in.weights[2]);
    assert_true(isfinite(in.weights[0]) && in.weights[0] > 1.0 && in.fit.grad_max < 1e-6);
    churn_free(m);

    churn_params par;
    churn_default_params(&par);
    par.lambda = 0.0;
    churn_model *none = NULL;
    char err[RFM_ERRLEN] = "";
    assert_int_equal(churn_fit(x, y, N, 3, RFM_NAMES, &par, &none, err, sizeof err),
                     RFM_ENOCONVERGE);
    printf("    lambda 0: %s\n", err);
    assert_null(none);
    assert_non_null(strstr(err, "separable"));

    /* Quasi-complete separation: one group all retained, the other mixed.
     * No theta separates strictly, but the MLE still runs off to infinity;
     * the fit must say so instead of returning a huge weight. */
    double xq[12];
    int yq[12];
    for (int i = 0; i < 12; i++) {
        xq[i] = i < 6 ? 0.0 : 5.0;
        yq[i] = i < 6 ? 0 : i % 2;
    }
    const char *const nm[] = {"flag"};
    assert_int_equal(churn_fit(xq, yq, 12, 1, nm, &par, &none, err, sizeof err), RFM_ENOCONVERGE);
    printf("    quasi-separated, lambda 0: %s\n", err);
    assert_null(none);
    assert_non_null(strstr(err, "separable"));
}

static void test_bad_fit_input(void **state)
{
    (void)state;
    double x[6 * 2] = {1, 5, 2, 5, 3, 5, 4, 5, 5, 5, 6, 5};
    int y[6] = {0, 1, 0, 1, 1, 0};
    const char *const nm[] = {"a", "b"}, *const dup[] = {"a", "a"};
    churn_params par;
    churn_default_params(&par);
    churn_model *m = NULL;
    char err[RFM_ERRLEN] = "";
    /* Feature b is constant: not identified without a penalty... */
    par.lambda = 0.0;
    assert_int_equal(churn_fit(x, y, 6, 2, nm, &par, &m, err, sizeof err), RFM_EDATA);
    assert_non_null(strstr(err, "'b'"));
    /* ...and gets weight 0 with one. */
    par.lambda = 1.0;
    assert_int_equal(churn_fit(x, y, 6, 2, nm, &par, &m, err, sizeof err), RFM_OK);
    churn_info in;
    churn_info_get(m, &in);
    assert_near(in.weights[1], 0.0, 1e-15);
    churn_free(m);
    m = NULL;
    assert_int_equal(churn_fit(x, y, 6, 2, dup, &par, &m, err, sizeof err), RFM_EINVAL);
    x[7] = -1.0;
    assert_int_equal(churn_fit(x, y, 6, 2, nm, &par, &m, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "row 3 feature 'b' = -1"));
    x[7] = NAN;
    assert_int_equal(churn_fit(x, y, 6, 2, nm, &par, &m, err, sizeof err), RFM_EINVAL);
    x[7] = 5.0;
    y[2] = 2;
    assert_int_equal(churn_fit(x, y, 6, 2, nm, &par, &m, err, sizeof err), RFM_EINVAL);
    int y0[6] = {0};
    assert_int_equal(churn_fit(x, y0, 6, 2, nm, &par, &m, err, sizeof err), RFM_EDATA);
    par.threshold_medium = 0.9;
    assert_int_equal(churn_fit(x, y0, 6, 2, nm, &par, &m, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "threshold_medium"));
    assert_null(m);
}

/* ---- scoring ------------------------------------------------------------- */

static churn_model *rfm_model(uint64_t seed, size_t n)
{
    rfm_rng rng;
    rfm_rng_seed(&rng, seed);
    double *x = malloc(n * 3 * sizeof *x);
    int *y = malloc(n * sizeof *y);
    assert_true(x && y);
    simulate(&rng, n, TRUE_BETA, x, y);
    churn_model *m = fit_ok(x, y, n, 3, RFM_NAMES, 1.0);
    free(x);
    free(y);
    return m;
}

/* A model loaded from hand-written JSON, for weights no fit would give. */
static churn_model *json_model(double wr, double wf, double wm, double sd)
{
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"format\":\"rfm-churn\",\"version\":1,\"transform\":\"log1p-standardise\","
             "\"features\":[\"recency\",\"frequency\",\"monetary\"],\"mean\":[3,1,4],"
             "\"sd\":[%.17g,%.17g,%.17g],\"weights\":[%.17g,%.17g,%.17g],\"intercept\":-0.5,"
             "\"lambda\":1,\"threshold_medium\":0.3,\"threshold_high\":0.6,\"fit\":{"
             "\"iterations\":1,\"converged\":true,\"log_likelihood\":-1,\"objective\":1,"
             "\"grad_max\":0,\"last_step\":0,\"n\":10,\"n_positive\":5}}",
             sd, sd, sd, wr, wf, wm);
    json_error_t je;
    json_t *j = json_loads(buf, 0, &je);
    assert_non_null(j);
    churn_model *m = NULL;
    char err[RFM_ERRLEN] = "";
    rfm_status st = churn_from_json(j, &m, err, sizeof err);
    json_decref(j);
    if (st != RFM_OK)
        fail_msg("churn_from_json: %s", err);
    return m;
}

static void test_extreme_inputs(void **state)
{
    (void)state;
    const double vals[] = {0.0, 1e-300, 1.0, 1e9, 1e12, 1e300, DBL_MAX};
    churn_model *models[3] = {rfm_model(3, 3000), json_model(40, -40, 1, 1),
                              json_model(1e300, -1e300, 1e300, 1e-300)};
    char err[RFM_ERRLEN] = "";
    size_t checked = 0, refused = 0;
    double pmin = 1.0, pmax = 0.0;
    for (int k = 0; k < 3; k++)
        for (int a = 0; a < 7; a++)
            for (int b = 0; b < 7; b++)
                for (int c = 0; c < 7; c++) {
                    double x[3] = {vals[a], vals[b], vals[c]}, p = -1.0;
                    rfm_status st = churn_predict(models[k], x, &p, err, sizeof err);
                    if (st != RFM_OK) { /* only inf - inf in the absurd model */
                        assert_int_equal(k, 2);
                        assert_int_equal(st, RFM_EINVAL);
                        refused++;
                        continue;
                    }
                    assert_true(p > 0.0 && p < 1.0);
                    pmin = fmin(pmin, p);
                    pmax = fmax(pmax, p);
                    checked++;
                }
    printf("    %zu extreme inputs: p in [%.3g, 1 - %.3g]; %zu refused as inf - inf\n", checked,
           pmin, 1.0 - pmax, refused);
    assert_true(pmax < 1.0 && pmin > 0.0);
    /* Bad values are refused, naming the feature. */
    double bad[3] = {10, -1, 5}, p = 0.5;
    assert_int_equal(churn_predict(models[0], bad, &p, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "'frequency' = -1"));
    bad[1] = 1;
    bad[2] = INFINITY;
    assert_int_equal(churn_predict(models[0], bad, &p, err, sizeof err), RFM_EINVAL);
    bad[2] = NAN;
    assert_int_equal(churn_predict(models[0], bad, &p, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "'monetary'"));
    assert_true(p == 0.5);
    for (int k = 0; k < 3; k++)
        churn_free(models[k]);
}

/* Shapley values by their definition: v(S) = mean over background rows of
 * eta with the features in S taken from x and the rest from the row; phi_j =
 * sum over S not containing j of |S|!(d-|S|-1)!/d! (v(S+j) - v(S)). */
static void brute_shapley(const churn_info *in, const double *bg, size_t nb, const double *x,
                          double *phi, double *base)
{
    const size_t d = 3;
    double v[8];
    for (unsigned S = 0; S < 8; S++) {
        double acc = 0.0;
        for (size_t r = 0; r < nb; r++) {
            double eta = in->intercept;
            for (size_t j = 0; j < d; j++) {
                double raw = (S >> j) & 1 ? x[j] : bg[r * d + j];
                eta += in->weights[j] * (log1p(raw) - in->mean[j]) / in->sd[j];
            }
            acc += eta;
        }
        v[S] = acc / (double)nb;
    }
    const double wt[3] = {1.0 / 3, 1.0 / 6, 1.0 / 3}; /* |S| = 0, 1, 2 for d = 3 */
    for (size_t j = 0; j < d; j++) {
        phi[j] = 0.0;
        for (unsigned S = 0; S < 8; S++)
            if (!((S >> j) & 1))
                phi[j] += wt[__builtin_popcount(S)] * (v[S | (1u << j)] - v[S]);
    }
    *base = v[0];
}

static void test_shap(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 77);
    enum { NB = 2000 };
    static double bg[NB * 3];
    static int yb[NB];
    simulate(&rng, NB, TRUE_BETA, bg, yb);
    churn_model *m = fit_ok(bg, yb, NB, 3, RFM_NAMES, 1.0);
    churn_info in;
    churn_info_get(m, &in);
    char err[RFM_ERRLEN] = "";
    double add = 0.0, ref = 0.0, shap = 0.0;
    for (int t = 0; t < 20000; t++) {
        /* Wide random customers: recency up to 3 years, up to 200 orders. */
        double x[3] = {1095.0 * rfm_rng_uniform(&rng), floor(200.0 * pow(rfm_rng_uniform(&rng), 3)),
                       0.0};
        x[2] = x[1] * exp(3.0 + rfm_rng_normal(&rng));
        double base, c[3], logit, p;
        assert_int_equal(churn_explain(m, x, &base, c, &logit, &p, err, sizeof err), RFM_OK);
        double pp;
        assert_int_equal(churn_predict(m, x, &pp, err, sizeof err), RFM_OK);
        assert_true(pp == p);
        add = fmax(add, fabs(base + c[0] + c[1] + c[2] - (log(p) - log1p(-p))));
        for (int j = 0; j < 3; j++)
            ref = fmax(ref, fabs(c[j] - in.weights[j] * (log1p(x[j]) - in.mean[j]) / in.sd[j]));
        if (t < 20) {
            double phi[3], b0;
            brute_shapley(&in, bg, NB, x, phi, &b0);
            shap = fmax(shap, fabs(b0 - base));
            for (int j = 0; j < 3; j++)
                shap = fmax(shap, fabs(phi[j] - c[j]));
        }
    }
    report_maxdiff("additivity: base + sum(contrib) - logit(p), 20000 random customers", add, 1e-9);
    report_maxdiff("contributions vs w_j (log1p(x_j) - mu_j) / sd_j", ref, 1e-12);
    report_maxdiff("contributions vs brute-force Shapley over all coalitions", shap, 1e-9);

    /* Global importance: mean |contribution| over the background. */
    double imp[3], acc[3] = {0};
    assert_int_equal(churn_global_importance(m, bg, NB, imp, err, sizeof err), RFM_OK);
    for (int i = 0; i < NB; i++) {
        double base, c[3];
        assert_int_equal(churn_explain(m, bg + 3 * i, &base, c, NULL, NULL, err, sizeof err),
                         RFM_OK);
        for (int j = 0; j < 3; j++)
            acc[j] += fabs(c[j]) / NB;
    }
    printf("    global importance: recency %.4f, frequency %.4f, monetary %.4f\n", imp[0], imp[1],
           imp[2]);
    double gd = 0.0;
    for (int j = 0; j < 3; j++)
        gd = fmax(gd, fabs(imp[j] - acc[j]));
    report_maxdiff("global importance vs mean |explain| contribution", gd, 1e-12);
    churn_free(m);
}

static void test_risk_levels(void **state)
{
    (void)state;
    churn_model *m = json_model(1, -1, 0, 1);
    char err[RFM_ERRLEN] = "";
    assert_int_equal(churn_risk_level(m, 0.2999), CHURN_RISK_LOW);
    assert_int_equal(churn_risk_level(m, 0.3), CHURN_RISK_MEDIUM);
    assert_int_equal(churn_risk_level(m, 0.5999), CHURN_RISK_MEDIUM);
    assert_int_equal(churn_risk_level(m, 0.6), CHURN_RISK_HIGH);
    assert_string_equal(churn_risk_name(CHURN_RISK_HIGH), "high");
    assert_int_equal(churn_set_thresholds(m, 0.7, 0.5, err, sizeof err), RFM_EINVAL);
    assert_int_equal(churn_set_thresholds(m, 0.1, 0.2, err, sizeof err), RFM_OK);
    assert_int_equal(churn_risk_level(m, 0.15), CHURN_RISK_MEDIUM);
    churn_free(m);
}

/* ---- counterfactual ------------------------------------------------------ */

/* Grid search: p after n = 0..n_max purchases, with the test's own formula. */
static void grid_probs(const churn_info *in, const double *x, int n_max, double *p)
{
    double v = x[2] / (x[1] >= 1.0 ? x[1] : 1.0);
    for (int k = 0; k <= n_max; k++) {
        double raw[3] = {k ? 0.0 : x[0], x[1] + k, x[2] + k * v};
        double eta = in->intercept;
        for (int j = 0; j < 3; j++)
            eta += in->weights[j] * (log1p(raw[j]) - in->mean[j]) / in->sd[j];
        p[k] = sig(eta);
    }
}

static void check_cf_against_grid(churn_model *m, rfm_rng *rng, int ncust, int n_max,
                                  size_t counts[4])
{
    churn_info in;
    churn_info_get(m, &in);
    char err[RFM_ERRLEN] = "";
    double p[64];
    const double ts[] = {0.2, 0.4, 0.6};
    for (int c = 0; c < ncust; c++) {
        double x[3] = {400.0 * rfm_rng_uniform(rng), floor(8.0 * rfm_rng_uniform(rng)), 0.0};
        x[2] = (x[1] + (c % 5 == 0)) * exp(3.0 + rfm_rng_normal(rng)); /* some f = 0, m > 0 */
        grid_probs(&in, x, n_max, p);
        for (int k = 2; k <= n_max; k++)
            if (p[k] < p[k - 1] && p[1] < p[2]) { /* falls again after rising */
                counts[3]++;
                break;
            }
        for (int ti = 0; ti < 3; ti++) {
            double t = ts[ti];
            churn_counterfactual_result r;
            assert_int_equal(churn_counterfactual(m, x, t, n_max, &r, err, sizeof err), RFM_OK);
            int best = -1;
            for (int k = 0; k <= n_max && best < 0; k++)
                if (p[k] < t)
                    best = k;
            counts[r.kind]++;
            if (best == 0) {
                assert_int_equal(r.kind, CHURN_CF_NOT_NEEDED);
            } else if (best < 0) {
                assert_int_equal(r.kind, CHURN_CF_NONE);
                for (int k = 1; k <= n_max; k++)
                    assert_true(r.probability_after <= p[k] + 1e-12);
            } else {
                assert_int_equal(r.kind, CHURN_CF_PURCHASES);
                assert_int_equal(r.n_purchases, best);
                double pa;
                assert_int_equal(churn_predict(m, r.x_after, &pa, err, sizeof err), RFM_OK);
                assert_true(pa < t && pa == r.probability_after);
                assert_true(r.x_after[0] == 0.0 && r.x_after[1] == x[1] + best);
                for (int k = 0; k < best; k++) /* nothing smaller works */
                    assert_true(p[k] >= t);
            }
        }
    }
}

static void test_counterfactual_vs_grid(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 31);
    size_t counts[4] = {0};
    churn_model *m = rfm_model(9, 3000);
    check_cf_against_grid(m, &rng, 3000, 10, counts);
    churn_free(m);
    /* Perverse models no fit on real data would give, so that the grid also
     * meets NONE and p(x(n)) that is not monotone in n: frequency raising
     * churn and monetary lowering it, or purchases only making things worse. */
    m = json_model(2.0, 3.0, -3.2, 1.0);
    check_cf_against_grid(m, &rng, 3000, 20, counts);
    churn_free(m);
    m = json_model(0.2, 2.0, 0.0, 1.0);
    check_cf_against_grid(m, &rng, 1000, 5, counts);
    churn_free(m);
    printf("    counterfactuals vs grid: %zu not needed, %zu found, %zu none within bounds; "
           "%zu customers with p(x(n)) not monotone in n\n",
           counts[0], counts[1], counts[2], counts[3]);
    assert_true(counts[0] > 0 && counts[1] > 0 && counts[2] > 0 && counts[3] > 0);

    /* Spend at the top of the double range: no overflow, no error (the
     * second model makes spend raise churn, so the scan must run into the
     * overflow bound). */
    char err0[RFM_ERRLEN] = "";
    const double huge[][3] = {
        {1e9, 0, DBL_MAX}, {1e9, 1, DBL_MAX}, {1e9, 0, 0}, {1e9, 1e300, 1e300}};
    for (int h = 0; h < 8; h++) {
        m = h < 4 ? rfm_model(9, 3000) : json_model(1.0, -1.0, 1.0, 1.0);
        churn_counterfactual_result r;
        assert_int_equal(churn_counterfactual(m, huge[h % 4], 0.01, 1000, &r, err0, sizeof err0),
                         RFM_OK);
        assert_true(r.probability_after > 0.0 && r.probability_after < 1.0);
        printf("    extreme customer %d, model %d: kind %d, n %d, p %.3g -> %.3g\n", h % 4, h / 4,
               (int)r.kind, r.n_purchases, r.probability_before, r.probability_after);
        churn_free(m);
    }

    /* A model without the RFM features cannot answer. */
    double x[4] = {1, 2, 3, 4};
    int y[4] = {0, 1, 0, 1};
    const char *const nm[] = {"a"};
    churn_model *m1 = fit_ok(x, y, 4, 1, nm, 1.0);
    churn_counterfactual_result r;
    char err[RFM_ERRLEN] = "";
    assert_int_equal(churn_counterfactual(m1, x, 0.5, 5, &r, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "recency"));
    churn_free(m1);
}

/* ---- JSON ---------------------------------------------------------------- */

static void test_json_round_trip(void **state)
{
    (void)state;
    churn_model *m = rfm_model(4, 2000);
    char err[RFM_ERRLEN] = "";
    json_t *j = NULL;
    assert_int_equal(churn_to_json(m, &j, err, sizeof err), RFM_OK);
    char *text = json_dumps(j, JSON_REAL_PRECISION(17) | JSON_COMPACT);
    json_decref(j);
    json_error_t je;
    j = json_loads(text, 0, &je);
    free(text);
    churn_model *m2 = NULL;
    assert_int_equal(churn_from_json(j, &m2, err, sizeof err), RFM_OK);
    churn_info a, b;
    churn_info_get(m, &a);
    churn_info_get(m2, &b);
    assert_int_equal(a.d, b.d);
    for (size_t k = 0; k < a.d; k++) {
        assert_string_equal(a.names[k], b.names[k]);
        assert_true(a.mean[k] == b.mean[k] && a.sd[k] == b.sd[k] && a.weights[k] == b.weights[k]);
    }
    assert_true(a.intercept == b.intercept && a.lambda == b.lambda &&
                a.threshold_medium == b.threshold_medium && a.threshold_high == b.threshold_high);
    assert_true(memcmp(&a.fit, &b.fit, sizeof a.fit) == 0);
    double x[3] = {45, 3, 170}, p1, p2;
    assert_int_equal(churn_predict(m, x, &p1, err, sizeof err), RFM_OK);
    assert_int_equal(churn_predict(m2, x, &p2, err, sizeof err), RFM_OK);
    assert_true(p1 == p2);
    churn_free(m2);

    /* Each damaged field is refused by name, leaving *out alone. */
    struct {
        const char *key, *bad, *expect;
    } cases[] = {
        {"sd", "[1, 0, 1]", "churn.json.sd[1]"},
        {"weights", "[1, 2]", "churn.json.weights"},
        {"intercept", "\"x\"", "churn.json.intercept"},
        {"threshold_high", "0.1", "threshold_medium must be <="},
        {"version", "3", "regenerate"},
        {"features", "[\"recency\", \"recency\", \"m\"]", "distinct"},
        {"fit", "{}", "churn.json.fit.converged"},
        {"lambda", "-1", "'lambda'"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        json_t *cp = json_deep_copy(j);
        json_object_set_new(cp, cases[c].key, json_loads(cases[c].bad, JSON_DECODE_ANY, &je));
        churn_model *bad = NULL;
        assert_int_equal(churn_from_json(cp, &bad, err, sizeof err), RFM_EFORMAT);
        if (!strstr(err, cases[c].expect))
            fail_msg("field %s: message '%s' lacks '%s'", cases[c].key, err, cases[c].expect);
        assert_null(bad);
        json_decref(cp);
    }
    json_t *cp = json_deep_copy(j);
    json_object_del(cp, "mean");
    assert_int_equal(churn_from_json(cp, &m2, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, "churn.json.mean"));
    json_decref(cp);
    json_decref(j);
    churn_free(m);
}

/* ---- speed and threads --------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { NQ = 100000 };
typedef struct {
    const churn_model *m;
    const double *x;
    double *p;
} job;

static void *score_all(void *arg)
{
    job *jb = arg;
    for (int i = 0; i < NQ; i++)
        if (churn_predict(jb->m, jb->x + 3 * i, jb->p + i, NULL, 0) != RFM_OK)
            jb->p[i] = -1.0;
    return NULL;
}

static void test_speed_and_threads(void **state)
{
    (void)state;
    churn_model *m = rfm_model(8, 3000);
    rfm_rng rng;
    rfm_rng_seed(&rng, 1);
    double *x = malloc(NQ * 3 * sizeof *x), *p = malloc(NQ * sizeof *p);
    int *y = malloc(NQ * sizeof *y);
    assert_true(x && p && y);
    simulate(&rng, NQ, TRUE_BETA, x, y);
    job j0 = {m, x, p};
    double t0 = now_s();
    score_all(&j0);
    double t_pred = (now_s() - t0) / NQ;
    char err[RFM_ERRLEN] = "";
    double *pm = malloc(NQ * sizeof *pm);
    assert_non_null(pm);
    assert_int_equal(churn_predict_many(m, x, NQ, pm, err, sizeof err), RFM_OK);
    assert_memory_equal(pm, p, NQ * sizeof *p);
    double keep = x[3 * 500 + 2];
    x[3 * 500 + 2] = -5.0;
    assert_int_equal(churn_predict_many(m, x, NQ, pm, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "row 500: churn: feature 'monetary' = -5"));
    x[3 * 500 + 2] = keep;
    free(pm);
    double sink = 0.0;
    t0 = now_s();
    for (int i = 0; i < NQ; i++) {
        double base, c[3], pr;
        assert_int_equal(churn_explain(m, x + 3 * i, &base, c, NULL, &pr, err, sizeof err), RFM_OK);
        sink += c[0];
    }
    double t_expl = (now_s() - t0) / NQ;
    t0 = now_s();
    for (int i = 0; i < NQ; i++) {
        churn_counterfactual_result r;
        assert_int_equal(churn_counterfactual(m, x + 3 * i, 0.5, 10, &r, err, sizeof err), RFM_OK);
        sink += r.probability_after;
    }
    double t_cf = (now_s() - t0) / NQ;
    printf("    per customer: predict %.0f ns, explain %.0f ns, counterfactual (n_max 10) %.0f "
           "ns (target < 10000 ns)%s\n",
           t_pred * 1e9, t_expl * 1e9, t_cf * 1e9, sink == 0.0 ? " " : "");
    /* The speed target is make bench's (bench_churn); a timed assert would
     * fail on a loaded or sanitizer build, not on slow code. */

    /* Four threads on one read-only model give the single-thread answers. */
    pthread_t th[4];
    job jobs[4];
    double *pt[4];
    for (int k = 0; k < 4; k++) {
        pt[k] = malloc(NQ * sizeof **pt);
        assert_non_null(pt[k]);
        jobs[k] = (job){m, x, pt[k]};
        assert_int_equal(pthread_create(&th[k], NULL, score_all, &jobs[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        assert_int_equal(pthread_join(th[k], NULL), 0);
        assert_memory_equal(pt[k], p, NQ * sizeof *p);
        free(pt[k]);
    }
    free(x);
    free(p);
    free(y);
    churn_free(m);
}

/* ---- time-split labels ---------------------------------------------------- */

/* A hand example. Snapshot 2011-01-26 (day after the last purchase); cut_days
 * 10 puts the cut at 2011-01-16. Customers in id order:
 *   A bought 01-01 and 01-20: active, bought after the cut -> y 0, recency 15,
 *                             spend as of the cut 2 (the 5.00 is after it)
 *   B bought 01-02 only:      active, nothing after        -> y 1, recency 14
 *   C bought 01-25 only:      not active before the cut    -> left out
 *   D bought 01-05 and 01-10: active, nothing after        -> y 1, recency 6,
 *                             2 invoices, spend 3 + 7 = 10, one repeat day,
 *                             t_x 5, T 10 (observed up to 01-15, the day
 *                             before the cut) */
static void test_time_split_labels(void **state)
{
    (void)state;
    static const char *csv = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
                             "1,P,1,2011-01-01,2.00,A\n"
                             "2,P,1,2011-01-20,5.00,A\n"
                             "3,P,1,2011-01-02,4.00,B\n"
                             "4,P,1,2011-01-25,1.00,C\n"
                             "5,P,1,2011-01-05,3.00,D\n"
                             "6,P,1,2011-01-10,7.00,D\n";
    char err[RFM_ERRLEN];
    txn_data *d = txn_from_text(csv);

    churn_split s;
    assert_int_equal(churn_time_split(d, 10, 0.34, 5, &s, err, sizeof err), RFM_OK);
    assert_int_equal(s.cut, date_from_ymd(2011, 1, 16));
    assert_int_equal(s.n, 3);
    assert_int_equal(s.churned, 2);
    const int y[3] = {0, 1, 1};
    const double x[3][3] = {{15, 1, 2}, {14, 1, 4}, {6, 2, 10}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(s.y[i], y[i]);
        for (int k = 0; k < 3; k++)
            assert_near(s.x[i * 3 + k], x[i][k], 0);
    }
    assert_near(s.bg[6], 1, 0);
    assert_near(s.bg[7], 5, 0);
    assert_near(s.bg[8], 10, 0);
    /* round(0.34 * 3) = 1 held out; order is a permutation of the rows. */
    assert_int_equal(s.n_test, 1);
    assert_int_equal(s.n_train, 2);
    int seen[3] = {0, 0, 0};
    for (size_t k = 0; k < 3; k++)
        seen[s.order[k]]++;
    assert_true(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
    churn_split_free(&s);

    /* A cut before the first purchase and a share outside [0, 1) are refused. */
    assert_int_equal(churn_time_split(d, 30, 0.2, 5, &s, err, sizeof err), RFM_EDATA);
    assert_non_null(strstr(err, "cut_days 30"));
    assert_null(s.x);
    assert_int_equal(churn_time_split(d, 10, 1.0, 5, &s, err, sizeof err), RFM_EINVAL);
    txn_free(d);
}

/* Pairwise AUC: the share of (churned, stayed) pairs ranked right, ties
 * half. O(n^2), the definition itself. */
static double auc_pairs(const double *p, const int *y, size_t n)
{
    double good = 0, pairs = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (y[i] == 1 && y[j] == 0) {
                pairs++;
                good += p[i] > p[j] ? 1 : p[i] == p[j] ? 0.5 : 0;
            }
    return good / pairs;
}

/* churn_evaluate (and its held-out scores) against the evaluation written out here: the logistic
 * model fitted on the training rows of a hand-made split, its held-out
 * AUC (pairwise), log loss and Brier from their definitions, BG/NBD's
 * 1 - P(alive) fitted on the same rows, mean |SHAP| on the training rows,
 * and calibration bins that add up to the held-out rows. A fit that saw
 * the held-out rows gives other numbers. */
static void test_evaluate_reference(void **state)
{
    (void)state;
    enum { N = 500, NTE = 100 };
    churn_split s = {.cut = 0, .n = N, .n_test = NTE, .n_train = N - NTE};
    s.x = malloc(N * 3 * sizeof *s.x), s.bg = malloc(N * 3 * sizeof *s.bg);
    s.y = malloc(N * sizeof *s.y), s.order = malloc(N * sizeof *s.order);
    s.xr = malloc(N * CHURN_RICH_FEATURES * sizeof *s.xr);
    rfm_rng g;
    rfm_rng_seed(&g, 77);
    for (size_t i = 0; i < N; i++) {
        double r = 1 + 299 * rfm_rng_uniform(&g), f = 1 + (double)rfm_rng_below(&g, 10);
        double *x = s.x + i * 3, *b = s.bg + i * 3;
        x[0] = r, x[1] = f, x[2] = f * (20 + 80 * rfm_rng_uniform(&g));
        b[0] = f - 1;                                            /* repeat purchases */
        b[2] = r + (f > 1 ? 30 + 300 * rfm_rng_uniform(&g) : 0); /* T */
        b[1] = f > 1 ? b[2] - r : 0;                             /* t_x */
        double *xr = s.xr + i * CHURN_RICH_FEATURES;
        xr[0] = x[0], xr[1] = x[1], xr[2] = x[2], xr[3] = b[2] + 1, xr[4] = x[2] / x[1];
        xr[5] = f > 1 ? b[1] / b[0] : NAN, xr[6] = f > 2 ? rfm_rng_normal(&g) : NAN;
        xr[7] = f > 1 ? rfm_rng_normal(&g) : NAN;
        double eta = -1 + 0.01 * r - 0.3 * f;
        s.y[i] = rfm_rng_uniform(&g) < 1 / (1 + exp(-eta));
        s.churned += (size_t)s.y[i];
        s.order[i] = (i * 7) % N; /* a permutation: 7 and 500 are coprime */
    }
    churn_params par;
    churn_default_params(&par);
    churn_eval ev = {0};
    double hp[NTE], hpb[NTE];
    int hy[NTE];
    ev.p_logistic = hp, ev.p_boosted = hpb, ev.y_test = hy;
    char err[RFM_ERRLEN];
    assert_int_equal(churn_evaluate(&s, RFM_NAMES, &par, &ev, err, sizeof err), RFM_OK);

    /* Reference. */
    double xtr[(N - NTE) * 3], tx[N - NTE], tt[N - NTE], tT[N - NTE], p[NTE], pb[NTE];
    int ytr[N - NTE], yte[NTE];
    for (size_t k = NTE; k < N; k++) {
        size_t i = s.order[k], j = k - NTE;
        memcpy(xtr + j * 3, s.x + i * 3, 3 * sizeof *xtr);
        ytr[j] = s.y[i];
        tx[j] = s.bg[i * 3], tt[j] = s.bg[i * 3 + 1], tT[j] = s.bg[i * 3 + 2];
    }
    churn_model *m = NULL;
    assert_int_equal(churn_fit(xtr, ytr, N - NTE, 3, RFM_NAMES, &par, &m, err, sizeof err), RFM_OK);
    bgnbd_row *rows = NULL;
    size_t nr;
    bgnbd_fit_result fr;
    assert_int_equal(bgnbd_compress(tx, tt, tT, N - NTE, &rows, &nr, err, sizeof err), RFM_OK);
    /* the yardstick is fitted as lifetimes fits it, from its one start */
    assert_true(bgnbd_fit_predicts(bgnbd_fit_starts(rows, nr, 0, 1, &fr, err, sizeof err), &fr));
    double ll = 0, brier = 0, brierb = 0;
    for (size_t k = 0; k < NTE; k++) {
        size_t i = s.order[k];
        yte[k] = s.y[i];
        assert_int_equal(churn_predict(m, s.x + i * 3, &p[k], err, sizeof err), RFM_OK);
        pb[k] = fmin(
            fmax(1 - bgnbd_p_alive(&fr.p, s.bg[i * 3], s.bg[i * 3 + 1], s.bg[i * 3 + 2]), 0), 1);
        ll -= (yte[k] ? log(p[k]) : log1p(-p[k])) / NTE;
        brier += (p[k] - yte[k]) * (p[k] - yte[k]) / NTE;
        brierb += (pb[k] - yte[k]) * (pb[k] - yte[k]) / NTE;
    }
    double imp[3] = {0, 0, 0}, contrib[3], base;
    for (size_t j = 0; j < N - NTE; j++) {
        assert_int_equal(churn_explain(m, xtr + j * 3, &base, contrib, NULL, NULL, err, sizeof err),
                         RFM_OK);
        for (int f = 0; f < 3; f++)
            imp[f] += fabs(contrib[f]) / (N - NTE);
    }
    const double got[] = {ev.logistic.auc,  ev.logistic.logloss, ev.logistic.brier,
                          ev.bgnbd.auc,     ev.bgnbd.brier,      ev.importance[0],
                          ev.importance[1], ev.importance[2]};
    const double want[] = {
        auc_pairs(p, yte, NTE), ll, brier, auc_pairs(pb, yte, NTE), brierb, imp[0], imp[1], imp[2]};
    double maxdiff = 0;
    for (size_t k = 0; k < sizeof got / sizeof *got; k++)
        maxdiff = fmax(maxdiff, fabs(got[k] - want[k]));
    report_maxdiff("churn_evaluate vs reference", maxdiff, 1e-9);
    assert_true(maxdiff <= 1e-9);
    /* The boosted learner: fitted on the same training rows' rich features
     * (the fit is deterministic), scored on the same held-out rows. */
    enum { R = CHURN_RICH_FEATURES };
    double *rtr = malloc((N - NTE) * R * sizeof *rtr), pg[NTE];
    for (size_t k = NTE; k < N; k++)
        memcpy(rtr + (k - NTE) * R, s.xr + s.order[k] * R, R * sizeof *rtr);
    churn_model *mb = NULL;
    assert_int_equal(
        churn_fit_boosted(rtr, ytr, N - NTE, R, churn_rich_names, &par, &mb, err, sizeof err),
        RFM_OK);
    for (size_t k = 0; k < NTE; k++)
        assert_int_equal(churn_predict(mb, s.xr + s.order[k] * R, &pg[k], err, sizeof err), RFM_OK);
    assert_near(ev.boosted.auc, auc_pairs(pg, yte, NTE), 1e-12);
    printf("    held-out AUC: boosted %.4f\n", ev.boosted.auc);
    assert_true(ev.boosted.auc > 0.6);
    churn_free(mb);
    free(rtr);
    printf("    held-out AUC: logistic %.4f, BG/NBD %.4f\n", ev.logistic.auc, ev.bgnbd.auc);
    assert_true(ev.logistic.auc > 0.6);
    size_t cnt = 0;
    double mp = 0;
    for (size_t b = 0; b < ev.nbins; b++) {
        cnt += ev.bins[b].count;
        mp += ev.bins[b].mean_predicted * (double)ev.bins[b].count;
        if (b)
            assert_true(ev.bins[b].mean_predicted > ev.bins[b - 1].mean_predicted);
    }
    double pm = 0;
    for (size_t k = 0; k < NTE; k++)
        pm += p[k];
    assert_int_equal(cnt, NTE);
    assert_near(mp, pm, 1e-9);

    /* The held-out scores churn_evaluate hands back (the report's curves):
     * the same rows, in the split's order, as each reference fit scores them. */
    double hdiff = 0;
    for (size_t k = 0; k < NTE; k++) {
        assert_int_equal(hy[k], yte[k]);
        hdiff = fmax(hdiff, fmax(fabs(hp[k] - p[k]), fabs(hpb[k] - pg[k])));
    }
    report_maxdiff("churn_evaluate's held-out scores vs the reference fits'", hdiff, 1e-9);

    /* A split whose parts do not add up is refused. */
    s.n_train--;
    assert_int_equal(churn_evaluate(&s, RFM_NAMES, &par, &ev, err, sizeof err), RFM_EINVAL);
    printf("    %s\n", err);
    churn_free(m);
    free(rows);
    churn_split_free(&s);
}

/* ---- the boosted learner's features, choice and model file ---------------- */

/* churn_features_asof against a naive computation from the generated lines:
 * each customer's purchase days sorted, gaps and spends written out. */
static void test_rich_features_vs_naive(void **state)
{
    (void)state;
    enum { NC = 40, NL = 600 };
    rfm_rng rng;
    rfm_rng_seed(&rng, 21);
    static int cust[NL], day[NL];
    static double spend[NL];
    size_t cap = 64 + NL * 64, len = 0;
    char *csv = malloc(cap);
    len += (size_t)snprintf(csv + len, cap - len,
                            "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n");
    int32_t d0 = date_from_ymd(2011, 1, 1);
    for (int i = 0; i < NL; i++) {
        /* Customer c buys on few days for small c: some with 1 or 2 days. */
        cust[i] = (int)(rfm_rng_uniform(&rng) * NC);
        int span = 1 + cust[i] * 8;
        day[i] = (int)(rfm_rng_uniform(&rng) * span) * (300 / span);
        int q = 1 + (int)(rfm_rng_uniform(&rng) * 3);
        double price = 0.25 * (1 + (int)(rfm_rng_uniform(&rng) * 40));
        spend[i] = q * price;
        char date[11];
        date_format(d0 + day[i], date);
        len += (size_t)snprintf(csv + len, cap - len, "%d,P,%d,%s,%.2f,C%02d\n", i + 1, q, date,
                                price, cust[i]);
    }
    txn_data *d = txn_from_text(csv);
    free(csv);
    int32_t asof = d0 + 200;
    size_t nc = txn_ncustomers(d);
    double *x = malloc(nc * CHURN_RICH_FEATURES * sizeof *x);
    txn_features *f = calloc(nc, sizeof *f);
    churn_features_asof(d, asof, x);
    txn_features_asof(d, asof, f);
    double worst = 0;
    int seen_nan[3] = {0};
    for (size_t ci = 0; ci < nc; ci++) {
        int c = atoi(txn_customer_id(d, ci) + 1);
        /* Naive: days before asof with their spend, sorted. */
        double dspend[301] = {0};
        int has[301] = {0}, ninv = 0;
        double mon = 0;
        for (int i = 0; i < NL; i++)
            if (cust[i] == c && d0 + day[i] < asof) {
                has[day[i]] = 1, dspend[day[i]] += spend[i], mon += spend[i], ninv++;
            }
        int days[301], k = 0;
        for (int t = 0; t <= 300; t++)
            if (has[t])
                days[k++] = t;
        const double *r = x + ci * CHURN_RICH_FEATURES;
        if (k == 0) {
            for (int j = 0; j < CHURN_RICH_FEATURES; j++)
                assert_true(isnan(r[j]));
            continue;
        }
        double want[CHURN_RICH_FEATURES];
        want[0] = (double)(asof - (d0 + days[k - 1]));
        want[1] = ninv;
        want[2] = mon;
        want[3] = (double)(asof - (d0 + days[0]));
        want[4] = mon / ninv;
        double gaps = 0;
        for (int t = 1; t < k; t++)
            gaps += days[t] - days[t - 1];
        want[5] = k >= 2 ? gaps / (k - 1) : NAN;
        double early = 0;
        for (int t = 1; t < k - 1; t++)
            early += days[t] - days[t - 1];
        want[6] = k >= 3 ? (days[k - 1] - days[k - 2]) - early / (k - 2) : NAN;
        double prev = 0;
        for (int t = 0; t < k - 1; t++)
            prev += dspend[days[t]];
        want[7] = k >= 2 ? dspend[days[k - 1]] - prev / (k - 1) : NAN;
        for (int j = 0; j < CHURN_RICH_FEATURES; j++) {
            if (isnan(want[j])) {
                assert_true(isnan(r[j]));
                seen_nan[j - 5]++;
                continue;
            }
            worst = fmax(worst, fabs(r[j] - want[j]) / (1 + fabs(want[j])));
        }
        /* The serving side's derivation from a customer-table row agrees. */
        customer_row row = {f[ci].recency, f[ci].frequency, f[ci].monetary,      f[ci].bg_x,
                            f[ci].bg_t_x,  f[ci].bg_T,      f[ci].bg_mean_spend, r[6],
                            r[7]};
        double xs[CHURN_RICH_FEATURES];
        churn_row_features(&row, xs);
        for (int j = 0; j < CHURN_RICH_FEATURES; j++)
            assert_true((isnan(xs[j]) && isnan(r[j])) ||
                        fabs(xs[j] - r[j]) <= 1e-9 * (1 + fabs(r[j])));
    }
    printf("    customers with too few days for ipt_mean, ipt_trend, spend_trend: %d %d %d\n",
           seen_nan[0], seen_nan[1], seen_nan[2]);
    assert_true(seen_nan[0] > 0 && seen_nan[1] >= seen_nan[0]);
    report_maxdiff("rich features vs naive (relative)", worst, 1e-12);
    free(x), free(f);
    txn_free(d);
}

/* The boosted model serves strictly better AUCs only. */
static void test_choose(void **state)
{
    (void)state;
    churn_eval ev = {0};
    memset(&ev, 0, sizeof ev);
    ev.logistic.auc = 0.72, ev.boosted.auc = 0.74;
    assert_int_equal(churn_choose(&ev), CHURN_BOOSTED);
    ev.boosted.auc = 0.72;
    assert_int_equal(churn_choose(&ev), CHURN_LOGISTIC);
    ev.boosted.auc = 0.70;
    assert_int_equal(churn_choose(&ev), CHURN_LOGISTIC);
    ev.boosted.auc = NAN;
    assert_int_equal(churn_choose(&ev), CHURN_LOGISTIC);
    assert_string_equal(churn_learner_name(CHURN_BOOSTED), "boosted");
}

/* A boosted churn model through its file: same scores and explanations,
 * additivity, a counterfactual equal to a direct scan, missing values
 * accepted and infinite ones refused; a version-1 logistic file still loads. */
static void test_boosted_model_file(void **state)
{
    (void)state;
    enum { R = CHURN_RICH_FEATURES };
    size_t n = 1500;
    rfm_rng rng;
    rfm_rng_seed(&rng, 31);
    double *x = malloc(n * R * sizeof *x);
    int *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        double *r = x + i * R;
        r[0] = -60.0 * log(1.0 - rfm_rng_uniform(&rng));
        r[1] = 1.0 + floor(-3.0 * log(1.0 - rfm_rng_uniform(&rng)));
        r[4] = exp(3.0 + 0.5 * rfm_rng_normal(&rng));
        r[2] = r[1] * r[4];
        r[3] = r[0] + 100 * rfm_rng_uniform(&rng);
        r[5] = r[1] > 1 ? 10 + 50 * rfm_rng_uniform(&rng) : NAN;
        r[6] = r[1] > 2 ? 20 * rfm_rng_normal(&rng) : NAN;
        r[7] = r[1] > 1 ? 30 * rfm_rng_normal(&rng) : NAN;
        double eta = -1 + 0.03 * r[0] - 0.5 * r[1];
        y[i] = rfm_rng_uniform(&rng) < sig(eta);
    }
    churn_params par;
    churn_default_params(&par);
    par.boost.rounds = 60;
    par.boost.nthread = 1;
    churn_model *m = NULL, *m2 = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(churn_fit_boosted(x, y, n, R, churn_rich_names, &par, &m, err, sizeof err),
                     RFM_OK);
    json_t *j;
    assert_int_equal(churn_to_json(m, &j, err, sizeof err), RFM_OK);
    char *txt = jsonout_dumps(j, JSON_COMPACT);
    json_decref(j);
    json_t *back = json_loads(txt, 0, NULL);
    free(txt);
    if (churn_from_json(back, &m2, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    json_decref(back);
    churn_info info;
    churn_info_get(m2, &info);
    assert_int_equal(info.learner, CHURN_BOOSTED);
    assert_int_equal(info.d, R);
    double add = 0;
    size_t cf_kinds[4] = {0}, cf_found_past_8 = 0;
    for (size_t i = 0; i < 300; i++) {
        double b1, b2, c1[R], c2[R], l1, l2, p1, p2;
        assert_int_equal(churn_explain(m, x + i * R, &b1, c1, &l1, &p1, err, sizeof err), RFM_OK);
        assert_int_equal(churn_explain(m2, x + i * R, &b2, c2, &l2, &p2, err, sizeof err), RFM_OK);
        assert_true(b1 == b2 && l1 == l2 && p1 == p2);
        assert_memory_equal(c1, c2, sizeof c1);
        /* The probability alone (GET /customers, the feed: SCORE_CHURN_POINT)
         * is the explained one, bit for bit. */
        double pp;
        assert_int_equal(churn_predict(m2, x + i * R, &pp, err, sizeof err), RFM_OK);
        assert_true(pp == p1);
        double sum = b1;
        for (int k = 0; k < R; k++)
            sum += c1[k];
        add = fmax(add, fabs(sum - l1));
        /* The counterfactual is the first n of a direct scan: thresholds
         * in the middle and at the ends (where no margin bound stops the
         * search early), up to 40 candidates (blocks of 16, passes of 8). */
        static const double TS[] = {0.5, 0.3, 0.7, 1e-7, 1 - 1e-7};
        const double t = TS[i % 5];
        const int nmax = i % 3 == 0 ? 10 : 1 + (int)(i % 40);
        churn_counterfactual_result cf, cf_at;
        assert_int_equal(churn_counterfactual(m2, x + i * R, t, nmax, &cf, err, sizeof err),
                         RFM_OK);
        /* From the explained probability: the same result, every field. */
        memset(&cf_at, 0xa5, sizeof cf_at);
        assert_int_equal(
            churn_counterfactual_at(m2, x + i * R, p1, t, nmax, &cf_at, err, sizeof err), RFM_OK);
        assert_int_equal(cf_at.kind, cf.kind);
        assert_int_equal(cf_at.n_purchases, cf.n_purchases);
        assert_true(cf_at.probability_before == cf.probability_before &&
                    cf_at.probability_after == cf.probability_after &&
                    cf_at.order_value == cf.order_value);
        assert_memory_equal(cf_at.x_after, cf.x_after, R * sizeof *cf.x_after);
        int want = 0;
        double lowest = INFINITY;
        if (p1 >= t)
            for (int k = 1; k <= nmax && !want; k++) {
                double xn[R], pk;
                memcpy(xn, x + i * R, sizeof xn);
                xn[0] = 0, xn[1] += k, xn[2] += k * (x[i * R + 2] / fmax(x[i * R + 1], 1));
                assert_int_equal(churn_predict(m2, xn, &pk, err, sizeof err), RFM_OK);
                if (pk < t)
                    want = k;
                lowest = fmin(lowest, pk);
            }
        assert_int_equal(cf.kind, p1 < t ? CHURN_CF_NOT_NEEDED
                                  : want ? CHURN_CF_PURCHASES
                                         : CHURN_CF_NONE);
        assert_int_equal(cf.n_purchases, want);
        if (cf.kind == CHURN_CF_NONE) /* the lowest probability of the scan */
            assert_true(cf.probability_after == lowest);
        cf_kinds[cf.kind]++;
        /* A threshold just above the lowest of the first K candidates: the
         * answer is that candidate, or an earlier one as low, often past the
         * first passes and blocks. */
        enum { KMAX = 40 };
        double pk[KMAX + 1];
        const int K = 10 + (int)(i % 25);
        double low = INFINITY;
        for (int k = 1; k <= KMAX; k++) {
            double xn[R];
            memcpy(xn, x + i * R, sizeof xn);
            xn[0] = 0, xn[1] += k, xn[2] += k * (x[i * R + 2] / fmax(x[i * R + 1], 1));
            assert_int_equal(churn_predict(m2, xn, &pk[k], err, sizeof err), RFM_OK);
            if (k <= K)
                low = fmin(low, pk[k]);
        }
        const double tk = nextafter(low, INFINITY);
        if (p1 >= tk && tk < 1) {
            int first = 0;
            for (int k = 1; k <= KMAX && !first; k++)
                if (pk[k] < tk)
                    first = k;
            churn_counterfactual_result ck;
            assert_int_equal(
                churn_counterfactual_at(m2, x + i * R, p1, tk, KMAX, &ck, err, sizeof err), RFM_OK);
            assert_int_equal(ck.kind, CHURN_CF_PURCHASES);
            assert_int_equal(ck.n_purchases, first);
            assert_true(ck.probability_after == pk[first]);
            cf_found_past_8 += first > 9;
        }
    }
    report_maxdiff("boosted: base + contributions - logit", add, 1e-9);
    printf("    counterfactuals vs a direct scan: %zu not needed, %zu found, %zu none; at a "
           "threshold just above the lowest of the first candidates, %zu found past the second "
           "pass\n",
           cf_kinds[CHURN_CF_NOT_NEEDED], cf_kinds[CHURN_CF_PURCHASES], cf_kinds[CHURN_CF_NONE],
           cf_found_past_8);
    assert_true(cf_kinds[CHURN_CF_PURCHASES] > 0 && cf_kinds[CHURN_CF_NONE] > 0 &&
                cf_kinds[CHURN_CF_NOT_NEEDED] > 0);
    /* Many rows at once (the trees walked for blocks of rows): churn_predict's
     * bits; a refused row is named, the rows before it written, those after
     * it untouched. */
    double *pm = malloc(n * sizeof *pm);
    assert_non_null(pm);
    assert_int_equal(churn_predict_many(m2, x, n, pm, err, sizeof err), RFM_OK);
    size_t differ = 0;
    for (size_t i = 0; i < n; i++) {
        double pp;
        assert_int_equal(churn_predict(m2, x + i * R, &pp, err, sizeof err), RFM_OK);
        differ += pp != pm[i];
    }
    assert_int_equal(differ, 0);
    double keep6 = x[700 * R + 6], *pz = calloc(n, sizeof *pz);
    assert_non_null(pz);
    x[700 * R + 6] = -INFINITY;
    assert_int_equal(churn_predict_many(m2, x, n, pz, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "row 700: churn: feature 'ipt_trend'"));
    assert_memory_equal(pz, pm, 700 * sizeof *pz);
    for (size_t i = 700; i < n; i++)
        assert_true(pz[i] == 0.0);
    x[700 * R + 6] = keep6;
    /* score_churn_many: score_customer's churn of each customer row, NaN where
     * it skips one (no recency), a refusal at the row's index with
     * score_customer's message. */
    {
        size_t nc = 1000;
        customer_row *cr = malloc(nc * sizeof *cr);
        const customer_row **rp = malloc(nc * sizeof *rp);
        double *ps = malloc(nc * sizeof *ps);
        assert_true(cr && rp && ps);
        for (size_t i = 0; i < nc; i++) {
            const double *r = x + i * R;
            double f = r[1];
            cr[i] = (customer_row){i % 97 == 3 ? NAN : r[0], f,    r[2], f - 1, r[3] - r[0], r[3],
                                   f > 1 ? r[4] : 0,         r[6], r[7]};
            rp[i] = &cr[i];
        }
        score_models sm = {.churn = m2};
        size_t bad = 12345;
        assert_int_equal(score_churn_many(&sm, rp, nc, 1, ps, &bad, err, sizeof err), RFM_OK);
        size_t skipped = 0;
        differ = 0;
        for (size_t i = 0; i < nc; i++) {
            score_result sr;
            assert_int_equal(score_customer(&sm, &cr[i], SCORE_CHURN | SCORE_CHURN_POINT, 1, &sr,
                                            err, sizeof err),
                             RFM_OK);
            if (sr.done & SCORE_CHURN)
                differ += !(ps[i] == sr.churn_probability);
            else
                differ += !isnan(ps[i]), skipped++;
        }
        assert_int_equal(differ, 0);
        assert_int_equal(skipped, 11);
        cr[333].spend_trend = INFINITY;
        char want[RFM_ERRLEN];
        score_result sr;
        assert_int_equal(score_customer(&sm, &cr[333], SCORE_CHURN | SCORE_CHURN_POINT, 1, &sr,
                                        want, sizeof want),
                         RFM_EINVAL);
        assert_int_equal(score_churn_many(&sm, rp, nc, 1, ps, &bad, err, sizeof err), RFM_EINVAL);
        assert_int_equal(bad, 333);
        assert_string_equal(err, want);
        free(cr), free(rp), free(ps);
    }
    free(pm), free(pz);
    double xi[R] = {10, 2, 100, 50, 50, NAN, NAN, NAN}, p;
    assert_int_equal(churn_predict(m2, xi, &p, err, sizeof err), RFM_OK);
    xi[6] = INFINITY;
    assert_int_equal(churn_predict(m2, xi, &p, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "ipt_trend"));
    churn_free(m), churn_free(m2);

    /* A logistic model of version 1 (no "learner") still loads. */
    static const char *const names[3] = {"recency", "frequency", "monetary"};
    double xl[3 * 60];
    int yl[60];
    for (int i = 0; i < 60; i++)
        xl[3 * i] = i, xl[3 * i + 1] = 1 + i % 5, xl[3 * i + 2] = 10 + i, yl[i] = (i * 7) % 3 == 0;
    churn_model *lm = NULL, *lm2 = NULL;
    assert_int_equal(churn_fit(xl, yl, 60, 3, names, &par, &lm, err, sizeof err), RFM_OK);
    assert_int_equal(churn_to_json(lm, &j, err, sizeof err), RFM_OK);
    assert_string_equal(json_string_value(json_object_get(j, "learner")), "logistic");
    json_object_del(j, "learner");
    json_object_set_new(j, "version", json_integer(1));
    assert_int_equal(churn_from_json(j, &lm2, err, sizeof err), RFM_OK);
    json_object_set_new(j, "version", json_integer(2));
    json_object_set_new(j, "learner", json_string("forest"));
    churn_model *lm3 = NULL;
    assert_int_equal(churn_from_json(j, &lm3, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, "learner"));
    json_decref(j);
    churn_free(lm), churn_free(lm2);
    free(x), free(y);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_example),
        cmocka_unit_test(test_gradient_hessian),
        cmocka_unit_test(test_newton_vs_gradient_descent),
        cmocka_unit_test(test_recovery),
        cmocka_unit_test(test_separable),
        cmocka_unit_test(test_bad_fit_input),
        cmocka_unit_test(test_extreme_inputs),
        cmocka_unit_test(test_shap),
        cmocka_unit_test(test_risk_levels),
        cmocka_unit_test(test_counterfactual_vs_grid),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_time_split_labels),
        cmocka_unit_test(test_evaluate_reference),
        cmocka_unit_test(test_rich_features_vs_naive),
        cmocka_unit_test(test_choose),
        cmocka_unit_test(test_boosted_model_file),
        cmocka_unit_test(test_speed_and_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
