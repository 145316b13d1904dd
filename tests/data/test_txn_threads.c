/* test_txn_threads.c - txn_read_csv on several threads against the same
 * read on one (the reference): random exports with quoted fields holding
 * line ends, repeats, cancellations, returns, CRLF; windows of many sizes
 * so cuts fall everywhere (inside quoted line ends too, which must be read
 * again on one thread); errors late in a file, which must name the same
 * line and column; a truncated gzip. Everything compared exactly: report,
 * ids, features (bit for bit), baskets, purchases. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "date.h"
#include "rng.h"
#include "txn.h"

static const txn_options OPT = TXN_RETAIL_OPTIONS;

static uint64_t rnd(uint64_t *s, uint64_t n)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s % n;
}

/* An Online Retail-like export of about `invoices` invoices. quoted_nl:
 * descriptions often hold line ends inside quotes. */
static char *make_export(uint64_t seed, int invoices, int quoted_nl, size_t *len)
{
    tbuf b = {0};
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    tbuf_put(&b,
             "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n");
    for (int inv = 0; inv < invoices; inv++) {
        int cancel = rnd(&s, 20) == 0;
        unsigned cust = (unsigned)rnd(&s, 300);
        int day = 1 + (int)rnd(&s, 28), month = 1 + (int)rnd(&s, 12);
        int nlines = 1 + (int)rnd(&s, 6);
        char prev[256] = "";
        for (int l = 0; l < nlines; l++) {
            char line[256];
            if (l > 0 && rnd(&s, 10) == 0) { /* a repeated line */
                memcpy(line, prev, sizeof line);
            } else {
                unsigned prod = (unsigned)rnd(&s, 200);
                char desc[64];
                switch (rnd(&s, quoted_nl ? 4 : 3)) {
                case 0: snprintf(desc, sizeof desc, "Item %u", prod); break;
                case 1: snprintf(desc, sizeof desc, "\"Item %u, red\"", prod); break;
                case 2: snprintf(desc, sizeof desc, "\"12\"\" plate %u\"", prod); break;
                default: snprintf(desc, sizeof desc, "\"Item %u\nsecond line\n\"", prod); break;
                }
                long q = (long)rnd(&s, 24) - 3;
                unsigned cents = (unsigned)rnd(&s, 2000);
                const char *id = rnd(&s, 12) == 0 ? "" : NULL;
                char idbuf[16];
                if (!id) {
                    snprintf(idbuf, sizeof idbuf, "%u%s", 12000 + cust,
                             rnd(&s, 3) == 0 ? ".0" : "");
                    id = idbuf;
                }
                snprintf(
                    line, sizeof line, "%s%d,P%u,%s,%ld,2011-%02d-%02d %02u:%02u:00,%u.%02u,%s,UK",
                    cancel ? "C" : "", 500000 + inv, prod, desc, q, month, day,
                    (unsigned)rnd(&s, 24), (unsigned)rnd(&s, 60), cents / 100, cents % 100, id);
            }
            tbuf_put(&b, "%s%s", line, rnd(&s, 8) == 0 ? "\r\n" : "\n");
            memcpy(prev, line, sizeof prev);
        }
    }
    *len = b.n;
    return b.s;
}

typedef struct {
    rfm_status st;
    char err[RFM_ERRLEN];
    txn_data *d;
    txn_report rep;
} result;

static result read_with(const char *text, size_t len, const txn_options *opt, int threads,
                        size_t window)
{
    result r;
    memset(&r, 0, sizeof r);
    txn_options o = *opt;
    o.threads = threads;
    o.window = window;
    csv_reader *csv;
    assert_int_equal(csv_open_mem(text, len, "x.csv", &csv, r.err, sizeof r.err), RFM_OK);
    r.st = txn_read_csv(csv, &o, NULL, NULL, &r.d, &r.rep, r.err, sizeof r.err);
    csv_close(csv);
    return r;
}

typedef struct {
    size_t n, cap;
    double *v;
} seq;

static int seq_day(void *u, size_t c, int32_t day, double spend)
{
    seq *q = u;
    if (q->n + 3 > q->cap) {
        q->cap = 2 * q->cap + 64;
        q->v = realloc(q->v, q->cap * sizeof *q->v);
    }
    q->v[q->n++] = (double)c;
    q->v[q->n++] = day;
    q->v[q->n++] = spend;
    return 0;
}

static int seq_inv(void *u, size_t c, uint64_t h, int32_t day)
{
    return seq_day(u, c, day, (double)(h >> 12));
}

/* b equals a in everything txn_read_csv gives. */
static void assert_same(const result *a, const result *b, const char *what)
{
    if (a->st != b->st || strcmp(a->err, b->err) != 0)
        fail_msg("%s: one thread: %d '%s'; threads: %d '%s'", what, a->st, a->err, b->st, b->err);
    const txn_report *x = &a->rep, *y = &b->rep;
    assert_int_equal(x->lines, y->lines);
    assert_int_equal(x->used, y->used);
    assert_int_equal(x->bytes, y->bytes);
    assert_string_equal(x->sha256, y->sha256);
    for (int r = 0; r < TXN_NREASONS; r++) {
        if (x->count[r] != y->count[r])
            fail_msg("%s: %s: %llu vs %llu", what, txn_reason_name((txn_reason)r),
                     (unsigned long long)x->count[r], (unsigned long long)y->count[r]);
        for (int k = 0; k < TXN_EXAMPLES; k++)
            if (x->examples[r][k] != y->examples[r][k])
                fail_msg("%s: %s example %d: line %llu vs %llu", what,
                         txn_reason_name((txn_reason)r), k, (unsigned long long)x->examples[r][k],
                         (unsigned long long)y->examples[r][k]);
        assert_string_equal(x->example_text[r], y->example_text[r]);
    }
    if (a->st != RFM_OK)
        return;
    const txn_data *p = a->d, *q = b->d;
    size_t nc = txn_ncustomers(p);
    assert_int_equal(nc, txn_ncustomers(q));
    for (size_t i = 0; i < nc; i++)
        assert_string_equal(txn_customer_id(p, i), txn_customer_id(q, i));
    assert_int_equal(txn_nproducts(p), txn_nproducts(q));
    for (size_t j = 0; j < txn_nproducts(p); j++)
        assert_string_equal(txn_product_id(p, j), txn_product_id(q, j));
    assert_int_equal(txn_first_day(p), txn_first_day(q));
    assert_int_equal(txn_last_day(p), txn_last_day(q));
    assert_int_equal(txn_snapshot_day(p), txn_snapshot_day(q));
    txn_features *fp = calloc(nc + 1, sizeof *fp), *fq = calloc(nc + 1, sizeof *fq);
    int32_t asof[3] = {txn_snapshot_day(p), txn_snapshot_day(p) - 90, txn_first_day(p) + 30};
    for (int k = 0; k < 3; k++) {
        txn_features_asof(p, asof[k], fp);
        txn_features_asof(q, asof[k], fq);
        for (size_t i = 0; i < nc; i++) /* bit for bit: the same sums in the same order */
            if (memcmp(&fp[i], &fq[i], sizeof fp[i]) != 0)
                fail_msg("%s: features of %s as of %d differ (monetary %.17g vs %.17g)", what,
                         txn_customer_id(p, i), asof[k], fp[i].monetary, fq[i].monetary);
    }
    free(fp);
    free(fq);
    for (size_t i = 0; i < nc; i++) {
        const uint32_t *pp, *pc, *pl, *qp, *qc, *ql;
        size_t pn, qn;
        txn_customer_products(p, i, &pp, &pc, &pl, &pn);
        txn_customer_products(q, i, &qp, &qc, &ql, &qn);
        assert_int_equal(pn, qn);
        assert_memory_equal(pp, qp, pn * sizeof *pp);
        assert_memory_equal(pc, qc, pn * sizeof *pc);
        assert_memory_equal(pl, ql, pn * sizeof *pl);
    }
    seq sp = {0}, sq = {0};
    txn_each_purchase(p, seq_day, seq_inv, &sp);
    txn_each_purchase(q, seq_day, seq_inv, &sq);
    assert_int_equal(sp.n, sq.n);
    assert_memory_equal(sp.v, sq.v, sp.n * sizeof *sp.v);
    free(sp.v);
    free(sq.v);
}

static void free_result(result *r) { txn_free(r->d); }

/* Many window sizes and thread counts against one thread. */
static void compare_windows(const char *text, size_t len, const txn_options *opt, uint64_t *parts,
                            uint64_t *rereads)
{
    result one = read_with(text, len, opt, 1, 0);
    static const size_t windows[] = {512, 700, 1000, 1500, 2048, 3000, 4096, 5000, 8192, 65536};
    for (size_t w = 0; w < sizeof windows / sizeof *windows; w++)
        for (int t = 2; t <= 4; t++) {
            result many = read_with(text, len, opt, t, windows[w]);
            char what[64];
            snprintf(what, sizeof what, "window %zu, %d threads", windows[w], t);
            assert_same(&one, &many, what);
            *parts += many.rep.parts;
            *rereads += many.rep.rereads;
            free_result(&many);
        }
    free_result(&one);
}

static void test_same_as_one_thread(void **state)
{
    (void)state;
    uint64_t parts = 0, rereads = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        size_t len;
        char *text = make_export(seed, 400, 0, &len);
        compare_windows(text, len, &OPT, &parts, &rereads);
        txn_options o = OPT;
        o.returns = TXN_RETURNS_SUBTRACT;
        o.snapshot_day = date_from_ymd(2011, 10, 1);
        compare_windows(text, len, &o, &parts, &rereads);
        free(text);
    }
    /* The parallel path ran in parts (tiny parts often read again: an
     * invoice longer than a part has no handover in it). */
    print_message("parts %llu, windows read again %llu\n", (unsigned long long)parts,
                  (unsigned long long)rereads);
    assert_true(parts > 1000);
}

/* One window cut in two, the cut inside a quoted field of 60 lines: the
 * second part starts inside quotes, the handovers disagree, the window is
 * read again on one thread. The same file without the long field: two
 * parts, nothing read again; three or four, nothing read again either (a
 * part in the middle used its own first invoice for the next part's
 * handover, so every window of three or more parts was read twice). */
static void test_cut_inside_quotes(void **state)
{
    (void)state;
    for (int quoted = 0; quoted <= 1; quoted++) {
        tbuf b = {0};
        tbuf_put(
            &b,
            "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n");
        for (int i = 0; i < 200; i++) {
            if (i == 100) {
                tbuf_put(&b, "%d,P9,\"", 600000 + i);
                for (int k = 0; k < 60; k++)
                    tbuf_put(&b, quoted ? "long %d\n" : "long %d ", k);
                tbuf_put(&b, "\",2,2011-03-0%d 10:00:00,1.50,%d,UK\n", 1 + i % 9, 13000 + i % 7);
            }
            tbuf_put(&b, "%d,P%d,Item,%d,2011-03-0%d 10:00:00,2.25,%d,UK\n", 600000 + i / 2, i % 13,
                     1 + i % 5, 1 + i % 9, 13000 + i % 7);
        }
        result one = read_with(b.s, b.n, &OPT, 1, 0);
        result two = read_with(b.s, b.n, &OPT, 2, 16384);
        assert_true(b.n < 16384 && b.n > 2 * 1024); /* one window, two parts */
        assert_same(&one, &two, quoted ? "cut inside quotes" : "no quotes");
        assert_int_equal(two.rep.rereads, quoted ? 1 : 0);
        assert_int_equal(two.rep.parts, quoted ? 1 : 2);
        free_result(&two);
        /* Without the long field, three and four parts (those in the
         * middle find both their handovers): nothing read again. */
        for (int t = 3; t <= 4 && !quoted; t++) {
            result many = read_with(b.s, b.n, &OPT, t, 16384);
            assert_same(&one, &many, "no quotes, parts in the middle");
            assert_int_equal(many.rep.rereads, 0);
            assert_int_equal(many.rep.parts, t);
            free_result(&many);
        }
        free_result(&one);
        free(b.s);
    }
}

static void test_quoted_newlines_across_cuts(void **state)
{
    (void)state;
    uint64_t parts = 0, rereads = 0;
    for (uint64_t seed = 11; seed <= 16; seed++) {
        size_t len;
        char *text = make_export(seed, 400, 1, &len);
        compare_windows(text, len, &OPT, &parts, &rereads);
        free(text);
    }
    /* Some cuts fell inside quoted line ends (a quarter of descriptions
     * hold two), and those windows were read again. */
    print_message("parts %llu, windows read again %llu\n", (unsigned long long)parts,
                  (unsigned long long)rereads);
    assert_true(parts > 1000);
    assert_true(rereads > 0);
}

/* An error late in the file stops the read with the message one thread
 * gives: same line, same column. */
static void test_errors_name_the_same_line(void **state)
{
    (void)state;
    size_t len;
    char *text = make_export(21, 600, 1, &len);
    static const char *const bad[] = {
        "999999,P1,Item,\"1,234.50\",2011-01-01 10:00:00,1.00,12001,UK\n", /* thousands */
        "999999,P1,Item,1,2011-01-01 10:00:00,1.00,12001\n",               /* 7 fields */
        "999999,P1,Item,1,02/03/2011,1.00,12001,UK\n",                     /* ambiguous date */
        "999999,P1,\"Item\"x,1,2011-01-01 10:00:00,1.00,12001,UK\n",       /* after a quote */
        "999999,P1,\"never closed,1,2011-01-01,1.00,12001,UK\n",           /* at the end */
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
        for (int at = 1; at <= 9; at += 2) {
            /* Insert the bad line after the line end nearest len * at / 10
             * (for the unclosed quote: at the end). */
            size_t pos = k == 4 ? len : len * (size_t)at / 10;
            while (k != 4 && pos < len && text[pos - 1] != '\n')
                pos++;
            size_t bl = strlen(bad[k]);
            char *t = malloc(len + bl + 1);
            memcpy(t, text, pos);
            memcpy(t + pos, bad[k], bl);
            memcpy(t + pos + bl, text + pos, len - pos);
            t[len + bl] = '\0';
            result one = read_with(t, len + bl, &OPT, 1, 0);
            assert_int_not_equal(one.st, RFM_OK);
            for (int th = 2; th <= 3; th++) {
                result many = read_with(t, len + bl, &OPT, th, 1024);
                assert_same(&one, &many, bad[k]);
                free_result(&many);
            }
            free_result(&one);
            free(t);
        }
    free(text);
}

/* text as one gzip member (level 6); *gzlen its length. */
static unsigned char *gzip_text(const char *text, size_t len, size_t *gzlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, len) + 64;
    unsigned char *gz = malloc(cap);
    assert_non_null(gz);
    zs.next_in = (unsigned char *)text;
    zs.avail_in = (uInt)len;
    zs.next_out = gz;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *gzlen = cap - zs.avail_out;
    deflateEnd(&zs);
    return gz;
}

static result read_file_with(const char *path, int threads, size_t window)
{
    result r;
    memset(&r, 0, sizeof r);
    txn_options o = OPT;
    o.threads = threads;
    o.window = window;
    csv_reader *csv;
    assert_int_equal(csv_open(path, &csv, r.err, sizeof r.err), RFM_OK);
    r.st = txn_read_csv(csv, &o, NULL, NULL, &r.d, &r.rep, r.err, sizeof r.err);
    csv_close(csv);
    return r;
}

/* A file is read (and a gzip one inflated) on the reader's own thread,
 * which keeps a core busy: of two threads one parses (no parts), of three
 * two do; text in memory (read and inflated on the caller's thread) parses
 * on both. The same data either way. */
static void test_file_threads(void **state)
{
    (void)state;
    size_t len;
    char *text = make_export(57, 3000, 0, &len);
    size_t gzlen;
    unsigned char *gz = gzip_text(text, len, &gzlen);
    char gzpath[64], plainpath[64];
    write_temp(gzpath, ".csv.gz", (const char *)gz, gzlen);
    write_temp(plainpath, ".csv", text, len);
    result one = read_file_with(plainpath, 1, 0);
    assert_int_equal(one.st, RFM_OK);
    const struct {
        const char *path;
        int threads;
        int parts; /* parts read side by side: expected or not */
    } cases[] = {{gzpath, 2, 0}, {gzpath, 3, 1}, {plainpath, 2, 0}, {plainpath, 3, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        result r = read_file_with(cases[i].path, cases[i].threads, 4096);
        assert_int_equal(r.st, RFM_OK);
        printf("    %s, %d threads: %llu parts\n", strstr(cases[i].path, ".gz") ? "gzip" : "plain",
               cases[i].threads, (unsigned long long)r.rep.parts);
        assert_int_equal(r.rep.parts > 0, cases[i].parts);
        r.rep.parts = one.rep.parts, r.rep.rereads = one.rep.rereads;
        /* the sha256 and byte count are of each file's own bytes */
        memcpy(r.rep.sha256, one.rep.sha256, sizeof r.rep.sha256);
        r.rep.bytes = one.rep.bytes;
        assert_same(&one, &r, cases[i].path);
        free_result(&r);
    }
    result mem = read_with((const char *)gz, gzlen, &OPT, 2, 4096);
    assert_true(mem.rep.parts > 0);
    free_result(&mem);
    mem = read_with(text, len, &OPT, 2, 4096);
    assert_true(mem.rep.parts > 0);
    free_result(&mem);
    free_result(&one);
    remove(gzpath), remove(plainpath);
    free(gz);
    free(text);
}

/* A gzip stream cut short: the same message (and line) as one thread. */
static void test_truncated_gzip(void **state)
{
    (void)state;
    size_t len;
    char *text = make_export(31, 300, 1, &len);
    size_t gzlen;
    unsigned char *gz = gzip_text(text, len, &gzlen);
    for (int cut = 3; cut <= 9; cut += 3) {
        size_t n = gzlen * (size_t)cut / 10;
        result one = read_with((const char *)gz, n, &OPT, 1, 0);
        assert_int_equal(one.st, RFM_EPARSE);
        result many = read_with((const char *)gz, n, &OPT, 2, 2048);
        assert_same(&one, &many, "truncated gzip");
        free_result(&one);
        free_result(&many);
    }
    result one = read_with((const char *)gz, gzlen, &OPT, 1, 0);
    result many = read_with((const char *)gz, gzlen, &OPT, 2, 2048);
    assert_int_equal(one.st, RFM_OK);
    assert_same(&one, &many, "whole gzip");
    free_result(&one);
    free_result(&many);
    free(gz);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_one_thread),
        cmocka_unit_test(test_quoted_newlines_across_cuts),
        cmocka_unit_test(test_cut_inside_quotes),
        cmocka_unit_test(test_errors_name_the_same_line),
        cmocka_unit_test(test_truncated_gzip),
        cmocka_unit_test(test_file_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
