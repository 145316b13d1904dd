/* numfmt_dc.cpp - the shortest digits of a double by Google's
 * double-conversion (Debian libdouble-conversion-dev; Grisu3 with an exact
 * bignum fallback), for numfmt.c's fast path. C++ because the library is;
 * no exception is thrown by the call used.
 *
 * Contract (numfmt.c holds the prototype): the digits of |v| (v finite and
 * not 0) without leading or trailing zeros into buf (at least 18 bytes, NUL
 * terminated), their count into *len and the decimal point's place into
 * *point (v = 0.digits x 10^point). The digits are the fewest that read back
 * to v; among those, the ones nearest v, a tie rounded away from 0 (numfmt.c
 * handles the cases where that differs from printf's rounding).
 */
#include <double-conversion/double-to-string.h>

extern "C" void numfmt_dc_shortest(double v, char *buf, int buflen, int *len, int *point);

extern "C" void numfmt_dc_shortest(double v, char *buf, int buflen, int *len, int *point)
{
    bool sign;
    double_conversion::DoubleToStringConverter::DoubleToAscii(
        v, double_conversion::DoubleToStringConverter::SHORTEST, 0, buf, buflen, &sign, len, point);
}
