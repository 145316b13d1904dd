/* state.h - the live customer state: purchases in as events, features of
 * any customer as of any day (docs/events.md).
 *
 * Workload: batches of up to a few thousand events from the daemon (tens of
 * thousands of events per second), lookups of one customer at a time (many
 * thousands per second, from many threads), millions of customers. The
 * store continues a training run: state_seed loads what txn_read
 * aggregated up to the snapshot, so history is never replayed; events add
 * to it, late ones (before the snapshot) included.
 *
 * Design: every customer is held in memory (its purchase days, invoices
 * and the hashes of its event lines: what the features and the cleaning
 * rules need), with the seen event ids. On disk, one SQLite file: a batch
 * is one appended row of an event log (its ids and its lines), so a commit
 * writes a few pages and one fsync; customer rows are folded from memory a
 * slice at a time in the same transactions, and an open loads the rows and
 * replays only the log after the last completed fold.
 *
 * Exactness: the features state_get gives equal txn_features_asof on the
 * training file plus the events written as lines, whatever the order of
 * delivery and however often an event is delivered: the same cleaning
 * (txn_classify), distinct invoices (txn_invoice_hash within a customer),
 * repeated lines once. Spend sums differ only by rounding (summation order).
 *
 * Durability: state_apply returns after the batch's transaction is
 * committed; with synchronous FULL (the default) the WAL is fsynced before,
 * so whatever state_apply acknowledged survives kill -9 and power loss.
 * NORMAL may lose the last batches on power loss (never on a crash of the
 * process), and is faster. Memory changes only after the commit: a reader
 * never sees an event that is not on disk.
 *
 * Thread safety: one writer at a time (state_apply, state_seed and
 * state_close must not overlap: the caller serialises them); state_get,
 * state_each, state_count and state_snapshot_day may be called from any
 * number of threads at once, also while the writer runs: they take a read
 * lock the writer holds only while it changes memory after a commit (never
 * across a disk write or an fsync).
 */
#ifndef RFM_STATE_H
#define RFM_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "engagement.h"
#include "status.h"
#include "txn.h"

#define STATE_FORMAT 2   /* schema version, in the store's meta table */
#define STATE_ID_MAX 256 /* longest event_id, customer_id, invoice, product (bytes) */

typedef enum { STATE_SYNC_FULL = 0, STATE_SYNC_NORMAL = 1 } state_sync;

typedef struct {
    state_sync synchronous;
    uint64_t seen_ids_max;           /* event ids kept for idempotency (the newest); >= 1000 */
    const char *cancel_prefix;       /* as data.cancellation_prefix; NULL or "" = none */
    uint64_t max_pages;              /* cap on the file in 4 KiB pages (0 = none): a full
                                        cap answers RFM_ENOSPC like a full disk */
    uint64_t cache_mb;               /* SQLite page cache of the connection, MiB */
    uint64_t fold_events;            /* events between two complete folds of the customer
                                        rows at most, so at most about twice this many are
                                        replayed at an open after a crash; >= 1000 */
    const engagement_options *types; /* interaction kinds (copied at open); NULL:
                                        engagement_default_options */
    /* The erasure list (erasure.h; NULL: none): a customer id (normalised,
     * as kept: the pseudonym with pseudonymous ids) for which
     * is_erased(erased, id, len) is nonzero is dropped at state_open and
     * state_seed (as state_erase does), and its later events are ignored
     * (STATE_ERASED) and never stored. Called from the writer only. */
    int (*is_erased)(void *erased, const char *id, size_t len);
    void *erased;
} state_options;

/* Defaults: FULL, 10,000,000 ids, prefix "C", no cap, 256 MiB cache,
 * a fold every 250,000 events. */
void state_default_options(state_options *o);
/* Reason the options cannot be used, or NULL. */
const char *state_check_options(const state_options *o, char *buf, size_t len);

/* One event as the caller received it. A monetary kind (the default,
 * "purchase") is a purchase line: exactly one of amount (has_amount) or
 * quantity and price; an amount is a line of quantity 1. Another kind is
 * an interaction: event_id, customer_id and time only (the rest is not
 * read). */
typedef struct {
    const char *event_id;    /* idempotency key, 1..STATE_ID_MAX bytes */
    const char *customer_id; /* normalised as in training ("17850.0" is "17850") */
    const char *time;        /* RFC 3339: 2011-12-01T08:26:00Z, an offset, or
                                none (UTC); its UTC calendar day is the day */
    const char *invoice;     /* NULL or "": the customer's calendar day */
    const char *product;     /* NULL: none; only tells lines apart */
    int has_amount;
    double amount, quantity, price;
    const char *type; /* the kind's name (options.types); NULL: "purchase" */
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
    STATE_BAD_TYPE = 10,        /* rejected: a kind not in options.types */
    STATE_ERASED = 11,          /* ignored: the customer is on the erasure list
                                   (options.is_erased); its event id is kept (as a hash,
                                   for idempotency), nothing of the event else */
    STATE_NREASONS = 12
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
 * -shm beside it, and load it into memory: the customer rows, the newest
 * seen_ids_max event ids, and the log after the last completed fold
 * replayed. A store of another format fails with RFM_EFORMAT, a file that
 * is not SQLite (or a damaged row) with RFM_EFORMAT, no access with
 * RFM_EIO, no memory with RFM_ENOMEM. */
rfm_status state_open(const char *path, const state_options *opt, state_store **out, char *err,
                      size_t errlen);
/* Folds every changed customer into its row (so the next open replays
 * nothing), checkpoints the WAL and closes; NULL is fine. A failure of the
 * fold loses nothing: the next open replays the log. */
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

/* Erase a customer (right to be forgotten; docs/security.md): in one
 * transaction its row and every line of it in the log (the log rows
 * rewritten without them), so that no open, replay or re-seed can bring
 * it back; then from memory (purchases, invoices, line hashes,
 * interactions); then the WAL checkpointed into the file (truncated), and
 * deleted content is zeroed (SQLite secure_delete), so that its id is in
 * neither file afterwards. RFM_ENOTFOUND for a customer not in the store
 * (erased already: erasing is idempotent); RFM_ENOSPC, RFM_EIO as
 * state_apply, nothing changed. Serialised with the writer (state_apply). */
rfm_status state_erase(state_store *st, const char *customer_id, char *err, size_t errlen);

typedef struct {
    txn_features f;        /* as txn_features_asof on the same purchases */
    int64_t last_event_at; /* unix seconds of the latest applied event; INT64_MIN
                              when every purchase came from training */
    /* Interactions before the as-of day, by kind of options.types (same
     * index): a purchase is one per distinct invoice (of the kind of its
     * earliest-coded line: see docs/events.md), another kind one per
     * event. interactions and weighted sum them (weighted with the kinds'
     * weights); last_interaction_day is the latest day of one (DATE_NONE:
     * none). A kind no longer in the config is not counted. */
    double type_count[ENGAGEMENT_TYPES_MAX];
    double interactions, weighted;
    int32_t last_interaction_day;
} state_customer;

/* A customer's features as of asof_day (purchases strictly before it, as
 * txn_features_asof). RFM_ENOTFOUND for a customer with no purchase. */
rfm_status state_get(state_store *st, const char *customer_id, int32_t asof_day,
                     state_customer *out, char *err, size_t errlen);

/* Every customer of the store, in the order they first appeared, with
 * its features as of asof_day (as state_get; c->f.active is 0 for one
 * with no purchase before the day): fn(user, customer_id, c) for each,
 * the pointers valid during the call only; fn returns nonzero to stop
 * early (RFM_OK). A failed read stops with its status (RFM_EIO, ...). */
typedef int (*state_each_fn)(void *user, const char *customer_id, const state_customer *c);
rfm_status state_each(state_store *st, int32_t asof_day, state_each_fn fn, void *user, char *err,
                      size_t errlen);

/* Customers in the store. */
rfm_status state_count(state_store *st, uint64_t *customers, char *err, size_t errlen);

/* PRAGMA integrity_check: RFM_OK when "ok", else RFM_EFORMAT with the
 * first problem. Serialised with the writer (it reads the file). */
rfm_status state_check(state_store *st, char *err, size_t errlen);

/* Parse an event time: RFC 3339 date-time ("T" or a space, seconds and
 * fraction optional, "Z", an offset or none for UTC) or a plain date. On
 * success fills unix seconds and returns 1. */
int state_parse_time(const char *s, int64_t *unix_s);

#endif
