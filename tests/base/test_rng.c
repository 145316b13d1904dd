/* test_rng.c - rfm_rng_shuffle against the plain swap loop it replaced in
 * kmeans, segments, uplift and forest (same draws, same result), and the
 * uniformity of the permutations it makes. */
#include "testutil.h"

#include <string.h>

#include "rng.h"

/* The reference: the loop each caller had, on size_t indices. */
static void naive_shuffle(rfm_rng *rng, size_t *v, size_t n, size_t m)
{
    for (size_t i = 0; i < m; i++) {
        size_t j = i + (size_t)rfm_rng_below(rng, n - i);
        size_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* Same seed, same result as the naive loop, for every element size the
 * callers use (4, 8 and 24-byte rows) and for partial and full shuffles; and
 * the generator is left in the same state (same number of draws). */
static void test_same_as_naive_loop(void **state)
{
    (void)state;
    enum { N = 97 };
    const size_t ms[] = {0, 1, 10, N - 1, N};
    for (size_t c = 0; c < sizeof ms / sizeof *ms; c++) {
        size_t m = ms[c];
        size_t ref[N];
        uint32_t u32[N];
        uint64_t u64[N];
        double rows[N][3];
        for (size_t i = 0; i < N; i++) {
            ref[i] = i, u32[i] = (uint32_t)i, u64[i] = i;
            rows[i][0] = (double)i, rows[i][1] = -(double)i, rows[i][2] = 0.5 * (double)i;
        }
        rfm_rng a, b, c2, d;
        rfm_rng_seed(&a, 42 + c), rfm_rng_seed(&b, 42 + c);
        rfm_rng_seed(&c2, 42 + c), rfm_rng_seed(&d, 42 + c);
        naive_shuffle(&a, ref, N, m);
        rfm_rng_shuffle(&b, u32, N, m, sizeof *u32);
        rfm_rng_shuffle(&c2, u64, N, m, sizeof *u64);
        rfm_rng_shuffle(&d, rows, N, m, sizeof *rows);
        for (size_t i = 0; i < N; i++) {
            assert_int_equal(u32[i], ref[i]);
            assert_int_equal(u64[i], ref[i]);
            assert_true(rows[i][0] == (double)ref[i] && rows[i][1] == -(double)ref[i] &&
                        rows[i][2] == 0.5 * (double)ref[i]);
        }
        uint64_t next = rfm_rng_u64(&a);
        assert_true(rfm_rng_u64(&b) == next && rfm_rng_u64(&c2) == next && rfm_rng_u64(&d) == next);
    }
}

/* Elements larger than the 64-byte swap buffer move whole. */
static void test_large_elements(void **state)
{
    (void)state;
    enum { N = 20, W = 50 }; /* 400-byte elements */
    static double big[N][W];
    size_t ref[N];
    for (size_t i = 0; i < N; i++) {
        ref[i] = i;
        for (size_t k = 0; k < W; k++)
            big[i][k] = (double)(i * 1000 + k);
    }
    rfm_rng a, b;
    rfm_rng_seed(&a, 9), rfm_rng_seed(&b, 9);
    naive_shuffle(&a, ref, N, N);
    rfm_rng_shuffle(&b, big, N, N, sizeof *big);
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < W; k++)
            assert_true(big[i][k] == (double)(ref[i] * 1000 + k));
}

/* Every one of the 24 orders of 4 elements comes up about equally often:
 * 240000 shuffles, each count within 5 standard deviations of 10000. */
static void test_uniform_permutations(void **state)
{
    (void)state;
    size_t count[256] = {0};
    rfm_rng rng;
    rfm_rng_seed(&rng, 1);
    const int T = 240000;
    for (int t = 0; t < T; t++) {
        uint8_t v[4] = {0, 1, 2, 3};
        rfm_rng_shuffle(&rng, v, 4, 4, 1);
        count[v[0] * 64 + v[1] * 16 + v[2] * 4 + v[3]]++;
    }
    size_t orders = 0;
    double p = 1.0 / 24, sd = sqrt(T * p * (1 - p)), worst = 0;
    for (int k = 0; k < 256; k++)
        if (count[k]) {
            orders++;
            worst = fmax(worst, fabs((double)count[k] - T * p));
        }
    assert_int_equal(orders, 24);
    report_maxdiff("permutation counts vs 10000", worst, 5 * sd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_naive_loop),
        cmocka_unit_test(test_large_elements),
        cmocka_unit_test(test_uniform_permutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
