/* sortd.h - sorting doubles by their bits.
 *
 * qsort with a comparison function costs ~150 ms a million doubles here
 * (a call per comparison); the drift reference of a million customers
 * sorted three columns at every daemon start. A radix sort on the bits
 * made unsigned-ordered does the same in a few passes over the data.
 */
#ifndef RFM_SORTD_H
#define RFM_SORTD_H

#include <stddef.h>

/* Sorts v[0..n-1] ascending, as qsort with (x > y) - (x < y) does: v must
 * hold no NaN. Equal values are equal whatever their order, but -0 and
 * +0 compare equal and may come in either order. Returns 0 when out of
 * memory (v unchanged), else 1. Thread-safe. */
int sortd(double *v, size_t n);

#endif
