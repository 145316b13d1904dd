/* test_utf8.c - utf8_seq against an encoder written here: every code point
 * encoded reads back with its length, and the forms jansson refuses
 * (overlong, surrogates, past U+10FFFF, cut, bad continuation) give 0. */
#include "testutil.h"

#include <stdint.h>
#include <string.h>

#include "utf8.h"

/* The plain encoding of cp (no checks), its length returned. */
static size_t encode(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static void test_every_code_point(void **state)
{
    (void)state;
    unsigned char b[4];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        size_t len = encode(cp, b);
        size_t want = cp >= 0xD800 && cp <= 0xDFFF ? 0 : len;
        assert_int_equal(utf8_seq(b, len), want);
        if (len > 1) /* one byte short: cut */
            assert_int_equal(utf8_seq(b, len - 1), 0);
    }
}

static void test_refused_forms(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t want;
    } cases[] = {
        {"\xC0\x80", 0},         /* overlong NUL */
        {"\xC1\xBF", 0},         /* overlong U+007F */
        {"\xE0\x80\x80", 0},     /* overlong 3 bytes */
        {"\xF0\x80\x80\x80", 0}, /* overlong 4 bytes */
        {"\xED\xA0\x80", 0},     /* U+D800 surrogate */
        {"\xF4\x90\x80\x80", 0}, /* U+110000 */
        {"\x80", 0},             /* lone continuation */
        {"\xF8\x88\x80\x80", 0}, /* 5-byte lead */
        {"\xC3\x28", 0},         /* bad continuation */
        {"\xE2\x82", 0},         /* cut at the end of the buffer */
        {"\xC3\xA9", 2},         /* é */
        {"\xE2\x82\xAC", 3},     /* € */
        {"\xF4\x8F\xBF\xBF", 4}, /* U+10FFFF */
        {"A", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *s = cases[i].bytes;
        assert_int_equal(utf8_seq((const unsigned char *)s, strlen(s)), cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_point),
        cmocka_unit_test(test_refused_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
