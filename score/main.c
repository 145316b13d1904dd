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
 * Workload: millions of customers. Two passes over the customer table
 * (core/files/bulk.h, shared with rfm-serve's GET /exports/customers.csv):
 * the first computes the percentile keys (churn probability and CLTV:
 * 32 bytes a customer with their sorted copies; and the churn probability,
 * which is not computed twice), the filters and the ranking; the second
 * scores again and streams each row out; beyond the models and those
 * arrays, memory does not grow with the customers.
 *
 * With --state, the customers are those of the live customer-state store
 * (core/files/state.h) with a purchase by --as-of (default today), their
 * features as GET /customers/{id} computes them; they are read into memory
 * first (state_each), like the training table.
 *
 * --by uplift_gain ranks by the uplift model's expected net gain, which
 * needs campaign features: from the rows of the campaign file that name a
 * customer in the config's uplift.id_column (core/models/gains.h);
 * customers without such a row are left out of that list, and counted.
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
#include "bulk.h"
#include "export.h"
#include "gains.h"
#include "hash.h"
#include "modelfile.h"
#include "numfmt.h"
#include "score.h"
#include "segments.h"
#include "state.h"
#include "uplift.h"
#include "monotime.h"
#include "say.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: rfm-score [--config FILE] [--models DIR] [--state PATH [--as-of DATE]]\n"
               "                 --out FILE\n"
               "                 [--top N --by cltv|churn|value_at_risk|uplift_gain]\n"
               "                 [--segment NAME]... [--min-p-alive P] [--campaign FILE]\n"
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
               "                       highest first: cltv, churn (churn probability),\n"
               "                       value_at_risk (churn probability x cltv) or uplift_gain\n"
               "                       (the uplift model's expected net gain, from the rows of\n"
               "                       the campaign file naming the customer in the config's\n"
               "                       uplift.id_column; customers without one left out)\n"
               "  --min-p-alive P      only customers whose P(alive) is at least P (0 to 1)\n"
               "  --campaign FILE      with --by uplift_gain: the campaign file (default\n"
               "                       uplift.campaign)\n"
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

               "Exit status: 0 success, 1 bad models or data or a failed write, 2 bad usage.\n");
}

typedef struct {
    json_t *manifest;
    segments_model *segments;
    cltv_model *cltv;
    churn_model *churn;
    customers *cust;  /* the training customers; or, with --state: */
    bulk_state state; /* the live state's customers as of a day */
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
    bulk_state_free(&m->state);
    cltv_cache_free(m->sm.cltv_cache);
    cltv_cache_free(m->cache2);
    json_decref(m->manifest);
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
        if ((st = cltv_cache_new(m->cltv, m->sm.horizon_days, m->sm.discount_rate, 1,
                                 (size_t)128 << 20, t ? &m->cache2 : &m->sm.cltv_cache, err,
                                 errlen)) != RFM_OK)
            return st;
    /* model_version (one training run's version, or each model's) and
     * scored_at: the training snapshot (the day the models were written
     * when trained from a customer summary). */
    bulk_model_version(m->manifest, m->version, sizeof m->version);
    bulk_snapshot_day(m->manifest, m->scored_at);
    return RFM_OK;
}

/* A fingerprint of the columns --changed-since compares (all but
 * customer_id, model_version and scored_at), over their CSV text. */
static uint64_t fp_field(uint64_t h, const char *s, size_t n)
{
    h = hash_bytes(s, n, h);
    return hash_bytes("\x1f", 1, h);
}

static uint64_t row_fingerprint(const bulk_row *o)
{
    uint64_t h = 1;
    const parquet_column *cols = bulk_columns();
    for (int j = BULK_RECENCY; j < BULK_MODEL_VERSION; j++) {
        const parquet_value *v = &o->v[j];
        char t[NUMFMT_LEN];
        size_t n = 0;
        if (v->is_null)
            n = 0;
        else if (cols[j].type == PARQUET_STRING)
            h = fp_field(h, v->s, v->len), n = (size_t)-1;
        else if (cols[j].type == PARQUET_INT64)
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
    int pos[BULK_NCOL];
    const parquet_column *cols = bulk_columns();
    if ((st = csv_next(r, &f, &n, err, errlen)) != RFM_OK)
        goto out;
    for (int j = 0; j < BULK_NCOL; j++)
        if ((pos[j] = n ? csv_find(f, n, cols[j].name) : -1) < 0) {
            st = rfm_fail(err, errlen, RFM_EPARSE,
                          "%s:1: no column %s: --changed-since takes a CSV rfm-score wrote", path,
                          cols[j].name);
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
        for (int j = BULK_RECENCY; j < BULK_MODEL_VERSION; j++) {
            if ((size_t)pos[j] >= n) {
                st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu: %zu fields, not %d", path,
                              (unsigned long long)csv_line(r), n, BULK_NCOL);
                goto out;
            }
            h = fp_field(h, f[pos[j]].s, f[pos[j]].len);
        }
        if (!(p->ids[p->n] = strdup(f[pos[BULK_ID]].s))) {
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
    s = state_each(st, day + 1, bulk_state_collect, &m->state, err, errlen);
    state_close(st);
    if (s == RFM_OK && m->state.oom)
        s = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for the state's customers");
    return s;
}

/* The uplift gains of --by uplift_gain (core/models/gains.h): the uplift
 * model of dir scores each row of the campaign file that names a customer
 * in cfg's uplift.id_column. 0, or the exit status with a message. */
static int load_gains(const char *dir, const json_t *manifest, const rfm_config *cfg,
                      const char *campaign, gains **out)
{
    char err[RFM_ERRLEN];
    if (!cfg->uplift_id_column) {
        fprintf(stderr, "rfm-score: --by uplift_gain: needs uplift.id_column in the config, the "
                        "campaign file's customer-id column: the uplift model scores campaign "
                        "features, which the customer table does not hold (docs/exports.md)\n");
        return 2;
    }
    if (!campaign) {
        fprintf(stderr, "rfm-score: --by uplift_gain: no campaign file (uplift.campaign or "
                        "--campaign FILE)\n");
        return 2;
    }
    if (!json_object_get(json_object_get(manifest, "models"), "uplift")) {
        fprintf(stderr, "rfm-score: --by uplift_gain: model uplift is not trained (rfm-train "
                        "--only uplift)\n");
        return 2;
    }
    json_t *j;
    uplift_model *um = NULL;
    campaign_encoding *enc = NULL;
    rfm_status st = modelfile_load(dir, manifest, "uplift", &j, err, sizeof err);
    if (st == RFM_OK) {
        if ((st = uplift_from_json(json_object_get(j, "fitted"), &um, err, sizeof err)) == RFM_OK)
            st = campaign_encoding_from_json(json_object_get(j, "encoding"), &enc, err, sizeof err);
        json_decref(j);
    }
    gains_counts c;
    if (st == RFM_OK)
        st = gains_load(campaign, cfg->uplift_id_column, um, enc, cfg->uplift_value,
                        cfg->uplift_cost, out, &c, err, sizeof err);
    uplift_free(um);
    campaign_encoding_free(enc);
    if (st != RFM_OK) {
        fprintf(stderr, "rfm-score: --by uplift_gain: %s\n", err);
        return 1;
    }
    say("rfm-score: uplift gains of %zu customers from %zu rows of %s (%zu duplicate ids, %zu "
        "rows refused)\n",
        c.customers, c.rows, campaign, c.duplicates, c.refused);
    return 0;
}

/* ---- pass 2 over two threads ---------------------------------------------
 * Pass 1 is bulk_plan_new's (core/files/bulk.h), on two threads, each
 * over half the table with its own lifetime-value cache (score.h). Pass 2
 * keeps the rows in order: the positions are cut into batches, two workers
 * (each with its own score_models) take the next batch as soon as they are
 * done with one and, for the text formats, format its rows into a part
 * (export.h); the main thread writes the batches in order as they are done:
 * splices their parts, or for Parquet writes their rows, which only one
 * thread can do. A batch's slot is reused once written, so the workers run
 * at most NSLOT batches ahead of the writer and never wait for each other
 * (rounds of two batches, joined together, kept a core idle for the slower
 * one's tail: about a third of pass 2). */
enum { BATCH = 4096, NSLOT = 6, NWORKER = 2 };
typedef struct {
    const bulk_plan *plan;
    const score_models *sm;
    const previous *prev; /* NULL: every row */
    export_writer *part;  /* the rows' text (CSV, JSON Lines); NULL: Parquet */
    size_t from, to;      /* positions in the output order */
    size_t count;         /* rows to write */
    int done;             /* scored: the writer's turn */
    bulk_row o[BATCH];
    rfm_status st;
    char err[RFM_ERRLEN];
} batch;

static void score_batch(batch *b)
{
    b->count = 0, b->st = RFM_OK;
    for (size_t k = b->from; k < b->to; k++) {
        bulk_row *o = &b->o[b->part ? 0 : b->count];
        int written;
        if ((b->st = bulk_row_at(b->plan, b->sm, k, o, &written, b->err, sizeof b->err)) != RFM_OK)
            return;
        if (!written || (b->prev && previous_same(b->prev, o->id, row_fingerprint(o))))
            continue;
        if (b->part && (b->st = export_row(b->part, o->v, b->err, sizeof b->err)) != RFM_OK)
            return;
        b->count++;
    }
}

/* The batches of positions 0..total-1 and their slots: batch i in slot
 * i % NSLOT once batch i - NSLOT is written. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t changed;
    batch *slot[NSLOT];
    size_t total, nbatch;
    size_t next;    /* the next batch a worker takes */
    size_t written; /* batches written */
    int stop;       /* the writer gave up */
} pass2;

typedef struct {
    pass2 *q;
    const score_models *sm;
} worker;

static void *work(void *arg)
{
    worker *wk = arg;
    pass2 *q = wk->q;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->stop && q->next < q->nbatch && q->next >= q->written + NSLOT)
            pthread_cond_wait(&q->changed, &q->mu);
        if (q->stop || q->next >= q->nbatch)
            break;
        size_t i = q->next++;
        batch *b = q->slot[i % NSLOT];
        b->from = i * BATCH, b->to = b->from + BATCH < q->total ? b->from + BATCH : q->total;
        b->sm = wk->sm, b->done = 0;
        pthread_mutex_unlock(&q->mu);
        score_batch(b);
        pthread_mutex_lock(&q->mu);
        b->done = 1;
        pthread_cond_broadcast(&q->changed);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *config_path = "config/rfm.yaml", *models_dir = NULL, *out_path = NULL;
    const char *changed = NULL, *by_name = NULL, *state_path = NULL, *asof_s = NULL;
    const char *campaign = NULL;
    const char *segs[64];
    size_t nsegs = 0;
    long top = 0;
    double min_p_alive = NAN;
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"models", required_argument, 0, 'm'},
                                         {"out", required_argument, 0, 'o'},
                                         {"top", required_argument, 0, 't'},
                                         {"by", required_argument, 0, 'b'},
                                         {"segment", required_argument, 0, 's'},
                                         {"min-p-alive", required_argument, 0, 'P'},
                                         {"campaign", required_argument, 0, 'K'},
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
        case 'P': {
            char *end;
            min_p_alive = strtod(optarg, &end);
            if (*end || end == optarg || !(min_p_alive >= 0 && min_p_alive <= 1)) {
                fprintf(stderr, "rfm-score: --min-p-alive: '%s' is not a number from 0 to 1\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'C': changed = optarg; break;
        case 'K': campaign = optarg; break;
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
    bulk_filter flt = {BULK_BY_NONE, (size_t)top, segs, nsegs, min_p_alive};
    if (by_name) {
        int by = bulk_by_parse(by_name);
        if (by < 0) {
            fprintf(stderr,
                    "rfm-score: --by: unknown key '%s' (cltv, churn, value_at_risk, uplift_gain)\n",
                    by_name);
            return 2;
        }
        flt.by = (bulk_by)by;
    }
    if ((top > 0) != (flt.by != BULK_BY_NONE)) {
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
    bulk_plan *plan = NULL;
    gains *gn = NULL;
    batch *bt[NSLOT] = {NULL};
    export_writer *w = NULL;
    if (load_models(models_dir, !state_path, &m, err, sizeof err) != RFM_OK ||
        (state_path && load_state(state_path, asof, &m, err, sizeof err) != RFM_OK)) {
        fprintf(stderr, "rfm-score: %s\n", err);
        goto out;
    }
    if (state_path) /* the figures are as of the day asked */
        date_format(asof, m.scored_at);
    bulk_input in = {m.cust,    m.state.ids, m.state.rows, m.state.n,
                     m.version, m.scored_at, erased,       cfg->privacy.pseudonymize_ids,
                     NULL,      NULL};
    if (flt.by == BULK_BY_UPLIFT_GAIN) {
        int bad = load_gains(models_dir, m.manifest, cfg, campaign ? campaign : cfg->campaign, &gn);
        if (bad) {
            rc = bad;
            goto out;
        }
        in.gain_of = gains_lookup, in.gain_ctx = gn;
    }
    const char *why = bulk_filter_check(&m.sm, &flt, &in, err, sizeof err);
    if (why) {
        fprintf(stderr, "rfm-score: --%s\n", why);
        rc = 2;
        goto out;
    }
    if (changed && previous_load(changed, &prev, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-score: --changed-since: %s\n", err);
        goto out;
    }

    double t_load = monotime_s();
    /* Pass 1: the percentile keys, the filters and the targeting key. */
    score_models sm2[2] = {m.sm, m.sm};
    sm2[1].cltv_cache = m.cache2;
    if (bulk_plan_new(&in, &flt, sm2, 2, &plan, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-score: %s\n", err);
        goto out;
    }
    size_t n = bulk_customers(plan);
    double t_pass1 = monotime_s();
    if (gn) {
        size_t have = 0;
        for (size_t i = 0; i < n; i++)
            have += !isnan(gains_of(gn, m.cust ? customers_id(m.cust, i) : m.state.ids[i]));
        say("rfm-score: --by uplift_gain: %zu of %zu customers have a gain; the other %zu are "
            "left out of the list\n",
            have, n, n - have);
    }

    /* Pass 2: score again and stream the rows out. */
    if (export_open(out_path, bulk_columns(), BULK_NCOL, &w, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-score: %s\n", err);
        goto out;
    }
    size_t total = bulk_positions(plan), written = 0;
    double last = monotime_s();
    int text = fmt != EXPORT_PARQUET;
    for (int t = 0; t < NSLOT; t++) {
        if (!(bt[t] = calloc(1, sizeof *bt[t])) ||
            (text && export_open_part(w, &bt[t]->part, err, sizeof err) != RFM_OK)) {
            fprintf(stderr, "rfm-score: out of memory\n");
            goto out;
        }
        bt[t]->plan = plan, bt[t]->prev = changed ? &prev : NULL;
    }
    pass2 q = {.total = total, .nbatch = (total + BATCH - 1) / BATCH};
    memcpy(q.slot, bt, sizeof q.slot);
    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.changed, NULL);
    worker wk[NWORKER];
    pthread_t th[NWORKER];
    int started[NWORKER], alone = 1; /* alone: no worker, the writer scores each batch */
    for (int t = 0; t < NWORKER; t++) {
        wk[t] = (worker){&q, &sm2[t]};
        started[t] = pthread_create(&th[t], NULL, work, &wk[t]) == 0;
        alone &= !started[t];
    }
    rfm_status wst = RFM_OK;
    const char *failed = NULL;
    for (size_t i = 0; i < q.nbatch; i++) {
        batch *b = q.slot[i % NSLOT];
        if (alone) {
            b->from = i * BATCH, b->to = b->from + BATCH < total ? b->from + BATCH : total;
            b->sm = &sm2[0];
            score_batch(b);
        } else {
            pthread_mutex_lock(&q.mu);
            while (!(b->done && b->from == i * BATCH))
                pthread_cond_wait(&q.changed, &q.mu);
            pthread_mutex_unlock(&q.mu);
        }
        if (b->st != RFM_OK) {
            failed = b->err;
        } else if (b->part) {
            if ((wst = export_splice(w, b->part, err, sizeof err)) == RFM_OK)
                written += b->count;
        } else {
            for (size_t k = 0; k < b->count && wst == RFM_OK; k++)
                if ((wst = export_row(w, b->o[k].v, err, sizeof err)) == RFM_OK)
                    written++;
        }
        pthread_mutex_lock(&q.mu);
        b->done = 0;
        q.written = i + 1;
        q.stop = failed || wst != RFM_OK;
        pthread_cond_broadcast(&q.changed);
        pthread_mutex_unlock(&q.mu);
        if (q.stop)
            break;
        if (!say_quiet && total >= 100000 && monotime_s() - last >= 1) {
            last = monotime_s();
            say("rfm-score: %zu of %zu customers, %.0f rows/s\n", b->to, total,
                (double)b->to / (last - t0));
        }
    }
    for (int t = 0; t < NWORKER; t++)
        if (started[t])
            pthread_join(th[t], NULL);
    pthread_cond_destroy(&q.changed);
    pthread_mutex_destroy(&q.mu);
    if (failed || wst != RFM_OK) {
        fprintf(stderr, "rfm-score: %s\n", failed ? failed : err);
        goto out;
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
        "MB; load %.2f s, pass 1 %.2f s, pass 2 %.2f s\n",
        out_path, written, n, el, el > 0 ? (double)n / el : 0.0, (double)ru.ru_maxrss / 1024,
        t_load - t0, t_pass1 - t_load, t0 + el - t_pass1);
    rc = 0;
out:
    export_abort(w);
    bulk_plan_free(plan);
    gains_free(gn);
    for (int t = 0; t < NSLOT; t++)
        if (bt[t])
            export_part_free(bt[t]->part), free(bt[t]);
    previous_free(&prev);
    models_free(&m);
    erasure_free(erased);
    config_free(cfg);
    return rc;
}
