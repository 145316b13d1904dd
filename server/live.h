/* live.h - the daemon's side of the customer-state store (core/files/
 * state.h, docs/events.md): one writer thread that commits the batches of
 * concurrent POST /events requests together (group commit: one
 * transaction and one fsync for all the requests waiting, each answered
 * after it), reads for GET /customers/{id} and the by-id scoring calls
 * (from memory, never waiting for a commit's fsync), seeding from the
 * training data behind models/, and the counters /metrics shows.
 *
 * Threads: live_apply and live_get may be called from every worker thread
 * at once; live_seed from the main thread while serving (SIGHUP). A
 * request of live_apply blocks its worker thread until its events are
 * durable: server.threads bounds how many requests one commit can merge.
 */
#ifndef RFM_LIVE_H
#define RFM_LIVE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "event.h"
#include "state.h"
#include "state_redis.h"
#include "status.h"
#include "txn.h"

typedef struct live live;

/* Open the store at path and start the writer thread. A path redis://...
 * is the Redis store (state_redis.h, with ropt; NULL: defaults), shared
 * with other replicas; anything else the SQLite file (created, not its
 * folder). */
rfm_status live_open(const char *path, const state_options *opt, const rstate_options *ropt,
                     live **out, char *err, size_t errlen);
/* Stop the writer (after the commit in progress) and close; NULL is fine. */
void live_close(live *l);

/* Seed the store from the training run behind manifest (models/
 * manifest.json) when its snapshot_date is newer than the store's: the
 * transactions file it names (data.transactions.path) is read again with
 * topt and must still have the sha256 the models were trained on; else
 * RFM_EDATA naming the file. A manifest trained from a customer summary,
 * a database or standard input cannot seed (RFM_EINVAL, saying so).
 * *seeded says whether anything was done. Serialised with the writer. */
rfm_status live_seed(live *l, const json_t *manifest, const txn_options *topt, int *seeded,
                     char *err, size_t errlen);

/* Apply a batch of events durably, merged with the batches of other
 * requests waiting (group commit); blocks until committed. Results as
 * state_apply. The one way events reach the store: the hook (live_hook)
 * runs around it. RFM_ENOSPC on a full disk (nothing of the batch written). */
rfm_status live_apply(live *l, const state_event *ev, size_t n, state_result *results, char *err,
                      size_t errlen);

/* What live_apply calls around every batch, whoever applies it (POST
 * /events and the Kafka consumer, both through live_apply_items): before(ctx, ev, n) before the
 * batch is queued (the state still without it; its result is handed back), after once it is
 * committed or failed (s), on the applying thread. The live feed (livefeed.h) scores the touched
 * customers there. Set before serving; before may return NULL. */
typedef struct {
    void *(*before)(void *ctx, const state_event *ev, size_t n);
    void (*after)(void *ctx, void *token, const state_event *ev, const state_result *res, size_t n,
                  rfm_status s);
    void *ctx;
} live_hook;
void live_set_hook(live *l, const live_hook *h);

/* What became of one item of live_apply_items. */
typedef struct {
    state_outcome outcome;
    state_reason reason; /* STATE_OK when applied */
    const char *why;     /* rejected: why, a static message; else NULL */
} live_item;

/* The one way events come in (POST /events items, Kafka messages): each
 * items[i] parsed as one event (event_from_json, core/serving/event.h),
 * those that parse applied durably with live_apply, out[i] for items[i].
 * An item is rejected alone, by its JSON types or by state_apply, and
 * counted in the metrics either way. Returns live_apply's status: on
 * failure nothing of the batch was written and out means nothing. */
rfm_status live_apply_items(live *l, const json_t *const *items, size_t n, live_item *out,
                            char *err, size_t errlen);

/* The same for a POST /events body read without a JSON tree
 * (event_batch_read, event.h, with the kinds of live_types): b's items
 * already parsed, the rest as live_apply_items. */
rfm_status live_apply_batch(live *l, const event_batch *b, live_item *out, char *err,
                            size_t errlen);
/* The interaction kinds events are read with (events.types), or NULL. */
const engagement_options *live_types(const live *l);

/* Every customer of the store with its features as of asof_day
 * (state_each: in the order they first appeared, fn called with no lock
 * held, so it may call live_get), from any thread. */
/* Whether live_each can walk the store (the SQLite store; not Redis). */
int live_can_walk(const live *l);
rfm_status live_each(live *l, int32_t asof_day, state_each_fn fn, void *user, char *err,
                     size_t errlen);
/* Erase a customer from the store (state_erase), serialised with the
 * commits and the seeding. RFM_ENOTFOUND when the store has no such
 * customer (erased already). */
rfm_status live_erase(live *l, const char *customer_id, char *err, size_t errlen);

/* A customer as of asof_day (state_get), from any thread. */
rfm_status live_get(live *l, const char *customer_id, int32_t asof_day, state_customer *out,
                    char *err, size_t errlen);

/* Snapshot day the store was seeded from (DATE_NONE: never). */
int32_t live_snapshot_day(live *l);

/* Count events rejected before they reach the store (bad JSON types), by
 * reason, as state_apply's rejections are counted. */
void live_count_rejected(live *l, state_reason r);

/* Prometheus text of the counters: events by outcome and reason, commit
 * and lookup latency histograms, events per commit, customers in state. */
void live_metrics(live *l, FILE *f);

#endif
