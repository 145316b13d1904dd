/* sim.h - inputs simulated from known distributions, shared by the tests
 * and the benchmarks (bench/ includes it as ../tests/sim.h), so that both
 * measure the same data. */
#ifndef RFM_SIM_H
#define RFM_SIM_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "campaign.h"
#include "rng.h"

/* n unit vectors of d floats (row-major), uniform on the sphere: Gaussian
 * draws, L2-normalised. New array (free), or NULL when out of memory. */
static inline float *sim_unit_vectors(int64_t n, int d, uint64_t seed)
{
    rfm_rng rng;
    rfm_rng_seed(&rng, seed);
    float *x = malloc((size_t)n * (size_t)d * sizeof *x);
    if (!x)
        return NULL;
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < d; j++) {
            double v = rfm_rng_normal(&rng);
            x[(size_t)i * (size_t)d + (size_t)j] = (float)v;
            s += v * v;
        }
        for (int j = 0; j < d; j++)
            x[(size_t)i * (size_t)d + (size_t)j] =
                (float)(x[(size_t)i * (size_t)d + (size_t)j] / sqrt(s));
    }
    return x;
}

/* The bundled Hillstrom e-mail campaign (data/hillstrom.csv.gz): eight
 * features, arms "Mens E-Mail" and "Womens E-Mail" against "No E-Mail",
 * outcome visit. */
static inline campaign_spec sim_hillstrom_spec(void)
{
    static const campaign_feature f[] = {
        {"recency", CAMPAIGN_NUMBER}, {"history_segment", CAMPAIGN_CATEGORY},
        {"history", CAMPAIGN_NUMBER}, {"mens", CAMPAIGN_NUMBER},
        {"womens", CAMPAIGN_NUMBER},  {"zip_code", CAMPAIGN_CATEGORY},
        {"newbie", CAMPAIGN_NUMBER},  {"channel", CAMPAIGN_CATEGORY}};
    static const char *const arms[] = {"Mens E-Mail", "Womens E-Mail"};
    campaign_spec s = {f, 8, "segment", "No E-Mail", arms, 2, "visit"};
    return s;
}

#endif
