/* test_mle.c - the maximum-likelihood driver against closed forms: the
 * argmin and inverse Hessian of a quadratic, and the identifiability line
 * on hand-made covariances. */
#include "testutil.h"

#include <gsl/gsl_errno.h>
#include <string.h>

#include "mle.h"

/* f(u) = 1/2 (u - c)' A (u - c) with A = [[4, 1], [1, 2]]: argmin c,
 * inverse Hessian A^-1 = [[2, -1], [-1, 4]] / 7. */
static double quad(const double *u, double *g, void *d)
{
    (void)d;
    const double c[2] = {0.5, -1.5};
    double e0 = u[0] - c[0], e1 = u[1] - c[1];
    g[0] = 4 * e0 + e1;
    g[1] = e0 + 2 * e1;
    return 0.5 * (4 * e0 * e0 + 2 * e0 * e1 + 2 * e1 * e1);
}

static void test_quadratic_closed_form(void **state)
{
    (void)state;
    const double starts[4] = {0, 0, 3, 3};
    mle_result r;
    char err[RFM_ERRLEN];
    assert_int_equal(mle_fit(quad, NULL, 2, starts, 2, 1e-10, 200, &r, err, sizeof err), RFM_OK);
    assert_true(r.converged);
    assert_near(r.u[0], 0.5, 1e-8);
    assert_near(r.u[1], -1.5, 1e-8);
    const double inv[4] = {2.0 / 7, -1.0 / 7, -1.0 / 7, 4.0 / 7};
    double worst = 0;
    for (int i = 0; i < 4; i++)
        worst = fmax(worst, fabs(r.cov[i] - inv[i]));
    report_maxdiff("inverse Hessian vs closed form", worst, 1e-5);
    assert_int_equal(mle_unidentified(r.cov, 2), -1);
}

/* The identifiability line: a standard error of log-parameter up to 10 is
 * identified, above it (or not a number) it is not, naming the first. */
static void test_unidentified_line(void **state)
{
    (void)state;
    double cov[9] = {9.05, 0, 0, 0, 11.04, 0, 0, 0, 0.01}; /* the bundled BG/NBD's a, b */
    assert_int_equal(mle_unidentified(cov, 3), -1);
    cov[4] = 100; /* se 10: still on the line */
    assert_int_equal(mle_unidentified(cov, 3), -1);
    cov[4] = 100.5;
    assert_int_equal(mle_unidentified(cov, 3), 1);
    cov[0] = 1e6;
    assert_int_equal(mle_unidentified(cov, 3), 0);
    cov[0] = 1, cov[4] = 1, cov[8] = NAN;
    assert_int_equal(mle_unidentified(cov, 3), 2);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quadratic_closed_form),
        cmocka_unit_test(test_unidentified_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
