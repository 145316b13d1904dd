/* ruletree.h - one rule a person can read for one class against the rest:
 * the best leaf of any decision tree of depth 2, found exactly.
 *
 * A rule is a conjunction of at most two conditions `x_f <= v` or
 * `x_f >= v` on the original features (so thresholds read in their units:
 * days, invoices, money), where v is a value seen in the data. Two
 * conditions are on two features, or on one feature as an interval
 * (`30 <= recency <= 90`). The rule maximises coverage - leak (Youden's
 * J), where coverage is the share of the class the rule matches and leak
 * the share of the other points it matches, computed in integers as
 * tp * nneg - fp * npos so that no float decides between two rules.
 *
 * Ties, a total order (the first wins):
 *   1. the larger tp * nneg - fp * npos;
 *   2. fewer conditions (the empty rule, which matches everyone and scores
 *      0, wins over any rule that does not score above 0);
 *   3. the conditions compared in their stored order, each by feature
 *      index, then op (<= before >=), then the smaller value.
 * Conditions are stored by feature index, <= before >= on one feature.
 *
 * Non-goals: deeper trees (an exact depth-3 search costs O(n^2 log n)), a
 * disjunction of leaves (it would not read as one rule).
 * Workload: up to millions of points, a handful of features; one call is
 * O(d^2 n log n) (a max-prefix segment tree swept along each feature).
 * Thread safety: pure functions of their arguments.
 */
#ifndef RFM_RULETREE_H
#define RFM_RULETREE_H

#include <stddef.h>

#include "status.h"

enum { RULETREE_LE = 0, RULETREE_GE = 1 };

typedef struct {
    int feature; /* index into the caller's features */
    int op;      /* RULETREE_LE: x <= value; RULETREE_GE: x >= value */
    double value;
} ruletree_cond;

typedef struct {
    int nconds; /* 0 (matches everyone), 1 or 2 */
    ruletree_cond cond[2];
    size_t tp, fp;     /* points of the class / of the others the rule matches */
    size_t npos, nneg; /* points of the class / of the others in all */
} ruletree_rule;

/* The best rule (by the order above) for the points with labels[i] == cls
 * against the others, over d columns x[0..d-1] of n finite values each.
 * RFM_EINVAL for a non-finite value, RFM_ENOMEM (out untouched) when out
 * of memory. */
rfm_status ruletree_fit(const double *const *x, size_t d, size_t n, const int *labels, int cls,
                        ruletree_rule *out, char *err, size_t errlen);
/* ruletree_fit for every class 0 .. k-1 into out[0 .. k-1], the same rules:
 * the columns ranked once for all of them, the classes on two threads. */
rfm_status ruletree_fit_all(const double *const *x, size_t d, size_t n, const int *labels, size_t k,
                            ruletree_rule *out, char *err, size_t errlen);

/* Whether the point v (d values) meets every condition of r. */
int ruletree_match(const ruletree_rule *r, const double *v);

/* r's score tp * nneg - fp * npos, and the order above: < 0 when a comes
 * before b (a is the better rule), 0 when they are the same rule. */
long long ruletree_score(const ruletree_rule *r);
int ruletree_cmp(const ruletree_rule *a, const ruletree_rule *b);

/* The rule as text, e.g. "recency <= 30 days and frequency >= 5
 * invoices" or "30 <= recency <= 90 days"; names[f] and units[f] (may be
 * "") of each feature; "everyone" for the empty rule. Values in their
 * shortest exact decimal form. Returns the length snprintf would. */
int ruletree_format(const ruletree_rule *r, const char *const *names, const char *const *units,
                    char *buf, size_t len);

#endif
