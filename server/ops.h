/* ops.h - the operational side of rfm-serve: Prometheus metrics (requests,
 * latency, requests in flight, model versions, uptime, input drift), the
 * per-token rate limit, SIGHUP reloads, and the built-in pages GET /metrics
 * and GET /docs.
 *
 * http.c calls in at fixed points of each request (route lookup, token
 * accepted, body validated, request completed); everything here is per
 * server, nothing global.
 *
 * Labels: endpoint is a path of openapi.yaml, or "other" for any path it
 * does not list, so clients cannot grow the label set; status is the HTTP
 * status sent ("0" when the connection ended before any reply).
 *
 * Threads: every entry point may be called from the worker pool at once.
 * Counters are atomic; model info and drift state hang off a generation
 * pointer swapped by ops_set_models (hot reload) under a mutex. Retired
 * generations are freed only by ops_free, since a request may still be
 * counting into one; each is a few kilobytes, and reloads are rare.
 */
#ifndef RFM_OPS_H
#define RFM_OPS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "customers.h"
#include "oas.h"
#include "status.h"

typedef struct ops ops;

enum { OPS_NONE = 0, OPS_METRICS, OPS_DOCS };

/* Counters for each path of spec, the rate limit of opt (off when
 * opt->rate_per_second is 0) and the /docs page rendered from spec. opt
 * and spec must outlive the result. */
rfm_status ops_new(const server_options *opt, const oas_spec *spec, ops **out, char *err,
                   size_t errlen);
void ops_free(ops *o);

/* The models now serving: rfm_model_info from manifest's models and
 * versions, and the drift reference (decile bins of the training
 * customers' recency, frequency and monetary) from c (NULL or without RFM
 * columns: no drift metrics). Starts a new drift window. Callable while
 * serving; on failure the previous models' metrics stay. */
rfm_status ops_set_models(ops *o, const json_t *manifest, const customers *c, char *err,
                          size_t errlen);

/* A SIGHUP reload ended: ok (the new models now serve) or refused (the old
 * ones still do). Counted in rfm_reload_total{result="ok|refused"}; an ok
 * one also sets rfm_reload_last_success_timestamp_seconds to now (which
 * starts at the start-up load). Callable from any thread. */
void ops_reload_done(ops *o, int ok);

/* OPS_METRICS or OPS_DOCS when method (GET; HEAD is the caller's to map)
 * and path name a built-in page, else OPS_NONE. */
int ops_route(const ops *o, const char *method, const char *path);
/* Whether the built-in page needs a bearer token (config). */
int ops_needs_token(const ops *o, int route);
/* The page's body (new string, caller frees; NULL when out of memory),
 * its length and media type. inflight: requests being served now. */
char *ops_page(ops *o, int route, long inflight, size_t *len, const char **type);

/* Rate limit for the token with this sha256: 0 to go on, else the whole
 * seconds (>= 1) the client should wait (Retry-After). */
int ops_admit(ops *o, const uint8_t digest[32]);

/* A validated request body for path: its customers' features feed the
 * drift window when path is a drift endpoint (/segment, /predict_churn).
 * Customers given by customer_id only are not counted. */
void ops_observe(ops *o, const char *path, const json_t *body);
/* The same for a flat body read without a tree (oas_flat_read): f's
 * names and their values v (NAN: absent). */
void ops_observe_flat(ops *o, const char *path, const oas_flat *f, const double *v);

/* Metrics of another part (the state store) appended to GET /metrics by
 * fn, which must be thread-safe. Call before serving. */
void ops_set_extra(ops *o, void (*fn)(void *ctx, FILE *f), void *ctx);

/* The /ui/ app's files (ui.h; NULL: none installed), served by http.c
 * without a token. u must outlive o's server; set before serving. */
struct ui_assets;
void ops_set_ui(ops *o, const struct ui_assets *u);
const struct ui_assets *ops_ui(const ops *o);
/* The names of the accepted tokens (http_tokens.names; they must outlive
 * o), for rfm_http_requests_by_token_total{token,class}. Call before
 * serving. */
rfm_status ops_set_tokens(ops *o, const char (*names)[33], size_t n, char *err, size_t errlen);
/* A request that token i (of ops_set_tokens) was accepted for finished
 * with status: counted by the token's name and the status class. */
void ops_token_done(ops *o, size_t i, int status);

/* A request finished: count it by endpoint and status, and its latency. */
void ops_request_done(ops *o, const char *path, int status, double seconds);

#endif
