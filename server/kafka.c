/* kafka.c - the Kafka consumer of events (kafka.h): poll, parse, apply
 * durably, then commit. Orchestration only: the parsing and the store are
 * live_apply_items's (server/live.c, core/serving/event.c). */
#include "kafka.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "state.h"
#include "monotime.h"

/* Poison reasons: bad_json, then state_apply's rejection reasons. */
#define NPOISON (STATE_NREASONS + 1)
#define POISON_BAD_JSON 0

typedef struct {
    int32_t partition;
    int64_t committed; /* next offset to read after a restart; -1: none yet */
    int64_t high;      /* high watermark as last fetched; -1: unknown */
} part_lag;

struct kafka {
    kafka_options opt; /* strings borrowed from the config, which outlives us */
    live *live;
    rd_kafka_t *rk;  /* the consumer */
    rd_kafka_t *dlq; /* producer of dead letters, or NULL */
    pthread_t thread;
    int stop; /* atomic */
    /* The batch in hand (consumer thread only, and the rebalance callback
     * it runs inside rd_kafka_consumer_poll). */
    rd_kafka_message_t **msgs;
    size_t nmsgs;
    rd_kafka_topic_partition_list_t *pending; /* offsets durable, not yet committed */
    /* Lag per assigned partition (mu). */
    pthread_mutex_t mu;
    part_lag *parts;
    size_t nparts, capparts;
    /* Results of the messages durable but not yet committed (consumer
     * thread), added to the counters by the commit. */
    uint64_t pend_applied, pend_ignored, pend_duplicates, pend_poison[NPOISON];
    /* Counters (atomic): messages by result count once committed. */
    uint64_t applied, ignored, duplicates, poison[NPOISON];
    uint64_t commit_streak; /* failed commits in a row (consumer thread) */
    uint64_t dead_ok, dead_failed, commits_ok, commits_failed, rebalances, errors;
    uint64_t store_failures;
};

static void count(uint64_t *c, uint64_t n) { __atomic_add_fetch(c, n, __ATOMIC_RELAXED); }

static uint64_t load(const uint64_t *c) { return __atomic_load_n(c, __ATOMIC_RELAXED); }

static const char *poison_name(int r)
{
    return r == POISON_BAD_JSON ? "bad_json" : state_reason_name((state_reason)(r - 1));
}

/* ---- lag ---------------------------------------------------------------- */

static part_lag *lag_find(kafka *k, int32_t partition, int add)
{
    for (size_t i = 0; i < k->nparts; i++)
        if (k->parts[i].partition == partition)
            return &k->parts[i];
    if (!add)
        return NULL;
    if (k->nparts == k->capparts) {
        size_t cap = k->capparts ? 2 * k->capparts : 16;
        part_lag *p = realloc(k->parts, cap * sizeof *p);
        if (!p)
            return NULL;
        k->parts = p, k->capparts = cap;
    }
    k->parts[k->nparts] = (part_lag){partition, -1, -1};
    return &k->parts[k->nparts++];
}

/* The partitions of parts are now ours: their committed offsets from the
 * group coordinator. */
static void lag_assign(kafka *k, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t e = rd_kafka_committed(k->rk, c, 10000);
    pthread_mutex_lock(&k->mu);
    for (int i = 0; i < c->cnt; i++) {
        part_lag *p = lag_find(k, c->elems[i].partition, 1);
        if (p)
            p->committed = e == RD_KAFKA_RESP_ERR_NO_ERROR && c->elems[i].offset >= 0
                               ? c->elems[i].offset
                               : -1;
    }
    pthread_mutex_unlock(&k->mu);
    rd_kafka_topic_partition_list_destroy(c);
}

static void lag_revoke(kafka *k, const rd_kafka_topic_partition_list_t *parts)
{
    pthread_mutex_lock(&k->mu);
    for (int i = 0; i < parts->cnt; i++) {
        part_lag *p = lag_find(k, parts->elems[i].partition, 0);
        if (p)
            *p = k->parts[--k->nparts];
    }
    pthread_mutex_unlock(&k->mu);
}

/* High watermarks as the last fetches saw them (no request to a broker). */
static void lag_refresh(kafka *k)
{
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->nparts; i++) {
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(k->rk, k->opt.topic, k->parts[i].partition, &lo, &hi) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            hi >= 0) {
            k->parts[i].high = hi;
            if (k->parts[i].committed < 0 && lo >= 0)
                k->parts[i].committed = -1 - lo; /* nothing committed: from the low mark */
        }
    }
    pthread_mutex_unlock(&k->mu);
}

/* Offsets from the committed one (or the low watermark, -1 - committed,
 * when none) to the high watermark. */
static long long part_lag_of(const part_lag *p)
{
    if (p->high < 0)
        return 0;
    int64_t from = p->committed >= 0 ? p->committed : p->committed < -1 ? -1 - p->committed : 0;
    return p->high > from ? (long long)(p->high - from) : 0;
}

/* ---- poison and commits --------------------------------------------------- */

static void dead_letter_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    kafka *k = opaque;
    if (m->err) {
        count(&k->dead_failed, 1);
        fprintf(stderr, "rfm-serve: kafka: dead letter not delivered to %s: %s\n",
                rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    } else {
        count(&k->dead_ok, 1);
    }
}

/* A message that cannot be an event: counted, logged, and produced to the
 * dead-letter topic with the reason in its headers. */
static void poison(kafka *k, const rd_kafka_message_t *m, int reason, const char *why)
{
    k->pend_poison[reason]++;
    const char *topic = rd_kafka_topic_name(m->rkt);
    fprintf(stderr, "rfm-serve: kafka: poison message %s partition %d offset %lld: %s: %s%s\n",
            topic, (int)m->partition, (long long)m->offset, poison_name(reason), why,
            k->dlq ? " (to the dead-letter topic)" : "");
    if (!k->dlq)
        return;
    char source[320];
    snprintf(source, sizeof source, "%s/%d@%lld", topic, (int)m->partition, (long long)m->offset);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        k->dlq, RD_KAFKA_V_TOPIC(k->opt.dead_letter_topic),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(m->payload, m->len),
        RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_HEADER("rfm-error", poison_name(reason), -1),
        RD_KAFKA_V_HEADER("rfm-reason", why, -1), RD_KAFKA_V_HEADER("rfm-source", source, -1),
        RD_KAFKA_V_END);
    if (e) {
        count(&k->dead_failed, 1);
        fprintf(stderr, "rfm-serve: kafka: dead letter of %s refused: %s\n", source,
                rd_kafka_err2str(e));
    }
}

/* Commit k->pending (synchronously); on success the lag table learns the
 * offsets. A failure keeps them for the next try. */
static void commit_pending(kafka *k)
{
    if (!k->pending || k->pending->cnt == 0)
        return;
    rd_kafka_resp_err_t e = rd_kafka_commit(k->rk, k->pending, 0);
    int bad = e != RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; !bad && i < k->pending->cnt; i++)
        if (k->pending->elems[i].err)
            e = k->pending->elems[i].err, bad = 1;
    if (bad) {
        count(&k->commits_failed, 1);
        /* Tried again with each batch: logged the first time and then every 100th. */
        if (k->commit_streak++ % 100 == 0)
            fprintf(stderr,
                    "rfm-serve: kafka: commit failed (%llu in a row; the offsets are kept and "
                    "committed with the next batch): %s\n",
                    (unsigned long long)k->commit_streak, rd_kafka_err2str(e));
        for (int i = 0; i < k->pending->cnt; i++)
            k->pending->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        return;
    }
    count(&k->commits_ok, 1);
    k->commit_streak = 0;
    count(&k->applied, k->pend_applied);
    count(&k->ignored, k->pend_ignored);
    count(&k->duplicates, k->pend_duplicates);
    for (int r = 0; r < NPOISON; r++)
        count(&k->poison[r], k->pend_poison[r]), k->pend_poison[r] = 0;
    k->pend_applied = k->pend_ignored = k->pend_duplicates = 0;
    pthread_mutex_lock(&k->mu);
    for (int i = 0; i < k->pending->cnt; i++) {
        part_lag *p = lag_find(k, k->pending->elems[i].partition, 0);
        if (p && k->pending->elems[i].offset > p->committed)
            p->committed = k->pending->elems[i].offset;
    }
    pthread_mutex_unlock(&k->mu);
    rd_kafka_topic_partition_list_destroy(k->pending);
    k->pending = rd_kafka_topic_partition_list_new(8);
}

static void pending_add(kafka *k, const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_topic_partition_t *p =
        rd_kafka_topic_partition_list_find(k->pending, topic, m->partition);
    if (!p)
        p = rd_kafka_topic_partition_list_add(k->pending, topic, m->partition), p->offset = -1;
    if (m->offset + 1 > p->offset)
        p->offset = m->offset + 1;
}

/* ---- the batch -------------------------------------------------------------- */

static void drop_batch(kafka *k)
{
    for (size_t i = 0; i < k->nmsgs; i++)
        rd_kafka_message_destroy(k->msgs[i]);
    k->nmsgs = 0;
}

/* Apply the batch in hand durably, send its poison to the dead-letter
 * topic, commit. A store failure is retried every second until it goes in
 * or the consumer stops (then nothing is committed: redelivered later). */
static void process_batch(kafka *k)
{
    size_t n = k->nmsgs;
    if (n == 0) {
        commit_pending(k);
        return;
    }
    json_t **items = calloc(n, sizeof *items);
    const rd_kafka_message_t **src = calloc(n, sizeof *src);
    live_item *out = calloc(n, sizeof *out);
    if (!items || !src || !out) {
        fprintf(stderr, "rfm-serve: kafka: out of memory: batch of %zu left for redelivery\n", n);
        free(items), free(src), free(out);
        drop_batch(k);
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_message_t *msg = k->msgs[i];
        json_error_t je;
        json_t *j =
            msg->payload ? json_loadb(msg->payload, msg->len, JSON_REJECT_DUPLICATES, &je) : NULL;
        if (!j) {
            char why[256];
            if (msg->payload)
                snprintf(why, sizeof why, "not JSON: line %d column %d: %s", je.line, je.column,
                         je.text);
            else
                snprintf(why, sizeof why, "empty message (no value)");
            poison(k, msg, POISON_BAD_JSON, why);
        } else {
            items[m] = j, src[m] = msg, m++;
        }
    }
    char err[256];
    rfm_status s;
    int logged = 0;
    while ((s = live_apply_items(k->live, (const json_t *const *)items, m, out, err, sizeof err)) !=
           RFM_OK) {
        count(&k->store_failures, 1);
        if (!logged++)
            fprintf(stderr,
                    "rfm-serve: kafka: the store refused a batch of %zu events (%s): nothing "
                    "committed past it; trying again every second\n",
                    m, err);
        if (__atomic_load_n(&k->stop, __ATOMIC_RELAXED))
            break;
        sleep(1);
    }
    if (s == RFM_OK) {
        for (size_t i = 0; i < m; i++) {
            if (out[i].outcome == STATE_APPLIED)
                k->pend_applied++;
            else if (out[i].outcome == STATE_IGNORED)
                k->pend_ignored++;
            else if (out[i].outcome == STATE_DUPLICATE)
                k->pend_duplicates++;
            else
                poison(k, src[i], 1 + (int)out[i].reason, out[i].why ? out[i].why : "rejected");
        }
        /* Dead letters are delivered (or given up on, counted) before the
         * offsets behind them are committed. */
        if (k->dlq && rd_kafka_flush(k->dlq, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
            fprintf(stderr, "rfm-serve: kafka: dead letters still queued after 10 s\n");
        for (size_t i = 0; i < n; i++)
            pending_add(k, k->msgs[i]);
        commit_pending(k);
    }
    for (size_t i = 0; i < m; i++)
        json_decref(items[i]);
    free(items), free(src), free(out);
    drop_batch(k);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kafka *k = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    count(&k->rebalances, 1);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        fprintf(stderr, "rfm-serve: kafka: rebalance: %d partition(s) of %s assigned\n", parts->cnt,
                k->opt.topic);
        lag_assign(k, parts);
        if (coop)
            rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        else
            rd_kafka_assign(rk, parts);
    } else {
        /* What is in hand goes in and is committed while the partitions
         * are still ours; whatever is not is read again by the next owner. */
        fprintf(stderr, "rfm-serve: kafka: rebalance: %d partition(s) revoked\n", parts->cnt);
        process_batch(k);
        lag_revoke(k, parts);
        if (coop)
            rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
        else
            rd_kafka_assign(rk, NULL);
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    kafka *k = opaque;
    count(&k->errors, 1);
    fprintf(stderr, "rfm-serve: kafka: %s: %s\n", rd_kafka_err2name((rd_kafka_resp_err_t)err),
            reason);
}

static void *consumer_main(void *arg)
{
    kafka *k = arg;
    double last_lag = 0;
    while (!__atomic_load_n(&k->stop, __ATOMIC_RELAXED)) {
        /* Fill a batch: wait up to 100 ms for its first message (to see a
         * stop), then up to batch_wait_ms for the rest. */
        double deadline = 0;
        while (k->nmsgs < (size_t)k->opt.batch_max) {
            int wait = 100;
            if (k->nmsgs) {
                double left = deadline - monotime_s();
                if (left <= 0)
                    break;
                wait = (int)(left * 1000) + 1;
            }
            rd_kafka_message_t *msg = rd_kafka_consumer_poll(k->rk, wait);
            if (!msg) {
                if (!k->nmsgs)
                    break;
                continue;
            }
            if (msg->err) {
                if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    count(&k->errors, 1);
                    fprintf(stderr, "rfm-serve: kafka: %s\n", rd_kafka_message_errstr(msg));
                }
                rd_kafka_message_destroy(msg);
                continue;
            }
            if (!k->nmsgs)
                deadline = monotime_s() + k->opt.batch_wait_ms / 1000.0;
            k->msgs[k->nmsgs++] = msg;
        }
        process_batch(k);
        double t = monotime_s();
        if (t - last_lag > 0.1) {
            lag_refresh(k);
            last_lag = t;
        }
    }
    process_batch(k);
    rd_kafka_consumer_close(k->rk); /* revokes: the batch callback commits */
    commit_pending(k);
    return NULL;
}

/* librdkafka settings: ours, then the user's properties (which win). */
static rfm_status set(rd_kafka_conf_t *c, const char *name, const char *value, char *err,
                      size_t errlen)
{
    char why[256];
    if (rd_kafka_conf_set(c, name, value, why, sizeof why) != RD_KAFKA_CONF_OK)
        return rfm_fail(err, errlen, RFM_EINVAL, "events.kafka: %s = %s: %s", name, value, why);
    return RFM_OK;
}

static rfm_status user_props(rd_kafka_conf_t *c, const kafka_options *o, char *err, size_t errlen)
{
    for (size_t i = 0; i < o->nproperties; i++)
        if (set(c, o->properties[2 * i], o->properties[2 * i + 1], err, errlen) != RFM_OK)
            return RFM_EINVAL;
    return RFM_OK;
}

rfm_status kafka_start(const kafka_options *o, live *l, kafka **out, char *err, size_t errlen)
{
    *out = NULL;
    kafka *k = calloc(1, sizeof *k);
    if (!k)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    k->opt = *o;
    k->live = l;
    pthread_mutex_init(&k->mu, NULL);
    k->msgs = calloc((size_t)o->batch_max, sizeof *k->msgs);
    k->pending = rd_kafka_topic_partition_list_new(8);
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rfm_status s =
        k->msgs && k->pending && c ? RFM_OK : rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    /* Commits by hand only after the store; a new group starts at the
     * beginning of the topic (no event skipped). */
    if (s == RFM_OK && (s = set(c, "bootstrap.servers", o->brokers, err, errlen)) == RFM_OK &&
        (s = set(c, "group.id", o->group_id, err, errlen)) == RFM_OK &&
        (s = set(c, "client.id", "rfm-serve", err, errlen)) == RFM_OK &&
        (s = set(c, "enable.auto.commit", "false", err, errlen)) == RFM_OK &&
        (s = set(c, "enable.auto.offset.store", "false", err, errlen)) == RFM_OK &&
        (s = set(c, "auto.offset.reset", "earliest", err, errlen)) == RFM_OK)
        s = user_props(c, o, err, errlen);
    char why[512];
    if (s == RFM_OK) {
        rd_kafka_conf_set_opaque(c, k);
        rd_kafka_conf_set_rebalance_cb(c, rebalance_cb);
        rd_kafka_conf_set_error_cb(c, error_cb);
        k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, why, sizeof why);
        if (!k->rk)
            s = rfm_fail(err, errlen, RFM_EINVAL, "events.kafka: cannot make the consumer: %s",
                         why);
        else
            c = NULL; /* owned by rk now; on failure it stays ours */
    }
    if (c)
        rd_kafka_conf_destroy(c);
    if (s == RFM_OK && o->dead_letter_topic) {
        rd_kafka_conf_t *pc = rd_kafka_conf_new();
        if ((s = set(pc, "bootstrap.servers", o->brokers, err, errlen)) == RFM_OK &&
            (s = set(pc, "client.id", "rfm-serve-dead-letters", err, errlen)) == RFM_OK &&
            (s = set(pc, "enable.idempotence", "true", err, errlen)) == RFM_OK &&
            (s = user_props(pc, o, err, errlen)) == RFM_OK) {
            rd_kafka_conf_set_opaque(pc, k);
            rd_kafka_conf_set_dr_msg_cb(pc, dead_letter_cb);
            rd_kafka_conf_set_error_cb(pc, error_cb);
            if (!(k->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, pc, why, sizeof why)))
                s = rfm_fail(err, errlen, RFM_EINVAL,
                             "events.kafka: cannot make the dead-letter producer: %s", why);
            else
                pc = NULL;
        }
        if (pc)
            rd_kafka_conf_destroy(pc);
    }
    if (s == RFM_OK) {
        rd_kafka_poll_set_consumer(k->rk);
        rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(t, o->topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(k->rk, t);
        rd_kafka_topic_partition_list_destroy(t);
        if (e)
            s = rfm_fail(err, errlen, RFM_EINVAL, "events.kafka: cannot subscribe to %s: %s",
                         o->topic, rd_kafka_err2str(e));
    }
    if (s == RFM_OK && pthread_create(&k->thread, NULL, consumer_main, k) != 0)
        s = rfm_fail(err, errlen, RFM_ENOMEM, "cannot start the Kafka consumer thread");
    if (s != RFM_OK) {
        if (k->rk)
            rd_kafka_destroy(k->rk);
        if (k->dlq)
            rd_kafka_destroy(k->dlq);
        if (k->pending)
            rd_kafka_topic_partition_list_destroy(k->pending);
        free(k->msgs);
        free(k);
        return s;
    }
    *out = k;
    return RFM_OK;
}

void kafka_stop(kafka *k)
{
    if (!k)
        return;
    __atomic_store_n(&k->stop, 1, __ATOMIC_RELAXED);
    pthread_join(k->thread, NULL);
    rd_kafka_destroy(k->rk);
    if (k->dlq) {
        rd_kafka_flush(k->dlq, 10000);
        rd_kafka_destroy(k->dlq);
    }
    rd_kafka_topic_partition_list_destroy(k->pending);
    free(k->msgs);
    free(k->parts);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

int kafka_ready(kafka *k, long long *lag, long long *max)
{
    long long total = 0;
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->nparts; i++)
        total += part_lag_of(&k->parts[i]);
    pthread_mutex_unlock(&k->mu);
    *lag = total;
    *max = k->opt.ready_max_lag;
    return total <= k->opt.ready_max_lag;
}

void kafka_metrics(kafka *k, FILE *f)
{
    fprintf(f, "# HELP rfm_kafka_consumer_lag Messages of a partition not yet committed (high "
               "watermark minus committed offset).\n# TYPE rfm_kafka_consumer_lag gauge\n");
    long long total = 0;
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->nparts; i++) {
        long long lag = part_lag_of(&k->parts[i]);
        total += lag;
        fprintf(f, "rfm_kafka_consumer_lag{topic=\"%s\",partition=\"%d\"} %lld\n", k->opt.topic,
                (int)k->parts[i].partition, lag);
    }
    size_t nparts = k->nparts;
    pthread_mutex_unlock(&k->mu);
    fprintf(f,
            "# HELP rfm_kafka_consumer_lag_total Sum of rfm_kafka_consumer_lag (/ready is 503 "
            "above events.kafka.ready_max_lag).\n# TYPE rfm_kafka_consumer_lag_total gauge\n"
            "rfm_kafka_consumer_lag_total %lld\n"
            "# HELP rfm_kafka_partitions_assigned Partitions this consumer owns.\n"
            "# TYPE rfm_kafka_partitions_assigned gauge\nrfm_kafka_partitions_assigned %zu\n",
            total, nparts);
    fprintf(f,
            "# HELP rfm_kafka_messages_total Messages consumed and committed, by result "
            "(applied, ignored by the cleaning rules, duplicate, poison).\n"
            "# TYPE rfm_kafka_messages_total counter\n"
            "rfm_kafka_messages_total{result=\"applied\"} %llu\n"
            "rfm_kafka_messages_total{result=\"ignored\"} %llu\n"
            "rfm_kafka_messages_total{result=\"duplicate\"} %llu\n",
            (unsigned long long)load(&k->applied), (unsigned long long)load(&k->ignored),
            (unsigned long long)load(&k->duplicates));
    uint64_t np = 0;
    for (int r = 0; r < NPOISON; r++)
        np += load(&k->poison[r]);
    fprintf(f, "rfm_kafka_messages_total{result=\"poison\"} %llu\n", (unsigned long long)np);
    fputs("# HELP rfm_kafka_poison_messages_total Poison messages (skipped, logged, sent to "
          "the dead-letter topic when set), by reason.\n"
          "# TYPE rfm_kafka_poison_messages_total counter\n",
          f);
    for (int r = 0; r < NPOISON; r++)
        if (r == POISON_BAD_JSON || (r >= 1 + STATE_BAD_EVENT_ID && r <= 1 + STATE_BAD_TEXT))
            fprintf(f, "rfm_kafka_poison_messages_total{reason=\"%s\"} %llu\n", poison_name(r),
                    (unsigned long long)load(&k->poison[r]));
    fprintf(f,
            "# HELP rfm_kafka_dead_letters_total Poison messages produced to the dead-letter "
            "topic, by result.\n# TYPE rfm_kafka_dead_letters_total counter\n"
            "rfm_kafka_dead_letters_total{result=\"ok\"} %llu\n"
            "rfm_kafka_dead_letters_total{result=\"failed\"} %llu\n"
            "# HELP rfm_kafka_commits_total Offset commits, by result (a failed one is kept "
            "and tried again).\n# TYPE rfm_kafka_commits_total counter\n"
            "rfm_kafka_commits_total{result=\"ok\"} %llu\n"
            "rfm_kafka_commits_total{result=\"failed\"} %llu\n"
            "# HELP rfm_kafka_rebalances_total Partition assignments and revocations.\n"
            "# TYPE rfm_kafka_rebalances_total counter\nrfm_kafka_rebalances_total %llu\n"
            "# HELP rfm_kafka_store_failures_total Batches the store refused (retried).\n"
            "# TYPE rfm_kafka_store_failures_total counter\nrfm_kafka_store_failures_total %llu\n"
            "# HELP rfm_kafka_errors_total Errors librdkafka reported (it reconnects by "
            "itself).\n# TYPE rfm_kafka_errors_total counter\nrfm_kafka_errors_total %llu\n",
            (unsigned long long)load(&k->dead_ok), (unsigned long long)load(&k->dead_failed),
            (unsigned long long)load(&k->commits_ok), (unsigned long long)load(&k->commits_failed),
            (unsigned long long)load(&k->rebalances), (unsigned long long)load(&k->store_failures),
            (unsigned long long)load(&k->errors));
}
