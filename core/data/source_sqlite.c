/* source_sqlite.c - a SQLite query streamed as CSV (source.h).
 *
 * The database is opened read-only; the statement is prepared by
 * source_sqlite_open on the caller's thread (so SQL errors come at once)
 * and stepped by the reader thread, one row at a time: each row becomes a
 * CSV line (RFC 4180: a field with a comma, quote, CR or LF is quoted,
 * quotes doubled) in a row buffer the reader copies from. The header is the
 * result's column names. NULL is an empty field, integers are written in
 * full, reals as the shortest text that reads back to the same double.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "numfmt.h"
#include "source.h"

#define ROW_MAX                                                                                    \
    (64u * 1024u * 1024u) /* longer rows are refused (the CSV reader's cap is lower)               \
                           */

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *stmt;
    char *url;
    char *row;
    size_t len, pos, cap;
    int header_done, ended;
} lite_src;

static int put(lite_src *s, const char *p, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n)
            cap *= 2;
        if (cap > ROW_MAX)
            return -1;
        char *r = realloc(s->row, cap);
        if (!r)
            return -1;
        s->row = r;
        s->cap = cap;
    }
    memcpy(s->row + s->len, p, n);
    s->len += n;
    return 0;
}

static int put_field(lite_src *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] != ',' && p[i] != '"' && p[i] != '\r' && p[i] != '\n')
        i++;
    if (i == n)
        return put(s, p, n);
    if (put(s, "\"", 1))
        return -1;
    for (size_t a = 0; a < n;) {
        const char *q = memchr(p + a, '"', n - a);
        size_t b = q ? (size_t)(q - p) + 1 : n;
        if (put(s, p + a, b - a) || (q && put(s, "\"", 1)))
            return -1;
        a = b;
    }
    return put(s, "\"", 1);
}

/* The next line (header or row) into s->row; s->ended at the last. */
static rfm_status next_line(lite_src *s, char *err, size_t errlen)
{
    int nc = sqlite3_column_count(s->stmt);
    s->len = s->pos = 0;
    int fail = 0;
    if (!s->header_done) {
        s->header_done = 1;
        for (int i = 0; i < nc && !fail; i++) {
            const char *name = sqlite3_column_name(s->stmt, i);
            fail = (i && put(s, ",", 1)) || !name || put_field(s, name, strlen(name));
        }
    } else {
        int rc = sqlite3_step(s->stmt);
        if (rc == SQLITE_DONE) {
            s->ended = 1;
            return RFM_OK;
        }
        if (rc != SQLITE_ROW) {
            s->ended = 1;
            return rfm_fail(err, errlen, RFM_EIO, "%s: query failed while streaming: %s", s->url,
                            sqlite3_errmsg(s->db));
        }
        for (int i = 0; i < nc && !fail; i++) {
            if (i && put(s, ",", 1)) {
                fail = 1;
                break;
            }
            switch (sqlite3_column_type(s->stmt, i)) {
            case SQLITE_NULL: break;
            case SQLITE_FLOAT: {
                char num[NUMFMT_LEN];
                size_t k = numfmt_double(sqlite3_column_double(s->stmt, i), num);
                fail = put(s, num, k);
                break;
            }
            default: { /* integers and text as SQLite writes them; blobs as their bytes */
                const unsigned char *t = sqlite3_column_text(s->stmt, i);
                int k = sqlite3_column_bytes(s->stmt, i);
                fail = t ? put_field(s, (const char *)t, (size_t)k) : 0;
            }
            }
        }
    }
    if (fail || put(s, "\n", 1)) {
        s->ended = 1;
        return rfm_fail(err, errlen, RFM_ENOMEM,
                        "%s: out of memory for a row (or a row above "
                        "%u bytes)",
                        s->url, ROW_MAX);
    }
    return RFM_OK;
}

static rfm_status lite_read(void *ctx, uint8_t *buf, size_t cap, size_t *got, char *err,
                            size_t errlen)
{
    lite_src *s = ctx;
    size_t n = 0;
    while (n < cap) {
        if (s->pos < s->len) {
            size_t k = s->len - s->pos < cap - n ? s->len - s->pos : cap - n;
            memcpy(buf + n, s->row + s->pos, k);
            s->pos += k;
            n += k;
            continue;
        }
        if (s->ended)
            break;
        rfm_status st = next_line(s, err, errlen);
        if (st != RFM_OK)
            return st;
    }
    *got = n;
    return RFM_OK;
}

static void lite_close(void *ctx)
{
    lite_src *s = ctx;
    sqlite3_finalize(s->stmt);
    sqlite3_close(s->db);
    free(s->row);
    free(s->url);
    free(s);
}

rfm_status source_sqlite_open(const char *url, const char *query, csv_reader **out, char *err,
                              size_t errlen)
{
    *out = NULL;
    lite_src *s = calloc(1, sizeof *s);
    if (!s || !(s->url = strdup(url))) {
        free(s);
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", url);
    }
    rfm_status st;
    const char *path = url + strlen("sqlite://");
    /* Read-only, and no new empty file for a mistyped path. */
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        st = rfm_fail(err, errlen, rc == SQLITE_NOMEM ? RFM_ENOMEM : RFM_EIO,
                      "%s: cannot open %s: %s", url, path,
                      s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        lite_close(s);
        return st;
    }
    const char *tail;
    rc = sqlite3_prepare_v2(s->db, query, -1, &s->stmt, &tail);
    if (rc == SQLITE_OK && !s->stmt)
        rc = SQLITE_MISUSE; /* only comments or blanks */
    if (rc == SQLITE_OK && tail[strspn(tail, " \t\r\n;")]) {
        st = rfm_fail(err, errlen, RFM_EINVAL,
                      "%s: data.query: one statement only; text "
                      "follows it: %.40s",
                      url, tail + strspn(tail, " \t\r\n;"));
        lite_close(s);
        return st;
    }
    if (rc != SQLITE_OK) {
        st = rfm_fail(err, errlen, RFM_EINVAL, "%s: data.query: %s", url,
                      rc == SQLITE_MISUSE ? "no statement" : sqlite3_errmsg(s->db));
        lite_close(s);
        return st;
    }
    if (sqlite3_column_count(s->stmt) == 0) {
        st = rfm_fail(err, errlen, RFM_EINVAL,
                      "%s: data.query returns no columns (a SELECT "
                      "is needed)",
                      url);
        lite_close(s);
        return st;
    }
    return csv_open_source(lite_read, lite_close, s, url, out, err, errlen);
}
