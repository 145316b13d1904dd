/* bgnbd.c - BG/NBD likelihood, gradient, fit and predictions. */
#include "bgnbd.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_sf_hyperg.h>
#include <gsl/gsl_sf_psi.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mle.h"

const char *bgnbd_check(double x, double t_x, double T)
{
    /* Messages use the API's field names (lifetimes' frequency, recency, T). */
    if (!isfinite(x) || x < 0 || x != floor(x))
        return "repeat_purchases must be a whole number >= 0";
    if (!isfinite(t_x) || t_x < 0)
        return "days_first_to_last_purchase must be >= 0";
    if (!isfinite(T) || T < 0)
        return "days_since_first_purchase must be >= 0";
    if (t_x > T)
        return "days_first_to_last_purchase cannot exceed days_since_first_purchase";
    if (x == 0 && t_x > 0)
        return "days_first_to_last_purchase must be 0 when repeat_purchases is 0";
    return NULL;
}

static int cmp_row(const void *a, const void *b)
{
    const bgnbd_row *p = a, *q = b;
    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    if (p->t_x != q->t_x)
        return p->t_x < q->t_x ? -1 : 1;
    return (p->T > q->T) - (p->T < q->T);
}

rfm_status bgnbd_compress(const double *x, const double *t_x, const double *T, size_t n,
                          bgnbd_row **rows, size_t *nrows, char *err, size_t errlen)
{
    *rows = NULL;
    *nrows = 0;
    for (size_t i = 0; i < n; i++) {
        const char *why = bgnbd_check(x[i], t_x[i], T[i]);
        if (why)
            return rfm_fail(err, errlen, RFM_EINVAL, "customer %zu: %s", i, why);
    }
    bgnbd_row *r = malloc((n ? n : 1) * sizeof *r);
    if (!r)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for %zu customers", n);
    for (size_t i = 0; i < n; i++)
        r[i] = (bgnbd_row){x[i], t_x[i], T[i], 1.0};
    qsort(r, n, sizeof *r, cmp_row);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && cmp_row(&r[m - 1], &r[i]) == 0)
            r[m - 1].w += 1;
        else
            r[m++] = r[i];
    }
    *rows = r;
    *nrows = m;
    return RFM_OK;
}

/* The four terms of the likelihood (FHL 2005, eq. 6, in logs). */
static void terms(const bgnbd_params *p, double x, double t_x, double T, double *a12, double *a3,
                  double *a4)
{
    double r = p->r, al = p->alpha, a = p->a, b = p->b;
    *a12 = lgamma(r + x) - lgamma(r) + r * log(al) + lgamma(a + b) + lgamma(b + x) - lgamma(b) -
           lgamma(a + b + x);
    *a3 = -(r + x) * log(al + T);
    *a4 = x > 0 ? log(a) - log(b + x - 1) - (r + x) * log(al + t_x) : -INFINITY;
}

double bgnbd_loglik(const bgnbd_params *p, double x, double t_x, double T)
{
    double a12, a3, a4;
    terms(p, x, t_x, T, &a12, &a3, &a4);
    double m = a3 > a4 ? a3 : a4;
    return a12 + m + log(exp(a3 - m) + (x > 0 ? exp(a4 - m) : 0.0));
}

#define LOG_DAYS 1024

/* log(al + t), from tab[t] for whole days t < LOG_DAYS (computed there on
 * first use), else directly. */
static inline double log_days(double *tab, double al, double t)
{
    if (!(t >= 0 && t < LOG_DAYS) || t != (double)(int)t)
        return log(al + t);
    double *e = &tab[(int)t];
    if (isnan(*e))
        *e = log(al + t);
    return *e;
}

/* The objective, its gradient and (want_h, into hess) its Hessian in u;
 * want_h is a constant in each of the two instances below. */
static inline __attribute__((always_inline)) double objective(const double u[4], double grad[4],
                                                              double *hess, const bgnbd_row *rows,
                                                              size_t n, double penalizer,
                                                              const int want_h)
{
    double r = exp(u[0]), al = exp(u[1]), a = exp(u[2]), b = exp(u[3]);
    double ll = 0, W = 0, g[4] = {0, 0, 0, 0};
    /* the log-likelihood's second derivatives in (r, alpha, a, b), upper triangle */
    double H[4][4] = {{0}};
    double psi_r = gsl_sf_psi(r), psi_ab = gsl_sf_psi(a + b), psi_b = gsl_sf_psi(b);
    double lg_r = lgamma(r), lg_ab = lgamma(a + b), lg_b = lgamma(b), log_al = log(al);
    double log_a = log(a);
    double tri_r = 0, tri_ab = 0, tri_b = 0;
    if (want_h)
        tri_r = gsl_sf_psi_1(r), tri_ab = gsl_sf_psi_1(a + b), tri_b = gsl_sf_psi_1(b);
    /* log(alpha + t) for whole days t < LOG_DAYS, filled as rows ask (NaN:
     * not yet): ages and last purchases are whole days in transaction data
     * and repeat across the compressed rows, so most rows look their two
     * logs up. The same call on the same sum, so the same bits. */
    double logt[LOG_DAYS];
    for (size_t k = 0; k < LOG_DAYS; k++)
        logt[k] = NAN;
    /* Rows come sorted by x (bgnbd_compress), and the special functions
     * depend on x only: evaluate them once per distinct x. The Hessian's
     * parts that depend on x alone are added once per x, by the x's weight
     * (wx). */
    double cx = -1, a12 = 0, psi_rx = 0, psi_bx = 0, psi_abx = 0, log_bx1 = 0, maxT = 0;
    double tri_rx = 0, tri_bx = 0, tri_abx = 0, inv_bx1 = 0, wx = 0;
    for (size_t i = 0; i <= n; i++) {
        double x = i < n ? rows[i].x : NAN; /* NaN: the last x ends */
        if (x != cx) {
            if (want_h && wx > 0) { /* the x just ended: A1 + A2's second derivatives */
                H[0][0] += wx * (tri_rx - tri_r);
                H[2][2] += wx * (tri_ab - tri_abx);
                H[2][3] += wx * (tri_ab - tri_abx);
                H[3][3] += wx * (tri_ab + tri_bx - tri_b - tri_abx);
            }
            if (i == n)
                break;
            cx = x;
            wx = 0;
            a12 = lgamma(r + x) - lg_r + r * log_al + lg_ab + lgamma(b + x) - lg_b -
                  lgamma(a + b + x);
            psi_rx = gsl_sf_psi(r + x);
            psi_bx = gsl_sf_psi(b + x);
            psi_abx = gsl_sf_psi(a + b + x);
            log_bx1 = x > 0 ? log(b + x - 1) : 0;
            if (want_h) {
                tri_rx = gsl_sf_psi_1(r + x);
                tri_bx = gsl_sf_psi_1(b + x);
                tri_abx = gsl_sf_psi_1(a + b + x);
                inv_bx1 = x > 0 ? 1 / (b + x - 1) : 0;
            }
        }
        double tx = rows[i].t_x, T = rows[i].T, w = rows[i].w;
        wx += w;
        maxT = T > maxT ? T : maxT;
        double l_alT = log_days(logt, al, T), l_altx = x > 0 ? log_days(logt, al, tx) : 0;
        double a3 = -(r + x) * l_alT;
        double a4 = x > 0 ? log_a - log_bx1 - (r + x) * l_altx : -INFINITY;
        double m = a3 > a4 ? a3 : a4;
        /* The larger term's exp(0) is 1 exactly: one exp a row, the same bits. */
        double e3 = m == a3 ? 1.0 : exp(a3 - m), e4 = x > 0 ? (m == a4 ? 1.0 : exp(a4 - m)) : 0.0;
        double s = e3 + e4;
        ll += w * (a12 + m + (s == 1.0 ? 0.0 : log(s)));
        W += w;
        double w3 = e3 / s, w4 = e4 / s;
        /* d/d(natural parameter) of this customer's log-likelihood */
        g[0] += w * (psi_rx - psi_r + log_al - w3 * l_alT - w4 * l_altx);
        g[1] += w * (r / al - w3 * (r + x) / (al + T) - (x > 0 ? w4 * (r + x) / (al + tx) : 0));
        g[2] += w * (psi_ab - psi_abx + w4 / a);
        g[3] += w * (psi_ab + psi_bx - psi_b - psi_abx - (x > 0 ? w4 / (b + x - 1) : 0));
        if (want_h) {
            /* log(e^a3 + e^a4): w3 a3'' + w4 a4'' + w3 w4 (a3' - a4')(a3' - a4')^T,
             * with a3' = (-log(al + T), -(r + x) / (al + T), 0, 0) and a4' =
             * (-log(al + t_x), -(r + x) / (al + t_x), 1 / a, -1 / (b + x - 1)). */
            double R = r + x, i3 = 1 / (al + T);
            double hra = -w3 * i3, haa = w3 * R * i3 * i3;
            double hA = 0, hB = 0, d0 = 0, d1 = 0, d2 = 0, d3 = 0, ww = 0;
            if (x > 0) {
                double i4 = 1 / (al + tx);
                hra -= w4 * i4;
                haa += w4 * R * i4 * i4;
                hA = -w4 / (a * a);
                hB = w4 * inv_bx1 * inv_bx1;
                ww = w3 * w4;
                d0 = l_altx - l_alT, d1 = R * (i4 - i3), d2 = -1 / a, d3 = inv_bx1;
            }
            double wd0 = w * ww * d0, wd1 = w * ww * d1;
            H[0][0] += wd0 * d0;
            H[0][1] += w * hra + wd0 * d1;
            H[1][1] += w * haa + wd1 * d1;
            H[0][2] += wd0 * d2;
            H[0][3] += wd0 * d3;
            H[1][2] += wd1 * d2;
            H[1][3] += wd1 * d3;
            H[2][2] += w * (hA + ww * d2 * d2);
            H[2][3] += w * ww * d2 * d3;
            H[3][3] += w * (hB + ww * d3 * d3);
        }
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
    if (want_h) {
        /* A1's r log(alpha): d2/dr dalpha = 1 / alpha, d2/dalpha2 = -r / alpha^2 */
        H[0][1] += W / al;
        H[1][1] -= W * r / (al * al);
        /* d2/du_k du_l = theta_k theta_l d2/dtheta_k dtheta_l, plus on the
         * diagonal theta_k d/dtheta_k; the penalty (theta_k s_k)^2 adds
         * 4 (theta_k s_k)^2 there. */
        for (int k = 0; k < 4; k++)
            for (int l = k; l < 4; l++) {
                double v = nat[k] * nat[l] * (-H[k][l] / W);
                if (l == k) {
                    double th = nat[k] * scale[k];
                    v += nat[k] * (-g[k] / W) + 4 * penalizer * th * th;
                }
                hess[k * 4 + l] = hess[l * 4 + k] = v;
            }
    }
    return -ll / W + penalizer * pen;
}

double bgnbd_objective(const double u[4], double grad[4], double *hess, const bgnbd_row *rows,
                       size_t n, double penalizer)
{
    return hess ? objective(u, grad, hess, rows, n, penalizer, 1)
                : objective(u, grad, NULL, rows, n, penalizer, 0);
}

static double obj(const double *u, double *g, double *h, void *d)
{
    const mle_rows *f = d; /* mle_fit keeps u inside |u| < MLE_LOG_BOUND */
    return bgnbd_objective(u, g, h, f->rows, f->n, f->penalizer);
}

rfm_status bgnbd_fit(const bgnbd_row *rows, size_t n, double penalizer, bgnbd_fit_result *out,
                     char *err, size_t errlen)
{
    return bgnbd_fit_starts(rows, n, penalizer, BGNBD_STARTS, out, err, errlen);
}

rfm_status bgnbd_fit_starts(const bgnbd_row *rows, size_t n, double penalizer, int nstarts,
                            bgnbd_fit_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (nstarts < 1 || nstarts > BGNBD_STARTS)
        return rfm_fail(err, errlen, RFM_EINVAL, "BG/NBD: 1 to %d starts", BGNBD_STARTS);
    double W = 0, W1 = 0;
    for (size_t i = 0; i < n; i++) {
        W += rows[i].w;
        W1 += rows[i].x > 0 ? rows[i].w : 0;
    }
    if (n == 0 || W < 2)
        return rfm_fail(err, errlen, RFM_EDATA, "BG/NBD needs at least 2 customers");
    if (W1 == 0)
        return rfm_fail(err, errlen, RFM_EDATA,
                        "no customer made a repeat purchase: BG/NBD cannot be fitted");
    if (!(penalizer >= 0))
        return rfm_fail(err, errlen, RFM_EINVAL, "penalizer must be >= 0");
    mle_rows fd = {rows, n, penalizer};
    /* Starts: lifetimes' (all ones), and spreads of the rate scale. */
    const double starts[4 * BGNBD_STARTS] = {
        0,        0,       0,      0,      log(0.5), log(10),  log(0.5), log(2),
        log(0.3), log(50), log(1), log(5), log(1),   log(100), log(0.2), log(0.5)};
    mle_result m;
    rfm_status st = mle_fit(obj, &fd, 4, starts, (size_t)nstarts, 1e-6, 500, &m, err, errlen);
    out->p = (bgnbd_params){exp(m.u[0]), exp(m.u[1]), exp(m.u[2]), exp(m.u[3])};
    MLE_SET_FIT_INFO(out, m, penalizer, W, n);
    double ll = 0;
    for (size_t i = 0; i < n; i++)
        ll += rows[i].w * bgnbd_loglik(&out->p, rows[i].x, rows[i].t_x, rows[i].T);
    out->loglik = ll;
    if (st != RFM_OK)
        return st;
    /* f is a mean over W customers: the covariance of u is cov / W. */
    mle_standard_errors(&m, 4, W, out->cov_log, out->se, out->lo, out->hi);
    static const char *const names[4] = {"r", "alpha", "a", "b"};
    if ((st = mle_check_identified(obj, &fd, 4, &m, W, out->cov_log, names, err, errlen))) {
        out->converged = 0;
        return st;
    }
    return RFM_OK;
}

int bgnbd_fit_predicts(rfm_status st, const bgnbd_fit_result *r)
{
    return (st == RFM_OK || st == RFM_ENOCONVERGE) && isfinite(r->loglik) &&
           isfinite(r->p.r + r->p.alpha + r->p.a + r->p.b) && r->p.r > 0 && r->p.alpha > 0 &&
           r->p.a > 0 && r->p.b > 0;
}

/* 2F1 by its series, in long double; for the rare arguments GSL refuses. */
static double hyp2f1_series(double a, double b, double c, double z)
{
    long double term = 1, sum = 1;
    for (long k = 0; k < 2000000; k++) {
        term *= (long double)(a + k) * (b + k) / ((c + k) * (k + 1)) * z;
        sum += term;
        if (fabsl(term) < 1e-17L * fabsl(sum))
            break;
    }
    return (double)sum;
}

double bgnbd_hyp2f1(double a, double b, double c, double z)
{
    gsl_sf_result res;
    if (fabs(z) < 1 && gsl_sf_hyperg_2F1_e(a, b, c, z, &res) == GSL_SUCCESS && isfinite(res.val))
        return res.val;
    if (z < 0) /* Pfaff: 2F1(a,b;c;z) = (1-z)^-a 2F1(a, c-b; c; z/(z-1)), z/(z-1) in (0,1) */
        return pow(1 - z, -a) * bgnbd_hyp2f1(a, c - b, c, z / (z - 1));
    return hyp2f1_series(a, b, c, z);
}

/* log of the odds-of-death term: log[a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)] */
static double log_death(const bgnbd_params *p, double x, double t_x, double T)
{
    return log(p->a) - log(p->b + x - 1) + (p->r + x) * (log(p->alpha + T) - log(p->alpha + t_x));
}

double bgnbd_p_alive(const bgnbd_params *p, double x, double t_x, double T)
{
    if (x == 0)
        return 1.0;
    double l = log_death(p, x, t_x, T);
    return l > 0 ? exp(-l) / (1 + exp(-l)) : 1 / (1 + exp(l));
}

/* The series of 2F1(A, B; C; z[j]) at n points (|z| <= 0.9, C > 0) in one
 * pass: the coefficients (A)_k (B)_k / ((C)_k k!) are shared, each point
 * keeps its own power of z and sum. A sum stops on its own, so a point's
 * value does not depend on the points beside it, once its tail is bounded
 * below 2^-56 of it. The bound: the ratio of coefficients q_m = (m+A)/(m+C)
 * * (m+B)/(m+1); each factor is monotone in m >= 0 (C > 0) and tends to 1,
 * so over every m >= k its size is at most max(|factor at k|, 1), the
 * later terms' ratios at most rho = that product times |z|, and for rho <
 * 1 the tail at most the term times rho / (1 - rho). ok[j] = 0 for a point
 * whose sum did not settle within SERIES_TERMS terms or is not finite (the
 * caller evaluates it alone). want_d: also the derivatives
 * (hyp2f1_series_many_d), a constant in each of the two instances. */
#define SERIES_TERMS 3000
static inline __attribute__((always_inline)) void series_many(double A, double B, double C,
                                                              const double *z, size_t n,
                                                              double *out, double *d[4],
                                                              unsigned char *ok, const int want_d)
{
    enum { CHUNK = 32 };
    for (size_t j0 = 0; j0 < n; j0 += CHUNK) {
        size_t m = n - j0 < CHUNK ? n - j0 : CHUNK;
        /* Branch-free over the points (a stopped point keeps its sum), so
         * the compiler can take several at once. */
        double pw[CHUNK], sum[CHUNK], az[CHUNK], live[CHUNK];
        double sa[CHUNK], sb[CHUNK], sc[CHUNK], sz[CHUNK];
        for (size_t j = 0; j < m; j++) {
            pw[j] = sum[j] = live[j] = 1, az[j] = fabs(z[j0 + j]);
            sa[j] = sb[j] = sc[j] = sz[j] = 0;
        }
        double c = 1, ca = 0, cb = 0, cc = 0, left = (double)m;
        for (int k = 0; k < SERIES_TERMS && left > 0; k++) {
            if (want_d) {
                double den = (C + k) * (k + 1), q = (A + k) * (B + k) / den;
                double na = ca * q + c * ((B + k) / den), nb = cb * q + c * ((A + k) / den);
                cc = cc * q - c * (q / (C + k));
                ca = na, cb = nb;
            }
            c *= (A + k) * (B + k) / ((C + k) * (k + 1)); /* the coefficient of z^(k+1) */
            double k1 = k + 1,
                   qmax = fmax(fabs((A + k1) / (C + k1)), 1) * fmax(fabs((B + k1) / (k1 + 1)), 1);
            left = 0;
            for (size_t j = 0; j < m; j++) {
                double before = pw[j]; /* z^k */
                pw[j] *= z[j0 + j];
                double term = c * pw[j], s = sum[j] + term, rho = qmax * az[j];
                int more = !(rho < 1 && fabs(term) <= 0x1p-56 * (1 - rho) * fabs(s));
                if (want_d && live[j] > 0) {
                    sa[j] += ca * pw[j], sb[j] += cb * pw[j], sc[j] += cc * pw[j];
                    sz[j] += k1 * c * before;
                }
                sum[j] = live[j] > 0 ? s : sum[j];
                live[j] = more ? live[j] : 0;
                left += live[j];
            }
        }
        for (size_t j = 0; j < m; j++) {
            out[j0 + j] = sum[j];
            ok[j0 + j] = !(live[j] > 0) && isfinite(sum[j]);
            if (want_d) {
                d[0][j0 + j] = sa[j], d[1][j0 + j] = sb[j], d[2][j0 + j] = sc[j];
                d[3][j0 + j] = sz[j];
                ok[j0 + j] &= isfinite(sa[j] + sb[j] + sc[j] + sz[j]);
            }
        }
    }
}

static void hyp2f1_series_many(double A, double B, double C, const double *z, size_t n, double *out,
                               unsigned char *ok)
{
    series_many(A, B, C, z, n, out, NULL, ok, 0);
}

/* hyp2f1_series_many, and beside each sum the sums of the terms'
 * derivatives in A, B, C and z: out[j] the same bits as
 * hyp2f1_series_many's (the same operations on the sum, stopped at the
 * same term), d[0..3][j] its partial derivatives. A coefficient's
 * derivatives by the product rule over its factors q_k = (A+k)(B+k) /
 * ((C+k)(k+1)): d q_k / dA = (B+k) / ((C+k)(k+1)), d q_k / dB = (A+k) /
 * ((C+k)(k+1)), d q_k / dC = -q_k / (C+k); d/dz of c z^(k+1) is (k+1) c
 * z^k. The derivative sums stop with the value's: their tails are of the
 * order of the value's times the number of terms (far below what an
 * interval needs). */
static void hyp2f1_series_many_d(double A, double B, double C, const double *z, size_t n,
                                 double *out, double *d[4], unsigned char *ok)
{
    series_many(A, B, C, z, n, out, d, ok, 1);
}

/* Which form bgnbd_h_many takes h(t) in (see there), and its 2F1's
 * argument: 0, Pfaff's, w = -t/(alpha+T) in (-0.5, 0]; 1, Euler's, z =
 * t/(alpha+T+t). */
static int h_form(const bgnbd_params *p, double t, double T, double *arg)
{
    double w = -t / (p->alpha + T);
    int f = !(w > -0.5);
    *arg = f ? t / (p->alpha + T + t) : w;
    return f;
}

/* (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z) with z = t/(alpha+T+t), computed in
 * the form that neither overflows nor converges slowly, for each t[j] into
 * h[j]. The 2F1 of both forms by hyp2f1_series_many
 * when its argument is within 0.9 of 0 (every t of a horizon in one pass:
 * about six times faster than one GSL call each), else, or when the series
 * does not settle, by bgnbd_hyp2f1. Each h[j] is the same, bit for bit,
 * whatever points come with it (bgnbd_h is this with n = 1). */
void bgnbd_h_many(const bgnbd_params *p, const double *t, size_t n, double x, double T, double *h)
{
    enum { MAXN = 256 }; /* points at once: more go in turns */
    double A = p->r + x, C = p->a + p->b + x - 1, Ae = p->a + p->b - 1 - p->r;
    double arg[2][MAXN], val[2][MAXN];
    size_t at[2][MAXN], cnt[2] = {0, 0};
    unsigned char ok[MAXN];
    if (n > MAXN) {
        bgnbd_h_many(p, t, MAXN, x, T, h);
        bgnbd_h_many(p, t + MAXN, n - MAXN, x, T, h + MAXN);
        return;
    }
    /* Form 0, Pfaff: exactly 2F1(r+x, a-1; a+b+x-1; w), w = -t/(alpha+T) in
     * (-0.5, 0]. Form 1, Euler: exactly (1-z)^(a-1) 2F1(a+b-1-r, a-1;
     * a+b+x-1; z), whose upper parameters stay small whatever x is; the
     * plain form's (1-z)^(r+x) underflows to 0 against a 2F1 that
     * overflows once x is large (found by fuzz_request: x = 1e6 gave 0
     * expected purchases and a negative cltv). */
    for (size_t j = 0; j < n; j++) {
        double a;
        int f = h_form(p, t[j], T, &a);
        at[f][cnt[f]] = j;
        arg[f][cnt[f]++] = a;
    }
    for (int f = 0; f < 2; f++) {
        size_t m = cnt[f], fast = 0;
        if (!m)
            continue;
        double pa = f ? Ae : A;
        unsigned char have[MAXN] = {0};
        if (C > 0 && isfinite(pa + C)) { /* the points the series can take, in one pass */
            double zs[MAXN], sv[MAXN];
            size_t idx[MAXN];
            for (size_t i = 0; i < m; i++)
                if (fabs(arg[f][i]) <= 0.9)
                    idx[fast] = i, zs[fast++] = arg[f][i];
            hyp2f1_series_many(pa, p->a - 1, C, zs, fast, sv, ok);
            for (size_t q = 0; q < fast; q++)
                if (ok[q])
                    val[f][idx[q]] = sv[q], have[idx[q]] = 1;
        }
        for (size_t i = 0; i < m; i++)
            if (!have[i])
                val[f][i] = bgnbd_hyp2f1(pa, p->a - 1, C, arg[f][i]);
        for (size_t i = 0; i < m; i++)
            h[at[f][i]] = f ? exp((p->a - 1) * log1p(-arg[f][i])) * val[f][i] : val[f][i];
    }
}

void bgnbd_h_many_d(const bgnbd_params *p, const double *t, size_t n, double x, double T, double *h,
                    double *dh, unsigned char *have)
{
    enum { MAXN = 256 }; /* points at once: more go in turns */
    if (n > MAXN) {
        bgnbd_h_many_d(p, t, MAXN, x, T, h, dh, have);
        bgnbd_h_many_d(p, t + MAXN, n - MAXN, x, T, h + MAXN, dh + 4 * MAXN, have + MAXN);
        return;
    }
    double A = p->r + x, C = p->a + p->b + x - 1, Ae = p->a + p->b - 1 - p->r;
    memset(have, 0, n);
    unsigned char valued[MAXN] = {0};
    for (int f = 0; f < 2 && C > 0; f++) {
        double pa = f ? Ae : A;
        if (!isfinite(pa + C))
            continue;
        double zs[MAXN], sv[MAXN], dd[4][MAXN];
        double *d[4] = {dd[0], dd[1], dd[2], dd[3]};
        size_t idx[MAXN], m = 0;
        unsigned char ok[MAXN];
        for (size_t j = 0; j < n; j++) {
            double a;
            if (h_form(p, t[j], T, &a) == f && fabs(a) <= 0.9)
                idx[m] = j, zs[m++] = a;
        }
        hyp2f1_series_many_d(pa, p->a - 1, C, zs, m, sv, d, ok);
        for (size_t q = 0; q < m; q++) {
            size_t j = idx[q];
            if (!ok[q])
                continue;
            /* the value as bgnbd_h_many computes it from the same sum */
            h[j] = f ? exp((p->a - 1) * log1p(-zs[q])) * sv[q] : sv[q];
            valued[j] = 1;
            double FA = d[0][q], FB = d[1][q], FC = d[2][q], Fz = d[3][q], z = zs[q];
            double *o = dh + 4 * j; /* d/d log r, log alpha, log a, log b */
            if (!f) {               /* h = F(r+x, a-1; C; w), w = -t / (alpha + T) */
                double at = p->alpha + T;
                o[0] = p->r * FA;
                o[1] = p->alpha * Fz * t[j] / (at * at);
                o[2] = p->a * (FB + FC);
                o[3] = p->b * FC;
            } else { /* h = (1-z)^(a-1) F(a+b-1-r, a-1; C; z), z = t / (alpha + T + t) */
                double l1z = log1p(-z), E = exp((p->a - 1) * l1z), G = sv[q];
                double att = p->alpha + T + t[j];
                o[0] = -p->r * E * FA;
                o[1] = p->alpha * E * (Fz - (p->a - 1) / (1 - z) * G) * (-t[j] / (att * att));
                o[2] = p->a * (l1z * E * G + E * (FA + FB + FC));
                o[3] = p->b * E * (FA + FC);
            }
            have[j] = isfinite(o[0] + o[1] + o[2] + o[3]);
        }
    }
    for (size_t j = 0; j < n; j++) /* the rest as bgnbd_h_many takes them, one by one */
        if (!valued[j])
            bgnbd_h_many(p, &t[j], 1, x, T, &h[j]);
}

double bgnbd_h(const bgnbd_params *p, double t, double x, double T)
{
    double h;
    bgnbd_h_many(p, &t, 1, x, T, &h);
    return h;
}

double bgnbd_expected(const bgnbd_params *p, double t, double x, double t_x, double T)
{
    if (t <= 0)
        return 0.0;
    return bgnbd_expected_from(p, bgnbd_h(p, t, x, T), x, bgnbd_p_alive(p, x, t_x, T));
}

double bgnbd_expected_new(const bgnbd_params *p, double t)
{
    if (t <= 0)
        return 0.0;
    double am1 = p->a - 1;
    if (fabs(am1) < 1e-9)
        am1 = am1 < 0 ? -1e-9 : 1e-9;
    double z = t / (p->alpha + t);
    double h = exp(p->r * log1p(-z)) * bgnbd_hyp2f1(p->r, p->b, p->a + p->b - 1, z);
    double e = (p->a + p->b - 1) / am1 * (1 - h);
    return isfinite(e) && e > 0 ? e : 0.0;
}
