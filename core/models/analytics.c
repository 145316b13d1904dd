/* analytics.c - population figures for the analyst pages (see analytics.h).
 *
 * Every figure is a count, a sum or a quantile over the training
 * customers or their purchase days; the tests recompute each one
 * naively from a small fixture. */
#include "analytics.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bgnbd.h"
#include "date.h"
#include "hash.h"
#include "pca.h"
#include "rng.h"

void analytics_default_options(analytics_options *o)
{
    o->active_days = 90;
    o->max_months = 120;
    o->grid_steps = 20;
    o->max_frequency = 40;
    o->currency = NULL;
}

const char *analytics_check_options(const analytics_options *o)
{
    if (o->active_days < 1 || o->active_days > 3650)
        return "active_days: must be from 1 to 3650";
    if (o->max_months < 1 || o->max_months > 600)
        return "max_months: must be from 1 to 600";
    if (o->grid_steps < 2 || o->grid_steps > 200)
        return "grid_steps: must be from 2 to 200";
    if (o->max_frequency < 1 || o->max_frequency > 1000)
        return "max_frequency: must be from 1 to 1000";
    return NULL;
}

double analytics_quantile(const double *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    if (lo >= n - 1)
        return v[n - 1];
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Month number (years * 12 + month - 1) of a day. */
static int month_of(int32_t day)
{
    int y, m, d;
    date_to_ymd(day, &y, &m, &d);
    return y * 12 + m - 1;
}

static json_t *month_text(int mo)
{
    char s[16];
    snprintf(s, sizeof s, "%04d-%02d", mo / 12, mo % 12 + 1);
    return json_string(s);
}

/* ---- monthly series and cohorts from the purchase days ----------------- */

typedef struct {
    int first_mo, nmonths; /* the window of months kept */
    int32_t snapshot;
    size_t ncust;
    double *revenue;    /* per month */
    uint8_t *bought;    /* ncust x nmonths: bought in that month */
    int *first;         /* per customer: month index of the first purchase (-1: none, or
                           before the window) */
    int32_t *first_day; /* per customer: first purchase day */
} months_acc;

static int on_day(void *user, size_t cust, int32_t day, double spend)
{
    months_acc *a = user;
    if (day >= a->snapshot || cust >= a->ncust)
        return 0;
    if (a->first_day[cust] == INT32_MAX || day < a->first_day[cust])
        a->first_day[cust] = day;
    int k = month_of(day) - a->first_mo;
    if (k < 0 || k >= a->nmonths)
        return 0;
    a->revenue[k] += spend;
    a->bought[cust * (size_t)a->nmonths + (size_t)k] = 1;
    return 0;
}

static int on_invoice(void *user, size_t cust, uint64_t ih, int32_t day)
{
    (void)user, (void)cust, (void)ih, (void)day;
    return 0;
}

static rfm_status monthly(const txn_data *d, const analytics_options *o, json_t *ov, char *err,
                          size_t errlen)
{
    months_acc a = {0};
    a.snapshot = txn_snapshot_day(d);
    a.ncust = txn_ncustomers(d);
    int last_mo = month_of(a.snapshot - 1), first_mo = month_of(txn_first_day(d));
    if (last_mo - first_mo + 1 > o->max_months)
        first_mo = last_mo - o->max_months + 1;
    a.first_mo = first_mo;
    a.nmonths = last_mo >= first_mo ? last_mo - first_mo + 1 : 1;
    size_t nm = (size_t)a.nmonths;
    a.revenue = calloc(nm, sizeof *a.revenue);
    a.bought = calloc(a.ncust * nm + 1, 1);
    a.first_day = malloc((a.ncust + 1) * sizeof *a.first_day);
    size_t *buyers = calloc(nm, sizeof *buyers), *size = calloc(nm, sizeof *size);
    size_t *back = calloc(nm * nm, sizeof *back); /* [cohort][month] */
    json_t *series = json_array(), *cohorts = json_array();
    rfm_status st = RFM_OK;
    if (!a.revenue || !a.bought || !a.first_day || !buyers || !size || !back || !series ||
        !cohorts) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < a.ncust; i++)
        a.first_day[i] = INT32_MAX;
    txn_each_purchase(d, on_day, on_invoice, &a);
    /* A customer's cohort is the month of their first purchase over all
     * the data; one first seen before the window has none. */
    for (size_t i = 0; i < a.ncust; i++) {
        const uint8_t *b = a.bought + i * nm;
        for (size_t k = 0; k < nm; k++)
            buyers[k] += b[k];
        if (a.first_day[i] == INT32_MAX)
            continue;
        int c = month_of(a.first_day[i]) - first_mo;
        if (c < 0 || c >= (int)nm)
            continue;
        size[c]++;
        for (size_t k = (size_t)c; k < nm; k++)
            back[(size_t)c * nm + k] += b[k];
    }
    for (size_t k = 0; k < nm; k++) {
        int bad = json_array_append_new(
            series, json_pack("{s:o,s:f,s:I,s:I}", "month", month_text(first_mo + (int)k),
                              "revenue", a.revenue[k], "customers", (json_int_t)buyers[k],
                              "new_customers", (json_int_t)size[k]));
        /* The cohort of month k: of its customers, the share who bought in
         * each month from k on (1 in month k itself). */
        if (!bad && size[k]) {
            json_t *ret = json_array();
            for (size_t j = k; ret && j < nm; j++)
                if (json_array_append_new(ret,
                                          json_real((double)back[k * nm + j] / (double)size[k]))) {
                    json_decref(ret);
                    ret = NULL;
                }
            bad =
                json_array_append_new(
                    cohorts, json_pack("{s:o,s:I,s:o*}", "cohort", month_text(first_mo + (int)k),
                                       "customers", (json_int_t)size[k], "retention", ret)) != 0 ||
                !ret;
        }
        if (bad) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (json_object_set_new(ov, "monthly", series) || json_object_set_new(ov, "cohorts", cohorts))
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    series = cohorts = NULL;
out:
    json_decref(series);
    json_decref(cohorts);
    free(a.revenue);
    free(a.bought);
    free(a.first_day);
    free(buyers), free(size), free(back);
    return st;
}

/* ---- per-customer scores ------------------------------------------------ */

/* The RFM segment names in a fixed order: as met going through the score
 * codes from 555 down to 111. Returns how many (at most max). */
static size_t segment_names(const segments_model *m, const char **names, size_t max)
{
    size_t n = 0;
    for (int r = 5; r >= 1; r--)
        for (int f = 5; f >= 1; f--)
            for (int mo = 5; mo >= 1; mo--) {
                const int s[3] = {r, f, mo};
                const char *name = segments_rfm_segment(m, s);
                size_t k = 0;
                while (k < n && strcmp(names[k], name) != 0)
                    k++;
                if (k == n && n < max && name)
                    names[n++] = name;
            }
    return n;
}

static long index_of(const char *const *names, size_t n, const char *name)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(names[k], name) == 0)
            return (long)k;
    return -1;
}

static json_t *five(const double *sorted, size_t n)
{
    if (n == 0)
        return json_null();
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += sorted[i];
    return json_pack("{s:f,s:f,s:f,s:f,s:f,s:f}", "min", sorted[0], "q1",
                     analytics_quantile(sorted, n, 0.25), "median",
                     analytics_quantile(sorted, n, 0.5), "q3", analytics_quantile(sorted, n, 0.75),
                     "max", sorted[n - 1], "mean", sum / (double)n);
}

static json_t *int_matrix(const size_t *v, size_t rows, size_t cols)
{
    json_t *m = json_array();
    for (size_t r = 0; m && r < rows; r++) {
        json_t *row = json_array();
        for (size_t c = 0; row && c < cols; c++)
            if (json_array_append_new(row, json_integer((json_int_t)v[r * cols + c]))) {
                json_decref(row);
                row = NULL;
            }
        if (!row || json_array_append_new(m, row)) {
            json_decref(m);
            return NULL;
        }
    }
    return m;
}

/* The heatmaps of P(alive) and of the expected purchases over the
 * horizon for a customer first seen T days ago (the median customer's
 * age), by repeat purchases x = 0..xmax and days since the last purchase
 * (T - t_x). Cells no history can have are null: with x = 0 the last
 * purchase is the first (T days ago); with x >= 1 it came after the
 * first (less than T days ago). */
static json_t *heatmaps(const cltv_model *c, const customer_row *rows, size_t n,
                        const analytics_options *o, double horizon, json_t **expected)
{
    *expected = NULL;
    double *ages = malloc((n ? n : 1) * sizeof *ages), *xs = malloc((n ? n : 1) * sizeof *xs);
    if (!ages || !xs) {
        free(ages), free(xs);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        ages[i] = rows[i].days_since_first, xs[i] = rows[i].repeat_purchases;
    qsort(ages, n, sizeof *ages, cmp_double);
    qsort(xs, n, sizeof *xs, cmp_double);
    double T = round(analytics_quantile(ages, n, 0.5));
    double x99 = ceil(analytics_quantile(xs, n, 0.99));
    free(ages), free(xs);
    if (!(T >= 1))
        T = 1;
    int xmax = x99 >= 1 ? (int)fmin(x99, o->max_frequency) : 1;
    const bgnbd_params *p = &cltv_bgnbd(c)->p;
    json_t *map[2] = {NULL, NULL};
    for (int w = 0; w < 2; w++) {
        json_t *fx = json_array(), *ds = json_array(), *vals = json_array();
        for (int x = 0; fx && x <= xmax; x++)
            json_array_append_new(fx, json_integer(x));
        for (int k = 0; ds && vals && k <= o->grid_steps; k++) {
            double since = round(T * k / o->grid_steps), t_x = T - since;
            json_array_append_new(ds, json_real(since));
            json_t *row = json_array();
            for (int x = 0; row && x <= xmax; x++) {
                int possible = x == 0 ? t_x == 0 : t_x > 0;
                double v =
                    w == 0 ? bgnbd_p_alive(p, x, t_x, T) : bgnbd_expected(p, horizon, x, t_x, T);
                json_array_append_new(row, possible && isfinite(v) ? json_real(v) : json_null());
            }
            json_array_append_new(vals, row);
        }
        map[w] = json_pack("{s:f,s:o*,s:o*,s:o*}", "T_days", T, "frequency", fx, "days_since_last",
                           ds, "values", vals);
        if (map[w] && w == 1)
            json_object_set_new(map[w], "horizon_days", json_real(horizon));
    }
    if (!map[0] || !map[1] || json_object_size(map[0]) != 4 || json_object_size(map[1]) != 5) {
        json_decref(map[0]);
        json_decref(map[1]);
        return NULL;
    }
    *expected = map[1];
    return map[0];
}

#define MAX_NAMES 64
#define HIST_BINS 20

typedef struct {
    size_t n;
    const char *seg_names[MAX_NAMES];
    size_t nseg, nclu;
    long *seg, *clu; /* per customer: segment and cluster index (-1: none) */
    int *rscore, *fscore;
    double *p, *v;          /* churn probability, CLTV (NaN: not scored) */
    double *lo, *hi;        /* CLTV interval, where cv_done */
    unsigned char *cv_done; /* the CLTV (with interval) was computed */
    int *risk;
} scored;

static void scored_free(scored *s)
{
    free(s->seg), free(s->clu), free(s->rscore), free(s->fscore), free(s->p), free(s->v),
        free(s->lo), free(s->hi), free(s->cv_done), free(s->risk);
}

/* The lifetime-value terms kept across customers while scoring them all
 * (the same figures as without, cltv.h): customers of one (x, T) share
 * them. */
#define SCORE_CACHE_BYTES (16u << 20)

/* Customers [lo, hi) of score_all, through mc (its own CLTV cache); with
 * half 0 or 1, only those whose CLTV cache key (x, T) falls in that half
 * (key_half), so that the two threads' caches never compute the same
 * terms; -1: all. */
typedef struct {
    score_models mc;
    const customer_row *rows;
    size_t lo, hi;
    int half;
    scored *s;
} score_part;

/* 0 or 1 from a customer's (x, T), the key its lifetime-value terms are
 * cached by. */
static int key_half(const customer_row *c)
{
    uint64_t a, b;
    memcpy(&a, &c->repeat_purchases, sizeof a);
    memcpy(&b, &c->days_since_first, sizeof b);
    return (int)(hash_mix(a ^ hash_mix(b)) >> 63);
}

static void *score_range(void *arg)
{
    score_part *a = arg;
    scored *o = a->s;
    for (size_t i = a->lo; i < a->hi; i++) {
        if (a->half >= 0 && key_half(&a->rows[i]) != a->half)
            continue;
        score_result r;
        char e[256];
        o->seg[i] = o->clu[i] = -1;
        o->rscore[i] = o->fscore[i] = 0;
        o->p[i] = o->v[i] = NAN;
        o->risk[i] = -1;
        /* A customer a model refuses is left out of that model's figures.
         * The churn probability alone (its explanations are the SHAP
         * sample's, analytics_add_shap); the CLTV with its interval, which
         * the overview sums. */
        if (score_customer(&a->mc, &a->rows[i], SCORE_ALL | SCORE_CHURN_POINT, 1, &r, e,
                           sizeof e) != RFM_OK)
            memset(&r, 0, sizeof r);
        if (r.done & SCORE_SEGMENTS) {
            o->seg[i] = index_of(o->seg_names, o->nseg, r.seg.rfm_segment);
            o->clu[i] = (long)r.seg.cluster;
            o->rscore[i] = r.seg.rfm_score[0] - '0';
            o->fscore[i] = r.seg.rfm_score[1] - '0';
        }
        if (r.done & SCORE_CHURN) {
            o->p[i] = r.churn_probability;
            o->risk[i] = (int)r.risk;
        }
        if (r.done & SCORE_CLTV) {
            o->v[i] = r.cltv.cltv;
            o->lo[i] = r.cltv.lower, o->hi[i] = r.cltv.upper;
            o->cv_done[i] = 1;
        }
    }
    return NULL;
}

static rfm_status score_all(const customer_row *rows, size_t n, const score_models *m, scored *s,
                            char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    size_t k = n ? n : 1;
    s->seg = malloc(k * sizeof *s->seg), s->clu = malloc(k * sizeof *s->clu);
    s->rscore = malloc(k * sizeof *s->rscore), s->fscore = malloc(k * sizeof *s->fscore);
    s->p = malloc(k * sizeof *s->p), s->v = malloc(k * sizeof *s->v);
    s->risk = malloc(k * sizeof *s->risk);
    s->lo = malloc(k * sizeof *s->lo), s->hi = malloc(k * sizeof *s->hi);
    s->cv_done = calloc(k, 1);
    if (!s->seg || !s->clu || !s->rscore || !s->fscore || !s->p || !s->v || !s->risk || !s->lo ||
        !s->hi || !s->cv_done) {
        scored_free(s);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    if (m->segments) {
        s->nseg = segment_names(m->segments, s->seg_names, MAX_NAMES);
        s->nclu = segments_nclusters(m->segments);
    }
    /* Two halves by cache key (key_half), the second on a thread of its
     * own, each with a cache of the lifetime-value terms (none is only
     * slower: a failed cache_new leaves it NULL), unless the caller gave
     * one: then one pass with it. Each customer's scores are the same
     * whoever computes them. */
    score_part part[2] = {{*m, rows, 0, n, 0, s}, {*m, rows, 0, n, 1, s}};
    cltv_cache *own[2] = {NULL, NULL};
    int split = n >= 256 && !m->cltv_cache;
    for (int h = 0; h < 1 + split; h++)
        if (m->cltv && !m->cltv_cache &&
            cltv_cache_new(m->cltv, m->horizon_days, m->discount_rate, 1, SCORE_CACHE_BYTES,
                           &own[h], NULL, 0) == RFM_OK)
            part[h].mc.cltv_cache = own[h];
    if (!split)
        part[0].half = -1;
    pthread_t th;
    int threaded = split && pthread_create(&th, NULL, score_range, &part[1]) == 0;
    score_range(&part[0]);
    if (threaded)
        pthread_join(th, NULL);
    else if (split) {
        part[1].mc.cltv_cache = own[0]; /* no thread: the second half after the first */
        score_range(&part[1]);
    }
    cltv_cache_free(own[0]);
    cltv_cache_free(own[1]);
    return RFM_OK;
}

/* Overview members from the scores: cltv total, risk mix, segment and
 * cluster mix. */
static int overview_scores(const scored *s, const score_models *m, const customer_row *rows,
                           json_t *ov)
{
    int bad = 0;
    size_t n = s->n;
    if (m->cltv) {
        double tot = 0, lo = 0, hi = 0;
        size_t counted = 0;
        for (size_t i = 0; i < n; i++) {
            /* score_all's figures where it reached the CLTV (the same call
             * as here), else (a model before it refused the customer)
             * computed here. */
            cltv_prediction p;
            if (s->cv_done[i])
                p.cltv = s->v[i], p.lower = s->lo[i], p.upper = s->hi[i];
            else if (cltv_predict(m->cltv, rows[i].repeat_purchases, rows[i].days_first_to_last,
                                  rows[i].days_since_first, rows[i].mean_repeat_spend,
                                  m->horizon_days, m->discount_rate, &p, NULL, 0) != RFM_OK)
                continue;
            tot += p.cltv, lo += p.lower, hi += p.upper;
            counted++;
        }
        bad |= json_object_set_new(ov, "cltv",
                                   json_pack("{s:f,s:f,s:f,s:f,s:f,s:I}", "horizon_days",
                                             m->horizon_days, "discount_rate", m->discount_rate,
                                             "total", tot, "lower", lo, "upper", hi, "customers",
                                             (json_int_t)counted));
    }
    if (m->churn) {
        size_t c[3] = {0, 0, 0};
        for (size_t i = 0; i < n; i++)
            if (s->risk[i] >= 0 && s->risk[i] < 3)
                c[s->risk[i]]++;
        bad |= json_object_set_new(ov, "churn_risk",
                                   json_pack("{s:I,s:I,s:I}", "low", (json_int_t)c[0], "medium",
                                             (json_int_t)c[1], "high", (json_int_t)c[2]));
    }
    if (m->segments) {
        json_t *segs = json_array(), *clus = json_array();
        for (size_t k = 0; segs && k < s->nseg; k++) {
            size_t cnt = 0;
            double rev = 0;
            for (size_t i = 0; i < n; i++)
                if (s->seg[i] == (long)k)
                    cnt++, rev += rows[i].monetary;
            bad |= json_array_append_new(segs,
                                         json_pack("{s:s,s:I,s:f}", "segment", s->seg_names[k],
                                                   "customers", (json_int_t)cnt, "revenue", rev));
        }
        for (size_t k = 0; clus && k < s->nclu; k++) {
            size_t cnt = 0;
            double rev = 0;
            for (size_t i = 0; i < n; i++)
                if (s->clu[i] == (long)k)
                    cnt++, rev += rows[i].monetary;
            bad |= json_array_append_new(
                clus, json_pack("{s:I,s:s,s:I,s:f}", "cluster", (json_int_t)k, "segment",
                                segments_cluster_name(m->segments, (long)k), "customers",
                                (json_int_t)cnt, "revenue", rev));
        }
        bad |= !segs || !clus;
        bad |= json_object_set_new(ov, "segments", segs);
        bad |= json_object_set_new(ov, "clusters", clus);
    }
    return bad;
}

static json_t *rfm_matrix(const scored *s, const score_models *m)
{
    if (!m->segments)
        return json_object(); /* nothing to cross */
    size_t *cnt = calloc(s->nseg * s->nclu + 1, sizeof *cnt), grid[25] = {0};
    if (!cnt)
        return NULL;
    for (size_t i = 0; i < s->n; i++) {
        if (s->seg[i] >= 0 && s->clu[i] >= 0 && (size_t)s->clu[i] < s->nclu)
            cnt[(size_t)s->seg[i] * s->nclu + (size_t)s->clu[i]]++;
        if (s->rscore[i] >= 1 && s->rscore[i] <= 5 && s->fscore[i] >= 1 && s->fscore[i] <= 5)
            grid[(s->rscore[i] - 1) * 5 + (s->fscore[i] - 1)]++;
    }
    json_t *segs = json_array(), *clus = json_array();
    for (size_t k = 0; segs && k < s->nseg; k++)
        json_array_append_new(segs, json_string(s->seg_names[k]));
    for (size_t k = 0; clus && k < s->nclu; k++)
        json_array_append_new(clus, json_string(segments_cluster_name(m->segments, (long)k)));
    json_t *j =
        json_pack("{s:o,s:o,s:o*,s:[iiiii],s:[iiiii],s:o*}", "segments", segs, "clusters", clus,
                  "counts", int_matrix(cnt, s->nseg, s->nclu), "recency_scores", 1, 2, 3, 4, 5,
                  "frequency_scores", 1, 2, 3, 4, 5, "grid", int_matrix(grid, 5, 5));
    free(cnt);
    return j;
}

static json_t *cltv_churn(const scored *s, const score_models *m, const customer_row *rows,
                          const analytics_options *o)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    int bad = 0;
    double *buf = malloc((s->n ? s->n : 1) * sizeof *buf);
    if (!buf) {
        json_decref(j);
        return NULL;
    }
    if (m->segments) {
        json_t *by = json_array();
        for (size_t k = 0; by && k < s->nseg; k++) {
            size_t np = 0, nv = 0, cnt = 0;
            for (size_t i = 0; i < s->n; i++)
                if (s->seg[i] == (long)k && !isnan(s->p[i]))
                    buf[np++] = s->p[i];
            qsort(buf, np, sizeof *buf, cmp_double);
            json_t *pj = m->churn ? five(buf, np) : json_null();
            for (size_t i = 0; i < s->n; i++) {
                cnt += s->seg[i] == (long)k;
                if (s->seg[i] == (long)k && !isnan(s->v[i]))
                    buf[nv++] = s->v[i];
            }
            qsort(buf, nv, sizeof *buf, cmp_double);
            json_t *vj = m->cltv ? five(buf, nv) : json_null();
            bad |= json_array_append_new(
                by, json_pack("{s:s,s:I,s:o*,s:o*}", "segment", s->seg_names[k], "customers",
                              (json_int_t)cnt, "churn_probability", pj, "cltv", vj));
        }
        bad |= !by || json_object_set_new(j, "by_segment", by);
    }
    if (m->churn) {
        size_t h[HIST_BINS] = {0};
        json_t *edges = json_array(), *counts = json_array();
        for (size_t i = 0; i < s->n; i++)
            if (!isnan(s->p[i])) {
                int b = (int)floor(s->p[i] * HIST_BINS);
                h[b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : b]++;
            }
        for (int b = 0; edges && counts && b <= HIST_BINS; b++) {
            json_array_append_new(edges, json_real((double)b / HIST_BINS));
            if (b < HIST_BINS)
                json_array_append_new(counts, json_integer((json_int_t)h[b]));
        }
        bad |= json_object_set_new(j, "churn_histogram",
                                   json_pack("{s:o*,s:o*}", "edges", edges, "counts", counts));
    }
    if (m->cltv) {
        json_t *ep, *pa = heatmaps(m->cltv, rows, s->n, o, m->horizon_days, &ep);
        bad |= !pa || json_object_set_new(j, "p_alive", pa) ||
               json_object_set_new(j, "expected_purchases", ep);
    }
    free(buf);
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

rfm_status analytics_compute(const txn_data *d, const customer_row *rows, size_t n,
                             const score_models *m, const analytics_options *o, json_t **out,
                             char *err, size_t errlen)
{
    *out = NULL;
    const char *why = analytics_check_options(o);
    if (why)
        return rfm_fail(err, errlen, RFM_EINVAL, "analytics: %s", why);
    if (n == 0)
        return rfm_fail(err, errlen, RFM_EDATA, "analytics: no customers");
    size_t active = 0;
    double revenue = 0;
    for (size_t i = 0; i < n; i++) {
        active += rows[i].recency <= o->active_days;
        revenue += rows[i].monetary;
    }
    char snap[11];
    date_format(txn_snapshot_day(d), snap);
    json_t *ov = json_pack("{s:I,s:i,s:I,s:f,s:f}", "customers", (json_int_t)n, "active_days",
                           o->active_days, "active_customers", (json_int_t)active, "active_share",
                           (double)active / (double)n, "revenue", revenue);
    if (!ov)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    rfm_status st = monthly(d, o, ov, err, errlen);
    if (st != RFM_OK) {
        json_decref(ov);
        return st;
    }
    scored s;
    if ((st = score_all(rows, n, m, &s, err, errlen)) != RFM_OK) {
        json_decref(ov);
        return st;
    }
    int bad = overview_scores(&s, m, rows, ov);
    json_t *rm = bad ? NULL : rfm_matrix(&s, m);
    json_t *cc = rm ? cltv_churn(&s, m, rows, o) : NULL;
    scored_free(&s);
    json_t *j = cc ? json_pack("{s:i,s:s?,s:s,s:o,s:o,s:o}", "format_version", ANALYTICS_FORMAT,
                               "currency", o->currency, "snapshot_date", snap, "overview", ov,
                               "rfm_matrix", rm, "cltv_churn", cc)
                   : NULL;
    if (!j) {
        if (!cc) {
            json_decref(ov);
            json_decref(rm);
        }
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    if (!o->currency)
        json_object_set_new(j, "currency", json_null());
    *out = j;
    return RFM_OK;
}

rfm_status analytics_add_holdout(json_t *j, const cltv_holdout *h, char *err, size_t errlen)
{
    if (!h->ok)
        return RFM_OK;
    json_t *groups = json_array();
    for (int k = 0; groups && k < CLTV_HOLDOUT_GROUPS; k++) {
        if (h->n[k] == 0)
            continue;
        char label[16];
        snprintf(label, sizeof label, "%d%s", k, k == CLTV_HOLDOUT_GROUPS - 1 ? "+" : "");
        double n = (double)h->n[k];
        if (json_array_append_new(groups, json_pack("{s:s,s:I,s:f,s:f}", "repeat_purchases", label,
                                                    "customers", (json_int_t)h->n[k], "actual_mean",
                                                    h->actual[k] / n, "predicted_mean",
                                                    h->predicted[k] / n))) {
            json_decref(groups);
            groups = NULL;
        }
    }
    json_t *o = json_pack("{s:i,s:s,s:o*,s:I,s:f,s:f}", "days", h->days, "cut", h->cut, "groups",
                          groups, "customers", (json_int_t)h->total_n, "actual", h->total_actual,
                          "predicted", h->total_predicted);
    if (!o || json_object_size(o) != 6 ||
        json_object_set_new(json_object_get(j, "cltv_churn"), "holdout", o)) {
        json_decref(o);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    return RFM_OK;
}

/* ---- figures from the other models' files and outputs ------------------- */

rfm_status analytics_add_churn_curves(json_t *j, const json_t *churn_json, char *err, size_t errlen)
{
    const json_t *ev = json_object_get(churn_json, "evaluation");
    json_t *cc = json_object_get(j, "cltv_churn");
    if (!json_is_object(ev) || !json_is_object(cc))
        return RFM_OK;
    const char *served = json_string_value(json_object_get(churn_json, "learner"));
    json_t *o = json_pack("{s:s}", "served", served ? served : "logistic");
    static const char *const L[2] = {"logistic", "boosted"};
    static const char *const KEEP[] = {"auc",       "log_loss", "brier",       "customers",
                                       "positives", "roc",      "calibration", "gains"};
    int bad = !o;
    for (int k = 0; !bad && k < 2; k++) {
        const json_t *e = json_object_get(ev, L[k]);
        if (!json_is_object(e))
            continue;
        json_t *c = json_object();
        for (size_t f = 0; c && f < sizeof KEEP / sizeof *KEEP; f++) {
            json_t *v = json_object_get(e, KEEP[f]);
            if (v && json_object_set_new(c, KEEP[f], json_deep_copy(v))) {
                json_decref(c);
                c = NULL;
            }
        }
        bad = !c || json_object_set_new(o, L[k], c);
    }
    if (bad || json_object_set_new(cc, "evaluation", o)) {
        if (bad)
            json_decref(o);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    return RFM_OK;
}

static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* A seeded sample of m of the indices in idx[0..n-1] (shuffled in place),
 * sorted ascending in idx[0..m-1]. */
static size_t sample_sorted(size_t *idx, size_t n, size_t m, uint64_t seed)
{
    if (m > n)
        m = n;
    rfm_rng g;
    rfm_rng_seed(&g, seed);
    rfm_rng_shuffle(&g, idx, n, m, sizeof *idx);
    qsort(idx, m, sizeof *idx, cmp_size);
    return m;
}

/* Explanations of rows [lo, hi): contributions into call (d a row),
 * probabilities into pall, okf[i] whether the model could score row i. */
typedef struct {
    const churn_model *m;
    const customer_row *rows;
    size_t lo, hi, d;
    double *call, *pall, base;
    unsigned char *okf;
} shap_part;

static void *shap_run(void *p)
{
    shap_part *a = p;
    double x[CHURN_MAX_FEATURES], b;
    for (size_t i = a->lo; i < a->hi; i++) {
        churn_model_row(a->m, &a->rows[i], x);
        a->okf[i] = churn_explain(a->m, x, &b, a->call + i * a->d, NULL, &a->pall[i], NULL, 0) ==
                    RFM_OK; /* not: a row the model refuses (missing values, logistic) */
        if (a->okf[i])
            a->base = b;
    }
    return NULL;
}

rfm_status analytics_add_shap(json_t *j, const churn_model *m, const char *const *ids,
                              const customer_row *rows, size_t n, size_t sample, uint64_t seed,
                              char *err, size_t errlen)
{
    churn_info ci;
    churn_info_get(m, &ci);
    size_t d = ci.d;
    size_t *ok = malloc((n ? n : 1) * sizeof *ok);
    double *imp = calloc(d ? d : 1, sizeof *imp);
    /* Each customer's explanation, kept for the sample: one pass of
     * churn_explain (most of the cost) instead of two. */
    double *call = malloc((n ? n : 1) * (d ? d : 1) * sizeof *call);
    double *pall = malloc((n ? n : 1) * sizeof *pall);
    unsigned char *okf = malloc(n ? n : 1);
    if (!ok || !imp || !call || !pall || !okf) {
        free(ok), free(imp), free(call), free(pall), free(okf);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    /* The explanations (most of the step: TreeSHAP of every customer) in
     * two halves, one on a thread of its own; then summed in row order, so
     * the figures are the same bits as on one thread. */
    shap_part half[2] = {{m, rows, 0, n / 2, d, call, pall, NAN, okf},
                         {m, rows, n / 2, n, d, call, pall, NAN, okf}};
    pthread_t th;
    int threaded = n >= 256 && pthread_create(&th, NULL, shap_run, &half[1]) == 0;
    shap_run(&half[0]);
    if (threaded)
        pthread_join(th, NULL);
    else
        shap_run(&half[1]);
    size_t nok = 0;
    double base = !isnan(half[1].base) ? half[1].base : half[0].base, x[CHURN_MAX_FEATURES];
    for (size_t i = 0; i < n; i++) {
        if (!okf[i])
            continue;
        for (size_t f = 0; f < d; f++)
            imp[f] += fabs(call[i * d + f]);
        ok[nok++] = i;
    }
    free(okf);
    if (nok == 0) {
        free(ok), free(imp), free(call), free(pall);
        return rfm_fail(err, errlen, RFM_EDATA,
                        "analytics: the churn model can score none of the customers");
    }
    size_t ns = sample_sorted(ok, nok, sample, seed);
    json_t *feat = json_array(), *im = json_array(), *sid = json_array(), *sp = json_array();
    json_t *sv = json_array(), *sc = json_array();
    int bad = !feat || !im || !sid || !sp || !sv || !sc;
    for (size_t f = 0; !bad && f < d; f++)
        bad = json_array_append_new(feat, json_string(ci.names[f])) ||
              json_array_append_new(im, json_real(imp[f] / (double)nok));
    for (size_t k = 0; !bad && k < ns; k++) {
        size_t i = ok[k];
        const double *c = call + i * d, p = pall[i];
        churn_model_row(m, &rows[i], x);
        json_t *vr = json_array(), *cr = json_array();
        bad = !vr || !cr;
        for (size_t f = 0; !bad && f < d; f++)
            bad = json_array_append_new(vr, real_or_null(x[f])) ||
                  json_array_append_new(cr, json_real(c[f]));
        bad = bad || json_array_append_new(sid, json_string(ids[i])) ||
              json_array_append_new(sp, json_real(p));
        if (bad) {
            json_decref(vr), json_decref(cr);
            break;
        }
        bad = json_array_append_new(sv, vr) || json_array_append_new(sc, cr);
    }
    json_t *o = bad ? NULL
                    : json_pack("{s:s,s:o,s:f,s:o,s:I,s:{s:o,s:o,s:o,s:o}}", "learner",
                                churn_learner_name(ci.learner), "features", feat, "base_value",
                                base, "importance", im, "customers", (json_int_t)nok, "sample",
                                "ids", sid, "probability", sp, "values", sv, "contributions", sc);
    if (!o) {
        if (bad) /* json_pack steals its o arguments even on failure */
            json_decref(feat), json_decref(im), json_decref(sid), json_decref(sp), json_decref(sv),
                json_decref(sc);
    }
    free(ok), free(imp), free(call), free(pall);
    if (!o || json_object_set_new(j, "shap_sample", o))
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    return RFM_OK;
}

/* U at share f of a curve of points [share, qini, uplift], linearly
 * interpolated (col 1: qini, 2: uplift). */
static double curve_at(const json_t *pts, double f, int col)
{
    size_t np = json_array_size(pts);
    for (size_t k = 1; k < np; k++) {
        const json_t *a = json_array_get(pts, k - 1), *b = json_array_get(pts, k);
        double fa = json_number_value(json_array_get(a, 0)),
               fb = json_number_value(json_array_get(b, 0));
        if (f <= fb + 1e-12 || k == np - 1) {
            double ya = json_number_value(json_array_get(a, (size_t)col)),
                   yb = json_number_value(json_array_get(b, (size_t)col));
            return fb > fa ? ya + (yb - ya) * (f - fa) / (fb - fa) : yb;
        }
    }
    return np ? json_number_value(json_array_get(json_array_get(pts, 0), (size_t)col)) : NAN;
}

static int cmp_learner(const void *a, const void *b)
{
    double x = json_number_value(json_object_get(*(json_t *const *)a, "mean_qini_normalised")),
           y = json_number_value(json_object_get(*(json_t *const *)b, "mean_qini_normalised"));
    return (x < y) - (x > y);
}

/* One arm of the served learner: its curve and deciles into *out. */
static rfm_status qini_arm(const char *arm, const json_t *m, json_t **out, char *err, size_t errlen)
{
    const json_t *pts = json_object_get(m, "curve_frac_qini_uplift");
    double n = json_number_value(json_object_get(m, "customers"));
    size_t np = json_array_size(pts);
    if (np < 2 || !(n > 0)) {
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "analytics: uplift metrics of arm %s have no curve_frac_qini_uplift or "
                        "customers: retrain uplift",
                        arm);
    }
    for (size_t k = 0; k < np; k++) {
        const json_t *p = json_array_get(pts, k);
        if (json_array_size(p) != 3 || !json_is_number(json_array_get(p, 0)) ||
            !json_is_number(json_array_get(p, 1)) || !json_is_number(json_array_get(p, 2))) {
            return rfm_fail(err, errlen, RFM_EFORMAT,
                            "analytics: uplift metrics of arm %s: point %zu is not [share, qini, "
                            "uplift]: retrain uplift",
                            arm, k);
        }
    }
    const json_t *last = json_array_get(pts, np - 1);
    double fl = json_number_value(json_array_get(last, 0)),
           ql = json_number_value(json_array_get(last, 1));
    json_t *curve = json_array(), *rate = json_array(), *dec = json_array();
    int bad = !curve || !rate || !dec;
    for (size_t k = 0; !bad && k < np; k++) {
        const json_t *p = json_array_get(pts, k);
        double f = json_number_value(json_array_get(p, 0));
        double q = json_number_value(json_array_get(p, 1));
        double u = json_number_value(json_array_get(p, 2));
        bad = json_array_append_new(curve, json_pack("[f,f,f]", f, q, fl > 0 ? ql * f / fl : 0));
        if (!bad && f > 0)
            bad = json_array_append_new(rate, json_pack("[f,f]", f, u / (f * n)));
    }
    for (int d = 1; !bad && d <= 10; d++) {
        double u1 = curve_at(pts, d / 10.0, 2), u0 = curve_at(pts, (d - 1) / 10.0, 2);
        bad = json_array_append_new(dec, json_real((u1 - u0) / (n / 10)));
    }
    json_t *o = bad ? NULL
                    : json_pack("{s:s,s:f,s:O*,s:O*,s:o,s:o,s:o}", "arm", arm, "customers", n,
                                "qini_normalised", json_object_get(m, "qini_normalised"),
                                "qini_interval_90", json_object_get(m, "qini_interval_90"), "qini",
                                curve, "uplift_rate", rate, "uplift_by_decile", dec);
    if (!o) {
        if (bad)
            json_decref(curve), json_decref(rate), json_decref(dec);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    *out = o;
    return RFM_OK;
}

rfm_status analytics_add_qini(json_t *j, const json_t *uplift_metrics, const json_t *uplift_file,
                              double value, double cost, char *err, size_t errlen)
{
    const char *served = json_string_value(json_object_get(uplift_metrics, "served_learner"));
    const json_t *ho = json_object_get(json_object_get(uplift_metrics, "holdout"), served);
    const json_t *arms = json_object_get(uplift_file, "arms");
    if (!served || !json_is_object(ho) || !json_is_array(arms) || json_array_size(arms) == 0)
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "analytics: the uplift metrics have no served_learner with its holdout "
                        "curves, or uplift.json no arms: retrain uplift");
    json_t *ja = json_array(), *cmp = json_array();
    rfm_status st = ja && cmp ? RFM_OK : rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    for (size_t k = 0; st == RFM_OK && k < json_array_size(arms); k++) {
        const char *arm = json_string_value(json_array_get(arms, k));
        json_t *a = NULL;
        if (!arm)
            st = rfm_fail(err, errlen, RFM_EFORMAT, "analytics: uplift.json arms: not names");
        else if ((st = qini_arm(arm, json_object_get(ho, arm), &a, err, errlen)) != RFM_OK)
            ;
        else if (json_array_append_new(ja, a))
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    const json_t *comp = json_object_get(json_object_get(uplift_file, "holdout"), "comparison");
    const char *lname;
    const json_t *lv;
    json_object_foreach((json_t *)comp, lname, lv)
    {
        if (st != RFM_OK)
            break;
        json_t *per = json_object();
        const char *an;
        const json_t *av;
        json_object_foreach(json_object_get(lv, "arms"), an, av)
        {
            if (per)
                json_object_set(per, an, json_object_get(av, "qini_normalised"));
        }
        json_t *row = json_pack("{s:s,s:O*,s:o*}", "learner", lname, "mean_qini_normalised",
                                json_object_get(lv, "mean_qini_normalised"), "arms", per);
        if (!row || json_array_append_new(cmp, row))
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    if (st == RFM_OK) {
        size_t nc = json_array_size(cmp);
        json_t **v = malloc((nc ? nc : 1) * sizeof *v);
        json_t *sorted = json_array();
        if (!v || !sorted)
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        for (size_t k = 0; st == RFM_OK && k < nc; k++)
            v[k] = json_array_get(cmp, k);
        if (st == RFM_OK)
            qsort(v, nc, sizeof *v, cmp_learner);
        for (size_t k = 0; st == RFM_OK && k < nc; k++)
            if (json_array_append(sorted, v[k]))
                st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        free(v);
        json_decref(cmp);
        cmp = sorted;
    }
    const json_t *outc = json_object_get(uplift_file, "outcome");
    json_t *o = st == RFM_OK
                    ? json_pack("{s:s,s:O*,s:O*,s:f,s:f,s:O,s:O}", "learner", served, "outcome",
                                outc, "customers", json_object_get(uplift_metrics, "customers"),
                                "value", value, "cost", cost, "arms", ja, "comparison", cmp)
                    : NULL;
    json_decref(ja), json_decref(cmp);
    if (st == RFM_OK && (!o || json_object_set_new(j, "qini", o)))
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    return st;
}

typedef struct {
    const char *id;
    size_t row;
} id_row;

static int cmp_id_row(const void *a, const void *b)
{
    return strcmp(((const id_row *)a)->id, ((const id_row *)b)->id);
}

rfm_status analytics_add_embedding_map(json_t *j, const float *vecs, size_t n, int dim,
                                       const char *const *vec_ids, const char *const *ids,
                                       const customer_row *rows, size_t nrows,
                                       const segments_model *seg, size_t max_points, uint64_t seed,
                                       char *err, size_t errlen)
{
    double mean[PCA_MAX_DIM], axes[2 * PCA_MAX_DIM], var[2], total;
    rfm_status st = pca_fit(vecs, n, dim, 2, mean, axes, var, &total, err, errlen);
    if (st != RFM_OK)
        return st;
    size_t *idx = malloc(n * sizeof *idx);
    id_row *byid = malloc((nrows ? nrows : 1) * sizeof *byid);
    if (!idx || !byid) {
        free(idx), free(byid);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nrows; i++)
        byid[i] = (id_row){ids[i], i};
    qsort(byid, nrows, sizeof *byid, cmp_id_row);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    size_t ns = sample_sorted(idx, n, max_points, seed);
    size_t ncl = seg ? segments_nclusters(seg) : 0;
    json_t *names = json_array(), *pid = json_array(), *px = json_array(), *py = json_array();
    json_t *ps = json_array();
    int bad = !names || !pid || !px || !py || !ps;
    for (size_t c = 0; !bad && c < ncl; c++)
        bad = json_array_append_new(names, json_string(segments_cluster_name(seg, (long)c)));
    for (size_t k = 0; !bad && k < ns; k++) {
        size_t i = idx[k];
        double xy[2];
        pca_project(vecs + i * (size_t)dim, dim, 2, mean, axes, xy);
        long cl = -1;
        id_row key = {vec_ids[i], 0};
        const id_row *hit = seg ? bsearch(&key, byid, nrows, sizeof *byid, cmp_id_row) : NULL;
        if (hit)
            cl = segments_customer_cluster(seg, &rows[hit->row]);
        bad = json_array_append_new(pid, json_string(vec_ids[i])) ||
              json_array_append_new(px, json_real(round(xy[0] * 1e4) / 1e4)) ||
              json_array_append_new(py, json_real(round(xy[1] * 1e4) / 1e4)) ||
              json_array_append_new(ps, json_integer(cl));
    }
    json_t *o =
        bad ? NULL
            : json_pack("{s:i,s:I,s:[f,f],s:o,s:{s:o,s:o,s:o,s:o}}", "dim", dim, "customers",
                        (json_int_t)n, "explained_variance", total > 0 ? var[0] / total : 0,
                        total > 0 ? var[1] / total : 0, "segments", names, "points", "ids", pid,
                        "x", px, "y", py, "segment", ps);
    if (!o && bad)
        json_decref(names), json_decref(pid), json_decref(px), json_decref(py), json_decref(ps);
    free(idx), free(byid);
    if (!o || json_object_set_new(j, "embedding_map", o))
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    return RFM_OK;
}

rfm_status analytics_check(const json_t *j, char *err, size_t errlen)
{
    const json_t *v = json_object_get(j, "format_version");
    if (!json_is_integer(v) || json_integer_value(v) != ANALYTICS_FORMAT)
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "analytics.json: format_version is not %d: retrain with rfm-train "
                        "(--only analytics) to regenerate it",
                        ANALYTICS_FORMAT);
    static const char *const NEED[] = {"overview", "rfm_matrix", "cltv_churn"};
    for (size_t k = 0; k < 3; k++)
        if (!json_is_object(json_object_get(j, NEED[k])))
            return rfm_fail(err, errlen, RFM_EFORMAT,
                            "analytics.json: %s is missing or not an object: retrain with "
                            "rfm-train (--only analytics) to regenerate it",
                            NEED[k]);
    return RFM_OK;
}
