/* test_customers.c - the per-customer table read back: every number as
 * strtod reads its text, bit for bit, whichever path customers_load takes
 * (short decimals by one division, the rest by strtod), and fields that
 * are no numbers refused with their line and column. */
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

static void test_numbers_as_strtod(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 99);
    size_t rows = 20000, cap = rows * 300 + sizeof HEADER, len = 0;
    char *text = malloc(cap), (*num)[40] = malloc(rows * 9 * sizeof *num);
    assert_non_null(text);
    assert_non_null(num);
    len += (size_t)snprintf(text, cap, "%s", HEADER);
    for (size_t i = 0; i < rows; i++) {
        len += (size_t)snprintf(text + len, cap - len, "c%zu", i);
        for (int k = 0; k < 9; k++) {
            number_text(&rng, (int)((i + (size_t)k) % 10), num[i * 9 + (size_t)k], 40);
            len += (size_t)snprintf(text + len, cap - len, ",%s", num[i * 9 + (size_t)k]);
        }
        text[len++] = '\n';
    }
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
            double want = strtod(num[i * 9 + (size_t)k], NULL);
            if (memcmp(&want, &got[k], sizeof want) != 0 && differ++ < 5)
                printf("    \"%s\": %a, strtod %a\n", num[i * 9 + (size_t)k], got[k], want);
        }
    }
    printf("    %zu numbers of 10 kinds: %zu differ from strtod's\n", rows * 9, differ);
    assert_int_equal(differ, 0);
    customers_free(c);
    unlink(path);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_as_strtod),
        cmocka_unit_test(test_not_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
