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

static inline uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ hash_mix(w)) * 0xff51afd7ed558ccdULL;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ hash_mix(w ^ ((uint64_t)n << 56))) * 0xc4ceb9fe1a85ec53ULL;
    return hash_mix(h);
}

#endif
