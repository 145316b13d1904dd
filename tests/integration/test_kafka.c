/* test_kafka.c - integration: the real bin/rfm-serve consuming events from
 * Kafka (--kafka-brokers, events.kafka), with no JVM: librdkafka's mock
 * cluster runs inside this process (tests/kafka_mock.h) and a real
 * producer writes to it; kcat reads the dead-letter topic back.
 *
 * - Events produced out of order, across partitions, with duplicates end
 *   in the state POST /events gives for the same events (every customer's
 *   GET /customers/{id} from both daemons).
 * - A poison message (not JSON; an event the store rejects) is counted,
 *   logged with its partition and offset, lands in the dead-letter topic
 *   with its reason, and the messages behind it are applied.
 * - kill -9 between apply and commit (the mock refuses every commit):
 *   /ready is 503 with the lag; after a restart the events come again,
 *   all duplicates, /ready 200, and the customers' frequency and monetary
 *   are exact.
 * - events.kafka.scores_topic: purchases today move customers across their
 *   labels; the change records read back from the scores topic (kcat) are
 *   those GET /feed delivers, id for id and byte for byte, keyed by
 *   customer; with a queue of one record that the broker does not take
 *   yet, the others are dropped and counted and every event is still
 *   applied; brokers and scores_topic without topic produce the records of
 *   POST /events alone. */
#include "testutil.h"
#include "net.h"
#include "daemon.h"
#include "sse.h"
#include "kafka_mock.h"
#include "fileio.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "csv.h"
#include "rng.h"
#include "events_fixture.h"

#define TOKEN "kafka-token"
#define CUT "2011-11-15" /* lines on or after it are events */
#define LAST "2011-12-09"

static char dir[64];
static kmock *mock;
static const char *extra_props = ""; /* more librdkafka settings for write_config */

static line *tail;
static size_t ntail;

static int request(int port, const char *method, const char *path, const char *body, response *r)
{
    return daemon_request(port, TOKEN, method, path, body, r);
}

/* A config in dir: the shipped one (products off) with an events.kafka
 * section for topic (NULL: none). */
static void write_config(const char *name, const char *topic, const char *extra)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sed 's/^\\(    product:\\).*/\\1 null/' ../config/rfm.yaml > %s/%s",
             dir, name);
    assert_int_equal(system(cmd), 0);
    if (!topic)
        return;
    /* Into the shipped events section (types and engagement). */
    char path[128], *text = NULL, block[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t n;
    char err[RFM_ERRLEN];
    assert_int_equal(fileio_read(path, &text, &n, err, sizeof err), RFM_OK);
    char *at = strstr(text, "\nevents:\n");
    assert_non_null(at);
    snprintf(block, sizeof block,
             "  kafka:\n    brokers: '%s'\n    topic: %s\n    group_id: g-%s\n"
             "    batch_wait_ms: 5\n%s"
             "    properties: {session.timeout.ms: 6000, heartbeat.interval.ms: 500,"
             " topic.metadata.refresh.interval.ms: 1000%s}\n",
             mock->bootstraps, topic, topic, extra ? extra : "", extra_props);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    size_t head = (size_t)(at - text) + strlen("\nevents:\n");
    fprintf(f, "%.*s%s%s", (int)head, text, block, text + head);
    fclose(f);
    free(text);
}

static pid_t start(const char *config, const char *store, int port)
{
    char models[128];
    snprintf(models, sizeof models, "%s/models", dir);
    return daemon_start(dir, config, models, store, TOKEN, port, NULL);
}

static void stop(pid_t pid)
{
    int st = daemon_stop(pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rfmtest_kafka_XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_non_null(mock = kmock_start());
    write_config("rfm.yaml", NULL, NULL);
    tail = fixture_split(dir, CUT, &ntail);
    char path[256], models[128];
    snprintf(path, sizeof path, "%s/head.csv", dir);
    snprintf(models, sizeof models, "%s/models", dir);
    fixture_train(dir, path, models);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kmock_stop(mock);
    free(tail);
    if (getenv("RFM_TEST_KEEP")) { /* to read serve.log after a failure */
        print_message("  kept %s\n", dir);
        return 0;
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static char *event_json(const line *l)
{
    char *b = malloc(512);
    snprintf(b, 512,
             "{\"event_id\": \"%s\", \"customer_id\": \"%s\", \"time\": \"%s\", \"invoice\": "
             "\"%s\", \"product\": \"%s\", \"quantity\": %s, \"price\": %s}",
             l->id, l->cust, l->time, l->invoice, l->product, l->quantity, l->price);
    return b;
}

/* A metric's value in a /metrics text (the first line starting with
 * name), NAN when absent. */
static double metric(const char *text, const char *name)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, strlen(name)) == 0 && p[strlen(name)] == ' ')
            return strtod(p + strlen(name) + 1, NULL);
    return NAN;
}

/* Wait (up to 120 s) until the daemon has committed everything and took
 * want messages in (by result: applied + ignored + duplicate + poison). */
static char *wait_consumed(int port, double want)
{
    for (int i = 0; i < 1200; i++) {
        response r;
        assert_int_equal(request(port, "GET", "/metrics", NULL, &r), 0);
        double got = metric(r.body, "rfm_kafka_messages_total{result=\"applied\"}") +
                     metric(r.body, "rfm_kafka_messages_total{result=\"ignored\"}") +
                     metric(r.body, "rfm_kafka_messages_total{result=\"duplicate\"}") +
                     metric(r.body, "rfm_kafka_messages_total{result=\"poison\"}");
        if (got == want && metric(r.body, "rfm_kafka_consumer_lag_total") == 0 &&
            metric(r.body, "rfm_kafka_partitions_assigned") > 0)
            return r.body;
        if (got > want)
            fail_msg("%g messages consumed, %g produced:\n%s", got, want, r.body);
        free(r.body);
        usleep(100000);
    }
    fail_msg("the consumer did not catch up with %g messages in 120 s", want);
    return NULL;
}

/* Two JSON values equal, numbers within 1e-9 relative (spend sums in
 * another order), objects member by member but scored_at. */
static int close_json(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return fabs(x - y) <= 1e-9 * fmax(1, fabs(x));
    }
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        const char *k;
        json_t *va;
        json_object_foreach((json_t *)a, k, va)
        {
            if (strcmp(k, "scored_at") != 0 && !close_json(va, json_object_get(b, k)))
                return 0;
        }
        return 1;
    }
    return json_equal(a, b);
}

/* GET /customers/{id} of one customer on both daemons: the same answer
 * (close_json). */
static int same_customer(int pa, int pb, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/customers/%s?as_of=" LAST, id);
    response a, b;
    assert_int_equal(request(pa, "GET", path, NULL, &a), 0);
    assert_int_equal(request(pb, "GET", path, NULL, &b), 0);
    json_t *ja = json_loads(a.body, 0, NULL), *jb = json_loads(b.body, 0, NULL);
    int same = a.status == b.status && ja && jb && close_json(ja, jb);
    if (!same)
        print_message("customer %s differs:\n  kafka: %d %s\n  POST:  %d %s\n", id, a.status,
                      a.body, b.status, b.body);
    json_decref(ja);
    json_decref(jb);
    free(a.body);
    free(b.body);
    return same;
}

/* 3,000 events of the file's tail, shuffled, into 4 partitions chosen at
 * random (keys random too: correctness must not lean on them), every
 * tenth one produced twice (to another partition): the state equals that
 * of the same events sent once each, in file order, by POST /events. */
static void test_kafka_equals_post_events(void **state)
{
    (void)state;
    enum { N = 3000, BATCH = 500 };
    assert_int_equal(kmock_topic(mock, "purchases", 4), 0);
    rfm_rng g;
    rfm_rng_seed(&g, 3);
    size_t *order = malloc(N * sizeof *order);
    for (size_t i = 0; i < N; i++)
        order[i] = i;
    for (size_t i = N - 1; i > 0; i--) {
        size_t j = (size_t)(rfm_rng_uniform(&g) * (double)(i + 1));
        j = j > i ? i : j;
        size_t t = order[i];
        order[i] = order[j], order[j] = t;
    }
    /* Lines with no customer are rejected by the store: poison here. */
    size_t produced = 0, copies = 0, nameless = 0;
    for (size_t i = 0; i < N; i++) {
        char *e = event_json(&tail[order[i]]);
        int twice = i % 10 == 0, named = tail[order[i]].cust[0] != '\0';
        copies += twice && named;
        nameless += named ? 0 : 1 + (size_t)twice;
        for (int again = 0; again < 1 + twice; again++) {
            char key[16];
            snprintf(key, sizeof key, "k%u", (unsigned)(rfm_rng_uniform(&g) * 1e6));
            assert_int_equal(kmock_produce(mock, "purchases",
                                           (int32_t)(rfm_rng_uniform(&g) * 4) % 4, key, e,
                                           strlen(e)),
                             0);
            produced++;
        }
        free(e);
    }
    assert_int_equal(kmock_flush(mock), 0);
    free(order);

    write_config("kafka.yaml", "purchases", NULL);
    char store[128];
    snprintf(store, sizeof store, "%s/kafka.db", dir);
    int pk = free_port();
    pid_t kd = start("kafka.yaml", store, pk);
    assert_true(kd > 0);
    snprintf(store, sizeof store, "%s/post.db", dir);
    int pp = free_port();
    pid_t pd = start("rfm.yaml", store, pp);
    assert_true(pd > 0);
    /* The reference: the same events once each, in file order. */
    for (size_t from = 0; from < N; from += BATCH) {
        size_t cap = 16 + BATCH * 520, n = 0;
        char *b = malloc(cap);
        n += (size_t)snprintf(b, cap, "{\"events\": [");
        for (size_t i = from; i < from + BATCH; i++) {
            char *e = event_json(&tail[i]);
            n += (size_t)snprintf(b + n, cap - n, "%s%s", i > from ? ", " : "", e);
            free(e);
        }
        snprintf(b + n, cap - n, "]}");
        response r;
        assert_int_equal(request(pp, "POST", "/events", b, &r), 0);
        assert_int_equal(r.status, 200);
        free(r.body);
        free(b);
    }
    char *m = wait_consumed(pk, (double)produced);
    double dups = metric(m, "rfm_kafka_messages_total{result=\"duplicate\"}");
    print_message("  %zu messages in 4 partitions: %g applied, %g ignored, %g duplicates, %g "
                  "poison (no customer), %g rebalances\n",
                  produced, metric(m, "rfm_kafka_messages_total{result=\"applied\"}"),
                  metric(m, "rfm_kafka_messages_total{result=\"ignored\"}"), dups,
                  metric(m, "rfm_kafka_messages_total{result=\"poison\"}"),
                  metric(m, "rfm_kafka_rebalances_total"));
    assert_true(dups == (double)copies);
    assert_true(metric(m, "rfm_kafka_messages_total{result=\"poison\"}") == (double)nameless);
    assert_true(metric(m, "rfm_kafka_poison_messages_total{reason=\"missing_customer_id\"}") ==
                (double)nameless);
    assert_true(metric(m, "rfm_kafka_rebalances_total") >= 1);
    assert_true(metric(m, "rfm_kafka_consumer_lag{topic=\"purchases\",partition=\"0\"}") == 0);
    free(m);
    size_t customers = 0, bad = 0;
    for (size_t i = 0; i < N; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(tail[j].cust, tail[i].cust) == 0;
        if (seen || !tail[i].cust[0])
            continue;
        customers++;
        bad += !same_customer(pk, pp, tail[i].cust);
    }
    print_message("  %zu customers compared, %zu differ\n", customers, bad);
    assert_true(customers >= 50);
    assert_int_equal(bad, 0);
    response r;
    assert_int_equal(request(pk, "GET", "/ready", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    free(r.body);
    stop(kd);
    stop(pd);
}

/* Good, not JSON, an event the store rejects (a time that is no time),
 * good: the two poison messages are counted, logged with partition and
 * offset, in the dead-letter topic with their reasons, and both good
 * events are applied. */
static void test_poison_to_dead_letter(void **state)
{
    (void)state;
    assert_int_equal(kmock_topic(mock, "mixed", 1), 0);
    assert_int_equal(kmock_topic(mock, "mixed-dlq", 1), 0);
    const char *msgs[] = {
        "{\"event_id\": \"p1\", \"customer_id\": \"P-1\", \"time\": \"2011-12-01T10:00:00Z\", "
        "\"amount\": 10.5}",
        "{\"event_id\": \"p2\", \"customer_id\": ",
        "{\"event_id\": \"p3\", \"customer_id\": \"P-1\", \"time\": \"yesterday\", \"amount\": 1}",
        "{\"event_id\": \"p4\", \"customer_id\": \"P-2\", \"time\": \"2011-12-02T10:00:00Z\", "
        "\"amount\": 7.25}"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(kmock_produce(mock, "mixed", 0, NULL, msgs[i], strlen(msgs[i])), 0);
    assert_int_equal(kmock_flush(mock), 0);
    write_config("mixed.yaml", "mixed", "    dead_letter_topic: mixed-dlq\n");
    char store[128];
    snprintf(store, sizeof store, "%s/mixed.db", dir);
    int port = free_port();
    pid_t pid = start("mixed.yaml", store, port);
    assert_true(pid > 0);
    char *m = wait_consumed(port, 4);
    if (metric(m, "rfm_kafka_dead_letters_total{result=\"ok\"}") != 2)
        print_message("%s", strstr(m, "rfm_kafka_dead_letters_total"));
    assert_true(metric(m, "rfm_kafka_messages_total{result=\"applied\"}") == 2);
    assert_true(metric(m, "rfm_kafka_messages_total{result=\"poison\"}") == 2);
    assert_true(metric(m, "rfm_kafka_poison_messages_total{reason=\"bad_json\"}") == 1);
    assert_true(metric(m, "rfm_kafka_poison_messages_total{reason=\"bad_time\"}") == 1);
    assert_true(metric(m, "rfm_kafka_dead_letters_total{result=\"ok\"}") == 2);
    free(m);
    response r;
    assert_int_equal(request(port, "GET", "/customers/P-2?as_of=" LAST, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"monetary\":7.25"));
    free(r.body);
    assert_int_equal(request(port, "GET", "/customers/P-1?as_of=" LAST, NULL, &r), 0);
    assert_non_null(strstr(r.body, "\"monetary\":10.5"));
    free(r.body);
    stop(pid);
    /* The log names partition and offset of each. */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "grep -q 'poison message mixed partition 0 offset 1: bad_json' %s/serve.log && "
             "grep -q 'poison message mixed partition 0 offset 2: bad_time' %s/serve.log",
             dir, dir);
    assert_int_equal(system(cmd), 0);
    /* kcat reads the dead letters back: the message as it was, the reason
     * and the source in headers. */
    snprintf(cmd, sizeof cmd,
             "kcat -q -b '%s' -C -t mixed-dlq -o beginning -e -f '%%h|%%s\\n' > %s/dlq.txt 2>&1",
             mock->bootstraps, dir);
    assert_int_equal(system(cmd), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/dlq.txt", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    print_message("  dead letters (kcat):\n%s", buf);
    assert_non_null(strstr(buf, "rfm-error=bad_json"));
    assert_non_null(strstr(buf, "rfm-source=mixed/0@1"));
    assert_non_null(strstr(buf, "|{\"event_id\": \"p2\", \"customer_id\": \n"));
    assert_non_null(strstr(buf, "rfm-error=bad_time"));
    assert_non_null(strstr(buf, "rfm-source=mixed/0@2"));
    assert_null(strstr(buf, "\"p1\""));
}

/* The mock refuses every offset commit: the daemon applies the events (durable) but cannot
 * commit them; /ready is 503 with the lag. kill -9 there, commits allowed
 * again, a restart: every event comes again and is a duplicate, /ready is
 * 200, and each customer's frequency and monetary are exactly those of
 * the same events through POST /events (amounts in quarters: sums exact
 * in any order). */
static void test_kill9_between_apply_and_commit(void **state)
{
    (void)state;
    enum { N = 300, CUSTOMERS = 12 };
    assert_int_equal(kmock_topic(mock, "kill", 2), 0);
    kmock_fail_commits(mock, 1);
    static char ev[N][256];
    size_t cap = 64 + N * 260, bn = 0;
    char *body = malloc(cap);
    bn += (size_t)snprintf(body, cap, "{\"events\": [");
    for (int i = 0; i < N; i++) {
        snprintf(ev[i], sizeof ev[i],
                 "{\"event_id\": \"k%d\", \"customer_id\": \"K-%d\", \"time\": "
                 "\"2011-%02d-%02dT12:00:00Z\", \"invoice\": \"KI%d\", \"amount\": %.2f}",
                 i, i % CUSTOMERS, 1 + i % 11, 1 + i % 28, i, 0.25 * (1 + i % 37));
        assert_int_equal(kmock_produce(mock, "kill", i % 2, NULL, ev[i], strlen(ev[i])), 0);
        bn += (size_t)snprintf(body + bn, cap - bn, "%s%s", i ? ", " : "", ev[i]);
    }
    snprintf(body + bn, cap - bn, "]}");
    assert_int_equal(kmock_flush(mock), 0);
    write_config("kill.yaml", "kill", "    ready_max_lag: 10\n");
    char store[128];
    snprintf(store, sizeof store, "%s/kill.db", dir);
    int port = free_port();
    pid_t pid = start("kill.yaml", store, port);
    assert_true(pid > 0);
    /* Applied (durable), not committed: /ready 503 with the lag. */
    response r;
    int applied = 0, unready = 0;
    for (int i = 0; i < 1200 && !(applied && unready); i++) {
        usleep(100000);
        assert_int_equal(request(port, "GET", "/metrics", NULL, &r), 0);
        applied = metric(r.body, "rfm_events_total{outcome=\"applied\"}") == N &&
                  metric(r.body, "rfm_kafka_commits_total{result=\"failed\"}") >= 1;
        free(r.body);
        assert_int_equal(request(port, "GET", "/ready", NULL, &r), 0);
        unready = r.status == 503 && strstr(r.body, "300 messages behind") &&
                  strstr(r.body, "\"ready\":false");
        if (!unready && i % 100 == 99)
            print_message("  /ready: %d %s\n", r.status, r.body);
        free(r.body);
    }
    assert_true(applied);
    assert_true(unready);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    kmock_fail_commits(mock, 0);
    pid = start("kill.yaml", store, port);
    assert_true(pid > 0);
    char *m = wait_consumed(port, N);
    assert_true(metric(m, "rfm_kafka_messages_total{result=\"duplicate\"}") == N);
    assert_true(metric(m, "rfm_kafka_messages_total{result=\"applied\"}") == 0);
    free(m);
    assert_int_equal(request(port, "GET", "/ready", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    free(r.body);
    /* The reference: POST /events of the same events to a fresh store. */
    snprintf(store, sizeof store, "%s/kill-post.db", dir);
    int pp = free_port();
    pid_t pd = start("rfm.yaml", store, pp);
    assert_true(pd > 0);
    assert_int_equal(request(pp, "POST", "/events", body, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"accepted\":300"));
    free(r.body);
    free(body);
    for (int c = 0; c < CUSTOMERS; c++) {
        char path[64];
        snprintf(path, sizeof path, "/customers/K-%d?as_of=" LAST, c);
        response a, b;
        assert_int_equal(request(port, "GET", path, NULL, &a), 0);
        assert_int_equal(request(pp, "GET", path, NULL, &b), 0);
        assert_int_equal(a.status, 200);
        json_t *ja = json_loads(a.body, 0, NULL), *jb = json_loads(b.body, 0, NULL);
        assert_true(json_number_value(json_object_get(ja, "frequency")) ==
                    json_number_value(json_object_get(jb, "frequency")));
        assert_true(json_number_value(json_object_get(ja, "monetary")) ==
                    json_number_value(json_object_get(jb, "monetary")));
        assert_true(json_number_value(json_object_get(ja, "frequency")) >= 2);
        json_decref(ja), json_decref(jb);
        free(a.body), free(b.body);
    }
    stop(pid);
    stop(pd);
}

/* ---- the live feed to events.kafka.scores_topic ---------------------------- */

/* A GET /feed stream (sse.h) on port, answered 200. */
static void sse_open(sse *s, int port)
{
    assert_int_equal(sse_open_head(s, port, 20,
                                   "GET /feed HTTP/1.0\r\nHost: t\r\nAuthorization: Bearer " TOKEN
                                   "\r\n\r\n"),
                     200);
}

/* One purchase today of each of the first n named customers of the tail
 * (known to the store, seeded from the head, or new) to topic; returns how
 * many customers. */
static size_t produce_purchases_now(const char *topic, const char *prefix, size_t n)
{
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    size_t k = 0;
    for (size_t i = 0; i < ntail && k < n; i++) {
        int seen = !tail[i].cust[0];
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(tail[j].cust, tail[i].cust) == 0;
        if (seen)
            continue;
        char ev[256];
        snprintf(ev, sizeof ev,
                 "{\"event_id\": \"%s%zu\", \"customer_id\": \"%s\", \"time\": \"%s\", "
                 "\"amount\": 250}",
                 prefix, k, tail[i].cust, now);
        assert_int_equal(
            kmock_produce(mock, topic, RD_KAFKA_PARTITION_UA, tail[i].cust, ev, strlen(ev)), 0);
        k++;
    }
    assert_int_equal(kmock_flush(mock), 0);
    return k;
}

static double metric_now(int port, const char *name)
{
    response r;
    assert_int_equal(request(port, "GET", "/metrics", NULL, &r), 0);
    double v = metric(r.body, name);
    free(r.body);
    return v;
}

/* Purchases today move customers (idle since the head's end) across
 * their labels: the records read back from the scores topic with kcat are
 * those GET /feed delivered, id for id (header rfm-feed-id) and byte for
 * byte, each keyed by its customer_id, and /metrics counts them produced. */
static void test_scores_topic_equals_feed(void **state)
{
    (void)state;
    enum { CUSTOMERS = 40 };
    assert_int_equal(kmock_topic(mock, "moves", 2), 0);
    assert_int_equal(kmock_topic(mock, "moves-scores", 3), 0);
    write_config("scores.yaml", "moves", "    scores_topic: moves-scores\n");
    char store[128];
    snprintf(store, sizeof store, "%s/scores.db", dir);
    int port = free_port();
    pid_t pid = start("scores.yaml", store, port);
    assert_true(pid > 0);
    sse s;
    sse_open(&s, port);
    size_t n = produce_purchases_now("moves", "m", CUSTOMERS);
    free(wait_consumed(port, (double)n));
    double records = metric_now(port, "rfm_feed_records_total");
    print_message("  %zu purchases today: %g change records on GET /feed\n", n, records);
    assert_true(records >= 10);
    static sse_event feed[3 * CUSTOMERS];
    assert_true(records <= 3 * CUSTOMERS);
    for (int i = 0; i < (int)records; i++) {
        assert_int_equal(sse_next(&s, &feed[i]), 0);
        assert_string_equal(feed[i].event, "change");
    }
    close(s.fd);
    /* Every record acknowledged by the broker. */
    double produced = 0;
    for (int i = 0; i < 600 && produced < records; i++) {
        produced = metric_now(port, "rfm_kafka_scores_records_total{result=\"produced\"}");
        if (produced < records)
            usleep(100000);
    }
    assert_true(produced == records);
    assert_true(metric_now(port, "rfm_kafka_scores_records_total{result=\"dropped\"}") == 0);
    assert_true(metric_now(port, "rfm_kafka_scores_records_total{result=\"failed\"}") == 0);
    char cmd[512], path[128];
    snprintf(path, sizeof path, "%s/scores.txt", dir);
    snprintf(cmd, sizeof cmd,
             "kcat -q -b '%s' -C -t moves-scores -o beginning -e -f '%%k\\t%%h\\t%%s\\n' > %s",
             mock->bootstraps, path);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char text[4096];
    int lines = 0, matched = 0;
    while (fgets(text, sizeof text, f)) {
        text[strcspn(text, "\n")] = '\0';
        char *h = strchr(text, '\t'), *v = h ? strchr(h + 1, '\t') : NULL;
        assert_non_null(v);
        *h++ = '\0', *v++ = '\0';
        lines++;
        assert_int_equal(strncmp(h, "rfm-feed-id=", 12), 0);
        unsigned long long id = strtoull(h + 12, NULL, 10);
        for (int i = 0; i < (int)records; i++) {
            if (feed[i].id != id)
                continue;
            assert_string_equal(v, feed[i].data);
            /* Keyed by the record's customer. */
            json_t *j = json_loads(v, 0, NULL);
            assert_non_null(j);
            assert_string_equal(json_string_value(json_object_get(j, "customer_id")), text);
            json_decref(j);
            matched++;
        }
    }
    fclose(f);
    print_message("  scores topic (kcat): %d records, %d equal to GET /feed's\n", lines, matched);
    assert_int_equal(lines, (int)records);
    assert_int_equal(matched, (int)records);
    stop(pid);
}

/* A queue of one record (events.kafka.scores_queue_max: 1) that the
 * broker does not take yet (linger.ms: 4 min, far longer than the test
 * takes, below message.timeout.ms as librdkafka requires): the first
 * record waits in it, every other is dropped and counted, and event
 * application is not held up: every event is applied and committed. The
 * record in the queue is delivered at the stop. */
static void test_scores_queue_full_drops(void **state)
{
    (void)state;
    assert_int_equal(kmock_topic(mock, "slow", 1), 0);
    assert_int_equal(kmock_topic(mock, "slow-scores", 1), 0);
    extra_props = ", linger.ms: 240000";
    write_config("slow.yaml", "slow", "    scores_topic: slow-scores\n    scores_queue_max: 1\n");
    extra_props = "";
    char store[128];
    snprintf(store, sizeof store, "%s/slow.db", dir);
    int port = free_port();
    pid_t pid = start("slow.yaml", store, port);
    assert_true(pid > 0);
    size_t n = produce_purchases_now("slow", "q", 40);
    char *m = wait_consumed(port, (double)n);
    double records = metric(m, "rfm_feed_records_total");
    double dropped = metric(m, "rfm_kafka_scores_records_total{result=\"dropped\"}");
    print_message("  %g records, %g dropped, queue %g, %g events applied\n", records, dropped,
                  metric(m, "rfm_kafka_scores_queue"),
                  metric(m, "rfm_kafka_messages_total{result=\"applied\"}"));
    assert_true(records >= 10);
    assert_true(dropped == records - 1);
    assert_true(metric(m, "rfm_kafka_scores_queue") == 1);
    assert_true(metric(m, "rfm_kafka_scores_records_total{result=\"produced\"}") == 0);
    assert_true(metric(m, "rfm_kafka_messages_total{result=\"applied\"}") == (double)n);
    free(m);
    stop(pid);
    /* The one queued went out at the stop. */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "test \"$(kcat -q -b '%s' -C -t slow-scores -o beginning -e | wc -l)\" = 1",
             mock->bootstraps);
    assert_int_equal(system(cmd), 0);
}

/* brokers and scores_topic without topic: a producer only (no consumer,
 * no consumer metrics), fed by POST /events. */
static void test_scores_topic_without_consumer(void **state)
{
    (void)state;
    assert_int_equal(kmock_topic(mock, "posted-scores", 1), 0);
    write_config("only.yaml", "", "    scores_topic: posted-scores\n");
    char store[128];
    snprintf(store, sizeof store, "%s/only.db", dir);
    int port = free_port();
    pid_t pid = start("only.yaml", store, port);
    assert_true(pid > 0);
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    size_t cap = 1 << 14, bn = 0, k = 0;
    char *body = malloc(cap);
    bn += (size_t)snprintf(body, cap, "{\"events\": [");
    for (size_t i = 0; i < ntail && k < 20; i++) {
        int seen = !tail[i].cust[0];
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(tail[j].cust, tail[i].cust) == 0;
        if (seen)
            continue;
        bn += (size_t)snprintf(body + bn, cap - bn,
                               "%s{\"event_id\": \"o%zu\", \"customer_id\": \"%s\", \"time\": "
                               "\"%s\", \"amount\": 250}",
                               k ? ", " : "", k, tail[i].cust, now);
        k++;
    }
    snprintf(body + bn, cap - bn, "]}");
    response r;
    assert_int_equal(request(port, "POST", "/events", body, &r), 0);
    assert_int_equal(r.status, 200);
    free(r.body);
    free(body);
    double records = metric_now(port, "rfm_feed_records_total"), produced = 0;
    for (int i = 0; i < 600 && produced < records; i++) {
        produced = metric_now(port, "rfm_kafka_scores_records_total{result=\"produced\"}");
        if (produced < records)
            usleep(100000);
    }
    print_message("  POST /events of %zu purchases today: %g records, %g produced\n", k, records,
                  produced);
    assert_true(records >= 5 && produced == records);
    assert_true(isnan(metric_now(port, "rfm_kafka_partitions_assigned")));
    assert_int_equal(request(port, "GET", "/ready", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    free(r.body);
    stop(pid);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "test \"$(kcat -q -b '%s' -C -t posted-scores -o beginning -e | wc -l)\" = %d",
             mock->bootstraps, (int)records);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_equals_post_events),
        cmocka_unit_test(test_poison_to_dead_letter),
        cmocka_unit_test(test_kill9_between_apply_and_commit),
        cmocka_unit_test(test_scores_topic_equals_feed),
        cmocka_unit_test(test_scores_queue_full_drops),
        cmocka_unit_test(test_scores_topic_without_consumer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
