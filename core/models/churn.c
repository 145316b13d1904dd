/* churn.c - logistic regression by Newton's method, SHAP values, counterfactuals. */
#include "churn.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bgnbd.h"
#include "jsonx.h"
#include "rng.h"
#include "monotime.h"

#include <time.h>

/* Where load errors point: the model file. */
#define WHERE "churn.json"

struct churn_model {
    churn_learner learner;
    boost_model *gbt; /* CHURN_BOOSTED: the trees */
    size_t d;
    char (*name_buf)[CHURN_MAX_NAME + 1];
    const char **names; /* names[j] points into name_buf[j] */
    double *mean, *sd, *w;
    double b, lambda, t_medium, t_high;
    churn_fit_info fit;
    int i_rec, i_freq, i_mon;             /* counterfactual's features, -1 if absent */
    signed char rich[CHURN_MAX_FEATURES]; /* churn_rich_names index of each, -1 if none */
};

void churn_default_params(churn_params *par)
{
    par->lambda = 1.0;
    par->max_iter = 100;
    par->tol = 1e-10;
    par->threshold_medium = 0.3;
    par->threshold_high = 0.6;
    par->cut_days = 90;
    par->test_share = 0.2;
    par->seed = 42;
    par->counterfactual_threshold = 0.6;
    par->max_purchases = 10;
    boost_default_params(&par->boost);
    par->boost.max_depth = 3;
}

const char *churn_learner_name(churn_learner l)
{
    return l == CHURN_BOOSTED ? "boosted" : "logistic";
}

static const char *check_thresholds(double med, double high)
{
    if (!(med > 0.0 && med < 1.0))
        return "threshold_medium must be in (0, 1)";
    if (!(high > 0.0 && high < 1.0))
        return "threshold_high must be in (0, 1)";
    if (!(med <= high))
        return "threshold_medium must be <= threshold_high";
    return NULL;
}

const char *churn_check_params(const churn_params *par)
{
    if (!par)
        return "params must not be NULL";
    if (!(par->lambda >= 0.0 && isfinite(par->lambda)))
        return "lambda must be finite and >= 0";
    if (par->max_iter < 1 || par->max_iter > 10000)
        return "max_iter must be in 1..10000";
    if (!(par->tol > 0.0 && par->tol < 1.0))
        return "tol must be in (0, 1)";
    if (par->cut_days < 7 || par->cut_days > 3650)
        return "cut_days must be an integer from 7 to 3650";
    if (!(par->test_share >= 0.05 && par->test_share <= 0.9))
        return "test_share must be a number from 0.05 to 0.9";
    if (!(par->counterfactual_threshold > 0.0 && par->counterfactual_threshold < 1.0))
        return "counterfactual_threshold must be in (0, 1)";
    if (par->max_purchases < 1 || par->max_purchases > 1000)
        return "max_purchases must be an integer from 1 to 1000";
    const char *why = boost_check_params(&par->boost);
    if (why)
        return why;
    return check_thresholds(par->threshold_medium, par->threshold_high);
}

/* ---- model storage ------------------------------------------------------ */

void churn_free(churn_model *m)
{
    if (!m)
        return;
    free(m->name_buf);
    free(m->names);
    free(m->mean);
    free(m->sd);
    free(m->w);
    boost_free(m->gbt);
    free(m);
}

static churn_model *model_alloc(size_t d)
{
    churn_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->d = d;
    m->name_buf = calloc(d, sizeof *m->name_buf);
    m->names = calloc(d, sizeof *m->names);
    m->mean = calloc(d, sizeof *m->mean);
    m->sd = calloc(d, sizeof *m->sd);
    m->w = calloc(d, sizeof *m->w);
    if (!m->name_buf || !m->names || !m->mean || !m->sd || !m->w) {
        churn_free(m);
        return NULL;
    }
    for (size_t j = 0; j < d; j++)
        m->names[j] = m->name_buf[j];
    m->i_rec = m->i_freq = m->i_mon = -1;
    return m;
}

/* The features a counterfactual moves (frequency and monetary value), as
 * boost's vary: the boosted trees that split on neither are added first,
 * and once a search (boost.h). The same bits at the fit and the load. */
static uint32_t cf_vary(const churn_model *m)
{
    if (m->i_freq < 0 || m->i_freq >= 32 || m->i_mon < 0 || m->i_mon >= 32)
        return 0; /* no counterfactual to speed up: XGBoost's order */
    return 1u << m->i_freq | 1u << m->i_mon;
}

int churn_feature_index(const churn_model *m, const char *name)
{
    for (size_t j = 0; j < m->d; j++)
        if (strcmp(m->names[j], name) == 0)
            return (int)j;
    return -1;
}

/* Names are validated by the caller; cache the counterfactual's indices. */
static void model_set_names(churn_model *m, const char *const *names)
{
    for (size_t j = 0; j < m->d; j++)
        memcpy(m->name_buf[j], names[j], strlen(names[j]) + 1);
    m->i_rec = churn_feature_index(m, "recency");
    m->i_freq = churn_feature_index(m, "frequency");
    m->i_mon = churn_feature_index(m, "monetary");
    /* churn_model_row's map, so scoring compares no names. */
    for (size_t j = 0; j < m->d; j++) {
        m->rich[j] = -1;
        for (int k = 0; k < CHURN_RICH_FEATURES; k++)
            if (strcmp(m->names[j], churn_rich_names[k]) == 0)
                m->rich[j] = (signed char)k;
    }
}

static const char *check_names(const char *const *names, size_t d)
{
    if (!names)
        return "feature names must not be NULL";
    for (size_t j = 0; j < d; j++) {
        if (!names[j] || !names[j][0])
            return "feature names must be non-empty";
        if (strlen(names[j]) > CHURN_MAX_NAME)
            return "a feature name is longer than CHURN_MAX_NAME bytes";
        for (size_t k = 0; k < j; k++)
            if (strcmp(names[j], names[k]) == 0)
                return "feature names must be distinct";
    }
    return NULL;
}

void churn_info_get(const churn_model *m, churn_info *info)
{
    info->learner = m->learner;
    info->boost = m->gbt;
    info->d = m->d;
    info->names = m->names;
    info->mean = m->mean;
    info->sd = m->sd;
    info->weights = m->w;
    info->intercept = m->b;
    info->lambda = m->lambda;
    info->threshold_medium = m->t_medium;
    info->threshold_high = m->t_high;
    info->fit = m->fit;
}

rfm_status churn_set_thresholds(churn_model *m, double threshold_medium, double threshold_high,
                                char *err, size_t errlen)
{
    const char *why = check_thresholds(threshold_medium, threshold_high);
    if (why)
        return rfm_fail(err, errlen, RFM_EINVAL, "churn: %s (got %g, %g)", why, threshold_medium,
                        threshold_high);
    m->t_medium = threshold_medium;
    m->t_high = threshold_high;
    return RFM_OK;
}

/* ---- numerics ------------------------------------------------------------ */

/* Written so exp never overflows: exp of a non-positive argument only. */
static inline double sigmoid(double t)
{
    if (t >= 0.0)
        return 1.0 / (1.0 + exp(-t));
    double e = exp(t);
    return e / (1.0 + e);
}

/* log(1 + e^t) without overflow for large t or loss of precision for small. */
static inline double softplus(double t) { return fmax(t, 0.0) + log1p(exp(-fabs(t))); }

double churn_objective(const double *s, const int *y, size_t n, size_t d, double lambda,
                       const double *theta, double *grad, double *hess)
{
    size_t D = d + 1;
    if (grad)
        memset(grad, 0, D * sizeof *grad);
    if (hess)
        memset(hess, 0, D * D * sizeof *hess);
    double f = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double *si = s + i * d;
        double eta = theta[0];
        for (size_t j = 0; j < d; j++)
            eta += theta[j + 1] * si[j];
        /* -log p = softplus(-eta), -log(1 - p) = softplus(eta) */
        f += y[i] ? softplus(-eta) : softplus(eta);
        if (!grad && !hess)
            continue;
        double p = sigmoid(eta);
        if (grad) {
            double r = p - (double)y[i];
            grad[0] += r;
            for (size_t j = 0; j < d; j++)
                grad[j + 1] += r * si[j];
        }
        if (hess) {
            double v = p * (1.0 - p);
            /* upper triangle of v * [1 s_i][1 s_i]^T; mirrored below */
            hess[0] += v;
            for (size_t j = 0; j < d; j++) {
                hess[j + 1] += v * si[j];
                for (size_t k = j; k < d; k++)
                    hess[(j + 1) * D + k + 1] += v * si[j] * si[k];
            }
        }
    }
    double pen = 0.0;
    for (size_t j = 0; j < d; j++)
        pen += theta[j + 1] * theta[j + 1];
    f += 0.5 * lambda * pen;
    if (grad)
        for (size_t j = 0; j < d; j++)
            grad[j + 1] += lambda * theta[j + 1];
    if (hess) {
        for (size_t j = 1; j < D; j++)
            hess[j * D + j] += lambda;
        for (size_t j = 0; j < D; j++)
            for (size_t k = 0; k < j; k++)
                hess[j * D + k] = hess[k * D + j];
    }
    return f;
}

/* Contribution of feature j in log-odds; predict and explain share it so
 * that their sums agree bit for bit. */
static inline double contribution(const churn_model *m, size_t j, double xj)
{
    return m->w[j] * ((log1p(xj) - m->mean[j]) / m->sd[j]);
}

static rfm_status check_row(const churn_model *m, const double *x, char *err, size_t errlen)
{
    if (!x)
        return rfm_fail(err, errlen, RFM_EINVAL, "churn: features must not be NULL");
    if (m->learner == CHURN_BOOSTED) {
        for (size_t j = 0; j < m->d; j++)
            if (isinf(x[j]))
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "churn: feature '%s' = %g must be finite (or missing)", m->names[j],
                                x[j]);
        return RFM_OK;
    }
    for (size_t j = 0; j < m->d; j++)
        if (!(isfinite(x[j]) && x[j] >= 0.0))
            return rfm_fail(err, errlen, RFM_EINVAL,
                            "churn: feature '%s' = %g must be finite and >= 0", m->names[j], x[j]);
    return RFM_OK;
}

static inline double clamp_eta(double eta)
{
    return fmin(fmax(eta, -CHURN_ETA_CLAMP), CHURN_ETA_CLAMP);
}

/* eta of a validated row; NaN only if contributions of opposite infinite
 * sign met, which the callers turn into an error. */
static double row_eta(const churn_model *m, const double *x, double *contrib)
{
    if (m->learner == CHURN_BOOSTED)
        return contrib ? boost_shap(m->gbt, x, contrib) : boost_margin(m->gbt, x);
    double eta = m->b;
    for (size_t j = 0; j < m->d; j++) {
        double c = contribution(m, j, x[j]);
        if (contrib)
            contrib[j] = c;
        eta += c;
    }
    return eta;
}

static rfm_status eta_not_finite(const churn_model *m, char *err, size_t errlen)
{
    (void)m;
    return rfm_fail(err, errlen, RFM_EINVAL,
                    "churn: features give a log-odds that is not a number (extreme values "
                    "against a near-constant training feature)");
}

rfm_status churn_predict(const churn_model *m, const double *x, double *prob, char *err,
                         size_t errlen)
{
    rfm_status st = check_row(m, x, err, errlen);
    if (st != RFM_OK)
        return st;
    double eta = row_eta(m, x, NULL);
    if (isnan(eta))
        return eta_not_finite(m, err, errlen);
    *prob = sigmoid(clamp_eta(eta));
    return RFM_OK;
}

/* churn_predict_many's rows; j1 >= 0: rows that differ from one another
 * only in features j1 and j2 (boost_margin_along_until for a boosted
 * model). The rows are predicted in order up to the first whose
 * probability is below t_stop (-INFINITY: all of them), possibly a few
 * past it; *done is how many prob holds. */
static rfm_status predict_rows(const churn_model *m, const double *x, size_t n, int j1, int j2,
                               double t_stop, double *prob, size_t *done, char *err, size_t errlen)
{
    /* A boosted model's rows go through the trees in blocks (boost_margin_many:
     * the same margins as one by one); each row is checked first and finished
     * as churn_predict does. A margin at or above eta_stop gives a probability
     * of at least t_stop (the bound leaves room for the rounding of the
     * logarithm and of sigmoid; +INFINITY, every block a stop, where the
     * threshold is too near 0 or 1 for that). */
    enum { BLOCK = 256 };
    double eta_stop = -INFINITY;
    if (t_stop > -INFINITY)
        eta_stop =
            t_stop >= 1e-6 && t_stop <= 1 - 1e-6 ? log(t_stop / (1 - t_stop)) + 1e-6 : INFINITY;
    *done = 0;
    for (size_t at = 0; at < n;) {
        size_t nb = m->learner == CHURN_BOOSTED ? (n - at < BLOCK ? n - at : BLOCK) : 1, ok = 0;
        rfm_status st = RFM_OK;
        while (ok < nb && (st = check_row(m, x + (at + ok) * m->d, err, errlen)) == RFM_OK)
            ok++;
        double eta[BLOCK];
        size_t got = ok;
        if (m->learner == CHURN_BOOSTED && j1 >= 0)
            got = boost_margin_along_until(m->gbt, x + at * m->d, ok, j1, j2, eta_stop, eta);
        else if (m->learner == CHURN_BOOSTED)
            boost_margin_many(m->gbt, x + at * m->d, ok, eta);
        else if (ok)
            eta[0] = row_eta(m, x + at * m->d, NULL);
        int below = 0;
        for (size_t i = 0; i < got; i++) {
            if (isnan(eta[i])) {
                st = eta_not_finite(m, err, errlen);
                ok = i;
                break;
            }
            prob[at + i] = sigmoid(clamp_eta(eta[i]));
            below |= prob[at + i] < t_stop;
        }
        if (st != RFM_OK && ok <= got) {
            char msg[RFM_ERRLEN];
            snprintf(msg, sizeof msg, "%s", err ? err : "");
            return rfm_fail(err, errlen, st, "row %zu: %s", at + ok, msg);
        }
        at += got;
        *done = at;
        if (below)
            break;
    }
    return RFM_OK;
}

rfm_status churn_predict_many(const churn_model *m, const double *x, size_t n, double *prob,
                              char *err, size_t errlen)
{
    if (!x || !prob)
        return rfm_fail(err, errlen, RFM_EINVAL, "churn_predict_many: x and prob must not be NULL");
    size_t done;
    return predict_rows(m, x, n, -1, -1, -INFINITY, prob, &done, err, errlen);
}

rfm_status churn_explain(const churn_model *m, const double *x, double *base_value, double *contrib,
                         double *logit, double *prob, char *err, size_t errlen)
{
    rfm_status st = check_row(m, x, err, errlen);
    if (st != RFM_OK)
        return st;
    if (!base_value || !contrib)
        return rfm_fail(err, errlen, RFM_EINVAL, "churn_explain: outputs must not be NULL");
    double c[CHURN_MAX_FEATURES];
    double eta = row_eta(m, x, c);
    if (isnan(eta))
        return eta_not_finite(m, err, errlen);
    /* mean_train(s_j) is 0 by construction of the standardisation, so the
     * base value of SHAP with the training background is the intercept; the
     * trees' is their cover-weighted mean margin. */
    *base_value = m->learner == CHURN_BOOSTED ? boost_base_value(m->gbt) : m->b;
    memcpy(contrib, c, m->d * sizeof *c);
    if (logit)
        *logit = eta;
    if (prob)
        *prob = sigmoid(clamp_eta(eta));
    return RFM_OK;
}

rfm_status churn_global_importance(const churn_model *m, const double *x, size_t n,
                                   double *importance, char *err, size_t errlen)
{
    if (n == 0 || !x || !importance)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "churn_global_importance: needs n > 0 rows and output space");
    double acc[CHURN_MAX_FEATURES] = {0}, c[CHURN_MAX_FEATURES];
    for (size_t i = 0; i < n; i++) {
        const double *xi = x + i * m->d;
        if (check_row(m, xi, err, errlen) != RFM_OK)
            return rfm_fail(err, errlen, RFM_EINVAL,
                            "churn_global_importance: row %zu has a feature out of range", i);
        row_eta(m, xi, c);
        for (size_t j = 0; j < m->d; j++)
            acc[j] += fabs(c[j]);
    }
    for (size_t j = 0; j < m->d; j++)
        importance[j] = acc[j] / (double)n;
    return RFM_OK;
}

churn_risk churn_risk_level(const churn_model *m, double p)
{
    if (p >= m->t_high)
        return CHURN_RISK_HIGH;
    if (p >= m->t_medium)
        return CHURN_RISK_MEDIUM;
    return CHURN_RISK_LOW;
}

const char *churn_risk_name(churn_risk r)
{
    switch (r) {
    case CHURN_RISK_LOW: return "low";
    case CHURN_RISK_MEDIUM: return "medium";
    case CHURN_RISK_HIGH: return "high";
    }
    return "unknown";
}

/* The arguments of a counterfactual, checked. */
static rfm_status cf_check(const churn_model *m, double t, int n_max,
                           const churn_counterfactual_result *res, char *err, size_t errlen)
{
    if (m->i_rec < 0 || m->i_freq < 0 || m->i_mon < 0)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "churn_counterfactual: the model needs features named recency, "
                        "frequency and monetary");
    if (!(t > 0.0 && t < 1.0))
        return rfm_fail(err, errlen, RFM_EINVAL, "churn_counterfactual: threshold %g not in (0, 1)",
                        t);
    if (n_max < 1 || n_max > 1000)
        return rfm_fail(err, errlen, RFM_EINVAL, "churn_counterfactual: n_max = %d not in 1..1000",
                        n_max);
    if (!res)
        return rfm_fail(err, errlen, RFM_EINVAL, "churn_counterfactual: res must not be NULL");
    return RFM_OK;
}

rfm_status churn_counterfactual(const churn_model *m, const double *x, double t, int n_max,
                                churn_counterfactual_result *res, char *err, size_t errlen)
{
    double p0;
    rfm_status st = cf_check(m, t, n_max, res, err, errlen);
    if (st != RFM_OK || (st = churn_predict(m, x, &p0, err, errlen)) != RFM_OK)
        return st;
    return churn_counterfactual_at(m, x, p0, t, n_max, res, err, errlen);
}

rfm_status churn_counterfactual_at(const churn_model *m, const double *x, double p0, double t,
                                   int n_max, churn_counterfactual_result *res, char *err,
                                   size_t errlen)
{
    rfm_status st = cf_check(m, t, n_max, res, err, errlen);
    if (st != RFM_OK)
        return st;
    churn_counterfactual_result r;
    memset(&r, 0, sizeof r);
    memcpy(r.x_after, x, m->d * sizeof *x);
    r.probability_before = r.probability_after = p0;
    double f = x[m->i_freq], mon = x[m->i_mon];
    r.order_value = mon / fmax(f, 1.0);
    if (p0 < t) {
        r.kind = CHURN_CF_NOT_NEEDED;
        *res = r;
        return RFM_OK;
    }
    /* The candidates n = 1, 2, ... in order, CF_BLOCK at a time, each
     * probability the same bits as churn_predict's. The candidates differ
     * from one another in frequency and monetary value only: a boosted
     * model finds each tree's cell on the other features once for a block,
     * from the first candidate, then takes the block's candidates in one
     * pass of eight (boost_margin_along_until). A block of one pass: the
     * candidates past a stop are neither built nor checked (most customers
     * find one within eight). */
    enum { CF_BLOCK = 8 };
    double xs[CF_BLOCK * CHURN_MAX_FEATURES], ps[CF_BLOCK];
    double best = INFINITY;
    r.kind = CHURN_CF_NONE;
    int stop = 0;
    for (int k0 = 1; k0 <= n_max && !stop && r.kind == CHURN_CF_NONE;) {
        int want = n_max - k0 + 1 < CF_BLOCK ? n_max - k0 + 1 : CF_BLOCK, nb = 0;
        for (; nb < want; nb++) {
            double *xn = xs + (size_t)nb * m->d;
            int k = k0 + nb;
            memcpy(xn, x, m->d * sizeof *x);
            xn[m->i_rec] = 0.0;
            xn[m->i_freq] = f + (double)k;
            xn[m->i_mon] = mon + (double)k * r.order_value;
            /* Spend near DBL_MAX would overflow: such changes are out of bounds. */
            if (!isfinite(xn[m->i_freq]) || !isfinite(xn[m->i_mon])) {
                stop = 1;
                break;
            }
        }
        /* A refused candidate ends the scan there, with churn_predict's
         * message, unless one before it crossed the threshold. */
        size_t done = (size_t)nb;
        int upto = nb, refused = 0;
        if (nb && predict_rows(m, xs, (size_t)nb, m->i_freq, m->i_mon, t, ps, &done, err, errlen) !=
                      RFM_OK) {
            for (upto = 0; upto < nb; upto++)
                if ((st = churn_predict(m, xs + (size_t)upto * m->d, &ps[upto], err, errlen)) !=
                    RFM_OK)
                    break;
            refused = upto < nb;
        } else {
            upto = (int)done;
            if (upto < nb)
                stop = 0; /* the rows past the stop come again in the next block */
        }
        for (int i = 0; i < upto; i++) {
            if (ps[i] < t) {
                r.kind = CHURN_CF_PURCHASES;
                r.n_purchases = k0 + i;
                r.probability_after = ps[i];
                memcpy(r.x_after, xs + (size_t)i * m->d, m->d * sizeof *xs);
                break;
            }
            best = fmin(best, ps[i]);
        }
        if (refused && r.kind == CHURN_CF_NONE)
            return st;
        k0 += upto;
    }
    if (r.kind == CHURN_CF_NONE && isfinite(best))
        r.probability_after = best;
    *res = r;
    return RFM_OK;
}

/* ---- fit ----------------------------------------------------------------- */

static double max_abs(const double *v, size_t n)
{
    double mx = 0.0;
    for (size_t i = 0; i < n; i++)
        mx = fmax(mx, fabs(v[i]));
    return mx;
}

/* With lambda = 0, a theta that puts every customer on its own side of
 * eta = 0 proves the MLE does not exist: scaling it up lowers the loss
 * forever. */
static int separates(const double *s, const int *y, size_t n, size_t d, const double *theta)
{
    for (size_t i = 0; i < n; i++) {
        double eta = theta[0];
        for (size_t j = 0; j < d; j++)
            eta += theta[j + 1] * s[i * d + j];
        if (y[i] ? !(eta > 0.0) : !(eta < 0.0))
            return 0;
    }
    return 1;
}

typedef struct {
    double *s, *theta, *trial, *grad, *hess;
    gsl_matrix *H;
    gsl_vector *g, *step;
} fit_work;

static void work_free(fit_work *wk)
{
    free(wk->s);
    free(wk->theta);
    free(wk->trial);
    free(wk->grad);
    free(wk->hess);
    if (wk->H)
        gsl_matrix_free(wk->H);
    if (wk->g)
        gsl_vector_free(wk->g);
    if (wk->step)
        gsl_vector_free(wk->step);
}

static rfm_status newton(fit_work *wk, const int *y, size_t n, size_t d, const churn_params *par,
                         churn_fit_info *fi, char *err, size_t errlen)
{
    size_t D = d + 1;
    double f = churn_objective(wk->s, y, n, d, par->lambda, wk->theta, wk->grad, wk->hess);
    int it = 0, converged = 0;
    double last = INFINITY;
    while (it < par->max_iter) {
        if (par->lambda == 0.0 && separates(wk->s, y, n, d, wk->theta))
            return rfm_fail(err, errlen, RFM_ENOCONVERGE,
                            "churn_fit: the classes are perfectly separable by the features, so "
                            "the unpenalised fit (lambda = 0) has no finite solution; use "
                            "lambda > 0");
        for (size_t a = 0; a < D; a++) {
            gsl_vector_set(wk->g, a, wk->grad[a]);
            for (size_t c = 0; c < D; c++)
                gsl_matrix_set(wk->H, a, c, wk->hess[a * D + c]);
        }
        int gs = gsl_linalg_cholesky_decomp1(wk->H);
        if (gs != GSL_SUCCESS) {
            if (par->lambda == 0.0)
                return rfm_fail(err, errlen, RFM_ENOCONVERGE,
                                "churn_fit: Hessian not positive definite at iteration %d (%s): "
                                "features collinear or classes (nearly) separable; use "
                                "lambda > 0",
                                it, gsl_strerror(gs));
            return rfm_fail(err, errlen, RFM_ELIBRARY,
                            "churn_fit: Cholesky of the Hessian failed at iteration %d: %s", it,
                            gsl_strerror(gs));
        }
        gs = gsl_linalg_cholesky_solve(wk->H, wk->g, wk->step);
        if (gs != GSL_SUCCESS)
            return rfm_fail(err, errlen, RFM_ELIBRARY,
                            "churn_fit: Cholesky solve failed at iteration %d: %s", it,
                            gsl_strerror(gs));
        /* Damped Newton: halve until F does not rise beyond rounding. Near
         * the optimum the full step is always taken (quadratic convergence). */
        double t = 1.0, ft = 0.0;
        int ok = 0;
        for (int h = 0; h < 40; h++, t *= 0.5) {
            for (size_t a = 0; a < D; a++)
                wk->trial[a] = wk->theta[a] - t * gsl_vector_get(wk->step, a);
            ft = churn_objective(wk->s, y, n, d, par->lambda, wk->trial, NULL, NULL);
            if (ft <= f + 1e-12 * (1.0 + fabs(f))) {
                ok = 1;
                break;
            }
        }
        if (!ok)
            return rfm_fail(err, errlen, RFM_ENOCONVERGE,
                            "churn_fit: line search found no decrease at iteration %d "
                            "(objective %.17g)",
                            it, f);
        last = t * max_abs(wk->step->data, D);
        memcpy(wk->theta, wk->trial, D * sizeof *wk->theta);
        it++;
        f = churn_objective(wk->s, y, n, d, par->lambda, wk->theta, wk->grad, wk->hess);
        if (!isfinite(f))
            return rfm_fail(err, errlen, RFM_ENOCONVERGE,
                            "churn_fit: objective not finite at iteration %d", it);
        if (last <= par->tol) {
            converged = 1;
            break;
        }
    }
    if (!converged)
        return rfm_fail(err, errlen, RFM_ENOCONVERGE,
                        "churn_fit: Newton did not converge in %d iterations (last step %g, "
                        "max |weight| %g)%s",
                        par->max_iter, last, max_abs(wk->theta + 1, d),
                        par->lambda == 0.0 ? "; the classes may be separable: use lambda > 0" : "");
    double pen = 0.0;
    for (size_t j = 0; j < d; j++)
        pen += wk->theta[j + 1] * wk->theta[j + 1];
    fi->iterations = it;
    fi->converged = 1;
    fi->objective = f;
    fi->log_likelihood = -(f - 0.5 * par->lambda * pen);
    fi->grad_max = max_abs(wk->grad, D);
    fi->last_step = last;
    return RFM_OK;
}

rfm_status churn_fit(const double *x, const int *y, size_t n, size_t d, const char *const *names,
                     const churn_params *par, churn_model **out, char *err, size_t errlen)
{
    const char *why = churn_check_params(par);
    if (why)
        return rfm_fail(err, errlen, RFM_EINVAL, "churn_fit: %s", why);
    if (!x || !y || !out)
        return rfm_fail(err, errlen, RFM_EINVAL, "churn_fit: x, y and out must not be NULL");
    if (d < 1 || d > CHURN_MAX_FEATURES)
        return rfm_fail(err, errlen, RFM_EINVAL, "churn_fit: d = %zu not in 1..%d", d,
                        CHURN_MAX_FEATURES);
    if ((why = check_names(names, d)))
        return rfm_fail(err, errlen, RFM_EINVAL, "churn_fit: %s", why);
    if (n < d + 2)
        return rfm_fail(err, errlen, RFM_EDATA, "churn_fit: %zu customers for %zu features", n, d);
    size_t npos = 0;
    for (size_t i = 0; i < n; i++) {
        if (y[i] != 0 && y[i] != 1)
            return rfm_fail(err, errlen, RFM_EINVAL, "churn_fit: label y[%zu] = %d is not 0 or 1",
                            i, y[i]);
        npos += (size_t)y[i];
        for (size_t j = 0; j < d; j++) {
            double v = x[i * d + j];
            if (!(isfinite(v) && v >= 0.0))
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "churn_fit: row %zu feature '%s' = %g must be finite and >= 0", i,
                                names[j], v);
        }
    }
    if (npos == 0 || npos == n)
        return rfm_fail(err, errlen, RFM_EDATA,
                        "churn_fit: all %zu customers have label %d; both classes are needed", n,
                        npos ? 1 : 0);

    size_t D = d + 1;
    churn_model *m = model_alloc(d);
    fit_work wk = {0};
    if (m) {
        wk.s = malloc(n * d * sizeof *wk.s);
        wk.theta = calloc(D, sizeof *wk.theta);
        wk.trial = calloc(D, sizeof *wk.trial);
        wk.grad = calloc(D, sizeof *wk.grad);
        wk.hess = calloc(D * D, sizeof *wk.hess);
        wk.H = gsl_matrix_alloc(D, D);
        wk.g = gsl_vector_alloc(D);
        wk.step = gsl_vector_alloc(D);
    }
    rfm_status st = RFM_OK;
    if (!m || !wk.s || !wk.theta || !wk.trial || !wk.grad || !wk.hess || !wk.H || !wk.g ||
        !wk.step) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "churn_fit: out of memory for %zu x %zu", n, d);
        goto done;
    }
    model_set_names(m, names);

    /* Two passes for mean and sd: one-pass formulas cancel badly when the
     * spread is small next to the mean. */
    for (size_t j = 0; j < d; j++) {
        double mu = 0.0, ss = 0.0;
        for (size_t i = 0; i < n; i++)
            mu += log1p(x[i * d + j]);
        mu /= (double)n;
        for (size_t i = 0; i < n; i++) {
            double z = log1p(x[i * d + j]) - mu;
            ss += z * z;
        }
        double sd = sqrt(ss / (double)n);
        /* Spread at rounding level is no information: treat as constant. */
        if (!(sd > 1e-12 * fmax(1.0, fabs(mu)))) {
            if (par->lambda == 0.0) {
                st = rfm_fail(err, errlen, RFM_EDATA,
                              "churn_fit: feature '%s' is constant in training, so its weight is "
                              "not identified with lambda = 0; drop it or use lambda > 0",
                              names[j]);
                goto done;
            }
            sd = 1.0;
        }
        m->mean[j] = mu;
        m->sd[j] = sd;
        for (size_t i = 0; i < n; i++)
            wk.s[i * d + j] = (log1p(x[i * d + j]) - mu) / sd;
    }

    double ybar = (double)npos / (double)n;
    wk.theta[0] = log(ybar / (1.0 - ybar));
    churn_fit_info fi = {0};
    st = newton(&wk, y, n, d, par, &fi, err, errlen);
    if (st != RFM_OK)
        goto done;
    fi.n = n;
    fi.n_positive = npos;
    m->b = wk.theta[0];
    memcpy(m->w, wk.theta + 1, d * sizeof *m->w);
    m->lambda = par->lambda;
    m->t_medium = par->threshold_medium;
    m->t_high = par->threshold_high;
    m->fit = fi;
    *out = m;
    m = NULL;
done:
    work_free(&wk);
    churn_free(m);
    return st;
}

rfm_status churn_fit_boosted(const double *x, const int *y, size_t n, size_t d,
                             const char *const *names, const churn_params *par, churn_model **out,
                             char *err, size_t errlen)
{
    const char *why = churn_check_params(par);
    if (why)
        return rfm_fail(err, errlen, RFM_EINVAL, "churn_fit_boosted: %s", why);
    if (d < 1 || d > CHURN_MAX_FEATURES || !out)
        return rfm_fail(err, errlen, RFM_EINVAL, "churn_fit_boosted: d = %zu not in 1..%d", d,
                        CHURN_MAX_FEATURES);
    if ((why = check_names(names, d)))
        return rfm_fail(err, errlen, RFM_EINVAL, "churn_fit_boosted: %s", why);
    churn_model *m = model_alloc(d);
    if (!m)
        return rfm_fail(err, errlen, RFM_ENOMEM, "churn_fit_boosted: out of memory");
    model_set_names(m, names);
    rfm_status st = boost_fit(x, y, n, d, &par->boost, cf_vary(m), &m->gbt, err, errlen);
    if (st != RFM_OK) {
        churn_free(m);
        return st;
    }
    m->learner = CHURN_BOOSTED;
    for (size_t j = 0; j < d; j++)
        m->sd[j] = 1.0;
    m->t_medium = par->threshold_medium;
    m->t_high = par->threshold_high;
    m->fit.n = n;
    for (size_t i = 0; i < n; i++)
        m->fit.n_positive += (size_t)y[i];
    m->fit.converged = 1;
    *out = m;
    return RFM_OK;
}

size_t churn_model_row(const churn_model *m, const customer_row *c, double *x)
{
    if (m->learner == CHURN_BOOSTED) {
        double r[CHURN_RICH_FEATURES];
        churn_row_features(c, r);
        /* By name (the map model_set_names made), so a model over any
         * subset of the rich features works. */
        for (size_t j = 0; j < m->d; j++)
            x[j] = m->rich[j] >= 0 ? r[m->rich[j]] : NAN;
        return m->d;
    }
    x[0] = c->recency, x[1] = c->frequency, x[2] = c->monetary;
    return 3;
}

/* ---- JSON ---------------------------------------------------------------- */

static json_t *real_array(const double *v, size_t n)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(a, json_real(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

rfm_status churn_to_json(const churn_model *m, json_t **out, char *err, size_t errlen)
{
    json_t *names = json_array();
    if (names)
        for (size_t j = 0; j < m->d; j++)
            if (json_array_append_new(names, json_string(m->names[j])) != 0) {
                json_decref(names);
                names = NULL;
                break;
            }
    if (m->learner == CHURN_BOOSTED) {
        json_t *bj = NULL;
        rfm_status st = boost_to_json(m->gbt, &bj, err, errlen);
        if (st != RFM_OK) {
            json_decref(names);
            return st;
        }
        json_t *j = json_pack("{s:s, s:i, s:s, s:o, s:f, s:f, s:{s:I, s:I}, s:o}", "format",
                              CHURN_FORMAT, "version", CHURN_VERSION, "learner", "boosted",
                              "features", names, "threshold_medium", m->t_medium, "threshold_high",
                              m->t_high, "fit", "n", (json_int_t)m->fit.n, "n_positive",
                              (json_int_t)m->fit.n_positive, "boost", bj);
        if (!j)
            return rfm_fail(err, errlen, RFM_ENOMEM, "churn_to_json: out of memory");
        *out = j;
        return RFM_OK;
    }
    json_t *fit = json_pack("{s:i, s:b, s:f, s:f, s:f, s:f, s:I, s:I}", "iterations",
                            m->fit.iterations, "converged", m->fit.converged, "log_likelihood",
                            m->fit.log_likelihood, "objective", m->fit.objective, "grad_max",
                            m->fit.grad_max, "last_step", m->fit.last_step, "n",
                            (json_int_t)m->fit.n, "n_positive", (json_int_t)m->fit.n_positive);
    /* "o" steals each reference, also when packing fails, and a NULL one
     * makes it fail: one check covers every allocation above. */
    json_t *j = json_pack("{s:s, s:i, s:s, s:s, s:o, s:o, s:o, s:o, s:f, s:f, s:f, s:f, s:o}",
                          "format", CHURN_FORMAT, "version", CHURN_VERSION, "learner", "logistic",
                          "transform", "log1p-standardise", "features", names, "mean",
                          real_array(m->mean, m->d), "sd", real_array(m->sd, m->d), "weights",
                          real_array(m->w, m->d), "intercept", m->b, "lambda", m->lambda,
                          "threshold_medium", m->t_medium, "threshold_high", m->t_high, "fit", fit);
    if (!j) {
        json_decref(j);
        return rfm_fail(err, errlen, RFM_ENOMEM, "churn_to_json: out of memory");
    }
    *out = j;
    return RFM_OK;
}

/* Each of v's d values must be > 0 (the standard deviations). */
static rfm_status check_positive(const double *v, size_t d, const char *what, char *err,
                                 size_t errlen)
{
    for (size_t j = 0; j < d; j++)
        if (!(v[j] > 0.0))
            return rfm_fail(err, errlen, RFM_EFORMAT, "%s[%zu]: must be a positive number", what,
                            j);
    return RFM_OK;
}

static rfm_status names_from_json(const json_t *j, const char **names, size_t *d, char *err,
                                  size_t errlen)
{
    json_t *fa = json_object_get(j, "features");
    if (!json_is_array(fa) || json_array_size(fa) < 1 || json_array_size(fa) > CHURN_MAX_FEATURES)
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "churn model: field 'features' missing or not an array of 1..%d names",
                        CHURN_MAX_FEATURES);
    *d = json_array_size(fa);
    for (size_t k = 0; k < *d; k++) {
        names[k] = json_string_value(json_array_get(fa, k));
        if (!names[k])
            return rfm_fail(err, errlen, RFM_EFORMAT,
                            "churn model: field 'features[%zu]' is not a string", k);
    }
    const char *why = check_names(names, *d);
    if (why)
        return rfm_fail(err, errlen, RFM_EFORMAT, "churn model: field 'features': %s", why);
    return RFM_OK;
}

static rfm_status boosted_from_json(const json_t *j, churn_model **out, char *err, size_t errlen)
{
    const char *names[CHURN_MAX_FEATURES];
    size_t d;
    rfm_status st = names_from_json(j, names, &d, err, errlen);
    if (st != RFM_OK)
        return st;
    churn_model *m = model_alloc(d);
    if (!m)
        return rfm_fail(err, errlen, RFM_ENOMEM, "churn_from_json: out of memory");
    model_set_names(m, names);
    m->learner = CHURN_BOOSTED;
    const char *why;
    const json_t *fit, *bj;
    long long nn = 0, np = 0;
    if ((st = jsonx_number(j, "threshold_medium", WHERE, &m->t_medium, err, errlen)) ||
        (st = jsonx_number(j, "threshold_high", WHERE, &m->t_high, err, errlen)))
        goto fail;
    if ((why = check_thresholds(m->t_medium, m->t_high))) {
        st = rfm_fail(err, errlen, RFM_EFORMAT, "churn model: %s", why);
        goto fail;
    }
    if ((st = jsonx_object(j, "fit", WHERE, &fit, err, errlen)) ||
        (st = jsonx_int_in(fit, "n", WHERE ".fit", 0, LLONG_MAX, &nn, err, errlen)) ||
        (st = jsonx_int_in(fit, "n_positive", WHERE ".fit", 0, nn, &np, err, errlen)) ||
        (st = jsonx_object(j, "boost", WHERE, &bj, err, errlen)) ||
        (st = boost_from_json(bj, d, cf_vary(m), WHERE ".boost", &m->gbt, err, errlen)))
        goto fail;
    for (size_t k = 0; k < d; k++)
        m->sd[k] = 1.0;
    m->fit.n = (size_t)nn, m->fit.n_positive = (size_t)np, m->fit.converged = 1;
    *out = m;
    return RFM_OK;
fail:
    churn_free(m);
    return st;
}

rfm_status churn_from_json(const json_t *j, churn_model **out, char *err, size_t errlen)
{
    if (!j || !json_is_object(j) || !out)
        return rfm_fail(err, errlen, RFM_EFORMAT, "churn model: not a JSON object");
    const char *fmt = json_string_value(json_object_get(j, "format"));
    json_t *ver = json_object_get(j, "version");
    if (!fmt || strcmp(fmt, CHURN_FORMAT) != 0 || !json_is_integer(ver) ||
        (json_integer_value(ver) != CHURN_VERSION && json_integer_value(ver) != 1))
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "churn model: field 'format'/'version' is not %s version 1 or %d; "
                        "regenerate it with rfm-train --only churn",
                        CHURN_FORMAT, CHURN_VERSION);
    const char *learner = json_string_value(json_object_get(j, "learner"));
    if (json_integer_value(ver) == 1)
        learner = "logistic"; /* version 1 had only the logistic model */
    if (!learner || (strcmp(learner, "logistic") != 0 && strcmp(learner, "boosted") != 0))
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "churn model: field 'learner' must be \"logistic\" or \"boosted\"");
    if (strcmp(learner, "boosted") == 0)
        return boosted_from_json(j, out, err, errlen);
    const char *tr = json_string_value(json_object_get(j, "transform"));
    if (!tr || strcmp(tr, "log1p-standardise") != 0)
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "churn model: field 'transform' must be \"log1p-standardise\"");
    size_t d;
    const char *names[CHURN_MAX_FEATURES], *why;
    rfm_status st0 = names_from_json(j, names, &d, err, errlen);
    if (st0 != RFM_OK)
        return st0;

    churn_model *m = model_alloc(d);
    if (!m)
        return rfm_fail(err, errlen, RFM_ENOMEM, "churn_from_json: out of memory");
    model_set_names(m, names);
    rfm_status st;
    const json_t *fit;
    long long it = 0, nn = 0, np = 0;
    if ((st = jsonx_numbers(j, "mean", WHERE, m->mean, d, err, errlen)) ||
        (st = jsonx_numbers(j, "sd", WHERE, m->sd, d, err, errlen)) ||
        (st = check_positive(m->sd, d, WHERE ".sd", err, errlen)) ||
        (st = jsonx_numbers(j, "weights", WHERE, m->w, d, err, errlen)) ||
        (st = jsonx_number(j, "intercept", WHERE, &m->b, err, errlen)) ||
        (st = jsonx_number(j, "lambda", WHERE, &m->lambda, err, errlen)) ||
        (st = jsonx_number(j, "threshold_medium", WHERE, &m->t_medium, err, errlen)) ||
        (st = jsonx_number(j, "threshold_high", WHERE, &m->t_high, err, errlen)))
        goto fail;
    if (!(m->lambda >= 0.0)) {
        st = rfm_fail(err, errlen, RFM_EFORMAT, "churn model: field 'lambda' must be >= 0");
        goto fail;
    }
    if ((why = check_thresholds(m->t_medium, m->t_high))) {
        st = rfm_fail(err, errlen, RFM_EFORMAT, "churn model: %s", why);
        goto fail;
    }
    if ((st = jsonx_object(j, "fit", WHERE, &fit, err, errlen)))
        goto fail;
    json_t *conv = json_object_get(fit, "converged");
    if (!json_is_boolean(conv)) {
        st = rfm_fail(err, errlen, RFM_EFORMAT, WHERE ".fit.converged: missing or not a boolean");
        goto fail;
    }
    if ((st = jsonx_int_in(fit, "iterations", WHERE ".fit", 0, 10000, &it, err, errlen)) ||
        (st = jsonx_int_in(fit, "n", WHERE ".fit", 0, LLONG_MAX, &nn, err, errlen)) ||
        (st = jsonx_int_in(fit, "n_positive", WHERE ".fit", 0, nn, &np, err, errlen)) ||
        (st = jsonx_number(fit, "log_likelihood", WHERE ".fit", &m->fit.log_likelihood, err,
                           errlen)) ||
        (st = jsonx_number(fit, "objective", WHERE ".fit", &m->fit.objective, err, errlen)) ||
        (st = jsonx_number(fit, "grad_max", WHERE ".fit", &m->fit.grad_max, err, errlen)) ||
        (st = jsonx_number(fit, "last_step", WHERE ".fit", &m->fit.last_step, err, errlen)))
        goto fail;
    m->fit.converged = json_is_true(conv);
    m->fit.iterations = (int)it;
    m->fit.n = (size_t)nn;
    m->fit.n_positive = (size_t)np;
    *out = m;
    return RFM_OK;
fail:
    churn_free(m);
    return st;
}

/* ---- the boosted learner's features -------------------------------------- */

const char *const churn_rich_names[CHURN_RICH_FEATURES] = {
    "recency", "frequency", "monetary", "tenure", "aov", "ipt_mean", "ipt_trend", "spend_trend"};

/* Per customer, over purchase days before the as-of day: the last two days,
 * the last day's spend and the sum of all days' spends. */
typedef struct {
    int32_t asof;
    int32_t *last, *prev;
    double *last_spend, *sum_spend;
} days_acc;

static int acc_day(void *user, size_t cust, int32_t day, double spend)
{
    days_acc *a = user;
    if (day >= a->asof)
        return 0;
    a->sum_spend[cust] += spend;
    if (day > a->last[cust]) {
        a->prev[cust] = a->last[cust];
        a->last[cust] = day;
        a->last_spend[cust] = spend;
    } else if (day > a->prev[cust]) {
        a->prev[cust] = day;
    }
    return 0;
}

static int acc_invoice(void *user, size_t cust, uint64_t h, int32_t day)
{
    (void)user, (void)cust, (void)h, (void)day;
    return 0;
}

void churn_features_asof(const txn_data *d, int32_t asof, double *x)
{
    size_t nc = txn_ncustomers(d);
    txn_features *f = calloc(nc ? nc : 1, sizeof *f);
    int32_t *last = malloc((nc ? nc : 1) * sizeof *last),
            *prev = malloc((nc ? nc : 1) * sizeof *prev);
    double *ls = calloc(nc ? nc : 1, sizeof *ls), *ss = calloc(nc ? nc : 1, sizeof *ss);
    if (!f || !last || !prev || !ls || !ss) {
        for (size_t i = 0; i < nc * CHURN_RICH_FEATURES; i++)
            x[i] = NAN;
        goto out;
    }
    for (size_t i = 0; i < nc; i++)
        last[i] = prev[i] = INT32_MIN;
    txn_features_asof(d, asof, f);
    days_acc a = {asof, last, prev, ls, ss};
    txn_each_purchase(d, acc_day, acc_invoice, &a);
    for (size_t i = 0; i < nc; i++) {
        double *r = x + i * CHURN_RICH_FEATURES;
        if (!f[i].active) {
            for (int j = 0; j < CHURN_RICH_FEATURES; j++)
                r[j] = NAN;
            continue;
        }
        double k = f[i].bg_x + 1; /* purchase days */
        r[0] = f[i].recency, r[1] = f[i].frequency, r[2] = f[i].monetary;
        r[3] = f[i].tenure, r[4] = f[i].aov;
        r[5] = k >= 2 ? f[i].bg_t_x / (k - 1) : NAN;
        r[6] = k >= 3 ? (double)(last[i] - prev[i]) -
                            (f[i].bg_t_x - (double)(last[i] - prev[i])) / (k - 2)
                      : NAN;
        r[7] = k >= 2 ? ls[i] - (ss[i] - ls[i]) / (k - 1) : NAN;
    }
out:
    free(f), free(last), free(prev), free(ls), free(ss);
}

void churn_row_features(const customer_row *c, double *x)
{
    x[0] = c->recency, x[1] = c->frequency, x[2] = c->monetary;
    x[3] = c->days_since_first + 1;
    x[4] = c->frequency > 0 ? c->monetary / c->frequency : NAN;
    x[5] = c->repeat_purchases > 0 ? c->days_first_to_last / c->repeat_purchases : NAN;
    x[6] = c->ipt_trend;
    x[7] = c->spend_trend;
}

rfm_status churn_time_split(const txn_data *d, int cut_days, double test_share, uint64_t seed,
                            churn_split *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!(test_share >= 0 && test_share < 1))
        return rfm_fail(err, errlen, RFM_EINVAL, "churn.test_share %g not in [0, 1)", test_share);
    int32_t cut = txn_snapshot_day(d) - cut_days;
    if (cut <= txn_first_day(d))
        return rfm_fail(err, errlen, RFM_EDATA,
                        "churn.cut_days %d leaves no purchase history before the cut", cut_days);
    size_t nc = txn_ncustomers(d), n = 0;
    txn_features *f = calloc(nc ? nc : 1, sizeof *f);
    out->x = malloc((nc ? nc : 1) * 3 * sizeof *out->x);
    out->bg = malloc((nc ? nc : 1) * 3 * sizeof *out->bg);
    out->y = malloc((nc ? nc : 1) * sizeof *out->y);
    out->order = malloc((nc ? nc : 1) * sizeof *out->order);
    out->xr = malloc((nc ? nc : 1) * CHURN_RICH_FEATURES * sizeof *out->xr);
    double *xr = malloc((nc ? nc : 1) * CHURN_RICH_FEATURES * sizeof *xr);
    if (!f || !out->x || !out->bg || !out->y || !out->order || !out->xr || !xr) {
        free(f), free(xr);
        churn_split_free(out);
        return rfm_fail(err, errlen, RFM_ENOMEM, "churn: out of memory for the labels");
    }
    /* Label: bought before the cut, nothing on or after it. Features as of the cut. */
    txn_features_asof(d, cut, f);
    churn_features_asof(d, cut, xr);
    for (size_t i = 0; i < nc; i++) {
        if (!f[i].active)
            continue;
        memcpy(out->xr + n * CHURN_RICH_FEATURES, xr + i * CHURN_RICH_FEATURES,
               CHURN_RICH_FEATURES * sizeof *xr);
        double *x = out->x + n * 3, *bg = out->bg + n * 3;
        x[0] = f[i].recency, x[1] = f[i].frequency, x[2] = f[i].monetary;
        bg[0] = f[i].bg_x, bg[1] = f[i].bg_t_x, bg[2] = f[i].bg_T;
        out->y[n] = f[i].future_days == 0;
        out->churned += (size_t)out->y[n];
        n++;
    }
    free(f), free(xr);
    rfm_rng rng;
    rfm_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++)
        out->order[i] = i;
    rfm_rng_shuffle(&rng, out->order, n, n, sizeof *out->order);
    out->cut = cut;
    out->n = n;
    out->n_test = (size_t)llround(test_share * (double)n);
    out->n_train = n - out->n_test;
    return RFM_OK;
}

void churn_split_free(churn_split *s)
{
    free(s->x), free(s->bg), free(s->xr), free(s->y), free(s->order);
    memset(s, 0, sizeof *s);
}

static rfm_status churn_score(const double *p, const int *y, size_t n, churn_scores *s, char *err,
                              size_t errlen)
{
    rfm_status st;
    if ((st = metrics_auc(p, y, NULL, n, &s->auc, err, errlen)) ||
        (st = metrics_logloss(p, y, NULL, n, &s->logloss, err, errlen)) ||
        (st = metrics_brier(p, y, NULL, n, &s->brier, err, errlen)))
        return st;
    return RFM_OK;
}

/* BG/NBD beside the logistic model: fitted on the training customers'
 * histories (train[], rows of bg), 1 - P(alive) for the held-out ones
 * (test[]). Its failures leave *out NaN: it is only a yardstick. */
static void bgnbd_yardstick(const double *bg, const size_t *train, size_t ntr, const size_t *test,
                            size_t nte, const int *yte, double *pbg, churn_scores *out)
{
    double *tx = malloc((ntr ? ntr : 1) * sizeof *tx), *tt = malloc((ntr ? ntr : 1) * sizeof *tt),
           *tT = malloc((ntr ? ntr : 1) * sizeof *tT);
    bgnbd_row *rows = NULL;
    size_t nr;
    bgnbd_fit_result fr;
    char e2[RFM_ERRLEN];
    *out = (churn_scores){NAN, NAN, NAN};
    int ok = tx && tt && tT;
    for (size_t j = 0; ok && j < ntr; j++) {
        size_t i = train[j];
        tx[j] = bg[i * 3], tt[j] = bg[i * 3 + 1], tT[j] = bg[i * 3 + 2];
    }
    ok = ok && bgnbd_compress(tx, tt, tT, ntr, &rows, &nr, e2, sizeof e2) == RFM_OK;
    /* as lifetimes fits it: from its start alone (the served CLTV model
     * takes four; this one is only a yardstick) */
    ok = ok && bgnbd_fit_predicts(bgnbd_fit_starts(rows, nr, 0, 1, &fr, e2, sizeof e2), &fr);
    if (ok) {
        for (size_t k = 0; k < nte; k++) {
            size_t i = test[k];
            double p = 1 - bgnbd_p_alive(&fr.p, bg[i * 3], bg[i * 3 + 1], bg[i * 3 + 2]);
            pbg[k] = fmin(fmax(p, 0), 1);
        }
        churn_score(pbg, yte, nte, out, e2, sizeof e2);
    }
    free(tx), free(tt), free(tT), free(rows);
}

/* The held-out rows of s first in the seeded order, the rest for fitting:
 * xte (n_test x D), yte and xtr (n_train x D), ytr. */
static void split_rows(const churn_split *s, double *xte, int *yte, double *xtr, int *ytr)
{
    enum { D = CHURN_SPLIT_FEATURES };
    for (size_t k = 0; k < s->n; k++) {
        size_t i = s->order[k];
        if (k < s->n_test) {
            memcpy(xte + k * D, s->x + i * D, D * sizeof *xte);
            yte[k] = s->y[i];
        } else {
            memcpy(xtr + (k - s->n_test) * D, s->x + i * D, D * sizeof *xtr);
            ytr[k - s->n_test] = s->y[i];
        }
    }
}

rfm_status churn_evaluate(const churn_split *s, const char *const *names, const churn_params *par,
                          churn_eval *out, char *err, size_t errlen)
{
    enum { D = CHURN_SPLIT_FEATURES };
    size_t n = s->n, nte = s->n_test, ntr = s->n_train, a = n ? n : 1;
    if (nte + ntr != n)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "churn split: %zu held out + %zu for fitting != %zu", nte, ntr, n);
    if (!s->x || !s->xr || !s->y || !s->order)
        return rfm_fail(err, errlen, RFM_EINVAL, "churn split: rows missing (x, xr, y, order)");
    double *xtr = malloc(a * D * sizeof *xtr), *xte = malloc(a * D * sizeof *xte);
    int *ytr = malloc(a * sizeof *ytr), *yte = malloc(a * sizeof *yte);
    double *pte = malloc(a * sizeof *pte), *pbg = malloc(a * sizeof *pbg);
    churn_model *m = NULL, *mb = NULL;
    rfm_status st = RFM_OK;
    double t0 = monotime_s(), t1 = t0;
    if (!xtr || !xte || !ytr || !yte || !pte || !pbg) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    split_rows(s, xte, yte, xtr, ytr);
    if ((st = churn_fit(xtr, ytr, ntr, D, names, par, &m, err, errlen)) || (t1 = monotime_s(), 0) ||
        (st = churn_predict_many(m, xte, nte, pte, err, errlen)) ||
        (st = churn_score(pte, yte, nte, &out->logistic, err, errlen)) ||
        (st = metrics_calibration(pte, yte, NULL, nte, CHURN_CALIB_BINS, out->bins, &out->nbins,
                                  err, errlen)))
        goto out;
    if (out->p_logistic)
        memcpy(out->p_logistic, pte, nte * sizeof *pte);
    if (out->y_test)
        memcpy(out->y_test, yte, nte * sizeof *yte);
    bgnbd_yardstick(s->bg, s->order + nte, ntr, s->order, nte, yte, pbg, &out->bgnbd);
    if ((st = churn_global_importance(m, xtr, ntr, out->importance, err, errlen)))
        goto out;
    out->fit_s_logistic = t1 - t0;
    /* The boosted learner on the same rows' rich features. */
    enum { R = CHURN_RICH_FEATURES };
    double *rtr = malloc(a * R * sizeof *rtr), *rte = malloc(a * R * sizeof *rte);
    if (!rtr || !rte) {
        free(rtr), free(rte);
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < n; k++)
        memcpy(k < nte ? rte + k * R : rtr + (k - nte) * R, s->xr + s->order[k] * R,
               R * sizeof *rtr);
    t0 = monotime_s();
    st = churn_fit_boosted(rtr, ytr, ntr, R, churn_rich_names, par, &mb, err, errlen);
    out->fit_s_boosted = monotime_s() - t0;
    if (st || (st = churn_predict_many(mb, rte, nte, pte, err, errlen)) ||
        (st = churn_score(pte, yte, nte, &out->boosted, err, errlen)) ||
        (st = metrics_calibration(pte, yte, NULL, nte, CHURN_CALIB_BINS, out->bins_boosted,
                                  &out->nbins_boosted, err, errlen)) ||
        (st = churn_global_importance(mb, rtr, ntr, out->importance_boosted, err, errlen))) {
        free(rtr), free(rte);
        goto out;
    }
    free(rtr), free(rte);
    if (out->p_boosted)
        memcpy(out->p_boosted, pte, nte * sizeof *pte);
out:
    churn_free(m);
    churn_free(mb);
    free(xtr), free(xte), free(ytr), free(yte), free(pte), free(pbg);
    return st;
}

churn_learner churn_choose(const churn_eval *ev)
{
    return ev->boosted.auc > ev->logistic.auc ? CHURN_BOOSTED : CHURN_LOGISTIC;
}
