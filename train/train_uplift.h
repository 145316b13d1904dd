/* uplift.h - rfm-train's step for the uplift models. */
#ifndef RFM_TRAIN_UPLIFT_H
#define RFM_TRAIN_UPLIFT_H

#include <jansson.h>

#include "config.h"
#include "versions.h"

/* Read the campaign file, evaluate every learner and the best single-feature rule on one
 * held-out part stratified by arm and outcome (uplift_holdout_compare, bootstrap intervals, the
 * band of random orderings), choose one (cfg->learner, or with cfg->choose_learner the best mean
 * normalised Qini; the rule only when strictly better), refit it on everything. The comparison
 * table goes into the model JSON ("holdout"), the metrics and the card. *model_json, *metrics and
 * *card are new on success; *data_sha gets the campaign file's sha256. */
rfm_status train_uplift(const char *path, const campaign_spec *spec, const uplift_params *cfg,
                        json_t **model_json, json_t **metrics, char **card, char data_sha[65],
                        char *err, size_t errlen);

#endif
