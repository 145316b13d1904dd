/* mle.c - multi-start BFGS2 (GSL), damped Newton, and the Hessian (the
 * objective's, or by differences of its gradient). */
#include "mle.h"

#include <gsl/gsl_blas.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_multimin.h>
#include <math.h>
#include <string.h>

#define MLE_BASIN 1e5

/* GSL's line search asks for f at a trial point and then, when the point
 * is kept, for the gradient at the same point (linear_wrapper.c): each a
 * full pass over the data, as f computes both. The last point's value and
 * gradient are kept and answered again for the same bits of x. */
typedef struct {
    mle_fn f;
    void *data;
    size_t n;
    int have;
    double x[MLE_MAXP], v, g[MLE_MAXP];
} wrap;

/* f inside the bounded domain, +infinity with a zero gradient outside.
 * h is NULL or gets f's Hessian, h[0] NaN when f has none (or outside). */
static double call(mle_fn f, void *data, size_t n, const double *u, double *g, double *h)
{
    if (h)
        h[0] = NAN;
    for (size_t k = 0; k < n; k++)
        if (!(fabs(u[k]) < MLE_LOG_BOUND)) {
            for (size_t j = 0; j < n; j++)
                g[j] = 0;
            return INFINITY;
        }
    return f(u, g, h, data);
}

/* call() at x (GSL's vector: stride 1 in mle_fit's), through the kept
 * point. */
static void w_eval(wrap *w, const gsl_vector *x)
{
    for (size_t i = 0; i < w->n; i++)
        w->x[i] = gsl_vector_get(x, i);
    w->v = call(w->f, w->data, w->n, w->x, w->g, NULL);
    w->have = 1;
}

static void w_at(wrap *w, const gsl_vector *x)
{
    if (w->have) {
        size_t i = 0;
        for (; i < w->n; i++) {
            double a = gsl_vector_get(x, i);
            if (memcmp(&a, &w->x[i], sizeof a) != 0)
                break;
        }
        if (i == w->n)
            return;
    }
    w_eval(w, x);
}

static double w_f(const gsl_vector *x, void *p)
{
    wrap *w = p;
    w_at(w, x);
    return isfinite(w->v) ? w->v : GSL_POSINF;
}

static void w_df(const gsl_vector *x, void *p, gsl_vector *g)
{
    wrap *w = p;
    w_at(w, x);
    for (size_t i = 0; i < w->n; i++)
        gsl_vector_set(g, i, isfinite(w->g[i]) ? w->g[i] : 0.0);
}

static void w_fdf(const gsl_vector *x, void *p, double *f, gsl_vector *g)
{
    wrap *w = p;
    w_at(w, x);
    *f = isfinite(w->v) ? w->v : GSL_POSINF;
    for (size_t i = 0; i < w->n; i++)
        gsl_vector_set(g, i, isfinite(w->g[i]) ? w->g[i] : 0.0);
}

/* The Hessian by central differences of the gradient. */
static void fd_hessian(mle_fn f, void *data, size_t n, const double *u, double *h)
{
    double x[MLE_MAXP], gp[MLE_MAXP], gm[MLE_MAXP];
    for (size_t j = 0; j < n; j++) {
        double step = 1e-5 * (1.0 + fabs(u[j]));
        memcpy(x, u, n * sizeof *x);
        x[j] = u[j] + step;
        call(f, data, n, x, gp, NULL);
        x[j] = u[j] - step;
        call(f, data, n, x, gm, NULL);
        for (size_t i = 0; i < n; i++)
            h[i * n + j] = (gp[i] - gm[i]) / (2 * step);
    }
    for (size_t i = 0; i < n; i++) /* symmetrise the two one-sided estimates */
        for (size_t j = i + 1; j < n; j++)
            h[i * n + j] = h[j * n + i] = 0.5 * (h[i * n + j] + h[j * n + i]);
}

void mle_hessian(mle_fn f, void *data, size_t n, const double *u, double *h)
{
    double g[MLE_MAXP];
    call(f, data, n, u, g, h);
    if (isnan(h[0]))
        fd_hessian(f, data, n, u, h);
}

static int invert(size_t n, const double *h, double *out)
{
    gsl_matrix *m = gsl_matrix_alloc(n, n), *inv = gsl_matrix_alloc(n, n);
    gsl_permutation *p = gsl_permutation_alloc(n);
    int ok = m && inv && p;
    int sign;
    if (ok) {
        memcpy(m->data, h, n * n * sizeof(double));
        ok = gsl_linalg_LU_decomp(m, p, &sign) == GSL_SUCCESS &&
             gsl_linalg_LU_invert(m, p, inv) == GSL_SUCCESS;
    }
    if (ok)
        for (size_t i = 0; i < n * n; i++)
            ok &= isfinite(out[i] = inv->data[i]);
    gsl_matrix_free(m);
    gsl_matrix_free(inv);
    gsl_permutation_free(p);
    return ok;
}

/* Newton's method on the objective's Hessian (or differences of its
 * gradient), damped in the Levenberg-Marquardt way (H + lambda I) where H is
 * not positive definite or a full step does not descend. BFGS finds the
 * basin cheaply; damped Newton then converges in a few steps along the
 * flat ridges these likelihoods have, where BFGS alone creeps for hundreds
 * of iterations. */
static int newton(mle_fn f, void *data, size_t n, double *u, double *fu, double gtol, int max_steps,
                  int *steps, double *gnorm)
{
    double g[MLE_MAXP], h[MLE_MAXP * MLE_MAXP], a[MLE_MAXP * MLE_MAXP], d[MLE_MAXP];
    double x[MLE_MAXP], gx[MLE_MAXP], hx[MLE_MAXP * MLE_MAXP], lambda = 0;
    gsl_matrix_view av = gsl_matrix_view_array(a, n, n);
    gsl_vector_view gv = gsl_vector_view_array(g, n), dv = gsl_vector_view_array(d, n);
    /* Each point's Hessian comes with its value where f has one (a trial
     * point's is kept when the step is taken), else by differences. */
    *fu = call(f, data, n, u, g, h);
    for (*steps = 0; *steps < max_steps; (*steps)++) {
        double gn = 0;
        for (size_t i = 0; i < n; i++)
            gn += g[i] * g[i];
        *gnorm = sqrt(gn);
        if (*gnorm < gtol)
            return 1;
        if (isnan(h[0]))
            fd_hessian(f, data, n, u, h);
        double scale = 0;
        for (size_t i = 0; i < n; i++)
            scale = fmax(scale, fabs(h[i * n + i]));
        int moved = 0;
        for (int tries = 0; tries < 30 && !moved; tries++) {
            memcpy(a, h, n * n * sizeof *a);
            for (size_t i = 0; i < n; i++)
                a[i * n + i] += lambda;
            if (gsl_linalg_cholesky_decomp1(&av.matrix) != GSL_SUCCESS ||
                gsl_linalg_cholesky_solve(&av.matrix, &gv.vector, &dv.vector) != GSL_SUCCESS) {
                lambda = lambda > 0 ? lambda * 10 : 1e-8 * (scale > 0 ? scale : 1);
                continue;
            }
            for (size_t i = 0; i < n; i++)
                x[i] = u[i] - d[i];
            double fx = call(f, data, n, x, gx, hx);
            if (isfinite(fx) && fx < *fu) {
                memcpy(u, x, n * sizeof *u);
                memcpy(g, gx, n * sizeof *g);
                memcpy(h, hx, n * n * sizeof *h);
                *fu = fx;
                moved = 1;
                lambda /= 10;
            } else {
                lambda = lambda > 0 ? lambda * 10 : 1e-8 * (scale > 0 ? scale : 1);
            }
        }
        if (!moved)
            return *gnorm < gtol * 100; /* as precise as doubles allow */
    }
    return 0;
}

rfm_status mle_fit(mle_fn f, void *data, size_t n, const double *starts, size_t nstarts,
                   double gtol, int max_iter, mle_result *out, char *err, size_t errlen)
{
    if (n == 0 || n > MLE_MAXP || nstarts == 0)
        return rfm_fail(err, errlen, RFM_EINVAL, "mle: bad dimensions");
    wrap w = {.f = f, .data = data, .n = n};
    gsl_multimin_function_fdf fn = {w_f, w_df, w_fdf, n, &w};
    gsl_multimin_fdfminimizer *m =
        gsl_multimin_fdfminimizer_alloc(gsl_multimin_fdfminimizer_vector_bfgs2, n);
    gsl_vector *x = gsl_vector_alloc(n);
    if (!m || !x) {
        gsl_multimin_fdfminimizer_free(m);
        gsl_vector_free(x);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    memset(out, 0, sizeof *out);
    out->f = INFINITY;
    int any = 0;
    for (size_t s = 0; s < nstarts; s++) {
        memcpy(x->data, starts + s * n, n * sizeof(double));
        if (!isfinite(w_f(x, &w)))
            continue;
        if (gsl_multimin_fdfminimizer_set(m, &fn, x, 0.1, 0.1) != GSL_SUCCESS)
            continue;
        int it, conv = 0;
        /* BFGS to the basin, where the gradient is MLE_BASIN times the
         * tolerance (Newton on the objective's Hessian converges from
         * there in a few steps; BFGS's last digits cost it most of its
         * iterations) */
        for (it = 1; it <= 40 && it <= max_iter; it++) {
            int st = gsl_multimin_fdfminimizer_iterate(m);
            if (gsl_multimin_test_gradient(m->gradient, gtol * MLE_BASIN) == GSL_SUCCESS)
                break;
            if (st != GSL_SUCCESS) /* no progress possible along the line */
                break;
        }
        double u[MLE_MAXP], fv, gn;
        int steps;
        memcpy(u, gsl_multimin_fdfminimizer_x(m)->data, n * sizeof(double));
        conv = newton(f, data, n, u, &fv, gtol, 100, &steps, &gn);
        it += steps;
        if (isfinite(fv) &&
            (!any || (conv && !out->converged) || (conv == out->converged && fv < out->f))) {
            any = 1;
            memcpy(out->u, u, n * sizeof(double));
            out->f = fv;
            out->converged = conv;
            out->iterations = it;
            out->grad_norm = gn;
        }
    }
    gsl_multimin_fdfminimizer_free(m);
    gsl_vector_free(x);
    if (!any)
        return rfm_fail(err, errlen, RFM_ENOCONVERGE,
                        "the likelihood is not finite at any starting point");
    double h[MLE_MAXP * MLE_MAXP];
    mle_hessian(f, data, n, out->u, h);
    if (!invert(n, h, out->cov)) {
        out->converged = 0;
        return rfm_fail(err, errlen, RFM_ENOCONVERGE,
                        "the Hessian at the optimum is singular: the data do not identify "
                        "every parameter (try a penalizer)");
    }
    for (size_t i = 0; i < n; i++)
        if (!(out->cov[i * n + i] > 0)) {
            out->converged = 0;
            return rfm_fail(err, errlen, RFM_ENOCONVERGE,
                            "the optimum is not a minimum (Hessian not positive definite); try "
                            "a penalizer");
        }
    if (!out->converged)
        return rfm_fail(err, errlen, RFM_ENOCONVERGE,
                        "no start converged (gradient norm %.3g after %d iterations); try a "
                        "penalizer or more iterations",
                        out->grad_norm, out->iterations);
    return RFM_OK;
}

void mle_standard_errors(const mle_result *r, size_t n, double W, double *cov_log, double *se,
                         double *lo, double *hi)
{
    for (size_t i = 0; i < n * n; i++)
        cov_log[i] = r->cov[i] / W;
    for (size_t k = 0; k < n; k++) {
        double nat = exp(r->u[k]), sl = sqrt(cov_log[k * n + k]);
        se[k] = nat * sl;
        lo[k] = nat * exp(-1.96 * sl);
        hi[k] = nat * exp(1.96 * sl);
    }
}

int mle_unidentified(const double *cov_log, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (!(sqrt(cov_log[k * n + k]) <= MLE_SE_LOG_MAX))
            return (int)k;
    return -1;
}

int mle_interior(mle_fn f, void *data, size_t n, const double *u, double W, double rise[2])
{
    double h[MLE_MAXP * MLE_MAXP], vec[MLE_MAXP * MLE_MAXP], val[MLE_MAXP], g[MLE_MAXP];
    double v[MLE_MAXP], r[2] = {NAN, NAN};
    mle_hessian(f, data, n, u, h);
    gsl_matrix_view hv = gsl_matrix_view_array(h, n, n), ev = gsl_matrix_view_array(vec, n, n);
    gsl_vector_view lv = gsl_vector_view_array(val, n);
    gsl_eigen_symmv_workspace *w = gsl_eigen_symmv_alloc(n);
    int ok = w && gsl_eigen_symmv(&hv.matrix, &lv.vector, &ev.matrix, w) == GSL_SUCCESS;
    gsl_eigen_symmv_free(w);
    if (ok) {
        gsl_eigen_symmv_sort(&lv.vector, &ev.matrix, GSL_EIGEN_SORT_VAL_ASC);
        double top = 0, f0 = f(u, g, NULL, data);
        for (size_t k = 0; k < n; k++)
            top = fmax(top, fabs(vec[k * n]));
        for (int side = 0; side < 2 && top > 0; side++) {
            double s = (side ? MLE_FLAT_STEP : -MLE_FLAT_STEP) / top;
            int inside = 1;
            for (size_t k = 0; k < n; k++) {
                v[k] = u[k] + s * vec[k * n];
                inside &= fabs(v[k]) < MLE_LOG_BOUND;
            }
            /* Past the domain's edge the step leaves every fit's range:
             * the optimum is bounded on that side. */
            r[side] = inside ? W * (f(v, g, NULL, data) - f0) : INFINITY;
            if (isnan(r[side]))
                r[side] = INFINITY; /* outside the model's own domain */
        }
    }
    if (rise)
        rise[0] = r[0], rise[1] = r[1];
    return ok && r[0] >= MLE_FLAT_RISE && r[1] >= MLE_FLAT_RISE;
}

rfm_status mle_check_identified(mle_fn f, void *data, size_t n, const mle_result *m, double W,
                                const double *cov_log, const char *const *names, char *err,
                                size_t errlen)
{
    int k = mle_unidentified(cov_log, n);
    if (k >= 0)
        return rfm_fail(err, errlen, RFM_ENOCONVERGE,
                        "the data do not identify %s (standard error of log %s %.3g > %g): try "
                        "a penalizer",
                        names[k], names[k], sqrt(cov_log[k * (n + 1)]), MLE_SE_LOG_MAX);
    double rise[2];
    if (!mle_interior(f, data, n, m->u, W, rise)) {
        size_t worst = 0;
        for (size_t j = 0; j < n; j++)
            if (fabs(m->u[j]) > fabs(m->u[worst]))
                worst = j;
        return rfm_fail(err, errlen, RFM_ENOCONVERGE,
                        "the optimum lies on the boundary of the parameter space (%s = %.3g; "
                        "moving the parameters by a factor of 22,000 along the flattest "
                        "direction changes the log-likelihood by %.3g and %.3g): try a penalizer",
                        names[worst], exp(m->u[worst]), -rise[0], -rise[1]);
    }
    return RFM_OK;
}
