/* ops.c - Prometheus metrics, input drift, per-token rate limit and the
 * /docs page (rendered once by docs.c) of rfm-serve. See ops.h for the
 * threading model. */
#include "ops.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "docs.h"
#include "drift.h"
#include "ratelimit.h"

/* Upper bounds (seconds) of the latency buckets: scoring takes tens of
 * microseconds, a large batch or a stalled client seconds. */
static const double BUCKETS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,   0.1,     0.25,   0.5,   1,      2.5,   10};
#define NBUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])
#define NSTATUS 600

/* The features whose drift is watched, as request fields and as columns
 * of the training customers' table. */
static const char *const FEATURES[] = {"recency", "frequency", "monetary"};
#define NFEATURES 3

typedef struct {
    uint64_t status[NSTATUS];      /* requests by HTTP status (0: no reply) */
    uint64_t bucket[NBUCKETS + 1]; /* latency, not cumulative; last: over the top */
    uint64_t sum_ns;
} endpoint_stats;

/* What depends on the models being served. */
typedef struct generation {
    struct generation *prev; /* retired ones, freed by ops_free */
    char *info;              /* rfm_model_info lines and the like */
    drift_monitor *drift;    /* NULL: no reference distribution */
} generation;

struct ops {
    const server_options *opt;
    size_t nendpoints; /* paths of the spec, then "other" */
    const char **endpoint;
    size_t *endpoint_len; /* strlen of each, compared before the bytes */
    endpoint_stats *stats;
    ratelimit *rl;
    char *docs;
    size_t docs_len;
    double started; /* wall clock, for rfm_process_start_time_seconds */
    uint64_t reload_ok, reload_refused;
    int64_t loaded_ms; /* wall clock of the last successful (re)load, in ms */
    pthread_mutex_t mu;
    generation *gen;                   /* read atomically; replaced under mu */
    void (*extra)(void *ctx, FILE *f); /* more metrics (the state store), or NULL */
    void *extra_ctx;
    const char (*token_names)[33]; /* of the accepted tokens, for metrics */
    size_t ntokens;
    uint64_t (*token_class)[5]; /* requests by token and status class 1xx..5xx */
    const struct ui_assets *ui; /* the /ui/ app, or NULL (not owned) */
};

rfm_status ops_set_tokens(ops *o, const char (*names)[33], size_t n, char *err, size_t errlen)
{
    free(o->token_class);
    o->ntokens = 0;
    o->token_class = calloc(n ? n : 1, sizeof *o->token_class);
    if (!o->token_class)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    o->token_names = names;
    o->ntokens = n;
    return RFM_OK;
}

void ops_token_done(ops *o, size_t i, int status)
{
    if (i < o->ntokens && status >= 100 && status < 600)
        __atomic_add_fetch(&o->token_class[i][status / 100 - 1], 1, __ATOMIC_RELAXED);
}

void ops_set_ui(ops *o, const struct ui_assets *u) { o->ui = u; }

const struct ui_assets *ops_ui(const ops *o) { return o->ui; }

void ops_set_extra(ops *o, void (*fn)(void *ctx, FILE *f), void *ctx)
{
    o->extra = fn;
    o->extra_ctx = ctx;
}

rfm_status ops_new(const server_options *opt, const oas_spec *spec, ops **out, char *err,
                   size_t errlen)
{
    *out = NULL;
    ops *o = calloc(1, sizeof *o);
    if (!o)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    o->opt = opt;
    pthread_mutex_init(&o->mu, NULL);
    const json_t *paths = json_object_get(oas_root(spec), "paths");
    o->nendpoints = json_object_size(paths) + 1;
    o->endpoint = calloc(o->nendpoints, sizeof *o->endpoint);
    o->endpoint_len = calloc(o->nendpoints, sizeof *o->endpoint_len);
    o->stats = calloc(o->nendpoints, sizeof *o->stats);
    if (!o->endpoint || !o->endpoint_len || !o->stats) {
        ops_free(o);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    size_t i = 0;
    const char *path;
    const json_t *item;
    json_object_foreach((json_t *)paths, path, item) o->endpoint[i++] =
        path; /* keys live as long as the spec */
    o->endpoint[i] = "other";
    for (i = 0; i < o->nendpoints; i++)
        o->endpoint_len[i] = strlen(o->endpoint[i]);
    if (opt->rate_per_second > 0 &&
        !(o->rl = ratelimit_new(opt->rate_per_second, opt->rate_burst))) {
        ops_free(o);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    if (!(o->docs = docs_render(spec, &o->docs_len))) {
        ops_free(o);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    o->started = (double)now.tv_sec + now.tv_nsec / 1e9;
    o->loaded_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    *out = o;
    return RFM_OK;
}

void ops_free(ops *o)
{
    if (!o)
        return;
    for (generation *g = o->gen, *p; g; g = p) {
        p = g->prev;
        free(g->info);
        drift_monitor_free(g->drift);
        free(g);
    }
    ratelimit_free(o->rl);
    free(o->token_class);
    free(o->docs);
    free(o->stats);
    free(o->endpoint);
    free(o->endpoint_len);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

/* ---- models and drift -------------------------------------------------- */

/* Label values are quoted strings: escape what the text format asks. */
static void put_label(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f), fputc(*s, f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static double column(const customer_row *r, size_t f)
{
    return f == 0 ? r->recency : f == 1 ? r->frequency : r->monetary;
}

static rfm_status reference(const customers *c, size_t window, drift_monitor **out, char *err,
                            size_t errlen)
{
    *out = NULL;
    size_t n = c ? customers_count(c) : 0;
    if (n == 0)
        return RFM_OK;
    double *v = malloc(n * sizeof *v);
    if (!v)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    drift_bins bins[NFEATURES];
    rfm_status st = RFM_OK;
    for (size_t f = 0; f < NFEATURES && st == RFM_OK; f++) {
        for (size_t i = 0; i < n; i++)
            v[i] = column(customers_row(c, i), f);
        st = drift_bins_build(v, n, &bins[f], err, errlen);
    }
    free(v);
    if (st == RFM_EDATA) /* trained from a summary: no RFM columns, no drift */
        return RFM_OK;
    if (st != RFM_OK)
        return st;
    if (!(*out = drift_monitor_new(bins, NFEATURES, window)))
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    return RFM_OK;
}

rfm_status ops_set_models(ops *o, const json_t *manifest, const customers *c, char *err,
                          size_t errlen)
{
    generation *g = calloc(1, sizeof *g);
    if (!g)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    rfm_status st = reference(c, (size_t)o->opt->drift_window, &g->drift, err, errlen);
    size_t len;
    FILE *f = st == RFM_OK ? open_memstream(&g->info, &len) : NULL;
    if (st == RFM_OK && !f)
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    if (st != RFM_OK) {
        drift_monitor_free(g->drift);
        free(g);
        return st;
    }
    fputs("# HELP rfm_model_info The models being served: name, version and file digest.\n"
          "# TYPE rfm_model_info gauge\n",
          f);
    const char *name;
    const json_t *e;
    json_object_foreach((json_t *)json_object_get(manifest, "models"), name, e)
    {
        const char *ver = json_string_value(json_object_get(e, "version"));
        const char *sha = json_string_value(json_object_get(e, "sha256"));
        fputs("rfm_model_info{model=\"", f);
        put_label(f, name);
        fputs("\",version=\"", f);
        put_label(f, ver ? ver : "");
        fprintf(f, "\",sha256=\"%.12s\"} 1\n", sha ? sha : "");
    }
    const char *created = json_string_value(json_object_get(manifest, "created_at"));
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (created && strptime(created, "%Y-%m-%dT%H:%M:%SZ", &tm))
        fprintf(f,
                "# HELP rfm_models_created_timestamp_seconds When the models served were "
                "trained (manifest created_at).\n"
                "# TYPE rfm_models_created_timestamp_seconds gauge\n"
                "rfm_models_created_timestamp_seconds %lld\n",
                (long long)timegm(&tm));
    if (fclose(f) != 0 || !g->info) {
        drift_monitor_free(g->drift);
        free(g->info);
        free(g);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&o->mu);
    g->prev = o->gen;
    __atomic_store_n(&o->gen, g, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&o->mu);
    return RFM_OK;
}

static int drift_endpoint(const char *path)
{
    return (path[0] == '/' && (path[1] == 's' || path[1] == 'p')) &&
           (strcmp(path, "/segment") == 0 || strcmp(path, "/segment/batch") == 0 ||
            strcmp(path, "/predict_churn") == 0 || strcmp(path, "/predict_churn/batch") == 0);
}

static void observe_one(drift_monitor *m, const json_t *item)
{
    double x[NFEATURES];
    int any = 0;
    for (size_t f = 0; f < NFEATURES; f++) {
        const json_t *v = json_object_get(item, FEATURES[f]);
        x[f] = json_is_number(v) ? json_number_value(v) : NAN;
        any |= json_is_number(v);
    }
    if (any)
        drift_monitor_observe(m, x);
}

void ops_observe(ops *o, const char *path, const json_t *body)
{
    generation *g = __atomic_load_n(&o->gen, __ATOMIC_ACQUIRE);
    if (!g || !g->drift || !drift_endpoint(path) || !json_is_object(body))
        return;
    const json_t *items = json_object_get(body, "customers");
    if (!json_is_array(items)) {
        observe_one(g->drift, body);
        return;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(items, i, item) observe_one(g->drift, item);
}

void ops_observe_flat(ops *o, const char *path, const oas_flat *f, const double *v)
{
    generation *g = __atomic_load_n(&o->gen, __ATOMIC_ACQUIRE);
    if (!g || !g->drift || !drift_endpoint(path))
        return;
    double x[NFEATURES];
    int any = 0;
    for (size_t k = 0; k < NFEATURES; k++) {
        x[k] = NAN;
        for (size_t i = 0; i < f->n; i++)
            if (f->name[i][0] == FEATURES[k][0] && strcmp(f->name[i], FEATURES[k]) == 0 &&
                !isnan(v[i]))
                x[k] = v[i], any = 1;
    }
    if (any)
        drift_monitor_observe(g->drift, x);
}

/* ---- requests ---------------------------------------------------------- */

static size_t endpoint_index(const ops *o, const char *path)
{
    size_t len = strlen(path);
    for (size_t i = 0; i + 1 < o->nendpoints; i++)
        if (o->endpoint_len[i] == len && memcmp(o->endpoint[i], path, len) == 0)
            return i;
    return o->nendpoints - 1;
}

void ops_request_done(ops *o, const char *path, int status, double seconds)
{
    endpoint_stats *s = &o->stats[endpoint_index(o, path)];
    if (status < 0 || status >= NSTATUS)
        status = 0;
    __atomic_add_fetch(&s->status[status], 1, __ATOMIC_RELAXED);
    size_t b = 0;
    while (b < NBUCKETS && seconds > BUCKETS[b])
        b++;
    __atomic_add_fetch(&s->bucket[b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->sum_ns, (uint64_t)(seconds > 0 ? seconds * 1e9 : 0), __ATOMIC_RELAXED);
}

void ops_reload_done(ops *o, int ok)
{
    if (!ok) {
        __atomic_add_fetch(&o->reload_refused, 1, __ATOMIC_RELAXED);
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    __atomic_store_n(&o->loaded_ms, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
                     __ATOMIC_RELAXED);
    __atomic_add_fetch(&o->reload_ok, 1, __ATOMIC_RELAXED);
}

int ops_admit(ops *o, const uint8_t digest[32])
{
    if (!o->rl)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double wait = ratelimit_take(o->rl, digest, (double)now.tv_sec + now.tv_nsec / 1e9);
    if (wait <= 0)
        return 0;
    double s = ceil(wait);
    return s < 1 ? 1 : s > 86400 ? 86400 : (int)s;
}

/* ---- pages ------------------------------------------------------------- */

int ops_route(const ops *o, const char *method, const char *path)
{
    (void)o;
    if (strcmp(method, "GET") != 0)
        return OPS_NONE;
    if (strcmp(path, "/metrics") == 0)
        return OPS_METRICS;
    if (strcmp(path, "/docs") == 0)
        return OPS_DOCS;
    return OPS_NONE;
}

int ops_needs_token(const ops *o, int route)
{
    return route == OPS_METRICS && o->opt->metrics_token_required;
}

static void put_metrics(ops *o, FILE *f, long inflight)
{
    fputs("# HELP rfm_http_requests_total Requests answered, by endpoint (a path of "
          "openapi.yaml, or other) and HTTP status (0: the connection ended first).\n"
          "# TYPE rfm_http_requests_total counter\n",
          f);
    for (size_t i = 0; i < o->nendpoints; i++)
        for (int st = 0; st < NSTATUS; st++) {
            uint64_t n = __atomic_load_n(&o->stats[i].status[st], __ATOMIC_RELAXED);
            if (n)
                fprintf(f, "rfm_http_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                        o->endpoint[i], st, (unsigned long long)n);
        }
    fputs("# HELP rfm_http_requests_by_token_total Requests accepted as coming from a token, by "
          "the token's name (server.tokens) or fingerprint (the first 8 hex digits of its "
          "sha256) and the status class.\n"
          "# TYPE rfm_http_requests_by_token_total counter\n",
          f);
    for (size_t i = 0; i < o->ntokens; i++)
        for (int k = 0; k < 5; k++) {
            uint64_t n = __atomic_load_n(&o->token_class[i][k], __ATOMIC_RELAXED);
            if (n)
                fprintf(f, "rfm_http_requests_by_token_total{token=\"%s\",class=\"%dxx\"} %llu\n",
                        o->token_names[i], k + 1, (unsigned long long)n);
        }
    fputs("# HELP rfm_http_request_duration_seconds Time from the request's headers to its "
          "completion.\n"
          "# TYPE rfm_http_request_duration_seconds histogram\n",
          f);
    for (size_t i = 0; i < o->nendpoints; i++) {
        uint64_t b[NBUCKETS + 1], total = 0;
        for (size_t k = 0; k <= NBUCKETS; k++)
            total += b[k] = __atomic_load_n(&o->stats[i].bucket[k], __ATOMIC_RELAXED);
        if (!total)
            continue;
        uint64_t cum = 0;
        for (size_t k = 0; k < NBUCKETS; k++) {
            cum += b[k];
            fprintf(f, "rfm_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n",
                    o->endpoint[i], BUCKETS[k], (unsigned long long)cum);
        }
        fprintf(f,
                "rfm_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n"
                "rfm_http_request_duration_seconds_sum{endpoint=\"%s\"} %.9f\n"
                "rfm_http_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
                o->endpoint[i], (unsigned long long)total, o->endpoint[i],
                __atomic_load_n(&o->stats[i].sum_ns, __ATOMIC_RELAXED) / 1e9, o->endpoint[i],
                (unsigned long long)total);
    }
    fprintf(f,
            "# HELP rfm_http_requests_in_flight Requests being served now (this one "
            "included).\n"
            "# TYPE rfm_http_requests_in_flight gauge\n"
            "rfm_http_requests_in_flight %ld\n"
            "# HELP rfm_process_start_time_seconds Start time of the process since the epoch.\n"
            "# TYPE rfm_process_start_time_seconds gauge\n"
            "rfm_process_start_time_seconds %.3f\n",
            inflight, o->started);
    fprintf(f,
            "# HELP rfm_reload_total SIGHUP reloads: ok (new models serving) or refused "
            "(missing or corrupt models; the old ones still serve).\n"
            "# TYPE rfm_reload_total counter\n"
            "rfm_reload_total{result=\"ok\"} %llu\n"
            "rfm_reload_total{result=\"refused\"} %llu\n"
            "# HELP rfm_reload_last_success_timestamp_seconds When the models serving now "
            "were loaded (start-up or the last ok reload), since the epoch.\n"
            "# TYPE rfm_reload_last_success_timestamp_seconds gauge\n"
            "rfm_reload_last_success_timestamp_seconds %.3f\n",
            (unsigned long long)__atomic_load_n(&o->reload_ok, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&o->reload_refused, __ATOMIC_RELAXED),
            (double)__atomic_load_n(&o->loaded_ms, __ATOMIC_RELAXED) / 1e3);
    generation *g = __atomic_load_n(&o->gen, __ATOMIC_ACQUIRE);
    if (!g)
        return;
    fputs(g->info, f);
    if (!g->drift)
        return;
    double psi[NFEATURES];
    size_t n[NFEATURES];
    drift_monitor_psi(g->drift, psi, n);
    fputs("# HELP rfm_input_psi Population stability index of recent request features "
          "(/segment, /predict_churn) against the training customers' deciles: < 0.1 stable, "
          "0.1-0.25 moderate, > 0.25 significant shift.\n"
          "# TYPE rfm_input_psi gauge\n",
          f);
    for (size_t k = 0; k < NFEATURES; k++)
        fprintf(f, "rfm_input_psi{feature=\"%s\"} %.6f\n", FEATURES[k], psi[k]);
    fputs("# HELP rfm_input_drift_window Request customers behind rfm_input_psi, per "
          "feature.\n"
          "# TYPE rfm_input_drift_window gauge\n",
          f);
    for (size_t k = 0; k < NFEATURES; k++)
        fprintf(f, "rfm_input_drift_window{feature=\"%s\"} %zu\n", FEATURES[k], n[k]);
}

char *ops_page(ops *o, int route, long inflight, size_t *len, const char **type)
{
    if (route == OPS_DOCS) {
        char *copy = malloc(o->docs_len + 1);
        if (copy)
            memcpy(copy, o->docs, o->docs_len + 1);
        *len = o->docs_len;
        *type = "text/html; charset=utf-8";
        return copy;
    }
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    put_metrics(o, f, inflight);
    if (o->extra)
        o->extra(o->extra_ctx, f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    *type = "text/plain; version=0.0.4; charset=utf-8";
    return buf;
}
