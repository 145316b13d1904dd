/* uplift.c - rfm-train's uplift step over core/campaign and core/uplift. */
#include "train_uplift.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uplift.h"
#include "campaign.h"
#include "cards.h"

typedef struct {
    uplift_eval ev[UPLIFT_MAX_ARMS + 1];
    double mean_qini_norm;
} learner_eval;

/* Fit a learner on the training rows and evaluate each arm on the rest. */
static rfm_status evaluate(const campaign_data *d, const uint8_t *is_test, uplift_learner l,
                           const uplift_params *opt, learner_eval *out, char *err,
                           size_t errlen)
{
    size_t ntr = 0, nte = 0, dd = d->d;
    int K = (int)campaign_n_arms(d->enc);
    for (size_t i = 0; i < d->n; i++)
        is_test[i] ? nte++ : ntr++;
    double *Xtr = malloc(ntr * dd * sizeof *Xtr), *ytr = malloc(ntr * sizeof *ytr);
    int *atr = malloc(ntr * sizeof *atr), *ate = malloc(nte * sizeof *ate);
    double *yte = malloc(nte * sizeof *yte), *score = malloc(nte * sizeof *score);
    double *u = malloc((size_t)K * sizeof *u);
    double *scores = malloc(nte * (size_t)K * sizeof *scores);
    uplift_model *m = NULL;
    rfm_status st = RFM_OK;
    if (!Xtr || !ytr || !atr || !ate || !yte || !score || !u || !scores) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    size_t a = 0, b = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (is_test[i]) {
            ate[b] = d->arm[i], yte[b] = d->y[i];
            b++;
        } else {
            memcpy(Xtr + a * dd, d->X + i * dd, dd * sizeof *Xtr);
            atr[a] = d->arm[i], ytr[a] = d->y[i];
            a++;
        }
    }
    uplift_params p = *opt;
    p.learner = l;
    if ((st = uplift_fit(Xtr, ntr, dd, atr, K, ytr, &p, &m, err, errlen)))
        goto out;
    b = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (!is_test[i])
            continue;
        double oc;
        if ((st = uplift_predict(m, d->X + i * dd, u, &oc, err, errlen)))
            goto out;
        for (int k = 0; k < K; k++)
            scores[b * (size_t)K + (size_t)k] = u[k];
        b++;
    }
    out->mean_qini_norm = 0;
    for (int k = 1; k <= K; k++) {
        for (size_t i = 0; i < nte; i++)
            score[i] = scores[i * (size_t)K + (size_t)(k - 1)];
        if ((st = uplift_evaluate(yte, ate, score, nte, k, &out->ev[k], err, errlen)))
            goto out;
        out->mean_qini_norm += out->ev[k].qini_norm / K;
    }
out:
    uplift_free(m);
    free(Xtr), free(ytr), free(atr), free(ate), free(yte), free(score), free(u), free(scores);
    return st;
}

static json_t *curve_json(const uplift_eval *e)
{
    json_t *pts = json_array();
    for (int j = 0; j < e->n_points; j += 5)
        json_array_append_new(pts, json_pack("[f,f,f]", e->frac[j], e->qini[j], e->uplift[j]));
    return pts;
}

rfm_status train_uplift(const char *path, const campaign_spec *spec, const uplift_params *cfg,
                        json_t **model_json,
                        json_t **metrics, char **card, char data_sha[65], char *err,
                        size_t errlen)
{
    *model_json = *metrics = NULL;
    *card = NULL;
    campaign_data *d = NULL;
    uint8_t *is_test = NULL;
    uplift_model *m = NULL;
    learner_eval ev[2];
    json_t *mj = NULL, *ej = NULL;
    rfm_status st = campaign_read(path, spec, &d, err, errlen);
    if (st != RFM_OK)
        return st;
    memcpy(data_sha, d->sha256, 65);
    int K = (int)campaign_n_arms(d->enc);
    if (!(is_test = malloc(d->n))) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    if ((st = uplift_holdout(d->arm, d->n, cfg->holdout, cfg->seed, is_test, err, errlen)) ||
        (st = evaluate(d, is_test, UPLIFT_T_LEARNER, cfg, &ev[0], err, errlen)) ||
        (st = evaluate(d, is_test, UPLIFT_CAUSAL_FOREST, cfg, &ev[1], err, errlen)))
        goto out;
    uplift_learner chosen = !cfg->choose_learner ? cfg->learner
                            : ev[1].mean_qini_norm >= ev[0].mean_qini_norm
                                ? UPLIFT_CAUSAL_FOREST
                                : UPLIFT_T_LEARNER;
    uplift_params p = *cfg;
    p.learner = chosen;
    if ((st = uplift_fit(d->X, d->n, d->d, d->arm, K, d->y, &p, &m, err, errlen)) ||
        (st = uplift_to_json(m, &mj, err, errlen)) ||
        (st = campaign_encoding_to_json(d->enc, &ej, err, errlen)))
        goto out;
    json_t *arms = json_array();
    for (int k = 1; k <= K; k++)
        json_array_append_new(arms, json_string(campaign_arm_name(d->enc, (size_t)k)));
    *model_json = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:o}", "model", "uplift", "version",
                            UPLIFT_FILE_VERSION, "learner", uplift_learner_name(chosen),
                            "outcome", campaign_outcome_name(d->enc), "arms", arms, "encoding",
                            ej, "fitted", mj);
    ej = mj = NULL;
    json_t *evj = json_object();
    const char *names[2] = {"t_learner", "causal_forest"};
    for (int l = 0; l < 2; l++) {
        json_t *per = json_object();
        for (int k = 1; k <= K; k++) {
            const uplift_eval *e = &ev[l].ev[k];
            json_object_set_new(
                per, campaign_arm_name(d->enc, (size_t)k),
                json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:o}", "customers", (json_int_t)e->n,
                          "qini_coefficient", e->qini_coef, "qini_normalised", e->qini_norm,
                          "qini_random_area", e->qini_random, "auuc", e->auuc, "auuc_normalised",
                          e->auuc_norm, "uplift_random_area", e->uplift_random,
                          "curve_frac_qini_uplift", curve_json(e)));
        }
        json_object_set_new(evj, names[l], per);
    }
    *metrics = json_pack("{s:s,s:s,s:I,s:f,s:o}", "served_learner", uplift_learner_name(chosen),
                         "outcome", campaign_outcome_name(d->enc), "customers", (json_int_t)d->n,
                         "holdout_share", cfg->holdout, "holdout", evj);
    text t = {0};
    text_add(&t, "# Model card: uplift %s\n\n", UPLIFT_FILE_VERSION);
    text_add(&t, "## What it is\nPer-customer expected lift of each campaign arm over control, "
                 "for the outcome `%s`: a T-learner (one honest regression forest per arm and "
                 "for control, uplift = difference) and a causal forest in the manner of Wager "
                 "and Athey / grf (honest subsampled trees split on effect heterogeneity, y "
                 "centred on the control outcome forest). Served learner: **%s** (%s).\n\n",
             campaign_outcome_name(d->enc), uplift_learner_name(chosen),
             !cfg->choose_learner ? "named in the config"
                                  : "the better mean normalised Qini on held-out data");
    text_add(&t, "## Data\n- Campaign `%s` (sha256 `%s`): %zu customers, %zu encoded feature "
                 "columns, arms:", path, d->sha256, d->n, d->d);
    for (int k = 1; k <= K; k++)
        text_add(&t, " %s%s", campaign_arm_name(d->enc, (size_t)k), k < K ? "," : "");
    text_add(&t, "; control `%s`.\n\n", spec->control);
    text_add(&t, "## Held-out evaluation\n%.0f %% of customers held out, stratified by arm, "
                 "seed %llu. Qini and uplift curves as scikit-uplift defines them (docs/uplift.md): "
                 "coefficients are areas above the exact random line; normalised ones divide by "
                 "the perfect model's.\n\n| learner | arm | Qini coef. | Qini normalised | "
                 "AUUC | AUUC normalised |\n|---|---|---|---|---|---|\n",
             100 * cfg->holdout, (unsigned long long)cfg->seed);
    for (int l = 0; l < 2; l++)
        for (int k = 1; k <= K; k++) {
            const uplift_eval *e = &ev[l].ev[k];
            text_add(&t, "| %s | %s | %.2f | %.4f | %.2f | %.4f |\n", names[l],
                     campaign_arm_name(d->enc, (size_t)k), e->qini_coef, e->qini_norm, e->auuc,
                     e->auuc_norm);
        }
    text_add(&t, "\nCurve points (share targeted, Qini, uplift) are in the manifest's metrics.\n\n"
                 "## Limits\n- Randomised experiments only: no propensity model.\n"
                 "- Small or negative normalised Qini means little effect heterogeneity was "
                 "found for that arm: target by average effect instead.\n"
                 "- Effects are for the outcome above, per customer, on the campaign's scale "
                 "(a visit rate difference for `visit`).\n");
    if (t.oom || !*model_json || !*metrics) {
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
    json_decref(mj);
    json_decref(ej);
    uplift_free(m);
    free(is_test);
    campaign_data_free(d);
    return st;
}
