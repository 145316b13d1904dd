/* rng.h - small deterministic random number generator (xoshiro256**).
 *
 * Every stochastic step in core/ (k-means seeding, subsampling, simulation in
 * tests) takes an rfm_rng the caller seeded, so that one seed gives one
 * answer on every machine. Not for cryptography. Not thread-safe: one
 * generator per thread.
 */
#ifndef RFM_RNG_H
#define RFM_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} rfm_rng;

void rfm_rng_seed(rfm_rng *rng, uint64_t seed);
uint64_t rfm_rng_u64(rfm_rng *rng);
/* Uniform on [0, 1) with 53 random bits. */
double rfm_rng_uniform(rfm_rng *rng);
/* Uniform integer on [0, n), unbiased; n > 0. */
uint64_t rfm_rng_below(rfm_rng *rng, uint64_t n);
/* Standard normal (Box-Muller, one value per call). */
double rfm_rng_normal(rfm_rng *rng);
/* Partial Fisher-Yates over n elements of size bytes at base: for i = 0..m-1
 * (m <= n), swap element i with element i + rfm_rng_below(rng, n - i). The
 * first m elements are then a uniform sample without replacement, in random
 * order (m = n: a uniform permutation). Draws exactly m numbers, in that
 * order, so seeded callers see the same sequence as the loop they replace. */
void rfm_rng_shuffle(rfm_rng *rng, void *base, size_t n, size_t m, size_t size);

#endif
