/* forest.c - binned regression and honest causal forests (see forest.h). */
#include "forest.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "rng.h"

/* One node of a flattened tree. feat < 0: leaf, child = leaf index.
 * Otherwise x[feat] <= thr goes to child, else to child + 1. */
typedef struct {
    int32_t feat;
    int32_t child;
    double thr;
} fnode;

struct forest {
    forest_kind kind;
    size_t d;
    int n_trees;
    int nv;              /* values per leaf: 1 regression, 3 causal */
    int32_t *tree_start; /* n_trees + 1 node offsets */
    fnode *nodes;
    size_t n_nodes;
    int32_t *leaf_count; /* estimation samples per leaf; 0 = skipped */
    double *leaf_val;    /* n_leaves * nv */
    size_t n_leaves;
};

void forest_default_params(forest_params *p, forest_kind kind)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    /* Tuned on 64,000 simulated customers: 100 trees with leaves of >= 50
     * (regression) / 100 (causal) split-half rows keep a 2-arm model near
     * 30 us per customer and 2-3 MB of JSON, with a lower effect MSE than
     * smaller leaves (bench/bench_uplift.c). */
    p->n_trees = 100;
    p->sample_frac = 0.5;
    p->honest = kind == FOREST_CAUSAL;
    p->min_leaf = kind == FOREST_CAUSAL ? 100 : 50;
    p->min_arm = 5;
    p->mtry = 0;
    p->max_depth = 20;
    p->max_bins = 64;
    p->n_threads = 2;
    p->seed = 1;
}

const char *forest_check_params(const forest_params *p)
{
    if (p->kind != FOREST_REGRESSION && p->kind != FOREST_CAUSAL)
        return "kind must be regression or causal";
    if (p->n_trees < 1 || p->n_trees > 100000)
        return "n_trees must be in 1..100000";
    if (!(p->sample_frac > 0.0 && p->sample_frac <= 1.0))
        return "sample_frac must be in (0, 1]";
    if (p->honest != 0 && p->honest != 1)
        return "honest must be 0 or 1";
    if (p->min_leaf < 1)
        return "min_leaf must be >= 1";
    if (p->kind == FOREST_CAUSAL && p->min_arm < 1)
        return "min_arm must be >= 1";
    if (p->mtry < 0)
        return "mtry must be >= 0";
    if (p->max_depth < 1 || p->max_depth > 64)
        return "max_depth must be in 1..64";
    if (p->max_bins < 2 || p->max_bins > 256)
        return "max_bins must be in 2..256";
    if (p->n_threads < 1 || p->n_threads > 64)
        return "n_threads must be in 1..64";
    return NULL;
}

/* ---- binning ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A threshold t with a <= t < b, so that a goes left and b right. */
static double midpoint(double a, double b)
{
    double m = 0.5 * a + 0.5 * b;
    return (m >= a && m < b) ? m : a;
}

/* Cuts per feature (cuts[f * (max_bins-1) + j], ncut[f] of them, ascending)
 * and the bin of every value: bin = number of cuts strictly below x, so that
 * bin <= j exactly when x <= cut j. */
static rfm_status make_bins(const double *X, size_t n, size_t d, int max_bins, uint8_t *bins,
                            double *cuts, int *ncut)
{
    double *col = malloc(n * sizeof *col), *uniq = malloc(n * sizeof *uniq);
    if (!col || !uniq) {
        free(col);
        free(uniq);
        return RFM_ENOMEM;
    }
    size_t stride = (size_t)max_bins - 1;
    for (size_t f = 0; f < d; f++) {
        for (size_t i = 0; i < n; i++)
            col[i] = X[i * d + f];
        qsort(col, n, sizeof *col, cmp_double);
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (m == 0 || col[i] != uniq[m - 1])
                uniq[m++] = col[i];
        double *c = cuts + f * stride;
        int k = 0;
        if (m <= (size_t)max_bins) {
            for (size_t r = 0; r + 1 < m; r++)
                c[k++] = midpoint(uniq[r], uniq[r + 1]);
        } else {
            /* Quantile cuts: the value at each j/max_bins position goes left. */
            size_t r = 0;
            for (int j = 1; j < max_bins; j++) {
                double v = col[(size_t)j * n / (size_t)max_bins];
                while (uniq[r] < v)
                    r++;
                if (r + 1 >= m)
                    break;
                double t = midpoint(uniq[r], uniq[r + 1]);
                if (k == 0 || t > c[k - 1])
                    c[k++] = t;
            }
        }
        ncut[f] = k;
        for (size_t i = 0; i < n; i++) {
            double x = X[i * d + f];
            int lo = 0, hi = k; /* count of cuts < x by bisection */
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (c[mid] < x)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            bins[i * d + f] = (uint8_t)lo;
        }
    }
    free(col);
    free(uniq);
    return RFM_OK;
}

/* ---- growing one tree ------------------------------------------------- */

typedef struct {
    fnode *nodes;
    size_t n_nodes;
    int32_t *leaf_count;
    double *leaf_val;
    size_t n_leaves;
} tree_out;

typedef struct {
    const forest_params *p;
    size_t n, d;
    int mtry, nv;
    const uint8_t *bins;
    const double *cuts;
    const int *ncut;
    const double *y;
    const uint8_t *w;
    tree_out *trees;
    uint8_t *inbag; /* n_trees * inbag_stride bytes, or NULL */
    size_t inbag_stride;
    int n_threads;
} fit_ctx;

/* Per-thread scratch, reused across the trees a thread grows. */
typedef struct {
    uint32_t *perm;
    double *rho;
    double *hsum;
    int32_t *hcnt, *hcntw;
    int *feats;
    fnode *nodes;
    int32_t *splitbin;
    size_t cap_nodes;
    uint32_t *leaf_lo, *leaf_hi;
    size_t cap_leaves;
    struct stack_item {
        int32_t node;
        uint32_t lo, hi;
        int depth;
    } * stack;
} workspace;

static void ws_free(workspace *ws)
{
    free(ws->perm);
    free(ws->rho);
    free(ws->hsum);
    free(ws->hcnt);
    free(ws->hcntw);
    free(ws->feats);
    free(ws->nodes);
    free(ws->splitbin);
    free(ws->leaf_lo);
    free(ws->leaf_hi);
    free(ws->stack);
}

static int ws_init(workspace *ws, const fit_ctx *c)
{
    memset(ws, 0, sizeof *ws);
    size_t nb = (size_t)c->p->max_bins;
    ws->perm = malloc(c->n * sizeof *ws->perm);
    ws->rho = malloc(c->n * sizeof *ws->rho);
    ws->hsum = calloc(nb, sizeof *ws->hsum);
    ws->hcnt = calloc(nb, sizeof *ws->hcnt);
    ws->hcntw = calloc(nb, sizeof *ws->hcntw);
    ws->feats = malloc(c->d * sizeof *ws->feats);
    ws->stack = malloc(((size_t)c->p->max_depth + 2) * 2 * sizeof *ws->stack);
    if (!ws->perm || !ws->rho || !ws->hsum || !ws->hcnt || !ws->hcntw || !ws->feats || !ws->stack) {
        ws_free(ws);
        return -1;
    }
    return 0;
}

/* Room for two more nodes and one more leaf. */
static int ws_reserve(workspace *ws, size_t n_nodes, size_t n_leaves)
{
    if (n_nodes + 2 > ws->cap_nodes) {
        size_t cap = ws->cap_nodes ? 2 * ws->cap_nodes : 256;
        fnode *nn = realloc(ws->nodes, cap * sizeof *nn);
        if (!nn)
            return -1;
        ws->nodes = nn;
        int32_t *sb = realloc(ws->splitbin, cap * sizeof *sb);
        if (!sb)
            return -1;
        ws->splitbin = sb;
        ws->cap_nodes = cap;
    }
    if (n_leaves + 1 > ws->cap_leaves) {
        size_t cap = ws->cap_leaves ? 2 * ws->cap_leaves : 128;
        uint32_t *lo = realloc(ws->leaf_lo, cap * sizeof *lo);
        if (!lo)
            return -1;
        ws->leaf_lo = lo;
        uint32_t *hi = realloc(ws->leaf_hi, cap * sizeof *hi);
        if (!hi)
            return -1;
        ws->leaf_hi = hi;
        ws->cap_leaves = cap;
    }
    return 0;
}

/* Best split of idx[lo, hi) (split-half positions) or -1 in *feat_out. */
static void find_split(const fit_ctx *c, workspace *ws, rfm_rng *rng, uint32_t lo, uint32_t hi,
                       int depth, int *feat_out, int *bin_out)
{
    const forest_params *p = c->p;
    const uint32_t *idx = ws->perm;
    size_t m = hi - lo, d = c->d;
    *feat_out = -1;
    if (depth >= p->max_depth || m < 2 * (size_t)p->min_leaf)
        return;
    double *rho = ws->rho;
    size_t n_treat = 0;
    if (c->w == NULL) {
        for (uint32_t k = lo; k < hi; k++)
            rho[k] = c->y[idx[k]];
    } else {
        double sw = 0, sy = 0, swy = 0;
        for (uint32_t k = lo; k < hi; k++) {
            double wi = c->w[idx[k]], yi = c->y[idx[k]];
            sw += wi;
            sy += yi;
            swy += wi * yi;
        }
        n_treat = (size_t)sw;
        if (n_treat < 2 * (size_t)p->min_arm || m - n_treat < 2 * (size_t)p->min_arm)
            return;
        double wbar = sw / (double)m, ybar = sy / (double)m;
        double a = wbar * (1.0 - wbar); /* mean (w - wbar)^2 for binary w */
        double tau = (swy / (double)m - wbar * ybar) / a;
        for (uint32_t k = lo; k < hi; k++) {
            double dw = c->w[idx[k]] - wbar;
            rho[k] = dw * (c->y[idx[k]] - ybar - dw * tau) / a;
        }
    }
    double s = 0, ss = 0;
    for (uint32_t k = lo; k < hi; k++) {
        s += rho[k];
        ss += rho[k] * rho[k];
    }
    double base = s * s / (double)m;
    /* Gains below this are rounding noise on a constant pseudo-outcome. */
    double best = 1e-12 * ss;
    int mtry = c->mtry;
    rfm_rng_shuffle(rng, ws->feats, d, (size_t)mtry, sizeof *ws->feats);
    for (int j = 0; j < mtry; j++) {
        int f = ws->feats[j];
        int bmin = 255, bmax = 0;
        for (uint32_t k = lo; k < hi; k++) {
            uint32_t i = idx[k];
            int b = c->bins[(size_t)i * d + (size_t)f];
            ws->hcnt[b]++;
            ws->hsum[b] += rho[k];
            if (c->w)
                ws->hcntw[b] += c->w[i];
            if (b < bmin)
                bmin = b;
            if (b > bmax)
                bmax = b;
        }
        size_t nl = 0, wl = 0;
        double sl = 0;
        for (int b = bmin; b < bmax; b++) {
            nl += (size_t)ws->hcnt[b];
            sl += ws->hsum[b];
            wl += (size_t)ws->hcntw[b];
            if (ws->hcnt[b] == 0 || nl < (size_t)p->min_leaf)
                continue;
            size_t nr = m - nl;
            if (nr < (size_t)p->min_leaf)
                break;
            if (c->w) {
                size_t wr = n_treat - wl;
                if (wl < (size_t)p->min_arm || nl - wl < (size_t)p->min_arm ||
                    wr < (size_t)p->min_arm || nr - wr < (size_t)p->min_arm)
                    continue;
            }
            double sr = s - sl;
            double gain = sl * sl / (double)nl + sr * sr / (double)nr - base;
            if (gain > best) {
                best = gain;
                *feat_out = f;
                *bin_out = b;
            }
        }
        for (int b = bmin; b <= bmax; b++) {
            ws->hcnt[b] = 0;
            ws->hsum[b] = 0;
            ws->hcntw[b] = 0;
        }
    }
}

static uint64_t tree_seed(uint64_t seed, int t)
{
    return seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(t + 1));
}

static rfm_status grow_tree(const fit_ctx *c, workspace *ws, int t)
{
    const forest_params *p = c->p;
    rfm_rng rng;
    rfm_rng_seed(&rng, tree_seed(p->seed, t));
    size_t n = c->n, d = c->d;
    /* Identity first, so the subsample depends on this tree's seed only. */
    for (size_t i = 0; i < n; i++)
        ws->perm[i] = (uint32_t)i;
    for (size_t i = 0; i < d; i++)
        ws->feats[i] = (int)i;
    size_t s = (size_t)ceil(p->sample_frac * (double)n);
    if (s > n)
        s = n;
    rfm_rng_shuffle(&rng, ws->perm, n, s, sizeof *ws->perm);
    if (c->inbag) {
        uint8_t *bits = c->inbag + (size_t)t * c->inbag_stride;
        for (size_t k = 0; k < s; k++)
            bits[ws->perm[k] >> 3] |= (uint8_t)(1u << (ws->perm[k] & 7));
    }
    size_t h = p->honest ? s / 2 : s;

    size_t n_nodes = 1, n_leaves = 0;
    if (ws_reserve(ws, 0, 0))
        return RFM_ENOMEM;
    int top = 0;
    ws->stack[top++] = (struct stack_item){0, 0, (uint32_t)h, 0};
    while (top > 0) {
        struct stack_item it = ws->stack[--top];
        if (ws_reserve(ws, n_nodes, n_leaves))
            return RFM_ENOMEM;
        int f, b = 0;
        find_split(c, ws, &rng, it.lo, it.hi, it.depth, &f, &b);
        fnode *nd = &ws->nodes[it.node];
        if (f < 0) {
            nd->feat = -1;
            nd->thr = 0.0;
            nd->child = (int32_t)n_leaves;
            ws->splitbin[it.node] = 0;
            ws->leaf_lo[n_leaves] = it.lo;
            ws->leaf_hi[n_leaves] = it.hi;
            n_leaves++;
            continue;
        }
        /* Partition positions so that bin <= b come first. */
        uint32_t i = it.lo, j = it.hi;
        while (i < j) {
            if (c->bins[(size_t)ws->perm[i] * d + (size_t)f] <= b) {
                i++;
            } else {
                j--;
                uint32_t tmp = ws->perm[i];
                ws->perm[i] = ws->perm[j];
                ws->perm[j] = tmp;
            }
        }
        nd->feat = f;
        nd->thr = c->cuts[(size_t)f * ((size_t)p->max_bins - 1) + (size_t)b];
        nd->child = (int32_t)n_nodes;
        ws->splitbin[it.node] = b;
        int32_t left = (int32_t)n_nodes;
        n_nodes += 2;
        ws->stack[top++] = (struct stack_item){left + 1, i, it.hi, it.depth + 1};
        ws->stack[top++] = (struct stack_item){left, it.lo, i, it.depth + 1};
    }

    int nv = c->nv;
    tree_out *o = &c->trees[t];
    o->nodes = malloc(n_nodes * sizeof *o->nodes);
    o->leaf_count = calloc(n_leaves, sizeof *o->leaf_count);
    o->leaf_val = calloc(n_leaves * (size_t)nv, sizeof *o->leaf_val);
    if (!o->nodes || !o->leaf_count || !o->leaf_val)
        return RFM_ENOMEM;
    memcpy(o->nodes, ws->nodes, n_nodes * sizeof *o->nodes);
    o->n_nodes = n_nodes;
    o->n_leaves = n_leaves;
    /* Leaf sums from the estimation half (honest) or the split half itself. */
    size_t e_lo = p->honest ? h : 0, e_hi = p->honest ? s : h;
    for (size_t k = e_lo; k < e_hi; k++) {
        uint32_t i = ws->perm[k];
        int32_t nd = 0;
        while (ws->nodes[nd].feat >= 0) {
            const fnode *x = &ws->nodes[nd];
            nd = c->bins[(size_t)i * d + (size_t)x->feat] <= ws->splitbin[nd] ? x->child
                                                                              : x->child + 1;
        }
        int32_t l = ws->nodes[nd].child;
        o->leaf_count[l]++;
        double *v = &o->leaf_val[(size_t)l * (size_t)nv];
        if (nv == 1) {
            v[0] += c->y[i];
        } else {
            double wi = c->w[i], yi = c->y[i];
            v[0] += wi;
            v[1] += yi;
            v[2] += wi * yi;
        }
    }
    for (size_t l = 0; l < n_leaves; l++)
        if (o->leaf_count[l] > 0)
            for (int q = 0; q < nv; q++)
                o->leaf_val[l * (size_t)nv + (size_t)q] /= o->leaf_count[l];
    return RFM_OK;
}

typedef struct {
    fit_ctx *c;
    int tid;
    rfm_status st;
} worker_arg;

static void *worker(void *arg)
{
    worker_arg *a = arg;
    workspace ws;
    if (ws_init(&ws, a->c)) {
        a->st = RFM_ENOMEM;
        return NULL;
    }
    a->st = RFM_OK;
    /* Static assignment; each tree's result depends only on its own seed. */
    for (int t = a->tid; t < a->c->p->n_trees; t += a->c->n_threads) {
        a->st = grow_tree(a->c, &ws, t);
        if (a->st != RFM_OK)
            break;
    }
    ws_free(&ws);
    return NULL;
}

/* ---- prediction ------------------------------------------------------- */

static inline int32_t leaf_of(const forest *f, int t, const double *x)
{
    const fnode *nodes = f->nodes;
    int32_t i = f->tree_start[t];
    while (nodes[i].feat >= 0)
        i = x[nodes[i].feat] <= nodes[i].thr ? nodes[i].child : nodes[i].child + 1;
    return nodes[i].child;
}

/* Mean leaf values over the trees, skipping those whose in-bag bitset (skip,
 * stride bytes per tree; NULL: none) holds bit skip_bit, and leaves with no
 * estimation sample; *used gets how many trees contributed. */
static void leaf_means(const forest *f, const double *x, const uint8_t *skip, size_t skip_bit,
                       size_t stride, double *acc, int *used)
{
    int nv = f->nv, u = 0;
    for (int q = 0; q < nv; q++)
        acc[q] = 0.0;
    for (int t = 0; t < f->n_trees; t++) {
        if (skip && (skip[(size_t)t * stride + (skip_bit >> 3)] >> (skip_bit & 7)) & 1)
            continue;
        int32_t l = leaf_of(f, t, x);
        if (f->leaf_count[l] == 0)
            continue;
        const double *v = &f->leaf_val[(size_t)l * (size_t)nv];
        for (int q = 0; q < nv; q++)
            acc[q] += v[q];
        u++;
    }
    for (int q = 0; q < nv; q++)
        acc[q] = u ? acc[q] / u : 0.0;
    *used = u;
}

static double combine(const forest *f, const double *acc)
{
    if (f->kind == FOREST_REGRESSION)
        return acc[0];
    double ew = acc[0], ey = acc[1], ewy = acc[2];
    double den = ew - ew * ew;
    if (!(den > 1e-12))
        return 0.0;
    return (ewy - ew * ey) / den;
}

double forest_predict(const forest *f, const double *x)
{
    double acc[3];
    int used;
    leaf_means(f, x, NULL, 0, 0, acc, &used);
    return combine(f, acc);
}

forest_kind forest_get_kind(const forest *f) { return f->kind; }
size_t forest_n_features(const forest *f) { return f->d; }
int forest_n_trees(const forest *f) { return f->n_trees; }
size_t forest_n_nodes(const forest *f) { return f->n_nodes; }

forest *forest_clone(const forest *f)
{
    forest *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    *c = *f;
    c->tree_start = malloc(((size_t)f->n_trees + 1) * sizeof *c->tree_start);
    c->nodes = malloc(f->n_nodes * sizeof *c->nodes);
    c->leaf_count = malloc(f->n_leaves * sizeof *c->leaf_count);
    c->leaf_val = malloc(f->n_leaves * (size_t)f->nv * sizeof *c->leaf_val);
    if (!c->tree_start || !c->nodes || !c->leaf_count || !c->leaf_val) {
        forest_free(c);
        return NULL;
    }
    memcpy(c->tree_start, f->tree_start, ((size_t)f->n_trees + 1) * sizeof *c->tree_start);
    memcpy(c->nodes, f->nodes, f->n_nodes * sizeof *c->nodes);
    memcpy(c->leaf_count, f->leaf_count, f->n_leaves * sizeof *c->leaf_count);
    memcpy(c->leaf_val, f->leaf_val, f->n_leaves * (size_t)f->nv * sizeof *c->leaf_val);
    return c;
}

void forest_free(forest *f)
{
    if (!f)
        return;
    free(f->tree_start);
    free(f->nodes);
    free(f->leaf_count);
    free(f->leaf_val);
    free(f);
}

/* ---- fitting ---------------------------------------------------------- */

static rfm_status merge_trees(const fit_ctx *c, forest **out)
{
    forest *f = calloc(1, sizeof *f);
    if (!f)
        return RFM_ENOMEM;
    int B = c->p->n_trees;
    f->kind = c->p->kind;
    f->d = c->d;
    f->n_trees = B;
    f->nv = c->nv;
    size_t nn = 0, nl = 0;
    for (int t = 0; t < B; t++) {
        nn += c->trees[t].n_nodes;
        nl += c->trees[t].n_leaves;
    }
    if (nn > INT32_MAX || nl > INT32_MAX) {
        free(f);
        return RFM_ENOMEM;
    }
    f->tree_start = malloc(((size_t)B + 1) * sizeof *f->tree_start);
    f->nodes = malloc(nn * sizeof *f->nodes);
    f->leaf_count = malloc(nl * sizeof *f->leaf_count);
    f->leaf_val = malloc(nl * (size_t)c->nv * sizeof *f->leaf_val);
    if (!f->tree_start || !f->nodes || !f->leaf_count || !f->leaf_val) {
        forest_free(f);
        return RFM_ENOMEM;
    }
    size_t on = 0, ol = 0;
    for (int t = 0; t < B; t++) {
        const tree_out *o = &c->trees[t];
        f->tree_start[t] = (int32_t)on;
        for (size_t k = 0; k < o->n_nodes; k++) {
            fnode nd = o->nodes[k];
            nd.child += (int32_t)(nd.feat >= 0 ? on : ol);
            f->nodes[on + k] = nd;
        }
        memcpy(f->leaf_count + ol, o->leaf_count, o->n_leaves * sizeof *f->leaf_count);
        memcpy(f->leaf_val + ol * (size_t)c->nv, o->leaf_val,
               o->n_leaves * (size_t)c->nv * sizeof *f->leaf_val);
        on += o->n_nodes;
        ol += o->n_leaves;
    }
    f->tree_start[B] = (int32_t)on;
    f->n_nodes = nn;
    f->n_leaves = nl;
    *out = f;
    return RFM_OK;
}

rfm_status forest_fit(const double *X, size_t n, size_t d, const double *y, const uint8_t *w,
                      const forest_params *p, double *oob, forest **out, char *err, size_t errlen)
{
    const char *why = forest_check_params(p);
    if (why)
        return rfm_fail(err, errlen, RFM_EINVAL, "forest: %s", why);
    if (!X || !y || !out || d == 0 || d > 100000)
        return rfm_fail(err, errlen, RFM_EINVAL, "forest: need X, y and 1..100000 features");
    if (p->kind == FOREST_CAUSAL && !w)
        return rfm_fail(err, errlen, RFM_EINVAL, "forest: causal fit needs a treatment vector");
    if (oob && p->kind != FOREST_REGRESSION)
        return rfm_fail(err, errlen, RFM_EINVAL, "forest: out-of-bag output is for regression");
    if (n < 2 || n > UINT32_MAX / 2)
        return rfm_fail(err, errlen, RFM_EDATA, "forest: %zu rows (need 2..2^31)", n);
    size_t n_treat = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t f = 0; f < d; f++)
            if (!isfinite(X[i * d + f]))
                return rfm_fail(err, errlen, RFM_EINVAL, "forest: X[%zu][%zu] is not finite", i, f);
        if (!isfinite(y[i]))
            return rfm_fail(err, errlen, RFM_EINVAL, "forest: y[%zu] is not finite", i);
        if (p->kind == FOREST_CAUSAL) {
            if (w[i] > 1)
                return rfm_fail(err, errlen, RFM_EINVAL, "forest: w[%zu] is not 0 or 1", i);
            n_treat += w[i];
        }
    }
    if (p->kind == FOREST_CAUSAL && (n_treat == 0 || n_treat == n))
        return rfm_fail(err, errlen, RFM_EDATA,
                        "forest: causal fit needs treated and control rows (%zu of %zu treated)",
                        n_treat, n);

    fit_ctx c = {0};
    c.p = p;
    c.n = n;
    c.d = d;
    c.mtry = p->mtry ? p->mtry : (int)ceil(sqrt((double)d) + 20.0);
    if ((size_t)c.mtry > d)
        c.mtry = (int)d;
    c.nv = p->kind == FOREST_CAUSAL ? 3 : 1;
    c.y = y;
    c.w = p->kind == FOREST_CAUSAL ? w : NULL;
    c.n_threads = p->n_threads < p->n_trees ? p->n_threads : p->n_trees;
    c.inbag_stride = (n + 7) / 8;

    rfm_status st = RFM_ENOMEM;
    forest *f = NULL;
    uint8_t *bins = malloc(n * d);
    double *cuts = malloc(d * ((size_t)p->max_bins - 1) * sizeof *cuts);
    int *ncut = malloc(d * sizeof *ncut);
    c.trees = calloc((size_t)p->n_trees, sizeof *c.trees);
    if (oob)
        c.inbag = calloc((size_t)p->n_trees, c.inbag_stride);
    worker_arg *args = calloc((size_t)c.n_threads, sizeof *args);
    pthread_t *th = calloc((size_t)c.n_threads, sizeof *th);
    if (!bins || !cuts || !ncut || !c.trees || (oob && !c.inbag) || !args || !th)
        goto done;
    st = make_bins(X, n, d, p->max_bins, bins, cuts, ncut);
    if (st != RFM_OK)
        goto done;
    c.bins = bins;
    c.cuts = cuts;
    c.ncut = ncut;

    int started = 0;
    for (int k = 0; k < c.n_threads; k++) {
        args[k] = (worker_arg){&c, k, RFM_OK};
        if (k == 0)
            continue;
        if (pthread_create(&th[k], NULL, worker, &args[k]) != 0) {
            args[k].st = RFM_ENOMEM;
            break;
        }
        started = k;
    }
    /* If a thread could not start, the main thread still grows its own share
     * and the failure is reported after the others are joined. */
    worker(&args[0]);
    for (int k = 1; k <= started; k++)
        pthread_join(th[k], NULL);
    st = RFM_OK;
    for (int k = 0; k < c.n_threads; k++)
        if (args[k].st != RFM_OK)
            st = args[k].st;
    if (st != RFM_OK)
        goto done;
    st = merge_trees(&c, &f);
    if (st != RFM_OK)
        goto done;
    if (oob) {
        for (size_t i = 0; i < n; i++) {
            double acc[3];
            int used;
            leaf_means(f, X + i * d, c.inbag, i, c.inbag_stride, acc, &used);
            oob[i] = used ? combine(f, acc) : forest_predict(f, X + i * d);
        }
    }
    *out = f;
    f = NULL;

done:
    if (st == RFM_ENOMEM)
        rfm_fail(err, errlen, st, "forest: out of memory");
    forest_free(f);
    if (c.trees)
        for (int t = 0; t < p->n_trees; t++) {
            free(c.trees[t].nodes);
            free(c.trees[t].leaf_count);
            free(c.trees[t].leaf_val);
        }
    free(c.trees);
    free(c.inbag);
    free(bins);
    free(cuts);
    free(ncut);
    free(args);
    free(th);
    return st;
}

/* ---- JSON ------------------------------------------------------------- */

rfm_status forest_to_json(const forest *f, json_t **out, char *err, size_t errlen)
{
    json_t *j = json_object();
    json_t *ts = json_array(), *fe = json_array(), *th = json_array(), *ch = json_array();
    json_t *lc = json_array(), *lv = json_array();
    int bad = !j || !ts || !fe || !th || !ch || !lc || !lv;
    for (int t = 0; !bad && t <= f->n_trees; t++)
        bad |= json_array_append_new(ts, json_integer(f->tree_start[t]));
    for (size_t k = 0; !bad && k < f->n_nodes; k++) {
        bad |= json_array_append_new(fe, json_integer(f->nodes[k].feat));
        bad |= json_array_append_new(th, json_real(f->nodes[k].thr));
        bad |= json_array_append_new(ch, json_integer(f->nodes[k].child));
    }
    for (size_t l = 0; !bad && l < f->n_leaves; l++) {
        bad |= json_array_append_new(lc, json_integer(f->leaf_count[l]));
        for (int q = 0; q < f->nv; q++)
            bad |= json_array_append_new(lv, json_real(f->leaf_val[l * (size_t)f->nv + (size_t)q]));
    }
    if (!bad) {
        bad |= json_object_set_new(j, "kind",
                                   json_string(f->kind == FOREST_CAUSAL ? "causal" : "regression"));
        bad |= json_object_set_new(j, "n_features", json_integer((json_int_t)f->d));
        bad |= json_object_set_new(j, "n_trees", json_integer(f->n_trees));
        bad |= json_object_set(j, "tree_start", ts);
        bad |= json_object_set(j, "feature", fe);
        bad |= json_object_set(j, "threshold", th);
        bad |= json_object_set(j, "child", ch);
        bad |= json_object_set(j, "leaf_count", lc);
        bad |= json_object_set(j, "leaf_value", lv);
    }
    json_decref(ts);
    json_decref(fe);
    json_decref(th);
    json_decref(ch);
    json_decref(lc);
    json_decref(lv);
    if (bad) {
        json_decref(j);
        return rfm_fail(err, errlen, RFM_ENOMEM, "forest: out of memory writing JSON");
    }
    *out = j;
    return RFM_OK;
}

/* The array field name with exactly len elements, or NULL. */
static const json_t *array_of(const json_t *j, const char *name, size_t len)
{
    const json_t *a = json_object_get(j, name);
    return json_array_size(a) == len && len > 0 ? a : NULL;
}

rfm_status forest_from_json(const json_t *j, forest **out, char *err, size_t errlen)
{
#define BAD(field)                                                                                 \
    do {                                                                                           \
        st = rfm_fail(err, errlen, RFM_EFORMAT, "forest: field '%s' missing or invalid", field);   \
        goto fail;                                                                                 \
    } while (0)
    rfm_status st = RFM_EFORMAT;
    forest *f = calloc(1, sizeof *f);
    if (!f)
        return rfm_fail(err, errlen, RFM_ENOMEM, "forest: out of memory");
    if (!json_is_object(j))
        BAD("(object)");
    const char *kind = NULL;
    long long v;
    if (jsonx_string(j, "kind", "forest", &kind, err, errlen))
        BAD("kind");
    if (!strcmp(kind, "regression"))
        f->kind = FOREST_REGRESSION;
    else if (!strcmp(kind, "causal"))
        f->kind = FOREST_CAUSAL;
    else
        BAD("kind");
    f->nv = f->kind == FOREST_CAUSAL ? 3 : 1;
    if (jsonx_int_in(j, "n_features", "forest", 1, 100000, &v, err, errlen))
        BAD("n_features");
    f->d = (size_t)v;
    if (jsonx_int_in(j, "n_trees", "forest", 1, 100000, &v, err, errlen))
        BAD("n_trees");
    f->n_trees = (int)v;
    const json_t *fe = json_object_get(j, "feature"), *lc = json_object_get(j, "leaf_count");
    if (!json_is_array(fe) || json_array_size(fe) == 0 || json_array_size(fe) > INT32_MAX)
        BAD("feature");
    if (!json_is_array(lc) || json_array_size(lc) == 0 || json_array_size(lc) > INT32_MAX)
        BAD("leaf_count");
    f->n_nodes = json_array_size(fe);
    f->n_leaves = json_array_size(lc);
    const json_t *ts = array_of(j, "tree_start", (size_t)f->n_trees + 1);
    const json_t *th = array_of(j, "threshold", f->n_nodes);
    const json_t *ch = array_of(j, "child", f->n_nodes);
    const json_t *lv = array_of(j, "leaf_value", f->n_leaves * (size_t)f->nv);
    if (!ts)
        BAD("tree_start");
    if (!th)
        BAD("threshold");
    if (!ch)
        BAD("child");
    if (!lv)
        BAD("leaf_value");
    f->tree_start = malloc(((size_t)f->n_trees + 1) * sizeof *f->tree_start);
    f->nodes = malloc(f->n_nodes * sizeof *f->nodes);
    f->leaf_count = malloc(f->n_leaves * sizeof *f->leaf_count);
    f->leaf_val = malloc(f->n_leaves * (size_t)f->nv * sizeof *f->leaf_val);
    if (!f->tree_start || !f->nodes || !f->leaf_count || !f->leaf_val) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "forest: out of memory");
        goto fail;
    }
    for (int t = 0; t <= f->n_trees; t++) {
        if (jsonx_item_int(ts, (size_t)t, 0, (long long)f->n_nodes, &v))
            BAD("tree_start");
        f->tree_start[t] = (int32_t)v;
        if (t > 0 && f->tree_start[t] <= f->tree_start[t - 1])
            BAD("tree_start");
    }
    if (f->tree_start[0] != 0 || (size_t)f->tree_start[f->n_trees] != f->n_nodes)
        BAD("tree_start");
    for (int t = 0; t < f->n_trees; t++) {
        int32_t end = f->tree_start[t + 1];
        for (int32_t k = f->tree_start[t]; k < end; k++) {
            fnode *nd = &f->nodes[k];
            if (jsonx_item_int(fe, (size_t)k, -1, (long long)f->d - 1, &v))
                BAD("feature");
            nd->feat = (int32_t)v;
            if (jsonx_item_number(th, (size_t)k, &nd->thr))
                BAD("threshold");
            /* Children strictly after the parent and inside the tree: every
             * walk moves forward and ends at a leaf of the same tree. */
            if (nd->feat >= 0 ? jsonx_item_int(ch, (size_t)k, k + 1, end - 2, &v)
                              : jsonx_item_int(ch, (size_t)k, 0, (long long)f->n_leaves - 1, &v))
                BAD("child");
            nd->child = (int32_t)v;
        }
    }
    for (size_t l = 0; l < f->n_leaves; l++) {
        if (jsonx_item_int(lc, l, 0, INT32_MAX, &v))
            BAD("leaf_count");
        f->leaf_count[l] = (int32_t)v;
        for (int q = 0; q < f->nv; q++)
            if (jsonx_item_number(lv, l * (size_t)f->nv + (size_t)q,
                                  &f->leaf_val[l * (size_t)f->nv + (size_t)q]))
                BAD("leaf_value");
    }
    *out = f;
    return RFM_OK;
fail:
    forest_free(f);
    return st;
#undef BAD
}
