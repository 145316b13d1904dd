/* bench.h - what the bench programs share: a monotonic clock and the
 * usual start (config, then the transaction file without products). */
#ifndef RFM_BENCH_H
#define RFM_BENCH_H

#include <stdio.h>
#include <time.h>

#include "config.h"
#include "txn.h"

static inline double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* `name CONFIG FILE`: load both. On failure prints why and returns the
 * exit status (2 usage or config, 1 data); 0 on success. */
static inline int bench_load(int argc, char **argv, const char *name, rfm_config **cfg,
                             txn_data **d)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s CONFIG FILE\n", name);
        return 2;
    }
    char err[RFM_ERRLEN];
    txn_report rep;
    if (config_load(argv[1], cfg, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    (*cfg)->txn.product = NULL;
    if (txn_read(argv[2], &(*cfg)->txn, NULL, NULL, d, &rep, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "%s\n", err);
        config_free(*cfg);
        return 1;
    }
    return 0;
}

#endif
