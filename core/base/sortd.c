/* sortd.c - LSD radix sort of doubles: four passes of 16 bits over keys
 * that order as the values do (sign bit flipped for positives, every bit
 * for negatives), a pass skipped when every key has the same digit there
 * (integral or short values often share their low bits). Small inputs go
 * to qsort, whose cost then is below the count tables'. */
#include "sortd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { RADIX_FROM = 1 << 14, DIGIT = 16, NDIG = 1 << DIGIT, PASSES = 64 / DIGIT };

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t key_of(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b >> 63 ? ~b : b | (1ull << 63);
}

static double value_of(uint64_t k)
{
    uint64_t b = k >> 63 ? k & ~(1ull << 63) : ~k;
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}

int sortd(double *v, size_t n)
{
    if (n < RADIX_FROM) {
        qsort(v, n, sizeof *v, cmp);
        return 1;
    }
    uint64_t *a = malloc(n * sizeof *a), *t = malloc(n * sizeof *t);
    size_t *count = calloc((size_t)PASSES * NDIG, sizeof *count);
    if (!a || !t || !count) {
        free(a), free(t), free(count);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t k = key_of(v[i]);
        a[i] = k;
        for (int p = 0; p < PASSES; p++)
            count[(size_t)p * NDIG + (k >> (DIGIT * p) & (NDIG - 1))]++;
    }
    for (int p = 0; p < PASSES; p++) {
        size_t *c = count + (size_t)p * NDIG;
        if (c[a[0] >> (DIGIT * p) & (NDIG - 1)] == n)
            continue; /* one digit for all: nothing moves */
        for (size_t d = 0, at = 0; d < NDIG; d++) {
            size_t k = c[d];
            c[d] = at, at += k;
        }
        for (size_t i = 0; i < n; i++)
            t[c[a[i] >> (DIGIT * p) & (NDIG - 1)]++] = a[i];
        uint64_t *s = a;
        a = t, t = s;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = value_of(a[i]);
    free(a), free(t), free(count);
    return 1;
}
