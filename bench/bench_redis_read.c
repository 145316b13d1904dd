/* bench_redis_read.c - the daemon's side of one Redis read, alone: the CPU
 * (user and system, getrusage) rstate_get costs the calling thread per
 * read, without HTTP, JSON or other threads, so that the Redis round trip
 * can be told from the rest of GET /customers/{id} (bench/bench_redis.sh
 * measures the whole request). One thread, one connection, reads in turn:
 * the figure is CPU time, which other work on the machine moves far less
 * than the wall time also printed.
 *
 * usage: bench_redis_read URL [READS [CUSTOMERS]]
 * URL redis://HOST:PORT/DB or redis+unix:///PATH; keys under the prefix
 * "rfmbench:" (a rerun sends the same event ids: duplicates, the same
 * state).
 * Applies 10 purchases on distinct days to each of CUSTOMERS customers
 * (default 5,000), then READS reads (default 50,000) as of today (the
 * aggregates: one HMGET) and as many as of a day inside the histories
 * (MULTI, HMGET, HGETALL, HVALS, EXEC). One key=value line per phase.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "date.h"
#include "state_redis.h"

static double cpu_s(int sys)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    struct timeval t = sys ? u.ru_stime : u.ru_utime;
    return (double)t.tv_sec + (double)t.tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: bench_redis_read URL [READS [CUSTOMERS]]\n");
        return 2;
    }
    long reads = argc > 2 ? atol(argv[2]) : 50000, nc = argc > 3 ? atol(argv[3]) : 5000;
    if (reads < 1 || nc < 1) {
        fprintf(stderr, "bench_redis_read: READS and CUSTOMERS must be positive\n");
        return 2;
    }
    rstate_options o;
    rstate_default_options(&o);
    o.prefix = "rfmbench:";
    o.timeout_ms = 10000;
    rstate *st;
    char err[RFM_ERRLEN];
    if (rstate_open(argv[1], &o, &st, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "bench_redis_read: %s\n", err);
        return 1;
    }
    enum { PER = 10 };
    int32_t day0 = date_parse("2011-01-03", 10);
    state_event *ev = malloc((size_t)PER * sizeof *ev);
    state_result *res = malloc((size_t)PER * sizeof *res);
    char(*ids)[32] = malloc(PER * sizeof *ids), (*times)[32] = malloc(PER * sizeof *times);
    char cid[32];
    if (!ev || !res || !ids || !times) {
        fprintf(stderr, "bench_redis_read: out of memory\n");
        return 1;
    }
    for (long c = 0; c < nc; c++) {
        snprintf(cid, sizeof cid, "%ld", 100000 + c);
        for (int k = 0; k < PER; k++) {
            char d[11];
            date_format(day0 + (int32_t)(k * 30 + c % 30), d);
            snprintf(ids[k], sizeof ids[k], "b%ld-%d", c, k);
            snprintf(times[k], sizeof times[k], "%sT10:00:00Z", d);
            ev[k] = (state_event){ids[k], cid, times[k], NULL, NULL, 1, 10.5 + k, 0, 0, NULL};
        }
        if (rstate_apply(st, ev, PER, res, err, sizeof err) != RFM_OK) {
            fprintf(stderr, "bench_redis_read: %s\n", err);
            return 1;
        }
    }
    int32_t today = (int32_t)(time(NULL) / 86400) + 1, inside = day0 + 150;
    for (int phase = 0; phase < 2; phase++) {
        int32_t asof = phase ? inside : today;
        long found = 0;
        double u0 = cpu_s(0), s0 = cpu_s(1), w0 = now_s();
        for (long i = 0; i < reads; i++) {
            snprintf(cid, sizeof cid, "%ld", 100000 + (i * 7919) % nc);
            state_customer c;
            rfm_status s = rstate_get(st, cid, asof, &c, err, sizeof err);
            if (s != RFM_OK) {
                fprintf(stderr, "bench_redis_read: %s\n", err);
                return 1;
            }
            found += c.f.active;
        }
        double u = cpu_s(0) - u0, sy = cpu_s(1) - s0, w = now_s() - w0;
        printf("redis_read url=%s as_of=%s reads=%ld active=%ld user_us=%.2f sys_us=%.2f "
               "cpu_us=%.2f wall_us=%.1f\n",
               argv[1], phase ? "inside" : "today", reads, found, u / (double)reads * 1e6,
               sy / (double)reads * 1e6, (u + sy) / (double)reads * 1e6, w / (double)reads * 1e6);
    }
    free(ev), free(res), free(ids), free(times);
    rstate_close(st);
    return 0;
}
