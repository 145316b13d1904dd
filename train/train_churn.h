/* train_churn.h - rfm-train's step for the churn model. */
#ifndef RFM_TRAIN_CHURN_H
#define RFM_TRAIN_CHURN_H

#include <jansson.h>

#include "config.h"
#include "txn.h"
#include "versions.h"

/* Label customers by a time split, evaluate on a seeded held-out part
 * (beside BG/NBD's 1 - P(alive)), refit on every customer. New *model_json,
 * *metrics and *card on success, and, when served is not NULL, the served
 * model itself in *served (the caller frees it; what churn_from_json of
 * *model_json gives), so that a later step need not parse it again. */
rfm_status train_churn(const txn_data *d, const churn_params *cfg, const char *data_desc,
                       json_t **model_json, json_t **metrics, char **card, churn_model **served,
                       char *err, size_t errlen);

#endif
