/* train_churn.c - rfm-train's churn step: labels from a time split and the
 * held-out evaluation (core/churn), the served refit, its JSON and card. */
#include "train_churn.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cards.h"
#include "churn.h"
#include "date.h"

static const char *const NAMES[CHURN_SPLIT_FEATURES] = {"recency", "frequency", "monetary"};

/* The model file's "evaluation" block (docs/churn.md): per learner, the
 * held-out curves of metrics_evaluation_json, which rfm-report draws. */
static rfm_status add_evaluation(const churn_eval *ev, size_t n_test, json_t *model_json, char *err,
                                 size_t errlen)
{
    json_t *lj = NULL, *bj = NULL;
    rfm_status st = metrics_evaluation_json(ev->p_logistic, ev->y_test, n_test, &lj, err, errlen);
    if (!st &&
        !(st = metrics_evaluation_json(ev->p_boosted, ev->y_test, n_test, &bj, err, errlen)) &&
        json_object_set_new(model_json, "evaluation",
                            json_pack("{s:o,s:o}", "logistic", lj, "boosted", bj)))
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    else if (st)
        json_decref(lj);
    return st;
}

/* The boosted refit on every customer of the split, on a thread of its own
 * while the evaluation runs (it needs nothing the evaluation gives; it is
 * kept only when the evaluation chooses the boosted learner). */
typedef struct {
    const churn_split *sp;
    const churn_params *cfg;
    churn_model *m;
    rfm_status st;
    char err[RFM_ERRLEN];
} boosted_refit;

static void *refit_boosted(void *arg)
{
    boosted_refit *r = arg;
    r->st = churn_fit_boosted(r->sp->xr, r->sp->y, r->sp->n, CHURN_RICH_FEATURES, churn_rich_names,
                              r->cfg, &r->m, r->err, sizeof r->err);
    return NULL;
}

rfm_status train_churn(const txn_data *d, const churn_params *cfg, const char *data_desc,
                       json_t **model_json, json_t **metrics, char **card, churn_model **served_out,
                       char *err, size_t errlen)
{
    *model_json = *metrics = NULL;
    if (served_out)
        *served_out = NULL;
    *card = NULL;
    churn_split sp;
    rfm_status st =
        churn_time_split(d, cfg->cut_days, cfg->test_share, cfg->seed, &sp, err, errlen);
    if (st != RFM_OK)
        return st;
    size_t n = sp.n, churned = sp.churned, nte = sp.n_test;
    churn_model *served = NULL;
    churn_eval ev = {0};
    ev.p_logistic = malloc((nte ? nte : 1) * sizeof *ev.p_logistic);
    ev.p_boosted = malloc((nte ? nte : 1) * sizeof *ev.p_boosted);
    ev.y_test = malloc((nte ? nte : 1) * sizeof *ev.y_test);
    if (!ev.p_logistic || !ev.p_boosted || !ev.y_test)
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    boosted_refit refit = {&sp, cfg, NULL, RFM_OK, ""};
    pthread_t th;
    int threaded = !st && pthread_create(&th, NULL, refit_boosted, &refit) == 0;
    if (!st)
        st = churn_evaluate(&sp, NAMES, cfg, &ev, err, errlen);
    if (threaded)
        pthread_join(th, NULL);
    if (st)
        goto out;
    const churn_scores sl = ev.logistic, sb = ev.bgnbd, sg = ev.boosted;
    const churn_learner chosen = churn_choose(&ev);
    const metrics_calib_bin *bins = ev.bins;
    const size_t nbins = ev.nbins;
    const double *imp = ev.importance;
    /* The served model: the chosen learner on every customer of the split
     * (the boosted one fitted beside the evaluation, or here when no thread
     * could start). */
    if (chosen == CHURN_BOOSTED && !threaded)
        refit_boosted(&refit);
    if (chosen == CHURN_BOOSTED) {
        served = refit.m, refit.m = NULL;
        if ((st = refit.st))
            snprintf(err, errlen, "%s", refit.err);
    } else
        st = churn_fit(sp.x, sp.y, n, CHURN_SPLIT_FEATURES, NAMES, cfg, &served, err, errlen);
    if (st || (st = churn_to_json(served, model_json, err, errlen)) ||
        (st = add_evaluation(&ev, nte, *model_json, err, errlen)))
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
    json_t *calb = json_array(), *impb = json_object();
    for (size_t i = 0; i < ev.nbins_boosted; i++)
        json_array_append_new(calb, json_pack("{s:I,s:f,s:f}", "count",
                                              (json_int_t)ev.bins_boosted[i].count,
                                              "mean_predicted", ev.bins_boosted[i].mean_predicted,
                                              "observed_rate", ev.bins_boosted[i].observed_rate));
    for (int j = 0; j < CHURN_RICH_FEATURES; j++)
        json_object_set_new(impb, churn_rich_names[j], json_real(ev.importance_boosted[j]));
    *metrics = json_pack(
        "{s:s,s:I,s:f,s:I,s:s,s:{s:f,s:f,s:f,s:f},s:{s:f,s:f,s:f,s:f},"
        "s:{s:f,s:f,s:f},s:o,s:o,s:{s:f,s:f,s:f},s:o}",
        "cut_date", cutd, "customers", (json_int_t)n, "churn_rate",
        n ? (double)churned / (double)n : 0.0, "test_customers", (json_int_t)nte, "served",
        churn_learner_name(chosen), "logistic", "auc", sl.auc, "log_loss", sl.logloss, "brier",
        sl.brier, "fit_s", ev.fit_s_logistic, "boosted", "auc", sg.auc, "log_loss", sg.logloss,
        "brier", sg.brier, "fit_s", ev.fit_s_boosted, "bgnbd_1_minus_p_alive", "auc", sb.auc,
        "log_loss", sb.logloss, "brier", sb.brier, "calibration", cal, "calibration_boosted", calb,
        "global_importance", "recency", imp[0], "frequency", imp[1], "monetary", imp[2],
        "global_importance_boosted", impb);
    churn_info info;
    churn_info_get(served, &info);
    const boost_params *bp = &cfg->boost;
    text t = {0};
    text_add(&t, "# Model card: churn %s\n\n", CHURN_FILE_VERSION);
    text_add(&t,
             "## What it is\nProbability that a customer buys nothing in the next %d days. "
             "Two learners are fitted and evaluated on the same held-out customers; the one "
             "with the higher held-out AUC is served (a tie keeps the logistic model).\n\n"
             "**Served: %s.**\n\n"
             "- Logistic: L2-regularised logistic regression (lambda %g, scikit-learn C = %g) "
             "fitted by Newton's method on standardised log1p(recency, frequency, monetary); "
             "explanations are exact SHAP values of the linear model in log-odds.\n"
             "- Boosted: gradient-boosted trees (XGBoost, %d trees of depth <= %d, eta %g, "
             "lambda %g, min_child_weight %g, subsample %g, seed %llu) on recency, frequency, "
             "monetary, tenure, aov, ipt_mean, ipt_trend, spend_trend (docs/churn.md); "
             "explanations are exact TreeSHAP values in log-odds (base_value + contributions "
             "= logit), computed by rfm's own tree walk.\n\n"
             "Counterfactuals search the fewest purchases now (recency 0, frequency and "
             "monetary up at the average order value; other features held) that bring the "
             "probability under %.2f.\n\n",
             cfg->cut_days, churn_learner_name(chosen), cfg->lambda,
             cfg->lambda > 0 ? 1 / cfg->lambda : INFINITY, bp->rounds, bp->max_depth, bp->eta,
             bp->lambda, bp->min_child_weight, bp->subsample, (unsigned long long)bp->seed,
             cfg->counterfactual_threshold);
    text_add(&t,
             "## Data and label\n%s\n- Cut: %s (%d days before the end). Customers who "
             "bought before it: %zu; churned (no purchase on or after it): %zu (%.1f%%).\n"
             "- Features as of the cut.\n\n",
             data_desc, cutd, cfg->cut_days, n, churned, 100.0 * (double)churned / (double)n);
    text_add(&t,
             "## Evaluation\n%zu customers (%.0f%%, seed %llu) held out.\n\n"
             "| model | AUC | log loss | Brier | fit (s) |\n|---|---|---|---|---|\n"
             "| logistic regression | %.4f | %.4f | %.4f | %.3f |\n"
             "| boosted trees | %.4f | %.4f | %.4f | %.3f |\n"
             "| BG/NBD 1 - P(alive) | %.4f | %.4f | %.4f | |\n\n",
             nte, 100 * cfg->test_share, (unsigned long long)cfg->seed, sl.auc, sl.logloss,
             sl.brier, ev.fit_s_logistic, sg.auc, sg.logloss, sg.brier, ev.fit_s_boosted, sb.auc,
             sb.logloss, sb.brier);
    text_add(&t, "BG/NBD's P(alive) is 1 by construction for customers with no repeat purchase "
                 "(it lets customers drop out only after a repeat purchase), and many one-time "
                 "buyers churn: hence its weak ranking here.\n\n");
    text_add(&t, "Calibration (deciles of predicted probability, held-out customers):\n\n"
                 "| logistic: customers | mean predicted | observed churn | boosted: customers "
                 "| mean predicted | observed churn |\n|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < nbins || i < ev.nbins_boosted; i++) {
        if (i < nbins)
            text_add(&t, "| %zu | %.4f | %.4f ", bins[i].count, bins[i].mean_predicted,
                     bins[i].observed_rate);
        else
            text_add(&t, "| | | ");
        if (i < ev.nbins_boosted)
            text_add(&t, "| %zu | %.4f | %.4f |\n", ev.bins_boosted[i].count,
                     ev.bins_boosted[i].mean_predicted, ev.bins_boosted[i].observed_rate);
        else
            text_add(&t, "| | | |\n");
    }
    text_add(&t, "\n## Global importance (mean |SHAP| in log-odds, training customers)\n"
                 "| feature | logistic | boosted |\n|---|---|---|\n");
    for (int j = 0; j < CHURN_RICH_FEATURES; j++)
        if (j < CHURN_SPLIT_FEATURES)
            text_add(&t, "| %s | %.4f | %.4f |\n", churn_rich_names[j], imp[j],
                     ev.importance_boosted[j]);
        else
            text_add(&t, "| %s | | %.4f |\n", churn_rich_names[j], ev.importance_boosted[j]);
    if (info.learner == CHURN_LOGISTIC) {
        text_add(&t, "\n## Coefficients (served model, standardised log1p features)\n"
                     "| feature | weight | training mean | sd |\n|---|---|---|---|\n");
        for (int j = 0; j < CHURN_SPLIT_FEATURES; j++)
            text_add(&t, "| %s | %.5f | %.5f | %.5f |\n", NAMES[j], info.weights[j], info.mean[j],
                     info.sd[j]);
        text_add(&t, "| intercept | %.5f | | |\n", info.intercept);
    } else {
        text_add(&t,
                 "\n## Served trees\n%zu trees; base value (mean training log-odds) "
                 "%.5f.\n",
                 boost_ntrees(info.boost), boost_base_value(info.boost));
    }
    text_add(&t, "\nRisk: low below %.2f, high from %.2f.\n\n", cfg->threshold_medium,
             cfg->threshold_high);
    text_add(&t,
             "## Limits\n- Behavioural features only: no product, channel or seasonality "
             "signal (product breadth is left out: the transaction table keeps products per "
             "customer over the whole data, not by day, so it would leak post-cut "
             "purchases).\n- The label depends on the cut: a customer with a long "
             "natural purchase cycle can look churned after %d days.\n- Counterfactual "
             "purchases are at the customer's average order value.\n- The boosted model "
             "scores a request without a purchase history (recency, frequency, monetary "
             "only) with the other features missing, as XGBoost routes missing values; the "
             "live customer store keeps no trends, so those are missing there too.\n- Held-out "
             "AUCs on a few thousand customers differ by sampling noise of about 0.02: the "
             "choice between close learners is not a strong preference.\n",
             cfg->cut_days);
    if (t.oom || !*metrics) {
        free(t.s);
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    *card = t.s;
    if (served_out)
        *served_out = served, served = NULL;
out:
    if (st != RFM_OK) {
        json_decref(*model_json);
        json_decref(*metrics);
        *model_json = *metrics = NULL;
    }
    churn_free(served);
    churn_free(refit.m);
    churn_split_free(&sp);
    free(ev.p_logistic), free(ev.p_boosted), free(ev.y_test);
    return st;
}
