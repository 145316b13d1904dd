/* bench_uplift.c - fit and scoring time of the uplift learners.
 *
 * Without arguments: a simulated randomised experiment of 64,000 customers, 10
 * features, 2 arms and a binary outcome (the size of the Hillstrom data).
 * Prints fit time per learner, per-customer scoring time (one thread), the
 * model's JSON size and held-out Qini figures.
 */
#include <gsl/gsl_errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"
#include "uplift.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define D 10

/* Effects: arm 1 lifts by 0.06 when x0 > 0, arm 2 by 0.04 * x2 (x2 in [0, 1]). */
static void tau_true(const double *x, double *tau)
{
    tau[0] = x[0] > 0 ? 0.06 : 0.0;
    tau[1] = 0.04 * x[2];
}

static void simulate(size_t n, uint64_t seed, double *X, int *arm, double *y)
{
    rfm_rng r;
    rfm_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        double *x = X + i * D;
        x[0] = rfm_rng_normal(&r);
        x[1] = rfm_rng_normal(&r);
        x[2] = rfm_rng_uniform(&r);
        x[3] = (double)rfm_rng_below(&r, 12) + 1;   /* like recency */
        x[4] = (double)rfm_rng_below(&r, 2);
        x[5] = (double)rfm_rng_below(&r, 2);
        x[6] = (double)rfm_rng_below(&r, 3);
        x[7] = 30 + 500 * rfm_rng_uniform(&r) * rfm_rng_uniform(&r); /* like history */
        x[8] = (double)rfm_rng_below(&r, 2);
        x[9] = (double)rfm_rng_below(&r, 7);
        arm[i] = (int)rfm_rng_below(&r, 3);
        double tau[2];
        tau_true(x, tau);
        double p = 0.10 + 0.05 * x[4] + 0.08 * (x[3] < 4) + 0.0001 * x[7];
        if (arm[i] > 0) p += tau[arm[i] - 1];
        y[i] = rfm_rng_uniform(&r) < p ? 1.0 : 0.0;
    }
}

int main(int argc, char **argv)
{
    gsl_set_error_handler_off();
    size_t n = 64000, nt = 20000;
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    double *X = malloc((n + nt) * D * sizeof *X), *y = malloc((n + nt) * sizeof *y);
    int *arm = malloc((n + nt) * sizeof *arm);
    simulate(n + nt, 7, X, arm, y);
    char err[RFM_ERRLEN];
    for (int L = 0; L < 2; L++) {
        uplift_params p;
        uplift_default_params(&p, L ? UPLIFT_CAUSAL_FOREST : UPLIFT_T_LEARNER);
        p.n_threads = threads;
        if (argc > 2) p.outcome.n_trees = p.effect.n_trees = atoi(argv[2]);
        if (argc > 3) p.outcome.min_leaf = atoi(argv[3]);
        if (argc > 4) p.effect.min_leaf = atoi(argv[4]);
        if (argc > 5) p.outcome.max_depth = p.effect.max_depth = atoi(argv[5]);
        uplift_model *m = NULL;
        double t0 = now();
        if (uplift_fit(X, n, D, arm, 2, y, &p, &m, err, sizeof err) != RFM_OK) {
            fprintf(stderr, "fit: %s\n", err);
            return 1;
        }
        double t1 = now();
        double *sc = malloc(2 * nt * sizeof *sc), mse[2] = {0, 0};
        double t2 = now();
        for (size_t i = 0; i < nt; i++) {
            double u[2], c;
            uplift_predict(m, X + (n + i) * D, u, &c, err, sizeof err);
            sc[i] = u[0];
            sc[nt + i] = u[1];
        }
        double t3 = now();
        for (size_t i = 0; i < nt; i++) {
            double tau[2];
            tau_true(X + (n + i) * D, tau);
            mse[0] += (sc[i] - tau[0]) * (sc[i] - tau[0]) / (double)nt;
            mse[1] += (sc[nt + i] - tau[1]) * (sc[nt + i] - tau[1]) / (double)nt;
        }
        json_t *j = NULL;
        uplift_to_json(m, &j, err, sizeof err);
        char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
        printf("%-14s fit %.2f s (%d threads)  score %.1f us/customer  json %.1f MB\n",
               uplift_learner_name(p.learner), t1 - t0, threads, 1e6 * (t3 - t2) / (double)nt,
               (double)strlen(s) / 1e6);
        for (int k = 1; k <= 2; k++) {
            uplift_eval e;
            uplift_evaluate(y + n, arm + n, sc + (size_t)(k - 1) * nt, nt, k, &e, err, sizeof err);
            printf("   arm %d: tau MSE %.3g  qini_coef %.1f  qini_norm %.3f  auuc_norm %.3f\n", k,
                   mse[k - 1], e.qini_coef, e.qini_norm, e.auuc_norm);
        }
        free(s);
        json_decref(j);
        free(sc);
        uplift_free(m);
    }
    free(X);
    free(y);
    free(arm);
    return 0;
}
