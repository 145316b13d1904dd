/* test_drift.c - PSI against hand-worked examples, decile bins with ties
 * counted by hand and by brute force, the two-half window against a naive
 * replay of the same stream, and counting from many threads. */
#include "testutil.h"

#include <pthread.h>
#include <string.h>

#include "drift.h"
#include "rng.h"

static void test_psi_hand_example(void **state)
{
    (void)state;
    /* (0.5-0.25) ln 2 + 0 + (0.25-0.5) ln(1/2) = 0.5 ln 2 */
    const double e[3] = {0.25, 0.25, 0.5}, a[3] = {0.5, 0.25, 0.25};
    double worst = fabs(drift_psi(e, a, 3) - 0.5 * log(2.0));
    /* Same shares: 0. */
    worst = fmax(worst, fabs(drift_psi(e, e, 3)));
    /* An empty bin is floored at 1e-4: 0.5 ln 2 + (1e-4 - 0.5) ln(1e-4 / 0.5). */
    const double e2[2] = {0.5, 0.5}, a2[2] = {1.0, 0.0};
    worst = fmax(worst, fabs(drift_psi(e2, a2, 2) - (0.5 * log(2.0) + 0.4999 * log(5000.0))));
    report_maxdiff("PSI vs hand examples", worst, 1e-15);
}

static void test_bins_with_ties(void **state)
{
    (void)state;
    /* 20 values: eight 1s, four 2s, three 3s, then 5 7 9 11 13. Edges at
     * ranks 2, 4, ..., 18: 1 1 1 1 2 2 3 5 9 -> unique 1 2 3 5 9. */
    const double v[20] = {3, 1, 13, 1, 2, 1, 1, 9, 2, 1, 3, 5, 1, 11, 2, 1, 7, 3, 2, 1};
    drift_bins b;
    char err[RFM_ERRLEN];
    assert_int_equal(drift_bins_build(v, 20, &b, err, sizeof err), RFM_OK);
    const double edges[5] = {1, 2, 3, 5, 9};
    const double shares[6] = {0.40, 0.20, 0.15, 0.05, 0.10, 0.10};
    assert_int_equal(b.nbins, 6);
    double worst = 0;
    for (int k = 0; k < 5; k++)
        worst = fmax(worst, fabs(b.edges[k] - edges[k]));
    for (int k = 0; k < 6; k++)
        worst = fmax(worst, fabs(b.expected[k] - shares[k]));
    report_maxdiff("edges and shares vs hand count", worst, 1e-15);
    assert_int_equal(drift_bin(&b, 0.5), 0);
    assert_int_equal(drift_bin(&b, 1), 0);
    assert_int_equal(drift_bin(&b, 1.5), 1);
    assert_int_equal(drift_bin(&b, 9), 4);
    assert_int_equal(drift_bin(&b, 1e9), 5);
    /* All equal: one bin holding everything. NaN only: refused. */
    const double same[4] = {7, 7, 7, 7}, nan4[2] = {NAN, NAN};
    assert_int_equal(drift_bins_build(same, 4, &b, err, sizeof err), RFM_OK);
    assert_int_equal(b.nbins, 1);
    assert_near(b.expected[0], 1.0, 0);
    assert_int_equal(drift_bins_build(nan4, 2, &b, err, sizeof err), RFM_EDATA);
}

/* Shares from drift_bins_build against a brute-force count with
 * drift_bin, on integer-valued data with heavy ties and on continuous data. */
static void test_bins_brute_force(void **state)
{
    (void)state;
    enum { N = 5000 };
    static double v[N];
    rfm_rng rng;
    rfm_rng_seed(&rng, 11);
    double worst = 0;
    for (int kind = 0; kind < 2; kind++) {
        for (int i = 0; i < N; i++)
            v[i] = kind == 0 ? (double)(1 + rfm_rng_below(&rng, 1 + rfm_rng_below(&rng, 6)))
                             : exp(rfm_rng_normal(&rng));
        drift_bins b;
        char err[RFM_ERRLEN];
        assert_int_equal(drift_bins_build(v, N, &b, err, sizeof err), RFM_OK);
        size_t counts[DRIFT_MAX_BINS] = {0};
        for (int i = 0; i < N; i++)
            counts[drift_bin(&b, v[i])]++;
        double sum = 0;
        for (size_t k = 0; k < b.nbins; k++) {
            worst = fmax(worst, fabs(b.expected[k] - (double)counts[k] / N));
            assert_true(counts[k] > 0);
            sum += b.expected[k];
        }
        worst = fmax(worst, fabs(sum - 1));
        printf("    %s: %zu bins, first share %.4f\n", kind == 0 ? "ties" : "lognormal", b.nbins,
               b.expected[0]);
        if (kind == 1)
            assert_int_equal(b.nbins, 10);
        else
            assert_true(b.nbins < 10);
    }
    report_maxdiff("shares vs brute-force counts", worst, 1e-12);
}

/* The window after t observations holds those from the start of the last
 * completed half on: replay the stream and count that range directly. */
static void test_window_vs_naive(void **state)
{
    (void)state;
    const double v[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    drift_bins b;
    char err[RFM_ERRLEN];
    assert_int_equal(drift_bins_build(v, 10, &b, err, sizeof err), RFM_OK);
    assert_int_equal(b.nbins, 10);
    const size_t half = 50;
    drift_monitor *m = drift_monitor_new(&b, 1, 2 * half);
    assert_non_null(m);
    enum { T = 437 };
    double stream[T];
    rfm_rng rng;
    rfm_rng_seed(&rng, 5);
    for (size_t t = 0; t < T; t++) {
        /* Drifting stream: the mean moves, so halves differ. */
        stream[t] = (double)rfm_rng_below(&rng, 10) * (double)(t + 50) / (T + 50);
        drift_monitor_observe(m, &stream[t]);
        size_t seen = t + 1, start = seen / half >= 1 ? (seen / half - 1) * half : 0;
        size_t naive[DRIFT_MAX_BINS] = {0}, got[DRIFT_MAX_BINS];
        for (size_t i = start; i < seen; i++)
            naive[drift_bin(&b, stream[i])]++;
        drift_monitor_counts(m, 0, got);
        for (size_t k = 0; k < b.nbins; k++)
            if (got[k] != naive[k])
                fail_msg("after %zu: bin %zu has %zu, naive %zu", seen, k, got[k], naive[k]);
    }
    /* PSI from the monitor equals PSI of the naive window's shares. */
    size_t start = (T / half - 1) * half, naive[DRIFT_MAX_BINS] = {0}, n;
    for (size_t i = start; i < T; i++)
        naive[drift_bin(&b, stream[i])]++;
    double a[DRIFT_MAX_BINS], psi;
    for (size_t k = 0; k < b.nbins; k++)
        a[k] = (double)naive[k] / (double)(T - start);
    drift_monitor_psi(m, &psi, &n);
    assert_int_equal(n, T - start);
    report_maxdiff("window PSI vs naive window PSI", fabs(psi - drift_psi(b.expected, a, 10)),
                   1e-12);
    drift_monitor_free(m);
}

/* Same distribution: small PSI; a shifted one: large. */
static void test_psi_detects_shift(void **state)
{
    (void)state;
    enum { N = 20000 };
    static double train[N];
    rfm_rng rng;
    rfm_rng_seed(&rng, 3);
    for (int i = 0; i < N; i++)
        train[i] = rfm_rng_normal(&rng);
    drift_bins b;
    char err[RFM_ERRLEN];
    assert_int_equal(drift_bins_build(train, N, &b, err, sizeof err), RFM_OK);
    drift_monitor *same = drift_monitor_new(&b, 1, 100000);
    drift_monitor *moved = drift_monitor_new(&b, 1, 100000);
    for (int i = 0; i < N; i++) {
        double x = rfm_rng_normal(&rng), y = x + 0.5;
        drift_monitor_observe(same, &x);
        drift_monitor_observe(moved, &y);
    }
    double p0, p1;
    size_t n0, n1;
    drift_monitor_psi(same, &p0, &n0);
    drift_monitor_psi(moved, &p1, &n1);
    printf("    PSI same distribution %.4f, mean shifted by 0.5 sd %.4f\n", p0, p1);
    assert_true(p0 < 0.01);
    assert_true(p1 > 0.2);
    drift_monitor_free(same);
    drift_monitor_free(moved);
}

typedef struct {
    drift_monitor *m;
    int seed;
} job;

static void *hammer(void *arg)
{
    job *j = arg;
    rfm_rng rng;
    rfm_rng_seed(&rng, (uint64_t)j->seed);
    for (int i = 0; i < 20000; i++) {
        double x[2] = {(double)rfm_rng_below(&rng, 10), i % 7 == 0 ? NAN : 3.0};
        drift_monitor_observe(j->m, x);
    }
    return NULL;
}

/* Eight threads, no rotation: every increment lands. With rotations (small
 * window), the window stays within its bounds. */
static void test_threads(void **state)
{
    (void)state;
    const double v[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    drift_bins b[2];
    char err[RFM_ERRLEN];
    assert_int_equal(drift_bins_build(v, 10, &b[0], err, sizeof err), RFM_OK);
    b[1] = b[0];
    for (size_t window = 1000000; window >= 1000; window /= 1000) {
        drift_monitor *m = drift_monitor_new(b, 2, window);
        pthread_t th[8];
        job jobs[8];
        for (int t = 0; t < 8; t++) {
            jobs[t] = (job){m, t + 1};
            pthread_create(&th[t], NULL, hammer, &jobs[t]);
        }
        for (int t = 0; t < 8; t++)
            pthread_join(th[t], NULL);
        double psi[2];
        size_t n[2];
        drift_monitor_psi(m, psi, n);
        printf("    window %zu: %zu and %zu observations counted of 160000\n", window, n[0], n[1]);
        if (window == 1000000) {
            assert_int_equal(n[0], 160000);
            assert_int_equal(n[1], 160000 - 8 * ((20000 + 6) / 7)); /* NaNs skipped */
        } else {
            assert_true(n[0] >= window / 2 - 8 && n[0] <= window + 8);
        }
        drift_monitor_free(m);
    }
    assert_null(drift_monitor_new(b, 0, 100));
    assert_null(drift_monitor_new(b, 2, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_psi_hand_example),  cmocka_unit_test(test_bins_with_ties),
        cmocka_unit_test(test_bins_brute_force),  cmocka_unit_test(test_window_vs_naive),
        cmocka_unit_test(test_psi_detects_shift), cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
