/* http.c - libmicrohttpd request cycle for rfm-serve.
 *
 * Per request: state is made on the first callback (headers known), the
 * body is gathered up to the limit, and the completion callback logs the
 * request and frees the state. Order of checks: route (404/405), token
 * (401), content type (415), size (413), JSON syntax and depth (400),
 * batch size (413), schema (422), then the handler.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "sha256.h"

#define MAX_VIOLATIONS 50

struct http_server {
    struct MHD_Daemon *d;
    const server_options *opt;
    const oas_spec *spec;
    const http_tokens *tokens;
    const http_route *routes;
    size_t nroutes;
    void *user;
    FILE *log;
    long inflight; /* atomic */
};

typedef struct {
    struct timespec t0;
    char *body;
    size_t len, cap;
    int too_large;
    int status;
    size_t bytes;
    char token_id[9];
    char method[8];
    char path[128];
} request;

/* ---- tokens ---------------------------------------------------------- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

rfm_status http_tokens_init(http_tokens *t, char *const *hex, size_t nhex, const char *env,
                            char *err, size_t errlen)
{
    size_t n = nhex + 1;
    for (const char *p = env; p && *p; p++)
        n += *p == ',';
    t->n = 0;
    t->digests = calloc(n, sizeof *t->digests);
    if (!t->digests)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    for (size_t i = 0; i < nhex; i++) {
        for (int k = 0; k < 32; k++) {
            int hi = hexval(hex[i][2 * k]), lo = hexval(hex[i][2 * k + 1]);
            if (hi < 0 || lo < 0)
                return rfm_fail(err, errlen, RFM_EINVAL, "tokens_sha256[%zu] is not hex", i);
            t->digests[t->n][k] = (uint8_t)(hi * 16 + lo);
        }
        t->n++;
    }
    for (const char *p = env; p && *p;) {
        size_t len = strcspn(p, ",");
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\n'))
            len--;
        const char *q = p;
        while (len > 0 && *q == ' ')
            q++, len--;
        if (len > 0) {
            sha256_ctx c;
            sha256_init(&c);
            sha256_update(&c, q, len);
            sha256_final(&c, t->digests[t->n++]);
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
    t->digests = NULL;
    t->n = 0;
}

/* Compare against every digest without an early exit, so the time taken
 * does not tell how much of a digest matched. */
static int token_ok(const http_tokens *t, const uint8_t d[32])
{
    int found = 0;
    for (size_t i = 0; i < t->n; i++) {
        uint8_t diff = 0;
        for (int k = 0; k < 32; k++)
            diff |= (uint8_t)(t->digests[i][k] ^ d[k]);
        found |= diff == 0;
    }
    return found;
}

/* ---- replies --------------------------------------------------------- */

static enum MHD_Result send_body(struct MHD_Connection *c, request *r, int status, char *body,
                                 size_t len, const char *type, const char *allow, int bearer)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    if (allow)
        MHD_add_response_header(resp, "Allow", allow);
    if (bearer)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"rfm\"");
    r->status = status;
    r->bytes = len;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, request *r, int status,
                                 const json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!text)
        return MHD_NO;
    return send_body(c, r, status, text, strlen(text), "application/json", NULL, 0);
}

/* The one error shape: {"error": {"code", "message", "details"}}. */
static enum MHD_Result send_error(struct MHD_Connection *c, request *r, int status,
                                  json_t *details, const char *allow, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static enum MHD_Result send_error(struct MHD_Connection *c, request *r, int status,
                                  json_t *details, const char *allow, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *j = json_pack("{s:{s:i,s:s,s:o}}", "error", "code", status, "message", msg,
                          "details", details ? details : json_array());
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return MHD_NO;
    return send_body(c, r, status, text, strlen(text), "application/json", allow, status == 401);
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
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_pack("{s:s,s:s}", "pointer", v[i].pointer, "message",
                                           v[i].message));
    return a;
}

static const http_route *find_route(const http_server *s, const char *method, const char *path,
                                    int *path_known)
{
    *path_known = 0;
    for (size_t i = 0; i < s->nroutes; i++) {
        if (strcmp(s->routes[i].path, path) != 0)
            continue;
        *path_known = 1;
        if (strcmp(s->routes[i].method, method) == 0)
            return &s->routes[i];
    }
    return NULL;
}

/* Run the handler on one item or on each item of a batch. */
static enum MHD_Result dispatch(http_server *s, struct MHD_Connection *c, request *r,
                                const http_route *rt, const json_t *body)
{
    char msg[512] = "";
    json_t *out = NULL;
    const json_t *items = rt->batch ? json_object_get(body, "customers") : NULL;
    if (!items) {
        int status = rt->fn(s->user, body, &out, msg, sizeof msg);
        if (status != 200)
            return send_error(c, r, status, NULL, NULL, "%s", msg);
        enum MHD_Result ret = send_json(c, r, 200, out);
        json_decref(out);
        return ret;
    }
    json_t *results = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        int status = rt->fn(s->user, item, &out, msg, sizeof msg);
        if (status != 200) {
            json_decref(results);
            char ptr[48];
            snprintf(ptr, sizeof ptr, "/customers/%zu", i);
            json_t *d = json_pack("[{s:s,s:s}]", "pointer", ptr, "message", msg);
            return send_error(c, r, status, d, NULL, "customer %zu: %s", i, msg);
        }
        json_array_append_new(results, out);
    }
    json_t *wrap = json_pack("{s:o}", "results", results);
    enum MHD_Result ret = send_json(c, r, 200, wrap);
    json_decref(wrap);
    return ret;
}

static enum MHD_Result process(http_server *s, struct MHD_Connection *c, request *r,
                               const char *method)
{
    int known;
    const http_route *rt = find_route(s, method, r->path, &known);
    if (!rt) {
        char allow[64] = "";
        if (known && oas_path_allow(s->spec, r->path, allow, sizeof allow))
            return send_error(c, r, 405, NULL, allow, "method %s not allowed on %s", method,
                              r->path);
        return send_error(c, r, 404, NULL, NULL, "no such endpoint: %s", r->path);
    }
    const json_t *op = oas_operation(s->spec, method, r->path);
    const json_t *sec = json_object_get(op, "security");
    int needs_token = !(json_is_array(sec) && json_array_size(sec) == 0);
    if (needs_token) {
        const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (!h)
            return send_error(c, r, 401, NULL, NULL, "missing bearer token");
        if (strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0')
            return send_error(c, r, 401, NULL, NULL,
                              "malformed Authorization header: expected 'Bearer <token>'");
        sha256_ctx sc;
        uint8_t d[32];
        char hex[65];
        sha256_init(&sc);
        sha256_update(&sc, h + 7, strlen(h + 7));
        sha256_final(&sc, d);
        sha256_hex(d, hex);
        memcpy(r->token_id, hex, 8);
        r->token_id[8] = '\0';
        if (!token_ok(s->tokens, d))
            return send_error(c, r, 401, NULL, NULL, "unknown bearer token");
    }
    if (rt->fixed_body) {
        char *copy = malloc(rt->fixed_len + 1);
        if (!copy)
            return send_error(c, r, 503, NULL, NULL, "out of memory");
        memcpy(copy, rt->fixed_body, rt->fixed_len);
        return send_body(c, r, 200, copy, rt->fixed_len, rt->fixed_type, NULL, 0);
    }
    if (strcmp(method, "GET") == 0) {
        json_t *out = NULL;
        char msg[512] = "";
        int status = rt->fn(s->user, NULL, &out, msg, sizeof msg);
        if (!out) /* a GET handler may answer a non-200 with its own body (/ready) */
            return send_error(c, r, status, NULL, NULL, "%s", msg);
        enum MHD_Result ret = send_json(c, r, status, out);
        json_decref(out);
        return ret;
    }
    /* POST with a JSON body. */
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (!is_json_type(ct))
        return send_error(c, r, 415, NULL, NULL, "Content-Type must be application/json, not %s",
                          ct ? ct : "missing");
    if (r->too_large)
        return send_error(c, r, 413, NULL, NULL, "request body larger than %zu bytes",
                          s->opt->body_limit_bytes);
    if (too_deep(r->body ? r->body : "", r->len, s->opt->max_json_depth))
        return send_error(c, r, 400, NULL, NULL, "malformed JSON: nesting deeper than %d",
                          s->opt->max_json_depth);
    json_error_t je;
    json_t *body = json_loadb(r->body ? r->body : "", r->len,
                              JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!body)
        return send_error(c, r, 400, NULL, NULL, "malformed JSON at line %d, column %d: %s",
                          je.line, je.column, je.text);
    const json_t *items = rt->batch && json_is_object(body)
                              ? json_object_get(body, "customers")
                              : NULL;
    if (json_is_array(items) && json_array_size(items) > s->opt->batch_limit) {
        size_t n = json_array_size(items);
        json_decref(body);
        return send_error(c, r, 413, NULL, NULL, "batch of %zu customers is over the limit of %zu",
                          n, s->opt->batch_limit);
    }
    const json_t *schema = oas_request_schema(s->spec, op);
    oas_violation v[MAX_VIOLATIONS];
    size_t nv = schema ? oas_validate(s->spec, schema, body, v, MAX_VIOLATIONS) : 0;
    if (nv > 0) {
        json_decref(body);
        size_t shown = nv < MAX_VIOLATIONS ? nv : MAX_VIOLATIONS;
        return send_error(c, r, 422, violations_json(v, shown), NULL,
                          "request body does not match the schema (%zu violation%s%s)", nv,
                          nv == 1 ? "" : "s", nv > shown ? ", first 50 listed" : "");
    }
    enum MHD_Result ret = dispatch(s, c, r, rt, body);
    json_decref(body);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    http_server *s = cls;
    request *r = *con_cls;
    (void)version;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &r->t0);
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", url);
        *con_cls = r;
        __atomic_add_fetch(&s->inflight, 1, __ATOMIC_RELAXED);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->opt->body_limit_bytes) {
            r->too_large = 1;
            int known;
            if (find_route(s, method, url, &known) && strcmp(method, "POST") == 0)
                return send_error(c, r, 413, NULL, NULL, "request body of %s bytes is larger "
                                  "than %zu", cl, s->opt->body_limit_bytes);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || r->len + n > s->opt->body_limit_bytes) {
            r->too_large = 1; /* keep reading, keep nothing */
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
    if (r->status) /* already answered (early 413) */
        return MHD_YES;
    return process(s, c, r, method);
}

static void json_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    request *r = *con_cls;
    (void)c;
    if (!r)
        return;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long us = (long long)(t1.tv_sec - r->t0.tv_sec) * 1000000 +
                   (t1.tv_nsec - r->t0.tv_nsec) / 1000;
    if (s->log) {
        char ts[32];
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        /* One line per request, written under the stream's lock. */
        flockfile(s->log);
        fprintf(s->log, "{\"time\":\"%s.%03ldZ\",\"method\":\"", ts, now.tv_nsec / 1000000);
        json_escape(s->log, r->method);
        fputs("\",\"path\":\"", s->log);
        json_escape(s->log, r->path);
        fprintf(s->log, "\",\"status\":%d,\"latency_us\":%lld,\"bytes\":%zu,\"token_id\":",
                r->status ? r->status : 0, us, r->bytes);
        if (r->token_id[0])
            fprintf(s->log, "\"%s\"", r->token_id);
        else
            fputs("null", s->log);
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            fputs(",\"aborted\":true", s->log);
        fputs("}\n", s->log);
        fflush(s->log);
        funlockfile(s->log);
    }
    free(r->body);
    free(r);
    *con_cls = NULL;
    __atomic_sub_fetch(&s->inflight, 1, __ATOMIC_RELAXED);
}

rfm_status http_start(const server_options *opt, const oas_spec *spec, const http_tokens *tokens,
                      const http_route *routes, size_t nroutes, void *user, FILE *access_log,
                      http_server **out, int *port_out, char *err, size_t errlen)
{
    *out = NULL;
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    s->opt = opt;
    s->spec = spec;
    s->tokens = tokens;
    s->routes = routes;
    s->nroutes = nroutes;
    s->user = user;
    s->log = access_log;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)opt->port);
    if (inet_pton(AF_INET, opt->host, &addr.sin_addr) != 1) {
        free(s);
        return rfm_fail(err, errlen, RFM_EINVAL, "server.host '%s' is not an IPv4 address",
                        opt->host);
    }
    unsigned threads = opt->threads > 0 ? (unsigned)opt->threads
                                        : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    s->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC, (uint16_t)opt->port, NULL,
        NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)opt->connection_limit, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)opt->timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!s->d) {
        int e = errno;
        free(s);
        return rfm_fail(err, errlen, RFM_EIO, "cannot listen on %s:%d: %s", opt->host, opt->port,
                        e ? strerror(e) : "libmicrohttpd refused to start");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    *port_out = info ? info->port : opt->port;
    *out = s;
    return RFM_OK;
}

void http_stop(http_server *s, int grace_s)
{
    if (!s)
        return;
    MHD_socket fd = MHD_quiesce_daemon(s->d); /* no new connections */
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    for (int i = 0; i < grace_s * 100 && __atomic_load_n(&s->inflight, __ATOMIC_RELAXED) > 0;
         i++)
        usleep(10000);
    MHD_stop_daemon(s->d);
    free(s);
}
