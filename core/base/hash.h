/* hash.h - fast non-cryptographic 64-bit hashing for in-memory tables.
 * Keys come from files we do not control, so the seed mixes in per table;
 * collisions only cost time, never correctness, except where a caller keys
 * a set by the hash alone (txn.c's invoice and line sets, where a false
 * match has probability about n^2 / 2^64). */
#ifndef RFM_HASH_H
#define RFM_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t hash_mix(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    return x;
}

/* The last n < 8 bytes of a key of total bytes ending at s + n, as
 * memcpy into a zeroed word would give them, with fixed-size loads (a
 * memcpy of variable size is a call): bytes before s are the key's own when
 * it is 8 bytes or longer, and overlapping loads agree where they overlap. */
static inline uint64_t hash_tail(const unsigned char *s, size_t n, size_t total)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w;
    if (n == 0)
        return 0;
    if (total >= 8) {
        memcpy(&w, s + n - 8, 8);
        return w >> (64 - 8 * n);
    }
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + n - 4, 4);
        return lo | (uint64_t)hi << (8 * (n - 4));
    }
    return s[0] | (uint64_t)s[n / 2] << (8 * (n / 2)) | (uint64_t)s[n - 1] << (8 * (n - 1));
#else
    (void)total;
    uint64_t w = 0;
    memcpy(&w, s, n);
    return w;
#endif
}

static inline uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    size_t total = n;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ hash_mix(w)) * 0xff51afd7ed558ccdULL;
        s += 8;
        n -= 8;
    }
    uint64_t w = hash_tail(s, n, total);
    h = (h ^ hash_mix(w ^ ((uint64_t)n << 56))) * 0xc4ceb9fe1a85ec53ULL;
    return hash_mix(h);
}

/* For long keys (txn.c hashes whole CSV lines): two lanes taking 8 bytes
 * each per step, each lane xor, multiply, xor-shift (for each word a
 * bijection of the lane, so no input collapses it), then both lanes and the
 * length through hash_mix. About a third of hash_bytes's instructions per
 * byte; its values are its own (in-memory sets only). */
static inline uint64_t hash_wide(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    size_t total = n;
    uint64_t a = seed ^ 0x9e3779b97f4a7c15ULL, b = hash_mix(seed) ^ n;
    for (; n >= 16; s += 16, n -= 16) {
        uint64_t w0, w1;
        memcpy(&w0, s, 8);
        memcpy(&w1, s + 8, 8);
        a = (a ^ w0) * 0xff51afd7ed558ccdULL;
        b = (b ^ w1) * 0xc4ceb9fe1a85ec53ULL;
        a ^= a >> 32;
        b ^= b >> 29;
    }
    if (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        a = (a ^ w) * 0xff51afd7ed558ccdULL;
        a ^= a >> 32;
        s += 8;
        n -= 8;
    }
    b = (b ^ hash_tail(s, n, total) ^ ((uint64_t)n << 56)) * 0xc4ceb9fe1a85ec53ULL;
    b ^= b >> 29;
    return hash_mix(a ^ hash_mix(b + total));
}

#endif
