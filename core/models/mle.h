/* mle.h - maximum likelihood on log-parameters: multi-start BFGS (GSL) on
 * an analytic gradient, damped Newton steps, and the covariance of the
 * estimate, both on the objective's own Hessian or, for an objective
 * without one, central differences of its gradient.
 *
 * Workload: a handful of parameters, an objective that costs one pass over
 * a few thousand weighted rows. Thread safety: none needed; pure.
 */
#ifndef RFM_MLE_H
#define RFM_MLE_H

#include <stddef.h>

#include "status.h"

#define MLE_MAXP 8
/* The domain of every fit: |u_k| < MLE_LOG_BOUND, i.e. each natural
 * parameter exp(u_k) within e^-30 .. e^30 (1e-13 .. 1e13). Outside it the
 * objective counts as +infinity with a zero gradient and f is not called:
 * no customer-level parameter is that large or small, and the special
 * functions (lgamma, digamma, 2F1) lose their precision long before. */
#define MLE_LOG_BOUND 30.0

/* Objective to minimise at log-parameters u (n values): returns f and
 * fills grad (d f / d u). A non-finite f means "outside the domain". Only
 * called inside |u_k| < MLE_LOG_BOUND. hess is NULL or n x n (row-major)
 * for the second derivatives d2 f / du_i du_j: an objective that has them
 * fills it, one that has not leaves it as given (hess[0] NaN) and the
 * fitter takes central differences of the gradient instead (2 n calls). */
typedef double (*mle_fn)(const double *u, double *grad, double *hess, void *data);

typedef struct {
    double u[MLE_MAXP];              /* argmin, log-parameters */
    double f;                        /* objective there */
    double cov[MLE_MAXP * MLE_MAXP]; /* inverse Hessian of f at u (n x n) */
    int converged;
    int iterations;
    double grad_norm;
} mle_result;

/* The data of a fit on weighted rows (bgnbd_row, gg_row): what each
 * model's mle_fn receives. */
typedef struct {
    const void *rows;
    size_t n;
    double penalizer;
} mle_rows;

/* The fields every model's fit result shares (bgnbd_fit_result,
 * gg_fit_result), filled from the mle_result m of a fit with penalizer
 * on n rows weighing W customers. */
#define MLE_SET_FIT_INFO(out, m, pen, W, n)                                                        \
    do {                                                                                           \
        (out)->converged = (m).converged;                                                          \
        (out)->iterations = (m).iterations;                                                        \
        (out)->grad_norm = (m).grad_norm;                                                          \
        (out)->penalizer = (pen);                                                                  \
        (out)->customers = (size_t)(W);                                                            \
        (out)->rows = (n);                                                                         \
    } while (0)

/* Minimise from each of nstarts starting points (nstarts x n, row-major),
 * keeping the lowest objective. Converged means the gradient norm fell
 * under gtol. The Hessian is of f itself; callers whose f is a mean over
 * N observations divide cov by N. RFM_ENOCONVERGE when no start
 * converged (out still holds the best point reached). */
rfm_status mle_fit(mle_fn f, void *data, size_t n, const double *starts, size_t nstarts,
                   double gtol, int max_iter, mle_result *out, char *err, size_t errlen);

/* From a fit of a mean objective over W customers: the covariance of the
 * log-parameters (cov / W, into cov_log, n x n), and for the natural
 * parameters exp(u): standard errors by the delta method and 95 %
 * intervals exp(u -/+ 1.96 se(u)). */
void mle_standard_errors(const mle_result *r, size_t n, double W, double *cov_log, double *se,
                         double *lo, double *hi);

/* A fit counts as identified only while every log-parameter's standard
 * error is at most MLE_SE_LOG_MAX: above it the 95 % interval spans a
 * factor of more than exp(2 * 1.96 * 10), about 1e17, and the data leave the
 * parameter free. The line sits far from both sides: the bundled data's
 * least identified parameters (BG/NBD's a and b) reach 3.3, a parameter
 * running off to a boundary reaches hundreds, so the last bits in which
 * CPUs differ cannot move a fit across it. Returns the index of the first
 * parameter over the line (cov_log as mle_standard_errors fills it), or -1. */
#define MLE_SE_LOG_MAX 10.0
int mle_unidentified(const double *cov_log, size_t n);

/* Whether the optimum lies inside the parameter space or on its boundary
 * (a -> 0, q -> infinity): along the flattest direction of the Hessian,
 * scaled so its largest log-parameter step is MLE_FLAT_STEP (a factor of
 * e^10, about 22,000), the total objective (f times W) must rise by at
 * least MLE_FLAT_RISE on both sides. A maximum at a boundary rises by
 * nothing or falls on one side, whichever point the optimiser stopped at;
 * an interior optimum rises: the bundled BG/NBD, the least curved fit
 * shipped, by 0.15 and 0.51 log-likelihood units, fifteen times the line.
 * Both are properties of the data, not of the last bits. rise[0], rise[1]
 * get the two rises (may be NULL). 1 inside, 0 on a boundary. */
#define MLE_FLAT_STEP 10.0
#define MLE_FLAT_RISE 0.01
int mle_interior(mle_fn f, void *data, size_t n, const double *u, double W, double rise[2]);

/* Both identifiability checks above on a converged fit m of a mean
 * objective over W customers (cov_log from mle_standard_errors), with the
 * parameters' names for the message. RFM_OK, or RFM_ENOCONVERGE saying
 * which parameter is free or which way the optimum runs off, and to try a
 * penalizer. */
rfm_status mle_check_identified(mle_fn f, void *data, size_t n, const mle_result *m, double W,
                                const double *cov_log, const char *const *names, char *err,
                                size_t errlen);

/* Hessian of f at u (n x n): f's own second derivatives where it has
 * them, else central differences of its gradient. */
void mle_hessian(mle_fn f, void *data, size_t n, const double *u, double *h);

#endif
