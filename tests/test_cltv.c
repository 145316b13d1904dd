/* test_cltv.c - lifetime value: the discounting against a hand sum of
 * expected purchases, the interval against parameter draws, input checks,
 * the JSON round trip. */
#include "testutil.h"

#include <gsl/gsl_errno.h>
#include <stdlib.h>
#include <string.h>

#include "cltv.h"
#include "sim_clv.h"

static cltv_model *fitted(void)
{
    enum { N = 4000 };
    static double x[N], tx[N], T[N], m[N];
    rfm_rng g;
    rfm_rng_seed(&g, 11);
    for (int i = 0; i < N; i++) {
        sim_customer c = sim_one(&g, 0.25, 28, 0.8, 2.5, 6, 4, 15, 180 + 540 * rfm_rng_uniform(&g), 0);
        x[i] = c.x, tx[i] = c.t_x, T[i] = c.T, m[i] = c.m;
    }
    cltv_options o;
    cltv_default_options(&o);
    cltv_model *c;
    char err[RFM_ERRLEN];
    if (cltv_fit(x, tx, T, m, N, &o, &c, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    return c;
}

static void test_discounting_by_hand(void **state)
{
    (void)state;
    bgnbd_params b = {0.25, 28, 0.8, 2.5};
    gg_params g = {6, 4, 15};
    double x = 3, tx = 200, T = 300, m = 40, d = 0.01;
    /* lifetimes: sum over months i of (E[Y(30 i)] - E[Y(30 (i-1))]) * spend / (1+d)^i */
    double spend = gg_expected_spend(&g, x, m), want = 0;
    for (int i = 1; i <= 12; i++)
        want += (bgnbd_expected(&b, 30.0 * i, x, tx, T) - bgnbd_expected(&b, 30.0 * (i - 1), x, tx, T)) *
                spend / pow(1 + d, i);
    report_maxdiff("360-day value vs lifetimes' monthly sum",
                   fabs(cltv_value(&b, &g, x, tx, T, m, 360, d) - want), 1e-9);
    /* No discount: value = expected purchases x expected spend. */
    assert_near(cltv_value(&b, &g, x, tx, T, m, 365, 0),
                bgnbd_expected(&b, 365, x, tx, T) * spend, 1e-9);
}

static void test_predict_interval_and_checks(void **state)
{
    (void)state;
    cltv_model *c = fitted();
    cltv_prediction p;
    char err[RFM_ERRLEN];
    assert_int_equal(cltv_predict(c, 4, 250, 400, 45, 365, 0.01, &p, err, sizeof err), RFM_OK);
    printf("    p_alive %.4f purchases %.3f spend %.2f cltv %.2f [%.2f, %.2f]\n", p.p_alive,
           p.expected_purchases, p.expected_avg_spend, p.cltv, p.lower, p.upper);
    assert_true(p.lower < p.cltv && p.cltv < p.upper);
    /* The delta-method interval against the spread of values under
     * parameter draws from the same covariance (independent method). */
    const bgnbd_fit_result *bf = cltv_bgnbd(c);
    const gg_fit_result *gf = cltv_gg(c);
    rfm_rng g;
    rfm_rng_seed(&g, 4);
    enum { D = 400 };
    double vals[D];
    double L[16] = {0}, M[9] = {0};
    /* Cholesky factors of the two covariance blocks */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j <= i; j++) {
            double s = bf->cov_log[i * 4 + j];
            for (int k = 0; k < j; k++)
                s -= L[i * 4 + k] * L[j * 4 + k];
            L[i * 4 + j] = i == j ? sqrt(s) : s / L[j * 4 + j];
        }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j <= i; j++) {
            double s = gf->cov_log[i * 3 + j];
            for (int k = 0; k < j; k++)
                s -= M[i * 3 + k] * M[j * 3 + k];
            M[i * 3 + j] = i == j ? sqrt(s) : s / M[j * 3 + j];
        }
    for (int dd = 0; dd < D; dd++) {
        double z[7], u[7];
        for (int k = 0; k < 7; k++)
            z[k] = rfm_rng_normal(&g);
        double base[7] = {log(bf->p.r), log(bf->p.alpha), log(bf->p.a), log(bf->p.b),
                          log(gf->p.p), log(gf->p.q), log(gf->p.v)};
        for (int i = 0; i < 4; i++) {
            u[i] = base[i];
            for (int k = 0; k <= i; k++)
                u[i] += L[i * 4 + k] * z[k];
        }
        for (int i = 0; i < 3; i++) {
            u[4 + i] = base[4 + i];
            for (int k = 0; k <= i; k++)
                u[4 + i] += M[i * 3 + k] * z[4 + k];
        }
        bgnbd_params bb = {exp(u[0]), exp(u[1]), exp(u[2]), exp(u[3])};
        gg_params gg = {exp(u[4]), exp(u[5]), exp(u[6])};
        vals[dd] = log(cltv_value(&bb, &gg, 4, 250, 400, 45, 365, 0.01));
    }
    double s = 0, ss = 0;
    for (int dd = 0; dd < D; dd++)
        s += vals[dd], ss += vals[dd] * vals[dd];
    double sd_draws = sqrt(ss / D - (s / D) * (s / D));
    double sd_delta = log(p.upper / p.cltv) / 1.96;
    printf("    sd of log value: delta method %.4f, parameter draws %.4f\n", sd_delta, sd_draws);
    assert_true(fabs(sd_delta - sd_draws) < 0.25 * sd_draws);

    /* Impossible inputs name the field. */
    assert_int_equal(cltv_predict(c, 2, 500, 400, 10, 365, 0.01, &p, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "cannot exceed"));
    assert_int_equal(cltv_predict(c, 0, 30, 400, 0, 365, 0.01, &p, err, sizeof err), RFM_EINVAL);
    assert_int_equal(cltv_predict(c, 2, 30, 400, 0, 365, 0.01, &p, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "mean_repeat_spend"));
    assert_int_equal(cltv_predict(c, 2, 30, 400, 9, 0, 0.01, &p, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "horizon_days"));
    /* Edges: frequency 0, ten years, spends of 1e7: finite. */
    assert_int_equal(cltv_predict(c, 0, 0, 3650, 0, 365, 0.01, &p, err, sizeof err), RFM_OK);
    assert_true(isfinite(p.cltv) && p.cltv > 0 && p.p_alive == 1);
    assert_int_equal(cltv_predict(c, 40, 3600, 3650, 1e7, 3650, 0.01, &p, err, sizeof err), RFM_OK);
    assert_true(isfinite(p.cltv) && isfinite(p.upper));

    /* JSON round trip: the same predictions. */
    json_t *j;
    assert_int_equal(cltv_to_json(c, &j, err, sizeof err), RFM_OK);
    char *text = json_dumps(j, JSON_REAL_PRECISION(17));
    json_decref(j);
    j = json_loads(text, 0, NULL);
    free(text);
    cltv_model *c2;
    assert_int_equal(cltv_from_json(j, &c2, err, sizeof err), RFM_OK);
    assert_non_null(json_object_get(json_object_get(j, "bgnbd"), "alpha"));
    assert_non_null(json_object_get(json_object_get(j, "gamma_gamma"), "v"));
    json_decref(j);
    cltv_prediction q;
    assert_int_equal(cltv_predict(c, 4, 250, 400, 45, 365, 0.01, &p, err, sizeof err), RFM_OK);
    assert_int_equal(cltv_predict(c2, 4, 250, 400, 45, 365, 0.01, &q, err, sizeof err), RFM_OK);
    assert_memory_equal(&p, &q, sizeof p);
    cltv_free(c);
    cltv_free(c2);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discounting_by_hand),
        cmocka_unit_test(test_predict_interval_and_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
