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

/* RFC 4231, test cases 1 to 7 (case 5 compares the 128 bits it gives). */
static void test_hmac_rfc4231(void **state)
{
    (void)state;
    uint8_t k0b[20], kaa[131], k25[25], k0c[20], daa[50], dcd[50];
    memset(k0b, 0x0b, sizeof k0b);
    memset(kaa, 0xaa, sizeof kaa);
    memset(k0c, 0x0c, sizeof k0c);
    memset(daa, 0xdd, sizeof daa);
    memset(dcd, 0xcd, sizeof dcd);
    for (int i = 0; i < 25; i++)
        k25[i] = (uint8_t)(i + 1);
    const char *big1 = "Test Using Larger Than Block-Size Key - Hash Key First";
    const char *big2 = "This is a test using a larger than block-size key and a larger than "
                       "block-size data. The key needs to be hashed before being used by the "
                       "HMAC algorithm.";
    struct {
        const void *key;
        size_t keylen;
        const void *msg;
        size_t n;
        const char *want;
    } v[] = {
        {k0b, 20, "Hi There", 8,
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"Jefe", 4, "what do ya want for nothing?", 28,
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {kaa, 20, daa, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {k25, 25, dcd, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {k0c, 20, "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b"},
        {kaa, 131, big1, strlen(big1),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {kaa, 131, big2, strlen(big2),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        uint8_t mac[32];
        char hex[65];
        hmac_sha256(v[i].key, v[i].keylen, v[i].msg, v[i].n, mac);
        sha256_hex(mac, hex);
        hex[strlen(v[i].want)] = '\0';
        if (strcmp(hex, v[i].want) != 0)
            fail_msg("RFC 4231 case %zu: %s, expected %s", i + 1, hex, v[i].want);
    }
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
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_million_a_in_odd_pieces),
        cmocka_unit_test(test_fast_path_matches_portable),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
