/* pca.h - principal components of a small dense table: the 2-D map of the
 * customer embeddings (/analytics/embedding-map, analytics.h).
 *
 * Purpose: the top k principal axes of n rows of d numbers (float, as the
 * embeddings are stored), from the sample covariance
 *     C = 1/(n-1) sum_i (x_i - mean)(x_i - mean)^T
 * diagonalised by the cyclic Jacobi method (our own, no LAPACK), and the
 * projection of a row onto them. Each axis is a unit vector whose entry of
 * largest magnitude is positive (so a refit gives the same signs).
 *
 * Workload: d up to PCA_MAX_DIM (the embeddings have 32), n up to a few
 * million: one O(n d^2) pass for C, then O(d^3) per Jacobi sweep, a few
 * sweeps. Not here: randomised or incremental PCA, whitening, anything
 * for large d. Pure functions; thread-safe.
 */
#ifndef RFM_PCA_H
#define RFM_PCA_H

#include <stddef.h>

#include "status.h"

#define PCA_MAX_DIM 512

/* x: n x d row-major, finite. Writes mean[d], axes[k x d] (row j the j-th
 * axis, by decreasing variance) and variance[k] (the eigenvalues of C, the
 * variance along each axis) and, when total is not NULL, *total = trace C.
 * RFM_EINVAL when d is not in 1..PCA_MAX_DIM, k not in 1..d, n < 2 or a
 * value is not finite (naming its row and column); RFM_ENOMEM. Outputs are
 * written only on success. */
rfm_status pca_fit(const float *x, size_t n, int d, int k, double *mean, double *axes,
                   double *variance, double *total, char *err, size_t errlen);

/* out[j] = axes[j] . (row - mean), j < k. */
void pca_project(const float *row, int d, int k, const double *mean, const double *axes,
                 double *out);

/* Eigen-decomposition of the symmetric d x d matrix a (row-major, destroyed)
 * by cyclic Jacobi rotations: eigenvalues into w[d] (descending), unit
 * eigenvectors into the rows of v[d x d] (sign as above). Converged when
 * the off-diagonal sum of squares is below 1e-30 of the total, or after 100
 * sweeps. RFM_ENOMEM (w, v untouched) or RFM_OK. */
rfm_status pca_jacobi(double *a, int d, double *w, double *v);

#endif
