/* test_feed.c - the live feed's core: label changes between two scorings,
 * the ring's ids and order, wrap-around and the gap a slow reader gets,
 * an id from another run, publishing a change once (the last published
 * labels), the subscriber hook, and concurrent writers and readers (every
 * reader sees each id at most once, in increasing order, and accounts for
 * every id either as read or as missed). */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "feed.h"

static feed_labels labels(const char *rfm, const char *cluster, const char *risk)
{
    feed_labels l = {{rfm, cluster, risk}};
    return l;
}

static void test_diff(void **state)
{
    (void)state;
    feed_labels a = labels("Champions", "Loyal", "low"), b = labels("At Risk", "Loyal", "high");
    feed_change ch[FEED_NFIELDS];
    assert_int_equal(feed_diff(&a, &b, ch), 2);
    assert_int_equal(ch[0].field, FEED_RFM_SEGMENT);
    assert_string_equal(ch[0].from, "Champions");
    assert_string_equal(ch[0].to, "At Risk");
    assert_int_equal(ch[1].field, FEED_CHURN_RISK);
    assert_string_equal(ch[1].from, "low");
    assert_string_equal(ch[1].to, "high");
    assert_string_equal(feed_field_name(ch[1].field), "churn_risk");
    /* Same labels, or a part not scored on one side: no change. */
    assert_int_equal(feed_diff(&a, &a, ch), 0);
    feed_labels c = labels(NULL, "Lost", NULL);
    assert_int_equal(feed_diff(&a, &c, ch), 1);
    assert_int_equal(ch[0].field, FEED_CLUSTER);
}

static void test_labels_of(void **state)
{
    (void)state;
    score_result r;
    memset(&r, 0, sizeof r);
    feed_labels l;
    feed_labels_of(&r, &l);
    for (int k = 0; k < FEED_NFIELDS; k++)
        assert_null(l.label[k]);
    r.done = SCORE_SEGMENTS | SCORE_CHURN;
    r.seg.rfm_segment = "Champions";
    r.seg.segment = "VIP";
    r.risk = CHURN_RISK_HIGH;
    feed_labels_of(&r, &l);
    assert_string_equal(l.label[FEED_RFM_SEGMENT], "Champions");
    assert_string_equal(l.label[FEED_CLUSTER], "VIP");
    assert_string_equal(l.label[FEED_CHURN_RISK], "high");
}

static void push_n(feed *f, int n, int from)
{
    for (int i = 0; i < n; i++) {
        char d[32];
        snprintf(d, sizeof d, "{\"n\":%d}", from + i);
        assert_int_equal(feed_push(f, "change", d, NULL), RFM_OK);
    }
}

static void test_order_and_resume(void **state)
{
    (void)state;
    feed *f = feed_new(8, 1000, 0);
    assert_non_null(f);
    assert_int_equal(feed_last_id(f), 1000);
    feed_record out[16];
    uint64_t pos = 1000, missed;
    int gap;
    assert_int_equal(feed_since(f, &pos, 16, out, &missed, &gap), 0);
    push_n(f, 5, 0);
    assert_int_equal(feed_last_id(f), 1005);
    /* Two at a time: ids 1001.. in order, data as pushed, position moves. */
    assert_int_equal(feed_since(f, &pos, 2, out, &missed, &gap), 2);
    assert_int_equal(gap, 0);
    assert_int_equal(out[0].id, 1001);
    assert_string_equal(out[0].data, "{\"n\":0}");
    assert_string_equal(out[1].event, "change");
    assert_int_equal(pos, 1002);
    feed_record_clear(&out[0]), feed_record_clear(&out[1]);
    long n = feed_since(f, &pos, 16, out, &missed, &gap);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].id, 1003);
    assert_string_equal(out[2].data, "{\"n\":4}");
    for (long i = 0; i < n; i++)
        feed_record_clear(&out[i]);
    assert_int_equal(pos, 1005);
    /* Resuming from an earlier id (a reconnect) gives the same records again. */
    pos = 1003;
    assert_int_equal(feed_since(f, &pos, 16, out, &missed, &gap), 2);
    assert_int_equal(out[0].id, 1004);
    feed_record_clear(&out[0]), feed_record_clear(&out[1]);
    feed_free(f);
}

static void test_wrap_and_gap(void **state)
{
    (void)state;
    feed *f = feed_new(4, 0, 0);
    push_n(f, 10, 0); /* ids 1..10; the ring keeps 7..10 */
    feed_record out[16];
    uint64_t pos = 2, missed;
    int gap;
    long n = feed_since(f, &pos, 16, out, &missed, &gap);
    assert_int_equal(gap, 1);
    assert_int_equal(missed, 4); /* 3, 4, 5, 6 */
    assert_int_equal(n, 4);
    for (long i = 0; i < n; i++) {
        assert_int_equal(out[i].id, 7 + (uint64_t)i);
        char d[32];
        snprintf(d, sizeof d, "{\"n\":%ld}", 6 + i);
        assert_string_equal(out[i].data, d);
        feed_record_clear(&out[i]);
    }
    assert_int_equal(pos, 10);
    /* The reader at the oldest kept id minus one lost nothing. */
    pos = 6;
    n = feed_since(f, &pos, 1, out, &missed, &gap);
    assert_int_equal(gap, 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].id, 7);
    feed_record_clear(&out[0]);
    feed_free(f);
}

static void test_unknown_id(void **state)
{
    (void)state;
    feed *f = feed_new(4, 100, 0);
    push_n(f, 3, 0); /* 101..103 */
    feed_record out[8];
    uint64_t pos = 500, missed;
    int gap;
    /* Ahead of the newest (ids of a later run): go on from the newest. */
    assert_int_equal(feed_since(f, &pos, 8, out, &missed, &gap), 0);
    assert_int_equal(gap, 2);
    assert_int_equal(pos, 103);
    /* Before base (an earlier run): everything kept is new to the reader. */
    pos = 7;
    long n = feed_since(f, &pos, 8, out, &missed, &gap);
    assert_int_equal(gap, 2);
    assert_int_equal(missed, 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].id, 101);
    for (long i = 0; i < n; i++)
        feed_record_clear(&out[i]);
    feed_free(f);
}

typedef struct {
    int calls;
    uint64_t last_id;
    char last[512];
} sink;

static void on_record(void *ctx, uint64_t id, const char *customer_id, const char *event,
                      const char *data)
{
    sink *s = ctx;
    s->calls++;
    s->last_id = id;
    assert_string_equal(event, "change");
    /* The record's customer, for a key (the Kafka scores topic). */
    char head[64];
    snprintf(head, sizeof head, "{\"customer_id\":\"%s\",", customer_id);
    assert_memory_equal(data, head, strlen(head));
    snprintf(s->last, sizeof s->last, "%s", data);
}

static void test_publish_once(void **state)
{
    (void)state;
    feed *f = feed_new(16, 0, 100);
    sink s = {0};
    assert_int_equal(feed_subscribe(f, on_record, &s), RFM_OK);
    feed_labels lost = labels("Lost", "Dormant", "high"),
                champ = labels("Champions", "VIP", "high");
    json_t *scores = json_pack("{s:s}", "rfm_score", "555");
    size_t n;
    assert_int_equal(feed_publish(f, "17850", "2011-12-01T08:26:00Z", &lost, &champ, scores, &n),
                     RFM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(s.calls, 2);
    assert_int_equal(s.last_id, 2);
    json_error_t je;
    json_t *rec = json_loads(s.last, 0, &je);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "customer_id")), "17850");
    assert_string_equal(json_string_value(json_object_get(rec, "field")), "cluster");
    assert_string_equal(json_string_value(json_object_get(rec, "from")), "Dormant");
    assert_string_equal(json_string_value(json_object_get(rec, "to")), "VIP");
    assert_string_equal(json_string_value(json_object_get(rec, "time")), "2011-12-01T08:26:00Z");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "scores"), "rfm_score")), "555");
    json_decref(rec);
    /* A second scoring with a stale "before" (a race, or the daily sweep
     * comparing against yesterday): the published labels win, nothing new. */
    assert_int_equal(feed_publish(f, "17850", "t", &lost, &champ, scores, &n), RFM_OK);
    assert_int_equal(n, 0);
    /* Back to Lost: one record per field again. */
    assert_int_equal(feed_publish(f, "17850", "t", &champ, &lost, NULL, &n), RFM_OK);
    assert_int_equal(n, 2);
    /* A customer first seen without a before becomes the baseline. */
    assert_int_equal(feed_publish(f, "9", "t", NULL, &lost, NULL, &n), RFM_OK);
    assert_int_equal(n, 0);
    assert_int_equal(feed_publish(f, "9", "t", NULL, &champ, NULL, &n), RFM_OK);
    assert_int_equal(n, 2);
    feed_stats st;
    feed_get_stats(f, &st);
    assert_int_equal(st.records, 6);
    assert_int_equal(st.published_customers, 2);
    json_decref(scores);
    feed_free(f);
}

static void test_publish_map_full(void **state)
{
    (void)state;
    /* One remembered customer at most: the second is compared with its
     * before each time (and so publishes the same change again). */
    feed *f = feed_new(16, 0, 1);
    feed_labels a = labels("Lost", NULL, NULL), b = labels("Champions", NULL, NULL);
    size_t n;
    feed_publish(f, "1", "t", &a, &b, NULL, &n);
    assert_int_equal(n, 1);
    feed_publish(f, "2", "t", &a, &b, NULL, &n);
    assert_int_equal(n, 1);
    feed_publish(f, "1", "t", &a, &b, NULL, &n);
    assert_int_equal(n, 0);
    feed_publish(f, "2", "t", &a, &b, NULL, &n);
    assert_int_equal(n, 1);
    feed_free(f);
}

#define WRITERS 3
#define PER_WRITER 4000
#define READERS 3

typedef struct {
    feed *f;
    int w;
} wctx;

static void *writer(void *arg)
{
    wctx *c = arg;
    for (int i = 0; i < PER_WRITER; i++) {
        char d[32];
        snprintf(d, sizeof d, "%d:%d", c->w, i);
        if (feed_push(c->f, "change", d, NULL) != RFM_OK)
            return (void *)1;
    }
    return NULL;
}

typedef struct {
    feed *f;
    uint64_t seen, missed, bad;
} rctx;

static void *reader(void *arg)
{
    rctx *c = arg;
    uint64_t pos = 0, prev = 0;
    feed_record out[64];
    int last_of[WRITERS] = {-1, -1, -1};
    while (pos < (uint64_t)WRITERS * PER_WRITER) {
        uint64_t missed;
        int gap;
        long n = feed_since(c->f, &pos, 64, out, &missed, &gap);
        if (n < 0 || gap == 2) {
            c->bad++;
            return NULL;
        }
        c->missed += missed;
        for (long i = 0; i < n; i++) {
            int w, k;
            /* Ids increase; each writer's records come in its order. */
            if (out[i].id <= prev || sscanf(out[i].data, "%d:%d", &w, &k) != 2 || w < 0 ||
                w >= WRITERS || k <= last_of[w])
                c->bad++;
            else
                last_of[w] = k;
            prev = out[i].id;
            c->seen++;
            feed_record_clear(&out[i]);
        }
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    feed *f = feed_new(256, 0, 0);
    pthread_t wt[WRITERS], rt[READERS];
    wctx wc[WRITERS];
    rctx rc[READERS];
    for (int r = 0; r < READERS; r++) {
        rc[r] = (rctx){f, 0, 0, 0};
        pthread_create(&rt[r], NULL, reader, &rc[r]);
    }
    for (int w = 0; w < WRITERS; w++) {
        wc[w] = (wctx){f, w};
        pthread_create(&wt[w], NULL, writer, &wc[w]);
    }
    for (int w = 0; w < WRITERS; w++) {
        void *ret;
        pthread_join(wt[w], &ret);
        assert_null(ret);
    }
    for (int r = 0; r < READERS; r++) {
        pthread_join(rt[r], NULL);
        assert_int_equal(rc[r].bad, 0);
        /* Every id read or counted as missed, none twice. */
        assert_int_equal(rc[r].seen + rc[r].missed, (uint64_t)WRITERS * PER_WRITER);
    }
    assert_int_equal(feed_last_id(f), (uint64_t)WRITERS * PER_WRITER);
    feed_free(f);
}

static void test_bad_args(void **state)
{
    (void)state;
    assert_null(feed_new(0, 0, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_labels_of),
        cmocka_unit_test(test_order_and_resume),
        cmocka_unit_test(test_wrap_and_gap),
        cmocka_unit_test(test_unknown_id),
        cmocka_unit_test(test_publish_once),
        cmocka_unit_test(test_publish_map_full),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
