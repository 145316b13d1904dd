/* test_numfmt.c - shortest round-trip text of doubles.
 *
 * Proves, for a million doubles (random bit patterns over the whole
 * exponent range and decimal-looking values like 2058.17), that the text
 * reads back bit for bit and that no text one significant digit shorter
 * does: the two nearest shorter decimals (the digits of x cut, and cut plus
 * one in the last place) both read back to other doubles, and every other
 * shorter decimal is farther from x. The binary search is also checked
 * against the plain loop over precisions 1..17, and the fast path against
 * the plain one.
 */
#include "testutil.h"

#include <float.h>
#include <string.h>

#include "numfmt.h"
#include "rng.h"

static void expect(double x, const char *text)
{
    char out[NUMFMT_LEN];
    size_t n = numfmt_double(x, out);
    if (strcmp(out, text) != 0)
        fail_msg("%.17g: got \"%s\", want \"%s\"", x, out, text);
    assert_int_equal(n, strlen(text));
}

static void test_known(void **state)
{
    (void)state;
    expect(0.6, "0.6");
    expect(0.1, "0.1");
    expect(2058.17, "2058.17");
    expect(935.67, "935.67");
    expect(2.0036942940000002, "2.003694294");
    expect(1.0 / 3, "0.3333333333333333");
    expect(0, "0");
    expect(-0.0, "-0");
    expect(100, "100");
    expect(-42, "-42");
    expect(123456789012345680000.0, "123456789012345680000");
    expect(1e21, "1e+21");
    expect(1e300, "1e+300");
    expect(0.000001, "0.000001");
    expect(1.5e-7, "1.5e-7");
    expect(DBL_MAX, "1.7976931348623157e+308");
    expect(DBL_MIN, "2.2250738585072014e-308");
    expect(4.9406564584124654e-324, "5e-324");
    expect(NAN, "");
    expect(INFINITY, "");
    expect(-INFINITY, "");
}

/* Significant digits of a decimal text: leading and trailing zeros are
 * placement, not precision. */
static int sig_digits(const char *s)
{
    char d[64];
    int k = 0;
    for (; *s && *s != 'e' && *s != 'E'; s++)
        if (*s >= '0' && *s <= '9' && (k || *s != '0'))
            d[k++] = *s;
    while (k > 0 && d[k - 1] == '0')
        k--;
    return k;
}

/* The plain reference: the first precision that reads back. */
static int naive_digits(double x)
{
    char t[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(t, sizeof t, "%.*g", p, x);
        if (strtod(t, NULL) == x)
            return sig_digits(t);
    }
    return -1;
}

/* Whether a decimal with p significant digits, the digits of |x| cut or cut
 * and raised by one in the last place, reads back as x. glibc prints the
 * exact binary value, so 40 digits hold the cut digits unless digits 17 to
 * 41 are all nines, which no double has. */
static int shorter_reads_back(double x, int p)
{
    char e[64], d[24], t[64];
    snprintf(e, sizeof e, "%.40e", fabs(x));
    int k = 0;
    for (const char *s = e; *s != 'e'; s++)
        if (*s != '.' && k < p)
            d[k++] = *s;
    d[k] = '\0';
    int ex = atoi(strchr(e, 'e') + 1) - (p - 1);
    snprintf(t, sizeof t, "%se%d", d, ex);
    if (strtod(t, NULL) == fabs(x))
        return 1;
    for (int i = p - 1; i >= 0; i--) { /* + 1 in the last place */
        if (d[i] != '9') {
            d[i]++;
            break;
        }
        d[i] = '0';
        if (i == 0) {
            memmove(d + 1, d, (size_t)p + 1);
            d[0] = '1';
        }
    }
    snprintf(t, sizeof t, "%se%d", d, ex);
    return strtod(t, NULL) == fabs(x);
}

static void test_million_round_trip_and_shortest(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 20261202);
    long n = 1000000, shortened = 0, checked_naive = 0;
    int hist[18] = {0};
    for (long i = 0; i < n; i++) {
        double x;
        if (i % 4 != 3) { /* any finite bit pattern */
            do {
                uint64_t b = rfm_rng_u64(&rng);
                memcpy(&x, &b, sizeof x);
            } while (!isfinite(x));
        } else { /* decimal-looking: up to 9 digits, 0 to 6 after the point */
            double m = (double)rfm_rng_below(&rng, 1000000000);
            x = m / pow(10, (double)rfm_rng_below(&rng, 7));
        }
        char out[NUMFMT_LEN];
        size_t len = numfmt_double(x, out);
        assert_true(len > 0 && len < NUMFMT_LEN);
        char *end;
        double back = strtod(out, &end);
        if (*end || memcmp(&back, &x, sizeof x) != 0)
            fail_msg("%.17g printed \"%s\" reads back as %.17g", x, out, back);
        int p = sig_digits(out);
        if (x == 0)
            p = 1;
        assert_true(p >= 1 && p <= 17);
        hist[p]++;
        if (p > 1) {
            if (shorter_reads_back(x, p - 1))
                fail_msg("%.17g printed \"%s\": %d digits also read back", x, out, p - 1);
            shortened++;
        }
        if (i % 8 == 0) {
            int q = naive_digits(x);
            if (q != p)
                fail_msg("%.17g: \"%s\" has %d digits, the plain loop %d", x, out, p, q);
            checked_naive++;
        }
    }
    printf("    %ld doubles round-trip; %ld proven shortest, %ld against the plain loop\n", n,
           shortened, checked_naive);
    printf("    significant digits:");
    for (int p = 1; p <= 17; p++)
        printf(" %d:%d", p, hist[p]);
    printf("\n");
}

/* The fast paths (Schubfach's digits for normal doubles, double-conversion's
 * for subnormal ones) against the definition (printf and strtod), text for
 * text: any bit pattern, every binary exponent (each of Schubfach's table
 * rows) with random significands and the extremes of each, decimal-looking
 * values, integers, every power of two, and the doubles that lie exactly
 * halfway between two shortest candidates, where a library may round ties
 * otherwise than printf (odd multiples of 2^-j: 2^39 + 2^-5 is
 * 549755813888.03125, shortest ...0312 or ...0313 at equal distance). */
static void test_fast_equals_plain(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 7);
    long n = 0, ties = 0;
    char a[NUMFMT_LEN], b[NUMFMT_LEN];
#define SAME(x)                                                                                    \
    do {                                                                                           \
        double x_ = (x);                                                                           \
        numfmt_double(x_, a), numfmt_double_plain(x_, b), n++;                                     \
        if (strcmp(a, b) != 0)                                                                     \
            fail_msg("%a: fast \"%s\", plain \"%s\"", x_, a, b);                                   \
    } while (0)
    for (int e = -1074; e <= 1023; e++) {
        SAME(ldexp(1, e));
        SAME(-ldexp(1, e));
    }
    for (int be = 1; be <= 2046; be++) /* every normal exponent */
        for (int r = 0; r < 8; r++) {
            uint64_t t = r == 0 ? 1 : r == 1 ? 0xfffffffffffffull : rfm_rng_u64(&rng) >> 12;
            uint64_t u = (uint64_t)be << 52 | (t ? t : 1);
            double x;
            memcpy(&x, &u, sizeof x);
            SAME(x);
            SAME(-x);
        }
    SAME(DBL_MAX);
    SAME(nextafter(DBL_MIN, 1));
    SAME(nextafter(DBL_MIN, 0)); /* the largest subnormal */
    SAME(4.9406564584124654e-324);
    for (long i = 0; i < 150000; i++) {
        double x;
        uint64_t u = rfm_rng_u64(&rng);
        memcpy(&x, &u, sizeof x);
        if (isfinite(x))
            SAME(x);
        SAME((double)rfm_rng_below(&rng, 1000000000) / pow(10, (double)rfm_rng_below(&rng, 7)));
        SAME((i % 2 ? -1.0 : 1.0) * (double)(u >> (11 + i % 53))); /* integers, 0 and -0 */
        SAME((double)(u >> (i % 64)));                             /* integers beyond 2^53 */
        /* The short-decimal path: cents and percentiles (at most four
         * decimals, 15 digits), their neighbours one ulp away (which need
         * more digits), and the edges of the path (x near 1e11 and 1e-4). */
        double c4 = (double)rfm_rng_below(&rng, 1000000000000000ull) / 1e4;
        double c2 = (double)rfm_rng_below(&rng, 10000000) / 100;
        double pct = round(100 * rfm_rng_uniform(&rng) * 100) / 100;
        SAME(c4);
        SAME(-c4);
        SAME(c2);
        SAME(pct);
        SAME(c2 / 1e7);
        SAME(c4 * 10);
        SAME(nextafter(c4, 0));
        SAME(nextafter(c2, 1e300));
        SAME(nextafter(pct, 1e300));
        SAME(1e11 - (double)rfm_rng_below(&rng, 1000000) / 1e4);
        SAME((double)rfm_rng_below(&rng, 20) * 1e-5);
        /* The exact-integer path (1e-3 <= |x| < 2^52, no integer):
         * probabilities, any significand at a log-uniform magnitude, and
         * the neighbours of the powers of ten, where the digit count
         * changes. */
        SAME(rfm_rng_uniform(&rng));
        SAME(-ldexp((double)((u >> 11) | 1), -(int)rfm_rng_below(&rng, 63)));
        double p10 = pow(10, (double)rfm_rng_below(&rng, 19) - 3);
        SAME(nextafter(p10, 0));
        SAME(nextafter(p10, 1e300));
        SAME(nextafter(nextafter(p10, 1e300), 1e300));
        /* An odd 53-bit significand times 2^-j, j = 1..60: the ties live here. */
        int j = 1 + (int)rfm_rng_below(&rng, 60);
        double t = ldexp((double)((u >> 11) | 1), -j);
        SAME(t);
        char c[80];
        snprintf(c, sizeof c, "%.60e", t); /* exact: t has at most 60 digits here */
        int d = sig_digits(c);
        ties += d == sig_digits(b) + 1 && c[d] == '5'; /* halfway between two of b's length */
    }
    expect(549755813888.03125, "549755813888.0312");
    expect(0.001, "0.001");
    expect(nextafter(0.001, 1), "0.0010000000000000002");
    expect(nextafter(0x1p52, 0), "4503599627370495.5");
    expect(0.1 + 0.2, "0.30000000000000004");
    expect(8 + 0x1p-16, "8.000015258789062");
    printf("    %ld doubles: fast and plain text equal (%ld exact halfway cases)\n", n, ties);
#undef SAME
}

/* numfmt_int64 against printf's %lld: the edges and 200,000 values of
 * every magnitude. */
static void test_int64_as_printf(void **state)
{
    (void)state;
    rfm_rng r;
    rfm_rng_seed(&r, 64);
    const int64_t edge[] = {0, 1, -1, 9, 10, -10, 99, 100, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof edge / sizeof *edge + 200000; i++) {
        int64_t v = i < sizeof edge / sizeof *edge
                        ? edge[i]
                        : (int64_t)(rfm_rng_u64(&r) >> rfm_rng_below(&r, 64));
        if (i % 2 && v != INT64_MIN)
            v = -v;
        char want[32], got[NUMFMT_INT_LEN + 1];
        snprintf(want, sizeof want, "%lld", (long long)v);
        size_t n = numfmt_int64(v, got);
        got[n] = '\0';
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),
        cmocka_unit_test(test_million_round_trip_and_shortest),
        cmocka_unit_test(test_fast_equals_plain),
        cmocka_unit_test(test_int64_as_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
