/* test_gammagamma.c - Gamma-Gamma: recovery of simulated parameters,
 * finite-difference gradient, the conditional mean against simulation,
 * extreme spends. */
#include "testutil.h"

#include <gsl/gsl_errno.h>
#include <stdlib.h>
#include <string.h>

#include "gammagamma.h"
#include "sim_clv.h"

static const double GP = 6, GQ = 4, GV = 15;

static void test_gradient(void **state)
{
    (void)state;
    gg_row rows[4] = {{1, 20, 3}, {2, 35.5, 1}, {7, 12, 2}, {30, 80, 1}};
    double worst = 0, u[3], g[3], t[3], up[3], um[3];
    rfm_rng r;
    rfm_rng_seed(&r, 5);
    for (int trial = 0; trial < 20; trial++) {
        for (int k = 0; k < 3; k++)
            u[k] = -1 + 4 * rfm_rng_uniform(&r);
        gg_objective(u, g, NULL, rows, 4, trial % 2 ? 0.05 : 0);
        for (int k = 0; k < 3; k++) {
            memcpy(up, u, sizeof u);
            memcpy(um, u, sizeof u);
            up[k] += 1e-6;
            um[k] -= 1e-6;
            double fd = (gg_objective(up, t, NULL, rows, 4, trial % 2 ? 0.05 : 0) -
                         gg_objective(um, t, NULL, rows, 4, trial % 2 ? 0.05 : 0)) /
                        2e-6;
            worst = fmax(worst, fabs(fd - g[k]) / fmax(1e-3, fabs(fd)));
        }
    }
    report_maxdiff("gradient vs central differences (relative)", worst, 1e-5);
}

/* The Hessian against central differences of the analytic gradient, with
 * and without the penalty; value and gradient the same bits either way. */
static void test_hessian(void **state)
{
    (void)state;
    gg_row rows[4] = {{1, 20, 3}, {2, 35.5, 1}, {7, 12, 2}, {30, 80, 1}};
    double worst = 0, u[3], g[3], g2[3], h[9], up[3], um[3], gp[3], gm[3];
    int same = 1;
    rfm_rng r;
    rfm_rng_seed(&r, 6);
    for (int trial = 0; trial < 20; trial++) {
        double pen = trial % 2 ? 0.05 : 0;
        for (int k = 0; k < 3; k++)
            u[k] = -1 + 4 * rfm_rng_uniform(&r);
        double f = gg_objective(u, g, h, rows, 4, pen),
               f2 = gg_objective(u, g2, NULL, rows, 4, pen);
        same &= memcmp(&f, &f2, sizeof f) == 0 && memcmp(g, g2, sizeof g) == 0;
        for (int k = 0; k < 3; k++) {
            memcpy(up, u, sizeof u);
            memcpy(um, u, sizeof u);
            up[k] += 1e-4; /* truncation ~1e-8, rounding ~1e-12 */
            um[k] -= 1e-4;
            gg_objective(up, gp, NULL, rows, 4, pen);
            gg_objective(um, gm, NULL, rows, 4, pen);
            for (int j = 0; j < 3; j++) {
                double fd = (gp[j] - gm[j]) / 2e-4;
                worst = fmax(worst, fabs(fd - h[j * 3 + k]) / fmax(1e-3, fabs(fd)));
            }
        }
    }
    report_maxdiff("Hessian vs central differences of the gradient (relative)", worst, 1e-5);
    assert_true(same);
}

static void test_recovery_and_conditional_mean(void **state)
{
    (void)state;
    enum { N = 8000 };
    static double x[N], m[N], nu[N];
    rfm_rng g;
    rfm_rng_seed(&g, 77);
    for (int i = 0; i < N; i++) {
        x[i] = 1 + (double)rfm_rng_below(&g, 12);
        nu[i] = sim_gamma(&g, GQ) / GV; /* this customer's rate */
        double s = 0;
        for (int k = 0; k < (int)x[i]; k++)
            s += sim_gamma(&g, GP) / nu[i];
        m[i] = s / x[i];
    }
    gg_row *rows;
    size_t n;
    char err[RFM_ERRLEN];
    assert_int_equal(gg_compress(x, m, N, &rows, &n, err, sizeof err), RFM_OK);
    gg_fit_result f;
    if (gg_fit(rows, n, 0, &f, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    const double truth[3] = {GP, GQ, GV}, est[3] = {f.p.p, f.p.q, f.p.v};
    for (int k = 0; k < 3; k++) {
        double z = (est[k] - truth[k]) / f.se[k];
        printf("    %c true %.4g fit %.4g se %.3g z %+.2f\n", "pqv"[k], truth[k], est[k], f.se[k],
               z);
        assert_true(fabs(z) < 3.5);
    }
    /* E[mean spend | x, m] vs the true mean spend p / nu of the same customers. */
    gg_params tp = {GP, GQ, GV};
    double pred = 0, truth_mean = 0, sq = 0;
    for (int i = 0; i < N; i++) {
        double tm = GP / nu[i];
        pred += gg_expected_spend(&tp, x[i], m[i]);
        truth_mean += tm;
        sq += tm * tm;
    }
    double se = sqrt(sq / N - pow(truth_mean / N, 2)) / sqrt(N);
    printf("    mean E[spend|x,m] %.3f vs true mean spend %.3f (se %.3f)\n", pred / N,
           truth_mean / N, se);
    assert_true(fabs(pred / N - truth_mean / N) < 4 * se);
    printf("    corr(frequency, spend) = %.4f (independent by construction)\n", f.corr_freq_spend);
    assert_true(fabs(f.corr_freq_spend) < 0.05);
    free(rows);
}

static void test_edges(void **state)
{
    (void)state;
    gg_params p = {2.1, 3.4, 480};
    assert_near(gg_expected_spend(&p, 0, 0), 2.1 * 480 / 2.4, 1e-9); /* population mean */
    double e = gg_expected_spend(&p, 3, 1e7);                        /* huge spends */
    assert_true(isfinite(e) && e > 0);
    double x[3] = {1, 0, 2}, m[3] = {10, 0, -5};
    gg_row *rows;
    size_t n;
    char err[RFM_ERRLEN];
    assert_int_equal(gg_compress(x, m, 3, &rows, &n, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "customer 2"));
    m[2] = 5;
    assert_int_equal(gg_compress(x, m, 3, &rows, &n, err, sizeof err), RFM_OK);
    assert_int_equal(n, 2); /* x = 0 skipped */
    gg_fit_result f;
    gg_row one = {2, 50, 1};
    assert_int_equal(gg_fit(&one, 1, 0, &f, err, sizeof err), RFM_EDATA);
    free(rows);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient),
        cmocka_unit_test(test_hessian),
        cmocka_unit_test(test_recovery_and_conditional_mean),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
