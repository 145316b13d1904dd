/* api.h - the models rfm-serve holds and the handlers of its endpoints.
 * A handler parses nothing and holds no model math: it reads the validated
 * body, calls core/, and returns JSON. Models are loaded once, before the
 * worker threads start, and are read-only afterwards. */
#ifndef RFM_API_H
#define RFM_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "engagement.h"
#include "customers.h"
#include "http.h"
#include "oas.h"
#include "score.h"
#include "status.h"

typedef struct api api;

/* Verify models_dir/manifest.json and every file it lists (a missing,
 * corrupt or mismatched file is an error naming it), then load each model
 * this server knows. A known model absent from the manifest is not an
 * error: its endpoints answer 503. openapi_path is served as is. */
rfm_status api_load(const char *models_dir, const char *openapi_path, api **out, char *err,
                    size_t errlen);
void api_free(api *a);

/* RFM_EINVAL, naming the contract file and the route, when a POST route
 * of a has no operation in spec or no application/json request schema:
 * rfm-serve refuses to start rather than pass unvalidated bodies to the
 * handlers (which still check what their buffers need: k, vector length). */
rfm_status api_check_contract(const api *a, const oas_spec *spec, const char *contract, char *err,
                              size_t errlen);

/* Reference counting for hot reload: api_load returns one reference; each
 * request holds another while it runs; the last api_release frees. */
void api_retain(api *a);
void api_release(api *a);

/* The customer-state store the by-id calls, POST /events and GET
 * /customers/{id} use (NULL: none; the by-id calls read models/
 * customers.csv and the others answer 503). l and events (the kinds and
 * the engagement edges, events: in the config) must outlive a; call
 * before a serves. batch_limit: events per POST /events. */
struct live;
void api_set_live(api *a, struct live *l, size_t batch_limit, const engagement_options *events);

/* A readiness condition beyond the models (the Kafka consumer's lag): fn
 * returns NULL when ready, else why not (in buf, or static), and /ready
 * then answers 503 with it as "reason". fn must be thread-safe and ctx
 * outlive a; call before a serves. */
void api_set_not_ready(api *a, const char *(*fn)(void *ctx, char *buf, size_t len), void *ctx);

/* Score customer id from the live state as of the end of day asof with
 * the segments and churn models (those trained): 0, or 404 / 503 / 422
 * with msg. *scores (new reference) gets what a feed record carries:
 * recency, frequency, monetary, rfm_score, rfm_segment, cluster, segment,
 * churn_probability, churn_risk (scores NULL: not built). out's labels borrow from a's
 * models; out has no churn explanation (SCORE_CHURN_POINT). */
int api_score_id(const api *a, const char *id, int32_t asof, score_result *out, json_t **scores,
                 char *msg, size_t len);
/* The erasure list (erasure.h; NULL: none, DELETE /customers/{id} then
 * answers 503) that by-id lookups and lookalike answers consult, and
 * whether ids are pseudonyms. e must outlive a; call before a serves. */
struct erasure;
void api_set_erasure(api *a, struct erasure *e, int pseudonymous);

/* The answer of the routes streamed as they are made (http_provider's
 * respond; user is an api): GET /exports/customers.csv, the CSV of
 * rfm-score (core/files/bulk.h) with the query's filters. */
void *api_respond(void *user, const char *path, void *connection, int *status, char *msg,
                  size_t msglen);

/* The uplift gains GET /exports/customers.csv?by=uplift_gain ranks by
 * (core/models/gains.h): the rows of the campaign file that name a
 * customer in id_column, scored by a's uplift model with value and cost;
 * *with_gain gets how many have one. RFM_ENOTFOUND without an uplift
 * model, else gains_load's errors. Call before a serves. */
rfm_status api_load_gains(api *a, const char *campaign, const char *id_column, double value,
                          double cost, size_t *with_gain, char *err, size_t errlen);

/* The route table (owned by a). */
const http_route *api_routes(const api *a, size_t *n);
/* The manifest and the customers table loaded (owned by a; the table is
 * NULL when no customers were trained). */
const json_t *api_manifest(const api *a);
const customers *api_customers(const api *a);
/* "segments 1.0.0, ..." for the start-up line. */
void api_describe(const api *a, char *buf, size_t len);

#endif
