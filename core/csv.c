/* csv.c - streaming RFC 4180 reader over plain or gzip input.
 *
 * Bytes flow: file (fread, 256 KiB) -> sha256 of the raw bytes -> inflate
 * when the input starts with the gzip magic -> the record parser, which
 * copies one record at a time into `rec` (fields NUL-terminated). Fields of
 * unquoted text are copied in spans found with a lookup table, which keeps
 * the parser near memcpy speed on typical exports.
 */
#include "csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "sha256.h"

#define RAW_CHUNK (256u * 1024u)
#define DAT_CHUNK (1024u * 1024u)
#define REC_MAX (16u * 1024u * 1024u) /* longest record accepted */
#define FIELDS_MAX 4096u              /* most fields in a record */

struct csv_reader {
    char *name;
    FILE *f;
    const uint8_t *mem;
    size_t memlen, mempos;
    int gz, zinit, zend;
    z_stream zs;
    uint8_t *raw;
    size_t rawlen; /* bytes of raw not yet fed to inflate (gz) */
    uint8_t *dat;  /* decompressed (or raw) bytes being parsed */
    size_t datlen, datpos;
    uint64_t datbase; /* decompressed offset of dat[0] */
    int src_eof;      /* no more raw bytes */
    int started;
    sha256_ctx sha;
    uint8_t digest[32];
    char *rec;
    size_t reccap;
    csv_field *fields;
    size_t *fofs;     /* field offsets in rec while the record is built */
    uint64_t *fcol;   /* field start columns */
    size_t nfields;
    uint64_t line;      /* current physical line */
    uint64_t linestart; /* decompressed offset of the current line's start */
    uint64_t recline, records, bytes, size;
};

/* Bytes that end a span of unquoted field text. */
static const unsigned char special[256] = {[','] = 1, ['"'] = 1, ['\r'] = 1, ['\n'] = 1, [0] = 1};

/* Read raw bytes from the source into buf; returns count, 0 at end. */
static rfm_status read_raw(csv_reader *r, uint8_t *buf, size_t cap, size_t *got, char *err,
                           size_t errlen)
{
    size_t n;
    if (r->f) {
        n = fread(buf, 1, cap, r->f);
        if (n < cap && ferror(r->f))
            return rfm_fail(err, errlen, RFM_EIO, "%s: read error: %s", r->name, strerror(errno));
    } else {
        n = r->memlen - r->mempos < cap ? r->memlen - r->mempos : cap;
        memcpy(buf, r->mem + r->mempos, n);
        r->mempos += n;
    }
    if (n == 0)
        r->src_eof = 1;
    sha256_update(&r->sha, buf, n);
    r->bytes += n;
    *got = n;
    return RFM_OK;
}

/* Refill dat with the next bytes of decompressed input. *got = 0 at end. */
static rfm_status refill(csv_reader *r, size_t *got, char *err, size_t errlen)
{
    rfm_status st;
    r->datbase += r->datlen;
    r->datpos = r->datlen = 0;
    *got = 0;
    if (!r->gz) {
        if (r->src_eof)
            return RFM_OK;
        st = read_raw(r, r->dat, DAT_CHUNK, got, err, errlen);
        r->datlen = *got;
        return st;
    }
    while (r->datlen == 0) {
        if (r->zs.avail_in == 0) {
            if (r->src_eof) {
                if (!r->zend)
                    return rfm_fail(err, errlen, RFM_EPARSE,
                                    "%s:%llu:1: gzip data ends early (truncated file?)", r->name,
                                    (unsigned long long)r->line);
                return RFM_OK;
            }
            size_t n;
            if ((st = read_raw(r, r->raw, RAW_CHUNK, &n, err, errlen)) != RFM_OK)
                return st;
            r->zs.next_in = r->raw;
            r->zs.avail_in = (uInt)n;
            if (n == 0)
                continue;
            if (r->zend) { /* another gzip member follows */
                if (inflateReset(&r->zs) != Z_OK)
                    return rfm_fail(err, errlen, RFM_EPARSE, "%s: bad gzip member", r->name);
                r->zend = 0;
            }
        } else if (r->zend) {
            if (inflateReset(&r->zs) != Z_OK)
                return rfm_fail(err, errlen, RFM_EPARSE, "%s: bad gzip member", r->name);
            r->zend = 0;
        }
        r->zs.next_out = r->dat;
        r->zs.avail_out = DAT_CHUNK;
        int zr = inflate(&r->zs, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
            r->zend = 1;
        else if (zr == Z_MEM_ERROR)
            return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory in inflate", r->name);
        else if (zr != Z_OK && zr != Z_BUF_ERROR)
            return rfm_fail(err, errlen, RFM_EPARSE, "%s: corrupt gzip data: %s", r->name,
                            r->zs.msg ? r->zs.msg : "inflate failed");
        r->datlen = DAT_CHUNK - r->zs.avail_out;
    }
    *got = r->datlen;
    return RFM_OK;
}

static rfm_status start(csv_reader *r, char *err, size_t errlen)
{
    size_t n;
    rfm_status st = read_raw(r, r->raw, RAW_CHUNK, &n, err, errlen);
    if (st != RFM_OK)
        return st;
    if (n >= 2 && r->raw[0] == 0x1f && r->raw[1] == 0x8b) {
        r->gz = 1;
        if (inflateInit2(&r->zs, 15 + 32) != Z_OK)
            return rfm_fail(err, errlen, RFM_ENOMEM, "%s: cannot initialise zlib", r->name);
        r->zinit = 1;
        r->zs.next_in = r->raw;
        r->zs.avail_in = (uInt)n;
        r->datlen = 0;
        if ((st = refill(r, &n, err, errlen)) != RFM_OK)
            return st;
        r->datbase = 0;
    } else {
        memcpy(r->dat, r->raw, n);
        r->datlen = n;
    }
    /* A UTF-8 byte order mark is not part of the first column's name. */
    if (r->datlen >= 3 && r->dat[0] == 0xef && r->dat[1] == 0xbb && r->dat[2] == 0xbf) {
        r->datpos = 3;
        r->linestart = 3;
    }
    r->started = 1;
    return RFM_OK;
}

static rfm_status alloc_reader(const char *name, csv_reader **out, char *err, size_t errlen)
{
    csv_reader *r = calloc(1, sizeof *r);
    if (!r)
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", name);
    r->name = strdup(name);
    r->raw = malloc(RAW_CHUNK);
    r->dat = malloc(DAT_CHUNK);
    r->reccap = 4096;
    r->rec = malloc(r->reccap);
    r->fields = malloc(64 * sizeof *r->fields);
    r->fofs = malloc(64 * sizeof *r->fofs);
    r->fcol = malloc(64 * sizeof *r->fcol);
    if (!r->name || !r->raw || !r->dat || !r->rec || !r->fields || !r->fofs || !r->fcol) {
        csv_close(r);
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", name);
    }
    r->line = 1;
    sha256_init(&r->sha);
    *out = r;
    return RFM_OK;
}

rfm_status csv_open(const char *path, csv_reader **out, char *err, size_t errlen)
{
    csv_reader *r;
    *out = NULL;
    rfm_status st = alloc_reader(path, &r, err, errlen);
    if (st != RFM_OK)
        return st;
    r->f = fopen(path, "rb");
    if (!r->f) {
        st = rfm_fail(err, errlen, RFM_EIO, "%s: %s", path, strerror(errno));
        csv_close(r);
        return st;
    }
    struct stat sb;
    if (fstat(fileno(r->f), &sb) == 0)
        r->size = (uint64_t)sb.st_size;
    *out = r;
    return RFM_OK;
}

rfm_status csv_open_mem(const void *data, size_t len, const char *name, csv_reader **out,
                        char *err, size_t errlen)
{
    csv_reader *r;
    *out = NULL;
    rfm_status st = alloc_reader(name, &r, err, errlen);
    if (st != RFM_OK)
        return st;
    r->mem = data;
    r->memlen = len;
    r->size = len;
    *out = r;
    return RFM_OK;
}

void csv_close(csv_reader *r)
{
    if (!r)
        return;
    if (r->f)
        fclose(r->f);
    if (r->zinit)
        inflateEnd(&r->zs);
    free(r->name);
    free(r->raw);
    free(r->dat);
    free(r->rec);
    free(r->fields);
    free(r->fofs);
    free(r->fcol);
    free(r);
}

static rfm_status rec_reserve(csv_reader *r, size_t need, char *err, size_t errlen)
{
    if (need <= r->reccap)
        return RFM_OK;
    if (need > REC_MAX)
        return rfm_fail(err, errlen, RFM_EPARSE,
                        "%s:%llu:1: record longer than %u bytes (unterminated quote?)", r->name,
                        (unsigned long long)r->recline, REC_MAX);
    size_t cap = r->reccap;
    while (cap < need)
        cap *= 2;
    char *n = realloc(r->rec, cap);
    if (!n)
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", r->name);
    r->rec = n;
    r->reccap = cap;
    return RFM_OK;
}

static rfm_status push_field(csv_reader *r, size_t ofs, uint64_t col, char *err, size_t errlen)
{
    size_t n = r->nfields;
    if (n >= 64 && (n & (n - 1)) == 0) { /* grow at powers of two past 64 */
        if (n >= FIELDS_MAX)
            return rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu:%llu: more than %u fields",
                            r->name, (unsigned long long)r->recline, (unsigned long long)col,
                            FIELDS_MAX);
        csv_field *f = realloc(r->fields, 2 * n * sizeof *f);
        if (f)
            r->fields = f;
        size_t *o = realloc(r->fofs, 2 * n * sizeof *o);
        if (o)
            r->fofs = o;
        uint64_t *c = realloc(r->fcol, 2 * n * sizeof *c);
        if (c)
            r->fcol = c;
        if (!f || !o || !c)
            return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", r->name);
    }
    r->fofs[n] = ofs;
    r->fcol[n] = col;
    r->nfields = n + 1;
    return RFM_OK;
}

#define NEED(k)                                                                           \
    do {                                                                                  \
        if ((st = rec_reserve(r, len + (k), err, errlen)) != RFM_OK)                      \
            return st;                                                                    \
    } while (0)

/* Peek at the next byte, refilling as needed; -1 at end of input. */
static inline int peekc(csv_reader *r, rfm_status *st, char *err, size_t errlen)
{
    if (r->datpos < r->datlen)
        return r->dat[r->datpos];
    size_t got;
    *st = refill(r, &got, err, errlen);
    if (*st != RFM_OK || got == 0)
        return -1;
    return r->dat[r->datpos];
}

rfm_status csv_next(csv_reader *r, const csv_field **fields, size_t *n, char *err,
                    size_t errlen)
{
    rfm_status st = RFM_OK;
    *fields = NULL;
    *n = 0;
    if (!r->started && (st = start(r, err, errlen)) != RFM_OK)
        return st;
    for (;;) { /* one iteration per record; blank lines loop again */
        size_t len = 0;
        r->nfields = 0;
        r->recline = r->line;
        int c = peekc(r, &st, err, errlen);
        if (st != RFM_OK)
            return st;
        if (c < 0) {
            sha256_ctx copy = r->sha;
            sha256_final(&copy, r->digest);
            return RFM_OK;
        }
        for (;;) { /* one iteration per field */
            uint64_t col = r->datbase + r->datpos - r->linestart + 1;
            if ((st = push_field(r, len, col, err, errlen)) != RFM_OK)
                return st;
            c = peekc(r, &st, err, errlen);
            if (st != RFM_OK)
                return st;
            if (c == '"') {
                uint64_t qline = r->line;
                r->datpos++;
                for (;;) {
                    c = peekc(r, &st, err, errlen);
                    if (st != RFM_OK)
                        return st;
                    if (c < 0)
                        return rfm_fail(err, errlen, RFM_EPARSE,
                                        "%s:%llu:%llu: quoted field not closed before end of file",
                                        r->name, (unsigned long long)qline,
                                        (unsigned long long)col);
                    const uint8_t *p = r->dat + r->datpos, *e = r->dat + r->datlen;
                    const uint8_t *q = p;
                    while (q < e && *q != '"' && *q != '\n' && *q != 0)
                        q++;
                    size_t span = (size_t)(q - p);
                    NEED(span + 2);
                    memcpy(r->rec + len, p, span);
                    len += span;
                    r->datpos += span;
                    if (q == e)
                        continue;
                    if (*q == 0)
                        return rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu:%llu: NUL byte in data",
                                        r->name, (unsigned long long)r->line,
                                        (unsigned long long)(r->datbase + r->datpos -
                                                             r->linestart + 1));
                    r->datpos++;
                    if (*q == '\n') { /* newline inside quotes belongs to the field */
                        r->rec[len++] = '\n';
                        r->line++;
                        r->linestart = r->datbase + r->datpos;
                        continue;
                    }
                    c = peekc(r, &st, err, errlen); /* after a quote */
                    if (st != RFM_OK)
                        return st;
                    if (c == '"') {
                        r->rec[len++] = '"';
                        r->datpos++;
                        continue;
                    }
                    if (c < 0 || c == ',' || c == '\r' || c == '\n')
                        break;
                    return rfm_fail(err, errlen, RFM_EPARSE,
                                    "%s:%llu:%llu: text after the closing quote of a field",
                                    r->name, (unsigned long long)r->line,
                                    (unsigned long long)(r->datbase + r->datpos - r->linestart +
                                                         1));
                }
            } else {
                /* Unquoted: copy spans up to the next special byte. A quote
                 * inside unquoted text (12" PLATE) is kept literally, as
                 * spreadsheet exports write it. */
                for (;;) {
                    const uint8_t *p = r->dat + r->datpos, *e = r->dat + r->datlen;
                    const uint8_t *q = p;
                    while (q < e && !special[*q])
                        q++;
                    size_t span = (size_t)(q - p);
                    NEED(span + 2);
                    memcpy(r->rec + len, p, span);
                    len += span;
                    r->datpos += span;
                    if (q < e && *q == '"') {
                        r->rec[len++] = '"';
                        r->datpos++;
                        continue;
                    }
                    if (q < e && *q == 0)
                        return rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu:%llu: NUL byte in data",
                                        r->name, (unsigned long long)r->line,
                                        (unsigned long long)(r->datbase + r->datpos -
                                                             r->linestart + 1));
                    if (q < e)
                        break;
                    c = peekc(r, &st, err, errlen);
                    if (st != RFM_OK)
                        return st;
                    if (c < 0)
                        break;
                }
                c = peekc(r, &st, err, errlen);
                if (st != RFM_OK)
                    return st;
            }
            r->rec[len++] = '\0';
            if (c == ',') {
                r->datpos++;
                continue;
            }
            /* End of record: CR, LF, CRLF or end of input. */
            if (c == '\r') {
                r->datpos++;
                c = peekc(r, &st, err, errlen);
                if (st != RFM_OK)
                    return st;
            }
            if (c == '\n')
                r->datpos++;
            r->line++;
            r->linestart = r->datbase + r->datpos;
            break;
        }
        if (r->nfields == 1 && len == 1)
            continue; /* blank line */
        for (size_t i = 0; i < r->nfields; i++) {
            r->fields[i].s = r->rec + r->fofs[i];
            size_t end = i + 1 < r->nfields ? r->fofs[i + 1] : len;
            r->fields[i].len = end - r->fofs[i] - 1;
        }
        r->records++;
        *fields = r->fields;
        *n = r->nfields;
        return RFM_OK;
    }
}

uint64_t csv_line(const csv_reader *r) { return r->recline; }
uint64_t csv_column(const csv_reader *r, size_t i) { return i < r->nfields ? r->fcol[i] : 1; }
uint64_t csv_records(const csv_reader *r) { return r->records; }
uint64_t csv_bytes(const csv_reader *r) { return r->bytes; }
uint64_t csv_size(const csv_reader *r) { return r->size; }
void csv_sha256(const csv_reader *r, uint8_t digest[32]) { memcpy(digest, r->digest, 32); }
const char *csv_name(const csv_reader *r) { return r->name; }

int csv_find(const csv_field *fields, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i].s, name) == 0)
            return (int)i;
    return -1;
}
