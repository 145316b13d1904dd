/* test_txn.c - cleaning reasons, per-customer features on a hand-made
 * fixture (every expected value worked out by hand in the comments), and
 * independence from line order. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "date.h"
#include "txn.h"

static const txn_options OPT = {"InvoiceNo", "CustomerID", "InvoiceDate", "Quantity",
                                "UnitPrice", "StockCode",  "C",           DATE_NONE};

/* Line numbers are file lines: the header is line 1. */
static const char *FIXTURE =
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "1001,A,\"Mug, red\",2,2011-01-01 10:00:00,3.00,17850.0,UK\n"   /* 2: used 6.00 */
    "1001,B,Plate,1,2011-01-01 10:00:00,4.50,17850.0,UK\n"          /* 3: used 4.50 */
    "1001,B,Plate,1,2011-01-01 10:00:00,4.50,17850.0,UK\n"          /* 4: duplicate */
    "1002,A,\"Mug, red\",1,2011-01-01 15:00:00,3.00,17850,UK\n"     /* 5: used, same day */
    "1003,C,Bowl,4,1/10/2011 9:30,2.50,17850,UK\n"                  /* 6: used 10.00 */
    "C1004,A,\"Mug, red\",-1,2011-01-11 10:00:00,3.00,17850,UK\n"   /* 7: cancelled */
    "1005,A,\"Mug, red\",1,2011-01-12 10:00:00,3.00,,UK\n"          /* 8: missing id */
    "1006,A,\"Mug, red\",x,2011-01-12 10:00:00,3.00,12000,UK\n"     /* 9: bad number */
    "1007,A,\"Mug, red\",1,2011-13-12 10:00:00,3.00,12000,UK\n"     /* 10: bad date */
    "1008,A,\"Mug, red\",0,2011-01-12 10:00:00,3.00,12000,UK\n"     /* 11: quantity 0 */
    "1009,A,\"Mug, red\",1,2011-01-12 10:00:00,0,12000,UK\n"        /* 12: price 0 */
    "1010,D,Jug,1,2011-01-20,20.00,12000,UK\n"                      /* 13: used 20.00 */
    "1011,A,\"Mug, red\",3,2011-01-05,1.00,nan,UK\n";               /* 14: missing id */

static txn_data *read_text(const char *text, const txn_options *opt, txn_report *rep,
                           rfm_status want)
{
    csv_reader *r;
    txn_data *d = NULL;
    char err[RFM_ERRLEN] = "";
    assert_int_equal(csv_open_mem(text, strlen(text), "fx.csv", &r, err, sizeof err), RFM_OK);
    rfm_status st = txn_read_csv(r, opt, NULL, NULL, &d, rep, err, sizeof err);
    csv_close(r);
    if (st != want)
        fail_msg("status %d (%s), wanted %d", st, err, want);
    return d;
}

static void test_cleaning_reasons(void **state)
{
    (void)state;
    txn_report rep;
    txn_data *d = read_text(FIXTURE, &OPT, &rep, RFM_OK);
    assert_int_equal(rep.lines, 13);
    assert_int_equal(rep.used, 5);
    assert_int_equal(rep.count[TXN_DUPLICATE], 1);
    assert_int_equal(rep.examples[TXN_DUPLICATE][0], 4);
    assert_int_equal(rep.count[TXN_CANCELLED], 1);
    assert_int_equal(rep.examples[TXN_CANCELLED][0], 7);
    assert_int_equal(rep.count[TXN_MISSING_ID], 2);
    assert_int_equal(rep.examples[TXN_MISSING_ID][0], 8);
    assert_int_equal(rep.examples[TXN_MISSING_ID][1], 14);
    assert_int_equal(rep.count[TXN_BAD_NUMBER], 1);
    assert_int_equal(rep.examples[TXN_BAD_NUMBER][0], 9);
    assert_int_equal(rep.count[TXN_BAD_DATE], 1);
    assert_int_equal(rep.examples[TXN_BAD_DATE][0], 10);
    assert_int_equal(rep.count[TXN_NONPOS_QUANTITY], 1);
    assert_int_equal(rep.count[TXN_NONPOS_PRICE], 1);
    uint64_t total = rep.used;
    for (int i = 0; i < TXN_NREASONS; i++)
        total += rep.count[i];
    assert_int_equal(total, rep.lines); /* every line accounted for */
    txn_free(d);
}

static void test_features_by_hand(void **state)
{
    (void)state;
    txn_report rep;
    txn_data *d = read_text(FIXTURE, &OPT, &rep, RFM_OK);
    assert_int_equal(txn_ncustomers(d), 2);
    assert_string_equal(txn_customer_id(d, 0), "12000"); /* sorted by id */
    assert_string_equal(txn_customer_id(d, 1), "17850"); /* "17850.0" normalised */
    assert_int_equal(txn_find(d, "17850"), 1);
    assert_int_equal(txn_find(d, "17850.0"), -1);
    /* Last purchase 2011-01-20, so the snapshot is 2011-01-21. */
    assert_int_equal(txn_snapshot_day(d), date_from_ymd(2011, 1, 21));
    txn_features f[2];
    txn_features_asof(d, txn_snapshot_day(d), f);
    /* 17850: invoices 1001, 1002 (2011-01-01) and 1003 (2011-01-10);
     * spend 6 + 4.5 + 3 = 13.5 on day one, 10 on day two. */
    assert_true(f[1].active);
    assert_near(f[1].recency, 11, 0);   /* 01-21 - 01-10 */
    assert_near(f[1].frequency, 3, 0);  /* distinct invoices */
    assert_near(f[1].monetary, 23.5, 1e-12);
    assert_near(f[1].tenure, 20, 0);    /* 01-21 - 01-01 */
    assert_near(f[1].aov, 23.5 / 3, 1e-12);
    assert_near(f[1].bg_x, 1, 0);       /* two purchase days */
    assert_near(f[1].bg_t_x, 9, 0);
    assert_near(f[1].bg_T, 19, 0);      /* to 01-20, the last observed day */
    assert_near(f[1].bg_mean_spend, 10, 1e-12);
    /* 12000: one purchase of 20 on 2011-01-20. */
    assert_near(f[0].recency, 1, 0);
    assert_near(f[0].frequency, 1, 0);
    assert_near(f[0].bg_x, 0, 0);
    assert_near(f[0].bg_T, 0, 0);
    assert_near(f[0].bg_mean_spend, 0, 0);

    /* As of 2011-01-05: 17850 has only day one; the rest is its future. */
    txn_features_asof(d, date_from_ymd(2011, 1, 5), f);
    assert_false(f[0].active);
    assert_near(f[0].future_days, 1, 0);
    assert_near(f[0].future_spend, 20, 1e-12);
    assert_near(f[1].frequency, 2, 0);
    assert_near(f[1].monetary, 13.5, 1e-12);
    assert_near(f[1].recency, 4, 0);
    assert_near(f[1].future_days, 1, 0);
    assert_near(f[1].future_spend, 10, 1e-12);
    txn_free(d);
}

/* txn_each_purchase gives back exactly the purchases of the fixture: the
 * customer-days with their spend and the invoices with their hash and day. */
typedef struct {
    double day_spend[2][64];
    int ninv[2];
    uint64_t ih[2][8];
    int32_t iday[2][8];
} walk;

static int on_day(void *u, size_t c, int32_t day, double spend)
{
    walk *w = u;
    w->day_spend[c][day - date_from_ymd(2011, 1, 1)] += spend;
    return 0;
}

static int on_inv(void *u, size_t c, uint64_t ih, int32_t day)
{
    walk *w = u;
    w->ih[c][w->ninv[c]] = ih;
    w->iday[c][w->ninv[c]++] = day;
    return 0;
}

static int stop_now(void *u, size_t c, int32_t day, double spend) { return 1; }

static void test_each_purchase(void **state)
{
    (void)state;
    txn_report rep;
    txn_data *d = read_text(FIXTURE, &OPT, &rep, RFM_OK);
    walk w = {0};
    assert_int_equal(txn_each_purchase(d, on_day, on_inv, &w), 0);
    assert_near(w.day_spend[1][0], 13.5, 1e-12); /* 17850, 2011-01-01 */
    assert_near(w.day_spend[1][9], 10, 1e-12);   /* 17850, 2011-01-10 */
    assert_near(w.day_spend[0][19], 20, 1e-12);  /* 12000, 2011-01-20 */
    double total = 0;
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < 64; k++)
            total += w.day_spend[c][k];
    assert_near(total, 43.5, 1e-12); /* nothing else */
    assert_int_equal(w.ninv[0], 1);
    assert_int_equal(w.ninv[1], 3);
    assert_true(w.ih[0][0] == txn_invoice_hash("1010", 4));
    int found = 0;
    for (int k = 0; k < 3; k++)
        if (w.ih[1][k] == txn_invoice_hash("1003", 4)) {
            assert_int_equal(w.iday[1][k], date_from_ymd(2011, 1, 10));
            found++;
        }
    assert_int_equal(found, 1);
    assert_int_equal(txn_each_purchase(d, stop_now, on_inv, &w), -1);
    txn_free(d);
}

/* txn_classify: the first reason that applies wins, in txn_reason order. */
static void test_classify_order(void **state)
{
    (void)state;
    txn_line l;
    /* missing id beats everything, cancelled beats a bad number */
    assert_int_equal(txn_classify(" nan ", 5, "C1", 2, "C", 0, 0, 0, DATE_NONE, &l),
                     TXN_MISSING_ID);
    assert_int_equal(txn_classify("7", 1, "C1", 2, "C", 0, 0, 0, DATE_NONE, &l), TXN_CANCELLED);
    assert_int_equal(txn_classify("7", 1, "C1", 2, NULL, 1, NAN, 1, 0, &l), TXN_BAD_NUMBER);
    assert_int_equal(txn_classify("7", 1, "1", 1, "C", 1, 1e200, 1e200, 0, &l), TXN_BAD_NUMBER);
    assert_int_equal(txn_classify("7", 1, "1", 1, "C", 1, -1, 2, DATE_NONE, &l), TXN_BAD_DATE);
    assert_int_equal(txn_classify("7", 1, "1", 1, "C", 1, -1, -2, 0, &l), TXN_NONPOS_QUANTITY);
    assert_int_equal(txn_classify("7", 1, "1", 1, "C", 1, 1, 0, 0, &l), TXN_NONPOS_PRICE);
    assert_int_equal(txn_classify(" 17850.0 ", 9, "1", 1, "C", 1, 3, 2.5, 0, &l), TXN_NREASONS);
    assert_int_equal(l.cidlen, 5);
    assert_memory_equal(l.cid, "17850", 5);
    assert_near(l.spend, 7.5, 0);
}

static void test_products(void **state)
{
    (void)state;
    txn_report rep;
    txn_data *d = read_text(FIXTURE, &OPT, &rep, RFM_OK);
    assert_int_equal(txn_nproducts(d), 4); /* A B C D */
    const uint32_t *p, *cnt, *last;
    size_t n;
    txn_customer_products(d, 1, &p, &cnt, &last, &n); /* 17850: A x2 lines, B, C */
    assert_int_equal(n, 3);
    assert_string_equal(txn_product_id(d, p[0]), "A");
    assert_int_equal(cnt[0], 2);
    assert_int_equal(last[0], 0); /* A not bought on the last day (01-10) */
    assert_string_equal(txn_product_id(d, p[2]), "C");
    assert_int_equal(last[2], 1); /* C is the last basket */
    txn_free(d);
}

static void test_line_order_does_not_matter(void **state)
{
    (void)state;
    /* Same lines, invoices reversed: identical features. */
    const char *a = "InvoiceNo,CustomerID,InvoiceDate,Quantity,UnitPrice\n"
                    "1,x,2011-01-01,1,2\n1,x,2011-01-01,2,2\n2,y,2011-01-03,1,5\n"
                    "3,x,2011-01-04,1,1.25\n";
    const char *b = "InvoiceNo,CustomerID,InvoiceDate,Quantity,UnitPrice\n"
                    "3,x,2011-01-04,1,1.25\n2,y,2011-01-03,1,5\n1,x,2011-01-01,2,2\n"
                    "1,x,2011-01-01,1,2\n";
    txn_options o = OPT;
    o.product = NULL;
    txn_report ra, rb;
    txn_data *da = read_text(a, &o, &ra, RFM_OK), *db = read_text(b, &o, &rb, RFM_OK);
    txn_features fa[2], fb[2];
    txn_features_asof(da, txn_snapshot_day(da), fa);
    txn_features_asof(db, txn_snapshot_day(db), fb);
    assert_memory_equal(fa, fb, sizeof fa);
    assert_near(fa[0].bg_mean_spend, 1.25, 0);
    txn_free(da);
    txn_free(db);
}

static void test_snapshot_and_errors(void **state)
{
    (void)state;
    txn_options o = OPT;
    o.snapshot_day = date_from_ymd(2011, 1, 10);
    txn_report rep;
    txn_data *d = read_text(FIXTURE, &o, &rep, RFM_OK);
    assert_int_equal(rep.count[TXN_AFTER_SNAPSHOT], 2); /* lines 6 and 13 */
    assert_int_equal(txn_snapshot_day(d), o.snapshot_day);
    txn_free(d);

    /* Missing column: names it. Wrong field count: names line and column. */
    char err[RFM_ERRLEN];
    csv_reader *r;
    const char *nocol = "InvoiceNo,Client,InvoiceDate,Quantity,UnitPrice\n1,2,2011-01-01,1,1\n";
    assert_int_equal(csv_open_mem(nocol, strlen(nocol), "n.csv", &r, err, sizeof err), RFM_OK);
    o = OPT;
    o.product = NULL;
    assert_int_equal(txn_read_csv(r, &o, NULL, NULL, &d, &rep, err, sizeof err), RFM_EINVAL);
    assert_null(d);
    assert_non_null(strstr(err, "'CustomerID'"));
    csv_close(r);
    const char *short_row = "InvoiceNo,CustomerID,InvoiceDate,Quantity,UnitPrice\n"
                            "1,x,2011-01-01,1,2\n2,y,2011-01-02,1\n";
    assert_int_equal(csv_open_mem(short_row, strlen(short_row), "s.csv", &r, err, sizeof err),
                     RFM_OK);
    assert_int_equal(txn_read_csv(r, &o, NULL, NULL, &d, &rep, err, sizeof err), RFM_EPARSE);
    assert_non_null(strstr(err, "s.csv:3:"));
    assert_non_null(strstr(err, "expected 5 fields, found 4"));
    csv_close(r);
    /* Nothing usable: a clear data error, not an empty model. */
    const char *none = "InvoiceNo,CustomerID,InvoiceDate,Quantity,UnitPrice\n1,,2011-01-01,1,2\n";
    assert_int_equal(csv_open_mem(none, strlen(none), "e.csv", &r, err, sizeof err), RFM_OK);
    assert_int_equal(txn_read_csv(r, &o, NULL, NULL, &d, &rep, err, sizeof err), RFM_EDATA);
    csv_close(r);
}

/* Found by fuzz_csv: quantity and price each finite and positive, but
 * their product overflowing to Inf (or underflowing to 0) made monetary
 * infinite (or 0) and aov NaN. Such a line is a bad number, and the
 * largest spend allowed keeps sums of 2^32 lines finite. */
static void test_spend_out_of_range(void **state)
{
    (void)state;
    const char *text = "InvoiceNo,CustomerID,InvoiceDate,Quantity,UnitPrice\n"
                       "1,x,2011-01-01,1e308,1e10\n"   /* Inf */
                       "2,x,2011-01-02,1e-200,1e-200\n" /* 0 */
                       "3,x,2011-01-03,1e298,2\n"       /* above TXN_SPEND_MAX */
                       "4,x,2011-01-04,-1e308,1e10\n"   /* non-positive first */
                       "5,x,2011-01-05,1e298,1\n"       /* the largest spend: used */
                       "6,x,2011-01-06,2,3\n";
    txn_options o = OPT;
    o.product = NULL;
    txn_report rep;
    txn_data *d = read_text(text, &o, &rep, RFM_OK);
    assert_int_equal(rep.count[TXN_BAD_NUMBER], 3);
    assert_int_equal(rep.examples[TXN_BAD_NUMBER][0], 2);
    assert_int_equal(rep.examples[TXN_BAD_NUMBER][2], 4);
    assert_int_equal(rep.count[TXN_NONPOS_QUANTITY], 1);
    assert_int_equal(rep.used, 2);
    assert_true((double)UINT32_MAX * TXN_SPEND_MAX < DBL_MAX);
    txn_features f;
    txn_features_asof(d, txn_snapshot_day(d), &f);
    assert_true(isfinite(f.monetary) && isfinite(f.aov) && isfinite(f.bg_mean_spend));
    assert_near(f.monetary, 1e298 + 6, 1e282);
    txn_free(d);
}

/* Found by fuzz_csv: an invoice whose consecutive lines carry different
 * days kept the day of its first line, so as of a day between them the
 * customer had a purchase but no invoice: frequency 0, aov infinite. An
 * invoice is dated by its earliest line wherever its lines are. */
static void test_invoice_spanning_days(void **state)
{
    (void)state;
    const char *text = "InvoiceNo,CustomerID,InvoiceDate,Quantity,UnitPrice\n"
                       "1,x,2011-01-05,1,2\n"
                       "1,x,2011-01-01,1,3\n" /* same invoice, earlier day, next line */
                       "2,x,2011-01-09,1,4\n"
                       "2,y,2011-01-09,1,4\n"
                       "1,y,2011-01-07,1,4\n" /* hash lookup path: not the previous line */
                       "3,y,2011-01-02,1,4\n"
                       "1,y,2011-01-01,1,4\n";
    txn_options o = OPT;
    o.product = NULL;
    txn_report rep;
    txn_data *d = read_text(text, &o, &rep, RFM_OK);
    txn_features f[2];
    txn_features_asof(d, date_from_ymd(2011, 1, 3), f);
    assert_true(f[0].active && f[1].active);
    assert_near(f[0].frequency, 1, 0); /* x: invoice 1, dated 01-01 */
    assert_near(f[0].monetary, 3, 0);  /* only the 01-01 line's spend is before 01-03 */
    assert_near(f[0].aov, 3, 0);
    assert_near(f[1].frequency, 2, 0); /* y: invoices 1 (01-01) and 3 (01-02) */
    txn_features_asof(d, txn_snapshot_day(d), f);
    assert_near(f[0].frequency, 2, 0);
    assert_near(f[1].frequency, 3, 0);
    txn_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cleaning_reasons),
        cmocka_unit_test(test_features_by_hand),
        cmocka_unit_test(test_products),
        cmocka_unit_test(test_line_order_does_not_matter),
        cmocka_unit_test(test_snapshot_and_errors),
        cmocka_unit_test(test_spend_out_of_range),
        cmocka_unit_test(test_invoice_spanning_days),
        cmocka_unit_test(test_each_purchase),
        cmocka_unit_test(test_classify_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
