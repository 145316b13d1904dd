/* api.c - model registry and endpoint handlers of rfm-serve. */
#include "api.h"

#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics.h"
#include "ann.h"
#include "bulk.h"
#include "campaign.h"
#include "churn.h"
#include "cltv.h"
#include "customers.h"
#include "fileio.h"
#include "gains.h"
#include "date.h"
#include "erasure.h"
#include "export.h"
#include "jsonout.h"
#include "live.h"
#include "modelfile.h"
#include "score.h"
#include "segments.h"
#include "uplift.h"

struct api {
    long refs;              /* atomic */
    unsigned long long gen; /* this load's number (thread_cltv_cache) */
    json_t *manifest;
    cltv_model *cltv;
    const char *cltv_version;
    double cltv_horizon, cltv_discount; /* defaults stored with the model */
    customers *customers;
    ann_index *ann;
    const char *ann_version;
    int *row_cluster; /* cluster of each index row, -1 when unknown */
    churn_model *churn;
    const char *churn_version;
    /* Each feature's key as /predict_churn's contributions write it
     * (jsonw_key_text), made at load (a model has at most
     * CHURN_MAX_FEATURES). */
    char *churn_key[CHURN_MAX_FEATURES];
    size_t churn_key_len[CHURN_MAX_FEATURES];
    double cf_threshold;
    int cf_max;
    uplift_model *uplift;
    campaign_encoding *enc;
    const char *uplift_version;
    char *uplift_learner;
    int narms;
    segments_model *segments;
    const char *segments_version; /* borrowed from manifest */
    char *clusters_body;          /* GET /clusters/summary, computed once */
    char *analytics_body[6]; /* GET /analytics/{overview,rfm-matrix,cltv-churn,shap-sample,qini,
                                embedding-map}, or NULL (not trained) */
    char *openapi_text;
    size_t openapi_len;
    struct timespec started;
    live *live;         /* the customer-state store, or NULL (not owned) */
    size_t batch_limit; /* events per POST /events */
    /* Another part's readiness (the Kafka consumer's lag): NULL, or why
     * not ready (NULL when ready). */
    const char *(*not_ready)(void *ctx, char *buf, size_t len);
    void *not_ready_ctx;
    const engagement_options *events; /* interaction kinds, engagement edges (not owned) */
    erasure *erased;                  /* the erasure list, or NULL (not owned) */
    int pseudonymous;                 /* ids are pseudonyms (privacy.pseudonymize_ids) */
    gains *gains;                     /* uplift gains by customer (exports), or NULL */
    http_route routes[32];
    size_t nroutes;
};

/* Models this server can serve, in the order /ready lists them. */
static const char *const KNOWN[] = {"segments",   "cltv",   "churn",    "customers",
                                    "embeddings", "uplift", "analytics"};
#define NKNOWN (sizeof KNOWN / sizeof *KNOWN)

static int not_trained(char *msg, size_t len, const char *model)
{
    snprintf(msg, len, "model %s is not trained: run bin/rfm-train (--only %s) and restart", model,
             model);
    return 503;
}

static int h_health(void *user, const json_t *body, json_t **out, char *msg, size_t len)
{
    const api *a = user;
    (void)body, (void)msg, (void)len;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double up = (double)(now.tv_sec - a->started.tv_sec) +
                (double)(now.tv_nsec - a->started.tv_nsec) * 1e-9;
    json_t *models = json_object();
    const char *name;
    json_t *e;
    json_object_foreach(json_object_get(a->manifest, "models"), name, e)
    {
        const char *v = json_string_value(json_object_get(e, "version"));
        json_object_set_new(models, name, json_string(v ? v : ""));
    }
    const char *created = json_string_value(json_object_get(a->manifest, "created_at"));
    *out = json_pack("{s:s,s:o,s:f,s:s}", "status", "ok", "models", models, "uptime_s", up,
                     "models_created_at", created ? created : "");
    if (*out && a->churn) {
        churn_info ci;
        churn_info_get(a->churn, &ci);
        json_object_set_new(*out, "churn_learner", json_string(churn_learner_name(ci.learner)));
    }
    return 200;
}

static int h_ready(void *user, const json_t *body, json_t **out, char *msg, size_t len)
{
    const api *a = user;
    (void)body, (void)msg, (void)len;
    json_t *loaded = json_array(), *missing = json_array();
    const void *have[NKNOWN] = {
        a->segments, a->cltv, a->churn, a->customers, a->ann, a->uplift, a->analytics_body[0]};
    for (size_t i = 0; i < NKNOWN; i++)
        json_array_append_new(have[i] ? loaded : missing, json_string(KNOWN[i]));
    /* Models are loaded before the listener starts: once we answer, we are
     * ready, unless another part (the Kafka consumer, far behind) says not. */
    char why[256];
    const char *reason = a->not_ready ? a->not_ready(a->not_ready_ctx, why, sizeof why) : NULL;
    *out = json_pack("{s:b,s:o,s:o}", "ready", !reason, "models", loaded, "not_trained", missing);
    if (reason && *out)
        json_object_set_new(*out, "reason", json_string(reason));
    return reason ? 503 : 200;
}

/* Today (UTC) as a day number. */
static int32_t today_utc(void) { return (int32_t)(time(NULL) / 86400); }

/* Is id on the erasure list? Erased customers are unknown to every
 * lookup. */
static int erased(const api *a, const char *id)
{
    return a->erased && id && erasure_has_id(a->erased, a->pseudonymous, id, strlen(id));
}

/* The features the by-id calls score: with a store open, the customer's
 * live state at the end of day asof (state_get as of asof + 1, the
 * training convention), else the row of models/customers.csv. 0, or 404
 * (unknown, or no purchase by then) / 503 with msg. sc (may be NULL) gets
 * the live state. */
static int by_id(const api *a, const char *id, int32_t asof, customer_row *row, state_customer *sc,
                 char *msg, size_t len)
{
    if (erased(a, id)) {
        snprintf(msg, len, "unknown customer_id '%s'", id);
        return 404;
    }
    if (a->live) {
        state_customer c;
        char err[256];
        rfm_status s = live_get(a->live, id, asof + 1, &c, err, sizeof err);
        if (s == RFM_ENOTFOUND || (s == RFM_OK && !c.f.active)) {
            if (s == RFM_OK) {
                char day[11];
                date_format(asof, day);
                snprintf(msg, len, "customer_id '%s' has no purchase on or before %s", id, day);
            } else {
                snprintf(msg, len, "unknown customer_id '%s'", id);
            }
            return 404;
        }
        if (s != RFM_OK) {
            snprintf(msg, len, "customer state unavailable: %s", err);
            return 503;
        }
        row->recency = c.f.recency, row->frequency = c.f.frequency, row->monetary = c.f.monetary;
        row->repeat_purchases = c.f.bg_x, row->days_first_to_last = c.f.bg_t_x;
        row->days_since_first = c.f.bg_T, row->mean_repeat_spend = c.f.bg_mean_spend;
        row->ipt_trend = row->spend_trend = NAN; /* the store keeps no trends */
        if (sc)
            *sc = c;
        return 0;
    }
    const customer_row *c = a->customers ? customers_find(a->customers, id) : NULL;
    if (!c) {
        snprintf(msg, len, "unknown customer_id '%s'", id);
        return 404;
    }
    *row = *c;
    return 0;
}

/* A request's row: the RFM figures, or the lifetime-value history, the
 * rest unknown (NaN). */
static customer_row rfm_values(double recency, double frequency, double monetary)
{
    return (customer_row){recency, frequency, monetary, NAN, NAN, NAN, NAN, NAN, NAN};
}

static customer_row history_values(double x, double t_x, double T, double spend)
{
    return (customer_row){NAN, NAN, NAN, x, t_x, T, spend, NAN, NAN};
}

/* The recency, frequency and monetary a scoring request names: its own,
 * or a customer_id's (live state or training table). 0, or the HTTP status
 * of a refusal with msg. *id is the customer_id or NULL. */
static int rfm_row(const api *a, const json_t *body, customer_row *row, const char **id, char *msg,
                   size_t len)
{
    *row = rfm_values(json_number_value(json_object_get(body, "recency")),
                      json_number_value(json_object_get(body, "frequency")),
                      json_number_value(json_object_get(body, "monetary")));
    *id = json_string_value(json_object_get(body, "customer_id"));
    if (!*id)
        return 0;
    int st = by_id(a, *id, today_utc(), row, NULL, msg, len);
    if (st)
        return st;
    if (isnan(row->recency)) {
        snprintf(msg, len, "unknown customer_id '%s'", *id);
        return 404;
    }
    return 0;
}

/* The value of the flat body's member name (http_route.flat), NAN when
 * absent or not one of f's names. */
static double flat_get(const oas_flat *f, const double *v, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < f->n; i++)
        if (f->len[i] == n && memcmp(f->name[i], name, n) == 0)
            return v[i];
    return NAN;
}

/* row from a flat {recency, frequency, monetary} body, as rfm_row makes
 * it of the tree; 0 when the body lacks one of them. */
static int flat_rfm_row(const oas_flat *f, const double *v, customer_row *row)
{
    *row = rfm_values(flat_get(f, v, "recency"), flat_get(f, v, "frequency"),
                      flat_get(f, v, "monetary"));
    return !isnan(row->recency) && !isnan(row->frequency) && !isnan(row->monetary);
}

/* The flat body's string member name (oas_str, http_route.flat) into
 * buf as a C string: 1; 0 when absent or not a string of f; -1 when
 * longer than buf holds (the general path then answers). */
static int flat_str_get(const oas_flat *f, const oas_str *str, const char *name, char *buf,
                        size_t cap)
{
    size_t n = strlen(name);
    for (size_t i = 0; str && i < f->n; i++)
        if ((f->string >> i & 1) && f->len[i] == n && memcmp(f->name[i], name, n) == 0) {
            if (!str[i].p)
                return 0;
            if (str[i].n >= cap)
                return -1;
            memcpy(buf, str[i].p, str[i].n);
            buf[str[i].n] = '\0';
            return 1;
        }
    return 0;
}

/* The customer's row for a flat body naming customer_id (as rfm_row
 * for the tree's): 0 with *id set (buf), the status of by_id, or 404. 1
 * when the body names none: the caller reads its values. */
static int flat_id_row(const api *a, const oas_flat *f, const oas_str *str, char *buf, size_t cap,
                       customer_row *row, const char **id, char *msg, size_t len)
{
    *id = NULL;
    if (flat_str_get(f, str, "customer_id", buf, cap) <= 0)
        return 1; /* none (too long: neither does the body hold values) */
    *id = buf;
    *row = rfm_values(NAN, NAN, NAN);
    int st = by_id(a, buf, today_utc(), row, NULL, msg, len);
    if (!st && isnan(row->recency)) {
        snprintf(msg, len, "unknown customer_id '%s'", buf);
        st = 404;
    }
    return st;
}

static int cltv_reply(const api *a, const customer_row *row, const char *id, double H, double d,
                      json_t **out, char *msg, size_t len);
static int cltv_of(const api *a, const customer_row *row, double H, double d, cltv_prediction *p,
                   char *msg, size_t len);
static cltv_cache *thread_cltv_cache(const api *a, int interval);
static int churn_reply(const api *a, const customer_row *row, const char *id, json_t **out,
                       char *msg, size_t len);
static int churn_text(const api *a, const customer_row *row, const char *id, char **text,
                      size_t *tlen, char *msg, size_t len);

/* The segment of row (customer id, when given by one) into *out. */
/* The segments of row into *r: 0, or 422 with msg. */
static int segment_of(const api *a, const customer_row *row, segments_result *r, char *msg,
                      size_t len)
{
    score_models sm = {.segments = a->segments};
    score_result sr;
    if (score_customer(&sm, row, SCORE_SEGMENTS, 0, &sr, msg, len) != RFM_OK)
        return 422;
    *r = sr.seg;
    return 0;
}

static int segment_reply(const api *a, const customer_row *row, const char *id, json_t **out,
                         char *msg, size_t len)
{
    segments_result r;
    int st = segment_of(a, row, &r, msg, len);
    if (st)
        return st;
    /* Built member by member without UTF-8 checks: the texts come from the
     * model file, which jansson checked when it was loaded, and the keys are
     * literals (json_pack checked each again on every request). */
    json_t *o = json_object();
    if (o && (json_object_set_new_nocheck(o, "cluster", json_integer((json_int_t)r.cluster)) ||
              json_object_set_new_nocheck(o, "segment", json_string_nocheck(r.segment)) ||
              json_object_set_new_nocheck(o, "rfm_score", json_string_nocheck(r.rfm_score)) ||
              json_object_set_new_nocheck(o, "rfm_segment", json_string_nocheck(r.rfm_segment)) ||
              json_object_set_new_nocheck(o, "strategy", json_string_nocheck(r.strategy)) ||
              json_object_set_new_nocheck(o, "model_version",
                                          json_string_nocheck(a->segments_version)) ||
              (id && json_object_set_new_nocheck(o, "customer_id", json_string(id))))) {
        json_decref(o);
        o = NULL; /* out of memory: call() answers 503 */
    }
    *out = o;
    return 200;
}

/* A reply made from an RFM row: segment_reply, churn_reply. */
typedef int (*rfm_reply_fn)(const api *a, const customer_row *row, const char *id, json_t **out,
                            char *msg, size_t len);

/* The tree's body (RFM values or a customer_id) answered by reply, when
 * the model named what is loaded (have). */
static int rfm_answer(const api *a, int have, const char *what, rfm_reply_fn reply,
                      const json_t *body, json_t **out, char *msg, size_t len)
{
    if (!have)
        return not_trained(msg, len, what);
    customer_row row;
    const char *id;
    int st = rfm_row(a, body, &row, &id, msg, len);
    return st ? st : reply(a, &row, id, out, msg, len);
}

static int h_segment(void *user, const json_t *body, json_t **out, char *msg, size_t len)
{
    const api *a = user;
    return rfm_answer(a, a->segments != NULL, "segments", segment_reply, body, out, msg, len);
}

/* POST /segment's flat body answered as text (jsonw): the bytes
 * segment_reply's tree dumps to, without the tree. */
static int h_segment_flat(void *user, const oas_flat *f, const double *v, const oas_str *str,
                          json_t **out, char **text, size_t *tlen, char *msg, size_t len)
{
    (void)out;
    const api *a = user;
    if (!a->segments)
        return not_trained(msg, len, "segments");
    customer_row row;
    char idb[1024];
    const char *id;
    int st = flat_id_row(a, f, str, idb, sizeof idb, &row, &id, msg, len);
    if (st > 1)
        return st;
    if ((st == 1 && !flat_rfm_row(f, v, &row)) || !a->segments_version)
        return 0; /* neither SegmentRequest nor SegmentById: the general path */
    segments_result r;
    if ((st = segment_of(a, &row, &r, msg, len)))
        return st;
    /* The members of segment_reply's tree, in its order (test_http's
     * test_flat_body_as_general holds the bytes equal). */
    jsonw w;
    jsonw_init(&w);
    jsonw_obj(&w);
    JSONW_KEY(&w, "cluster");
    jsonw_int(&w, r.cluster);
    JSONW_KEY(&w, "segment");
    jsonw_str(&w, r.segment);
    JSONW_KEY(&w, "rfm_score");
    jsonw_str(&w, r.rfm_score);
    JSONW_KEY(&w, "rfm_segment");
    jsonw_str(&w, r.rfm_segment);
    JSONW_KEY(&w, "strategy");
    jsonw_str(&w, r.strategy);
    JSONW_KEY(&w, "model_version");
    jsonw_str(&w, a->segments_version);
    if (id) {
        JSONW_KEY(&w, "customer_id");
        jsonw_str(&w, id);
    }
    jsonw_end(&w);
    *text = jsonw_finish(&w, tlen);
    return 200; /* NULL text (out of memory): the general path tries */
}

static int h_cltv(void *user, const json_t *body, json_t **out, char *msg, size_t len)
{
    const api *a = user;
    if (!a->cltv)
        return not_trained(msg, len, "cltv");
    customer_row row =
        history_values(json_number_value(json_object_get(body, "repeat_purchases")),
                       json_number_value(json_object_get(body, "days_first_to_last_purchase")),
                       json_number_value(json_object_get(body, "days_since_first_purchase")),
                       json_number_value(json_object_get(body, "mean_repeat_spend")));
    const char *id = json_string_value(json_object_get(body, "customer_id"));
    if (id) {
        int st = by_id(a, id, today_utc(), &row, NULL, msg, len);
        if (st)
            return st;
    }
    const json_t *hv = json_object_get(body, "horizon_days"),
                 *dv = json_object_get(body, "discount_rate");
    double H = hv ? json_number_value(hv) : a->cltv_horizon;
    double d = dv ? json_number_value(dv) : a->cltv_discount;
    return cltv_reply(a, &row, id, H, d, out, msg, len);
}

/* POST /predict_cltv's history or customer_id read from the text
 * (http_route.flat), answered as text: the bytes cltv_reply's tree dumps
 * to. */
static int h_cltv_flat(void *user, const oas_flat *f, const double *v, const oas_str *str,
                       json_t **out, char **text, size_t *tlen, char *msg, size_t len)
{
    (void)out;
    const api *a = user;
    if (!a->cltv)
        return not_trained(msg, len, "cltv");
    char idb[1024];
    const char *id = NULL;
    customer_row row = history_values(
        flat_get(f, v, "repeat_purchases"), flat_get(f, v, "days_first_to_last_purchase"),
        flat_get(f, v, "days_since_first_purchase"), flat_get(f, v, "mean_repeat_spend"));
    int has_id = flat_str_get(f, str, "customer_id", idb, sizeof idb);
    if (has_id < 0)
        return 0;
    if (has_id) {
        int st = by_id(a, idb, today_utc(), &row, NULL, msg, len);
        if (st)
            return st;
        id = idb;
    } else if (isnan(row.repeat_purchases) || isnan(row.days_first_to_last) ||
               isnan(row.days_since_first) || isnan(row.mean_repeat_spend))
        return 0; /* neither CltvHistory nor CltvById: the general path */
    double H = flat_get(f, v, "horizon_days"), d = flat_get(f, v, "discount_rate");
    H = isnan(H) ? a->cltv_horizon : H, d = isnan(d) ? a->cltv_discount : d;
    cltv_prediction p;
    int st = cltv_of(a, &row, H, d, &p, msg, len);
    if (st)
        return st;
    /* The members of cltv_reply's tree, in its order (test_http's
     * test_flat_body_as_general holds the bytes equal); a figure that is
     * no finite number goes the general way. */
    if (!isfinite(p.p_alive) || !isfinite(p.expected_purchases) ||
        !isfinite(p.expected_avg_spend) || !isfinite(p.cltv) || !isfinite(p.lower) ||
        !isfinite(p.upper) || !a->cltv_version)
        return 0;
    jsonw w;
    jsonw_init(&w);
    jsonw_obj(&w);
    JSONW_KEY(&w, "p_alive");
    jsonw_real(&w, p.p_alive);
    JSONW_KEY(&w, "expected_purchases");
    jsonw_real(&w, p.expected_purchases);
    JSONW_KEY(&w, "expected_avg_spend");
    jsonw_real(&w, p.expected_avg_spend);
    JSONW_KEY(&w, "cltv");
    jsonw_real(&w, p.cltv);
    JSONW_KEY(&w, "cltv_interval");
    jsonw_obj(&w);
    JSONW_KEY(&w, "lower");
    jsonw_real(&w, p.lower);
    JSONW_KEY(&w, "upper");
    jsonw_real(&w, p.upper);
    jsonw_end(&w);
    JSONW_KEY(&w, "horizon_days");
    jsonw_real(&w, H);
    JSONW_KEY(&w, "discount_rate");
    jsonw_real(&w, d);
    JSONW_KEY(&w, "time_unit");
    jsonw_str(&w, "days");
    JSONW_KEY(&w, "model_version");
    jsonw_str(&w, a->cltv_version);
    if (id) {
        JSONW_KEY(&w, "customer_id");
        jsonw_str(&w, id);
    }
    jsonw_end(&w);
    *text = jsonw_finish(&w, tlen);
    return 200; /* NULL text (out of memory): the general path tries */
}

/* The lifetime value of row over H days at discount d into *p: 0, or 422
 * with msg. */
static int cltv_of(const api *a, const customer_row *row, double H, double d, cltv_prediction *p,
                   char *msg, size_t len)
{
    /* The terms kept by (x, T) when H and d are the model's (the cache
     * computes without keeping otherwise): the same figures. */
    score_models sm = {.cltv = a->cltv, .horizon_days = H, .discount_rate = d};
    if (H == a->cltv_horizon && d == a->cltv_discount)
        sm.cltv_cache = thread_cltv_cache(a, 1);
    score_result sr;
    if (score_customer(&sm, row, SCORE_CLTV, 0, &sr, msg, len) != RFM_OK)
        return 422;
    *p = sr.cltv;
    return 0;
}

/* The lifetime value of row over H days at discount d into *out. */
static int cltv_reply(const api *a, const customer_row *row, const char *id, double H, double d,
                      json_t **out, char *msg, size_t len)
{
    cltv_prediction p;
    int st = cltv_of(a, row, H, d, &p, msg, len);
    if (st)
        return st;
    *out = json_pack("{s:f,s:f,s:f,s:f,s:{s:f,s:f},s:f,s:f,s:s,s:s}", "p_alive", p.p_alive,
                     "expected_purchases", p.expected_purchases, "expected_avg_spend",
                     p.expected_avg_spend, "cltv", p.cltv, "cltv_interval", "lower", p.lower,
                     "upper", p.upper, "horizon_days", H, "discount_rate", d, "time_unit", "days",
                     "model_version", a->cltv_version ? a->cltv_version : "");
    if (*out && id)
        json_object_set_new(*out, "customer_id", json_string(id));
    return 200;
}

typedef struct {
    const int *row_cluster;
    int want; /* -1: any segment */
    const api *a;
} seg_filter;

/* A neighbour is kept when of the segment asked for (if any) and not
 * erased: the tombstones are consulted on every search. */
static int keep_segment(int64_t row, void *ctx)
{
    const seg_filter *f = ctx;
    if (f->want >= 0 && !(f->row_cluster && f->row_cluster[row] == f->want))
        return 0;
    return !erased(f->a, ann_customer_id(f->a->ann, row));
}

/* The most neighbours one query returns: the size of h_similar's result
 * buffers. The contract says the same (k maximum 100), but the contract is
 * a file the config names, so the buffers check k themselves. */
#define MAX_K 100

/* The cluster of segment name seg into *want (-1 for NULL): 0, or 422. */
static int segment_wanted(const api *a, const char *seg, int *want, char *msg, size_t len)
{
    *want = -1;
    if (!seg)
        return 0;
    *want = a->segments ? (int)segments_find(a->segments, seg) : -1;
    if (*want < 0) {
        snprintf(msg, len, "segment: unknown segment '%s' (see GET /clusters/summary)", seg);
        return 422;
    }
    return 0;
}

/* The neighbours of customer id, or of vector q (n numbers) when id is
 * NULL: k of them, of cluster want when >= 0, into rows and sims (found).
 * 0, or the status with msg. */
static int similar_search(const api *a, const char *id, const float *q, size_t n, int k, int want,
                          int64_t *rows, float *sims, int *found, char *msg, size_t len)
{
    seg_filter flt = {a->row_cluster, want, a};
    /* The filter only when it can drop a row: without it the search
     * takes the unfiltered path. */
    int filter = want >= 0 || (a->erased && erasure_count(a->erased) > 0);
    rfm_status st;
    *found = 0;
    if (id) {
        int64_t row;
        st = erased(a, id) ? RFM_ENOTFOUND : ann_lookup(a->ann, id, &row, msg, len);
        if (st != RFM_OK) {
            snprintf(msg, len, "unknown customer_id '%s'", id);
            return st == RFM_ENOTFOUND ? 404 : 422;
        }
        st = ann_search_row(a->ann, row, k, filter ? keep_segment : NULL, &flt, rows, sims, found,
                            msg, len);
    } else {
        /* ann normalises the query (cosine) and refuses a zero one. */
        st = ann_search_vector(a->ann, q, (int)n, k, filter ? keep_segment : NULL, &flt, rows, sims,
                               found, msg, len);
    }
    if (st == RFM_EDATA || st == RFM_EINVAL)
        return 422;
    if (st != RFM_OK)
        return 503; /* a FAISS failure: reported, the daemon goes on */
    return 0;
}

static int h_similar(void *user, const json_t *body, json_t **out, char *msg, size_t len)
{
    const api *a = user;
    if (!a->ann)
        return not_trained(msg, len, "embeddings");
    const json_t *kv = json_object_get(body, "k");
    double kd = kv ? json_number_value(kv) : 10;
    if (kv && !json_is_integer(kv))
        kd = NAN;
    if (!(kd >= 1 && kd <= MAX_K)) {
        snprintf(msg, len, "k: must be an integer from 1 to %d", MAX_K);
        return 422;
    }
    int k = (int)kd, want;
    int st =
        segment_wanted(a, json_string_value(json_object_get(body, "segment")), &want, msg, len);
    if (st)
        return st;
    int64_t rows[MAX_K];
    float sims[MAX_K];
    int found = 0;
    const char *id = json_string_value(json_object_get(body, "customer_id"));
    if (id) {
        st = similar_search(a, id, NULL, 0, k, want, rows, sims, &found, msg, len);
    } else {
        const json_t *vec = json_object_get(body, "vector");
        size_t n = json_array_size(vec);
        if ((int)n != ann_dim(a->ann) || n > ANN_MAX_DIM) {
            snprintf(msg, len, "vector: must have %d numbers, not %zu", ann_dim(a->ann), n);
            return 422;
        }
        float q[ANN_MAX_DIM]; /* ann_load refuses indexes of a larger dimension */
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(vec, i);
            q[i] = (float)json_number_value(e);
            if (!json_is_number(e) || !isfinite(q[i])) {
                snprintf(msg, len, "vector: item %zu must be a number within float range", i);
                return 422;
            }
        }
        st = similar_search(a, NULL, q, n, k, want, rows, sims, &found, msg, len);
    }
    if (st)
        return st;
    /* Built directly rather than by json_pack: its format parse per
     * neighbour cost more than the search. The keys in the same order; a
     * neighbour without a cluster has "segment": null, as "s?" gave. */
    json_t *list = json_array();
    for (int i = 0; list && i < found; i++) {
        const char *name =
            a->row_cluster ? segments_cluster_name(a->segments, a->row_cluster[rows[i]]) : NULL;
        json_t *o = json_object(), *cid = json_string(ann_customer_id(a->ann, rows[i]));
        if (!o || !cid || json_object_set_new_nocheck(o, "customer_id", cid) ||
            json_object_set_new_nocheck(o, "similarity", json_real((double)sims[i])) ||
            json_object_set_new_nocheck(o, "segment", name ? json_string(name) : json_null())) {
            if (!o)
                json_decref(cid);
            json_decref(o);
            continue; /* as json_pack's NULL was: the neighbour left out */
        }
        json_array_append_new(list, o);
    }
    *out = json_pack("{s:o,s:s}", "neighbors", list, "model_version",
                     a->ann_version ? a->ann_version : "");
    return 200;
}

/* POST /similar_customers's SimilarById read from the text
 * (http_route.flat), answered as text: the bytes h_similar's tree dumps
 * to. */
static int h_similar_flat(void *user, const oas_flat *f, const double *v, const oas_str *str,
                          json_t **out, char **text, size_t *tlen, char *msg, size_t len)
{
    (void)out;
    const api *a = user;
    if (!a->ann)
        return not_trained(msg, len, "embeddings");
    char idb[1024], segb[1024];
    int has_seg = flat_str_get(f, str, "segment", segb, sizeof segb);
    if (flat_str_get(f, str, "customer_id", idb, sizeof idb) <= 0 || has_seg < 0)
        return 0;
    double kd = flat_get(f, v, "k");
    kd = isnan(kd) ? 10 : kd;
    if (!(kd >= 1 && kd <= MAX_K && kd == floor(kd)))
        return 0;
    const char *seg = has_seg ? segb : NULL;
    int64_t rows[MAX_K];
    float sims[MAX_K];
    int found = 0, want;
    int st = segment_wanted(a, seg, &want, msg, len);
    if (st || (st = similar_search(a, idb, NULL, 0, (int)kd, want, rows, sims, &found, msg, len)))
        return st;
    jsonw w;
    jsonw_init(&w);
    jsonw_obj(&w);
    JSONW_KEY(&w, "neighbors");
    jsonw_arr(&w);
    for (int i = 0; i < found; i++) {
        const char *name =
            a->row_cluster ? segments_cluster_name(a->segments, a->row_cluster[rows[i]]) : NULL;
        jsonw_obj(&w);
        JSONW_KEY(&w, "customer_id");
        jsonw_str(&w, ann_customer_id(a->ann, rows[i]));
        JSONW_KEY(&w, "similarity");
        jsonw_real(&w, (double)sims[i]);
        JSONW_KEY(&w, "segment");
        if (name)
            jsonw_str(&w, name);
        else
            jsonw_null(&w);
        jsonw_end(&w);
    }
    jsonw_end(&w);
    JSONW_KEY(&w, "model_version");
    jsonw_str(&w, a->ann_version ? a->ann_version : "");
    jsonw_end(&w);
    *text = jsonw_finish(&w, tlen);
    return 200; /* NULL text (out of memory): the general path tries */
}

static int h_churn(void *user, const json_t *body, json_t **out, char *msg, size_t len)
{
    const api *a = user;
    return rfm_answer(a, a->churn != NULL, "churn", churn_reply, body, out, msg, len);
}

static int h_churn_flat(void *user, const oas_flat *f, const double *v, const oas_str *str,
                        json_t **out, char **text, size_t *tlen, char *msg, size_t len)
{
    (void)out;
    const api *a = user;
    if (!a->churn)
        return not_trained(msg, len, "churn");
    customer_row row;
    char idb[1024];
    const char *id;
    int st = flat_id_row(a, f, str, idb, sizeof idb, &row, &id, msg, len);
    if (st > 1)
        return st;
    return st == 0 || flat_rfm_row(f, v, &row) ? churn_text(a, &row, id, text, tlen, msg, len) : 0;
}

/* The churn answer for row (with its counterfactual) into *out. */
/* What a churn reply says about row. */
typedef struct {
    score_result sr;
    churn_counterfactual_result cf;
    churn_info ci;
} churn_answer;

/* The churn answer for row into *c: 0, or 422 with msg. */
static int churn_of(const api *a, const customer_row *row, churn_answer *c, char *msg, size_t len)
{
    score_models sm = {.churn = a->churn};
    if (score_customer(&sm, row, SCORE_CHURN, 0, &c->sr, msg, len) != RFM_OK)
        return 422;
    double x[CHURN_MAX_FEATURES];
    churn_model_row(a->churn, row, x);
    if (churn_counterfactual_at(a->churn, x, c->sr.churn_probability, a->cf_threshold, a->cf_max,
                                &c->cf, msg, len) != RFM_OK)
        return 422;
    churn_info_get(a->churn, &c->ci);
    return 0;
}

static int churn_reply(const api *a, const customer_row *row, const char *id, json_t **out,
                       char *msg, size_t len)
{
    churn_answer c;
    int st = churn_of(a, row, &c, msg, len);
    if (st)
        return st;
    const churn_counterfactual_result cf = c.cf;
    const double base = c.sr.churn_base, *contrib = c.sr.churn_contrib, p = c.sr.churn_probability;
    json_t *cfj;
    if (cf.kind == CHURN_CF_NOT_NEEDED)
        cfj = json_pack("{s:b,s:f}", "needed", 0, "threshold", a->cf_threshold);
    else if (cf.kind == CHURN_CF_PURCHASES)
        cfj = json_pack("{s:b,s:b,s:s,s:i,s:f,s:f,s:f}", "needed", 1, "found", 1, "action",
                        cf.n_purchases == 1 ? "a purchase now" : "more purchases", "purchases",
                        cf.n_purchases, "order_value", cf.order_value, "probability_after",
                        cf.probability_after, "threshold", a->cf_threshold);
    else
        cfj =
            json_pack("{s:b,s:b,s:i,s:f,s:f}", "needed", 1, "found", 0, "max_purchases", a->cf_max,
                      "lowest_probability", cf.probability_after, "threshold", a->cf_threshold);
    /* One contribution per feature of the served model, by name. */
    json_t *cj = json_object();
    for (size_t j = 0; cj && j < c.sr.churn_d; j++)
        json_object_set_new(cj, c.ci.names[j], json_real(contrib[j]));
    *out = json_pack("{s:f,s:s,s:{s:f,s:o},s:o,s:s}", "churn_probability", p, "risk",
                     churn_risk_name(c.sr.risk), "explanation", "base_value", base, "contributions",
                     cj, "counterfactual", cfj, "model_version",
                     a->churn_version ? a->churn_version : "");
    if (*out && id)
        json_object_set_new(*out, "customer_id", json_string(id));
    return 200;
}

/* churn_reply's bytes written as text (jsonw), without the tree: 200 with
 * *text, or 0 for an answer whose tree would differ from plain numbers
 * (a figure that is no finite number: the general path answers). */
static int churn_text(const api *a, const customer_row *row, const char *id, char **text,
                      size_t *tlen, char *msg, size_t len)
{
    churn_answer c;
    int st = churn_of(a, row, &c, msg, len);
    if (st)
        return st;
    const churn_counterfactual_result *cf = &c.cf;
    int finite = isfinite(c.sr.churn_probability) && isfinite(c.sr.churn_base) &&
                 isfinite(a->cf_threshold) && a->churn_version &&
                 (cf->kind == CHURN_CF_NOT_NEEDED || isfinite(cf->probability_after)) &&
                 (cf->kind != CHURN_CF_PURCHASES || isfinite(cf->order_value));
    for (size_t j = 0; j < c.sr.churn_d; j++)
        finite = finite && isfinite(c.sr.churn_contrib[j]);
    if (!finite)
        return 0;
    /* The members of churn_reply's tree, in its order (test_http's
     * test_flat_body_as_general holds the bytes equal). */
    jsonw w;
    jsonw_init(&w);
    jsonw_obj(&w);
    JSONW_KEY(&w, "churn_probability");
    jsonw_real(&w, c.sr.churn_probability);
    JSONW_KEY(&w, "risk");
    jsonw_str(&w, churn_risk_name(c.sr.risk));
    JSONW_KEY(&w, "explanation");
    jsonw_obj(&w);
    JSONW_KEY(&w, "base_value");
    jsonw_real(&w, c.sr.churn_base);
    JSONW_KEY(&w, "contributions");
    jsonw_obj(&w);
    for (size_t j = 0; j < c.sr.churn_d; j++) {
        jsonw_key_raw(&w, a->churn_key[j], a->churn_key_len[j]);
        jsonw_real(&w, c.sr.churn_contrib[j]);
    }
    jsonw_end(&w);
    jsonw_end(&w);
    JSONW_KEY(&w, "counterfactual");
    jsonw_obj(&w);
    JSONW_KEY(&w, "needed");
    jsonw_bool(&w, cf->kind != CHURN_CF_NOT_NEEDED);
    if (cf->kind == CHURN_CF_PURCHASES) {
        JSONW_KEY(&w, "found");
        jsonw_bool(&w, 1);
        JSONW_KEY(&w, "action");
        jsonw_str(&w, cf->n_purchases == 1 ? "a purchase now" : "more purchases");
        JSONW_KEY(&w, "purchases");
        jsonw_int(&w, cf->n_purchases);
        JSONW_KEY(&w, "order_value");
        jsonw_real(&w, cf->order_value);
        JSONW_KEY(&w, "probability_after");
        jsonw_real(&w, cf->probability_after);
    } else if (cf->kind != CHURN_CF_NOT_NEEDED) {
        JSONW_KEY(&w, "found");
        jsonw_bool(&w, 0);
        JSONW_KEY(&w, "max_purchases");
        jsonw_int(&w, a->cf_max);
        JSONW_KEY(&w, "lowest_probability");
        jsonw_real(&w, cf->probability_after);
    }
    JSONW_KEY(&w, "threshold");
    jsonw_real(&w, a->cf_threshold);
    jsonw_end(&w);
    JSONW_KEY(&w, "model_version");
    jsonw_str(&w, a->churn_version);
    if (id) {
        JSONW_KEY(&w, "customer_id");
        jsonw_str(&w, id);
    }
    jsonw_end(&w);
    *text = jsonw_finish(&w, tlen);
    return 200; /* NULL text (out of memory): the general path tries */
}

static int h_uplift(void *user, const json_t *body, json_t **out, char *msg, size_t len)
{
    const api *a = user;
    if (!a->uplift)
        return not_trained(msg, len, "uplift");
    double x[512], u[64], oc;
    if (campaign_n_columns(a->enc) > 512 || a->narms > 64) {
        snprintf(msg, len, "model too wide for this server");
        return 503;
    }
    if (campaign_encode_json(a->enc, json_object_get(body, "features"), x, msg, len) != RFM_OK)
        return 422;
    if (uplift_predict(a->uplift, x, u, &oc, msg, len) != RFM_OK)
        return 422;
    const json_t *value = json_object_get(body, "value"), *costs = json_object_get(body, "costs");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)costs, key, v)
    {
        int known = 0;
        for (int k = 1; k <= a->narms; k++)
            known |= strcmp(key, campaign_arm_name(a->enc, (size_t)k)) == 0;
        if (!known) {
            snprintf(msg, len, "costs: unknown arm '%s'", key);
            return 422;
        }
    }
    if (costs && !value) {
        snprintf(msg, len, "costs: need the value of one outcome (value) to weigh them");
        return 422;
    }
    double cost[64], g[64], val = json_number_value(value);
    for (int k = 1; k <= a->narms; k++) {
        const json_t *c = json_object_get(costs, campaign_arm_name(a->enc, (size_t)k));
        cost[k - 1] = c ? json_number_value(c) : 0;
    }
    int b = uplift_best_arm(u, a->narms, value ? &val : NULL, cost, g);
    const char *best = b ? campaign_arm_name(a->enc, (size_t)b) : "control";
    json_t *up = json_object(), *gain = value ? json_object() : NULL;
    for (int k = 1; k <= a->narms; k++) {
        const char *arm = campaign_arm_name(a->enc, (size_t)k);
        json_object_set_new(up, arm, json_real(u[k - 1]));
        if (gain)
            json_object_set_new(gain, arm, json_real(g[k - 1]));
    }
    *out = json_pack("{s:o,s:s,s:f,s:s,s:s}", "uplift", up, "best_treatment", best,
                     "outcome_control", oc, "model", a->uplift_learner, "model_version",
                     a->uplift_version ? a->uplift_version : "");
    if (*out && gain)
        json_object_set_new(*out, "expected_net_gain", gain);
    else
        json_decref(gain);
    return 200;
}

/* ---- live state: POST /events, GET /customers/{id} ----------------------- */

static json_t *rejection(size_t i, int code, state_reason r, const char *msg)
{
    return json_pack("{s:I,s:{s:i,s:s,s:s}}", "index", (json_int_t)i, "error", "code", code,
                     "reason", state_reason_name(r), "message", msg);
}

/* The 200 reply of POST /events from each item's outcome. */
static int events_reply(const live_item *res, size_t n, json_t **out)
{
    json_t *rejected = json_array(), *ignored = json_array();
    size_t accepted = 0, dups = 0;
    for (size_t i = 0; rejected && ignored && i < n; i++) {
        if (res[i].outcome == STATE_APPLIED || res[i].outcome == STATE_IGNORED)
            accepted++;
        if (res[i].outcome == STATE_IGNORED)
            json_array_append_new(ignored, json_pack("{s:I,s:s}", "index", (json_int_t)i, "reason",
                                                     state_reason_name(res[i].reason)));
        else if (res[i].outcome == STATE_DUPLICATE)
            dups++;
        else if (res[i].outcome == STATE_REJECTED)
            json_array_append_new(rejected, rejection(i, 422, res[i].reason, res[i].why));
    }
    if (rejected && ignored) /* else *out stays NULL: 503 out of memory */
        *out = json_pack("{s:I,s:I,s:O,s:O}", "accepted", (json_int_t)accepted, "duplicates",
                         (json_int_t)dups, "rejected", rejected, "ignored", ignored);
    json_decref(rejected);
    json_decref(ignored);
    return 200;
}

/* A store failure: nothing of the batch was written. */
static int events_failed(rfm_status st, const char *err, char *msg, size_t len)
{
    snprintf(msg, len, "%s: nothing of this batch was written; send it again %s", err,
             st == RFM_ENOSPC ? "once space is freed" : "later");
    return st == RFM_ENOSPC ? 507 : 503;
}

static int h_events(void *user, const json_t *body, json_t **out, char *msg, size_t len)
{
    const api *a = user;
    if (!a->live) {
        snprintf(msg, len,
                 "no customer-state store: start rfm-serve with --state PATH (or "
                 "state.path in the config)");
        return 503;
    }
    const json_t *evs = json_object_get(body, "events");
    size_t n = json_array_size(evs);
    if (n > a->batch_limit) {
        snprintf(msg, len, "batch of %zu events is over the limit of %zu (server.batch_limit)", n,
                 a->batch_limit);
        return 413;
    }
    const json_t **items = calloc(n ? n : 1, sizeof *items);
    live_item *res = calloc(n ? n : 1, sizeof *res);
    int status = 200;
    if (!items || !res)
        goto out; /* *out stays NULL: 503 out of memory */
    for (size_t i = 0; i < n; i++)
        items[i] = json_array_get(evs, i);
    char err[256];
    rfm_status st = live_apply_items(a->live, items, n, res, err, sizeof err);
    status = st != RFM_OK ? events_failed(st, err, msg, len) : events_reply(res, n, out);
out:
    free(items);
    free(res);
    return status;
}

/* POST /events without a JSON tree (http_route.raw): the body read
 * straight into events (event_batch_read), which decides only bodies the
 * general path would take, item for item the same (event.h); 0 for any
 * other body (and without a store), which h_events then answers. */
static int h_events_raw(void *user, const char *text, size_t tlen, json_t **out, char *msg,
                        size_t len)
{
    const api *a = user;
    if (!a->live)
        return 0;
    event_batch b;
    event_body r = event_batch_read(text, tlen, a->batch_limit, live_types(a->live), &b);
    if (r == EVENT_BODY_OTHER)
        return 0;
    live_item *res = r == EVENT_BODY_OK ? calloc(b.n, sizeof *res) : NULL;
    int status = 200;
    if (res) { /* else *out stays NULL: 503 out of memory */
        char err[256];
        rfm_status st = live_apply_batch(a->live, &b, res, err, sizeof err);
        status = st != RFM_OK ? events_failed(st, err, msg, len) : events_reply(res, b.n, out);
    }
    free(res);
    event_batch_free(&b);
    return status;
}

/* A day YYYY-MM-DD from 1900 on, or DATE_NONE: ten characters of that
 * shape (checked here: sscanf was 3 % of a GET /customers/{id}), then
 * date_parse for the calendar and the range. */
static int32_t parse_day(const char *s)
{
    for (int i = 0; i < 10; i++)
        if (i == 4 || i == 7 ? s[i] != '-' : !(s[i] >= '0' && s[i] <= '9'))
            return DATE_NONE;
    if (s[10] != '\0')
        return DATE_NONE;
    return date_parse(s, 10); /* DATE_NONE before 1900 */
}

/* Two caches of CLTV terms per serving thread (cltv_cache: a customer's
 * terms depend on (x, T) alone, and a population has a few thousand of
 * them): the point terms (GET /customers/{id}) and every parameter set's,
 * for the interval (/predict_cltv at the model's horizon and rate; another
 * horizon or rate is computed without), each made when first asked for,
 * for the api load it was made for: a.gen numbers the loads, so a reloaded
 * model, even at a reused address, never reads the old one's terms. Freed
 * when the thread ends. */
enum { THREAD_CLTV_BYTES = 2 << 20 };
static unsigned long long api_loads; /* atomic */
typedef struct {
    unsigned long long gen;
    cltv_cache *k[2]; /* [interval] */
    int tried[2];     /* made, or failed for want of memory */
} thread_cltv;
static pthread_key_t cltv_key;
static pthread_once_t cltv_once = PTHREAD_ONCE_INIT;
static int cltv_key_ok;

static void thread_cltv_free(void *p)
{
    thread_cltv *t = p;
    cltv_cache_free(t->k[0]);
    cltv_cache_free(t->k[1]);
    free(t);
}

static void cltv_key_make(void)
{
    cltv_key_ok = pthread_key_create(&cltv_key, thread_cltv_free) == 0;
}

/* This thread's cache for a's model, of the point terms or (interval 1)
 * every set's; NULL (compute uncached) when memory runs out. */
static cltv_cache *thread_cltv_cache(const api *a, int interval)
{
    pthread_once(&cltv_once, cltv_key_make);
    if (!cltv_key_ok)
        return NULL;
    thread_cltv *t = pthread_getspecific(cltv_key);
    if (!t) {
        if (!(t = calloc(1, sizeof *t)))
            return NULL;
        if (pthread_setspecific(cltv_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    if (t->gen != a->gen) {
        for (int i = 0; i < 2; i++)
            cltv_cache_free(t->k[i]), t->k[i] = NULL, t->tried[i] = 0;
        t->gen = a->gen;
    }
    if (!t->tried[interval]) {
        t->tried[interval] = 1;
        char err[RFM_ERRLEN];
        if (cltv_cache_new(a->cltv, a->cltv_horizon, a->cltv_discount, interval, THREAD_CLTV_BYTES,
                           &t->k[interval], err, sizeof err) != RFM_OK)
            t->k[interval] = NULL;
    }
    return t->k[interval];
}

/* Keys with a finite value only: a reply's tree left out a member whose
 * json_real was refused, and the contract has no null there. */
static void put_real_raw(jsonw *w, const char *key, size_t n, double v)
{
    if (isfinite(v)) {
        jsonw_key_raw(w, key, n);
        jsonw_real(w, v);
    }
}

static void put_str_raw(jsonw *w, const char *key, size_t n, const char *v)
{
    jsonw_key_raw(w, key, n);
    jsonw_str(w, v);
}
/* The two with a literal key (JSONW_KEY). */
#define put_real(w, k, v) put_real_raw((w), "\"" k "\":", sizeof("\"" k "\":") - 1, (v))
#define put_str(w, k, v) put_str_raw((w), "\"" k "\":", sizeof("\"" k "\":") - 1, (v))

/* GET /customers/{id}: id from the path, asof_s the as_of query argument
 * (NULL: today), as strings. The reply is written as text (jsonw): its tree
 * cost more than the figures (a third of the request's instructions). */
static int h_customer(void *user, const char *id, const char *asof_s, char **out, size_t *outlen,
                      char *msg, size_t len)
{
    const api *a = user;
    if (!a->live) {
        snprintf(msg, len,
                 "no customer-state store: start rfm-serve with --state PATH (or "
                 "state.path in the config)");
        return 503;
    }
    int32_t asof = today_utc();
    if (asof_s) {
        if ((asof = parse_day(asof_s)) == DATE_NONE) {
            snprintf(msg, len, "as_of: must be a date YYYY-MM-DD from 1900 on, not '%.40s'",
                     asof_s);
            return 400;
        }
    }
    if (!id || !*id) {
        snprintf(msg, len, "unknown customer_id ''");
        return 404;
    }
    customer_row c;
    state_customer sc;
    int st = by_id(a, id, asof, &c, &sc, msg, len);
    if (st)
        return st;
    char day[11], scored[21];
    date_format(asof, day);
    date_format_instant((int64_t)time(NULL), scored);
    const txn_features *f = &sc.f;
    /* The figures first, the text after: model_version sits in the middle
     * of the reply but names only the models that answered. */
    segments_result seg;
    int have_seg = a->segments && segments_predict(a->segments, f->recency, f->frequency,
                                                   f->monetary, &seg, msg, len) == RFM_OK;
    double churn_p = NAN;
    if (a->churn) {
        const customer_row row = {f->recency, f->frequency,     f->monetary, f->bg_x, f->bg_t_x,
                                  f->bg_T,    f->bg_mean_spend, NAN,         NAN};
        double x[CHURN_MAX_FEATURES], p;
        churn_model_row(a->churn, &row, x);
        /* The probability alone: churn_explain's bits without its SHAP. */
        if (churn_predict(a->churn, x, &p, msg, len) == RFM_OK && isfinite(p))
            churn_p = p;
    }
    cltv_prediction cp;
    /* No interval (the reply has none): the point figures, 8x cheaper,
     * their terms kept by (x, T) in this thread's cache. */
    int have_cltv =
        a->cltv && cltv_predict_cached(a->cltv, thread_cltv_cache(a, 0), f->bg_x, f->bg_t_x,
                                       f->bg_T, f->bg_mean_spend, a->cltv_horizon, a->cltv_discount,
                                       0, &cp, msg, len) == RFM_OK;
    jsonw w;
    jsonw_init(&w);
    jsonw_obj(&w);
    put_str(&w, "customer_id", id);
    put_str(&w, "as_of", day);
    put_real(&w, "recency", f->recency);
    put_real(&w, "frequency", f->frequency);
    put_real(&w, "monetary", f->monetary);
    put_real(&w, "tenure", f->tenure);
    put_real(&w, "aov", f->aov);
    JSONW_KEY(&w, "bgnbd");
    jsonw_obj(&w);
    put_real(&w, "repeat_purchases", f->bg_x);
    put_real(&w, "days_first_to_last_purchase", f->bg_t_x);
    put_real(&w, "days_since_first_purchase", f->bg_T);
    put_real(&w, "mean_repeat_spend", f->bg_mean_spend);
    jsonw_end(&w);
    JSONW_KEY(&w, "model_version");
    jsonw_obj(&w);
    if (have_seg)
        put_str(&w, "segments", a->segments_version);
    if (!isnan(churn_p))
        put_str(&w, "churn", a->churn_version ? a->churn_version : "");
    if (have_cltv)
        put_str(&w, "cltv", a->cltv_version ? a->cltv_version : "");
    jsonw_end(&w);
    put_str(&w, "scored_at", scored);
    JSONW_KEY(&w, "last_event_at");
    if (sc.last_event_at != INT64_MIN) {
        char last[21];
        date_format_instant(sc.last_event_at, last);
        jsonw_str(&w, last);
    } else {
        jsonw_null(&w);
    }
    if (a->events) {
        /* Interactions of every kind up to the end of as_of, scored. */
        engagement_result er;
        engagement_score(a->events, sc.last_interaction_day, asof + 1, sc.interactions, sc.weighted,
                         &er);
        char lastday[11] = "";
        if (sc.last_interaction_day != DATE_NONE)
            date_format(sc.last_interaction_day, lastday);
        JSONW_KEY(&w, "engagement");
        jsonw_obj(&w);
        put_real(&w, "recency", er.recency);
        put_real(&w, "count", er.count);
        put_real(&w, "weighted", er.weighted);
        JSONW_KEY(&w, "recency_score");
        jsonw_int(&w, er.recency_score);
        JSONW_KEY(&w, "count_score");
        jsonw_int(&w, er.count_score);
        JSONW_KEY(&w, "weighted_score");
        jsonw_int(&w, er.weighted_score);
        put_str(&w, "segment", engagement_segment_name(er.segment));
        JSONW_KEY(&w, "last_interaction");
        if (lastday[0])
            jsonw_str(&w, lastday);
        else
            jsonw_null(&w);
        JSONW_KEY(&w, "types");
        jsonw_obj(&w);
        for (size_t k = 0; k < a->events->ntypes; k++) {
            jsonw_key(&w, a->events->type[k].name);
            jsonw_int(&w, (long long)sc.type_count[k]);
        }
        jsonw_end(&w);
        jsonw_end(&w);
    }
    if (have_seg) {
        put_str(&w, "rfm_score", seg.rfm_score);
        put_str(&w, "rfm_segment", seg.rfm_segment);
        JSONW_KEY(&w, "cluster");
        jsonw_int(&w, seg.cluster);
        put_str(&w, "segment", seg.segment);
    }
    if (!isnan(churn_p)) {
        put_real(&w, "churn_probability", churn_p);
        put_str(&w, "churn_risk", churn_risk_name(churn_risk_level(a->churn, churn_p)));
    }
    if (have_cltv) {
        put_real(&w, "p_alive", cp.p_alive);
        put_real(&w, "expected_purchases", cp.expected_purchases);
        put_real(&w, "cltv", cp.cltv);
        put_real(&w, "horizon_days", a->cltv_horizon);
    }
    jsonw_end(&w);
    msg[0] = '\0';
    *out = jsonw_finish(&w, outlen); /* NULL: out of memory, 503 */
    return 200;
}

int api_score_id(const api *a, const char *id, int32_t asof, score_result *out, json_t **scores,
                 char *msg, size_t len)
{
    if (scores)
        *scores = NULL;
    customer_row row;
    int st = by_id(a, id, asof, &row, NULL, msg, len);
    if (st)
        return st;
    score_models sm = {.segments = a->segments, .churn = a->churn};
    if (score_customer(&sm, &row, SCORE_SEGMENTS | SCORE_CHURN | SCORE_CHURN_POINT, 1, out, msg,
                       len) != RFM_OK)
        return 422;
    if (!scores)
        return 0; /* the labels alone (the feed's scoring before a batch) */
    json_t *o = json_pack("{s:f,s:f,s:f}", "recency", row.recency, "frequency", row.frequency,
                          "monetary", row.monetary);
    if (o && (out->done & SCORE_SEGMENTS)) {
        json_object_set_new(o, "rfm_score", json_string(out->seg.rfm_score));
        json_object_set_new(o, "rfm_segment", json_string(out->seg.rfm_segment));
        json_object_set_new(o, "cluster", json_integer((json_int_t)out->seg.cluster));
        json_object_set_new(o, "segment", json_string(out->seg.segment));
    }
    if (o && (out->done & SCORE_CHURN)) {
        json_object_set_new(o, "churn_probability", json_real(out->churn_probability));
        json_object_set_new(o, "churn_risk", json_string(churn_risk_name(out->risk)));
    }
    if (!o) {
        snprintf(msg, len, "out of memory");
        return 503;
    }
    *scores = o;
    return 0;
}

void api_set_erasure(api *a, erasure *e, int pseudonymous)
{
    a->erased = e;
    a->pseudonymous = pseudonymous;
}

/* DELETE /customers/{id}: body is {"id": ...} from the path (a pseudonym
 * by then when ids are pseudonymous). 204 once listed and, with a store,
 * removed from it (a customer it does not have is fine); a store error is
 * 503 (the list has the entry: resending completes the erasure). */
static int h_erase(void *user, const json_t *body, json_t **out, char *msg, size_t len)
{
    const api *a = user;
    *out = NULL;
    if (!a->erased) {
        snprintf(msg, len,
                 "no erasure list: set privacy.erasure_list, or state.path for the default "
                 "beside the store (docs/security.md)");
        return 503;
    }
    const char *id = json_string_value(json_object_get(body, "id"));
    char entry[33], err[256];
    if (!id || erasure_entry(a->pseudonymous, id, strlen(id), entry) == 0) {
        snprintf(msg, len, "not a customer id: '%.64s'", id ? id : "");
        return 404;
    }
    if (erasure_add(a->erased, entry, err, sizeof err) != RFM_OK) {
        snprintf(msg, len, "erasure list: %s", err);
        return 503;
    }
    if (a->live) {
        rfm_status s = live_erase(a->live, id, err, sizeof err);
        if (s != RFM_OK && s != RFM_ENOTFOUND) {
            snprintf(msg, len, "customer state: %s", err);
            return 503;
        }
    }
    return 204;
}

void api_set_live(api *a, live *l, size_t batch_limit, const engagement_options *events)
{
    a->live = l;
    a->batch_limit = batch_limit;
    a->events = events;
}

void api_set_not_ready(api *a, const char *(*fn)(void *ctx, char *buf, size_t len), void *ctx)
{
    a->not_ready = fn;
    a->not_ready_ctx = ctx;
}

static int h_clusters(void *user, const json_t *body, json_t **out, char *msg, size_t len)
{
    (void)user, (void)body, (void)out;
    return not_trained(msg, len, "segments"); /* only reached when not trained */
}

static int h_analytics(void *user, const json_t *body, json_t **out, char *msg, size_t len)
{
    (void)user, (void)body, (void)out;
    return not_trained(msg, len, "analytics"); /* only reached when not trained */
}

/* The optional figures: only reached when analytics.json lacks them. */
static int h_analytics_missing(char *msg, size_t len, const api *a, const char *model)
{
    if (!a->analytics_body[0])
        return not_trained(msg, len, "analytics");
    snprintf(msg, len,
             "no %s figures in analytics.json: train %s, then rfm-train --only analytics, and "
             "restart",
             model, model);
    return 503;
}
static int h_shap(void *user, const json_t *body, json_t **out, char *msg, size_t len)
{
    (void)body, (void)out;
    return h_analytics_missing(msg, len, user, "churn");
}
static int h_qini(void *user, const json_t *body, json_t **out, char *msg, size_t len)
{
    (void)body, (void)out;
    return h_analytics_missing(msg, len, user, "uplift");
}
static int h_map(void *user, const json_t *body, json_t **out, char *msg, size_t len)
{
    (void)body, (void)out;
    return h_analytics_missing(msg, len, user, "embeddings");
}

/* The bodies of GET /analytics/...: members of analytics.json (one per
 * page), each with the model's version; the overview also with the
 * currency and snapshot date, the qini figures with the currency. The
 * last three are optional (NULL when the file lacks them). Checked and
 * rendered once at load. */
static rfm_status analytics_bodies(const json_t *j, const char *version, char *bodies[6], char *err,
                                   size_t errlen)
{
    rfm_status st = analytics_check(j, err, errlen);
    static const char *const PART[6] = {"overview",    "rfm_matrix", "cltv_churn",
                                        "shap_sample", "qini",       "embedding_map"};
    for (int k = 0; st == RFM_OK && k < 6; k++) {
        if (k >= 3 && !json_is_object(json_object_get(j, PART[k])))
            continue;
        json_t *b = json_deep_copy(json_object_get(j, PART[k]));
        int bad = !b || json_object_set_new(b, "model_version", json_string(version));
        if (!bad && k == 4)
            bad = json_object_set(b, "currency", json_object_get(j, "currency"));
        if (!bad && k == 0)
            bad = json_object_set(b, "currency", json_object_get(j, "currency")) ||
                  json_object_set(b, "snapshot_date", json_object_get(j, "snapshot_date"));
        if (!bad)
            bad = !(bodies[k] = jsonout_dumps(b, JSON_COMPACT));
        json_decref(b);
        if (bad)
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    return st;
}

/* A cluster's rule: its text, its conditions in RFM units, and how much of
 * the cluster (coverage) and of the other customers (leak) it matches. */
static json_t *cluster_rule(const ruletree_rule *r)
{
    static const char *const F[3] = {"recency", "frequency", "monetary"};
    char text[256];
    segments_rule_text(r, text, sizeof text);
    json_t *conds = json_array();
    for (int c = 0; conds && c < r->nconds; c++)
        if (json_array_append_new(conds,
                                  json_pack("{s:s,s:s,s:f}", "feature", F[r->cond[c].feature], "op",
                                            r->cond[c].op == RULETREE_LE ? "<=" : ">=", "value",
                                            r->cond[c].value))) {
            json_decref(conds);
            return NULL;
        }
    size_t matched = r->tp + r->fp;
    return conds ? json_pack("{s:s,s:o,s:f,s:f,s:f}", "text", text, "conditions", conds, "coverage",
                             r->npos ? (double)r->tp / (double)r->npos : 1.0, "leak",
                             r->nneg ? (double)r->fp / (double)r->nneg : 0.0, "precision",
                             matched ? (double)r->tp / (double)matched : 0.0)
                 : NULL;
}

static char *clusters_summary(const segments_model *m, const char *version)
{
    static const char *const F[3] = {"recency", "frequency", "monetary"};
    /* Every step checked: a body missing a cluster must not be served. */
    json_t *list = json_array();
    int bad = !list;
    for (size_t c = 0; !bad && c < segments_nclusters(m); c++) {
        segments_cluster_info ci;
        segments_cluster(m, c, &ci);
        json_t *o = json_pack("{s:I,s:s,s:I,s:f,s:s}", "cluster", (json_int_t)c, "segment",
                              ci.segment, "customers", (json_int_t)ci.customers, "share", ci.share,
                              "strategy", ci.strategy);
        bad = !o;
        for (int f = 0; !bad && f < 3; f++)
            bad = json_object_set_new(
                      o, F[f],
                      json_pack("{s:f,s:f}", "mean", ci.mean[f], "median", ci.median[f])) != 0;
        if (!bad && ci.rule) /* none in a segments 1.0 model file */
            bad = json_object_set_new(o, "rule", cluster_rule(ci.rule)) != 0;
        if (bad)
            json_decref(o);
        else
            bad = json_array_append_new(list, o) != 0;
    }
    if (bad) {
        json_decref(list);
        return NULL;
    }
    json_t *j = json_pack("{s:o,s:s}", "clusters", list, "model_version", version);
    /* jsonout never returns partial text: NULL when an allocation fails
     * (jansson 2.14's json_dumps could drop a piece, found by test_oom). */
    char *text = jsonout_dumps(j, JSON_COMPACT);
    json_decref(j);
    return text;
}

/* ---- GET /exports/customers.csv ------------------------------------------
 * The rows and columns of rfm-score --out x.csv (core/files/bulk.h: the
 * same passes, the same writer), streamed: pass 1 (percentiles, filters,
 * ranking) runs when the request comes, then libmicrohttpd's content
 * reader asks for the text piece by piece and each piece is made from the
 * next rows (chunked transfer coding). Memory: pass 1's 16 bytes a
 * customer (and the live state's customers, read first like rfm-score
 * --state does), the writer's buffer and one piece. */
#define EXPORT_MAX_SEGMENTS 64
#define EXPORT_ROWS_A_PIECE 64

typedef struct {
    api *a; /* a reference held until the response is freed */
    bulk_state live;
    bulk_input in;
    bulk_filter f;
    char *segs[EXPORT_MAX_SEGMENTS];
    score_models sm; /* with this export's cltv_cache */
    bulk_plan *plan;
    export_writer *w; /* NULL once committed */
    size_t k, total;
    char *pend; /* text made and not yet handed to libmicrohttpd */
    size_t plen, poff, pcap;
    char version[512], scored_at[11];
    bulk_row row;
} export_stream;

static void export_stream_free(void *cls)
{
    export_stream *s = cls;
    if (!s)
        return;
    export_abort(s->w);
    bulk_plan_free(s->plan);
    cltv_cache_free(s->sm.cltv_cache);
    bulk_state_free(&s->live);
    for (size_t i = 0; i < s->f.nsegments; i++)
        free(s->segs[i]);
    free(s->pend);
    api_release(s->a);
    free(s);
}

static rfm_status export_take(void *user, const char *buf, size_t len, char *err, size_t errlen)
{
    export_stream *s = user;
    if (s->plen + len > s->pcap) {
        size_t cap = s->pcap ? s->pcap : 65536;
        while (cap < s->plen + len)
            cap *= 2;
        char *p = realloc(s->pend, cap);
        if (!p)
            return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        s->pend = p, s->pcap = cap;
    }
    memcpy(s->pend + s->plen, buf, len);
    s->plen += len;
    return RFM_OK;
}

static ssize_t export_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    export_stream *s = cls;
    (void)pos;
    char err[RFM_ERRLEN];
    while (s->poff == s->plen && s->w) {
        s->plen = s->poff = 0;
        for (size_t made = 0; made < EXPORT_ROWS_A_PIECE && s->k < s->total; s->k++) {
            int written;
            if (bulk_row_at(s->plan, &s->sm, s->k, &s->row, &written, err, sizeof err) != RFM_OK ||
                (written && export_row(s->w, s->row.v, err, sizeof err) != RFM_OK))
                return MHD_CONTENT_READER_END_WITH_ERROR; /* the client sees a cut stream */
            made += (size_t)written;
        }
        rfm_status st = export_flush(s->w, err, sizeof err);
        if (st == RFM_OK && s->k == s->total) {
            st = export_commit(s->w, err, sizeof err);
            s->w = NULL;
        }
        if (st != RFM_OK)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (s->poff == s->plen)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = s->plen - s->poff < max ? s->plen - s->poff : max;
    memcpy(buf, s->pend + s->poff, n);
    s->poff += n;
    return (ssize_t)n;
}

/* The query: by, limit, segment (repeated), min_p_alive, as_of; anything
 * else is refused, as is a parameter given twice (but segment). */
typedef struct {
    export_stream *s;
    const char *by, *limit, *min_p_alive, *as_of;
    char bad[256];
} export_query;

static enum MHD_Result export_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    export_query *q = cls;
    (void)kind;
    if (q->bad[0])
        return MHD_NO;
    const char **one = !strcmp(key, "by")            ? &q->by
                       : !strcmp(key, "limit")       ? &q->limit
                       : !strcmp(key, "min_p_alive") ? &q->min_p_alive
                       : !strcmp(key, "as_of")       ? &q->as_of
                                                     : NULL;
    if (one) {
        if (*one)
            snprintf(q->bad, sizeof q->bad, "%s: given more than once", key);
        *one = value ? value : "";
        return q->bad[0] ? MHD_NO : MHD_YES;
    }
    if (strcmp(key, "segment") != 0) {
        snprintf(q->bad, sizeof q->bad,
                 "%.64s: unknown parameter (by, limit, segment, min_p_alive, as_of)", key);
        return MHD_NO;
    }
    export_stream *s = q->s;
    if (s->f.nsegments == EXPORT_MAX_SEGMENTS) {
        snprintf(q->bad, sizeof q->bad, "segment: at most %d", EXPORT_MAX_SEGMENTS);
        return MHD_NO;
    }
    if (!(s->segs[s->f.nsegments] = strdup(value ? value : ""))) {
        snprintf(q->bad, sizeof q->bad, "out of memory");
        return MHD_NO;
    }
    s->f.nsegments++;
    return MHD_YES;
}

/* Check the query and run pass 1: 0, or the status of a refusal with msg
 * (400 naming the parameter, 503 for a model not trained or no store). */
static int export_prepare(export_stream *s, struct MHD_Connection *c, char *msg, size_t len)
{
    const api *a = s->a;
    export_query q = {s, NULL, NULL, NULL, NULL, ""};
    s->f.min_p_alive = NAN;
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, export_param, &q);
    if (q.bad[0]) {
        snprintf(msg, len, "%s", q.bad);
        return strcmp(q.bad, "out of memory") ? 400 : 503;
    }
    s->f.segments = (const char *const *)s->segs;
    if (q.by) {
        int by = bulk_by_parse(q.by);
        if (by < 0) {
            snprintf(msg, len, "by: unknown key '%.40s' (cltv, churn, value_at_risk, uplift_gain)",
                     q.by);
            return 400;
        }
        s->f.by = (bulk_by)by;
    }
    if (q.limit) {
        char *end;
        errno = 0;
        long long n = strtoll(q.limit, &end, 10);
        if (end == q.limit || *end || errno || n < 1 || n > 1000000000) {
            snprintf(msg, len, "limit: must be a whole number from 1 to 1000000000, not '%.40s'",
                     q.limit);
            return 400;
        }
        s->f.top = (size_t)n;
    }
    if (!q.by != !q.limit) {
        snprintf(msg, len,
                 "%s: a targeting list takes both by and limit (rfm-score --top N --by KEY)",
                 q.by ? "limit" : "by");
        return 400;
    }
    if (q.min_p_alive) {
        char *end;
        double v = strtod(q.min_p_alive, &end);
        if (end == q.min_p_alive || *end || !(v >= 0 && v <= 1)) {
            snprintf(msg, len, "min_p_alive: must be a number from 0 to 1, not '%.40s'",
                     q.min_p_alive);
            return 400;
        }
        s->f.min_p_alive = v;
    }
    int32_t asof = today_utc();
    if (q.as_of && (asof = parse_day(q.as_of)) == DATE_NONE) {
        snprintf(msg, len, "as_of: must be a date YYYY-MM-DD from 1900 on, not '%.40s'", q.as_of);
        return 400;
    }
    bulk_model_version(a->manifest, s->version, sizeof s->version);
    bulk_snapshot_day(a->manifest, s->scored_at);
    s->sm = (score_models){a->segments, a->cltv, a->churn, a->cltv_horizon, a->cltv_discount, NULL};
    if (a->live) {
        /* As rfm-score --state: the store's customers with a purchase by
         * the end of as_of, as GET /customers/{id} sees them. */
        char err[RFM_ERRLEN];
        if (!live_can_walk(a->live)) {
            snprintf(msg, len,
                     "exports walk every customer of the state store: the SQLite store "
                     "only, not Redis (docs/exports.md)");
            return 503;
        }
        if (live_each(a->live, asof + 1, bulk_state_collect, &s->live, err, sizeof err) != RFM_OK ||
            s->live.oom) {
            snprintf(msg, len, "customer state unavailable: %s",
                     s->live.oom ? "out of memory" : err);
            return 503;
        }
        date_format(asof, s->scored_at);
    } else {
        /* As rfm-score without --state: the training customers, as of the
         * training snapshot; an as_of of another day cannot be answered. */
        if (!a->customers)
            return not_trained(msg, len, "customers");
        if (q.as_of && strcmp(q.as_of, s->scored_at) != 0) {
            snprintf(msg, len,
                     "as_of: without a customer-state store (--state) the export is as of the "
                     "training snapshot, %s, not %.40s",
                     s->scored_at, q.as_of);
            return 400;
        }
    }
    s->in = (bulk_input){a->customers, s->live.ids,     s->live.rows,
                         s->live.n,    s->version,      s->scored_at,
                         a->erased,    a->pseudonymous, a->gains ? gains_lookup : NULL,
                         a->gains};
    if (a->live)
        s->in.table = NULL;
    const char *why = bulk_filter_check(&s->sm, &s->f, &s->in, msg, len);
    if (why)
        return strncmp(why, "segment:", 8) == 0 ? 400 : 503;
    char err[RFM_ERRLEN];
    if (a->cltv && cltv_cache_new(a->cltv, a->cltv_horizon, a->cltv_discount, 1, (size_t)16 << 20,
                                  &s->sm.cltv_cache, err, sizeof err) != RFM_OK) {
        snprintf(msg, len, "%s", err);
        return 503;
    }
    rfm_status st = bulk_plan_new(&s->in, &s->f, &s->sm, 1, &s->plan, err, sizeof err);
    if (st != RFM_OK) {
        /* Out of memory, or a model refusing a stored customer's figures:
         * not the client's doing, and never a 500. */
        snprintf(msg, len, "%s", err);
        return 503;
    }
    s->total = bulk_positions(s->plan);
    if (export_open_sink(EXPORT_CSV, bulk_columns(), BULK_NCOL, export_take, s, &s->w, err,
                         sizeof err) != RFM_OK) {
        snprintf(msg, len, "%s", err);
        return 503;
    }
    return 0;
}

rfm_status api_load_gains(api *a, const char *campaign, const char *id_column, double value,
                          double cost, size_t *with_gain, char *err, size_t errlen)
{
    if (!a->uplift)
        return rfm_fail(err, errlen, RFM_ENOTFOUND, "model uplift is not trained");
    gains_counts c;
    rfm_status st =
        gains_load(campaign, id_column, a->uplift, a->enc, value, cost, &a->gains, &c, err, errlen);
    if (st == RFM_OK)
        *with_gain = c.customers;
    return st;
}

void *api_respond(void *user, const char *path, void *connection, int *status, char *msg,
                  size_t msglen)
{
    if (strcmp(path, "/exports/customers.csv") != 0) {
        *status = 503;
        snprintf(msg, msglen, "no answer for %.200s", path);
        return NULL;
    }
    export_stream *s = calloc(1, sizeof *s);
    if (!s) {
        *status = 503;
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    s->a = user;
    api_retain(s->a);
    int st = export_prepare(s, connection, msg, msglen);
    struct MHD_Response *r = st ? NULL
                                : MHD_create_response_from_callback(
                                      MHD_SIZE_UNKNOWN, 65536, export_read, s, export_stream_free);
    if (!r) {
        export_stream_free(s);
        *status = st ? st : 503;
        if (!st)
            snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    char disp[64];
    snprintf(disp, sizeof disp, "attachment; filename=\"customers-%s.csv\"", s->scored_at);
    MHD_add_response_header(r, "Content-Type", "text/csv; charset=utf-8");
    MHD_add_response_header(r, "Content-Disposition", disp);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no"); /* nginx: pass pieces on as made */
    return r;
}

void api_free(api *a)
{
    if (!a)
        return;
    cltv_free(a->cltv);
    customers_free(a->customers);
    ann_free(a->ann);
    free(a->row_cluster);
    churn_free(a->churn);
    for (size_t j = 0; j < CHURN_MAX_FEATURES; j++)
        free(a->churn_key[j]);
    uplift_free(a->uplift);
    campaign_encoding_free(a->enc);
    gains_free(a->gains);
    free(a->uplift_learner);
    segments_free(a->segments);
    free(a->clusters_body);
    for (int k = 0; k < 6; k++)
        free(a->analytics_body[k]);
    free(a->openapi_text);
    json_decref(a->manifest);
    free(a);
}

rfm_status api_load(const char *models_dir, const char *openapi_path, api **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    api *a = calloc(1, sizeof *a);
    if (!a)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    clock_gettime(CLOCK_MONOTONIC, &a->started);
    a->refs = 1;
    a->gen = __atomic_add_fetch(&api_loads, 1, __ATOMIC_RELAXED);
    rfm_status st = fileio_read(openapi_path, &a->openapi_text, &a->openapi_len, err, errlen);
    if (st == RFM_OK)
        st = modelfile_open(models_dir, &a->manifest, err, errlen);
    if (st == RFM_OK) {
        const json_t *entry = json_object_get(json_object_get(a->manifest, "models"), "segments");
        if (entry) {
            json_t *j;
            a->segments_version = json_string_value(json_object_get(entry, "version"));
            if ((st = modelfile_load(models_dir, a->manifest, "segments", &j, err, errlen)) ==
                RFM_OK) {
                st = segments_from_json(j, &a->segments, err, errlen);
                json_decref(j);
            }
            if (st == RFM_OK && !(a->clusters_body = clusters_summary(
                                      a->segments, a->segments_version ? a->segments_version : "")))
                st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        }
    }
    const json_t *models = json_object_get(a->manifest, "models");
    if (st == RFM_OK && json_object_get(models, "cltv")) {
        json_t *j;
        a->cltv_version =
            json_string_value(json_object_get(json_object_get(models, "cltv"), "version"));
        if ((st = modelfile_load(models_dir, a->manifest, "cltv", &j, err, errlen)) == RFM_OK) {
            st = cltv_from_json(j, &a->cltv, err, errlen);
            const json_t *def = json_object_get(j, "defaults");
            const json_t *h = json_object_get(def, "horizon_days"),
                         *d = json_object_get(def, "discount_rate");
            a->cltv_horizon = json_is_number(h) ? json_number_value(h) : 365;
            a->cltv_discount = json_is_number(d) ? json_number_value(d) : 0.01;
            json_decref(j);
        }
    }
    if (st == RFM_OK && json_object_get(models, "customers")) {
        const char *f =
            json_string_value(json_object_get(json_object_get(models, "customers"), "file"));
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", models_dir, f ? f : "customers.csv");
        st = customers_load(path, &a->customers, err, errlen);
    }
    if (st == RFM_OK && json_object_get(models, "embeddings")) {
        const json_t *e = json_object_get(models, "embeddings");
        const char *f = json_string_value(json_object_get(e, "file"));
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", models_dir, f ? f : "customer2vec.faiss");
        a->ann_version = json_string_value(json_object_get(e, "version"));
        ann_params ap;
        ann_params_default(&ap); /* one thread per query: the pool serves requests in parallel */
        st = ann_load(path, &ap, &a->ann, err, errlen);
        /* Each indexed customer's cluster, for the segment filter and answers. */
        if (st == RFM_OK && a->segments && a->customers) {
            int64_t n = ann_count(a->ann);
            a->row_cluster = malloc((size_t)(n > 0 ? n : 1) * sizeof *a->row_cluster);
            if (!a->row_cluster)
                st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            for (int64_t i = 0; a->row_cluster && i < n; i++)
                a->row_cluster[i] = (int)segments_customer_cluster(
                    a->segments, customers_find(a->customers, ann_customer_id(a->ann, i)));
        }
    }
    if (st == RFM_OK && json_object_get(models, "churn")) {
        json_t *j;
        a->churn_version =
            json_string_value(json_object_get(json_object_get(models, "churn"), "version"));
        if ((st = modelfile_load(models_dir, a->manifest, "churn", &j, err, errlen)) == RFM_OK) {
            st = churn_from_json(j, &a->churn, err, errlen);
            churn_info ci;
            if (st == RFM_OK) {
                churn_info_get(a->churn, &ci);
                for (size_t k = 0; k < ci.d && st == RFM_OK; k++)
                    if (!(a->churn_key[k] = jsonw_key_text(ci.names[k], &a->churn_key_len[k])))
                        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            }
            const json_t *sv = json_object_get(j, "serving");
            const json_t *t = json_object_get(sv, "counterfactual_threshold");
            const json_t *mx = json_object_get(sv, "max_purchases");
            a->cf_threshold = json_is_number(t) ? json_number_value(t) : 0.6;
            a->cf_max = json_is_integer(mx) ? (int)json_integer_value(mx) : 10;
            json_decref(j);
        }
    }
    if (st == RFM_OK && json_object_get(models, "uplift")) {
        json_t *j;
        a->uplift_version =
            json_string_value(json_object_get(json_object_get(models, "uplift"), "version"));
        if ((st = modelfile_load(models_dir, a->manifest, "uplift", &j, err, errlen)) == RFM_OK) {
            const char *l = json_string_value(json_object_get(j, "learner"));
            if (!(a->uplift_learner = strdup(l ? l : "")))
                st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            else if ((st = uplift_from_json(json_object_get(j, "fitted"), &a->uplift, err,
                                            errlen)) == RFM_OK)
                st = campaign_encoding_from_json(json_object_get(j, "encoding"), &a->enc, err,
                                                 errlen);
            if (st == RFM_OK)
                a->narms = uplift_n_arms(a->uplift);
            json_decref(j);
        }
    }
    if (st == RFM_OK && json_object_get(models, "analytics")) {
        json_t *j;
        const char *v =
            json_string_value(json_object_get(json_object_get(models, "analytics"), "version"));
        if ((st = modelfile_load(models_dir, a->manifest, "analytics", &j, err, errlen)) ==
            RFM_OK) {
            st = analytics_bodies(j, v ? v : "", a->analytics_body, err, errlen);
            json_decref(j);
        }
    }
    if (st != RFM_OK) {
        api_free(a);
        return st;
    }
    /* Positional: the fields after waits (raw) are left zero, set below. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
    http_route r[] = {
        {"GET", "/health", h_health, 0, NULL, NULL, 0, 0},
        {"GET", "/ready", h_ready, 0, NULL, NULL, 0, 0},
        {"GET", "/openapi.yaml", NULL, 0, a->openapi_text, "application/yaml", a->openapi_len, 0},
        {"POST", "/events", h_events, HTTP_ONE, NULL, NULL, 0, 1},
        {"GET", "/customers/{id}", NULL, 0, NULL, NULL, 0, 0, NULL, h_customer},
        {"GET", "/exports/customers.csv", NULL, 0, NULL, NULL, 0, 0}, /* api_respond */
        {"DELETE", "/customers/{id}", h_erase, 0, NULL, NULL, 0, 0},
        {"POST", "/segment", h_segment, HTTP_ONE_OR_OLD_BATCH, NULL, NULL, 0, 0},
        {"POST", "/segment/batch", h_segment, HTTP_BATCH, NULL, NULL, 0, 0},
        {"POST", "/predict_cltv", h_cltv, HTTP_ONE_OR_OLD_BATCH, NULL, NULL, 0, 0},
        {"POST", "/predict_cltv/batch", h_cltv, HTTP_BATCH, NULL, NULL, 0, 0},
        {"POST", "/predict_churn", h_churn, HTTP_ONE_OR_OLD_BATCH, NULL, NULL, 0, 0},
        {"POST", "/predict_churn/batch", h_churn, HTTP_BATCH, NULL, NULL, 0, 0},
        {"POST", "/similar_customers", h_similar, HTTP_ONE_OR_OLD_BATCH, NULL, NULL, 0, 0},
        {"POST", "/similar_customers/batch", h_similar, HTTP_BATCH, NULL, NULL, 0, 0},
        {"POST", "/uplift_score", h_uplift, HTTP_ONE_OR_OLD_BATCH, NULL, NULL, 0, 0},
        {"POST", "/uplift_score/batch", h_uplift, HTTP_BATCH, NULL, NULL, 0, 0},
        {"GET", "/clusters/summary", h_clusters, 0, a->clusters_body, "application/json",
         a->clusters_body ? strlen(a->clusters_body) : 0, 0},
        {"GET", "/analytics/overview", h_analytics, 0, a->analytics_body[0], "application/json",
         a->analytics_body[0] ? strlen(a->analytics_body[0]) : 0, 0},
        {"GET", "/analytics/rfm-matrix", h_analytics, 0, a->analytics_body[1], "application/json",
         a->analytics_body[1] ? strlen(a->analytics_body[1]) : 0, 0},
        {"GET", "/analytics/cltv-churn", h_analytics, 0, a->analytics_body[2], "application/json",
         a->analytics_body[2] ? strlen(a->analytics_body[2]) : 0, 0},
        {"GET", "/analytics/shap-sample", h_shap, 0, a->analytics_body[3], "application/json",
         a->analytics_body[3] ? strlen(a->analytics_body[3]) : 0, 0},
        {"GET", "/analytics/qini", h_qini, 0, a->analytics_body[4], "application/json",
         a->analytics_body[4] ? strlen(a->analytics_body[4]) : 0, 0},
        {"GET", "/analytics/embedding-map", h_map, 0, a->analytics_body[5], "application/json",
         a->analytics_body[5] ? strlen(a->analytics_body[5]) : 0, 0},
    };
    _Static_assert(sizeof r <= sizeof a->routes, "api.routes is too small");
#pragma GCC diagnostic pop
    for (size_t i = 0; i < sizeof r / sizeof *r; i++)
        if (r[i].fn == h_events)
            r[i].raw = h_events_raw; /* its body without a JSON tree */
        else if (r[i].fn == h_segment)
            r[i].flat = h_segment_flat; /* {recency, frequency, monetary} without one */
        else if (r[i].fn == h_churn)
            r[i].flat = h_churn_flat;
        else if (r[i].fn == h_cltv)
            r[i].flat = h_cltv_flat;
        else if (r[i].fn == h_similar)
            r[i].flat = h_similar_flat;
    a->nroutes = sizeof r / sizeof *r;
    memcpy(a->routes, r, sizeof r);
    *out = a;
    return RFM_OK;
}

rfm_status api_check_contract(const api *a, const oas_spec *spec, const char *contract, char *err,
                              size_t errlen)
{
    for (size_t i = 0; i < a->nroutes; i++) {
        const http_route *r = &a->routes[i];
        if (strcmp(r->method, "POST") != 0)
            continue;
        const json_t *op = oas_operation(spec, r->method, r->path);
        if (!op)
            return rfm_fail(err, errlen, RFM_EINVAL,
                            "%s: no operation POST %s: every route this server answers must "
                            "be in its contract",
                            contract, r->path);
        if (!json_is_object(oas_request_schema(spec, op)))
            return rfm_fail(err, errlen, RFM_EINVAL,
                            "%s: POST %s has no requestBody schema for application/json: its "
                            "bodies would reach the handler unchecked",
                            contract, r->path);
    }
    return RFM_OK;
}

void api_retain(api *a) { __atomic_add_fetch(&a->refs, 1, __ATOMIC_ACQ_REL); }

void api_release(api *a)
{
    if (a && __atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) == 0)
        api_free(a);
}

const http_route *api_routes(const api *a, size_t *n)
{
    *n = a->nroutes;
    return a->routes;
}

void api_describe(const api *a, char *buf, size_t len)
{
    snprintf(buf, len, "segments %s, cltv %s, embeddings %s, uplift %s, customers %zu",
             a->segments ? a->segments_version : "(not trained)",
             a->cltv ? a->cltv_version : "(not trained)", a->ann ? a->ann_version : "(not trained)",
             a->uplift ? a->uplift_learner : "(not trained)",
             a->customers ? customers_count(a->customers) : 0);
}

const json_t *api_manifest(const api *a) { return a->manifest; }

const customers *api_customers(const api *a) { return a->customers; }
