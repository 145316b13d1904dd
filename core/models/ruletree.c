/* ruletree.c - the best depth-2 rule for one class, exactly.
 *
 * Each point weighs nneg when it is of the class and -npos otherwise, so a
 * rule's score is the sum of the weights it matches. Per feature the
 * distinct values are ranked; a condition is a prefix (<=) or a suffix
 * (>=) of ranks. For two features f1 < f2, the points enter a segment tree
 * over f2's ranks in f1's order (ascending for <=, descending for >=);
 * after each of f1's values the tree gives the best prefix and suffix of
 * f2 among the points entered, ties to the smallest rank. One feature's
 * interval is a maximum-sum subarray. Vacuous conditions (matching every
 * point) are not rules of their own: they are the shorter rule. */
#include "ruletree.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numfmt.h"

long long ruletree_score(const ruletree_rule *r)
{
    return (long long)r->tp * (long long)r->nneg - (long long)r->fp * (long long)r->npos;
}

int ruletree_cmp(const ruletree_rule *a, const ruletree_rule *b)
{
    long long sa = ruletree_score(a), sb = ruletree_score(b);
    if (sa != sb)
        return sa > sb ? -1 : 1;
    if (a->nconds != b->nconds)
        return a->nconds < b->nconds ? -1 : 1;
    for (int c = 0; c < a->nconds; c++) {
        const ruletree_cond *x = &a->cond[c], *y = &b->cond[c];
        if (x->feature != y->feature)
            return x->feature < y->feature ? -1 : 1;
        if (x->op != y->op)
            return x->op < y->op ? -1 : 1;
        if (x->value != y->value)
            return x->value < y->value ? -1 : 1;
    }
    return 0;
}

int ruletree_match(const ruletree_rule *r, const double *v)
{
    for (int c = 0; c < r->nconds; c++) {
        double x = v[r->cond[c].feature];
        if (r->cond[c].op == RULETREE_LE ? !(x <= r->cond[c].value) : !(x >= r->cond[c].value))
            return 0;
    }
    return 1;
}

/* ---- per-feature ranks ------------------------------------------------ */

typedef struct {
    size_t u;      /* distinct values */
    double *vals;  /* u ascending */
    size_t *rank;  /* n: rank of each point */
    size_t *order; /* n: points by ascending value (ties by index) */
    size_t *start; /* u + 1: order[start[r] .. start[r+1]) have rank r */
} feature;

/* A point's value with its index, sorted by value then index. */
typedef struct {
    double v;
    size_t i;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static void feature_free(feature *f)
{
    free(f->vals), free(f->rank), free(f->order), free(f->start);
}

static int feature_make(const double *x, size_t n, feature *f)
{
    memset(f, 0, sizeof *f);
    keyed *k = malloc((n ? n : 1) * sizeof *k);
    f->vals = malloc((n ? n : 1) * sizeof *f->vals);
    f->rank = malloc((n ? n : 1) * sizeof *f->rank);
    f->order = malloc((n ? n : 1) * sizeof *f->order);
    f->start = malloc((n + 1) * sizeof *f->start);
    if (!k || !f->vals || !f->rank || !f->order || !f->start) {
        free(k);
        feature_free(f);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        k[i].v = x[i], k[i].i = i;
    qsort(k, n, sizeof *k, cmp_keyed);
    for (size_t j = 0; j < n; j++) {
        if (j == 0 || k[j].v != k[j - 1].v) {
            f->start[f->u] = j;
            f->vals[f->u++] = k[j].v;
        }
        f->order[j] = k[j].i;
        f->rank[k[j].i] = f->u - 1;
    }
    f->start[f->u] = n;
    free(k);
    return 0;
}

/* ---- segment tree of weights over ranks ---------------------------------- */

typedef struct {
    long long sum, pmax, smax;
    size_t pidx, sidx; /* end of the best prefix, start of the best suffix */
} node;

static node combine(const node *l, const node *r)
{
    node o;
    o.sum = l->sum + r->sum;
    long long p2 = l->sum + r->pmax;
    if (l->pmax >= p2)
        o.pmax = l->pmax, o.pidx = l->pidx; /* ties: the shorter prefix */
    else
        o.pmax = p2, o.pidx = r->pidx;
    long long s2 = r->sum + l->smax;
    if (s2 >= r->smax)
        o.smax = s2, o.sidx = l->sidx; /* ties: the longer suffix (smaller start) */
    else
        o.smax = r->smax, o.sidx = r->sidx;
    return o;
}

/* No prefix or suffix may end or start on a padding leaf: far below any
 * sum of weights (n times n at most), and its sums cannot overflow. */
#define NO_SUM (LLONG_MIN / 4)

/* Bottom-up over a power of two of leaves (ranks 0 .. u-1, then padding
 * that no best prefix or suffix ends or starts on). combine is associative
 * and its ties (the smallest index) do not depend on the grouping, so any
 * tree over the ranks gives the same answers. */
typedef struct {
    size_t u, size; /* ranks, leaves (a power of two >= u) */
    node *t;        /* 2 * size nodes, 1-based: t[size + r] is rank r */
} segtree;

static void st_build(segtree *s, size_t u)
{
    s->u = u;
    for (s->size = 1; s->size < u; s->size *= 2)
        ;
    for (size_t r = 0; r < s->size; r++)
        s->t[s->size + r] = r < u ? (node){0, 0, 0, r, r} : (node){0, NO_SUM, NO_SUM, r, r};
    for (size_t at = s->size - 1; at >= 1; at--)
        s->t[at] = combine(&s->t[2 * at], &s->t[2 * at + 1]);
}

static void st_add(segtree *s, size_t r, long long w)
{
    size_t at = s->size + r;
    node *x = &s->t[at];
    x->sum += w;
    x->pmax = x->smax = x->sum;
    for (at /= 2; at >= 1; at /= 2)
        s->t[at] = combine(&s->t[2 * at], &s->t[2 * at + 1]);
}

/* The combination of ranks [a, b] (a <= b < u), in order. */
static node st_query(const segtree *s, size_t a, size_t b)
{
    if (a == 0 && b == s->u - 1)
        return s->t[1]; /* the padding after b changes no answer */
    node left = {0, NO_SUM, NO_SUM, a, a}, right = {0, NO_SUM, NO_SUM, b, b};
    int hl = 0, hr = 0;
    for (size_t lo = a + s->size, hi = b + s->size + 1; lo < hi; lo /= 2, hi /= 2) {
        if (lo & 1) {
            left = hl ? combine(&left, &s->t[lo]) : s->t[lo];
            hl = 1, lo++;
        }
        if (hi & 1) {
            --hi;
            right = hr ? combine(&s->t[hi], &right) : s->t[hi];
            hr = 1;
        }
    }
    return hl && hr ? combine(&left, &right) : hl ? left : right;
}

/* Counts of the positives entered, by rank (a Fenwick tree over u ranks). */
typedef struct {
    size_t u;
    long long *c; /* u + 1, 1-based */
} counts;

static void ct_clear(counts *c, size_t u)
{
    c->u = u;
    memset(c->c, 0, (u + 1) * sizeof *c->c);
}

static void ct_add(counts *c, size_t r, long long w)
{
    for (size_t i = r + 1; i <= c->u; i += i & (0 - i))
        c->c[i] += w;
}

/* The positives of ranks 0 .. r. */
static long long ct_upto(const counts *c, size_t r)
{
    long long t = 0;
    for (size_t i = r + 1; i > 0; i -= i & (0 - i))
        t += c->c[i];
    return t;
}

/* ---- the search ------------------------------------------------------------ */

typedef struct {
    const int *labels;
    int cls;
    size_t n, npos, nneg;
    ruletree_rule best;
} search;

static long long weight(const search *s, size_t i)
{
    return s->labels[i] == s->cls ? (long long)s->nneg : -(long long)s->npos;
}

/* Offer a rule whose conditions are set; its counts come from its score
 * and the number of points it matches (tp + fp = matched). */
static void offer(search *s, ruletree_rule *r, long long score, size_t matched_pos)
{
    r->npos = s->npos, r->nneg = s->nneg;
    r->tp = matched_pos;
    /* score = tp * nneg - fp * npos, so fp = (tp * nneg - score) / npos. */
    r->fp = s->npos ? (size_t)(((long long)r->tp * (long long)s->nneg - score) / (long long)s->npos)
                    : 0;
    if (ruletree_cmp(r, &s->best) < 0)
        s->best = *r;
}

static ruletree_cond cond(int f, int op, double v) { return (ruletree_cond){f, op, v}; }

/* Rules on one feature: one condition, or an interval. g[r] = weight sum
 * of rank r, p[r] = positives of rank r. */
static void one_feature(search *s, int fi, const feature *f, const long long *g, const size_t *p)
{
    size_t u = f->u;
    if (u < 2)
        return;
    long long tot = 0;
    size_t ptot = 0;
    for (size_t r = 0; r < u; r++)
        tot += g[r], ptot += p[r];
    long long acc = 0;
    size_t pacc = 0;
    for (size_t r = 0; r + 1 < u; r++) { /* x <= vals[r] */
        acc += g[r], pacc += p[r];
        ruletree_rule c = {1, {cond(fi, RULETREE_LE, f->vals[r])}, 0, 0, 0, 0};
        offer(s, &c, acc, pacc);
    }
    acc = 0, pacc = 0;
    for (size_t r = 0; r + 1 < u; r++) { /* x >= vals[r + 1]: all but ranks 0..r */
        acc += g[r], pacc += p[r];
        ruletree_rule c = {1, {cond(fi, RULETREE_GE, f->vals[r + 1])}, 0, 0, 0, 0};
        offer(s, &c, tot - acc, ptot - pacc);
    }
    /* vals[a] <= x <= vals[b], 0 < a <= b < u - 1: for each b the a with the
     * smallest prefix sum S[a] = g[0] + ... + g[a-1], ties to the smallest a. */
    long long sa = g[0], smin = 0;
    size_t psa = p[0], pmin = 0, amin = 0;
    for (size_t b = 1; b + 1 < u; b++) {
        if (amin == 0 || sa < smin)
            smin = sa, pmin = psa, amin = b; /* S[b] enters as a candidate a = b */
        sa += g[b], psa += p[b];
        ruletree_rule c = {
            2, {cond(fi, RULETREE_LE, f->vals[b]), cond(fi, RULETREE_GE, f->vals[amin])}, 0, 0, 0,
            0};
        offer(s, &c, sa - smin, psa - pmin);
    }
}

/* Rules on two features, one condition each. The points enter in the
 * order of one feature (the swept one, with more distinct values) and the
 * tree is over the other, so it stays small (RFM: recency days or
 * frequency). For each swept value the tree's best answer is the smallest
 * rank among ties; the order of ruletree_cmp then picks among those, which
 * finds the order's first rule whichever feature is swept. */
static void two_features(search *s, int ia, const feature *fa, int ib, const feature *fb,
                         segtree *wt, counts *pt)
{
    if (fa->u < 2 || fb->u < 2)
        return;
    int isw = fa->u >= fb->u ? ia : ib, itr = fa->u >= fb->u ? ib : ia;
    const feature *sw = fa->u >= fb->u ? fa : fb, *tr = fa->u >= fb->u ? fb : fa;
    size_t ut = tr->u;
    for (int op1 = RULETREE_LE; op1 <= RULETREE_GE; op1++) {
        st_build(wt, ut);
        ct_clear(pt, ut);
        long long entered = 0; /* positives entered */
        for (size_t step = 0; step + 1 < sw->u; step++) {
            /* <=: ranks 0..step entered; >=: ranks u-1 down to u-1-step. */
            size_t r1 = op1 == RULETREE_LE ? step : sw->u - 1 - step;
            for (size_t j = sw->start[r1]; j < sw->start[r1 + 1]; j++) {
                size_t i = sw->order[j];
                int pos = s->labels[i] == s->cls;
                st_add(wt, tr->rank[i], weight(s, i));
                if (pos)
                    ct_add(pt, tr->rank[i], 1), entered++;
            }
            for (int op2 = RULETREE_LE; op2 <= RULETREE_GE; op2++) {
                /* The best over the ranks but the last (first): the whole
                 * tree's, unless that one ends (starts) there. */
                const node *root = &wt->t[1];
                node q;
                long long score, matched;
                size_t r2;
                if (op2 == RULETREE_LE) { /* x <= vals[r2], r2 in 0..u-2 */
                    q = root->pidx <= ut - 2 ? *root : st_query(wt, 0, ut - 2);
                    r2 = q.pidx, score = q.pmax;
                    matched = ct_upto(pt, r2);
                } else { /* x >= vals[r2], r2 in 1..u-1 */
                    q = root->sidx >= 1 ? *root : st_query(wt, 1, ut - 1);
                    r2 = q.sidx, score = q.smax;
                    matched = entered - ct_upto(pt, r2 - 1);
                }
                ruletree_cond csw = cond(isw, op1, sw->vals[r1]),
                              ctr = cond(itr, op2, tr->vals[r2]);
                ruletree_rule c = {2, {isw < itr ? csw : ctr, isw < itr ? ctr : csw}, 0, 0, 0, 0};
                offer(s, &c, score, (size_t)matched);
            }
        }
    }
}

/* Every feature's ranks (shared by every class's search) and the size of
 * the segment trees. */
typedef struct {
    size_t d, n, tu;
    feature *fs;
} prepared;

static void prepared_free(prepared *pr)
{
    for (size_t f = 0; pr->fs && f < pr->d; f++)
        feature_free(&pr->fs[f]);
    free(pr->fs);
}

static rfm_status prepare(const double *const *x, size_t d, size_t n, prepared *pr, char *err,
                          size_t errlen)
{
    memset(pr, 0, sizeof *pr);
    for (size_t f = 0; f < d; f++)
        for (size_t i = 0; i < n; i++)
            if (!isfinite(x[f][i]))
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "rule search: feature %zu of point %zu is not a finite number", f,
                                i);
    pr->n = n;
    if (!(pr->fs = calloc(d ? d : 1, sizeof *pr->fs)))
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for the rule search");
    for (; pr->d < d; pr->d++)
        if (feature_make(x[pr->d], n, &pr->fs[pr->d]) != 0) {
            prepared_free(pr);
            return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for the rule search");
        }
    /* The trees are over the smaller feature of each pair. */
    pr->tu = 1;
    for (size_t a = 0; a < d; a++)
        for (size_t b = a + 1; b < d; b++) {
            size_t m = pr->fs[a].u < pr->fs[b].u ? pr->fs[a].u : pr->fs[b].u;
            pr->tu = m > pr->tu ? m : pr->tu;
        }
    return RFM_OK;
}

static rfm_status search_class(const prepared *pr, const int *labels, int cls, ruletree_rule *out,
                               char *err, size_t errlen)
{
    size_t n = pr->n, d = pr->d;
    const feature *fs = pr->fs;
    search s = {labels, cls, n, 0, 0, {0}};
    for (size_t i = 0; i < n; i++)
        s.npos += labels[i] == cls;
    s.nneg = n - s.npos;
    s.best = (ruletree_rule){0, {{0}}, s.npos, s.nneg, s.npos, s.nneg};
    long long *g = malloc((n ? n : 1) * sizeof *g);
    size_t *p = malloc((n ? n : 1) * sizeof *p);
    size_t leaves = 1;
    while (leaves < pr->tu)
        leaves *= 2;
    segtree wt = {0, 0, malloc(2 * leaves * sizeof *wt.t)};
    counts pt = {0, malloc((pr->tu + 1) * sizeof *pt.c)};
    rfm_status st = RFM_OK;
    if (!g || !p || !wt.t || !pt.c) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for the rule search");
        goto done;
    }
    for (size_t f = 0; f < d; f++) {
        memset(g, 0, fs[f].u * sizeof *g);
        memset(p, 0, fs[f].u * sizeof *p);
        for (size_t i = 0; i < n; i++) {
            g[fs[f].rank[i]] += weight(&s, i);
            p[fs[f].rank[i]] += labels[i] == cls;
        }
        one_feature(&s, (int)f, &fs[f], g, p);
    }
    for (size_t f1 = 0; f1 < d; f1++)
        for (size_t f2 = f1 + 1; f2 < d; f2++)
            two_features(&s, (int)f1, &fs[f1], (int)f2, &fs[f2], &wt, &pt);
    *out = s.best;
done:
    free(g), free(p), free(wt.t), free(pt.c);
    return st;
}

rfm_status ruletree_fit(const double *const *x, size_t d, size_t n, const int *labels, int cls,
                        ruletree_rule *out, char *err, size_t errlen)
{
    prepared pr;
    rfm_status st = prepare(x, d, n, &pr, err, errlen);
    if (st == RFM_OK)
        st = search_class(&pr, labels, cls, out, err, errlen);
    prepared_free(&pr);
    return st;
}

/* Classes first, first + step, ... of ruletree_fit_all. */
typedef struct {
    const prepared *pr;
    const int *labels;
    size_t k, first, step;
    ruletree_rule *out;
    rfm_status st;
    char err[RFM_ERRLEN];
} class_part;

static void *class_run(void *arg)
{
    class_part *c = arg;
    for (size_t cls = c->first; cls < c->k && c->st == RFM_OK; cls += c->step)
        c->st = search_class(c->pr, c->labels, (int)cls, &c->out[cls], c->err, sizeof c->err);
    return NULL;
}

rfm_status ruletree_fit_all(const double *const *x, size_t d, size_t n, const int *labels, size_t k,
                            ruletree_rule *out, char *err, size_t errlen)
{
    prepared pr;
    rfm_status st = prepare(x, d, n, &pr, err, errlen);
    if (st != RFM_OK)
        return st;
    class_part part[2] = {{&pr, labels, k, 0, 2, out, RFM_OK, ""},
                          {&pr, labels, k, 1, 2, out, RFM_OK, ""}};
    pthread_t th;
    int threaded = k > 1 && pthread_create(&th, NULL, class_run, &part[1]) == 0;
    if (!threaded)
        part[0].step = 1;
    class_run(&part[0]);
    if (threaded)
        pthread_join(th, NULL);
    prepared_free(&pr);
    for (int h = 0; h < 2; h++)
        if (part[h].st != RFM_OK)
            return rfm_fail(err, errlen, part[h].st, "%s", part[h].err);
    return RFM_OK;
}

int ruletree_format(const ruletree_rule *r, const char *const *names, const char *const *units,
                    char *buf, size_t len)
{
    if (r->nconds == 0)
        return snprintf(buf, len, "everyone");
    char a[NUMFMT_LEN], b[NUMFMT_LEN];
    const ruletree_cond *c0 = &r->cond[0], *c1 = &r->cond[1];
    const char *u0 = units[c0->feature], *sp0 = *u0 ? " " : "";
    numfmt_double(c0->value, a);
    if (r->nconds == 2 && c1->feature == c0->feature) { /* stored as <= b, >= a */
        numfmt_double(c1->value, b);
        if (c0->value == c1->value)
            return snprintf(buf, len, "%s = %s%s%s", names[c0->feature], a, sp0, u0);
        return snprintf(buf, len, "%s <= %s <= %s%s%s", b, names[c0->feature], a, sp0, u0);
    }
    if (r->nconds == 1)
        return snprintf(buf, len, "%s %s %s%s%s", names[c0->feature],
                        c0->op == RULETREE_LE ? "<=" : ">=", a, sp0, u0);
    const char *u1 = units[c1->feature], *sp1 = *u1 ? " " : "";
    numfmt_double(c1->value, b);
    return snprintf(buf, len, "%s %s %s%s%s and %s %s %s%s%s", names[c0->feature],
                    c0->op == RULETREE_LE ? "<=" : ">=", a, sp0, u0, names[c1->feature],
                    c1->op == RULETREE_LE ? "<=" : ">=", b, sp1, u1);
}
