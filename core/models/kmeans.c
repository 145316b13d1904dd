/* kmeans.c - k-means++ (greedy, as scikit-learn) + Lloyd iterations. */
#include "kmeans.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline double sqdist(const double *a, const double *b, size_t d)
{
    double s = 0;
    if (d == 3) { /* RFM: the loop below unrolled, the same sums in order */
        double t0 = a[0] - b[0], t1 = a[1] - b[1], t2 = a[2] - b[2];
        s += t0 * t0;
        s += t1 * t1;
        s += t2 * t2;
        return s;
    }
    for (size_t j = 0; j < d; j++) {
        double t = a[j] - b[j];
        s += t * t;
    }
    return s;
}

size_t kmeans_nearest(const double *c, size_t k, size_t d, const double *p)
{
    size_t best = 0;
    double bd = INFINITY;
    for (size_t i = 0; i < k; i++) {
        double dd = sqdist(c + i * d, p, d);
        if (dd < bd) {
            bd = dd;
            best = i;
        }
    }
    return best;
}

/* Index drawn with probability proportional to w (total > 0). */
static size_t draw(const double *w, size_t n, double total, rfm_rng *rng)
{
    double u = rfm_rng_uniform(rng) * total, acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += w[i];
        if (u < acc)
            return i;
    }
    for (size_t i = n; i-- > 0;)
        if (w[i] > 0)
            return i;
    return n - 1;
}

/* Greedy k-means++: each new centre is the best of 2 + log(k) candidates
 * drawn by D^2 weighting (Arthur & Vassilvitskii 2007; scikit-learn). */
static void seed_plusplus(const double *x, size_t n, size_t d, size_t k, rfm_rng *rng, double *c,
                          double *dist)
{
    size_t trials = 2 + (size_t)log((double)k);
    size_t first = rfm_rng_below(rng, n);
    memcpy(c, x + first * d, d * sizeof *c);
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += dist[i] = sqdist(x + i * d, c, d);
    for (size_t m = 1; m < k; m++) {
        size_t best = 0;
        double best_total = INFINITY;
        for (size_t t = 0; t < trials; t++) {
            size_t id = total > 0 ? draw(dist, n, total, rng) : rfm_rng_below(rng, n);
            double tot = 0;
            for (size_t i = 0; i < n; i++) {
                double dd = sqdist(x + i * d, x + id * d, d);
                tot += dd < dist[i] ? dd : dist[i];
            }
            if (tot < best_total) {
                best_total = tot;
                best = id;
            }
        }
        memcpy(c + m * d, x + best * d, d * sizeof *c);
        total = 0;
        for (size_t i = 0; i < n; i++) {
            double dd = sqdist(x + i * d, c + m * d, d);
            if (dd < dist[i])
                dist[i] = dd;
            total += dist[i];
        }
    }
}

/* The centre nearest to p for d = 3 (RFM) with its squared distance, the
 * same sums in the same order as sqdist (so the same bits, without the loop
 * over d), and the second-nearest squared distance (INFINITY for k = 1),
 * which does not change which centre is nearest. */
static inline size_t nearest3_two(const double *c, size_t k, const double *p, double *bd,
                                  double *second)
{
    size_t best = 0;
    double b = INFINITY, b2 = INFINITY;
    for (size_t i = 0; i < k; i++) {
        double t0 = c[3 * i] - p[0], t1 = c[3 * i + 1] - p[1], t2 = c[3 * i + 2] - p[2];
        double s = 0;
        s += t0 * t0;
        s += t1 * t1;
        s += t2 * t2;
        if (s < b) {
            b2 = b;
            b = s;
            best = i;
        } else if (s < b2)
            b2 = s;
    }
    *bd = b;
    *second = b2;
    return best;
}

/* Lloyd's iterations. For d = 3 (RFM) with Hamerly's bounds (2010): a
 * point whose distance to its centre is below both a lower bound on its
 * distance to every other centre and half its centre's distance to the
 * nearest other one keeps its centre without the k distances. Each bound
 * is loosened by a relative 1e-9 beyond what rounding could move it, so a
 * point is kept only when its centre is nearer than any other by far more
 * than rounding: the one Lloyd's comparisons pick. Every point's distance
 * to its centre is still computed (the same sums, for the inertia and the
 * farthest point), and the centres are summed over every point in order,
 * so labels, centres, inertia and iterations are the same, bit for bit,
 * as without the bounds (kmeans_fit_plain in the tests). lb: n, prev: k *
 * d, half: k doubles of scratch. */
static double lloyd(const double *x, size_t n, size_t d, size_t k, int max_iter, double tol,
                    double *c, int *lab, double *sum, size_t *cnt, double *dist, double *lb,
                    double *prev, double *half, int use_bounds, int *iters, int *conv)
{
    for (size_t i = 0; i < n; i++)
        lab[i] = -1;
    *conv = 0;
    int it, bounds = 0; /* lb and half hold for the current centres */
    double inertia = 0, shrink = 0;
    for (it = 0; it < max_iter; it++) {
        size_t changed = 0;
        inertia = 0;
        memset(sum, 0, k * d * sizeof *sum);
        memset(cnt, 0, k * sizeof *cnt);
        for (size_t i = 0; i < n; i++) {
            size_t a = 0;
            if (d == 3 && bounds) {
                const double *p = x + i * 3, *ca = c + (size_t)lab[i] * 3;
                double t0 = ca[0] - p[0], t1 = ca[1] - p[1], t2 = ca[2] - p[2], s = 0;
                s += t0 * t0;
                s += t1 * t1;
                s += t2 * t2;
                double l = lb[i] - shrink, h = half[lab[i]];
                lb[i] = l;
                if (sqrt(s) * (1 + 1e-9) < (l > h ? l : h)) {
                    a = (size_t)lab[i];
                    dist[i] = s;
                } else {
                    double s2;
                    a = nearest3_two(c, k, p, &dist[i], &s2);
                    lb[i] = sqrt(s2) * (1 - 1e-9);
                }
            } else if (d == 3) {
                double s2;
                a = nearest3_two(c, k, x + i * 3, &dist[i], &s2);
                lb[i] = sqrt(s2) * (1 - 1e-9); /* read only with the bounds */
            }
            /* dist[i] = sqdist(x + i * d, c + a * d, d) either way */
            if (d != 3 || !(dist[i] < INFINITY)) {
                a = kmeans_nearest(c, k, d, x + i * d);
                dist[i] = sqdist(x + i * d, c + a * d, d);
                if (d == 3)
                    lb[i] = 0; /* no bound from a distance that is not finite */
            }
            inertia += dist[i];
            if (lab[i] != (int)a) {
                lab[i] = (int)a;
                changed++;
            }
            cnt[a]++;
            if (d == 3) {
                sum[a * 3] += x[i * 3];
                sum[a * 3 + 1] += x[i * 3 + 1];
                sum[a * 3 + 2] += x[i * 3 + 2];
            } else
                for (size_t j = 0; j < d; j++)
                    sum[a * d + j] += x[i * d + j];
        }
        if (changed == 0) {
            *conv = 1;
            break;
        }
        memcpy(prev, c, k * d * sizeof *c);
        for (size_t a = 0; a < k; a++) {
            if (cnt[a] == 0) {
                /* Empty cluster: move it to the point farthest from its centre. */
                size_t far = 0;
                for (size_t i = 1; i < n; i++)
                    if (dist[i] > dist[far])
                        far = i;
                memcpy(c + a * d, x + far * d, d * sizeof *c);
                dist[far] = 0;
                continue;
            }
            for (size_t j = 0; j < d; j++)
                c[a * d + j] = sum[a * d + j] / (double)cnt[a];
        }
        /* scikit-learn's stop: the centres' total squared move at most tol;
         * then the labels and inertia of the centres reached (its last
         * E-step), as the restarts compare them. */
        double moved = 0;
        for (size_t a = 0; a < k; a++)
            moved += sqdist(prev + a * d, c + a * d, d);
        if (moved <= tol) {
            inertia = 0;
            for (size_t i = 0; i < n; i++) {
                size_t a = kmeans_nearest(c, k, d, x + i * d);
                lab[i] = (int)a;
                inertia += sqdist(x + i * d, c + a * d, d);
            }
            *conv = 1;
            break;
        }
        if (d == 3 && use_bounds) {
            /* Every other centre moved by at most the largest move; the
             * half-distances from the new centres. */
            double most = 0;
            for (size_t a = 0; a < k; a++)
                most = fmax(most, sqrt(sqdist(prev + a * 3, c + a * 3, 3)));
            shrink = most * (1 + 1e-9);
            for (size_t a = 0; a < k; a++) {
                double nearest = INFINITY;
                for (size_t b = 0; b < k; b++)
                    if (b != a)
                        nearest = fmin(nearest, sqrt(sqdist(c + a * 3, c + b * 3, 3)));
                half[a] = 0.5 * nearest * (1 - 1e-9);
            }
            bounds = isfinite(shrink);
        }
    }
    *iters = it + (*conv ? 1 : 0);
    return inertia;
}

static rfm_status fit(const double *x, size_t n, size_t d, size_t k, int restarts, int max_iter,
                      rfm_rng *rng, int use_bounds, kmeans_model *out, int *labels, char *err,
                      size_t errlen)
{
    if (k == 0 || d == 0)
        return rfm_fail(err, errlen, RFM_EINVAL, "k and dimension must be positive");
    if (n < k)
        return rfm_fail(err, errlen, RFM_EDATA, "%zu points cannot form %zu clusters", n, k);
    if (restarts < 1 || max_iter < 1)
        return rfm_fail(err, errlen, RFM_EINVAL, "restarts and max_iter must be at least 1");
    double *best = malloc(k * d * sizeof *best), *c = malloc(k * d * sizeof *c);
    double *sum = malloc(k * d * sizeof *sum), *dist = malloc(n * sizeof *dist);
    double *lb = malloc(n * sizeof *lb), *prev = malloc(k * d * sizeof *prev);
    double *half = malloc(k * sizeof *half);
    size_t *cnt = malloc(k * sizeof *cnt);
    int *lab = malloc(n * sizeof *lab);
    if (!best || !c || !sum || !dist || !lb || !prev || !half || !cnt || !lab) {
        free(best), free(c), free(sum), free(dist), free(lb), free(prev), free(half);
        free(cnt), free(lab);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for k-means on %zu points", n);
    }
    /* scikit-learn's tolerance: KMEANS_TOL of the mean variance of x's
     * columns (population variances, as numpy's). */
    double tol = 0;
    for (size_t j = 0; j < d; j++) {
        double mean = 0, var = 0;
        for (size_t i = 0; i < n; i++)
            mean += x[i * d + j];
        mean /= (double)n;
        for (size_t i = 0; i < n; i++)
            var += (x[i * d + j] - mean) * (x[i * d + j] - mean);
        tol += var / (double)n;
    }
    tol = tol / (double)d * KMEANS_TOL;
    double best_inertia = INFINITY;
    int best_it = 0, best_conv = 0;
    for (int r = 0; r < restarts; r++) {
        int it, conv;
        seed_plusplus(x, n, d, k, rng, c, dist);
        double in = lloyd(x, n, d, k, max_iter, tol, c, lab, sum, cnt, dist, lb, prev, half,
                          use_bounds, &it, &conv);
        if (in < best_inertia) {
            best_inertia = in;
            best_it = it;
            best_conv = conv;
            memcpy(best, c, k * d * sizeof *c);
            memcpy(labels, lab, n * sizeof *lab);
        }
    }
    free(c), free(sum), free(dist), free(lb), free(prev), free(half), free(cnt), free(lab);
    /* Labels of the final centroids (Lloyd's last step may have moved them). */
    best_inertia = 0;
    for (size_t i = 0; i < n; i++) {
        labels[i] = (int)kmeans_nearest(best, k, d, x + i * d);
        best_inertia += sqdist(x + i * d, best + (size_t)labels[i] * d, d);
    }
    out->k = k;
    out->d = d;
    out->centroids = best;
    out->inertia = best_inertia;
    out->iterations = best_it;
    out->converged = best_conv;
    return RFM_OK;
}

rfm_status kmeans_fit(const double *x, size_t n, size_t d, size_t k, int restarts, int max_iter,
                      rfm_rng *rng, kmeans_model *out, int *labels, char *err, size_t errlen)
{
    return fit(x, n, d, k, restarts, max_iter, rng, 1, out, labels, err, errlen);
}

rfm_status kmeans_fit_plain(const double *x, size_t n, size_t d, size_t k, int restarts,
                            int max_iter, rfm_rng *rng, kmeans_model *out, int *labels, char *err,
                            size_t errlen)
{
    return fit(x, n, d, k, restarts, max_iter, rng, 0, out, labels, err, errlen);
}

void kmeans_free(kmeans_model *m)
{
    free(m->centroids);
    m->centroids = NULL;
}

void kmeans_distances(const double *x, size_t m, size_t d, float *dist)
{
    for (size_t i = 0; i < m; i++) {
        dist[i * m + i] = 0;
        for (size_t j = i + 1; j < m; j++)
            dist[i * m + j] = dist[j * m + i] = (float)sqrt(sqdist(x + i * d, x + j * d, d));
    }
}

/* Row i's silhouette from its sums of distances to each cluster. */
static double silhouette_of(const double *sums, const size_t *size, size_t k, size_t li)
{
    double a = sums[li] / (double)(size[li] - 1), b = INFINITY;
    for (size_t c = 0; c < k; c++)
        if (c != li && size[c] > 0 && sums[c] / (double)size[c] < b)
            b = sums[c] / (double)size[c];
    if (!isfinite(b))
        return 0;
    double mx = a > b ? a : b;
    return mx > 0 ? (b - a) / mx : 0;
}

double kmeans_silhouette_matrix(const float *dist, size_t m, const int *labels, size_t k)
{
    /* The columns by cluster (each cluster's in ascending order: a stable
     * counting sort), so that a row's sum for a cluster is a run of loads
     * into a register rather than an addition through memory at the
     * column's label; four rows at a time, four chains of additions. Each
     * sum still adds its terms in column order: the same bits as one row
     * at a time over the columns. */
    enum { R = 4 };
    double *sums = malloc(R * k * sizeof *sums);
    size_t *size = calloc(k, sizeof *size), *start = malloc((k + 1) * sizeof *start);
    size_t *next = malloc(k * sizeof *next), *col = malloc((m ? m : 1) * sizeof *col);
    double total = 0;
    if (!sums || !size || !start || !next || !col) {
        free(sums), free(size), free(start), free(next), free(col);
        return NAN;
    }
    for (size_t i = 0; i < m; i++)
        size[labels[i]]++;
    start[0] = 0;
    for (size_t c = 0; c < k; c++)
        start[c + 1] = start[c] + size[c], next[c] = start[c];
    for (size_t j = 0; j < m; j++)
        col[next[labels[j]]++] = j;
    for (size_t i = 0; i < m; i += R) {
        size_t nr = m - i < R ? m - i : R;
        const float *r0 = dist + i * m, *r1 = nr > 1 ? r0 + m : r0, *r2 = nr > 2 ? r0 + 2 * m : r0,
                    *r3 = nr > 3 ? r0 + 3 * m : r0;
        for (size_t c = 0; c < k; c++) {
            double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (size_t q = start[c]; q < start[c + 1]; q++) {
                size_t j = col[q];
                a0 += r0[j];
                a1 += r1[j];
                a2 += r2[j];
                a3 += r3[j];
            }
            sums[c] = a0, sums[k + c] = a1, sums[2 * k + c] = a2, sums[3 * k + c] = a3;
        }
        for (size_t r = 0; r < nr; r++) {
            size_t li = (size_t)labels[i + r];
            if (size[li] > 1) /* else silhouette 0 */
                total += silhouette_of(sums + r * k, size, k, li);
        }
    }
    free(sums), free(size), free(start), free(next), free(col);
    return total / (double)m;
}

rfm_status kmeans_silhouette(const double *x, size_t n, size_t d, const int *labels, size_t k,
                             size_t sample, rfm_rng *rng, double *out, char *err, size_t errlen)
{
    size_t m = sample > 0 && n > sample ? sample : n;
    size_t *idx = malloc(n * sizeof *idx);
    double *sums = malloc(k * sizeof *sums);
    size_t *size = calloc(k, sizeof *size);
    if (!idx || !sums || !size) {
        free(idx), free(sums), free(size);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for silhouette");
    }
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    if (m < n) /* the first m of idx are the sample */
        rfm_rng_shuffle(rng, idx, n, m, sizeof *idx);
    for (size_t s = 0; s < m; s++)
        size[labels[idx[s]]]++;
    double total = 0;
    for (size_t s = 0; s < m; s++) {
        size_t i = idx[s];
        size_t li = (size_t)labels[i];
        if (size[li] <= 1)
            continue; /* silhouette 0 */
        memset(sums, 0, k * sizeof *sums);
        for (size_t t = 0; t < m; t++)
            sums[labels[idx[t]]] += sqrt(sqdist(x + i * d, x + idx[t] * d, d));
        double a = sums[li] / (double)(size[li] - 1), b = INFINITY;
        for (size_t c = 0; c < k; c++)
            if (c != li && size[c] > 0 && sums[c] / (double)size[c] < b)
                b = sums[c] / (double)size[c];
        if (isfinite(b)) {
            double mx = a > b ? a : b;
            total += mx > 0 ? (b - a) / mx : 0;
        }
    }
    free(idx), free(sums), free(size);
    *out = total / (double)m;
    return RFM_OK;
}
