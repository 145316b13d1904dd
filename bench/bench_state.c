/* bench_state.c - the store-only floor of event ingest and lookups: what
 * POST /events and GET /customers/{id} can at best reach, without HTTP;
 * and the time to open a store of a million customers.
 *
 * usage: bench_state DIR [EVENTS [CUSTOMERS [RESTART_CUSTOMERS]]]
 * Writes DIR/state.db (removed first), applies EVENTS synthetic purchases
 * (default 500,000) of CUSTOMERS customers (default 100,000) in batches of
 * 500 with synchronous FULL (each batch durable before the next), then
 * NORMAL for comparison, then looks customers up as of today (the
 * aggregate path) and as of a day inside their history (the per-day path).
 * Then (RESTART_CUSTOMERS > 0, default 1,000,000) DIR/restart.db: two
 * purchases per customer on average, closed cleanly, opened three times
 * (the median printed); then a writer that dies without closing after a
 * further 200,000 events, and the open that replays its log.
 * Prints one line of key=value figures per measurement.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* Apply n synthetic events of ncust customers in batches of batch (at
 * most BIG) to st, ids numbered from first; 0 or -1. */
enum { BIG = 10000 };
static int feed(state_store *st, size_t n, size_t ncust, size_t batch, size_t first, uint64_t seed)
{
    static char ids[BIG][32], cids[BIG][24], invs[BIG][24], times[BIG][32];
    static state_event ev[BIG];
    static state_result res[BIG];
    char err[RFM_ERRLEN];
    rfm_rng r;
    rfm_rng_seed(&r, seed);
    int32_t day0 = date_from_ymd(2023, 1, 1);
    for (size_t at = 0; at < n; at += batch) {
        size_t b = n - at < batch ? n - at : batch;
        for (size_t i = 0; i < b; i++) {
            int y, m, d;
            int32_t day = day0 + (int32_t)rfm_rng_below(&r, 365);
            date_to_ymd(day, &y, &m, &d);
            snprintf(ids[i], sizeof ids[i], "evt-%zu", first + at + i);
            /* Every customer once per ncust events (the first pass creates them). */
            snprintf(cids[i], sizeof cids[i], "%llu",
                     (unsigned long long)(100000 + (first + at + i) % ncust));
            snprintf(invs[i], sizeof invs[i], "%zu", first + at + i);
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
                                  0,
                                  NULL};
        }
        if (state_apply(st, ev, b, res, err, sizeof err) != RFM_OK) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
    }
    return 0;
}

static double file_mb(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (double)sb.st_size / 1048576 : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Seconds to open the store at path (and count its customers); *cpu the
 * CPU seconds of it (the figure a loaded machine does not inflate). */
static double time_open(const char *path, uint64_t *ncustomers, double *cpu)
{
    state_options o;
    state_default_options(&o);
    state_store *st;
    char err[RFM_ERRLEN];
    double t0 = now_s(), c0 = cpu_s();
    if (state_open(path, &o, &st, err, sizeof err) != RFM_OK ||
        state_count(st, ncustomers, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    double dt = now_s() - t0;
    *cpu = cpu_s() - c0;
    state_close(st);
    return dt;
}

/* A store of ncust customers: opened cleanly, and after a crash. */
static int restart(const char *dir, size_t ncust)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/restart.db", dir);
    rm_store(path);
    state_options o;
    state_default_options(&o);
    o.synchronous = STATE_SYNC_NORMAL; /* building it is not the figure */
    state_store *st;
    char err[RFM_ERRLEN];
    if (state_open(path, &o, &st, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    size_t n = 2 * ncust;
    double t0 = now_s();
    if (feed(st, n, ncust, BIG, 0, 3) != 0)
        return -1;
    double build = now_s() - t0;
    state_close(st);
    double t[3], c[3];
    uint64_t have = 0;
    for (int k = 0; k < 3; k++)
        if ((t[k] = time_open(path, &have, &c[k])) < 0)
            return -1;
    qsort(t, 3, sizeof *t, cmp_double);
    qsort(c, 3, sizeof *c, cmp_double);
    printf("restart customers=%llu events=%zu build_s=%.1f file_mb=%.0f open_s=%.3f "
           "(median of 3; min %.3f) open_cpu_s=%.3f\n",
           (unsigned long long)have, n, build, file_mb(path), t[1], t[0], c[1]);
    /* A writer that dies without closing: its log since the last complete
     * fold is replayed at the next open. */
    size_t more = 200000;
    pid_t pid = fork();
    if (pid == 0) {
        if (state_open(path, &o, &st, err, sizeof err) != RFM_OK ||
            feed(st, more, ncust, 500, n, 4))
            _exit(1);
        _exit(0);
    }
    int ws;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        return -1;
    double cc, tc = time_open(path, &have, &cc);
    if (tc < 0)
        return -1;
    printf("restart_after_crash customers=%llu events_after_close=%zu open_s=%.3f open_cpu_s=%.3f "
           "(replays the log after the last complete fold)\n",
           (unsigned long long)have, more, tc, cc);
    rm_store(path);
    return 0;
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
                                  0,
                                  NULL};
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
    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: %s DIR [EVENTS [CUSTOMERS [RESTART_CUSTOMERS]]]\n", argv[0]);
        return 2;
    }
    size_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 500000;
    size_t ncust = argc > 3 ? strtoull(argv[3], NULL, 10) : 100000;
    size_t nrestart = argc > 4 ? strtoull(argv[4], NULL, 10) : 1000000;
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
    if (nrestart && restart(argv[1], nrestart) != 0)
        return 1;
    return 0;
}
