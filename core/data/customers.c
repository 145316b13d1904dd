/* customers.c - write and index the per-customer table. */
#include "customers.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csv.h"
#include "hash.h"
#include "numfmt.h"

/* Files written before the churn trends have the first OLD_NCOLS columns;
 * they load with the trends unknown (NaN). */
#define NCOLS 10
#define OLD_NCOLS 8
static const char *const COLS[NCOLS] = {"customer_id",
                                        "recency",
                                        "frequency",
                                        "monetary",
                                        "repeat_purchases",
                                        "days_first_to_last_purchase",
                                        "days_since_first_purchase",
                                        "mean_repeat_spend",
                                        "ipt_trend",
                                        "spend_trend"};

struct customers {
    char **ids;
    customer_row *rows;
    size_t n;
    uint32_t *slots; /* index + 1, 0 = empty */
    size_t mask;
};

char *customers_csv(const char *const *ids, const customer_row *rows, size_t n)
{
    size_t cap = 256 + n * 160, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    for (int k = 0; k < NCOLS; k++)
        len += (size_t)snprintf(s + len, cap - len, "%s%s", k ? "," : "", COLS[k]);
    s[len++] = '\n';
    for (size_t i = 0; i < n; i++) {
        size_t need = len + strlen(ids[i]) * 2 + NCOLS * (NUMFMT_LEN + 1) + 16;
        if (need > cap) {
            cap = 2 * need;
            char *t = realloc(s, cap);
            if (!t) {
                free(s);
                return NULL;
            }
            s = t;
        }
        int quote = strpbrk(ids[i], ",\"\r\n") != NULL;
        if (quote)
            s[len++] = '"';
        for (const char *p = ids[i]; *p; p++) {
            if (*p == '"')
                s[len++] = '"';
            s[len++] = *p;
        }
        if (quote)
            s[len++] = '"';
        const double v[NCOLS - 1] = {
            rows[i].recency,           rows[i].frequency,          rows[i].monetary,
            rows[i].repeat_purchases,  rows[i].days_first_to_last, rows[i].days_since_first,
            rows[i].mean_repeat_spend, rows[i].ipt_trend,          rows[i].spend_trend};
        for (int k = 0; k < NCOLS - 1; k++) {
            if (isnan(v[k]))
                s[len++] = ',';
            else {
                s[len++] = ',';
                len += numfmt_double(v[k], s + len);
            }
        }
        s[len++] = '\n';
    }
    s[len] = '\0';
    return s;
}

void customers_free(customers *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->ids[i]);
    free(c->ids);
    free(c->rows);
    free(c->slots);
    free(c);
}

size_t customers_count(const customers *c) { return c->n; }

const customer_row *customers_row(const customers *c, size_t i)
{
    return i < c->n ? &c->rows[i] : NULL;
}

const char *customers_id(const customers *c, size_t i) { return i < c->n ? c->ids[i] : NULL; }

const customer_row *customers_find(const customers *c, const char *id)
{
    if (!c->slots)
        return NULL;
    uint64_t h = hash_bytes(id, strlen(id), 7);
    for (size_t j = h & c->mask; c->slots[j]; j = (j + 1) & c->mask)
        if (strcmp(c->ids[c->slots[j] - 1], id) == 0)
            return &c->rows[c->slots[j] - 1];
    return NULL;
}

/* A field of the form -?D+(.D+)? with at most 19 digits in all into *out
 * as strtod reads it, or 0 (more digits, exponents, blanks, words, and the
 * rare ties below): strtod then. A million-row table has 9 million
 * numbers, most written with 16 or 17 digits; strtod's general path took
 * most of its load time.
 * - At most 15 digits (counts, days, amounts in cents): the digits as an
 *   integer m < 2^53 and 10^f (f <= 15) are exact doubles, so m / 10^f
 *   rounds once, correctly, to the double nearest the decimal (Clinger's
 *   fast path).
 * - 16 to 19 digits, where long double has more bits than double (x87's
 *   64): m < 2^64 and 10^f (f <= 19 < 27) are exact there, so q = m / 10^f
 *   is the decimal v rounded once to 64 bits, and q rounded to 53 bits is
 *   v rounded to 53 bits unless q lands exactly halfway between two
 *   doubles (v on the other side of that point, or on it): the halfway
 *   points are long doubles, so rounding to 64 bits moves v onto one but
 *   never across one. That case is left to strtod, and so is every such
 *   number where long double arithmetic does not carry its bits (wide 0:
 *   x87 precision set to 53 bits, or valgrind, which computes it in
 *   double). */
static int short_decimal(const char *s, size_t len, int wide, double *out)
{
    static const double P10[16] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    size_t i = s[0] == '-', digits = 0, frac = 0;
    int point = 0;
    uint64_t m = 0;
    if (i == len)
        return 0;
    for (; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            if (++digits > 19)
                return 0;
            m = 10 * m + (uint64_t)(s[i] - '0');
            frac += (size_t)point;
        } else if (s[i] == '.' && !point && digits && i + 1 < len) {
            point = 1;
        } else {
            return 0;
        }
    }
    double x;
    if (digits <= 15) {
        x = (double)m / P10[frac];
    } else {
#if LDBL_MANT_DIG > DBL_MANT_DIG
        if (!wide)
            return 0;
        long double p = 1;
        for (size_t k = 0; k < frac; k++)
            p *= 10; /* exact: 10^19 < 2^64 */
        long double q = (long double)m / p, lx;
        x = (double)q;
        lx = x;
        if (lx != q) { /* halfway between x and its neighbour on q's side? */
            long double nb = nextafter(x, q > lx ? INFINITY : -INFINITY);
            if (q - lx == nb - q)
                return 0;
        }
#else
        return 0;
#endif
    }
    *out = s[0] == '-' ? -x : x;
    return 1;
}

/* Rows read by one thread: its records' ids and numbers. */
typedef struct {
    char **ids;
    customer_row *rows;
    size_t n, cap;
} rows_part;

static void rows_part_free(rows_part *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->ids[i]);
    free(p->ids), free(p->rows);
    p->ids = NULL, p->rows = NULL, p->n = p->cap = 0;
}

/* The records of r up to its end, each of *ncols fields; adopt (a part
 * without the header): *ncols is set from the first record of a known
 * count. */
static rfm_status read_rows(csv_reader *r, const char *path, int adopt, size_t *ncols, rows_part *p,
                            char *err, size_t errlen)
{
    const csv_field *f;
    size_t nf;
    rfm_status st;
    volatile long double big = 9007199254740993.0L; /* 2^53 + 1 */
    int wide = big - 9007199254740992.0L == 1.0L;   /* long double arithmetic as declared */
    while ((st = csv_next(r, &f, &nf, err, errlen)) == RFM_OK && nf > 0) {
        if (adopt && !*ncols && (nf == NCOLS || nf == OLD_NCOLS))
            *ncols = nf;
        if (nf != *ncols)
            return rfm_fail(err, errlen, RFM_EFORMAT, "%s:%llu: expected %zu fields", path,
                            (unsigned long long)csv_line(r), *ncols ? *ncols : (size_t)NCOLS);
        if (p->n == p->cap) {
            size_t cap = p->cap ? 2 * p->cap : 1024;
            char **ni = realloc(p->ids, cap * sizeof *ni);
            if (ni)
                p->ids = ni;
            customer_row *nr = realloc(p->rows, cap * sizeof *nr);
            if (nr)
                p->rows = nr;
            if (!ni || !nr)
                return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            p->cap = cap;
        }
        double v[NCOLS - 1] = {NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
        for (size_t k = 0; k + 1 < nf; k++) {
            char *end = "";
            if (!f[k + 1].len)
                v[k] = NAN;
            else if (!short_decimal(f[k + 1].s, f[k + 1].len, wide, &v[k]))
                v[k] = strtod(f[k + 1].s, &end);
            if (*end)
                return rfm_fail(err, errlen, RFM_EFORMAT, "%s:%llu:%llu: not a number", path,
                                (unsigned long long)csv_line(r),
                                (unsigned long long)csv_column(r, k + 1));
        }
        if (!(p->ids[p->n] = strdup(f[0].s)))
            return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        p->rows[p->n++] = (customer_row){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]};
    }
    return st;
}

/* The header, checked; *ncols its count. */
static rfm_status read_header(csv_reader *r, const char *path, size_t *ncols, char *err,
                              size_t errlen)
{
    const csv_field *f;
    size_t nf;
    rfm_status st = csv_next(r, &f, &nf, err, errlen);
    if (st != RFM_OK)
        return st;
    for (size_t k = 0; k < nf; k++)
        if ((nf != NCOLS && nf != OLD_NCOLS) || strcmp(f[k].s, COLS[k]) != 0)
            return rfm_fail(err, errlen, RFM_EFORMAT, "%s:1: header must be %s,...", path, COLS[0]);
    *ncols = nf;
    return RFM_OK;
}

/* ---- a large table read on two threads --------------------------------
 * The file is cut at the first line end past its middle that no quoted
 * field holds (an even number of quotes before it: RFC 4180's quotes come
 * in pairs inside a field, so their parity says whether a byte is inside
 * one); each half is read by a reader of its own over its byte range, the
 * second numbering its lines from the cut. Plain files of at least
 * PAR_MIN bytes only (gzip and small files: one reader). */
#define PAR_MIN ((off_t)4 << 20)

typedef struct {
    int fd;
    off_t pos, end;
} range_src;

static rfm_status range_read(void *ctx, uint8_t *buf, size_t cap, size_t *got, char *err,
                             size_t errlen)
{
    range_src *s = ctx;
    size_t want = (size_t)(s->end - s->pos) < cap ? (size_t)(s->end - s->pos) : cap;
    ssize_t n;
    do
        n = pread(s->fd, buf, want, s->pos);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return rfm_fail(err, errlen, RFM_EIO, "read: %s", strerror(errno));
    s->pos += n;
    *got = (size_t)n;
    return RFM_OK;
}

typedef struct {
    const char *path;
    range_src src;
    uint64_t line0; /* the second half: its first line */
    int first;
    size_t ncols;
    rows_part rows;
    rfm_status st;
    char err[RFM_ERRLEN];
} half;

static void *read_half(void *arg)
{
    half *h = arg;
    csv_reader *r = NULL;
    h->st = csv_open_source(range_read, NULL, &h->src, h->path, &r, h->err, sizeof h->err);
    if (h->st != RFM_OK)
        return NULL;
    csv_skip_sha256(r); /* the manifest's checksum covers the file (modelfile.h) */
    if (!h->first)
        csv_set_line(r, h->line0);
    if (!h->first || (h->st = read_header(r, h->path, &h->ncols, h->err, sizeof h->err)) == RFM_OK)
        h->st = read_rows(r, h->path, !h->first, &h->ncols, &h->rows, h->err, sizeof h->err);
    csv_close(r);
    return NULL;
}

/* The bytes equal to c among n at p, 8 at a time: in t = word ^ c..c a
 * byte is 0 exactly when its high bit stays clear in ((t & 7f..) + 7f..) |
 * t (no carry crosses bytes), so the complement's high bits count them. */
static uint64_t count_byte(const unsigned char *p, size_t n, unsigned char c)
{
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7full, pat = 0x0101010101010101ull * c;
    uint64_t k = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t t = w ^ pat;
        k += (uint64_t)__builtin_popcountll(~(((t & lo7) + lo7) | t | lo7));
    }
    for (; i < n; i++)
        k += p[i] == c;
    return k;
}

/* Where to cut fd's size bytes (0: no good cut) and the lines before it:
 * the quotes and line ends of the first half counted, then the bytes after it walked to the first
 * line end with an even count of quotes before it. */
static off_t find_cut(int fd, off_t size, uint64_t *lines)
{
    unsigned char buf[1 << 16];
    uint8_t head[3];
    if (pread(fd, head, 3, 0) != 3 || (head[0] == 0x1f && head[1] == 0x8b))
        return 0; /* gzip: one reader */
    uint64_t quotes = 0, nl = 0;
    off_t at = 0, mid = size / 2;
    while (at < mid) {
        size_t want = (size_t)(mid - at) < sizeof buf ? (size_t)(mid - at) : sizeof buf;
        ssize_t n = pread(fd, buf, want, at);
        if (n <= 0)
            return 0;
        quotes += count_byte(buf, (size_t)n, '"'), nl += count_byte(buf, (size_t)n, '\n');
        at += n;
    }
    while (at < size) {
        ssize_t n = pread(fd, buf, sizeof buf, at);
        if (n <= 0)
            return 0;
        for (ssize_t i = 0; i < n; i++) {
            quotes += buf[i] == '"';
            if (buf[i] != '\n')
                continue;
            nl++;
            off_t cut = at + i + 1;
            if ((quotes & 1) || cut >= size)
                continue;
            /* A range that starts with the gzip magic or a byte order mark
             * would be read as one: cut elsewhere. */
            uint8_t next[3] = {0, 0, 0};
            if (pread(fd, next, 3, cut) < 2)
                return 0;
            if (!(next[0] == 0x1f && next[1] == 0x8b) &&
                !(next[0] == 0xef && next[1] == 0xbb && next[2] == 0xbf)) {
                *lines = nl;
                return cut;
            }
        }
        at += n;
    }
    return 0;
}

/* The two halves read; 0 when the file is not one to split (nothing
 * read then). */
static int load_halves(const char *path, rows_part *out, rfm_status *st, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < PAR_MIN) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    uint64_t lines = 0;
    off_t cut = find_cut(fd, sb.st_size, &lines);
    if (!cut) {
        close(fd);
        return 0;
    }
    half h[2];
    memset(h, 0, sizeof h);
    h[0] = (half){.path = path, .src = {fd, 0, cut}, .first = 1};
    h[1] = (half){.path = path, .src = {fd, cut, sb.st_size}, .line0 = lines + 1};
    pthread_t th;
    int started = pthread_create(&th, NULL, read_half, &h[1]) == 0;
    read_half(&h[0]);
    if (started)
        pthread_join(th, NULL);
    else
        read_half(&h[1]);
    close(fd);
    *st = RFM_OK;
    for (int k = 0; k < 2 && *st == RFM_OK; k++)
        if (h[k].st != RFM_OK)
            *st = rfm_fail(err, errlen, h[k].st, "%s", h[k].err);
    if (*st == RFM_OK && h[1].rows.n && h[1].ncols != h[0].ncols)
        *st = rfm_fail(err, errlen, RFM_EFORMAT, "%s:%llu: expected %zu fields", path,
                       (unsigned long long)lines + 1, h[0].ncols);
    size_t n = h[0].rows.n + h[1].rows.n;
    if (*st == RFM_OK && n > h[0].rows.cap) {
        char **ni = realloc(h[0].rows.ids, n * sizeof *ni);
        if (ni)
            h[0].rows.ids = ni;
        customer_row *nr = realloc(h[0].rows.rows, n * sizeof *nr);
        if (nr)
            h[0].rows.rows = nr;
        if (!ni || !nr)
            *st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    if (*st != RFM_OK) {
        rows_part_free(&h[0].rows), rows_part_free(&h[1].rows);
        return 1;
    }
    memcpy(h[0].rows.ids + h[0].rows.n, h[1].rows.ids, h[1].rows.n * sizeof *h[1].rows.ids);
    memcpy(h[0].rows.rows + h[0].rows.n, h[1].rows.rows, h[1].rows.n * sizeof *h[1].rows.rows);
    free(h[1].rows.ids), free(h[1].rows.rows);
    h[0].rows.n = h[0].rows.cap = n;
    *out = h[0].rows;
    return 1;
}

rfm_status customers_load(const char *path, customers **out, char *err, size_t errlen)
{
    *out = NULL;
    rows_part p = {NULL, NULL, 0, 0};
    rfm_status st;
    if (!load_halves(path, &p, &st, err, errlen)) {
        csv_reader *r;
        if ((st = csv_open(path, &r, err, errlen)) != RFM_OK)
            return st;
        csv_skip_sha256(r);
        size_t ncols = 0;
        if ((st = read_header(r, path, &ncols, err, errlen)) == RFM_OK)
            st = read_rows(r, path, 0, &ncols, &p, err, errlen);
        csv_close(r);
        if (st != RFM_OK)
            rows_part_free(&p);
    }
    if (st != RFM_OK)
        return st;
    customers *c = calloc(1, sizeof *c);
    size_t slots = 16;
    while (slots < 2 * p.n)
        slots *= 2;
    if (c)
        c->slots = calloc(slots, sizeof *c->slots);
    if (!c || !c->slots) {
        free(c);
        rows_part_free(&p);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    c->ids = p.ids, c->rows = p.rows, c->n = p.n;
    c->mask = slots - 1;
    for (size_t i = 0; i < c->n; i++) {
        size_t j = hash_bytes(c->ids[i], strlen(c->ids[i]), 7) & c->mask;
        while (c->slots[j])
            j = (j + 1) & c->mask;
        c->slots[j] = (uint32_t)(i + 1);
    }
    *out = c;
    return RFM_OK;
}
