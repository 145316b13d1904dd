/* ann.c - lookalike index over FAISS's C API; file format and contracts in
 * ann.h. Only the official C API headers are used to talk to FAISS, so the
 * day Debian ships libfaiss_c this file links against it unchanged.
 */
#include "ann.h"

#include <errno.h>
#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define HEADER_LEN 56
#define FORMAT_VERSION 1u
static const unsigned char MAGIC[8] = {'R', 'F', 'M', 'A', 'N', 'N', 0, 0};
#define REGEN "; regenerate it with rfm-train --only embeddings"

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
};

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
    return NULL;
}

static void apply_params(ann_index *ix, const ann_params *p)
{
    ix->ef_search = p->ef_search;
    ix->query_threads = p->query_threads;
    ix->build_threads = p->build_threads;
    ix->max_fetch = p->max_fetch;
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
    int rc = faiss_Index_reconstruct(ix->index, row, out);
    if (rc)
        return faiss_fail(err, errlen, rc, "reconstruct");
    return RFM_OK;
}

/* ------------------------------------------------------------------ */
/* search */

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
    float *d = NULL;
    int64_t *lab = NULL;
    rfm_status st = RFM_OK;
    int got = 0;
    for (;;) {
        float *nd = realloc(d, (size_t)fetch * sizeof *d);
        if (nd)
            d = nd;
        int64_t *nl = realloc(lab, (size_t)fetch * sizeof *lab);
        if (nl)
            lab = nl;
        if (!nd || !nl) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for %lld search results",
                          (long long)fetch);
            goto done;
        }
        int prev = omp_enter(ix->query_threads);
        int rc = faiss_Index_search(ix->index, 1, q, fetch, d, lab);
        omp_leave(prev);
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
    free(d);
    free(lab);
    return st;
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
