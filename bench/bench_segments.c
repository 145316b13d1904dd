/* bench_segments - fit times of the segments model: the k sweep (k-means
 * per k, silhouettes on one sample) and the cluster rules (ruletree, exact
 * depth-2 search), on simulated customers in RFM units.
 *
 * usage: bench_segments CONFIG N...
 * Prints one line per N: customers, k chosen, seconds for segments_fit as
 * a whole and for the rules alone (ruletree_fit_all on the fitted labels,
 * the same call segments_fit makes).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "config.h"
#include "rng.h"
#include "ruletree.h"
#include "segments.h"

/* Five customer groups (recent big spenders, new one-time buyers,
 * mid-recency regulars, long-lapsed one-time buyers, lapsed big spenders)
 * with lognormal spread, in whole days and invoices and cents. */
static void simulate(size_t n, double *r, double *f, double *m)
{
    static const double g[5][4] = {{5, 25, 8000, 0.3},
                                   {10, 1, 80, 0.25},
                                   {60, 6, 1200, 0.2},
                                   {300, 1, 60, 0.15},
                                   {250, 8, 5000, 0.1}};
    rfm_rng rng;
    rfm_rng_seed(&rng, 77);
    for (size_t i = 0; i < n; i++) {
        double u = rfm_rng_uniform(&rng), acc = 0;
        int k = 0;
        while (k < 4 && u > (acc += g[k][3]))
            k++;
        r[i] = fmax(1, round(g[k][0] * exp(0.4 * rfm_rng_normal(&rng))));
        f[i] = fmax(1, round(g[k][1] * exp(0.4 * rfm_rng_normal(&rng))));
        m[i] = round(100 * g[k][2] * exp(0.4 * rfm_rng_normal(&rng))) / 100;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_segments CONFIG N...\n");
        return 2;
    }
    char err[RFM_ERRLEN];
    rfm_config *cfg;
    if (config_load(argv[1], &cfg, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    for (int a = 2; a < argc; a++) {
        size_t n = (size_t)strtoull(argv[a], NULL, 10);
        double *r = malloc(n * sizeof *r), *f = malloc(n * sizeof *f), *m = malloc(n * sizeof *m);
        int *lab = malloc(n * sizeof *lab);
        if (!r || !f || !m || !lab) {
            fprintf(stderr, "out of memory for %zu customers\n", n);
            return 1;
        }
        simulate(n, r, f, m);
        segments_model *s;
        double t0 = now_s();
        if (segments_fit(r, f, m, n, &cfg->segments, &s, err, sizeof err) != RFM_OK) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        double t1 = now_s();
        for (size_t i = 0; i < n; i++) {
            segments_result res;
            segments_predict(s, r[i], f[i], m[i], &res, err, sizeof err);
            lab[i] = (int)res.cluster;
        }
        const double *cols[3] = {r, f, m};
        double t2 = now_s();
        ruletree_rule rules[16];
        if (segments_nclusters(s) > 16 || ruletree_fit_all(cols, 3, n, lab, segments_nclusters(s),
                                                           rules, err, sizeof err) != RFM_OK) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        double t3 = now_s();
        printf("customers=%zu k=%zu fit_s=%.3f rules_s=%.3f\n", n, segments_nclusters(s), t1 - t0,
               t3 - t2);
        segments_free(s);
        free(r), free(f), free(m), free(lab);
    }
    config_free(cfg);
    return 0;
}
