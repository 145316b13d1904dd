/* test_bytescan.c - the eight-bytes-at-a-time tests against a byte loop:
 * every byte value at every position of a word, over backgrounds of plain
 * letters, of bytes just above and below the ones looked for, of high
 * (UTF-8) bytes and of random bytes, where a borrow from one byte into the
 * next could fool a careless version. */
#include "testutil.h"

#include <stdint.h>
#include <string.h>

#include "bytescan.h"
#include "rng.h"

static int naive_has(const unsigned char *b, unsigned char c)
{
    for (int i = 0; i < 8; i++)
        if (b[i] == c)
            return 1;
    return 0;
}

static int naive_below(const unsigned char *b, unsigned char n)
{
    for (int i = 0; i < 8; i++)
        if (b[i] < n)
            return 1;
    return 0;
}

static void check_word(const unsigned char *b, size_t *checked)
{
    static const unsigned char LOOKED_FOR[] = {',', '"', '\\', '\n', '\r', 0, 0x7f, 0x80, 0xff};
    static const unsigned char BELOW[] = {0x20, 1, 0x80};
    uint64_t v = bytescan_word((const char *)b);
    for (size_t k = 0; k < sizeof LOOKED_FOR; k++) {
        if ((bytescan_has(v, LOOKED_FOR[k]) != 0) != naive_has(b, LOOKED_FOR[k]))
            fail_msg("has %#x: %02x %02x %02x %02x %02x %02x %02x %02x", LOOKED_FOR[k], b[0], b[1],
                     b[2], b[3], b[4], b[5], b[6], b[7]);
        (*checked)++;
    }
    for (size_t k = 0; k < sizeof BELOW; k++) {
        if ((bytescan_below(v, BELOW[k]) != 0) != naive_below(b, BELOW[k]))
            fail_msg("below %#x: %02x %02x %02x %02x %02x %02x %02x %02x", BELOW[k], b[0], b[1],
                     b[2], b[3], b[4], b[5], b[6], b[7]);
        (*checked)++;
    }
}

static void test_against_byte_loop(void **state)
{
    (void)state;
    size_t checked = 0;
    static const unsigned char BACK[] = {'a',  ',' + 1, ',' - 1, '"' + 1, 0x21,
                                         0x1f, 0x01,    0xc3,    0x80,    0xff};
    for (size_t g = 0; g < sizeof BACK; g++)
        for (int pos = 0; pos < 8; pos++)
            for (int c = 0; c < 256; c++) {
                unsigned char b[8];
                memset(b, BACK[g], sizeof b);
                b[pos] = (unsigned char)c;
                check_word(b, &checked);
                /* two bytes set: the one looked for above another */
                for (int pos2 = 0; pos2 < 8; pos2++) {
                    if (pos2 == pos)
                        continue;
                    b[pos2] = (unsigned char)(c ^ 1);
                    check_word(b, &checked);
                    b[pos2] = BACK[g];
                }
            }
    rfm_rng rng;
    rfm_rng_seed(&rng, 9);
    for (int i = 0; i < 200000; i++) {
        unsigned char b[8];
        uint64_t r = rfm_rng_u64(&rng);
        memcpy(b, &r, sizeof b);
        check_word(b, &checked);
    }
    printf("    %zu tests of a word agree with the byte loop\n", checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_byte_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
