/* kmeans.c - k-means++ (greedy, as scikit-learn) + Lloyd iterations. */
#include "kmeans.h"

#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
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

/* The assignment step for d = 3 (RFM), several points at a time: for each
 * of n points (coordinates in x0, x1, x2), the nearest of the k centres c
 * into a[] and its squared distance into s[]. Each lane computes a point's
 * distances as sqdist does, s = t0^2, then + t1^2, then + t2^2 with
 * t = centre - point (the same bits: the square of -t is that of t), and
 * keeps a centre only when strictly nearer, so ties keep the lower index
 * (kmeans_nearest's answer); no fused multiply-add is emitted (FMA is not
 * among the targets). The lanes past n % width go through kmeans_nearest. */
static void nearest3_tail(const double *x0, const double *x1, const double *x2, size_t from,
                          size_t n, const double *c, size_t k, int *a, double *s)
{
    for (size_t i = from; i < n; i++) {
        double p[3] = {x0[i], x1[i], x2[i]};
        size_t j = kmeans_nearest(c, k, 3, p);
        a[i] = (int)j;
        s[i] = sqdist(p, c + j * 3, 3);
    }
}

#if defined(__x86_64__)
static void nearest3_sse2(const double *x0, const double *x1, const double *x2, size_t n,
                          const double *c, size_t k, int *a, double *s)
{
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        __m128d p0 = _mm_loadu_pd(x0 + i), p1 = _mm_loadu_pd(x1 + i), p2 = _mm_loadu_pd(x2 + i);
        __m128d best = _mm_set1_pd(INFINITY), bi = _mm_setzero_pd();
        for (size_t j = 0; j < k; j++) {
            __m128d t0 = _mm_sub_pd(_mm_set1_pd(c[3 * j]), p0);
            __m128d t1 = _mm_sub_pd(_mm_set1_pd(c[3 * j + 1]), p1);
            __m128d t2 = _mm_sub_pd(_mm_set1_pd(c[3 * j + 2]), p2);
            __m128d d = _mm_mul_pd(t0, t0);
            d = _mm_add_pd(d, _mm_mul_pd(t1, t1));
            d = _mm_add_pd(d, _mm_mul_pd(t2, t2));
            __m128d lt = _mm_cmplt_pd(d, best);
            best = _mm_or_pd(_mm_and_pd(lt, d), _mm_andnot_pd(lt, best));
            bi = _mm_or_pd(_mm_and_pd(lt, _mm_set1_pd((double)j)), _mm_andnot_pd(lt, bi));
        }
        _mm_storeu_pd(s + i, best);
        double b[2];
        _mm_storeu_pd(b, bi);
        a[i] = (int)b[0], a[i + 1] = (int)b[1];
    }
    nearest3_tail(x0, x1, x2, i, n, c, k, a, s);
}

__attribute__((target("avx2"))) static void nearest3_avx2(const double *x0, const double *x1,
                                                          const double *x2, size_t n,
                                                          const double *c, size_t k, int *a,
                                                          double *s)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d p0 = _mm256_loadu_pd(x0 + i), p1 = _mm256_loadu_pd(x1 + i);
        __m256d p2 = _mm256_loadu_pd(x2 + i);
        __m256d best = _mm256_set1_pd(INFINITY), bi = _mm256_setzero_pd();
        for (size_t j = 0; j < k; j++) {
            __m256d t0 = _mm256_sub_pd(_mm256_set1_pd(c[3 * j]), p0);
            __m256d t1 = _mm256_sub_pd(_mm256_set1_pd(c[3 * j + 1]), p1);
            __m256d t2 = _mm256_sub_pd(_mm256_set1_pd(c[3 * j + 2]), p2);
            __m256d d = _mm256_mul_pd(t0, t0);
            d = _mm256_add_pd(d, _mm256_mul_pd(t1, t1));
            d = _mm256_add_pd(d, _mm256_mul_pd(t2, t2));
            __m256d lt = _mm256_cmp_pd(d, best, _CMP_LT_OQ);
            best = _mm256_blendv_pd(best, d, lt);
            bi = _mm256_blendv_pd(bi, _mm256_set1_pd((double)j), lt);
        }
        _mm256_storeu_pd(s + i, best);
        _mm_storeu_si128((__m128i *)(void *)(a + i), _mm256_cvttpd_epi32(bi));
    }
    nearest3_tail(x0, x1, x2, i, n, c, k, a, s);
}
#endif

/* x (n x d, row-major) into its d columns: xs[j * n + i] = x[i * d + j],
 * the layout the batched passes load four points from. */
static void columns(const double *x, size_t n, size_t d, double *xs)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            xs[j * n + i] = x[i * d + j];
}

int kmeans_path_available(kmeans_path path)
{
#if defined(__x86_64__)
    return path == KMEANS_PLAIN || path == KMEANS_SSE2 ||
           (path == KMEANS_AVX2 && __builtin_cpu_supports("avx2"));
#else
    return path == KMEANS_PLAIN;
#endif
}

/* Lloyd's iterations. For d = 3 off the plain path, the assignment step
 * takes several points at a time (nearest3_*, from xs: x's columns) into
 * na[] and dist[]; the rest of the step (labels, counts, the centres'
 * sums over every point in order, the inertia) is the same code for every
 * path, so labels, centres, inertia and iterations are the same, bit for
 * bit (kmeans_fit_path in the tests). prev: k * d doubles of scratch. */
static double lloyd(const double *x, const double *xs, size_t n, size_t d, size_t k, int max_iter,
                    double tol, kmeans_path path, double *c, int *lab, int *na, double *sum,
                    size_t *cnt, double *dist, double *prev, int *iters, int *conv)
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
        int batch = d == 3 && path != KMEANS_PLAIN;
#if defined(__x86_64__)
        if (batch && path == KMEANS_AVX2)
            nearest3_avx2(xs, xs + n, xs + 2 * n, n, c, k, na, dist);
        else if (batch)
            nearest3_sse2(xs, xs + n, xs + 2 * n, n, c, k, na, dist);
#endif
        for (size_t i = 0; i < n; i++) {
            size_t a;
            if (batch)
                a = (size_t)na[i];
            else {
                a = kmeans_nearest(c, k, d, x + i * d);
                dist[i] = sqdist(x + i * d, c + a * d, d);
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
    }
    *iters = it + (*conv ? 1 : 0);
    return inertia;
}

rfm_status kmeans_fit_path(const double *x, size_t n, size_t d, size_t k, int restarts,
                           int max_iter, rfm_rng *rng, kmeans_path path, kmeans_model *out,
                           int *labels, char *err, size_t errlen)
{
    if (!kmeans_path_available(path))
        return rfm_fail(err, errlen, RFM_EINVAL, "k-means: path %d not available here", (int)path);
    if (k == 0 || d == 0)
        return rfm_fail(err, errlen, RFM_EINVAL, "k and dimension must be positive");
    if (n < k)
        return rfm_fail(err, errlen, RFM_EDATA, "%zu points cannot form %zu clusters", n, k);
    if (restarts < 1 || max_iter < 1)
        return rfm_fail(err, errlen, RFM_EINVAL, "restarts and max_iter must be at least 1");
    double *best = malloc(k * d * sizeof *best), *c = malloc(k * d * sizeof *c);
    double *sum = malloc(k * d * sizeof *sum), *dist = malloc(n * sizeof *dist);
    double *prev = malloc(k * d * sizeof *prev), *xs = malloc(n * d * sizeof *xs);
    size_t *cnt = malloc(k * sizeof *cnt);
    int *lab = malloc(n * sizeof *lab), *na = malloc(n * sizeof *na);
    if (!best || !c || !sum || !dist || !prev || !xs || !cnt || !lab || !na) {
        free(best), free(c), free(sum), free(dist), free(prev), free(xs), free(cnt), free(lab);
        free(na);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for k-means on %zu points", n);
    }
    columns(x, n, d, xs); /* for the batched assignment */
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
        double in = lloyd(x, xs, n, d, k, max_iter, tol, path, c, lab, na, sum, cnt, dist, prev,
                          &it, &conv);
        if (in < best_inertia) {
            best_inertia = in;
            best_it = it;
            best_conv = conv;
            memcpy(best, c, k * d * sizeof *c);
            memcpy(labels, lab, n * sizeof *lab);
        }
    }
    free(c), free(sum), free(dist), free(prev), free(xs), free(cnt), free(lab), free(na);
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
    kmeans_path path = kmeans_path_available(KMEANS_AVX2)   ? KMEANS_AVX2
                       : kmeans_path_available(KMEANS_SSE2) ? KMEANS_SSE2
                                                            : KMEANS_PLAIN;
    return kmeans_fit_path(x, n, d, k, restarts, max_iter, rng, path, out, labels, err, errlen);
}

void kmeans_free(kmeans_model *m)
{
    free(m->centroids);
    m->centroids = NULL;
}

#if defined(__x86_64__)
/* kmeans_distances for d = 3 with AVX2: each row whole (both triangles:
 * d(j, i) from x_j - x_i, the negation of x_i - x_j, squares to the same
 * bits), four columns at a time, so every store is along the row; sqrt
 * and the rounding to float are IEEE's, as the scalar loop's. xs: x's
 * three columns. */
__attribute__((target("avx2"))) static void distances3_avx2(const double *xs, size_t m, float *dist)
{
    const double *x0 = xs, *x1 = xs + m, *x2 = xs + 2 * m;
    for (size_t i = 0; i < m; i++) {
        float *row = dist + i * m;
        __m256d p0 = _mm256_set1_pd(x0[i]), p1 = _mm256_set1_pd(x1[i]);
        __m256d p2 = _mm256_set1_pd(x2[i]);
        size_t j = 0;
        for (; j + 4 <= m; j += 4) {
            __m256d t0 = _mm256_sub_pd(p0, _mm256_loadu_pd(x0 + j));
            __m256d t1 = _mm256_sub_pd(p1, _mm256_loadu_pd(x1 + j));
            __m256d t2 = _mm256_sub_pd(p2, _mm256_loadu_pd(x2 + j));
            __m256d s = _mm256_mul_pd(t0, t0);
            s = _mm256_add_pd(s, _mm256_mul_pd(t1, t1));
            s = _mm256_add_pd(s, _mm256_mul_pd(t2, t2));
            _mm_storeu_ps(row + j, _mm256_cvtpd_ps(_mm256_sqrt_pd(s)));
        }
        for (; j < m; j++) {
            double q[3] = {x0[i], x1[i], x2[i]}, r[3] = {x0[j], x1[j], x2[j]};
            row[j] = (float)sqrt(sqdist(q, r, 3));
        }
        row[i] = 0;
    }
}
#endif

void kmeans_distances(const double *x, size_t m, size_t d, float *dist)
{
#if defined(__x86_64__)
    double *xs;
    if (d == 3 && m >= 4 && kmeans_path_available(KMEANS_AVX2) &&
        (xs = malloc(3 * m * sizeof *xs)) != NULL) {
        columns(x, m, 3, xs);
        distances3_avx2(xs, m, dist);
        free(xs);
        return;
    }
#endif
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
