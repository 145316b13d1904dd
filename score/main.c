/* rfm-score - every customer rfm-train saw, scored in one pass, to a file.
 *
 * For CDPs, warehouses and reverse ETL: one row per customer of
 * models/customers.csv, as of the training snapshot, with the segments,
 * churn and lifetime-value figures rfm-serve answers for the same customer
 * (both call score_customer in core/models/score.c) and their percentiles
 * over the scored population; or a targeting list (--top N --by ...), a
 * segment's customers (--segment), or only the rows that moved since a
 * previous export (--changed-since). Formats by the name's ending
 * (core/files/export.h). docs/exports.md describes the columns.
 *
 * Workload: millions of customers. Two passes over the customer table:
 * the first computes the percentile keys (churn probability and CLTV:
 * 32 bytes a customer with their sorted copies; and the churn probability,
 * which is not computed twice), the second scores again
 * and streams each row out; beyond the models and those arrays, memory
 * does not grow with the customers.
 *
 * With --state, the customers are those of the live customer-state store
 * (core/files/state.h) with a purchase by --as-of (default today), their
 * features as GET /customers/{id} computes them; they are read into memory
 * first (state_each), like the training table.
 *
 * Not yet: --by uplift_gain is refused with a message (the uplift model
 * scores campaign features that the customer table does not hold).
 *
 * Exit status: 0 success, 1 bad models or data or a failed write, 2 bad
 * usage or config.
 */
#include <getopt.h>
#include <gsl/gsl_errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>

#include "churn.h"
#include "cltv.h"
#include "config.h"
#include "erasure.h"
#include "csv.h"
#include "date.h"
#include "customers.h"
#include "export.h"
#include "hash.h"
#include "modelfile.h"
#include "numfmt.h"
#include "score.h"
#include "segments.h"
#include "state.h"
#include "monotime.h"
#include "say.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: rfm-score [--config FILE] [--models DIR] [--state PATH [--as-of DATE]]\n"
               "                 --out FILE\n"
               "                 [--top N --by cltv|churn|value_at_risk] [--segment NAME]...\n"
               "                 [--changed-since FILE] [--quiet]\n"
               "\n"
               "Scores every customer of the trained models (models/customers.csv) as of the\n"
               "training snapshot and writes one row per customer: the columns of\n"
               "docs/exports.md, the same figures rfm-serve answers for the customer.\n"
               "\n"
               "  --config FILE        configuration (default config/rfm.yaml)\n"
               "  --models DIR         override models_dir from the config\n"
               "  --out FILE           output; the format by its ending: .csv, .csv.gz,\n"
               "                       .jsonl or .parquet\n"
               "  --top N --by KEY     a targeting list: the N customers with the highest KEY,\n"
               "                       highest first: cltv, churn (churn probability) or\n"
               "                       value_at_risk (churn probability x cltv)\n"
               "  --segment NAME       only customers of this cluster segment or RFM segment\n"
               "                       (repeat for several)\n"
               "  --changed-since FILE only customers new since FILE (an earlier rfm-score CSV)\n"
               "                       or whose segment, cluster, risk band or any score moved\n"
               "  --quiet              no progress on stderr\n"
               "  --help               this text\n"
               "\n"
               "  --state PATH         score the customers of the live customer-state store\n"
               "                       (rfm-serve --state) instead of the training snapshot\n"
               "  --as-of DATE         with --state: the figures as of DATE (YYYY-MM-DD,\n"
               "                       purchases on or before it; default today, UTC)\n"
               "\n"
               "Not yet: --by uplift_gain.\n"
               "\n"
               "Exit status: 0 success, 1 bad models or data or a failed write, 2 bad usage.\n");
}

/* The columns, in the order docs/exports.md lists them. */
enum {
    C_ID,
    C_RECENCY,
    C_FREQUENCY,
    C_MONETARY,
    C_RFM_SCORE,
    C_RFM_SEGMENT,
    C_CLUSTER,
    C_SEGMENT,
    C_CHURN_P,
    C_CHURN_RISK,
    C_CHURN_PCT,
    C_P_ALIVE,
    C_EXP_PURCHASES,
    C_CLTV,
    C_CLTV_LOWER,
    C_CLTV_UPPER,
    C_CLTV_PCT,
    C_MODEL_VERSION,
    C_SCORED_AT,
    NCOL
};
static const parquet_column COLS[NCOL] = {
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

typedef enum { BY_NONE, BY_CLTV, BY_CHURN, BY_VALUE_AT_RISK } by_key;

typedef struct {
    json_t *manifest;
    segments_model *segments;
    cltv_model *cltv;
    churn_model *churn;
    customers *cust; /* the training customers; or, with --state: */
    char **sids;     /* the live state's customers as of a day */
    customer_row *srows;
    size_t sn;
    score_models sm;
    cltv_cache *cache2; /* pass 1's second thread */
    char version[512];
    char scored_at[11];
} models;

static void models_free(models *m)
{
    segments_free(m->segments);
    cltv_free(m->cltv);
    churn_free(m->churn);
    customers_free(m->cust);
    for (size_t i = 0; i < m->sn; i++)
        free(m->sids[i]);
    free(m->sids), free(m->srows);
    cltv_cache_free(m->sm.cltv_cache);
    cltv_cache_free(m->cache2);
    json_decref(m->manifest);
}

static const char *version_of(const json_t *man, const char *name)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(man, "models"), name), "version"));
}

/* Load what score_customer needs from dir, as rfm-serve's api_load does:
 * the same files, the same cltv defaults. */
static rfm_status load_models(const char *dir, int with_customers, models *m, char *err,
                              size_t errlen)
{
    rfm_status st = modelfile_open(dir, &m->manifest, err, errlen);
    if (st != RFM_OK)
        return st;
    const json_t *mods = json_object_get(m->manifest, "models");
    json_t *j;
    if (with_customers && !json_object_get(mods, "customers"))
        return rfm_fail(err, errlen, RFM_ENOTFOUND,
                        "%s: no customer table: run bin/rfm-train from transactions", dir);
    const char *f = json_string_value(json_object_get(json_object_get(mods, "customers"), "file"));
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, f ? f : "customers.csv");
    if (with_customers && (st = customers_load(path, &m->cust, err, errlen)) != RFM_OK)
        return st;
    if (json_object_get(mods, "segments")) {
        if ((st = modelfile_load(dir, m->manifest, "segments", &j, err, errlen)) != RFM_OK)
            return st;
        st = segments_from_json(j, &m->segments, err, errlen);
        json_decref(j);
        if (st != RFM_OK)
            return st;
    }
    m->sm.horizon_days = 365, m->sm.discount_rate = 0.01;
    if (json_object_get(mods, "cltv")) {
        if ((st = modelfile_load(dir, m->manifest, "cltv", &j, err, errlen)) != RFM_OK)
            return st;
        st = cltv_from_json(j, &m->cltv, err, errlen);
        const json_t *def = json_object_get(j, "defaults");
        const json_t *h = json_object_get(def, "horizon_days"),
                     *d = json_object_get(def, "discount_rate");
        m->sm.horizon_days = json_is_number(h) ? json_number_value(h) : 365;
        m->sm.discount_rate = json_is_number(d) ? json_number_value(d) : 0.01;
        json_decref(j);
        if (st != RFM_OK)
            return st;
    }
    if (json_object_get(mods, "churn")) {
        if ((st = modelfile_load(dir, m->manifest, "churn", &j, err, errlen)) != RFM_OK)
            return st;
        st = churn_from_json(j, &m->churn, err, errlen);
        json_decref(j);
        if (st != RFM_OK)
            return st;
    }
    m->sm.segments = m->segments, m->sm.cltv = m->cltv, m->sm.churn = m->churn;
    for (int t = 0; t < 2 && m->cltv; t++)
        if ((st =
                 cltv_cache_new(m->cltv, m->sm.horizon_days, m->sm.discount_rate, (size_t)128 << 20,
                                t ? &m->cache2 : &m->sm.cltv_cache, err, errlen)) != RFM_OK)
            return st;
    /* model_version: the one version of the models used when they agree
     * (one training run), else each "name=version" in a fixed order. */
    static const char *const NAMES[] = {"customers", "segments", "churn", "cltv"};
    const char *first = version_of(m->manifest, "customers");
    int same = 1;
    for (size_t i = 1; i < 4; i++) {
        const char *v = version_of(m->manifest, NAMES[i]);
        same &= !v || (first && !strcmp(v, first));
    }
    if (same) {
        snprintf(m->version, sizeof m->version, "%s", first ? first : "");
    } else {
        size_t n = 0;
        for (size_t i = 0; i < 4; i++) {
            const char *v = version_of(m->manifest, NAMES[i]);
            if (v && n < sizeof m->version)
                n += (size_t)snprintf(m->version + n, sizeof m->version - n, "%s%s=%s",
                                      n ? ";" : "", NAMES[i], v);
        }
    }
    /* scored_at: the day the figures are as of, the training snapshot (the
     * day the models were written when trained from a customer summary). */
    const char *snap = json_string_value(json_object_get(
        json_object_get(json_object_get(m->manifest, "data"), "transactions"), "snapshot_date"));
    if (!snap)
        snap = json_string_value(json_object_get(m->manifest, "created_at"));
    snprintf(m->scored_at, sizeof m->scored_at, "%s", snap ? snap : "");
    return RFM_OK;
}

/* Replace each value of v[0..n-1] by its percentile among the non-NaN
 * ones: 100 x (below + equal / 2) / count, rounded to 0.01; ties share
 * one; NaN stays NaN. One sort of (value, index) pairs and a sweep, not a
 * binary search a row (random reads over the whole table); the sort is a
 * radix sort on the values' bits made unsigned-ordered (-0 as 0), four
 * passes of 16 bits, each skipped when every key has the same digit there
 * (a million customers: a fortieth of qsort's time). 0 when out of
 * memory (v unchanged). */
typedef struct {
    uint64_t k;
    size_t i;
} ranked;

static int to_percentiles(double *v, size_t n)
{
    ranked *r = malloc((n ? n : 1) * sizeof *r), *tmp = malloc((n ? n : 1) * sizeof *tmp);
    size_t *count = calloc(4 << 16, sizeof *count);
    if (!r || !tmp || !count) {
        free(r), free(tmp), free(count);
        return 0;
    }
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
    free(r), free(tmp), free(count);
    return 1;
}

/* One customer's output row; text for the numbers lives in the row's
 * parquet_value (doubles), formatted by the writer. */
typedef struct {
    parquet_value v[NCOL];
    char cluster_name[8];
} out_row;

static void fill_row(const models *m, const char *id, const customer_row *c, const score_result *r,
                     double churn_pct, double cltv_pct, out_row *o)
{
    memset(o->v, 0, sizeof o->v);
    for (int j = 0; j < NCOL; j++)
        o->v[j].is_null = 1;
#define STR(col, text)                                                                             \
    do {                                                                                           \
        o->v[col].s = (text), o->v[col].len = strlen(text), o->v[col].is_null = 0;                 \
    } while (0)
#define DBL(col, x) (o->v[col].d = (x), o->v[col].is_null = isnan(x))
    STR(C_ID, id);
    DBL(C_RECENCY, c->recency);
    DBL(C_FREQUENCY, c->frequency);
    DBL(C_MONETARY, c->monetary);
    if (r->done & SCORE_SEGMENTS) {
        STR(C_RFM_SCORE, r->seg.rfm_score);
        STR(C_RFM_SEGMENT, r->seg.rfm_segment);
        o->v[C_CLUSTER].i = (int64_t)r->seg.cluster, o->v[C_CLUSTER].is_null = 0;
        STR(C_SEGMENT, r->seg.segment);
    }
    if (r->done & SCORE_CHURN) {
        DBL(C_CHURN_P, r->churn_probability);
        STR(C_CHURN_RISK, churn_risk_name(r->risk));
        DBL(C_CHURN_PCT, churn_pct);
    }
    if (r->done & SCORE_CLTV) {
        DBL(C_P_ALIVE, r->cltv.p_alive);
        DBL(C_EXP_PURCHASES, r->cltv.expected_purchases);
        DBL(C_CLTV, r->cltv.cltv);
        DBL(C_CLTV_LOWER, r->cltv.lower);
        DBL(C_CLTV_UPPER, r->cltv.upper);
        DBL(C_CLTV_PCT, cltv_pct);
    }
    STR(C_MODEL_VERSION, m->version);
    STR(C_SCORED_AT, m->scored_at);
#undef STR
#undef DBL
}

/* A fingerprint of the columns --changed-since compares (all but
 * customer_id, model_version and scored_at), over their CSV text. */
static uint64_t fp_field(uint64_t h, const char *s, size_t n)
{
    h = hash_bytes(s, n, h);
    return hash_bytes("\x1f", 1, h);
}

static uint64_t row_fingerprint(const out_row *o)
{
    uint64_t h = 1;
    for (int j = C_RECENCY; j < C_MODEL_VERSION; j++) {
        const parquet_value *v = &o->v[j];
        char t[NUMFMT_LEN];
        size_t n = 0;
        if (v->is_null)
            n = 0;
        else if (COLS[j].type == PARQUET_STRING)
            h = fp_field(h, v->s, v->len), n = (size_t)-1;
        else if (COLS[j].type == PARQUET_INT64)
            n = (size_t)snprintf(t, sizeof t, "%lld", (long long)v->i);
        else
            n = numfmt_double(v->d, t);
        if (n != (size_t)-1)
            h = fp_field(h, t, n);
    }
    return h;
}

/* The previous export's rows by id: fingerprint of each. */
typedef struct {
    char **ids;
    uint64_t *fp;
    size_t n, cap;
    uint32_t *slots;
    size_t mask;
} previous;

static void previous_free(previous *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->ids[i]);
    free(p->ids), free(p->fp), free(p->slots);
}

static rfm_status previous_load(const char *path, previous *p, char *err, size_t errlen)
{
    csv_reader *r;
    rfm_status st = csv_open(path, &r, err, errlen);
    if (st != RFM_OK)
        return st;
    const csv_field *f;
    size_t n;
    int pos[NCOL];
    if ((st = csv_next(r, &f, &n, err, errlen)) != RFM_OK)
        goto out;
    for (int j = 0; j < NCOL; j++)
        if ((pos[j] = n ? csv_find(f, n, COLS[j].name) : -1) < 0) {
            st = rfm_fail(err, errlen, RFM_EPARSE,
                          "%s:1: no column %s: --changed-since takes a CSV rfm-score wrote", path,
                          COLS[j].name);
            goto out;
        }
    while ((st = csv_next(r, &f, &n, err, errlen)) == RFM_OK && n) {
        if (p->n == p->cap) {
            size_t cap = p->cap ? 2 * p->cap : 1024;
            char **ids = realloc(p->ids, cap * sizeof *ids);
            if (ids)
                p->ids = ids;
            uint64_t *fp = ids ? realloc(p->fp, cap * sizeof *fp) : NULL;
            if (!fp) {
                st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
                goto out;
            }
            p->fp = fp, p->cap = cap;
        }
        uint64_t h = 1;
        for (int j = C_RECENCY; j < C_MODEL_VERSION; j++) {
            if ((size_t)pos[j] >= n) {
                st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu: %zu fields, not %d", path,
                              (unsigned long long)csv_line(r), n, NCOL);
                goto out;
            }
            h = fp_field(h, f[pos[j]].s, f[pos[j]].len);
        }
        if (!(p->ids[p->n] = strdup(f[pos[C_ID]].s))) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            goto out;
        }
        p->fp[p->n++] = h;
    }
    if (st != RFM_OK)
        goto out;
    size_t cap = 16;
    while (cap < 2 * p->n)
        cap *= 2;
    if (!(p->slots = calloc(cap, sizeof *p->slots))) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    p->mask = cap - 1;
    for (size_t i = 0; i < p->n; i++) {
        size_t j = hash_bytes(p->ids[i], strlen(p->ids[i]), 7) & p->mask;
        while (p->slots[j])
            j = (j + 1) & p->mask;
        p->slots[j] = (uint32_t)(i + 1);
    }
out:
    csv_close(r);
    return st;
}

/* 1 when the previous export has id with the same fingerprint. */
static int previous_same(const previous *p, const char *id, uint64_t fp)
{
    if (!p->slots)
        return 0;
    for (size_t j = hash_bytes(id, strlen(id), 7) & p->mask; p->slots[j]; j = (j + 1) & p->mask)
        if (!strcmp(p->ids[p->slots[j] - 1], id))
            return p->fp[p->slots[j] - 1] == fp;
    return 0;
}

/* The customers scored: the training table, or the live state's. */
static size_t count_of(const models *m) { return m->cust ? customers_count(m->cust) : m->sn; }
static const customer_row *row_of(const models *m, size_t i)
{
    return m->cust ? customers_row(m->cust, i) : &m->srows[i];
}
static const char *id_of(const models *m, size_t i)
{
    return m->cust ? customers_id(m->cust, i) : m->sids[i];
}

/* state_each's callback: keep the customers with a purchase by the day,
 * their figures as GET /customers/{id} maps them (server/api.c by_id). */
typedef struct {
    models *m;
    size_t cap;
    int oom;
} collect;

static int collect_one(void *user, const char *id, const state_customer *c)
{
    collect *k = user;
    models *m = k->m;
    if (!c->f.active)
        return 0;
    if (m->sn == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 4096;
        char **ids = realloc(m->sids, cap * sizeof *ids);
        if (ids)
            m->sids = ids;
        customer_row *rows = ids ? realloc(m->srows, cap * sizeof *rows) : NULL;
        if (!rows)
            return k->oom = 1;
        m->srows = rows, k->cap = cap;
    }
    const txn_features *f = &c->f;
    if (!(m->sids[m->sn] = strdup(id)))
        return k->oom = 1;
    /* As GET /customers/{id} (server/api.c): the store keeps no trends. */
    m->srows[m->sn++] = (customer_row){f->recency, f->frequency, f->monetary,     f->bg_x,
                                       f->bg_t_x,  f->bg_T,      f->bg_mean_spend, NAN,
                                       NAN};
    return 0;
}

/* The customers of the store at path as of day (purchases on or before it). */
static rfm_status load_state(const char *path, int32_t day, models *m, char *err, size_t errlen)
{
    if (rstate_is_url(path))
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "--state: rfm-score reads a SQLite store only, not Redis (%.8s...); "
                        "score with the daemon's by-id calls instead (docs/events.md)",
                        path);
    if (access(path, F_OK) != 0)
        return rfm_fail(err, errlen, RFM_ENOTFOUND, "--state %s: %s", path, strerror(errno));
    state_options o;
    state_default_options(&o);
    state_store *st;
    rfm_status s = state_open(path, &o, &st, err, errlen);
    if (s != RFM_OK)
        return s;
    collect k = {m, 0, 0};
    s = state_each(st, day + 1, collect_one, &k, err, errlen);
    state_close(st);
    if (s == RFM_OK && k.oom)
        s = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for the state's customers");
    return s;
}

/* ---- the two passes, each over two threads -------------------------------
 * Pass 1 splits the table in halves, one thread each (each with its own
 * lifetime-value cache: score.h). Pass 2 keeps the rows in order: one
 * thread scores the next batch of rows while the main thread writes the
 * current one through the export writer (which formats the numbers). */
typedef struct {
    const models *m;
    score_models sm; /* a copy with this thread's cache */
    size_t from, to;
    int want;
    const char *const *segs;
    size_t nsegs;
    by_key by;
    double *pchurn, *pcltv, *key;
    unsigned char *keep;
    rfm_status st;
    size_t bad; /* the customer that failed */
    char err[RFM_ERRLEN];
} pass1_job;

static void *pass1(void *arg)
{
    pass1_job *j = arg;
    for (size_t i = j->from; i < j->to; i++) {
        score_result r;
        if ((j->st = score_customer(&j->sm, row_of(j->m, i), j->want, 1, &r, j->err,
                                    sizeof j->err)) != RFM_OK) {
            j->bad = i;
            return NULL;
        }
        j->pchurn[i] = r.done & SCORE_CHURN ? r.churn_probability : NAN;
        j->pcltv[i] = r.done & SCORE_CLTV ? r.cltv.cltv : NAN;
        if (j->keep) {
            j->keep[i] = 0;
            for (size_t s = 0; s < j->nsegs && (r.done & SCORE_SEGMENTS); s++)
                j->keep[i] |=
                    !strcmp(j->segs[s], r.seg.segment) || !strcmp(j->segs[s], r.seg.rfm_segment);
        }
        if (j->key)
            j->key[i] = j->by == BY_CLTV    ? j->pcltv[i]
                        : j->by == BY_CHURN ? j->pchurn[i]
                                            : j->pchurn[i] * j->pcltv[i];
    }
    return NULL;
}

enum { BATCH = 4096 };
typedef struct {
    const models *m;
    const score_models *sm;
    const size_t *order;
    const unsigned char *keep;
    const double *pchurn, *pcltv; /* percentiles */
    const double *churn;          /* pass 1's churn probabilities (NaN: none) */
    const previous *prev;         /* NULL: every row */
    erasure *erased;              /* customers left out (privacy.erasure_list), or NULL */
    int pseudonymized;
    size_t from, to;              /* positions in the output order */
    size_t count;                 /* rows to write */
    score_result r[BATCH];
    out_row o[BATCH];
    rfm_status st;
    const char *bad; /* the customer that failed */
    char err[RFM_ERRLEN];
} batch;

static void *score_batch(void *arg)
{
    batch *b = arg;
    b->count = 0, b->st = RFM_OK;
    for (size_t k = b->from; k < b->to; k++) {
        size_t i = b->order ? b->order[k] : k;
        if (!b->order && b->keep && !b->keep[i])
            continue;
        const customer_row *row = row_of(b->m, i);
        const char *id = id_of(b->m, i);
        if (erasure_has_id(b->erased, b->pseudonymized, id, strlen(id)))
            continue;
        score_result *r = &b->r[b->count];
        if ((b->st = score_customer(b->sm, row, SCORE_SEGMENTS | SCORE_CLTV, 1, r, b->err,
                                    sizeof b->err)) != RFM_OK) {
            b->bad = id;
            return NULL;
        }
        if (!isnan(b->churn[i])) { /* score_customer's churn part, from pass 1 */
            r->churn_probability = b->churn[i], r->done |= SCORE_CHURN;
            r->risk = churn_risk_level(b->sm->churn, r->churn_probability);
        }
        out_row *o = &b->o[b->count];
        fill_row(b->m, id, row, r, b->pchurn[i], b->pcltv[i], o);
        if (b->prev && previous_same(b->prev, id, row_fingerprint(o)))
            continue;
        b->count++;
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

int main(int argc, char **argv)
{
    const char *config_path = "config/rfm.yaml", *models_dir = NULL, *out_path = NULL;
    const char *changed = NULL, *by_name = NULL, *state_path = NULL, *asof_s = NULL;
    const char *segs[64];
    size_t nsegs = 0;
    long top = -1;
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"models", required_argument, 0, 'm'},
                                         {"out", required_argument, 0, 'o'},
                                         {"top", required_argument, 0, 't'},
                                         {"by", required_argument, 0, 'b'},
                                         {"segment", required_argument, 0, 's'},
                                         {"changed-since", required_argument, 0, 'C'},
                                         {"state", required_argument, 0, 'S'},
                                         {"as-of", required_argument, 0, 'A'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:m:o:t:b:s:C:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'm': models_dir = optarg; break;
        case 'o': out_path = optarg; break;
        case 't': {
            char *end;
            top = strtol(optarg, &end, 10);
            if (*end || end == optarg || top < 1) {
                fprintf(stderr, "rfm-score: --top: '%s' is not a whole number of at least 1\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'b': by_name = optarg; break;
        case 's':
            if (nsegs == sizeof segs / sizeof *segs) {
                fprintf(stderr, "rfm-score: --segment: at most 64\n");
                return 2;
            }
            segs[nsegs++] = optarg;
            break;
        case 'C': changed = optarg; break;
        case 'S': state_path = optarg; break;
        case 'A': asof_s = optarg; break;
        case 'q': say_quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rfm-score: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    int32_t asof = (int32_t)(time(NULL) / 86400); /* today, UTC, as the API */
    if (asof_s) {
        int y, mo, d;
        char tail;
        asof = sscanf(asof_s, "%4d-%2d-%2d%c", &y, &mo, &d, &tail) == 3 && strlen(asof_s) == 10
                   ? date_parse(asof_s, 10)
                   : DATE_NONE;
        if (asof == DATE_NONE || y < 1900) {
            fprintf(stderr,
                    "rfm-score: --as-of: must be a date YYYY-MM-DD from 1900 on, not '%s'\n",
                    asof_s);
            return 2;
        }
        if (!state_path) {
            fprintf(stderr, "rfm-score: --as-of goes with --state (without it the figures are "
                            "as of the training snapshot)\n");
            return 2;
        }
    }
    if (!out_path) {
        fprintf(stderr, "rfm-score: --out FILE is required\n");
        usage(stderr);
        return 2;
    }
    by_key by = BY_NONE;
    if (by_name) {
        if (!strcmp(by_name, "cltv"))
            by = BY_CLTV;
        else if (!strcmp(by_name, "churn"))
            by = BY_CHURN;
        else if (!strcmp(by_name, "value_at_risk"))
            by = BY_VALUE_AT_RISK;
        else if (!strcmp(by_name, "uplift_gain")) {
            fprintf(stderr, "rfm-score: --by uplift_gain: not available yet: the uplift model "
                            "scores campaign features that the customer table does not hold\n");
            return 2;
        } else {
            fprintf(stderr, "rfm-score: --by: unknown key '%s' (cltv, churn, value_at_risk)\n",
                    by_name);
            return 2;
        }
    }
    if ((top > 0) != (by != BY_NONE)) {
        fprintf(stderr, "rfm-score: --top N and --by KEY go together\n");
        return 2;
    }
    char err[RFM_ERRLEN];
    export_format fmt;
    if (export_format_of(out_path, &fmt, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-score: --out: %s\n", err);
        return 2;
    }
    gsl_set_error_handler_off();
    rfm_config *cfg;
    if (config_load(config_path, &cfg, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-score: %s\n", err);
        return 2;
    }
    if (!models_dir)
        models_dir = cfg->models_dir;
    /* Customers erased since the training (privacy.erasure_list) are left
     * out of every export. */
    erasure *erased = NULL;
    if (cfg->privacy.erasure_list &&
        erasure_open(cfg->privacy.erasure_list, &erased, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-score: privacy.erasure_list: %s\n", err);
        config_free(cfg);
        return 2;
    }

    int rc = 1;
    double t0 = monotime_s();
    models m;
    memset(&m, 0, sizeof m);
    previous prev;
    memset(&prev, 0, sizeof prev);
    double *pchurn = NULL, *pcltv = NULL, *key = NULL, *churn = NULL;
    size_t *order = NULL;
    unsigned char *keep = NULL;
    batch *bt[2] = {NULL, NULL};
    export_writer *w = NULL;
    if (load_models(models_dir, !state_path, &m, err, sizeof err) != RFM_OK ||
        (state_path && load_state(state_path, asof, &m, err, sizeof err) != RFM_OK)) {
        fprintf(stderr, "rfm-score: %s\n", err);
        goto out;
    }
    if (state_path) /* the figures are as of the day asked */
        date_format(asof, m.scored_at);
    if (by == BY_CLTV && !m.cltv) {
        fprintf(stderr, "rfm-score: --by cltv: model cltv is not trained\n");
        rc = 2;
        goto out;
    }
    if ((by == BY_CHURN || by == BY_VALUE_AT_RISK) &&
        (!m.churn || (by == BY_VALUE_AT_RISK && !m.cltv))) {
        fprintf(stderr, "rfm-score: --by %s: needs the churn%s model, which is not trained\n",
                by_name, by == BY_VALUE_AT_RISK ? " and cltv" : "");
        rc = 2;
        goto out;
    }
    for (size_t i = 0; i < nsegs; i++)
        if (!m.segments || !known_segment(m.segments, segs[i])) {
            fprintf(stderr,
                    "rfm-score: --segment: unknown segment '%s' (a cluster segment, see "
                    "rfm-train --print-clusters, or an RFM segment of the config)\n",
                    segs[i]);
            rc = 2;
            goto out;
        }
    if (changed && previous_load(changed, &prev, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-score: --changed-since: %s\n", err);
        goto out;
    }

    /* Pass 1: the percentile keys, the filter and the targeting key. */
    size_t n = count_of(&m), ntop = 0;
    pchurn = malloc((n ? n : 1) * sizeof *pchurn);
    pcltv = malloc((n ? n : 1) * sizeof *pcltv);
    keep = nsegs ? malloc(n ? n : 1) : NULL;
    key = by != BY_NONE ? malloc((n ? n : 1) * sizeof *key) : NULL;
    if (!pchurn || !pcltv || (nsegs && !keep) || (by != BY_NONE && !key)) {
        fprintf(stderr, "rfm-score: out of memory for %zu customers\n", n);
        goto out;
    }
    int want1 = SCORE_CHURN | SCORE_CHURN_POINT | SCORE_CLTV | SCORE_CLTV_POINT |
                (nsegs ? SCORE_SEGMENTS : 0);
    pass1_job jobs[2];
    pthread_t th1;
    for (int t = 0; t < 2; t++) {
        pass1_job *j = &jobs[t];
        memset(j, 0, sizeof *j);
        j->m = &m, j->sm = m.sm, j->want = want1, j->segs = segs, j->nsegs = nsegs, j->by = by;
        j->pchurn = pchurn, j->pcltv = pcltv, j->key = key, j->keep = keep;
        j->from = t ? n / 2 : 0, j->to = t ? n : n / 2;
        j->sm.cltv_cache = t ? m.cache2 : m.sm.cltv_cache;
    }
    int threaded = pthread_create(&th1, NULL, pass1, &jobs[1]) == 0;
    pass1(&jobs[0]);
    if (threaded)
        pthread_join(th1, NULL);
    else
        pass1(&jobs[1]);
    for (int t = 0; t < 2; t++)
        if (jobs[t].st != RFM_OK) {
            fprintf(stderr, "rfm-score: customer '%s': %s\n", id_of(&m, jobs[t].bad), jobs[t].err);
            goto out;
        }
    /* From here on pchurn and pcltv hold percentiles; churn the probabilities. */
    if ((churn = malloc((n ? n : 1) * sizeof *churn)))
        memcpy(churn, pchurn, n * sizeof *churn);
    if (!churn || !to_percentiles(pchurn, n) || !to_percentiles(pcltv, n)) {
        fprintf(stderr, "rfm-score: out of memory for %zu customers\n", n);
        goto out;
    }
    /* The targeting list: the eligible customers by key, highest first. */
    if (key) {
        if (!(order = malloc((n ? n : 1) * sizeof *order))) {
            fprintf(stderr, "rfm-score: out of memory for %zu customers\n", n);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (!isnan(key[i]) && (!keep || keep[i]) &&
                !erasure_has_id(erased, cfg->privacy.pseudonymize_ids, id_of(&m, i),
                                strlen(id_of(&m, i))))
                order[ntop++] = i;
        qsort_r(order, ntop, sizeof *order, cmp_top, key);
        if (ntop > (size_t)top)
            ntop = (size_t)top;
    }

    /* Pass 2: score again and stream the rows out. */
    if (export_open(out_path, COLS, NCOL, &w, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-score: %s\n", err);
        goto out;
    }
    size_t total = order ? ntop : n, written = 0;
    double last = monotime_s();
    if (!(bt[0] = malloc(sizeof *bt[0])) || !(bt[1] = malloc(sizeof *bt[1]))) {
        fprintf(stderr, "rfm-score: out of memory\n");
        goto out;
    }
    for (int t = 0; t < 2; t++) {
        batch *b = bt[t];
        b->m = &m, b->sm = &m.sm, b->order = order, b->keep = keep;
        b->pchurn = pchurn, b->pcltv = pcltv, b->churn = churn, b->prev = changed ? &prev : NULL;
        b->erased = erased, b->pseudonymized = cfg->privacy.pseudonymize_ids;
    }
    bt[0]->from = 0, bt[0]->to = total < BATCH ? total : BATCH;
    score_batch(bt[0]);
    for (int cur = 0;; cur ^= 1) {
        batch *b = bt[cur], *next = bt[cur ^ 1];
        if (b->st != RFM_OK) {
            fprintf(stderr, "rfm-score: customer '%s': %s\n", b->bad, b->err);
            goto out;
        }
        /* Score the next batch while this one is written. */
        pthread_t th2;
        int more = b->to < total, started = 0;
        if (more) {
            next->from = b->to, next->to = total - b->to < BATCH ? total : b->to + BATCH;
            started = pthread_create(&th2, NULL, score_batch, next) == 0;
        }
        rfm_status wst = RFM_OK;
        for (size_t r = 0; r < b->count && wst == RFM_OK; r++)
            if ((wst = export_row(w, b->o[r].v, err, sizeof err)) == RFM_OK)
                written++;
        if (started)
            pthread_join(th2, NULL);
        else if (more)
            score_batch(next);
        if (wst != RFM_OK) {
            fprintf(stderr, "rfm-score: %s\n", err);
            goto out;
        }
        if (!more)
            break;
        if (!say_quiet && total >= 100000 && monotime_s() - last >= 1) {
            last = monotime_s();
            say("rfm-score: %zu of %zu customers, %.0f rows/s\n", b->to, total,
                (double)b->to / (last - t0));
        }
    }
    rfm_status st = export_commit(w, err, sizeof err);
    w = NULL;
    if (st != RFM_OK) {
        fprintf(stderr, "rfm-score: %s\n", err);
        goto out;
    }
    double el = monotime_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    say("rfm-score: wrote %s: %zu rows of %zu customers in %.3f s (%.0f rows/s), peak RSS %.1f "
        "MB\n",
        out_path, written, n, el, el > 0 ? (double)n / el : 0.0, (double)ru.ru_maxrss / 1024);
    rc = 0;
out:
    export_abort(w);
    free(pchurn), free(pcltv), free(churn), free(key), free(order), free(keep);
    free(bt[0]), free(bt[1]);
    previous_free(&prev);
    models_free(&m);
    erasure_free(erased);
    config_free(cfg);
    return rc;
}
