/* test_ann.c - the FAISS lookalike index against brute force.
 *
 * Reference: a plain double-precision inner-product scan written here.
 * Exact search (ann.c's own scan) must return the same neighbours with
 * similarities to 1e-6, and FAISS's own search's order; HNSW must find most of them (recall@10 >
 * 0.9). Also: the file round trip, corrupt and truncated files, FAISS errors as statuses, filters
 * and concurrent readers.
 */
#include "testutil.h"

#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <faiss/c_api/utils/distances_c.h>
#include <gsl/gsl_errno.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "ann.h"
#include "rng.h"
#include "sim.h"

static char **make_ids(int64_t n)
{
    char **ids = malloc((size_t)n * sizeof *ids);
    for (int64_t i = 0; i < n; i++) {
        ids[i] = malloc(24);
        snprintf(ids[i], 24, "C%06lld", (long long)(i * 7 + 3));
    }
    return ids;
}

static void free_ids(char **ids, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* Brute-force top k of x . q (q normalised here), skipping `exclude` and
 * rows failing keep. Returns the count found. */
static int brute_topk(const float *x, int64_t n, int d, const float *q, int k, int64_t exclude,
                      ann_filter keep, void *ctx, int64_t *rows, double *sims)
{
    double qn = 0;
    for (int j = 0; j < d; j++)
        qn += (double)q[j] * q[j];
    qn = sqrt(qn);
    int got = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i == exclude || (keep && !keep(i, ctx)))
            continue;
        double s = 0;
        for (int j = 0; j < d; j++)
            s += (double)x[(size_t)i * d + j] * (q[j] / qn);
        /* insertion into a sorted list of at most k */
        int pos = got < k ? got : k;
        if (pos == k && !(s > sims[k - 1]))
            continue;
        while (pos > 0 && s > sims[pos - 1]) {
            if (pos < k) {
                sims[pos] = sims[pos - 1];
                rows[pos] = rows[pos - 1];
            }
            pos--;
        }
        sims[pos] = s;
        rows[pos] = i;
        if (got < k)
            got++;
    }
    return got;
}

/* Compare one FAISS answer with brute force: similarities rank by rank to
 * tol, and every returned row's true similarity equal to the reported one
 * (so a differing row can only be a tie). Returns max |diff|, counts rows
 * identical at their rank. */
static double compare(const float *x, int d, const float *q, const int64_t *rows, const float *sims,
                      int n, const int64_t *brows, const double *bsims, int *same)
{
    double qn = 0, maxd = 0;
    for (int j = 0; j < d; j++)
        qn += (double)q[j] * q[j];
    qn = sqrt(qn);
    for (int i = 0; i < n; i++) {
        maxd = fmax(maxd, fabs(sims[i] - bsims[i]));
        double t = 0;
        for (int j = 0; j < d; j++)
            t += (double)x[(size_t)rows[i] * d + j] * (q[j] / qn);
        maxd = fmax(maxd, fabs(t - sims[i]));
        *same += rows[i] == brows[i];
    }
    return maxd;
}

static int keep_mod3(int64_t row, void *ctx)
{
    (void)ctx;
    return row % 3 == 0;
}

static int keep_listed(int64_t row, void *ctx)
{
    const int64_t *list = ctx;
    for (int i = 0; list[i] >= 0; i++)
        if (list[i] == row)
            return 1;
    return 0;
}

/* ---- tests ---------------------------------------------------------- */

static void test_capi_errors(void **state)
{
    (void)state;
    FaissIndex *idx = NULL;
    int rc = faiss_index_factory(&idx, 8, "NoSuchIndex", METRIC_INNER_PRODUCT);
    assert_int_equal(rc, FAISS_EXCEPT);
    assert_non_null(faiss_get_last_error());
    printf("    factory(\"NoSuchIndex\") -> %d: %.80s...\n", rc, faiss_get_last_error());

    assert_int_equal(faiss_index_factory(&idx, 8, "Flat", METRIC_INNER_PRODUCT), 0);
    float x[16] = {1};
    idx_t lab[2];
    float dist[2];
    /* Flat has sequential ids: add_with_ids must fail, not crash. */
    idx_t xid[2] = {5, 6};
    rc = faiss_Index_add_with_ids(idx, 2, x, xid);
    assert_true(rc < 0);
    printf("    Flat add_with_ids -> %d: %.80s...\n", rc, faiss_get_last_error());
    rc = faiss_Index_search(idx, 1, x, -1, dist, lab);
    assert_true(rc < 0);
    printf("    search k=-1 -> %d: %.80s...\n", rc, faiss_get_last_error());
    faiss_Index_free(idx);

    /* Garbage bytes given to FAISS's reader. */
    const char junk[] = "this is not a faiss index at all, just text";
    FILE *f = fmemopen((void *)junk, sizeof junk, "rb");
    assert_non_null(f);
    idx = NULL;
    rc = faiss_read_index(f, 0, &idx);
    fclose(f);
    assert_true(rc < 0);
    assert_null(idx);
    printf("    read_index(garbage) -> %d: %.80s...\n", rc, faiss_get_last_error());
}

static void test_exact_matches_bruteforce(void **state)
{
    (void)state;
    const int64_t n = 3000;
    const int d = 32, k = 10, nq = 100;
    float *x = sim_unit_vectors(n, d, 1);
    float *q = sim_unit_vectors(nq, d, 2);
    for (int j = 0; j < nq * d; j++)
        q[j] *= 3.5f; /* the index must normalise queries itself */
    char **ids = make_ids(n);
    ann_params p;
    ann_params_default(&p);
    ann_index *ix = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(ann_build(x, n, d, (const char *const *)ids, &p, &ix, err, sizeof err),
                     RFM_OK);
    assert_false(ann_is_hnsw(ix));
    assert_int_equal(ann_count(ix), n);
    assert_int_equal(ann_dim(ix), d);

    int64_t rows[10], brows[10];
    float sims[10];
    double bsims[10], maxd = 0;
    int same = 0, total = 0, nf;
    int omp_before = omp_get_max_threads();
    for (int i = 0; i < nq; i++) {
        assert_int_equal(ann_search_vector(ix, q + (size_t)i * d, d, k, NULL, NULL, rows, sims, &nf,
                                           err, sizeof err),
                         RFM_OK);
        assert_int_equal(nf, k);
        brute_topk(x, n, d, q + (size_t)i * d, k, -1, NULL, NULL, brows, bsims);
        maxd = fmax(maxd, compare(x, d, q + (size_t)i * d, rows, sims, k, brows, bsims, &same));
        total += k;
    }
    assert_int_equal(omp_get_max_threads(), omp_before);
    printf("    vector queries: %d/%d rows identical at rank\n", same, total);
    assert_true(same >= total - 2);
    report_maxdiff("exact FAISS vs brute force, similarity", maxd, 1e-6);

    /* Customer queries: never the customer itself. */
    same = total = 0;
    maxd = 0;
    for (int64_t r = 0; r < n; r += 97) {
        assert_int_equal(ann_search_row(ix, r, k, NULL, NULL, rows, sims, &nf, err, sizeof err),
                         RFM_OK);
        assert_int_equal(nf, k);
        for (int i = 0; i < k; i++)
            assert_true(rows[i] != r);
        brute_topk(x, n, d, x + (size_t)r * d, k, r, NULL, NULL, brows, bsims);
        maxd = fmax(maxd, compare(x, d, x + (size_t)r * d, rows, sims, k, brows, bsims, &same));
        total += k;
    }
    printf("    customer queries: %d/%d rows identical at rank\n", same, total);
    assert_true(same >= total - 2);
    report_maxdiff("exact FAISS row search vs brute force", maxd, 1e-6);

    /* Batched (BLAS) path used for evaluation. */
    int64_t *all = malloc((size_t)n * k * sizeof *all);
    float *alls = malloc((size_t)n * k * sizeof *alls);
    assert_int_equal(ann_neighbors_all(ix, k, all, alls, err, sizeof err), RFM_OK);
    same = total = 0;
    maxd = 0;
    for (int64_t r = 0; r < n; r += 31) {
        brute_topk(x, n, d, x + (size_t)r * d, k, r, NULL, NULL, brows, bsims);
        maxd = fmax(maxd, compare(x, d, x + (size_t)r * d, all + (size_t)r * k,
                                  alls + (size_t)r * k, k, brows, bsims, &same));
        total += k;
    }
    printf("    ann_neighbors_all: %d/%d rows identical at rank\n", same, total);
    assert_true(same >= total - 2);
    report_maxdiff("batched neighbours vs brute force", maxd, 1e-5);
    free(all);
    free(alls);

    /* Ids and lookups. */
    int64_t row;
    assert_string_equal(ann_customer_id(ix, 5), "C000038");
    assert_null(ann_customer_id(ix, n));
    assert_int_equal(ann_lookup(ix, "C000038", &row, err, sizeof err), RFM_OK);
    assert_int_equal(row, 5);
    assert_int_equal(ann_lookup(ix, "C999999", &row, err, sizeof err), RFM_ENOTFOUND);
    printf("    %s\n", err);

    ann_free(ix);
    free_ids(ids, n);
    free(x);
    free(q);
}

static void test_filter(void **state)
{
    (void)state;
    const int64_t n = 2000;
    const int d = 16, k = 10;
    float *x = sim_unit_vectors(n, d, 3);
    char **ids = make_ids(n);
    ann_params p;
    ann_params_default(&p);
    ann_index *ix = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(ann_build(x, n, d, (const char *const *)ids, &p, &ix, err, sizeof err),
                     RFM_OK);
    int64_t rows[10], brows[10];
    float sims[10];
    double bsims[10], maxd = 0;
    int same = 0, total = 0, nf;
    for (int64_t r = 1; r < n; r += 101) {
        assert_int_equal(
            ann_search_row(ix, r, k, keep_mod3, NULL, rows, sims, &nf, err, sizeof err), RFM_OK);
        assert_int_equal(nf, k);
        for (int i = 0; i < k; i++)
            assert_true(rows[i] % 3 == 0 && rows[i] != r);
        brute_topk(x, n, d, x + (size_t)r * d, k, r, keep_mod3, NULL, brows, bsims);
        maxd = fmax(maxd, compare(x, d, x + (size_t)r * d, rows, sims, k, brows, bsims, &same));
        total += k;
    }
    printf("    filter row %% 3 == 0: %d/%d rows identical at rank\n", same, total);
    report_maxdiff("filtered search vs filtered brute force", maxd, 1e-6);
    assert_true(same >= total - 2);

    /* A filter only 4 far-away rows pass: the exact index keeps fetching
     * until it has seen every row, and returns exactly those 4. */
    int64_t list[] = {7, 1500, 1999, 42, -1};
    assert_int_equal(ann_search_row(ix, 0, k, keep_listed, list, rows, sims, &nf, err, sizeof err),
                     RFM_OK);
    assert_int_equal(nf, 4);
    int found = 0;
    for (int i = 0; i < nf; i++)
        found += keep_listed(rows[i], list);
    assert_int_equal(found, 4);
    for (int i = 1; i < nf; i++)
        assert_true(sims[i] <= sims[i - 1]);
    ann_free(ix);
    free_ids(ids, n);
    free(x);
}

/* The exact index's own scan (ann.c: exact_scan, no FAISS search) against
 * two references on one fixture with exact ties (every tenth row repeats
 * an earlier one): a naive double-precision cosine scan, and FAISS's own
 * one-query search (the previous code path, BLAS as rfm-serve sets it).
 * Similarities to 1e-6 of both; the neighbours those of brute force except
 * where two similarities are within 1e-6; the order that of FAISS wherever
 * its similarities at neighbouring ranks are more than 1e-5 apart; exact
 * ties best row first by FAISS's rule (the larger row first). k 10 and
 * 120 (FAISS's reservoir above 100), with and without a filter; dimension
 * 20 and 32 (OpenBLAS's SkylakeX kernels sum the two differently: ann.c
 * scans the first itself there and leaves the second to FAISS; with its
 * Haswell or Zen kernels, and under valgrind, it scans both). */
static void test_exact_scan_vs_references(void **state)
{
    (void)state;
    const int64_t n = 2503; /* not a multiple of 8 or 4: the tail rows */
    const int dims[] = {20, 32};
    const int ks[] = {10, 120};
    int prev_blas = faiss_get_distance_compute_blas_threshold();
    faiss_set_distance_compute_blas_threshold(1);
    for (int di = 0; di < 2; di++) {
        const int d = dims[di];
        float *x = sim_unit_vectors(n, d, 11 + (uint64_t)d);
        for (int64_t i = 10; i < n; i += 10) /* duplicates: exact ties */
            memcpy(x + (size_t)i * d, x + (size_t)(i / 3) * d, (size_t)d * sizeof *x);
        char **ids = make_ids(n);
        ann_params p;
        ann_params_default(&p);
        ann_index *ix = NULL;
        char err[RFM_ERRLEN];
        assert_int_equal(ann_build(x, n, d, (const char *const *)ids, &p, &ix, err, sizeof err),
                         RFM_OK);
        FaissIndex *fi = NULL;
        assert_int_equal(faiss_index_factory(&fi, d, "IDMap2,Flat", METRIC_INNER_PRODUCT), 0);
        idx_t *xid = malloc((size_t)n * sizeof *xid);
        for (int64_t i = 0; i < n; i++)
            xid[i] = i;
        assert_int_equal(faiss_Index_add_with_ids(fi, n, x, xid), 0);

        int64_t rows[121], brows[122];
        idx_t lab[122];
        float sims[121], fd[122];
        double bsims[122], maxd = 0, maxf = 0;
        int same = 0, total = 0, bits = 0, fcompared = 0, ties = 0, nf;
        for (int ki = 0; ki < 2; ki++) {
            const int k = ks[ki];
            for (int64_t r = 3; r < n; r += 61) {
                const float *q = x + (size_t)r * d;
                /* Brute force, customer query, with and without a filter. */
                for (int f = 0; f < 2; f++) {
                    ann_filter keep = f ? keep_mod3 : NULL;
                    assert_int_equal(
                        ann_search_row(ix, r, k, keep, NULL, rows, sims, &nf, err, sizeof err),
                        RFM_OK);
                    assert_int_equal(nf, k);
                    /* one more than asked: a tie may sit across the cut */
                    brute_topk(x, n, d, q, k + 1, r, keep, NULL, brows, bsims);
                    maxd = fmax(maxd, compare(x, d, q, rows, sims, k, brows, bsims, &same));
                    for (int i = 0; i < k; i++) {
                        assert_true(rows[i] != r && (!f || rows[i] % 3 == 0));
                        if (rows[i] != brows[i]) /* only where brute force has a tie */
                            assert_true((i > 0 && fabs(bsims[i] - bsims[i - 1]) < 1e-6) ||
                                        fabs(bsims[i] - bsims[i + 1]) < 1e-6);
                        if (i > 0 && sims[i] == sims[i - 1] &&
                            memcmp(x + (size_t)rows[i] * d, x + (size_t)rows[i - 1] * d,
                                   (size_t)d * sizeof *x) == 0) {
                            assert_true(rows[i] < rows[i - 1]);
                            ties++;
                        }
                    }
                    total += k;
                }
                /* FAISS, vector query (the index normalises it as ann does). */
                assert_int_equal(
                    ann_search_vector(ix, q, d, k, NULL, NULL, rows, sims, &nf, err, sizeof err),
                    RFM_OK);
                float qn[32];
                double s = 0;
                for (int j = 0; j < d; j++)
                    s += (double)q[j] * q[j];
                s = sqrt(s);
                for (int j = 0; j < d; j++)
                    qn[j] = (float)(q[j] / s);
                assert_int_equal(faiss_Index_search(fi, 1, qn, k + 1, fd, lab), 0);
                for (int i = 0; i < k; i++) {
                    maxf = fmax(maxf, fabs((double)sims[i] - fd[i]));
                    bits += memcmp(&sims[i], &fd[i], sizeof *fd) == 0 && rows[i] == lab[i];
                    int apart = (i == 0 || fd[i - 1] - fd[i] > 1e-5) && fd[i] - fd[i + 1] > 1e-5;
                    if (apart)
                        assert_int_equal(rows[i], lab[i]);
                    fcompared++;
                }
            }
        }
        printf("    dim %d: %d/%d rows as brute force at rank (the others tied), %d exact ties in "
               "FAISS's order; "
               "%d/%d (row, similarity) bit for bit as FAISS's search\n",
               d, same, total, ties, bits, fcompared);
        assert_true(ties > 0); /* a differing row was a tie: asserted rank by rank above */
        report_maxdiff("exact scan vs brute force, similarity", maxd, 1e-6);
        report_maxdiff("exact scan vs FAISS search, similarity", maxf, 1e-6);
        faiss_Index_free(fi);
        free(xid);
        ann_free(ix);
        free_ids(ids, n);
        free(x);
    }
    faiss_set_distance_compute_blas_threshold(prev_blas);
}

static void test_hnsw_recall(void **state)
{
    (void)state;
    const int64_t n = 20000;
    const int d = 32, k = 10, nq = 200;
    float *x = sim_unit_vectors(n, d, 4);
    char **ids = make_ids(n);
    ann_params p;
    ann_params_default(&p);
    p.exact_max = 1000;
    ann_index *h = NULL;
    char err[RFM_ERRLEN];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ann_build(x, n, d, (const char *const *)ids, &p, &h, err, sizeof err), RFM_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(ann_is_hnsw(h));
    int64_t rows[10], brows[10];
    float sims[10];
    double bsims[10];
    int hits = 0, nf;
    for (int i = 0; i < nq; i++) {
        int64_t r = (int64_t)i * 97;
        assert_int_equal(ann_search_row(h, r, k, NULL, NULL, rows, sims, &nf, err, sizeof err),
                         RFM_OK);
        assert_int_equal(nf, k);
        brute_topk(x, n, d, x + (size_t)r * d, k, r, NULL, NULL, brows, bsims);
        for (int a = 0; a < k; a++) {
            assert_true(rows[a] != r);
            for (int b = 0; b < k; b++)
                hits += rows[a] == brows[b];
        }
    }
    double recall = (double)hits / (nq * k);
    printf("    HNSW32 efSearch %d on %lld x %d random unit vectors: recall@10 %.4f "
           "(build %.2f s)\n",
           p.ef_search, (long long)n, d, recall,
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    assert_true(recall > 0.9);
    ann_free(h);
    free_ids(ids, n);
    free(x);
}

static int64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    int64_t n = file_size(path);
    unsigned char *b = malloc((size_t)n);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Recompute the header CRC the way ann.h documents it, so a test can make a
 * well-formed file with a deliberately wrong field. */
static void fix_crc(unsigned char *b, size_t len)
{
    uLong crc = crc32_z(0L, b, 52);
    crc = crc32_z(crc, b + 56, len - 56);
    for (int i = 0; i < 4; i++)
        b[52 + i] = (unsigned char)(crc >> (8 * i));
}

static void roundtrip(int hnsw)
{
    const int64_t n = 3000;
    const int d = 24, k = 10;
    float *x = sim_unit_vectors(n, d, 5);
    for (int j = 0; j < d; j++)
        x[17 * d + j] = 0; /* a customer without an embedding */
    char **ids = make_ids(n);
    ann_params p;
    ann_params_default(&p);
    if (hnsw)
        p.exact_max = 100;
    ann_index *a = NULL, *b = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(ann_build(x, n, d, (const char *const *)ids, &p, &a, err, sizeof err), RFM_OK);
    char dir[] = "/tmp/rfmann_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/customer2vec.faiss", dir);
    assert_int_equal(ann_save(a, path, err, sizeof err), RFM_OK);
    assert_int_equal(ann_load(path, &p, &b, err, sizeof err), RFM_OK);
    assert_int_equal(ann_is_hnsw(b), hnsw);
    assert_int_equal(ann_count(b), n);
    assert_int_equal(ann_dim(b), d);
    for (int64_t r = 0; r < n; r++) {
        assert_string_equal(ann_customer_id(a, r), ann_customer_id(b, r));
        int64_t row;
        assert_int_equal(ann_lookup(b, ids[r], &row, err, sizeof err), RFM_OK);
        assert_int_equal(row, r);
    }
    int64_t ra[10], rb[10];
    float sa[10], sb[10];
    int na, nb, checked = 0;
    for (int64_t r = 0; r < n; r += 37) {
        if (r == 17)
            continue;
        assert_int_equal(ann_search_row(a, r, k, NULL, NULL, ra, sa, &na, err, sizeof err), RFM_OK);
        assert_int_equal(ann_search_row(b, r, k, NULL, NULL, rb, sb, &nb, err, sizeof err), RFM_OK);
        assert_int_equal(na, nb);
        assert_memory_equal(ra, rb, (size_t)na * sizeof *ra);
        assert_memory_equal(sa, sb, (size_t)na * sizeof *sa);
        checked++;
    }
    assert_int_equal(ann_search_row(b, 17, k, NULL, NULL, rb, sb, &nb, err, sizeof err), RFM_EDATA);
    printf("    %s: %d searches identical after reload; %lld ids survive; zero row: %s\n",
           hnsw ? "HNSW" : "exact", checked, (long long)n, err);

    /* No temporary file left behind. */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", dir);
    FILE *ls = popen(cmd, "r");
    int ntmp = -1;
    assert_int_equal(fscanf(ls, "%d", &ntmp), 1);
    pclose(ls);
    assert_int_equal(ntmp, 0);

    /* Corruptions. */
    size_t len;
    unsigned char *orig = slurp(path, &len), *buf = malloc(len);
    char bad[160];
    snprintf(bad, sizeof bad, "%s/bad.faiss", dir);
    ann_index *c = (ann_index *)0x1;

    memcpy(buf, orig, len);
    buf[len / 2] ^= 0x40;
    spit(bad, buf, len);
    assert_int_equal(ann_load(bad, &p, &c, err, sizeof err), RFM_ECHECKSUM);
    printf("    flipped byte: %s\n", err);

    spit(bad, orig, len - 100);
    assert_int_equal(ann_load(bad, &p, &c, err, sizeof err), RFM_EFORMAT);
    printf("    truncated: %s\n", err);

    spit(bad, orig, 30);
    assert_int_equal(ann_load(bad, &p, &c, err, sizeof err), RFM_EFORMAT);

    memcpy(buf, orig, len);
    buf[0] = 'X';
    spit(bad, buf, len);
    assert_int_equal(ann_load(bad, &p, &c, err, sizeof err), RFM_EFORMAT);
    printf("    bad magic: %s\n", err);

    memcpy(buf, orig, len);
    buf[12] = (unsigned char)(d + 1); /* header dim, CRC made consistent */
    fix_crc(buf, len);
    spit(bad, buf, len);
    assert_int_equal(ann_load(bad, &p, &c, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, "dim"));
    printf("    wrong dimension: %s\n", err);

    memcpy(buf, orig, len);
    memset(buf + 56, 0x5a, 64); /* FAISS part garbled, CRC made consistent */
    fix_crc(buf, len);
    spit(bad, buf, len);
    assert_int_equal(ann_load(bad, &p, &c, err, sizeof err), RFM_ELIBRARY);
    printf("    garbled FAISS bytes: %.120s\n", err);

    memcpy(buf, orig, len);
    buf[len - 3] = 0; /* a NUL inside the last customer id */
    fix_crc(buf, len);
    spit(bad, buf, len);
    assert_int_equal(ann_load(bad, &p, &c, err, sizeof err), RFM_EFORMAT);
    printf("    bad id map: %s\n", err);

    assert_int_equal(ann_load("/nonexistent/x.faiss", &p, &c, err, sizeof err), RFM_EIO);
    assert_ptr_equal(c, (ann_index *)0x1);

    /* Saving into a missing directory fails cleanly. */
    assert_int_equal(ann_save(a, "/nonexistent/dir/x.faiss", err, sizeof err), RFM_EIO);
    printf("    %s\n", err);

    unlink(bad);
    unlink(path);
    rmdir(dir);
    free(orig);
    free(buf);
    ann_free(a);
    ann_free(b);
    free_ids(ids, n);
    free(x);
}

static void test_roundtrip_exact(void **state)
{
    (void)state;
    roundtrip(0);
}

static void test_roundtrip_hnsw(void **state)
{
    (void)state;
    roundtrip(1);
}

static void test_bad_input(void **state)
{
    (void)state;
    const int64_t n = 50;
    const int d = 8;
    float *x = sim_unit_vectors(n, d, 6);
    char **ids = make_ids(n);
    ann_params p;
    ann_params_default(&p);
    ann_index *ix = (ann_index *)0x1;
    char err[RFM_ERRLEN];

    x[3 * d] *= 2;
    assert_int_equal(ann_build(x, n, d, (const char *const *)ids, &p, &ix, err, sizeof err),
                     RFM_EINVAL);
    printf("    %s\n", err);
    x[3 * d] /= 2;
    x[4 * d + 1] = NAN;
    assert_int_equal(ann_build(x, n, d, (const char *const *)ids, &p, &ix, err, sizeof err),
                     RFM_EINVAL);
    printf("    %s\n", err);
    free(x);
    x = sim_unit_vectors(n, d, 6);
    char *saved = ids[9];
    ids[9] = ids[2];
    assert_int_equal(ann_build(x, n, d, (const char *const *)ids, &p, &ix, err, sizeof err),
                     RFM_EINVAL);
    printf("    %s\n", err);
    ids[9] = saved;
    p.hnsw_m = 1;
    assert_int_equal(ann_build(x, n, d, (const char *const *)ids, &p, &ix, err, sizeof err),
                     RFM_EINVAL);
    printf("    %s\n", err);
    assert_ptr_equal(ix, (ann_index *)0x1);
    p.hnsw_m = 32;

    assert_int_equal(ann_build(x, n, d, (const char *const *)ids, &p, &ix, err, sizeof err),
                     RFM_OK);
    int64_t rows[100];
    float sims[100], q[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
    int nf = -5;
    assert_int_equal(ann_search_vector(ix, q, 9, 5, NULL, NULL, rows, sims, &nf, err, sizeof err),
                     RFM_EINVAL);
    printf("    %s\n", err);
    assert_int_equal(nf, -5);
    q[0] = 0;
    assert_int_equal(ann_search_vector(ix, q, d, 5, NULL, NULL, rows, sims, &nf, err, sizeof err),
                     RFM_EINVAL);
    printf("    %s\n", err);
    q[0] = 1;
    assert_int_equal(ann_search_vector(ix, q, d, 0, NULL, NULL, rows, sims, &nf, err, sizeof err),
                     RFM_EINVAL);
    assert_int_equal(ann_search_row(ix, n, 5, NULL, NULL, rows, sims, &nf, err, sizeof err),
                     RFM_EINVAL);
    printf("    %s\n", err);
    /* k above the index size: every other row, once. */
    assert_int_equal(ann_search_row(ix, 0, 100, NULL, NULL, rows, sims, &nf, err, sizeof err),
                     RFM_OK);
    assert_int_equal(nf, n - 1);
    ann_free(ix);
    free_ids(ids, n);
    free(x);
}

/* A reader thread: count (at most 200) customer queries of k = 10, of rows
 * (start + i stride) % n, through keep (NULL: unfiltered). */
typedef struct {
    const ann_index *ix;
    int64_t start, stride;
    int count;
    ann_filter keep;
    int64_t rows[200 * 10];
    float sims[200 * 10];
    int fails;
} reader_job;

static void *reader(void *arg)
{
    reader_job *j = arg;
    char err[RFM_ERRLEN];
    int nf;
    for (int i = 0; i < j->count; i++)
        if (ann_search_row(j->ix, (j->start + i * j->stride) % ann_count(j->ix), 10, j->keep, NULL,
                           j->rows + i * 10, j->sims + i * 10, &nf, err, sizeof err) != RFM_OK ||
            nf != 10)
            j->fails++;
    return NULL;
}

/* The n jobs at once, each on its own thread. */
static void run_readers(reader_job *jobs, int n)
{
    pthread_t th[8];
    assert_true(n <= 8);
    for (int t = 0; t < n; t++)
        assert_int_equal(pthread_create(&th[t], NULL, reader, &jobs[t]), 0);
    for (int t = 0; t < n; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
}

static void test_concurrent_readers(void **state)
{
    (void)state;
    const int64_t n = 5000;
    const int d = 32;
    float *x = sim_unit_vectors(n, d, 8);
    char **ids = make_ids(n);
    ann_params p;
    ann_params_default(&p);
    p.exact_max = 1000; /* HNSW: the case with per-search scratch state */
    ann_index *ix = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(ann_build(x, n, d, (const char *const *)ids, &p, &ix, err, sizeof err),
                     RFM_OK);
    enum { T = 4 };
    static reader_job jobs[T], seq;
    for (int t = 0; t < T; t++)
        jobs[t] = (reader_job){
            .ix = ix, .start = t * 1000, .stride = 13, .count = 100, .keep = keep_mod3};
    run_readers(jobs, T);
    /* Same queries again, one at a time: identical answers. */
    int mismatches = 0;
    for (int t = 0; t < T; t++) {
        seq = jobs[t];
        seq.fails = 0;
        reader(&seq);
        assert_int_equal(jobs[t].fails + seq.fails, 0);
        mismatches += memcmp(seq.rows, jobs[t].rows, 1000 * sizeof *seq.rows) != 0 ||
                      memcmp(seq.sims, jobs[t].sims, 1000 * sizeof *seq.sims) != 0;
    }
    printf("    %d threads x 100 filtered HNSW searches: %d mismatches with sequential runs\n", T,
           mismatches);
    assert_int_equal(mismatches, 0);
    ann_free(ix);
    free_ids(ids, n);
    free(x);
}

/* The memo of customer queries against the same index without one
 * (memo_rows 0): every answer the same rows and the same float bits, on
 * the query that makes a row's memo and on the ones that read it, at k on
 * both sides of ANN_MEMO_K, unfiltered, filtered to a third of the rows,
 * and (every 25th row) filtered to four rows (past the memo: searched). The fixture has
 * exact ties (every tenth row repeats the one five before it) and a zero
 * row (no embedding: RFM_EDATA either way); dimension 8 and 32 (on some
 * CPUs FAISS searches the second). Then four threads race to make the
 * memos of a fresh index: the same answers again. */
static void test_memo_equals_search(void **state)
{
    (void)state;
    const int64_t n = 1000;
    const int dims[] = {8, 32};
    const int ks[] = {1, 10, ANN_MEMO_K, ANN_MEMO_K + 1};
    char err[RFM_ERRLEN], err2[RFM_ERRLEN];
    for (int di = 0; di < 2; di++) {
        int d = dims[di];
        float *x = sim_unit_vectors(n, d, 11 + d);
        for (int64_t r = 10; r < n; r += 10)
            memcpy(x + (size_t)r * d, x + (size_t)(r - 5) * d, (size_t)d * sizeof *x);
        memset(x + 17 * (size_t)d, 0, (size_t)d * sizeof *x);
        char **ids = make_ids(n);
        ann_params p;
        ann_params_default(&p);
        ann_index *memo = NULL, *plain = NULL;
        assert_int_equal(ann_build(x, n, d, (const char *const *)ids, &p, &memo, err, sizeof err),
                         RFM_OK);
        p.memo_rows = 0;
        assert_int_equal(ann_build(x, n, d, (const char *const *)ids, &p, &plain, err, sizeof err),
                         RFM_OK);
        int64_t list[] = {7, 500, 999, 42, -1};
        int64_t compared = 0;
        for (int pass = 0; pass < 2; pass++)
            for (int64_t r = 0; r < n; r++)
                for (int ki = 0; ki < 4; ki++)
                    for (int f = 0; f < (r % 25 ? 2 : 3); f++) { /* the 4-row filter: slow */
                        ann_filter keep = f == 0 ? NULL : f == 1 ? keep_mod3 : keep_listed;
                        int k = ks[ki], n1 = -1, n2 = -2;
                        int64_t r1[ANN_MEMO_K + 1], r2[ANN_MEMO_K + 1];
                        float s1[ANN_MEMO_K + 1], s2[ANN_MEMO_K + 1];
                        rfm_status a =
                            ann_search_row(memo, r, k, keep, list, r1, s1, &n1, err, sizeof err);
                        rfm_status b =
                            ann_search_row(plain, r, k, keep, list, r2, s2, &n2, err2, sizeof err2);
                        assert_int_equal(a, b);
                        if (r == 17) {
                            assert_int_equal(a, RFM_EDATA);
                            assert_string_equal(err, err2);
                            continue;
                        }
                        assert_int_equal(a, RFM_OK);
                        assert_int_equal(n1, n2);
                        assert_memory_equal(r1, r2, (size_t)n1 * sizeof *r1);
                        assert_memory_equal(s1, s2, (size_t)n1 * sizeof *s1);
                        compared++;
                    }
        int64_t mrows, cuts, prows, pcuts;
        ann_memo_stats(memo, &mrows, &cuts);
        ann_memo_stats(plain, &prows, &pcuts);
        printf("    dim %d: %lld answers equal; %lld memos, %.1f of %d cuts strict each\n", d,
               (long long)compared, (long long)mrows, (double)cuts / (double)mrows, ANN_MEMO_K + 1);
        assert_int_equal(prows, 0);
        assert_int_equal(mrows, n - 1); /* every row but the zero one */
        /* Most cuts are strict (a tenth of the rows tie with another): the
         * answers above were mostly the memo's. */
        assert_true(cuts > (n - 1) * (ANN_MEMO_K + 1) * 8 / 10);

        ann_free(memo);
        p.memo_rows = n;
        assert_int_equal(ann_build(x, n, d, (const char *const *)ids, &p, &memo, err, sizeof err),
                         RFM_OK);
        enum { T = 4 };
        static reader_job jobs[T], seq;
        for (int t = 0; t < T; t++)
            jobs[t] = (reader_job){.ix = memo, .start = 2 + t % 2, .stride = 4, .count = 200};
        run_readers(jobs, T);
        for (int t = 0; t < T; t++) {
            seq = (reader_job){.ix = plain, .start = 2 + t % 2, .stride = 4, .count = 200};
            reader(&seq);
            assert_int_equal(jobs[t].fails + seq.fails, 0);
            assert_memory_equal(jobs[t].rows, seq.rows, sizeof seq.rows);
            assert_memory_equal(jobs[t].sims, seq.sims, sizeof seq.sims);
        }
        ann_memo_stats(memo, &mrows, &cuts);
        assert_int_equal(mrows, 400); /* rows 2, 3, ..., 799, each made once */
        ann_free(memo);
        ann_free(plain);
        free_ids(ids, n);
        free(x);
    }
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capi_errors),
        cmocka_unit_test(test_exact_matches_bruteforce),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_exact_scan_vs_references),
        cmocka_unit_test(test_hnsw_recall),
        cmocka_unit_test(test_roundtrip_exact),
        cmocka_unit_test(test_roundtrip_hnsw),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_concurrent_readers),
        cmocka_unit_test(test_memo_equals_search),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
