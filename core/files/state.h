/* state.h - the live customer state: purchases in as events, features of
 * any customer as of any day, on disk in one SQLite file (docs/events.md).
 *
 * Workload: batches of up to a few thousand events from the daemon (tens of
 * thousands of events per second), lookups of one customer at a time (many
 * thousands per second), millions of customers. The store continues a
 * training run: state_seed loads what txn_read aggregated up to the
 * snapshot, so history is never replayed; events add to it, late ones
 * (before the snapshot) included.
 *
 * Exactness: the features state_get gives equal txn_features_asof on the
 * training file plus the events written as lines, whatever the order of
 * delivery and however often an event is delivered: the same cleaning
 * (txn_classify), distinct invoices (txn_invoice_hash within a customer),
 * repeated lines once. Spend sums differ only by rounding (summation order).
 *
 * Durability: state_apply writes a batch in one transaction and returns
 * after the commit; with synchronous FULL (the default) the WAL is fsynced
 * before, so whatever state_apply acknowledged survives kill -9 and power
 * loss. NORMAL may lose the last batches on power loss (never on a crash
 * of the process), and is faster.
 *
 * Thread safety: a state_store is one SQLite connection; calls on one
 * store must not overlap (the caller locks, or opens one store per thread:
 * SQLite's WAL lets readers run beside the one writer).
 */
#ifndef RFM_STATE_H
#define RFM_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "txn.h"

#define STATE_FORMAT 1   /* schema version, in the store's meta table */
#define STATE_ID_MAX 256 /* longest event_id, customer_id, invoice, product (bytes) */

typedef enum { STATE_SYNC_FULL = 0, STATE_SYNC_NORMAL = 1 } state_sync;

typedef struct {
    state_sync synchronous;
    uint64_t seen_ids_max;     /* event ids kept for idempotency (the newest); >= 1000 */
    const char *cancel_prefix; /* as data.cancellation_prefix; NULL or "" = none */
    uint64_t max_pages;        /* cap on the file in 4 KiB pages (0 = none): a full
                                  cap answers RFM_ENOSPC like a full disk */
    uint64_t cache_mb;         /* SQLite page cache of the connection, MiB */
} state_options;

/* Defaults: FULL, 10,000,000 ids, prefix "C", no cap, 256 MiB cache. */
void state_default_options(state_options *o);
/* Reason the options cannot be used, or NULL. */
const char *state_check_options(const state_options *o, char *buf, size_t len);

/* One event as the caller received it. Exactly one of amount (has_amount)
 * or quantity and price; an amount is a line of quantity 1. */
typedef struct {
    const char *event_id;    /* idempotency key, 1..STATE_ID_MAX bytes */
    const char *customer_id; /* normalised as in training ("17850.0" is "17850") */
    const char *time;        /* RFC 3339: 2011-12-01T08:26:00Z, an offset, or
                                none (UTC); its UTC calendar day is the day */
    const char *invoice;     /* NULL or "": the customer's calendar day */
    const char *product;     /* NULL: none; only tells lines apart */
    int has_amount;
    double amount, quantity, price;
} state_event;

typedef enum {
    STATE_APPLIED = 0,   /* a purchase, now part of the customer's state */
    STATE_IGNORED = 1,   /* accepted and recorded, but cleaning drops it (reason) */
    STATE_DUPLICATE = 2, /* event_id seen before: nothing done */
    STATE_REJECTED = 3,  /* invalid (reason): nothing recorded, may be resent fixed */
} state_outcome;

/* Reasons: numbers never change. */
typedef enum {
    STATE_OK = 0,
    STATE_BAD_EVENT_ID = 1,     /* rejected: missing, empty or too long */
    STATE_MISSING_CUSTOMER = 2, /* rejected: empty (or nan/null/none) or too long */
    STATE_BAD_TIME = 3,         /* rejected: not RFC 3339, or out of 1900-9999 */
    STATE_BAD_NUMBER = 4,       /* rejected: not finite, both or neither forms, spend
                                   above TXN_SPEND_MAX */
    STATE_BAD_TEXT = 5,         /* rejected: invoice or product too long */
    STATE_CANCELLED = 6,        /* ignored: invoice starts with the cancellation prefix */
    STATE_NONPOS_QUANTITY = 7,  /* ignored: quantity or amount 0, or negative (a return) */
    STATE_NONPOS_PRICE = 8,     /* ignored: price <= 0 */
    STATE_REPEATED_LINE = 9,    /* ignored: same customer, invoice, time, product,
                                   quantity and price as an applied event */
    STATE_NREASONS = 10
} state_reason;

typedef struct {
    state_outcome outcome;
    state_reason reason;
} state_result;

/* Stable names ("applied", ...; "bad_event_id", ...). */
const char *state_outcome_name(state_outcome o);
const char *state_reason_name(state_reason r);

typedef struct state_store state_store;

/* Open (creating) the store at path, one SQLite file plus its -wal and
 * -shm beside it. A store of another format fails with RFM_EFORMAT, a
 * file that is not SQLite with RFM_EFORMAT, no access with RFM_EIO. */
rfm_status state_open(const char *path, const state_options *opt, state_store **out, char *err,
                      size_t errlen);
/* Checkpoints the WAL and closes; NULL is fine. */
void state_close(state_store *st);

/* Snapshot day of the training run the store was seeded from; DATE_NONE
 * when never seeded. */
int32_t state_snapshot_day(const state_store *st);

/* Seed from a training run (d from txn_read, its snapshot day): in one
 * transaction every customer is reset to d's purchases, and the events on
 * or after d's snapshot are applied again (those before are taken as part
 * of d). *seeded (may be NULL) says whether anything was done: a store
 * already at this snapshot is left alone; an older snapshot than the
 * store's fails with RFM_EINVAL. */
rfm_status state_seed(state_store *st, const txn_data *d, int *seeded, char *err, size_t errlen);

/* Apply a batch in one transaction: results[i] for ev[i]. Rejected events
 * change nothing; the rest are recorded. Returns RFM_OK once the batch is
 * committed (durable as the options say). On failure nothing of the batch
 * is written and the results are meaningless: RFM_ENOSPC when the disk or
 * the cap is full, RFM_EIO otherwise; the store stays valid. */
rfm_status state_apply(state_store *st, const state_event *ev, size_t n, state_result *results,
                       char *err, size_t errlen);

typedef struct {
    txn_features f;        /* as txn_features_asof on the same purchases */
    int64_t last_event_at; /* unix seconds of the latest applied event; INT64_MIN
                              when every purchase came from training */
} state_customer;

/* A customer's features as of asof_day (purchases strictly before it, as
 * txn_features_asof). RFM_ENOTFOUND for a customer with no purchase. */
rfm_status state_get(state_store *st, const char *customer_id, int32_t asof_day,
                     state_customer *out, char *err, size_t errlen);

/* Customers in the store. */
rfm_status state_count(state_store *st, uint64_t *customers, char *err, size_t errlen);

/* feed branch (until the state branch's state_each): up to max customer
 * ids greater than after ("" or NULL: from the first), in byte order, each
 * handed to fn (borrowed for the call); *n gets how many. Page with the
 * last id given. */
rfm_status state_ids(state_store *st, const char *after, size_t max,
                     void (*fn)(void *ctx, const char *id), void *ctx, size_t *n, char *err,
                     size_t errlen);

/* PRAGMA integrity_check: RFM_OK when "ok", else RFM_EFORMAT with the
 * first problem. */
rfm_status state_check(state_store *st, char *err, size_t errlen);

/* Parse an event time: RFC 3339 date-time ("T" or a space, seconds and
 * fraction optional, "Z", an offset or none for UTC) or a plain date. On
 * success fills unix seconds and returns 1. */
int state_parse_time(const char *s, int64_t *unix_s);

#endif
