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
 * division; other normal doubles (probabilities, amounts, the bulk of a
 * scoring export) by Schubfach (schubfach below: three 128-bit products
 * with a table of powers of ten, numfmt_pow10.h; ~35 ns a 17-digit number
 * here, against ~45 ns for the definition done exactly in 128-bit integers
 * that it replaces); subnormal ones from double-conversion's shortest
 * digits (numfmt_dc.cpp); and the plain path for the kinds of x where a
 * shortest digit string may differ from the definition's (see there):
 * powers of two, and exact halfway cases of double-conversion's.
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

#include "numfmt_pow10.h"

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

/* r_o(g cp 2^-127): g (126 bits, g1 2^63 + g0) times cp, the bits above
 * 2^127 rounded to odd (the low bit set when any bit below was): exact when
 * the product is, and never equal to a half way point when it is not. */
static inline uint64_t rop(uint64_t g1, uint64_t g0, uint64_t cp)
{
    const uint64_t x1 = (uint64_t)(((unsigned __int128)g0 * cp) >> 64);
    const unsigned __int128 y = (unsigned __int128)g1 * cp;
    const uint64_t y0 = (uint64_t)y, y1 = (uint64_t)(y >> 64);
    const uint64_t z = (y0 >> 1) + x1;
    const uint64_t vbp = y1 + (z >> 63);
    return vbp | (((z & 0x7fffffffffffffffull) + 0x7fffffffffffffffull) >> 63);
}

/* The shortest digits of a normal double x = c 2^q (c the 53-bit
 * significand with its hidden bit, not a power of two: its neighbours are
 * 2^q away on both sides) by Schubfach (R. Giulietti, "The Schubfach way to
 * render doubles", 2020; the steps of the reference, Java's
 * DoubleToDecimal.toDecimal, for regular spacing): the decimals that read
 * back are those within 2^(q-1) of x (the ends too when c is even), and k =
 * floor(log10 2^q) makes their grid 10^k, so that at most one multiple of
 * 10^(k+1) and at most two of 10^k lie there. vb, vbl and vbr are 4 x, its
 * lower end and its upper end over 10^k, rounded to odd. Of the decimals
 * there with the fewest digits the one nearest x, ties to the even digit:
 * the interval is symmetric, so that is x correctly rounded to that many
 * digits, half to even, what printf's search finds. Sets *f (< 10^17 + 1)
 * and *e with the text f 10^e. */
static inline void schubfach(uint64_t c, int q, uint64_t *f, int *e)
{
    const uint64_t out = c & 1, cb = c << 2, cbr = cb + 2, cbl = cb - 2;
    /* floor(q log10 2) and floor(-k log2 10), exact over the doubles' range */
    const int k = (int)(((int64_t)q * 661971961083ll) >> 41);
    const int h = q + (int)(((int64_t)-k * 913124641741ll) >> 38) + 2; /* 1 to 4 */
    const uint64_t g1 = NUMFMT_G[k - NUMFMT_K_MIN][0], g0 = NUMFMT_G[k - NUMFMT_K_MIN][1];
    const uint64_t vb = rop(g1, g0, cb << h), vbl = rop(g1, g0, cbl << h),
                   vbr = rop(g1, g0, cbr << h);
    const uint64_t s = vb >> 2;
    if (s >= 100) {
        /* floor(s / 10) for s < 2^64 / 10 */
        const uint64_t sp10 =
            10 * (uint64_t)(((unsigned __int128)s * (115292150460684698ull << 4)) >> 64);
        const uint64_t tp10 = sp10 + 10;
        const int upin = vbl + out <= sp10 << 2, wpin = (tp10 << 2) + out <= vbr;
        if (upin != wpin) {
            *f = upin ? sp10 : tp10, *e = k;
            return;
        }
    }
    const uint64_t t = s + 1;
    const int uin = vbl + out <= s << 2, win = (t << 2) + out <= vbr;
    if (uin != win) {
        *f = uin ? s : t, *e = k;
        return;
    }
    const int64_t cmp = (int64_t)(vb - ((s + t) << 1));
    *f = cmp < 0 || (cmp == 0 && !(s & 1)) ? s : t, *e = k;
}

/* The text of f 10^e (f >= 1, at most 10^17): its digits without the
 * trailing zeros, laid out. */
static size_t digits_out(int neg, uint64_t f, int e, char out[NUMFMT_LEN])
{
    static const char PAIRS[201] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    if (f >= 100000000000000000ull) /* 10^17 (t past 17 nines): the digit 1 */
        f /= 100000000000000000ull, e += 17;
    /* 17 places, leading zeros then skipped: the top digit, then two groups
     * of eight from 32-bit halves, two digits at a time. */
    char buf[17];
    const uint64_t r16 = f % 10000000000000000ull;
    buf[0] = (char)('0' + f / 10000000000000000ull);
    const uint32_t half[2] = {(uint32_t)(r16 / 100000000), (uint32_t)(r16 % 100000000)};
    for (int hh = 0; hh < 2; hh++) {
        const uint32_t a = half[hh] / 10000, b = half[hh] % 10000;
        char *o = buf + 1 + 8 * hh;
        memcpy(o, PAIRS + 2 * (a / 100), 2);
        memcpy(o + 2, PAIRS + 2 * (a % 100), 2);
        memcpy(o + 4, PAIRS + 2 * (b / 100), 2);
        memcpy(o + 6, PAIRS + 2 * (b % 100), 2);
    }
    const char *d = buf;
    while (*d == '0' && d < buf + sizeof buf - 1)
        d++;
    int nd = (int)(buf + sizeof buf - d), z = 0;
    while (z < nd - 1 && d[nd - 1 - z] == '0')
        z++;
    /* f = digits 10^z, so the point comes nd + e places after the first */
    return layout(neg, d, nd - z, nd + e, out);
}

/* numfmt_dc.cpp: the shortest digits by double-conversion. */
void numfmt_dc_shortest(double v, char *buf, int buflen, int *len, int *point);

size_t numfmt_double(double x, char out[NUMFMT_LEN])
{
    if (!isfinite(x))
        return numfmt_double_plain(x, out);
    /* An integer below 2^53 (counts, days, round amounts): its digits.
     * Doubles there are at most 1 apart, and a shorter decimal differs
     * from x by at least 1, so no shorter text reads back. Its own loop,
     * not digits_out's seventeen places: a count's one or two digits cost
     * half as much (12 against 19-26 ns). */
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
     * Otherwise the text needs more digits: Schubfach below. */
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
    const int be = (int)((bits >> 52) & 0x7ff);
    if (be != 0) { /* normal (and not a power of two): Schubfach */
        uint64_t f;
        int e;
        schubfach((bits & 0xfffffffffffffull) | (1ull << 52), be - 1075, &f, &e);
        return digits_out(x < 0, f, e, out);
    }
    /* A subnormal x: double-conversion's digits. */
    char dig[24];
    int k, n;
    numfmt_dc_shortest(x, dig, (int)sizeof dig, &k, &n);
    /* The interval of decimals reading back to x is symmetric, so
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
