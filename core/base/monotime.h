/* monotime.h - seconds on the monotonic clock, for durations (progress,
 * timeouts, latencies): it never jumps with the wall clock. Not a time of
 * day. Thread-safe. */
#ifndef RFM_MONOTIME_H
#define RFM_MONOTIME_H

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC), with
 * nanosecond resolution. */
double monotime_s(void);

#endif
