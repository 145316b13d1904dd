/* train_uplift.c - rfm-train's uplift step: reads the campaign, has
 * core/uplift evaluate both learners on a held-out part and choose one,
 * refits it on everything; the model JSON, metrics and card. */
#include "train_uplift.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uplift.h"
#include "campaign.h"
#include "cards.h"

static json_t *curve_json(const uplift_eval *e)
{
    json_t *pts = json_array();
    for (int j = 0; j < e->n_points; j += 5)
        json_array_append_new(pts, json_pack("[f,f,f]", e->frac[j], e->qini[j], e->uplift[j]));
    return pts;
}

rfm_status train_uplift(const char *path, const campaign_spec *spec, const uplift_params *cfg,
                        json_t **model_json, json_t **metrics, char **card, char data_sha[65],
                        char *err, size_t errlen)
{
    *model_json = *metrics = NULL;
    *card = NULL;
    campaign_data *d = NULL;
    uint8_t *is_test = NULL;
    uplift_model *m = NULL;
    uplift_eval(*ev)[UPLIFT_MAX_ARMS] = NULL; /* [learner][arm - 1] */
    double mean_qini[2];
    json_t *mj = NULL, *ej = NULL;
    rfm_status st = campaign_read(path, spec, &d, err, errlen);
    if (st != RFM_OK)
        return st;
    memcpy(data_sha, d->sha256, 65);
    int K = (int)campaign_n_arms(d->enc);
    if (!(is_test = malloc(d->n)) || !(ev = calloc(2, sizeof *ev))) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    if ((st = uplift_holdout(d->arm, d->n, cfg->holdout, cfg->seed, is_test, err, errlen)) ||
        (st = uplift_holdout_eval(d->X, d->n, d->d, d->arm, K, d->y, is_test, cfg, UPLIFT_T_LEARNER,
                                  ev[UPLIFT_T_LEARNER], &mean_qini[UPLIFT_T_LEARNER], err,
                                  errlen)) ||
        (st = uplift_holdout_eval(d->X, d->n, d->d, d->arm, K, d->y, is_test, cfg,
                                  UPLIFT_CAUSAL_FOREST, ev[UPLIFT_CAUSAL_FOREST],
                                  &mean_qini[UPLIFT_CAUSAL_FOREST], err, errlen)))
        goto out;
    uplift_learner chosen = uplift_choose_learner(cfg, mean_qini);
    uplift_params p = *cfg;
    p.learner = chosen;
    if ((st = uplift_fit(d->X, d->n, d->d, d->arm, K, d->y, &p, &m, err, errlen)) ||
        (st = uplift_to_json(m, &mj, err, errlen)) ||
        (st = campaign_encoding_to_json(d->enc, &ej, err, errlen)))
        goto out;
    json_t *arms = json_array();
    for (int k = 1; k <= K; k++)
        json_array_append_new(arms, json_string(campaign_arm_name(d->enc, (size_t)k)));
    *model_json =
        json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:o}", "model", "uplift", "version",
                  UPLIFT_FILE_VERSION, "learner", uplift_learner_name(chosen), "outcome",
                  campaign_outcome_name(d->enc), "arms", arms, "encoding", ej, "fitted", mj);
    ej = mj = NULL;
    json_t *evj = json_object();
    for (int l = 0; l < 2; l++) {
        json_t *per = json_object();
        for (int k = 1; k <= K; k++) {
            const uplift_eval *e = &ev[l][k - 1];
            json_object_set_new(per, campaign_arm_name(d->enc, (size_t)k),
                                json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:o}", "customers",
                                          (json_int_t)e->n, "qini_coefficient", e->qini_coef,
                                          "qini_normalised", e->qini_norm, "qini_random_area",
                                          e->qini_random, "auuc", e->auuc, "auuc_normalised",
                                          e->auuc_norm, "uplift_random_area", e->uplift_random,
                                          "curve_frac_qini_uplift", curve_json(e)));
        }
        json_object_set_new(evj, uplift_learner_name((uplift_learner)l), per);
    }
    *metrics = json_pack("{s:s,s:s,s:I,s:f,s:o}", "served_learner", uplift_learner_name(chosen),
                         "outcome", campaign_outcome_name(d->enc), "customers", (json_int_t)d->n,
                         "holdout_share", cfg->holdout, "holdout", evj);
    text t = {0};
    text_add(&t, "# Model card: uplift %s\n\n", UPLIFT_FILE_VERSION);
    text_add(&t,
             "## What it is\nPer-customer expected lift of each campaign arm over control, "
             "for the outcome `%s`: a T-learner (one honest regression forest per arm and "
             "for control, uplift = difference) and a causal forest in the manner of Wager "
             "and Athey / grf (honest subsampled trees split on effect heterogeneity, y "
             "centred on the control outcome forest). Served learner: **%s** (%s).\n\n",
             campaign_outcome_name(d->enc), uplift_learner_name(chosen),
             !cfg->choose_learner ? "named in the config"
                                  : "the better mean normalised Qini on held-out data");
    text_add(&t,
             "## Data\n- Campaign `%s` (sha256 `%s`): %zu customers, %zu encoded feature "
             "columns, arms:",
             path, d->sha256, d->n, d->d);
    for (int k = 1; k <= K; k++)
        text_add(&t, " %s%s", campaign_arm_name(d->enc, (size_t)k), k < K ? "," : "");
    text_add(&t, "; control `%s`.\n\n", spec->control);
    text_add(&t,
             "## Held-out evaluation\n%.0f %% of customers held out, stratified by arm, "
             "seed %llu. Qini and uplift curves as scikit-uplift defines them (docs/uplift.md): "
             "coefficients are areas above the exact random line; normalised ones divide by "
             "the perfect model's.\n\n| learner | arm | Qini coef. | Qini normalised | "
             "AUUC | AUUC normalised |\n|---|---|---|---|---|---|\n",
             100 * cfg->holdout, (unsigned long long)cfg->seed);
    for (int l = 0; l < 2; l++)
        for (int k = 1; k <= K; k++) {
            const uplift_eval *e = &ev[l][k - 1];
            text_add(&t, "| %s | %s | %.2f | %.4f | %.2f | %.4f |\n",
                     uplift_learner_name((uplift_learner)l), campaign_arm_name(d->enc, (size_t)k),
                     e->qini_coef, e->qini_norm, e->auuc, e->auuc_norm);
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
    free(ev);
    campaign_data_free(d);
    return st;
}
