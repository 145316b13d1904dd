/* rfm-train - transactions to a versioned models/ folder.
 *
 * Parses options, reads the config, calls core/ to read and clean the
 * transactions and to fit each model, and stages the files through
 * core/modelfile so that models/ changes all at once or not at all. Holds
 * no model math; prints what it did on stderr.
 *
 * Exit status: 0 success, 1 bad data, a failed fit or the models folder
 * being written by another run (without --wait), 2 bad usage or config.
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

#include "cards.h"
#include "cltv.h"
#include "config.h"
#include "customers.h"
#include "embeddings.h"
#include "train_churn.h"
#include "train_uplift.h"
#include "date.h"
#include "modelfile.h"
#include "segments.h"
#include "sha256.h"
#include "txn.h"

#define VERSION "0.1.0"

enum { M_SEGMENTS, M_CLTV, M_CHURN, M_EMBEDDINGS, M_UPLIFT };
static const char *const MODELS[] = {"segments", "cltv", "churn", "embeddings", "uplift"};
#define NMODELS (sizeof MODELS / sizeof *MODELS)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rfm-train [--config FILE] [--transactions FILE | --summary FILE]\n"
            "                 [--models DIR] [--only LIST] [--wait] [--quiet]\n"
            "       rfm-train [--config FILE] [--models DIR] --print-clusters\n"
            "\n"
            "Reads a transaction export (CSV or CSV.gz), cleans it, fits the models and\n"
            "writes them to the models folder (default from the config: models/).\n"
            "\n"
            "  --config FILE        configuration (default config/rfm.yaml)\n"
            "  --transactions FILE  override data.transactions from the config\n"
            "  --campaign FILE      override uplift.campaign (a randomised campaign log)\n"
            "  --summary FILE       fit the lifetime-value models from a customer summary\n"
            "                       CSV: customer_id,frequency,recency,T,monetary_value\n"
            "                       (lifetimes' convention, days); other models are skipped\n"
            "  --models DIR         override models_dir from the config\n"
            "  --only LIST          refit only these models, keep the others; LIST is\n"
            "                       comma-separated from: segments, cltv, churn, embeddings,\n"
            "                       uplift\n"
            "  --wait               when another run is writing the same models folder\n"
            "                       (it holds the lock file DIR.lock beside it), wait\n"
            "                       for it to finish instead of exiting 1 naming it; runs\n"
            "                       take turns, so two --only runs both land\n"
            "  --print-clusters     print the clusters summary of the trained models\n"
            "  --quiet              no progress or report on stderr\n"
            "  --help               this text\n"
            "\n"
            "Exit status: 0 success, 1 bad data, failed fit or models folder in use,\n"
            "2 bad usage or config.\n");
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

static json_t *cltv_metrics(const cltv_model *c, const cltv_holdout *h)
{
    const bgnbd_fit_result *b = cltv_bgnbd(c);
    const gg_fit_result *g = cltv_gg(c);
    json_t *j = json_pack("{s:{s:f,s:f,s:f,s:f,s:f},s:{s:f,s:f,s:f,s:f,s:f}}", "bgnbd", "r",
                          b->p.r, "alpha", b->p.alpha, "a", b->p.a, "b", b->p.b,
                          "log_likelihood", b->loglik, "gamma_gamma", "p", g->p.p, "q", g->p.q,
                          "v", g->p.v, "log_likelihood", g->loglik, "corr_frequency_spend",
                          g->corr_freq_spend);
    if (j && h->ok)
        json_object_set_new(j, "holdout",
                            json_pack("{s:i,s:I,s:f,s:f,s:f,s:f}", "days", h->days, "customers",
                                      (json_int_t)h->total_n, "actual", h->total_actual,
                                      "predicted", h->total_predicted, "mae", h->mae, "rmse",
                                      h->rmse));
    return j;
}

int main(int argc, char **argv)
{
    const char *config_path = "config/rfm.yaml", *tx_path = NULL, *models_dir = NULL;
    const char *only = NULL, *summary = NULL, *campaign = NULL;
    int want_print = 0, wait_turn = 0;
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},  {"transactions", required_argument, 0, 't'},
        {"models", required_argument, 0, 'm'},  {"only", required_argument, 0, 'o'},
        {"summary", required_argument, 0, 's'}, {"print-clusters", no_argument, 0, 'p'},
        {"campaign", required_argument, 0, 'C'},
        {"wait", no_argument, 0, 'w'},
        {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:t:m:o:s:C:pqwh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 't': tx_path = optarg; break;
        case 'm': models_dir = optarg; break;
        case 'o': only = optarg; break;
        case 's': summary = optarg; break;
        case 'C': campaign = optarg; break;
        case 'p': want_print = 1; break;
        case 'w': wait_turn = 1; break;
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
    if (summary && tx_path) {
        fprintf(stderr, "rfm-train: --summary and --transactions exclude each other\n");
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
                fprintf(stderr, "rfm-train: --only: unknown model '%.*s' (known: segments, cltv, "
                                "churn, embeddings, uplift)\n",
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
    if (!campaign)
        campaign = cfg->campaign;
    int needs_tx = fit[M_SEGMENTS] || fit[M_CLTV] || fit[M_CHURN] || fit[M_EMBEDDINGS];
    if (!tx_path && !summary)
        tx_path = cfg->transactions;
    if (needs_tx && !tx_path && !summary) {
        fprintf(stderr, "rfm-train: no transactions: set data.transactions in %s or pass "
                        "--transactions FILE\n", config_path);
        config_free(cfg);
        return 2;
    }

    int rc = 1;
    txn_data *d = NULL;
    txn_features *feats = NULL;
    double *rec = NULL, *freq = NULL, *mon = NULL, *bx = NULL, *btx = NULL, *bT = NULL,
           *bm = NULL;
    char **ids = NULL;
    size_t m = 0;
    segments_model *seg = NULL;
    cltv_model *cm = NULL;
    modelfile_stage *stage = NULL;
    char *card = NULL, *csvtext = NULL;
    json_t *j = NULL;
    txn_report rep;
    char data_sha[65] = "", data_desc[1024];
    double t0 = now_s();
    rfm_status st;
    /* First the models folder's lock, so that a run that would have to
     * wait or give up does so before reading any data. A partial run
     * (--only, --summary) keeps the other models; a full run replaces the
     * folder, so it also repairs a broken one. */
    int keep = only != NULL || summary != NULL ? MODELFILE_KEEP : 0;
    st = modelfile_begin(models_dir, keep, &stage, err, sizeof err);
    if (st == RFM_EBUSY && wait_turn) {
        say("rfm-train: %s; waiting\n", err);
        st = modelfile_begin(models_dir, keep | MODELFILE_WAIT, &stage, err, sizeof err);
    }
    if (st != RFM_OK) {
        fprintf(stderr, "rfm-train: %s%s\n", err,
                st == RFM_EBUSY ? "; try again when it is done, or pass --wait" : "");
        goto out;
    }
    if (!needs_tx) {
        snprintf(data_desc, sizeof data_desc, "- (no transactions read)");
    } else if (summary) {
        if ((st = cltv_read_summary(summary, &ids, &bx, &btx, &bT, &bm, &m, data_sha, err,
                               sizeof err)) != RFM_OK) {
            fprintf(stderr, "rfm-train: %s\n", err);
            rc = st == RFM_EINVAL ? 2 : 1;
            goto out;
        }
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
        snprintf(data_desc, sizeof data_desc,
                 "- Customer summary `%s` (sha256 `%s`): %zu customers", summary, data_sha, m);
    } else {
        txn_options topt = cfg->txn;
        if (!fit[M_EMBEDDINGS])
            topt.product = NULL; /* only the embeddings need products: skip the work */
        else if (!topt.product) {
            say("rfm-train: embeddings: skipped (data.columns.product is not set)\n");
            fit[M_EMBEDDINGS] = 0;
        }
        progress_state ps = {now_s(), 0};
        if ((st = txn_read(tx_path, &topt, progress, &ps, &d, &rep, err, sizeof err)) != RFM_OK) {
            if (st == RFM_EDATA && rep.lines > 0) /* every line dropped: show why */
                print_report(tx_path, &rep, now_s() - t0);
            fprintf(stderr, "rfm-train: %s\n", err);
            rc = st == RFM_EINVAL ? 2 : 1;
            goto out;
        }
        print_report(tx_path, &rep, now_s() - t0);
        memcpy(data_sha, rep.sha256, sizeof data_sha);
        size_t n = txn_ncustomers(d);
        feats = calloc(n, sizeof *feats);
        rec = malloc(n * sizeof *rec), freq = malloc(n * sizeof *freq), mon = malloc(n * sizeof *mon);
        bx = malloc(n * sizeof *bx), btx = malloc(n * sizeof *btx), bT = malloc(n * sizeof *bT);
        bm = malloc(n * sizeof *bm), ids = calloc(n, sizeof *ids);
        if (!feats || !rec || !freq || !mon || !bx || !btx || !bT || !bm || !ids) {
            fprintf(stderr, "rfm-train: out of memory for %zu customers\n", n);
            goto out;
        }
        txn_features_asof(d, txn_snapshot_day(d), feats);
        for (size_t i = 0; i < n; i++) {
            if (!feats[i].active)
                continue;
            if (!(ids[m] = strdup(txn_customer_id(d, i)))) {
                fprintf(stderr, "rfm-train: out of memory for %zu customers\n", n);
                goto out;
            }
            rec[m] = feats[i].recency, freq[m] = feats[i].frequency, mon[m] = feats[i].monetary;
            bx[m] = feats[i].bg_x, btx[m] = feats[i].bg_t_x, bT[m] = feats[i].bg_T;
            bm[m] = feats[i].bg_mean_spend;
            m++;
        }
        char d0[11], d1[11];
        date_format(txn_first_day(d), d0);
        date_format(txn_last_day(d), d1);
        snprintf(data_desc, sizeof data_desc,
                 "- Transactions `%s` (sha256 `%s`): %llu lines, %llu used, %zu customers\n"
                 "- Purchases from %s to %s",
                 tx_path, rep.sha256, (unsigned long long)rep.lines, (unsigned long long)rep.used,
                 m, d0, d1);
        say("rfm-train: %zu customers as of the snapshot\n", m);
    }

    if (d) {
        char d0[11], d1[11], snap[11];
        date_format(txn_first_day(d), d0);
        date_format(txn_last_day(d), d1);
        date_format(txn_snapshot_day(d), snap);
        json_t *data = json_pack("{s:{s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:s,s:s}}", "transactions",
                                 "path", tx_path, "sha256", rep.sha256, "bytes",
                                 (json_int_t)rep.bytes, "lines", (json_int_t)rep.lines, "used",
                                 (json_int_t)rep.used, "customers", (json_int_t)m, "first_date",
                                 d0, "last_date", d1, "snapshot_date", snap);
        if ((st = modelfile_set(stage, "data", data, err, sizeof err)) ||
            (st = modelfile_set(stage, "cleaning", cleaning_json(&rep), err, sizeof err))) {
            fprintf(stderr, "rfm-train: %s\n", err);
            goto out;
        }
    } else if (summary &&
               (st = modelfile_set(stage, "data",
                                   json_pack("{s:{s:s,s:s,s:I}}", "summary", "path", summary,
                                             "sha256", data_sha, "customers", (json_int_t)m),
                                   err, sizeof err))) {
        fprintf(stderr, "rfm-train: %s\n", err);
        goto out;
    }
    if ((st = modelfile_set(stage, "generator", json_string("rfm-train " VERSION), err,
                            sizeof err))) {
        fprintf(stderr, "rfm-train: %s\n", err);
        goto out;
    }

    /* The customer table serves lookups by customer_id. */
    customer_row *rows = needs_tx ? calloc(m ? m : 1, sizeof *rows) : NULL;
    if (needs_tx) {
    for (size_t i = 0; rows && i < m; i++)
        rows[i] = (customer_row){d ? rec[i] : NAN, d ? freq[i] : NAN, d ? mon[i] : NAN,
                                 bx[i], btx[i], bT[i], bm[i]};
    csvtext = rows ? customers_csv((const char *const *)ids, rows, m) : NULL;
    free(rows);
    if (!csvtext ||
        (st = modelfile_write_text(stage, "customers.csv", csvtext, strlen(csvtext), err,
                                   sizeof err)) ||
        (st = modelfile_add_model(stage, "customers", "1.0.0", "customers.csv", NULL, data_sha,
                                  json_pack("{s:I}", "customers", (json_int_t)m), err,
                                  sizeof err))) {
        fprintf(stderr, "rfm-train: customers: %s\n", csvtext ? err : "out of memory");
        goto out;
    }
    }

    if (fit[M_SEGMENTS]) {
        double ts = now_s();
        if ((st = segments_fit(rec, freq, mon, m, &cfg->segments, &seg, err, sizeof err)) ||
            (st = segments_to_json(seg, &j, err, sizeof err)) ||
            (st = modelfile_write_json(stage, "segments.json", j, err, sizeof err))) {
            fprintf(stderr, "rfm-train: segments: %s\n", err);
            goto out;
        }
        json_decref(j);
        j = NULL;
        card = card_segments(seg, tx_path, &rep, d);
        if (!card ||
            (st = modelfile_write_text(stage, "segments.md", card, strlen(card), err,
                                       sizeof err)) ||
            (st = modelfile_add_model(stage, "segments", SEGMENTS_VERSION, "segments.json",
                                      "segments.md", data_sha, segments_metrics(seg), err,
                                      sizeof err))) {
            fprintf(stderr, "rfm-train: segments: %s\n", card ? err : "out of memory");
            goto out;
        }
        free(card);
        card = NULL;
        say("rfm-train: segments: k = %zu, silhouette %.4f, %.3f s\n", segments_nclusters(seg),
            segments_silhouette(seg), now_s() - ts);
    }
    if (fit[M_CLTV]) {
        double ts = now_s();
        if ((st = cltv_fit(bx, btx, bT, bm, m, &cfg->cltv, &cm, err, sizeof err)) != RFM_OK) {
            fprintf(stderr, "rfm-train: cltv: %s\n", err);
            goto out;
        }
        double fit_s = now_s() - ts;
        cltv_holdout h;
        memset(&h, 0, sizeof h);
        if (d && cltv_holdout_check(d, cfg->cltv.holdout_days, cfg->cltv.penalizer_coef, &h, err,
                                    sizeof err) != RFM_OK)
            say("rfm-train: cltv: holdout check skipped: %s\n", err);
        if ((st = cltv_to_json(cm, &j, err, sizeof err)) != RFM_OK) {
            fprintf(stderr, "rfm-train: cltv: %s\n", err);
            goto out;
        }
        json_object_set_new(j, "defaults", json_pack("{s:f,s:f}", "horizon_days",
                                                     cfg->cltv.horizon_days, "discount_rate",
                                                     cfg->cltv.discount_rate));
        card = card_cltv(cm, data_desc, &h, &cfg->cltv);
        if ((st = modelfile_write_json(stage, "cltv.json", j, err, sizeof err)) || !card ||
            (st = modelfile_write_text(stage, "cltv.md", card, strlen(card), err, sizeof err)) ||
            (st = modelfile_add_model(stage, "cltv", CLTV_VERSION, "cltv.json", "cltv.md",
                                      data_sha, cltv_metrics(cm, &h), err, sizeof err))) {
            fprintf(stderr, "rfm-train: cltv: %s\n", card ? err : "out of memory");
            goto out;
        }
        const bgnbd_fit_result *b = cltv_bgnbd(cm);
        say("rfm-train: cltv: r %.4g alpha %.4g a %.4g b %.4g; p %.4g q %.4g v %.4g; fit %.3f s\n",
            b->p.r, b->p.alpha, b->p.a, b->p.b, cltv_gg(cm)->p.p, cltv_gg(cm)->p.q,
            cltv_gg(cm)->p.v, fit_s);
        if (h.ok)
            say("rfm-train: cltv: holdout %d days: %.0f purchase days actual, %.1f predicted\n",
                h.days, h.total_actual, h.total_predicted);
    }
    if (fit[M_CHURN]) {
        double ts = now_s();
        json_t *met, *cj;
        free(card);
        card = NULL;
        if ((st = train_churn(d, &cfg->churn, data_desc, &cj, &met, &card, err, sizeof err))) {
            fprintf(stderr, "rfm-train: churn: %s\n", err);
            goto out;
        }
        st = modelfile_write_json(stage, "churn.json", cj, err, sizeof err);
        json_decref(cj);
        if (st || (st = modelfile_write_text(stage, "churn.md", card, strlen(card), err,
                                             sizeof err))) {
            json_decref(met);
            fprintf(stderr, "rfm-train: churn: %s\n", err);
            goto out;
        }
        say("rfm-train: churn: held-out AUC %.4f (BG/NBD %.4f), %.3f s\n",
            json_real_value(json_object_get(json_object_get(met, "logistic"), "auc")),
            json_real_value(json_object_get(json_object_get(met, "bgnbd_1_minus_p_alive"), "auc")),
            now_s() - ts);
        if ((st = modelfile_add_model(stage, "churn", CHURN_FILE_VERSION, "churn.json",
                                      "churn.md", data_sha, met, err, sizeof err))) {
            fprintf(stderr, "rfm-train: churn: %s\n", err);
            goto out;
        }
    }
    if (fit[M_EMBEDDINGS]) {
        double ts = now_s();
        json_t *met;
        free(card);
        card = NULL;
        if ((st = train_embeddings(d, &cfg->embed, &cfg->ann, modelfile_stage_dir(stage), data_desc,
                                   &met, &card, err, sizeof err)) ||
            (st = modelfile_write_text(stage, "embeddings.md", card, strlen(card), err,
                                       sizeof err))) {
            fprintf(stderr, "rfm-train: embeddings: %s\n", err);
            goto out;
        }
        const json_t *ho = json_object_get(met, "last_basket_holdout");
        say("rfm-train: embeddings: hit rate at 10 %.4f (popular %.4f), %.3f s\n",
            json_real_value(json_object_get(ho, "hit_rate_neighbors")),
            json_real_value(json_object_get(ho, "hit_rate_popular")), now_s() - ts);
        if ((st = modelfile_add_model(stage, "embeddings", EMBEDDINGS_VERSION,
                                      "customer2vec.faiss", "embeddings.md", data_sha, met, err,
                                      sizeof err))) {
            fprintf(stderr, "rfm-train: embeddings: %s\n", err);
            goto out;
        }
    }
    if (fit[M_UPLIFT]) {
        double ts = now_s();
        json_t *met, *uj;
        char usha[65];
        free(card);
        card = NULL;
        if (!campaign) {
            fprintf(stderr, "rfm-train: uplift: no campaign file (uplift.campaign or --campaign)\n");
            goto out;
        }
        if ((st = train_uplift(campaign, &cfg->campaign_spec, &cfg->uplift, &uj, &met, &card, usha, err,
                               sizeof err))) {
            fprintf(stderr, "rfm-train: uplift: %s\n", err);
            rc = st == RFM_EINVAL ? 2 : 1;
            goto out;
        }
        st = modelfile_write_json(stage, "uplift.json", uj, err, sizeof err);
        json_decref(uj);
        if (st || (st = modelfile_write_text(stage, "uplift.md", card, strlen(card), err,
                                             sizeof err))) {
            json_decref(met);
            fprintf(stderr, "rfm-train: uplift: %s\n", err);
            goto out;
        }
        say("rfm-train: uplift: %s served, %.3f s\n",
            json_string_value(json_object_get(met, "served_learner")), now_s() - ts);
        if ((st = modelfile_add_model(stage, "uplift", UPLIFT_FILE_VERSION, "uplift.json",
                                      "uplift.md", usha, met, err, sizeof err))) {
            fprintf(stderr, "rfm-train: uplift: %s\n", err);
            goto out;
        }
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
    free(csvtext);
    segments_free(seg);
    cltv_free(cm);
    for (size_t i = 0; ids && i < m; i++)
        free(ids[i]);
    free(ids);
    free(rec), free(freq), free(mon), free(bx), free(btx), free(bT), free(bm);
    free(feats);
    txn_free(d);
    config_free(cfg);
    return rc;
}
