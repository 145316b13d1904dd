/* fuzz_csv.c - libFuzzer target: what rfm-train does with a transaction file.
 *
 * Each input is read three ways:
 *   1. by the CSV reader (core/data/csv.h) from memory, as is: gzip when it starts
 *      with the gzip magic, so truncated and corrupt streams reach zlib;
 *   2. gzip-compressed here first, which must give the same records and the
 *      same status as 1 (a differential check of the inflate path);
 *   3. through the transaction layer (core/data/txn.h) with the column names of
 *      config/rfm.yaml, then the features as of the snapshot and an earlier
 *      day, and the customer table (core/data/customers.h) written and loaded
 *      back, as the server would load it.
 * Besides the sanitizers, the target traps on a broken contract: fields not
 * back to back, cleaning counts that do not add up, unsorted customers, a
 * NaN or infinite feature, a customer table that does not read back.
 *
 * Non-goals: records longer than the reader's 1 MiB blocks (the input is
 * capped by -max_len); test_csv.c covers block boundaries.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "csv.h"
#include "customers.h"
#include "date.h"
#include "txn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_csv: check failed at line %d: %s\n", __LINE__, #c);              \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

/* The default columns of config/rfm.yaml. */
static const txn_options OPT = {.invoice = "InvoiceNo",
                                .customer_id = "CustomerID",
                                .date = "InvoiceDate",
                                .quantity = "Quantity",
                                .price = "UnitPrice",
                                .product = "StockCode",
                                .cancel_prefix = "C",
                                .snapshot_day = DATE_NONE};

/* One whole record, flattened for comparison: fields joined by NUL. */
typedef struct {
    char *buf;
    size_t len, cap, nrec;
} flat;

static void flat_add(flat *f, const csv_field *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t need = f->len + fields[i].len + 2;
        if (need > f->cap) {
            f->cap = 2 * need;
            f->buf = realloc(f->buf, f->cap);
            CHECK(f->buf);
        }
        memcpy(f->buf + f->len, fields[i].s, fields[i].len + 1);
        f->len += fields[i].len + 1;
    }
    f->buf[f->len++] = '\n'; /* record separator, never inside a field's bytes + NUL run */
    f->nrec++;
}

/* Read every record, checking the reader's promises. */
static rfm_status read_all(const void *p, size_t n, flat *out, char *err, size_t errlen)
{
    csv_reader *r;
    rfm_status st = csv_open_mem(p, n, "fuzz.csv", &r, err, errlen);
    CHECK(st == RFM_OK);
    const csv_field *f;
    size_t nf;
    uint64_t prev_line = 0;
    while ((st = csv_next(r, &f, &nf, err, errlen)) == RFM_OK && nf > 0) {
        for (size_t i = 0; i < nf; i++) {
            CHECK(f[i].s[f[i].len] == '\0');
            CHECK(strlen(f[i].s) == f[i].len); /* a NUL byte is an error, not data */
            if (i + 1 < nf)
                CHECK(f[i + 1].s == f[i].s + f[i].len + 1);
            CHECK(csv_column(r, i) >= 1);
        }
        CHECK(csv_line(r) > prev_line);
        prev_line = csv_line(r);
        flat_add(out, f, nf);
        CHECK(csv_records(r) == out->nrec);
    }
    CHECK(csv_bytes(r) <= n);
    csv_close(r);
    return st;
}

/* gzip of the input (one member), for the differential read. */
static uint8_t *gzip(const uint8_t *p, size_t n, size_t *outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    CHECK(deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t cap = deflateBound(&zs, (uLong)n) + 32;
    uint8_t *out = malloc(cap);
    CHECK(out);
    zs.next_in = (Bytef *)(uintptr_t)p;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    *outlen = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static void check_features(const txn_data *d, int32_t asof, const txn_features *fe, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const txn_features *f = &fe[i];
        const double v[] = {f->recency,       f->frequency,   f->monetary,    f->tenure,
                            f->aov,           f->bg_x,        f->bg_t_x,      f->bg_T,
                            f->bg_mean_spend, f->future_days, f->future_spend};
        for (size_t k = 0; k < sizeof v / sizeof *v; k++) {
            if (!(isfinite(v[k]) && v[k] >= 0))
                fprintf(stderr, "fuzz_csv: customer %s as of day %d: feature %zu is %g\n",
                        txn_customer_id(d, i), (int)asof, k, v[k]);
            CHECK(isfinite(v[k]) && v[k] >= 0);
        }
        if (!f->active)
            continue;
        CHECK(f->frequency >= 1 && f->monetary > 0);
        CHECK(f->recency >= 1 && f->tenure >= f->recency);
        CHECK(f->bg_t_x <= f->bg_T && f->bg_x <= f->bg_t_x);
        CHECK(asof - f->tenure >= txn_first_day(d));
    }
}

/* The customer table of the active customers, written and loaded back. */
static void check_customers(const txn_data *d, const txn_features *fe, size_t n)
{
    const char **ids = malloc((n + 1) * sizeof *ids);
    customer_row *rows = malloc((n + 1) * sizeof *rows);
    CHECK(ids && rows);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!fe[i].active)
            continue;
        ids[m] = txn_customer_id(d, i);
        rows[m++] = (customer_row){fe[i].recency,
                                   fe[i].frequency,
                                   fe[i].monetary,
                                   fe[i].bg_x,
                                   fe[i].bg_t_x,
                                   fe[i].bg_T,
                                   fe[i].bg_mean_spend,
                                   NAN,
                                   NAN};
    }
    char *text = customers_csv(ids, rows, m);
    CHECK(text);
    int fd = memfd_create("customers.csv", MFD_CLOEXEC);
    CHECK(fd >= 0);
    size_t len = strlen(text);
    CHECK(write(fd, text, len) == (ssize_t)len);
    char path[64], err[RFM_ERRLEN];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    customers *c;
    rfm_status st = customers_load(path, &c, err, sizeof err);
    if (st != RFM_OK)
        fprintf(stderr, "fuzz_csv: customer table does not load: %s\n", err);
    CHECK(st == RFM_OK);
    CHECK(customers_count(c) == m);
    for (size_t i = 0; i < m; i++) {
        const customer_row *r = customers_find(c, ids[i]);
        CHECK(r && memcmp(r, &rows[i], sizeof *r) == 0);
    }
    customers_free(c);
    close(fd);
    free(text);
    free(ids);
    free(rows);
}

static void check_txn(const uint8_t *data, size_t size, const txn_options *opt, int table)
{
    csv_reader *r;
    char err[RFM_ERRLEN];
    CHECK(csv_open_mem(data, size, "fuzz.csv", &r, err, sizeof err) == RFM_OK);
    txn_data *d = NULL;
    txn_report rep;
    rfm_status st = txn_read_csv(r, opt, NULL, NULL, &d, &rep, err, sizeof err);
    csv_close(r);
    CHECK((st == RFM_OK) == (d != NULL));
    CHECK(st == RFM_OK || err[0] != '\0');
    if (st != RFM_OK)
        return;
    uint64_t sum = rep.used;
    for (int k = 0; k < TXN_NREASONS; k++)
        sum += rep.count[k];
    CHECK(sum == rep.lines && rep.used > 0);
    CHECK(opt->snapshot_day != DATE_NONE || rep.count[TXN_AFTER_SNAPSHOT] == 0);
    size_t n = txn_ncustomers(d);
    CHECK(n > 0 && n <= rep.used);
    int32_t first = txn_first_day(d), last = txn_last_day(d), snap = txn_snapshot_day(d);
    CHECK(first <= last && last < snap);
    char day[3][11];
    date_format(first, day[0]);
    date_format(last, day[1]);
    date_format(snap, day[2]);
    for (size_t i = 0; i < n; i++) {
        const char *id = txn_customer_id(d, i);
        CHECK(id[0] != '\0');
        if (i > 0)
            CHECK(strcmp(txn_customer_id(d, i - 1), id) < 0);
        CHECK(txn_find(d, id) == (long)i);
        const uint32_t *prod, *cnt, *lastc;
        size_t np;
        txn_customer_products(d, i, &prod, &cnt, &lastc, &np);
        for (size_t j = 0; j < np; j++) {
            CHECK(prod[j] < txn_nproducts(d) && (j == 0 || prod[j - 1] < prod[j]));
            CHECK(cnt[j] >= 1 && lastc[j] <= cnt[j]);
        }
    }
    for (size_t j = 1; j < txn_nproducts(d); j++)
        CHECK(strcmp(txn_product_id(d, j - 1), txn_product_id(d, j)) < 0);

    txn_features *fe = calloc(n, sizeof *fe);
    CHECK(fe);
    /* As of the snapshot every customer is active, with nothing after. */
    txn_features_asof(d, snap, fe);
    check_features(d, snap, fe, n);
    for (size_t i = 0; i < n; i++)
        CHECK(fe[i].active && fe[i].future_days == 0);
    if (table)
        check_customers(d, fe, n);
    /* As of a day inside the data (rfm-train's holdout and churn splits). */
    int32_t mid = first + (last - first) / 2 + 1;
    txn_features_asof(d, mid, fe);
    check_features(d, mid, fe, n);
    free(fe);
    txn_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err1[RFM_ERRLEN] = "", err2[RFM_ERRLEN] = "";
    flat a = {0}, b = {0};
    rfm_status st1 = read_all(data, size, &a, err1, sizeof err1);
    CHECK(st1 == RFM_OK || err1[0] != '\0');
    if (!(size >= 2 && data[0] == 0x1f && data[1] == 0x8b)) {
        size_t zn;
        uint8_t *z = gzip(data, size, &zn);
        rfm_status st2 = read_all(z, zn, &b, err2, sizeof err2);
        free(z);
        if (st1 != st2 || strcmp(err1, err2) != 0)
            fprintf(stderr, "fuzz_csv: plain: %d %s\nfuzz_csv: gzip:  %d %s\n", st1, err1, st2,
                    err2);
        CHECK(st1 == st2 && strcmp(err1, err2) == 0);
        CHECK(a.nrec == b.nrec && a.len == b.len && (a.len == 0 || !memcmp(a.buf, b.buf, a.len)));
    }
    free(a.buf);
    free(b.buf);

    check_txn(data, size, &OPT, 1);
    /* Without products and with a snapshot date: the second configuration
     * rfm-train runs (--only segments, snapshot_date set). */
    txn_options o2 = OPT;
    o2.product = NULL;
    o2.snapshot_day = date_from_ymd(2011, 6, 1);
    check_txn(data, size, &o2, 0);
    return 0;
}
