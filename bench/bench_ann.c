/* bench_ann.c - build and query times of the lookalike index (core/ann).
 *
 * Synthetic random unit vectors (the hard case for HNSW: no cluster
 * structure to exploit). Measures, single-threaded queries as the server
 * runs them:
 *   - HNSW on N (default 1,000,000) x 32: build time (all cores), save and
 *     load time and file size, query latency p50/p99 for customer queries,
 *     recall@10 against a brute-force scan, and a filtered query (1 in 4).
 *   - exact inner-product index on 100,000 x 32: query latency p50/p99.
 *   - with --model PATH (models/customer2vec.faiss): every customer of a
 *     trained index queried twice, k=10: the first query (the scan, which
 *     makes the customer's memo) against the second (read from the memo),
 *     and how many of the memos' cuts are strict (ann.h).
 *
 * Build and run (from the repository root, after `make build/libcore.a`):
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Icore bench/bench_ann.c build/libcore.a \
 *      $(pkg-config --libs gsl zlib) -lfaiss -lopenblas -lgomp -lstdc++ -lpthread -lm \
 *      -o build/bench_ann && build/bench_ann [N [efSearch [M]]]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>
#include <faiss/c_api/utils/distances_c.h>

#include "ann.h"
#include "rng.h"
#include "../tests/sim.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static char **make_ids(int64_t n)
{
    char **ids = malloc((size_t)n * sizeof *ids);
    char *buf = malloc((size_t)n * 24);
    for (int64_t i = 0; i < n; i++) {
        ids[i] = buf + (size_t)i * 24;
        snprintf(ids[i], 24, "C%08lld", (long long)i);
    }
    return ids;
}

static int keep_quarter(int64_t row, void *ctx)
{
    (void)ctx;
    return row % 4 == 0;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench_ann: %s: %s\n", what, err);
    exit(1);
}

/* One line of nq query times t (microseconds; sorted here): p50, p99, mean. */
static void summary(const char *label, double *t, int64_t nq)
{
    qsort(t, (size_t)nq, sizeof *t, cmp_double);
    double mean = 0;
    for (int64_t i = 0; i < nq; i++)
        mean += t[i];
    printf("  %-34s p50 %7.2f us  p99 %7.2f us  mean %7.2f us  (%lld queries, 1 thread)\n", label,
           t[nq / 2], t[nq * 99 / 100], mean / (double)nq, (long long)nq);
}

/* Latency of nq customer queries (k = 10), in microseconds. */
static void latency(const ann_index *ix, int nq, ann_filter keep, const char *label)
{
    double *t = malloc((size_t)nq * sizeof *t);
    int64_t rows[10];
    float sims[10];
    int nf;
    char err[RFM_ERRLEN];
    rfm_rng rng;
    rfm_rng_seed(&rng, 77);
    for (int i = 0; i < nq; i++) {
        int64_t r = (int64_t)rfm_rng_below(&rng, (uint64_t)ann_count(ix));
        double t0 = now();
        if (ann_search_row(ix, r, 10, keep, NULL, rows, sims, &nf, err, sizeof err) != 0)
            die("search", err);
        t[i] = (now() - t0) * 1e6;
    }
    summary(label, t, nq);
    free(t);
}

/* recall@10 of nq customer queries against a brute-force scan. */
static double recall(const ann_index *ix, const float *x, int d, int nq)
{
    int64_t n = ann_count(ix), rows[10];
    float sims[10];
    int nf, hits = 0;
    char err[RFM_ERRLEN];
    double *top = malloc(11 * sizeof *top);
    int64_t *topr = malloc(11 * sizeof *topr);
    for (int qi = 0; qi < nq; qi++) {
        int64_t r = (int64_t)qi * (n / nq);
        if (ann_search_row(ix, r, 10, NULL, NULL, rows, sims, &nf, err, sizeof err) != 0)
            die("search", err);
        int got = 0;
        for (int64_t i = 0; i < n; i++) {
            if (i == r)
                continue;
            double s = 0;
            for (int j = 0; j < d; j++)
                s += (double)x[(size_t)i * d + j] * x[(size_t)r * d + j];
            if (got == 10 && s <= top[9])
                continue;
            int pos = got < 10 ? got++ : 9;
            while (pos > 0 && s > top[pos - 1]) {
                top[pos] = top[pos - 1];
                topr[pos] = topr[pos - 1];
                pos--;
            }
            top[pos] = s;
            topr[pos] = i;
        }
        for (int a = 0; a < nf; a++)
            for (int b = 0; b < 10; b++)
                hits += rows[a] == topr[b];
    }
    free(top);
    free(topr);
    return (double)hits / (10.0 * nq);
}

/* Every row of a trained index queried twice (k = 10): the scan that makes
 * the memo, then the memo. Rows without an embedding are skipped. */
static int trained(const char *path)
{
    faiss_set_distance_compute_blas_threshold(1); /* as rfm-serve searches */
    openblas_set_num_threads(1);
    ann_params p;
    ann_params_default(&p);
    char err[RFM_ERRLEN];
    ann_index *ix = NULL;
    if (ann_load(path, &p, &ix, err, sizeof err) != 0)
        die("load", err);
    int64_t n = ann_count(ix), rows[10];
    float sims[10];
    int nf;
    double *t[2] = {malloc((size_t)n * sizeof(double)), malloc((size_t)n * sizeof(double))};
    int64_t nq = 0;
    for (int64_t r = 0; r < n; r++) {
        double t0 = now();
        rfm_status st = ann_search_row(ix, r, 10, NULL, NULL, rows, sims, &nf, err, sizeof err);
        double t1 = now();
        if (st == RFM_EDATA)
            continue;
        if (st != RFM_OK ||
            ann_search_row(ix, r, 10, NULL, NULL, rows, sims, &nf, err, sizeof err) != RFM_OK)
            die("search", err);
        t[0][nq] = (t1 - t0) * 1e6;
        t[1][nq++] = (now() - t1) * 1e6;
    }
    int64_t memos, cuts;
    ann_memo_stats(ix, &memos, &cuts);
    printf("%s: %lld x %d, every customer queried twice (k=10, 1 thread)\n", path, (long long)n,
           ann_dim(ix));
    summary("first (the scan), k=10:", t[0], nq);
    summary("second (the memo), k=10:", t[1], nq);
    printf("  memos %lld, strict cuts %.1f of %d each (k=10 reads the memo when its cut is)\n",
           (long long)memos, memos ? (double)cuts / (double)memos : 0.0, ANN_MEMO_K + 1);
    free(t[0]);
    free(t[1]);
    ann_free(ix);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--model") == 0)
        return trained(argv[2]);
    int64_t n = argc > 1 ? atoll(argv[1]) : 1000000;
    int ef = argc > 2 ? atoi(argv[2]) : 128;
    const int d = 32;
    char err[RFM_ERRLEN];
    ann_params p;
    ann_params_default(&p);
    p.ef_search = ef;
    if (argc > 3)
        p.hnsw_m = atoi(argv[3]);

    printf("HNSW%d, efSearch %d, %lld x %d random unit vectors\n", p.hnsw_m, ef, (long long)n, d);
    float *x = sim_unit_vectors(n, d, 1);
    char **ids = make_ids(n);
    if (!x || !ids)
        die("setup", "out of memory");
    p.exact_max = 100000;
    p.memo_rows = 0; /* every query searches: these are the search's figures */
    ann_index *h = NULL;
    double t0 = now();
    if (ann_build(x, n, d, (const char *const *)ids, &p, &h, err, sizeof err) != 0)
        die("build", err);
    printf("  build: %.1f s (%ld cores)\n", now() - t0, sysconf(_SC_NPROCESSORS_ONLN));
    const char *path = "/tmp/bench_customer2vec.faiss";
    t0 = now();
    if (ann_save(h, path, err, sizeof err) != 0)
        die("save", err);
    double ts = now() - t0;
    ann_free(h);
    h = NULL;
    t0 = now();
    if (ann_load(path, &p, &h, err, sizeof err) != 0)
        die("load", err);
    struct stat sb;
    stat(path, &sb);
    printf("  save %.2f s, load (CRC + FAISS read + id map) %.2f s, file %.0f MB\n", ts, now() - t0,
           (double)sb.st_size / 1e6);
    unlink(path);
    latency(h, 2000, NULL, "customer query, k=10:");
    latency(h, 2000, keep_quarter, "filtered (1 in 4 pass), k=10:");
    printf("  recall@10 vs brute force (100 queries): %.4f\n", recall(h, x, d, 100));
    ann_free(h);

    int64_t ne = n < 100000 ? n : 100000;
    printf("exact inner product (IDMap2,Flat), %lld x %d\n", (long long)ne, d);
    ann_index *e = NULL;
    t0 = now();
    if (ann_build(x, ne, d, (const char *const *)ids, &p, &e, err, sizeof err) != 0)
        die("build", err);
    printf("  build: %.2f s\n", now() - t0);
    latency(e, 1000, NULL, "customer query, k=10:");
    latency(e, 1000, keep_quarter, "filtered (1 in 4 pass), k=10:");
    ann_free(e);
    free(ids[0]);
    free(ids);
    free(x);
    return 0;
}
