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

void score_prefetch(const score_models *m, const customer_row *c)
{
    if (m->cltv)
        cltv_cache_prefetch(m->cltv_cache, c->repeat_purchases, c->days_since_first);
}
