/* bgnbd.h - the BG/NBD model of repeat purchasing (Fader, Hardie and Lee
 * 2005, "Counting your customers the easy way"), fitted by maximum
 * likelihood as the Python package lifetimes does (BetaGeoFitter).
 *
 * Data per customer in lifetimes' convention, time in days:
 *   x   repeat purchases (distinct purchase days - 1), an integer >= 0
 *   t_x days from the first to the last purchase (0 when x = 0)
 *   T   days from the first purchase to the end of observation, >= t_x
 * Parameters r, alpha (purchase rate: gamma shape and scale, per day) and
 * a, b (dropout probability: beta). Customers with the same (x, t_x, T)
 * are one weighted row, so a fit costs one pass over distinct triples.
 *
 * The objective is lifetimes': minus the weighted mean log-likelihood plus
 * penalizer * (r^2 + (alpha / max T)^2 + a^2 + b^2) -- lifetimes fits in
 * time scaled by 1 / max(T), so its penalty sees the scaled alpha -- over
 * log-parameters. With no penalty the estimates do not depend on it.
 * Thread safety: pure functions.
 */
#ifndef RFM_BGNBD_H
#define RFM_BGNBD_H

#include <math.h>
#include <stddef.h>

#include "status.h"

typedef struct {
    double r, alpha, a, b;
} bgnbd_params;

typedef struct {
    double x, t_x, T, w; /* w: number of customers with this triple */
} bgnbd_row;

typedef struct {
    bgnbd_params p;
    double se[4];        /* standard errors of r, alpha, a, b (delta method) */
    double lo[4], hi[4]; /* 95 % intervals: exp(log estimate -/+ 1.96 se of log) */
    double cov_log[16];  /* covariance of (log r, log alpha, log a, log b) */
    double loglik;       /* total log-likelihood at the estimate */
    double penalizer;
    int converged, iterations;
    double grad_norm;
    size_t customers, rows;
} bgnbd_fit_result;

/* Whether a fit that returned st can still be used for predictions: it
 * succeeded, or it stopped (RFM_ENOCONVERGE) at a finite point because a
 * parameter is not identified. Along such a flat direction the likelihood,
 * and so every prediction, hardly depends on where the optimiser stopped,
 * so checks that only compare predictions (the holdout check, churn's
 * BG/NBD baseline) use the point on every machine instead of depending on
 * which side of positive-definiteness the last bits fell. */
int bgnbd_fit_predicts(rfm_status st, const bgnbd_fit_result *r);

/* Reason (x, t_x, T) is impossible, naming the field, or NULL. */
const char *bgnbd_check(double x, double t_x, double T);

/* Weighted distinct rows of n customers; *rows is new (free). Fails with
 * RFM_EINVAL naming the first impossible customer. */
rfm_status bgnbd_compress(const double *x, const double *t_x, const double *T, size_t n,
                          bgnbd_row **rows, size_t *nrows, char *err, size_t errlen);

/* Log-likelihood of one customer. */
double bgnbd_loglik(const bgnbd_params *p, double x, double t_x, double T);
/* The objective at log-parameters u, its gradient in u and, when hess is
 * not NULL, its Hessian in u (4 x 4, row-major). */
double bgnbd_objective(const double u[4], double grad[4], double *hess, const bgnbd_row *rows,
                       size_t n, double penalizer);

/* Fit; RFM_ENOCONVERGE with advice when the optimiser fails. From
 * BGNBD_STARTS starting points: lifetimes' (every parameter 1) and spreads
 * of the rate scale, keeping the best. */
#define BGNBD_STARTS 4
rfm_status bgnbd_fit(const bgnbd_row *rows, size_t n, double penalizer, bgnbd_fit_result *out,
                     char *err, size_t errlen);
/* The same from the first nstarts of those points (1: lifetimes' start
 * alone, as lifetimes fits; 1 <= nstarts <= BGNBD_STARTS). */
rfm_status bgnbd_fit_starts(const bgnbd_row *rows, size_t n, double penalizer, int nstarts,
                            bgnbd_fit_result *out, char *err, size_t errlen);

/* Probability the customer is still alive at T. */
double bgnbd_p_alive(const bgnbd_params *p, double x, double t_x, double T);
/* Expected purchases in the next t days given the history. */
double bgnbd_expected(const bgnbd_params *p, double t, double x, double t_x, double T);
/* bgnbd_expected in two parts, for callers that evaluate many horizons or
 * customers with shared terms (cltv.c): the term h(t, x, T) = (1-z)^(r+x)
 * 2F1(r+x, b+x; a+b+x-1; z), z = t/(alpha+T+t), which holds the 2F1 and
 * does not depend on t_x, and the expectation from h and bgnbd_p_alive's
 * value. bgnbd_expected(p, t, x, t_x, T) for t > 0 is exactly (bit for
 * bit) bgnbd_expected_from(p, bgnbd_h(p, t, x, T), x, bgnbd_p_alive(p, x,
 * t_x, T)): it is computed so. */
double bgnbd_h(const bgnbd_params *p, double t, double x, double T);
/* bgnbd_h at each of n times, h[j] = bgnbd_h(p, t[j], x, T) bit for bit, in
 * one pass over the series (every period of a lifetime value's horizon). */
void bgnbd_h_many(const bgnbd_params *p, const double *t, size_t n, double x, double T, double *h);
/* bgnbd_h_many (h the same bits) with, where the 2F1 came from its series,
 * the derivatives of each h[j] in the log-parameters: dh[4 * j + k] =
 * d h[j] / d log(r, alpha, a, b)[k], have[j] = 1; have[j] = 0 where h[j]
 * needed another evaluation (the caller differences those). */
void bgnbd_h_many_d(const bgnbd_params *p, const double *t, size_t n, double x, double T, double *h,
                    double *dh, unsigned char *have);
/* Inline, so that a loop over many h hoists the division. */
static inline double bgnbd_expected_from(const bgnbd_params *p, double h, double x, double alive)
{
    double am1 = p->a - 1;
    if (fabs(am1) < 1e-9) /* the formula's removable singularity at a = 1 */
        am1 = am1 < 0 ? -1e-9 : 1e-9;
    double num = (p->a + p->b + x - 1) / am1 * (1 - h);
    double e = num * alive;
    return isfinite(e) && e > 0 ? e : 0.0;
}
/* Expected purchases in t days of a new customer, E[X(t)]. */
double bgnbd_expected_new(const bgnbd_params *p, double t);

/* Gauss hypergeometric 2F1(a, b; c; z) for z < 1 (exposed for tests). */
double bgnbd_hyp2f1(double a, double b, double c, double z);

#endif
