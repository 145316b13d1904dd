/* bench_churn - the two churn learners on a transaction file: held-out AUC
 * (churn_evaluate's time split), fit time (wall-clock, XGBoost on
 * churn.boost.nthread threads), and scoring CPU time per customer with
 * explanation, and with explanation and counterfactual (as /predict_churn
 * does), in-process, one thread.
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

/* This thread's CPU seconds: the machine may be shared, and wall-clock
 * time then counts other processes' turns. */
static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Per customer: explain, and explain + counterfactual, in CPU microseconds. */
static void score_time(const churn_model *cm, const double *x, size_t m, size_t d,
                       const churn_params *par, double *us_explain, double *us_cf)
{
    char err[RFM_ERRLEN];
    double sink = 0, t0 = cpu_s();
    for (int r = 0; r < 20; r++)
        for (size_t i = 0; i < m; i++) {
            double base, c[CHURN_MAX_FEATURES], logit, p;
            churn_explain(cm, x + i * d, &base, c, &logit, &p, err, sizeof err);
            sink += p;
        }
    *us_explain = (cpu_s() - t0) / (20.0 * (double)m) * 1e6;
    t0 = cpu_s();
    for (int r = 0; r < 20; r++)
        for (size_t i = 0; i < m; i++) {
            double base, c[CHURN_MAX_FEATURES], logit, p;
            churn_counterfactual_result cf;
            churn_explain(cm, x + i * d, &base, c, &logit, &p, err, sizeof err);
            churn_counterfactual(cm, x + i * d, par->counterfactual_threshold, par->max_purchases,
                                 &cf, err, sizeof err);
            sink += p + cf.probability_after;
        }
    *us_cf = (cpu_s() - t0) / (20.0 * (double)m) * 1e6;
    if (sink == 42.0)
        printf("(checksum)\n");
}

int main(int argc, char **argv)
{
    gsl_set_error_handler_off();
    char err[RFM_ERRLEN];
    rfm_config *cfg;
    txn_data *d;
    int rc = bench_load(argc, argv, "bench_churn", &cfg, &d);
    if (rc)
        return rc;
    churn_params par = cfg->churn;
    churn_split sp;
    churn_eval ev = {0};
    static const char *const names[3] = {"recency", "frequency", "monetary"};
    if (churn_time_split(d, par.cut_days, par.test_share, par.seed, &sp, err, sizeof err) ||
        churn_evaluate(&sp, names, &par, &ev, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    size_t m = sp.n;
    churn_model *lm, *bm;
    double t0 = now_s();
    if (churn_fit(sp.x, sp.y, m, 3, names, &par, &lm, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double fit_l = now_s() - t0;
    t0 = now_s();
    if (churn_fit_boosted(sp.xr, sp.y, m, CHURN_RICH_FEATURES, churn_rich_names, &par, &bm, err,
                          sizeof err) != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double fit_b = now_s() - t0, el, cl, eb, cb;
    score_time(lm, sp.x, m, 3, &par, &el, &cl);
    score_time(bm, sp.xr, m, CHURN_RICH_FEATURES, &par, &eb, &cb);
    printf("customers=%zu held_out=%zu\n", m, sp.n_test);
    printf("logistic: held_out_auc=%.4f log_loss=%.4f fit_ms=%.1f explain_us=%.3f "
           "explain_counterfactual_us=%.3f\n",
           ev.logistic.auc, ev.logistic.logloss, fit_l * 1e3, el, cl);
    printf("boosted:  held_out_auc=%.4f log_loss=%.4f fit_ms=%.1f explain_us=%.3f "
           "explain_counterfactual_us=%.3f (%d trees, depth %d, %d threads)\n",
           ev.boosted.auc, ev.boosted.logloss, fit_b * 1e3, eb, cb, par.boost.rounds,
           par.boost.max_depth, par.boost.nthread);
    printf("served: %s\n", churn_learner_name(churn_choose(&ev)));
    churn_free(lm), churn_free(bm);
    churn_split_free(&sp);
    txn_free(d);
    config_free(cfg);
    return 0;
}
