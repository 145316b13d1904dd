/* test_txn.c - cleaning reasons, per-customer features on a hand-made
 * fixture (every expected value worked out by hand in the comments), and
 * independence from line order. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "date.h"
#include "txn.h"

static const txn_options OPT = TXN_RETAIL_OPTIONS;

/* Line numbers are file lines: the header is line 1. */
static const char *FIXTURE =
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "1001,A,\"Mug, red\",2,2011-01-01 10:00:00,3.00,17850.0,UK\n" /* 2: used 6.00 */
    "1001,B,Plate,1,2011-01-01 10:00:00,4.50,17850.0,UK\n"        /* 3: used 4.50 */
    "1001,B,Plate,1,2011-01-01 10:00:00,4.50,17850.0,UK\n"        /* 4: duplicate */
    "1002,A,\"Mug, red\",1,2011-01-01 15:00:00,3.00,17850,UK\n"   /* 5: used, same day */
    "1003,C,Bowl,4,1/10/2011 9:30,2.50,17850,UK\n"                /* 6: used 10.00 */
    "C1004,A,\"Mug, red\",-1,2011-01-11 10:00:00,3.00,17850,UK\n" /* 7: cancelled */
    "1005,A,\"Mug, red\",1,2011-01-12 10:00:00,3.00,,UK\n"        /* 8: missing id */
    "1006,A,\"Mug, red\",x,2011-01-12 10:00:00,3.00,12000,UK\n"   /* 9: bad number */
    "1007,A,\"Mug, red\",1,2011-13-12 10:00:00,3.00,12000,UK\n"   /* 10: bad date */
    "1008,A,\"Mug, red\",0,2011-01-12 10:00:00,3.00,12000,UK\n"   /* 11: quantity 0 */
    "1009,A,\"Mug, red\",1,2011-01-12 10:00:00,0,12000,UK\n"      /* 12: price 0 */
    "1010,D,Jug,1,2011-01-20,20.00,12000,UK\n"                    /* 13: used 20.00 */
    "1011,A,\"Mug, red\",3,2011-01-05,1.00,nan,UK\n";             /* 14: missing id */

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

/* The pseudonym of id as docs/security.md tells a CRM to compute it
 * (openssl, outside the code under test), for key. */
static void openssl_pseudonym(const char *key, const char *id, char out[33])
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "printf %%s '%s' | openssl dgst -sha256 -hmac '%s' | sed 's/.*= //' | cut -c1-32", id,
             key);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    if (!fgets(out, 33, p))
        out[0] = '\0';
    pclose(p);
}

/* txn_pseudonym: openssl's HMAC cut to 32 hex digits, of the id as
 * txn_read keeps it (blanks trimmed, 17850.0 is 17850); missing ids have
 * none; txn_is_pseudonym knows the form. */
static void test_pseudonym(void **state)
{
    (void)state;
    const char *key = "k3y-for-the-test-0001";
    char mine[33], ref[33];
    const char *ids[] = {"17850", "alice@example.com", "+44 20 7946 0000", "Ünïcode-id"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(txn_pseudonym(key, strlen(key), ids[i], strlen(ids[i]), mine), 32);
        openssl_pseudonym(key, ids[i], ref);
        assert_string_equal(mine, ref);
        assert_true(txn_is_pseudonym(mine, strlen(mine)));
    }
    char other[33];
    txn_pseudonym(key, strlen(key), " 17850.0\t", 9, other);
    txn_pseudonym(key, strlen(key), "17850", 5, mine);
    assert_string_equal(other, mine);
    txn_pseudonym("another-key-00000", 17, "17850", 5, other);
    assert_string_not_equal(other, mine);
    assert_int_equal(txn_pseudonym(key, strlen(key), " nan ", 5, mine), 0);
    assert_string_equal(mine, "");
    assert_false(txn_is_pseudonym("0123456789ABCDEF0123456789abcdef", 32)); /* upper case */
    assert_false(txn_is_pseudonym("0123456789abcdef0123456789abcde", 31));
    assert_false(txn_is_pseudonym("0123456789abcdef0123456789abcdeg", 32));
}

static void test_id_looks_like(void **state)
{
    (void)state;
    assert_int_equal(txn_id_looks_like("alice@example.com"), TXN_ID_EMAIL);
    assert_int_equal(txn_id_looks_like("a.b+c@mail.example.co.uk"), TXN_ID_EMAIL);
    assert_int_equal(txn_id_looks_like("+44 20 7946 0000"), TXN_ID_PHONE);
    assert_int_equal(txn_id_looks_like("(030) 1234-5678"), TXN_ID_PHONE);
    assert_int_equal(txn_id_looks_like("+4915112345678"), TXN_ID_PHONE);
    /* Account numbers and other ids are neither. */
    assert_int_equal(txn_id_looks_like("17850"), TXN_ID_OTHER);
    assert_int_equal(txn_id_looks_like("123456789012"), TXN_ID_OTHER);
    assert_int_equal(txn_id_looks_like("C-1234"), TXN_ID_OTHER);
    assert_int_equal(txn_id_looks_like("user@localhost"), TXN_ID_OTHER);
    assert_int_equal(txn_id_looks_like("@handle"), TXN_ID_OTHER);
    assert_int_equal(txn_id_looks_like("1-2"), TXN_ID_OTHER);
}

/* With id_key, the customers read are the pseudonyms of the clear ids,
 * the features unchanged; dropped lines' texts are withheld. */
static void test_read_pseudonymous(void **state)
{
    (void)state;
    txn_options o = OPT;
    o.id_key = "k3y-for-the-test-0001";
    txn_report rep, rep0;
    txn_data *d = read_text(FIXTURE, &o, &rep, RFM_OK);
    txn_data *d0 = read_text(FIXTURE, &OPT, &rep0, RFM_OK);
    assert_int_equal(txn_ncustomers(d), txn_ncustomers(d0));
    assert_int_equal(rep.used, rep0.used);
    for (size_t i = 0; i < txn_ncustomers(d0); i++) {
        const char *id = txn_customer_id(d0, i);
        char p[33];
        txn_pseudonym(o.id_key, strlen(o.id_key), id, strlen(id), p);
        long k = txn_find(d, p);
        assert_true(k >= 0);
        assert_true(txn_find(d, id) < 0);
    }
    for (int r = 0; r < TXN_NREASONS; r++)
        if (rep.count[r])
            assert_non_null(strstr(rep.example_text[r], "withheld"));
    txn_free(d);
    txn_free(d0);
}

static int erase_12000(void *ctx, const char *id, size_t len)
{
    (*(int *)ctx)++;
    return len == 5 && memcmp(id, "12000", 5) == 0;
}

/* An erased customer's lines are dropped as TXN_ERASED (after the other
 * reasons), the rest read as without the list; with id_key the callback
 * sees pseudonyms. */
static void test_erased(void **state)
{
    (void)state;
    txn_options o = OPT;
    int asked = 0;
    o.is_erased = erase_12000;
    o.erased = &asked;
    txn_report rep, rep0;
    txn_data *d = read_text(FIXTURE, &o, &rep, RFM_OK);
    txn_data *d0 = read_text(FIXTURE, &OPT, &rep0, RFM_OK);
    assert_true(asked > 0);
    assert_true(txn_find(d0, "12000") >= 0);
    assert_true(txn_find(d, "12000") < 0);
    assert_int_equal(txn_ncustomers(d), txn_ncustomers(d0) - 1);
    assert_true(rep.count[TXN_ERASED] > 0);
    assert_int_equal(rep.used + rep.count[TXN_ERASED] + rep.count[TXN_RETURN],
                     rep0.used + rep0.count[TXN_RETURN]);
    for (int r = 0; r < TXN_ERASED; r++)
        if (r != TXN_RETURN)
            assert_int_equal(rep.count[r], rep0.count[r]); /* the other reasons first */
    assert_string_equal(txn_reason_name(TXN_ERASED), "erased");
    txn_free(d);
    txn_free(d0);
    /* Pseudonymous: 12000 is asked for by its pseudonym, so never matches. */
    o.id_key = "k3y-for-the-test-0001";
    d = read_text(FIXTURE, &o, &rep, RFM_OK);
    assert_int_equal(rep.count[TXN_ERASED], 0);
    txn_free(d);
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
    assert_near(f[1].recency, 11, 0);  /* 01-21 - 01-10 */
    assert_near(f[1].frequency, 3, 0); /* distinct invoices */
    assert_near(f[1].monetary, 23.5, 1e-12);
    assert_near(f[1].tenure, 20, 0); /* 01-21 - 01-01 */
    assert_near(f[1].aov, 23.5 / 3, 1e-12);
    assert_near(f[1].bg_x, 1, 0); /* two purchase days */
    assert_near(f[1].bg_t_x, 9, 0);
    assert_near(f[1].bg_T, 19, 0); /* to 01-20, the last observed day */
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
    assert_true(w.ih[0][0] == txn_invoice_key("1010", 4, NULL, 0, 0));
    int found = 0;
    for (int k = 0; k < 3; k++)
        if (w.ih[1][k] == txn_invoice_key("1003", 4, NULL, 0, 0)) {
            assert_int_equal(w.iday[1][k], date_from_ymd(2011, 1, 10));
            found++;
        }
    assert_int_equal(found, 1);
    assert_int_equal(txn_each_purchase(d, stop_now, on_inv, &w), -1);
    txn_free(d);
}

/* Customer ids as txn_classify normalises them: blanks trimmed, an
 * integer written as a float ("17850.0", as pandas writes a column with
 * gaps) as the integer, anything else kept whole; the words a blank cell
 * becomes are missing. A cancellation prefix of two letters too. */
static void test_id_normalised(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out; /* NULL: missing */
    } cases[] = {
        {"17850.0", "17850"},   {"17850.000", "17850"}, {"17850", "17850"},
        {" 42.0\t", "42"},      {"007.00", "007"},      {"12.", "12"},
        {"17850.5", "17850.5"}, {".0", ".0"},           {"12a.0", "12a.0"},
        {"1.0.0", "1.0.0"},     {"1.00x", "1.00x"},     {"A-17.0", "A-17.0"},
        {"-17.0", "-17.0"},     {"NULL", NULL},         {" None ", NULL},
        {"NaN", NULL},          {"   ", NULL},          {"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        txn_line l;
        txn_reason r =
            txn_classify(cases[i].in, strlen(cases[i].in), "1", 1, "C", 1, 1, 1, 2, 0, 0, &l);
        if (!cases[i].out) {
            assert_int_equal(r, TXN_MISSING_ID);
            continue;
        }
        assert_int_equal(r, TXN_NREASONS);
        if (l.cidlen != strlen(cases[i].out) || memcmp(l.cid, cases[i].out, l.cidlen) != 0)
            fail_msg("'%s' -> '%.*s', want '%s'", cases[i].in, (int)l.cidlen, l.cid, cases[i].out);
    }
    txn_line l;
    assert_int_equal(txn_classify("7", 1, "CX9", 3, "CX", 2, 1, 1, 2, 0, 0, &l), TXN_CANCELLED);
    assert_int_equal(txn_classify("7", 1, "CY9", 3, "CX", 2, 1, 1, 2, 0, 0, &l), TXN_NREASONS);
    assert_int_equal(txn_classify("7", 1, "C", 1, "CX", 2, 1, 1, 2, 0, 0, &l), TXN_NREASONS);
}

/* txn_classify: the first reason that applies wins, in txn_reason order. */
static void test_classify_order(void **state)
{
    (void)state;
    txn_line l;
    /* missing id beats everything, cancelled beats a bad number */
    assert_int_equal(txn_classify(" nan ", 5, "C1", 2, "C", 1, 0, 0, 0, 0, DATE_NONE, &l),
                     TXN_MISSING_ID);
    assert_int_equal(txn_classify("7", 1, "C1", 2, "C", 1, 0, 0, 0, 0, DATE_NONE, &l),
                     TXN_CANCELLED);
    /* no invoice column: nothing is a cancellation */
    assert_int_equal(txn_classify("7", 1, NULL, 0, "C", 1, 1, 1, 2, 0, 0, &l), TXN_NREASONS);
    assert_int_equal(txn_classify("7", 1, "C1", 2, "", 0, 0, NAN, 1, 0, 0, &l), TXN_BAD_NUMBER);
    assert_int_equal(txn_classify("7", 1, "1", 1, "C", 1, 1, 1e200, 1e200, 0, 0, &l),
                     TXN_BAD_NUMBER);
    assert_int_equal(txn_classify("7", 1, "1", 1, "C", 1, 1, -1, 2, 0, DATE_NONE, &l),
                     TXN_BAD_DATE);
    assert_int_equal(txn_classify("7", 1, "1", 1, "C", 1, 1, 0, 2, 0, 0, &l), TXN_NONPOS_QUANTITY);
    assert_int_equal(txn_classify("7", 1, "1", 1, "C", 1, 1, 0, 1, 1, 0, &l), TXN_ZERO_AMOUNT);
    assert_int_equal(txn_classify("7", 1, "1", 1, "C", 1, 1, 1, 0, 0, 0, &l), TXN_NONPOS_PRICE);
    /* a negative quantity passes the checks with a negative spend: a return */
    assert_int_equal(txn_classify("7", 1, "1", 1, "C", 1, 1, -2, 3, 0, 0, &l), TXN_NREASONS);
    assert_near(l.spend, -6, 0);
    assert_int_equal(txn_classify(" 17850.0 ", 9, "1", 1, "C", 1, 1, 3, 2.5, 0, 0, &l),
                     TXN_NREASONS);
    assert_int_equal(l.cidlen, 5);
    assert_memory_equal(l.cid, "17850", 5);
    assert_near(l.spend, 7.5, 0);
    /* invoice keys: by number, or by customer and day without one */
    assert_true(txn_invoice_key("1", 1, "a", 1, 5) == txn_invoice_key("1", 1, "b", 1, 9));
    assert_true(txn_invoice_key(NULL, 0, "a", 1, 5) == txn_invoice_key(NULL, 0, "a", 1, 5));
    assert_true(txn_invoice_key(NULL, 0, "a", 1, 5) != txn_invoice_key(NULL, 0, "a", 1, 6));
    assert_true(txn_invoice_key(NULL, 0, "a", 1, 5) != txn_invoice_key(NULL, 0, "b", 1, 5));
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
                       "1,x,2011-01-01,1e308,1e10\n"    /* Inf */
                       "2,x,2011-01-02,1e-200,1e-200\n" /* 0 */
                       "3,x,2011-01-03,1e298,2\n"       /* above TXN_SPEND_MAX */
                       "4,x,2011-01-04,-1e308,1e10\n"   /* a return worth -Inf */
                       "5,x,2011-01-05,1e298,1\n"       /* the largest spend: used */
                       "6,x,2011-01-06,2,3\n";
    txn_options o = OPT;
    o.product = NULL;
    txn_report rep;
    txn_data *d = read_text(text, &o, &rep, RFM_OK);
    assert_int_equal(rep.count[TXN_BAD_NUMBER], 4);
    assert_int_equal(rep.examples[TXN_BAD_NUMBER][0], 2);
    assert_int_equal(rep.examples[TXN_BAD_NUMBER][3], 5);
    assert_int_equal(rep.count[TXN_RETURN], 0);
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

/* ---- dialects: every export shape through options alone ---------------
 * Each fixture says the same purchases in another dialect:
 *   a@x.com: invoice 1 on 2024-03-01 (12.50 + 7.50), invoice 2 on
 *            2024-03-05 (5.00)          -> frequency 2, monetary 25, recency 1
 *   b@x.com: invoice 3 on 2024-03-04 (10.00) -> frequency 1, monetary 10,
 *            recency 2
 * The snapshot is the day after the last purchase, 2024-03-06. */

static txn_data *read_named(const char *text, const char *name, const txn_options *opt,
                            txn_report *rep, rfm_status want, char *err)
{
    csv_reader *r;
    txn_data *d = NULL;
    assert_int_equal(csv_open_mem(text, strlen(text), name, &r, err, RFM_ERRLEN), RFM_OK);
    rfm_status st = txn_read_csv(r, opt, NULL, NULL, &d, rep, err, RFM_ERRLEN);
    csv_close(r);
    if (st != want)
        fail_msg("status %d (%s), wanted %d", st, err, want);
    return d;
}

static void expect_customer(const txn_data *d, const char *id, double freq, double monetary,
                            double recency)
{
    long i = txn_find(d, id);
    if (i < 0)
        fail_msg("customer %s not found", id);
    txn_features *f = calloc(txn_ncustomers(d), sizeof *f);
    assert_non_null(f);
    txn_features_asof(d, txn_snapshot_day(d), f);
    if (f[i].frequency != freq || fabs(f[i].monetary - monetary) > 1e-9 || f[i].recency != recency)
        fail_msg("%s: frequency %g monetary %.17g recency %g, wanted %g %g %g", id, f[i].frequency,
                 f[i].monetary, f[i].recency, freq, monetary, recency);
    free(f);
}

static void expect_standard(const char *text, const char *name, const txn_options *o)
{
    txn_report rep;
    char err[RFM_ERRLEN] = "";
    txn_data *d = read_named(text, name, o, &rep, RFM_OK, err);
    assert_int_equal(rep.used, rep.lines);
    assert_int_equal(txn_ncustomers(d), 2);
    assert_int_equal(txn_snapshot_day(d), date_from_ymd(2024, 3, 6));
    expect_customer(d, "a@x.com", 2, 25, 1);
    expect_customer(d, "b@x.com", 1, 10, 2);
    txn_free(d);
}

static const txn_options CRM = {.invoice = "Order",
                                .customer_id = "Email",
                                .date = "Time",
                                .quantity = "Qty",
                                .price = "Price",
                                .snapshot_day = DATE_NONE};

/* Semicolons, decimal comma, quoted fields holding the separator and a
 * quote, a byte order mark, CRLF, ISO 8601 times with Z, an offset and
 * fractions. */
static void test_semicolon_decimal_comma_crlf_bom(void **state)
{
    (void)state;
    txn_options o = CRM;
    o.separator = ';';
    o.decimal = ',';
    expect_standard("\xEF\xBB\xBF"
                    "Order;Email;Time;Qty;Price;Note\r\n"
                    "1;a@x.com;2024-03-01T10:00:00Z;1;12,50;\"red; big\"\r\n"
                    "1;a@x.com;2024-03-01T10:00:00.250Z;1;7,5;\"a \"\"good\"\" one\"\r\n"
                    "2;a@x.com;2024-03-05T01:30:00+01:00;1;5;\r\n"
                    "3;b@x.com;2024-03-04 12:00:00.123456+0000;2;5,00;\r\n",
                    "crm.csv", &o);
}

/* Tabs, no header: columns by 1-based position; dates as YYYYMMDD. */
static void test_tab_no_header_positions(void **state)
{
    (void)state;
    txn_options o = {.invoice = "1",
                     .customer_id = "3",
                     .date = "2",
                     .quantity = "4",
                     .price = "5",
                     .snapshot_day = DATE_NONE,
                     .separator = '\t',
                     .no_header = 1};
    expect_standard("1\t20240301\ta@x.com\t1\t12.50\n"
                    "1\t20240301\ta@x.com\t3\t2.50\n"
                    "2\t20240305\ta@x.com\t1\t5\n"
                    "3\t20240304\tb@x.com\t4\t2.50\n",
                    "log.tsv", &o);
}

/* Runs of spaces and tabs, blanks around lines, an amount column, no
 * invoice column (a customer's lines of one day are one purchase), Unix
 * seconds and milliseconds. */
static void test_whitespace_amount_no_invoice(void **state)
{
    (void)state;
    txn_options o = {.customer_id = "account",
                     .date = "when",
                     .amount = "usd",
                     .snapshot_day = DATE_NONE,
                     .separator = CSV_SEP_WHITESPACE};
    expect_standard("  when        account   usd\n"
                    "  1709287200  a@x.com   12.50  \n"
                    "1709287200000 \t a@x.com\t7.50\n"
                    "\n"
                    "1709629200    a@x.com   5.00\n"
                    "1709553600    b@x.com   \"10\"\n",
                    "log.txt", &o);
}

/* The UCI form, a strptime pattern, and a pipe separator. */
static void test_date_pattern_and_pipe(void **state)
{
    (void)state;
    txn_options o = CRM;
    o.separator = '|';
    o.date_format = "%d.%m.%Y %H:%M";
    expect_standard("Order|Email|Time|Qty|Price\n"
                    "1|a@x.com|01.03.2024 10:00|1|12.50\n"
                    "1|a@x.com|01.03.2024 10:00|1|7.50\n"
                    "2|a@x.com|05.03.2024 23:59|1|5\n"
                    "3|b@x.com|04.03.2024 00:00|1|10\n",
                    "erp.csv", &o);
    o.date_format = NULL;
    o.separator = ',';
    expect_standard("Order,Email,Time,Qty,Price\n"
                    "1,a@x.com,3/1/2024 10:00,1,12.50\n"
                    "1,a@x.com,3/1/2024 10:00,1,7.50\n"
                    "2,a@x.com,3/5/2024 23:59,1,5\n"
                    "3,b@x.com,3/4/2024 0:00,1,10\n",
                    "uci.csv", &o);
}

/* JSON Lines, found by its content (the name says nothing): members as
 * numbers or strings. */
static void test_json_lines(void **state)
{
    (void)state;
    txn_options o = {.invoice = "order",
                     .customer_id = "email",
                     .date = "ts",
                     .amount = "total",
                     .snapshot_day = DATE_NONE,
                     .decimal = ','};
    expect_standard("{\"order\": 1, \"email\": \"a@x.com\", \"ts\": \"2024-03-01T10:00:00Z\", "
                    "\"total\": 12.5}\n"
                    "{\"order\": 1, \"email\": \"a@x.com\", \"ts\": \"2024-03-01T11:00:00Z\", "
                    "\"total\": \"7,50\"}\r\n"
                    "{\"order\": \"2\", \"email\": \"a@x.com\", \"ts\": 1709629200, \"total\": 5}\n"
                    "{\"email\": \"b@x.com\", \"order\": 3, \"ts\": \"20240304\", \"total\": 10, "
                    "\"extra\": [1, 2]}\n",
                    "export.txt", &o);
    txn_report rep;
    char err[RFM_ERRLEN] = "";
    o.format = TXN_FORMAT_JSONL;
    assert_null(read_named("{\"order\": 1}\n[1, 2]\n", "x.jsonl", &o, &rep, RFM_EPARSE, err));
    assert_non_null(strstr(err, "x.jsonl:2:1: a JSON Lines line must be one JSON object"));
    assert_null(read_named("{\"order\": 1,\n", "x.jsonl", &o, &rep, RFM_EPARSE, err));
    assert_non_null(strstr(err, "x.jsonl:1:"));
}

/* The zone: a time with an offset is an instant, moved into the zone; a
 * time without one is already the zone's. */
static void test_timezone_moves_days(void **state)
{
    (void)state;
    txn_options o = CRM;
    o.zone_s = 2 * 3600; /* +02:00 */
    const char *text = "Order,Email,Time,Qty,Price\n"
                       "1,a@x.com,2024-03-01T10:00:00Z,1,20\n"
                       "2,a@x.com,2024-03-04T23:30:00Z,1,5\n"  /* 05 01:30 at +02:00 */
                       "3,b@x.com,2024-03-04 23:30:00,1,10\n"; /* already local: the 4th */
    txn_report rep;
    char err[RFM_ERRLEN] = "";
    txn_data *d = read_named(text, "tz.csv", &o, &rep, RFM_OK, err);
    expect_customer(d, "a@x.com", 2, 25, 1);
    expect_customer(d, "b@x.com", 1, 10, 2);
    txn_free(d);
    o.zone_s = 0; /* in UTC a@x.com's second purchase is on the 4th, b's too */
    d = read_named(text, "tz.csv", &o, &rep, RFM_OK, err);
    expect_customer(d, "a@x.com", 2, 25, 1);
    expect_customer(d, "b@x.com", 1, 10, 1);
    txn_free(d);
}

/* Negative amounts are returns: counted under their own reason; with
 * subtract, also netted against monetary (never below 0) without moving
 * recency or frequency. */
static void test_returns(void **state)
{
    (void)state;
    const char *text = "Email;Day;Amount\n"
                       "a@x.com;2024-03-01;12,50\n"
                       "a@x.com;2024-03-01;7,50\n"
                       "a@x.com;2024-03-05;5\n"
                       "a@x.com;2024-03-05;-4,00\n" /* a return */
                       "b@x.com;2024-03-04;10\n"
                       "b@x.com;2024-03-05;-30\n" /* more than b ever bought */
                       "c@x.com;2024-03-02;0\n";  /* zero amount */
    txn_options o = {.customer_id = "Email",
                     .date = "Day",
                     .amount = "Amount",
                     .snapshot_day = DATE_NONE,
                     .separator = ';',
                     .decimal = ','};
    txn_report rep;
    char err[RFM_ERRLEN] = "";
    txn_data *d = read_named(text, "ret.csv", &o, &rep, RFM_OK, err);
    assert_int_equal(rep.count[TXN_RETURN], 2);
    assert_int_equal(rep.examples[TXN_RETURN][0], 5);
    assert_int_equal(rep.count[TXN_ZERO_AMOUNT], 1);
    assert_int_equal(rep.used, 4);
    expect_customer(d, "a@x.com", 2, 25, 1);
    expect_customer(d, "b@x.com", 1, 10, 2);
    txn_free(d);
    o.returns = TXN_RETURNS_SUBTRACT;
    d = read_named(text, "ret.csv", &o, &rep, RFM_OK, err);
    assert_int_equal(rep.count[TXN_RETURN], 2);
    expect_customer(d, "a@x.com", 2, 21, 1);
    expect_customer(d, "b@x.com", 1, 0, 2);
    txn_free(d);
    /* quantity x price: a negative quantity is a return too */
    txn_options q = CRM;
    d = read_named(
        "Order,Email,Time,Qty,Price\n1,a@x.com,2024-03-01,2,3\n2,a@x.com,2024-03-02,-1,3\n",
        "q.csv", &q, &rep, RFM_OK, err);
    assert_int_equal(rep.count[TXN_RETURN], 1);
    assert_int_equal(rep.count[TXN_NONPOS_QUANTITY], 0);
    txn_free(d);
}

/* What stops a read instead of being guessed, with file, line, column. */
static void test_refused_not_guessed(void **state)
{
    (void)state;
    txn_report rep;
    char err[RFM_ERRLEN] = "";
    txn_options o = CRM;
    o.separator = ';';
    o.decimal = ',';
    assert_null(read_named("Order;Email;Time;Qty;Price\n1;a;2024-03-01;1;2,5\n"
                           "2;a;2024-03-01;1;1.234,50\n",
                           "th.csv", &o, &rep, RFM_EINVAL, err));
    assert_non_null(strstr(err, "th.csv:3:18: '1.234,50' in columns.price has a thousands "
                                "separator"));
    o.decimal = '.';
    o.separator = ',';
    assert_null(read_named("Order,Email,Time,Qty,Price\n1,a,2024-03-01,\"1,000\",2\n", "th.csv", &o,
                           &rep, RFM_EINVAL, err));
    assert_non_null(strstr(err, "th.csv:2:16: '1,000' in columns.quantity"));
    assert_null(read_named("Order,Email,Time,Qty,Price\n1,a,03/04/2024,1,2\n", "amb.csv", &o, &rep,
                           RFM_EINVAL, err));
    assert_non_null(strstr(err, "amb.csv:2:5: date '03/04/2024' in columns.date could be "
                                "day/month or month/day: set data.date_format"));
    o.date_format = "%d/%m/%Y";
    txn_data *d = read_named("Order,Email,Time,Qty,Price\n1,a,03/04/2024,1,2\n", "amb.csv", &o,
                             &rep, RFM_OK, err);
    assert_int_equal(txn_last_day(d), date_from_ymd(2024, 4, 3));
    txn_free(d);
    /* a header that does not split on the separator names what to check */
    o = CRM;
    assert_null(read_named("Order;Email;Time;Qty;Price\n", "semi.csv", &o, &rep, RFM_EINVAL, err));
    assert_non_null(strstr(err, "semi.csv:1: column 'Order' (columns.invoice) not found in the "
                                "header, which has 1 field (check separator"));
}

/* Every line dropped: the error names the leading reason, one example line
 * and its text, and the report is filled for the caller to print. */
static void test_all_dropped_report(void **state)
{
    (void)state;
    txn_report rep;
    char err[RFM_ERRLEN] = "";
    txn_options o = CRM;
    assert_null(read_named("Order,Email,Time,Qty,Price\n"
                           "1,a@x.com,yesterday,1,2\n"
                           "2,,2024-03-01,1,2\n"
                           "3,b@x.com,today,\"1\",2\n",
                           "drop.csv", &o, &rep, RFM_EDATA, err));
    assert_int_equal(rep.lines, 3);
    assert_int_equal(rep.count[TXN_BAD_DATE], 2);
    assert_int_equal(txn_leading_reason(&rep), TXN_BAD_DATE);
    assert_string_equal(rep.example_text[TXN_BAD_DATE], "1,a@x.com,yesterday,1,2");
    assert_string_equal(err, "drop.csv: no usable line among 3: 2 dropped as bad_date, e.g. "
                             "line 2: 1,a@x.com,yesterday,1,2");
    /* the example text is cut to 200 bytes */
    static char big[1024];
    snprintf(big, sizeof big, "Order,Email,Time,Qty,Price\n1,%0300d,x,1,2\n", 7);
    assert_null(read_named(big, "big.csv", &o, &rep, RFM_EDATA, err));
    assert_int_equal(strlen(rep.example_text[TXN_BAD_DATE]), TXN_EXAMPLE_TEXT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cleaning_reasons),
        cmocka_unit_test(test_pseudonym),
        cmocka_unit_test(test_id_looks_like),
        cmocka_unit_test(test_read_pseudonymous),
        cmocka_unit_test(test_erased),
        cmocka_unit_test(test_features_by_hand),
        cmocka_unit_test(test_products),
        cmocka_unit_test(test_line_order_does_not_matter),
        cmocka_unit_test(test_snapshot_and_errors),
        cmocka_unit_test(test_spend_out_of_range),
        cmocka_unit_test(test_invoice_spanning_days),
        cmocka_unit_test(test_semicolon_decimal_comma_crlf_bom),
        cmocka_unit_test(test_tab_no_header_positions),
        cmocka_unit_test(test_whitespace_amount_no_invoice),
        cmocka_unit_test(test_date_pattern_and_pipe),
        cmocka_unit_test(test_json_lines),
        cmocka_unit_test(test_timezone_moves_days),
        cmocka_unit_test(test_returns),
        cmocka_unit_test(test_refused_not_guessed),
        cmocka_unit_test(test_all_dropped_report),
        cmocka_unit_test(test_each_purchase),
        cmocka_unit_test(test_id_normalised),
        cmocka_unit_test(test_classify_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
