/* cards.h - model cards written by rfm-train next to each model. */
#ifndef RFM_CARDS_H
#define RFM_CARDS_H

#include <stddef.h>

#include "cltv.h"
#include "config.h"
#include "segments.h"
#include "txn.h"

/* Growable text for cards; oom set when an allocation failed. */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} text;

void text_add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Each returns a new string, or NULL when out of memory. */
char *card_segments(const segments_model *m, const char *data_path, const txn_report *r,
                    const txn_data *d);
char *card_cltv(const cltv_model *c, const char *data_desc, const cltv_holdout *h,
                const cltv_options *cfg);
/* The card's title line "# Model card: NAME SEMVER" with the full version
 * (semver+training id) instead: *card is replaced (and the old text freed).
 * A card without that title is left as it is. Returns 0 when out of memory
 * (*card unchanged), else 1. */
int card_retitle(char **card, const char *name, const char *semver, const char *version);

#endif
