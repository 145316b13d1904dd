/* embed.c - PPMI + randomized truncated SVD embeddings, and the held-out
 * hit-rate evaluation. See embed.h for the method and its contract.
 *
 * Dense blocks (n x l, l = dim + oversample) are row-major doubles, except
 * inside orthonormalise(), which works on a column-major copy so that its
 * inner loops run over contiguous memory.
 */
#include "embed.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct embed_model {
    int dim;
    int32_t n_customers, n_products;
    int32_t n_zero_customers, n_zero_products;
    float *customers; /* n_customers x dim */
    float *products;  /* n_products x dim */
    double *sv;       /* dim */
};

/* ------------------------------------------------------------------ */
/* sparse counts */

void embed_csr_free(embed_csr *m)
{
    if (!m)
        return;
    free(m->row_ptr);
    free(m->col_idx);
    free(m->counts);
    free(m);
}

static embed_csr *csr_alloc(int32_t nr, int32_t nc, int64_t nnz)
{
    embed_csr *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->n_customers = nr;
    m->n_products = nc;
    m->row_ptr = calloc((size_t)nr + 1, sizeof *m->row_ptr);
    /* +1 so that an empty matrix still gets non-NULL arrays. */
    m->col_idx = malloc(((size_t)nnz + 1) * sizeof *m->col_idx);
    m->counts = malloc(((size_t)nnz + 1) * sizeof *m->counts);
    if (!m->row_ptr || !m->col_idx || !m->counts) {
        embed_csr_free(m);
        return NULL;
    }
    return m;
}

rfm_status embed_csr_check(const embed_csr *m, char *err, size_t errlen)
{
    if (!m || !m->row_ptr || !m->col_idx || !m->counts)
        return rfm_fail(err, errlen, RFM_EINVAL, "counts matrix is NULL or has NULL arrays");
    if (m->n_customers < 1 || m->n_products < 1)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "counts matrix is %d x %d; needs at least one customer and product",
                        (int)m->n_customers, (int)m->n_products);
    if (m->row_ptr[0] != 0)
        return rfm_fail(err, errlen, RFM_EINVAL, "row_ptr[0] is %lld, must be 0",
                        (long long)m->row_ptr[0]);
    for (int32_t c = 0; c < m->n_customers; c++) {
        int64_t a = m->row_ptr[c], b = m->row_ptr[c + 1];
        if (b < a)
            return rfm_fail(err, errlen, RFM_EINVAL, "row_ptr decreases at customer row %d",
                            (int)c);
        for (int64_t e = a; e < b; e++) {
            int32_t p = m->col_idx[e];
            if (p < 0 || p >= m->n_products)
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "customer row %d: product index %d outside [0, %d)", (int)c, (int)p,
                                (int)m->n_products);
            if (e > a && p <= m->col_idx[e - 1])
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "customer row %d: product indices not strictly increasing", (int)c);
            if (!(m->counts[e] > 0) || !isfinite(m->counts[e]))
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "customer row %d, product %d: count %g must be finite and > 0",
                                (int)c, (int)p, m->counts[e]);
        }
    }
    return RFM_OK;
}

typedef struct {
    int32_t product;
    size_t pos; /* input position: summing duplicates in input order keeps bits fixed */
    double w;
} pair_entry;

static int cmp_pair(const void *a, const void *b)
{
    const pair_entry *x = a, *y = b;
    if (x->product != y->product)
        return x->product < y->product ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

rfm_status embed_csr_from_pairs(int32_t n_customers, int32_t n_products, const int32_t *customer,
                                const int32_t *product, const double *weight, size_t n_pairs,
                                embed_csr **out, char *err, size_t errlen)
{
    if (n_customers < 1 || n_products < 1)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "n_customers (%d) and n_products (%d) must be >= 1", (int)n_customers,
                        (int)n_products);
    if (n_pairs > 0 && (!customer || !product))
        return rfm_fail(err, errlen, RFM_EINVAL, "customer/product arrays are NULL");
    for (size_t i = 0; i < n_pairs; i++) {
        if (customer[i] < 0 || customer[i] >= n_customers)
            return rfm_fail(err, errlen, RFM_EINVAL, "pair %zu: customer index %d outside [0, %d)",
                            i, (int)customer[i], (int)n_customers);
        if (product[i] < 0 || product[i] >= n_products)
            return rfm_fail(err, errlen, RFM_EINVAL, "pair %zu: product index %d outside [0, %d)",
                            i, (int)product[i], (int)n_products);
        if (weight && (!(weight[i] > 0) || !isfinite(weight[i])))
            return rfm_fail(err, errlen, RFM_EINVAL, "pair %zu: weight %g must be finite and > 0",
                            i, weight[i]);
    }

    int64_t *start = calloc((size_t)n_customers + 1, sizeof *start);
    pair_entry *ent = malloc((n_pairs + 1) * sizeof *ent);
    if (!start || !ent) {
        free(start);
        free(ent);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory building counts matrix");
    }
    for (size_t i = 0; i < n_pairs; i++)
        start[customer[i] + 1]++;
    for (int32_t c = 0; c < n_customers; c++)
        start[c + 1] += start[c];
    {
        int64_t *fill = malloc(((size_t)n_customers + 1) * sizeof *fill);
        if (!fill) {
            free(start);
            free(ent);
            return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory building counts matrix");
        }
        memcpy(fill, start, ((size_t)n_customers + 1) * sizeof *fill);
        for (size_t i = 0; i < n_pairs; i++) {
            pair_entry *e = &ent[fill[customer[i]]++];
            e->product = product[i];
            e->pos = i;
            e->w = weight ? weight[i] : 1.0;
        }
        free(fill);
    }

    /* First pass counts distinct products per row to size the output. */
    int64_t nnz = 0;
    for (int32_t c = 0; c < n_customers; c++) {
        pair_entry *row = ent + start[c];
        size_t len = (size_t)(start[c + 1] - start[c]);
        qsort(row, len, sizeof *row, cmp_pair);
        for (size_t i = 0; i < len; i++)
            if (i == 0 || row[i].product != row[i - 1].product)
                nnz++;
    }
    embed_csr *m = csr_alloc(n_customers, n_products, nnz);
    if (!m) {
        free(start);
        free(ent);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory building counts matrix");
    }
    int64_t k = 0;
    for (int32_t c = 0; c < n_customers; c++) {
        for (int64_t i = start[c]; i < start[c + 1]; i++) {
            if (i == start[c] || ent[i].product != ent[i - 1].product) {
                m->col_idx[k] = ent[i].product;
                m->counts[k] = ent[i].w;
                k++;
            } else {
                m->counts[k - 1] += ent[i].w;
            }
        }
        m->row_ptr[c + 1] = k;
    }
    free(start);
    free(ent);
    *out = m;
    return RFM_OK;
}

rfm_status embed_ppmi(const embed_csr *counts, double alpha, embed_csr **out, char *err,
                      size_t errlen)
{
    rfm_status st = embed_csr_check(counts, err, errlen);
    if (st != RFM_OK)
        return st;
    if (!(alpha > 0 && alpha <= 1))
        return rfm_fail(err, errlen, RFM_EINVAL, "alpha %g must be in (0, 1]", alpha);
    int32_t nc = counts->n_customers, np = counts->n_products;
    int64_t nnz = counts->row_ptr[nc];
    if (nnz == 0)
        return rfm_fail(err, errlen, RFM_EDATA, "counts matrix has no purchases");

    double *colsum = calloc((size_t)np, sizeof *colsum);
    double *logq = malloc((size_t)np * sizeof *logq);
    if (!colsum || !logq) {
        free(colsum);
        free(logq);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory computing PPMI");
    }
    for (int64_t e = 0; e < nnz; e++)
        colsum[counts->col_idx[e]] += counts->counts[e];
    /* q(p) = n(p)^alpha / Z, in logs: products never bought have no entries. */
    double z = 0;
    for (int32_t p = 0; p < np; p++)
        if (colsum[p] > 0)
            z += pow(colsum[p], alpha);
    double logz = log(z);
    for (int32_t p = 0; p < np; p++)
        logq[p] = colsum[p] > 0 ? alpha * log(colsum[p]) - logz : 0;

    int64_t kept = 0;
    for (int32_t c = 0; c < nc; c++) {
        double rs = 0;
        for (int64_t e = counts->row_ptr[c]; e < counts->row_ptr[c + 1]; e++)
            rs += counts->counts[e];
        double lr = rs > 0 ? log(rs) : 0;
        for (int64_t e = counts->row_ptr[c]; e < counts->row_ptr[c + 1]; e++)
            if (log(counts->counts[e]) - lr - logq[counts->col_idx[e]] > 0)
                kept++;
    }
    embed_csr *m = csr_alloc(nc, np, kept);
    if (!m) {
        free(colsum);
        free(logq);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory computing PPMI");
    }
    int64_t k = 0;
    for (int32_t c = 0; c < nc; c++) {
        double rs = 0;
        for (int64_t e = counts->row_ptr[c]; e < counts->row_ptr[c + 1]; e++)
            rs += counts->counts[e];
        double lr = rs > 0 ? log(rs) : 0;
        for (int64_t e = counts->row_ptr[c]; e < counts->row_ptr[c + 1]; e++) {
            double pmi = log(counts->counts[e]) - lr - logq[counts->col_idx[e]];
            if (pmi > 0) {
                m->col_idx[k] = counts->col_idx[e];
                m->counts[k] = pmi;
                k++;
            }
        }
        m->row_ptr[c + 1] = k;
    }
    free(colsum);
    free(logq);
    *out = m;
    return RFM_OK;
}

/* ------------------------------------------------------------------ */
/* randomized SVD */

void embed_params_default(embed_params *p)
{
    p->dim = 32;
    p->alpha = 0.75;
    p->oversample = 10;
    p->power_iters = 5;
    p->seed = 42;
    p->neighbors = 10;
}

const char *embed_check_params(const embed_params *p)
{
    if (!p)
        return "embedding parameters are NULL";
    if (p->dim < 1 || p->dim > EMBED_MAX_DIM)
        return "dim must be in 1..512";
    if (!(p->alpha > 0 && p->alpha <= 1))
        return "alpha must be in (0, 1]";
    if (p->oversample < 0 || p->oversample > 1000)
        return "oversample must be in 0..1000";
    if (p->power_iters < 0 || p->power_iters > 50)
        return "power_iters must be in 0..50";
    if (p->neighbors < 1 || p->neighbors > 100)
        return "neighbors must be in 1..100";
    return NULL;
}

/* Y (nr x l, row-major) = A X, X is (nc x l). */
static void spmm(const embed_csr *a, const double *x, int l, double *y)
{
    for (int32_t c = 0; c < a->n_customers; c++) {
        double *yr = y + (size_t)c * l;
        memset(yr, 0, (size_t)l * sizeof *yr);
        for (int64_t e = a->row_ptr[c]; e < a->row_ptr[c + 1]; e++) {
            const double *xr = x + (size_t)a->col_idx[e] * l;
            double v = a->counts[e];
            for (int j = 0; j < l; j++)
                yr[j] += v * xr[j];
        }
    }
}

/* Z (nc x l) = A^T Y, Y is (nr x l). */
static void spmm_t(const embed_csr *a, const double *y, int l, double *z)
{
    memset(z, 0, (size_t)a->n_products * (size_t)l * sizeof *z);
    for (int32_t c = 0; c < a->n_customers; c++) {
        const double *yr = y + (size_t)c * l;
        for (int64_t e = a->row_ptr[c]; e < a->row_ptr[c + 1]; e++) {
            double *zr = z + (size_t)a->col_idx[e] * l;
            double v = a->counts[e];
            for (int j = 0; j < l; j++)
                zr[j] += v * yr[j];
        }
    }
}

/* Orthonormalise the l columns of row-major y (n x l) in place by modified
 * Gram-Schmidt with a second pass ("twice is enough", Giraud et al. 2005),
 * using tmp (n x l) as a column-major copy. A column that vanishes against
 * the earlier ones (rank below l) is set to zero rather than amplified
 * noise; zero columns contribute nothing downstream. */
static void orthonormalise(double *y, size_t n, int l, double *tmp)
{
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < l; j++)
            tmp[(size_t)j * n + i] = y[i * (size_t)l + j];
    for (int j = 0; j < l; j++) {
        double *cj = tmp + (size_t)j * n;
        double before = 0;
        for (size_t i = 0; i < n; i++)
            before += cj[i] * cj[i];
        before = sqrt(before);
        for (int pass = 0; pass < 2; pass++)
            for (int q = 0; q < j; q++) {
                const double *cq = tmp + (size_t)q * n;
                double d = 0;
                for (size_t i = 0; i < n; i++)
                    d += cq[i] * cj[i];
                for (size_t i = 0; i < n; i++)
                    cj[i] -= d * cq[i];
            }
        double nrm = 0;
        for (size_t i = 0; i < n; i++)
            nrm += cj[i] * cj[i];
        nrm = sqrt(nrm);
        if (!(nrm > 1e-10 * before) || nrm == 0) {
            memset(cj, 0, n * sizeof *cj);
            continue;
        }
        for (size_t i = 0; i < n; i++)
            cj[i] /= nrm;
    }
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < l; j++)
            y[i * (size_t)l + j] = tmp[(size_t)j * n + i];
}

/* Rows of x (n x l row-major), first dim columns scaled by w, into
 * L2-normalised float rows of out (n x dim). Rows whose norm is negligible
 * against the largest row (no signal in the kept subspace) become zero.
 * Returns how many rows are zero. */
static int32_t scale_normalise(const double *x, int32_t n, int l, int dim, const double *w,
                               float *out)
{
    double maxn = 0;
    for (int32_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < dim; j++) {
            double v = x[(size_t)i * l + j] * w[j];
            s += v * v;
        }
        if (s > maxn)
            maxn = s;
    }
    maxn = sqrt(maxn);
    int32_t zeros = 0;
    for (int32_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < dim; j++) {
            double v = x[(size_t)i * l + j] * w[j];
            s += v * v;
        }
        s = sqrt(s);
        float *o = out + (size_t)i * dim;
        if (!(s > 1e-9 * maxn) || s == 0) {
            memset(o, 0, (size_t)dim * sizeof *o);
            zeros++;
            continue;
        }
        for (int j = 0; j < dim; j++)
            o[j] = (float)(x[(size_t)i * l + j] * w[j] / s);
    }
    return zeros;
}

void embed_free(embed_model *m)
{
    if (!m)
        return;
    free(m->customers);
    free(m->products);
    free(m->sv);
    free(m);
}

rfm_status embed_fit(const embed_csr *counts, const embed_params *p, rfm_rng *rng,
                     embed_model **out, char *err, size_t errlen)
{
    const char *why = embed_check_params(p);
    if (why)
        return rfm_fail(err, errlen, RFM_EINVAL, "embedding parameters: %s", why);
    if (!rng)
        return rfm_fail(err, errlen, RFM_EINVAL, "rng is NULL");
    rfm_status st = embed_csr_check(counts, err, errlen);
    if (st != RFM_OK)
        return st;
    int32_t nc = counts->n_customers, np = counts->n_products;
    int32_t lim = nc < np ? nc : np;
    if (p->dim > lim)
        return rfm_fail(err, errlen, RFM_EINVAL, "dim %d exceeds min(customers %d, products %d)",
                        p->dim, (int)nc, (int)np);
    int l = p->dim + p->oversample;
    if (l > lim)
        l = lim;

    embed_csr *a = NULL;
    st = embed_ppmi(counts, p->alpha, &a, err, errlen);
    if (st != RFM_OK)
        return st;
    if (a->row_ptr[nc] == 0) {
        embed_csr_free(a);
        return rfm_fail(err, errlen, RFM_EDATA,
                        "no positive PMI entry: purchases carry no co-occurrence signal");
    }

    size_t big = (size_t)(nc > np ? nc : np) * (size_t)l;
    double *y = malloc((size_t)nc * l * sizeof *y);
    double *z = malloc((size_t)np * l * sizeof *z);
    double *tmp = malloc(big * sizeof *tmp);
    double *left = malloc((size_t)nc * l * sizeof *left);
    embed_model *m = calloc(1, sizeof *m);
    gsl_matrix *vs = gsl_matrix_alloc((size_t)l, (size_t)l);
    gsl_vector *s = gsl_vector_alloc((size_t)l);
    if (m) {
        m->customers = malloc((size_t)nc * p->dim * sizeof *m->customers);
        m->products = malloc((size_t)np * p->dim * sizeof *m->products);
        m->sv = malloc((size_t)p->dim * sizeof *m->sv);
    }
    if (!y || !z || !tmp || !left || !m || !m->customers || !m->products || !m->sv || !vs || !s) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory fitting embeddings (%d x %d, l %d)",
                      (int)nc, (int)np, l);
        goto done;
    }

    /* Range finder with power iterations (Halko et al. 2011, alg. 4.4). */
    for (size_t i = 0; i < (size_t)np * l; i++)
        z[i] = rfm_rng_normal(rng);
    spmm(a, z, l, y);
    orthonormalise(y, (size_t)nc, l, tmp);
    for (int it = 0; it < p->power_iters; it++) {
        spmm_t(a, y, l, z);
        orthonormalise(z, (size_t)np, l, tmp);
        spmm(a, z, l, y);
        orthonormalise(y, (size_t)nc, l, tmp);
    }
    /* B^T = A^T Q (np x l); its SVD U' S V'^T gives A ~= (Q V') S U'^T. */
    spmm_t(a, y, l, z);
    {
        gsl_matrix_view bt = gsl_matrix_view_array(z, (size_t)np, (size_t)l);
        int gs = gsl_linalg_SV_decomp_jacobi(&bt.matrix, vs, s);
        if (gs != GSL_SUCCESS) {
            st = rfm_fail(err, errlen, RFM_ELIBRARY, "GSL SVD of the projected matrix failed: %s",
                          gsl_strerror(gs));
            goto done;
        }
    }
    /* z now holds U' (np x l): product-side singular vectors. Fix each
     * component's sign so that its largest product loading is positive; the
     * SVD leaves signs arbitrary and a fixed rule keeps refits comparable. */
    for (int j = 0; j < l; j++) {
        size_t best = 0;
        double bv = 0;
        for (size_t i = 0; i < (size_t)np; i++) {
            double v = fabs(z[i * l + j]);
            if (v > bv) {
                bv = v;
                best = i;
            }
        }
        if (z[best * l + j] < 0) {
            for (size_t i = 0; i < (size_t)np; i++)
                z[i * l + j] = -z[i * l + j];
            for (int r = 0; r < l; r++)
                gsl_matrix_set(vs, (size_t)r, (size_t)j, -gsl_matrix_get(vs, (size_t)r, (size_t)j));
        }
    }
    /* left = Q V' (nc x l). */
    for (size_t i = 0; i < (size_t)nc; i++)
        for (int j = 0; j < l; j++) {
            double acc = 0;
            for (int r = 0; r < l; r++)
                acc += y[i * l + r] * gsl_matrix_get(vs, (size_t)r, (size_t)j);
            left[i * l + j] = acc;
        }
    double w[4096];
    for (int j = 0; j < p->dim; j++) {
        double sj = gsl_vector_get(s, (size_t)j);
        m->sv[j] = sj;
        w[j] = sqrt(sj > 0 ? sj : 0);
    }
    m->dim = p->dim;
    m->n_customers = nc;
    m->n_products = np;
    m->n_zero_customers = scale_normalise(left, nc, l, p->dim, w, m->customers);
    m->n_zero_products = scale_normalise(z, np, l, p->dim, w, m->products);
    *out = m;
    m = NULL;
    st = RFM_OK;
done:
    embed_free(m);
    embed_csr_free(a);
    free(y);
    free(z);
    free(tmp);
    free(left);
    if (vs)
        gsl_matrix_free(vs);
    if (s)
        gsl_vector_free(s);
    return st;
}

int embed_dim(const embed_model *m) { return m->dim; }
int32_t embed_n_customers(const embed_model *m) { return m->n_customers; }
int32_t embed_n_products(const embed_model *m) { return m->n_products; }
const float *embed_customer_vectors(const embed_model *m) { return m->customers; }
const float *embed_product_vectors(const embed_model *m) { return m->products; }
const double *embed_singular_values(const embed_model *m) { return m->sv; }
int32_t embed_n_zero_customers(const embed_model *m) { return m->n_zero_customers; }
int32_t embed_n_zero_products(const embed_model *m) { return m->n_zero_products; }

/* ------------------------------------------------------------------ */
/* evaluation */

typedef struct {
    double score;
    int32_t product;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->product > y->product) - (x->product < y->product);
}

rfm_status embed_eval_hitrate(const embed_csr *train, const int64_t *holdout_ptr,
                              const int32_t *holdout_items, const int64_t *nbr_ids,
                              const float *nbr_sims, int n_neighbors, int top_n, embed_eval *out,
                              char *err, size_t errlen)
{
    rfm_status st = embed_csr_check(train, err, errlen);
    if (st != RFM_OK)
        return st;
    if (top_n < 1)
        return rfm_fail(err, errlen, RFM_EINVAL, "top_n %d must be >= 1", top_n);
    if (n_neighbors < 0 || (n_neighbors > 0 && (!nbr_ids || !nbr_sims)))
        return rfm_fail(err, errlen, RFM_EINVAL, "neighbour lists missing or n_neighbors < 0");
    if (!holdout_ptr || (!holdout_items && holdout_ptr[train->n_customers] > 0))
        return rfm_fail(err, errlen, RFM_EINVAL, "held-out baskets are NULL");
    int32_t nc = train->n_customers, np = train->n_products;
    if (holdout_ptr[0] != 0)
        return rfm_fail(err, errlen, RFM_EINVAL, "holdout_ptr[0] must be 0");
    for (int32_t c = 0; c < nc; c++) {
        if (holdout_ptr[c + 1] < holdout_ptr[c])
            return rfm_fail(err, errlen, RFM_EINVAL, "holdout_ptr decreases at customer row %d",
                            (int)c);
        for (int64_t e = holdout_ptr[c]; e < holdout_ptr[c + 1]; e++)
            if (holdout_items[e] < 0 || holdout_items[e] >= np)
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "held-out basket of customer row %d: product %d outside [0, %d)",
                                (int)c, (int)holdout_items[e], (int)np);
        for (int j = 0; j < n_neighbors; j++) {
            int64_t id = nbr_ids[(size_t)c * n_neighbors + j];
            float sv = nbr_sims[(size_t)c * n_neighbors + j];
            if (id < -1 || id >= nc)
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "neighbour %d of customer row %d: id %lld outside [-1, %d)", j,
                                (int)c, (long long)id, (int)nc);
            if (id >= 0 && !isfinite(sv))
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "neighbour %d of customer row %d: similarity not finite", j,
                                (int)c);
        }
    }

    double *score = calloc((size_t)np, sizeof *score);
    int32_t *pop = calloc((size_t)np, sizeof *pop);
    int32_t *pop_order = malloc((size_t)np * sizeof *pop_order);
    scored *touched = malloc((size_t)np * sizeof *touched);
    unsigned char *bought = calloc((size_t)np, 1);
    unsigned char *held = calloc((size_t)np, 1);
    if (!score || !pop || !pop_order || !touched || !bought || !held) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory evaluating embeddings");
        goto done;
    }
    for (int64_t e = 0; e < train->row_ptr[nc]; e++)
        pop[train->col_idx[e]]++;
    for (int32_t p = 0; p < np; p++) {
        touched[p].score = pop[p];
        touched[p].product = p;
    }
    qsort(touched, (size_t)np, sizeof *touched, cmp_scored);
    for (int32_t p = 0; p < np; p++)
        pop_order[p] = touched[p].product;

    int64_t n_eval = 0, h_nb = 0, h_pop = 0, h_nb_new = 0, h_pop_new = 0;
    for (int32_t c = 0; c < nc; c++) {
        if (holdout_ptr[c + 1] == holdout_ptr[c] || train->row_ptr[c + 1] == train->row_ptr[c])
            continue;
        n_eval++;
        for (int64_t e = train->row_ptr[c]; e < train->row_ptr[c + 1]; e++)
            bought[train->col_idx[e]] = 1;
        for (int64_t e = holdout_ptr[c]; e < holdout_ptr[c + 1]; e++)
            held[holdout_items[e]] = 1;

        /* Popularity, with and without already-bought products. */
        int hit = 0, hit_new = 0, taken = 0;
        for (int r = 0; r < top_n && r < np; r++)
            hit |= held[pop_order[r]];
        for (int32_t r = 0; r < np && taken < top_n; r++) {
            if (bought[pop_order[r]])
                continue;
            taken++;
            hit_new |= held[pop_order[r]];
        }
        h_pop += hit;
        h_pop_new += hit_new;

        /* Neighbours' purchases weighted by similarity. */
        int32_t nt = 0;
        for (int j = 0; j < n_neighbors; j++) {
            int64_t id = nbr_ids[(size_t)c * n_neighbors + j];
            double sv = nbr_sims[(size_t)c * n_neighbors + j];
            if (id < 0 || id == c || !(sv > 0))
                continue;
            for (int64_t e = train->row_ptr[id]; e < train->row_ptr[id + 1]; e++) {
                int32_t p = train->col_idx[e];
                if (score[p] == 0)
                    touched[nt++].product = p;
                score[p] += sv;
            }
        }
        for (int32_t t = 0; t < nt; t++)
            touched[t].score = score[touched[t].product];
        qsort(touched, (size_t)nt, sizeof *touched, cmp_scored);
        hit = hit_new = taken = 0;
        for (int32_t t = 0; t < nt && t < top_n; t++)
            hit |= held[touched[t].product];
        for (int32_t t = 0; t < nt && taken < top_n; t++) {
            if (bought[touched[t].product])
                continue;
            taken++;
            hit_new |= held[touched[t].product];
        }
        h_nb += hit;
        h_nb_new += hit_new;

        for (int32_t t = 0; t < nt; t++)
            score[touched[t].product] = 0;
        for (int64_t e = train->row_ptr[c]; e < train->row_ptr[c + 1]; e++)
            bought[train->col_idx[e]] = 0;
        for (int64_t e = holdout_ptr[c]; e < holdout_ptr[c + 1]; e++)
            held[holdout_items[e]] = 0;
    }
    if (n_eval == 0) {
        st = rfm_fail(err, errlen, RFM_EDATA,
                      "no customer has both a training history and a held-out basket");
        goto done;
    }
    out->n_eval = n_eval;
    out->n_neighbors = n_neighbors;
    out->top_n = top_n;
    out->hit_neighbors = (double)h_nb / (double)n_eval;
    out->hit_popular = (double)h_pop / (double)n_eval;
    out->hit_neighbors_new = (double)h_nb_new / (double)n_eval;
    out->hit_popular_new = (double)h_pop_new / (double)n_eval;
    st = RFM_OK;
done:
    free(score);
    free(pop);
    free(pop_order);
    free(touched);
    free(bought);
    free(held);
    return st;
}

/* --- from transactions ----------------------------------------------- */

rfm_status embed_txn_counts(const txn_data *d, int holdout, embed_csr **out, int64_t **holdout_ptr,
                            int32_t **holdout_items, char *err, size_t errlen)
{
    size_t n = txn_ncustomers(d), np = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t *p, *c, *l;
        size_t k;
        txn_customer_products(d, i, &p, &c, &l, &k);
        np += k;
    }
    int32_t *cu = malloc((np + 1) * sizeof *cu), *pr = malloc((np + 1) * sizeof *pr);
    double *w = malloc((np + 1) * sizeof *w);
    int64_t *ptr = holdout ? calloc(n + 1, sizeof *ptr) : NULL;
    int32_t *items = holdout ? malloc((np + 1) * sizeof *items) : NULL;
    rfm_status st = RFM_OK;
    if (!cu || !pr || !w || (holdout && (!ptr || !items))) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for %zu purchases", np);
        goto out;
    }
    size_t m = 0, h = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t *p, *c, *l;
        size_t k;
        txn_customer_products(d, i, &p, &c, &l, &k);
        for (size_t j = 0; j < k; j++) {
            double cnt = c[j] - (holdout ? l[j] : 0);
            if (holdout && l[j] > 0)
                items[h++] = (int32_t)p[j];
            if (cnt > 0) {
                cu[m] = (int32_t)i, pr[m] = (int32_t)p[j], w[m] = cnt;
                m++;
            }
        }
        if (holdout)
            ptr[i + 1] = (int64_t)h;
    }
    st =
        embed_csr_from_pairs((int32_t)n, (int32_t)txn_nproducts(d), cu, pr, w, m, out, err, errlen);
out:
    free(cu), free(pr), free(w);
    if (st != RFM_OK || !holdout) {
        free(ptr), free(items);
        ptr = NULL, items = NULL;
    }
    if (holdout_ptr)
        *holdout_ptr = ptr;
    if (holdout_items)
        *holdout_items = items;
    return st;
}

rfm_status embed_holdout_eval(const txn_data *d, const embed_params *p, const ann_params *ap,
                              int top_n, embed_eval *out, char *err, size_t errlen)
{
    size_t n = txn_ncustomers(d);
    int k = p->neighbors;
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    int64_t *nbr = malloc((n ? n : 1) * (size_t)(k > 0 ? k : 1) * sizeof *nbr);
    float *sims = malloc((n ? n : 1) * (size_t)(k > 0 ? k : 1) * sizeof *sims);
    embed_csr *train = NULL;
    int64_t *hp = NULL;
    int32_t *hi = NULL;
    embed_model *em = NULL;
    ann_index *ix = NULL;
    rfm_rng rng;
    rfm_status st;
    if (!ids || !nbr || !sims) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = txn_customer_id(d, i);
    rfm_rng_seed(&rng, p->seed);
    if (!(st = embed_txn_counts(d, 1, &train, &hp, &hi, err, errlen)) &&
        !(st = embed_fit(train, p, &rng, &em, err, errlen)) &&
        !(st = ann_build(embed_customer_vectors(em), (int64_t)n, p->dim, ids, ap, &ix, err,
                         errlen)) &&
        !(st = ann_neighbors_all(ix, k, nbr, sims, err, errlen)))
        st = embed_eval_hitrate(train, hp, hi, nbr, sims, k, top_n, out, err, errlen);
out:
    ann_free(ix);
    embed_free(em);
    embed_csr_free(train);
    free(hp), free(hi), free(nbr), free(sims), free(ids);
    return st;
}
