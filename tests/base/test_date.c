/* test_date.c - accepted forms, invalid dates, and day numbers against a
 * naive day-by-day calendar walk. */
#include "testutil.h"

#include <string.h>
#include <time.h>

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
    const char *bad[] = {
        "",           "2011-02-29",       "1900-02-29",       "2011-13-01",     "2011-00-10",
        "2011-04-31", "2011-01-01 25:00", "2011-01-01 10:60", "13/1/2011 1:00", "2011/01/01",
        "yesterday",  "2011-1-1",         "2011-01-01x",      "1/1/11 1:00",    "2011-01-01 10"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (P(bad[i]) != DATE_NONE)
            fail_msg("'%s' should be rejected", bad[i]);
}

static int32_t Z(const char *s, const char *pattern, int32_t zone_s)
{
    date_spec ds = {pattern, zone_s};
    return date_parse_in(s, strlen(s), &ds);
}

/* Auto: every ISO 8601 variant, YYYYMMDD, Unix seconds and milliseconds;
 * an instant is moved into the zone, a wall-clock time is not. */
static void test_auto_forms_and_zones(void **state)
{
    (void)state;
    int32_t d = date_from_ymd(2024, 3, 1), e = d - 1;
    assert_int_equal(Z("2024-03-01T10:00:00Z", NULL, 0), d);
    assert_int_equal(Z("2024-03-01T10:00:00.123456Z", NULL, 0), d);
    assert_int_equal(Z("2024-03-01 10:00:00,5+02:00", NULL, 0), d);
    assert_int_equal(Z("2024-03-01T01:00:00+02:00", NULL, 0), e); /* 23:00 UTC the day before */
    assert_int_equal(Z("2024-03-01T01:00:00+0200", NULL, 0), e);
    assert_int_equal(Z("2024-03-01T01:00:00+02", NULL, 0), e);
    assert_int_equal(Z("2024-03-01T01:00:00 +02:00", NULL, 0), e);
    assert_int_equal(Z("2024-02-29T23:30:00-01:00", NULL, 0), d);
    assert_int_equal(Z("2024-02-29T23:30:00Z", NULL, 3600), d); /* into +01:00 */
    assert_int_equal(Z("2024-02-29T23:30:00", NULL, 3600), e);  /* already local */
    assert_int_equal(Z("20240301", NULL, 0), d);
    assert_int_equal(Z("1709287200", NULL, 0), d); /* 2024-03-01 10:00 UTC */
    assert_int_equal(Z("1709287200123", NULL, 0), d);
    assert_int_equal(Z("1709287200", NULL, -11 * 3600), e); /* 23:00 the day before */
    assert_int_equal(Z("0", NULL, 0), DATE_NONE);
    assert_int_equal(Z("20241301", NULL, 0), DATE_NONE);
    assert_int_equal(Z("2024-03-01T10:00:00+25:00", NULL, 0), DATE_NONE);
    assert_int_equal(Z("2024-03-01T10:00:00Zx", NULL, 0), DATE_NONE);
    /* day and month that auto would have to guess */
    assert_int_equal(Z("03/04/2024", NULL, 0), DATE_AMBIGUOUS);
    assert_int_equal(Z("3.4.2024", NULL, 0), DATE_AMBIGUOUS);
    assert_int_equal(Z("03-04-2024 10:00", NULL, 0), DATE_AMBIGUOUS);
    assert_int_equal(P("03/04/2024"), DATE_NONE);
    assert_int_equal(Z("3/4/2024 10:00", NULL, 0), date_from_ymd(2024, 3, 4)); /* UCI */
}

static void test_patterns(void **state)
{
    (void)state;
    int32_t d = date_from_ymd(2024, 4, 3);
    assert_int_equal(Z("03/04/2024", "%d/%m/%Y", 0), d);
    assert_int_equal(Z("04/03/2024", "%m/%d/%Y", 0), d);
    assert_int_equal(Z("3.4.24 7:05", "%d.%m.%y %H:%M", 0), d);
    assert_int_equal(Z("03-Apr-2024", "%d-%b-%Y", 0), d);
    assert_int_equal(Z("April 3, 2024", "%B %d, %Y", 0), d);
    assert_int_equal(Z("2024-04-03  23:30:00.5 -0100", "%Y-%m-%d %H:%M:%S.%f %z", 0), d + 1);
    assert_int_equal(Z("1712102400", "%s", 0), d);
    assert_int_equal(Z("100%2024-04-03", "100%%%Y-%m-%d", 0), d);
    assert_int_equal(Z("03/04/2024 x", "%d/%m/%Y", 0), DATE_NONE);
    assert_int_equal(Z("31/04/2024", "%d/%m/%Y", 0), DATE_NONE);
    assert_null(date_check_pattern("%d.%m.%Y %H:%M"));
    assert_non_null(date_check_pattern("%H:%M"));
    assert_non_null(date_check_pattern("%Y-%m-%Q"));
    assert_non_null(date_check_pattern("%Y-%m-%d%"));
    int32_t off;
    assert_true(date_parse_zone("UTC", &off) && off == 0);
    assert_true(date_parse_zone("+02:00", &off) && off == 7200);
    assert_true(date_parse_zone("-0530", &off) && off == -(5 * 3600 + 30 * 60));
    assert_false(date_parse_zone("Europe/Berlin", &off));
    assert_false(date_parse_zone("+2", &off));
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

/* date_format_instant against libc's gmtime_r + strftime: the edges of
 * days, months, leap days and the epoch, then 200,000 instants drawn
 * over years 1000-9999. */
static void test_format_instant(void **state)
{
    (void)state;
    int64_t edge[] = {0,         -1,         86399,         86400,      951782400,
                      951868799, 951868800,  4107542399LL,  1323388800, -86400,
                      -86401,    1700000000, 253402300799LL};
    char got[21], want[32];
    struct tm tm;
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    const int64_t lo = -30610224000LL, hi = 253402300799LL; /* 1000-01-01, 9999-12-31 */
    for (int i = 0; i < 200000 + (int)(sizeof edge / sizeof *edge); i++) {
        int64_t t;
        if (i < (int)(sizeof edge / sizeof *edge)) {
            t = edge[i];
        } else {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            t = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
        }
        time_t tt = (time_t)t;
        assert_non_null(gmtime_r(&tt, &tm));
        strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%SZ", &tm);
        date_format_instant(t, got);
        if (strcmp(got, want) != 0)
            fail_msg("instant %lld: %s, libc %s", (long long)t, got, want);
    }
    date_format_instant(INT64_MAX, got);
    assert_string_equal(got, "9999-12-31T23:59:59Z");
    date_format_instant(INT64_MIN, got);
    assert_string_equal(got, "0000-01-01T00:00:00Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_auto_forms_and_zones),
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_against_calendar_walk),
        cmocka_unit_test(test_format_instant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
