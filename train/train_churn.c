/* train_churn.c - churn labels from a time split, evaluation, refit. */
#include "train_churn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bgnbd.h"
#include "cards.h"
#include "churn.h"
#include "date.h"
#include "metrics.h"

static const char *const NAMES[3] = {"recency", "frequency", "monetary"};

typedef struct {
    double auc, logloss, brier;
} scores;

static rfm_status score(const double *p, const int *y, size_t n, scores *s, char *err,
                        size_t errlen)
{
    rfm_status st;
    if ((st = metrics_auc(p, y, NULL, n, &s->auc, err, errlen)) ||
        (st = metrics_logloss(p, y, NULL, n, &s->logloss, err, errlen)) ||
        (st = metrics_brier(p, y, NULL, n, &s->brier, err, errlen)))
        return st;
    return RFM_OK;
}

rfm_status train_churn(const txn_data *d, const churn_params *cfg, const char *data_desc,
                       json_t **model_json, json_t **metrics, char **card, char *err,
                       size_t errlen)
{
    *model_json = *metrics = NULL;
    *card = NULL;
    churn_split sp;
    rfm_status st = churn_time_split(d, cfg->cut_days, cfg->test_share, cfg->seed, &sp, err,
                                     errlen);
    if (st != RFM_OK)
        return st;
    size_t n = sp.n, churned = sp.churned, nte = sp.n_test, ntr = sp.n_train;
    const double *x = sp.x, *bx = sp.bg;
    const int *y = sp.y;
    const size_t *perm = sp.order;
    int32_t cut = sp.cut;
    double *xtr = malloc((n ? n : 1) * 3 * sizeof *xtr), *xte = malloc((n ? n : 1) * 3 * sizeof *xte);
    int *ytr = malloc((n ? n : 1) * sizeof *ytr), *yte = malloc((n ? n : 1) * sizeof *yte);
    double *pte = malloc((n ? n : 1) * sizeof *pte), *pbg = malloc((n ? n : 1) * sizeof *pbg);
    double *bgx = malloc((n ? n : 1) * sizeof *bgx), *bgt = malloc((n ? n : 1) * sizeof *bgt),
           *bgT = malloc((n ? n : 1) * sizeof *bgT);
    churn_model *m = NULL, *served = NULL;
    bgnbd_row *rows = NULL;
    if (!xtr || !xte || !ytr || !yte || !pte || !pbg || !bgx || !bgt || !bgT) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    /* The held-out rows first in the seeded order, the rest for fitting. */
    size_t a = 0, b = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = perm[k];
        if (k < nte) {
            memcpy(xte + b * 3, x + i * 3, 3 * sizeof *x);
            yte[b] = y[i];
            bgx[b] = bx[i * 3], bgt[b] = bx[i * 3 + 1], bgT[b] = bx[i * 3 + 2];
            b++;
        } else {
            memcpy(xtr + a * 3, x + i * 3, 3 * sizeof *x);
            ytr[a++] = y[i];
        }
    }
    if ((st = churn_fit(xtr, ytr, ntr, 3, NAMES, cfg, &m, err, errlen)) ||
        (st = churn_predict_many(m, xte, nte, pte, err, errlen)))
        goto out;
    scores sl, sb = {NAN, NAN, NAN};
    if ((st = score(pte, yte, nte, &sl, err, errlen)))
        goto out;
    metrics_calib_bin bins[10];
    size_t nbins = 0;
    if ((st = metrics_calibration(pte, yte, NULL, nte, 10, bins, &nbins, err, errlen)))
        goto out;
    /* BG/NBD beside it: fitted on the training customers' histories. */
    {
        double *tx = malloc(ntr * sizeof *tx), *tt = malloc(ntr * sizeof *tt),
               *tT = malloc(ntr * sizeof *tT);
        size_t nr;
        bgnbd_fit_result fr;
        char e2[RFM_ERRLEN];
        int ok = tx && tt && tT;
        for (size_t k = nte, j = 0; ok && k < n; k++, j++) {
            size_t i = perm[k];
            tx[j] = bx[i * 3], tt[j] = bx[i * 3 + 1], tT[j] = bx[i * 3 + 2];
        }
        ok = ok && bgnbd_compress(tx, tt, tT, ntr, &rows, &nr, e2, sizeof e2) == RFM_OK;
        ok = ok && bgnbd_fit_predicts(bgnbd_fit(rows, nr, 0, &fr, e2, sizeof e2), &fr);
        if (ok) {
            for (size_t i = 0; i < nte; i++) {
                double p = 1 - bgnbd_p_alive(&fr.p, bgx[i], bgt[i], bgT[i]);
                pbg[i] = fmin(fmax(p, 0), 1);
            }
            score(pbg, yte, nte, &sb, e2, sizeof e2);
        }
        free(tx), free(tt), free(tT);
    }
    double imp[3];
    if ((st = churn_global_importance(m, xtr, ntr, imp, err, errlen)))
        goto out;
    /* The served model: every customer of the split. */
    if ((st = churn_fit(x, y, n, 3, NAMES, cfg, &served, err, errlen)) ||
        (st = churn_to_json(served, model_json, err, errlen)))
        goto out;
    char cutd[11];
    date_format(cut, cutd);
    json_object_set_new(*model_json, "serving",
                        json_pack("{s:f,s:i,s:i,s:s}", "counterfactual_threshold",
                                  cfg->counterfactual_threshold, "max_purchases",
                                  cfg->max_purchases, "cut_days", cfg->cut_days, "cut_date",
                                  cutd));
    json_t *cal = json_array();
    for (size_t i = 0; i < nbins; i++)
        json_array_append_new(cal, json_pack("{s:I,s:f,s:f}", "count", (json_int_t)bins[i].count,
                                             "mean_predicted", bins[i].mean_predicted,
                                             "observed_rate", bins[i].observed_rate));
    *metrics = json_pack("{s:s,s:I,s:f,s:I,s:{s:f,s:f,s:f},s:{s:f,s:f,s:f},s:o,s:{s:f,s:f,s:f}}",
                         "cut_date", cutd, "customers", (json_int_t)n, "churn_rate",
                         n ? (double)churned / (double)n : 0.0, "test_customers",
                         (json_int_t)nte, "logistic", "auc", sl.auc, "log_loss", sl.logloss,
                         "brier", sl.brier, "bgnbd_1_minus_p_alive", "auc", sb.auc, "log_loss",
                         sb.logloss, "brier", sb.brier, "calibration", cal,
                         "global_importance", "recency", imp[0], "frequency", imp[1],
                         "monetary", imp[2]);
    churn_info info;
    churn_info_get(served, &info);
    text t = {0};
    text_add(&t, "# Model card: churn %s\n\n", CHURN_FILE_VERSION);
    text_add(&t, "## What it is\nProbability that a customer buys nothing in the next %d days: "
                 "L2-regularised logistic regression (lambda %g, scikit-learn C = %g) fitted by "
                 "Newton's method on standardised log1p(recency, frequency, monetary). "
                 "Explanations are exact SHAP values of the linear model in log-odds; "
                 "counterfactuals search the fewest purchases that bring the probability under "
                 "%.2f.\n\n",
             cfg->cut_days, cfg->lambda, cfg->lambda > 0 ? 1 / cfg->lambda : INFINITY,
             cfg->counterfactual_threshold);
    text_add(&t, "## Data and label\n%s\n- Cut: %s (%d days before the end). Customers who "
                 "bought before it: %zu; churned (no purchase on or after it): %zu (%.1f%%).\n"
                 "- Features as of the cut.\n\n",
             data_desc, cutd, cfg->cut_days, n, churned, 100.0 * (double)churned / (double)n);
    text_add(&t, "## Evaluation\n%zu customers (%.0f%%, seed %llu) held out.\n\n"
                 "| model | AUC | log loss | Brier |\n|---|---|---|---|\n"
                 "| logistic regression | %.4f | %.4f | %.4f |\n"
                 "| BG/NBD 1 - P(alive) | %.4f | %.4f | %.4f |\n\n",
             nte, 100 * cfg->test_share, (unsigned long long)cfg->seed, sl.auc, sl.logloss,
             sl.brier, sb.auc, sb.logloss, sb.brier);
    text_add(&t, "BG/NBD's P(alive) is 1 by construction for customers with no repeat purchase "
                 "(it lets customers drop out only after a repeat purchase), and many one-time "
                 "buyers churn: hence its weak ranking here.\n\n");
    text_add(&t, "Calibration (deciles of predicted probability, held-out customers):\n\n"
                 "| customers | mean predicted | observed churn |\n|---|---|---|\n");
    for (size_t i = 0; i < nbins; i++)
        text_add(&t, "| %zu | %.4f | %.4f |\n", bins[i].count, bins[i].mean_predicted,
                 bins[i].observed_rate);
    text_add(&t, "\n## Coefficients (served model, standardised log1p features)\n"
                 "| feature | weight | training mean | sd | global importance (mean abs SHAP) "
                 "|\n|---|---|---|---|---|\n");
    for (int j = 0; j < 3; j++)
        text_add(&t, "| %s | %.5f | %.5f | %.5f | %.4f |\n", NAMES[j], info.weights[j],
                 info.mean[j], info.sd[j], imp[j]);
    text_add(&t, "| intercept | %.5f | | | |\n\nRisk: low below %.2f, high from %.2f.\n\n",
             info.intercept, cfg->threshold_medium, cfg->threshold_high);
    text_add(&t, "## Limits\n- Three behavioural features only: no product, channel or "
                 "seasonality signal.\n- The label depends on the cut: a customer with a long "
                 "natural purchase cycle can look churned after %d days.\n- Counterfactual "
                 "purchases are at the customer's average order value.\n",
             cfg->cut_days);
    if (t.oom || !*metrics) {
        free(t.s);
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    *card = t.s;
out:
    if (st != RFM_OK) {
        json_decref(*model_json);
        json_decref(*metrics);
        *model_json = *metrics = NULL;
    }
    churn_free(m);
    churn_free(served);
    free(rows);
    churn_split_free(&sp);
    free(xtr), free(xte), free(ytr), free(yte);
    free(pte), free(pbg), free(bgx), free(bgt), free(bgT);
    return st;
}
