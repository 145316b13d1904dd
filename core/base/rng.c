/* rng.c - xoshiro256** seeded through splitmix64 (Blackman and Vigna). */
#include "rng.h"

#include <math.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rfm_rng_seed(rfm_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rfm_rng_u64(rfm_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rfm_rng_uniform(rfm_rng *rng) { return (double)(rfm_rng_u64(rng) >> 11) * 0x1.0p-53; }

uint64_t rfm_rng_below(rfm_rng *rng, uint64_t n)
{
    /* Rejection on the top of the range keeps every value equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = rfm_rng_u64(rng);
    while (x >= limit);
    return x % n;
}

double rfm_rng_normal(rfm_rng *rng)
{
    double u1 = 1.0 - rfm_rng_uniform(rng); /* (0, 1]: log is finite */
    double u2 = rfm_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void rfm_rng_shuffle(rfm_rng *rng, void *base, size_t n, size_t m, size_t size)
{
    unsigned char *b = base, tmp[64];
    if (m > n)
        m = n;
    for (size_t i = 0; i < m; i++) {
        size_t j = i + (size_t)rfm_rng_below(rng, (uint64_t)(n - i));
        if (j == i)
            continue;
        unsigned char *x = b + i * size, *y = b + j * size;
        if (size == 4) { /* index arrays: fixed-size copies the compiler inlines */
            memcpy(tmp, x, 4), memcpy(x, y, 4), memcpy(y, tmp, 4);
            continue;
        }
        if (size == 8) {
            memcpy(tmp, x, 8), memcpy(x, y, 8), memcpy(y, tmp, 8);
            continue;
        }
        for (size_t off = 0; off < size; off += sizeof tmp) {
            size_t c = size - off < sizeof tmp ? size - off : sizeof tmp;
            memcpy(tmp, x + off, c);
            memcpy(x + off, y + off, c);
            memcpy(y + off, tmp, c);
        }
    }
}
