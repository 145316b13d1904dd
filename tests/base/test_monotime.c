/* test_monotime.c - monotime_s against the clock it reads: it agrees with
 * clock_gettime(CLOCK_MONOTONIC) taken around it, never goes back, and a
 * sleep of 20 ms shows as at least 20 ms (only a lower bound: the machine
 * may be loaded, so no upper bound is asserted). */
#include "testutil.h"

#include <time.h>

#include "monotime.h"

static double direct(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void test_same_clock(void **state)
{
    (void)state;
    for (int i = 0; i < 1000; i++) {
        double a = direct(), m = monotime_s(), b = direct();
        assert_true(a <= m && m <= b);
    }
}

static void test_never_back_and_sleeps_count(void **state)
{
    (void)state;
    double prev = monotime_s();
    for (int i = 0; i < 100000; i++) {
        double t = monotime_s();
        assert_true(t >= prev);
        prev = t;
    }
    double t0 = monotime_s();
    struct timespec d = {0, 20 * 1000 * 1000};
    while (nanosleep(&d, &d) != 0)
        ;
    assert_true(monotime_s() - t0 >= 0.020);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_clock),
        cmocka_unit_test(test_never_back_and_sleeps_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
