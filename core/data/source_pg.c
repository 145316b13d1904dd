/* source_pg.c - a PostgreSQL query streamed as CSV (source.h).
 *
 * One connection per reader, opened by source_pg_open on the caller's
 * thread and then used only by the reader thread: COPY (query) TO STDOUT
 * WITH (FORMAT csv, HEADER) hands back one row per PQgetCopyData call, so
 * neither side holds more than a row and libpq's buffer. The server's CSV
 * is RFC 4180 with NULL as an empty field; dates are written in ISO form
 * (the session's DateStyle is set to ISO).
 *
 * libpq is loaded when the first such source opens (dlopen of libpq.so.5,
 * Debian's libpq5), not when a program starts: its dependencies (Kerberos,
 * LDAP, GnuTLS, OpenSSL: about twenty libraries) made every start of
 * rfm-train, rfm-serve and rfm-score about 4 ms slower, for a source few
 * runs use. Each reader keeps the functions it calls in its own table; the
 * library stays loaded (libpq and OpenSSL do not support being unloaded).
 *
 * Workload: millions of rows read once; the rate is in `make bench`.
 */
#include <dlfcn.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"

#define LIBPQ "libpq.so.5"

/* The libpq functions used, as libpq-fe.h declares them. */
#define PQ_FUNCS(X)                                                                                \
    X(PQconnectdb)                                                                                 \
    X(PQstatus)                                                                                    \
    X(PQerrorMessage)                                                                              \
    X(PQsetNoticeProcessor)                                                                        \
    X(PQexec)                                                                                      \
    X(PQresultStatus)                                                                              \
    X(PQresultErrorField)                                                                          \
    X(PQclear)                                                                                     \
    X(PQgetCopyData)                                                                               \
    X(PQgetResult)                                                                                 \
    X(PQfreemem)                                                                                   \
    X(PQfinish)

typedef struct {
#define PQ_FIELD(f) __typeof__(f) *f;
    PQ_FUNCS(PQ_FIELD)
#undef PQ_FIELD
} pq_api;

/* libpq's functions into *pq (loading it the first time). */
static rfm_status pq_load(pq_api *pq, const char *url, char *err, size_t errlen)
{
    void *lib = dlopen(LIBPQ, RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return rfm_fail(err, errlen, RFM_ELIBRARY,
                        "%s: a PostgreSQL source needs libpq (Debian's libpq5): %s", url,
                        dlerror());
#define PQ_SYM(f)                                                                                  \
    if (!(*(void **)&pq->f = dlsym(lib, #f)))                                                      \
        return rfm_fail(err, errlen, RFM_ELIBRARY, "%s: %s has no %s", url, LIBPQ, #f);
    PQ_FUNCS(PQ_SYM)
#undef PQ_SYM
    return RFM_OK;
}

typedef struct {
    pq_api pq;
    PGconn *conn;
    char *url;
    char *row; /* PQgetCopyData's current row (PQfreemem) */
    size_t len, pos;
    int ended;
} pg_src;

/* libpq's messages span lines (a hint, the query with a caret under the
 * error); messages here are one line: line breaks and tabs become spaces. */
static rfm_status pg_fail(char *err, size_t errlen, rfm_status st, const char *url,
                          const char *what, const char *m)
{
    char one[RFM_ERRLEN];
    size_t n = 0;
    for (const char *p = m && *m ? m : "no message from the server"; *p && n + 1 < sizeof one;
         p++) {
        int blank = *p == '\n' || *p == '\t' || *p == '\r' || *p == ' ';
        if (!blank)
            one[n++] = *p;
        else if (n && one[n - 1] != ' ')
            one[n++] = ' ';
    }
    while (n && one[n - 1] == ' ')
        n--;
    one[n] = '\0';
    return rfm_fail(err, errlen, st, "%s: %s: %s", url, what, one);
}

/* A failed result's message without the query excerpt: "ERROR: reason". */
static rfm_status pg_fail_res(char *err, size_t errlen, rfm_status st, const pq_api *pq,
                              const char *url, const char *what, const PGresult *res, PGconn *conn)
{
    const char *sev = res ? pq->PQresultErrorField(res, PG_DIAG_SEVERITY) : NULL;
    const char *prim = res ? pq->PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!sev || !prim)
        return pg_fail(err, errlen, st, url, what, pq->PQerrorMessage(conn));
    char m[RFM_ERRLEN];
    snprintf(m, sizeof m, "%s: %s", sev, prim);
    return pg_fail(err, errlen, st, url, what, m);
}

/* libpq would print the server's notices on stderr; core/ never prints. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static rfm_status pg_read(void *ctx, uint8_t *buf, size_t cap, size_t *got, char *err,
                          size_t errlen)
{
    pg_src *s = ctx;
    size_t n = 0;
    while (n < cap && !s->ended) {
        if (s->pos < s->len) {
            size_t k = s->len - s->pos < cap - n ? s->len - s->pos : cap - n;
            memcpy(buf + n, s->row + s->pos, k);
            s->pos += k;
            n += k;
            continue;
        }
        if (s->row) {
            s->pq.PQfreemem(s->row);
            s->row = NULL;
        }
        int k = s->pq.PQgetCopyData(s->conn, &s->row, 0);
        if (k > 0) {
            s->len = (size_t)k;
            s->pos = 0;
            continue;
        }
        s->ended = 1;
        /* The COPY's own outcome: a query can fail after rows have come. */
        PGresult *res = s->pq.PQgetResult(s->conn);
        int ok = k == -1 && res && s->pq.PQresultStatus(res) == PGRES_COMMAND_OK;
        rfm_status st = RFM_OK;
        if (!ok)
            st = pg_fail_res(err, errlen, RFM_EIO, &s->pq, s->url, "query failed while streaming",
                             res, s->conn);
        s->pq.PQclear(res);
        while ((res = s->pq.PQgetResult(s->conn)) != NULL)
            s->pq.PQclear(res);
        if (st != RFM_OK)
            return st;
    }
    *got = n;
    return RFM_OK;
}

static void pg_close(void *ctx)
{
    pg_src *s = ctx;
    if (s->row)
        s->pq.PQfreemem(s->row);
    s->pq.PQfinish(s->conn); /* mid-COPY too: the server ends the query */
    free(s->url);
    free(s);
}

rfm_status source_pg_open(const char *url, const char *query, csv_reader **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    pg_src *s = calloc(1, sizeof *s);
    if (!s || !(s->url = strdup(url))) {
        free(s);
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", url);
    }
    rfm_status st = pq_load(&s->pq, url, err, errlen);
    if (st != RFM_OK) {
        free(s->url);
        free(s);
        return st;
    }
    char *sql = NULL;
    PGresult *res = NULL;
    s->conn = s->pq.PQconnectdb(url);
    if (!s->conn) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", url);
        goto fail;
    }
    if (s->pq.PQstatus(s->conn) != CONNECTION_OK) {
        st = pg_fail(err, errlen, RFM_EIO, url, "cannot connect", s->pq.PQerrorMessage(s->conn));
        goto fail;
    }
    s->pq.PQsetNoticeProcessor(s->conn, ignore_notice, NULL);
    res = s->pq.PQexec(s->conn, "SET DateStyle = ISO");
    if (s->pq.PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = pg_fail_res(err, errlen, RFM_EIO, &s->pq, url, "SET DateStyle", res, s->conn);
        goto fail;
    }
    s->pq.PQclear(res);
    /* COPY takes one statement without its closing semicolon. */
    size_t qn = strlen(query);
    while (qn && strchr(" \t\r\n;", query[qn - 1]))
        qn--;
    static const char pre[] = "COPY (", post[] = "\n) TO STDOUT WITH (FORMAT csv, HEADER)";
    if (!(sql = malloc(sizeof pre + qn + sizeof post))) {
        res = NULL;
        st = rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", url);
        goto fail;
    }
    memcpy(sql, pre, sizeof pre - 1);
    memcpy(sql + sizeof pre - 1, query, qn);
    memcpy(sql + sizeof pre - 1 + qn, post, sizeof post);
    res = s->pq.PQexec(s->conn, sql);
    free(sql);
    sql = NULL;
    if (s->pq.PQresultStatus(res) != PGRES_COPY_OUT) {
        st = pg_fail_res(err, errlen, RFM_EINVAL, &s->pq, url, "data.query", res, s->conn);
        goto fail;
    }
    s->pq.PQclear(res);
    return csv_open_source(pg_read, pg_close, s, url, out, err, errlen);
fail:
    s->pq.PQclear(res);
    free(sql);
    pg_close(s);
    return st;
}
