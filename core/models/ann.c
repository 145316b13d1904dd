/* ann.c - lookalike index over FAISS's C API; file format and contracts in
 * ann.h. Only the official C API headers are used to talk to FAISS, so the
 * day Debian ships libfaiss_c this file links against it unchanged.
 *
 * One query on the exact index does not go through FAISS: FAISS's
 * IndexFlat search of one query (BLAS path, which rfm-serve selects) packs
 * the whole matrix for sgemm on every call, runs an OpenMP region and a
 * heap of doubles-width bookkeeping; that was 450,000 of the 648,000
 * instructions of a POST /similar_customers. Here the vectors are packed
 * once, at build or load (exact_pack), and a query is one pass over them
 * (exact_scan) that sums each inner product in the order OpenBLAS's sgemm
 * does for that call and keeps the candidates in FAISS's own heap
 * (heap_*), so the neighbours, their order (ties included) and the float
 * similarities are FAISS's, bit for bit, on the CPUs whose sgemm order is
 * reproduced (blas_order: OpenBLAS's Haswell and Zen kernels, which pack).
 * HNSW indexes, other CPUs and the batched ann_neighbors_all still search
 * through FAISS.
 */
#include "ann.h"

#include <cblas.h>
#include <errno.h>
#include <float.h>
#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define ANN_AVX2 1
#endif

#define HEADER_LEN 56
#define FORMAT_VERSION 1u
static const unsigned char MAGIC[8] = {'R', 'F', 'M', 'A', 'N', 'N', 0, 0};
#define REGEN "; regenerate it with rfm-train --only embeddings"
#define LANES 8 /* rows per packed group (ann_index.packed): one AVX2 register of floats */

struct ann_index {
    FaissIndex *index;
    int dim;
    int64_t n;
    int hnsw, hnsw_m;
    int ef_search, query_threads, build_threads;
    int64_t max_fetch;
    char *id_buf;    /* every customer id, NUL-terminated, back to back */
    int64_t *id_off; /* row -> offset in id_buf (n entries) */
    int64_t *slots;  /* open-addressing table of row + 1, 0 = empty */
    uint64_t mask;   /* slots has mask + 1 entries */
    /* Exact index only (NULL for HNSW): every vector again, packed for
     * exact_scan. Rows in groups of LANES, component-major inside a group:
     * row r's component j is packed[((r / LANES) * dim + j) * LANES + r % LANES];
     * the last group is padded with zero rows, never returned. */
    float *packed;
    int order; /* ORDER_*: how sgemm sums one inner product (blas_order) */
    /* Exact index of at most memo_rows rows only (else NULL): row r's
     * nearest rows as its first query found them (ann_memo), published
     * once and kept until ann_free; n pointers, NULL until then. */
    int64_t memo_rows;
    struct ann_memo *_Atomic *memo;
};

static rfm_status exact_pack(ann_index *ix, char *err, size_t errlen);
static rfm_status memo_init(ann_index *ix, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* helpers */

static rfm_status faiss_fail(char *err, size_t errlen, int rc, const char *what)
{
    const char *msg = faiss_get_last_error();
    return rfm_fail(err, errlen, RFM_ELIBRARY, "FAISS %s failed (code %d): %s", what, rc,
                    msg ? msg : "no message");
}

/* OpenMP's thread count is a per-thread setting: change it for the duration
 * of one FAISS call on this thread only, and put it back. */
static int omp_enter(int threads)
{
    int prev = omp_get_max_threads();
    if (threads > 0)
        omp_set_num_threads(threads);
    return prev;
}

static void omp_leave(int prev) { omp_set_num_threads(prev); }

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static const char *row_id(const ann_index *ix, int64_t row) { return ix->id_buf + ix->id_off[row]; }

/* Fill slots from id_off/id_buf. RFM_EINVAL on a duplicate (row named). */
static rfm_status build_table(ann_index *ix, char *err, size_t errlen)
{
    uint64_t size = 16;
    while (size < (uint64_t)ix->n * 2)
        size <<= 1;
    ix->slots = calloc(size, sizeof *ix->slots);
    if (!ix->slots)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for the customer id table");
    ix->mask = size - 1;
    for (int64_t r = 0; r < ix->n; r++) {
        const char *s = row_id(ix, r);
        uint64_t h = hash_str(s) & ix->mask;
        while (ix->slots[h]) {
            if (strcmp(row_id(ix, ix->slots[h] - 1), s) == 0)
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "customer id \"%.64s\" appears at rows %lld and %lld", s,
                                (long long)(ix->slots[h] - 1), (long long)r);
            h = (h + 1) & ix->mask;
        }
        ix->slots[h] = r + 1;
    }
    return RFM_OK;
}

void ann_free(ann_index *ix)
{
    if (!ix)
        return;
    if (ix->index)
        faiss_Index_free(ix->index);
    free(ix->id_buf);
    free(ix->id_off);
    free(ix->slots);
    free(ix->packed);
    if (ix->memo)
        for (int64_t r = 0; r < ix->n; r++)
            free(atomic_load_explicit(&ix->memo[r], memory_order_relaxed));
    free(ix->memo);
    free(ix);
}

void ann_params_default(ann_params *p)
{
    p->exact_max = 100000;
    p->hnsw_m = 32;
    p->ef_search = 128;
    p->query_threads = 1;
    p->build_threads = 0;
    p->max_fetch = 4096;
    p->memo_rows = 100000;
}

const char *ann_check_params(const ann_params *p)
{
    if (!p)
        return "ann parameters are NULL";
    if (p->exact_max < 0)
        return "exact_max must be >= 0";
    if (p->hnsw_m < 4 || p->hnsw_m > 128)
        return "hnsw_m must be in 4..128";
    if (p->ef_search < 1 || p->ef_search > 100000)
        return "ef_search must be in 1..100000";
    if (p->query_threads < 1 || p->query_threads > 1024)
        return "query_threads must be in 1..1024";
    if (p->build_threads < 0 || p->build_threads > 1024)
        return "build_threads must be in 0..1024";
    if (p->max_fetch < 1)
        return "max_fetch must be >= 1";
    if (p->memo_rows < 0)
        return "memo_rows must be >= 0";
    return NULL;
}

static void apply_params(ann_index *ix, const ann_params *p)
{
    ix->ef_search = p->ef_search;
    ix->query_threads = p->query_threads;
    ix->build_threads = p->build_threads;
    ix->max_fetch = p->max_fetch;
    ix->memo_rows = p->memo_rows;
}

static rfm_status set_ef_search(ann_index *ix, char *err, size_t errlen)
{
    if (!ix->hnsw)
        return RFM_OK;
    FaissParameterSpace *ps = NULL;
    int rc = faiss_ParameterSpace_new(&ps);
    if (rc)
        return faiss_fail(err, errlen, rc, "ParameterSpace_new");
    rc = faiss_ParameterSpace_set_index_parameter(ps, ix->index, "efSearch", ix->ef_search);
    faiss_ParameterSpace_free(ps);
    if (rc)
        return faiss_fail(err, errlen, rc, "setting efSearch");
    return RFM_OK;
}

/* ------------------------------------------------------------------ */
/* build */

rfm_status ann_build(const float *vectors, int64_t n, int dim, const char *const *ids,
                     const ann_params *p, ann_index **out, char *err, size_t errlen)
{
    const char *why = ann_check_params(p);
    if (why)
        return rfm_fail(err, errlen, RFM_EINVAL, "ann parameters: %s", why);
    if (n < 1 || n > INT32_MAX)
        return rfm_fail(err, errlen, RFM_EINVAL, "row count %lld must be in 1..%d", (long long)n,
                        INT32_MAX);
    if (dim < 1 || dim > ANN_MAX_DIM)
        return rfm_fail(err, errlen, RFM_EINVAL, "dim %d must be in 1..%d", dim, ANN_MAX_DIM);
    if (!vectors || !ids)
        return rfm_fail(err, errlen, RFM_EINVAL, "vectors or ids are NULL");
    size_t id_bytes = 0;
    for (int64_t r = 0; r < n; r++) {
        const float *v = vectors + (size_t)r * dim;
        double s = 0;
        for (int j = 0; j < dim; j++) {
            if (!isfinite(v[j]))
                return rfm_fail(err, errlen, RFM_EINVAL, "row %lld: component %d is not finite",
                                (long long)r, j);
            s += (double)v[j] * v[j];
        }
        if (s != 0 && fabs(sqrt(s) - 1) > 1e-3)
            return rfm_fail(err, errlen, RFM_EINVAL,
                            "row %lld: norm %.6g; vectors must be unit length (or zero)",
                            (long long)r, sqrt(s));
        size_t len = ids[r] ? strlen(ids[r]) : 0;
        if (len == 0 || len > ANN_MAX_ID_LEN)
            return rfm_fail(err, errlen, RFM_EINVAL,
                            "row %lld: customer id is missing, empty or longer than %d bytes",
                            (long long)r, ANN_MAX_ID_LEN);
        id_bytes += len + 1;
    }

    ann_index *ix = calloc(1, sizeof *ix);
    int64_t *xids = malloc((size_t)n * sizeof *xids);
    rfm_status st;
    if (!ix || !xids) {
        free(ix);
        free(xids);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory building the index");
    }
    ix->dim = dim;
    ix->n = n;
    ix->hnsw = n > p->exact_max;
    ix->hnsw_m = p->hnsw_m;
    apply_params(ix, p);
    ix->id_buf = malloc(id_bytes);
    ix->id_off = malloc((size_t)n * sizeof *ix->id_off);
    if (!ix->id_buf || !ix->id_off) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for customer ids");
        goto fail;
    }
    size_t off = 0;
    for (int64_t r = 0; r < n; r++) {
        size_t len = strlen(ids[r]);
        ix->id_off[r] = (int64_t)off;
        memcpy(ix->id_buf + off, ids[r], len + 1);
        off += len + 1;
        xids[r] = r;
    }
    st = build_table(ix, err, errlen);
    if (st != RFM_OK)
        goto fail;

    char desc[64];
    if (ix->hnsw)
        snprintf(desc, sizeof desc, "IDMap2,HNSW%d,Flat", p->hnsw_m);
    else
        snprintf(desc, sizeof desc, "IDMap2,Flat");
    int rc = faiss_index_factory(&ix->index, dim, desc, METRIC_INNER_PRODUCT);
    if (rc) {
        ix->index = NULL;
        st = faiss_fail(err, errlen, rc, "index_factory");
        goto fail;
    }
    int prev = omp_enter(p->build_threads);
    rc = faiss_Index_add_with_ids(ix->index, n, vectors, xids);
    omp_leave(prev);
    if (rc) {
        st = faiss_fail(err, errlen, rc, "add_with_ids");
        goto fail;
    }
    st = set_ef_search(ix, err, errlen);
    if (st == RFM_OK)
        st = exact_pack(ix, err, errlen);
    if (st == RFM_OK)
        st = memo_init(ix, err, errlen);
    if (st != RFM_OK)
        goto fail;
    free(xids);
    *out = ix;
    return RFM_OK;
fail:
    free(xids);
    ann_free(ix);
    return st;
}

/* ------------------------------------------------------------------ */
/* accessors */

int ann_dim(const ann_index *ix) { return ix->dim; }
int64_t ann_count(const ann_index *ix) { return ix->n; }
int ann_is_hnsw(const ann_index *ix) { return ix->hnsw; }

const char *ann_customer_id(const ann_index *ix, int64_t row)
{
    return row >= 0 && row < ix->n ? row_id(ix, row) : NULL;
}

rfm_status ann_lookup(const ann_index *ix, const char *customer_id, int64_t *row, char *err,
                      size_t errlen)
{
    if (!customer_id)
        return rfm_fail(err, errlen, RFM_EINVAL, "customer id is NULL");
    uint64_t h = hash_str(customer_id) & ix->mask;
    while (ix->slots[h]) {
        if (strcmp(row_id(ix, ix->slots[h] - 1), customer_id) == 0) {
            *row = ix->slots[h] - 1;
            return RFM_OK;
        }
        h = (h + 1) & ix->mask;
    }
    return rfm_fail(err, errlen, RFM_ENOTFOUND, "customer id \"%.200s\" is not in the index",
                    customer_id);
}

rfm_status ann_vector(const ann_index *ix, int64_t row, float *out, char *err, size_t errlen)
{
    if (row < 0 || row >= ix->n)
        return rfm_fail(err, errlen, RFM_EINVAL, "row %lld outside [0, %lld)", (long long)row,
                        (long long)ix->n);
    if (ix->packed) { /* the same floats FAISS holds, without its id lookup */
        const float *g = ix->packed + (size_t)(row / LANES) * LANES * ix->dim + row % LANES;
        for (int j = 0; j < ix->dim; j++)
            out[j] = g[(size_t)j * LANES];
        return RFM_OK;
    }
    int rc = faiss_Index_reconstruct(ix->index, row, out);
    if (rc)
        return faiss_fail(err, errlen, rc, "reconstruct");
    return RFM_OK;
}

/* ------------------------------------------------------------------ */
/* exact search without FAISS (see the top of this file) */

#define FAISS_RESERVOIR 100 /* FAISS 1.7.3: distance_compute_min_k_reservoir */
#define EXACT_MAX_DIM 256   /* dimensions whose sgemm order was checked */

enum {
    ORDER_FAISS, /* not reproduced here: every query goes to FAISS */
    /* One fused multiply-add chain over the components in order: OpenBLAS
     * 0.3.21's Haswell and Zen sgemm kernels, and SkylakeX's below 32. */
    ORDER_SEQ
};
/* Not reproduced (so searched by FAISS): SkylakeX/Cooperlake from dim 32,
 * where sgemm takes the small-matrix kernel sgemm_small_kernel_b0_tn_skylakex
 * (AVX-512, no packing): sixteen chains, component j on chain j % 16, then
 * P_L = (c[4L] + c[4L+1]) + (c[4L+2] + c[4L+3]) and (P_0 + P_1) + (P_2 + P_3)
 * for rows in its 4-row tiles, GCC's _mm512_reduce_add_ps tree for the last
 * n % 4 rows. An AVX2 scan in that order matched FAISS bit for bit but took
 * about 146,000 instructions a query here against 57,000 for the chain;
 * FAISS does not pack on those CPUs, so it stays FAISS's. */
/* How sgemm("T", "N", rows, 1, dim) sums one inner product on this CPU:
 * OpenBLAS picks its kernels by CPU at start-up and names the choice. */
static int blas_order(int dim)
{
#if defined(ANN_AVX2)
    if (dim > EXACT_MAX_DIM || !__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return ORDER_FAISS;
    const char *core = openblas_get_corename();
    if (!core)
        return ORDER_FAISS;
    if (strcmp(core, "SkylakeX") == 0 || strcmp(core, "Cooperlake") == 0)
        return dim < 32 ? ORDER_SEQ : ORDER_FAISS;
    if (strcmp(core, "Haswell") == 0 || strcmp(core, "Zen") == 0)
        return ORDER_SEQ;
#else
    (void)dim;
#endif
    return ORDER_FAISS;
}

/* FAISS's min-heap of (similarity, row) (utils/Heap.h, CMin<float,int64_t>),
 * ported so that ties fall as they did: the top is the smallest similarity,
 * of equal ones the smallest row. */
static int cmp2(float a1, float b1, int64_t a2, int64_t b2)
{
    return a1 < b1 || (a1 == b1 && a2 < b2);
}

static void heap_replace_top(size_t k, float *bh_val, int64_t *bh_ids, float val, int64_t id)
{
    bh_val--; /* 1-based, as in FAISS */
    bh_ids--;
    size_t i = 1, i1, i2;
    for (;;) {
        i1 = i << 1;
        i2 = i1 + 1;
        if (i1 > k)
            break;
        if (i2 == k + 1 || cmp2(bh_val[i1], bh_val[i2], bh_ids[i1], bh_ids[i2])) {
            if (cmp2(val, bh_val[i1], id, bh_ids[i1]))
                break;
            bh_val[i] = bh_val[i1];
            bh_ids[i] = bh_ids[i1];
            i = i1;
        } else {
            if (cmp2(val, bh_val[i2], id, bh_ids[i2]))
                break;
            bh_val[i] = bh_val[i2];
            bh_ids[i] = bh_ids[i2];
            i = i2;
        }
    }
    bh_val[i] = val;
    bh_ids[i] = id;
}

/* FAISS's heap_pop: its last entry sifted down from the top, which is
 * heap_replace_top with that entry (the sift never writes the last slot
 * before reading it). The caller then treats the heap as k - 1 long. */
static void heap_pop(size_t k, float *bh_val, int64_t *bh_ids)
{
    heap_replace_top(k, bh_val, bh_ids, bh_val[k - 1], bh_ids[k - 1]);
}

/* Best first; unfilled entries (-FLT_MAX, -1) last. */
static void heap_reorder(size_t k, float *bh_val, int64_t *bh_ids)
{
    size_t i, ii;
    for (i = 0, ii = 0; i < k; i++) {
        float val = bh_val[0];
        int64_t id = bh_ids[0];
        heap_pop(k - i, bh_val, bh_ids);
        bh_val[k - ii - 1] = val;
        bh_ids[k - ii - 1] = id;
        if (id != -1)
            ii++;
    }
    memmove(bh_val, bh_val + k - ii, ii * sizeof *bh_val);
    memmove(bh_ids, bh_ids + k - ii, ii * sizeof *bh_ids);
    for (; ii < k; ii++) {
        bh_val[ii] = -FLT_MAX;
        bh_ids[ii] = -1;
    }
}

/* Pack every row (FAISS's own copy, through reconstruct) for exact_scan,
 * when this CPU's sgemm order is reproduced and the index is IDMap2 over
 * a flat inner-product index with ids 0..n-1 in order (what ann_build
 * makes). Otherwise leave packed NULL: searches go through FAISS. */
static rfm_status exact_pack(ann_index *ix, char *err, size_t errlen)
{
    ix->order = ix->hnsw ? ORDER_FAISS : blas_order(ix->dim);
    if (ix->order == ORDER_FAISS)
        return RFM_OK;
    FaissIndexIDMap2 *m = faiss_IndexIDMap2_cast(ix->index);
    idx_t *map = NULL;
    size_t len = 0;
    if (m)
        faiss_IndexIDMap2_id_map(m, &map, &len);
    int ok = m && faiss_IndexFlat_cast(faiss_IndexIDMap2_sub_index(m)) && len == (size_t)ix->n;
    for (size_t i = 0; ok && i < len; i++)
        ok = map[i] == (idx_t)i;
    if (!ok) {
        ix->order = ORDER_FAISS;
        return RFM_OK;
    }
    size_t groups = (size_t)(ix->n + LANES - 1) / LANES;
    float *packed = calloc(groups * LANES * (size_t)ix->dim, sizeof *packed);
    float v[EXACT_MAX_DIM];
    if (!packed)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory packing %lld vectors",
                        (long long)ix->n);
    for (int64_t r = 0; r < ix->n; r++) {
        int rc = faiss_Index_reconstruct(ix->index, r, v);
        if (rc) {
            free(packed);
            return faiss_fail(err, errlen, rc, "reconstruct (FAISS ids are not rows 0..n-1)");
        }
        float *g = packed + (size_t)(r / LANES) * LANES * ix->dim + r % LANES;
        for (int j = 0; j < ix->dim; j++)
            g[(size_t)j * LANES] = v[j];
    }
    ix->packed = packed;
    return RFM_OK;
}

#if defined(ANN_AVX2)
/* Offer one group's similarities (rows r0.., nv of them) to the heap, in
 * row order, as FAISS's HeapResultHandler::add_results does: a row enters
 * when strictly better than the top. */
__attribute__((target("avx2,fma"))) static inline void offer8(__m256 s, int64_t r0, int nv,
                                                              size_t k, float *hv, int64_t *hi)
{
    __m256 t = _mm256_set1_ps(hv[0]);
    if (!(_mm256_movemask_ps(_mm256_cmp_ps(t, s, _CMP_LT_OQ)) & ((1 << nv) - 1)))
        return;
    float v[LANES];
    _mm256_storeu_ps(v, s);
    for (int l = 0; l < nv; l++)
        if (hv[0] < v[l])
            heap_replace_top(k, hv, hi, v[l], r0 + l);
}

/* ORDER_SEQ: row . q as one chain of fused multiply-adds over j = 0..dim-1,
 * SEQ_GROUPS groups at a time to share each broadcast of q[j]. */
#define SEQ_GROUPS 8
__attribute__((target("avx2,fma"))) static void scan_seq(const ann_index *ix, const float *q,
                                                         size_t k, float *hv, int64_t *hi)
{
    const int dim = ix->dim;
    const int64_t groups = (ix->n + LANES - 1) / LANES;
    const size_t gs = (size_t)dim * LANES;
    int64_t g = 0;
    for (; g + SEQ_GROUPS <= groups; g += SEQ_GROUPS) {
        const float *p = ix->packed + (size_t)g * gs;
        /* Named, not an array: GCC 12 stores an array of accumulators back
         * to the stack on every step. */
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
               a7 = a0;
        for (int j = 0; j < dim; j++, p += LANES) {
            __m256 qj = _mm256_broadcast_ss(q + j);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p), qj, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(p + gs), qj, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(p + 2 * gs), qj, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(p + 3 * gs), qj, a3);
            a4 = _mm256_fmadd_ps(_mm256_loadu_ps(p + 4 * gs), qj, a4);
            a5 = _mm256_fmadd_ps(_mm256_loadu_ps(p + 5 * gs), qj, a5);
            a6 = _mm256_fmadd_ps(_mm256_loadu_ps(p + 6 * gs), qj, a6);
            a7 = _mm256_fmadd_ps(_mm256_loadu_ps(p + 7 * gs), qj, a7);
        }
        const __m256 a[SEQ_GROUPS] = {a0, a1, a2, a3, a4, a5, a6, a7};
        for (int b = 0; b < SEQ_GROUPS; b++) {
            int64_t r = (g + b) * LANES;
            offer8(a[b], r, ix->n - r < LANES ? (int)(ix->n - r) : LANES, k, hv, hi);
        }
    }
    for (; g < groups; g++) {
        const float *p = ix->packed + (size_t)g * gs;
        __m256 a0 = _mm256_setzero_ps();
        for (int j = 0; j < dim; j++)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p + (size_t)j * LANES), _mm256_broadcast_ss(q + j),
                                 a0);
        int64_t r = g * LANES;
        offer8(a0, r, ix->n - r < LANES ? (int)(ix->n - r) : LANES, k, hv, hi);
    }
}

#endif

/* FAISS's one-query search of the exact index for the top `fetch` rows:
 * rows best first into lab (-1 past n) and their similarities into d.
 * Returns 0, or -1 when FAISS's answer cannot be known without FAISS: from
 * 100 results FAISS keeps a reservoir whose choice among rows tied at the
 * cut differs from the heap's, so a tie there is left to FAISS. hv/hi
 * hold fetch + 1 entries. */
static int exact_search(const ann_index *ix, const float *q, int64_t fetch, float *hv, int64_t *hi)
{
    size_t k = (size_t)fetch;
    int reservoir = fetch >= FAISS_RESERVOIR && fetch < ix->n;
    if (reservoir)
        k++; /* one more, to see whether the cut falls between two equal values */
    for (size_t i = 0; i < k; i++) {
        hv[i] = -FLT_MAX;
        hi[i] = -1;
    }
#if defined(ANN_AVX2)
    scan_seq(ix, q, k, hv, hi);
#else
    (void)q;
    return -1;
#endif
    heap_reorder(k, hv, hi);
    if (reservoir && hv[k - 2] == hv[k - 1])
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* search */

/* The fetch best rows of unit query q, best first, into d and lab (fetch
 * + 1 entries each): the exact scan where it applies, else FAISS's search.
 * 0, or FAISS's error code. */
static int fetch_best(const ann_index *ix, const float *q, int64_t fetch, float *d, int64_t *lab)
{
    if (ix->packed && exact_search(ix, q, fetch, d, lab) == 0)
        return 0;
    int prev = omp_enter(ix->query_threads);
    int rc = faiss_Index_search(ix->index, 1, q, fetch, d, lab);
    omp_leave(prev);
    return rc;
}

/* Results one search keeps on the stack; larger fetches (filters on big
 * indexes) are allocated. */
#define STACK_FETCH 512

/* Search one unit query, skipping `exclude` (or -1) and rows keep rejects. */
static rfm_status search_one(const ann_index *ix, const float *q, int k, int64_t exclude,
                             ann_filter keep, void *ctx, int64_t *rows, float *sims, int *n_found,
                             char *err, size_t errlen)
{
    if (k < 1 || k > ANN_MAX_K)
        return rfm_fail(err, errlen, RFM_EINVAL, "k %d must be in 1..%d", k, ANN_MAX_K);
    int64_t need = (int64_t)k + (exclude >= 0);
    int64_t limit = ix->n;
    int64_t fetch = need;
    if (keep) {
        fetch = need * 4 > 64 ? need * 4 : 64;
        /* HNSW cost grows with the fetch: cap it (see ann.h). */
        if (ix->hnsw && limit > (ix->max_fetch > need ? ix->max_fetch : need))
            limit = ix->max_fetch > need ? ix->max_fetch : need;
    }
    if (fetch > limit)
        fetch = limit;
    float dbuf[STACK_FETCH + 1];
    int64_t lbuf[STACK_FETCH + 1];
    float *d = dbuf;
    int64_t *lab = lbuf;
    int64_t cap = STACK_FETCH;
    rfm_status st = RFM_OK;
    int got = 0;
    for (;;) {
        if (fetch > cap) { /* fetch + 1 entries: exact_search may look one further */
            float *nd = malloc((size_t)(fetch + 1) * sizeof *d);
            int64_t *nl = malloc((size_t)(fetch + 1) * sizeof *lab);
            if (d != dbuf)
                free(d);
            if (lab != lbuf)
                free(lab);
            d = nd;
            lab = nl;
            cap = fetch;
            if (!nd || !nl) {
                st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for %lld search results",
                              (long long)fetch);
                goto done;
            }
        }
        int rc = fetch_best(ix, q, fetch, d, lab);
        if (rc) {
            st = faiss_fail(err, errlen, rc, "search");
            goto done;
        }
        got = 0;
        for (int64_t i = 0; i < fetch && got < k; i++) {
            if (lab[i] < 0 || lab[i] == exclude)
                continue;
            if (keep && !keep(lab[i], ctx))
                continue;
            rows[got] = lab[i];
            sims[got] = d[i];
            got++;
        }
        if (got >= k || fetch >= limit)
            break;
        fetch = fetch * 2 < limit ? fetch * 2 : limit;
    }
    *n_found = got;
done:
    if (d != dbuf)
        free(d);
    if (lab != lbuf)
        free(lab);
    return st;
}

/* ------------------------------------------------------------------ */
/* memo of customer queries (exact index; see ann.h) */

/* A row's MEMO_LEN most similar rows, itself included, best first, as
 * search_one's path finds them for any fetch. Each similarity is computed
 * by the same kernel whatever the fetch, and rows of equal similarity are
 * ordered by FAISS's rule (the larger row first) by every path; only which
 * of equal values a fetch keeps at its cut depends on the fetch. So a
 * query of k whose k-th answer sits at position p is answered here when
 * sim[p] > sim[p + 1] (bit p of cut): then the rows down to p are exactly
 * those at least as similar as p's, and any fetch, FAISS's heap or its
 * reservoir, returns them first in this order. */
#define MEMO_LEN (ANN_MEMO_K + 2) /* k + 1 with the row itself, + 1 to see the cut */
struct ann_memo {
    uint64_t cut; /* bit i: sim[i] > sim[i + 1] */
    int32_t row[MEMO_LEN];
    float sim[MEMO_LEN];
};

/* The table of memos, empty (RFM_ENOMEM without the memory for it). */
static rfm_status memo_init(ann_index *ix, char *err, size_t errlen)
{
    /* Indexes smaller than a memo's list gain nothing; HNSW's answers
     * depend on the fetch itself. */
    if (ix->hnsw || ix->n <= MEMO_LEN || ix->n > ix->memo_rows || ix->n > INT32_MAX)
        return RFM_OK;
    ix->memo = calloc((size_t)ix->n, sizeof *ix->memo);
    if (!ix->memo)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for the query memo of %lld rows",
                        (long long)ix->n);
    return RFM_OK;
}

/* Row's memo, made from its unit vector q when it has none yet (the first
 * made is kept; a thread that lost the race frees its copy). NULL when it
 * could not be made: the caller searches as without a memo. */
static const struct ann_memo *memo_get(const ann_index *ix, int64_t row, const float *q)
{
    struct ann_memo *m = atomic_load_explicit(&ix->memo[row], memory_order_acquire);
    if (m || !q)
        return m;
    float d[MEMO_LEN + 1];
    int64_t lab[MEMO_LEN + 1];
    if (fetch_best(ix, q, MEMO_LEN, d, lab))
        return NULL;
    m = malloc(sizeof *m);
    if (!m)
        return NULL;
    m->cut = 0;
    for (int i = 0; i < MEMO_LEN; i++) {
        if (lab[i] < 0 || lab[i] >= ix->n) {
            free(m);
            return NULL;
        }
        m->row[i] = (int32_t)lab[i];
        m->sim[i] = d[i];
    }
    for (int i = 0; i + 1 < MEMO_LEN; i++)
        if (m->sim[i] > m->sim[i + 1])
            m->cut |= (uint64_t)1 << i;
    struct ann_memo *none = NULL;
    if (!atomic_compare_exchange_strong_explicit(&ix->memo[row], &none, m, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        free(m);
        return none;
    }
    return m;
}

/* The answer search_one(q of row, k, exclude row, keep) gives, from the
 * memo: 1 and the rows, or 0 when the memo cannot tell (k kept rows not
 * among its first MEMO_LEN - 1, or a tie at the k-th one's cut). */
static int memo_answer(const struct ann_memo *m, int64_t row, int k, ann_filter keep, void *ctx,
                       int64_t *rows, float *sims, int *n_found)
{
    int got = 0;
    for (int i = 0; i + 1 < MEMO_LEN; i++) {
        int64_t r = m->row[i];
        if (r == row || (keep && !keep(r, ctx)))
            continue;
        rows[got] = r;
        sims[got] = m->sim[i];
        if (++got == k) {
            if (!(m->cut >> i & 1))
                return 0;
            *n_found = got;
            return 1;
        }
    }
    return 0;
}

void ann_memo_stats(const ann_index *ix, int64_t *rows, int64_t *cuts)
{
    *rows = *cuts = 0;
    for (int64_t r = 0; ix->memo && r < ix->n; r++) {
        const struct ann_memo *m = atomic_load_explicit(&ix->memo[r], memory_order_acquire);
        if (m) {
            ++*rows;
            *cuts += __builtin_popcountll(m->cut);
        }
    }
}

rfm_status ann_search_vector(const ann_index *ix, const float *query, int len, int k,
                             ann_filter keep, void *ctx, int64_t *rows, float *sims, int *n_found,
                             char *err, size_t errlen)
{
    if (!query)
        return rfm_fail(err, errlen, RFM_EINVAL, "query vector is NULL");
    if (len != ix->dim)
        return rfm_fail(err, errlen, RFM_EINVAL, "query vector has %d components, index has %d",
                        len, ix->dim);
    float q[ANN_MAX_DIM];
    double s = 0;
    for (int j = 0; j < len; j++) {
        if (!isfinite(query[j]))
            return rfm_fail(err, errlen, RFM_EINVAL, "query vector component %d is not finite", j);
        s += (double)query[j] * query[j];
    }
    if (!(s > 0) || !isfinite(s))
        return rfm_fail(err, errlen, RFM_EINVAL, "query vector has zero or infinite norm");
    s = sqrt(s);
    for (int j = 0; j < len; j++)
        q[j] = (float)(query[j] / s);
    return search_one(ix, q, k, -1, keep, ctx, rows, sims, n_found, err, errlen);
}

rfm_status ann_search_row(const ann_index *ix, int64_t row, int k, ann_filter keep, void *ctx,
                          int64_t *rows, float *sims, int *n_found, char *err, size_t errlen)
{
    /* A row with a memo has a vector: no need to read it. */
    int memo = ix->memo && row >= 0 && row < ix->n && k >= 1 && k <= ANN_MEMO_K;
    const struct ann_memo *m = memo ? memo_get(ix, row, NULL) : NULL;
    if (m && memo_answer(m, row, k, keep, ctx, rows, sims, n_found))
        return RFM_OK;
    float q[ANN_MAX_DIM];
    rfm_status st = ann_vector(ix, row, q, err, errlen);
    if (st != RFM_OK)
        return st;
    double s = 0;
    for (int j = 0; j < ix->dim; j++)
        s += (double)q[j] * q[j];
    if (s == 0)
        return rfm_fail(err, errlen, RFM_EDATA,
                        "customer \"%.200s\" has no embedding (no informative purchases)",
                        row_id(ix, row));
    if (memo && !m && (m = memo_get(ix, row, q)) &&
        memo_answer(m, row, k, keep, ctx, rows, sims, n_found))
        return RFM_OK;
    return search_one(ix, q, k, row, keep, ctx, rows, sims, n_found, err, errlen);
}

rfm_status ann_neighbors_all(const ann_index *ix, int k, int64_t *rows, float *sims, char *err,
                             size_t errlen)
{
    if (k < 1 || k > ANN_MAX_K)
        return rfm_fail(err, errlen, RFM_EINVAL, "k %d must be in 1..%d", k, ANN_MAX_K);
    const int64_t batch = 4096;
    int64_t kk = (int64_t)k + 1;
    if (kk > ix->n)
        kk = ix->n;
    float *x = malloc((size_t)batch * ix->dim * sizeof *x);
    float *d = malloc((size_t)batch * kk * sizeof *d);
    int64_t *lab = malloc((size_t)batch * kk * sizeof *lab);
    rfm_status st = RFM_OK;
    if (!x || !d || !lab) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for batched neighbour search");
        goto done;
    }
    for (int64_t b0 = 0; b0 < ix->n; b0 += batch) {
        int64_t nb = ix->n - b0 < batch ? ix->n - b0 : batch;
        for (int64_t i = 0; i < nb; i++) {
            int rc = faiss_Index_reconstruct(ix->index, b0 + i, x + (size_t)i * ix->dim);
            if (rc) {
                st = faiss_fail(err, errlen, rc, "reconstruct");
                goto done;
            }
        }
        int prev = omp_enter(ix->build_threads);
        int rc = faiss_Index_search(ix->index, nb, x, kk, d, lab);
        omp_leave(prev);
        if (rc) {
            st = faiss_fail(err, errlen, rc, "batched search");
            goto done;
        }
        for (int64_t i = 0; i < nb; i++) {
            int64_t row = b0 + i;
            int64_t *ro = rows + (size_t)row * k;
            float *so = sims + (size_t)row * k;
            const float *xi = x + (size_t)i * ix->dim;
            double s = 0;
            for (int j = 0; j < ix->dim; j++)
                s += (double)xi[j] * xi[j];
            int got = 0;
            /* A zero vector has no neighbours worth the name. */
            for (int64_t j = 0; s > 0 && j < kk && got < k; j++) {
                int64_t l = lab[(size_t)i * kk + j];
                if (l < 0 || l == row)
                    continue;
                ro[got] = l;
                so[got] = d[(size_t)i * kk + j];
                got++;
            }
            for (; got < k; got++) {
                ro[got] = -1;
                so[got] = 0;
            }
        }
    }
done:
    free(x);
    free(d);
    free(lab);
    return st;
}

/* ------------------------------------------------------------------ */
/* file */

static void put_u32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *b)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

static uint64_t get_u64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

/* CRC-32 of the bytes of f from offset `from` to the end. */
static int crc_tail(FILE *f, off_t from, uLong *crc)
{
    unsigned char buf[1 << 16];
    if (fseeko(f, from, SEEK_SET) != 0)
        return -1;
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        *crc = crc32_z(*crc, buf, got);
    return ferror(f) ? -1 : 0;
}

rfm_status ann_save(const ann_index *ix, const char *path, char *err, size_t errlen)
{
    if (!path || !*path)
        return rfm_fail(err, errlen, RFM_EINVAL, "index path is empty");
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rfm_status st = rfm_fail(err, errlen, RFM_EIO, "%s: cannot create temporary file: %s", path,
                                 strerror(errno));
        free(tmp);
        return st;
    }
    fchmod(fd, 0644); /* mkstemp makes 0600: the server may run as another user */
    FILE *f = fdopen(fd, "w+b");
    rfm_status st = RFM_OK;
    if (!f) {
        close(fd);
        st = rfm_fail(err, errlen, RFM_EIO, "%s: %s", tmp, strerror(errno));
        goto fail;
    }
    unsigned char hdr[HEADER_LEN] = {0};
    if (fwrite(hdr, 1, HEADER_LEN, f) != HEADER_LEN)
        goto io_fail;
    int rc = faiss_write_index(ix->index, f);
    if (rc) {
        st = faiss_fail(err, errlen, rc, "write_index");
        goto fail;
    }
    off_t after = ftello(f);
    if (after < HEADER_LEN)
        goto io_fail;
    uint64_t faiss_len = (uint64_t)after - HEADER_LEN, ids_len = 0;
    for (int64_t r = 0; r < ix->n; r++) {
        const char *s = row_id(ix, r);
        uint32_t len = (uint32_t)strlen(s);
        unsigned char lb[4];
        put_u32(lb, len);
        if (fwrite(lb, 1, 4, f) != 4 || fwrite(s, 1, len, f) != len)
            goto io_fail;
        ids_len += 4 + (uint64_t)len;
    }
    memcpy(hdr, MAGIC, 8);
    put_u32(hdr + 8, FORMAT_VERSION);
    put_u32(hdr + 12, (uint32_t)ix->dim);
    put_u64(hdr + 16, (uint64_t)ix->n);
    put_u32(hdr + 24, (uint32_t)ix->hnsw);
    put_u32(hdr + 28, (uint32_t)ix->hnsw_m);
    put_u64(hdr + 32, faiss_len);
    put_u64(hdr + 40, ids_len);
    put_u32(hdr + 48, 0);
    if (fflush(f) != 0)
        goto io_fail;
    uLong crc = crc32_z(0L, hdr, 52);
    if (crc_tail(f, HEADER_LEN, &crc) != 0)
        goto io_fail;
    put_u32(hdr + 52, (uint32_t)crc);
    if (fseeko(f, 0, SEEK_SET) != 0 || fwrite(hdr, 1, HEADER_LEN, f) != HEADER_LEN ||
        fflush(f) != 0 || fsync(fileno(f)) != 0)
        goto io_fail;
    if (fclose(f) != 0) {
        f = NULL;
        goto io_fail;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        st = rfm_fail(err, errlen, RFM_EIO, "%s: cannot rename %s into place: %s", path, tmp,
                      strerror(errno));
        goto fail;
    }
    free(tmp);
    return RFM_OK;
io_fail:
    st = rfm_fail(err, errlen, RFM_EIO, "%s: write failed: %s", tmp, strerror(errno));
fail:
    if (f)
        fclose(f);
    unlink(tmp);
    free(tmp);
    return st;
}

rfm_status ann_load(const char *path, const ann_params *p, ann_index **out, char *err,
                    size_t errlen)
{
    const char *why = ann_check_params(p);
    if (why)
        return rfm_fail(err, errlen, RFM_EINVAL, "ann parameters: %s", why);
    FILE *f = fopen(path, "rb");
    if (!f)
        return rfm_fail(err, errlen, RFM_EIO, "%s: %s", path, strerror(errno));
    ann_index *ix = NULL;
    unsigned char *idb = NULL;
    rfm_status st;
    unsigned char hdr[HEADER_LEN];
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        st = rfm_fail(err, errlen, RFM_EIO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (fread(hdr, 1, HEADER_LEN, f) != HEADER_LEN) {
        st = rfm_fail(err, errlen, RFM_EFORMAT, "%s: truncated header (%lld bytes)" REGEN, path,
                      (long long)sb.st_size);
        goto fail;
    }
    if (memcmp(hdr, MAGIC, 8) != 0) {
        st = rfm_fail(err, errlen, RFM_EFORMAT, "%s: not an rfm lookalike index (bad magic)" REGEN,
                      path);
        goto fail;
    }
    uint32_t version = get_u32(hdr + 8), dim = get_u32(hdr + 12), kind = get_u32(hdr + 24);
    uint32_t m = get_u32(hdr + 28);
    uint64_t n = get_u64(hdr + 16), faiss_len = get_u64(hdr + 32), ids_len = get_u64(hdr + 40);
    if (version != FORMAT_VERSION) {
        st = rfm_fail(err, errlen, RFM_EFORMAT, "%s: format version %u, this build reads %u" REGEN,
                      path, version, FORMAT_VERSION);
        goto fail;
    }
    if (dim < 1 || dim > ANN_MAX_DIM || n < 1 || n > INT32_MAX || kind > 1 || m > 128 ||
        faiss_len > (uint64_t)sb.st_size || ids_len > (uint64_t)sb.st_size) {
        st = rfm_fail(err, errlen, RFM_EFORMAT,
                      "%s: implausible header (dim %u, count %llu, kind %u)" REGEN, path, dim,
                      (unsigned long long)n, kind);
        goto fail;
    }
    if ((uint64_t)sb.st_size != HEADER_LEN + faiss_len + ids_len) {
        st = rfm_fail(err, errlen, RFM_EFORMAT,
                      "%s: file has %lld bytes, header promises %llu (truncated or padded)" REGEN,
                      path, (long long)sb.st_size,
                      (unsigned long long)(HEADER_LEN + faiss_len + ids_len));
        goto fail;
    }
    uLong crc = crc32_z(0L, hdr, 52);
    if (crc_tail(f, HEADER_LEN, &crc) != 0) {
        st = rfm_fail(err, errlen, RFM_EIO, "%s: read failed: %s", path, strerror(errno));
        goto fail;
    }
    if ((uint32_t)crc != get_u32(hdr + 52)) {
        st = rfm_fail(err, errlen, RFM_ECHECKSUM,
                      "%s: CRC-32 %08x does not match the header's %08x (corrupt file)" REGEN, path,
                      (unsigned)crc, (unsigned)get_u32(hdr + 52));
        goto fail;
    }

    ix = calloc(1, sizeof *ix);
    if (!ix) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory loading %s", path);
        goto fail;
    }
    ix->dim = (int)dim;
    ix->n = (int64_t)n;
    ix->hnsw = (int)kind;
    ix->hnsw_m = (int)m;
    apply_params(ix, p);
    if (fseeko(f, HEADER_LEN, SEEK_SET) != 0) {
        st = rfm_fail(err, errlen, RFM_EIO, "%s: seek failed: %s", path, strerror(errno));
        goto fail;
    }
    int rc = faiss_read_index(f, 0, &ix->index);
    if (rc) {
        ix->index = NULL;
        st = faiss_fail(err, errlen, rc, "read_index");
        goto fail;
    }
    if (ftello(f) != (off_t)(HEADER_LEN + faiss_len)) {
        st = rfm_fail(err, errlen, RFM_EFORMAT,
                      "%s: FAISS index ends at byte %lld, header says %llu" REGEN, path,
                      (long long)ftello(f), (unsigned long long)(HEADER_LEN + faiss_len));
        goto fail;
    }
    if (faiss_Index_d(ix->index) != (int)dim || faiss_Index_ntotal(ix->index) != (idx_t)n ||
        faiss_Index_metric_type(ix->index) != METRIC_INNER_PRODUCT) {
        st = rfm_fail(err, errlen, RFM_EFORMAT,
                      "%s: header says dim %u, count %llu, inner product; FAISS index has dim %d, "
                      "count %lld, metric %d" REGEN,
                      path, dim, (unsigned long long)n, faiss_Index_d(ix->index),
                      (long long)faiss_Index_ntotal(ix->index),
                      (int)faiss_Index_metric_type(ix->index));
        goto fail;
    }

    /* Id map: ids_len bytes of (u32 length, bytes) records. */
    idb = malloc(ids_len + 1);
    ix->id_off = malloc((size_t)n * sizeof *ix->id_off);
    /* Each record shrinks by 4 length bytes and gains a NUL: ids_len fits. */
    ix->id_buf = malloc(ids_len + 1);
    if (!idb || !ix->id_off || !ix->id_buf) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory loading the id map of %s", path);
        goto fail;
    }
    if (fread(idb, 1, ids_len, f) != ids_len) {
        st = rfm_fail(err, errlen, RFM_EIO, "%s: id map read failed", path);
        goto fail;
    }
    uint64_t pos = 0, off = 0;
    for (uint64_t r = 0; r < n; r++) {
        if (ids_len - pos < 4) {
            st = rfm_fail(err, errlen, RFM_EFORMAT, "%s: id map ends at row %llu of %llu" REGEN,
                          path, (unsigned long long)r, (unsigned long long)n);
            goto fail;
        }
        uint32_t len = get_u32(idb + pos);
        pos += 4;
        if (len == 0 || len > ANN_MAX_ID_LEN || len > ids_len - pos || memchr(idb + pos, 0, len)) {
            st = rfm_fail(err, errlen, RFM_EFORMAT, "%s: bad customer id record at row %llu" REGEN,
                          path, (unsigned long long)r);
            goto fail;
        }
        ix->id_off[r] = (int64_t)off;
        memcpy(ix->id_buf + off, idb + pos, len);
        ix->id_buf[off + len] = 0;
        off += len + 1;
        pos += len;
    }
    if (pos != ids_len) {
        st = rfm_fail(err, errlen, RFM_EFORMAT, "%s: %llu stray bytes after the id map" REGEN, path,
                      (unsigned long long)(ids_len - pos));
        goto fail;
    }
    st = build_table(ix, err, errlen);
    if (st != RFM_OK) {
        if (st == RFM_EINVAL)
            st = RFM_EFORMAT;
        goto fail;
    }
    /* Rows are FAISS ids 0..n-1: the first and last must resolve. */
    {
        float *v = malloc(dim * sizeof *v);
        if (!v) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            goto fail;
        }
        rc = faiss_Index_reconstruct(ix->index, 0, v);
        if (!rc)
            rc = faiss_Index_reconstruct(ix->index, (idx_t)n - 1, v);
        free(v);
        if (rc) {
            st = faiss_fail(err, errlen, rc, "reconstruct (FAISS ids are not rows 0..n-1)");
            goto fail;
        }
    }
    st = set_ef_search(ix, err, errlen);
    if (st == RFM_OK)
        st = exact_pack(ix, err, errlen);
    if (st == RFM_OK)
        st = memo_init(ix, err, errlen);
    if (st != RFM_OK)
        goto fail;
    free(idb);
    fclose(f);
    *out = ix;
    return RFM_OK;
fail:
    free(idb);
    ann_free(ix);
    fclose(f);
    return st;
}
