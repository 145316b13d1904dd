/* bench_state.c - the SQLite-only floor of event ingest and lookups: what
 * POST /events and GET /customers/{id} can at best reach, without HTTP.
 *
 * usage: bench_state DIR [EVENTS [CUSTOMERS]]
 * Writes DIR/state.db (removed first), applies EVENTS synthetic purchases
 * (default 500,000) of CUSTOMERS customers (default 100,000) in batches of
 * 500 with synchronous FULL (each batch durable before the next), then
 * NORMAL for comparison, then looks customers up as of today (the
 * aggregate path) and as of a day inside their history (the per-day path).
 * Prints one line of key=value figures per measurement.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "date.h"
#include "rng.h"
#include "state.h"

enum { BATCH = 500 };

static void rm_store(const char *path)
{
    char p[4096];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[k]);
        unlink(p);
    }
}

/* Ingest n events in batches; returns events per second or -1. */
static double ingest(const char *path, state_sync sync, size_t n, size_t ncust, uint64_t seed)
{
    state_options o;
    state_default_options(&o);
    o.synchronous = sync;
    state_store *st;
    char err[RFM_ERRLEN];
    rm_store(path);
    if (state_open(path, &o, &st, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    static char ids[BATCH][32], cids[BATCH][24], invs[BATCH][24], times[BATCH][32];
    state_event ev[BATCH];
    state_result res[BATCH];
    rfm_rng r;
    rfm_rng_seed(&r, seed);
    int32_t day0 = date_from_ymd(2023, 1, 1);
    double t0 = now_s();
    for (size_t at = 0; at < n; at += BATCH) {
        size_t b = n - at < BATCH ? n - at : BATCH;
        for (size_t i = 0; i < b; i++) {
            int y, m, d;
            int32_t day = day0 + (int32_t)rfm_rng_below(&r, 365);
            date_to_ymd(day, &y, &m, &d);
            snprintf(ids[i], sizeof ids[i], "evt-%016llx-%zu", (unsigned long long)rfm_rng_u64(&r),
                     at + i);
            snprintf(cids[i], sizeof cids[i], "%llu",
                     (unsigned long long)(100000 + rfm_rng_below(&r, ncust)));
            snprintf(invs[i], sizeof invs[i], "%llu", (unsigned long long)(1000000 + (at + i) / 3));
            snprintf(times[i], sizeof times[i], "%04d-%02d-%02dT%02d:%02d:00Z", y, m, d,
                     (int)rfm_rng_below(&r, 24), (int)rfm_rng_below(&r, 60));
            ev[i] = (state_event){ids[i],
                                  cids[i],
                                  times[i],
                                  invs[i],
                                  NULL,
                                  1,
                                  1.0 + (double)rfm_rng_below(&r, 10000) / 100,
                                  0,
                                  0};
        }
        if (state_apply(st, ev, b, res, err, sizeof err) != RFM_OK) {
            fprintf(stderr, "%s\n", err);
            state_close(st);
            return -1;
        }
    }
    double dt = now_s() - t0;
    state_close(st);
    return (double)n / dt;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s DIR [EVENTS [CUSTOMERS]]\n", argv[0]);
        return 2;
    }
    size_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 500000;
    size_t ncust = argc > 3 ? strtoull(argv[3], NULL, 10) : 100000;
    if (n == 0 || ncust == 0) {
        fprintf(stderr, "EVENTS and CUSTOMERS must be positive\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/state.db", argv[1]);
    double normal = ingest(path, STATE_SYNC_NORMAL, n / 5 + 1, ncust, 2);
    double full = ingest(path, STATE_SYNC_FULL, n, ncust, 1);
    if (full < 0 || normal < 0)
        return 1;
    printf("ingest events=%zu customers=%zu batch=%d full_events_per_s=%.0f "
           "normal_events_per_s=%.0f\n",
           n, ncust, BATCH, full, normal);

    /* Lookups on the store the FULL run left. */
    state_options o;
    state_default_options(&o);
    state_store *st;
    char err[RFM_ERRLEN];
    if (state_open(path, &o, &st, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uint64_t have;
    if (state_count(st, &have, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rfm_rng r;
    rfm_rng_seed(&r, 9);
    const int32_t days[2] = {date_from_ymd(2024, 6, 1), date_from_ymd(2023, 7, 1)};
    const char *name[2] = {"today", "inside_history"};
    for (int k = 0; k < 2; k++) {
        size_t m = 200000, found = 0;
        double t0 = now_s();
        for (size_t i = 0; i < m; i++) {
            char id[24];
            snprintf(id, sizeof id, "%llu",
                     (unsigned long long)(100000 + rfm_rng_below(&r, ncust)));
            state_customer c;
            found += state_get(st, id, days[k], &c, err, sizeof err) == RFM_OK;
        }
        double dt = now_s() - t0;
        printf("lookup as_of=%s customers=%llu lookups=%zu found=%zu lookups_per_s=%.0f "
               "us_per_lookup=%.2f\n",
               name[k], (unsigned long long)have, m, found, (double)m / dt, dt / (double)m * 1e6);
    }
    state_close(st);
    rm_store(path);
    return 0;
}
