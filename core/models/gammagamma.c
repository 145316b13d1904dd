/* gammagamma.c - Gamma-Gamma likelihood, gradient, fit, expected spend. */
#include "gammagamma.h"

#include <gsl/gsl_sf_psi.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mle.h"

static int cmp_row(const void *a, const void *b)
{
    const gg_row *p = a, *q = b;
    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    return (p->m > q->m) - (p->m < q->m);
}

rfm_status gg_compress(const double *x, const double *m, size_t n, gg_row **rows, size_t *nrows,
                       char *err, size_t errlen)
{
    *rows = NULL;
    *nrows = 0;
    gg_row *r = malloc((n ? n : 1) * sizeof *r);
    if (!r)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(x[i] > 0))
            continue;
        if (!(m[i] > 0) || !isfinite(m[i])) {
            free(r);
            return rfm_fail(err, errlen, RFM_EINVAL,
                            "customer %zu: mean spend of repeat purchases must be > 0", i);
        }
        r[k++] = (gg_row){x[i], m[i], 1.0};
    }
    qsort(r, k, sizeof *r, cmp_row);
    size_t j = 0;
    for (size_t i = 0; i < k; i++) {
        if (j > 0 && cmp_row(&r[j - 1], &r[i]) == 0)
            r[j - 1].w += 1;
        else
            r[j++] = r[i];
    }
    *rows = r;
    *nrows = j;
    return RFM_OK;
}

double gg_loglik(const gg_params *p, double x, double m)
{
    double px = p->p * x;
    return lgamma(px + p->q) - lgamma(px) - lgamma(p->q) + p->q * log(p->v) + (px - 1) * log(m) +
           px * log(x) - (px + p->q) * log(x * m + p->v);
}

/* The objective, its gradient and (want_h, into hess) its Hessian in u;
 * want_h is a constant in each of the two instances below. */
static inline __attribute__((always_inline)) double objective(const double u[3], double grad[3],
                                                              double *hess, const gg_row *rows,
                                                              const double *lm, size_t n,
                                                              double penalizer, const int want_h)
{
    gg_params p = {exp(u[0]), exp(u[1]), exp(u[2])};
    double ll = 0, W = 0, g[3] = {0, 0, 0};
    /* the log-likelihood's second derivatives in (p, q, v), upper triangle */
    double H[3][3] = {{0}};
    double psi_q = gsl_sf_psi(p.q), log_v = log(p.v), lg_q = lgamma(p.q);
    double tri_q = want_h ? gsl_sf_psi_1(p.q) : 0;
    /* Rows come sorted by x: the special functions depend on x only. */
    double cx = -1, lg_part = 0, psi_pxq = 0, psi_px = 0, log_x = 0, tri_pxq = 0, tri_px = 0;
    for (size_t i = 0; i < n; i++) {
        double x = rows[i].x, m = rows[i].m, w = rows[i].w, px = p.p * x;
        if (x != cx) {
            cx = x;
            lg_part = lgamma(px + p.q) - lgamma(px) - lg_q + p.q * log_v;
            psi_pxq = gsl_sf_psi(px + p.q);
            psi_px = gsl_sf_psi(px);
            log_x = log(x);
            if (want_h)
                tri_pxq = gsl_sf_psi_1(px + p.q), tri_px = gsl_sf_psi_1(px);
        }
        double lxm = log(x * m + p.v), log_m = lm ? lm[i] : log(m);
        ll += w * (lg_part + (px - 1) * log_m + px * log_x - (px + p.q) * lxm);
        W += w;
        g[0] += w * x * (psi_pxq - psi_px + log_m + log_x - lxm);
        g[1] += w * (psi_pxq - psi_q + log_v - lxm);
        g[2] += w * (p.q / p.v - (px + p.q) / (x * m + p.v));
        if (want_h) {
            double ixm = 1 / (x * m + p.v);
            H[0][0] += w * x * x * (tri_pxq - tri_px);
            H[0][1] += w * x * tri_pxq;
            H[0][2] -= w * x * ixm;
            H[1][1] += w * (tri_pxq - tri_q);
            H[1][2] += w * (1 / p.v - ixm);
            H[2][2] += w * ((px + p.q) * ixm * ixm - p.q / (p.v * p.v));
        }
    }
    const double nat[3] = {p.p, p.q, p.v};
    double pen = 0;
    for (int k = 0; k < 3; k++) {
        pen += nat[k] * nat[k];
        grad[k] = nat[k] * (-g[k] / W + 2 * penalizer * nat[k]);
    }
    if (want_h)
        /* d2/du_k du_l = theta_k theta_l d2/dtheta_k dtheta_l, plus on the
         * diagonal theta_k d/dtheta_k; the penalty theta_k^2 adds 4 theta_k^2
         * there. */
        for (int k = 0; k < 3; k++)
            for (int l = k; l < 3; l++) {
                double v = nat[k] * nat[l] * (-H[k][l] / W);
                if (l == k)
                    v += nat[k] * (-g[k] / W) + 4 * penalizer * nat[k] * nat[k];
                hess[k * 3 + l] = hess[l * 3 + k] = v;
            }
    return -ll / W + penalizer * pen;
}

double gg_objective(const double u[3], double grad[3], double *hess, const gg_row *rows, size_t n,
                    double penalizer)
{
    return hess ? objective(u, grad, hess, rows, NULL, n, penalizer, 1)
                : objective(u, grad, NULL, rows, NULL, n, penalizer, 0);
}

/* A fit's rows with each row's log(m), which no parameter moves: taken
 * once, not at every call (the same call on the same m: the same bits). */
typedef struct {
    mle_rows r;
    const double *lm;
} fit_data;

static double obj(const double *u, double *g, double *h, void *d)
{
    const fit_data *f = d; /* mle_fit keeps u inside |u| < MLE_LOG_BOUND */
    return h ? objective(u, g, h, f->r.rows, f->lm, f->r.n, f->r.penalizer, 1)
             : objective(u, g, NULL, f->r.rows, f->lm, f->r.n, f->r.penalizer, 0);
}

rfm_status gg_fit(const gg_row *rows, size_t n, double penalizer, gg_fit_result *out, char *err,
                  size_t errlen)
{
    memset(out, 0, sizeof *out);
    double W = 0, sx = 0, sm = 0, sxx = 0, smm = 0, sxm = 0;
    for (size_t i = 0; i < n; i++) {
        double w = rows[i].w, x = rows[i].x, m = rows[i].m;
        W += w, sx += w * x, sm += w * m, sxx += w * x * x, smm += w * m * m, sxm += w * x * m;
    }
    if (W < 2)
        return rfm_fail(err, errlen, RFM_EDATA,
                        "Gamma-Gamma needs at least 2 customers with a repeat purchase");
    double vx = sxx / W - (sx / W) * (sx / W), vm = smm / W - (sm / W) * (sm / W);
    out->corr_freq_spend = vx > 0 && vm > 0 ? (sxm / W - sx / W * sm / W) / sqrt(vx * vm) : 0;
    double *lm = malloc((n ? n : 1) * sizeof *lm);
    if (!lm)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for %zu rows", n);
    for (size_t i = 0; i < n; i++)
        lm[i] = log(rows[i].m);
    fit_data fd = {{rows, n, penalizer}, lm};
    double mean = sm / W; /* starts around the observed mean spend: p v / (q - 1) ~ mean */
    const double starts[] = {0, 0, 0, log(2), log(3), log(mean), log(5), log(10), log(2 * mean)};
    mle_result m;
    rfm_status st = mle_fit(obj, &fd, 3, starts, 3, 1e-7, 500, &m, err, errlen);
    out->p = (gg_params){exp(m.u[0]), exp(m.u[1]), exp(m.u[2])};
    MLE_SET_FIT_INFO(out, m, penalizer, W, n);
    double ll = 0;
    for (size_t i = 0; i < n; i++)
        ll += rows[i].w * gg_loglik(&out->p, rows[i].x, rows[i].m);
    out->loglik = ll;
    if (st != RFM_OK)
        goto out;
    if (!(out->p.q > 1)) {
        st = rfm_fail(err, errlen, RFM_EDATA,
                      "Gamma-Gamma q = %.4g <= 1: the mean spend has no finite expectation "
                      "(try a penalizer, or check for extreme spends)",
                      out->p.q);
        goto out;
    }
    mle_standard_errors(&m, 3, W, out->cov_log, out->se, out->lo, out->hi);
    static const char *const names[3] = {"p", "q", "v"};
    if ((st = mle_check_identified(obj, &fd, 3, &m, W, out->cov_log, names, err, errlen)))
        out->converged = 0;
out:
    free(lm);
    return st;
}

double gg_expected_spend(const gg_params *p, double x, double m)
{
    if (!(x > 0))
        return p->p * p->v / (p->q - 1);
    return p->p * (p->v + x * m) / (p->p * x + p->q - 1);
}
