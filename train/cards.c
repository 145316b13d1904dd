/* cards.c - model cards: what each model is, what it was fitted on, how
 * well it did, and its limits, as Markdown written next to the model. */
#include "cards.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "date.h"

/* Growable text buffer for model cards. */
void text_add(text *t, const char *fmt, ...)
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

char *card_segments(const segments_model *m, const char *data_path, const txn_report *r,
                    const txn_data *d)
{
    text t = {0};
    char d0[11], d1[11], snap[11];
    date_format(txn_first_day(d), d0);
    date_format(txn_last_day(d), d1);
    date_format(txn_snapshot_day(d), snap);
    text_add(&t, "# Model card: segments %s\n\n", SEGMENTS_VERSION);
    text_add(&t, "## What it is\n"
                 "RFM scores (1-5 per dimension, 5 best, from quintile boundaries of the training "
                 "customers; equal values get equal scores) mapped to named segments by the "
                 "`segments.rfm_segments` map of the config, and k-means clusters of customers on "
                 "standardised log1p(recency, frequency, monetary), k-means++ seeding with "
                 "restarts, Lloyd iterations stopped as scikit-learn stops them (no label "
                 "changes, or the centres moved by at most 1e-4 of the mean variance in all), "
                 "named from their centroid profiles.\n\n");
    text_add(&t,
             "## Data\n"
             "- File: `%s` (sha256 `%s`)\n"
             "- Lines: %llu read, %llu used; customers: %zu\n"
             "- Purchases from %s to %s; snapshot (as-of) date %s\n\n",
             data_path, r->sha256, (unsigned long long)r->lines, (unsigned long long)r->used,
             segments_ncustomers(m), d0, d1, snap);
    const rfm_bounds *b = segments_bounds(m);
    text_add(&t, "## RFM quintile boundaries\n"
                 "| | 20%% | 40%% | 60%% | 80%% |\n|---|---|---|---|---|\n");
    const double *bb[3] = {b->recency, b->frequency, b->monetary};
    const char *nm[3] = {"recency (days)", "frequency (invoices)", "monetary (spend)"};
    for (int j = 0; j < 3; j++)
        text_add(&t, "| %s | %.6g | %.6g | %.6g | %.6g |\n", nm[j], bb[j][0], bb[j][1], bb[j][2],
                 bb[j][3]);
    segments_selection sel;
    segments_get_selection(m, &sel);
    size_t k = segments_nclusters(m);
    text_add(&t, "\n## Clusters\n");
    if (sel.fixed)
        text_add(&t,
                 "k = %zu, fixed by `segments.k`; mean silhouette %.4f (on a seeded sample "
                 "of customers).\n\n",
                 k, segments_silhouette(m));
    else
        text_add(&t,
                 "k = %zu, chosen from %zu to %zu (`segments.k_min`, `segments.k_max`): a "
                 "solution whose smallest cluster holds less than %.3g%% of the customers "
                 "(`segments.min_cluster_share`) is left out%s, and among the rest the smallest "
                 "k whose mean silhouette is within %.3g of the best wins. Why: two or three "
                 "clusters lump together customers a marketer treats apart, a tiny cluster "
                 "cannot carry a campaign, and silhouettes that close do not tell two "
                 "structures apart (they move with the sample), while fewer clusters are "
                 "easier to use.\n\n",
                 k, sel.k_min, sel.k_max, 100 * sel.min_share,
                 sel.none_eligible ? " (here every k had one, so all competed)" : "",
                 sel.tolerance);
    text_add(&t, "| k | mean silhouette | smallest cluster | |\n|---|---|---|---|\n");
    for (size_t kk = sel.k_min; kk <= sel.k_max; kk++) {
        double sil, small;
        if (!segments_k_quality(m, kk, &sil, &small))
            continue;
        const char *why = kk == k ? "**chosen**"
                          : !sel.fixed && !sel.none_eligible && !(small >= sel.min_share)
                              ? "smallest cluster too small"
                              : "";
        text_add(&t, "| %zu | %.4f | %.1f%% | %s |\n", kk, sil, 100 * small, why);
    }
    text_add(&t,
             "\n| cluster | name | customers | share | recency mean / median | frequency mean / "
             "median | monetary mean / median |\n|---|---|---|---|---|---|---|\n");
    for (size_t c = 0; c < k; c++) {
        segments_cluster_info ci;
        segments_cluster(m, c, &ci);
        text_add(&t, "| %zu | %s | %zu | %.1f%% | %.1f / %.1f | %.2f / %.1f | %.2f / %.2f |\n", c,
                 ci.segment, ci.customers, 100 * ci.share, ci.mean[0], ci.median[0], ci.mean[1],
                 ci.median[1], ci.mean[2], ci.median[2]);
    }
    text_add(
        &t, "\n### Rules\n"
            "Each cluster's rule is the best leaf of any decision tree of depth 2 on raw "
            "recency (days), frequency (invoices) and monetary, the cluster against the "
            "others, found exactly: it maximises coverage (the share of the cluster it "
            "matches) minus leak (the share of the other customers it matches). "
            "Precision is the share of the customers it matches that are in the "
            "cluster. The rule describes the cluster; customers are assigned by the "
            "nearest centroid.\n\n"
            "| cluster | name | rule | coverage | leak | precision |\n|---|---|---|---|---|---|\n");
    for (size_t c = 0; c < k; c++) {
        segments_cluster_info ci;
        segments_cluster(m, c, &ci);
        if (!ci.rule)
            continue;
        char rule[256];
        segments_rule_text(ci.rule, rule, sizeof rule);
        const ruletree_rule *u = ci.rule;
        text_add(&t, "| %zu | %s | %s | %.1f%% | %.1f%% | %.1f%% |\n", c, ci.segment, rule,
                 100.0 * (double)u->tp / (double)(u->npos ? u->npos : 1),
                 100.0 * (double)u->fp / (double)(u->nneg ? u->nneg : 1),
                 100.0 * (double)u->tp / (double)(u->tp + u->fp ? u->tp + u->fp : 1));
    }
    text_add(&t, "\n## Limits\n"
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

char *card_cltv(const cltv_model *c, const char *data_desc, const cltv_holdout *h,
                const cltv_options *cfg)
{
    text t = {0};
    const bgnbd_fit_result *b = cltv_bgnbd(c);
    const gg_fit_result *g = cltv_gg(c);
    text_add(&t, "# Model card: cltv %s\n\n", CLTV_VERSION);
    text_add(&t,
             "## What it is\n"
             "Customer lifetime value from two models fitted by maximum likelihood (time in "
             "days): BG/NBD (Fader, Hardie and Lee 2005) for the number of repeat purchases "
             "and the probability a customer is still active, and Gamma-Gamma (Fader, Hardie "
             "and Lee 2005, \"RFM and CLV\") for the spend per purchase. Parameters carry "
             "lifetimes' names; the objective is lifetimes' (mean negative log-likelihood, "
             "penalizer_coef %g).\n\n",
             cfg->penalizer_coef);
    text_add(&t, "## Data\n%s\n\n", data_desc);
    text_add(&t, "## Fit\n| model | parameter | estimate | std. error | 95%% interval |\n"
                 "|---|---|---|---|---|\n");
    const char *bn[4] = {"r", "alpha", "a", "b"}, *gn[3] = {"p", "q", "v"};
    double bv[4] = {b->p.r, b->p.alpha, b->p.a, b->p.b}, gv[3] = {g->p.p, g->p.q, g->p.v};
    for (int k = 0; k < 4; k++)
        text_add(&t, "| BG/NBD | %s | %.6g | %.4g | %.6g - %.6g |\n", bn[k], bv[k], b->se[k],
                 b->lo[k], b->hi[k]);
    for (int k = 0; k < 3; k++)
        text_add(&t, "| Gamma-Gamma | %s | %.6g | %.4g | %.6g - %.6g |\n", gn[k], gv[k], g->se[k],
                 g->lo[k], g->hi[k]);
    text_add(&t,
             "\nBG/NBD: %zu customers in %zu distinct (x, t_x, T) rows, log-likelihood %.4f, "
             "converged in %d iterations (gradient norm %.2g).\n"
             "Gamma-Gamma: %zu customers with repeat purchases, log-likelihood %.4f, "
             "converged in %d iterations.\n"
             "Correlation between repeat purchases and mean spend: %.4f (Gamma-Gamma "
             "assumes none; near zero supports it).\n\n",
             b->customers, b->rows, b->loglik, b->iterations, b->grad_norm, g->customers, g->loglik,
             g->iterations, g->corr_freq_spend);
    if (h && h->ok) {
        text_add(&t,
                 "## Calibration and holdout\n"
                 "Fitted on purchases before %s (penalizer_coef %g), predicted the repeat "
                 "purchase days of the following %d days, against what customers did.\n\n"
                 "| calibration repeat purchases | customers | actual mean | predicted mean "
                 "|\n|---|---|---|---|\n",
                 h->cut, h->penalizer, h->days);
        for (int k = 0; k < CLTV_HOLDOUT_GROUPS; k++)
            if (h->n[k] > 0)
                text_add(&t, "| %s%d | %zu | %.4f | %.4f |\n",
                         k == CLTV_HOLDOUT_GROUPS - 1 ? ">= " : "", k, h->n[k],
                         h->actual[k] / (double)h->n[k], h->predicted[k] / (double)h->n[k]);
        text_add(&t,
                 "\nAll %zu customers: %.0f purchase days actual, %.1f predicted (%.1f%%); "
                 "mean absolute error per customer %.4f, root mean squared error %.4f.\n\n",
                 h->total_n, h->total_actual, h->total_predicted,
                 100.0 * (h->total_predicted - h->total_actual) / fmax(1, h->total_actual), h->mae,
                 h->rmse);
        if (!h->identified)
            text_add(&t, "The calibration period does not identify every BG/NBD parameter "
                         "(the dropout parameter a runs towards 0); the predicted counts do not "
                         "depend on where along that flat direction the fit stopped.\n\n");
    }
    text_add(&t,
             "## Scoring\n"
             "Lifetime value over a horizon of H days (default %g): the horizon is cut into "
             "30-day periods (the last one shorter); the purchases expected in each are "
             "valued at the Gamma-Gamma expected spend and discounted by (1 + d)^(t/30) with "
             "d = %g per 30 days by default, as lifetimes' customer_lifetime_value. The "
             "interval carries the parameters' uncertainty by the delta method on log value.\n\n",
             cfg->horizon_days, cfg->discount_rate);
    text_add(&t, "## Limits\n"
                 "- Non-contractual setting: a customer can lapse silently; the models assume "
                 "purchase rates and dropout vary across customers as gamma and beta laws.\n"
                 "- Spend per purchase is assumed independent of purchase frequency (see the "
                 "correlation above).\n"
                 "- Purchase rates are constant in time: seasonal peaks are under-predicted (the "
                 "bundled data's holdout is the Christmas season, hence the shortfall above).\n"
                 "- Values are in the data's currency and undiscounted for margin: multiply by "
                 "a margin for profit.\n");
    if (t.oom) {
        free(t.s);
        return NULL;
    }
    return t.s;
}

int card_retitle(char **card, const char *name, const char *semver, const char *version)
{
    char title[160];
    int n = snprintf(title, sizeof title, "# Model card: %s %s\n", name, semver);
    if (n < 0 || (size_t)n >= sizeof title || strncmp(*card, title, (size_t)n) != 0)
        return 1;
    text t = {0};
    text_add(&t, "# Model card: %s %s\n%s", name, version, *card + n);
    if (t.oom) {
        free(t.s);
        return 0;
    }
    free(*card);
    *card = t.s;
    return 1;
}
