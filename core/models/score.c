/* score.c - one customer's scores across the fitted models (score.h). */
#include "score.h"

#include <math.h>
#include <string.h>

rfm_status score_customer(const score_models *m, const customer_row *c, int want, int skip_missing,
                          score_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int have_rfm = !isnan(c->recency) && !isnan(c->frequency) && !isnan(c->monetary);
    rfm_status st;
    if ((want & SCORE_SEGMENTS) && m->segments && (have_rfm || !skip_missing)) {
        if ((st = segments_predict(m->segments, c->recency, c->frequency, c->monetary, &out->seg,
                                   err, errlen)) != RFM_OK)
            return st;
        out->done |= SCORE_SEGMENTS;
    }
    if ((want & SCORE_CLTV) && m->cltv) {
        if ((st = cltv_predict_cached(
                 m->cltv, m->cltv_cache, c->repeat_purchases, c->days_first_to_last,
                 c->days_since_first, c->mean_repeat_spend, m->horizon_days, m->discount_rate,
                 !(want & SCORE_CLTV_POINT), &out->cltv, err, errlen)) != RFM_OK)
            return st;
        out->done |= SCORE_CLTV;
    }
    if ((want & SCORE_CHURN) && m->churn && (have_rfm || !skip_missing)) {
        double x[CHURN_MAX_FEATURES];
        size_t d = churn_model_row(m->churn, c, x);
        if (want & SCORE_CHURN_POINT) {
            out->churn_base = out->churn_logit = NAN;
            st = churn_predict(m->churn, x, &out->churn_probability, err, errlen);
        } else {
            out->churn_d = d;
            st = churn_explain(m->churn, x, &out->churn_base, out->churn_contrib, &out->churn_logit,
                               &out->churn_probability, err, errlen);
        }
        if (st != RFM_OK)
            return st;
        out->risk = churn_risk_level(m->churn, out->churn_probability);
        out->done |= SCORE_CHURN;
    }
    return RFM_OK;
}

rfm_status score_churn_many(const score_models *m, const customer_row *const *rows, size_t n,
                            int skip_missing, double *prob, size_t *bad, char *err, size_t errlen)
{
    enum { BLOCK = 64 };
    *bad = 0;
    churn_info info = {0};
    if (m->churn)
        churn_info_get(m->churn, &info);
    const size_t d = info.d; /* a row's width */
    for (size_t at = 0; at < n; at += BLOCK) {
        size_t nb = n - at < BLOCK ? n - at : BLOCK, k = 0, who[BLOCK];
        double x[BLOCK * CHURN_MAX_FEATURES], p[BLOCK];
        for (size_t i = at; i < at + nb; i++) {
            const customer_row *c = rows[i];
            int have_rfm = !isnan(c->recency) && !isnan(c->frequency) && !isnan(c->monetary);
            prob[i] = NAN;
            if (m->churn && (have_rfm || !skip_missing)) {
                churn_model_row(m->churn, c, x + k * d);
                who[k++] = i;
            }
        }
        /* On a refusal, the block again one by one: the rows before it are
         * written, and the refused one gets its own message. */
        rfm_status st = k ? churn_predict_many(m->churn, x, k, p, err, errlen) : RFM_OK;
        for (size_t r = 0; r < k; r++) {
            rfm_status st1 =
                st == RFM_OK ? RFM_OK : churn_predict(m->churn, x + r * d, &p[r], err, errlen);
            if (st1 != RFM_OK) {
                *bad = who[r];
                return st1;
            }
            prob[who[r]] = p[r];
        }
    }
    return RFM_OK;
}

void score_prefetch(const score_models *m, const customer_row *c)
{
    if (m->cltv)
        cltv_cache_prefetch(m->cltv_cache, c->repeat_purchases, c->days_since_first);
}
