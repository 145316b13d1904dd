/* kmeans.h - Lloyd's k-means with k-means++ seeding, restarts, silhouette.
 *
 * Workload: thousands to a few million points in a handful of dimensions
 * (standardised RFM features). Deterministic: the caller's rng drives the
 * seeding, and ties go to the lowest cluster index.
 * Thread safety: pure functions of their arguments.
 */
#ifndef RFM_KMEANS_H
#define RFM_KMEANS_H

#include <stddef.h>

#include "rng.h"
#include "status.h"

typedef struct {
    size_t k, d;
    double *centroids; /* k x d, row-major; owned */
    double inertia;    /* sum of squared distances to the nearest centroid */
    int iterations;    /* Lloyd iterations of the best restart */
    int converged;     /* the best restart stopped before max_iter */
} kmeans_model;

/* scikit-learn's tolerance (KMeans(tol=1e-4)): relative to the mean
 * variance of the data's columns. */
#define KMEANS_TOL 1e-4

/* Fit on x (n x d, row-major) with `restarts` k-means++ seedings, keeping
 * the lowest inertia; a restart stops, as scikit-learn's Lloyd does, when
 * no label changes, when the centres' total squared move is at most
 * KMEANS_TOL times the mean column variance of x (then every point takes
 * its nearest final centre), or after max_iter iterations. labels (n
 * entries) receives the assignment of the best restart. On success
 * out->centroids is new (kmeans_free). */
rfm_status kmeans_fit(const double *x, size_t n, size_t d, size_t k, int restarts, int max_iter,
                      rfm_rng *rng, kmeans_model *out, int *labels, char *err, size_t errlen);

/* How the assignment step computes distances: one point at a time
 * (kmeans_nearest), or for d = 3 two (SSE2) or four (AVX2) points at a
 * time. kmeans_fit takes the widest the CPU has; every path gives the same
 * result, bit for bit (the tests hold each to KMEANS_PLAIN).
 * kmeans_fit_path is kmeans_fit on the given path (RFM_EINVAL when
 * kmeans_path_available says the CPU lacks it). */
typedef enum { KMEANS_PLAIN, KMEANS_SSE2, KMEANS_AVX2 } kmeans_path;
int kmeans_path_available(kmeans_path path);
rfm_status kmeans_fit_path(const double *x, size_t n, size_t d, size_t k, int restarts,
                           int max_iter, rfm_rng *rng, kmeans_path path, kmeans_model *out,
                           int *labels, char *err, size_t errlen);
void kmeans_free(kmeans_model *m);

/* Index of the centroid nearest to point p (d values). */
size_t kmeans_nearest(const double *centroids, size_t k, size_t d, const double *p);

/* Mean silhouette coefficient (Rousseeuw 1987, as scikit-learn computes
 * it: a point alone in its cluster scores 0). When sample > 0 and n >
 * sample, it is computed, as scikit-learn's silhouette_score(sample_size=)
 * does, on `sample` points drawn without replacement with rng, among
 * themselves. *out in [-1, 1]. */
rfm_status kmeans_silhouette(const double *x, size_t n, size_t d, const int *labels, size_t k,
                             size_t sample, rfm_rng *rng, double *out, char *err, size_t errlen);

/* The same from a precomputed m x m matrix of Euclidean distances (float,
 * row-major), for measuring several labelings of one sample cheaply. Each
 * point's sum of distances to a cluster adds its terms in column order. */
double kmeans_silhouette_matrix(const float *dist, size_t m, const int *labels, size_t k);
/* Fill dist (m x m) with the pairwise distances of m points. */
void kmeans_distances(const double *x, size_t m, size_t d, float *dist);

#endif
