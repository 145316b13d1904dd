/* test_feed.c - integration: GET /feed of the real bin/rfm-serve with a
 * customer-state store, read over a raw socket. A purchase today moves a
 * customer idle since 2011 across segment boundaries: the stream delivers
 * one change record per label that GET /customers/{id} shows changed, with
 * its from and to. A reconnect with Last-Event-ID resumes after that id
 * with no loss and no repeat; a reader whose id fell out of a tiny buffer
 * (feed.buffer: 8) gets a gap event counting what it missed; an id the
 * daemon never gave gets a gap too; no token is 401; a reader over
 * feed.max_readers is 503 with the JSON error shape; the sweep publishes
 * nothing again on the same day. */
#include "testutil.h"
#include "net.h"
#include "daemon.h"
#include "sse.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOKEN "feed-token"

static char dir[64];
static int port;
static pid_t pid;

/* ---- HTTP over a socket -------------------------------------------------- */

/* One request on a new connection; the status, and the body in *body
 * (caller frees). -1 when the connection failed. */
static int request(const char *method, const char *path, const char *body, char **out)
{
    response r;
    int rc = daemon_request(port, TOKEN, method, path, body, &r);
    *out = r.body;
    return rc == 0 ? r.status : -1;
}

/* A GET /feed stream (sse.h) on the daemon's port, with extra_headers
 * and query; the reply's status, or -1. */
static int sse_open(sse *s, const char *extra_headers, const char *query)
{
    char head[512];
    snprintf(head, sizeof head,
             "GET /feed%s HTTP/1.0\r\nHost: t\r\nAccept: text/event-stream\r\n%s\r\n",
             query ? query : "", extra_headers);
    return sse_open_head(s, port, 10, head);
}

/* ---- the daemon ----------------------------------------------------------- */

static void start(void)
{
    port = free_port();
    char models[128], state[128];
    snprintf(models, sizeof models, "%s/models", dir);
    snprintf(state, sizeof state, "%s/state.db", dir);
    int code = -1;
    pid_t p = daemon_start(dir, "rfm.yaml", models, state, TOKEN, port, &code);
    if (p > 0) {
        pid = p;
        return;
    }
    /* pid stays 0: teardown signals nothing. */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "cat %s/serve.log", dir);
    if (system(cmd) != 0)
        print_message("  (no log)\n");
    if (code >= 0)
        fail_msg("rfm-serve exited with status %d", code);
    fail_msg("rfm-serve did not start (see %s/serve.log)", dir);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rfmtest_feed_XXXXXX");
    assert_non_null(mkdtemp(dir));
    char cmd[1024];
    /* Products off; a tiny buffer, two readers at most, a sweep every 2 s. */
    snprintf(cmd, sizeof cmd,
             "sed -e 's/^\\(    product:\\).*/\\1 null/' -e 's/^\\(  buffer:\\).*/\\1 8/' "
             "-e 's/^\\(  max_readers:\\).*/\\1 2/' -e 's/^\\(  sweep_seconds:\\).*/\\1 2/' "
             "-e 's/^\\(  heartbeat_seconds:\\).*/\\1 1/' "
             "../config/rfm.yaml > %s/rfm.yaml && grep -q '^  buffer: 8' %s/rfm.yaml",
             dir, dir);
    assert_int_equal(system(cmd), 0);
    /* The store seeds from the file the manifest names: an absolute path,
     * as the daemon runs from the repository's root. */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --quiet --config %s/rfm.yaml --transactions "
             "%s/../data/online_retail.csv.gz --only segments,churn --models %s/models",
             dir, cwd, dir);
    assert_int_equal(system(cmd), 0);
    start();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    /* A clean stop with streams having been open: exit 0 (under the
     * sanitizers, also no error or leak at exit). */
    int st = daemon_stop(pid);
    char cmd[128];
    int clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!clean) {
        snprintf(cmd, sizeof cmd, "tail -40 %s/serve.log", dir);
        if (system(cmd) != 0)
            print_message("  (no log)\n");
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) != 0 || !clean;
}

/* ---- helpers -------------------------------------------------------------- */

static char *str_member(const char *json, const char *key, char *out, size_t cap)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":\"", key);
    const char *p = strstr(json, k);
    if (!p)
        return NULL;
    p += strlen(k);
    size_t n = strcspn(p, "\"");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
    return out;
}

typedef struct {
    char rfm_segment[64], segment[64], churn_risk[16];
} labels;

/* The answer's own members (the engagement block has a "segment" too). */
static void customer_labels(const char *id, labels *l)
{
    char path[64], *body;
    snprintf(path, sizeof path, "/customers/%s", id);
    assert_int_equal(request("GET", path, NULL, &body), 200);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    const char *rs = json_string_value(json_object_get(j, "rfm_segment"));
    const char *sg = json_string_value(json_object_get(j, "segment"));
    const char *cr = json_string_value(json_object_get(j, "churn_risk"));
    assert_non_null(rs);
    assert_non_null(sg);
    assert_non_null(cr);
    snprintf(l->rfm_segment, sizeof l->rfm_segment, "%s", rs);
    snprintf(l->segment, sizeof l->segment, "%s", sg);
    snprintf(l->churn_risk, sizeof l->churn_risk, "%s", cr);
    json_decref(j);
    free(body);
}

static int nevent; /* makes event ids unique across the tests */

/* A purchase of customer id today. */
static void buy_now(const char *id)
{
    char now[32], body[512], *reply;
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(body, sizeof body,
             "{\"events\":[{\"event_id\":\"feed-%d\",\"customer_id\":\"%s\",\"time\":\"%s\","
             "\"amount\":250}]}",
             nevent++, id, now);
    assert_int_equal(request("POST", "/events", body, &reply), 200);
    assert_non_null(strstr(reply, "\"accepted\":1"));
    free(reply);
}

/* The changes one expects from before to after, in the feed's field order. */
static int expected(const labels *b, const labels *a, const char *field[3], const char *from[3],
                    const char *to[3])
{
    int n = 0;
    if (strcmp(b->rfm_segment, a->rfm_segment) != 0)
        field[n] = "rfm_segment", from[n] = b->rfm_segment, to[n++] = a->rfm_segment;
    if (strcmp(b->segment, a->segment) != 0)
        field[n] = "cluster", from[n] = b->segment, to[n++] = a->segment;
    if (strcmp(b->churn_risk, a->churn_risk) != 0)
        field[n] = "churn_risk", from[n] = b->churn_risk, to[n++] = a->churn_risk;
    return n;
}

static void check_change(const sse_event *e, const char *id, const char *field, const char *from,
                         const char *to)
{
    char v[128];
    assert_string_equal(e->event, "change");
    assert_string_equal(str_member(e->data, "customer_id", v, sizeof v), id);
    assert_string_equal(str_member(e->data, "field", v, sizeof v), field);
    assert_string_equal(str_member(e->data, "from", v, sizeof v), from);
    assert_string_equal(str_member(e->data, "to", v, sizeof v), to);
    assert_non_null(strstr(e->data, "\"scores\":{"));
}

/* The value of the metric line starting with name (and a space). */
static double metric(const char *name)
{
    char *body, key[128];
    assert_int_equal(request("GET", "/metrics", NULL, &body), 200);
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(body, key);
    if (!p)
        fail_msg("no %s in /metrics", name);
    double v = strtod(p + strlen(key), NULL);
    free(body);
    return v;
}

/* rfm_feed_readers of /metrics. */
static long readers_open(void)
{
    char *body;
    assert_int_equal(request("GET", "/metrics", NULL, &body), 200);
    const char *p = strstr(body, "\nrfm_feed_readers ");
    assert_non_null(p);
    long n = strtol(p + 18, NULL, 10);
    free(body);
    return n;
}

/* Streams a client closed are let go at their next wake-up (a record or
 * the heartbeat, 1 s here): wait until none is open (up to 30 s), so
 * feed.max_readers (2) has room. */
static void wait_no_readers(void)
{
    long open = readers_open();
    for (int i = 0; i < 300 && open > 0; i++, open = readers_open())
        usleep(100000);
    assert_int_equal(open, 0);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_unauthenticated(void **state)
{
    (void)state;
    sse s;
    assert_int_equal(sse_open(&s, "", NULL), 401);
    assert_non_null(strstr(s.buf, "\"error\""));
    sse_close(&s);
    assert_int_equal(sse_open(&s, "Authorization: Bearer wrong\r\n", NULL), 401);
    sse_close(&s);
}

static unsigned long long first_id, second_id;

/* Customer 17850 last bought in 2011: a purchase today takes it to
 * recency 1, across its RFM segment (and cluster) boundaries. */
static void test_change_arrives(void **state)
{
    (void)state;
    sse s;
    assert_int_equal(sse_open(&s, "Authorization: Bearer " TOKEN "\r\n", NULL), 200);
    assert_non_null(strstr(s.buf, "text/event-stream"));
    labels before, after;
    customer_labels("17850", &before);
    buy_now("17850");
    customer_labels("17850", &after);
    const char *field[3], *from[3], *to[3];
    int n = expected(&before, &after, field, from, to);
    print_message("  17850: %s / %s / %s -> %s / %s / %s (%d changes)\n", before.rfm_segment,
                  before.segment, before.churn_risk, after.rfm_segment, after.segment,
                  after.churn_risk, n);
    assert_true(n >= 1);
    assert_string_equal(field[0], "rfm_segment"); /* recency 5000+ days to 1 */
    unsigned long long prev = 0;
    for (int i = 0; i < n; i++) {
        sse_event e;
        assert_int_equal(sse_next(&s, &e), 0);
        check_change(&e, "17850", field[i], from[i], to[i]);
        assert_true(e.id > prev);
        if (i == 0)
            first_id = e.id;
        prev = e.id;
    }
    /* Buying again today changes no label: nothing more is published; the
     * next record on this stream is the next customer's. */
    buy_now("17850");
    labels b2, a2;
    customer_labels("12346", &b2);
    buy_now("12346");
    customer_labels("12346", &a2);
    int n2 = expected(&b2, &a2, field, from, to);
    assert_true(n2 >= 1);
    sse_event e;
    assert_int_equal(sse_next(&s, &e), 0);
    check_change(&e, "12346", field[0], from[0], to[0]);
    assert_int_equal(e.id, prev + 1);
    second_id = e.id;
    sse_close(&s);
}

/* Reconnect with the first record's id: the records after it, in order,
 * none lost, none repeated. */
static void test_resume(void **state)
{
    (void)state;
    assert_true(first_id > 0);
    char h[128];
    snprintf(h, sizeof h, "Authorization: Bearer " TOKEN "\r\nLast-Event-ID: %llu\r\n", first_id);
    sse s;
    wait_no_readers();
    assert_int_equal(sse_open(&s, h, NULL), 200);
    for (unsigned long long id = first_id + 1; id <= second_id; id++) {
        sse_event e;
        assert_int_equal(sse_next(&s, &e), 0);
        assert_string_equal(e.event, "change");
        assert_int_equal(e.id, id);
    }
    sse_close(&s);
    /* The query parameter does the same. */
    char q[64];
    snprintf(q, sizeof q, "?last_event_id=%llu", second_id - 1);
    wait_no_readers();
    assert_int_equal(sse_open(&s, "Authorization: Bearer " TOKEN "\r\n", q), 200);
    sse_event e;
    assert_int_equal(sse_next(&s, &e), 0);
    assert_int_equal(e.id, second_id);
    sse_close(&s);
}

/* A reader whose id left the 8-record buffer: a gap event with the count
 * missed, then the records kept. */
static void test_gap(void **state)
{
    (void)state;
    /* More customers idle since 2011 move, filling the buffer past first_id. */
    const char *ids[] = {"12347", "12348", "12349", "12350", "12352", "12353",
                         "12354", "12355", "12356", "12357", "12358", "12359"};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
        buy_now(ids[i]);
    char h[128];
    snprintf(h, sizeof h, "Authorization: Bearer " TOKEN "\r\nLast-Event-ID: %llu\r\n", first_id);
    sse s;
    wait_no_readers();
    assert_int_equal(sse_open(&s, h, NULL), 200);
    sse_event e;
    assert_int_equal(sse_next(&s, &e), 0);
    assert_string_equal(e.event, "gap");
    print_message("  gap: %s\n", e.data);
    assert_non_null(strstr(e.data, "\"reason\":\"behind\""));
    unsigned long long resume = e.id, missed = 0;
    const char *m = strstr(e.data, "\"missed\":");
    assert_non_null(m);
    missed = strtoull(m + 9, NULL, 10);
    assert_true(missed >= 1);
    assert_int_equal(resume, first_id + missed);
    /* Then exactly the eight kept, in order. */
    for (int i = 1; i <= 8; i++) {
        assert_int_equal(sse_next(&s, &e), 0);
        assert_string_equal(e.event, "change");
        assert_int_equal(e.id, resume + (unsigned long long)i);
    }
    sse_close(&s);
    /* An id this daemon never gave (ahead of its newest): a gap, then the
     * stream goes on from now. */
    snprintf(h, sizeof h, "Authorization: Bearer " TOKEN "\r\nLast-Event-ID: %llu\r\n",
             resume + 1000000);
    wait_no_readers();
    assert_int_equal(sse_open(&s, h, NULL), 200);
    assert_int_equal(sse_next(&s, &e), 0);
    assert_string_equal(e.event, "gap");
    assert_non_null(strstr(e.data, "\"reason\":\"unknown_id\""));
    assert_int_equal(e.id, resume + 8);
    sse_close(&s);
    /* Not an id: 400. */
    assert_int_equal(sse_open(&s, "Authorization: Bearer " TOKEN "\r\nLast-Event-ID: x1\r\n", NULL),
                     400);
    sse_close(&s);
}

static void test_reader_limit(void **state)
{
    (void)state;
    wait_no_readers();
    sse a, b, c;
    assert_int_equal(sse_open(&a, "Authorization: Bearer " TOKEN "\r\n", NULL), 200);
    assert_int_equal(sse_open(&b, "Authorization: Bearer " TOKEN "\r\n", NULL), 200);
    assert_int_equal(sse_open(&c, "Authorization: Bearer " TOKEN "\r\n", NULL), 503);
    assert_non_null(strstr(c.buf, "feed.max_readers"));
    sse_close(&c);
    /* A record reaches both open streams. */
    buy_now("12360");
    sse_event e;
    assert_int_equal(sse_next(&a, &e), 0);
    assert_string_equal(e.event, "change");
    unsigned long long id = e.id;
    assert_int_equal(sse_next(&b, &e), 0);
    assert_int_equal(e.id, id);
    sse_close(&a);
    sse_close(&b);
    /* Metrics count the records and the gaps. */
    char *body;
    assert_int_equal(request("GET", "/metrics", NULL, &body), 200);
    assert_non_null(strstr(body, "rfm_feed_records_total "));
    assert_null(strstr(body, "rfm_feed_gaps_total 0\n"));
    free(body);
}

/* The sweep (every 2 s here) re-scores every customer and runs without
 * error; on the same day it publishes nothing: each customer's labels as
 * of today are the ones the batches above published (the hook and the
 * sweep score alike), so no change goes out twice. A day change, which the
 * sweep is for, cannot be made to happen in a test. */
static void test_sweep_publishes_once(void **state)
{
    (void)state;
    double records = metric("rfm_feed_records_total");
    double sweeps = metric("rfm_feed_sweeps_total{result=\"ok\"}");
    /* Two whole sweeps after this point (up to 120 s). */
    for (int i = 0; i < 1200 && metric("rfm_feed_sweeps_total{result=\"ok\"}") < sweeps + 2; i++)
        usleep(100000);
    double after = metric("rfm_feed_sweeps_total{result=\"ok\"}");
    print_message("  sweeps %g -> %g, records %g -> %g\n", sweeps, after, records,
                  metric("rfm_feed_records_total"));
    assert_true(after >= sweeps + 2);
    assert_true(metric("rfm_feed_sweeps_total{result=\"error\"}") == 0);
    assert_true(metric("rfm_feed_records_total") == records);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unauthenticated), cmocka_unit_test(test_change_arrives),
        cmocka_unit_test(test_resume),          cmocka_unit_test(test_gap),
        cmocka_unit_test(test_reader_limit),    cmocka_unit_test(test_sweep_publishes_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
