/* bench_ingest - time ingest, RFM and segments on one file, in-process.
 *
 * usage: bench_ingest CONFIG FILE   (FILE: a path, - or a database URL, source.h)
 * Prints one line: lines, customers, seconds per phase, lines per second,
 * and this process's peak resident memory, so a driver can run it once per
 * input and compare. Same code path as bin/rfm-train, without writing files:
 * the read on the online cores (RFM_THREADS=N sets the number, 1 = the
 * one-thread path), ingest_cpu_s the CPU time of the read on all threads,
 * ingest_main_cpu_s that of the calling thread alone (on a loaded machine,
 * where wall time says little, the longer of it and the reader thread's
 * is the read's critical path).
 */
#include <gsl/gsl_errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "config.h"
#include "segments.h"
#include "source.h"
#include "txn.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_ingest CONFIG FILE\n");
        return 2;
    }
    gsl_set_error_handler_off();
    char err[RFM_ERRLEN];
    rfm_config *cfg;
    if (config_load(argv[1], &cfg, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    double t0 = now_s();
    txn_data *d;
    txn_report rep;
    /* FILE may be a database URL (data.query from CONFIG), as in rfm-train. */
    source_kind sk = source_kind_of(argv[2]);
    csv_reader *csv = NULL;
    rfm_status st =
        source_open(argv[2], sk == SOURCE_POSTGRESQL || sk == SOURCE_SQLITE ? cfg->query : NULL,
                    &csv, err, sizeof err);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->txn.threads = getenv("RFM_THREADS") ? atoi(getenv("RFM_THREADS"))
                       : ncpu > 16           ? 16
                                             : (int)ncpu;
    struct rusage ru0, rt0;
    getrusage(RUSAGE_SELF, &ru0);
    getrusage(RUSAGE_THREAD, &rt0);
    if (st == RFM_OK)
        st = txn_read_csv(csv, &cfg->txn, NULL, NULL, &d, &rep, err, sizeof err);
    struct rusage ru1, rt1;
    getrusage(RUSAGE_SELF, &ru1);
    getrusage(RUSAGE_THREAD, &rt1);
    csv_close(csv);
    if (st != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double t1 = now_s();
    size_t n = txn_ncustomers(d), m = 0;
    txn_features *f = calloc(n, sizeof *f);
    double *r = malloc(n * sizeof *r), *fr = malloc(n * sizeof *fr), *mo = malloc(n * sizeof *mo);
    txn_features_asof(d, txn_snapshot_day(d), f);
    for (size_t i = 0; i < n; i++)
        if (f[i].active) {
            r[m] = f[i].recency, fr[m] = f[i].frequency, mo[m] = f[i].monetary;
            m++;
        }
    double t2 = now_s();
    segments_model *s;
    if (segments_fit(r, fr, mo, m, &cfg->segments, &s, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double t3 = now_s();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
#define CPU_S(r)                                                                                   \
    ((double)(r).ru_utime.tv_sec + (double)(r).ru_utime.tv_usec / 1e6 +                            \
     (double)(r).ru_stime.tv_sec + (double)(r).ru_stime.tv_usec / 1e6)
    printf("lines=%llu customers=%zu ingest_s=%.3f features_s=%.3f segments_s=%.3f total_s=%.3f "
           "mlines_per_s=%.2f peak_rss_mb=%.1f k=%zu threads=%d ingest_cpu_s=%.3f "
           "ingest_main_cpu_s=%.3f parts=%llu reread=%llu\n",
           (unsigned long long)rep.lines, m, t1 - t0, t2 - t1, t3 - t2, t3 - t0,
           (double)rep.lines / (t1 - t0) / 1e6, (double)ru.ru_maxrss / 1024.0,
           segments_nclusters(s), cfg->txn.threads, CPU_S(ru1) - CPU_S(ru0),
           CPU_S(rt1) - CPU_S(rt0), (unsigned long long)rep.parts, (unsigned long long)rep.rereads);
    segments_free(s);
    free(f), free(r), free(fr), free(mo);
    txn_free(d);
    config_free(cfg);
    return 0;
}
