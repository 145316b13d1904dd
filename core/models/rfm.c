/* rfm.c - quintile boundaries and scores. */
#include "rfm.h"

#include <stdlib.h>
#include <string.h>

double rfm_quantile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    double h = (double)(n - 1) * p;
    size_t lo = (size_t)h;
    if (lo + 1 >= n)
        return sorted[n - 1];
    return sorted[lo] + (h - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bounds_of(double *work, const double *v, size_t n, double out[4])
{
    memcpy(work, v, n * sizeof *work);
    qsort(work, n, sizeof *work, cmp_double);
    for (int i = 0; i < 4; i++)
        out[i] = rfm_quantile(work, n, 0.2 * (i + 1));
}

rfm_status rfm_fit(const double *recency, const double *frequency, const double *monetary, size_t n,
                   rfm_bounds *out, char *err, size_t errlen)
{
    if (n == 0)
        return rfm_fail(err, errlen, RFM_EDATA, "no customers to score");
    double *work = malloc(n * sizeof *work);
    if (!work)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for %zu customers", n);
    bounds_of(work, recency, n, out->recency);
    bounds_of(work, frequency, n, out->frequency);
    bounds_of(work, monetary, n, out->monetary);
    free(work);
    return RFM_OK;
}

int rfm_score_up(const double b[4], double x)
{
    int s = 1;
    for (int i = 0; i < 4; i++)
        s += b[i] < x;
    return s;
}

int rfm_score_down(const double b[4], double x) { return 6 - rfm_score_up(b, x); }

void rfm_score(const rfm_bounds *b, double recency, double frequency, double monetary,
               int scores[3])
{
    scores[0] = rfm_score_down(b->recency, recency);
    scores[1] = rfm_score_up(b->frequency, frequency);
    scores[2] = rfm_score_up(b->monetary, monetary);
}

void rfm_code(const int scores[3], char code[4])
{
    for (int i = 0; i < 3; i++)
        code[i] = (char)('0' + scores[i]);
    code[3] = '\0';
}
