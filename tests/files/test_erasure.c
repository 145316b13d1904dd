/* test_erasure.c - the erasure list: a missing file is empty, entries
 * survive a reopen, a bad line is named, the entry of a clear id is its
 * normalised hash and never the id, the set agrees with a plain list
 * over many entries (growth and probing), and the first entry's new file
 * is on the disk with its folder when erasure_add returns. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "erasure.h"
#include "rng.h"
#include "syncwrap.h"
#include "txn.h"

static void test_file_roundtrip(void **state)
{
    (void)state;
    char path[64], err[RFM_ERRLEN];
    write_temp(path, ".erased", "", 0);
    remove(path); /* missing: empty */
    erasure *e;
    assert_int_equal(erasure_open(path, &e, err, sizeof err), RFM_OK);
    assert_int_equal(erasure_count(e), 0);
    char a[33], b[33];
    assert_int_equal(erasure_entry(0, " 17850.0", 8, a), 32);
    assert_int_equal(erasure_entry(0, "17850", 5, b), 32);
    assert_string_equal(a, b); /* normalised as training keeps ids */
    assert_null(strstr(a, "17850"));
    assert_false(erasure_has_id(e, 0, "17850", 5));
    assert_int_equal(erasure_add(e, a, err, sizeof err), RFM_OK);
    assert_int_equal(erasure_add(e, a, err, sizeof err), RFM_OK); /* again: no change */
    assert_true(erasure_has_id(e, 0, "17850.0", 7));
    assert_false(erasure_has_id(e, 0, "17851", 5));
    /* Pseudonymous ids are their own entry; other forms never match. */
    const char *p = "00112233445566778899aabbccddeeff";
    assert_int_equal(erasure_entry(1, p, 32, b), 32);
    assert_string_equal(b, p);
    assert_int_equal(erasure_entry(1, "17850", 5, b), 0);
    assert_int_equal(erasure_add(e, p, err, sizeof err), RFM_OK);
    assert_int_equal(erasure_add(e, "not-hex", err, sizeof err), RFM_EINVAL);
    assert_true(erasure_has_id(e, 1, p, 32));
    assert_int_equal(erasure_count(e), 2);
    erasure_free(e);
    /* Reopened: the same two, one a line. */
    assert_int_equal(erasure_open(path, &e, err, sizeof err), RFM_OK);
    assert_int_equal(erasure_count(e), 2);
    assert_true(erasure_has(e, a, 32) && erasure_has(e, p, 32));
    erasure_free(e);
    FILE *f = fopen(path, "a");
    fputs("00112233445566778899AABBCCDDEEFF\n", f); /* upper case: not an entry */
    fclose(f);
    assert_int_equal(erasure_open(path, &e, err, sizeof err), RFM_EPARSE);
    assert_null(e);
    char want[96];
    snprintf(want, sizeof want, "%s:3:", path);
    if (!strstr(err, want))
        fail_msg("'%s' does not name %s", err, want);
    remove(path);
}

/* Against a plain array: random entries in, every one found, others not;
 * the all-zero entry too. */
static void test_set_matches_list(void **state)
{
    (void)state;
    char path[64], err[RFM_ERRLEN];
    write_temp(path, ".erased", "", 0);
    erasure *e;
    assert_int_equal(erasure_open(path, &e, err, sizeof err), RFM_OK);
    enum { N = 3000 };
    static char in[N][33], out[N][33];
    rfm_rng r;
    rfm_rng_seed(&r, 7);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 32; k++) {
            in[i][k] = "0123456789abcdef"[rfm_rng_u64(&r) & 15];
            out[i][k] = "0123456789abcdef"[rfm_rng_u64(&r) & 15];
        }
    memset(in[5], '0', 32);
    for (int i = 0; i < N; i++)
        assert_int_equal(erasure_add(e, in[i], err, sizeof err), RFM_OK);
    assert_int_equal(erasure_count(e), N);
    for (int i = 0; i < N; i++) {
        assert_true(erasure_has(e, in[i], 32));
        assert_false(erasure_has(e, out[i], 32));
    }
    erasure_free(e);
    remove(path);
}

/* An acknowledged erasure survives a crash: the entry synced, and when it
 * created the list, the folder holding it synced after. */
static void test_add_is_durable(void **state)
{
    (void)state;
    char dir[] = "/tmp/rfmtest_erasure_XXXXXX", path[64], err[RFM_ERRLEN], a[33], cmd[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/erased.list", dir);
    erasure *e;
    assert_int_equal(erasure_open(path, &e, err, sizeof err), RFM_OK);
    assert_int_equal(erasure_entry(0, "17850", 5, a), 32);
    sync_events_clear();
    assert_int_equal(erasure_add(e, a, err, sizeof err), RFM_OK);
    int k = sync_event_find('s', path, 0);
    assert_true(k >= 0);
    if (sync_event_find('s', dir, k) < 0)
        fail_msg("%s not synced after %s was created", dir, path);
    /* A later entry appends to the file: its sync alone. */
    assert_int_equal(erasure_entry(0, "17851", 5, a), 32);
    sync_events_clear();
    assert_int_equal(erasure_add(e, a, err, sizeof err), RFM_OK);
    assert_true(sync_event_find('s', path, 0) >= 0);
    assert_int_equal(sync_event_find('s', dir, 0), -1);
    erasure_free(e);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_roundtrip),
        cmocka_unit_test(test_set_matches_list),
        cmocka_unit_test(test_add_is_durable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
