/* train_churn.c - rfm-train's churn step: labels from a time split and the
 * held-out evaluation (core/churn), the served refit, its JSON and card. */
#include "train_churn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cards.h"
#include "churn.h"
#include "date.h"

static const char *const NAMES[CHURN_SPLIT_FEATURES] = {"recency", "frequency", "monetary"};

/* The model file's "evaluation" block (docs/churn.md): per learner, the
 * held-out curves of metrics_evaluation_json, which rfm-report draws. */
static rfm_status add_evaluation(const churn_split *sp, const churn_params *cfg, json_t *model_json,
                                 char *err, size_t errlen)
{
    double *p = malloc(sp->n_test * sizeof *p);
    int *y = malloc(sp->n_test * sizeof *y);
    json_t *lj = NULL;
    rfm_status st = p && y ? RFM_OK : rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    if (!st && !(st = churn_heldout_predict(sp, NAMES, cfg, p, y, err, errlen)) &&
        !(st = metrics_evaluation_json(p, y, sp->n_test, &lj, err, errlen)) &&
        json_object_set_new(model_json, "evaluation", json_pack("{s:o}", "logistic", lj)))
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    free(p);
    free(y);
    return st;
}

rfm_status train_churn(const txn_data *d, const churn_params *cfg, const char *data_desc,
                       json_t **model_json, json_t **metrics, char **card, char *err, size_t errlen)
{
    *model_json = *metrics = NULL;
    *card = NULL;
    churn_split sp;
    rfm_status st =
        churn_time_split(d, cfg->cut_days, cfg->test_share, cfg->seed, &sp, err, errlen);
    if (st != RFM_OK)
        return st;
    size_t n = sp.n, churned = sp.churned, nte = sp.n_test;
    churn_model *served = NULL;
    churn_eval ev;
    if ((st = churn_evaluate(&sp, NAMES, cfg, &ev, err, errlen)))
        goto out;
    const churn_scores sl = ev.logistic, sb = ev.bgnbd;
    const metrics_calib_bin *bins = ev.bins;
    const size_t nbins = ev.nbins;
    const double *imp = ev.importance;
    /* The served model: every customer of the split. */
    if ((st = churn_fit(sp.x, sp.y, n, CHURN_SPLIT_FEATURES, NAMES, cfg, &served, err, errlen)) ||
        (st = churn_to_json(served, model_json, err, errlen)) ||
        (st = add_evaluation(&sp, cfg, *model_json, err, errlen)))
        goto out;
    char cutd[11];
    date_format(sp.cut, cutd);
    json_object_set_new(*model_json, "serving",
                        json_pack("{s:f,s:i,s:i,s:s}", "counterfactual_threshold",
                                  cfg->counterfactual_threshold, "max_purchases",
                                  cfg->max_purchases, "cut_days", cfg->cut_days, "cut_date", cutd));
    json_t *cal = json_array();
    for (size_t i = 0; i < nbins; i++)
        json_array_append_new(cal, json_pack("{s:I,s:f,s:f}", "count", (json_int_t)bins[i].count,
                                             "mean_predicted", bins[i].mean_predicted,
                                             "observed_rate", bins[i].observed_rate));
    *metrics = json_pack("{s:s,s:I,s:f,s:I,s:{s:f,s:f,s:f},s:{s:f,s:f,s:f},s:o,s:{s:f,s:f,s:f}}",
                         "cut_date", cutd, "customers", (json_int_t)n, "churn_rate",
                         n ? (double)churned / (double)n : 0.0, "test_customers", (json_int_t)nte,
                         "logistic", "auc", sl.auc, "log_loss", sl.logloss, "brier", sl.brier,
                         "bgnbd_1_minus_p_alive", "auc", sb.auc, "log_loss", sb.logloss, "brier",
                         sb.brier, "calibration", cal, "global_importance", "recency", imp[0],
                         "frequency", imp[1], "monetary", imp[2]);
    churn_info info;
    churn_info_get(served, &info);
    text t = {0};
    text_add(&t, "# Model card: churn %s\n\n", CHURN_FILE_VERSION);
    text_add(&t,
             "## What it is\nProbability that a customer buys nothing in the next %d days: "
             "L2-regularised logistic regression (lambda %g, scikit-learn C = %g) fitted by "
             "Newton's method on standardised log1p(recency, frequency, monetary). "
             "Explanations are exact SHAP values of the linear model in log-odds; "
             "counterfactuals search the fewest purchases that bring the probability under "
             "%.2f.\n\n",
             cfg->cut_days, cfg->lambda, cfg->lambda > 0 ? 1 / cfg->lambda : INFINITY,
             cfg->counterfactual_threshold);
    text_add(&t,
             "## Data and label\n%s\n- Cut: %s (%d days before the end). Customers who "
             "bought before it: %zu; churned (no purchase on or after it): %zu (%.1f%%).\n"
             "- Features as of the cut.\n\n",
             data_desc, cutd, cfg->cut_days, n, churned, 100.0 * (double)churned / (double)n);
    text_add(&t,
             "## Evaluation\n%zu customers (%.0f%%, seed %llu) held out.\n\n"
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
    for (int j = 0; j < CHURN_SPLIT_FEATURES; j++)
        text_add(&t, "| %s | %.5f | %.5f | %.5f | %.4f |\n", NAMES[j], info.weights[j],
                 info.mean[j], info.sd[j], imp[j]);
    text_add(&t, "| intercept | %.5f | | | |\n\nRisk: low below %.2f, high from %.2f.\n\n",
             info.intercept, cfg->threshold_medium, cfg->threshold_high);
    text_add(&t,
             "## Limits\n- Three behavioural features only: no product, channel or "
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
    churn_free(served);
    churn_split_free(&sp);
    return st;
}
