/* drift.c - decile bins, PSI and a two-half sliding window of counts. */
#include "drift.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sortd.h"

struct drift_monitor {
    size_t nf, half;
    drift_bins bins[DRIFT_MAX_FEATURES];
    size_t counts[2][DRIFT_MAX_FEATURES][DRIFT_MAX_BINS]; /* atomic */
    size_t total[2];                                      /* atomic */
    int cur;                                              /* atomic: half being filled */
    pthread_mutex_t mu;
};

rfm_status drift_bins_build(const double *values, size_t n, drift_bins *out, char *err,
                            size_t errlen)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += !isnan(values[i]);
    if (m == 0)
        return rfm_fail(err, errlen, RFM_EDATA, "no finite values to bin");
    double *v = malloc(m * sizeof *v);
    if (!v)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(values[i]))
            v[m++] = values[i];
    if (!sortd(v, m)) {
        free(v);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    drift_bins b;
    memset(&b, 0, sizeof b);
    size_t ne = 0;
    for (size_t j = 1; j < DRIFT_MAX_BINS; j++) {
        size_t rank = (j * m + DRIFT_MAX_BINS - 1) / DRIFT_MAX_BINS; /* ceil(j m / 10) */
        double e = v[rank > 0 ? rank - 1 : 0];
        /* An edge at the maximum would leave the last bin empty in training. */
        if ((ne == 0 || e > b.edges[ne - 1]) && e < v[m - 1])
            b.edges[ne++] = e;
    }
    b.nbins = ne + 1;
    /* Sorted values: each bin is a run; count it with the same rule as drift_bin. */
    size_t i = 0;
    for (size_t k = 0; k < b.nbins; k++) {
        size_t start = i;
        while (i < m && (k == ne || v[i] <= b.edges[k]))
            i++;
        b.expected[k] = (double)(i - start) / (double)m;
    }
    free(v);
    *out = b;
    return RFM_OK;
}

size_t drift_bin(const drift_bins *b, double x)
{
    size_t k = 0;
    while (k + 1 < b->nbins && x > b->edges[k])
        k++;
    return k;
}

double drift_psi(const double *expected, const double *actual, size_t nbins)
{
    double s = 0;
    for (size_t k = 0; k < nbins; k++) {
        double e = fmax(expected[k], DRIFT_FLOOR), a = fmax(actual[k], DRIFT_FLOOR);
        s += (a - e) * log(a / e);
    }
    return s;
}

drift_monitor *drift_monitor_new(const drift_bins *bins, size_t nfeatures, size_t window)
{
    if (nfeatures < 1 || nfeatures > DRIFT_MAX_FEATURES || window < 2)
        return NULL;
    for (size_t f = 0; f < nfeatures; f++)
        if (bins[f].nbins < 1 || bins[f].nbins > DRIFT_MAX_BINS)
            return NULL;
    drift_monitor *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->nf = nfeatures;
    m->half = window / 2;
    memcpy(m->bins, bins, nfeatures * sizeof *bins);
    return m;
}

void drift_monitor_free(drift_monitor *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void drift_monitor_observe(drift_monitor *m, const double *x)
{
    int c = __atomic_load_n(&m->cur, __ATOMIC_ACQUIRE);
    for (size_t f = 0; f < m->nf; f++)
        if (!isnan(x[f]))
            __atomic_add_fetch(&m->counts[c][f][drift_bin(&m->bins[f], x[f])], 1, __ATOMIC_RELAXED);
    /* Exactly one caller sees the half reach its size: that one rotates. */
    if (__atomic_add_fetch(&m->total[c], 1, __ATOMIC_ACQ_REL) != m->half)
        return;
    pthread_mutex_lock(&m->mu);
    int o = 1 - c;
    for (size_t f = 0; f < m->nf; f++)
        for (size_t k = 0; k < DRIFT_MAX_BINS; k++)
            __atomic_store_n(&m->counts[o][f][k], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&m->total[o], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&m->cur, o, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&m->mu);
}

/* Caller holds m->mu, so that no rotation clears a half halfway through. */
static void window_counts(drift_monitor *m, size_t f, size_t *counts)
{
    for (size_t k = 0; k < m->bins[f].nbins; k++)
        counts[k] = __atomic_load_n(&m->counts[0][f][k], __ATOMIC_RELAXED) +
                    __atomic_load_n(&m->counts[1][f][k], __ATOMIC_RELAXED);
}

void drift_monitor_counts(drift_monitor *m, size_t f, size_t *counts)
{
    pthread_mutex_lock(&m->mu);
    window_counts(m, f, counts);
    pthread_mutex_unlock(&m->mu);
}

void drift_monitor_psi(drift_monitor *m, double *psi, size_t *n)
{
    pthread_mutex_lock(&m->mu);
    for (size_t f = 0; f < m->nf; f++) {
        size_t counts[DRIFT_MAX_BINS], total = 0;
        window_counts(m, f, counts);
        for (size_t k = 0; k < m->bins[f].nbins; k++)
            total += counts[k];
        n[f] = total;
        psi[f] = 0;
        if (total == 0)
            continue;
        double actual[DRIFT_MAX_BINS];
        for (size_t k = 0; k < m->bins[f].nbins; k++)
            actual[k] = (double)counts[k] / (double)total;
        psi[f] = drift_psi(m->bins[f].expected, actual, m->bins[f].nbins);
    }
    pthread_mutex_unlock(&m->mu);
}
