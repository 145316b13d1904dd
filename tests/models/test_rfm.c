/* test_rfm.c - quantiles against hand values, scores, ties. */
#include "testutil.h"

#include "rfm.h"

static void test_quantile_by_hand(void **state)
{
    (void)state;
    const double x[5] = {1, 2, 3, 4, 10};
    /* numpy.quantile(x, p) for p = .2 .4 .6 .8: h = 4p -> 1.8, 2.6, 3.4, 4.8 */
    assert_near(rfm_quantile(x, 5, 0.2), 1.8, 1e-15);
    assert_near(rfm_quantile(x, 5, 0.4), 2.6, 1e-15);
    assert_near(rfm_quantile(x, 5, 0.6), 3.4, 1e-15);
    assert_near(rfm_quantile(x, 5, 0.8), 4 + 0.2 * 6, 1e-15);
    assert_near(rfm_quantile(x, 5, 0.0), 1, 0);
    assert_near(rfm_quantile(x, 5, 1.0), 10, 0);
    assert_near(rfm_quantile(x, 1, 0.5), 1, 0);
}

static void test_scores_and_ties(void **state)
{
    (void)state;
    /* Frequency heavily tied at 1, as in real shops. */
    double r[10] = {1, 5, 10, 20, 40, 80, 160, 200, 300, 365};
    double f[10] = {1, 1, 1, 1, 1, 2, 2, 3, 8, 20};
    double m[10] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
    rfm_bounds b;
    char err[RFM_ERRLEN];
    assert_int_equal(rfm_fit(r, f, m, 10, &b, err, sizeof err), RFM_OK);
    int prev = 0;
    for (int i = 0; i < 10; i++) {
        int s[3];
        rfm_score(&b, r[i], f[i], m[i], s);
        for (int j = 0; j < 3; j++)
            assert_true(s[j] >= 1 && s[j] <= 5);
        if (i > 0 && f[i] == f[i - 1])
            assert_int_equal(s[1], prev); /* equal values, equal scores */
        prev = s[1];
        if (i > 0) {
            int t[3];
            rfm_score(&b, r[i - 1], f[i - 1], m[i - 1], t);
            assert_true(s[0] <= t[0]); /* more recency (days) never scores higher */
            assert_true(s[2] >= t[2]);
        }
    }
    int s[3];
    rfm_score(&b, 1, 20, 100, s);
    char code[4];
    rfm_code(s, code);
    assert_string_equal(code, "555");
    rfm_score(&b, 365, 1, 10, s);
    rfm_code(s, code);
    assert_string_equal(code, "111");
    /* A value on a boundary gets the lower score (boundaries are "< x"). */
    assert_int_equal(rfm_score_up(b.monetary, b.monetary[0]), 1);
    assert_int_equal(rfm_score_up(b.monetary, b.monetary[0] + 1e-9), 2);
    assert_int_equal(rfm_fit(r, f, m, 0, &b, err, sizeof err), RFM_EDATA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantile_by_hand),
        cmocka_unit_test(test_scores_and_ties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
