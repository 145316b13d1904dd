/* cltv.c - lifetime value from BG/NBD and Gamma-Gamma; JSON under
 * lifetimes' parameter names. */
#include "cltv.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "date.h"
#include "jsonx.h"
#include "sha256.h"

/* The interval's delta method values the customer under the fitted
 * parameters and, for central differences, under fourteen sets with one
 * log-parameter moved by +DELTA_H or -DELTA_H (the others read back
 * through exp(log()), as the plain version computes them). Their BG/NBD
 * parts are ten distinct sets: the fit's, two per moved BG/NBD parameter,
 * and the read-back one the six Gamma-Gamma moves share. Derived once when
 * the model is made (derive). */
#define DELTA_H 1e-5
enum { NSETS = 10, NVALS = 15 };
/* The BG/NBD set of value j (0: the point value; 1 + k: parameter k moved
 * up, 8 + k: down). */
static const int SET_OF[NVALS] = {0, 1, 2, 3, 4, 9, 9, 9, 5, 6, 7, 8, 9, 9, 9};
#define READ_BACK (NSETS - 1)

struct cltv_model {
    bgnbd_fit_result bg;
    gg_fit_result gg;
    bgnbd_params bset[NSETS]; /* by SET_OF */
    gg_params gval[NVALS];    /* the Gamma-Gamma parameters of value j */
    int same_read_back;       /* bset[READ_BACK] is bset[0], bit for bit */
};

static void derive(cltv_model *c)
{
    const bgnbd_params *b = &c->bg.p;
    const gg_params *g = &c->gg.p;
    double u[7] = {log(b->r), log(b->alpha), log(b->a), log(b->b), log(g->p), log(g->q), log(g->v)};
    c->bset[0] = *b;
    c->gval[0] = *g;
    for (int side = 0; side < 2; side++)
        for (int k = 0; k < 7; k++) {
            double uu[7];
            memcpy(uu, u, sizeof uu);
            uu[k] += side ? -DELTA_H : DELTA_H;
            int j = 1 + 7 * side + k;
            c->bset[SET_OF[j]] = (bgnbd_params){exp(uu[0]), exp(uu[1]), exp(uu[2]), exp(uu[3])};
            c->gval[j] = (gg_params){exp(uu[4]), exp(uu[5]), exp(uu[6])};
        }
    c->same_read_back = memcmp(&c->bset[READ_BACK], &c->bset[0], sizeof c->bset[0]) == 0;
}

void cltv_default_options(cltv_options *o)
{
    o->penalizer_coef = 0;
    o->holdout_days = 90;
    o->horizon_days = 365;
    o->discount_rate = 0.01;
}

const char *cltv_check_options(const cltv_options *o)
{
    if (!(o->penalizer_coef >= 0 && o->penalizer_coef <= 1e6))
        return "penalizer_coef must be a number from 0 to 1e6";
    if (o->holdout_days < 7 || o->holdout_days > 3650)
        return "holdout_days must be an integer from 7 to 3650";
    if (!(o->horizon_days >= 1 && o->horizon_days <= 36500))
        return "horizon_days must be a number from 1 to 36500";
    if (!(o->discount_rate >= 0 && o->discount_rate <= 0.99))
        return "discount_rate must be a number from 0 to 0.99";
    return NULL;
}

const char *cltv_check(double x, double t_x, double T, double m)
{
    const char *why = bgnbd_check(x, t_x, T);
    if (why)
        return why;
    if (!isfinite(m) || m < 0)
        return "mean_repeat_spend must be >= 0";
    if (x > 0 && m == 0)
        return "mean_repeat_spend must be > 0 when there are repeat purchases";
    return NULL;
}

double cltv_value(const bgnbd_params *b, const gg_params *g, double x, double t_x, double T,
                  double m, double H, double d)
{
    double spend = gg_expected_spend(g, x, m), v = 0, prev = 0;
    for (int k = 1; (double)(k - 1) * 30 < H; k++) {
        double t = fmin(30.0 * k, H);
        double e = bgnbd_expected(b, t, x, t_x, T);
        v += (e - prev) * spend / pow(1 + d, t / 30);
        prev = e;
    }
    return v;
}

/* The periods of cltv_value for horizon H: their number and the discount
 * divisor of each, (1 + d)^(t_k / 30) with t_k = min(30 k, H), computed as
 * cltv_value does. */
static int periods(double H)
{
    int n = 0;
    for (int k = 1; (double)(k - 1) * 30 < H; k++)
        n++;
    return n;
}

static void discounts(double H, double d, int nper, double *disc)
{
    for (int k = 1; k <= nper; k++)
        disc[k - 1] = pow(1 + d, fmin(30.0 * k, H) / 30);
}

/* The h terms of the first nsets parameter sets at each period's end,
 * h[s * nper + k] (NSETS for the interval; 1, the fit's own, for the point
 * figures). The fit's set in one pass of the series with its derivatives
 * in the four log-parameters (bgnbd_h_many_d); each moved set's terms then
 * by the first-order step h +/- DELTA_H dh, whose errors (DELTA_H^2 h'' / 2,
 * the same on both sides) cancel in the central differences; where a term
 * had no derivative (the 2F1 not from its series), at the moved
 * parameters. The read-back set is the fit's, bit for bit, when its
 * parameters are. */
static void h_terms(const cltv_model *c, double x, double T, double H, int nper, int nsets,
                    double *h)
{
    enum { CHUNK = 64 };
    double t[CHUNK], dh[4 * CHUNK];
    unsigned char have[CHUNK];
    for (int k0 = 0; k0 < nper; k0 += CHUNK) {
        int m = nper - k0 < CHUNK ? nper - k0 : CHUNK;
        for (int k = 0; k < m; k++)
            t[k] = fmin(30.0 * (k0 + k + 1), H);
        if (nsets < NSETS) {
            for (int s = 0; s < nsets; s++)
                bgnbd_h_many(&c->bset[s], t, (size_t)m, x, T, h + s * nper + k0);
            continue;
        }
        double *h0 = h + k0;
        bgnbd_h_many_d(&c->bset[0], t, (size_t)m, x, T, h0, dh, have);
        for (int s = 1; s < READ_BACK; s++) { /* 1-4 up, 5-8 down */
            double *hs = h + s * nper + k0, step = s <= 4 ? DELTA_H : -DELTA_H;
            const int pk = (s - 1) % 4; /* the moved parameter */
            for (int k = 0; k < m; k++)
                if (have[k])
                    hs[k] = h0[k] + step * dh[4 * k + pk];
                else
                    bgnbd_h_many(&c->bset[s], &t[k], 1, x, T, &hs[k]);
        }
        if (c->same_read_back)
            memcpy(h + READ_BACK * nper + k0, h0, (size_t)m * sizeof *h0);
        else
            bgnbd_h_many(&c->bset[READ_BACK], t, (size_t)m, x, T, h + READ_BACK * nper + k0);
    }
}

/* cltv_value from the h terms, with the same operations in the same order. */
static double value_from(const bgnbd_params *b, const gg_params *g, const double *h,
                         const double *disc, int nper, double x, double m, double alive)
{
    double spend = gg_expected_spend(g, x, m), v = 0, prev = 0;
    for (int k = 0; k < nper; k++) {
        double e = bgnbd_expected_from(b, h[k], x, alive);
        v += (e - prev) * spend / disc[k];
        prev = e;
    }
    return v;
}

static rfm_status check_predict(double x, double t_x, double T, double m, double H, double d,
                                char *err, size_t errlen)
{
    const char *why = cltv_check(x, t_x, T, m);
    if (why)
        return rfm_fail(err, errlen, RFM_EINVAL, "%s", why);
    if (!(H > 0 && H <= 36500))
        return rfm_fail(err, errlen, RFM_EINVAL, "horizon_days must be in (0, 36500]");
    if (!(d >= 0 && d < 1))
        return rfm_fail(err, errlen, RFM_EINVAL, "discount_rate must be in [0, 1) per 30 days");
    return RFM_OK;
}

/* The interval's variance from the gradient of log value. */
static void set_interval(const cltv_model *c, const double grad[7], double v, cltv_prediction *out)
{
    double var = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            var += grad[i] * c->bg.cov_log[i * 4 + j] * grad[j];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            var += grad[4 + i] * c->gg.cov_log[i * 3 + j] * grad[4 + j];
    double se = var > 0 ? sqrt(var) : 0;
    out->lower = v * exp(-1.96 * se);
    out->upper = v * exp(1.96 * se);
}

/* The prediction from the h terms and discounts. */
static void predict_from(const cltv_model *c, const double *h, const double *disc, int nper,
                         double x, double t_x, double T, double m, int interval,
                         cltv_prediction *out)
{
    double alive[NSETS];
    for (int s = 0; s < (interval ? NSETS : 1); s++)
        alive[s] = bgnbd_p_alive(&c->bset[s], x, t_x, T);
    const bgnbd_params *b = &c->bset[0];
    out->p_alive = alive[0];
    /* bgnbd_expected at H: the last period ends at H. */
    out->expected_purchases = bgnbd_expected_from(b, h[nper - 1], x, alive[0]);
    out->expected_avg_spend = gg_expected_spend(&c->gval[0], x, m);
    double v = out->cltv = value_from(b, &c->gval[0], h, disc, nper, x, m, alive[0]);
    out->lower = out->upper = v;
    if (!interval) {
        out->lower = out->upper = NAN;
        return;
    }
    if (!(v > 0))
        return;
    /* Delta method on log v over u = (log r, log alpha, log a, log b,
     * log p, log q, log v): central differences, block-diagonal covariance. */
    double grad[7];
    for (int k = 0; k < 7; k++) {
        double vs[2];
        for (int side = 0; side < 2; side++) {
            int j = 1 + 7 * side + k, s = SET_OF[j];
            vs[side] = value_from(&c->bset[s], &c->gval[j], h + (size_t)s * (size_t)nper, disc,
                                  nper, x, m, alive[s]);
        }
        grad[k] = vs[0] > 0 && vs[1] > 0 ? (log(vs[0]) - log(vs[1])) / (2 * DELTA_H) : 0;
    }
    set_interval(c, grad, v, out);
}

/* ---- the h terms kept by (x, T) ---------------------------------------------- */

struct cltv_cache {
    const cltv_model *c;
    double H, d;
    int nper, nsets; /* sets kept: NSETS, or 1 for the point figures alone */
    double *disc;    /* nper */
    size_t cap, n;   /* slots (a power of 2), entries */
    size_t max_n;    /* entries at most; beyond, computed and not kept */
    double *key;     /* 2 per slot: x, T */
    unsigned char *full;
    double *h;       /* nsets * nper per slot */
    double *scratch; /* nsets * nper, for the entries not kept */
};

rfm_status cltv_cache_new(const cltv_model *c, double horizon_days, double discount_rate,
                          int interval, size_t max_bytes, cltv_cache **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    rfm_status st = check_predict(0, 0, 0, 0, horizon_days, discount_rate, err, errlen);
    if (st != RFM_OK)
        return st;
    cltv_cache *k = calloc(1, sizeof *k);
    if (!k)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    k->c = c, k->H = horizon_days, k->d = discount_rate;
    k->nper = periods(horizon_days);
    k->nsets = interval ? NSETS : 1;
    size_t per = (size_t)k->nsets * (size_t)k->nper * sizeof(double) + 2 * sizeof(double) + 1;
    k->max_n = max_bytes / per / 2; /* the table is at most half full */
    k->disc = malloc((size_t)k->nper * sizeof *k->disc);
    k->scratch = malloc((size_t)k->nsets * (size_t)k->nper * sizeof *k->scratch);
    if (!k->disc || !k->scratch) {
        cltv_cache_free(k);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    discounts(horizon_days, discount_rate, k->nper, k->disc);
    *out = k;
    return RFM_OK;
}

void cltv_cache_free(cltv_cache *k)
{
    if (!k)
        return;
    free(k->disc), free(k->scratch), free(k->key), free(k->full), free(k->h);
    free(k);
}

static size_t slot_of(double x, double T, size_t mask)
{
    uint64_t a, b;
    memcpy(&a, &x, sizeof a);
    memcpy(&b, &T, sizeof b);
    uint64_t z = (a * 0x9E3779B97F4A7C15ull) ^ (b + 0x632BE59BD9B4E019ull);
    z ^= z >> 31;
    z *= 0xBF58476D1CE4E5B9ull;
    z ^= z >> 29;
    return (size_t)z & mask;
}

/* Double the table (to 1024 slots at first); 0 when out of memory (the
 * table is unchanged). */
static int grow(cltv_cache *k)
{
    size_t cap = k->cap ? 2 * k->cap : 1024, per = (size_t)k->nsets * (size_t)k->nper;
    double *key = malloc(2 * cap * sizeof *key), *h = malloc(cap * per * sizeof *h);
    unsigned char *full = calloc(cap, 1);
    if (!key || !h || !full) {
        free(key), free(h), free(full);
        return 0;
    }
    for (size_t i = 0; i < k->cap; i++) {
        if (!k->full[i])
            continue;
        size_t j = slot_of(k->key[2 * i], k->key[2 * i + 1], cap - 1);
        while (full[j])
            j = (j + 1) & (cap - 1);
        full[j] = 1;
        key[2 * j] = k->key[2 * i], key[2 * j + 1] = k->key[2 * i + 1];
        memcpy(h + j * per, k->h + i * per, per * sizeof *h);
    }
    free(k->key), free(k->h), free(k->full);
    k->key = key, k->h = h, k->full = full, k->cap = cap;
    return 1;
}

/* The h terms of (x, T): kept ones, else computed (and kept when there is
 * room). */
static const double *cached_h(cltv_cache *k, double x, double T)
{
    size_t per = (size_t)k->nsets * (size_t)k->nper, j = 0;
    if (k->cap) {
        for (j = slot_of(x, T, k->cap - 1); k->full[j]; j = (j + 1) & (k->cap - 1))
            if (k->key[2 * j] == x && k->key[2 * j + 1] == T)
                return k->h + j * per;
    }
    if (k->n >= k->max_n && k->cap) { /* full: start again (as_of moves T every day) */
        memset(k->full, 0, k->cap);
        k->n = 0;
    }
    if (k->n >= k->max_n || (2 * (k->n + 1) > k->cap && !grow(k))) {
        h_terms(k->c, x, T, k->H, k->nper, k->nsets, k->scratch);
        return k->scratch;
    }
    for (j = slot_of(x, T, k->cap - 1); k->full[j]; j = (j + 1) & (k->cap - 1))
        ;
    k->full[j] = 1, k->n++;
    k->key[2 * j] = x, k->key[2 * j + 1] = T;
    h_terms(k->c, x, T, k->H, k->nper, k->nsets, k->h + j * per);
    return k->h + j * per;
}

void cltv_cache_prefetch(const cltv_cache *k, double x, double T)
{
    if (!k || !k->cap)
        return;
    /* The slot x and T hash to: where they are, unless a collision moved
     * them on (then this only wasted a little bandwidth). */
    size_t j = slot_of(x, T, k->cap - 1), per = (size_t)k->nsets * (size_t)k->nper;
    __builtin_prefetch(&k->key[2 * j]);
    __builtin_prefetch(&k->full[j]);
    const char *h = (const char *)(k->h + j * per);
    for (size_t b = 0; b < per * sizeof *k->h; b += 64)
        __builtin_prefetch(h + b);
}

rfm_status cltv_predict_cached(const cltv_model *c, cltv_cache *k, double x, double t_x, double T,
                               double m, double H, double d, int interval, cltv_prediction *out,
                               char *err, size_t errlen)
{
    rfm_status st = check_predict(x, t_x, T, m, H, d, err, errlen);
    if (st != RFM_OK)
        return st;
    if (k && k->c == c && k->H == H && k->d == d && (!interval || k->nsets == NSETS)) {
        predict_from(c, cached_h(k, x, T), k->disc, k->nper, x, t_x, T, m, interval, out);
        return RFM_OK;
    }
    /* Uncached: the terms on the stack, for the longest horizon (36,500
     * days, 1,217 periods: 107 KiB), so a prediction never allocates. */
    enum { MAX_PERIODS = 1217 };
    double h[(NSETS + 1) * MAX_PERIODS];
    int nper = periods(H);
    double *disc = h + (size_t)NSETS * (size_t)nper;
    discounts(H, d, nper, disc);
    h_terms(c, x, T, H, nper, interval ? NSETS : 1, h); /* the point figures read set 0 alone */
    predict_from(c, h, disc, nper, x, t_x, T, m, interval, out);
    return RFM_OK;
}

rfm_status cltv_predict(const cltv_model *c, double x, double t_x, double T, double m, double H,
                        double d, cltv_prediction *out, char *err, size_t errlen)
{
    return cltv_predict_cached(c, NULL, x, t_x, T, m, H, d, 1, out, err, errlen);
}

rfm_status cltv_predict_plain(const cltv_model *c, double x, double t_x, double T, double m,
                              double H, double d, cltv_prediction *out, char *err, size_t errlen)
{
    rfm_status st = check_predict(x, t_x, T, m, H, d, err, errlen);
    if (st != RFM_OK)
        return st;
    const bgnbd_params *b = &c->bg.p;
    const gg_params *g = &c->gg.p;
    out->p_alive = bgnbd_p_alive(b, x, t_x, T);
    out->expected_purchases = bgnbd_expected(b, H, x, t_x, T);
    out->expected_avg_spend = gg_expected_spend(g, x, m);
    double v = out->cltv = cltv_value(b, g, x, t_x, T, m, H, d);
    out->lower = out->upper = v;
    if (!(v > 0))
        return RFM_OK;
    double u[7] = {log(b->r), log(b->alpha), log(b->a), log(b->b), log(g->p), log(g->q), log(g->v)};
    double grad[7];
    for (int k = 0; k < 7; k++) {
        double vs[2];
        for (int side = 0; side < 2; side++) {
            double uu[7];
            memcpy(uu, u, sizeof uu);
            uu[k] += side ? -DELTA_H : DELTA_H;
            bgnbd_params bb = {exp(uu[0]), exp(uu[1]), exp(uu[2]), exp(uu[3])};
            gg_params gg = {exp(uu[4]), exp(uu[5]), exp(uu[6])};
            vs[side] = cltv_value(&bb, &gg, x, t_x, T, m, H, d);
        }
        grad[k] = vs[0] > 0 && vs[1] > 0 ? (log(vs[0]) - log(vs[1])) / (2 * DELTA_H) : 0;
    }
    set_interval(c, grad, v, out);
    return RFM_OK;
}

typedef struct {
    const double *x, *t_x, *T, *m;
    size_t n;
    const cltv_options *opt;
    cltv_model *c;
    rfm_status st;
    char err[RFM_ERRLEN];
} job;

static void *fit_gg(void *p)
{
    job *j = p;
    gg_row *rows;
    size_t nr;
    j->st = gg_compress(j->x, j->m, j->n, &rows, &nr, j->err, sizeof j->err);
    if (j->st == RFM_OK) {
        j->st = gg_fit(rows, nr, j->opt->penalizer_coef, &j->c->gg, j->err, sizeof j->err);
        free(rows);
    }
    return NULL;
}

rfm_status cltv_fit(const double *x, const double *t_x, const double *T, const double *m, size_t n,
                    const cltv_options *opt, cltv_model **out, char *err, size_t errlen)
{
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *why = cltv_check(x[i], t_x[i], T[i], m[i]);
        if (why)
            return rfm_fail(err, errlen, RFM_EINVAL, "customer %zu: %s", i, why);
    }
    cltv_model *c = calloc(1, sizeof *c);
    if (!c)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    job gj = {x, t_x, T, m, n, opt, c, RFM_OK, ""};
    pthread_t th;
    int threaded = pthread_create(&th, NULL, fit_gg, &gj) == 0;
    if (!threaded)
        fit_gg(&gj);
    bgnbd_row *rows;
    size_t nr;
    char e2[RFM_ERRLEN] = "";
    rfm_status st = bgnbd_compress(x, t_x, T, n, &rows, &nr, e2, sizeof e2);
    if (st == RFM_OK) {
        st = bgnbd_fit(rows, nr, opt->penalizer_coef, &c->bg, e2, sizeof e2);
        free(rows);
    }
    if (threaded)
        pthread_join(th, NULL);
    if (st != RFM_OK || gj.st != RFM_OK) {
        rfm_status bad = st != RFM_OK ? st : gj.st;
        rfm_fail(err, errlen, bad, "%s%s",
                 st != RFM_OK ? "BG/NBD: " : "Gamma-Gamma: ", st != RFM_OK ? e2 : gj.err);
        free(c);
        return bad;
    }
    derive(c);
    *out = c;
    return RFM_OK;
}

void cltv_free(cltv_model *c) { free(c); }
const bgnbd_fit_result *cltv_bgnbd(const cltv_model *c) { return &c->bg; }
const gg_fit_result *cltv_gg(const cltv_model *c) { return &c->gg; }

static json_t *params_json(const char *const *names, const double *val, const double *se,
                           const double *lo, const double *hi, int n)
{
    json_t *o = json_object(), *ses = json_object(), *ci = json_object();
    for (int k = 0; k < n; k++) {
        json_object_set_new(o, names[k], json_real(val[k]));
        json_object_set_new(ses, names[k], json_real(se[k]));
        json_object_set_new(ci, names[k], json_pack("[f,f]", lo[k], hi[k]));
    }
    json_object_set_new(o, "standard_errors", ses);
    json_object_set_new(o, "ci95", ci);
    return o;
}

/* Add the members of src (stolen) to dst. */
static void merge(json_t *dst, json_t *src)
{
    json_object_update(dst, src);
    json_decref(src);
}

static const char *const BGN[4] = {"r", "alpha", "a", "b"};
static const char *const GGN[3] = {"p", "q", "v"};

rfm_status cltv_to_json(const cltv_model *c, json_t **out, char *err, size_t errlen)
{
    const bgnbd_fit_result *b = &c->bg;
    const gg_fit_result *g = &c->gg;
    double bv[4] = {b->p.r, b->p.alpha, b->p.a, b->p.b}, gv[3] = {g->p.p, g->p.q, g->p.v};
    json_t *bj = params_json(BGN, bv, b->se, b->lo, b->hi, 4);
    json_t *gj = params_json(GGN, gv, g->se, g->lo, g->hi, 3);
    json_object_set_new(bj, "cov_log_params", jsonx_from_doubles(b->cov_log, 16));
    json_object_set_new(gj, "cov_log_params", jsonx_from_doubles(g->cov_log, 9));
    merge(bj, json_pack("{s:f,s:f,s:b,s:i,s:f,s:I,s:I}", "log_likelihood", b->loglik,
                        "penalizer_coef", b->penalizer, "converged", b->converged, "iterations",
                        b->iterations, "gradient_norm", b->grad_norm, "customers",
                        (json_int_t)b->customers, "distinct_rows", (json_int_t)b->rows));
    merge(gj, json_pack("{s:f,s:f,s:b,s:i,s:f,s:I,s:I,s:f}", "log_likelihood", g->loglik,
                        "penalizer_coef", g->penalizer, "converged", g->converged, "iterations",
                        g->iterations, "gradient_norm", g->grad_norm, "customers",
                        (json_int_t)g->customers, "distinct_rows", (json_int_t)g->rows,
                        "corr_frequency_spend", g->corr_freq_spend));
    json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:o}", "model", "cltv", "version", CLTV_VERSION,
                          "time_unit", "days", "bgnbd", bj, "gamma_gamma", gj);
    if (!j)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory writing the cltv model");
    *out = j;
    return RFM_OK;
}

rfm_status cltv_from_json(const json_t *j, cltv_model **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *W = "cltv.json", *s;
    const json_t *bj, *gj;
    rfm_status st;
    if ((st = jsonx_string(j, "version", W, &s, err, errlen)))
        return st;
    if (strncmp(s, "1.", 2) != 0)
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "%s: version %s is not readable by this build; retrain with "
                        "bin/rfm-train --only cltv",
                        W, s);
    if ((st = jsonx_object(j, "bgnbd", W, &bj, err, errlen)) ||
        (st = jsonx_object(j, "gamma_gamma", W, &gj, err, errlen)))
        return st;
    cltv_model *c = calloc(1, sizeof *c);
    if (!c)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    double bv[4], gv[3];
    for (int k = 0; k < 4 && !st; k++)
        st = jsonx_number(bj, BGN[k], "cltv.json: bgnbd", &bv[k], err, errlen);
    for (int k = 0; k < 3 && !st; k++)
        st = jsonx_number(gj, GGN[k], "cltv.json: gamma_gamma", &gv[k], err, errlen);
    if (!st)
        st =
            jsonx_numbers(bj, "cov_log_params", "cltv.json: bgnbd", c->bg.cov_log, 16, err, errlen);
    if (!st)
        st = jsonx_numbers(gj, "cov_log_params", "cltv.json: gamma_gamma", c->gg.cov_log, 9, err,
                           errlen);
    for (int k = 0; k < 4 && !st; k++)
        if (!(bv[k] > 0))
            st = rfm_fail(err, errlen, RFM_EFORMAT, "cltv.json: bgnbd.%s must be > 0", BGN[k]);
    for (int k = 0; k < 3 && !st; k++)
        if (!(gv[k] > 0))
            st =
                rfm_fail(err, errlen, RFM_EFORMAT, "cltv.json: gamma_gamma.%s must be > 0", GGN[k]);
    if (st) {
        free(c);
        return st;
    }
    c->bg.p = (bgnbd_params){bv[0], bv[1], bv[2], bv[3]};
    c->gg.p = (gg_params){gv[0], gv[1], gv[2]};
    const json_t *v;
    if ((v = json_object_get(bj, "log_likelihood")) && json_is_number(v))
        c->bg.loglik = json_number_value(v);
    if ((v = json_object_get(gj, "log_likelihood")) && json_is_number(v))
        c->gg.loglik = json_number_value(v);
    derive(c);
    *out = c;
    return RFM_OK;
}

/* The holdout's purchase days by day after the cut, for the customers
 * active at it (txn_each_purchase's walk). */
typedef struct {
    const txn_features *f;
    int32_t cut, snap;
    double *by_day; /* snap - cut entries */
} track_walk;

static int track_day_fn(void *user, size_t cust, int32_t day, double spend)
{
    (void)spend;
    track_walk *w = user;
    if (w->f[cust].active && day >= w->cut && day < w->snap)
        w->by_day[day - w->cut] += 1.0;
    return 0;
}

static int track_invoice_fn(void *user, size_t cust, uint64_t ih, int32_t day)
{
    (void)user, (void)cust, (void)ih, (void)day;
    return 0;
}

static rfm_status track_holdout(const txn_data *d, const txn_features *f, int32_t cut, int32_t snap,
                                const bgnbd_params *p, const bgnbd_row *rows, size_t nr,
                                cltv_holdout *h, char *err, size_t errlen)
{
    int days = snap - cut;
    int step = days <= 7 * CLTV_TRACK_MAX ? 7 : (days + CLTV_TRACK_MAX - 1) / CLTV_TRACK_MAX;
    track_walk w = {f, cut, snap, calloc((size_t)days, sizeof(double))};
    if (!w.by_day)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for the holdout check");
    txn_each_purchase(d, track_day_fn, track_invoice_fn, &w);
    double actual = 0, tk[CLTV_TRACK_MAX], hk[CLTV_TRACK_MAX];
    int k = 0, t0 = 0;
    for (int t = step < days ? step : days;; t = t + step < days ? t + step : days) {
        for (; t0 < t; t0++)
            actual += w.by_day[t0];
        h->track_day[k] = t, h->track_actual[k] = actual, h->track_predicted[k] = 0;
        tk[k++] = t;
        if (t == days)
            break;
    }
    h->ntrack = k;
    /* The compressed rows: one expectation per distinct history and day,
     * each row's h at every day from one pass over its series and its
     * p_alive once (bgnbd_expected's bits: bgnbd.h), added in the rows'
     * order. */
    for (size_t i = 0; i < nr; i++) {
        bgnbd_h_many(p, tk, (size_t)k, rows[i].x, rows[i].T, hk);
        double alive = bgnbd_p_alive(p, rows[i].x, rows[i].t_x, rows[i].T);
        for (int j = 0; j < k; j++)
            h->track_predicted[j] += rows[i].w * bgnbd_expected_from(p, hk[j], rows[i].x, alive);
    }
    free(w.by_day);
    return RFM_OK;
}

rfm_status cltv_holdout_check(const txn_data *d, int holdout_days, double penalizer,
                              cltv_holdout *h, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    int32_t snap = txn_snapshot_day(d), cut = snap - holdout_days;
    if (cut <= txn_first_day(d))
        return RFM_OK;
    size_t n = txn_ncustomers(d), m = 0, nr;
    txn_features *f = calloc(n ? n : 1, sizeof *f);
    double *x = malloc((n ? n : 1) * sizeof *x), *tx = malloc((n ? n : 1) * sizeof *tx),
           *T = malloc((n ? n : 1) * sizeof *T), *fut = malloc((n ? n : 1) * sizeof *fut);
    bgnbd_row *rows = NULL;
    bgnbd_fit_result fr;
    rfm_status st;
    if (!f || !x || !tx || !T || !fut) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for the holdout check");
        goto out;
    }
    txn_features_asof(d, cut, f);
    for (size_t i = 0; i < n; i++)
        if (f[i].active) {
            x[m] = f[i].bg_x, tx[m] = f[i].bg_t_x, T[m] = f[i].bg_T;
            fut[m++] = f[i].future_days;
        }
    /* Only purchase counts are checked: BG/NBD alone. */
    h->penalizer = penalizer;
    if ((st = bgnbd_compress(x, tx, T, m, &rows, &nr, err, errlen)) != RFM_OK)
        goto out;
    /* The shorter calibration period often leaves the dropout parameter
     * unidentified (a -> 0); the predicted counts do not depend on it. */
    st = bgnbd_fit(rows, nr, h->penalizer, &fr, err, errlen);
    if (!bgnbd_fit_predicts(st, &fr))
        goto out;
    h->identified = st == RFM_OK;
    st = RFM_OK;
    double se = 0, sq = 0;
    for (size_t i = 0; i < m; i++) {
        double pred = bgnbd_expected(&fr.p, holdout_days, x[i], tx[i], T[i]);
        int g = x[i] >= CLTV_HOLDOUT_GROUPS - 1 ? CLTV_HOLDOUT_GROUPS - 1 : (int)x[i];
        h->n[g]++;
        h->actual[g] += fut[i];
        h->predicted[g] += pred;
        h->total_actual += fut[i];
        h->total_predicted += pred;
        se += fabs(pred - fut[i]);
        sq += (pred - fut[i]) * (pred - fut[i]);
    }
    if ((st = track_holdout(d, f, cut, snap, &fr.p, rows, nr, h, err, errlen)) != RFM_OK)
        goto out;
    h->total_n = m;
    h->mae = m ? se / (double)m : 0;
    h->rmse = m ? sqrt(sq / (double)m) : 0;
    h->days = holdout_days;
    date_format(cut, h->cut);
    h->ok = 1;
out:
    free(rows);
    free(f), free(x), free(tx), free(T), free(fut);
    return st;
}

rfm_status cltv_holdout_json(const cltv_holdout *h, json_t **out, char *err, size_t errlen)
{
    json_t *ho = NULL;
    *out = NULL;
    if (h->ok) {
        json_t *groups = json_array(), *track = json_array();
        for (int g = 0; groups && g < CLTV_HOLDOUT_GROUPS; g++)
            json_array_append_new(groups, json_pack("{s:i,s:I,s:f,s:f}", "repeat_purchases", g,
                                                    "customers", (json_int_t)h->n[g], "actual",
                                                    h->actual[g], "predicted", h->predicted[g]));
        for (int k = 0; track && k < h->ntrack; k++)
            json_array_append_new(track, json_pack("{s:i,s:f,s:f}", "day", h->track_day[k],
                                                   "actual", h->track_actual[k], "predicted",
                                                   h->track_predicted[k]));
        ho = json_pack("{s:s,s:i,s:I,s:f,s:f,s:f,s:f,s:b,s:o,s:o}", "cut", h->cut, "days", h->days,
                       "customers", (json_int_t)h->total_n, "actual", h->total_actual, "predicted",
                       h->total_predicted, "mae", h->mae, "rmse", h->rmse, "identified",
                       h->identified, "by_repeat_purchases", groups, "tracking", track);
        if (!ho)
            return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    if (!(*out = json_pack("{s:o}", "holdout", ho ? ho : json_null())))
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    return RFM_OK;
}

/* Grow each of the summary's five arrays to cap entries; 0 when one fails
 * (the arrays that grew keep their new size, all stay valid). */
static int grow_summary(char ***ids, double **x, double **tx, double **T, double **m, size_t cap)
{
    char **ni = realloc(*ids, cap * sizeof **ids);
    if (!ni)
        return 0;
    *ids = ni;
    double **arr[4] = {x, tx, T, m};
    for (int a = 0; a < 4; a++) {
        double *p = realloc(*arr[a], cap * sizeof **arr[a]);
        if (!p)
            return 0;
        *arr[a] = p;
    }
    return 1;
}

rfm_status cltv_read_summary(const char *path, char ***ids, double **x, double **tx, double **T,
                             double **m, size_t *n, char *sha, char *err, size_t errlen)
{
    *ids = NULL, *x = *tx = *T = *m = NULL, *n = 0;
    csv_reader *r;
    rfm_status st = csv_open(path, &r, err, errlen);
    if (st != RFM_OK)
        return st;
    const csv_field *f;
    size_t nf, cap = 1024, k = 0;
    static const char *const cols[5] = {"customer_id", "frequency", "recency", "T",
                                        "monetary_value"};
    int at[5];
    if (!grow_summary(ids, x, tx, T, m, cap)) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    if ((st = csv_next(r, &f, &nf, err, errlen)) != RFM_OK)
        goto out;
    for (int c = 0; c < 5; c++)
        if ((at[c] = csv_find(f, nf, cols[c])) < 0) {
            st = rfm_fail(err, errlen, RFM_EINVAL,
                          "%s:1: column '%s' not found (header must "
                          "have customer_id,frequency,recency,T,monetary_value)",
                          path, cols[c]);
            goto out;
        }
    while ((st = csv_next(r, &f, &nf, err, errlen)) == RFM_OK && nf > 0) {
        if (k == cap && !grow_summary(ids, x, tx, T, m, cap *= 2)) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            goto out;
        }
        double v[4];
        for (int c = 1; c < 5; c++) {
            char *end;
            const csv_field *fl = &f[at[c]];
            v[c - 1] = strtod(fl->s, &end);
            if (fl->len == 0 || *end || !isfinite(v[c - 1])) {
                st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu:%llu: %s is not a number", path,
                              (unsigned long long)csv_line(r),
                              (unsigned long long)csv_column(r, (size_t)at[c]), cols[c]);
                goto out;
            }
        }
        const char *why = cltv_check(v[0], v[1], v[2], v[3]);
        if (why) {
            st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu: %s", path,
                          (unsigned long long)csv_line(r), why);
            goto out;
        }
        if (!((*ids)[k] = strdup(f[at[0]].s))) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            goto out;
        }
        (*x)[k] = v[0], (*tx)[k] = v[1], (*T)[k] = v[2], (*m)[k] = v[3];
        k++;
    }
    if (st == RFM_OK) {
        uint8_t dg[32];
        csv_sha256(r, dg);
        sha256_hex(dg, sha);
    }
out:
    *n = k;
    csv_close(r);
    return st;
}
