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
 */
#ifndef RFM_KAFKA_H
#define RFM_KAFKA_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
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

#endif
