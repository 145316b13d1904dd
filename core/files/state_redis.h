/* state_redis.h - the customer-state store kept in Redis, shared by every
 * replica of the daemon (docs/events.md, "Redis"; docs/scaling.md).
 *
 * The same contract as state.h, call for call (rstate_open ... rstate_close
 * mirror state_open ... state_close): the same events, outcomes, cleaning
 * (state_event.h), as-of rule and exactness, so that the same events give
 * the same customers in SQLite and in Redis. What differs:
 *   - the store is a Redis server named by a URL, redis://[:PASSWORD@]HOST
 *     [:PORT][/DB], or redis+unix://[:PASSWORD@]/PATH[?db=N] for its Unix
 *     socket (a server on the same machine: about a third less system time
 *     per call than TCP on the loopback); any number of daemons may use it
 *     at once, and each sees every other's events as soon as they are
 *     acknowledged;
 *   - event ids are kept per customer (the newest seen_per_customer of each
 *     customer), so an event_id is the idempotency key of one customer's
 *     event: the same id under two customers is two events (in SQLite the
 *     second is a duplicate);
 *   - durability is the server's: rstate_apply returns once Redis answered
 *     the script, so a batch is in the server's memory and its append-only
 *     file (written, fsynced every second or before the answer with
 *     appendfsync always); see docs/events.md.
 *
 * Layout (prefix "rfm:", every key of a customer hash-tagged with its id):
 *   rfm:{ID}:c  hash   fd, ld first and last purchase day, nd distinct days,
 *                      ni distinct invoices, m spend, fs spend of the first
 *                      day, at latest event time (unix s)
 *   rfm:{ID}:d  hash   day -> spend that day
 *   rfm:{ID}:i  hash   invoice key (hex) -> its earliest day
 *   rfm:{ID}:l  hash   line hash (hex) -> "invoice day time spend": every
 *                      applied event, for repeated lines and re-seeding
 *   rfm:{ID}:s  zset   event id -> sequence (from rfm:seq): the seen ids
 *   rfm:customers set  ids of the customers with a purchase
 *   rfm:seq     string the last sequence number given to an event id
 *                      (one INCRBY a batch)
 *   rfm:meta    hash   format, snapshot_day
 *   rfm:seedlock       the replica seeding (SET NX PX, refreshed)
 * A batch is one Lua script (EVALSHA of a script loaded at connect, loaded
 * again on NOSCRIPT) with the duplicate check inside: it runs alone on the
 * server, so concurrent replicas never interleave within a batch.
 *
 * Failure: every call waits at most timeout_ms for the server; a call that
 * fails (refused, timed out, closed) answers RFM_EIO naming the URL and
 * drops the connection, and the next call connects again. Nothing is
 * retried inside: the caller (the daemon's client) resends a batch it got
 * no success for, and what did commit comes back as duplicates. A server
 * out of memory (maxmemory) refuses a batch whole: RFM_ENOSPC.
 *
 * Thread safety: an rstate is one connection; calls on one must not
 * overlap (the caller locks, or opens one per thread).
 */
#ifndef RFM_STATE_REDIS_H
#define RFM_STATE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "engagement.h"
#include "state.h"
#include "status.h"
#include "txn.h"

#define RSTATE_FORMAT 1 /* layout version, in rfm:meta */
#define RSTATE_SCRIPT_MAX                                                                          \
    10000 /* events one script applies at most (a larger                                           \
             call is cut into several, in order) */

typedef struct {
    int timeout_ms;                  /* connect, and each answer; 1..600000 */
    uint64_t seen_per_customer;      /* event ids kept per customer (the newest); >= 10 */
    const char *cancel_prefix;       /* as data.cancellation_prefix; NULL or "" = none */
    const char *prefix;              /* key prefix, default "rfm:" (tests use their own) */
    const engagement_options *types; /* events.types (copied at open); NULL:
                                        engagement_default_options */
} rstate_options;

/* Kinds of events: the Redis store keeps purchases of one kind, the kind
 * seeded purchases are given in SQLite (the default kind "purchase" when
 * it is monetary, else the first monetary kind of events.types). An event
 * of any other kind of the config, an interaction (web_visit, lead...) or
 * a second monetary kind, is REJECTED with STATE_BAD_TYPE, and a kind not
 * in the config as in SQLite: the message below says why. So the
 * engagement fields of rstate_get count purchases only, as SQLite's do for
 * the same events: type_count of the purchase kind and interactions are
 * the distinct invoices before the day (the frequency), weighted that
 * times the kind's weight, last_interaction_day the latest purchase day
 * before it. */
#define RSTATE_TYPE_REFUSAL                                                                        \
    "type: the Redis store (state.path redis://) keeps purchases only; interactions and other "    \
    "kinds need the SQLite store (docs/events.md)"

/* Defaults: 1000 ms, 10,000 ids a customer, prefix "C", keys "rfm:". */
void rstate_default_options(rstate_options *o);
/* Reason the options cannot be used, or NULL. */
const char *rstate_check_options(const rstate_options *o, char *buf, size_t len);

/* Whether a state path names Redis (starts with "redis://" or
 * "redis+unix://"). */
int rstate_is_url(const char *path);

typedef struct rstate rstate;

/* Connect to the server of url (checked: a bad URL is RFM_EINVAL saying
 * why), load the scripts and read rfm:meta. A store of another format is
 * RFM_EFORMAT; a server that does not answer within timeout_ms RFM_EIO. */
rfm_status rstate_open(const char *url, const rstate_options *opt, rstate **out, char *err,
                       size_t errlen);
void rstate_close(rstate *st); /* NULL is fine */

/* Snapshot day the store was seeded from, as last read from the server
 * (at open and at rstate_seed); DATE_NONE when never seeded. */
int32_t rstate_snapshot_day(const rstate *st);

/* Seed from a training run, as state_seed: every customer reset to d's
 * purchases, the events on or after d's snapshot applied again, those
 * before dropped; a store at this snapshot is left alone, an older d is
 * RFM_EINVAL. One replica seeds (the lock rfm:seedlock, SET NX with an
 * expiry it refreshes); another one calling meanwhile waits until the
 * store shows the snapshot (*seeded 0) or the lock is free (a seeder that
 * died), for up to 10 minutes (then RFM_EBUSY). Each customer is reset
 * atomically (one script), so readers see every customer either before or
 * after; a seed cut short is finished by the next one. */
rfm_status rstate_seed(rstate *st, const txn_data *d, int *seeded, char *err, size_t errlen);

/* Apply a batch, as state_apply: results[i] for ev[i]. Up to
 * RSTATE_SCRIPT_MAX events are one script, atomic and isolated; returns
 * RFM_OK once Redis answered. On failure the results are meaningless and
 * the batch may be partly applied (only when larger than one script, or
 * when the answer was lost): sent again, what went in is duplicates. */
rfm_status rstate_apply(rstate *st, const state_event *ev, size_t n, state_result *results,
                        char *err, size_t errlen);

/* A customer's features as of asof_day, as state_get (one round trip, no
 * script: HMGET of the aggregates when asof_day is after the wall clock's
 * day, else MULTI/HMGET/HGETALL/HVALS/EXEC, the days and invoices summed
 * here). RFM_ENOTFOUND for a customer with no purchase. The hot path of
 * every replica: the commands are written and the answer parsed in
 * buffers the handle keeps (no allocation once they fit, one send and
 * usually one recv); an error answer fails this call alone, the
 * connection kept. */
rfm_status rstate_get(rstate *st, const char *customer_id, int32_t asof_day, state_customer *out,
                      char *err, size_t errlen);

/* Customers in the store (SCARD rfm:customers). */
rfm_status rstate_count(rstate *st, uint64_t *customers, char *err, size_t errlen);

/* Check the connection (PING), connecting again when needed. */
rfm_status rstate_check(rstate *st, char *err, size_t errlen);

#endif
