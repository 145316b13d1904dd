/* test_pca.c - pca against a naive reference: the covariance summed
 * directly in one loop and diagonalised by GSL's symmetric eigensolver
 * (gsl_eigen_symmv), on seeded data with a known spectrum; projections
 * compared to the reference's; bad input refused. Tolerance 1e-9
 * relative to the largest variance: both are double-precision
 * eigen-decompositions of the same matrix, summed in different orders. */
#include "testutil.h"

#include <gsl/gsl_eigen.h>
#include <gsl/gsl_errno.h>
#include <string.h>

#include "pca.h"
#include "rng.h"

#define N 2000
#define D 8

static float x[N * D];

/* Rows mean + sum_j s_j z_j e_j rotated by a fixed orthogonal matrix:
 * variances s_j^2 known, axes the rotated unit vectors. */
static void make_data(void)
{
    rfm_rng g;
    rfm_rng_seed(&g, 11);
    const double s[D] = {9, 5, 3, 2, 1.5, 1, 0.5, 0.25};
    for (size_t i = 0; i < N; i++) {
        double z[D];
        for (int j = 0; j < D; j++)
            z[j] = s[j] * rfm_rng_normal(&g);
        /* a rotation in the (0,1) and (2,5) planes, and an offset */
        double c = cos(0.7), sn = sin(0.7);
        double r0 = c * z[0] - sn * z[1], r1 = sn * z[0] + c * z[1];
        double r2 = c * z[2] - sn * z[5], r5 = sn * z[2] + c * z[5];
        z[0] = r0, z[1] = r1, z[2] = r2, z[5] = r5;
        for (int j = 0; j < D; j++)
            x[i * D + j] = (float)(z[j] + 100 + j);
    }
}

static void naive(double *w, double *v)
{
    double mu[D] = {0}, c[D * D] = {0};
    for (size_t i = 0; i < N; i++)
        for (int j = 0; j < D; j++)
            mu[j] += x[i * D + j] / (double)N;
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) {
            double sum = 0;
            for (size_t i = 0; i < N; i++)
                sum += (x[i * D + a] - mu[a]) * (x[i * D + b] - mu[b]);
            c[a * D + b] = sum / (N - 1);
        }
    gsl_matrix_view m = gsl_matrix_view_array(c, D, D);
    gsl_vector *ev = gsl_vector_alloc(D);
    gsl_matrix *evec = gsl_matrix_alloc(D, D);
    gsl_eigen_symmv_workspace *ws = gsl_eigen_symmv_alloc(D);
    gsl_eigen_symmv(&m.matrix, ev, evec, ws);
    gsl_eigen_symmv_sort(ev, evec, GSL_EIGEN_SORT_VAL_DESC);
    for (int j = 0; j < D; j++) {
        w[j] = gsl_vector_get(ev, (size_t)j);
        for (int k = 0; k < D; k++)
            v[j * D + k] = gsl_matrix_get(evec, (size_t)k, (size_t)j);
    }
    gsl_eigen_symmv_free(ws);
    gsl_matrix_free(evec);
    gsl_vector_free(ev);
}

/* Every axis and variance equal the reference's (axes up to sign), the
 * trace is the sum of the variances, and the spectrum is the one built in. */
static void test_against_naive(void **state)
{
    (void)state;
    make_data();
    double mean[D], axes[D * D], var[D], total, w[D], v[D * D];
    char err[RFM_ERRLEN];
    assert_int_equal(pca_fit(x, N, D, D, mean, axes, var, &total, err, sizeof err), RFM_OK);
    naive(w, v);
    double worst = 0, sum = 0;
    for (int j = 0; j < D; j++) {
        worst = fmax(worst, fabs(var[j] - w[j]) / w[0]);
        double dot = 0;
        for (int k = 0; k < D; k++)
            dot += axes[j * D + k] * v[j * D + k];
        worst = fmax(worst, 1 - fabs(dot));
        sum += var[j];
    }
    printf("pca: largest difference from the naive eigen-decomposition %.3g (tolerance 1e-9)\n",
           worst);
    assert_true(worst < 1e-9);
    assert_near(total, sum, 1e-9 * total);
    /* the built-in spectrum, to sampling error (2000 rows: a few %) */
    assert_near(var[0], 81, 81 * 0.1);
    assert_near(var[1], 25, 25 * 0.1);
    assert_near(mean[3], 103, 0.5);
    /* the sign rule: the largest entry of each axis is positive */
    for (int j = 0; j < D; j++) {
        int big = 0;
        for (int k = 1; k < D; k++)
            if (fabs(axes[j * D + k]) > fabs(axes[j * D + big]))
                big = k;
        assert_true(axes[j * D + big] > 0);
    }
}

/* pca_project: the dot products with the centred row, and the projected
 * data's variance along axis 0 is its eigenvalue. */
static void test_project(void **state)
{
    (void)state;
    make_data();
    double mean[D], axes[2 * D], var[2];
    char err[RFM_ERRLEN];
    assert_int_equal(pca_fit(x, N, D, 2, mean, axes, var, NULL, err, sizeof err), RFM_OK);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < N; i++) {
        double p[2], want = 0;
        pca_project(x + i * D, D, 2, mean, axes, p);
        for (int k = 0; k < D; k++)
            want += axes[D + k] * (x[i * D + k] - mean[k]);
        assert_near(p[1], want, 1e-12 * (1 + fabs(want)));
        s += p[0], s2 += p[0] * p[0];
    }
    assert_near(s / N, 0, 1e-9);
    assert_near(s2 / (N - 1), var[0], 1e-9 * var[0]);
}

/* A 2 x 2 case by hand: [[2, 1], [1, 2]] has eigenvalues 3 and 1 on
 * (1, 1)/sqrt 2 and (1, -1)/sqrt 2 (sign: largest entry positive). */
static void test_jacobi_by_hand(void **state)
{
    (void)state;
    double a[4] = {2, 1, 1, 2}, w[2], v[4];
    assert_int_equal(pca_jacobi(a, 2, w, v), RFM_OK);
    assert_near(w[0], 3, 1e-14);
    assert_near(w[1], 1, 1e-14);
    assert_near(v[0], M_SQRT1_2, 1e-14);
    assert_near(v[1], M_SQRT1_2, 1e-14);
    assert_near(fabs(v[2]), M_SQRT1_2, 1e-14);
    assert_near(v[2] * v[3], -0.5, 1e-14);
}

static void test_bad_input(void **state)
{
    (void)state;
    double mean[D], axes[D * D], var[D];
    char err[RFM_ERRLEN];
    float y[3 * 2] = {1, 2, 3, NAN, 5, 6};
    assert_int_equal(pca_fit(y, 3, 2, 1, mean, axes, var, NULL, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "row 1, column 1"));
    assert_int_equal(pca_fit(y, 1, 2, 1, mean, axes, var, NULL, err, sizeof err), RFM_EINVAL);
    assert_int_equal(pca_fit(y, 3, 2, 3, mean, axes, var, NULL, err, sizeof err), RFM_EINVAL);
    assert_int_equal(pca_fit(y, 3, 0, 1, mean, axes, var, NULL, err, sizeof err), RFM_EINVAL);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_naive),
        cmocka_unit_test(test_project),
        cmocka_unit_test(test_jacobi_by_hand),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
