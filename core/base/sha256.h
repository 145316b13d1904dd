/* sha256.h - SHA-256 (FIPS 180-4) for manifest checksums of data and models,
 * and HMAC-SHA256 (RFC 2104) for pseudonymous customer ids. */
#ifndef RFM_SHA256_H
#define RFM_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct {
    uint32_t h[8];
    uint64_t len; /* bytes hashed so far */
    uint8_t buf[64];
    size_t nbuf;
    int shani; /* use the x86 SHA extensions (checked once per context) */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
/* As sha256_init, but never the SHA-extension path: the plain reference
 * the tests compare the fast path with. */
void sha256_init_portable(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t n);
void sha256_final(sha256_ctx *c, uint8_t digest[32]);
/* Lower-case hex of a digest into hex (65 bytes with the NUL). */
void sha256_hex(const uint8_t digest[32], char hex[65]);
/* The digest of n bytes at once, and its lower-case hex (hex may be NULL). */
void sha256_of(const void *data, size_t n, uint8_t digest[32], char hex[65]);
/* HMAC-SHA256 (RFC 2104) of n bytes of msg under a key of keylen bytes
 * (any length: a key over 64 bytes is hashed first). */
void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t n, uint8_t mac[32]);
/* Hash a whole file into hex. */
rfm_status sha256_file(const char *path, char hex[65], char *err, size_t errlen);

#endif
