/* test_mle.c - the fitter against closed forms: a quadratic's minimum and
 * inverse Hessian, the domain bound MLE_LOG_BOUND it keeps every objective
 * call inside (BG/NBD and Gamma-Gamma rely on it), and the identifiability
 * line on hand-made covariances. */
#include "testutil.h"

#include <string.h>

#include "mle.h"

typedef struct {
    double centre[2];
    double max_abs_u; /* the largest |u_k| the objective was called with */
    long calls;
} quad;

/* f(u) = (u0 - c0)^2 + 2 (u1 - c1)^2: minimum at c, Hessian diag(2, 4). */
static double f_quad(const double *u, double *g, double *h, void *data)
{
    (void)h; /* no second derivatives: the fitter takes differences */
    quad *q = data;
    q->calls++;
    for (int k = 0; k < 2; k++)
        q->max_abs_u = fmax(q->max_abs_u, fabs(u[k]));
    double d0 = u[0] - q->centre[0], d1 = u[1] - q->centre[1];
    g[0] = 2 * d0;
    g[1] = 4 * d1;
    return d0 * d0 + 2 * d1 * d1;
}

static void test_quadratic_closed_form(void **state)
{
    (void)state;
    quad q = {{3, -2}, 0, 0};
    const double starts[4] = {0, 0, 1, 1};
    mle_result r;
    char err[RFM_ERRLEN];
    assert_int_equal(mle_fit(f_quad, &q, 2, starts, 2, 1e-9, 200, &r, err, sizeof err), RFM_OK);
    double md = fmax(fabs(r.u[0] - 3), fabs(r.u[1] + 2));
    report_maxdiff("argmin vs (3, -2)", md, 1e-7);
    /* cov is the inverse Hessian: diag(1/2, 1/4). */
    md = fmax(fmax(fabs(r.cov[0] - 0.5), fabs(r.cov[3] - 0.25)),
              fmax(fabs(r.cov[1]), fabs(r.cov[2])));
    report_maxdiff("inverse Hessian vs diag(1/2, 1/4)", md, 1e-5);
}

/* A minimum outside the domain: the objective is never called at or past
 * the bound, and the fit does not claim convergence. */
static void test_domain_bound(void **state)
{
    (void)state;
    quad q = {{45, 0}, 0, 0};
    const double starts[2] = {0, 0};
    mle_result r;
    char err[RFM_ERRLEN];
    rfm_status st = mle_fit(f_quad, &q, 2, starts, 1, 1e-9, 200, &r, err, sizeof err);
    printf("    minimum at u0 = 45: %ld calls, largest |u| %.6g (bound %g), status %d: %s\n",
           q.calls, q.max_abs_u, MLE_LOG_BOUND, st, st ? err : "ok");
    assert_true(q.calls > 0);
    assert_true(q.max_abs_u < MLE_LOG_BOUND);
    assert_int_equal(st, RFM_ENOCONVERGE);
    assert_false(r.converged);

    /* A start outside the domain is skipped, not evaluated. */
    quad q2 = {{1, 1}, 0, 0};
    const double outside[4] = {31, 0, 0, 0};
    assert_int_equal(mle_fit(f_quad, &q2, 2, outside, 2, 1e-9, 200, &r, err, sizeof err), RFM_OK);
    assert_true(q2.max_abs_u < MLE_LOG_BOUND);
    assert_near(r.u[0], 1, 1e-7);
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

/* An optimum on the boundary: f(u) = c e^-u0 + (u1 - 1)^2 / 2 falls for
 * ever as u0 grows, so the optimiser stops where the gradient meets its
 * tolerance. There the curvature is about the tolerance: positive definite,
 * and with W = 1e6 customers the standard error of u0 is about 1, well
 * inside the identifiability line, yet a step of 10 along u0 lowers f.
 * mle_interior tells it from a quadratic's interior optimum. */
/* f(u) = 1/2 (u - c)' A (u - c), A = [[4, 1], [1, 2]], c = (0.5, -1.5). */
static double tilted(const double *u, double *g, double *h, void *d)
{
    (void)h; /* no second derivatives: the fitter takes differences */
    (void)d;
    double e0 = u[0] - 0.5, e1 = u[1] + 1.5;
    g[0] = 4 * e0 + e1;
    g[1] = e0 + 2 * e1;
    return 0.5 * (4 * e0 * e0 + 2 * e0 * e1 + 2 * e1 * e1);
}

static double falling(const double *u, double *g, double *h, void *d)
{
    (void)h; /* no second derivatives: the fitter takes differences */
    (void)d;
    g[0] = -2 * exp(-u[0]);
    g[1] = u[1] - 1;
    return 2 * exp(-u[0]) + 0.5 * (u[1] - 1) * (u[1] - 1);
}

static void test_boundary_optimum(void **state)
{
    (void)state;
    const double start[2] = {0, 0}, W = 1e6;
    const char *const names[2] = {"s", "t"};
    mle_result r;
    char err[RFM_ERRLEN];
    assert_int_equal(mle_fit(falling, NULL, 2, start, 1, 1e-6, 500, &r, err, sizeof err), RFM_OK);
    double cov[4], se[2], lo[2], hi[2], rise[2];
    mle_standard_errors(&r, 2, W, cov, se, lo, hi);
    printf("    stopped at u0 = %.3g, se(u0) %.3g\n", r.u[0], sqrt(cov[0]));
    assert_int_equal(mle_unidentified(cov, 2), -1); /* the standard errors do not show it */
    assert_int_equal(mle_interior(falling, NULL, 2, r.u, W, rise), 0);
    printf("    rises along the flattest direction: %.3g, %.3g\n", rise[0], rise[1]);
    assert_true(rise[1] < 0); /* further out is better: no interior optimum */
    assert_int_equal(mle_check_identified(falling, NULL, 2, &r, W, cov, names, err, sizeof err),
                     RFM_ENOCONVERGE);
    assert_non_null(strstr(err, "boundary"));
    assert_non_null(strstr(err, "s = "));
    /* A tilted quadratic's optimum is inside: both sides rise by W times the
     * closed form 1/2 d' A d, with A = [[4, 1], [1, 2]] and d its flattest
     * eigenvector (eigenvalue 3 - sqrt 2) scaled to a largest step of 10. */
    const double starts[2] = {3, 3};
    assert_int_equal(mle_fit(tilted, NULL, 2, starts, 1, 1e-10, 200, &r, err, sizeof err), RFM_OK);
    assert_int_equal(mle_interior(tilted, NULL, 2, r.u, 1, rise), 1);
    double l = 3 - sqrt(2), v0 = 1, v1 = l - 4, top = fmax(fabs(v0), fabs(v1));
    double d0 = 10 * v0 / top, d1 = 10 * v1 / top;
    double want = 0.5 * (4 * d0 * d0 + 2 * d0 * d1 + 2 * d1 * d1);
    report_maxdiff("rises vs closed form", fmax(fabs(rise[0] - want), fabs(rise[1] - want)),
                   1e-6 * want);
    assert_int_equal(mle_check_identified(tilted, NULL, 2, &r, 1, r.cov, names, err, sizeof err),
                     RFM_OK);
}

/* A smooth non-quadratic bowl (log-sum-exp plus a quartic), where GSL's
 * line search tries points it then keeps: the fitter asks the objective for
 * each point once. Records how often it was called twice in a row at the
 * same u (only newton's entry may repeat BFGS's last point: once per start). */
typedef struct {
    double last[2];
    long calls, repeats;
} bowl;

static double f_bowl(const double *u, double *g, double *h, void *data)
{
    (void)h; /* no second derivatives: the fitter takes differences */
    bowl *b = data;
    if (b->calls++ > 0 && memcmp(u, b->last, sizeof b->last) == 0)
        b->repeats++;
    memcpy(b->last, u, sizeof b->last);
    double e0 = exp(u[0] - 1), e1 = exp(-u[0] + 1), d1 = u[1] + 0.5;
    g[0] = e0 - e1;
    g[1] = 4 * d1 * d1 * d1 + 2 * d1;
    return e0 + e1 + d1 * d1 * d1 * d1 + d1 * d1;
}

/* The same bowl with its second derivatives: the fitter takes them instead
 * of differences of the gradient, reaches the same argmin and inverse
 * Hessian, and calls the objective fewer times. */
static double f_bowl_h(const double *u, double *g, double *h, void *data)
{
    double f = f_bowl(u, g, NULL, data);
    if (h) {
        double e0 = exp(u[0] - 1), e1 = exp(-u[0] + 1), d1 = u[1] + 0.5;
        h[0] = e0 + e1;
        h[1] = h[2] = 0;
        h[3] = 12 * d1 * d1 + 2;
    }
    return f;
}

static void test_analytic_hessian(void **state)
{
    (void)state;
    bowl b = {{0, 0}, 0, 0}, bh = {{0, 0}, 0, 0};
    const double starts[6] = {0, 0, 3, 2, -2, -3};
    mle_result r, rh;
    char err[RFM_ERRLEN];
    assert_int_equal(mle_fit(f_bowl, &b, 2, starts, 3, 1e-9, 200, &r, err, sizeof err), RFM_OK);
    assert_int_equal(mle_fit(f_bowl_h, &bh, 2, starts, 3, 1e-9, 200, &rh, err, sizeof err), RFM_OK);
    report_maxdiff("argmin vs (1, -0.5)", fmax(fabs(rh.u[0] - 1), fabs(rh.u[1] + 0.5)), 1e-7);
    /* at the argmin the Hessian is diag(2, 2): the inverse diag(1/2, 1/2) */
    report_maxdiff("inverse Hessian vs diag(1/2, 1/2)",
                   fmax(fmax(fabs(rh.cov[0] - 0.5), fabs(rh.cov[3] - 0.5)),
                        fmax(fabs(rh.cov[1]), fabs(rh.cov[2]))),
                   1e-9);
    printf("    objective calls: %ld with differences, %ld with second derivatives\n", b.calls,
           bh.calls);
    assert_true(bh.calls < b.calls);
}

static void test_each_point_once(void **state)
{
    (void)state;
    bowl b = {{0, 0}, 0, 0};
    const double starts[6] = {0, 0, 3, 2, -2, -3};
    mle_result r;
    char err[RFM_ERRLEN];
    assert_int_equal(mle_fit(f_bowl, &b, 2, starts, 3, 1e-9, 200, &r, err, sizeof err), RFM_OK);
    report_maxdiff("argmin vs (1, -0.5)", fmax(fabs(r.u[0] - 1), fabs(r.u[1] + 0.5)), 1e-7);
    printf("  %ld objective calls, %ld at the point of the call before\n", b.calls, b.repeats);
    assert_true(b.repeats <= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quadratic_closed_form), cmocka_unit_test(test_domain_bound),
        cmocka_unit_test(test_unidentified_line),     cmocka_unit_test(test_boundary_optimum),
        cmocka_unit_test(test_each_point_once),       cmocka_unit_test(test_analytic_hessian),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
