/* gammagamma.h - the Gamma-Gamma model of spend per purchase (Fader,
 * Hardie and Lee 2005, "RFM and CLV: using iso-value curves"; lifetimes'
 * GammaGammaFitter), fitted on customers with at least one repeat
 * purchase by maximum likelihood on log-parameters.
 *
 * Data: x repeat purchases (> 0) and m the mean spend of those purchases.
 * Parameters p, q (shape of spend per transaction, and of its scale) and
 * v (scale). Objective as lifetimes: minus the weighted mean
 * log-likelihood plus penalizer * (p^2 + q^2 + v^2).
 * Thread safety: pure functions.
 */
#ifndef RFM_GAMMAGAMMA_H
#define RFM_GAMMAGAMMA_H

#include <stddef.h>

#include "status.h"

typedef struct {
    double p, q, v;
} gg_params;

typedef struct {
    double x, m, w;
} gg_row;

typedef struct {
    gg_params p;
    double se[3], lo[3], hi[3];
    double cov_log[9]; /* covariance of (log p, log q, log v) */
    double loglik, penalizer;
    int converged, iterations;
    double grad_norm;
    size_t customers, rows;
    double corr_freq_spend; /* Pearson r of x and m over fitted customers */
} gg_fit_result;

/* Rows of the customers with x > 0 and m > 0, weighted by repeats; *rows
 * is new. Customers with x == 0 are skipped; m <= 0 with x > 0 is EINVAL. */
rfm_status gg_compress(const double *x, const double *m, size_t n, gg_row **rows, size_t *nrows,
                       char *err, size_t errlen);
double gg_loglik(const gg_params *p, double x, double m);
/* The objective at log-parameters u, its gradient in u and, when hess is
 * not NULL, its Hessian in u (3 x 3, row-major). */
double gg_objective(const double u[3], double grad[3], double *hess, const gg_row *rows, size_t n,
                    double penalizer);
/* Fit; q must come out above 1 for the mean spend to exist (else
 * RFM_EDATA with advice). */
rfm_status gg_fit(const gg_row *rows, size_t n, double penalizer, gg_fit_result *out, char *err,
                  size_t errlen);
/* E[mean spend | x, m] (lifetimes' conditional_expected_average_profit);
 * for x == 0 the population mean p v / (q - 1). */
double gg_expected_spend(const gg_params *p, double x, double m);

#endif
