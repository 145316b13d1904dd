/* livefeed.h - the daemon's live feed of score changes (docs/events.md,
 * "Live feed"): the hook around every event batch (live_hook: score the
 * touched customers before and after, publish what changed), the sweep
 * that re-scores every customer as days pass, and GET /feed, a
 * Server-Sent Events stream per reader over core/serving/feed.
 *
 * Streams and threads: libmicrohttpd runs a pool of server.threads event
 * loops, each serving many connections. A stream never blocks one: when it
 * has nothing to send, its connection is suspended (MHD_suspend_connection,
 * out of the event loop, no thread held) and resumed when a record is
 * published, at each heartbeat, or when the server stops. A reader copies
 * records out of the ring under its lock and formats and sends them
 * without it, so readers never hold up the writers.
 *
 * Threads: the hook runs on the threads that apply events; the sweep on its
 * own thread; the stream callbacks on the pool's. All state here is behind
 * one mutex (the readers' list) or in the feed (its own locks).
 */
#ifndef RFM_LIVEFEED_H
#define RFM_LIVEFEED_H

#include <stdio.h>

#include "config.h"
#include "feed.h"
#include "http.h"
#include "live.h"

typedef struct livefeed livefeed;

/* The feed of o. lv (may be NULL, as when o->enabled is 0: GET /feed then
 * answers 503, no hook, no sweep) gets the batch hook; models hands out the api now serving
 * (main.c's provider, whose user is an api *). Starts the heartbeat and,
 * with a store and o->sweep_seconds > 0, the sweep thread. */
rfm_status livefeed_new(const feed_options *o, live *lv, const http_provider *models,
                        livefeed **out, char *err, size_t errlen);
/* Stop the threads and free; after the HTTP server has stopped. NULL is fine. */
void livefeed_free(livefeed *lf);

/* The GET /feed route for http_provider.stream (owned by lf). */
const http_stream *livefeed_stream(livefeed *lf);

/* The ring and its subscriber hook (feed_subscribe): where another output
 * (a Kafka scores topic) takes each record. */
feed *livefeed_feed(livefeed *lf);

/* Re-score every customer as of today against its last published labels
 * (or its scores as of the last sweep's day) and publish the changes; what
 * the sweep thread runs. *scored gets how many were scored. */
rfm_status livefeed_sweep(livefeed *lf, size_t *scored, char *err, size_t errlen);

/* Prometheus text: records, gaps, readers, sweeps. Thread-safe. */
void livefeed_metrics(livefeed *lf, FILE *f);

#endif
