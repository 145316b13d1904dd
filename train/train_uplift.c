/* train_uplift.c - rfm-train's uplift step: reads the campaign, has
 * core/uplift evaluate every learner and the best single-feature rule on one
 * stratified held-out part (with bootstrap intervals), chooses one, refits it
 * on everything; the model JSON (with the comparison table), metrics and card. */
#include "train_uplift.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign.h"
#include "cards.h"
#include "rng.h"
#include "uplift.h"

/* Rows of the comparison: the learners, then a random score for reference. */
#define N_ROWS (UPLIFT_N_LEARNERS + 1)
#define ROW_RANDOM UPLIFT_N_LEARNERS

static const char *row_name(int l)
{
    return l == ROW_RANDOM ? "random" : uplift_learner_name((uplift_learner)l);
}

static json_t *curve_json(const uplift_eval *e)
{
    json_t *pts = json_array();
    for (int j = 0; j < e->n_points; j += 5)
        json_array_append_new(pts, json_pack("[f,f,f]", e->frac[j], e->qini[j], e->uplift[j]));
    return pts;
}

/* The rule of arm k in words: "`womens` > 0.5" for the side with the larger
 * effect, and both effects. */
static void rule_text(text *t, const campaign_encoding *enc, const uplift_rule *r)
{
    const char *col = campaign_column_name(enc, (size_t)r->feature);
    int gt_first = r->uplift_gt > r->uplift_le;
    text_add(t, "`%s` %s %.4g: uplift %.4f; otherwise %.4f", col,
             gt_first ? ">" : "<=", r->threshold, gt_first ? r->uplift_gt : r->uplift_le,
             gt_first ? r->uplift_le : r->uplift_gt);
}

/* What a ranking with no information scores on the held-out rows
 * (uplift_random_band, n_boot orderings, at least 20). */
static rfm_status eval_random(const campaign_data *d, const uint8_t *is_test, int K,
                              const uplift_params *cfg, uplift_eval *ev, double *mean, char *err,
                              size_t errlen)
{
    size_t nte = 0;
    for (size_t i = 0; i < d->n; i++)
        nte += is_test[i];
    double *y = malloc((nte ? nte : 1) * sizeof *y);
    int *a = malloc((nte ? nte : 1) * sizeof *a);
    rfm_status st = RFM_OK;
    if (!y || !a) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    size_t j = 0;
    for (size_t i = 0; i < d->n; i++)
        if (is_test[i]) {
            y[j] = d->y[i];
            a[j++] = d->arm[i];
        }
    *mean = 0;
    for (int k = 1; k <= K && st == RFM_OK; k++) {
        st = uplift_random_band(y, a, nte, k, cfg->n_boot > 20 ? cfg->n_boot : 20,
                                uplift_boot_seed(cfg->seed, k) ^ 0x5eed, &ev[k - 1], err, errlen);
        *mean += ev[k - 1].qini_norm / K;
    }
out:
    free(y), free(a);
    return st;
}

rfm_status train_uplift(const char *path, const campaign_spec *spec, const uplift_params *cfg,
                        json_t **model_json, json_t **metrics, char **card, char data_sha[65],
                        char *err, size_t errlen)
{
    *model_json = *metrics = NULL;
    *card = NULL;
    campaign_data *d = NULL;
    uint8_t *is_test = NULL;
    uplift_model *m = NULL, *rule_model = NULL, *cf_model = NULL;
    uplift_eval(*ev)[UPLIFT_MAX_ARMS] = NULL; /* [row][arm - 1] */
    double mean_qini[N_ROWS];
    json_t *mj = NULL, *ej = NULL;
    rfm_status st = campaign_read(path, spec, &d, err, errlen);
    if (st != RFM_OK)
        return st;
    memcpy(data_sha, d->sha256, 65);
    int K = (int)campaign_n_arms(d->enc);
    if (!(is_test = malloc(d->n)) || !(ev = calloc(N_ROWS, sizeof *ev))) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    if ((st = uplift_holdout(d->arm, d->y, d->n, cfg->holdout, cfg->seed, is_test, err, errlen)))
        goto out;
    {
        uplift_learner all[UPLIFT_N_LEARNERS];
        uplift_model *fitted[UPLIFT_N_LEARNERS];
        uplift_eval *flat = malloc(UPLIFT_N_LEARNERS * (size_t)K * sizeof *flat);
        if (!flat) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            goto out;
        }
        for (int l = 0; l < UPLIFT_N_LEARNERS; l++)
            all[l] = (uplift_learner)l;
        st = uplift_holdout_compare(d->X, d->n, d->d, d->arm, K, d->y, is_test, cfg, all,
                                    UPLIFT_N_LEARNERS, flat, mean_qini, fitted, err, errlen);
        if (st == RFM_OK) {
            for (int l = 0; l < UPLIFT_N_LEARNERS; l++)
                memcpy(ev[l], flat + (size_t)l * (size_t)K, (size_t)K * sizeof *flat);
            rule_model = fitted[UPLIFT_RULE];
            cf_model = fitted[UPLIFT_CAUSAL_FOREST];
            for (int l = 0; l < UPLIFT_N_LEARNERS; l++)
                if (l != UPLIFT_RULE && l != UPLIFT_CAUSAL_FOREST)
                    uplift_free(fitted[l]);
        }
        free(flat);
        if (st != RFM_OK)
            goto out;
    }
    if ((st = eval_random(d, is_test, K, cfg, ev[ROW_RANDOM], &mean_qini[ROW_RANDOM], err, errlen)))
        goto out;
    uplift_learner chosen = uplift_choose_learner(cfg, mean_qini);
    uplift_params p = *cfg;
    p.learner = chosen;
    if ((st = uplift_fit(d->X, d->n, d->d, d->arm, K, d->y, &p, &m, err, errlen)) ||
        (st = uplift_to_json(m, &mj, err, errlen)) ||
        (st = campaign_encoding_to_json(d->enc, &ej, err, errlen)))
        goto out;

    /* The comparison: one entry per candidate (and the random score), per arm. */
    json_t *cmp = json_object(), *evj = json_object();
    for (int l = 0; l < N_ROWS; l++) {
        json_t *per = json_object(), *perm = json_object();
        for (int k = 1; k <= K; k++) {
            const uplift_eval *e = &ev[l][k - 1];
            const char *an = campaign_arm_name(d->enc, (size_t)k);
            json_object_set_new(per, an,
                                json_pack("{s:f,s:[f,f],s:f,s:f,s:f}", "qini_normalised",
                                          e->qini_norm, "qini_interval_90", e->qini_lo, e->qini_hi,
                                          "qini_coefficient", e->qini_coef, "auuc", e->auuc,
                                          "auuc_normalised", e->auuc_norm));
            json_object_set_new(perm, an,
                                json_pack("{s:I,s:f,s:f,s:[f,f],s:f,s:f,s:f,s:f,s:o}", "customers",
                                          (json_int_t)e->n, "qini_coefficient", e->qini_coef,
                                          "qini_normalised", e->qini_norm, "qini_interval_90",
                                          e->qini_lo, e->qini_hi, "qini_random_area",
                                          e->qini_random, "auuc", e->auuc, "auuc_normalised",
                                          e->auuc_norm, "uplift_random_area", e->uplift_random,
                                          "curve_frac_qini_uplift", curve_json(e)));
        }
        json_object_set_new(
            cmp, row_name(l),
            json_pack("{s:f,s:o}", "mean_qini_normalised", mean_qini[l], "arms", per));
        json_object_set_new(evj, row_name(l), perm);
    }
    json_t *arms = json_array();
    for (int k = 1; k <= K; k++)
        json_array_append_new(arms, json_string(campaign_arm_name(d->enc, (size_t)k)));
    *model_json = json_pack(
        "{s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:{s:f,s:I,s:i,s:s,s:o}}", "model", "uplift", "version",
        UPLIFT_FILE_VERSION, "learner", uplift_learner_name(chosen), "outcome",
        campaign_outcome_name(d->enc), "arms", arms, "encoding", ej, "fitted", mj, "holdout",
        "share", cfg->holdout, "seed", (json_int_t)cfg->seed, "bootstrap_resamples", cfg->n_boot,
        "chosen_by", cfg->choose_learner ? "best mean normalised Qini" : "uplift.learner",
        "comparison", cmp);
    ej = mj = NULL;
    *metrics = json_pack("{s:s,s:s,s:I,s:f,s:i,s:o}", "served_learner", uplift_learner_name(chosen),
                         "outcome", campaign_outcome_name(d->enc), "customers", (json_int_t)d->n,
                         "holdout_share", cfg->holdout, "bootstrap_resamples", cfg->n_boot,
                         "holdout", evj);

    text t = {0};
    text_add(&t, "# Model card: uplift %s\n\n", UPLIFT_FILE_VERSION);
    text_add(&t,
             "## What it is\nPer-customer expected lift of each campaign arm over control, "
             "for the outcome `%s`. Candidates: a T-learner, an honest causal forest (grf's "
             "criterion; leaf size and features per split %s), an X-learner, a DR-learner "
             "(AIPW pseudo-outcomes, %d-fold cross-fitting) and the best single-feature rule "
             "(docs/uplift.md). Served: **%s** (%s).\n\n",
             campaign_outcome_name(d->enc),
             cfg->tune ? "tuned on an inner split of the training part" : "as configured",
             cfg->folds, uplift_learner_name(chosen),
             !cfg->choose_learner ? "named in the config"
                                  : "the best mean normalised Qini on held-out data");
    if (chosen == UPLIFT_RULE) {
        text_add(&t, "**The single-feature rule beats every learner on the held-out customers, "
                     "so the rule is served**: no learner ranked the held-out customers better than "
                     "it (see the intervals below for how far apart they are). "
                     "Refitted on all customers, per arm:\n");
        for (int k = 1; k <= K; k++) {
            uplift_rule r;
            if (uplift_get_rule(m, k, &r) == RFM_OK) {
                text_add(&t, "- %s: ", campaign_arm_name(d->enc, (size_t)k));
                rule_text(&t, d->enc, &r);
                text_add(&t, "\n");
            }
        }
        text_add(&t, "\n");
    }
    text_add(&t,
             "## Data\n- Campaign `%s` (sha256 `%s`): %zu customers, %zu encoded feature "
             "columns, arms:",
             path, d->sha256, d->n, d->d);
    for (int k = 1; k <= K; k++)
        text_add(&t, " %s%s", campaign_arm_name(d->enc, (size_t)k), k < K ? "," : "");
    text_add(&t, "; control `%s`.\n\n", spec->control);
    text_add(&t,
             "## Held-out comparison\n%.0f %% of customers held out, stratified by arm and "
             "outcome, seed %llu; every candidate fitted on the rest (tuning, folds and the rule "
             "search see only those). Qini and uplift curves as scikit-uplift defines them "
             "(docs/uplift.md): coefficients are areas above the exact random line; normalised "
             "ones divide by the perfect model's. Interval: 5th-95th percentile of the "
             "normalised Qini over %d bootstrap resamples of the held-out customers (within arm "
             "x outcome; the same resamples for every learner). `random`: the mean over %d random "
             "orderings of the held-out customers, and the 5th-95th percentile of theirs - how "
             "far a ranking with no information strays.\n\n"
             "| candidate | mean Qini norm. | arm | Qini normalised | 90 %% interval | Qini coef. "
             "| AUUC | AUUC normalised |\n|---|---|---|---|---|---|---|---|\n",
             100 * cfg->holdout, (unsigned long long)cfg->seed, cfg->n_boot,
             ev[ROW_RANDOM][0].n_boot);
    for (int l = 0; l < N_ROWS; l++)
        for (int k = 1; k <= K; k++) {
            const uplift_eval *e = &ev[l][k - 1];
            text_add(&t, "| %s%s%s | %.4f | %s | %.4f | [%.4f, %.4f] | %.2f | %.2f | %.4f |\n",
                     l == (int)chosen ? "**" : "", row_name(l), l == (int)chosen ? "**" : "",
                     mean_qini[l], campaign_arm_name(d->enc, (size_t)k), e->qini_norm, e->qini_lo,
                     e->qini_hi, e->qini_coef, e->auuc, e->auuc_norm);
        }
    if (rule_model) {
        text_add(&t, "\nThe rule found on the training part:");
        for (int k = 1; k <= K; k++) {
            uplift_rule r;
            if (uplift_get_rule(rule_model, k, &r) == RFM_OK) {
                text_add(&t, "\n- %s: ", campaign_arm_name(d->enc, (size_t)k));
                rule_text(&t, d->enc, &r);
            }
        }
        text_add(&t, "\n");
    }
    if (cf_model && cfg->tune) {
        int leaf, mtry;
        double iq;
        uplift_get_tuning(cf_model, &leaf, &mtry, &iq);
        text_add(&t,
                 "\nThe causal forest's tuning on the training part chose min_leaf %d and %d "
                 "features per split (inner validation mean normalised Qini %.4f).\n",
                 leaf, mtry, iq);
    }
    text_add(&t, "\nCurve points (share targeted, Qini, uplift) are in the manifest's metrics; "
                 "the table is also in the model file (`holdout.comparison`).\n\n"
                 "## Limits\n- Randomised experiments only: the propensity is the arm's share "
                 "of the rows, not a model of the features.\n"
                 "- Intervals overlap: a difference between candidates inside them is within "
                 "the noise of this holdout.\n"
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
    uplift_free(rule_model);
    uplift_free(cf_model);
    free(is_test);
    free(ev);
    campaign_data_free(d);
    return st;
}
