/* metrics.c - AUC, log loss, Brier score, quantile calibration table, ROC
 * curve, cumulative gains and the evaluation block of the model files. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    double p, w;
    int y;
} scored;

static rfm_status check_inputs(const double *p, const int *y, const double *w, size_t n,
                               double *wsum, char *err, size_t errlen)
{
    if (!p || !y)
        return rfm_fail(err, errlen, RFM_EINVAL, "metrics: p and y must not be NULL");
    if (n == 0)
        return rfm_fail(err, errlen, RFM_EDATA, "metrics: no rows");
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!(p[i] >= 0.0 && p[i] <= 1.0)) /* also rejects NaN */
            return rfm_fail(err, errlen, RFM_EINVAL,
                            "metrics: probability p[%zu] = %g is not in [0, 1]", i, p[i]);
        if (y[i] != 0 && y[i] != 1)
            return rfm_fail(err, errlen, RFM_EINVAL, "metrics: label y[%zu] = %d is not 0 or 1", i,
                            y[i]);
        if (w) {
            if (!(isfinite(w[i]) && w[i] >= 0.0))
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "metrics: weight w[%zu] = %g must be finite and >= 0", i, w[i]);
            s += w[i];
        }
    }
    if (!w)
        s = (double)n;
    if (!(s > 0.0 && isfinite(s)))
        return rfm_fail(err, errlen, RFM_EDATA, "metrics: total weight %g must be finite and > 0",
                        s);
    *wsum = s;
    return RFM_OK;
}

static int cmp_scored(const void *a, const void *b)
{
    double pa = ((const scored *)a)->p, pb = ((const scored *)b)->p;
    return (pa > pb) - (pa < pb);
}

/* A sorted copy: both AUC and the calibration table walk rows by rising p. */
static scored *sorted_copy(const double *p, const int *y, const double *w, size_t n)
{
    scored *s = malloc(n * sizeof *s);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        s[i] = (scored){p[i], w ? w[i] : 1.0, y[i]};
    qsort(s, n, sizeof *s, cmp_scored);
    return s;
}

rfm_status metrics_auc(const double *p, const int *y, const double *w, size_t n, double *out,
                       char *err, size_t errlen)
{
    double wsum;
    rfm_status st = check_inputs(p, y, w, n, &wsum, err, errlen);
    if (st != RFM_OK)
        return st;
    scored *s = sorted_copy(p, y, w, n);
    if (!s)
        return rfm_fail(err, errlen, RFM_ENOMEM, "metrics_auc: out of memory for %zu rows", n);
    /* Walk groups of tied p upward; a positive beats every negative strictly
     * below its group and half-beats the negatives tied with it. */
    double neg_below = 0.0, wins = 0.0, wpos = 0.0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        double gpos = 0.0, gneg = 0.0;
        while (j < n && s[j].p == s[i].p) {
            if (s[j].y)
                gpos += s[j].w;
            else
                gneg += s[j].w;
            j++;
        }
        wins += gpos * (neg_below + 0.5 * gneg);
        neg_below += gneg;
        wpos += gpos;
        i = j;
    }
    free(s);
    if (!(wpos > 0.0) || !(neg_below > 0.0))
        return rfm_fail(err, errlen, RFM_EDATA,
                        "metrics_auc: needs both classes with positive weight (positive weight "
                        "%g, negative weight %g)",
                        wpos, neg_below);
    double auc = wins / (wpos * neg_below);
    *out = auc > 1.0 ? 1.0 : auc; /* rounding must not report more than perfect */
    return RFM_OK;
}

rfm_status metrics_logloss(const double *p, const int *y, const double *w, size_t n, double *out,
                           char *err, size_t errlen)
{
    double wsum;
    rfm_status st = check_inputs(p, y, w, n, &wsum, err, errlen);
    if (st != RFM_OK)
        return st;
    const double lo = METRICS_LOGLOSS_EPS, hi = 1.0 - METRICS_LOGLOSS_EPS;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double q = p[i] < lo ? lo : (p[i] > hi ? hi : p[i]);
        /* log1p(-q) keeps precision for small q where 1 - q would round. */
        double l = y[i] ? -log(q) : -log1p(-q);
        s += (w ? w[i] : 1.0) * l;
    }
    *out = s / wsum;
    return RFM_OK;
}

rfm_status metrics_brier(const double *p, const int *y, const double *w, size_t n, double *out,
                         char *err, size_t errlen)
{
    double wsum;
    rfm_status st = check_inputs(p, y, w, n, &wsum, err, errlen);
    if (st != RFM_OK)
        return st;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = p[i] - (double)y[i];
        s += (w ? w[i] : 1.0) * d * d;
    }
    *out = s / wsum;
    return RFM_OK;
}

/* numpy.percentile(x, 100 q) with the default "linear" method on sorted x. */
static double percentile_sorted(const scored *s, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    if (lo >= n - 1)
        return s[n - 1].p;
    double frac = h - (double)lo;
    return s[lo].p + frac * (s[lo + 1].p - s[lo].p);
}

rfm_status metrics_calibration(const double *p, const int *y, const double *w, size_t n,
                               size_t nbins, metrics_calib_bin *bins, size_t *nout, char *err,
                               size_t errlen)
{
    double wsum;
    rfm_status st = check_inputs(p, y, w, n, &wsum, err, errlen);
    if (st != RFM_OK)
        return st;
    if (nbins < 1 || nbins > 1000)
        return rfm_fail(err, errlen, RFM_EINVAL, "metrics_calibration: nbins = %zu not in 1..1000",
                        nbins);
    if (!bins || !nout)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "metrics_calibration: bins and nout must not be NULL");
    scored *s = sorted_copy(p, y, w, n);
    double *edge = malloc((nbins + 1) * sizeof *edge);
    if (!s || !edge) {
        free(s);
        free(edge);
        return rfm_fail(err, errlen, RFM_ENOMEM, "metrics_calibration: out of memory");
    }
    for (size_t k = 0; k <= nbins; k++)
        edge[k] = percentile_sorted(s, n, (double)k / (double)nbins);
    /* Rows are sorted, so the bin index only rises: one merge-like pass. */
    size_t out = 0, b = 0, i = 0;
    while (i < n) {
        while (b < nbins - 1 && edge[b + 1] < s[i].p)
            b++;
        metrics_calib_bin cb = {edge[b], edge[b + 1], 0, 0.0, 0.0, 0.0};
        double sp = 0.0, sy = 0.0;
        while (i < n && (b == nbins - 1 || s[i].p <= edge[b + 1])) {
            cb.count++;
            cb.weight += s[i].w;
            sp += s[i].w * s[i].p;
            sy += s[i].w * (double)s[i].y;
            i++;
        }
        /* A bin whose rows all weigh zero has no defined rate: drop it like an
         * empty one rather than report 0/0. */
        if (cb.weight > 0.0) {
            cb.mean_predicted = sp / cb.weight;
            cb.observed_rate = sy / cb.weight;
            bins[out++] = cb;
        }
        b++;
    }
    free(s);
    free(edge);
    *nout = out;
    return RFM_OK;
}

/* Weights of the positives and negatives in s (for the rates' denominators). */
static void class_weights(const scored *s, size_t n, double *wpos, double *wneg)
{
    double a = 0.0, b = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].y)
            a += s[i].w;
        else
            b += s[i].w;
    }
    *wpos = a, *wneg = b;
}

rfm_status metrics_roc(const double *p, const int *y, const double *w, size_t n, size_t max_points,
                       metrics_roc_point *pts, size_t *npts, char *err, size_t errlen)
{
    double wsum;
    rfm_status st = check_inputs(p, y, w, n, &wsum, err, errlen);
    if (st != RFM_OK)
        return st;
    if (max_points < 3 || !pts || !npts)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "metrics_roc: needs room for at least 3 points (max_points = %zu)",
                        max_points);
    scored *s = sorted_copy(p, y, w, n);
    if (!s)
        return rfm_fail(err, errlen, RFM_ENOMEM, "metrics_roc: out of memory for %zu rows", n);
    double wpos, wneg;
    class_weights(s, n, &wpos, &wneg);
    if (!(wpos > 0.0) || !(wneg > 0.0)) {
        free(s);
        return rfm_fail(err, errlen, RFM_EDATA,
                        "metrics_roc: needs both classes with positive weight (positive weight "
                        "%g, negative weight %g)",
                        wpos, wneg);
    }
    /* Distinct scores: when they fit, every point is kept. */
    size_t groups = 0;
    for (size_t i = 0; i < n; i++)
        groups += i == 0 || s[i].p != s[i - 1].p;
    const double step = groups + 1 <= max_points ? 0.0 : 2.0 / (double)(max_points - 2);
    size_t k = 0;
    pts[k++] = (metrics_roc_point){0.0, 0.0};
    double tp = 0.0, fp = 0.0;
    size_t i = n;
    while (i > 0) { /* groups of tied scores, from the highest down */
        size_t j = i;
        while (j > 0 && s[j - 1].p == s[i - 1].p) {
            j--;
            if (s[j].y)
                tp += s[j].w;
            else
                fp += s[j].w;
        }
        i = j;
        metrics_roc_point q = {j == 0 ? 1.0 : fp / wneg, j == 0 ? 1.0 : tp / wpos};
        const metrics_roc_point *last = &pts[k - 1];
        if (j == 0 || (q.fpr - last->fpr) + (q.tpr - last->tpr) >= step)
            pts[k++] = q;
    }
    free(s);
    *npts = k;
    return RFM_OK;
}

rfm_status metrics_gains(const double *p, const int *y, const double *w, size_t n, size_t nbins,
                         metrics_gains_bin *bins, char *err, size_t errlen)
{
    double wsum;
    rfm_status st = check_inputs(p, y, w, n, &wsum, err, errlen);
    if (st != RFM_OK)
        return st;
    if (nbins < 1 || nbins > 1000 || !bins)
        return rfm_fail(err, errlen, RFM_EINVAL, "metrics_gains: nbins = %zu not in 1..1000",
                        nbins);
    scored *s = sorted_copy(p, y, w, n);
    if (!s)
        return rfm_fail(err, errlen, RFM_ENOMEM, "metrics_gains: out of memory for %zu rows", n);
    double wpos, wneg;
    class_weights(s, n, &wpos, &wneg);
    if (!(wpos > 0.0)) {
        free(s);
        return rfm_fail(err, errlen, RFM_EDATA, "metrics_gains: no positive weight");
    }
    /* Walk groups of ties from the highest score; the cumulative positive
     * weight is linear in the cumulative weight within a group. */
    double cw = 0.0, cpos = 0.0, prev_gain = 0.0;
    size_t i = n, k = 1;
    while (k <= nbins) {
        double target = wsum * (double)k / (double)nbins;
        double gw = 0.0, gpos = 0.0;
        size_t j = i;
        while (j > 0 && s[j - 1].p == s[i - 1].p) {
            j--;
            gw += s[j].w;
            gpos += s[j].y ? s[j].w : 0.0;
        }
        /* Each share that falls within this group (or at its end). */
        while (k <= nbins && (j == 0 || target <= cw + gw)) {
            double frac = gw > 0.0 ? (target - cw) / gw : 1.0;
            frac = frac < 0.0 ? 0.0 : (frac > 1.0 || k == nbins ? 1.0 : frac);
            double gain = k == nbins ? 1.0 : (cpos + frac * gpos) / wpos;
            double share = (double)k / (double)nbins;
            bins[k - 1] = (metrics_gains_bin){share, gain, gain / share,
                                              (gain - prev_gain) * wpos / (wsum / (double)nbins)};
            prev_gain = gain;
            k++;
            target = wsum * (double)k / (double)nbins;
        }
        cw += gw, cpos += gpos;
        i = j;
    }
    free(s);
    return RFM_OK;
}

rfm_status metrics_evaluation_json(const double *p, const int *y, size_t n, json_t **out, char *err,
                                   size_t errlen)
{
    *out = NULL;
    metrics_roc_point roc[METRICS_EVAL_ROC_POINTS];
    metrics_calib_bin cal[METRICS_EVAL_BINS];
    metrics_gains_bin gains[METRICS_EVAL_BINS];
    size_t nroc, ncal, npos = 0;
    double auc, ll, brier;
    rfm_status st;
    if ((st = metrics_auc(p, y, NULL, n, &auc, err, errlen)) ||
        (st = metrics_logloss(p, y, NULL, n, &ll, err, errlen)) ||
        (st = metrics_brier(p, y, NULL, n, &brier, err, errlen)) ||
        (st = metrics_roc(p, y, NULL, n, METRICS_EVAL_ROC_POINTS, roc, &nroc, err, errlen)) ||
        (st = metrics_calibration(p, y, NULL, n, METRICS_EVAL_BINS, cal, &ncal, err, errlen)) ||
        (st = metrics_gains(p, y, NULL, n, METRICS_EVAL_BINS, gains, err, errlen)))
        return st;
    for (size_t i = 0; i < n; i++)
        npos += y[i] == 1;
    json_t *jr = json_array(), *jc = json_array(), *jg = json_array();
    int bad = !jr || !jc || !jg;
    for (size_t i = 0; !bad && i < nroc; i++)
        bad = json_array_append_new(jr, json_pack("[f,f]", roc[i].fpr, roc[i].tpr)) != 0;
    for (size_t i = 0; !bad && i < ncal; i++)
        bad =
            json_array_append_new(jc, json_pack("{s:I,s:f,s:f}", "count", (json_int_t)cal[i].count,
                                                "mean_predicted", cal[i].mean_predicted,
                                                "observed_rate", cal[i].observed_rate)) != 0;
    for (size_t i = 0; !bad && i < METRICS_EVAL_BINS; i++)
        bad = json_array_append_new(jg, json_pack("{s:f,s:f,s:f,s:f}", "share", gains[i].share,
                                                  "gain", gains[i].gain, "lift", gains[i].lift,
                                                  "rate", gains[i].rate)) != 0;
    json_t *j = bad ? NULL
                    : json_pack("{s:I,s:I,s:f,s:f,s:f,s:O,s:O,s:O}", "customers", (json_int_t)n,
                                "positives", (json_int_t)npos, "auc", auc, "log_loss", ll, "brier",
                                brier, "roc", jr, "calibration", jc, "gains", jg);
    json_decref(jr), json_decref(jc), json_decref(jg);
    if (!j)
        return rfm_fail(err, errlen, RFM_ENOMEM, "metrics_evaluation_json: out of memory");
    *out = j;
    return RFM_OK;
}
