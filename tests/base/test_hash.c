/* test_hash.c - hash_bytes reads every length and alignment as its plain
 * definition does (whole words, then the tail memcpy'd into a zeroed
 * word), and no byte outside the key. */
#include "testutil.h"

#include "hash.h"

/* hash_bytes as first written: the values every table was built with. */
static uint64_t plain_hash(const unsigned char *s, size_t n, uint64_t seed)
{
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ hash_mix(w)) * 0xff51afd7ed558ccdULL;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ hash_mix(w ^ ((uint64_t)n << 56))) * 0xc4ceb9fe1a85ec53ULL;
    return hash_mix(h);
}

static void test_every_length_and_offset(void **state)
{
    (void)state;
    uint64_t x = 0x243f6a8885a308d3ULL;
    size_t checked = 0;
    for (size_t n = 0; n <= 40; n++) {
        for (size_t off = 0; off < 8; off++) {
            /* exactly the key's bytes on the heap: ASan (make san) sees any
             * read before or after them */
            unsigned char *buf = malloc(off + n + 1), *key = buf + off;
            assert_non_null(buf);
            for (int round = 0; round < 50; round++) {
                for (size_t i = 0; i < n; i++) {
                    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                    key[i] = (unsigned char)x;
                }
                unsigned char *exact = malloc(n ? n : 1);
                assert_non_null(exact);
                memcpy(exact, key, n);
                assert_int_equal(hash_bytes(key, n, x), plain_hash(key, n, x));
                assert_int_equal(hash_bytes(exact, n, x), plain_hash(exact, n, x));
                free(exact);
                checked++;
            }
            free(buf);
        }
    }
    /* one byte of difference anywhere changes the hash */
    unsigned char a[24] = "0123456789abcdefghijklm", b[24];
    for (size_t n = 1; n <= sizeof a; n++)
        for (size_t i = 0; i < n; i++) {
            memcpy(b, a, sizeof a);
            b[i] ^= 1;
            assert_true(hash_bytes(a, n, 7) != hash_bytes(b, n, 7));
        }
    printf("    %zu keys hashed as the plain definition does\n", checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_length_and_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
