/* test_customers.c - the per-customer table read back: every number as
 * strtod reads its text, bit for bit, whichever path customers_load takes
 * (short decimals by one division, the rest by strtod), and fields that
 * are no numbers refused with their line and column. Numbers of 16 to 19
 * digits (the long double path) and decimals near a tie between two
 * doubles, and a table large enough to be read on two threads, with ids
 * that hold commas, quotes and line ends around the cut. */
#include "testutil.h"

#include "customers.h"
#include "rng.h"

static const char HEADER[] =
    "customer_id,recency,frequency,monetary,repeat_purchases,days_first_to_last_purchase,"
    "days_since_first_purchase,mean_repeat_spend,ipt_trend,spend_trend\n";

/* One number's text of a kind chosen by k: integers, cents, up to 15
 * digits with the point anywhere, 16 and 17 digits (strtod's path),
 * negatives, exponents, leading zeros, a trailing point, -0. */
static void number_text(rfm_rng *rng, int k, char *out, size_t n)
{
    uint64_t u = rfm_rng_u64(rng);
    switch (k) {
    case 0: snprintf(out, n, "%llu", (unsigned long long)(u % 100000)); break;
    case 1:
        snprintf(out, n, "%llu.%02llu", (unsigned long long)(u % 100000),
                 (unsigned long long)(u / 7 % 100));
        break;
    case 2: { /* 15 digits, the point after 1..14 of them */
        unsigned long long m = 100000000000000ull + u % 900000000000000ull;
        char d[24];
        snprintf(d, sizeof d, "%llu", m);
        int at = 1 + (int)(u >> 50) % 14;
        snprintf(out, n, "%.*s.%s", at, d, d + at);
        break;
    }
    case 3: snprintf(out, n, "%.17g", (double)(u >> 11) / 9007199254740992.0 * 1000); break;
    case 4:
        snprintf(out, n, "-%llu.%03llu", (unsigned long long)(u % 1000),
                 (unsigned long long)(u / 13 % 1000));
        break;
    case 5: snprintf(out, n, "%.3e", (double)(u % 100000) / 7); break;
    case 6: snprintf(out, n, "000%llu.5", (unsigned long long)(u % 100)); break;
    case 7: snprintf(out, n, "%llu.", (unsigned long long)(u % 1000)); break;
    case 8: snprintf(out, n, "%s", u & 1 ? "-0" : "-0.000"); break;
    default: /* 16 digits: one too many for the short path */
        snprintf(out, n, "%llu.%llu", (unsigned long long)(1 + u % 9),
                 (unsigned long long)(100000000000000ull + (u >> 8) % 900000000000000ull));
    }
}

/* Load text (rows of an id and the nine numbers num[9 i .. 9 i + 8]) and
 * count the numbers that differ from strtod's reading of their text;
 * naive_wrong (if not NULL): those of at most 19 digits where dividing in
 * long double and rounding to double, without the tie check, would. */
static size_t load_and_compare(const char *text, size_t len, size_t rows, char (*num)[40],
                               size_t *naive_wrong)
{
    char path[64];
    write_temp(path, ".csv", text, len);
    customers *c = NULL;
    char err[RFM_ERRLEN] = "";
    if (customers_load(path, &c, err, sizeof err) != RFM_OK)
        fail_msg("customers_load: %s", err);
    assert_int_equal(customers_count(c), rows);
    size_t differ = 0;
    for (size_t i = 0; i < rows; i++) {
        const customer_row *r = customers_row(c, i);
        const double got[9] = {r->recency,           r->frequency,          r->monetary,
                               r->repeat_purchases,  r->days_first_to_last, r->days_since_first,
                               r->mean_repeat_spend, r->ipt_trend,          r->spend_trend};
        for (int k = 0; k < 9; k++) {
            const char *t = num[i * 9 + (size_t)k];
            double want = strtod(t, NULL);
            if (memcmp(&want, &got[k], sizeof want) != 0 && differ++ < 5)
                printf("    \"%s\": %a, strtod %a\n", t, got[k], want);
            if (!naive_wrong)
                continue;
            unsigned long long m = 0;
            long double p = 1;
            int point = 0, digits = 0;
            for (const char *q = t; *q; q++)
                if (*q == '.')
                    point = 1;
                else
                    m = 10 * m + (unsigned long long)(*q - '0'), p *= point ? 10 : 1, digits++;
            *naive_wrong += digits <= 19 && (double)((long double)m / p) != want;
        }
    }
    customers_free(c);
    unlink(path);
    return differ;
}

/* The header and rows of an id and nine numbers, number k of row i being
 * gen(rng, i, k)'s text, kept in *num too (40 bytes each). */
typedef void number_gen(rfm_rng *rng, size_t i, int k, char *out, size_t n);
static char *numbers_table(size_t rows, uint64_t seed, number_gen *gen, char (**num)[40],
                           size_t *len)
{
    rfm_rng rng;
    rfm_rng_seed(&rng, seed);
    size_t cap = rows * 9 * 41 + 32 + sizeof HEADER, at = 0;
    char *text = malloc(cap);
    *num = malloc(rows * 9 * sizeof **num);
    assert_non_null(text);
    assert_non_null(*num);
    at += (size_t)snprintf(text, cap, "%s", HEADER);
    for (size_t i = 0; i < rows; i++) {
        at += (size_t)snprintf(text + at, cap - at, "c%zu", i);
        for (int k = 0; k < 9; k++) {
            char *t = (*num)[i * 9 + (size_t)k];
            gen(&rng, i, k, t, 40);
            at += (size_t)snprintf(text + at, cap - at, ",%s", t);
        }
        text[at++] = '\n';
    }
    *len = at;
    return text;
}

static void ten_kinds(rfm_rng *rng, size_t i, int k, char *out, size_t n)
{
    number_text(rng, (int)((i + (size_t)k) % 10), out, n);
}

static void test_numbers_as_strtod(void **state)
{
    (void)state;
    size_t rows = 20000, len;
    char(*num)[40];
    char *text = numbers_table(rows, 99, ten_kinds, &num, &len);
    size_t differ = load_and_compare(text, len, rows, num, NULL);
    printf("    %zu numbers of 10 kinds: %zu differ from strtod's\n", rows * 9, differ);
    assert_int_equal(differ, 0);
    free(text), free(num);
}

static void test_not_numbers(void **state)
{
    (void)state;
    static const char *const bad[] = {"1.2.3", "-", ".", "12a", "1,5", "--1", "0x"};
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
        char text[512], path[64];
        int n = snprintf(text, sizeof text, "%sc1,1,2,3,4,5,6,\"%s\",,\n", HEADER, bad[b]);
        write_temp(path, ".csv", text, (size_t)n);
        customers *c = NULL;
        char err[RFM_ERRLEN] = "";
        assert_int_equal(customers_load(path, &c, err, sizeof err), RFM_EFORMAT);
        assert_null(c);
        if (!strstr(err, ":2:16: not a number")) /* line 2, byte 16 */
            fail_msg("\"%s\": %s", bad[b], err);
        printf("    \"%s\": %s\n", bad[b], err);
        unlink(path);
    }
}

/* Number 7 of a row: ties and their neighbours; the others 16 to 19
 * digits, the point after 1..digits-1 of them. */
static void long_text(rfm_rng *rng, size_t i, int k, char *t, size_t n)
{
    (void)i;
    uint64_t u = rfm_rng_u64(rng);
    if (k == 7) {
        static const char *const FMT[] = {"%llu", "%llu.5", "%llu.4999", "%llu.5001"};
        unsigned long long base = u & 1 ? 9007199254740993ull + 2 * (u >> 40 & 1023)
                                        : 4503599627370496ull + (u >> 40 & 1023);
        snprintf(t, n, FMT[u & 1 ? 0 : 1 + (u >> 20) % 3], base);
        return;
    }
    int digits = 16 + (int)(u % 4);
    char d[24];
    snprintf(d, sizeof d, "%019llu", (unsigned long long)(u >> 1) % 10000000000000000000ull);
    d[0] = (char)('1' + (u >> 60) % 9);
    int at = 1 + (int)((u >> 8) % (uint64_t)(digits - 1));
    snprintf(t, n, "%.*s.%.*s", at, d, digits - at, d + at);
}

/* 1.8 million numbers of 16-19 digits with the point anywhere, and exact
 * and near ties (2^53 + odd, 2^52 + k + 0.5): each as strtod reads it. The
 * test also counts the numbers where dividing in long double and rounding
 * to double (without the tie check) would differ from strtod, to show the
 * hard cases were met. */
static void test_long_decimals_as_strtod(void **state)
{
    (void)state;
    size_t rows = 200000, len;
    char(*num)[40];
    char *text = numbers_table(rows, 1234, long_text, &num, &len);
    size_t naive_wrong = 0, differ = load_and_compare(text, len, rows, num, &naive_wrong);
    printf("    %zu numbers of 16-19 digits and ties: %zu differ from strtod's (rounding twice "
           "without the tie check: %zu)\n",
           rows * 9, differ, naive_wrong);
    assert_int_equal(differ, 0);
    assert_true(naive_wrong > 0);
    free(text), free(num);
}

/* A table of 150,000 rows (about 8.6 MB: read on two threads) whose ids
 * every 997 rows, and every other one around the middle, hold a comma,
 * quotes and a line end, and one of 750,000 lines spans the middle
 * (quoted fields across which no cut may fall): every id and number back in order, lookups by
 * id; then a bad number in the second half named by its physical line. */
static int quoted(size_t i) { return i % 997 == 0 || (i >= 70000 && i < 80000 && i % 2 == 0); }

/* Row BIG's id: 1.5 MB of short lines, spanning the middle of the file. */
enum { BIG = 60000, BIG_LINES = 750000 };
static void big_id(char *out)
{
    for (size_t k = 0; k < BIG_LINES; k++)
        out[2 * k] = 'y', out[2 * k + 1] = '\n';
    out[2 * BIG_LINES] = '\0';
}

static void test_large_table_two_readers(void **state)
{
    (void)state;
    size_t rows = 150000, cap = rows * 64 + 2 * BIG_LINES + sizeof HEADER, len = 0;
    char *text = malloc(cap), *big = malloc(2 * BIG_LINES + 1);
    assert_non_null(text);
    assert_non_null(big);
    big_id(big);
    len += (size_t)snprintf(text, cap, "%s", HEADER);
    uint64_t line = 1, bad_line = 0;
    size_t bad_row = 120000;
    for (size_t i = 0; i < rows; i++) {
        line++;
        if (i == BIG) {
            len += (size_t)snprintf(text + len, cap - len, "\"%s\"", big);
            line += BIG_LINES;
        } else if (quoted(i)) {
            len += (size_t)snprintf(text + len, cap - len, "\"a,\"\"b\"\"\nc%zu\"", i);
            line++; /* the record spans two lines; its numbers are on the second */
        } else {
            len += (size_t)snprintf(text + len, cap - len, "c%zu", i);
        }
        len += (size_t)snprintf(text + len, cap - len, ",%zu,%zu.5,%zu.25,,,,,%s,\n", i % 400,
                                i % 37, i, i == bad_row ? "1x" : "0.125");
        if (i == bad_row)
            bad_line = line;
    }
    char path[64];
    write_temp(path, ".csv", text, len);
    customers *c = NULL;
    char err[RFM_ERRLEN] = "";
    assert_int_equal(customers_load(path, &c, err, sizeof err), RFM_EFORMAT);
    assert_null(c);
    char want[64];
    snprintf(want, sizeof want, ":%llu:", (unsigned long long)bad_line);
    if (!strstr(err, want) || !strstr(err, "not a number"))
        fail_msg("expected line %llu: %s", (unsigned long long)bad_line, err);
    printf("    %s\n", err);
    /* the same table without the bad number */
    char *b = strstr(text, ",1x,");
    assert_non_null(b);
    memcpy(b, ",10,", 4);
    unlink(path);
    write_temp(path, ".csv", text, len);
    if (customers_load(path, &c, err, sizeof err) != RFM_OK)
        fail_msg("customers_load: %s", err);
    assert_int_equal(customers_count(c), rows);
    for (size_t i = 0; i < rows; i++) {
        char id[32];
        if (i == BIG) {
            assert_string_equal(customers_id(c, i), big);
            continue;
        }
        if (quoted(i))
            snprintf(id, sizeof id, "a,\"b\"\nc%zu", i);
        else
            snprintf(id, sizeof id, "c%zu", i);
        assert_string_equal(customers_id(c, i), id);
        const customer_row *r = customers_row(c, i);
        assert_true(r == customers_find(c, id));
        assert_true(r->recency == (double)(i % 400) && r->frequency == (double)(i % 37) + 0.5 &&
                    r->monetary == (double)i + 0.25 && isnan(r->repeat_purchases) &&
                    r->ipt_trend == (i == bad_row ? 10 : 0.125) && isnan(r->spend_trend));
    }
    customers_free(c);
    unlink(path);
    free(text), free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_as_strtod),
        cmocka_unit_test(test_not_numbers),
        cmocka_unit_test(test_long_decimals_as_strtod),
        cmocka_unit_test(test_large_table_two_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
