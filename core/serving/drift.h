/* drift.h - input drift: the population stability index (PSI) of recent
 * request features against the training distribution.
 *
 * Reference: per feature, decile bin edges of the training values and the
 * share of training values in each bin. Ties (frequency is mostly 1, 2, 3)
 * make equal edges; those are merged, so a feature may have fewer than ten
 * bins, and the shares are the real ones counted from the data, not 0.1.
 * A value goes to the first bin whose upper edge is >= it (bins are closed
 * on the right; the last bin is open).
 *
 * Window: the last N observations, approximately: two tumbling halves of
 * N/2. Observations go to the current half; when it fills, the older half
 * is cleared and becomes current. The window therefore holds between N/2
 * and N observations once warm. Observing is lock-free (atomic increments);
 * the rotation and snapshots take a mutex. A thread that read the current
 * half just before a rotation may still count into it: the window is a
 * monitoring estimate, not an exact ledger.
 *
 * PSI = sum over bins of (a - e) ln(a / e), a the recent share, e the
 * expected share, each floored at DRIFT_FLOOR (1e-4) so an empty bin gives
 * a large but finite term. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate,
 * > 0.25 significant shift.
 *
 * Units: whatever the feature's (days, purchases, currency). Workload: one
 * observation per scored customer, tens of thousands per second from many
 * threads; PSI computed on each scrape (seconds apart).
 * Non-goals: categorical features, weighting, exact sliding windows.
 */
#ifndef RFM_DRIFT_H
#define RFM_DRIFT_H

#include <stddef.h>

#include "status.h"

#define DRIFT_MAX_BINS 10
#define DRIFT_MAX_FEATURES 8
#define DRIFT_FLOOR 1e-4

typedef struct {
    size_t nbins;                     /* 1..DRIFT_MAX_BINS */
    double edges[DRIFT_MAX_BINS - 1]; /* upper edges of bins 0..nbins-2, increasing */
    double expected[DRIFT_MAX_BINS];  /* training share per bin, sums to 1 */
} drift_bins;

typedef struct drift_monitor drift_monitor;

/* Decile bins of n finite values (NaNs are skipped; at least one finite
 * value needed, else RFM_EDATA). Edge j (1..9) is the value at rank
 * ceil(j n / 10) of the sorted values; equal edges are merged. Leaves *out
 * unchanged on failure. Thread-safe (reads values only). */
rfm_status drift_bins_build(const double *values, size_t n, drift_bins *out, char *err,
                            size_t errlen);
/* Bin of x (0..nbins-1). */
size_t drift_bin(const drift_bins *b, double x);

/* PSI of actual against expected shares over nbins, each share floored at
 * DRIFT_FLOOR. Pure. */
double drift_psi(const double *expected, const double *actual, size_t nbins);

/* A monitor of nfeatures (<= DRIFT_MAX_FEATURES) features with window of
 * `window` observations (>= 2; two halves of window / 2). bins is copied.
 * NULL when out of memory or arguments are out of range. */
drift_monitor *drift_monitor_new(const drift_bins *bins, size_t nfeatures, size_t window);
void drift_monitor_free(drift_monitor *m);
/* Count one observation x[nfeatures]; a NaN feature is not counted (the
 * others are). Thread-safe and lock-free except for the one caller in
 * window/2 that rotates. */
void drift_monitor_observe(drift_monitor *m, const double *x);
/* PSI of each feature over the window (psi[nfeatures]) and the number of
 * observations in the window (n[nfeatures]); psi is 0 where n is 0.
 * Thread-safe. */
void drift_monitor_psi(drift_monitor *m, double *psi, size_t *n);
/* Counts of feature f per bin over the window (counts[nbins]). Thread-safe. */
void drift_monitor_counts(drift_monitor *m, size_t f, size_t *counts);

#endif
