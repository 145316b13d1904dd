/* http.c - libmicrohttpd request cycle for rfm-serve.
 *
 * Per request: state is made on the first callback, when the headers are
 * known; the checks that need only headers run then: framing (400 or 501,
 * closing the connection: see check_framing), route (404/405),
 * token (401), content type (415), declared size (413). A request they
 * refuse has its body read and dropped, so that refused clients cost no
 * memory; a declared Content-Length over the limit is answered at once.
 * Otherwise the body is gathered up to the limit (a chunked body going
 * over it gets 413 when it does). Then JSON syntax and depth (400), batch
 * size (413), schema (422: of the batch operation for a batch in the
 * deprecated form sent to a single one), and the handler. The completion
 * callback logs the request and frees the state.
 *
 * Every text put into a reply or the log that came from the client (path,
 * headers) is made valid UTF-8 first: jansson refuses anything else, and
 * a refused error reply would leave the client with no answer at all.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "guard.h"
#include "jsonout.h"
#include "sha256.h"
#include "txn.h"
#include "ui.h"
#include "utf8.h"

#define MAX_VIOLATIONS 50

/* Threads that run the bodies of the routes that wait (http_route.waits:
 * POST /events, answered once its batch is durable). While one waits, its
 * connection is suspended and the libmicrohttpd thread serves others: a
 * GET on that thread does not queue behind a group commit. They bound the
 * batches waiting at once, so the batches one commit can merge. */
#define WAITERS 32

struct http_server {
    struct MHD_Daemon *d;
    const server_options *opt;
    const oas_spec *spec;
    const http_tokens *tokens;
    http_provider prov;
    alog *log;
    ops *ops;
    char *tls_cert, *tls_key; /* PEM, kept while the daemon runs */
    guard *guard;             /* head deadlines, eviction near the limit */
    long inflight;            /* atomic */
    int stopping;             /* atomic; set by http_stop */
    int started;              /* atomic; from then on libmicrohttpd's messages are dropped */
    char start_msg[256];      /* libmicrohttpd's last message while starting */
    /* The waiters (WAITERS, above) and their queue of suspended requests. */
    pthread_t waiter[WAITERS];
    size_t nwaiters;
    pthread_mutex_t wmu;
    pthread_cond_t wcv;
    struct request *whead, *wtail;
    int wstop;
};

typedef struct request {
    const http_server *server;
    struct timespec t0;
    const http_route *rt;
    char *body;
    size_t len, cap;
    int too_large;
    int tried_early;   /* tried to answer while the body still came */
    int refused;       /* status decided from the headers (0: none) */
    char refusal[400]; /* its message */
    char allow[64];    /* Allow header of a 405 */
    int retry_after;   /* seconds, for a 429 */
    int close;         /* answer with Connection: close (framing errors) */
    int page;          /* a built-in page of ops (OPS_METRICS, OPS_DOCS) */
    int stream;        /* the provider's streaming route (GET /feed) */
    int ui;            /* a file of the /ui/ app (ui.h) */
    int status;        /* of the response queued (0: none yet) */
    size_t bytes;
    char token_id[9];
    long token; /* index in the server's tokens of the one accepted, or -1 */
    /* The first Authorization, Content-Type and Content-Length headers
     * (NULL: none), found in check_framing's one walk over the headers;
     * libmicrohttpd keeps them until the request ends. */
    const char *h_auth, *h_ctype, *h_clen;
    const oas_op *op; /* the contract's operation check_access found (set for every route) */
    char method[8];
    char path[600];    /* ids of up to 256 bytes, percent-decoded */
    const char *param; /* of a templated route ("/customers/{id}"): in path */
    void *user;        /* this request's models, from the provider */
    const http_route *routes;
    size_t nroutes;
    void *lease;
    /* A body run by a waiter: 1 while it runs (the connection suspended),
     * 2 once reply and reply_status are set (atomic). */
    int waiting;
    struct MHD_Connection *conn;
    json_t *reply;
    int reply_status;
    struct request *wnext;
} request;

/* ---- UTF-8 ------------------------------------------------------------ */

/* Make s valid UTF-8 in place: each byte that does not start a
 * well-formed sequence becomes '?' (which also drops a sequence cut by
 * truncation). */
static void utf8_clean(char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0) {
            s[i] = '?';
            k = 1;
        }
        i += k;
    }
}

/* ---- tokens ---------------------------------------------------------- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int hex_digest(const char *hex, uint8_t d[32])
{
    for (int k = 0; k < 32; k++) {
        int hi = hexval(hex[2 * k]), lo = hi < 0 ? -1 : hexval(hex[2 * k + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        d[k] = (uint8_t)(hi * 16 + lo);
    }
    return 0;
}

/* The fingerprint of a digest: its first 8 hex digits. */
static void fingerprint(const uint8_t d[32], char out[33])
{
    snprintf(out, 33, "%02x%02x%02x%02x", d[0], d[1], d[2], d[3]);
}

rfm_status http_tokens_init(http_tokens *t, const server_options *o, const char *env, char *err,
                            size_t errlen)
{
    size_t n = o->ntokens + o->nnamed + 1;
    for (const char *p = env; p && *p; p++)
        n += *p == ',';
    memset(t, 0, sizeof *t);
    t->digests = calloc(n, sizeof *t->digests);
    t->scopes = calloc(n, sizeof *t->scopes);
    t->names = calloc(n, sizeof *t->names);
    if (!t->digests || !t->scopes || !t->names) {
        http_tokens_free(t);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < o->ntokens; i++) {
        if (hex_digest(o->tokens_sha256[i], t->digests[t->n]) != 0)
            return rfm_fail(err, errlen, RFM_EINVAL, "tokens_sha256[%zu] is not hex", i);
        t->scopes[t->n] = RFM_SCOPE_ALL;
        fingerprint(t->digests[t->n], t->names[t->n]);
        t->n++;
    }
    for (size_t i = 0; i < o->nnamed; i++) {
        if (hex_digest(o->named_tokens[i].sha256, t->digests[t->n]) != 0)
            return rfm_fail(err, errlen, RFM_EINVAL, "tokens[%zu].sha256 is not hex", i);
        t->scopes[t->n] = o->named_tokens[i].scopes;
        snprintf(t->names[t->n], sizeof t->names[t->n], "%s", o->named_tokens[i].name);
        t->n++;
    }
    size_t item = 0;
    for (const char *p = env; p && *p; item++) {
        size_t len = strcspn(p, ",");
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\n'))
            len--;
        const char *q = p;
        while (len > 0 && *q == ' ')
            q++, len--;
        /* "token:scope+scope": the scopes follow the last colon. */
        const char *colon = len > 0 ? memrchr(q, ':', len) : NULL;
        unsigned scopes = RFM_SCOPE_ALL;
        if (colon) {
            scopes = 0;
            const char *sp = colon + 1, *end = q + len;
            while (sp <= end) {
                size_t k = 0;
                while (sp + k < end && sp[k] != '+')
                    k++;
                unsigned bit = config_scope_bit(sp, k);
                if (!bit)
                    return rfm_fail(err, errlen, RFM_EINVAL,
                                    "RFM_API_TOKENS: item %zu: unknown scope '%.*s' after ':' "
                                    "(known: score, events, analytics, admin, joined by +)",
                                    item + 1, (int)(k < 32 ? k : 32), sp);
                scopes |= bit;
                sp += k + 1;
            }
            len = (size_t)(colon - q);
            if (len == 0)
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "RFM_API_TOKENS: item %zu: empty token before ':'", item + 1);
        }
        if (len > 0) {
            sha256_ctx c;
            sha256_init(&c);
            sha256_update(&c, q, len);
            sha256_final(&c, t->digests[t->n]);
            t->scopes[t->n] = scopes;
            fingerprint(t->digests[t->n], t->names[t->n]);
            t->n++;
        }
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    return RFM_OK;
}

void http_tokens_free(http_tokens *t)
{
    free(t->digests);
    free(t->scopes);
    free(t->names);
    t->digests = NULL;
    t->scopes = NULL;
    t->names = NULL;
    t->n = 0;
}

/* The index of the token with digest d, or -1. Compares against every
 * digest without an early exit, so the time taken does not tell how much
 * of a digest matched. */
static long token_find(const http_tokens *t, const uint8_t d[32])
{
    long found = -1;
    for (size_t i = 0; i < t->n; i++) {
        uint8_t diff = 0;
        for (int k = 0; k < 32; k++)
            diff |= (uint8_t)(t->digests[i][k] ^ d[k]);
        if (diff == 0 && found < 0)
            found = (long)i;
    }
    return found;
}

/* ---- replies --------------------------------------------------------- */

static enum MHD_Result send_body(struct MHD_Connection *c, request *r, int status, char *body,
                                 size_t len, const char *type, const char *allow, int bearer)
{
    const http_server *s = r->server;
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (type)
        MHD_add_response_header(resp, "Content-Type", type);
    if (allow)
        MHD_add_response_header(resp, "Allow", allow);
    if (bearer)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"rfm\"");
    if (status == 429 && r->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    /* While stopping, keep-alive clients are told to go elsewhere, so that
     * the requests in flight, not new ones, are what the drain waits for. */
    if (r->close || __atomic_load_n(&s->stopping, __ATOMIC_RELAXED))
        MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->status = status;
        r->bytes = len;
    }
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, request *r, int status, const json_t *j)
{
    char *text = jsonout_dumps(j, JSON_COMPACT);
    if (!text)
        return MHD_NO;
    return send_body(c, r, status, text, strlen(text), "application/json", NULL, 0);
}

/* s into buf of cap bytes, cut to cap - 1 (as snprintf "%s" does). */
static void copy_cut(char *buf, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap - 1);
    memcpy(buf, s, n);
    buf[n] = '\0';
}

/* The one error shape: {"error": {"code", "message", "details"}}; NULL
 * when out of memory. Takes details. */
static json_t *error_body(int status, json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static json_t *error_vbody(int status, json_t *details, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    utf8_clean(msg);
    return json_pack("{s:{s:i,s:s,s:o}}", "error", "code", status, "message", msg, "details",
                     details ? details : json_array());
}

static json_t *error_body(int status, json_t *details, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *j = error_vbody(status, details, fmt, ap);
    va_end(ap);
    return j;
}

static enum MHD_Result send_error(struct MHD_Connection *c, request *r, int status, json_t *details,
                                  const char *allow, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static enum MHD_Result send_error(struct MHD_Connection *c, request *r, int status, json_t *details,
                                  const char *allow, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text;
    size_t len;
    if (details) {
        json_t *j = error_vbody(status, details, fmt, ap);
        text = jsonout_dumps(j, JSON_COMPACT);
        json_decref(j);
        len = text ? strlen(text) : 0;
    } else {
        /* Without details written as text: the bytes error_vbody's tree
         * dumps to (test_http's test_error_text_as_tree), without the
         * tree. */
        char msg[512];
        if (fmt[0] == '%' && fmt[1] == 's' && fmt[2] == '\0') /* a handler's message */
            copy_cut(msg, sizeof msg, va_arg(ap, const char *));
        else
            vsnprintf(msg, sizeof msg, fmt, ap);
        utf8_clean(msg);
        jsonw w;
        jsonw_init(&w);
        jsonw_obj(&w);
        JSONW_KEY(&w, "error");
        jsonw_obj(&w);
        JSONW_KEY(&w, "code");
        jsonw_int(&w, status);
        JSONW_KEY(&w, "message");
        jsonw_str(&w, msg);
        JSONW_KEY(&w, "details");
        jsonw_arr(&w);
        jsonw_end(&w);
        jsonw_end(&w);
        jsonw_end(&w);
        text = jsonw_finish(&w, &len);
    }
    va_end(ap);
    if (!text)
        return MHD_NO;
    return send_body(c, r, status, text, len, "application/json", allow, status == 401);
}

/* A file of the /ui/ app (or its 301, 304 or error), from memory. */
static enum MHD_Result send_ui(struct MHD_Connection *c, request *r, const ui_assets *u)
{
    ui_reply a;
    ui_lookup(u, r->path, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding"),
              MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match"), &a);
    if (a.status >= 400)
        return send_error(c, r, a.status, NULL, NULL, "%s", a.msg);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(a.len, (void *)a.body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (a.location)
        MHD_add_response_header(resp, "Location", a.location);
    if (a.type)
        MHD_add_response_header(resp, "Content-Type", a.type);
    if (a.etag)
        MHD_add_response_header(resp, "ETag", a.etag);
    if (a.cache)
        MHD_add_response_header(resp, "Cache-Control", a.cache);
    if (a.encoding)
        MHD_add_response_header(resp, "Content-Encoding", a.encoding);
    if (a.vary)
        MHD_add_response_header(resp, "Vary", "Accept-Encoding");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (__atomic_load_n(&r->server->stopping, __ATOMIC_RELAXED))
        MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)a.status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->status = a.status;
        r->bytes = a.len;
    }
    return ret;
}

/* ---- checks ---------------------------------------------------------- */

/* Nesting depth of JSON text, counted outside strings; stops early. */
static int too_deep(const char *s, size_t n, int max)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '[' || ch == '{') {
            if (++depth > max)
                return 1;
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
    }
    return 0;
}

static int is_json_type(const char *ct)
{
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

static json_t *violations_json(const oas_violation *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        oas_violation x = v[i]; /* oas keeps them valid UTF-8; this is a second guard */
        utf8_clean(x.pointer);
        utf8_clean(x.message);
        json_array_append_new(a,
                              json_pack("{s:s,s:s}", "pointer", x.pointer, "message", x.message));
    }
    return a;
}

/* Whether path fits the route's path: equal, or for a template ending in
 * "/{name}" ("/customers/{id}") the same prefix and one non-empty segment,
 * whose start goes to *param. */
static int path_fits(const char *route, const char *path, const char **param)
{
    /* One pass: the common prefix, then at the first difference either
     * both ends (equal) or the template's "{name}" as its last segment. */
    size_t i = 0;
    while (route[i] && route[i] == path[i])
        i++;
    if (!route[i] && !path[i])
        return 1;
    if (route[i] != '{' || path[i] == '\0' || strchr(path + i, '/'))
        return 0;
    const char *close = strchr(route + i, '}');
    if (!close || close[1] != '\0' || memchr(route + i, '/', (size_t)(close - route - i)))
        return 0;
    *param = path + i;
    return 1;
}

/* Methods are short: compared inline rather than by a call to strcmp. */
static inline int same_method(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static const http_route *find_route(request *r, const char *method, const char *path)
{
    for (size_t i = 0; i < r->nroutes; i++) {
        const http_route *rt = &r->routes[i];
        if (same_method(rt->method, method) && path_fits(rt->path, path, &r->param))
            return rt;
    }
    return NULL;
}

/* One handler call; a 200 without a body ran out of memory building it. */
static int call(const http_route *rt, void *user, const json_t *body, json_t **out, char *msg,
                size_t len)
{
    *out = NULL;
    int status = rt->fn(user, body, out, msg, len);
    if (status == 200 && !*out) {
        snprintf(msg, len, "out of memory");
        return 503;
    }
    return status;
}

/* Details of a handler's refusal, like the schema's violations: a 422
 * message "features.history: missing" names a field of the body (its first
 * part is a member of body), so it gets {"pointer": base +
 * "/features/history", "message": "missing"}; any other message points at
 * base, the whole body (or "/customers/3" in a batch). NULL when out of
 * memory. */
static json_t *handler_details(const json_t *body, const char *base, int status, const char *msg)
{
    static const char FIELD[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
    char ptr[256], key[128];
    const char *text = msg, *colon = strstr(msg, ": ");
    size_t n = colon ? (size_t)(colon - msg) : 0;
    snprintf(ptr, sizeof ptr, "%s", base);
    if (status == 422 && n > 0 && n < sizeof key && strspn(msg, FIELD) == n) {
        snprintf(key, sizeof key, "%.*s", (int)strcspn(msg, ".:"), msg);
        if (json_object_get(body, key)) { /* the field chars need no escaping */
            size_t o = strlen(ptr);
            o += (size_t)snprintf(ptr + o, sizeof ptr - o, "/%.*s", (int)n, msg);
            for (char *p = ptr + strlen(base); p < ptr + o && *p; p++)
                if (*p == '.')
                    *p = '/';
            text = colon + 2;
        }
    }
    return json_pack("[{s:s,s:s}]", "pointer", ptr, "message", text);
}

/* ---- pseudonymous ids ------------------------------------------------- */

/* The pseudonym a request id v (string or integer) stands for under key
 * (docs/security.md): 32 lower-case hex digits are taken as a pseudonym
 * already, any other id is normalised and hashed. NULL when v is neither
 * a string nor an integer, or a missing id (the handler reports it). New
 * reference. */
static json_t *id_pseudonym(const char *key, const json_t *v)
{
    char num[32], p[TXN_PSEUDONYM_LEN + 1];
    const char *id = json_string_value(v);
    size_t len = json_string_length(v);
    if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        id = num;
        len = strlen(num);
    }
    if (!id)
        return NULL;
    if (txn_is_pseudonym(id, len))
        return json_string(id);
    return txn_pseudonym(key, strlen(key), id, len, p) ? json_string(p) : NULL;
}

/* Replace every "customer_id" member of j (at any depth: single bodies,
 * batches, event lists) by its pseudonym, so that no handler, store or
 * answer sees a clear id. */
static void pseudonymize(const char *key, json_t *j)
{
    if (json_is_object(j)) {
        json_t *v = id_pseudonym(key, json_object_get(j, "customer_id"));
        if (v)
            json_object_set_new(j, "customer_id", v);
        const char *k;
        json_t *m;
        json_object_foreach(j, k, m) if (json_is_object(m) || json_is_array(m))
            pseudonymize(key, m);
    } else if (json_is_array(j)) {
        size_t i;
        json_t *m;
        json_array_foreach(j, i, m) pseudonymize(key, m);
    }
}

/* Run the handler on the body, or on each item of a batch. */
static int run_handler(const http_route *rt, int batch, void *user, const json_t *body,
                       json_t **reply)
{
    char msg[512] = "";
    json_t *out = NULL;
    const json_t *items = batch ? json_object_get(body, "customers") : NULL;
    if (!items) {
        int status = call(rt, user, body, &out, msg, sizeof msg);
        *reply =
            status == 200
                ? out
                : error_body(status, status == 422 ? handler_details(body, "", status, msg) : NULL,
                             "%s", msg);
        return status;
    }
    json_t *results = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        int status = call(rt, user, item, &out, msg, sizeof msg);
        if (status == 404) {
            /* An unknown customer is this item's answer, not the batch's. */
            out = error_body(404, NULL, "customer %zu: %s", i, msg);
            if (!out) {
                json_decref(results);
                *reply = NULL;
                return 503;
            }
            status = 200;
        }
        if (status != 200) {
            json_decref(results);
            char ptr[48];
            snprintf(ptr, sizeof ptr, "/customers/%zu", i);
            json_t *d = handler_details(item, ptr, status, msg);
            *reply = error_body(status, d, "customer %zu: %s", i, msg);
            return status;
        }
        json_array_append_new(results, out);
    }
    *reply = json_pack("{s:o}", "results", results);
    return 200;
}

/* The sha256 of a token and its id (the first 8 hex digits). A client
 * sends the same token on every request of its connections: the digest of
 * the last token this thread saw is kept, and a token equal to it (length,
 * then every byte without an early exit) reuses it, which saves the hash
 * (about 5 % of a small request's work). */
static void token_digest(const char *tok, uint8_t d[32], char id[9])
{
    static __thread struct {
        size_t len; /* 0: nothing kept */
        char tok[256];
        uint8_t d[32];
        char id[9];
    } last;
    size_t len = strlen(tok);
    if (len == last.len) {
        unsigned char diff = 0;
        for (size_t i = 0; i < len; i++)
            diff |= (unsigned char)(tok[i] ^ last.tok[i]);
        if (diff == 0) {
            memcpy(d, last.d, 32);
            memcpy(id, last.id, 9);
            return;
        }
    }
    char hex[65];
    sha256_of(tok, len, d, hex);
    memcpy(id, hex, 8);
    id[8] = '\0';
    if (len > 0 && len <= sizeof last.tok) {
        last.len = len;
        memcpy(last.tok, tok, len);
        memcpy(last.d, d, 32);
        memcpy(last.id, id, 9);
    }
}

/* Authorization: Bearer <token> (401), then the token's rate limit (429).
 * Returns 0 to go on, else the status, with r->refusal. */
static int check_token(http_server *s, request *r)
{
    const char *h = r->h_auth;
    if (!h) {
        snprintf(r->refusal, sizeof r->refusal, "missing bearer token");
        return 401;
    }
    /* RFC 6750: "Bearer" 1*SP token, the token without spaces. */
    const char *tok = strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : NULL;
    while (tok && *tok == ' ')
        tok++;
    if (!tok || *tok == '\0' || strpbrk(tok, " \t")) {
        snprintf(r->refusal, sizeof r->refusal,
                 "malformed Authorization header: expected 'Bearer <token>'");
        return 401;
    }
    uint8_t d[32];
    token_digest(tok, d, r->token_id);
    if ((r->token = token_find(s->tokens, d)) < 0) {
        snprintf(r->refusal, sizeof r->refusal, "unknown bearer token");
        return 401;
    }
    if (s->ops && (r->retry_after = ops_admit(s->ops, d)) > 0) {
        snprintf(r->refusal, sizeof r->refusal,
                 "rate limit of %g requests per second (burst %g) reached for this token; "
                 "retry after %d s",
                 s->opt->rate_per_second, s->opt->rate_burst, r->retry_after);
        return 429;
    }
    return 0;
}

/* The token (check_token, 401 and 429), then its scopes against those the
 * operation of the contract (method and its path template) asks for
 * (oas_security): 403 naming the first scope missing. The one place where
 * a request's access is decided. Returns 0 to go on, else the status with
 * r->refusal. */
static int check_access(http_server *s, request *r, const char *method, const char *path)
{
    const oas_op *op = r->op = oas_find(s->spec, method, path);
    int auth = op->auth;
    unsigned need = op->scopes;
    if (auth == OAS_AUTH_NONE || (auth == OAS_AUTH_OPTIONAL && !r->page))
        return 0;
    int refused = check_token(s, r);
    if (refused)
        return refused;
    unsigned missing = need & ~s->tokens->scopes[r->token];
    if (!missing)
        return 0;
    snprintf(r->refusal, sizeof r->refusal,
             "token %s lacks the scope '%s' that %s %.200s needs (docs/security.md)",
             s->tokens->names[r->token], config_scope_name(missing & (0u - missing)), method, path);
    return 403;
}

/* The checks that need only the request line and headers (those
 * check_framing took). Returns 0 to go on, else the status to answer with
 * r->refusal (and r->allow). HEAD is served as GET without the body, as
 * libmicrohttpd drops it. */
static int check_headers(http_server *s, request *r, const char *method)
{
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
    if (s->ops && ui_is_path(r->path)) { /* public static files: no token */
        r->ui = 1;
        if (strcmp(m, "GET") == 0)
            return 0;
        snprintf(r->allow, sizeof r->allow, "GET, HEAD");
        snprintf(r->refusal, sizeof r->refusal, "method %s not allowed on %.200s", method, r->path);
        return 405;
    }
    if (s->ops && (r->page = ops_route(s->ops, m, r->path)) != OPS_NONE)
        return ops_needs_token(s->ops, r->page) ? check_access(s, r, m, r->path) : 0;
    const http_stream *hs = s->prov.stream;
    if (hs && strcmp(m, "GET") == 0 && strcmp(r->path, hs->path) == 0) {
        r->stream = 1; /* token and scope as the contract says (score for /feed) */
        return check_access(s, r, "GET", hs->path);
    }
    r->rt = find_route(r, m, r->path);
    if (!r->rt) {
        if (oas_path_allow(s->spec, r->path, r->allow, sizeof r->allow)) {
            if (strstr(r->allow, "GET") && strlen(r->allow) + 7 < sizeof r->allow)
                strcat(r->allow, ", HEAD");
            snprintf(r->refusal, sizeof r->refusal, "method %s not allowed on %.200s", method,
                     r->path);
            return 405;
        }
        snprintf(r->refusal, sizeof r->refusal, "no such endpoint: %.200s", r->path);
        return 404;
    }
    int refused = check_access(s, r, m, r->rt->path);
    if (refused)
        return refused;
    if (strcmp(r->rt->method, "POST") == 0) {
        const char *ct = r->h_ctype;
        if (!is_json_type(ct)) {
            snprintf(r->refusal, sizeof r->refusal,
                     "Content-Type must be application/json, not %.200s", ct ? ct : "missing");
            return 415;
        }
        const char *cl = r->h_clen;
        if (cl && strtoull(cl, NULL, 10) > s->opt->body_limit_bytes) {
            snprintf(r->refusal, sizeof r->refusal,
                     "request body of %.24s bytes is larger than %zu", cl,
                     s->opt->body_limit_bytes);
            return 413;
        }
    }
    return 0;
}

/* ---- framing (RFC 9112) ----------------------------------------------- */

typedef struct {
    int host, content_length, transfer_encoding;
    const char *te; /* the last Transfer-Encoding value */
    request *r;     /* takes the first Authorization, Content-Type, Content-Length */
} head_counts;

/* Each header once, by the length of its name first (libmicrohttpd gives
 * it): most names are then compared with no header at all. */
static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size)
{
    head_counts *n = cls;
    (void)kind, (void)value_size;
    switch (key_size) {
    case 4: n->host += strcasecmp(key, "Host") == 0; break;
    case 12:
        if (!n->r->h_ctype && strcasecmp(key, "Content-Type") == 0)
            n->r->h_ctype = value;
        break;
    case 13:
        if (!n->r->h_auth && strcasecmp(key, "Authorization") == 0)
            n->r->h_auth = value;
        break;
    case 14:
        if (strcasecmp(key, "Content-Length") == 0 && !n->content_length++)
            n->r->h_clen = value;
        break;
    case 17:
        if (strcasecmp(key, "Transfer-Encoding") == 0) {
            n->transfer_encoding++;
            n->te = value;
        }
        break;
    default: break;
    }
    return MHD_YES;
}

/* Of a Transfer-Encoding list: is its last coding "chunked" (with no
 * parameters), and is that the only coding? */
static void te_codings(const char *te, int *chunked_last, int *only_chunked)
{
    const char *last = te;
    int commas = 0;
    for (const char *p = te; *p; p++)
        if (*p == ',')
            last = p + 1, commas++;
    last += strspn(last, " \t");
    size_t len = strcspn(last, " \t;");
    *chunked_last = len == 7 && strncasecmp(last, "chunked", 7) == 0 &&
                    last[len + strspn(last + len, " \t")] == '\0';
    *only_chunked = *chunked_last && commas == 0;
}

/* The message framing a proxy in front could read differently from
 * libmicrohttpd, which would let one request hide another (request
 * smuggling): both Content-Length and Transfer-Encoding, more than one
 * Content-Length or Transfer-Encoding, a coding other than chunked, and
 * Host missing (HTTP/1.1) or repeated. Returns 0, or the status to answer
 * with r->refusal; the connection is then closed, as the bytes after the
 * head cannot be trusted to start the next request. libmicrohttpd itself
 * answers a Content-Length that is not one number with 400 before this. */
static int check_framing(struct MHD_Connection *c, const char *version, request *r)
{
    head_counts n = {0, 0, 0, NULL, r};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, count_header, &n);
    int http11 = strcmp(version, "HTTP/1.0") != 0;
    const char *why = NULL;
    int status = 400;
    if (n.host > 1 || (http11 && n.host == 0))
        why = n.host ? "more than one Host header" : "HTTP/1.1 request without a Host header";
    else if (n.content_length > 1)
        why = "more than one Content-Length header";
    else if (n.transfer_encoding && n.content_length)
        why = "both Content-Length and Transfer-Encoding";
    else if (n.transfer_encoding > 1)
        why = "more than one Transfer-Encoding header";
    else if (n.transfer_encoding && !http11)
        why = "Transfer-Encoding in an HTTP/1.0 request";
    else if (n.transfer_encoding) {
        int last, only;
        te_codings(n.te, &last, &only);
        if (!last)
            why = "Transfer-Encoding does not end with chunked";
        else if (!only) {
            why = "Transfer-Encoding other than chunked is not supported";
            status = 501;
        }
    }
    if (!why)
        return 0;
    snprintf(r->refusal, sizeof r->refusal, "%s (RFC 9112); the connection is closed", why);
    r->close = 1;
    return status;
}

/* Parse a request body strictly. Integers too large for 64 bits are read
 * again as doubles: they are well-formed JSON, so they are the schema's to
 * judge (422 over a maximum), not a syntax error. */
static json_t *parse_body(const char *text, size_t len, json_error_t *je)
{
    size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
    json_t *j = json_loadb(text, len, flags, je);
    if (!j && json_error_code(je) == json_error_numeric_overflow &&
        strncmp(je->text, "too big", 7) == 0)
        j = json_loadb(text, len, flags | JSON_DECODE_INT_AS_REAL, je);
    return j;
}

/* A response a provider made (a stream, a GET answered by the caller) queued
 * with 200, or, when it made none (resp NULL), the error it gave in status
 * and msg. The response is released here. */
static enum MHD_Result send_made(struct MHD_Connection *c, request *r, struct MHD_Response *resp,
                                 int status, const char *msg)
{
    if (!resp)
        return send_error(c, r, status, NULL, NULL, "%s", msg);
    enum MHD_Result ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES)
        r->status = 200;
    return ret;
}

/* A templated path's arguments as a handler takes them: id, the segment
 * (cut to seg, made valid UTF-8) or with server_options.id_key its
 * pseudonym (id_pseudonym's rule: a pseudonym already as it is, and the id
 * as it came where none can be made); as_of, the query argument cleaned
 * (NULL: none). */
typedef struct {
    const char *id, *as_of;
    char seg[sizeof((request *)0)->path], pseud[TXN_PSEUDONYM_LEN + 1], day[64];
} path_args;

static void path_args_get(const http_server *s, struct MHD_Connection *c, const request *r,
                          path_args *pa)
{
    copy_cut(pa->seg, sizeof pa->seg, r->param ? r->param : "");
    utf8_clean(pa->seg);
    const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "as_of");
    pa->as_of = NULL;
    if (q) {
        copy_cut(pa->day, sizeof pa->day, q);
        utf8_clean(pa->day);
        pa->as_of = pa->day;
    }
    const char *key = s->opt->id_key;
    size_t n = strlen(pa->seg);
    pa->id = key && !txn_is_pseudonym(pa->seg, n) &&
                     txn_pseudonym(key, strlen(key), pa->seg, n, pa->pseud)
                 ? pa->pseud
                 : pa->seg;
}

static enum MHD_Result process(http_server *s, struct MHD_Connection *c, request *r)
{
    const http_route *rt = r->rt;
    if (r->refused)
        return send_error(c, r, r->refused, NULL, r->refused == 405 ? r->allow : NULL, "%s",
                          r->refusal);
    if (r->stream) {
        const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
        if (!last)
            last = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "last_event_id");
        int status = 503;
        char msg[256] = "no stream";
        const http_stream *hs = s->prov.stream;
        struct MHD_Response *resp = hs->respond(hs->ctx, c, last, &status, msg, sizeof msg);
        return send_made(c, r, resp, status, msg);
    }
    if (r->ui)
        return send_ui(c, r, ops_ui(s->ops));
    if (r->page) {
        size_t len;
        const char *type;
        char *page =
            ops_page(s->ops, r->page, __atomic_load_n(&s->inflight, __ATOMIC_RELAXED), &len, &type);
        if (!page)
            return send_error(c, r, 503, NULL, NULL, "out of memory");
        return send_body(c, r, 200, page, len, type, NULL, 0);
    }
    if (!rt->fn && !rt->text && !rt->fixed_body && strcmp(rt->method, "GET") == 0) {
        int status = 503;
        char msg[512] = "no answer for this route";
        struct MHD_Response *resp =
            s->prov.respond ? s->prov.respond(r->user, rt->path, c, &status, msg, sizeof msg)
                            : NULL;
        return send_made(c, r, resp, status, msg);
    }
    if (rt->fixed_body) {
        char *copy = malloc(rt->fixed_len + 1);
        if (!copy)
            return send_error(c, r, 503, NULL, NULL, "out of memory");
        memcpy(copy, rt->fixed_body, rt->fixed_len);
        return send_body(c, r, 200, copy, rt->fixed_len, rt->fixed_type, NULL, 0);
    }
    if (rt->text) { /* the segment and as_of as strings: no tree for either */
        char msg[512] = "";
        path_args pa;
        path_args_get(s, c, r, &pa);
        char *text = NULL;
        size_t tlen = 0;
        int status = rt->text(r->user, pa.id, pa.as_of, &text, &tlen, msg, sizeof msg);
        if (status == 200 && !text)
            return send_error(c, r, 503, NULL, NULL, "out of memory");
        if (!text)
            return send_error(c, r, status, NULL, NULL, "%s", msg);
        return send_body(c, r, status, text, tlen, "application/json", NULL, 0);
    }
    if (strcmp(rt->method, "GET") == 0 || strcmp(rt->method, "DELETE") == 0) {
        json_t *out = NULL, *params = NULL;
        char msg[512] = "";
        if (r->param) {
            /* The path's segment and the query, as a body: {"id": ..., "as_of": ...}. */
            path_args pa;
            path_args_get(s, c, r, &pa);
            params = json_object();
            json_object_set_new(params, "id", json_string(pa.id));
            if (pa.as_of)
                json_object_set_new(params, "as_of", json_string(pa.as_of));
        }
        int status = rt->fn(r->user, params, &out, msg, sizeof msg);
        json_decref(params);
        if (status == 204 && !out) {
            char *empty = calloc(1, 1);
            return empty ? send_body(c, r, 204, empty, 0, NULL, NULL, 0)
                         : send_error(c, r, 503, NULL, NULL, "out of memory");
        }
        if (status == 200 && !out)
            return send_error(c, r, 503, NULL, NULL, "out of memory");
        if (!out) /* a GET handler may answer a non-200 with its own body (/ready) */
            return send_error(c, r, status, NULL, NULL, "%s", msg);
        enum MHD_Result ret = send_json(c, r, status, out);
        json_decref(out);
        return ret;
    }
    /* POST with a JSON body. */
    if (r->too_large)
        return send_error(c, r, 413, NULL, NULL, "request body larger than %zu bytes",
                          s->opt->body_limit_bytes);
    if (rt->waits && s->nwaiters > 0) {
        /* Suspended until a waiter has the reply (on_request sends it). */
        r->conn = c;
        r->waiting = 1;
        MHD_suspend_connection(c);
        pthread_mutex_lock(&s->wmu);
        if (s->wtail)
            s->wtail->wnext = r;
        else
            s->whead = r;
        s->wtail = r;
        pthread_cond_signal(&s->wcv);
        pthread_mutex_unlock(&s->wmu);
        return MHD_YES;
    }
    /* A flat body (http_route.flat): no tree, no validator. Of numbers
     * alone, or else with a string (customer_id). */
    /* check_access found the route's operation (method and template):
     * every route's request passes there before its body is read. */
    const oas_op *fop = rt->flat && !s->opt->id_key ? r->op : NULL;
    double fv[OAS_FLAT_MAX];
    oas_str fs[OAS_FLAT_MAX];
    json_t *reply = NULL;
    int status = 0;
    const char *btext = r->body ? r->body : "";
    const oas_flat *ff =
        !fop                                                                      ? NULL
        : fop->flat.n && oas_flat_read(&fop->flat, btext, r->len, fv, NULL)       ? &fop->flat
        : fop->flat_str.n && oas_flat_read(&fop->flat_str, btext, r->len, fv, fs) ? &fop->flat_str
                                                                                  : NULL;
    if (ff) {
        char msg[512] = "", *text = NULL;
        size_t tlen = 0;
        if (rt->flat(r->user, ff, fv, ff->string ? fs : NULL, &reply, &text, &tlen, msg,
                     sizeof msg) == 200 &&
            (reply || text)) {
            if (s->ops)
                ops_observe_flat(s->ops, rt->path, ff, fv);
            if (text) {
                json_decref(reply);
                return send_body(c, r, 200, text, tlen, "application/json", NULL, 0);
            }
            status = 200;
        } else { /* the general path answers, with its details */
            json_decref(reply);
            reply = NULL;
            free(text);
        }
    }
    if (!status)
        status = http_answer_json(s->opt, s->spec, s->ops, rt, r->user, r->body ? r->body : "",
                                  r->len, &reply);
    if (!reply)
        return MHD_NO;
    enum MHD_Result ret = send_json(c, r, status, reply);
    json_decref(reply);
    return ret;
}

const char *http_operation_path(const http_route *rt, const json_t *body, char *buf, size_t len)
{
    if (rt->batch != HTTP_ONE_OR_OLD_BATCH || !json_is_object(body) ||
        !json_object_get(body, "customers"))
        return rt->path;
    int n = snprintf(buf, len, "%s/batch", rt->path);
    return n > 0 && (size_t)n < len ? buf : rt->path;
}

int http_answer_json(const server_options *opt, const oas_spec *spec, ops *o, const http_route *rt,
                     void *user, const char *text, size_t len, json_t **reply)
{
    *reply = NULL;
    if (too_deep(text, len, opt->max_json_depth)) {
        *reply =
            error_body(400, NULL, "malformed JSON: nesting deeper than %d", opt->max_json_depth);
        return 400;
    }
    if (rt->raw && !opt->id_key) {
        char msg[512] = "";
        json_t *out = NULL;
        int status = rt->raw(user, text, len, &out, msg, sizeof msg);
        if (status == 200 && !out)
            status = 503, snprintf(msg, sizeof msg, "out of memory");
        if (status) {
            *reply = status == 200 ? out : error_body(status, NULL, "%s", msg);
            return status;
        }
    }
    json_error_t je;
    json_t *body = parse_body(text, len, &je);
    if (!body) {
        *reply = error_body(400, NULL, "malformed JSON at line %d, column %d: %s", je.line,
                            je.column, je.text);
        return 400;
    }
    char batch_path[160];
    const char *op_path = http_operation_path(rt, body, batch_path, sizeof batch_path);
    int batch = rt->batch == HTTP_BATCH || op_path != rt->path;
    const json_t *items = batch && json_is_object(body) ? json_object_get(body, "customers") : NULL;
    if (json_is_array(items) && json_array_size(items) > opt->batch_limit) {
        size_t n = json_array_size(items);
        json_decref(body);
        *reply = error_body(413, NULL, "batch of %zu customers is over the limit of %zu", n,
                            opt->batch_limit);
        return 413;
    }
    const json_t *schema = oas_find(spec, rt->method, op_path)->request;
    oas_violation v[MAX_VIOLATIONS];
    size_t nv = schema ? oas_validate(spec, schema, body, v, MAX_VIOLATIONS) : 0;
    if (nv > 0) {
        json_decref(body);
        size_t shown = nv < MAX_VIOLATIONS ? nv : MAX_VIOLATIONS;
        *reply = error_body(422, violations_json(v, shown),
                            "request body does not match the schema (%zu violation%s%s)", nv,
                            nv == 1 ? "" : "s", nv > shown ? ", first 50 listed" : "");
        return 422;
    }
    if (o)
        ops_observe(o, op_path, body);
    if (opt->id_key)
        pseudonymize(opt->id_key, body);
    int status = run_handler(rt, batch, user, body, reply);
    json_decref(body);
    return status;
}

/* A request's memory (about 1.2 KiB, past malloc's per-thread cache of
 * small blocks: calloc took about 700 instructions) is kept for the
 * thread's next request: one spare a thread, freed when the thread ends. */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static int spare_ok;

static void spare_init(void) { spare_ok = pthread_key_create(&spare_key, free) == 0; }

static request *request_new(void)
{
    pthread_once(&spare_once, spare_init);
    request *r = spare_ok ? pthread_getspecific(spare_key) : NULL;
    if (!r)
        return calloc(1, sizeof *r);
    pthread_setspecific(spare_key, NULL);
    memset(r, 0, sizeof *r);
    return r;
}

static void request_done(request *r)
{
    if (spare_ok && !pthread_getspecific(spare_key) && pthread_setspecific(spare_key, r) == 0)
        return;
    free(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    http_server *s = cls;
    request *r = *con_cls;
    if (!r) {
        guard_head_done(s->guard, c);
        r = request_new();
        if (!r)
            return MHD_NO;
        r->server = s;
        r->token = -1;
        clock_gettime(CLOCK_MONOTONIC, &r->t0);
        copy_cut(r->method, sizeof r->method, method);
        copy_cut(r->path, sizeof r->path, url);
        utf8_clean(r->method);
        utf8_clean(r->path);
        *con_cls = r;
        __atomic_add_fetch(&s->inflight, 1, __ATOMIC_RELAXED);
        r->lease = s->prov.acquire(s->prov.ctx, &r->user, &r->routes, &r->nroutes);
        if ((r->refused = check_framing(c, version, r)) != 0)
            return process(s, c, r); /* at once, closing: the body is not read */
        r->refused = check_headers(s, r, method);
        /* A body declared too large is answered before it is read; a small
         * one is read and dropped, so that the connection can be kept. */
        const char *cl = r->h_clen;
        if (r->refused &&
            (r->refused == 413 || (cl && strtoull(cl, NULL, 10) > s->opt->body_limit_bytes)))
            return process(s, c, r);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->status)
            return MHD_YES; /* answered already: read and dropped */
        if (r->refused || r->too_large || r->len + n > s->opt->body_limit_bytes) {
            /* Dropped; past the limit, answer without waiting for the end. */
            r->too_large |= !r->refused;
            free(r->body);
            r->body = NULL;
            r->cap = 0;
            r->len += n;
            if (r->len > s->opt->body_limit_bytes && !r->tried_early) {
                /* libmicrohttpd 0.9.75 refuses a response in the middle of
                 * a body it is still reading (chunked): then it is sent at
                 * the end. Declared lengths were answered at the headers. */
                r->tried_early = 1;
                (void)process(s, c, r);
            }
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 1024;
            while (cap < r->len + n + 1)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b)
                return MHD_NO;
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->waiting) { /* resumed by its waiter: the reply is ready */
        if (__atomic_load_n(&r->waiting, __ATOMIC_ACQUIRE) != 2 || r->status)
            return MHD_YES;
        if (!r->reply)
            return MHD_NO;
        enum MHD_Result ret = send_json(c, r, r->reply_status, r->reply);
        json_decref(r->reply);
        r->reply = NULL;
        return ret;
    }
    if (r->status) /* already answered (413 on the declared size) */
        return MHD_YES;
    return process(s, c, r);
}

/* A waiter: runs the body stage of suspended requests, then resumes them. */
static void *waiter_main(void *arg)
{
    http_server *s = arg;
    pthread_mutex_lock(&s->wmu);
    for (;;) {
        while (!s->whead && !s->wstop)
            pthread_cond_wait(&s->wcv, &s->wmu);
        if (!s->whead)
            break; /* stopping, and nothing left */
        request *r = s->whead;
        s->whead = r->wnext;
        if (!s->whead)
            s->wtail = NULL;
        pthread_mutex_unlock(&s->wmu);
        r->reply_status = http_answer_json(s->opt, s->spec, s->ops, r->rt, r->user,
                                           r->body ? r->body : "", r->len, &r->reply);
        __atomic_store_n(&r->waiting, 2, __ATOMIC_RELEASE);
        MHD_resume_connection(r->conn);
        pthread_mutex_lock(&s->wmu);
    }
    pthread_mutex_unlock(&s->wmu);
    return NULL;
}

/* Stop the waiters once the requests queued are answered. */
static void waiters_stop(http_server *s)
{
    if (s->nwaiters == 0)
        return;
    pthread_mutex_lock(&s->wmu);
    s->wstop = 1;
    pthread_cond_broadcast(&s->wcv);
    pthread_mutex_unlock(&s->wmu);
    for (size_t i = 0; i < s->nwaiters; i++)
        pthread_join(s->waiter[i], NULL);
    s->nwaiters = 0;
}

/* Append s to buf as JSON string content; returns the new length. */
static size_t json_escape(char *buf, size_t n, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s && n + 8 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)ch;
        } else if (ch < 0x20) {
            memcpy(buf + n, "\\u00", 4);
            buf[n + 4] = hex[ch >> 4];
            buf[n + 5] = hex[ch & 15];
            n += 6;
        } else {
            buf[n++] = (char)ch;
        }
    }
    return n;
}

/* Append the text t (of a fixed table, or checked: no escaping) or a
 * number to the line; past cap - 1, nothing (the line is cut). */
static size_t put_text(char *buf, size_t n, size_t cap, const char *t)
{
    size_t k = strlen(t);
    if (n >= cap || k >= cap - n)
        return n;
    memcpy(buf + n, t, k);
    return n + k;
}

static size_t put_uint(char *buf, size_t n, size_t cap, unsigned long long v)
{
    char d[24];
    size_t k = sizeof d;
    do
        d[--k] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    if (n >= cap || sizeof d - k >= cap - n)
        return n;
    memcpy(buf + n, d + k, sizeof d - k);
    return n + sizeof d - k;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    request *r = *con_cls;
    guard_request_done(s->guard, c);
    if (!r)
        return;
    /* The route's path (a literal of the route table) is taken before the
     * lease goes: the last release frees the table with the models. */
    const char *endpoint = r->rt                         ? r->rt->path
                           : r->stream && s->prov.stream ? s->prov.stream->path
                           : r->ui ? (strcmp(r->path, "/ui/") == 0 ? "/ui/" : "/ui/{asset}")
                                   : r->path;
    int templated = r->rt && r->param;
    if (r->lease)
        s->prov.release(s->prov.ctx, r->lease);
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long us =
        (long long)(t1.tv_sec - r->t0.tv_sec) * 1000000 + (t1.tv_nsec - r->t0.tv_nsec) / 1000;
    /* The accepted token's name (server.tokens) or fingerprint: never
     * the token. */
    const char *tname = r->token >= 0 ? s->tokens->names[r->token] : NULL;
    if (s->ops && r->token >= 0)
        ops_token_done(s->ops, (size_t)r->token, r->status);
    if (s->ops)
        ops_request_done(s->ops, endpoint, r->status,
                         (double)(t1.tv_sec - r->t0.tv_sec) + (t1.tv_nsec - r->t0.tv_nsec) / 1e9);
    if (s->log) {
        /* One line per request, into this thread's buffer of the log
         * (alog.h); written by its own thread. */
        char line[1024];
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        /* The formatted second changes once a second: keep it per thread. */
        static __thread time_t ts_sec = -1;
        static __thread char ts[32];
        if (now.tv_sec != ts_sec) {
            struct tm tm;
            gmtime_r(&now.tv_sec, &tm);
            strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
            ts_sec = now.tv_sec;
        }
        size_t cap = sizeof line - 1, n = 0; /* room for the '\n' */
        long ms = now.tv_nsec / 1000000;
        char frac[6] = {
            '.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), 'Z',
            '\0'};
        n = put_text(line, n, cap, "{\"time\":\"");
        n = put_text(line, n, cap, ts);
        n = put_text(line, n, cap, frac);
        n = put_text(line, n, cap, "\",\"method\":\"");
        n = json_escape(line, n, cap, r->method);
        n = put_text(line, n, cap, "\",\"path\":\"");
        /* A templated route's path carries a customer id: the template is
         * logged instead ("/customers/{id}"). */
        n = json_escape(line, n, cap - 200, templated ? endpoint : r->path);
        n = put_text(line, n, cap, "\",\"status\":");
        n = put_uint(line, n, cap, (unsigned)r->status);
        n = put_text(line, n, cap, ",\"latency_us\":");
        n = put_uint(line, n, cap, us > 0 ? (unsigned long long)us : 0);
        n = put_text(line, n, cap, ",\"bytes\":");
        n = put_uint(line, n, cap, r->bytes);
        /* The token's id (hex) and name (server.tokens names are checked
         * at load: letters, digits, '-', '_', '.'): no escaping. */
        n = put_text(line, n, cap, ",\"token_id\":");
        if (r->token_id[0]) {
            n = put_text(line, n, cap, "\"");
            n = put_text(line, n, cap, r->token_id);
            n = put_text(line, n, cap, "\"");
        } else {
            n = put_text(line, n, cap, "null");
        }
        n = put_text(line, n, cap, ",\"token\":");
        if (tname) {
            n = put_text(line, n, cap, "\"");
            n = json_escape(line, n, cap, tname);
            n = put_text(line, n, cap, "\"");
        } else {
            n = put_text(line, n, cap, "null");
        }
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            n = put_text(line, n, cap, ",\"aborted\":true");
        n = put_text(line, n, cap, "}");
        line[n++] = '\n';
        alog_write(s->log, line, n);
    }
    json_decref(r->reply);
    free(r->body);
    request_done(r);
    *con_cls = NULL;
    __atomic_sub_fetch(&s->inflight, 1, __ATOMIC_RELAXED);
}

/* libmicrohttpd's error log: the last message while starting (the reason
 * a start fails) is kept; once running, messages are dropped (each
 * client's failed handshake or reset connection would be a line). */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    http_server *s = cls;
    if (__atomic_load_n(&s->started, __ATOMIC_ACQUIRE))
        return;
    vsnprintf(s->start_msg, sizeof s->start_msg, fmt, ap);
    s->start_msg[strcspn(s->start_msg, "\n")] = '\0';
}

static void server_free(http_server *s)
{
    waiters_stop(s);
    pthread_mutex_destroy(&s->wmu);
    pthread_cond_destroy(&s->wcv);
    guard_free(s->guard);
    free(s->tls_cert);
    if (s->tls_key) /* a private key: do not leave it in freed memory */
        explicit_bzero(s->tls_key, strlen(s->tls_key));
    free(s->tls_key);
    free(s);
}

/* Every scope the contract names must be one the tokens can carry. */
static rfm_status contract_scopes_known(const oas_spec *spec, const char *file, char *err,
                                        size_t errlen)
{
    const char *path, *method, *bad;
    const json_t *item, *op;
    unsigned need;
    json_object_foreach((json_t *)json_object_get(oas_root(spec), "paths"), path, item)
    {
        json_object_foreach((json_t *)item, method, op)
        {
            if (json_is_object(op) && oas_security(spec, op, &need, &bad) == OAS_AUTH_BAD)
                return rfm_fail(err, errlen, RFM_EFORMAT,
                                "%s: %s %s: unknown scope '%s' in security (known: score, "
                                "events, analytics, admin)",
                                file, method, path, bad);
        }
    }
    return RFM_OK;
}

rfm_status http_start(const server_options *opt, const oas_spec *spec, const http_tokens *tokens,
                      const http_provider *prov, ops *o, alog *access_log, http_server **out,
                      int *port_out, char *err, size_t errlen)
{
    *out = NULL;
    if (contract_scopes_known(spec, opt->openapi, err, errlen) != RFM_OK)
        return RFM_EFORMAT;
    if (o && ops_set_tokens(o, (const char(*)[33])tokens->names, tokens->n, err, errlen) != RFM_OK)
        return RFM_ENOMEM;
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    s->opt = opt;
    s->spec = spec;
    s->tokens = tokens;
    s->prov = *prov;
    s->log = access_log;
    s->ops = o;
    pthread_mutex_init(&s->wmu, NULL);
    pthread_cond_init(&s->wcv, NULL);
    if (opt->tls_cert_file) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            free(s);
            return rfm_fail(err, errlen, RFM_EINVAL,
                            "server.tls_cert_file is set but this libmicrohttpd has no TLS");
        }
        size_t n;
        rfm_status st = fileio_read(opt->tls_cert_file, &s->tls_cert, &n, err, errlen);
        if (st == RFM_OK)
            st = fileio_read(opt->tls_key_file, &s->tls_key, &n, err, errlen);
        if (st != RFM_OK) {
            server_free(s);
            return st;
        }
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)opt->port);
    if (inet_pton(AF_INET, opt->host, &addr.sin_addr) != 1) {
        server_free(s);
        return rfm_fail(err, errlen, RFM_EINVAL, "server.host '%s' is not an IPv4 address",
                        opt->host);
    }
    unsigned threads =
        opt->threads > 0 ? (unsigned)opt->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    /* epoll where libmicrohttpd was built with it (Linux), else poll. */
    /* Suspend and resume: a stream (GET /feed) with nothing to send leaves
     * the pool's event loop until a record or a heartbeat wakes it. */
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
        MHD_ALLOW_SUSPEND_RESUME |
        (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL);
    /* A tenth of the connection limit is kept free by closing connections
     * that wait, so that a new client is always accepted. */
    long limit = opt->connection_limit;
    rfm_status gst = guard_new(limit - (limit / 10 > 1 ? limit / 10 : 1), opt->header_timeout_s,
                               opt->timeout_s, &s->guard, err, errlen);
    if (gst != RFM_OK) {
        server_free(s);
        return gst;
    }
    /* 0: no limit per client address (behind a load balancer, all
     * connections come from its few addresses). */
    struct MHD_OptionItem per_ip[] = {
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)opt->per_address_limit, NULL},
        {MHD_OPTION_END, 0, NULL}};
    /* With TLS, the key, certificate and allowed versions and suites;
     * without, an empty list. */
    struct MHD_OptionItem tls[] = {{MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key},
                                   {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert},
                                   {MHD_OPTION_HTTPS_PRIORITIES, 0, opt->tls_priorities},
                                   {MHD_OPTION_END, 0, NULL}};
    if (s->tls_cert)
        flags |= MHD_USE_TLS;
    /* Without waiters (threads refused), waiting routes run on the
     * libmicrohttpd thread as every other route. */
    while (s->nwaiters < WAITERS &&
           pthread_create(&s->waiter[s->nwaiters], NULL, waiter_main, s) == 0)
        s->nwaiters++;
    errno = 0;
    s->d = MHD_start_daemon(
        flags, (uint16_t)opt->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, s, MHD_OPTION_ARRAY, s->tls_cert ? tls : tls + 3, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)opt->connection_limit, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opt->timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        guard_on_connection, s->guard, MHD_OPTION_ARRAY,
        opt->per_address_limit > 0 ? per_ip : per_ip + 1, MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, opt->header_limit_bytes, MHD_OPTION_END);
    if (!s->d) {
        int e = errno, https = s->tls_cert != NULL;
        char msg[sizeof s->start_msg];
        snprintf(msg, sizeof msg, "%s", s->start_msg[0] ? s->start_msg : "no reason given");
        server_free(s);
        if (https && !e)
            return rfm_fail(err, errlen, RFM_EINVAL,
                            "cannot start HTTPS with %s and %s and server.tls_priorities "
                            "(libmicrohttpd: %s): the files must be a PEM certificate and its "
                            "private key, the priorities a GnuTLS priority string (check it "
                            "with gnutls-cli --priority '...' -l)",
                            opt->tls_cert_file, opt->tls_key_file, msg);
        return rfm_fail(err, errlen, RFM_EIO, "cannot listen on %s:%d: %s", opt->host, opt->port,
                        e ? strerror(e) : msg);
    }
    __atomic_store_n(&s->started, 1, __ATOMIC_RELEASE);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    *port_out = info ? info->port : opt->port;
    *out = s;
    return RFM_OK;
}

guard_counts http_guard_counts(http_server *s) { return guard_get_counts(s->guard); }

void http_stop(http_server *s, int grace_s)
{
    if (!s)
        return;
    __atomic_store_n(&s->stopping, 1, __ATOMIC_RELAXED);
    if (s->prov.stream && s->prov.stream->stop)
        s->prov.stream->stop(s->prov.stream->ctx); /* streams end: not waited for */
    MHD_socket fd = MHD_quiesce_daemon(s->d);      /* no new connections */
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    for (int i = 0; i < grace_s * 100 && __atomic_load_n(&s->inflight, __ATOMIC_RELAXED) > 0; i++)
        usleep(10000);
    /* Requests still with a waiter are answered (and resumed) first:
     * libmicrohttpd must not be stopped with a connection suspended. */
    waiters_stop(s);
    MHD_stop_daemon(s->d); /* then the guard, in server_free */
    server_free(s);
}
