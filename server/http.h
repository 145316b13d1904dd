/* http.h - the HTTP layer of rfm-serve: libmicrohttpd glue, auth, body
 * limits, strict JSON parsing, validation against openapi.yaml, one error
 * shape, batching and the access log. Handlers see a validated JSON body
 * and return JSON; they never touch HTTP.
 *
 * Threads: libmicrohttpd's pool calls in on several threads at once. Every
 * structure reachable from http_server is read-only after http_start,
 * except the counters, which are atomic.
 */
#ifndef RFM_HTTP_H
#define RFM_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "alog.h"
#include "config.h"
#include "guard.h"
#include "oas.h"
#include "ops.h"

/* A handler fills *out (new reference) and returns an HTTP status. For an
 * error status it leaves *out NULL and writes the message into msg (the
 * reply then has the error shape); a GET handler may instead return a
 * non-200 status with its own *out. 200 with *out NULL means building the
 * reply ran out of memory: the client gets 503. A GET or DELETE handler
 * (body: {"id", "as_of"} from the path and query) may return 204 with *out
 * NULL: no content. With server_options.id_key every "customer_id" of a
 * body and the path's {id} reach the handler as pseudonyms. */
typedef int (*http_handler)(void *user, const json_t *body, json_t **out, char *msg, size_t msglen);

typedef struct {
    const char *method; /* "GET", "POST", "DELETE" */
    const char *path;
    http_handler fn;
    int batch; /* HTTP_ONE, HTTP_ONE_OR_OLD_BATCH or HTTP_BATCH, below */
    /* For GET: a fixed body computed at start (fn may then be NULL). */
    const char *fixed_body;
    const char *fixed_type;
    size_t fixed_len;
    /* The handler may wait long (POST /events: the group commit): its body
     * runs on a separate thread while the connection is suspended, so the
     * libmicrohttpd thread goes on serving other connections. */
    int waits;
    /* Optional (POST /events): the body's text answered without a JSON
     * tree. Returns 0 for a body it leaves to the general path (depth,
     * strict JSON, schema, fn), else the status with *out or msg as fn's;
     * it must answer only bodies the general path would answer the same.
     * Not used with server_options.id_key (pseudonyms need the tree). */
    int (*raw)(void *user, const char *text, size_t len, json_t **out, char *msg, size_t msglen);
    /* Optional, for GET of a templated path instead of fn (GET
     * /customers/{id}): the path's segment (id: percent-decoded, its
     * pseudonym with server_options.id_key) and the as_of query argument
     * (NULL: none), without a tree for them, and the reply's JSON text
     * made without a tree (jsonw). As fn, with *out a new string of
     * *outlen bytes the server frees (NULL: msg and the error shape; 200
     * with NULL: out of memory, 503). */
    int (*text)(void *user, const char *id, const char *as_of, char **out, size_t *outlen,
                char *msg, size_t msglen);
    /* Optional (POST /segment): a body that is a flat object of the
     * request schema (oas_flat_read: of numbers, oas_op.flat, or with a
     * string such as customer_id, oas_op.flat_str) answered from its
     * values, v[i] and str[i] for f->name[i] (NAN / NULL: absent), without
     * a tree or the validator: 200 with the reply as a tree in *out or as
     * JSON text in *text (a new string of *tlen bytes, the bytes fn's tree
     * would dump to). Any other status sends the body down the general
     * path, which answers it with its details; so must fn give the same
     * 200. Not used with server_options.id_key. */
    int (*flat)(void *user, const oas_flat *f, const double *v, const oas_str *str, json_t **out,
                char **text, size_t *tlen, char *msg, size_t msglen);
} http_route;

/* How a POST route takes batches. HTTP_BATCH: the route is a batch
 * operation; its body is {"customers": [...]}, the handler runs on each
 * item and the reply is {"results": [...]}. HTTP_ONE_OR_OLD_BATCH: the
 * route takes one customer, but a body with a "customers" member is the
 * deprecated batch form of the time before the batch operations: it is
 * held to the schemas of the operation at rt->path + "/batch" and answered
 * as that operation answers it. HTTP_ONE: the body is the handler's. */
enum { HTTP_ONE = 0, HTTP_ONE_OR_OLD_BATCH = 1, HTTP_BATCH = 2 };

typedef struct http_server http_server;

/* Accepted tokens: digest, name (for the access log and metrics) and
 * scopes (RFM_SCOPE_* bits) of each. */
typedef struct {
    uint8_t (*digests)[32];
    unsigned *scopes;
    char (*names)[33];
    size_t n;
} http_tokens;
/* From the config (server.tokens: named and scoped; server.tokens_sha256:
 * every scope, named by fingerprint) and env, the value of RFM_API_TOKENS
 * (may be NULL): "tok1:score+events,tok2", a token without a ":scopes"
 * suffix having every scope, named by its fingerprint (the first 8 hex
 * digits of its sha256). An unknown scope fails with a message that does
 * not carry the token. */
rfm_status http_tokens_init(http_tokens *t, const server_options *o, const char *env, char *err,
                            size_t errlen);
void http_tokens_free(http_tokens *t);

/* Where a request finds its models and routes. acquire() is called once
 * per request, when its headers arrive, and returns a lease that release()
 * gets back when the request completes: a hot reload swaps what acquire()
 * hands out, while requests in flight keep the models they started with. */
/* A streaming GET route answered outside the JSON cycle (GET /feed:
 * Server-Sent Events). After the token check of its operation in the
 * contract, respond(ctx, connection, last_event_id, ...) gets the
 * libmicrohttpd connection (struct MHD_Connection *) and the Last-Event-ID
 * header (else the last_event_id query parameter; may be NULL) and returns
 * a response (struct MHD_Response *) to send with 200, or NULL with
 * *status and msg for the error shape. stop(ctx) is called first in
 * http_stop: the streams must then end, or the drain waits for them. */
typedef struct {
    const char *path;
    void *(*respond)(void *ctx, void *connection, const char *last_event_id, int *status, char *msg,
                     size_t msglen);
    void (*stop)(void *ctx);
    void *ctx;
} http_stream;

typedef struct {
    void *(*acquire)(void *ctx, void **user, const http_route **routes, size_t *nroutes);
    void (*release)(void *ctx, void *lease);
    void *ctx;
    const http_stream *stream; /* NULL: none */
    /* The answer of a GET route with neither fn nor fixed_body: a
     * libmicrohttpd response of its own (a download streamed as it is
     * made: GET /exports/customers.csv). After the token, scope and
     * rate-limit checks, respond(user, path, connection, ...) gets the
     * request's user (acquire), the route's path and the struct
     * MHD_Connection * (for the query), and returns a struct MHD_Response *
     * to send with 200, or NULL with *status and msg for the error shape.
     * NULL: such routes answer 503. */
    void *(*respond)(void *user, const char *path, void *connection, int *status, char *msg,
                     size_t msglen);
} http_provider;

/* The body stage of a POST to rt, without HTTP: nesting depth and JSON
 * syntax (400), batch size (413), schema (422), then the handler on the
 * body or on each item of a batch. Returns the status; *reply (new
 * reference) is the body to send: the handler's result on 200, else the
 * error shape. *reply is NULL only when out of memory. text need not be
 * NUL-terminated. A valid body is shown to o (drift) unless o is NULL.
 * Thread-safe as far as the handlers are. */
int http_answer_json(const server_options *opt, const oas_spec *spec, ops *o, const http_route *rt,
                     void *user, const char *text, size_t len, json_t **reply);

/* The path of the operation of the contract whose schemas a POST of body
 * to rt is held to: rt->path, or for the deprecated batch form (see
 * HTTP_ONE_OR_OLD_BATCH) rt->path + "/batch", written into buf. body may
 * be NULL (not parsed): rt->path. Returns rt->path or buf. */
const char *http_operation_path(const http_route *rt, const json_t *body, char *buf, size_t len);

/* Start listening, over HTTPS when opt has tls_cert_file and tls_key_file.
 * o (metrics, rate limit, /metrics and /docs; may be NULL), access_log
 * (one line per request; may be NULL: none) and prov (and what it hands
 * out) must outlive the server.
 * On success *out is running; *port_out gets the port bound (useful with
 * port 0). */
rfm_status http_start(const server_options *opt, const oas_spec *spec, const http_tokens *tokens,
                      const http_provider *prov, ops *o, alog *access_log, http_server **out,
                      int *port_out, char *err, size_t errlen);
/* Connections open now, and those the guard closed so far (guard.h). */
guard_counts http_guard_counts(http_server *s);

/* Stop accepting, let requests in flight finish (up to grace_s seconds),
 * then stop and free. */
void http_stop(http_server *s, int grace_s);

#endif
