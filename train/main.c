/* rfm-train - transactions to a versioned models/ folder.
 *
 * Parses options, reads the config, calls core/ to read and clean the
 * transactions and to fit each model, and stages the files through
 * core/modelfile so that models/ changes all at once or not at all. Holds
 * no model math; prints what it did on stderr.
 *
 * Exit status: 0 success, 1 bad data or a failed fit, 2 bad usage or config.
 */
#include <errno.h>
#include <getopt.h>
#include <gsl/gsl_errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "date.h"
#include "modelfile.h"
#include "segments.h"
#include "txn.h"

#define VERSION "0.1.0"

static const char *const MODELS[] = {"segments"};
#define NMODELS (sizeof MODELS / sizeof *MODELS)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rfm-train [--config FILE] [--transactions FILE] [--models DIR]\n"
            "                 [--only LIST] [--quiet]\n"
            "       rfm-train [--config FILE] [--models DIR] --print-clusters\n"
            "\n"
            "Reads a transaction export (CSV or CSV.gz), cleans it, fits the models and\n"
            "writes them to the models folder (default from the config: models/).\n"
            "\n"
            "  --config FILE        configuration (default config/rfm.yaml)\n"
            "  --transactions FILE  override data.transactions from the config\n"
            "  --models DIR         override models_dir from the config\n"
            "  --only LIST          refit only these models, keep the others; LIST is\n"
            "                       comma-separated from: segments\n"
            "  --print-clusters     print the clusters summary of the trained models\n"
            "  --quiet              no progress or report on stderr\n"
            "  --help               this text\n"
            "\n"
            "Exit status: 0 success, 1 bad data or failed fit, 2 bad usage or config.\n");
}

static int quiet;

static void say(const char *fmt, ...)
{
    if (quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct {
    double start;
    int shown;
} progress_state;

static void progress(uint64_t lines, uint64_t bytes, uint64_t total, void *user)
{
    progress_state *p = user;
    if (quiet || total < (64u << 20)) /* small inputs finish before a line is worth it */
        return;
    double el = now_s() - p->start;
    say("rfm-train: %llu lines, %.2f M lines/s, %.0f%%\n", (unsigned long long)lines,
        el > 0 ? (double)lines / el / 1e6 : 0.0, total ? 100.0 * (double)bytes / (double)total : 0.0);
    p->shown = 1;
}

/* Growable text buffer for model cards. */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} text;

static void add(text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = t->cap - t->len;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->len + (size_t)n + 1)
            cap *= 2;
        char *s = realloc(t->s, cap);
        if (!s) {
            t->oom = 1;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
}

static json_t *cleaning_json(const txn_report *r)
{
    json_t *drop = json_object();
    for (int i = 0; i < TXN_NREASONS; i++) {
        json_t *ex = json_array();
        for (int k = 0; k < TXN_EXAMPLES && r->examples[i][k]; k++)
            json_array_append_new(ex, json_integer((json_int_t)r->examples[i][k]));
        json_object_set_new(drop, txn_reason_name((txn_reason)i),
                            json_pack("{s:I,s:o}", "count", (json_int_t)r->count[i],
                                      "example_lines", ex));
    }
    return json_pack("{s:I,s:I,s:o}", "lines", (json_int_t)r->lines, "used",
                     (json_int_t)r->used, "dropped", drop);
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

static char *segments_card(const segments_model *m, const char *data_path, const txn_report *r,
                           const txn_data *d)
{
    text t = {0};
    char d0[11], d1[11], snap[11];
    date_format(txn_first_day(d), d0);
    date_format(txn_last_day(d), d1);
    date_format(txn_snapshot_day(d), snap);
    add(&t, "# Model card: segments %s\n\n", SEGMENTS_VERSION);
    add(&t, "## What it is\n"
            "RFM scores (1-5 per dimension, 5 best, from quintile boundaries of the training "
            "customers; equal values get equal scores) mapped to named segments by the "
            "`segments.rfm_segments` map of the config, and k-means clusters of customers on "
            "standardised log1p(recency, frequency, monetary), k-means++ seeding with "
            "restarts, named from their centroid profiles.\n\n");
    add(&t, "## Data\n"
            "- File: `%s` (sha256 `%s`)\n"
            "- Lines: %llu read, %llu used; customers: %zu\n"
            "- Purchases from %s to %s; snapshot (as-of) date %s\n\n",
        data_path, r->sha256, (unsigned long long)r->lines, (unsigned long long)r->used,
        segments_ncustomers(m), d0, d1, snap);
    const rfm_bounds *b = segments_bounds(m);
    add(&t, "## RFM quintile boundaries\n"
            "| | 20%% | 40%% | 60%% | 80%% |\n|---|---|---|---|---|\n");
    const double *bb[3] = {b->recency, b->frequency, b->monetary};
    const char *nm[3] = {"recency (days)", "frequency (invoices)", "monetary (spend)"};
    for (int j = 0; j < 3; j++)
        add(&t, "| %s | %.6g | %.6g | %.6g | %.6g |\n", nm[j], bb[j][0], bb[j][1], bb[j][2],
            bb[j][3]);
    add(&t, "\n## Clusters\nk = %zu", segments_nclusters(m));
    if (!isnan(segments_silhouette(m)))
        add(&t, " chosen by the largest mean silhouette (%.4f)", segments_silhouette(m));
    add(&t, ".\n\n| cluster | name | customers | share | recency mean / median | frequency mean / "
            "median | monetary mean / median |\n|---|---|---|---|---|---|---|\n");
    for (size_t c = 0; c < segments_nclusters(m); c++) {
        segments_cluster_info ci;
        segments_cluster(m, c, &ci);
        add(&t, "| %zu | %s | %zu | %.1f%% | %.1f / %.1f | %.2f / %.1f | %.2f / %.2f |\n", c,
            ci.segment, ci.customers, 100 * ci.share, ci.mean[0], ci.median[0], ci.mean[1],
            ci.median[1], ci.mean[2], ci.median[2]);
    }
    add(&t, "\n## Limits\n"
            "- Scores are relative to this customer base: retrain when the business changes.\n"
            "- Recency is in whole calendar days to the snapshot date, so a customer who "
            "bought on the last day of data has recency 1.\n"
            "- k-means assumes roughly spherical clusters in the standardised log space; the "
            "names describe centroids, and customers near a boundary may fit two names.\n");
    if (t.oom) {
        free(t.s);
        return NULL;
    }
    return t.s;
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
    printf("%-3s %-22s %9s %6s %9s %9s %11s  %s\n", "#", "cluster", "customers", "share",
           "recency", "frequency", "monetary", "strategy");
    for (size_t c = 0; c < segments_nclusters(m); c++) {
        segments_cluster_info ci;
        segments_cluster(m, c, &ci);
        printf("%-3zu %-22s %9zu %5.1f%% %9.1f %9.2f %11.2f  %s\n", c, ci.segment, ci.customers,
               100 * ci.share, ci.mean[0], ci.mean[1], ci.mean[2], ci.strategy);
    }
    printf("(means per cluster; recency in days, monetary in the data's currency)\n");
    segments_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    const char *config_path = "config/rfm.yaml", *tx_path = NULL, *models_dir = NULL;
    const char *only = NULL;
    int want_print = 0;
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},  {"transactions", required_argument, 0, 't'},
        {"models", required_argument, 0, 'm'},  {"only", required_argument, 0, 'o'},
        {"print-clusters", no_argument, 0, 'p'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:t:m:o:pqh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 't': tx_path = optarg; break;
        case 'm': models_dir = optarg; break;
        case 'o': only = optarg; break;
        case 'p': want_print = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rfm-train: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    gsl_set_error_handler_off();

    int fit[NMODELS];
    for (size_t i = 0; i < NMODELS; i++)
        fit[i] = only == NULL;
    if (only) {
        for (const char *p = only; *p;) {
            size_t len = strcspn(p, ","), i;
            for (i = 0; i < NMODELS && !(strlen(MODELS[i]) == len && !strncmp(p, MODELS[i], len));
                 i++)
                ;
            if (i == NMODELS) {
                fprintf(stderr, "rfm-train: --only: unknown model '%.*s' (known: segments)\n",
                        (int)len, p);
                return 2;
            }
            fit[i] = 1;
            p += len + (p[len] == ',');
        }
    }

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
    if (!tx_path)
        tx_path = cfg->transactions;
    if (!tx_path) {
        fprintf(stderr, "rfm-train: no transactions: set data.transactions in %s or pass "
                        "--transactions FILE\n", config_path);
        config_free(cfg);
        return 2;
    }

    int rc = 1;
    txn_data *d = NULL;
    txn_features *feats = NULL;
    double *rec = NULL, *freq = NULL, *mon = NULL;
    segments_model *seg = NULL;
    modelfile_stage *stage = NULL;
    char *card = NULL;
    json_t *j = NULL;
    txn_report rep;
    progress_state ps = {now_s(), 0};
    double t0 = now_s();
    txn_options topt = cfg->txn;
    topt.product = NULL; /* products feed only the embeddings model, not fitted here */
    rfm_status st = txn_read(tx_path, &topt, progress, &ps, &d, &rep, err, sizeof err);
    if (st != RFM_OK) {
        fprintf(stderr, "rfm-train: %s\n", err);
        rc = st == RFM_EINVAL ? 2 : 1;
        goto out;
    }
    print_report(tx_path, &rep, now_s() - t0);
    size_t n = txn_ncustomers(d);
    feats = calloc(n, sizeof *feats);
    rec = malloc(n * sizeof *rec);
    freq = malloc(n * sizeof *freq);
    mon = malloc(n * sizeof *mon);
    if (!feats || !rec || !freq || !mon) {
        fprintf(stderr, "rfm-train: out of memory for %zu customers\n", n);
        goto out;
    }
    txn_features_asof(d, txn_snapshot_day(d), feats);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!feats[i].active)
            continue;
        rec[m] = feats[i].recency;
        freq[m] = feats[i].frequency;
        mon[m] = feats[i].monetary;
        m++;
    }
    say("rfm-train: %zu customers as of the snapshot\n", m);

    if ((st = modelfile_begin(models_dir, only != NULL, &stage, err, sizeof err)) != RFM_OK) {
        fprintf(stderr, "rfm-train: %s\n", err);
        goto out;
    }
    char d0[11], d1[11], snap[11];
    date_format(txn_first_day(d), d0);
    date_format(txn_last_day(d), d1);
    date_format(txn_snapshot_day(d), snap);
    json_t *data = json_pack("{s:{s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:s,s:s}}", "transactions", "path",
                             tx_path, "sha256", rep.sha256, "bytes", (json_int_t)rep.bytes,
                             "lines", (json_int_t)rep.lines, "used", (json_int_t)rep.used,
                             "customers", (json_int_t)m, "first_date", d0, "last_date", d1,
                             "snapshot_date", snap);
    if ((st = modelfile_set(stage, "data", data, err, sizeof err)) ||
        (st = modelfile_set(stage, "cleaning", cleaning_json(&rep), err, sizeof err)) ||
        (st = modelfile_set(stage, "generator", json_string("rfm-train " VERSION), err,
                            sizeof err))) {
        fprintf(stderr, "rfm-train: %s\n", err);
        goto out;
    }

    if (fit[0]) {
        double ts = now_s();
        if ((st = segments_fit(rec, freq, mon, m, &cfg->segments, &seg, err, sizeof err)) ||
            (st = segments_to_json(seg, &j, err, sizeof err)) ||
            (st = modelfile_write_json(stage, "segments.json", j, err, sizeof err))) {
            fprintf(stderr, "rfm-train: segments: %s\n", err);
            goto out;
        }
        card = segments_card(seg, tx_path, &rep, d);
        if (!card ||
            (st = modelfile_write_text(stage, "segments.md", card, strlen(card), err,
                                       sizeof err)) ||
            (st = modelfile_add_model(stage, "segments", SEGMENTS_VERSION, "segments.json",
                                      "segments.md", rep.sha256, segments_metrics(seg), err,
                                      sizeof err))) {
            fprintf(stderr, "rfm-train: segments: %s\n", card ? err : "out of memory");
            goto out;
        }
        say("rfm-train: segments: k = %zu, silhouette %.4f, %.3f s\n", segments_nclusters(seg),
            segments_silhouette(seg), now_s() - ts);
    }
    st = modelfile_commit(stage, err, sizeof err);
    stage = NULL;
    if (st != RFM_OK) {
        fprintf(stderr, "rfm-train: %s\n", err);
        goto out;
    }
    say("rfm-train: wrote %s/ in %.3f s\n", models_dir, now_s() - t0);
    rc = 0;
out:
    modelfile_abort(stage);
    json_decref(j);
    free(card);
    segments_free(seg);
    free(rec);
    free(freq);
    free(mon);
    free(feats);
    txn_free(d);
    config_free(cfg);
    return rc;
}
