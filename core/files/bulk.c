/* bulk.c - every customer scored for an export (bulk.h). */
#include "bulk.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const parquet_column COLS[BULK_NCOL] = {
    {"customer_id", PARQUET_STRING, 0},
    {"recency", PARQUET_DOUBLE, 1},
    {"frequency", PARQUET_DOUBLE, 1},
    {"monetary", PARQUET_DOUBLE, 1},
    {"rfm_score", PARQUET_STRING, 1},
    {"rfm_segment", PARQUET_STRING, 1},
    {"cluster", PARQUET_INT64, 1},
    {"segment", PARQUET_STRING, 1},
    {"churn_probability", PARQUET_DOUBLE, 1},
    {"churn_risk", PARQUET_STRING, 1},
    {"churn_percentile", PARQUET_DOUBLE, 1},
    {"p_alive", PARQUET_DOUBLE, 1},
    {"expected_purchases", PARQUET_DOUBLE, 1},
    {"cltv", PARQUET_DOUBLE, 1},
    {"cltv_lower", PARQUET_DOUBLE, 1},
    {"cltv_upper", PARQUET_DOUBLE, 1},
    {"cltv_percentile", PARQUET_DOUBLE, 1},
    {"model_version", PARQUET_STRING, 0},
    {"scored_at", PARQUET_STRING, 0},
};

const parquet_column *bulk_columns(void) { return COLS; }

int bulk_by_parse(const char *name)
{
    static const char *const NAMES[] = {"cltv", "churn", "value_at_risk", "uplift_gain"};
    for (int i = 0; i < 4; i++)
        if (name && !strcmp(name, NAMES[i]))
            return i + 1;
    return -1;
}

struct bulk_plan {
    const bulk_input *in;
    size_t n;
    double *pchurn, *pcltv; /* percentiles after pass 1 */
    double *churn;          /* pass 1's churn probabilities (NaN: none), for pass 2 */
    unsigned char *keep;    /* NULL: every customer passes the filters */
    size_t *order;          /* NULL: table order; else the positions' customers */
    size_t norder;
};

static size_t count_of(const bulk_input *in)
{
    return in->table ? customers_count(in->table) : in->n;
}
static const customer_row *row_of(const bulk_input *in, size_t i)
{
    return in->table ? customers_row(in->table, i) : &in->rows[i];
}
static const char *id_of(const bulk_input *in, size_t i)
{
    return in->table ? customers_id(in->table, i) : in->ids[i];
}

/* The RFM segment names (any of the 125 codes) and cluster names. */
static int known_segment(const segments_model *s, const char *name)
{
    if (segments_find(s, name) >= 0)
        return 1;
    for (int r = 1; r <= 5; r++)
        for (int f = 1; f <= 5; f++)
            for (int mo = 1; mo <= 5; mo++) {
                const int sc[3] = {r, f, mo};
                const char *n = segments_rfm_segment(s, sc);
                if (n && !strcmp(n, name))
                    return 1;
            }
    return 0;
}

const char *bulk_filter_check(const score_models *sm, const bulk_filter *f, const bulk_input *in,
                              char *buf, size_t len)
{
    static const char *const NAMES[] = {"", "cltv", "churn", "value_at_risk", "uplift_gain"};
    if ((f->by == BULK_BY_CLTV && !sm->cltv) ||
        ((f->by == BULK_BY_CHURN || f->by == BULK_BY_VALUE_AT_RISK) && !sm->churn) ||
        (f->by == BULK_BY_VALUE_AT_RISK && !sm->cltv)) {
        snprintf(buf, len, "by %s: needs the %s model, which is not trained", NAMES[f->by],
                 f->by == BULK_BY_VALUE_AT_RISK ? "churn and cltv"
                 : f->by == BULK_BY_CLTV        ? "cltv"
                                                : "churn");
        return buf;
    }
    if (f->by == BULK_BY_UPLIFT_GAIN && !in->gain_of) {
        snprintf(buf, len,
                 "by uplift_gain: no uplift gains (the uplift model and uplift.id_column "
                 "of the config: docs/exports.md)");
        return buf;
    }
    if (!isnan(f->min_p_alive) && !sm->cltv) {
        snprintf(buf, len, "min_p_alive: needs the cltv model, which is not trained");
        return buf;
    }
    for (size_t i = 0; i < f->nsegments; i++)
        if (!sm->segments || !known_segment(sm->segments, f->segments[i])) {
            snprintf(buf, len,
                     "segment: unknown segment '%.200s' (a cluster segment, see GET "
                     "/clusters/summary or rfm-train --print-clusters, or an RFM segment of the "
                     "config)",
                     f->segments[i]);
            return buf;
        }
    return NULL;
}

/* Replace each value of v[0..n-1] by its percentile among the non-NaN
 * ones: 100 x (below + equal / 2) / count, rounded to 0.01; ties share
 * one; NaN stays NaN. One sort of (value, index) pairs and a sweep, not a
 * binary search a row (random reads over the whole table); the sort is a
 * radix sort on the values' bits made unsigned-ordered (-0 as 0), four
 * passes of 16 bits, each skipped when every key has the same digit there
 * (a million customers: a fortieth of qsort's time). */
typedef struct {
    uint64_t k;
    size_t i;
} ranked;

/* r and tmp: n each; count: 4 << 16, zeroed here. */
static void percentiles_of(double *v, size_t n, ranked *r, ranked *tmp, size_t *count)
{
    memset(count, 0, ((size_t)4 << 16) * sizeof *count);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i])) {
            double x = v[i] == 0 ? 0.0 : v[i];
            uint64_t b;
            memcpy(&b, &x, sizeof b);
            b = b >> 63 ? ~b : b | (1ull << 63); /* ordered as x */
            r[m].k = b, r[m++].i = i;
            for (int p = 0; p < 4; p++)
                count[((size_t)p << 16) + (b >> (16 * p) & 0xffff)]++;
        }
    for (int p = 0; p < 4; p++) {
        size_t *c = count + ((size_t)p << 16);
        if (m == 0 || c[r[0].k >> (16 * p) & 0xffff] == m)
            continue; /* one digit for all: nothing moves */
        for (size_t d = 0, at = 0; d < (1u << 16); d++) {
            size_t t = c[d];
            c[d] = at, at += t;
        }
        for (size_t j = 0; j < m; j++)
            tmp[c[r[j].k >> (16 * p) & 0xffff]++] = r[j];
        ranked *s = r;
        r = tmp, tmp = s;
    }
    for (size_t lo = 0, hi; lo < m; lo = hi) {
        for (hi = lo + 1; hi < m && r[hi].k == r[lo].k;)
            hi++;
        double p = 100.0 * ((double)lo + 0.5 * (double)(hi - lo)) / (double)m;
        p = round(p * 100) / 100;
        for (size_t k = lo; k < hi; k++)
            v[r[k].i] = p;
    }
}

/* percentiles_of both arrays, through one set of sort buffers (32 bytes a
 * customer and 2 MiB). 0 when out of memory (a and b unchanged). Sorting
 * the two side by side on two threads saved about 0.1 s of a million
 * customers' 3.2, for twice the buffers: GET /exports/customers.csv's peak
 * memory is held to less than half of what it streams (test_score), and
 * under ASan that doubling crossed it. */
static int to_percentiles(double *a, double *b, size_t n)
{
    ranked *r = malloc((n ? n : 1) * sizeof *r), *tmp = malloc((n ? n : 1) * sizeof *tmp);
    size_t *count = malloc(((size_t)4 << 16) * sizeof *count);
    if (r && tmp && count)
        percentiles_of(a, n, r, tmp, count), percentiles_of(b, n, r, tmp, count);
    int ok = r && tmp && count;
    free(r), free(tmp), free(count);
    return ok;
}

/* Pass 1 over customers from..to-1 on one thread. */
typedef struct {
    const bulk_input *in;
    const bulk_filter *f;
    const score_models *sm;
    size_t from, to;
    double *pchurn, *pcltv, *key;
    unsigned char *keep;
    rfm_status st;
    size_t bad; /* the customer that failed */
    char err[RFM_ERRLEN];
} pass1_job;

static void *pass1(void *arg)
{
    pass1_job *j = arg;
    const bulk_filter *f = j->f;
    int want = SCORE_CLTV | SCORE_CLTV_POINT | (f->nsegments ? SCORE_SEGMENTS : 0);
    enum { BLOCK = 256 };
    const customer_row *rows[BLOCK];
    /* Blocks of customers: churn for the block at once (score_churn_many),
     * then the rest one by one, the next customer's CLTV terms asked for
     * ahead. A churn refusal is reported after the customers before it. */
    for (size_t at = j->from; at < j->to; at += BLOCK) {
        size_t nb = j->to - at < BLOCK ? j->to - at : BLOCK, upto = at + nb, bad = 0;
        for (size_t i = at; i < upto; i++)
            rows[i - at] = row_of(j->in, i);
        char cerr[RFM_ERRLEN];
        rfm_status cst =
            score_churn_many(j->sm, rows, nb, 1, j->pchurn + at, &bad, cerr, sizeof cerr);
        if (cst != RFM_OK)
            upto = at + bad;
        for (size_t i = at; i < upto; i++) {
            score_result r;
            if (i + 1 < j->to)
                score_prefetch(j->sm, row_of(j->in, i + 1));
            if ((j->st = score_customer(j->sm, rows[i - at], want, 1, &r, j->err, sizeof j->err)) !=
                RFM_OK) {
                j->bad = i;
                return NULL;
            }
            j->pcltv[i] = r.done & SCORE_CLTV ? r.cltv.cltv : NAN;
            if (j->keep) {
                int k = !f->nsegments;
                for (size_t s = 0; s < f->nsegments && (r.done & SCORE_SEGMENTS); s++)
                    k |= !strcmp(f->segments[s], r.seg.segment) ||
                         !strcmp(f->segments[s], r.seg.rfm_segment);
                if (!isnan(f->min_p_alive))
                    k &= (r.done & SCORE_CLTV) && r.cltv.p_alive >= f->min_p_alive;
                j->keep[i] = (unsigned char)k;
            }
            if (j->key)
                j->key[i] = f->by == BULK_BY_CLTV    ? j->pcltv[i]
                            : f->by == BULK_BY_CHURN ? j->pchurn[i]
                            : f->by == BULK_BY_UPLIFT_GAIN
                                ? j->in->gain_of(j->in->gain_ctx, id_of(j->in, i))
                                : j->pchurn[i] * j->pcltv[i];
        }
        if (cst != RFM_OK) {
            j->st = cst, j->bad = at + bad;
            snprintf(j->err, sizeof j->err, "%s", cerr);
            return NULL;
        }
    }
    return NULL;
}

/* Highest key first; equal keys in table order (qsort_r, key array). */
static int cmp_top(const void *a, const void *b, void *keyp)
{
    const double *k = keyp;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    double x = k[i], y = k[j];
    if (x != y)
        return x < y ? 1 : -1;
    return (i > j) - (i < j);
}

static int left_out(const bulk_input *in, size_t i)
{
    const char *id = id_of(in, i);
    return in->erased && erasure_has_id(in->erased, in->pseudonymized, id, strlen(id));
}

void bulk_plan_free(bulk_plan *p)
{
    if (!p)
        return;
    free(p->pchurn), free(p->pcltv), free(p->churn), free(p->keep), free(p->order);
    free(p);
}

rfm_status bulk_plan_new(const bulk_input *in, const bulk_filter *f, const score_models *sm,
                         size_t nsm, bulk_plan **out, char *err, size_t errlen)
{
    *out = NULL;
    size_t n = count_of(in), one = n ? n : 1;
    bulk_plan *p = calloc(1, sizeof *p);
    double *key = NULL;
    pass1_job *jobs = NULL;
    pthread_t *th = NULL;
    rfm_status st = RFM_OK;
    if (!nsm)
        nsm = 1;
    if (!p)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    p->in = in, p->n = n;
    p->pchurn = malloc(one * sizeof *p->pchurn);
    p->pcltv = malloc(one * sizeof *p->pcltv);
    int filtered = f->nsegments || !isnan(f->min_p_alive);
    p->keep = filtered ? malloc(one) : NULL;
    key = f->by != BULK_BY_NONE ? malloc(one * sizeof *key) : NULL;
    jobs = calloc(nsm, sizeof *jobs);
    th = calloc(nsm, sizeof *th);
    if (!p->pchurn || !p->pcltv || (filtered && !p->keep) || (f->by && !key) || !jobs || !th) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for %zu customers", n);
        goto out;
    }
    for (size_t t = 0; t < nsm; t++) {
        pass1_job *j = &jobs[t];
        j->in = in, j->f = f, j->sm = &sm[t];
        j->pchurn = p->pchurn, j->pcltv = p->pcltv, j->key = key, j->keep = p->keep;
        j->from = n * t / nsm, j->to = n * (t + 1) / nsm;
    }
    /* Threads 1.. in the background, thread 0 here; one that cannot be
     * started runs here afterwards. */
    int *started = calloc(nsm, sizeof *started);
    if (!started) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t t = 1; t < nsm; t++)
        started[t] = pthread_create(&th[t], NULL, pass1, &jobs[t]) == 0;
    pass1(&jobs[0]);
    for (size_t t = 1; t < nsm; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            pass1(&jobs[t]);
    }
    free(started);
    for (size_t t = 0; t < nsm; t++)
        if (jobs[t].st != RFM_OK) {
            st = rfm_fail(err, errlen, jobs[t].st, "customer '%s': %s", id_of(in, jobs[t].bad),
                          jobs[t].err);
            goto out;
        }
    /* From here on pchurn and pcltv hold percentiles; churn the probabilities. */
    if ((p->churn = malloc(one * sizeof *p->churn)))
        memcpy(p->churn, p->pchurn, n * sizeof *p->churn);
    if (!p->churn || !to_percentiles(p->pchurn, p->pcltv, n)) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for %zu customers", n);
        goto out;
    }
    /* A list (a ranking or a first few): the eligible customers, ranked. */
    if (key || f->top) {
        if (!(p->order = malloc(one * sizeof *p->order))) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for %zu customers", n);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if ((!key || !isnan(key[i])) && (!p->keep || p->keep[i]) && !left_out(in, i))
                p->order[p->norder++] = i;
        if (key)
            qsort_r(p->order, p->norder, sizeof *p->order, cmp_top, key);
        if (f->top && p->norder > f->top)
            p->norder = f->top;
    }
out:
    free(key), free(jobs), free(th);
    if (st != RFM_OK) {
        bulk_plan_free(p);
        return st;
    }
    *out = p;
    return RFM_OK;
}

size_t bulk_customers(const bulk_plan *p) { return p->n; }
size_t bulk_positions(const bulk_plan *p) { return p->order ? p->norder : p->n; }

static void fill_row(const bulk_input *in, const char *id, const customer_row *c, double churn_pct,
                     double cltv_pct, bulk_row *o)
{
    const score_result *r = &o->r;
    memset(o->v, 0, sizeof o->v);
    for (int j = 0; j < BULK_NCOL; j++)
        o->v[j].is_null = 1;
#define STR(col, text)                                                                             \
    do {                                                                                           \
        o->v[col].s = (text), o->v[col].len = strlen(text), o->v[col].is_null = 0;                 \
    } while (0)
#define DBL(col, x) (o->v[col].d = (x), o->v[col].is_null = isnan(x))
    STR(BULK_ID, id);
    DBL(BULK_RECENCY, c->recency);
    DBL(BULK_FREQUENCY, c->frequency);
    DBL(BULK_MONETARY, c->monetary);
    if (r->done & SCORE_SEGMENTS) {
        STR(BULK_RFM_SCORE, r->seg.rfm_score);
        STR(BULK_RFM_SEGMENT, r->seg.rfm_segment);
        o->v[BULK_CLUSTER].i = (int64_t)r->seg.cluster, o->v[BULK_CLUSTER].is_null = 0;
        STR(BULK_SEGMENT, r->seg.segment);
    }
    if (r->done & SCORE_CHURN) {
        DBL(BULK_CHURN_P, r->churn_probability);
        STR(BULK_CHURN_RISK, churn_risk_name(r->risk));
        DBL(BULK_CHURN_PCT, churn_pct);
    }
    if (r->done & SCORE_CLTV) {
        DBL(BULK_P_ALIVE, r->cltv.p_alive);
        DBL(BULK_EXP_PURCHASES, r->cltv.expected_purchases);
        DBL(BULK_CLTV, r->cltv.cltv);
        DBL(BULK_CLTV_LOWER, r->cltv.lower);
        DBL(BULK_CLTV_UPPER, r->cltv.upper);
        DBL(BULK_CLTV_PCT, cltv_pct);
    }
    STR(BULK_MODEL_VERSION, in->version ? in->version : "");
    STR(BULK_SCORED_AT, in->scored_at ? in->scored_at : "");
#undef STR
#undef DBL
}

rfm_status bulk_row_at(const bulk_plan *p, const score_models *sm, size_t k, bulk_row *o,
                       int *written, char *err, size_t errlen)
{
    *written = 0;
    size_t i = p->order ? p->order[k] : k;
    /* The next position's CLTV terms asked for now (score_prefetch): the
     * callers walk positions in order. */
    if (k + 1 < bulk_positions(p))
        score_prefetch(sm, row_of(p->in, p->order ? p->order[k + 1] : k + 1));
    if (!p->order && ((p->keep && !p->keep[i]) || left_out(p->in, i)))
        return RFM_OK;
    const customer_row *row = row_of(p->in, i);
    o->id = id_of(p->in, i);
    rfm_status st = score_customer(sm, row, SCORE_SEGMENTS | SCORE_CLTV, 1, &o->r, err, errlen);
    if (st != RFM_OK) {
        char why[RFM_ERRLEN];
        snprintf(why, sizeof why, "%s", err);
        return rfm_fail(err, errlen, st, "customer '%s': %s", o->id, why);
    }
    if (!isnan(p->churn[i])) { /* score_customer's churn part, from pass 1 */
        o->r.churn_probability = p->churn[i], o->r.done |= SCORE_CHURN;
        o->r.risk = churn_risk_level(sm->churn, o->r.churn_probability);
    }
    fill_row(p->in, o->id, row, p->pchurn[i], p->pcltv[i], o);
    *written = 1;
    return RFM_OK;
}

static const char *version_of(const json_t *man, const char *name)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(man, "models"), name), "version"));
}

void bulk_model_version(const json_t *manifest, char *buf, size_t len)
{
    static const char *const NAMES[] = {"customers", "segments", "churn", "cltv"};
    const char *first = version_of(manifest, "customers");
    int same = 1;
    for (size_t i = 1; i < 4; i++) {
        const char *v = version_of(manifest, NAMES[i]);
        same &= !v || (first && !strcmp(v, first));
    }
    if (!len)
        return;
    buf[0] = '\0';
    if (same) {
        snprintf(buf, len, "%s", first ? first : "");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < 4; i++) {
        const char *v = version_of(manifest, NAMES[i]);
        if (v && n < len)
            n += (size_t)snprintf(buf + n, len - n, "%s%s=%s", n ? ";" : "", NAMES[i], v);
    }
}

void bulk_snapshot_day(const json_t *manifest, char buf[11])
{
    const char *snap = json_string_value(json_object_get(
        json_object_get(json_object_get(manifest, "data"), "transactions"), "snapshot_date"));
    if (!snap)
        snap = json_string_value(json_object_get(manifest, "created_at"));
    snprintf(buf, 11, "%s", snap ? snap : "");
}

int bulk_state_collect(void *user, const char *id, const state_customer *c)
{
    bulk_state *k = user;
    if (!c->f.active)
        return 0;
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 4096;
        char **ids = realloc(k->ids, cap * sizeof *ids);
        if (ids)
            k->ids = ids;
        customer_row *rows = ids ? realloc(k->rows, cap * sizeof *rows) : NULL;
        if (!rows)
            return k->oom = 1;
        k->rows = rows, k->cap = cap;
    }
    const txn_features *f = &c->f;
    if (!(k->ids[k->n] = strdup(id)))
        return k->oom = 1;
    /* As GET /customers/{id} (rfm-serve's by_id): the store keeps no trends. */
    k->rows[k->n++] = (customer_row){f->recency, f->frequency,     f->monetary, f->bg_x, f->bg_t_x,
                                     f->bg_T,    f->bg_mean_spend, NAN,         NAN};
    return 0;
}

void bulk_state_free(bulk_state *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->ids[i]);
    free(s->ids), free(s->rows);
    memset(s, 0, sizeof *s);
}
