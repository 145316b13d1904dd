/* test_bgnbd.c - BG/NBD against independent references: simulation from
 * known parameters (recovery, P(alive), conditional and unconditional
 * expectations), finite-difference gradients, the compressed likelihood
 * against the plain sum, and edge inputs. */
#include "testutil.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_sf_psi.h>
#include <stdlib.h>
#include <string.h>

#include "bgnbd.h"
#include "mle.h"
#include "rng.h"
#include "sim_clv.h"

/* Known truth, daily scale: ~3.3 purchases a year, mean dropout 0.24. */
static const double R = 0.25, ALPHA = 28, A = 0.8, B = 2.5;

static double weak_objective(const double *u, double *g, double *h, void *rows)
{
    return bgnbd_objective(u, g, h, rows, 30, 0);
}

static void test_gradient_vs_finite_differences(void **state)
{
    (void)state;
    bgnbd_row rows[5] = {
        {0, 0, 200, 3}, {1, 40, 300, 2}, {4, 250, 365, 1}, {12, 700, 720, 1}, {2, 5, 10, 4}};
    double worst = 0;
    rfm_rng g;
    rfm_rng_seed(&g, 3);
    for (int trial = 0; trial < 20; trial++) {
        double u[4], gr[4], up[4], um[4], tmp[4];
        for (int k = 0; k < 4; k++)
            u[k] = -2 + 5 * rfm_rng_uniform(&g);
        double pen = trial % 2 ? 0.1 : 0;
        bgnbd_objective(u, gr, NULL, rows, 5, pen);
        for (int k = 0; k < 4; k++) {
            double h = 1e-6;
            memcpy(up, u, sizeof u);
            memcpy(um, u, sizeof u);
            up[k] += h;
            um[k] -= h;
            double fd = (bgnbd_objective(up, tmp, NULL, rows, 5, pen) -
                         bgnbd_objective(um, tmp, NULL, rows, 5, pen)) /
                        (2 * h);
            double rel = fabs(fd - gr[k]) / fmax(1e-3, fabs(fd));
            worst = fmax(worst, rel);
        }
    }
    report_maxdiff("gradient vs central differences (relative)", worst, 1e-5);
}

/* The Hessian against central differences of the analytic gradient, at
 * random points, with and without the penalty; the value and gradient the
 * same bits whether the Hessian is asked for or not. */
static void test_hessian_vs_finite_differences(void **state)
{
    (void)state;
    bgnbd_row rows[6] = {{0, 0, 200, 3},   {1, 40, 300, 2},   {1, 0, 30, 1},
                         {4, 250, 365, 1}, {12, 700, 720, 1}, {2, 5, 10, 4}};
    double worst = 0;
    int same = 1;
    rfm_rng g;
    rfm_rng_seed(&g, 4);
    for (int trial = 0; trial < 20; trial++) {
        double u[4], gr[4], g2[4], h[16], up[4], um[4], gp[4], gm[4];
        for (int k = 0; k < 4; k++)
            u[k] = -2 + 5 * rfm_rng_uniform(&g);
        double pen = trial % 2 ? 0.1 : 0;
        double f = bgnbd_objective(u, gr, h, rows, 6, pen);
        double f2 = bgnbd_objective(u, g2, NULL, rows, 6, pen);
        same &= memcmp(&f, &f2, sizeof f) == 0 && memcmp(gr, g2, sizeof gr) == 0;
        for (int k = 0; k < 4; k++) {
            double step = 1e-4; /* truncation ~1e-8 here, rounding ~1e-12 */
            memcpy(up, u, sizeof u);
            memcpy(um, u, sizeof u);
            up[k] += step;
            um[k] -= step;
            bgnbd_objective(up, gp, NULL, rows, 6, pen);
            bgnbd_objective(um, gm, NULL, rows, 6, pen);
            for (int j = 0; j < 4; j++) {
                double fd = (gp[j] - gm[j]) / (2 * step);
                worst = fmax(worst, fabs(fd - h[j * 4 + k]) / fmax(1e-3, fabs(fd)));
            }
        }
    }
    report_maxdiff("Hessian vs central differences of the gradient (relative)", worst, 1e-5);
    assert_true(same);
}

/* bgnbd_h_many_d: the values bgnbd_h_many's, bit for bit, and the
 * derivatives in the log-parameters against central differences of
 * bgnbd_h_many (step 1e-6: truncation and rounding each below 1e-7 here), relative to the
 * larger of the derivative and the value, over both forms of the 2F1
 * (ages from a day to two years, up to 30 repeat purchases, a from 0.0025
 * to 1), thirteen monthly periods each. */
static bgnbd_params moved(bgnbd_params p, int k, double d)
{
    double u[4] = {log(p.r), log(p.alpha), log(p.a), log(p.b)};
    u[k] += d;
    return (bgnbd_params){exp(u[0]), exp(u[1]), exp(u[2]), exp(u[3])};
}

static void test_h_derivatives(void **state)
{
    (void)state;
    rfm_rng g;
    rfm_rng_seed(&g, 12);
    double worst = 0;
    long same = 0, total = 0, with = 0;
    for (int trial = 0; trial < 1500; trial++) {
        bgnbd_params p = {exp(-2 + 3 * rfm_rng_uniform(&g)), exp(1 + 4 * rfm_rng_uniform(&g)),
                          exp(-6 + 6 * rfm_rng_uniform(&g)), exp(-1 + 4 * rfm_rng_uniform(&g))};
        double x = floor(30 * rfm_rng_uniform(&g) * rfm_rng_uniform(&g));
        double T = 1 + 700 * rfm_rng_uniform(&g), t[13], h[13], h2[13], dh[4 * 13];
        unsigned char have[13];
        for (int k = 0; k < 13; k++)
            t[k] = fmin(30.0 * (k + 1), 365);
        bgnbd_h_many(&p, t, 13, x, T, h);
        bgnbd_h_many_d(&p, t, 13, x, T, h2, dh, have);
        for (int j = 0; j < 13; j++) {
            total++;
            same += memcmp(&h[j], &h2[j], sizeof h[j]) == 0;
            if (!have[j])
                continue;
            with++;
            for (int k = 0; k < 4; k++) {
                bgnbd_params up = moved(p, k, 1e-6), down = moved(p, k, -1e-6);
                double a, b;
                bgnbd_h_many(&up, &t[j], 1, x, T, &a);
                bgnbd_h_many(&down, &t[j], 1, x, T, &b);
                double fd = (a - b) / 2e-6;
                worst = fmax(worst, fabs(fd - dh[4 * j + k]) / fmax(fabs(fd), fabs(h[j])));
            }
        }
    }
    printf("    %ld of %ld values the same bits, %ld with derivatives\n", same, total, with);
    report_maxdiff("derivatives vs central differences (relative)", worst, 1e-5);
    assert_int_equal(same, total);
    assert_true(with > total * 9 / 10);
}

static void test_compressed_equals_plain(void **state)
{
    (void)state;
    double x[6] = {0, 0, 3, 3, 1, 0}, tx[6] = {0, 0, 50, 50, 20, 0},
           T[6] = {90, 90, 100, 100, 60, 90};
    bgnbd_row *rows;
    size_t n;
    char err[RFM_ERRLEN];
    assert_int_equal(bgnbd_compress(x, tx, T, 6, &rows, &n, err, sizeof err), RFM_OK);
    assert_int_equal(n, 3);
    bgnbd_params p = {0.5, 20, 0.7, 3};
    double plain = 0, packed = 0, u[4] = {log(0.5), log(20), log(0.7), log(3)}, g[4];
    for (int i = 0; i < 6; i++)
        plain += bgnbd_loglik(&p, x[i], tx[i], T[i]);
    packed = -6 * bgnbd_objective(u, g, NULL, rows, n, 0);
    report_maxdiff("compressed vs plain log-likelihood", fabs(plain - packed), 1e-9);
    free(rows);
}

static void test_recovers_simulated_parameters(void **state)
{
    (void)state;
    enum { N = 6000 };
    static double x[N], tx[N], T[N];
    rfm_rng g;
    rfm_rng_seed(&g, 20240601);
    for (int i = 0; i < N; i++) {
        double obs = 180 + 540 * rfm_rng_uniform(&g);
        sim_customer c = sim_one(&g, R, ALPHA, A, B, 6, 4, 15, obs, 0);
        x[i] = c.x, tx[i] = c.t_x, T[i] = c.T;
    }
    bgnbd_row *rows;
    size_t n;
    char err[RFM_ERRLEN];
    assert_int_equal(bgnbd_compress(x, tx, T, N, &rows, &n, err, sizeof err), RFM_OK);
    bgnbd_fit_result f;
    if (bgnbd_fit(rows, n, 0, &f, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    const double truth[4] = {R, ALPHA, A, B}, est[4] = {f.p.r, f.p.alpha, f.p.a, f.p.b};
    const char *names[4] = {"r", "alpha", "a", "b"};
    for (int k = 0; k < 4; k++) {
        double z = (est[k] - truth[k]) / f.se[k];
        printf("    %-5s true %.4g  fit %.4g  se %.3g  z %+.2f\n", names[k], truth[k], est[k],
               f.se[k], z);
        assert_true(fabs(z) < 3.5);
        assert_true(f.lo[k] < est[k] && est[k] < f.hi[k]);
    }
    assert_true(f.converged);
    /* lifetimes' start alone reaches the same optimum here (well inside
     * the fit's standard errors), and a count of starts out of range is
     * refused */
    bgnbd_fit_result f1;
    if (bgnbd_fit_starts(rows, n, 0, 1, &f1, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    const double one[4] = {f1.p.r, f1.p.alpha, f1.p.a, f1.p.b};
    for (int k = 0; k < 4; k++)
        assert_true(fabs(one[k] - est[k]) < 1e-3 * f.se[k]);
    assert_true(f1.loglik >= f.loglik - 1e-6 * fabs(f.loglik));
    assert_int_equal(bgnbd_fit_starts(rows, n, 0, 0, &f1, err, sizeof err), RFM_EINVAL);
    assert_int_equal(bgnbd_fit_starts(rows, n, 0, BGNBD_STARTS + 1, &f1, err, sizeof err),
                     RFM_EINVAL);
    free(rows);
}

/* Predictions against the simulated futures of the same customers: for
 * any selection made on the observed history, the mean predicted value
 * must match the mean simulated outcome. */
static void test_predictions_vs_simulation(void **state)
{
    (void)state;
    enum { N = 200000 };
    const double Tobs = 365, H = 180;
    bgnbd_params p = {R, ALPHA, A, B};
    rfm_rng g;
    rfm_rng_seed(&g, 99);
    double sum_alive[3] = {0}, sum_pa[3] = {0}, sum_fut[3] = {0}, sum_pred[3] = {0},
           sq_fut[3] = {0}, cnt[3] = {0};
    for (int i = 0; i < N; i++) {
        sim_customer c = sim_one(&g, R, ALPHA, A, B, 6, 4, 15, Tobs, H);
        int grp = c.x == 0 ? 0 : c.x <= 3 ? 1 : 2;
        cnt[grp]++;
        sum_alive[grp] += c.alive;
        sum_pa[grp] += bgnbd_p_alive(&p, c.x, c.t_x, c.T);
        sum_fut[grp] += c.future;
        sq_fut[grp] += c.future * c.future;
        sum_pred[grp] += bgnbd_expected(&p, H, c.x, c.t_x, c.T);
    }
    const char *names[3] = {"x = 0", "x 1-3", "x > 3"};
    for (int k = 0; k < 3; k++) {
        double n = cnt[k], sd = sqrt(sq_fut[k] / n - pow(sum_fut[k] / n, 2)) / sqrt(n);
        double sda = sqrt(sum_alive[k] / n * (1 - sum_alive[k] / n) / n);
        printf("    %s (%6.0f): alive %.4f vs P(alive) %.4f; future %.4f vs E %.4f (se %.4f)\n",
               names[k], n, sum_alive[k] / n, sum_pa[k] / n, sum_fut[k] / n, sum_pred[k] / n, sd);
        assert_true(fabs(sum_alive[k] / n - sum_pa[k] / n) < 4 * sda + 1e-9);
        assert_true(fabs(sum_fut[k] / n - sum_pred[k] / n) < 4 * sd);
    }
    /* Unconditional E[X(t)] for a new customer against the same story. */
    double tot = 0, sq = 0;
    for (int i = 0; i < N; i++) {
        sim_customer c = sim_one(&g, R, ALPHA, A, B, 6, 4, 15, 200, 0);
        tot += c.x;
        sq += c.x * c.x;
    }
    double mean = tot / N, se = sqrt(sq / N - mean * mean) / sqrt(N);
    printf("    E[X(200)] new customer: simulated %.4f, formula %.4f (se %.4f)\n", mean,
           bgnbd_expected_new(&p, 200), se);
    assert_true(fabs(mean - bgnbd_expected_new(&p, 200)) < 4 * se);
}

static void test_hypergeometric_and_edges(void **state)
{
    (void)state;
    /* 2F1(1,1;2;z) = -log(1-z)/z, also for negative z (Pfaff branch). */
    double worst = 0;
    for (double z = -30; z < 0.999; z += 0.0137) {
        if (fabs(z) < 1e-9)
            continue;
        worst =
            fmax(worst, fabs(bgnbd_hyp2f1(1, 1, 2, z) - (-log1p(-z) / z)) / fabs(log1p(-z) / z));
    }
    report_maxdiff("2F1(1,1;2;z) vs -log(1-z)/z (relative)", worst, 1e-10);
    bgnbd_params p = {0.8, 69, 0.0034, 6.7};
    const double cases[][3] = {{0, 0, 0},           {0, 0, 3650},       {1, 1, 1},
                               {500, 3649, 3650},   {2000, 3000, 3650}, {1, 1, 3650},
                               {100000, 3650, 3650}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double x = cases[i][0], tx = cases[i][1], T = cases[i][2];
        assert_null(bgnbd_check(x, tx, T));
        for (double t = 1; t <= 3650; t *= 3) {
            double e = bgnbd_expected(&p, t, x, tx, T), pa = bgnbd_p_alive(&p, x, tx, T);
            if (!isfinite(e) || e < 0 || !(pa >= 0 && pa <= 1))
                fail_msg("x=%g t_x=%g T=%g t=%g: E=%g P(alive)=%g", x, tx, T, t, e, pa);
        }
    }
    assert_non_null(bgnbd_check(2, 10, 5));  /* t_x > T */
    assert_non_null(bgnbd_check(0, 10, 50)); /* t_x > 0 with no repeat */
    assert_non_null(bgnbd_check(-1, 0, 5));
    assert_non_null(bgnbd_check(1.5, 1, 5));
    assert_null(bgnbd_check(2, 0, 5)); /* same-instant repeats: lifetimes accepts them */
    /* Fits that cannot work say why instead of returning nonsense. */
    bgnbd_row one = {3, 20, 100, 1}, none[2] = {{0, 0, 50, 10}, {0, 0, 80, 5}};
    bgnbd_fit_result f;
    char err[RFM_ERRLEN];
    assert_int_equal(bgnbd_fit(&one, 1, 0, &f, err, sizeof err), RFM_EDATA);
    assert_int_equal(bgnbd_fit(none, 2, 0, &f, err, sizeof err), RFM_EDATA);
    assert_non_null(strstr(err, "repeat"));
    /* All customers identical: either a clear failure or a finite fit. */
    bgnbd_row same = {2, 100, 300, 500};
    rfm_status st = bgnbd_fit(&same, 1, 0, &f, err, sizeof err);
    printf("    identical customers: status %d (%s)\n", st, st ? err : "fitted");
    assert_true(st == RFM_OK || st == RFM_ENOCONVERGE || st == RFM_EDATA);
    if (st == RFM_OK)
        assert_true(isfinite(f.p.r + f.p.alpha + f.p.a + f.p.b));
    /* With a penalizer the same data fit. */
    assert_int_equal(bgnbd_fit(&same, 1, 0.1, &f, err, sizeof err), RFM_OK);

    /* Thirty made-up customers (test_train's fixture) leave a running off
     * towards 0: depending on the CPU's last bits the optimiser stops where
     * the Hessian is not positive definite or at a ~ 1e-5 with a standard
     * error of log a in the hundreds; both sides of the identifiability line
     * are far away, so every machine refuses the fit and says what to try. */
    static const bgnbd_row weak[30] = {
        {0, 0, 357, 1},   {4, 126, 144, 1}, {8, 253, 296, 1}, {0, 0, 81, 1},    {4, 127, 233, 1},
        {8, 333, 351, 1}, {0, 0, 170, 1},   {4, 124, 319, 1}, {8, 333, 345, 1}, {0, 0, 258, 1},
        {4, 333, 345, 1}, {8, 333, 339, 1}, {0, 0, 345, 1},   {4, 126, 132, 1}, {8, 253, 284, 1},
        {0, 0, 69, 1},    {4, 127, 221, 1}, {8, 333, 339, 1}, {0, 0, 158, 1},   {4, 124, 307, 1},
        {8, 333, 333, 1}, {0, 0, 246, 1},   {4, 333, 333, 1}, {8, 333, 355, 1}, {0, 0, 333, 1},
        {4, 98, 120, 1},  {8, 225, 272, 1}, {0, 0, 57, 1},    {4, 127, 237, 1}, {8, 333, 355, 1}};
    st = bgnbd_fit(weak, 30, 0, &f, err, sizeof err);
    printf("    30 made-up customers: %s\n", st ? err : "fitted");
    assert_int_equal(st, RFM_ENOCONVERGE);
    assert_non_null(strstr(err, "try a penalizer"));
    /* The margin, shown by the places other CPUs reach: from random starts
     * the optimiser stops at a from 1e-6 to 1e-3; wherever it calls that
     * converged, the standard error of log a is over ten times the line. */
    rfm_rng g;
    rfm_rng_seed(&g, 1);
    int converged = 0;
    double least = INFINITY;
    for (int t = 0; t < 12; t++) {
        double s[4], cov[16], se[4], lo[4], hi[4];
        for (int k = 0; k < 4; k++)
            s[k] = -3 + 6 * rfm_rng_uniform(&g);
        mle_result m;
        if (mle_fit(weak_objective, (void *)weak, 4, s, 1, 1e-6, 500, &m, err, sizeof err) !=
            RFM_OK)
            continue;
        converged++;
        mle_standard_errors(&m, 4, 30, cov, se, lo, hi);
        assert_true(mle_unidentified(cov, 4) >= 0);
        least = fmin(least, sqrt(cov[10]));
    }
    printf("    %d of 12 starts converged; least se(log a) there %.3g (line %g)\n", converged,
           least, MLE_SE_LOG_MAX);
    assert_true(converged == 0 || least > 10 * MLE_SE_LOG_MAX);
}

/* Found by fuzz_request: for a customer with very many repeat purchases the
 * far-horizon branch multiplied a (1-z)^(r+x) that underflows by a 2F1 that
 * overflows, so the expected purchases fell to 0 (and /predict_cltv gave a
 * negative cltv). References: mpmath 1.3 at 50 digits, from Euler's
 * transformation of the defining 2F1 (the identity checked there against
 * the defining series at x = 2000 to 1e-48; the defining series itself
 * overflows mpmath's floats at x = 1e6). */
/* h by GSL's 2F1 alone, in the same two forms (what bgnbd_h computed before
 * the series of bgnbd_h_many): an independent evaluation to compare with. */
static double h_by_gsl(const bgnbd_params *p, double t, double x, double T)
{
    double w = -t / (p->alpha + T), C = p->a + p->b + x - 1;
    if (w > -0.5)
        return bgnbd_hyp2f1(p->r + x, p->a - 1, C, w);
    double z = t / (p->alpha + T + t);
    return exp((p->a - 1) * log1p(-z)) * bgnbd_hyp2f1(p->a + p->b - 1 - p->r, p->a - 1, C, z);
}

/* The same 2F1 by its series in long double, summed to the end (2F1 at |w|
 * < 0.5 for form 0, at the plain argument z < 1 for form 1 converges). */
static double h_by_series(const bgnbd_params *p, double t, double x, double T)
{
    double w = -t / (p->alpha + T), C = p->a + p->b + x - 1;
    int euler = !(w > -0.5);
    long double ua = euler ? p->a + p->b - 1 - p->r : p->r + x, ub = p->a - 1;
    long double z = euler ? t / (p->alpha + T + t) : w, term = 1, sum = 1;
    for (long k = 0; k < 200000; k++) {
        term *= (ua + k) * (ub + k) / ((C + k) * (k + 1)) * z;
        sum += term;
        if (k > 50 && fabsl(term) < 1e-22L * fabsl(sum))
            break;
    }
    return euler ? (double)(powl(1 - z, ub) * sum) : (double)sum;
}

/* bgnbd_h_many (every period of a horizon in one pass over the series)
 * against GSL point by point and a long-double series, over parameters as
 * fitted on transaction data and far from them; and each point the same,
 * bit for bit, alone (bgnbd_h) or among others. */
static void test_h_many_against_references(void **state)
{
    (void)state;
    const bgnbd_params ps[] = {{0.8265, 68.91, 0.003437, 6.745},
                               {0.24, 4.41, 0.79, 2.43},
                               {2.5, 300, 1.5, 0.7},
                               {0.05, 0.5, 0.2, 20},
                               {12, 40, 3.5, 1.2},
                               {0.8, 69, 1.0, 6.7}};
    const double xs[] = {0, 1, 2, 5, 17, 60, 250, 2000}, Ts[] = {0, 3, 30, 180, 373, 1500};
    double worst_gsl = 0, worst_ser = 0;
    long n = 0, alone = 0;
    for (size_t pi = 0; pi < sizeof ps / sizeof *ps; pi++)
        for (size_t xi = 0; xi < sizeof xs / sizeof *xs; xi++)
            for (size_t ti = 0; ti < sizeof Ts / sizeof *Ts; ti++) {
                double t[300], h[300];
                size_t nt = 0;
                for (double u = 0; u <= 3650; u += u < 400 ? 13 : 97)
                    t[nt++] = u;
                t[nt++] = 1e5; /* far past any argument the series takes */
                bgnbd_h_many(&ps[pi], t, nt, xs[xi], Ts[ti], h);
                for (size_t j = 0; j < nt; j++) {
                    double g = h_by_gsl(&ps[pi], t[j], xs[xi], Ts[ti]);
                    double r = h_by_series(&ps[pi], t[j], xs[xi], Ts[ti]);
                    double one = bgnbd_h(&ps[pi], t[j], xs[xi], Ts[ti]);
                    if (memcmp(&one, &h[j], sizeof one) != 0)
                        fail_msg("p %zu x %g T %g t %g: %.17g alone, %.17g among others", pi,
                                 xs[xi], Ts[ti], t[j], one, h[j]);
                    alone++;
                    assert_true(isfinite(h[j]));
                    double w = -t[j] / (ps[pi].alpha + Ts[ti]);
                    double arg = w > -0.5 ? w : t[j] / (ps[pi].alpha + Ts[ti] + t[j]);
                    if (fabs(arg) > 0.9) { /* beyond the series: GSL's, as before */
                        assert_memory_equal(&g, &h[j], sizeof g);
                        continue;
                    }
                    if (isfinite(g) && fabs(g) > 1e-300)
                        worst_gsl = fmax(worst_gsl, fabs(h[j] - g) / fabs(g));
                    assert_true(isfinite(r) && fabs(r) > 1e-300);
                    worst_ser = fmax(worst_ser, fabs(h[j] - r) / fabs(r));
                    n++;
                }
            }
    printf("    %ld points by the series, %ld each the same alone and among others\n", n, alone);
    printf("    GSL's 2F1 point by point differs by up to %.3g (relative)\n", worst_gsl);
    report_maxdiff("bgnbd_h_many vs a long-double series (relative)", worst_ser, 1e-12);
    /* Where GSL's 2F1 is wrong: c - a - b = r - a + x + 1 a whole number (here
     * 2), at z = 0.51 in the Euler form. The value is scipy's hyp2f1 (what
     * lifetimes calls), in both forms: 0.5180440096981. */
    const bgnbd_params q = {2.5, 300, 1.5, 0.7};
    double hq = bgnbd_h(&q, 312, 0, 0), gq = h_by_gsl(&q, 312, 0, 0);
    printf("    r - a + x whole: %.15g (scipy 0.5180440096981; GSL's 2F1 gave %.15g)\n", hq, gq);
    assert_true(fabs(hq - 0.5180440096981) < 1e-12);
}

static void test_expected_for_huge_frequency(void **state)
{
    (void)state;
    bgnbd_params p = {0.8, 69, 0.0034, 6.7};
    const double ref[][5] = {{36500, 1e6, 36500, 36500, 996806.08055336251},
                             {3650, 1e6, 36500, 36500, 99794.997968237416},
                             {36500, 0, 0, 0, 417.76871175696676}};
    double worst = 0;
    for (size_t i = 0; i < sizeof ref / sizeof *ref; i++) {
        double e = bgnbd_expected(&p, ref[i][0], ref[i][1], ref[i][2], ref[i][3]);
        worst = fmax(worst, fabs(e - ref[i][4]) / ref[i][4]);
    }
    report_maxdiff("E[X(t)] vs mpmath (relative)", worst, 1e-12);
    /* Cumulative: never decreasing in t, over the API's whole range. */
    const double xs[] = {1, 1000, 1e5, 1e6};
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) {
        double prev = 0;
        for (double t = 30; t <= 36500; t += 30) {
            double e = bgnbd_expected(&p, t, xs[i], 36500, 36500);
            if (!(e >= prev))
                fail_msg("x=%g: E[X(%g)] = %.17g < E[X(%g)] = %.17g", xs[i], t, e, t - 30, prev);
            prev = e;
        }
    }
}

/* bgnbd_objective as it was before its table of log(alpha + t) for whole
 * days: the reference the table must equal to the bit. */
static double objective_before(const double u[4], double grad[4], const bgnbd_row *rows, size_t n,
                               double penalizer)
{
    double r = exp(u[0]), al = exp(u[1]), a = exp(u[2]), b = exp(u[3]);
    double ll = 0, W = 0, g[4] = {0, 0, 0, 0};
    double psi_r = gsl_sf_psi(r), psi_ab = gsl_sf_psi(a + b), psi_b = gsl_sf_psi(b);
    double lg_r = lgamma(r), lg_ab = lgamma(a + b), lg_b = lgamma(b), log_al = log(al);
    double log_a = log(a);
    /* Rows come sorted by x (bgnbd_compress), and the special functions
     * depend on x only: evaluate them once per distinct x. */
    double cx = -1, a12 = 0, psi_rx = 0, psi_bx = 0, psi_abx = 0, log_bx1 = 0, maxT = 0;
    for (size_t i = 0; i < n; i++) {
        double x = rows[i].x, tx = rows[i].t_x, T = rows[i].T, w = rows[i].w;
        maxT = T > maxT ? T : maxT;
        if (x != cx) {
            cx = x;
            a12 = lgamma(r + x) - lg_r + r * log_al + lg_ab + lgamma(b + x) - lg_b -
                  lgamma(a + b + x);
            psi_rx = gsl_sf_psi(r + x);
            psi_bx = gsl_sf_psi(b + x);
            psi_abx = gsl_sf_psi(a + b + x);
            log_bx1 = x > 0 ? log(b + x - 1) : 0;
        }
        double l_alT = log(al + T), l_altx = x > 0 ? log(al + tx) : 0;
        double a3 = -(r + x) * l_alT;
        double a4 = x > 0 ? log_a - log_bx1 - (r + x) * l_altx : -INFINITY;
        double m = a3 > a4 ? a3 : a4;
        double e3 = exp(a3 - m), e4 = x > 0 ? exp(a4 - m) : 0.0, s = e3 + e4;
        ll += w * (a12 + m + log(s));
        W += w;
        double w3 = e3 / s, w4 = e4 / s;
        /* d/d(natural parameter) of this customer's log-likelihood */
        g[0] += w * (psi_rx - psi_r + log_al - w3 * l_alT - w4 * l_altx);
        g[1] += w * (r / al - w3 * (r + x) / (al + T) - (x > 0 ? w4 * (r + x) / (al + tx) : 0));
        g[2] += w * (psi_ab - psi_abx + w4 / a);
        g[3] += w * (psi_ab + psi_bx - psi_b - psi_abx - (x > 0 ? w4 / (b + x - 1) : 0));
    }
    /* lifetimes fits in time scaled by 1 / max(T), so its penalty sees
     * alpha / max(T); penalise the same quantity to match its estimates. */
    if (!(maxT > 0))
        maxT = 1;
    const double nat[4] = {r, al, a, b}, scale[4] = {1, 1 / maxT, 1, 1};
    double pen = 0;
    for (int k = 0; k < 4; k++) {
        double th = nat[k] * scale[k];
        pen += th * th;
        /* chain rule to log-parameters: d/du = theta d/dtheta */
        grad[k] = nat[k] * (-g[k] / W) + 2 * penalizer * th * th;
    }
    return -ll / W + penalizer * pen;
}

/* Whole days below the table's end (most rows), at and past it, and
 * fractional ones (a customer summary's): value and gradient bit for bit
 * at several points. */
static void test_log_table_equals_direct(void **state)
{
    (void)state;
    enum { N = 400 };
    bgnbd_row rows[N];
    rfm_rng g;
    rfm_rng_seed(&g, 5);
    for (size_t i = 0; i < N; i++) {
        double T = i % 7 == 0   ? 1000.0 + floor(60 * rfm_rng_uniform(&g))
                   : i % 5 == 0 ? 400 * rfm_rng_uniform(&g)
                                : floor(400 * rfm_rng_uniform(&g));
        double x = floor(8 * rfm_rng_uniform(&g));
        double tx =
            x > 0 ? (i % 3 == 0 ? T * rfm_rng_uniform(&g) : floor(T * rfm_rng_uniform(&g))) : 0;
        rows[i] = (bgnbd_row){x, tx, T, 1 + floor(3 * rfm_rng_uniform(&g))};
    }
    /* bgnbd_compress's order: by x */
    for (size_t i = 1; i < N; i++)
        for (size_t j = i; j > 0 && rows[j - 1].x > rows[j].x; j--) {
            bgnbd_row t = rows[j];
            rows[j] = rows[j - 1], rows[j - 1] = t;
        }
    const double us[4][4] = {
        {-1, 3, -0.5, 1}, {log(R), log(ALPHA), log(A), log(B)}, {0.3, 6, -4, 2}, {-2, 1, 1, -1}};
    size_t differ = 0;
    for (int k = 0; k < 4; k++)
        for (int pen = 0; pen < 2; pen++) {
            double ga[4], gb[4];
            double va = bgnbd_objective(us[k], ga, NULL, rows, N, pen * 0.01);
            double vb = objective_before(us[k], gb, rows, N, pen * 0.01);
            differ += memcmp(&va, &vb, sizeof va) != 0 || memcmp(ga, gb, sizeof ga) != 0;
        }
    printf("    %zu of 8 objective evaluations differ from the direct logs\n", differ);
    assert_int_equal(differ, 0);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_vs_finite_differences),
        cmocka_unit_test(test_hessian_vs_finite_differences),
        cmocka_unit_test(test_h_derivatives),
        cmocka_unit_test(test_compressed_equals_plain),
        cmocka_unit_test(test_log_table_equals_direct),
        cmocka_unit_test(test_recovers_simulated_parameters),
        cmocka_unit_test(test_predictions_vs_simulation),
        cmocka_unit_test(test_hypergeometric_and_edges),
        cmocka_unit_test(test_expected_for_huge_frequency),
        cmocka_unit_test(test_h_many_against_references),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
