/* state_event.h - the pure part of the customer-state stores: one event's
 * time, validation and cleaning, and its keys (docs/events.md). Shared by
 * the SQLite store (state.h) and the Redis one (state_redis.h), so both
 * decide alike what an event is and which purchase it adds.
 *
 * Pure functions, no state: thread-safe.
 */
#ifndef RFM_STATE_EVENT_H
#define RFM_STATE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "state.h"

/* One usable event line: normalised customer id (pointing into the event's
 * text), purchase day (UTC), time (unix seconds), invoice key (txn_invoice_key
 * within the customer), line hash (invoice, time, product, quantity, price:
 * what makes a repeated line) and spend. */
typedef struct {
    const char *cid;
    size_t cidlen;
    int32_t day;
    int64_t at;
    uint64_t ih, lh;
    double spend;
} state_line;

/* The outcome of one event before the store looks at it: REJECTED with its
 * reason, IGNORED with its reason (cancelled, non-positive), or APPLIED
 * with *l filled (the store then decides duplicate or repeated line). The
 * cleaning is txn_classify's, in the order of the trainer's report.
 * cancel_prefix NULL or "" is none. For an event of a monetary kind. */
state_result state_classify(const state_event *e, const char *cancel_prefix, state_line *l);

/* An interaction (an event of a kind that is not monetary): event id,
 * customer id and time checked (REJECTED with the reason), else APPLIED
 * with l's cid, cidlen, day and at (the rest of the event is not read). */
state_result state_classify_interaction(const state_event *e, state_line *l);

/* An event of a kind not in options.types: REJECTED, STATE_BAD_TYPE (or
 * STATE_BAD_EVENT_ID when its id is unusable too). */
state_result state_bad_type(const state_event *e);

/* The UTC day of unix seconds. */
int32_t state_day_of(int64_t secs);

/* A customer id normalised as in training ("17850.0" is "17850"): 1 with
 * *cid (into customer_id) and *len, 0 for a missing one (empty, nan...). */
int state_norm_id(const char *customer_id, const char **cid, size_t *len);

#endif
