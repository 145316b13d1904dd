/* rfm.h - RFM scores: 1 to 5 (5 best) from quintiles of recency, frequency
 * and monetary value.
 *
 * Boundaries are the 20/40/60/80 % quantiles of the training customers
 * (linear interpolation between order statistics, numpy's default), stored
 * in the model so that a new customer is scored against the same edges.
 * A value's score counts the boundaries strictly below it, so equal values
 * always get equal scores (unlike rank-based qcut, which splits ties):
 *   frequency, monetary: score = 1 + #{b : b < x}        (more is better)
 *   recency:             score = 5 - #{b : b < x}        (less is better)
 * Thread safety: all functions are pure.
 */
#ifndef RFM_RFM_H
#define RFM_RFM_H

#include <stddef.h>

#include "status.h"

typedef struct {
    double recency[4], frequency[4], monetary[4]; /* quintile boundaries */
} rfm_bounds;

/* Quantile p in [0,1] of sorted[0..n-1] with linear interpolation. */
double rfm_quantile(const double *sorted, size_t n, double p);

/* Fit boundaries from n customers' values (arrays are not modified).
 * RFM_EDATA when n == 0, RFM_ENOMEM when a work array cannot be had. */
rfm_status rfm_fit(const double *recency, const double *frequency, const double *monetary, size_t n,
                   rfm_bounds *out, char *err, size_t errlen);

/* Score one value against boundaries (1..5). */
int rfm_score_up(const double b[4], double x);   /* higher is better */
int rfm_score_down(const double b[4], double x); /* lower is better */

/* Scores of one customer, and its three-digit code "RFM" (e.g. "545"). */
void rfm_score(const rfm_bounds *b, double recency, double frequency, double monetary,
               int scores[3]);
void rfm_code(const int scores[3], char code[4]);

#endif
