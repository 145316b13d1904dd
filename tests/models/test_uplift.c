/* test_uplift.c - uplift learners (T, causal forest tuned or not, X, DR, the
 * single-feature rule) on simulated randomised experiments with known effects,
 * Qini/AUUC against hand-computed values and a brute-force reference, the
 * bootstrap interval's coverage, determinism, JSON round trip, held-out split,
 * the learner choice, bad input. */
#include "testutil.h"

#include <gsl/gsl_errno.h>
#include <jansson.h>
#include <string.h>

#include "rng.h"
#include "uplift.h"

#define D 5

/* Arm 1: tau = 0.15 * 1{x0 > 0} (binary) or tau = x0 (continuous); arm 2:
 * no effect. x1 is a strong prognostic feature, x2..x4 are noise of the
 * kinds the data module produces (uniform, 0/1, small integers). */
static double tau1(const double *x, int continuous)
{
    return continuous ? x[0] : 0.15 * (x[0] > 0);
}

static void simulate(size_t n, uint64_t seed, int continuous, double *X, int *arm, double *y)
{
    rfm_rng r;
    rfm_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        double *x = X + i * D;
        x[0] = rfm_rng_normal(&r);
        x[1] = rfm_rng_normal(&r);
        x[2] = rfm_rng_uniform(&r);
        x[3] = (double)rfm_rng_below(&r, 2);
        x[4] = (double)rfm_rng_below(&r, 6);
        arm[i] = (int)rfm_rng_below(&r, 3);
        double t = arm[i] == 1 ? tau1(x, continuous) : 0.0;
        if (continuous) {
            y[i] = 2.0 * x[1] + t + rfm_rng_normal(&r);
        } else {
            double p = 0.3 + 0.2 * tanh(x[1]) + t;
            y[i] = rfm_rng_uniform(&r) < p ? 1.0 : 0.0;
        }
    }
}

static void small_params(uplift_params *p, uplift_learner l)
{
    uplift_default_params(p, l);
    p->outcome.n_trees = 50;
    p->outcome.min_leaf = 10;
    p->effect.n_trees = 50;
    p->effect.min_leaf = 30;
}

typedef struct {
    double corr, mse, mean_abs_arm2, mean_arm2, se_arm2;
} recovery;

static double correlation(const double *a, const double *b, size_t n)
{
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++) {
        ma += a[i] / (double)n;
        mb += b[i] / (double)n;
    }
    for (size_t i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return sab / sqrt(saa * sbb);
}

static int tune_next; /* fit_and_score tunes the causal forest */

static recovery fit_and_score(uplift_learner l, int continuous, size_t n)
{
    size_t nt = 2000;
    double *X = malloc((n + nt) * D * sizeof *X), *y = malloc((n + nt) * sizeof *y);
    int *arm = malloc((n + nt) * sizeof *arm);
    double *est = malloc(nt * sizeof *est), *truth = malloc(nt * sizeof *truth);
    simulate(n + nt, continuous ? 21 : 22, continuous, X, arm, y);
    uplift_params p;
    small_params(&p, l);
    p.tune = tune_next;
    uplift_model *m = NULL;
    char err[RFM_ERRLEN];
    if (uplift_fit(X, n, D, arm, 2, y, &p, &m, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    if (p.tune) {
        int leaf, mtry;
        double q;
        uplift_get_tuning(m, &leaf, &mtry, &q);
        printf("    tuned: min_leaf %d, mtry %d (inner Qini %.4f)\n", leaf, mtry, q);
        assert_true(leaf >= 1 && mtry >= 1 && mtry <= D);
    }
    recovery rc = {0, 0, 0, 0, 0};
    /* Standard error of the training difference in means, arm 2 vs control. */
    double sum[3] = {0}, sq[3] = {0}, cnt[3] = {0};
    for (size_t i = 0; i < n; i++) {
        sum[arm[i]] += y[i];
        sq[arm[i]] += y[i] * y[i];
        cnt[arm[i]] += 1;
    }
    for (int a = 0; a <= 2; a += 2) {
        double mu = sum[a] / cnt[a];
        rc.se_arm2 += (sq[a] / cnt[a] - mu * mu) / cnt[a];
    }
    rc.se_arm2 = sqrt(rc.se_arm2);
    for (size_t i = 0; i < nt; i++) {
        const double *x = X + (n + i) * D;
        double u[2], c;
        assert_int_equal(uplift_predict(m, x, u, &c, err, sizeof err), RFM_OK);
        est[i] = u[0];
        truth[i] = tau1(x, continuous);
        rc.mse += (u[0] - truth[i]) * (u[0] - truth[i]) / (double)nt;
        rc.mean_abs_arm2 += fabs(u[1]) / (double)nt;
        rc.mean_arm2 += u[1] / (double)nt;
    }
    rc.corr = correlation(est, truth, nt);
    printf(
        "    %-13s%s %-10s corr(tau_hat, tau) %.3f  MSE %.5f  no-effect arm: mean |tau_hat| %.4f,"
        " mean tau_hat %+.4f (se of ATE %.4f)\n",
        uplift_learner_name(l), p.tune ? "+tuned" : "", continuous ? "continuous" : "binary",
        rc.corr, rc.mse, rc.mean_abs_arm2, rc.mean_arm2, rc.se_arm2);
    uplift_free(m);
    free(X);
    free(y);
    free(arm);
    free(est);
    free(truth);
    return rc;
}

/* The causal forest recovers the effect of arm 1 (correlation > 0.8), beats
 * the T-learner in MSE of tau, and finds (almost) nothing for arm 2, whose
 * true effect is 0: mean |tau_hat| below a quarter of arm 1's effect size
 * (binary: 0.04 of 0.15; continuous: 0.25 of sd(tau) = 1), and a mean
 * tau_hat (the estimated average effect) within 3 standard errors of the
 * training difference in means of 0. */
static void test_recovers_binary_step(void **state)
{
    (void)state;
    recovery cf = fit_and_score(UPLIFT_CAUSAL_FOREST, 0, 15000);
    recovery tl = fit_and_score(UPLIFT_T_LEARNER, 0, 15000);
    assert_true(cf.corr > 0.8);
    assert_true(cf.mse < tl.mse);
    assert_true(cf.mean_abs_arm2 < 0.04);
    assert_true(fabs(cf.mean_arm2) < 3 * cf.se_arm2);
}

/* The new learners on the same experiment: each ranks customers by the true
 * effect (correlation of tau_hat with the 0/0.15 step well above the
 * T-learner's noise level) and finds (almost) no effect for arm 2. */
static void test_recovers_new_learners(void **state)
{
    (void)state;
    recovery tl = fit_and_score(UPLIFT_T_LEARNER, 0, 15000);
    const uplift_learner ls[3] = {UPLIFT_X_LEARNER, UPLIFT_DR_LEARNER, UPLIFT_CAUSAL_FOREST};
    for (int j = 0; j < 3; j++) {
        tune_next = ls[j] == UPLIFT_CAUSAL_FOREST;
        recovery r = fit_and_score(ls[j], 0, 15000);
        tune_next = 0;
        assert_true(r.corr > 0.7);
        assert_true(r.mse < tl.mse);
        assert_true(r.mean_abs_arm2 < 0.05);
        assert_true(fabs(r.mean_arm2) < 3 * r.se_arm2);
    }
    recovery xc = fit_and_score(UPLIFT_X_LEARNER, 1, 9000);
    recovery dc = fit_and_score(UPLIFT_DR_LEARNER, 1, 9000);
    assert_true(xc.corr > 0.8 && dc.corr > 0.8);
}

static void test_recovers_continuous_linear(void **state)
{
    (void)state;
    recovery cf = fit_and_score(UPLIFT_CAUSAL_FOREST, 1, 9000);
    recovery tl = fit_and_score(UPLIFT_T_LEARNER, 1, 9000);
    assert_true(cf.corr > 0.8);
    assert_true(cf.mse < tl.mse);
    assert_true(cf.mean_abs_arm2 < 0.25);
    assert_true(fabs(cf.mean_arm2) < 3 * cf.se_arm2);
}

/* ---- evaluation ---- */

/* Rows (score, arm, y) worked by hand (see the comment of uplift_evaluate):
 *   A 0.9 t y=1, D 0.8 c y=1, B 0.7 c y=0, C 0.6 t y=0
 *   Qini   at N=1..4: 1, 0, 0.5, 0  -> area 0.5+0.5+0.25+0.25 = 1.5, random 0
 *   uplift at N=1..4: 1, 0, 1.5, 0  -> area 0.5+0.5+0.75+0.75 = 2.5, random 0
 *   Qini oracle y*t - y*(1-t): A 1, B 0, C 0, D -1 -> points (1,1) (3,1) (4,0),
 *     area 0.5 + 2 + 0.5 = 3
 *   uplift oracle (CR = 1 = TN, so + t): A 3, B 2, C 1, D 0 -> 1, 2, 1.5, 0,
 *     area 0.5 + 1.5 + 1.75 + 0.75 = 4.5
 *   qini_norm = 1.5 / 3 = 0.5, auuc_norm = 2.5 / 4.5 */
static void test_eval_hand_computed(void **state)
{
    (void)state;
    double y[4] = {1, 1, 0, 0}, s[4] = {0.9, 0.8, 0.7, 0.6};
    int arm[4] = {1, 0, 0, 1};
    uplift_eval e;
    char err[RFM_ERRLEN];
    assert_int_equal(uplift_evaluate(y, arm, s, 4, 1, &e, err, sizeof err), RFM_OK);
    double tol = 1e-12;
    assert_near(e.qini_area, 1.5, tol);
    assert_near(e.qini_random, 0.0, tol);
    assert_near(e.qini_perfect, 3.0, tol);
    assert_near(e.qini_coef, 1.5, tol);
    assert_near(e.qini_norm, 0.5, tol);
    assert_near(e.uplift_area, 2.5, tol);
    assert_near(e.uplift_perfect, 4.5, tol);
    assert_near(e.auuc_norm, 2.5 / 4.5, tol);
    /* Curve points at population fractions: N = 1 at 25%, 3 at 75%, 2.5 at 62.5%. */
    assert_int_equal(e.n_points, 101);
    assert_near(e.qini[25], 1.0, tol);
    assert_near(e.uplift[75], 1.5, tol);
    assert_near(e.qini[50], 0.0, tol);
    assert_near(e.uplift[100], 0.0, tol);
    assert_near(e.frac[50], 0.5, tol);
    /* An arm 2 row is ignored when evaluating arm 1. */
    double y5[5] = {1, 1, 0, 0, 1}, s5[5] = {0.9, 0.8, 0.7, 0.6, 5.0};
    int arm5[5] = {1, 0, 0, 1, 2};
    assert_int_equal(uplift_evaluate(y5, arm5, s5, 5, 1, &e, err, sizeof err), RFM_OK);
    assert_near(e.qini_area, 1.5, tol);
    assert_int_equal(e.n, 4);
}

/* Brute force: for each distinct score t (descending), the rows with score
 * >= t give one point; trapezoids over the points. */
static void brute_curve(const double *y, const int *arm, const double *s, size_t n, int k,
                        double *qa, double *ua, double *qlast, double *ulast)
{
    double px = 0, pq = 0, pu = 0, prev_t = INFINITY;
    *qa = *ua = 0;
    for (;;) {
        double t = -INFINITY;
        for (size_t i = 0; i < n; i++)
            if ((arm[i] == 0 || arm[i] == k) && s[i] < prev_t && s[i] > t)
                t = s[i];
        if (t == -INFINITY)
            break;
        double N = 0, NT = 0, NC = 0, YT = 0, YC = 0;
        for (size_t i = 0; i < n; i++) {
            if ((arm[i] != 0 && arm[i] != k) || s[i] < t)
                continue;
            N += 1;
            if (arm[i] == k) {
                NT += 1;
                YT += y[i];
            } else {
                NC += 1;
                YC += y[i];
            }
        }
        double q = YT - (NC > 0 ? YC * NT / NC : 0);
        double u = ((NT > 0 ? YT / NT : 0) - (NC > 0 ? YC / NC : 0)) * N;
        *qa += (N - px) * (q + pq) / 2;
        *ua += (N - px) * (u + pu) / 2;
        px = N;
        pq = q;
        pu = u;
        prev_t = t;
    }
    *qlast = pq;
    *ulast = pu;
}

static void test_eval_vs_brute_force(void **state)
{
    (void)state;
    size_t n = 400;
    double y[400], s[400], ys[400], oq[400], ou[400];
    int arm[400];
    rfm_rng r;
    rfm_rng_seed(&r, 77);
    char err[RFM_ERRLEN];
    double md = 0;
    for (int rep = 0; rep < 6; rep++) {
        int binary = rep % 2 == 0;
        size_t cr = 0, tn = 0;
        for (size_t i = 0; i < n; i++) {
            arm[i] = (int)rfm_rng_below(&r, 3);
            /* Few distinct scores so that tie groups are exercised. */
            s[i] = (double)rfm_rng_below(&r, rep < 2 ? 7 : 1000) / 10.0;
            y[i] = binary ? (double)(rfm_rng_uniform(&r) < 0.3 + 0.1 * (arm[i] == 1))
                          : 50.0 * rfm_rng_uniform(&r) * (rfm_rng_uniform(&r) < 0.2);
            cr += arm[i] == 0 && y[i] == 1;
            tn += arm[i] == 1 && y[i] == 0;
        }
        uplift_eval e;
        assert_int_equal(uplift_evaluate(y, arm, s, n, 1, &e, err, sizeof err), RFM_OK);
        double qa, ua, ql, ul, pqa, pua, x1, x2;
        brute_curve(y, arm, s, n, 1, &qa, &ua, &ql, &ul);
        double m = (double)e.n;
        for (size_t i = 0; i < n; i++) {
            double t = arm[i] == 1;
            oq[i] = y[i] * t - y[i] * (1 - t);
            ou[i] = binary ? 2.0 * (y[i] == t) + (cr > tn ? y[i] : t) : oq[i];
        }
        brute_curve(y, arm, oq, n, 1, &pqa, &x1, &x2, &x2);
        brute_curve(y, arm, ou, n, 1, &x1, &pua, &x2, &x2);
        double scale = fmax(1.0, fabs(pqa)); /* areas grow as n^2 */
        md = fmax(md, fabs(e.qini_area - qa) / scale);
        md = fmax(md, fabs(e.uplift_area - ua) / scale);
        md = fmax(md, fabs(e.qini_random - m * ql / 2) / scale);
        md = fmax(md, fabs(e.uplift_random - m * ul / 2) / scale);
        md = fmax(md, fabs(e.qini_perfect - pqa) / scale);
        md = fmax(md, fabs(e.uplift_perfect - pua) / scale);
        md = fmax(md, fabs(e.qini_norm - (qa - m * ql / 2) / (pqa - m * ql / 2)));
        md = fmax(md, fabs(e.auuc_norm - (ua - m * ul / 2) / (pua - m * ul / 2)));
        /* Ranking by the oracle itself is perfect; a constant score is the
         * random line; the curve ends at the last point. */
        memcpy(ys, oq, sizeof ys);
        assert_int_equal(uplift_evaluate(y, arm, ys, n, 1, &e, err, sizeof err), RFM_OK);
        md = fmax(md, fabs(e.qini_norm - 1.0));
        md = fmax(md, fabs(e.qini[100] - ql) / scale);
        for (size_t i = 0; i < n; i++)
            ys[i] = 0.5;
        assert_int_equal(uplift_evaluate(y, arm, ys, n, 1, &e, err, sizeof err), RFM_OK);
        md = fmax(md, fabs(e.qini_norm));
        md = fmax(md, fabs(e.auuc_norm));
        md = fmax(md, fabs(e.qini[40] - 0.4 * ql) / scale);
    }
    report_maxdiff("evaluate vs brute force (areas relative to perfect area)", md, 1e-9);
}

/* On held-out simulated data the causal forest ranks better than random and
 * nearly as well as the true effect does (the perfect curve knows each
 * customer's realised outcome, so even the true tau is far below 1 there). */
static void test_eval_model_qini_positive(void **state)
{
    (void)state;
    size_t n = 6000, nt = 3000;
    double *X = malloc((n + nt) * D * sizeof *X), *y = malloc((n + nt) * sizeof *y);
    int *arm = malloc((n + nt) * sizeof *arm);
    double *sc = malloc(nt * sizeof *sc), *truth = malloc(nt * sizeof *truth);
    simulate(n + nt, 5, 0, X, arm, y);
    uplift_params p;
    small_params(&p, UPLIFT_CAUSAL_FOREST);
    uplift_model *m = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(uplift_fit(X, n, D, arm, 2, y, &p, &m, err, sizeof err), RFM_OK);
    for (size_t i = 0; i < nt; i++) {
        double u[2];
        assert_int_equal(uplift_predict(m, X + (n + i) * D, u, NULL, err, sizeof err), RFM_OK);
        sc[i] = u[0];
        truth[i] = tau1(X + (n + i) * D, 0);
    }
    uplift_eval e, et;
    assert_int_equal(uplift_evaluate(y + n, arm + n, sc, nt, 1, &e, err, sizeof err), RFM_OK);
    assert_int_equal(uplift_evaluate(y + n, arm + n, truth, nt, 1, &et, err, sizeof err), RFM_OK);
    printf("    held-out arm 1: causal forest qini_coef %.1f (norm %.4f), auuc %.1f (norm %.4f)\n",
           e.qini_coef, e.qini_norm, e.auuc, e.auuc_norm);
    printf("    held-out arm 1: true tau      qini_coef %.1f (norm %.4f), auuc %.1f (norm %.4f)\n",
           et.qini_coef, et.qini_norm, et.auuc, et.auuc_norm);
    assert_true(e.qini_norm > 0.7 * et.qini_norm && e.qini_norm > 0);
    assert_true(e.auuc_norm > 0.7 * et.auuc_norm && e.auuc_norm > 0);
    free(truth);
    uplift_free(m);
    free(X);
    free(y);
    free(arm);
    free(sc);
}

/* ---- determinism, JSON, split, bad input ---- */

static void test_determinism_and_json(void **state)
{
    (void)state;
    size_t n = 3000;
    double *X = malloc(n * D * sizeof *X), *y = malloc(n * sizeof *y);
    int *arm = malloc(n * sizeof *arm);
    simulate(n, 8, 0, X, arm, y);
    char err[RFM_ERRLEN];
    for (int l = 0; l < UPLIFT_N_LEARNERS; l++) {
        uplift_params p;
        small_params(&p, (uplift_learner)l);
        p.outcome.n_trees = p.effect.n_trees = 20;
        p.nuisance_trees = 10;
        p.tune = l == UPLIFT_CAUSAL_FOREST;
        uplift_model *a = NULL, *b = NULL, *c = NULL;
        assert_int_equal(uplift_fit(X, n, D, arm, 2, y, &p, &a, err, sizeof err), RFM_OK);
        p.n_threads = 1;
        assert_int_equal(uplift_fit(X, n, D, arm, 2, y, &p, &b, err, sizeof err), RFM_OK);
        json_t *j = NULL;
        assert_int_equal(uplift_to_json(a, &j, err, sizeof err), RFM_OK);
        char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
        json_t *back = json_loads(s, 0, NULL);
        assert_int_equal(uplift_from_json(back, &c, err, sizeof err), RFM_OK);
        assert_int_equal(uplift_get_learner(c), l);
        assert_int_equal(uplift_n_arms(c), 2);
        double dthreads = 0, djson = 0;
        for (size_t i = 0; i < 300; i++) {
            double ua[2], ub[2], uc[2], ca, cb, cc;
            uplift_predict(a, X + i * D, ua, &ca, err, sizeof err);
            uplift_predict(b, X + i * D, ub, &cb, err, sizeof err);
            uplift_predict(c, X + i * D, uc, &cc, err, sizeof err);
            for (int k = 0; k < 2; k++) {
                dthreads = fmax(dthreads, fabs(ua[k] - ub[k]));
                djson = fmax(djson, fabs(ua[k] - uc[k]));
            }
            dthreads = fmax(dthreads, fabs(ca - cb));
            djson = fmax(djson, fabs(ca - cc));
        }
        printf("    %s (%zu-byte JSON)\n", uplift_learner_name((uplift_learner)l), strlen(s));
        report_maxdiff("same seed, 2 threads vs 1", dthreads, 0.0);
        report_maxdiff("JSON round trip", djson, 0.0);
        uplift_model *bad = NULL;
        /* Files written before the X-, DR-learners and the rule (version 1)
         * still load; a version-1 file naming a new learner does not. */
        json_object_set_new(back, "version", json_integer(1));
        assert_int_equal(uplift_from_json(back, &bad, err, sizeof err),
                         l <= UPLIFT_CAUSAL_FOREST ? RFM_OK : RFM_EFORMAT);
        uplift_free(bad);
        bad = NULL;
        json_object_set_new(back, "version", json_integer(99));
        assert_int_equal(uplift_from_json(back, &bad, err, sizeof err), RFM_EFORMAT);
        assert_non_null(strstr(err, "regenerate"));
        json_object_set_new(back, "version", json_integer(2));
        json_array_remove(json_object_get(back, "arms"), 1);
        assert_int_equal(uplift_from_json(back, &bad, err, sizeof err), RFM_EFORMAT);
        assert_non_null(strstr(err, "'arms'"));
        assert_null(bad);
        json_decref(back);
        json_decref(j);
        free(s);
        uplift_free(a);
        uplift_free(b);
        uplift_free(c);
    }
    /* A different seed gives a different forest. */
    uplift_params p;
    small_params(&p, UPLIFT_CAUSAL_FOREST);
    p.effect.n_trees = 10;
    uplift_model *a = NULL, *b = NULL;
    assert_int_equal(uplift_fit(X, n, D, arm, 2, y, &p, &a, err, sizeof err), RFM_OK);
    p.seed = 2;
    assert_int_equal(uplift_fit(X, n, D, arm, 2, y, &p, &b, err, sizeof err), RFM_OK);
    double ua[2], ub[2];
    uplift_predict(a, X, ua, NULL, err, sizeof err);
    uplift_predict(b, X, ub, NULL, err, sizeof err);
    assert_true(ua[0] != ub[0]);
    uplift_free(a);
    uplift_free(b);
    free(X);
    free(y);
    free(arm);
}

static void test_holdout(void **state)
{
    (void)state;
    int arm[1000];
    uint8_t t1[1000], t2[1000];
    size_t size[3] = {0}, test[3] = {0};
    for (int i = 0; i < 1000; i++)
        arm[i] = i % 7 == 0 ? 2 : i % 2;
    char err[RFM_ERRLEN];
    assert_int_equal(uplift_holdout(arm, NULL, 1000, 0.3, 5, t1, err, sizeof err), RFM_OK);
    assert_int_equal(uplift_holdout(arm, NULL, 1000, 0.3, 5, t2, err, sizeof err), RFM_OK);
    assert_memory_equal(t1, t2, 1000);
    for (int i = 0; i < 1000; i++) {
        size[arm[i]]++;
        test[arm[i]] += t1[i];
    }
    for (int a = 0; a < 3; a++)
        assert_int_equal(test[a], (size_t)floor(0.3 * (double)size[a] + 0.5));
    assert_int_equal(uplift_holdout(arm, NULL, 1000, 1.5, 5, t1, err, sizeof err), RFM_EINVAL);
    /* With the outcome: each arm x (y > 0) stratum is split in the share. */
    double y[1000];
    size_t ss[3][2] = {{0}}, st[3][2] = {{0}};
    for (int i = 0; i < 1000; i++)
        y[i] = (i / 3) % 5 == 0 ? 1.0 : 0.0;
    assert_int_equal(uplift_holdout(arm, y, 1000, 0.3, 5, t1, err, sizeof err), RFM_OK);
    for (int i = 0; i < 1000; i++) {
        ss[arm[i]][y[i] > 0]++;
        st[arm[i]][y[i] > 0] += t1[i];
    }
    for (int a = 0; a < 3; a++)
        for (int o = 0; o < 2; o++)
            assert_int_equal(st[a][o], (size_t)floor(0.3 * (double)ss[a][o] + 0.5));
}

static void test_bad_input(void **state)
{
    (void)state;
    double X[6 * D] = {0}, y[6] = {0, 1, 0, 1, 0, 1};
    int arm[6] = {0, 0, 1, 1, 1, 3};
    uplift_params p;
    uplift_default_params(&p, UPLIFT_CAUSAL_FOREST);
    uplift_model *m = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(uplift_fit(X, 6, D, arm, 2, y, &p, &m, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "arm[5]"));
    arm[5] = 1;
    assert_int_equal(uplift_fit(X, 6, D, arm, 2, y, &p, &m, err, sizeof err), RFM_EDATA);
    p.outcome.n_trees = 0;
    assert_int_equal(uplift_fit(X, 6, D, arm, 1, y, &p, &m, err, sizeof err), RFM_EINVAL);
    assert_null(m);
    /* Scoring refuses a non-finite feature and leaves the outputs alone. */
    size_t n = 600;
    double *Xs = malloc(n * D * sizeof *Xs), *ys = malloc(n * sizeof *ys);
    int *as = malloc(n * sizeof *as);
    simulate(n, 3, 0, Xs, as, ys);
    small_params(&p, UPLIFT_T_LEARNER);
    p.outcome.n_trees = 5;
    assert_int_equal(uplift_fit(Xs, n, D, as, 2, ys, &p, &m, err, sizeof err), RFM_OK);
    double x[D] = {0, 0, NAN, 0, 0}, u[2] = {7, 7};
    assert_int_equal(uplift_predict(m, x, u, NULL, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "feature 2"));
    assert_true(u[0] == 7 && u[1] == 7);
    uplift_eval e;
    int only_t[3] = {1, 1, 1};
    assert_int_equal(uplift_evaluate(ys, only_t, ys, 3, 1, &e, err, sizeof err), RFM_EDATA);
    uplift_free(m);
    free(Xs);
    free(ys);
    free(as);
}

/* The arm choice of /uplift_score on hand-worked cases. */
static void test_best_arm(void **state)
{
    (void)state;
    const double u[3] = {0.02, 0.05, -0.01};
    double g[3] = {NAN, NAN, NAN};
    /* Largest uplift without a value: arm 2; gain untouched. */
    assert_int_equal(uplift_best_arm(u, 3, NULL, NULL, g), 2);
    assert_true(isnan(g[0]));
    /* Value 100, costs 0, 4, 0: gains 2, 1, -1 -> arm 1. */
    const double v = 100, cost[3] = {0, 4, 0};
    assert_int_equal(uplift_best_arm(u, 3, &v, cost, g), 1);
    assert_near(g[0], 2, 1e-12);
    assert_near(g[1], 1, 1e-12);
    assert_near(g[2], -1, 1e-12);
    /* No costs: gains 2, 5, -1 -> arm 2. */
    assert_int_equal(uplift_best_arm(u, 3, &v, NULL, NULL), 2);
    /* Costs above every gain: control. */
    const double dear[3] = {3, 6, 0};
    assert_int_equal(uplift_best_arm(u, 3, &v, dear, g), 0);
    /* No positive uplift: control; a tie goes to the first arm. */
    const double neg[2] = {-0.1, 0}, tie[2] = {0.03, 0.03};
    assert_int_equal(uplift_best_arm(neg, 2, NULL, NULL, NULL), 0);
    assert_int_equal(uplift_best_arm(tie, 2, NULL, NULL, NULL), 1);
}

/* ---- held-out evaluation and the learner choice ---- */

/* uplift_holdout_eval against the plain version written here: fit on the
 * rows is_test marks 0 only, score the others, uplift_evaluate each arm.
 * A fit that saw the held-out rows gives other scores and fails the
 * comparison; arm 1's real effect gives a positive normalised Qini. */
static void test_holdout_eval_reference(void **state)
{
    (void)state;
    size_t n = 3000;
    double *X = malloc(n * D * sizeof *X), *y = malloc(n * sizeof *y);
    int *arm = malloc(n * sizeof *arm);
    uint8_t *is_test = malloc(n);
    simulate(n, 41, 1, X, arm, y); /* arm 1: tau = x0 */
    char err[RFM_ERRLEN];
    assert_int_equal(uplift_holdout(arm, y, n, 0.3, 7, is_test, err, sizeof err), RFM_OK);
    uplift_params p;
    small_params(&p, UPLIFT_T_LEARNER); /* the learner argument overrides it */
    uplift_eval ev[2];
    double mean = NAN;
    uplift_model *fitted = NULL;
    assert_int_equal(uplift_holdout_eval(X, n, D, arm, 2, y, is_test, &p, UPLIFT_CAUSAL_FOREST, ev,
                                         &mean, &fitted, err, sizeof err),
                     RFM_OK);
    assert_non_null(fitted);
    assert_int_equal(uplift_get_learner(fitted), UPLIFT_CAUSAL_FOREST);
    uplift_free(fitted);

    /* Reference. */
    double *Xtr = malloc(n * D * sizeof *Xtr), *ytr = malloc(n * sizeof *ytr);
    double *yte = malloc(n * sizeof *yte),
           *sc[2] = {malloc(n * sizeof(double)), malloc(n * sizeof(double))};
    int *atr = malloc(n * sizeof *atr), *ate = malloc(n * sizeof *ate);
    size_t ntr = 0, nte = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_test[i]) {
            memcpy(Xtr + ntr * D, X + i * D, D * sizeof *X);
            atr[ntr] = arm[i], ytr[ntr] = y[i];
            ntr++;
        }
    uplift_params q = p;
    q.learner = UPLIFT_CAUSAL_FOREST;
    uplift_model *m = NULL;
    assert_int_equal(uplift_fit(Xtr, ntr, D, atr, 2, ytr, &q, &m, err, sizeof err), RFM_OK);
    for (size_t i = 0; i < n; i++)
        if (is_test[i]) {
            double u[2];
            assert_int_equal(uplift_predict(m, X + i * D, u, NULL, err, sizeof err), RFM_OK);
            ate[nte] = arm[i], yte[nte] = y[i], sc[0][nte] = u[0], sc[1][nte] = u[1];
            nte++;
        }
    double maxdiff = 0, qsum = 0;
    for (int k = 1; k <= 2; k++) {
        uplift_eval r;
        assert_int_equal(uplift_evaluate(yte, ate, sc[k - 1], nte, k, &r, err, sizeof err), RFM_OK);
        assert_int_equal(ev[k - 1].n, r.n);
        assert_int_equal(ev[k - 1].n_treated, r.n_treated);
        const double a[4] = {ev[k - 1].qini_coef, ev[k - 1].qini_norm, ev[k - 1].auuc,
                             ev[k - 1].auuc_norm};
        const double b[4] = {r.qini_coef, r.qini_norm, r.auuc, r.auuc_norm};
        for (int j = 0; j < 4; j++)
            maxdiff = fmax(maxdiff, fabs(a[j] - b[j]) / fmax(1, fabs(b[j])));
        qsum += r.qini_norm;
    }
    report_maxdiff("holdout eval vs reference (relative)", maxdiff, 1e-9);
    /* The interval of each arm is filled and holds the point value. */
    for (int k = 0; k < 2; k++) {
        assert_int_equal(ev[k].n_boot, p.n_boot);
        assert_true(ev[k].qini_lo <= ev[k].qini_norm && ev[k].qini_norm <= ev[k].qini_hi);
        assert_true(ev[k].qini_sd > 0);
    }
    assert_true(maxdiff <= 1e-9);
    assert_near(mean, qsum / 2, 1e-12);
    printf("    held-out qini_norm: arm 1 %.4f, arm 2 (no effect) %.4f\n", ev[0].qini_norm,
           ev[1].qini_norm);
    assert_true(ev[0].qini_norm > 0.1);
    assert_true(ev[0].qini_norm > ev[1].qini_norm);

    /* uplift_holdout_compare gives every learner's uplift_holdout_eval
     * results exactly, sharing the control forest between the fits. */
    {
        const uplift_learner all[5] = {UPLIFT_T_LEARNER, UPLIFT_CAUSAL_FOREST, UPLIFT_X_LEARNER,
                                       UPLIFT_DR_LEARNER, UPLIFT_RULE};
        uplift_params c = p;
        c.tune = 1;
        c.nuisance_trees = 20;
        uplift_eval cev[10], one[2];
        double cmean[5], omean;
        uplift_model *fits[5];
        assert_int_equal(uplift_holdout_compare(X, n, D, arm, 2, y, is_test, &c, all, 5, cev, cmean,
                                                fits, err, sizeof err),
                         RFM_OK);
        double cd = 0;
        for (int j = 0; j < 5; j++) {
            assert_int_equal(uplift_holdout_eval(X, n, D, arm, 2, y, is_test, &c, all[j], one,
                                                 &omean, NULL, err, sizeof err),
                             RFM_OK);
            cd = fmax(cd, fabs(omean - cmean[j]));
            for (int k = 0; k < 2; k++) {
                const uplift_eval *x = &cev[j * 2 + k], *o = &one[k];
                cd = fmax(cd, fabs(x->qini_norm - o->qini_norm));
                cd = fmax(cd, fabs(x->qini_lo - o->qini_lo) + fabs(x->qini_hi - o->qini_hi));
                cd = fmax(cd, fabs(x->auuc_norm - o->auuc_norm));
            }
            assert_non_null(fits[j]);
            assert_int_equal(uplift_get_learner(fits[j]), all[j]);
            printf("    %-13s held-out mean qini_norm %.4f\n", uplift_learner_name(all[j]),
                   cmean[j]);
            uplift_free(fits[j]);
        }
        report_maxdiff("holdout compare vs eval per learner", cd, 0.0);
        assert_true(cd == 0.0);
    }

    /* A held-out share with no control row left for the evaluation fails. */
    for (size_t i = 0; i < n; i++)
        is_test[i] = arm[i] != 0;
    assert_int_not_equal(uplift_holdout_eval(X, n, D, arm, 2, y, is_test, &p, UPLIFT_T_LEARNER, ev,
                                             &mean, NULL, err, sizeof err),
                         RFM_OK);
    printf("    %s\n", err);
    uplift_free(m);
    free(X), free(y), free(arm), free(is_test), free(Xtr), free(ytr), free(yte);
    free(sc[0]), free(sc[1]), free(atr), free(ate);
}

static void test_choose_learner(void **state)
{
    (void)state;
    uplift_params p;
    uplift_default_params(&p, UPLIFT_T_LEARNER);
    /* indices: t_learner, causal_forest, x_learner, dr_learner, rule */
    const double cf_better[UPLIFT_N_LEARNERS] = {0.1, 0.2, NAN, NAN, NAN};
    const double t_better[UPLIFT_N_LEARNERS] = {0.3, 0.2, NAN, NAN, NAN};
    const double tie[UPLIFT_N_LEARNERS] = {0.2, 0.2, NAN, NAN, NAN};
    const double x_best[UPLIFT_N_LEARNERS] = {0.1, 0.2, 0.25, 0.24, 0.21};
    const double dr_best[UPLIFT_N_LEARNERS] = {0.1, 0.2, 0.25, 0.26, 0.21};
    const double rule_wins[UPLIFT_N_LEARNERS] = {0.1, 0.2, 0.25, 0.24, 0.2501};
    const double rule_ties[UPLIFT_N_LEARNERS] = {0.1, 0.2, 0.25, 0.24, 0.25};
    const double none[UPLIFT_N_LEARNERS] = {NAN, NAN, NAN, NAN, NAN};
    /* Without choose_learner the configured learner, whatever the scores. */
    assert_int_equal(uplift_choose_learner(&p, cf_better), UPLIFT_T_LEARNER);
    p.learner = UPLIFT_CAUSAL_FOREST;
    assert_int_equal(uplift_choose_learner(&p, t_better), UPLIFT_CAUSAL_FOREST);
    p.learner = UPLIFT_RULE;
    assert_int_equal(uplift_choose_learner(&p, x_best), UPLIFT_RULE);
    /* With it, the largest mean normalised Qini among those evaluated (NaN:
     * not evaluated); the causal forest on a tie with the T-learner. */
    p.choose_learner = 1;
    p.learner = UPLIFT_T_LEARNER;
    assert_int_equal(uplift_choose_learner(&p, cf_better), UPLIFT_CAUSAL_FOREST);
    assert_int_equal(uplift_choose_learner(&p, t_better), UPLIFT_T_LEARNER);
    assert_int_equal(uplift_choose_learner(&p, tie), UPLIFT_CAUSAL_FOREST);
    assert_int_equal(uplift_choose_learner(&p, x_best), UPLIFT_X_LEARNER);
    assert_int_equal(uplift_choose_learner(&p, dr_best), UPLIFT_DR_LEARNER);
    /* The rule is served when it beats every learner, not on a tie. */
    assert_int_equal(uplift_choose_learner(&p, rule_wins), UPLIFT_RULE);
    assert_int_equal(uplift_choose_learner(&p, rule_ties), UPLIFT_X_LEARNER);
    assert_int_equal(uplift_choose_learner(&p, none), UPLIFT_T_LEARNER);
}

/* ---- the single-feature rule ---- */

/* Experiments whose effect is a planted rule on one feature, with a strong
 * prognostic feature (x1) that a search on outcomes instead of effects would
 * pick: the search finds the feature, the threshold within a bin or two, and
 * the direction; its Qini agrees with uplift_evaluate's of the rule's scores;
 * and a model of kind rule predicts with it and round-trips through JSON. */
static void planted(size_t n, uint64_t seed, int which, double *X, int *arm, double *y)
{
    rfm_rng r;
    rfm_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        double *x = X + i * D;
        x[0] = rfm_rng_normal(&r);
        x[1] = rfm_rng_normal(&r);
        x[2] = rfm_rng_uniform(&r);
        x[3] = (double)rfm_rng_below(&r, 2);
        x[4] = (double)rfm_rng_below(&r, 6);
        arm[i] = (int)rfm_rng_below(&r, 2);
        /* which 0: effect 0.12 when x2 > 0.6; 1: when the category x3 is 0;
         * 2: when x4 <= 1 (a small integer feature) */
        int on = which == 0 ? x[2] > 0.6 : which == 1 ? x[3] == 0 : x[4] <= 1;
        double p = 0.3 + 0.25 * tanh(x[1]) + (arm[i] ? 0.12 * on : 0);
        y[i] = rfm_rng_uniform(&r) < p ? 1.0 : 0.0;
    }
}

static void test_rule_search_planted(void **state)
{
    (void)state;
    size_t n = 20000;
    double *X = malloc(n * D * sizeof *X), *y = malloc(n * sizeof *y), *sc = malloc(n * sizeof *sc);
    int *arm = malloc(n * sizeof *arm);
    char err[RFM_ERRLEN];
    const int want_feat[3] = {2, 3, 4};
    const double want_thr[3] = {0.6, 0.5, 1.5}, tol[3] = {0.05, 0.5, 0.5};
    const int gt_first[3] = {1, 0, 0};
    for (int which = 0; which < 3; which++) {
        planted(n, 60 + (uint64_t)which, which, X, arm, y);
        uplift_rule r;
        assert_int_equal(uplift_rule_search(X, n, D, arm, 1, y, 0.05, &r, err, sizeof err), RFM_OK);
        printf("    planted %d: x[%d] <= %g: %.4f, else %.4f (training Qini %.1f)\n", which,
               r.feature, r.threshold, r.uplift_le, r.uplift_gt, r.train_qini);
        assert_int_equal(r.feature, want_feat[which]);
        assert_true(fabs(r.threshold - want_thr[which]) < tol[which]);
        assert_int_equal(r.uplift_gt > r.uplift_le, gt_first[which]);
        /* effects near 0.12 and 0 (se about 0.01 with these sizes) */
        double hi = fmax(r.uplift_gt, r.uplift_le), lo = fmin(r.uplift_gt, r.uplift_le);
        assert_true(fabs(hi - 0.12) < 0.04 && fabs(lo) < 0.04);
        /* The search's Qini is the evaluation's of the rule's scores. */
        for (size_t i = 0; i < n; i++)
            sc[i] = X[i * D + r.feature] <= r.threshold ? r.uplift_le : r.uplift_gt;
        uplift_eval e;
        assert_int_equal(uplift_evaluate(y, arm, sc, n, 1, &e, err, sizeof err), RFM_OK);
        report_maxdiff("rule search Qini vs uplift_evaluate (relative)",
                       fabs(r.train_qini - e.qini_coef) / fabs(e.qini_coef), 1e-9);
        assert_true(fabs(r.train_qini - e.qini_coef) <= 1e-9 * fabs(e.qini_coef));
    }
    /* As a model: uplift_fit with learner rule predicts the rule, and JSON
     * keeps it. */
    planted(n, 60, 0, X, arm, y);
    uplift_params p;
    small_params(&p, UPLIFT_RULE);
    uplift_model *m = NULL, *c = NULL;
    assert_int_equal(uplift_fit(X, n, D, arm, 1, y, &p, &m, err, sizeof err), RFM_OK);
    uplift_rule r;
    assert_int_equal(uplift_get_rule(m, 1, &r), RFM_OK);
    assert_int_equal(uplift_get_rule(m, 2, &r), RFM_EINVAL);
    assert_int_equal(uplift_get_rule(m, 1, &r), RFM_OK);
    json_t *j = NULL;
    assert_int_equal(uplift_to_json(m, &j, err, sizeof err), RFM_OK);
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_t *back = json_loads(s, 0, NULL);
    assert_int_equal(uplift_from_json(back, &c, err, sizeof err), RFM_OK);
    for (size_t i = 0; i < 200; i++) {
        double ua, uc, ca, cc;
        uplift_predict(m, X + i * D, &ua, &ca, err, sizeof err);
        uplift_predict(c, X + i * D, &uc, &cc, err, sizeof err);
        assert_true(ua == (X[i * D + r.feature] <= r.threshold ? r.uplift_le : r.uplift_gt));
        assert_true(ua == uc && ca == cc);
    }
    /* A rule naming a feature the model does not have is refused. */
    uplift_model *bad = NULL;
    json_object_set_new(json_array_get(json_object_get(back, "arms"), 0), "feature",
                        json_integer(D));
    assert_int_equal(uplift_from_json(back, &bad, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, "arms[0]"));
    /* No split leaves half the rows on each side of a 0/1 feature that is 1 in
     * a tenth of them. */
    for (size_t i = 0; i < n; i++)
        for (int f = 0; f < D; f++)
            X[i * D + f] = f == 0 ? (i % 10 == 0) : 0;
    assert_int_equal(uplift_rule_search(X, n, D, arm, 1, y, 0.5, &r, err, sizeof err), RFM_EDATA);
    json_decref(back);
    json_decref(j);
    free(s);
    uplift_free(m);
    uplift_free(c);
    free(X), free(y), free(sc), free(arm);
}

/* ---- bootstrap intervals ---- */

/* Coverage: a fixed score (x0, which ranks by the true step effect) has a
 * population normalised Qini, estimated here on 400,000 customers. On 100
 * independent samples of 3,000 customers, the 90 % bootstrap interval holds it
 * about 90 times (binomial sd 3); the test asks for 75..99. A random score's
 * population Qini is 0, and its intervals hold 0 as often. */
static void test_bootstrap_covers(void **state)
{
    (void)state;
    size_t big = 400000, n = 3000;
    double *X = malloc(big * D * sizeof *X), *y = malloc(big * sizeof *y);
    double *sc = malloc(big * sizeof *sc);
    int *arm = malloc(big * sizeof *arm);
    char err[RFM_ERRLEN];
    simulate(big, 90, 0, X, arm, y);
    for (size_t i = 0; i < big; i++)
        sc[i] = X[i * D];
    uplift_eval e;
    assert_int_equal(uplift_evaluate(y, arm, sc, big, 1, &e, err, sizeof err), RFM_OK);
    double truth = e.qini_norm;
    int covered = 0, covered0 = 0, reps = 100;
    double sd_mean = 0, s1 = 0, s2 = 0;
    rfm_rng r;
    rfm_rng_seed(&r, 91);
    for (int rep = 0; rep < reps; rep++) {
        simulate(n, 1000 + (uint64_t)rep, 0, X, arm, y);
        for (size_t i = 0; i < n; i++)
            sc[i] = X[i * D];
        assert_int_equal(uplift_evaluate(y, arm, sc, n, 1, &e, err, sizeof err), RFM_OK);
        assert_int_equal(
            uplift_bootstrap(y, arm, sc, n, 1, 200, 7 + (uint64_t)rep, &e, err, sizeof err),
            RFM_OK);
        assert_int_equal(e.n_boot, 200);
        covered += e.qini_lo <= truth && truth <= e.qini_hi;
        sd_mean += e.qini_sd / reps;
        s1 += e.qini_norm / reps;
        s2 += e.qini_norm * e.qini_norm / reps;
        for (size_t i = 0; i < n; i++)
            sc[i] = rfm_rng_uniform(&r);
        assert_int_equal(uplift_evaluate(y, arm, sc, n, 1, &e, err, sizeof err), RFM_OK);
        assert_int_equal(
            uplift_bootstrap(y, arm, sc, n, 1, 200, 7 + (uint64_t)rep, &e, err, sizeof err),
            RFM_OK);
        covered0 += e.qini_lo <= 0 && 0 <= e.qini_hi;
    }
    double sd_true = sqrt(s2 - s1 * s1);
    printf("    population qini_norm %.4f; 90%% intervals held it %d / %d times (random score: 0 "
           "held %d / %d); bootstrap sd %.4f vs sd over samples %.4f\n",
           truth, covered, reps, covered0, reps, sd_mean, sd_true);
    assert_true(covered >= 75 && covered <= 99);
    assert_true(covered0 >= 75 && covered0 <= 99);
    assert_true(sd_mean > 0.6 * sd_true && sd_mean < 1.6 * sd_true);
    /* The band of random orderings: centred on 0 (its mean over 200 within 3
     * standard errors), holding 0, as wide as a random score's bootstrap. */
    uplift_eval band;
    assert_int_equal(uplift_random_band(y, arm, n, 1, 200, 5, &band, err, sizeof err), RFM_OK);
    printf("    random band: mean %.4f, 90%% [%.4f, %.4f], sd %.4f\n", band.qini_norm, band.qini_lo,
           band.qini_hi, band.qini_sd);
    assert_int_equal(band.n_boot, 200);
    assert_true(fabs(band.qini_norm) < 3 * band.qini_sd / sqrt(200.0));
    assert_true(band.qini_lo < 0 && 0 < band.qini_hi);
    assert_true(band.qini_sd > 0.6 * sd_true && band.qini_sd < 1.6 * sd_true);
    /* Seeded: the same seed gives the same interval. */
    uplift_eval a, b;
    assert_int_equal(uplift_bootstrap(y, arm, sc, n, 1, 50, 3, &a, err, sizeof err), RFM_OK);
    assert_int_equal(uplift_bootstrap(y, arm, sc, n, 1, 50, 3, &b, err, sizeof err), RFM_OK);
    assert_true(a.qini_lo == b.qini_lo && a.qini_hi == b.qini_hi);
    assert_int_equal(uplift_bootstrap(y, arm, sc, n, 1, 0, 3, &a, err, sizeof err), RFM_EINVAL);
    free(X), free(y), free(sc), free(arm);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovers_binary_step),
        cmocka_unit_test(test_recovers_continuous_linear),
        cmocka_unit_test(test_eval_hand_computed),
        cmocka_unit_test(test_eval_vs_brute_force),
        cmocka_unit_test(test_eval_model_qini_positive),
        cmocka_unit_test(test_determinism_and_json),
        cmocka_unit_test(test_holdout),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_best_arm),
        cmocka_unit_test(test_holdout_eval_reference),
        cmocka_unit_test(test_choose_learner),
        cmocka_unit_test(test_recovers_new_learners),
        cmocka_unit_test(test_rule_search_planted),
        cmocka_unit_test(test_bootstrap_covers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
