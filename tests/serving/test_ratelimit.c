/* test_ratelimit.c - token buckets against a hand-worked sequence, a naive
 * integer simulation of the same bucket, key independence, and exactly
 * `burst` admissions when many threads race for one bucket. */
#include "testutil.h"

#include <pthread.h>
#include <string.h>

#include "ratelimit.h"
#include "rng.h"

static void key_of(uint8_t k[32], int i)
{
    memset(k, 0, 32);
    k[0] = (uint8_t)(i * 37);
    k[1] = (uint8_t)(i * 11);
    k[31] = (uint8_t)i;
}

static void test_hand_sequence(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(2, 3); /* 2 per second, burst 3 */
    assert_non_null(rl);
    uint8_t k[32];
    key_of(k, 1);
    /* A full bucket: three at once, the fourth waits half a second. */
    double worst = 0;
    for (int i = 0; i < 3; i++)
        worst = fmax(worst, ratelimit_take(rl, k, 10.0));
    worst = fmax(worst, fabs(ratelimit_take(rl, k, 10.0) - 0.5));
    worst = fmax(worst, fabs(ratelimit_take(rl, k, 10.25) - 0.25)); /* half a token there */
    worst = fmax(worst, ratelimit_take(rl, k, 10.5));               /* one token: admitted */
    worst = fmax(worst, fabs(ratelimit_take(rl, k, 10.5) - 0.5));
    /* Long idle: refills to the burst, not beyond. */
    for (int i = 0; i < 3; i++)
        worst = fmax(worst, ratelimit_take(rl, k, 1000.0));
    worst = fmax(worst, fabs(ratelimit_take(rl, k, 1000.0) - 0.5));
    report_maxdiff("waits vs hand-worked sequence", worst, 1e-12);
    ratelimit_free(rl);
    assert_null(ratelimit_new(0, 3));
    assert_null(ratelimit_new(1, 0.5));
}

/* Times on a 1/1024 s grid and rate 4/s keep every double exact; the naive
 * bucket counts in 1/256 of a request with integers. */
static void test_vs_naive(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(4, 5);
    uint8_t k[32];
    key_of(k, 2);
    long units = 5 * 256, tick = 0, admitted = 0;
    rfm_rng rng;
    rfm_rng_seed(&rng, 9);
    double worst = 0;
    for (int i = 0; i < 20000; i++) {
        long dt = (long)rfm_rng_below(&rng, 200); /* 0 to 0.2 s apart */
        tick += dt;
        units = units + dt > 5 * 256 ? 5 * 256 : units + dt;
        int naive_ok = units >= 256;
        double naive_wait = naive_ok ? 0 : (double)(256 - units) / 1024.0;
        if (naive_ok)
            units -= 256;
        double wait = ratelimit_take(rl, k, (double)tick / 1024.0);
        if ((wait == 0) != naive_ok)
            fail_msg("request %d at tick %ld: admitted %d, naive %d", i, tick, wait == 0, naive_ok);
        worst = fmax(worst, fabs(wait - naive_wait));
        admitted += naive_ok;
    }
    printf("    20000 requests, %ld admitted by both\n", admitted);
    report_maxdiff("wait vs naive integer bucket", worst, 1e-12);
    ratelimit_free(rl);
}

static void test_keys_independent(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(1, 2);
    uint8_t a[32], b[32];
    key_of(a, 3);
    key_of(b, 3 + 16 * 64); /* same shard and chain, different key */
    b[30] = 1;
    assert_true(ratelimit_take(rl, a, 0) == 0);
    assert_true(ratelimit_take(rl, a, 0) == 0);
    assert_true(ratelimit_take(rl, a, 0) > 0);
    assert_true(ratelimit_take(rl, b, 0) == 0);
    assert_true(ratelimit_take(rl, b, 0) == 0);
    assert_true(ratelimit_take(rl, b, 0) > 0);
    ratelimit_free(rl);
}

typedef struct {
    ratelimit *rl;
    int admitted;
} job;

static void *race(void *arg)
{
    job *j = arg;
    uint8_t k[32];
    key_of(k, 4);
    for (int i = 0; i < 5000; i++)
        j->admitted += ratelimit_take(j->rl, k, 1.0) == 0;
    return NULL;
}

static void test_threads_admit_exactly_burst(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(1e-3, 1000);
    pthread_t th[8];
    job jobs[8];
    for (int t = 0; t < 8; t++) {
        jobs[t] = (job){rl, 0};
        pthread_create(&th[t], NULL, race, &jobs[t]);
    }
    int total = 0;
    for (int t = 0; t < 8; t++) {
        pthread_join(th[t], NULL);
        total += jobs[t].admitted;
    }
    printf("    8 threads x 5000 requests at one instant, burst 1000: %d admitted\n", total);
    assert_int_equal(total, 1000);
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_sequence),
        cmocka_unit_test(test_vs_naive),
        cmocka_unit_test(test_keys_independent),
        cmocka_unit_test(test_threads_admit_exactly_burst),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
