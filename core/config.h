/* config.h - config/rfm.yaml, read once and checked before any work.
 *
 * Each section has a validator that returns the reason it is unusable or
 * NULL (segments_check for the segments section); config_load runs them
 * all, so train/ and server/ share one set of rules and messages. Sections
 * other modules own (server, later models) stay available as JSON in
 * `root`, to be checked by their own validators.
 */
#ifndef RFM_CONFIG_H
#define RFM_CONFIG_H

#include <jansson.h>
#include <stdint.h>

#include "segments.h"
#include "status.h"
#include "txn.h"

typedef struct {
    char *path; /* the file read, for messages */
    json_t *root;
    char *transactions; /* data.transactions (may be NULL) */
    char *models_dir;
    txn_options txn;    /* column names borrow from root */
    segments_options segments;
} rfm_config;

/* Read and check a config file. On failure *out is NULL and err says
 * "file: key: reason". */
rfm_status config_load(const char *path, rfm_config **out, char *err, size_t errlen);
void config_free(rfm_config *c);

/* Parse "YYYY-MM-DD" into a day number; DATE_NONE when invalid. */
int32_t config_date(const char *s);

#endif
