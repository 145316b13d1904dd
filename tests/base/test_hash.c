/* test_hash.c - hash_bytes and hash_wide read every length and alignment
 * as their plain definitions do (whole words, then the tail memcpy'd into
 * a zeroed word), and no byte outside the key; hash_wide tells apart
 * lines that differ in a byte or a field (no collision among 400,000). */
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

/* hash_wide as defined: 16-byte steps, an 8-byte one, the tail zeroed. */
static uint64_t plain_wide(const unsigned char *s, size_t n, uint64_t seed)
{
    size_t total = n;
    uint64_t a = seed ^ 0x9e3779b97f4a7c15ULL, b = hash_mix(seed) ^ n;
    for (; n >= 16; s += 16, n -= 16) {
        uint64_t w0, w1;
        memcpy(&w0, s, 8);
        memcpy(&w1, s + 8, 8);
        a = (a ^ w0) * 0xff51afd7ed558ccdULL;
        a ^= a >> 32;
        b = (b ^ w1) * 0xc4ceb9fe1a85ec53ULL;
        b ^= b >> 29;
    }
    if (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        a = (a ^ w) * 0xff51afd7ed558ccdULL;
        a ^= a >> 32;
        s += 8, n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    b = (b ^ w ^ ((uint64_t)n << 56)) * 0xc4ceb9fe1a85ec53ULL;
    b ^= b >> 29;
    return hash_mix(a ^ hash_mix(b + total));
}

static void test_every_length_and_offset(void **state)
{
    (void)state;
    uint64_t x = 0x243f6a8885a308d3ULL;
    size_t checked = 0;
    for (size_t n = 0; n <= 80; n++) {
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
                assert_int_equal(hash_wide(key, n, x), plain_wide(key, n, x));
                assert_int_equal(hash_wide(exact, n, x), plain_wide(exact, n, x));
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
            assert_true(hash_wide(a, n, 7) != hash_wide(b, n, 7));
        }
    printf("    %zu keys hashed as the plain definition does\n", checked);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Export lines as txn.c hashes them (fields back to back, NUL-separated)
 * that differ only in a counter field or in one byte: the set keyed by
 * hash_wide alone must tell every one apart, and its values spread over
 * the low bits the set's slots come from. */
static void test_wide_tells_lines_apart(void **state)
{
    (void)state;
    enum { N = 400000 };
    uint64_t *h = malloc(N * sizeof *h);
    assert_non_null(h);
    char line[128];
    size_t slots[64] = {0}, len2 = 0;
    for (size_t i = 0; i < N; i++) {
        int len;
        if (i % 2)
            len = snprintf(line, sizeof line,
                           "536365%c85123A%cWHITE HANGING HEART T-LIGHT HOLDER%c%zu%c"
                           "2010-12-01 08:26:00%c2.55%c17850.0%cUnited Kingdom",
                           0, 0, 0, i, 0, 0, 0, 0);
        else { /* one byte of a fixed line changed to another value */
            len = snprintf(line, sizeof line,
                           "581587%c22138%cBAKING SET 9 PIECE RETROSPOT %c3%c"
                           "2011-12-09 12:50:00%c4.95%c12680.0%cFrance",
                           0, 0, 0, 0, 0, 0, 0);
            line[(i / 2) % (size_t)len] ^= (char)(1 + (i / 2 / (size_t)len) % 255);
            len2 = (size_t)len;
        }
        h[i] = hash_wide(line, (size_t)len, 0x2545f4914f6cdd1dULL);
        slots[h[i] & 63]++;
    }
    qsort(h, N, sizeof *h, cmp_u64);
    size_t same = 0;
    for (size_t i = 1; i < N; i++)
        same += h[i] == h[i - 1];
    /* the byte-changed lines repeat once the 255 values per byte run out */
    size_t distinct_lines = N / 2 + (N / 2 < 255 * len2 ? N / 2 : 255 * len2);
    printf("    %zu equal hashes among %d lines (%zu distinct)\n", same, N, distinct_lines);
    assert_int_equal(N - same, distinct_lines);
    for (size_t k = 0; k < 64; k++) /* each slot near N / 64 = 6,250 */
        assert_true(slots[k] > 5500 && slots[k] < 7000);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_length_and_offset),
        cmocka_unit_test(test_wide_tells_lines_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
