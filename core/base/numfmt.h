/* numfmt.h - the shortest decimal text of a double that reads back to it.
 *
 * What JavaScript's Number.prototype.toString and Python's repr print:
 * 0.6 is "0.6", not %.17g's "0.59999999999999998", yet strtod() of the text
 * gives the same double bit for bit. Every number the service writes (API
 * replies, model files, CSVs) goes through numfmt_double, so a file read
 * back is the model that was written and a reply shows the value, not its
 * binary noise. Digits by Schubfach (R. Giulietti's algorithm; Google's
 * double-conversion for subnormal numbers), checked against the C
 * library's correctly rounded printf and strtod, which define the result
 * (numfmt_double_plain).
 */
#ifndef RFM_NUMFMT_H
#define RFM_NUMFMT_H

#include <stddef.h>
#include <stdint.h>

/* Room for any result: "-2.2250738585072014e-308" and a NUL. */
#define NUMFMT_LEN 32

/* Writes into out the text of x with the fewest significant digits (1 to
 * 17) that strtod reads back as exactly x, laid out as JavaScript does
 * ("0.1", "2058.17", "100", "1e+21", "1.5e-7"; but -0 stays "-0"), and
 * returns its length. A non-finite x has no JSON or CSV text: out gets ""
 * and 0 is returned. Thread-safe; needs the "C"
 * numeric locale (the programs never call setlocale). */
size_t numfmt_double(double x, char out[NUMFMT_LEN]);
/* The same text by printf and strtod alone (the definition; ~20x slower). */
size_t numfmt_double_plain(double x, char out[NUMFMT_LEN]);

/* Room for any int64: "-9223372036854775808". */
#define NUMFMT_INT_LEN 20
/* The decimal text of v (what printf's %lld writes, without a NUL) at
 * out; returns its length. Digits by hand: printf was a tenth of a small
 * reply's cost (replies, exports, the Redis wire). */
size_t numfmt_int64(int64_t v, char out[NUMFMT_INT_LEN]);

#endif
