/* pca.c - principal components by a covariance and Jacobi rotations (see
 * pca.h). Two passes over the rows (mean, then covariance) so that a
 * large mean does not cancel the variance away. */
#include "pca.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

rfm_status pca_jacobi(double *a, int d, double *w, double *v)
{
    double *vt = malloc((size_t)d * (size_t)d * sizeof *vt); /* columns: eigenvectors */
    int *order = malloc((size_t)d * sizeof *order);
    if (!vt || !order) {
        free(vt), free(order);
        return RFM_ENOMEM;
    }
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            vt[i * d + j] = i == j;
    double total = 0;
    for (int i = 0; i < d * d; i++)
        total += a[i] * a[i];
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int p = 0; p < d; p++)
            for (int q = p + 1; q < d; q++)
                off += 2 * a[p * d + q] * a[p * d + q];
        if (off <= 1e-30 * total || off == 0)
            break;
        for (int p = 0; p < d; p++)
            for (int q = p + 1; q < d; q++) {
                double apq = a[p * d + q];
                if (apq == 0)
                    continue;
                /* Golub and Van Loan's sym.schur2: J^T A J zeroes a_pq. */
                double tau = (a[q * d + q] - a[p * d + p]) / (2 * apq);
                double t = (tau >= 0 ? 1 : -1) / (fabs(tau) + sqrt(1 + tau * tau));
                double c = 1 / sqrt(1 + t * t), s = t * c;
                for (int k = 0; k < d; k++) { /* A J */
                    double akp = a[k * d + p], akq = a[k * d + q];
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for (int k = 0; k < d; k++) { /* J^T (A J) */
                    double apk = a[p * d + k], aqk = a[q * d + k];
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < d; k++) { /* V J */
                    double vkp = vt[k * d + p], vkq = vt[k * d + q];
                    vt[k * d + p] = c * vkp - s * vkq;
                    vt[k * d + q] = s * vkp + c * vkq;
                }
            }
    }
    for (int i = 0; i < d; i++)
        order[i] = i;
    for (int i = 1; i < d; i++) /* insertion sort by eigenvalue, descending */
        for (int j = i; j > 0 && a[order[j] * d + order[j]] > a[order[j - 1] * d + order[j - 1]];
             j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int r = 0; r < d; r++) {
        int c = order[r];
        w[r] = a[c * d + c];
        int big = 0;
        for (int k = 1; k < d; k++)
            if (fabs(vt[k * d + c]) > fabs(vt[big * d + c]))
                big = k;
        double sign = vt[big * d + c] < 0 ? -1 : 1;
        for (int k = 0; k < d; k++)
            v[r * d + k] = sign * vt[k * d + c];
    }
    free(vt), free(order);
    return RFM_OK;
}

rfm_status pca_fit(const float *x, size_t n, int d, int k, double *mean, double *axes,
                   double *variance, double *total, char *err, size_t errlen)
{
    if (d < 1 || d > PCA_MAX_DIM)
        return rfm_fail(err, errlen, RFM_EINVAL, "pca: dimension %d is not in 1..%d", d,
                        PCA_MAX_DIM);
    if (k < 1 || k > d)
        return rfm_fail(err, errlen, RFM_EINVAL, "pca: %d axes asked of %d dimensions", k, d);
    if (n < 2)
        return rfm_fail(err, errlen, RFM_EINVAL, "pca: needs at least 2 rows, not %zu", n);
    size_t dd = (size_t)d;
    double *mu = calloc(dd, sizeof *mu), *c = calloc(dd * dd, sizeof *c);
    double *w = malloc(dd * sizeof *w), *v = malloc(dd * dd * sizeof *v);
    double *z = malloc(dd * sizeof *z);
    if (!mu || !c || !w || !v || !z) {
        free(mu), free(c), free(w), free(v), free(z);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    rfm_status st = RFM_OK;
    for (size_t i = 0; i < n && st == RFM_OK; i++)
        for (size_t j = 0; j < dd; j++) {
            if (!isfinite(x[i * dd + j])) {
                st = rfm_fail(err, errlen, RFM_EINVAL,
                              "pca: row %zu, column %zu is not a finite number", i, j);
                break;
            }
            mu[j] += x[i * dd + j];
        }
    if (st == RFM_OK) {
        for (size_t j = 0; j < dd; j++)
            mu[j] /= (double)n;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < dd; j++)
                z[j] = x[i * dd + j] - mu[j];
            for (size_t a = 0; a < dd; a++)
                for (size_t b = a; b < dd; b++)
                    c[a * dd + b] += z[a] * z[b];
        }
        double tr = 0;
        for (size_t a = 0; a < dd; a++)
            for (size_t b = a; b < dd; b++)
                c[b * dd + a] = c[a * dd + b] /= (double)(n - 1);
        for (size_t a = 0; a < dd; a++)
            tr += c[a * dd + a];
        if (pca_jacobi(c, d, w, v) != RFM_OK) {
            free(mu), free(c), free(w), free(v), free(z);
            return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        }
        memcpy(mean, mu, dd * sizeof *mean);
        memcpy(axes, v, (size_t)k * dd * sizeof *axes);
        memcpy(variance, w, (size_t)k * sizeof *variance);
        if (total)
            *total = tr;
    }
    free(mu), free(c), free(w), free(v), free(z);
    return st;
}

void pca_project(const float *row, int d, int k, const double *mean, const double *axes,
                 double *out)
{
    for (int j = 0; j < k; j++) {
        double s = 0;
        for (int i = 0; i < d; i++)
            s += axes[j * d + i] * ((double)row[i] - mean[i]);
        out[j] = s;
    }
}
