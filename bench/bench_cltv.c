/* bench_cltv - lifetime-value fit time on a file and scoring time per
 * customer, in-process.
 *
 * usage: bench_cltv CONFIG FILE
 * Prints: customers, distinct rows, fit seconds (BG/NBD and Gamma-Gamma
 * together, median of 5), microseconds per customer for the point scores
 * and with the interval, over every customer of the file.
 */
#include <gsl/gsl_errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"
#include "cltv.h"
#include "config.h"
#include "txn.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    gsl_set_error_handler_off();
    char err[RFM_ERRLEN];
    rfm_config *cfg;
    txn_data *d;
    int rc = bench_load(argc, argv, "bench_cltv", &cfg, &d);
    if (rc)
        return rc;
    size_t n = txn_ncustomers(d), m = 0;
    txn_features *f = calloc(n, sizeof *f);
    double *x = malloc(n * 8), *tx = malloc(n * 8), *T = malloc(n * 8), *s = malloc(n * 8);
    txn_features_asof(d, txn_snapshot_day(d), f);
    for (size_t i = 0; i < n; i++)
        if (f[i].active)
            x[m] = f[i].bg_x, tx[m] = f[i].bg_t_x, T[m] = f[i].bg_T, s[m] = f[i].bg_mean_spend, m++;
    cltv_options o = cfg->cltv;
    cltv_model *c = NULL;
    double fits[5];
    for (int r = 0; r < 5; r++) {
        cltv_free(c);
        double t0 = now_s();
        if (cltv_fit(x, tx, T, s, m, &o, &c, err, sizeof err) != RFM_OK) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        fits[r] = now_s() - t0;
    }
    qsort(fits, 5, sizeof *fits, cmp);
    /* Point scores: P(alive), expected purchases and spend, value. */
    const bgnbd_params *b = &cltv_bgnbd(c)->p;
    const gg_params *g = &cltv_gg(c)->p;
    double sink = 0, t0 = now_s();
    for (int r = 0; r < 5; r++)
        for (size_t i = 0; i < m; i++)
            sink += bgnbd_p_alive(b, x[i], tx[i], T[i]) +
                    bgnbd_expected(b, 365, x[i], tx[i], T[i]) +
                    cltv_value(b, g, x[i], tx[i], T[i], s[i], 365, 0.01);
    double point_us = (now_s() - t0) / (5.0 * (double)m) * 1e6;
    t0 = now_s();
    cltv_prediction p;
    for (size_t i = 0; i < m; i++) {
        cltv_predict(c, x[i], tx[i], T[i], s[i], 365, 0.01, &p, err, sizeof err);
        sink += p.upper;
    }
    double full_us = (now_s() - t0) / (double)m * 1e6;
    printf("customers=%zu bgnbd_rows=%zu fit_ms=%.1f point_us=%.2f with_interval_us=%.2f "
           "(checksum %.6g)\n",
           m, cltv_bgnbd(c)->rows, fits[2] * 1e3, point_us, full_us, sink);
    cltv_free(c);
    free(f), free(x), free(tx), free(T), free(s);
    txn_free(d);
    config_free(cfg);
    return 0;
}
