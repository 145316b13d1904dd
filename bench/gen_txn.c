/* gen_txn - synthetic transaction export for the ingest benchmark.
 *
 * usage: gen_txn LINES CUSTOMERS INVOICES OUT.csv [comma|semicolon|whitespace]
 * Writes the Online Retail header and LINES invoice lines spread over a
 * fixed number of INVOICES of a fixed pool of CUSTOMERS, over two years:
 * more lines means bigger baskets, not more purchases, so a reader whose
 * memory follows customers and purchases stays flat as LINES grows.
 * 1 % cancellations, 2 % invoices without a customer, ids written as
 * floats like the bundled file. Deterministic.
 * Dialects (the same lines): comma (default, the UCI layout); semicolon
 * with decimal commas (a CRM export: data.separator ";", decimal ","); and
 * whitespace (runs of blanks, ISO dates with T, a missing id written "").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "date.h"
#include "rng.h"

/* Lines are made by hand into a large buffer written with write(): the
 * fprintf of each field (and "%.2f" of the price) was the generator's
 * whole cost, ~1 us a line, more than the reader it feeds. The bytes are
 * those the printf version wrote (kept in git history; compared with cmp
 * on every dialect). */
typedef struct {
    int fd;
    char *p, *end, buf[1 << 20];
    int failed;
} out;

static void flush(out *o)
{
    const char *q = o->buf;
    while (q < o->p && !o->failed) {
        ssize_t w = write(o->fd, q, (size_t)(o->p - q));
        if (w <= 0)
            o->failed = 1;
        else
            q += w;
    }
    o->p = o->buf;
}

static void put(out *o, const char *s, size_t n)
{
    if ((size_t)(o->end - o->p) < n)
        flush(o);
    memcpy(o->p, s, n);
    o->p += n;
}

/* Decimal digits of v into t (at least 20 bytes), from its end; returns
 * the first digit. */
static char *digits(unsigned long long v, char *end)
{
    do
        *--end = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    return end;
}

/* rfm_rng_below(r, n) for a constant n, the same draws and values: the
 * compiler turns its two divisions into multiplications. */
static inline uint64_t below(rfm_rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do
        x = rfm_rng_u64(r);
    while (x >= limit);
    return x % n;
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: gen_txn LINES CUSTOMERS INVOICES OUT.csv "
                        "[comma|semicolon|whitespace]\n");
        return 2;
    }
    const char *dialect = argc == 6 ? argv[5] : "comma";
    int semi = strcmp(dialect, "semicolon") == 0, ws = strcmp(dialect, "whitespace") == 0;
    if (!semi && !ws && strcmp(dialect, "comma") != 0) {
        fprintf(stderr, "gen_txn: dialect must be comma, semicolon or whitespace\n");
        return 2;
    }
    const char *sep = semi ? ";" : ws ? "  " : ",";
    unsigned long long lines = strtoull(argv[1], NULL, 10);
    unsigned long ncust = strtoul(argv[2], NULL, 10);
    unsigned long long ninv = strtoull(argv[3], NULL, 10);
    static out o;
    o.fd = strcmp(argv[4], "/dev/stdout") == 0 ? 1 : -1;
    if (o.fd < 0) {
        FILE *f = fopen(argv[4], "wb");
        o.fd = f ? dup(fileno(f)) : -1;
        if (f)
            fclose(f);
    }
    if (o.fd < 0 || ncust == 0 || ninv == 0 || ninv > lines) {
        fprintf(stderr, "gen_txn: cannot write %s, or INVOICES not in 1..LINES\n", argv[4]);
        return 1;
    }
    o.p = o.buf;
    o.end = o.buf + sizeof o.buf;
    rfm_rng rng;
    rfm_rng_seed(&rng, 2024);
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "InvoiceNo%sStockCode%sDescription%sQuantity%sInvoiceDate%sUnitPrice%s"
                      "CustomerID%sCountry\n",
                      sep, sep, sep, sep, sep, sep, sep);
    put(&o, head, (size_t)hn);
    /* Each product's "StockCode<sep>Description<sep>" and each price's
     * "<price><sep>", made once. */
    enum { NPROD = 4000, NPRICE = 2000, PW = 48, QW = 16 };
    static char prod_s[NPROD][PW], price_s[NPRICE][QW];
    static unsigned char prod_n[NPROD], price_n[NPRICE];
    for (unsigned p = 0; p < NPROD; p++)
        prod_n[p] =
            (unsigned char)snprintf(prod_s[p], PW, "%u%c%s\"PRODUCT %u, SIZE %c\"%s", 20000 + p,
                                    'A' + (char)(p % 4), sep, p, 'S' + (char)(p % 3), sep);
    for (unsigned k = 0; k < NPRICE; k++) { /* 0.5 + k / 100 to the cent, as "%.2f" printed it */
        unsigned c = 50 + k;
        price_n[k] = (unsigned char)snprintf(price_s[k], QW, "%u%c%02u%s", c / 100,
                                             semi ? ',' : '.', c % 100, sep);
    }
    const char *country = ws ? "\"United Kingdom\"\n" : "United Kingdom\n";
    int32_t day0 = date_from_ymd(2010, 1, 1);
    unsigned long long inv = 500000, written = 0;
    for (unsigned long long i = 0; i < ninv && !o.failed; i++) {
        unsigned long cust = 10000 + (unsigned long)rfm_rng_below(&rng, ncust);
        /* Invoice i ends at line (i+1) * lines / ninv: sizes vary by one at most. */
        unsigned long long nl = (i + 1) * lines / ninv - written;
        int cancel = rfm_rng_below(&rng, 100) == 0, nocust = rfm_rng_below(&rng, 50) == 0;
        char date[11];
        date_format(day0 + (int32_t)rfm_rng_below(&rng, 730), date);
        int hh = 8 + (int)rfm_rng_below(&rng, 10), mm = (int)rfm_rng_below(&rng, 60);
        /* The invoice's "C?<no><sep>", "<sep><date> hh:mm:00<sep>" and
         * "<customer><sep>United Kingdom\n". */
        char pre[32] = {0}, mid[48] = {0}, tail[64] = {0}, t[24];
        char *d = digits(inv, t + sizeof t);
        int pren = snprintf(pre, sizeof pre, "%s%.*s%s", cancel ? "C" : "", (int)(t + sizeof t - d),
                            d, sep);
        int midn = snprintf(mid, sizeof mid, "%s%s%c%02d:%02d:00%s", sep, date, ws ? 'T' : ' ', hh,
                            mm, sep);
        int tailn = nocust ? snprintf(tail, sizeof tail, "%s%s%s", ws ? "\"\"" : "", sep, country)
                           : snprintf(tail, sizeof tail, "%lu.0%s%s", cust, sep, country);
        for (unsigned long long l = 0; l < nl; l++, written++) {
            unsigned prod = (unsigned)below(&rng, NPROD);
            int qty = 1 + (int)below(&rng, 24);
            unsigned k = (unsigned)below(&rng, NPRICE);
            if ((size_t)(o.end - o.p) < 256)
                flush(&o);
            /* Whole buffers copied (fixed sizes: a few vector moves, no call
             * to memcpy), the pointer moved by the text's length: what lies
             * past it is overwritten next (256 bytes of room hold them all). */
            memcpy(o.p, pre, sizeof pre), o.p += pren;
            memcpy(o.p, prod_s[prod], PW), o.p += prod_n[prod];
            if (cancel)
                *o.p++ = '-';
            if (qty >= 10)
                *o.p++ = (char)('0' + qty / 10);
            *o.p++ = (char)('0' + qty % 10);
            memcpy(o.p, mid, sizeof mid), o.p += midn;
            memcpy(o.p, price_s[k], QW), o.p += price_n[k];
            memcpy(o.p, tail, sizeof tail), o.p += tailn;
        }
        inv++;
    }
    flush(&o);
    if (o.failed || close(o.fd) != 0) {
        perror(argv[4]);
        return 1;
    }
    return 0;
}
