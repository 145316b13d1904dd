/* export.c - a table written row by row in the format of its file name
 * (export.h). */
#include "export.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "bytescan.h"
#include "fileio.h"
#include "numfmt.h"

#define OUTBUF (1u << 20)

struct export_writer {
    export_format fmt;
    char *path, *tmp;
    FILE *f;
    gzFile gz;
    parquet_writer *pq;
    parquet_column *cols;
    size_t ncols;
    char *out; /* text formats: bytes waiting to be written */
    size_t len;
    int failed;
    export_sink sink; /* export_open_sink: where the bytes go instead of a file */
    void *sink_user;
    size_t cap; /* export_open_part: out grows to cap and is never drained */
    size_t lim; /* the bytes out holds before room() drains or grows it */
};

static int ends_with(const char *s, const char *end)
{
    size_t n = strlen(s), m = strlen(end);
    return n > m && !strcmp(s + n - m, end);
}

rfm_status export_format_of(const char *path, export_format *out, char *err, size_t errlen)
{
    if (ends_with(path, ".csv.gz"))
        *out = EXPORT_CSV_GZ;
    else if (ends_with(path, ".csv"))
        *out = EXPORT_CSV;
    else if (ends_with(path, ".jsonl"))
        *out = EXPORT_JSONL;
    else if (ends_with(path, ".parquet"))
        *out = EXPORT_PARQUET;
    else
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "%s: unknown format: the name must end in .csv, .csv.gz, .jsonl or "
                        ".parquet",
                        path);
    return RFM_OK;
}

static void free_writer(export_writer *w)
{
    if (!w)
        return;
    for (size_t j = 0; w->cols && j < w->ncols; j++)
        free((char *)w->cols[j].name);
    free(w->cols);
    free(w->path), free(w->tmp), free(w->out);
    free(w);
}

void export_abort(export_writer *w)
{
    if (!w)
        return;
    parquet_free(w->pq);
    if (w->gz)
        gzclose(w->gz);
    if (w->f)
        fclose(w->f);
    if (w->tmp)
        unlink(w->tmp);
    free_writer(w);
}

/* len bytes at buf to w's sink, gzip stream or file. */
static rfm_status emit(export_writer *w, const char *buf, size_t len, char *err, size_t errlen)
{
    if (!len)
        return RFM_OK;
    if (w->sink)
        return w->sink(w->sink_user, buf, len, err, errlen);
    if (w->gz) {
        for (size_t at = 0; at < len;) { /* gzwrite takes an unsigned length */
            unsigned n = len - at > (1u << 30) ? 1u << 30 : (unsigned)(len - at);
            if (gzwrite(w->gz, buf + at, n) != (int)n) {
                int zerr;
                const char *m = gzerror(w->gz, &zerr);
                return rfm_fail(err, errlen, RFM_EIO, "%s: write: %s", w->tmp,
                                zerr == Z_ERRNO ? strerror(errno) : m);
            }
            at += n;
        }
    } else if (fwrite(buf, 1, len, w->f) != len) {
        return rfm_fail(err, errlen, errno == ENOSPC ? RFM_ENOSPC : RFM_EIO, "%s: write: %s",
                        w->tmp, strerror(errno));
    }
    return RFM_OK;
}

static rfm_status drain(export_writer *w, char *err, size_t errlen)
{
    rfm_status st = emit(w, w->out, w->len, err, errlen);
    w->len = 0;
    return st;
}

/* Room for n more bytes in w->out (n <= OUTBUF): the buffer written out,
 * or a part's grown. */
static rfm_status make_room(export_writer *w, size_t n, char *err, size_t errlen)
{
    if (!w->cap)
        return drain(w, err, errlen);
    size_t cap = w->cap;
    while (cap < w->len + n)
        cap *= 2;
    char *o = realloc(w->out, cap);
    if (!o)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for %zu bytes of rows", cap);
    w->out = o, w->cap = w->lim = cap;
    return RFM_OK;
}

static inline rfm_status room(export_writer *w, size_t n, char *err, size_t errlen)
{
    return w->len + n <= w->lim ? RFM_OK : make_room(w, n, err, errlen);
}

static void put(export_writer *w, const char *s, size_t n)
{
    memcpy(w->out + w->len, s, n);
    w->len += n;
}

/* Whether s[0..n-1] holds a comma, quote, CR or LF: eight bytes at a time
 * (bytescan.h), the tail byte by byte. Most fields are short ids and names:
 * a vectorized loop's set-up cost more than the test (6 % of rfm-score's
 * time). */
static inline int needs_quote(const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = bytescan_word(s + i);
        if (bytescan_has(v, ',') | bytescan_has(v, '"') | bytescan_has(v, '\n') |
            bytescan_has(v, '\r'))
            return 1;
    }
    for (; i < n; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r')
            return 1;
    return 0;
}

/* A CSV field: quoted when it holds a separator, quote or line break. */
static rfm_status put_csv_string(export_writer *w, const char *s, size_t n, char *err,
                                 size_t errlen)
{
    int quote = needs_quote(s, n);
    rfm_status st;
    if (!quote && n <= OUTBUF / 4) { /* the usual field: copied as it is */
        if ((st = room(w, n, err, errlen)) != RFM_OK)
            return st;
        put(w, s, n);
        return RFM_OK;
    }
    for (size_t i = 0; i < n || (quote && i == 0);) {
        size_t chunk = n - i < OUTBUF / 4 ? n - i : OUTBUF / 4;
        if ((st = room(w, 2 * chunk + 2, err, errlen)) != RFM_OK)
            return st;
        if (quote && i == 0)
            w->out[w->len++] = '"';
        for (size_t k = 0; k < chunk; k++) {
            if (quote && s[i + k] == '"')
                w->out[w->len++] = '"';
            w->out[w->len++] = s[i + k];
        }
        i += chunk;
        if (quote && i == n)
            w->out[w->len++] = '"';
        if (!chunk)
            break;
    }
    return RFM_OK;
}

static rfm_status put_json_string(export_writer *w, const char *s, size_t n, char *err,
                                  size_t errlen)
{
    static const char HEX[] = "0123456789abcdef";
    rfm_status st;
    if ((st = room(w, 1, err, errlen)) != RFM_OK)
        return st;
    w->out[w->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        if ((st = room(w, 7, err, errlen)) != RFM_OK)
            return st;
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            w->out[w->len++] = '\\';
            w->out[w->len++] = (char)c;
        } else if (c < 0x20) {
            put(w, "\\u00", 4);
            w->out[w->len++] = HEX[c >> 4];
            w->out[w->len++] = HEX[c & 15];
        } else {
            w->out[w->len++] = (char)c;
        }
    }
    if ((st = room(w, 1, err, errlen)) != RFM_OK)
        return st;
    w->out[w->len++] = '"';
    return RFM_OK;
}

static rfm_status put_text_row(export_writer *w, const parquet_value *row, int header, char *err,
                               size_t errlen)
{
    int json = w->fmt == EXPORT_JSONL;
    rfm_status st = room(w, 1, err, errlen);
    if (st != RFM_OK)
        return st;
    if (json)
        w->out[w->len++] = '{';
    for (size_t j = 0; j < w->ncols; j++) {
        const parquet_column *c = &w->cols[j];
        if ((st = room(w, 2, err, errlen)) != RFM_OK)
            return st;
        if (j)
            w->out[w->len++] = ',';
        if (header) {
            if ((st = put_csv_string(w, c->name, strlen(c->name), err, errlen)) != RFM_OK)
                return st;
            continue;
        }
        if (json) {
            if ((st = put_json_string(w, c->name, strlen(c->name), err, errlen)) != RFM_OK ||
                (st = room(w, 1, err, errlen)) != RFM_OK)
                return st;
            w->out[w->len++] = ':';
        }
        const parquet_value *v = &row[j];
        int null = v->is_null || (c->type == PARQUET_DOUBLE && !isfinite(v->d));
        if ((st = room(w, NUMFMT_LEN + 8, err, errlen)) != RFM_OK)
            return st;
        if (null) {
            if (json)
                put(w, "null", 4);
        } else if (c->type == PARQUET_STRING) {
            st = json ? put_json_string(w, v->s, v->len, err, errlen)
                      : put_csv_string(w, v->s, v->len, err, errlen);
            if (st != RFM_OK)
                return st;
        } else if (c->type == PARQUET_INT64) {
            w->len += numfmt_int64(v->i, w->out + w->len);
        } else {
            w->len += numfmt_double(v->d, w->out + w->len);
        }
    }
    if ((st = room(w, 2, err, errlen)) != RFM_OK)
        return st;
    if (json)
        w->out[w->len++] = '}';
    w->out[w->len++] = '\n';
    return RFM_OK;
}

/* The columns copied into w (w->cols allocated for ncols), each name
 * duplicated; w->ncols counts those copied, so free_writer frees them.
 * 0 when a name could not be copied. */
static int copy_cols(export_writer *w, const parquet_column *cols, size_t ncols)
{
    for (size_t j = 0; j < ncols; j++) {
        w->cols[j] = cols[j];
        if (!(w->cols[j].name = strdup(cols[j].name)))
            return 0;
        w->ncols = j + 1;
    }
    return 1;
}

rfm_status export_open(const char *path, const parquet_column *cols, size_t ncols,
                       export_writer **out, char *err, size_t errlen)
{
    *out = NULL;
    export_format fmt;
    rfm_status st = export_format_of(path, &fmt, err, errlen);
    if (st != RFM_OK)
        return st;
    export_writer *w = calloc(1, sizeof *w);
    if (!w)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    w->fmt = fmt;
    size_t tlen = strlen(path) + 32;
    w->path = strdup(path);
    w->tmp = malloc(tlen);
    w->cols = calloc(ncols ? ncols : 1, sizeof *w->cols);
    w->out = fmt == EXPORT_PARQUET ? NULL : malloc(OUTBUF);
    w->lim = OUTBUF;
    if (!w->path || !w->tmp || !w->cols || (fmt != EXPORT_PARQUET && !w->out)) {
        free_writer(w);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    snprintf(w->tmp, tlen, "%s.tmp-%ld", path, (long)getpid());
    if (!copy_cols(w, cols, ncols)) {
        free_writer(w);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    if (!(w->f = fopen(w->tmp, "wb"))) {
        st = rfm_fail(err, errlen, RFM_EIO, "%s: %s", w->tmp, strerror(errno));
        free_writer(w);
        return st;
    }
    if (fmt == EXPORT_CSV_GZ) {
        int fd = dup(fileno(w->f));
        if (fd < 0 || !(w->gz = gzdopen(fd, "wb1"))) {
            if (fd >= 0)
                close(fd);
            export_abort(w);
            return rfm_fail(err, errlen, RFM_EIO, "%s: gzip: out of memory", path);
        }
        gzbuffer(w->gz, 1u << 18);
    }
    if (fmt == EXPORT_PARQUET) {
        setvbuf(w->f, NULL, _IOFBF, 1u << 20);
        st = parquet_open(w->f, w->cols, w->ncols, 0, 1, &w->pq, err, errlen);
    } else if (fmt != EXPORT_JSONL) {
        st = put_text_row(w, NULL, 1, err, errlen);
    }
    if (st != RFM_OK) {
        export_abort(w);
        return st;
    }
    *out = w;
    return RFM_OK;
}

rfm_status export_row(export_writer *w, const parquet_value *row, char *err, size_t errlen)
{
    if (w->fmt != EXPORT_PARQUET)
        return put_text_row(w, row, 0, err, errlen);
    /* Parquet has nulls of its own: a non-finite double becomes one (in a
     * copy of the row, made only for a row that has one). */
    size_t j = 0;
    while (j < w->ncols &&
           !(w->cols[j].type == PARQUET_DOUBLE && !row[j].is_null && !isfinite(row[j].d)))
        j++;
    if (j == w->ncols || w->ncols > 64)
        return parquet_write_row(w->pq, row, err, errlen);
    parquet_value v[64];
    memcpy(v, row, w->ncols * sizeof *v);
    for (; j < w->ncols; j++)
        if (w->cols[j].type == PARQUET_DOUBLE && !isfinite(v[j].d))
            v[j].is_null = 1;
    return parquet_write_row(w->pq, v, err, errlen);
}

rfm_status export_open_sink(export_format fmt, const parquet_column *cols, size_t ncols,
                            export_sink sink, void *user, export_writer **out, char *err,
                            size_t errlen)
{
    *out = NULL;
    if (fmt != EXPORT_CSV && fmt != EXPORT_JSONL)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "only CSV and JSON Lines are written to a stream, not %s",
                        fmt == EXPORT_PARQUET ? "Parquet" : "gzip CSV");
    export_writer *w = calloc(1, sizeof *w);
    if (!w)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    w->fmt = fmt, w->sink = sink, w->sink_user = user, w->lim = OUTBUF;
    w->cols = calloc(ncols ? ncols : 1, sizeof *w->cols);
    w->out = malloc(OUTBUF);
    if (!w->cols || !w->out) {
        free_writer(w);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    if (!copy_cols(w, cols, ncols)) {
        free_writer(w);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    rfm_status st = fmt == EXPORT_CSV ? put_text_row(w, NULL, 1, err, errlen) : RFM_OK;
    if (st != RFM_OK) {
        free_writer(w);
        return st;
    }
    *out = w;
    return RFM_OK;
}

rfm_status export_open_part(const export_writer *like, export_writer **out, char *err,
                            size_t errlen)
{
    *out = NULL;
    if (like->fmt == EXPORT_PARQUET)
        return rfm_fail(err, errlen, RFM_EINVAL, "a Parquet file is not written in parts");
    export_writer *w = calloc(1, sizeof *w);
    if (!w)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    w->fmt = like->fmt, w->cap = w->lim = 1u << 16;
    w->cols = calloc(like->ncols ? like->ncols : 1, sizeof *w->cols);
    w->out = malloc(w->cap);
    if (!w->cols || !w->out || !copy_cols(w, like->cols, like->ncols)) {
        free_writer(w);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    *out = w;
    return RFM_OK;
}

rfm_status export_splice(export_writer *w, export_writer *part, char *err, size_t errlen)
{
    rfm_status st = drain(w, err, errlen);
    if (st == RFM_OK)
        st = emit(w, part->out, part->len, err, errlen);
    part->len = 0;
    return st;
}

void export_part_free(export_writer *part) { free_writer(part); }

rfm_status export_flush(export_writer *w, char *err, size_t errlen)
{
    return w->sink ? drain(w, err, errlen) : RFM_OK;
}

rfm_status export_commit(export_writer *w, char *err, size_t errlen)
{
    if (w->sink) {
        rfm_status s = drain(w, err, errlen);
        free_writer(w);
        return s;
    }
    rfm_status st = w->pq ? parquet_finish(w->pq, err, errlen) : drain(w, err, errlen);
    if (st == RFM_OK && w->gz) {
        int rc = gzclose(w->gz);
        w->gz = NULL;
        if (rc != Z_OK)
            st = rfm_fail(err, errlen, RFM_EIO, "%s: gzip: error %d", w->tmp, rc);
    }
    if (st == RFM_OK && (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0))
        st = rfm_fail(err, errlen, errno == ENOSPC ? RFM_ENOSPC : RFM_EIO, "%s: %s", w->tmp,
                      strerror(errno));
    if (st == RFM_OK) {
        int rc = fclose(w->f);
        w->f = NULL;
        if (rc != 0)
            st = rfm_fail(err, errlen, RFM_EIO, "%s: %s", w->tmp, strerror(errno));
    }
    if (st == RFM_OK && rename(w->tmp, w->path) != 0)
        st = rfm_fail(err, errlen, RFM_EIO, "%s: rename to %s: %s", w->tmp, w->path,
                      strerror(errno));
    else if (st == RFM_OK) /* the file under its name after a crash too */
        st = fileio_sync_parent(w->path, err, errlen);
    if (st != RFM_OK) {
        export_abort(w);
        return st;
    }
    parquet_free(w->pq);
    free_writer(w);
    return RFM_OK;
}
