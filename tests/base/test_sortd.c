/* test_sortd.c - sortd against qsort: the same values in the same order
 * (equal as doubles, so -0 and +0 may trade places), for sizes on both
 * sides of the radix threshold and data of every kind: negatives, zeros
 * of both signs, infinities, subnormals, many ties, one value, integral
 * values sharing their low bits (the skipped passes). */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "sortd.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double draw(rfm_rng *r, int kind)
{
    switch (kind) {
    case 0: return rfm_rng_normal(r) * 1e3;
    case 1: return (double)rfm_rng_below(r, 10);         /* many ties */
    case 2: return 42.5;                                 /* one value */
    case 3: return (double)rfm_rng_below(r, 400) * 1024; /* low bits shared */
    default: {
        static const double odd[] = {0.0,       -0.0,   INFINITY,
                                     -INFINITY, 5e-324, -5e-324,
                                     1e308,     -1e308, 2.2250738585072014e-308};
        if (rfm_rng_below(r, 3) == 0)
            return odd[rfm_rng_below(r, sizeof odd / sizeof *odd)];
        uint64_t b = rfm_rng_u64(r);
        double x;
        memcpy(&x, &b, sizeof x);
        return isnan(x) ? 1.0 : x;
    }
    }
}

static void test_same_as_qsort(void **state)
{
    (void)state;
    rfm_rng r;
    rfm_rng_seed(&r, 21);
    const size_t sizes[] = {0, 1, 2, 17, 1000, (1 << 14) - 1, 1 << 14, 50000, 300000};
    size_t checked = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int kind = 0; kind < 5; kind++) {
            size_t n = sizes[s];
            double *v = malloc((n ? n : 1) * sizeof *v), *w = malloc((n ? n : 1) * sizeof *w);
            assert_non_null(v);
            assert_non_null(w);
            for (size_t i = 0; i < n; i++)
                v[i] = w[i] = draw(&r, kind);
            qsort(w, n, sizeof *w, cmp);
            assert_int_equal(sortd(v, n), 1);
            for (size_t i = 0; i < n; i++)
                if (!(v[i] == w[i]))
                    fail_msg("n %zu kind %d: item %zu is %.17g, qsort %.17g", n, kind, i, v[i],
                             w[i]);
            checked += n;
            free(v);
            free(w);
        }
    printf("    %zu values sorted as qsort sorts them\n", checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_qsort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
