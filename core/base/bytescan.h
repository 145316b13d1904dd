/* bytescan.h - whether a text holds certain bytes, eight at a time in a
 * 64-bit word (SWAR): the test writers make before copying a field whole.
 * Short fields (ids, names, keys) are most of them; a vectorized byte loop
 * spent more on its set-up than on the bytes.
 *
 * For a word v: y = v ^ (c in every byte) has a zero byte where v has c,
 * and (y - 0x01..01) & ~y & 0x80..80 is nonzero exactly when y has a zero
 * byte; (v - (n in every byte)) & ~v & 0x80..80, n <= 128, is nonzero
 * exactly when some byte of v is below n (a byte of 128 or more has its
 * high bit set, so ~v clears it). Neither is exact byte by byte (a borrow
 * can mark a higher byte), only as a whole, which is all that is asked. */
#ifndef RFM_BYTESCAN_H
#define RFM_BYTESCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BYTESCAN_ONES 0x0101010101010101ull
#define BYTESCAN_HIGHS 0x8080808080808080ull

/* Nonzero when some byte of v equals c. */
static inline uint64_t bytescan_has(uint64_t v, unsigned char c)
{
    uint64_t y = v ^ (BYTESCAN_ONES * c);
    return (y - BYTESCAN_ONES) & ~y & BYTESCAN_HIGHS;
}

/* Nonzero when some byte of v is below n (n <= 128). */
static inline uint64_t bytescan_below(uint64_t v, unsigned char n)
{
    return (v - BYTESCAN_ONES * n) & ~v & BYTESCAN_HIGHS;
}

/* The word at s (any alignment). */
static inline uint64_t bytescan_word(const char *s)
{
    uint64_t v;
    memcpy(&v, s, sizeof v);
    return v;
}

#endif
