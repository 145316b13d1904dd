/* cltv.h - customer lifetime value: BG/NBD for the number of purchases
 * and Gamma-Gamma for the spend per purchase, with parameter uncertainty.
 *
 * Lifetime value over a horizon of H days, discounted as lifetimes'
 * customer_lifetime_value does with freq "D": the horizon is cut into
 * 30-day periods (the last one shorter when H is not a multiple of 30);
 * the purchases expected in period k, E[Y(t_k)] - E[Y(t_(k-1))] with
 * t_k = min(30 k, H), are valued at the expected spend per purchase and
 * discounted by (1 + d)^(t_k / 30), d being the discount rate per 30
 * days. For H a multiple of 30 this equals lifetimes with time = H / 30
 * months and discount_rate = d.
 *
 * The interval carries the parameters' uncertainty by the delta method on
 * log(value): the gradient of log CLV in the seven log-parameters (central
 * differences, the BG/NBD terms of the moved parameters from the fit's own
 * and their derivatives) against their estimated covariance, exp(log CLV
 * -/+ 1.96 se). Thread safety: a fitted or loaded model is read-only.
 */
#ifndef RFM_CLTV_H
#define RFM_CLTV_H

#include <jansson.h>
#include <stddef.h>

#include "bgnbd.h"
#include "gammagamma.h"
#include "status.h"
#include "txn.h"
#include "versions.h"

typedef struct cltv_model cltv_model;

/* The cltv section of the config: the fit's penalty, the trainer's holdout
 * check and the defaults a model is served with. */
typedef struct {
    double penalizer_coef; /* lifetimes' L2 penalty for both models, 0..1e6; default 0 */
    int holdout_days;      /* rfm-train's calibration/holdout check: the last N days,
                              7..3650; default 90 */
    double horizon_days;   /* default horizon of a prediction, 1..36500; default 365 */
    double discount_rate;  /* default discount per 30 days, 0..0.99; default 0.01 */
} cltv_options;

typedef struct {
    double p_alive;
    double expected_purchases; /* over the horizon */
    double expected_avg_spend; /* per purchase */
    double cltv;
    double lower, upper; /* 95 % interval of cltv */
} cltv_prediction;

void cltv_default_options(cltv_options *o);
/* NULL if o is usable, else a static reason that starts with the field's name. */
const char *cltv_check_options(const cltv_options *o);

/* Reason a history is impossible, naming the API field, or NULL. */
const char *cltv_check(double x, double t_x, double T, double m);

/* Fit both models on n customers (the two fits run on two threads). */
rfm_status cltv_fit(const double *x, const double *t_x, const double *T, const double *m, size_t n,
                    const cltv_options *opt, cltv_model **out, char *err, size_t errlen);
void cltv_free(cltv_model *c);
const bgnbd_fit_result *cltv_bgnbd(const cltv_model *c);
const gg_fit_result *cltv_gg(const cltv_model *c);

/* Score one customer. horizon_days in (0, 36500], discount_rate in
 * [0, 1) per 30 days. RFM_EINVAL naming the field on bad input. Uses 68
 * KiB of stack. */
rfm_status cltv_predict(const cltv_model *c, double x, double t_x, double T, double m,
                        double horizon_days, double discount_rate, cltv_prediction *out, char *err,
                        size_t errlen);

/* Bulk scoring (rfm-score, exports). A prediction costs one BG/NBD term,
 * a 2F1, per 30-day period of the horizon (with its four derivatives for
 * the interval, about twice the work of the value alone), and that term depends on (x, T) alone -
 * not on t_x, the spend or the customer. A cache keeps the terms by (x, T) for one model, horizon
 * and discount rate, so customers with the same repeat purchases and age cost one computation: a
 * million customers of a few years' history have a few thousand (x, T). cltv_predict_cached with a
 * cache gives exactly (bit for bit) what cltv_predict gives: the same
 * function computes both, the terms kept or not.
 *
 * At most max_bytes are kept (about 650 bytes an (x, T) for a year's
 * horizon); a full cache is emptied and fills again (a daemon's as_of
 * moves every T by a day each day), and one too small for a single entry
 * keeps none. interval 0 keeps the
 * point figures' terms alone (one parameter set: about 120 bytes an
 * (x, T), and a miss costs 6 times less), for callers that never ask for
 * the interval (GET /customers/{id}); a prediction with the interval
 * through such a cache is computed without it. Not thread-safe: one cache
 * per thread. cltv_cache_new fails with RFM_EINVAL for a bad horizon or
 * rate, RFM_ENOMEM. */
typedef struct cltv_cache cltv_cache;
rfm_status cltv_cache_new(const cltv_model *c, double horizon_days, double discount_rate,
                          int interval, size_t max_bytes, cltv_cache **out, char *err,
                          size_t errlen);
void cltv_cache_free(cltv_cache *k);
/* Asks the CPU to bring the slot (x, T) would have into its caches, not
 * waiting: for a loop over many customers, called a customer ahead (the
 * synthetic million's 4,646 (x, T) pairs keep 576 bytes each, 2.7 MB in
 * slots spread over the table: more than the core's own caches hold, so
 * each customer's nine lines came from afar). Nothing when k is NULL or
 * empty. */
void cltv_cache_prefetch(const cltv_cache *k, double x, double T);
/* cltv_predict with the terms kept in k (NULL, or a cache for another
 * model, horizon or rate, or a point cache asked for the interval: none
 * kept). interval 0 skips the interval
 * (lower and upper NaN; the other figures unchanged): without a cache only
 * the first parameter set's terms are computed, 8 times fewer 2F1s (a
 * cache computes every set's, to keep them). */
rfm_status cltv_predict_cached(const cltv_model *c, cltv_cache *k, double x, double t_x, double T,
                               double m, double horizon_days, double discount_rate, int interval,
                               cltv_prediction *out, char *err, size_t errlen);
/* The plain version: each value by cltv_value, every term recomputed (8
 * values x periods 2F1s). The reference the tests hold cltv_predict to. */
rfm_status cltv_predict_plain(const cltv_model *c, double x, double t_x, double T, double m,
                              double horizon_days, double discount_rate, cltv_prediction *out,
                              char *err, size_t errlen);
/* The point value alone (used for the interval, and in tests). */
double cltv_value(const bgnbd_params *b, const gg_params *g, double x, double t_x, double T,
                  double m, double horizon_days, double discount_rate);

/* ---- calibration/holdout check and customer summaries -------------------- */

#define CLTV_HOLDOUT_GROUPS 8 /* calibration repeat purchases 0..6 and 7+ */
#define CLTV_TRACK_MAX 60     /* points of the holdout tracked over time */

/* The calibration/holdout check of the lifetime-value models. */
typedef struct {
    int ok, days;     /* ok: the check ran */
    int identified;   /* the calibration fit identified every parameter */
    double penalizer; /* used for the calibration fit (the configured one) */
    char cut[11];
    size_t n[CLTV_HOLDOUT_GROUPS];
    double actual[CLTV_HOLDOUT_GROUPS], predicted[CLTV_HOLDOUT_GROUPS];
    size_t total_n;
    double total_actual, total_predicted, mae, rmse;
    /* Tracked over time: at day track_day[k] after the cut (weekly, or
     * every ceil(days / CLTV_TRACK_MAX) days for long holdouts; the last
     * point is `days`), the purchase days the customers made so far and the
     * sum of their BG/NBD expectations for that span. Cumulative, so the
     * last point equals total_actual and total_predicted. */
    int ntrack;
    int track_day[CLTV_TRACK_MAX];
    double track_actual[CLTV_TRACK_MAX], track_predicted[CLTV_TRACK_MAX];
} cltv_holdout;

/* Calibration/holdout: fit BG/NBD on purchases before the cut (snapshot -
 * holdout_days) with penalizer (the shorter calibration period often leaves
 * a unidentified, a -> 0: the point is used all the same, as
 * bgnbd_fit_predicts allows, and h->identified says so), predict each
 * customer's repeat purchase days after the cut and compare with what
 * happened, in total, by calibration repeat purchases and tracked over time
 * (cumulative at each track_day). *h is zeroed
 * first; h->ok = 1 when the check ran. RFM_OK with h->ok = 0 when the cut
 * leaves no history before it; the fit's status (RFM_EDATA,
 * RFM_ENOCONVERGE, ...) or RFM_ENOMEM with a message otherwise. */
rfm_status cltv_holdout_check(const txn_data *d, int holdout_days, double penalizer,
                              cltv_holdout *h, char *err, size_t errlen);

/* The check as the model file's "evaluation" block (docs/cltv.md), for
 * rfm-report: {"holdout": {"cut", "days", "customers", "actual",
 * "predicted", "mae", "rmse", "identified", "by_repeat_purchases": [{"repeat_purchases"
 * (0..7, 7 meaning 7+), "customers", "actual", "predicted"}], "tracking":
 * [{"day", "actual", "predicted"}]}}, or {"holdout": null} when h->ok is 0.
 * *out is new (caller decrefs); RFM_ENOMEM. */
rfm_status cltv_holdout_json(const cltv_holdout *h, json_t **out, char *err, size_t errlen);

/* A customer summary CSV in lifetimes' convention (customer_id, frequency,
 * recency, T, monetary_value; other columns ignored) into new arrays of *n
 * values each (ids strdup'ed; the caller frees all, also on failure, when
 * they are not NULL), and the file's sha256 in hex into sha (65 bytes).
 * Each row must pass cltv_check. RFM_EINVAL for a missing column, RFM_EPARSE
 * naming file, line and column for a bad value, RFM_EIO, RFM_ENOMEM. */
rfm_status cltv_read_summary(const char *path, char ***ids, double **x, double **tx, double **T,
                             double **m, size_t *n, char *sha, char *err, size_t errlen);

rfm_status cltv_to_json(const cltv_model *c, json_t **out, char *err, size_t errlen);
rfm_status cltv_from_json(const json_t *j, cltv_model **out, char *err, size_t errlen);

#endif
