/* test_metrics.c - AUC against pair counting, log loss, Brier and the
 * calibration table against hand-computed values and naive versions. */
#include "testutil.h"

#include <gsl/gsl_errno.h>
#include <string.h>

#include "metrics.h"
#include "rng.h"

/* O(n^2) definition of the weighted AUC: every positive/negative pair. */
static double auc_pairs(const double *p, const int *y, const double *w, size_t n)
{
    double num = 0.0, wp = 0.0, wn = 0.0;
    for (size_t i = 0; i < n; i++) {
        double wi = w ? w[i] : 1.0;
        if (y[i])
            wp += wi;
        else
            wn += wi;
        if (!y[i])
            continue;
        for (size_t j = 0; j < n; j++) {
            if (y[j])
                continue;
            double wj = w ? w[j] : 1.0;
            num += wi * wj * (p[i] > p[j] ? 1.0 : (p[i] == p[j] ? 0.5 : 0.0));
        }
    }
    return num / (wp * wn);
}

static double auc_ok(const double *p, const int *y, const double *w, size_t n)
{
    double a = -1.0;
    char err[RFM_ERRLEN] = "";
    rfm_status st = metrics_auc(p, y, w, n, &a, err, sizeof err);
    if (st != RFM_OK)
        fail_msg("metrics_auc: %s", err);
    return a;
}

static void test_auc_hand(void **state)
{
    (void)state;
    /* scikit-learn's roc_auc_score docstring example: 3 of 4 pairs ordered. */
    const double p[] = {0.1, 0.4, 0.35, 0.8};
    const int y[] = {0, 0, 1, 1};
    assert_near(auc_ok(p, y, NULL, 4), 0.75, 1e-15);
    /* A tie between the only positive and the only negative counts one half. */
    const double pt[] = {0.5, 0.5};
    const int yt[] = {0, 1};
    assert_near(auc_ok(pt, yt, NULL, 2), 0.5, 1e-15);
    /* Perfect ranking and reversed ranking. */
    const double pr[] = {0.1, 0.2, 0.9, 0.95};
    const int yr[] = {0, 0, 1, 1}, yv[] = {1, 1, 0, 0};
    assert_near(auc_ok(pr, yr, NULL, 4), 1.0, 0.0);
    assert_near(auc_ok(pr, yv, NULL, 4), 0.0, 0.0);
}

static void test_auc_vs_pairs(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 42);
    enum { N = 700 };
    static double p[N], w[N];
    static int y[N];
    double maxdiff = 0.0;
    for (int rep = 0; rep < 20; rep++) {
        /* Coarse grids in half the repeats force many ties. */
        double grid = rep % 2 ? 0.05 : 0.0;
        for (int i = 0; i < N; i++) {
            double u = rfm_rng_uniform(&rng);
            y[i] = rfm_rng_uniform(&rng) < 0.3 + 0.4 * u;
            p[i] = grid > 0 ? floor(u / grid) * grid : u;
            w[i] = rep % 4 < 2 ? 1.0 : 3.0 * rfm_rng_uniform(&rng);
        }
        const double *wp = rep % 4 < 2 ? NULL : w;
        maxdiff = fmax(maxdiff, fabs(auc_ok(p, y, wp, N) - auc_pairs(p, y, wp, N)));
    }
    report_maxdiff("AUC vs O(n^2) pair counting (ties, weights)", maxdiff, 1e-12);
}

static void test_logloss_brier_hand(void **state)
{
    (void)state;
    char err[RFM_ERRLEN] = "";
    double v = -1.0;
    const double p[] = {0.9, 0.2};
    const int y[] = {1, 0};
    assert_int_equal(metrics_logloss(p, y, NULL, 2, &v, err, sizeof err), RFM_OK);
    assert_near(v, -(log(0.9) + log(0.8)) / 2.0, 1e-15);
    /* Clipping: a certain wrong answer costs -log(1e-15), a certain right
     * one -log(1 - 1e-15), never Inf or 0. */
    const double pc[] = {0.0, 1.0};
    const int yc[] = {1, 1};
    const double w1[] = {1.0, 0.0}, w2[] = {0.0, 1.0};
    assert_int_equal(metrics_logloss(pc, yc, w1, 2, &v, err, sizeof err), RFM_OK);
    assert_near(v, 15.0 * log(10.0), 1e-12);
    assert_int_equal(metrics_logloss(pc, yc, w2, 2, &v, err, sizeof err), RFM_OK);
    assert_near(v, -log(1.0 - 1e-15), 1e-20);
    assert_true(v > 0.0);

    const double pb[] = {0.1, 0.9, 0.8, 0.3};
    const int yb[] = {0, 1, 1, 0};
    assert_int_equal(metrics_brier(pb, yb, NULL, 4, &v, err, sizeof err), RFM_OK);
    assert_near(v, (0.01 + 0.01 + 0.04 + 0.09) / 4.0, 1e-16);
}

/* Integer weights must equal repeating rows: an independent check of the
 * weighted paths of AUC, log loss and Brier. */
static void test_weights_equal_repeats(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 7);
    enum { N = 200 };
    double p[N], w[N], pr[N * 4];
    int y[N], yr[N * 4];
    size_t nr = 0;
    for (int i = 0; i < N; i++) {
        p[i] = floor(rfm_rng_uniform(&rng) * 20.0) / 20.0;
        y[i] = rfm_rng_uniform(&rng) < p[i];
        int k = (int)rfm_rng_below(&rng, 4); /* 0..3 copies, zero weight included */
        w[i] = k;
        for (int c = 0; c < k; c++) {
            pr[nr] = p[i];
            yr[nr++] = y[i];
        }
    }
    char err[RFM_ERRLEN] = "";
    double a, b, maxdiff = 0.0;
    assert_int_equal(metrics_auc(p, y, w, N, &a, err, sizeof err), RFM_OK);
    maxdiff = fmax(maxdiff, fabs(a - auc_ok(pr, yr, NULL, nr)));
    assert_int_equal(metrics_logloss(p, y, w, N, &a, err, sizeof err), RFM_OK);
    assert_int_equal(metrics_logloss(pr, yr, NULL, nr, &b, err, sizeof err), RFM_OK);
    maxdiff = fmax(maxdiff, fabs(a - b));
    assert_int_equal(metrics_brier(p, y, w, N, &a, err, sizeof err), RFM_OK);
    assert_int_equal(metrics_brier(pr, yr, NULL, nr, &b, err, sizeof err), RFM_OK);
    maxdiff = fmax(maxdiff, fabs(a - b));
    report_maxdiff("weighted metrics vs repeated rows", maxdiff, 1e-12);
}

static void test_calibration_hand(void **state)
{
    (void)state;
    char err[RFM_ERRLEN] = "";
    metrics_calib_bin bins[10];
    size_t nout = 0;
    /* Ten evenly spread scores, ten bins: one score per bin. */
    double p[10];
    int y[10];
    for (int i = 0; i < 10; i++) {
        p[i] = 0.05 + 0.1 * i;
        y[i] = i % 3 == 0;
    }
    assert_int_equal(metrics_calibration(p, y, NULL, 10, 10, bins, &nout, err, sizeof err), RFM_OK);
    assert_int_equal(nout, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(bins[i].count, 1);
        assert_near(bins[i].mean_predicted, p[i], 1e-15);
        assert_near(bins[i].observed_rate, (double)y[i], 0.0);
    }
    /* Two bins split at the median 0.25 (numpy interpolates 0.2 and 0.3). */
    const double p2[] = {0.4, 0.1, 0.3, 0.2};
    const int y2[] = {1, 0, 0, 1};
    assert_int_equal(metrics_calibration(p2, y2, NULL, 4, 2, bins, &nout, err, sizeof err), RFM_OK);
    assert_int_equal(nout, 2);
    assert_near(bins[0].hi, 0.25, 1e-15);
    assert_near(bins[0].mean_predicted, 0.15, 1e-15);
    assert_near(bins[0].observed_rate, 0.5, 0.0);
    assert_near(bins[1].mean_predicted, 0.35, 1e-15);
    assert_near(bins[1].observed_rate, 0.5, 0.0);
    /* Ties: four equal scores make three inner edges coincide at 0.2, so the
     * ties share bin 0, 0.8 lands in bin 3 and bins 1-2 are dropped. */
    const double p3[] = {0.2, 0.8, 0.2, 0.2, 0.2};
    const int y3[] = {0, 1, 1, 0, 0};
    assert_int_equal(metrics_calibration(p3, y3, NULL, 5, 4, bins, &nout, err, sizeof err), RFM_OK);
    assert_int_equal(nout, 2);
    assert_int_equal(bins[0].count, 4);
    assert_near(bins[0].observed_rate, 0.25, 0.0);
    assert_int_equal(bins[1].count, 1);
    assert_near(bins[1].mean_predicted, 0.8, 0.0);
}

/* Naive calibration: percentile edges by their definition, each row's bin
 * by counting the inner edges below it (numpy.searchsorted, side="left"). */
static void test_calibration_vs_naive(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 99);
    enum { N = 1001, B = 10 };
    static double p[N], w[N], srt[N];
    static int y[N];
    double maxdiff = 0.0;
    for (int rep = 0; rep < 6; rep++) {
        for (int i = 0; i < N; i++) {
            double u = rfm_rng_uniform(&rng);
            p[i] = rep % 2 ? floor(u * u * 30.0) / 30.0 : u * u;
            y[i] = rfm_rng_uniform(&rng) < p[i];
            w[i] = 0.5 + rfm_rng_uniform(&rng);
        }
        memcpy(srt, p, sizeof p);
        for (int i = 1; i < N; i++) /* insertion sort: obviously correct */
            for (int k = i; k > 0 && srt[k - 1] > srt[k]; k--) {
                double t = srt[k];
                srt[k] = srt[k - 1];
                srt[k - 1] = t;
            }
        double edge[B + 1];
        for (int k = 0; k <= B; k++) {
            double h = (N - 1) * (double)k / B;
            int lo = (int)h;
            edge[k] = lo >= N - 1 ? srt[N - 1] : srt[lo] + (h - lo) * (srt[lo + 1] - srt[lo]);
        }
        double cnt[B] = {0}, sw[B] = {0}, sp[B] = {0}, sy[B] = {0};
        for (int i = 0; i < N; i++) {
            int b = 0;
            for (int k = 1; k < B; k++)
                b += edge[k] < p[i];
            cnt[b] += 1;
            sw[b] += w[i];
            sp[b] += w[i] * p[i];
            sy[b] += w[i] * y[i];
        }
        metrics_calib_bin bins[B];
        size_t nout = 0;
        char err[RFM_ERRLEN] = "";
        assert_int_equal(metrics_calibration(p, y, w, N, B, bins, &nout, err, sizeof err), RFM_OK);
        size_t o = 0;
        for (int b = 0; b < B; b++) {
            if (cnt[b] == 0)
                continue;
            assert_true(o < nout);
            assert_int_equal(bins[o].count, (size_t)cnt[b]);
            maxdiff = fmax(maxdiff, fabs(bins[o].weight - sw[b]));
            maxdiff = fmax(maxdiff, fabs(bins[o].mean_predicted - sp[b] / sw[b]));
            maxdiff = fmax(maxdiff, fabs(bins[o].observed_rate - sy[b] / sw[b]));
            o++;
        }
        assert_int_equal(o, nout);
    }
    report_maxdiff("calibration table vs naive percentile binning", maxdiff, 1e-12);
}

static void test_bad_input(void **state)
{
    (void)state;
    char err[RFM_ERRLEN] = "";
    double v = 123.0;
    const double p[] = {0.2, 1.5};
    const int y[] = {0, 1};
    assert_int_equal(metrics_auc(p, y, NULL, 2, &v, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "p[1] = 1.5"));
    const double pn[] = {0.2, NAN};
    assert_int_equal(metrics_logloss(pn, y, NULL, 2, &v, err, sizeof err), RFM_EINVAL);
    const double pg[] = {0.2, 0.7};
    const int yb[] = {0, 2};
    assert_int_equal(metrics_brier(pg, yb, NULL, 2, &v, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "y[1] = 2"));
    const double wn[] = {1.0, -1.0};
    assert_int_equal(metrics_brier(pg, y, wn, 2, &v, err, sizeof err), RFM_EINVAL);
    const double wz[] = {0.0, 0.0};
    assert_int_equal(metrics_brier(pg, y, wz, 2, &v, err, sizeof err), RFM_EDATA);
    const int y1[] = {1, 1};
    assert_int_equal(metrics_auc(pg, y1, NULL, 2, &v, err, sizeof err), RFM_EDATA);
    assert_int_equal(metrics_auc(pg, y, NULL, 0, &v, err, sizeof err), RFM_EDATA);
    metrics_calib_bin bins[2];
    size_t nout = 77;
    assert_int_equal(metrics_calibration(pg, y, NULL, 2, 0, bins, &nout, err, sizeof err),
                     RFM_EINVAL);
    assert_int_equal(nout, 77);
    assert_true(v == 123.0); /* nothing written on failure */
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc_hand),           cmocka_unit_test(test_auc_vs_pairs),
        cmocka_unit_test(test_logloss_brier_hand), cmocka_unit_test(test_weights_equal_repeats),
        cmocka_unit_test(test_calibration_hand),   cmocka_unit_test(test_calibration_vs_naive),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
