/* kafka.h - events from Kafka into the customer-state store (docs/events.md,
 * "Kafka"): one consumer thread of the group events.kafka.group_id reads
 * events.kafka.topic, each message one event of the POST /events item
 * schema, and applies them in batches through live_apply_items, the path
 * POST /events takes (one parser, the same group commit and lock).
 *
 * At least once in, exactly once in effect: offsets are committed by hand
 * (enable.auto.commit and enable.auto.offset.store off) only after the
 * batch is durable in the store; a message delivered again (a crash
 * between apply and commit, a rebalance) is a duplicate by its event_id.
 * A poison message (not JSON, or an event the store rejects) is counted,
 * logged with its partition and offset, produced to
 * events.kafka.dead_letter_topic when set (headers rfm-error, rfm-reason,
 * rfm-source), and committed with its batch: it never stalls a partition.
 * A store that cannot take a batch (disk full, I/O) stops the consumer on
 * that batch, retried every second, nothing committed past it.
 *
 * Threads: kafka_start starts the consumer thread; kafka_ready and
 * kafka_metrics may be called from any thread; kafka_stop from the one
 * that started it, before live_close.
 *
 * The other way, kafka_scores: every change record of the live feed
 * (livefeed.h; the JSON of a GET /feed data line) produced to
 * events.kafka.scores_topic, keyed by customer id, with the header
 * rfm-feed-id (the record's id on GET /feed). Producing never blocks the
 * thread that applies events: a record goes into librdkafka's queue
 * (events.kafka.scores_queue_max records at most) or, when it is full, is
 * dropped and counted. Delivery reports (a thread of its own polls them)
 * count records produced (acknowledged by the broker) and failed (given
 * up after message.timeout.ms). Idempotent producer: retries neither
 * repeat nor reorder a customer's records.
 */
#ifndef RFM_KAFKA_H
#define RFM_KAFKA_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "feed.h"
#include "live.h"
#include "status.h"

typedef struct kafka kafka;

/* Start consuming o->topic into l (which must outlive the consumer). Fails
 * (RFM_EINVAL, naming the setting) when librdkafka refuses the settings;
 * brokers down is not a failure: librdkafka reconnects by itself. */
rfm_status kafka_start(const kafka_options *o, live *l, kafka **out, char *err, size_t errlen);

/* Stop: finish the batch in hand, commit what is durable, leave the group
 * and close. NULL is fine. */
void kafka_stop(kafka *k);

/* 1 while the consumer's total lag (the partitions' high watermarks minus
 * the offsets committed) is at most events.kafka.ready_max_lag, else 0;
 * *lag gets the total, *max the setting. */
int kafka_ready(kafka *k, long long *lag, long long *max);

/* Prometheus text: lag per partition, messages by result, poison by
 * reason, dead letters, commits, rebalances, librdkafka errors. */
void kafka_metrics(kafka *k, FILE *f);

typedef struct kafka_scores kafka_scores;

/* Produce every record of f from now on to o->scores_topic (o->brokers,
 * o->properties). Fails (RFM_EINVAL, naming the setting) when librdkafka
 * refuses the settings; brokers down is not a failure. The subscription
 * lasts as long as f: call kafka_scores_stop only once f publishes no
 * more (after livefeed_free). */
rfm_status kafka_scores_start(const kafka_options *o, feed *f, kafka_scores **out, char *err,
                              size_t errlen);

/* Wait up to timeout_ms for the records queued to be delivered, then
 * close (what is left is counted failed). NULL is fine. */
void kafka_scores_stop(kafka_scores *s, int timeout_ms);

/* Prometheus text: records by result (produced, failed, dropped) and the
 * queue. Thread-safe. */
void kafka_scores_metrics(kafka_scores *s, FILE *f);

#endif
