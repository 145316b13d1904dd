/* test_sha256.c - FIPS 180-4 / NIST example vectors, split updates, files. */
#include "testutil.h"

#include <string.h>

#include "sha256.h"

static void hex_of(const void *p, size_t n, char hex[65])
{
    uint8_t d[32];
    sha256_of(p, n, d, hex);
}

static void test_vectors(void **state)
{
    (void)state;
    char hex[65];
    hex_of("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(m, strlen(m), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_million_a_in_odd_pieces(void **state)
{
    (void)state;
    static char a[1000000];
    memset(a, 'a', sizeof a);
    sha256_ctx c;
    uint8_t d[32];
    char hex[65];
    sha256_init(&c);
    size_t off = 0, step = 1;
    while (off < sizeof a) { /* pieces of 1, 2, 3 ... bytes cross every block edge */
        size_t n = step < sizeof a - off ? step : sizeof a - off;
        sha256_update(&c, a + off, n);
        off += n;
        step = step % 131 + 1;
    }
    sha256_final(&c, d);
    sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* The SHA-extension path (when this CPU has it) against the portable one
 * on every length up to 300 bytes and a few long random buffers. */
static void test_fast_path_matches_portable(void **state)
{
    (void)state;
    static uint8_t buf[70000];
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    sha256_ctx a, b;
    sha256_init(&a);
    printf("    SHA extensions %s on this CPU\n", a.shani ? "used" : "not available");
    size_t lens[] = {65536, 65537, 69999};
    for (size_t n = 0; n < 300 + 3; n++) {
        size_t len = n < 300 ? n : lens[n - 300];
        uint8_t da[32], db[32];
        sha256_init(&a);
        sha256_init_portable(&b);
        sha256_update(&a, buf, len);
        sha256_update(&b, buf, len);
        sha256_final(&a, da);
        sha256_final(&b, db);
        assert_memory_equal(da, db, 32);
    }
}

static void test_file(void **state)
{
    (void)state;
    char path[64], hex[65], err[RFM_ERRLEN];
    write_temp(path, ".txt", "abc", 3);
    assert_int_equal(sha256_file(path, hex, err, sizeof err), RFM_OK);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    remove(path);
    assert_int_equal(sha256_file(path, hex, err, sizeof err), RFM_EIO);
    assert_non_null(strstr(err, path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_million_a_in_odd_pieces),
        cmocka_unit_test(test_fast_path_matches_portable),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
