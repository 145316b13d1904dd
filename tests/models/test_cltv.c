/* test_cltv.c - lifetime value: the discounting against a hand sum of
 * expected purchases, the interval against parameter draws, input checks,
 * the JSON round trip. */
#include "testutil.h"

#include <gsl/gsl_errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cltv.h"
#include "csv.h"
#include "date.h"
#include "numfmt.h"
#include "sha256.h"
#include "sim_clv.h"

static cltv_model *fitted(void)
{
    enum { N = 4000 };
    static double x[N], tx[N], T[N], m[N];
    rfm_rng g;
    rfm_rng_seed(&g, 11);
    for (int i = 0; i < N; i++) {
        sim_customer c =
            sim_one(&g, 0.25, 28, 0.8, 2.5, 6, 4, 15, 180 + 540 * rfm_rng_uniform(&g), 0);
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
        want += (bgnbd_expected(&b, 30.0 * i, x, tx, T) -
                 bgnbd_expected(&b, 30.0 * (i - 1), x, tx, T)) *
                spend / pow(1 + d, i);
    report_maxdiff("360-day value vs lifetimes' monthly sum",
                   fabs(cltv_value(&b, &g, x, tx, T, m, 360, d) - want), 1e-9);
    /* No discount: value = expected purchases x expected spend. */
    assert_near(cltv_value(&b, &g, x, tx, T, m, 365, 0), bgnbd_expected(&b, 365, x, tx, T) * spend,
                1e-9);
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
                          log(gf->p.p), log(gf->p.q),     log(gf->p.v)};
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

/* The six figures of a prediction as printed (numfmt), for comparing two
 * ways of computing it to the last printed digit. */
static void printed(const cltv_prediction *p, char out[6][NUMFMT_LEN])
{
    const double v[6] = {
        p->p_alive, p->expected_purchases, p->expected_avg_spend, p->cltv, p->lower, p->upper};
    for (int k = 0; k < 6; k++)
        numfmt_double(v[k], out[k]);
}

/* The delta-method interval by central differences of log cltv_value in
 * the seven log-parameters (step 1e-4: truncation of order 1e-8), the
 * reference for the fast version's ends. */
static void ref_interval(const cltv_model *c, double x, double tx, double T, double m, double H,
                         double d, double *lo, double *hi)
{
    const bgnbd_fit_result *bf = cltv_bgnbd(c);
    const gg_fit_result *gf = cltv_gg(c);
    double u[7] = {log(bf->p.r), log(bf->p.alpha), log(bf->p.a), log(bf->p.b),
                   log(gf->p.p), log(gf->p.q),     log(gf->p.v)};
    double v = cltv_value(&bf->p, &gf->p, x, tx, T, m, H, d), g[7];
    for (int k = 0; k < 7; k++) {
        double f[2];
        for (int side = 0; side < 2; side++) {
            double uu[7];
            memcpy(uu, u, sizeof uu);
            uu[k] += side ? -1e-4 : 1e-4;
            bgnbd_params b = {exp(uu[0]), exp(uu[1]), exp(uu[2]), exp(uu[3])};
            gg_params q = {exp(uu[4]), exp(uu[5]), exp(uu[6])};
            f[side] = log(cltv_value(&b, &q, x, tx, T, m, H, d));
        }
        g[k] = (f[0] - f[1]) / 2e-4;
    }
    double var = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            var += g[i] * bf->cov_log[i * 4 + j] * g[j];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            var += g[4 + i] * gf->cov_log[i * 3 + j] * g[4 + j];
    *lo = v * exp(-1.96 * sqrt(var));
    *hi = v * exp(1.96 * sqrt(var));
}

/* cltv_predict and cltv_predict_cached (terms kept by (x, T), a cache too
 * small to keep any, a cache for another horizon) against the plain
 * version, cltv_value for each of the interval's eight values. The point
 * figures equal to the last printed digit: both call the same libm
 * functions on the same arguments in the same order, the fast one only
 * fewer times. The interval's ends, the same whichever way the fast
 * version goes, within 1e-6 of central differences of step 1e-4
 * (ref_interval; seen: 3e-8, as the plain version): the fast version moves
 * the h terms by their derivatives (bgnbd_h_many_d) where the plain one
 * evaluates them at the moved parameters, and the central differences
 * over DELTA_H cancel the first-order step's error. */
static void test_fast_equals_plain(void **state)
{
    (void)state;
    cltv_model *c = fitted();
    char err[RFM_ERRLEN];
    const double H[] = {365, 30, 1, 45.5, 730, 2000}, D[] = {0.01, 0, 0.05};
    rfm_rng g;
    rfm_rng_seed(&g, 16);
    long n = 0;
    double worst = 0, worst_plain = 0;
    cltv_prediction first = {0};
    for (size_t h = 0; h < sizeof H / sizeof *H; h++) {
        double d = D[h % 3];
        cltv_cache *k, *tiny, *other, *point, *ptiny, *small, *psmall;
        assert_int_equal(cltv_cache_new(c, H[h], d, 1, 1 << 20, &k, err, sizeof err), RFM_OK);
        assert_int_equal(cltv_cache_new(c, H[h], d, 1, 16, &tiny, err, sizeof err), RFM_OK);
        assert_int_equal(cltv_cache_new(c, H[h] + 1, d, 1, 1 << 20, &other, err, sizeof err),
                         RFM_OK);
        /* Caches of the point figures' terms alone (GET /customers/{id}). */
        assert_int_equal(cltv_cache_new(c, H[h], d, 0, 1 << 20, &point, err, sizeof err), RFM_OK);
        assert_int_equal(cltv_cache_new(c, H[h], d, 0, 16, &ptiny, err, sizeof err), RFM_OK);
        /* Room for a few entries: full, emptied and filled again. */
        assert_int_equal(cltv_cache_new(c, H[h], d, 1, 8000, &small, err, sizeof err), RFM_OK);
        assert_int_equal(cltv_cache_new(c, H[h], d, 0, 2000, &psmall, err, sizeof err), RFM_OK);
        for (int i = 0; i < 300; i++) {
            /* Few (x, T) so the cache is hit; t_x and the spend vary. */
            double x = (double)rfm_rng_below(&g, 8), T = 30 + 10 * (double)rfm_rng_below(&g, 5);
            if (i % 7 == 0)
                T += rfm_rng_uniform(&g); /* days need not be whole */
            double tx = x > 0 ? T * rfm_rng_uniform(&g) : 0;
            double m = x > 0 ? 1 + 100 * rfm_rng_uniform(&g) : 0;
            cltv_prediction want, got;
            char a[6][NUMFMT_LEN], b[6][NUMFMT_LEN];
            assert_int_equal(cltv_predict_plain(c, x, tx, T, m, H[h], d, &want, err, sizeof err),
                             RFM_OK);
            printed(&want, a);
            /* A point cache asked for the interval computes it uncached. */
            cltv_cache *ways[6] = {NULL, k, tiny, other, point, small};
            for (int w = 0; w < 6; w++) {
                assert_int_equal(
                    cltv_predict_cached(c, ways[w], x, tx, T, m, H[h], d, 1, &got, err, sizeof err),
                    RFM_OK);
                printed(&got, b);
                for (int f = 0; f < 4; f++)
                    if (strcmp(a[f], b[f]) != 0)
                        fail_msg("H %g x %g t_x %g T %g m %g, way %d, figure %d: %s, plain %s",
                                 H[h], x, tx, T, m, w, f, b[f], a[f]);
                double rlo, rhi;
                ref_interval(c, x, tx, T, m, H[h], d, &rlo, &rhi);
                double ends[2][3] = {{got.lower, want.lower, rlo}, {got.upper, want.upper, rhi}};
                for (int e = 0; e < 2; e++) {
                    double rel = fabs(ends[e][0] - ends[e][2]) / fabs(ends[e][2]);
                    worst = fmax(worst, rel);
                    worst_plain =
                        fmax(worst_plain, fabs(ends[e][1] - ends[e][2]) / fabs(ends[e][2]));
                    if (!(rel <= 1e-6))
                        fail_msg("H %g x %g t_x %g T %g m %g, way %d, interval end %d: %.17g, "
                                 "central differences %.17g (plain %.17g)",
                                 H[h], x, tx, T, m, w, e, ends[e][0], ends[e][2], ends[e][1]);
                }
                /* the same whichever way the fast version goes */
                if (w > 0)
                    assert_true(got.lower == first.lower && got.upper == first.upper);
                else
                    first = got;
                n++;
            }
            /* Without the interval (cached, or uncached with the fit's own
             * terms alone, as GET /customers scores): the same point figures. */
            cltv_cache *pways[5] = {NULL, k, point, ptiny, psmall};
            for (int w = 0; w < 5; w++) {
                assert_int_equal(cltv_predict_cached(c, pways[w], x, tx, T, m, H[h], d, 0, &got,
                                                     err, sizeof err),
                                 RFM_OK);
                printed(&got, b);
                for (int f = 0; f < 4; f++)
                    assert_string_equal(a[f], b[f]);
                assert_true(isnan(got.lower) && isnan(got.upper));
            }
        }
        cltv_cache_free(k), cltv_cache_free(tiny), cltv_cache_free(other);
        cltv_cache_free(point), cltv_cache_free(ptiny), cltv_cache_free(small),
            cltv_cache_free(psmall);
    }
    /* The longest horizon (1,217 periods, the most the stack buffer holds). */
    cltv_prediction want, got;
    char a[6][NUMFMT_LEN], b[6][NUMFMT_LEN];
    assert_int_equal(cltv_predict_plain(c, 3, 200, 400, 30, 36500, 0.01, &want, err, sizeof err),
                     RFM_OK);
    assert_int_equal(cltv_predict(c, 3, 200, 400, 30, 36500, 0.01, &got, err, sizeof err), RFM_OK);
    printed(&want, a), printed(&got, b);
    for (int f = 0; f < 4; f++)
        assert_string_equal(a[f], b[f]);
    assert_true(fabs(got.lower - want.lower) <= 2e-5 * want.lower);
    assert_true(fabs(got.upper - want.upper) <= 2e-5 * want.upper);
    printf("    %ld predictions: the point figures equal to the plain version's, the interval's "
           "ends within %.2g of central differences' (the plain version's within %.2g)\n",
           n, worst, worst_plain);
    /* A bad horizon or rate is refused when the cache is made. */
    cltv_cache *k;
    assert_int_equal(cltv_cache_new(c, 0, 0.01, 1, 1 << 20, &k, err, sizeof err), RFM_EINVAL);
    assert_int_equal(cltv_cache_new(c, 365, 1, 0, 1 << 20, &k, err, sizeof err), RFM_EINVAL);
    cltv_free(c);
}

/* ---- customer summaries and the holdout check ---------------------------- */

static void test_read_summary(void **state)
{
    (void)state;
    /* Columns in another order, one extra; values by hand. */
    const char *text = "monetary_value,customer_id,note,T,recency,frequency\n"
                       "12.5,c1,x,100,40,2\n"
                       "0,c2,,30,0,0\n";
    char path[64], sha[65], err[RFM_ERRLEN], **ids;
    double *x, *tx, *T, *m;
    size_t n;
    write_temp(path, ".csv", text, strlen(text));
    assert_int_equal(cltv_read_summary(path, &ids, &x, &tx, &T, &m, &n, sha, err, sizeof err),
                     RFM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "c1");
    assert_string_equal(ids[1], "c2");
    assert_true(x[0] == 2 && tx[0] == 40 && T[0] == 100 && m[0] == 12.5);
    assert_true(x[1] == 0 && tx[1] == 0 && T[1] == 30 && m[1] == 0);
    /* The sha256 of the raw bytes, by the sha256 module directly. */
    uint8_t dg[32];
    char want[65];
    sha256_of(text, strlen(text), dg, want);
    assert_string_equal(sha, want);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids), free(x), free(tx), free(T), free(m);
    unlink(path);

    /* A bad number names file, line and column; an impossible history its
     * line; a missing column the header. */
    struct {
        const char *text, *expect;
        rfm_status st;
    } bad[] = {
        {"customer_id,frequency,recency,T,monetary_value\nc1,2,4o,100,3\n", ":2:6: recency",
         RFM_EPARSE},
        {"customer_id,frequency,recency,T,monetary_value\nc1,2,120,100,3\n", ":2: ", RFM_EPARSE},
        {"customer_id,frequency,recency,monetary_value\nc1,2,40,3\n", "column 'T'", RFM_EINVAL},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        write_temp(path, ".csv", bad[k].text, strlen(bad[k].text));
        rfm_status st = cltv_read_summary(path, &ids, &x, &tx, &T, &m, &n, sha, err, sizeof err);
        if (st != bad[k].st || !strstr(err, bad[k].expect))
            fail_msg("case %zu: status %d, '%s' lacks '%s'", k, st, err, bad[k].expect);
        for (size_t i = 0; i < n; i++)
            free(ids[i]);
        free(ids), free(x), free(tx), free(T), free(m);
        unlink(path);
    }
}

/* The holdout check's counts against the purchase days that made the file:
 * customers active before the cut, their calibration repeat days (grouped
 * 0..6, 7+) and the purchase days after the cut, in total and week by week. The predictions are
 * only checked for consistency (their sums, mae >= |mean error|, rmse >= mae). */
static void test_holdout_check(void **state)
{
    (void)state;
    enum { NC = 300, SPAN = 400, HOLD = 60 };
    int32_t day0 = date_from_ymd(2011, 1, 1);
    size_t cap = 1 << 20, len = 0;
    char *csv = malloc(cap);
    len += (size_t)snprintf(csv, cap,
                            "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n");
    static uint8_t bought[NC][SPAN];
    memset(bought, 0, sizeof bought);
    rfm_rng g;
    rfm_rng_seed(&g, 3);
    int inv = 1, last = 0;
    for (int c = 0; c < NC; c++) {
        int first = (int)rfm_rng_below(&g, SPAN - 1);
        int np = 1 + (int)rfm_rng_below(&g, 12);
        for (int p = 0; p < np; p++) {
            int dd = p == 0 ? first : first + (int)rfm_rng_below(&g, (uint64_t)(SPAN - first));
            bought[c][dd] = 1;
            last = dd > last ? dd : last;
            char date[11];
            date_format(day0 + dd, date);
            len += (size_t)snprintf(csv + len, cap - len, "%d,P,1,%s,2.50,C%03d\n", inv++, date, c);
        }
    }
    csv_reader *r;
    txn_data *d;
    txn_report rep;
    char err[RFM_ERRLEN];
    txn_options o = TXN_RETAIL_OPTIONS;
    assert_int_equal(csv_open_mem(csv, len, "h.csv", &r, err, sizeof err), RFM_OK);
    assert_int_equal(txn_read_csv(r, &o, NULL, NULL, &d, &rep, err, sizeof err), RFM_OK);
    csv_close(r);
    free(csv);

    cltv_holdout h;
    assert_int_equal(cltv_holdout_check(d, HOLD, 0, &h, err, sizeof err), RFM_OK);
    assert_true(h.ok);
    /* The snapshot is the day after the last purchase; the cut HOLD before it. */
    int cut = last + 1 - HOLD;
    char cutd[11];
    date_format(day0 + cut, cutd);
    assert_string_equal(h.cut, cutd);
    size_t n = 0, ng[CLTV_HOLDOUT_GROUPS] = {0};
    double act = 0, actg[CLTV_HOLDOUT_GROUPS] = {0};
    for (int c = 0; c < NC; c++) {
        int before = 0, after = 0;
        for (int dd = 0; dd < SPAN; dd++)
            if (bought[c][dd])
                *(dd < cut ? &before : &after) += 1;
        if (!before)
            continue;
        int grp = before - 1 >= CLTV_HOLDOUT_GROUPS - 1 ? CLTV_HOLDOUT_GROUPS - 1 : before - 1;
        n++, ng[grp]++, act += after, actg[grp] += after;
    }
    assert_int_equal(h.total_n, n);
    assert_near(h.total_actual, act, 0);
    double pred = 0;
    for (int k = 0; k < CLTV_HOLDOUT_GROUPS; k++) {
        assert_int_equal(h.n[k], ng[k]);
        assert_near(h.actual[k], actg[k], 0);
        pred += h.predicted[k];
    }
    printf("    holdout: %zu customers, %.0f days actual, %.1f predicted, mae %.3f rmse %.3f\n",
           h.total_n, h.total_actual, h.total_predicted, h.mae, h.rmse);
    assert_near(pred, h.total_predicted, 1e-9 * h.total_predicted);
    assert_true(h.mae >= fabs(h.total_actual - h.total_predicted) / (double)n - 1e-12);
    assert_true(h.rmse >= h.mae - 1e-12);
    assert_int_equal(h.days, HOLD);

    /* Tracked weekly: day 7, 14, ..., 56 and the last day 60; the purchase
     * days so far counted from the file, the expectations rising to the total. */
    assert_int_equal(h.ntrack, HOLD / 7 + 1);
    for (int k = 0; k < h.ntrack; k++) {
        int t = k + 1 < h.ntrack ? 7 * (k + 1) : HOLD;
        assert_int_equal(h.track_day[k], t);
        double so_far = 0;
        for (int c = 0; c < NC; c++) {
            int before = 0, in = 0;
            for (int dd = 0; dd < SPAN; dd++)
                if (bought[c][dd])
                    before += dd < cut, in += dd >= cut && dd < cut + t;
            so_far += before ? in : 0;
        }
        assert_near(h.track_actual[k], so_far, 0);
        assert_true(h.track_predicted[k] > (k ? h.track_predicted[k - 1] : 0));
    }
    assert_near(h.track_actual[h.ntrack - 1], h.total_actual, 0);
    assert_near(h.track_predicted[h.ntrack - 1], h.total_predicted, 1e-9 * h.total_predicted);

    /* A cut before the first purchase: nothing to check, no error. */
    assert_int_equal(cltv_holdout_check(d, SPAN + 10, 0, &h, err, sizeof err), RFM_OK);
    assert_false(h.ok);
    txn_free(d);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discounting_by_hand),
        cmocka_unit_test(test_predict_interval_and_checks),
        cmocka_unit_test(test_fast_equals_plain),
        cmocka_unit_test(test_read_summary),
        cmocka_unit_test(test_holdout_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
