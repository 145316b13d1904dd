/* versions.h - the version of each model as models/manifest.json lists it
 * (and each model card's title shows), in one place. Bump a model's
 * version when its file or its meaning changes; the file formats' own
 * integer versions (CHURN_VERSION, uplift's, the ANN file's) stay with the
 * code that reads them. */
#ifndef RFM_VERSIONS_H
#define RFM_VERSIONS_H

#define CUSTOMERS_VERSION "1.1.0" /* customers.csv, the per-customer table */
#define SEGMENTS_VERSION "1.1.0"  /* 1.1: a rule per cluster, k chosen for use */
#define CLTV_VERSION "1.1.0" /* 1.1: "evaluation": the holdout tracked over time */
#define CHURN_FILE_VERSION "2.0.0" /* 2.0: a boosted learner beside the logistic one, the
                                      served "learner"; "evaluation": each learner's held-out
                                      ROC, calibration, gains */
#define EMBEDDINGS_VERSION "1.0.0"
#define UPLIFT_FILE_VERSION "1.0.0"
#define ANALYTICS_VERSION "1.0.0" /* analytics.json, the /ui/ pages' population figures */

#endif
