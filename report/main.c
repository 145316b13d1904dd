/* rfm-report - the trained models as one self-contained HTML report, and
 * optionally a PDF of it printed by headless Chromium.
 *
 * For the people who decide: segment and cluster summary, churn model
 * performance (ROC, calibration by decile, lift and cumulative gains,
 * global importance), lifetime-value fit and holdout tracking, uplift Qini
 * curves per arm, input drift of the live state against training, and
 * every model card. The numbers come from the models folder as rfm-train
 * wrote it (the manifest's metrics and the model files' "evaluation"
 * blocks, computed in core/); this program only lays them out
 * (report/svg.c draws the charts, report/html.c the text). docs/report.md
 * describes every section.
 *
 * The page has no scripts, fonts, images or links to fetch: inline SVG and
 * CSS only, so it opens offline, mails as one file and prints as it shows.
 *
 * Exit status: 0 success, 1 bad models or state, a failed write or a
 * failed PDF, 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <gsl/gsl_errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "customers.h"
#include "date.h"
#include "drift.h"
#include "fileio.h"
#include "html.h"
#include "modelfile.h"
#include "segments.h"
#include "state.h"
#include "svg.h"
#include "say.h"

#define CHROMIUM "/usr/bin/chromium"
#define PDF_TIMEOUT_S 120

static void usage(FILE *f)
{
    fprintf(f, "usage: rfm-report --models DIR --out FILE.html [--pdf FILE.pdf]\n"
               "                  [--state PATH [--as-of DATE]] [--chromium PATH] [--quiet]\n"
               "\n"
               "Writes the trained models as one self-contained HTML report (inline SVG\n"
               "charts, no scripts, no external requests): segments and clusters, churn\n"
               "model performance, lifetime value and its holdout, uplift Qini curves,\n"
               "input drift and every model card (docs/report.md).\n"
               "\n"
               "  --models DIR     the models folder rfm-train wrote (default models)\n"
               "  --out FILE       the HTML report\n"
               "  --pdf FILE       also print it to PDF with headless Chromium\n"
               "  --state PATH     the customer-state store (state.path): input drift of\n"
               "                   the live customers against training\n"
               "  --as-of DATE     the day drift is measured at (YYYY-MM-DD; default today)\n"
               "  --chromium PATH  the browser that prints the PDF (default " CHROMIUM ")\n"
               "  --quiet          no progress on stderr\n"
               "  --help           this text\n"
               "\n"
               "Exit status: 0 success, 1 bad models or state, failed write or PDF,\n"
               "2 bad usage.\n");
}

/* What the sections read. */
typedef struct {
    FILE *f;
    const char *dir;
    json_t *man;
    const json_t *models; /* man's "models" */
    customers *cust;      /* NULL when customers.csv is not listed */
    char err[RFM_ERRLEN];
} report;

/* ---- small readers ----------------------------------------------------- */

static const json_t *at(const json_t *j, const char *key)
{
    return json_is_object(j) ? json_object_get(j, key) : NULL;
}

static double num(const json_t *j, const char *key)
{
    const json_t *v = at(j, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *str(const json_t *j, const char *key)
{
    const char *s = json_string_value(at(j, key));
    return s ? s : "";
}

/* A model's JSON file, or NULL (with why in r->err) when it is not listed. */
static rfm_status load_model(report *r, const char *name, json_t **out)
{
    *out = NULL;
    if (!at(r->models, name))
        return RFM_ENOTFOUND;
    return modelfile_load(r->dir, r->man, name, out, r->err, sizeof r->err);
}

static void absent(report *r, const char *name)
{
    fprintf(r->f,
            "<p class=\"note\">No <code>%s</code> model in this models folder: train it with "
            "<code>rfm-train</code> (or <code>--only %s</code>).</p>\n",
            name, name);
}

static void fmt_cell(FILE *f, const char *fmt, double v)
{
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("&ndash;", f);
}

/* ---- header ------------------------------------------------------------ */

static void header(report *r)
{
    FILE *f = r->f;
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%d %H:%M UTC", &tm);
    const json_t *tx = at(at(r->man, "data"), "transactions");
    fputs("<header><h1>Customer intelligence report</h1>\n<p class=\"meta\">Generated ", f);
    html_text(f, now);
    fputs(" by rfm-report from the models folder <code>", f);
    html_text(f, r->dir);
    fputs("</code>, created ", f);
    html_text(f, str(r->man, "created_at"));
    fputs(".</p>\n", f);
    if (tx) {
        fputs("<p class=\"meta\">Data: <code>", f);
        html_text(f, str(tx, "path"));
        fprintf(f, "</code>, %.0f lines, %.0f used, %.0f customers, purchases from ",
                num(tx, "lines"), num(tx, "used"), num(tx, "customers"));
        html_text(f, str(tx, "first_date"));
        fputs(" to ", f);
        html_text(f, str(tx, "last_date"));
        fputs("; snapshot ", f);
        html_text(f, str(tx, "snapshot_date"));
        fputs(".</p>\n", f);
    }
    fputs("<table><thead><tr><th>model</th><th>version</th><th>trained at</th></tr></thead>"
          "<tbody>\n",
          f);
    const char *name;
    const json_t *e;
    json_object_foreach((json_t *)r->models, name, e)
    {
        fputs("<tr><td>", f);
        html_text(f, name);
        fputs("</td><td><code>", f);
        html_text(f, str(e, "version"));
        fputs("</code></td><td>", f);
        html_text(f, str(e, "trained_at"));
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody></table>\n<nav><ol><li><a href=\"#segments\">Segments and clusters</a></li>"
          "<li><a href=\"#churn\">Churn model performance</a></li>"
          "<li><a href=\"#cltv\">Lifetime value</a></li>"
          "<li><a href=\"#uplift\">Uplift</a></li>"
          "<li><a href=\"#drift\">Input drift</a></li>"
          "<li><a href=\"#cards\">Model cards</a></li></ol></nav></header>\n",
          f);
}

/* ---- segments ---------------------------------------------------------- */

#define MAX_RFM_SEGMENTS 64

static int section_segments(report *r)
{
    FILE *f = r->f;
    fputs("<section id=\"segments\"><h2>Segments and clusters</h2>\n", f);
    json_t *j;
    segments_model *m = NULL;
    rfm_status st = load_model(r, "segments", &j);
    if (st == RFM_ENOTFOUND) {
        absent(r, "segments");
        fputs("</section>\n", f);
        return 0;
    }
    if (st == RFM_OK) {
        st = segments_from_json(j, &m, r->err, sizeof r->err);
        json_decref(j);
    }
    if (st != RFM_OK)
        return 1;
    size_t k = segments_nclusters(m);
    fprintf(f,
            "<p>%zu customers in %zu k-means clusters on standardised log1p(recency, frequency, "
            "monetary), mean silhouette %.3f. Means per cluster; recency in days, monetary in "
            "the data's currency. Each rule is the best depth-2 tree leaf describing the "
            "cluster against the others.</p>\n",
            segments_ncustomers(m), k, segments_silhouette(m));
    fputs("<table><thead><tr><th>#</th><th>cluster</th><th>customers</th><th>share</th>"
          "<th>recency</th><th>frequency</th><th>monetary</th><th>rule</th><th>strategy</th>"
          "</tr></thead><tbody>\n",
          f);
    const char **names = calloc(k ? k : 1, sizeof *names);
    double *sizes = calloc(k ? k : 1, sizeof *sizes);
    if (!names || !sizes) {
        free(names), free(sizes), segments_free(m);
        snprintf(r->err, sizeof r->err, "out of memory");
        return 1;
    }
    for (size_t c = 0; c < k; c++) {
        segments_cluster_info ci;
        segments_cluster(m, c, &ci);
        names[c] = ci.segment;
        sizes[c] = (double)ci.customers;
        char rule[256] = "";
        if (ci.rule)
            segments_rule_text(ci.rule, rule, sizeof rule);
        fprintf(f, "<tr><td>%zu</td><td>", c);
        html_text(f, ci.segment);
        fprintf(f, "</td><td>%zu</td><td>%.1f%%</td><td>%.1f</td><td>%.2f</td><td>%.2f</td><td>",
                ci.customers, 100 * ci.share, ci.mean[0], ci.mean[1], ci.mean[2]);
        html_text(f, rule);
        if (ci.rule)
            fprintf(f, " <span class=\"meta\">(%.0f%% of the cluster, %.0f%% of others)</span>",
                    100.0 * (double)ci.rule->tp / (double)(ci.rule->npos ? ci.rule->npos : 1),
                    100.0 * (double)ci.rule->fp / (double)(ci.rule->nneg ? ci.rule->nneg : 1));
        fputs("</td><td>", f);
        html_text(f, ci.strategy);
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
    double top = 0;
    for (size_t c = 0; c < k; c++)
        top = fmax(top, sizes[c]);
    svg_series s = {"customers", NULL, sizes, k, SVG_SOLID};
    svg_axes a = {
        "Customers per cluster", "cluster", "customers", 0, 1, 0, svg_nice_max(top), 0, 0};
    fputs("<figure>", f);
    svg_bars(f, &a, names, k, &s, 1);
    fputs("</figure>\n", f);

    /* RFM segments: each customer of the table scored by the model's map. */
    if (r->cust) {
        const char *seg[MAX_RFM_SEGMENTS];
        double cnt[MAX_RFM_SEGMENTS] = {0}, total = 0;
        size_t nseg = 0;
        for (size_t i = 0; i < customers_count(r->cust); i++) {
            const customer_row *row = customers_row(r->cust, i);
            segments_result res;
            if (segments_predict(m, row->recency, row->frequency, row->monetary, &res, r->err,
                                 sizeof r->err) != RFM_OK)
                continue; /* a table from a customer summary has no RFM values */
            size_t s2 = 0;
            while (s2 < nseg && strcmp(seg[s2], res.rfm_segment))
                s2++;
            if (s2 == nseg && nseg < MAX_RFM_SEGMENTS)
                seg[nseg++] = res.rfm_segment;
            if (s2 < nseg)
                cnt[s2] += 1, total += 1;
        }
        for (size_t i2 = 1; i2 < nseg; i2++) /* most customers first (insertion sort) */
            for (size_t b = i2; b > 0 && cnt[b] > cnt[b - 1]; b--) {
                double t = cnt[b];
                const char *ts = seg[b];
                cnt[b] = cnt[b - 1], seg[b] = seg[b - 1];
                cnt[b - 1] = t, seg[b - 1] = ts;
            }
        if (nseg) {
            fputs("<h3>RFM segments</h3>\n<table><thead><tr><th>RFM segment</th>"
                  "<th>customers</th><th>share</th></tr></thead><tbody>\n",
                  f);
            double mx = 0;
            for (size_t i = 0; i < nseg; i++) {
                fputs("<tr><td>", f);
                html_text(f, seg[i]);
                fprintf(f, "</td><td>%.0f</td><td>%.1f%%</td></tr>\n", cnt[i],
                        100 * cnt[i] / total);
                mx = fmax(mx, cnt[i]);
            }
            fputs("</tbody></table>\n", f);
            if (nseg <= 12) {
                svg_series s3 = {"customers", NULL, cnt, nseg, SVG_SOLID};
                svg_axes a3 = {"Customers per RFM segment",
                               "RFM segment",
                               "customers",
                               0,
                               1,
                               0,
                               svg_nice_max(mx),
                               0,
                               0};
                fputs("<figure class=\"wide\">", f);
                svg_bars(f, &a3, seg, nseg, &s3, 1);
                fputs("</figure>\n", f);
            }
        }
    }
    free(names), free(sizes);
    segments_free(m);
    fputs("</section>\n", f);
    return 0;
}

/* ---- churn ------------------------------------------------------------- */

#define MAX_LEARNERS 4
#define MAX_BINS 20

/* The points of a JSON array of [x, y] pairs (or of objects with keys kx,
 * ky) into new arrays, optionally after a leading (x0, y0). */
static size_t points(const json_t *arr, const char *kx, const char *ky, int lead, double x0,
                     double y0, double **x, double **y)
{
    size_t n = json_array_size(arr), k = 0;
    *x = malloc((n + 1) * sizeof **x), *y = malloc((n + 1) * sizeof **y);
    if (!*x || !*y)
        return 0;
    if (lead)
        (*x)[k] = x0, (*y)[k] = y0, k++;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        if (kx)
            (*x)[k] = num(e, kx), (*y)[k] = num(e, ky);
        else
            (*x)[k] = json_number_value(json_array_get(e, 0)),
            (*y)[k] = json_number_value(json_array_get(e, 1));
        k++;
    }
    return k;
}

static const double DIAG[2] = {0, 1};

static int section_churn(report *r)
{
    FILE *f = r->f;
    fputs("<section id=\"churn\"><h2>Churn model performance</h2>\n", f);
    json_t *j;
    rfm_status st = load_model(r, "churn", &j);
    if (st == RFM_ENOTFOUND) {
        absent(r, "churn");
        fputs("</section>\n", f);
        return 0;
    }
    if (st != RFM_OK)
        return 1;
    const json_t *met = at(at(r->models, "churn"), "metrics");
    const json_t *ev = at(j, "evaluation");
    fprintf(f,
            "<p>Churn: no purchase in the %.0f days after the cut %s. %.0f customers labelled, "
            "%.1f%% churned; %.0f held out for the figures below (the fit never saw them).</p>\n",
            num(at(j, "serving"), "cut_days"), str(met, "cut_date"), num(met, "customers"),
            100 * num(met, "churn_rate"), num(met, "test_customers"));
    fputs("<table><thead><tr><th>held-out scores</th><th>AUC</th><th>log loss</th>"
          "<th>Brier</th></tr></thead><tbody>\n",
          f);
    static const char *const rows[][2] = {{"logistic", "logistic regression (served)"},
                                          {"bgnbd_1_minus_p_alive", "BG/NBD 1 - P(alive)"}};
    for (size_t i = 0; i < 2; i++) {
        const json_t *m = at(met, rows[i][0]);
        if (!m)
            continue;
        fprintf(f, "<tr><td>%s</td><td>", rows[i][1]);
        fmt_cell(f, "%.4f", num(m, "auc"));
        fputs("</td><td>", f);
        fmt_cell(f, "%.4f", num(m, "log_loss"));
        fputs("</td><td>", f);
        fmt_cell(f, "%.4f", num(m, "brier"));
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
    fputs("<div class=\"charts\">", f);
    if (!json_object_size(ev)) {
        fputs("<p class=\"note\">This churn model file has no <code>evaluation</code> block "
              "(written before churn 1.1.0): retrain with <code>rfm-train --only churn</code> "
              "to draw its curves.</p>\n",
              f);
    } else {
        /* One series per learner in the evaluation block (and the random line). */
        svg_series roc[MAX_LEARNERS + 1], cal[MAX_LEARNERS + 1], gain[MAX_LEARNERS + 1],
            lift[MAX_LEARNERS];
        double *bufs[MAX_LEARNERS * 8] = {0};
        const char *cats[MAX_BINS];
        char catbuf[MAX_BINS][8];
        size_t nl = 0, nb = 0, nbins = 0;
        const char *name;
        const json_t *e;
        json_object_foreach((json_t *)ev, name, e)
        {
            if (nl == MAX_LEARNERS)
                break;
            double **b = bufs + nb;
            size_t n1 = points(at(e, "roc"), NULL, NULL, 0, 0, 0, &b[0], &b[1]);
            size_t n2 = points(at(e, "calibration"), "mean_predicted", "observed_rate", 0, 0, 0,
                               &b[2], &b[3]);
            size_t n3 = points(at(e, "gains"), "share", "gain", 1, 0, 0, &b[4], &b[5]);
            size_t n4 = points(at(e, "gains"), "share", "lift", 0, 0, 0, &b[6], &b[7]);
            nb += 8;
            roc[nl] = (svg_series){name, b[0], b[1], n1, SVG_SOLID};
            cal[nl] = (svg_series){name, b[2], b[3], n2, SVG_MARKERS};
            gain[nl] = (svg_series){name, b[4], b[5], n3, SVG_MARKERS};
            lift[nl] = (svg_series){name, NULL, b[7], n4, SVG_SOLID};
            nbins = n4 > nbins ? n4 : nbins;
            fprintf(f, "<p>Held-out <strong>");
            html_text(f, name);
            fprintf(f, "</strong>: %.0f customers, %.0f churned, AUC %.4f.</p>\n",
                    num(e, "customers"), num(e, "positives"), num(e, "auc"));
            nl++;
        }
        if (nbins > MAX_BINS)
            nbins = MAX_BINS;
        for (size_t i = 0; i < nbins; i++) {
            snprintf(catbuf[i], sizeof catbuf[i], "%zu%%", (i + 1) * 100 / nbins);
            cats[i] = catbuf[i];
        }
        roc[nl] = cal[nl] = gain[nl] = (svg_series){"random", DIAG, DIAG, 2, SVG_DASHED};
        cal[nl].name = "perfectly calibrated";
        fputs("<div class=\"charts\"><figure>", f);
        svg_axes a1 = {
            "ROC curve (held-out)", "false positive rate", "true positive rate", 0, 1, 0, 1, 1, 1};
        svg_lines(f, &a1, roc, nl + 1);
        fputs("<figcaption>Each point: the share of churners (up) and of stayers (right) "
              "flagged at one threshold; the area under it is the AUC.</figcaption></figure>\n"
              "<figure>",
              f);
        svg_axes a2 = {"Calibration by decile",
                       "mean predicted probability",
                       "observed churn rate",
                       0,
                       1,
                       0,
                       1,
                       1,
                       1};
        svg_lines(f, &a2, cal, nl + 1);
        fputs("<figcaption>Held-out customers in ten groups by predicted probability: "
              "on the diagonal, a predicted 40% means 40% churn.</figcaption></figure>\n"
              "<figure>",
              f);
        svg_axes a3 = {"Cumulative gains",
                       "share of customers targeted (highest risk first)",
                       "share of churners reached",
                       0,
                       1,
                       0,
                       1,
                       1,
                       1};
        svg_lines(f, &a3, gain, nl + 1);
        fputs("<figcaption>Targeting the riskiest customers first: the share of all churners "
              "reached.</figcaption></figure>\n<figure>",
              f);
        double mx = 1;
        for (size_t l = 0; l < nl; l++)
            for (size_t i = 0; i < lift[l].n; i++)
                mx = fmax(mx, lift[l].y[i]);
        svg_axes a4 = {"Cumulative lift by decile",
                       "share targeted",
                       "lift over random",
                       0,
                       1,
                       0,
                       svg_nice_max(mx),
                       0,
                       0};
        svg_bars(f, &a4, cats, nbins, lift, nl);
        fputs("<figcaption>How many times the base churn rate the targeted customers "
              "hold.</figcaption></figure>\n",
              f);
        for (size_t i = 0; i < nb; i++)
            free(bufs[i]);
    }
    const json_t *imp = at(met, "global_importance");
    if (json_object_size(imp)) {
        const char *cats[8];
        double v[8], mx = 0;
        size_t n = 0;
        const char *name;
        const json_t *e;
        json_object_foreach((json_t *)imp, name, e)
        {
            if (n == 8)
                break;
            cats[n] = name, v[n] = json_number_value(e), mx = fmax(mx, v[n]), n++;
        }
        svg_series s = {"mean |SHAP| (log-odds)", NULL, v, n, SVG_SOLID};
        svg_axes a = {"Global importance",
                      "feature",
                      "mean |SHAP| in log-odds",
                      0,
                      1,
                      0,
                      svg_nice_max(mx),
                      0,
                      0};
        fputs("<figure>", f);
        svg_bars(f, &a, cats, n, &s, 1);
        fputs("<figcaption>Mean absolute SHAP value of each feature over the training "
              "customers: how much it moves a typical score.</figcaption></figure>\n",
              f);
    }
    fputs("</div>\n", f);
    json_decref(j);
    fputs("</section>\n", f);
    return 0;
}

/* ---- lifetime value ---------------------------------------------------- */

static void param_rows(FILE *f, const char *model, const json_t *m, const char *const *names,
                       size_t n)
{
    const json_t *ci = at(m, "ci95"), *se = at(m, "standard_errors");
    for (size_t i = 0; i < n; i++) {
        const json_t *iv = at(ci, names[i]);
        fprintf(f, "<tr><td>%s</td><td>%s</td><td>", model, names[i]);
        fmt_cell(f, "%.4g", num(m, names[i]));
        fputs("</td><td>", f);
        fmt_cell(f, "%.3g", num(se, names[i]));
        fputs("</td><td>", f);
        fmt_cell(f, "%.4g", json_number_value(json_array_get(iv, 0)));
        fputs(" &ndash; ", f);
        fmt_cell(f, "%.4g", json_number_value(json_array_get(iv, 1)));
        fputs("</td></tr>\n", f);
    }
}

static int section_cltv(report *r)
{
    FILE *f = r->f;
    fputs("<section id=\"cltv\"><h2>Lifetime value (CLTV)</h2>\n", f);
    json_t *j;
    rfm_status st = load_model(r, "cltv", &j);
    if (st == RFM_ENOTFOUND) {
        absent(r, "cltv");
        fputs("</section>\n", f);
        return 0;
    }
    if (st != RFM_OK)
        return 1;
    const json_t *bg = at(j, "bgnbd"), *gg = at(j, "gamma_gamma");
    fputs("<p>BG/NBD for the number of purchases and Gamma-Gamma for the spend per purchase, "
          "fitted by maximum likelihood; 95% intervals from the standard errors of the "
          "log-parameters (delta method). A very wide interval marks a parameter the data "
          "hardly identify.</p>\n<table><thead><tr><th>model</th><th>parameter</th>"
          "<th>estimate</th><th>standard error</th><th>95% interval</th></tr></thead>"
          "<tbody>\n",
          f);
    static const char *const bgn[] = {"r", "alpha", "a", "b"}, *const ggn[] = {"p", "q", "v"};
    param_rows(f, "BG/NBD", bg, bgn, 4);
    param_rows(f, "Gamma-Gamma", gg, ggn, 3);
    fputs("</tbody></table>\n", f);
    const json_t *ho = at(at(j, "evaluation"), "holdout");
    if (!at(j, "evaluation")) {
        fputs("<p class=\"note\">This lifetime-value model file has no <code>evaluation</code> "
              "block (written before cltv 1.1.0): retrain with <code>rfm-train --only "
              "cltv</code> to track its holdout.</p>\n",
              f);
    } else if (!json_is_object(ho)) {
        fputs("<p class=\"note\">No holdout check: the data start too late for the cut (or "
              "the model was fitted from a customer summary).</p>\n",
              f);
    } else {
        fprintf(f,
                "<h3>Holdout tracking</h3>\n<p>BG/NBD refitted on the purchases before %s, "
                "then the %.0f customers' purchase days in the %.0f days after it, against "
                "the model's expectation: %.0f actual, %.1f predicted (mean absolute error "
                "%.3f per customer).</p>\n",
                str(ho, "cut"), num(ho, "customers"), num(ho, "days"), num(ho, "actual"),
                num(ho, "predicted"), num(ho, "mae"));
        double *d1 = NULL, *a1 = NULL, *d2 = NULL, *p2 = NULL;
        size_t n1 = points(at(ho, "tracking"), "day", "actual", 1, 0, 0, &d1, &a1);
        size_t n2 = points(at(ho, "tracking"), "day", "predicted", 1, 0, 0, &d2, &p2);
        double mx = 0;
        for (size_t i = 0; i < n1 && i < n2; i++)
            mx = fmax(mx, fmax(a1[i], p2[i]));
        svg_series s[2] = {{"actual", d1, a1, n1, SVG_MARKERS},
                           {"predicted", d2, p2, n2, SVG_DASHED}};
        svg_axes a = {"Holdout: cumulative repeat purchase days",
                      "days after the cut",
                      "purchase days (all customers)",
                      0,
                      n1 ? d1[n1 - 1] : 1,
                      0,
                      svg_nice_max(mx),
                      0,
                      0};
        fputs("<div class=\"charts\"><figure>", f);
        svg_lines(f, &a, s, 2);
        fputs("</figure>\n", f);
        free(d1), free(a1), free(d2), free(p2);
        /* By calibration repeat purchases: mean per customer. */
        const json_t *g = at(ho, "by_repeat_purchases");
        size_t ng = json_array_size(g);
        if (ng > 0 && ng <= 16) {
            double act[16], pred[16];
            char lab[16][8];
            const char *cats[16];
            mx = 0;
            for (size_t i = 0; i < ng; i++) {
                const json_t *e = json_array_get(g, i);
                double n = num(e, "customers");
                act[i] = n > 0 ? num(e, "actual") / n : NAN;
                pred[i] = n > 0 ? num(e, "predicted") / n : NAN;
                snprintf(lab[i], sizeof lab[i], "%.0f%s", num(e, "repeat_purchases"),
                         i + 1 == ng ? "+" : "");
                cats[i] = lab[i];
                mx = fmax(mx, fmax(isfinite(act[i]) ? act[i] : 0, isfinite(pred[i]) ? pred[i] : 0));
            }
            svg_series sb[2] = {{"actual", NULL, act, ng, SVG_SOLID},
                                {"predicted", NULL, pred, ng, SVG_SOLID}};
            svg_axes ab = {"Holdout purchase days per customer",
                           "repeat purchases before the cut",
                           "mean purchase days in the holdout",
                           0,
                           1,
                           0,
                           svg_nice_max(mx),
                           0,
                           0};
            fputs("<figure>", f);
            svg_bars(f, &ab, cats, ng, sb, 2);
            fputs("</figure>", f);
        }
        fputs("</div>\n", f);
    }
    json_decref(j);
    fputs("</section>\n", f);
    return 0;
}

/* ---- uplift ------------------------------------------------------------ */

static int section_uplift(report *r)
{
    FILE *f = r->f;
    fputs("<section id=\"uplift\"><h2>Uplift</h2>\n", f);
    const json_t *met = at(at(r->models, "uplift"), "metrics");
    const json_t *ho = at(met, "holdout");
    if (!at(r->models, "uplift")) {
        absent(r, "uplift");
        fputs("</section>\n", f);
        return 0;
    }
    fprintf(f,
            "<p>Per-customer lift of each campaign arm over control on <code>%s</code>, "
            "evaluated on %.0f%% of the %.0f campaign customers held out. Served learner: "
            "<strong>%s</strong>. A Qini curve above the dashed random line means the "
            "model finds who responds to the arm; its area above the line is the Qini "
            "coefficient (normalised: divided by a perfect model's).</p>\n",
            str(met, "outcome"), 100 * num(met, "holdout_share"), num(met, "customers"),
            str(met, "served_learner"));
    fputs("<table><thead><tr><th>learner</th><th>arm</th><th>held-out customers</th>"
          "<th>Qini coefficient</th><th>Qini normalised</th><th>AUUC normalised</th></tr>"
          "</thead><tbody>\n",
          f);
    const char *ln, *arm;
    const json_t *per, *e;
    json_object_foreach((json_t *)ho, ln, per)
    {
        json_object_foreach((json_t *)per, arm, e)
        {
            fputs("<tr><td>", f);
            html_text(f, ln);
            fputs("</td><td>", f);
            html_text(f, arm);
            fprintf(f, "</td><td>%.0f</td><td>", num(e, "customers"));
            fmt_cell(f, "%.2f", num(e, "qini_coefficient"));
            fputs("</td><td>", f);
            fmt_cell(f, "%.4f", num(e, "qini_normalised"));
            fputs("</td><td>", f);
            fmt_cell(f, "%.4f", num(e, "auuc_normalised"));
            fputs("</td></tr>\n", f);
        }
    }
    fputs("</tbody></table>\n<div class=\"charts\">", f);
    /* One chart per arm: each learner's curve and the random line. */
    const json_t *first = NULL;
    json_object_foreach((json_t *)ho, ln, per)
    {
        first = per;
        break;
    }
    json_object_foreach((json_t *)first, arm, e)
    {
        svg_series s[MAX_LEARNERS + 1];
        double *bufs[MAX_LEARNERS * 2] = {0};
        double rx[2] = {0, 1}, ry[2] = {0, 0}, lo = 0, hi = 0;
        size_t ns = 0;
        json_object_foreach((json_t *)ho, ln, per)
        {
            if (ns == MAX_LEARNERS)
                break;
            const json_t *c = at(at(per, arm), "curve_frac_qini_uplift");
            size_t n = points(c, NULL, NULL, 0, 0, 0, &bufs[2 * ns], &bufs[2 * ns + 1]);
            for (size_t i = 0; i < n; i++)
                lo = fmin(lo, bufs[2 * ns + 1][i]), hi = fmax(hi, bufs[2 * ns + 1][i]);
            if (n)
                ry[1] = bufs[2 * ns + 1][n - 1];
            s[ns] = (svg_series){ln, bufs[2 * ns], bufs[2 * ns + 1], n, SVG_SOLID};
            ns++;
        }
        s[ns] = (svg_series){"random", rx, ry, 2, SVG_DASHED};
        char title[160];
        snprintf(title, sizeof title, "Qini curve: %s", arm);
        svg_axes a = {title,
                      "share of customers targeted (highest predicted lift first)",
                      "incremental responses",
                      0,
                      1,
                      lo < 0 ? -svg_nice_max(-lo) : 0,
                      svg_nice_max(hi),
                      1,
                      0};
        fputs("<figure>", f);
        svg_lines(f, &a, s, ns + 1);
        fputs("</figure>\n", f);
        for (size_t i = 0; i < 2 * ns; i++)
            free(bufs[i]);
    }
    fputs("</div>\n</section>\n", f);
    return 0;
}

/* ---- drift ------------------------------------------------------------- */

static int section_drift(report *r, const char *state_path, int32_t asof)
{
    FILE *f = r->f;
    fputs("<section id=\"drift\"><h2>Input drift</h2>\n", f);
    if (!state_path) {
        fputs("<p class=\"note\">No state store was given (<code>--state PATH</code>): input "
              "drift is not measured. With the live customer state that rfm-serve keeps "
              "(<code>state.path</code>), this section compares each customer's recency, "
              "frequency and monetary value today with the training snapshot.</p>\n</section>\n",
              f);
        return 0;
    }
    if (!r->cust) {
        fputs("<p class=\"note\">No customer table in the models folder: nothing to compare "
              "the state with.</p>\n</section>\n",
              f);
        return 0;
    }
    struct stat sb;
    if (stat(state_path, &sb) != 0) {
        snprintf(r->err, sizeof r->err, "--state %s: %s", state_path, strerror(errno));
        return 1;
    }
    state_options so;
    state_default_options(&so);
    state_store *st;
    if (state_open(state_path, &so, &st, r->err, sizeof r->err) != RFM_OK)
        return 1;
    size_t n = customers_count(r->cust), live = 0;
    double *ref = malloc((n ? n : 1) * 3 * sizeof *ref),
           *cur = malloc((n ? n : 1) * 3 * sizeof *cur);
    if (!ref || !cur) {
        free(ref), free(cur), state_close(st);
        snprintf(r->err, sizeof r->err, "out of memory");
        return 1;
    }
    /* Training values, and the same customers' live values as of asof. */
    for (size_t i = 0; i < n; i++) {
        const customer_row *row = customers_row(r->cust, i);
        ref[i] = row->recency, ref[n + i] = row->frequency, ref[2 * n + i] = row->monetary;
        state_customer sc;
        if (state_get(st, customers_id(r->cust, i), asof, &sc, r->err, sizeof r->err) == RFM_OK &&
            sc.f.active) {
            cur[live] = sc.f.recency, cur[n + live] = sc.f.frequency,
            cur[2 * n + live] = sc.f.monetary;
            live++;
        }
    }
    state_close(st);
    char day[11];
    date_format(asof, day);
    fprintf(f, "<p>The %zu training customers, as the state store <code>", n);
    html_text(f, state_path);
    fprintf(f,
            "</code> holds them on %s (%zu found), against the training snapshot: per feature, "
            "the share of customers in each training decile bin, and the population "
            "stability index (PSI: below 0.1 stable, 0.1-0.25 moderate, above 0.25 a "
            "significant shift). Recency grows by itself as days pass without "
            "purchases.</p>\n",
            day, live);
    static const char *const feat[3] = {"recency", "frequency", "monetary"};
    fputs("<table><thead><tr><th>feature</th><th>PSI</th><th>reading</th></tr></thead>"
          "<tbody>\n",
          f);
    drift_bins bins[3];
    double psi[3], expct[3][DRIFT_MAX_BINS], act[3][DRIFT_MAX_BINS];
    int ok[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        if (!live || drift_bins_build(ref + (size_t)k * n, n, &bins[k], r->err, sizeof r->err))
            continue;
        double cnt[DRIFT_MAX_BINS] = {0};
        for (size_t i = 0; i < live; i++)
            cnt[drift_bin(&bins[k], cur[(size_t)k * n + i])] += 1;
        for (size_t b = 0; b < bins[k].nbins; b++)
            act[k][b] = cnt[b] / (double)live, expct[k][b] = bins[k].expected[b];
        psi[k] = drift_psi(expct[k], act[k], bins[k].nbins);
        ok[k] = 1;
        fprintf(f, "<tr><td>%s</td><td>%.4f</td><td>%s</td></tr>\n", feat[k], psi[k],
                psi[k] < 0.1     ? "stable"
                : psi[k] <= 0.25 ? "moderate shift"
                                 : "significant shift");
    }
    fputs("</tbody></table>\n<div class=\"charts\">", f);
    for (int k = 0; k < 3; k++) {
        if (!ok[k])
            continue;
        char lab[DRIFT_MAX_BINS][24];
        const char *cats[DRIFT_MAX_BINS];
        double mx = 0;
        for (size_t b = 0; b < bins[k].nbins; b++) {
            if (b + 1 < bins[k].nbins)
                snprintf(lab[b], sizeof lab[b], "<=%.4g", bins[k].edges[b]);
            else
                snprintf(lab[b], sizeof lab[b], "more");
            cats[b] = lab[b];
            mx = fmax(mx, fmax(expct[k][b], act[k][b]));
        }
        svg_series s[2] = {{"training", NULL, expct[k], bins[k].nbins, SVG_SOLID},
                           {"live", NULL, act[k], bins[k].nbins, SVG_SOLID}};
        char title[64];
        snprintf(title, sizeof title, "%s: PSI %.3f", feat[k], psi[k]);
        svg_axes a = {
            title, "training decile bin", "share of customers", 0, 1, 0, svg_nice_max(mx), 0, 1};
        fputs("<figure>", f);
        svg_bars(f, &a, cats, bins[k].nbins, s, 2);
        fputs("</figure>\n", f);
    }
    fputs("</div>\n</section>\n", f);
    free(ref), free(cur);
    return 0;
}

/* ---- model cards ------------------------------------------------------- */

static int section_cards(report *r)
{
    FILE *f = r->f;
    fputs("<section id=\"cards\"><h2>Model cards</h2>\n", f);
    const char *name;
    const json_t *e;
    json_object_foreach((json_t *)r->models, name, e)
    {
        const char *card = json_string_value(at(e, "card"));
        if (!card)
            continue;
        char path[PATH_MAX], *text;
        size_t len;
        snprintf(path, sizeof path, "%s/%s", r->dir, card);
        if (fileio_read(path, &text, &len, r->err, sizeof r->err) != RFM_OK)
            return 1;
        fputs("<article class=\"card\">\n", f);
        html_markdown(f, text, 3);
        fputs("</article>\n", f);
        free(text);
    }
    fputs("</section>\n", f);
    return 0;
}

static const char CSS[] =
    "body{font-family:'DejaVu Sans',Arial,Helvetica,sans-serif;color:#222;max-width:960px;"
    "margin:0 auto;padding:16px;font-size:14px;line-height:1.4}"
    "h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;border-bottom:2px solid #1f5fa8;"
    "padding-bottom:4px;margin-top:32px}h3{font-size:16px}h4{font-size:14px}"
    ".meta{color:#555}.note{background:#f4f4f4;border-left:4px solid #999;padding:6px 10px}"
    "table{border-collapse:collapse;margin:8px 0;font-size:12px}"
    "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
    "th{background:#eef2f8}code{font-family:'DejaVu Sans Mono',monospace;font-size:12px;"
    "word-break:break-all}"
    "figure{margin:8px 0;break-inside:avoid;page-break-inside:avoid}"
    "figcaption{font-size:12px;color:#555;max-width:640px}"
    "svg.chart{max-width:100%;height:auto;border:1px solid #eee}"
    ".charts{display:flex;flex-wrap:wrap;gap:8px}.charts figure{flex:1 1 440px}"
    "article.card{border-top:1px solid #ccc;margin-top:16px}"
    "nav ol{columns:2}a{color:#1f5fa8}"
    "@page{size:A4;margin:12mm}"
    "@media print{body{max-width:none;padding:0;font-size:11px}"
    "section{break-before:page;page-break-before:always}"
    "a{color:inherit;text-decoration:none}.charts figure{flex:1 1 45%}"
    "tr{break-inside:avoid}}";

/* The whole page into f. Returns 0, or 1 with r->err set. */
static int write_report(report *r, const char *state_path, int32_t asof)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<title>Customer intelligence report</title>\n<style>",
          r->f);
    fputs(CSS, r->f);
    fputs("</style></head><body>\n", r->f);
    header(r);
    if (section_segments(r) || section_churn(r) || section_cltv(r) || section_uplift(r) ||
        section_drift(r, state_path, asof) || section_cards(r))
        return 1;
    fputs("</body></html>\n", r->f);
    return 0;
}

/* ---- PDF --------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    remove(path);
    return 0;
}

/* Print html (a path) to pdf with headless Chromium in a fresh profile,
 * killing it after PDF_TIMEOUT_S. Returns 0, or 1 after saying why. */
static int print_pdf(const char *chromium, const char *html, const char *pdf)
{
    if (access(chromium, X_OK) != 0) {
        fprintf(stderr,
                "rfm-report: --pdf needs Chromium at %s (%s): install it with `apt-get "
                "install chromium` (make deps does) or pass --chromium PATH\n",
                chromium, strerror(errno));
        return 1;
    }
    char abs[PATH_MAX], profile[] = "/tmp/rfm-report-XXXXXX";
    if (!realpath(html, abs) || !mkdtemp(profile)) {
        fprintf(stderr, "rfm-report: %s: %s\n", html, strerror(errno));
        return 1;
    }
    char tmp[PATH_MAX + 32], url[PATH_MAX + 16], out_arg[PATH_MAX + 48], dir_arg[64], log[64];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", pdf, (long)getpid());
    snprintf(url, sizeof url, "file://%s", abs);
    snprintf(out_arg, sizeof out_arg, "--print-to-pdf=%s", tmp);
    snprintf(dir_arg, sizeof dir_arg, "--user-data-dir=%s", profile);
    snprintf(log, sizeof log, "%s.log", profile);
    double t0 = (double)time(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0); /* its own group: a timeout stops every process it started */
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1), dup2(fd, 2);
            close(fd);
        }
        execl(chromium, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--disable-dev-shm-usage", "--no-pdf-header-footer", dir_arg,
              out_arg, url, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) {
        fprintf(stderr, "rfm-report: cannot start %s: %s\n", chromium, strerror(errno));
        nftw(profile, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return 1;
    }
    setpgid(pid, pid);
    int status = 0, timed_out = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            status = -1;
            break;
        }
        if ((double)time(NULL) - t0 > PDF_TIMEOUT_S) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            timed_out = 1;
            break;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(-pid, SIGKILL); /* helpers it left behind, if any */
    nftw(profile, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    char head[5] = "";
    FILE *pf = fopen(tmp, "rb");
    size_t got = pf ? fread(head, 1, 4, pf) : 0;
    if (pf)
        fclose(pf);
    int ok = !timed_out && status == 0 && got == 4 && !memcmp(head, "%PDF", 4);
    if (ok && rename(tmp, pdf) != 0) {
        fprintf(stderr, "rfm-report: %s: %s\n", pdf, strerror(errno));
        ok = 0;
    }
    if (!ok) {
        remove(tmp);
        if (timed_out)
            fprintf(stderr, "rfm-report: %s did not finish within %d s; killed\n", chromium,
                    PDF_TIMEOUT_S);
        else
            fprintf(stderr, "rfm-report: %s printed no PDF (exit status %d); its output:\n",
                    chromium, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        FILE *lf = fopen(log, "r");
        char line[512];
        while (lf && fgets(line, sizeof line, lf))
            if (!strstr(line, "dbus")) /* no session bus in a container: harmless noise */
                fputs(line, stderr);
        if (lf)
            fclose(lf);
    }
    remove(log);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *dir = "models", *out = NULL, *pdf = NULL, *state_path = NULL, *asof_s = NULL;
    const char *chromium = CHROMIUM;
    static const struct option opts[] = {{"models", required_argument, 0, 'm'},
                                         {"out", required_argument, 0, 'o'},
                                         {"pdf", required_argument, 0, 'p'},
                                         {"state", required_argument, 0, 's'},
                                         {"as-of", required_argument, 0, 'a'},
                                         {"chromium", required_argument, 0, 'c'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:o:p:s:a:c:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': dir = optarg; break;
        case 'o': out = optarg; break;
        case 'p': pdf = optarg; break;
        case 's': state_path = optarg; break;
        case 'a': asof_s = optarg; break;
        case 'c': chromium = optarg; break;
        case 'q': say_quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rfm-report: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!out) {
        fprintf(stderr, "rfm-report: --out FILE.html is required\n");
        usage(stderr);
        return 2;
    }
    int32_t asof;
    if (asof_s) {
        asof = date_parse(asof_s, strlen(asof_s));
        if (asof == DATE_NONE) {
            fprintf(stderr, "rfm-report: --as-of '%s' is not a date (YYYY-MM-DD)\n", asof_s);
            return 2;
        }
        if (!state_path) {
            fprintf(stderr, "rfm-report: --as-of needs --state (it dates the live state)\n");
            return 2;
        }
    } else {
        asof = (int32_t)(time(NULL) / 86400) + 1; /* through the end of today (UTC) */
    }
    gsl_set_error_handler_off();

    report r = {.dir = dir};
    if (modelfile_open(dir, &r.man, r.err, sizeof r.err) != RFM_OK) {
        fprintf(stderr, "rfm-report: %s\n", r.err);
        return 1;
    }
    r.models = at(r.man, "models");
    const char *cfile = json_string_value(at(at(r.models, "customers"), "file"));
    if (cfile) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, cfile);
        if (customers_load(path, &r.cust, r.err, sizeof r.err) != RFM_OK) {
            fprintf(stderr, "rfm-report: %s\n", r.err);
            json_decref(r.man);
            return 1;
        }
    }
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", out, (long)getpid());
    int rc = 1;
    if (!(r.f = fopen(tmp, "w"))) {
        fprintf(stderr, "rfm-report: %s: %s\n", tmp, strerror(errno));
        goto done;
    }
    int bad = write_report(&r, state_path, asof);
    int werr = ferror(r.f);
    if (fclose(r.f) != 0 || werr) {
        fprintf(stderr, "rfm-report: writing %s failed\n", out);
        remove(tmp);
        goto done;
    }
    if (bad) {
        fprintf(stderr, "rfm-report: %s\n", r.err);
        remove(tmp);
        goto done;
    }
    if (rename(tmp, out) != 0) {
        fprintf(stderr, "rfm-report: %s: %s\n", out, strerror(errno));
        remove(tmp);
        goto done;
    }
    say("rfm-report: wrote %s\n", out);
    if (pdf) {
        if (print_pdf(chromium, out, pdf))
            goto done;
        say("rfm-report: wrote %s\n", pdf);
    }
    rc = 0;
done:
    customers_free(r.cust);
    json_decref(r.man);
    return rc;
}
