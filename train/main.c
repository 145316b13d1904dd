/* rfm-train - transactions to a versioned models/ folder.
 *
 * Parses options, reads the config, calls core/ to read and clean the
 * transactions and to fit each model, and stages the files through
 * core/modelfile so that models/ changes all at once or not at all. Holds
 * no model math; prints what it did on stderr. Each model is one step of
 * the STEPS table (--only picks steps by name); save_model is the one way a
 * model's file, card and manifest entry land in the stage.
 *
 * Exit status: 0 success, 1 bad data, a failed fit or the models folder
 * being written by another run (without --wait), 2 bad usage or config.
 */
#include <errno.h>
#include <getopt.h>
#include <gsl/gsl_errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "analytics.h"
#include "ann.h"
#include "cards.h"
#include "cltv.h"
#include "config.h"
#include "erasure.h"
#include "customers.h"
#include "embeddings.h"
#include "fileio.h"
#include "train_churn.h"
#include "train_uplift.h"
#include "date.h"
#include "modelfile.h"
#include "segments.h"
#include "sha256.h"
#include "source.h"
#include "txn.h"
#include "versions.h"
#include "monotime.h"
#include "say.h"

#define VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f, "usage: rfm-train [--config FILE] [--transactions FILE | --summary FILE]\n"
               "                 [--models DIR] [--only LIST] [--wait] [--quiet] [--threads N]\n"
               "       rfm-train [--config FILE] [--models DIR] --print-clusters\n"
               "\n"
               "Reads a transaction export (CSV or CSV.gz), cleans it, fits the models and\n"
               "writes them to the models folder (default from the config: models/).\n"
               "\n"
               "  --config FILE        configuration (default config/rfm.yaml)\n"
               "  --transactions FILE  override data.transactions from the config: a CSV or\n"
               "                       CSV.gz file, - for standard input (plain or gzip), or a\n"
               "                       postgresql:// or sqlite:// URL read with data.query\n"
               "  --campaign FILE      override uplift.campaign (a randomised campaign log)\n"
               "  --summary FILE       fit the lifetime-value models from a customer summary\n"
               "                       CSV: customer_id,frequency,recency,T,monetary_value\n"
               "                       (lifetimes' convention, days); other models are skipped\n"
               "  --models DIR         override models_dir from the config\n"
               "  --only LIST          refit only these models, keep the others; LIST is\n"
               "                       comma-separated from: segments, cltv, churn, embeddings,\n"
               "                       uplift, analytics (analytics also runs after any of\n"
               "                       segments, cltv and churn, whose figures it sums)\n"
               "  --wait               when another run is writing the same models folder\n"
               "                       (it holds the lock file DIR.lock beside it), wait\n"
               "                       for it to finish instead of exiting 1 naming it; runs\n"
               "                       take turns, so two --only runs both land\n"
               "  --print-clusters     print the clusters summary of the trained models\n"
               "  --quiet              no progress or report on stderr\n"
               "  --threads N          threads that read a CSV export and fit models at\n"
               "                       once (default: the online cores, at most 16; 1\n"
               "                       does all on one thread; the models are the same\n"
               "                       either way; the thread that reads the file counts\n"
               "                       as one of them)\n"
               "  --help               this text\n"
               "\n"
               "Exit status: 0 success, 1 bad data, failed fit or models folder in use,\n"
               "2 bad usage or config.\n");
}

static int read_threads; /* --threads (reading, steps at once); 0: the online cores */
typedef struct {
    double start;
    int shown;
} progress_state;

static void progress(uint64_t lines, uint64_t bytes, uint64_t total, void *user)
{
    progress_state *p = user;
    if (say_quiet || total < (64u << 20)) /* small inputs finish before a line is worth it */
        return;
    double el = monotime_s() - p->start;
    say("rfm-train: %llu lines, %.2f M lines/s, %.0f%%\n", (unsigned long long)lines,
        el > 0 ? (double)lines / el / 1e6 : 0.0,
        total ? 100.0 * (double)bytes / (double)total : 0.0);
    p->shown = 1;
}

static json_t *cleaning_json(const txn_report *r)
{
    json_t *drop = json_object();
    for (int i = 0; i < TXN_NREASONS; i++) {
        json_t *ex = json_array();
        for (int k = 0; k < TXN_EXAMPLES && r->examples[i][k]; k++)
            json_array_append_new(ex, json_integer((json_int_t)r->examples[i][k]));
        json_object_set_new(
            drop, txn_reason_name((txn_reason)i),
            json_pack("{s:I,s:o}", "count", (json_int_t)r->count[i], "example_lines", ex));
    }
    return json_pack("{s:I,s:I,s:o}", "lines", (json_int_t)r->lines, "used", (json_int_t)r->used,
                     "dropped", drop);
}

static void print_report(const char *path, const txn_report *r, double secs)
{
    say("rfm-train: read %s: %llu lines in %.3f s (%.2f M lines/s)\n", path,
        (unsigned long long)r->lines, secs, secs > 0 ? (double)r->lines / secs / 1e6 : 0.0);
    say("  used                  %10llu\n", (unsigned long long)r->used);
    for (int i = 0; i < TXN_NREASONS; i++) {
        if (!r->count[i])
            continue;
        say("  %-21s %10llu  e.g. line", txn_reason_name((txn_reason)i),
            (unsigned long long)r->count[i]);
        for (int k = 0; k < TXN_EXAMPLES && r->examples[i][k]; k++)
            say("%s %llu", k ? "," : "", (unsigned long long)r->examples[i][k]);
        say("\n");
    }
}

static json_t *segments_metrics(const segments_model *m)
{
    json_t *sizes = json_array();
    for (size_t c = 0; c < segments_nclusters(m); c++) {
        segments_cluster_info ci;
        segments_cluster(m, c, &ci);
        json_array_append_new(sizes, json_pack("{s:s,s:I}", "segment", ci.segment, "customers",
                                               (json_int_t)ci.customers));
    }
    double sil = segments_silhouette(m);
    return json_pack("{s:I,s:I,s:o,s:o}", "customers", (json_int_t)segments_ncustomers(m), "k",
                     (json_int_t)segments_nclusters(m), "silhouette",
                     isnan(sil) ? json_null() : json_real(sil), "clusters", sizes);
}

static int print_clusters(const char *dir)
{
    char err[RFM_ERRLEN];
    json_t *man, *j;
    segments_model *m;
    if (modelfile_open(dir, &man, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-train: %s\n", err);
        return 1;
    }
    rfm_status st = modelfile_load(dir, man, "segments", &j, err, sizeof err);
    json_decref(man);
    if (st == RFM_OK) {
        st = segments_from_json(j, &m, err, sizeof err);
        json_decref(j);
    }
    if (st != RFM_OK) {
        fprintf(stderr, "rfm-train: %s\n", err);
        return 1;
    }
    printf("%-3s %-22s %9s %6s %9s %9s %11s  %s\n", "#", "cluster", "customers", "share", "recency",
           "frequency", "monetary", "strategy");
    for (size_t c = 0; c < segments_nclusters(m); c++) {
        segments_cluster_info ci;
        segments_cluster(m, c, &ci);
        printf("%-3zu %-22s %9zu %5.1f%% %9.1f %9.2f %11.2f  %s\n", c, ci.segment, ci.customers,
               100 * ci.share, ci.mean[0], ci.mean[1], ci.mean[2], ci.strategy);
        if (ci.rule) {
            char rule[256];
            segments_rule_text(ci.rule, rule, sizeof rule);
            printf("    rule: %s (%.0f%% of this cluster, %.0f%% of others)\n", rule,
                   100.0 * (double)ci.rule->tp / (double)(ci.rule->npos ? ci.rule->npos : 1),
                   100.0 * (double)ci.rule->fp / (double)(ci.rule->nneg ? ci.rule->nneg : 1));
        }
    }
    printf("(means per cluster; recency in days, monetary in the data's currency)\n");
    segments_free(m);
    return 0;
}

static json_t *cltv_metrics(const cltv_model *c, const cltv_holdout *h)
{
    const bgnbd_fit_result *b = cltv_bgnbd(c);
    const gg_fit_result *g = cltv_gg(c);
    json_t *j = json_pack("{s:{s:f,s:f,s:f,s:f,s:f},s:{s:f,s:f,s:f,s:f,s:f}}", "bgnbd", "r", b->p.r,
                          "alpha", b->p.alpha, "a", b->p.a, "b", b->p.b, "log_likelihood",
                          b->loglik, "gamma_gamma", "p", g->p.p, "q", g->p.q, "v", g->p.v,
                          "log_likelihood", g->loglik, "corr_frequency_spend", g->corr_freq_spend);
    if (j && h->ok)
        json_object_set_new(j, "holdout",
                            json_pack("{s:i,s:I,s:f,s:f,s:f,s:f}", "days", h->days, "customers",
                                      (json_int_t)h->total_n, "actual", h->total_actual,
                                      "predicted", h->total_predicted, "mae", h->mae, "rmse",
                                      h->rmse));
    return j;
}

/* What a run has read, and where it writes: shared by read_input and the
 * steps. The customer arrays hold the m customers active at the snapshot
 * (from the transactions) or the summary's rows (bx..bm only). */
typedef struct {
    const rfm_config *cfg;
    const char *tx_path, *summary, *campaign;
    modelfile_stage *stage;
    txn_data *d; /* NULL without transactions */
    txn_report rep;
    txn_features *feats;
    double *rec, *freq, *mon, *bx, *btx, *bT, *bm;
    char **ids;
    size_t m;
    char data_sha[65], data_desc[1024];
    char err[RFM_ERRLEN]; /* each step running at once has its own (run_steps) */
    /* cltv_holdout_check's answer for these transactions and the cltv
     * options, once computed (the cltv step's card and the analytics page
     * both show it; it refits BG/NBD, so it runs once). Shared by the
     * steps' copies of the context: written by the cltv step, then read by
     * analytics, which runs after it. */
    struct holdout_memo {
        int done;
        rfm_status st;
        cltv_holdout h;
        char err[RFM_ERRLEN];
    } * holdout;
    /* The model files this run wrote, as the JSON written (the same values
     * a parse of the file gives: numbers are written shortest round-trip),
     * so that analytics builds its models without reading them again.
     * Shared like holdout; a step adds its file under stage_lock. */
    struct written_memo {
        size_t n;
        const char *file[8];
        json_t *json[8];
        churn_model *churn; /* churn.json's model as fitted: analytics scores with it */
    } * written;
    pthread_mutex_t *stage_lock; /* steps at once: one at a time in the stage's manifest */
} train_ctx;

/* cltv_holdout_check on c's transactions with the cltv options, computed
 * on the first call and answered from c after (err filled each time it
 * failed). */
static rfm_status holdout_check(train_ctx *c, cltv_holdout *h, char *err, size_t errlen)
{
    const cltv_options *o = &c->cfg->cltv;
    struct holdout_memo *m = c->holdout;
    if (!m->done) {
        m->st = cltv_holdout_check(c->d, o->holdout_days, o->penalizer_coef, &m->h, m->err,
                                   sizeof m->err);
        m->done = 1;
    }
    *h = m->h;
    if (m->st != RFM_OK && err)
        snprintf(err, errlen, "%s", m->err);
    return m->st;
}

/* Indices of the steps in STEPS, for read_input's skips. */
enum { M_SEGMENTS, M_CLTV, M_CHURN, M_EMBEDDINGS, M_UPLIFT, M_ANALYTICS };

/* Read the transactions (or the customer summary) named by c into c, and
 * clear fit[] of the models that cannot be fitted from them, saying why.
 * Returns 0, or the exit status after printing the error. */
static int read_input(train_ctx *c, int needs_tx, int *fit)
{
    rfm_status st;
    double t0 = monotime_s();
    const char *tx_path = c->tx_path, *summary = c->summary;
    char *err = c->err;
    size_t m = 0;
    if (!needs_tx) {
        snprintf(c->data_desc, sizeof c->data_desc, "- (no transactions read)");
    } else if (summary) {
        if ((st = cltv_read_summary(summary, &c->ids, &c->bx, &c->btx, &c->bT, &c->bm, &c->m,
                                    c->data_sha, err, sizeof c->err)) != RFM_OK) {
            fprintf(stderr, "rfm-train: %s\n", err);
            return st == RFM_EINVAL ? 2 : 1;
        }
        m = c->m;
        say("rfm-train: read %s: %zu customers\n", summary, m);
        if (fit[M_SEGMENTS]) {
            say("rfm-train: segments: skipped (a customer summary has no recency in RFM terms "
                "or monetary totals; train from transactions)\n");
            fit[M_SEGMENTS] = 0;
        }
        if (fit[M_EMBEDDINGS]) {
            say("rfm-train: embeddings: skipped (a customer summary has no products)\n");
            fit[M_EMBEDDINGS] = 0;
        }
        if (fit[M_CHURN]) {
            say("rfm-train: churn: skipped (a customer summary has no purchase dates)\n");
            fit[M_CHURN] = 0;
        }
        if (fit[M_ANALYTICS]) {
            say("rfm-train: analytics: skipped (a customer summary has no purchase dates)\n");
            fit[M_ANALYTICS] = 0;
        }
        snprintf(c->data_desc, sizeof c->data_desc,
                 "- Customer summary `%s` (sha256 `%s`): %zu customers", summary, c->data_sha, m);
    } else {
        txn_options topt = c->cfg->txn;
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        topt.threads = read_threads ? read_threads : ncpu > 16 ? 16 : ncpu > 1 ? (int)ncpu : 1;
        if (!fit[M_EMBEDDINGS])
            topt.product = NULL; /* only the embeddings need products: skip the work */
        else if (!topt.product) {
            say("rfm-train: embeddings: skipped (data.columns.product is not set)\n");
            fit[M_EMBEDDINGS] = 0;
        }
        progress_state ps = {monotime_s(), 0};
        /* A file, "-" (standard input) or a database URL with data.query. */
        source_kind sk = source_kind_of(tx_path);
        const char *query = sk == SOURCE_POSTGRESQL || sk == SOURCE_SQLITE ? c->cfg->query : NULL;
        csv_reader *csv = NULL;
        if ((st = source_open(tx_path, query, &csv, err, sizeof c->err)) == RFM_OK)
            st = txn_read_csv(csv, &topt, progress, &ps, &c->d, &c->rep, err, sizeof c->err);
        csv_close(csv);
        if (st != RFM_OK) {
            if (st == RFM_EDATA && c->rep.lines > 0) /* every line dropped: show why */
                print_report(tx_path, &c->rep, monotime_s() - t0);
            fprintf(stderr, "rfm-train: %s\n", err);
            return st == RFM_EINVAL ? 2 : 1;
        }
        print_report(tx_path, &c->rep, monotime_s() - t0);
        memcpy(c->data_sha, c->rep.sha256, sizeof c->data_sha);
        size_t n = txn_ncustomers(c->d);
        c->feats = calloc(n, sizeof *c->feats);
        c->rec = malloc(n * sizeof *c->rec), c->freq = malloc(n * sizeof *c->freq);
        c->mon = malloc(n * sizeof *c->mon), c->bx = malloc(n * sizeof *c->bx);
        c->btx = malloc(n * sizeof *c->btx), c->bT = malloc(n * sizeof *c->bT);
        c->bm = malloc(n * sizeof *c->bm), c->ids = calloc(n, sizeof *c->ids);
        if (!c->feats || !c->rec || !c->freq || !c->mon || !c->bx || !c->btx || !c->bT || !c->bm ||
            !c->ids) {
            fprintf(stderr, "rfm-train: out of memory for %zu customers\n", n);
            return 1;
        }
        const txn_features *feats = c->feats;
        txn_features_asof(c->d, txn_snapshot_day(c->d), c->feats);
        for (size_t i = 0; i < n; i++) {
            if (!feats[i].active)
                continue;
            if (!(c->ids[m] = strdup(txn_customer_id(c->d, i)))) {
                fprintf(stderr, "rfm-train: out of memory for %zu customers\n", n);
                return 1;
            }
            c->rec[m] = feats[i].recency, c->freq[m] = feats[i].frequency;
            c->mon[m] = feats[i].monetary;
            c->bx[m] = feats[i].bg_x, c->btx[m] = feats[i].bg_t_x, c->bT[m] = feats[i].bg_T;
            c->bm[m] = feats[i].bg_mean_spend;
            c->m = ++m;
        }
        char d0[11], d1[11];
        date_format(txn_first_day(c->d), d0);
        date_format(txn_last_day(c->d), d1);
        snprintf(c->data_desc, sizeof c->data_desc,
                 "- Transactions `%s` (sha256 `%s`): %llu lines, %llu used, %zu customers\n"
                 "- Purchases from %s to %s",
                 tx_path, c->rep.sha256, (unsigned long long)c->rep.lines,
                 (unsigned long long)c->rep.used, m, d0, d1);
        say("rfm-train: %zu customers as of the snapshot\n", m);
    }
    return 0;
}

/* Pseudonymous ids (docs/security.md): the transactions' ids were
 * replaced as they were read (txn_options.id_key); a summary's are
 * replaced here, before anything is written. Without pseudonymisation, ids
 * that look like e-mail addresses or phone numbers are counted and said
 * once on stderr (never one of them). Both go to the manifest as
 * "privacy". Returns 0 or 1 after printing the error. */
static int privacy_ids(train_ctx *c)
{
    const char *key = c->cfg->txn.id_key;
    size_t kind[3] = {0, 0, 0};
    for (size_t i = 0; i < c->m; i++) {
        if (key && c->summary) {
            char p[TXN_PSEUDONYM_LEN + 1];
            txn_pseudonym(key, strlen(key), c->ids[i], strlen(c->ids[i]), p);
            explicit_bzero(c->ids[i], strlen(c->ids[i]));
            free(c->ids[i]);
            if (!(c->ids[i] = strdup(p))) {
                fprintf(stderr, "rfm-train: out of memory\n");
                return 1;
            }
        } else if (!key) {
            kind[txn_id_looks_like(c->ids[i])]++;
        }
    }
    if (kind[TXN_ID_EMAIL] || kind[TXN_ID_PHONE])
        fprintf(stderr,
                "rfm-train: warning: %zu customer ids look like e-mail addresses and %zu like "
                "phone numbers, and privacy.pseudonymize_ids is false: they are stored in clear "
                "in the models (docs/security.md)\n",
                kind[TXN_ID_EMAIL], kind[TXN_ID_PHONE]);
    json_t *p =
        json_pack("{s:b,s:{s:I,s:I}}", "pseudonymized_ids", key != NULL, "clear_ids_like", "email",
                  (json_int_t)kind[TXN_ID_EMAIL], "phone", (json_int_t)kind[TXN_ID_PHONE]);
    if (key) {
        /* The pseudonym of a fixed text: rfm-serve refuses another key. */
        char check[TXN_PSEUDONYM_LEN + 1];
        txn_pseudonym(key, strlen(key), "rfm-id-key-check", 16, check);
        json_object_set_new(p, "id_key_check", json_string(check));
    }
    if (modelfile_set(c->stage, "privacy", p, c->err, sizeof c->err) != RFM_OK) {
        fprintf(stderr, "rfm-train: %s\n", c->err);
        return 1;
    }
    return 0;
}

/* The manifest's account of the input: "data" (and "cleaning" for
 * transactions) and "generator". Returns 0 or 1 after printing the error. */
static int describe_input(train_ctx *c)
{
    rfm_status st = RFM_OK;
    if (c->d) {
        char d0[11], d1[11], snap[11];
        date_format(txn_first_day(c->d), d0);
        date_format(txn_last_day(c->d), d1);
        date_format(txn_snapshot_day(c->d), snap);
        const txn_report *r = &c->rep;
        json_t *data =
            json_pack("{s:{s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:s,s:s}}", "transactions", "path",
                      c->tx_path, "sha256", r->sha256, "bytes", (json_int_t)r->bytes, "lines",
                      (json_int_t)r->lines, "used", (json_int_t)r->used, "customers",
                      (json_int_t)c->m, "first_date", d0, "last_date", d1, "snapshot_date", snap);
        source_kind sk = source_kind_of(c->tx_path); /* a query is part of what was read */
        if (data && (sk == SOURCE_POSTGRESQL || sk == SOURCE_SQLITE))
            json_object_set_new(json_object_get(data, "transactions"), "query",
                                json_string(c->cfg->query));
        if (!(st = modelfile_set(c->stage, "data", data, c->err, sizeof c->err)))
            st = modelfile_set(c->stage, "cleaning", cleaning_json(r), c->err, sizeof c->err);
    } else if (c->summary) {
        st = modelfile_set(c->stage, "data",
                           json_pack("{s:{s:s,s:s,s:I}}", "summary", "path", c->summary, "sha256",
                                     c->data_sha, "customers", (json_int_t)c->m),
                           c->err, sizeof c->err);
    }
    if (!st)
        st = modelfile_set(c->stage, "generator", json_string("rfm-train " VERSION), c->err,
                           sizeof c->err);
    if (st) {
        fprintf(stderr, "rfm-train: %s\n", c->err);
        return 1;
    }
    return 0;
}

/* The one way a model lands in the stage: file (written from json when json
 * is not NULL; otherwise already in the stage), NAME.md from card (none when
 * NULL) and the manifest entry with metrics, fitted on data with sha256 sha.
 * Takes json, card and metrics. Returns 0, or 1 after printing "NAME: error". */
static int save_model(train_ctx *c, const char *name, const char *semver, const char *file,
                      json_t *json, char *card, json_t *metrics, const char *sha)
{
    char md[64], version[96];
    snprintf(md, sizeof md, "%s.md", name);
    /* The training id tells two fits of one semantic version apart: the
     * snapshot date of the transactions (none for a campaign or a summary)
     * and the start of the sha256 of the data the model was fitted on. */
    if (c->d && sha == c->data_sha) {
        char snap[11];
        date_format(txn_snapshot_day(c->d), snap);
        snprintf(version, sizeof version, "%s+%.4s%.2s%.2s.%.7s", semver, snap, snap + 5, snap + 8,
                 sha);
    } else {
        snprintf(version, sizeof version, "%s+%.7s", semver, sha);
    }
    /* Only the manifest and the card carry it: the model files stay the
     * same bytes whatever source (file, stdin, database) the data came from. */
    rfm_status st =
        json ? modelfile_write_json(c->stage, file, json, c->err, sizeof c->err) : RFM_OK;
    if (!st && json && c->written) {
        if (c->stage_lock)
            pthread_mutex_lock(c->stage_lock);
        struct written_memo *w = c->written;
        if (w->n < sizeof w->json / sizeof *w->json) {
            w->file[w->n] = file;
            w->json[w->n++] = json_incref(json);
        }
        if (c->stage_lock)
            pthread_mutex_unlock(c->stage_lock);
    }
    json_decref(json);
    if (!st && card)
        st = card_retitle(&card, name, semver, version)
                 ? RFM_OK
                 : rfm_fail(c->err, sizeof c->err, RFM_ENOMEM, "out of memory");
    if (!st && card)
        st = modelfile_write_text(c->stage, md, card, strlen(card), c->err, sizeof c->err);
    if (!st) {
        if (c->stage_lock)
            pthread_mutex_lock(c->stage_lock);
        st = modelfile_add_model(c->stage, name, version, file, card ? md : NULL, sha, metrics,
                                 c->err, sizeof c->err);
        if (c->stage_lock)
            pthread_mutex_unlock(c->stage_lock);
    } else
        json_decref(metrics);
    free(card);
    if (st) {
        tell("rfm-train: %s: %s\n", name, c->err);
        return 1;
    }
    return 0;
}

/* A step's failure: "NAME: why" on stderr, exit status 1. */
static int step_failed(const char *name, const char *why)
{
    tell("rfm-train: %s: %s\n", name, why);
    return 1;
}

/* The customer table serves lookups by customer_id. */
/* The per-customer table of this run (customers.h): the features read, in
 * txn order (as c->ids), with the churn trends at the snapshot when there
 * are transactions; NULL when out of memory. */
static customer_row *customer_rows(const train_ctx *c)
{
    customer_row *rows = calloc(c->m ? c->m : 1, sizeof *rows);
    size_t nc = c->d ? txn_ncustomers(c->d) : 0;
    double *xr = c->d ? malloc((nc ? nc : 1) * CHURN_RICH_FEATURES * sizeof *xr) : NULL;
    if (c->d && !xr) {
        free(rows);
        rows = NULL;
    }
    if (rows && xr)
        churn_features_asof(c->d, txn_snapshot_day(c->d), xr);
    for (size_t i = 0, k = 0; rows && i < c->m; i++) {
        while (xr && k < nc && !c->feats[k].active)
            k++;
        const double *r = xr ? xr + k++ * CHURN_RICH_FEATURES : NULL;
        rows[i] = (customer_row){c->d ? c->rec[i] : NAN,
                                 c->d ? c->freq[i] : NAN,
                                 c->d ? c->mon[i] : NAN,
                                 c->bx[i],
                                 c->btx[i],
                                 c->bT[i],
                                 c->bm[i],
                                 r ? r[6] : NAN,
                                 r ? r[7] : NAN};
    }
    free(xr);
    return rows;
}

static int save_customers(train_ctx *c)
{
    customer_row *rows = customer_rows(c);
    char *csvtext = rows ? customers_csv((const char *const *)c->ids, rows, c->m) : NULL;
    free(rows);
    if (!csvtext)
        return step_failed("customers", "out of memory");
    rfm_status st = modelfile_write_text(c->stage, "customers.csv", csvtext, strlen(csvtext),
                                         c->err, sizeof c->err);
    free(csvtext);
    if (st)
        return step_failed("customers", c->err);
    return save_model(c, "customers", CUSTOMERS_VERSION, "customers.csv", NULL, NULL,
                      json_pack("{s:I}", "customers", (json_int_t)c->m), c->data_sha);
}

static int fit_segments(train_ctx *c)
{
    double ts = monotime_s();
    segments_model *seg = NULL;
    json_t *j = NULL;
    if (segments_fit(c->rec, c->freq, c->mon, c->m, &c->cfg->segments, &seg, c->err,
                     sizeof c->err) ||
        segments_to_json(seg, &j, c->err, sizeof c->err)) {
        segments_free(seg);
        return step_failed("segments", c->err);
    }
    char *card = card_segments(seg, c->tx_path, &c->rep, c->d);
    int rc = card ? save_model(c, "segments", SEGMENTS_VERSION, "segments.json", j, card,
                               segments_metrics(seg), c->data_sha)
                  : (json_decref(j), step_failed("segments", "out of memory"));
    segments_selection sel;
    segments_get_selection(seg, &sel);
    if (!rc && sel.fixed)
        say("rfm-train: segments: k = %zu (fixed), silhouette %.4f, %.3f s\n",
            segments_nclusters(seg), segments_silhouette(seg), monotime_s() - ts);
    else if (!rc)
        say("rfm-train: segments: k = %zu of %zu-%zu (smallest cluster >= %g%%, silhouette "
            "within %g of the best, then the smaller k), silhouette %.4f, %.3f s\n",
            segments_nclusters(seg), sel.k_min, sel.k_max, 100 * sel.min_share, sel.tolerance,
            segments_silhouette(seg), monotime_s() - ts);
    segments_free(seg);
    return rc;
}

static int fit_cltv(train_ctx *c)
{
    const cltv_options *o = &c->cfg->cltv;
    double ts = monotime_s();
    cltv_model *cm = NULL;
    json_t *j = NULL;
    if (cltv_fit(c->bx, c->btx, c->bT, c->bm, c->m, o, &cm, c->err, sizeof c->err) != RFM_OK)
        return step_failed("cltv", c->err);
    double fit_s = monotime_s() - ts;
    cltv_holdout h;
    memset(&h, 0, sizeof h);
    if (c->d && holdout_check(c, &h, c->err, sizeof c->err) != RFM_OK)
        say("rfm-train: cltv: holdout check skipped: %s\n", c->err);
    json_t *ev = NULL;
    if (cltv_to_json(cm, &j, c->err, sizeof c->err) != RFM_OK ||
        cltv_holdout_json(&h, &ev, c->err, sizeof c->err) != RFM_OK) {
        json_decref(j);
        cltv_free(cm);
        return step_failed("cltv", c->err);
    }
    json_object_set_new(j, "evaluation", ev);
    json_object_set_new(
        j, "defaults",
        json_pack("{s:f,s:f}", "horizon_days", o->horizon_days, "discount_rate", o->discount_rate));
    char *card = card_cltv(cm, c->data_desc, &h, o);
    int rc = card ? save_model(c, "cltv", CLTV_VERSION, "cltv.json", j, card, cltv_metrics(cm, &h),
                               c->data_sha)
                  : (json_decref(j), step_failed("cltv", "out of memory"));
    if (!rc) {
        const bgnbd_fit_result *b = cltv_bgnbd(cm);
        const gg_fit_result *g = cltv_gg(cm);
        say("rfm-train: cltv: r %.4g alpha %.4g a %.4g b %.4g; p %.4g q %.4g v %.4g; fit %.3f "
            "s\n",
            b->p.r, b->p.alpha, b->p.a, b->p.b, g->p.p, g->p.q, g->p.v, fit_s);
        if (h.ok)
            say("rfm-train: cltv: holdout %d days: %.0f purchase days actual, %.1f predicted\n",
                h.days, h.total_actual, h.total_predicted);
    }
    cltv_free(cm);
    return rc;
}

static int fit_churn(train_ctx *c)
{
    double ts = monotime_s();
    json_t *met, *cj;
    char *card;
    churn_model *fitted = NULL;
    if (train_churn(c->d, &c->cfg->churn, c->data_desc, &cj, &met, &card,
                    c->written ? &fitted : NULL, c->err, sizeof c->err))
        return step_failed("churn", c->err);
    double auc = json_real_value(json_object_get(json_object_get(met, "logistic"), "auc"));
    double auc_gb = json_real_value(json_object_get(json_object_get(met, "boosted"), "auc"));
    double auc_bg =
        json_real_value(json_object_get(json_object_get(met, "bgnbd_1_minus_p_alive"), "auc"));
    char served[16];
    snprintf(served, sizeof served, "%s", json_string_value(json_object_get(met, "served")));
    if (save_model(c, "churn", CHURN_FILE_VERSION, "churn.json", cj, card, met, c->data_sha)) {
        churn_free(fitted);
        return 1;
    }
    if (fitted) { /* the file is written: analytics, after this step, may take it */
        if (c->stage_lock)
            pthread_mutex_lock(c->stage_lock);
        c->written->churn = fitted;
        if (c->stage_lock)
            pthread_mutex_unlock(c->stage_lock);
    }
    say("rfm-train: churn: held-out AUC logistic %.4f, boosted %.4f (BG/NBD %.4f); serving %s, "
        "%.3f s\n",
        auc, auc_gb, auc_bg, served, monotime_s() - ts);
    return 0;
}

static int fit_embeddings(train_ctx *c)
{
    double ts = monotime_s();
    json_t *met;
    char *card;
    if (train_embeddings(c->d, &c->cfg->embed, &c->cfg->ann, modelfile_stage_dir(c->stage),
                         c->data_desc, &met, &card, c->err, sizeof c->err))
        return step_failed("embeddings", c->err);
    const json_t *ho = json_object_get(met, "last_basket_holdout");
    double hit = json_real_value(json_object_get(ho, "hit_rate_neighbors"));
    double hit_pop = json_real_value(json_object_get(ho, "hit_rate_popular"));
    if (save_model(c, "embeddings", EMBEDDINGS_VERSION, "customer2vec.faiss", NULL, card, met,
                   c->data_sha))
        return 1;
    say("rfm-train: embeddings: hit rate at 10 %.4f (popular %.4f), %.3f s\n", hit, hit_pop,
        monotime_s() - ts);
    return 0;
}

static int fit_uplift(train_ctx *c)
{
    double ts = monotime_s();
    json_t *met, *uj;
    char *card, usha[65];
    rfm_status st;
    if (!c->campaign)
        return step_failed("uplift", "no campaign file (uplift.campaign or --campaign)");
    if ((st = train_uplift(c->campaign, &c->cfg->campaign_spec, &c->cfg->uplift, &uj, &met, &card,
                           usha, c->err, sizeof c->err))) {
        step_failed("uplift", c->err);
        return st == RFM_EINVAL ? 2 : 1;
    }
    char served[32];
    snprintf(served, sizeof served, "%s",
             json_string_value(json_object_get(met, "served_learner")));
    if (save_model(c, "uplift", UPLIFT_FILE_VERSION, "uplift.json", uj, card, met, usha))
        return 1;
    say("rfm-train: uplift: %s served, %.3f s\n", served, monotime_s() - ts);
    return 0;
}

/* A model file of this run's stage, parsed: the JSON written when this run
 * fitted it (c->written), else the file carried over by --only; NULL when
 * the stage has none. Read whole, then parsed
 * (json_load_file reads a byte at a time through getc: 3 % of a run's CPU
 * on the bundled data, whose uplift.json is 1.3 MB). */
static json_t *staged_json(train_ctx *c, const char *file)
{
    for (size_t i = 0; c->written && i < c->written->n; i++)
        if (strcmp(c->written->file[i], file) == 0)
            return json_incref(c->written->json[i]);
    char path[4096], *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s", modelfile_stage_dir(c->stage), file);
    if (access(path, F_OK) != 0 || fileio_read(path, &buf, &len, NULL, 0) != RFM_OK)
        return NULL;
    json_t *j = json_loadb(buf, len, 0, NULL);
    free(buf);
    return j;
}

#define ANALYTICS_SHAP_SAMPLE 500 /* customers in /analytics/shap-sample */
#define ANALYTICS_MAP_POINTS 5000 /* at most, in /analytics/embedding-map */

/* A figure a model cannot give (bad metrics, no customer it can score) is
 * left out with a note; only running out of memory stops the step. */
static rfm_status not_fatal(const char *what, rfm_status st, const char *err)
{
    if (st == RFM_OK || st == RFM_ENOMEM)
        return st;
    say("rfm-train: analytics: %s left out: %s\n", what, err);
    return RFM_OK;
}

/* The embedding map from the stage's index (customer2vec.faiss), if any. */
static rfm_status embedding_map(train_ctx *c, json_t *out, const customer_row *rows,
                                const segments_model *seg)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/customer2vec.faiss", modelfile_stage_dir(c->stage));
    if (access(path, F_OK) != 0)
        return RFM_OK;
    ann_params ap;
    ann_params_default(&ap);
    ann_index *ix = NULL;
    rfm_status st = ann_load(path, &ap, &ix, c->err, sizeof c->err);
    if (st != RFM_OK)
        return not_fatal("embedding map", st, c->err);
    int64_t n = ann_count(ix);
    int dim = ann_dim(ix);
    float *v = malloc((size_t)(n > 0 ? n : 1) * (size_t)dim * sizeof *v);
    const char **vid = malloc((size_t)(n > 0 ? n : 1) * sizeof *vid);
    if (!v || !vid)
        st = rfm_fail(c->err, sizeof c->err, RFM_ENOMEM, "out of memory");
    for (int64_t i = 0; st == RFM_OK && i < n; i++) {
        vid[i] = ann_customer_id(ix, i);
        st = ann_vector(ix, i, v + (size_t)i * (size_t)dim, c->err, sizeof c->err);
    }
    if (st == RFM_OK)
        st = analytics_add_embedding_map(out, v, (size_t)n, dim, vid, (const char *const *)c->ids,
                                         rows, c->m, seg, ANALYTICS_MAP_POINTS, c->cfg->embed.seed,
                                         c->err, sizeof c->err);
    free(v), free(vid);
    ann_free(ix);
    return not_fatal("embedding map", st, c->err);
}

/* The population figures of the /ui/ pages (core/models/analytics.c),
 * from the customers read and the segments, cltv and churn models of the
 * stage: those fitted in this run or kept from the last. */
static int fit_analytics(train_ctx *c)
{
    double ts = monotime_s();
    if (!c->d)
        return step_failed("analytics", "needs transactions (not a customer summary)");
    const rfm_config *cfg = c->cfg;
    score_models m = {NULL, NULL, NULL, cfg->cltv.horizon_days, cfg->cltv.discount_rate, NULL};
    segments_model *seg = NULL;
    cltv_model *cm = NULL;
    churn_model *ch = NULL;
    json_t *j, *chj = NULL; /* churn.json, read once: the model and its curves */
    rfm_status st = RFM_OK;
    if (st == RFM_OK && (j = staged_json(c, "segments.json"))) {
        st = segments_from_json(j, &seg, c->err, sizeof c->err);
        json_decref(j);
    }
    if (st == RFM_OK && (j = staged_json(c, "cltv.json"))) {
        st = cltv_from_json(j, &cm, c->err, sizeof c->err);
        json_decref(j);
    }
    /* churn.json's model as this run fitted it (the same model a parse of
     * the file builds, without parsing the trees and explaining every cell
     * again: a third of this step's instructions), else from the file. */
    const churn_model *chm = c->written ? c->written->churn : NULL;
    if (st == RFM_OK && (chj = staged_json(c, "churn.json")) && !chm)
        st = churn_from_json(chj, &ch, c->err, sizeof c->err);
    const churn_model *chu = chm ? chm : ch; /* the one used; ch, if built here, freed below */
    customer_row *rows = customer_rows(c);
    if (st == RFM_OK && !rows)
        st = rfm_fail(c->err, sizeof c->err, RFM_ENOMEM, "out of memory");
    analytics_options o;
    analytics_default_options(&o);
    o.active_days = cfg->churn.cut_days; /* active: not churned by the churn label's rule */
    o.currency = cfg->currency;
    m.segments = seg, m.cltv = cm, m.churn = chu;
    json_t *out = NULL;
    if (st == RFM_OK)
        st = analytics_compute(c->d, rows, c->m, &m, &o, &out, c->err, sizeof c->err);
    /* Actual against predicted purchases over the holdout (the check the
     * cltv step runs for its card; a failed check only leaves it out). */
    cltv_holdout h;
    memset(&h, 0, sizeof h);
    if (st == RFM_OK && cm && holdout_check(c, &h, NULL, 0) == RFM_OK)
        st = analytics_add_holdout(out, &h, c->err, sizeof c->err);
    /* The figures of the other pages, each from its model when the stage
     * has it: a model that cannot give them only leaves them out. */
    if (st == RFM_OK && chu && chj)
        st = analytics_add_churn_curves(out, chj, c->err, sizeof c->err);
    if (st == RFM_OK && chu)
        st = not_fatal("shap sample",
                       analytics_add_shap(out, chu, (const char *const *)c->ids, rows, c->m,
                                          ANALYTICS_SHAP_SAMPLE, cfg->churn.seed, c->err,
                                          sizeof c->err),
                       c->err);
    const json_t *ue = modelfile_stage_model(c->stage, "uplift");
    if (st == RFM_OK && ue && (j = staged_json(c, "uplift.json"))) {
        st = not_fatal("qini",
                       analytics_add_qini(out, json_object_get(ue, "metrics"), j, cfg->uplift_value,
                                          cfg->uplift_cost, c->err, sizeof c->err),
                       c->err);
        json_decref(j);
    }
    if (st == RFM_OK)
        st = embedding_map(c, out, rows, seg);
    free(rows);
    json_decref(chj);
    segments_free(seg);
    cltv_free(cm);
    churn_free(ch);
    if (st != RFM_OK) {
        json_decref(out);
        return step_failed("analytics", c->err);
    }
    size_t months = json_array_size(json_object_get(json_object_get(out, "overview"), "monthly"));
    if (save_model(c, "analytics", ANALYTICS_VERSION, "analytics.json", out, NULL,
                   json_pack("{s:I,s:I,s:i}", "customers", (json_int_t)c->m, "months",
                             (json_int_t)months, "active_days", o.active_days),
                   c->data_sha))
        return 1;
    say("rfm-train: analytics: %zu customers, %zu months, %.3f s\n", c->m, months,
        monotime_s() - ts);
    return 0;
}

/* The models rfm-train fits, in order; --only names them. transactions:
 * the step reads the customers (transactions or a summary). Each returns 0
 * or an exit status after printing why. */
typedef struct {
    const char *name;
    int (*fit)(train_ctx *c);
    int transactions;
} train_step;

static const train_step STEPS[] = {
    [M_SEGMENTS] = {"segments", fit_segments, 1},
    [M_CLTV] = {"cltv", fit_cltv, 1},
    [M_CHURN] = {"churn", fit_churn, 1},
    [M_EMBEDDINGS] = {"embeddings", fit_embeddings, 1},
    [M_UPLIFT] = {"uplift", fit_uplift, 0},
    [M_ANALYTICS] = {"analytics", fit_analytics, 1},
};
#define NSTEPS (sizeof STEPS / sizeof *STEPS)

/* fit[i] = whether STEPS[i] runs: all without --only, else those named in
 * the comma-separated list. Returns 0, or 2 after naming an unknown model. */
static int select_steps(const char *only, int fit[NSTEPS])
{
    for (size_t i = 0; i < NSTEPS; i++)
        fit[i] = only == NULL;
    if (only) {
        for (const char *p = only; *p;) {
            size_t len = strcspn(p, ","), i;
            for (i = 0;
                 i < NSTEPS && !(strlen(STEPS[i].name) == len && !strncmp(p, STEPS[i].name, len));
                 i++)
                ;
            if (i == NSTEPS) {
                fprintf(stderr,
                        "rfm-train: --only: unknown model '%.*s' (known: segments, cltv, "
                        "churn, embeddings, uplift, analytics)\n",
                        (int)len, p);
                return 2;
            }
            fit[i] = 1;
            p += len + (p[len] == ',');
        }
    }
    /* The figures sum the scores of these models: refit with them. */
    fit[M_ANALYTICS] |= fit[M_SEGMENTS] | fit[M_CLTV] | fit[M_CHURN] | fit[M_EMBEDDINGS];
    return 0;
}

/* The steps fitted at once: each on a copy of the context (its own err),
 * its lines in its own buffer. step NSTEPS: the customer table
 * (save_customers). */
typedef struct {
    train_ctx c;
    size_t step;
    int rc;
    say_text out;
} step_job;

typedef struct {
    step_job *jobs;
    size_t n;
    atomic_size_t next;
    pthread_t caller; /* run_steps' thread, which also takes jobs */
} step_queue;

/* The short steps, queued after the long ones (run_steps' order): they
 * fill in beside them. */
static int fills_in(size_t step) { return step == M_SEGMENTS || step == M_CLTV || step == NSTEPS; }

/* How much lower (in nice steps) a thread that takes a short step runs:
 * when the steps' threads outnumber the cores, the long chains (the churn
 * step's two boosted fits) then keep their cores and the short steps take
 * what they leave, instead of every thread being slowed alike and the
 * longest chain finishing last. The bundled training (--only
 * segments,churn,cltv, 2 cores, alternating rounds on a quiet host): 4 %
 * less wall time with 5, 10 or 19, 3 % with 3 (30 rounds); 4.3 % with 5
 * (40); no change on a loaded host (30). Only a thread of run_steps' own
 * lowers itself: a thread cannot raise its priority again, and the caller
 * goes on to analytics and the commit. */
enum { FILL_IN_NICE = 5 };

static void *step_worker(void *arg)
{
    step_queue *q = arg;
    int lowered = 0;
    for (size_t k; (k = atomic_fetch_add(&q->next, 1)) < q->n;) {
        step_job *j = &q->jobs[k];
        if (!lowered && fills_in(j->step) && !pthread_equal(pthread_self(), q->caller)) {
            /* Threads the step starts inherit it; a failure leaves it as is. */
            errno = 0;
            int prio = getpriority(PRIO_PROCESS, (id_t)gettid());
            if (errno == 0)
                setpriority(PRIO_PROCESS, (id_t)gettid(), prio + FILL_IN_NICE);
            lowered = 1;
        }
        say_to = &j->out;
        j->rc = j->step == NSTEPS ? save_customers(&j->c) : STEPS[j->step].fit(&j->c);
        say_to = NULL;
    }
    return NULL;
}

/* The selected steps: those that need no other model all at once, on up
 * to the online cores (they only read the customers and the campaign, and
 * take turns in the stage's manifest), with the customer table when
 * with_customers is set (it is written beside them rather than before: 3.5 ms
 * of formatting and a sync off the critical path), then analytics, which
 * reads what they staged. Their lines come out in STEPS' order (the
 * customer table's first) whoever finishes first; the exit status is the
 * first failed one's. On the bundled data the churn step (two boosted
 * fits) runs beside segments and cltv, which take the cores it leaves
 * (FILL_IN_NICE). */
static int run_steps(train_ctx *c, const int fit[NSTEPS], int with_customers)
{
    step_job jobs[NSTEPS + 1];
    step_queue q = {jobs, 0, 0, pthread_self()};
    /* The longest first, so that the short ones fill in beside it. */
    static const size_t order[] = {M_EMBEDDINGS, M_CHURN, M_UPLIFT, M_SEGMENTS, M_CLTV};
    for (size_t k = 0; k < sizeof order / sizeof *order; k++)
        if (fit[order[k]])
            jobs[q.n++] = (step_job){.c = *c, .step = order[k]};
    if (with_customers)
        jobs[q.n++] = (step_job){.c = *c, .step = NSTEPS};
    long ncpu = read_threads ? read_threads : sysconf(_SC_NPROCESSORS_ONLN);
    size_t nthreads = 0; /* besides this one */
    if (ncpu > 1 && q.n > 1)
        nthreads = (size_t)ncpu - 1 < q.n - 1 ? (size_t)ncpu - 1 : q.n - 1;
    pthread_t th[NSTEPS + 1];
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    for (size_t k = 0; k < q.n; k++)
        jobs[k].c.stage_lock = &lock;
    size_t started = 0;
    while (started < nthreads && pthread_create(&th[started], NULL, step_worker, &q) == 0)
        started++;
    step_worker(&q); /* this thread too; alone when no thread could start */
    for (size_t k = 0; k < started; k++)
        pthread_join(th[k], NULL);
    int rc = 0;
    if (with_customers) { /* the customer table's job, queued last, reports first */
        say_flush(&jobs[q.n - 1].out);
        rc = jobs[q.n - 1].rc;
    }
    for (size_t i = 0; i < NSTEPS; i++)
        for (size_t k = 0; k < q.n; k++)
            if (jobs[k].step == i) {
                say_flush(&jobs[k].out);
                if (!rc)
                    rc = jobs[k].rc;
            }
    pthread_mutex_destroy(&lock);
    if (!rc && fit[M_ANALYTICS])
        rc = STEPS[M_ANALYTICS].fit(c);
    return rc;
}

/* XGBoost's library, loaded while the file is read (boost_load_library)
 * rather than by the churn step's first fit; a failure is the fit's to
 * report. */
static void *load_xgboost(void *arg)
{
    char e[RFM_ERRLEN];
    (void)arg;
    (void)boost_load_library(e, sizeof e);
    return NULL;
}

/* OpenBLAS's threaded build (FAISS's BLAS, and GSL's here: the symbols
 * come first from it) starts its worker threads when it is loaded, and they
 * spin (sched_yield) about 0.1 s waiting for work: on two cores, much of a
 * core taken from the read. The pthread build exports blas_thread_shutdown_
 * (its fork handler) to stop them; any later call that splits its work
 * starts them again, and GSL's LU inverse of the MLE fits' 4 x 4 Hessians
 * did (dtrmv), so that two workers spun through the rest of every fit (20
 * to 30 ms of CPU a run in perf). One thread first, as rfm-serve runs BLAS:
 * no call starts them again. Every model file the same bytes, the full
 * training as fast. Weak: the serial and OpenMP builds have no such
 * threads. */
extern void blas_thread_shutdown_(void) __attribute__((weak));
extern void openblas_set_num_threads(int) __attribute__((weak));

int main(int argc, char **argv)
{
    if (openblas_set_num_threads)
        openblas_set_num_threads(1);
    if (blas_thread_shutdown_)
        blas_thread_shutdown_();
    /* glibc's allocator for a run that reads, fits on a few threads at once
     * and exits: one arena, so memory one step frees (the read's buffers,
     * a fit's tables) serves the next step's allocations on any thread
     * instead of new pages; blocks below 32 MiB from the heap rather than
     * mapped and unmapped each time (each unmap a TLB shootdown across the
     * threads); freed memory kept until the run ends. The bundled training
     * (--only segments,churn,cltv): page faults 11,400 -> 6,600; CPU and
     * wall time 3-4 % lower in three sets of alternating runs on a loaded
     * VM, the same in one on a quiet one; peak RSS of a full run 74 -> 83
     * MB. */
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    const char *config_path = "config/rfm.yaml", *tx_path = NULL, *models_dir = NULL;
    const char *only = NULL, *summary = NULL, *campaign = NULL;
    int want_print = 0, wait_turn = 0;
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},   {"transactions", required_argument, 0, 't'},
        {"models", required_argument, 0, 'm'},   {"only", required_argument, 0, 'o'},
        {"summary", required_argument, 0, 's'},  {"print-clusters", no_argument, 0, 'p'},
        {"campaign", required_argument, 0, 'C'}, {"wait", no_argument, 0, 'w'},
        {"quiet", no_argument, 0, 'q'},          {"threads", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:t:m:o:s:C:pqwhT:", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 't': tx_path = optarg; break;
        case 'm': models_dir = optarg; break;
        case 'o': only = optarg; break;
        case 's': summary = optarg; break;
        case 'C': campaign = optarg; break;
        case 'p': want_print = 1; break;
        case 'w': wait_turn = 1; break;
        case 'q': say_quiet = 1; break;
        case 'T':
            read_threads = atoi(optarg);
            if (read_threads < 1 || read_threads > 16) {
                fprintf(stderr, "rfm-train: --threads must be 1 to 16 (got '%s')\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rfm-train: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (summary && tx_path) {
        fprintf(stderr, "rfm-train: --summary and --transactions exclude each other\n");
        return 2;
    }
    gsl_set_error_handler_off();
    json_object_seed(0); /* before the steps' threads (jansson's hash seed) */

    int fit[NSTEPS];
    if (select_steps(only, fit))
        return 2;

    char err[RFM_ERRLEN];
    rfm_config *cfg;
    if (config_load(config_path, &cfg, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-train: %s\n", err);
        return 2;
    }
    if (!models_dir)
        models_dir = cfg->models_dir;
    if (want_print) {
        int rc = print_clusters(models_dir);
        config_free(cfg);
        return rc;
    }
    if (config_id_key(cfg, getenv("RFM_ID_KEY"), err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-train: %s\n", err);
        config_free(cfg);
        return 2;
    }
    /* Customers erased on request (privacy.erasure_list) stay out. */
    erasure *erased = NULL;
    if (cfg->privacy.erasure_list) {
        if (erasure_open(cfg->privacy.erasure_list, &erased, err, sizeof err) != RFM_OK) {
            fprintf(stderr, "rfm-train: privacy.erasure_list: %s\n", err);
            config_free(cfg);
            return 2;
        }
        cfg->txn.erased = erased;
        cfg->txn.is_erased = cfg->txn.id_key ? erasure_txn_pseudonymous : erasure_txn_clear;
    }
    if (!campaign)
        campaign = cfg->campaign;
    int needs_tx = 0;
    for (size_t i = 0; i < NSTEPS; i++)
        needs_tx |= fit[i] && STEPS[i].transactions;
    if (!tx_path && !summary)
        tx_path = cfg->transactions;
    if (needs_tx && !tx_path && !summary) {
        fprintf(stderr,
                "rfm-train: no transactions: set data.transactions in %s or pass "
                "--transactions FILE\n",
                config_path);
        erasure_free(erased);
        config_free(cfg);
        return 2;
    }

    int rc = 1;
    struct holdout_memo holdout = {0};
    struct written_memo written = {0};
    train_ctx ctx = {.cfg = cfg,
                     .tx_path = tx_path,
                     .summary = summary,
                     .campaign = campaign,
                     .holdout = &holdout,
                     .written = &written};
    train_ctx *cx = &ctx;
    double t0 = monotime_s();
    rfm_status st;
    /* First the models folder's lock, so that a run that would have to
     * wait or give up does so before reading any data. A partial run
     * (--only, --summary) keeps the other models; a full run replaces the
     * folder, so it also repairs a broken one. */
    int keep = only != NULL || summary != NULL ? MODELFILE_KEEP : 0;
    st = modelfile_begin(models_dir, keep, &cx->stage, err, sizeof err);
    if (st == RFM_EBUSY && wait_turn) {
        say("rfm-train: %s; waiting\n", err);
        st = modelfile_begin(models_dir, keep | MODELFILE_WAIT, &cx->stage, err, sizeof err);
    }
    if (st != RFM_OK) {
        fprintf(stderr, "rfm-train: %s%s\n", err,
                st == RFM_EBUSY ? "; try again when it is done, or pass --wait" : "");
        goto out;
    }
    pthread_t xgb_loader;
    int loading = fit[M_CHURN] && read_threads != 1 &&
                  pthread_create(&xgb_loader, NULL, load_xgboost, NULL) == 0;
    rc = read_input(cx, needs_tx, fit);
    if (loading)
        pthread_join(xgb_loader, NULL);
    if (rc || (rc = privacy_ids(cx)) || (rc = describe_input(cx)))
        goto out;
    if ((rc = run_steps(cx, fit, needs_tx)))
        goto out;
    st = modelfile_commit(cx->stage, err, sizeof err);
    cx->stage = NULL;
    if (st != RFM_OK) {
        fprintf(stderr, "rfm-train: %s\n", err);
        rc = 1;
        goto out;
    }
    say("rfm-train: wrote %s/ in %.3f s\n", models_dir, monotime_s() - t0);
    rc = 0;
out:
    for (size_t i = 0; i < written.n; i++)
        json_decref(written.json[i]);
    churn_free(written.churn);
    modelfile_abort(cx->stage);
    for (size_t i = 0; cx->ids && i < cx->m; i++)
        free(cx->ids[i]);
    free(cx->ids);
    free(cx->rec), free(cx->freq), free(cx->mon), free(cx->bx), free(cx->btx), free(cx->bT),
        free(cx->bm);
    free(cx->feats);
    txn_free(cx->d);
    erasure_free(erased);
    config_free(cfg);
    return rc;
}
