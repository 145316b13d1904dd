/* kmeans.c - k-means++ (greedy, as scikit-learn) + Lloyd iterations. */
#include "kmeans.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double sqdist(const double *a, const double *b, size_t d)
{
    double s = 0;
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

/* One restart; returns inertia. */
/* kmeans_nearest for d = 3 (RFM), with the nearest squared distance: the
 * same sums in the same order as sqdist, so the same bits, without the
 * loop over d. */
static inline size_t nearest3(const double *c, size_t k, const double *p, double *bd)
{
    size_t best = 0;
    double b = INFINITY;
    for (size_t i = 0; i < k; i++) {
        double t0 = c[3 * i] - p[0], t1 = c[3 * i + 1] - p[1], t2 = c[3 * i + 2] - p[2];
        double s = 0;
        s += t0 * t0;
        s += t1 * t1;
        s += t2 * t2;
        if (s < b) {
            b = s;
            best = i;
        }
    }
    *bd = b;
    return best;
}

static double lloyd(const double *x, size_t n, size_t d, size_t k, int max_iter, double *c,
                    int *lab, double *sum, size_t *cnt, double *dist, int *iters, int *conv)
{
    for (size_t i = 0; i < n; i++)
        lab[i] = -1;
    *conv = 0;
    int it;
    double inertia = 0;
    for (it = 0; it < max_iter; it++) {
        size_t changed = 0;
        inertia = 0;
        memset(sum, 0, k * d * sizeof *sum);
        memset(cnt, 0, k * sizeof *cnt);
        for (size_t i = 0; i < n; i++) {
            /* dist[i] = sqdist(x + i * d, c + a * d, d) either way */
            size_t a = d == 3 ? nearest3(c, k, x + i * 3, &dist[i]) : 0;
            if (d != 3 || !(dist[i] < INFINITY)) {
                a = kmeans_nearest(c, k, d, x + i * d);
                dist[i] = sqdist(x + i * d, c + a * d, d);
            }
            inertia += dist[i];
            if (lab[i] != (int)a) {
                lab[i] = (int)a;
                changed++;
            }
            cnt[a]++;
            for (size_t j = 0; j < d; j++)
                sum[a * d + j] += x[i * d + j];
        }
        if (changed == 0) {
            *conv = 1;
            break;
        }
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
    }
    *iters = it + (*conv ? 1 : 0);
    return inertia;
}

rfm_status kmeans_fit(const double *x, size_t n, size_t d, size_t k, int restarts, int max_iter,
                      rfm_rng *rng, kmeans_model *out, int *labels, char *err, size_t errlen)
{
    if (k == 0 || d == 0)
        return rfm_fail(err, errlen, RFM_EINVAL, "k and dimension must be positive");
    if (n < k)
        return rfm_fail(err, errlen, RFM_EDATA, "%zu points cannot form %zu clusters", n, k);
    if (restarts < 1 || max_iter < 1)
        return rfm_fail(err, errlen, RFM_EINVAL, "restarts and max_iter must be at least 1");
    double *best = malloc(k * d * sizeof *best), *c = malloc(k * d * sizeof *c);
    double *sum = malloc(k * d * sizeof *sum), *dist = malloc(n * sizeof *dist);
    size_t *cnt = malloc(k * sizeof *cnt);
    int *lab = malloc(n * sizeof *lab);
    if (!best || !c || !sum || !dist || !cnt || !lab) {
        free(best), free(c), free(sum), free(dist), free(cnt), free(lab);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for k-means on %zu points", n);
    }
    double best_inertia = INFINITY;
    int best_it = 0, best_conv = 0;
    for (int r = 0; r < restarts; r++) {
        int it, conv;
        seed_plusplus(x, n, d, k, rng, c, dist);
        double in = lloyd(x, n, d, k, max_iter, c, lab, sum, cnt, dist, &it, &conv);
        if (in < best_inertia) {
            best_inertia = in;
            best_it = it;
            best_conv = conv;
            memcpy(best, c, k * d * sizeof *c);
            memcpy(labels, lab, n * sizeof *lab);
        }
    }
    free(c), free(sum), free(dist), free(cnt), free(lab);
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

double kmeans_silhouette_matrix(const float *dist, size_t m, const int *labels, size_t k)
{
    double *sums = malloc(k * sizeof *sums);
    size_t *size = calloc(k, sizeof *size);
    double total = 0;
    if (!sums || !size) {
        free(sums), free(size);
        return NAN;
    }
    for (size_t i = 0; i < m; i++)
        size[labels[i]]++;
    for (size_t i = 0; i < m; i++) {
        size_t li = (size_t)labels[i];
        if (size[li] <= 1)
            continue; /* silhouette 0 */
        memset(sums, 0, k * sizeof *sums);
        const float *row = dist + i * m;
        for (size_t j = 0; j < m; j++)
            sums[labels[j]] += row[j];
        double a = sums[li] / (double)(size[li] - 1), b = INFINITY;
        for (size_t c = 0; c < k; c++)
            if (c != li && size[c] > 0 && sums[c] / (double)size[c] < b)
                b = sums[c] / (double)size[c];
        if (isfinite(b)) {
            double mx = a > b ? a : b;
            total += mx > 0 ? (b - a) / mx : 0;
        }
    }
    free(sums), free(size);
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
