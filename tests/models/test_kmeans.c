/* test_kmeans.c - recovery of planted clusters, determinism, and the
 * silhouette against a naive O(n^2) definition written here. */
#include "testutil.h"

#include <string.h>

#include "kmeans.h"
#include "rng.h"

#define N 600
#define K 4

static void planted(double *x, int *truth)
{
    const double c[K][3] = {{0, 0, 0}, {10, 0, 0}, {0, 10, 0}, {0, 0, 10}};
    rfm_rng rng;
    rfm_rng_seed(&rng, 7);
    for (int i = 0; i < N; i++) {
        truth[i] = i % K;
        for (int j = 0; j < 3; j++)
            x[i * 3 + j] = c[i % K][j] + rfm_rng_normal(&rng);
    }
}

static void test_recovers_planted_clusters(void **state)
{
    (void)state;
    double x[N * 3];
    int truth[N], lab[N];
    planted(x, truth);
    rfm_rng rng;
    rfm_rng_seed(&rng, 1);
    kmeans_model m;
    char err[RFM_ERRLEN];
    assert_int_equal(kmeans_fit(x, N, 3, K, 5, 100, &rng, &m, lab, err, sizeof err), RFM_OK);
    /* Each true cluster maps to exactly one label and vice versa. */
    int map[K];
    for (int t = 0; t < K; t++)
        map[t] = -1;
    for (int i = 0; i < N; i++) {
        if (map[truth[i]] < 0)
            map[truth[i]] = lab[i];
        assert_int_equal(lab[i], map[truth[i]]);
    }
    for (int a = 0; a < K; a++)
        for (int b = a + 1; b < K; b++)
            assert_int_not_equal(map[a], map[b]);
    assert_true(m.converged);
    /* Inertia is about N * 3 (unit variance per dimension). */
    printf("    inertia %.1f for %d points (expected about %d)\n", m.inertia, N, 3 * N);
    assert_true(m.inertia > 2.5 * N && m.inertia < 3.5 * N);
    kmeans_free(&m);
}

static void test_deterministic(void **state)
{
    (void)state;
    double x[N * 3];
    int truth[N], l1[N], l2[N];
    planted(x, truth);
    kmeans_model a, b;
    rfm_rng r1, r2;
    char err[RFM_ERRLEN];
    rfm_rng_seed(&r1, 99);
    rfm_rng_seed(&r2, 99);
    assert_int_equal(kmeans_fit(x, N, 3, 3, 3, 100, &r1, &a, l1, err, sizeof err), RFM_OK);
    assert_int_equal(kmeans_fit(x, N, 3, 3, 3, 100, &r2, &b, l2, err, sizeof err), RFM_OK);
    assert_memory_equal(a.centroids, b.centroids, 9 * sizeof(double));
    assert_memory_equal(l1, l2, sizeof l1);
    kmeans_free(&a);
    kmeans_free(&b);
}

static double naive_silhouette(const double *x, size_t n, const int *lab, int k)
{
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double a = 0, b = INFINITY;
        int na = 0;
        for (int c = 0; c < k; c++) {
            double s = 0;
            int cnt = 0;
            for (size_t j = 0; j < n; j++) {
                if (lab[j] != c || j == i)
                    continue;
                double d = 0;
                for (int t = 0; t < 3; t++)
                    d += (x[i * 3 + t] - x[j * 3 + t]) * (x[i * 3 + t] - x[j * 3 + t]);
                s += sqrt(d);
                cnt++;
            }
            if (c == lab[i]) {
                a = cnt ? s / cnt : 0;
                na = cnt;
            } else if (cnt && s / cnt < b) {
                b = s / cnt;
            }
        }
        if (na > 0)
            total += (b - a) / (a > b ? a : b);
    }
    return total / (double)n;
}

/* kmeans_distances (AVX2's whole rows where the CPU has it) against each
 * distance computed on its own as the float of the double's sqrt: equal
 * bits, the matrix symmetric with a zero diagonal, at sizes leaving every
 * remainder of four columns. */
static void test_distances_exact(void **state)
{
    (void)state;
    rfm_rng g;
    rfm_rng_seed(&g, 77);
    for (size_t m = 1; m <= 41; m += (m < 9 ? 1 : 8)) {
        double *x = malloc(m * 3 * sizeof *x);
        float *dm = malloc(m * m * sizeof *dm);
        assert_true(x && dm);
        for (size_t i = 0; i < m * 3; i++) /* ties and exact zeros too */
            x[i] = i % 7 == 0 ? 1.0 : exp(rfm_rng_normal(&g));
        kmeans_distances(x, m, 3, dm);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < m; j++) {
                double t0 = x[i * 3] - x[j * 3], t1 = x[i * 3 + 1] - x[j * 3 + 1],
                       t2 = x[i * 3 + 2] - x[j * 3 + 2];
                float want = i == j ? 0.0f : (float)sqrt(t0 * t0 + t1 * t1 + t2 * t2);
                if (memcmp(&dm[i * m + j], &want, sizeof want) != 0)
                    fail_msg("m %zu (%zu, %zu): %.9g, want %.9g", m, i, j, dm[i * m + j], want);
            }
        free(x), free(dm);
    }
}

/* kmeans_silhouette_matrix (four rows at a time, the columns by cluster)
 * against its definition one row at a time: each point's sums over the
 * columns in order, then the rows' silhouettes in order: equal bits, at
 * sizes leaving every remainder of the blocks, with singleton clusters. */
static void test_silhouette_matrix_exact(void **state)
{
    (void)state;
    rfm_rng g;
    rfm_rng_seed(&g, 78);
    for (size_t m = 3; m <= 70; m += (m < 20 ? 1 : 17))
        for (size_t k = 2; k <= 7; k += 5) {
            double *x = malloc(m * 3 * sizeof *x), sums[8];
            float *dm = malloc(m * m * sizeof *dm);
            int *lab = malloc(m * sizeof *lab);
            size_t size[8] = {0};
            assert_true(x && dm && lab);
            for (size_t i = 0; i < m * 3; i++)
                x[i] = rfm_rng_normal(&g);
            for (size_t i = 0; i < m; i++) /* cluster k - 1 holds point 0 alone */
                lab[i] = i == 0 ? (int)k - 1 : (int)rfm_rng_below(&g, k - 1);
            for (size_t i = 0; i < m; i++)
                size[lab[i]]++;
            kmeans_distances(x, m, 3, dm);
            double want = 0;
            for (size_t i = 0; i < m; i++) {
                for (size_t c = 0; c < k; c++)
                    sums[c] = 0;
                for (size_t j = 0; j < m; j++)
                    sums[lab[j]] += dm[i * m + j];
                size_t li = (size_t)lab[i];
                if (size[li] < 2)
                    continue;
                double a = sums[li] / (double)(size[li] - 1), bb = INFINITY;
                for (size_t c = 0; c < k; c++)
                    if (c != li && size[c] > 0 && sums[c] / (double)size[c] < bb)
                        bb = sums[c] / (double)size[c];
                double mx = a > bb ? a : bb;
                want += isfinite(bb) && mx > 0 ? (bb - a) / mx : 0;
            }
            want /= (double)m;
            double got = kmeans_silhouette_matrix(dm, m, lab, k);
            if (memcmp(&got, &want, sizeof got) != 0)
                fail_msg("m %zu k %zu: %.17g, want %.17g", m, k, got, want);
            free(x), free(dm), free(lab);
        }
}

static void test_silhouette_matches_naive(void **state)
{
    (void)state;
    double x[N * 3];
    int truth[N];
    planted(x, truth);
    truth[5] = 3; /* a mislabelled point and a singleton cluster stress the edge cases */
    int lab[N];
    memcpy(lab, truth, sizeof lab);
    lab[0] = 4;
    double s, want = naive_silhouette(x, N, lab, 5);
    rfm_rng rng;
    rfm_rng_seed(&rng, 3);
    char err[RFM_ERRLEN];
    assert_int_equal(kmeans_silhouette(x, N, 3, lab, 5, 0, &rng, &s, err, sizeof err), RFM_OK);
    report_maxdiff("silhouette vs naive", fabs(s - want), 1e-12);
    /* A sample of half the points estimates it closely. */
    assert_int_equal(kmeans_silhouette(x, N, 3, lab, 5, N / 2, &rng, &s, err, sizeof err), RFM_OK);
    report_maxdiff("sampled silhouette vs full", fabs(s - want), 0.05);
    /* The precomputed-matrix path (float distances) agrees with the naive one. */
    float *dist = malloc((size_t)N * N * sizeof *dist);
    kmeans_distances(x, N, 3, dist);
    report_maxdiff("matrix silhouette vs naive",
                   fabs(kmeans_silhouette_matrix(dist, N, lab, 5) - want), 1e-6);
    /* Rows go four at a time: counts that leave one to three rows over. */
    for (size_t m = N - 3; m < N; m++) {
        kmeans_distances(x, m, 3, dist);
        double w = naive_silhouette(x, m, lab, 5);
        report_maxdiff("matrix silhouette vs naive, rows not a multiple of 4",
                       fabs(kmeans_silhouette_matrix(dist, m, lab, 5) - w), 1e-6);
    }
    free(dist);
}

/* kmeans_fit's batched assignment (each path the CPU has: SSE2, AVX2)
 * against KMEANS_PLAIN's (one point at a time): the same labels,
 * centroids, inertia and iterations, bit for bit, on data that make the
 * comparisons hard: overlapping blobs (points on the borders for many
 * iterations), whole-number values with exact ties and duplicates (RFM
 * counts), heavy tails, few distinct points (empty clusters moved to the
 * farthest point), restarts cut short by max_iter, and point counts that
 * leave every remainder of the batch widths. */
static void test_paths_equal_plain(void **state)
{
    (void)state;
    enum { NB = 1500 };
    static double x[NB * 3];
    static int la[NB], lb[NB];
    char err[RFM_ERRLEN];
    long fits = 0, iters = 0;
    for (kmeans_path path = KMEANS_SSE2; path <= KMEANS_AVX2; path++) {
        if (!kmeans_path_available(path)) {
            printf("    path %d: not on this CPU\n", (int)path);
            continue;
        }
        for (int kind = 0; kind < 4; kind++)
            for (size_t k = 1; k <= 9; k++)
                for (int max_iter = 3; max_iter <= 300; max_iter *= 10) {
                    rfm_rng g;
                    rfm_rng_seed(&g, 100 * (uint64_t)kind + k);
                    size_t n = kind == 3 ? 60 + k % 4 : NB - k % 4;
                    for (size_t i = 0; i < n; i++)
                        for (int j = 0; j < 3; j++) {
                            double v;
                            if (kind == 0) /* blobs one sd apart */
                                v = (double)(i % 5) + rfm_rng_normal(&g);
                            else if (kind == 1) /* whole numbers: ties everywhere */
                                v = (double)rfm_rng_below(&g, 6);
                            else if (kind == 2) /* heavy tails */
                                v = exp(2 * rfm_rng_normal(&g));
                            else /* three distinct points, twenty times each */
                                v = (double)((i % 3) * (j + 1));
                            x[i * 3 + (size_t)j] = v;
                        }
                    kmeans_model a, b;
                    rfm_rng r1, r2;
                    rfm_rng_seed(&r1, 9 + k), rfm_rng_seed(&r2, 9 + k);
                    assert_int_equal(kmeans_fit_path(x, n, 3, k, 3, max_iter, &r1, path, &a, la,
                                                     err, sizeof err),
                                     RFM_OK);
                    assert_int_equal(kmeans_fit_path(x, n, 3, k, 3, max_iter, &r2, KMEANS_PLAIN, &b,
                                                     lb, err, sizeof err),
                                     RFM_OK);
                    if (memcmp(la, lb, n * sizeof *la) != 0)
                        fail_msg("kind %d k %zu max_iter %d: labels differ", kind, k, max_iter);
                    assert_memory_equal(a.centroids, b.centroids, k * 3 * sizeof(double));
                    assert_memory_equal(&a.inertia, &b.inertia, sizeof a.inertia);
                    assert_int_equal(a.iterations, b.iterations);
                    assert_int_equal(a.converged, b.converged);
                    fits++, iters += a.iterations;
                    kmeans_free(&a), kmeans_free(&b);
                }
    }
    printf("    %ld fits (%ld iterations of the best restarts) the same as one point at a time\n",
           fits, iters);
    assert_true(fits >= 72); /* at least SSE2's, on any x86-64 */
}

/* The stop of scikit-learn's Lloyd: a restart ends at the first
 * iteration whose centres moved, in all, by at most KMEANS_TOL times the
 * mean column variance (squared distances): the fit cut one iteration
 * short moved more than that, and the last iteration at most that. Seen
 * from outside, through max_iter, on blobs that keep moving for a while. */
static void test_stops_as_scikit_learn(void **state)
{
    (void)state;
    enum { NS = 1500, KS = 6 };
    static double x[NS * 3];
    static int lab[NS];
    char err[RFM_ERRLEN];
    rfm_rng g;
    rfm_rng_seed(&g, 21);
    for (size_t i = 0; i < NS; i++)
        for (int j = 0; j < 3; j++)
            x[i * 3 + (size_t)j] = (double)(i % 4) + 1.5 * rfm_rng_normal(&g);
    double tol = 0;
    for (int j = 0; j < 3; j++) {
        double mean = 0, var = 0;
        for (size_t i = 0; i < NS; i++)
            mean += x[i * 3 + (size_t)j] / NS;
        for (size_t i = 0; i < NS; i++)
            var += (x[i * 3 + (size_t)j] - mean) * (x[i * 3 + (size_t)j] - mean) / NS;
        tol += var / 3 * KMEANS_TOL;
    }
    int by_tol = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        kmeans_model m[3];
        rfm_rng r;
        rfm_rng_seed(&r, seed);
        assert_int_equal(kmeans_fit(x, NS, 3, KS, 1, 300, &r, &m[0], lab, err, sizeof err), RFM_OK);
        int t = m[0].iterations;
        assert_true(m[0].converged);
        assert_true(t >= 3);
        for (int back = 1; back <= 2; back++) {
            rfm_rng_seed(&r, seed);
            assert_int_equal(
                kmeans_fit(x, NS, 3, KS, 1, t - back, &r, &m[back], lab, err, sizeof err), RFM_OK);
            assert_false(m[back].converged);
        }
        double last = 0, before = 0;
        for (size_t i = 0; i < KS * 3; i++) {
            last +=
                (m[0].centroids[i] - m[1].centroids[i]) * (m[0].centroids[i] - m[1].centroids[i]);
            before +=
                (m[1].centroids[i] - m[2].centroids[i]) * (m[1].centroids[i] - m[2].centroids[i]);
        }
        printf("    seed %d: %d iterations, the last moved %.3g, the one before %.3g (tol %.3g)\n",
               (int)seed, t, last, before, tol);
        assert_true(last <= tol * (1 + 1e-9));
        assert_true(before > tol);
        by_tol += last > 0; /* else no label changed: the strict stop */
        for (int b = 0; b < 3; b++)
            kmeans_free(&m[b]);
    }
    assert_true(by_tol > 0);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    double x[6] = {0};
    int lab[2];
    kmeans_model m;
    rfm_rng rng;
    rfm_rng_seed(&rng, 1);
    char err[RFM_ERRLEN];
    assert_int_equal(kmeans_fit(x, 2, 3, 3, 1, 10, &rng, &m, lab, err, sizeof err), RFM_EDATA);
    assert_int_equal(kmeans_fit(x, 2, 3, 0, 1, 10, &rng, &m, lab, err, sizeof err), RFM_EINVAL);
    /* Identical points: converges with k = 2 without dividing by zero. */
    assert_int_equal(kmeans_fit(x, 2, 3, 2, 2, 10, &rng, &m, lab, err, sizeof err), RFM_OK);
    assert_near(m.inertia, 0, 0);
    kmeans_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovers_planted_clusters),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_distances_exact),
        cmocka_unit_test(test_silhouette_matrix_exact),
        cmocka_unit_test(test_silhouette_matches_naive),
        cmocka_unit_test(test_paths_equal_plain),
        cmocka_unit_test(test_stops_as_scikit_learn),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
