/* numfmt.c - shortest round-trip decimal text of a double.
 *
 * Rounding x to p significant digits and reading the text back gives x for
 * every p from some smallest p0 up to 17 (17 always does, and the p + 1
 * digit grid contains the p digit one, so its nearest point is no farther).
 * The predicate is monotone in p, so a binary search finds p0 with at most
 * five printf/strtod pairs. tests/base/test_numfmt.c checks it against the plain
 * loop over p = 1..17 and proves no text one digit shorter reads back.
 */
#include "numfmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reads_back(double x, int p, char out[NUMFMT_LEN])
{
    snprintf(out, NUMFMT_LEN, "%.*e", p - 1, x);
    return strtod(out, NULL) == x;
}

size_t numfmt_double(double x, char out[NUMFMT_LEN])
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
    /* "-d.ddde+XX": the digits and the exponent, laid out as JavaScript's
     * Number.prototype.toString does (but -0 keeps its sign). */
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
    dig[k] = '\0';
    int n = atoi(p + 1) + 1; /* the point goes after n digits */
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
        len += (size_t)snprintf(out + len, NUMFMT_LEN - len, "e%+d", n - 1);
    }
    out[len] = '\0';
    return len;
}
