/* boost.c - XGBoost fit, own tree walk and TreeSHAP (boost.h). */
#include "boost.h"

#include <dlfcn.h>
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "jsonx.h"

/* One tree's nodes live at [first, first + nnodes) of the model's arrays;
 * child indices are relative to the tree (XGBoost's numbering), -1 = leaf. */
/* The fast TreeSHAP of trees of depth <= FAST_DEPTH (Yang's "Fast TreeSHAP"
 * v2 idea, 2021): a leaf's contributions depend on x only through which of
 * its path's distinct features x follows (a bit per feature), so they are
 * tabulated per leaf for each of the 2^m patterns at load, and scoring a
 * tree is a walk over its leaves reading one row of each table. */
#define FAST_DEPTH 4
typedef struct {
    uint8_t depth, m;         /* path nodes, distinct features on the path */
    int32_t feat[FAST_DEPTH]; /* model feature of each slot, 0..m-1 */
    /* The path as bit masks over the tree's nodes (at most 2^(FAST_DEPTH+1)
     * - 1 = 31, numbered within the tree): want, its direction at each of
     * its nodes (1: left); smask[j], its nodes of slot j's feature (0 past
     * m). */
    uint32_t want, smask[FAST_DEPTH];
    double value; /* the leaf's value */
    size_t tab;   /* offset of its (2^m) x m table */
    size_t wtab;  /* offset of its (2^m) x WIDE_D table (models of d <= WIDE_D) */
} leaf_rule;

/* For models of at most WIDE_D features, each table row is also kept
 * WIDE_D wide (the path's features at their model index, +0.0 elsewhere),
 * so a row is added to all of phi at once, held in registers: adding the
 * m values to phi[feat[j]] in memory made every explanation wait on a
 * chain of dependent loads and stores through phi (three quarters of its
 * time). The same sums in the same order per feature: the extra terms are
 * zeros, and phi, starting at +0.0, never becomes -0.0, so adding a zero
 * leaves it bit for bit. */
#define WIDE_D 8 /* shap_wide's sums are written out for 8 */

/* The scoring walk of trees of depth <= FLAT_DEPTH: each tree laid out as
 * a complete binary tree of the model's depth D (breadth first, children of
 * k at 2k+1 and 2k+2; a leaf above depth D becomes a split whose leaves all
 * hold its value), so a row takes exactly D steps in every tree, with no
 * branch on the data: the walk of linked nodes mispredicted about one
 * branch a level (bulk scoring: 200 trees of depth 3 for a million
 * customers took 4 CPU s, most of rfm-score's time). */
#define FLAT_DEPTH 8
typedef struct {
    float thr;     /* x_j < thr goes left */
    uint8_t feat;  /* j (BOOST_MAX_FEATURES <= 255) */
    uint8_t dleft; /* NaN goes left */
} flat_node;

/* An inner node of a tree as the fast path reads it: the test and the
 * node's number in its tree (its bit in the directions' word). */
typedef struct {
    float thr;
    uint8_t feat, dleft, k;
} shap_node;

/* Explanations by cells (models of at most WIDE_D features): a tree's
 * thresholds on each of its features cut that feature's axis into
 * intervals (and one more for a missing value when the tree's nodes on the
 * feature send it both ways; else it falls in the lowest or the highest
 * interval, where every node sends it), and its whole SHAP row (and its leaf) depends on x
 * only through the interval x falls in on each: a cell. Every cell of every
 * tree is explained at load by the recursive algorithm (tree_shap) and
 * kept, so explaining x is, per tree, finding its cell and adding one row
 * of WIDE_D doubles. To find the cells, x's place among all the model's
 * thresholds on each feature is searched once (cell_place); each tree's
 * axis maps that place to its own interval, times its stride, in one
 * lookup (about 50 instructions a tree with the row added, against 450
 * for the leaf tables). The maps are kept by feature and place with the
 * trees adjacent (ctab), so a place's entries for sixteen trees are one
 * 32-byte load and x's eight places touch eight short runs of memory, not
 * eight lines a tree.
 * Kept when every tree has at most CELL_TREE_MAX cells, all of them
 * CELL_ALL_MAX rows (18 MB) and explaining them at load CELL_WORK_MAX
 * steps of the recursion (cells x nodes x depth^2: a few tenths of a
 * second); else NULL. The served model: 9,293 rows, 0.67 MB, about 8 ms
 * more to load (24-27 against 16-18 ms for its churn.json). */
#define CELL_TREE_MAX 4096
#define CELL_ALL_MAX (1u << 18)
#define CELL_MAP_MAX (1u << 24) /* ctab's entries: places x trees */
#define CELL_WORK_MAX 200000000.0
/* A tree's cells on the features a counterfactual moves (vary) that one
 * vector of eight floats holds: its candidates' leaves by one permute. */
#define VARY_BLOCK 8

typedef struct {
    size_t first, nnodes;
    size_t lfirst, nleaves; /* its leaf_rules (fast path only) */
    size_t sfirst, ninner;  /* its shap_nodes (fast path only) */
    int depth;              /* edges on the longest root-to-leaf path */
    double mean;            /* cover-weighted mean leaf value: E[f_t] */
} tree_span;

/* XGBoost's C API, bound at run time (xgb_bind) rather than linked:
 * loading libxgboost (its C++ static constructors and some 20,000
 * relocations, with libdmlc) cost every program linking this file about
 * 3 ms at start, while only a fit (rfm-train's churn step) and
 * boost_xgb_predict call it; scoring never does. The table lives in the
 * model whose booster it made, so there is no global state. */
typedef struct {
    __typeof__(XGBGetLastError) *last_error;
    __typeof__(XGDMatrixCreateFromMat) *dmatrix_create_from_mat;
    __typeof__(XGDMatrixSetFloatInfo) *dmatrix_set_float_info;
    __typeof__(XGDMatrixFree) *dmatrix_free;
    __typeof__(XGBoosterCreate) *booster_create;
    __typeof__(XGBoosterSetParam) *booster_set_param;
    __typeof__(XGBoosterUpdateOneIter) *booster_update_one_iter;
    __typeof__(XGBoosterSaveModelToBuffer) *booster_save_model_to_buffer;
    __typeof__(XGBoosterLoadModelFromBuffer) *booster_load_model_from_buffer;
    __typeof__(XGBoosterPredictFromDMatrix) *booster_predict_from_dmatrix;
    __typeof__(XGBoosterFree) *booster_free;
} xgb_api;

struct boost_model {
    size_t d, ntrees, nnodes;
    tree_span *trees;
    int32_t *left, *right, *feat; /* per node; left -1 at a leaf */
    float *thr;                   /* split threshold */
    uint8_t *dleft;               /* missing goes left */
    double *value;                /* leaf value (log-odds), 0 at inner nodes */
    double *cover;                /* training hessian sum */
    double base_margin, base_value;
    uint32_t vary; /* boost_fit's or boost_from_json's: the tree order (boost.h) */
    size_t nlead;  /* the trees first in that order: they split on no feature in vary */
    size_t nblock; /* the trees next: at most VARY_BLOCK cells on the vary features */
    float *cvalf;  /* cval as floats (XGBoost's leaves: exact), VARY_BLOCK past the last */
    int max_depth;
    leaf_rule *leaves; /* fast path: every tree's leaves, NULL when deeper */
    shap_node *snode;  /* fast path: every tree's inner nodes */
    double *tab;
    double *wtab;   /* the same rows WIDE_D wide, NULL when d > WIDE_D */
    int flat_depth; /* D of the flat layout, 0 when none (deeper trees) */
    uint32_t *crow; /* cells (above): each tree's first row; NULL when not kept */
    uint16_t *ctab; /* per feature and place of x on it (cell_place), the
                     * interval times its stride of every tree (zero where the
                     * tree does not use the feature): ctab[(pbase[f] + p) *
                     * ntp + t], trees adjacent; row 0 all zeros */
    size_t ntp;     /* ntrees rounded up to 16: a row's length */
    float *uthr;    /* per feature, every threshold once, ascending */
    uint32_t uoff[WIDE_D], ucount[WIDE_D]; /* feature j's in uthr */
    uint32_t pbase[WIDE_D];                /* feature j's first row in ctab */
    double *cphi;                          /* per cell, WIDE_D contributions (+0.0 past d) */
    double *cval;                          /* per cell, the leaf's value */
    flat_node *flat_inner;                 /* ntrees x (2^D - 1) */
    double *flat_leaf;                     /* ntrees x 2^D, the leaf values */
    boost_params par;
    char *xgb_json; /* XGBoost's JSON model text */
    size_t xgb_len;
    BoosterHandle booster;
    xgb_api xgb; /* bound when booster is made */
};

void boost_default_params(boost_params *p)
{
    p->rounds = 200;
    p->max_depth = 4;
    p->eta = 0.05;
    p->lambda = 1.0;
    p->min_child_weight = 5.0;
    p->subsample = 0.8;
    p->seed = 42;
    p->nthread = 2;
}

const char *boost_check_params(const boost_params *p)
{
    if (!p)
        return "params must not be NULL";
    if (p->rounds < 1 || p->rounds > 5000)
        return "rounds must be an integer from 1 to 5000";
    if (p->max_depth < 1 || p->max_depth > BOOST_MAX_DEPTH)
        return "max_depth must be an integer from 1 to 12";
    if (!(p->eta > 0.0 && p->eta <= 1.0))
        return "eta must be in (0, 1]";
    if (!(p->lambda >= 0.0 && isfinite(p->lambda)))
        return "lambda must be finite and >= 0";
    if (!(p->min_child_weight >= 0.0 && isfinite(p->min_child_weight)))
        return "min_child_weight must be finite and >= 0";
    if (!(p->subsample > 0.0 && p->subsample <= 1.0))
        return "subsample must be in (0, 1]";
    if (p->nthread < 1 || p->nthread > 256)
        return "nthread must be an integer from 1 to 256";
    return NULL;
}

void boost_free(boost_model *m)
{
    if (!m)
        return;
    if (m->booster)
        m->xgb.booster_free(m->booster);
    free(m->trees), free(m->left), free(m->right), free(m->feat), free(m->thr);
    free(m->dleft), free(m->value), free(m->cover), free(m->xgb_json);
    free(m->leaves), free(m->tab), free(m->wtab), free(m->snode);
    free(m->flat_inner), free(m->flat_leaf);
    free(m->crow), free(m->ctab), free(m->uthr), free(m->cphi), free(m->cval), free(m->cvalf);
    free(m);
}

size_t boost_nfeatures(const boost_model *m) { return m->d; }
size_t boost_ntrees(const boost_model *m) { return m->ntrees; }
size_t boost_ntrees_first(const boost_model *m) { return m->nlead; }
size_t boost_ntrees_block(const boost_model *m) { return m->nblock; }
const boost_params *boost_get_params(const boost_model *m) { return &m->par; }
double boost_base_value(const boost_model *m) { return m->base_value; }

static rfm_status xgb_fail(const xgb_api *x, char *err, size_t errlen, const char *what)
{
    return rfm_fail(err, errlen, RFM_ELIBRARY, "boost: XGBoost %s failed: %s", what,
                    x->last_error());
}

/* The library's soname (Debian's libxgboost0, which libxgboost-dev
 * depends on). */
#define XGB_LIBRARY "libxgboost.so.0"

/* Fill x from XGBoost's library, loading it on the first call in the
 * process (the dynamic loader keeps it: RTLD_NODELETE; later calls find it
 * loaded and only look the functions up, a few microseconds). */
static rfm_status xgb_bind(xgb_api *x, char *err, size_t errlen)
{
    void *h = dlopen(XGB_LIBRARY, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h)
        return rfm_fail(err, errlen, RFM_ELIBRARY, "boost: cannot load XGBoost: %s", dlerror());
    const char *missing = NULL;
#define BIND(field, name)                                                                          \
    if (!missing && !(x->field = (__typeof__(x->field))dlsym(h, name)))                            \
    missing = name
    BIND(last_error, "XGBGetLastError");
    BIND(dmatrix_create_from_mat, "XGDMatrixCreateFromMat");
    BIND(dmatrix_set_float_info, "XGDMatrixSetFloatInfo");
    BIND(dmatrix_free, "XGDMatrixFree");
    BIND(booster_create, "XGBoosterCreate");
    BIND(booster_set_param, "XGBoosterSetParam");
    BIND(booster_update_one_iter, "XGBoosterUpdateOneIter");
    BIND(booster_save_model_to_buffer, "XGBoosterSaveModelToBuffer");
    BIND(booster_load_model_from_buffer, "XGBoosterLoadModelFromBuffer");
    BIND(booster_predict_from_dmatrix, "XGBoosterPredictFromDMatrix");
    BIND(booster_free, "XGBoosterFree");
#undef BIND
    dlclose(h); /* it stays loaded (RTLD_NODELETE) */
    if (missing)
        return rfm_fail(err, errlen, RFM_ELIBRARY, "boost: %s has no %s", XGB_LIBRARY, missing);
    return RFM_OK;
}

rfm_status boost_load_library(char *err, size_t errlen)
{
    xgb_api x;
    return xgb_bind(&x, err, errlen);
}

/* ---- scoring -------------------------------------------------------------- */

/* Leaf of tree t that row x reaches (absolute node index). */
static inline size_t leaf_of(const boost_model *m, const tree_span *t, const double *x)
{
    size_t base = t->first, k = 0;
    while (m->left[base + k] >= 0) {
        size_t n = base + k;
        double v = x[m->feat[n]];
        int go_left = isnan(v) ? m->dleft[n] : (float)v < m->thr[n];
        k = (size_t)(go_left ? m->left[n] : m->right[n]);
    }
    return base + k;
}

double boost_margin_walk(const boost_model *m, const double *x)
{
    double s = m->base_margin;
    for (size_t t = 0; t < m->ntrees; t++)
        s += m->value[leaf_of(m, &m->trees[t], x)];
    return s;
}

/* The same leaves as leaf_of, added in the same order: the same double. */
static double margin_cells(const boost_model *m, const double *x);

double boost_margin(const boost_model *m, const double *x)
{
    if (m->crow) /* a lookup a feature a tree: fewer steps than the walk */
        return margin_cells(m, x);
    if (!m->flat_depth)
        return boost_margin_walk(m, x);
    float xf[BOOST_MAX_FEATURES];
    uint8_t miss[BOOST_MAX_FEATURES];
    for (size_t j = 0; j < m->d; j++)
        xf[j] = (float)x[j], miss[j] = isnan(x[j]) != 0;
    const unsigned depth = (unsigned)m->flat_depth, ninner = (1u << depth) - 1;
    const flat_node *in = m->flat_inner;
    const double *leaf = m->flat_leaf;
    double s = m->base_margin;
    /* Four trees at a time: a walk is a chain of dependent loads, and four
     * independent chains keep the core busy while each waits. The leaves
     * are still added one by one in tree order. NaN compares false: then
     * the default direction decides. */
#define STEP(k, tin)                                                                               \
    do {                                                                                           \
        const flat_node *n_ = &(tin)[k];                                                           \
        k = 2 * k + 2 - ((unsigned)(xf[n_->feat] < n_->thr) | (miss[n_->feat] & n_->dleft));       \
    } while (0)
    const size_t stride = ninner;
    size_t t = 0;
    for (; t + 4 <= m->ntrees; t += 4, in += 4 * stride, leaf += 4 * (stride + 1)) {
        unsigned k0 = 0, k1 = 0, k2 = 0, k3 = 0;
        for (unsigned l = 0; l < depth; l++) {
            STEP(k0, in);
            STEP(k1, in + stride);
            STEP(k2, in + 2 * stride);
            STEP(k3, in + 3 * stride);
        }
        s += leaf[k0 - ninner];
        s += leaf[(stride + 1) + k1 - ninner];
        s += leaf[2 * (stride + 1) + k2 - ninner];
        s += leaf[3 * (stride + 1) + k3 - ninner];
    }
    for (; t < m->ntrees; t++, in += stride, leaf += stride + 1) {
        unsigned k = 0;
        for (unsigned l = 0; l < depth; l++)
            STEP(k, in);
        s += leaf[k - ninner];
    }
#undef STEP
    return s;
}

/* boost_margin of many rows, for trees of depth <= LANE_DEPTH: eight rows
 * at a time, two groups of four in the lanes of SSE2-wide vectors (GCC's
 * vector extensions; wider ones are split poorly for the baseline target).
 * A tree's every inner node is compared for the rows at once (its threshold
 * against the rows' values of its feature: no chain of dependent loads), and
 * each lane's path is picked out of those comparisons with blends, level by
 * level; the loops are unrolled for each depth. Walking a row at a time took
 * about 20 cycles a tree, each level waiting for the one before; this takes
 * 2.6x less (1 M rows of 200 trees of depth 3: 1.5 -> 0.57 s). Missing
 * values: the rows come in two copies, NaN as -inf (below every threshold:
 * left) and as +inf (right), and a node reads the copy of its default
 * direction. The comparisons are the same float ones and each row's leaves
 * are added in tree order: the same double as boost_margin. */
#define LANES 4  /* SSE2's width: GCC splits wider vectors poorly */
#define GROUPS 2 /* of LANES rows walked together */
#define LANE_DEPTH 4
typedef float lane_f __attribute__((vector_size(LANES * sizeof(float))));
typedef int32_t lane_i __attribute__((vector_size(LANES * sizeof(int32_t))));

static inline __attribute__((always_inline)) void
margin_lanes(const boost_model *m, const double *x, size_t nb, double *out, const unsigned depth)
{
    const size_t d = m->d;
    const unsigned ninner = (1u << depth) - 1;
    lane_f xs[GROUPS][2 * BOOST_MAX_FEATURES]; /* [j]: NaN as -inf; [d + j]: NaN as +inf */
    for (size_t g = 0; g < GROUPS; g++)
        for (size_t j = 0; j < d; j++)
            for (size_t r = 0; r < LANES; r++) {
                size_t row = g * LANES + r;
                double v = x[(row < nb ? row : 0) * d + j]; /* spare lanes repeat row 0 */
                int nan = isnan(v) != 0;
                xs[g][j][r] = nan ? -INFINITY : (float)v;
                xs[g][d + j][r] = nan ? INFINITY : (float)v;
            }
    double s[GROUPS * LANES];
    for (size_t r = 0; r < GROUPS * LANES; r++)
        s[r] = m->base_margin;
    const flat_node *in = m->flat_inner;
    const double *leaf = m->flat_leaf;
    for (size_t t = 0; t < m->ntrees; t++, in += ninner, leaf += ninner + 1) {
        lane_i go[GROUPS][(1u << LANE_DEPTH) - 1]; /* -1 where a lane's row goes left at node k */
#pragma GCC unroll 16
        for (unsigned k = 0; k < ninner; k++) {
            const flat_node *q = &in[k];
            lane_f thr = {q->thr, q->thr, q->thr, q->thr};
            size_t j = q->feat + (q->dleft ? 0 : d);
#pragma GCC unroll 2
            for (size_t g = 0; g < GROUPS; g++)
                go[g][k] = (lane_i)(xs[g][j] < thr);
        }
        /* right[l]: -1 where the path turned right at level l; the node of
         * level l on a lane's path is 2^l - 1 + its turns so far read as a
         * binary number, found by halving the level's candidates one turn
         * at a time, the last turn first. */
#pragma GCC unroll 2
        for (size_t g = 0; g < GROUPS; g++) {
            lane_i right[LANE_DEPTH], idx = {0};
#pragma GCC unroll 4
            for (unsigned l = 0; l < depth; l++) {
                lane_i cand[1u << (LANE_DEPTH - 1)];
                unsigned w = 1u << l;
#pragma GCC unroll 8
                for (unsigned c = 0; c < w; c++)
                    cand[c] = go[g][w - 1 + c];
#pragma GCC unroll 4
                for (int b = (int)l - 1; b >= 0; b--) {
                    w /= 2;
#pragma GCC unroll 8
                    for (unsigned c = 0; c < w; c++)
                        cand[c] = (cand[2 * c] & ~right[b]) | (cand[2 * c + 1] & right[b]);
                }
                right[l] = ~cand[0];
                idx |= right[l] & ((lane_i){0} + (int32_t)(1u << (depth - 1 - l)));
            }
#pragma GCC unroll 8
            for (size_t r = 0; r < LANES; r++)
                s[g * LANES + r] += leaf[idx[r]];
        }
    }
    memcpy(out, s, nb * sizeof *s);
}

void boost_margin_many(const boost_model *m, const double *x, size_t n, double *out)
{
    if (!m->flat_depth || m->flat_depth > LANE_DEPTH) {
        for (size_t i = 0; i < n; i++)
            out[i] = boost_margin(m, x + i * m->d);
        return;
    }
    for (size_t i = 0; i < n; i += GROUPS * LANES) {
        size_t nb = n - i < GROUPS * LANES ? n - i : GROUPS * LANES;
        if (nb < 3) { /* the lanes cost about three walks whatever their fill */
            for (size_t r = 0; r < nb; r++)
                out[i + r] = boost_margin(m, x + (i + r) * m->d);
            continue;
        }
        switch (m->flat_depth) { /* each depth unrolled */
        case 1: margin_lanes(m, x + i * m->d, nb, out + i, 1); break;
        case 2: margin_lanes(m, x + i * m->d, nb, out + i, 2); break;
        case 3: margin_lanes(m, x + i * m->d, nb, out + i, 3); break;
        default: margin_lanes(m, x + i * m->d, nb, out + i, 4); break;
        }
    }
}

/* ---- TreeSHAP (Lundberg et al. 2018, Algorithm 2) --------------------------
 * A path element is a feature met on the path from the root, with the share
 * of training cover that follows the path ("zero": feature absent) and
 * whether x follows it ("one": feature present); pweight holds the
 * permutation weights of the subsets the path has seen so far. */
typedef struct {
    int feature;
    double zero, one, pweight;
} path_el;

/* 1/k for k = 0..BOOST_MAX_DEPTH + 2 (entry 0 unused): the path algebra
 * divides by small integers, and a division costs ten multiplications. */
static const double INV[BOOST_MAX_DEPTH + 3] = {0.0,      1.0,      1.0 / 2,  1.0 / 3,  1.0 / 4,
                                                1.0 / 5,  1.0 / 6,  1.0 / 7,  1.0 / 8,  1.0 / 9,
                                                1.0 / 10, 1.0 / 11, 1.0 / 12, 1.0 / 13, 1.0 / 14};

static void extend_path(path_el *p, unsigned depth, double zero, double one, int feature)
{
    p[depth].feature = feature;
    p[depth].zero = zero;
    p[depth].one = one;
    p[depth].pweight = depth == 0 ? 1.0 : 0.0;
    const double inv = INV[depth + 1];
    for (int i = (int)depth - 1; i >= 0; i--) {
        p[i + 1].pweight += one * p[i].pweight * (i + 1) * inv;
        p[i].pweight = zero * p[i].pweight * (depth - (unsigned)i) * inv;
    }
}

/* In path-dependent TreeSHAP an element's "one" fraction is 1 (x follows
 * the branch) or 0 (it does not): the two cases below. */
static void unwind_path(path_el *p, unsigned depth, unsigned k)
{
    const double one = p[k].one, zero = p[k].zero;
    double next = p[depth].pweight;
    for (int i = (int)depth - 1; i >= 0; i--) {
        if (one != 0.0) {
            double tmp = p[i].pweight;
            p[i].pweight = next * (depth + 1) * INV[i + 1] / one;
            next = tmp - p[i].pweight * zero * (depth - (unsigned)i) * INV[depth + 1];
        } else {
            p[i].pweight = p[i].pweight * (depth + 1) * INV[depth - (unsigned)i] / zero;
        }
    }
    for (unsigned i = k; i < depth; i++) {
        p[i].feature = p[i + 1].feature;
        p[i].zero = p[i + 1].zero;
        p[i].one = p[i + 1].one;
    }
}

/* Total permutation weight of the path with element k taken out. */
static double unwound_sum(const path_el *p, unsigned depth, unsigned k)
{
    const double one = p[k].one, zero = p[k].zero;
    double total = 0.0;
    if (one != 0.0) {
        double next = p[depth].pweight, inv1 = 1.0 / one;
        for (int i = (int)depth - 1; i >= 0; i--) {
            double tmp = next * (depth + 1) * INV[i + 1] * inv1;
            total += tmp;
            next = p[i].pweight - tmp * zero * (depth - (unsigned)i) * INV[depth + 1];
        }
    } else if (zero != 0.0) {
        for (int i = (int)depth - 1; i >= 0; i--)
            total += p[i].pweight * INV[depth - (unsigned)i];
        total *= (depth + 1) / zero;
    }
    return total;
}

static void tree_shap(const boost_model *m, size_t base, const double *x, double *phi, size_t node,
                      unsigned depth, path_el *parent, double pzero, double pone, int pfeature)
{
    path_el *p = parent + depth + 1;
    memcpy(p, parent, (depth + 1) * sizeof *p);
    extend_path(p, depth, pzero, pone, pfeature);
    size_t n = base + node;
    if (m->left[n] < 0) {
        for (unsigned i = 1; i <= depth; i++) {
            double w = unwound_sum(p, depth, i);
            phi[p[i].feature] += w * (p[i].one - p[i].zero) * m->value[n];
        }
        return;
    }
    int f = m->feat[n];
    double v = x[f];
    int go_left = isnan(v) ? m->dleft[n] : (float)v < m->thr[n];
    size_t hot = (size_t)(go_left ? m->left[n] : m->right[n]);
    size_t cold = (size_t)(go_left ? m->right[n] : m->left[n]);
    /* The children's covers, not the node's: XGBoost prints covers as floats,
     * whose sums are off by rounding, and the fractions must add up to 1 for
     * the explanation to add up to the margin. */
    double ch = m->cover[base + hot], cc = m->cover[base + cold];
    double hot_zero = ch / (ch + cc), cold_zero = cc / (ch + cc);
    double in_zero = 1.0, in_one = 1.0;
    unsigned k = 0;
    for (; k <= depth; k++)
        if (p[k].feature == f)
            break;
    if (k != depth + 1) {
        /* The feature was met higher up: undo its element, carry its fractions. */
        in_zero = p[k].zero;
        in_one = p[k].one;
        unwind_path(p, depth, k);
        depth -= 1;
    }
    tree_shap(m, base, x, phi, hot, depth + 1, p, hot_zero * in_zero, in_one, f);
    tree_shap(m, base, x, phi, cold, depth + 1, p, cold_zero * in_zero, 0.0, f);
}

/* The pattern of leaf r for the directions dirs of its tree's nodes (bit k
 * set: x goes left at node k): bit j set when x follows the path at every
 * node of the path's feature j. Branch-free and without a loop: each node's
 * test would mispredict half the time, and a walk over the path's nodes
 * cost half of an explanation's instructions. */
static inline unsigned leaf_pattern(const leaf_rule *r, uint32_t dirs)
{
    uint32_t off = dirs ^ r->want; /* nodes where x leaves the path (where on it) */
    unsigned pat = (unsigned)!(off & r->smask[0]) | (unsigned)!(off & r->smask[1]) << 1 |
                   (unsigned)!(off & r->smask[2]) << 2 | (unsigned)!(off & r->smask[3]) << 3;
    return pat & ((1u << r->m) - 1);
}

/* The directions x takes at the inner nodes of tree ts (bit k set: left). */
static inline uint32_t tree_dirs(const boost_model *m, const tree_span *ts, const double *x)
{
    uint32_t dirs = 0;
    const shap_node *q = m->snode + ts->sfirst;
    for (size_t i = 0; i < ts->ninner; i++) {
        double v = x[q[i].feat];
        dirs |= (uint32_t)(isnan(v) ? q[i].dleft : (float)v < q[i].thr) << q[i].k;
    }
    return dirs;
}

/* shap_fast for d <= WIDE_D: phi in registers, each leaf's wide row added
 * whole; the margin adds, per tree, the one leaf whose pattern is full
 * (the leaf x reaches), as shap_fast does. */
static double shap_wide(const boost_model *m, const double *x, double *phi)
{
    /* Eight named sums, not an array: GCC kept an array in memory, and the
     * chain through it was the cost again. */
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    double margin = m->base_margin;
    for (size_t t = 0; t < m->ntrees; t++) {
        const tree_span *ts = &m->trees[t];
        uint32_t dirs = tree_dirs(m, ts, x);
        double hit = 0.0;
        for (size_t l = ts->lfirst; l < ts->lfirst + ts->nleaves; l++) {
            const leaf_rule *r = &m->leaves[l];
            unsigned pat = leaf_pattern(r, dirs);
            const double *row = m->wtab + r->wtab + (size_t)pat * WIDE_D;
            a0 += row[0], a1 += row[1], a2 += row[2], a3 += row[3];
            a4 += row[4], a5 += row[5], a6 += row[6], a7 += row[7];
            hit = pat == (1u << r->m) - 1 ? r->value : hit;
        }
        margin += hit;
    }
    const double acc[WIDE_D] = {a0, a1, a2, a3, a4, a5, a6, a7};
    memcpy(phi, acc, m->d * sizeof *phi);
    return margin;
}

/* Fast path: every tree's inner nodes' directions for x, then each leaf's
 * pattern and its table row (m values added to phi[feat[j]]). */
static double shap_fast(const boost_model *m, const double *x, double *phi)
{
    memset(phi, 0, m->d * sizeof *phi);
    double margin = m->base_margin;
    for (size_t t = 0; t < m->ntrees; t++) {
        const tree_span *ts = &m->trees[t];
        uint32_t dirs = tree_dirs(m, ts, x);
        for (size_t l = ts->lfirst; l < ts->lfirst + ts->nleaves; l++) {
            const leaf_rule *r = &m->leaves[l];
            unsigned full = (1u << r->m) - 1, pat = leaf_pattern(r, dirs);
            const double *row = m->tab + r->tab + (size_t)pat * r->m;
            for (unsigned j = 0; j < r->m; j++)
                phi[r->feat[j]] += row[j];
            if (pat == full)
                margin += r->value;
        }
    }
    return margin;
}

/* x's place on feature f among all the model's thresholds on it: how many
 * are at or below v (x goes right at each), ucount + 1 for a missing
 * value. */
static inline uint32_t cell_place(const boost_model *m, size_t f, float v)
{
    if (v != v)
        return m->ucount[f] + 1;
    const float *u = m->uthr + m->uoff[f];
    uint32_t lo = 0, len = m->ucount[f];
    while (len > 0) {
        uint32_t half = len >> 1;
        int right = u[lo + half] <= v;
        lo = right ? lo + half + 1 : lo;
        len = right ? len - half - 1 : half;
    }
    return lo;
}

/* Feature f's axis at place p: the entries of every tree (ntp of them). */
static inline const uint16_t *cell_axis(const boost_model *m, size_t f, uint32_t p)
{
    return m->ctab + ((size_t)m->pbase[f] + p) * m->ntp;
}

/* x's axes (cell_axis at its cell_place) on every feature, the row of
 * zeros past d (WIDE_D of them). */
static void cell_axes(const boost_model *m, const double *x, const uint16_t **ax)
{
    for (size_t j = 0; j < WIDE_D; j++)
        ax[j] = j < m->d ? cell_axis(m, j, cell_place(m, j, (float)x[j])) : m->ctab;
}

/* The row of tree t's cell on the axes ax (cell_axes): an entry a
 * feature, zero for those the tree does not use. */
static inline uint32_t cell_row(const boost_model *m, size_t t, const uint16_t *const *ax)
{
    return m->crow[t] + ax[0][t] + ax[1][t] + ax[2][t] + ax[3][t] + ax[4][t] + ax[5][t] + ax[6][t] +
           ax[7][t];
}

#if defined(__x86_64__)
#define CELLS_AVX2 1
/* The rows of trees t0 .. t0 + n - 1 into rows, sixteen trees at once: the
 * eight axes' entries are adjacent in t, so a tree's row is eight loads
 * and adds, then its first row (crow) added. rows has room for n rounded
 * up to 16, and so do the axes and crow past t0 (ntp). The same integer
 * rows as cell_row. */
__attribute__((target("avx2"))) static void
rows_avx2(const boost_model *m, const uint16_t *const *ax, size_t t0, size_t n, uint32_t *rows)
{
    for (size_t i = 0; i < n; i += 16) {
        const size_t t = t0 + i;
        __m256i s = _mm256_loadu_si256((const __m256i *)(ax[0] + t));
#pragma GCC unroll 8
        for (int f = 1; f < WIDE_D; f++)
            s = _mm256_add_epi16(s, _mm256_loadu_si256((const __m256i *)(ax[f] + t)));
        const __m256i lo = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(s)),
                      hi = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(s, 1));
        _mm256_storeu_si256(
            (__m256i *)(rows + i),
            _mm256_add_epi32(lo, _mm256_loadu_si256((const __m256i *)(m->crow + t))));
        _mm256_storeu_si256(
            (__m256i *)(rows + i + 8),
            _mm256_add_epi32(hi, _mm256_loadu_si256((const __m256i *)(m->crow + t + 8))));
    }
}

/* The leaves of the cells, added in tree order, the rows found a batch of
 * trees at a time. */
__attribute__((target("avx2"))) static double margin_cells_avx2(const boost_model *m,
                                                                const uint16_t *const *ax)
{
    enum { BATCH = 64 };
    uint32_t rows[BATCH];
    double margin = m->base_margin;
    for (size_t t0 = 0; t0 < m->ntrees; t0 += BATCH) {
        const size_t nb = m->ntrees - t0 < BATCH ? m->ntrees - t0 : BATCH;
        rows_avx2(m, ax, t0, nb, rows);
        for (size_t i = 0; i < nb; i++)
            margin += m->cval[rows[i]];
    }
    return margin;
}
#endif

/* The leaves of x's cells, added in tree order: the walk's double. */
static double margin_cells(const boost_model *m, const double *x)
{
    const uint16_t *ax[WIDE_D];
    cell_axes(m, x, ax);
#if defined(CELLS_AVX2)
    if (__builtin_cpu_supports("avx2"))
        return margin_cells_avx2(m, ax);
#endif
    double margin = m->base_margin;
    for (size_t t = 0; t < m->ntrees; t++)
        margin += m->cval[cell_row(m, t, ax)];
    return margin;
}

/* The cells' rows of n trees added to acc (WIDE_D sums) and their leaves
 * to margin, which is returned: each sum in registers, the rows in order. */
static double add_rows(const boost_model *m, const uint32_t *rows, size_t n, double margin,
                       double *acc)
{
    double a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], a4 = acc[4], a5 = acc[5],
           a6 = acc[6], a7 = acc[7];
    for (size_t i = 0; i < n; i++) {
        const double *row = m->cphi + (size_t)rows[i] * WIDE_D;
        a0 += row[0], a1 += row[1], a2 += row[2], a3 += row[3];
        a4 += row[4], a5 += row[5], a6 += row[6], a7 += row[7];
        margin += m->cval[rows[i]];
    }
    const double sums[WIDE_D] = {a0, a1, a2, a3, a4, a5, a6, a7};
    memcpy(acc, sums, sizeof sums);
    return margin;
}

#if defined(CELLS_AVX2)
/* add_rows with AVX2: the sums in two vectors, each lane the same
 * additions in the same order. */
__attribute__((target("avx2"))) static double
add_rows_avx2(const boost_model *m, const uint32_t *rows, size_t n, double margin, double *acc)
{
    __m256d lo = _mm256_loadu_pd(acc), hi = _mm256_loadu_pd(acc + 4);
    for (size_t i = 0; i < n; i++) {
        const double *row = m->cphi + (size_t)rows[i] * WIDE_D;
        lo = _mm256_add_pd(lo, _mm256_loadu_pd(row));
        hi = _mm256_add_pd(hi, _mm256_loadu_pd(row + 4));
        margin += m->cval[rows[i]];
    }
    _mm256_storeu_pd(acc, lo);
    _mm256_storeu_pd(acc + 4, hi);
    return margin;
}
#endif

/* Cells: one row per tree, added whole in tree order; the margin adds the
 * same leaf values in the same order as boost_margin. The rows are found
 * first (AVX2 where there is, CELL_ROWS_BATCH trees at a time). */
#define CELL_ROWS_BATCH 64
static double shap_cells(const boost_model *m, const double *x, double *phi)
{
    const uint16_t *ax[WIDE_D];
    uint32_t rows[CELL_ROWS_BATCH];
    cell_axes(m, x, ax);
#if defined(CELLS_AVX2)
    const int avx2 = __builtin_cpu_supports("avx2");
#endif
    double margin = m->base_margin, acc[WIDE_D] = {0};
    for (size_t t0 = 0; t0 < m->ntrees; t0 += CELL_ROWS_BATCH) {
        const size_t nb = m->ntrees - t0 < CELL_ROWS_BATCH ? m->ntrees - t0 : CELL_ROWS_BATCH;
#if defined(CELLS_AVX2)
        if (avx2) {
            rows_avx2(m, ax, t0, nb, rows);
            margin = add_rows_avx2(m, rows, nb, margin, acc);
            continue;
        }
#endif
        for (size_t i = 0; i < nb; i++)
            rows[i] = cell_row(m, t0 + i, ax);
        margin = add_rows(m, rows, nb, margin, acc);
    }
    memcpy(phi, acc, m->d * sizeof *phi);
    return margin;
}

double boost_shap(const boost_model *m, const double *x, double *phi)
{
    return m->crow ? shap_cells(m, x, phi) : boost_shap_rows(m, x, phi);
}

double boost_shap_rows(const boost_model *m, const double *x, double *phi)
{
    if (m->wtab)
        return shap_wide(m, x, phi);
    return boost_shap_narrow(m, x, phi);
}

double boost_shap_narrow(const boost_model *m, const double *x, double *phi)
{
    return m->leaves ? shap_fast(m, x, phi) : boost_shap_path(m, x, phi);
}

int boost_has_cells(const boost_model *m) { return m->crow != NULL; }

#if defined(__x86_64__)
/* boost_margin_along_until with the cells, ALONG_PASS rows a pass. The
 * rows share every feature but j1 and j2, so each tree's row on the others
 * (fixed) is found once, from the first row (rows_avx2 with j1's and j2's
 * axes the zeros). When both are in the model's vary, its first nlead
 * trees split on neither: their cells are the fixed rows, the same for
 * every row, and their leaves are added once, from base_margin, into the
 * sum every pass starts from (each lane then adds the same leaves in the
 * same order as boost_margin). A pass then takes eight trees at a time
 * from there: each row's
 * cells there are fixed plus its entries on j1 and j2 (adjacent in t: two
 * loads), eight rows by eight trees turned around in registers so that
 * each tree has its eight rows' cells in one vector, whose leaves two
 * gathers bring and two sums (rows 0-3 and 4-7) add in tree order. */
enum { ALONG_PASS = 8 };

/* Rows r0..r7 of eight 32-bit lanes (lane u: tree t + u) turned around
 * in place: then r[u]'s lane i is row i's lane u. Unrolled, so that the
 * vectors stay in registers. */
__attribute__((target("avx2"), always_inline)) static inline void transpose8_avx2(__m256i *r)
{
    const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]),
                  t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]),
                  t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]),
                  t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    /* rows 0-3 and 4-7 of trees u and u + 4 */
    const __m256i s0 = _mm256_unpacklo_epi64(t0, t2), s1 = _mm256_unpackhi_epi64(t0, t2),
                  s2 = _mm256_unpacklo_epi64(t1, t3), s3 = _mm256_unpackhi_epi64(t1, t3),
                  s4 = _mm256_unpacklo_epi64(t4, t6), s5 = _mm256_unpackhi_epi64(t4, t6),
                  s6 = _mm256_unpacklo_epi64(t5, t7), s7 = _mm256_unpackhi_epi64(t5, t7);
    r[0] = _mm256_permute2x128_si256(s0, s4, 0x20), r[4] = _mm256_permute2x128_si256(s0, s4, 0x31);
    r[1] = _mm256_permute2x128_si256(s1, s5, 0x20), r[5] = _mm256_permute2x128_si256(s1, s5, 0x31);
    r[2] = _mm256_permute2x128_si256(s2, s6, 0x20), r[6] = _mm256_permute2x128_si256(s2, s6, 0x31);
    r[3] = _mm256_permute2x128_si256(s3, s7, 0x20), r[7] = _mm256_permute2x128_si256(s3, s7, 0x31);
}

__attribute__((target("avx2"))) static size_t along_avx2(const boost_model *m, const double *xs,
                                                         size_t n, int j1, int j2, double stop,
                                                         uint32_t *fixed, double *out)
{
    const uint16_t *ax[WIDE_D], *zero = m->ctab;
    cell_axes(m, xs, ax);
    ax[j1] = zero;
    if (j2 >= 0)
        ax[j2] = zero;
    rows_avx2(m, ax, 0, m->ntrees, fixed);
    memset(fixed + m->ntp, 0, 8 * sizeof *fixed);
    const int along_vary = (m->vary >> j1 & 1) && (j2 < 0 || (m->vary >> j2 & 1));
    const size_t lead = along_vary ? m->nlead : 0, bend = lead + (along_vary ? m->nblock : 0);
    double start = m->base_margin;
    for (size_t t = 0; t < lead; t++)
        start += m->cval[fixed[t]];
    size_t done = 0;
    while (done < n) {
        const size_t nb = n - done < ALONG_PASS ? n - done : ALONG_PASS;
        const uint16_t *a[ALONG_PASS], *b[ALONG_PASS];
        for (size_t i = 0; i < ALONG_PASS; i++) { /* past nb: the last row again */
            const double *xi = xs + (done + (i < nb ? i : nb - 1)) * m->d;
            a[i] = cell_axis(m, (size_t)j1, cell_place(m, (size_t)j1, (float)xi[j1]));
            b[i] =
                j2 >= 0 ? cell_axis(m, (size_t)j2, cell_place(m, (size_t)j2, (float)xi[j2])) : zero;
        }
        __m256d acc0 = _mm256_set1_pd(start), acc1 = acc0;
        /* The trees with at most VARY_BLOCK cells on vary's features: the
         * rows' cells in a tree are its fixed row plus their entries on j1
         * and j2 (below VARY_BLOCK), so eight floats from the fixed row
         * hold them all, and one permute puts each row's leaf in its lane. */
        for (size_t t = lead; t < bend; t += 8) {
            __m256i r[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++)
                r[i] = _mm256_cvtepu16_epi32(
                    _mm_add_epi16(_mm_loadu_si128((const __m128i *)(a[i] + t)),
                                  _mm_loadu_si128((const __m128i *)(b[i] + t))));
            transpose8_avx2(r);
            const size_t nt = bend - t < 8 ? bend - t : 8;
            for (size_t u = 0; u < nt; u++) {
                const __m256 lv =
                    _mm256_permutevar8x32_ps(_mm256_loadu_ps(m->cvalf + fixed[t + u]), r[u]);
                acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(lv)));
                acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(lv, 1)));
            }
        }
        const int two = nb > 4; /* rows 4-7 too */
        for (size_t t = bend; t < m->ntrees; t += 8) {
            const __m256i fx = _mm256_loadu_si256((const __m256i *)(fixed + t));
            __m256i r[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++)
                r[i] = _mm256_add_epi32(fx, _mm256_cvtepu16_epi32(_mm_add_epi16(
                                                _mm_loadu_si128((const __m128i *)(a[i] + t)),
                                                _mm_loadu_si128((const __m128i *)(b[i] + t)))));
            transpose8_avx2(r);
            if (m->ntrees - t >= 8 && two) {
#pragma GCC unroll 8
                for (int u = 0; u < 8; u++) {
                    acc0 = _mm256_add_pd(
                        acc0, _mm256_i32gather_pd(m->cval, _mm256_castsi256_si128(r[u]), 8));
                    acc1 = _mm256_add_pd(
                        acc1, _mm256_i32gather_pd(m->cval, _mm256_extracti128_si256(r[u], 1), 8));
                }
            } else if (m->ntrees - t >= 8) {
#pragma GCC unroll 8
                for (int u = 0; u < 8; u++)
                    acc0 = _mm256_add_pd(
                        acc0, _mm256_i32gather_pd(m->cval, _mm256_castsi256_si128(r[u]), 8));
            } else {
                for (size_t u = 0; u < m->ntrees - t; u++) {
                    acc0 = _mm256_add_pd(
                        acc0, _mm256_i32gather_pd(m->cval, _mm256_castsi256_si128(r[u]), 8));
                    acc1 = _mm256_add_pd(
                        acc1, _mm256_i32gather_pd(m->cval, _mm256_extracti128_si256(r[u], 1), 8));
                }
            }
        }
        double v[ALONG_PASS];
        _mm256_storeu_pd(v, acc0);
        _mm256_storeu_pd(v + 4, acc1);
        int below = 0;
        for (size_t i = 0; i < nb; i++) {
            out[done + i] = v[i];
            below |= v[i] < stop;
        }
        done += nb;
        if (below)
            break;
    }
    return done;
}
#endif

size_t boost_margin_along_until(const boost_model *m, const double *xs, size_t n, int j1, int j2,
                                double stop, double *out)
{
#if defined(__x86_64__)
    enum { FIXED_STACK = 1024 }; /* trees whose fixed rows fit on the stack */
    if (m->crow && n >= 1 && j1 >= 0 && (size_t)j1 < m->d && j2 < (int)m->d && j2 != j1 &&
        __builtin_cpu_supports("avx2")) {
        /* ntp rows and the eight a pass from nlead reads past the last */
        uint32_t buf[FIXED_STACK + 8];
        uint32_t *fixed = m->ntp <= FIXED_STACK ? buf : malloc((m->ntp + 8) * sizeof *fixed);
        if (fixed) {
            size_t done = along_avx2(m, xs, n, j1, j2, stop, fixed, out);
            if (fixed != buf)
                free(fixed);
            return done;
        }
    }
#else
    (void)j1, (void)j2;
#endif
    /* Eight rows at a time (boost_margin_many), stopping as the passes do. */
    size_t done = 0;
    while (done < n) {
        const size_t nb = n - done < 8 ? n - done : 8;
        boost_margin_many(m, xs + done * m->d, nb, out + done);
        int below = 0;
        for (size_t i = done; i < done + nb; i++)
            below |= out[i] < stop;
        done += nb;
        if (below)
            break;
    }
    return done;
}

double boost_shap_path(const boost_model *m, const double *x, double *phi)
{
    /* (D+2)(D+3)/2 elements: each level copies the path, one longer. */
    path_el buf[(BOOST_MAX_DEPTH + 2) * (BOOST_MAX_DEPTH + 3) / 2];
    memset(phi, 0, m->d * sizeof *phi);
    double margin = m->base_margin;
    for (size_t t = 0; t < m->ntrees; t++) {
        const tree_span *ts = &m->trees[t];
        tree_shap(m, ts->first, x, phi, 0, 0, buf, 1.0, 1.0, -1);
        margin += m->value[leaf_of(m, ts, x)];
    }
    return margin;
}

/* ---- XGBoost's JSON model into our arrays --------------------------------- */

static rfm_status bad(char *err, size_t errlen, const char *where, const char *what)
{
    return rfm_fail(err, errlen, RFM_EFORMAT, "%s: XGBoost model: %s", where, what);
}

/* XGBoost's model text is a few hundred kilobytes of one known shape: a
 * tree is six arrays of numbers that matter (and others that do not), and
 * four settings say what the trees mean. A JSON library builds a value for
 * each of its tens of thousands of numbers and a table for each object
 * (a sixth of a training's instructions went there); this scanner reads
 * the text once, strict JSON (RFC 8259) throughout, keeps those arrays and
 * settings and steps over the rest. A key given twice in an object the
 * model is read from is refused; so is a number a JSON library refuses.
 * Strings are not checked for UTF-8: the text is XGBoost's own, or a
 * string of the model file, which the JSON library that read it checked. */

typedef struct {
    const char *p, *end;
} scan;

#define SCAN_DEPTH 64 /* nesting the scanner follows; XGBoost's is 7 */

static void sc_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static int sc_char(scan *s, char c)
{
    sc_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

static int hexdigit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string: *str and *len its bytes between the quotes as written (escapes
 * checked, not decoded: the keys and names compared are plain ASCII). */
static int sc_string(scan *s, const char **str, size_t *len)
{
    sc_ws(s);
    if (s->p >= s->end || *s->p != '"')
        return 0;
    const char *q = s->p + 1;
    for (; q < s->end && *q != '"'; q++) {
        if ((unsigned char)*q < 0x20)
            return 0;
        if (*q != '\\')
            continue;
        if (++q >= s->end || !strchr("\"\\/bfnrtu", *q) || !*q)
            return 0;
        if (*q == 'u') {
            if (s->end - q < 5 || !hexdigit(q[1]) || !hexdigit(q[2]) || !hexdigit(q[3]) ||
                !hexdigit(q[4]))
                return 0;
            q += 4;
        }
    }
    if (q >= s->end)
        return 0;
    *str = s->p + 1;
    *len = (size_t)(q - (s->p + 1));
    s->p = q + 1;
    return 1;
}

static int sc_is(const char *str, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(str, want, len) == 0;
}

/* A number (JSON's grammar): *v its double, as strtod rounds it; *integer
 * whether it is written as an integer (*iv), as JSON libraries tell
 * integers from reals. Refused, as they refuse them: an integer beyond 64
 * bits, a real beyond the largest double. */
static int sc_number(scan *s, double *v, int *integer, long long *iv)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    sc_ws(s);
    const char *q = s->p, *start = q;
    int neg = q < s->end && *q == '-';
    q += neg;
    if (q >= s->end || *q < '0' || *q > '9')
        return 0;
    uint64_t mant = 0;
    int digits = 0, exp10 = 0, frac = 0, expo = 0;
    if (*q == '0')
        q++;
    else
        for (; q < s->end && *q >= '0' && *q <= '9'; q++)
            if (digits < 19)
                mant = mant * 10 + (uint64_t)(*q - '0'), digits += mant > 0;
            else
                exp10++;
    if (q < s->end && *q == '.') {
        frac = 1;
        if (++q >= s->end || *q < '0' || *q > '9')
            return 0;
        for (; q < s->end && *q >= '0' && *q <= '9'; q++)
            if (digits < 19)
                mant = mant * 10 + (uint64_t)(*q - '0'), digits += mant > 0, exp10--;
    }
    if (q < s->end && (*q == 'e' || *q == 'E')) {
        expo = 1;
        q++;
        int eneg = q < s->end && (*q == '-' || *q == '+') ? *q++ == '-' : 0;
        if (q >= s->end || *q < '0' || *q > '9')
            return 0;
        int e = 0;
        for (; q < s->end && *q >= '0' && *q <= '9'; q++)
            if (e < 100000)
                e = e * 10 + (*q - '0');
        exp10 += eneg ? -e : e;
    }
    s->p = q;
    /* an integer beyond 64 bits is refused, as JSON libraries refuse it */
    if (!frac && !expo && (exp10 != 0 || mant > (uint64_t)INT64_MAX + (uint64_t)neg))
        return 0;
    *integer = !frac && !expo;
    if (*integer)
        *iv = neg ? (long long)(0 - mant) : (long long)mant;
    /* Clinger's fast path: a mantissa and a power of ten both exact as
     * doubles, one rounding, the correctly rounded value strtod gives. */
    if (mant <= (1ull << 53) && exp10 >= -22 && exp10 <= 22) {
        double m = (double)mant;
        *v = exp10 < 0 ? m / p10[-exp10] : m * p10[exp10];
    } else {
        char buf[128];
        size_t n = (size_t)(q - start);
        if (n >= sizeof buf)
            return 0; /* XGBoost writes at most 17 digits */
        memcpy(buf, start, n);
        buf[n] = '\0';
        *v = strtod(buf, NULL);
        return isfinite(*v); /* past the largest double: refused, as JSON libraries do */
    }
    if (neg)
        *v = -*v;
    return 1;
}

static int sc_skip(scan *s, int depth)
{
    sc_ws(s);
    if (s->p >= s->end || depth > SCAN_DEPTH)
        return 0;
    const char *str;
    size_t len;
    switch (*s->p) {
    case '{':
        s->p++;
        if (sc_char(s, '}'))
            return 1;
        do
            if (!sc_string(s, &str, &len) || !sc_char(s, ':') || !sc_skip(s, depth + 1))
                return 0;
        while (sc_char(s, ','));
        return sc_char(s, '}');
    case '[':
        s->p++;
        if (sc_char(s, ']'))
            return 1;
        do
            if (!sc_skip(s, depth + 1))
                return 0;
        while (sc_char(s, ','));
        return sc_char(s, ']');
    case '"': return sc_string(s, &str, &len);
    case 't':
    case 'f':
    case 'n': {
        const char *w = *s->p == 't' ? "true" : *s->p == 'f' ? "false" : "null";
        size_t n = strlen(w);
        if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
            return 0;
        s->p += n;
        return 1;
    }
    default: {
        double v;
        int integer;
        long long iv;
        return sc_number(s, &v, &integer, &iv);
    }
    }
}

/* The members of an object, one at a time: 1 with the next key (the
 * scanner at its value), 0 at the closing brace, -1 on bad JSON. *first
 * starts at 1. */
static int sc_member(scan *s, int *first, const char **key, size_t *klen)
{
    if (*first) {
        *first = 0;
        if (!sc_char(s, '{'))
            return -1;
        if (sc_char(s, '}'))
            return 0;
    } else if (!sc_char(s, ',')) {
        return sc_char(s, '}') ? 0 : -1;
    }
    return sc_string(s, key, klen) && sc_char(s, ':') ? 1 : -1;
}

/* The six node arrays of the trees read so far, back to back. */
enum { A_LEFT, A_RIGHT, A_FEAT, A_DLEFT, A_COND, A_HESS, NARR };
static const char *const ARR_KEY[NARR] = {"left_children", "right_children",   "split_indices",
                                          "default_left",  "split_conditions", "sum_hessian"};

typedef struct {
    double *v;            /* NARR values per node */
    unsigned char *isint; /* NARR per node: the value was written as an integer */
    long long *iv;        /* NARR integers per node (where written so) */
    size_t nodes, cap;
    size_t *tree_nodes; /* per tree: its node count */
    size_t ntrees, tcap;
    /* the settings, as written (strings of XGBoost's: "5E-1") */
    char objective[32], booster[32], base_score[64], num_feature[32];
    int have_objective, have_booster, have_base_score, have_num_feature, have_trees;
    int in_tree; /* reading trees[ntrees] */
} xgb_text;

static void xgb_text_free(xgb_text *x)
{
    free(x->v), free(x->isint), free(x->iv), free(x->tree_nodes);
}

/* A string value into buf (plain ASCII without escapes, else ""). */
static int sc_setting(scan *s, char *buf, size_t cap, int *have, const char **what)
{
    const char *str;
    size_t len;
    if (*have) {
        *what = "a setting given twice";
        return 0;
    }
    if (!sc_string(s, &str, &len))
        return 0;
    *have = 1;
    buf[0] = '\0';
    if (len < cap && !memchr(str, '\\', len))
        memcpy(buf, str, len), buf[len] = '\0';
    return 1;
}

/* One tree object: its six arrays appended (other members stepped over).
 * 0 on bad JSON, or with *what saying what is wrong with the tree. */
static int sc_tree(scan *s, xgb_text *x, const char **what)
{
    size_t base = x->nodes, len[NARR] = {0};
    int seen[NARR] = {0}, first = 1, r;
    x->in_tree = 1;
    const char *key;
    size_t klen;
    while ((r = sc_member(s, &first, &key, &klen)) == 1) {
        int a = 0;
        while (a < NARR && !sc_is(key, klen, ARR_KEY[a]))
            a++;
        if (a == NARR) {
            if (!sc_skip(s, 3))
                return 0;
            continue;
        }
        if (seen[a]) {
            *what = "a tree names a node array twice";
            return 0;
        }
        seen[a] = 1;
        if (!sc_char(s, '['))
            return 0;
        size_t k = 0;
        if (!sc_char(s, ']')) {
            do {
                if (k >= ((size_t)2 << BOOST_MAX_DEPTH)) {
                    *what = "a tree has no nodes or too many";
                    return 0;
                }
                size_t n = base + k;
                if (n >= x->cap) {
                    size_t cap = x->cap ? 2 * x->cap : 4096;
                    double *v = realloc(x->v, cap * NARR * sizeof *v);
                    if (v)
                        x->v = v;
                    long long *iv = realloc(x->iv, cap * NARR * sizeof *iv);
                    if (iv)
                        x->iv = iv;
                    unsigned char *in = realloc(x->isint, cap * NARR);
                    if (in)
                        x->isint = in;
                    if (!v || !iv || !in) {
                        *what = "out of memory";
                        return 0;
                    }
                    x->cap = cap;
                }
                int integer;
                if (!sc_number(s, &x->v[n * NARR + a], &integer, &x->iv[n * NARR + a])) {
                    *what = "a tree's node array holds something other than numbers";
                    return 0;
                }
                x->isint[n * NARR + a] = (unsigned char)integer;
                k++;
            } while (sc_char(s, ','));
            if (!sc_char(s, ']'))
                return 0;
        }
        len[a] = k;
    }
    if (r < 0)
        return 0;
    size_t nn = len[A_LEFT];
    for (int a = 0; a < NARR; a++)
        if (len[a] != nn || !seen[a]) {
            *what = "node arrays of different lengths";
            return 0;
        }
    if (nn < 1) {
        *what = "a tree has no nodes or too many";
        return 0;
    }
    if (x->ntrees == x->tcap) {
        size_t cap = x->tcap ? 2 * x->tcap : 256;
        size_t *t = realloc(x->tree_nodes, cap * sizeof *t);
        if (!t) {
            *what = "out of memory";
            return 0;
        }
        x->tree_nodes = t, x->tcap = cap;
    }
    x->tree_nodes[x->ntrees++] = nn;
    x->nodes += nn;
    x->in_tree = 0;
    return 1;
}

/* The model text: the trees and settings into x. 0 with *what NULL on bad
 * JSON (*at: the byte), or with *what saying what is wrong. */
static int sc_model(scan *s, xgb_text *x, const char **what)
{
    const char *key;
    size_t klen;
    int f0 = 1, r0, have_learner = 0;
    while ((r0 = sc_member(s, &f0, &key, &klen)) == 1) {
        if (!sc_is(key, klen, "learner")) {
            if (!sc_skip(s, 1))
                return 0;
            continue;
        }
        if (have_learner++) {
            *what = "learner given twice";
            return 0;
        }
        int f1 = 1, r1;
        while ((r1 = sc_member(s, &f1, &key, &klen)) == 1) {
            int f2 = 1, r2;
            if (sc_is(key, klen, "objective") || sc_is(key, klen, "learner_model_param")) {
                int obj = sc_is(key, klen, "objective");
                while ((r2 = sc_member(s, &f2, &key, &klen)) == 1) {
                    int ok = obj && sc_is(key, klen, "name")
                                 ? sc_setting(s, x->objective, sizeof x->objective,
                                              &x->have_objective, what)
                             : !obj && sc_is(key, klen, "base_score")
                                 ? sc_setting(s, x->base_score, sizeof x->base_score,
                                              &x->have_base_score, what)
                             : !obj && sc_is(key, klen, "num_feature")
                                 ? sc_setting(s, x->num_feature, sizeof x->num_feature,
                                              &x->have_num_feature, what)
                                 : sc_skip(s, 3);
                    if (!ok)
                        return 0;
                }
            } else if (sc_is(key, klen, "gradient_booster")) {
                while ((r2 = sc_member(s, &f2, &key, &klen)) == 1) {
                    if (sc_is(key, klen, "name")) {
                        if (!sc_setting(s, x->booster, sizeof x->booster, &x->have_booster, what))
                            return 0;
                        continue;
                    }
                    if (!sc_is(key, klen, "model")) {
                        if (!sc_skip(s, 3))
                            return 0;
                        continue;
                    }
                    int f3 = 1, r3;
                    while ((r3 = sc_member(s, &f3, &key, &klen)) == 1) {
                        if (!sc_is(key, klen, "trees")) {
                            if (!sc_skip(s, 4))
                                return 0;
                            continue;
                        }
                        if (x->have_trees++) {
                            *what = "trees given twice";
                            return 0;
                        }
                        if (!sc_char(s, '['))
                            return 0;
                        if (!sc_char(s, ']')) {
                            do
                                if (!sc_tree(s, x, what))
                                    return 0;
                            while (sc_char(s, ','));
                            if (!sc_char(s, ']'))
                                return 0;
                        }
                    }
                    if (r3 < 0)
                        return 0;
                }
            } else {
                if (!sc_skip(s, 2))
                    return 0;
                continue;
            }
            if (r2 < 0)
                return 0;
        }
        if (r1 < 0)
            return 0;
    }
    if (r0 < 0)
        return 0;
    sc_ws(s);
    return s->p == s->end; /* nothing after the value */
}

/* A setting written as a number in a string ("5E-1"), as XGBoost writes them. */
static int setting_number(const char *str, int have, double *out)
{
    if (!have || !str[0])
        return 0;
    char *end;
    *out = strtod(str, &end);
    return *end == '\0' && isfinite(*out);
}

/* Depth of node k below it and cover-weighted mean of its leaves; checks
 * that the children are inside the tree and every node is reached once. */
static int walk_tree(boost_model *m, size_t base, size_t k, int level, double *mean,
                     unsigned char *seen)
{
    if (level > BOOST_MAX_DEPTH || seen[k])
        return -1;
    seen[k] = 1;
    size_t n = base + k;
    if (m->left[n] < 0) {
        *mean = m->value[n];
        return 0;
    }
    double ml, mr;
    int dl = walk_tree(m, base, (size_t)m->left[n], level + 1, &ml, seen);
    int dr = dl < 0 ? -1 : walk_tree(m, base, (size_t)m->right[n], level + 1, &mr, seen);
    if (dr < 0)
        return -1;
    double cl = m->cover[base + (size_t)m->left[n]], cr = m->cover[base + (size_t)m->right[n]];
    *mean = cl + cr > 0 ? (ml * cl + mr * cr) / (cl + cr) : 0.0;
    return 1 + (dl > dr ? dl : dr);
}

static rfm_status build_fast(boost_model *m, char *err, size_t errlen);
static rfm_status build_flat(boost_model *m, char *err, size_t errlen);
static rfm_status build_cells(boost_model *m, char *err, size_t errlen);
static rfm_status order_trees(boost_model *m, char *err, size_t errlen);

/* XGBoost's JSON model text into m's trees (then their order and the
 * serving tables); d, when not 0, the features the model must have. */
static rfm_status parse_xgb(boost_model *m, const char *text, size_t len, size_t d,
                            const char *where, char *err, size_t errlen)
{
    xgb_text x;
    memset(&x, 0, sizeof x);
    scan s = {text, text + len};
    const char *what = NULL;
    char msg[160];
    rfm_status st = RFM_OK;
    double base_score = 0.5, nf = 0;
    if (!sc_model(&s, &x, &what)) {
        if (what && x.in_tree && strncmp(what, "out of", 6) != 0)
            snprintf(msg, sizeof msg, "trees[%zu]: %s", x.ntrees, what);
        else
            snprintf(msg, sizeof msg, "%s", what ? what : "");
        st = what && strncmp(what, "out of", 6) == 0
                 ? rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory for the model text", where)
             : what ? bad(err, errlen, where, msg)
                    : rfm_fail(err, errlen, RFM_EFORMAT, "%s: not JSON (byte %zu)", where,
                               (size_t)(s.p - text));
    } else if (strcmp(x.objective, "binary:logistic") != 0)
        st = bad(err, errlen, where, "learner.objective.name must be \"binary:logistic\"");
    else if (strcmp(x.booster, "gbtree") != 0)
        st = bad(err, errlen, where, "learner.gradient_booster.name must be \"gbtree\"");
    else if (!setting_number(x.base_score, x.have_base_score, &base_score) || !(base_score > 0.0) ||
             !(base_score < 1.0))
        st = bad(err, errlen, where, "learner_model_param.base_score must be in (0, 1)");
    else if (!setting_number(x.num_feature, x.have_num_feature, &nf) || nf < 1 ||
             nf > BOOST_MAX_FEATURES || nf != floor(nf) || (d && (size_t)nf != d))
        st = bad(err, errlen, where, "learner_model_param.num_feature does not match the model");
    else if (x.ntrees < 1)
        st = bad(err, errlen, where, "gradient_booster.model.trees must be a non-empty array");
    if (st != RFM_OK) {
        xgb_text_free(&x);
        return st;
    }
    m->d = (size_t)nf;
    m->base_margin = log(base_score / (1.0 - base_score));
    size_t nt = x.ntrees, total = x.nodes;
    m->ntrees = nt;
    m->nnodes = total;
    m->trees = calloc(nt, sizeof *m->trees);
    m->left = malloc(total * sizeof *m->left);
    m->right = malloc(total * sizeof *m->right);
    m->feat = malloc(total * sizeof *m->feat);
    m->thr = malloc(total * sizeof *m->thr);
    m->dleft = malloc(total * sizeof *m->dleft);
    m->value = malloc(total * sizeof *m->value);
    m->cover = malloc(total * sizeof *m->cover);
    unsigned char *seen = malloc(((size_t)2 << BOOST_MAX_DEPTH) + 1);
    if (!m->trees || !m->left || !m->right || !m->feat || !m->thr || !m->dleft || !m->value ||
        !m->cover || !seen) {
        free(seen);
        xgb_text_free(&x);
        return rfm_fail(err, errlen, RFM_ENOMEM, "boost: out of memory for %zu nodes", total);
    }
    size_t first = 0;
    m->base_value = m->base_margin;
    m->max_depth = 0;
    for (size_t t = 0; t < nt && st == RFM_OK; t++) {
        size_t nn = x.tree_nodes[t];
        for (size_t k = 0; k < nn; k++) {
            size_t n = first + k;
            const double *v = &x.v[n * NARR];
            const long long *iv = &x.iv[n * NARR];
            const unsigned char *in = &x.isint[n * NARR];
            long long l = iv[A_LEFT], r = iv[A_RIGHT], f = iv[A_FEAT];
            double c = v[A_COND], h = v[A_HESS];
            if (!in[A_LEFT] || !in[A_RIGHT] || !in[A_FEAT] || !in[A_DLEFT] || !isfinite(c) ||
                !(h >= 0.0) || (l < 0) != (r < 0) ||
                (l >= 0 && (l >= (long long)nn || r >= (long long)nn || l == 0 || r == 0)) ||
                (l >= 0 && (f < 0 || f >= (long long)m->d))) {
                snprintf(msg, sizeof msg, "trees[%zu] node %zu is not a valid node", t, k);
                st = bad(err, errlen, where, msg);
                break;
            }
            m->left[n] = l < 0 ? -1 : (int32_t)l;
            m->right[n] = r < 0 ? -1 : (int32_t)r;
            m->feat[n] = l < 0 ? 0 : (int32_t)f;
            /* XGBoost's values are floats printed in full: (float) recovers them. */
            float cv = (float)c;
            m->thr[n] = l < 0 ? 0.0f : cv;
            m->value[n] = l < 0 ? (double)cv : 0.0;
            m->dleft[n] = iv[A_DLEFT] != 0;
            m->cover[n] = h;
        }
        if (st != RFM_OK)
            break;
        memset(seen, 0, nn);
        double mean;
        int depth = walk_tree(m, first, 0, 0, &mean, seen);
        size_t reached = 0;
        for (size_t k = 0; k < nn; k++)
            reached += seen[k];
        if (depth < 0 || reached != nn) {
            snprintf(msg, sizeof msg,
                     "trees[%zu] is not a binary tree of depth <= %d reaching every node", t,
                     BOOST_MAX_DEPTH);
            st = bad(err, errlen, where, msg);
            break;
        }
        for (size_t k = 0; k < nn && st == RFM_OK; k++)
            if (m->left[first + k] >= 0 && !(m->cover[first + (size_t)m->left[first + k]] +
                                                 m->cover[first + (size_t)m->right[first + k]] >
                                             0.0)) {
                snprintf(msg, sizeof msg, "trees[%zu] node %zu: children with no cover", t, k);
                st = bad(err, errlen, where, msg);
            }
        m->trees[t] = (tree_span){.first = first, .nnodes = nn, .depth = depth, .mean = mean};
        if (depth > m->max_depth)
            m->max_depth = depth;
        first += nn;
    }
    free(seen);
    xgb_text_free(&x);
    if (st != RFM_OK)
        return st;
    st = order_trees(m, err, errlen);
    for (size_t t = 0; t < nt; t++) /* in the model's order, as every sum */
        m->base_value += m->trees[t].mean;
    st = st == RFM_OK && m->max_depth <= FAST_DEPTH ? build_fast(m, err, errlen) : st;
    st = st == RFM_OK && m->max_depth <= FLAT_DEPTH ? build_flat(m, err, errlen) : st;
    return st == RFM_OK ? build_cells(m, err, errlen) : st;
}

/* Node n (absolute) of its tree at position k of the complete layout of
 * depth D, level lvl: copy it, or spread a leaf over the levels below. */
static void flat_fill(boost_model *m, flat_node *in, double *leaf, size_t n, unsigned k,
                      unsigned lvl, unsigned depth, size_t base)
{
    unsigned ninner = (1u << depth) - 1;
    if (lvl == depth) {
        leaf[k - ninner] = m->value[n];
        return;
    }
    int is_leaf = m->left[n] < 0;
    in[k] = is_leaf ? (flat_node){0.0f, 0, 0}
                    : (flat_node){m->thr[n], (uint8_t)m->feat[n], m->dleft[n]};
    flat_fill(m, in, leaf, is_leaf ? n : base + (size_t)m->left[n], 2 * k + 1, lvl + 1, depth,
              base);
    flat_fill(m, in, leaf, is_leaf ? n : base + (size_t)m->right[n], 2 * k + 2, lvl + 1, depth,
              base);
}

static rfm_status build_flat(boost_model *m, char *err, size_t errlen)
{
    unsigned depth = m->max_depth > 0 ? (unsigned)m->max_depth : 1;
    size_t ninner = ((size_t)1 << depth) - 1;
    m->flat_inner = malloc(m->ntrees * ninner * sizeof *m->flat_inner);
    m->flat_leaf = malloc(m->ntrees * (ninner + 1) * sizeof *m->flat_leaf);
    if (!m->flat_inner || !m->flat_leaf) {
        free(m->flat_inner), free(m->flat_leaf);
        m->flat_inner = NULL, m->flat_leaf = NULL;
        return rfm_fail(err, errlen, RFM_ENOMEM, "boost: out of memory for the flat trees");
    }
    for (size_t t = 0; t < m->ntrees; t++)
        flat_fill(m, m->flat_inner + t * ninner, m->flat_leaf + t * (ninner + 1), m->trees[t].first,
                  0, 0, depth, m->trees[t].first);
    m->flat_depth = (int)depth;
    return RFM_OK;
}

/* The tables of the fast path (m->max_depth <= FAST_DEPTH). For a leaf of
 * value v whose path has distinct features U (m of them), the share z_j of
 * training cover that follows the path at feature j's nodes, and o_j = 1 when
 * x follows all of them, TreeSHAP's contribution of feature k is the Shapley
 * value of the game S -> v prod_{j in S} o_j prod_{j in U\S} z_j:
 *   phi_k = v (o_k - z_k) sum_{S in U\k} |S|! (m-|S|-1)! / m! prod_S o prod_{U\S\k} z. */
static rfm_status build_fast(boost_model *m, char *err, size_t errlen)
{
    size_t nleaves = 0, ntab = 0;
    for (size_t n = 0; n < m->nnodes; n++)
        if (m->left[n] < 0) {
            nleaves++;
            ntab += (size_t)(1u << FAST_DEPTH) * FAST_DEPTH;
        }
    m->leaves = calloc(nleaves, sizeof *m->leaves);
    m->snode = malloc((m->nnodes - nleaves + 1) * sizeof *m->snode);
    m->tab = calloc(ntab, sizeof *m->tab);
    /* ntab / FAST_DEPTH rows at most, WIDE_D wide, each on one 64-byte cache
     * line (a row read straddling two cost a second miss); zeros are +0.0 */
    size_t wbytes = ntab / FAST_DEPTH * WIDE_D * sizeof *m->wtab;
    m->wtab = m->d <= WIDE_D ? aligned_alloc(64, wbytes) : NULL;
    if (m->wtab)
        memset(m->wtab, 0, wbytes);
    if (!m->leaves || !m->snode || !m->tab || (m->d <= WIDE_D && !m->wtab)) {
        free(m->leaves), free(m->snode), free(m->tab), free(m->wtab);
        m->leaves = NULL, m->snode = NULL, m->tab = NULL, m->wtab = NULL;
        return rfm_fail(err, errlen, RFM_ENOMEM, "boost: out of memory for the SHAP tables");
    }
    /* Each tree's inner nodes (at most 15 at FAST_DEPTH 4, numbered below
     * 31 in their tree), in their tree's order. */
    for (size_t t = 0, at = 0; t < m->ntrees; t++) {
        tree_span *ts = &m->trees[t];
        ts->sfirst = at;
        for (size_t k = 0; k < ts->nnodes; k++) {
            size_t n = ts->first + k;
            if (m->left[n] >= 0)
                m->snode[at++] =
                    (shap_node){m->thr[n], (uint8_t)m->feat[n], m->dleft[n], (uint8_t)k};
        }
        ts->ninner = at - ts->sfirst;
    }
    static const double fact[FAST_DEPTH + 1] = {1, 1, 2, 6, 24};
    size_t l = 0, off = 0, woff = 0;
    for (size_t t = 0; t < m->ntrees; t++) {
        tree_span *ts = &m->trees[t];
        size_t base = ts->first;
        ts->lfirst = l;
        /* Depth-first over the tree, the path on a stack. */
        int32_t stack_node[FAST_DEPTH + 1], stack_child[FAST_DEPTH + 1];
        int sp = 0;
        stack_node[0] = 0, stack_child[0] = 0;
        while (sp >= 0) {
            size_t n = base + (size_t)stack_node[sp];
            if (m->left[n] < 0 || stack_child[sp] == 2) {
                if (m->left[n] < 0) {
                    leaf_rule *r = &m->leaves[l++];
                    double z[FAST_DEPTH];
                    r->depth = (uint8_t)sp;
                    r->value = m->value[n];
                    r->m = 0;
                    for (int k = 0; k < sp; k++) {
                        size_t pn = base + (size_t)stack_node[k];
                        int went_left = stack_child[k] == 1;
                        double cl = m->cover[base + (size_t)m->left[pn]],
                               cr = m->cover[base + (size_t)m->right[pn]];
                        double frac = (went_left ? cl : cr) / (cl + cr);
                        unsigned s = 0;
                        while (s < r->m && r->feat[s] != m->feat[pn])
                            s++;
                        if (s == r->m) {
                            r->feat[r->m++] = m->feat[pn];
                            z[s] = 1.0;
                        }
                        z[s] *= frac;
                        r->want |= (uint32_t)went_left << stack_node[k];
                        r->smask[s] |= (uint32_t)1 << stack_node[k];
                    }
                    r->tab = off;
                    unsigned mm = r->m;
                    for (unsigned pat = 0; pat < (1u << mm); pat++)
                        for (unsigned k = 0; k < mm; k++) {
                            double sum = 0.0;
                            for (unsigned S = 0; S < (1u << mm); S++) {
                                if (S & (1u << k))
                                    continue;
                                double prod = 1.0;
                                for (unsigned j = 0; j < mm; j++)
                                    if (j != k)
                                        prod *= (S & (1u << j)) ? (double)((pat >> j) & 1u) : z[j];
                                unsigned s = (unsigned)__builtin_popcount(S);
                                sum += fact[s] * fact[mm - s - 1] / fact[mm] * prod;
                            }
                            m->tab[off + pat * mm + k] =
                                r->value * ((double)((pat >> k) & 1u) - z[k]) * sum;
                        }
                    r->wtab = woff;
                    if (m->wtab)
                        for (unsigned pat = 0; pat < (1u << mm); pat++)
                            for (unsigned k = 0; k < mm; k++)
                                m->wtab[woff + pat * WIDE_D + (unsigned)r->feat[k]] =
                                    m->tab[off + pat * mm + k];
                    off += (size_t)(1u << mm) * mm;
                    woff += (size_t)(1u << mm) * WIDE_D;
                }
                sp--;
                continue;
            }
            /* Next child of the node on top: left first, then right. */
            int c = stack_child[sp]++;
            stack_node[sp + 1] = c == 0 ? m->left[n] : m->right[n];
            stack_child[sp + 1] = 0;
            sp++;
        }
        ts->nleaves = l - ts->lfirst;
    }
    return RFM_OK;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The thresholds of the inner nodes i in [first, first + n) on feature f
 * into out, ascending, each once: how many. *dirs: where those nodes send
 * a missing value (bit 0: some left, bit 1: some right). */
static size_t thresholds_on(const boost_model *m, size_t first, size_t n, size_t f, float *out,
                            unsigned *dirs)
{
    size_t k = 0;
    *dirs = 0;
    for (size_t i = first; i < first + n; i++)
        if (m->left[i] >= 0 && (size_t)m->feat[i] == f) {
            out[k++] = m->thr[i];
            *dirs |= m->dleft[i] ? 1u : 2u;
        }
    if (!k)
        return 0;
    qsort(out, k, sizeof *out, cmp_float);
    size_t u = 1;
    for (size_t i = 1; i < k; i++)
        if (out[i] != out[u - 1])
            out[u++] = out[i];
    return u;
}

/* The order (boost.h), of the parsed trees' spans (their nodes stay where
 * they are): first the trees that split on no feature in vary, then those
 * whose cells on vary's features (thresholds_on's count on each, plus one,
 * plus one more when missing values go both ways, multiplied) are at most
 * VARY_BLOCK, then the rest, each group in XGBoost's order. Sets nlead and
 * nblock; vary 0 keeps XGBoost's order (both 0). */
static rfm_status order_trees(boost_model *m, char *err, size_t errlen)
{
    m->nlead = m->nblock = 0;
    if (!m->vary)
        return RFM_OK;
    tree_span *by = malloc(m->ntrees * sizeof *by);
    uint8_t *group = malloc(m->ntrees);
    float *thr = malloc(sizeof *thr * (m->nnodes ? m->nnodes : 1));
    if (!by || !group || !thr) {
        free(by), free(group), free(thr);
        return rfm_fail(err, errlen, RFM_ENOMEM, "boost: out of memory for %zu trees", m->ntrees);
    }
    for (size_t t = 0; t < m->ntrees; t++) {
        const tree_span *ts = &m->trees[t];
        size_t block = 1;
        int any = 0;
        for (size_t f = 0; f < m->d && f < 32; f++) {
            unsigned dirs;
            size_t u =
                m->vary >> f & 1 ? thresholds_on(m, ts->first, ts->nnodes, f, thr, &dirs) : 0;
            if (u)
                any = 1, block *= u + 1 + (dirs == 3);
        }
        group[t] = !any ? 0 : block <= VARY_BLOCK ? 1 : 2;
    }
    size_t placed = 0;
    for (uint8_t g = 0; g < 3; g++)
        for (size_t t = 0; t < m->ntrees; t++)
            if (group[t] == g) {
                by[placed++] = m->trees[t];
                m->nlead += g == 0, m->nblock += g == 1;
            }
    memcpy(m->trees, by, m->ntrees * sizeof *by);
    free(by), free(group), free(thr);
    return RFM_OK;
}

static void cells_free(boost_model *m)
{
    free(m->crow), free(m->ctab), free(m->uthr), free(m->cphi), free(m->cval), free(m->cvalf);
    m->crow = NULL, m->ctab = NULL, m->uthr = NULL, m->cphi = NULL, m->cval = NULL;
    m->cvalf = NULL;
}

/* The cells of every tree (see CELL_TREE_MAX), each explained by tree_shap at
 * a point inside it: the thresholds are floats and x is compared as a
 * float, so an interval's lowest float (or the float below the first
 * threshold, or NaN) stands for all of it. Left NULL (the leaf tables
 * serve) for more than WIDE_D features or more cells than the caps. */
static rfm_status build_cells(boost_model *m, char *err, size_t errlen)
{
    if (m->d > WIDE_D || !m->ntrees)
        return RFM_OK;
    float *tmp = malloc(sizeof *tmp * (m->nnodes ? m->nnodes : 1));
    m->uthr = malloc(sizeof *m->uthr * (m->nnodes ? m->nnodes : 1));
    if (!tmp || !m->uthr) {
        free(tmp);
        cells_free(m);
        return rfm_fail(err, errlen, RFM_ENOMEM, "boost: out of memory for the cells");
    }
    /* Every threshold of the model, per feature. */
    uint32_t used = 0;
    unsigned dirs;
    for (size_t f = 0; f < m->d; f++) {
        size_t u = thresholds_on(m, 0, m->nnodes, f, m->uthr + used, &dirs);
        m->uoff[f] = used, m->ucount[f] = (uint32_t)u;
        used += (uint32_t)u;
    }
    /* Sizes, and whether every tree fits: ctab's rows (the zeros, then
     * each feature's places) of ntp entries. */
    m->ntp = (m->ntrees + 15) & ~(size_t)15;
    size_t prows = 1, rows = 0;
    for (size_t f = 0; f < m->d; f++)
        m->pbase[f] = (uint32_t)prows, prows += m->ucount[f] + 2;
    double work = 0;
    int fits = prows * m->ntp <= CELL_MAP_MAX;
    for (size_t t = 0; t < m->ntrees && fits; t++) {
        const tree_span *ts = &m->trees[t];
        size_t cells = 1;
        for (size_t f = 0; f < m->d && fits; f++) {
            size_t u = thresholds_on(m, ts->first, ts->nnodes, f, tmp, &dirs);
            if (!u)
                continue;
            cells *= u + 1 + (dirs == 3);
            fits = cells <= CELL_TREE_MAX && isfinite(tmp[0]);
        }
        rows += cells;
        work += (double)cells * (double)ts->nnodes * (ts->depth + 1) * (ts->depth + 1);
        fits = fits && rows <= CELL_ALL_MAX && work <= CELL_WORK_MAX;
    }
    if (!fits) {
        free(tmp);
        cells_free(m);
        return RFM_OK;
    }
    m->crow = calloc(m->ntp, sizeof *m->crow); /* 0 past ntrees: rows_avx2 reads there */
    /* 8 more: a counterfactual's pass from nlead reads up to 8 past a row */
    m->ctab = calloc(prows * m->ntp + 8, sizeof *m->ctab);
    m->cphi = calloc(rows * WIDE_D, sizeof *m->cphi);
    m->cval = malloc(sizeof *m->cval * rows);
    m->cvalf = calloc(rows + VARY_BLOCK, sizeof *m->cvalf); /* a block read past the last */
    if (!m->crow || !m->ctab || !m->cphi || !m->cval || !m->cvalf) {
        free(tmp);
        cells_free(m);
        return rfm_fail(err, errlen, RFM_ENOMEM, "boost: out of memory for the cells");
    }
    path_el buf[(BOOST_MAX_DEPTH + 2) * (BOOST_MAX_DEPTH + 3) / 2];
    /* The axes of a tree's cells, the features in vary first: then its
     * cells on them, for given cells on the others, are adjacent (a block
     * of at most VARY_BLOCK for the trees of the order's second group). */
    size_t forder[WIDE_D], nf = 0;
    for (int late = 0; late < 2; late++)
        for (size_t f = 0; f < m->d; f++)
            if ((f < 32 && (m->vary >> f & 1)) == !late)
                forder[nf++] = f;
    size_t row = 0;
    for (size_t t = 0; t < m->ntrees; t++) {
        const tree_span *ts = &m->trees[t];
        m->crow[t] = (uint32_t)row;
        uint32_t stride = 1, naxes = 0;
        /* Each feature the tree uses (an axis): its thresholds (kept in
         * tmp from off on, for the points below) and its map from the
         * model's places. */
        size_t feat[WIDE_D], off[WIDE_D], cnt[WIDE_D], rad[WIDE_D], used_t = 0;
        for (size_t q = 0; q < m->d; q++) {
            const size_t f = forder[q]; /* vary's features the smallest strides */
            size_t u = thresholds_on(m, ts->first, ts->nnodes, f, tmp + used_t, &dirs);
            if (!u)
                continue;
            /* A missing value: the interval of its own only when the nodes
             * send it both ways; else it goes where a value below all the
             * thresholds goes (every node: left), or above (right). */
            size_t radix = u + 1 + (dirs == 3), miss = dirs == 3 ? u + 1 : dirs == 1 ? 0 : u;
            const float *mine = tmp + used_t, *all = m->uthr + m->uoff[f];
            uint16_t *map = m->ctab + (size_t)m->pbase[f] * m->ntp + t; /* place p: map[p ntp] */
            size_t below = 0; /* this tree's thresholds among all[0..p) */
            for (size_t p = 0; p <= m->ucount[f]; p++) {
                if (p > 0 && below < u && all[p - 1] == mine[below])
                    below++;
                map[p * m->ntp] = (uint16_t)(below * stride);
            }
            map[(m->ucount[f] + 1) * m->ntp] = (uint16_t)(miss * stride);
            feat[naxes] = f, off[naxes] = used_t, cnt[naxes] = u, rad[naxes] = radix;
            stride *= (uint32_t)radix;
            used_t += u, naxes++;
        }
        for (uint32_t c = 0; c < stride; c++, row++) {
            double x[WIDE_D] = {0}, phi[WIDE_D] = {0};
            uint32_t rest = c;
            for (uint32_t a = 0; a < naxes; a++) {
                uint32_t n = (uint32_t)cnt[a], pos = rest % (uint32_t)rad[a];
                const float *thr = tmp + off[a];
                rest /= (uint32_t)rad[a];
                x[feat[a]] = pos > n ? NAN : pos ? thr[pos - 1] : nextafterf(thr[0], -INFINITY);
            }
            tree_shap(m, ts->first, x, phi, 0, 0, buf, 1.0, 1.0, -1);
            memcpy(m->cphi + row * WIDE_D, phi, sizeof phi);
            m->cval[row] = m->value[leaf_of(m, ts, x)];
            m->cvalf[row] = (float)m->cval[row]; /* XGBoost's float: exact */
        }
    }
    free(tmp);
    return RFM_OK;
}

/* Copy the booster's JSON model into m and parse it. */
static rfm_status dump_and_parse(boost_model *m, char *err, size_t errlen)
{
    bst_ulong len;
    const char *buf;
    if (m->xgb.booster_save_model_to_buffer(m->booster, "{\"format\": \"json\"}", &len, &buf) != 0)
        return xgb_fail(&m->xgb, err, errlen, "SaveModelToBuffer");
    m->xgb_json = malloc((size_t)len + 1);
    if (!m->xgb_json)
        return rfm_fail(err, errlen, RFM_ENOMEM, "boost: out of memory for the model text");
    memcpy(m->xgb_json, buf, (size_t)len);
    m->xgb_json[len] = '\0';
    m->xgb_len = (size_t)len;
    return parse_xgb(m, m->xgb_json, m->xgb_len, m->d, "boost", err, errlen);
}

/* ---- fit ------------------------------------------------------------------ */

static float *to_floats(const double *x, size_t n)
{
    float *f = malloc((n ? n : 1) * sizeof *f);
    if (f)
        for (size_t i = 0; i < n; i++)
            f[i] = (float)x[i];
    return f;
}

rfm_status boost_fit(const double *x, const int *y, size_t n, size_t d, const boost_params *p,
                     uint32_t vary, boost_model **out, char *err, size_t errlen)
{
    const char *why = boost_check_params(p);
    if (why)
        return rfm_fail(err, errlen, RFM_EINVAL, "boost: %s", why);
    if (!x || !y || !out || d < 1 || d > BOOST_MAX_FEATURES || n < 2)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "boost_fit: needs x, y, n >= 2 rows and 1..%d features",
                        BOOST_MAX_FEATURES);
    size_t npos = 0;
    for (size_t i = 0; i < n; i++) {
        if (y[i] != 0 && y[i] != 1)
            return rfm_fail(err, errlen, RFM_EINVAL, "boost_fit: row %zu: label %d not 0 or 1", i,
                            y[i]);
        npos += (size_t)y[i];
        for (size_t j = 0; j < d; j++)
            if (isinf(x[i * d + j]) || fabs(x[i * d + j]) > 3e38)
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "boost_fit: row %zu column %zu: %g is beyond a float", i, j,
                                x[i * d + j]);
    }
    if (npos == 0 || npos == n)
        return rfm_fail(err, errlen, RFM_EDATA, "boost_fit: every label is %d: nothing to learn",
                        y[0]);
    boost_model *m = calloc(1, sizeof *m);
    float *xf = to_floats(x, n * d), *yf = malloc(n * sizeof *yf);
    DMatrixHandle dm = NULL;
    xgb_api xa;
    const xgb_api *xg = &xa;
    rfm_status st = RFM_OK;
    if (!m || !xf || !yf) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "boost_fit: out of memory for %zu x %zu", n, d);
        goto done;
    }
    m->d = d;
    m->par = *p;
    m->vary = vary;
    for (size_t i = 0; i < n; i++)
        yf[i] = (float)y[i];
    if ((st = xgb_bind(&xa, err, errlen)) != RFM_OK)
        goto done;
    m->xgb = xa;
    if (xg->dmatrix_create_from_mat(xf, (bst_ulong)n, (bst_ulong)d, NAN, &dm) != 0) {
        st = xgb_fail(xg, err, errlen, "DMatrixCreateFromMat");
        goto done;
    }
    if (xg->dmatrix_set_float_info(dm, "label", yf, (bst_ulong)n) != 0) {
        st = xgb_fail(xg, err, errlen, "DMatrixSetFloatInfo(label)");
        goto done;
    }
    if (xg->booster_create(&dm, 1, &m->booster) != 0) {
        st = xgb_fail(xg, err, errlen, "BoosterCreate");
        goto done;
    }
    char v[8][32];
    snprintf(v[0], sizeof v[0], "%d", p->max_depth);
    snprintf(v[1], sizeof v[1], "%.17g", p->eta);
    snprintf(v[2], sizeof v[2], "%.17g", p->lambda);
    snprintf(v[3], sizeof v[3], "%.17g", p->min_child_weight);
    snprintf(v[4], sizeof v[4], "%.17g", p->subsample);
    /* XGBoost's seed is an int: the low 31 bits of ours. */
    snprintf(v[5], sizeof v[5], "%d", (int)(p->seed & 0x7fffffff));
    /* Below BOOST_PAR_ROWS rows a round takes well under a millisecond and
     * OpenMP's barriers (spinning, on a busy machine) cost more than the
     * second thread saves: measured on the churn fit (4,000 rows, 200
     * rounds), nthread 2 burnt 8 CPU s against 0.1 s on one thread. */
    snprintf(v[6], sizeof v[6], "%d", n < BOOST_PAR_ROWS ? 1 : p->nthread);
    const char *kv[][2] = {
        {"objective", "binary:logistic"},
        {"base_score", "0.5"},
        {"tree_method", "hist"},
        {"verbosity", "0"},
        {"max_depth", v[0]},
        {"eta", v[1]},
        {"lambda", v[2]},
        {"min_child_weight", v[3]},
        {"subsample", v[4]},
        {"seed", v[5]},
        {"nthread", v[6]},
    };
    for (size_t k = 0; k < sizeof kv / sizeof kv[0]; k++)
        if (xg->booster_set_param(m->booster, kv[k][0], kv[k][1]) != 0) {
            st = xgb_fail(xg, err, errlen, "BoosterSetParam");
            goto done;
        }
    for (int it = 0; it < p->rounds; it++)
        if (xg->booster_update_one_iter(m->booster, it, dm) != 0) {
            st = xgb_fail(xg, err, errlen, "BoosterUpdateOneIter");
            goto done;
        }
    if ((st = dump_and_parse(m, err, errlen)) != RFM_OK)
        goto done;
    *out = m;
    m = NULL;
done:
    if (dm)
        xg->dmatrix_free(dm);
    free(xf), free(yf);
    boost_free(m);
    return st;
}

rfm_status boost_xgb_predict(const boost_model *m, const double *x, size_t n, int contribs,
                             double *out, char *err, size_t errlen)
{
    /* A loaded model's booster, from its text on first use: scoring never
     * needs it, so loading (rfm-serve's start, rfm-score, analytics) does
     * not pay for XGBoost's own parse. The model was allocated mutable. */
    boost_model *mm = (boost_model *)m;
    const xgb_api *xg = &mm->xgb;
    if (!mm->booster) {
        rfm_status st = xgb_bind(&mm->xgb, err, errlen);
        if (st != RFM_OK)
            return st;
        if (xg->booster_create(NULL, 0, &mm->booster) != 0 ||
            xg->booster_load_model_from_buffer(mm->booster, mm->xgb_json, (bst_ulong)mm->xgb_len) !=
                0) {
            st = xgb_fail(xg, err, errlen, "LoadModelFromBuffer");
            if (mm->booster)
                xg->booster_free(mm->booster);
            mm->booster = NULL;
            return st;
        }
    }
    float *xf = to_floats(x, n * m->d);
    if (!xf)
        return rfm_fail(err, errlen, RFM_ENOMEM, "boost: out of memory for %zu rows", n);
    DMatrixHandle dm = NULL;
    rfm_status st = RFM_OK;
    const bst_ulong *shape;
    bst_ulong dim;
    const float *res;
    const char *cfg = contribs ? "{\"type\": 2, \"training\": false, \"iteration_begin\": 0, "
                                 "\"iteration_end\": 0, \"strict_shape\": false}"
                               : "{\"type\": 1, \"training\": false, \"iteration_begin\": 0, "
                                 "\"iteration_end\": 0, \"strict_shape\": false}";
    if (xg->dmatrix_create_from_mat(xf, (bst_ulong)n, (bst_ulong)m->d, NAN, &dm) != 0)
        st = xgb_fail(xg, err, errlen, "DMatrixCreateFromMat");
    else if (xg->booster_predict_from_dmatrix(m->booster, dm, cfg, &shape, &dim, &res) != 0)
        st = xgb_fail(xg, err, errlen, "BoosterPredictFromDMatrix");
    else {
        size_t w = contribs ? m->d + 1 : 1;
        for (size_t i = 0; i < n * w; i++)
            out[i] = (double)res[i];
    }
    if (dm)
        xg->dmatrix_free(dm);
    free(xf);
    return st;
}

/* ---- files ---------------------------------------------------------------- */

rfm_status boost_to_json(const boost_model *m, json_t **out, char *err, size_t errlen)
{
    const boost_params *p = &m->par;
    json_t *j =
        json_pack("{s:s, s:i, s:{s:i, s:i, s:f, s:f, s:f, s:f, s:I, s:i}, s:s#}", "format",
                  BOOST_FORMAT, "version", BOOST_VERSION, "params", "rounds", p->rounds,
                  "max_depth", p->max_depth, "eta", p->eta, "lambda", p->lambda, "min_child_weight",
                  p->min_child_weight, "subsample", p->subsample, "seed", (json_int_t)p->seed,
                  "nthread", p->nthread, "xgboost_json", m->xgb_json, m->xgb_len);
    if (!j)
        return rfm_fail(err, errlen, RFM_ENOMEM, "boost_to_json: out of memory");
    *out = j;
    return RFM_OK;
}

rfm_status boost_from_json(const json_t *j, size_t d, uint32_t vary, const char *where,
                           boost_model **out, char *err, size_t errlen)
{
    const char *fmt = json_string_value(json_object_get(j, "format"));
    const json_t *ver = json_object_get(j, "version");
    if (!fmt || strcmp(fmt, BOOST_FORMAT) != 0 || !json_is_integer(ver) ||
        json_integer_value(ver) != BOOST_VERSION)
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "%s: field 'format'/'version' is not %s version %d; regenerate it with "
                        "rfm-train --only churn",
                        where, BOOST_FORMAT, BOOST_VERSION);
    const json_t *pj = json_object_get(j, "params"), *tx = json_object_get(j, "xgboost_json");
    if (!json_is_object(pj) || !json_is_string(tx))
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "%s: fields 'params' (object) and 'xgboost_json' (string) are required",
                        where);
    boost_model *m = calloc(1, sizeof *m);
    if (!m)
        return rfm_fail(err, errlen, RFM_ENOMEM, "boost_from_json: out of memory");
    m->vary = vary;
    char w2[128];
    snprintf(w2, sizeof w2, "%s.params", where);
    long long r, md, seed, nt;
    rfm_status st;
    if ((st = jsonx_int_in(pj, "rounds", w2, 1, 5000, &r, err, errlen)) ||
        (st = jsonx_int_in(pj, "max_depth", w2, 1, BOOST_MAX_DEPTH, &md, err, errlen)) ||
        (st = jsonx_number(pj, "eta", w2, &m->par.eta, err, errlen)) ||
        (st = jsonx_number(pj, "lambda", w2, &m->par.lambda, err, errlen)) ||
        (st = jsonx_number(pj, "min_child_weight", w2, &m->par.min_child_weight, err, errlen)) ||
        (st = jsonx_number(pj, "subsample", w2, &m->par.subsample, err, errlen)) ||
        (st = jsonx_int_in(pj, "seed", w2, 0, INT64_MAX, &seed, err, errlen)) ||
        (st = jsonx_int_in(pj, "nthread", w2, 1, 256, &nt, err, errlen)))
        goto fail;
    m->par.rounds = (int)r, m->par.max_depth = (int)md, m->par.seed = (uint64_t)seed;
    m->par.nthread = (int)nt;
    const char *why = boost_check_params(&m->par);
    if (why) {
        st = rfm_fail(err, errlen, RFM_EFORMAT, "%s: %s", w2, why);
        goto fail;
    }
    m->xgb_len = json_string_length(tx);
    m->xgb_json = malloc(m->xgb_len + 1);
    if (!m->xgb_json) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "boost_from_json: out of memory");
        goto fail;
    }
    memcpy(m->xgb_json, json_string_value(tx), m->xgb_len + 1);
    snprintf(w2, sizeof w2, "%s.xgboost_json", where);
    st = parse_xgb(m, m->xgb_json, m->xgb_len, d, w2, err, errlen);
    if (st != RFM_OK)
        goto fail;
    *out = m;
    return RFM_OK;
fail:
    boost_free(m);
    return st;
}
