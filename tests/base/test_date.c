/* test_date.c - accepted forms, invalid dates, and day numbers against a
 * naive day-by-day calendar walk. */
#include "testutil.h"

#include <string.h>

#include "date.h"

static int32_t P(const char *s) { return date_parse(s, strlen(s)); }

static void test_forms(void **state)
{
    (void)state;
    int32_t d = date_from_ymd(2010, 12, 1);
    assert_int_equal(P("2010-12-01"), d);
    assert_int_equal(P("2010-12-01 08:26:00"), d);
    assert_int_equal(P("2010-12-01T08:26"), d);
    assert_int_equal(P("12/1/2010 8:26"), d);
    assert_int_equal(P("12/01/2010 08:26:59"), d);
    assert_int_equal(P(" 2010-12-01 "), d);
    assert_int_equal(P("1970-01-01"), 0);
    assert_int_equal(P("2000-02-29"), date_from_ymd(2000, 2, 29));
}

static void test_invalid(void **state)
{
    (void)state;
    const char *bad[] = {"",           "2011-02-29",       "1900-02-29",       "2011-13-01",
                         "2011-00-10", "2011-04-31",       "2011-01-01 25:00", "2011-01-01 10:60",
                         "13/1/2011 1:00", "2011/01/01",   "yesterday",        "2011-1-1",
                         "2011-01-01x", "1/1/11 1:00",     "2011-01-01 10"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (P(bad[i]) != DATE_NONE)
            fail_msg("'%s' should be rejected", bad[i]);
}

static void test_against_calendar_walk(void **state)
{
    (void)state;
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = 1900, m = 1, d = 1;
    int32_t day = -25567; /* 1900-01-01 */
    for (int i = 0; i < 200 * 366; i++) {
        assert_int_equal(date_from_ymd(y, m, d), day);
        int yy, mm, dd;
        date_to_ymd(day, &yy, &mm, &dd);
        assert_true(yy == y && mm == m && dd == d);
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        int len = m == 2 ? 28 + leap : dm[m - 1];
        if (++d > len) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
        day++;
    }
    char s[11];
    date_format(date_from_ymd(2011, 12, 9), s);
    assert_string_equal(s, "2011-12-09");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_against_calendar_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
