/* test_metrics.c - AUC against pair counting, log loss, Brier and the
 * calibration table against hand-computed values and naive versions; the
 * ROC curve against thresholds counted one by one, cumulative gains against
 * every order of the tied rows, the evaluation block's shape. */
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

static void roc_ok(const double *p, const int *y, const double *w, size_t n, size_t maxp,
                   metrics_roc_point *pts, size_t *npts)
{
    char err[RFM_ERRLEN] = "";
    if (metrics_roc(p, y, w, n, maxp, pts, npts, err, sizeof err) != RFM_OK)
        fail_msg("metrics_roc: %s", err);
}

static void test_roc_hand(void **state)
{
    (void)state;
    /* Descending: 0.8 (+), 0.4 (-), 0.35 (+), 0.1 (-). */
    const double p[] = {0.1, 0.4, 0.35, 0.8};
    const int y[] = {0, 0, 1, 1};
    const double want[][2] = {{0, 0}, {0, 0.5}, {0.5, 0.5}, {0.5, 1}, {1, 1}};
    metrics_roc_point pts[8];
    size_t np = 0;
    roc_ok(p, y, NULL, 4, 8, pts, &np);
    assert_int_equal(np, 5);
    for (size_t i = 0; i < np; i++) {
        assert_near(pts[i].fpr, want[i][0], 0.0);
        assert_near(pts[i].tpr, want[i][1], 0.0);
    }
    /* A tie of a positive and a negative is one diagonal step. */
    const double pt[] = {0.5, 0.5};
    const int yt[] = {0, 1};
    roc_ok(pt, yt, NULL, 2, 8, pts, &np);
    assert_int_equal(np, 2);
    assert_near(pts[1].fpr, 1.0, 0.0);
    assert_near(pts[1].tpr, 1.0, 0.0);
}

/* The ROC curve by its definition, one threshold at a time: for each
 * distinct score t from the highest, the weight of each class scored >= t. */
static size_t roc_naive(const double *p, const int *y, const double *w, size_t n, double *fpr,
                        double *tpr)
{
    double wp = 0, wn = 0;
    for (size_t i = 0; i < n; i++)
        *(y[i] ? &wp : &wn) += w ? w[i] : 1.0;
    size_t k = 0;
    fpr[k] = tpr[k] = 0.0, k++;
    double last = INFINITY;
    for (;;) {
        double t = -INFINITY; /* the next distinct score below last */
        for (size_t i = 0; i < n; i++)
            if (p[i] < last && p[i] > t)
                t = p[i];
        if (t == -INFINITY)
            break;
        double a = 0, b = 0;
        for (size_t i = 0; i < n; i++)
            if (p[i] >= t)
                *(y[i] ? &a : &b) += w ? w[i] : 1.0;
        fpr[k] = b / wn, tpr[k] = a / wp, k++;
        last = t;
    }
    return k;
}

static void test_roc_vs_naive(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 7);
    enum { N = 400, MAXP = 21 };
    static double p[N], w[N], fpr[N + 1], tpr[N + 1];
    static int y[N];
    static metrics_roc_point pts[N + 1], thin[MAXP];
    double maxdiff = 0.0, maxarea = 0.0;
    for (int rep = 0; rep < 8; rep++) {
        double grid = rep % 2 ? 0.02 : 0.0;
        for (int i = 0; i < N; i++) {
            double u = rfm_rng_uniform(&rng);
            y[i] = rfm_rng_uniform(&rng) < 0.2 + 0.6 * u;
            p[i] = grid > 0 ? floor(u / grid) * grid : u;
            w[i] = 0.2 + 2.0 * rfm_rng_uniform(&rng);
        }
        const double *wp = rep % 4 < 2 ? NULL : w;
        size_t k = roc_naive(p, y, wp, N, fpr, tpr), np = 0;
        roc_ok(p, y, wp, N, N + 1, pts, &np);
        assert_int_equal(np, k);
        double area = 0.0;
        for (size_t i = 0; i < k; i++) {
            maxdiff = fmax(maxdiff, fmax(fabs(pts[i].fpr - fpr[i]), fabs(pts[i].tpr - tpr[i])));
            if (i)
                area += (pts[i].fpr - pts[i - 1].fpr) * (pts[i].tpr + pts[i - 1].tpr) / 2;
        }
        maxarea = fmax(maxarea, fabs(area - auc_ok(p, y, wp, N)));
        /* Thinned: at most MAXP points, from (0,0) to (1,1), rising, each on the curve. */
        size_t nt = 0;
        roc_ok(p, y, wp, N, MAXP, thin, &nt);
        assert_true(nt >= 2 && nt <= MAXP);
        assert_true(thin[0].fpr == 0.0 && thin[0].tpr == 0.0);
        assert_true(thin[nt - 1].fpr == 1.0 && thin[nt - 1].tpr == 1.0);
        size_t at = 0;
        for (size_t i = 1; i + 1 < nt; i++) {
            assert_true(thin[i].fpr >= thin[i - 1].fpr && thin[i].tpr >= thin[i - 1].tpr);
            while (at < k && !(pts[at].fpr == thin[i].fpr && pts[at].tpr == thin[i].tpr))
                at++;
            assert_true(at < k); /* found on the full curve, in order */
        }
    }
    report_maxdiff("ROC points vs thresholds one by one", maxdiff, 1e-12);
    report_maxdiff("ROC trapezoid area vs metrics_auc", maxarea, 1e-12);
}

static void test_gains_hand(void **state)
{
    (void)state;
    /* Descending 0.9 (+), then a tie 0.5 (+) / 0.5 (-), then 0.1 (-): the
     * second quarter takes half the tie, so half a positive on average. */
    const double p[] = {0.5, 0.9, 0.1, 0.5};
    const int y[] = {0, 1, 0, 1};
    metrics_gains_bin g[4];
    char err[RFM_ERRLEN] = "";
    assert_int_equal(metrics_gains(p, y, NULL, 4, 4, g, err, sizeof err), RFM_OK);
    const double gain[] = {0.5, 0.75, 1.0, 1.0}, rate[] = {1.0, 0.5, 0.5, 0.0};
    for (int k = 0; k < 4; k++) {
        assert_near(g[k].share, (k + 1) / 4.0, 1e-15);
        assert_near(g[k].gain, gain[k], 1e-15);
        assert_near(g[k].lift, gain[k] / ((k + 1) / 4.0), 1e-15);
        assert_near(g[k].rate, rate[k], 1e-15);
    }
}

/* Gains by their definition for unweighted rows: the mean, over every order
 * of the rows with the scores descending (ties in any order), of the
 * positives among the first k n / nbins rows. */
static void test_gains_vs_orderings(void **state)
{
    (void)state;
    enum { N = 6 };
    rfm_rng rng;
    rfm_rng_seed(&rng, 11);
    double maxdiff = 0.0;
    for (int rep = 0; rep < 30; rep++) {
        double p[N];
        int y[N], npos = 0;
        for (int i = 0; i < N; i++) {
            p[i] = (double)(int)(3 * rfm_rng_uniform(&rng)) / 4.0; /* 0, 0.25, 0.5: ties */
            y[i] = rfm_rng_uniform(&rng) < 0.5;
            npos += y[i];
        }
        if (npos == 0)
            y[0] = 1, npos = 1;
        for (size_t nbins = 2; nbins <= N; nbins += 1) {
            if (N % nbins)
                continue;
            double sum[N + 1] = {0};
            int orders = 0, perm[N] = {0, 1, 2, 3, 4, 5};
            /* every permutation (Heap's algorithm, iterative) */
            int c[N] = {0}, i = 0;
            for (;;) {
                int ok = 1;
                for (int a = 1; a < N; a++)
                    ok &= p[perm[a - 1]] >= p[perm[a]];
                if (ok) {
                    orders++;
                    for (size_t k = 1; k <= nbins; k++) {
                        int top = (int)(k * N / nbins), pos = 0;
                        for (int a = 0; a < top; a++)
                            pos += y[perm[a]];
                        sum[k] += pos;
                    }
                }
                while (i < N && c[i] >= i)
                    c[i] = 0, i++;
                if (i == N)
                    break;
                int s = i % 2 ? c[i] : 0, t = perm[s];
                perm[s] = perm[i], perm[i] = t;
                c[i]++, i = 0;
            }
            metrics_gains_bin g[N];
            char err[RFM_ERRLEN] = "";
            assert_int_equal(metrics_gains(p, y, NULL, N, nbins, g, err, sizeof err), RFM_OK);
            for (size_t k = 1; k <= nbins; k++)
                maxdiff = fmax(maxdiff, fabs(g[k - 1].gain - sum[k] / orders / npos));
        }
    }
    report_maxdiff("gains vs the mean over tie orders", maxdiff, 1e-12);
}

static void test_evaluation_json(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 5);
    enum { N = 3000 };
    static double p[N];
    static int y[N];
    for (int i = 0; i < N; i++) {
        p[i] = rfm_rng_uniform(&rng);
        y[i] = rfm_rng_uniform(&rng) < p[i];
    }
    json_t *j = NULL;
    char err[RFM_ERRLEN] = "";
    assert_int_equal(metrics_evaluation_json(p, y, N, &j, err, sizeof err), RFM_OK);
    assert_int_equal(json_integer_value(json_object_get(j, "customers")), N);
    assert_near(json_real_value(json_object_get(j, "auc")), auc_ok(p, y, NULL, N), 0.0);
    const json_t *roc = json_object_get(j, "roc"), *g = json_object_get(j, "gains");
    /* 3000 distinct scores: thinned to the cap, ending at (1, 1). */
    assert_true(json_array_size(roc) >= 100 && json_array_size(roc) <= METRICS_EVAL_ROC_POINTS);
    const json_t *last = json_array_get(roc, json_array_size(roc) - 1);
    assert_near(json_real_value(json_array_get(last, 0)), 1.0, 0.0);
    assert_int_equal(json_array_size(json_object_get(j, "calibration")), METRICS_EVAL_BINS);
    assert_int_equal(json_array_size(g), METRICS_EVAL_BINS);
    /* Scores that carry signal: the top decile holds more than its share. */
    assert_true(json_real_value(json_object_get(json_array_get(g, 0), "lift")) > 1.5);
    assert_near(json_real_value(json_object_get(json_array_get(g, 9), "gain")), 1.0, 0.0);
    json_decref(j);
    /* One class only: no evaluation, a reason. */
    for (int i = 0; i < N; i++)
        y[i] = 0;
    assert_int_equal(metrics_evaluation_json(p, y, N, &j, err, sizeof err), RFM_EDATA);
    assert_null(j);
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
    metrics_roc_point pts[4];
    size_t np = 77;
    assert_int_equal(metrics_roc(pg, y, NULL, 2, 2, pts, &np, err, sizeof err), RFM_EINVAL);
    assert_int_equal(metrics_roc(pg, y1, NULL, 2, 4, pts, &np, err, sizeof err), RFM_EDATA);
    assert_int_equal(np, 77);
    metrics_gains_bin g[2];
    const int y0[] = {0, 0};
    assert_int_equal(metrics_gains(pg, y0, NULL, 2, 2, g, err, sizeof err), RFM_EDATA);
    assert_int_equal(metrics_gains(pg, y, NULL, 2, 0, g, err, sizeof err), RFM_EINVAL);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc_hand),           cmocka_unit_test(test_auc_vs_pairs),
        cmocka_unit_test(test_logloss_brier_hand), cmocka_unit_test(test_weights_equal_repeats),
        cmocka_unit_test(test_calibration_hand),   cmocka_unit_test(test_calibration_vs_naive),
        cmocka_unit_test(test_roc_hand),           cmocka_unit_test(test_roc_vs_naive),
        cmocka_unit_test(test_gains_hand),         cmocka_unit_test(test_gains_vs_orderings),
        cmocka_unit_test(test_evaluation_json),    cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
