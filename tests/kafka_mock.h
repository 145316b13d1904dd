/* kafka_mock.h - a Kafka cluster for the tests with no JVM: librdkafka's
 * mock cluster (rdkafka_mock.h), which speaks the Kafka protocol on a
 * loopback port, plus a real producer. The cluster lives in this process:
 * keep the handle while daemons (and kcat) connect to kmock_bootstraps.
 * Link with -lrdkafka. */
#ifndef RFM_TEST_KAFKA_MOCK_H
#define RFM_TEST_KAFKA_MOCK_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    rd_kafka_t *owner; /* the handle the cluster hangs on */
    rd_kafka_mock_cluster_t *cluster;
    rd_kafka_t *producer;
    char bootstraps[256];
} kmock;

/* A one-broker cluster and a producer connected to it; NULL on failure. */
static inline kmock *kmock_start(void)
{
    kmock *m = calloc(1, sizeof *m);
    char why[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "log_level", "3", why, sizeof why);
    if (!(m->owner = rd_kafka_new(RD_KAFKA_PRODUCER, c, why, sizeof why)) ||
        !(m->cluster = rd_kafka_mock_cluster_new(m->owner, 1)))
        return NULL;
    snprintf(m->bootstraps, sizeof m->bootstraps, "%s",
             rd_kafka_mock_cluster_bootstraps(m->cluster));
    c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", m->bootstraps, why, sizeof why) ||
        rd_kafka_conf_set(c, "linger.ms", "5", why, sizeof why) ||
        !(m->producer = rd_kafka_new(RD_KAFKA_PRODUCER, c, why, sizeof why)))
        return NULL;
    return m;
}

static inline int kmock_topic(kmock *m, const char *topic, int partitions)
{
    return rd_kafka_mock_topic_create(m->cluster, topic, partitions, 1) == 0 ? 0 : -1;
}

/* One message to topic's partition (RD_KAFKA_PARTITION_UA: by key); 0 when
 * queued. kmock_flush waits for every message to be acknowledged. */
static inline int kmock_produce(kmock *m, const char *topic, int32_t partition, const char *key,
                                const void *value, size_t len)
{
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(
                m->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, len),
                RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(m->producer, 10);
    return e ? -1 : 0;
}

static inline int kmock_flush(kmock *m)
{
    return rd_kafka_flush(m->producer, 30000) == 0 && rd_kafka_outq_len(m->producer) == 0 ? 0 : -1;
}

/* Every OffsetCommit answered with an error from now on (on), or again
 * normally (off): a consumer can read and apply but not commit. */
static inline void kmock_fail_commits(kmock *m, int on)
{
    enum { OFFSET_COMMIT = 8, N = 100000 };
    if (on) {
        static rd_kafka_resp_err_t errs[N];
        for (size_t i = 0; i < N; i++)
            errs[i] = RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE;
        rd_kafka_mock_push_request_errors_array(m->cluster, OFFSET_COMMIT, N, errs);
    } else {
        rd_kafka_mock_clear_request_errors(m->cluster, OFFSET_COMMIT);
    }
}

static inline void kmock_stop(kmock *m)
{
    if (!m)
        return;
    rd_kafka_flush(m->producer, 5000);
    rd_kafka_destroy(m->producer);
    rd_kafka_mock_cluster_destroy(m->cluster);
    rd_kafka_destroy(m->owner);
    free(m);
}

#endif
