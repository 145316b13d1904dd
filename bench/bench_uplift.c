/* bench_uplift.c - fit and scoring time and held-out Qini of the uplift learners.
 *
 * usage: bench_uplift [FILE [THREADS]]
 * With FILE (data/hillstrom.csv.gz): Hillstrom's campaign, outcome visit, 7
 * features (18 encoded columns), arms Mens/Womens E-Mail; 30% held out
 * (seeded, stratified by arm and outcome, as rfm-train does). Without: a
 * simulated experiment of the same size (64,000 customers, 10 features, 2
 * arms, binary outcome, known effects, so the effect MSE is printed too).
 * Prints per learner - today's T-learner and untuned causal forest, then the
 * tuned causal forest, X-learner, DR-learner, the best single-feature rule and
 * 200 random orderings (their mean and 5-95 % band): fit time, scoring time per customer (one
 * thread, both arms and outcome_control), JSON size, and per arm the held-out normalised Qini with
 * its 90 % bootstrap interval (200 stratified resamples, seeded) and AUUC.
 */
#include <gsl/gsl_errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "campaign.h"
#include "../tests/sim.h"
#include "rng.h"
#include "uplift.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU seconds of the process (all threads): on a shared machine the wall
 * time also counts other programs' turns. */
static double cpu(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

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
        x[3] = (double)rfm_rng_below(&r, 12) + 1; /* like recency */
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
        if (arm[i] > 0)
            p += tau[arm[i] - 1];
        y[i] = rfm_rng_uniform(&r) < p ? 1.0 : 0.0;
    }
}

static int load_hillstrom(const char *path, double **X, int **arm, double **y, size_t *n,
                          size_t *n_test, size_t *d)
{
    campaign_spec s = sim_hillstrom_spec();
    campaign_data *cd = NULL;
    char err[RFM_ERRLEN];
    if (campaign_read(path, &s, &cd, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    /* Held-out rows last, so the simulated and real paths share the code below. */
    uint8_t *t = malloc(cd->n);
    uplift_holdout(cd->arm, cd->y, cd->n, 0.3, 42, t, err, sizeof err);
    *n = cd->n;
    *d = cd->d;
    *X = malloc(cd->n * cd->d * sizeof **X);
    *arm = malloc(cd->n * sizeof **arm);
    *y = malloc(cd->n * sizeof **y);
    size_t k = 0;
    *n_test = 0;
    for (size_t i = 0; i < cd->n; i++)
        *n_test += t[i];
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < cd->n; i++) {
            if (t[i] != pass)
                continue;
            memcpy(*X + k * cd->d, cd->X + i * cd->d, cd->d * sizeof **X);
            (*arm)[k] = cd->arm[i];
            (*y)[k++] = cd->y[i];
        }
    free(t);
    campaign_data_free(cd);
    return 0;
}

int main(int argc, char **argv)
{
    gsl_set_error_handler_off();
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    double *X, *y;
    int *arm;
    size_t n, nt, d = D;
    int sim = argc < 2;
    if (sim) {
        n = 64000;
        nt = 20000;
        X = malloc((n + nt) * D * sizeof *X);
        y = malloc((n + nt) * sizeof *y);
        arm = malloc((n + nt) * sizeof *arm);
        simulate(n + nt, 7, X, arm, y);
    } else {
        size_t all;
        if (load_hillstrom(argv[1], &X, &arm, &y, &all, &nt, &d))
            return 1;
        n = all - nt;
        printf("hillstrom: %zu training rows, %zu held out, %zu columns\n", n, nt, d);
    }
    char err[RFM_ERRLEN];
    /* today's two, then the new candidates; the last row is a random score */
    static const struct {
        const char *name;
        uplift_learner l;
        int tune;
    } rows[] = {{"t_learner", UPLIFT_T_LEARNER, 0},
                {"causal_forest", UPLIFT_CAUSAL_FOREST, 0},
                {"cf_tuned", UPLIFT_CAUSAL_FOREST, 1},
                {"x_learner", UPLIFT_X_LEARNER, 0},
                {"dr_learner", UPLIFT_DR_LEARNER, 0},
                {"rule", UPLIFT_RULE, 0},
                {"random", UPLIFT_RULE, -1}};
    for (size_t L = 0; L < sizeof rows / sizeof *rows; L++) {
        uplift_params p;
        uplift_default_params(&p, rows[L].l);
        p.n_threads = threads;
        p.tune = rows[L].tune == 1;
        p.seed = 42;
        uplift_model *m = NULL;
        double *sc = malloc(2 * nt * sizeof *sc), mse[2] = {0, 0};
        double t0 = now(), t1 = t0, t2 = t0, t3 = t0, c0 = cpu(), c1 = c0;
        if (rows[L].tune < 0) {
            rfm_rng r;
            rfm_rng_seed(&r, 3);
            for (size_t i = 0; i < 2 * nt; i++)
                sc[i] = rfm_rng_uniform(&r);
        } else {
            if (uplift_fit(X, n, d, arm, 2, y, &p, &m, err, sizeof err) != RFM_OK) {
                fprintf(stderr, "fit: %s\n", err);
                return 1;
            }
            t1 = t2 = now();
            c1 = cpu();
            for (size_t i = 0; i < nt; i++) {
                double u[2], c;
                uplift_predict(m, X + (n + i) * d, u, &c, err, sizeof err);
                sc[i] = u[0];
                sc[nt + i] = u[1];
            }
            t3 = now();
        }
        for (size_t i = 0; sim && i < nt; i++) {
            double tau[2];
            tau_true(X + (n + i) * D, tau);
            mse[0] += (sc[i] - tau[0]) * (sc[i] - tau[0]) / (double)nt;
            mse[1] += (sc[nt + i] - tau[1]) * (sc[nt + i] - tau[1]) / (double)nt;
        }
        json_t *j = NULL;
        char *s = NULL;
        if (m) {
            uplift_to_json(m, &j, err, sizeof err);
            s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
        }
        printf("%-14s fit_s=%.2f fit_cpu_s=%.2f threads=%d score_us=%.1f json_mb=%.1f",
               rows[L].name, t1 - t0, c1 - c0, threads, 1e6 * (t3 - t2) / (double)nt,
               s ? (double)strlen(s) / 1e6 : 0.0);
        int leaf, mtry;
        double iq;
        if (m && rows[L].tune == 1) {
            uplift_get_tuning(m, &leaf, &mtry, &iq);
            printf(" tuned min_leaf=%d mtry=%d", leaf, mtry);
        }
        printf("\n");
        for (int k = 1; k <= 2; k++) {
            uplift_eval e;
            if (m) {
                uplift_evaluate(y + n, arm + n, sc + (size_t)(k - 1) * nt, nt, k, &e, err,
                                sizeof err);
                uplift_bootstrap(y + n, arm + n, sc + (size_t)(k - 1) * nt, nt, k, 200,
                                 uplift_boot_seed(42, k), &e, err, sizeof err);
            } else /* the mean and 5-95 % band of 200 random orderings */
                uplift_random_band(y + n, arm + n, nt, k, 200, uplift_boot_seed(42, k) ^ 0x5eed, &e,
                                   err, sizeof err);
            printf("   arm %d: qini_norm %.4f [%.4f, %.4f]  qini_coef %.1f  auuc_norm %.4f", k,
                   e.qini_norm, e.qini_lo, e.qini_hi, e.qini_coef, e.auuc_norm);
            uplift_rule r;
            if (m && uplift_get_rule(m, k, &r) == RFM_OK)
                printf("  rule x[%d] <= %g: %.4f else %.4f", r.feature, r.threshold, r.uplift_le,
                       r.uplift_gt);
            if (sim && m)
                printf("  tau MSE %.3g", mse[k - 1]);
            printf("\n");
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
