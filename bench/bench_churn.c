/* bench_churn - churn model scoring time per customer (probability,
 * explanation and counterfactual, as /predict_churn does), in-process, on
 * the customers of a transaction file.
 *
 * usage: bench_churn CONFIG FILE
 */
#include <gsl/gsl_errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"
#include "churn.h"
#include "config.h"
#include "txn.h"

int main(int argc, char **argv)
{
    gsl_set_error_handler_off();
    char err[RFM_ERRLEN];
    rfm_config *cfg;
    txn_data *d;
    int rc = bench_load(argc, argv, "bench_churn", &cfg, &d);
    if (rc)
        return rc;
    size_t n = txn_ncustomers(d), m = 0;
    txn_features *f = calloc(n, sizeof *f);
    double *x = malloc(n * 3 * sizeof *x);
    int *y = malloc(n * sizeof *y);
    txn_features_asof(d, txn_snapshot_day(d) - cfg->churn.cut_days, f);
    for (size_t i = 0; i < n; i++)
        if (f[i].active) {
            x[m * 3] = f[i].recency, x[m * 3 + 1] = f[i].frequency, x[m * 3 + 2] = f[i].monetary;
            y[m++] = f[i].future_days == 0;
        }
    static const char *const names[3] = {"recency", "frequency", "monetary"};
    churn_params par = cfg->churn;
    churn_model *cm;
    double t0 = now_s();
    if (churn_fit(x, y, m, 3, names, &par, &cm, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double fit_ms = (now_s() - t0) * 1e3, sink = 0;
    t0 = now_s();
    for (int r = 0; r < 20; r++)
        for (size_t i = 0; i < m; i++) {
            double base, c[3], logit, p;
            churn_counterfactual_result cf;
            churn_explain(cm, x + i * 3, &base, c, &logit, &p, err, sizeof err);
            churn_counterfactual(cm, x + i * 3, cfg->churn.counterfactual_threshold,
                                 cfg->churn.max_purchases, &cf, err, sizeof err);
            sink += p + cf.probability_after;
        }
    double us = (now_s() - t0) / (20.0 * (double)m) * 1e6;
    printf("customers=%zu fit_ms=%.1f score_explain_counterfactual_us=%.3f (checksum %.6g)\n", m,
           fit_ms, us, sink);
    churn_free(cm);
    free(f), free(x), free(y);
    txn_free(d);
    config_free(cfg);
    return 0;
}
