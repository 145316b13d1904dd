/* test_engagement.c - engagement scores: the edges of each score, the
 * segment rule, the defaults, and the options check. */
#include "testutil.h"

#include <string.h>

#include "engagement.h"

static engagement_result score(const engagement_options *o, int32_t recency, double count,
                               double weighted)
{
    engagement_result r;
    engagement_score(o, 1000 - recency, 1000, count, weighted, &r);
    return r;
}

static void test_edges(void **state)
{
    (void)state;
    engagement_options o;
    engagement_default_options(&o);
    /* Recency: 5 up to 7 days (inclusive), 4 up to 30, 3 up to 90, 2 up
     * to 180, then 1. */
    const int32_t rec[] = {1, 7, 8, 30, 31, 90, 91, 180, 181, 5000};
    const int want_r[] = {5, 5, 4, 4, 3, 3, 2, 2, 1, 1};
    for (size_t i = 0; i < sizeof rec / sizeof *rec; i++) {
        engagement_result r = score(&o, rec[i], 1, 1);
        if (r.recency_score != want_r[i] || r.recency != rec[i])
            fail_msg("recency %d: score %d, wanted %d", rec[i], r.recency_score, want_r[i]);
    }
    /* Count and weighted: 1 + the edges at or below (2, 5, 10, 25). */
    const double v[] = {1, 1.99, 2, 4.9, 5, 9, 10, 24, 25, 1000};
    const int want_v[] = {1, 1, 2, 2, 3, 3, 4, 4, 5, 5};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        engagement_result r = score(&o, 1, v[i], v[i]);
        assert_int_equal(r.count_score, want_v[i]);
        assert_int_equal(r.weighted_score, want_v[i]);
    }
}

static void test_segments(void **state)
{
    (void)state;
    engagement_options o;
    engagement_default_options(&o);
    assert_int_equal(score(&o, 3, 12, 1).segment, ENGAGEMENT_HIGHLY_ENGAGED);  /* R5 C4 */
    assert_int_equal(score(&o, 20, 1, 30).segment, ENGAGEMENT_HIGHLY_ENGAGED); /* R4 W5 */
    assert_int_equal(score(&o, 20, 3, 3).segment, ENGAGEMENT_ENGAGED);         /* R4, C2 W2 */
    assert_int_equal(score(&o, 60, 50, 50).segment, ENGAGEMENT_ENGAGED);       /* R3 */
    assert_int_equal(score(&o, 120, 50, 50).segment, ENGAGEMENT_COOLING);      /* R2 */
    assert_int_equal(score(&o, 400, 50, 50).segment, ENGAGEMENT_DORMANT);      /* R1 */
    engagement_result r = score(&o, 3, 0, 0);                                  /* no interaction */
    assert_int_equal(r.segment, ENGAGEMENT_DORMANT);
    assert_true(r.recency == 0 && r.recency_score == 1 && r.count_score == 1);
    assert_string_equal(engagement_segment_name(ENGAGEMENT_COOLING), "cooling");
    /* Configured edges move the scores. */
    o.recency_days[0] = 1, o.recency_days[1] = 2, o.recency_days[2] = 3, o.recency_days[3] = 4;
    assert_int_equal(score(&o, 3, 1, 1).recency_score, 3);
    assert_int_equal(score(&o, 5, 1, 1).recency_score, 1);
}

static void test_options(void **state)
{
    (void)state;
    engagement_options o;
    char why[160];
    engagement_default_options(&o);
    assert_null(engagement_check_options(&o, why, sizeof why));
    assert_int_equal(o.ntypes, 3);
    assert_int_equal(engagement_type_index(&o, NULL, 0), 0); /* purchase */
    assert_true(o.type[0].monetary && !o.type[1].monetary);
    assert_int_equal(engagement_type_index(&o, "lead", 4), 2);
    assert_int_equal(engagement_type_index(&o, "lea", 3), -1);
    engagement_options b = o;
    strcpy(b.type[1].name, "Web visit");
    assert_non_null(strstr(engagement_check_options(&b, why, sizeof why), "not a name"));
    b = o;
    strcpy(b.type[2].name, "web_visit");
    assert_non_null(strstr(engagement_check_options(&b, why, sizeof why), "twice"));
    b = o;
    b.type[0].monetary = 0;
    assert_non_null(strstr(engagement_check_options(&b, why, sizeof why), "monetary"));
    b = o;
    b.type[1].weight = -1;
    assert_non_null(strstr(engagement_check_options(&b, why, sizeof why), "weight"));
    b = o;
    b.count[2] = b.count[1];
    assert_non_null(strstr(engagement_check_options(&b, why, sizeof why), "count"));
    b = o;
    b.ntypes = 0;
    assert_non_null(engagement_check_options(&b, why, sizeof why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
