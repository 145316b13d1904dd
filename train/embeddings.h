/* embeddings.h - rfm-train's step for the customer embeddings. */
#ifndef RFM_TRAIN_EMBEDDINGS_H
#define RFM_TRAIN_EMBEDDINGS_H

#include <jansson.h>

#include "cards.h"
#include "config.h"
#include "txn.h"
#include "versions.h"

/* Fit, evaluate and write stage_dir/customer2vec.faiss; *metrics (JSON)
 * and *card (Markdown) are new on success. d must have been read with the
 * product column. */
rfm_status train_embeddings(const txn_data *d, const embed_params *ep, const ann_params *ap,
                            const char *stage_dir, const char *data_desc, json_t **metrics,
                            char **card, char *err, size_t errlen);

#endif
