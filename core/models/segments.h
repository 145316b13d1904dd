/* segments.h - the segments model: RFM scores with named segments, and
 * k-means clusters of customers named from their centroid profiles.
 *
 * Features for clustering are log1p(recency, frequency, monetary),
 * standardised with the training mean and population standard deviation.
 * Clusters are numbered by value (0 = most valuable: recent, frequent,
 * high spend) and named by matching centroids to configured profiles, one
 * profile per cluster (names are distinct), so a name never depends on a
 * label number. Each cluster carries a rule a person can read: the best
 * leaf of a depth-2 tree on raw recency (days), frequency (invoices) and
 * monetary, the cluster against the others (ruletree.h).
 *
 * Choosing k (segments.k auto): every k of k_min..k_max is fitted and its
 * silhouette measured on one seeded sample; a k whose smallest cluster
 * holds less than min_share of the customers is not a segmentation anyone
 * can act on, so it is out unless every k is; among the rest the smallest
 * k whose silhouette is within SEGMENTS_SIL_TOLERANCE of the best wins.
 * The tolerance is far above the last-bit differences between CPUs (so
 * the choice does not flip on another machine) and below the differences
 * that tell cluster structures apart; fewer clusters are easier to use. The RFM segment map is
 * total: every one of the 125 score codes belongs to exactly one named segment, checked when the
 * options are validated.
 *
 * Thread safety: a fitted or loaded model is read-only; segments_predict
 * may be called from many threads at once.
 */
#ifndef RFM_SEGMENTS_H
#define RFM_SEGMENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "customers.h"
#include "rfm.h"
#include "ruletree.h"
#include "status.h"
#include "versions.h"

typedef struct {
    char *name;
    int lo[3], hi[3]; /* inclusive score ranges for R, F, M */
} segments_rule;

typedef struct {
    char *name;
    double target[3]; /* centroid profile in standard units: R, F, M */
    char *strategy;   /* marketing strategy text */
} segments_profile;

typedef struct {
    segments_rule *rules;
    size_t nrules;
    segments_profile *profiles;
    size_t nprofiles;
    int k; /* 0: choose by silhouette over k_min..k_max */
    int k_min, k_max;
    int restarts, max_iter;
    uint64_t seed;
    size_t silhouette_sample; /* points measured per k; 0 = all */
    double min_share;         /* auto k: smallest cluster's share at least this (0-0.5) */
} segments_options;

/* Silhouettes this close count as equal when choosing k: the smaller k wins. */
#define SEGMENTS_SIL_TOLERANCE 0.005

/* Reason the options cannot be used (segment map not total or overlapping,
 * a range outside 1..5, fewer profiles than clusters, ...), written into
 * buf; NULL when they are fine. */
const char *segments_check(const segments_options *opt, char *buf, size_t len);

typedef struct segments_model segments_model;

typedef struct {
    size_t cluster;
    const char *segment;     /* cluster name; owned by the model */
    const char *strategy;    /* owned by the model */
    int scores[3];           /* R, F, M scores 1..5 */
    char rfm_score[4];       /* "545" */
    const char *rfm_segment; /* owned by the model */
} segments_result;

typedef struct {
    size_t cluster;
    const char *segment, *strategy;
    size_t customers;
    double share;
    double mean[3], median[3]; /* of raw recency, frequency, monetary */
    const ruletree_rule *rule; /* owned by the model; NULL in a 1.0 model file */
} segments_cluster_info;

/* A cluster rule as text in RFM units, e.g. "recency <= 30 days and
 * frequency >= 5 invoices" (ruletree_format). */
int segments_rule_text(const ruletree_rule *r, char *buf, size_t len);

/* The k chosen from a sweep (see the top of this file): sil[k] and
 * smallest[k] (the smallest cluster's share) for k in kmin..kmax.
 * *none_eligible is set when no k has its smallest cluster at min_share or
 * above (then every k competes). */
size_t segments_choose_k(size_t kmin, size_t kmax, const double *sil, const double *smallest,
                         double min_share, int *none_eligible);

/* Fit on n customers. opt must pass segments_check. */
rfm_status segments_fit(const double *recency, const double *frequency, const double *monetary,
                        size_t n, const segments_options *opt, segments_model **out, char *err,
                        size_t errlen);
void segments_free(segments_model *m);

/* Score one customer. Values must be finite and not negative (RFM_EINVAL
 * naming the field otherwise). */
rfm_status segments_predict(const segments_model *m, double recency, double frequency,
                            double monetary, segments_result *res, char *err, size_t errlen);

size_t segments_nclusters(const segments_model *m);
void segments_cluster(const segments_model *m, size_t i, segments_cluster_info *out);
/* Index of the first cluster named segment, or -1 when none is. */
long segments_find(const segments_model *m, const char *segment);
/* Name of cluster c, or NULL when c is not a cluster (c < 0: unknown). */
const char *segments_cluster_name(const segments_model *m, long c);
/* Cluster of a customer of the per-customer table by its recency,
 * frequency and monetary value, or -1 when c is NULL or has no usable RFM
 * values (a table trained from a customer summary has none). */
long segments_customer_cluster(const segments_model *m, const customer_row *c);
/* Silhouette of the chosen k (measured also when k came from config; NaN
 * only in a model file written before it was). */
double segments_silhouette(const segments_model *m);

/* How k was chosen: the range fitted (k_min == k_max when segments.k was
 * fixed), the criterion's parameters, and whether no k met min_share. */
typedef struct {
    size_t k_min, k_max;
    int fixed, none_eligible;
    double min_share, tolerance;
} segments_selection;
void segments_get_selection(const segments_model *m, segments_selection *out);
/* Quality of the solution with k clusters: 1 and its silhouette and
 * smallest cluster's share when k was fitted, 0 otherwise. */
int segments_k_quality(const segments_model *m, size_t k, double *silhouette,
                       double *smallest_share);
size_t segments_ncustomers(const segments_model *m);
const rfm_bounds *segments_bounds(const segments_model *m);
/* Name of the segment of an RFM code's scores. */
const char *segments_rfm_segment(const segments_model *m, const int scores[3]);

rfm_status segments_to_json(const segments_model *m, json_t **out, char *err, size_t errlen);
rfm_status segments_from_json(const json_t *j, segments_model **out, char *err, size_t errlen);

#endif
