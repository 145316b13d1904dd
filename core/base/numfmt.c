/* numfmt.c - shortest round-trip decimal text of a double.
 *
 * The definition (numfmt_double_plain): rounding x to p significant digits
 * and reading the text back gives x for every p from some smallest p0 up
 * to 17 (17 always does, and the p + 1 digit grid contains the p digit
 * one, so its nearest point is no farther). The predicate is monotone in
 * p, so a binary search finds p0 with at most five printf/strtod pairs:
 * about 2 us a number, too slow for a bulk export's millions of rows
 * (rfm-score writes 12 a row).
 *
 * numfmt_double gives the same text faster: integers and numbers of at
 * most four decimals (15 digits in all) by one multiplication and one
 * division; other numbers from 1e-3 to 2^52 (probabilities, amounts, the
 * bulk of a scoring export) by the definition done exactly in 128-bit
 * integers (shortest_exact: two or three tests of a precision, ~60 %
 * of double-conversion's time); the rest from double-conversion's shortest
 * digits (numfmt_dc.cpp, ~0.1 us), taking the plain path for the two kinds
 * of x where the two may differ (see there): powers of two and exact
 * halfway cases.
 * tests/base/test_numfmt.c checks the plain path against the loop over
 * p = 1..17 and proves no text one digit shorter reads back, and the fast
 * paths against the plain one, with those cases drawn on purpose.
 */
#include "numfmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static int reads_back(double x, int p, char out[NUMFMT_LEN])
{
    snprintf(out, NUMFMT_LEN, "%.*e", p - 1, x);
    return strtod(out, NULL) == x;
}

/* Lays out the k significant digits dig (the point after n of them, sign
 * neg) as JavaScript's Number.prototype.toString does (but -0 keeps its
 * sign); returns the length. */
static size_t layout(int neg, const char *dig, int k, int n, char out[NUMFMT_LEN])
{
    size_t len = 0;
    if (neg)
        out[len++] = '-';
    if (k <= n && n <= 21) { /* an integer: the digits, n - k zeros */
        memcpy(out + len, dig, (size_t)k), len += (size_t)k;
        for (int i = k; i < n; i++)
            out[len++] = '0';
    } else if (0 < n && n <= 21) { /* 2058.17 */
        memcpy(out + len, dig, (size_t)n), len += (size_t)n;
        out[len++] = '.';
        memcpy(out + len, dig + n, (size_t)(k - n)), len += (size_t)(k - n);
    } else if (-6 < n && n <= 0) { /* 0.00012 */
        out[len++] = '0', out[len++] = '.';
        for (int i = n; i < 0; i++)
            out[len++] = '0';
        memcpy(out + len, dig, (size_t)k), len += (size_t)k;
    } else { /* 1.5e-7, 1e+21 */
        out[len++] = dig[0];
        if (k > 1) {
            out[len++] = '.';
            memcpy(out + len, dig + 1, (size_t)(k - 1)), len += (size_t)(k - 1);
        }
        /* "e%+d" of n - 1 (-324 to 308), without printf */
        int e = n - 1;
        unsigned u = (unsigned)(e < 0 ? -e : e);
        out[len++] = 'e';
        out[len++] = e < 0 ? '-' : '+';
        if (u >= 100)
            out[len++] = (char)('0' + u / 100);
        if (u >= 10)
            out[len++] = (char)('0' + u / 10 % 10);
        out[len++] = (char)('0' + u % 10);
    }
    out[len] = '\0';
    return len;
}

size_t numfmt_double_plain(double x, char out[NUMFMT_LEN])
{
    if (!isfinite(x)) {
        out[0] = '\0';
        return 0;
    }
    int lo = 1, hi = 17; /* hi always reads back */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        char t[NUMFMT_LEN];
        if (reads_back(x, mid, t))
            hi = mid;
        else
            lo = mid + 1;
    }
    /* "-d.ddde+XX": the digits and the exponent. */
    char e[NUMFMT_LEN], dig[20];
    snprintf(e, sizeof e, "%.*e", hi - 1, x);
    const char *p = e;
    int neg = *p == '-', k = 0;
    p += neg;
    for (; *p != 'e'; p++)
        if (*p != '.')
            dig[k++] = *p;
    while (k > 1 && dig[k - 1] == '0') /* 17 digits may end in zeros */
        k--;
    return layout(neg, dig, k, atoi(p + 1) + 1, out);
}

/* 10^p for p = 0..21, as 128-bit integers. */
static const unsigned __int128 POW10[22] = {
    1ull,
    10ull,
    100ull,
    1000ull,
    10000ull,
    100000ull,
    1000000ull,
    10000000ull,
    100000000ull,
    1000000000ull,
    10000000000ull,
    100000000000ull,
    1000000000000ull,
    10000000000000ull,
    100000000000000ull,
    1000000000000000ull,
    10000000000000000ull,
    100000000000000000ull,
    1000000000000000000ull,
    10000000000000000000ull,
    (unsigned __int128)10000000000000000000ull * 10,
    (unsigned __int128)10000000000000000000ull * 100,
};

/* x = m 2^-q (m the 53-bit significand, not a power of two, 1 <= q <= 62)
 * rounded to p decimals, c = x 10^p rounded half to even, and whether c
 * 10^-p reads back to x: x's neighbours are 2^-q away on both sides, so
 * the decimals that read back are those within 2^-q / 2 of x, the ends
 * included when m is even (strtod rounds a tie to the even significand).
 * Over the common denominator 2^s, s = q + 1 (2 to 63): v = x 10^p 2^s =
 * 2 m 10^p (< 2^124, one 64-bit product for p <= 19) and the half gap is
 * 10^p. c = floor(v / 2^s), rounded up or not by the remainder r < 2^s,
 * fits 64 bits (x 10^p <= 10^17 for the callers' p), and c 2^s lies r or
 * 2^s - r from v: the test is all in 64 bits. Returns 1 or 0, or -1 where
 * c would not fit (not for the callers' p). */
static inline __attribute__((always_inline)) int reads_back_at(uint64_t m, int q, int p,
                                                               uint64_t *c)
{
    /* 10^p below 2^64 for p <= 19: its low half */
    const unsigned __int128 v = p <= 19 ? (unsigned __int128)(2 * m) * (uint64_t)POW10[p]
                                        : (unsigned __int128)(2 * m) * POW10[p];
    const int s = q + 1;
    const uint64_t lo = (uint64_t)v, hi = (uint64_t)(v >> 64);
    if (hi >> s)
        return -1;
    uint64_t f = (lo >> s) | (hi << (64 - s)), r = lo & ((1ull << s) - 1), half = 1ull << (s - 1);
    int up = r > half || (r == half && (f & 1)); /* round half to even, as printf */
    if (up && ++f == 0)
        return -1;
    *c = f;
    const uint64_t d = up ? (1ull << s) - r : r;
    const uint64_t gap = (uint64_t)POW10[p];
    return p > 19 || d < gap || (d == gap && !(m & 1));
}

/* The shortest text of x in [1e-3, 2^52), not an integer nor a power of
 * two, by exact integer arithmetic (the definition's printf and strtod
 * without either): the fewest decimals p whose rounding reads back. The
 * predicate is monotone in p (numfmt_double_plain), p = 0 never reads
 * back (x is no integer, and its neighbours are nearer than any integer),
 * and 17 significant digits always do. Most doubles of a computation need
 * 16 or 17: those are tried first, then a binary search below. The digits
 * found have no trailing zero (else one decimal fewer would read back).
 * Returns 0 where the arithmetic would not hold (never, by the bounds). */
static size_t shortest_exact(double x, uint64_t bits, char out[NUMFMT_LEN])
{
    int e = (int)((bits >> 52) & 0x7ff) - 1075; /* |x| = m 2^e */
    uint64_t m = (bits & 0xfffffffffffffull) | (1ull << 52);
    int q = -e;
    if (q < 1 || q > 62)
        return 0;
    /* e10 = floor(log10 |x|): x lies in [2^(e+52), 2^(e+53)), which spans
     * less than one decade, so it is floor((e + 52) log10 2) or one more;
     * the exact comparison with 10^(e10 + 1) decides. The first in
     * integers: 78913 / 2^18 is log10 2 less 7.9e-7, which gives the floor for
     * every |e + 52| <= 1650 (the shift of a negative product floors, as GCC
     * and Clang define it); here e + 52 is -10 to 51, every one of them
     * among test_fast_equals_plain's values. */
    int e10 = ((e + 52) * 78913) >> 18;
    int k = e10 + 1;
    int above = k >= 0 ? (unsigned __int128)m >= POW10[k] << q /* 10^k 2^62 < 2^115 */
                       : (unsigned __int128)m * POW10[-k] >= (unsigned __int128)1 << q;
    e10 += above;
    int p17 = 16 - e10; /* decimals of 17 significant digits */
    if (p17 < 2 || p17 > 21)
        return 0;
    uint64_t c, t;
    int hi, lo = 0, rb = reads_back_at(m, q, p17 - 1, &t);
    if (rb < 0)
        return 0;
    if (!rb) {
        hi = p17;
        if (reads_back_at(m, q, hi, &c) < 0)
            return 0;
    } else {
        hi = p17 - 1, c = t;
        while (hi - lo > 1) {
            /* the next shorter first (16 -> 15 digits), then halves */
            int mid = hi == p17 - 1 ? hi - 1 : lo + (hi - lo) / 2;
            if ((rb = reads_back_at(m, q, mid, &t)) < 0)
                return 0;
            if (rb)
                hi = mid, c = t;
            else
                lo = mid;
        }
    }
    static const char PAIRS[201] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    /* 17 places, leading zeros then skipped: the top digit, then two groups
     * of eight from 32-bit halves, two digits at a time. c < 10^17: at p17
     * decimals a c of 10^17 would read back with one decimal fewer too, and
     * any shorter p gives c <= 10^16; else the caller's general path. */
    if (c >= 100000000000000000ull)
        return 0;
    char buf[17];
    const uint64_t r16 = c % 10000000000000000ull;
    buf[0] = (char)('0' + c / 10000000000000000ull);
    const uint32_t half[2] = {(uint32_t)(r16 / 100000000), (uint32_t)(r16 % 100000000)};
    for (int h = 0; h < 2; h++) {
        const uint32_t a = half[h] / 10000, b = half[h] % 10000;
        char *o = buf + 1 + 8 * h;
        memcpy(o, PAIRS + 2 * (a / 100), 2);
        memcpy(o + 2, PAIRS + 2 * (a % 100), 2);
        memcpy(o + 4, PAIRS + 2 * (b / 100), 2);
        memcpy(o + 6, PAIRS + 2 * (b % 100), 2);
    }
    const char *d = buf;
    while (*d == '0' && d < buf + sizeof buf - 1)
        d++;
    int nd = (int)(buf + sizeof buf - d);
    return layout(x < 0, d, nd, nd - hi, out);
}

/* numfmt_dc.cpp: the shortest digits by double-conversion. */
void numfmt_dc_shortest(double v, char *buf, int buflen, int *len, int *point);

size_t numfmt_double(double x, char out[NUMFMT_LEN])
{
    if (!isfinite(x))
        return numfmt_double_plain(x, out);
    /* An integer below 2^53 (counts, days, round amounts): its digits.
     * Doubles there are at most 1 apart, and a shorter decimal differs
     * from x by at least 1, so no shorter text reads back. */
    if (fabs(x) < 0x1p53 && x == (double)(int64_t)x) { /* (the cast truncates: trunc inline) */
        char dig[24];
        uint64_t v = (uint64_t)fabs(x);
        int k = 0, n;
        do
            dig[k++] = (char)('0' + v % 10);
        while (v /= 10);
        n = k;
        for (int i = 0; i < k / 2; i++) {
            char t = dig[i];
            dig[i] = dig[k - 1 - i], dig[k - 1 - i] = t;
        }
        while (k > 1 && dig[k - 1] == '0')
            k--;
        return layout(signbit(x) != 0, dig, k, n, out);
    }
    /* Up to four decimals and 15 significant digits (amounts in cents,
     * percentiles: a bulk export's short numbers): y = x 10^4 rounded to an
     * integer. Two decimals of at most 15 digits (DBL_DIG) never read back
     * as the same double, so if any text of x that short reads back, it is
     * the only one of its length, its digits are the ones rounding gives
     * (x 10^4 is within 0.14 of it), and y / 10^4 - both exact, the quotient
     * correctly rounded as strtod rounds - reads back to x: then y without
     * its trailing zeros is the shortest text, what the definition finds.
     * Otherwise the text needs more digits: double-conversion below. */
    double ax = fabs(x), scaled = ax * 1e4;
    /* scaled < 1e15 < 2^52 below: adding and taking away 2^52 rounds it to
     * an integer as nearbyint does (to nearest, ties to even), inline (IEEE
     * double arithmetic: no -ffast-math, which would fold it away). */
    double y = (scaled + 0x1p52) - 0x1p52;
    if (ax < 1e11 && fabs(scaled - y) < 0.15) { /* (the division only for those) */
        if (y / 1e4 == ax) {
            uint64_t v = (uint64_t)y;
            int dec = 4, k = 0;
            while (v % 10 == 0) /* x is no integer: dec stays >= 1 */
                v /= 10, dec--;
            char dig[24];
            for (uint64_t t = v; t; t /= 10)
                k++;
            for (int i = k - 1; i >= 0; i--, v /= 10)
                dig[i] = (char)('0' + v % 10);
            return layout(x < 0, dig, k, k - dec, out);
        }
    }
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    /* A power of two: its lower neighbour is nearer than its upper one, and
     * a shortest decimal may read back without the nearest one of its
     * length doing so. printf's search is the definition: take it. */
    if ((bits & 0xfffffffffffffull) == 0)
        return numfmt_double_plain(x, out);
    if (ax >= 1e-3 && ax < 0x1p52) { /* not an integer (taken above): q >= 1 */
        size_t len = shortest_exact(x, bits & ~(1ull << 63), out);
        if (len)
            return len;
    }
    char dig[24];
    int k, n;
    numfmt_dc_shortest(x, dig, (int)sizeof dig, &k, &n);
    /* Otherwise the interval of decimals reading back to x is symmetric, so
     * the fewest digits that read back are the fewest whose correctly
     * rounded value reads back (printf's answer), and the digits are that
     * value - unless x lies exactly halfway between two such decimals,
     * where printf rounds to even and double-conversion documents away
     * from 0 (version 3.2.1 rounds them to even too; not relied on). Such
     * an x is (2 D + 1) 5 10^-j, j = k - n + 1: never an integer (j <= 0
     * would need a spacing of doubles over 10^(1-j) around an x that 2^-j
     * divides no better), and a dyadic x of that form has its lowest set bit
     * at 2^-j. Any other x has no tie. */
    int j = k - n + 1;
    if (j >= 1) {
        int e = (int)((bits >> 52) & 0x7ff);
        int lsb = (e ? e - 1075 : -1074) + __builtin_ctzll(bits & 0xfffffffffffffull);
        if (lsb == -j)
            return numfmt_double_plain(x, out);
    }
    return layout(x < 0, dig, k, n, out);
}

size_t numfmt_int64(int64_t v, char out[NUMFMT_INT_LEN])
{
    char dig[NUMFMT_INT_LEN];
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    size_t k = 0, len = 0;
    do
        dig[k++] = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        out[len++] = '-';
    while (k)
        out[len++] = dig[--k];
    return len;
}
