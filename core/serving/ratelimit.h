/* ratelimit.h - token buckets keyed by a 32-byte key (a bearer token's
 * sha256), for rate limits per client.
 *
 * Each key has a bucket of `burst` requests, refilled at `rate` requests
 * per second; a request takes one from it or is refused with the time
 * until one is there. A key's bucket starts full when first seen.
 *
 * Threads: buckets live in 16 shards (by the key's first byte), each with
 * its own mutex, so requests of different tokens rarely wait on each
 * other. Time is passed in by the caller (seconds on a monotonic clock),
 * which keeps the arithmetic testable.
 * Workload: one call per authenticated request; the keys are the known
 * tokens' digests (a handful to thousands), so buckets are never evicted.
 * If a new bucket cannot be allocated the request is admitted: running
 * out of memory must not lock every client out.
 * Non-goals: distributed limits across replicas, per-IP limits.
 */
#ifndef RFM_RATELIMIT_H
#define RFM_RATELIMIT_H

#include <stdint.h>

typedef struct ratelimit ratelimit;

/* rate > 0 requests per second, burst >= 1. NULL when out of memory or
 * out of range. */
ratelimit *ratelimit_new(double rate, double burst);
void ratelimit_free(ratelimit *rl);

/* Take one request for key at time now. Returns 0 when admitted, else the
 * seconds until the bucket holds one request again (> 0). Thread-safe. */
double ratelimit_take(ratelimit *rl, const uint8_t key[32], double now);

#endif
